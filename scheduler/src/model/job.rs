//! A job as Drover keeps it: its spec, entity version, goal and per-pod
//! controls, with the questions every layer asks of it (is this instance
//! wanted, where does its restart start) and the entity-version check,
//! stated once.

use super::create_workflow::CreateWorkflow;
use super::ids::{InstanceId, JobId};
use super::spec::JobSpec;
use super::state::{InstanceCounts, JobGoal, JobState, PodGoal};
use super::time::UnixMillis;
use super::workflow::JobWorkflows;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A store-wide change counter.
pub type Revision = u64;

/// A job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Its id.
    pub job_id: JobId,
    /// Its spec.
    pub spec: JobSpec,
    /// The entity version: bumped by every change the user makes.
    pub version: u64,
    /// The version of `spec`: the entity version at which it was accepted
    /// (1 at creation). A run records the spec version it runs.
    pub spec_version: u64,
    /// What the user wants.
    pub goal: JobGoal,
    /// When it was created.
    pub created_at: UnixMillis,
    /// When the user last changed it.
    pub updated_at: UnixMillis,
    /// Who made that change (an identity's name; empty when the caller was
    /// anonymous, or for a job stored before identities were recorded).
    pub updated_by: String,
    /// The store revision of that change.
    pub revision: Revision,
    /// Instances the latest job restart may take down at once (0 = all).
    pub restart_batch_size: u32,
    /// The job's creation as a workflow (Peloton `CreateSpec`), if it was
    /// created with one; kept after it ends, to show how it ended.
    pub create: Option<CreateWorkflow>,
    /// Its updates: the current (or last) one, whose other spec some
    /// instances may still run, and a short history.
    pub workflows: JobWorkflows,
    /// Per-pod goals and restarts; pods absent here run with the defaults,
    /// and a pod whose control is the default is absent (see
    /// [`Job::set_pod_control`]).
    pub pods: BTreeMap<u32, PodControl>,
}

/// What the user asked of one pod, beyond the job's goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PodControl {
    /// RUNNING, or KILLED after a pod stop.
    pub goal: PodGoal,
    /// Runs numbered below this are to be replaced (a restart): a live one
    /// is killed, then a new run launched.
    pub restart_from: u32,
}

/// A job and how its instances stand: what readers show of it, as the
/// engine last stored it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobView {
    /// The job.
    pub job: Job,
    /// Its instances by pod state and outcome.
    pub instances: InstanceCounts,
}

impl JobView {
    /// The job's state.
    pub fn state(&self) -> JobState {
        self.instances.job_state(self.job.goal)
    }
}

/// The caller's entity version is not the job's current one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("job {job} is at version {current}, not {expected}")]
pub struct VersionMismatch {
    /// The job.
    pub job: JobId,
    /// Its current version.
    pub current: u64,
    /// The version the caller sent.
    pub expected: u64,
}

impl Job {
    /// A new job at version 1 with goal RUNNING, created at `now`.
    pub fn new(job_id: JobId, spec: JobSpec, now: UnixMillis) -> Self {
        Job {
            job_id,
            spec,
            version: 1,
            spec_version: 1,
            goal: JobGoal::Running,
            created_at: now,
            updated_at: now,
            updated_by: String::new(),
            revision: 0,
            restart_batch_size: 0,
            create: None,
            workflows: JobWorkflows::default(),
            pods: BTreeMap::new(),
        }
    }

    /// Ok when the caller saw the current version, or named none: a write
    /// based on a stale read must change nothing.
    pub fn check_version(&self, expected: Option<u64>) -> Result<(), VersionMismatch> {
        match expected {
            Some(expected) if expected != self.version => Err(VersionMismatch {
                job: self.job_id.clone(),
                current: self.version,
                expected,
            }),
            _ => Ok(()),
        }
    }

    /// Whether `instance` is one of the job's.
    pub fn has_instance(&self, instance: u32) -> bool {
        instance < self.spec.instance_count
    }

    /// The id of `instance`.
    pub fn instance_id(&self, instance: u32) -> InstanceId {
        InstanceId::new(self.job_id.clone(), instance)
    }

    /// A pod's own goal (RUNNING unless the user stopped it).
    pub fn pod_goal(&self, instance: u32) -> PodGoal {
        self.pods
            .get(&instance)
            .map_or(PodGoal::Running, |c| c.goal)
    }

    /// Whether `instance` should be running: the job's goal is RUNNING,
    /// the pod's own goal is not KILLED, and the spec the instance runs has
    /// it (an update adds instances a window at a time, and removes some).
    pub fn wants_running(&self, instance: u32) -> bool {
        self.goal == JobGoal::Running
            && self.pod_goal(instance) == PodGoal::Running
            && instance < self.desired_spec(instance).0.instance_count
    }

    /// Whether `instance` still runs the current workflow's other spec (it
    /// is to be moved and not released yet).
    pub fn runs_other(&self, instance: u32) -> bool {
        self.workflows
            .current
            .as_ref()
            .is_some_and(|w| w.runs_other(instance))
    }

    /// The spec `instance` should run, and its version: the target, or the
    /// current workflow's other spec while the instance waits to move.
    pub fn desired_spec(&self, instance: u32) -> (&JobSpec, u64) {
        self.spec_by(self.runs_other(instance))
    }

    /// The target spec, or (`other`) the current workflow's other one.
    pub fn spec_by(&self, other: bool) -> (&JobSpec, u64) {
        match self.workflows.current.as_deref() {
            Some(w) if other => (&w.other_spec, w.other_version),
            _ => (&self.spec, self.spec_version),
        }
    }

    /// The pod `instance` should run, None when its spec does not have
    /// the instance.
    pub fn desired_pod(&self, instance: u32) -> Option<Cow<'_, super::spec::PodSpec>> {
        let (spec, _) = self.desired_spec(instance);
        (instance < spec.instance_count).then(|| spec.pod_spec(instance))
    }

    /// What replacing the job's spec by `next` would change: each
    /// instance's pod as it should run now against `next`'s.
    pub fn replace_diff(&self, next: &JobSpec) -> super::workflow::SpecDiff {
        let secrets_changed = super::secret::differ(&self.spec.secrets, &next.secrets);
        super::workflow::diff(
            self.instance_span(),
            |i| self.desired_pod(i),
            next,
            secrets_changed,
        )
    }

    /// How many instances the job may have runs for: the larger of its
    /// target's count and, during a workflow, the other spec's.
    pub fn instance_span(&self) -> u32 {
        let other = self
            .workflows
            .current
            .as_ref()
            .map_or(0, |w| w.other_spec.instance_count);
        self.spec.instance_count.max(other)
    }

    /// Sets what the user asked of one pod. The default control is kept
    /// as no entry, so that two jobs that mean the same compare equal
    /// however they got there.
    pub fn set_pod_control(&mut self, instance: u32, control: PodControl) {
        if control == PodControl::default() {
            self.pods.remove(&instance);
        } else {
            self.pods.insert(instance, control);
        }
    }

    /// Runs of `instance` numbered below this are to be replaced.
    pub fn restart_from(&self, instance: u32) -> u32 {
        self.pods.get(&instance).map_or(0, |c| c.restart_from)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn job() -> Job {
        let spec = serde_json::from_value(serde_json::json!({
            "type": "BATCH", "name": "t", "instance_count": 2,
            "default_spec": {"containers": [{"command": {"value": "true"}}]}
        }))
        .unwrap();
        Job::new(JobId::parse("j").unwrap(), spec, 1)
    }

    #[test]
    fn a_stale_entity_version_is_refused_and_none_is_not_checked() {
        let mut job = job();
        job.version = 3;
        assert!(job.check_version(None).is_ok());
        assert!(job.check_version(Some(3)).is_ok());
        let err = job.check_version(Some(2)).unwrap_err();
        assert_eq!((err.current, err.expected), (3, 2));
        assert_eq!(err.to_string(), "job j is at version 3, not 2");
    }

    #[test]
    fn an_instance_is_wanted_when_the_job_and_the_pod_say_so() {
        let mut job = job();
        assert!(job.wants_running(0));
        job.pods.insert(
            1,
            PodControl {
                goal: PodGoal::Killed,
                restart_from: 2,
            },
        );
        assert!(!job.wants_running(1));
        assert_eq!(job.restart_from(1), 2);
        assert_eq!(job.restart_from(0), 0);
        job.goal = JobGoal::Stopped;
        assert!(!job.wants_running(0));
        assert!(job.has_instance(1) && !job.has_instance(2));
    }
}
