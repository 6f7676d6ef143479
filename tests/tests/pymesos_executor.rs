//! A third-party executor under a real agent: pymesos 0.3.15's
//! MesosExecutorDriver (`tests/pymesos/executor.py`, installed from PyPI by
//! `scripts/pymesos-env.sh`) runs as the custom executor of a pymesos
//! scheduler's tasks (`tests/pymesos/first_fit.py` with EXECUTOR_CMD). Every
//! task must reach TASK_FINISHED, each with a framework message relayed
//! scheduler -> executor and the answer executor -> scheduler, and the
//! executor must end when the framework tears down. Fails, never skips,
//! when Python or pip is missing.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::pymesos;

async fn read_all(
    r: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let mut s = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut tokio::io::BufReader::new(r), &mut s)
            .await;
        s
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pymesos_executor_runs_its_tasks_to_finished_with_messages_both_ways() {
    let python = tokio::task::spawn_blocking(pymesos::venv_python)
        .await
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut sim = AgentSim::builder()
        .agents(1)
        .real_agents(1, work.path())
        .args(&[
            "--allocation-interval",
            "200ms",
            "--executor-shutdown-grace-period",
            "2secs",
        ])
        .start();
    let executor = pymesos::script("executor.py");
    let scheduler = pymesos::script("first_fit.py");
    let mut child = tokio::process::Command::new(&python)
        .arg(&scheduler)
        .arg(sim.addr.to_string())
        .arg("5")
        .arg("echo task-output")
        .env(
            "EXECUTOR_CMD",
            format!("{} {}", python.display(), executor.display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the pymesos scheduler starts");
    let out = read_all(child.stdout.take().unwrap()).await;
    let err = read_all(child.stderr.take().unwrap()).await;
    let status = match tokio::time::timeout(Duration::from_secs(60), child.wait()).await {
        Ok(s) => s.unwrap(),
        Err(_) => {
            child.kill().await.unwrap();
            panic!("pymesos did not finish within 60 s: {}", err.await.unwrap());
        }
    };
    let out = out.await.unwrap();
    let err = err.await.unwrap();
    assert!(
        status.success(),
        "pymesos exited {status}\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert!(out.contains("finished 5 failed 0 of 5"), "{out}\n{err}");
    assert!(
        out.contains("pongs 5"),
        "every ping answered through the executor: {out}\n{err}"
    );

    // The framework tore down: its executor got SHUTDOWN and is gone.
    let mut gone = false;
    for _ in 0..200 {
        let (_, v) = sim.get("/sim/executors").await;
        if v["executors"].as_array().unwrap().is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the pymesos executor outlived its framework");
    // Its sandbox holds its log, in Mesos' layout.
    let executors = work.path().join("agents");
    let log = find_file(&executors, "stderr").expect("the executor's stderr in its sandbox");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("registered: executor pymesos-example-executor"),
        "{text}"
    );
    assert!(log
        .to_string_lossy()
        .contains("/executors/pymesos-example-executor/runs/"));
    sim.stop();
}

fn find_file(dir: &std::path::Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.filter_map(Result::ok) {
        let p = e.path();
        if p.is_dir() {
            if let Some(f) = find_file(&p, name) {
                return Some(f);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}
