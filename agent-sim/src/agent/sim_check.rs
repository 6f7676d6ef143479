//! The Mesos `check` (TaskInfo `check`, a CheckInfo) of one simulated
//! task, as the built-in executors run it: the first result `delay` after
//! the launch, one every `interval`, and a status update only when the
//! result changes (the first TASK_RUNNING carries an empty result of the
//! check's type, as Mesos' does). Pure: the caller passes `now` and the
//! launch time.
//!
//! Whether the simulated check passes comes from the task's labels:
//! `sim.ready=false` never passes; `sim.ready_after_ms=N` passes from N ms
//! after the launch on; otherwise every result passes. A passing result
//! is what a ready service answers (COMMAND exit code 0, HTTP 200, TCP
//! connected); a failing one exit code 1, HTTP 503, TCP refused.

use std::time::{Duration, Instant};

use drover_proto::duration::from_seconds;
use drover_proto::v1::{check_info, check_status_info, CheckStatusInfo, TaskInfo};

use crate::deadline::after;

/// One task's check and the result it last reported.
#[derive(Debug, Clone, PartialEq)]
pub struct SimCheck {
    pub(crate) kind: check_info::Type,
    pub(crate) delay: Duration,
    pub(crate) interval: Duration,
    /// From when after the launch the check passes; None: never.
    pub(crate) passes_after: Option<Duration>,
    /// The last result reported (None: only the empty one).
    pub(crate) reported: Option<bool>,
}

impl SimCheck {
    /// The check of `task`, if it has one; `label` reads a task label.
    pub fn from_task(task: &TaskInfo, label: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let check = task.check.as_ref()?;
        let never = label("sim.ready").is_some_and(|v| v.trim() == "false");
        let passes_after = (!never).then(|| {
            label("sim.ready_after_ms")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map_or(Duration::ZERO, Duration::from_millis)
        });
        Some(SimCheck {
            kind: check
                .r#type
                .and_then(|t| check_info::Type::try_from(t).ok())
                .unwrap_or(check_info::Type::Command),
            delay: check
                .delay_seconds
                .and_then(from_seconds)
                .unwrap_or(Duration::from_secs(15)),
            interval: check
                .interval_seconds
                .and_then(from_seconds)
                .unwrap_or(Duration::from_secs(10))
                .max(Duration::from_millis(1)),
            passes_after,
            reported: None,
        })
    }

    /// When the first result is due, for a task launched at `launched`.
    pub fn first_due(&self, launched: Instant) -> Instant {
        after(launched, self.delay)
    }

    /// When the result after one taken at `now` is due.
    pub fn next_due(&self, now: Instant) -> Instant {
        after(now, self.interval)
    }

    /// The empty status of the check's type the first TASK_RUNNING carries.
    pub fn empty_status(&self) -> CheckStatusInfo {
        status(self.kind, None)
    }

    /// A result taken at `now` (the task launched at `launched`): the
    /// status to report if it differs from the last one reported.
    pub fn on_result(&mut self, launched: Instant, now: Instant) -> Option<CheckStatusInfo> {
        let passed = self
            .passes_after
            .is_some_and(|wait| now >= after(launched, wait));
        if self.reported == Some(passed) {
            return None;
        }
        self.reported = Some(passed);
        Some(status(self.kind, Some(passed)))
    }
}

/// A check status of `kind` with `passed`'s result (None: empty).
fn status(kind: check_info::Type, passed: Option<bool>) -> CheckStatusInfo {
    let mut status = CheckStatusInfo {
        r#type: Some(kind as i32),
        ..Default::default()
    };
    match kind {
        check_info::Type::Http => {
            status.http = Some(check_status_info::Http {
                status_code: passed.map(|p| if p { 200 } else { 503 }),
            });
        }
        check_info::Type::Tcp => {
            status.tcp = Some(check_status_info::Tcp { succeeded: passed });
        }
        check_info::Type::Command | check_info::Type::Unknown => {
            status.command = Some(check_status_info::Command {
                exit_code: passed.map(|p| if p { 0 } else { 1 }),
            });
        }
    }
    status
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use drover_proto::v1::CheckInfo;

    fn check(kind: check_info::Type, labels: &[(&str, &str)]) -> SimCheck {
        let task = TaskInfo {
            check: Some(Box::new(CheckInfo {
                r#type: Some(kind as i32),
                delay_seconds: Some(1.0),
                interval_seconds: Some(0.5),
                ..Default::default()
            })),
            ..Default::default()
        };
        let labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        SimCheck::from_task(&task, |key| {
            labels
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        })
        .unwrap()
    }

    #[test]
    fn a_task_without_a_check_has_none() {
        assert!(SimCheck::from_task(&TaskInfo::default(), |_| None).is_none());
    }

    #[test]
    fn ready_after_reports_not_ready_then_ready_once_each() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut c = check(check_info::Type::Command, &[("sim.ready_after_ms", "2000")]);
        assert_eq!(c.first_due(t0), t0 + ms(1000));
        assert_eq!(c.empty_status().command.unwrap().exit_code, None);
        let first = c.on_result(t0, t0 + ms(1000)).unwrap();
        assert_eq!(first.command.unwrap().exit_code, Some(1));
        assert_eq!(c.on_result(t0, t0 + ms(1500)), None, "unchanged: no update");
        let ready = c.on_result(t0, t0 + ms(2000)).unwrap();
        assert_eq!(ready.command.unwrap().exit_code, Some(0));
        assert_eq!(c.on_result(t0, t0 + ms(2500)), None);
        assert_eq!(c.next_due(t0 + ms(2500)), t0 + ms(3000));
    }

    #[test]
    fn each_type_reports_its_own_result_and_never_ready_never_passes() {
        let t0 = Instant::now();
        let late = t0 + Duration::from_secs(3600);
        let mut http = check(check_info::Type::Http, &[]);
        assert_eq!(
            http.on_result(t0, t0).unwrap().http.unwrap().status_code,
            Some(200)
        );
        let mut tcp = check(check_info::Type::Tcp, &[("sim.ready", "false")]);
        assert_eq!(
            tcp.on_result(t0, late).unwrap().tcp.unwrap().succeeded,
            Some(false)
        );
        assert_eq!(tcp.on_result(t0, late), None);
    }
}
