//! The jobs and pods by state, as gauges counted from the [`JobBoard`]
//! when `/metrics` is read: the board already keeps each job's instances
//! by state, so a scrape is one pass over the jobs under its read lock,
//! with nothing kept in step as pods change.
//!
//! Every state is reported, those with none as 0, so that a series does
//! not vanish when its last pod leaves a state.

use super::board::JobBoard;
use crate::model::host::HostState;
use crate::model::state::{ALL_JOB_STATES, ALL_POD_STATES};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use std::sync::Arc;

/// `drover_jobs{state}`, `drover_pods{state}` and `drover_hosts{state}`
/// from the board.
#[derive(Debug)]
pub struct StateGauges(pub Arc<JobBoard>);

/// Counts of the jobs and pods (current runs of instances) by state, in
/// the order of [`ALL_JOB_STATES`] and [`ALL_POD_STATES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StateCounts {
    /// Jobs by state.
    pub jobs: [u64; ALL_JOB_STATES.len()],
    /// Pods by state.
    pub pods: [u64; ALL_POD_STATES.len()],
}

/// Counts what `board` holds.
pub fn count(board: &JobBoard) -> StateCounts {
    let mut counts = StateCounts::default();
    board.for_each(|view| {
        let state = view.state();
        if let Some(i) = ALL_JOB_STATES.iter().position(|s| *s == state) {
            counts.jobs[i] += 1;
        }
        for (i, pod) in ALL_POD_STATES.iter().enumerate() {
            counts.pods[i] += u64::from(view.instances.in_state(*pod));
        }
    });
    counts
}

fn encode_by_state(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    states: impl Iterator<Item = (&'static str, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (state, n) in states {
        let labels = [("state", state)];
        ConstGauge::new(n).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for StateGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counts = count(&self.0);
        encode_by_state(
            &mut encoder,
            "drover_jobs",
            "Jobs by state.",
            ALL_JOB_STATES
                .iter()
                .zip(counts.jobs)
                .map(|(s, n)| (s.as_str(), n)),
        )?;
        encode_by_state(
            &mut encoder,
            "drover_pods",
            "Pods (each instance's current run) by state.",
            ALL_POD_STATES
                .iter()
                .zip(counts.pods)
                .map(|(s, n)| (s.as_str(), n)),
        )?;
        let hosts = self.0.hosts();
        encode_by_state(
            &mut encoder,
            "drover_hosts",
            "Hosts Drover has seen, by maintenance state.",
            ALL_HOST_STATES.iter().map(|state| {
                let n = hosts.iter().filter(|h| h.state == *state).count() as u64;
                (state.peloton_name(), n)
            }),
        )
    }
}

/// Every host state, in the order of their moves.
const ALL_HOST_STATES: [HostState; 4] = [
    HostState::Up,
    HostState::Draining,
    HostState::Drained,
    HostState::Down,
];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::model::ids::JobId;
    use crate::model::job::{Job, JobView};
    use crate::model::state::{InstanceCounts, InstanceOutcome, PodState};

    fn view(id: &str, pods: &[(PodState, InstanceOutcome)]) -> (JobId, Option<JobView>) {
        let spec = serde_json::from_value(serde_json::json!({
            "type": "BATCH", "name": "t", "instance_count": pods.len(),
            "default_spec": {"containers": [{"command": {"value": "true"}}]}
        }))
        .unwrap();
        let mut instances = InstanceCounts::default();
        for (state, outcome) in pods {
            instances.add(*state, *outcome, *state != PodState::Pending);
        }
        let job_id = JobId::parse(id).unwrap();
        let job = Job::new(job_id.clone(), spec, 0);
        (job_id, Some(JobView { job, instances }))
    }

    #[test]
    fn counts_jobs_and_pods_by_state_at_scrape() {
        let board = Arc::new(JobBoard::default());
        let running = (PodState::Running, InstanceOutcome::Running);
        let pending = (PodState::Pending, InstanceOutcome::Waiting);
        board.publish(vec![
            view(
                "11111111-1111-4111-8111-111111111111",
                &[running, running, pending],
            ),
            view("22222222-2222-4222-8222-222222222222", &[pending]),
        ]);
        let metrics = Metrics::default();
        metrics.register_collector(StateGauges(board.clone()));
        let text = metrics.render();
        assert!(text.contains("# TYPE drover_pods gauge\n"), "{text}");
        assert!(
            text.contains("drover_pods{state=\"POD_STATE_RUNNING\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("drover_pods{state=\"POD_STATE_PENDING\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("drover_pods{state=\"POD_STATE_LOST\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("drover_jobs{state=\"JOB_STATE_RUNNING\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("drover_jobs{state=\"JOB_STATE_KILLED\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("drover_hosts{state=\"HOST_STATE_DRAINING\"} 0\n"),
            "{text}"
        );
        // Live: a scrape after a change sees it.
        board.publish(vec![(
            JobId::parse("22222222-2222-4222-8222-222222222222").unwrap(),
            None,
        )]);
        let text = metrics.render();
        assert!(
            text.contains("drover_pods{state=\"POD_STATE_PENDING\"} 1\n"),
            "{text}"
        );
    }
}
