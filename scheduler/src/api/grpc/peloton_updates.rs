//! Peloton v1alpha `JobService`'s methods that change a running job and
//! read its updates: `ReplaceJob`, `PatchJob`, `GetReplaceJobDiff`,
//! `GetWorkflowEvents`, `ListJobWorkflows`, and the workflow `GetJob`
//! shows. Each decodes, asks the engine (`ApiRequest::UpdateJob`) or
//! reads, and encodes ([`super::peloton_workflow`]); the meaning is in
//! [`crate::model::workflow`], as for the JSON face ([`crate::api::updates`]).
//!
//! - `ReplaceJob`: the whole new spec, rolled out as `update_spec` says
//!   (`UpdateSpec` → [`crate::model::workflow::UpdateOptions`]; `in_place`
//!   and `start_pods` are refused: Drover cannot honour them). Pods whose
//!   spec does not change are not touched. A job-level Drover-only part
//!   the Peloton spec cannot say (the unreachable policy, the disabled
//!   flag, a kept Titus descriptor, task attributes) is kept.
//! - `PatchJob`: only the fields the request's spec sets change
//!   ([`super::peloton_patch`] says exactly what "set" means).
//! - A stale `version` is ABORTED and changes nothing; a new update while
//!   one is in progress is FAILED_PRECONDITION (pause/abort it or wait).
//! - `GetReplaceJobDiff`: which instances the spec would add, remove,
//!   update or leave unchanged, as half-open ranges, before anything.
//! - `GetWorkflowEvents`: one instance's story (`instance_id`; proto3
//!   cannot tell "no instance" from instance 0) in the current (or last)
//!   update, oldest first, the last `limit` (0: all). The update's own
//!   story is `WorkflowInfo.events`, in `GetJob` and `ListJobWorkflows`.
//! - `ListJobWorkflows`: the current (or last) update, then earlier ones
//!   newest first, at most `updates_limit` (0: all), each with its own
//!   events, and with `instance_events` each instance's events (the last
//!   `instance_events_limit`, 0: all).

use super::peloton_patch::patched;
use super::peloton_secrets::secrets_from_proto;
use super::peloton_spec::job_spec_from_proto;
use super::peloton_views::{job_ref, version};
use super::peloton_workflow as view;
use crate::api::authn::Caller;
use crate::api::error::{ApiError, Code};
use crate::api::jobs::parse_version;
use crate::api::updates::{ask_update, checked};
use crate::api::AppState;
use crate::model::job::Job;
use crate::model::spec::JobSpec;
use crate::model::workflow::{UpdateOptions, WorkflowEvent};
use drover_seed_api::peloton::api::v1alpha::job::stateless;
use drover_seed_api::peloton::api::v1alpha::peloton;
use stateless::svc::*;

fn expected(v: &Option<peloton::EntityVersion>) -> Result<Option<u64>, ApiError> {
    let raw = v
        .as_ref()
        .map(|v| v.value.as_str())
        .filter(|v| !v.is_empty());
    parse_version("version.value", raw)
}

fn no_opaque_data(data: &Option<peloton::OpaqueData>) -> Result<(), ApiError> {
    if data.as_ref().is_some_and(|d| !d.data.is_empty()) {
        return Err(ApiError::invalid(
            "opaque_data",
            "is not supported by Drover: it keeps no opaque data",
        ));
    }
    Ok(())
}

fn required_spec(spec: &Option<stateless::JobSpec>) -> Result<&stateless::JobSpec, ApiError> {
    spec.as_ref()
        .ok_or_else(|| ApiError::invalid("spec", "is required"))
}

/// Checks a new spec as a create would.
/// A replacing spec keeps the job-level parts Peloton's cannot say.
fn keep_drover_parts(mut spec: JobSpec, current: &JobSpec) -> JobSpec {
    spec.unreachable_policy = current.unreachable_policy;
    spec.disabled = current.disabled;
    spec.disruption_budget = current.disruption_budget.clone();
    spec.seed_message = current.seed_message.clone();
    spec.task_attributes = current.task_attributes.clone();
    spec
}

async fn start(
    state: &AppState,
    caller: &Caller,
    job: &Job,
    spec: JobSpec,
    options: UpdateOptions,
    expected_version: Option<u64>,
) -> Result<Option<peloton::EntityVersion>, ApiError> {
    let job = ask_update(state, caller, job, spec, options, expected_version).await?;
    Ok(Some(version(job.version)))
}

/// `ReplaceJob`.
pub async fn replace(
    state: &AppState,
    caller: &Caller,
    r: ReplaceJobRequest,
) -> Result<ReplaceJobResponse, ApiError> {
    no_opaque_data(&r.opaque_data)?;
    let expected_version = expected(&r.version)?;
    let options = view::update_options(r.update_spec.as_ref(), "update_spec")?;
    let view = state.find_job(job_ref(r.job_id.as_ref())?).await?;
    let spec = job_spec_from_proto(required_spec(&r.spec)?, "spec")?;
    let mut spec = keep_drover_parts(spec, &view.job.spec);
    // None named: the job's secrets stay (the engine carries them over).
    spec.secrets = secrets_from_proto(&r.secrets, "secrets")?;
    let version = start(state, caller, &view.job, spec, options, expected_version).await?;
    Ok(ReplaceJobResponse { version })
}

/// `PatchJob`.
pub async fn patch(
    state: &AppState,
    caller: &Caller,
    r: PatchJobRequest,
) -> Result<PatchJobResponse, ApiError> {
    no_opaque_data(&r.opaque_data)?;
    let expected_version = expected(&r.version)?;
    let options = view::update_options(r.update_spec.as_ref(), "update_spec")?;
    let view = state.find_job(job_ref(r.job_id.as_ref())?).await?;
    let mut spec = patched(&view.job.spec, required_spec(&r.spec)?, "spec")?;
    spec.secrets = secrets_from_proto(&r.secrets, "secrets")?;
    let version = start(state, caller, &view.job, spec, options, expected_version).await?;
    Ok(PatchJobResponse { version })
}

/// `GetReplaceJobDiff`.
pub async fn diff(
    state: &AppState,
    r: GetReplaceJobDiffRequest,
) -> Result<GetReplaceJobDiffResponse, ApiError> {
    let expected_version = expected(&r.version)?;
    let view = state.find_job(job_ref(r.job_id.as_ref())?).await?;
    view.job
        .check_version(expected_version)
        .map_err(|e| ApiError {
            code: Code::Aborted,
            message: e.to_string(),
        })?;
    let spec = job_spec_from_proto(required_spec(&r.spec)?, "spec")?;
    let spec = keep_drover_parts(spec, &view.job.spec);
    checked(state, &spec)?;
    Ok(view::diff_response(&view.job.replace_diff(&spec)))
}

/// `GetWorkflowEvents`.
pub async fn events(
    state: &AppState,
    r: GetWorkflowEventsRequest,
) -> Result<GetWorkflowEventsResponse, ApiError> {
    let view = state.find_job(job_ref(r.job_id.as_ref())?).await?;
    let Some(current) = view.job.workflows.current.as_deref() else {
        return Ok(GetWorkflowEventsResponse::default());
    };
    let (job_id, workflow, instance) = (view.job.job_id.clone(), current.id, r.instance_id);
    let events = state
        .read(move |s| s.workflow_events(&job_id, workflow, Some(instance)))
        .await?;
    Ok(GetWorkflowEventsResponse {
        events: view::last(events, r.limit)
            .iter()
            .map(view::event)
            .collect(),
    })
}

/// The events of one workflow: its own, and each of `instances`' that
/// has any.
type Story = (Vec<WorkflowEvent>, Vec<(u32, Vec<WorkflowEvent>)>);

/// `ListJobWorkflows`.
pub async fn list(
    state: &AppState,
    r: ListJobWorkflowsRequest,
) -> Result<ListJobWorkflowsResponse, ApiError> {
    let view = state.find_job(job_ref(r.job_id.as_ref())?).await?;
    let workflows = &view.job.workflows;
    let limit = match r.updates_limit {
        0 => usize::MAX,
        n => n as usize,
    };
    // Newest first: the current (or last), then the past ones.
    let mut wanted: Vec<(u32, Vec<u32>)> = Vec::new();
    if let Some(w) = workflows.current.as_deref() {
        wanted.push((w.id, touched(&w.diff)));
    }
    for w in workflows.past.iter().rev() {
        wanted.push((w.id, touched(&w.diff)));
    }
    wanted.truncate(limit);
    let job_id = view.job.job_id.clone();
    let with_instances = r.instance_events;
    let stories: Vec<Story> = state
        .read(move |s| {
            let mut out = Vec::with_capacity(wanted.len());
            for (id, instances) in &wanted {
                let own = s.workflow_events(&job_id, *id, None)?;
                let mut per_instance = Vec::new();
                if with_instances {
                    for &i in instances {
                        let events = s.workflow_events(&job_id, *id, Some(i))?;
                        if !events.is_empty() {
                            per_instance.push((i, events));
                        }
                    }
                }
                out.push((own, per_instance));
            }
            Ok(out)
        })
        .await?;
    let mut infos = Vec::with_capacity(stories.len());
    let mut stories = stories.into_iter();
    let mut add = |mut info: stateless::WorkflowInfo, instances: Vec<(u32, Vec<WorkflowEvent>)>| {
        info.instance_events = instances
            .into_iter()
            .map(
                |(instance_id, events)| stateless::workflow_info::InstanceWorkflowEvents {
                    instance_id,
                    events: view::last(events, r.instance_events_limit)
                        .iter()
                        .map(view::event)
                        .collect(),
                },
            )
            .collect();
        infos.push(info);
    };
    if let Some(w) = workflows.current.as_deref() {
        if let Some((own, instances)) = stories.next() {
            add(view::info(w, &own), instances);
        }
    }
    for w in workflows.past.iter().rev() {
        let Some((own, instances)) = stories.next() else {
            break;
        };
        add(view::past_info(w, &own), instances);
    }
    Ok(ListJobWorkflowsResponse {
        workflow_infos: infos,
    })
}

/// The instances an update moves (updated, then added), ascending.
fn touched(diff: &crate::model::workflow::SpecDiff) -> Vec<u32> {
    let mut all: Vec<u32> = diff.updated.iter().chain(&diff.added).copied().collect();
    all.sort_unstable();
    all
}

/// The job's current (or last) update as `GetJob` shows it (`WorkflowInfo`
/// with its own events; its status is `JobStatus.workflow_status`); None
/// when it was never updated.
pub async fn current_info(
    state: &AppState,
    job: &Job,
) -> Result<Option<stateless::WorkflowInfo>, ApiError> {
    let Some(w) = job.workflows.current.as_deref() else {
        return Ok(None);
    };
    let (job_id, id) = (job.job_id.clone(), w.id);
    let own = state
        .read(move |s| s.workflow_events(&job_id, id, None))
        .await?;
    Ok(Some(view::info(w, &own)))
}
