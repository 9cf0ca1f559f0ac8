//! Elementwise functions. With `y = f(x)` and `g = ∂L/∂y`:
//!
//! | f        | y                 | ∂L/∂x                 |
//! |----------|-------------------|-----------------------|
//! | exp      | eˣ                | g·y                   |
//! | log      | ln x              | g / x                 |
//! | sqrt     | √x                | g / (2y)              |
//! | tanh     | tanh x            | g·(1 − y²)            |
//! | sigmoid  | 1 / (1 + e⁻ˣ)     | g·y·(1 − y)           |
//! | relu     | max(0, x)         | g·[x > 0] (0 at x = 0)|
//! | abs      | abs(x)            | g·sign(x) (0 at x = 0)|
//! | powi(n)  | xⁿ                | g·n·xⁿ⁻¹              |
//! | sin      | sin x             | g·cos x               |
//! | cos      | cos x             | −g·sin x (g·(−sin x)) |

use super::broadcast::zip_with;
use crate::{Tensor, Var};

/// Numerically stable logistic function.
fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// The rectifier max(0, x) with every edge case pinned: +0 for x ≤ 0 (so
/// also for −0) and for NaN. `f32::max(x, 0.0)` leaves the sign of a zero
/// result to the optimiser (`maxss` returns its second operand on a tie), so
/// two inlined copies of it can disagree on −0; every ReLU of the project
/// (this one, the fused ReLU + max-pool) calls this function instead.
#[inline]
pub fn relu(x: f32) -> f32 {
    if x > 0.0 {
        x
    } else {
        0.0
    }
}

fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

impl Tensor {
    /// eˣ elementwise.
    pub fn exp(&self) -> Tensor {
        self.map(f32::exp)
    }
    /// ln x elementwise.
    pub fn log(&self) -> Tensor {
        self.map(f32::ln)
    }
    /// √x elementwise.
    pub fn sqrt(&self) -> Tensor {
        self.map(f32::sqrt)
    }
    /// tanh x elementwise.
    pub fn tanh(&self) -> Tensor {
        self.map(f32::tanh)
    }
    /// Logistic sigmoid elementwise.
    pub fn sigmoid(&self) -> Tensor {
        self.map(sigmoid)
    }
    /// max(0, x) elementwise.
    pub fn relu(&self) -> Tensor {
        self.map(relu)
    }
    /// abs(x) elementwise.
    pub fn abs(&self) -> Tensor {
        self.map(f32::abs)
    }
    /// xⁿ elementwise.
    pub fn powi(&self, n: i32) -> Tensor {
        self.map(|x| x.powi(n))
    }
    /// sin x elementwise (radians).
    pub fn sin(&self) -> Tensor {
        self.map(f32::sin)
    }
    /// cos x elementwise (radians).
    pub fn cos(&self) -> Tensor {
        self.map(f32::cos)
    }
}

impl Var {
    /// eˣ elementwise.
    pub fn exp(&self) -> Var {
        let y = self.value().exp();
        let y2 = y.clone();
        Var::custom_op("exp", &[self], y, move |g, _| vec![Some(g.mul(&y2))])
    }

    /// ln x elementwise.
    pub fn log(&self) -> Var {
        let x = self.value().clone();
        Var::custom_op("log", &[self], x.log(), move |g, _| vec![Some(g.div(&x))])
    }

    /// √x elementwise.
    pub fn sqrt(&self) -> Var {
        let y = self.value().sqrt();
        let y2 = y.clone();
        Var::custom_op("sqrt", &[self], y, move |g, _| {
            vec![Some(zip_with(g, &y2, "sqrt backward", |g, y| {
                g / (2.0 * y)
            }))]
        })
    }

    /// tanh x elementwise.
    pub fn tanh(&self) -> Var {
        let y = self.value().tanh();
        let y2 = y.clone();
        Var::custom_op("tanh", &[self], y, move |g, _| {
            vec![Some(zip_with(g, &y2, "tanh backward", |g, y| {
                g * (1.0 - y * y)
            }))]
        })
    }

    /// Logistic sigmoid elementwise.
    pub fn sigmoid(&self) -> Var {
        let y = self.value().sigmoid();
        let y2 = y.clone();
        Var::custom_op("sigmoid", &[self], y, move |g, _| {
            vec![Some(zip_with(g, &y2, "sigmoid backward", |g, y| {
                g * y * (1.0 - y)
            }))]
        })
    }

    /// max(0, x) elementwise; the sub-gradient at 0 is 0.
    pub fn relu(&self) -> Var {
        let x = self.value().clone();
        Var::custom_op("relu", &[self], x.relu(), move |g, _| {
            vec![Some(zip_with(g, &x, "relu backward", |g, x| {
                if x > 0.0 {
                    g
                } else {
                    0.0
                }
            }))]
        })
    }

    /// abs(x) elementwise; the sub-gradient at 0 is 0.
    pub fn abs(&self) -> Var {
        let x = self.value().clone();
        Var::custom_op("abs", &[self], x.abs(), move |g, _| {
            vec![Some(zip_with(g, &x, "abs backward", |g, x| g * sign(x)))]
        })
    }

    /// xⁿ elementwise.
    pub fn powi(&self, n: i32) -> Var {
        let x = self.value().clone();
        Var::custom_op("powi", &[self], x.powi(n), move |g, _| {
            vec![Some(zip_with(g, &x, "powi backward", |g, x| {
                g * n as f32 * x.powi(n - 1)
            }))]
        })
    }

    /// sin x elementwise (radians): ∂ sin x = cos x. (The rotation and
    /// similarity transforms build A_θ from it.)
    pub fn sin(&self) -> Var {
        let x = self.value().clone();
        Var::custom_op("sin", &[self], x.sin(), move |g, _| {
            vec![Some(g.mul(&x.cos()))]
        })
    }

    /// cos x elementwise (radians): ∂ cos x = −sin x.
    pub fn cos(&self) -> Var {
        let x = self.value().clone();
        Var::custom_op("cos", &[self], x.cos(), move |g, _| {
            vec![Some(g.mul(&x.map(|v| -v.sin())))]
        })
    }
}
