//! Subscriptions as inputs to the master: SUBSCRIBE (a new framework, a
//! re-subscription or a failover of an old stream), a stream that ends
//! (the failover timer starts), and the removal of a framework (TEARDOWN or
//! an expired failover timeout, reference 3.7), which every part it holds
//! something in must release.

use std::time::Instant;

use drover_proto::v1::scheduler::call;
use drover_proto::v1::TaskState;
use drover_proto::TaskStateExt;

use super::events;
use super::machine::{Effect, Master};
use super::tasks::StatusMark;
use super::timers::{Timer, MIN_INTERVAL};
use crate::deadline::after;
use crate::ids::ConnId;

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
        let mut fx = Vec::new();
        let subscribed = self.frameworks.subscribe(
            conn,
            &stream_id,
            subscribe,
            self.config.role_whitelist.as_deref(),
            &mut self.ids,
            now,
        );
        let subscribed = match subscribed {
            Ok(s) => s,
            Err(message) => {
                fx.push(Effect::Send {
                    conn,
                    event: Box::new(events::error(&message)),
                });
                fx.push(Effect::Close { conn });
                return (stream_id, fx);
            }
        };
        if let Some(old) = subscribed.replaced {
            fx.push(Effect::Send {
                conn: old,
                event: Box::new(events::error("Framework failed over")),
            });
            fx.push(Effect::Close { conn: old });
        }
        let id = subscribed.framework;
        if subscribed.resubscribed {
            // Outstanding offers are discarded without RESCIND (reference 3.3).
            for offer in self.offers.of_framework(&id) {
                self.offers.discard(&offer, &mut self.fleet);
            }
            // So are its inverse offers; the next cycle sends new ones.
            self.maintenance.forget_framework(&id);
        } else {
            self.offers.add_framework(&id);
        }
        let heartbeat = self.config.heartbeat_interval;
        fx.push(Effect::Send {
            conn,
            event: Box::new(events::subscribed(&id, heartbeat, self.master_info())),
        });
        fx.push(Effect::Send {
            conn,
            event: Box::new(events::heartbeat()),
        });
        self.timers.arm(
            after(now, heartbeat.max(MIN_INTERVAL)),
            Timer::Heartbeat {
                framework: id.clone(),
                conn,
            },
        );
        self.resend_after_takeover(&id, now, &mut fx);
        self.timers.allocate_soon(now);
        (stream_id, fx)
    }

    /// The stream `conn` ended (the client closed it, or the driver could
    /// not keep up with it). An executor's stream only disconnects it; a
    /// framework's offers are taken back and its failover timer starts
    /// (reference 3.7).
    pub fn on_disconnected(&mut self, conn: ConnId, now: Instant) -> Vec<Effect> {
        let mut fx = Vec::new();
        if self.executors.on_disconnected(conn).is_some() {
            return fx;
        }
        let Some(gone) = self.frameworks.disconnect(conn) else {
            return fx;
        };
        // The framework has no stream now, so no RESCIND reaches it.
        for offer in self.offers.of_framework(&gone.framework) {
            self.rescind_offer(&offer, &mut fx);
        }
        self.maintenance.forget_framework(&gone.framework);
        self.timers.arm(
            after(now, gone.failover_timeout),
            Timer::Failover {
                framework: gone.framework,
                epoch: gone.epoch,
            },
        );
        fx
    }

    /// Removes a framework as TEARDOWN or an expired failover timeout do:
    /// offers dropped, tasks killed in the master's books without updates,
    /// executors shut down, the stream closed without an ERROR.
    pub(super) fn remove_framework(&mut self, id: &str, now: Instant, fx: &mut Vec<Effect>) {
        let Some(fw) = self.frameworks.remove(id) else {
            return;
        };
        if let Some(c) = fw.connection {
            fx.push(Effect::Close { conn: c.conn });
        }
        self.offers.remove_framework(id, &mut self.fleet);
        self.maintenance.forget_framework(id);
        let timestamp = self.unix(now);
        for (key, mut removed) in self.tasks.remove_framework(id) {
            self.updates.forget(&key);
            let task = &mut removed.task;
            if !task.state().is_terminal() {
                self.fleet.give_back(task.agent, &task.resources);
                // Killed in the master's books (no update is sent): its
                // history says so.
                task.state = TaskState::TaskKilled;
                task.statuses.push(StatusMark {
                    state: TaskState::TaskKilled,
                    timestamp,
                    healthy: None,
                });
            }
            self.record_completed(id, removed);
        }
        // Its executors are shut down; their ends send no updates (reference 4.7).
        for key in self.executors.of_framework(id) {
            self.shutdown_real(&key, now, fx);
        }
        let history = self.history.take(id);
        let keep = self.config.history.frameworks;
        self.frameworks
            .complete(id.to_owned(), fw.info, history, keep);
        self.timers.allocate_soon(now);
    }
}
