//! Drover's identifiers: jobs, instances (pods), runs (tasks) and the
//! Mesos ids the scheduler keeps. Newtypes so that a job id is never passed
//! where a task id is expected; the string forms are fixed here and nowhere
//! else (`<job-id>-<instance>` for a pod name, `<job-id>-<instance>-<run>`
//! for a task id).

use std::fmt;
use std::sync::Arc;

/// The longest job id a user may choose. Task ids must stay under Mesos'
/// 255-character limit (reference 2.6) with room for `-<instance>-<run>`.
pub const MAX_JOB_ID_LEN: usize = 128;

/// A job's id: a UUID unless the client chose one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub String);

/// One instance (pod) of a job, numbered from 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId {
    /// The job the instance belongs to.
    pub job: JobId,
    /// The instance number, `0..instance_count`.
    pub instance: u32,
}

/// One run (Mesos task) of an instance: `<job-id>-<instance>-<run>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    /// The instance this run belongs to.
    pub instance: InstanceId,
    /// The run number, starting at 0 and increasing by one per launch.
    pub run: u32,
}

/// A Mesos agent's id. Shared, not copied: every run and offer names its
/// agent, and a fleet has far fewer agents than runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId(Arc<str>);

/// A Mesos offer's id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OfferId(pub String);

impl AgentId {
    /// The agent id `value`.
    pub fn new(value: &str) -> Self {
        AgentId(Arc::from(value))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl OfferId {
    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a string is not a Drover id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The job id is empty, too long or has a character outside
    /// `[A-Za-z0-9_.-]` (Mesos task ids must not contain `/` and the like).
    #[error("job id '{0}' must be 1 to 128 characters of A-Z a-z 0-9 _ . -")]
    BadJobId(String),
    /// A pod name or task id does not end in the expected numeric parts.
    #[error("'{0}' is not a Drover {1}")]
    Malformed(String, &'static str),
}

impl JobId {
    /// A fresh random job id.
    pub fn random() -> Self {
        JobId(uuid::Uuid::new_v4().to_string())
    }

    /// Checks a client-chosen job id.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let ok = !s.is_empty()
            && s.len() <= MAX_JOB_ID_LEN
            && s != "."
            && s != ".."
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if ok {
            Ok(JobId(s.to_owned()))
        } else {
            Err(IdError::BadJobId(s.to_owned()))
        }
    }

    /// The job id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl InstanceId {
    /// Instance `instance` of `job`.
    pub fn new(job: JobId, instance: u32) -> Self {
        InstanceId { job, instance }
    }

    /// Parses a pod name `<job-id>-<instance>`.
    pub fn parse_pod_name(s: &str) -> Result<Self, IdError> {
        let bad = || IdError::Malformed(s.to_owned(), "pod name");
        let (job, instance) = s.rsplit_once('-').ok_or_else(bad)?;
        let instance = instance.parse().map_err(|_| bad())?;
        let job = JobId::parse(job).map_err(|_| bad())?;
        Ok(InstanceId { job, instance })
    }

    /// The pod name, `<job-id>-<instance>`.
    pub fn pod_name(&self) -> String {
        format!("{}-{}", self.job, self.instance)
    }
}

impl TaskId {
    /// Run `run` of `instance`.
    pub fn new(instance: InstanceId, run: u32) -> Self {
        TaskId { instance, run }
    }

    /// Parses a Mesos task id written by [`TaskId`]'s `Display`.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let bad = || IdError::Malformed(s.to_owned(), "task id");
        let (pod, run) = s.rsplit_once('-').ok_or_else(bad)?;
        let run = run.parse().map_err(|_| bad())?;
        let instance = InstanceId::parse_pod_name(pod).map_err(|_| bad())?;
        Ok(TaskId { instance, run })
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}-{}",
            self.instance.job, self.instance.instance, self.run
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_round_trip_even_when_the_job_id_has_dashes() {
        let job = JobId::random();
        let task = TaskId::new(InstanceId::new(job.clone(), 12), 3);
        let text = task.to_string();
        assert_eq!(text, format!("{job}-12-3"));
        assert_eq!(TaskId::parse(&text).unwrap(), task);
    }

    #[test]
    fn malformed_task_ids_are_rejected() {
        for bad in ["", "job", "job-1", "job-x-1", "-1-2", "a/b-1-2"] {
            assert!(TaskId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn job_ids_reject_path_characters() {
        assert!(JobId::parse("ok_job-1.2").is_ok());
        assert!(JobId::parse("a/b").is_err());
        assert!(JobId::parse("..").is_err());
        assert!(JobId::parse(&"x".repeat(129)).is_err());
    }
}
