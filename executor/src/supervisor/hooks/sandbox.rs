//! The sandbox hook: creates the task's sandbox directory and, for a task
//! run as another user, hands it to that user (as the Mesos agent chowns
//! sandboxes), so the task can enter and write it.

use super::{Launch, TaskHook};
use crate::supervisor::task::TaskPlan;

pub(super) struct SandboxHook;

impl TaskHook for SandboxHook {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn prestart(&mut self, plan: &TaskPlan, launch: &mut Launch) -> Result<(), std::io::Error> {
        std::fs::create_dir_all(&launch.sandbox)?;
        if let Some(user) = &plan.user {
            // An unknown user is reported by the spawn, with its own error.
            if let Ok(Some(found)) = nix::unistd::User::from_name(user) {
                nix::unistd::chown(&launch.sandbox, Some(found.uid), Some(found.gid))?;
            }
        }
        Ok(())
    }
}
