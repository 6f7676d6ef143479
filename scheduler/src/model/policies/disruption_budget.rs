//! How many of a job's instances Drover may disrupt now, on its own
//! initiative: a drain, a preemption, a rolling update or restart, a kill
//! with relocation. Every voluntary disruption asks this one rule, so a
//! job's budget holds whatever causes the disruption.
//!
//! The budget is the job's `sla.maximum_unavailable_instances` (0: no
//! bound), less the instances already unavailable (not RUNNING, or not yet
//! HEALTHY, see [`crate::model::availability`]).

use crate::model::spec::JobSpec;
use crate::model::time::UnixMillis;

/// A job's instances as the budget sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobAvailability {
    /// Instances the job wants running.
    pub wanted: u32,
    /// Of those, the ones not available now.
    pub unavailable: u32,
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
pub fn allowance(spec: &JobSpec, availability: JobAvailability, _now: UnixMillis) -> Allowance {
    let max_unavailable = spec
        .sla
        .as_ref()
        .map_or(0, |s| s.maximum_unavailable_instances);
    if max_unavailable == 0 {
        return Allowance {
            disruptions: availability.wanted,
            held_by: None,
        };
    }
    let disruptions = max_unavailable.saturating_sub(availability.unavailable);
    let held_by = (disruptions == 0).then(|| {
        format!(
            "{} of {} instances unavailable; sla.maximum_unavailable_instances is {}",
            availability.unavailable, availability.wanted, max_unavailable
        )
    });
    Allowance {
        disruptions,
        held_by,
    }
}
