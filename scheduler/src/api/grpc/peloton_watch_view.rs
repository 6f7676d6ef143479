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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ids::{AgentId, InstanceId, JobId, TaskId};
    use crate::model::job::Job;
    use crate::model::run::Run;
    use crate::model::spec::JobSpec;
    use crate::model::state::PodState;
    use crate::store::RunRecord;
    use std::sync::Arc;

    fn view(id: &str, labels: &[(&str, &str)]) -> Arc<JobView> {
        let spec: JobSpec = serde_json::from_value(serde_json::json!({
            "name": format!("{id}-name"),
            "type": "SERVICE",
            "instance_count": 2,
            "labels": labels.iter().map(|(k, v)| serde_json::json!({"key": k, "value": v})).collect::<Vec<_>>(),
            "default_spec": {
                "labels": [{"key": "tier", "value": id}],
                "containers": [{
                    "name": "c",
                    "resource": {"cpu_limit": 0.1, "mem_limit_mb": 16.0},
                    "command": {"value": "sleep 60"}
                }]
            }
        }))
        .unwrap();
        Arc::new(JobView {
            job: Job::new(JobId(id.into()), spec, 1_000),
            instances: Default::default(),
        })
    }

    fn pod(job: &Arc<JobView>, instance: u32, state: Option<PodState>) -> Arc<WatchedPod> {
        let latest = state.map(|state| {
            let mut run = Run::launching(0, AgentId::new("a1"), 1, 2_000);
            run.state = state;
            RunRecord {
                task_id: TaskId::new(InstanceId::new(job.job.job_id.clone(), instance), 0),
                run,
                hostname: Some("h".into()),
                message: None,
                ports: vec![],
                image: None,
            }
        });
        Arc::new(WatchedPod::new(job.clone(), instance, latest, 0))
    }

    fn request(
        jobs: Option<watch::StatelessJobFilter>,
        pods: Option<watch::PodFilter>,
    ) -> WatchRequest {
        WatchRequest {
            start_revision: 0,
            stateless_job_filter: jobs,
            pod_filter: pods,
        }
    }

    fn label(k: &str, v: &str) -> peloton::Label {
        peloton::Label {
            key: k.into(),
            value: v.into(),
        }
    }

    fn names(r: &WatchResponse) -> Vec<String> {
        r.pods
            .iter()
            .map(|p| p.pod_name.clone().unwrap().value)
            .collect()
    }

    #[test]
    fn no_filter_is_invalid_and_an_empty_filter_selects_all_of_its_kind() {
        let e = Selection::read(&request(None, None)).unwrap_err();
        assert_eq!(e.code, crate::api::error::Code::InvalidArgument);
        assert!(
            e.message.contains("not supported watch type"),
            "{}",
            e.message
        );
        let pods_only = Selection::read(&request(None, Some(Default::default()))).unwrap();
        assert_eq!(pods_only.kind(), "task");
        let (a, b) = (view("a", &[]), view("b", &[]));
        let snapshot = WatchSnapshot {
            revision: 7,
            jobs: vec![a.clone(), b.clone()],
            pods: vec![pod(&a, 0, None), pod(&b, 1, Some(PodState::Running))],
        };
        let out = snapshot_responses(&pods_only, "w", &snapshot);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].revision, 7);
        assert_eq!(names(&out[0]), ["a-0", "b-1"]);
        assert!(out[0].stateless_jobs.is_empty(), "no job filter: no jobs");
        let status = out[0].pods[0].status.as_ref().unwrap();
        assert_eq!(status.state(), pod::PodState::Pending, "never launched");
        let jobs_only = Selection::read(&request(Some(Default::default()), None)).unwrap();
        let out = snapshot_responses(&jobs_only, "w", &snapshot);
        assert_eq!(out[0].stateless_jobs.len(), 2);
        assert!(out[0].pods.is_empty());
    }

    #[test]
    fn filters_select_by_id_or_name_pod_name_and_all_their_labels() {
        let (a, b) = (
            view("a", &[("team", "x"), ("env", "prod")]),
            view("b", &[("team", "x")]),
        );
        let jobs = JobFilter::read(&watch::StatelessJobFilter {
            job_ids: vec![],
            labels: vec![label("team", "x"), label("env", "prod")],
        });
        assert!(jobs.selects(&a) && !jobs.selects(&b), "labels are all-of");
        let by_name = JobFilter::read(&watch::StatelessJobFilter {
            job_ids: vec![peloton::JobId {
                value: "b-name".into(),
            }],
            labels: vec![],
        });
        assert!(by_name.selects(&b) && !by_name.selects(&a));
        let pods = PodFilter::read(&watch::PodFilter {
            job_id: Some(peloton::JobId { value: "a".into() }),
            pod_names: vec![peloton::PodName {
                value: "a-1".into(),
            }],
            labels: vec![label("tier", "a")],
        });
        assert!(pods.selects(&pod(&a, 1, None)));
        assert!(!pods.selects(&pod(&a, 0, None)), "not named");
        assert!(!pods.selects(&pod(&b, 1, None)), "another job");
        let wrong_label = PodFilter {
            labels: vec![("tier".into(), "b".into())],
            ..pods.clone()
        };
        assert!(
            !wrong_label.selects(&pod(&a, 1, None)),
            "the pod spec's labels"
        );
    }

    #[test]
    fn a_change_carries_what_the_filter_selects_and_deletions_as_not_found() {
        let (a, b) = (view("a", &[]), view("b", &[]));
        let selection = Selection::read(&request(
            Some(watch::StatelessJobFilter {
                job_ids: vec![peloton::JobId { value: "a".into() }],
                labels: vec![],
            }),
            Some(watch::PodFilter {
                job_id: Some(peloton::JobId { value: "a".into() }),
                ..Default::default()
            }),
        ))
        .unwrap();
        assert_eq!(selection.kind(), "all");
        let other = WatchEntry {
            revision: 9,
            jobs: vec![b.clone()],
            pods: vec![pod(&b, 0, Some(PodState::Running))],
            ..WatchEntry::default()
        };
        assert!(
            change_response(&selection, "w", &other).is_none(),
            "nothing selected"
        );
        let change = WatchEntry {
            revision: 10,
            jobs: vec![a.clone()],
            pods: vec![pod(&a, 0, Some(PodState::Killed))],
            deleted_pods: vec![pod(&a, 1, None), pod(&b, 1, None)],
            ..WatchEntry::default()
        };
        let r = change_response(&selection, "w", &change).unwrap();
        assert_eq!((r.revision, r.watch_id.as_str()), (10, "w"));
        assert_eq!(names(&r), ["a-0"]);
        assert_eq!(r.stateless_jobs.len(), 1);
        let gone: Vec<_> = r.pods_not_found.iter().map(|p| p.value.as_str()).collect();
        assert_eq!(gone, ["a-1"]);
        let deleted = WatchEntry {
            revision: 11,
            deleted_jobs: vec![a.clone(), b.clone()],
            ..WatchEntry::default()
        };
        let r = change_response(&selection, "w", &deleted).unwrap();
        assert_eq!(r.stateless_jobs_not_found[0].value, "a");
        assert_eq!(r.stateless_jobs_not_found.len(), 1);
    }

    #[test]
    fn a_snapshot_too_large_for_one_message_comes_in_several_at_its_revision() {
        let a = view("a", &[]);
        let one = pod_summary(&pod(&a, 0, Some(PodState::Running))).encoded_len();
        let n = u32::try_from(2 * SNAPSHOT_CHUNK_BYTES / one + 1).unwrap();
        let many: Vec<_> = (0..n)
            .map(|i| pod(&a, i, Some(PodState::Running)))
            .collect();
        let snapshot = WatchSnapshot {
            revision: 3,
            jobs: vec![a.clone()],
            pods: many,
        };
        let selection = Selection::read(&request(None, Some(Default::default()))).unwrap();
        let out = snapshot_responses(&selection, "w", &snapshot);
        assert!(out.len() > 2, "{} responses", out.len());
        assert!(out
            .iter()
            .all(|r| r.revision == 3 && r.encoded_len() < 4 << 20));
        assert_eq!(out.iter().map(|r| r.pods.len()).sum::<usize>(), n as usize);
    }
}
