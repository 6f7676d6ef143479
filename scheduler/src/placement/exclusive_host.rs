//! Titus' exclusiveHost, both ways: a task that wants a host to its job
//! goes only where no other job's pod is, and a host holding such a pod
//! takes no other job's tasks.

use super::filter::{Filter, Rejection};
use super::host_view::HostView;
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
}
