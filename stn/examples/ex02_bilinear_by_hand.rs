//! Example 2: bilinear sampling by hand (eq. 5) and its gradients (eq. 6
//! for ∂V/∂U, eq. 7 for ∂V/∂p), next to the sampler's page
//! (`stn::sampler::bilinear`) and the engine's `grid_sample`, at three
//! points of a non-linear 4×4 image: an ordinary one, one on a pixel column
//! (a kink of V, where the paper's printed sign rule goes wrong) and one
//! outside the image (no gradient at all). See docs/gradients.md, section 2.
//!
//! Run with `cargo run -p stn --example ex02_bilinear_by_hand`; `cargo test`
//! runs it too and fails if the hand computation and the engine disagree.

use engine::Tensor;
use stn::sampler::bilinear;
use stn::{grid_sample, grid_sample_backward, Mode, Padding, SampleOptions};

const H: usize = 4;
const W: usize = 4;

/// The image: U[n][m] = m² + 2n² + n·m (row n = y, column m = x), curved
/// along both axes so that a slope depends on where it is taken.
fn image() -> Vec<f32> {
    (0..H * W)
        .map(|i| {
            let (n, m) = ((i / W) as f32, (i % W) as f32);
            m * m + 2.0 * n * n + n * m
        })
        .collect()
}

/// The bilinear kernel of eq. (5).
fn k(d: f32) -> f32 {
    (1.0 - d.abs()).max(0.0)
}

/// dk(p − m)/dp as the code takes it: the neighbours of p are ⌊p⌋ (−1) and
/// ⌊p⌋ + 1 (+1), also when p is an integer (the right derivative).
fn dk_code(m: f32, p: f32) -> f32 {
    if m == p.floor() {
        -1.0
    } else if m == p.floor() + 1.0 {
        1.0
    } else {
        0.0
    }
}

/// dk(p − m)/dp as eq. (7) prints it: 0 if |m − p| ≥ 1, +1 if m ≥ p, −1 if m < p.
fn dk_printed(m: f32, p: f32) -> f32 {
    if (m - p).abs() >= 1.0 {
        0.0
    } else if m >= p {
        1.0
    } else {
        -1.0
    }
}

/// By hand, eqs. (5)–(7) summed over every pixel: (V, ∂V/∂p_x, ∂V/∂p_y,
/// ∂V/∂p_x with the printed rule). Pixels outside the image are 0 (zero
/// padding), so the sums run over the image only.
fn by_hand(u: &[f32], px: f32, py: f32) -> (f32, f32, f32, f32) {
    let (mut v, mut dx, mut dy, mut dx_printed) = (0.0, 0.0, 0.0, 0.0);
    for n in 0..H {
        for m in 0..W {
            let (mf, nf, unm) = (m as f32, n as f32, u[n * W + m]);
            v += unm * k(px - mf) * k(py - nf);
            dx += unm * k(py - nf) * dk_code(mf, px);
            dy += unm * k(px - mf) * dk_code(nf, py);
            dx_printed += unm * k(py - nf) * dk_printed(mf, px);
        }
    }
    (v, dx, dy, dx_printed)
}

fn main() {
    let u = image();
    let input = Tensor::from_vec(u.clone(), &[1, 1, H, W]);
    // The models' convention, align_corners = false: p = ((x + 1)·W − 1)/2,
    // so x = (2p + 1)/W − 1, and dp/dx = W/2 = 2 (H/2 = 2 for y).
    let opts = SampleOptions::new(Mode::Bilinear, Padding::Zeros);
    let to_grid = |p: f32, size: usize| (2.0 * p + 1.0) / size as f32 - 1.0;
    let (sx, sy) = (W as f32 / 2.0, H as f32 / 2.0);

    println!("U[n][m] = m² + 2n² + n·m:");
    for row in u.chunks(W) {
        println!("   {row:?}");
    }
    println!("align_corners = false: the engine's ∂V/∂x_s is per grid unit,");
    println!("∂V/∂p_x (per pixel) times dp_x/dx_s = W/2 = {sx} (and H/2 = {sy} for y).\n");

    let points = [
        ("an ordinary point", 1.3f32, 2.6f32),
        ("on column 2 (a kink)", 2.0, 0.5),
        ("left of the image", -1.5, 1.2),
    ];
    for (what, px, py) in points {
        let (x, y) = (to_grid(px, W), to_grid(py, H));
        let (v, dx, dy, dx_printed) = by_hand(&u, px, py);

        // The page: the same point, one function per step.
        let (ax, ay) = (bilinear::axis(x, W, opts), bilinear::axis(y, H, opts));
        let v_page = bilinear::sample(&u, W, &ax, &ay);
        let (dx_page, dy_page) = bilinear::gradient(&u, W, &ax, &ay);

        // The engine, on tensors: V and the raw ∂V/∂(x_s, y_s).
        let grid = Tensor::from_vec(vec![x, y], &[1, 1, 1, 2]);
        let v_engine = grid_sample(&input, &grid, opts).data()[0];
        let gout = Tensor::ones(&[1, 1, 1, 1]);
        let (du, dgrid) = grid_sample_backward(&input, &grid, &gout, opts);
        let (gx, gy) = (dgrid.data()[0], dgrid.data()[1]);

        println!("{what}: (p_x, p_y) = ({px}, {py}) pixels, (x_s, y_s) = ({x}, {y})");
        println!("                 by hand       page     engine");
        println!("V              {v:>9.4}  {v_page:>9.4}  {v_engine:>9.4}");
        println!(
            "∂V/∂p_x        {dx:>9.4}  {dx_page:>9.4}  {:>9.4}   (engine raw ∂V/∂x_s = {gx:.4}, / {sx})",
            gx / sx
        );
        println!(
            "∂V/∂p_y        {dy:>9.4}  {dy_page:>9.4}  {:>9.4}   (engine raw ∂V/∂y_s = {gy:.4}, / {sy})",
            gy / sy
        );
        let touched: Vec<String> = du
            .data()
            .iter()
            .enumerate()
            .filter(|(_, &d)| d != 0.0)
            .map(|(i, d)| format!("U[{}][{}]: {d:.2}", i / W, i % W))
            .collect();
        if touched.is_empty() {
            println!("∂V/∂U (eq. 6)  0 everywhere");
        } else {
            println!("∂V/∂U (eq. 6)  {}", touched.join(", "));
        }
        if dx_printed != dx {
            // The slope of the cell to the left, for comparison.
            let left: f32 = (0..H)
                .map(|n| k(py - n as f32) * (u[n * W + px as usize] - u[n * W + px as usize - 1]))
                .sum();
            println!("  a kink: the code (and PyTorch) takes the right derivative, {dx:.4};");
            println!(
                "  the left one is {left:.4}; eq. (7) as printed gives {dx_printed:.4}, neither:"
            );
            println!("  at p_x = {px} its sign rule keeps only the term m = {px}.");
        }
        if v == 0.0 && dx == 0.0 && dy == 0.0 {
            println!("  no neighbour inside the image: V = 0 and no gradient, so nothing");
            println!("  pulls this point back (how a transformer collapses to a blank output).");
        }
        println!();

        let near = |a: f32, b: f32| (a - b).abs() <= 1e-4 * (1.0 + b.abs());
        assert!(v_page == v_engine && near(v, v_engine), "V: {v} {v_engine}");
        assert!(
            near(dx, gx / sx) && near(dy, gy / sy),
            "∂V/∂p: {dx} {dy} vs {gx} {gy}"
        );
        assert!(
            dx_page * ax.mult == gx && dy_page * ay.mult == gy,
            "page vs engine"
        );
    }
}

#[cfg(test)]
mod tests {
    /// The example's own checks (by hand = page = engine) run under `cargo test`.
    #[test]
    fn runs_and_agrees() {
        super::main();
    }
}
