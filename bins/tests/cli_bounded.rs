//! Bounded readers, through the binary: `data inspect` streams in constant
//! memory, loading refuses a data file over `--max-decompressed` from its
//! header, a failed allocation is reported as such, and a checkpoint is
//! refused from its first bytes.

mod common;

use common::{assert_one_line_error, exe, run, text};
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

fn tmp(name: &str) -> PathBuf {
    common::tmp("cli-bounded", name)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A multi-member gzip file that decompresses to `header` followed by
/// `zero_mib` MiB of zeros: each MiB is the same ~1 kB member, so a file
/// claiming 1 GiB honestly holds it in about 1 MB, built in milliseconds.
fn write_zeros_gz(path: &Path, header: &[u8], zero_mib: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(&gzip(header)).unwrap();
    let member = gzip(&vec![0u8; 1 << 20]);
    for _ in 0..zero_mib {
        f.write_all(&member).unwrap();
    }
    f.flush().unwrap();
}

fn idx_header(code: u8, dims: &[u32]) -> Vec<u8> {
    let mut v = vec![0, 0, code, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v
}

/// Peak resident memory (VmHWM, kB) of a process, while it lives.
fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs the binary, sampling its peak resident memory every 5 ms; returns
/// the output and the last peak seen (kB).
fn run_measured(args: &[&str]) -> (Output, u64) {
    let mut child = exe()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak = 0;
    // The pipes are small and the outputs short: waiting before reading
    // them cannot block.
    while child.try_wait().unwrap().is_none() {
        if let Some(kb) = vm_hwm_kb(pid) {
            peak = peak.max(kb);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    (child.wait_with_output().unwrap(), peak)
}

#[test]
fn inspect_streams_a_gzip_claiming_1_gib_of_f64_in_small_memory() {
    let d = tmp("inspect");
    let f = d.join("zeros-f64.idx.gz");
    // 2^27 f64 = 1 GiB of zeros, present in full, in a ~1 MB file.
    write_zeros_gz(&f, &idx_header(0x0E, &[1 << 27]), 1024);
    let size = std::fs::metadata(&f).unwrap().len();
    assert!(size < 2 << 20, "{size}");
    let (o, peak_kb) = run_measured(&["data", "inspect", f.to_str().unwrap()]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(out.contains("elements: 134217728"), "{out}");
    assert!(out.contains("range:    0 .. 0"), "{out}");
    assert!(out.contains("mean:     0.0000"), "{out}");
    // Holding the data would take over 1 GiB; streaming takes a few MB.
    assert!(peak_kb > 0 && peak_kb < 64 << 10, "peak {peak_kb} kB");
    let _ = std::fs::remove_dir_all(&d);
}

/// A data folder whose training images claim `n` 28×28 images of zeros
/// (present in full, compressed), with `n` valid labels, and the real test
/// split.
fn big_mnist_dir(name: &str, n: u32) -> PathBuf {
    let d = tmp(name);
    let mib = (n as usize * 784).div_ceil(1 << 20);
    // Whole MiB of zeros, then cut to the exact length with one more member.
    let img = d.join("train-images-idx3-ubyte.gz");
    write_zeros_gz(&img, &idx_header(0x08, &[n, 28, 28]), mib - 1);
    let rest = n as usize * 784 - (mib - 1) * (1 << 20);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&img)
        .unwrap()
        .write_all(&gzip(&vec![0u8; rest]))
        .unwrap();
    let mut labels = idx_header(0x08, &[n]);
    labels.extend((0..n).map(|i| (i % 10) as u8));
    std::fs::write(d.join("train-labels-idx1-ubyte.gz"), gzip(&labels)).unwrap();
    for f in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        std::fs::copy(datasets::default_data_dir().join(f), d.join(f)).unwrap();
    }
    d
}

#[test]
fn loading_over_the_limit_is_refused_at_once_naming_limit_and_flag() {
    // 700 000 images: 549 MB decompressed, over the 512 MiB default.
    let d = big_mnist_dir("limit", 700_000);
    let png = d.join("p.png");
    let args = [
        "data",
        "preview",
        "--dataset",
        "mnist",
        "--data-dir",
        d.to_str().unwrap(),
        "--out",
        png.to_str().unwrap(),
    ];
    let (o, peak_kb) = run_measured(&args);
    assert_one_line_error(&o, "train-images-idx3-ubyte.gz");
    let err = text(&o.stderr);
    for needle in ["548800016 bytes", "536870912 bytes", "--max-decompressed"] {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
    assert!(peak_kb < 64 << 10, "peak {peak_kb} kB");
    assert!(!png.exists());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn max_decompressed_flag_sets_the_limit_for_every_command() {
    // Lowered to 1 KiB, the real MNIST labels (60 008 bytes) are refused.
    let dir = datasets::default_data_dir();
    let d = tmp("flag");
    let png = d.join("p.png");
    let o = run(&[
        "data",
        "preview",
        "--max-decompressed",
        "1K",
        "--data-dir",
        dir.to_str().unwrap(),
        "--out",
        png.to_str().unwrap(),
    ]);
    assert_one_line_error(&o, "train-labels-idx1-ubyte.gz");
    let err = text(&o.stderr);
    assert!(
        err.contains("60008 bytes") && err.contains("1024 bytes"),
        "{err}"
    );
    // A bad value names the flag.
    let o = run(&["data", "preview", "--max-decompressed", "lots"]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("--max-decompressed") && err.contains("'lots'"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_failed_allocation_is_reported_as_out_of_memory() {
    // 300 000 images (235 MB), allowed by the flag, under a 200 MB address
    // space: the loader's allocation fails and says so (no abort, no
    // "corrupt gzip").
    let d = big_mnist_dir("oom", 300_000);
    let png = d.join("p.png");
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 200000 && exec '{}' data preview --dataset mnist --max-decompressed 1G --data-dir '{}' --out '{}'",
            env!("CARGO_BIN_EXE_warpgrad"),
            d.display(),
            png.display()
        ))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert_one_line_error(&o, "train-images-idx3-ubyte.gz: out of memory");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn eval_of_an_endless_device_fails_at_once() {
    let (o, peak_kb) = run_measured(&["eval", "--checkpoint", "/dev/zero"]);
    assert_one_line_error(&o, "not a warpgrad checkpoint");
    assert!(text(&o.stderr).contains("/dev/zero"));
    assert!(peak_kb < 64 << 10, "peak {peak_kb} kB");
}
