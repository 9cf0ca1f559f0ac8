//! # engine
//!
//! f32 N-d tensors ([`Tensor`]), a minimal reverse-mode tape ([`Tape`], [`Var`])
//! and a finite-difference gradient checker ([`gradcheck()`]). Tensor storage
//! and per-step scratch come from a caching buffer [`pool`].
//!
//! Every differentiable op lives in `ops/`, one file per op family, with its
//! forward and backward formulas at the top and the backward right under the
//! forward.

// The one crate (with stn) where `unsafe` is allowed (the workspace denies
// it): SIMD kernels and the fast paths of the matrix product and of
// buffers. Every block carries a SAFETY comment.
#![allow(unsafe_code)]

pub mod fsio;
pub mod gradcheck;
pub mod kernels;
pub mod npy;
pub mod ops;
pub mod parallel;
pub mod pool;
pub mod rng;
pub mod tape;
pub mod tensor;

pub use gradcheck::{gradcheck, GradcheckError, GradcheckOptions, GradcheckReport};
pub use ops::broadcast::broadcast_shapes;
pub use ops::matmul::gemm;
pub use tape::{Grads, Tape, Var};
pub use tensor::{checked_numel, strides_of, ShapeError, Tensor};
