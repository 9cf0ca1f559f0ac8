//! Optimiser steps against hand-computed values, clipping, NaN detection,
//! parameter groups and schedules.

use engine::Tensor;
use layers::*;

fn param(name: &str, v: &[f32]) -> Param {
    Param::new(name, Tensor::from_vec(v.to_vec(), &[v.len()]))
}

fn grad(v: &[f32]) -> Tensor {
    Tensor::from_vec(v.to_vec(), &[v.len()])
}

fn close(a: f32, b: f64) {
    assert!((a as f64 - b).abs() < 1e-6, "{a} vs {b}");
}

/// Two steps of `opt` on p = 1 with gradients 0.5 then `g2`, lr 0.1.
fn two_steps(opt: &mut dyn Optimizer, g2: f32) -> (f32, f32) {
    let mut p = param("p", &[1.0]);
    opt.step(&mut [&mut p], &[grad(&[0.5])], 0.1).unwrap();
    let first = p.value.data()[0];
    opt.step(&mut [&mut p], &[grad(&[g2])], 0.1).unwrap();
    (first, p.value.data()[0])
}

#[test]
fn sgd_plain_and_weight_decay() {
    let (a, b) = two_steps(&mut Sgd::new(), 0.5);
    close(a, 0.95);
    close(b, 0.90);
    // g + λp = 0.5 + 0.1·1 = 0.6 → p = 1 − 0.1·0.6.
    let (a, _) = two_steps(&mut Sgd::new().weight_decay(0.1), 0.5);
    close(a, 0.94);
}

#[test]
fn sgd_momentum_by_hand() {
    // v1 = 0.5, p1 = 1 − 0.05 = 0.95; v2 = 0.9·0.5 + 0.5 = 0.95, p2 = 0.95 − 0.095.
    let (a, b) = two_steps(&mut Sgd::momentum(0.9), 0.5);
    close(a, 0.95);
    close(b, 0.855);
}

#[test]
fn sgd_nesterov_by_hand() {
    // v1 = 0.5, d1 = 0.5 + 0.9·0.5 = 0.95, p1 = 0.905;
    // v2 = 0.95, d2 = 0.5 + 0.9·0.95 = 1.355, p2 = 0.905 − 0.1355 = 0.7695.
    let (a, b) = two_steps(&mut Sgd::momentum(0.9).nesterov(true), 0.5);
    close(a, 0.905);
    close(b, 0.7695);
}

#[test]
fn adam_by_hand() {
    // t = 1: m = 0.05, v = 2.5e-4, m̂ = 0.5, v̂ = 0.25 → p = 1 − 0.1·0.5/(0.5 + 1e-8).
    // t = 2 (g = −1): m = −0.055, v = 1.24975e-3, m̂ = −0.28947, v̂ = 0.62519
    //   → p = 0.9366103542.
    let mut opt = Adam::new();
    let (a, b) = two_steps(&mut opt, -1.0);
    close(a, 0.900000002);
    close(b, 0.9366103542);
    assert_eq!(opt.steps(), 2);
}

#[test]
fn adamw_decouples_the_decay() {
    // p ← p − ηλp = 1 − 0.1·0.1 = 0.99, then the Adam step of 0.1.
    let (a, _) = two_steps(&mut Adam::adamw(0.1), 0.5);
    close(a, 0.89);
    // Coupled L2: g = 0.5 + 0.1 = 0.6, but the first Adam step is still ±η.
    let (a, _) = two_steps(&mut Adam::new().weight_decay(0.1), 0.5);
    close(a, 0.9);
}

#[test]
fn group_learning_rate_multiplier() {
    let mut a = param("net.w", &[1.0]);
    let mut b = param("loc.w", &[1.0]);
    b.group = "loc".into();
    let mut opt = Sgd::new();
    opt.set_group_lr("loc", 0.1);
    opt.step(&mut [&mut a, &mut b], &[grad(&[1.0]), grad(&[1.0])], 0.5)
        .unwrap();
    close(a.value.data()[0], 0.5);
    close(b.value.data()[0], 0.95);
}

#[test]
fn gradient_norm_clipping() {
    let mut p = param("p", &[0.0, 0.0]);
    let mut opt = Sgd::new();
    opt.set_clip_norm(Some(1.0));
    let s = opt.step(&mut [&mut p], &[grad(&[3.0, 4.0])], 1.0).unwrap();
    assert_eq!(s.grad_norm, 5.0);
    assert!(s.clipped);
    close(p.value.data()[0], -0.6);
    close(p.value.data()[1], -0.8);
    // Below the threshold nothing is scaled.
    let s = opt.step(&mut [&mut p], &[grad(&[0.3, 0.4])], 1.0).unwrap();
    assert!(!s.clipped);
    close(p.value.data()[0], -0.9);

    let mut gs = vec![grad(&[3.0]), grad(&[4.0])];
    assert_eq!(clip_grad_norm(&mut gs, 2.5), 5.0);
    close(gs[0].data()[0], 1.5);
    close(gs[1].data()[0], 2.0);
}

#[test]
fn non_finite_gradient_names_the_parameter_and_changes_nothing() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut a = param("conv1.weight", &[1.0, 2.0]);
        let mut b = param("fc.bias", &[3.0]);
        let mut opt = Adam::new();
        let e = opt
            .step(
                &mut [&mut a, &mut b],
                &[grad(&[0.1, 0.2]), grad(&[bad])],
                0.1,
            )
            .unwrap_err();
        assert_eq!(
            e,
            OptimError::NonFiniteGradient {
                param: "fc.bias".into(),
                count: 1
            }
        );
        assert!(e.to_string().contains("fc.bias"));
        assert_eq!(a.value.data(), &[1.0, 2.0]);
        assert_eq!(b.value.data(), &[3.0]);
        assert_eq!(opt.steps(), 0);
    }
}

#[test]
fn gradient_norm_covers_every_value_and_finds_non_finite_ones_anywhere() {
    // 19 values: two full groups of eight and a tail of three.
    let g: Vec<f32> = (1..=19).map(|v| v as f32).collect();
    let mut p = param("p", &[0.0; 19]);
    let s = Sgd::new().step(&mut [&mut p], &[grad(&g)], 0.0).unwrap();
    // Σ k² for k = 1..19 = 2,470.
    assert_eq!(s.grad_norm, (2470.0f64).sqrt() as f32);
    // The largest finite gradients square without overflow.
    let s = Sgd::new()
        .step(
            &mut [&mut param("q", &[0.0; 2])],
            &[grad(&[f32::MAX, -f32::MAX])],
            0.0,
        )
        .unwrap();
    assert_eq!(s.grad_norm, f32::INFINITY, "the norm itself exceeds f32");
    for at in [0, 7, 8, 15, 16, 18] {
        let mut bad = g.clone();
        bad[at] = f32::NAN;
        bad[(at + 5) % 19] = f32::INFINITY;
        let e = Sgd::new()
            .step(&mut [&mut param("w", &[0.0; 19])], &[grad(&bad)], 0.1)
            .unwrap_err();
        assert_eq!(
            e,
            OptimError::NonFiniteGradient {
                param: "w".into(),
                count: 2
            },
            "non-finite values at {at} and {}",
            (at + 5) % 19
        );
    }
}

/// Every optimiser buffer of `opt`, for checking that none is subnormal.
fn buffers(opt: &dyn Optimizer) -> Vec<f32> {
    opt.state()
        .tensors
        .iter()
        .flat_map(|(_, t)| t.data().to_vec())
        .collect()
}

#[test]
fn moments_of_a_gradient_that_stops_reach_zero_without_going_subnormal() {
    // One step of gradient, then none: the moments decay geometrically
    // (Adam's first by 0.9 a step, its second by 0.999, SGD's by 0.9) and
    // must go straight from the normal range to zero.
    let mut adam = Adam::new();
    let mut sgd = Sgd::momentum(0.9);
    let mut a = param("w", &[1.0, -1.0]);
    let mut b = param("w", &[1.0, -1.0]);
    let mut reached_zero = [false; 2];
    for step in 0..100_000 {
        let g = if step == 0 { [1e-3, -2e-3] } else { [0.0, 0.0] };
        adam.step(&mut [&mut a], &[grad(&g)], 1e-3).unwrap();
        if step < 2_000 {
            sgd.step(&mut [&mut b], &[grad(&g)], 1e-3).unwrap();
        }
        for (k, opt) in [&adam as &dyn Optimizer, &sgd].into_iter().enumerate() {
            let bufs = buffers(opt);
            assert!(
                bufs.iter()
                    .all(|v| *v == 0.0 || v.abs() >= f32::MIN_POSITIVE),
                "step {step}: a subnormal moment in {bufs:?}"
            );
            reached_zero[k] |= bufs.iter().all(|v| *v == 0.0);
        }
    }
    assert_eq!(reached_zero, [true, true], "the moments never reached zero");
    // A weight whose gradient stopped keeps its place once its moments vanish.
    let before = a.value.data().to_vec();
    adam.step(&mut [&mut a], &[grad(&[0.0, 0.0])], 1e-3)
        .unwrap();
    assert_eq!(a.value.data(), &before[..]);
}

#[test]
#[should_panic(expected = "optimiser step")]
fn mismatched_gradient_shape_panics() {
    let mut a = param("a", &[1.0, 2.0]);
    let _ = Sgd::new().step(&mut [&mut a], &[grad(&[1.0])], 0.1);
}

#[test]
fn step_decay_schedule() {
    let s = Schedule::paper();
    close(s.lr(0), 0.01);
    close(s.lr(49_999), 0.01);
    close(s.lr(50_000), 0.001);
    close(s.lr(99_999), 0.001);
    close(s.lr(100_000), 0.0001);
    close(s.lr(149_999), 0.0001);
}

#[test]
fn cosine_schedule() {
    let s = Schedule::cosine(1.0, 100, 0.0);
    close(s.lr(0), 1.0);
    close(s.lr(25), 0.5 * (1.0 + std::f64::consts::FRAC_1_SQRT_2));
    close(s.lr(50), 0.5);
    close(s.lr(100), 0.0);
    close(s.lr(1000), 0.0);
    let s = Schedule::cosine(1.0, 100, 0.1);
    close(s.lr(50), 0.55);
    close(s.lr(100), 0.1);
}

#[test]
fn linear_warmup() {
    let s = Schedule::constant(1.0).with_warmup(10);
    close(s.lr(0), 0.1);
    close(s.lr(4), 0.5);
    close(s.lr(9), 1.0);
    close(s.lr(500), 1.0);
    // Warm-up multiplies the decayed rate.
    let s = Schedule::cosine(2.0, 100, 0.0).with_warmup(100);
    close(
        s.lr(49),
        2.0 * 0.5 * (1.0 + (std::f64::consts::PI * 0.49).cos()) * 0.5,
    );
}
