//! Watch entries and snapshots in the JSON API's own shapes: a job as one
//! element of `GET /api/v1/jobs`, a pod as one element of
//! `GET /api/v1/jobs/{id}/pods`, so a client applies a change to what it
//! listed without a second vocabulary.

use super::filter::WatchFilter;
use crate::api::{rfc3339, views};
use crate::runner::watch_log::{WatchEntry, WatchSnapshot, WatchedPod};
use serde_json::{json, Value};
use std::sync::Arc;

/// A pod as `GET /api/v1/jobs/{id}/pods` lists it.
pub fn pod_summary(pod: &WatchedPod) -> Value {
    let job = &pod.job.job;
    let status = match &pod.latest {
        Some(run) => views::run_status(job, run, pod.failure_count),
        None => views::pending_status(job, pod.instance),
    };
    json!({"pod_name": {"value": pod.pod_name()}, "status": status})
}

/// The `change` event's data for `filter`, or None when nothing in the
/// entry passes it. Each job and pod is rendered once for every watcher
/// (and an unfiltered watcher's whole event once): a thousand watchers of
/// one launch cost a thousand filters and copies, not a thousand renders.
pub fn change(entry: &WatchEntry, filter: &WatchFilter) -> Option<Arc<str>> {
    if filter.is_everything() {
        let rendered = entry
            .rendered
            .get_or_init(|| render(entry, filter).unwrap_or_else(|| empty(entry)).into());
        return Some(rendered.clone());
    }
    render(entry, filter).map(Into::into)
}

fn render(entry: &WatchEntry, filter: &WatchFilter) -> Option<String> {
    let jobs: Vec<&str> = entry
        .jobs
        .iter()
        .zip(&entry.jobs_json)
        .filter(|(job, _)| filter.job(job))
        .map(|(job, json)| &**json.get_or_init(|| views::job_summary(job).to_string().into()))
        .collect();
    let deleted_jobs: Vec<String> = entry
        .deleted_jobs
        .iter()
        .filter(|job| filter.job(job))
        .map(|job| Value::from(job.job.job_id.as_str()).to_string())
        .collect();
    let pods: Vec<&str> = entry
        .pods
        .iter()
        .filter(|pod| filter.pod(pod))
        .map(|pod| &**pod.json.get_or_init(|| pod_summary(pod).to_string().into()))
        .collect();
    let deleted_pods: Vec<String> = entry
        .deleted_pods
        .iter()
        .filter(|pod| filter.pod(pod))
        .map(|pod| Value::from(pod.pod_name()).to_string())
        .collect();
    if jobs.is_empty() && deleted_jobs.is_empty() && pods.is_empty() && deleted_pods.is_empty() {
        return None;
    }
    Some(format!(
        r#"{{"revision":{},"committed_at":"{}","jobs":[{}],"deleted_jobs":[{}],"pods":[{}],"deleted_pods":[{}]}}"#,
        entry.revision,
        rfc3339::format(entry.at),
        jobs.join(","),
        deleted_jobs.join(","),
        pods.join(","),
        deleted_pods.join(","),
    ))
}

/// An entry with nothing in it (never appended; for completeness).
fn empty(entry: &WatchEntry) -> String {
    json!({"revision": entry.revision, "committed_at": rfc3339::format(entry.at),
        "jobs": [], "deleted_jobs": [], "pods": [], "deleted_pods": []})
    .to_string()
}

/// The `snapshot` event's data.
pub fn snapshot(snapshot: &WatchSnapshot, filter: &WatchFilter) -> String {
    json!({
        "revision": snapshot.revision,
        "jobs": snapshot.jobs.iter().filter(|j| filter.job(j)).map(|j| views::job_summary(j)).collect::<Vec<_>>(),
        "pods": snapshot.pods.iter().filter(|p| filter.pod(p)).map(|p| pod_summary(p)).collect::<Vec<_>>(),
    })
    .to_string()
}
