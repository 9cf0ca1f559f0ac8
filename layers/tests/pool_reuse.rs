//! The buffer pool changes where memory comes from, never values: a second
//! pass on reused buffers, every one of them filled with NaN in between,
//! gives the first pass's bits (a buffer read before it is written would
//! turn up NaN or the old values).

use engine::pool;
use engine::{Tape, Tensor, Var};
use layers::conv::{conv2d_backward, conv2d_forward};
use layers::*;

#[test]
fn conv_forward_and_backward_are_bit_identical_on_reused_dirty_buffers() {
    // Padding (padded-input scratch), a partial chunk (19 = 16 + 3), output
    // channels padded to the kernel's width (40 → 48), every gradient, and
    // ∂W large enough (40·16·3·3 values) to come from the pool.
    let mut rng = engine::rng::seeded(7);
    let x = Tensor::normal(&[19, 16, 10, 10], 0.0, 1.0, &mut rng);
    let w = Tensor::normal(&[40, 16, 3, 3], 0.0, 1.0, &mut rng);
    let b = Tensor::normal(&[40], 0.0, 1.0, &mut rng);
    let g = Tensor::normal(&[19, 40, 10, 10], 0.0, 1.0, &mut rng);
    let run = || {
        let y = conv2d_forward(&x, &w, Some(&b), 1, 1);
        let (dx, dw, db) = conv2d_backward(&x, &w, &g, 1, 1, [true, true, true]);
        let all = [y, dx.unwrap(), dw.unwrap(), db.unwrap()];
        all.iter().map(Tensor::bits).collect::<Vec<_>>()
    };
    let (first, second) = pool::run_twice_on_poisoned(run);
    assert!(first[0].iter().all(|&v| !f32::from_bits(v).is_nan()));
    assert_eq!(first, second);
}

#[test]
fn a_small_network_step_is_bit_identical_on_reused_dirty_buffers() {
    let mut rng = engine::rng::seeded(3);
    let net = Sequential::new()
        .push(Conv2d::new("conv", 1, 8, 3, &mut rng).padding(1))
        .push(ReLU)
        .push(MaxPool2d::new(2))
        .push(Flatten)
        .push(Linear::new("fc", 8 * 8 * 8, 10, &mut rng));
    let x = Tensor::normal(&[40, 1, 16, 16], 0.0, 1.0, &mut rng);
    let labels: Vec<usize> = (0..40).map(|i| i % 10).collect();
    let run = || {
        let tape = Tape::new();
        let ctx = Ctx::train(&tape, 0, 0);
        let logits = net.forward(&Var::constant(x.clone()), &ctx);
        let loss = cross_entropy(&logits, &labels);
        let grads = loss.backward();
        let mut out = vec![loss.value().bits()];
        out.extend(
            ctx.gradients(&grads, &net.params())
                .iter()
                .map(Tensor::bits),
        );
        out
    };
    let (first, second) = pool::run_twice_on_poisoned(run);
    assert_eq!(first.len(), 5);
    assert_eq!(first, second);
}
