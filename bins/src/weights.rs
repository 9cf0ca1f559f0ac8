//! safetensors files of a model's parameters: written by `warpgrad export
//! --format safetensors`, read by `warpgrad eval --weights`.
//!
//! Each parameter is an F32 tensor under its layer path (`st.loc.conv1.weight`,
//! `cls.fc.bias`, ...), with the file's metadata from [`metadata`]. Values are
//! copied bit for bit both ways, so a model loaded from the file predicts
//! exactly what the checkpoint's does.

use crate::error::{msg, CliError};
use engine::Tensor;
use layers::Module;
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use stn::Model;

/// What the θ of a transform means, for the files' metadata.
pub fn theta_layout(model: &Model) -> String {
    let Some(st) = model.transformer() else {
        return "none (no spatial transformer)".into();
    };
    let t = st.transform();
    let [h, w] = st.out_hw();
    let what = match t.name() {
        "affine" => "A_theta row-major [a11, a12, a13, a21, a22, a23]: (x_s, y_s) = A (x_t, y_t, 1) (eq. 1)".to_string(),
        "proj" => "[h11, h12, h13, h21, h22, h23, h31, h32], h33 = 1: (x_s, y_s) = (H (x_t, y_t, 1)) projected".to_string(),
        "tps" => {
            let k = ((t.num_params() / 2) as f64).sqrt().round() as usize;
            format!("thin plate spline, offsets [dx_0, dy_0, dx_1, dy_1, ...] of {k}×{k} control points, point i·{k}+j at (linspace(-1, 1, {k})[j], linspace(-1, 1, {k})[i])")
        }
        other => format!("transform {other}, {} parameters", t.num_params()),
    };
    format!(
        "{what}; coordinates normalised to [-1, 1], x first; output {h}×{w}; sampler {:?}, padding {:?}, align_corners={}",
        st.options().mode,
        st.options().padding,
        st.options().align_corners
    )
}

/// The metadata both export formats carry.
pub fn metadata(model: &Model, dataset: &str, step: u64, epoch: u64) -> Vec<(String, String)> {
    let side = model.side();
    [
        ("model", model.name().to_string()),
        ("dataset", dataset.to_string()),
        ("input_size", format!("1x{side}x{side}")),
        ("warpgrad_version", env!("CARGO_PKG_VERSION").to_string()),
        ("theta_layout", theta_layout(model)),
        ("step", step.to_string()),
        ("epoch", epoch.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The safetensors file of the model's parameters with `meta`.
pub fn to_bytes(model: &Model, meta: &[(String, String)]) -> Result<Vec<u8>, CliError> {
    let params = model.params();
    let bytes: Vec<Vec<u8>> = params
        .iter()
        .map(|p| {
            p.value
                .data()
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect()
        })
        .collect();
    let mut views = Vec::with_capacity(params.len());
    for (p, b) in params.iter().zip(&bytes) {
        let view = TensorView::new(Dtype::F32, p.value.shape().to_vec(), b)
            .map_err(|e| msg(format!("parameter {}: {e}", p.name)))?;
        views.push((p.name.clone(), view));
    }
    let info: HashMap<String, String> = meta.iter().cloned().collect();
    safetensors::serialize(views, Some(info)).map_err(|e| msg(format!("safetensors: {e}")))
}

/// The metadata of a safetensors file (empty if it has none).
pub fn read_metadata(bytes: &[u8], path: &Path) -> Result<BTreeMap<String, String>, CliError> {
    let (_, m) = SafeTensors::read_metadata(bytes)
        .map_err(|e| msg(format!("{}: not a safetensors file ({e})", path.display())))?;
    Ok(m.metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect())
}

/// Sets every parameter of `model` from the safetensors file `bytes`; each
/// must be there as F32 with the parameter's shape, and nothing else may be.
pub fn load_into(model: &mut Model, bytes: &[u8], path: &Path) -> Result<(), CliError> {
    let file = path.display();
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| msg(format!("{file}: not a safetensors file ({e})")))?;
    let model_name = model.name().to_string();
    let mut params = model.params_mut();
    let known: std::collections::HashSet<String> = params.iter().map(|p| p.name.clone()).collect();
    if let Some(extra) = st.names().into_iter().find(|n| !known.contains(*n)) {
        return Err(msg(format!(
            "{file}: tensor '{extra}' is not a parameter of {model_name}"
        )));
    }
    for p in params.iter_mut() {
        let t = st.tensor(&p.name).map_err(|_| {
            msg(format!(
                "{file}: no tensor '{}' (a parameter of {model_name})",
                p.name
            ))
        })?;
        if t.dtype() != Dtype::F32 || t.shape() != p.value.shape() {
            return Err(msg(format!(
                "{file}: tensor '{}' is {:?} {:?}, {model_name} needs F32 {:?}",
                p.name,
                t.dtype(),
                t.shape(),
                p.value.shape()
            )));
        }
        let values = t
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        p.value = Tensor::from_vec(values, p.value.shape());
    }
    Ok(())
}
