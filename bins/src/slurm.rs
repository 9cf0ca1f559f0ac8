//! Sweeps on a Slurm cluster: an sbatch job-array script with one run per
//! array task.
//!
//! Task `i` `exec`s command line `i`, so the training process itself is the
//! batch step and receives Slurm's SIGTERM (pre-emption, time limit,
//! `scancel`) directly, saves its checkpoint and stops. Every line of
//! `warpgrad reproduce table1` carries `--resume-or-start`, so a requeued task (the
//! script asks for `--requeue`) or a resubmitted script continues the run
//! where it stopped; `reproduce table1 --collect` then gathers the results.
//! A task whose run already finished (its `results.json` exists) exits at
//! once, so resubmitting the whole array redoes nothing.

use crate::error::{msg, CliError};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// How the job array is submitted.
#[derive(Clone, Debug)]
pub struct SlurmOptions {
    /// `--job-name`.
    pub job_name: String,
    /// `--cpus-per-task` (also the runs' `--threads` when they name none).
    pub cpus_per_task: usize,
    /// `--time` (e.g. `00:30:00`), if any.
    pub time: Option<String>,
    /// The folder the script runs in (`--chdir`): relative paths in the
    /// command lines are relative to it.
    pub workdir: PathBuf,
    /// Where each task's log goes (`<job>_<task>.log`).
    pub log_dir: PathBuf,
}

/// One run of the sweep: its command line (program first) and the file that
/// exists once it has finished.
#[derive(Clone, Debug)]
pub struct SlurmTask {
    /// The words of the command, program first; quoted for the shell here.
    pub argv: Vec<String>,
    /// Present when the run is done (`results.json`): the task then exits.
    pub done_file: Option<PathBuf>,
}

/// Quotes a word for a POSIX shell (unchanged when it needs no quotes).
pub fn shell_quote(w: &str) -> String {
    let plain = !w.is_empty()
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_=./,:@%+".contains(&b));
    if plain {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

/// The text of an sbatch job-array script: `#SBATCH --array=0-(N-1)`, and a
/// `case` on `$SLURM_ARRAY_TASK_ID` that `exec`s task `i`'s command line.
///
/// # Errors
/// When there is no task, or `cpus_per_task` is 0.
pub fn job_array_script(tasks: &[SlurmTask], o: &SlurmOptions) -> Result<String, CliError> {
    if tasks.is_empty() {
        return Err(msg("--slurm: no runs selected, so no job array to write"));
    }
    if o.cpus_per_task == 0 {
        return Err(msg("--slurm: cpus per task must be at least 1"));
    }
    let q = |p: &Path| shell_quote(&p.display().to_string());
    let mut s = String::new();
    let _ = writeln!(s, "#!/bin/bash");
    let _ = writeln!(
        s,
        "# {} runs, one per array task. Written by `warpgrad reproduce table1 --slurm`.\n\
         # Submit: sbatch THIS_FILE; after: warpgrad reproduce table1 --collect (same selection).\n\
         # A run stopped by SIGTERM (pre-emption, time limit) keeps its checkpoint;\n\
         # requeue it (scontrol requeue JOB_TASK) or resubmit this file to continue.",
        tasks.len()
    );
    let _ = writeln!(s, "#SBATCH --job-name={}", shell_quote(&o.job_name));
    let _ = writeln!(s, "#SBATCH --array=0-{}", tasks.len() - 1);
    let _ = writeln!(s, "#SBATCH --ntasks=1");
    let _ = writeln!(s, "#SBATCH --cpus-per-task={}", o.cpus_per_task);
    if let Some(t) = &o.time {
        let _ = writeln!(s, "#SBATCH --time={}", shell_quote(t));
    }
    let _ = writeln!(s, "#SBATCH --chdir={}", q(&o.workdir));
    let _ = writeln!(
        s,
        "#SBATCH --output={}/%A_%a.log",
        q(&o.log_dir).trim_end_matches('/')
    );
    let _ = writeln!(s, "#SBATCH --open-mode=append");
    let _ = writeln!(s, "#SBATCH --requeue");
    s.push_str("set -eu\n");
    let _ = writeln!(s, "mkdir -p {}", q(&o.log_dir));
    s.push_str("case \"${SLURM_ARRAY_TASK_ID:?not run as a Slurm array task}\" in\n");
    for (i, t) in tasks.iter().enumerate() {
        let words: Vec<String> = t.argv.iter().map(|w| shell_quote(w)).collect();
        let _ = writeln!(s, "{i})");
        if let Some(done) = &t.done_file {
            let _ = writeln!(
                s,
                "    if [ -e {} ]; then echo \"task $SLURM_ARRAY_TASK_ID: already finished\"; exit 0; fi",
                q(done)
            );
        }
        let _ = writeln!(s, "    set -- {}", words.join(" "));
        s.push_str("    ;;\n");
    }
    s.push_str("*) echo \"no run for array task $SLURM_ARRAY_TASK_ID\" >&2; exit 2 ;;\nesac\n");
    s.push_str("echo \"task $SLURM_ARRAY_TASK_ID on $(hostname) at $(date -u +%FT%TZ): $*\"\n");
    s.push_str("# exec: the run itself receives Slurm's SIGTERM.\nexec \"$@\"\n");
    Ok(s)
}

/// Writes [`job_array_script`] to `path` (atomically, executable), creating
/// the log folder so `sbatch` can open the task logs.
///
/// # Errors
/// As [`job_array_script`], and when a file cannot be written.
pub fn write_job_array(path: &Path, tasks: &[SlurmTask], o: &SlurmOptions) -> Result<(), CliError> {
    let text = job_array_script(tasks, o)?;
    let io = |what: &str, p: &Path, e: std::io::Error| {
        msg(format!("cannot {what} {}: {e}", p.display()))
    };
    std::fs::create_dir_all(&o.log_dir).map_err(|e| io("create", &o.log_dir, e))?;
    engine::fsio::write_atomic(path, |w| std::io::Write::write_all(w, text.as_bytes()))
        .map_err(|e| io("write", path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| io("make executable", path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> SlurmOptions {
        SlurmOptions {
            job_name: "wg".into(),
            cpus_per_task: 2,
            time: Some("00:30:00".into()),
            workdir: "/w d".into(),
            log_dir: "/w d/logs".into(),
        }
    }

    fn task(words: &[&str], done: Option<&str>) -> SlurmTask {
        SlurmTask {
            argv: words.iter().map(|w| w.to_string()).collect(),
            done_file: done.map(PathBuf::from),
        }
    }

    #[test]
    fn quoting_survives_the_shell() {
        assert_eq!(shell_quote("--out=runs/a-b_c"), "--out=runs/a-b_c");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("it's $x"), r"'it'\''s $x'");
    }

    #[test]
    fn one_case_per_task_and_the_array_matches() {
        let t = [
            task(
                &["warpgrad", "train", "--seed=1"],
                Some("runs/a/results.json"),
            ),
            task(&["warpgrad", "train", "--out=my runs/b"], None),
        ];
        let s = job_array_script(&t, &opts()).unwrap();
        assert!(s.starts_with("#!/bin/bash\n"));
        assert!(s.contains("#SBATCH --array=0-1\n"), "{s}");
        assert!(s.contains("#SBATCH --cpus-per-task=2\n"));
        assert!(s.contains("#SBATCH --time=00:30:00\n"));
        assert!(s.contains("#SBATCH --chdir='/w d'\n"), "{s}");
        assert!(
            s.contains("#SBATCH --output='/w d/logs'/%A_%a.log\n"),
            "{s}"
        );
        assert!(s.contains("0)\n    if [ -e runs/a/results.json ]"), "{s}");
        assert!(s.contains("    set -- warpgrad train --seed=1\n"), "{s}");
        assert!(
            s.contains("1)\n    set -- warpgrad train '--out=my runs/b'\n"),
            "{s}"
        );
        assert!(s.trim_end().ends_with("exec \"$@\""));
    }

    #[test]
    fn the_script_runs_each_task_through_a_real_shell() {
        // Runs the script with bash for each task id, `exec`ing `echo`.
        let dir = std::env::temp_dir().join(format!("wg-slurm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut o = opts();
        o.workdir = dir.clone();
        o.log_dir = dir.join("logs");
        let done = dir.join("done");
        let t = [
            task(&["echo", "first", "it's"], None),
            task(&["echo", "second"], Some(done.to_str().unwrap())),
        ];
        let path = dir.join("job.sbatch");
        write_job_array(&path, &t, &o).unwrap();
        assert!(o.log_dir.is_dir());
        let run = |id: &str| {
            let out = std::process::Command::new("bash")
                .arg(&path)
                .env("SLURM_ARRAY_TASK_ID", id)
                .output()
                .unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        };
        let (rc, out) = run("0");
        assert_eq!(rc, Some(0));
        assert!(out.ends_with("first it's\n"), "{out}");
        let (_, out) = run("1");
        assert!(out.ends_with("second\n"), "{out}");
        std::fs::write(&done, "{}").unwrap();
        let (rc, out) = run("1");
        assert_eq!(rc, Some(0));
        assert!(
            out.contains("already finished") && !out.contains("second"),
            "{out}"
        );
        assert_eq!(run("2").0, Some(2));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_tasks_or_no_cpus_is_an_error() {
        assert!(job_array_script(&[], &opts()).is_err());
        let mut o = opts();
        o.cpus_per_task = 0;
        assert!(job_array_script(&[task(&["x"], None)], &o).is_err());
    }
}
