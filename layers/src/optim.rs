//! Optimisers: SGD (momentum, Nesterov, weight decay) and Adam/AdamW.
//!
//! Every step first checks the gradients (a NaN or ±∞ is an error naming the
//! parameter, and nothing is updated), then optionally clips their global
//! norm, then updates each parameter with the learning rate
//! `lr · multiplier(group)`.
//!
//! With gradient g, parameter p, learning rate η, weight decay λ:
//!
//! * SGD (PyTorch's form, no dampening):
//!   `g ← g + λp`; `v ← μv + g`; `d = g + μv` (Nesterov) or `d = v`;
//!   `p ← p − ηd`. With μ = 0 this is plain SGD.
//! * Adam: `g ← g + λp` (L2, coupled); AdamW instead decays `p ← p − ηλp`
//!   first (decoupled). Then `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
//!   `m̂ = m/(1−β₁ᵗ)`, `v̂ = v/(1−β₂ᵗ)`, `p ← p − η·m̂/(√v̂ + ε)`.
//! * Clipping: with `‖g‖ = √(Σ g²)` over all parameters (accumulated in f64
//!   in parameter order), if `‖g‖ > c` every gradient is scaled by `c/‖g‖`.
//!
//! Optimiser state is keyed by parameter name (e.g. `"sgd.momentum/fc.weight"`,
//! `"adam.m/fc.weight"`), so it can be saved in a checkpoint and checked on load.

use crate::checkpoint_error::CheckpointErrorKind;
use crate::module::Param;
use engine::Tensor;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// Why an optimiser step was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum OptimError {
    /// A gradient holds NaN or ±∞.
    NonFiniteGradient {
        /// The parameter's name.
        param: String,
        /// How many values are non-finite.
        count: usize,
    },
}

impl fmt::Display for OptimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptimError::NonFiniteGradient { param, count } => write!(
                f,
                "gradient of parameter {param:?} has {count} non-finite value(s) (NaN or inf)"
            ),
        }
    }
}

impl std::error::Error for OptimError {}

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// Global gradient norm before clipping.
    pub grad_norm: f32,
    /// True if the gradients were scaled down.
    pub clipped: bool,
}

/// Saved optimiser state: named tensors and named counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OptimState {
    /// Per-parameter buffers, e.g. `("adam.m/fc.weight", m)`.
    pub tensors: Vec<(String, Tensor)>,
    /// Counters, e.g. `("adam.t", 10)`.
    pub words: Vec<(String, u64)>,
}

/// An optimiser.
pub trait Optimizer {
    /// Updates `params` with `grads` (same order and shapes) at base
    /// learning rate `lr` (each group's multiplier applies on top).
    ///
    /// # Errors
    /// [`OptimError::NonFiniteGradient`] naming the first bad parameter; no
    /// parameter is changed then.
    ///
    /// # Panics
    /// If the numbers or shapes of params and grads differ.
    fn step(
        &mut self,
        params: &mut [&mut Param],
        grads: &[Tensor],
        lr: f32,
    ) -> Result<StepStats, OptimError>;

    /// The state to save.
    fn state(&self) -> OptimState;

    /// Restores saved state after checking it against the parameters.
    ///
    /// # Errors
    /// A buffer for an unknown parameter, a wrong shape, or a missing counter.
    fn load_state(
        &mut self,
        state: &OptimState,
        params: &[&Param],
    ) -> Result<(), CheckpointErrorKind>;

    /// Sets the learning-rate multiplier of a parameter group (default 1).
    fn set_group_lr(&mut self, group: &str, multiplier: f32);

    /// Sets the global gradient-norm clip (`None`: no clipping).
    fn set_clip_norm(&mut self, max_norm: Option<f32>);
}

/// Checks for non-finite values and returns the global L2 norm (f64 sums in
/// parameter order).
pub fn check_grads(params: &[&mut Param], grads: &[Tensor]) -> Result<f32, OptimError> {
    assert!(
        params.len() == grads.len(),
        "optimiser step: {} parameters but {} gradients",
        params.len(),
        grads.len()
    );
    let mut ss = 0.0f64;
    for (p, g) in params.iter().zip(grads) {
        assert!(
            p.value.shape() == g.shape(),
            "optimiser step: parameter {:?} has shape {:?} but its gradient {:?}",
            p.name,
            p.value.shape(),
            g.shape()
        );
        // One pass: a square of a finite f32 cannot overflow f64, so the
        // sum is finite exactly when every value is.
        let s = sum_squares(g.data());
        if !s.is_finite() {
            let bad = g.data().iter().filter(|v| !v.is_finite()).count();
            return Err(OptimError::NonFiniteGradient {
                param: p.name.clone(),
                count: bad,
            });
        }
        ss += s;
    }
    Ok(ss.sqrt() as f32)
}

/// Σ x² in f64, in eight interleaved partial sums added in a fixed order
/// (the same on every machine): one serial chain of f64 additions was 9% of
/// a two-transformer FCN's training step.
fn sum_squares(x: &[f32]) -> f64 {
    let mut acc = [0.0f64; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v as f64 * v as f64;
        }
    }
    let tail: f64 = chunks
        .remainder()
        .iter()
        .map(|&v| v as f64 * v as f64)
        .sum();
    acc.iter().sum::<f64>() + tail
}

/// `v`, or zero where it is subnormal (under `f32::MIN_POSITIVE` in
/// magnitude). Why: a moment of a weight whose gradient stops (a pixel the
/// digits rarely cover) decays geometrically through the subnormals, and
/// every operation on a subnormal takes a microcode assist on Intel cores;
/// such moments made Adam 69% of a two-transformer FCN's step on a Xeon. A
/// subnormal moment moves its weight by under 10⁻³⁰ of the learning rate.
/// An explicit comparison, not the CPU's flush-to-zero mode, so every
/// build and machine computes the same bits.
#[inline(always)]
fn flush_subnormal(v: f32) -> f32 {
    if v.abs() < f32::MIN_POSITIVE {
        0.0
    } else {
        v
    }
}

/// Scales gradients in place so their global norm is at most `max_norm`;
/// returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut [Tensor], max_norm: f32) -> f32 {
    let ss: f64 = grads.iter().map(|g| sum_squares(g.data())).sum();
    let norm = ss.sqrt() as f32;
    if norm > max_norm {
        let s = max_norm / norm;
        for g in grads.iter_mut() {
            g.data_mut().iter_mut().for_each(|v| *v *= s);
        }
    }
    norm
}

/// Settings shared by the optimisers: group multipliers and clipping.
#[derive(Debug, Clone, Default)]
struct Common {
    group_lr: HashMap<String, f32>,
    clip: Option<f32>,
}

impl Common {
    fn lr(&self, base: f32, group: &str) -> f32 {
        base * self.group_lr.get(group).copied().unwrap_or(1.0)
    }

    /// Validates and returns (stats, clip scale).
    fn prepare(
        &self,
        params: &[&mut Param],
        grads: &[Tensor],
    ) -> Result<(StepStats, f32), OptimError> {
        let norm = check_grads(params, grads)?;
        Ok(match self.clip {
            Some(c) if norm > c => (
                StepStats {
                    grad_norm: norm,
                    clipped: true,
                },
                c / norm,
            ),
            _ => (
                StepStats {
                    grad_norm: norm,
                    clipped: false,
                },
                1.0,
            ),
        })
    }
}

/// Checks saved buffers named `"{prefix}/{param}"` against the parameters and
/// returns them keyed by parameter name.
fn load_buffers(
    state: &OptimState,
    params: &[&Param],
    prefixes: &[&str],
) -> Result<Vec<BTreeMap<String, Vec<f32>>>, CheckpointErrorKind> {
    let shapes: HashMap<&str, &[usize]> = params
        .iter()
        .map(|p| (p.name.as_str(), p.value.shape()))
        .collect();
    let mut out = vec![BTreeMap::new(); prefixes.len()];
    for (name, t) in &state.tensors {
        let Some((slot, pname)) = prefixes
            .iter()
            .enumerate()
            .find_map(|(i, pre)| name.strip_prefix(pre)?.strip_prefix('/').map(|r| (i, r)))
        else {
            return Err(CheckpointErrorKind::UnexpectedTensor { name: name.clone() });
        };
        let Some(&shape) = shapes.get(pname) else {
            return Err(CheckpointErrorKind::UnexpectedTensor { name: name.clone() });
        };
        if shape != t.shape() {
            return Err(CheckpointErrorKind::ShapeMismatch {
                name: name.clone(),
                expected: shape.to_vec(),
                found: t.shape().to_vec(),
            });
        }
        out[slot].insert(pname.to_string(), t.to_vec());
    }
    Ok(out)
}

fn export(
    prefix: &str,
    bufs: &BTreeMap<String, Vec<f32>>,
    shapes: &BTreeMap<String, Vec<usize>>,
) -> Vec<(String, Tensor)> {
    bufs.iter()
        .map(|(n, v)| {
            (
                format!("{prefix}/{n}"),
                Tensor::from_vec(v.clone(), &shapes[n]),
            )
        })
        .collect()
}

/// Stochastic gradient descent with optional (Nesterov) momentum and L2
/// weight decay.
#[derive(Debug, Clone, Default)]
pub struct Sgd {
    /// Momentum μ (0: none).
    pub momentum: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// L2 weight decay λ.
    pub weight_decay: f32,
    common: Common,
    velocity: BTreeMap<String, Vec<f32>>,
    shapes: BTreeMap<String, Vec<usize>>,
}

impl Sgd {
    /// Plain SGD.
    pub fn new() -> Sgd {
        Sgd::default()
    }

    /// SGD with momentum μ.
    pub fn momentum(mu: f32) -> Sgd {
        Sgd {
            momentum: mu,
            ..Sgd::default()
        }
    }

    /// Enables Nesterov momentum.
    pub fn nesterov(mut self, on: bool) -> Sgd {
        self.nesterov = on;
        self
    }

    /// Sets the L2 weight decay.
    pub fn weight_decay(mut self, wd: f32) -> Sgd {
        self.weight_decay = wd;
        self
    }
}

impl Optimizer for Sgd {
    fn step(
        &mut self,
        params: &mut [&mut Param],
        grads: &[Tensor],
        lr: f32,
    ) -> Result<StepStats, OptimError> {
        let (stats, scale) = self.common.prepare(params, grads)?;
        let (mu, wd, nesterov) = (self.momentum, self.weight_decay, self.nesterov);
        for (p, g) in params.iter_mut().zip(grads) {
            let eta = self.common.lr(lr, &p.group);
            let v = if mu != 0.0 {
                self.shapes.insert(p.name.clone(), p.value.shape().to_vec());
                Some(
                    self.velocity
                        .entry(p.name.clone())
                        .or_insert_with(|| vec![0.0; g.numel()]),
                )
            } else {
                None
            };
            let pd = p.value.data_mut();
            match v {
                Some(v) => {
                    for ((x, &gi), vi) in pd.iter_mut().zip(g.data()).zip(v.iter_mut()) {
                        let gi = gi * scale + wd * *x;
                        *vi = flush_subnormal(mu * *vi + gi);
                        let d = if nesterov { gi + mu * *vi } else { *vi };
                        *x -= eta * d;
                    }
                }
                None => {
                    for (x, &gi) in pd.iter_mut().zip(g.data()) {
                        *x -= eta * (gi * scale + wd * *x);
                    }
                }
            }
        }
        Ok(stats)
    }

    fn state(&self) -> OptimState {
        OptimState {
            tensors: export("sgd.momentum", &self.velocity, &self.shapes),
            words: Vec::new(),
        }
    }

    fn load_state(
        &mut self,
        state: &OptimState,
        params: &[&Param],
    ) -> Result<(), CheckpointErrorKind> {
        let mut b = load_buffers(state, params, &["sgd.momentum"])?;
        self.velocity = b.remove(0);
        self.shapes = params
            .iter()
            .filter(|p| self.velocity.contains_key(&p.name))
            .map(|p| (p.name.clone(), p.value.shape().to_vec()))
            .collect();
        Ok(())
    }

    fn set_group_lr(&mut self, group: &str, multiplier: f32) {
        self.common.group_lr.insert(group.to_string(), multiplier);
    }

    fn set_clip_norm(&mut self, max_norm: Option<f32>) {
        self.common.clip = max_norm;
    }
}

/// Adam, or AdamW with decoupled weight decay.
#[derive(Debug, Clone)]
pub struct Adam {
    /// β₁.
    pub beta1: f32,
    /// β₂.
    pub beta2: f32,
    /// ε.
    pub eps: f32,
    /// Weight decay λ.
    pub weight_decay: f32,
    /// True: decoupled (AdamW); false: L2 added to the gradient.
    pub decoupled: bool,
    t: u64,
    common: Common,
    m: BTreeMap<String, Vec<f32>>,
    v: BTreeMap<String, Vec<f32>>,
    shapes: BTreeMap<String, Vec<usize>>,
}

impl Default for Adam {
    fn default() -> Self {
        Adam::new()
    }
}

impl Adam {
    /// Adam with β = (0.9, 0.999), ε = 1e-8, no weight decay.
    pub fn new() -> Adam {
        Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            t: 0,
            common: Common::default(),
            m: BTreeMap::new(),
            v: BTreeMap::new(),
            shapes: BTreeMap::new(),
        }
    }

    /// AdamW with decoupled weight decay λ.
    pub fn adamw(weight_decay: f32) -> Adam {
        Adam {
            weight_decay,
            decoupled: true,
            ..Adam::new()
        }
    }

    /// Sets β₁, β₂.
    pub fn betas(mut self, b1: f32, b2: f32) -> Adam {
        self.beta1 = b1;
        self.beta2 = b2;
        self
    }

    /// Sets coupled (L2) weight decay.
    pub fn weight_decay(mut self, wd: f32) -> Adam {
        self.weight_decay = wd;
        self.decoupled = false;
        self
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.t
    }
}

impl Optimizer for Adam {
    fn step(
        &mut self,
        params: &mut [&mut Param],
        grads: &[Tensor],
        lr: f32,
    ) -> Result<StepStats, OptimError> {
        let (stats, scale) = self.common.prepare(params, grads)?;
        self.t += 1;
        let (b1, b2, eps, wd) = (self.beta1, self.beta2, self.eps, self.weight_decay);
        let c1 = 1.0 - (b1 as f64).powf(self.t as f64);
        let c2 = 1.0 - (b2 as f64).powf(self.t as f64);
        let (c1, c2) = (c1 as f32, c2 as f32);
        for (p, g) in params.iter_mut().zip(grads) {
            let eta = self.common.lr(lr, &p.group);
            self.shapes.insert(p.name.clone(), p.value.shape().to_vec());
            let m = self
                .m
                .entry(p.name.clone())
                .or_insert_with(|| vec![0.0; g.numel()]);
            let v = self
                .v
                .entry(p.name.clone())
                .or_insert_with(|| vec![0.0; g.numel()]);
            let pd = p.value.data_mut();
            for (((x, &gi), mi), vi) in pd
                .iter_mut()
                .zip(g.data())
                .zip(m.iter_mut())
                .zip(v.iter_mut())
            {
                let mut gi = gi * scale;
                if self.decoupled {
                    *x -= eta * wd * *x;
                } else {
                    gi += wd * *x;
                }
                *mi = flush_subnormal(b1 * *mi + (1.0 - b1) * gi);
                *vi = flush_subnormal(b2 * *vi + (1.0 - b2) * gi * gi);
                let mh = *mi / c1;
                let vh = *vi / c2;
                *x -= eta * mh / (vh.sqrt() + eps);
            }
        }
        Ok(stats)
    }

    fn state(&self) -> OptimState {
        let mut tensors = export("adam.m", &self.m, &self.shapes);
        tensors.extend(export("adam.v", &self.v, &self.shapes));
        OptimState {
            tensors,
            words: vec![("adam.t".to_string(), self.t)],
        }
    }

    fn load_state(
        &mut self,
        state: &OptimState,
        params: &[&Param],
    ) -> Result<(), CheckpointErrorKind> {
        let mut b = load_buffers(state, params, &["adam.m", "adam.v"])?;
        let t = state
            .words
            .iter()
            .find(|(n, _)| n == "adam.t")
            .map(|(_, t)| *t)
            .ok_or_else(|| CheckpointErrorKind::MissingWord {
                name: "adam.t".into(),
            })?;
        let v = b.pop().unwrap_or_default();
        let m = b.pop().unwrap_or_default();
        if let Some(name) = m.keys().find(|k| !v.contains_key(*k)) {
            return Err(CheckpointErrorKind::MissingTensor {
                name: format!("adam.v/{name}"),
            });
        }
        if let Some(name) = v.keys().find(|k| !m.contains_key(*k)) {
            return Err(CheckpointErrorKind::MissingTensor {
                name: format!("adam.m/{name}"),
            });
        }
        self.shapes = params
            .iter()
            .filter(|p| m.contains_key(&p.name))
            .map(|p| (p.name.clone(), p.value.shape().to_vec()))
            .collect();
        self.m = m;
        self.v = v;
        self.t = t;
        Ok(())
    }

    fn set_group_lr(&mut self, group: &str, multiplier: f32) {
        self.common.group_lr.insert(group.to_string(), multiplier);
    }

    fn set_clip_norm(&mut self, max_norm: Option<f32>) {
        self.common.clip = max_norm;
    }
}
