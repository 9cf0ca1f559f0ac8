//! Parameter-free layers: ReLU, Flatten, Dropout.
//!
//! | op      | forward                              | ∂L/∂x        |
//! |---------|--------------------------------------|--------------|
//! | relu    | y = max(0, x)                        | g·𝟙(x > 0)   |
//! | flatten | y = x reshaped to N×(rest)           | g reshaped   |
//! | dropout | y = x ⊙ m, m ∈ {0, 1/(1−p)}          | g ⊙ m        |
//!
//! Dropout ("inverted": kept values are scaled by 1/(1−p) in training, and
//! evaluation is the identity). The mask of a layer at a step comes from
//! `engine::rng::derive(seed, &[DROPOUT_STREAM, step, key(layer name)])`,
//! drawn in row-major order, so it depends only on the seed, the step and
//! the layer, never on threads.

use crate::module::{name_key, Ctx, Module, Param};
use engine::{Tensor, Var};
use rand::Rng as _;

/// Rectified linear unit.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReLU;

impl Module for ReLU {
    fn forward(&self, x: &Var, _ctx: &Ctx) -> Var {
        x.relu()
    }
    fn params(&self) -> Vec<&Param> {
        Vec::new()
    }
    fn params_mut(&mut self) -> Vec<&mut Param> {
        Vec::new()
    }
    fn describe(&self) -> String {
        "ReLU".into()
    }
    fn output_shape(&self, input: &[usize]) -> Vec<usize> {
        input.to_vec()
    }
}

/// Flattens every axis after the first: N×… → N×(product).
#[derive(Debug, Clone, Copy, Default)]
pub struct Flatten;

fn flat(input: &[usize]) -> Vec<usize> {
    assert!(!input.is_empty(), "Flatten: input must have a batch axis");
    vec![input[0], input[1..].iter().product()]
}

impl Module for Flatten {
    fn forward(&self, x: &Var, _ctx: &Ctx) -> Var {
        x.reshape(&flat(x.shape()))
    }
    fn params(&self) -> Vec<&Param> {
        Vec::new()
    }
    fn params_mut(&mut self) -> Vec<&mut Param> {
        Vec::new()
    }
    fn describe(&self) -> String {
        "Flatten".into()
    }
    fn output_shape(&self, input: &[usize]) -> Vec<usize> {
        flat(input)
    }
}

/// `x ⊙ mask` with a fixed mask (tracked); the mask is a constant.
///
/// # Panics
/// If the shapes differ.
pub fn dropout_with_mask(x: &Var, mask: &Tensor) -> Var {
    assert!(
        x.shape() == mask.shape(),
        "dropout: input {:?} and mask {:?} differ",
        x.shape(),
        mask.shape()
    );
    let out = x.value().mul(mask);
    let m = mask.clone();
    Var::custom_op("dropout", &[x], out, move |g, _| vec![Some(g.mul(&m))])
}

/// The dropout mask for a shape: each value is 0 with probability `p`,
/// else `1/(1−p)`, drawn in row-major order from `rng`.
pub fn dropout_mask(shape: &[usize], p: f32, rng: &mut engine::rng::Rng) -> Tensor {
    let n: usize = shape.iter().product();
    let keep = 1.0 / (1.0 - p);
    let mut v = engine::pool::take_empty(n);
    v.extend((0..n).map(|_| if rng.gen::<f32>() < p { 0.0 } else { keep }));
    Tensor::from_vec(v, shape)
}

/// Inverted dropout with drop probability `p`.
#[derive(Debug, Clone)]
pub struct Dropout {
    /// Drop probability in [0, 1).
    pub p: f32,
    /// The layer's name; its hash keys the mask stream.
    pub name: String,
}

impl Dropout {
    /// A dropout layer; `name` must differ between dropout layers of a model
    /// so their masks are independent.
    pub fn new(name: &str, p: f32) -> Dropout {
        assert!(
            (0.0..1.0).contains(&p),
            "Dropout: p = {p} must be in [0, 1)"
        );
        Dropout {
            p,
            name: name.to_string(),
        }
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Var, ctx: &Ctx) -> Var {
        if !ctx.is_training() || self.p == 0.0 {
            return x.clone();
        }
        let mut rng = ctx.dropout_rng(name_key(&self.name));
        let mask = dropout_mask(x.shape(), self.p, &mut rng);
        dropout_with_mask(x, &mask)
    }
    fn params(&self) -> Vec<&Param> {
        Vec::new()
    }
    fn params_mut(&mut self) -> Vec<&mut Param> {
        Vec::new()
    }
    fn add_prefix(&mut self, prefix: &str) {
        self.name = format!("{prefix}.{}", self.name);
    }
    fn describe(&self) -> String {
        format!("Dropout {} p={}", self.name, self.p)
    }
    fn output_shape(&self, input: &[usize]) -> Vec<usize> {
        input.to_vec()
    }
}
