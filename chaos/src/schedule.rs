//! The fault schedule: every fault of a dose, in a seeded order at seeded
//! times, with its seeded parameters (how long a partition lasts, which
//! agents churn). Pure: one seed gives one schedule, printed at the start
//! of a run so that a failing run can be replayed with `--seed`.

use std::fmt;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::dose::Dose;

/// One fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL the leading replica (its supervisor restarts it).
    KillLeader,
    /// SIGKILL a following replica, the `nth` of them (modulo how many).
    KillFollower { nth: usize },
    /// SIGSTOP the leader for `pause` (longer than its session), then
    /// SIGCONT: ZooKeeper expires its session and elects another while it
    /// cannot notice; resumed, it must stop before it acts.
    ExpireLeaderSession { pause: Duration },
    /// Cut the leader off ZooKeeper for `cut`, then heal.
    PartitionLeader { cut: Duration },
    /// SIGKILL the leading master; it is restarted as a standby.
    FailOverMaster,
    /// `count` seeded simulated agents of the leading master become
    /// unreachable for `down`, then return.
    ChurnAgents {
        count: usize,
        down: Duration,
        pick: u64,
    },
    /// Stop PostgreSQL (fast shutdown) and start it again.
    RestartPostgres,
}

impl Fault {
    /// The fault's kind, for the summary's counts.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::KillLeader => "leader SIGKILL",
            Fault::KillFollower { .. } => "follower SIGKILL",
            Fault::ExpireLeaderSession { .. } => "leader session expiry",
            Fault::PartitionLeader { .. } => "leader partition",
            Fault::FailOverMaster => "master failover",
            Fault::ChurnAgents { .. } => "agent churn",
            Fault::RestartPostgres => "PostgreSQL restart",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::KillLeader => write!(f, "SIGKILL the leading replica"),
            Fault::KillFollower { nth } => write!(f, "SIGKILL following replica #{nth}"),
            Fault::ExpireLeaderSession { pause } => write!(
                f,
                "expire the leader's ZooKeeper session (SIGSTOP for {:.1}s, then SIGCONT)",
                pause.as_secs_f64()
            ),
            Fault::PartitionLeader { cut } => write!(
                f,
                "partition the leader from ZooKeeper for {:.1}s",
                cut.as_secs_f64()
            ),
            Fault::FailOverMaster => write!(f, "SIGKILL the leading master (back as a standby)"),
            Fault::ChurnAgents { count, down, pick } => write!(
                f,
                "remove {count} agents (pick {pick}) for {:.1}s, then return them",
                down.as_secs_f64()
            ),
            Fault::RestartPostgres => write!(f, "restart PostgreSQL"),
        }
    }
}

/// A fault and when it is due, from the start of the fault window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub at: Duration,
    pub fault: Fault,
}

/// Every fault of `dose`, in time order, decided by `seed` alone.
pub fn plan(dose: &Dose, seed: u64) -> Vec<Planned> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let counts = &dose.faults;
    let session_ms = u64::try_from(dose.session_timeout.as_millis()).unwrap_or(u64::MAX);
    let mut faults = Vec::new();
    for _ in 0..counts.leader_kills {
        faults.push(Fault::KillLeader);
    }
    for _ in 0..counts.follower_kills {
        faults.push(Fault::KillFollower {
            nth: rng.random_range(0..dose.replicas.saturating_sub(1).max(1)),
        });
    }
    for _ in 0..counts.session_expiries {
        // Past the session timeout, with room for the server to notice.
        let pause = session_ms * 2 + rng.random_range(0..=session_ms);
        faults.push(Fault::ExpireLeaderSession {
            pause: Duration::from_millis(pause),
        });
    }
    for _ in 0..counts.partitions {
        let cut = session_ms + rng.random_range(session_ms..=session_ms * 3);
        faults.push(Fault::PartitionLeader {
            cut: Duration::from_millis(cut),
        });
    }
    for _ in 0..counts.master_failovers {
        faults.push(Fault::FailOverMaster);
    }
    for _ in 0..counts.agent_churns {
        let most = (dose.agents / 20).max(1);
        faults.push(Fault::ChurnAgents {
            count: rng.random_range(1..=most),
            down: Duration::from_millis(rng.random_range(2_000..=15_000)),
            pick: rng.random(),
        });
    }
    for _ in 0..counts.postgres_restarts {
        faults.push(Fault::RestartPostgres);
    }
    faults.shuffle(&mut rng);
    // Evenly spread, each moved by up to a third of the gap either way.
    let n = u32::try_from(faults.len()).unwrap_or(u32::MAX).max(1);
    let gap = dose.fault_window / n;
    let gap_ms = u64::try_from(gap.as_millis()).unwrap_or(u64::MAX);
    faults
        .into_iter()
        .zip(0u32..)
        .map(|(fault, i)| {
            let centre = gap * i + gap / 2;
            let jitter = Duration::from_millis(rng.random_range(0..=gap_ms / 3 * 2));
            let at = (centre + jitter).saturating_sub(gap / 3);
            Planned { at, fault }
        })
        .collect()
}

/// The schedule as printed at the start of a run, one fault a line.
pub fn describe(schedule: &[Planned]) -> String {
    schedule
        .iter()
        .map(|p| format!("  +{:7.1}s  {}\n", p.at.as_secs_f64(), p.fault))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(schedule: &[Planned], f: impl Fn(&Fault) -> bool) -> u32 {
        u32::try_from(schedule.iter().filter(|p| f(&p.fault)).count()).unwrap_or(u32::MAX)
    }

    #[test]
    fn one_seed_gives_one_schedule_and_another_seed_another() {
        let dose = Dose::long();
        assert_eq!(plan(&dose, 7), plan(&dose, 7));
        assert_ne!(plan(&dose, 7), plan(&dose, 8));
    }

    #[test]
    fn the_schedule_holds_every_fault_of_the_dose_in_time_order_within_the_window() {
        let dose = Dose::long();
        let schedule = plan(&dose, 1);
        assert_eq!(schedule.len(), dose.faults.total() as usize);
        assert_eq!(
            count(&schedule, |f| *f == Fault::KillLeader),
            dose.faults.leader_kills
        );
        assert_eq!(
            count(&schedule, |f| *f == Fault::FailOverMaster),
            dose.faults.master_failovers
        );
        assert_eq!(
            count(&schedule, |f| matches!(f, Fault::PartitionLeader { .. })),
            dose.faults.partitions
        );
        assert!(schedule.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(schedule.iter().all(|p| p.at <= dose.fault_window));
    }

    #[test]
    fn a_paused_leader_is_paused_past_its_session() {
        let dose = Dose::ci();
        for p in plan(&dose, 3) {
            if let Fault::ExpireLeaderSession { pause } = p.fault {
                assert!(pause > dose.session_timeout, "{pause:?}");
            }
        }
    }
}
