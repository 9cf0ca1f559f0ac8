//! MNIST addition through the binary: `reproduce addition` end to end on a
//! few hundred images (runs, archive, table, resume, refusal to shrink the
//! table), `viz` of a two-transformer model, `data preview`/`export`, `info`.

mod common;

use common::{assert_one_line_error, run, text};

#[test]
fn reproduce_addition_trains_archives_and_tabulates() {
    let d = common::tmp("cli-addition", "reproduce");
    let runs = d.join("runs");
    let results = d.join("results");
    let sel = [
        "reproduce",
        "addition",
        "--models",
        "fcn,2st-fcn-aff",
        "--seeds",
        "2",
        "--train-size",
        "128",
        "--test-size",
        "64",
        "--threads",
        "1",
        "--runs",
        runs.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ];
    // --print-commands: one train line per run, nothing trained.
    let mut args = sel.to_vec();
    args.push("--print-commands");
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let lines = text(&o.stdout);
    assert_eq!(lines.lines().count(), 4, "{lines}");
    assert!(lines.contains("--dataset=addition --model=2st-fcn-aff --epochs=3"));
    assert!(!runs.exists());

    let o = run(&sel);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let md = std::fs::read_to_string(results.join("addition.md")).unwrap();
    assert!(md.contains("| model | ours | paper | seeds |"), "{md}");
    // The paper's values beside ours, with the seeds of each row.
    assert!(
        md.contains("| fcn | ") && md.contains(" | 47.7 | 1, 2 | 3 |"),
        "{md}"
    );
    assert!(
        md.contains("| 2st-fcn-aff | ") && md.contains(" | 9.0 | 1, 2 | 3 |"),
        "{md}"
    );
    let csv = std::fs::read_to_string(results.join("addition.csv")).unwrap();
    assert!(csv.contains("addition,2st-fcn-aff,quick,2,"), "{csv}");
    for m in ["fcn", "2st-fcn-aff"] {
        for seed in [1, 2] {
            let kept = results.join(format!("runs/addition/quick/{m}-s{seed}"));
            for f in ["results.json", "metrics.jsonl", "config.json"] {
                assert!(kept.join(f).is_file(), "{}", kept.join(f).display());
            }
        }
    }
    // A second sitting skips the finished runs and writes the same table.
    let o = run(&sel);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stderr).matches("done, skipped").count(), 4);
    assert_eq!(
        std::fs::read_to_string(results.join("addition.csv")).unwrap(),
        csv
    );
    // Once the run folders are gone, the archive still gives the table...
    std::fs::remove_dir_all(&runs).unwrap();
    let mut collect = sel.to_vec();
    collect.push("--collect");
    let o = run(&collect);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(results.join("addition.csv")).unwrap(),
        csv
    );
    // ...and a table with fewer runs than the one written is refused.
    std::fs::remove_dir_all(results.join("runs")).unwrap();
    let o = run(&collect);
    assert_one_line_error(&o, "not overwritten");
    assert_eq!(
        std::fs::read_to_string(results.join("addition.csv")).unwrap(),
        csv
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn reproduce_addition_rejects_bad_models_and_budgets() {
    let o = run(&[
        "reproduce",
        "addition",
        "--models",
        "2st-fcn-warp",
        "--print-commands",
    ]);
    assert_one_line_error(&o, "unknown model '2st-fcn-warp'");
    let o = run(&[
        "reproduce",
        "addition",
        "--budget",
        "huge",
        "--print-commands",
    ]);
    assert_one_line_error(&o, "unknown budget 'huge'");
}

#[test]
fn viz_draws_both_transformers_on_both_channels() {
    let d = common::tmp("cli-addition", "viz");
    let o = run(&[
        "train",
        "--dataset",
        "addition",
        "--model",
        "2st-fcn-aff",
        "--train-size",
        "128",
        "--test-size",
        "32",
        "--epochs",
        "1",
        "--out",
        d.join("run").to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = d.join("viz");
    let o = run(&[
        "viz",
        "--checkpoint",
        d.join("run/checkpoint.wgck").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--count",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let s = text(&o.stdout);
    // Each pair is named by its digits, and both transformers' θ printed.
    assert!(
        s.contains("test #0: ") && s.contains(" + ") && s.contains(" = "),
        "{s}"
    );
    assert!(
        s.contains("st1 (affine): theta = [") && s.contains("st2 (affine): theta = ["),
        "{s}"
    );
    for f in ["viz-00000.png", "viz-00001.png", "overview.png"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    // The eval of the same checkpoint has a 19-class confusion matrix.
    let o = run(&[
        "eval",
        "--checkpoint",
        d.join("run").to_str().unwrap(),
        "--test-size",
        "32",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("   18"), "{}", text(&o.stdout));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn data_preview_export_and_info_know_the_two_channels() {
    let d = common::tmp("cli-addition", "data");
    let png = d.join("p.png");
    let o = run(&[
        "data",
        "preview",
        "--dataset",
        "addition",
        "--size",
        "8",
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(png.is_file());
    let o = run(&[
        "data",
        "export",
        "--dataset",
        "addition",
        "--split",
        "test",
        "--size",
        "5",
        "--out",
        d.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("2×42×42"), "{}", text(&o.stdout));
    let o = run(&[
        "data",
        "inspect",
        d.join("addition-test-images-idx3-ubyte.gz")
            .to_str()
            .unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("5 × 2 × 42 × 42"),
        "{}",
        text(&o.stdout)
    );
    let o = run(&["info", "--dataset", "addition", "--model", "2st-cnn-tps"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let t = text(&o.stdout);
    assert!(
        t.contains("[1, 2, 42, 42]") && t.contains("ParallelTransformers ×2") && t.contains("→19"),
        "{t}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_stopped_two_transformer_run_resumes_to_the_identical_checkpoint() {
    let d = common::tmp("cli-addition", "resume");
    let train = |dir: &std::path::Path, extra: &[&str]| {
        let mut args = vec![
            "train",
            "--dataset",
            "addition",
            "--model",
            "2st-fcn-tps",
            "--train-size",
            "128",
            "--test-size",
            "32",
            "--epochs",
            "2",
            "--batch-size",
            "32",
            "--out",
            dir.to_str().unwrap(),
            "--quiet",
        ];
        args.extend_from_slice(extra);
        let o = run(&args);
        assert!(o.status.success(), "{}", text(&o.stderr));
    };
    let (full, part) = (d.join("full"), d.join("part"));
    train(&full, &["--threads", "2"]);
    // Stopped mid-epoch on 1 thread, resumed on 2: the same bytes.
    train(&part, &["--threads", "1", "--stop-after", "3"]);
    train(&part, &["--threads", "2", "--resume"]);
    let a = std::fs::read(full.join("checkpoint.wgck")).unwrap();
    let b = std::fs::read(part.join("checkpoint.wgck")).unwrap();
    assert!(a == b, "the resumed run's checkpoint differs");
    let _ = std::fs::remove_dir_all(&d);
}
