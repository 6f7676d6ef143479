//! A third-party framework registers with the simulator: the pure-Python
//! pymesos 0.3.15 (installed from PyPI by `scripts/pymesos-env.sh`) runs a
//! first-fit scheduler that launches 20 command tasks and must see each
//! reach TASK_FINISHED, while a Rust framework registered beside it keeps
//! receiving offers. Fails, never skips, when Python or pip is missing.
#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::Duration;

use drover_proto::v1::scheduler::call;
use drover_proto::v1::{self, scheduler::event};
use drover_proto::MediaType;
use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::framework::{framework_info, is, Framework};
use drover_tests::harness::pymesos;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymesos_runs_twenty_tasks_to_finished_beside_a_rust_framework() {
    let python = tokio::task::spawn_blocking(pymesos::venv_python)
        .await
        .unwrap();
    let sim = AgentSim::builder()
        .agents(4)
        .args(&[
            "--allocation-interval",
            "200ms",
            "--heartbeat-interval",
            "2secs",
        ])
        .start();

    // The Rust framework subscribes first and declines briefly, as a good
    // citizen does, so the agents are shared.
    let mut rust =
        Framework::subscribe(sim.addr, MediaType::Protobuf, framework_info("rust-beside")).await;
    let first = rust.next_offers().await;
    assert!(!first.is_empty());
    // 0: pymesos not started, 1: running, 2: stop watching.
    let (phase_tx, mut phase_rx) = tokio::sync::watch::channel(0u8);
    let watcher = tokio::spawn(async move {
        let mut offers_while_pymesos_ran = 0usize;
        let mut pending = first;
        loop {
            let decline = rust.call(call::Type::Decline, |c| {
                c.decline = Some(call::Decline {
                    offer_ids: pending.iter().map(|o| o.id.clone()).collect(),
                    filters: Some(v1::Filters {
                        refuse_seconds: Some(0.2),
                    }),
                })
            });
            rust.send_ok(&decline).await;
            let e = loop {
                tokio::select! {
                    e = rust.stream.until(is(event::Type::Offers)) => break Some(e),
                    _ = phase_rx.changed() => if *phase_rx.borrow() == 2 { break None },
                }
            };
            let Some(e) = e else { break };
            pending = e.offers.unwrap().offers;
            if *phase_rx.borrow() == 1 {
                offers_while_pymesos_ran += pending.len();
            }
        }
        offers_while_pymesos_ran
    });

    let script = pymesos::script("first_fit.py");
    let mut child = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(sim.addr.to_string())
        .arg("20")
        .arg("sleep 1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the pymesos scheduler starts");
    phase_tx.send(1).unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let read_out = tokio::spawn(async move {
        let mut s = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut tokio::io::BufReader::new(stdout), &mut s)
            .await
            .unwrap();
        s
    });
    let read_err = tokio::spawn(async move {
        let mut s = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut tokio::io::BufReader::new(stderr), &mut s)
            .await
            .unwrap();
        s
    });
    let status = match tokio::time::timeout(Duration::from_secs(60), child.wait()).await {
        Ok(s) => s.unwrap(),
        Err(_) => {
            child.kill().await.unwrap();
            panic!(
                "pymesos did not finish within 60 s: {}",
                read_err.await.unwrap()
            );
        }
    };
    let out = read_out.await.unwrap();
    let err = read_err.await.unwrap();
    assert!(
        status.success(),
        "pymesos exited {status}\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert!(out.contains("finished 20 failed 0 of 20"), "{out}");
    for i in 0..20 {
        assert!(
            err.contains(&format!("task-{i} -> TASK_FINISHED")),
            "task-{i} did not finish:\n{err}"
        );
    }
    phase_tx.send(2).unwrap();
    let offers_beside = watcher.await.unwrap();
    assert!(
        offers_beside > 0,
        "the Rust framework got no offers while pymesos ran"
    );

    // pymesos tore itself down: its framework is completed with its tasks gone.
    let (code, state) = sim.get("/state").await;
    assert_eq!(code, 200);
    let done = state["completed_frameworks"].as_array().unwrap();
    assert!(done.iter().any(|f| f["name"] == "pymesos-first-fit"));
}
