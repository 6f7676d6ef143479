//! The Kubeflow Pipelines 1.8 clients (the `kfp` SDK and `kfp-server-api`),
//! in the venv `scripts/kfp-env.sh` makes (or reuses) under
//! `target/kfp-venv`, and the Python drivers in this crate's `kfp/`
//! directory. Fails, never skips, without Python 3, venv and pip.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::binaries::repo_root;

/// Runs `scripts/kfp-env.sh` and returns the venv's python (its last line
/// of output). Blocking: call it from `spawn_blocking` in async tests.
#[track_caller]
pub fn venv_python() -> PathBuf {
    let script = repo_root().join("scripts/kfp-env.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("bash runs {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "scripts/kfp-env.sh failed ({}): Python 3 with venv and pip, and PyPI, are required",
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let python = stdout
        .lines()
        .last()
        .expect("the script prints the venv python");
    PathBuf::from(python.trim())
}

/// The Python driver `name` (`client_check.py`) in this crate's `kfp/`
/// directory.
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("kfp")
        .join(name)
}
