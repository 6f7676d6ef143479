//! How much chaos one run gets: the cluster's size, the workload and how
//! many faults of each kind, as two presets ([`Dose::ci`], the short dose
//! a test runs; [`Dose::long`], the issue's figures) that flags may
//! override. Plain data: the schedule and the run read it.

use std::time::Duration;

/// One dose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dose {
    /// `ci` or `long`, for the summary.
    pub name: &'static str,
    /// Scheduler replicas (3: one leads, two stand by).
    pub replicas: usize,
    /// agent-sim masters in the master set.
    pub masters: usize,
    /// Simulated agents per master (plus [`Dose::real_agents`]).
    pub agents: usize,
    /// Agents that run the real drover-executor (the first ones).
    pub real_agents: usize,
    /// The workload.
    pub workload: WorkloadShape,
    /// How many faults of each kind.
    pub faults: FaultCounts,
    /// The time the faults are spread over (a fault that has to wait
    /// for a leader to kill makes the run longer, never the gaps shorter).
    pub fault_window: Duration,
    /// How long the system may take to settle after the last fault:
    /// every batch instance succeeded, every service instance running.
    pub settle_limit: Duration,
    /// The replicas' and masters' ZooKeeper session timeout.
    pub session_timeout: Duration,
    /// How often the auditor reads the masters and the store.
    pub audit_interval: Duration,
}

/// The jobs: batch jobs of simulated `sleep`s that end, service jobs that
/// run until the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadShape {
    pub batch_jobs: u32,
    pub batch_instances: u32,
    /// A batch task sleeps a seeded number of seconds in this range.
    pub batch_seconds: (u32, u32),
    pub service_jobs: u32,
    pub service_instances: u32,
    /// Jobs are submitted over this much of the start of the window, so
    /// launches go on while faults land.
    pub submit_over: Duration,
}

impl WorkloadShape {
    /// Every instance the workload creates.
    pub fn instances(&self) -> u64 {
        u64::from(self.batch_jobs) * u64::from(self.batch_instances)
            + u64::from(self.service_jobs) * u64::from(self.service_instances)
    }
}

/// How many faults of each kind a dose injects.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FaultCounts {
    /// SIGKILL the leading replica.
    pub leader_kills: u32,
    /// SIGKILL a following replica.
    pub follower_kills: u32,
    /// Expire the leader's ZooKeeper session: the process is paused past
    /// its session timeout (the server expires it and elects another), then
    /// resumed, as after a long GC pause or a frozen VM.
    pub session_expiries: u32,
    /// Cut the leader off ZooKeeper for a while, then heal.
    pub partitions: u32,
    /// SIGKILL the leading master; it comes back as a standby.
    pub master_failovers: u32,
    /// Make a few agents unreachable, then bring them back.
    pub agent_churns: u32,
    /// Stop PostgreSQL and start it again.
    pub postgres_restarts: u32,
}

impl FaultCounts {
    pub fn total(&self) -> u32 {
        self.leader_kills
            + self.follower_kills
            + self.session_expiries
            + self.partitions
            + self.master_failovers
            + self.agent_churns
            + self.postgres_restarts
    }
}

impl Dose {
    /// The short dose CI runs (`cargo test -p drover-chaos`): every kind
    /// of fault at least once on a small cluster, in about two minutes on
    /// a 2-core host.
    pub fn ci() -> Dose {
        Dose {
            name: "ci",
            replicas: 3,
            masters: 2,
            agents: 50,
            real_agents: 1,
            workload: WorkloadShape {
                batch_jobs: 6,
                batch_instances: 25,
                batch_seconds: (3, 20),
                service_jobs: 3,
                service_instances: 50,
                submit_over: Duration::from_secs(30),
            },
            faults: FaultCounts {
                leader_kills: 4,
                follower_kills: 1,
                session_expiries: 1,
                partitions: 1,
                master_failovers: 1,
                agent_churns: 2,
                postgres_restarts: 1,
            },
            fault_window: Duration::from_secs(60),
            settle_limit: Duration::from_secs(90),
            session_timeout: Duration::from_secs(2),
            audit_interval: Duration::from_millis(500),
        }
    }

    /// The issue's long dose: 100 leader SIGKILLs, 20 master failovers, 10
    /// partitions and agent churn during a 10,000-instance run on 1,000
    /// simulated agents and one real one.
    pub fn long() -> Dose {
        Dose {
            name: "long",
            replicas: 3,
            masters: 3,
            agents: 1000,
            real_agents: 1,
            workload: WorkloadShape {
                batch_jobs: 40,
                batch_instances: 150,
                batch_seconds: (20, 300),
                service_jobs: 20,
                service_instances: 200,
                submit_over: Duration::from_secs(600),
            },
            faults: FaultCounts {
                leader_kills: 100,
                follower_kills: 10,
                session_expiries: 10,
                partitions: 10,
                master_failovers: 20,
                agent_churns: 30,
                postgres_restarts: 5,
            },
            fault_window: Duration::from_secs(1200),
            settle_limit: Duration::from_secs(600),
            session_timeout: Duration::from_secs(2),
            audit_interval: Duration::from_secs(2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_long_dose_is_the_issues_figures() {
        let long = Dose::long();
        assert_eq!(long.workload.instances(), 10_000);
        assert_eq!(long.agents, 1000);
        assert_eq!(long.faults.leader_kills, 100);
        assert_eq!(long.faults.master_failovers, 20);
        assert_eq!(long.faults.partitions, 10);
        assert!(long.faults.agent_churns > 0);
    }

    #[test]
    fn the_ci_dose_has_every_kind_of_fault() {
        let f = Dose::ci().faults;
        for count in [
            f.leader_kills,
            f.follower_kills,
            f.session_expiries,
            f.partitions,
            f.master_failovers,
            f.agent_churns,
            f.postgres_restarts,
        ] {
            assert!(count > 0, "{f:?}");
        }
    }
}
