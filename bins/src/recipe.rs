//! Training recipes: named sets of training-procedure settings that
//! `warpgrad train --recipe NAME` starts from (any flag given explicitly
//! overrides the recipe's value). docs/results/recipe.md shows how the
//! default recipe was chosen.

/// The training-procedure settings a recipe fixes.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipe {
    /// Name given to `--recipe`.
    pub name: &'static str,
    /// One line for `--help` and the docs.
    pub about: &'static str,
    /// Passes over the training set; `None`: the `full` budget of the data
    /// set and model ([`full_epochs`]).
    pub epochs: Option<u64>,
    /// Images per step.
    pub batch_size: usize,
    /// Base (peak) learning rate.
    pub lr: f32,
    /// Learning-rate multiplier of the localisation net.
    pub loc_lr: f32,
    /// Optimiser name (see `OPTIMIZERS`).
    pub optimizer: &'static str,
    /// Schedule name (see `SCHEDULES`).
    pub schedule: &'static str,
    /// Linear warm-up steps.
    pub warmup: u64,
    /// Global gradient-norm clip (0: none).
    pub clip: f32,
    /// Decay of the weights' moving average (0: none).
    pub ema: f32,
    /// Label smoothing ε.
    pub label_smoothing: f32,
    /// Weight decay λ (decoupled for AdamW, L2 for SGD and Adam).
    pub weight_decay: f32,
}

/// The default recipe (see [`default_for`]).
const DEFAULT: Recipe = Recipe {
        name: "default",
        about: "Adam 3e-3, cosine with 200 warm-up steps, batch 64, localisation net at 0.3x, clip 10, label smoothing 0.1, the full budget's epochs",
        epochs: None,
        batch_size: 64,
        lr: 3e-3,
        loc_lr: 0.3,
        optimizer: "adam",
        schedule: "cosine",
        warmup: 200,
        clip: 10.0,
        ema: 0.0,
        label_smoothing: 0.1,
        weight_decay: 0.0,
    };

/// The recipes, the first being the default (see [`default_for`]).
pub const RECIPES: [Recipe; 3] = [
    DEFAULT,
    // The paper's appendix A: SGD, lr 0.01 divided by 10 every 50,000 of
    // 150,000 iterations, batch 256. 640 epochs of 60,000 digits are 150,400
    // steps (the last batch of an epoch is smaller), so "step" divides every
    // 50,133. The localisation net's tenth is the public reimplementations'
    // (the paper does not give one).
    Recipe {
        name: "paper",
        about: "the paper's: SGD 0.01 momentum 0.9, batch 256, x0.1 every third of 640 epochs (150,400 steps), localisation net at 0.1x",
        epochs: Some(640),
        batch_size: 256,
        lr: 0.01,
        loc_lr: 0.1,
        optimizer: "sgd",
        schedule: "step",
        warmup: 0,
        clip: 0.0,
        ema: 0.0,
        label_smoothing: 0.0,
        weight_decay: 0.0,
    },
    // MNIST addition (appendix A.1): the default recipe with the
    // localisation nets at lr 3e-4 (0.15 of 2e-3) and a longer warm-up. The
    // localisation rate decides these models (2st-fcn-proj, 60 epochs,
    // validation split: 62% error at 3e-5, 21% at 9e-5, 14% at 3e-4, 51% at
    // 1e-3); the classifier then gains from 2e-3 (12.4%) over 1e-3 (14.2%)
    // and 4e-3 (17.5%). docs/results/recipe.md has the table.
    Recipe {
        name: "addition",
        about: "the default recipe at lr 2e-3 with 2,000 warm-up steps, localisation nets at 0.15x (3e-4)",
        lr: 2e-3,
        loc_lr: 0.15,
        warmup: 2000,
        ..DEFAULT
    },
];

/// The recipe `warpgrad train` starts from when `--recipe` is not given:
/// `addition` on the MNIST-addition data set, `default` on every other.
pub fn default_for(dataset: &str) -> &'static str {
    if dataset.eq_ignore_ascii_case("addition") {
        "addition"
    } else {
        RECIPES[0].name
    }
}

/// Epochs of the `full` budget (the default recipe's and `reproduce table1
/// --budget full`'s) for a data set and model: about as many as keep a run at
/// 2 threads within 25 minutes on a 2-core AVX2 machine (AMD EPYC Zen 2,
/// images/s measured by `reproduce table1 --estimate`, docs/results/README.md),
/// where more epochs still lower the validation error:
///
/// - ST-CNN: 50 on RTS and TC (16–20 minutes); going from 20 to 50 on RTS
///   bought little (docs/results/recipe.md), so no more. 100 on R, P, E
///   (21–25 minutes at 4,000–4,700 images/s): on P, 100 epochs end at 1.85%
///   validation error against 2.13% for 40 (seed 1, docs/results/README.md).
/// - CNN: 25 on RTS and 10 on TC, whose convolutions over 42×42 and 60×60
///   pixels make it the slowest model; 100 on R, P, E (19 minutes), as the
///   ST-CNN there.
/// - FCN: 600 (9–18 minutes at 33,000–66,000 images/s): on RTS it still
///   underfits at 50 epochs (17.3% validation error, 81.6% training accuracy)
///   and reaches 14.2% at 200.
/// - ST-FCN: 200 (11–13 minutes for affine and projective on RTS), 150 for TPS
///   on the large canvases (6,500 images/s on RTS): 1.51% at 50 epochs on
///   RTS, lower at 200.
pub fn full_epochs(dataset: &str, model: &str) -> u64 {
    let dataset = dataset.to_ascii_lowercase();
    let large = dataset == "rts" || dataset == "tc";
    match (dataset.as_str(), model) {
        ("addition", m) => crate::reproduce_addition::full_epochs(m),
        (_, "fcn") => 600,
        (_, m) if m.starts_with("st-fcn-") => {
            if large && m.ends_with("-tps") {
                150
            } else {
                200
            }
        }
        ("rts", "cnn") => 25,
        ("tc", "cnn") => 10,
        _ if large => 50,
        _ => 100,
    }
}

/// The recipe called `name`, if any.
pub fn recipe(name: &str) -> Option<&'static Recipe> {
    RECIPES.iter().find(|r| r.name == name)
}

/// The recipe names, comma-separated (for messages).
pub fn names() -> String {
    RECIPES
        .iter()
        .map(|r| r.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_epochs_follow_each_models_speed() {
        assert_eq!(full_epochs("rts", "st-cnn-aff"), 50);
        assert_eq!(full_epochs("RTS", "cnn"), 25);
        assert_eq!(full_epochs("tc", "cnn"), 10);
        assert_eq!(full_epochs("p", "st-cnn-tps"), 100);
        assert_eq!(full_epochs("r", "cnn"), 100);
        assert_eq!(full_epochs("e", "fcn"), 600);
        assert_eq!(full_epochs("rts", "st-fcn-aff"), 200);
        assert_eq!(full_epochs("rts", "st-fcn-tps"), 150);
        assert_eq!(full_epochs("r", "st-fcn-tps"), 200);
    }

    #[test]
    fn the_addition_data_set_has_its_own_recipe() {
        assert_eq!(default_for("addition"), "addition");
        assert_eq!(default_for("rts"), "default");
        let r = recipe(default_for("Addition")).unwrap();
        let d = recipe("default").unwrap();
        // Its localisation nets train at a third of the default's 9e-4.
        assert!(r.lr * r.loc_lr < 0.5 * d.lr * d.loc_lr);
    }
}
