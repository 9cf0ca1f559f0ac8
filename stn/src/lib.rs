//! # stn
//!
//! Spatial transformer networks (Jaderberg et al., NIPS 2015): the sampler
//! ([`grid_sample`], eq. 3–7, equal to PyTorch's), grid generators
//! ([`transforms`], one file each, listed in [`transforms::REGISTRY`]), the
//! fused sampler for any transform with a pointwise map ([`fused`],
//! [`point_map`]), the spatial-transformer layer ([`layer`]) and the paper's
//! MNIST models ([`models`]), built by name for every registered transform.
//! With the `testing` feature, `transform_checks!` (see `testing`) generates the test
//! suite of any transform, in any crate.
//!
//! ```
//! use engine::{Tape, Tensor, Var};
//! use stn::transforms::{by_name, Transform};
//! use stn::SampleOptions;
//!
//! // A transform from its registered name: a rotation, θ = (φ).
//! let rot = by_name("rotation").unwrap();
//! let tape = Tape::new();
//! let image = Var::constant(Tensor::uniform(&[1, 1, 8, 8], 0.0, 1.0, &mut engine::rng::seeded(0)));
//! let theta = tape.leaf(Tensor::from_vec(vec![0.3], &[1, 1]));
//! // V = sampler(U, T_θ(G)), fused: the grid is never built.
//! let v = rot.sample(&image, &theta, [8, 8], SampleOptions::default());
//! assert_eq!(v.shape(), [1, 1, 8, 8]);
//! // ∂L/∂φ comes from the tape.
//! let grads = v.sum().backward();
//! assert_eq!(grads.get_or_zeros(&theta).shape(), [1, 1]);
//!
//! // The same transform inside a model, by name, as on the command line.
//! let model = stn::build_model("st-cnn-rotation", 42, 1).unwrap();
//! assert_eq!(model.transformer().unwrap().transform().name(), "rotation");
//! ```

// With engine, the one crate where `unsafe` is allowed (the workspace denies
// it): the sampler's AVX2/AVX-512 kernels. Every block carries a SAFETY comment.
#![allow(unsafe_code)]

pub mod addition_models;
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
pub use models::{
    build_model, build_model_for, model_help, model_names, InputSpec, Model, UnknownModel,
    PAPER_MODELS,
};
pub use point_map::PointMap;
pub use sampler::{
    grid_sample, grid_sample_backward, grid_sample_backward_masked, Mode, Padding, SampleOptions,
};
pub use transforms::Transform;
