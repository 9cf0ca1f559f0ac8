//! The regular output grid G of eq. (1) and the θ shape check, shared by the
//! transforms, `affine_grid` and the fused sampler (so none of them imports
//! another for it).

use engine::{Tensor, Var};

/// Checks that θ is N×`p` and returns N.
///
/// # Panics
/// With "`name`: theta must be N×`p`, got shape [...]" otherwise.
pub fn check_theta(name: &str, theta: &Var, p: usize) -> usize {
    let s = theta.shape();
    assert!(
        s.len() == 2 && s[1] == p,
        "{name}: theta must be N×{p} (one row of parameters per batch item), got shape {s:?}"
    );
    s[0]
}

/// The base grid along one axis of `steps` points: linspace(−1, 1), scaled by
/// (steps−1)/steps when `align_corners` is false (points at pixel centres); a
/// single point sits at 0 (PyTorch's `linspace_from_neg_one`). Computed in
/// f64; [`crate::affine_grid()`] and the fused sampler use it too, so every transform's identity
/// agrees with it to the bit.
pub fn base_axis(steps: usize, align_corners: bool) -> Vec<f64> {
    if steps <= 1 {
        return vec![0.0; steps];
    }
    let step = 2.0 / (steps - 1) as f64;
    let scale = if align_corners {
        1.0
    } else {
        (steps - 1) as f64 / steps as f64
    };
    (0..steps)
        .map(|i| {
            // Like torch.linspace: the upper half counts down from the end.
            let v = if i < steps / 2 {
                -1.0 + step * i as f64
            } else {
                1.0 - step * (steps - 1 - i) as f64
            };
            v * scale
        })
        .collect()
}

/// The regular output grid G = {(x_t, y_t)} of eq. (1) as an (H·W)×2 tensor,
/// row-major over (y, x), x first: what every transform's identity returns.
pub fn base_grid(out_hw: [usize; 2], align_corners: bool) -> Tensor {
    let [h, w] = out_hw;
    let (xs, ys) = (base_axis(w, align_corners), base_axis(h, align_corners));
    let mut v = engine::pool::take_empty(h * w * 2);
    for y in &ys {
        for x in &xs {
            v.push(*x as f32);
            v.push(*y as f32);
        }
    }
    Tensor::from_vec(v, &[h * w, 2])
}
