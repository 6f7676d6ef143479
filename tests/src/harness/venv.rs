//! The Python virtualenvs the compatibility tests drive third-party
//! clients from: each made (or reused) by a script in `scripts/` that
//! prints the venv's python as its last line, and the Python programs kept
//! in a directory of this crate. Fails, never skips, without Python 3,
//! venv and pip.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::binaries::repo_root;

/// Runs `scripts/<env_script>` and returns the venv's python (its last
/// line of output). Blocking: call it from `spawn_blocking` in async tests.
#[track_caller]
pub fn python(env_script: &str) -> PathBuf {
    let script = repo_root().join("scripts").join(env_script);
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("bash runs {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "scripts/{env_script} failed ({}): Python 3 with venv and pip, and the Python \
         package index, are required",
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let python = stdout
        .lines()
        .last()
        .expect("the script prints the venv python");
    PathBuf::from(python.trim())
}

/// The Python program `name` in this crate's directory `dir`.
pub fn program(dir: &str, name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(dir)
        .join(name)
}
