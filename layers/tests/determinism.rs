//! Bit-identical training for any number of threads.

use engine::{Tape, Tensor, Var};
use layers::conv::{conv2d_backward, conv2d_forward};
use layers::*;

fn pool(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .unwrap()
}

/// Synthetic 2-class images: class 1 has a bright 3×3 blob in the left
/// half, class 0 in the right half, plus noise. All from the seed.
fn synthetic(seed: u64, n: usize) -> (Vec<f32>, Vec<usize>) {
    let noise = Tensor::normal(&[n, 1, 10, 10], 0.0, 0.3, &mut engine::rng::seeded(seed));
    let mut x = noise.to_vec();
    let mut labels = Vec::new();
    for i in 0..n {
        let label = i % 2;
        let (cy, cx) = (
            1 + (i * 7) % 6,
            if label == 1 { 1 + i % 3 } else { 6 + i % 3 },
        );
        for dy in 0..3 {
            for dx in 0..3 {
                x[i * 100 + (cy + dy) * 10 + cx + dx] += 1.0;
            }
        }
        labels.push(label);
    }
    (x, labels)
}

fn small_net(seed: u64) -> Sequential {
    let mut rng = engine::rng::derive(seed, &[1]);
    Sequential::new()
        .push(Conv2d::new("conv1", 1, 4, 3, &mut rng).padding(1))
        .push(ReLU)
        .push(MaxPool2d::new(2))
        .push(Conv2d::new("conv2", 4, 6, 3, &mut rng).stride(2))
        .push(ReLU)
        .push(AvgPool2d::new(2))
        .push(Flatten)
        .push(Dropout::new("drop", 0.25))
        .push(Linear::new("fc", 6, 2, &mut rng))
}

/// Trains for `steps` steps (batch 40: three conv chunks, the last partial),
/// returning every parameter, the final loss and the training accuracy.
fn train(seed: u64, steps: u64) -> (Vec<Tensor>, f32, f32) {
    let mut net = small_net(seed);
    let mut opt = Sgd::momentum(0.9).nesterov(true).weight_decay(1e-4);
    opt.set_clip_norm(Some(5.0));
    train_range(seed, &mut net, &mut opt, 0..steps, steps)
}

/// Runs steps `range` of a `total`-step schedule on `net` and `opt`.
fn train_range(
    seed: u64,
    net: &mut Sequential,
    opt: &mut dyn Optimizer,
    range: std::ops::Range<u64>,
    total: u64,
) -> (Vec<Tensor>, f32, f32) {
    let (x, y) = synthetic(seed, 200);
    let sched = Schedule::cosine(0.05, total, 0.0).with_warmup(10);
    let batch = 40;
    let per_epoch = 200 / batch;
    let mut last = 0.0;
    for step in range {
        let epoch = step / per_epoch as u64;
        let order = epoch_order(seed, epoch, 200);
        let j = (step as usize % per_epoch) * batch;
        let idx = &order[j..j + batch];
        let mut xb = Vec::with_capacity(batch * 100);
        for &i in idx {
            xb.extend_from_slice(&x[i * 100..(i + 1) * 100]);
        }
        let yb: Vec<usize> = idx.iter().map(|&i| y[i]).collect();
        let tape = Tape::new();
        let ctx = Ctx::train(&tape, seed, step);
        let logits = net.forward(
            &Var::constant(Tensor::from_vec(xb, &[batch, 1, 10, 10])),
            &ctx,
        );
        let loss = cross_entropy(&logits, &yb);
        let grads = ctx.gradients(&loss.backward(), &net.params());
        opt.step(&mut net.params_mut(), &grads, sched.lr(step))
            .unwrap();
        last = loss.value().item();
    }
    let logits = net.forward(
        &Var::constant(Tensor::from_vec(x, &[200, 1, 10, 10])),
        &Ctx::eval(),
    );
    let acc = accuracy(logits.value(), &y);
    (
        net.params().iter().map(|p| p.value.clone()).collect(),
        last,
        acc,
    )
}

#[test]
fn training_is_bit_identical_on_one_and_two_threads() {
    let (w1, loss1, acc1) = pool(1).install(|| train(7, 300));
    let (w2, loss2, acc2) = pool(2).install(|| train(7, 300));
    assert_eq!(loss1.to_bits(), loss2.to_bits());
    for (a, b) in w1.iter().zip(&w2) {
        let (a, b) = (a.data(), b.data());
        assert!(a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()));
    }
    // And it actually learned the task.
    assert!(acc1 > 0.9, "accuracy {acc1}, loss {loss1}");
    assert_eq!(acc1, acc2);
    // A different seed gives different weights.
    let (w3, _, _) = pool(2).install(|| train(8, 5));
    assert_ne!(w3[0], w1[0]);
}

#[test]
fn conv_backward_is_bit_identical_across_thread_counts() {
    let mut rng = engine::rng::seeded(11);
    let x = Tensor::normal(&[53, 3, 12, 11], 0.0, 1.0, &mut rng);
    let w = Tensor::normal(&[5, 3, 3, 3], 0.0, 1.0, &mut rng);
    let b = Tensor::normal(&[5], 0.0, 1.0, &mut rng);
    let run = || {
        let y = conv2d_forward(&x, &w, Some(&b), 2, 1);
        let g = y.map(|v| v.sin());
        let (dx, dw, db) = conv2d_backward(&x, &w, &g, 2, 1, [true, true, true]);
        (y, dx.unwrap(), dw.unwrap(), db.unwrap())
    };
    let r1 = pool(1).install(run);
    for n in [2, 3] {
        let r = pool(n).install(run);
        assert_eq!(r.0.data(), r1.0.data());
        assert_eq!(r.1.data(), r1.1.data());
        assert_eq!(r.2.data(), r1.2.data());
        assert_eq!(r.3.data(), r1.3.data());
    }
}

#[test]
fn resuming_from_a_checkpoint_continues_bit_identically() {
    let seed = 5;
    let (straight, loss, _) = train_range(seed, &mut small_net(seed), &mut Adam::new(), 0..60, 60);

    let mut net = small_net(seed);
    let mut opt = Adam::new();
    train_range(seed, &mut net, &mut opt, 0..25, 60);
    let path = std::env::temp_dir().join(format!("layers-resume-{}.ckpt", std::process::id()));
    Checkpoint::new(25, 5, "{}")
        .with_params(&net.params())
        .with_optimizer(&opt)
        .with_word("seed", seed)
        .save(&path)
        .unwrap();
    drop((net, opt));

    let ck = Checkpoint::load(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let seed = ck.word("seed").unwrap();
    // A differently initialised net: everything must come from the file.
    let mut net = small_net(seed + 1);
    let mut opt = Adam::new();
    ck.restore_params(&mut net.params_mut()).unwrap();
    ck.restore_optimizer(&mut opt, &net.params()).unwrap();
    let (resumed, loss2, _) = train_range(seed, &mut net, &mut opt, ck.step..60, 60);
    assert_eq!(loss.to_bits(), loss2.to_bits());
    assert_eq!(straight, resumed);
}
