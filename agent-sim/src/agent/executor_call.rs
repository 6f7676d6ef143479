//! Checks of executor calls, as a Mesos agent makes them before looking
//! the executor up (reference 4.2 and 4.3), and the refusals with the
//! status code each one gets. Pure.

use drover_proto::v1::executor::{call, Call};
use drover_proto::v1::{task_status, TaskState};

/// Why an executor call is refused; each maps to Mesos' status code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecutorCallError {
    /// 400: the call breaks a rule of reference 4.3.
    #[error("Failed to validate Executor::Call: {0}")]
    Invalid(String),
    /// 400: no framework with this id.
    #[error("Framework cannot be found")]
    FrameworkNotFound,
    /// 400: this agent runs no executor with this id for the framework.
    #[error("Executor cannot be found")]
    ExecutorNotFound,
    /// 403: UPDATE or MESSAGE before the executor subscribed.
    #[error("Executor is not subscribed")]
    NotSubscribed,
    /// 503: the agent's executor endpoint is restarting (a `/sim` fault);
    /// executors retry.
    #[error("Agent has not finished recovery")]
    Recovering,
    /// 501: `type` is UNKNOWN.
    #[error("501 Not Implemented.")]
    NotImplemented,
}

impl ExecutorCallError {
    /// The HTTP status Mesos answers with.
    pub fn status(&self) -> u16 {
        match self {
            ExecutorCallError::NotSubscribed => 403,
            ExecutorCallError::Recovering => 503,
            ExecutorCallError::NotImplemented => 501,
            _ => 400,
        }
    }
}

/// The call's type, refusing a missing or unknown one.
pub fn kind(call: &Call) -> Result<call::Type, ExecutorCallError> {
    match call.r#type.and_then(|t| call::Type::try_from(t).ok()) {
        None => Err(ExecutorCallError::Invalid(
            "Expecting 'type' to be present".into(),
        )),
        Some(call::Type::Unknown) => Err(ExecutorCallError::NotImplemented),
        Some(t) => Ok(t),
    }
}

/// Mesos' `validation::executor::call::validate`.
pub fn validate(call: &Call) -> Result<call::Type, ExecutorCallError> {
    let invalid = |m: &str| Err(ExecutorCallError::Invalid(m.to_owned()));
    let ty = kind(call)?;
    match ty {
        call::Type::Subscribe if call.subscribe.is_none() => {
            invalid("Expecting 'subscribe' to be present")
        }
        call::Type::Update => match &call.update {
            None => invalid("Expecting 'update' to be present"),
            Some(update) => {
                update_status(&update.status, &call.executor_id.value)?;
                Ok(ty)
            }
        },
        call::Type::Message if call.message.is_none() => {
            invalid("Expecting 'message' to be present")
        }
        _ => Ok(ty),
    }
}

/// The checks on an UPDATE's status (also applied to the unacknowledged
/// updates a SUBSCRIBE carries).
pub fn update_status(
    status: &drover_proto::v1::TaskStatus,
    executor_id: &str,
) -> Result<(), ExecutorCallError> {
    let invalid = |m: &str| Err(ExecutorCallError::Invalid(m.to_owned()));
    let Some(uuid) = &status.uuid else {
        return invalid("'uuid' must be set for status updates");
    };
    let version = uuid.get(6).map(|b| b >> 4);
    if uuid.len() != 16 || !matches!(version, Some(1..=5)) {
        return invalid("'uuid' must be a valid UUID");
    }
    if status.source != Some(task_status::Source::Executor as i32) {
        return invalid("Received Call from executor with invalid source");
    }
    if status.state == TaskState::TaskStaging as i32 {
        return invalid("Received TASK_STAGING from executor");
    }
    if status
        .executor_id
        .as_ref()
        .is_some_and(|e| e.value != executor_id)
    {
        return invalid("ExecutorID in Call does not match the ExecutorID in the status update");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use drover_proto::v1::{ExecutorId, TaskStatus};

    fn update(f: impl FnOnce(&mut TaskStatus)) -> Call {
        let mut status = TaskStatus {
            state: TaskState::TaskRunning as i32,
            source: Some(task_status::Source::Executor as i32),
            uuid: Some(uuid::Uuid::new_v4().as_bytes().to_vec().into()),
            ..Default::default()
        };
        f(&mut status);
        Call {
            r#type: Some(call::Type::Update as i32),
            executor_id: ExecutorId { value: "e".into() },
            update: Some(call::Update { status }),
            ..Default::default()
        }
    }

    #[test]
    fn a_good_update_passes() {
        assert_eq!(validate(&update(|_| {})), Ok(call::Type::Update));
    }

    #[test]
    fn updates_are_checked_as_mesos_checks_them() {
        let cases: Vec<(&str, Call)> = vec![
            ("no uuid", update(|s| s.uuid = None)),
            ("short uuid", update(|s| s.uuid = Some(vec![1; 5].into()))),
            (
                "version 0 uuid",
                update(|s| s.uuid = Some(vec![0; 16].into())),
            ),
            ("no source", update(|s| s.source = None)),
            (
                "master source",
                update(|s| s.source = Some(task_status::Source::Master as i32)),
            ),
            (
                "staging",
                update(|s| s.state = TaskState::TaskStaging as i32),
            ),
            (
                "other executor",
                update(|s| s.executor_id = Some(ExecutorId { value: "x".into() })),
            ),
        ];
        for (name, call) in cases {
            let err = validate(&call).unwrap_err();
            assert_eq!(err.status(), 400, "{name}");
            assert!(
                err.to_string()
                    .starts_with("Failed to validate Executor::Call"),
                "{name}"
            );
        }
    }

    #[test]
    fn a_call_without_its_payload_or_type_is_refused() {
        let mut subscribe = Call {
            r#type: Some(call::Type::Subscribe as i32),
            ..Default::default()
        };
        assert_eq!(validate(&subscribe).unwrap_err().status(), 400);
        subscribe.subscribe = Some(call::Subscribe::default());
        assert!(validate(&subscribe).is_ok());
        let unknown = Call {
            r#type: Some(call::Type::Unknown as i32),
            ..Default::default()
        };
        assert_eq!(validate(&unknown), Err(ExecutorCallError::NotImplemented));
        let heartbeat = Call {
            r#type: Some(call::Type::Heartbeat as i32),
            ..Default::default()
        };
        assert_eq!(validate(&heartbeat), Ok(call::Type::Heartbeat));
    }
}
