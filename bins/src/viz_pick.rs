//! Which test images `warpgrad viz` draws (`--pick`).
//!
//! A well-trained model is sure of almost every test digit (p ≈ 1.00), and
//! there ∂L/∂grid is close to zero: its arrows only show after a scale-up of
//! 10⁴–10⁶ and are mostly rounding noise. The digits that teach are the ones
//! the model gets wrong or hesitates on, where the loss still has a slope.

use crate::error::{msg, CliError};
use engine::rng::derive;
use engine::{Tensor, Var};
use layers::{Ctx, Module};
use rand::seq::SliceRandom;
use stn::Model;

/// How `viz` chooses its test images among the candidates (`--start` on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Pick {
    /// The first `--count` images from `--start` (the default: the same
    /// pictures whatever the model).
    First,
    /// Misclassified images, most confidently wrong first (lowest
    /// probability of the true label).
    Misclassified,
    /// The images the model is least sure of (lowest probability of its
    /// prediction), right or wrong.
    LowConfidence,
    /// A uniformly random sample, drawn from `--seed`, in index order.
    Random,
}

/// Stream key of `--pick random`.
const PICK_STREAM: u64 = 0x7069;
/// Images per forward pass when ranking.
const CHUNK: usize = 500;

/// Softmax probabilities of every row of `images` (N×1×S×S), evaluation mode.
pub fn probabilities(model: &Model, images: &Tensor) -> Vec<Vec<f32>> {
    let n = images.shape()[0];
    let mut out = Vec::with_capacity(n);
    let ctx = Ctx::eval();
    let mut start = 0;
    while start < n {
        let len = CHUNK.min(n - start);
        let logits = model.forward(&Var::constant(images.narrow(0, start, len)), &ctx);
        let l = logits.value();
        let k = l.shape()[1];
        for row in l.data().chunks(k) {
            out.push(crate::viz::softmax(row));
        }
        start += len;
    }
    out
}

/// The positions (into `0..labels.len()`) to draw, in drawing order, for
/// the rankings that need the model's probabilities `probs`.
///
/// # Errors
/// `Misclassified` when the candidates hold no misclassified image.
pub fn rank(
    pick: Pick,
    probs: &[Vec<f32>],
    labels: &[u8],
    count: usize,
) -> Result<Vec<usize>, CliError> {
    let pred = |p: &[f32]| {
        // The first maximum, as `layers::predictions`.
        let mut best = 0;
        for (k, &v) in p.iter().enumerate() {
            if v > p[best] {
                best = k;
            }
        }
        best
    };
    let mut keyed: Vec<(f32, usize)> = match pick {
        Pick::Misclassified => probs
            .iter()
            .zip(labels)
            .enumerate()
            .filter(|(_, (p, &l))| pred(p) != l as usize)
            .map(|(i, (p, &l))| (p[l as usize], i))
            .collect(),
        Pick::LowConfidence => probs
            .iter()
            .enumerate()
            .map(|(i, p)| (p[pred(p)], i))
            .collect(),
        Pick::First | Pick::Random => (0..count.min(labels.len())).map(|i| (0.0, i)).collect(),
    };
    if keyed.is_empty() {
        return Err(msg(format!(
            "--pick misclassified: the model classifies all {} candidate test images correctly; try --pick low-confidence or a larger --pool",
            labels.len()
        )));
    }
    // Ascending probability; ties by position, so the order is total.
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    Ok(keyed.into_iter().take(count).map(|(_, i)| i).collect())
}

/// `count` of the `n` candidates drawn at random from `seed`, ascending.
pub fn random(n: usize, count: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut derive(seed, &[PICK_STREAM]));
    idx.truncate(count);
    idx.sort_unstable();
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misclassified_come_most_confidently_wrong_first() {
        // Labels 0; rows 1 and 3 are wrong, row 3 more confidently.
        let probs = vec![
            vec![0.9, 0.1],
            vec![0.4, 0.6],
            vec![0.6, 0.4],
            vec![0.1, 0.9],
        ];
        let labels = [0u8; 4];
        assert_eq!(
            rank(Pick::Misclassified, &probs, &labels, 8).unwrap(),
            [3, 1]
        );
        assert_eq!(rank(Pick::Misclassified, &probs, &labels, 1).unwrap(), [3]);
        // Least sure of its prediction: rows 1 and 2 (0.6), then 0 and 3.
        assert_eq!(
            rank(Pick::LowConfidence, &probs, &labels, 4).unwrap(),
            [1, 2, 0, 3]
        );
        assert_eq!(rank(Pick::First, &probs, &labels, 3).unwrap(), [0, 1, 2]);
        let e = rank(Pick::Misclassified, &probs[..1], &labels[..1], 2).unwrap_err();
        assert!(e.to_string().contains("--pick misclassified"), "{e}");
    }

    #[test]
    fn random_picks_are_seeded_distinct_and_sorted() {
        let a = random(100, 8, 1);
        assert_eq!(a, random(100, 8, 1));
        assert_ne!(a, random(100, 8, 2));
        assert!(a.windows(2).all(|w| w[0] < w[1]), "{a:?}");
        assert!(a.iter().all(|&i| i < 100));
        assert_eq!(random(3, 8, 1), [0, 1, 2]);
    }
}
