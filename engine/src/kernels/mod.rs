//! Hand-written SIMD kernels that crates above the engine call through safe
//! functions: the `unsafe` they need stays in this crate.
//!
//! - [`gemm6x16`]: the convolution's register-blocked FMA micro-kernel
//!   (used by `layers::conv`);
//! - [`peak`]: a probe of the machine's FP32 FMA peak (used by the
//!   benchmark report);
//! - [`runs`]: adding short runs of one slice into another (col2im);
//! - [`transpose`]: blocked matrix transposition (the convolution's Gᵀ).

pub mod gemm6x16;
pub mod peak;
pub mod runs;
pub mod transpose;
