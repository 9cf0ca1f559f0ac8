//! Finite-difference gradient checking.
//!
//! For a function `f` from tracked inputs to a tracked output, the output is
//! reduced to a scalar with a fixed random projection, `φ(x) = Σ f(x) ⊙ r`, and
//! the tape's gradient `∇φ` is compared with central differences of `φ` along
//! several directions `d`:
//!
//! * the analytic gradient itself (where the directional derivative is largest,
//!   so a backward that is off by a scale, or has a sign error, shows plainly),
//! * a random Gaussian direction per input (that input alone perturbed),
//! * `directions` random Gaussian directions over all inputs jointly.
//!
//! Every direction is scaled to unit RMS, so each element moves by about `h`.
//! The numerical derivative is Richardson-extrapolated central differences,
//! `D = (4·D(h/2) − D(h)) / 3` with `D(h) = (φ(x+hd) − φ(x−hd)) / 2h`, whose
//! error is O(h⁴); `φ` is accumulated in f64.
//!
//! ## Tolerances
//! A check passes when `|a − n| ≤ rtol·max(|a|, |n|) + atol·‖∇φ‖·‖d‖ + noise`,
//! where `a = ∇φ·d`, `n` is the numerical value and `noise = 16·ε_f32·S/h`
//! bounds the f32 rounding of `φ` (`S = Σ|fᵢ(x)·rᵢ|`). The defaults
//! (`h = 1e-2`, `rtol = 2e-3`, `atol = 1e-4`) catch a backward that is wrong by
//! 1%. Inputs must sit further than `h` from any kink (relu at 0, ties in a
//! max, integer pixel coordinates in a bilinear sampler).

use crate::rng;
use crate::{Tape, Tensor, Var};
use rand_distr::{Distribution, StandardNormal};
use std::fmt;

/// Settings of [`gradcheck`].
#[derive(Debug, Clone)]
pub struct GradcheckOptions {
    /// Step `h` per element along a unit-RMS direction.
    pub step: f32,
    /// Relative tolerance.
    pub rtol: f64,
    /// Tolerance relative to `‖∇φ‖·‖d‖` (for directions nearly orthogonal to ∇φ).
    pub atol: f64,
    /// Number of joint random directions.
    pub directions: usize,
    /// Seed of the projection and the directions.
    pub seed: u64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions {
            step: 1e-2,
            rtol: 2e-3,
            atol: 1e-4,
            directions: 3,
            seed: 0x5eed,
        }
    }
}

/// One compared directional derivative.
#[derive(Debug, Clone)]
pub struct DirectionCheck {
    /// Which direction: "gradient", "input 2", "random 1", ...
    pub label: String,
    /// The tape's value `∇φ·d`.
    pub analytic: f64,
    /// The finite-difference value.
    pub numeric: f64,
    /// The allowed difference.
    pub tolerance: f64,
}

impl DirectionCheck {
    /// True if the difference is within the tolerance.
    pub fn passed(&self) -> bool {
        (self.analytic - self.numeric).abs() <= self.tolerance
    }
}

/// Every check of a passing run.
#[derive(Debug, Clone)]
pub struct GradcheckReport {
    /// The checks, in the order they ran.
    pub checks: Vec<DirectionCheck>,
}

/// Why a gradient check failed.
#[derive(Debug, Clone)]
pub enum GradcheckError {
    /// The output does not depend on any input through the tape.
    NotTracked,
    /// The function produced a non-finite value.
    NonFinite {
        /// Where: "output" or the direction's label.
        at: String,
    },
    /// A directional derivative disagrees.
    Mismatch(DirectionCheck),
}

impl fmt::Display for GradcheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GradcheckError::NotTracked => write!(f, "gradcheck: the output is not tracked"),
            GradcheckError::NonFinite { at } => {
                write!(f, "gradcheck: non-finite value at {at}")
            }
            GradcheckError::Mismatch(c) => write!(
                f,
                "gradcheck: along {}: tape {:.6e}, finite differences {:.6e} (diff {:.3e} > tol {:.3e})",
                c.label,
                c.analytic,
                c.numeric,
                (c.analytic - c.numeric).abs(),
                c.tolerance
            ),
        }
    }
}

impl std::error::Error for GradcheckError {}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

fn norm(a: &[f32]) -> f64 {
    dot(a, a).sqrt()
}

/// Scales `v` to unit RMS (leaves an all-zero vector as it is).
fn unit_rms(mut v: Vec<Vec<f32>>) -> Vec<Vec<f32>> {
    let n: usize = v.iter().map(Vec::len).sum();
    let ss: f64 = v.iter().map(|x| dot(x, x)).sum();
    if ss > 0.0 {
        let s = ((n as f64) / ss).sqrt() as f32;
        v.iter_mut().flatten().for_each(|x| *x *= s);
    }
    v
}

/// Checks the tape's gradient of `f` at `inputs` against finite differences.
/// See the module docs for the method and the tolerances.
pub fn gradcheck<F>(
    f: F,
    inputs: &[Tensor],
    opts: &GradcheckOptions,
) -> Result<GradcheckReport, GradcheckError>
where
    F: Fn(&[Var]) -> Var,
{
    let mut rng = rng::seeded(opts.seed);
    let mut gauss = |shape: &[usize]| -> Vec<f32> {
        let n: usize = shape.iter().product();
        (0..n).map(|_| StandardNormal.sample(&mut rng)).collect()
    };

    // Analytic gradient of φ = Σ f(x)·r.
    let tape = Tape::new();
    let leaves: Vec<Var> = inputs.iter().map(|t| tape.leaf(t.clone())).collect();
    let y = f(&leaves);
    if !y.is_tracked() {
        return Err(GradcheckError::NotTracked);
    }
    if !y.value().all_finite() {
        return Err(GradcheckError::NonFinite {
            at: "output".into(),
        });
    }
    let r = Tensor::from_vec(gauss(y.shape()), y.shape());
    let grads = y.backward_with(r.clone());
    let g: Vec<Vec<f32>> = leaves
        .iter()
        .map(|l| grads.get_or_zeros(l).to_vec())
        .collect();
    let g_norm = g.iter().map(|x| dot(x, x)).sum::<f64>().sqrt();
    let scale: f64 = y
        .value()
        .data()
        .iter()
        .zip(r.data())
        .map(|(&a, &b)| (a as f64 * b as f64).abs())
        .sum();

    // φ on the untracked path.
    let phi = |d: &[Vec<f32>], h: f32| -> f64 {
        let xs: Vec<Var> = inputs
            .iter()
            .zip(d)
            .map(|(x, d)| {
                let v: Vec<f32> = x.data().iter().zip(d).map(|(&a, &b)| a + h * b).collect();
                Var::constant(Tensor::from_vec(v, x.shape()))
            })
            .collect();
        dot(f(&xs).value().data(), r.data())
    };
    let derivative = |d: &[Vec<f32>]| -> f64 {
        let h = opts.step;
        let central = |h: f32| (phi(d, h) - phi(d, -h)) / (2.0 * h as f64);
        (4.0 * central(h / 2.0) - central(h)) / 3.0
    };

    let mut dirs: Vec<(String, Vec<Vec<f32>>)> = vec![("gradient".into(), unit_rms(g.clone()))];
    if inputs.len() > 1 {
        for i in 0..inputs.len() {
            let d = inputs
                .iter()
                .enumerate()
                .map(|(j, x)| {
                    if i == j {
                        gauss(x.shape())
                    } else {
                        vec![0.0; x.numel()]
                    }
                })
                .collect();
            dirs.push((format!("input {i}"), unit_rms(d)));
        }
    }
    for k in 0..opts.directions {
        let d = inputs.iter().map(|x| gauss(x.shape())).collect();
        dirs.push((format!("random {k}"), unit_rms(d)));
    }

    let noise = 16.0 * f32::EPSILON as f64 * scale / opts.step as f64;
    let mut checks = Vec::new();
    for (label, d) in dirs {
        let analytic: f64 = g.iter().zip(&d).map(|(g, d)| dot(g, d)).sum();
        let numeric = derivative(&d);
        if !numeric.is_finite() {
            return Err(GradcheckError::NonFinite { at: label });
        }
        let d_norm = d.iter().map(|x| norm(x).powi(2)).sum::<f64>().sqrt();
        let tolerance =
            opts.rtol * analytic.abs().max(numeric.abs()) + opts.atol * g_norm * d_norm + noise;
        let c = DirectionCheck {
            label,
            analytic,
            numeric,
            tolerance,
        };
        if !c.passed() {
            return Err(GradcheckError::Mismatch(c));
        }
        checks.push(c);
    }
    Ok(GradcheckReport { checks })
}
