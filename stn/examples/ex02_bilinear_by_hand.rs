//! Example 2: bilinear sampling of a 4×4 image by hand (eq. 5), and its
//! gradients (eq. 6 for ∂V/∂U, eq. 7 for ∂V/∂x_s), next to the engine's.
//!
//! Run with `cargo run -p stn --example ex02_bilinear_by_hand`.

use engine::Tensor;
use stn::{grid_sample, grid_sample_backward, Mode, Padding, SampleOptions};

fn main() {
    // U: a 4×4 image, U[n][m] = 10·n + m (row n = y, column m = x).
    let u: Vec<f32> = (0..16).map(|i| (10 * (i / 4) + i % 4) as f32).collect();
    let input = Tensor::from_vec(u.clone(), &[1, 1, 4, 4]);
    // One sampling point, in pixel units: x_s = 1.3, y_s = 2.6.
    let (xs, ys) = (1.3f32, 2.6f32);
    // align_corners = true: x_pix = (x + 1)/2 · (W − 1), so x = 2·x_pix/(W − 1) − 1.
    let to_norm = |p: f32| 2.0 * p / 3.0 - 1.0;
    let grid = Tensor::from_vec(vec![to_norm(xs), to_norm(ys)], &[1, 1, 1, 2]);
    let opts = SampleOptions::new(Mode::Bilinear, Padding::Zeros).align_corners(true);

    println!("U =");
    for n in 0..4 {
        println!("   {:?}", &u[4 * n..4 * n + 4]);
    }
    println!("sampling at (x_s, y_s) = ({xs}, {ys}) pixels\n");

    // Eq. (5): V = Σ_n Σ_m U_nm max(0, 1 − |x_s − m|) max(0, 1 − |y_s − n|).
    let k = |d: f32| (1.0 - d.abs()).max(0.0);
    let mut v = 0.0;
    let (mut dx, mut dy) = (0.0, 0.0);
    println!("terms with a non-zero weight (eq. 5 and 6):");
    for n in 0..4 {
        for m in 0..4 {
            let (wx, wy) = (k(xs - m as f32), k(ys - n as f32));
            let unm = u[4 * n + m];
            if wx * wy > 0.0 {
                println!(
                    "  U[{n}][{m}] = {unm:>4}  ∂V/∂U[{n}][{m}] = {wx:.2}·{wy:.2} = {:.4}",
                    wx * wy
                );
            }
            v += unm * wx * wy;
            // Eq. (7): the kernel's sub-gradient is +1 if m ≥ x_s, −1 if m < x_s, 0 if |m − x_s| ≥ 1.
            let sx = if (m as f32 - xs).abs() >= 1.0 {
                0.0
            } else if m as f32 >= xs {
                1.0
            } else {
                -1.0
            };
            let sy = if (n as f32 - ys).abs() >= 1.0 {
                0.0
            } else if n as f32 >= ys {
                1.0
            } else {
                -1.0
            };
            dx += unm * wy * sx;
            dy += unm * wx * sy;
        }
    }

    let out = grid_sample(&input, &grid, opts);
    let (gu, gg) = grid_sample_backward(&input, &grid, &Tensor::ones(&[1, 1, 1, 1]), opts);
    // The engine's ∂V/∂grid is per normalised unit: ∂x_pix/∂x = (W − 1)/2 = 1.5.
    println!("\n                 by hand     engine");
    println!("V              {v:>9.4}  {:>9.4}", out.data()[0]);
    println!("∂V/∂x_s (px)   {dx:>9.4}  {:>9.4}", gg.data()[0] / 1.5);
    println!("∂V/∂y_s (px)   {dy:>9.4}  {:>9.4}", gg.data()[1] / 1.5);
    println!(
        "∂V/∂U[2][1]    {:>9.4}  {:>9.4}",
        k(xs - 1.0) * k(ys - 2.0),
        gu.data()[4 * 2 + 1]
    );
}
