//! The first and cheapest filter: the task's resources fit in what is left
//! of the host's offers this round.

use super::filter::{Filter, Rejection};
use super::host_view::HostView;
use super::place::TaskDemand;

/// Rejects hosts without room for the task.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResourcesFitFilter;

impl Filter for ResourcesFitFilter {
    fn name(&self) -> &'static str {
        "resources"
    }

    fn check(&self, task: &TaskDemand, host: &HostView) -> Result<(), Rejection> {
        let have = &host.available;
        let want = &task.resources;
        let short = if want.cpus > have.cpus + 0.0005 {
            Some("cpus")
        } else if want.mem_mib > have.mem_mib + 0.0005 {
            Some("mem")
        } else if want.disk_mib > have.disk_mib + 0.0005 {
            Some("disk")
        } else {
            None
        };
        match short {
            None => Ok(()),
            Some(what) => Err(Rejection {
                filter: self.name(),
                reason: format!("not enough {what}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::Resources;

    fn res(cpus: f64, mem_mib: f64, disk_mib: f64) -> Resources {
        Resources {
            cpus,
            mem_mib,
            disk_mib,
        }
    }

    #[test]
    fn fits_and_misses_name_the_short_resource() {
        let host = HostView::new("a", "h", "*", res(1.0, 100.0, 10.0));
        let table = [
            (res(1.0, 100.0, 10.0), None),
            (res(0.1 + 0.2, 1.0, 0.0), None),
            (res(1.5, 1.0, 0.0), Some("not enough cpus")),
            (res(0.5, 101.0, 0.0), Some("not enough mem")),
            (res(0.5, 1.0, 11.0), Some("not enough disk")),
        ];
        for (want, rejection) in table {
            let task = TaskDemand {
                key: 0,
                resources: want,
            };
            let got = ResourcesFitFilter
                .check(&task, &host)
                .err()
                .map(|r| r.reason);
            assert_eq!(got.as_deref(), rejection, "{want:?}");
        }
    }
}
