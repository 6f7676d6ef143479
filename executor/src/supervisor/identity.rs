//! Who a task runs as, decided before anything of it is made. The task's
//! user is its CommandInfo's, else the executor's (ExecutorInfo's command),
//! else the framework's, as a Mesos agent picks the user it runs an
//! executor as (`slave.cpp`, `Framework::launchExecutor`). An agent that
//! switches users has already made us that user, and nothing changes; an
//! agent that leaves us root (agent-sim's real agents, a Mesos agent with
//! `--no-switch_user`) leaves the switch to us, so the task never runs as
//! the agent's root by accident. Root itself is refused unless the
//! executor was told root tasks are allowed (`DROVER_ALLOW_ROOT_TASKS`,
//! which the scheduler sets under `--allow-root-tasks`). Pure: the user is
//! looked up by the caller.

use std::path::PathBuf;

use crate::container::user::{Credentials, UserEntry};

/// How the task's process is to be run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// Credentials to switch to before exec; `None` keeps the executor's.
    pub switch: Option<Credentials>,
    /// The user's name and home, for `USER`, `LOGNAME` and `HOME`; `None`
    /// when the task names no user and runs as the executor does.
    pub user: Option<(String, PathBuf)>,
}

impl RunAs {
    /// `HOME`, `USER` and `LOGNAME` of the task's user, each unless the
    /// task's own environment sets it.
    pub fn add_environment(&self, env: &mut Vec<(String, String)>) {
        let Some((name, home)) = &self.user else {
            return;
        };
        let values = [
            ("HOME", home.display().to_string()),
            ("USER", name.clone()),
            ("LOGNAME", name.clone()),
        ];
        for (key, value) in values {
            if !env.iter().any(|(k, _)| k == key) {
                env.push((key.to_string(), value));
            }
        }
    }
}

/// Why the task cannot run as the user it names. Answered with TASK_FAILED.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The task would run as root and root tasks are not allowed.
    #[error(
        "refusing to run the task as root ({who}): this executor was not told root tasks \
         are allowed (DROVER_ALLOW_ROOT_TASKS: drover-scheduler --allow-root-tasks sets it \
         on the executors it names, drover-agent-sim --allow-root-tasks on its own); give \
         the job a non-root command.user or the scheduler a non-root --user"
    )]
    RootRefused {
        /// Which user, and how it was chosen.
        who: String,
    },
    /// The executor is not root and the task names another user.
    #[error(
        "cannot run the task as {user:?} (uid {uid}): this executor runs as uid {executor_uid} \
         and only root can switch users"
    )]
    CannotSwitch {
        /// The task's user.
        user: String,
        /// Its uid.
        uid: u32,
        /// The executor's effective uid.
        executor_uid: u32,
    },
}

/// Decides how to run a task whose user is `user` (looked up; `None` when
/// nothing names one) from an executor running as `executor_uid`.
pub fn decide(
    user: Option<&UserEntry>,
    executor_uid: u32,
    allow_root: bool,
) -> Result<RunAs, IdentityError> {
    let Some(user) = user else {
        if executor_uid == 0 && !allow_root {
            return Err(IdentityError::RootRefused {
                who: "no user named, and the executor runs as root".into(),
            });
        }
        return Ok(RunAs {
            switch: None,
            user: None,
        });
    };
    let uid = user.credentials.uid;
    if uid == 0 && !allow_root {
        return Err(IdentityError::RootRefused {
            who: format!("user {:?} is uid 0", user.name),
        });
    }
    let switch = if uid == executor_uid {
        // Already that user: setgroups would fail for a non-root one, and
        // root stays root.
        None
    } else if executor_uid == 0 {
        Some(user.credentials.clone())
    } else {
        return Err(IdentityError::CannotSwitch {
            user: user.name.clone(),
            uid,
            executor_uid,
        });
    };
    Ok(RunAs {
        switch,
        user: Some((user.name.clone(), user.home.clone())),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entry(name: &str, uid: u32) -> UserEntry {
        UserEntry {
            name: name.into(),
            credentials: Credentials {
                uid,
                gid: uid,
                groups: vec![uid],
            },
            home: format!("/home/{name}").into(),
        }
    }

    #[test]
    fn a_root_executor_switches_to_the_task_user() {
        let nobody = entry("nobody", 65534);
        let run = decide(Some(&nobody), 0, false).unwrap();
        assert_eq!(run.switch, Some(nobody.credentials.clone()));
        let mut env = vec![("HOME".to_string(), "/mine".to_string())];
        run.add_environment(&mut env);
        assert_eq!(
            env,
            vec![
                ("HOME".to_string(), "/mine".to_string()),
                ("USER".to_string(), "nobody".to_string()),
                ("LOGNAME".to_string(), "nobody".to_string()),
            ],
            "the task's own HOME wins"
        );
    }

    #[test]
    fn root_is_refused_unless_allowed_however_it_is_reached() {
        let root = entry("root", 0);
        assert!(matches!(
            decide(Some(&root), 0, false),
            Err(IdentityError::RootRefused { .. })
        ));
        assert!(matches!(
            decide(Some(&entry("toor", 0)), 0, false),
            Err(IdentityError::RootRefused { who }) if who.contains("toor")
        ));
        assert!(matches!(
            decide(None, 0, false),
            Err(IdentityError::RootRefused { .. })
        ));
        let allowed = decide(Some(&root), 0, true).unwrap();
        assert_eq!(allowed.switch, None, "root stays root");
        assert_eq!(decide(None, 0, true).unwrap().switch, None);
    }

    #[test]
    fn an_unprivileged_executor_runs_its_own_user_and_no_other() {
        let nobody = entry("nobody", 65534);
        let run = decide(Some(&nobody), 65534, false).unwrap();
        assert_eq!(run.switch, None);
        assert_eq!(decide(None, 1000, false).unwrap().switch, None);
        assert!(matches!(
            decide(Some(&entry("alice", 1000)), 65534, false),
            Err(IdentityError::CannotSwitch { .. })
        ));
    }
}
