//! The container images tests run (`scripts/test-images.sh`), built once
//! per test process into `<target>/test-images` and reused across runs
//! (the script is idempotent and serialises parallel builders).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The directory holding the test images: `busybox/` and `busybox-entry/`
/// (OCI layouts, ref names `drover-test/busybox:1` and
/// `drover-test/busybox-entry:1`) and `busybox.tar` (a `docker save`
/// tarball of `drover-test/busybox-save:1`). Builds it on first use; panics
/// with the script's output if the build fails (needs root and the Debian
/// packages the script installs).
pub fn test_images() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(build).clone()
}

fn build() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("drover-test-support sits in the workspace root");
    let script = repo.join("scripts/test-images.sh");
    let outdir = target_dir().join("test-images");
    let output = Command::new(&script)
        .arg(&outdir)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "{} {} failed ({}):\n{}{}",
        script.display(),
        outdir.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    outdir
}

/// `<target>`: the test executable runs from `<target>/<profile>/deps/`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable knows its own path");
    let mut dir = exe
        .parent()
        .expect("the test executable is inside a directory");
    if dir.file_name().is_some_and(|name| name == "deps") {
        dir = dir
            .parent()
            .expect("`deps` is inside the profile directory");
    }
    dir.parent()
        .expect("the profile directory is inside the target directory")
        .to_path_buf()
}
