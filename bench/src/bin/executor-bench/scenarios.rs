//! The scenarios run through the real executor: LAUNCH-to-TASK_RUNNING of
//! short tasks one at a time, resident memory with many tasks running, and
//! KILL-to-TASK_KILLED of a task that ignores SIGTERM.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::Context;
use drover_executor::supervisor::cgroup_name;
use drover_proto::v1::{AgentId, CommandInfo, TaskId, TaskInfo, TaskState};
use drover_proto::TaskStateExt;
use tokio::sync::mpsc;

use super::agent::{Arrival, BenchAgent};
use super::subject::Subject;

/// How long any single wait may take before the run is abandoned.
const PATIENCE: Duration = Duration::from_secs(30);

/// The agent, its UPDATE stream and the executor under measurement.
pub struct Bench {
    /// The agent.
    pub agent: BenchAgent,
    /// UPDATEs as they arrive.
    pub arrivals: mpsc::UnboundedReceiver<Arrival>,
    /// The executor.
    pub subject: Subject,
}

/// A task that runs `argv` without a shell.
pub fn task(id: &str, argv: &[&str]) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: TaskId { value: id.into() },
        agent_id: AgentId {
            value: "bench-agent".into(),
        },
        command: Some(CommandInfo {
            shell: Some(false),
            value: argv.first().map(|s| s.to_string()),
            arguments: argv.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl Bench {
    /// Waits for the next UPDATE of `task_id` in a state `want` accepts,
    /// failing on a terminal state it does not accept.
    async fn wait_for(
        &mut self,
        task_id: &str,
        want: impl Fn(TaskState) -> bool,
    ) -> anyhow::Result<Instant> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let arrival = tokio::time::timeout_at(deadline, self.arrivals.recv())
                .await
                .ok()
                .flatten()
                .with_context(|| {
                    format!(
                        "no expected update for {task_id}; executor log:\n{}",
                        self.subject.log_tail()
                    )
                })?;
            if arrival.status.task_id.value != task_id {
                continue;
            }
            let state = arrival.status.state();
            if want(state) {
                return Ok(arrival.at);
            }
            anyhow::ensure!(
                !state.is_terminal(),
                "task {task_id} ended {state:?}: {:?}",
                arrival.status.message
            );
        }
    }

    /// LAUNCH-to-TASK_RUNNING of one task running `argv`, waited for to
    /// its end so that no launch competes with another.
    pub async fn launch_once(&mut self, id: &str, argv: &[&str]) -> anyhow::Result<Duration> {
        self.launch_info_once(id, task(id, argv)).await
    }

    /// [`Bench::launch_once`] of any task (`id` is its id).
    pub async fn launch_info_once(&mut self, id: &str, info: TaskInfo) -> anyhow::Result<Duration> {
        let sent = self
            .agent
            .launch(info)
            .context("the executor's subscription is gone")?;
        let running = self.wait_for(id, |s| s == TaskState::TaskRunning).await?;
        self.wait_for(id, |s| s == TaskState::TaskFinished).await?;
        Ok(running.saturating_duration_since(sent))
    }

    /// Waits until every task of `ids` has reached `state`, failing on any
    /// other terminal state.
    async fn wait_all(&mut self, ids: &[String], state: TaskState) -> anyhow::Result<()> {
        let mut waiting: HashSet<&str> = ids.iter().map(String::as_str).collect();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !waiting.is_empty() {
            let arrival = tokio::time::timeout_at(deadline, self.arrivals.recv())
                .await
                .ok()
                .flatten()
                .with_context(|| format!("{} tasks never reached {state:?}", waiting.len()))?;
            let got = arrival.status.state();
            if got == state {
                waiting.remove(arrival.status.task_id.value.as_str());
                continue;
            }
            anyhow::ensure!(
                !got.is_terminal(),
                "task {} ended {got:?}: {:?}",
                arrival.status.task_id.value,
                arrival.status.message
            );
        }
        Ok(())
    }

    /// Starts `count` long tasks and waits until all of them run.
    pub async fn start_sleepers(&mut self, count: usize) -> anyhow::Result<Vec<String>> {
        let ids: Vec<String> = (0..count).map(|i| format!("sleeper-{i}")).collect();
        for id in &ids {
            self.agent
                .launch(task(id, &["/bin/sleep", "3600"]))
                .context("the executor's subscription is gone")?;
        }
        self.wait_all(&ids, TaskState::TaskRunning).await?;
        Ok(ids)
    }

    /// Kills `ids` with no grace and waits until all are TASK_KILLED.
    pub async fn kill_all(&mut self, ids: &[String]) -> anyhow::Result<()> {
        for id in ids {
            self.agent
                .kill(id, Duration::ZERO)
                .context("the executor's subscription is gone")?;
        }
        self.wait_all(ids, TaskState::TaskKilled).await
    }

    /// KILL-to-TASK_KILLED of a task that ignores SIGTERM, with `grace`,
    /// `rounds` times. The KILL is sent only once the task has ignored
    /// SIGTERM (it says so with a file in its sandbox).
    pub async fn stubborn_kill(
        &mut self,
        grace: Duration,
        rounds: usize,
    ) -> anyhow::Result<Vec<Duration>> {
        let script = "trap '' TERM; touch ready; exec sleep 3600";
        let mut samples = Vec::with_capacity(rounds);
        for i in 0..rounds {
            let id = format!("stubborn-{i}");
            self.agent
                .launch(task(&id, &["/bin/sh", "-c", script]))
                .context("the executor's subscription is gone")?;
            self.wait_for(&id, |s| s == TaskState::TaskRunning).await?;
            let ready = self
                .subject
                .sandbox()
                .join("tasks")
                .join(cgroup_name("task", &id))
                .join("ready");
            let deadline = Instant::now() + PATIENCE;
            while !ready.exists() {
                anyhow::ensure!(Instant::now() < deadline, "{id} never got ready");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let sent = self
                .agent
                .kill(&id, grace)
                .context("the executor's subscription is gone")?;
            let killed = self.wait_for(&id, |s| s == TaskState::TaskKilled).await?;
            samples.push(killed.saturating_duration_since(sent));
        }
        Ok(samples)
    }
}
