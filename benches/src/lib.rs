//! Shared workloads for the criterion benches (`benches/*.rs`) and for the
//! `bench_report` runner of the PyTorch side-by-side (`compare/`).
//!
//! Everything here is built from seeded generators ([`engine::rng::seeded`]),
//! so every run times the same numbers. The shapes follow the performance
//! issue: the sampler workloads [`WORKLOADS`] (W1–W6), the paper's and the
//! PyTorch tutorial's convolutions ([`CONV_LAYERS`]), the ST-CNN for RTS and
//! the tutorial STN ([`ModelKind`]) at batch 256, and the distorted-MNIST
//! generators ([`DataCase`]). `compare/torch_bench.py` builds the same
//! shapes in PyTorch; keep the two in step.

/// The FP32 FMA peak probe (its `unsafe` SIMD lives in the engine).
pub use engine::kernels::peak;

use datasets::{DistortedMnist, Mnist, Variant};
use engine::rng::seeded;
use engine::{Tape, Tensor, Var};
use layers::{Conv2d, Ctx, Flatten, Linear, MaxPool2d, Module, Optimizer, ReLU, Sequential, Sgd};
use rand::Rng as _;
use stn::transforms::{Affine, ThinPlateSpline, Transform};
use stn::{SampleOptions, SpatialTransformer};

/// Batch size of the model benches (the paper's).
pub const BATCH: usize = 256;

/// Learning rate of the benched SGD steps (the paper's initial rate).
pub const LR: f32 = 0.01;

/// One sampler workload: N×C×H_in×W_in sampled onto an H_out×W_out grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Workload {
    /// Name used on the command line and in reports ("W1".."W6").
    pub name: &'static str,
    /// Batch size.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h_in: usize,
    /// Input width.
    pub w_in: usize,
    /// Output height.
    pub h_out: usize,
    /// Output width.
    pub w_out: usize,
}

impl Workload {
    /// N×C×H_out×W_out: the elements the sampler writes.
    pub fn out_elems(&self) -> u64 {
        (self.n * self.c * self.h_out * self.w_out) as u64
    }

    /// N×H_out×W_out: the grid points (what `affine_grid` writes).
    pub fn grid_points(&self) -> u64 {
        (self.n * self.h_out * self.w_out) as u64
    }

    /// The output size `[N, C, H_out, W_out]` as `affine_grid` takes it.
    pub fn out_size(&self) -> [usize; 4] {
        [self.n, self.c, self.h_out, self.w_out]
    }
}

const fn wl(name: &'static str, n: usize, c: usize, hi: usize, ho: usize) -> Workload {
    Workload {
        name,
        n,
        c,
        h_in: hi,
        w_in: hi,
        h_out: ho,
        w_out: ho,
    }
}

/// The sampler workloads of the performance issue.
pub const WORKLOADS: [Workload; 6] = [
    wl("W1", 256, 1, 28, 28),
    wl("W2", 256, 1, 42, 42),
    wl("W3", 256, 1, 60, 30),
    wl("W4", 64, 32, 28, 28),
    wl("W5", 8, 3, 224, 224),
    wl("W6", 8, 3, 448, 224),
];

/// The workload named `name` (case-insensitive), if any.
pub fn workload(name: &str) -> Option<Workload> {
    WORKLOADS
        .iter()
        .copied()
        .find(|w| w.name.eq_ignore_ascii_case(name))
}

/// Values uniform in [0, 1) (image-like), from `seed`.
pub fn uniform(shape: &[usize], seed: u64) -> Tensor {
    Tensor::uniform(shape, 0.0, 1.0, &mut seeded(seed))
}

/// Standard-normal values (gradient-like), from `seed`.
pub fn normal(shape: &[usize], seed: u64) -> Tensor {
    Tensor::normal(shape, 0.0, 1.0, &mut seeded(seed))
}

/// N affine transforms near the identity (N×2×3): rotation within ±10°,
/// scale 0.9–1.1, translation within ±0.1, the kind of θ a localisation net
/// predicts once trained on mildly distorted digits.
pub fn near_identity_theta(n: usize, seed: u64) -> Tensor {
    let mut rng = seeded(seed);
    let mut t = Vec::with_capacity(n * 6);
    for _ in 0..n {
        let a = rng.gen_range(-10.0f32..10.0).to_radians();
        let s = rng.gen_range(0.9f32..1.1);
        let (tx, ty) = (rng.gen_range(-0.1f32..0.1), rng.gen_range(-0.1f32..0.1));
        t.extend_from_slice(&[s * a.cos(), -s * a.sin(), tx, s * a.sin(), s * a.cos(), ty]);
    }
    Tensor::from_vec(t, &[n, 2, 3])
}

/// A realistic sampling grid for `w`: the affine grid of a near-identity θ
/// with every point moved by up to half an input pixel (so the grid is not
/// exactly affine and most points fall between pixels).
pub fn sampling_grid(w: &Workload, seed: u64) -> Tensor {
    let theta = near_identity_theta(w.n, seed);
    let mut grid = stn::affine_grid(&theta, w.out_size(), false);
    let mut rng = seeded(seed ^ 0x9e1d);
    let (jx, jy) = (1.0 / w.w_in as f32, 1.0 / w.h_in as f32);
    for p in grid.data_mut().chunks_exact_mut(2) {
        p[0] += rng.gen_range(-jx..jx);
        p[1] += rng.gen_range(-jy..jy);
    }
    grid
}

/// The tensors of one sampler workload and the operations timed on them.
pub struct SamplerCase {
    /// The workload.
    pub w: Workload,
    /// N×C×H_in×W_in, uniform in [0, 1).
    pub input: Tensor,
    /// N×H_out×W_out×2, see [`sampling_grid`].
    pub grid: Tensor,
    /// ∂L/∂output, N×C×H_out×W_out.
    pub grad_out: Tensor,
    /// The near-identity θ as N×2×3 (for `affine_grid`).
    pub theta: Tensor,
    /// The same θ as N×6 (for the fused sampler).
    pub theta6: Tensor,
    /// PyTorch's defaults: bilinear, zero padding, `align_corners = false`.
    pub opts: SampleOptions,
}

impl SamplerCase {
    /// The tensors of `w`, drawn from `seed`.
    pub fn new(w: Workload, seed: u64) -> SamplerCase {
        let theta = near_identity_theta(w.n, seed + 1);
        SamplerCase {
            w,
            input: uniform(&[w.n, w.c, w.h_in, w.w_in], seed),
            grid: sampling_grid(&w, seed + 1),
            grad_out: normal(&[w.n, w.c, w.h_out, w.w_out], seed + 2),
            theta6: theta.reshape(&[w.n, 6]),
            theta,
            opts: SampleOptions::default(),
        }
    }

    /// `grid_sample` forward.
    pub fn forward(&self) -> Tensor {
        stn::grid_sample(&self.input, &self.grid, self.opts)
    }

    /// `grid_sample` backward: ∂grid, and ∂input when `need_input`.
    pub fn backward(&self, need_input: bool) -> (Option<Tensor>, Option<Tensor>) {
        stn::grid_sample_backward_masked(
            &self.input,
            &self.grid,
            &self.grad_out,
            self.opts,
            need_input,
            true,
        )
    }

    /// `affine_grid` for the workload's output size.
    pub fn affine_grid(&self) -> Tensor {
        stn::affine_grid(&self.theta, self.w.out_size(), self.opts.align_corners)
    }

    /// The fused affine sampler, forward and backward, as a spatial
    /// transformer uses it (the image needs no gradient): returns ∂L/∂θ.
    pub fn fused_fwd_bwd(&self) -> Tensor {
        let tape = Tape::new();
        let theta = tape.leaf(self.theta6.clone());
        let input = Var::constant(self.input.clone());
        let out = stn::affine_sample(&input, &theta, [self.w.h_out, self.w.w_out], self.opts);
        out.backward_with(self.grad_out.clone())
            .get_or_zeros(&theta)
    }

    /// The same as [`SamplerCase::fused_fwd_bwd`] in two steps on plain
    /// tensors (`affine_grid`, `grid_sample`, then their backwards), the way
    /// PyTorch does it: returns ∂L/∂θ.
    pub fn two_step_fwd_bwd(&self) -> Tensor {
        let size = self.w.out_size();
        let grid = stn::affine_grid(&self.theta, size, self.opts.align_corners);
        let out = stn::grid_sample(&self.input, &grid, self.opts);
        let (_, gg) = stn::grid_sample_backward_masked(
            &self.input,
            &grid,
            &self.grad_out,
            self.opts,
            false,
            true,
        );
        drop(out);
        let gg = gg.expect("the grid gradient was asked for");
        stn::affine_grid_backward(&gg, size, self.opts.align_corners)
    }
}

/// The paper's 16-point thin plate spline grid for `w`'s output size, with
/// control points moved by about 2% of the image.
pub struct TpsCase {
    /// The workload (only N and the output size matter).
    pub w: Workload,
    /// The transform (its weight matrix is cached after the first call).
    pub tps: ThinPlateSpline,
    /// N×32 control-point offsets.
    pub theta: Tensor,
}

impl TpsCase {
    /// The case for `w`, drawn from `seed`.
    pub fn new(w: Workload, seed: u64) -> TpsCase {
        let tps = ThinPlateSpline::default();
        let p = tps.num_params();
        let theta = Tensor::normal(&[w.n, p], 0.0, 0.02, &mut seeded(seed));
        TpsCase { w, tps, theta }
    }

    /// The grid (N×H_out×W_out×2).
    pub fn grid(&self) -> Tensor {
        self.tps
            .grid(
                &Var::constant(self.theta.clone()),
                [self.w.h_out, self.w.w_out],
                false,
            )
            .value()
            .clone()
    }
}

/// One convolution of the benched models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvLayer {
    /// Name used on the command line and in reports.
    pub name: &'static str,
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Kernel side.
    pub k: usize,
    /// Input side (square).
    pub side: usize,
    /// Whether the backward needs ∂input: false for a first layer fed by the
    /// image, true after a spatial transformer (∂V flows on to θ).
    pub need_input_grad: bool,
}

const fn cl(
    name: &'static str,
    cin: usize,
    cout: usize,
    k: usize,
    side: usize,
    need_input_grad: bool,
) -> ConvLayer {
    ConvLayer {
        name,
        cin,
        cout,
        k,
        side,
        need_input_grad,
    }
}

/// The convolutions of the ST-CNN for RTS (classifier `cls*`, localisation
/// `loc*`), of the tutorial STN (`tut_*`) and of the CNN baselines on 42²
/// (RTS, `cnn42_*`) and 60² (TC, `cnn60_*`), with the input sides they see.
pub const CONV_LAYERS: [ConvLayer; 12] = [
    cl("cls1", 1, 32, 9, 28, true),
    cl("cls2", 32, 64, 7, 10, true),
    cl("loc1", 1, 20, 5, 21, false),
    cl("loc2", 20, 20, 5, 8, true),
    cl("tut_loc1", 1, 8, 7, 28, false),
    cl("tut_loc2", 8, 10, 5, 11, true),
    cl("tut_cls1", 1, 10, 5, 28, true),
    cl("tut_cls2", 10, 20, 5, 12, true),
    cl("cnn42_1", 1, 32, 9, 42, false),
    cl("cnn42_2", 32, 64, 7, 17, true),
    cl("cnn60_1", 1, 32, 9, 60, false),
    cl("cnn60_2", 32, 64, 7, 26, true),
];

/// The convolution named `name`, if any.
pub fn conv_layer(name: &str) -> Option<ConvLayer> {
    CONV_LAYERS.iter().copied().find(|l| l.name == name)
}

/// The tensors of one convolution at a given batch size.
pub struct ConvCase {
    /// The layer.
    pub layer: ConvLayer,
    /// N×C_in×S×S input.
    pub x: Tensor,
    /// C_out×C_in×k×k weight.
    pub w: Tensor,
    /// C_out bias.
    pub b: Tensor,
    /// ∂L/∂output.
    pub grad_out: Tensor,
}

impl ConvCase {
    /// The case for `layer` at batch `n`, drawn from `seed`.
    pub fn new(layer: ConvLayer, n: usize, seed: u64) -> ConvCase {
        let o = layer.side - layer.k + 1;
        let fan_in = (layer.cin * layer.k * layer.k) as f32;
        let bound = 1.0 / fan_in.sqrt();
        ConvCase {
            layer,
            x: uniform(&[n, layer.cin, layer.side, layer.side], seed),
            w: Tensor::uniform(
                &[layer.cout, layer.cin, layer.k, layer.k],
                -bound,
                bound,
                &mut seeded(seed + 1),
            ),
            b: Tensor::zeros(&[layer.cout]),
            grad_out: normal(&[n, layer.cout, o, o], seed + 2),
        }
    }

    /// Batch size.
    pub fn batch(&self) -> usize {
        self.x.shape()[0]
    }

    /// Floating-point operations of one forward (a multiply-add counts 2).
    pub fn forward_flops(&self) -> u64 {
        let l = self.layer;
        let o = (l.side - l.k + 1) as u64;
        2 * (self.batch() * l.cout * l.cin * l.k * l.k) as u64 * o * o
    }

    /// Floating-point operations of one backward: ∂weight, and ∂input if
    /// the layer needs it (each as many as the forward).
    pub fn backward_flops(&self) -> u64 {
        self.forward_flops() * if self.layer.need_input_grad { 2 } else { 1 }
    }

    /// Forward (stride 1, no padding, with bias).
    pub fn forward(&self) -> Tensor {
        layers::conv::conv2d_forward(&self.x, &self.w, Some(&self.b), 1, 0)
    }

    /// Backward: ∂weight and ∂bias, and ∂input if the layer needs it.
    pub fn backward(&self) -> (Option<Tensor>, Option<Tensor>, Option<Tensor>) {
        layers::conv::conv2d_backward(
            &self.x,
            &self.w,
            &self.grad_out,
            1,
            0,
            [self.layer.need_input_grad, true, true],
        )
    }
}

/// The benched models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// The paper's ST-CNN (affine) for RTS: 42×42 input, `st-cnn-aff`.
    StCnnRts,
    /// The PyTorch tutorial's STN on 28×28 MNIST ([`tutorial_stn`]).
    Tutorial,
    /// The paper's CNN baseline on the RTS canvas (42×42), `cnn`.
    Cnn42,
    /// The paper's CNN baseline on the TC canvas (60×60), `cnn`.
    Cnn60,
}

impl ModelKind {
    /// Every benched model.
    pub const ALL: [ModelKind; 4] = [
        ModelKind::StCnnRts,
        ModelKind::Tutorial,
        ModelKind::Cnn42,
        ModelKind::Cnn60,
    ];

    /// The short name used on the command line ("rts", "tutorial", "cnn42",
    /// "cnn60").
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::StCnnRts => "rts",
            ModelKind::Tutorial => "tutorial",
            ModelKind::Cnn42 => "cnn42",
            ModelKind::Cnn60 => "cnn60",
        }
    }

    /// Parses [`ModelKind::name`].
    pub fn parse(name: &str) -> Option<ModelKind> {
        ModelKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Side of the input images.
    pub fn side(self) -> usize {
        match self {
            ModelKind::StCnnRts | ModelKind::Cnn42 => 42,
            ModelKind::Tutorial => 28,
            ModelKind::Cnn60 => 60,
        }
    }

    /// The model with weights drawn from `seed`.
    pub fn build(self, seed: u64) -> Box<dyn Module> {
        match self {
            ModelKind::StCnnRts => Box::new(
                stn::build_model("st-cnn-aff", self.side(), seed).expect("a known model name"),
            ),
            ModelKind::Tutorial => Box::new(tutorial_stn(seed)),
            ModelKind::Cnn42 | ModelKind::Cnn60 => {
                Box::new(stn::build_model("cnn", self.side(), seed).expect("a known model name"))
            }
        }
    }
}

/// The PyTorch tutorial's STN ("Spatial Transformer Networks Tutorial"),
/// without its dropout: localisation conv 1→8 7×7 → max-pool 2 → ReLU →
/// conv 8→10 5×5 → max-pool 2 → ReLU → FC 90→32 → ReLU → FC 32→6 (identity
/// initialisation), affine sampling of the 28×28 input, then the classifier
/// conv 1→10 5×5 → max-pool 2 → ReLU → conv 10→20 5×5 → max-pool 2 → ReLU →
/// FC 320→50 → ReLU → FC 50→10.
pub fn tutorial_stn(seed: u64) -> Sequential {
    let mut rng = seeded(seed);
    let loc = Sequential::new()
        .push(Conv2d::new("conv1", 1, 8, 7, &mut rng))
        .push(MaxPool2d::new(2))
        .push(ReLU)
        .push(Conv2d::new("conv2", 8, 10, 5, &mut rng))
        .push(MaxPool2d::new(2))
        .push(ReLU)
        .push(Flatten)
        .push(Linear::new("fc", 90, 32, &mut rng))
        .push(ReLU);
    // The transformer appends the FC 32→6 head, initialised to the identity.
    let st = SpatialTransformer::new(
        "st",
        Box::new(loc),
        32,
        Box::new(Affine::new()),
        [28, 28],
        SampleOptions::default(),
    );
    let mut cls = Sequential::new()
        .push(Conv2d::new("conv1", 1, 10, 5, &mut rng))
        .push(MaxPool2d::new(2))
        .push(ReLU)
        .push(Conv2d::new("conv2", 10, 20, 5, &mut rng))
        .push(MaxPool2d::new(2))
        .push(ReLU)
        .push(Flatten)
        .push(Linear::new("fc1", 320, 50, &mut rng))
        .push(ReLU)
        .push(Linear::new("fc2", 50, 10, &mut rng));
    cls.add_prefix("cls");
    let net = Sequential::new().push(st).push(cls);
    layers::check_unique_names(&net.params());
    net
}

/// A model, a fixed batch and an optimiser: one call of [`Trainer::step`] is
/// one training step as `warpgrad train` does it (tape, forward,
/// cross-entropy, backward, gradients, SGD with momentum 0.9).
pub struct Trainer {
    /// Which model.
    pub kind: ModelKind,
    model: Box<dyn Module>,
    opt: Sgd,
    images: Tensor,
    labels: Vec<usize>,
    step: u64,
}

impl Trainer {
    /// `kind` with weights and a batch of `batch` random images from `seed`.
    pub fn new(kind: ModelKind, batch: usize, seed: u64) -> Trainer {
        let s = kind.side();
        let mut rng = seeded(seed + 7);
        Trainer {
            kind,
            model: kind.build(seed),
            opt: Sgd::momentum(0.9),
            images: uniform(&[batch, 1, s, s], seed + 3),
            labels: (0..batch).map(|_| rng.gen_range(0..10)).collect(),
            step: 0,
        }
    }

    /// Batch size.
    pub fn batch(&self) -> usize {
        self.labels.len()
    }

    /// One SGD step on the batch; returns the loss.
    ///
    /// # Panics
    /// If the optimiser rejects the gradients (non-finite values).
    pub fn step(&mut self) -> f32 {
        let tape = Tape::new();
        let ctx = Ctx::train(&tape, 42, self.step);
        let logits = self
            .model
            .forward(&Var::constant(self.images.clone()), &ctx);
        let loss = layers::cross_entropy(&logits, &self.labels);
        let grads = ctx.gradients(&loss.backward(), &self.model.params());
        drop(tape);
        self.opt
            .step(&mut self.model.params_mut(), &grads, LR)
            .expect("finite gradients");
        self.step += 1;
        loss.value().item()
    }

    /// Inference on the batch (no tape): the logits.
    pub fn infer(&self) -> Tensor {
        let ctx = Ctx::eval();
        self.model
            .forward(&Var::constant(self.images.clone()), &ctx)
            .value()
            .clone()
    }
}

/// The distortions generated by the data bench (every variant but plain MNIST).
pub const DATA_VARIANTS: [Variant; 5] = [
    Variant::R,
    Variant::Rts,
    Variant::P,
    Variant::E,
    Variant::Tc,
];

/// Samples per data-generation run (the datasets issue's 10,000).
pub const DATA_SAMPLES: usize = 10_000;

/// A stand-in for the MNIST training split: `n` seeded random "digits"
/// (random strokes of ink in the central 20×20 box, like MNIST's framing).
/// Generation cost does not depend on the pixel values, so no data files
/// are needed to time it.
pub fn synthetic_mnist(n: usize, seed: u64) -> Mnist {
    let side = datasets::mnist::SIDE;
    let mut rng = seeded(seed);
    let mut images = vec![0u8; n * side * side];
    for img in images.chunks_exact_mut(side * side) {
        for y in 4..24 {
            for x in 4..24 {
                if rng.gen_bool(0.2) {
                    img[y * side + x] = rng.gen_range(64..=255);
                }
            }
        }
    }
    Mnist {
        images,
        labels: (0..n).map(|i| (i % 10) as u8).collect(),
        n,
    }
}

/// Generates [`DATA_SAMPLES`] training samples of one distortion in
/// batches of [`BATCH`], as the training loop asks for them.
pub struct DataCase {
    /// The distortion.
    pub variant: Variant,
    source: Mnist,
}

impl DataCase {
    /// The case for `variant` over a synthetic source of [`DATA_SAMPLES`] digits.
    pub fn new(variant: Variant, seed: u64) -> DataCase {
        DataCase {
            variant,
            source: synthetic_mnist(DATA_SAMPLES, seed),
        }
    }

    /// Generates every sample of epoch `epoch` once; returns the pixel sum
    /// (so the work cannot be optimised away).
    pub fn generate(&self, epoch: u64) -> f64 {
        let data = DistortedMnist::new(self.variant, &self.source, &self.source, 42);
        let idx: Vec<usize> = (0..self.source.len()).collect();
        idx.chunks(BATCH)
            .map(|c| data.batch(epoch, c).images.data()[0] as f64)
            .sum()
    }
}

/// The process's peak resident set size in KiB (`VmHWM` of
/// `/proc/self/status`), if the platform has it.
pub fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// `criterion_main!` as the `warpgrad` CLI runs, on a worker of the rayon
/// pool (`engine::parallel::in_pool`), so a timed op does not pay for
/// handing its work to a sleeping thread. No allocator setting: tensor
/// memory is reused by `engine::pool`, as in any program using the crates.
#[macro_export]
macro_rules! bench_main {
    ($($group:path),+ $(,)?) => {
        fn main() {
            engine::parallel::in_pool(None, || {
                $($group();)+
                criterion::Criterion::default()
                    .configure_from_args()
                    .final_summary();
            });
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_are_found_by_name() {
        assert_eq!(workload("w3").map(|w| w.h_out), Some(30));
        assert!(workload("W7").is_none());
    }

    #[test]
    fn fused_and_two_step_agree() {
        let w = wl("tiny", 2, 3, 9, 7);
        let c = SamplerCase::new(w, 1);
        let (a, b) = (c.fused_fwd_bwd(), c.two_step_fwd_bwd());
        assert_eq!(a.shape(), [2, 6]);
        assert!(a.max_abs_diff(&b.reshape(&[2, 6])) < 1e-3);
    }

    #[test]
    fn models_train_and_infer() {
        for kind in ModelKind::ALL {
            let mut t = Trainer::new(kind, 4, 0);
            assert!(t.step().is_finite());
            assert_eq!(t.infer().shape(), [4, 10]);
        }
    }

    #[test]
    fn conv_cases_run() {
        for l in CONV_LAYERS {
            let c = ConvCase::new(l, 2, 0);
            let o = l.side - l.k + 1;
            assert_eq!(c.forward().shape(), [2, l.cout, o, o]);
            let (dx, dw, db) = c.backward();
            assert_eq!(dx.is_some(), l.need_input_grad);
            assert!(dw.is_some() && db.is_some());
        }
    }
}
