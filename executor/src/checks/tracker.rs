//! One task's Mesos check (TaskInfo `check`, a CheckInfo) as Mesos' checker
//! runs it (`src/checks/checker_process.cpp`; docs `health-checks.md`,
//! "Generalized checks"). Pure: the driver passes `now` and each result.
//!
//! ```text
//!  start ──(delay)──► check ──result──► report if changed ──(interval)──► check …
//! ```
//!
//! - The first check runs `delay` after the task started; each next one
//!   `interval` after the previous one ended.
//! - A check reports what it saw, never a verdict: a command's exit code,
//!   an HTTP status code, whether a TCP connect succeeded. A check that
//!   could not be performed (timed out, the command could not start, no
//!   HTTP answer) has an empty result of its type.
//! - A status update goes out only when the result differs from the last
//!   one reported; the task's first TASK_RUNNING carries the empty result
//!   ([`CheckTracker::empty_status`]), so the first result is news unless
//!   it is empty too.
//! - A check never kills its task, however it ends.

use std::time::{Duration, Instant};

use drover_proto::v1::{check_info, check_status_info, CheckStatusInfo};

/// Timing of a task's check, converted from `CheckInfo` at the edge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CheckPolicy {
    /// Wait after the start before the first check (Mesos default 15 s).
    pub delay: Duration,
    /// Pause between the end of one check and the next (default 10 s).
    pub interval: Duration,
    /// Longest a check may run; `None` for no limit (default 20 s; 0 = none).
    pub timeout: Option<Duration>,
}

/// What one check saw; `None` inside: it could not be performed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckResult {
    /// A command check's exit code.
    Command(Option<i32>),
    /// An HTTP check's status code.
    Http(Option<u32>),
    /// Whether a TCP check connected.
    Tcp(Option<bool>),
}

impl CheckResult {
    /// The same kind of check with no result (a timeout, a failure to run).
    pub fn empty(kind: check_info::Type) -> Self {
        match kind {
            check_info::Type::Http => CheckResult::Http(None),
            check_info::Type::Tcp => CheckResult::Tcp(None),
            check_info::Type::Command | check_info::Type::Unknown => CheckResult::Command(None),
        }
    }

    /// As Mesos' `CheckStatusInfo`.
    pub fn status(self) -> CheckStatusInfo {
        let mut status = CheckStatusInfo::default();
        match self {
            CheckResult::Command(exit_code) => {
                status.r#type = Some(check_info::Type::Command as i32);
                status.command = Some(check_status_info::Command { exit_code });
            }
            CheckResult::Http(status_code) => {
                status.r#type = Some(check_info::Type::Http as i32);
                status.http = Some(check_status_info::Http { status_code });
            }
            CheckResult::Tcp(succeeded) => {
                status.r#type = Some(check_info::Type::Tcp as i32);
                status.tcp = Some(check_status_info::Tcp { succeeded });
            }
        }
        status
    }
}

/// One task's check state.
#[derive(Debug, Clone)]
pub struct CheckTracker {
    policy: CheckPolicy,
    kind: check_info::Type,
    next_at: Instant,
    /// The last result reported (at first the empty one).
    last: CheckResult,
}

impl CheckTracker {
    /// A check of `kind` for a task that started at `started`.
    pub fn new(policy: CheckPolicy, kind: check_info::Type, started: Instant) -> Self {
        Self {
            policy,
            kind,
            next_at: started + policy.delay,
            last: CheckResult::empty(kind),
        }
    }

    /// The timing.
    pub fn policy(&self) -> CheckPolicy {
        self.policy
    }

    /// What kind of check it is.
    pub fn kind(&self) -> check_info::Type {
        self.kind
    }

    /// The empty result the first TASK_RUNNING carries.
    pub fn empty_status(&self) -> CheckStatusInfo {
        CheckResult::empty(self.kind).status()
    }

    /// When the next check is due.
    pub fn next_check_at(&self) -> Instant {
        self.next_at
    }

    /// A check that ended at `now` saw `result`: the status to report, if
    /// the result changed. A result of another kind than the check's is
    /// the driver's bug and counts as an empty one.
    pub fn on_result(&mut self, result: CheckResult, now: Instant) -> Option<CheckStatusInfo> {
        self.next_at = now + self.policy.interval;
        let result = if std::mem::discriminant(&result)
            == std::mem::discriminant(&CheckResult::empty(self.kind))
        {
            result
        } else {
            CheckResult::empty(self.kind)
        };
        if result == self.last {
            return None;
        }
        self.last = result;
        Some(result.status())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn policy() -> CheckPolicy {
        CheckPolicy {
            delay: Duration::from_secs(2),
            interval: Duration::from_secs(1),
            timeout: Some(Duration::from_secs(1)),
        }
    }

    #[test]
    fn the_first_check_waits_for_the_delay_and_the_next_for_the_interval() {
        let t0 = Instant::now();
        let mut t = CheckTracker::new(policy(), check_info::Type::Command, t0);
        assert_eq!(t.next_check_at(), t0 + Duration::from_secs(2));
        t.on_result(
            CheckResult::Command(Some(1)),
            t0 + Duration::from_millis(2500),
        );
        assert_eq!(t.next_check_at(), t0 + Duration::from_millis(3500));
    }

    #[test]
    fn only_a_changed_result_is_reported() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut t = CheckTracker::new(policy(), check_info::Type::Command, t0);
        assert_eq!(t.empty_status().command.unwrap().exit_code, None);
        // (result, reported exit code: None = no update)
        let steps = [
            (CheckResult::Command(None), None),
            (CheckResult::Command(Some(1)), Some(Some(1))),
            (CheckResult::Command(Some(1)), None),
            (CheckResult::Command(Some(0)), Some(Some(0))),
            (CheckResult::Command(Some(0)), None),
            // A timeout empties the result again: news.
            (CheckResult::Command(None), Some(None)),
        ];
        for (i, (result, want)) in steps.into_iter().enumerate() {
            let got = t
                .on_result(result, t0 + s * i as u32)
                .map(|status| status.command.unwrap().exit_code);
            assert_eq!(got, want, "step {i}: {result:?}");
        }
    }

    #[test]
    fn http_and_tcp_report_their_own_fields() {
        let t0 = Instant::now();
        let mut http = CheckTracker::new(policy(), check_info::Type::Http, t0);
        let status = http.on_result(CheckResult::Http(Some(503)), t0).unwrap();
        assert_eq!(status.r#type, Some(check_info::Type::Http as i32));
        assert_eq!(status.http.unwrap().status_code, Some(503));
        let mut tcp = CheckTracker::new(policy(), check_info::Type::Tcp, t0);
        let status = tcp.on_result(CheckResult::Tcp(Some(true)), t0).unwrap();
        assert_eq!(status.tcp.unwrap().succeeded, Some(true));
        // A result of the wrong kind counts as an empty one.
        assert_eq!(
            tcp.on_result(CheckResult::Http(Some(200)), t0),
            Some(CheckResult::Tcp(None).status())
        );
    }
}
