//! The `warpgrad` command line: train, evaluate, visualise and reproduce the
//! paper's experiments, and inspect the data.

mod config;
mod data_cmd;
mod draw;
mod error;
mod eval;
mod export;
mod onnx;
mod recipe;
mod reproduce;
mod reproduce_addition;
mod run;
mod slurm;
mod snapshot;
mod timeline;
mod train;
mod viz;
mod viz_parallel;
mod viz_pick;
mod weights;

use clap::{Args, Parser, Subcommand};
use error::CliError;
use std::path::PathBuf;
use std::process::ExitCode;

/// warpgrad: spatial transformer networks from scratch.
#[derive(Parser)]
#[command(name = "warpgrad", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Largest decompressed size of a data file (IDX, raw or .gz) loaded
    /// into memory, in bytes or with a K, M or G suffix (powers of 1024);
    /// default 512M, eleven times MNIST's largest file. `data inspect`
    /// streams and needs no limit.
    #[arg(long, global = true, value_name = "BYTES", value_parser = run::parse_bytes)]
    max_decompressed: Option<u64>,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model on (distorted) MNIST; resumable, bit-reproducible.
    Train(config::TrainArgs),
    /// Test error and confusion matrix of a checkpoint.
    Eval(EvalArgs),
    /// PNG pictures of what a trained spatial transformer does.
    Viz(VizArgs),
    /// Layers, output shapes and parameter counts of a model.
    Info(InfoArgs),
    /// Export a trained model as ONNX or safetensors.
    Export(export::ExportArgs),
    /// Inspect, preview and export the data sets.
    #[command(subcommand)]
    Data(data_cmd::DataCommand),
    /// Reproduce a table of the paper.
    #[command(subcommand)]
    Reproduce(reproduce::ReproduceCommand),
}

/// Arguments of `warpgrad eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// A checkpoint written by `warpgrad train`, or its run folder.
    #[arg(long, required_unless_present = "weights", conflicts_with = "weights")]
    pub checkpoint: Option<PathBuf>,
    /// A safetensors file of the model's parameters (`warpgrad export`), in
    /// place of a checkpoint; needs --model.
    #[arg(long, requires = "model")]
    pub weights: Option<PathBuf>,
    /// The model the --weights file holds (fcn, cnn, st-fcn-aff, ...).
    #[arg(long, requires = "weights")]
    pub model: Option<String>,
    /// Also write the logits (N×classes) to this .npy file.
    #[arg(long)]
    pub save_logits: Option<PathBuf>,
    /// Also write the test images evaluated (N×C×S×S) to this .npy file.
    #[arg(long)]
    pub save_inputs: Option<PathBuf>,
    /// Evaluate on another data set than the one trained on.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Folder with the MNIST files (official names, raw or .gz).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Use only the first N test samples.
    #[arg(long)]
    pub test_size: Option<usize>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Arguments of `warpgrad viz`.
#[derive(Args)]
pub struct VizArgs {
    /// A checkpoint written by `warpgrad train` (with --timeline: the run
    /// folder's own checkpoint is used).
    #[arg(long, required_unless_present = "timeline")]
    pub checkpoint: Option<PathBuf>,
    /// Draw the training timeline of this run folder instead: the same test
    /// digits through the transformer of every epoch (timeline.png, with at
    /// most 12 epochs, and timeline.gif, every epoch).
    #[arg(long, value_name = "RUN_DIR")]
    pub timeline: Option<PathBuf>,
    /// Output folder for the PNG (and GIF) files.
    #[arg(long)]
    pub out: PathBuf,
    /// Number of test images to draw.
    #[arg(long, default_value_t = 8)]
    pub count: usize,
    /// Index of the first test image considered.
    #[arg(long, default_value_t = 0)]
    pub start: usize,
    /// Which test images to draw: the first ones (default), misclassified
    /// ones (most confidently wrong first), the least confident ones, or a
    /// random sample (--seed). A sure prediction (p ≈ 1) has a nearly flat
    /// loss: its ∂L/∂grid arrows are magnified noise.
    #[arg(long, value_enum, default_value_t = viz_pick::Pick::First)]
    pub pick: viz_pick::Pick,
    /// Seed of --pick random.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Test images (from --start) that --pick chooses among; default: the
    /// rest of the test set.
    #[arg(long)]
    pub pool: Option<usize>,
    /// Folder with the MNIST files.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Arguments of `warpgrad info`.
#[derive(Args)]
pub struct InfoArgs {
    /// Model name (help generated from the transform registry).
    #[arg(long, help = stn::model_help(), required_unless_present = "list")]
    pub model: Option<String>,
    /// List every model name, generated from the transform registry, and exit.
    #[arg(long)]
    pub list: bool,
    /// Data set, which sets the input size and classes (mnist, r, rts, p, e, tc, addition).
    #[arg(long, default_value = "rts")]
    pub dataset: String,
}

fn info(args: &InfoArgs) -> Result<(), CliError> {
    let Some(name) = args.model.as_deref().filter(|_| !args.list) else {
        print!("{}", model_list());
        return Ok(());
    };
    let variant = run::parse_variant(&args.dataset)?;
    let spec = run::input_spec(variant);
    let model = run::build(name, variant, 0)?;
    let (c, side) = (spec.channels, spec.side);
    print!("{}", layers::layer_table(&model, &[1, c, side, side]));
    Ok(())
}

/// `warpgrad info --list`: every model name with its transform, from the
/// registry; the paper's (Table 1) models are marked.
fn model_list() -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for name in stn::model_names() {
        let t = name
            .rsplit_once('-')
            .and_then(|(_, t)| stn::transforms::lookup(t))
            .filter(|_| name.starts_with("st-") || name.starts_with("2st"));
        let what = t.map_or("no transformer", |r| r.summary);
        let paper = if stn::PAPER_MODELS.contains(&name.as_str()) {
            "  [Table 1]"
        } else {
            ""
        };
        let _ = writeln!(s, "{name:<22} {what}{paper}");
    }
    s
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(limit) = cli.max_decompressed {
        run::set_max_decompressed(limit);
    }
    let threads = match &cli.command {
        Command::Train(a) => a.threads,
        Command::Eval(a) => a.threads,
        _ => None,
    };
    // The command runs on a worker of its pool, so each parallel op starts
    // on the calling thread instead of waking a worker and waiting for it.
    let result = engine::parallel::in_pool(threads, || match &cli.command {
        Command::Train(a) => train::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Viz(a) => viz::run(a),
        Command::Info(a) => info(a),
        Command::Export(a) => export::run(a),
        Command::Data(c) => data_cmd::run(c),
        Command::Reproduce(c) => reproduce::run(c),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Interrupted(msg)) => {
            eprintln!("{msg}");
            ExitCode::from(train::EXIT_RESUMABLE)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
