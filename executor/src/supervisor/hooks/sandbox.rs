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

    fn prestart(&mut self, _plan: &TaskPlan, launch: &mut Launch) -> Result<(), std::io::Error> {
        std::fs::create_dir_all(&launch.sandbox)?;
        if let Some(user) = &launch.user {
            nix::unistd::chown(
                &launch.sandbox,
                Some(nix::unistd::Uid::from_raw(user.uid)),
                Some(nix::unistd::Gid::from_raw(user.gid)),
            )?;
        }
        Ok(())
    }
}
