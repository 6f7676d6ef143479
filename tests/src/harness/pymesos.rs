//! pymesos 0.3.15, the third-party framework the compatibility tests run
//! against agent-sim: the venv `scripts/pymesos-env.sh` makes (or reuses)
//! under `target/pymesos-venv`, and the Python programs in this crate's
//! `pymesos/` directory. Fails, never skips, without Python 3, venv and
//! pip.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::binaries::repo_root;

/// Runs `scripts/pymesos-env.sh` and returns the venv's python (its last
/// line of output). Blocking: call it from `spawn_blocking` in async tests.
#[track_caller]
pub fn venv_python() -> PathBuf {
    let script = repo_root().join("scripts/pymesos-env.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("bash runs {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "scripts/pymesos-env.sh failed ({}): Python 3 with venv and pip is required",
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let python = stdout
        .lines()
        .last()
        .expect("the script prints the venv python");
    PathBuf::from(python.trim())
}

/// The Python program `name` (`first_fit.py`, `executor.py`) in this
/// crate's `pymesos/` directory.
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("pymesos")
        .join(name)
}
