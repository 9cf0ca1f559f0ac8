//! Example 4: a new transform written outside the stn crate, tested with
//! stn's public harness and trained in an ST-CNN on RTS, next to affine.
//!
//! `ShearScale`: θ = (a, b, k, t_x, t_y),
//! A_θ = [[eᵃ, k, t_x], [0, eᵇ, t_y]] in eq. (1): an anisotropic scale
//! (log-scales a, b, so the scales stay positive), a shear k along x and a
//! shift. Identity (0, 0, 0, 0, 0). The grid is tape ops; the fused sampler
//! runs it through a `ViaAffine` point map.
//!
//! Run with `cargo run --release -p warpgrad-cli --example ex04_custom_transform`
//! (`EX04_STEPS` sets the training steps per model, default 300; both models
//! together took 88 s on a loaded 2-core AMD EPYC Zen 2, AVX2, in the dev
//! profile, to 14.1% and 14.2% test error); its tests,
//! the nine generated checks, with
//! `cargo test -p warpgrad-cli --example ex04_custom_transform`.

use datasets::{default_data_dir, load_mnist, DistortedMnist, Split, Variant};
use engine::{rng::seeded, Tape, Tensor, Var};
use layers::*;
use std::sync::Arc;
use stn::transforms::{affine_matrix, check_theta, grid_from_affine, Affine, ViaAffine};
use stn::{PointMap, SampleOptions, SpatialTransformer, Transform, LOC_GROUP};

/// Anisotropic scale + shear + shift.
///
/// * θ layout (P = 5): (a, b, k, t_x, t_y).
/// * Formula: A_θ = [[eᵃ, k, t_x], [0, eᵇ, t_y]] in eq. (1).
/// * Identity: (0, 0, 0, 0, 0).
#[derive(Clone, Copy, Debug, Default)]
pub struct ShearScale;

/// eˣ elementwise as a tape op: ∂ eˣ = eˣ.
fn exp(x: &Var) -> Var {
    let y = x.value().map(f32::exp);
    let yb = y.clone();
    Var::custom_op("exp", &[x], y, move |g, _| vec![Some(g.mul(&yb))])
}

impl Transform for ShearScale {
    fn name(&self) -> &'static str {
        "shearscale"
    }

    fn num_params(&self) -> usize {
        5
    }

    fn identity(&self) -> Vec<f32> {
        vec![0.0; 5]
    }

    fn grid(&self, theta: &Var, out_hw: [usize; 2], align_corners: bool) -> Var {
        let n = check_theta(self.name(), theta, 5);
        let col = |k| theta.narrow(1, k, 1);
        let (sx, sy) = (exp(&col(0)), exp(&col(1)));
        let zero = Var::constant(Tensor::zeros(&[n, 1]));
        let a = Var::concat(&[&sx, &col(2), &col(3), &zero, &sy, &col(4)], 1);
        grid_from_affine(&a, out_hw, align_corners)
    }

    fn matrix(&self, t: &[f32]) -> Option<[[f32; 3]; 3]> {
        Some(affine_matrix(&[
            t[0].exp(),
            t[2],
            t[3],
            0.0,
            t[1].exp(),
            t[4],
        ]))
    }

    fn point_map(&self) -> Option<Arc<dyn PointMap>> {
        Some(Arc::new(ViaAffine {
            num_params: 5,
            to_affine: |t, out| {
                let (sx, sy) = (t[0].exp(), t[1].exp());
                out[..6].copy_from_slice(&[sx, t[2], t[3], 0.0, sy, t[4]]);
                // ∂A_i/∂(a, b, k, t_x, t_y), row i.
                let j: [[f64; 5]; 6] = [
                    [sx, 0.0, 0.0, 0.0, 0.0],
                    [0.0, 0.0, 1.0, 0.0, 0.0],
                    [0.0, 0.0, 0.0, 1.0, 0.0],
                    [0.0; 5],
                    [0.0, sy, 0.0, 0.0, 0.0],
                    [0.0, 0.0, 0.0, 0.0, 1.0],
                ];
                out[6..].copy_from_slice(j.as_flattened());
            },
        }))
    }
}

// `cargo test --example ex04_custom_transform`: the generated suite.
#[cfg(test)]
stn::transform_checks! {
    shear_scale => ShearScale,
}

/// Trains an ST-CNN (42×42 RTS → 28×28 view → small CNN) with `transform`
/// for `steps` steps and returns its test error (%).
fn train(
    transform: Box<dyn Transform>,
    data: &DistortedMnist,
    train_len: usize,
    test: &datasets::Batch,
    steps: usize,
) -> f32 {
    let mut rng = seeded(1);
    let loc = Sequential::new()
        .push(MaxPool2d::new(2))
        .push(Conv2d::new("c1", 1, 8, 5, &mut rng))
        .push(ReLU)
        .push(MaxPool2d::new(2))
        .push(Flatten)
        .push(Linear::new("fc", 8 * 8 * 8, 32, &mut rng))
        .push(ReLU);
    let opts = SampleOptions::default();
    let mut st = SpatialTransformer::new("st", Box::new(loc), 32, transform, [28, 28], opts);
    let mut classifier = Sequential::new()
        .push(Conv2d::new("c2", 1, 16, 5, &mut rng))
        .push(ReLU)
        .push(MaxPool2d::new(2))
        .push(Conv2d::new("c3", 16, 32, 5, &mut rng))
        .push(ReLU)
        .push(MaxPool2d::new(2))
        .push(Flatten)
        .push(Linear::new("out", 32 * 16, 10, &mut rng));
    let mut opt = Adam::new();
    opt.set_group_lr(LOC_GROUP, 0.1);
    let batch = 64;
    for step in 0..steps {
        let idx: Vec<usize> = (0..batch).map(|i| (step * batch + i) % train_len).collect();
        let b = data.batch(0, &idx);
        let labels: Vec<usize> = b.labels.iter().map(|&l| l as usize).collect();
        let tape = Tape::new();
        let ctx = Ctx::train(&tape, 1, step as u64);
        let v = st.forward(&Var::constant(b.images), &ctx);
        let loss = cross_entropy(&classifier.forward(&v, &ctx), &labels);
        let grads = loss.backward();
        let mut params: Vec<&mut Param> = st.params_mut();
        params.extend(classifier.params_mut());
        let all: Vec<&Param> = params.iter().map(|p| &**p).collect();
        let g = ctx.gradients(&grads, &all);
        opt.step(&mut params, &g, 2e-3).expect("finite gradients");
    }
    let eval = Ctx::eval();
    let v = st.forward(&Var::constant(test.images.clone()), &eval);
    let logits = classifier.forward(&v, &eval);
    let labels: Vec<usize> = test.labels.iter().map(|&l| l as usize).collect();
    100.0 * (1.0 - accuracy(logits.value(), &labels))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. The harness, called by hand (the same checks `cargo test` runs).
    let t = ShearScale;
    stn::testing::check_identity_grid(&t);
    stn::testing::check_identity_sampling(&t);
    stn::testing::check_theta_to_grid(&t);
    stn::testing::check_far_theta_to_grid(&t);
    stn::testing::check_theta_to_output(&t);
    stn::testing::check_matrix(&t);
    stn::testing::check_sample_vs_two_step(&t);
    println!("shearscale: the harness's checks pass (near and far from the identity)");

    // 2. Train ST-CNNs on RTS with it and with affine, same seeds and data.
    let steps: usize = std::env::var("EX04_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let train_set = load_mnist(&default_data_dir(), Split::Train)?.take(20_000);
    let test = load_mnist(&default_data_dir(), Split::Test)?.take(1_000);
    let data = DistortedMnist::new(Variant::Rts, &train_set, &train_set, 1);
    let test_set =
        DistortedMnist::new(Variant::Rts, &test, &train_set, 2015).range(0, 0, test.len());
    for (name, tr) in [
        ("shearscale", Box::new(ShearScale) as Box<dyn Transform>),
        ("affine", Box::new(Affine::new())),
    ] {
        let start = std::time::Instant::now();
        let err = train(tr, &data, train_set.len(), &test_set, steps);
        println!(
            "ST-CNN {name:<10} on RTS, {steps} steps of 64: test error {err:.1}% ({:.0} s)",
            start.elapsed().as_secs_f32()
        );
    }
    Ok(())
}
