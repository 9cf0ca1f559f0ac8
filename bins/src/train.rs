//! `warpgrad train`: the training loop.
//!
//! Everything random comes from the run's seed: the weights, the order of
//! each epoch (`derive(seed, [SHUFFLE, epoch])`), every distorted sample
//! (`derive(seed, [variant, epoch, index])`) and dropout (`(seed, step)`).
//! A checkpoint therefore needs only the parameters, the optimiser state, the
//! step and the epoch's running sums to continue exactly where it stopped:
//! a resumed run writes the same checkpoint bytes as an uninterrupted one.

use crate::config::{TrainArgs, TrainConfig};
use crate::error::{msg, CliError};
use crate::run::{self, CHECKPOINT_FILE};
use datasets::{DistortedMnist, Mnist};
use engine::rng::derive;
use engine::{Tape, Var};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use layers::{Checkpoint, Ctx, Module, Optimizer};
use rand::seq::SliceRandom;
use serde_json::json;
use std::fs;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use stn::Model;

/// Stream key of the per-epoch data order.
const SHUFFLE_STREAM: u64 = 0x5f1e;
/// Metrics file of a run folder.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// Final results of a run folder.
pub const RESULTS_FILE: &str = "results.json";
/// Test images per evaluation chunk.
const EVAL_CHUNK: usize = 500;

/// Running sums of the current epoch (saved in checkpoints).
#[derive(Default, Clone, Copy)]
struct EpochSums {
    loss: f64,
    correct: u64,
    seen: u64,
}

impl EpochSums {
    fn save(&self, ck: Checkpoint) -> Checkpoint {
        ck.with_word("epoch_loss_bits", self.loss.to_bits())
            .with_word("epoch_correct", self.correct)
            .with_word("epoch_seen", self.seen)
    }

    fn load(ck: &Checkpoint) -> Result<EpochSums, CliError> {
        Ok(EpochSums {
            loss: f64::from_bits(ck.word("epoch_loss_bits")?),
            correct: ck.word("epoch_correct")?,
            seen: ck.word("epoch_seen")?,
        })
    }
}

/// The order of the training set in `epoch`.
fn epoch_order(seed: u64, epoch: u64, n: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut derive(seed, &[SHUFFLE_STREAM, epoch]));
    idx
}

/// Writes `text` to `path` atomically (see [`engine::fsio::write_atomic`]).
pub fn write_atomic(path: &Path, text: &str) -> Result<(), CliError> {
    engine::fsio::write_atomic(path, |w| w.write_all(text.as_bytes()))
        .map_err(|e| msg(format!("cannot write {}: {e}", path.display())))
}

/// Keeps the metrics lines up to `step` (the header and everything logged at
/// or before the checkpoint), so a resumed run appends exactly what an
/// uninterrupted run would have written.
fn truncate_metrics(path: &Path, step: u64) -> Result<(), CliError> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let mut keep = String::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| msg(format!("{}: a line is not JSON ({e})", path.display())))?;
        if v["step"].as_u64().is_none_or(|s| s <= step) {
            keep.push_str(line);
            keep.push('\n');
        }
    }
    write_atomic(path, &keep)
}

struct Metrics {
    file: fs::File,
    path: PathBuf,
}

impl Metrics {
    fn open(path: &Path) -> Result<Metrics, CliError> {
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| msg(format!("cannot open {}: {e}", path.display())))?;
        Ok(Metrics {
            file,
            path: path.to_path_buf(),
        })
    }

    fn write(&mut self, v: serde_json::Value) -> Result<(), CliError> {
        writeln!(self.file, "{v}")
            .and_then(|_| self.file.flush())
            .map_err(|e| msg(format!("cannot write {}: {e}", self.path.display())))
    }
}

fn progress(total: u64, start: u64, quiet: bool) -> ProgressBar {
    let pb = ProgressBar::new(total);
    if quiet || !std::io::stderr().is_terminal() {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    pb.set_style(
        ProgressStyle::with_template("{prefix} [{bar:28.cyan/blue}] {pos}/{len} {msg} | ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_position(start);
    pb
}

/// What a stopped run leaves behind, for its error message.
fn kept(ck_path: &Path) -> String {
    if ck_path.exists() {
        format!("the last good checkpoint {} is kept", ck_path.display())
    } else {
        "no checkpoint had been written yet".to_string()
    }
}

/// Saves a checkpoint of the run at `step`.
fn save(
    path: &Path,
    cfg_json: &str,
    model: &Model,
    opt: &dyn Optimizer,
    step: u64,
    epoch: u64,
    sums: EpochSums,
) -> Result<(), CliError> {
    let ck = Checkpoint::new(step, epoch, cfg_json)
        .with_params(&model.params())
        .with_optimizer(opt);
    sums.save(ck).save(path)?;
    Ok(())
}

/// `warpgrad train`.
pub fn run(args: &TrainArgs) -> Result<(), CliError> {
    args.validate()?;
    let variant = run::parse_variant(&args.dataset)?;
    let side = run::input_side(variant);
    // Check the model name before loading any data.
    run::build(&args.model, side, args.seed)?;
    // The full training split stays the pool of TC distractors, so the test
    // set is the same whatever --train-size (and equal to `warpgrad eval`'s).
    let (full, test) = run::load_splits(&run::data_dir(&args.data_dir), None, args.test_size)?;
    let cut;
    let train = match args.train_size {
        Some(n) if n < full.len() => {
            cut = full.take(n);
            &cut
        }
        _ => &full,
    };
    let cfg = args.config(train.len(), test.len());
    let out = args.out_dir();
    fs::create_dir_all(&out).map_err(|e| msg(format!("cannot create {}: {e}", out.display())))?;
    train_run(args, &cfg, &out, train, &full, &test)
}

fn train_run(
    args: &TrainArgs,
    cfg: &TrainConfig,
    out: &Path,
    train: &Mnist,
    full: &Mnist,
    test: &Mnist,
) -> Result<(), CliError> {
    let variant = run::parse_variant(&cfg.dataset)?;
    let side = run::input_side(variant);
    let cfg_json = serde_json::to_string(cfg).map_err(|e| msg(e.to_string()))?;
    let ck_path = out.join(CHECKPOINT_FILE);
    let metrics_path = out.join(METRICS_FILE);
    let mut model = run::build(&cfg.model, side, cfg.seed)?;
    let mut opt = cfg.optimizer();
    let (mut step, mut sums) = (0u64, EpochSums::default());

    if ck_path.exists() && !args.resume {
        return Err(msg(format!(
            "{} already holds a run: pass --resume to continue it, or --out for a new folder",
            out.display()
        )));
    }
    if args.resume && ck_path.exists() {
        let ck = Checkpoint::load(&ck_path)?;
        let saved: TrainConfig = serde_json::from_str(&ck.config).map_err(|e| {
            msg(format!(
                "{}: not a warpgrad training checkpoint ({e})",
                ck_path.display()
            ))
        })?;
        if &saved != cfg {
            return Err(msg(format!(
                "{} was trained with another configuration ({}); resume with the same arguments",
                ck_path.display(),
                ck.config
            )));
        }
        ck.restore_params(&mut model.params_mut())?;
        ck.restore_optimizer(opt.as_mut(), &model.params())?;
        step = ck.step;
        sums = EpochSums::load(&ck)?;
        truncate_metrics(&metrics_path, step)?;
        eprintln!("resuming {} at step {step}", out.display());
    } else {
        write_atomic(&out.join("config.json"), &cfg_json)?;
        write_atomic(&metrics_path, "")?;
    }
    let mut metrics = Metrics::open(&metrics_path)?;
    if step == 0 {
        metrics.write(json!({
            "type": "header",
            "version": env!("CARGO_PKG_VERSION"),
            "config": cfg,
            "params": layers::param_count(&model),
        }))?;
    }

    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        // Only the first handler of the process is installed; fine for a CLI.
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    }

    let data = DistortedMnist::new(variant, train, full, cfg.seed);
    let test_set = run::test_batch(variant, test, full);
    let schedule = cfg.schedule();
    let spe = cfg.steps_per_epoch();
    let total = cfg.total_steps();
    let pb = progress(total, step, args.quiet);
    let started = Instant::now();
    let mut images_done = 0u64;
    let mut order_epoch = u64::MAX;
    let mut order = Vec::new();

    while step < total {
        if interrupted.load(Ordering::SeqCst) || args.stop_after.is_some_and(|s| step >= s) {
            save(
                &ck_path,
                &cfg_json,
                &model,
                opt.as_ref(),
                step,
                step / spe,
                sums,
            )?;
            pb.abandon();
            let note = format!(
                "stopped at step {step}; checkpoint {} saved; continue with --resume",
                ck_path.display()
            );
            return if interrupted.load(Ordering::SeqCst) {
                Err(CliError::Interrupted(note))
            } else {
                eprintln!("{note}");
                Ok(())
            };
        }
        let epoch = step / spe;
        if epoch != order_epoch {
            order = epoch_order(cfg.seed, epoch, train.len());
            order_epoch = epoch;
        }
        let b = (step % spe) as usize * cfg.batch_size;
        let idx = &order[b..(b + cfg.batch_size).min(order.len())];
        let batch = data.batch(epoch, idx);
        let labels: Vec<usize> = batch.labels.iter().map(|&l| l as usize).collect();

        let tape = Tape::new();
        let ctx = Ctx::train(&tape, cfg.seed, step);
        let logits = model.forward(&Var::constant(batch.images), &ctx);
        let loss = layers::cross_entropy(&logits, &labels);
        let lv = loss.value().item();
        if !lv.is_finite() {
            return Err(msg(format!(
                "step {step}: the loss is {lv}; stopping ({})",
                kept(&ck_path)
            )));
        }
        let grads = ctx.gradients(&loss.backward(), &model.params());
        drop(tape);
        let lr = schedule.lr(step);
        opt.step(&mut model.params_mut(), &grads, lr)
            .map_err(|e| msg(format!("step {step}: {e}; stopping ({})", kept(&ck_path))))?;
        let correct = layers::correct_count(logits.value(), &labels) as u64;
        sums.loss += lv as f64 * labels.len() as f64;
        sums.correct += correct;
        sums.seen += labels.len() as u64;
        images_done += labels.len() as u64;
        step += 1;

        let rate = images_done as f64 / started.elapsed().as_secs_f64().max(1e-9);
        let epoch_loss = sums.loss / sums.seen as f64;
        let epoch_acc = sums.correct as f64 / sums.seen as f64;
        pb.set_position(step);
        pb.set_prefix(format!("epoch {}/{}", epoch + 1, cfg.epochs));
        pb.set_message(format!(
            "loss {epoch_loss:.4} acc {:.2}% {rate:.0} img/s",
            100.0 * epoch_acc
        ));
        if step % cfg.log_every == 0 {
            metrics.write(json!({
                "type": "log", "step": step, "epoch": epoch, "lr": lr,
                "loss": lv, "epoch_loss": epoch_loss, "epoch_acc": epoch_acc,
                "elapsed_s": started.elapsed().as_secs_f64(), "images_per_sec": rate,
            }))?;
        }
        if step % spe == 0 {
            let t0 = Instant::now();
            let (test_loss, test_error, _) =
                run::evaluate(&model, &test_set.images, &test_set.labels, EVAL_CHUNK);
            let line = format!(
                "epoch {}/{}: train loss {epoch_loss:.4}, acc {:.2}% | test error {:.2}% (loss {test_loss:.4}) | {rate:.0} img/s, eval {:.1}s",
                epoch + 1,
                cfg.epochs,
                100.0 * epoch_acc,
                100.0 * test_error,
                t0.elapsed().as_secs_f64()
            );
            pb.suspend(|| eprintln!("{line}"));
            metrics.write(json!({
                "type": "epoch", "step": step, "epoch": epoch,
                "train_loss": epoch_loss, "train_acc": epoch_acc,
                "test_loss": test_loss, "test_error": test_error,
                "elapsed_s": started.elapsed().as_secs_f64(), "images_per_sec": rate,
            }))?;
            sums = EpochSums::default();
            save(
                &ck_path,
                &cfg_json,
                &model,
                opt.as_ref(),
                step,
                epoch + 1,
                sums,
            )?;
            if step == total {
                let results = json!({
                    "dataset": cfg.dataset, "model": cfg.model, "seed": cfg.seed,
                    "epochs": cfg.epochs, "test_error": test_error, "test_loss": test_loss,
                    "params": layers::param_count(&model),
                    "wall_s": started.elapsed().as_secs_f64(), "images_per_sec": rate,
                });
                write_atomic(&out.join(RESULTS_FILE), &format!("{results:#}\n"))?;
                pb.finish_and_clear();
                println!(
                    "{} {} seed {}: test error {:.2}% after {} epochs ({:.0} s)",
                    cfg.model,
                    cfg.dataset,
                    cfg.seed,
                    100.0 * test_error,
                    cfg.epochs,
                    started.elapsed().as_secs_f64()
                );
            }
        }
    }
    Ok(())
}
