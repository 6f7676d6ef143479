//! The frameworks the master knows: their FrameworkInfo, their live
//! subscription (stream and `Mesos-Stream-Id`), the roles they suppressed,
//! and the frameworks removed for good. SUBSCRIBE's FrameworkInfo checks
//! (the ones that become an ERROR event after the 200, reference 3.3), the
//! stream check every other call passes (3.2 rows 13-21), failover and
//! UPDATE_FRAMEWORK live here; what a framework holds elsewhere (offers,
//! tasks, executors) is the other parts' to release.
//!
//! ```text
//!             subscribe                         disconnect
//!  (none) ───────────────► Connected{conn} ─────────────────────► Disconnected{epoch}
//!                            ▲   │ TEARDOWN                          │   │ failover timer
//!                            │   ▼                                   │   ▼
//!                            │  Removed ◄──────────────────────────────  Removed
//!                            └──────────── subscribe (same id) ──────┘
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use drover_proto::v1::scheduler::call;
use drover_proto::v1::{self, framework_info::capability, FrameworkInfo};

use super::calls::CallError;
use super::history::FrameworkHistory;
use super::journal::changes::Changes;
use super::validate;
use crate::fixed_hash::{HashMap, HashSet};
use crate::ids::{ConnId, IdGen};

/// A framework's live subscription.
#[derive(Debug, Clone)]
pub struct Connection {
    pub conn: ConnId,
    pub stream_id: String,
}

/// A framework the master knows.
#[derive(Debug)]
pub struct Framework {
    pub id: String,
    pub info: FrameworkInfo,
    pub connection: Option<Connection>,
    /// Bumped on every (re)subscription so stale failover timers are ignored.
    pub epoch: u64,
    pub suppressed: HashSet<String>,
    pub registered_at: Instant,
}

impl Framework {
    /// The roles the framework may be offered resources for.
    pub fn roles(&self) -> Vec<String> {
        roles_of(&self.info)
    }

    pub fn has_capability(&self, cap: capability::Type) -> bool {
        self.info
            .capabilities
            .iter()
            .any(|c| c.r#type == Some(cap as i32))
    }

    pub fn is_partition_aware(&self) -> bool {
        self.has_capability(capability::Type::PartitionAware)
    }
}

/// The roles in a FrameworkInfo: `roles` for MULTI_ROLE frameworks, else `role` (default `*`).
pub fn roles_of(info: &FrameworkInfo) -> Vec<String> {
    let multi = info
        .capabilities
        .iter()
        .any(|c| c.r#type == Some(capability::Type::MultiRole as i32));
    if multi {
        info.roles.clone()
    } else {
        #[allow(deprecated)]
        let role = info.role.clone();
        vec![role.unwrap_or_else(|| "*".to_owned())]
    }
}

/// A framework that has been removed (torn down or failed over for good),
/// with its history: the tasks that completed before, and those the
/// removal killed.
#[derive(Debug)]
pub struct CompletedFramework {
    pub info: FrameworkInfo,
    pub history: FrameworkHistory,
}

/// A SUBSCRIBE the frameworks took.
#[derive(Debug)]
pub struct Subscribed {
    /// The framework's id, minted if it had none.
    pub framework: String,
    /// The stream it had, which the new one replaces.
    pub replaced: Option<ConnId>,
    /// Whether the framework was known (a re-subscription or failover).
    pub resubscribed: bool,
}

/// A framework whose stream ended.
#[derive(Debug)]
pub struct Disconnected {
    pub framework: String,
    /// The subscription that ended, for its failover timer.
    pub epoch: u64,
    /// How long the master waits for it to come back.
    pub failover_timeout: Duration,
}

/// A framework in line for offers: connected, with a role it has not suppressed.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub framework: String,
    /// The first role it wants offers for.
    pub role: String,
    pub multi_role: bool,
}

/// Every framework, active and completed.
#[derive(Debug, Default)]
pub struct Frameworks {
    active: HashMap<String, Framework>,
    completed: HashMap<String, CompletedFramework>,
    /// Completed frameworks that still keep their history, oldest first.
    with_history: VecDeque<String>,
    /// The frameworks subscribed, updated or removed since the journal
    /// last took them (`--state-dir`).
    changes: Changes<String>,
}

impl Frameworks {
    /// Starts noting changed frameworks for the journal.
    pub fn journal_changes(&mut self) {
        self.changes.enable();
    }

    /// The frameworks changed since the last call.
    pub fn take_changes(&mut self) -> Vec<String> {
        self.changes.take()
    }

    /// A framework another master had, recovered from its journal as a
    /// Mesos master recovers one its re-registering agents report
    /// (master.cpp `recoverFramework`): known, not connected, and with no
    /// failover timer until it has subscribed here and gone away. Its
    /// SUBSCRIBE with its id is then a re-subscription. False if the id
    /// is taken (active or removed here).
    pub fn recover(&mut self, info: FrameworkInfo, now: Instant) -> bool {
        let Some(id) = info.id.as_ref().map(|i| i.value.clone()) else {
            return false;
        };
        if self.active.contains_key(&id) || self.completed.contains_key(&id) {
            return false;
        }
        self.changes.note(&id);
        self.active.insert(
            id.clone(),
            Framework {
                id,
                info,
                connection: None,
                epoch: 0,
                suppressed: HashSet::default(),
                registered_at: now,
            },
        );
        true
    }

    /// SUBSCRIBE on stream `conn` with the new `stream_id`: a new framework
    /// (its id minted from `ids`), or a known one re-subscribing, whose old
    /// stream is replaced (Mesos keeps its user and checkpoint). The error
    /// is the message of the ERROR event that refuses it.
    pub fn subscribe(
        &mut self,
        conn: ConnId,
        stream_id: &str,
        subscribe: call::Subscribe,
        role_whitelist: Option<&[String]>,
        ids: &mut IdGen,
        now: Instant,
    ) -> Result<Subscribed, String> {
        let mut info = subscribe.framework_info;
        check_framework_info(&info, &subscribe.suppressed_roles, role_whitelist)?;
        let id = match info.id.as_ref().map(|i| i.value.clone()) {
            Some(id) if self.completed.contains_key(&id) => {
                return Err("Framework has been removed".into())
            }
            Some(id) => id,
            None => ids.framework(),
        };
        info.id = Some(v1::FrameworkId { value: id.clone() });
        self.changes.note(&id);
        let failover_secs = info.failover_timeout.unwrap_or(0.0);
        if !failover_secs.is_finite() || failover_secs.abs() * 1e9 > i64::MAX as f64 {
            return Err("Invalid failover_timeout".into());
        }
        let connection = Connection {
            conn,
            stream_id: stream_id.to_owned(),
        };
        let suppressed = subscribe.suppressed_roles.into_iter().collect();
        let Some(fw) = self.active.get_mut(&id) else {
            let fw = Framework {
                id: id.clone(),
                info,
                connection: Some(connection),
                epoch: 0,
                suppressed,
                registered_at: now,
            };
            self.active.insert(id.clone(), fw);
            return Ok(Subscribed {
                framework: id,
                replaced: None,
                resubscribed: false,
            });
        };
        let replaced = fw.connection.take().map(|old| old.conn);
        info.user = fw.info.user.clone();
        info.checkpoint = fw.info.checkpoint;
        fw.info = info;
        fw.connection = Some(connection);
        fw.epoch += 1;
        fw.suppressed = suppressed;
        Ok(Subscribed {
            framework: id,
            replaced,
            resubscribed: true,
        })
    }

    /// Stream `conn` ended: the framework on it, if any, is disconnected
    /// and its failover timeout starts (reference 3.7).
    pub fn disconnect(&mut self, conn: ConnId) -> Option<Disconnected> {
        let fw = self
            .active
            .values_mut()
            .find(|f| f.connection.as_ref().is_some_and(|c| c.conn == conn))?;
        fw.connection = None;
        let failover_timeout = fw
            .info
            .failover_timeout
            .and_then(drover_proto::duration::from_seconds)
            .unwrap_or(Duration::ZERO);
        Some(Disconnected {
            framework: fw.id.clone(),
            epoch: fw.epoch,
            failover_timeout,
        })
    }

    /// Every stream ends at once (a master failover); returns them. Their
    /// frameworks keep their ids and may re-subscribe.
    pub fn drop_connections(&mut self) -> Vec<ConnId> {
        let mut closed = Vec::new();
        for fw in self.active.values_mut() {
            if let Some(c) = fw.connection.take() {
                closed.push(c.conn);
                fw.epoch += 1;
            }
        }
        closed
    }

    /// Takes a framework out of the active ones; [`Frameworks::complete`]
    /// records it once its tasks are accounted for.
    pub fn remove(&mut self, id: &str) -> Option<Framework> {
        self.changes.note(&id.to_owned());
        self.active.remove(id)
    }

    /// Records a removed framework with its history. Only the last
    /// `keep_histories` removed frameworks keep theirs (Mesos
    /// `--max_completed_frameworks`); older ones are still known, so their
    /// id is refused, but list no tasks.
    pub fn complete(
        &mut self,
        id: String,
        info: FrameworkInfo,
        history: FrameworkHistory,
        keep_histories: usize,
    ) {
        self.with_history.push_back(id.clone());
        self.completed
            .insert(id, CompletedFramework { info, history });
        while self.with_history.len() > keep_histories {
            let Some(oldest) = self.with_history.pop_front() else {
                break;
            };
            if let Some(c) = self.completed.get_mut(&oldest) {
                c.history = FrameworkHistory::default();
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<&Framework> {
        self.active.get(id)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.active.contains_key(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Framework> {
        self.active.values()
    }

    pub fn completed(&self) -> impl Iterator<Item = (&String, &CompletedFramework)> {
        self.completed.iter()
    }

    /// The stream events for the framework go on, while it is connected.
    pub fn conn(&self, id: &str) -> Option<ConnId> {
        self.active.get(id)?.connection.as_ref().map(|c| c.conn)
    }

    /// Every live stream.
    pub fn conns(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.active
            .values()
            .filter_map(|f| f.connection.as_ref().map(|c| c.conn))
    }

    /// Whether the framework's failover timer of `epoch` still applies: it
    /// has not re-subscribed since and is still away.
    pub fn failover_expired(&self, id: &str, epoch: u64) -> bool {
        self.active
            .get(id)
            .is_some_and(|f| f.epoch == epoch && f.connection.is_none())
    }

    pub fn is_partition_aware(&self, id: &str) -> bool {
        self.active.get(id).is_some_and(|f| f.is_partition_aware())
    }

    pub fn has_capability(&self, id: &str, cap: capability::Type) -> bool {
        self.active.get(id).is_some_and(|f| f.has_capability(cap))
    }

    /// The framework and stream checks every non-subscribe call passes
    /// (reference 3.2 rows 13-16).
    pub fn check_stream(&self, id: &str, stream_id: Option<&str>) -> Result<(), CallError> {
        let fw = self.active.get(id).ok_or(CallError::FrameworkNotFound)?;
        let current = fw.connection.as_ref().ok_or(CallError::NotSubscribed)?;
        let header = stream_id.ok_or(CallError::MissingStreamId)?;
        if header != current.stream_id {
            return Err(CallError::StreamIdMismatch(
                header.to_owned(),
                id.to_owned(),
            ));
        }
        Ok(())
    }

    /// REVIVE of `roles` (all of the framework's if empty): they are no
    /// longer suppressed. Whether it applied (every role is the framework's).
    pub fn revive(&mut self, id: &str, roles: Vec<String>) -> bool {
        let Some(fw) = self.active.get_mut(id) else {
            return false;
        };
        let mine = roles_of(&fw.info);
        if roles.iter().any(|r| !mine.contains(r)) {
            return false;
        }
        let roles = if roles.is_empty() { mine } else { roles };
        for r in &roles {
            fw.suppressed.remove(r);
        }
        true
    }

    /// SUPPRESS of `roles` (all of the framework's if empty), if every one
    /// is the framework's.
    pub fn suppress(&mut self, id: &str, roles: Vec<String>) {
        let Some(fw) = self.active.get_mut(id) else {
            return;
        };
        let mine = roles_of(&fw.info);
        if roles.iter().any(|r| !mine.contains(r)) {
            return;
        }
        fw.suppressed
            .extend(if roles.is_empty() { mine } else { roles });
    }

    /// UPDATE_FRAMEWORK (reference 3.4.16): a new FrameworkInfo and
    /// suppressed roles, refused for the changes Mesos refuses.
    pub fn update(&mut self, id: &str, u: call::UpdateFramework) -> Result<(), CallError> {
        let Some(fw) = self.active.get_mut(id) else {
            return Err(CallError::FrameworkNotFound);
        };
        let info = u.framework_info;
        if info.user != fw.info.user {
            return Err(CallError::InvalidUpdate(
                "Updating 'FrameworkInfo.user' is unsupported".into(),
            ));
        }
        if info.principal != fw.info.principal {
            return Err(CallError::InvalidUpdate(
                "Changing framework's principal is not allowed.".into(),
            ));
        }
        if info.checkpoint != fw.info.checkpoint {
            return Err(CallError::InvalidUpdate(
                "Updating 'FrameworkInfo.checkpoint' is unsupported".into(),
            ));
        }
        let roles = roles_of(&info);
        if let Some(r) = u.suppressed_roles.iter().find(|r| !roles.contains(r)) {
            return Err(CallError::InvalidUpdate(format!(
                "Suppressed role '{r}' is not contained in the list of roles"
            )));
        }
        fw.info = info;
        fw.suppressed = u.suppressed_roles.into_iter().collect();
        self.changes.note(&id.to_owned());
        Ok(())
    }

    /// The frameworks an allocation cycle weighs, in a fixed order.
    pub fn candidates(&self) -> Vec<Candidate> {
        let mut out = Vec::new();
        for fw in self.active.values() {
            if fw.connection.is_none() {
                continue;
            }
            let Some(role) = fw.roles().into_iter().find(|r| !fw.suppressed.contains(r)) else {
                continue;
            };
            out.push(Candidate {
                framework: fw.id.clone(),
                role,
                multi_role: fw.has_capability(capability::Type::MultiRole),
            });
        }
        out
    }
}

/// Checks a SUBSCRIBE's FrameworkInfo as the master does after the 200
/// (reference 3.3): failures become a single ERROR event.
fn check_framework_info(
    info: &FrameworkInfo,
    suppressed: &[String],
    role_whitelist: Option<&[String]>,
) -> Result<(), String> {
    let multi = info
        .capabilities
        .iter()
        .any(|c| c.r#type == Some(capability::Type::MultiRole as i32));
    #[allow(deprecated)]
    let role = info.role.as_ref();
    if multi && role.is_some() {
        return Err(
            "'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable".into(),
        );
    }
    if !multi && !info.roles.is_empty() {
        return Err(
            "'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable"
                .into(),
        );
    }
    let roles = roles_of(info);
    let mut seen = HashSet::default();
    for r in &roles {
        if !seen.insert(r) {
            return Err(format!(
                "'FrameworkInfo.roles' contains duplicate items: {r}"
            ));
        }
        if let Err(why) = validate::role(r) {
            return Err(format!(
                "'FrameworkInfo.roles' contains invalid role: {why}"
            ));
        }
        if let Some(list) = role_whitelist {
            if r != "*" && !list.contains(r) {
                return Err(format!("Role '{r}' is not present in the master's --roles"));
            }
        }
    }
    if let Some(id) = &info.id {
        validate::id(&id.value).map_err(|why| format!("'FrameworkInfo.id' is invalid: {why}"))?;
    }
    if let Some(r) = suppressed.iter().find(|r| !roles.contains(r)) {
        return Err(format!(
            "Suppressed role '{r}' is not contained in the list of roles"
        ));
    }
    Ok(())
}
