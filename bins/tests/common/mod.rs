//! Helpers shared by the tests that run the `warpgrad` binary (each test
//! file includes this module and uses part of it).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The `warpgrad` binary under test.
pub fn exe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_warpgrad"))
}

/// Runs the binary with `args` to the end.
pub fn run(args: &[&str]) -> Output {
    exe().args(args).output().unwrap()
}

/// An output stream as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A fresh, empty temporary folder for one test of `suite`.
pub fn tmp(suite: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wg-{suite}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Asserts a failed run that printed exactly one line, `error: …`
/// containing `needle`, and did not panic.
pub fn assert_one_line_error(o: &Output, needle: &str) {
    let err = text(&o.stderr);
    assert!(!o.status.success(), "expected a failure, got success");
    assert!(!err.contains("panicked"), "panic: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one error line expected: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(lines[0].contains(needle), "{needle:?} not in: {err}");
}
