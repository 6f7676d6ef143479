//! Killing every process of a cgroup: freeze, SIGKILL every pid, thaw, and
//! repeat until the cgroup is empty.
//!
//! Freezing first closes the race in which a process forks between our read
//! of `cgroup.procs` and our signal (a fork bomb would otherwise outrun us).
//! The version-specific parts (how to freeze, where the pids are) come in as
//! a [`Freezer`]; v2 hosts with `cgroup.kill` skip this loop entirely.

use std::path::PathBuf;
use std::time::Duration;

use super::CgroupError;

/// How many freeze/kill/thaw rounds before giving up. A frozen process
/// cannot fork, so one round normally suffices; more cover processes that
/// were mid-fork when frozen.
pub const MAX_KILL_ROUNDS: u32 = 50;
/// Pause after each round to let the kernel reap what was killed.
const ROUND_PAUSE: Duration = Duration::from_millis(10);

/// The version-specific freeze and pid listing.
pub(crate) trait Freezer {
    fn freeze(&self) -> Result<(), CgroupError>;
    fn thaw(&self) -> Result<(), CgroupError>;
    fn pids(&self) -> Result<Vec<i32>, CgroupError>;
    fn path(&self) -> PathBuf;
}

pub(crate) fn kill_frozen(freezer: &dyn Freezer) -> Result<(), CgroupError> {
    for _ in 0..MAX_KILL_ROUNDS {
        if freezer.pids()?.is_empty() {
            return Ok(());
        }
        freezer.freeze()?;
        for pid in freezer.pids()? {
            // SAFETY: kill(2) has no memory effects; the pid was read from
            // our own cgroup. SIGKILL is delivered even to frozen tasks.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        freezer.thaw()?;
        std::thread::sleep(ROUND_PAUSE);
    }
    let pids = freezer.pids()?;
    if pids.is_empty() {
        return Ok(());
    }
    Err(CgroupError::Unkillable {
        path: freezer.path(),
        pids,
        attempts: MAX_KILL_ROUNDS,
    })
}

/// Waits until the freezer reports `want`; v1 passes through FREEZING.
pub(crate) fn wait_for_state(
    read: impl Fn() -> Result<String, CgroupError>,
    want: &str,
) -> Result<(), CgroupError> {
    for _ in 0..1000 {
        if read()?.trim() == want {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // Still freezing after a second: kill anyway; SIGKILL reaches tasks
    // that are frozen or freezing, the loop above retries.
    Ok(())
}
