//! The spatial-transformer layer (paper §3): localisation net → θ → grid
//! generator T_θ → sampler, as one [`Module`].
//!
//! ```text
//!   U ──┬──────────────────────────────┐
//!       └─ f_loc(U) = θ ─ T_θ(G) = grid ┴─ sampler(U, grid) = V
//! ```
//!
//! The localisation net is any module; the layer appends a regression head
//! whose weights are zero and whose bias is the transform's initial θ
//! ([`Transform::initial`], the identity by default), so training starts from
//! the identity warp (the fix for "collapsing"
//! transforms). Its parameters are prefixed with the layer's name and put in
//! the optimiser group [`LOC_GROUP`], which is usually given a smaller
//! learning rate. The output size may differ from the input's; the layer works
//! on images and on feature maps (every channel is warped alike).

use crate::transforms::Transform;
use crate::SampleOptions;
use engine::Var;
use layers::{Ctx, LayerRow, Linear, Module, Param};

/// Optimiser group of every localisation-net parameter.
pub const LOC_GROUP: &str = "loc";

/// A spatial transformer: localisation net, transform, output size, sampler.
pub struct SpatialTransformer {
    name: String,
    loc: Box<dyn Module>,
    head: Linear,
    transform: Box<dyn Transform>,
    out_hw: [usize; 2],
    opts: SampleOptions,
    channel: Option<usize>,
}

impl SpatialTransformer {
    /// A transformer named `name` whose localisation net `loc` maps the input
    /// (N×C×H×W) to N×`loc_features`; a regression head to θ is appended and
    /// initialised to the identity transform. The output is N×C×`out_hw`.
    pub fn new(
        name: &str,
        mut loc: Box<dyn Module>,
        loc_features: usize,
        transform: Box<dyn Transform>,
        out_hw: [usize; 2],
        opts: SampleOptions,
    ) -> SpatialTransformer {
        let mut head = Linear::regression_head("theta", loc_features, &transform.initial());
        loc.add_prefix(&format!("{name}.loc"));
        head.add_prefix(&format!("{name}.loc"));
        loc.set_group(LOC_GROUP);
        head.set_group(LOC_GROUP);
        SpatialTransformer {
            name: name.to_string(),
            loc,
            head,
            transform,
            out_hw,
            opts,
            channel: None,
        }
    }

    /// The same transformer sampling only input channel `c` (its
    /// localisation net still sees every channel): the output is N×1×H'×W'.
    pub fn sampling_channel(mut self, c: usize) -> SpatialTransformer {
        self.channel = Some(c);
        self
    }

    /// The one input channel this transformer samples, if not all.
    pub fn channel(&self) -> Option<usize> {
        self.channel
    }

    /// What the sampler reads: the input, or its sampled channel.
    pub fn sampled_input(&self, x: &Var) -> Var {
        match self.channel {
            Some(c) => x.narrow(1, c, 1),
            None => x.clone(),
        }
    }

    /// θ = f_loc(U) (N×P).
    pub fn theta(&self, x: &Var, ctx: &Ctx) -> Var {
        self.head.forward(&self.loc.forward(x, ctx), ctx)
    }

    /// V = sampler(U, T_θ(G)) for a given θ.
    pub fn sample(&self, x: &Var, theta: &Var) -> Var {
        self.transform.sample(x, theta, self.out_hw, self.opts)
    }

    /// The sampling grid T_θ(G) for a given θ (for pictures).
    pub fn grid(&self, theta: &Var) -> Var {
        self.transform
            .grid(theta, self.out_hw, self.opts.align_corners)
    }

    /// The transform.
    pub fn transform(&self) -> &dyn Transform {
        self.transform.as_ref()
    }

    /// The output size.
    pub fn out_hw(&self) -> [usize; 2] {
        self.out_hw
    }

    /// The sampler options.
    pub fn options(&self) -> SampleOptions {
        self.opts
    }

    /// The layer's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Module for SpatialTransformer {
    fn forward(&self, x: &Var, ctx: &Ctx) -> Var {
        let theta = self.theta(x, ctx);
        self.sample(&self.sampled_input(x), &theta)
    }

    fn params(&self) -> Vec<&Param> {
        layers::gather_params(&[&self.loc, &self.head])
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        let mut p = self.loc.params_mut();
        p.extend(self.head.params_mut());
        p
    }

    fn describe(&self) -> String {
        let channel = match self.channel {
            Some(c) => format!(", channel {}", c + 1),
            None => String::new(),
        };
        format!(
            "SpatialTransformer {} ({}, {} params, out {}×{}{channel})",
            self.name,
            self.transform.name(),
            self.transform.num_params(),
            self.out_hw[0],
            self.out_hw[1]
        )
    }

    fn output_shape(&self, input: &[usize]) -> Vec<usize> {
        assert!(
            input.len() == 4,
            "SpatialTransformer: input must be N×C×H×W, got {input:?}"
        );
        if let Some(c) = self.channel {
            assert!(
                c < input[1],
                "SpatialTransformer {}: samples channel {} of a {}-channel input",
                self.name,
                c + 1,
                input[1]
            );
        }
        let c = if self.channel.is_some() { 1 } else { input[1] };
        vec![input[0], c, self.out_hw[0], self.out_hw[1]]
    }

    fn add_prefix(&mut self, prefix: &str) {
        self.name = format!("{prefix}.{}", self.name);
        self.loc.add_prefix(prefix);
        self.head.add_prefix(prefix);
    }

    fn table_rows(&self, input: &[usize], rows: &mut Vec<LayerRow>) -> Vec<usize> {
        let mut loc_rows = Vec::new();
        let feat = self.loc.table_rows(input, &mut loc_rows);
        self.head.table_rows(&feat, &mut loc_rows);
        for mut r in loc_rows {
            r.description = format!("  loc: {}", r.description);
            rows.push(r);
        }
        let out = self.output_shape(input);
        rows.push(LayerRow {
            description: self.describe(),
            output_shape: out.clone(),
            params: 0,
        });
        out
    }
}

/// Several transformers side by side on the same input; their outputs are
/// concatenated on the channel axis (all must have the same output size).
pub struct ParallelTransformers {
    branches: Vec<SpatialTransformer>,
}

impl ParallelTransformers {
    /// The transformers, which must share an output size.
    ///
    /// # Panics
    /// If the list is empty or the output sizes differ.
    pub fn new(branches: Vec<SpatialTransformer>) -> ParallelTransformers {
        assert!(!branches.is_empty(), "ParallelTransformers: no branches");
        let hw = branches[0].out_hw;
        assert!(
            branches.iter().all(|b| b.out_hw == hw),
            "ParallelTransformers: every branch must have the output size {hw:?}"
        );
        ParallelTransformers { branches }
    }

    /// The transformers.
    pub fn branches(&self) -> &[SpatialTransformer] {
        &self.branches
    }
}

impl Module for ParallelTransformers {
    fn forward(&self, x: &Var, ctx: &Ctx) -> Var {
        let outs: Vec<Var> = self.branches.iter().map(|b| b.forward(x, ctx)).collect();
        Var::concat(&outs.iter().collect::<Vec<_>>(), 1)
    }

    fn params(&self) -> Vec<&Param> {
        let b: Vec<&dyn Module> = self.branches.iter().map(|b| b as &dyn Module).collect();
        layers::gather_params(&b)
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        self.branches
            .iter_mut()
            .flat_map(|b| b.params_mut())
            .collect()
    }

    fn describe(&self) -> String {
        format!("ParallelTransformers ×{}", self.branches.len())
    }

    fn output_shape(&self, input: &[usize]) -> Vec<usize> {
        let mut s = self.branches[0].output_shape(input);
        s[1] = self.branches.iter().map(|b| b.output_shape(input)[1]).sum();
        s
    }

    fn add_prefix(&mut self, prefix: &str) {
        for b in &mut self.branches {
            b.add_prefix(prefix);
        }
    }

    fn table_rows(&self, input: &[usize], rows: &mut Vec<LayerRow>) -> Vec<usize> {
        for b in &self.branches {
            b.table_rows(input, rows);
        }
        let out = self.output_shape(input);
        rows.push(LayerRow {
            description: self.describe(),
            output_shape: out.clone(),
            params: 0,
        });
        out
    }
}
