//! The disruption budget of a job as the API shows it (the `GET` job
//! view's `disruption_budget`, the CLI's `job get`): how many of its
//! instances Drover may disrupt now, and why no more. Counted from the
//! job's stored runs by the engine's own rule
//! ([`disruption_budget::job_availability`], then
//! [`disruption_budget::allowance`]): the same availability (health
//! included) and the same recent disruptions against a Titus rate, so the
//! view never allows a disruption the engine would refuse.

use super::views;
use crate::model::job::Job;
use crate::model::policies::disruption_budget;
use crate::model::run::Run;
use crate::model::time::UnixMillis;
use crate::store::RunRecord;
use std::collections::BTreeMap;

/// A job's disruption budget now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct BudgetView {
    /// Instances Drover may disrupt now (drains, preemption, restarts,
    /// updates).
    pub allowed_now: u32,
    /// Why no more may be; null when nothing holds the job.
    pub held_by: Option<String>,
    /// Drain handovers in progress, a disruption each (the old run serves
    /// until a replacement does): `<pod>: <the replacement's state>`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub handovers: Vec<String>,
}

/// `job`'s budget at `now`, from its stored runs (any order).
pub fn budget_view(job: &Job, runs: &[RunRecord], now: UnixMillis) -> BudgetView {
    let mut histories: BTreeMap<u32, Vec<&Run>> = BTreeMap::new();
    for record in runs {
        histories
            .entry(record.task_id.instance.instance)
            .or_default()
            .push(&record.run);
    }
    let histories: Vec<(u32, Vec<Run>)> = histories
        .into_iter()
        .map(|(instance, mut runs)| {
            runs.sort_by_key(|r| r.run);
            (instance, runs.into_iter().cloned().collect())
        })
        .collect();
    let availability = disruption_budget::job_availability(
        job,
        histories.iter().map(|(i, runs)| (*i, runs.as_slice())),
        now,
    );
    let allowance = disruption_budget::allowance(&job.spec, availability, now);
    BudgetView {
        allowed_now: allowance.disruptions,
        held_by: allowance.held_by,
        handovers: handovers(job, runs),
    }
}

/// The job's drain handovers in progress (no replacement serves yet),
/// each said as `<pod>: <why its old run still runs>`. Each is counted
/// above already: its instance's latest run, the replacement, does not
/// serve yet.
fn handovers(job: &Job, runs: &[RunRecord]) -> Vec<String> {
    views::by_instance(job, runs)
        .into_iter()
        .filter_map(|(instance, history)| {
            views::handover_note(job, instance, history)
                .map(|note| format!("{}: {note}", job.instance_id(instance).pod_name()))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::ids::{AgentId, InstanceId, JobId, TaskId};
    use crate::model::policies::preemption::PREEMPTED_REASON;
    use crate::model::run::DRAIN_REASON;
    use crate::model::state::PodState;
    use drover_proto::v1::task_status::Reason;

    const HOUR_MS: i64 = 3_600_000;
    const NOW: UnixMillis = 100 * HOUR_MS;

    /// A 2-instance service, at most 1 unavailable, a Titus rate of one
    /// disruption an hour; its containers health-checked if `checked`.
    fn job(checked: bool) -> Job {
        let mut container = serde_json::json!({"command": {"value": "sleep 100"}});
        if checked {
            container["liveness_check"] = serde_json::json!({
                "enabled": true, "type": "COMMAND", "command_check": {"command": "true"}
            });
        }
        let spec = serde_json::from_value(serde_json::json!({
            "type": "SERVICE", "name": "s", "instance_count": 2,
            "sla": {"maximum_unavailable_instances": 1},
            "disruption_budget": {
                "rate": {"per_interval": {"interval_ms": HOUR_MS, "limit": 1}}
            },
            "default_spec": {"containers": [container]}
        }))
        .unwrap();
        Job::new(JobId::parse("j").unwrap(), spec, 0)
    }

    fn record(instance: u32, run: u32, state: PodState, healthy: Option<bool>) -> RunRecord {
        RunRecord {
            task_id: TaskId::new(InstanceId::new(JobId::parse("j").unwrap(), instance), run),
            run: Run {
                state,
                healthy,
                ..Run::launching(run, AgentId::new("a1"), 1, 0)
            },
            hostname: None,
            message: None,
            ports: Vec::new(),
            image: None,
        }
    }

    /// Instance 0's run 0 killed by Drover for `reason` `ago` ms before
    /// now (its replacement, run 1, RUNNING); instance 1 RUNNING.
    fn disrupted(reason: Reason, ago: i64) -> Vec<RunRecord> {
        let mut moved = record(0, 0, PodState::Killed, None);
        moved.run.kill_requested_at = Some(NOW - ago);
        moved.run.kill_reason = Some(reason);
        vec![
            record(1, 0, PodState::Running, None),
            record(0, 1, PodState::Running, None),
            moved,
        ]
    }

    #[test]
    fn the_rates_recent_disruptions_and_health_hold_the_view_as_the_engine() {
        // (job health-checked, runs) -> allowed now, held by (part of)
        let running = vec![
            record(0, 0, PodState::Running, None),
            record(1, 0, PodState::Running, None),
        ];
        let table = [
            (false, running.clone(), 1, None),
            // Every instance runs again, but the hour has had its one.
            (
                false,
                disrupted(DRAIN_REASON, 10 * 60_000),
                0,
                Some("rate interval"),
            ),
            (
                false,
                disrupted(PREEMPTED_REASON, 10 * 60_000),
                0,
                Some("rate interval"),
            ),
            (false, disrupted(DRAIN_REASON, 2 * HOUR_MS), 1, None),
            // RUNNING without a health verdict yet is not available.
            (true, running, 0, Some("sla.maximum_unavailable_instances")),
        ];
        for (checked, runs, allowed, held_by) in table {
            let job = job(checked);
            let view = budget_view(&job, &runs, NOW);
            assert_eq!(view.allowed_now, allowed, "{runs:?}");
            match held_by {
                Some(part) => assert!(
                    view.held_by.as_deref().is_some_and(|h| h.contains(part)),
                    "{view:?}"
                ),
                None => assert_eq!(view.held_by, None),
            }
        }
    }
}
