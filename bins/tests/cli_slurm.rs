//! `warpgrad reproduce table1 --slurm`: the job-array script, run task by
//! task through bash as Slurm would (a real cluster: tools/sweep_test.sh).

mod common;

use common::{run, text};

#[test]
fn slurm_script_runs_each_cell_and_collect_gathers_them() {
    let d = common::tmp("cli-slurm", "array");
    let runs = d.join("runs");
    let job = d.join("job.sbatch");
    let sel = [
        "reproduce",
        "table1",
        "--datasets",
        "r",
        "--models",
        "fcn",
        "--seeds",
        "2",
        "--train-size",
        "200",
        "--test-size",
        "100",
        "--runs",
        runs.to_str().unwrap(),
    ];
    let mut args = sel.to_vec();
    args.extend(["--slurm", job.to_str().unwrap(), "--slurm-cpus", "1"]);
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let script = std::fs::read_to_string(&job).unwrap();
    assert!(script.contains("#SBATCH --array=0-1\n"), "{script}");
    assert!(script.contains("#SBATCH --cpus-per-task=1\n"), "{script}");
    for seed in [1, 2] {
        let out = runs.join(format!("quick/r-fcn-s{seed}"));
        assert!(
            script.contains(&format!("--seed={seed} --out={} --resume", out.display())),
            "{script}"
        );
    }
    assert!(script.contains("--train-size=200 --test-size=100 --threads=1"));
    // Each array task trains its cell; a finished one is skipped.
    for (task, skipped) in [("0", false), ("1", false), ("1", true)] {
        let o = std::process::Command::new("bash")
            .arg(&job)
            .env("SLURM_ARRAY_TASK_ID", task)
            .output()
            .unwrap();
        assert!(o.status.success(), "task {task}: {}", text(&o.stderr));
        assert_eq!(text(&o.stdout).contains("already finished"), skipped);
    }
    let mut args = sel.to_vec();
    let results = d.join("results");
    args.extend(["--results", results.to_str().unwrap(), "--collect"]);
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let csv = std::fs::read_to_string(results.join("table1.csv")).unwrap();
    assert!(
        csv.lines().any(|l| l.starts_with("r,fcn,quick,2,")),
        "{csv}"
    );
    // Collecting archived each run's small files with the results, so the
    // table is rebuilt from them once the run folders are gone.
    for seed in [1, 2] {
        let kept = results.join(format!("runs/table1/quick/r-fcn-s{seed}"));
        for f in ["results.json", "metrics.jsonl", "config.json"] {
            assert!(kept.join(f).is_file(), "{}", kept.join(f).display());
        }
    }
    std::fs::remove_dir_all(&runs).unwrap();
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(results.join("table1.csv")).unwrap(),
        csv
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn slurm_with_no_runs_selected_is_an_error() {
    let d = common::tmp("cli-slurm", "none");
    let job = d.join("job.sbatch");
    let o = run(&[
        "reproduce",
        "table1",
        "--datasets",
        "r",
        "--models",
        "fcn",
        "--seeds",
        "0",
        "--slurm",
        job.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("--slurm: no runs selected"),
        "{}",
        text(&o.stderr)
    );
    assert!(!job.exists());
    let _ = std::fs::remove_dir_all(&d);
}
