//! Softmax cross-entropy (fused) and accuracy.
//!
//! For logits z (N×K) and labels y (N), with the log-sum-exp taken stably
//! (`lse(z) = m + ln Σ_k e^(z_k − m)`, m = max_k z_k):
//!
//! Forward: `L = (1/N) Σ_n (lse(z_n) − z_n[y_n])`.
//! Backward: `∂L/∂z_n = g · (softmax(z_n) − onehot(y_n)) / N`.
//!
//! With label smoothing ε ([`cross_entropy_smoothed`]) the target is
//! `q = (1 − ε)·onehot(y) + ε/K`:
//! `L = (1/N) Σ_n (lse(z_n) − (1 − ε)·z_n[y_n] − (ε/K)·Σ_k z_n[k])` and
//! `∂L/∂z_n = g · (softmax(z_n) − q_n) / N`; ε = 0 is [`cross_entropy`], bit for bit.
//!
//! The per-sample losses are summed in f64 in sample order (deterministic).

use engine::pool::{self, Pooled};
use engine::{Tensor, Var};

/// Mean softmax cross-entropy of `logits` (N×K) against `labels` (N).
///
/// # Panics
/// If the shapes do not fit or a label is ≥ K.
pub fn cross_entropy(logits: &Var, labels: &[usize]) -> Var {
    cross_entropy_smoothed(logits, labels, 0.0)
}

/// Mean softmax cross-entropy of `logits` (N×K) against `labels` (N) with
/// label smoothing `eps` (the target puts 1 − ε + ε/K on the label and ε/K
/// on every other class).
///
/// # Panics
/// If the shapes do not fit, a label is ≥ K, or `eps` is not in [0, 1].
pub fn cross_entropy_smoothed(logits: &Var, labels: &[usize], eps: f32) -> Var {
    assert!(
        (0.0..=1.0).contains(&eps),
        "cross_entropy_smoothed: eps {eps} is not in [0, 1]"
    );
    let s = logits.shape();
    assert!(
        s.len() == 2 && s[0] == labels.len() && s[0] > 0,
        "cross_entropy: logits {s:?} and {} labels do not fit (need N×K, N > 0)",
        labels.len()
    );
    let (n, k) = (s[0], s[1]);
    if let Some(&bad) = labels.iter().find(|&&l| l >= k) {
        panic!("cross_entropy: label {bad} out of range for logits {s:?}");
    }
    let z = logits.value().data();
    // Softmax probabilities, kept for the backward (every value written;
    // back to the pool when the tape drops the backward).
    let mut prob = Pooled::new(pool::take_for_overwrite(n * k));
    let mut total = 0.0f64;
    for (i, (zr, pr)) in z.chunks(k).zip(prob.chunks_mut(k)).enumerate() {
        let m = zr.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f32;
        for (p, &v) in pr.iter_mut().zip(zr) {
            *p = (v - m).exp();
            sum += *p;
        }
        for p in pr.iter_mut() {
            *p /= sum;
        }
        let lse = m + sum.ln();
        total += if eps == 0.0 {
            (lse - zr[labels[i]]) as f64
        } else {
            let mean = zr.iter().map(|&v| v as f64).sum::<f64>() / k as f64;
            lse as f64 - (1.0 - eps as f64) * zr[labels[i]] as f64 - eps as f64 * mean
        };
    }
    let loss = Tensor::scalar((total / n as f64) as f32);
    let labels = labels.to_vec();
    Var::custom_op("cross_entropy", &[logits], loss, move |g, _| {
        let scale = g.item() / n as f32;
        let mut d = pool::take_empty(prob.len());
        d.extend_from_slice(&prob);
        let off = eps / k as f32;
        for (i, row) in d.chunks_mut(k).enumerate() {
            if eps != 0.0 {
                row.iter_mut().for_each(|v| *v -= off);
            }
            row[labels[i]] -= 1.0 - eps;
            for v in row.iter_mut() {
                *v *= scale;
            }
        }
        vec![Some(Tensor::from_vec(d, &[n, k]))]
    })
}

/// Arg-max class of each row of `logits` (N×K); ties go to the lowest class.
pub fn predictions(logits: &Tensor) -> Vec<usize> {
    let s = logits.shape();
    assert!(s.len() == 2, "predictions: logits {s:?} must be N×K");
    logits
        .data()
        .chunks(s[1].max(1))
        .map(|r| {
            let mut best = 0;
            for (j, &v) in r.iter().enumerate() {
                if v > r[best] {
                    best = j;
                }
            }
            best
        })
        .collect()
}

/// Number of rows whose arg-max equals the label.
pub fn correct_count(logits: &Tensor, labels: &[usize]) -> usize {
    let p = predictions(logits);
    assert!(
        p.len() == labels.len(),
        "correct_count: {} rows of logits, {} labels",
        p.len(),
        labels.len()
    );
    p.iter().zip(labels).filter(|(a, b)| a == b).count()
}

/// Fraction of rows whose arg-max equals the label (0 for an empty batch).
pub fn accuracy(logits: &Tensor, labels: &[usize]) -> f32 {
    if labels.is_empty() {
        return 0.0;
    }
    correct_count(logits, labels) as f32 / labels.len() as f32
}
