//! Peloton's QueryJobs and QueryPods: `POST /api/v1/jobs/query` and
//! `POST /api/v1/jobs/{id}/pods/query`, with the seed's filters (states,
//! labels, owner, name, keywords; pod states, hosts, pod names, labels)
//! and offset/limit pagination. States are taken in the seed's names and
//! Drover's short forms, in any case ([`state_names`]); an unknown one is
//! INVALID_ARGUMENT naming the valid ones. Filtering is done on the
//! reader's snapshot; the filters themselves are the pure functions at the
//! bottom.

use super::body::read_json;
use super::error::ApiError;
use super::jobs::Wrapped;
use super::{views, AppState};
use crate::model::change::PendingInfo;
use crate::model::ids::InstanceId;
use crate::model::job::Job;
use crate::model::spec::Label;
use crate::model::state_names::{self, StateNameError};
use crate::store::RunRecord;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Peloton `PaginationSpec`.
#[derive(Debug, Deserialize, Default, Clone, Copy, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Pagination {
    /// First record.
    #[serde(default)]
    pub offset: u32,
    /// Page size (0 = the server's largest page).
    #[serde(default)]
    pub limit: u32,
    /// Accepted for compatibility; the server's largest page applies.
    #[serde(default)]
    pub max_limit: u32,
}

/// Peloton job `QuerySpec`.
#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobQuerySpec {
    /// Any of these states (`JOB_STATE_RUNNING`, `RUNNING`, `running`).
    #[serde(default)]
    pub job_states: Vec<String>,
    /// All of these labels.
    #[serde(default)]
    pub labels: Vec<Label>,
    /// This owner.
    #[serde(default)]
    pub owner: Option<String>,
    /// Name containing this.
    #[serde(default)]
    pub name: Option<String>,
    /// Each keyword in the name, owner, description or a label.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// In this resource pool: the job's `respool_id` (kept until pools
    /// exist) equals it.
    #[serde(default)]
    pub respool: Option<Wrapped>,
    /// Created within this range (Unix milliseconds, either end open);
    /// set by the gRPC face.
    #[serde(skip)]
    pub creation_time_range: Option<TimeRange>,
    /// Completed within this range (a job in a terminal state, at its
    /// last run's end); set by the gRPC face.
    #[serde(skip)]
    pub completion_time_range: Option<TimeRange>,
    /// The page.
    #[serde(default)]
    pub pagination: Option<Pagination>,
}

/// A closed time range in Unix milliseconds; an absent end is open.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// Not before.
    pub min: Option<i64>,
    /// Not after.
    pub max: Option<i64>,
}

impl TimeRange {
    /// Whether `at` lies in the range.
    pub fn contains(&self, at: i64) -> bool {
        self.min.is_none_or(|m| at >= m) && self.max.is_none_or(|m| at <= m)
    }
}

/// Peloton pod `QuerySpec`.
#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PodQuerySpec {
    /// Any of these states (`POD_STATE_RUNNING`, `RUNNING`, `running`).
    #[serde(default)]
    pub pod_states: Vec<String>,
    /// On any of these hosts.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Any of these pods.
    #[serde(default)]
    pub pod_names: Vec<Wrapped>,
    /// All of these pod labels.
    #[serde(default)]
    pub labels: Vec<Label>,
    /// The page.
    #[serde(default)]
    pub pagination: Option<Pagination>,
}

/// `{"spec": JobQuerySpec}`.
#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryJobsRequest {
    /// The query.
    #[serde(default)]
    pub spec: JobQuerySpec,
}

/// `{"spec": PodQuerySpec}`.
#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryPodsRequest {
    /// The query.
    #[serde(default)]
    pub spec: PodQuerySpec,
}

/// A page's `pagination`: Peloton's `offset`, `limit` and `total`, and
/// `next_offset`, the offset of the next page, only when there is one (the
/// CLI's "--offset N for more").
pub fn pagination(offset: u32, limit: u32, shown: usize, total: usize) -> PageInfo {
    let next = (offset as usize).saturating_add(shown);
    PageInfo {
        offset,
        limit,
        total,
        next_offset: (shown > 0 && next < total).then_some(next),
    }
}

/// A page of `items` as `asked` (the server's largest page at most).
pub fn page<T>(items: Vec<T>, asked: Option<Pagination>, max_page: u32) -> (Vec<T>, PageInfo) {
    let p = asked.unwrap_or_default();
    let limit = if p.limit == 0 {
        max_page
    } else {
        p.limit.min(max_page)
    };
    let total = items.len();
    let records: Vec<T> = items
        .into_iter()
        .skip(p.offset as usize)
        .take(limit as usize)
        .collect();
    let shown = records.len();
    (records, pagination(p.offset, limit, shown, total))
}

/// The states of a filter in their canonical names; the first value that
/// is no state is INVALID_ARGUMENT naming its place (`spec.job_states[1]`).
pub fn canonical_states(
    field: &str,
    values: &[String],
    parse: fn(&str) -> Result<&'static str, StateNameError>,
) -> Result<Vec<String>, ApiError> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            parse(v)
                .map(str::to_owned)
                .map_err(|e| ApiError::invalid(&format!("{field}[{i}]"), e))
        })
        .collect()
}

#[utoipa::path(
    post,
    path = "/api/v1/jobs/query",
    tag = "jobs",
    request_body = Option<QueryJobsRequest>,
    responses((status = 200, description = "OK", body = QueryJobsReply))
)]
/// `POST /api/v1/jobs/query`.
pub async fn query_jobs(
    State(state): State<AppState>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let request: QueryJobsRequest = read_json(body, state.config.max_body_bytes, true).await?;
    let mut spec = request.spec;
    spec.job_states =
        canonical_states("spec.job_states", &spec.job_states, state_names::job_state)?;
    let matching: Vec<_> = state
        .all_published()
        .await?
        .iter()
        .filter(|view| job_matches(&spec, &view.job, view.state().as_str()))
        .map(|view| views::job_summary(view))
        .collect();
    let (records, pagination) = page(matching, spec.pagination, state.config.max_page);
    Ok(Json(json!(QueryJobsReply {
        records,
        pagination
    })))
}

/// `POST /api/v1/jobs/{id}/pods/query` (`{id}` a job's id or name).
#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/pods/query",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id or name")),
    request_body = Option<QueryPodsRequest>,
    responses((status = 200, description = "OK", body = QueryPodsReply))
)]
pub async fn query_pods(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let request: QueryPodsRequest = read_json(body, state.config.max_body_bytes, true).await?;
    let found = find_pods(&state, &id, request.spec).await?;
    let pods: Vec<_> = found.pods.into_iter().map(|(_, pod)| pod).collect();
    Ok(Json(json!(QueryPodsReply {
        pods,
        pagination: found.pagination,
    })))
}

/// A page of a job's pods matching a query, and what they were read with.
pub struct FoundPods {
    /// The job.
    pub job: Job,
    /// Its runs, by instance then run.
    pub runs: Vec<RunRecord>,
    /// Why its pending pods wait.
    pub pending: BTreeMap<u32, PendingInfo>,
    /// The page: each pod's instance and its JSON `PodSummary`.
    pub pods: Vec<(u32, Value)>,
    /// The page's `pagination`.
    pub pagination: PageInfo,
}

/// QueryPods of the job `id` (an id or a name), for the JSON and gRPC
/// faces: the states of `spec` in any accepted spelling.
pub async fn find_pods(
    state: &AppState,
    id: &str,
    mut spec: PodQuerySpec,
) -> Result<FoundPods, ApiError> {
    spec.pod_states =
        canonical_states("spec.pod_states", &spec.pod_states, state_names::pod_state)?;
    let id = state.find_job_id(id).await?;
    let lookup = id.clone();
    let (job, runs, pending) = state
        .read(move |s| {
            Ok((
                s.job(&lookup)?,
                s.runs(&lookup)?,
                s.pending_reasons(&lookup)?,
            ))
        })
        .await?;
    let job = job.ok_or_else(|| ApiError::not_found(format!("job {id}")))?;
    let matching: Vec<(u32, Value)> = views::pod_summaries(&job, &runs, &pending)
        .into_iter()
        .enumerate()
        .filter(|(_, pod)| pod_matches(&spec, &job, pod))
        .map(|(instance, pod)| (instance as u32, pod))
        .collect();
    let (pods, pagination) = page(matching, spec.pagination, state.config.max_page);
    Ok(FoundPods {
        job,
        runs,
        pending,
        pods,
        pagination,
    })
}

fn has_labels(have: &[Label], want: &[Label]) -> bool {
    want.iter().all(|w| have.contains(w))
}

/// Whether `job` (in `state`) matches the query, whose states are in
/// their canonical names. The completion time range needs the job's runs
/// and is checked by [`completed_within`].
pub fn job_matches(spec: &JobQuerySpec, job: &Job, state: &str) -> bool {
    let s = &job.spec;
    let keyword_hit = |k: &String| {
        let k = k.to_lowercase();
        [&s.name, &s.owner, &s.description]
            .iter()
            .any(|f| f.to_lowercase().contains(&k))
            || s.labels
                .iter()
                .any(|l| l.key.to_lowercase().contains(&k) || l.value.to_lowercase().contains(&k))
    };
    (spec.job_states.is_empty() || spec.job_states.iter().any(|x| x == state))
        && has_labels(&s.labels, &spec.labels)
        && spec
            .owner
            .as_ref()
            .is_none_or(|o| o.is_empty() || *o == s.owner)
        && spec
            .name
            .as_ref()
            .is_none_or(|n| s.name.contains(n.as_str()))
        && spec.keywords.iter().all(keyword_hit)
        && spec
            .respool
            .as_ref()
            .is_none_or(|r| r.value.is_empty() || s.respool_id.as_deref() == Some(r.value.as_str()))
        && spec
            .creation_time_range
            .is_none_or(|r| r.contains(job.created_at))
}

/// Whether a job that completed at `completed_at` (None: it has not)
/// matches the query's completion time range.
pub fn completed_within(spec: &JobQuerySpec, completed_at: Option<i64>) -> bool {
    match spec.completion_time_range {
        None => true,
        Some(range) => completed_at.is_some_and(|at| range.contains(at)),
    }
}

/// Whether the pod summary `pod` of `job` matches the query, whose states
/// are in their canonical names.
pub fn pod_matches(spec: &PodQuerySpec, job: &Job, pod: &Value) -> bool {
    let status = &pod["status"];
    let name = pod["pod_name"]["value"].as_str().unwrap_or_default();
    let state = status["state"].as_str().unwrap_or_default();
    let host = status["host"].as_str();
    let pod_spec = InstanceId::parse_pod_name(name).map(|i| job.spec.pod_spec(i.instance));
    let labels = pod_spec.as_deref().map_or(&[][..], |p| &p.labels);
    (spec.pod_states.is_empty() || spec.pod_states.iter().any(|s| s == state))
        && (spec.hosts.is_empty() || host.is_some_and(|h| spec.hosts.iter().any(|x| x == h)))
        && (spec.pod_names.is_empty() || spec.pod_names.iter().any(|p| p.value == name))
        && has_labels(labels, &spec.labels)
}

// The answers' types: the handlers above fill them, and the OpenAPI
// document (`super::openapi`) takes their schemas from them. Serialized
// through a JSON map, whose keys are sorted, as the answers always were.

/// A page's `pagination` ([`pagination`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct PageInfo {
    /// The first record's place.
    pub offset: u32,
    /// The page size applied.
    pub limit: u32,
    /// Records in all.
    pub total: usize,
    /// The next page's offset, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<usize>,
}

/// The answer of QueryJobs.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct QueryJobsReply {
    /// The page's jobs ([`views::job_summary`]).
    #[schema(value_type = Vec<views::JobSummary>)]
    pub records: Vec<Value>,
    /// Where the page is.
    pub pagination: PageInfo,
}

/// The answer of QueryPods.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct QueryPodsReply {
    /// The page's pods ([`views::pod_summaries`]).
    #[schema(value_type = Vec<views::PodSummary>)]
    pub pods: Vec<Value>,
    /// Where the page is.
    pub pagination: PageInfo,
}
