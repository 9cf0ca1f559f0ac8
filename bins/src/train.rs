//! `warpgrad train`: the training loop.
//!
//! Everything random comes from the run's seed: the weights, the order of
//! each epoch (`layers::epoch_order`), every distorted sample
//! (`derive(seed, [variant, epoch, index])`) and dropout (`(seed, step)`).
//! A checkpoint therefore needs only the parameters, the optimiser state, the
//! step and the epoch's running sums to continue exactly where it stopped:
//! a resumed run writes the same checkpoint bytes as an uninterrupted one.

use crate::config::{TrainArgs, TrainConfig};
use crate::error::{msg, CliError};
use crate::run::{self, CHECKPOINT_FILE};
use datasets::{DistortedMnist, Mnist, TEST_EPOCH};
use engine::{Tape, Var};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use layers::{Checkpoint, Ctx, Ema, Module, Optimizer};
use serde_json::json;
use std::fs;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use stn::Model;

/// Metrics file of a run folder.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// Training time up to the last checkpoint, beside it in a run folder.
pub const WALL_FILE: &str = "wall.json";
/// Final results of a run folder.
pub const RESULTS_FILE: &str = "results.json";
/// The lock a training process holds in its run folder (see [`lock_run_dir`]).
pub const LOCK_FILE: &str = "run.lock";
/// Test images per evaluation chunk.
const EVAL_CHUNK: usize = 500;
/// The fixed seed the validation digits are distorted with (like the test
/// set's, but a stream of its own).
pub const VAL_SEED: u64 = 1506;
/// Exit code of a run stopped by SIGINT or SIGTERM after saving a
/// checkpoint: `--resume` continues it (75 is EX_TEMPFAIL, "try again").
pub const EXIT_RESUMABLE: u8 = 75;

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

/// Where a run stands, saved in its checkpoints.
struct Progress {
    step: u64,
    sums: EpochSums,
    /// Training time of the earlier sittings of a resumed run.
    wall_before: f64,
    /// Training time up to now, all sittings (set before saving).
    wall: f64,
}

/// Saves a checkpoint of the run.
fn save(
    path: &Path,
    cfg_json: &str,
    model: &Model,
    opt: &dyn Optimizer,
    ema: Option<&Ema>,
    epoch: u64,
    at: &Progress,
) -> Result<(), CliError> {
    let mut ck = Checkpoint::new(at.step, epoch, cfg_json)
        .with_params(&model.params())
        .with_optimizer(opt);
    if let Some(e) = ema {
        e.attach(&mut ck.optim);
    }
    at.sums.save(ck).save(path)?;
    // The time is not in the checkpoint, whose bytes must not depend on it.
    let wall = json!({"step": at.step, "wall_s": at.wall});
    write_atomic(&path.with_file_name(WALL_FILE), &format!("{wall}\n"))
}

/// Training time of the sittings before a checkpoint at `step` (0 if unknown).
fn wall_before(ck_path: &Path, step: u64) -> f64 {
    let text = fs::read_to_string(ck_path.with_file_name(WALL_FILE)).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    match (v["step"].as_u64(), v["wall_s"].as_f64()) {
        (Some(s), Some(w)) if s == step => w,
        _ => 0.0,
    }
}

/// The data a run trains and evaluates on.
struct Splits {
    train: Mnist,
    /// The whole training split: TC's distractors come from it.
    full: Mnist,
    /// What is evaluated after every epoch: the validation digits, or the test set.
    eval: datasets::Batch,
    /// "val" or "test".
    eval_name: &'static str,
}

/// Loads MNIST and cuts the training, validation and test sets the
/// configuration asks for.
fn splits(args: &TrainArgs) -> Result<Splits, CliError> {
    let variant = run::parse_variant(&args.dataset)?;
    // The full training split stays the pool of TC distractors, so the test
    // set is the same whatever --train-size (and equal to `warpgrad eval`'s).
    let (full, test) = run::load_splits(&run::data_dir(&args.data_dir), None, args.test_size)?;
    if full.is_empty() {
        return Err(msg(format!(
            "the training split of {} holds no images: nothing to train on",
            run::data_dir(&args.data_dir).display()
        )));
    }
    if args.val_size >= full.len() {
        return Err(msg(format!(
            "--val-size {}: expected fewer than the {} training digits",
            args.val_size,
            full.len()
        )));
    }
    let pool = full.len() - args.val_size;
    // Never empty: the split holds more than --val-size digits and
    // --train-size is positive (checked by validate).
    let train = full.range(0, args.train_size.unwrap_or(pool).min(pool));
    let (eval, eval_name) = if args.val_size > 0 {
        let val = full.range(pool, full.len());
        let idx: Vec<usize> = (0..val.len()).collect();
        let b = DistortedMnist::new(variant, &val, &full, VAL_SEED).batch(TEST_EPOCH, &idx);
        (b, "val")
    } else {
        if test.is_empty() {
            return Err(msg(format!(
                "the test split of {} holds no images: nothing to evaluate",
                run::data_dir(&args.data_dir).display()
            )));
        }
        (run::test_batch(variant, &test, &full), "test")
    };
    Ok(Splits {
        train,
        full,
        eval,
        eval_name,
    })
}

/// `warpgrad train`.
pub fn run(args: &TrainArgs) -> Result<(), CliError> {
    args.validate()?;
    let variant = run::parse_variant(&args.dataset)?;
    // Check the model name and the run folder before loading any data.
    run::build(&args.model, variant, args.seed)?;
    let out = args.out_dir();
    let has_run = || out.join(CHECKPOINT_FILE).exists() || out.join(RESULTS_FILE).exists();
    if args.resume && !has_run() {
        return Err(msg(format!(
            "--resume: {} holds no run to continue (no {CHECKPOINT_FILE}); leave out --resume to start one",
            out.display()
        )));
    }
    let data = splits(args)?;
    let cfg = args.config(data.train.len(), data.eval.labels.len());
    fs::create_dir_all(&out).map_err(|e| msg(format!("cannot create {}: {e}", out.display())))?;
    let _lock = lock_run_dir(&out)?;
    // Asked again under the lock: a process that held it may have written.
    train_run(
        args,
        args.resume || (args.resume_or_start && has_run()),
        &cfg,
        &out,
        &data,
    )
}

/// Holds `<out>/run.lock` exclusively for as long as the returned file
/// lives, so that two processes never train into one folder (a sweep
/// restarted while its runs still go on, two scheduler jobs with the same
/// `--out`): the second stops with an error instead of interleaving its
/// checkpoints and metrics with the first's. The operating system releases
/// the lock when the process ends, however it ends, so none is ever stale.
pub fn lock_run_dir(out: &Path) -> Result<fs::File, CliError> {
    let path = out.join(LOCK_FILE);
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| msg(format!("cannot open {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(msg(format!(
            "{} is in use: another warpgrad process is training into it (it holds {}); wait for it or stop it, then continue with --resume",
            out.display(),
            path.display()
        ))),
        Err(fs::TryLockError::Error(e)) => {
            Err(msg(format!("cannot lock {}: {e}", path.display())))
        }
    }
}

/// The settings that differ between a saved configuration and this one.
fn config_diff(saved: &TrainConfig, now: &TrainConfig) -> String {
    let (a, b) = (serde_json::json!(saved), serde_json::json!(now));
    let mut out = Vec::new();
    if let (Some(a), Some(b)) = (a.as_object(), b.as_object()) {
        for (k, v) in b {
            if a.get(k) != Some(v) {
                let was = a.get(k).map_or("(none)".to_string(), |x| x.to_string());
                out.push(format!("{k}: saved {was}, now {v}"));
            }
        }
    }
    out.join("; ")
}

/// Evaluates the model (on its moving average if there is one).
fn evaluate(model: &mut Model, ema: Option<&Ema>, set: &datasets::Batch) -> (f32, f32) {
    let saved = ema.map(|e| e.swap_in(&mut model.params_mut()));
    let (loss, error, _) = run::evaluate(model, &set.images, &set.labels, EVAL_CHUNK);
    if let Some(v) = saved {
        Ema::restore(&mut model.params_mut(), v);
    }
    (loss, error)
}

fn train_run(
    args: &TrainArgs,
    resume: bool,
    cfg: &TrainConfig,
    out: &Path,
    data: &Splits,
) -> Result<(), CliError> {
    let variant = run::parse_variant(&cfg.dataset)?;
    let cfg_json = serde_json::to_string(cfg).map_err(|e| msg(e.to_string()))?;
    let ck_path = out.join(CHECKPOINT_FILE);
    let metrics_path = out.join(METRICS_FILE);
    let mut model = run::build(&cfg.model, variant, cfg.seed)?;
    let mut opt = cfg.optimizer();
    let mut ema = (cfg.ema > 0.0).then(|| Ema::new(cfg.ema));
    let mut at = Progress {
        step: 0,
        sums: EpochSums::default(),
        wall_before: 0.0,
        wall: 0.0,
    };

    if ck_path.exists() && !resume {
        return Err(msg(format!(
            "{} already holds a run: pass --resume to continue it, or --out for a new folder",
            out.display()
        )));
    }
    if resume && !ck_path.exists() {
        // Only results.json is left: the run is finished.
        eprintln!("{} is finished; nothing to resume", out.display());
        return Ok(());
    }
    if resume {
        let mut ck = Checkpoint::load(&ck_path)?;
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
                config_diff(&saved, cfg)
            )));
        }
        ck.restore_params(&mut model.params_mut())?;
        let ema_state = Ema::detach(&mut ck.optim);
        ck.restore_optimizer(opt.as_mut(), &model.params())?;
        if let Some(e) = ema.as_mut() {
            e.load_state(&ema_state, &model.params())
                .map_err(|k| msg(format!("{}: {k}", ck_path.display())))?;
        }
        at.step = ck.step;
        at.sums = EpochSums::load(&ck)?;
        at.wall_before = wall_before(&ck_path, at.step);
        truncate_metrics(&metrics_path, at.step)?;
        eprintln!("resuming {} at step {}", out.display(), at.step);
    } else {
        write_atomic(&out.join("config.json"), &cfg_json)?;
        write_atomic(&metrics_path, "")?;
        // The timeline's first frame: the transformer before training.
        crate::snapshot::save(out, 0, &model)?;
    }
    let mut metrics = Metrics::open(&metrics_path)?;
    let params = layers::param_count(&model);
    if at.step == 0 {
        metrics.write(json!({
            "type": "header",
            "version": env!("CARGO_PKG_VERSION"),
            "config": cfg,
            "params": params,
        }))?;
    }

    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        // SIGINT, SIGTERM and SIGHUP (the `termination` feature). Only the
        // first handler of the process is installed; fine for a CLI.
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    }

    let train = &data.train;
    let gen = DistortedMnist::new(variant, train, &data.full, cfg.seed);
    let schedule = cfg.schedule();
    let spe = cfg.steps_per_epoch();
    let total = cfg.total_steps();
    let pb = progress(total, at.step, args.quiet);
    let plain = !args.quiet && !std::io::stderr().is_terminal();
    if !args.quiet {
        eprintln!(
        "training {} on {} ({} parameters): {} images, {} epochs of {spe} steps, evaluating on {} {} digits; recipe {}; {} threads, {} kernels",
        cfg.model,
        cfg.dataset,
        params,
        train.len(),
        cfg.epochs,
        data.eval.labels.len(),
        data.eval_name,
        cfg.recipe,
        rayon::current_num_threads(),
        stn::sampler::kernel_build(),
    );
    }
    let started = Instant::now();
    let mut last_line = 0.0f64;
    let mut images_done = 0u64;
    let mut order_epoch = u64::MAX;
    let mut order = Vec::new();

    while at.step < total {
        let step = at.step;
        if interrupted.load(Ordering::SeqCst) || args.stop_after.is_some_and(|s| step >= s) {
            at.wall = at.wall_before + started.elapsed().as_secs_f64();
            save(
                &ck_path,
                &cfg_json,
                &model,
                opt.as_ref(),
                ema.as_ref(),
                step / spe,
                &at,
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
            order = layers::epoch_order(cfg.seed, epoch, train.len());
            order_epoch = epoch;
        }
        let b = (step % spe) as usize * cfg.batch_size;
        let idx = &order[b..(b + cfg.batch_size).min(order.len())];
        let batch = gen.batch(epoch, idx);
        let labels: Vec<usize> = batch.labels.iter().map(|&l| l as usize).collect();

        let tape = Tape::new();
        let ctx = Ctx::train(&tape, cfg.seed, step);
        let logits = model.forward(&Var::constant(batch.images), &ctx);
        let loss = layers::cross_entropy_smoothed(&logits, &labels, cfg.label_smoothing);
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
        if let Some(e) = ema.as_mut() {
            e.update(&model.params());
        }
        let correct = layers::correct_count(logits.value(), &labels) as u64;
        at.sums.loss += lv as f64 * labels.len() as f64;
        at.sums.correct += correct;
        at.sums.seen += labels.len() as u64;
        images_done += labels.len() as u64;
        at.step += 1;
        let step = at.step;

        let elapsed = started.elapsed().as_secs_f64();
        let rate = images_done as f64 / elapsed.max(1e-9);
        let epoch_loss = at.sums.loss / at.sums.seen as f64;
        let epoch_acc = at.sums.correct as f64 / at.sums.seen as f64;
        pb.set_position(step);
        pb.set_prefix(format!("epoch {}/{}", epoch + 1, cfg.epochs));
        pb.set_message(format!(
            "loss {epoch_loss:.4} acc {:.2}% {rate:.0} img/s",
            100.0 * epoch_acc
        ));
        if plain && elapsed - last_line >= args.progress_seconds {
            last_line = elapsed;
            let eta = (total - step) as f64 * cfg.batch_size as f64 / rate;
            eprintln!(
                "epoch {}/{} step {step}/{total}: loss {epoch_loss:.4} acc {:.2}% | {rate:.0} img/s | ETA {:.0} s",
                epoch + 1,
                cfg.epochs,
                100.0 * epoch_acc,
                eta
            );
        }
        if step.is_multiple_of(cfg.log_every) {
            metrics.write(json!({
                "type": "log", "step": step, "epoch": epoch, "lr": lr,
                "loss": lv, "epoch_loss": epoch_loss, "epoch_acc": epoch_acc,
                "elapsed_s": elapsed, "images_per_sec": rate,
            }))?;
        }
        if !step.is_multiple_of(spe) {
            continue;
        }
        let name = data.eval_name;
        let mut eval = None;
        if (epoch + 1).is_multiple_of(cfg.eval_every) || step == total {
            let t0 = Instant::now();
            let (eval_loss, eval_error) = evaluate(&mut model, ema.as_ref(), &data.eval);
            let line = format!(
                "epoch {}/{}: train loss {epoch_loss:.4}, acc {:.2}% | {name} error {:.2}% (loss {eval_loss:.4}) | {rate:.0} img/s, eval {:.1}s",
                epoch + 1,
                cfg.epochs,
                100.0 * epoch_acc,
                100.0 * eval_error,
                t0.elapsed().as_secs_f64()
            );
            pb.suspend(|| eprintln!("{line}"));
            metrics.write(json!({
                "type": "epoch", "step": step, "epoch": epoch,
                "train_loss": epoch_loss, "train_acc": epoch_acc,
                format!("{name}_loss"): eval_loss, format!("{name}_error"): eval_error,
                "elapsed_s": started.elapsed().as_secs_f64(), "images_per_sec": rate,
            }))?;
            eval = Some((eval_loss, eval_error));
        }
        at.wall = at.wall_before + started.elapsed().as_secs_f64();
        let wall = at.wall;
        at.sums = EpochSums::default();
        // Before the checkpoint, so every checkpointed epoch has its frame.
        crate::snapshot::save(out, epoch + 1, &model)?;
        save(
            &ck_path,
            &cfg_json,
            &model,
            opt.as_ref(),
            ema.as_ref(),
            epoch + 1,
            &at,
        )?;
        if let (true, Some((eval_loss, eval_error))) = (step == total, eval) {
            let results = json!({
                "dataset": cfg.dataset, "model": cfg.model, "seed": cfg.seed,
                "epochs": cfg.epochs, "recipe": cfg.recipe,
                format!("{name}_error"): eval_error, format!("{name}_loss"): eval_loss,
                "params": params,
                "wall_s": wall, "images_per_sec": rate,
                "threads": rayon::current_num_threads(),
                "kernels": stn::sampler::kernel_build(),
            });
            write_atomic(&out.join(RESULTS_FILE), &format!("{results:#}\n"))?;
            pb.finish_and_clear();
            println!(
                "{} {} seed {}: {name} error {:.2}% after {} epochs ({wall:.0} s)",
                cfg.model,
                cfg.dataset,
                cfg.seed,
                100.0 * eval_error,
                cfg.epochs,
            );
        }
    }
    Ok(())
}
