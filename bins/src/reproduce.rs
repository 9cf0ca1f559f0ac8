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
    /// Seeds per cell (1, 2, ..., N).
    #[arg(long, default_value_t = 1)]
    pub seeds: u64,
    /// quick (at most ~5 minutes a run on 2 cores) or full (at most ~30).
    #[arg(long, default_value = "quick")]
    pub budget: String,
    /// Root folder of the runs.
    #[arg(long, default_value = "runs/table1")]
    pub runs: PathBuf,
    /// Where to write table1.md and table1.csv.
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
    /// Train each run on the first N training images only (to try the sweep
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

/// Epochs of a run for a budget. The full budget keeps a run under ~30
/// minutes on 2 cores, the quick one under ~5 (see docs/results/table1.md
/// for the measured times).
fn epochs(budget: &str, dataset: &str) -> Result<u64, CliError> {
    match (budget, dataset) {
        ("quick", "tc") => Ok(2),
        ("quick", _) => Ok(3),
        ("full", "tc") => Ok(8),
        ("full", _) => Ok(20),
        _ => Err(msg(format!(
            "unknown budget '{budget}': expected quick or full"
        ))),
    }
}

fn default_models(dataset: &str) -> Vec<String> {
    let all: &[&str] = if dataset == "tc" {
        &["fcn", "cnn", "st-fcn-aff", "st-cnn-aff"]
    } else {
        &stn::MODEL_NAMES
    };
    all.iter().map(|s| s.to_string()).collect()
}

/// One run of the matrix.
struct Cell {
    dataset: String,
    model: String,
    seed: u64,
    dir: PathBuf,
    args: Vec<String>,
}

fn cells(a: &Table1Args) -> Result<Vec<Cell>, CliError> {
    let mut out = Vec::new();
    for d in &a.datasets {
        let d = d.to_ascii_lowercase();
        crate::run::parse_variant(&d)?;
        let ep = epochs(&a.budget, &d)?;
        let models = a.models.clone().unwrap_or_else(|| default_models(&d));
        for m in models {
            if !stn::MODEL_NAMES.contains(&m.as_str()) {
                return Err(stn::UnknownModel(m).into());
            }
            for seed in 1..=a.seeds {
                let dir = a.runs.join(&a.budget).join(format!("{d}-{m}-s{seed}"));
                let mut args = vec![
                    "train".to_string(),
                    format!("--dataset={d}"),
                    format!("--model={m}"),
                    format!("--epochs={ep}"),
                    format!("--seed={seed}"),
                    format!("--out={}", dir.display()),
                    "--resume".to_string(),
                ];
                if let Some(dd) = &a.data_dir {
                    args.push(format!("--data-dir={}", dd.display()));
                }
                if let Some(t) = a.threads {
                    args.push(format!("--threads={t}"));
                }
                if let Some(n) = a.train_size {
                    args.push(format!("--train-size={n}"));
                }
                if let Some(n) = a.test_size {
                    args.push(format!("--test-size={n}"));
                }
                out.push(Cell {
                    dataset: d.clone(),
                    model: m.clone(),
                    seed,
                    dir,
                    args,
                });
            }
        }
    }
    Ok(out)
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
    let ReproduceCommand::Table1(a) = c;
    let cells = cells(a)?;
    if a.print_commands {
        let exe = "warpgrad";
        for c in &cells {
            println!("{exe} {}", c.args.join(" "));
        }
        return Ok(());
    }
    if let Some(path) = &a.slurm {
        return write_slurm(a, &cells, path);
    }
    if !a.collect {
        for (i, c) in cells.iter().enumerate() {
            if c.dir.join(RESULTS_FILE).exists() {
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
            eprintln!("    {:.0} s", t0.elapsed().as_secs_f64());
        }
    }
    write_table(a, &cells)
}

/// Results of one finished run.
struct Done {
    error: f64,
    wall_s: f64,
}

fn read_result(dir: &Path) -> Option<Done> {
    let text = fs::read_to_string(dir.join(RESULTS_FILE)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(Done {
        error: v["test_error"].as_f64()? * 100.0,
        wall_s: v["wall_s"].as_f64()?,
    })
}

/// Mean and sample standard deviation of the errors, and the mean wall time.
fn summary(runs: &[Done]) -> (f64, f64, f64) {
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
fn ours(runs: &[Done]) -> String {
    let (mean, std, _) = summary(runs);
    if runs.len() > 1 {
        format!("{mean:.2} ± {std:.2}")
    } else {
        format!("{mean:.2}")
    }
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
         See docs/reproduce.md for the commands.\n",
    );
    let mut csv =
        String::from("dataset,model,budget,runs,mean_error,std_error,paper_error,mean_wall_s\n");
    let (mut done, mut total) = (0, 0);
    for budget in ["full", "quick"] {
        let mut b = a.clone();
        b.budget = budget.to_string();
        let cells = cells(&b)?;
        total += cells.len();
        // (dataset, model) → finished runs, in the matrix's order.
        let mut by: Vec<((String, String), Vec<Done>)> = Vec::new();
        for c in &cells {
            let key = (c.dataset.clone(), c.model.clone());
            if !by.iter().any(|(k, _)| *k == key) {
                by.push((key.clone(), Vec::new()));
            }
            if let Some(d) = read_result(&c.dir) {
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
        let _ = writeln!(
            md,
            "\n## Budget `{budget}` ({} epochs; TC {})\n",
            epochs(budget, "r")?,
            epochs(budget, "tc")?
        );
        let _ = write!(md, "| model |");
        for d in &datasets {
            let _ = write!(md, " {} |", d.to_uppercase());
        }
        let _ = write!(md, "\n|---|");
        for _ in &datasets {
            let _ = write!(md, "---|");
        }
        md.push('\n');
        for m in stn::MODEL_NAMES {
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
            "\n| data set | model | ours | paper | runs | wall time / run |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|");
        for ((d, m), runs) in &by {
            if runs.is_empty() {
                continue;
            }
            let (mean, std, wall) = summary(runs);
            let paper = paper_error(d, m);
            let p = paper.map_or("–".to_string(), |p| format!("{p:.1}"));
            let _ = writeln!(
                md,
                "| {} | {m} | {} | {p} | {} | {wall:.0} s |",
                d.to_uppercase(),
                ours(runs),
                runs.len()
            );
            let _ = writeln!(
                csv,
                "{d},{m},{budget},{},{mean:.4},{std:.4},{},{wall:.1}",
                runs.len(),
                paper.map_or(String::new(), |p| p.to_string())
            );
        }
    }
    fs::create_dir_all(&a.results)
        .map_err(|e| msg(format!("cannot create {}: {e}", a.results.display())))?;
    let md_path = a.results.join("table1.md");
    let csv_path = a.results.join("table1.csv");
    crate::train::write_atomic(&md_path, &md)?;
    crate::train::write_atomic(&csv_path, &csv)?;
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
            if a.threads.is_none() {
                argv.push(format!("--threads={}", a.slurm_cpus));
            }
            crate::slurm::SlurmTask {
                argv,
                done_file: Some(c.dir.join(RESULTS_FILE)),
            }
        })
        .collect();
    let opts = crate::slurm::SlurmOptions {
        job_name: format!("warpgrad-table1-{}", a.budget),
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
