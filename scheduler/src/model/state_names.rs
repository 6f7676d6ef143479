//! The spellings of job and pod states a user may filter by, and their
//! canonical (proto) names. A filter takes the seed's enum names
//! (`JOB_STATE_RUNNING`, `POD_STATE_RUNNING`), as a Peloton client sends
//! them, and Drover's short forms (`RUNNING`), as tables show them, in any
//! case (`running`): people type what they read. Every value of the seed's
//! enums but `*_INVALID` is accepted, including states Drover never
//! reports (they match nothing); anything else is an error naming the
//! valid values, never an empty answer.

/// Peloton v1alpha `JobState` values (`peloton-v1alpha-proto-enums.tsv`),
/// `JOB_STATE_INVALID` left out.
pub const JOB_STATES: [&str; 9] = [
    "JOB_STATE_INITIALIZED",
    "JOB_STATE_PENDING",
    "JOB_STATE_RUNNING",
    "JOB_STATE_SUCCEEDED",
    "JOB_STATE_FAILED",
    "JOB_STATE_KILLED",
    "JOB_STATE_KILLING",
    "JOB_STATE_UNINITIALIZED",
    "JOB_STATE_DELETED",
];

/// Peloton v1alpha `PodState` values, `POD_STATE_INVALID` left out.
pub const POD_STATES: [&str; 17] = [
    "POD_STATE_INITIALIZED",
    "POD_STATE_PENDING",
    "POD_STATE_READY",
    "POD_STATE_PLACING",
    "POD_STATE_PLACED",
    "POD_STATE_LAUNCHING",
    "POD_STATE_LAUNCHED",
    "POD_STATE_STARTING",
    "POD_STATE_RUNNING",
    "POD_STATE_SUCCEEDED",
    "POD_STATE_FAILED",
    "POD_STATE_LOST",
    "POD_STATE_KILLING",
    "POD_STATE_KILLED",
    "POD_STATE_PREEMPTING",
    "POD_STATE_DELETED",
    "POD_STATE_RESERVED",
];

/// A state filter value that is no state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{value}' is not a {kind} state; use one of {} (or {prefix}<STATE>), in any case", short_names(.valid, .prefix))]
pub struct StateNameError {
    /// What the user sent.
    pub value: String,
    /// "job" or "pod".
    pub kind: &'static str,
    /// The enum prefix, `JOB_STATE_` or `POD_STATE_`.
    pub prefix: &'static str,
    /// The canonical names.
    pub valid: &'static [&'static str],
}

fn short_names(valid: &[&str], prefix: &str) -> String {
    valid
        .iter()
        .map(|v| v.strip_prefix(prefix).unwrap_or(v))
        .collect::<Vec<_>>()
        .join(", ")
}

fn canonical(
    value: &str,
    kind: &'static str,
    prefix: &'static str,
    valid: &'static [&'static str],
) -> Result<&'static str, StateNameError> {
    let upper = value.trim().to_ascii_uppercase();
    let short = upper.strip_prefix(prefix).unwrap_or(&upper);
    valid
        .iter()
        .copied()
        .find(|v| v.strip_prefix(prefix) == Some(short))
        .ok_or_else(|| StateNameError {
            value: value.to_owned(),
            kind,
            prefix,
            valid,
        })
}

/// `running`, `RUNNING`, `JOB_STATE_RUNNING` → `JOB_STATE_RUNNING`.
pub fn job_state(value: &str) -> Result<&'static str, StateNameError> {
    canonical(value, "job", "JOB_STATE_", &JOB_STATES)
}

/// `running`, `RUNNING`, `POD_STATE_RUNNING` → `POD_STATE_RUNNING`.
pub fn pod_state(value: &str) -> Result<&'static str, StateNameError> {
    canonical(value, "pod", "POD_STATE_", &POD_STATES)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::state::{JobState, ALL_POD_STATES};

    #[test]
    fn short_proto_and_lower_case_spellings_name_the_same_state() {
        for s in [
            "RUNNING",
            "running",
            "JOB_STATE_RUNNING",
            "job_state_Running",
        ] {
            assert_eq!(job_state(s).unwrap(), "JOB_STATE_RUNNING", "{s}");
        }
        assert_eq!(pod_state("killed").unwrap(), "POD_STATE_KILLED");
        assert_eq!(pod_state("POD_STATE_PLACING").unwrap(), "POD_STATE_PLACING");
    }

    #[test]
    fn unknown_states_and_the_wrong_kind_are_refused_naming_the_valid_ones() {
        let err = job_state("RUNING").unwrap_err();
        assert_eq!(
            err.to_string(),
            "'RUNING' is not a job state; use one of INITIALIZED, PENDING, RUNNING, \
             SUCCEEDED, FAILED, KILLED, KILLING, UNINITIALIZED, DELETED \
             (or JOB_STATE_<STATE>), in any case"
        );
        assert!(job_state("POD_STATE_RUNNING").is_err());
        assert!(job_state("JOB_STATE_INVALID").is_err());
        assert!(job_state("").is_err());
        assert!(pod_state("READY_").is_err());
    }

    #[test]
    fn every_state_drover_reports_is_a_valid_filter() {
        for s in ALL_POD_STATES {
            assert_eq!(pod_state(s.as_str()).unwrap(), s.as_str());
        }
        for s in [
            JobState::Initialized,
            JobState::Pending,
            JobState::Running,
            JobState::Succeeded,
            JobState::Failed,
            JobState::Killed,
            JobState::Killing,
        ] {
            assert_eq!(job_state(s.as_str()).unwrap(), s.as_str());
        }
    }
}
