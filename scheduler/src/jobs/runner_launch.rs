//! One placement round of the runner: every held offer × every pending run,
//! then, strictly in this order, (1) record the launch intents, (2) ACCEPT
//! per agent, (3) decline what was not used. A crash between (1) and (2)
//! leaves intents the next subscription reconciles; it can never leave a
//! launched task the store does not know.

use super::{now_millis, Runner};
use crate::jobs::launch;
use crate::mesos::calls;
use crate::placement::{self, TaskDemand};
use crate::store::LaunchIntent;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

impl Runner {
    pub(super) async fn place_and_launch(&mut self) {
        if !self.subscribed {
            self.offers.clear();
            return;
        }
        let held = self.offers.take_all();
        if held.is_empty() {
            return;
        }
        let pending: Vec<_> = self.pending.values().cloned().collect();
        let demands: Vec<_> = pending
            .iter()
            .enumerate()
            .map(|(key, p)| TaskDemand {
                key,
                resources: p.demand,
            })
            .collect();
        let views = held.iter().map(|h| h.view()).collect();
        let placement = placement::place(&demands, views, &placement::default_chain());
        if !placement.unplaced.is_empty() {
            tracing::debug!(
                unplaced = placement.unplaced.len(),
                "runs without a fitting offer this round"
            );
        }

        // 1. Intent before action.
        let intents: Vec<_> = placement
            .assignments
            .iter()
            .map(|a| {
                let p = &pending[a.key];
                LaunchIntent {
                    task_id: p.launch.task_id.clone(),
                    agent_id: held[a.host].agent_id.clone(),
                    hostname: held[a.host].hostname.clone(),
                    spec_version: p.launch.spec_version,
                }
            })
            .collect();
        let recorded = if intents.is_empty() {
            Vec::new()
        } else {
            match tokio::task::block_in_place(|| {
                self.store.record_launch_intents(&intents, now_millis())
            }) {
                Ok(recorded) => recorded,
                Err(e) => {
                    // Nothing recorded, so nothing may be launched.
                    tracing::error!(error = %e, "cannot record launch intents; declining");
                    let all = held.into_iter().flat_map(|h| h.offer_ids).collect();
                    self.decline(all, Duration::ZERO).await;
                    return;
                }
            }
        };

        // 2. ACCEPT, one call per agent, with every task recorded for it.
        let mut per_host: BTreeMap<usize, Vec<_>> = BTreeMap::new();
        for (assignment, ok) in placement.assignments.iter().zip(&recorded) {
            let p = &pending[assignment.key];
            // Placed or refused by the store, it is no longer pending: the
            // job's next plan says what it still needs.
            self.pending.remove(&p.launch.task_id);
            self.enqueue(
                &p.launch.task_id.instance.job,
                self.config.engine.launch_timeout,
            );
            if !ok {
                self.enqueue(&p.launch.task_id.instance.job, Duration::ZERO);
                continue;
            }
            let host = &held[assignment.host];
            let info = launch::task_info(
                &p.launch.task_id,
                &p.pod,
                &host.agent_id,
                host.allocation_role.as_deref(),
                &self.config.executor,
            );
            per_host.entry(assignment.host).or_default().push(info);
        }
        // Leftovers of accepted offers come back at once while runs still
        // wait; once nothing waits, the agent may rest for `refuse`.
        let accept_refuse = if self.pending.is_empty() {
            self.config.refuse
        } else {
            Duration::ZERO
        };
        let mut unused = Vec::new();
        for (index, host) in held.into_iter().enumerate() {
            match per_host.remove(&index) {
                Some(tasks) => {
                    self.metrics
                        .launches
                        .fetch_add(tasks.len() as u64, Ordering::Relaxed);
                    tracing::debug!(agent = %host.agent_id, tasks = tasks.len(), "accepting");
                    self.driver
                        .send(calls::accept(host.offer_ids, tasks, accept_refuse))
                        .await;
                }
                None => unused.extend(host.offer_ids),
            }
        }

        // 3. Decline the rest.
        let refuse = if self.pending.is_empty() {
            self.config.refuse
        } else {
            self.config.pending_refuse
        };
        self.decline(unused, refuse).await;
        self.update_offer_interest().await;
    }
}
