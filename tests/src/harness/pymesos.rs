//! pymesos 0.3.15, the third-party framework the compatibility tests run
//! against agent-sim: the venv `scripts/pymesos-env.sh` makes (or reuses)
//! under `target/pymesos-venv`, and the Python programs in this crate's
//! `pymesos/` directory. Fails, never skips, without Python 3, venv and
//! pip.

use std::path::PathBuf;

use super::venv;

/// Runs `scripts/pymesos-env.sh` and returns the venv's python. Blocking: call
/// it from `spawn_blocking` in async tests.
#[track_caller]
pub fn venv_python() -> PathBuf {
    venv::python("pymesos-env.sh")
}

/// The Python program `name` (`first_fit.py`, `executor.py`) in this
/// crate's `pymesos/` directory.
pub fn script(name: &str) -> PathBuf {
    venv::program("pymesos", name)
}
