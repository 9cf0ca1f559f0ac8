//! `warpgrad train`'s recipe settings, validation split, flag checks, SIGTERM
//! and progress output, each on a tiny run through the real binary.

mod common;

use common::{assert_one_line_error, exe, metrics, run, text};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn tmp(name: &str) -> PathBuf {
    common::tmp("cli-recipe", name)
}

/// A tiny run with every recipe feature on: validation split, moving
/// average, label smoothing, AdamW and the one-cycle schedule.
const TINY: &[&str] = &[
    "train",
    "--dataset",
    "rts",
    "--model",
    "st-cnn-aff",
    "--train-size",
    "256",
    "--val-size",
    "100",
    "--epochs",
    "2",
    "--batch-size",
    "32",
    "--log-every",
    "1",
    "--ema",
    "0.9",
    "--label-smoothing",
    "0.1",
    "--optimizer",
    "adamw",
    "--weight-decay",
    "0.01",
    "--schedule",
    "onecycle",
    "--quiet",
];

fn train(out: &Path, extra: &[&str]) -> std::process::Output {
    let o = exe()
        .args(TINY)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "train failed: {}", text(&o.stderr));
    o
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_validation_run_scores_the_held_out_digits_and_never_the_test_set() {
    let out = tmp("val");
    train(&out, &[]);
    let r = json(&out.join("results.json"));
    let e = r["val_error"].as_f64().expect("results.json has val_error");
    assert!((0.0..=1.0).contains(&e));
    assert!(r.get("test_error").is_none(), "no test error: {r}");
    let cfg = json(&out.join("config.json"));
    assert_eq!(cfg["val_size"], 100);
    assert_eq!(cfg["train_size"], 256);
    assert_eq!(cfg["ema"].as_f64().unwrap() as f32, 0.9);
    for m in metrics(&out) {
        assert!(
            m.get("test_error").is_none(),
            "a metrics line scored the test set: {m}"
        );
    }
    // Holding out every training digit leaves nothing to train on.
    let o = run(&[
        "train",
        "--val-size",
        "60000",
        "--out",
        tmp("valbig").to_str().unwrap(),
    ]);
    assert_one_line_error(&o, "--val-size 60000");
}

#[test]
fn every_recipe_feature_resumes_to_the_identical_checkpoint() {
    let (full, part) = (tmp("full"), tmp("part"));
    train(&full, &[]);
    train(&part, &["--stop-after", "11"]);
    train(&part, &["--resume"]);
    assert_eq!(
        fs::read(full.join("checkpoint.wgck")).unwrap(),
        fs::read(part.join("checkpoint.wgck")).unwrap()
    );
    assert_eq!(metrics(&full), metrics(&part));
}

#[test]
fn the_run_time_counts_every_sitting() {
    let part = tmp("sittings");
    train(&part, &["--stop-after", "11"]);
    let first = json(&part.join("wall.json"));
    assert_eq!(first["step"].as_u64(), Some(11));
    let w1 = first["wall_s"].as_f64().unwrap();
    assert!(w1 > 0.0);
    train(&part, &["--resume"]);
    let r = json(&part.join("results.json"));
    let total = r["wall_s"].as_f64().unwrap();
    let last = json(&part.join("wall.json"));
    assert_eq!(last["step"].as_u64(), Some(16));
    assert_eq!(last["wall_s"].as_f64().unwrap(), total);
    assert!(
        total > w1,
        "both sittings: {total} s after {w1} s in the first"
    );
}

#[test]
fn collecting_fewer_runs_than_the_table_holds_is_refused() {
    let results = tmp("collect");
    let runs = tmp("collect-runs");
    let csv = "dataset,model,budget,runs,mean_error,std_error,paper_error,mean_wall_s\n\
               rts,cnn,full,3,1.0,0.1,0.8,100.0\n";
    fs::write(results.join("table1.csv"), csv).unwrap();
    fs::write(results.join("table1.md"), "# kept\n").unwrap();
    let args = [
        "reproduce",
        "table1",
        "--collect",
        "--runs",
        runs.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ];
    assert_one_line_error(&run(&args), "holds 3 finished runs and only 0");
    assert_eq!(fs::read_to_string(results.join("table1.csv")).unwrap(), csv);
    assert_eq!(
        fs::read_to_string(results.join("table1.md")).unwrap(),
        "# kept\n"
    );
    // With nothing at all to write, --force is refused too.
    let mut forced = args.to_vec();
    forced.push("--force");
    assert_one_line_error(&run(&forced), "only 0");
}

#[test]
fn eval_refuses_an_empty_test_set() {
    let out = tmp("evalzero");
    train(&out, &[]);
    let o = run(&[
        "eval",
        "--checkpoint",
        out.to_str().unwrap(),
        "--test-size",
        "0",
    ]);
    assert_one_line_error(&o, "--test-size 0");
}

#[test]
fn the_moving_average_changes_what_is_evaluated() {
    let (with, without) = (tmp("ema"), tmp("noema"));
    train(&with, &[]);
    let mut args: Vec<&str> = TINY.to_vec();
    let i = args.iter().position(|a| *a == "0.9").unwrap();
    args[i] = "0"; // --ema 0
    let o = exe()
        .args(&args)
        .arg("--out")
        .arg(&without)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    // Same training (the average does not feed back), different evaluation.
    let (a, b) = (metrics(&with), metrics(&without));
    let train_loss = |m: &[serde_json::Value]| -> Vec<serde_json::Value> {
        m.iter()
            .filter(|v| v["type"] == "log")
            .map(|v| v["loss"].clone())
            .collect()
    };
    assert_eq!(train_loss(&a), train_loss(&b));
    let val_loss = |m: &[serde_json::Value]| -> Vec<serde_json::Value> {
        m.iter()
            .filter(|v| v["type"] == "epoch")
            .map(|v| v["val_loss"].clone())
            .collect()
    };
    assert_ne!(val_loss(&a), val_loss(&b));
}

#[test]
fn a_changed_setting_is_named_when_resuming() {
    let out = tmp("diff");
    train(&out, &["--stop-after", "3"]);
    let o = exe()
        .args(TINY)
        .arg("--out")
        .arg(&out)
        .args(["--resume", "--lr", "0.01"])
        .output()
        .unwrap();
    assert_one_line_error(&o, "lr: saved 0.003");
}

#[test]
fn every_numeric_flag_is_checked_by_name() {
    let out = tmp("flags").join("run");
    let o = out.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--train-size", "0"], "--train-size 0"),
        (&["--test-size", "0"], "--test-size 0"),
        (&["--batch-size", "0"], "--batch-size 0"),
        (&["--epochs", "0"], "--epochs 0"),
        (&["--log-every", "0"], "--log-every 0"),
        (&["--eval-every", "0"], "--eval-every 0"),
        (&["--clip", "-1"], "--clip -1"),
        (&["--clip", "NaN"], "--clip NaN"),
        (&["--lr", "0"], "--lr 0"),
        (&["--lr", "inf"], "--lr inf"),
        (&["--loc-lr", "-0.5"], "--loc-lr -0.5"),
        (&["--ema", "1"], "--ema 1"),
        (&["--label-smoothing", "1.5"], "--label-smoothing 1.5"),
        (&["--weight-decay", "-1"], "--weight-decay -1"),
        (&["--threads", "0"], "--threads 0"),
        (&["--progress-seconds", "-1"], "--progress-seconds -1"),
        (&["--recipe", "fast"], "unknown recipe 'fast'"),
        (&["--optimizer", "lbfgs"], "unknown optimizer 'lbfgs'"),
        (&["--schedule", "exp"], "unknown schedule 'exp'"),
    ];
    for (flags, needle) in cases {
        let mut a = vec!["train", "--out", o];
        a.extend_from_slice(flags);
        assert_one_line_error(&run(&a), needle);
    }
    assert!(!out.exists(), "a refused run must not create its folder");
    // --resume on a folder that holds no run.
    let o = run(&["train", "--resume", "--out", "/nonexistent/run"]);
    assert_one_line_error(&o, "/nonexistent/run holds no run");
}

#[test]
fn an_empty_training_split_is_refused() {
    let data = tmp("emptydata");
    fs::create_dir_all(&data).unwrap();
    let write_idx = |name: &str, dims: &[u32], ty: u8| {
        let mut b = vec![0, 0, ty, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        fs::write(data.join(name), b).unwrap();
    };
    write_idx("train-images-idx3-ubyte", &[0, 28, 28], 0x08);
    write_idx("train-labels-idx1-ubyte", &[0], 0x08);
    write_idx("t10k-images-idx3-ubyte", &[0, 28, 28], 0x08);
    write_idx("t10k-labels-idx1-ubyte", &[0], 0x08);
    let o = run(&[
        "train",
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        tmp("emptyrun").to_str().unwrap(),
    ]);
    assert_one_line_error(&o, "holds no images");
}

#[test]
fn sigterm_saves_a_checkpoint_exits_75_and_the_run_resumes_identically() {
    let args: Vec<&str> = vec![
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
        "1",
        "--batch-size",
        "32",
        "--log-every",
        "1",
        "--quiet",
    ];
    let (full, stopped) = (tmp("tfull"), tmp("term"));
    let o = exe().args(&args).arg("--out").arg(&full).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut child = exe()
        .args(&args)
        .arg("--out")
        .arg(&stopped)
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let mut sent = false;
    while t0.elapsed() < Duration::from_secs(120) && child.try_wait().unwrap().is_none() {
        let log = fs::read_to_string(stopped.join("metrics.jsonl")).unwrap_or_default();
        if log.lines().count() > 30 {
            let pid = child.id().to_string();
            assert!(Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success());
            sent = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let status = child.wait().unwrap();
    assert!(sent, "the run ended before SIGTERM could be sent");
    assert_eq!(
        status.code(),
        Some(75),
        "SIGTERM exits with 75 (stopped, resumable)"
    );
    let ck = layers::Checkpoint::load(&stopped.join("checkpoint.wgck")).unwrap();
    assert!(
        ck.step > 0 && ck.step < 128,
        "saved mid-epoch at step {}",
        ck.step
    );
    let o = exe()
        .args(&args)
        .arg("--out")
        .arg(&stopped)
        .arg("--resume")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        fs::read(full.join("checkpoint.wgck")).unwrap(),
        fs::read(stopped.join("checkpoint.wgck")).unwrap()
    );
}

#[test]
fn without_a_terminal_a_start_up_line_and_progress_lines_are_printed() {
    let out = tmp("plain");
    let args: Vec<&str> = TINY.iter().copied().filter(|a| *a != "--quiet").collect();
    let o = exe()
        .args(&args)
        .arg("--out")
        .arg(&out)
        .args(["--progress-seconds", "0"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("training st-cnn-aff on rts (")
            && first.contains("parameters")
            && first.contains("threads")
            && first.contains("kernels"),
        "start-up line: {first}"
    );
    let before_epoch: Vec<&str> = err
        .lines()
        .take_while(|l| !l.starts_with("epoch 1/2:"))
        .filter(|l| l.starts_with("epoch 1/2 step "))
        .collect();
    assert!(
        before_epoch.len() >= 5
            && before_epoch[0].contains("img/s")
            && before_epoch[0].contains("ETA"),
        "progress lines before the first epoch ends:\n{err}"
    );
}

/// The full budget's printed commands: the default recipe's epochs per cell
/// (the CNN baselines on the large canvases get fewer) and about ten test
/// evaluations a run.
#[test]
fn full_budget_commands_carry_each_cells_epochs() {
    let o = run(&[
        "reproduce",
        "table1",
        "--budget",
        "full",
        "--datasets",
        "rts,tc,p",
        "--models",
        "cnn,st-cnn-aff",
        "--print-commands",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let line = |d: &str, m: &str| {
        out.lines()
            .find(|l| {
                l.contains(&format!("--dataset={d} ")) && l.contains(&format!("--model={m} "))
            })
            .unwrap_or_else(|| panic!("no command for {d} {m} in:\n{out}"))
            .to_string()
    };
    for (d, m, ep, every) in [
        ("rts", "cnn", 25, 2),
        ("rts", "st-cnn-aff", 50, 5),
        ("tc", "cnn", 10, 1),
        ("tc", "st-cnn-aff", 50, 5),
        ("p", "cnn", 100, 10),
        ("p", "st-cnn-aff", 100, 10),
    ] {
        let l = line(d, m);
        assert!(l.contains(&format!("--epochs={ep} ")), "{l}");
        assert!(l.contains(&format!("--eval-every={every} ")), "{l}");
    }
}

/// A one-step run (`--stop-after 1`) on 64 training and 32 test digits
/// with `extra` flags; returns its saved configuration.
fn one_step_config(name: &str, extra: &[&str]) -> serde_json::Value {
    let out = tmp(name);
    let _ = fs::remove_dir_all(&out);
    let mut args = vec![
        "train",
        "--train-size",
        "64",
        "--test-size",
        "32",
        "--stop-after",
        "1",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(o.status.success(), "{extra:?}: {}", text(&o.stderr));
    json(&out.join("config.json"))
}

/// Without --epochs, `train` runs the full budget of its data set and model,
/// with label smoothing 0.1; `--recipe paper` has its 640 epochs and none.
#[test]
fn default_recipe_takes_the_full_budget_epochs_and_label_smoothing() {
    for (extra_flags, epochs, ls) in [
        (&[][..], 50u64, 0.1f64),
        (&["--model", "cnn"][..], 25, 0.1),
        (&["--recipe", "paper"][..], 640, 0.0),
    ] {
        let mut extra = vec!["--dataset", "rts"];
        extra.extend_from_slice(extra_flags);
        let cfg = one_step_config(&format!("budget-{epochs}"), &extra);
        assert_eq!(cfg["epochs"].as_u64(), Some(epochs), "{extra:?}");
        let got = cfg["label_smoothing"].as_f64().unwrap();
        assert!((got - ls).abs() < 1e-6, "{extra:?}: {got}");
    }
}

/// On the addition data set `train` starts from the `addition` recipe
/// (learning rate 2e-3) unless `--recipe` names another; elsewhere from
/// `default` (3e-3); an unknown recipe is refused by name.
#[test]
fn the_addition_data_set_defaults_to_its_own_recipe() {
    for (name, extra, recipe, lr) in [
        (
            "add",
            &["--dataset", "addition", "--model", "fcn"][..],
            "addition",
            2e-3f64,
        ),
        (
            "add-default",
            &[
                "--dataset",
                "addition",
                "--model",
                "fcn",
                "--recipe",
                "default",
            ][..],
            "default",
            3e-3,
        ),
        (
            "rts",
            &["--dataset", "rts", "--model", "fcn"][..],
            "default",
            3e-3,
        ),
    ] {
        let cfg = one_step_config(&format!("recipe-{name}"), extra);
        assert_eq!(cfg["recipe"], recipe, "{name}");
        let got = cfg["lr"].as_f64().unwrap();
        assert!((got - lr).abs() < 1e-9, "{name}: lr {got}");
    }
    let o = run(&["train", "--recipe", "fast", "--train-size", "64", "--quiet"]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("unknown recipe 'fast'") && err.contains("addition"),
        "{err}"
    );
}

#[test]
fn collect_counts_only_runs_of_the_budgets_epochs() {
    let results = tmp("collect-epochs");
    let runs = tmp("collect-epochs-runs");
    // Seed 1 ran an older budget's 40 epochs, seed 2 the current 100.
    for (seed, epochs, error) in [(1, 40, 0.02), (2, 100, 0.01)] {
        let dir = runs.join(format!("full/r-cnn-s{seed}"));
        fs::create_dir_all(&dir).unwrap();
        let r = serde_json::json!({"test_error": error, "epochs": epochs, "wall_s": 60.0,
            "images_per_sec": 5000.0, "threads": 1, "kernels": "avx2"});
        fs::write(dir.join("results.json"), r.to_string()).unwrap();
        fs::write(dir.join("metrics.jsonl"), "{}\n").unwrap();
        fs::write(dir.join("config.json"), "{}").unwrap();
    }
    let o = run(&[
        "reproduce",
        "table1",
        "--collect",
        "--budget",
        "full",
        "--datasets",
        "r",
        "--models",
        "cnn",
        "--seeds",
        "2",
        "--runs",
        runs.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("ran 40 epochs, this budget 100: not counted"),
        "{}",
        text(&o.stderr)
    );
    let csv = fs::read_to_string(results.join("table1.csv")).unwrap();
    let row = csv
        .lines()
        .find(|l| l.starts_with("r,cnn,full,"))
        .expect(&csv);
    // One run, seed 2's 1.00%.
    assert!(row.starts_with("r,cnn,full,1,1.0"), "{row}");
}
