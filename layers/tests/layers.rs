//! Layer behaviour: reference values, tie rules, names, modes, init.

use engine::{Tape, Tensor, Var};
use layers::conv::conv2d_forward;
use layers::pool::{avg_pool2d_forward, max_pool2d_forward};
use layers::*;

/// Direct 6-loop convolution as the reference.
fn naive_conv(x: &Tensor, w: &Tensor, b: &Tensor, s: usize, p: usize) -> Tensor {
    let (n, c, h, wd) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3));
    let (o, k) = (w.dim(0), w.dim(2));
    let (oh, ow) = ((h + 2 * p - k) / s + 1, (wd + 2 * p - k) / s + 1);
    let mut y = vec![0.0f64; n * o * oh * ow];
    for ni in 0..n {
        for oi in 0..o {
            for i in 0..oh {
                for j in 0..ow {
                    let mut acc = b.data()[oi] as f64;
                    for ci in 0..c {
                        for u in 0..k {
                            for v in 0..k {
                                let (iy, ix) = (
                                    (i * s + u) as isize - p as isize,
                                    (j * s + v) as isize - p as isize,
                                );
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                                    acc += w.at(&[oi, ci, u, v]) as f64
                                        * x.at(&[ni, ci, iy as usize, ix as usize]) as f64;
                                }
                            }
                        }
                    }
                    y[((ni * o + oi) * oh + i) * ow + j] = acc;
                }
            }
        }
    }
    Tensor::from_vec(y.into_iter().map(|v| v as f32).collect(), &[n, o, oh, ow])
}

#[test]
fn conv_matches_direct_loops() {
    let mut rng = engine::rng::seeded(1);
    for (n, s, p, k) in [
        (1, 1, 0, 3),
        (17, 1, 2, 5),
        (2, 1, 4, 3),
        (35, 2, 1, 3),
        (4, 3, 0, 4),
    ] {
        let x = Tensor::normal(&[n, 3, 13, 11], 0.0, 1.0, &mut rng);
        let w = Tensor::normal(&[4, 3, k, k], 0.0, 1.0, &mut rng);
        let b = Tensor::normal(&[4], 0.0, 1.0, &mut rng);
        let got = conv2d_forward(&x, &w, Some(&b), s, p);
        let want = naive_conv(&x, &w, &b, s, p);
        assert_eq!(got.shape(), want.shape());
        assert!(
            got.max_abs_diff(&want) < 1e-4,
            "n{n} s{s} p{p} k{k}: {}",
            got.max_abs_diff(&want)
        );
    }
}

#[test]
#[should_panic(expected = "conv2d: input [2, 3, 5, 5] and weight [4, 2, 3, 3]")]
fn conv_shape_mismatch_names_both_shapes() {
    conv2d_forward(
        &Tensor::zeros(&[2, 3, 5, 5]),
        &Tensor::zeros(&[4, 2, 3, 3]),
        None,
        1,
        0,
    );
}

#[test]
fn max_pool_ties_go_to_the_first_index_in_row_major_order() {
    // One 2×2 window of equal values, one with a tie between (0,1) and (1,0).
    let x = Tensor::from_vec(vec![5.0, 5.0, 1.0, 7.0, 5.0, 5.0, 7.0, 2.0], &[1, 1, 2, 4]);
    let (y, arg) = max_pool2d_forward(&x, 2, 2);
    assert_eq!(y.data(), &[5.0, 7.0]);
    assert_eq!(arg, vec![0, 3]);
    let tape = Tape::new();
    let xv = tape.leaf(x);
    let g = max_pool2d(&xv, 2, 2).sum().backward();
    assert_eq!(
        g.get(&xv).unwrap().data(),
        &[1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    );
}

#[test]
fn max_pool_propagates_nan_and_handles_overlap() {
    let x = Tensor::from_vec(vec![1.0, f32::NAN, 3.0, 4.0], &[1, 1, 2, 2]);
    assert!(max_pool2d_forward(&x, 2, 2).0.data()[0].is_nan());
    // 3×3 input, 2×2 windows with stride 1: the centre is the max of all four.
    let x = Tensor::from_vec(
        vec![0.0, 1.0, 0.0, 2.0, 9.0, 3.0, 0.0, 4.0, 0.0],
        &[1, 1, 3, 3],
    );
    let tape = Tape::new();
    let xv = tape.leaf(x);
    let y = max_pool2d(&xv, 2, 1);
    assert_eq!(y.value().data(), &[9.0; 4]);
    let g = y.sum().backward();
    assert_eq!(g.get(&xv).unwrap().data()[4], 4.0);
}

#[test]
fn avg_pool_values() {
    let x = Tensor::arange(16).reshape(&[1, 1, 4, 4]);
    let y = avg_pool2d_forward(&x, 2, 2);
    assert_eq!(y.data(), &[2.5, 4.5, 10.5, 12.5]);
}

#[test]
fn cross_entropy_is_stable_and_correct() {
    // log-sum-exp of [1000, 0, -1000] is 1000: the loss of class 0 is ~0.
    let logits = Var::constant(Tensor::from_vec(
        vec![1000.0, 0.0, -1000.0, 0.0, 0.0, 0.0],
        &[2, 3],
    ));
    let l = cross_entropy(&logits, &[0, 2]).value().item();
    assert!((l - 3f32.ln() / 2.0).abs() < 1e-6, "{l}");
    let l = cross_entropy(&logits, &[2, 1]).value().item();
    assert!((l - (2000.0 + 3f32.ln()) / 2.0).abs() < 1e-3, "{l}");
    assert_eq!(accuracy(logits.value(), &[0, 0]), 1.0);
    // Row 2 is a tie: the lowest class wins.
    assert_eq!(accuracy(logits.value(), &[2, 0]), 0.5);
}

#[test]
#[should_panic(expected = "cross_entropy: label 3 out of range")]
fn cross_entropy_rejects_bad_labels() {
    cross_entropy(&Var::constant(Tensor::zeros(&[1, 3])), &[3]);
}

struct TwoBranches {
    a: Sequential,
    b: Sequential,
}

impl Module for TwoBranches {
    fn forward(&self, x: &Var, ctx: &Ctx) -> Var {
        self.a.forward(x, ctx).add(&self.b.forward(x, ctx))
    }
    fn params(&self) -> Vec<&Param> {
        self.a.params().into_iter().chain(self.b.params()).collect()
    }
    fn params_mut(&mut self) -> Vec<&mut Param> {
        self.a
            .params_mut()
            .into_iter()
            .chain(self.b.params_mut())
            .collect()
    }
    fn describe(&self) -> String {
        "TwoBranches".into()
    }
    fn output_shape(&self, input: &[usize]) -> Vec<usize> {
        self.a.output_shape(input)
    }
}

#[test]
fn nested_modules_have_unique_paths_groups_and_gradients() {
    let mut rng = engine::rng::seeded(2);
    let branch = |rng: &mut engine::rng::Rng| {
        Sequential::new()
            .push(Linear::new("fc1", 4, 5, rng))
            .push(ReLU)
            .push(Linear::new("fc2", 5, 3, rng))
    };
    let mut m = TwoBranches {
        a: branch(&mut rng),
        b: branch(&mut rng),
    };
    m.a.add_prefix("st1.loc");
    m.b.add_prefix("st2.loc");
    m.b.set_group("loc");
    let names: Vec<&str> = m.params().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "st1.loc.fc1.weight",
            "st1.loc.fc1.bias",
            "st1.loc.fc2.weight",
            "st1.loc.fc2.bias",
            "st2.loc.fc1.weight",
            "st2.loc.fc1.bias",
            "st2.loc.fc2.weight",
            "st2.loc.fc2.bias",
        ]
    );
    check_unique_names(&m.params());
    assert_eq!(m.params()[0].group, "default");
    assert_eq!(m.params()[4].group, "loc");

    let x = Var::constant(Tensor::normal(&[6, 4], 0.0, 1.0, &mut rng));
    let tape = Tape::new();
    let ctx = Ctx::train(&tape, 0, 0);
    let loss = cross_entropy(&m.forward(&x, &ctx), &[0, 1, 2, 0, 1, 2]);
    let grads = ctx.gradients(&loss.backward(), &m.params());
    assert_eq!(grads.len(), 8);
    for (g, p) in grads.iter().zip(m.params()) {
        assert_eq!(g.shape(), p.value.shape());
    }
    // The bias gradient of the last layer of each branch is the loss gradient
    // w.r.t. the summed logits, summed over the batch: equal for both.
    assert_eq!(grads[3], grads[7]);
    assert!(grads[3].data().iter().any(|v| v.abs() > 1e-4));
}

#[test]
#[should_panic(expected = "duplicate parameter name")]
fn duplicate_names_are_caught() {
    let mut rng = engine::rng::seeded(2);
    let m = Sequential::new()
        .push(Linear::new("fc", 2, 2, &mut rng))
        .push(Linear::new("fc", 2, 2, &mut rng));
    check_unique_names(&m.params());
}

/// Two `Linear` named "fc" in one model: before duplicates were caught
/// where parameters are gathered, each silently received the sum of both
/// gradients. Now the forward pass panics.
#[test]
#[should_panic(expected = "duplicate parameter name \"fc.weight\"")]
fn two_layers_named_alike_in_one_model_panic_when_trained() {
    let mut rng = engine::rng::seeded(2);
    let m = TwoBranches {
        a: Sequential::new().push(Linear::new("fc", 4, 3, &mut rng)),
        b: Sequential::new().push(Linear::new("fc", 4, 3, &mut rng)),
    };
    let x = Var::constant(Tensor::normal(&[2, 4], 0.0, 1.0, &mut rng));
    let tape = Tape::new();
    let ctx = Ctx::train(&tape, 0, 0);
    let loss = cross_entropy(&m.forward(&x, &ctx), &[0, 1]);
    let grads = ctx.gradients(&loss.backward(), &m.params());
    // Today's bug, if nothing panicked: both weights get the same summed gradient.
    assert_ne!(
        grads[0], grads[2],
        "each fc received the sum of both gradients"
    );
}

#[test]
#[should_panic(expected = "gradients")]
fn gradients_reject_a_parameter_list_with_duplicates() {
    let mut rng = engine::rng::seeded(2);
    let a = Linear::new("fc", 2, 2, &mut rng);
    let b = Linear::new("fc", 2, 2, &mut rng);
    let tape = Tape::new();
    let ctx = Ctx::train(&tape, 0, 0);
    let y = a.forward(&Var::constant(Tensor::ones(&[1, 2])), &ctx).sum();
    let params: Vec<&Param> = a.params().into_iter().chain(b.params()).collect();
    // Only `a` was bound: the duplicate is caught in `gradients` itself.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ctx.gradients(&y.backward(), &params)
    }));
    let msg = r.expect_err("duplicates must panic");
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("#0 and #2"), "{msg}");
    panic!("gradients: {msg}");
}

#[test]
fn sequential_names_both_layers_of_a_duplicate() {
    let mut rng = engine::rng::seeded(2);
    let m = Sequential::new()
        .push(Linear::new("fc", 2, 3, &mut rng))
        .push(ReLU)
        .push(Linear::new("fc", 3, 2, &mut rng));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.params().len()));
    let e = r.expect_err("duplicate names must panic");
    let msg = e.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("\"fc.weight\""), "{msg}");
    assert!(
        msg.contains("layer #0 (Linear fc 2→3") && msg.contains("layer #2 (Linear fc 3→2"),
        "{msg}"
    );
}

#[test]
fn shared_weights_receive_the_sum_of_their_gradients() {
    let lin = Linear::with_init(
        "fc",
        2,
        2,
        &Init::Given(vec![1.0, 0.0, 0.0, 1.0]),
        &Init::Zeros,
        &mut engine::rng::seeded(0),
    );
    let x = Var::constant(Tensor::from_vec(vec![1.0, 2.0], &[1, 2]));
    let tape = Tape::new();
    let ctx = Ctx::train(&tape, 0, 0);
    // y = W(Wx): applied twice.
    let y = lin.forward(&lin.forward(&x, &ctx), &ctx).sum();
    let g = ctx.gradients(&y.backward(), &lin.params());
    // d/dW of 1ᵀW(Wx) at W = I: (1·xᵀ) + (Wᵀ1)(Wx)ᵀ = [[1,2],[1,2]] + [[1,2],[1,2]].
    assert_eq!(g[0].data(), &[2.0, 4.0, 2.0, 4.0]);
    assert_eq!(g[1].data(), &[2.0, 2.0]);
}

#[test]
fn eval_mode_records_nothing_and_dropout_is_identity() {
    let mut rng = engine::rng::seeded(4);
    let m = Sequential::new()
        .push(Flatten)
        .push(Dropout::new("drop", 0.5))
        .push(Linear::new("fc", 9, 3, &mut rng));
    let x = Var::constant(Tensor::ones(&[2, 1, 3, 3]));
    let y1 = m.forward(&x, &Ctx::eval());
    assert!(!y1.is_tracked());
    // Without dropout the eval output equals a plain linear map.
    let w = &m.params()[0].value;
    let want = Tensor::ones(&[2, 9]).matmul(&w.transpose(0, 1));
    assert!(y1.value().max_abs_diff(&want) < 1e-6);
    // Training: dropout masks differ per step and repeat for the same step.
    let run = |step| {
        let tape = Tape::new();
        m.forward(&x, &Ctx::train(&tape, 9, step)).value().clone()
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}

#[test]
fn dropout_mask_statistics() {
    let mask = dropout_mask(&[100_000], 0.3, &mut engine::rng::seeded(5));
    let kept = mask.data().iter().filter(|&&v| v > 0.0).count() as f32 / 1e5;
    assert!((kept - 0.7).abs() < 0.01, "{kept}");
    assert!(mask
        .data()
        .iter()
        .all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-6));
    assert!((mask.mean_all() - 1.0).abs() < 0.02);
}

#[test]
fn regression_head_starts_at_its_bias() {
    let head = Linear::regression_head("theta", 20, &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
    let x = Var::constant(Tensor::normal(
        &[3, 20],
        0.0,
        5.0,
        &mut engine::rng::seeded(6),
    ));
    let y = head.forward(&x, &Ctx::eval());
    for row in y.value().data().chunks(6) {
        assert_eq!(row, &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
    }
}

#[test]
fn initialiser_statistics() {
    let mut rng = engine::rng::seeded(7);
    let shape = [64, 32, 5, 5]; // fan_in 800, fan_out 1600
    let std = |t: &Tensor| {
        (t.data().iter().map(|v| (v * v) as f64).sum::<f64>() / t.numel() as f64).sqrt()
    };
    let ku = Init::KaimingUniform.tensor(&shape, &mut rng);
    let kn = Init::KaimingNormal.tensor(&shape, &mut rng);
    let xu = Init::XavierUniform.tensor(&shape, &mut rng);
    let xn = Init::XavierNormal.tensor(&shape, &mut rng);
    let he = (2.0f64 / 800.0).sqrt();
    let gl = (2.0f64 / 2400.0).sqrt();
    for (t, want) in [(&ku, he), (&kn, he), (&xu, gl), (&xn, gl)] {
        assert!((std(t) / want - 1.0).abs() < 0.02, "{} vs {want}", std(t));
    }
    let bound = (6.0f32 / 800.0).sqrt();
    assert!(ku.data().iter().all(|v| v.abs() <= bound));
    assert_eq!(Init::Zeros.tensor(&[3], &mut rng).data(), &[0.0; 3]);
    assert_eq!(Init::Constant(0.5).tensor(&[2], &mut rng).data(), &[0.5; 2]);
    assert_eq!(layers::init::fans(&[10, 4]), (4, 10));
}

#[test]
fn layer_table_lists_every_layer() {
    let mut rng = engine::rng::seeded(8);
    let m = Sequential::new()
        .push(Conv2d::new("conv1", 1, 32, 9, &mut rng))
        .push(ReLU)
        .push(MaxPool2d::new(2))
        .push(Conv2d::new("conv2", 32, 64, 7, &mut rng))
        .push(ReLU)
        .push(MaxPool2d::new(2))
        .push(Flatten)
        .push(Linear::new("fc", 256, 10, &mut rng));
    assert_eq!(m.output_shape(&[5, 1, 28, 28]), vec![5, 10]);
    let t = layer_table(&m, &[5, 1, 28, 28]);
    assert!(t.contains("Conv2d conv1 1→32 k9 s1 p0"), "{t}");
    assert!(t.contains("[5, 64, 2, 2]"), "{t}");
    assert_eq!(
        param_count(&m),
        32 * 81 + 32 + 64 * 32 * 49 + 64 + 2560 + 10
    );
    assert!(t.contains(&param_count(&m).to_string()));
}

#[test]
fn epoch_order_is_a_seeded_permutation() {
    let a = epoch_order(1, 0, 1000);
    let mut s = a.clone();
    s.sort_unstable();
    assert_eq!(s, (0..1000).collect::<Vec<_>>());
    assert_eq!(a, epoch_order(1, 0, 1000));
    assert_ne!(a, epoch_order(1, 1, 1000));
    assert_ne!(a, epoch_order(2, 0, 1000));
    // `warpgrad train` draws its batches from this order: the values are
    // pinned so a change of stream or shuffle (which would change every
    // trained number) fails here.
    assert_eq!(
        epoch_order(1, 0, 12),
        [5, 8, 11, 0, 4, 9, 1, 2, 6, 10, 3, 7]
    );
    assert_eq!(
        epoch_order(7, 3, 12),
        [2, 3, 4, 11, 1, 6, 7, 10, 0, 8, 5, 9]
    );
}
