//! The scheduler's job API as end-to-end tests use it: a job spec to
//! start from, creating a job, reading its state, and waiting (bounded)
//! for a state.

use std::cell::RefCell;
use std::time::Duration;

use serde_json::{json, Value};

use super::http::{get, post};
use super::wait::wait_for;

pub use super::shared_job_spec::job_spec;

/// Creates job `id` from `spec`; a refusal fails the test.
pub async fn create_job(address: &str, id: &str, spec: Value) {
    let (status, reply) = post(
        address,
        "/api/v1/jobs",
        &json!({"job_id": {"value": id}, "spec": spec}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
}

/// The state of job `id` (`JOB_STATE_...`, empty when unknown) and its pod
/// stats.
pub async fn job_state(address: &str, id: &str) -> (String, Value) {
    let (_, job) = get(address, &format!("/api/v1/jobs/{id}")).await;
    let status = &job["job_info"]["status"];
    (
        status["state"].as_str().unwrap_or("").to_owned(),
        status["pod_stats"].clone(),
    )
}

/// Waits up to `limit` for job `id` to reach `want` (`JOB_STATE_...`) and
/// returns its pod stats then; fails the test with the last state seen.
pub async fn wait_for_job_state(address: &str, id: &str, want: &str, limit: Duration) -> Value {
    let last = RefCell::new(None);
    let found = wait_for(limit, || async {
        let (state, stats) = job_state(address, id).await;
        *last.borrow_mut() = Some((state.clone(), stats.clone()));
        (state == want).then_some(stats)
    })
    .await;
    found.unwrap_or_else(|| panic!("job {id} never reached {want}; last {:?}", last.borrow()))
}
