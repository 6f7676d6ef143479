//! Titus' `JobDisruptionBudget` as Drover's budget
//! ([`crate::model::spec_budget`]): taken out of the descriptor when a job
//! is created and when `UpdateJobDisruptionBudget` replaces it. The
//! descriptor keeps the message as sent; this is what Drover obeys.
//! Container health providers have no Drover counterpart (Drover's health
//! is the pod's check) and are kept in the descriptor only.

use crate::model::spec_budget::{
    BudgetPolicy, BudgetRate, DisruptionBudget, HourRange, TimeWindow, Weekday,
};
use drover_seed_api::titus::{self, job_disruption_budget as jdb};

/// Drover's budget for a Titus budget.
pub fn from_titus(budget: &titus::JobDisruptionBudget) -> DisruptionBudget {
    let policy = match &budget.policy {
        None => BudgetPolicy::Unlimited,
        Some(jdb::Policy::SelfManaged(p)) => BudgetPolicy::SelfManaged {
            relocation_time_ms: p.relocation_time_ms,
        },
        Some(jdb::Policy::AvailabilityPercentageLimit(p)) => BudgetPolicy::AvailabilityPercentage {
            percentage_of_healthy: p.percentage_of_healthy_containers,
        },
        Some(jdb::Policy::UnhealthyTasksLimit(p)) => BudgetPolicy::UnhealthyTasksLimit {
            limit_of_unhealthy: p.limit_of_unhealthy_containers,
        },
        Some(jdb::Policy::RelocationLimit(p)) => BudgetPolicy::RelocationLimit { limit: p.limit },
    };
    let rate = match &budget.rate {
        None | Some(jdb::Rate::RateUnlimited(_)) => BudgetRate::Unlimited,
        Some(jdb::Rate::RatePercentagePerHour(r)) => BudgetRate::PercentagePerHour {
            percentage: r.max_percentage_of_containers_relocated_in_hour,
        },
        Some(jdb::Rate::RatePerInterval(r)) => BudgetRate::PerInterval {
            interval_ms: r.interval_ms,
            limit: r.limit_per_interval,
        },
        Some(jdb::Rate::RatePercentagePerInterval(r)) => BudgetRate::PercentagePerInterval {
            interval_ms: r.interval_ms,
            percentage: r.percentage_limit_per_interval,
        },
    };
    let time_windows = budget
        .time_windows
        .iter()
        .map(|w| TimeWindow {
            // An unknown day number names no day Drover could match.
            days: w
                .days
                .iter()
                .filter_map(|d| u32::try_from(*d).ok().and_then(Weekday::from_index))
                .collect(),
            hourly: w
                .hourly_time_windows
                .iter()
                .map(|h| HourRange {
                    start_hour: h.start_hour,
                    end_hour: h.end_hour,
                })
                .collect(),
            time_zone: w.time_zone.clone(),
        })
        .collect();
    DisruptionBudget {
        policy,
        rate,
        time_windows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_titus_budget_becomes_the_one_drover_obeys() {
        let titus = titus::JobDisruptionBudget {
            policy: Some(jdb::Policy::AvailabilityPercentageLimit(
                jdb::AvailabilityPercentageLimit {
                    percentage_of_healthy_containers: 95.0,
                },
            )),
            rate: Some(jdb::Rate::RatePerInterval(jdb::RatePerInterval {
                interval_ms: 60_000,
                limit_per_interval: 2,
            })),
            time_windows: vec![titus::TimeWindow {
                days: vec![titus::Day::Monday as i32, titus::Day::Sunday as i32],
                hourly_time_windows: vec![titus::time_window::HourlyTimeWindow {
                    start_hour: 8,
                    end_hour: 16,
                }],
                time_zone: "UTC".into(),
            }],
            container_health_providers: Vec::new(),
        };
        let ours = from_titus(&titus);
        assert_eq!(
            ours.policy,
            BudgetPolicy::AvailabilityPercentage {
                percentage_of_healthy: 95.0
            }
        );
        assert_eq!(
            ours.rate,
            BudgetRate::PerInterval {
                interval_ms: 60_000,
                limit: 2
            }
        );
        assert_eq!(
            ours.time_windows[0].days,
            vec![Weekday::Monday, Weekday::Sunday]
        );
        assert_eq!(ours.time_windows[0].hourly[0].end_hour, 16);
    }
}
