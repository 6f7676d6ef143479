//! The first and cheapest filter: the task's cpus, mem, disk and gpus fit
//! in what is left of the host's offers this round.

use super::filter::{Filter, Rejection};
use super::host_view::HostView;
use super::round::Round;
use crate::model::demand::TaskDemand;

/// Rejects hosts without room for the task.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResourcesFitFilter;

impl Filter for ResourcesFitFilter {
    fn name(&self) -> &'static str {
        "resources"
    }

    fn check(&self, task: &TaskDemand, host: &HostView, _: &Round) -> Result<(), Rejection> {
        match host.available.short_of(&task.resources) {
            None => Ok(()),
            Some(what) => Err(Rejection {
                filter: self.name(),
                reason: match what {
                    "cpus" => "enough cpus",
                    "mem" => "enough mem",
                    "disk" => "enough disk",
                    _ => "enough gpus",
                }
                .into(),
            }),
        }
    }

    fn admits(&self, task: &TaskDemand, host: &HostView, _: &Round) -> bool {
        host.available.contains(&task.resources)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::resources::Resources;

    fn res(cpus: f64, mem_mib: f64, disk_mib: f64, gpus: f64) -> Resources {
        Resources {
            cpus,
            mem_mib,
            disk_mib,
            gpus,
        }
    }

    #[test]
    fn fits_and_misses_name_the_short_resource() {
        let host = HostView::new("a", "h", "*", res(1.0, 100.0, 10.0, 1.0));
        let table = [
            (res(1.0, 100.0, 10.0, 1.0), None),
            (res(0.1 + 0.2, 1.0, 0.0, 0.0), None),
            (res(1.5, 1.0, 0.0, 0.0), Some("enough cpus")),
            (res(0.5, 101.0, 0.0, 0.0), Some("enough mem")),
            (res(0.5, 1.0, 11.0, 0.0), Some("enough disk")),
            (res(0.5, 1.0, 1.0, 2.0), Some("enough gpus")),
        ];
        for (want, rejection) in table {
            let task = TaskDemand::new(0, "j", want);
            let got = ResourcesFitFilter
                .check(&task, &host, &Round::default())
                .err()
                .map(|r| r.reason);
            assert_eq!(got.as_deref(), rejection, "{want:?}");
        }
    }
}
