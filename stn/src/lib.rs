//! stn crate (under construction).

pub mod affine_grid;
pub mod sampler;
pub mod transforms;
pub mod fused;

pub use affine_grid::{affine_grid, affine_grid_backward};
pub use sampler::{
    grid_sample, grid_sample_backward, grid_sample_backward_masked, Mode, Padding, SampleOptions,
};
pub use fused::{affine_sample, projective_sample};
pub use transforms::Transform;
