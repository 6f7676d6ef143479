//! How many of a job's instances Drover may disrupt now, on its own
//! initiative: a drain, a preemption, a rolling update or restart, a kill
//! with relocation. Every voluntary disruption asks this one rule, so a
//! job's budget holds whatever causes the disruption.
//!
//! Bounds, each of which may hold the job (the tightest wins, and names
//! itself in [`Allowance::held_by`]):
//! - Peloton `sla.maximum_unavailable_instances` (0: no bound), less the
//!   instances already unavailable (not RUNNING, or not yet HEALTHY, see
//!   [`crate::model::availability`]);
//! - Titus' budget policy ([`BudgetPolicy`]): an availability percentage
//!   (that share of the wanted instances stays available), an unhealthy
//!   tasks limit (as Peloton's bound), self-managed and relocation limits
//!   (no job-wide bound; see [`may_relocate`] and the drain for theirs);
//! - Titus' rate ([`BudgetRate`]), less the disruptions already made
//!   within its interval ([`JobAvailability::recent_disruptions`], counted
//!   over [`rate_interval`] by [`recent_disruptions`]: runs Drover killed
//!   for a drain, a restart or a preemption);
//! - Titus' time windows (UTC): outside all of them, nothing.
//!
//! [`job_availability`] is a job's availability as every caller that has
//! its runs counts it (the engine's preemption, the API's budget view), so
//! what the API says may be disrupted is what the engine allows.

use crate::model::availability::is_available;
use crate::model::job::Job;
use crate::model::policies::preemption::PREEMPTED_REASON;
use crate::model::run::{Run, DRAIN_REASON};
use crate::model::spec::JobSpec;
use crate::model::spec_budget::{BudgetPolicy, BudgetRate, TimeWindow, Weekday};
use crate::model::time::{millis, UnixMillis};
use std::time::Duration;

/// A job's instances as the budget sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JobAvailability {
    /// Instances the job wants running.
    pub wanted: u32,
    /// Of those, the ones not available now.
    pub unavailable: u32,
    /// Voluntary disruptions Drover made within the budget's rate
    /// interval ([`rate_interval`]) up to now; 0 when it has none.
    pub recent_disruptions: u32,
}

/// What the budget allows now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowance {
    /// Instances that may be disrupted now.
    pub disruptions: u32,
    /// Why no more may be (for the API, the CLI and pending reasons); None
    /// when nothing holds the job back.
    pub held_by: Option<String>,
}

/// The job's allowance now.
pub fn allowance(spec: &JobSpec, availability: JobAvailability, now: UnixMillis) -> Allowance {
    let JobAvailability {
        wanted,
        unavailable,
        recent_disruptions,
    } = availability;
    // (disruptions left, why that bound holds once it reaches 0)
    let mut bounds: Vec<(u32, String)> = Vec::new();
    let max_unavailable = spec
        .sla
        .as_ref()
        .map_or(0, |s| s.maximum_unavailable_instances);
    if max_unavailable > 0 {
        bounds.push((
            max_unavailable.saturating_sub(unavailable),
            format!(
                "{unavailable} of {wanted} instances unavailable; \
                 sla.maximum_unavailable_instances is {max_unavailable}"
            ),
        ));
    }
    if let Some(budget) = &spec.disruption_budget {
        match budget.policy {
            BudgetPolicy::AvailabilityPercentage {
                percentage_of_healthy,
            } => {
                let keep = (f64::from(wanted) * percentage_of_healthy / 100.0).ceil() as u32;
                let available = wanted.saturating_sub(unavailable);
                bounds.push((
                    available.saturating_sub(keep),
                    format!(
                        "{available} of {wanted} instances available; \
                         the budget keeps {percentage_of_healthy}% ({keep}) available"
                    ),
                ));
            }
            BudgetPolicy::UnhealthyTasksLimit { limit_of_unhealthy } => bounds.push((
                limit_of_unhealthy.saturating_sub(unavailable),
                format!(
                    "{unavailable} of {wanted} instances unavailable; \
                     the budget allows {limit_of_unhealthy} unhealthy"
                ),
            )),
            BudgetPolicy::Unlimited
            | BudgetPolicy::SelfManaged { .. }
            | BudgetPolicy::RelocationLimit { .. } => {}
        }
        if let Some(limit) = rate_limit(&budget.rate, wanted) {
            bounds.push((
                limit.saturating_sub(recent_disruptions),
                format!(
                    "{recent_disruptions} disruptions within the budget's rate interval; \
                     its rate allows {limit}"
                ),
            ));
        }
        if !budget.time_windows.is_empty() && !budget.time_windows.iter().any(|w| within(w, now)) {
            bounds.push((0, "outside the budget's time windows".to_owned()));
        }
    }
    let Some((disruptions, why)) = bounds.into_iter().min_by_key(|(left, _)| *left) else {
        return Allowance {
            disruptions: wanted,
            held_by: None,
        };
    };
    Allowance {
        disruptions,
        held_by: (disruptions == 0).then_some(why),
    }
}

/// The interval over which the caller counts
/// [`JobAvailability::recent_disruptions`]; None when the job's budget has
/// no rate.
pub fn rate_interval(spec: &JobSpec) -> Option<Duration> {
    match spec.disruption_budget.as_ref()?.rate {
        BudgetRate::Unlimited => None,
        BudgetRate::PercentagePerHour { .. } => Some(Duration::from_secs(3600)),
        BudgetRate::PerInterval { interval_ms, .. }
        | BudgetRate::PercentagePerInterval { interval_ms, .. } => {
            Some(Duration::from_millis(interval_ms))
        }
    }
}

/// `job`'s instances as the budget sees them at `now`, from each
/// instance's runs (oldest first; every instance once at most): an
/// instance is unavailable unless its
/// latest run is available ([`is_available`]: RUNNING, and HEALTHY if
/// checked), and the rate's recent disruptions are
/// [`recent_disruptions`].
pub fn job_availability<'a>(
    job: &Job,
    instances: impl Iterator<Item = (u32, &'a [Run])> + Clone,
    now: UnixMillis,
) -> JobAvailability {
    let wanted = job.spec.instance_count;
    // An instance with no runs (or none given) is not available.
    let available = instances
        .clone()
        .filter(|(instance, history)| {
            *instance < wanted
                && history
                    .last()
                    .is_some_and(|run| is_available(&job.spec.pod_spec(*instance), run))
        })
        .count() as u32;
    JobAvailability {
        wanted,
        unavailable: wanted.saturating_sub(available),
        recent_disruptions: recent_disruptions(job, instances, now),
    }
}

/// Voluntary disruptions of `job` within its budget's rate interval up to
/// `now`: runs Drover asked to kill for a drain, a restart or a
/// preemption. 0 when the budget has no rate.
pub fn recent_disruptions<'a>(
    job: &Job,
    instances: impl Iterator<Item = (u32, &'a [Run])>,
    now: UnixMillis,
) -> u32 {
    let Some(interval) = rate_interval(&job.spec) else {
        return 0;
    };
    let since = now.saturating_sub(millis(interval));
    let mut count = 0u32;
    for (instance, history) in instances {
        let restart_from = job.restart_from(instance);
        let voluntary = |r: &&Run| {
            r.kill_reason == Some(DRAIN_REASON)
                || r.kill_reason == Some(PREEMPTED_REASON)
                || r.run < restart_from
        };
        count += history
            .iter()
            .filter(|r| r.kill_requested_at.is_some_and(|at| at >= since))
            .filter(voluntary)
            .count() as u32;
    }
    count
}

/// Whether an instance moved `relocations` times already may be moved
/// again (Titus `RelocationLimit`; any other policy: yes).
pub fn may_relocate(spec: &JobSpec, relocations: u32) -> bool {
    match spec.disruption_budget.as_ref().map(|b| &b.policy) {
        Some(BudgetPolicy::RelocationLimit { limit }) => relocations < *limit,
        _ => true,
    }
}

/// How long a self-managed job is left to move itself off a draining host
/// before Drover moves it (Titus `SelfManaged.relocationTimeMs`).
pub fn self_managed_wait(spec: &JobSpec) -> Option<Duration> {
    match spec.disruption_budget.as_ref().map(|b| &b.policy) {
        Some(BudgetPolicy::SelfManaged { relocation_time_ms }) => {
            Some(Duration::from_millis(*relocation_time_ms))
        }
        _ => None,
    }
}

/// The most disruptions the rate allows within its interval. A percentage
/// of at least one instance's worth rounds down, but never to 0 for a
/// positive percentage: a budget that allows some must allow one.
fn rate_limit(rate: &BudgetRate, wanted: u32) -> Option<u32> {
    let of_wanted = |percentage: f64| {
        let n = (f64::from(wanted) * percentage / 100.0).floor() as u32;
        if percentage > 0.0 {
            n.max(1)
        } else {
            0
        }
    };
    match *rate {
        BudgetRate::Unlimited => None,
        BudgetRate::PerInterval { limit, .. } => Some(limit),
        BudgetRate::PercentagePerHour { percentage }
        | BudgetRate::PercentagePerInterval { percentage, .. } => Some(of_wanted(percentage)),
    }
}

/// Whether `now` (UTC) falls in `window`.
fn within(window: &TimeWindow, now: UnixMillis) -> bool {
    const DAY_MS: i64 = 86_400_000;
    let days = now.div_euclid(DAY_MS);
    // 1970-01-01 was a Thursday (Monday = 0).
    let weekday = Weekday::from_index((days + 3).rem_euclid(7) as u32);
    let hour = (now.rem_euclid(DAY_MS) / 3_600_000) as u32;
    let day_ok = window.days.is_empty() || weekday.is_some_and(|d| window.days.contains(&d));
    let hour_ok = window.hourly.is_empty()
        || window
            .hourly
            .iter()
            .any(|h| h.start_hour <= hour && hour < h.end_hour);
    day_ok && hour_ok
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::spec::SlaSpec;
    use crate::model::spec_budget::{DisruptionBudget, HourRange};

    fn spec(max_unavailable: u32, budget: Option<DisruptionBudget>) -> JobSpec {
        let mut spec: JobSpec = serde_json::from_value(serde_json::json!({
            "type": "SERVICE", "name": "s", "instance_count": 10,
            "default_spec": {"containers": [{"command": {"value": "sleep 100"}}]}
        }))
        .unwrap();
        spec.sla = Some(SlaSpec {
            maximum_unavailable_instances: max_unavailable,
            ..SlaSpec::default()
        });
        spec.disruption_budget = budget;
        spec
    }

    fn avail(wanted: u32, unavailable: u32, recent: u32) -> JobAvailability {
        JobAvailability {
            wanted,
            unavailable,
            recent_disruptions: recent,
        }
    }

    fn budget(policy: BudgetPolicy, rate: BudgetRate) -> Option<DisruptionBudget> {
        Some(DisruptionBudget {
            policy,
            rate,
            time_windows: Vec::new(),
        })
    }

    // A Wednesday, 2026-12-09 10:30 UTC.
    const WEDNESDAY_1030: UnixMillis = 1_796_812_200_000;

    #[test]
    fn every_bound_caps_the_allowance_and_the_tightest_names_itself() {
        use BudgetPolicy as P;
        use BudgetRate as R;
        let pct = |p| P::AvailabilityPercentage {
            percentage_of_healthy: p,
        };
        let table = [
            // (max unavailable, budget, wanted, unavailable, recent) -> allowed
            ((0, None, 10, 0, 0), 10),
            ((2, None, 10, 0, 0), 2),
            ((2, None, 10, 1, 0), 1),
            ((2, None, 10, 3, 0), 0),
            ((0, budget(pct(80.0), R::Unlimited), 10, 0, 0), 2),
            ((0, budget(pct(80.0), R::Unlimited), 10, 1, 0), 1),
            ((0, budget(pct(85.0), R::Unlimited), 10, 0, 0), 1),
            ((0, budget(pct(100.0), R::Unlimited), 10, 0, 0), 0),
            (
                (
                    0,
                    budget(
                        P::UnhealthyTasksLimit {
                            limit_of_unhealthy: 3,
                        },
                        R::Unlimited,
                    ),
                    10,
                    1,
                    0,
                ),
                2,
            ),
            (
                (
                    5,
                    budget(
                        P::Unlimited,
                        R::PerInterval {
                            interval_ms: 60_000,
                            limit: 3,
                        },
                    ),
                    10,
                    0,
                    2,
                ),
                1,
            ),
            (
                (
                    0,
                    budget(P::Unlimited, R::PercentagePerHour { percentage: 20.0 }),
                    10,
                    0,
                    1,
                ),
                1,
            ),
            (
                (
                    0,
                    budget(P::Unlimited, R::PercentagePerHour { percentage: 1.0 }),
                    10,
                    0,
                    0,
                ),
                1,
            ),
            // The SLA and a Titus policy together: the tighter holds.
            ((2, budget(pct(50.0), R::Unlimited), 10, 0, 0), 2),
            ((5, budget(pct(90.0), R::Unlimited), 10, 0, 0), 1),
        ];
        for ((max, b, wanted, down, recent), want) in table {
            let s = spec(max, b.clone());
            let got = allowance(&s, avail(wanted, down, recent), WEDNESDAY_1030);
            assert_eq!(
                got.disruptions, want,
                "{max} {b:?} {wanted} {down} {recent}"
            );
            assert_eq!(got.held_by.is_some(), want == 0, "{got:?}");
        }
    }

    #[test]
    fn held_by_names_the_bound_that_holds() {
        let s = spec(2, None);
        let held = allowance(&s, avail(30, 2, 0), 0).held_by.unwrap();
        assert!(
            held.contains("sla.maximum_unavailable_instances is 2"),
            "{held}"
        );
        let s = spec(
            0,
            budget(
                BudgetPolicy::Unlimited,
                BudgetRate::PerInterval {
                    interval_ms: 1000,
                    limit: 1,
                },
            ),
        );
        let held = allowance(&s, avail(30, 0, 1), 0).held_by.unwrap();
        assert!(held.contains("rate allows 1"), "{held}");
    }

    #[test]
    fn nothing_is_allowed_outside_the_time_windows() {
        let window = |days: Vec<Weekday>, start, end| TimeWindow {
            days,
            hourly: vec![HourRange {
                start_hour: start,
                end_hour: end,
            }],
            time_zone: String::new(),
        };
        let with = |w: TimeWindow| {
            spec(
                0,
                Some(DisruptionBudget {
                    time_windows: vec![w],
                    ..DisruptionBudget::default()
                }),
            )
        };
        let open = with(window(vec![Weekday::Wednesday], 9, 17));
        assert_eq!(
            allowance(&open, avail(10, 0, 0), WEDNESDAY_1030).disruptions,
            10
        );
        let wrong_day = with(window(vec![Weekday::Thursday], 9, 17));
        let got = allowance(&wrong_day, avail(10, 0, 0), WEDNESDAY_1030);
        assert_eq!(got.disruptions, 0);
        assert_eq!(got.held_by.unwrap(), "outside the budget's time windows");
        let wrong_hour = with(window(Vec::new(), 11, 24));
        assert_eq!(
            allowance(&wrong_hour, avail(10, 0, 0), WEDNESDAY_1030).disruptions,
            0
        );
    }

    #[test]
    fn relocation_limits_and_self_management_are_per_instance_rules() {
        let s = spec(
            0,
            budget(
                BudgetPolicy::RelocationLimit { limit: 2 },
                BudgetRate::Unlimited,
            ),
        );
        assert!(may_relocate(&s, 1));
        assert!(!may_relocate(&s, 2));
        assert!(may_relocate(&spec(0, None), 100));
        let s = spec(
            0,
            budget(
                BudgetPolicy::SelfManaged {
                    relocation_time_ms: 5000,
                },
                BudgetRate::Unlimited,
            ),
        );
        assert_eq!(self_managed_wait(&s), Some(Duration::from_secs(5)));
        assert_eq!(allowance(&s, avail(10, 0, 0), 0).disruptions, 10);
        assert_eq!(
            rate_interval(&spec(
                0,
                budget(
                    BudgetPolicy::Unlimited,
                    BudgetRate::PercentagePerHour { percentage: 5.0 }
                )
            )),
            Some(Duration::from_secs(3600))
        );
    }
}
