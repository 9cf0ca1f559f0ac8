//! The training-recipe pieces: the weights' moving average, label smoothing
//! and the one-cycle schedule, against their formulas.

use engine::{gradcheck, GradcheckOptions, Tensor, Var};
use layers::{cross_entropy, cross_entropy_smoothed, Ema, Param, Schedule};

#[test]
fn the_moving_average_follows_its_formula_with_the_warm_up() {
    let mut ema = Ema::new(0.99);
    let mut p = Param::new("w", Tensor::from_vec(vec![1.0, -2.0], &[2]));
    ema.update(&[&p]);
    // The first update takes the weights as they are.
    assert_eq!(ema.get("w").unwrap().to_vec(), vec![1.0, -2.0]);
    let mut want = [1.0f32, -2.0];
    for t in 2..=200u64 {
        p.value = Tensor::from_vec(vec![t as f32, 0.5 * t as f32], &[2]);
        ema.update(&[&p]);
        let d = 0.99f32.min(((1 + t) as f64 / (10 + t) as f64) as f32);
        assert_eq!(d, ema.decay_at(t));
        want[0] = d * want[0] + (1.0 - d) * t as f32;
        want[1] = d * want[1] + (1.0 - d) * 0.5 * t as f32;
        assert_eq!(ema.get("w").unwrap().to_vec(), want.to_vec(), "update {t}");
    }
    // The warm-up ends where (1 + t)/(10 + t) reaches the decay.
    assert!(ema.decay_at(5) < 0.99 && ema.decay_at(2000) == 0.99);
}

#[test]
fn the_average_swaps_in_for_evaluation_and_back() {
    let mut ema = Ema::new(0.5);
    let mut a = Param::new("a", Tensor::from_vec(vec![0.0], &[1]));
    let mut b = Param::new("b", Tensor::from_vec(vec![7.0], &[1]));
    ema.update(&[&a]);
    a.value = Tensor::from_vec(vec![4.0], &[1]);
    ema.update(&[&a]);
    let d = ema.decay_at(2);
    let avg = d * 0.0 + (1.0 - d) * 4.0;
    let mut params = vec![&mut a, &mut b];
    let saved = ema.swap_in(&mut params);
    assert_eq!(params[0].value.to_vec(), vec![avg]);
    // A parameter never averaged keeps its value.
    assert_eq!(params[1].value.to_vec(), vec![7.0]);
    Ema::restore(&mut params, saved);
    assert_eq!(a.value.to_vec(), vec![4.0]);
}

#[test]
fn the_average_state_round_trips_and_is_checked() {
    let p = Param::new("w", Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]));
    let mut ema = Ema::new(0.9);
    ema.update(&[&p]);
    ema.update(&[&p]);
    let mut state = layers::OptimState::default();
    state.words.push(("adam.t".into(), 2));
    ema.attach(&mut state);
    let mut inner = state.clone();
    let mine = Ema::detach(&mut inner);
    assert_eq!(inner.words, vec![("adam.t".to_string(), 2)]);
    assert!(inner.tensors.is_empty());
    let mut back = Ema::new(0.9);
    back.load_state(&mine, &[&p]).unwrap();
    assert_eq!(back, ema);
    // Another model's parameters are refused.
    let q = Param::new("w", Tensor::zeros(&[4]));
    assert!(Ema::new(0.9).load_state(&mine, &[&q]).is_err());
    let r = Param::new("v", Tensor::zeros(&[3]));
    assert!(Ema::new(0.9).load_state(&mine, &[&r]).is_err());
}

fn logits() -> Tensor {
    Tensor::from_vec(
        vec![
            0.3, -1.2, 2.0, 0.0, 0.7, 0.1, -0.4, 1.5, -2.0, 0.9, 0.2, -0.3,
        ],
        &[3, 4],
    )
}

#[test]
fn label_smoothing_matches_the_smoothed_target_formula() {
    let z = logits();
    let labels = [2, 0, 3];
    let eps = 0.2f32;
    let got = cross_entropy_smoothed(&Var::constant(z.clone()), &labels, eps)
        .value()
        .item();
    let mut want = 0.0f64;
    for (n, row) in z.data().chunks(4).enumerate() {
        let lse = row.iter().map(|&v| (v as f64).exp()).sum::<f64>().ln();
        for (k, &v) in row.iter().enumerate() {
            let q = if k == labels[n] {
                1.0 - eps as f64
            } else {
                0.0
            } + eps as f64 / 4.0;
            want += q * (lse - v as f64);
        }
    }
    want /= 3.0;
    assert!((got as f64 - want).abs() < 1e-5, "{got} vs {want}");
    // ε = 0 is the plain cross-entropy, bit for bit.
    let plain = cross_entropy(&Var::constant(z.clone()), &labels)
        .value()
        .item();
    let zero = cross_entropy_smoothed(&Var::constant(z), &labels, 0.0)
        .value()
        .item();
    assert_eq!(plain.to_bits(), zero.to_bits());
}

#[test]
fn label_smoothing_gradient_matches_finite_differences() {
    let labels = [1, 3, 0];
    let report = gradcheck(
        |xs: &[Var]| cross_entropy_smoothed(&xs[0], &labels, 0.1),
        &[logits()],
        &GradcheckOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.checks.len() >= 3);
}

#[test]
fn one_cycle_rises_then_anneals() {
    let s = Schedule::one_cycle(0.01, 1000, 0.25);
    assert!((s.lr(0) - 0.01 / 25.0).abs() < 1e-9);
    assert!(s.lr(125) > s.lr(124) && s.lr(124) > s.lr(0));
    assert!(
        (s.lr(250) - 0.01).abs() < 1e-9,
        "peak at the end of the rise"
    );
    assert!(s.lr(600) < s.lr(400));
    assert!((s.lr(1000) - 0.01 * 1e-4).abs() < 1e-9);
    assert_eq!(s.lr(5000), s.lr(1000), "flat after the end");
    // Halfway through the descent the cosine is at the mean of its ends.
    let mid = s.lr(625) as f64;
    assert!((mid - 0.5 * (0.01 + 1e-6)).abs() < 1e-8, "{mid}");
}
