//! Titus' zoneBalance: a job's instances stay even across the cluster's
//! zones. A host passes only if its zone holds no more of the job than the
//! emptiest zone, so after every placement the zones are within one
//! instance of each other. Zones come from the round (every zone seen,
//! offering or not), so a zone with no room holds the others back rather
//! than letting them drift: balance is a hard constraint here, as in Titus.

use super::filter::{Filter, Rejection};
use super::host_view::HostView;
use super::round::Round;
use crate::model::demand::TaskDemand;

/// Rejects hosts in zones that already hold more of the job than another.
#[derive(Debug, Clone, Copy, Default)]
pub struct ZoneBalanceFilter;

impl Filter for ZoneBalanceFilter {
    fn name(&self) -> &'static str {
        "zone_balance"
    }

    fn check(&self, task: &TaskDemand, host: &HostView, round: &Round) -> Result<(), Rejection> {
        if !task.placement.zone_balance {
            return Ok(());
        }
        let Some(zone) = host.zone() else {
            return Err(Rejection {
                filter: self.name(),
                reason: "a zone attribute (zone balance)".into(),
            });
        };
        let here = round.count(&task.job, zone);
        match round.emptiest_zone(&task.job) {
            Some((emptiest, least)) if here > least => Err(Rejection {
                filter: self.name(),
                reason: format!("zone balance (zone {emptiest} has fewer instances)").into(),
            }),
            _ => Ok(()),
        }
    }

    fn admits(&self, task: &TaskDemand, host: &HostView, round: &Round) -> bool {
        if !task.placement.zone_balance {
            return true;
        }
        let Some(zone) = host.zone() else {
            return false;
        };
        let here = round.count(&task.job, zone);
        round
            .emptiest_zone(&task.job)
            .is_none_or(|(_, least)| here <= least)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::resources::Resources;

    #[test]
    fn only_the_emptiest_zones_take_the_next_instance() {
        let mut round = Round::default();
        for z in ["a", "b", "c"] {
            round.zones.insert(z.into());
        }
        round.add("j", "a");
        round.add("j", "b");
        round.add("other", "c");
        let host =
            |z: &str| HostView::new("x", "h", "*", Resources::default()).with_attribute("zone", z);
        let mut task = TaskDemand::new(0, "j", Resources::default());
        assert!(
            ZoneBalanceFilter.check(&task, &host("a"), &round).is_ok(),
            "off by default"
        );
        task.placement.zone_balance = true;
        assert!(ZoneBalanceFilter.check(&task, &host("c"), &round).is_ok());
        let why = ZoneBalanceFilter
            .check(&task, &host("a"), &round)
            .unwrap_err();
        assert_eq!(why.reason, "zone balance (zone c has fewer instances)");
        let zoneless = HostView::new("x", "h", "*", Resources::default());
        assert!(ZoneBalanceFilter.check(&task, &zoneless, &round).is_err());
        round.add("j", "c");
        assert!(ZoneBalanceFilter.check(&task, &host("a"), &round).is_ok());
    }
}
