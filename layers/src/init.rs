//! Weight initialisers.
//!
//! Fans of a weight of shape `[out, in, k…]`: `fan_in = in·Πk`,
//! `fan_out = out·Πk` (a 1-d bias has `fan_in = fan_out = len`).
//!
//! | init            | distribution                                   |
//! |-----------------|------------------------------------------------|
//! | Kaiming uniform | U(−b, b), b = gain·√(3/fan_in), gain = √2 (ReLU) |
//! | Kaiming normal  | N(0, σ²), σ = gain/√fan_in                     |
//! | Xavier uniform  | U(−b, b), b = √(6/(fan_in+fan_out))            |
//! | Xavier normal   | N(0, σ²), σ = √(2/(fan_in+fan_out))            |
//!
//! `Given(values)` copies values, e.g. the identity bias of a regression head
//! whose weights are `Zeros`, so a localisation net starts at θ = identity.

use engine::rng::Rng;
use engine::Tensor;

/// How to fill a new parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Init {
    /// Kaiming/He uniform with the ReLU gain √2.
    KaimingUniform,
    /// Kaiming/He normal with the ReLU gain √2.
    KaimingNormal,
    /// Xavier/Glorot uniform.
    XavierUniform,
    /// Xavier/Glorot normal.
    XavierNormal,
    /// All zeros.
    Zeros,
    /// Every value equal to the constant.
    Constant(f32),
    /// These exact values (their number must match the shape).
    Given(Vec<f32>),
}

/// `(fan_in, fan_out)` of a weight shape `[out, in, k…]`.
pub fn fans(shape: &[usize]) -> (usize, usize) {
    match shape.len() {
        0 => (1, 1),
        1 => (shape[0], shape[0]),
        _ => {
            let receptive: usize = shape[2..].iter().product();
            (shape[1] * receptive, shape[0] * receptive)
        }
    }
}

impl Init {
    /// A tensor of `shape` drawn from this initialiser.
    ///
    /// # Panics
    /// If `Given` values do not match the shape.
    pub fn tensor(&self, shape: &[usize], rng: &mut Rng) -> Tensor {
        let (fan_in, fan_out) = fans(shape);
        let (fi, fo) = (fan_in.max(1) as f32, fan_out.max(1) as f32);
        let gain = std::f32::consts::SQRT_2;
        match self {
            Init::KaimingUniform => {
                let b = gain * (3.0 / fi).sqrt();
                Tensor::uniform(shape, -b, b, rng)
            }
            Init::KaimingNormal => Tensor::normal(shape, 0.0, gain / fi.sqrt(), rng),
            Init::XavierUniform => {
                let b = (6.0 / (fi + fo)).sqrt();
                Tensor::uniform(shape, -b, b, rng)
            }
            Init::XavierNormal => Tensor::normal(shape, 0.0, (2.0 / (fi + fo)).sqrt(), rng),
            Init::Zeros => Tensor::zeros(shape),
            Init::Constant(c) => Tensor::full(shape, *c),
            Init::Given(v) => {
                let n: usize = shape.iter().product();
                assert!(
                    v.len() == n,
                    "Init::Given: {} values for shape {shape:?}",
                    v.len()
                );
                Tensor::from_vec(v.clone(), shape)
            }
        }
    }
}
