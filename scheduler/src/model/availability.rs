//! Whether a pod serves: the gate every rolling change waits on (job
//! restarts, updates and their rollbacks, and the drain and preemption
//! budget's count of what is down). A run is available when it is RUNNING
//! and its pod's gate has passed:
//! - a pod with a readiness check (Peloton `readiness_check`, run by the
//!   executor as a Mesos `check`) is available once its latest check
//!   result passed (`ready`), whatever its liveness check says so far;
//! - else a pod with a liveness check once its executor judged it HEALTHY;
//! - else once it is RUNNING.
//!
//! A replacement that is up but not yet answering its check is not
//! available, so the next pod is not taken down for it. A run whose check
//! has not reported yet (unknown) is not available: it has not been seen
//! to serve. A run the master reports unreachable is not either.
//!
//! This is the scheduler's view: a run may serve already while its update
//! is still on its way, so a caller deciding what to take down must not
//! assume that killing an unavailable pod costs nothing.

use super::run::Run;
use super::spec::PodSpec;
use super::state::PodState;

/// Whether `run` (of a pod whose spec is `pod`) is available.
pub fn is_available(pod: &PodSpec, run: &Run) -> bool {
    let gate_passed = if pod.readiness_check().is_some() {
        run.ready == Some(true)
    } else if pod.liveness_check().is_some() {
        run.healthy == Some(true)
    } else {
        true
    };
    run.state == PodState::Running && run.unreachable.is_none() && gate_passed
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

    fn pod_with_readiness(liveness: bool) -> PodSpec {
        let mut container = serde_json::json!({"command": {"value": "true"},
            "readiness_check": {"enabled": true, "type": "COMMAND",
                "command_check": {"command": "test -f ready"}}});
        if liveness {
            container["liveness_check"] = serde_json::json!({
                "enabled": true, "type": "COMMAND", "command_check": {"command": "true"}
            });
        }
        serde_json::from_value(serde_json::json!({"containers": [container]})).unwrap()
    }

    #[test]
    fn a_readiness_check_gates_in_place_of_the_liveness_check() {
        use PodState::*;
        // (pod also has a liveness check, state, healthy, ready) -> available
        let table = [
            (false, Running, None, None, false),
            (false, Running, None, Some(false), false),
            (false, Running, None, Some(true), true),
            // Healthy is not ready: liveness does not open the gate.
            (true, Running, Some(true), Some(false), false),
            (true, Running, Some(true), None, false),
            // Ready opens it before the liveness check has judged.
            (true, Running, None, Some(true), true),
            (true, Starting, None, Some(true), false),
            (true, Killing, Some(true), Some(true), false),
        ];
        for (liveness, state, healthy, ready, want) in table {
            let r = Run {
                ready,
                ..run(state, healthy)
            };
            assert_eq!(
                is_available(&pod_with_readiness(liveness), &r),
                want,
                "{liveness} {state:?} {healthy:?} {ready:?}"
            );
        }
        // A disabled readiness check is no gate.
        let mut pod = pod_with_readiness(false);
        pod.containers[0].readiness_check.as_mut().unwrap().enabled = false;
        assert!(is_available(&pod, &run(Running, None)));
    }

    #[test]
    fn an_unreachable_run_is_not_available() {
        let mut r = run(PodState::Running, Some(true));
        r.mark_unreachable(5);
        assert!(!is_available(&pod(Some(true)), &r));
        assert!(!is_available(&pod(None), &r));
    }
}
