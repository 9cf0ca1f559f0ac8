//! The paper's distorted-MNIST models (appendix A; see `../shared/PAPER.md`).
//!
//! | name          | network                                                            |
//! |---------------|--------------------------------------------------------------------|
//! | `fcn`         | FC h → ReLU → FC h → ReLU → FC 10, h = 128·(28/side)²              |
//! | `cnn`         | conv 9×9 32 → ReLU → max-pool 2 → conv 7×7 64 → ReLU → max-pool 2 → FC 10 |
//! | `st-fcn-*`    | spatial transformer (FC localisation net) → the FCN                |
//! | `st-cnn-*`    | spatial transformer (conv localisation net) → the CNN              |
//!
//! `*` is any transform of [`crate::transforms::REGISTRY`], by its short name,
//! canonical name or an alias: the paper's `aff` (6 parameters), `proj` (8)
//! and `tps` (16 control points, 32 parameters), and `attention`,
//! `similarity`, `translation`, `rotation`. [`model_names`] lists them all;
//! Table 1 uses only the paper's eight, [`PAPER_MODELS`]. Localisation nets: ST-CNN: max-pool 2 → conv 5×5 20
//! → ReLU → max-pool 2 → conv 5×5 20 → ReLU → FC 50 → ReLU → regression head;
//! ST-FCN: FC 32 → ReLU → FC 32 → ReLU → regression head. Every regression
//! head starts at the identity transform. Each "ReLU → max-pool 2" is one
//! fused layer, [`layers::MaxPool2d::after_relu`]: the same bits as the two layers,
//! one pass fewer over the activation.
//!
//! On the larger canvases (RTS 42×42, TC 60×60) the transformer outputs 56×56
//! and is average-pooled ×2 (the transformer zooms in, then downsamples), so
//! the classifier always sees 28×28; the plain FCN and CNN see the canvas.
//!
//! `2st-fcn-*` and `2st-cnn-*` put two transformers in parallel (MNIST
//! addition, appendix A.1). They, and the transformer models and the FCN on
//! inputs with several channels, are built in [`crate::addition_models`]
//! (where the transformers sample 28×28 directly). Inputs with several
//! channels or other than 10 classes are described by an [`InputSpec`]
//! ([`build_model_for`]); [`build_model`] is the 1-channel, 10-class case of
//! Table 1.

use crate::layer::{ParallelTransformers, SpatialTransformer};
use crate::transforms::{lookup, REGISTRY};
use crate::SampleOptions;
use engine::rng::seeded;
use engine::Var;
use layers::{
    AvgPool2d, Conv2d, Ctx, Flatten, LayerRow, Linear, MaxPool2d, Module, Param, ReLU, Sequential,
};
use std::fmt;

/// The paper's eight models (Table 1's rows; `reproduce table1` runs these).
/// [`build_model`] accepts more: see [`model_names`].
pub const PAPER_MODELS: [&str; 8] = [
    "fcn",
    "cnn",
    "st-fcn-aff",
    "st-fcn-proj",
    "st-fcn-tps",
    "st-cnn-aff",
    "st-cnn-proj",
    "st-cnn-tps",
];

/// Every model name [`build_model`] accepts in canonical form: `fcn`, `cnn`,
/// then `st-fcn-<t>` and `st-cnn-<t>` for every registered transform `t`
/// (its short name), generated from [`REGISTRY`].
pub fn model_names() -> Vec<String> {
    let mut v = vec!["fcn".to_string(), "cnn".to_string()];
    for kind in ["fcn", "cnn"] {
        v.extend(REGISTRY.iter().map(|r| format!("st-{kind}-{}", r.short)));
    }
    v.extend(crate::addition_models::parallel_model_names());
    v
}

/// A help text for `--model`, generated from [`REGISTRY`].
pub fn model_help() -> String {
    let ts: Vec<String> = REGISTRY
        .iter()
        .map(|r| {
            if r.short == r.name {
                r.name.to_string()
            } else {
                format!("{} ({})", r.short, r.name)
            }
        })
        .collect();
    format!(
        "Model: fcn, cnn, st-fcn-<t> or st-cnn-<t> (2st-fcn-<t>, 2st-cnn-<t>: two transformers in parallel; 2stc-…: each samples one channel) with the transform <t> one of {} (`warpgrad info --list`)",
        ts.join(", ")
    )
}

/// Side of the image the classifiers of transformer models see.
pub const CLASSIFIER_SIDE: usize = 28;

/// An unknown model name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownModel(pub String);

impl fmt::Display for UnknownModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown model '{}': expected one of {}",
            self.0,
            model_names().join(", ")
        )
    }
}

impl std::error::Error for UnknownModel {}

/// What a model takes and predicts: C×S×S images, K classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputSpec {
    /// Channels of the input images.
    pub channels: usize,
    /// Side of the square input images.
    pub side: usize,
    /// Number of classes.
    pub classes: usize,
}

impl InputSpec {
    /// Single-channel `side`×`side` digits, 10 classes (Table 1).
    pub fn mnist(side: usize) -> InputSpec {
        InputSpec {
            channels: 1,
            side,
            classes: 10,
        }
    }
}

/// A classifier of square images, optionally behind a spatial transformer
/// or several in parallel.
pub struct Model {
    pub(crate) name: String,
    pub(crate) input: InputSpec,
    pub(crate) st: Option<SpatialTransformer>,
    /// Transformers in parallel (the `2st-*` models), in place of `st`.
    pub(crate) parallel: Option<ParallelTransformers>,
    pub(crate) pool: Option<AvgPool2d>,
    pub(crate) classifier: Sequential,
}

/// Side after a valid k×k convolution then a 2×2 max-pool.
fn conv_pool(side: usize, k: usize) -> usize {
    assert!(
        side >= k,
        "model: a {k}×{k} convolution does not fit a {side}×{side} input"
    );
    let conv = side - k + 1;
    conv / 2
}

/// The paper's CNN classifier for `c`×`side`×`side` inputs and `k` classes.
pub(crate) fn cnn(c: usize, side: usize, k: usize, rng: &mut engine::rng::Rng) -> Sequential {
    let f = conv_pool(conv_pool(side, 9), 7);
    Sequential::new()
        .push(Conv2d::new("conv1", c, 32, 9, rng))
        // ReLU then max-pool in one pass (the same bits as the two layers).
        .push(MaxPool2d::new(2).after_relu())
        .push(Conv2d::new("conv2", 32, 64, 7, rng))
        .push(MaxPool2d::new(2).after_relu())
        .push(Flatten)
        .push(Linear::new("fc", 64 * f * f, k, rng))
}

/// Hidden units of the FCN classifier of `side`×`side` inputs:
/// 128·(28/side)², so the single-channel FCN keeps about 100–120k parameters
/// on every canvas, like the other models (as in the paper).
pub(crate) fn fcn_hidden(side: usize) -> usize {
    (128 * CLASSIFIER_SIDE * CLASSIFIER_SIDE / (side * side)).max(16)
}

/// The FCN classifier for `c`×`side`×`side` inputs, `h` hidden units and
/// `k` classes.
pub(crate) fn fcn(
    c: usize,
    side: usize,
    h: usize,
    k: usize,
    rng: &mut engine::rng::Rng,
) -> Sequential {
    Sequential::new()
        .push(Flatten)
        .push(Linear::new("fc1", c * side * side, h, rng))
        .push(ReLU)
        .push(Linear::new("fc2", h, h, rng))
        .push(ReLU)
        .push(Linear::new("fc3", h, k, rng))
}

/// The ST-CNN localisation net of `c`-channel inputs; returns it and its
/// number of features.
pub(crate) fn cnn_loc(c: usize, side: usize, rng: &mut engine::rng::Rng) -> (Sequential, usize) {
    // max-pool 2, conv 5 + max-pool 2, then a last conv 5 with no pool.
    let f = conv_pool(side / 2, 5);
    assert!(
        f >= 5,
        "model: a {side}×{side} input is too small for the localisation net"
    );
    let f = f - 4;
    let net = Sequential::new()
        .push(MaxPool2d::new(2))
        .push(Conv2d::new("conv1", c, 20, 5, rng))
        .push(MaxPool2d::new(2).after_relu())
        .push(Conv2d::new("conv2", 20, 20, 5, rng))
        .push(ReLU)
        .push(Flatten)
        .push(Linear::new("fc", 20 * f * f, 50, rng))
        .push(ReLU);
    (net, 50)
}

/// The ST-FCN localisation net of `c`-channel inputs; returns it and its
/// number of features.
pub(crate) fn fcn_loc(c: usize, side: usize, rng: &mut engine::rng::Rng) -> (Sequential, usize) {
    let net = Sequential::new()
        .push(Flatten)
        .push(Linear::new("fc1", c * side * side, 32, rng))
        .push(ReLU)
        .push(Linear::new("fc2", 32, 32, rng))
        .push(ReLU);
    (net, 32)
}

/// Builds a model by name for `side`×`side` single-channel inputs and 10
/// classes, with weights drawn from `seed`.
pub fn build_model(name: &str, side: usize, seed: u64) -> Result<Model, UnknownModel> {
    build_model_for(name, InputSpec::mnist(side), seed)
}

/// Builds a model by name for the inputs and classes of `input`, with
/// weights drawn from `seed`. Single-channel 10-class inputs give exactly
/// [`build_model`]'s models.
pub fn build_model_for(name: &str, input: InputSpec, seed: u64) -> Result<Model, UnknownModel> {
    if let Some(m) = crate::addition_models::build(name, input, seed)? {
        return Ok(m);
    }
    let unknown = || UnknownModel(name.to_string());
    let (c, side, k) = (input.channels, input.side, input.classes);
    let mut rng = seeded(seed);
    let (kind, transform) = match name {
        "fcn" | "cnn" => (name, None),
        _ => {
            let rest = name.strip_prefix("st-").ok_or_else(unknown)?;
            let (kind, t) = rest.split_once('-').ok_or_else(unknown)?;
            (kind, Some(lookup(t).ok_or_else(unknown)?))
        }
    };
    if kind != "fcn" && kind != "cnn" {
        return Err(unknown());
    }
    let (st, pool, cls_side) = match transform {
        None => (None, None, side),
        Some(t) => {
            let transform = (t.make)();
            let (loc, feats) = if kind == "cnn" {
                cnn_loc(c, side, &mut rng)
            } else {
                fcn_loc(c, side, &mut rng)
            };
            // Zoom in on large canvases, then average-pool ×2 (appendix A).
            let big = side > CLASSIFIER_SIDE;
            let out = if big { 2 * CLASSIFIER_SIDE } else { side };
            let st = SpatialTransformer::new(
                "st",
                Box::new(loc),
                feats,
                transform,
                [out, out],
                SampleOptions::default(),
            );
            let pool = big.then(|| AvgPool2d::new(2));
            (Some(st), pool, if big { CLASSIFIER_SIDE } else { side })
        }
    };
    let mut classifier = if kind == "cnn" {
        cnn(c, cls_side, k, &mut rng)
    } else {
        fcn(c, cls_side, fcn_hidden(cls_side), k, &mut rng)
    };
    classifier.add_prefix("cls");
    let model = Model {
        name: name.to_string(),
        input,
        st,
        parallel: None,
        pool,
        classifier,
    };
    layers::check_unique_names(&model.params());
    Ok(model)
}

impl Model {
    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Side of the input images.
    pub fn side(&self) -> usize {
        self.input.side
    }

    /// Channels, side and classes of the model.
    pub fn input(&self) -> InputSpec {
        self.input
    }

    /// The spatial transformer, if the model has exactly one.
    pub fn transformer(&self) -> Option<&SpatialTransformer> {
        self.st.as_ref()
    }

    /// Every spatial transformer of the model: none, its one, or the
    /// parallel ones in the order their outputs are concatenated.
    pub fn transformers(&self) -> Vec<&SpatialTransformer> {
        match (&self.st, &self.parallel) {
            (Some(st), _) => vec![st],
            (None, Some(p)) => p.branches().iter().collect(),
            (None, None) => Vec::new(),
        }
    }

    /// The forward pass, also returning each transformer's θ and output V
    /// (in the order of [`Model::transformers`]; empty without any).
    pub fn forward_branches(&self, x: &Var, ctx: &Ctx) -> (Var, Vec<(Var, Var)>) {
        let parts: Vec<(Var, Var)> = self
            .transformers()
            .iter()
            .map(|st| {
                let theta = st.theta(x, ctx);
                let v = st.sample(&st.sampled_input(x), &theta);
                (theta, v)
            })
            .collect();
        let h = match parts.len() {
            0 => x.clone(),
            1 => parts[0].1.clone(),
            _ => Var::concat(&parts.iter().map(|p| &p.1).collect::<Vec<_>>(), 1),
        };
        (self.classify(&h, ctx), parts)
    }

    /// The part after the transformer: average pool (if any) and classifier,
    /// applied to the transformer's output V (or the input, for models
    /// without one). Lets a caller make V, or the grid behind it, a leaf
    /// and read ∂L/∂V or ∂L/∂grid (pictures, diagnostics).
    pub fn classify(&self, v: &Var, ctx: &Ctx) -> Var {
        let h = match &self.pool {
            Some(p) => p.forward(v, ctx),
            None => v.clone(),
        };
        self.classifier.forward(&h, ctx)
    }

    /// The forward pass, also returning the transformer's output and θ
    /// (`None` for models without exactly one transformer: see
    /// [`Model::forward_branches`]).
    pub fn forward_parts(&self, x: &Var, ctx: &Ctx) -> (Var, Option<(Var, Var)>) {
        if self.parallel.is_some() {
            return (self.forward_branches(x, ctx).0, None);
        }
        let (h, parts) = match &self.st {
            Some(st) => {
                let theta = st.theta(x, ctx);
                let v = st.sample(&st.sampled_input(x), &theta);
                (v.clone(), Some((theta, v)))
            }
            None => (x.clone(), None),
        };
        (self.classify(&h, ctx), parts)
    }
}

impl Module for Model {
    fn forward(&self, x: &Var, ctx: &Ctx) -> Var {
        self.forward_parts(x, ctx).0
    }

    fn params(&self) -> Vec<&Param> {
        let mut parts: Vec<&dyn Module> = self.st.iter().map(|s| s as &dyn Module).collect();
        parts.extend(self.parallel.iter().map(|p| p as &dyn Module));
        parts.push(&self.classifier);
        layers::gather_params(&parts)
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        let mut p: Vec<&mut Param> = self.st.iter_mut().flat_map(|s| s.params_mut()).collect();
        p.extend(self.parallel.iter_mut().flat_map(|s| s.params_mut()));
        p.extend(self.classifier.params_mut());
        p
    }

    fn describe(&self) -> String {
        format!("Model {}", self.name)
    }

    fn output_shape(&self, input: &[usize]) -> Vec<usize> {
        let mut rows = Vec::new();
        self.table_rows(input, &mut rows)
    }

    fn table_rows(&self, input: &[usize], rows: &mut Vec<LayerRow>) -> Vec<usize> {
        let mut s = input.to_vec();
        if let Some(st) = &self.st {
            s = st.table_rows(&s, rows);
        }
        if let Some(p) = &self.parallel {
            s = p.table_rows(&s, rows);
        }
        if let Some(p) = &self.pool {
            s = p.table_rows(&s, rows);
        }
        self.classifier.table_rows(&s, rows)
    }
}
