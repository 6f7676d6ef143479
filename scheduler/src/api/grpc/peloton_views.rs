//! Drover's jobs as Peloton v1alpha shows them (`JobStatus`,
//! `JobSummary`, `WorkflowStatus`, `EntityVersion`): the same facts as
//! the JSON API's [`crate::api::views`], as messages. Pure.

use super::peloton_spec::labels_to;
use crate::api::error::ApiError;
use crate::api::rfc3339;
use crate::model::create_workflow::{self, CreateState};
use crate::model::job::{Job, JobView};
use crate::model::run::Run;
use crate::model::state::JobGoal;
use crate::store::RunRecord;
use drover_seed_api::peloton::api::v1alpha::job::stateless;
use drover_seed_api::peloton::api::v1alpha::peloton;
use stateless::{JobState, WorkflowState, WorkflowType};

/// A job version as Peloton's `EntityVersion` (the JSON API's
/// [`crate::api::views::version`]: the version as a decimal string).
pub fn version(v: u64) -> peloton::EntityVersion {
    peloton::EntityVersion {
        value: v.to_string(),
    }
}

/// The job a request's `job_id` names (its value: an id or a name).
pub fn job_ref(id: Option<&peloton::JobId>) -> Result<&str, ApiError> {
    match id.map(|j| j.value.as_str()) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(ApiError::invalid("job_id.value", "is required")),
    }
}

fn job_state(name: &str) -> i32 {
    JobState::from_str_name(name).unwrap_or(JobState::Invalid) as i32
}

fn desired_state(goal: JobGoal) -> i32 {
    (match goal {
        JobGoal::Running => JobState::Running,
        JobGoal::Stopped => JobState::Killed,
        JobGoal::Deleted => JobState::Deleted,
    }) as i32
}

/// `JobStatus`, without the workflow (see [`workflow_status`]).
pub fn job_status(view: &JobView) -> stateless::JobStatus {
    let job = &view.job;
    stateless::JobStatus {
        revision: Some(peloton::Revision {
            version: job.revision,
            created_at: u64::try_from(job.created_at).unwrap_or(0),
            updated_at: u64::try_from(job.updated_at).unwrap_or(0),
            updated_by: job.updated_by.clone(),
        }),
        state: job_state(view.state().as_str()),
        creation_time: rfc3339::format(job.created_at),
        pod_stats: view
            .instances
            .pod_stats()
            .map(|(state, n)| (state.as_str().to_owned(), n))
            .collect(),
        desired_state: desired_state(job.goal),
        version: Some(version(job.version)),
        ..stateless::JobStatus::default()
    }
}

/// `JobSummary`.
pub fn job_summary(view: &JobView) -> stateless::JobSummary {
    let job = &view.job;
    let spec = &job.spec;
    stateless::JobSummary {
        job_id: Some(peloton::JobId {
            value: job.job_id.as_str().to_owned(),
        }),
        name: spec.name.clone(),
        owner: spec.owner.clone(),
        owning_team: spec.owning_team.clone(),
        labels: labels_to(&spec.labels),
        instance_count: spec.instance_count,
        respool_id: spec
            .respool_id
            .as_ref()
            .map(|v| peloton::ResourcePoolId { value: v.clone() }),
        status: Some(job_status(view)),
        sla: spec.sla.as_ref().map(|s| stateless::SlaSpec {
            priority: s.priority,
            preemptible: s.preemptible,
            revocable: false,
            maximum_unavailable_instances: s.maximum_unavailable_instances,
        }),
    }
}

/// The job's creation workflow as Peloton's `WorkflowStatus` (an UPDATE
/// workflow, as Peloton runs a creation), from its runs (by instance,
/// then run, as the store lists them); None without one.
pub fn workflow_status(job: &Job, runs: &[RunRecord]) -> Option<stateless::WorkflowStatus> {
    let workflow = job.create.as_ref()?;
    let mut by_instance: Vec<Vec<Run>> = vec![Vec::new(); job.spec.instance_count as usize];
    for record in runs {
        if let Some(list) = by_instance.get_mut(record.task_id.instance.instance as usize) {
            list.push(record.run.clone());
        }
    }
    let progress = create_workflow::progress(workflow, job.spec.instance_count, |i| {
        by_instance.get(i as usize).map_or(&[][..], Vec::as_slice)
    });
    let state = match progress.state {
        CreateState::RollingForward => WorkflowState::RollingForward,
        CreateState::Paused => WorkflowState::Paused,
        CreateState::Succeeded => WorkflowState::Succeeded,
        CreateState::Failed => WorkflowState::Failed,
        CreateState::Aborted => WorkflowState::Aborted,
    };
    let ended = !progress.state.is_active();
    let completion_time = ended
        .then(|| {
            by_instance
                .iter()
                .flatten()
                .filter_map(|r| r.started_at.or(r.completed_at))
                .max()
                .map(rfc3339::format)
        })
        .flatten()
        .unwrap_or_default();
    Some(stateless::WorkflowStatus {
        r#type: WorkflowType::Update as i32,
        state: state as i32,
        num_instances_completed: progress.completed,
        num_instances_remaining: progress.remaining,
        num_instances_failed: progress.failed,
        instances_current: progress.current.clone(),
        version: Some(version(job.version)),
        prev_version: None,
        creation_time: rfc3339::format(job.created_at),
        update_time: rfc3339::format(job.updated_at),
        prev_state: WorkflowState::Invalid as i32,
        completion_time,
    })
}
