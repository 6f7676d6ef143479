//! Driving drover-scheduler from outside, as a user would: start it on a
//! data dir, wait until it is subscribed, create batch jobs, and read its
//! `/metrics` counters (cheap to poll: a few hundred bytes).

use crate::fleet::{Fleet, Launcher};
use crate::http::Http;
use crate::procs::Proc;
use anyhow::{bail, Context};
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// How often counters are polled: often enough for a ~1% error on a
/// one-second run (the peers time their own runs exactly), rarely enough to
/// cost the scheduler next to nothing (a scrape is a few hundred bytes).
pub const POLL: Duration = Duration::from_millis(10);

/// A running scheduler.
pub struct Drover {
    /// `http://ADDR` of its API.
    pub api: String,
    /// The process.
    pub proc: Proc,
}

impl Launcher {
    /// Starts drover-scheduler against `fleet` on `data_dir` (command mode,
    /// so agent-sim simulates the tasks) and waits for its API.
    pub fn drover(&self, fleet: &Fleet, data_dir: &Path, log: &str) -> anyhow::Result<Drover> {
        self.drover_with(fleet, data_dir, log, &[])
    }

    /// [`Self::drover`] with `extra` flags.
    pub fn drover_with(
        &self,
        fleet: &Fleet,
        data_dir: &Path,
        log: &str,
        extra: &[&str],
    ) -> anyhow::Result<Drover> {
        let mut cmd = Command::new(self.bin("drover-scheduler"));
        cmd.arg("--master")
            .arg(&fleet.master)
            .args(["--listen", "127.0.0.1:0", "--executor-mode", "command"])
            // Run by root, the scheduler would refuse jobs that run as
            // root; the tasks are simulated, so any user does.
            .args(["--user", "nobody"])
            // The benchmarks measure the scheduler; the auth variants of
            // the API benchmark pass their credentials file.
            .args(if extra.contains(&"--credentials-file") {
                &[][..]
            } else {
                &["--allow-anonymous"][..]
            })
            .arg("--data-dir")
            .arg(data_dir)
            .args(self.store.flags(data_dir)?)
            .args(extra)
            .env("DROVER_LOG", "warn");
        let mut proc = Proc::spawn("drover-scheduler", cmd, &fleet.path(log))?;
        let api = proc.wait_line("drover-scheduler listening on", self.timeout)?;
        Ok(Drover { api, proc })
    }
}

impl Drover {
    /// Waits until `/health` says subscribed.
    pub async fn wait_subscribed(&self, http: &Http, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(h) = http.get_json(&format!("{}/health", self.api)).await {
                if h["subscribed"] == true {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "the scheduler did not subscribe within {timeout:?}{}",
                    self.proc.tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Creates `total` instances of `command` (0.1 cpu, 32 MB) as BATCH jobs
    /// of at most `per_job` instances; returns each job's id and instance
    /// count.
    pub async fn create(
        &self,
        http: &Http,
        total: usize,
        per_job: usize,
        command: &str,
    ) -> anyhow::Result<Vec<(String, usize)>> {
        self.create_in(http, total, per_job, command, &[]).await
    }

    /// As [`Drover::create`], the jobs spread in turn over `pools` (ids;
    /// none: the default pool).
    pub async fn create_in(
        &self,
        http: &Http,
        total: usize,
        per_job: usize,
        command: &str,
        pools: &[String],
    ) -> anyhow::Result<Vec<(String, usize)>> {
        let mut ids = Vec::new();
        let mut left = total;
        while left > 0 {
            let n = left.min(per_job.max(1));
            left -= n;
            let mut spec = json!({"spec": {"type": "BATCH", "name": format!("bench-{}", ids.len()),
                "instance_count": n, "default_spec": {"containers": [{
                    "resource": {"cpu_limit": 0.1, "mem_limit_mb": 32},
                    "command": {"value": command}}]}}});
            if !pools.is_empty() {
                spec["spec"]["respool_id"] = json!(pools[ids.len() % pools.len()]);
            }
            let answer = http
                .post_json(&format!("{}/api/v1/jobs", self.api), &spec)
                .await
                .context("creating a job")?;
            ids.push((
                answer["job_id"]["value"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                n,
            ));
        }
        Ok(ids)
    }

    /// Creates resource pool `id` at the root with `cpus` of cpu reserved,
    /// a limit of `limit` cpus and share 1.
    pub async fn create_pool(
        &self,
        http: &Http,
        id: &str,
        cpus: f64,
        limit: f64,
    ) -> anyhow::Result<()> {
        let pool = json!({"respool_id": {"value": id}, "spec": {"name": id, "resources": [
            {"kind": "cpu", "reservation": cpus, "limit": limit, "share": 1}
        ]}});
        http.post_json(&format!("{}/api/v1/pools", self.api), &pool)
            .await
            .with_context(|| format!("creating pool {id}"))?;
        Ok(())
    }

    /// Polls `GET /api/v1/jobs/{id}` of every job in `jobs` (each with
    /// its instance count), as a user watching the launch would, until each
    /// reports every instance RUNNING; returns when that was.
    pub async fn wait_jobs_running(
        &self,
        http: &Http,
        timeout: Duration,
        jobs: &[(String, usize)],
    ) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + timeout;
        let mut waiting: Vec<_> = jobs.to_vec();
        loop {
            let mut still = Vec::with_capacity(waiting.len());
            for (id, instances) in waiting {
                let job = http
                    .get_json(&format!("{}/api/v1/jobs/{id}", self.api))
                    .await?;
                let running = job["job_info"]["status"]["pod_stats"]["POD_STATE_RUNNING"]
                    .as_u64()
                    .unwrap_or(0);
                if running < instances as u64 {
                    still.push((id, instances));
                }
            }
            if still.is_empty() {
                return Ok(Instant::now());
            }
            if Instant::now() > deadline {
                bail!("timed out after {timeout:?} waiting for the job API to report all RUNNING");
            }
            waiting = still;
            tokio::time::sleep(POLL).await;
        }
    }

    /// The scheduler's counters.
    pub async fn metrics(&self, http: &Http) -> anyhow::Result<Counters> {
        let text = http.get_text(&format!("{}/metrics", self.api)).await?;
        Ok(Counters::parse(&text))
    }

    /// Polls the counters until `done` holds; the last sample, or an error
    /// naming what was reached when `timeout` ran out.
    pub async fn wait_for(
        &self,
        http: &Http,
        timeout: Duration,
        what: &str,
        mut on_sample: impl FnMut(Instant, &Counters),
        done: impl Fn(&Counters) -> bool,
    ) -> anyhow::Result<Counters> {
        let deadline = Instant::now() + timeout;
        loop {
            let c = self.metrics(http).await?;
            on_sample(Instant::now(), &c);
            if done(&c) {
                return Ok(c);
            }
            if Instant::now() > deadline {
                bail!("timed out after {timeout:?} waiting for {what}: running {}, finished {}, acks {}",
                    c.running, c.finished, c.acks);
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// The counters the benchmark reads from `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counters {
    /// TASK_RUNNING updates received.
    pub running: f64,
    /// TASK_FINISHED updates received.
    pub finished: f64,
    /// Updates of any state received.
    pub updates: f64,
    /// ACKNOWLEDGE calls sent (each after its update was stored).
    pub acks: f64,
    /// Tasks sent in ACCEPTs.
    pub launches: f64,
    /// Bytes SQLite holds (0 if the scheduler does not say).
    pub store_memory: f64,
}

impl Counters {
    /// Reads the Prometheus text.
    pub fn parse(text: &str) -> Counters {
        let mut c = Counters::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            match name {
                "drover_acks_total" => c.acks = value,
                "drover_launches_total" => c.launches = value,
                "drover_store_memory_bytes" => c.store_memory = value,
                n if n.starts_with("drover_updates_total") => {
                    c.updates += value;
                    if n.contains("\"TASK_RUNNING\"") {
                        c.running = value;
                    } else if n.contains("\"TASK_FINISHED\"") {
                        c.finished = value;
                    }
                }
                _ => {}
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_counters_the_bench_needs() {
        let text = "# HELP x\ndrover_acks_total 7\ndrover_launches_total 3\n\
            drover_updates_total{state=\"TASK_RUNNING\"} 3\n\
            drover_updates_total{state=\"TASK_STARTING\"} 3\n\
            drover_updates_total{state=\"TASK_FINISHED\"} 1\n";
        let c = Counters::parse(text);
        assert_eq!(c.acks, 7.0);
        assert_eq!(c.launches, 3.0);
        assert_eq!(c.running, 3.0);
        assert_eq!(c.finished, 1.0);
        assert_eq!(c.updates, 7.0);
    }
}
