//! The paper's baseline CNN on plain MNIST.
//!
//! conv 9×9 1→32 → ReLU → max-pool 2 → conv 7×7 32→64 → ReLU → max-pool 2 →
//! FC 256→10 (three weight layers, stride 1, no padding), softmax
//! cross-entropy. Trained with SGD + Nesterov momentum and a cosine schedule
//! with linear warm-up (the paper's 150k-iteration schedule is far longer
//! than plain MNIST needs). Prints per-epoch test accuracy, wall time and
//! training images/s.
//!
//! ```text
//! cargo run --release -p warpgrad-cli --example mnist_cnn -- --epochs 12
//! RAYON_NUM_THREADS=1 cargo run --release -p warpgrad-cli --example mnist_cnn -- --max-steps 100
//! ```

use clap::Parser;
use datasets::mnist::{load_mnist, Mnist, Split};
use engine::{Tape, Tensor, Var};
use layers::*;
use std::path::PathBuf;
use std::time::Instant;

/// MNIST pixel mean and standard deviation (of the training set, in [0, 1]).
const MEAN: f32 = 0.1307;
const STD: f32 = 0.3081;

#[derive(Parser, Debug, serde::Serialize)]
struct Args {
    /// Epochs over the training set.
    #[arg(long, default_value_t = 12)]
    epochs: u64,
    /// Mini-batch size.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 0.05)]
    lr: f32,
    /// Momentum (Nesterov).
    #[arg(long, default_value_t = 0.9)]
    momentum: f32,
    /// L2 weight decay.
    #[arg(long, default_value_t = 5e-4)]
    weight_decay: f32,
    /// Dropout before the classifier (0: none, as in the paper).
    #[arg(long, default_value_t = 0.0)]
    dropout: f32,
    /// Warm-up steps.
    #[arg(long, default_value_t = 300)]
    warmup: u64,
    /// Seed of initialisation, data order and dropout.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Use only the first N training images.
    #[arg(long)]
    train_limit: Option<usize>,
    /// Stop after this many steps (for measuring the rate).
    #[arg(long)]
    max_steps: Option<u64>,
    /// MNIST folder.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Write a checkpoint here at the end of every epoch.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Only evaluate the parameters of this checkpoint on the test set.
    #[arg(long)]
    eval_checkpoint: Option<PathBuf>,
}

/// The paper's CNN.
fn model(seed: u64, dropout: f32) -> Sequential {
    let mut rng = engine::rng::derive(seed, &[0x1417]);
    let mut m = Sequential::new()
        .push(Conv2d::new("conv1", 1, 32, 9, &mut rng))
        .push(ReLU)
        .push(MaxPool2d::new(2))
        .push(Conv2d::new("conv2", 32, 64, 7, &mut rng))
        .push(ReLU)
        .push(MaxPool2d::new(2))
        .push(Flatten);
    if dropout > 0.0 {
        m = m.push(Dropout::new("drop", dropout));
    }
    m.push(Linear::with_init(
        "fc",
        256,
        10,
        &Init::XavierUniform,
        &Init::Zeros,
        &mut rng,
    ))
}

/// Normalised f32 pixels.
fn pixels(d: &Mnist) -> Vec<f32> {
    d.images
        .iter()
        .map(|&p| (p as f32 / 255.0 - MEAN) / STD)
        .collect()
}

fn batch(px: &[f32], labels: &[u8], idx: &[usize]) -> (Tensor, Vec<usize>) {
    let mut x = Vec::with_capacity(idx.len() * 784);
    for &i in idx {
        x.extend_from_slice(&px[i * 784..(i + 1) * 784]);
    }
    (
        Tensor::from_vec(x, &[idx.len(), 1, 28, 28]),
        idx.iter().map(|&i| labels[i] as usize).collect(),
    )
}

fn evaluate(net: &Sequential, px: &[f32], labels: &[u8]) -> f32 {
    let n = labels.len();
    let ctx = Ctx::eval();
    let mut correct = 0;
    for start in (0..n).step_by(1000) {
        let idx: Vec<usize> = (start..(start + 1000).min(n)).collect();
        let (x, y) = batch(px, labels, &idx);
        let logits = net.forward(&Var::constant(x), &ctx);
        correct += correct_count(logits.value(), &y);
    }
    correct as f32 / n as f32
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(datasets::mnist::default_data_dir);
    let mut train = load_mnist(&dir, Split::Train)?;
    if let Some(n) = args.train_limit {
        train = train.take(n);
    }
    let test = load_mnist(&dir, Split::Test)?;
    let (train_px, test_px) = (pixels(&train), pixels(&test));
    let mut net = model(args.seed, args.dropout);
    if let Some(path) = &args.eval_checkpoint {
        let ck = Checkpoint::load(path)?;
        ck.restore_params(&mut net.params_mut())?;
        let acc = evaluate(&net, &test_px, &test.labels);
        println!(
            "checkpoint {} (step {}, epoch {}): test acc {:.2}%\nconfig {}",
            path.display(),
            ck.step,
            ck.epoch,
            100.0 * acc,
            ck.config
        );
        return Ok(());
    }
    println!("{}", layer_table(&net, &[args.batch, 1, 28, 28]));
    let steps_per_epoch = (train.len() / args.batch) as u64;
    let total = steps_per_epoch * args.epochs;
    let sched = Schedule::cosine(args.lr, total.max(1), 0.0).with_warmup(args.warmup);
    let mut opt = Sgd::momentum(args.momentum)
        .nesterov(true)
        .weight_decay(args.weight_decay);
    println!(
        "threads {}, {} train / {} test images, batch {}, {} steps/epoch, {} epochs",
        rayon::current_num_threads(),
        train.len(),
        test.len(),
        args.batch,
        steps_per_epoch,
        args.epochs
    );
    let config = serde_json::to_string(&args)?;
    let run_start = Instant::now();
    let mut step = 0u64;
    'epochs: for epoch in 0..args.epochs {
        let t0 = Instant::now();
        let order = epoch_order(args.seed, epoch, train.len());
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        for idx in order.chunks_exact(args.batch) {
            let (x, y) = batch(&train_px, &train.labels, idx);
            let tape = Tape::new();
            let ctx = Ctx::train(&tape, args.seed, step);
            let logits = net.forward(&Var::constant(x), &ctx);
            let loss = cross_entropy(&logits, &y);
            let grads = ctx.gradients(&loss.backward(), &net.params());
            opt.step(&mut net.params_mut(), &grads, sched.lr(step))?;
            loss_sum += loss.value().item() as f64 * y.len() as f64;
            correct += correct_count(logits.value(), &y);
            seen += y.len();
            step += 1;
            if args.max_steps.is_some_and(|m| step >= m) {
                let dt = t0.elapsed().as_secs_f64();
                println!(
                    "stopped after {step} steps: {seen} images in {dt:.1}s = {:.0} images/s (train loss {:.4})",
                    seen as f64 / dt,
                    loss_sum / seen as f64
                );
                break 'epochs;
            }
        }
        let train_time = t0.elapsed().as_secs_f64();
        let acc = evaluate(&net, &test_px, &test.labels);
        println!(
            "epoch {:>2}  lr {:.4}  train loss {:.4}  train acc {:.2}%  test acc {:.2}%  epoch {:.1}s  {:.0} images/s  total {:.0}s",
            epoch + 1,
            sched.lr(step.saturating_sub(1)),
            loss_sum / seen.max(1) as f64,
            100.0 * correct as f64 / seen.max(1) as f64,
            100.0 * acc,
            t0.elapsed().as_secs_f64(),
            seen as f64 / train_time,
            run_start.elapsed().as_secs_f64()
        );
        if let Some(path) = &args.checkpoint {
            Checkpoint::new(step, epoch + 1, config.clone())
                .with_params(&net.params())
                .with_optimizer(&opt)
                .with_word("seed", args.seed)
                .save(path)?;
        }
    }
    Ok(())
}
