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

pub use crate::grid::{base_axis, base_grid, check_theta};
pub use crate::point_map::{AffineMap, PointMap, ViaAffine};
use crate::sampler::grid_sample_var;
use crate::SampleOptions;
use engine::{Tensor, Var};
use std::sync::Arc;

/// A grid generator T_θ: parameters θ (N×P) → sampling grid (N×H'×W'×2).
///
/// Object safe, so a spatial-transformer layer can hold a
/// `Box<dyn Transform>` chosen at run time (see [`by_name`]).
pub trait Transform: Send + Sync {
    /// Short name used on the command line: "affine", "proj", "tps", ...
    fn name(&self) -> &'static str;

    /// P, the number of parameters per batch item.
    fn num_params(&self) -> usize;

    /// The P parameters of the identity transform (the grid is the base
    /// grid). A family without an identity (e.g. a log-polar warp whose θ is
    /// its origin) returns [`Transform::initial`]'s θ here and says so in
    /// [`Transform::has_identity`].
    fn identity(&self) -> Vec<f32>;

    /// False for a family with no identity θ: the harness then skips its
    /// identity checks. Default true.
    fn has_identity(&self) -> bool {
        true
    }

    /// The θ training starts from: the localisation net's regression head is
    /// initialised to predict it, and the harness draws its test θ around
    /// it. Default: [`Transform::identity`].
    fn initial(&self) -> Vec<f32> {
        self.identity()
    }

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

    /// The pointwise form of [`Transform::grid`], if the transform has one:
    /// it lets [`Transform::sample`] run the fused sampler, which never
    /// materialises the grid. `None` (the default) samples the grid.
    fn point_map(&self) -> Option<Arc<dyn PointMap>> {
        None
    }

    /// The transformer's output V = sampler(input, T_θ(G)) (N×C×H×W for
    /// `out_hw = [H, W]`): fused through [`Transform::point_map`] where there
    /// is one, else the grid sampled with [`grid_sample_var`].
    fn sample(&self, input: &Var, theta: &Var, out_hw: [usize; 2], opts: SampleOptions) -> Var {
        if let Some(map) = self.point_map() {
            check_theta(self.name(), theta, self.num_params());
            return crate::sampler::kernels::fused::sample(map, input, theta, out_hw, opts);
        }
        let grid = self.grid(theta, out_hw, opts.align_corners);
        grid_sample_var(input, &grid, opts)
    }
}

/// One transform of the [`REGISTRY`]: its names and its constructor.
#[derive(Clone, Copy, Debug)]
pub struct Registered {
    /// The canonical name, equal to [`Transform::name`].
    pub name: &'static str,
    /// The name inside model names (`st-cnn-<short>`): "aff" for affine,
    /// else `name`.
    pub short: &'static str,
    /// Other accepted names (e.g. "projective").
    pub aliases: &'static [&'static str],
    /// One line for `--help` and `warpgrad info --list`.
    pub summary: &'static str,
    /// Builds the transform.
    pub make: fn() -> Box<dyn Transform>,
}

impl Registered {
    /// True if `name` is this transform's name, short name or an alias.
    pub fn answers_to(&self, name: &str) -> bool {
        self.name == name || self.short == name || self.aliases.contains(&name)
    }
}

/// Every transform the command line, the models and [`by_name`] know: adding
/// a transform to the project is its file plus one line here.
pub const REGISTRY: &[Registered] = &[
    Registered {
        name: "affine",
        short: "aff",
        aliases: &[],
        summary: "affine, eq. (1), 6 params",
        make: || Box::new(Affine::new()),
    },
    Registered {
        name: "proj",
        short: "proj",
        aliases: &["projective"],
        summary: "plane projective, 8 params",
        make: || Box::new(Projective::new()),
    },
    Registered {
        name: "tps",
        short: "tps",
        aliases: &[],
        summary: "thin plate spline, 4×4 control points, 32 params",
        make: || Box::new(ThinPlateSpline::default()),
    },
    Registered {
        name: "attention",
        short: "attention",
        aliases: &[],
        summary: "attention, eq. (2): scale + shift, 3 params",
        make: || Box::new(Attention::new()),
    },
    Registered {
        name: "similarity",
        short: "similarity",
        aliases: &[],
        summary: "scale, rotation, shift, 4 params",
        make: || Box::new(Similarity::new()),
    },
    Registered {
        name: "translation",
        short: "translation",
        aliases: &[],
        summary: "shift, 2 params",
        make: || Box::new(Translation::new()),
    },
    Registered {
        name: "rotation",
        short: "rotation",
        aliases: &[],
        summary: "rotation about the centre, 1 param",
        make: || Box::new(Rotation::new()),
    },
];

/// The registry entry answering to `name` (canonical, short or alias).
pub fn lookup(name: &str) -> Option<&'static Registered> {
    REGISTRY.iter().find(|r| r.answers_to(name))
}

/// The canonical names of the [`REGISTRY`], in its order.
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|r| r.name).collect()
}

/// A transform from any of its names (see [`REGISTRY`]); the TPS uses the
/// paper's 4×4 control points. `None` for an unknown name.
pub fn by_name(name: &str) -> Option<Box<dyn Transform>> {
    lookup(name).map(|r| (r.make)())
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
