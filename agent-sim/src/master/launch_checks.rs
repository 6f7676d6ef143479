//! The checks Mesos makes on each TaskInfo of a LAUNCH and on a
//! LAUNCH_GROUP's task group before it launches anything (reference
//! 3.4.2.2). Pure: what they need of the master comes in a [`Placement`];
//! a failure is the message of the TASK_ERROR the task gets.

use drover_proto::v1::{self, executor_info, health_check, offer::operation};

use super::tasks::Tasks;
use super::validate;
use crate::fixed_hash::HashSet;
use crate::ids::AgentIndex;
use crate::resources::Resources;

/// Where tasks are being launched: the framework, the offers' agent, and
/// the tasks the master already knows.
pub struct Placement<'a> {
    pub framework: &'a str,
    pub agent: AgentIndex,
    pub agent_id: &'a str,
    pub tasks: &'a Tasks,
}

/// Checks one task against what is left of the offers (`pool`); returns
/// the resources it needs (its own, plus a new custom executor's).
/// `group_executor` is the LAUNCH_GROUP's executor, for a group's tasks.
pub fn check_task(
    at: &Placement,
    task: &v1::TaskInfo,
    pool: &Resources,
    group_executor: Option<&v1::ExecutorInfo>,
) -> Result<Resources, String> {
    validate::id(&task.task_id.value)
        .map_err(|e| format!("Task ID '{}' is invalid: {e}", task.task_id.value))?;
    let key = (at.framework.to_owned(), task.task_id.value.clone());
    if at.tasks.is_duplicate(&key) {
        return Err(format!("Task has duplicate ID: {}", task.task_id.value));
    }
    if task.agent_id.value != at.agent_id {
        return Err(format!(
            "Task uses agent ID {} which does not match offered agent ID {}",
            task.agent_id.value, at.agent_id
        ));
    }
    if group_executor.is_none() {
        check_command_or_executor(task)?;
    } else if task.executor.is_some() {
        return Err("'TaskInfo.executor' must not be set".into());
    }
    if let Some(d) = task
        .kill_policy
        .as_ref()
        .and_then(|p| p.grace_period.as_ref())
    {
        if d.nanoseconds < 0 {
            return Err("Task's 'kill_policy.grace_period' must be non-negative".into());
        }
    }
    if task
        .max_completion_time
        .as_ref()
        .is_some_and(|d| d.nanoseconds < 0)
    {
        return Err("Task's `max_completion_time` must be non-negative".into());
    }
    if let Some(h) = &task.health_check {
        check_health(h)?;
    }
    if task.resources.is_empty() {
        return Err("Task uses no resources".into());
    }
    let mut needed = Resources::from_protos(&task.resources).map_err(|e| e.to_string())?;
    if let Some(e) = &task.executor {
        if !at
            .tasks
            .runs_executor(at.agent, at.framework, &e.executor_id)
        {
            needed.add(&Resources::from_protos(&e.resources).map_err(|e| e.to_string())?);
        }
    }
    if !pool.contains(&needed) {
        return Err("Task uses more resources than available in the offers".into());
    }
    Ok(needed)
}

/// A task outside a group has a CommandInfo or a custom ExecutorInfo, not both.
fn check_command_or_executor(task: &v1::TaskInfo) -> Result<(), String> {
    const ONE_OF: &str =
        "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present";
    match (&task.command, &task.executor) {
        (Some(_), Some(_)) | (None, None) => Err(ONE_OF.into()),
        (None, Some(e)) => {
            if e.command.is_none() {
                return Err("Executor must have a CommandInfo".into());
            }
            if e.r#type == Some(executor_info::Type::Default as i32) {
                return Err("'ExecutorInfo.type' must be 'CUSTOM'".into());
            }
            validate::id(&e.executor_id.value).map_err(|w| format!("Executor ID is invalid: {w}"))
        }
        (Some(_), None) => Ok(()),
    }
}

/// Checks a LAUNCH_GROUP (`has_id`: the operation carries an id); returns
/// each task's resources, the first one's with the executor's added.
pub fn check_group(
    at: &Placement,
    group: &operation::LaunchGroup,
    has_id: bool,
    pool: &Resources,
) -> Result<Vec<Resources>, String> {
    if has_id {
        return Err("Operation IDs are not supported for LAUNCH_GROUP".into());
    }
    let ty = group
        .executor
        .r#type
        .and_then(|t| executor_info::Type::try_from(t).ok());
    if !matches!(
        ty,
        Some(executor_info::Type::Default | executor_info::Type::Custom)
    ) {
        return Err("'ExecutorInfo.type' must be 'DEFAULT' or 'CUSTOM'".into());
    }
    if group.task_group.tasks.is_empty() {
        return Err("Task group must contain at least one task".into());
    }
    let mut remaining = pool.clone();
    let executor = Resources::from_protos(&group.executor.resources).map_err(|e| e.to_string())?;
    if !remaining.contains(&executor) {
        return Err("Task group uses more resources than available in the offers".into());
    }
    remaining.subtract(&executor);
    let mut ids = HashSet::default();
    let mut out = Vec::new();
    for (i, task) in group.task_group.tasks.iter().enumerate() {
        if !ids.insert(&task.task_id.value) {
            return Err(format!(
                "Task group has duplicate task ID: {}",
                task.task_id.value
            ));
        }
        let mut res = check_task(at, task, &remaining, Some(&group.executor))?;
        remaining.subtract(&res);
        if i == 0 {
            res.add(&executor);
        }
        out.push(res);
    }
    Ok(out)
}

/// Health check checks (reference 6.1 and 3.4.2.2).
fn check_health(h: &v1::HealthCheck) -> Result<(), String> {
    let negative = [
        h.delay_seconds,
        h.interval_seconds,
        h.timeout_seconds,
        h.grace_period_seconds,
    ]
    .iter()
    .any(|v| v.is_some_and(|s| s < 0.0));
    if negative {
        return Err("Task's health check has a negative timing value".into());
    }
    match h.r#type.and_then(|t| health_check::Type::try_from(t).ok()) {
        Some(health_check::Type::Command) if h.command.is_none() => {
            Err("Expecting 'command' to be set for COMMAND health check".into())
        }
        Some(health_check::Type::Http) => match &h.http {
            None => Err("Expecting 'http' to be set for HTTP health check".into()),
            Some(http) if http.path.as_ref().is_some_and(|p| !p.starts_with('/')) => {
                Err("The path of HTTP health check must start with '/'".into())
            }
            Some(http)
                if http
                    .scheme
                    .as_ref()
                    .is_some_and(|s| s != "http" && s != "https") =>
            {
                Err("Unsupported HTTP health check scheme".into())
            }
            Some(_) => Ok(()),
        },
        Some(health_check::Type::Tcp) if h.tcp.is_none() => {
            Err("Expecting 'tcp' to be set for TCP health check".into())
        }
        Some(health_check::Type::Unknown) | None => Err("HealthCheck must specify 'type'".into()),
        Some(_) => Ok(()),
    }
}
