//! Hosts in maintenance, as Peloton's `HostService` names their states,
//! and the rules of their moves. Pure: the engine holds the records and
//! the store keeps them.
//!
//! ```text
//!  UP ──StartMaintenance──▶ DRAINING ──no Drover run left──▶ DRAINED ──master took it down──▶ DOWN
//!   ▲                          │                                 │                               │
//!   └──────CompleteMaintenance─┴─────────────────────────────────┴───────────────────────────────┘
//! ```
//!
//! A host Drover knows and has no record for is UP. While DRAINING,
//! nothing new is placed on it and its runs move off at the pace their
//! jobs' disruption budgets allow (`engine/reconcile/drain.rs`). Once
//! DRAINED, a host Drover drained on an operator's call is taken DOWN
//! through the master's operator API (Mesos `START_MAINTENANCE`); one the
//! master asked for with an inverse offer is left to the operator, and the
//! inverse offer is accepted instead.

use super::time::UnixMillis;
use std::time::Duration;

/// Peloton `HostState` (without INVALID and UNKNOWN, which Drover never
/// holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostState {
    /// Offers are used.
    Up,
    /// Runs are moving off; nothing new is placed.
    Draining,
    /// No Drover run is left on it.
    Drained,
    /// The master has it in maintenance (Mesos DOWN).
    Down,
}

impl HostState {
    /// Peloton's name (`HOST_STATE_UP`, ...), also the stored form.
    pub fn peloton_name(self) -> &'static str {
        match self {
            HostState::Up => "HOST_STATE_UP",
            HostState::Draining => "HOST_STATE_DRAINING",
            HostState::Drained => "HOST_STATE_DRAINED",
            HostState::Down => "HOST_STATE_DOWN",
        }
    }

    /// The state a Peloton name (or its short form, `DRAINING`) names.
    pub fn from_name(name: &str) -> Option<HostState> {
        let short = name.strip_prefix("HOST_STATE_").unwrap_or(name);
        match short.to_ascii_uppercase().as_str() {
            "UP" => Some(HostState::Up),
            "DRAINING" => Some(HostState::Draining),
            "DRAINED" => Some(HostState::Drained),
            "DOWN" => Some(HostState::Down),
            _ => None,
        }
    }

    /// Whether placement may use the host's offers.
    pub fn is_placeable(self) -> bool {
        self == HostState::Up
    }
}

/// Who asked for the host's maintenance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainCause {
    /// An operator, through Drover's `StartMaintenance`: Drover takes the
    /// host DOWN once drained.
    Operator,
    /// The master, with an inverse offer (an operator's own schedule):
    /// Drover accepts the inverse offer once drained; the operator takes
    /// the host DOWN.
    InverseOffer,
}

impl DrainCause {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            DrainCause::Operator => "operator",
            DrainCause::InverseOffer => "inverse_offer",
        }
    }

    /// The cause a stored form names.
    pub fn from_name(name: &str) -> Option<DrainCause> {
        match name {
            "operator" => Some(DrainCause::Operator),
            "inverse_offer" => Some(DrainCause::InverseOffer),
            _ => None,
        }
    }
}

/// One host's maintenance, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostMaintenance {
    /// The host.
    pub hostname: String,
    /// Where it is now (never UP: an UP host has no record).
    pub state: HostState,
    /// Who asked.
    pub cause: DrainCause,
    /// When the drain started.
    pub since: UnixMillis,
    /// How long a batch run on the host is left to finish before it is
    /// killed and requeued (0: at once, as the budget allows).
    pub batch_grace: Duration,
    /// The inverse offer to accept once drained
    /// ([`DrainCause::InverseOffer`]).
    pub inverse_offer: Option<String>,
}

/// Why a maintenance request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// A request naming no host.
    #[error("hostnames: at least one host is required")]
    NoHosts,
    /// A host no offer or run has named (Peloton: "host is not a Peloton
    /// agent").
    #[error("host {0} is not a known agent")]
    Unknown(String),
    /// CompleteMaintenance of a host not in maintenance.
    #[error("host {0} is not in maintenance")]
    NotInMaintenance(String),
}

/// What a drain does to a run on a draining host now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainVerdict {
    /// Move it (kill it; its job relaunches it elsewhere) if the budget
    /// allows.
    Move,
    /// Leave it this much longer (a batch run's grace, a self-managed
    /// job's relocation time).
    Wait(Duration),
}

/// What a drain that started at `since` does to a run now: a batch run is
/// given `batch_grace` to finish, a self-managed job `self_managed` to move
/// itself; then it is moved.
pub fn drain_verdict(
    since: UnixMillis,
    batch_grace: Option<Duration>,
    self_managed: Option<Duration>,
    now: UnixMillis,
) -> DrainVerdict {
    let wait = batch_grace
        .into_iter()
        .chain(self_managed)
        .max()
        .unwrap_or(Duration::ZERO);
    let elapsed = Duration::from_millis(now.saturating_sub(since).max(0) as u64);
    match wait.checked_sub(elapsed) {
        Some(left) if !left.is_zero() => DrainVerdict::Wait(left),
        _ => DrainVerdict::Move,
    }
}

/// A window of unavailability the master announced for an agent
/// (`Offer.unavailability`, an inverse offer's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailability {
    /// When it starts.
    pub start: UnixMillis,
    /// How long it lasts (None: until further notice).
    pub duration: Option<Duration>,
}

impl Unavailability {
    /// Whether the host is unavailable at some moment within
    /// `[now, now + lookahead]`: a run placed there now would be
    /// disrupted soon. A window that ended is no longer a reason.
    pub fn is_near(&self, now: UnixMillis, lookahead: Duration) -> bool {
        let horizon = now.saturating_add(lookahead.as_millis() as i64);
        let ended = self
            .duration
            .is_some_and(|d| self.start.saturating_add(d.as_millis() as i64) <= now);
        self.start <= horizon && !ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_in_pelotons_names_and_short_forms() {
        for state in [
            HostState::Up,
            HostState::Draining,
            HostState::Drained,
            HostState::Down,
        ] {
            assert_eq!(HostState::from_name(state.peloton_name()), Some(state));
        }
        assert_eq!(HostState::from_name("draining"), Some(HostState::Draining));
        assert_eq!(HostState::from_name("HOST_STATE_INVALID"), None);
        assert!(HostState::Up.is_placeable());
        assert!(!HostState::Drained.is_placeable());
    }

    #[test]
    fn batch_runs_get_their_grace_and_self_managed_jobs_their_time() {
        let s = Duration::from_secs;
        let table = [
            // (batch grace, self-managed wait, elapsed ms) -> verdict
            ((None, None, 0), DrainVerdict::Move),
            ((Some(s(10)), None, 4_000), DrainVerdict::Wait(s(6))),
            ((Some(s(10)), None, 10_000), DrainVerdict::Move),
            ((None, Some(s(5)), 1_000), DrainVerdict::Wait(s(4))),
            ((Some(s(2)), Some(s(5)), 3_000), DrainVerdict::Wait(s(2))),
        ];
        for ((grace, managed, elapsed), want) in table {
            assert_eq!(
                drain_verdict(1_000, grace, managed, 1_000 + elapsed),
                want,
                "{grace:?} {managed:?} {elapsed}"
            );
        }
    }

    #[test]
    fn unavailability_matters_from_lookahead_before_it_until_it_ends() {
        let hour = Duration::from_secs(3600);
        let w = Unavailability {
            start: 10_000_000,
            duration: Some(hour),
        };
        assert!(!w.is_near(0, hour));
        assert!(w.is_near(10_000_000 - 3_600_000, hour));
        assert!(w.is_near(10_000_000 + 1, hour));
        assert!(!w.is_near(10_000_000 + 3_600_000, hour));
        let forever = Unavailability {
            start: 0,
            duration: None,
        };
        assert!(forever.is_near(1_000_000_000, Duration::ZERO));
    }
}
