//! The paper's claim in miniature: on a small RTS subset, with the same
//! budget (data, epochs, optimiser), an ST-CNN with each transform (affine,
//! projective, thin plate spline) beats the plain CNN, and its transform has
//! left the identity.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

fn train(model: &str) -> (f64, PathBuf) {
    let out = std::env::temp_dir().join(format!("wg-st-vs-cnn-{}-{model}", std::process::id()));
    let _ = fs::remove_dir_all(&out);
    let o = Command::new(env!("CARGO_BIN_EXE_warpgrad"))
        .args([
            "train",
            "--dataset",
            "rts",
            "--model",
            model,
            "--train-size",
            "3000",
            "--test-size",
            "500",
            "--epochs",
            "3",
            "--batch-size",
            "32",
            "--lr",
            "3e-3",
            "--loc-lr",
            "0.3",
            "--warmup",
            "50",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{model}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    (r["test_error"].as_f64().unwrap(), out)
}

#[test]
fn st_cnn_with_each_transform_beats_the_same_budget_cnn() {
    let (cnn, _) = train("cnn");
    for (model, identity) in [
        ("st-cnn-aff", vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
        ("st-cnn-proj", vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]),
        ("st-cnn-tps", vec![0.0; 32]),
    ] {
        let (st, dir) = train(model);
        eprintln!(
            "{model}: test error {:.1}% vs CNN {:.1}%",
            100.0 * st,
            100.0 * cnn
        );
        assert!(
            st < cnn - 0.05,
            "{model}: {st} does not beat the CNN's {cnn}"
        );
        // The regression head started at zero weights and the identity bias.
        let ck = layers::Checkpoint::load(&dir.join("checkpoint.wgck")).unwrap();
        let (_, w) = ck
            .params
            .iter()
            .find(|(n, _)| n == "st.loc.theta.weight")
            .unwrap();
        let (_, b) = ck
            .params
            .iter()
            .find(|(n, _)| n == "st.loc.theta.bias")
            .unwrap();
        let moved = b
            .data()
            .iter()
            .zip(&identity)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(
            w.data().iter().any(|&v| v.abs() > 1e-3),
            "{model}: θ head weights never moved"
        );
        assert!(moved > 1e-3, "{model}: θ bias is still the identity");
    }
}
