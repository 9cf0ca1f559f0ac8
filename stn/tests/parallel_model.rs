//! The two-transformer models (MNIST addition): shapes, names, that both
//! transformers see both channels and are trained, and their parameter
//! gradients against finite differences.

use engine::rng::seeded;
use engine::{Tape, Tensor, Var};
use layers::{cross_entropy, Ctx, Module};
use stn::transforms::ThinPlateSpline;
use stn::{build_model_for, InputSpec, Model};

const ADD28: InputSpec = InputSpec {
    channels: 2,
    side: 28,
    classes: 19,
};

/// Images that are linear in the pixel coordinates, different per sample
/// and channel: bilinear sampling of them is exactly linear in the sampling
/// points (no kinks), so finite differences see only the network's kinks.
fn linear_images(n: usize, c: usize, side: usize) -> Tensor {
    let mut v = Vec::with_capacity(n * c * side * side);
    for i in 0..n {
        for ch in 0..c {
            let (a, b) = (0.013 * (1 + i + 2 * ch) as f32, 0.017 * (3 - ch) as f32);
            for y in 0..side {
                for x in 0..side {
                    v.push(0.1 + a * x as f32 - b * y as f32 + 0.5 * ch as f32);
                }
            }
        }
    }
    Tensor::from_vec(v, &[n, c, side, side])
}

/// A head bias that shrinks the input to 0.8 of its size (so no sampling
/// point is near the border) with a small shift particular to each branch.
fn off_identity_bias(transform: &str, branch: usize, p: usize) -> Vec<f32> {
    let t = 0.03 * branch as f32;
    match transform {
        "affine" => vec![0.8, 0.05, t, -0.04, 0.8, -t],
        "proj" => vec![0.8, 0.05, t, -0.04, 0.8, -t, 0.01, -0.02],
        "tps" => {
            let k = ((p / 2) as f64).sqrt().round() as usize;
            ThinPlateSpline::new(k)
                .control_points()
                .iter()
                .flat_map(|c| [-0.2 * c[0] + t, -0.2 * c[1] - t])
                .collect()
        }
        other => panic!("no test θ for {other}"),
    }
}

/// Moves both heads off the identity: a bias per branch and small random
/// weights, so θ differs per sample and the localisation nets get gradients.
fn move_heads(m: &mut Model, seed: u64) {
    let names: Vec<String> = m
        .transformers()
        .iter()
        .map(|s| s.transform().name().to_string())
        .collect();
    let mut rng = seeded(seed);
    for p in m.params_mut() {
        let branch = if p.name.starts_with("st1.") { 1 } else { 2 };
        if p.name.ends_with("theta.bias") {
            let b = off_identity_bias(&names[branch - 1], branch, p.value.numel());
            p.value = Tensor::from_vec(b, p.value.shape());
        } else if p.name.ends_with("theta.weight") {
            p.value = Tensor::normal(p.value.shape(), 0.0, 0.005, &mut rng);
        }
    }
}

/// Loss of the model in evaluation mode (parameters as they are).
fn loss_of(m: &Model, x: &Tensor, y: &[usize]) -> f64 {
    let logits = m.forward(&Var::constant(x.clone()), &Ctx::eval());
    cross_entropy(&logits, y).value().item() as f64
}

/// L(p + h·d) with the parameters moved along `d` (one tensor per parameter).
fn loss_along(m: &mut Model, d: &[Vec<f32>], h: f32, x: &Tensor, y: &[usize]) -> f64 {
    let saved: Vec<Tensor> = m.params().iter().map(|p| p.value.clone()).collect();
    for (p, dp) in m.params_mut().into_iter().zip(d) {
        for (v, &dv) in p.value.data_mut().iter_mut().zip(dp) {
            *v += h * dv;
        }
    }
    let l = loss_of(m, x, y);
    for (p, s) in m.params_mut().into_iter().zip(saved) {
        p.value = s;
    }
    l
}

/// Compares the tape's directional derivative ∇L·d with central finite
/// differences (Richardson-extrapolated, as `engine::gradcheck` does).
fn check_direction(
    m: &mut Model,
    grads: &[Tensor],
    d: &[Vec<f32>],
    x: &Tensor,
    y: &[usize],
    what: &str,
) {
    let analytic: f64 = grads
        .iter()
        .zip(d)
        .flat_map(|(g, dp)| g.data().iter().zip(dp))
        .map(|(&g, &dv)| g as f64 * dv as f64)
        .sum();
    // Small enough that few ReLUs cross their kink, large enough for the
    // f32 rounding of the loss (about 1e-6) to stay under the tolerance.
    let h = 3e-4f32;
    let mut central =
        |h: f32| (loss_along(m, d, h, x, y) - loss_along(m, d, -h, x, y)) / (2.0 * h as f64);
    let numeric = (4.0 * central(h / 2.0) - central(h)) / 3.0;
    // A whole network in f32 with ReLUs: 2% (the ops themselves are checked
    // to 0.2% in their own tests); a missing or misrouted branch gradient
    // is off by far more.
    let tol = 2e-2 * analytic.abs().max(numeric.abs()) + 3e-3;
    assert!(
        (analytic - numeric).abs() <= tol,
        "{what}: tape {analytic:.6e}, finite differences {numeric:.6e}"
    );
}

/// Which parameters a direction moves, by name.
type Select = fn(&str) -> bool;

/// A direction along the gradient restricted to the parameters `keep`
/// selects, of unit length.
fn gradient_direction(m: &Model, grads: &[Tensor], keep: impl Fn(&str) -> bool) -> Vec<Vec<f32>> {
    let d: Vec<Vec<f32>> = m
        .params()
        .iter()
        .zip(grads)
        .map(|(p, g)| {
            if keep(&p.name) {
                g.to_vec()
            } else {
                vec![0.0; g.numel()]
            }
        })
        .collect();
    let norm = d.iter().flatten().map(|&v| v * v).sum::<f32>().sqrt();
    assert!(norm > 0.0, "no gradient reaches the selected parameters");
    d.into_iter()
        .map(|v| v.into_iter().map(|x| x / norm).collect())
        .collect()
}

#[test]
fn two_transformer_gradients_match_finite_differences() {
    for name in [
        "2st-fcn-aff",
        "2st-fcn-proj",
        "2st-fcn-tps",
        "2st-cnn-aff",
        "2stc-fcn-proj",
    ] {
        let mut m = build_model_for(name, ADD28, 3).unwrap();
        move_heads(&mut m, 4);
        let x = linear_images(3, 2, 28);
        let y = [4usize, 11, 17];
        let tape = Tape::new();
        let ctx = Ctx::train(&tape, 0, 0);
        let loss = cross_entropy(&m.forward(&Var::constant(x.clone()), &ctx), &y);
        let grads = ctx.gradients(&loss.backward(), &m.params());
        drop(tape);
        // Every part of both branches receives a gradient.
        for part in [
            "st1.loc.theta",
            "st2.loc.theta",
            "st1.loc",
            "st2.loc",
            "cls.",
        ] {
            let any = m
                .params()
                .iter()
                .zip(&grads)
                .any(|(p, g)| p.name.starts_with(part) && g.data().iter().any(|&v| v != 0.0));
            assert!(any, "{name}: {part} gets no gradient");
        }
        let selections: [(&str, Select); 5] = [
            ("all parameters", |_| true),
            ("transformer 1", |n| n.starts_with("st1.")),
            ("transformer 2", |n| n.starts_with("st2.")),
            ("both regression heads", |n| n.contains(".loc.theta.")),
            ("classifier", |n| n.starts_with("cls.")),
        ];
        for (what, keep) in selections {
            let d = gradient_direction(&m, &grads, keep);
            check_direction(&mut m, &grads, &d, &x, &y, &format!("{name}, {what}"));
        }
        // A random direction over both heads (not along the gradient).
        let mut rng = seeded(9);
        let d: Vec<Vec<f32>> = m
            .params()
            .iter()
            .map(|p| {
                let r = Tensor::normal(p.value.shape(), 0.0, 0.05, &mut rng);
                let keep = p.name.contains(".loc.theta.");
                r.data()
                    .iter()
                    .map(|&v| if keep { v } else { 0.0 })
                    .collect()
            })
            .collect();
        check_direction(
            &mut m,
            &grads,
            &d,
            &x,
            &y,
            &format!("{name}, random head direction"),
        );
    }
}

#[test]
fn both_transformers_see_both_channels_and_feed_the_classifier() {
    let x = Tensor::uniform(&[2, 2, 42, 42], 0.0, 1.0, &mut seeded(1));
    let add = InputSpec {
        channels: 2,
        side: 42,
        classes: 19,
    };
    for name in ["2st-fcn-aff", "2st-cnn-tps"] {
        let m = build_model_for(name, add, 5).unwrap();
        assert_eq!(m.transformers().len(), 2, "{name}");
        assert!(
            m.transformer().is_none(),
            "{name}: not a single transformer"
        );
        let (logits, parts) = m.forward_branches(&Var::constant(x.clone()), &Ctx::eval());
        assert_eq!(logits.shape(), &[2, 19]);
        assert_eq!(
            logits.value(),
            m.forward(&Var::constant(x.clone()), &Ctx::eval()).value()
        );
        for (theta, v) in &parts {
            // Identity at initialisation; each output holds both channels.
            assert_eq!(v.shape(), &[2, 2, 28, 28]);
            let p = theta.shape()[1];
            let st = m.transformers()[0];
            assert_eq!(
                theta.value().data(),
                st.transform().initial().repeat(2).as_slice(),
                "{name}: {p} parameters"
            );
        }
        // The localisation nets differ (their own weights), and their first
        // layer reads both channels.
        let first: Vec<_> = m
            .params()
            .into_iter()
            .filter(|p| p.name.ends_with("loc.fc1.weight") || p.name.ends_with("loc.conv1.weight"))
            .collect();
        assert_eq!(first.len(), 2, "{name}");
        assert_ne!(first[0].value, first[1].value);
        let in_features = first[0].value.numel() / first[0].value.shape()[0];
        assert!(
            in_features == 2 * 42 * 42 || in_features == 2 * 5 * 5,
            "{name}: {:?}",
            first[0].value.shape()
        );
        layers::check_unique_names(&m.params());
        let table = layers::layer_table(&m, &[1, 2, 42, 42]);
        assert!(table.contains("ParallelTransformers ×2") && table.contains("[1, 4, 28, 28]"));
        assert!(!table.contains("AvgPool"), "{table}");
    }
}

#[test]
fn split_transformers_each_sample_their_own_channel() {
    // 28×28 in and out: at the identity each transformer's output is its
    // channel exactly, while its localisation net still reads both.
    let x = linear_images(2, 2, 28);
    for name in ["2stc-fcn-aff", "2stc-cnn-tps"] {
        let m = build_model_for(name, ADD28, 5).unwrap();
        let (logits, parts) = m.forward_branches(&Var::constant(x.clone()), &Ctx::eval());
        assert_eq!(logits.shape(), &[2, 19]);
        for (b, (st, (_, v))) in m.transformers().iter().zip(&parts).enumerate() {
            assert_eq!(st.channel(), Some(b), "{name}");
            let own = x.narrow(1, b, 1);
            let off = v
                .value()
                .data()
                .iter()
                .zip(own.data())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            // The channels differ by 0.5 everywhere, so this tells them apart.
            assert!(off < 1e-5, "{name}: transformer {} is {off} off", b + 1);
        }
        let first = m
            .params()
            .into_iter()
            .find(|p| p.name.ends_with("loc.fc1.weight") || p.name.ends_with("loc.conv1.weight"))
            .unwrap();
        let in_features = first.value.numel() / first.value.shape()[0];
        assert!(
            in_features == 2 * 28 * 28 || in_features == 2 * 5 * 5,
            "{name}"
        );
        let table = layers::layer_table(&m, &[1, 2, 28, 28]);
        assert!(
            table.contains("channel 2") && table.contains("[1, 2, 28, 28]"),
            "{table}"
        );
    }
}

#[test]
fn one_transformer_on_two_channels_samples_both_to_28() {
    let add = InputSpec {
        channels: 2,
        side: 42,
        classes: 19,
    };
    let m = build_model_for("st-fcn-aff", add, 2).unwrap();
    let st = m.transformer().expect("one transformer");
    assert_eq!(st.out_hw(), [28, 28]);
    assert_eq!(m.transformers().len(), 1);
    let x = Var::constant(Tensor::uniform(&[3, 2, 42, 42], 0.0, 1.0, &mut seeded(4)));
    let (logits, parts) = m.forward_branches(&x, &Ctx::eval());
    assert_eq!(logits.shape(), &[3, 19]);
    assert_eq!(parts[0].1.shape(), &[3, 2, 28, 28]);
    assert!(m.params().iter().any(|p| p.name == "st.loc.theta.bias"));
}

#[test]
fn addition_models_have_comparable_parameter_counts() {
    let add = InputSpec {
        channels: 2,
        side: 42,
        classes: 19,
    };
    let count = |n: &str| layers::param_count(&build_model_for(n, add, 0).unwrap());
    let st = count("2st-fcn-aff");
    let fcn = count("fcn");
    // The plain FCN is widened to the two-transformer FCN's size.
    assert!(
        fcn >= st && fcn < st + st / 50,
        "fcn {fcn}, 2st-fcn-aff {st}"
    );
    let (cnn, stcnn) = (count("cnn"), count("2st-cnn-aff"));
    assert!(
        stcnn < 2 * cnn && cnn < 2 * stcnn,
        "cnn {cnn}, 2st-cnn-aff {stcnn}"
    );
    // Single-channel 10-class inputs still build Table 1's models exactly.
    let t1 = stn::build_model("fcn", 42, 0).unwrap();
    let same = build_model_for("fcn", InputSpec::mnist(42), 0).unwrap();
    assert_eq!(t1.params(), same.params());
    assert_eq!(
        layers::param_count(&t1),
        42 * 42 * 56 + 56 + 56 * 56 + 56 + 56 * 10 + 10
    );
}
