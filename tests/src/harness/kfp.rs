//! The Kubeflow Pipelines 1.8 clients (the `kfp` SDK and `kfp-server-api`),
//! in the venv `scripts/kfp-env.sh` makes (or reuses) under
//! `target/kfp-venv`, and the Python drivers in this crate's `kfp/`
//! directory. Fails, never skips, without Python 3, venv and pip.

use std::path::PathBuf;

use super::venv;

/// Runs `scripts/kfp-env.sh` and returns the venv's python. Blocking: call
/// it from `spawn_blocking` in async tests.
#[track_caller]
pub fn venv_python() -> PathBuf {
    venv::python("kfp-env.sh")
}

/// The Python driver `name` (`client_check.py`) in this crate's `kfp/`
/// directory.
pub fn script(name: &str) -> PathBuf {
    venv::program("kfp", name)
}
