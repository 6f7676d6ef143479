//! Where the binaries under test are: beside the test executable, in the
//! profile directory cargo built it into (`target/debug` or
//! `target/release`). A binary that is not there yet is built with
//! `cargo build -p <package> --bin <name>` in the same profile, once per
//! test process. A binary that is there is used as it is: after changing a
//! binary's sources, build the workspace (`cargo build --workspace
//! --all-targets`, or `cargo test --workspace`, which builds every
//! binary) before `cargo test -p drover-tests`.
//!
//! Knows nothing of how a binary is started or what it prints
//! ([`super::process`] does that).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The scheduler: `drover-scheduler` of package `drover-scheduler`.
pub fn scheduler() -> PathBuf {
    binary("drover-scheduler", "drover-scheduler")
}

/// The `drover` command line, of package `drover-scheduler`.
pub fn drover() -> PathBuf {
    binary("drover-scheduler", "drover")
}

/// The Mesos master with simulated and real agents.
pub fn agent_sim() -> PathBuf {
    binary("drover-agent-sim", "drover-agent-sim")
}

/// The executor real agents start for Drover's tasks.
pub fn executor() -> PathBuf {
    binary("drover-executor", "drover-executor")
}

/// The directory cargo puts binaries in for this test's profile: the test
/// executable runs from `<target>/<profile>/deps/`.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable knows its own path");
    let dir = exe
        .parent()
        .expect("the test executable is inside a directory");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent()
            .expect("`deps` is inside the profile directory")
            .to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// The workspace root (where `Cargo.toml`, `scripts/` and `target/` are).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the drover-tests crate sits in the workspace root")
        .to_path_buf()
}

/// `name` of `package`, built into [`bin_dir`] first if it is missing.
#[track_caller]
pub fn binary(package: &str, name: &str) -> PathBuf {
    // One build at a time: tests run on several threads, and each would
    // otherwise start its own cargo for the same missing binary.
    static BUILDING: Mutex<()> = Mutex::new(());
    let path = bin_dir().join(name);
    if path.exists() {
        return path;
    }
    let _one = BUILDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !path.exists() {
        build(package, name, &path);
    }
    assert!(
        path.exists(),
        "{name} is not at {} after building it",
        path.display()
    );
    path
}

/// `cargo build -p package --bin name`, in the profile of [`bin_dir`].
#[track_caller]
fn build(package: &str, name: &str, path: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .current_dir(repo_root())
        .args(["build", "-p", package, "--bin", name]);
    match bin_dir().file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(profile) => {
            command.args(["--profile", profile]);
        }
    }
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cargo} to build {name}: {e}"));
    assert!(
        status.success(),
        "`cargo build -p {package} --bin {name}` failed ({status}); {} is missing",
        path.display()
    );
}
