//! # layers
//!
//! Neural-network building blocks on the warpgrad engine: the [`Module`]
//! trait with named [`Param`]s and a forward [`Ctx`]; layers ([`Conv2d`],
//! [`MaxPool2d`] (optionally with a ReLU fused in front), [`AvgPool2d`], [`Linear`], [`ReLU`], [`Dropout`],
//! [`Flatten`], [`Sequential`]); the fused softmax [`cross_entropy`] and
//! [`accuracy`]; initialisers ([`Init`]); optimisers ([`Sgd`], [`Adam`]) with
//! parameter groups, clipping and NaN checks; learning-rate [`Schedule`]s;
//! and versioned, checksummed, atomically written [`Checkpoint`]s.
//!
//! A training step:
//! ```
//! use engine::{Tape, Tensor, Var};
//! use layers::*;
//! let mut rng = engine::rng::seeded(0);
//! let mut net = Sequential::new()
//!     .push(Flatten)
//!     .push(Linear::new("fc", 4, 3, &mut rng));
//! let mut opt = Sgd::momentum(0.9);
//! let x = Var::constant(Tensor::ones(&[2, 1, 2, 2]));
//! let tape = Tape::new();
//! let ctx = Ctx::train(&tape, 42, 0);
//! let loss = cross_entropy(&net.forward(&x, &ctx), &[0, 2]);
//! let grads = ctx.gradients(&loss.backward(), &net.params());
//! opt.step(&mut net.params_mut(), &grads, 0.1).unwrap();
//! ```

pub mod basic;
pub mod checkpoint;
pub mod checkpoint_error;
pub mod conv;
pub mod data;
pub mod ema;
pub mod init;
pub mod linear;
pub mod loss;
pub mod module;
pub mod optim;
pub mod pool;
pub mod relu_pool;
pub mod schedule;

pub use basic::{dropout_mask, dropout_with_mask, Dropout, Flatten, ReLU};
pub use checkpoint::{crc32, Checkpoint, CheckpointError, CheckpointErrorKind};
pub use conv::{conv2d, Conv2d};
pub use data::epoch_order;
pub use ema::Ema;
pub use init::Init;
pub use linear::{linear, Linear};
pub use loss::{accuracy, correct_count, cross_entropy, cross_entropy_smoothed, predictions};
pub use module::{
    check_unique_names, gather_params, layer_table, param_count, Ctx, LayerRow, Module, Param,
    Sequential,
};
pub use optim::{clip_grad_norm, Adam, OptimError, OptimState, Optimizer, Sgd, StepStats};
pub use pool::{avg_pool2d, max_pool2d, AvgPool2d, MaxPool2d};
pub use relu_pool::relu_max_pool2d;
pub use schedule::{Decay, Schedule};
