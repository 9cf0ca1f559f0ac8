//! `warpgrad viz --timeline RUN_DIR`: the same test digits through the
//! spatial transformer of every saved epoch (see [`crate::snapshot`]), so a
//! reader watches it learn to undo the distortion.
//!
//! - `timeline.png`: one row per digit: the input U, then the output V
//!   after each epoch (at most [`MAX_COLUMNS`] epochs, evenly spread, the
//!   first and the last always in);
//! - `timeline.gif`: one frame per saved epoch: the inputs with the region
//!   the transformer samples (the outline of T_θ(G)) over them, and the
//!   outputs V under them.
//!
//! The classifier is not shown: only the transformer's weights are saved
//! per epoch.

use crate::data_cmd::say;
use crate::draw::{self, Canvas, Rect, Rgb};
use crate::error::{msg, CliError};
use crate::run::{self, CHECKPOINT_FILE};
use crate::snapshot;
use engine::Var;
use layers::Ctx;
use std::path::Path;

/// Most epoch columns in `timeline.png`.
pub const MAX_COLUMNS: usize = 12;
/// Side of a digit's cell, in pixels: inputs and outputs (whose sides
/// differ, e.g. 42 and 56 on RTS) are both drawn this size.
const CELL: usize = 112;
const GAP: usize = 6;
/// Margin around a GIF frame's inputs, where an outline that leaves the
/// input (sampling zeros there) stays visible.
const PAD: usize = 14;
/// Colour of that margin.
const PAD_BG: Rgb = [48, 50, 60];
const MARGIN: usize = 12;
/// Time a GIF frame shows, in hundredths of a second (the last one longer).
const FRAME_DELAY: u16 = 60;
const LAST_DELAY: u16 = 250;
/// The colour of the sampled region's outline.
const OUTLINE: Rgb = draw::PALETTE[0];

/// What the transformer of one epoch does to the digits.
struct Frame {
    epoch: u64,
    /// Outputs V, N×H'×W' (first channel).
    v: Vec<f32>,
    /// Sampling grids, N×H'×W'×2, normalised.
    grid: Vec<f32>,
}

/// `warpgrad viz --timeline RUN_DIR`.
pub fn run(a: &crate::VizArgs, run_dir: &Path) -> Result<(), CliError> {
    if !run_dir.is_dir() {
        return Err(msg(format!(
            "--timeline {}: not a folder (expected the run folder of `warpgrad train`)",
            run_dir.display()
        )));
    }
    let ck_path = a
        .checkpoint
        .clone()
        .unwrap_or_else(|| run_dir.join(CHECKPOINT_FILE));
    if !ck_path.exists() {
        return Err(msg(format!(
            "--timeline {}: no {} (not the run folder of `warpgrad train`?)",
            run_dir.display(),
            ck_path.display()
        )));
    }
    let (cfg, mut model, _) = run::load_checkpoint_model(&ck_path)?;
    if model.transformer().is_none() {
        return Err(msg(format!(
            "--timeline {}: model {} has no spatial transformer, so no timeline",
            run_dir.display(),
            cfg.model
        )));
    }
    let snaps = snapshot::list(run_dir)?;
    let variant = run::parse_variant(&cfg.dataset)?;
    // Misclassified / low-confidence are judged by the run's checkpoint.
    let (batch, indices) = crate::viz::choose(a, &model, variant)?;
    let x = Var::constant(batch.images.clone());
    let ctx = Ctx::eval();
    let mut frames = Vec::with_capacity(snaps.len());
    for (_, path) in &snaps {
        let epoch = snapshot::load(path, &mut model)?;
        let Some(st) = model.transformer() else {
            unreachable!("checked above");
        };
        let theta = st.theta(&x, &ctx);
        let grid = st.grid(&theta);
        let v = st.sample(&st.sampled_input(&x), &theta);
        frames.push(Frame {
            epoch,
            v: v.value().data().to_vec(),
            grid: grid.value().data().to_vec(),
        });
    }
    let out_hw = model.transformer().map_or([1, 1], |st| st.out_hw());
    let digits = Digits {
        side: model.side(),
        n: indices.len(),
        images: batch.images.data().to_vec(),
        out_hw,
    };
    std::fs::create_dir_all(&a.out)
        .map_err(|e| msg(format!("cannot create {}: {e}", a.out.display())))?;
    let title = format!("{} on {}, test digits {indices:?}", cfg.model, cfg.dataset);
    let png = grid_picture(&digits, &frames, &title);
    png.save_png(&a.out.join("timeline.png"))?;
    let gif: Vec<Canvas> = frames
        .iter()
        .map(|f| gif_frame(&digits, f, frames.last().map_or(0, |l| l.epoch), &title))
        .collect();
    save_gif(&a.out.join("timeline.gif"), &gif)?;
    say(&format!(
        "wrote timeline.png ({} of {} epochs) and timeline.gif ({} frames) to {}\n",
        columns(frames.len()).len(),
        frames.len(),
        gif.len(),
        a.out.display()
    ))
}

/// The digits drawn and the sizes involved.
struct Digits {
    side: usize,
    n: usize,
    /// N×S×S inputs.
    images: Vec<f32>,
    out_hw: [usize; 2],
}

impl Digits {
    fn input(&self, k: usize) -> &[f32] {
        &self.images[k * self.side * self.side..][..self.side * self.side]
    }
    fn output<'a>(&self, f: &'a Frame, k: usize) -> &'a [f32] {
        let n = self.out_hw[0] * self.out_hw[1];
        &f.v[k * n..][..n]
    }
}

/// A `w`×`h` image resampled (nearest neighbour) to `size`×`size`.
fn fit(img: &[f32], w: usize, h: usize, size: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(size * size);
    for y in 0..size {
        let row = &img[(y * h / size) * w..][..w];
        out.extend((0..size).map(|x| row[x * w / size]));
    }
    out
}

/// Draws a grayscale image as a [`CELL`]-sided square at (x, y).
fn blit_cell(c: &mut Canvas, x: i64, y: i64, img: &[f32], w: usize, h: usize) {
    c.blit_gray(x, y, &fit(img, w, h, CELL), CELL, CELL, 1);
}

/// Which of `n` frames get a column: all if few, else [`MAX_COLUMNS`]
/// spread evenly, first and last included.
fn columns(n: usize) -> Vec<usize> {
    if n <= MAX_COLUMNS {
        return (0..n).collect();
    }
    let mut v: Vec<usize> = (0..MAX_COLUMNS)
        .map(|c| (c * (n - 1) + (MAX_COLUMNS - 1) / 2) / (MAX_COLUMNS - 1))
        .collect();
    v.dedup();
    v
}

/// Draws the outline of digit `k`'s sampling grid over its input at (x, y),
/// clipped to the input and its [`PAD`] margin.
fn outline(c: &mut Canvas, d: &Digits, f: &Frame, k: usize, x: i64, y: i64) {
    let [h, w] = d.out_hw;
    let s = CELL as f32;
    let g = &f.grid[k * h * w * 2..][..h * w * 2];
    let pt = |r: usize, col: usize| {
        let i = (r * w + col) * 2;
        // align_corners=false: −1 and +1 are the outer edges of U.
        (
            x as f32 + (g[i] + 1.0) / 2.0 * s,
            y as f32 + (g[i + 1] + 1.0) / 2.0 * s,
        )
    };
    let mut pts: Vec<(f32, f32)> = (0..w).map(|col| pt(0, col)).collect();
    pts.extend((0..h).map(|r| pt(r, w - 1)));
    pts.extend((0..w).rev().map(|col| pt(h - 1, col)));
    pts.extend((0..h).rev().map(|r| pt(r, 0)));
    let p = PAD as i64;
    let rect = Rect::new(x - p, y - p, s as i64 + 2 * p, s as i64 + 2 * p);
    c.set_clip(Some(rect));
    c.polyline(&pts, 2.0, OUTLINE, 1.0);
    c.set_clip(None);
}

/// `timeline.png`: rows of digits, columns of epochs.
fn grid_picture(d: &Digits, frames: &[Frame], title: &str) -> Canvas {
    let cols = columns(frames.len());
    let cell = CELL;
    let line = draw::LINE_H;
    let head = [
        title.to_string(),
        "first column: the input U; then the transformer's output V after each epoch".to_string(),
    ];
    let top = MARGIN + head.len() * line + line + 4;
    let width = (MARGIN * 2 + (cols.len() + 1) * (cell + GAP)).max(
        head.iter()
            .map(|h| draw::text_size(h, 1).0)
            .max()
            .unwrap_or(0)
            + 2 * MARGIN,
    );
    let height = top + d.n * (cell + GAP) + MARGIN;
    let mut c = Canvas::new(width, height, draw::BACKGROUND);
    for (k, h) in head.iter().enumerate() {
        c.text(MARGIN as i64, (MARGIN + k * line) as i64, h, draw::WHITE, 1);
    }
    let label_y = (top - line - 2) as i64;
    let col_x = |j: usize| (MARGIN + j * (cell + GAP)) as i64;
    c.text(col_x(0), label_y, "input", draw::GREY, 1);
    for (j, &f) in cols.iter().enumerate() {
        let t = format!("epoch {}", frames[f].epoch);
        c.text(col_x(j + 1), label_y, &t, draw::GREY, 1);
    }
    for k in 0..d.n {
        let y = (top + k * (cell + GAP)) as i64;
        blit_cell(&mut c, col_x(0), y, d.input(k), d.side, d.side);
        for (j, &f) in cols.iter().enumerate() {
            let [h, w] = d.out_hw;
            blit_cell(&mut c, col_x(j + 1), y, d.output(&frames[f], k), w, h);
        }
    }
    c
}

/// One GIF frame: the inputs with this epoch's sampled region, and the
/// outputs under them.
fn gif_frame(d: &Digits, f: &Frame, last: u64, title: &str) -> Canvas {
    let col = CELL + 2 * PAD + GAP;
    let line = draw::LINE_H;
    let legend = "top: input U and the region the transformer samples; bottom: its output V";
    let top = MARGIN + 3 * line + 4;
    let width = (2 * MARGIN + d.n * col)
        .max(draw::text_size(title, 1).0 + 2 * MARGIN)
        .max(draw::text_size(legend, 1).0 + 2 * MARGIN);
    let height = top + 2 * (CELL + 2 * PAD) + GAP + MARGIN;
    let mut c = Canvas::new(width, height, draw::BACKGROUND);
    c.text(MARGIN as i64, MARGIN as i64, title, draw::WHITE, 1);
    c.text(MARGIN as i64, (MARGIN + line) as i64, legend, draw::GREY, 1);
    let when = if f.epoch == 0 {
        format!("epoch 0 of {last} (before training)")
    } else {
        format!("epoch {} of {last}", f.epoch)
    };
    let y = (MARGIN + 2 * line) as i64;
    c.text(MARGIN as i64, y, &when, draw::YELLOW, 1);
    let side = (CELL + 2 * PAD) as i64;
    for k in 0..d.n {
        let x = (MARGIN + k * col) as i64;
        let y = top as i64;
        c.fill_rect(Rect::new(x, y, side, side), PAD_BG);
        let (ix, iy) = (x + PAD as i64, y + PAD as i64);
        blit_cell(&mut c, ix, iy, d.input(k), d.side, d.side);
        outline(&mut c, d, f, k, ix, iy);
        let [h, w] = d.out_hw;
        blit_cell(
            &mut c,
            ix,
            y + side + GAP as i64 + PAD as i64,
            d.output(f, k),
            w,
            h,
        );
    }
    c
}

/// Writes `frames` (same size) as a looping GIF, atomically.
fn save_gif(path: &Path, frames: &[Canvas]) -> Result<(), CliError> {
    let fail = |e: &dyn std::fmt::Display| msg(format!("cannot write {}: {e}", path.display()));
    let Some(first) = frames.first() else {
        return Err(fail(&"no frames"));
    };
    let (w, h) = (first.width(), first.height());
    let (Ok(w16), Ok(h16)) = (u16::try_from(w), u16::try_from(h)) else {
        return Err(fail(&format!("{w}×{h} is too large for a GIF")));
    };
    let mut bytes = Vec::new();
    {
        let mut enc = gif::Encoder::new(&mut bytes, w16, h16, &[]).map_err(|e| fail(&e))?;
        enc.set_repeat(gif::Repeat::Infinite)
            .map_err(|e| fail(&e))?;
        for (k, c) in frames.iter().enumerate() {
            // Speed 10: a fast palette search, ample for grey digits and
            // one outline colour.
            let mut f = gif::Frame::from_rgb_speed(w16, h16, c.pixels(), 10);
            f.delay = if k + 1 == frames.len() {
                LAST_DELAY
            } else {
                FRAME_DELAY
            };
            enc.write_frame(&f).map_err(|e| fail(&e))?;
        }
    }
    engine::fsio::write_atomic(path, |wr| std::io::Write::write_all(wr, &bytes))
        .map_err(|e| fail(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_resamples_nearest_neighbour() {
        // 2×2 → 4×4: every value becomes a 2×2 block.
        let v = fit(&[1.0, 2.0, 3.0, 4.0], 2, 2, 4);
        assert_eq!(&v[..8], &[1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0]);
        assert_eq!(&v[8..12], &[3.0, 3.0, 4.0, 4.0]);
        // 3×3 → 2×2 picks rows and columns 0 and 1.
        let v = fit(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], 3, 3, 2);
        assert_eq!(v, [0.0, 1.0, 3.0, 4.0]);
    }

    #[test]
    fn columns_keep_the_first_and_last_epoch() {
        assert_eq!(columns(3), vec![0, 1, 2]);
        let c = columns(101);
        assert_eq!(c.len(), MAX_COLUMNS);
        assert_eq!((c[0], c[MAX_COLUMNS - 1]), (0, 100));
        assert!(c.windows(2).all(|w| w[0] < w[1]), "{c:?}");
    }

    #[test]
    fn a_gif_has_one_frame_per_canvas() {
        let d = std::env::temp_dir().join(format!("wg-timeline-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("t.gif");
        let mut frames = Vec::new();
        for k in 0..3u8 {
            let mut c = Canvas::new(20, 10, draw::BACKGROUND);
            c.fill_rect(Rect::new(k as i64 * 5, 0, 5, 5), draw::WHITE);
            frames.push(c);
        }
        save_gif(&p, &frames).unwrap();
        let mut dec = gif::DecodeOptions::new()
            .read_info(std::fs::File::open(&p).unwrap())
            .unwrap();
        let mut n = 0;
        while dec.read_next_frame().unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, 3);
        assert_eq!((dec.width(), dec.height()), (20, 10));
        let _ = std::fs::remove_dir_all(&d);
    }
}
