//! Whether a pod serves: the gate every rolling change waits on (job
//! restarts, updates and their rollbacks). A run is available when it is
//! RUNNING and, if its pod has a health check, its executor has judged it
//! HEALTHY: a replacement that is up but not yet answering its check is
//! not, so the next pod is not taken down for it.
//!
//! The readiness check is the pod's liveness check: Drover runs no
//! separate one (the Peloton API refuses `readiness_check`). A run whose
//! check has not reported yet (`healthy` unknown) is not available: it has
//! not been seen to serve. A run the master reports unreachable is not
//! either.
//!
//! This is the scheduler's view: a run may serve already while its health
//! update is still on its way, so a caller deciding what to take down must
//! not assume that killing an unavailable pod costs nothing.

use super::run::Run;
use super::spec::PodSpec;
use super::state::PodState;

/// Whether `run` (of a pod whose spec is `pod`) is available.
pub fn is_available(pod: &PodSpec, run: &Run) -> bool {
    run.state == PodState::Running
        && run.unreachable.is_none()
        && (pod.liveness_check().is_none() || run.healthy == Some(true))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::ids::AgentId;

    fn pod(checked: Option<bool>) -> PodSpec {
        let mut container = serde_json::json!({"command": {"value": "true"}});
        if let Some(enabled) = checked {
            container["liveness_check"] = serde_json::json!({
                "enabled": enabled, "type": "COMMAND",
                "command_check": {"command": "true"}
            });
        }
        serde_json::from_value(serde_json::json!({"containers": [container]})).unwrap()
    }

    fn run(state: PodState, healthy: Option<bool>) -> Run {
        Run {
            state,
            healthy,
            ..Run::launching(0, AgentId::new("a1"), 1, 0)
        }
    }

    #[test]
    fn running_and_healthy_if_checked_is_available() {
        use PodState::*;
        // (pod has an enabled check, run state, run health) -> available
        let table = [
            (None, Running, None, true),
            (None, Running, Some(false), true),
            (Some(false), Running, None, true),
            (Some(true), Running, None, false),
            (Some(true), Running, Some(false), false),
            (Some(true), Running, Some(true), true),
            (None, Starting, None, false),
            (Some(true), Launched, Some(true), false),
            (Some(true), Killing, Some(true), false),
            (None, Killed, None, false),
        ];
        for (checked, state, healthy, want) in table {
            assert_eq!(
                is_available(&pod(checked), &run(state, healthy)),
                want,
                "{checked:?} {state:?} {healthy:?}"
            );
        }
    }

    #[test]
    fn an_unreachable_run_is_not_available() {
        let mut r = run(PodState::Running, Some(true));
        r.mark_unreachable(5);
        assert!(!is_available(&pod(Some(true)), &r));
        assert!(!is_available(&pod(None), &r));
    }
}
