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
/// entry passes it. An unfiltered watcher's rendering is shared.
pub fn change(entry: &WatchEntry, filter: &WatchFilter) -> Option<Arc<str>> {
    if filter.is_everything() {
        let rendered = entry
            .rendered
            .get_or_init(|| render(entry, filter).to_string().into());
        return Some(rendered.clone());
    }
    let data = render(entry, filter);
    let empty = ["jobs", "deleted_jobs", "pods", "deleted_pods"]
        .iter()
        .all(|k| data[k].as_array().is_some_and(Vec::is_empty));
    (!empty).then(|| data.to_string().into())
}

fn render(entry: &WatchEntry, filter: &WatchFilter) -> Value {
    json!({
        "revision": entry.revision,
        "committed_at": rfc3339::format(entry.at),
        "jobs": entry.jobs.iter().filter(|j| filter.job(j)).map(|j| views::job_summary(j)).collect::<Vec<_>>(),
        "deleted_jobs": entry.deleted_jobs.iter().filter(|j| filter.job(j)).map(|j| j.job.job_id.as_str()).collect::<Vec<_>>(),
        "pods": entry.pods.iter().filter(|p| filter.pod(p)).map(|p| pod_summary(p)).collect::<Vec<_>>(),
        "deleted_pods": entry.deleted_pods.iter().filter(|p| filter.pod(p)).map(|p| p.pod_name()).collect::<Vec<_>>(),
    })
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
