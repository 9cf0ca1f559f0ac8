//! The MNIST-addition models (appendix A.1; see `../shared/PAPER.md`): two
//! spatial transformers in parallel.
//!
//! | name              | network                                                         |
//! |-------------------|-----------------------------------------------------------------|
//! | `2st-fcn-*`       | two transformers (FC localisation nets) → concat → the FCN      |
//! | `2st-cnn-*`       | two transformers (conv localisation nets) → concat → the CNN    |
//! | `2stc-fcn-*`, `2stc-cnn-*` | the same, but transformer k samples channel k only      |
//! | `st-*` (C > 1)    | one transformer, sampling as below, → the FCN or CNN            |
//! | `fcn` (C > 1)     | the FCN, its hidden width matched to `2st-fcn-aff`'s parameters |
//!
//! Each transformer's localisation net sees every input channel and its
//! regression head starts at the identity; each warps every channel alike,
//! straight to the classifier's 28×28 (on the addition task's 2×42×42 input
//! each outputs 2×28×28), and the two outputs are concatenated on channels:
//! the classifier sees 4×28×28, as in the public reimplementation that
//! reached 8.8% with two affine transformers. (Table 1's single-channel
//! models sample 56×56 and average-pool ×2 instead; sampling 28×28 directly
//! makes the two-transformer FCN twice as fast, hence twice the epochs in a
//! budget.) Training decides which digit each transformer attends to. In
//! the `2stc-*` models each transformer still sees both channels but
//! samples one (transformer k channel k mod C), so the classifier sees
//! 2×28×28, one warped digit per transformer: the reading of the
//! appendix ("each sees both channels, outputs one"). On the validation
//! split it learns far faster (docs/results/recipe.md). `cnn`
//! on several channels is the CNN of [`crate::models`] with C input
//! channels.

use crate::layer::{ParallelTransformers, SpatialTransformer};
use crate::models::{
    cnn, cnn_loc, fcn, fcn_hidden, fcn_loc, InputSpec, Model, UnknownModel, CLASSIFIER_SIDE,
};
use crate::transforms::{lookup, REGISTRY};
use crate::SampleOptions;
use engine::rng::seeded;
use layers::Module;

/// Number of transformers of the `2st-*` models.
pub const BRANCHES: usize = 2;

/// Prefix of the names of the models with [`BRANCHES`] transformers.
pub const PARALLEL_PREFIX: &str = "2st-";

/// Prefix of the models with [`BRANCHES`] transformers each sampling one
/// input channel (transformer b channel b mod C; their localisation nets
/// see every channel), so the classifier sees one warped digit per
/// transformer.
pub const SPLIT_PREFIX: &str = "2stc-";

/// `2st-fcn-<t>`, `2st-cnn-<t>`, then the same with [`SPLIT_PREFIX`], for
/// every registered transform `t`.
pub fn parallel_model_names() -> Vec<String> {
    let mut v = Vec::new();
    for prefix in [PARALLEL_PREFIX, SPLIT_PREFIX] {
        for kind in ["fcn", "cnn"] {
            v.extend(
                REGISTRY
                    .iter()
                    .map(|r| format!("{prefix}{kind}-{}", r.short)),
            );
        }
    }
    v
}

/// The models this file builds: `2st-*` on any input, and `st-*` and the
/// FCN on inputs with several channels. `None` for every other name (built
/// by [`crate::models::build_model_for`]).
pub(crate) fn build(
    name: &str,
    input: InputSpec,
    seed: u64,
) -> Result<Option<Model>, UnknownModel> {
    if let Some(rest) = name.strip_prefix(PARALLEL_PREFIX) {
        return with_transformers(name, rest, input, seed, BRANCHES, false).map(Some);
    }
    if let Some(rest) = name.strip_prefix(SPLIT_PREFIX) {
        return with_transformers(name, rest, input, seed, BRANCHES, true).map(Some);
    }
    if input.channels > 1 {
        if let Some(rest) = name.strip_prefix("st-") {
            return with_transformers(name, rest, input, seed, 1, false).map(Some);
        }
        if name == "fcn" {
            return Ok(Some(matched_fcn(input, seed)));
        }
    }
    Ok(None)
}

/// `<kind>-<t>` behind `count` transformers in parallel (one: a plain
/// transformer named `st`), each sampling one channel if `split`, then the
/// classifier.
fn with_transformers(
    name: &str,
    rest: &str,
    input: InputSpec,
    seed: u64,
    count: usize,
    split: bool,
) -> Result<Model, UnknownModel> {
    let unknown = || UnknownModel(name.to_string());
    let (kind, t) = rest.split_once('-').ok_or_else(unknown)?;
    let t = lookup(t).ok_or_else(unknown)?;
    if kind != "fcn" && kind != "cnn" {
        return Err(unknown());
    }
    let InputSpec {
        channels: c,
        side,
        classes: k,
    } = input;
    let mut rng = seeded(seed);
    // Straight to the classifier's side on large canvases (see above).
    let out = side.min(CLASSIFIER_SIDE);
    let mut branches: Vec<SpatialTransformer> = (1..=count)
        .map(|b| {
            let (loc, feats) = if kind == "cnn" {
                cnn_loc(c, side, &mut rng)
            } else {
                fcn_loc(c, side, &mut rng)
            };
            let st_name = if count == 1 {
                "st".to_string()
            } else {
                format!("st{b}")
            };
            let st = SpatialTransformer::new(
                &st_name,
                Box::new(loc),
                feats,
                (t.make)(),
                [out, out],
                SampleOptions::default(),
            );
            if split {
                st.sampling_channel((b - 1) % c)
            } else {
                st
            }
        })
        .collect();
    let cls_c = if split { count } else { count * c };
    let mut classifier = if kind == "cnn" {
        cnn(cls_c, out, k, &mut rng)
    } else {
        fcn(cls_c, out, fcn_hidden(out), k, &mut rng)
    };
    classifier.add_prefix("cls");
    let (st, parallel) = if count == 1 {
        (branches.pop(), None)
    } else {
        (None, Some(ParallelTransformers::new(branches)))
    };
    let model = Model {
        name: name.to_string(),
        input,
        st,
        parallel,
        pool: None,
        classifier,
    };
    layers::check_unique_names(&model.params());
    Ok(model)
}

/// Parameters of an FCN on `d` inputs with `h` hidden units and `k` classes.
fn fcn_params(d: usize, h: usize, k: usize) -> usize {
    (d + 1) * h + (h + 1) * h + (h + 1) * k
}

/// Hidden width of the multi-channel FCN: the smallest whose parameter
/// count reaches that of `2st-fcn-aff` on the same input (as in the paper,
/// every model has about the same number of parameters).
pub fn matched_fcn_hidden(input: InputSpec) -> usize {
    let target = with_transformers("2st-fcn-aff", "fcn-aff", input, 0, BRANCHES, false)
        .map(|m| layers::param_count(&m))
        .unwrap_or(0);
    let d = input.channels * input.side * input.side;
    let mut h = 16;
    while fcn_params(d, h, input.classes) < target {
        h += 1;
    }
    h
}

/// The FCN on a multi-channel input, sized by [`matched_fcn_hidden`].
fn matched_fcn(input: InputSpec, seed: u64) -> Model {
    let mut rng = seeded(seed);
    let h = matched_fcn_hidden(input);
    let mut classifier = fcn(input.channels, input.side, h, input.classes, &mut rng);
    classifier.add_prefix("cls");
    Model {
        name: "fcn".to_string(),
        input,
        st: None,
        parallel: None,
        pool: None,
        classifier,
    }
}
