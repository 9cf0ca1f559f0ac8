//! `warpgrad export` against real runtimes: every model kind `warpgrad train`
//! builds is trained briefly, its θ head pushed well away from the identity
//! (so a wrong grid generator cannot hide behind an identity warp), exported
//! to ONNX and safetensors, and
//! - `warpgrad eval --weights` on the safetensors file writes the same logit
//!   bytes as `warpgrad eval --checkpoint`;
//! - tools/check_export.py (onnx.checker, onnxruntime, NumPy, in the venv of
//!   tools/python_env.sh) matches onnxruntime's logits on 256 test images to
//!   1e-4 relative with equal classes, and the safetensors tensors to the
//!   checkpoint's parameters bit for bit.
//!
//! Without the venv the Python half is skipped with a loud message, unless
//! the environment variable CI is set: then the test fails.
//! Bad input (unknown model, unwritable output, unsupported options) gives one
//! `error:` line and leaves no file behind.

mod common;

use common::{assert_one_line_error, exe, run, text};
use engine::Tensor;
use layers::Checkpoint;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn tmp(name: &str) -> PathBuf {
    common::tmp("export", name)
}

/// Every model `warpgrad train` builds, with the data set it is trained on
/// here: 28×28 (no pooling after the transformer) and 42×42 (pooling).
const KINDS: [(&str, &str); 8] = [
    ("fcn", "r"),
    ("cnn", "rts"),
    ("st-fcn-aff", "r"),
    ("st-fcn-proj", "r"),
    ("st-fcn-tps", "rts"),
    ("st-cnn-aff", "rts"),
    ("st-cnn-proj", "rts"),
    ("st-cnn-tps", "r"),
];

fn ok(o: std::process::Output, what: &str) -> String {
    assert!(o.status.success(), "{what} failed: {}", text(&o.stderr));
    text(&o.stdout)
}

/// A run of a few steps of `model` on `dataset` in `dir`.
fn train(dir: &Path, model: &str, dataset: &str) {
    let o = exe()
        .args(["train", "--model", model, "--dataset", dataset])
        .args([
            "--train-size",
            "128",
            "--test-size",
            "32",
            "--batch-size",
            "32",
        ])
        .args(["--epochs", "1", "--stop-after", "3", "--quiet", "--out"])
        .arg(dir)
        .output()
        .unwrap();
    ok(o, &format!("train {model}"));
}

/// A θ head bias far from the identity, different in every entry (a swapped
/// row/column or x/y in an exported grid generator changes the logits).
fn warped_theta(p: usize) -> Vec<f32> {
    match p {
        6 => vec![0.8, -0.3, 0.1, 0.2, 1.1, -0.15],
        8 => vec![0.9, -0.2, 0.1, 0.15, 1.05, -0.1, 0.2, -0.25],
        _ => (0..p).map(|i| 0.12 * (1.7 * i as f32).sin()).collect(),
    }
}

/// Rewrites the checkpoint with the transformer's θ bias set to [`warped_theta`].
fn warp_checkpoint(path: &Path) {
    let mut ck = Checkpoint::load(path).unwrap();
    let mut found = false;
    for (name, t) in &mut ck.params {
        if name == "st.loc.theta.bias" {
            let v = warped_theta(t.numel());
            *t = Tensor::from_vec(v, t.shape());
            found = true;
        }
    }
    assert!(found, "no st.loc.theta.bias in {}", path.display());
    ck.save(path).unwrap();
}

/// The venv's python, if set up (tools/python_env.sh).
fn python() -> Option<PathBuf> {
    let venv = std::env::var_os("WARPGRAD_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
            Some(cache.join("warpgrad-venv"))
        })?;
    let py = venv.join("bin/python");
    py.is_file().then_some(py)
}

#[test]
fn every_model_kind_round_trips_through_onnxruntime_and_numpy() {
    let dir = tmp("round-trip");
    let mut cases = Vec::new();
    for (model, dataset) in KINDS {
        let run_dir = dir.join(model);
        train(&run_dir, model, dataset);
        let ck = run_dir.join("checkpoint.wgck");
        if model.starts_with("st-") {
            warp_checkpoint(&ck);
        }
        let mut exports = vec![("onnx", "20", model.to_string())];
        if model == "st-cnn-aff" {
            // Before opset 20 the affine grid is a MatMul instead of AffineGrid.
            exports.push(("onnx", "16", format!("{model}-opset16")));
        }
        exports.push(("safetensors", "", model.to_string()));
        for (format, opset, name) in &exports {
            let out = dir.join(format!("{name}.{format}"));
            let mut c = exe();
            // The run folder stands for its checkpoint.
            c.args(["export", "--format", format, "--checkpoint"])
                .arg(&run_dir)
                .arg("--out")
                .arg(&out);
            if !opset.is_empty() {
                c.args(["--opset", opset]);
            }
            ok(c.output().unwrap(), &format!("export {name} {format}"));
            assert!(out.is_file());
        }
        let eval = |source: &[&str], logits: &Path, inputs: Option<&Path>| {
            let mut c = exe();
            c.arg("eval")
                .args(source)
                .args(["--test-size", "256", "--save-logits"])
                .arg(logits);
            if let Some(i) = inputs {
                c.arg("--save-inputs").arg(i);
            }
            ok(c.output().unwrap(), &format!("eval {model}"))
        };
        let (logits, inputs) = (
            dir.join(format!("{model}-logits.npy")),
            dir.join(format!("{model}-inputs.npy")),
        );
        let ck_s = ck.to_str().unwrap();
        let st_path = dir.join(format!("{model}.safetensors"));
        let st_s = st_path.to_str().unwrap();
        let a = eval(&["--checkpoint", ck_s], &logits, Some(&inputs));
        let wlogits = dir.join(format!("{model}-weights-logits.npy"));
        let b = eval(&["--weights", st_s, "--model", model], &wlogits, None);
        assert_eq!(
            fs::read(&logits).unwrap(),
            fs::read(&wlogits).unwrap(),
            "{model}: logits from the safetensors file differ from the checkpoint's"
        );
        // Same error rate and loss line, apart from where the weights came from.
        let tail = |s: &str| {
            s.lines()
                .next()
                .unwrap()
                .split_once("): ")
                .unwrap()
                .1
                .to_string()
        };
        assert_eq!(tail(&a), tail(&b));
        for (_, _, name) in exports.iter().filter(|e| e.0 == "onnx") {
            cases.push(serde_json::json!({
                "name": name,
                "onnx": dir.join(format!("{name}.onnx")),
                "safetensors": st_path,
                "checkpoint": ck,
                "inputs": inputs,
                "logits": logits,
            }));
        }
    }
    let Some(py) = python() else {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but the Python venv is missing: run tools/python_env.sh first");
        }
        eprintln!(
            "\n!!! SKIPPED the onnxruntime/NumPy half of the export test: no venv \
             (run tools/python_env.sh; CI runs it) !!!\n"
        );
        let _ = fs::remove_dir_all(&dir);
        return;
    };
    let manifest = dir.join("cases.json");
    fs::write(&manifest, serde_json::to_string(&cases).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/check_export.py");
    let o = Command::new(&py)
        .arg(&script)
        .arg(&manifest)
        .output()
        .unwrap();
    let out = text(&o.stdout);
    eprintln!("{out}");
    assert!(
        o.status.success(),
        "check_export.py failed:\n{out}\n{}",
        text(&o.stderr)
    );
    let results: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), cases.len(), "one result per case");
    for r in &results {
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["images"], 256, "{r}");
        assert!(r["max_rel_diff"].as_f64().unwrap() <= 1e-4, "{r}");
        assert_eq!(r["safetensors_ok"], true, "{r}");
    }
    let _ = fs::remove_dir_all(&dir);
}

/// Files in `dir` (to check that nothing, not even a temporary, was left).
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn bad_input_gives_one_error_line_and_no_file() {
    let dir = tmp("bad-input");
    let run_dir = dir.join("run");
    train(&run_dir, "st-cnn-proj", "rts");
    let ck = run_dir.join("checkpoint.wgck");
    let outs = dir.join("outs");
    fs::create_dir_all(&outs).unwrap();
    let export = |ck: &Path, extra: &[&str]| {
        exe()
            .arg("export")
            .arg("--checkpoint")
            .arg(ck)
            .args(extra)
            .output()
            .unwrap()
    };
    let onnx = outs.join("m.onnx");
    let onnx_s = onnx.to_str().unwrap();

    // A checkpoint of a model warpgrad does not know.
    let mut bad = Checkpoint::load(&ck).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(&bad.config).unwrap();
    cfg["model"] = "st-cnn-warp9".into();
    bad.config = cfg.to_string();
    let bad_ck = dir.join("unknown.wgck");
    bad.save(&bad_ck).unwrap();
    let o = export(&bad_ck, &["--format", "onnx", "--out", onnx_s]);
    assert_one_line_error(&o, "unknown model 'st-cnn-warp9'");
    assert!(text(&o.stderr).contains("unknown.wgck"), "names the file");

    // Unsupported option combinations.
    assert_one_line_error(
        &export(&ck, &["--format", "onnx", "--opset", "15", "--out", onnx_s]),
        "--opset 15 is not supported",
    );
    assert_one_line_error(
        &export(&ck, &["--format", "onnx", "--opset", "21", "--out", onnx_s]),
        "--opset 21 is not supported",
    );
    assert_one_line_error(
        &export(
            &ck,
            &["--format", "safetensors", "--opset", "20", "--out", onnx_s],
        ),
        "--opset applies to --format onnx only",
    );

    // Unwritable outputs: a missing folder, and a path that is a folder.
    let missing = outs.join("no-such-folder/m.onnx");
    let o = export(
        &ck,
        &["--format", "onnx", "--out", missing.to_str().unwrap()],
    );
    assert_one_line_error(&o, "cannot write");
    assert!(text(&o.stderr).contains("no-such-folder"));
    fs::create_dir_all(outs.join("taken")).unwrap();
    for format in ["onnx", "safetensors"] {
        let o = export(
            &ck,
            &[
                "--format",
                format,
                "--out",
                outs.join("taken").to_str().unwrap(),
            ],
        );
        assert_one_line_error(&o, "cannot write");
    }
    // A run folder without a checkpoint.
    assert_one_line_error(
        &export(&outs, &["--format", "onnx", "--out", onnx_s]),
        "has no checkpoint.wgck",
    );
    assert_eq!(
        listing(&outs),
        vec!["taken".to_string()],
        "no partial or temporary file left"
    );
    assert!(listing(&outs.join("taken")).is_empty());

    // Weights that do not fit the model asked for.
    let st = dir.join("m.safetensors");
    ok(
        export(
            &ck,
            &["--format", "safetensors", "--out", st.to_str().unwrap()],
        ),
        "export",
    );
    let o = run(&[
        "eval",
        "--weights",
        st.to_str().unwrap(),
        "--model",
        "st-cnn-aff",
        "--test-size",
        "8",
    ]);
    assert_one_line_error(&o, "holds model st-cnn-proj, not --model st-cnn-aff");
    let o = run(&[
        "eval",
        "--weights",
        ck.to_str().unwrap(),
        "--model",
        "st-cnn-proj",
        "--test-size",
        "8",
    ]);
    assert_one_line_error(&o, "not a safetensors file");
    let _ = fs::remove_dir_all(&dir);
}
