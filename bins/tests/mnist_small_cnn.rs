//! A small CNN trained briefly on real MNIST reaches far above chance.
//!
//! 5000 training images, 4 epochs of Adam, tested on the first 1000 test
//! images; runs in seconds in the test profile.

use datasets::mnist::{load_mnist, Mnist, Split};
use engine::{Tape, Tensor, Var};
use layers::*;

fn pixels(d: &Mnist) -> Vec<f32> {
    d.images
        .iter()
        .map(|&p| (p as f32 / 255.0 - 0.1307) / 0.3081)
        .collect()
}

fn batch(px: &[f32], labels: &[u8], idx: &[usize]) -> (Tensor, Vec<usize>) {
    let mut x = Vec::with_capacity(idx.len() * 784);
    for &i in idx {
        x.extend_from_slice(&px[i * 784..(i + 1) * 784]);
    }
    let y = idx.iter().map(|&i| labels[i] as usize).collect();
    (Tensor::from_vec(x, &[idx.len(), 1, 28, 28]), y)
}

#[test]
fn small_cnn_learns_mnist() {
    let dir = datasets::mnist::default_data_dir();
    let train = load_mnist(&dir, Split::Train)
        .expect("MNIST train split")
        .take(5000);
    let test = load_mnist(&dir, Split::Test)
        .expect("MNIST test split")
        .take(1000);
    let (train_px, test_px) = (pixels(&train), pixels(&test));

    let seed = 3;
    let mut rng = engine::rng::seeded(seed);
    let mut net = Sequential::new()
        .push(Conv2d::new("conv1", 1, 8, 5, &mut rng))
        .push(ReLU)
        .push(MaxPool2d::new(2))
        .push(Conv2d::new("conv2", 8, 16, 5, &mut rng))
        .push(ReLU)
        .push(MaxPool2d::new(2))
        .push(Flatten)
        .push(Linear::with_init(
            "fc",
            256,
            10,
            &Init::XavierUniform,
            &Init::Zeros,
            &mut rng,
        ));
    let mut opt = Adam::new();
    let sched = Schedule::cosine(3e-3, 4 * 5000 / 32, 1e-4).with_warmup(20);

    let mut step = 0;
    for epoch in 0..4 {
        for idx in epoch_order(seed, epoch, train.len()).chunks_exact(32) {
            let (x, y) = batch(&train_px, &train.labels, idx);
            let tape = Tape::new();
            let ctx = Ctx::train(&tape, seed, step);
            let loss = cross_entropy(&net.forward(&Var::constant(x), &ctx), &y);
            let grads = ctx.gradients(&loss.backward(), &net.params());
            opt.step(&mut net.params_mut(), &grads, sched.lr(step))
                .unwrap();
            step += 1;
        }
    }

    let idx: Vec<usize> = (0..test.len()).collect();
    let (x, y) = batch(&test_px, &test.labels, &idx);
    let logits = net.forward(&Var::constant(x), &Ctx::eval());
    let acc = accuracy(logits.value(), &y);
    println!(
        "small CNN: test accuracy {:.1}% on {} images",
        100.0 * acc,
        y.len()
    );
    assert!(acc >= 0.90, "test accuracy {acc}");
}
