//! The spatial-transformer layer: identity at initialisation, feature maps
//! with several channels, an output size different from the input's, several
//! transformers in parallel and in series, and the localisation group.

use engine::rng::seeded;
use engine::{Tape, Tensor, Var};
use layers::{cross_entropy, Ctx, Flatten, Linear, Module, ReLU, Sequential};
use stn::transforms::{Affine, Attention, ThinPlateSpline, Transform};
use stn::{ParallelTransformers, SampleOptions, SpatialTransformer, LOC_GROUP};

fn loc(side_in: usize, c: usize, seed: u64) -> (Box<dyn Module>, usize) {
    let mut rng = seeded(seed);
    let net = Sequential::new()
        .push(Flatten)
        .push(Linear::new("fc", c * side_in * side_in, 8, &mut rng))
        .push(ReLU);
    (Box::new(net), 8)
}

fn st(
    name: &str,
    t: Box<dyn Transform>,
    c: usize,
    out: [usize; 2],
    seed: u64,
) -> SpatialTransformer {
    let (l, f) = loc(6, c, seed);
    SpatialTransformer::new(name, l, f, t, out, SampleOptions::default())
}

#[test]
fn identity_at_init_on_a_feature_map_with_another_output_size() {
    let x = Tensor::normal(&[2, 3, 6, 6], 0.0, 1.0, &mut seeded(1));
    for t in [
        Box::new(Affine::new()) as Box<dyn Transform>,
        Box::new(ThinPlateSpline::new(3)),
    ] {
        let layer = st("st", t, 3, [4, 9], 2);
        let v = layer.forward(&Var::constant(x.clone()), &Ctx::eval());
        assert_eq!(v.shape(), &[2, 3, 4, 9]);
        // The head starts at the identity: V is the input resampled on the base grid.
        let theta = Tensor::from_vec([1.0, 0.0, 0.0, 0.0, 1.0, 0.0].repeat(2), &[2, 2, 3]);
        let grid = stn::affine_grid(&theta, [2, 3, 4, 9], false);
        let want = stn::grid_sample(&x, &grid, SampleOptions::default());
        assert!(v.value().max_abs_diff(&want) < 1e-5);
    }
}

#[test]
fn parallel_transformers_concatenate_channels_with_distinct_names() {
    let mut a = st("a", Box::new(Affine::new()), 2, [5, 5], 3);
    let mut b = st("b", Box::new(Attention::new()), 2, [5, 5], 4);
    a.add_prefix("pair");
    b.add_prefix("pair");
    let par = ParallelTransformers::new(vec![a, b]);
    let x = Var::constant(Tensor::normal(&[3, 2, 6, 6], 0.0, 1.0, &mut seeded(5)));
    let v = par.forward(&x, &Ctx::eval());
    assert_eq!(v.shape(), &[3, 4, 5, 5]);
    assert_eq!(par.output_shape(&[3, 2, 6, 6]), vec![3, 4, 5, 5]);
    let names: Vec<&str> = par.params().iter().map(|p| p.name.as_str()).collect();
    layers::check_unique_names(&par.params());
    assert!(
        names.contains(&"pair.a.loc.theta.bias") && names.contains(&"pair.b.loc.fc.weight"),
        "{names:?}"
    );
    assert!(par.params().iter().all(|p| p.group == LOC_GROUP));
}

#[test]
fn transformers_in_series_all_receive_gradients() {
    // U (1×6×6) → ST₁ (6×6) → ST₂ (6×6) → flatten → linear → loss.
    let mut rng = seeded(6);
    let model = Sequential::new()
        .push(st("first", Box::new(Affine::new()), 1, [6, 6], 7))
        .push(st(
            "second",
            Box::new(ThinPlateSpline::new(2)),
            1,
            [6, 6],
            8,
        ))
        .push(Flatten)
        .push(Linear::new("cls", 36, 3, &mut rng));
    // A smooth input, so moving the sampling points changes V.
    let v: Vec<f32> = (0..4 * 36)
        .map(|i| ((i % 36) as f32 * 0.37 + (i / 36) as f32).sin())
        .collect();
    let x = Var::constant(Tensor::from_vec(v, &[4, 1, 6, 6]));
    let tape = Tape::new();
    let ctx = Ctx::train(&tape, 1, 0);
    let loss = cross_entropy(&model.forward(&x, &ctx), &[0, 1, 2, 1]);
    let grads = ctx.gradients(&loss.backward(), &model.params());
    for (p, g) in model.params().iter().zip(&grads) {
        if p.name.ends_with("theta.weight") || p.name.ends_with("theta.bias") {
            assert!(
                g.data().iter().any(|&v| v != 0.0),
                "{} got no gradient",
                p.name
            );
        }
    }
    let table = layers::layer_table(&model, &[4, 1, 6, 6]);
    assert!(
        table.contains("SpatialTransformer first") && table.contains("SpatialTransformer second"),
        "{table}"
    );
}
