//! The fused ReLU + max-pool against the two layers it replaces: the same
//! bits forward and backward, on inputs with ties, zeros of both signs,
//! negatives-only windows and NaNs; and its own finite-difference check.

use engine::{gradcheck, GradcheckOptions, Tape, Tensor};
use layers::{max_pool2d, relu_max_pool2d, Ctx, MaxPool2d, Module, ReLU, Sequential};

/// Values from a small set (many ties), both zeros, negatives and a NaN.
fn awkward(shape: &[usize], k: usize, seed: u64) -> Tensor {
    use rand::Rng as _;
    let mut rng = engine::rng::seeded(seed);
    let pool = [-2.0, -0.5, -0.0, 0.0, 0.5, 1.0, 1.0, 3.0];
    let n: usize = shape.iter().product();
    let mut v: Vec<f32> = (0..n).map(|_| pool[rng.gen_range(0..pool.len())]).collect();
    v[n / 3] = f32::NAN;
    // A whole window of negatives (the first k×k window of the first plane).
    let w = shape[3];
    for r in 0..k {
        v[r * w..][..k].fill(-1.0);
    }
    Tensor::from_vec(v, shape)
}

/// Output bits and input-gradient bits of `f` on `x`, with an upstream
/// gradient of distinct values (also of both signs and with a -0).
fn run(f: impl Fn(&engine::Var) -> engine::Var, x: &Tensor) -> (Vec<u32>, Vec<u32>) {
    let tape = Tape::new();
    let xv = tape.leaf(x.clone());
    let y = f(&xv);
    let n = y.value().numel();
    let mut g: Vec<f32> = (0..n).map(|i| (i as f32 - n as f32 / 2.0) * 0.25).collect();
    g[n - 1] = -0.0; // not window 0, the all-negative one: its g must be dropped
    let gy = Tensor::from_vec(g, y.shape());
    let grads = y.mul(&engine::Var::constant(gy)).sum().backward();
    (y.value().bits(), grads.get(&xv).unwrap().bits())
}

#[test]
fn fused_equals_relu_then_max_pool_bit_for_bit() {
    for (shape, k, s, seed) in [
        ([3, 2, 6, 8], 2, 2, 1),
        ([2, 3, 7, 7], 2, 2, 2), // odd sides: the last row and column unread
        ([2, 2, 7, 8], 3, 2, 3), // overlapping windows share arg-maxes
        ([1, 4, 9, 9], 3, 3, 4),
    ] {
        let x = awkward(&shape, k, seed);
        let fused = run(|v| relu_max_pool2d(v, k, s), &x);
        let plain = run(|v| max_pool2d(&v.relu(), k, s), &x);
        assert_eq!(fused.0, plain.0, "forward, {shape:?} k{k} s{s}");
        assert_eq!(fused.1, plain.1, "∂x, {shape:?} k{k} s{s}");
        // The case the backward's mask is for: some windows pooled a
        // non-positive value, so part of g must not reach x.
        assert!(fused.0.iter().any(|&b| f32::from_bits(b) == 0.0));
    }
}

#[test]
fn fused_layer_matches_the_two_layers_and_describes_both() {
    let x = awkward(&[2, 3, 10, 10], 2, 5);
    let ctx = Ctx::eval();
    let two = Sequential::new().push(ReLU).push(MaxPool2d::new(2));
    let one = MaxPool2d::new(2).after_relu();
    let tape = Tape::new();
    let xv = tape.leaf(x);
    assert_eq!(
        one.forward(&xv, &ctx).value().bits(),
        two.forward(&xv, &ctx).value().bits()
    );
    assert_eq!(one.output_shape(&[2, 3, 10, 10]), vec![2, 3, 5, 5]);
    assert_eq!(one.describe(), "ReLU+MaxPool2d k2 s2");
}

#[test]
fn fused_gradcheck() {
    // Distinct values well away from 0 and from each other, so no kink is
    // within the finite-difference step; half of them negative.
    use rand::seq::SliceRandom;
    let n = 2 * 3 * 6 * 6;
    let mut v: Vec<f32> = (0..n)
        .map(|i| i as f32 * 0.1 - n as f32 * 0.05 + 0.05)
        .collect();
    v.shuffle(&mut engine::rng::seeded(6));
    let x = Tensor::from_vec(v, &[2, 3, 6, 6]);
    let report = gradcheck(
        |v| relu_max_pool2d(&v[0], 2, 2),
        &[x],
        &GradcheckOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.checks.len() >= 4);
}
