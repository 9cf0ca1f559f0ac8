//! # stn
//!
//! Spatial transformer networks (Jaderberg et al., NIPS 2015): the sampler
//! ([`grid_sample`], eq. 3–7, equal to PyTorch's), grid generators
//! ([`transforms`]), fused affine/projective sampling ([`fused`]), the
//! spatial-transformer layer ([`layer`]) and the paper's MNIST models
//! ([`models`]).

pub mod affine_grid;
pub mod fused;
pub mod grid;
pub mod layer;
pub mod models;
pub mod point_map;
pub mod sampler;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transforms;

pub use affine_grid::{affine_grid, affine_grid_backward};
pub use fused::{affine_sample, point_map_sample, projective_sample};
pub use layer::{ParallelTransformers, SpatialTransformer, LOC_GROUP};
pub use models::{build_model, model_help, model_names, Model, UnknownModel, PAPER_MODELS};
pub use point_map::PointMap;
pub use sampler::{
    grid_sample, grid_sample_backward, grid_sample_backward_masked, Mode, Padding, SampleOptions,
};
pub use transforms::Transform;
