//! Every executor of every real agent, found by key, container or stream,
//! and each agent's executor endpoint's downtime. Each executor's own
//! protocol state is an [`ExecutorRecord`] (`executor.rs`); this file
//! creates and forgets records, keeps the indexes in step with them and
//! hands each input to the record it names. Pure: inputs carry `now`,
//! outputs are [`ExecAction`]s.
//!
//! Calling contract: [`Executors::on_task`] for every task placed on a
//! real agent; [`Executors::on_subscribe`] after the master has checked the
//! call; [`Executors::on_disconnected`] when a stream ends;
//! [`Executors::on_exited`] when the process is gone. Every returned action
//! must be carried out in order.

use std::time::{Duration, Instant};

use bytes::Bytes;
use drover_proto::v1::executor::Event;
use drover_proto::v1::{self, ExecutorInfo, KillPolicy};

use super::executor::{Delivery, ExecAction, ExecutorKind, ExecutorRecord, KillOutcome};
use crate::fixed_hash::HashMap;
use crate::ids::{AgentIndex, ConnId, ExecutorKey};

/// Every executor of every real agent.
#[derive(Debug, Default)]
pub struct Executors {
    records: HashMap<ExecutorKey, ExecutorRecord>,
    by_container: HashMap<String, ExecutorKey>,
    by_conn: HashMap<ConnId, ExecutorKey>,
    down_until: HashMap<AgentIndex, Instant>,
}

impl Executors {
    pub fn get(&self, key: &ExecutorKey) -> Option<&ExecutorRecord> {
        self.records.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ExecutorRecord> {
        self.records.values()
    }

    /// The executor a call names: on `agent` if the call came to that
    /// agent's endpoint, else the only live one with these ids.
    pub fn find(
        &self,
        agent: Option<AgentIndex>,
        framework: &str,
        executor: &str,
    ) -> Option<ExecutorKey> {
        match agent {
            Some(a) => {
                let key = (a, framework.to_owned(), executor.to_owned());
                self.records.contains_key(&key).then_some(key)
            }
            None => {
                let mut found = self
                    .records
                    .keys()
                    .filter(|k| k.1 == framework && k.2 == executor);
                let first = found.next().cloned();
                // Ambiguous without the agent's own endpoint.
                if found.next().is_some() {
                    None
                } else {
                    first
                }
            }
        }
    }

    /// The executor subscribed on `conn`.
    pub fn by_conn(&self, conn: ConnId) -> Option<&ExecutorKey> {
        self.by_conn.get(&conn)
    }

    /// A task for the executor `key`: a new executor is started (with
    /// `info`, `kind` and `container_id`) and the work queued; a
    /// subscribed one gets it at once.
    pub fn on_task(
        &mut self,
        key: ExecutorKey,
        info: ExecutorInfo,
        kind: ExecutorKind,
        container_id: String,
        delivery: Delivery,
        now: Instant,
    ) -> Vec<ExecAction> {
        let mut out = Vec::new();
        let record = self.records.entry(key.clone()).or_insert_with(|| {
            out.push(ExecAction::Spawn { key: key.clone() });
            ExecutorRecord::new(key.clone(), info, kind, container_id, now)
        });
        self.by_container
            .insert(record.container_id.clone(), key.clone());
        out.extend(record.on_task(delivery));
        out
    }

    /// A checked SUBSCRIBE on `conn`: an old stream is closed, then
    /// `subscribed` goes out followed by the queued launches and the held
    /// events. An executor being shut down gets only SHUTDOWN.
    pub fn on_subscribe(
        &mut self,
        key: &ExecutorKey,
        conn: ConnId,
        subscribed: Event,
    ) -> Vec<ExecAction> {
        let Some(record) = self.records.get_mut(key) else {
            return Vec::new();
        };
        let old = record.conn();
        let out = record.on_subscribe(conn, subscribed);
        if record.conn() == Some(conn) {
            if let Some(old) = old {
                self.by_conn.remove(&old);
            }
            self.by_conn.insert(conn, key.clone());
        }
        out
    }

    /// An executor stream ended; returns whose it was.
    pub fn on_disconnected(&mut self, conn: ConnId) -> Option<ExecutorKey> {
        let key = self.by_conn.remove(&conn)?;
        if let Some(record) = self.records.get_mut(&key) {
            record.on_disconnected(conn);
        }
        Some(key)
    }

    /// KILL for `task_id` (see [`ExecutorRecord::on_kill`]).
    pub fn on_kill(
        &mut self,
        key: &ExecutorKey,
        task_id: &str,
        policy: Option<KillPolicy>,
    ) -> KillOutcome {
        self.records
            .get_mut(key)
            .map(|r| r.on_kill(task_id, policy))
            .unwrap_or_default()
    }

    /// SHUTDOWN: a subscribed executor gets the event and `grace` to exit
    /// before its container is killed; any other is killed now.
    pub fn on_shutdown(
        &mut self,
        key: &ExecutorKey,
        grace: Duration,
        now: Instant,
    ) -> Vec<ExecAction> {
        self.records
            .get_mut(key)
            .map(|r| r.on_shutdown(grace, now))
            .unwrap_or_default()
    }

    /// A framework message for the executor (see [`ExecutorRecord::on_message`]).
    pub fn on_message(&mut self, key: &ExecutorKey, data: Bytes) -> Vec<ExecAction> {
        self.records
            .get_mut(key)
            .map(|r| r.on_message(data))
            .unwrap_or_default()
    }

    /// The framework acknowledged an update the executor sent: remember the
    /// uuid (a re-sent copy is acknowledged at once) and tell the executor.
    pub fn on_acknowledged(
        &mut self,
        key: &ExecutorKey,
        task_id: &v1::TaskId,
        uuid: Bytes,
    ) -> Vec<ExecAction> {
        self.records
            .get_mut(key)
            .map(|r| r.on_acknowledged(task_id, uuid))
            .unwrap_or_default()
    }

    /// An update the framework already acknowledged came again: acknowledge
    /// it to the executor at once.
    pub fn is_acknowledged(&self, key: &ExecutorKey, uuid: &[u8]) -> bool {
        self.records
            .get(key)
            .is_some_and(|r| r.is_acknowledged(uuid))
    }

    /// ACKNOWLEDGED for an update the agent takes no further (a duplicate
    /// or one for a task that already ended), as Mesos still acknowledges it.
    pub fn acknowledge_now(
        &self,
        key: &ExecutorKey,
        task_id: &v1::TaskId,
        uuid: Bytes,
    ) -> Vec<ExecAction> {
        self.records
            .get(key)
            .map(|r| r.acknowledge_now(task_id, uuid))
            .unwrap_or_default()
    }

    /// The executor's process is gone: forgets it and returns its record.
    pub fn on_exited(&mut self, container_id: &str) -> Option<ExecutorRecord> {
        let key = self.by_container.remove(container_id)?;
        let record = self.records.remove(&key)?;
        if let Some(conn) = record.conn() {
            self.by_conn.remove(&conn);
        }
        Some(record)
    }

    /// The container id of an executor being shut down, if its kill
    /// deadline should still fire.
    pub fn is_live_container(&self, container_id: &str) -> bool {
        self.by_container.contains_key(container_id)
    }

    /// The agent's executor endpoint restarts: every executor stream on it
    /// ends and the endpoint refuses calls until `until`.
    pub fn on_endpoint_restart(&mut self, agent: AgentIndex, until: Instant) -> Vec<ExecAction> {
        self.down_until.insert(agent, until);
        let mut out = Vec::new();
        for record in self.records.values_mut().filter(|r| r.key.0 == agent) {
            if let Some(conn) = record.on_endpoint_restart() {
                self.by_conn.remove(&conn);
                out.push(ExecAction::Close { conn });
            }
        }
        out
    }

    /// Whether the agent's executor endpoint is down (restarting) at `now`.
    pub fn is_endpoint_down(&self, agent: AgentIndex, now: Instant) -> bool {
        self.down_until.get(&agent).is_some_and(|t| now < *t)
    }

    /// Every executor of a framework.
    pub fn of_framework(&self, framework: &str) -> Vec<ExecutorKey> {
        self.records
            .keys()
            .filter(|k| k.1 == framework)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::agent::executor::of;
    use drover_proto::v1::executor::event;
    use drover_proto::v1::TaskInfo;

    fn task(id: &str) -> TaskInfo {
        TaskInfo {
            task_id: v1::TaskId { value: id.into() },
            ..Default::default()
        }
    }

    fn key() -> ExecutorKey {
        (0, "fw".into(), "ex".into())
    }

    fn types(actions: &[ExecAction]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                ExecAction::Spawn { .. } => "spawn".to_owned(),
                ExecAction::Send { conn, event } => format!(
                    "{}@{conn}",
                    event::Type::try_from(event.r#type.unwrap())
                        .unwrap()
                        .as_str_name()
                ),
                ExecAction::Close { conn } => format!("close@{conn}"),
                ExecAction::Kill { .. } => "kill".to_owned(),
                ExecAction::KillAt { .. } => "kill-at".to_owned(),
            })
            .collect()
    }

    fn launched(now: Instant) -> Executors {
        let mut ex = Executors::default();
        let out = ex.on_task(
            key(),
            ExecutorInfo::default(),
            ExecutorKind::Custom,
            "c1".into(),
            Delivery::Task(Box::new(task("t1"))),
            now,
        );
        assert_eq!(types(&out), ["spawn"]);
        ex
    }

    #[test]
    fn a_new_executor_is_spawned_and_gets_its_queued_tasks_after_subscribed() {
        let now = Instant::now();
        let mut ex = launched(now);
        let again = ex.on_task(
            key(),
            ExecutorInfo::default(),
            ExecutorKind::Custom,
            "c2".into(),
            Delivery::Group(vec![task("t2"), task("t3")]),
            now,
        );
        assert!(again.is_empty(), "a known executor is not spawned twice");
        let out = ex.on_subscribe(&key(), 7, of(event::Type::Subscribed));
        assert_eq!(types(&out), ["SUBSCRIBED@7", "LAUNCH@7", "LAUNCH_GROUP@7"]);
        let record = ex.get(&key()).unwrap();
        assert_eq!(record.container_id, "c1");
        assert_eq!(record.delivered().len(), 3);
        let later = ex.on_task(
            key(),
            ExecutorInfo::default(),
            ExecutorKind::Custom,
            "c3".into(),
            Delivery::Task(Box::new(task("t4"))),
            now,
        );
        assert_eq!(types(&later), ["LAUNCH@7"]);
    }

    #[test]
    fn a_resubscription_replaces_the_old_stream_and_delivers_held_events() {
        let now = Instant::now();
        let mut ex = launched(now);
        ex.on_subscribe(&key(), 1, of(event::Type::Subscribed));
        assert_eq!(ex.on_disconnected(1), Some(key()));
        let kill = ex.on_kill(&key(), "t1", None);
        assert!(kill.actions.is_empty() && kill.dropped.is_empty(), "held");
        assert!(ex.on_message(&key(), Bytes::from_static(b"hi")).is_empty());
        let out = ex.on_subscribe(&key(), 2, of(event::Type::Subscribed));
        assert_eq!(types(&out), ["SUBSCRIBED@2", "KILL@2", "MESSAGE@2"]);
        let out = ex.on_subscribe(&key(), 3, of(event::Type::Subscribed));
        assert_eq!(types(&out), ["close@2", "SUBSCRIBED@3"]);
        assert_eq!(ex.get(&key()).unwrap().subscriptions, 3);
        assert_eq!(ex.by_conn(2), None);
    }

    #[test]
    fn killing_the_only_queued_task_drops_it_and_kills_the_executor() {
        let now = Instant::now();
        let mut ex = launched(now);
        let out = ex.on_kill(&key(), "t1", None);
        assert_eq!(out.dropped, ["t1"]);
        assert_eq!(types(&out.actions), ["kill"]);
        let sub = ex.on_subscribe(&key(), 4, of(event::Type::Subscribed));
        assert_eq!(types(&sub), ["SHUTDOWN@4", "close@4"]);
    }

    #[test]
    fn shutdown_sends_the_event_then_kills_at_the_grace_deadline() {
        let now = Instant::now();
        let mut ex = launched(now);
        ex.on_subscribe(&key(), 1, of(event::Type::Subscribed));
        let out = ex.on_shutdown(&key(), Duration::from_secs(5), now);
        assert_eq!(types(&out), ["SHUTDOWN@1", "kill-at"]);
        assert!(
            matches!(&out[1], ExecAction::KillAt { at, .. } if *at == now + Duration::from_secs(5))
        );
        assert!(ex.on_shutdown(&key(), Duration::ZERO, now).is_empty());
        assert!(ex.is_live_container("c1"));
        let gone = ex.on_exited("c1").unwrap();
        assert_eq!(gone.key, key());
        assert!(!ex.is_live_container("c1"));
        assert_eq!(ex.by_conn(1), None);
    }

    #[test]
    fn acknowledgements_reach_a_subscribed_executor_and_are_remembered() {
        let now = Instant::now();
        let mut ex = launched(now);
        let id = v1::TaskId { value: "t1".into() };
        let uuid = Bytes::from_static(&[7; 16]);
        assert!(ex.on_acknowledged(&key(), &id, uuid.clone()).is_empty());
        assert!(ex.is_acknowledged(&key(), &uuid));
        ex.on_subscribe(&key(), 9, of(event::Type::Subscribed));
        let out = ex.acknowledge_now(&key(), &id, uuid.clone());
        assert_eq!(types(&out), ["ACKNOWLEDGED@9"]);
        let ExecAction::Send { event, .. } = &out[0] else {
            unreachable!()
        };
        assert_eq!(event.acknowledged.as_ref().unwrap().uuid, uuid);
    }

    #[test]
    fn an_endpoint_restart_ends_every_stream_of_that_agent_only() {
        let now = Instant::now();
        let mut ex = launched(now);
        let other = (1, "fw".to_owned(), "ex".to_owned());
        ex.on_task(
            other.clone(),
            ExecutorInfo::default(),
            ExecutorKind::Command,
            "c9".into(),
            Delivery::Task(Box::new(task("t9"))),
            now,
        );
        ex.on_subscribe(&key(), 1, of(event::Type::Subscribed));
        ex.on_subscribe(&other, 2, of(event::Type::Subscribed));
        let out = ex.on_endpoint_restart(0, now + Duration::from_secs(1));
        assert_eq!(types(&out), ["close@1"]);
        assert!(ex.is_endpoint_down(0, now));
        assert!(!ex.is_endpoint_down(0, now + Duration::from_secs(1)));
        assert!(!ex.is_endpoint_down(1, now));
        assert!(!ex.get(&key()).unwrap().is_subscribed());
        assert!(ex.get(&other).unwrap().is_subscribed());
        assert_eq!(ex.find(None, "fw", "ex"), None, "ambiguous across agents");
        assert_eq!(ex.find(Some(1), "fw", "ex"), Some(other));
    }
}
