//! The command line knows every registered transform: `info --list` and the
//! `--model` help are generated from `stn::transforms::REGISTRY`, and a
//! non-paper transform trains, evaluates and is drawn like the paper's.

mod common;

use common::{run, text};

#[test]
fn info_list_is_generated_from_the_registry() {
    let o = run(&["info", "--list"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let want: Vec<String> = stn::model_names();
    assert_eq!(names, want);
    let paper: Vec<&str> = out
        .lines()
        .filter(|l| l.ends_with("[Table 1]"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(paper, stn::PAPER_MODELS);
}

#[test]
fn model_help_names_every_transform() {
    for cmd in ["train", "info"] {
        let o = run(&[cmd, "--help"]);
        let help = text(&o.stdout);
        for r in stn::transforms::REGISTRY {
            assert!(
                help.contains(r.short),
                "{cmd} --help lacks {}: {help}",
                r.short
            );
        }
    }
}

#[test]
fn a_registered_transform_trains_evaluates_and_is_drawn() {
    let dir = common::tmp("cli-registry", "rotation");
    let o = run(&[
        "train",
        "--dataset",
        "rts",
        "--model",
        "st-cnn-rotation",
        "--train-size",
        "128",
        "--test-size",
        "32",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--out",
        dir.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "train: {}", text(&o.stderr));
    let ck = dir.join("checkpoint.wgck");
    let o = run(&[
        "eval",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--test-size",
        "32",
    ]);
    assert!(o.status.success(), "eval: {}", text(&o.stderr));
    let viz = dir.join("viz");
    let o = run(&[
        "viz",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--out",
        viz.to_str().unwrap(),
        "--count",
        "2",
    ]);
    assert!(o.status.success(), "viz: {}", text(&o.stderr));
    assert!(viz.join("overview.png").is_file());
}
