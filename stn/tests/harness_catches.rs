//! The harness must catch a backward that is right only near the identity:
//! a zoom and shift θ = (a, t_x, t_y), A_θ = [[eᵃ, 0, t_x], [0, eᵃ, t_y]], whose `exp` backward is
//! written as 1 + x (the first-order Taylor term: right at a = 0, wrong by
//! over 10% at |a| > 0.5). The near-identity checks pass it; the far check
//! fails and names the θ column. With the true backward every check passes.
//! Also: a family with no identity passes the suite from its declared
//! initial θ, and the layer's head starts there.

use engine::{Tensor, Var};
use stn::testing::{check_far_theta_to_grid, check_theta_to_grid, check_theta_to_output};
use stn::transforms::{affine_matrix, check_theta, grid_from_affine};
use stn::Transform;

/// eˣ elementwise with a chosen backward: the true one or 1 + x.
fn exp(x: &Var, wrong: bool) -> Var {
    let xv = x.value().clone();
    Var::custom_op("exp", &[x], x.value().map(f32::exp), move |g, _| {
        let d = if wrong {
            xv.map(|v| 1.0 + v)
        } else {
            xv.map(f32::exp)
        };
        vec![Some(g.mul(&d))]
    })
}

struct Zoom {
    wrong: bool,
}

impl Transform for Zoom {
    fn name(&self) -> &'static str {
        "zoom"
    }
    fn num_params(&self) -> usize {
        3
    }
    fn identity(&self) -> Vec<f32> {
        vec![0.0; 3]
    }
    fn grid(&self, theta: &Var, out_hw: [usize; 2], align_corners: bool) -> Var {
        let n = check_theta(self.name(), theta, 3);
        let s = exp(&theta.narrow(1, 0, 1), self.wrong);
        let (tx, ty) = (theta.narrow(1, 1, 1), theta.narrow(1, 2, 1));
        let zero = Var::constant(Tensor::zeros(&[n, 1]));
        let a = Var::concat(&[&s, &zero, &tx, &zero, &s, &ty], 1);
        grid_from_affine(&a, out_hw, align_corners)
    }
    fn matrix(&self, theta: &[f32]) -> Option<[[f32; 3]; 3]> {
        let s = theta[0].exp();
        Some(affine_matrix(&[s, 0.0, theta[1], 0.0, s, theta[2]]))
    }
}

fn panic_message(f: impl FnOnce()) -> Option<String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .err()
        .map(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
}

#[test]
fn near_identity_checks_miss_the_one_plus_x_backward() {
    // The blind spot the far check closes: these pass with the wrong backward.
    let bad = Zoom { wrong: true };
    check_theta_to_grid(&bad);
    check_theta_to_output(&bad);
}

#[test]
fn the_far_check_catches_it_and_names_the_column() {
    let msg = panic_message(|| check_far_theta_to_grid(&Zoom { wrong: true }))
        .expect("the 1 + x backward must fail the far-from-identity check");
    assert!(msg.contains("zoom: ∂"), "{msg}");
    assert!(msg.contains("θ column 0 (item"), "{msg}");
    assert!(msg.contains("output point (row"), "{msg}");
}

#[test]
fn the_true_backward_passes_the_far_check() {
    check_far_theta_to_grid(&Zoom { wrong: false });
}

// The whole generated suite, from outside the crate, on the correct zoom.
stn::transform_checks! {
    zoom => Zoom { wrong: false },
}

/// A family with no identity θ: a zoom about a movable origin (like a
/// log-polar warp, whose θ is its origin), x_s = o + 0.8·(x_t − o) + …, that
/// starts from a declared θ off centre.
struct ZoomAbout;

impl Transform for ZoomAbout {
    fn name(&self) -> &'static str {
        "zoom_about"
    }
    fn num_params(&self) -> usize {
        2
    }
    fn identity(&self) -> Vec<f32> {
        self.initial()
    }
    fn has_identity(&self) -> bool {
        false
    }
    fn initial(&self) -> Vec<f32> {
        vec![0.3, -0.2]
    }
    fn grid(&self, theta: &Var, out_hw: [usize; 2], align_corners: bool) -> Var {
        let n = check_theta(self.name(), theta, 2);
        // A = [[0.8, 0, 0.2·o_x], [0, 0.8, 0.2·o_y]]: a fixed zoom about o.
        let (ox, oy) = (
            theta.narrow(1, 0, 1).scale(0.2),
            theta.narrow(1, 1, 1).scale(0.2),
        );
        let s = Var::constant(Tensor::full(&[n, 1], 0.8));
        let zero = Var::constant(Tensor::zeros(&[n, 1]));
        let a = Var::concat(&[&s, &zero, &ox, &zero, &s, &oy], 1);
        grid_from_affine(&a, out_hw, align_corners)
    }
}

#[test]
fn the_head_starts_at_a_declared_initial_theta() {
    let st = stn::SpatialTransformer::new(
        "st",
        Box::new(layers::Flatten),
        16,
        Box::new(ZoomAbout),
        [4, 4],
        stn::SampleOptions::default(),
    );
    let x = Var::constant(Tensor::ones(&[1, 1, 4, 4]));
    let theta = st.theta(&x, &layers::Ctx::eval());
    assert_eq!(theta.value().data(), [0.3, -0.2]);
}

stn::transform_checks! {
    zoom_about => ZoomAbout,
}
