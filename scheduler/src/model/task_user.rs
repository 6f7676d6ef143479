//! Who a task runs as. The framework's user (`--user`, `FrameworkInfo.user`)
//! is every task's user unless the spec's `command.user` names another, in
//! every executor mode: it goes on the task's CommandInfo and the
//! executor's, so neither the agent nor the executor falls back to its own
//! user (root, on most agents). Running a task as root is refused unless
//! the scheduler was told it may (`--allow-root-tasks`). Pure: the API calls
//! [`check_job`] before anything is stored; the Mesos edge calls
//! [`effective_user`] when it builds a TaskInfo.

use super::spec::{JobSpec, PodSpec};
use super::validate::SpecError;

/// The name Drover treats as root. The scheduler cannot see the agents'
/// user databases, so it goes by the name; drover-executor checks the uid
/// the name has on the agent before it runs anything.
pub const ROOT: &str = "root";

/// The framework's user and whether tasks may run as root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskUserPolicy {
    /// The user of every task whose spec names none (`FrameworkInfo.user`).
    pub default_user: String,
    /// `--allow-root-tasks`: whether a task may run as root. Default false:
    /// a task is the user's code, and root on an agent is every task's
    /// and the agent's data.
    pub allow_root: bool,
}

impl Default for TaskUserPolicy {
    /// `nobody`, the user with no files of its own, and root refused.
    fn default() -> Self {
        TaskUserPolicy {
            default_user: "nobody".into(),
            allow_root: false,
        }
    }
}

/// The user `pod`'s task runs as: its `command.user` when set and not
/// empty, else `default_user`.
pub fn effective_user<'a>(pod: &'a PodSpec, default_user: &'a str) -> &'a str {
    named_user(pod).unwrap_or(default_user)
}

/// The user `pod`'s `command.user` names, if it names one.
fn named_user(pod: &PodSpec) -> Option<&str> {
    pod.containers
        .first()
        .and_then(|c| c.command.as_ref())
        .and_then(|c| c.user.as_deref())
        .filter(|u| !u.is_empty())
}

/// Refuses a job any of whose pods would run as root when the policy does
/// not allow it; the error names the field to change. `at` is the spec's
/// path in the request (`spec`).
pub fn check_job(spec: &JobSpec, policy: &TaskUserPolicy, at: &str) -> Result<(), SpecError> {
    if policy.allow_root {
        return Ok(());
    }
    for (path, pod) in spec.pods_with_paths(at) {
        if effective_user(&pod, &policy.default_user) != ROOT {
            continue;
        }
        let field = format!("{path}.containers[0].command.user");
        let problem = if named_user(&pod).is_some() {
            "is root, and this scheduler does not run tasks as root \
             (start it with --allow-root-tasks to allow them)"
                .to_owned()
        } else {
            format!(
                "is unset, so the task would run as the framework user '{}', and this \
                 scheduler does not run tasks as root: name a user here, or start the \
                 scheduler with --user <name> (or --allow-root-tasks)",
                policy.default_user
            )
        };
        return Err(SpecError { field, problem });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn job(default_user: Option<&str>, instance_user: Option<&str>) -> JobSpec {
        let mut command = serde_json::json!({"value": "id -u"});
        if let Some(u) = default_user {
            command["user"] = u.into();
        }
        let mut spec = serde_json::json!({
            "type": "BATCH", "name": "t", "instance_count": 2,
            "default_spec": {"containers": [{
                "resource": {"cpu_limit": 0.1, "mem_limit_mb": 32},
                "command": command
            }]}
        });
        if let Some(u) = instance_user {
            spec["instance_spec"] = serde_json::json!({"1": {"containers": [{
                "resource": {"cpu_limit": 0.1, "mem_limit_mb": 32},
                "command": {"value": "id -u", "user": u}
            }]}});
        }
        serde_json::from_value(spec).unwrap()
    }

    fn policy(default_user: &str, allow_root: bool) -> TaskUserPolicy {
        TaskUserPolicy {
            default_user: default_user.into(),
            allow_root,
        }
    }

    #[test]
    fn the_spec_user_wins_over_the_framework_user() {
        let spec = job(Some("alice"), None);
        assert_eq!(effective_user(&spec.pod_spec(0), "nobody"), "alice");
        let spec = job(None, None);
        assert_eq!(effective_user(&spec.pod_spec(0), "nobody"), "nobody");
        let spec = job(Some(""), None);
        assert_eq!(
            effective_user(&spec.pod_spec(0), "nobody"),
            "nobody",
            "an empty user is no user"
        );
    }

    #[test]
    fn a_root_task_is_refused_unless_allowed() {
        let by_default = check_job(&job(None, None), &policy("root", false), "spec").unwrap_err();
        assert_eq!(
            by_default.field,
            "spec.default_spec.containers[0].command.user"
        );
        assert!(
            by_default.problem.contains("framework user 'root'"),
            "{by_default}"
        );
        let named =
            check_job(&job(Some("root"), None), &policy("nobody", false), "spec").unwrap_err();
        assert!(named.problem.contains("--allow-root-tasks"), "{named}");
        let instance =
            check_job(&job(None, Some("root")), &policy("nobody", false), "spec").unwrap_err();
        assert_eq!(
            instance.field,
            "spec.instance_spec.1.containers[0].command.user"
        );
        assert!(check_job(&job(None, None), &policy("root", true), "spec").is_ok());
        assert!(check_job(&job(Some("alice"), None), &policy("root", false), "spec").is_ok());
        assert!(check_job(&job(None, None), &policy("nobody", false), "spec").is_ok());
    }
}
