//! Builds the web UI (`ui/` at the repository root, Vite) into
//! `$OUT_DIR/ui`, which `src/api/ui.rs` embeds in the binary. `npm ci` runs
//! only when `ui/node_modules` is missing or older than the lockfile;
//! `npm run build` only when the UI's sources change (cargo's
//! `rerun-if-changed`). Without npm (or with `DROVER_UI=placeholder`) the
//! scheduler still builds and embeds a one-page placeholder saying how to
//! build the UI, with a warning; npm present but failing fails the build,
//! as any broken source would.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let ui = manifest.join("..").join("ui");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it")).join("ui");
    for watched in [
        "src",
        "index.html",
        "package.json",
        "package-lock.json",
        "vite.config.js",
    ] {
        println!("cargo:rerun-if-changed={}", ui.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=DROVER_UI");
    println!("cargo:rerun-if-env-changed=NPM");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("create $OUT_DIR/ui");

    let npm = std::env::var("NPM").unwrap_or_else(|_| "npm".to_owned());
    let wanted = std::env::var("DROVER_UI").ok();
    let npm_works = Command::new(&npm)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if wanted.as_deref() == Some("placeholder") || !npm_works || !ui.join("package.json").exists() {
        let why = if npm_works {
            "DROVER_UI=placeholder"
        } else {
            "npm was not found"
        };
        println!(
            "cargo:warning=the web UI is not built ({why}): the scheduler serves a placeholder at /ui/; \
             install node and npm and build again"
        );
        std::fs::write(out.join("index.html"), PLACEHOLDER).expect("write the placeholder");
        return;
    }
    if stale_modules(&ui) {
        run(Command::new(&npm)
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&ui));
    }
    run(Command::new(&npm)
        .args(["run", "build", "--", "--outDir"])
        .arg(&out)
        .arg("--emptyOutDir")
        .current_dir(&ui));
}

/// Whether `npm ci` is needed: no `node_modules`, or npm's record of it
/// (`node_modules/.package-lock.json`) older than the lockfile.
fn stale_modules(ui: &Path) -> bool {
    let modified = |p: PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (
        modified(ui.join("node_modules").join(".package-lock.json")),
        modified(ui.join("package-lock.json")),
    ) {
        (Some(installed), Some(lock)) => installed < lock,
        _ => true,
    }
}

fn run(command: &mut Command) {
    let shown = format!("{command:?}");
    match command.status() {
        Ok(status) if status.success() => {}
        Ok(status) => panic!("building the web UI: {shown} exited with {status}"),
        Err(e) => panic!("building the web UI: {shown}: {e}"),
    }
}

/// What `/ui/` serves when the UI was not built. The browser test looks for
/// `drover-ui-placeholder` and fails naming it.
const PLACEHOLDER: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="drover-ui" content="drover-ui-placeholder">
<title>Drover: the web UI is not built</title></head>
<body><h1>The web UI is not built</h1>
<p>This scheduler was built without npm, so its web UI was left out.
Install Node.js (20 or later) and npm, then build again: <code>cargo build -p drover-scheduler</code>
runs <code>npm ci</code> and <code>npm run build</code> in <code>ui/</code> and embeds the result.</p>
<p>The JSON API is at <a href="/api/v1/jobs">/api/v1/jobs</a>.</p>
</body></html>
"#;
