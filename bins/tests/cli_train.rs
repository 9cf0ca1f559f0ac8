//! The guarantees of `warpgrad train`, each on a tiny run through the real
//! binary: same seed → same bytes, thread count does not matter, stopped or
//! killed runs resume to the identical checkpoint, bad input → one clear line.

mod common;

use common::{assert_one_line_error, exe, metrics, run, text};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn tmp(name: &str) -> PathBuf {
    common::tmp("cli-train", name)
}

const TINY: &[&str] = &[
    "train",
    "--dataset",
    "rts",
    "--model",
    "st-cnn-aff",
    "--train-size",
    "256",
    "--test-size",
    "64",
    "--epochs",
    "2",
    "--batch-size",
    "32",
    "--log-every",
    "3",
    "--quiet",
];

fn train(out: &Path, extra: &[&str], threads: &str) -> Output {
    train_with_kernels(out, extra, threads, None)
}

/// `train` with the kernel builds capped by `WARPGRAD_SIMD` (`None`: the
/// best this CPU has).
fn train_with_kernels(out: &Path, extra: &[&str], threads: &str, simd: Option<&str>) -> Output {
    let mut cmd = exe();
    cmd.args(TINY)
        .arg("--out")
        .arg(out)
        .args(extra)
        .env("RAYON_NUM_THREADS", threads)
        .env_remove("WARPGRAD_SIMD");
    if let Some(simd) = simd {
        cmd.env("WARPGRAD_SIMD", simd);
    }
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "train failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn checkpoint(dir: &Path) -> Vec<u8> {
    fs::read(dir.join("checkpoint.wgck")).unwrap()
}

#[test]
fn same_seed_twice_and_any_thread_count_give_identical_runs() {
    let (a, b, c) = (tmp("a"), tmp("b"), tmp("c"));
    train(&a, &[], "2");
    train(&b, &[], "2");
    train(&c, &[], "1");
    let ma = metrics(&a);
    assert!(
        ma.iter().filter(|v| v["type"] == "epoch").count() == 2,
        "{ma:?}"
    );
    assert_eq!(ma, metrics(&b));
    assert_eq!(ma, metrics(&c), "1 thread vs 2 threads");
    assert_eq!(checkpoint(&a), checkpoint(&b));
    assert_eq!(checkpoint(&a), checkpoint(&c), "1 thread vs 2 threads");
    // Another seed gives another run.
    let d = tmp("d");
    train(&d, &["--seed", "2"], "2");
    assert_ne!(checkpoint(&a), checkpoint(&d));
}

/// The convolution's and the sampler's kernels sum in the same order in
/// every build, so a run is the same on an AVX-512, an AVX2-only and a
/// non-x86 machine: here the best build of this CPU against the builds
/// capped at AVX2 and at portable code.
#[test]
fn every_kernel_build_gives_the_identical_run() {
    let best = tmp("simd-best");
    train_with_kernels(&best, &[], "2", None);
    for cap in ["avx2", "portable"] {
        let capped = tmp(&format!("simd-{cap}"));
        train_with_kernels(&capped, &[], "2", Some(cap));
        assert_eq!(metrics(&best), metrics(&capped), "best build vs {cap}");
        assert_eq!(
            checkpoint(&best),
            checkpoint(&capped),
            "best build vs {cap}"
        );
    }
}

#[test]
fn a_stopped_run_resumes_to_the_identical_checkpoint() {
    let (full, part) = (tmp("full"), tmp("part"));
    train(&full, &[], "2");
    // Stop in the middle of the first epoch (8 steps per epoch), then resume.
    train(&part, &["--stop-after", "5"], "2");
    let o = exe().args(TINY).arg("--out").arg(&part).output().unwrap();
    assert!(
        !o.status.success(),
        "a second run without --resume must refuse the folder"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("--resume"));
    train(&part, &["--resume"], "1");
    assert_eq!(checkpoint(&full), checkpoint(&part));
    assert_eq!(metrics(&full), metrics(&part));
}

/// A run of 128 steps per epoch that logs every step: long enough to be
/// interrupted mid-epoch.
fn long_run(epochs: &'static str) -> Vec<&'static str> {
    vec![
        "train",
        "--dataset",
        "r",
        "--model",
        "st-fcn-aff",
        "--train-size",
        "4096",
        "--test-size",
        "64",
        "--epochs",
        epochs,
        "--batch-size",
        "32",
        "--log-every",
        "1",
        "--quiet",
    ]
}

/// Waits until the run's last metrics line has reached `step`, then calls
/// `stop` on it; false if the run ended first.
fn stop_at_step(
    child: &mut std::process::Child,
    dir: &Path,
    step: u64,
    stop: impl FnOnce(&mut std::process::Child),
) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(120) && child.try_wait().unwrap().is_none() {
        let text = fs::read_to_string(dir.join("metrics.jsonl")).unwrap_or_default();
        let last = text
            .lines()
            .last()
            .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok());
        if last.is_some_and(|v| v["step"].as_u64().unwrap_or(0) >= step) {
            stop(child);
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

/// Runs `args` into `out` uninterrupted (the reference for a stopped run).
fn run_to_end(args: &[&str], out: &Path) {
    let o = exe().args(args).arg("--out").arg(out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Resumes `dir` and checks it ends identical to the uninterrupted `full`.
fn resume_matches(args: &[&str], dir: &Path, full: &Path) {
    let o = exe()
        .args(args)
        .arg("--out")
        .arg(dir)
        .arg("--resume")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(checkpoint(full), checkpoint(dir));
    assert_eq!(metrics(full), metrics(dir));
}

#[test]
fn a_run_killed_mid_epoch_resumes_to_the_identical_checkpoint() {
    let args = long_run("2");
    let (full, killed) = (tmp("kfull"), tmp("killed"));
    run_to_end(&args, &full);
    let mut child = exe().args(&args).arg("--out").arg(&killed).spawn().unwrap();
    // SIGKILL once the second epoch (steps 129..256) is under way.
    let stopped = stop_at_step(&mut child, &killed, 150, |c| c.kill().unwrap());
    let status = child.wait().unwrap();
    assert!(
        stopped && !status.success(),
        "the run ended before it could be killed"
    );
    resume_matches(&args, &killed, &full);
}

fn fails_with(args: &[&str], needle: &str) {
    assert_one_line_error(&run(args), needle);
}

#[test]
fn bad_input_gives_one_clear_line() {
    let out = tmp("bad");
    let o = out.to_str().unwrap();
    fails_with(
        &["train", "--model", "resnet", "--out", o],
        "unknown model 'resnet'",
    );
    fails_with(
        &["train", "--dataset", "cifar", "--out", o],
        "unknown dataset 'cifar'",
    );
    fails_with(
        &["train", "--data-dir", "/nonexistent/mnist", "--out", o],
        "/nonexistent/mnist",
    );
    // A damaged IDX file in an otherwise complete data folder.
    let data = tmp("data");
    fs::create_dir_all(&data).unwrap();
    for f in fs::read_dir(datasets::default_data_dir()).unwrap() {
        let f = f.unwrap().path();
        fs::copy(&f, data.join(f.file_name().unwrap())).unwrap();
    }
    fs::remove_file(data.join("train-labels-idx1-ubyte.gz")).unwrap();
    fs::write(
        data.join("train-labels-idx1-ubyte"),
        b"\x00\x00\x07\x01garbage",
    )
    .unwrap();
    fails_with(
        &["train", "--data-dir", data.to_str().unwrap(), "--out", o],
        "train-labels-idx1-ubyte",
    );
    // A checkpoint from another model.
    let cnn = tmp("cnn");
    let mut a: Vec<&str> = TINY.to_vec();
    a[4] = "cnn";
    let run = exe().args(&a).arg("--out").arg(&cnn).output().unwrap();
    assert!(run.status.success());
    let mut b: Vec<&str> = TINY.to_vec();
    b.extend(["--out", cnn.to_str().unwrap(), "--resume"]);
    fails_with(&b, "another configuration");
    fails_with(
        &["eval", "--checkpoint", "/nonexistent.wgck"],
        "/nonexistent.wgck",
    );
    let junk = data.join("junk.wgck");
    fs::write(&junk, b"not a checkpoint").unwrap();
    fails_with(
        &["eval", "--checkpoint", junk.to_str().unwrap()],
        "junk.wgck",
    );
}

#[test]
fn eval_prints_the_error_and_a_confusion_matrix() {
    let out = tmp("eval");
    train(&out, &[], "2");
    let o = exe()
        .args(["eval", "--checkpoint"])
        .arg(out.join("checkpoint.wgck"))
        .args(["--test-size", "64"])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(s.contains("test error") && s.contains("true\\pred"), "{s}");
    // The matrix counts every test image once.
    let total: usize = s
        .lines()
        .skip_while(|l| !l.starts_with("true"))
        .skip(1)
        .flat_map(|l| {
            l.split_whitespace()
                .skip(1)
                .map(|v| v.parse::<usize>().unwrap())
        })
        .sum();
    assert_eq!(total, 64);
}

#[test]
fn a_diverging_run_stops_with_the_step_and_the_tensor_named() {
    // A learning rate of 1e30 blows the weights up within a few steps.
    let out = tmp("nan");
    let o = exe()
        .args(TINY)
        .args(["--lr", "1e30", "--warmup", "0", "--clip", "0", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "the run should stop");
    assert!(err.contains("step "), "{err}");
    assert!(
        err.contains("the loss is") || err.contains("gradient of parameter"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    // Nothing good was reached: no checkpoint was written over.
    assert!(!out.join("checkpoint.wgck").exists());
}

#[test]
fn ctrl_c_saves_a_checkpoint_and_the_run_resumes_identically() {
    let args = long_run("1");
    let (full, stopped) = (tmp("cfull"), tmp("ctrlc"));
    run_to_end(&args, &full);
    let mut child = exe()
        .args(&args)
        .arg("--out")
        .arg(&stopped)
        .spawn()
        .unwrap();
    // SIGINT in the middle of the epoch (128 steps), as Ctrl-C would.
    let sent = stop_at_step(&mut child, &stopped, 40, |c| {
        let pid = c.id().to_string();
        assert!(Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success());
    });
    let status = child.wait().unwrap();
    assert!(sent, "the run ended before it could be interrupted");
    assert_eq!(
        status.code(),
        Some(75),
        "Ctrl-C exits with 75 (stopped, resumable)"
    );
    let ck = layers::Checkpoint::load(&stopped.join("checkpoint.wgck")).unwrap();
    assert!(
        ck.step > 0 && ck.step < 128,
        "saved mid-epoch at step {}",
        ck.step
    );
    resume_matches(&args, &stopped, &full);
}

#[test]
fn a_second_process_training_into_a_busy_folder_is_refused() {
    let out = tmp("locked");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).unwrap();
    // This test holds the folder's lock, as a `train` still running would.
    let held = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(out.join("run.lock"))
        .unwrap();
    held.try_lock().unwrap();
    let busy = exe().args(TINY).arg("--out").arg(&out).output().unwrap();
    assert_one_line_error(&busy, "is in use");
    assert!(text(&busy.stderr).contains(&out.display().to_string()));
    assert!(
        !out.join("metrics.jsonl").exists(),
        "nothing written beside the holder"
    );
    // Released, as when the holder ends however it ends: the run goes ahead.
    drop(held);
    let o = exe().args(TINY).arg("--out").arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(out.join("results.json").exists());
}
