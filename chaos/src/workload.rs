//! The workload: batch jobs of `sleep N` tasks (N seeded per job) that
//! must each succeed once, and service jobs of long sleeps that must run
//! to the end, submitted at seeded times over the start of the run
//! ([`plan`], pure), and the submission itself ([`submit`]), which
//! follows a follower's 307 to the leader and retries while there is none.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::audit::Instance;
use crate::client;
use crate::dose::WorkloadShape;

/// One job to create.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPlan {
    pub id: String,
    pub batch: bool,
    pub instances: u32,
    pub command: String,
    /// When to submit it, from the start of the run.
    pub at: Duration,
}

/// A service task sleeps longer than any dose lasts.
const SERVICE_COMMAND: &str = "sleep 86400";

/// The jobs of `shape`, decided by `seed`, in submission order.
pub fn plan(shape: &WorkloadShape, seed: u64) -> Vec<JobPlan> {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x0005_eed0_f0b5);
    let mut jobs = Vec::new();
    for i in 0..shape.batch_jobs {
        let (low, high) = shape.batch_seconds;
        jobs.push(JobPlan {
            id: format!("chaos-batch-{i:03}"),
            batch: true,
            instances: shape.batch_instances,
            command: format!("sleep {}", rng.random_range(low..=high.max(low))),
            at: Duration::ZERO,
        });
    }
    for i in 0..shape.service_jobs {
        jobs.push(JobPlan {
            id: format!("chaos-service-{i:03}"),
            batch: false,
            instances: shape.service_instances,
            command: SERVICE_COMMAND.to_owned(),
            at: Duration::ZERO,
        });
    }
    // Interleave the kinds, then spread them over the submission time.
    let n = u32::try_from(jobs.len()).unwrap_or(u32::MAX).max(1);
    jobs.shuffle(&mut rng);
    for (job, i) in jobs.iter_mut().zip(0u32..) {
        job.at = shape.submit_over * i / n;
    }
    jobs
}

/// Every instance of `jobs`, with whether it is batch.
pub fn instances(jobs: &[JobPlan]) -> Vec<(Instance, bool)> {
    jobs.iter()
        .flat_map(|j| (0..j.instances).map(move |i| ((j.id.clone(), i), j.batch)))
        .collect()
}

/// The job spec of `job` (0.1 cpu, 32 MiB, 1 s kill grace).
pub fn spec(job: &JobPlan) -> Value {
    let mut spec = drover_test_support::job_spec::job_spec(
        if job.batch { "BATCH" } else { "SERVICE" },
        job.instances,
        &job.command,
    );
    spec["name"] = json!(job.id);
    spec
}

/// How long one create may take.
const CREATE_LIMIT: Duration = Duration::from_secs(10);

/// Creates `job` through whichever replica leads: tries each address in
/// turn, follows a 307 once, and retries every 500 ms until `limit`.
/// `Ok` once the job exists (created now, or by an earlier try whose
/// answer was lost); `Err` with the last answer when the limit passed.
pub async fn submit(job: &JobPlan, replicas: &[String], limit: Duration) -> Result<(), String> {
    let body = json!({"job_id": {"value": job.id}, "spec": spec(job)});
    let deadline = tokio::time::Instant::now() + limit;
    let mut last = String::from("no replica tried");
    loop {
        for address in replicas {
            match create(address, &body).await {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("job {}: {last}", job.id));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn create(address: &str, body: &Value) -> Result<(), String> {
    let answer = client::post(address, "/api/v1/jobs", body, CREATE_LIMIT)
        .await
        .map_err(|e| e.to_string())?;
    let answer = match (answer.status, answer.location.as_deref()) {
        (307, Some(location)) => {
            let leader = location
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            client::post(&leader, "/api/v1/jobs", body, CREATE_LIMIT)
                .await
                .map_err(|e| e.to_string())?
        }
        _ => answer,
    };
    let exists = answer.status == 409 || answer.json()["code"] == "ALREADY_EXISTS";
    if answer.status == 200 || exists {
        Ok(())
    } else {
        Err(format!("{}: {}", answer.status, answer.text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dose::Dose;

    #[test]
    fn the_plan_has_every_instance_of_the_shape_spread_over_the_submission_time() {
        let shape = Dose::long().workload;
        let jobs = plan(&shape, 9);
        assert_eq!(instances(&jobs).len() as u64, shape.instances());
        assert!(jobs.iter().all(|j| j.at < shape.submit_over));
        assert_eq!(jobs, plan(&shape, 9));
        let batch = jobs.iter().filter(|j| j.batch).count();
        assert_eq!(batch as u32, shape.batch_jobs);
    }

    #[test]
    fn a_specs_name_is_its_job_id() {
        let jobs = plan(&Dose::ci().workload, 1);
        let s = spec(&jobs[0]);
        assert_eq!(s["name"], jobs[0].id.as_str());
        assert_eq!(s["instance_count"], jobs[0].instances);
    }
}
