//! Who a task runs as on agent-sim's real agents, which start every
//! executor as the simulator's own user (root): the scheduler's `--user` is
//! every task's user in both executor modes, so a task never runs as root
//! because an agent is root; root itself needs `--allow-root-tasks` at the
//! scheduler and, for the executor the agent supplies in command mode, at
//! the agent. Root only (real cgroups, switching users).
#![allow(clippy::unwrap_used)]

use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::binaries;
use drover_tests::harness::cgroup::require_root;
use drover_tests::harness::http::get;
use drover_tests::harness::job_api::{create_job, job_spec, wait_for_job_state};
use drover_tests::harness::scheduler::Scheduler;
use std::path::{Path, PathBuf};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

/// The first file called `name` under `dir`.
fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

fn nobody_uid() -> String {
    nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("this host has a 'nobody' user")
        .uid
        .to_string()
}

/// What one task of a batch job saw: its uid, and whether it could write
/// a canary into a directory only root may enter (as `/root` is).
struct Seen {
    uid: String,
    wrote_canary: bool,
}

/// Runs a one-task batch job writing `id -u` to its sandbox on one real
/// agent (with `sim_args`), the scheduler started with `scheduler_args`
/// (which name the user or allow root: the harness adds nothing), and
/// returns what it saw once the job reached `want`, with its pod.
async fn run_id_job(
    sim_args: &[&str],
    scheduler_args: &[&str],
    command_user: Option<&str>,
    want: &str,
) -> (Option<Seen>, serde_json::Value) {
    require_root();
    let executor = binaries::executor();
    let work = tempfile::tempdir().unwrap();
    let root_only = tempfile::tempdir().unwrap();
    let canary = root_only.path().join(".drover-canary");
    let sim = AgentSim::for_scheduler(1)
        .real_agents(1, work.path())
        .args(sim_args)
        .start();
    let data = tempfile::tempdir().unwrap();
    let mut args = vec!["--executor", executor.to_str().unwrap()];
    args.extend_from_slice(scheduler_args);
    let s = Scheduler::start(data.path(), &format!("http://{}", sim.address), &args);
    let command = format!(
        "id -u > \"$MESOS_SANDBOX/uid\"; touch {} 2>/dev/null; exit 0",
        canary.display()
    );
    let mut spec = job_spec("BATCH", 1, &command);
    if let Some(user) = command_user {
        spec["default_spec"]["containers"][0]["command"]["user"] = user.into();
    }
    create_job(&s.address, "who", spec).await;
    wait_for_job_state(&s.address, "who", want, LIMIT).await;
    let (_, pod) = get(&s.address, "/api/v1/pods/who-0").await;
    let seen = find(work.path(), "uid").map(|path| Seen {
        uid: std::fs::read_to_string(path).unwrap().trim().to_owned(),
        wrote_canary: canary.exists(),
    });
    (seen, pod)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_framework_user_runs_the_task_under_the_drover_executor() {
    // The default --executor-mode: drover-executor, named by the scheduler.
    let (seen, pod) = run_id_job(&[], &["--user", "nobody"], None, "JOB_STATE_SUCCEEDED").await;
    let seen = seen.unwrap_or_else(|| panic!("the task wrote no uid: {pod}"));
    println!(
        "drover executor, --user nobody: uid {}, canary written: {}",
        seen.uid, seen.wrote_canary
    );
    assert_eq!(seen.uid, nobody_uid(), "{pod}");
    assert!(!seen.wrote_canary, "the task wrote where only root may");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_framework_user_runs_the_task_in_command_mode() {
    let (seen, pod) = run_id_job(
        &[],
        &["--user", "nobody", "--executor-mode", "command"],
        None,
        "JOB_STATE_SUCCEEDED",
    )
    .await;
    let seen = seen.unwrap_or_else(|| panic!("the task wrote no uid: {pod}"));
    println!(
        "command mode, --user nobody: uid {}, canary written: {}",
        seen.uid, seen.wrote_canary
    );
    assert_eq!(seen.uid, nobody_uid(), "{pod}");
    assert!(!seen.wrote_canary, "the task wrote where only root may");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_user_overrides_the_framework_user() {
    let (seen, pod) = run_id_job(
        &[],
        &["--user", "nobody", "--allow-root-tasks"],
        Some("root"),
        "JOB_STATE_SUCCEEDED",
    )
    .await;
    let seen = seen.unwrap_or_else(|| panic!("the task wrote no uid: {pod}"));
    assert_eq!(seen.uid, "0", "command.user root, allowed: {pod}");
    assert!(seen.wrote_canary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_executor_refuses_a_root_task_unless_the_agent_allows_it() {
    // The scheduler allows root, but in command mode the executor is the
    // agent's, which was not told root tasks are allowed: it refuses.
    let scheduler = [
        "--user",
        "root",
        "--allow-root-tasks",
        "--executor-mode",
        "command",
    ];
    let (seen, pod) = run_id_job(&[], &scheduler, None, "JOB_STATE_FAILED").await;
    let message = pod["current"]["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    println!("command mode, agent without --allow-root-tasks: {message}");
    assert!(
        seen.is_none(),
        "the task ran: uid {:?}",
        seen.map(|s| s.uid)
    );
    assert!(
        message.contains("refusing to run the task as root"),
        "{pod}"
    );
    let (seen, pod) = run_id_job(
        &["--allow-root-tasks"],
        &scheduler,
        None,
        "JOB_STATE_SUCCEEDED",
    )
    .await;
    let seen = seen.unwrap_or_else(|| panic!("the task wrote no uid: {pod}"));
    assert_eq!(seen.uid, "0");
}
