//! drover-executor as a Mesos agent's command executor: agent-sim's real
//! agent with `--launcher-dir DIR` execs `DIR/mesos-executor` with
//! `argv[0]` `mesos-executor` and `--launcher_dir=DIR`, as a Mesos agent
//! does (`Slave::getExecutorInfo`), DIR holding drover-executor under that
//! name (a symlink, as an operator would install it). Nothing tells the
//! executor its mode but its name. Root only (real cgroups); fails, never
//! skips, without it.
#![allow(clippy::unwrap_used)]

use drover_proto::v1::{self, command_info::Uri, TaskState};
use drover_proto::MediaType;
use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::binaries;
use drover_tests::harness::cgroup::require_root;
use drover_tests::harness::framework::{framework_info, state_of, task, Framework};

async fn until_terminal(fw: &mut Framework, task: &str) -> Vec<v1::TaskStatus> {
    let mut seen = Vec::new();
    loop {
        let s = fw.next_update(task).await;
        if s.uuid.is_some() {
            fw.ack(&s).await;
        }
        let state = state_of(&s);
        seen.push(s);
        if matches!(
            state,
            TaskState::TaskFinished
                | TaskState::TaskFailed
                | TaskState::TaskKilled
                | TaskState::TaskLost
                | TaskState::TaskError
        ) {
            return seen;
        }
    }
}

/// The one run directory of executor `executor` of framework `fw`.
fn run_dir(work: &std::path::Path, agent: &str, fw: &str, executor: &str) -> std::path::PathBuf {
    let runs = work
        .join("agents")
        .join(agent)
        .join("frameworks")
        .join(fw)
        .join("executors")
        .join(executor)
        .join("runs");
    std::fs::read_dir(&runs)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| !p.ends_with("latest"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_tasks_run_under_mesos_executor_from_the_launcher_dir() {
    require_root();
    let work = tempfile::tempdir().unwrap();
    let launcher = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(binaries::executor(), launcher.path().join("mesos-executor"))
        .unwrap();
    let input = launcher.path().join("input.txt");
    std::fs::write(&input, "fetched by mesos-executor\n").unwrap();
    let sim = AgentSim::builder()
        .agents(1)
        .real_agents(1, work.path())
        .args(&[
            "--allocation-interval",
            "100ms",
            "--launcher-dir",
            launcher.path().to_str().unwrap(),
        ])
        .start();
    let mut fw =
        Framework::subscribe(sim.addr, MediaType::Protobuf, framework_info("dropin")).await;
    let offer = fw.next_offers().await.remove(0);
    let mut ok = task("ok", &offer, "cat input.txt; echo argv0-ok");
    ok.command.as_mut().unwrap().uris = vec![Uri {
        value: format!("file://{}", input.display()),
        ..Default::default()
    }];
    let bad = task("bad", &offer, "exit 3");
    fw.launch(&offer, vec![ok, bad]).await;
    let ok_updates = until_terminal(&mut fw, "ok").await;
    let bad_updates = until_terminal(&mut fw, "bad").await;
    let states = |u: &[v1::TaskStatus]| u.iter().map(state_of).collect::<Vec<_>>();
    assert_eq!(
        states(&ok_updates),
        [
            TaskState::TaskStarting,
            TaskState::TaskRunning,
            TaskState::TaskFinished
        ]
    );
    let failed = bad_updates.last().unwrap();
    assert_eq!(state_of(failed), TaskState::TaskFailed);
    assert!(
        failed.message.as_deref().unwrap_or("").contains("status 3"),
        "{failed:?}"
    );
    let run = run_dir(work.path(), &offer.agent_id.value, &fw.id, "ok");
    // Command mode: the task's output is the sandbox's own stdout (a custom
    // executor would have put it under tasks/), beside the fetched file.
    let stdout = std::fs::read_to_string(run.join("stdout")).unwrap();
    assert_eq!(stdout, "fetched by mesos-executor\nargv0-ok\n");
    let log = std::fs::read_to_string(run.join("executor.stderr")).unwrap();
    assert!(
        log.contains("running as a Mesos agent's command executor"),
        "{log}"
    );
    assert!(
        log.contains(&format!("{}", launcher.path().display())),
        "the launcher dir reached the executor: {log}"
    );
}
