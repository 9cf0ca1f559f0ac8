//! `warpgrad eval`: test error and confusion matrix of a checkpoint.

use crate::error::CliError;
use crate::run;
use crate::EvalArgs;

/// `warpgrad eval`.
pub fn run(args: &EvalArgs) -> Result<(), CliError> {
    let (cfg, model, ck) = run::load_checkpoint_model(&args.checkpoint)?;
    let dataset = args.dataset.clone().unwrap_or(cfg.dataset.clone());
    let variant = run::parse_variant(&dataset)?;
    if run::input_side(variant) != model.side() {
        return Err(crate::error::msg(format!(
            "{} takes {}×{} images but data set '{dataset}' has {}×{}",
            cfg.model,
            model.side(),
            model.side(),
            run::input_side(variant),
            run::input_side(variant)
        )));
    }
    let (train, test) = run::load_splits(&run::data_dir(&args.data_dir), None, args.test_size)?;
    let set = run::test_batch(variant, &test, &train);
    let (loss, error, preds) = run::evaluate(&model, &set.images, &set.labels, 500);
    println!(
        "{} on {dataset} (checkpoint step {}, epoch {}): test error {:.2}% ({} of {}), loss {loss:.4}",
        cfg.model,
        ck.step,
        ck.epoch,
        100.0 * error,
        (error * set.labels.len() as f32).round() as usize,
        set.labels.len()
    );
    println!("{}", confusion_table(&set.labels, &preds));
    Ok(())
}

/// A 10×10 confusion matrix (rows: true label, columns: prediction) as text.
pub fn confusion_table(labels: &[u8], preds: &[usize]) -> String {
    let mut m = [[0usize; 10]; 10];
    for (&l, &p) in labels.iter().zip(preds) {
        m[l as usize][p.min(9)] += 1;
    }
    let mut s = String::from("true\\pred");
    for p in 0..10 {
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
