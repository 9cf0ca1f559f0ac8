//! docs/gradients.md checked: its worked examples are produced here by the
//! page's functions (`stn::sampler::bilinear`) and by the engine's
//! `grid_sample`, each number is looked up in the doc's text, and every
//! function of the sampler the doc names exists.

use engine::Tensor;
use stn::sampler::bilinear::{axis, gradient, sample, scatter};
use stn::{grid_sample, grid_sample_backward, Mode, Padding, SampleOptions};

fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/gradients.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// Panics unless docs/gradients.md contains `text`.
fn doc_says(text: &str) {
    assert!(
        doc().contains(text),
        "docs/gradients.md should say {text:?}"
    );
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() < 1e-6
}

/// One point (x_s, y_s) sampled from a 1×1×H×W image with ∂L/∂V = 1, by
/// the page and by the engine (which must agree bit for bit): V, ∂V/∂U,
/// ∂V/∂p in pixel units and ∂V/∂(x_s, y_s) in grid units.
struct Point {
    v: f32,
    du: Vec<f32>,
    dp: (f32, f32),
    dgrid: (f32, f32),
}

fn point(u: &[f32], h: usize, w: usize, xy: (f32, f32), opts: SampleOptions) -> Point {
    let (x, y) = (axis(xy.0, w, opts), axis(xy.1, h, opts));
    let v = sample(u, w, &x, &y);
    let mut du = vec![0.0; h * w];
    scatter(&mut du, w, &x, &y, 1.0);
    let dp = gradient(u, w, &x, &y);
    let dgrid = (dp.0 * x.mult, dp.1 * y.mult);
    // The engine.
    let input = Tensor::from_vec(u.to_vec(), &[1, 1, h, w]);
    let grid = Tensor::from_vec(vec![xy.0, xy.1], &[1, 1, 1, 2]);
    let out = grid_sample(&input, &grid, opts);
    let (gu, gg) = grid_sample_backward(&input, &grid, &Tensor::ones(&[1, 1, 1, 1]), opts);
    assert_eq!(out.data()[0].to_bits(), v.to_bits(), "V: engine vs page");
    assert_eq!(gu.data(), &du[..], "∂U: engine vs page");
    assert_eq!(gg.data(), &[dgrid.0, dgrid.1], "∂grid: engine vs page");
    Point { v, du, dp, dgrid }
}

/// Eq. (7) as the paper prints it: Σ_n Σ_m U_nm k(p_y − n) s(m − p_x), with
/// s = 0 if |m − p_x| ≥ 1, +1 if m ≥ p_x, −1 if m < p_x.
fn printed_rule_dx(u: &[f32], h: usize, w: usize, px: f32, py: f32) -> f32 {
    let mut d = 0.0;
    for n in 0..h {
        for m in 0..w {
            let (dm, dn) = (m as f32 - px, n as f32 - py);
            let s = if dm.abs() >= 1.0 {
                0.0
            } else if dm >= 0.0 {
                1.0
            } else {
                -1.0
            };
            d += u[n * w + m] * (1.0 - dn.abs()).max(0.0) * s;
        }
    }
    d
}

#[test]
fn worked_example_1_two_by_two_align_corners() {
    let u = [1.0, 2.0, 3.0, 4.0];
    let opts = SampleOptions::new(Mode::Bilinear, Padding::Zeros).align_corners(true);
    // (p_x, p_y) = (0.3, 0.6) pixels; align_corners: x_s = 2·p/(W−1) − 1.
    let p = point(&u, 2, 2, (2.0 * 0.3 - 1.0, 2.0 * 0.6 - 1.0), opts);
    assert!(close(p.v, 2.5), "V = {}", p.v);
    doc_says("**2.5**");
    for (got, want) in p.du.iter().zip([0.28, 0.12, 0.42, 0.18]) {
        assert!(close(*got, want), "∂V/∂U = {:?}", p.du);
    }
    doc_says("| (0, 0) | 1 | 0.7 · 0.4 = 0.28 |");
    doc_says("| (1, 1) | 4 | 0.3 · 0.6 = 0.18 |");
    assert!(
        close(p.dp.0, 1.0) && close(p.dp.1, 2.0),
        "∂V/∂p = {:?}",
        p.dp
    );
    doc_says("0.4·(2 − 1) + 0.6·(4 − 3) = **1.0**");
    doc_says("0.7·(3 − 1) + 0.3·(4 − 2) = **2.0**");
    assert!(
        close(p.dgrid.0, 0.5) && close(p.dgrid.1, 1.0),
        "∂V/∂grid = {:?}",
        p.dgrid
    );
    doc_says("∂V/∂x_s = 1.0 · ½ = **0.5**");
    doc_says("∂V/∂y_s = 2.0 · ½ = **1.0**");

    // The integer coordinate (p_x, p_y) = (0, 0.6): the printed rule says
    // 2.2, the code the right derivative 1.0.
    let k = point(&u, 2, 2, (-1.0, 2.0 * 0.6 - 1.0), opts);
    assert!(close(k.dp.0, 1.0), "∂V/∂p_x at the kink = {}", k.dp.0);
    let printed = printed_rule_dx(&u, 2, 2, 0.0, 0.6);
    assert!(close(printed, 2.2), "printed rule = {printed}");
    doc_says("the printed rule gives 0.4·1 + 0.6·3 = **2.2**, the\n  code **1.0**");
}

#[test]
fn worked_example_2_three_by_three_models_convention() {
    // U_nm = m² + n², align_corners = false (the models).
    let u: Vec<f32> = (0..9)
        .map(|i| ((i % 3) * (i % 3) + (i / 3) * (i / 3)) as f32)
        .collect();
    doc_says("U_nm = m² + n² = [[0, 1, 4], [1, 2, 5], [4, 5, 8]]");
    assert_eq!(u, [0.0, 1.0, 4.0, 1.0, 2.0, 5.0, 4.0, 5.0, 8.0]);
    let opts = SampleOptions::new(Mode::Bilinear, Padding::Zeros);
    let p = point(&u, 3, 3, (0.0, -0.5), opts);
    doc_says("(x_s, y_s) = (0, −0.5)");
    doc_says("(p_x, p_y) = (1, 0.25)");
    assert!(close(p.v, 1.25), "V = {}", p.v);
    doc_says("V = 0.75·1 + 0.25·2 = **1.25**");
    let want_du = [0.0, 0.75, 0.0, 0.0, 0.25, 0.0, 0.0, 0.0, 0.0];
    assert_eq!(p.du, want_du, "∂V/∂U");
    doc_says("| (0, 1) | 1 | 1 · 0.75 = 0.75 |");
    doc_says("| (1, 1) | 2 | 1 · 0.25 = 0.25 |");
    assert!(
        close(p.dp.0, 3.0) && close(p.dp.1, 1.0),
        "∂V/∂p = {:?}",
        p.dp
    );
    doc_says("0.75·(4 − 1) + 0.25·(5 − 2) = **3.0**");
    doc_says("1·(2 − 1) + 0·(5 − 4) = **1.0**");
    assert!(
        close(p.dgrid.0, 4.5) && close(p.dgrid.1, 1.5),
        "∂V/∂grid = {:?}",
        p.dgrid
    );
    doc_says("∂V/∂x_s = **4.5**, ∂V/∂y_s = **1.5**");

    // The kink: the left derivative (a one-sided difference quotient of the
    // engine's V, which is linear on [p − δ, p]) and the printed rule.
    let delta = 1.0 / 16.0;
    let g = (2.0 * (1.0 - delta) + 1.0) / 3.0 - 1.0;
    let left_p = ((g as f64 + 1.0) * 3.0 - 1.0) / 2.0;
    let left = point(&u, 3, 3, (g, -0.5), opts);
    let slope = (p.v - left.v) as f64 / (1.0 - left_p);
    assert!((slope - 1.0).abs() < 1e-4, "left derivative {slope}");
    let printed = printed_rule_dx(&u, 3, 3, 1.0, 0.25);
    assert!(close(printed, 1.25), "printed rule {printed}");
    doc_says("right derivative\n  (the code) **3.0**, left derivative 1.0, printed rule **1.25**");

    // Off the image: zero padding gives V = 0 and no gradient; border
    // padding samples the edge column, still without a gradient.
    let out = point(&u, 3, 3, (-1.8, -0.5), opts);
    assert_eq!((out.v, out.dgrid.0), (0.0, 0.0));
    assert!(out.du.iter().all(|&d| d == 0.0));
    doc_says("(x_s, y_s) = (−1.8, −0.5)");
    doc_says("V = **0** and ∂V/∂x_s = **0** with\n  zero padding");
    let border = SampleOptions::new(Mode::Bilinear, Padding::Border);
    let edge = point(&u, 3, 3, (-1.8, -0.5), border);
    assert!(
        close(edge.v, 0.25) && edge.dgrid.0 == 0.0,
        "{} {:?}",
        edge.v,
        edge.dgrid
    );
    doc_says("with border padding V = 0.75·0 + 0.25·1 = 0.25 (the edge column) and\n  still ∂V/∂x_s = **0**");
}

/// Every `stn::sampler::bilinear::NAME` in the doc is a `pub fn NAME` of
/// the page, every other `stn::sampler::NAME` a `fn NAME` of the sampler,
/// and every `stn/src/….rs` path a file.
#[test]
fn the_functions_and_files_the_doc_names_exist() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let read = |p: &str| std::fs::read_to_string(format!("{root}/{p}")).unwrap_or_default();
    let page = read("stn/src/sampler/bilinear.rs");
    let sampler: String = ["mod.rs", "var.rs", "bilinear.rs"]
        .iter()
        .map(|f| read(&format!("stn/src/sampler/{f}")))
        .collect();
    let text = doc();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut named = 0;
    for (i, _) in text.match_indices("stn::sampler::") {
        let rest = &text[i + "stn::sampler::".len()..];
        if let Some(f) = rest.strip_prefix("bilinear::") {
            let f = ident(f);
            assert!(
                page.contains(&format!("pub fn {f}(")),
                "no `pub fn {f}` on the page"
            );
        } else {
            let f = ident(rest);
            assert!(
                sampler.contains(&format!("fn {f}(")),
                "no `fn {f}` in the sampler"
            );
        }
        named += 1;
    }
    assert!(named >= 6, "the doc names only {named} sampler functions");
    for (i, _) in text.match_indices("`stn/") {
        let path: String = text[i + 1..].chars().take_while(|&c| c != '`').collect();
        if path.ends_with(".rs") && !path.contains('*') {
            assert!(
                std::path::Path::new(&format!("{root}/{path}")).exists(),
                "docs/gradients.md names {path}, which does not exist"
            );
        }
    }
}
