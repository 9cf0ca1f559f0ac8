//! Parity of `grid_sample` (forward, ∂input, ∂grid) and `affine_grid` (forward,
//! backward) with PyTorch, on the fixtures written by
//! `tools/reference/make_sampler_fixtures.py` (PyTorch in float64 on float32
//! inputs, rounded to float32).
//!
//! Tolerance: |a − b| ≤ 1e-5 · max(1, |b|) elementwise. On failure every
//! failing combination is listed with its worst element.

use engine::npy::read_npy;
use engine::Tensor;
use std::path::PathBuf;
use stn::{
    affine_grid, affine_grid_backward, grid_sample, grid_sample_backward, Mode, Padding,
    SampleOptions,
};

const TOL: f32 = 1e-5;

fn fixture(name: &str) -> Tensor {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sampler")
        .join(format!("{name}.npy"));
    read_npy(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Worst scaled error max |a−b| / max(1, |b|) and where it is.
fn worst(a: &Tensor, b: &Tensor) -> (f32, usize, f32, f32) {
    assert_eq!(a.shape(), b.shape(), "shape mismatch");
    let mut w = (0.0f32, 0, 0.0, 0.0);
    for (i, (&x, &y)) in a.data().iter().zip(b.data()).enumerate() {
        let e = (x - y).abs() / y.abs().max(1.0);
        // NaN anywhere counts as an infinite error.
        let e = if e.is_nan() { f32::INFINITY } else { e };
        if e > w.0 {
            w = (e, i, x, y);
        }
    }
    w
}

/// Compares and records a failure line; returns the worst error.
fn compare(label: &str, got: &Tensor, want: &Tensor, failures: &mut Vec<String>) -> f32 {
    let (e, i, x, y) = worst(got, want);
    if e > TOL {
        failures.push(format!(
            "{label}: worst scaled error {e:.2e} at flat index {i} (got {x}, PyTorch {y})"
        ));
    }
    e
}

const MODES: [(Mode, &str); 3] = [
    (Mode::Bilinear, "bilinear"),
    (Mode::Nearest, "nearest"),
    (Mode::Bicubic, "bicubic"),
];
const PADDINGS: [(Padding, &str); 3] = [
    (Padding::Zeros, "zeros"),
    (Padding::Border, "border"),
    (Padding::Reflection, "reflection"),
];
const CASES: [&str; 4] = ["up", "down", "kinks", "thin"];

#[test]
fn grid_sample_matches_pytorch_for_every_mode_padding_and_alignment() {
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut worst_overall = 0.0f32;
    for ac in [false, true] {
        let tag = if ac { "ac1" } else { "ac0" };
        for case in CASES {
            let input = fixture(&format!("{tag}_{case}_input"));
            let grid = fixture(&format!("{tag}_{case}_grid"));
            let gout = fixture(&format!("{tag}_{case}_grad_output"));
            for (mode, mname) in MODES {
                for (padding, pname) in PADDINGS {
                    let opts = SampleOptions {
                        mode,
                        padding,
                        align_corners: ac,
                    };
                    let stem = format!("{mname}_{pname}_{tag}_{case}");
                    let out = grid_sample(&input, &grid, opts);
                    let (gi, gg) = grid_sample_backward(&input, &grid, &gout, opts);
                    for (what, got) in [("output", &out), ("grad_input", &gi), ("grad_grid", &gg)] {
                        let want = fixture(&format!("{stem}_{what}"));
                        let e = compare(&format!("{stem} {what}"), got, &want, &mut failures);
                        worst_overall = worst_overall.max(e);
                    }
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 72);
    assert!(
        failures.is_empty(),
        "{} of {} comparisons exceed {TOL:e}:\n{}",
        failures.len(),
        checked * 3,
        failures.join("\n")
    );
    eprintln!("grid_sample: {checked} cases × 3 tensors, worst scaled error {worst_overall:.2e}");
}

#[test]
fn kink_fixtures_really_sit_on_integer_pixel_coordinates() {
    // Guards the fixtures themselves: the "kinks" grids must exercise PyTorch's
    // sub-gradient choice, so many points must land exactly on integers.
    for (ac, w) in [(false, 8.0f32), (true, 9.0)] {
        let tag = if ac { "ac1" } else { "ac0" };
        let grid = fixture(&format!("{tag}_kinks_grid"));
        let on_integer = grid
            .data()
            .chunks(2)
            .filter(|p| {
                let u = if ac {
                    (p[0] + 1.0) * 0.5 * (w - 1.0)
                } else {
                    ((p[0] + 1.0) * w - 1.0) * 0.5
                };
                u == u.round()
            })
            .count();
        assert!(
            on_integer >= 10,
            "{tag}: only {on_integer} integer x coordinates"
        );
    }
}

#[test]
fn affine_grid_and_its_backward_match_pytorch() {
    let mut failures = Vec::new();
    let mut worst_overall = 0.0f32;
    for ac in [false, true] {
        let tag = if ac { "ac1" } else { "ac0" };
        for case in ["wide", "tall", "one"] {
            let stem = format!("affine_{tag}_{case}");
            let size: Vec<usize> = fixture(&format!("{stem}_size"))
                .data()
                .iter()
                .map(|&v| v as usize)
                .collect();
            let size = [size[0], size[1], size[2], size[3]];
            let theta = fixture(&format!("{stem}_theta"));
            let grid = affine_grid(&theta, size, ac);
            let e1 = compare(
                &stem,
                &grid,
                &fixture(&format!("{stem}_grid")),
                &mut failures,
            );
            let gt = affine_grid_backward(&fixture(&format!("{stem}_grad_grid")), size, ac);
            let e2 = compare(
                &format!("{stem} backward"),
                &gt,
                &fixture(&format!("{stem}_grad_theta")),
                &mut failures,
            );
            worst_overall = worst_overall.max(e1).max(e2);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("affine_grid: 6 cases, worst scaled error {worst_overall:.2e}");
}
