//! `drover job watch`: live progress of jobs' pods, counts by state and a
//! progress bar, and of an update in progress (its state, batch k of n,
//! pods updated and failed), until each job reaches what it is waited for
//! or Ctrl-C.
//!
//! The decide part ([`JobProgress`], [`render`], [`JobProgress::outcome`])
//! is pure; [`watch`] reads the jobs again each time the scheduler's watch
//! stream says they changed (no polling), redraws in place on a terminal
//! and prints one line per change otherwise.

use super::client::ApiClient;
use super::error::CliError;
use super::output::{self, short_state, Output};
use clap::ValueEnum;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// What a watch waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Until {
    /// The job is SUCCEEDED, FAILED or KILLED.
    Terminal,
    /// Every instance is RUNNING (or the job ended).
    Running,
    /// The job's update has ended: SUCCEEDED (or ROLLED_BACK after a
    /// failure, which counts as failed), FAILED or ABORTED.
    Updated,
}

/// How a watched job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// SUCCEEDED, or all running when waiting for running.
    Reached(String),
    /// FAILED or KILLED.
    Failed(String),
}

/// One job's progress, from `GET /api/v1/jobs/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobProgress {
    /// The job id.
    pub job_id: String,
    /// The job's name.
    pub name: String,
    /// `JOB_STATE_...`.
    pub state: String,
    /// Instances.
    pub total: u64,
    /// Pods by `POD_STATE_...`.
    pub counts: BTreeMap<String, u64>,
    /// The job's current (or last) update, if it ever had one.
    pub update: Option<UpdateProgress>,
}

/// An update's progress, from the job's `workflow_info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateProgress {
    /// `WORKFLOW_STATE_...`.
    pub state: String,
    /// Pods on the new spec.
    pub done: u64,
    /// Pods that failed on it.
    pub failed: u64,
    /// Pods the update moves.
    pub instances: u64,
    /// Pods released so far (being moved, or moved).
    pub released: u64,
    /// The batch size (0: all at once).
    pub batch: u64,
}

impl UpdateProgress {
    fn from_info(info: &Value) -> Option<Self> {
        let status = info.get("status")?;
        let n = |v: &Value| v.as_u64().unwrap_or(0);
        Some(UpdateProgress {
            state: output::text(&status["state"]),
            done: n(&status["num_instances_completed"]),
            failed: n(&status["num_instances_failed"]),
            instances: n(&info["batch"]["instances"]),
            released: n(&info["batch"]["released"]),
            batch: n(&info["batch"]["size"]),
        })
    }

    /// Which batch is being moved, of how many: batches are counted in
    /// `batch` pods released at a time.
    pub fn batches(&self) -> (u64, u64) {
        let size = if self.batch == 0 {
            self.instances.max(1)
        } else {
            self.batch
        };
        let total = self.instances.div_ceil(size).max(1);
        (self.released.div_ceil(size).clamp(1, total), total)
    }

    fn ended(&self) -> bool {
        matches!(
            self.state.as_str(),
            "WORKFLOW_STATE_SUCCEEDED"
                | "WORKFLOW_STATE_FAILED"
                | "WORKFLOW_STATE_ABORTED"
                | "WORKFLOW_STATE_ROLLED_BACK"
        )
    }
}

const FINISHED: [&str; 4] = [
    "POD_STATE_SUCCEEDED",
    "POD_STATE_FAILED",
    "POD_STATE_KILLED",
    "POD_STATE_LOST",
];

impl JobProgress {
    /// Reads a `GET /api/v1/jobs/{id}` answer.
    pub fn from_job(job_id: &str, answer: &Value) -> Self {
        let info = &answer["job_info"];
        let status = &info["status"];
        let counts = status["pod_stats"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        JobProgress {
            job_id: job_id.to_owned(),
            name: output::text(&info["spec"]["name"]),
            state: output::text(&status["state"]),
            total: info["spec"]["instance_count"].as_u64().unwrap_or(0),
            counts,
            update: UpdateProgress::from_info(&answer["workflow_info"]),
        }
    }

    fn count(&self, state: &str) -> u64 {
        self.counts.get(state).copied().unwrap_or(0)
    }

    /// Whether the job has reached what `until` waits for.
    pub fn outcome(&self, until: Until) -> Option<Outcome> {
        if until == Until::Updated {
            let update = self.update.as_ref()?;
            return update.ended().then(|| {
                let state = short_state(&update.state).to_owned();
                if update.state == "WORKFLOW_STATE_SUCCEEDED" {
                    Outcome::Reached(state)
                } else {
                    Outcome::Failed(state)
                }
            });
        }
        match self.state.as_str() {
            "JOB_STATE_SUCCEEDED" => return Some(Outcome::Reached(self.state.clone())),
            "JOB_STATE_FAILED" | "JOB_STATE_KILLED" => {
                return Some(Outcome::Failed(self.state.clone()))
            }
            _ => {}
        }
        (until == Until::Running && self.total > 0 && self.count("POD_STATE_RUNNING") == self.total)
            .then(|| Outcome::Reached("all pods RUNNING".into()))
    }
}

/// One line: name, bar (`#` finished, `=` running, `.` the rest), counts.
pub fn render(p: &JobProgress, bar_width: usize) -> String {
    let finished: u64 = FINISHED.iter().map(|s| p.count(s)).sum();
    let running = p.count("POD_STATE_RUNNING");
    let total = p.total.max(1);
    let cells = |n: u64| (n.min(total) as usize * bar_width) / total as usize;
    let done_cells = cells(finished);
    let run_cells = cells(finished + running).saturating_sub(done_cells);
    let bar = format!(
        "{}{}{}",
        "#".repeat(done_cells),
        "=".repeat(run_cells),
        ".".repeat(bar_width.saturating_sub(done_cells + run_cells))
    );
    let counts: Vec<String> = p
        .counts
        .iter()
        .map(|(k, v)| format!("{}={v}", short_state(k)))
        .collect();
    let line = format!(
        "{} ({}) [{bar}] {finished}/{} done, {running} running  {}  {}",
        p.name,
        p.job_id,
        p.total,
        counts.join(" "),
        short_state(&p.state),
    );
    match &p.update {
        Some(u) => {
            let (batch, batches) = u.batches();
            format!(
                "{line}  update {}: batch {batch}/{batches}, {}/{} updated, {} failed",
                short_state(&u.state),
                u.done,
                u.instances,
                u.failed
            )
        }
        None => line,
    }
}

/// Shows `jobs`' progress on stdout, read again after each change the
/// watch stream reports (at most once per `interval`), until each job
/// reaches its `Until` (answers the outcomes) or `stop` completes (answers
/// `None`).
pub async fn watch(
    client: &ApiClient,
    jobs: &[(String, Until)],
    interval: Duration,
    output: Output,
    stop: impl Future<Output = ()>,
) -> Result<Option<Vec<Outcome>>, CliError> {
    let tty = output == Output::Table && std::io::stdout().is_terminal();
    let mut shown: Vec<String> = Vec::new();
    tokio::pin!(stop);
    let changed = Arc::new(Notify::new());
    let query: Vec<String> = jobs
        .iter()
        .map(|(id, _)| format!("job={}", super::client::encode_query(id)))
        .collect();
    let follower = AbortOnDrop(tokio::spawn(follow(
        client.clone(),
        query.join("&"),
        changed.clone(),
    )));
    loop {
        let mut progress = Vec::with_capacity(jobs.len());
        for (id, _) in jobs {
            let answer = client.get(&format!("/api/v1/jobs/{id}")).await?;
            progress.push(JobProgress::from_job(id, &answer));
        }
        let lines: Vec<String> = progress
            .iter()
            .map(|p| match output {
                Output::Table => render(p, 30),
                Output::Json => json!({
                    "job_id": p.job_id, "state": p.state, "instance_count": p.total,
                    "pod_stats": p.counts,
                    "update": p.update.as_ref().map(|u| json!({
                        "state": u.state, "done": u.done, "failed": u.failed,
                        "instances": u.instances, "released": u.released,
                        "batch_size": u.batch,
                    })),
                })
                .to_string(),
            })
            .collect();
        draw(&shown, &lines, tty);
        shown = lines;
        let outcomes: Option<Vec<Outcome>> = progress
            .iter()
            .zip(jobs)
            .map(|(p, (_, until))| p.outcome(*until))
            .collect();
        if outcomes.is_some() {
            return Ok(outcomes);
        }
        tokio::select! {
            _ = &mut stop => {
                if tty { println!(); }
                drop(follower);
                return Ok(None);
            }
            _ = changed.notified() => {}
        }
        // Changes come in bursts: one read for the burst.
        tokio::time::sleep(interval).await;
    }
}

/// Aborts the task when dropped.
pub(super) struct AbortOnDrop(pub(super) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Follows the scheduler's watch stream for `query` (the jobs), waking
/// `changed` on each event; when the stream ends (the scheduler restarted,
/// or cut off a reader too slow) it resumes from the last revision read,
/// or afresh when that revision has left the scheduler's window. A
/// scheduler without the stream answers 404: each retry wakes `changed`,
/// which polls.
pub(super) async fn follow(client: ApiClient, query: String, changed: Arc<Notify>) {
    let mut since: Option<String> = None;
    loop {
        let path = match &since {
            Some(revision) => format!("/api/v1/watch?{query}&since={revision}"),
            None => format!("/api/v1/watch?{query}"),
        };
        match client.stream(&path).await {
            Ok(mut events) => {
                while let Ok(Some(event)) = events.next().await {
                    if event.event == "error" {
                        let error: Value = serde_json::from_str(&event.data).unwrap_or_default();
                        since = error["revision"].as_u64().map(|r| r.to_string());
                        break;
                    }
                    if event.id.is_some() {
                        since = event.id;
                    }
                    changed.notify_one();
                }
            }
            Err(CliError::Api { code, .. }) if code == "OUT_OF_RANGE" => since = None,
            Err(_) => {}
        }
        // What happened while the stream was down is read afresh.
        changed.notify_one();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Shows `lines`: on a terminal the previous ones are redrawn in place;
/// otherwise only changed lines are printed.
fn draw(previous: &[String], lines: &[String], tty: bool) {
    let mut out = std::io::stdout().lock();
    if tty {
        if !previous.is_empty() {
            let _ = write!(out, "\x1b[{}A", previous.len());
        }
        for line in lines {
            let _ = writeln!(out, "\r\x1b[2K{line}");
        }
    } else {
        for (i, line) in lines.iter().enumerate() {
            if previous.get(i) != Some(line) {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    let _ = out.flush();
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn progress(state: &str, stats: Value, total: u64) -> JobProgress {
        JobProgress::from_job(
            "j1",
            &json!({"job_info": {"spec": {"name": "hello", "instance_count": total},
                "status": {"state": state, "pod_stats": stats}}}),
        )
    }

    #[test]
    fn bars_show_finished_and_running_pods() {
        let p = progress(
            "JOB_STATE_RUNNING",
            json!({"POD_STATE_SUCCEEDED": 5, "POD_STATE_RUNNING": 3, "POD_STATE_PENDING": 2}),
            10,
        );
        let line = render(&p, 10);
        assert!(line.contains("[#####===..]"), "{line}");
        assert!(line.contains("5/10 done, 3 running"), "{line}");
        assert!(line.ends_with("RUNNING"), "{line}");
    }

    #[test]
    fn outcomes_follow_the_job_state_and_until() {
        let running = progress("JOB_STATE_RUNNING", json!({"POD_STATE_RUNNING": 2}), 2);
        assert_eq!(running.outcome(Until::Terminal), None);
        assert!(matches!(
            running.outcome(Until::Running),
            Some(Outcome::Reached(_))
        ));
        let half = progress(
            "JOB_STATE_RUNNING",
            json!({"POD_STATE_RUNNING": 1, "POD_STATE_PENDING": 1}),
            2,
        );
        assert_eq!(half.outcome(Until::Running), None);
        let failed = progress("JOB_STATE_FAILED", json!({"POD_STATE_FAILED": 2}), 2);
        assert!(matches!(
            failed.outcome(Until::Running),
            Some(Outcome::Failed(_))
        ));
        let done = progress("JOB_STATE_SUCCEEDED", json!({"POD_STATE_SUCCEEDED": 2}), 2);
        assert!(matches!(
            done.outcome(Until::Terminal),
            Some(Outcome::Reached(_))
        ));
    }

    fn updating(state: &str, done: u64, released: u64) -> JobProgress {
        JobProgress::from_job(
            "j1",
            &json!({"job_info": {"spec": {"name": "web", "instance_count": 10},
                "status": {"state": "JOB_STATE_RUNNING", "pod_stats": {"POD_STATE_RUNNING": 10}}},
                "workflow_info": {"status": {"state": state, "num_instances_completed": done,
                    "num_instances_failed": 0},
                    "batch": {"size": 4, "released": released, "instances": 10}}}),
        )
    }

    #[test]
    fn an_update_shows_its_batch_and_counts_and_ends_the_watch_when_it_ends() {
        let p = updating("WORKFLOW_STATE_ROLLING_FORWARD", 4, 8);
        let line = render(&p, 10);
        assert!(
            line.ends_with("update ROLLING_FORWARD: batch 2/3, 4/10 updated, 0 failed"),
            "{line}"
        );
        assert_eq!(p.outcome(Until::Updated), None);
        let done = updating("WORKFLOW_STATE_SUCCEEDED", 10, 10);
        assert!(matches!(
            done.outcome(Until::Updated),
            Some(Outcome::Reached(_))
        ));
        let back = updating("WORKFLOW_STATE_ROLLED_BACK", 0, 0);
        assert!(matches!(
            back.outcome(Until::Updated),
            Some(Outcome::Failed(_))
        ));
        let none = progress("JOB_STATE_RUNNING", json!({}), 1);
        assert_eq!(none.outcome(Until::Updated), None, "no update yet: wait");
    }
}
