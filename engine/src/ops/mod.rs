//! Differentiable ops, one file per family. Each file opens with its forward
//! and backward formulas; each `Var` method records its backward right under
//! the forward computation.

pub mod arith;
pub mod broadcast;
pub mod matmul;
pub mod reduce;
pub mod shape;
pub mod softmax;
pub mod unary;
