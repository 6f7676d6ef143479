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
    // Every pod's job is among the entry's jobs: a watcher none of whose
    // jobs the entry touched skips it without looking at its pods (a
    // launch's entries carry hundreds of pods each).
    let touches_any = entry.jobs.iter().any(|job| filter.job(job))
        || entry.deleted_jobs.iter().any(|job| filter.job(job));
    if !touches_any {
        return None;
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::ids::JobId;
    use crate::model::job::{Job, JobView};
    use crate::model::state::InstanceCounts;
    use crate::runner::watch_log::WatchedPod;

    fn job(id: &str, name: &str) -> Arc<JobView> {
        let spec = serde_json::from_value(json!({
            "type": "SERVICE", "name": name, "instance_count": 2,
            "default_spec": {"containers": [{"command": {"value": "true"}}]}
        }))
        .unwrap();
        Arc::new(JobView {
            job: Job::new(JobId::parse(id).unwrap(), spec, 1),
            instances: InstanceCounts::default(),
        })
    }

    fn entry() -> WatchEntry {
        let (web, db) = (job("j1", "web"), job("j2", "db"));
        let pod = |j: &Arc<JobView>, i| Arc::new(WatchedPod::new(j.clone(), i, None, 0));
        WatchEntry {
            revision: 7,
            at: 1_000,
            pods: vec![pod(&web, 0), pod(&db, 1)],
            deleted_pods: vec![pod(&db, 0)],
            jobs_json: vec![Default::default(), Default::default()],
            jobs: vec![web, db.clone()],
            deleted_jobs: vec![],
            ..WatchEntry::default()
        }
    }

    #[test]
    fn a_change_is_the_list_shapes_and_a_filter_keeps_its_own() {
        let entry = entry();
        let all: Value =
            serde_json::from_str(&change(&entry, &WatchFilter::default()).unwrap()).unwrap();
        assert_eq!(all["revision"], 7);
        assert_eq!(all["committed_at"], "1970-01-01T00:00:01.000Z");
        assert_eq!(all["jobs"].as_array().unwrap().len(), 2);
        assert_eq!(all["jobs"][0], views::job_summary(&entry.jobs[0]));
        assert_eq!(all["pods"][1], pod_summary(&entry.pods[1]));
        assert_eq!(all["deleted_pods"], json!(["j2-0"]));
        assert_eq!(all["deleted_jobs"], json!([]));

        let web = WatchFilter {
            jobs: vec!["web".into()],
            ..WatchFilter::default()
        };
        let only: Value = serde_json::from_str(&change(&entry, &web).unwrap()).unwrap();
        assert_eq!(only["jobs"].as_array().unwrap().len(), 1);
        assert_eq!(only["pods"], json!([pod_summary(&entry.pods[0])]));
        assert_eq!(only["deleted_pods"], json!([]));

        let none = WatchFilter {
            jobs: vec!["nope".into()],
            ..WatchFilter::default()
        };
        assert!(change(&entry, &none).is_none(), "nothing kept: no event");
    }
}
