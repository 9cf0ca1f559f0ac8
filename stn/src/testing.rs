//! The test harness every transform gets: [`transform_checks!`] expands to
//! a module of tests per transform, usable from any crate with the `testing`
//! feature of `stn`:
//!
//! ```toml
//! [dev-dependencies]
//! stn = { path = "../stn", features = ["testing"] }
//! ```
//!
//! ```ignore
//! stn::transform_checks! { shear => my_crate::Shear::new() }
//! ```
//!
//! The checks, each also a public function to call by hand:
//!
//! 1. `identity_gives_the_base_grid`: identity θ → exactly PyTorch's base grid
//!    (several sizes, both `align_corners`); skipped when the transform has no
//!    identity ([`Transform::has_identity`]);
//! 2. `identity_sampling_reproduces_the_input`: identity θ, bilinear,
//!    `align_corners = true`, output size = input size → the input (≤ 1e-6),
//!    through both [`Transform::sample`] and grid → [`grid_sample_var`];
//!    skipped likewise;
//! 3. `gradcheck_theta_to_grid`: ∂grid/∂θ against finite differences near
//!    the initial θ ([`Transform::initial`]);
//! 4. `gradcheck_far_from_the_initial_theta`: the full Jacobian ∂grid/∂θ,
//!    column by column and point by point, against central differences at θ
//!    drawn far from the initial θ (spread [`FAR_SPREAD`]): a backward that is
//!    only right near the identity fails here, and the message names the θ
//!    column, the batch item and the output point;
//! 5. `gradcheck_theta_to_output`, `gradcheck_input_to_output`: θ → V and
//!    U → V, through both sampling paths, at θ near the initial θ chosen so
//!    that no sampling point comes within the finite-difference step of a
//!    pixel kink (see [`safe_theta`]);
//! 6. `wrong_theta_size_panics`: θ with one parameter too many panics, naming
//!    the expected shape;
//! 7. `matrix_agrees_with_the_grid`: where the transform has a 3×3 matrix,
//!    applying it to the base grid gives the transform's grid;
//! 8. `sample_equals_grid_then_sampler`: [`Transform::sample`] (fused where
//!    the transform has a point map) equals the two-step path, values and
//!    gradients, near and far from the initial θ.

use crate::sampler::grid_sample_var;
use crate::transforms::{base_grid, Transform};
use crate::{Mode, Padding, SampleOptions};
use engine::{gradcheck, GradcheckOptions, Tape, Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Batch items, channels, input size and (different) output size of the
/// sampling checks: small, so that every point can be kept off the kinks.
pub const N: usize = 2;
pub const C: usize = 2;
pub const IN_HW: [usize; 2] = [5, 6];
pub const OUT_HW: [usize; 2] = [3, 4];
/// Finite-difference step of the sampling gradchecks (normalised units).
pub const STEP: f32 = 1e-3;

/// Bilinear sampling, zero padding.
pub fn bilinear(align_corners: bool) -> SampleOptions {
    SampleOptions::new(Mode::Bilinear, Padding::Zeros).align_corners(align_corners)
}

/// The grid of a constant θ, as a tensor.
pub fn grid_of(t: &dyn Transform, theta: &Tensor, out_hw: [usize; 2], ac: bool) -> Tensor {
    t.grid(&Var::constant(theta.clone()), out_hw, ac)
        .value()
        .clone()
}

/// The input image U (N×C×H×W), smooth-ish random values in [0, 1].
pub fn image(seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Tensor::uniform(&[N, C, IN_HW[0], IN_HW[1]], 0.0, 1.0, &mut rng)
}

/// Pixel coordinate of a grid value along an axis of `size` pixels, and its
/// derivative (the sampler's unnormalisation).
pub fn unnormalise(g: f32, size: usize, ac: bool) -> (f32, f32) {
    let s = size as f32;
    if ac {
        ((g + 1.0) * 0.5 * (s - 1.0), (s - 1.0) * 0.5)
    } else {
        (((g + 1.0) * s - 1.0) * 0.5, s * 0.5)
    }
}

/// True if no sampling point of θ (one item, 1×P) can cross an integer pixel
/// coordinate while a gradcheck over `n_params` values moves θ by `STEP` along
/// a unit-RMS direction. A point moves by at most STEP·√n_params·‖∇_θ u‖
/// (Cauchy–Schwarz, ‖d‖ = √n_params); ∇_θ u is taken by central differences.
pub fn off_the_kinks(t: &dyn Transform, theta: &Tensor, n_params: usize, ac: bool) -> bool {
    let p = theta.numel();
    let g0 = grid_of(t, theta, OUT_HW, ac);
    let eps = 1e-3;
    let mut sens = vec![0.0f64; g0.numel()];
    for k in 0..p {
        let shifted = |s: f32| {
            let mut v = theta.to_vec();
            v[k] += s;
            grid_of(t, &Tensor::from_vec(v, &[1, p]), OUT_HW, ac)
        };
        let (gp, gm) = (shifted(eps), shifted(-eps));
        for (i, s) in sens.iter_mut().enumerate() {
            let d = (gp.data()[i] - gm.data()[i]) as f64 / (2.0 * eps as f64);
            *s += d * d;
        }
    }
    g0.data().iter().enumerate().all(|(i, &g)| {
        // x (even index) runs along the width, y along the height.
        let size = if i % 2 == 0 { IN_HW[1] } else { IN_HW[0] };
        let (u, du) = unnormalise(g, size, ac);
        let reach = STEP as f64 * (n_params as f64).sqrt() * sens[i].sqrt() * du as f64;
        let dist = (u - u.round()).abs() as f64;
        u.is_finite() && dist > 1.5 * reach + 1e-3
    })
}

/// θ (N×P) = the initial θ ([`Transform::initial`]) + small Gaussian noise, each item re-drawn ("nudged")
/// until [`off_the_kinks`] holds for it.
pub fn safe_theta(t: &dyn Transform, ac: bool) -> Tensor {
    let p = t.num_params();
    let mut rng = ChaCha8Rng::seed_from_u64(0x7a11);
    let mut all = Vec::with_capacity(N * p);
    for item in 0..N {
        let found = (0..20_000).find_map(|_| {
            let noise = Tensor::normal(&[1, p], 0.0, 0.05, &mut rng);
            let v: Vec<f32> = t
                .initial()
                .iter()
                .zip(noise.data())
                .map(|(a, b)| a + b)
                .collect();
            let th = Tensor::from_vec(v, &[1, p]);
            off_the_kinks(t, &th, N * p, ac).then_some(th)
        });
        let th =
            found.unwrap_or_else(|| panic!("{}: no θ off the kinks for item {item}", t.name()));
        all.extend_from_slice(th.data());
    }
    Tensor::from_vec(all, &[N, p])
}

/// Gradcheck options with the sampling step [`STEP`].
pub fn fine() -> GradcheckOptions {
    GradcheckOptions {
        step: STEP,
        ..GradcheckOptions::default()
    }
}

// ---------- the checks, generic over the transform ----------

/// Identity θ → exactly the base grid (skipped without an identity).
pub fn check_identity_grid(t: &dyn Transform) {
    if !t.has_identity() {
        return;
    }
    for out_hw in [[3, 4], [5, 5], [1, 7], [4, 1]] {
        for ac in [false, true] {
            let g = grid_of(t, &t.identity_theta(N), out_hw, ac);
            let base = base_grid(out_hw, ac);
            assert_eq!(g.shape(), [N, out_hw[0], out_hw[1], 2], "{}", t.name());
            for item in g.data().chunks(base.numel()) {
                assert_eq!(item, base.data(), "{} {out_hw:?} ac={ac}", t.name());
            }
        }
    }
}

/// Identity θ, same size → the input, through both sampling paths
/// (skipped without an identity).
pub fn check_identity_sampling(t: &dyn Transform) {
    if !t.has_identity() {
        return;
    }
    let u = image(1);
    let theta = Var::constant(t.identity_theta(N));
    let opts = bilinear(true);
    let fused = t.sample(&Var::constant(u.clone()), &theta, IN_HW, opts);
    let grid = t.grid(&theta, IN_HW, true);
    let two_step = grid_sample_var(&Var::constant(u.clone()), &grid, opts);
    for (path, v) in [("sample", fused), ("grid+sampler", two_step)] {
        let e = v.value().max_abs_diff(&u);
        assert!(e <= 1e-6, "{} via {path}: identity is off by {e}", t.name());
    }
}

/// ∂grid/∂θ against finite differences, near the initial θ.
pub fn check_theta_to_grid(t: &dyn Transform) {
    for ac in [false, true] {
        let theta = safe_theta(t, ac);
        gradcheck(
            |v| t.grid(&v[0], OUT_HW, ac),
            &[theta],
            &GradcheckOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{} ac={ac}: {e}", t.name()));
    }
}

/// ∂V/∂θ against finite differences through both sampling paths, off the kinks.
pub fn check_theta_to_output(t: &dyn Transform) {
    let u = Var::constant(image(2));
    for ac in [false, true] {
        let theta = safe_theta(t, ac);
        let opts = bilinear(ac);
        gradcheck(
            |v| grid_sample_var(&u, &t.grid(&v[0], OUT_HW, ac), opts),
            std::slice::from_ref(&theta),
            &fine(),
        )
        .unwrap_or_else(|e| panic!("{} grid+sampler ac={ac}: {e}", t.name()));
        gradcheck(|v| t.sample(&u, &v[0], OUT_HW, opts), &[theta], &fine())
            .unwrap_or_else(|e| panic!("{} sample ac={ac}: {e}", t.name()));
    }
}

/// ∂V/∂U against finite differences through both sampling paths.
pub fn check_input_to_output(t: &dyn Transform) {
    let theta = Var::constant(safe_theta(t, false));
    let opts = bilinear(false);
    let grid = t.grid(&theta, OUT_HW, false);
    // V is linear in U: any step works.
    gradcheck(
        |v| grid_sample_var(&v[0], &grid, opts),
        &[image(3)],
        &fine(),
    )
    .unwrap_or_else(|e| panic!("{} grid+sampler: {e}", t.name()));
    gradcheck(
        |v| t.sample(&v[0], &theta, OUT_HW, opts),
        &[image(3)],
        &fine(),
    )
    .unwrap_or_else(|e| panic!("{} sample: {e}", t.name()));
}

/// θ with one parameter too many: must panic with "theta must be N×".
pub fn check_wrong_size_panics(t: &dyn Transform) {
    let theta = Var::constant(Tensor::zeros(&[N, t.num_params() + 1]));
    t.grid(&theta, OUT_HW, false);
}

/// Where the transform has a 3×3 matrix, it agrees with the grid.
pub fn check_matrix(t: &dyn Transform) {
    let theta = safe_theta(t, false);
    let p = t.num_params();
    if t.matrix(&theta.data()[..p]).is_none() {
        return;
    }
    let g = grid_of(t, &theta, OUT_HW, false);
    let base = base_grid(OUT_HW, false);
    for (item, gi) in g.data().chunks(base.numel()).enumerate() {
        let m = t.matrix(&theta.data()[item * p..][..p]).unwrap();
        let m = m.map(|r| r.map(|v| v as f64));
        for (b, s) in base.data().chunks(2).zip(gi.chunks(2)) {
            let (x, y) = (b[0] as f64, b[1] as f64);
            let w = m[2][0] * x + m[2][1] * y + m[2][2];
            let xs = (m[0][0] * x + m[0][1] * y + m[0][2]) / w;
            let ys = (m[1][0] * x + m[1][1] * y + m[1][2]) / w;
            assert!(
                (xs - s[0] as f64).abs() < 1e-5 && (ys - s[1] as f64).abs() < 1e-5,
                "{}: matrix gives ({xs}, {ys}), grid ({}, {})",
                t.name(),
                s[0],
                s[1]
            );
        }
    }
}

/// [`Transform::sample`] (fused where there is a point map) equals grid →
/// sampler in values, ∂U and ∂θ, near the initial θ and far from it.
pub fn check_sample_vs_two_step(t: &dyn Transform) {
    for (ac, theta) in [
        (false, safe_theta(t, false)),
        (true, safe_theta(t, true)),
        (false, far_theta(t, 0xfa4)),
    ] {
        let opts = bilinear(ac);
        let run = |fused: bool| {
            let tape = Tape::new();
            let (u, th) = (tape.leaf(image(4)), tape.leaf(theta.clone()));
            let v = if fused {
                t.sample(&u, &th, OUT_HW, opts)
            } else {
                grid_sample_var(&u, &t.grid(&th, OUT_HW, ac), opts)
            };
            let seed = Tensor::from_vec(
                (0..v.value().numel())
                    .map(|i| (i as f32 * 0.37).sin())
                    .collect(),
                v.shape(),
            );
            let g = v.backward_with(seed);
            (v.value().clone(), g.get_or_zeros(&u), g.get_or_zeros(&th))
        };
        let (a, b) = (run(true), run(false));
        let rel = |x: &Tensor, y: &Tensor| {
            x.max_abs_diff(y) / y.data().iter().fold(1.0f32, |m, v| m.max(v.abs()))
        };
        let at = format!("ac={ac}, θ = {:?}", theta.data());
        assert!(
            a.0.max_abs_diff(&b.0) <= 1e-5,
            "{}: values at {at}",
            t.name()
        );
        assert!(rel(&a.1, &b.1) <= 1e-4, "{}: ∂U at {at}", t.name());
        let p = t.num_params();
        let scale = b.2.data().iter().fold(1.0f32, |m, v| m.max(v.abs()));
        for k in 0..theta.numel() {
            let (x, y) = (a.2.data()[k], b.2.data()[k]);
            assert!(
                (x - y).abs() <= 1e-4 * scale,
                "{}: ∂θ column {} (item {}): sample gives {x}, grid + sampler {y}, at {at}",
                t.name(),
                k % p,
                k / p
            );
        }
    }
}

/// Standard deviation of the far-from-initial θ draws (normalised units,
/// radians): far enough that e^x and 1 + x differ by over 10%.
pub const FAR_SPREAD: f32 = 0.6;

/// θ (N×P) = initial + Gaussian noise of spread [`FAR_SPREAD`], each item
/// re-drawn until its grid is finite and within [−3, 3] (so a projective
/// denominator stays away from 0).
pub fn far_theta(t: &dyn Transform, seed: u64) -> Tensor {
    let p = t.num_params();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut all = Vec::with_capacity(N * p);
    for item in 0..N {
        let found = (0..10_000).find_map(|_| {
            let noise = Tensor::normal(&[1, p], 0.0, FAR_SPREAD, &mut rng);
            let v: Vec<f32> = t
                .initial()
                .iter()
                .zip(noise.data())
                .map(|(a, b)| a + b)
                .collect();
            let th = Tensor::from_vec(v, &[1, p]);
            let g = grid_of(t, &th, OUT_HW, false);
            g.data()
                .iter()
                .all(|v| v.is_finite() && v.abs() <= 3.0)
                .then_some(th)
        });
        let th = found.unwrap_or_else(|| {
            panic!("{}: no far θ with a bounded grid for item {item}", t.name())
        });
        all.extend_from_slice(th.data());
    }
    Tensor::from_vec(all, &[N, p])
}

/// The full Jacobian ∂grid/∂θ at a far θ ([`far_theta`]): analytic (one
/// backward pass per grid value) against central differences (f32, steps
/// 1e-2 and 5e-3 scaled to θ, Richardson-extrapolated), entry by entry.
/// Panics naming the θ column, the batch item, the output point and the
/// coordinate.
pub fn check_far_theta_to_grid(t: &dyn Transform) {
    for (ac, seed) in [(false, 0xfa1), (true, 0xfa2)] {
        let theta = far_theta(t, seed);
        check_jacobian_at(t, &theta, ac);
    }
}

/// [`check_far_theta_to_grid`]'s comparison at a given θ (N×P).
pub fn check_jacobian_at(t: &dyn Transform, theta: &Tensor, ac: bool) {
    let (n, p) = (theta.shape()[0], t.num_params());
    let [ho, wo] = OUT_HW;
    // Analytic: row r of the Jacobian from a one-hot seed on grid value r.
    let tape = Tape::new();
    let th = tape.leaf(theta.clone());
    let g = t.grid(&th, OUT_HW, ac);
    let m = g.value().numel();
    let mut jac = vec![0.0f32; m * n * p];
    for r in 0..m {
        let mut seed = vec![0.0f32; m];
        seed[r] = 1.0;
        let grads = g.backward_with(Tensor::from_vec(seed, g.shape()));
        let row = grads.get_or_zeros(&th);
        jac[r * n * p..][..n * p].copy_from_slice(row.data());
    }
    // Numeric: central differences per θ entry, at two steps.
    for col in 0..n * p {
        let h = 1e-2f32 * theta.data()[col].abs().max(1.0);
        let diff = |h: f32| {
            let shifted = |s: f32| {
                let mut v = theta.to_vec();
                v[col] += s;
                let hs = v[col] - theta.data()[col];
                (grid_of(t, &Tensor::from_vec(v, &[n, p]), OUT_HW, ac), hs)
            };
            let ((gp, hp), (gm, hm)) = (shifted(h), shifted(-h));
            (0..m)
                .map(|r| (gp.data()[r] as f64 - gm.data()[r] as f64) / (hp as f64 - hm as f64))
                .collect::<Vec<f64>>()
        };
        // Richardson: (4·D(h/2) − D(h))/3 cancels the h² error term.
        let (d1, d2) = (diff(h), diff(h / 2.0));
        for r in 0..m {
            let num = (4.0 * d2[r] - d1[r]) / 3.0;
            let ana = jac[r * n * p + col] as f64;
            if (ana - num).abs() > 2e-3 + 2e-2 * num.abs().max(ana.abs()) {
                let rest = r % (ho * wo * 2);
                let (i, j, xy) = (rest / (wo * 2), rest / 2 % wo, ["x_s", "y_s"][rest % 2]);
                panic!(
                    "{}: ∂{xy}/∂θ wrong at θ column {} (item {}), output point (row {i}, col {j}) \
                     of {ho}×{wo}, align_corners={ac}: backward gives {ana}, finite differences \
                     {num}; θ of the item = {:?}",
                    t.name(),
                    col % p,
                    col / p,
                    &theta.data()[(col / p) * p..][..p],
                );
            }
        }
    }
}

/// One module of tests per transform: `name => constructor`, from any crate
/// (with `stn`'s `testing` feature). See [`crate::testing`] for the checks.
#[macro_export]
macro_rules! transform_checks {
    ($($name:ident => $make:expr),* $(,)?) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use $crate::testing as h;

            /// Boxed, as the spatial-transformer layer holds it.
            fn make() -> Box<dyn $crate::Transform> {
                Box::new($make)
            }

            #[test]
            fn identity_gives_the_base_grid() {
                h::check_identity_grid(&*make());
            }

            #[test]
            fn identity_sampling_reproduces_the_input() {
                h::check_identity_sampling(&*make());
            }

            #[test]
            fn gradcheck_theta_to_grid() {
                h::check_theta_to_grid(&*make());
            }

            #[test]
            fn gradcheck_far_from_the_initial_theta() {
                h::check_far_theta_to_grid(&*make());
            }

            #[test]
            fn gradcheck_theta_to_output() {
                h::check_theta_to_output(&*make());
            }

            #[test]
            fn gradcheck_input_to_output() {
                h::check_input_to_output(&*make());
            }

            #[test]
            #[should_panic(expected = "theta must be N×")]
            fn wrong_theta_size_panics() {
                h::check_wrong_size_panics(&*make());
            }

            #[test]
            fn matrix_agrees_with_the_grid() {
                h::check_matrix(&*make());
            }

            #[test]
            fn sample_equals_grid_then_sampler() {
                h::check_sample_vs_two_step(&*make());
            }
        }
    )*};
}
