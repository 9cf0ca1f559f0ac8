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
/// With several transformers, each one's layout after its name.
pub fn theta_layout(model: &Model) -> String {
    match model.transformers().as_slice() {
        [] => "none (no spatial transformer)".into(),
        [st] => layout_of(st),
        sts => sts
            .iter()
            .map(|st| format!("{}: {}", st.name(), layout_of(st)))
            .collect::<Vec<_>>()
            .join(" | "),
    }
}

/// What the θ of one transformer means.
fn layout_of(st: &stn::SpatialTransformer) -> String {
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
        (
            "input_size",
            format!("{}x{side}x{side}", model.input().channels),
        ),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        stn::build_model("st-fcn-tps", 28, 3).unwrap()
    }

    fn file(tensors: Vec<(&str, Vec<usize>, Vec<f32>)>) -> Vec<u8> {
        let bytes: Vec<Vec<u8>> = tensors
            .iter()
            .map(|t| t.2.iter().flat_map(|v| v.to_le_bytes()).collect())
            .collect();
        let views: Vec<(String, TensorView)> = tensors
            .iter()
            .zip(&bytes)
            .map(|(t, b)| {
                (
                    t.0.to_string(),
                    TensorView::new(Dtype::F32, t.1.clone(), b).unwrap(),
                )
            })
            .collect();
        safetensors::serialize(views, None).unwrap()
    }

    #[test]
    fn parameters_round_trip_bit_for_bit_with_metadata() {
        let a = model();
        let meta = metadata(&a, "r", 7, 1);
        let bytes = to_bytes(&a, &meta).unwrap();
        let mut b = stn::build_model("st-fcn-tps", 28, 99).unwrap();
        load_into(&mut b, &bytes, Path::new("m.safetensors")).unwrap();
        for (p, q) in a.params().iter().zip(b.params()) {
            assert_eq!(p.name, q.name);
            let bits = |t: &Tensor| t.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&p.value), bits(&q.value), "{}", p.name);
        }
        let m = read_metadata(&bytes, Path::new("m.safetensors")).unwrap();
        assert_eq!(m["model"], "st-fcn-tps");
        assert_eq!(m["input_size"], "1x28x28");
        assert_eq!(m["step"], "7");
        assert!(
            m["theta_layout"].contains("4×4 control points"),
            "{}",
            m["theta_layout"]
        );
    }

    #[test]
    fn two_transformer_models_round_trip_with_each_layout() {
        let spec = stn::InputSpec {
            channels: 2,
            side: 42,
            classes: 19,
        };
        let a = stn::build_model_for("2st-fcn-proj", spec, 4).unwrap();
        let meta = metadata(&a, "addition", 3, 1);
        let bytes = to_bytes(&a, &meta).unwrap();
        let mut b = stn::build_model_for("2st-fcn-proj", spec, 5).unwrap();
        load_into(&mut b, &bytes, Path::new("m.safetensors")).unwrap();
        for (p, q) in a.params().iter().zip(b.params()) {
            assert_eq!(p.value, q.value, "{}", p.name);
        }
        let m = read_metadata(&bytes, Path::new("m.safetensors")).unwrap();
        assert_eq!(m["input_size"], "2x42x42");
        let t = &m["theta_layout"];
        assert!(
            t.starts_with("st1: [h11") && t.contains(" | st2: [h11"),
            "{t}"
        );
    }

    #[test]
    fn missing_extra_and_misshapen_tensors_are_errors_naming_them() {
        let a = model();
        let mut all: Vec<(&str, Vec<usize>, Vec<f32>)> = a
            .params()
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.value.shape().to_vec(),
                    p.value.data().to_vec(),
                )
            })
            .collect();
        let path = Path::new("w.safetensors");
        let err = |t: Vec<(&str, Vec<usize>, Vec<f32>)>| {
            let mut m = model();
            load_into(&mut m, &file(t), path).unwrap_err().to_string()
        };
        let e = err(all[1..].to_vec());
        assert!(e.contains(&format!("no tensor '{}'", all[0].0)), "{e}");
        let mut extra = all.clone();
        extra.push(("st.loc.fc9.weight", vec![1], vec![0.0]));
        let e = err(extra);
        assert!(
            e.contains("'st.loc.fc9.weight' is not a parameter of st-fcn-tps"),
            "{e}"
        );
        let n = all[0].2.len();
        all[0].1 = vec![n];
        let e = err(all);
        assert!(
            e.contains(&format!("tensor '{}' is F32 [{n}]", a.params()[0].name)),
            "{e}"
        );
        let e = load_into(&mut model(), b"not a file", path)
            .unwrap_err()
            .to_string();
        assert!(e.contains("w.safetensors: not a safetensors file"), "{e}");
    }
}
