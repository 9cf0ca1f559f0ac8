//! The buffer pool changes where memory comes from, never values: the
//! sampler and a spatial-transformer model, run a second time on reused
//! buffers (every cached one filled with NaN in between), give the first
//! run's bits.

use engine::pool;
use engine::{Tape, Tensor, Var};
use layers::{cross_entropy, Ctx, Module};
use stn::fused::affine_sample;
use stn::sampler::grid_sample_var;
use stn::transforms::{Affine, ThinPlateSpline, Transform};
use stn::{Mode, SampleOptions};

#[test]
fn sampling_forward_and_backward_are_bit_identical_on_reused_dirty_buffers() {
    // 8 items × 3 channels of 40×40 in, 36×36 out: every buffer pooled.
    let mut rng = engine::rng::seeded(11);
    let u = Tensor::uniform(&[8, 3, 40, 40], 0.0, 1.0, &mut rng);
    let noise = Tensor::normal(&[8, 6], 0.0, 0.2, &mut rng);
    let theta = Affine.identity_theta(8).add(&noise);
    let tps = ThinPlateSpline::new(4);
    let tps_theta = Tensor::normal(&[8, tps.num_params()], 0.0, 0.1, &mut rng);
    let out = [36, 36];
    let run = || {
        let mut all = Vec::new();
        // Fused affine, the grid path (affine grid, TPS grid) in bilinear and
        // bicubic: values, ∂U and ∂θ for a loss weighting every pixel.
        for (kind, mode) in [(0, Mode::Bilinear), (1, Mode::Bilinear), (2, Mode::Bicubic)] {
            let opts = SampleOptions {
                mode,
                ..SampleOptions::default()
            };
            let tape = Tape::new();
            let uv = tape.leaf(u.clone());
            let (tv, v) = match kind {
                0 => {
                    let tv = tape.leaf(theta.clone());
                    let v = affine_sample(&uv, &tv, out, opts);
                    (tv, v)
                }
                1 => {
                    let tv = tape.leaf(theta.clone());
                    let v = grid_sample_var(&uv, &Affine.grid(&tv, out, false), opts);
                    (tv, v)
                }
                _ => {
                    let tv = tape.leaf(tps_theta.clone());
                    let v = grid_sample_var(&uv, &tps.grid(&tv, out, false), opts);
                    (tv, v)
                }
            };
            let weights = Var::constant(Tensor::linspace(-1.0, 1.0, v.value().numel()));
            let loss = v.reshape(&[v.value().numel()]).mul(&weights).sum();
            let grads = loss.backward();
            all.push(v.value().bits());
            all.push(grads.get_or_zeros(&uv).bits());
            all.push(grads.get_or_zeros(&tv).bits());
        }
        all
    };
    let (first, second) = pool::run_twice_on_poisoned(run);
    assert_eq!(first.len(), 9);
    assert!(first.iter().flatten().all(|&b| !f32::from_bits(b).is_nan()));
    assert_eq!(first, second);
}

#[test]
fn a_spatial_transformer_model_step_is_bit_identical_on_reused_dirty_buffers() {
    let model = stn::build_model("st-cnn-aff", 28, 5).expect("a paper model");
    let mut rng = engine::rng::seeded(5);
    let x = Tensor::uniform(&[24, 1, 28, 28], 0.0, 1.0, &mut rng);
    let labels: Vec<usize> = (0..24).map(|i| (i * 7) % 10).collect();
    let run = || {
        let tape = Tape::new();
        let ctx = Ctx::train(&tape, 1, 0);
        let logits = model.forward(&Var::constant(x.clone()), &ctx);
        let loss = cross_entropy(&logits, &labels);
        let grads = loss.backward();
        let mut out = vec![loss.value().bits()];
        out.extend(
            ctx.gradients(&grads, &model.params())
                .iter()
                .map(Tensor::bits),
        );
        out
    };
    let (first, second) = pool::run_twice_on_poisoned(run);
    assert!(first.len() > 4);
    assert_eq!(first, second);
}
