//! Shared pieces of the commands: data sets, models, run folders.

use crate::config::TrainConfig;
use crate::error::{msg, CliError};
use datasets::{load_mnist_limited, DistortedMnist, Mnist, Split, Variant, TEST_EPOCH};
use engine::{Tensor, Var};
use layers::{Checkpoint, Ctx, Module};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use stn::Model;

/// The fixed seed test sets are distorted with (the same for every run).
pub const TEST_SEED: u64 = 2015;

/// File name of the latest checkpoint in a run folder.
pub const CHECKPOINT_FILE: &str = "checkpoint.wgck";

/// Parses a data-set name.
pub fn parse_variant(name: &str) -> Result<Variant, CliError> {
    Ok(Variant::parse(name)?)
}

/// Side of the images of a variant (default parameters).
pub fn input_side(v: Variant) -> usize {
    v.side(&datasets::Distortions::default())
}

/// Channels, side and classes of a variant's images (default parameters).
pub fn input_spec(v: Variant) -> stn::InputSpec {
    stn::InputSpec {
        channels: v.channels(),
        side: input_side(v),
        classes: v.classes(),
    }
}

/// Builds a model by name for a data set's images, with weights from `seed`.
pub fn build(model: &str, variant: Variant, seed: u64) -> Result<Model, CliError> {
    Ok(stn::build_model_for(model, input_spec(variant), seed)?)
}

/// The MNIST folder: the given one, or the repository's `data/mnist`.
pub fn data_dir(arg: &Option<PathBuf>) -> PathBuf {
    arg.clone().unwrap_or_else(datasets::default_data_dir)
}

/// The `--max-decompressed` limit data files are loaded under (set once by
/// `main` from the global flag).
static MAX_DECOMPRESSED: AtomicU64 = AtomicU64::new(datasets::DEFAULT_MAX_BYTES);

/// Sets the decompressed-size limit of [`load_splits`].
pub fn set_max_decompressed(bytes: u64) {
    MAX_DECOMPRESSED.store(bytes, Ordering::Relaxed);
}

/// The decompressed-size limit of [`load_splits`].
pub fn max_decompressed() -> u64 {
    MAX_DECOMPRESSED.load(Ordering::Relaxed)
}

/// Parses a byte count: digits, optionally followed by K, M or G (powers of
/// 1024; "KiB", "MB" and the like are accepted too).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(format!(
                "'{s}': expected a byte count such as 800000000, 512M or 2G"
            ))
        }
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}': expected a byte count such as 800000000, 512M or 2G"))?;
    n.checked_mul(1 << shift)
        .filter(|&b| b > 0)
        .ok_or_else(|| format!("'{s}': must be at least 1 byte and at most 2^64 - 1"))
}

/// Both MNIST splits, each cut to its first N samples if asked.
pub fn load_splits(
    dir: &Path,
    train_size: Option<usize>,
    test_size: Option<usize>,
) -> Result<(Mnist, Mnist), CliError> {
    if !dir.is_dir() {
        return Err(msg(format!(
            "data folder {} does not exist (expected the four MNIST files, raw or .gz)",
            dir.display()
        )));
    }
    let cut = |m: Mnist, n: Option<usize>| match n {
        Some(n) if n < m.len() => m.take(n),
        _ => m,
    };
    let limit = max_decompressed();
    let train = cut(load_mnist_limited(dir, Split::Train, limit)?, train_size);
    let test = cut(load_mnist_limited(dir, Split::Test, limit)?, test_size);
    Ok((train, test))
}

/// The test set of a variant: distorted once, from [`TEST_SEED`].
pub fn test_batch(variant: Variant, test: &Mnist, train: &Mnist) -> datasets::Batch {
    DistortedMnist::new(variant, test, train, TEST_SEED)
        .batch(TEST_EPOCH, &(0..test.len()).collect::<Vec<_>>())
}

/// Loss, error rate and predictions of a model on a batch of images, in
/// evaluation mode (nothing recorded), `chunk` images at a time.
pub fn evaluate(
    model: &Model,
    images: &Tensor,
    labels: &[u8],
    chunk: usize,
) -> (f32, f32, Vec<usize>) {
    let n = labels.len();
    let mut loss_sum = 0.0f64;
    let mut preds = Vec::with_capacity(n);
    let ctx = Ctx::eval();
    let mut start = 0;
    while start < n {
        let len = chunk.min(n - start);
        let x = Var::constant(images.narrow(0, start, len));
        let logits = model.forward(&x, &ctx);
        let y: Vec<usize> = labels[start..start + len]
            .iter()
            .map(|&l| l as usize)
            .collect();
        loss_sum += layers::cross_entropy(&logits, &y).value().item() as f64 * len as f64;
        preds.extend(layers::predictions(logits.value()));
        start += len;
    }
    let wrong = preds
        .iter()
        .zip(labels)
        .filter(|(p, &l)| **p != l as usize)
        .count();
    (
        (loss_sum / n.max(1) as f64) as f32,
        wrong as f32 / n.max(1) as f32,
        preds,
    )
}

/// Loads a checkpoint with its run configuration and the model it holds.
pub fn load_checkpoint_model(path: &Path) -> Result<(TrainConfig, Model, Checkpoint), CliError> {
    let ck = Checkpoint::load(path)?;
    let cfg: TrainConfig = serde_json::from_str(&ck.config).map_err(|e| {
        msg(format!(
            "checkpoint {}: its configuration is not a warpgrad training configuration ({e})",
            path.display()
        ))
    })?;
    let variant = parse_variant(&cfg.dataset)?;
    let mut model = build(&cfg.model, variant, cfg.seed)?;
    ck.restore_params(&mut model.params_mut())?;
    Ok((cfg, model, ck))
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn byte_counts_parse_with_binary_suffixes() {
        assert_eq!(parse_bytes("800000000"), Ok(800_000_000));
        assert_eq!(parse_bytes("512M"), Ok(512 << 20));
        assert_eq!(parse_bytes("2g"), Ok(2 << 30));
        assert_eq!(parse_bytes("64KiB"), Ok(64 << 10));
        for bad in ["", "0", "-1", "1.5G", "12Q", "99999999999T"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }
}
