//! The fused affine / projective sampling of `stn::fused` against the two-step
//! path (transform → grid → `grid_sample_var`), on MNIST-like sizes, for every
//! mode, padding and align_corners (all run fused).
//!
//! Tolerances (the ones stated in `stn/src/fused.rs`):
//! - affine: values and ∂U bit-identical, ∂θ within 1e-6 relative (measured
//!   bit-identical too);
//! - projective: values within 1e-5 absolute (images in [0, 1]), ∂U and ∂θ
//!   within 2e-5 relative to the largest entry (measured ≤ 3.3e-6).

use engine::{gradcheck, GradcheckOptions, Tape, Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use stn::fused::{affine_sample, projective_sample};
use stn::sampler::grid_sample_var;
use stn::transforms::{Affine, Projective, Transform};
use stn::{Mode, Padding, SampleOptions};

const N: usize = 3;
const C: usize = 2;
const IN_HW: [usize; 2] = [28, 28];
const OUT_HW: [usize; 2] = [20, 24];

fn image(seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Tensor::uniform(&[N, C, IN_HW[0], IN_HW[1]], 0.0, 1.0, &mut rng)
}

/// Identity plus noise of size `spread` (large enough to reach past the
/// image border, so padding matters).
fn theta(t: &dyn Transform, spread: f32, seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let noise = Tensor::normal(&[N, t.num_params()], 0.0, spread, &mut rng);
    t.identity_theta(N).add(&noise)
}

/// (V, ∂U, ∂θ) for a fixed ∂L/∂V, fused or two-step.
fn run(
    t: &dyn Transform,
    u: &Tensor,
    th: &Tensor,
    opts: SampleOptions,
    fused: bool,
) -> [Tensor; 3] {
    let tape = Tape::new();
    let (u, th) = (tape.leaf(u.clone()), tape.leaf(th.clone()));
    let v = if fused {
        match t.num_params() {
            6 => affine_sample(&u, &th, OUT_HW, opts),
            _ => projective_sample(&u, &th, OUT_HW, opts),
        }
    } else {
        grid_sample_var(&u, &t.grid(&th, OUT_HW, opts.align_corners), opts)
    };
    let seed = Tensor::from_vec(
        (0..v.value().numel())
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect(),
        v.shape(),
    );
    let g = v.backward_with(seed);
    [v.value().clone(), g.get_or_zeros(&u), g.get_or_zeros(&th)]
}

fn rel(a: &Tensor, b: &Tensor) -> f32 {
    a.max_abs_diff(b)
        / b.data()
            .iter()
            .fold(f32::MIN_POSITIVE, |m, v| m.max(v.abs()))
}

/// Every mode × padding × align_corners: all run fused.
fn all_fused_options() -> Vec<SampleOptions> {
    let mut v = Vec::new();
    for mode in [Mode::Bilinear, Mode::Nearest, Mode::Bicubic] {
        for padding in [Padding::Zeros, Padding::Border, Padding::Reflection] {
            for ac in [false, true] {
                v.push(SampleOptions::new(mode, padding).align_corners(ac));
            }
        }
    }
    v
}

#[test]
fn affine_fused_is_bit_identical_in_values_and_input_gradient() {
    let u = image(1);
    for (k, opts) in all_fused_options().into_iter().enumerate() {
        let th = theta(&Affine, 0.3, k as u64);
        let [v1, du1, dt1] = run(&Affine, &u, &th, opts, true);
        let [v2, du2, dt2] = run(&Affine, &u, &th, opts, false);
        assert_eq!(v1, v2, "{opts:?}: values");
        assert_eq!(du1, du2, "{opts:?}: ∂U");
        let e = rel(&dt1, &dt2);
        assert!(e <= 1e-6, "{opts:?}: ∂θ off by {e} relative");
    }
}

#[test]
fn projective_fused_matches_the_two_step_path() {
    let u = image(2);
    for (k, opts) in all_fused_options().into_iter().enumerate() {
        let th = theta(&Projective, 0.15, 10 + k as u64);
        let [v1, du1, dt1] = run(&Projective, &u, &th, opts, true);
        let [v2, du2, dt2] = run(&Projective, &u, &th, opts, false);
        let e = v1.max_abs_diff(&v2);
        assert!(e <= 1e-5, "{opts:?}: values off by {e}");
        let e = rel(&du1, &du2);
        assert!(e <= 2e-5, "{opts:?}: ∂U off by {e} relative");
        let e = rel(&dt1, &dt2);
        assert!(e <= 2e-5, "{opts:?}: ∂θ off by {e} relative");
    }
}

#[test]
fn nearest_sampling_gives_theta_no_gradient() {
    // Eq. (4) is piecewise constant: the fused path, like the two-step one,
    // passes no gradient to θ, but still to the image.
    let u = image(3);
    for t in [&Affine as &dyn Transform, &Projective] {
        let th = theta(t, 0.1, 20);
        let opts = SampleOptions::new(Mode::Nearest, Padding::Zeros);
        let [_, du, dt] = run(t, &u, &th, opts, true);
        assert!(dt.data().iter().all(|&g| g == 0.0));
        assert!(du.data().iter().any(|&g| g != 0.0));
    }
}

#[test]
fn fused_gradients_pass_gradcheck_off_the_kinks() {
    // A 3×4 image sampled at 2×3 points whose pixel coordinates all have
    // fractional parts well inside (0, 1): θ is a scale plus a shift chosen so.
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let u = Tensor::uniform(&[1, 2, 3, 4], 0.0, 1.0, &mut rng);
    // align_corners = true: x_pix = (x_s + 1)·1.5, y_pix = y_s + 1. With
    // x_t ∈ {−1, 0, 1}, y_t ∈ {−1, 1}: x_s = 0.6 x_t + 0.1 → x_pix ∈ {0.75, 1.65, 2.55},
    // y_s = 0.55 y_t − 0.05 → y_pix ∈ {0.35, 1.45}.
    let opts = SampleOptions::new(Mode::Bilinear, Padding::Zeros).align_corners(true);
    let affine = Tensor::from_vec(vec![0.6, 0.0, 0.1, 0.0, 0.55, -0.05], &[1, 6]);
    let proj = Tensor::from_vec(vec![0.6, 0.0, 0.1, 0.0, 0.55, -0.05, 0.02, -0.01], &[1, 8]);
    let o = GradcheckOptions {
        step: 1e-3,
        ..GradcheckOptions::default()
    };
    for padding in [Padding::Zeros, Padding::Border] {
        let opts = SampleOptions { padding, ..opts };
        gradcheck(
            |v| affine_sample(&v[0], &v[1], [2, 3], opts),
            &[u.clone(), affine.clone()],
            &o,
        )
        .unwrap_or_else(|e| panic!("affine {padding:?}: {e}"));
        gradcheck(
            |v| projective_sample(&v[0], &v[1], [2, 3], opts),
            &[u.clone(), proj.clone()],
            &o,
        )
        .unwrap_or_else(|e| panic!("projective {padding:?}: {e}"));
    }
}

#[test]
fn a_vanishing_projective_denominator_stays_finite_and_matches() {
    // h31 = 2: D = 2 x_t + 1 crosses 0 inside the output, so some source
    // points are huge or infinite; they sample 0 and carry no gradient.
    let u = image(5);
    let mut th = Projective.identity_theta(N).to_vec();
    th[6] = 2.0;
    let th = Tensor::from_vec(th, &[N, 8]);
    let opts = SampleOptions::default();
    let fused = run(&Projective, &u, &th, opts, true);
    let two = run(&Projective, &u, &th, opts, false);
    for (a, b) in fused.iter().zip(&two) {
        assert!(a.all_finite(), "fused produced a non-finite value");
        assert!(rel(a, b) <= 1e-4);
    }
}

#[test]
fn an_untracked_image_gets_no_gradient_and_theta_still_does() {
    let tape = Tape::new();
    let th = tape.leaf(theta(&Affine, 0.1, 6));
    let u = Var::constant(image(6));
    let v = affine_sample(&u, &th, OUT_HW, SampleOptions::default());
    let g = v.sum().backward();
    assert!(g.get(&u).is_none());
    assert!(g.get(&th).unwrap().data().iter().any(|&x| x != 0.0));
}

#[test]
#[should_panic(expected = "input must be N×C×H×W with N = 3")]
fn a_batch_mismatch_panics() {
    let u = Var::constant(Tensor::zeros(&[2, 1, 4, 4]));
    let th = Var::constant(Affine.identity_theta(3));
    affine_sample(&u, &th, [4, 4], SampleOptions::default());
}

#[test]
#[should_panic(expected = "projective_sample: theta must be N×8")]
fn a_wrong_theta_size_panics() {
    let u = Var::constant(Tensor::zeros(&[1, 1, 4, 4]));
    let th = Var::constant(Affine.identity_theta(1));
    projective_sample(&u, &th, [4, 4], SampleOptions::default());
}
