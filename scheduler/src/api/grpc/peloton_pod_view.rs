//! Drover's pods as Peloton v1alpha writes them: `PodStatus`, `PodInfo`,
//! `PodSummary` and `PodEvent` from store records, states by the proto's
//! own enum names (`POD_STATE_RUNNING`). The same facts as the JSON views
//! ([`crate::api::views`]), whose rules (desired state, health, failure
//! count) are reused, not restated. Pure.

use crate::api::{rfc3339, views};
use crate::model::change::PendingInfo;
use crate::model::ids::{InstanceId, TaskId};
use crate::model::job::Job;
use crate::model::state::PodState;
use crate::store::{PodEventRecord, RunRecord};
use drover_seed_api::peloton::api::v1alpha::{peloton, pod};
use std::collections::BTreeMap;
use std::ops::Range;

/// The proto's `PodState` of a Drover pod state. The model's names are the
/// proto's (a test checks every one), so nothing is lost in between.
pub fn pod_state(state: PodState) -> pod::PodState {
    pod::PodState::from_str_name(state.as_str()).unwrap_or(pod::PodState::Invalid)
}

/// The proto's name of a Drover pod state, as `pod_stats` keys it.
pub fn state_name(state: PodState) -> &'static str {
    pod_state(state).as_str_name()
}

fn container_state(state: PodState) -> pod::ContainerState {
    match state {
        PodState::Pending => pod::ContainerState::Pending,
        PodState::Launching | PodState::Launched => pod::ContainerState::Launched,
        PodState::Starting => pod::ContainerState::Starting,
        PodState::Running => pod::ContainerState::Running,
        PodState::Killing => pod::ContainerState::Killing,
        PodState::Succeeded => pod::ContainerState::Succeeded,
        PodState::Failed | PodState::Lost => pod::ContainerState::Failed,
        PodState::Killed => pod::ContainerState::Killed,
    }
}

/// `views::health`'s verdict as the proto's `HealthState`.
fn health_state(job: &Job, instance: u32, healthy: Option<bool>) -> pod::HealthState {
    match views::health(views::is_checked(job, instance), healthy) {
        "HEALTHY" => pod::HealthState::Healthy,
        "UNHEALTHY" => pod::HealthState::Unhealthy,
        "UNKNOWN" => pod::HealthState::Unknown,
        _ => pod::HealthState::Disabled,
    }
}

fn desired_state(job: &Job, instance: u32) -> pod::PodState {
    pod::PodState::from_str_name(views::desired_pod_state(job, instance))
        .unwrap_or(pod::PodState::Invalid)
}

fn entity_version(v: u64) -> Option<peloton::EntityVersion> {
    Some(super::peloton_views::version(v))
}

/// A `PodID`: the run's Mesos task id.
pub fn pod_id(task: &TaskId) -> Option<peloton::PodId> {
    Some(peloton::PodId {
        value: task.to_string(),
    })
}

fn pod_name(pod: &InstanceId) -> Option<peloton::PodName> {
    Some(peloton::PodName {
        value: pod.pod_name(),
    })
}

/// The run before `task` of the same pod, if any.
fn previous(task: &TaskId) -> Option<peloton::PodId> {
    task.run
        .checked_sub(1)
        .and_then(|run| pod_id(&TaskId::new(task.instance.clone(), run)))
}

/// The pod's one container, as `containers_status` lists it.
fn container_status(
    job: &Job,
    record: Option<&RunRecord>,
    instance: u32,
    failure_count: u32,
) -> pod::ContainerStatus {
    let spec = job.spec.pod_spec(instance);
    let name = spec
        .containers
        .first()
        .map(|c| c.name.clone())
        .unwrap_or_default();
    let mut status = pod::ContainerStatus {
        name,
        state: container_state(record.map_or(PodState::Pending, |r| r.run.state)) as i32,
        failure_count,
        healthy: Some(pod::HealthStatus {
            state: health_state(job, instance, record.and_then(|r| r.run.healthy)) as i32,
            output: String::new(),
        }),
        ..Default::default()
    };
    // The image the run's executor resolved (`name@sha256:...`), else the
    // one the spec asks for (simulated agents resolve none).
    status.image = record
        .and_then(|r| r.image.as_ref())
        .and_then(|i| i.reference())
        .or_else(|| spec.image().map(str::to_owned))
        .unwrap_or_default();
    if let Some(record) = record {
        status.ports = record.ports.iter().cloned().collect();
        status.message = record.message.clone().unwrap_or_default();
        status.start_time = record
            .run
            .started_at
            .map(rfc3339::format)
            .unwrap_or_default();
        status.completion_time = record
            .run
            .completed_at
            .map(rfc3339::format)
            .unwrap_or_default();
    }
    status
}

/// `PodStatus` of one run, with the instance's failure count.
pub fn run_status(job: &Job, record: &RunRecord, failure_count: usize) -> pod::PodStatus {
    let instance = record.task_id.instance.instance;
    let run = &record.run;
    let failures = u32::try_from(failure_count).unwrap_or(u32::MAX);
    // A kill the scheduler decided on (the runtime limit) explains the end
    // better than the agent's generic reason for it (as the JSON view).
    let kill_reason = run.kill_reason.filter(|_| run.state.is_terminal());
    pod::PodStatus {
        state: pod_state(run.state) as i32,
        pod_id: pod_id(&record.task_id),
        start_time: run.started_at.map(rfc3339::format).unwrap_or_default(),
        completion_time: run.completed_at.map(rfc3339::format).unwrap_or_default(),
        host: record.hostname.clone().unwrap_or_default(),
        containers_status: vec![container_status(job, Some(record), instance, failures)],
        desired_state: desired_state(job, instance) as i32,
        message: record.message.clone().unwrap_or_default(),
        reason: kill_reason
            .or(run.reason)
            .map(|r| r.as_str_name().to_owned())
            .unwrap_or_default(),
        failure_count: failures,
        version: entity_version(run.spec_version),
        desired_version: entity_version(job.desired_spec(instance).1),
        agent_id: run.agent.as_ref().map(|a| drover_proto::v1::AgentId {
            value: a.as_str().to_owned(),
        }),
        prev_pod_id: previous(&record.task_id),
        ..Default::default()
    }
}

/// `PodStatus` of an instance with no run yet; why it waits for a host,
/// when known, is its message.
pub fn pending_status(job: &Job, instance: u32, pending: Option<&PendingInfo>) -> pod::PodStatus {
    pod::PodStatus {
        state: pod::PodState::Pending as i32,
        desired_state: desired_state(job, instance) as i32,
        containers_status: vec![container_status(job, None, instance, 0)],
        message: pending.map(|p| p.reason.clone()).unwrap_or_default(),
        // No run yet: it will run the spec it should.
        version: entity_version(job.desired_spec(instance).1),
        desired_version: entity_version(job.desired_spec(instance).1),
        ..Default::default()
    }
}

/// The current `PodStatus` of `instance` from its runs, oldest first. A
/// pod whose last run ended and that waits for a host again says why in
/// its message.
pub fn current_status(
    job: &Job,
    instance: u32,
    history: &[RunRecord],
    pending: Option<&PendingInfo>,
) -> pod::PodStatus {
    match views::serving_record(job, instance, history) {
        None => pending_status(job, instance, pending),
        Some(last) => {
            let mut status = run_status(job, last, views::failure_count(history));
            if let (Some(info), true) = (pending, last.run.state.is_terminal()) {
                status.message = info.reason.clone();
            }
            if let Some(note) = views::handover_note(job, instance, history) {
                status.message = note;
            }
            status
        }
    }
}

/// `PodInfo`: the status, and the spec unless `status_only`.
pub fn pod_info(
    job: &Job,
    instance: u32,
    status: pod::PodStatus,
    status_only: bool,
) -> pod::PodInfo {
    let spec = (!status_only).then(|| {
        // The spec the pod should run (mid-update, an instance not reached
        // yet still runs the old one).
        let pod = job
            .desired_pod(instance)
            .unwrap_or_else(|| job.spec.pod_spec(instance));
        let mut spec = super::peloton_spec::pod_spec_to_proto(&pod);
        spec.pod_name = pod_name(&job.instance_id(instance));
        spec
    });
    pod::PodInfo {
        spec,
        status: Some(status),
    }
}

/// `GetPodResponse`'s parts: the current run, then previous runs newest
/// first, at most `limit` of them (0: all).
pub fn pod_runs(
    job: &Job,
    instance: u32,
    history: &[RunRecord],
    pending: Option<&PendingInfo>,
    status_only: bool,
    limit: u32,
) -> (pod::PodInfo, Vec<pod::PodInfo>) {
    let current = pod_info(
        job,
        instance,
        current_status(job, instance, history, pending),
        status_only,
    );
    let failures = views::failure_count(history);
    let take = if limit == 0 {
        usize::MAX
    } else {
        limit as usize
    };
    let previous = history
        .iter()
        .rev()
        .skip(1)
        .take(take)
        .map(|run| pod_info(job, instance, run_status(job, run, failures), status_only))
        .collect();
    (current, previous)
}

/// `PodSummary` of each instance of `job` in `range` (clamped to the
/// job's instances); `runs` by instance then run, as the store lists them.
pub fn pod_summaries(
    job: &Job,
    runs: &[RunRecord],
    pending: &BTreeMap<u32, PendingInfo>,
    range: Range<u32>,
) -> Vec<pod::PodSummary> {
    views::by_instance(job, runs)
        .into_iter()
        .filter(|(instance, _)| range.contains(instance))
        .map(|(instance, history)| pod::PodSummary {
            pod_name: pod_name(&job.instance_id(instance)),
            status: Some(current_status(
                job,
                instance,
                history,
                pending.get(&instance),
            )),
        })
        .collect()
}

/// `PodEvent`.
pub fn pod_event(job: &Job, event: &PodEventRecord) -> pod::PodEvent {
    let instance = event.task_id.instance.instance;
    pod::PodEvent {
        pod_id: pod_id(&event.task_id),
        actual_state: state_name(event.state).to_owned(),
        desired_state: views::desired_pod_state(job, instance).to_owned(),
        timestamp: rfc3339::format(event.timestamp),
        version: entity_version(job.version),
        agent_id: event.agent_id.clone().unwrap_or_default(),
        hostname: event.hostname.clone().unwrap_or_default(),
        message: event.message.clone().unwrap_or_default(),
        reason: event.reason.clone().unwrap_or_default(),
        prev_pod_id: previous(&event.task_id),
        healthy: health_state(job, instance, event.healthy)
            .as_str_name()
            .to_owned(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ids::{AgentId, JobId};
    use crate::model::run::Run;
    use crate::model::spec::JobSpec;
    use crate::model::state::ALL_POD_STATES;

    fn job(instances: u32) -> Job {
        let spec: JobSpec = serde_json::from_value(serde_json::json!({
            "name": "web",
            "type": "SERVICE",
            "instance_count": instances,
            "default_spec": {"containers": [{
                "name": "c",
                "resource": {"cpu_limit": 0.1, "mem_limit_mb": 16.0},
                "command": {"value": "sleep 60"}
            }]}
        }))
        .unwrap();
        Job::new(JobId("j".into()), spec, 1_000)
    }

    fn record(instance: u32, run: u32, state: PodState) -> RunRecord {
        let task = TaskId::new(InstanceId::new(JobId("j".into()), instance), run);
        let mut r = Run::launching(run, AgentId::new("a1"), 1, 2_000);
        r.state = state;
        RunRecord {
            task_id: task,
            run: r,
            hostname: Some("host-1".into()),
            message: Some("ok".into()),
            ports: vec![("http".into(), 31000)],
            image: None,
        }
    }

    /// A pod handing over (a drain) shows its serving run, not the
    /// replacement still starting, and says where the replacement starts;
    /// once the replacement runs, the pod is the replacement.
    #[test]
    fn a_pod_handing_over_shows_its_serving_run_and_where_the_replacement_starts() {
        let job = job(1);
        let mut old = record(0, 0, PodState::Running);
        old.run.handing_over = true;
        let mut new = record(0, 1, PodState::Launching);
        new.hostname = Some("host-2".into());
        let status = current_status(&job, 0, &[old.clone(), new.clone()], None);
        assert_eq!(status.state(), pod::PodState::Running);
        assert_eq!(status.pod_id.as_ref().unwrap().value, "j-0-0");
        assert_eq!(status.host, "host-1");
        assert_eq!(
            status.message,
            "handing over (its host drains): replacement j-0-1 is starting on host host-2"
        );
        new.run.state = PodState::Running;
        let status = current_status(&job, 0, &[old, new], None);
        assert_eq!(status.pod_id.as_ref().unwrap().value, "j-0-1");
        assert_eq!(status.host, "host-2");
        assert_eq!(status.message, "ok");
    }

    #[test]
    fn a_container_shows_the_image_its_run_resolved_as_name_at_digest() {
        let mut job = job(1);
        job.spec.default_spec.containers[0].image = Some("drover-test/busybox:1".into());
        let mut running = record(0, 0, PodState::Running);
        let image =
            |job: &Job, r: &RunRecord| run_status(job, r, 0).containers_status[0].image.clone();
        assert_eq!(image(&job, &running), "drover-test/busybox:1", "asked");
        let digest = format!("sha256:{}", "a7".repeat(32));
        running.image = Some(crate::model::image::RunImage {
            name: Some("drover-test/busybox:1".into()),
            digest: Some(digest.clone()),
        });
        assert_eq!(
            image(&job, &running),
            format!("drover-test/busybox:1@{digest}")
        );
    }

    #[test]
    fn every_drover_pod_state_is_a_proto_state_of_the_same_name() {
        for state in ALL_POD_STATES {
            assert_ne!(pod_state(state), pod::PodState::Invalid, "{state:?}");
            assert_eq!(state_name(state), state.as_str());
        }
    }

    #[test]
    fn a_run_is_its_task_id_on_its_host_after_the_previous_run() {
        let job = job(1);
        let status = run_status(&job, &record(0, 2, PodState::Running), 1);
        assert_eq!(status.state(), pod::PodState::Running);
        assert_eq!(status.pod_id.as_ref().unwrap().value, "j-0-2");
        assert_eq!(status.prev_pod_id.as_ref().unwrap().value, "j-0-1");
        assert_eq!(status.desired_state(), pod::PodState::Running);
        assert_eq!(status.host, "host-1");
        assert_eq!(status.agent_id.as_ref().unwrap().value, "a1");
        assert_eq!(status.failure_count, 1);
        let c = &status.containers_status[0];
        assert_eq!(c.name, "c");
        assert_eq!(c.state(), pod::ContainerState::Running);
        assert_eq!(c.ports.get("http"), Some(&31000));
        assert_eq!(
            c.healthy.as_ref().unwrap().state(),
            pod::HealthState::Disabled
        );
    }

    #[test]
    fn a_first_run_has_no_previous_and_a_pod_without_runs_is_pending_with_its_reason() {
        let job = job(1);
        assert!(run_status(&job, &record(0, 0, PodState::Launching), 0)
            .prev_pod_id
            .is_none());
        let why = PendingInfo {
            reason: "no offer fits".into(),
            metrics: "{}".into(),
        };
        let status = current_status(&job, 0, &[], Some(&why));
        assert_eq!(status.state(), pod::PodState::Pending);
        assert!(status.pod_id.is_none());
        assert_eq!(status.message, "no offer fits");
    }

    #[test]
    fn get_pod_shows_the_current_run_and_previous_ones_newest_first_up_to_the_limit() {
        let job = job(1);
        let history = [
            record(0, 0, PodState::Failed),
            record(0, 1, PodState::Killed),
            record(0, 2, PodState::Running),
        ];
        let (current, previous) = pod_runs(&job, 0, &history, None, true, 0);
        assert_eq!(current.status.unwrap().pod_id.unwrap().value, "j-0-2");
        assert!(current.spec.is_none(), "status_only leaves the spec out");
        let ids: Vec<_> = previous
            .iter()
            .map(|p| p.status.clone().unwrap().pod_id.unwrap().value)
            .collect();
        assert_eq!(ids, ["j-0-1", "j-0-0"]);
        let (current, previous) = pod_runs(&job, 0, &history, None, false, 1);
        assert_eq!(previous.len(), 1);
        assert_eq!(
            current.spec.unwrap().pod_name.unwrap().value,
            "j-0",
            "the spec names its pod"
        );
    }

    #[test]
    fn summaries_keep_to_the_range_and_name_every_pod() {
        let job = job(4);
        let runs = [
            record(0, 0, PodState::Running),
            record(2, 0, PodState::Killed),
            record(3, 0, PodState::Running),
        ];
        let pods = pod_summaries(&job, &runs, &BTreeMap::new(), 1..3);
        let names: Vec<_> = pods
            .iter()
            .map(|p| p.pod_name.clone().unwrap().value)
            .collect();
        assert_eq!(names, ["j-1", "j-2"]);
        assert_eq!(
            pods[0].status.as_ref().unwrap().state(),
            pod::PodState::Pending
        );
        assert_eq!(
            pods[1].status.as_ref().unwrap().state(),
            pod::PodState::Killed
        );
    }

    #[test]
    fn an_event_names_its_states_as_the_proto_does() {
        let job = job(1);
        let event = PodEventRecord {
            task_id: TaskId::new(InstanceId::new(JobId("j".into()), 0), 1),
            state: PodState::Killed,
            mesos_state: Some("TASK_KILLED".into()),
            reason: Some("REASON_TASK_KILLED_DURING_LAUNCH".into()),
            message: Some("killed".into()),
            healthy: None,
            ready: None,
            agent_id: Some("a1".into()),
            hostname: Some("host-1".into()),
            timestamp: 0,
            revision: 7,
        };
        let e = pod_event(&job, &event);
        assert_eq!(e.pod_id.unwrap().value, "j-0-1");
        assert_eq!(e.prev_pod_id.unwrap().value, "j-0-0");
        assert_eq!(e.actual_state, "POD_STATE_KILLED");
        assert_eq!(e.desired_state, "POD_STATE_RUNNING");
        assert_eq!(e.timestamp, "1970-01-01T00:00:00.000Z");
        assert_eq!(e.healthy, "HEALTH_STATE_DISABLED");
        assert_eq!(e.hostname, "host-1");
    }
}
