//! Grid generators T_θ (paper §3.2): from the parameters θ that the
//! localisation net regresses to the sampling grid of eq. (1).
//!
//! A [`Transform`] maps θ (N×P) to a grid (N×H'×W'×2): for every point
//! (x_t, y_t) of a regular grid over the *output*, the point (x_s, y_s) of the
//! *input* it samples, x first, both normalised to [−1, 1]. The regular output
//! grid is PyTorch's (see [`base_grid`]). Every generator here is built from
//! tape ops (or one custom op with its own backward), so ∂L/∂θ comes from the
//! tape with no extra code.
//!
//! | transform                  | P      | paper                  | file             |
//! |----------------------------|--------|------------------------|------------------|
//! | [`Affine`]                 | 6      | eq. (1)                | `affine.rs`      |
//! | [`Attention`]              | 3      | eq. (2)                | `attention.rs`   |
//! | [`Similarity`]             | 4      | §3.2 (a restricted A_θ)| `similarity.rs`  |
//! | [`Translation`]            | 2      | §3.2 (a restricted A_θ)| `translation.rs` |
//! | [`Rotation`]               | 1      | §3.2 (a restricted A_θ)| `rotation.rs`    |
//! | [`Projective`]             | 8      | §3.2, plane projective | `projective.rs`  |
//! | [`ThinPlateSpline`]        | 2·K²   | §3.2, thin plate spline| `tps.rs`         |
//!
//! The affine family (all but the last two) first builds the 2×3 matrix A_θ
//! from θ with tape ops and then calls [`grid_from_affine`], so each of those
//! files is a few lines. `docs/extending.md` walks through adding one.

mod affine;
mod attention;
mod projective;
mod rotation;
mod similarity;
mod tps;
mod translation;

pub use affine::Affine;
pub use attention::Attention;
pub use projective::Projective;
pub use rotation::Rotation;
pub use similarity::Similarity;
pub use tps::ThinPlateSpline;
pub use translation::Translation;

use crate::sampler::grid_sample_var;
use crate::SampleOptions;
use engine::{Tensor, Var};

/// A grid generator T_θ: parameters θ (N×P) → sampling grid (N×H'×W'×2).
///
/// Object safe, so a spatial-transformer layer can hold a
/// `Box<dyn Transform>` chosen at run time (see [`by_name`]).
pub trait Transform: Send + Sync {
    /// Short name used on the command line: "affine", "proj", "tps", ...
    fn name(&self) -> &'static str;

    /// P, the number of parameters per batch item.
    fn num_params(&self) -> usize;

    /// The P parameters of the identity transform (the grid is the base grid).
    /// The localisation net's last layer is initialised to predict these.
    fn identity(&self) -> Vec<f32>;

    /// The sampling grid for θ (N×P): N×H×W×2 for the output size
    /// `out_hw = [H, W]`, x first, points of the output grid mapped into the
    /// input (eq. 1 and its generalisations), normalised to [−1, 1].
    ///
    /// # Panics
    /// If θ is not N×P (the message names the transform and both shapes).
    fn grid(&self, theta: &Var, out_hw: [usize; 2], align_corners: bool) -> Var;

    /// θ of one batch item as a 3×3 matrix acting on (x, y, 1)ᵀ, for
    /// transforms that have one (affine family, projective); `None` otherwise.
    /// Meant for pictures and logs, not for the forward pass.
    fn matrix(&self, _theta: &[f32]) -> Option<[[f32; 3]; 3]> {
        None
    }

    /// The identity θ repeated for a batch of `n`: an N×P tensor.
    fn identity_theta(&self, n: usize) -> Tensor {
        let id = self.identity();
        let p = id.len();
        Tensor::from_vec(id.into_iter().cycle().take(n * p).collect(), &[n, p])
    }

    /// The transformer's output V = sampler(input, T_θ(G)) (N×C×H×W for
    /// `out_hw = [H, W]`). The default builds the grid and samples it with
    /// [`grid_sample_var`]; [`Affine`] and [`Projective`] override it with the
    /// fused paths of [`crate::fused`], which never materialise the grid.
    fn sample(&self, input: &Var, theta: &Var, out_hw: [usize; 2], opts: SampleOptions) -> Var {
        let grid = self.grid(theta, out_hw, opts.align_corners);
        grid_sample_var(input, &grid, opts)
    }
}

/// The names accepted by [`by_name`].
pub const NAMES: [&str; 7] = [
    "affine",
    "attention",
    "similarity",
    "translation",
    "rotation",
    "proj",
    "tps",
];

/// A transform from its command-line name (see [`NAMES`]); the TPS uses the
/// paper's 4×4 control points. `None` for an unknown name.
pub fn by_name(name: &str) -> Option<Box<dyn Transform>> {
    Some(match name {
        "affine" => Box::new(Affine::new()),
        "attention" => Box::new(Attention::new()),
        "similarity" => Box::new(Similarity::new()),
        "translation" => Box::new(Translation::new()),
        "rotation" => Box::new(Rotation::new()),
        "proj" | "projective" => Box::new(Projective::new()),
        "tps" => Box::new(ThinPlateSpline::default()),
        _ => return None,
    })
}

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
/// f64; [`crate::affine_grid()`] uses it too, so every transform's identity
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
    let mut v = Vec::with_capacity(h * w * 2);
    for y in &ys {
        for x in &xs {
            v.push(*x as f32);
            v.push(*y as f32);
        }
    }
    Tensor::from_vec(v, &[h * w, 2])
}

/// θ (N×P) → θ·M + b (N×6) for a constant P×6 matrix `m` (row-major) and a
/// constant row `b`: the parameter maps of the linear members of the affine
/// family (attention, translation) as tape ops.
pub fn linear_params(theta: &Var, m: &[f32], b: [f32; 6]) -> Var {
    let p = theta.shape()[1];
    let m = Var::constant(Tensor::from_vec(m.to_vec(), &[p, 6]));
    let b = Var::constant(Tensor::from_vec(b.to_vec(), &[1, 6]));
    theta.matmul(&m).add(&b)
}

/// Elementwise sin as a tape op (the engine has none): ∂ sin x = cos x.
pub fn sin(x: &Var) -> Var {
    let xv = x.value().clone();
    Var::custom_op("sin", &[x], x.value().map(f32::sin), move |g, _| {
        vec![Some(g.mul(&xv.map(f32::cos)))]
    })
}

/// Elementwise cos as a tape op: ∂ cos x = −sin x.
pub fn cos(x: &Var) -> Var {
    let xv = x.value().clone();
    Var::custom_op("cos", &[x], x.value().map(f32::cos), move |g, _| {
        vec![Some(g.mul(&xv.map(|v| -v.sin())))]
    })
}

/// Eq. (1) for any member of the affine family: A_θ (N×6, each row the 2×3
/// matrix row-major) → grid N×H×W×2, on the tape. A thin wrapper around
/// [`crate::affine_grid::affine_grid_var`] (forward `affine_grid`, backward
/// `affine_grid_backward`: x_s is linear in A, ∂x_s/∂A1k = (x_t, y_t, 1)k).
///
/// # Panics
/// If `a` is not N×6.
pub fn grid_from_affine(a: &Var, out_hw: [usize; 2], align_corners: bool) -> Var {
    let n = check_theta("grid_from_affine", a, 6);
    let size = [n, 1, out_hw[0], out_hw[1]];
    crate::affine_grid::affine_grid_var(&a.reshape(&[n, 2, 3]), size, align_corners)
}

/// The 3×3 matrix [[a, b, c], [d, e, f], [0, 0, 1]] of a row-major 2×3 A_θ.
pub fn affine_matrix(a: &[f32]) -> [[f32; 3]; 3] {
    [[a[0], a[1], a[2]], [a[3], a[4], a[5]], [0.0, 0.0, 1.0]]
}
