//! Elementwise arithmetic with NumPy broadcasting.
//!
//! Forward: `c = a ∘ b` over the broadcast shape. Backward, with `g = ∂L/∂c`
//! (returned in the broadcast shape; the tape sums each back to its input's shape):
//!
//! | op  | ∂L/∂a    | ∂L/∂b          |
//! |-----|----------|----------------|
//! | add | g        | g              |
//! | sub | g        | −g             |
//! | mul | g·b      | g·a            |
//! | div | g / b    | −g·a / b²      |
//! | neg | −g       |                |
//! | a·s + t (scalars s, t) | g·s |   |

use super::broadcast::zip_with;
use crate::{Tensor, Var};

impl Tensor {
    /// `self + other`, broadcasting.
    pub fn add(&self, other: &Tensor) -> Tensor {
        zip_with(self, other, "add", |a, b| a + b)
    }
    /// `self − other`, broadcasting.
    pub fn sub(&self, other: &Tensor) -> Tensor {
        zip_with(self, other, "sub", |a, b| a - b)
    }
    /// `self · other`, broadcasting.
    pub fn mul(&self, other: &Tensor) -> Tensor {
        zip_with(self, other, "mul", |a, b| a * b)
    }
    /// `self / other`, broadcasting.
    pub fn div(&self, other: &Tensor) -> Tensor {
        zip_with(self, other, "div", |a, b| a / b)
    }
    /// `−self`.
    pub fn neg(&self) -> Tensor {
        self.map(|a| -a)
    }
    /// `self · s + t` for scalars.
    pub fn affine(&self, s: f32, t: f32) -> Tensor {
        self.map(|a| a * s + t)
    }
    /// `self · s`.
    pub fn scale(&self, s: f32) -> Tensor {
        self.map(|a| a * s)
    }
}

impl Var {
    /// `self + other`, broadcasting.
    pub fn add(&self, other: &Var) -> Var {
        let out = self.value().add(other.value());
        Var::custom_op("add", &[self, other], out, |g, _| {
            vec![Some(g.clone()), Some(g.clone())]
        })
    }

    /// `self − other`, broadcasting.
    pub fn sub(&self, other: &Var) -> Var {
        let out = self.value().sub(other.value());
        Var::custom_op("sub", &[self, other], out, |g, needs| {
            vec![Some(g.clone()), needs[1].then(|| g.neg())]
        })
    }

    /// `self · other`, broadcasting.
    pub fn mul(&self, other: &Var) -> Var {
        let (a, b) = (self.value().clone(), other.value().clone());
        let out = a.mul(&b);
        Var::custom_op("mul", &[self, other], out, move |g, needs| {
            vec![needs[0].then(|| g.mul(&b)), needs[1].then(|| g.mul(&a))]
        })
    }

    /// `self / other`, broadcasting.
    pub fn div(&self, other: &Var) -> Var {
        let (a, b) = (self.value().clone(), other.value().clone());
        let out = a.div(&b);
        Var::custom_op("div", &[self, other], out, move |g, needs| {
            vec![
                needs[0].then(|| g.div(&b)),
                needs[1].then(|| g.mul(&a).div(&b.mul(&b)).neg()),
            ]
        })
    }

    /// `−self`.
    pub fn neg(&self) -> Var {
        Var::custom_op("neg", &[self], self.value().neg(), |g, _| {
            vec![Some(g.neg())]
        })
    }

    /// `self · s + t` for scalars.
    pub fn affine(&self, s: f32, t: f32) -> Var {
        Var::custom_op("affine", &[self], self.value().affine(s, t), move |g, _| {
            vec![Some(g.scale(s))]
        })
    }

    /// `self · s`.
    pub fn scale(&self, s: f32) -> Var {
        self.affine(s, 0.0)
    }
}

macro_rules! binary_operator {
    ($trait:ident, $method:ident) => {
        impl std::ops::$trait<&Var> for &Var {
            type Output = Var;
            fn $method(self, rhs: &Var) -> Var {
                Var::$method(self, rhs)
            }
        }
        impl std::ops::$trait<&Tensor> for &Tensor {
            type Output = Tensor;
            fn $method(self, rhs: &Tensor) -> Tensor {
                Tensor::$method(self, rhs)
            }
        }
    };
}
binary_operator!(Add, add);
binary_operator!(Sub, sub);
binary_operator!(Mul, mul);
binary_operator!(Div, div);

impl std::ops::Neg for &Var {
    type Output = Var;
    fn neg(self) -> Var {
        Var::neg(self)
    }
}
