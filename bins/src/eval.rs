//! `warpgrad eval`: test error and confusion matrix of a checkpoint.

use crate::error::{msg, CliError};
use crate::EvalArgs;
use crate::{run, weights};
use engine::{Tensor, Var};
use layers::{Ctx, Module};
use std::path::Path;
use stn::Model;

/// `warpgrad eval`.
pub fn run(args: &EvalArgs) -> Result<(), CliError> {
    let (model, default_dataset, source) = match (&args.checkpoint, &args.weights) {
        (Some(path), _) => {
            let path = crate::export::checkpoint_file(path)?;
            let (cfg, model, ck) = run::load_checkpoint_model(&path)?;
            let source = format!("checkpoint step {}, epoch {}", ck.step, ck.epoch);
            (model, Some(cfg.dataset), source)
        }
        (None, Some(path)) => {
            let name = args.model.as_deref().unwrap_or_default();
            let (model, dataset) = load_weights(path, name, args.dataset.as_deref())?;
            (model, dataset, format!("weights {}", path.display()))
        }
        (None, None) => return Err(msg("give --checkpoint FILE or --weights FILE --model M")),
    };
    let dataset =
        args.dataset.clone().or(default_dataset).ok_or_else(|| {
            msg("--dataset is needed: the weights file does not name its data set")
        })?;
    let variant = run::parse_variant(&dataset)?;
    let (want, has) = (model.input(), run::input_spec(variant));
    if want != has {
        return Err(msg(format!(
            "{} takes {}×{}×{} images and {} classes but data set '{dataset}' has {}×{}×{} and {}",
            model.name(),
            want.channels,
            want.side,
            want.side,
            want.classes,
            has.channels,
            has.side,
            has.side,
            has.classes
        )));
    }
    if args.test_size == Some(0) {
        return Err(msg("--test-size 0: expected a positive number of images"));
    }
    let (train, test) = run::load_splits(&run::data_dir(&args.data_dir), None, args.test_size)?;
    let set = run::test_batch(variant, &test, &train);
    let (loss, error, preds) = run::evaluate(&model, &set.images, &set.labels, 500);
    if let Some(path) = &args.save_inputs {
        engine::npy::write_npy(path, &set.images)?;
    }
    if let Some(path) = &args.save_logits {
        engine::npy::write_npy(path, &logits(&model, &set.images, 500))?;
    }
    println!(
        "{} on {dataset} ({source}): test error {:.2}% ({} of {}), loss {loss:.4}",
        model.name(),
        100.0 * error,
        (error * set.labels.len() as f32).round() as usize,
        set.labels.len()
    );
    println!("{}", confusion_table(&set.labels, &preds, want.classes));
    Ok(())
}

/// A `model` with the parameters of the safetensors file `path`, and the
/// data set its metadata names. The input size comes from `dataset`, else
/// from the metadata's data set.
fn load_weights(
    path: &Path,
    model: &str,
    dataset: Option<&str>,
) -> Result<(Model, Option<String>), CliError> {
    let bytes =
        std::fs::read(path).map_err(|e| msg(format!("cannot read {}: {e}", path.display())))?;
    let meta = weights::read_metadata(&bytes, path)?;
    if let Some(m) = meta.get("model").filter(|m| m.as_str() != model) {
        return Err(msg(format!(
            "{} holds model {m}, not --model {model}",
            path.display()
        )));
    }
    let meta_dataset = meta.get("dataset").cloned();
    let Some(ds) = dataset.map(str::to_string).or(meta_dataset.clone()) else {
        return Err(msg(format!(
            "{} does not name its data set: give --dataset",
            path.display()
        )));
    };
    let mut m = run::build(model, run::parse_variant(&ds)?, 0)?;
    weights::load_into(&mut m, &bytes, path)?;
    Ok((m, meta_dataset))
}

/// The model's logits for `images`, `chunk` images at a time (evaluation mode).
fn logits(model: &Model, images: &Tensor, chunk: usize) -> Tensor {
    let n = images.shape()[0];
    let ctx = Ctx::eval();
    let mut out = Vec::new();
    let mut classes = 0;
    for start in (0..n).step_by(chunk.max(1)) {
        let len = chunk.min(n - start);
        let y = model.forward(&Var::constant(images.narrow(0, start, len)), &ctx);
        classes = y.shape()[1];
        out.extend_from_slice(y.value().data());
    }
    Tensor::from_vec(out, &[n, classes])
}

/// A K×K confusion matrix (rows: true label, columns: prediction) as text.
pub fn confusion_table(labels: &[u8], preds: &[usize], k: usize) -> String {
    let mut m = vec![vec![0usize; k]; k];
    for (&l, &p) in labels.iter().zip(preds) {
        m[(l as usize).min(k - 1)][p.min(k - 1)] += 1;
    }
    let mut s = String::from("true\\pred");
    for p in 0..k {
        s += &format!("{p:>6}");
    }
    for (l, row) in m.iter().enumerate() {
        s += &format!("\n{l:>9}");
        for v in row {
            s += &format!("{v:>6}");
        }
    }
    s
}
