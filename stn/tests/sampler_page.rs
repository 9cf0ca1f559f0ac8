//! `grid_sample` (the kernels, on threads) against the page
//! `stn::sampler::bilinear` (scalar, point by point): the same bits, forward,
//! ∂U and ∂grid (together and alone), for several batch items and channels,
//! every padding, both pixel conventions, wild points, 1 and 2 threads; and
//! the fused affine op's values and ∂U against the page on the same grid.

use engine::{Tape, Tensor};
use stn::sampler::bilinear::{grid_sample_backward_reference, grid_sample_reference};
use stn::{
    affine_grid, affine_sample, grid_sample, grid_sample_backward, grid_sample_backward_masked,
    Mode, Padding, SampleOptions,
};

fn bits(t: &Tensor) -> Vec<u32> {
    t.data().iter().map(|x| x.to_bits()).collect()
}

/// N×C×H×W values, a grid of N×H'×W' points spread beyond [−1, 1] with
/// wild values, integer pixel coordinates and edges mixed in, and ∂L/∂V.
fn case(n: usize, c: usize, h: usize, w: usize, ho: usize, wo: usize) -> [Tensor; 3] {
    let input: Vec<f32> = (0..n * c * h * w)
        .map(|i| (i as f32 * 0.913).sin() * 2.0 - 0.3)
        .collect();
    let mut grid: Vec<f32> = (0..n * ho * wo * 2)
        .map(|i| (i as f32 * 0.0231).cos() * 1.4 + (i as f32 * 0.7).sin() * 0.05)
        .collect();
    let special = [
        f32::NAN,
        f32::INFINITY,
        -f32::INFINITY,
        1e30,
        -1.0,
        1.0,
        0.0,
    ];
    for (k, v) in special.into_iter().enumerate() {
        if let Some(g) = grid.get_mut(11 * k + 5) {
            *g = v;
        }
    }
    let gout: Vec<f32> = (0..n * c * ho * wo)
        .map(|i| (i as f32 * 0.377).cos())
        .collect();
    [
        Tensor::from_vec(input, &[n, c, h, w]),
        Tensor::from_vec(grid, &[n, ho, wo, 2]),
        Tensor::from_vec(gout, &[n, c, ho, wo]),
    ]
}

fn each_option(mut f: impl FnMut(SampleOptions)) {
    for padding in [Padding::Zeros, Padding::Border, Padding::Reflection] {
        for ac in [false, true] {
            f(SampleOptions::new(Mode::Bilinear, padding).align_corners(ac));
        }
    }
}

#[test]
fn grid_sample_gives_the_pages_bits_for_any_thread_count() {
    let shapes = [
        (2, 1, 28, 28, 28, 28),
        (3, 3, 13, 17, 9, 70),
        (1, 2, 1, 1, 5, 5),
        (2, 10, 6, 5, 4, 3),
        (1, 1, 100, 90, 64, 80),
    ];
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool");
        pool.install(|| {
            each_option(|opts| {
                for (n, c, h, w, ho, wo) in shapes {
                    let [input, grid, gout] = case(n, c, h, w, ho, wo);
                    let label = format!("{opts:?} {:?} {threads} threads", input.shape());
                    let want = grid_sample_reference(&input, &grid, opts);
                    assert_eq!(
                        bits(&grid_sample(&input, &grid, opts)),
                        bits(&want),
                        "forward {label}"
                    );
                    let (du, dg) = grid_sample_backward_reference(&input, &grid, &gout, opts);
                    let (gu, gg) = grid_sample_backward(&input, &grid, &gout, opts);
                    assert_eq!(bits(&gu), bits(&du), "∂U {label}");
                    assert_eq!(bits(&gg), bits(&dg), "∂grid {label}");
                    let (none, alone) =
                        grid_sample_backward_masked(&input, &grid, &gout, opts, false, true);
                    assert!(none.is_none());
                    assert_eq!(
                        bits(&alone.expect("∂grid")),
                        bits(&dg),
                        "∂grid alone {label}"
                    );
                }
            })
        });
    }
}

/// The fused affine transform + sampler rounds the same source points as
/// `affine_grid` (see `stn::fused`), so its values and ∂U are the page's on
/// that grid.
#[test]
fn the_fused_affine_op_gives_the_pages_values_and_input_gradient() {
    let (n, c, h, w, out) = (2, 3, 20, 24, [16, 18]);
    let [input, _, _] = case(n, c, h, w, 1, 1);
    let theta = Tensor::from_vec(
        vec![
            0.9, 0.2, 0.1, -0.15, 1.1, -0.05, 1.3, -0.4, 0.6, 0.5, 0.8, -0.7,
        ],
        &[n, 6],
    );
    each_option(|opts| {
        let tape = Tape::new();
        let (u, t) = (tape.leaf(input.clone()), tape.leaf(theta.clone()));
        let v = affine_sample(&u, &t, out, opts);
        let grid = affine_grid(
            &theta.reshape(&[n, 2, 3]),
            [n, c, out[0], out[1]],
            opts.align_corners,
        );
        let want = grid_sample_reference(&input, &grid, opts);
        assert_eq!(bits(v.value()), bits(&want), "fused values {opts:?}");
        let gout = Tensor::from_vec(
            (0..v.value().numel())
                .map(|i| (i as f32 * 0.29).sin())
                .collect(),
            v.value().shape(),
        );
        let grads = v.backward_with(gout.clone());
        let (du, _) = grid_sample_backward_reference(&input, &grid, &gout, opts);
        assert_eq!(
            bits(grads.get(&u).expect("∂U")),
            bits(&du),
            "fused ∂U {opts:?}"
        );
    });
}
