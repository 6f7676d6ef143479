//! Peloton's `WatchService` as Drover's watch log shows it: which objects a
//! `WatchRequest` selects and the `WatchResponse`s of a snapshot and of a
//! committed revision. Pure; the stream itself is [`super::peloton_watch`].
//!
//! The filters are Peloton's own (`pkg/jobmgr/watchsvc/processor.go`):
//! - `pod_filter` selects pods, `stateless_job_filter` job summaries; an
//!   unset filter selects nothing of its kind (the proto: "If unset, no
//!   jobs will be watched"), and a request with neither is
//!   INVALID_ARGUMENT, as Peloton answers it ("not supported watch type").
//!   Peloton's handler serves only the pods when both are set; the proto
//!   promises both, and both are served here.
//! - Within a filter an empty field does not restrict; `job_ids` and
//!   `pod_names` are any-of; `labels` are all-of, key and value equal.
//!   A job is named by its id or (Drover's API everywhere) its name.
//! - A pod's labels are its pod spec's (Peloton matches the task's
//!   labels), of the spec it runs or should run.
//!
//! `stateless_jobs_not_found` / `pods_not_found`: Peloton declares them
//! and never fills them. Here they carry what the watcher asked for or was
//! shown and is gone: in the snapshot, the filter's `job_ids` /
//! `pod_names` that name nothing; in a change, the jobs and pods deleted
//! at that revision that the filter selects (as they were last seen).

use super::peloton_pod_view::{pending_status, run_status};
use super::peloton_views::job_summary;
use crate::api::error::ApiError;
use crate::model::job::{JobView, Revision};
use crate::model::spec::Label;
use crate::runner::watch_log::{WatchEntry, WatchSnapshot, WatchedPod};
use drover_seed_api::peloton::api::v1alpha::watch::svc::{WatchRequest, WatchResponse};
use drover_seed_api::peloton::api::v1alpha::{peloton, pod, watch};
use prost::Message;
use std::collections::BTreeSet;

/// The most bytes of objects one snapshot response carries: gRPC clients
/// refuse messages over 4 MiB by default (Go, Java, Python and tonic
/// alike), so a large snapshot comes as several responses at its revision.
pub const SNAPSHOT_CHUNK_BYTES: usize = 3 << 20;

/// `(key, value)` pairs, all of which must be present.
type Labels = Vec<(String, String)>;

fn labels_of(labels: &[peloton::Label]) -> Labels {
    labels
        .iter()
        .map(|l| (l.key.clone(), l.value.clone()))
        .collect()
}

fn has_all(want: &Labels, have: &[Label]) -> bool {
    want.iter()
        .all(|(k, v)| have.iter().any(|l| &l.key == k && &l.value == v))
}

fn names_job(reference: &str, view: &JobView) -> bool {
    view.job.job_id.as_str() == reference || view.job.spec.name == reference
}

/// A `StatelessJobFilter`, read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobFilter {
    /// Jobs by id or name (empty: any).
    pub jobs: BTreeSet<String>,
    /// Labels the job's spec must all have.
    pub labels: Labels,
}

impl JobFilter {
    fn read(f: &watch::StatelessJobFilter) -> JobFilter {
        JobFilter {
            jobs: f
                .job_ids
                .iter()
                .map(|j| j.value.clone())
                .filter(|v| !v.is_empty())
                .collect(),
            labels: labels_of(&f.labels),
        }
    }

    /// Whether the filter selects `view`.
    pub fn selects(&self, view: &JobView) -> bool {
        (self.jobs.is_empty() || self.jobs.iter().any(|r| names_job(r, view)))
            && has_all(&self.labels, &view.job.spec.labels)
    }
}

/// A `PodFilter`, read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodFilter {
    /// The pods' job, by id or name (None: any).
    pub job: Option<String>,
    /// Pod names (empty: any).
    pub names: BTreeSet<String>,
    /// Labels the pod's spec must all have.
    pub labels: Labels,
}

impl PodFilter {
    fn read(f: &watch::PodFilter) -> PodFilter {
        PodFilter {
            job: f
                .job_id
                .as_ref()
                .map(|j| j.value.clone())
                .filter(|v| !v.is_empty()),
            names: f
                .pod_names
                .iter()
                .map(|p| p.value.clone())
                .filter(|v| !v.is_empty())
                .collect(),
            labels: labels_of(&f.labels),
        }
    }

    /// Whether the filter selects `pod`.
    pub fn selects(&self, pod: &WatchedPod) -> bool {
        let job = &pod.job.job;
        if self.job.as_deref().is_some_and(|r| !names_job(r, &pod.job)) {
            return false;
        }
        if !self.names.is_empty() && !self.names.contains(&pod.pod_name()) {
            return false;
        }
        self.labels.is_empty() || {
            let spec = job
                .desired_pod(pod.instance)
                .unwrap_or_else(|| job.spec.pod_spec(pod.instance));
            has_all(&self.labels, &spec.labels)
        }
    }
}

/// What a `WatchRequest` watches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    /// Job summaries, if asked for.
    pub jobs: Option<JobFilter>,
    /// Pods, if asked for.
    pub pods: Option<PodFilter>,
}

impl Selection {
    /// Reads the request's filters; neither set is INVALID_ARGUMENT.
    pub fn read(request: &WatchRequest) -> Result<Selection, ApiError> {
        let selection = Selection {
            jobs: request.stateless_job_filter.as_ref().map(JobFilter::read),
            pods: request.pod_filter.as_ref().map(PodFilter::read),
        };
        if selection.jobs.is_none() && selection.pods.is_none() {
            return Err(ApiError::invalid(
                "stateless_job_filter",
                "not supported watch type: set stateless_job_filter (job summaries), pod_filter \
                 (pods) or both",
            ));
        }
        Ok(selection)
    }

    /// The id prefix of a watch of this selection (Peloton's are
    /// `task_<uuid>` and `job_<uuid>`).
    pub fn kind(&self) -> &'static str {
        match (&self.jobs, &self.pods) {
            (Some(_), Some(_)) => "all",
            (Some(_), None) => "job",
            _ => "task",
        }
    }
}

/// A watched pod's `PodSummary`: its current run, or pending before one.
pub fn pod_summary(pod: &WatchedPod) -> pod::PodSummary {
    let job = &pod.job.job;
    let status = match &pod.latest {
        Some(run) => run_status(job, run, pod.failure_count),
        None => pending_status(job, pod.instance, None),
    };
    pod::PodSummary {
        pod_name: Some(peloton::PodName {
            value: pod.pod_name(),
        }),
        status: Some(status),
    }
}

fn response(watch_id: &str, revision: Revision) -> WatchResponse {
    WatchResponse {
        watch_id: watch_id.to_owned(),
        revision,
        ..WatchResponse::default()
    }
}

/// The responses of a snapshot, all at its revision: the selected job
/// summaries then pods, in responses of at most [`SNAPSHOT_CHUNK_BYTES`]
/// of objects, and (in the last) the filter's `job_ids` and `pod_names`
/// that name nothing. Empty when nothing is selected.
pub fn snapshot_responses(
    selection: &Selection,
    watch_id: &str,
    snapshot: &WatchSnapshot,
) -> Vec<WatchResponse> {
    let mut out = Vec::new();
    let mut current = response(watch_id, snapshot.revision);
    let mut bytes = 0;
    let mut full = |current: &mut WatchResponse, bytes: &mut usize, add: usize| {
        if *bytes + add > SNAPSHOT_CHUNK_BYTES && *bytes > 0 {
            out.push(std::mem::replace(
                current,
                response(watch_id, snapshot.revision),
            ));
            *bytes = 0;
        }
        *bytes += add;
    };
    if let Some(filter) = &selection.jobs {
        for view in snapshot.jobs.iter().filter(|v| filter.selects(v)) {
            let summary = job_summary(view);
            full(&mut current, &mut bytes, summary.encoded_len());
            current.stateless_jobs.push(summary);
        }
        current.stateless_jobs_not_found = filter
            .jobs
            .iter()
            .filter(|r| !snapshot.jobs.iter().any(|v| names_job(r, v)))
            .map(|r| peloton::JobId { value: r.clone() })
            .collect();
    }
    if let Some(filter) = &selection.pods {
        for watched in snapshot.pods.iter().filter(|p| filter.selects(p)) {
            let summary = pod_summary(watched);
            full(&mut current, &mut bytes, summary.encoded_len());
            current.pods.push(summary);
        }
        current.pods_not_found = filter
            .names
            .iter()
            .filter(|name| !snapshot.pods.iter().any(|p| &p.pod_name() == *name))
            .map(|name| peloton::PodName {
                value: name.clone(),
            })
            .collect();
    }
    let carries = !current.stateless_jobs.is_empty()
        || !current.pods.is_empty()
        || !current.stateless_jobs_not_found.is_empty()
        || !current.pods_not_found.is_empty();
    if carries {
        out.push(current);
    }
    out
}

/// The response of one committed revision for this selection; None when
/// nothing in it is selected.
pub fn change_response(
    selection: &Selection,
    watch_id: &str,
    entry: &WatchEntry,
) -> Option<WatchResponse> {
    let mut r = response(watch_id, entry.revision);
    if let Some(filter) = &selection.jobs {
        r.stateless_jobs = entry
            .jobs
            .iter()
            .filter(|v| filter.selects(v))
            .map(|v| job_summary(v))
            .collect();
        r.stateless_jobs_not_found = entry
            .deleted_jobs
            .iter()
            .filter(|v| filter.selects(v))
            .map(|v| peloton::JobId {
                value: v.job.job_id.as_str().to_owned(),
            })
            .collect();
    }
    if let Some(filter) = &selection.pods {
        r.pods = entry
            .pods
            .iter()
            .filter(|p| filter.selects(p))
            .map(|p| pod_summary(p))
            .collect();
        r.pods_not_found = entry
            .deleted_pods
            .iter()
            .filter(|p| filter.selects(p))
            .map(|p| peloton::PodName {
                value: p.pod_name(),
            })
            .collect();
    }
    let carries = !r.stateless_jobs.is_empty()
        || !r.pods.is_empty()
        || !r.stateless_jobs_not_found.is_empty()
        || !r.pods_not_found.is_empty();
    carries.then_some(r)
}
