//! The Kubeflow run scenario (issue 23): a pipeline run of an
//! `nodes`-node fan-out/fan-in DAG (one `start` step, `nodes - 2` steps
//! that each depend on it, one `end` step that depends on them all) on
//! `agents` simulated agents, from `POST /apis/v1beta1/runs` until the
//! run is Succeeded, against the same number of tasks launched as one
//! batch job, from create until the job is SUCCEEDED. Both run on one
//! scheduler in one invocation, measured the same way: wall time and the
//! scheduler's CPU time (utime + stime from /proc) per node or task, so
//! the run's overhead per node reads as a ratio against the batch job's
//! per task. Every step is `sleep 0` with the same resources: what is
//! measured is Drover (the run's driver, its stored state, three
//! dependency levels), not the steps.

use crate::drover::Drover;
use crate::scenarios::Bench;
use anyhow::{bail, Context};
use drover_scheduler::cli::client::encode_query;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// How often the scenario reads the job or the run: both alike, so the
/// polling costs each the same and times are this coarse.
const POLL: Duration = Duration::from_millis(50);

/// The scenario's name in the report.
pub fn name(agents: usize, nodes: usize) -> String {
    format!("kfp run {nodes}-node fan-out/fan-in/{agents} agents")
}

/// The step every node runs: what a node asks for when its container
/// says nothing (`NODE_DEFAULTS`), so the batch job's tasks are the same.
const STEP: [&str; 2] = ["sleep", "0"];

/// The Argo Workflow of the fan-out/fan-in DAG, as JSON.
pub fn fan_workflow(nodes: usize) -> Value {
    let middle: Vec<String> = (1..=nodes.saturating_sub(2))
        .map(|i| format!("w-{i:04}"))
        .collect();
    let mut tasks = vec![json!({"name": "start", "template": "step"})];
    tasks.extend(
        middle
            .iter()
            .map(|m| json!({"name": m, "template": "step", "dependencies": ["start"]})),
    );
    tasks.push(json!({"name": "end", "template": "step", "dependencies": middle}));
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "fan-"},
        "spec": {
            "entrypoint": "fan",
            "templates": [
                {"name": "fan", "dag": {"tasks": tasks}},
                {"name": "step", "container": {"image": "alpine", "command": STEP}},
            ],
        },
    })
}

/// The batch job of `tasks` instances of the same step.
fn batch_job(tasks: usize) -> Value {
    json!({"job_id": {"value": "fan-batch"}, "spec": {
        "type": "BATCH", "name": "fan-batch", "instance_count": tasks,
        "default_spec": {"containers": [{
            "resource": {"cpu_limit": 0.1, "mem_limit_mb": 128, "disk_limit_mb": 64},
            "command": {"value": STEP.join(" ")}}]}}})
}

/// Wall seconds and scheduler CPU seconds of one measured phase.
struct Cost {
    secs: f64,
    cpu: f64,
}

impl Bench {
    /// The batch job, then the run (see the module doc).
    pub async fn kfp_run(&mut self, agents: usize, nodes: usize) -> anyhow::Result<()> {
        let scenario = name(agents, nodes);
        let timeout = self.launcher.timeout;
        let fleet = self.launcher.fleet(agents)?;
        let drover = self
            .launcher
            .drover(&fleet, &fleet.path("drover-data"), "scheduler.log")?;
        drover.wait_subscribed(&self.http, timeout).await?;

        let batch = self.batch_cost(&drover, nodes, timeout).await?;
        let run = self.run_cost(&drover, nodes, timeout).await?;

        let n = nodes as f64;
        let r = &mut self.report;
        r.add(&scenario, "batch job create->SUCCEEDED", batch.secs, "s");
        r.add(&scenario, "run create->Succeeded", run.secs, "s");
        r.add(
            &scenario,
            "wall per task, batch job",
            batch.secs / n * 1e3,
            "ms",
        );
        r.add(&scenario, "wall per node, run", run.secs / n * 1e3, "ms");
        r.add(
            &scenario,
            "run / batch wall",
            run.secs / batch.secs.max(1e-9),
            "x",
        );
        r.add(
            &scenario,
            "CPU per task, batch job",
            batch.cpu / n * 1e6,
            "us",
        );
        r.add(&scenario, "CPU per node, run", run.cpu / n * 1e6, "us");
        // /proc counts CPU in clock ticks (10 ms): a batch job that took
        // less than one has no ratio worth printing.
        let cpu_ratio = if batch.cpu >= 0.01 {
            run.cpu / batch.cpu
        } else {
            f64::NAN
        };
        r.add(&scenario, "run / batch CPU per node", cpu_ratio, "x");
        r.add(
            &scenario,
            "run overhead per node (CPU)",
            (run.cpu - batch.cpu) / n * 1e6,
            "us",
        );
        Ok(())
    }

    async fn batch_cost(
        &self,
        drover: &Drover,
        tasks: usize,
        timeout: Duration,
    ) -> anyhow::Result<Cost> {
        let (cpu0, t0) = (drover.proc.cpu_secs()?, Instant::now());
        self.http
            .post_json(&format!("{}/api/v1/jobs", drover.api), &batch_job(tasks))
            .await
            .context("creating the batch job")?;
        let job = format!("{}/api/v1/jobs/fan-batch", drover.api);
        let deadline = t0 + timeout;
        loop {
            let answer = self.http.get_json(&job).await?;
            let state = answer["job_info"]["status"]["state"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            match state.as_str() {
                "JOB_STATE_SUCCEEDED" => break,
                "JOB_STATE_FAILED" | "JOB_STATE_KILLED" => bail!("the batch job ended {state}"),
                _ => {}
            }
            if Instant::now() > deadline {
                bail!("the batch job did not succeed within {timeout:?}: {state}");
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(Cost {
            secs: t0.elapsed().as_secs_f64(),
            cpu: drover.proc.cpu_secs()? - cpu0,
        })
    }

    async fn run_cost(
        &self,
        drover: &Drover,
        nodes: usize,
        timeout: Duration,
    ) -> anyhow::Result<Cost> {
        let body = json!({"name": "fan", "pipeline_spec": {
            "workflow_manifest": fan_workflow(nodes).to_string()}});
        let (cpu0, t0) = (drover.proc.cpu_secs()?, Instant::now());
        let created = self
            .http
            .post_json(&format!("{}/apis/v1beta1/runs", drover.api), &body)
            .await
            .context("creating the run")?;
        let id = created["run"]["id"]
            .as_str()
            .with_context(|| format!("the run has no id: {created}"))?
            .to_owned();
        // The run alone (`GET .../runs/{id}` would carry the whole
        // Workflow with a status per node on every read).
        let filter = json!({"predicates": [{"key": "id", "op": "EQUALS", "string_value": id}]});
        let list = format!(
            "{}/apis/v1beta1/runs?filter={}",
            drover.api,
            encode_query(&filter.to_string())
        );
        let deadline = t0 + timeout;
        loop {
            let answer = self.http.get_json(&list).await?;
            let status = answer["runs"][0]["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            match status.as_str() {
                "Succeeded" => break,
                "Failed" | "Error" => {
                    bail!("the run ended {status}: {}", answer["runs"][0]["error"])
                }
                _ => {}
            }
            if Instant::now() > deadline {
                bail!("the run did not succeed within {timeout:?}: {status}");
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(Cost {
            secs: t0.elapsed().as_secs_f64(),
            cpu: drover.proc.cpu_secs()? - cpu0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dag_fans_out_from_start_and_in_to_end() {
        let w = fan_workflow(5);
        let tasks = w["spec"]["templates"][0]["dag"]["tasks"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(tasks.len(), 5);
        assert_eq!(tasks[1]["dependencies"], json!(["start"]));
        assert_eq!(tasks[4]["name"], "end");
        assert_eq!(
            tasks[4]["dependencies"],
            json!(["w-0001", "w-0002", "w-0003"])
        );
    }
}
