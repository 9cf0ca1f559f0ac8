//! `warpgrad train` arguments and the run configuration saved with every run.

use crate::error::{msg, CliError};
use crate::recipe::{self, Recipe, RECIPES};
use clap::Args;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Arguments of `warpgrad train`. The training-procedure settings (epochs
/// to weight decay) default to those of `--recipe`; a flag given explicitly
/// overrides its recipe value. The defaults (with `--epochs 20`) train the README's main job:
/// ST-CNN (affine) on RTS (see docs/results/main-job.md).
#[derive(Args, Clone, Debug)]
pub struct TrainArgs {
    /// Data set: mnist, r, rts, p, e, tc.
    #[arg(long, default_value = "rts")]
    pub dataset: String,
    /// Model (help generated from the transform registry).
    #[arg(long, default_value = "st-cnn-aff", help = stn::model_help())]
    pub model: String,
    /// Training recipe the settings below default to: default, paper, addition (docs/results/recipe.md) [default: addition on the addition data set, else default].
    #[arg(long)]
    pub recipe: Option<String>,
    /// Passes over the training set [recipe: the full budget's, 10–600 by data set and model (docs/reproduce.md); paper 640].
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Images per step [recipe: 64; paper 256].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Base (peak) learning rate [recipe: 0.003; paper 0.01].
    #[arg(long, allow_hyphen_values = true)]
    pub lr: Option<f32>,
    /// Learning-rate multiplier of the localisation net [recipe: 0.3; paper 0.1].
    #[arg(long, allow_hyphen_values = true)]
    pub loc_lr: Option<f32>,
    /// Optimiser: adam, adamw (decoupled weight decay), sgd (momentum 0.9) [recipe: adam; paper sgd].
    #[arg(long)]
    pub optimizer: Option<String>,
    /// Schedule: cosine, onecycle (rise over the first quarter), step (÷10 every third of the run), constant [recipe: cosine; paper step].
    #[arg(long)]
    pub schedule: Option<String>,
    /// Warm-up steps (linear) at the start of the schedule [recipe: 200; paper 0].
    #[arg(long)]
    pub warmup: Option<u64>,
    /// Clip the global gradient norm to this value (0: no clipping) [recipe: 10; paper 0].
    #[arg(long, allow_hyphen_values = true)]
    pub clip: Option<f32>,
    /// Evaluate a moving average of the weights with this decay, e.g. 0.999 (0: off) [recipe: 0].
    #[arg(long, allow_hyphen_values = true)]
    pub ema: Option<f32>,
    /// Label smoothing ε of the cross-entropy, in [0, 1) [recipe: 0.1; paper 0].
    #[arg(long, allow_hyphen_values = true)]
    pub label_smoothing: Option<f32>,
    /// Weight decay (decoupled with adamw, L2 with adam and sgd) [recipe: 0].
    #[arg(long, allow_hyphen_values = true)]
    pub weight_decay: Option<f32>,
    /// Seed of every random draw (weights, data order, distortions).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Folder with the MNIST files (official names, raw or .gz).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Train on the first N training images only.
    #[arg(long)]
    pub train_size: Option<usize>,
    /// Hold out the last N training digits (distorted once, like the test set) as a validation set, evaluated instead of the test set.
    #[arg(long, default_value_t = 0)]
    pub val_size: usize,
    /// Test on the first N test images only.
    #[arg(long)]
    pub test_size: Option<usize>,
    /// Run folder (default: runs/<dataset>-<model>-s<seed>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue from the run folder's last checkpoint (refused if the folder holds no run).
    #[arg(long)]
    pub resume: bool,
    /// Continue the run folder's checkpoint if it has one, else start the run (for schedulers and `reproduce`, whose commands must work both ways).
    #[arg(long, conflicts_with = "resume")]
    pub resume_or_start: bool,
    /// Log a metrics line every N steps.
    #[arg(long, default_value_t = 50)]
    pub log_every: u64,
    /// Evaluate every N epochs (and always after the last).
    #[arg(long, default_value_t = 1)]
    pub eval_every: u64,
    /// Stop after this many steps in total (for tests; the run stays resumable).
    #[arg(long, hide = true)]
    pub stop_after: Option<u64>,
    /// Seconds between progress lines when stderr is not a terminal (CI, nohup, a Slurm log).
    #[arg(long, default_value_t = 20.0, allow_hyphen_values = true)]
    pub progress_seconds: f64,
    /// No progress bar, start-up line or progress lines (the bar is also off when stderr is not a terminal).
    #[arg(long)]
    pub quiet: bool,
}

/// Everything that determines a run's results, saved in the run folder, the
/// metrics header and every checkpoint.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Data set name.
    pub dataset: String,
    /// Model name.
    pub model: String,
    /// Epochs.
    pub epochs: u64,
    /// Batch size.
    pub batch_size: usize,
    /// Base learning rate.
    pub lr: f32,
    /// Localisation-net learning-rate multiplier.
    pub loc_lr: f32,
    /// Optimiser name.
    pub optimizer: String,
    /// Schedule name.
    pub schedule: String,
    /// Warm-up steps.
    pub warmup: u64,
    /// Gradient clipping norm (0: none).
    pub clip: f32,
    /// Seed.
    pub seed: u64,
    /// Training images used (after --train-size).
    pub train_size: usize,
    /// Test images used (after --test-size).
    pub test_size: usize,
    /// Log interval in steps.
    pub log_every: u64,
    /// The recipe the settings started from.
    #[serde(default = "default_recipe")]
    pub recipe: String,
    /// Decay of the evaluated moving average of the weights (0: none).
    #[serde(default)]
    pub ema: f32,
    /// Label smoothing ε.
    #[serde(default)]
    pub label_smoothing: f32,
    /// Weight decay.
    #[serde(default)]
    pub weight_decay: f32,
    /// Validation digits held out at the end of the training split (0: none;
    /// then the test set is evaluated).
    #[serde(default)]
    pub val_size: usize,
    /// Evaluation interval in epochs.
    #[serde(default = "one")]
    pub eval_every: u64,
}

fn one() -> u64 {
    1
}

/// The recipe of configurations saved before recipes existed (their
/// settings are the default recipe's or were given as flags).
fn default_recipe() -> String {
    RECIPES[0].name.to_string()
}

/// The names `--optimizer` accepts.
pub const OPTIMIZERS: [&str; 3] = ["adam", "adamw", "sgd"];
/// The names `--schedule` accepts.
pub const SCHEDULES: [&str; 4] = ["cosine", "onecycle", "step", "constant"];

/// Fraction of a one-cycle run spent rising to the peak rate.
pub const ONE_CYCLE_RISE: f32 = 0.25;

/// Refuses a value outside its range, naming the flag.
fn check(ok: bool, flag: &str, value: impl std::fmt::Display, range: &str) -> Result<(), CliError> {
    if ok {
        Ok(())
    } else {
        Err(msg(format!("--{flag} {value}: expected {range}")))
    }
}

impl TrainArgs {
    /// The recipe named by `--recipe`.
    pub fn recipe(&self) -> Result<&'static Recipe, CliError> {
        let name = self
            .recipe
            .as_deref()
            .unwrap_or_else(|| recipe::default_for(&self.dataset));
        recipe::recipe(name).ok_or_else(|| {
            msg(format!(
                "unknown recipe '{name}': expected one of {}",
                recipe::names()
            ))
        })
    }

    /// Epochs: the flag's, else the recipe's, else the `full` budget's for
    /// the data set and model.
    fn epochs_of(&self, r: &Recipe) -> u64 {
        self.epochs
            .or(r.epochs)
            .unwrap_or_else(|| recipe::full_epochs(&self.dataset, &self.model))
    }

    /// Checks every setting, with a message naming the flag at fault.
    pub fn validate(&self) -> Result<(), CliError> {
        let r = self.recipe()?;
        let optimizer = self.optimizer.as_deref().unwrap_or(r.optimizer);
        if !OPTIMIZERS.contains(&optimizer) {
            return Err(msg(format!(
                "unknown optimizer '{optimizer}': expected one of {}",
                OPTIMIZERS.join(", ")
            )));
        }
        let schedule = self.schedule.as_deref().unwrap_or(r.schedule);
        if !SCHEDULES.contains(&schedule) {
            return Err(msg(format!(
                "unknown schedule '{schedule}': expected one of {}",
                SCHEDULES.join(", ")
            )));
        }
        let epochs = self.epochs_of(r);
        check(epochs > 0, "epochs", epochs, "a positive number of epochs")?;
        let batch = self.batch_size.unwrap_or(r.batch_size);
        check(
            batch > 0,
            "batch-size",
            batch,
            "a positive number of images",
        )?;
        check(
            self.log_every > 0,
            "log-every",
            self.log_every,
            "a positive number of steps",
        )?;
        check(
            self.eval_every > 0,
            "eval-every",
            self.eval_every,
            "a positive number of epochs",
        )?;
        let lr = self.lr.unwrap_or(r.lr);
        check(
            lr > 0.0 && lr.is_finite(),
            "lr",
            lr,
            "a positive finite rate",
        )?;
        let loc = self.loc_lr.unwrap_or(r.loc_lr);
        check(
            loc >= 0.0 && loc.is_finite(),
            "loc-lr",
            loc,
            "a finite multiplier ≥ 0",
        )?;
        let clip = self.clip.unwrap_or(r.clip);
        check(
            clip >= 0.0 && clip.is_finite(),
            "clip",
            clip,
            "a finite norm ≥ 0 (0: no clipping)",
        )?;
        let ema = self.ema.unwrap_or(r.ema);
        check(
            (0.0..1.0).contains(&ema),
            "ema",
            ema,
            "a decay in [0, 1) (0: off)",
        )?;
        let ls = self.label_smoothing.unwrap_or(r.label_smoothing);
        check(
            (0.0..1.0).contains(&ls),
            "label-smoothing",
            ls,
            "a value in [0, 1)",
        )?;
        let wd = self.weight_decay.unwrap_or(r.weight_decay);
        check(
            wd >= 0.0 && wd.is_finite(),
            "weight-decay",
            wd,
            "a finite value ≥ 0",
        )?;
        let ps = self.progress_seconds;
        check(
            ps >= 0.0 && ps.is_finite(),
            "progress-seconds",
            ps,
            "a finite number of seconds ≥ 0",
        )?;
        if let Some(n) = self.train_size {
            check(n > 0, "train-size", n, "a positive number of images")?;
        }
        if let Some(n) = self.test_size {
            check(n > 0, "test-size", n, "a positive number of images")?;
        }
        if let Some(n) = self.threads {
            check(n > 0, "threads", n, "a positive number of threads")?;
        }
        Ok(())
    }

    /// The run folder.
    pub fn out_dir(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            PathBuf::from(format!(
                "runs/{}-{}-s{}",
                self.dataset, self.model, self.seed
            ))
        })
    }

    /// The configuration for the given data sizes (call [`TrainArgs::validate`] first).
    pub fn config(&self, train_size: usize, test_size: usize) -> TrainConfig {
        let r = self.recipe().unwrap_or(&RECIPES[0]);
        TrainConfig {
            dataset: self.dataset.to_ascii_lowercase(),
            model: self.model.clone(),
            epochs: self.epochs_of(r),
            batch_size: self.batch_size.unwrap_or(r.batch_size),
            lr: self.lr.unwrap_or(r.lr),
            loc_lr: self.loc_lr.unwrap_or(r.loc_lr),
            optimizer: self.optimizer.clone().unwrap_or(r.optimizer.to_string()),
            schedule: self.schedule.clone().unwrap_or(r.schedule.to_string()),
            warmup: self.warmup.unwrap_or(r.warmup),
            clip: self.clip.unwrap_or(r.clip),
            seed: self.seed,
            train_size,
            test_size,
            log_every: self.log_every,
            recipe: r.name.to_string(),
            ema: self.ema.unwrap_or(r.ema),
            label_smoothing: self.label_smoothing.unwrap_or(r.label_smoothing),
            weight_decay: self.weight_decay.unwrap_or(r.weight_decay),
            val_size: self.val_size,
            eval_every: self.eval_every,
        }
    }
}

impl TrainConfig {
    /// Steps per epoch (the last batch may be smaller).
    pub fn steps_per_epoch(&self) -> u64 {
        self.train_size.div_ceil(self.batch_size) as u64
    }

    /// Steps of the whole run.
    pub fn total_steps(&self) -> u64 {
        self.steps_per_epoch() * self.epochs
    }

    /// The learning-rate schedule.
    pub fn schedule(&self) -> layers::Schedule {
        let total = self.total_steps();
        let s = match self.schedule.as_str() {
            "step" => layers::Schedule::step_decay(self.lr, (total / 3).max(1), 0.1),
            "constant" => layers::Schedule::constant(self.lr),
            "onecycle" => layers::Schedule::one_cycle(self.lr, total.max(1), ONE_CYCLE_RISE),
            _ => layers::Schedule::cosine(self.lr, total.max(1), 0.0),
        };
        s.with_warmup(self.warmup)
    }

    /// The optimiser, with the localisation net's multiplier.
    pub fn optimizer(&self) -> Box<dyn layers::Optimizer> {
        let wd = self.weight_decay;
        let mut o: Box<dyn layers::Optimizer> = match self.optimizer.as_str() {
            "sgd" => Box::new(layers::Sgd::momentum(0.9).weight_decay(wd)),
            "adamw" => Box::new(layers::Adam::adamw(wd)),
            _ => Box::new(layers::Adam::new().weight_decay(wd)),
        };
        o.set_group_lr(stn::LOC_GROUP, self.loc_lr);
        o.set_clip_norm((self.clip > 0.0).then_some(self.clip));
        o
    }
}
