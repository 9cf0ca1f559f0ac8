//! Learning-rate schedules, as a function of the step t = 0, 1, 2, …
//!
//! | decay     | lr(t)                                                            |
//! |-----------|------------------------------------------------------------------|
//! | constant  | η                                                                |
//! | step      | η · γ^⌊t / every⌋   (the paper: η = 0.01, γ = 0.1, every 50 000) |
//! | cosine    | η_min + (η − η_min)·(1 + cos(π·min(t, T)/T))/2                   |
//! | one-cycle | t < W: η·(s + (1 − s)·t/W); then the cosine from η to η/10⁴ over T − W steps, s = 1/25 |
//!
//! Linear warm-up over W steps multiplies the above by `min(1, (t+1)/W)`, so
//! step 0 uses η/W and step W−1 the full rate.

/// How the rate decays after warm-up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decay {
    /// No decay.
    Constant,
    /// Multiply by `factor` every `every` steps.
    Step {
        /// Steps between decays.
        every: u64,
        /// Multiplier per decay (e.g. 0.1).
        factor: f32,
    },
    /// Cosine from the base rate down to `min_lr` at step `total`, then flat.
    Cosine {
        /// Steps of the cosine.
        total: u64,
        /// Final rate.
        min_lr: f32,
    },
    /// One-cycle (Smith & Topin): a linear rise from η/25 to η over `rise`
    /// steps, then a cosine down to η/10⁴ at step `total`.
    OneCycle {
        /// Steps of the whole cycle.
        total: u64,
        /// Steps of the rise.
        rise: u64,
    },
}

/// Start of the one-cycle rise, as a fraction of the peak rate.
pub const ONE_CYCLE_START: f64 = 1.0 / 25.0;
/// End of the one-cycle descent, as a fraction of the peak rate.
pub const ONE_CYCLE_END: f64 = 1e-4;

/// A learning-rate schedule: base rate, decay, optional linear warm-up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Base rate η.
    pub base_lr: f32,
    /// The decay.
    pub decay: Decay,
    /// Warm-up steps (0: none).
    pub warmup: u64,
}

impl Schedule {
    /// A constant rate.
    pub fn constant(lr: f32) -> Schedule {
        Schedule {
            base_lr: lr,
            decay: Decay::Constant,
            warmup: 0,
        }
    }

    /// Step decay: `lr · factor^⌊t/every⌋`.
    pub fn step_decay(lr: f32, every: u64, factor: f32) -> Schedule {
        assert!(every > 0, "Schedule::step_decay: every must be positive");
        Schedule {
            base_lr: lr,
            decay: Decay::Step { every, factor },
            warmup: 0,
        }
    }

    /// The paper's schedule: 0.01, divided by 10 every 50 000 iterations.
    pub fn paper() -> Schedule {
        Schedule::step_decay(0.01, 50_000, 0.1)
    }

    /// Cosine decay from `lr` to `min_lr` over `total` steps.
    pub fn cosine(lr: f32, total: u64, min_lr: f32) -> Schedule {
        assert!(total > 0, "Schedule::cosine: total must be positive");
        Schedule {
            base_lr: lr,
            decay: Decay::Cosine { total, min_lr },
            warmup: 0,
        }
    }

    /// One-cycle over `total` steps, rising during the first `rise_frac` of
    /// them (e.g. 0.25).
    ///
    /// # Panics
    /// If `total` is 0 or `rise_frac` is not in [0, 1).
    pub fn one_cycle(lr: f32, total: u64, rise_frac: f32) -> Schedule {
        assert!(total > 0, "Schedule::one_cycle: total must be positive");
        assert!(
            (0.0..1.0).contains(&rise_frac),
            "Schedule::one_cycle: rise_frac {rise_frac} is not in [0, 1)"
        );
        let rise = (total as f64 * rise_frac as f64).round() as u64;
        Schedule {
            base_lr: lr,
            decay: Decay::OneCycle { total, rise },
            warmup: 0,
        }
    }

    /// Adds a linear warm-up over `steps` steps.
    pub fn with_warmup(mut self, steps: u64) -> Schedule {
        self.warmup = steps;
        self
    }

    /// The rate at step `t`.
    pub fn lr(&self, t: u64) -> f32 {
        let base = self.base_lr as f64;
        let lr = match self.decay {
            Decay::Constant => base,
            Decay::Step { every, factor } => {
                base * (factor as f64).powi((t / every).min(i32::MAX as u64) as i32)
            }
            Decay::Cosine { total, min_lr } => {
                let x = t.min(total) as f64 / total as f64;
                let min = min_lr as f64;
                min + (base - min) * 0.5 * (1.0 + (std::f64::consts::PI * x).cos())
            }
            Decay::OneCycle { total, rise } => {
                if t < rise {
                    base * (ONE_CYCLE_START + (1.0 - ONE_CYCLE_START) * t as f64 / rise as f64)
                } else {
                    let span = total.saturating_sub(rise).max(1);
                    let x = (t - rise).min(span) as f64 / span as f64;
                    let min = base * ONE_CYCLE_END;
                    min + (base - min) * 0.5 * (1.0 + (std::f64::consts::PI * x).cos())
                }
            }
        };
        let warm = if self.warmup > 0 {
            ((t + 1) as f64 / self.warmup as f64).min(1.0)
        } else {
            1.0
        };
        (lr * warm) as f32
    }
}
