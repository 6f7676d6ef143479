//! The rolling-update scenario (issue 19): one service of `instances`
//! instances on `agents` simulated agents is launched fresh, then updated
//! to a new spec `batch` pods at a time. The two are measured in one run,
//! on one scheduler, the same way: the wall time from the request until
//! the job API says it is done (every instance RUNNING; the update
//! SUCCEEDED), and the scheduler's CPU time over it (utime + stime from
//! /proc), per instance. An update replaces each pod (a kill, its
//! terminal update, a launch, its updates), so its cost per instance reads
//! against a fresh launch's as a ratio.

use crate::drover::POLL;
use crate::scenarios::Bench;
use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use std::time::Instant;

/// The scenario's name in the report.
pub fn name(agents: usize, instances: usize, batch: u32) -> String {
    format!(
        "rolling update {}k instances/{agents} agents, batch {batch}",
        instances / 1000
    )
}

fn spec(instances: usize, command: &str) -> Value {
    json!({"type": "SERVICE", "name": "rolling", "instance_count": instances,
        "default_spec": {
            "containers": [{"resource": {"cpu_limit": 0.1, "mem_limit_mb": 32},
                "command": {"value": command}}],
            // A simulated task ends at once when killed, as a process
            // that exits on SIGTERM would: the update's time is Drover's.
            "kill_grace_period_seconds": 0}})
}

impl Bench {
    /// Launches then updates the service (see the module doc).
    pub async fn rolling_update(
        &mut self,
        agents: usize,
        instances: usize,
        batch: u32,
    ) -> anyhow::Result<()> {
        let scenario = name(agents, instances, batch);
        let timeout = self.launcher.timeout;
        let fleet = self.launcher.fleet(agents)?;
        let drover = self
            .launcher
            .drover(&fleet, &fleet.path("drover-data"), "scheduler.log")?;
        drover.wait_subscribed(&self.http, timeout).await?;
        let job = format!("{}/api/v1/jobs/rolling", drover.api);

        let (cpu0, t0) = (drover.proc.cpu_secs()?, Instant::now());
        self.http
            .post_json(
                &format!("{}/api/v1/jobs", drover.api),
                &json!({"job_id": {"value": "rolling"}, "spec": spec(instances, "sleep 100000")}),
            )
            .await
            .context("creating the service")?;
        drover
            .wait_jobs_running(&self.http, timeout, &[("rolling".into(), instances)])
            .await?;
        let (launch_secs, launch_cpu) =
            (t0.elapsed().as_secs_f64(), drover.proc.cpu_secs()? - cpu0);

        let (cpu1, t1) = (drover.proc.cpu_secs()?, Instant::now());
        self.http
            .post_json(
                &format!("{job}/update"),
                &json!({"spec": spec(instances, "sleep 200000"),
                    "update_spec": {"batch_size": batch}}),
            )
            .await
            .context("starting the update")?;
        let deadline = t1 + timeout;
        loop {
            let answer = self.http.get_json(&job).await?;
            let state = answer["workflow_info"]["status"]["state"]
                .as_str()
                .ok_or_else(|| anyhow!("the job shows no update: {answer}"))?
                .to_owned();
            match state.as_str() {
                "WORKFLOW_STATE_SUCCEEDED" => break,
                "WORKFLOW_STATE_ROLLING_FORWARD" => {}
                other => bail!("the update ended {other}"),
            }
            if Instant::now() > deadline {
                bail!("the update did not end within {timeout:?}: {state}");
            }
            tokio::time::sleep(POLL).await;
        }
        let (update_secs, update_cpu) =
            (t1.elapsed().as_secs_f64(), drover.proc.cpu_secs()? - cpu1);

        let n = instances as f64;
        let r = &mut self.report;
        r.add(&scenario, "fresh launch", launch_secs, "s");
        r.add(&scenario, "update", update_secs, "s");
        r.add(
            &scenario,
            "update / fresh launch time",
            update_secs / launch_secs,
            "x",
        );
        r.add(
            &scenario,
            "CPU per launched instance",
            launch_cpu / n * 1e6,
            "us",
        );
        r.add(
            &scenario,
            "CPU per updated instance",
            update_cpu / n * 1e6,
            "us",
        );
        r.add(
            &scenario,
            "update / launch CPU per instance",
            update_cpu / launch_cpu.max(1e-9),
            "x",
        );
        Ok(())
    }
}
