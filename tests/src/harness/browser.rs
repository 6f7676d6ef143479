//! The UI's browser scripts (`ui/e2e/*.mjs`: headless Chromium driven
//! with playwright-core under node) as the browser tests run them: what
//! they need, checked with a message that says how to get it, and a
//! script's run in steps. A stepped script prints `STEP <name> [json]` as
//! it goes; the test acts on the steps it cares about and answers `GO`
//! to those the script waits on. The run passes when the script exits 0
//! after its last step, `done`.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use super::binaries::repo_root;

/// Debian's Chromium (or `CHROMIUM`), after checking that the scripts can
/// run: node and `ui/node_modules`.
pub fn chromium() -> PathBuf {
    let path = PathBuf::from(std::env::var("CHROMIUM").unwrap_or("/usr/bin/chromium".into()));
    assert!(
        path.exists(),
        "no Chromium at {}: the UI's browser tests need Debian's chromium \
         (apt-get install chromium; .ci/run installs it), or CHROMIUM=path",
        path.display()
    );
    let version = std::process::Command::new("node").arg("--version").output();
    assert!(
        version.is_ok_and(|o| o.status.success()),
        "no node: the UI's browser tests run ui/e2e/*.mjs with node \
         (apt-get install nodejs npm; .ci/run installs them)"
    );
    let playwright = repo_root().join("ui/node_modules/playwright-core");
    assert!(
        playwright.exists(),
        "{} is missing: run `npm ci` in ui/ (.ci/run does)",
        playwright.display()
    );
    path
}

/// A node process of `ui/e2e/<script>` with `args`, on `chromium`.
pub fn script(script: &str, chromium: &std::path::Path) -> Command {
    let mut command = Command::new("node");
    command
        .arg(repo_root().join("ui/e2e").join(script))
        .env("CHROMIUM", chromium)
        .kill_on_drop(true);
    command
}

/// Runs `command` (from [`script`]) in steps: `on_step(name, line)` for
/// each `STEP` line, which answers `GO` when it returns true. Fails the
/// test, with the script's stderr, when the run takes over `limit`, does
/// not exit 0, or did not end at step `done`. The steps seen, in order.
pub async fn run_steps(
    mut command: Command,
    args: &[&OsStr],
    limit: Duration,
    mut on_step: impl AsyncFnMut(&str, &str) -> bool,
) -> Vec<String> {
    let mut browser = command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts the browser script");
    let mut to_browser = browser.stdin.take().expect("piped stdin");
    let mut steps = BufReader::new(browser.stdout.take().expect("piped stdout")).lines();
    let mut stderr = browser.stderr.take().expect("piped stderr");
    let stderr_text = tokio::spawn(async move {
        let mut text = String::new();
        stderr.read_to_string(&mut text).await.ok();
        text
    });
    let run = async {
        let mut seen = Vec::new();
        while let Ok(Some(line)) = steps.next_line().await {
            eprintln!("browser: {line}");
            let Some(step) = line.strip_prefix("STEP ") else {
                continue;
            };
            let name = step.split(' ').next().unwrap_or_default().to_owned();
            if on_step(&name, step).await {
                to_browser
                    .write_all(b"GO\n")
                    .await
                    .expect("answering the script");
                to_browser.flush().await.expect("answering the script");
            }
            seen.push(name);
        }
        seen
    };
    let seen = tokio::time::timeout(limit, run).await;
    let status = tokio::time::timeout(Duration::from_secs(30), browser.wait()).await;
    let stderr = stderr_text.await.unwrap_or_default();
    let seen = seen
        .unwrap_or_else(|_| panic!("the browser run took over {limit:?}; its stderr:\n{stderr}"));
    let status = status
        .unwrap_or_else(|_| panic!("node did not exit; its stderr:\n{stderr}"))
        .expect("waiting for node");
    assert!(
        status.success() && seen.last().map(String::as_str) == Some("done"),
        "the browser run failed ({status}) after steps {seen:?}:\n{stderr}"
    );
    seen
}
