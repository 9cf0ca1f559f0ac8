//! `warpgrad viz` for models on several input channels or with several
//! transformers in parallel (MNIST addition, `2st-*`): for each test pair,
//! `viz-<i>.png` shows
//! 1. every input channel (one digit each) with every transformer's
//!    sampling grid over it, each transformer in its own colour (every k-th
//!    row and column of T_θ(G), the outline thick, a dot at V's top-left
//!    point), so a reader sees which digit each transformer took;
//! 2. each transformer's output V, every channel, framed in its colour,
//!    with the share of each channel's ink that V holds;
//!
//! and θ of every transformer below. `overview.png` puts them all together.
//! `viz.rs` hands these models over (its pictures show one channel).

use crate::config::TrainConfig;
use crate::data_cmd::{say, test_samples};
use crate::draw::{self, Canvas, Rect, Rgb};
use crate::error::{msg, CliError};
use crate::run;
use datasets::distort::Drawn;
use engine::{Tensor, Var};
use layers::{Checkpoint, Ctx};
use std::fmt::Write as _;
use stn::Model;

/// Colours of the channels of a composite: channel 1 orange, channel 2 blue.
pub const CHANNEL_COLOURS: [Rgb; 2] = [[255, 140, 0], [0, 170, 255]];

/// Draws a C×`side`×`side` image (C ≥ 2, values in [0, 1]) in colour: each
/// channel adds its colour of [`CHANNEL_COLOURS`] times its value (channels
/// past the second are ignored); every pixel is a `scale`×`scale` block.
pub fn blit_channels(
    c: &mut Canvas,
    x0: i64,
    y0: i64,
    img: &[f32],
    channels: usize,
    side: usize,
    scale: usize,
) {
    let plane = side * side;
    let s = scale as i64;
    for k in 0..plane {
        let mut rgb = [0.0f32; 3];
        for (ch, col) in CHANNEL_COLOURS.iter().enumerate().take(channels) {
            let v = img[ch * plane + k];
            let v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
            for (o, &cc) in rgb.iter_mut().zip(col) {
                *o += v * cc as f32;
            }
        }
        let px = rgb.map(|v| v.min(255.0).round() as u8);
        let (i, j) = ((k % side) as i64, (k / side) as i64);
        c.fill_rect(Rect::new(x0 + i * s, y0 + j * s, s, s), px);
    }
}

/// True for the models this file draws (several channels or transformers).
pub fn handles(model: &Model) -> bool {
    model.input().channels > 1 || model.transformers().len() > 1
}

/// One transformer's warp of one input.
struct Warp {
    name: String,
    colour: Rgb,
    theta: Vec<f32>,
    out_hw: [usize; 2],
    /// H'×W'×2, normalised, x first.
    grid: Vec<f32>,
    /// The input channels V holds, in order (all, or the one the
    /// transformer samples).
    channels: Vec<usize>,
    /// channels×H'×W'.
    v: Vec<f32>,
    /// Per channel of V: its ink as a share of the input channel's ink, both
    /// in input pixel units (V's pixels cover the input at the grid's density).
    share: Vec<f32>,
}

/// One test input and what the model made of it.
struct Example {
    index: usize,
    channels: usize,
    side: usize,
    /// C×S×S.
    image: Vec<f32>,
    /// The digit in each channel, when the data set says (addition).
    digits: Vec<u8>,
    label: usize,
    pred: usize,
    prob: f32,
    warps: Vec<Warp>,
}

/// Area of the input (in input pixels²) one output pixel of the grid covers,
/// averaged over the grid: |det J| of the map output → input, from finite
/// differences of neighbouring grid points.
fn mean_cell_area(grid: &[f32], [h, w]: [usize; 2], side: usize) -> f32 {
    let px = side as f32 / 2.0; // normalised units → input pixels
    let at = |r: usize, c: usize| {
        let k = (r * w + c) * 2;
        (grid[k] * px, grid[k + 1] * px)
    };
    let (mut sum, mut n) = (0.0f32, 0usize);
    for r in 0..h.saturating_sub(1) {
        for c in 0..w.saturating_sub(1) {
            let (x0, y0) = at(r, c);
            let (x1, y1) = at(r, c + 1);
            let (x2, y2) = at(r + 1, c);
            sum += ((x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)).abs();
            n += 1;
        }
    }
    if n == 0 {
        1.0
    } else {
        sum / n as f32
    }
}

fn analyse(model: &Model, images: &Tensor, k: usize, index: usize, label: usize) -> Example {
    let spec = model.input();
    let (c, side) = (spec.channels, spec.side);
    let x = Var::constant(images.narrow(0, k, 1));
    let image = x.value().data().to_vec();
    let (logits, parts) = model.forward_branches(&x, &Ctx::eval());
    let warps = model
        .transformers()
        .iter()
        .zip(&parts)
        .enumerate()
        .map(|(b, (st, (theta, v)))| {
            let grid = st.grid(theta).value().data().to_vec();
            let out_hw = st.out_hw();
            let v = v.value().data().to_vec();
            let area = mean_cell_area(&grid, out_hw, side);
            let plane = out_hw[0] * out_hw[1];
            let channels: Vec<usize> = match st.channel() {
                Some(ch) => vec![ch],
                None => (0..c).collect(),
            };
            let share = channels
                .iter()
                .enumerate()
                .map(|(j, &ch)| {
                    let ink_in: f32 = image[ch * side * side..(ch + 1) * side * side].iter().sum();
                    let ink_v: f32 = v[j * plane..(j + 1) * plane].iter().sum();
                    if ink_in > 0.0 {
                        ink_v * area / ink_in
                    } else {
                        0.0
                    }
                })
                .collect();
            Warp {
                name: format!("{} ({})", st.name(), st.transform().name()),
                colour: draw::PALETTE[b % draw::PALETTE.len()],
                theta: theta.value().data().to_vec(),
                out_hw,
                grid,
                channels,
                v,
                share,
            }
        })
        .collect();
    let row = logits.value().data().to_vec();
    let pred = layers::predictions(logits.value())[0];
    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let z: f32 = row.iter().map(|&l| (l - m).exp()).sum();
    Example {
        index,
        channels: c,
        side,
        image,
        digits: Vec::new(),
        label,
        pred,
        prob: (row[pred] - m).exp() / z,
        warps,
    }
}

/// `warpgrad viz` for [`handles`]'s models (called by `viz::run`).
pub fn run(
    a: &crate::VizArgs,
    cfg: &TrainConfig,
    model: &Model,
    ck: &Checkpoint,
) -> Result<(), CliError> {
    let variant = run::parse_variant(&cfg.dataset)?;
    let end = a
        .start
        .checked_add(a.count)
        .ok_or_else(|| msg("--start + --count is too large"))?;
    // The whole test split: addition pairs each test digit with another
    // drawn from the split, so a cut split would pair them differently.
    let (train, test) = run::load_splits(&run::data_dir(&a.data_dir), None, None)?;
    if test.len() < end {
        return Err(msg(format!(
            "--start {} --count {} asks for test images up to #{}, but the test set has {}",
            a.start,
            a.count,
            end - 1,
            test.len()
        )));
    }
    std::fs::create_dir_all(&a.out)
        .map_err(|e| msg(format!("cannot create {}: {e}", a.out.display())))?;
    let indices: Vec<usize> = (a.start..end).collect();
    let batch = test_samples(variant, &test, &train, &indices);
    let title = format!(
        "{} on {} (checkpoint step {}, epoch {})",
        cfg.model, cfg.dataset, ck.step, ck.epoch
    );
    say(&format!("{title}\n"))?;
    let mut pics = Vec::new();
    for (k, &i) in indices.iter().enumerate() {
        let mut ex = analyse(model, &batch.images, k, i, batch.labels[k] as usize);
        if let Some(Drawn::Addition(d)) = batch.drawn.get(k) {
            ex.digits = vec![test.label(i), test.label(d.partner)];
        }
        say(&format!("{}\n", report(&ex)))?;
        let pic = render(&ex, &title);
        pic.save_png(&a.out.join(format!("viz-{i:05}.png")))?;
        pics.push(pic);
    }
    overview(&pics, &title).save_png(&a.out.join("overview.png"))?;
    say(&format!(
        "wrote one viz-<index>.png per test input ({}) and overview.png to {}\n",
        pics.len(),
        a.out.display()
    ))
}

/// "3 + 5 = 8" for addition, else the label.
fn truth(ex: &Example) -> String {
    if ex.digits.len() == 2 {
        format!("{} + {} = {}", ex.digits[0], ex.digits[1], ex.label)
    } else {
        ex.label.to_string()
    }
}

/// The numbers of one example, for stdout.
fn report(ex: &Example) -> String {
    let mut s = format!(
        "test #{}: {}, predicted {} (p {:.3})",
        ex.index,
        truth(ex),
        ex.pred,
        ex.prob
    );
    for w in &ex.warps {
        let t: Vec<String> = w.theta.iter().map(|v| format!("{v:.4}")).collect();
        let sh: Vec<String> = w
            .share
            .iter()
            .zip(&w.channels)
            .map(|(v, c)| format!("channel {} {:.0}%", c + 1, 100.0 * v))
            .collect();
        let _ = write!(
            s,
            "\n  {}: theta = [{}]; ink kept: {}",
            w.name,
            t.join(", "),
            sh.join(", ")
        );
    }
    s
}

const MARGIN: i64 = 12;
/// Input panel: the input on a grey margin of a quarter of its side.
const PANEL: usize = 240;
const PAD_BG: Rgb = [48, 50, 60];

/// Draws every k-th row and column of a grid (outline thick) and a dot at
/// its first point, over an input placed at (ox, oy) with `scale` canvas
/// pixels per input pixel.
fn draw_grid(c: &mut Canvas, w: &Warp, ox: f32, oy: f32, scale: f32, side: usize) {
    let [h, wd] = w.out_hw;
    let half = side as f32 / 2.0;
    let pt = |r: usize, col: usize| {
        let k = (r * wd + col) * 2;
        (
            ox + (w.grid[k] + 1.0) * half * scale,
            oy + (w.grid[k + 1] + 1.0) * half * scale,
        )
    };
    let step = ((h as f32 / 7.0).round() as usize).max(1);
    let lines = |n: usize| {
        let mut v: Vec<usize> = (0..n).step_by(step).collect();
        if v.last() != Some(&(n - 1)) {
            v.push(n - 1);
        }
        v
    };
    for r in lines(h) {
        let edge = r == 0 || r == h - 1;
        let pts: Vec<_> = (0..wd).map(|col| pt(r, col)).collect();
        c.polyline(
            &pts,
            if edge { 2.0 } else { 1.0 },
            w.colour,
            if edge { 1.0 } else { 0.7 },
        );
    }
    for col in lines(wd) {
        let edge = col == 0 || col == wd - 1;
        let pts: Vec<_> = (0..h).map(|r| pt(r, col)).collect();
        c.polyline(
            &pts,
            if edge { 2.0 } else { 1.0 },
            w.colour,
            if edge { 1.0 } else { 0.7 },
        );
    }
    let (x, y) = pt(0, 0);
    c.disc(x, y, 4.5, w.colour, 1.0);
    c.disc(x, y, 3.0, draw::WHITE, 1.0);
}

/// One example as a picture.
fn render(ex: &Example, title: &str) -> Canvas {
    let line = draw::LINE_H as i64;
    let pad = ex.side / 4;
    let full = ex.side + 2 * pad;
    let s = (PANEL / full).max(1);
    let in_px = (full * s) as i64;
    // Each transformer's V: its channels stacked, together about as tall as
    // an input panel (at least 2 canvas pixels per pixel of V).
    let v_tiles: Vec<(usize, i64, i64)> = ex
        .warps
        .iter()
        .map(|w| {
            let per = in_px as f32 / (ex.channels.max(1) * w.out_hw[0].max(1)) as f32;
            let vs = (per.round() as usize).max(2);
            (vs, (w.out_hw[1] * vs) as i64, (w.out_hw[0] * vs) as i64)
        })
        .collect();
    let panels_h = v_tiles
        .iter()
        .map(|t| t.2 * ex.channels as i64)
        .fold(in_px, i64::max);
    let panels_w =
        ex.channels as i64 * (in_px + MARGIN) + v_tiles.iter().map(|t| t.1 + MARGIN).sum::<i64>();
    let header = format!(
        "test #{}: {}, predicted {} (p {:.2})",
        ex.index,
        truth(ex),
        ex.pred,
        ex.prob
    );
    let mut footer: Vec<(String, Rgb)> = vec![(
        "Grids: where each transformer samples its output from (the same grid on every channel)."
            .to_string(),
        draw::GREY,
    )];
    for w in &ex.warps {
        let t: Vec<String> = w.theta.iter().take(12).map(|v| format!("{v:.3}")).collect();
        let more = if w.theta.len() > 12 { ", ..." } else { "" };
        let sh: Vec<String> = w
            .share
            .iter()
            .zip(&w.channels)
            .map(|(v, c)| format!("ch{} {:.0}%", c + 1, 100.0 * v))
            .collect();
        footer.push((
            format!(
                "{}: θ = [{}{more}]; ink kept {}",
                w.name,
                t.join(", "),
                sh.join(", ")
            ),
            w.colour,
        ));
    }
    let text_w = footer
        .iter()
        .map(|(t, _)| draw::text_size(t, 1).0)
        .chain([draw::text_size(&header, 2).0, draw::text_size(title, 1).0])
        .max()
        .unwrap_or(0) as i64;
    let width = panels_w.max(text_w) + 2 * MARGIN;
    let panels_y = MARGIN + 2 * line + line + 4 + line;
    let footer_y = panels_y + panels_h + line;
    let height = footer_y + footer.len() as i64 * line + MARGIN;
    let mut c = Canvas::new(width as usize, height as usize, draw::BACKGROUND);
    let ok = ex.pred == ex.label;
    c.text(
        MARGIN,
        MARGIN,
        &header,
        if ok { draw::GREEN } else { draw::RED },
        2,
    );
    c.text(MARGIN, MARGIN + 2 * line, title, draw::GREY, 1);
    let title_y = panels_y - line - 2;
    let plane = ex.side * ex.side;
    let mut x = MARGIN;
    for ch in 0..ex.channels {
        let name = match ex.digits.get(ch) {
            Some(d) => format!("channel {} (digit {d}) + grids", ch + 1),
            None => format!("channel {} + grids", ch + 1),
        };
        c.text(x, title_y, &name, draw::WHITE, 1);
        let rect = Rect::new(x, panels_y, in_px, in_px);
        c.fill_rect(rect, PAD_BG);
        let (ix, iy) = (x + (pad * s) as i64, panels_y + (pad * s) as i64);
        let img = &ex.image[ch * plane..(ch + 1) * plane];
        c.blit_gray(ix, iy, img, ex.side, ex.side, s);
        c.set_clip(Some(rect));
        for w in &ex.warps {
            draw_grid(&mut c, w, ix as f32, iy as f32, s as f32, ex.side);
        }
        c.set_clip(None);
        x += in_px + MARGIN;
    }
    for (w, &(vs, vw, vh)) in ex.warps.iter().zip(&v_tiles) {
        // The name without the transform (in the footer), to fit the tile.
        let short = w.name.split(' ').next().unwrap_or_default();
        c.text(x, title_y, &format!("V of {short}"), w.colour, 1);
        let vp = w.out_hw[0] * w.out_hw[1];
        for (j, &ch) in w.channels.iter().enumerate() {
            let y = panels_y + ch as i64 * vh;
            c.blit_gray(
                x,
                y,
                &w.v[j * vp..(j + 1) * vp],
                w.out_hw[1],
                w.out_hw[0],
                vs,
            );
            c.rect(Rect::new(x - 1, y - 1, vw + 2, vh + 2), w.colour);
            c.label(
                x + 2,
                y + 2,
                &format!("ch{}", ch + 1),
                draw::GREY,
                PAD_BG,
                1,
            );
        }
        x += vw + MARGIN;
    }
    for (k, (t, col)) in footer.iter().enumerate() {
        c.text(MARGIN, footer_y + k as i64 * line, t, *col, 1);
    }
    c
}

/// The pictures one under the other, under the title.
fn overview(pics: &[Canvas], title: &str) -> Canvas {
    let head = (draw::LINE_H + 2 * MARGIN as usize) as i64;
    let width = pics.iter().map(Canvas::width).max().unwrap_or(1);
    let height = head as usize + pics.iter().map(Canvas::height).sum::<usize>();
    let mut c = Canvas::new(width, height, draw::BACKGROUND);
    c.text(MARGIN, MARGIN, title, draw::WHITE, 1);
    let mut y = head;
    for p in pics {
        c.blit(p, 0, y);
        c.line(
            0.0,
            y as f32 + 0.5,
            width as f32,
            y as f32 + 0.5,
            draw::GREY,
            0.4,
        );
        y += p.height() as i64;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_grid_covers_one_input_pixel_per_output_pixel() {
        // The identity grid of a 6×6 output over a 6×6 input (align_corners=false).
        let theta = Tensor::from_vec(vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0], &[1, 2, 3]);
        let g = stn::affine_grid(&theta, [1, 1, 6, 6], false);
        assert!((mean_cell_area(g.data(), [6, 6], 6) - 1.0).abs() < 1e-5);
        // A 12×12 output of the same region: a quarter pixel each.
        let g = stn::affine_grid(&theta, [1, 1, 12, 12], false);
        assert!((mean_cell_area(g.data(), [12, 12], 6) - 0.25).abs() < 1e-5);
    }

    #[test]
    fn two_transformer_pictures_draw_both_grids_in_their_colours() {
        for (name, channels) in [
            ("2st-fcn-aff", [vec![0, 1], vec![0, 1]]),
            ("2stc-fcn-aff", [vec![0], vec![1]]),
        ] {
            let model = stn::build_model_for(
                name,
                stn::InputSpec {
                    channels: 2,
                    side: 42,
                    classes: 19,
                },
                3,
            )
            .unwrap();
            assert!(handles(&model));
            let img = Tensor::uniform(&[1, 2, 42, 42], 0.0, 1.0, &mut engine::rng::seeded(2));
            let mut ex = analyse(&model, &img, 0, 7, 12);
            ex.digits = vec![5, 7];
            assert_eq!(ex.warps.len(), 2);
            for (w, ch) in ex.warps.iter().zip(&channels) {
                assert_eq!(&w.channels, ch, "{name}: {}", w.name);
                assert_eq!(w.v.len(), ch.len() * 28 * 28);
                // Identity at initialisation: V holds all of each channel's ink.
                for s in &w.share {
                    assert!((s - 1.0).abs() < 0.05, "{name}: {s}");
                }
            }
            assert!(report(&ex).contains("5 + 7 = 12"));
            let pic = render(&ex, "t");
            let has = |col: Rgb| {
                (0..pic.height()).any(|y| (0..pic.width()).any(|x| pic.get(x, y) == col))
            };
            for w in &ex.warps {
                assert!(has(w.colour), "{name}: {} is drawn", w.name);
            }
            assert_ne!(ex.warps[0].colour, ex.warps[1].colour);
        }
        assert!(!handles(&stn::build_model("st-cnn-aff", 42, 3).unwrap()));
    }
}
