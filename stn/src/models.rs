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
//! head starts at the identity transform.
//!
//! On the larger canvases (RTS 42×42, TC 60×60) the transformer outputs 56×56
//! and is average-pooled ×2 (the transformer zooms in, then downsamples), so
//! the classifier always sees 28×28; the plain FCN and CNN see the canvas.

use crate::layer::SpatialTransformer;
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
        "Model: fcn, cnn, st-fcn-<t> or st-cnn-<t> with the transform <t> one of {} (`warpgrad info --list`)",
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

/// A classifier of single-channel square images, optionally behind a
/// spatial transformer.
pub struct Model {
    name: String,
    side: usize,
    st: Option<SpatialTransformer>,
    pool: Option<AvgPool2d>,
    classifier: Sequential,
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

/// The paper's CNN classifier for `side`×`side` inputs.
fn cnn(side: usize, rng: &mut engine::rng::Rng) -> Sequential {
    let f = conv_pool(conv_pool(side, 9), 7);
    Sequential::new()
        .push(Conv2d::new("conv1", 1, 32, 9, rng))
        .push(ReLU)
        .push(MaxPool2d::new(2))
        .push(Conv2d::new("conv2", 32, 64, 7, rng))
        .push(ReLU)
        .push(MaxPool2d::new(2))
        .push(Flatten)
        .push(Linear::new("fc", 64 * f * f, 10, rng))
}

/// The FCN classifier for `side`×`side` inputs.
/// Hidden units scale as 128·(28/side)², so the FCN keeps about 100–120k
/// parameters on every canvas, like the other models (as in the paper).
fn fcn(side: usize, rng: &mut engine::rng::Rng) -> Sequential {
    let h = (128 * CLASSIFIER_SIDE * CLASSIFIER_SIDE / (side * side)).max(16);
    Sequential::new()
        .push(Flatten)
        .push(Linear::new("fc1", side * side, h, rng))
        .push(ReLU)
        .push(Linear::new("fc2", h, h, rng))
        .push(ReLU)
        .push(Linear::new("fc3", h, 10, rng))
}

/// The ST-CNN localisation net; returns it and its number of features.
fn cnn_loc(side: usize, rng: &mut engine::rng::Rng) -> (Sequential, usize) {
    // max-pool 2, conv 5 + max-pool 2, then a last conv 5 with no pool.
    let f = conv_pool(side / 2, 5);
    assert!(
        f >= 5,
        "model: a {side}×{side} input is too small for the localisation net"
    );
    let f = f - 4;
    let net = Sequential::new()
        .push(MaxPool2d::new(2))
        .push(Conv2d::new("conv1", 1, 20, 5, rng))
        .push(ReLU)
        .push(MaxPool2d::new(2))
        .push(Conv2d::new("conv2", 20, 20, 5, rng))
        .push(ReLU)
        .push(Flatten)
        .push(Linear::new("fc", 20 * f * f, 50, rng))
        .push(ReLU);
    (net, 50)
}

/// The ST-FCN localisation net; returns it and its number of features.
fn fcn_loc(side: usize, rng: &mut engine::rng::Rng) -> (Sequential, usize) {
    let net = Sequential::new()
        .push(Flatten)
        .push(Linear::new("fc1", side * side, 32, rng))
        .push(ReLU)
        .push(Linear::new("fc2", 32, 32, rng))
        .push(ReLU);
    (net, 32)
}

/// Builds a model by name for `side`×`side` single-channel inputs, with
/// weights drawn from `seed`.
pub fn build_model(name: &str, side: usize, seed: u64) -> Result<Model, UnknownModel> {
    let unknown = || UnknownModel(name.to_string());
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
                cnn_loc(side, &mut rng)
            } else {
                fcn_loc(side, &mut rng)
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
        cnn(cls_side, &mut rng)
    } else {
        fcn(cls_side, &mut rng)
    };
    classifier.add_prefix("cls");
    let model = Model {
        name: name.to_string(),
        side,
        st,
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
        self.side
    }

    /// The spatial transformer, if the model has one.
    pub fn transformer(&self) -> Option<&SpatialTransformer> {
        self.st.as_ref()
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

    /// The forward pass, also returning the transformer's output and θ.
    pub fn forward_parts(&self, x: &Var, ctx: &Ctx) -> (Var, Option<(Var, Var)>) {
        let (h, parts) = match &self.st {
            Some(st) => {
                let theta = st.theta(x, ctx);
                let v = st.sample(x, &theta);
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
        parts.push(&self.classifier);
        layers::gather_params(&parts)
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        let mut p: Vec<&mut Param> = self.st.iter_mut().flat_map(|s| s.params_mut()).collect();
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
        if let Some(p) = &self.pool {
            s = p.table_rows(&s, rows);
        }
        self.classifier.table_rows(&s, rows)
    }
}
