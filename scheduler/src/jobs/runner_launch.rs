//! One placement round of the runner: every held offer × every pending run
//! (in SLA order), then, strictly in this order, (1) record the launch
//! intents, (2) ACCEPT per agent, (3) decline what was not used, (4) record
//! why the runs left over found no host. A crash between (1) and (2)
//! leaves intents the next subscription reconciles; it can never leave a
//! launched task the store does not know.

use super::{now_millis, Pending, Runner};
use crate::ids::{JobId, TaskId};
use crate::jobs::launch;
use crate::jobs::policies::sla_order::{self, PendingKey};
use crate::jobs::spec::{JobSpec, JobType, PlacementStrategy};
use crate::mesos::calls;
use crate::placement::{self, PodOnHost, Round, TaskDemand, Unplaced};
use crate::store::{LaunchIntent, PendingInfo};
use std::collections::{BTreeMap, HashMap};
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
        let pending = self.pending_in_sla_order();
        let demands: Vec<_> = pending
            .iter()
            .enumerate()
            .map(|(key, p)| demand(key, p))
            .collect();
        let (mut on_agents, round) = self.cluster_view();
        let views = held
            .iter()
            .map(|h| {
                let pods = on_agents.remove(&h.agent_id).unwrap_or_default();
                h.view().with_pods(pods)
            })
            .collect();
        let placement = placement::place(&demands, views, round, &placement::default_chain());
        self.heap.on_work(
            placement.assignments.len() as u64,
            std::time::Instant::now(),
        );
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
                    ports: a.ports.clone(),
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
            self.pending_reasons.remove(&p.launch.task_id);
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
                &assignment.ports,
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

        // 4. Say why the rest wait.
        self.record_unplaced(&pending, &placement.unplaced);
    }

    /// The pending runs, highest SLA priority and oldest job first.
    fn pending_in_sla_order(&self) -> Vec<Pending> {
        let mut keys: Vec<_> = self
            .pending
            .values()
            .map(|p| PendingKey {
                priority: p.priority,
                job_created_at: p.job_created_at,
                task_id: p.launch.task_id.clone(),
            })
            .collect();
        sla_order::order(&mut keys);
        keys.iter()
            .filter_map(|k| self.pending.get(&k.task_id).cloned())
            .collect()
    }

    /// The pods on each agent (live runs) and the zone tally, from the
    /// store: what host-wide and cluster-wide constraints count.
    fn cluster_view(&self) -> (HashMap<String, Vec<PodOnHost>>, Round) {
        let mut round = Round::default();
        round.zones.extend(self.agent_zones.values().cloned());
        let mut on_agents: HashMap<String, Vec<PodOnHost>> = HashMap::new();
        let live = match tokio::task::block_in_place(|| self.store.live_runs()) {
            Ok(live) => live,
            Err(e) => {
                // Placement still runs; cross-task constraints then see only
                // this round's assignments.
                tracing::error!(error = %e, "cannot list live runs for placement");
                return (on_agents, round);
            }
        };
        let mut specs: HashMap<JobId, Option<JobSpec>> = HashMap::new();
        for run in live {
            let job = &run.task_id.instance.job;
            if !specs.contains_key(job) {
                let spec = tokio::task::block_in_place(|| self.store.job(job))
                    .ok()
                    .flatten()
                    .map(|j| j.spec);
                specs.insert(job.clone(), spec);
            }
            let Some(Some(spec)) = specs.get(job) else {
                continue;
            };
            let Some(agent) = run.agent_id else { continue };
            let pod = spec.pod_spec(run.task_id.instance.instance);
            if let Some(zone) = self.agent_zones.get(&agent) {
                round.add(job.as_str(), zone);
            }
            on_agents.entry(agent).or_default().push(PodOnHost {
                job: job.as_str().to_owned(),
                labels: pod
                    .labels
                    .iter()
                    .map(|l| (l.key.clone(), l.value.clone()))
                    .collect(),
                exclusive: pod.placement_spec().exclusive_host,
            });
        }
        (on_agents, round)
    }

    /// Records why unplaced runs wait, when that changed since last time.
    fn record_unplaced(&mut self, pending: &[Pending], unplaced: &[Unplaced]) {
        let mut changed = Vec::new();
        for miss in unplaced {
            let task: &TaskId = &pending[miss.key].launch.task_id;
            if !self.pending.contains_key(task) {
                continue;
            }
            let reason = miss.summary();
            if self.pending_reasons.get(task) == Some(&reason) {
                continue;
            }
            let metrics = serde_json::json!({
                "nodes_evaluated": miss.hosts_evaluated,
                "nodes_filtered": miss.per_filter(),
                "reasons": miss.rejections.iter().map(|(r, n)| {
                    serde_json::json!({"filter": r.filter, "reason": r.reason, "nodes": n})
                }).collect::<Vec<_>>(),
            });
            self.pending_reasons.insert(task.clone(), reason.clone());
            changed.push((
                task.instance.clone(),
                Some(PendingInfo {
                    reason,
                    metrics: metrics.to_string(),
                }),
            ));
        }
        if changed.is_empty() {
            return;
        }
        let now = now_millis();
        if let Err(e) =
            tokio::task::block_in_place(|| self.store.record_pending_reasons(&changed, now))
        {
            tracing::warn!(error = %e, "cannot record why runs are pending");
        }
    }
}

/// The placement demand of a pending run.
fn demand(key: usize, p: &Pending) -> TaskDemand {
    let placement = p.pod.placement_spec();
    let default_strategy = match p.job_type {
        JobType::Service => PlacementStrategy::Spread,
        JobType::Batch => PlacementStrategy::BinPack,
    };
    TaskDemand {
        key,
        job: p.launch.task_id.instance.job.as_str().to_owned(),
        resources: p.demand,
        ports: p.pod.ports().to_vec(),
        labels: p
            .pod
            .labels
            .iter()
            .map(|l| (l.key.clone(), l.value.clone()))
            .collect(),
        constraint: p.pod.constraint.clone(),
        placement,
        strategy: placement.strategy.unwrap_or(default_strategy),
    }
}
