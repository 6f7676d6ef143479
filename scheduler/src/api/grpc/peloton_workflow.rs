//! Drover's update workflows ([`crate::model::workflow`]) as Peloton
//! v1alpha writes them, and Peloton's `UpdateSpec` as Drover's
//! [`UpdateOptions`]: the same facts as the JSON face's
//! [`crate::api::updates`], as messages. Pure.
//!
//! - Versions: a workflow's `version`/`prev_version` are the spec versions
//!   it moves the job to and from, as each pod's `version` and
//!   `desired_version` are (decimal `EntityVersion`s).
//! - Instance sets are half-open `InstanceIDRange`s `[from, to)`, as
//!   `RestartSpec.ranges` reads them.
//! - A past workflow (one a later update replaced) keeps its counts and
//!   state but not which instances were in flight (`instances_current`
//!   empty).

use super::peloton_views::version;
use crate::api::error::ApiError;
use crate::api::rfc3339;
use crate::model::workflow::{self, SpecDiff, UpdateOptions, Workflow, WorkflowSummary};
use crate::model::workflow::{WorkflowEvent, WorkflowState as State};
use drover_seed_api::peloton::api::v1alpha::job::stateless;
use drover_seed_api::peloton::api::v1alpha::pod;
use stateless::{WorkflowState, WorkflowType};

/// Peloton's `UpdateSpec` as Drover's options; absent: the defaults (all
/// at once, no retries limit, no rollback). A field Drover cannot honour
/// is INVALID_ARGUMENT naming it (`{at}.field`).
pub fn update_options(
    spec: Option<&stateless::UpdateSpec>,
    at: &str,
) -> Result<UpdateOptions, ApiError> {
    let Some(s) = spec else {
        return Ok(UpdateOptions::default());
    };
    if s.start_pods {
        return Err(ApiError::invalid(
            &format!("{at}.start_pods"),
            "is not supported by Drover: an update leaves each pod's goal as it is \
             (StartJob starts a stopped job)",
        ));
    }
    Ok(UpdateOptions {
        batch_size: s.batch_size,
        rollback_on_failure: s.rollback_on_failure,
        max_instance_retries: s.max_instance_retries,
        max_tolerable_instance_failures: s.max_tolerable_instance_failures,
        start_paused: s.start_paused,
        in_place: s.in_place,
    })
}

/// Drover's options as Peloton's `UpdateSpec`.
pub fn update_spec(o: &UpdateOptions) -> stateless::UpdateSpec {
    stateless::UpdateSpec {
        batch_size: o.batch_size,
        rollback_on_failure: o.rollback_on_failure,
        max_instance_retries: o.max_instance_retries,
        max_tolerable_instance_failures: o.max_tolerable_instance_failures,
        start_paused: o.start_paused,
        in_place: o.in_place,
        start_pods: false,
    }
}

/// A model workflow state as the proto's.
pub fn state(s: State) -> WorkflowState {
    WorkflowState::from_str_name(s.peloton_name()).unwrap_or(WorkflowState::Invalid)
}

/// Instances (ascending) as half-open `InstanceIDRange`s.
pub fn ranges(instances: &[u32]) -> Vec<pod::InstanceIdRange> {
    workflow::ranges(instances)
        .into_iter()
        .map(|(from, to)| pod::InstanceIdRange { from, to })
        .collect()
}

/// `GetReplaceJobDiffResponse` of a diff.
pub fn diff_response(d: &SpecDiff) -> stateless::svc::GetReplaceJobDiffResponse {
    stateless::svc::GetReplaceJobDiffResponse {
        instances_added: ranges(&d.added),
        instances_removed: ranges(&d.removed),
        instances_updated: ranges(&d.updated),
        instances_unchanged: ranges(&d.unchanged),
    }
}

/// A `WorkflowEvent`.
pub fn event(e: &WorkflowEvent) -> stateless::WorkflowEvent {
    stateless::WorkflowEvent {
        r#type: WorkflowType::Update as i32,
        timestamp: rfc3339::format(e.at),
        state: state(e.state) as i32,
    }
}

/// The state before the workflow's current one, from its own events
/// (oldest first): the last event's state that differs from `now`.
pub fn prev_state(now: State, events: &[WorkflowEvent]) -> Option<State> {
    let mut states = events.iter().rev().map(|e| e.state);
    // The newest event is the current state's own (when recorded).
    states.find(|s| *s != now)
}

/// The current (or last) update's `WorkflowStatus`; `prev` is the state
/// it was in before.
pub fn status(w: &Workflow, prev: Option<State>) -> stateless::WorkflowStatus {
    let now = w.state();
    stateless::WorkflowStatus {
        r#type: WorkflowType::Update as i32,
        state: state(now) as i32,
        num_instances_completed: w.done.len() as u32,
        num_instances_remaining: w.remaining(),
        num_instances_failed: w.failed.len() as u32,
        instances_current: w.current(),
        version: Some(version(w.to_version)),
        prev_version: Some(version(w.from_version)),
        creation_time: rfc3339::format(w.created_at),
        update_time: rfc3339::format(w.updated_at),
        prev_state: prev.map_or(WorkflowState::Invalid, state) as i32,
        completion_time: if now.is_terminal() {
            rfc3339::format(w.updated_at)
        } else {
            String::new()
        },
    }
}

/// An earlier update's `WorkflowStatus`.
pub fn past_status(w: &WorkflowSummary) -> stateless::WorkflowStatus {
    stateless::WorkflowStatus {
        r#type: WorkflowType::Update as i32,
        state: state(w.state) as i32,
        num_instances_completed: w.completed,
        num_instances_remaining: w.remaining,
        num_instances_failed: w.failed,
        instances_current: Vec::new(),
        version: Some(version(w.to_version)),
        prev_version: Some(version(w.from_version)),
        creation_time: rfc3339::format(w.created_at),
        update_time: rfc3339::format(w.updated_at),
        prev_state: WorkflowState::Invalid as i32,
        completion_time: if w.state.is_terminal() {
            rfc3339::format(w.updated_at)
        } else {
            String::new()
        },
    }
}

/// The current (or last) update's `WorkflowInfo`, with its own events
/// (oldest first).
pub fn info(w: &Workflow, events: &[WorkflowEvent]) -> stateless::WorkflowInfo {
    stateless::WorkflowInfo {
        status: Some(status(w, prev_state(w.state(), events))),
        update_spec: Some(update_spec(&w.options)),
        events: events.iter().map(event).collect(),
        instances_added: ranges(&w.diff.added),
        instances_removed: ranges(&w.diff.removed),
        instances_updated: ranges(&w.diff.updated),
        ..stateless::WorkflowInfo::default()
    }
}

/// An earlier update's `WorkflowInfo`, with its own events.
pub fn past_info(w: &WorkflowSummary, events: &[WorkflowEvent]) -> stateless::WorkflowInfo {
    stateless::WorkflowInfo {
        status: Some(past_status(w)),
        update_spec: Some(update_spec(&w.options)),
        events: events.iter().map(event).collect(),
        instances_added: ranges(&w.diff.added),
        instances_removed: ranges(&w.diff.removed),
        instances_updated: ranges(&w.diff.updated),
        ..stateless::WorkflowInfo::default()
    }
}

/// The last `limit` of `items` (0: all), keeping their order.
pub fn last<T>(mut items: Vec<T>, limit: u32) -> Vec<T> {
    if limit > 0 && items.len() > limit as usize {
        items.drain(..items.len() - limit as usize);
    }
    items
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_model_state_has_its_proto_state() {
        for s in State::ALL {
            assert_ne!(state(s), WorkflowState::Invalid, "{s:?}");
        }
    }

    #[test]
    fn options_the_engine_cannot_honour_are_refused_by_name() {
        let spec = stateless::UpdateSpec {
            batch_size: 2,
            rollback_on_failure: true,
            ..Default::default()
        };
        let o = update_options(Some(&spec), "update_spec").unwrap();
        assert_eq!((o.batch_size, o.rollback_on_failure), (2, true));
        assert_eq!(update_spec(&o), spec);
        let in_place = stateless::UpdateSpec {
            in_place: true,
            ..Default::default()
        };
        assert!(
            update_options(Some(&in_place), "update_spec")
                .unwrap()
                .in_place
        );
        let bad = stateless::UpdateSpec {
            start_pods: true,
            ..Default::default()
        };
        let e = update_options(Some(&bad), "update_spec").unwrap_err();
        assert!(e.message.starts_with("update_spec.start_pods"), "{e:?}");
    }

    #[test]
    fn prev_state_is_the_last_other_state() {
        let e = |state| WorkflowEvent {
            instance: None,
            state,
            at: 1,
        };
        let events = [e(State::RollingForward), e(State::Paused)];
        assert_eq!(
            prev_state(State::Paused, &events),
            Some(State::RollingForward)
        );
        assert_eq!(prev_state(State::RollingForward, &events[..1]), None);
        assert_eq!(last(vec![1, 2, 3], 2), vec![2, 3]);
        assert_eq!(last(vec![1, 2, 3], 0), vec![1, 2, 3]);
    }
}
