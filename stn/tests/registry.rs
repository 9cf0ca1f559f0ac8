//! The transform registry drives the models: every registered transform
//! builds as `st-fcn-<t>` and `st-cnn-<t>` (and `2st-fcn-<t>`, `2st-cnn-<t>`
//! with two transformers in parallel, `2stc-…` with each sampling one
//! channel), under each of its names.

use engine::{Tensor, Var};
use layers::{Ctx, Module};
use stn::transforms::REGISTRY;
use stn::{build_model, model_names, PAPER_MODELS};

#[test]
fn every_generated_model_name_builds_and_runs() {
    let names = model_names();
    assert_eq!(names.len(), 2 + 6 * REGISTRY.len());
    let x = Var::constant(Tensor::uniform(
        &[2, 1, 42, 42],
        0.0,
        1.0,
        &mut engine::rng::seeded(1),
    ));
    for name in &names {
        let m = build_model(name, 42, 5).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.forward(&x, &Ctx::eval()).shape(), [2, 10], "{name}");
        let sts = m.transformers();
        let want = if name.starts_with("2st") {
            2
        } else {
            usize::from(name.starts_with("st-"))
        };
        assert_eq!(sts.len(), want, "{name}");
        for st in sts {
            let t = name.rsplit('-').next().unwrap();
            assert!(stn::transforms::lookup(t)
                .unwrap()
                .answers_to(st.transform().name()));
            // The head starts at the transform's initial θ.
            let theta = st.theta(&x, &Ctx::eval());
            let want = Tensor::from_vec(
                st.transform().initial().repeat(2),
                &[2, st.transform().num_params()],
            );
            assert_eq!(theta.value(), &want, "{name}");
        }
    }
}

#[test]
fn every_alias_builds_the_same_model() {
    for r in REGISTRY {
        for kind in ["fcn", "cnn"] {
            let canonical = build_model(&format!("st-{kind}-{}", r.short), 28, 9).unwrap();
            for alias in [r.name].iter().chain(r.aliases) {
                let m = build_model(&format!("st-{kind}-{alias}"), 28, 9).unwrap();
                assert_eq!(m.params(), canonical.params(), "st-{kind}-{alias}");
            }
        }
    }
}

#[test]
fn table_1_keeps_the_papers_eight_models() {
    assert_eq!(
        PAPER_MODELS,
        [
            "fcn",
            "cnn",
            "st-fcn-aff",
            "st-fcn-proj",
            "st-fcn-tps",
            "st-cnn-aff",
            "st-cnn-proj",
            "st-cnn-tps"
        ]
    );
    let all = model_names();
    assert!(PAPER_MODELS.iter().all(|m| all.iter().any(|n| n == m)));
    assert!(all.iter().any(|n| n == "st-cnn-rotation"));
}

#[test]
fn unknown_names_are_errors_listing_the_generated_names() {
    for bad in [
        "st-cnn-warp",
        "st-rnn-aff",
        "st-cnn",
        "mlp",
        "2st-cnn-warp",
        "2st-mlp-aff",
        "3st-fcn-aff",
    ] {
        let e = build_model(bad, 28, 0).err().expect(bad).to_string();
        assert!(e.contains(bad) && e.contains("st-cnn-rotation"), "{e}");
    }
}
