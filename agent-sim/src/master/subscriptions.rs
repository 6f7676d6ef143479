//! Subscriptions: SUBSCRIBE (new framework, re-subscription and failover
//! of an old stream), the FrameworkInfo checks that become an ERROR event
//! after the 200 (reference 3.3), disconnection with its failover timer,
//! and removal of a framework (TEARDOWN or failover timeout, reference 3.7).

use drover_proto::TaskStateExt;
use std::time::{Duration, Instant};

use drover_proto::v1::scheduler::call;
use drover_proto::v1::{self, framework_info::capability, FrameworkInfo, TaskState};

use super::events;
use super::state::{
    roles_of, CompletedFramework, ConnId, Connection, Effect, Framework, Master, Timer,
    MIN_INTERVAL,
};
use crate::deadline::after;
use crate::fixed_hash::HashSet;

impl Master {
    /// A framework's SUBSCRIBE call arrived on stream `conn` (already
    /// validated by `validate.rs`). Returns the new `Mesos-Stream-Id`; the
    /// stream then carries SUBSCRIBED and HEARTBEAT, or one ERROR and ends.
    pub fn on_subscribe(
        &mut self,
        conn: ConnId,
        subscribe: call::Subscribe,
        now: Instant,
    ) -> (String, Vec<Effect>) {
        self.count("SUBSCRIBE");
        let stream_id = self.ids.uuid().to_string();
        let mut effects = Vec::new();
        let mut info = subscribe.framework_info;
        if let Err(message) = self.check_framework_info(&info, &subscribe.suppressed_roles) {
            effects.push(Effect::Send {
                conn,
                event: Box::new(events::error(&message)),
            });
            effects.push(Effect::Close { conn });
            return (stream_id, effects);
        }
        let id = match info.id.as_ref().map(|i| i.value.clone()) {
            Some(id) if self.completed.contains_key(&id) => {
                effects.push(Effect::Send {
                    conn,
                    event: Box::new(events::error("Framework has been removed")),
                });
                effects.push(Effect::Close { conn });
                return (stream_id, effects);
            }
            Some(id) => id,
            None => self.ids.framework(),
        };
        info.id = Some(v1::FrameworkId { value: id.clone() });
        let failover_secs = info.failover_timeout.unwrap_or(0.0);
        if !failover_secs.is_finite() || failover_secs.abs() * 1e9 > i64::MAX as f64 {
            effects.push(Effect::Send {
                conn,
                event: Box::new(events::error("Invalid failover_timeout")),
            });
            effects.push(Effect::Close { conn });
            return (stream_id, effects);
        }
        let connection = Connection {
            conn,
            stream_id: stream_id.clone(),
        };
        match self.frameworks.get_mut(&id) {
            Some(fw) => {
                if let Some(old) = fw.connection.take() {
                    effects.push(Effect::Send {
                        conn: old.conn,
                        event: Box::new(events::error("Framework failed over")),
                    });
                    effects.push(Effect::Close { conn: old.conn });
                }
                // Mesos keeps the old user and checkpoint on re-subscription.
                info.user = fw.info.user.clone();
                info.checkpoint = fw.info.checkpoint;
                fw.info = info;
                fw.connection = Some(connection);
                fw.epoch += 1;
                fw.suppressed = subscribe.suppressed_roles.into_iter().collect();
                // Outstanding offers are discarded without RESCIND (reference 3.3).
                let offers: Vec<String> = fw.offers.iter().cloned().collect();
                for offer in offers {
                    self.discard_offer(&offer);
                }
            }
            None => {
                let fw = Framework {
                    id: id.clone(),
                    info,
                    connection: Some(connection),
                    epoch: 0,
                    suppressed: subscribe.suppressed_roles.into_iter().collect(),
                    tasks: HashSet::default(),
                    offers: HashSet::default(),
                    allocated_cpus: 0.0,
                    allocated_mem: 0.0,
                    registered_at: now,
                };
                self.frameworks.insert(id.clone(), fw);
            }
        }
        let subscribed =
            events::subscribed(&id, self.config.heartbeat_interval, self.master_info());
        effects.push(Effect::Send {
            conn,
            event: Box::new(subscribed),
        });
        effects.push(Effect::Send {
            conn,
            event: Box::new(events::heartbeat()),
        });
        self.arm(
            after(now, self.config.heartbeat_interval.max(MIN_INTERVAL)),
            Timer::Heartbeat {
                framework: id,
                conn,
            },
        );
        self.allocate_soon(now);
        (stream_id, effects)
    }

    /// Checks a SUBSCRIBE's FrameworkInfo as the master does after the 200
    /// (reference 3.3): failures become a single ERROR event.
    fn check_framework_info(
        &self,
        info: &FrameworkInfo,
        suppressed: &[String],
    ) -> Result<(), String> {
        let multi = info
            .capabilities
            .iter()
            .any(|c| c.r#type == Some(capability::Type::MultiRole as i32));
        #[allow(deprecated)]
        let role = info.role.as_ref();
        if multi && role.is_some() {
            return Err(
                "'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable"
                    .into(),
            );
        }
        if !multi && !info.roles.is_empty() {
            return Err("'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable".into());
        }
        let roles = roles_of(info);
        let mut seen = HashSet::default();
        for r in &roles {
            if !seen.insert(r) {
                return Err(format!(
                    "'FrameworkInfo.roles' contains duplicate items: {r}"
                ));
            }
            if let Err(why) = super::validate::role(r) {
                return Err(format!(
                    "'FrameworkInfo.roles' contains invalid role: {why}"
                ));
            }
            if let Some(list) = &self.config.role_whitelist {
                if r != "*" && !list.contains(r) {
                    return Err(format!("Role '{r}' is not present in the master's --roles"));
                }
            }
        }
        if let Some(id) = &info.id {
            super::validate::id(&id.value)
                .map_err(|why| format!("'FrameworkInfo.id' is invalid: {why}"))?;
        }
        if let Some(r) = suppressed.iter().find(|r| !roles.contains(r)) {
            return Err(format!(
                "Suppressed role '{r}' is not contained in the list of roles"
            ));
        }
        Ok(())
    }

    /// The `MasterInfo` in SUBSCRIBED and `/state`.
    pub fn master_info(&self) -> v1::MasterInfo {
        let ip = self.config.ip;
        v1::MasterInfo {
            id: self.master_id().to_owned(),
            ip: u32::from_le_bytes(ip.octets()),
            port: u32::from(self.config.port),
            pid: Some(format!("master@{}:{}", ip, self.config.port)),
            hostname: Some(self.config.hostname.clone()),
            version: Some(self.config.version.clone()),
            address: Some(v1::Address {
                hostname: Some(self.config.hostname.clone()),
                ip: Some(ip.to_string()),
                port: i32::from(self.config.port),
            }),
            ..Default::default()
        }
    }

    /// The stream `conn` ended (the client closed it, or the driver could
    /// not keep up with it). The framework is disconnected and its failover
    /// timer starts (reference 3.7).
    pub fn on_disconnected(&mut self, conn: ConnId, now: Instant) -> Vec<Effect> {
        let mut effects = Vec::new();
        if self.executor_disconnected(conn) {
            return effects;
        }
        let Some(fw) = self
            .frameworks
            .values_mut()
            .find(|f| f.connection.as_ref().is_some_and(|c| c.conn == conn))
        else {
            return effects;
        };
        fw.connection = None;
        let id = fw.id.clone();
        let epoch = fw.epoch;
        let timeout = fw
            .info
            .failover_timeout
            .and_then(drover_proto::duration::from_seconds)
            .unwrap_or(Duration::ZERO);
        self.rescind_all_offers_of(&id, &mut effects);
        self.arm(
            crate::deadline::after(now, timeout),
            Timer::Failover {
                framework: id,
                epoch,
            },
        );
        effects
    }

    /// Removes a framework as TEARDOWN or an expired failover timeout do:
    /// offers dropped, tasks killed in the master's books without updates,
    /// the stream closed without an ERROR.
    pub(crate) fn remove_framework(&mut self, id: &str, now: Instant, effects: &mut Vec<Effect>) {
        let Some(mut fw) = self.frameworks.remove(id) else {
            return;
        };
        if let Some(c) = fw.connection.take() {
            effects.push(Effect::Close { conn: c.conn });
        }
        for offer in std::mem::take(&mut fw.offers) {
            if let Some(o) = self.offers.remove(&offer) {
                self.agents[o.agent].available.add(&o.resources);
            }
        }
        let mut statuses = Vec::new();
        for task_id in &fw.tasks {
            let key = (id.to_owned(), task_id.clone());
            if let Some(task) = self.tasks.remove(&key) {
                let agent = &mut self.agents[task.agent];
                agent.tasks.remove(&key);
                if !task.state().is_terminal() {
                    agent.available.add(&task.resources);
                }
                statuses.push(v1::TaskStatus {
                    task_id: task.task_id,
                    state: TaskState::TaskKilled as i32,
                    reason: Some(v1::task_status::Reason::FrameworkRemoved as i32),
                    timestamp: Some(self.unix(now)),
                    ..Default::default()
                });
            }
        }
        // Its executors are shut down; their ends send no updates (reference 4.7).
        for key in self.executors.of_framework(id) {
            self.shutdown_real(&key, now, effects);
        }
        self.allocator.remove_framework(id);
        self.completed.insert(
            id.to_owned(),
            CompletedFramework {
                info: fw.info,
                tasks: statuses,
            },
        );
        self.allocate_soon(now);
    }
}
