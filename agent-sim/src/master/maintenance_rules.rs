//! Mesos' maintenance rules, pure: how a `MachineID` is compared, and the
//! checks a schedule and a list of machines pass before the master acts on
//! them (Mesos `src/master/maintenance.cpp`, `validation`), each refusal
//! with Mesos' own words, which the operator API answers with 400.

use std::net::Ipv4Addr;

use drover_proto::v1;

use crate::fixed_hash::HashSet;
use crate::operator_json::mesos_json;
use crate::operator_proto::Schedule;

/// A `MachineID` as Mesos compares it: a hostname matches in any case, and
/// an unset field only matches an unset field (so a machine named by
/// hostname alone is not the agent's machine, which has both).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MachineKey {
    pub hostname: Option<String>,
    pub ip: Option<String>,
}

impl MachineKey {
    pub fn of(id: &v1::MachineId) -> MachineKey {
        MachineKey {
            hostname: id.hostname.as_ref().map(|h| h.to_lowercase()),
            ip: id.ip.clone(),
        }
    }
}

/// Why a schedule or a list of machines breaks Mesos' rules; each says
/// so in Mesos' words (the operator API answers them with 400). None is
/// retryable: the call itself must change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// A machine with neither hostname nor IP.
    #[error("Both 'hostname' and 'ip' for a machine are empty")]
    Nameless,
    /// A machine whose IP is not an IPv4 address.
    #[error("Failed to parse IPv4: {0}")]
    BadIp(String),
    /// START_MAINTENANCE or STOP_MAINTENANCE without machines.
    #[error("List of machines is empty")]
    NoMachines,
    /// A machine named twice (the machine as Mesos writes it, JSON).
    #[error("Machine '{0}' appears more than once in the schedule")]
    Repeated(String),
    /// A window without machines.
    #[error("List of machines in the maintenance window is empty")]
    EmptyWindow,
    /// A window whose duration is negative.
    #[error("Unavailability 'duration' is negative")]
    NegativeDuration,
    /// A DOWN machine left out of a new schedule (only STOP_MAINTENANCE
    /// takes it out).
    #[error("Machine '{0}' is deactivated and cannot be removed from the schedule")]
    DownDropped(String),
}

/// The machine as Mesos names it in its errors: its JSON, compact.
pub fn describe(id: &v1::MachineId) -> String {
    mesos_json(id).to_string()
}

/// The machine as Mesos prints a `MachineID` in prose: `host (ip)`,
/// `host`, or `(ip)`.
pub fn machine_words(id: &v1::MachineId) -> String {
    match (id.hostname.as_deref(), id.ip.as_deref()) {
        (Some(h), Some(ip)) => format!("{h} ({ip})"),
        (Some(h), None) => h.to_owned(),
        (None, ip) => format!("({})", ip.unwrap_or("")),
    }
}

/// One machine: a hostname or an IP, and the IP, if any, an IPv4 address.
pub fn machine(id: &v1::MachineId) -> Result<(), RuleError> {
    let hostname = id.hostname.as_deref().unwrap_or("");
    let ip = id.ip.as_deref().unwrap_or("");
    if hostname.is_empty() && ip.is_empty() {
        return Err(RuleError::Nameless);
    }
    if !ip.is_empty() && ip.parse::<Ipv4Addr>().is_err() {
        return Err(RuleError::BadIp(ip.to_owned()));
    }
    Ok(())
}

/// START_MAINTENANCE's and STOP_MAINTENANCE's list: not empty, each
/// machine valid and listed once.
pub fn machines(ids: &[v1::MachineId]) -> Result<(), RuleError> {
    if ids.is_empty() {
        return Err(RuleError::NoMachines);
    }
    let mut seen = HashSet::default();
    for id in ids {
        machine(id)?;
        if !seen.insert(MachineKey::of(id)) {
            return Err(RuleError::Repeated(describe(id)));
        }
    }
    Ok(())
}

/// UPDATE_MAINTENANCE_SCHEDULE's schedule: every window names machines and
/// a non-negative duration, no machine is in two windows, and no machine
/// that is `DOWN` (in `down`) is left out.
pub fn schedule(schedule: &Schedule, down: &[v1::MachineId]) -> Result<(), RuleError> {
    let mut updated = HashSet::default();
    for window in &schedule.windows {
        if window.machine_ids.is_empty() {
            return Err(RuleError::EmptyWindow);
        }
        if window
            .unavailability
            .duration
            .as_ref()
            .is_some_and(|d| d.nanoseconds < 0)
        {
            return Err(RuleError::NegativeDuration);
        }
        for id in &window.machine_ids {
            machine(id)?;
            if !updated.insert(MachineKey::of(id)) {
                return Err(RuleError::Repeated(describe(id)));
            }
        }
    }
    for id in down {
        if !updated.contains(&MachineKey::of(id)) {
            return Err(RuleError::DownDropped(describe(id)));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::operator_proto::Window;

    fn id(hostname: &str, ip: &str) -> v1::MachineId {
        v1::MachineId {
            hostname: (!hostname.is_empty()).then(|| hostname.to_owned()),
            ip: (!ip.is_empty()).then(|| ip.to_owned()),
        }
    }

    fn window(ids: Vec<v1::MachineId>, duration: i64) -> Window {
        Window {
            machine_ids: ids,
            unavailability: v1::Unavailability {
                start: v1::TimeInfo { nanoseconds: 0 },
                duration: Some(v1::DurationInfo {
                    nanoseconds: duration,
                }),
            },
        }
    }

    #[test]
    fn hostnames_match_in_any_case_but_a_missing_ip_never_matches_one() {
        assert_eq!(
            MachineKey::of(&id("Agent-1", "10.0.0.1")),
            MachineKey::of(&id("agent-1", "10.0.0.1"))
        );
        assert_ne!(
            MachineKey::of(&id("agent-1", "")),
            MachineKey::of(&id("agent-1", "10.0.0.1"))
        );
    }

    #[test]
    fn a_machine_in_two_windows_is_refused_with_mesos_words() {
        let s = Schedule {
            windows: vec![
                window(vec![id("a", "10.0.0.1")], 1),
                window(vec![id("A", "10.0.0.1")], 1),
            ],
        };
        assert_eq!(
            schedule(&s, &[]).unwrap_err().to_string(),
            r#"Machine '{"hostname":"A","ip":"10.0.0.1"}' appears more than once in the schedule"#
        );
    }

    #[test]
    fn empty_windows_negative_durations_bad_ips_and_dropped_down_machines_are_refused() {
        let empty = Schedule {
            windows: vec![window(vec![], 1)],
        };
        assert_eq!(
            schedule(&empty, &[]).unwrap_err().to_string(),
            "List of machines in the maintenance window is empty"
        );
        let negative = Schedule {
            windows: vec![window(vec![id("a", "")], -1)],
        };
        assert_eq!(
            schedule(&negative, &[]).unwrap_err().to_string(),
            "Unavailability 'duration' is negative"
        );
        let bad_ip = Schedule {
            windows: vec![window(vec![id("a", "300.1.1.1")], 1)],
        };
        assert_eq!(
            schedule(&bad_ip, &[]).unwrap_err().to_string(),
            "Failed to parse IPv4: 300.1.1.1"
        );
        let nameless = Schedule {
            windows: vec![window(vec![id("", "")], 1)],
        };
        assert_eq!(
            schedule(&nameless, &[]).unwrap_err().to_string(),
            "Both 'hostname' and 'ip' for a machine are empty"
        );
        let kept = Schedule {
            windows: vec![window(vec![id("a", "10.0.0.1")], 1)],
        };
        assert!(schedule(&kept, &[id("a", "10.0.0.1")]).is_ok());
        assert_eq!(
            schedule(&Schedule::default(), &[id("a", "10.0.0.1")])
                .unwrap_err()
                .to_string(),
            r#"Machine '{"hostname":"a","ip":"10.0.0.1"}' is deactivated and cannot be removed from the schedule"#
        );
    }

    #[test]
    fn a_machine_is_printed_in_prose_as_mesos_prints_it() {
        assert_eq!(machine_words(&id("a", "10.0.0.1")), "a (10.0.0.1)");
        assert_eq!(machine_words(&id("a", "")), "a");
        assert_eq!(machine_words(&id("", "10.0.0.1")), "(10.0.0.1)");
    }

    #[test]
    fn a_machine_list_must_name_machines_once() {
        assert_eq!(machines(&[]).unwrap_err(), RuleError::NoMachines);
        assert!(machines(&[id("a", ""), id("a", "")])
            .unwrap_err()
            .to_string()
            .contains("appears more than once"));
        assert!(machines(&[id("a", ""), id("b", "")]).is_ok());
    }
}
