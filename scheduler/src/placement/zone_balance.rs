//! Titus' zoneBalance: a job's instances stay even across the cluster's
//! zones. A host passes only if its zone holds no more of the job than the
//! emptiest zone, so after every placement the zones are within one
//! instance of each other. Zones come from the round (every zone seen,
//! offering or not), so a zone with no room holds the others back rather
//! than letting them drift: balance is a hard constraint here, as in Titus.
//!
//! Soft (`prefer.zone_balance`, a Titus soft constraint), it ranks hosts by
//! how many more of the job their zone holds than the emptiest zone: the
//! task goes to the emptiest zone it can use, and a zone with no room (or
//! no feasible host) no longer holds the others back.

use super::filter::{Filter, Rejection};
use super::host_view::HostView;
use super::preference::Preference;
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

/// Prefers hosts in the zones holding the fewest of the task's job: the
/// penalty is the instances the host's zone holds beyond the emptiest
/// zone's (0 = an emptiest zone). A host with no zone is the last resort.
#[derive(Debug, Clone, Copy, Default)]
pub struct ZoneBalancePreference;

impl Preference for ZoneBalancePreference {
    fn name(&self) -> &'static str {
        "zone_balance"
    }

    fn penalty(&self, task: &TaskDemand, host: &HostView, round: &Round) -> u32 {
        if !task.preferences().zone_balance {
            return 0;
        }
        let Some(zone) = host.zone() else {
            return u32::MAX;
        };
        let here = round.count(&task.job, zone);
        let least = round.emptiest_zone(&task.job).map_or(0, |(_, n)| n);
        here.saturating_sub(least)
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

    #[test]
    fn soft_zone_balance_counts_instances_beyond_the_emptiest_zone() {
        let mut round = Round::default();
        for z in ["a", "b", "c"] {
            round.zones.insert(z.into());
        }
        for z in ["a", "a", "a", "b", "c"] {
            round.add("j", z);
        }
        let host =
            |z: &str| HostView::new("x", "h", "*", Resources::default()).with_attribute("zone", z);
        let zoneless = HostView::new("x", "h", "*", Resources::default());
        let mut task = TaskDemand::new(0, "j", Resources::default());
        assert_eq!(ZoneBalancePreference.penalty(&task, &host("a"), &round), 0);
        task.placement.prefer = Some(crate::model::spec::Preferences {
            zone_balance: true,
            ..Default::default()
        });
        assert_eq!(ZoneBalancePreference.penalty(&task, &host("b"), &round), 0);
        assert_eq!(ZoneBalancePreference.penalty(&task, &host("a"), &round), 2);
        assert_eq!(
            ZoneBalancePreference.penalty(&task, &zoneless, &round),
            u32::MAX
        );
        assert!(
            ZoneBalanceFilter.check(&task, &host("a"), &round).is_ok(),
            "soft balance filters nothing"
        );
    }
}
