//! Behaviour of the sampler beyond the PyTorch fixtures: wild coordinates
//! (NaN, ±Inf, 1e30) under every mode and padding, thread-count determinism,
//! task splitting, identity warps, masked backward and shape errors.

use engine::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use stn::{
    affine_grid, grid_sample, grid_sample_backward, grid_sample_backward_masked, Mode, Padding,
    SampleOptions,
};

const MODES: [Mode; 3] = [Mode::Bilinear, Mode::Nearest, Mode::Bicubic];
const PADDINGS: [Padding; 3] = [Padding::Zeros, Padding::Border, Padding::Reflection];

fn all_options() -> Vec<SampleOptions> {
    let mut v = Vec::new();
    for mode in MODES {
        for padding in PADDINGS {
            for align_corners in [false, true] {
                v.push(SampleOptions {
                    mode,
                    padding,
                    align_corners,
                });
            }
        }
    }
    v
}

fn random(shape: &[usize], lo: f32, hi: f32, seed: u64) -> Tensor {
    Tensor::uniform(shape, lo, hi, &mut ChaCha8Rng::seed_from_u64(seed))
}

/// The wild (x, y) pairs tested, each with a tame partner coordinate.
const WILD: [(f32, f32); 12] = [
    (f32::NAN, 0.1),
    (0.1, f32::NAN),
    (f32::NAN, f32::NAN),
    (f32::INFINITY, 0.2),
    (f32::NEG_INFINITY, -0.3),
    (0.4, f32::INFINITY),
    (-0.2, f32::NEG_INFINITY),
    (1e30, 0.0),
    (-1e30, 0.5),
    (0.3, 1e30),
    (3e38, -3e38),
    (1e7, -2e8),
];

#[test]
fn wild_coordinates_never_crash_leak_nan_or_get_gradient() {
    let (h, w) = (5, 6);
    let input = random(&[1, 2, h, w], -1.0, 1.0, 1);
    let mut g = Vec::new();
    for &(x, y) in &WILD {
        g.extend([x, y]);
    }
    let grid = Tensor::from_vec(g, &[1, 1, WILD.len(), 2]);
    let gout = random(&[1, 2, 1, WILD.len()], -1.0, 1.0, 2);
    for opts in all_options() {
        let out = grid_sample(&input, &grid, opts);
        let (gi, gg) = grid_sample_backward(&input, &grid, &gout, opts);
        assert!(out.all_finite(), "{opts:?}: output {:?}", out.data());
        assert!(gi.all_finite(), "{opts:?}: grad_input not finite");
        for (j, &(x, y)) in WILD.iter().enumerate() {
            // A wild coordinate gets no gradient; a NaN point samples nothing,
            // so neither of its coordinates does. (The tame partner of an
            // Inf/huge coordinate may legitimately have one, e.g. along a border.)
            let any_nan = x.is_nan() || y.is_nan();
            for (k, v) in [x, y].into_iter().enumerate() {
                let g = gg.at(&[0, 0, j, k]);
                if any_nan || !v.is_finite() || v.abs() > 1e6 {
                    assert_eq!(g, 0.0, "{opts:?}: point ({x}, {y}) got gradient {g} in {k}");
                }
                assert!(g.is_finite());
            }
        }
        for (j, &(x, y)) in WILD.iter().enumerate() {
            for c in 0..2 {
                let v = out.at(&[0, c, 0, j]);
                if x.is_nan() || y.is_nan() || opts.padding == Padding::Zeros {
                    // NaN samples nothing; with zero padding, everything wild
                    // is far outside the image.
                    assert_eq!(v, 0.0, "{opts:?}: point ({x}, {y}) sampled {v}");
                }
            }
        }
        // No input pixel may receive gradient from a NaN or zero-padded point.
        if opts.padding == Padding::Zeros {
            assert!(gi.data().iter().all(|&v| v == 0.0), "{opts:?}: {gi:?}");
        }
    }
}

#[test]
fn infinite_and_huge_coordinates_clamp_to_the_edge_under_border_padding() {
    let input = random(&[1, 1, 4, 5], -1.0, 1.0, 3);
    let wild = Tensor::from_vec(
        vec![f32::INFINITY, 0.25, -1e30, 0.25, 0.5, f32::NEG_INFINITY],
        &[1, 1, 3, 2],
    );
    // The same points pulled back to just outside the image.
    let near = Tensor::from_vec(vec![3.0, 0.25, -3.0, 0.25, 0.5, -3.0], &[1, 1, 3, 2]);
    for mode in MODES {
        for align_corners in [false, true] {
            let opts = SampleOptions {
                mode,
                padding: Padding::Border,
                align_corners,
            };
            let a = grid_sample(&input, &wild, opts);
            let b = grid_sample(&input, &near, opts);
            assert!(a.max_abs_diff(&b) < 1e-6, "{opts:?}: {a:?} vs {b:?}");
        }
    }
}

/// Runs forward and full backward of every mode in a pool of `threads` threads.
fn run_in_pool(threads: usize, input: &Tensor, grid: &Tensor, gout: &Tensor) -> Vec<Vec<u32>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    pool.install(|| {
        let mut bits = Vec::new();
        for mode in MODES {
            let opts = SampleOptions::new(mode, Padding::Reflection);
            let out = grid_sample(input, grid, opts);
            let (gi, gg) = grid_sample_backward(input, grid, gout, opts);
            for t in [out, gi, gg] {
                bits.push(t.data().iter().map(|v| v.to_bits()).collect());
            }
        }
        bits
    })
}

/// A sizeable, mostly-downsampling warp: 2×3×64×80 sampled at 96×72 points.
fn sizeable_problem() -> (Tensor, Tensor, Tensor) {
    let input = random(&[2, 3, 64, 80], -1.0, 1.0, 4);
    let theta = Tensor::from_vec(
        vec![
            0.9, 0.3, 0.1, -0.25, 1.1, -0.05, 1.3, -0.2, 0.0, 0.4, 0.8, 0.2,
        ],
        &[2, 2, 3],
    );
    let grid = affine_grid(&theta, [2, 3, 96, 72], false);
    let gout = random(&[2, 3, 96, 72], -1.0, 1.0, 5);
    (input, grid, gout)
}

#[test]
fn results_are_bit_identical_for_one_and_two_threads() {
    let (input, grid, gout) = sizeable_problem();
    let one = run_in_pool(1, &input, &grid, &gout);
    let two = run_in_pool(2, &input, &grid, &gout);
    assert_eq!(one.len(), 9);
    for (k, (a, b)) in one.iter().zip(&two).enumerate() {
        assert!(
            a == b,
            "result {k} (mode {}, tensor {}) differs",
            k / 3,
            k % 3
        );
    }
}

#[test]
fn splitting_into_row_tasks_equals_sampling_row_by_row() {
    // 96 output rows of 72 pixels span two forward / ∂grid tasks; sampling
    // each row on its own must give the same values.
    let (input, grid, gout) = sizeable_problem();
    let (ho, wo) = (96, 72);
    for mode in MODES {
        let opts = SampleOptions::new(mode, Padding::Zeros).align_corners(true);
        let out = grid_sample(&input, &grid, opts);
        let (gi, gg) = grid_sample_backward(&input, &grid, &gout, opts);
        let mut gi_sum = vec![0.0f32; gi.numel()];
        for b in 0..2 {
            for r in 0..ho {
                let g0 = ((b * ho + r) * wo) * 2;
                let row_grid =
                    Tensor::from_vec(grid.data()[g0..g0 + wo * 2].to_vec(), &[1, 1, wo, 2]);
                let row_in = Tensor::from_vec(
                    input.data()[b * 3 * 64 * 80..(b + 1) * 3 * 64 * 80].to_vec(),
                    &[1, 3, 64, 80],
                );
                let row_gout: Vec<f32> = (0..3)
                    .flat_map(|c| {
                        let o = ((b * 3 + c) * ho + r) * wo;
                        gout.data()[o..o + wo].to_vec()
                    })
                    .collect();
                let row_gout = Tensor::from_vec(row_gout, &[1, 3, 1, wo]);
                let row_out = grid_sample(&row_in, &row_grid, opts);
                let (rgi, rgg) = grid_sample_backward(&row_in, &row_grid, &row_gout, opts);
                for c in 0..3 {
                    for j in 0..wo {
                        assert_eq!(row_out.at(&[0, c, 0, j]), out.at(&[b, c, r, j]), "{opts:?}");
                    }
                }
                assert_eq!(rgg.data(), &gg.data()[g0..g0 + wo * 2], "{opts:?} row {r}");
                let base = b * 3 * 64 * 80;
                for (acc, v) in gi_sum[base..base + rgi.numel()].iter_mut().zip(rgi.data()) {
                    *acc += v;
                }
            }
        }
        let gi_sum = Tensor::from_vec(gi_sum, gi.shape());
        assert!(gi_sum.max_abs_diff(&gi) < 1e-4, "{opts:?}");
    }
}

#[test]
fn identity_theta_reproduces_the_input_for_both_alignments() {
    let input = random(&[2, 3, 7, 9], -1.0, 1.0, 6);
    let theta = Tensor::from_vec([1.0, 0.0, 0.0, 0.0, 1.0, 0.0].repeat(2), &[2, 2, 3]);
    for mode in MODES {
        for align_corners in [false, true] {
            let grid = affine_grid(&theta, [2, 3, 7, 9], align_corners);
            let opts = SampleOptions::new(mode, Padding::Zeros).align_corners(align_corners);
            let out = grid_sample(&input, &grid, opts);
            assert!(out.max_abs_diff(&input) < 1e-5, "{opts:?}");
        }
    }
}

#[test]
fn masked_backward_computes_only_what_is_asked_and_agrees_with_the_full_one() {
    let input = random(&[1, 2, 5, 6], -1.0, 1.0, 7);
    let grid = random(&[1, 4, 3, 2], -1.2, 1.2, 8);
    let gout = random(&[1, 2, 4, 3], -1.0, 1.0, 9);
    for opts in all_options() {
        let (gi, gg) = grid_sample_backward(&input, &grid, &gout, opts);
        let (a, b) = grid_sample_backward_masked(&input, &grid, &gout, opts, false, true);
        assert!(a.is_none());
        assert_eq!(b.as_ref(), Some(&gg));
        let (a, b) = grid_sample_backward_masked(&input, &grid, &gout, opts, true, false);
        assert_eq!(a.as_ref(), Some(&gi));
        assert!(b.is_none());
        if opts.mode == Mode::Nearest {
            assert!(gg.data().iter().all(|&v| v == 0.0));
        }
    }
}

#[test]
fn nearest_rounds_half_to_even() {
    // align_corners = true on 5 pixels: x = −0.75 is pixel 0.5 → 0, x = −0.25
    // is 1.5 → 2, x = 0.25 is 2.5 → 2.
    let input = Tensor::from_vec(vec![10.0, 11.0, 12.0, 13.0, 14.0], &[1, 1, 1, 5]);
    let grid = Tensor::from_vec(vec![-0.75, 0.0, -0.25, 0.0, 0.25, 0.0], &[1, 1, 3, 2]);
    let opts = SampleOptions::new(Mode::Nearest, Padding::Zeros).align_corners(true);
    assert_eq!(grid_sample(&input, &grid, opts).data(), &[10.0, 12.0, 12.0]);
}

#[test]
fn empty_outputs_and_channels_are_fine() {
    let input = random(&[2, 3, 4, 4], -1.0, 1.0, 10);
    let grid = Tensor::zeros(&[2, 0, 5, 2]);
    for opts in all_options() {
        let out = grid_sample(&input, &grid, opts);
        assert_eq!(out.shape(), &[2, 3, 0, 5]);
        let (gi, gg) = grid_sample_backward(&input, &grid, &out, opts);
        assert!(gi.data().iter().all(|&v| v == 0.0));
        assert_eq!(gg.shape(), &[2, 0, 5, 2]);
    }
    let none = Tensor::zeros(&[1, 0, 3, 3]);
    let out = grid_sample(
        &none,
        &Tensor::zeros(&[1, 2, 2, 2]),
        SampleOptions::default(),
    );
    assert_eq!(out.shape(), &[1, 0, 2, 2]);
}

#[test]
#[should_panic(
    expected = "grid_sample: input must be N×C×H×W and grid N×H'×W'×2, got input [2, 1, 4, 4] and grid [1, 3, 3, 2]"
)]
fn batch_mismatch_panics_with_the_shapes() {
    grid_sample(
        &Tensor::zeros(&[2, 1, 4, 4]),
        &Tensor::zeros(&[1, 3, 3, 2]),
        SampleOptions::default(),
    );
}

#[test]
#[should_panic(expected = "grid_sample_backward: grad_output must be [1, 1, 3, 3]")]
fn wrong_grad_output_shape_panics_with_the_shapes() {
    let input = Tensor::zeros(&[1, 1, 4, 4]);
    let grid = Tensor::zeros(&[1, 3, 3, 2]);
    grid_sample_backward(
        &input,
        &grid,
        &Tensor::zeros(&[1, 1, 3, 4]),
        SampleOptions::default(),
    );
}

#[test]
#[should_panic(expected = "empty spatial size")]
fn empty_input_image_panics() {
    grid_sample(
        &Tensor::zeros(&[1, 1, 0, 4]),
        &Tensor::zeros(&[1, 1, 1, 2]),
        SampleOptions::default(),
    );
}

#[test]
fn tape_ops_pass_gradcheck_away_from_kinks() {
    use engine::{gradcheck, GradcheckOptions, Var};
    use stn::affine_grid::affine_grid_var;
    use stn::sampler::grid_sample_var;

    let input = random(&[2, 2, 5, 6], -1.0, 1.0, 11);
    // A mild warp whose pixel coordinates all stay ≥ 0.07 from an integer
    // (found by search), so the check's ±h steps never cross a kink.
    let theta = Tensor::from_vec(
        vec![
            1.118, 0.027, -0.155, -0.003, 0.889, -0.29, 1.274, -0.059, -0.043, -0.077, 0.877, -0.09,
        ],
        &[2, 2, 3],
    );
    let size = [2, 2, 3, 4];
    for mode in [Mode::Bilinear, Mode::Bicubic] {
        for padding in PADDINGS {
            let opts = SampleOptions::new(mode, padding);
            let f = |v: &[Var]| {
                let grid = affine_grid_var(&v[1], size, false);
                grid_sample_var(&v[0], &grid, opts)
            };
            let go = GradcheckOptions {
                step: 1e-3,
                ..GradcheckOptions::default()
            };
            if let Err(e) = gradcheck(f, &[input.clone(), theta.clone()], &go) {
                panic!("{opts:?}: {e}");
            }
        }
    }
    // The image alone untracked: only θ gets a gradient.
    let tape = engine::Tape::new();
    let th = tape.leaf(theta.clone());
    let grid = affine_grid_var(&th, size, false);
    let out = grid_sample_var(
        &Var::constant(input.clone()),
        &grid,
        SampleOptions::default(),
    );
    let grads = out.backward_with(Tensor::ones(out.shape()));
    assert!(grads.get(&th).is_some_and(|g| g.all_finite()));
}
