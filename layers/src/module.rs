//! Modules, parameters and the forward context.
//!
//! # Design
//! * A [`Param`] is a named tensor owned by its layer. Its `name` is a unique
//!   path such as `"loc.conv1.weight"`; its `group` (default `"default"`) picks
//!   a learning-rate multiplier in the optimisers, e.g. `"loc"` for a
//!   localisation net.
//! * A [`Module`] is stateless apart from its parameters: train/eval mode and
//!   the dropout stream live in the [`Ctx`] passed to `forward`, so the same
//!   model value serves training and evaluation.
//! * [`Ctx::param`] binds a parameter for one forward pass: a tape leaf in
//!   training (the binding name → `Var` is remembered), a constant in
//!   evaluation (nothing is recorded). After `loss.backward()`,
//!   [`Ctx::gradients`] returns one gradient per parameter in the order of
//!   [`Module::params`]; a parameter bound several times (weight sharing)
//!   receives the sum, in binding order.
//! * Names: layers are built with a local name (`"conv1"`); a container that
//!   owns sub-modules prefixes them with [`Module::add_prefix`] (so a
//!   localisation net becomes `"loc.conv1.weight"`). Two parameters with one
//!   name would silently share their gradient sum, so duplicates panic
//!   wherever parameters are gathered: [`Sequential::params`] and
//!   [`gather_params`] (naming both layers), [`Ctx::param`] (two different
//!   parameters bound under one name), [`Ctx::gradients`] and
//!   [`check_unique_names`] (naming both positions).

use engine::rng::{derive, mix64, Rng};
use engine::{Grads, Tape, Tensor, Var};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write;

/// The default parameter group.
pub const DEFAULT_GROUP: &str = "default";

/// Stream key of dropout masks in [`engine::rng::derive`].
pub const DROPOUT_STREAM: u64 = 0xD80_u64;

/// A named trainable tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Unique path, e.g. `"loc.conv1.weight"`.
    pub name: String,
    /// The current value.
    pub value: Tensor,
    /// Parameter group, for per-group learning-rate multipliers.
    pub group: String,
}

impl Param {
    /// A parameter in the default group.
    pub fn new(name: impl Into<String>, value: Tensor) -> Param {
        Param {
            name: name.into(),
            value,
            group: DEFAULT_GROUP.to_string(),
        }
    }

    /// Number of scalars.
    pub fn numel(&self) -> usize {
        self.value.numel()
    }
}

/// Context of one forward pass: the tape (or none, for evaluation), the
/// mode, the dropout stream and the parameter bindings.
pub struct Ctx {
    tape: Option<Tape>,
    training: bool,
    seed: u64,
    step: u64,
    /// Name, the bound parameter's address (to tell weight sharing from
    /// two parameters with one name) and its leaf.
    bindings: RefCell<Vec<(String, usize, Var)>>,
}

impl Ctx {
    /// A training pass recorded on `tape`; dropout masks come from
    /// `derive(seed, &[DROPOUT_STREAM, step, layer key])`.
    pub fn train(tape: &Tape, seed: u64, step: u64) -> Ctx {
        Ctx {
            tape: Some(tape.clone()),
            training: true,
            seed,
            step,
            bindings: RefCell::new(Vec::new()),
        }
    }

    /// An evaluation pass: parameters are constants, nothing is recorded,
    /// dropout is the identity.
    pub fn eval() -> Ctx {
        Ctx {
            tape: None,
            training: false,
            seed: 0,
            step: 0,
            bindings: RefCell::new(Vec::new()),
        }
    }

    /// True in a training pass.
    pub fn is_training(&self) -> bool {
        self.training
    }

    /// The tape, if this pass records one.
    pub fn tape(&self) -> Option<&Tape> {
        self.tape.as_ref()
    }

    /// The training step this context was made for.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// Binds a parameter for this pass: a leaf on the tape (remembered under
    /// its name), or a constant in evaluation.
    ///
    /// # Panics
    /// In training, if a *different* parameter was already bound under the
    /// same name in this pass (binding the same one again is weight sharing).
    pub fn param(&self, p: &Param) -> Var {
        match &self.tape {
            Some(t) => {
                let addr = p as *const Param as usize;
                let mut b = self.bindings.borrow_mut();
                if let Some((_, other, _)) = b.iter().find(|(n, a, _)| *n == p.name && *a != addr) {
                    panic!(
                        "duplicate parameter name {:?}: two different parameters (at {other:#x} and {addr:#x}) \
                         are bound under it in one pass, so each would receive the sum of both \
                         gradients; give sub-modules distinct prefixes",
                        p.name
                    );
                }
                let v = t.leaf(p.value.clone());
                b.push((p.name.clone(), addr, v.clone()));
                v
            }
            None => Var::constant(p.value.clone()),
        }
    }

    /// The random stream of the layer with key `layer_key` at this step.
    pub fn dropout_rng(&self, layer_key: u64) -> Rng {
        derive(self.seed, &[DROPOUT_STREAM, self.step, layer_key])
    }

    /// One gradient per parameter, in the order given (normally
    /// `model.params()`); zeros for a parameter not used in this pass.
    ///
    /// # Panics
    /// If two of `params` share a name (see [`check_unique_names`]).
    pub fn gradients(&self, grads: &Grads, params: &[&Param]) -> Vec<Tensor> {
        check_unique_names(params);
        let bindings = self.bindings.borrow();
        params
            .iter()
            .map(|p| {
                let mut acc: Option<Tensor> = None;
                for (_, _, v) in bindings.iter().filter(|(n, _, _)| *n == p.name) {
                    if let Some(g) = grads.get(v) {
                        acc = Some(match acc {
                            None => g.clone(),
                            Some(a) => a.add(g),
                        });
                    }
                }
                acc.unwrap_or_else(|| Tensor::zeros(p.value.shape()))
            })
            .collect()
    }
}

/// One row of a layer table.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerRow {
    /// What the layer is, e.g. `"Conv2d conv1 1→32 k9 s1 p0"`.
    pub description: String,
    /// Output shape for the given input shape.
    pub output_shape: Vec<usize>,
    /// Number of parameter scalars.
    pub params: usize,
}

/// A layer or a network of layers.
pub trait Module {
    /// The forward pass.
    fn forward(&self, x: &Var, ctx: &Ctx) -> Var;

    /// The parameters, in a fixed order.
    fn params(&self) -> Vec<&Param>;

    /// The parameters, mutably, in the same order as [`Module::params`].
    fn params_mut(&mut self) -> Vec<&mut Param>;

    /// A one-line description for a layer table.
    fn describe(&self) -> String;

    /// The output shape for an input shape.
    ///
    /// # Panics
    /// If the input shape does not fit the layer.
    fn output_shape(&self, input: &[usize]) -> Vec<usize>;

    /// Prepends `prefix.` to every parameter name (and to any other name the
    /// module keys on, e.g. a dropout stream).
    fn add_prefix(&mut self, prefix: &str) {
        for p in self.params_mut() {
            p.name = format!("{prefix}.{}", p.name);
        }
    }

    /// Puts every parameter in `group`.
    fn set_group(&mut self, group: &str) {
        for p in self.params_mut() {
            p.group = group.to_string();
        }
    }

    /// Appends this module's table rows for `input` and returns its output
    /// shape. Containers override it to list their children.
    fn table_rows(&self, input: &[usize], rows: &mut Vec<LayerRow>) -> Vec<usize> {
        let out = self.output_shape(input);
        rows.push(LayerRow {
            description: self.describe(),
            output_shape: out.clone(),
            params: self.params().iter().map(|p| p.numel()).sum(),
        });
        out
    }
}

/// A text table of the layers of `m` for an input shape, with a total.
pub fn layer_table(m: &dyn Module, input: &[usize]) -> String {
    let mut rows = Vec::new();
    m.table_rows(input, &mut rows);
    let width = rows
        .iter()
        .map(|r| r.description.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let mut s = String::new();
    let _ = writeln!(s, "{:<width$}  {:<18} {:>10}", "layer", "output", "params");
    let _ = writeln!(
        s,
        "{:<width$}  {:<18} {:>10}",
        "input",
        format!("{input:?}"),
        ""
    );
    for r in &rows {
        let _ = writeln!(
            s,
            "{:<width$}  {:<18} {:>10}",
            r.description,
            format!("{:?}", r.output_shape),
            r.params
        );
    }
    let total: usize = rows.iter().map(|r| r.params).sum();
    let _ = writeln!(s, "{:<width$}  {:<18} {:>10}", "total", "", total);
    s
}

/// Number of parameter scalars of a module.
pub fn param_count(m: &dyn Module) -> usize {
    m.params().iter().map(|p| p.numel()).sum()
}

/// Panics if two parameters share a name (a programmer error: the
/// optimiser state, the gradients and checkpoints are keyed by name). The
/// message names both positions in `params`.
pub fn check_unique_names(params: &[&Param]) {
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(params.len());
    for (i, p) in params.iter().enumerate() {
        if let Some(first) = seen.insert(p.name.as_str(), i) {
            panic!(
                "duplicate parameter name {:?}: parameters #{first} and #{i} of the model; \
                 give sub-modules distinct prefixes",
                p.name
            );
        }
    }
}

/// The parameters of `layers`, in order, checked for duplicate names.
///
/// # Panics
/// If two parameters share a name; the message names both layers (index
/// and description), the path of each.
pub fn gather_params<'a>(layers: &[&'a dyn Module]) -> Vec<&'a Param> {
    let mut out = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (li, l) in layers.iter().enumerate() {
        for p in l.params() {
            if let Some(first) = seen.insert(p.name.as_str(), li) {
                panic!(
                    "duplicate parameter name {:?}: in layer #{first} ({}) and layer #{li} ({}); \
                     give sub-modules distinct prefixes",
                    p.name,
                    layers[first].describe(),
                    l.describe()
                );
            }
            out.push(p);
        }
    }
    out
}

/// A 64-bit key from a name (FNV-1a then SplitMix), for per-layer streams.
pub fn name_key(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix64(h)
}

/// Modules applied one after the other.
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Module>>,
}

impl Sequential {
    /// An empty sequence.
    pub fn new() -> Sequential {
        Sequential { layers: Vec::new() }
    }

    /// Appends a layer (builder style).
    pub fn push(mut self, layer: impl Module + 'static) -> Sequential {
        self.layers.push(Box::new(layer));
        self
    }

    /// Appends a boxed layer.
    pub fn push_boxed(&mut self, layer: Box<dyn Module>) {
        self.layers.push(layer);
    }

    /// The layers.
    pub fn layers(&self) -> &[Box<dyn Module>] {
        &self.layers
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// True if there are no layers.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl Module for Sequential {
    fn forward(&self, x: &Var, ctx: &Ctx) -> Var {
        let mut h = x.clone();
        for l in &self.layers {
            h = l.forward(&h, ctx);
        }
        h
    }

    /// # Panics
    /// If two layers have a parameter of the same name (both are named).
    fn params(&self) -> Vec<&Param> {
        let layers: Vec<&dyn Module> = self.layers.iter().map(|l| l as &dyn Module).collect();
        gather_params(&layers)
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        self.layers
            .iter_mut()
            .flat_map(|l| l.params_mut())
            .collect()
    }

    fn describe(&self) -> String {
        format!("Sequential({} layers)", self.layers.len())
    }

    fn output_shape(&self, input: &[usize]) -> Vec<usize> {
        self.layers
            .iter()
            .fold(input.to_vec(), |s, l| l.output_shape(&s))
    }

    fn add_prefix(&mut self, prefix: &str) {
        for l in &mut self.layers {
            l.add_prefix(prefix);
        }
    }

    fn table_rows(&self, input: &[usize], rows: &mut Vec<LayerRow>) -> Vec<usize> {
        let mut s = input.to_vec();
        for l in &self.layers {
            s = l.table_rows(&s, rows);
        }
        s
    }
}

/// A boxed module is a module (so containers can hold `Box<dyn Module>`).
impl<M: Module + ?Sized> Module for Box<M> {
    fn forward(&self, x: &Var, ctx: &Ctx) -> Var {
        (**self).forward(x, ctx)
    }
    fn params(&self) -> Vec<&Param> {
        (**self).params()
    }
    fn params_mut(&mut self) -> Vec<&mut Param> {
        (**self).params_mut()
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn output_shape(&self, input: &[usize]) -> Vec<usize> {
        (**self).output_shape(input)
    }
    fn add_prefix(&mut self, prefix: &str) {
        (**self).add_prefix(prefix)
    }
    fn set_group(&mut self, group: &str) {
        (**self).set_group(group)
    }
    fn table_rows(&self, input: &[usize], rows: &mut Vec<LayerRow>) -> Vec<usize> {
        (**self).table_rows(input, rows)
    }
}
