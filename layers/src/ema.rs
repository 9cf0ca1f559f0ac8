//! An exponential moving average (EMA) of the weights, evaluated in place of
//! the trained weights (Polyak averaging).
//!
//! After every optimiser step, with decay d and step count t (1, 2, …):
//!
//! `d_t = min(d, (1 + t)/(10 + t))`, `ē ← d_t·ē + (1 − d_t)·p`
//!
//! The warm-up of `d_t` keeps the average from being dominated by the random
//! initial weights in short runs (the form TensorFlow's
//! `ExponentialMovingAverage` uses with `num_updates`). The average starts at
//! the weights of the first update and is summed element by element in
//! parameter order, so it is as deterministic as the weights themselves.
//!
//! A checkpoint keeps the average beside the optimiser's state, under
//! `ema/<param>` and the word `ema.t`: [`Ema::attach`] adds it to a state to
//! save, [`Ema::detach`] takes it out of a loaded one before the optimiser
//! reads the rest.

use crate::checkpoint_error::CheckpointErrorKind;
use crate::module::Param;
use crate::optim::OptimState;
use engine::Tensor;
use std::collections::BTreeMap;

/// Prefix of the averaged tensors in a saved state.
pub const EMA_PREFIX: &str = "ema/";
/// Name of the update counter in a saved state.
pub const EMA_STEPS: &str = "ema.t";

/// The moving average of a set of named parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Ema {
    decay: f32,
    t: u64,
    avg: BTreeMap<String, Tensor>,
}

impl Ema {
    /// An empty average with decay `decay` (in [0, 1)).
    ///
    /// # Panics
    /// If `decay` is not in [0, 1).
    pub fn new(decay: f32) -> Ema {
        assert!(
            (0.0..1.0).contains(&decay),
            "Ema::new: decay {decay} is not in [0, 1)"
        );
        Ema {
            decay,
            t: 0,
            avg: BTreeMap::new(),
        }
    }

    /// The decay.
    pub fn decay(&self) -> f32 {
        self.decay
    }

    /// Updates taken so far.
    pub fn steps(&self) -> u64 {
        self.t
    }

    /// The decay used at update `t` (1-based): `min(d, (1 + t)/(10 + t))`.
    pub fn decay_at(&self, t: u64) -> f32 {
        let warm = ((1 + t) as f64 / (10 + t) as f64) as f32;
        self.decay.min(warm)
    }

    /// Folds the current values of `params` into the average.
    pub fn update(&mut self, params: &[&Param]) {
        self.t += 1;
        let d = self.decay_at(self.t);
        for p in params {
            match self.avg.get_mut(&p.name) {
                Some(a) if a.shape() == p.value.shape() => {
                    for (e, &x) in a.data_mut().iter_mut().zip(p.value.data()) {
                        *e = d * *e + (1.0 - d) * x;
                    }
                }
                _ => {
                    let copy = Tensor::from_vec(p.value.to_vec(), p.value.shape());
                    self.avg.insert(p.name.clone(), copy);
                }
            }
        }
    }

    /// The averaged value of a parameter, if it has been updated.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.avg.get(name)
    }

    /// Replaces the values of `params` by their averages (parameters never
    /// averaged keep theirs) and returns the replaced values, for
    /// [`Ema::restore`].
    pub fn swap_in(&self, params: &mut [&mut Param]) -> Vec<Tensor> {
        params
            .iter_mut()
            .map(|p| {
                let avg = self.avg.get(&p.name).cloned();
                match avg {
                    Some(a) => std::mem::replace(&mut p.value, a),
                    None => p.value.clone(),
                }
            })
            .collect()
    }

    /// Puts back the values [`Ema::swap_in`] returned.
    pub fn restore(params: &mut [&mut Param], saved: Vec<Tensor>) {
        for (p, v) in params.iter_mut().zip(saved) {
            p.value = v;
        }
    }

    /// The state to save: `ema/<param>` tensors and the `ema.t` counter.
    pub fn state(&self) -> OptimState {
        OptimState {
            tensors: self
                .avg
                .iter()
                .map(|(n, t)| (format!("{EMA_PREFIX}{n}"), t.clone()))
                .collect(),
            words: vec![(EMA_STEPS.to_string(), self.t)],
        }
    }

    /// Restores a saved state, checked against the parameters.
    ///
    /// # Errors
    /// An average for an unknown parameter, a wrong shape, or no counter.
    pub fn load_state(
        &mut self,
        state: &OptimState,
        params: &[&Param],
    ) -> Result<(), CheckpointErrorKind> {
        let mut avg = BTreeMap::new();
        for (name, t) in &state.tensors {
            let pname = name.strip_prefix(EMA_PREFIX).unwrap_or(name);
            let Some(p) = params.iter().find(|p| p.name == pname) else {
                return Err(CheckpointErrorKind::UnexpectedTensor { name: name.clone() });
            };
            if p.value.shape() != t.shape() {
                return Err(CheckpointErrorKind::ShapeMismatch {
                    name: name.clone(),
                    expected: p.value.shape().to_vec(),
                    found: t.shape().to_vec(),
                });
            }
            avg.insert(pname.to_string(), t.clone());
        }
        let t = state
            .words
            .iter()
            .find(|(n, _)| n == EMA_STEPS)
            .map(|(_, t)| *t)
            .ok_or_else(|| CheckpointErrorKind::MissingWord {
                name: EMA_STEPS.into(),
            })?;
        self.avg = avg;
        self.t = t;
        Ok(())
    }

    /// Adds the average's state to `state` (an optimiser's, to be saved).
    pub fn attach(&self, state: &mut OptimState) {
        let e = self.state();
        state.tensors.extend(e.tensors);
        state.words.extend(e.words);
    }

    /// Removes an average's entries from a loaded `state` and returns them
    /// (empty if the state holds none).
    pub fn detach(state: &mut OptimState) -> OptimState {
        let (ema, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut state.tensors)
            .into_iter()
            .partition(|(n, _)| n.starts_with(EMA_PREFIX));
        state.tensors = rest;
        let (ema_w, rest_w): (Vec<_>, Vec<_>) = std::mem::take(&mut state.words)
            .into_iter()
            .partition(|(n, _)| n == EMA_STEPS);
        state.words = rest_w;
        OptimState {
            tensors: ema,
            words: ema_w,
        }
    }
}
