//! `warpgrad viz`: pictures of what a trained spatial transformer does to
//! test images of its data set.
//!
//! For each test image `i` in `start..start+count`, `viz-<i>.png` shows side
//! by side:
//! 1. the input U with the transformer's sampling grid over it: every k-th
//!    row and column of the grid T_θ(G), plus its outline (the region V is
//!    cut from) and a dot at V's top-left point, in input pixels
//!    (align_corners=false: x_pix = ((x+1)·W − 1)/2); the input sits on a
//!    grey margin so grid points outside it (sampled as zeros) stay visible;
//! 2. the transformer's output V;
//! 3. −∂L/∂grid as arrows on the input: the direction in which moving the
//!    sampling points lowers the loss of the true label, summed over blocks
//!    of grid points, with the arrow scale written in the picture.
//!
//! `overview.png` puts smaller versions of all of them together. θ (and its
//! 3×3 matrix when the transform has one) is printed for every image.
//!
//! The gradient comes from one forward and backward pass in which the grid
//! is a leaf of the tape: θ from the localisation net (evaluation mode), the
//! grid T_θ(G) as a leaf, then sampler → pool → classifier → cross-entropy
//! with the true label (`Model::classify`).
//!
//! A model without a transformer (fcn, cnn) gets pictures of the inputs with
//! its predictions and a note saying there is no warp to draw.

use crate::data_cmd::{say, test_samples};
use crate::draw::{self, Canvas, Rect, Rgb};
use crate::error::{msg, CliError};
use crate::run;
use crate::viz_pick::{self, Pick};
use engine::{Tape, Tensor, Var};
use layers::{Ctx, Module};
use stn::{Model, SpatialTransformer};

/// One transformer's warp of one image.
struct Warp {
    /// The transformer's name and transform ("st (affine)").
    name: String,
    /// Its colour in the pictures.
    colour: Rgb,
    /// θ (P values).
    theta: Vec<f32>,
    /// θ as a 3×3 matrix, for transforms that have one.
    matrix: Option<[[f32; 3]; 3]>,
    /// Output size [H', W'].
    out_hw: [usize; 2],
    /// The sampling grid, H'×W'×2 (x first), normalised.
    grid: Vec<f32>,
    /// ∂L/∂grid, same layout.
    dgrid: Vec<f32>,
    /// The output V (H'×W', first channel).
    v: Vec<f32>,
}

/// Everything drawn for one test image.
struct Example {
    /// Index in the test set.
    index: usize,
    /// Side of the (square) input.
    side: usize,
    /// The input, side×side in [0, 1].
    image: Vec<f32>,
    label: usize,
    pred: usize,
    /// Softmax probability of the prediction.
    prob: f32,
    /// Cross-entropy with the true label.
    loss: f32,
    /// One per transformer (empty for models without one).
    warps: Vec<Warp>,
}

/// Softmax probabilities of one row of logits.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = logits.iter().map(|&z| (z - m).exp()).collect();
    let s: f32 = e.iter().sum();
    e.iter().map(|&v| v / s).collect()
}

/// The warp of transformer `st` on `x` (1×1×S×S), the logits of the model
/// through it, and ∂L/∂grid for `label`.
fn warp_of(
    model: &Model,
    st: &SpatialTransformer,
    x: &Var,
    label: usize,
    colour: Rgb,
) -> (Warp, Vec<f32>) {
    let ctx = Ctx::eval();
    let theta = st.theta(x, &ctx);
    let grid_t = st.grid(&theta).value().clone();
    // Only the grid is a leaf: the gradient stops there (θ and the weights
    // are constants), which is exactly ∂L/∂grid.
    let tape = Tape::new();
    let grid = tape.leaf(grid_t.clone());
    let v = stn::sampler::grid_sample_var(x, &grid, st.options());
    let logits = model.classify(&v, &ctx);
    let loss = layers::cross_entropy(&logits, &[label]);
    let grads = loss.backward();
    let dgrid = grads
        .get(&grid)
        .cloned()
        .unwrap_or_else(|| Tensor::zeros(grid_t.shape()));
    let theta_v = theta.value().data().to_vec();
    let [h, w] = st.out_hw();
    let warp = Warp {
        name: format!("{} ({})", st.name(), st.transform().name()),
        colour,
        matrix: st.transform().matrix(&theta_v),
        theta: theta_v,
        out_hw: [h, w],
        grid: grid_t.data().to_vec(),
        dgrid: dgrid.data().to_vec(),
        // The first channel of V (the inputs have one).
        v: v.value().data()[..h * w].to_vec(),
    };
    (warp, logits.value().data().to_vec())
}

/// Runs the model on test image `k` of `images` and collects what to draw.
fn analyse(model: &Model, images: &Tensor, k: usize, index: usize, label: usize) -> Example {
    let side = model.side();
    let x = Var::constant(images.narrow(0, k, 1));
    let (warps, logits) = match model.transformer() {
        Some(st) => {
            let (w, logits) = warp_of(model, st, &x, label, draw::PALETTE[0]);
            (vec![w], logits)
        }
        None => {
            let logits = model.forward(&x, &Ctx::eval());
            (Vec::new(), logits.value().data().to_vec())
        }
    };
    let p = softmax(&logits);
    let pred = layers::predictions(&Tensor::from_vec(logits.clone(), &[1, logits.len()]))[0];
    Example {
        index,
        side,
        image: x.value().data().to_vec(),
        label,
        pred,
        prob: p[pred],
        loss: -p[label].max(f32::MIN_POSITIVE).ln(),
        warps,
    }
}

/// `x` with `decimals` decimals, without the "-0.000" of tiny negatives.
fn num(x: f32, decimals: usize) -> String {
    let t = format!("{x:.decimals$}");
    if t.starts_with('-') && t[1..].chars().all(|c| c == '0' || c == '.') {
        t[1..].to_string()
    } else {
        t
    }
}

/// The numbers of one example, for stdout.
fn report(ex: &Example) -> String {
    let mut s = format!(
        "test #{}: true {}, predicted {} (p {:.3}), loss {:.4}",
        ex.index, ex.label, ex.pred, ex.prob, ex.loss
    );
    for w in &ex.warps {
        let t: Vec<String> = w.theta.iter().map(|&v| num(v, 4)).collect();
        s += &format!("\n  {}: theta = [", w.name);
        for (i, chunk) in t.chunks(8).enumerate() {
            if i > 0 {
                // Align with the first value, after "  <name>: theta = [".
                s += &format!(",\n{}", " ".repeat(w.name.len() + 13));
            }
            s += &chunk.join(", ");
        }
        s += "]";
        if let Some(m) = w.matrix {
            for (r, row) in m.iter().enumerate() {
                let lead = if r == 0 { "matrix =" } else { "        " };
                s += &format!(
                    "\n    {lead} [{:>8} {:>8} {:>8} ]",
                    num(row[0], 4),
                    num(row[1], 4),
                    num(row[2], 4)
                );
            }
        }
    }
    s
}

/// The test images `a` asks for (`--start`, `--count`, `--pick`, `--pool`)
/// as a batch, with their test-set indices in drawing order.
///
/// # Errors
/// A range past the test set, or no image that fits the pick.
pub fn choose(
    a: &crate::VizArgs,
    model: &Model,
    variant: datasets::Variant,
) -> Result<(datasets::Batch, Vec<usize>), CliError> {
    let first = a.pick == Pick::First;
    let want = if first { Some(a.count) } else { a.pool };
    if want == Some(0) {
        return Err(msg("--pool must be at least 1"));
    }
    let end = match want {
        Some(n) => Some(
            a.start
                .checked_add(n)
                .ok_or_else(|| msg("--start + --count (or --pool) is too large"))?,
        ),
        None => None,
    };
    let (train, test) = run::load_splits(&run::data_dir(&a.data_dir), None, end)?;
    let end = end.unwrap_or(test.len());
    if test.len() < end || a.start >= test.len() {
        let (flag, n) = if first {
            ("--count", a.count)
        } else {
            ("--pool", end - a.start)
        };
        return Err(msg(format!(
            "--start {} {flag} {n} asks for test images up to #{}, but the test set has {}",
            a.start,
            end.max(a.start + 1) - 1,
            test.len()
        )));
    }
    let candidates: Vec<usize> = (a.start..end).collect();
    let indices: Vec<usize> = match a.pick {
        Pick::First => candidates,
        Pick::Random => viz_pick::random(candidates.len(), a.count, a.seed)
            .into_iter()
            .map(|k| candidates[k])
            .collect(),
        Pick::Misclassified | Pick::LowConfidence => {
            let all = test_samples(variant, &test, &train, &candidates);
            let probs = viz_pick::probabilities(model, &all.images);
            viz_pick::rank(a.pick, &probs, &all.labels, a.count)?
                .into_iter()
                .map(|k| candidates[k])
                .collect()
        }
    };
    Ok((test_samples(variant, &test, &train, &indices), indices))
}

/// `warpgrad viz`.
pub fn run(a: &crate::VizArgs) -> Result<(), CliError> {
    if a.count == 0 {
        return Err(msg("--count must be at least 1"));
    }
    if let Some(dir) = &a.timeline {
        return crate::timeline::run(a, dir);
    }
    let ck_path = a
        .checkpoint
        .as_ref()
        .ok_or_else(|| msg("--checkpoint (or --timeline) is needed"))?;
    let (cfg, model, ck) = run::load_checkpoint_model(ck_path)?;
    if crate::viz_parallel::handles(&model) {
        return crate::viz_parallel::run(a, &cfg, &model, &ck);
    }
    let variant = run::parse_variant(&cfg.dataset)?;
    let (batch, indices) = choose(a, &model, variant)?;
    std::fs::create_dir_all(&a.out)
        .map_err(|e| msg(format!("cannot create {}: {e}", a.out.display())))?;

    let title = format!(
        "{} on {} (checkpoint step {}, epoch {})",
        cfg.model, cfg.dataset, ck.step, ck.epoch
    );
    say(&format!("{title}\n"))?;
    if model.transformer().is_none() {
        say(&format!(
            "note: {} has no spatial transformer; the pictures show the inputs and predictions only\n",
            cfg.model
        ))?;
    }
    let mut examples = Vec::with_capacity(indices.len());
    for (k, &i) in indices.iter().enumerate() {
        let ex = analyse(&model, &batch.images, k, i, batch.labels[k] as usize);
        say(&format!("{}\n", report(&ex)))?;
        let pic = render(&ex, &title, &FULL);
        let path = a.out.join(format!("viz-{i:05}.png"));
        pic.save_png(&path)?;
        examples.push(ex);
    }
    let over = overview(&examples, &title);
    let path = a.out.join("overview.png");
    over.save_png(&path)?;
    say(&format!(
        "wrote one viz-<index>.png per image ({}, --pick {}) and overview.png to {}\n",
        examples.len(),
        pick_name(a.pick),
        a.out.display()
    ))?;
    let sure = examples.iter().all(|e| e.pred == e.label && e.prob >= SURE);
    if sure && model.transformer().is_some() {
        say(&format!(
            "note: every image drawn is classified right with p ≥ {SURE}: the loss is nearly flat there and the ∂L/∂grid arrows are magnified noise; --pick misclassified or --pick low-confidence shows digits where it has a slope\n"
        ))?;
    }
    Ok(())
}

/// A prediction this sure has a nearly flat loss (see [`Pick`]).
const SURE: f32 = 0.99;

/// The name of a pick as on the command line.
fn pick_name(p: Pick) -> &'static str {
    match p {
        Pick::First => "first",
        Pick::Misclassified => "misclassified",
        Pick::LowConfidence => "low-confidence",
        Pick::Random => "random",
    }
}

// ---------------------------------------------------------------- drawing

/// Sizes of one rendering.
struct Style {
    /// Target height of the image panels, in pixels.
    panel: usize,
    /// Text scale of the header and panel titles.
    big: usize,
    /// Draw the model line, the captions, the legend, θ and the matrix.
    footer: bool,
}

const FULL: Style = Style {
    panel: 252,
    big: 2,
    footer: true,
};
const COMPACT: Style = Style {
    panel: 150,
    big: 1,
    footer: false,
};

const MARGIN: usize = 12;
/// Background of the margin around the input (where sampling gives zeros).
const PAD_BG: Rgb = [48, 50, 60];

/// How the input is placed in a panel: image origin and pixel scale.
#[derive(Clone, Copy)]
struct Placement {
    /// Canvas position of the input's top-left corner.
    ox: f32,
    oy: f32,
    /// Canvas pixels per input pixel.
    scale: f32,
    /// Input side in pixels.
    side: usize,
}

impl Placement {
    /// Canvas position of a normalised grid point (align_corners=false:
    /// x_pix = ((x+1)·W − 1)/2, pixel centre at x_pix + 0.5 on the canvas).
    fn map(&self, gx: f32, gy: f32) -> (f32, f32) {
        let w = self.side as f32;
        (
            self.ox + (gx + 1.0) * w / 2.0 * self.scale,
            self.oy + (gy + 1.0) * w / 2.0 * self.scale,
        )
    }
}

/// Draws the input on a grey margin (a quarter of its side each way) in the
/// panel at (x, y); returns the placement and the panel rectangle.
fn input_panel(c: &mut Canvas, ex: &Example, x: i64, y: i64, panel: usize) -> (Placement, Rect) {
    let pad = ex.side / 4;
    let full = ex.side + 2 * pad;
    let s = (panel / full).max(1);
    let rect = Rect::new(x, y, (full * s) as i64, (full * s) as i64);
    c.fill_rect(rect, PAD_BG);
    let (ix, iy) = (x + (pad * s) as i64, y + (pad * s) as i64);
    c.blit_gray(ix, iy, &ex.image, ex.side, ex.side, s);
    c.rect(
        Rect::new(
            ix - 1,
            iy - 1,
            (ex.side * s) as i64 + 2,
            (ex.side * s) as i64 + 2,
        ),
        draw::GREY,
    );
    let place = Placement {
        ox: ix as f32,
        oy: iy as f32,
        scale: s as f32,
        side: ex.side,
    };
    (place, rect)
}

/// Grid lines every `step` rows and columns, the outline, and a dot at the
/// grid's first point (V's top-left pixel).
fn draw_grid(c: &mut Canvas, w: &Warp, place: &Placement, step: usize, dim: bool) {
    let [h, wd] = w.out_hw;
    let pt = |r: usize, col: usize| {
        let k = (r * wd + col) * 2;
        place.map(w.grid[k], w.grid[k + 1])
    };
    let lines = |n: usize| -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).step_by(step.max(1)).collect();
        if v.last() != Some(&(n - 1)) {
            v.push(n - 1);
        }
        v
    };
    let inner = if dim { 0.35 } else { 0.8 };
    for r in lines(h) {
        let outline = r == 0 || r == h - 1;
        let pts: Vec<(f32, f32)> = (0..wd).map(|col| pt(r, col)).collect();
        let (width, alpha) = if outline { (2.0, 1.0) } else { (1.0, inner) };
        c.polyline(&pts, width, w.colour, if dim { 0.5 * alpha } else { alpha });
    }
    for col in lines(wd) {
        let outline = col == 0 || col == wd - 1;
        let pts: Vec<(f32, f32)> = (0..h).map(|r| pt(r, col)).collect();
        let (width, alpha) = if outline { (2.0, 1.0) } else { (1.0, inner) };
        c.polyline(&pts, width, w.colour, if dim { 0.5 * alpha } else { alpha });
    }
    if !dim {
        let (x, y) = pt(0, 0);
        // A white dot ringed in the warp's colour, visible on the outline.
        let r = (place.scale * 0.7).max(3.0);
        c.disc(x, y, r + 1.5, w.colour, 1.0);
        c.disc(x, y, r, draw::WHITE, 1.0);
    }
}

/// Blocks of `b`×`b` grid points: their mean source point (canvas) and the
/// summed −∂L/∂(source point) in input pixels.
fn block_gradients(w: &Warp, place: &Placement, b: usize) -> Vec<((f32, f32), (f32, f32))> {
    let [h, wd] = w.out_hw;
    let side = place.side as f32;
    let mut out = Vec::new();
    for by in (0..h).step_by(b) {
        for bx in (0..wd).step_by(b) {
            let (mut sx, mut sy, mut gx, mut gy, mut n) = (0.0f32, 0.0f32, 0.0f32, 0.0f32, 0);
            for r in by..(by + b).min(h) {
                for col in bx..(bx + b).min(wd) {
                    let k = (r * wd + col) * 2;
                    let (px, py) = place.map(w.grid[k], w.grid[k + 1]);
                    sx += px;
                    sy += py;
                    // x_norm = (2·x_pix + 1)/W − 1, so ∂L/∂x_pix = ∂L/∂x_norm · 2/W.
                    gx += w.dgrid[k] * 2.0 / side;
                    gy += w.dgrid[k + 1] * 2.0 / side;
                    n += 1;
                }
            }
            let n = n as f32;
            out.push(((sx / n, sy / n), (-gx, -gy)));
        }
    }
    out
}

/// 1, 2 or 5 times a power of ten, at most `x` (for a readable scale).
fn nice_floor(x: f32) -> f32 {
    if !(x.is_finite() && x > 0.0) {
        return 1.0;
    }
    let p = 10f32.powf(x.log10().floor());
    let m = x / p;
    let f = if m >= 5.0 {
        5.0
    } else if m >= 2.0 {
        2.0
    } else {
        1.0
    };
    f * p
}

/// The scale as text: "500", "2e3", "0.05".
fn scale_text(k: f32) -> String {
    if (0.01..10000.0).contains(&k) {
        format!("{k}")
    } else {
        format!("{k:e}")
    }
}

/// Draws the arrows of every warp; returns the arrow scale used per warp
/// (None when the gradient is zero).
fn draw_arrows(c: &mut Canvas, ex: &Example, place: &Placement, block: usize) -> Vec<Option<f32>> {
    let mut scales = Vec::new();
    for w in &ex.warps {
        let k = arrow_scale(w, ex.side, block);
        if let Some(k) = k {
            for ((x, y), (gx, gy)) in block_gradients(w, place, block) {
                let (dx, dy) = (gx * k * place.scale, gy * k * place.scale);
                if dx.hypot(dy) < 1.5 {
                    continue;
                }
                let head = (place.scale * 1.2).clamp(4.0, 9.0);
                c.arrow(x, y, x + dx, y + dy, 2.0, head, w.colour, 1.0);
            }
        }
        scales.push(k);
    }
    scales
}

/// The arrow scale of a warp: the longest arrow spans 0.8 to 2 blocks of
/// the input (rounded down to 1, 2 or 5 × 10^n so it reads easily); `None`
/// when the gradient is zero.
fn arrow_scale(w: &Warp, side: usize, block: usize) -> Option<f32> {
    // The arrows' lengths do not depend on where the input is drawn.
    let place = Placement {
        ox: 0.0,
        oy: 0.0,
        scale: 1.0,
        side,
    };
    let longest = block_gradients(w, &place, block)
        .iter()
        .map(|(_, (gx, gy))| (gx * gx + gy * gy).sqrt())
        .fold(0.0f32, f32::max);
    if longest <= 0.0 || !longest.is_finite() {
        return None;
    }
    let target = 2.0 * block as f32 * side as f32 / w.out_hw[0] as f32;
    Some(nice_floor(target / longest))
}

/// From this arrow scale on the picture says the gradient is tiny (the
/// prediction is sure, the loss flat).
const FLAT_SCALE: f32 = 1000.0;

/// Grid line spacing and gradient block size for an output side.
fn grid_step(out_side: usize) -> usize {
    ((out_side as f32 / 7.0).round() as usize).max(1)
}

/// One example as a picture.
fn render(ex: &Example, title: &str, st: &Style) -> Canvas {
    let big = st.big;
    let m = MARGIN as i64;
    let line = |s: usize| (draw::LINE_H * s) as i64;
    // Measure the panels first to size the canvas.
    let pad = ex.side / 4;
    let in_px = ((st.panel / (ex.side + 2 * pad)).max(1)) * (ex.side + 2 * pad);
    let v_sizes: Vec<(usize, usize, usize)> = ex
        .warps
        .iter()
        .map(|w| {
            let s = (in_px / w.out_hw[0].max(w.out_hw[1])).max(1);
            (s, w.out_hw[1] * s, w.out_hw[0] * s)
        })
        .collect();
    let mut panels_w = in_px as i64;
    if !ex.warps.is_empty() {
        panels_w += v_sizes.iter().map(|v| v.1 as i64 + m).sum::<i64>() + m + in_px as i64;
    }
    let header = format!(
        "test #{}: true {}, predicted {} (p {:.2})",
        ex.index, ex.label, ex.pred, ex.prob
    );
    let footer = footer_lines(ex, st);
    let footer_w = footer
        .iter()
        .map(|(t, _)| draw::text_size(t, 1).0)
        .max()
        .unwrap_or(0);
    let width = (panels_w as usize)
        .max(draw::text_size(&header, big).0)
        .max(draw::text_size(title, 1).0)
        .max(footer_w)
        + 2 * MARGIN;
    let sub = if st.footer { line(1) } else { 0 };
    let panels_y = m + line(big) + sub + 4 + line(big);
    let caption_y = panels_y + in_px as i64 + 4;
    let captions = match (st.footer, ex.warps.is_empty()) {
        (false, false) => 0,
        (_, true) => 1,
        (true, false) => 2,
    };
    let footer_y = caption_y + captions * line(1) + 6;
    let height = footer_y + footer.len() as i64 * line(1) + m;
    let mut c = Canvas::new(width, height as usize, draw::BACKGROUND);

    // Header: the prediction, green if right, red if wrong.
    let ok = ex.pred == ex.label;
    c.text(m, m, &header, if ok { draw::GREEN } else { draw::RED }, big);
    if st.footer {
        c.text(m, m + line(big), title, draw::GREY, 1);
    }

    // Panel 1: input + grids.
    let title_y = panels_y - line(big);
    let mut x = m;
    let (place, rect) = input_panel(&mut c, ex, x, panels_y, st.panel);
    let step = ex.warps.first().map_or(1, |w| grid_step(w.out_hw[0]));
    if ex.warps.is_empty() {
        c.text(x, title_y, "input", draw::WHITE, big);
        c.text(
            x,
            caption_y,
            "no spatial transformer: nothing to warp",
            draw::GREY,
            1,
        );
        return finish(c, ex, &footer, footer_y);
    }
    c.text(x, title_y, "input + grid", draw::WHITE, big);
    c.set_clip(Some(rect));
    for w in &ex.warps {
        draw_grid(&mut c, w, &place, step, false);
    }
    c.set_clip(None);
    if st.footer {
        let cap = format!("U {0}×{0}; lines: every {step}th", ex.side);
        c.text(x, caption_y, &cap, draw::GREY, 1);
        let cap = "thick: outline; dot: V's top-left";
        c.text(x, caption_y + line(1), cap, draw::GREY, 1);
    }
    x += rect.w + m;

    // Panels 2..: each transformer's output V, framed in its colour.
    for (w, &(s, vw, vh)) in ex.warps.iter().zip(&v_sizes) {
        c.text(x, title_y, "output V", draw::WHITE, big);
        c.blit_gray(x, panels_y, &w.v, w.out_hw[1], w.out_hw[0], s);
        c.rect(
            Rect::new(x - 1, panels_y - 1, vw as i64 + 2, vh as i64 + 2),
            w.colour,
        );
        if st.footer {
            let cap = format!(
                "V {}×{} (what the classifier sees)",
                w.out_hw[0], w.out_hw[1]
            );
            c.text(x, caption_y, &cap, draw::GREY, 1);
        }
        x += vw as i64 + m;
    }

    // Last panel: −∂L/∂grid as arrows over the input.
    c.text(x, title_y, "−∂L/∂grid", draw::WHITE, big);
    let (place, rect) = input_panel(&mut c, ex, x, panels_y, st.panel);
    c.set_clip(Some(rect));
    for w in &ex.warps {
        draw_grid(&mut c, w, &place, step, true);
    }
    let scales = draw_arrows(&mut c, ex, &place, step);
    c.set_clip(None);
    let scale_note: Vec<String> = scales
        .iter()
        .map(|s| match s {
            Some(k) => format!("arrows ×{}", scale_text(*k)),
            None => "gradient is zero".to_string(),
        })
        .collect();
    if st.footer {
        c.text(x, caption_y, &scale_note.join(", "), draw::GREY, 1);
        let cap = format!("summed over {step}×{step} grid points");
        c.text(x, caption_y + line(1), &cap, draw::GREY, 1);
    } else {
        // The scale differs per image: keep it, small, in the corner.
        c.label(
            x + 2,
            panels_y + 2,
            &scale_note.join(", "),
            draw::GREY,
            PAD_BG,
            1,
        );
    }
    finish(c, ex, &footer, footer_y)
}

fn finish(mut c: Canvas, _ex: &Example, footer: &[(String, Rgb)], y: i64) -> Canvas {
    let m = MARGIN as i64;
    for (k, (t, col)) in footer.iter().enumerate() {
        c.text(m, y + (k * draw::LINE_H) as i64, t, *col, 1);
    }
    c
}

/// The legend and the numbers under the panels (full style only).
fn footer_lines(ex: &Example, st: &Style) -> Vec<(String, Rgb)> {
    if !st.footer || ex.warps.is_empty() {
        return Vec::new();
    }
    let mut v = vec![
        (
            "Grid: where each pixel of V is sampled from in U (bilinear; outside U reads 0)."
                .to_string(),
            draw::GREY,
        ),
        (
            "Arrows: −∂L/∂(sampling point) for the true label, in input pixels times the scale;"
                .to_string(),
            draw::GREY,
        ),
        (
            "moving the points that way lowers the loss.".to_string(),
            draw::GREY,
        ),
    ];
    let step = ex.warps.first().map_or(1, |w| grid_step(w.out_hw[0]));
    for w in &ex.warps {
        if let Some(k) = arrow_scale(w, ex.side, step).filter(|&k| k >= FLAT_SCALE) {
            v.push((
                format!(
                    "Arrows ×{}: p(true) = {:.5}, the loss is nearly flat here: magnified noise.",
                    scale_text(k),
                    (-ex.loss).exp()
                ),
                draw::YELLOW,
            ));
        }
    }
    for w in &ex.warps {
        let t: Vec<String> = w.theta.iter().map(|&x| num(x, 3)).collect();
        let shown = if t.len() > 12 {
            format!("{}, ... ({} values)", t[..12].join(", "), t.len())
        } else {
            t.join(", ")
        };
        v.push((format!("{}: θ = [{shown}]", w.name), w.colour));
        if let Some(mx) = w.matrix {
            for (r, row) in mx.iter().enumerate() {
                let lead = if r == 0 { "matrix" } else { "      " };
                v.push((
                    format!(
                        "  {lead} [{:>7} {:>7} {:>7} ]",
                        num(row[0], 3),
                        num(row[1], 3),
                        num(row[2], 3)
                    ),
                    w.colour,
                ));
            }
        }
    }
    v
}

/// Compact renderings of every example, two per row, under a title and a
/// legend.
fn overview(examples: &[Example], title: &str) -> Canvas {
    let pics: Vec<Canvas> = examples
        .iter()
        .map(|e| render(e, title, &COMPACT))
        .collect();
    let cols = if pics.len() > 1 { 2 } else { 1 };
    let cell_w = pics.iter().map(Canvas::width).max().unwrap_or(1);
    let cell_h = pics.iter().map(Canvas::height).max().unwrap_or(1);
    let head = [
        title.to_string(),
        "left: input + sampling grid (dot: V's top-left); middle: output V;".to_string(),
        "right: −∂L/∂grid as arrows (moving the grid that way lowers the loss), scale in the corner"
            .to_string(),
    ];
    let head_h = head.len() * draw::LINE_H + MARGIN;
    let rows = pics.len().div_ceil(cols);
    let width = (cols * cell_w).max(
        head.iter()
            .map(|h| draw::text_size(h, 1).0)
            .max()
            .unwrap_or(0)
            + 2 * MARGIN,
    );
    let mut c = Canvas::new(width, head_h + rows * cell_h, draw::BACKGROUND);
    for (k, h) in head.iter().enumerate() {
        c.text(
            MARGIN as i64,
            (MARGIN / 2 + k * draw::LINE_H) as i64,
            h,
            draw::WHITE,
            1,
        );
    }
    for (k, p) in pics.iter().enumerate() {
        let x = (k % cols) * cell_w;
        let y = head_h + (k / cols) * cell_h;
        c.blit(p, x as i64, y as i64);
        // A rule between the rows of examples.
        let top = y as f32 + 0.5;
        c.line(0.0, top, width as f32, top, draw::GREY, 0.4);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_floor_picks_1_2_5() {
        assert_eq!(nice_floor(7.3), 5.0);
        assert_eq!(nice_floor(2.0), 2.0);
        assert_eq!(nice_floor(1999.0), 1000.0);
        assert!((nice_floor(0.031) - 0.02).abs() < 1e-7);
        assert_eq!(nice_floor(0.0), 1.0);
        assert_eq!(nice_floor(f32::NAN), 1.0);
    }

    #[test]
    fn placement_maps_corners_and_centres() {
        let p = Placement {
            ox: 10.0,
            oy: 20.0,
            scale: 4.0,
            side: 28,
        };
        // −1 and +1 are the outer edges of the corner pixels.
        assert_eq!(p.map(-1.0, -1.0), (10.0, 20.0));
        assert_eq!(p.map(1.0, 1.0), (10.0 + 112.0, 20.0 + 112.0));
        // Pixel 0's centre, x_norm = 1/W − 1, lands at the centre of its block.
        let (x, _) = p.map(1.0 / 28.0 - 1.0, 0.0);
        assert!((x - (10.0 + 2.0)).abs() < 1e-4);
    }

    #[test]
    fn block_gradients_sum_and_convert_to_pixels() {
        // 2×2 grid, one block: the arrow is −(sum of gradients)·2/W.
        let w = Warp {
            name: "t".into(),
            colour: draw::WHITE,
            theta: vec![],
            matrix: None,
            out_hw: [2, 2],
            grid: vec![-0.5, -0.5, 0.5, -0.5, -0.5, 0.5, 0.5, 0.5],
            dgrid: vec![1.0, 0.0, 1.0, 0.0, 1.0, 2.0, 1.0, 2.0],
            v: vec![0.0; 4],
        };
        let p = Placement {
            ox: 0.0,
            oy: 0.0,
            scale: 1.0,
            side: 10,
        };
        let b = block_gradients(&w, &p, 2);
        assert_eq!(b.len(), 1);
        let ((x, y), (gx, gy)) = b[0];
        assert_eq!((x, y), (5.0, 5.0));
        assert!((gx + 4.0 * 0.2).abs() < 1e-6 && (gy + 4.0 * 0.2).abs() < 1e-6);
    }

    #[test]
    fn num_drops_the_sign_of_zero() {
        assert_eq!(num(-0.00001, 3), "0.000");
        assert_eq!(num(-0.0, 2), "0.00");
        assert_eq!(num(-0.5, 1), "-0.5");
        assert_eq!(num(1.23456, 4), "1.2346");
    }

    #[test]
    fn grid_lines_follow_curved_grids() {
        // A 3×3 grid whose middle row bows down (as a TPS can): the drawn
        // row must pass through the bowed point, not the straight chord.
        let mut grid = Vec::new();
        for r in 0..3 {
            for c in 0..3 {
                let x = -0.5 + 0.5 * c as f32;
                let bow = if r == 1 && c == 1 { 0.4 } else { 0.0 };
                grid.extend([x, -0.5 + 0.5 * r as f32 + bow]);
            }
        }
        let w = Warp {
            name: "t".into(),
            colour: [0, 200, 255],
            theta: vec![],
            matrix: None,
            out_hw: [3, 3],
            grid,
            dgrid: vec![0.0; 18],
            v: vec![0.0; 9],
        };
        let place = Placement {
            ox: 0.0,
            oy: 0.0,
            scale: 10.0,
            side: 10,
        };
        let mut c = Canvas::new(100, 100, draw::BLACK);
        draw_grid(&mut c, &w, &place, 1, true);
        // Grid (0, 0.4) → canvas (50, 70); the chord of row 1 is at y = 50.
        assert_ne!(c.get(50, 70), draw::BLACK, "bowed point drawn");
        assert_ne!(c.get(40, 62), draw::BLACK, "segment towards it drawn");
        // The middle column still passes (50, 50); check off-grid emptiness.
        assert_eq!(c.get(35, 50), draw::BLACK, "no straight chord");
    }

    #[test]
    fn a_flat_loss_is_called_out_under_the_picture() {
        // 4×4 grid on an 8-pixel input, gradient `g` everywhere.
        let warp = |g: f32| Warp {
            name: "t".into(),
            colour: draw::WHITE,
            theta: vec![],
            matrix: None,
            out_hw: [4, 4],
            grid: (0..32)
                .map(|k| -0.75 + 0.5 * ((k / 2) % 4) as f32)
                .collect(),
            dgrid: vec![g; 32],
            v: vec![0.0; 16],
        };
        let ex = |g: f32, loss: f32| Example {
            index: 0,
            side: 8,
            image: vec![0.0; 64],
            label: 1,
            pred: 1,
            prob: (-loss).exp(),
            loss,
            warps: vec![warp(g)],
        };
        let flat = |e: &Example| {
            footer_lines(e, &FULL)
                .iter()
                .any(|(t, _)| t.contains("nearly flat"))
        };
        // A sure prediction with a tiny gradient: scale ≥ 1000, said in words.
        let sure = ex(1e-6, 1e-5);
        assert!(arrow_scale(&sure.warps[0], 8, 1).unwrap() >= FLAT_SCALE);
        assert!(flat(&sure));
        // A real slope: no note.
        let unsure = ex(0.05, 1.5);
        assert!(arrow_scale(&unsure.warps[0], 8, 1).unwrap() < FLAT_SCALE);
        assert!(!flat(&unsure));
        assert_eq!(arrow_scale(&warp(0.0), 8, 1), None);
    }

    #[test]
    fn softmax_sums_to_one() {
        let p = softmax(&[1.0, 2.0, 3.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[2] > p[1] && p[1] > p[0]);
    }

    #[test]
    fn gradient_flows_to_the_grid_of_an_st_model() {
        let model = stn::build_model("st-cnn-aff", 28, 3).unwrap();
        let mut img = vec![0.0f32; 28 * 28];
        for y in 8..20 {
            for x in 12..16 {
                img[y * 28 + x] = 1.0;
            }
        }
        let images = Tensor::from_vec(img, &[1, 1, 28, 28]);
        let ex = analyse(&model, &images, 0, 0, 1);
        let w = &ex.warps[0];
        assert_eq!(w.out_hw, [28, 28]);
        assert_eq!(w.theta, vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0], "identity init");
        assert!(w.matrix.is_some());
        assert!(w.dgrid.iter().any(|&g| g != 0.0), "∂L/∂grid is not zero");
        // Identity warp: V equals the input.
        let diff =
            w.v.iter()
                .zip(&ex.image)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
        assert!(diff < 1e-5, "V differs from U by {diff}");
        // The loss and prediction agree with the plain forward pass.
        let logits = model.forward(&Var::constant(images.clone()), &Ctx::eval());
        let loss = layers::cross_entropy(&logits, &[1]).value().item();
        assert!((loss - ex.loss).abs() < 1e-4, "{loss} vs {}", ex.loss);
        assert_eq!(ex.pred, layers::predictions(logits.value())[0]);
        let pic = render(&ex, "t", &FULL);
        assert!(pic.width() > 3 * 200 && pic.height() > 252);
    }
}
