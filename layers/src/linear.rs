//! Fully connected layer, weight stored `[out, in]` (as in PyTorch).
//!
//! Forward, x (N×in): `y = x·Wᵀ + b`. Backward, with `G = ∂L/∂y` (N×out):
//! `∂L/∂x = G·W`, `∂L/∂W = Gᵀ·x`, `∂L/∂b = Σ_n G[n, :]`.
//! The transposes are read through sgemm's strides, never materialised; the
//! bias sum runs over the batch in order (deterministic).

use crate::init::Init;
use crate::module::{Ctx, Module, Param};
use engine::pool;
use engine::rng::Rng;
use engine::{gemm, Tensor, Var};

/// Tracked `y = x·Wᵀ + b` for x (N×in), w (out×in), b (out).
pub fn linear(x: &Var, w: &Var, b: Option<&Var>) -> Var {
    let (xs, ws) = (x.shape(), w.shape());
    assert!(
        xs.len() == 2 && ws.len() == 2 && xs[1] == ws[1],
        "linear: input {xs:?} and weight {ws:?} do not fit (need N×in and out×in)"
    );
    let (n, din, dout) = (xs[0], xs[1], ws[0]);
    if let Some(b) = b {
        assert!(
            b.shape() == [dout],
            "linear: bias {:?} does not fit weight {ws:?}",
            b.shape()
        );
    }
    let (xv, wv) = (x.value().clone(), w.value().clone());
    // sgemm with beta = 0 writes every value without reading it.
    let mut y = pool::take_for_overwrite(n * dout);
    gemm(
        n,
        din,
        dout,
        xv.data(),
        false,
        wv.data(),
        true,
        &mut y,
        false,
    );
    if let Some(b) = b {
        for row in y.chunks_mut(dout.max(1)) {
            for (v, bb) in row.iter_mut().zip(b.value().data()) {
                *v += bb;
            }
        }
    }
    let out = Tensor::from_vec(y, &[n, dout]);
    let mut inputs = vec![x, w];
    if let Some(b) = b {
        inputs.push(b);
    }
    Var::custom_op("linear", &inputs, out, move |g, needs| {
        let gd = g.data();
        let dx = needs[0].then(|| {
            let mut v = pool::take_for_overwrite(n * din);
            // ∂x (N×in) = G (N×out) · W (out×in)
            gemm(n, dout, din, gd, false, wv.data(), false, &mut v, false);
            Tensor::from_vec(v, &[n, din])
        });
        let dw = needs[1].then(|| {
            let mut v = pool::take_for_overwrite(dout * din);
            // ∂W (out×in) = Gᵀ (out×N) · x (N×in)
            gemm(dout, n, din, gd, true, xv.data(), false, &mut v, false);
            Tensor::from_vec(v, &[dout, din])
        });
        let mut r = vec![dx, dw];
        if needs.len() == 3 {
            r.push(needs[2].then(|| {
                let mut v = vec![0.0f32; dout];
                for row in gd.chunks(dout.max(1)) {
                    for (a, b) in v.iter_mut().zip(row) {
                        *a += b;
                    }
                }
                Tensor::from_vec(v, &[dout])
            }));
        }
        r
    })
}

/// Fully connected layer.
#[derive(Debug, Clone)]
pub struct Linear {
    /// Weight `[out, in]`.
    pub weight: Param,
    /// Bias `[out]`, if any.
    pub bias: Option<Param>,
}

impl Linear {
    /// Kaiming-uniform weights and zero bias; parameters `"{name}.weight"`,
    /// `"{name}.bias"`.
    pub fn new(name: &str, din: usize, dout: usize, rng: &mut Rng) -> Linear {
        Linear::with_init(name, din, dout, &Init::KaimingUniform, &Init::Zeros, rng)
    }

    /// Explicit initialisers.
    pub fn with_init(
        name: &str,
        din: usize,
        dout: usize,
        weight: &Init,
        bias: &Init,
        rng: &mut Rng,
    ) -> Linear {
        Linear {
            weight: Param::new(format!("{name}.weight"), weight.tensor(&[dout, din], rng)),
            bias: Some(Param::new(
                format!("{name}.bias"),
                bias.tensor(&[dout], rng),
            )),
        }
    }

    /// A regression head with zero weights and the given bias, e.g. the
    /// identity affine transform `[1, 0, 0, 0, 1, 0]`: the output starts at
    /// `bias` whatever the input.
    pub fn regression_head(name: &str, din: usize, bias: &[f32]) -> Linear {
        Linear {
            weight: Param::new(format!("{name}.weight"), Tensor::zeros(&[bias.len(), din])),
            bias: Some(Param::new(
                format!("{name}.bias"),
                Tensor::from_vec(bias.to_vec(), &[bias.len()]),
            )),
        }
    }

    /// Drops the bias.
    pub fn without_bias(mut self) -> Linear {
        self.bias = None;
        self
    }
}

impl Module for Linear {
    fn forward(&self, x: &Var, ctx: &Ctx) -> Var {
        let w = ctx.param(&self.weight);
        let b = self.bias.as_ref().map(|b| ctx.param(b));
        linear(x, &w, b.as_ref())
    }

    fn params(&self) -> Vec<&Param> {
        std::iter::once(&self.weight)
            .chain(self.bias.as_ref())
            .collect()
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        std::iter::once(&mut self.weight)
            .chain(self.bias.as_mut())
            .collect()
    }

    fn describe(&self) -> String {
        let s = self.weight.value.shape();
        format!(
            "Linear {} {}→{}",
            self.weight.name.trim_end_matches(".weight"),
            s[1],
            s[0]
        )
    }

    fn output_shape(&self, input: &[usize]) -> Vec<usize> {
        let s = self.weight.value.shape();
        assert!(
            input.len() == 2 && input[1] == s[1],
            "Linear: input {input:?} does not fit weight {s:?}"
        );
        vec![input[0], s[0]]
    }
}
