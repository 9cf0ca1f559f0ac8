//! The training timeline: after every epoch (and before the first) `train`
//! saves the spatial transformer's parameters — the localisation net and
//! its regression layer, everything θ depends on — to
//! `RUN_DIR/timeline/epoch-NNN.wgck`, so `warpgrad viz --timeline` can show
//! how the transformer learnt to undo the distortion.
//!
//! A snapshot is a [`Checkpoint`] holding those parameters only (no
//! optimiser state, no classifier): a few hundred KiB at most, written
//! atomically. It only reads the weights, so it changes no trained number.
//! The snapshot of an epoch is written before that epoch's checkpoint, so a
//! run stopped at any point and resumed still has every epoch's snapshot
//! (an epoch redone after a crash rewrites the same bits). Models without a
//! transformer have no timeline.

use crate::error::{msg, CliError};
use layers::{Checkpoint, Module};
use std::path::{Path, PathBuf};
use stn::Model;

/// Folder of the snapshots in a run folder.
pub const TIMELINE_DIR: &str = "timeline";

/// Path of the snapshot of `epoch` (epoch 0: the weights before training).
pub fn path(run_dir: &Path, epoch: u64) -> PathBuf {
    run_dir
        .join(TIMELINE_DIR)
        .join(format!("epoch-{epoch:03}.wgck"))
}

/// Saves the transformer's parameters of `model` as the snapshot of `epoch`
/// (nothing for a model without a transformer).
pub fn save(run_dir: &Path, epoch: u64, model: &Model) -> Result<(), CliError> {
    let Some(st) = model.transformer() else {
        return Ok(());
    };
    let dir = run_dir.join(TIMELINE_DIR);
    std::fs::create_dir_all(&dir)
        .map_err(|e| msg(format!("cannot create {}: {e}", dir.display())))?;
    Checkpoint::new(0, epoch, model.name())
        .with_params(&st.params())
        .save(&path(run_dir, epoch))?;
    Ok(())
}

/// The snapshots of a run folder as (epoch, path), by epoch.
///
/// # Errors
/// If the folder has no timeline or it holds no snapshot.
pub fn list(run_dir: &Path) -> Result<Vec<(u64, PathBuf)>, CliError> {
    let dir = run_dir.join(TIMELINE_DIR);
    let entries = std::fs::read_dir(&dir).map_err(|e| {
        msg(format!(
            "--timeline {}: no {TIMELINE_DIR}/ folder of epoch snapshots ({e}); runs of `warpgrad train` with a spatial transformer write one",
            run_dir.display()
        ))
    })?;
    let mut out = Vec::new();
    for entry in entries {
        let p = entry
            .map_err(|e| msg(format!("cannot read {}: {e}", dir.display())))?
            .path();
        let epoch = p.file_name().and_then(|n| n.to_str()).and_then(|n| {
            n.strip_prefix("epoch-")?
                .strip_suffix(".wgck")?
                .parse()
                .ok()
        });
        if let Some(e) = epoch {
            out.push((e, p));
        }
    }
    if out.is_empty() {
        return Err(msg(format!(
            "--timeline {}: {} holds no epoch-NNN.wgck snapshot",
            run_dir.display(),
            dir.display()
        )));
    }
    out.sort();
    Ok(out)
}

/// Loads a snapshot into the transformer of `model`; the classifier keeps
/// its weights. Returns the snapshot's epoch.
///
/// # Errors
/// An unreadable file, or one whose tensors are not exactly the
/// transformer's (names and shapes), naming the file.
pub fn load(path: &Path, model: &mut Model) -> Result<u64, CliError> {
    let ck = Checkpoint::load(path)?;
    let names: Vec<String> = match model.transformer() {
        Some(st) => st.params().iter().map(|p| p.name.clone()).collect(),
        None => {
            return Err(msg(format!(
                "{}: model {} has no spatial transformer to load a snapshot into",
                path.display(),
                model.name()
            )))
        }
    };
    let mut params: Vec<_> = model
        .params_mut()
        .into_iter()
        .filter(|p| names.contains(&p.name))
        .collect();
    ck.restore_params(&mut params)?;
    Ok(ck.epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("wg-snapshot-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_snapshot_round_trips_the_transformer_only() {
        let d = tmp("rt");
        let a = stn::build_model("st-cnn-aff", 28, 1).unwrap();
        save(&d, 3, &a).unwrap();
        let mut b = stn::build_model("st-cnn-aff", 28, 2).unwrap();
        let before: Vec<Vec<f32>> = b.params().iter().map(|p| p.value.data().to_vec()).collect();
        assert_eq!(load(&path(&d, 3), &mut b).unwrap(), 3);
        let st_names: Vec<String> = a
            .transformer()
            .unwrap()
            .params()
            .iter()
            .map(|p| p.name.clone())
            .collect();
        let mut copied = 0;
        for ((pa, pb), old) in a.params().iter().zip(b.params()).zip(&before) {
            // The transformer's weights are copied, the classifier's kept.
            if st_names.contains(&pa.name) {
                assert_eq!(pa.value.data(), pb.value.data(), "{}", pa.name);
                copied += 1;
            } else {
                assert_eq!(pb.value.data(), &old[..], "{}", pa.name);
            }
        }
        assert_eq!(copied, st_names.len());
        assert!(copied > 0 && copied < a.params().len());
        assert_eq!(list(&d).unwrap(), vec![(3, path(&d, 3))]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn bad_timelines_are_named_errors() {
        let d = tmp("bad");
        let e = list(&d).unwrap_err().to_string();
        assert!(e.contains("no timeline/ folder"), "{e}");
        std::fs::create_dir_all(d.join(TIMELINE_DIR)).unwrap();
        let e = list(&d).unwrap_err().to_string();
        assert!(e.contains("holds no epoch-NNN.wgck"), "{e}");
        // A snapshot of another model: its tensors do not fit.
        save(&d, 0, &stn::build_model("st-fcn-aff", 28, 1).unwrap()).unwrap();
        let mut m = stn::build_model("st-cnn-aff", 28, 1).unwrap();
        let e = load(&path(&d, 0), &mut m).unwrap_err().to_string();
        assert!(e.contains("epoch-000.wgck"), "{e}");
        // No snapshot for a model without a transformer.
        save(&d, 1, &stn::build_model("cnn", 28, 1).unwrap()).unwrap();
        assert!(!path(&d, 1).exists());
        let _ = std::fs::remove_dir_all(&d);
    }
}
