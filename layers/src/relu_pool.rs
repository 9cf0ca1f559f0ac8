//! ReLU followed by max pooling, in one pass: the paper's "conv → ReLU →
//! max-pool" without the rectified activation ever being stored.
//!
//! | op            | forward                                   | ∂L/∂x                                              |
//! |---------------|-------------------------------------------|----------------------------------------------------|
//! | relu_max_pool | y = max over the window of max(0, x)      | g added at the window's arg-max a if x[a] > 0      |
//!
//! The same values, arg-maxes and gradients as [`crate::ReLU`] then
//! [`crate::MaxPool2d`], bit for bit (tested): each window element is
//! rectified as it is read, with the same function and tie rule, and
//! x[a] > 0 exactly when y = max(0, x[a]) > 0, so the backward reads the
//! ReLU's mask off the pooled output. What it saves is a write and two
//! reads of the full-resolution activation in the forward, and a
//! full-resolution pass in the backward: on the paper's CNN classifier the
//! first conv's output is 38 MB per batch of 256. The layer is
//! [`crate::MaxPool2d::after_relu`].

use crate::pool::{max_pool_of, scatter_where};
use engine::pool::Pooled;
use engine::Var;

/// Tracked ReLU then max pooling with a `k`×`k` window and stride `s`.
pub fn relu_max_pool2d(x: &Var, k: usize, s: usize) -> Var {
    // The same rectifier as `Tensor::relu`, hence the same bits.
    let (out, arg) = max_pool_of("relu_max_pool2d", x.value(), k, s, engine::ops::unary::relu);
    let arg = Pooled::new(arg);
    let y = out.clone();
    let in_shape = x.shape().to_vec();
    Var::custom_op("relu_max_pool2d", &[x], out, move |g, _| {
        vec![Some(scatter_where(g, &arg, &in_shape, Some(&y)))]
    })
}
