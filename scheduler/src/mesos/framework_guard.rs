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
//! start unless told `--new-framework`.

use serde_json::Value;

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
}

/// What the scheduler does before its first SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardDecision {
    /// The store names its framework: subscribe with it, no question.
    Resubscribe,
    /// No framework of ours at the master (or `--new-framework`):
    /// register a new one.
    Register,
    /// The store has no framework id but the master knows frameworks of
    /// ours: starting would orphan their tasks.
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
    if ours.is_empty() {
        GuardDecision::Register
    } else {
        GuardDecision::Refuse { frameworks: ours }
    }
}

/// The refusal, as the operator reads it: which frameworks, why, and the
/// two ways on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the master knows {} of ours (name '{name}', principal {}): {}, but the store {} has no \
     framework id (it is new, emptied or deleted). Registering a new framework would orphan \
     {} tasks. Restore the store from a backup made with `drover-scheduler backup` (see \
     \"Backup and restore\" in scheduler/README.md), or pass --new-framework to register a \
     new framework anyway",
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

/// The frameworks a master's `/state` body lists (`frameworks`; not
/// `completed_frameworks`, which are gone). Entries without an id or a
/// name are skipped: they cannot be ours.
pub fn frameworks_in_state(body: &[u8]) -> Result<Vec<KnownFramework>, StateError> {
    let state: Value =
        serde_json::from_slice(body).map_err(|e| StateError::NotJson(e.to_string()))?;
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

/// The leading master's `host:port` when the master that answered
/// `/state` is not the leader (`pid` and `leader` differ, both
/// `master@host:port`).
pub fn leader_elsewhere(body: &[u8]) -> Option<String> {
    let state: Value = serde_json::from_slice(body).ok()?;
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
        let found = frameworks_in_state(body.to_string().as_bytes()).unwrap();
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
        assert_eq!(leader_elsewhere(body.to_string().as_bytes()), None);
        assert_eq!(
            frameworks_in_state(b"<html>"),
            Err(StateError::NotJson(
                "expected value at line 1 column 1".into()
            ))
        );
        assert_eq!(frameworks_in_state(b"{}"), Err(StateError::NoFrameworks));
    }

    #[test]
    fn a_standby_master_names_the_leader() {
        let body = serde_json::json!({
            "pid": "master@10.0.0.2:5050",
            "leader": "master@10.0.0.1:5050",
            "frameworks": []
        });
        assert_eq!(
            leader_elsewhere(body.to_string().as_bytes()).as_deref(),
            Some("10.0.0.1:5050")
        );
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
        ] {
            assert!(message.contains(needed), "{needed}: {message}");
        }
    }
}
