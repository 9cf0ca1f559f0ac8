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
    train_with(dir, model, &["--epochs", "1"])
}

/// As [`train`], with `extra` arguments (which must give `--epochs`).
fn train_with(dir: &Path, model: &str, extra: &[&str]) -> PathBuf {
    let mut args = vec![
        "train",
        "--dataset",
        "rts",
        "--model",
        model,
        "--train-size",
        "256",
        "--test-size",
        "64",
        "--batch-size",
        "32",
        "--out",
        dir.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let o = run(&args);
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

/// The (index, true label, prediction, p) of every image `viz` reported.
fn reported(stdout: &str) -> Vec<(usize, usize, usize, f32)> {
    stdout
        .lines()
        .filter_map(|l| {
            let r = l.strip_prefix("test #")?;
            let (i, r) = r.split_once(": true ")?;
            let (t, r) = r.split_once(", predicted ")?;
            let (p, r) = r.split_once(" (p ")?;
            let (prob, _) = r.split_once(')')?;
            Some((
                i.parse().ok()?,
                t.parse().ok()?,
                p.parse().ok()?,
                prob.parse().ok()?,
            ))
        })
        .collect()
}

#[test]
fn viz_picks_misclassified_low_confidence_and_random_images() {
    let d = tmp("pick");
    let ck = train(&d.join("run"), "st-cnn-aff");
    let pool = ["--pool", "64", "--count", "3"];
    // Misclassified: every image drawn is wrong, most confidently wrong first.
    let out = d.join("wrong");
    let o = viz(
        &ck,
        &out,
        &[&pool[..], &["--pick", "misclassified"]].concat(),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let r = reported(&text(&o.stdout));
    assert_eq!(r.len(), 3, "{}", text(&o.stdout));
    assert!(r.iter().all(|&(i, t, p, _)| t != p && i < 64), "{r:?}");
    assert!(text(&o.stdout).contains("--pick misclassified"));
    // Low confidence: the probabilities of the predictions ascend.
    let out = d.join("unsure");
    let o = viz(
        &ck,
        &out,
        &[&pool[..], &["--pick", "low-confidence"]].concat(),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let r = reported(&text(&o.stdout));
    assert_eq!(r.len(), 3);
    assert!(r.windows(2).all(|w| w[0].3 <= w[1].3), "{r:?}");
    // Random: seeded, so the same seed draws the same images.
    let pick = |seed: &str, dir: &str| {
        let o = viz(
            &ck,
            &d.join(dir),
            &[&pool[..], &["--pick", "random", "--seed", seed]].concat(),
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
        sorted_names(&d.join(dir))
    };
    let a = pick("4", "r1");
    assert_eq!(a.len(), 4, "3 pictures and the overview: {a:?}");
    assert_eq!(a, pick("4", "r2"));
    assert_ne!(a, pick("5", "r3"));
    let o = viz(&ck, &d.join("x"), &["--pick", "random", "--pool", "0"]);
    assert_one_line_error(&o, "--pool");
    let _ = std::fs::remove_dir_all(&d);
}

/// The number of frames of a GIF file.
fn gif_frames(path: &Path) -> usize {
    let mut dec = gif::DecodeOptions::new()
        .read_info(std::fs::File::open(path).unwrap())
        .unwrap();
    let mut n = 0;
    while dec.read_next_frame().unwrap().is_some() {
        n += 1;
    }
    n
}

#[test]
fn timeline_draws_every_epoch_and_survives_resume() {
    let d = tmp("timeline");
    let two = ["--epochs", "2"];
    let run_dir = d.join("run");
    train_with(&run_dir, "st-cnn-aff", &two);
    assert_eq!(
        sorted_names(&run_dir.join("timeline")),
        vec!["epoch-000.wgck", "epoch-001.wgck", "epoch-002.wgck"]
    );
    // Stopped in the second epoch and resumed: the same snapshots, bit for bit.
    let part = d.join("part");
    train_with(
        &part,
        "st-cnn-aff",
        &[&two[..], &["--stop-after", "11"]].concat(),
    );
    assert_eq!(
        sorted_names(&part.join("timeline")),
        vec!["epoch-000.wgck", "epoch-001.wgck"]
    );
    train_with(&part, "st-cnn-aff", &[&two[..], &["--resume"]].concat());
    for e in 0..3 {
        let name = format!("timeline/epoch-{e:03}.wgck");
        let a = std::fs::read(run_dir.join(&name)).unwrap();
        assert_eq!(a, std::fs::read(part.join(&name)).unwrap(), "{name}");
        assert!(a.len() < 1 << 20, "{name}: {} bytes", a.len());
    }

    let out = d.join("pics");
    let o = run(&[
        "viz",
        "--timeline",
        run_dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(sorted_names(&out), vec!["timeline.gif", "timeline.png"]);
    assert_eq!(gif_frames(&out.join("timeline.gif")), 3);
    // 8 rows of digits; the input and three epochs side by side.
    let (w, h) = png_size(&out.join("timeline.png"));
    assert!(w >= 4 * 84 && h >= 8 * 84, "timeline.png {w}×{h}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn timeline_of_a_bad_run_folder_is_a_one_line_error() {
    let d = tmp("timeline-bad");
    let out = d.join("pics");
    let tl = |dir: &Path| {
        run(&[
            "viz",
            "--timeline",
            dir.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let missing = d.join("missing");
    assert_one_line_error(&tl(&missing), &missing.display().to_string());
    // A folder, but not a run's.
    assert_one_line_error(&tl(&d), "checkpoint.wgck");
    // A run without a transformer has no timeline.
    let cnn = d.join("cnn");
    train(&cnn, "cnn");
    assert!(!cnn.join("timeline").exists());
    assert_one_line_error(&tl(&cnn), "no spatial transformer");
    // A run whose timeline folder was removed.
    let st = d.join("st");
    train(&st, "st-fcn-aff");
    std::fs::remove_dir_all(st.join("timeline")).unwrap();
    assert_one_line_error(&tl(&st), "timeline/");
    assert!(!out.exists(), "no output for a failed run");
    let _ = std::fs::remove_dir_all(&d);
}
