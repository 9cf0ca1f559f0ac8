//! # engine
//!
//! f32 N-d tensors ([`Tensor`]), a minimal reverse-mode tape ([`Tape`], [`Var`])
//! and a finite-difference gradient checker ([`gradcheck()`]).
//!
//! Every differentiable op lives in `ops/`, one file per op family, with its
//! forward and backward formulas at the top and the backward right under the
//! forward.

pub mod alloc;
pub mod fsio;
pub mod gradcheck;
pub mod npy;
pub mod ops;
pub mod parallel;
pub mod rng;
pub mod tape;
pub mod tensor;

pub use gradcheck::{gradcheck, GradcheckError, GradcheckOptions, GradcheckReport};
pub use ops::broadcast::broadcast_shapes;
pub use ops::matmul::gemm;
pub use tape::{Grads, Tape, Var};
pub use tensor::{checked_numel, strides_of, ShapeError, Tensor};
