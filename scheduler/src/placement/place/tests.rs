#![allow(clippy::unwrap_used)]

use super::*;
use crate::model::demand::TaskDemand;
use crate::model::port_ranges::PortRanges;
use crate::model::resources::Resources;
use crate::model::spec::{Condition, Constraint, LabelKind, PortSpec};
use crate::placement::default_chain;
use crate::placement::sample::Walk;
use proptest::prelude::*;
use std::collections::{BTreeSet, HashSet};

fn res(cpus: f64, mem_mib: f64) -> Resources {
    Resources {
        cpus,
        mem_mib,
        ..Default::default()
    }
}

fn port(name: &str, value: u32) -> PortSpec {
    PortSpec {
        name: name.into(),
        value,
        env_name: String::new(),
    }
}

#[test]
fn many_tasks_share_one_offer_until_it_is_full() {
    let hosts = vec![HostView::new("a1", "h1", "*", res(1.0, 1000.0))];
    let tasks: Vec<_> = (0..15)
        .map(|key| TaskDemand::new(key, "j", res(0.1, 10.0)))
        .collect();
    let p = place(&tasks, hosts, Round::default(), &default_chain());
    assert_eq!(p.assignments.len(), 10);
    assert_eq!(p.unplaced.len(), 5);
    assert_eq!(
        p.unplaced[0].summary(),
        "no agent satisfies enough cpus (1 agent)"
    );
    assert_eq!(p.unplaced[0].per_filter().get("resources"), Some(&1));
}

#[test]
fn spread_and_binpack_pick_opposite_hosts() {
    let hosts = vec![
        HostView::new("a1", "h1", "*", res(1.0, 100.0)),
        HostView::new("a2", "h2", "*", res(4.0, 400.0)),
    ];
    let mut task = TaskDemand::new(0, "j", res(0.5, 50.0));
    let p = place(
        &[task.clone()],
        hosts.clone(),
        Round::default(),
        &default_chain(),
    );
    assert_eq!(p.assignments[0].host, 1, "spread");
    task.strategy = PlacementStrategy::BinPack;
    let p = place(&[task], hosts, Round::default(), &default_chain());
    assert_eq!(p.assignments[0].host, 0, "bin-pack");
}

#[test]
fn a_constraint_no_agent_meets_is_explained() {
    let hosts: Vec<_> = ["a", "b", "a"]
        .iter()
        .enumerate()
        .map(|(i, z)| {
            HostView::new(&format!("a{i}"), "h", "*", res(4.0, 400.0)).with_attribute("zone", z)
        })
        .collect();
    let mut task = TaskDemand::new(0, "j", res(0.5, 50.0));
    task.constraint = Some(Constraint::label(
        LabelKind::Host,
        Condition::Equal,
        "zone",
        "c",
        1,
    ));
    let p = place(&[task], hosts, Round::default(), &default_chain());
    assert_eq!(
        p.unplaced[0].summary(),
        "no agent satisfies zone==c (3 agents)"
    );
    let p = place(&[], vec![], Round::default(), &default_chain());
    assert!(p.unplaced.is_empty());
}

#[test]
fn ports_are_assigned_static_first_then_lowest_free() {
    let hosts = vec![HostView::new("a1", "h1", "*", res(4.0, 400.0))
        .with_ports(PortRanges::new([(31000, 31003)]))];
    let mut a = TaskDemand::new(0, "j", res(0.1, 1.0));
    a.ports = vec![port("dyn", 0), port("web", 31000)];
    let mut b = TaskDemand::new(1, "j", res(0.1, 1.0));
    b.ports = vec![port("x", 0), port("y", 0)];
    let mut c = TaskDemand::new(2, "j", res(0.1, 1.0));
    c.ports = vec![port("z", 0)];
    let p = place(&[a, b, c], hosts, Round::default(), &default_chain());
    assert_eq!(
        p.assignments[0].ports,
        vec![("dyn".to_owned(), 31001), ("web".to_owned(), 31000)]
    );
    assert_eq!(
        p.assignments[1].ports,
        vec![("x".to_owned(), 31002), ("y".to_owned(), 31003)]
    );
    assert_eq!(
        p.unplaced[0].summary(),
        "no agent satisfies 1 free dynamic ports (1 agent)"
    );
}

#[test]
fn unique_host_leaves_extra_instances_pending() {
    let hosts: Vec<_> = (0..2)
        .map(|i| HostView::new(&format!("a{i}"), "h", "*", res(4.0, 400.0)))
        .collect();
    let tasks: Vec<_> = (0..3)
        .map(|k| {
            let mut t = TaskDemand::new(k, "j", res(0.1, 1.0));
            t.placement.unique_host = true;
            t
        })
        .collect();
    let p = place(&tasks, hosts, Round::default(), &default_chain());
    assert_eq!(p.assignments.len(), 2);
    assert_ne!(p.assignments[0].host, p.assignments[1].host);
    assert!(
        p.unplaced[0].summary().contains("unique host"),
        "{}",
        p.unplaced[0].summary()
    );
}

#[test]
fn zone_balance_counts_live_instances_from_the_round() {
    let hosts: Vec<_> = ["a", "b"]
        .iter()
        .map(|z| HostView::new(z, "h", "*", res(4.0, 400.0)).with_attribute("zone", z))
        .collect();
    let mut round = Round::default();
    round.add("j", "a");
    round.add("j", "a");
    let tasks: Vec<_> = (0..3)
        .map(|k| {
            let mut t = TaskDemand::new(k, "j", res(0.1, 1.0));
            t.placement.zone_balance = true;
            t
        })
        .collect();
    let p = place(&tasks, hosts, round, &default_chain());
    let zones: Vec<_> = p.assignments.iter().map(|a| a.host).collect();
    assert_eq!(zones, vec![1, 1, 0], "b catches up, then they alternate");
}

#[test]
fn a_task_looks_at_a_bounded_sample_but_never_misses_the_one_feasible_host() {
    // 1,000 roomy hosts: bin-pack would pick the fullest of all, but a
    // task scores only `limit` feasible hosts, so it takes the fullest
    // of its sample. With a limit past the host count it sees them all.
    let hosts: Vec<_> = (0..1000)
        .map(|i| HostView::new(&format!("a{i}"), "h", "*", res(4.0, 4000.0 + i as f64)))
        .collect();
    let mut task = TaskDemand::new(0, "j", res(0.5, 50.0));
    task.strategy = PlacementStrategy::BinPack;
    let mut all = default_chain();
    all.config.limit = usize::MAX;
    let p = place(&[task.clone()], hosts.clone(), Round::default(), &all);
    assert_eq!(p.assignments[0].host, 0, "the fullest of all hosts");
    let sampled = default_chain();
    let p = place(&[task.clone()], hosts.clone(), Round::default(), &sampled);
    let again = place(&[task.clone()], hosts.clone(), Round::default(), &sampled);
    assert_eq!(p.assignments, again.assignments, "same inputs, same host");
    let walked: Vec<_> = Walk::new(1000, sampled.config.seed, 0)
        .take(sampled.config.limit)
        .collect();
    let fullest = walked.iter().min().copied();
    assert_eq!(
        Some(p.assignments[0].host),
        fullest,
        "fullest of {walked:?}"
    );

    // Only the last host has room: found after walking every other one.
    let mut hosts: Vec<_> = (0..1000)
        .map(|i| HostView::new(&format!("a{i}"), "h", "*", res(0.1, 10.0)))
        .collect();
    hosts[999] = HostView::new("big", "h", "*", res(4.0, 400.0));
    for key in 0..20 {
        task.key = key;
        let p = place(&[task.clone()], hosts.clone(), Round::default(), &sampled);
        assert_eq!(p.assignments.len(), 1, "key {key}");
        assert_eq!(p.assignments[0].host, 999);
    }
}

#[test]
fn tasks_with_the_same_needs_share_one_explanation_until_a_task_is_placed() {
    let hosts = vec![
        HostView::new("a1", "h1", "*", res(1.0, 100.0)),
        HostView::new("a2", "h2", "*", res(1.0, 100.0)),
    ];
    let big = |key| TaskDemand::new(key, "j", res(2.0, 10.0));
    let small = |key| TaskDemand::new(key, "j", res(0.5, 10.0));
    let tasks = [big(0), big(1), small(2), big(3)];
    let p = place(&tasks, hosts, Round::default(), &default_chain());
    let keys: Vec<_> = p.unplaced.iter().map(|u| u.key).collect();
    assert_eq!(keys, vec![0, 1, 3]);
    for miss in &p.unplaced {
        assert_eq!(miss.summary(), "no agent satisfies enough cpus (2 agents)");
        assert_eq!(miss.hosts_evaluated, 2);
    }
}

/// A generated job: its flags, and the constraint all its tasks carry.
#[derive(Debug, Clone)]
struct GenJob {
    unique: bool,
    exclusive: bool,
    zone_balance: bool,
    zone: Option<&'static str>,
    anti_affinity: bool,
}

fn gen_job() -> impl Strategy<Value = GenJob> {
    (
        any::<bool>(),
        prop::bool::weighted(0.15),
        any::<bool>(),
        prop::option::weighted(0.3, prop::sample::select(vec!["a", "b", "c"])),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(unique, exclusive, zone_balance, zone, anti_affinity)| GenJob {
                unique,
                exclusive,
                zone_balance,
                zone,
                anti_affinity,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn the_pipeline_never_overcommits_and_honours_every_hard_constraint(
        caps in prop::collection::vec(
            (0.0f64..8.0, 0.0f64..4096.0, 0.0f64..2.0, 0u32..6, 0usize..3), 1..8),
        jobs in prop::collection::vec(gen_job(), 1..4),
        wants in prop::collection::vec(
            (0.01f64..2.0, 1.0f64..1024.0, prop::bool::weighted(0.1), 0usize..4, 0u32..3,
             prop::option::of(31000u32..31006), any::<bool>()),
            0..50),
    ) {
        let zones = ["a", "b", "c"];
        let hosts: Vec<_> = caps
            .iter()
            .enumerate()
            .map(|(i, (c, m, g, nports, z))| {
                HostView::new(&format!("a{i}"), &format!("h{i}"), "*", Resources {
                    cpus: *c, mem_mib: *m, disk_mib: 0.0, gpus: g.floor(),
                })
                .with_ports(PortRanges::new([(31000, 31000 + nports)]))
                .with_attribute("zone", zones[*z])
            })
            .collect();
        let tasks: Vec<_> = wants
            .iter()
            .enumerate()
            .map(|(key, (c, m, gpu, job, dynamic, fixed, binpack))| {
                let j = &jobs[job % jobs.len()];
                let name = format!("job{}", job % jobs.len());
                let mut t = TaskDemand::new(key, &name, Resources {
                    cpus: *c, mem_mib: *m, disk_mib: 0.0, gpus: if *gpu { 1.0 } else { 0.0 },
                });
                t.placement.unique_host = j.unique;
                t.placement.exclusive_host = j.exclusive;
                t.placement.zone_balance = j.zone_balance;
                t.labels = vec![("job".into(), name.clone())];
                let zone = j.zone.map(|z| Constraint::label(LabelKind::Host, Condition::Equal, "zone", z, 1));
                let anti = j.anti_affinity.then(|| Constraint::label(LabelKind::Pod, Condition::LessThan, "job", &name, 2));
                t.constraint = zone.or(anti);
                t.ports = (0..*dynamic).map(|i| port(&format!("d{i}"), 0)).collect();
                if let Some(f) = fixed {
                    t.ports.push(port("fixed", *f));
                }
                if *binpack {
                    t.strategy = PlacementStrategy::BinPack;
                }
                t
            })
            .collect();
        let chain = default_chain();
        let p = place(&tasks, hosts.clone(), Round::default(), &chain);
        prop_assert_eq!(p.assignments.len() + p.unplaced.len(), tasks.len());
        // Placed a few tasks at a time, the round comes out the same, and
        // a host reported closed gets nothing more.
        let step = tasks.len() % 4 + 1;
        let mut placer = Placer::new(&tasks[..], hosts.clone(), Round::default(), &chain);
        let mut closed = HashSet::new();
        while !placer.is_done() {
            for a in placer.place(step) {
                prop_assert!(!closed.contains(&a.host), "task {} on closed host {}", a.key, a.host);
            }
            closed.extend((0..hosts.len()).filter(|&h| placer.is_closed(h)));
        }
        prop_assert_eq!(placer.finish(), p.clone());
        // The hot path's answer is the explaining path's, on every host
        // state the round went through (before and after).
        for t in &tasks {
            for (h, round) in hosts.iter().zip(std::iter::repeat(&Round::default()))
                .chain(p.hosts.iter().zip(std::iter::repeat(&p.round)))
            {
                for f in &chain.filters {
                    prop_assert_eq!(f.admits(t, h, round), f.check(t, h, round).is_ok(),
                        "{} disagrees on task {} host {}", f.name(), t.key, h.agent_id);
                }
            }
        }
        for (i, host) in hosts.iter().enumerate() {
            let here: Vec<_> = p.assignments.iter().filter(|a| a.host == i).collect();
            let used = here
                .iter()
                .fold(Resources::default(), |acc, a| acc.plus(&tasks[a.key].resources));
            prop_assert!(host.offered.contains(&used), "host {} over-committed: {:?}", i, used);
            let mut seen = HashSet::new();
            for a in &here {
                for (spec, (_, given)) in tasks[a.key].ports.iter().zip(&a.ports) {
                    prop_assert!(host.ports.contains(*given), "port {} not offered", given);
                    prop_assert!(seen.insert(*given), "port {} given twice on host {}", given, i);
                    if spec.value != 0 {
                        prop_assert_eq!(spec.value, *given);
                    }
                }
            }
            let jobs_here: BTreeSet<_> = here.iter().map(|a| tasks[a.key].job.clone()).collect();
            for a in &here {
                let t = &tasks[a.key];
                let count = here.iter().filter(|b| tasks[b.key].job == t.job).count();
                if t.placement.unique_host {
                    prop_assert_eq!(count, 1, "unique host broken on {}", i);
                }
                if t.placement.exclusive_host {
                    prop_assert_eq!(jobs_here.len(), 1, "exclusive host shared on {}", i);
                }
                if let Some(c) = &t.constraint {
                    if c.label_constraint.as_ref().is_some_and(|l| l.kind == LabelKind::Host) {
                        prop_assert!(super::super::label_constraint::evaluate(c, host).is_ok());
                    } else {
                        prop_assert!(count <= 2, "anti-affinity broken on {}", i);
                    }
                }
            }
        }
        for (j, job) in jobs.iter().enumerate() {
            if !job.zone_balance {
                continue;
            }
            let name = format!("job{j}");
            let known: BTreeSet<_> = hosts.iter().filter_map(|h| h.zone()).collect();
            let counts: Vec<_> = known
                .iter()
                .map(|z| p.round.count(&name, z))
                .collect();
            let (lo, hi) = (counts.iter().min(), counts.iter().max());
            if let (Some(lo), Some(hi)) = (lo, hi) {
                prop_assert!(hi - lo <= 1, "{} unbalanced: {:?}", name, counts);
            }
        }
    }
}

#[test]
fn bin_packing_fills_one_host_before_the_next() {
    // 1,000 identical hosts with room for 4 tasks each: a wave of 12
    // bin-packed tasks takes 3 hosts, each holding consecutive tasks.
    let hosts: Vec<_> = (0..1000)
        .map(|i| HostView::new(&format!("a{i}"), &format!("h{i}"), "*", res(1.0, 400.0)))
        .collect();
    let tasks: Vec<_> = (0..12)
        .map(|key| {
            let mut t = TaskDemand::new(key, "j", res(0.25, 100.0));
            t.strategy = PlacementStrategy::BinPack;
            t
        })
        .collect();
    let p = place(&tasks, hosts.clone(), Round::default(), &default_chain());
    let used: Vec<usize> = p.assignments.iter().map(|a| a.host).collect();
    assert_eq!(p.assignments.len(), 12);
    for wave in used.chunks(4) {
        assert!(wave.iter().all(|h| *h == wave[0]), "{used:?}");
    }
    assert_eq!(used.iter().collect::<HashSet<_>>().len(), 3, "{used:?}");

    // Spread is left to its own walk: the same wave lands on 12 hosts.
    let spread: Vec<_> = tasks
        .iter()
        .cloned()
        .map(|mut t| {
            t.strategy = PlacementStrategy::Spread;
            t
        })
        .collect();
    let p = place(&spread, hosts, Round::default(), &default_chain());
    let hosts_used: HashSet<usize> = p.assignments.iter().map(|a| a.host).collect();
    assert_eq!(hosts_used.len(), 12);
}

#[test]
fn a_task_goes_back_to_its_previous_agent_when_it_fits_there() {
    let hosts = vec![
        HostView::new("a1", "h1", "*", res(1.0, 100.0)),
        HostView::new("a2", "h2", "*", res(4.0, 400.0)),
    ];
    let mut task = TaskDemand::new(0, "j", res(0.5, 50.0));
    task.previous_agent = Some("a1".into());
    let p = place(
        &[task.clone()],
        hosts.clone(),
        Round::default(),
        &default_chain(),
    );
    assert_eq!(
        p.assignments[0].host, 0,
        "in place, though spread prefers h2"
    );
    // Where it no longer fits, anywhere else: best effort.
    task.resources = res(2.0, 50.0);
    let p = place(
        &[task.clone()],
        hosts.clone(),
        Round::default(),
        &default_chain(),
    );
    assert_eq!(p.assignments[0].host, 1);
    task.previous_agent = Some("gone".into());
    let p = place(&[task], hosts, Round::default(), &default_chain());
    assert_eq!(
        p.assignments[0].host, 1,
        "an agent with no offer is no hint"
    );
}
