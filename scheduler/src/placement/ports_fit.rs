//! Ports: every static port the task names is among the host's free
//! offered ports, and enough others are left for its dynamic ones. Which
//! dynamic ports it gets is decided when it is placed ([`super::place`]).

use super::filter::{Filter, Rejection};
use super::host_view::HostView;
use super::round::Round;
use crate::model::demand::TaskDemand;

/// Rejects hosts without the task's ports.
#[derive(Debug, Clone, Copy, Default)]
pub struct PortsFitFilter;

impl Filter for PortsFitFilter {
    fn name(&self) -> &'static str {
        "ports"
    }

    fn check(&self, task: &TaskDemand, host: &HostView, _: &Round) -> Result<(), Rejection> {
        if task.ports.is_empty() {
            return Ok(());
        }
        let mut statics = 0u64;
        for port in task.ports.iter().filter(|p| p.value != 0) {
            if !host.ports.contains(port.value) {
                return Err(Rejection {
                    filter: self.name(),
                    reason: format!("port {} free", port.value).into(),
                });
            }
            statics += 1;
        }
        let dynamic = task.ports.len() as u64 - statics;
        if host.ports.len() < statics + dynamic {
            return Err(Rejection {
                filter: self.name(),
                reason: format!("{dynamic} free dynamic ports").into(),
            });
        }
        Ok(())
    }

    fn admits(&self, task: &TaskDemand, host: &HostView, _: &Round) -> bool {
        if task.ports.is_empty() {
            return true;
        }
        let mut statics = 0u64;
        for port in task.ports.iter().filter(|p| p.value != 0) {
            if !host.ports.contains(port.value) {
                return false;
            }
            statics += 1;
        }
        let dynamic = task.ports.len() as u64 - statics;
        host.ports.len() >= statics + dynamic
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::port_ranges::PortRanges;
    use crate::model::resources::Resources;
    use crate::model::spec::PortSpec;

    fn port(name: &str, value: u32) -> PortSpec {
        PortSpec {
            name: name.into(),
            value,
            env_name: String::new(),
        }
    }

    #[test]
    fn static_ports_must_be_offered_and_dynamic_ones_must_be_left() {
        let host = HostView::new("a", "h", "*", Resources::default())
            .with_ports(PortRanges::new([(31000, 31001)]));
        let table = [
            (vec![], None),
            (vec![port("http", 31000)], None),
            (vec![port("http", 31000), port("x", 0)], None),
            (vec![port("http", 8080)], Some("port 8080 free")),
            (
                vec![port("a", 0), port("b", 0), port("c", 0)],
                Some("3 free dynamic ports"),
            ),
            (
                vec![port("a", 31000), port("b", 0), port("c", 0)],
                Some("2 free dynamic ports"),
            ),
        ];
        for (ports, want) in table {
            let mut task = TaskDemand::new(0, "j", Resources::default());
            task.ports = ports.clone();
            let got = PortsFitFilter
                .check(&task, &host, &Round::default())
                .err()
                .map(|r| r.reason);
            assert_eq!(got.as_deref(), want, "{ports:?}");
        }
    }
}
