//! Soft constraints through the whole chain: preferred hosts first, the
//! strategy's order among them, and never a task left unplaced while a
//! feasible host exists. The zone examples are read from `examples/`, so
//! these tests are about what the README shows.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::model::demand::TaskDemand;
use crate::model::resources::Resources;
use crate::model::spec::{Condition, Constraint, JobSpec, LabelKind, Preferences};
use crate::placement::default_chain;
use std::collections::{BTreeMap, BTreeSet};

const HARD_EXAMPLE: &str = include_str!("../../../../examples/constraints-zones.yaml");
const SOFT_EXAMPLE: &str = include_str!("../../../../examples/constraints-zones-soft.yaml");

fn res(cpus: f64, mem_mib: f64) -> Resources {
    Resources {
        cpus,
        mem_mib,
        ..Default::default()
    }
}

/// The quickstart's fleet: 4 agents of agent-sim's default size over
/// zones a, b, c (agent n in zone n % 3: a, b, c, a).
fn quickstart_hosts() -> Vec<HostView> {
    (0..4)
        .map(|i| {
            HostView::new(
                &format!("agent-{i}"),
                &format!("h{i}"),
                "*",
                res(4.0, 8192.0),
            )
            .with_attribute("zone", ["a", "b", "c"][i % 3])
        })
        .collect()
}

/// The demands of every instance of a YAML job, as the engine builds them.
fn demands(yaml: &str) -> Vec<TaskDemand> {
    let spec: JobSpec = serde_yaml::from_str(yaml).unwrap();
    (0..spec.instance_count)
        .map(|i| {
            let pod = spec.pod_spec(i);
            let placement = pod.placement_spec();
            let mut t = TaskDemand::new(i as usize, &spec.name, res(0.1, 32.0));
            t.labels = pod
                .labels
                .iter()
                .map(|l| (l.key.clone(), l.value.clone()))
                .collect();
            t.constraint = pod.constraint.clone();
            t.soft_constraint = pod.soft_constraint.clone();
            t.placement = placement;
            t.strategy = placement.strategy.unwrap_or(PlacementStrategy::Spread);
            t
        })
        .collect()
}

fn per_zone(p: &Placement) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for a in &p.assignments {
        let zone = p.hosts[a.host].zone().unwrap().to_owned();
        *out.entry(zone).or_default() += 1;
    }
    out
}

fn per_host(p: &Placement) -> Vec<usize> {
    p.hosts.iter().map(|h| h.assigned).collect()
}

#[test]
fn hard_zone_balance_example_places_2_of_6_while_an_eligible_host_is_idle() {
    let p = place(
        &demands(HARD_EXAMPLE),
        quickstart_hosts(),
        Round::default(),
        &default_chain(),
    );
    assert_eq!(p.assignments.len(), 2, "{:?}", per_host(&p));
    assert_eq!(p.unplaced.len(), 4);
    // Zone c takes nothing (the constraint), so it stays the emptiest zone
    // and hard balance holds a and b at one each: the second zone-a agent
    // meets every rule and idles.
    let idle_eligible = p
        .hosts
        .iter()
        .filter(|h| h.zone() != Some("c") && h.assigned == 0)
        .count();
    assert_eq!(idle_eligible, 1, "{:?}", per_host(&p));
    assert!(
        p.unplaced[0].summary().contains("zone balance"),
        "{}",
        p.unplaced[0].summary()
    );
}

#[test]
fn soft_zone_balance_example_places_all_6_and_keeps_the_zones_even() {
    let tasks = demands(SOFT_EXAMPLE);
    let p = place(
        &tasks,
        quickstart_hosts(),
        Round::default(),
        &default_chain(),
    );
    assert_eq!(p.assignments.len(), 6, "{:?}", p.unplaced);
    assert!(p.unplaced.is_empty());
    let want: BTreeMap<String, usize> = [("a", 2), ("b", 2), ("c", 2)]
        .into_iter()
        .map(|(z, n)| (z.to_owned(), n))
        .collect();
    assert_eq!(per_zone(&p), want, "still balanced when it can be");
    // The three hosts that meet the soft constraint (not zone c, no
    // sibling) take the first three, one each, before any host breaks it.
    let first: BTreeSet<usize> = p.assignments[..3].iter().map(|a| a.host).collect();
    assert_eq!(first.len(), 3, "{:?}", p.assignments);
    assert!(first.iter().all(|&h| p.hosts[h].zone() != Some("c")));
}

#[test]
fn soft_zone_balance_with_hard_host_rules_uses_every_eligible_host() {
    // Only zone balance soft: the hard constraint still keeps zone c and
    // doubled hosts out, but no eligible host idles.
    let mut tasks = demands(HARD_EXAMPLE);
    for t in &mut tasks {
        t.placement.zone_balance = false;
        t.placement.prefer = Some(Preferences {
            zone_balance: true,
            ..Default::default()
        });
    }
    let p = place(
        &tasks,
        quickstart_hosts(),
        Round::default(),
        &default_chain(),
    );
    assert_eq!(p.assignments.len(), 3);
    assert_eq!(per_host(&p), vec![1, 1, 0, 1], "zones a, b, c, a");
}

#[test]
fn soft_zone_balance_goes_to_the_emptiest_zone_a_task_can_use() {
    // Zone c's only host is full: hard balance would stop at one per zone;
    // soft balance keeps a and b even and carries on.
    let mut hosts = quickstart_hosts();
    hosts[2].available = Resources::default();
    let tasks: Vec<_> = (0..6)
        .map(|k| {
            let mut t = TaskDemand::new(k, "j", res(0.1, 32.0));
            t.strategy = PlacementStrategy::BinPack;
            t.placement.prefer = Some(Preferences {
                zone_balance: true,
                ..Default::default()
            });
            t
        })
        .collect();
    let p = place(&tasks, hosts, Round::default(), &default_chain());
    assert_eq!(p.assignments.len(), 6);
    let zones = per_zone(&p);
    assert_eq!(zones.get("a"), Some(&3), "{zones:?}");
    assert_eq!(zones.get("b"), Some(&3), "{zones:?}");
}

fn unique_tasks(n: usize, soft: bool) -> Vec<TaskDemand> {
    (0..n)
        .map(|k| {
            let mut t = TaskDemand::new(k, "j", res(0.5, 50.0));
            // Bin packing alone would stack them all on one host.
            t.strategy = PlacementStrategy::BinPack;
            if soft {
                t.placement.prefer = Some(Preferences {
                    unique_host: true,
                    ..Default::default()
                });
            } else {
                t.placement.unique_host = true;
            }
            t
        })
        .collect()
}

fn three_hosts() -> Vec<HostView> {
    (0..3)
        .map(|i| HostView::new(&format!("a{i}"), "h", "*", res(4.0, 400.0)))
        .collect()
}

#[test]
fn soft_unique_host_prefers_distinct_hosts_and_doubles_up_when_they_run_out() {
    let hard = place(
        &unique_tasks(5, false),
        three_hosts(),
        Round::default(),
        &default_chain(),
    );
    assert_eq!(hard.assignments.len(), 3, "hard: one per host, two pending");
    let p = place(
        &unique_tasks(5, true),
        three_hosts(),
        Round::default(),
        &default_chain(),
    );
    assert_eq!(p.assignments.len(), 5, "{:?}", p.unplaced);
    let first: BTreeSet<usize> = p.assignments[..3].iter().map(|a| a.host).collect();
    assert_eq!(first.len(), 3, "distinct hosts first: {:?}", p.assignments);
    let mut counts = per_host(&p);
    counts.sort_unstable();
    assert_eq!(
        counts,
        vec![1, 2, 2],
        "doubled up on the fewest-loaded hosts"
    );
}

#[test]
fn among_hosts_that_meet_a_preference_the_strategy_still_orders() {
    let sibling = || {
        vec![PodOnHost {
            job: "j".into(),
            labels: vec![],
            exclusive: false,
        }]
    };
    // Without the preference, bin-packing would take the fullest host and
    // spread the emptiest: both hold a sibling.
    let hosts = vec![
        HostView::new("small", "h", "*", res(1.0, 100.0)),
        HostView::new("big", "h", "*", res(4.0, 400.0)),
        HostView::new("taken-small", "h", "*", res(0.6, 60.0)).with_pods(sibling()),
        HostView::new("taken-big", "h", "*", res(64.0, 6400.0)).with_pods(sibling()),
    ];
    let mut task = unique_tasks(1, true).remove(0);
    let p = place(
        &[task.clone()],
        hosts.clone(),
        Round::default(),
        &default_chain(),
    );
    assert_eq!(p.assignments[0].host, 0, "bin-pack: the fuller free host");
    task.strategy = PlacementStrategy::Spread;
    let p = place(&[task], hosts, Round::default(), &default_chain());
    assert_eq!(p.assignments[0].host, 1, "spread: the emptier free host");
}

fn ssd_hosts() -> Vec<HostView> {
    // Two small ssd hosts (room for two tasks each) and two big plain ones
    // that both strategies' scores would otherwise favour or tie.
    vec![
        HostView::new("p0", "h", "*", res(8.0, 800.0)),
        HostView::new("s0", "h", "*", res(1.0, 100.0)).with_attribute("disk", "ssd"),
        HostView::new("p1", "h", "*", res(8.0, 800.0)),
        HostView::new("s1", "h", "*", res(1.0, 100.0)).with_attribute("disk", "ssd"),
    ]
}

fn ssd_tasks(soft: bool) -> Vec<TaskDemand> {
    let ssd = Constraint::label(LabelKind::Host, Condition::Equal, "disk", "ssd", 1);
    (0..6)
        .map(|k| {
            let mut t = TaskDemand::new(k, "j", res(0.5, 50.0));
            if soft {
                t.soft_constraint = Some(ssd.clone());
            } else {
                t.constraint = Some(ssd.clone());
            }
            t
        })
        .collect()
}

#[test]
fn a_soft_constraint_fills_the_hosts_with_the_attribute_then_uses_the_others() {
    let hard = place(
        &ssd_tasks(false),
        ssd_hosts(),
        Round::default(),
        &default_chain(),
    );
    assert_eq!(hard.assignments.len(), 4, "hard: the ssd hosts only");
    let p = place(
        &ssd_tasks(true),
        ssd_hosts(),
        Round::default(),
        &default_chain(),
    );
    assert_eq!(p.assignments.len(), 6, "{:?}", p.unplaced);
    let on_ssd = |a: &Assignment| p.hosts[a.host].attributes.contains_key("disk");
    assert!(
        p.assignments[..4].iter().all(on_ssd),
        "spread would pick the big hosts; the preference wins: {:?}",
        p.assignments
    );
    assert!(!p.assignments[4..].iter().any(on_ssd), "then the others");
}

#[test]
fn soft_exclusive_host_prefers_a_host_of_its_own_and_reserves_nothing() {
    let other = PodOnHost {
        job: "k".into(),
        labels: vec![],
        exclusive: false,
    };
    // Bin-packing alone would take the fuller, shared host.
    let hosts = vec![
        HostView::new("shared", "h", "*", res(2.0, 200.0)).with_pods(vec![other.clone()]),
        HostView::new("empty", "h", "*", res(4.0, 400.0)),
    ];
    let mut task = TaskDemand::new(0, "j", res(0.5, 50.0));
    task.strategy = PlacementStrategy::BinPack;
    task.placement.prefer = Some(Preferences {
        exclusive_host: true,
        ..Default::default()
    });
    let mut neighbour = TaskDemand::new(1, "k", res(0.5, 50.0));
    neighbour.constraint = Some(Constraint::label(
        LabelKind::Host,
        Condition::Equal,
        "hostname",
        "h",
        1,
    ));
    let p = place(
        &[task.clone(), neighbour],
        hosts.clone(),
        Round::default(),
        &default_chain(),
    );
    assert_eq!(p.assignments.len(), 2);
    assert_eq!(p.assignments[0].host, 1, "the host without other jobs");
    assert!(!p.hosts[1].pods[0].exclusive, "a preference holds no host");
    // Only shared hosts: still placed.
    let p = place(
        &[task],
        vec![hosts[0].clone()],
        Round::default(),
        &default_chain(),
    );
    assert_eq!(p.assignments.len(), 1);
}

#[test]
fn a_preferred_host_is_found_past_the_sample_limit() {
    // 200 plain hosts and one with the attribute: the first 32 feasible
    // hosts of a walk rarely hold it; the longer look for a preferred host
    // does, for every task.
    let mut hosts: Vec<_> = (0..200)
        .map(|i| HostView::new(&format!("a{i}"), "h", "*", res(4.0, 400.0)))
        .collect();
    hosts.insert(
        117,
        HostView::new("ssd", "h", "*", res(4.0, 400.0)).with_attribute("disk", "ssd"),
    );
    let ssd = Constraint::label(LabelKind::Host, Condition::Equal, "disk", "ssd", 1);
    let tasks: Vec<_> = (0..8)
        .map(|k| {
            let mut t = TaskDemand::new(k, &format!("j{k}"), res(0.1, 10.0));
            t.soft_constraint = Some(ssd.clone());
            t
        })
        .collect();
    let p = place(&tasks, hosts, Round::default(), &default_chain());
    assert!(
        p.assignments.iter().all(|a| a.host == 117),
        "{:?}",
        p.assignments
    );
}
