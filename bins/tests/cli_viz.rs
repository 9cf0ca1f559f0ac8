//! `warpgrad viz` on a checkpoint of a tiny training run, through the binary.

mod common;

use common::{assert_one_line_error, run, text};
use std::path::{Path, PathBuf};
use std::process::Output;

fn tmp(name: &str) -> PathBuf {
    common::tmp("cli-viz", name)
}

/// `warpgrad viz --checkpoint ck --out out` and `extra` arguments.
fn viz(ck: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "viz",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// Trains a tiny run of `model` on RTS into `dir`; returns its checkpoint.
fn train(dir: &Path, model: &str) -> PathBuf {
    let o = run(&[
        "train",
        "--dataset",
        "rts",
        "--model",
        model,
        "--train-size",
        "256",
        "--test-size",
        "64",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--out",
        dir.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "train failed: {}", text(&o.stderr));
    dir.join("checkpoint.wgck")
}

/// Width and height of a PNG file.
fn png_size(path: &Path) -> (u32, u32) {
    let dec = png::Decoder::new(std::fs::File::open(path).unwrap());
    let r = dec.read_info().unwrap();
    (r.info().width, r.info().height)
}

fn sorted_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn viz_writes_one_picture_per_image_and_an_overview() {
    let d = tmp("st");
    let ck = train(&d.join("run"), "st-cnn-aff");
    let out = d.join("pics");
    let o = viz(&ck, &out, &["--count", "3", "--start", "5"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        sorted_names(&out),
        vec![
            "overview.png",
            "viz-00005.png",
            "viz-00006.png",
            "viz-00007.png"
        ]
    );
    for name in ["viz-00005.png", "viz-00006.png", "viz-00007.png"] {
        let (w, h) = png_size(&out.join(name));
        // Three panels of about 250 pixels side by side, plus text.
        assert!((700..1400).contains(&w), "{name}: width {w}");
        assert!((300..700).contains(&h), "{name}: height {h}");
        let bytes = std::fs::metadata(out.join(name)).unwrap().len();
        assert!((2_000..400_000).contains(&bytes), "{name}: {bytes} bytes");
    }
    let (w, h) = png_size(&out.join("overview.png"));
    assert!(w > 600 && h > 400, "overview {w}×{h}");
    // θ of every image, with its 3×3 matrix (affine), on stdout.
    let s = text(&o.stdout);
    for i in 5..8 {
        assert!(s.contains(&format!("test #{i}: true ")), "{s}");
    }
    assert_eq!(s.matches("theta = [").count(), 3, "{s}");
    assert_eq!(s.matches("matrix = [").count(), 3, "{s}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn viz_of_a_model_without_transformer_draws_inputs_and_says_so() {
    let d = tmp("cnn");
    let ck = train(&d.join("run"), "cnn");
    let out = d.join("pics");
    let o = viz(&ck, &out, &["--count", "2"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("has no spatial transformer"));
    assert_eq!(
        sorted_names(&out),
        vec!["overview.png", "viz-00000.png", "viz-00001.png"]
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn viz_bad_checkpoints_fail_with_one_line_naming_the_file() {
    let d = tmp("bad");
    let out = d.join("pics");
    // Not a checkpoint at all.
    let junk = d.join("junk.wgck");
    std::fs::write(&junk, b"this is not a checkpoint, just some text").unwrap();
    let o = viz(&junk, &out, &[]);
    assert_one_line_error(&o, &junk.display().to_string());
    // A missing file.
    let missing = d.join("missing.wgck");
    let o = viz(&missing, &out, &[]);
    assert_one_line_error(&o, &missing.display().to_string());
    assert!(!out.exists(), "no output folder for a failed run");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn viz_rejects_a_range_past_the_test_set() {
    let d = tmp("range");
    let ck = train(&d.join("run"), "st-fcn-aff");
    let out = d.join("pics");
    let o = viz(&ck, &out, &["--start", "9999", "--count", "2"]);
    assert_one_line_error(&o, "test set has 10000");
    let o = viz(&ck, &out, &["--count", "0"]);
    assert_one_line_error(&o, "--count");
    let _ = std::fs::remove_dir_all(&d);
}
