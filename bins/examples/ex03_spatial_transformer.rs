//! Example 3: a spatial transformer trained in one short file.
//!
//! A small localisation net regresses θ (affine, eq. 1) from a 42×42 RTS
//! digit; the sampler zooms the digit into a 28×28 view; a small CNN
//! classifies that view. Only the classification loss trains θ.
//! Run with `cargo run --release -p warpgrad-cli --example ex03_spatial_transformer`.

use datasets::{default_data_dir, load_mnist, DistortedMnist, Split, Variant};
use engine::{rng::seeded, Tape, Var};
use layers::*;
use stn::transforms::Affine;
use stn::{SampleOptions, SpatialTransformer, LOC_GROUP};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let train = load_mnist(&default_data_dir(), Split::Train)?.take(20_000);
    let test = load_mnist(&default_data_dir(), Split::Test)?.take(1_000);
    let data = DistortedMnist::new(Variant::Rts, &train, &train, 1);
    let test_set = DistortedMnist::new(Variant::Rts, &test, &train, 2015).range(0, 0, test.len());
    let mut rng = seeded(1);

    // f_loc: 42×42 → 32 features; the transformer adds the θ head at identity.
    let loc = Sequential::new()
        .push(MaxPool2d::new(2)) // 21×21
        .push(Conv2d::new("c1", 1, 8, 5, &mut rng)) // 17×17
        .push(ReLU)
        .push(MaxPool2d::new(2)) // 8×8
        .push(Flatten)
        .push(Linear::new("fc", 8 * 8 * 8, 32, &mut rng))
        .push(ReLU);
    let mut st = SpatialTransformer::new(
        "st",
        Box::new(loc),
        32,
        Box::new(Affine::new()),
        [28, 28],
        SampleOptions::default(),
    );
    let mut classifier = Sequential::new()
        .push(Conv2d::new("c2", 1, 16, 5, &mut rng)) // 24×24
        .push(ReLU)
        .push(MaxPool2d::new(2)) // 12×12
        .push(Conv2d::new("c3", 16, 32, 5, &mut rng)) // 8×8
        .push(ReLU)
        .push(MaxPool2d::new(2)) // 4×4
        .push(Flatten)
        .push(Linear::new("out", 32 * 16, 10, &mut rng));

    // The localisation net learns at a tenth of the base rate.
    let mut opt = Adam::new();
    opt.set_group_lr(LOC_GROUP, 0.1);
    let (batch, steps) = (64, 600);
    for step in 0..steps {
        let idx: Vec<usize> = (0..batch)
            .map(|i| (step * batch + i) % train.len())
            .collect();
        let b = data.batch(0, &idx);
        let labels: Vec<usize> = b.labels.iter().map(|&l| l as usize).collect();
        let tape = Tape::new();
        let ctx = Ctx::train(&tape, 1, step as u64);
        // U → V = sampler(U, T_θ(G)) → classifier → loss; the tape records it all.
        let v = st.forward(&Var::constant(b.images), &ctx);
        let loss = cross_entropy(&classifier.forward(&v, &ctx), &labels);
        let grads = loss.backward();
        let mut params: Vec<&mut Param> = st.params_mut();
        params.extend(classifier.params_mut());
        let all: Vec<&Param> = params.iter().map(|p| &**p).collect();
        let g = ctx.gradients(&grads, &all);
        opt.step(&mut params, &g, 2e-3)?;
        if step % 100 == 0 || step == steps - 1 {
            let eval = Ctx::eval();
            let v = st.forward(&Var::constant(test_set.images.clone()), &eval);
            let logits = classifier.forward(&v, &eval);
            let labels: Vec<usize> = test_set.labels.iter().map(|&l| l as usize).collect();
            println!(
                "step {step:>4}: loss {:.3}, test accuracy {:.1}%",
                loss.value().item(),
                100.0 * accuracy(logits.value(), &labels)
            );
        }
    }
    // θ of the first test digits: the identity is [1, 0, 0, 0, 1, 0]; a
    // scale below 1 on the diagonal means the transformer zooms in.
    let theta = st.theta(
        &Var::constant(test_set.images.narrow(0, 0, 3)),
        &Ctx::eval(),
    );
    for (i, t) in theta.value().data().chunks(6).enumerate() {
        println!(
            "θ of test digit {i} (label {}): {t:.3?}",
            test_set.labels[i]
        );
    }
    Ok(())
}
