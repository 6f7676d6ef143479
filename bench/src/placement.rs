//! Placement alone: the scheduler crate's `placement::place` called as a
//! library on synthetic host views, one decision at a time (each call
//! takes the host views and round the previous one left, exactly as
//! `place` carries them between tasks), so every decision is timed.

use crate::stats::percentile;
use drover_scheduler::model::demand::TaskDemand;
use drover_scheduler::model::port_ranges::PortRanges;
use drover_scheduler::model::resources::Resources;
use drover_scheduler::model::spec::{
    Condition, Constraint, ConstraintType, LabelKind, PortSpec, Preferences,
};
use drover_scheduler::model::spec_constraint::Constraints;
use drover_scheduler::placement::{default_chain, place, HostView, Round};
use std::time::Instant;

/// What the placement scenario measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlacementRun {
    /// Tasks placed.
    pub placed: usize,
    /// Tasks no host accepted.
    pub unplaced: usize,
    /// Decisions per second.
    pub per_sec: f64,
    /// Median seconds per decision.
    pub p50: f64,
    /// 99th percentile seconds per decision.
    pub p99: f64,
}

/// `hosts` agents like agent-sim's (4 cpus, 8 GiB, ports 31000-32000) in
/// zones a, b, c and 20 racks.
pub fn hosts(n: usize) -> Vec<HostView> {
    let offered = Resources {
        cpus: 4.0,
        mem_mib: 8192.0,
        disk_mib: 65536.0,
        gpus: 0.0,
    };
    (0..n)
        .map(|i| {
            HostView::new(&format!("agent-{i}"), &format!("host-{i}"), "*", offered)
                .with_ports(PortRanges::new([(31000, 32000)]))
                .with_attribute("zone", ["a", "b", "c"][i % 3])
                .with_attribute("rack", &format!("r{}", i % 20))
        })
        .collect()
}

/// `n` tasks of 0.1 cpu / 32 MB with a dynamic port, constrained to
/// `zone != c` AND at most two pods labelled `app=bench` per host; `soft`:
/// the same constraint preferred (a soft constraint), with soft zone
/// balance and unique host, so every preference is ranked for every host.
pub fn tasks(n: usize, soft: bool) -> Vec<TaskDemand> {
    let constraint = Constraint {
        constraint_type: ConstraintType::And,
        label_constraint: None,
        and_constraint: Some(Constraints {
            constraints: vec![
                Constraint::label(LabelKind::Host, Condition::Equal, "zone", "c", 0),
                Constraint::label(LabelKind::Pod, Condition::LessThan, "app", "bench", 2),
            ],
        }),
        or_constraint: None,
    };
    let demand = Resources {
        cpus: 0.1,
        mem_mib: 32.0,
        ..Default::default()
    };
    (0..n)
        .map(|key| {
            let mut t = TaskDemand::new(key, "bench-job", demand);
            t.ports = vec![PortSpec {
                name: "http".into(),
                value: 0,
                env_name: String::new(),
            }];
            t.labels = vec![("app".into(), "bench".into())];
            if soft {
                t.soft_constraint = Some(constraint.clone());
                t.placement.prefer = Some(Preferences {
                    unique_host: true,
                    exclusive_host: false,
                    zone_balance: true,
                });
            } else {
                t.constraint = Some(constraint.clone());
            }
            t
        })
        .collect()
}

/// Places `tasks` tasks over `hosts` hosts, timing every decision; `soft`:
/// with the constraints as preferences.
pub fn run(tasks_n: usize, hosts_n: usize, soft: bool) -> PlacementRun {
    let chain = default_chain();
    let mut hosts = hosts(hosts_n);
    let mut round = Round::default();
    let mut times = Vec::with_capacity(tasks_n);
    let (mut placed, mut unplaced) = (0, 0);
    let started = Instant::now();
    for task in tasks(tasks_n, soft) {
        let t = Instant::now();
        let p = place(std::slice::from_ref(&task), hosts, round, &chain);
        times.push(t.elapsed().as_secs_f64());
        placed += p.assignments.len();
        unplaced += p.unplaced.len();
        hosts = p.hosts;
        round = p.round;
    }
    let total = started.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    PlacementRun {
        placed,
        unplaced,
        per_sec: if total > 0.0 {
            tasks_n as f64 / total
        } else {
            0.0
        },
        p50: percentile(&times, 50.0),
        p99: percentile(&times, 99.0),
    }
}
