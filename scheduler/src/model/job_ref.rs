//! How a user points at a job: by its id or by its name. Ids are unique;
//! names are not (Peloton's `GetJobIDFromJobName` answers a list), so a
//! name finds a job only when exactly one job has it. The rule, stated
//! once for every face (JSON API, CLI, and the gRPC services that take a
//! job reference):
//!
//! 1. a job whose id is the reference is that job, whatever other jobs are
//!    named (the id wins);
//! 2. otherwise the one job whose name is the reference;
//! 3. no such job is [`JobRefError::NotFound`]; several are
//!    [`JobRefError::Ambiguous`], listing their ids (as Nomad's prefix
//!    matching does), and nothing is done to any of them.
//!
//! Pure: the caller hands in the jobs it reads (the API, the board's).

use super::ids::JobId;
use super::job::Job;

/// How many matching ids an ambiguity error lists before "and N more".
const LISTED_IDS: usize = 10;

/// A job reference that does not pick exactly one job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobRefError {
    /// No job has this id or this name. Not retryable as such.
    #[error("job '{0}' (no job has this id or name)")]
    NotFound(String),
    /// The reference is no job's id and the name of several jobs: the
    /// caller must use one of their ids.
    #[error("'{name}' is the name of {} jobs ({}); name one by its id", .ids.len(), listed(.ids))]
    Ambiguous {
        /// The name.
        name: String,
        /// The jobs that have it, in the order they were handed in.
        ids: Vec<JobId>,
    },
}

fn listed(ids: &[JobId]) -> String {
    let mut shown: Vec<&str> = ids.iter().take(LISTED_IDS).map(JobId::as_str).collect();
    let more = ids.len().saturating_sub(LISTED_IDS);
    let more = format!("and {more} more");
    if ids.len() > LISTED_IDS {
        shown.push(&more);
    }
    shown.join(", ")
}

/// The job `reference` points at among `jobs` (see the module doc).
pub fn resolve<'a>(
    reference: &str,
    jobs: impl IntoIterator<Item = &'a Job>,
) -> Result<&'a Job, JobRefError> {
    let mut named = Vec::new();
    for job in jobs {
        if job.job_id.as_str() == reference {
            return Ok(job);
        }
        if job.spec.name == reference {
            named.push(job);
        }
    }
    match named.as_slice() {
        [one] => Ok(one),
        [] => Err(JobRefError::NotFound(reference.to_owned())),
        many => Err(JobRefError::Ambiguous {
            name: reference.to_owned(),
            ids: many.iter().map(|j| j.job_id.clone()).collect(),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn job(id: &str, name: &str) -> Job {
        let spec = serde_json::from_value(serde_json::json!({
            "type": "SERVICE", "name": name, "instance_count": 1,
            "default_spec": {"containers": [{"command": {"value": "true"}}]}
        }))
        .unwrap();
        Job::new(JobId::parse(id).unwrap(), spec, 1)
    }

    #[test]
    fn an_id_finds_its_job_and_a_unique_name_finds_its_job() {
        let jobs = [job("a1", "web"), job("b2", "db")];
        assert_eq!(resolve("b2", &jobs).unwrap().job_id.as_str(), "b2");
        assert_eq!(resolve("web", &jobs).unwrap().job_id.as_str(), "a1");
        assert_eq!(
            resolve("nope", &jobs).unwrap_err(),
            JobRefError::NotFound("nope".into())
        );
    }

    #[test]
    fn the_id_wins_over_other_jobs_names_wherever_it_comes() {
        let jobs = [job("x1", "web"), job("x2", "web"), job("web", "other")];
        assert_eq!(resolve("web", &jobs).unwrap().job_id.as_str(), "web");
    }

    #[test]
    fn a_shared_name_is_refused_listing_every_id() {
        let jobs = [job("x1", "web"), job("db", "db"), job("x2", "web")];
        let err = resolve("web", &jobs).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'web' is the name of 2 jobs (x1, x2); name one by its id"
        );
        let many: Vec<_> = (0..12).map(|i| job(&format!("j{i}"), "w")).collect();
        let text = resolve("w", &many).unwrap_err().to_string();
        assert!(text.contains("j9, and 2 more"), "{text}");
    }
}
