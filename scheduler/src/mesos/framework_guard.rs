//! Whether a store without a framework id may register a new framework.
//! Pure: the master's `/state` (its `frameworks` array) and what the store
//! and the flags say go in, a [`GuardDecision`] comes out; the query itself
//! is [`super::master_state`]'s.
//!
//! An emptied store (truncated to 0 bytes) or a deleted data directory
//! looks like a first start: before this guard the scheduler registered a
//! fresh framework and the old one's tasks stayed at the master, orphaned,
//! for the failover timeout (a week by default). The master lists every
//! framework it has not removed in `frameworks`, connected or not (Mesos
//! `master/http.cpp`, the `/state` model; removed ones are in
//! `completed_frameworks`), so a framework there with our name and
//! principal is one a store of ours knew. The scheduler then refuses to
//! start unless told `--new-framework`, or `--recover-from-master`: take
//! that framework over and rebuild its jobs from the tasks the master lists
//! for it ([`tasks_of`], then [`crate::engine::recovery`]). Recovery takes
//! one disconnected framework: an active one has a scheduler subscribed
//! that would be failed over, and of several the guard cannot tell which
//! was the store's.

use crate::engine::recovery::MasterTask;
use crate::model::spec_label;
use drover_proto::v1::TaskState;
use serde_json::Value;
use std::collections::HashMap;

/// A framework the master still knows, as its `/state` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownFramework {
    /// Its framework id.
    pub id: String,
    /// `FrameworkInfo.name`.
    pub name: String,
    /// `FrameworkInfo.principal`, if it has one.
    pub principal: Option<String>,
    /// Whether it is subscribed now (`active`); a disconnected one waits
    /// out its failover timeout.
    pub active: bool,
    /// How many tasks the master holds for it (`tasks` and
    /// `unreachable_tasks`): what registering anew would orphan.
    pub tasks: usize,
}

/// What the guard is told about this scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardInput<'a> {
    /// The framework id the store holds.
    pub stored_framework_id: Option<&'a str>,
    /// Our `FrameworkInfo.name`.
    pub name: &'a str,
    /// Our `FrameworkInfo.principal`.
    pub principal: Option<&'a str>,
    /// `--new-framework`: register a new framework even so.
    pub new_framework: bool,
    /// `--recover-from-master`: take over the one disconnected framework of
    /// ours the master knows, and rebuild the store from its tasks.
    pub recover_from_master: bool,
}

/// What the scheduler does before its first SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardDecision {
    /// The store names its framework: subscribe with it, no question.
    Resubscribe,
    /// No framework of ours at the master (or `--new-framework`):
    /// register a new one.
    Register,
    /// `--recover-from-master`, and the master knows one disconnected
    /// framework of ours: take it over.
    Recover {
        /// The framework.
        framework: KnownFramework,
    },
    /// The store has no framework id but the master knows frameworks of
    /// ours: starting would orphan their tasks (or, under
    /// `--recover-from-master`, which to take over is not clear).
    Refuse {
        /// The master's frameworks with our name and principal.
        frameworks: Vec<KnownFramework>,
    },
}

impl GuardDecision {
    /// Whether the master must be asked before deciding.
    pub fn needs_master(input: &GuardInput<'_>) -> bool {
        input.stored_framework_id.is_none() && !input.new_framework
    }
}

/// The decision, given the master's frameworks (unused unless
/// [`GuardDecision::needs_master`]).
pub fn decide(input: &GuardInput<'_>, master: &[KnownFramework]) -> GuardDecision {
    if input.stored_framework_id.is_some() {
        return GuardDecision::Resubscribe;
    }
    if input.new_framework {
        return GuardDecision::Register;
    }
    let ours: Vec<KnownFramework> = master
        .iter()
        .filter(|f| f.name == input.name && f.principal.as_deref() == input.principal)
        .cloned()
        .collect();
    match ours.as_slice() {
        [] => GuardDecision::Register,
        [one] if input.recover_from_master && !one.active => GuardDecision::Recover {
            framework: one.clone(),
        },
        _ => GuardDecision::Refuse { frameworks: ours },
    }
}

/// The refusal, as the operator reads it: which frameworks, why, and the
/// two ways on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the master knows {} of ours (name '{name}', principal {}): {}, but the store {} has no \
     framework id (it is new, emptied or deleted). Registering a new framework would orphan \
     {} tasks. Restore the store from a backup made with `drover-scheduler backup` (see \
     \"Backup and restore\" in scheduler/README.md), pass --recover-from-master to take the \
     framework over and rebuild its jobs from the tasks the master lists (one disconnected \
     framework only), or pass --new-framework to register a new framework anyway",
    if frameworks.len() == 1 { "a framework" } else { "frameworks" },
    principal.as_deref().map(|p| format!("'{p}'")).unwrap_or_else(|| "none".into()),
    listed(frameworks),
    store.display(),
    if frameworks.len() == 1 { "that framework's" } else { "those frameworks'" },
)]
pub struct GuardRefusal {
    /// The master's frameworks of ours.
    pub frameworks: Vec<KnownFramework>,
    /// Our name.
    pub name: String,
    /// Our principal.
    pub principal: Option<String>,
    /// The store's file.
    pub store: std::path::PathBuf,
}

fn listed(frameworks: &[KnownFramework]) -> String {
    frameworks
        .iter()
        .map(|f| {
            let state = if f.active { "active" } else { "disconnected" };
            format!("{} ({state}, {} tasks)", f.id, f.tasks)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a master's `/state` could not be read as one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The body is not JSON.
    #[error("the master's /state is not JSON: {0}")]
    NotJson(String),
    /// No `frameworks` array.
    #[error("the master's /state has no frameworks array")]
    NoFrameworks,
}

/// A master's `/state` body, parsed once for every question asked of it
/// (it is megabytes on a large cluster).
pub fn parse_state(body: &[u8]) -> Result<Value, StateError> {
    serde_json::from_slice(body).map_err(|e| StateError::NotJson(e.to_string()))
}

/// The frameworks a master's state lists (`frameworks`; not
/// `completed_frameworks`, which are gone). Entries without an id or a
/// name are skipped: they cannot be ours.
pub fn frameworks_in_state(state: &Value) -> Result<Vec<KnownFramework>, StateError> {
    let list = state["frameworks"]
        .as_array()
        .ok_or(StateError::NoFrameworks)?;
    Ok(list
        .iter()
        .filter_map(|f| {
            let text = |key: &str| f[key].as_str().filter(|s| !s.is_empty()).map(str::to_owned);
            Some(KnownFramework {
                id: text("id")?,
                name: text("name")?,
                principal: text("principal"),
                active: f["active"].as_bool().unwrap_or(false),
                tasks: ["tasks", "unreachable_tasks"]
                    .iter()
                    .map(|key| f[*key].as_array().map_or(0, Vec::len))
                    .sum(),
            })
        })
        .collect())
}

/// The tasks the master's state lists for framework `framework_id`:
/// live (`tasks`), on unreachable agents (`unreachable_tasks`) and the last
/// completed ones (`completed_tasks`), each with its agent's hostname from
/// `slaves`. Entries without an id or agent are skipped; an unknown state
/// reads as TASK_UNKNOWN.
pub fn tasks_of(state: &Value, framework_id: &str) -> Result<Vec<MasterTask>, StateError> {
    let frameworks = state["frameworks"]
        .as_array()
        .ok_or(StateError::NoFrameworks)?;
    let Some(framework) = frameworks
        .iter()
        .find(|f| f["id"].as_str() == Some(framework_id))
    else {
        return Ok(Vec::new());
    };
    let hostnames: HashMap<&str, &str> = state["slaves"]
        .as_array()
        .map(|agents| {
            agents
                .iter()
                .filter_map(|a| Some((a["id"].as_str()?, a["hostname"].as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    let mut tasks = Vec::new();
    for key in ["tasks", "unreachable_tasks", "completed_tasks"] {
        for entry in framework[key].as_array().into_iter().flatten() {
            if let Some(task) = master_task(entry, &hostnames) {
                tasks.push(task);
            }
        }
    }
    Ok(tasks)
}

/// One `/state` task entry (Mesos `json(JSON::ObjectWriter*, const
/// Task&)`).
fn master_task(entry: &Value, hostnames: &HashMap<&str, &str>) -> Option<MasterTask> {
    let task_id = entry["id"].as_str().filter(|s| !s.is_empty())?;
    let agent_id = entry["slave_id"].as_str().filter(|s| !s.is_empty())?;
    let state_of = |v: &Value| {
        v.as_str()
            .and_then(TaskState::from_str_name)
            .unwrap_or(TaskState::TaskUnknown)
    };
    // `statuses`: every state the task went through, oldest first, each
    // with its time in (fractional) seconds.
    let statuses: Vec<(TaskState, Option<i64>)> = entry["statuses"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let at = s["timestamp"].as_f64().map(|t| (t * 1000.0) as i64);
            (state_of(&s["state"]), at)
        })
        .collect();
    let spec_label = entry["labels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["key"].as_str() == Some(spec_label::KEY))
        .filter_map(|l| l["value"].as_str())
        .next_back()
        .map(str::to_owned);
    Some(MasterTask {
        task_id: task_id.to_owned(),
        agent_id: agent_id.to_owned(),
        hostname: hostnames.get(agent_id).map(|h| (*h).to_owned()),
        state: state_of(&entry["state"]),
        reachable_state: statuses
            .iter()
            .rev()
            .map(|(state, _)| *state)
            .find(|state| *state != TaskState::TaskUnreachable),
        spec_label,
        started_at: statuses
            .iter()
            .find(|(state, _)| *state == TaskState::TaskRunning)
            .and_then(|(_, at)| *at),
        updated_at: statuses.last().and_then(|(_, at)| *at),
    })
}

/// The leading master's `host:port` when the master that answered
/// `/state` is not the leader (`pid` and `leader` differ, both
/// `master@host:port`).
pub fn leader_elsewhere(state: &Value) -> Option<String> {
    let pid = state["pid"].as_str()?;
    let leader = state["leader"].as_str().filter(|l| !l.is_empty())?;
    (pid != leader)
        .then(|| leader.split_once('@').map(|(_, addr)| addr.to_owned()))
        .flatten()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fw(id: &str, name: &str, principal: Option<&str>, active: bool) -> KnownFramework {
        KnownFramework {
            id: id.into(),
            name: name.into(),
            principal: principal.map(Into::into),
            active,
            tasks: 0,
        }
    }

    fn input(stored: Option<&'static str>, new_framework: bool) -> GuardInput<'static> {
        GuardInput {
            stored_framework_id: stored,
            name: "drover",
            principal: Some("ops"),
            new_framework,
            recover_from_master: false,
        }
    }

    #[test]
    fn the_decision_table() {
        let ours_active = fw("fw-1", "drover", Some("ops"), true);
        let ours_gone = fw("fw-2", "drover", Some("ops"), false);
        let other_name = fw("fw-3", "marathon", Some("ops"), true);
        let other_principal = fw("fw-4", "drover", Some("dev"), true);
        let no_principal = fw("fw-5", "drover", None, true);
        let strangers = [other_name.clone(), other_principal, no_principal];
        let cases: Vec<(&str, GuardInput<'_>, Vec<KnownFramework>, GuardDecision)> = vec![
            (
                "a stored framework id resubscribes whatever the master knows",
                input(Some("fw-1"), false),
                vec![ours_active.clone()],
                GuardDecision::Resubscribe,
            ),
            (
                "a first start registers",
                input(None, false),
                vec![],
                GuardDecision::Register,
            ),
            (
                "other names and principals are not ours",
                input(None, false),
                strangers.to_vec(),
                GuardDecision::Register,
            ),
            (
                "an active framework of ours is refused",
                input(None, false),
                vec![other_name.clone(), ours_active.clone()],
                GuardDecision::Refuse {
                    frameworks: vec![ours_active.clone()],
                },
            ),
            (
                "a disconnected one within its failover timeout too",
                input(None, false),
                vec![ours_gone.clone(), ours_active.clone()],
                GuardDecision::Refuse {
                    frameworks: vec![ours_gone.clone(), ours_active.clone()],
                },
            ),
            (
                "--new-framework registers anyway",
                input(None, true),
                vec![ours_active.clone()],
                GuardDecision::Register,
            ),
        ];
        for (why, input, master, want) in cases {
            assert_eq!(decide(&input, &master), want, "{why}");
        }
    }

    #[test]
    fn recovery_takes_over_one_disconnected_framework_only() {
        let recover = GuardInput {
            recover_from_master: true,
            ..input(None, false)
        };
        let ours_active = fw("fw-1", "drover", Some("ops"), true);
        let ours_gone = fw("fw-2", "drover", Some("ops"), false);
        let stranger = fw("fw-3", "marathon", Some("ops"), false);
        let cases: Vec<(&str, Vec<KnownFramework>, GuardDecision)> = vec![
            (
                "one disconnected framework of ours is taken over",
                vec![stranger.clone(), ours_gone.clone()],
                GuardDecision::Recover {
                    framework: ours_gone.clone(),
                },
            ),
            (
                "an active one has a scheduler that would be failed over",
                vec![ours_active.clone()],
                GuardDecision::Refuse {
                    frameworks: vec![ours_active.clone()],
                },
            ),
            (
                "of several, which was the store's is not known",
                vec![ours_gone.clone(), fw("fw-4", "drover", Some("ops"), false)],
                GuardDecision::Refuse {
                    frameworks: vec![ours_gone.clone(), fw("fw-4", "drover", Some("ops"), false)],
                },
            ),
            (
                "nothing of ours: register",
                vec![stranger],
                GuardDecision::Register,
            ),
        ];
        for (why, master, want) in cases {
            assert_eq!(decide(&recover, &master), want, "{why}");
        }
        let stored = GuardInput {
            stored_framework_id: Some("fw-2"),
            ..recover
        };
        assert_eq!(decide(&stored, &[ours_gone]), GuardDecision::Resubscribe);
    }

    #[test]
    fn a_frameworks_tasks_are_read_with_their_spec_label_times_and_hosts() {
        let body = serde_json::json!({
            "slaves": [{"id": "a1", "hostname": "host-1"}],
            "frameworks": [
                {"id": "other", "tasks": [{"id": "x-0-0", "slave_id": "a1", "state": "TASK_RUNNING"}]},
                {"id": "fw-1",
                 "tasks": [{"id": "j-0-0", "slave_id": "a1", "state": "TASK_RUNNING",
                            "labels": [{"key": "drover.job.spec", "value": "user's"},
                                       {"key": "team", "value": "x"},
                                       {"key": "drover.job.spec", "value": "ours"}],
                            "statuses": [{"state": "TASK_STARTING", "timestamp": 1.5},
                                         {"state": "TASK_RUNNING", "timestamp": 2.25}]}],
                 "unreachable_tasks": [{"id": "j-1-0", "slave_id": "a2", "state": "TASK_UNREACHABLE",
                            "statuses": [{"state": "TASK_RUNNING", "timestamp": 3.0},
                                         {"state": "TASK_UNREACHABLE", "timestamp": 4.0}]}],
                 "completed_tasks": [{"id": "j-2-0", "slave_id": "a1", "state": "TASK_BOGUS"},
                                     {"id": "no agent"}]}
            ]
        });
        let tasks = tasks_of(&body, "fw-1").unwrap();
        assert_eq!(tasks.len(), 3, "{tasks:?}");
        assert_eq!(
            tasks[0],
            MasterTask {
                task_id: "j-0-0".into(),
                agent_id: "a1".into(),
                hostname: Some("host-1".into()),
                state: TaskState::TaskRunning,
                reachable_state: Some(TaskState::TaskRunning),
                spec_label: Some("ours".into()),
                started_at: Some(2_250),
                updated_at: Some(2_250),
            }
        );
        assert_eq!(tasks[1].hostname, None, "an agent the master does not list");
        assert_eq!(tasks[1].state, TaskState::TaskUnreachable);
        assert_eq!(tasks[1].reachable_state, Some(TaskState::TaskRunning));
        assert_eq!(tasks[1].updated_at, Some(4_000));
        assert_eq!(tasks[2].state, TaskState::TaskUnknown);
        assert_eq!(tasks_of(&body, "gone").unwrap(), vec![]);
        assert_eq!(
            tasks_of(&serde_json::json!({}), "fw-1"),
            Err(StateError::NoFrameworks)
        );
    }

    #[test]
    fn the_master_is_asked_only_for_a_store_without_a_framework_id() {
        assert!(GuardDecision::needs_master(&input(None, false)));
        assert!(!GuardDecision::needs_master(&input(Some("fw-1"), false)));
        assert!(!GuardDecision::needs_master(&input(None, true)));
    }

    #[test]
    fn frameworks_are_read_from_state_but_not_completed_ones() {
        let body = serde_json::json!({
            "pid": "master@10.0.0.1:5050",
            "leader": "master@10.0.0.1:5050",
            "frameworks": [
                {"id": "fw-1", "name": "drover", "principal": "ops", "active": false,
                 "tasks": [{"id": "a"}, {"id": "b"}], "unreachable_tasks": [{"id": "c"}]},
                {"id": "fw-2", "name": "drover", "active": true},
                {"name": "no id"}
            ],
            "completed_frameworks": [{"id": "fw-0", "name": "drover", "principal": "ops"}]
        });
        let found = frameworks_in_state(&body).unwrap();
        assert_eq!(
            found,
            vec![
                KnownFramework {
                    tasks: 3,
                    ..fw("fw-1", "drover", Some("ops"), false)
                },
                fw("fw-2", "drover", None, true)
            ]
        );
        assert_eq!(leader_elsewhere(&body), None);
        assert_eq!(
            parse_state(b"<html>"),
            Err(StateError::NotJson(
                "expected value at line 1 column 1".into()
            ))
        );
        assert_eq!(
            frameworks_in_state(&serde_json::json!({})),
            Err(StateError::NoFrameworks)
        );
    }

    #[test]
    fn a_standby_master_names_the_leader() {
        let body = serde_json::json!({
            "pid": "master@10.0.0.2:5050",
            "leader": "master@10.0.0.1:5050",
            "frameworks": []
        });
        assert_eq!(leader_elsewhere(&body).as_deref(), Some("10.0.0.1:5050"));
    }

    #[test]
    fn the_refusal_names_the_frameworks_their_tasks_and_the_ways_on() {
        let refusal = GuardRefusal {
            frameworks: vec![KnownFramework {
                tasks: 2,
                ..fw("fw-1", "drover", Some("ops"), false)
            }],
            name: "drover".into(),
            principal: Some("ops".into()),
            store: "/var/lib/drover/drover.sqlite".into(),
        };
        let message = refusal.to_string();
        for needed in [
            "fw-1 (disconnected, 2 tasks)",
            "principal 'ops'",
            "/var/lib/drover/drover.sqlite has no framework id",
            "drover-scheduler backup",
            "--new-framework",
            "--recover-from-master",
        ] {
            assert!(message.contains(needed), "{needed}: {message}");
        }
    }
}
