//! Soft constraints end to end: the real scheduler against the real
//! `drover-agent-sim` with zoned agents, jobs created through the JSON API.
//! The zone example of the README (`examples/constraints-zones.yaml`) with
//! hard rules leaves eligible agents idle; the same rules as preferences
//! (`examples/constraints-zones-soft.yaml`) run every instance.
#![allow(clippy::unwrap_used)]

use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::http::get;
use drover_tests::harness::job_api::create_job;
use drover_tests::harness::scheduler::Scheduler;
use drover_tests::harness::wait::wait_for;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(40);

/// The rules of the zone example: not zone c, no other pod of the app on
/// the host.
fn rules(app: &str) -> Value {
    json!({"type": "AND_CONSTRAINT", "and_constraint": {"constraints": [
        {"type": "LABEL_CONSTRAINT", "label_constraint": {"kind": "HOST",
            "condition": "CONDITION_LESS_THAN", "label": {"key": "zone", "value": "c"},
            "requirement": 1}},
        {"type": "LABEL_CONSTRAINT", "label_constraint": {"kind": "POD",
            "condition": "CONDITION_LESS_THAN", "label": {"key": "app", "value": app},
            "requirement": 1}}
    ]}})
}

/// The zone example as JSON: six instances, bin-packed, its rules hard
/// (`constraint`, `placement.zone_balance`) or soft (`soft_constraint`,
/// `placement.prefer.zone_balance`).
fn zone_example(app: &str, soft: bool) -> Value {
    let mut pod = json!({
        "labels": [{"key": "app", "value": app}],
        "containers": [{"resource": {"cpu_limit": 0.1, "mem_limit_mb": 32},
            "command": {"value": "sleep 3600"}}]
    });
    if soft {
        pod["soft_constraint"] = rules(app);
        pod["placement"] = json!({"prefer": {"zone_balance": true}, "strategy": "BINPACK"});
    } else {
        pod["constraint"] = rules(app);
        pod["placement"] = json!({"zone_balance": true, "strategy": "BINPACK"});
    }
    json!({"type": "SERVICE", "name": app, "instance_count": 6,
        "sla": {"priority": 10, "maximum_unavailable_instances": 1},
        "default_spec": pod})
}

async fn pods(address: &str, id: &str) -> Vec<Value> {
    let (_, reply) = get(address, &format!("/api/v1/jobs/{id}/pods")).await;
    reply["pods"].as_array().cloned().unwrap_or_default()
}

fn in_state<'a>(list: &'a [Value], state: &str) -> Vec<&'a Value> {
    list.iter()
        .filter(|p| p["status"]["state"] == state)
        .collect()
}

async fn wait_pods<F: Fn(&[Value]) -> bool>(
    address: &str,
    id: &str,
    what: &str,
    ok: F,
) -> Vec<Value> {
    let last = std::cell::RefCell::new(Vec::new());
    let found = wait_for(LIMIT, || async {
        let list = pods(address, id).await;
        *last.borrow_mut() = list.clone();
        ok(&list).then_some(list)
    })
    .await;
    found.unwrap_or_else(|| panic!("{what}: last pods {:#?}", last.borrow()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_zone_example_runs_2_of_6_with_hard_rules_and_6_of_6_with_soft_ones() {
    // The quickstart's fleet: 4 agents over zones a, b, c (a, b, c, a).
    let sim = AgentSim::for_scheduler(4)
        .args(&["--zones", "a,b,c"])
        .start();
    let dir = tempfile::tempdir().unwrap();
    let s = Scheduler::start(dir.path(), &format!("http://{}", sim.address), &[]);
    let (_, state) = get(&sim.address, "/state").await;
    let zone_of: BTreeMap<String, String> = state["slaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let id = a["id"].as_str().unwrap().to_owned();
            (id, a["attributes"]["zone"].as_str().unwrap().to_owned())
        })
        .collect();
    let agent = |p: &Value| {
        p["status"]["agent_id"]["value"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    // Soft, first, while every agent's offer is at hand (preferences
    // choose among the agents offered in a round): every instance runs; the three agents that meet the rules take
    // one each, and the zones stay even (two each).
    create_job(&s.address, "zoned-soft", zone_example("zoned-soft", true)).await;
    let soft = wait_pods(&s.address, "zoned-soft", "6 running", |l| {
        in_state(l, "POD_STATE_RUNNING").len() == 6
    })
    .await;
    let mut per_zone: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_agent: BTreeMap<String, usize> = BTreeMap::new();
    for p in &soft {
        *per_zone.entry(zone_of[&agent(p)].clone()).or_default() += 1;
        *per_agent.entry(agent(p)).or_default() += 1;
    }
    let even: BTreeMap<String, usize> = [("a", 2), ("b", 2), ("c", 2)]
        .into_iter()
        .map(|(z, n)| (z.to_owned(), n))
        .collect();
    assert_eq!(per_zone, even, "{per_agent:?}");
    assert_eq!(per_agent.len(), 4, "every agent used: {per_agent:?}");

    // The preferences are stored and shown as sent.
    let (_, job) = get(&s.address, "/api/v1/jobs/zoned-soft").await;
    let shown = job.to_string();
    assert!(
        shown.contains("\"prefer\":{") && shown.contains("\"soft_constraint\":{"),
        "{job}"
    );

    // Hard: zone c takes nothing, so balance holds a and b at one each while
    // the second zone-a agent idles; the rest wait, explained.
    create_job(&s.address, "zoned", zone_example("zoned", false)).await;
    let hard = wait_pods(&s.address, "zoned", "2 running, 4 explained", |l| {
        in_state(l, "POD_STATE_RUNNING").len() == 2
            && in_state(l, "POD_STATE_PENDING")
                .iter()
                .filter(|p| p["status"]["pending_reason"].is_string())
                .count()
                == 4
    })
    .await;
    let reason = in_state(&hard, "POD_STATE_PENDING")[0]["status"]["pending_reason"]
        .as_str()
        .unwrap()
        .to_owned();
    // Which rule a round names depends on the agents it was offered; the
    // idle eligible agent does not.
    assert!(reason.starts_with("no agent satisfies"), "{reason}");
    let used: Vec<String> = in_state(&hard, "POD_STATE_RUNNING")
        .into_iter()
        .map(agent)
        .collect();
    let idle_eligible: Vec<_> = zone_of
        .iter()
        .filter(|(id, zone)| zone.as_str() != "c" && !used.contains(id))
        .collect();
    assert_eq!(idle_eligible.len(), 1, "used {used:?} of {zone_of:?}");

    // The soft job is still where it was: the other job's pending runs
    // moved nothing.
    let again = pods(&s.address, "zoned-soft").await;
    assert_eq!(in_state(&again, "POD_STATE_RUNNING").len(), 6);
}
