//! The worked 2×2 example of docs/gradients.md: its numbers are the engine's.

use engine::Tensor;
use stn::{grid_sample, grid_sample_backward, Mode, Padding, SampleOptions};

#[test]
fn the_worked_example_in_the_gradients_doc() {
    let u = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2]);
    // (x_s, y_s) = (0.3, 0.6) pixels; align_corners: x = 2·x_pix/(W−1) − 1.
    let grid = Tensor::from_vec(vec![2.0 * 0.3 - 1.0, 2.0 * 0.6 - 1.0], &[1, 1, 1, 2]);
    let opts = SampleOptions::new(Mode::Bilinear, Padding::Zeros).align_corners(true);
    let v = grid_sample(&u, &grid, opts);
    let (du, dg) = grid_sample_backward(&u, &grid, &Tensor::ones(&[1, 1, 1, 1]), opts);
    let close = |a: f32, b: f32| (a - b).abs() < 1e-6;
    assert!(close(v.data()[0], 2.5), "V = {}", v.data()[0]);
    for (got, want) in du.data().iter().zip([0.28, 0.12, 0.42, 0.18]) {
        assert!(close(*got, want), "∂V/∂U = {:?}", du.data());
    }
    // Normalised units: ∂V/∂x = 1.0·(W−1)/2 = 0.5, ∂V/∂y = 2.0·(H−1)/2 = 1.0.
    assert!(
        close(dg.data()[0], 0.5) && close(dg.data()[1], 1.0),
        "∂V/∂grid = {:?}",
        dg.data()
    );
}
