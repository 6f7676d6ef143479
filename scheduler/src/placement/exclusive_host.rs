//! Titus' exclusiveHost, both ways: a task that wants a host to its job
//! goes only where no other job's pod is, and a host holding such a pod
//! takes no other job's tasks. Soft (`prefer.exclusive_host`), it ranks
//! hosts by how many other jobs' pods they hold, and holds the host for
//! nobody: a preference is the task's wish, never a rule for other jobs.

use super::filter::{Filter, Rejection};
use super::host_view::HostView;
use super::preference::Preference;
use super::round::Round;
use crate::model::demand::TaskDemand;

/// Keeps exclusive jobs alone on their hosts.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExclusiveHostFilter;

impl Filter for ExclusiveHostFilter {
    fn name(&self) -> &'static str {
        "exclusive_host"
    }

    fn check(&self, task: &TaskDemand, host: &HostView, _: &Round) -> Result<(), Rejection> {
        let others = host.pods.iter().filter(|p| p.job != task.job);
        let mut others = others.peekable();
        if task.placement.exclusive_host && others.peek().is_some() {
            return Err(Rejection {
                filter: self.name(),
                reason: "a host with no other job's pods (exclusive host)".into(),
            });
        }
        if others.any(|p| p.exclusive) {
            return Err(Rejection {
                filter: self.name(),
                reason: "a host not held exclusively by another job".into(),
            });
        }
        Ok(())
    }
}

/// Prefers hosts with fewer other jobs' pods (0 = none).
#[derive(Debug, Clone, Copy, Default)]
pub struct ExclusiveHostPreference;

impl Preference for ExclusiveHostPreference {
    fn name(&self) -> &'static str {
        "exclusive_host"
    }

    fn penalty(&self, task: &TaskDemand, host: &HostView, _: &Round) -> u32 {
        if !task.preferences().exclusive_host {
            return 0;
        }
        let others = host.pods.iter().filter(|p| p.job != task.job).count();
        u32::try_from(others).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::resources::Resources;
    use crate::placement::PodOnHost;

    #[test]
    fn exclusive_jobs_neither_share_nor_are_shared() {
        let pod = |job: &str, exclusive: bool| PodOnHost {
            job: job.into(),
            labels: vec![],
            exclusive,
        };
        let empty = HostView::new("a", "h", "*", Resources::default());
        let shared = empty.clone().with_pods(vec![pod("k", false)]);
        let held = empty.clone().with_pods(vec![pod("k", true)]);
        let mine = empty.clone().with_pods(vec![pod("j", true)]);
        let r = Round::default();
        let plain = TaskDemand::new(0, "j", Resources::default());
        let mut exclusive = plain.clone();
        exclusive.placement.exclusive_host = true;
        let table = [
            (&plain, &empty, true),
            (&plain, &shared, true),
            (&plain, &held, false),
            (&exclusive, &empty, true),
            (&exclusive, &mine, true),
            (&exclusive, &shared, false),
            (&exclusive, &held, false),
        ];
        for (i, (task, host, ok)) in table.into_iter().enumerate() {
            assert_eq!(
                ExclusiveHostFilter.check(task, host, &r).is_ok(),
                ok,
                "case {i}"
            );
        }
    }

    #[test]
    fn soft_exclusive_host_counts_other_jobs_pods_and_never_rejects() {
        let pod = |job: &str| PodOnHost {
            job: job.into(),
            labels: vec![],
            exclusive: false,
        };
        let empty = HostView::new("a", "h", "*", Resources::default());
        let shared = empty.clone().with_pods(vec![pod("k"), pod("j"), pod("l")]);
        let mut task = TaskDemand::new(0, "j", Resources::default());
        let r = Round::default();
        assert_eq!(
            ExclusiveHostPreference.penalty(&task, &shared, &r),
            0,
            "off"
        );
        task.placement.prefer = Some(crate::model::spec::Preferences {
            exclusive_host: true,
            ..Default::default()
        });
        assert_eq!(ExclusiveHostPreference.penalty(&task, &empty, &r), 0);
        assert_eq!(ExclusiveHostPreference.penalty(&task, &shared, &r), 2);
        assert!(ExclusiveHostFilter.check(&task, &shared, &r).is_ok());
    }
}
