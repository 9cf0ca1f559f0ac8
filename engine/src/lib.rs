//! # engine
//!
//! f32 N-d tensors ([`Tensor`]), a minimal reverse-mode tape ([`Tape`], [`Var`])
//! and a finite-difference gradient checker ([`gradcheck()`]).
//!
//! Every differentiable op lives in `ops/`, one file per op family, with its
//! forward and backward formulas at the top and the backward right under the
//! forward.

pub mod npy;
pub mod tensor;

pub use tensor::{checked_numel, strides_of, ShapeError, Tensor};
