//! `warpgrad export`: a trained model as ONNX (its inference graph) or
//! safetensors (its parameters), for use outside warpgrad. See docs/export.md.

use crate::config::TrainConfig;
use crate::error::{msg, CliError};
use crate::{onnx, run, weights};
use clap::{Args, ValueEnum};
use layers::{Checkpoint, Module};
use std::path::{Path, PathBuf};
use stn::Model;

/// The file formats `warpgrad export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The inference graph: input N×1×S×S images, output N×10 logits.
    Onnx,
    /// The parameters under their layer paths, with metadata.
    Safetensors,
}

/// Arguments of `warpgrad export`.
#[derive(Args)]
pub struct ExportArgs {
    /// A checkpoint written by `warpgrad train`, or its run folder.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Output format.
    #[arg(long, value_enum)]
    pub format: Format,
    /// Output file (written atomically).
    #[arg(long)]
    pub out: PathBuf,
    /// ONNX operator set, 16 to 20 (default 20: affine grids use AffineGrid;
    /// before 20 they are a MatMul).
    #[arg(long)]
    pub opset: Option<i64>,
}

/// The checkpoint file named by `path`: the file, or a run folder's latest.
pub fn checkpoint_file(path: &Path) -> Result<PathBuf, CliError> {
    if path.is_dir() {
        let f = path.join(run::CHECKPOINT_FILE);
        if !f.is_file() {
            return Err(msg(format!(
                "run folder {} has no {}",
                path.display(),
                run::CHECKPOINT_FILE
            )));
        }
        return Ok(f);
    }
    Ok(path.to_path_buf())
}

/// Loads a checkpoint's model; every error names the file.
fn load(path: &Path) -> Result<(TrainConfig, Model, Checkpoint), CliError> {
    let ck = Checkpoint::load(path)?;
    let file = path.display();
    let cfg: TrainConfig = serde_json::from_str(&ck.config).map_err(|e| {
        msg(format!(
            "checkpoint {file}: its configuration is not a warpgrad training configuration ({e})"
        ))
    })?;
    let variant =
        run::parse_variant(&cfg.dataset).map_err(|e| msg(format!("checkpoint {file}: {e}")))?;
    let mut model = run::build(&cfg.model, variant, cfg.seed)
        .map_err(|e| msg(format!("checkpoint {file}: {e}")))?;
    ck.restore_params(&mut model.params_mut())?;
    Ok((cfg, model, ck))
}

/// `warpgrad export`.
pub fn run(args: &ExportArgs) -> Result<(), CliError> {
    if args.format == Format::Safetensors && args.opset.is_some() {
        return Err(msg(
            "--opset applies to --format onnx only, not safetensors",
        ));
    }
    let opset = args.opset.unwrap_or(onnx::MAX_OPSET);
    onnx::check_opset(opset)?;
    let path = checkpoint_file(&args.checkpoint)?;
    let (cfg, model, ck) = load(&path)?;
    let meta = weights::metadata(&model, &cfg.dataset, ck.step, ck.epoch);
    let bytes = match args.format {
        Format::Onnx => onnx::export(&model, opset, &meta)?,
        Format::Safetensors => weights::to_bytes(&model, &meta)?,
    };
    engine::fsio::write_atomic(&args.out, |w| std::io::Write::write_all(w, &bytes))
        .map_err(|e| msg(format!("cannot write {}: {e}", args.out.display())))?;
    println!(
        "{} (step {}) → {} ({:?}, {} bytes)",
        model.name(),
        ck.step,
        args.out.display(),
        args.format,
        bytes.len()
    );
    Ok(())
}
