//! Finite-difference checks of every layer op's backward.

use engine::{gradcheck, GradcheckOptions, Tensor, Var};
use layers::{
    avg_pool2d, conv2d, cross_entropy, dropout_mask, dropout_with_mask, linear, max_pool2d,
};

fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::normal(shape, 0.0, 1.0, &mut engine::rng::seeded(seed))
}

/// Distinct values (a shuffled ramp spaced 0.1 apart, far more than the
/// gradcheck step), so no max-pool window has a tie or a near-tie.
fn distinct(shape: &[usize], seed: u64) -> Tensor {
    use rand::seq::SliceRandom;
    let n: usize = shape.iter().product();
    let mut v: Vec<f32> = (0..n).map(|i| i as f32 * 0.1 - n as f32 * 0.05).collect();
    v.shuffle(&mut engine::rng::seeded(seed));
    Tensor::from_vec(v, shape)
}

fn check(f: impl Fn(&[Var]) -> Var, inputs: &[Tensor]) {
    let report =
        gradcheck(f, inputs, &GradcheckOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.checks.len() >= 4);
}

#[test]
fn conv2d_basic() {
    check(
        |v| conv2d(&v[0], &v[1], Some(&v[2]), 1, 0),
        &[
            randn(&[2, 3, 7, 6], 1),
            randn(&[4, 3, 3, 3], 2),
            randn(&[4], 3),
        ],
    );
}

#[test]
fn conv2d_stride2() {
    check(
        |v| conv2d(&v[0], &v[1], Some(&v[2]), 2, 0),
        &[
            randn(&[2, 2, 9, 8], 4),
            randn(&[3, 2, 3, 3], 5),
            randn(&[3], 6),
        ],
    );
}

#[test]
fn conv2d_padding_and_stride() {
    check(
        |v| conv2d(&v[0], &v[1], Some(&v[2]), 2, 2),
        &[
            randn(&[3, 2, 6, 7], 7),
            randn(&[2, 2, 5, 5], 8),
            randn(&[2], 9),
        ],
    );
}

#[test]
fn conv2d_no_bias_many_chunks() {
    // 18 samples: two chunks, the second one partial.
    check(
        |v| conv2d(&v[0], &v[1], None, 1, 1),
        &[randn(&[18, 1, 5, 5], 10), randn(&[2, 1, 3, 3], 11)],
    );
}

#[test]
fn max_pool_overlapping_and_not() {
    check(|v| max_pool2d(&v[0], 2, 2), &[distinct(&[2, 3, 6, 6], 12)]);
    check(|v| max_pool2d(&v[0], 3, 2), &[distinct(&[2, 2, 7, 8], 13)]);
}

#[test]
fn avg_pool_overlapping_and_not() {
    check(|v| avg_pool2d(&v[0], 2, 2), &[randn(&[2, 3, 6, 6], 14)]);
    check(|v| avg_pool2d(&v[0], 3, 2), &[randn(&[2, 2, 7, 8], 15)]);
}

#[test]
fn linear_with_and_without_bias() {
    check(
        |v| linear(&v[0], &v[1], Some(&v[2])),
        &[randn(&[5, 7], 16), randn(&[3, 7], 17), randn(&[3], 18)],
    );
    check(
        |v| linear(&v[0], &v[1], None),
        &[randn(&[4, 6], 19), randn(&[2, 6], 20)],
    );
}

#[test]
fn dropout_fixed_mask() {
    let mask = dropout_mask(&[4, 10], 0.5, &mut engine::rng::seeded(21));
    check(
        move |v| dropout_with_mask(&v[0], &mask),
        &[randn(&[4, 10], 22)],
    );
}

#[test]
fn cross_entropy_loss() {
    let labels = [3, 0, 4, 4, 1, 2];
    check(
        |v| cross_entropy(&v[0], &labels),
        &[randn(&[6, 5], 23).scale(2.0)],
    );
}

#[test]
fn small_network_end_to_end() {
    // conv → tanh → avg-pool → linear → loss, gradient w.r.t. every weight.
    // (Smooth on purpose: perturbing the weights moves conv outputs across
    // relu and max-pool kinks; those ops are checked alone above.)
    let labels = [1, 0, 2];
    check(
        |v| {
            let h = conv2d(&v[0], &v[1], Some(&v[2]), 1, 0).tanh();
            let h = avg_pool2d(&h, 2, 2);
            let h = h.reshape(&[3, 2 * 2 * 2]);
            cross_entropy(&linear(&h, &v[3], Some(&v[4])), &labels)
        },
        &[
            randn(&[3, 1, 6, 6], 24),
            randn(&[2, 1, 3, 3], 25).scale(0.3),
            Tensor::from_vec(vec![0.05, -0.03], &[2]),
            randn(&[3, 8], 26).scale(0.3),
            randn(&[3], 27),
        ],
    );
}
