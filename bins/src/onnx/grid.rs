//! The spatial transformer as ONNX nodes: the grid generator T_θ (paper
//! §3.2) from standard operators, then GridSample (the sampler, eq. 3–5).
//!
//! θ (N×P) comes from the localisation net. With the output's regular grid
//! as constants (the same f32 values warpgrad uses):
//! - affine, eq. (1): opset 20's AffineGrid on θ as N×2×3; before opset 20,
//!   grid = B·A_θᵀ with B the (H'W')×3 homogeneous base points (MatMul).
//! - projective: H = [θ, 1] as N×3×3, Q = B·Hᵀ, grid = Q[:, :, :2] / Q[:, :, 2:].
//! - TPS: grid = base + W·d, W the (H'W')×K² spline weights of
//!   [`stn::transforms::ThinPlateSpline::weights`], d = θ as N×K²×2.

use super::graph::{Attr, Graph};
use crate::error::{msg, CliError};
use stn::transforms::{base_grid, ThinPlateSpline};
use stn::{Mode, Padding, SpatialTransformer};

/// V = GridSample(x, T_θ(G)) for the transformer `st`; returns V's name.
pub fn transformer(
    g: &mut Graph,
    st: &SpatialTransformer,
    x: &str,
    theta: &str,
    opset: i64,
) -> Result<String, CliError> {
    let [h, w] = st.out_hw();
    let opts = st.options();
    let ac = opts.align_corners;
    let t = st.transform();
    let base = base_grid([h, w], ac);
    // Homogeneous base points (x_t, y_t, 1), (H'W')×3.
    let base3: Vec<f32> = base
        .data()
        .chunks_exact(2)
        .flat_map(|p| [p[0], p[1], 1.0])
        .collect();
    let grid = match (t.name(), t.num_params()) {
        ("affine", 6) if opset >= 20 => {
            let shape = g.i64_const("st.theta_shape", &[-1, 2, 3]);
            let a = g.node("Reshape", &[theta, &shape], "st.A", vec![]);
            // AffineGrid's size [N, C, H', W'] with N taken from the input.
            let xs = g.node("Shape", &[x], "st.input_shape", vec![]);
            let (s0, s1) = (g.i64_const("st.zero", &[0]), g.i64_const("st.one", &[1]));
            let n = g.node("Slice", &[&xs, &s0, &s1], "st.batch", vec![]);
            let chw = g.i64_const("st.out_chw", &[1, h as i64, w as i64]);
            let size = g.node(
                "Concat",
                &[&n, &chw],
                "st.size",
                vec![("axis", Attr::Int(0))],
            );
            g.node(
                "AffineGrid",
                &[&a, &size],
                "st.grid",
                vec![("align_corners", Attr::Int(ac as i64))],
            )
        }
        ("affine", 6) | ("proj", 8) => {
            let proj = t.name() == "proj";
            let mut m = theta.to_string();
            if proj {
                // Append h33 = 1 to every row of θ.
                let pads = g.i64_const("st.pads", &[0, 0, 0, 1]);
                let one = g.f32_const("st.h33", &[], &[1.0]);
                m = g.node("Pad", &[&m, &pads, &one], "st.H", vec![]);
            }
            let rows = if proj { 3 } else { 2 };
            let shape = g.i64_const("st.theta_shape", &[-1, rows, 3]);
            let m = g.node("Reshape", &[&m, &shape], "st.matrix", vec![]);
            let mt = g.node(
                "Transpose",
                &[&m],
                "st.matrix_t",
                vec![("perm", Attr::Ints(vec![0, 2, 1]))],
            );
            let b = g.f32_const("st.base_points", &[h * w, 3], &base3);
            let q = g.node("MatMul", &[&b, &mt], "st.points", vec![]);
            let q = if proj {
                let axis = g.i64_const("st.axis2", &[2]);
                let (s0, s2, s3) = (
                    g.i64_const("st.s0", &[0]),
                    g.i64_const("st.s2", &[2]),
                    g.i64_const("st.s3", &[3]),
                );
                let num = g.node("Slice", &[&q, &s0, &s2, &axis], "st.numerator", vec![]);
                let den = g.node("Slice", &[&q, &s2, &s3, &axis], "st.denominator", vec![]);
                g.node("Div", &[&num, &den], "st.projected", vec![])
            } else {
                q
            };
            let grid_shape = g.i64_const("st.grid_shape", &[-1, h as i64, w as i64, 2]);
            g.node("Reshape", &[&q, &grid_shape], "st.grid", vec![])
        }
        ("tps", p) if p % 2 == 0 && is_square(p / 2) => {
            let kk = p / 2;
            let tps = ThinPlateSpline::new(isqrt(kk));
            let weights = tps.weights([h, w], ac);
            let wn = g.f32_const("st.tps_weights", &[h * w, kk], weights.data());
            let shape = g.i64_const("st.offsets_shape", &[-1, kk as i64, 2]);
            let d = g.node("Reshape", &[theta, &shape], "st.offsets", vec![]);
            let off = g.node("MatMul", &[&wn, &d], "st.grid_offsets", vec![]);
            let b = g.f32_const("st.base_grid", &[h * w, 2], base.data());
            let pts = g.node("Add", &[&off, &b], "st.points", vec![]);
            let grid_shape = g.i64_const("st.grid_shape", &[-1, h as i64, w as i64, 2]);
            g.node("Reshape", &[&pts, &grid_shape], "st.grid", vec![])
        }
        (name, p) => {
            return Err(msg(format!(
                "transform '{name}' ({p} parameters) has no ONNX export (affine, proj and tps do)"
            )))
        }
    };
    // GridSample's mode names changed in opset 20.
    let mode = match (opts.mode, opset >= 20) {
        (Mode::Bilinear, true) => "linear",
        (Mode::Bilinear, false) => "bilinear",
        (Mode::Nearest, _) => "nearest",
        (Mode::Bicubic, true) => "cubic",
        (Mode::Bicubic, false) => "bicubic",
    };
    let padding = match opts.padding {
        Padding::Zeros => "zeros",
        Padding::Border => "border",
        Padding::Reflection => "reflection",
    };
    Ok(g.node(
        "GridSample",
        &[x, &grid],
        "st.sample",
        vec![
            ("mode", Attr::Str(mode.into())),
            ("padding_mode", Attr::Str(padding.into())),
            ("align_corners", Attr::Int(ac as i64)),
        ],
    ))
}

fn isqrt(n: usize) -> usize {
    (n as f64).sqrt().round() as usize
}

fn is_square(n: usize) -> bool {
    isqrt(n) * isqrt(n) == n && n >= 4
}
