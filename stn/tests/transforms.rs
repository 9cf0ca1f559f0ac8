//! The generated checks of `stn::testing` for every transform of the
//! crate (one line each), then checks beyond the harness.

use engine::{Tensor, Var};
use stn::testing::{bilinear, grid_of};
use stn::transforms::{
    by_name, Affine, Attention, Projective, Rotation, Similarity, ThinPlateSpline, Transform,
    Translation,
};

stn::transform_checks! {
    affine => Affine::new(),
    attention => Attention::new(),
    similarity => Similarity::new(),
    translation => Translation::new(),
    rotation => Rotation::new(),
    projective => Projective::new(),
    tps => ThinPlateSpline::default(),
    tps_3x3 => ThinPlateSpline::new(3),
}

// ---------- beyond the harness ----------

#[test]
fn every_cli_name_builds_its_transform() {
    for r in stn::transforms::REGISTRY {
        for name in [r.name, r.short].iter().chain(r.aliases) {
            let t = by_name(name).unwrap_or_else(|| panic!("{name} is not built"));
            assert_eq!(t.name(), r.name, "{name}");
            assert_eq!(t.identity().len(), t.num_params());
        }
    }
    assert_eq!(stn::transforms::names().len(), 7);
    assert!(by_name("warp-drive").is_none());
    assert_eq!(
        by_name("tps").unwrap().num_params(),
        32,
        "16 control points"
    );
}

#[test]
fn attention_is_eq_2() {
    // θ = (s, t_x, t_y) gives A_θ = [[s, 0, t_x], [0, s, t_y]].
    let g = grid_of(
        &Attention::new(),
        &Tensor::from_vec(vec![0.5, 0.2, -0.3], &[1, 3]),
        [4, 5],
        false,
    );
    let a = Tensor::from_vec(vec![0.5, 0.0, 0.2, 0.0, 0.5, -0.3], &[1, 2, 3]);
    assert_eq!(g, stn::affine_grid(&a, [1, 1, 4, 5], false));
}

#[test]
fn affine_grid_is_pytorchs_affine_grid_exactly() {
    let v = vec![
        0.9, -0.1, 0.05, 0.2, 1.1, -0.07, 1.0, 0.3, 0.0, -0.3, 1.0, 0.1,
    ];
    let g = grid_of(
        &Affine::new(),
        &Tensor::from_vec(v.clone(), &[2, 6]),
        [5, 3],
        false,
    );
    assert_eq!(
        g,
        stn::affine_grid(&Tensor::from_vec(v, &[2, 2, 3]), [2, 1, 5, 3], false)
    );
}

#[test]
fn a_quarter_turn_rotates_a_square_image() {
    // φ = π/2: x_s = −y_t, y_s = x_t, so V[i][j] = U[j][n−1−i] (align_corners).
    let n = 4;
    let u = Tensor::from_vec((0..n * n).map(|v| v as f32).collect(), &[1, 1, n, n]);
    let theta = Var::constant(Tensor::from_vec(vec![std::f32::consts::FRAC_PI_2], &[1, 1]));
    let v = Rotation::new().sample(&Var::constant(u.clone()), &theta, [n, n], bilinear(true));
    for i in 0..n {
        for j in 0..n {
            let want = u.at(&[0, 0, j, n - 1 - i]);
            assert!(
                (v.value().at(&[0, 0, i, j]) - want).abs() < 1e-4,
                "({i}, {j})"
            );
        }
    }
}

#[test]
fn similarity_with_no_rotation_is_attention() {
    let sim = grid_of(
        &Similarity::new(),
        &Tensor::from_vec(vec![0.7, 0.0, 0.1, 0.2], &[1, 4]),
        [3, 3],
        true,
    );
    let att = grid_of(
        &Attention::new(),
        &Tensor::from_vec(vec![0.7, 0.1, 0.2], &[1, 3]),
        [3, 3],
        true,
    );
    assert_eq!(sim, att);
}

#[test]
fn projective_without_perspective_row_is_affine() {
    let a = vec![1.1, -0.2, 0.05, 0.15, 0.9, -0.1];
    let mut h = a.clone();
    h.extend([0.0, 0.0]);
    let gp = grid_of(
        &Projective::new(),
        &Tensor::from_vec(h, &[1, 8]),
        [4, 6],
        false,
    );
    let ga = grid_of(&Affine::new(), &Tensor::from_vec(a, &[1, 6]), [4, 6], false);
    assert!(gp.max_abs_diff(&ga) < 1e-6);
}

#[test]
fn tps_caches_its_weights_per_output_size() {
    let t = ThinPlateSpline::default();
    let a = t.weights([7, 9], false);
    assert!(a.shares_storage(&t.weights([7, 9], false)));
    assert!(!a.shares_storage(&t.weights([7, 9], true)));
    assert_eq!(a.shape(), [63, 16]);
}
