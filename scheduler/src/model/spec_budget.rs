//! A job's disruption budget as users write it: Titus'
//! `JobDisruptionBudget` (a policy, a rate, time windows) in Drover's
//! terms. The Titus face fills it from the `JobDescriptor` it keeps; the
//! JSON face takes it as `disruption_budget` in a job's spec. The rule that
//! reads it is [`crate::model::policies::disruption_budget`].

use serde::{Deserialize, Serialize};

/// Titus `JobDisruptionBudget`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisruptionBudget {
    /// How many instances may be down because of Drover.
    #[serde(default)]
    pub policy: BudgetPolicy,
    /// How fast instances may be disrupted.
    #[serde(default)]
    pub rate: BudgetRate,
    /// When disruptions may happen (UTC); none: at any time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub time_windows: Vec<TimeWindow>,
}

/// Titus' budget policies (the `Policy` oneof).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum BudgetPolicy {
    /// No policy bound (Titus has none: the job had no policy).
    #[default]
    Unlimited,
    /// The job moves its own instances (Titus `SelfManaged`): Drover
    /// leaves them `relocation_time_ms` after a drain starts, then moves
    /// them within the rate and time windows.
    SelfManaged {
        /// How long the job is given to move itself.
        relocation_time_ms: u64,
    },
    /// At least this percentage of the wanted instances stays available.
    AvailabilityPercentage {
        /// Titus `percentageOfHealthyContainers`, 0 to 100.
        percentage_of_healthy: f64,
    },
    /// At most this many instances unavailable.
    UnhealthyTasksLimit {
        /// Titus `limitOfUnhealthyContainers`.
        limit_of_unhealthy: u32,
    },
    /// Each instance may be moved at most this many times (a host drain
    /// past it waits for an operator).
    RelocationLimit {
        /// Titus `RelocationLimit.limit`.
        limit: u32,
    },
}

/// Titus' budget rates (the `Rate` oneof).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum BudgetRate {
    /// No rate bound.
    #[default]
    Unlimited,
    /// At most this percentage of the wanted instances per hour.
    PercentagePerHour {
        /// Titus `maxPercentageOfContainersRelocatedInHour`.
        percentage: f64,
    },
    /// At most `limit` disruptions in any `interval_ms`.
    PerInterval {
        /// The interval.
        interval_ms: u64,
        /// Disruptions allowed within it.
        limit: u32,
    },
    /// At most this percentage of the wanted instances in any `interval_ms`.
    PercentagePerInterval {
        /// The interval.
        interval_ms: u64,
        /// Titus `percentageLimitPerInterval`.
        percentage: f64,
    },
}

/// Titus `TimeWindow`: on these days (none: every day), within these
/// hours (none: all day). Drover reads the hours in UTC; a window naming
/// another time zone is refused when the job is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeWindow {
    /// Days of the week, Monday first (Titus `Day`: 0 = Monday).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<Weekday>,
    /// `[start_hour, end_hour)` ranges, 0 to 24.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hourly: Vec<HourRange>,
    /// Titus `timeZone`; only UTC (or empty) is served.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub time_zone: String,
}

/// Titus `HourlyTimeWindow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HourRange {
    /// First hour in the window.
    pub start_hour: u32,
    /// First hour past it (24: midnight).
    pub end_hour: u32,
}

/// Titus `Day`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    /// Monday = 0, as Titus numbers them.
    pub fn from_index(index: u32) -> Option<Weekday> {
        use Weekday::*;
        [
            Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday,
        ]
        .get(index as usize)
        .copied()
    }
}

/// Why a budget cannot be served.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BudgetError {
    /// A percentage outside 0..=100.
    #[error("{field}: {value} is not a percentage (0 to 100)")]
    Percentage {
        /// The field.
        field: &'static str,
        /// Its value.
        value: f64,
    },
    /// A rate interval of zero.
    #[error("rate.interval_ms: must be above 0")]
    ZeroInterval,
    /// Hours outside 0..=24 or a start not before its end.
    #[error("time_windows[{window}].hourly: {start}-{end} is not a range of hours within 0 to 24")]
    Hours {
        /// Which window.
        window: usize,
        /// Its start.
        start: u32,
        /// Its end.
        end: u32,
    },
    /// A time zone other than UTC.
    #[error("time_windows[{window}].time_zone: {zone:?} is not served; only UTC is")]
    TimeZone {
        /// Which window.
        window: usize,
        /// The zone named.
        zone: String,
    },
}

impl DisruptionBudget {
    /// Checks the budget can be served.
    pub fn validate(&self) -> Result<(), BudgetError> {
        let percentage = |field, value: f64| {
            if (0.0..=100.0).contains(&value) {
                Ok(())
            } else {
                Err(BudgetError::Percentage { field, value })
            }
        };
        if let BudgetPolicy::AvailabilityPercentage {
            percentage_of_healthy,
        } = self.policy
        {
            percentage("policy.percentage_of_healthy", percentage_of_healthy)?;
        }
        match self.rate {
            BudgetRate::PercentagePerHour { percentage: p } => percentage("rate.percentage", p)?,
            BudgetRate::PerInterval { interval_ms: 0, .. }
            | BudgetRate::PercentagePerInterval { interval_ms: 0, .. } => {
                return Err(BudgetError::ZeroInterval)
            }
            BudgetRate::PercentagePerInterval { percentage: p, .. } => {
                percentage("rate.percentage", p)?
            }
            _ => {}
        }
        for (window, w) in self.time_windows.iter().enumerate() {
            if !matches!(w.time_zone.as_str(), "" | "UTC" | "Etc/UTC" | "GMT") {
                return Err(BudgetError::TimeZone {
                    window,
                    zone: w.time_zone.clone(),
                });
            }
            for h in &w.hourly {
                if h.start_hour >= h.end_hour || h.end_hour > 24 {
                    return Err(BudgetError::Hours {
                        window,
                        start: h.start_hour,
                        end: h.end_hour,
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_reads_from_json_as_users_write_it() {
        let budget: DisruptionBudget = serde_json::from_value(serde_json::json!({
            "policy": {"availability_percentage": {"percentage_of_healthy": 90.0}},
            "rate": {"per_interval": {"interval_ms": 60000, "limit": 2}},
            "time_windows": [{"days": ["MONDAY"], "hourly": [{"start_hour": 9, "end_hour": 17}]}]
        }))
        .unwrap();
        assert_eq!(
            budget.policy,
            BudgetPolicy::AvailabilityPercentage {
                percentage_of_healthy: 90.0
            }
        );
        assert_eq!(budget.time_windows[0].days, vec![Weekday::Monday]);
        budget.validate().unwrap();
    }

    #[test]
    fn budgets_drover_cannot_serve_are_refused_naming_the_field() {
        let mut b = DisruptionBudget {
            policy: BudgetPolicy::AvailabilityPercentage {
                percentage_of_healthy: 120.0,
            },
            ..DisruptionBudget::default()
        };
        assert!(b
            .validate()
            .unwrap_err()
            .to_string()
            .contains("percentage_of_healthy"));
        b.policy = BudgetPolicy::Unlimited;
        b.rate = BudgetRate::PerInterval {
            interval_ms: 0,
            limit: 1,
        };
        assert_eq!(b.validate(), Err(BudgetError::ZeroInterval));
        b.rate = BudgetRate::Unlimited;
        b.time_windows = vec![TimeWindow {
            time_zone: "PST".into(),
            ..TimeWindow::default()
        }];
        assert!(b.validate().unwrap_err().to_string().contains("only UTC"));
        b.time_windows = vec![TimeWindow {
            hourly: vec![HourRange {
                start_hour: 18,
                end_hour: 9,
            }],
            ..TimeWindow::default()
        }];
        assert!(matches!(b.validate(), Err(BudgetError::Hours { .. })));
    }
}
