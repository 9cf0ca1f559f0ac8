//! `warpgrad reproduce table1`: the paper's Table 1 (distorted MNIST) as a
//! matrix of training runs, each in its own folder.
//!
//! A finished run (its `results.json` exists) is skipped and an interrupted
//! one resumed, so a long matrix can be spread over several sittings, or over
//! many machines with `--print-commands` (one `warpgrad train` line per run,
//! for a Slurm job array or GNU parallel) followed by `--collect`.

use crate::config::TrainArgs;
use crate::error::{msg, CliError};
use crate::train::RESULTS_FILE;
use clap::{Args, Parser, Subcommand};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Tables that can be reproduced.
#[derive(Subcommand)]
pub enum ReproduceCommand {
    /// Table 1: % test error on distorted MNIST (R, RTS, P, E) and TC.
    Table1(Table1Args),
    /// Appendix A.1: % test error on MNIST addition (two transformers in parallel).
    Addition(crate::reproduce_addition::AdditionArgs),
}

/// Arguments of `warpgrad reproduce table1`.
#[derive(Args, Clone)]
pub struct Table1Args {
    /// Data sets (comma-separated): r, rts, p, e, tc.
    #[arg(long, value_delimiter = ',', default_value = "r,rts,p,e,tc")]
    pub datasets: Vec<String>,
    /// Models (comma-separated); default: the paper's rows (TC: fcn, cnn, st-fcn-aff, st-cnn-aff).
    #[arg(long, value_delimiter = ',')]
    pub models: Option<Vec<String>>,
    /// Root folder of the runs.
    #[arg(long, default_value = "runs/table1")]
    pub runs: PathBuf,
    /// Seeds, budget, output and what to do: shared with `reproduce addition`.
    #[command(flatten)]
    pub sweep: SweepArgs,
    // -- Sweeps on Slurm (bins/src/slurm.rs) --
    /// Write an sbatch job-array script (one run per array task) to FILE
    /// instead of running; then `sbatch FILE`, and `--collect` when done.
    #[arg(long, value_name = "FILE")]
    pub slurm: Option<PathBuf>,
    /// With --slurm: CPUs per array task (each run's --threads unless given).
    #[arg(long, default_value_t = 2)]
    pub slurm_cpus: usize,
    /// With --slurm: time limit per task (sbatch --time, e.g. 00:40:00).
    #[arg(long)]
    pub slurm_time: Option<String>,
}

/// The options every `reproduce` table shares: which seeds and budget, where
/// the table goes, and whether to print, estimate, collect or run.
#[derive(Args, Clone)]
pub struct SweepArgs {
    /// Seeds per cell (1, 2, ..., N).
    #[arg(long, default_value_t = 1)]
    pub seeds: u64,
    /// quick (a few minutes a run on 2 cores) or full (at most ~30).
    #[arg(long, default_value = "quick")]
    pub budget: String,
    /// Where to write the table (.md and .csv) and archive the finished runs.
    #[arg(long, default_value = "docs/results")]
    pub results: PathBuf,
    /// Print one `warpgrad train` command per run instead of running them.
    #[arg(long)]
    pub print_commands: bool,
    /// Only collect finished runs into the table (after running the printed commands elsewhere).
    #[arg(long)]
    pub collect: bool,
    /// Folder with the MNIST files.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Worker threads per run.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the predicted machine time of every run (from images/s measured now, or read from finished runs) instead of running them.
    #[arg(long)]
    pub estimate: bool,
    /// Write the table even if it holds fewer finished runs than the one it replaces.
    #[arg(long)]
    pub force: bool,
    /// Train each run on the first N training images only (to try the
    /// machinery in seconds; the table is then not the paper's).
    #[arg(long)]
    pub train_size: Option<usize>,
    /// Test each run on the first N test images only.
    #[arg(long)]
    pub test_size: Option<usize>,
}

/// The paper's Table 1 (% error): (dataset, model) → value.
const PAPER: &[(&str, &str, f32)] = &[
    ("r", "fcn", 2.1),
    ("rts", "fcn", 5.2),
    ("p", "fcn", 3.1),
    ("e", "fcn", 3.2),
    ("r", "cnn", 1.2),
    ("rts", "cnn", 0.8),
    ("p", "cnn", 1.5),
    ("e", "cnn", 1.4),
    ("r", "st-fcn-aff", 1.2),
    ("r", "st-fcn-proj", 1.3),
    ("r", "st-fcn-tps", 1.1),
    ("rts", "st-fcn-aff", 0.8),
    ("rts", "st-fcn-proj", 0.9),
    ("rts", "st-fcn-tps", 0.8),
    ("p", "st-fcn-aff", 1.5),
    ("p", "st-fcn-proj", 1.4),
    ("p", "st-fcn-tps", 1.4),
    ("e", "st-fcn-aff", 2.7),
    ("e", "st-fcn-proj", 2.6),
    ("e", "st-fcn-tps", 2.4),
    ("r", "st-cnn-aff", 0.7),
    ("r", "st-cnn-proj", 0.8),
    ("r", "st-cnn-tps", 0.7),
    ("rts", "st-cnn-aff", 0.5),
    ("rts", "st-cnn-proj", 0.6),
    ("rts", "st-cnn-tps", 0.5),
    ("p", "st-cnn-aff", 0.8),
    ("p", "st-cnn-proj", 0.8),
    ("p", "st-cnn-tps", 0.8),
    ("e", "st-cnn-aff", 1.2),
    ("e", "st-cnn-proj", 1.3),
    ("e", "st-cnn-tps", 1.1),
    ("tc", "fcn", 13.2),
    ("tc", "cnn", 3.5),
    ("tc", "st-fcn-aff", 2.0),
    ("tc", "st-cnn-aff", 1.7),
];

/// The paper's value of a cell.
pub fn paper_error(dataset: &str, model: &str) -> Option<f32> {
    PAPER
        .iter()
        .find(|(d, m, _)| *d == dataset && *m == model)
        .map(|t| t.2)
}

/// Epochs of a run for a budget. The full budget is the default recipe's
/// ([`crate::recipe::full_epochs`]: a run within about 25 minutes at 2
/// threads on a 2-core AVX2 machine); the quick one keeps a run under ~5.
fn epochs(budget: &str, dataset: &str, model: &str) -> Result<u64, CliError> {
    match (budget, dataset) {
        ("quick", "tc") => Ok(2),
        ("quick", _) => Ok(3),
        ("full", _) => Ok(crate::recipe::full_epochs(dataset, model)),
        _ => Err(msg(format!(
            "unknown budget '{budget}': expected quick or full"
        ))),
    }
}

/// Epochs between evaluations of the test set: about ten evaluations a run,
/// so that evaluating costs under 5% of a long run.
fn eval_every(epochs: u64) -> u64 {
    (epochs / 10).max(1)
}

fn default_models(dataset: &str) -> Vec<String> {
    let all: &[&str] = if dataset == "tc" {
        &["fcn", "cnn", "st-fcn-aff", "st-cnn-aff"]
    } else {
        &stn::PAPER_MODELS
    };
    all.iter().map(|s| s.to_string()).collect()
}

/// One run of the matrix.
pub(crate) struct Cell {
    pub dataset: String,
    pub model: String,
    pub seed: u64,
    /// Epochs of the budget (a finished run of other epochs does not count).
    pub epochs: u64,
    /// The run folder.
    pub dir: PathBuf,
    /// The `warpgrad train` arguments of the run.
    pub args: Vec<String>,
}

fn cells(a: &Table1Args) -> Result<Vec<Cell>, CliError> {
    let mut out = Vec::new();
    for d in &a.datasets {
        let d = d.to_ascii_lowercase();
        crate::run::parse_variant(&d)?;
        let models = a.models.clone().unwrap_or_else(|| default_models(&d));
        for m in models {
            if !stn::PAPER_MODELS.contains(&m.as_str()) {
                return Err(stn::UnknownModel(m).into());
            }
            let ep = epochs(&a.sweep.budget, &d, &m)?;
            for seed in 1..=a.sweep.seeds {
                let dir = a
                    .runs
                    .join(&a.sweep.budget)
                    .join(format!("{d}-{m}-s{seed}"));
                let run = RunFlags {
                    data_dir: &a.sweep.data_dir,
                    threads: a.sweep.threads,
                    train_size: a.sweep.train_size,
                    test_size: a.sweep.test_size,
                };
                out.push(Cell::new(&d, &m, seed, ep, dir, &run));
            }
        }
    }
    Ok(out)
}

/// The `reproduce` flags that every run's `train` line carries.
pub(crate) struct RunFlags<'a> {
    pub data_dir: &'a Option<PathBuf>,
    pub threads: Option<usize>,
    pub train_size: Option<usize>,
    pub test_size: Option<usize>,
}

impl Cell {
    /// The run of `model` on `dataset` with `seed` for `epochs`, in `dir`:
    /// its `warpgrad train` words (resumable either way).
    pub(crate) fn new(
        dataset: &str,
        model: &str,
        seed: u64,
        epochs: u64,
        dir: PathBuf,
        run: &RunFlags,
    ) -> Cell {
        let mut args = vec![
            "train".to_string(),
            format!("--dataset={dataset}"),
            format!("--model={model}"),
            format!("--epochs={epochs}"),
            format!("--eval-every={}", eval_every(epochs)),
            format!("--seed={seed}"),
            format!("--out={}", dir.display()),
            "--resume-or-start".to_string(),
        ];
        if let Some(dd) = run.data_dir {
            args.push(format!("--data-dir={}", dd.display()));
        }
        if let Some(t) = run.threads {
            args.push(format!("--threads={t}"));
        }
        if let Some(n) = run.train_size {
            args.push(format!("--train-size={n}"));
        }
        if let Some(n) = run.test_size {
            args.push(format!("--test-size={n}"));
        }
        Cell {
            dataset: dataset.to_string(),
            model: model.to_string(),
            seed,
            epochs,
            dir,
            args,
        }
    }
}

/// With `collect`, archives the runs finished elsewhere (printed commands,
/// Slurm), keeping their small files with the results before their folders
/// can be lost; otherwise trains every run not yet finished (resuming a
/// stopped one) and archives it.
pub(crate) fn train_or_collect(
    collect: bool,
    cells: &[Cell],
    finished: &dyn Fn(&Cell) -> Option<Done>,
    archive: &dyn Fn(&Cell) -> Result<(), CliError>,
) -> Result<(), CliError> {
    if collect {
        for c in cells {
            if c.dir.join(RESULTS_FILE).is_file() {
                archive(c)?;
            }
        }
        return Ok(());
    }
    for (i, c) in cells.iter().enumerate() {
        if finished(c).is_some() {
            eprintln!(
                "[{}/{}] {} done, skipped",
                i + 1,
                cells.len(),
                c.dir.display()
            );
            continue;
        }
        eprintln!(
            "[{}/{}] {} {} seed {}",
            i + 1,
            cells.len(),
            c.dataset,
            c.model,
            c.seed
        );
        let t0 = Instant::now();
        crate::train::run(&train_args(&c.args)?)?;
        archive(c)?;
        eprintln!("    {:.0} s", t0.elapsed().as_secs_f64());
    }
    Ok(())
}

/// Parses `warpgrad train` arguments (the same words `--print-commands` prints).
#[derive(Parser)]
struct TrainLine {
    #[command(subcommand)]
    cmd: TrainOnly,
}

#[derive(Subcommand)]
enum TrainOnly {
    Train(TrainArgs),
}

fn train_args(words: &[String]) -> Result<TrainArgs, CliError> {
    let argv = std::iter::once("warpgrad".to_string()).chain(words.iter().cloned());
    let TrainOnly::Train(a) = TrainLine::try_parse_from(argv)
        .map_err(|e| msg(format!("internal: bad train arguments: {e}")))?
        .cmd;
    Ok(a)
}

/// `warpgrad reproduce`.
pub fn run(c: &ReproduceCommand) -> Result<(), CliError> {
    let a = match c {
        ReproduceCommand::Table1(a) => a,
        ReproduceCommand::Addition(a) => return crate::reproduce_addition::run(a),
    };
    let cells = cells(a)?;
    if a.sweep.print_commands {
        let exe = "warpgrad";
        for c in &cells {
            println!("{exe} {}", c.args.join(" "));
        }
        return Ok(());
    }
    if a.sweep.estimate {
        return estimate(a, &cells);
    }
    if let Some(path) = &a.slurm {
        return write_slurm(a, &cells, path);
    }
    train_or_collect(a.sweep.collect, &cells, &|c| read_result(a, c), &|c| {
        archive(a, c)
    })?;
    write_table(a, &cells)
}

/// Results of one finished run.
pub(crate) struct Done {
    pub error: f64,
    pub epochs: u64,
    /// "1 thread, avx2": how the run was timed.
    pub timed: String,
    pub wall_s: f64,
    pub rate: f64,
}

/// Where a finished run's small files are kept with the results (committed,
/// unlike the run folders with their checkpoints).
fn archive_dir(a: &Table1Args, c: &Cell) -> PathBuf {
    archive_dir_in(&a.sweep.results, "table1", &a.sweep.budget, c)
}

/// `<results>/runs/<table>/<budget>/<run folder name>`.
pub(crate) fn archive_dir_in(results: &Path, table: &str, budget: &str, c: &Cell) -> PathBuf {
    let name = c.dir.file_name().map(PathBuf::from).unwrap_or_default();
    results.join("runs").join(table).join(budget).join(name)
}

/// Files of a finished run copied to its archive folder.
const ARCHIVED: [&str; 3] = [RESULTS_FILE, crate::train::METRICS_FILE, "config.json"];

/// Copies a finished run's results, metrics and configuration into its
/// archive folder.
fn archive(a: &Table1Args, c: &Cell) -> Result<(), CliError> {
    archive_to(&archive_dir(a, c), c)
}

/// Copies a finished run's results, metrics and configuration into `to`.
pub(crate) fn archive_to(to: &Path, c: &Cell) -> Result<(), CliError> {
    fs::create_dir_all(to).map_err(|e| msg(format!("cannot create {}: {e}", to.display())))?;
    for f in ARCHIVED {
        let text = fs::read_to_string(c.dir.join(f))
            .map_err(|e| msg(format!("cannot read {}: {e}", c.dir.join(f).display())))?;
        crate::train::write_atomic(&to.join(f), &text)?;
    }
    Ok(())
}

/// The results of a finished run: from its run folder, or from its archive.
fn read_result(a: &Table1Args, c: &Cell) -> Option<Done> {
    read_result_in(c, &archive_dir(a, c))
}

/// The results of a finished run: from its run folder, or from `archive`.
/// A run of other epochs than the cell's (a budget changed since) does not
/// count, so a table never mixes budgets; a note on stderr names it.
pub(crate) fn read_result_in(c: &Cell, archive: &Path) -> Option<Done> {
    let (text, from) = match fs::read_to_string(c.dir.join(RESULTS_FILE)) {
        Ok(t) => (t, c.dir.clone()),
        Err(_) => (
            fs::read_to_string(archive.join(RESULTS_FILE)).ok()?,
            archive.to_path_buf(),
        ),
    };
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let epochs = v["epochs"].as_u64().unwrap_or(0);
    if epochs != c.epochs {
        eprintln!(
            "note: {} ran {epochs} epochs, this budget {}: not counted",
            from.display(),
            c.epochs
        );
        return None;
    }
    Some(Done {
        error: v["test_error"].as_f64()? * 100.0,
        epochs,
        timed: match (v["threads"].as_u64(), v["kernels"].as_str()) {
            (Some(1), Some(k)) => format!("1 thread, {k}"),
            (Some(t), Some(k)) => format!("{t} threads, {k}"),
            _ => "–".to_string(),
        },
        wall_s: v["wall_s"].as_f64()?,
        rate: v["images_per_sec"].as_f64().unwrap_or(0.0),
    })
}

/// Mean and sample standard deviation of the errors, and the mean wall time.
pub(crate) fn summary(runs: &[Done]) -> (f64, f64, f64) {
    let n = runs.len() as f64;
    let mean = runs.iter().map(|r| r.error).sum::<f64>() / n;
    let std = if runs.len() > 1 {
        (runs.iter().map(|r| (r.error - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (mean, std, runs.iter().map(|r| r.wall_s).sum::<f64>() / n)
}

/// "mean ± std" over several runs, the value alone for one.
pub(crate) fn ours(runs: &[Done]) -> String {
    let (mean, std, _) = summary(runs);
    if runs.len() > 1 {
        format!("{mean:.2} ± {std:.2}")
    } else {
        format!("{mean:.2}")
    }
}

/// How the runs of a cell were timed ("1 thread, avx2"), each way once.
fn timed(runs: &[Done]) -> String {
    let mut ways: Vec<&str> = Vec::new();
    for r in runs {
        if !ways.contains(&r.timed.as_str()) {
            ways.push(&r.timed);
        }
    }
    ways.join("; ")
}

/// The number of runs a written `table1.csv` counts (0 if there is none).
pub(crate) fn runs_in_csv(path: &Path) -> usize {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(3)?.parse::<usize>().ok())
        .sum()
}

/// Prints the predicted machine time of each run of the matrix and in all.
fn estimate(a: &Table1Args, cells: &[Cell]) -> Result<(), CliError> {
    estimate_cells(cells, a.sweep.threads, &|c| read_result(a, c))
}

/// Prints the predicted machine time of each run of `cells` and in all, from
/// the images/s of a finished run (`read`) or measured now.
pub(crate) fn estimate_cells(
    cells: &[Cell],
    threads: Option<usize>,
    read: &dyn Fn(&Cell) -> Option<Done>,
) -> Result<(), CliError> {
    let mut total = 0.0;
    let mut rates: Vec<((String, String), f64, &str)> = Vec::new();
    println!("| data set | model | seed | epochs | images/s | source | hours |");
    println!("|---|---|---|---|---|---|---|");
    for c in cells {
        let key = (c.dataset.clone(), c.model.clone());
        let known = rates
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, r, s)| (*r, *s));
        let (rate, source) = match known {
            Some(r) => r,
            None => {
                let r = match read(c) {
                    Some(d) if d.rate > 0.0 => (d.rate, "finished run"),
                    _ => (measure_rate(&c.dataset, &c.model, threads)?, "measured now"),
                };
                rates.push((key, r.0, r.1));
                r
            }
        };
        let targs = train_args(&c.args)?;
        let cfg = targs.config(60_000, 10_000);
        // Evaluating 10,000 digits costs about a third of training on them.
        let evals = cfg.epochs.div_ceil(cfg.eval_every) as f64;
        let images = cfg.epochs as f64 * 60_000.0 + evals * 10_000.0 / 3.0;
        let hours = images / rate / 3600.0;
        total += hours;
        println!(
            "| {} | {} | {} | {} | {rate:.0} | {source} | {hours:.2} |",
            c.dataset.to_uppercase(),
            c.model,
            c.seed,
            cfg.epochs
        );
    }
    println!(
        "\n{} runs: {total:.1} hours of machine time at {} threads a run ({})",
        cells.len(),
        threads.map_or(rayon::current_num_threads(), |t| t),
        stn::sampler::kernel_build()
    );
    Ok(())
}

/// Training images per second of a model on a data set, from a few timed
/// steps of batch 64 after two warm-up steps.
pub(crate) fn measure_rate(
    dataset: &str,
    model: &str,
    threads: Option<usize>,
) -> Result<f64, CliError> {
    eprintln!("measuring {model} on {dataset}...");
    engine::parallel::in_pool(threads, || time_steps(dataset, model))
}

/// Times the steps of [`measure_rate`] on the current thread pool.
fn time_steps(dataset: &str, model: &str) -> Result<f64, CliError> {
    use engine::{Tape, Var};
    use layers::{Ctx, Module, Optimizer};
    let variant = crate::run::parse_variant(dataset)?;
    let mut net = crate::run::build(model, variant, 1)?;
    let (train, _) = crate::run::load_splits(&crate::run::data_dir(&None), Some(640), Some(1))?;
    let data = datasets::DistortedMnist::new(variant, &train, &train, 1);
    let mut opt = layers::Adam::new();
    let run = |net: &mut stn::Model, opt: &mut layers::Adam, step: u64| -> Result<(), CliError> {
        let idx: Vec<usize> = (0..64)
            .map(|i| (i + 64 * step as usize) % train.len())
            .collect();
        let batch = data.batch(0, &idx);
        let labels: Vec<usize> = batch.labels.iter().map(|&l| l as usize).collect();
        let tape = Tape::new();
        let ctx = Ctx::train(&tape, 1, step);
        let loss = layers::cross_entropy(&net.forward(&Var::constant(batch.images), &ctx), &labels);
        let grads = ctx.gradients(&loss.backward(), &net.params());
        drop(tape);
        opt.step(&mut net.params_mut(), &grads, 1e-3)
            .map_err(|e| msg(e.to_string()))?;
        Ok(())
    };
    for s in 0..2 {
        run(&mut net, &mut opt, s)?;
    }
    let t0 = Instant::now();
    let steps = 6;
    for s in 2..2 + steps {
        run(&mut net, &mut opt, s)?;
    }
    Ok(64.0 * steps as f64 / t0.elapsed().as_secs_f64())
}

/// Writes `table1.md` (a section per budget: the paper's layout, models ×
/// data sets, "ours ± std (paper)", then every cell with its wall time) and
/// `table1.csv`, from the finished runs of the selected cells of both budgets.
fn write_table(a: &Table1Args, _cells: &[Cell]) -> Result<(), CliError> {
    let mut md = String::from(
        "# Table 1: distorted MNIST, % test error\n\n\
         Written by `warpgrad reproduce table1` from the finished runs under \
         `runs/table1/`; ours is the mean ± standard deviation over seeds (runs), \
         the paper's value in parentheses; docs/results/README.md discusses them. \
         See docs/reproduce.md for the commands. Wall time and images/s are \
         the runs' own, with the threads and kernel build they ran on (sweeps run \
         two 1-thread runs side by side); docs/results/README.md gives the \
         2-thread times of an idle machine.\n",
    );
    let mut csv =
        String::from("dataset,model,budget,runs,mean_error,std_error,paper_error,mean_wall_s\n");
    let (mut done, mut total) = (0, 0);
    for budget in ["full", "quick"] {
        let mut b = a.clone();
        b.sweep.budget = budget.to_string();
        let cells = cells(&b)?;
        total += cells.len();
        // (dataset, model) → finished runs, in the matrix's order.
        let mut by: Vec<((String, String), Vec<Done>)> = Vec::new();
        for c in &cells {
            let key = (c.dataset.clone(), c.model.clone());
            if !by.iter().any(|(k, _)| *k == key) {
                by.push((key.clone(), Vec::new()));
            }
            if let Some(d) = read_result(&b, c) {
                if let Some((_, v)) = by.iter_mut().find(|(k, _)| *k == key) {
                    v.push(d);
                }
                done += 1;
            }
        }
        if by.iter().all(|(_, v)| v.is_empty()) {
            continue;
        }
        let datasets: Vec<&String> = b.datasets.iter().collect();
        let about = if budget == "full" {
            "the default recipe, epochs per cell in the second table".to_string()
        } else {
            format!(
                "{} epochs; TC {}",
                epochs(budget, "r", "")?,
                epochs(budget, "tc", "")?
            )
        };
        let _ = writeln!(md, "\n## Budget `{budget}` ({about})\n");
        let _ = write!(md, "| model |");
        for d in &datasets {
            let _ = write!(md, " {} |", d.to_uppercase());
        }
        let _ = write!(md, "\n|---|");
        for _ in &datasets {
            let _ = write!(md, "---|");
        }
        md.push('\n');
        for m in stn::PAPER_MODELS {
            if !by.iter().any(|((_, bm), v)| bm == m && !v.is_empty()) {
                continue;
            }
            let _ = write!(md, "| {m} |");
            for d in &datasets {
                let cell = by.iter().find(|((bd, bm), _)| bd == *d && bm == m);
                let paper = paper_error(d, m).map_or("–".to_string(), |p| format!("{p:.1}"));
                match cell {
                    Some((_, runs)) if !runs.is_empty() => {
                        let _ = write!(md, " {} ({paper}) |", ours(runs));
                    }
                    _ => {
                        let _ = write!(md, " – ({paper}) |");
                    }
                }
            }
            md.push('\n');
        }
        let _ = writeln!(
            md,
            "\n| data set | model | ours | paper | runs | epochs | wall time / run | images/s | timed on |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
        for ((d, m), runs) in &by {
            if runs.is_empty() {
                continue;
            }
            let (mean, std, wall) = summary(runs);
            let paper = paper_error(d, m);
            let p = paper.map_or("–".to_string(), |p| format!("{p:.1}"));
            let _ = writeln!(
                md,
                "| {} | {m} | {} | {p} | {} | {} | {wall:.0} s | {:.0} | {} |",
                d.to_uppercase(),
                ours(runs),
                runs.len(),
                runs[0].epochs,
                runs.iter().map(|r| r.rate).sum::<f64>() / runs.len() as f64,
                timed(runs)
            );
            let _ = writeln!(
                csv,
                "{d},{m},{budget},{},{mean:.4},{std:.4},{},{wall:.1}",
                runs.len(),
                paper.map_or(String::new(), |p| p.to_string())
            );
        }
    }
    write_tables(
        &a.sweep,
        "table1",
        &md,
        &csv,
        (done, total),
        &[a.runs.clone(), a.sweep.results.join("runs")],
    )
}

/// Writes `<results>/<stem>.md` and `.csv` (atomically) from `done` of
/// `total` finished runs and prints the table, unless that would replace a
/// table holding more finished runs (or any, with none found now) without
/// `--force`: the refusal names the folders searched.
pub(crate) fn write_tables(
    sweep: &SweepArgs,
    stem: &str,
    md: &str,
    csv: &str,
    (done, total): (usize, usize),
    searched: &[PathBuf],
) -> Result<(), CliError> {
    let md_path = sweep.results.join(format!("{stem}.md"));
    let csv_path = sweep.results.join(format!("{stem}.csv"));
    let before = runs_in_csv(&csv_path);
    if done == 0 || (done < before && !sweep.force) {
        let searched: Vec<String> = searched.iter().map(|p| p.display().to_string()).collect();
        return Err(msg(format!(
            "{} holds {before} finished runs and only {done} are found now (under {}): not overwritten (--force writes it anyway)",
            csv_path.display(),
            searched.join(" and ")
        )));
    }
    fs::create_dir_all(&sweep.results)
        .map_err(|e| msg(format!("cannot create {}: {e}", sweep.results.display())))?;
    crate::train::write_atomic(&md_path, md)?;
    crate::train::write_atomic(&csv_path, csv)?;
    print!("{md}");
    eprintln!(
        "{done} of {total} runs (both budgets) finished; wrote {} and {}",
        md_path.display(),
        csv_path.display()
    );
    Ok(())
}

// ------------------------------------------------------------- Slurm

/// `--slurm FILE`: the selected runs as an sbatch job array.
fn write_slurm(a: &Table1Args, cells: &[Cell], path: &Path) -> Result<(), CliError> {
    let here = std::env::current_dir().map_err(|e| msg(format!("current folder: {e}")))?;
    // The binary that wrote the script runs it, wherever PATH points.
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "warpgrad".to_string());
    let tasks: Vec<crate::slurm::SlurmTask> = cells
        .iter()
        .map(|c| {
            let mut argv = vec![exe.clone()];
            argv.extend(c.args.iter().cloned());
            if a.sweep.threads.is_none() {
                argv.push(format!("--threads={}", a.slurm_cpus));
            }
            crate::slurm::SlurmTask {
                argv,
                done_file: Some(c.dir.join(RESULTS_FILE)),
            }
        })
        .collect();
    let opts = crate::slurm::SlurmOptions {
        job_name: format!("warpgrad-table1-{}", a.sweep.budget),
        cpus_per_task: a.slurm_cpus,
        time: a.slurm_time.clone(),
        log_dir: here.join(a.runs.join("slurm-logs")),
        workdir: here,
    };
    crate::slurm::write_job_array(path, &tasks, &opts)?;
    eprintln!(
        "wrote {} ({} array tasks); submit with: sbatch {}; then: warpgrad reproduce table1 --collect with the same selection",
        path.display(),
        tasks.len(),
        path.display()
    );
    Ok(())
}
