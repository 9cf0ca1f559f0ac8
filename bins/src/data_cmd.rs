//! `warpgrad data`: inspect IDX files, preview and export the data sets.
//!
//! Which samples each split holds (the same rule as training):
//! - `test`: the fixed test set every run evaluates on, distorted once from
//!   seed [`run::TEST_SEED`] at epoch [`TEST_EPOCH`] (what `run::test_batch`
//!   returns); `--seed` does not apply to it.
//! - `train`: epoch 0 of `--seed` (default 1), in file order (training visits
//!   the same samples, shuffled).
//!
//! Sample `i` depends only on (seed, epoch, i), so the first N samples are
//! the same whether N or all of them are generated (`--size` relies on it).
//! TC's distractors always come from the whole training split, as in
//! `warpgrad eval`.

use crate::draw::{self, Canvas};
use crate::error::{msg, CliError};
use crate::run;
use clap::{Args, Subcommand};
use datasets::{
    write_idx, Batch, DistortedMnist, IdxArray, IdxData, IdxStream, IdxType, Mnist, Variant,
    TEST_EPOCH,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// Data commands.
#[derive(Subcommand)]
pub enum DataCommand {
    /// Header, type, dimensions, value range and mean of an IDX file (raw or
    /// .gz); a histogram for label files.
    Inspect {
        /// The IDX file.
        file: PathBuf,
    },
    /// A labelled montage (8 per row) of the first samples of a data set, as PNG.
    Preview(PreviewArgs),
    /// Write a (distorted) data set as IDX files: u8 images N×S×S and u8 labels.
    Export(ExportArgs),
}

/// Which samples to generate: the data set, split, seed and size.
#[derive(Args, Clone, Debug)]
pub struct SampleArgs {
    /// Data set: mnist, r, rts, p, e, tc.
    #[arg(long, default_value = "rts")]
    pub dataset: String,
    /// Split: train (epoch 0 of --seed) or test (the fixed test set).
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Seed of the train split (the test split always uses seed 2015).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Folder with the MNIST files (official names, raw or .gz).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Arguments of `warpgrad data preview`.
#[derive(Args, Clone, Debug)]
pub struct PreviewArgs {
    /// The samples to show.
    #[command(flatten)]
    pub sample: SampleArgs,
    /// The PNG file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Number of samples shown (the first N of the split), 1 to 256.
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Each image pixel becomes a scale×scale block, 1 to 16.
    #[arg(long, default_value_t = 2)]
    pub scale: usize,
}

/// Arguments of `warpgrad data export`.
#[derive(Args, Clone, Debug)]
pub struct ExportArgs {
    /// The samples to write.
    #[command(flatten)]
    pub sample: SampleArgs,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Write only the first N samples of the split.
    #[arg(long)]
    pub size: Option<usize>,
}

/// Samples generated per chunk of an export (bounds the f32 memory).
const EXPORT_CHUNK: usize = 1000;
/// Seed of the train split when none is given (that of `warpgrad train`).
const DEFAULT_SEED: u64 = 1;

/// `warpgrad data`.
pub fn run(c: &DataCommand) -> Result<(), CliError> {
    match c {
        DataCommand::Inspect { file } => inspect(file),
        DataCommand::Preview(a) => preview(a),
        DataCommand::Export(a) => export(a),
    }
}

/// Writes `text` to stdout; a closed pipe (`| head`) is an error message,
/// not a panic.
pub fn say(text: &str) -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| msg(format!("cannot write to stdout: {e}")))
}

// ---------------------------------------------------------------- inspect

/// Minimum, maximum, mean and NaN count of an array's values.
#[derive(Debug, PartialEq)]
struct Stats {
    min: f64,
    max: f64,
    mean: f64,
    nan: usize,
}

/// Statistics gathered while the values stream past (constant memory): the
/// running range, sum and NaN count, and a count of each byte value for a
/// 1-d u8 file (the label histogram).
struct Running {
    min: f64,
    max: f64,
    sum: f64,
    n: usize,
    nan: usize,
    bytes: Option<Box<[usize; 256]>>,
}

impl Running {
    /// Ready for values of type `t`; counts byte values if `labels_like`.
    fn new(labels_like: bool) -> Running {
        Running {
            min: f64::MAX,
            max: f64::MIN,
            sum: 0.0,
            n: 0,
            nan: 0,
            bytes: labels_like.then(|| Box::new([0; 256])),
        }
    }

    /// Takes in whole big-endian elements of type `t`.
    fn add(&mut self, t: IdxType, chunk: &[u8]) {
        if let Some(h) = &mut self.bytes {
            for &b in chunk {
                h[b as usize] += 1;
            }
        }
        self.add_values(t.values_f64(chunk));
    }

    fn add_values(&mut self, values: impl Iterator<Item = f64>) {
        for v in values {
            if v.is_nan() {
                self.nan += 1;
                continue;
            }
            self.min = self.min.min(v);
            self.max = self.max.max(v);
            self.sum += v;
            self.n += 1;
        }
    }

    /// The range and mean, or `None` if no value was a number.
    fn stats(&self) -> Option<Stats> {
        (self.n > 0).then(|| Stats {
            min: self.min,
            max: self.max,
            mean: self.sum / self.n as f64,
            nan: self.nan,
        })
    }

    /// The label histogram, if every byte value seen is at most 9.
    fn label_histogram(&self) -> Option<[usize; 10]> {
        let h = self.bytes.as_ref()?;
        if h[10..].iter().any(|&c| c > 0) {
            return None;
        }
        let mut out = [0; 10];
        out.copy_from_slice(&h[..10]);
        Some(out)
    }
}

/// True if the file starts with the gzip magic (the reader decides the same
/// way, from the content).
fn is_gzip(path: &Path) -> bool {
    use std::io::Read;
    let mut b = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok_and(|_| b == [0x1f, 0x8b])
}

fn type_name(t: datasets::IdxType) -> &'static str {
    use datasets::IdxType::*;
    match t {
        U8 => "u8 (unsigned byte)",
        I8 => "i8 (signed byte)",
        I16 => "i16 (big-endian)",
        I32 => "i32 (big-endian)",
        F32 => "f32 (big-endian)",
        F64 => "f64 (big-endian)",
    }
}

/// Reads the file as a stream, so memory stays constant whatever its size.
fn inspect(file: &Path) -> Result<(), CliError> {
    let mut stream = IdxStream::open(file)?;
    let header = stream.header().clone();
    let (t, dims) = (header.ty, &header.dims);
    let mut run = Running::new(t == IdxType::U8 && dims.len() == 1);
    while let Some(chunk) = stream.next_chunk()? {
        run.add(t, chunk);
    }
    stream.finish()?;
    let mut o = String::new();
    // One line of the report (writing to a String cannot fail).
    macro_rules! out {
        ($($t:tt)*) => {{
            o.push_str(&format!($($t)*));
            o.push('\n');
        }};
    }
    let dims_text: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    out!(
        "file:     {} ({})",
        file.display(),
        if is_gzip(file) { "gzip" } else { "raw" }
    );
    out!(
        "magic:    00 00 {:02X} {:02X} (type code 0x{:02X}, {} dimension{})",
        t.code(),
        dims.len(),
        t.code(),
        dims.len(),
        if dims.len() == 1 { "" } else { "s" }
    );
    out!("type:     {}", type_name(t));
    out!("dims:     {}", dims_text.join(" × "));
    out!("elements: {}", header.len());
    match run.stats() {
        None => out!("values:   none"),
        Some(s) => {
            out!("range:    {} .. {}", s.min, s.max);
            out!("mean:     {:.4}", s.mean);
            if s.nan > 0 {
                out!("NaN:      {}", s.nan);
            }
        }
    }
    if let Some(h) = run.label_histogram() {
        let most = h.iter().copied().max().unwrap_or(0).max(1);
        out!("labels:");
        for (l, &n) in h.iter().enumerate() {
            let bar = "#".repeat((n * 40).div_ceil(most));
            out!("  {l}: {n:>8}  {bar}");
        }
        out!("  total: {}", h.iter().sum::<usize>());
    }
    say(&o)
}

// ------------------------------------------------------- shared sampling

/// Which split of a data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SplitName {
    Train,
    Test,
}

impl SplitName {
    fn parse(s: &str) -> Result<SplitName, CliError> {
        match s.to_ascii_lowercase().as_str() {
            "train" => Ok(SplitName::Train),
            "test" => Ok(SplitName::Test),
            _ => Err(msg(format!("unknown split '{s}': expected train or test"))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            SplitName::Train => "train",
            SplitName::Test => "test",
        }
    }
}

/// A resolved [`SampleArgs`]: what to generate, with the data loaded.
struct Source {
    variant: Variant,
    split: SplitName,
    seed: u64,
    train: Mnist,
    test: Mnist,
}

impl Source {
    /// Loads the MNIST splits; `first` cuts the source split to its first N
    /// samples (the training split stays whole: TC draws distractors from it).
    fn load(a: &SampleArgs, first: Option<usize>) -> Result<Source, CliError> {
        let variant = run::parse_variant(&a.dataset)?;
        let split = SplitName::parse(&a.split)?;
        if split == SplitName::Test && a.seed.is_some() {
            eprintln!(
                "note: --seed applies to the train split only; the test split is always drawn from seed {}",
                run::TEST_SEED
            );
        }
        let (train, test) = run::load_splits(&run::data_dir(&a.data_dir), None, first)?;
        Ok(Source {
            variant,
            split,
            seed: a.seed.unwrap_or(DEFAULT_SEED),
            train,
            test,
        })
    }

    /// Number of samples in the source split.
    fn len(&self) -> usize {
        match self.split {
            SplitName::Train => self.train.len(),
            SplitName::Test => self.test.len(),
        }
    }

    /// Samples `indices` of the split, exactly as training sees them.
    fn batch(&self, indices: &[usize]) -> Batch {
        match self.split {
            SplitName::Train => {
                DistortedMnist::new(self.variant, &self.train, &self.train, self.seed)
                    .batch(0, indices)
            }
            SplitName::Test => test_samples(self.variant, &self.test, &self.train, indices),
        }
    }

    /// "rts test (seed 2015)" or "rts train (seed 1, epoch 0)".
    fn describe(&self) -> String {
        match self.split {
            SplitName::Train => format!(
                "{} train (seed {}, epoch 0)",
                self.variant.name(),
                self.seed
            ),
            SplitName::Test => format!("{} test (seed {})", self.variant.name(), run::TEST_SEED),
        }
    }
}

/// Samples `indices` of the test set of `variant`: the same values as the
/// corresponding entries of `run::test_batch(variant, test, train)` (each
/// sample depends only on seed, epoch and index), without distorting the
/// whole test set.
pub fn test_samples(variant: Variant, test: &Mnist, train: &Mnist, indices: &[usize]) -> Batch {
    DistortedMnist::new(variant, test, train, run::TEST_SEED).batch(TEST_EPOCH, indices)
}

// ---------------------------------------------------------------- preview

fn preview(a: &PreviewArgs) -> Result<(), CliError> {
    if !(1..=256).contains(&a.size) {
        return Err(msg(format!("--size {} is out of range 1 to 256", a.size)));
    }
    if !(1..=16).contains(&a.scale) {
        return Err(msg(format!("--scale {} is out of range 1 to 16", a.scale)));
    }
    let src = Source::load(&a.sample, first_only(&a.sample, Some(a.size))?)?;
    let n = a.size.min(src.len());
    let idx: Vec<usize> = (0..n).collect();
    let batch = src.batch(&idx);
    let mut title = src.describe();
    if src.variant.channels() > 1 {
        title += ", channel 1 orange, channel 2 blue";
    }
    let canvas = montage(&batch, a.scale, &title);
    canvas.save_png(&a.out)?;
    say(&format!(
        "wrote {} ({}×{}, {n} samples of {})\n",
        a.out.display(),
        canvas.width(),
        canvas.height(),
        src.describe()
    ))
}

/// Images per montage row.
const MONTAGE_COLS: usize = 8;
/// Gap between montage cells, in pixels.
const GAP: usize = 2;

/// `first`, or `None` (load the whole split) for addition, whose samples
/// pair each digit with another drawn from the whole split: cutting the split
/// would pair them differently from training and evaluation.
fn first_only(a: &SampleArgs, first: Option<usize>) -> Result<Option<usize>, CliError> {
    let v = run::parse_variant(&a.dataset)?;
    Ok(if v.channels() > 1 { None } else { first })
}

/// A montage of a batch: 8 images per row, each with its label in the
/// top-left corner, under a one-line title. Two-channel images (addition)
/// are drawn in colour, channel 1 orange and channel 2 blue.
fn montage(batch: &Batch, scale: usize, title: &str) -> Canvas {
    let shape = batch.images.shape();
    let (n, ch, side) = (shape[0], shape[1], shape[3]);
    let cell = side * scale;
    let cols = MONTAGE_COLS.min(n.max(1));
    let rows = n.div_ceil(MONTAGE_COLS).max(1);
    let title_h = draw::LINE_H + 2 * GAP;
    let width = (cols * (cell + GAP) + GAP).max(draw::text_size(title, 1).0 + 2 * GAP);
    let height = title_h + rows * (cell + GAP) + GAP;
    let mut c = Canvas::new(width, height, draw::BACKGROUND);
    c.text(GAP as i64, GAP as i64 + 1, title, draw::WHITE, 1);
    let data = batch.images.data();
    let px = ch * side * side;
    for i in 0..n {
        let x = (GAP + (i % MONTAGE_COLS) * (cell + GAP)) as i64;
        let y = (title_h + (i / MONTAGE_COLS) * (cell + GAP)) as i64;
        let img = &data[i * px..(i + 1) * px];
        if ch == 1 {
            c.blit_gray(x, y, img, side, side, scale);
        } else {
            crate::viz_parallel::blit_channels(&mut c, x, y, img, ch, side, scale);
        }
        c.label(
            x,
            y,
            &batch.labels[i].to_string(),
            draw::YELLOW,
            draw::BLACK,
            1,
        );
    }
    c
}

// ----------------------------------------------------------------- export

/// Pixel values in [0, 1] as bytes: round(v·255), clamped; NaN → 0.
fn to_u8(v: &[f32]) -> impl Iterator<Item = u8> + '_ {
    v.iter().map(|&x| {
        if x.is_nan() {
            0
        } else {
            (x.clamp(0.0, 1.0) * 255.0).round() as u8
        }
    })
}

/// The file names of an export: images, then labels.
fn export_names(variant: Variant, split: SplitName) -> (String, String) {
    let stem = format!("{}-{}", variant.name(), split.name());
    (
        format!("{stem}-images-idx3-ubyte.gz"),
        format!("{stem}-labels-idx1-ubyte.gz"),
    )
}

fn export(a: &ExportArgs) -> Result<(), CliError> {
    if a.size == Some(0) {
        return Err(msg("--size must be at least 1"));
    }
    let src = Source::load(&a.sample, first_only(&a.sample, a.size)?)?;
    let n = a.size.map_or(src.len(), |s| s.min(src.len()));
    let side = run::input_side(src.variant);
    let ch = src.variant.channels();
    std::fs::create_dir_all(&a.out)
        .map_err(|e| msg(format!("cannot create {}: {e}", a.out.display())))?;

    let pb = ProgressBar::new(n as u64);
    if !std::io::stderr().is_terminal() {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    pb.set_style(
        ProgressStyle::with_template("{prefix} [{bar:28.cyan/blue}] {pos}/{len} | ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_prefix(src.describe());
    let mut images = Vec::with_capacity(n * ch * side * side);
    let mut labels = Vec::with_capacity(n);
    // Chunks keep the f32 images of a whole split (up to 0.9 GB for TC) out
    // of memory; the values do not depend on the chunking.
    for start in (0..n).step_by(EXPORT_CHUNK) {
        let idx: Vec<usize> = (start..(start + EXPORT_CHUNK).min(n)).collect();
        let b = src.batch(&idx);
        images.extend(to_u8(b.images.data()));
        labels.extend_from_slice(&b.labels);
        pb.inc(idx.len() as u64);
    }
    pb.finish_and_clear();

    let (img_name, lbl_name) = export_names(src.variant, src.split);
    let img_path = a.out.join(img_name);
    let lbl_path = a.out.join(lbl_name);
    let to_array = |dims: Vec<usize>, data: Vec<u8>| {
        IdxArray::new(dims, IdxData::U8(data)).map_err(|e| msg(e.to_string()))
    };
    // N×S×S, or N×C×S×S for several channels.
    let dims = if ch > 1 {
        vec![n, ch, side, side]
    } else {
        vec![n, side, side]
    };
    write_idx(&img_path, &to_array(dims, images)?)?;
    write_idx(&lbl_path, &to_array(vec![n], labels)?)?;
    say(&format!(
        "wrote {n} samples of {} ({}{side}×{side}):\n  {}\n  {}\n",
        src.describe(),
        if ch > 1 {
            format!("{ch}×")
        } else {
            String::new()
        },
        img_path.display(),
        lbl_path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_mnist(n: usize) -> Mnist {
        let mut images = vec![0u8; n * 28 * 28];
        for (k, p) in images.iter_mut().enumerate() {
            *p = ((k * 37) % 256) as u8;
        }
        Mnist {
            images,
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
            n,
        }
    }

    #[test]
    fn test_samples_match_run_test_batch() {
        let (test, train) = (small_mnist(12), small_mnist(20));
        for v in Variant::ALL {
            let all = run::test_batch(v, &test, &train);
            let some = test_samples(v, &test, &train, &[3, 7, 11]);
            let px = all.images.numel() / 12;
            for (k, &i) in [3usize, 7, 11].iter().enumerate() {
                assert_eq!(
                    &some.images.data()[k * px..(k + 1) * px],
                    &all.images.data()[i * px..(i + 1) * px],
                    "{v:?} sample {i}"
                );
                assert_eq!(some.labels[k], all.labels[i]);
            }
        }
    }

    #[test]
    fn u8_rounding_clamps_and_maps_nan_to_zero() {
        let v = [0.0, 1.0, 0.5, 0.499 / 255.0, -1.0, 2.0, f32::NAN, 0.502];
        let b: Vec<u8> = to_u8(&v).collect();
        assert_eq!(b, vec![0, 255, 128, 0, 0, 255, 0, 128]);
    }

    /// Streams `bytes` of type `t` through [`Running`] in pieces of
    /// `piece` elements.
    fn run_over(t: IdxType, bytes: &[u8], piece: usize, labels_like: bool) -> Running {
        let mut r = Running::new(labels_like);
        for c in bytes.chunks(piece * t.size()) {
            r.add(t, c);
        }
        r
    }

    #[test]
    fn stats_skip_nan_and_do_not_depend_on_chunking() {
        let v: Vec<u8> = [1.0f32, f32::NAN, 3.0, -2.5]
            .iter()
            .flat_map(|x| x.to_be_bytes())
            .collect();
        for piece in [1, 2, 4] {
            let s = run_over(IdxType::F32, &v, piece, false).stats().unwrap();
            assert_eq!(
                s,
                Stats {
                    min: -2.5,
                    max: 3.0,
                    mean: 0.5,
                    nan: 1
                }
            );
        }
        let nan = f64::NAN.to_be_bytes();
        assert!(run_over(IdxType::F64, &nan, 1, false).stats().is_none());
        assert!(Running::new(false).stats().is_none());
    }

    #[test]
    fn histogram_only_for_1d_u8_labels() {
        let h = run_over(IdxType::U8, &[0, 9, 9, 3], 3, true)
            .label_histogram()
            .unwrap();
        assert_eq!((h[0], h[3], h[9], h.iter().sum::<usize>()), (1, 1, 2, 4));
        let big = run_over(IdxType::U8, &[0, 10], 1, true);
        assert!(big.label_histogram().is_none());
        // Not label-like (2-d, or not u8): no histogram.
        let img = run_over(IdxType::U8, &[0, 1, 2, 3], 4, false);
        assert!(img.label_histogram().is_none());
    }

    #[test]
    fn montage_size_and_labels() {
        let train = small_mnist(10);
        let b = DistortedMnist::new(Variant::Mnist, &train, &train, 1).range(0, 0, 10);
        let c = montage(&b, 2, "t");
        // 8 columns of 56 px + gaps; 2 rows under the title.
        assert_eq!(c.width(), 8 * 58 + 2);
        assert_eq!(c.height(), draw::LINE_H + 4 + 2 * 58 + 2);
        // The image pixels land in the cell (below the label box).
        let y0 = draw::LINE_H + 4;
        let v = (b.images.data()[27 * 28 + 27] * 255.0).round() as u8;
        assert_eq!(c.get(2 + 55, y0 + 55), [v, v, v]);
    }

    #[test]
    fn export_names_follow_the_idx_convention() {
        let (i, l) = export_names(Variant::Rts, SplitName::Test);
        assert_eq!(i, "rts-test-images-idx3-ubyte.gz");
        assert_eq!(l, "rts-test-labels-idx1-ubyte.gz");
    }

    #[test]
    fn split_names_parse() {
        assert_eq!(SplitName::parse("Train").unwrap(), SplitName::Train);
        assert_eq!(SplitName::parse("test").unwrap(), SplitName::Test);
        let e = SplitName::parse("val").unwrap_err().to_string();
        assert!(e.contains("'val'"), "{e}");
    }
}
