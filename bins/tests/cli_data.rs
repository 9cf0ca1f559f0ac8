//! `warpgrad data`: inspect, preview and export, run through the binary.

mod common;

use common::{assert_one_line_error, run, text};
use std::path::{Path, PathBuf};
use std::process::Output;

fn tmp(name: &str) -> PathBuf {
    common::tmp("cli-data", name)
}

fn mnist(file: &str) -> PathBuf {
    datasets::default_data_dir().join(file)
}

fn stdout(o: &Output) -> String {
    text(&o.stdout)
}

fn stderr(o: &Output) -> String {
    text(&o.stderr)
}

/// The value after `key` on the line that starts with it.
fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no line {key:?} in:\n{text}"))
        .trim()
}

/// Asserts a failed run with one error line naming `file` and no panic.
fn assert_clean_failure(o: &Output, file: &Path) {
    assert_one_line_error(o, &file.display().to_string());
}

#[test]
fn inspect_labels_prints_dims_and_a_histogram_of_all_labels() {
    let f = mnist("t10k-labels-idx1-ubyte.gz");
    let o = run(&["data", "inspect", f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(field(&out, "dims:"), "10000");
    assert!(field(&out, "magic:").starts_with("00 00 08 01"), "{out}");
    assert!(field(&out, "type:").starts_with("u8"), "{out}");
    assert_eq!(field(&out, "range:"), "0 .. 9");
    // The ten class counts add up to the number of labels.
    let mut sum = 0usize;
    for digit in 0..10 {
        let line = field(&out, &format!("  {digit}:"));
        sum += line
            .split_whitespace()
            .next()
            .unwrap()
            .parse::<usize>()
            .unwrap();
    }
    assert_eq!(sum, 10000);
    assert_eq!(field(&out, "  total:"), "10000");
    // Digit 1 is the most common test label (1135 of them).
    assert!(field(&out, "  1:").starts_with("1135"), "{out}");
}

#[test]
fn inspect_images_prints_three_dims_and_no_histogram() {
    let f = mnist("train-images-idx3-ubyte.gz");
    let o = run(&["data", "inspect", f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(field(&out, "dims:"), "60000 × 28 × 28");
    assert_eq!(field(&out, "elements:"), "47040000");
    assert_eq!(field(&out, "range:"), "0 .. 255");
    assert!(!out.contains("labels:"), "{out}");
}

#[test]
fn inspect_bad_files_fail_with_one_line_naming_the_file() {
    let d = tmp("bad");
    // Bad magic: the first two bytes must be zero.
    let bad = d.join("bad-magic.idx");
    std::fs::write(&bad, [0x12, 0x34, 0x08, 0x01, 0, 0, 0, 2, 1, 2]).unwrap();
    let o = run(&["data", "inspect", bad.to_str().unwrap()]);
    assert_clean_failure(&o, &bad);
    assert!(stderr(&o).contains("magic"), "{}", stderr(&o));

    // Truncated data: the header claims 100 labels, 3 follow.
    let cut = d.join("truncated.idx");
    std::fs::write(&cut, [0, 0, 0x08, 0x01, 0, 0, 0, 100, 1, 2, 3]).unwrap();
    let o = run(&["data", "inspect", cut.to_str().unwrap()]);
    assert_clean_failure(&o, &cut);

    // Truncated header.
    let short = d.join("short.idx");
    std::fs::write(&short, [0, 0, 0x08]).unwrap();
    let o = run(&["data", "inspect", short.to_str().unwrap()]);
    assert_clean_failure(&o, &short);

    // A missing file.
    let none = d.join("missing.idx");
    let o = run(&["data", "inspect", none.to_str().unwrap()]);
    assert_clean_failure(&o, &none);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn preview_writes_a_png_of_the_montage_size() {
    let d = tmp("preview");
    let out = d.join("rts.png");
    let o = run(&[
        "data",
        "preview",
        "--dataset",
        "rts",
        "--split",
        "train",
        "--seed",
        "3",
        "--size",
        "16",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dec = png::Decoder::new(std::fs::File::open(&out).unwrap());
    let reader = dec.read_info().unwrap();
    let info = reader.info();
    // 8 columns of 42×2-pixel cells with 2-pixel gaps; 2 rows under a
    // 14-pixel title bar (text line 10 + 2 gaps of 2).
    assert_eq!(info.width, 8 * (84 + 2) + 2);
    assert_eq!(info.height, 14 + 2 * (84 + 2) + 2);
    assert!(stdout(&o).contains("16 samples of rts train (seed 3"));
    // No temporary file left next to it.
    let names: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec!["rts.png"]);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn preview_rejects_an_unknown_dataset_in_one_line() {
    let d = tmp("preview-bad");
    let out = d.join("x.png");
    let o = run(&[
        "data",
        "preview",
        "--dataset",
        "zz",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("unknown dataset 'zz'"), "{err}");
    assert!(!out.exists());
    let _ = std::fs::remove_dir_all(&d);
}

/// Exports `dataset`/`split` with the given extra flags and reads the files back.
fn export(dataset: &str, split: &str, extra: &[&str]) -> (datasets::IdxArray, datasets::IdxArray) {
    let d = tmp(&format!("export-{dataset}-{split}-{}", extra.join("")));
    let mut args = vec!["data", "export", "--dataset", dataset, "--split", split];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--out", d.to_str().unwrap()]);
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let images =
        datasets::read_idx(d.join(format!("{dataset}-{split}-images-idx3-ubyte.gz"))).unwrap();
    let labels =
        datasets::read_idx(d.join(format!("{dataset}-{split}-labels-idx1-ubyte.gz"))).unwrap();
    let _ = std::fs::remove_dir_all(&d);
    (images, labels)
}

#[test]
fn export_round_trips_through_read_idx() {
    let test_labels = datasets::read_idx(mnist("t10k-labels-idx1-ubyte.gz")).unwrap();
    let (images, labels) = export("p", "test", &["--size", "50"]);
    assert_eq!(images.dims(), &[50, 28, 28]);
    assert_eq!(images.idx_type(), datasets::IdxType::U8);
    assert_eq!(labels.dims(), &[50]);
    // Distortion moves pixels, never labels: the first 50 test labels.
    assert_eq!(labels.as_u8().unwrap(), &test_labels.as_u8().unwrap()[..50]);
    let px = images.as_u8().unwrap();
    assert!(px.iter().any(|&v| v > 200), "digits are bright");
    assert!(
        px.iter().filter(|&&v| v == 0).count() > px.len() / 2,
        "mostly background"
    );

    // RTS lives on the 42×42 canvas.
    let (images, labels) = export("rts", "train", &["--size", "20", "--seed", "5"]);
    assert_eq!(images.dims(), &[20, 42, 42]);
    let train_labels = datasets::read_idx(mnist("train-labels-idx1-ubyte.gz")).unwrap();
    assert_eq!(
        labels.as_u8().unwrap(),
        &train_labels.as_u8().unwrap()[..20]
    );
}

#[test]
fn export_is_deterministic_and_a_prefix_of_larger_exports() {
    let (a, _) = export("tc", "test", &["--size", "12"]);
    let (b, _) = export("tc", "test", &["--size", "30"]);
    assert_eq!(a.dims(), &[12, 60, 60]);
    let n = 12 * 60 * 60;
    assert_eq!(a.as_u8().unwrap(), &b.as_u8().unwrap()[..n]);
    // The train split depends on the seed; the test split does not.
    let (s1, _) = export("r", "train", &["--size", "5", "--seed", "1"]);
    let (s2, _) = export("r", "train", &["--size", "5", "--seed", "2"]);
    assert_ne!(s1.as_u8().unwrap(), s2.as_u8().unwrap());
}
