//! Every differentiable op against finite differences.

// `&[a.clone()]` reads better than `std::slice::from_ref(&a)` in a list of checks.
#![allow(clippy::cloned_ref_to_slice_refs)]

use engine::rng::seeded;
use engine::{gradcheck, GradcheckOptions, Tensor, Var};
use rand::Rng;

/// Values with |x| in [0.2, 1.2] and random signs: far from kinks at 0.
fn away_from_zero(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = seeded(seed);
    let n: usize = shape.iter().product();
    let v = (0..n)
        .map(|_| {
            let m: f32 = rng.gen_range(0.2..1.2);
            if rng.gen_bool(0.5) {
                m
            } else {
                -m
            }
        })
        .collect();
    Tensor::from_vec(v, shape)
}

fn positive(shape: &[usize], seed: u64) -> Tensor {
    away_from_zero(shape, seed).abs().affine(1.0, 0.3)
}

fn check(f: impl Fn(&[Var]) -> Var, inputs: &[Tensor]) {
    let report =
        gradcheck(f, inputs, &GradcheckOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.checks.len() >= 4);
}

#[test]
fn add_sub_mul_div_same_shape() {
    let a = away_from_zero(&[3, 4], 1);
    let b = positive(&[3, 4], 2);
    check(|x| x[0].add(&x[1]), &[a.clone(), b.clone()]);
    check(|x| x[0].sub(&x[1]), &[a.clone(), b.clone()]);
    check(|x| x[0].mul(&x[1]), &[a.clone(), b.clone()]);
    check(|x| x[0].div(&x[1]), &[a, b]);
}

#[test]
fn broadcasting_reduces_gradients_to_input_shapes() {
    let a = away_from_zero(&[2, 3, 4], 3);
    let row = positive(&[4], 4);
    let col = positive(&[2, 1, 1], 5);
    check(|x| x[0].add(&x[1]), &[a.clone(), row.clone()]);
    check(|x| x[0].sub(&x[1]), &[col.clone(), a.clone()]);
    check(|x| x[0].mul(&x[1]), &[a.clone(), col.clone()]);
    check(|x| x[0].div(&x[1]), &[a.clone(), row.clone()]);
    check(|x| x[1].div(&x[0]), &[col, row]);
}

#[test]
fn scalar_and_unary_ops() {
    let a = away_from_zero(&[5, 3], 6);
    let p = positive(&[5, 3], 7);
    check(|x| x[0].neg(), &[a.clone()]);
    check(|x| x[0].affine(-1.5, 0.25), &[a.clone()]);
    check(|x| x[0].exp(), &[a.clone()]);
    check(|x| x[0].log(), &[p.clone()]);
    check(|x| x[0].sqrt(), &[p.clone()]);
    check(|x| x[0].tanh(), &[a.clone()]);
    check(|x| x[0].sigmoid(), &[a.clone()]);
    check(|x| x[0].relu(), &[a.clone()]);
    check(|x| x[0].abs(), &[a.clone()]);
    check(|x| x[0].powi(3), &[a.clone()]);
    check(|x| x[0].sin(), &[a.clone()]);
    check(|x| x[0].cos(), &[a]);
}

#[test]
fn matmul_and_batched_matmul() {
    check(
        |x| x[0].matmul(&x[1]),
        &[away_from_zero(&[4, 5], 8), away_from_zero(&[5, 3], 9)],
    );
    check(
        |x| x[0].matmul(&x[1]),
        &[
            away_from_zero(&[3, 4, 5], 10),
            away_from_zero(&[3, 5, 2], 11),
        ],
    );
}

#[test]
fn reductions() {
    let a = away_from_zero(&[3, 4, 2], 12);
    check(|x| x[0].sum(), &[a.clone()]);
    check(|x| x[0].mean(), &[a.clone()]);
    for axis in 0..3 {
        check(|x| x[0].sum_axis(axis, false), &[a.clone()]);
        check(|x| x[0].mean_axis(axis, true), &[a.clone()]);
    }
    // Distinct values spaced well over the step apart: no ties in the max.
    let v: Vec<f32> = (0..24).map(|i| ((i * 7) % 24) as f32 * 0.1).collect();
    let d = Tensor::from_vec(v, &[3, 4, 2]);
    for axis in 0..3 {
        check(|x| x[0].max_axis(axis, false), &[d.clone()]);
    }
}

#[test]
fn shape_ops() {
    let a = away_from_zero(&[2, 3, 4], 13);
    let b = away_from_zero(&[2, 5, 4], 14);
    check(
        |x| x[0].reshape(&[6, 4]).mul(&x[0].reshape(&[6, 4])),
        &[a.clone()],
    );
    check(|x| x[0].permute(&[2, 0, 1]), &[a.clone()]);
    check(|x| x[0].transpose(0, 2), &[a.clone()]);
    check(|x| x[0].narrow(1, 1, 2), &[a.clone()]);
    check(|x| Var::concat(&[&x[0], &x[1]], 1), &[a.clone(), b]);
    check(
        |x| Var::stack(&[&x[0], &x[1]], 1),
        &[a.clone(), a.scale(0.5)],
    );
    check(|x| x[0].unsqueeze(0), &[a]);
}

#[test]
fn softmax_and_log_softmax() {
    let a = away_from_zero(&[3, 5], 15);
    check(|x| x[0].softmax(1), &[a.clone()]);
    check(|x| x[0].log_softmax(1), &[a.clone()]);
    check(|x| x[0].softmax(0), &[a.clone()]);
    check(|x| x[0].log_softmax(0), &[a]);
}

#[test]
fn composite_expression() {
    // A small MLP: tanh(x·W + b) → log_softmax → mean.
    let x = away_from_zero(&[4, 3], 16);
    let w = away_from_zero(&[3, 5], 17);
    let b = away_from_zero(&[5], 18);
    check(
        |v| v[0].matmul(&v[1]).add(&v[2]).tanh().log_softmax(1).mean(),
        &[x, w, b],
    );
}
