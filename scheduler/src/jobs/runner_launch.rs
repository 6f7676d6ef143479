//! One placement round of the runner: every held offer × every pending run
//! (in SLA order), placed a step at a time; as hosts close (no run still
//! to place fits on them), a chunk of them at a time and strictly in this
//! order, (1) record the launch intents, (2) ACCEPT per agent; then (3)
//! record why the runs left over found no host, and decline (or keep, while
//! no run waits) the offers not used. A crash between (1) and (2) leaves
//! intents the next subscription reconciles; it can never leave a launched
//! task the store does not know.

use super::{now_millis, Pending, Runner};
use crate::jobs::launch;
use crate::jobs::offer_book::HeldHost;
use crate::mesos::calls;
use crate::model::demand::TaskDemand;
use crate::model::ids::{JobId, TaskId};
use crate::model::spec::{JobSpec, JobType, PlacementStrategy};
use crate::placement::{self, PodOnHost, Round, Unplaced};
use crate::store::{LaunchIntent, PendingInfo};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

impl Runner {
    pub(super) async fn place_and_launch(&mut self) {
        if !self.subscribed {
            self.offers.clear();
            return;
        }
        if self.offers.is_empty() {
            return;
        }
        if self.pending.is_empty() {
            // Nothing to place: no need to read what runs where (a pass
            // over every live run, 150 ms at 100,000).
            self.keep_or_decline(Vec::new()).await;
            return;
        }
        let started = std::time::Instant::now();
        // Taken out of the map (not cloned: a PodSpec each); what this round
        // does not consume goes back before anything reads the map again.
        let pending = self.pending.take_in_sla_order();
        let demands: Vec<_> = pending
            .iter()
            .enumerate()
            .map(|(key, p)| demand(key, p))
            .collect();
        // The held hosts stay in the book: placement sees their views, and
        // only the hosts it uses are taken out (below).
        let offered: HashSet<&str> = self.offers.hosts().map(|h| h.agent_id.as_str()).collect();
        let placing: HashSet<&str> = pending
            .iter()
            .map(|p| p.launch.task_id.instance.job.as_str())
            .collect();
        let (mut on_agents, round) = self.cluster_view(&offered, &placing);
        let views = self
            .offers
            .hosts()
            .map(|h| {
                let pods = on_agents.remove(&h.agent_id).unwrap_or_default();
                h.view().with_pods(pods)
            })
            .collect();
        let chain = placement::default_chain();
        let mut placer = placement::Placer::new(&demands, views, round, &chain);
        let mut consumed = vec![false; pending.len()];
        // Hosts given runs and not launched yet, in the order of their
        // first (highest-SLA) run, each with its runs in order.
        let mut open = OpenHosts::default();
        let mut taken_before: Vec<usize> = Vec::new();
        let mut unused = Vec::new();
        let (mut placed, mut failed) = (0, false);
        let mut placed_at = None;
        // The round is placed a step at a time, and the hosts no run still
        // to be placed can use are launched at once: a bin-packing wave
        // fills host after host, so its first tasks start while the rest
        // of a 20,000-run round is placed (20 ms of placement before the
        // first ACCEPT otherwise). What each host gets is what placing the
        // round whole would give it (`Placer`).
        while !failed && placed_at.is_none() {
            for a in placer.place(PLACE_STEP) {
                open.add(a);
            }
            let ready = open.take_closed(|host| placer.is_closed(host));
            let refuse = if placer.is_done() {
                placed_at = Some(started.elapsed());
                // Leftovers of accepted offers come back at once while
                // runs still wait; once nothing waits, the agent may rest
                // for `refuse`.
                if placer.placed() == pending.len() {
                    self.config.refuse
                } else {
                    Duration::ZERO
                }
            } else {
                // No run of this round fits in what is left of a closed
                // host, so its leftovers need not come back at once.
                self.config.refuse
            };
            if ready.is_empty() {
                continue;
            }
            match self
                .launch_hosts(&ready, &pending, &mut consumed, &mut taken_before, refuse)
                .await
            {
                Ok((launched, left)) => {
                    placed += launched;
                    unused.extend(left);
                }
                Err(left) => {
                    unused.extend(left);
                    failed = true;
                }
            }
        }
        let placement = placer.finish();
        if !placement.unplaced.is_empty() {
            tracing::debug!(
                unplaced = placement.unplaced.len(),
                "runs without a fitting offer this round"
            );
        }
        if !failed {
            // Say why the runs left over wait (before they go back to
            // the map, moved rather than cloned).
            self.record_unplaced(&pending, &placement.unplaced);
        }
        let round_size = pending.len();
        for (p, used) in pending.into_iter().zip(consumed) {
            if !used {
                self.pending.put_back(p);
            }
        }
        self.pending.forget_empty_jobs();
        if failed {
            let mut ids = self.offers.take_offer_ids();
            ids.extend(unused.into_iter().flat_map(|h: HeldHost| h.offer_ids));
            self.decline(ids, Duration::ZERO).await;
            return;
        }

        self.keep_or_decline(unused).await;
        tracing::debug!(
            pending = round_size,
            placed,
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            placement_ms = placed_at.unwrap_or_default().as_secs_f64() * 1e3,
            "placement round"
        );
    }

    /// Launches `hosts` (each with its runs, in launch order): a chunk of
    /// hosts at a time and strictly in this order, (1) record the launch
    /// intents, (2) ACCEPT per agent. Takes the hosts out of the offer book
    /// (`taken_before`: the positions taken earlier this round). Returns
    /// how many runs were launched and the hosts taken but not used; Err
    /// (with the hosts not used) if the store failed, and then nothing of
    /// that chunk or after it was launched.
    async fn launch_hosts(
        &mut self,
        hosts: &[(usize, Vec<placement::Assignment>)],
        pending: &[Pending],
        consumed: &mut [bool],
        taken_before: &mut Vec<usize>,
        refuse: Duration,
    ) -> Result<(usize, Vec<HeldHost>), Vec<HeldHost>> {
        let positions: HashSet<usize> = hosts.iter().map(|(host, _)| *host).collect();
        let mut held = self.offers.take_at(&positions, taken_before);
        taken_before.extend(positions);
        taken_before.sort_unstable();
        let mut placed = 0;
        // A chunk at a time, so that the master is launching the first
        // tasks while the intents of the last are still being written.
        for chunk in host_chunks(hosts, LAUNCH_CHUNK) {
            // 1. Intent before action. (The list is sized first: grown by
            // doubling, it was 15% of a 20,000-task launch's path, most of
            // it faulting in fresh pages.)
            let mut intents = Vec::with_capacity(chunk.iter().map(|(_, a)| a.len()).sum());
            for (host, assignments) in &chunk {
                let h = &held[*host];
                intents.extend(assignments.iter().map(|a| {
                    let p = &pending[a.key];
                    LaunchIntent {
                        task_id: p.launch.task_id.clone(),
                        agent_id: h.agent_id.clone(),
                        hostname: h.hostname.clone(),
                        spec_version: p.launch.spec_version,
                        ports: a.ports.clone(),
                    }
                }));
            }
            let recorded = match tokio::task::block_in_place(|| {
                self.store.record_launch_intents(&intents, now_millis())
            }) {
                Ok(recorded) => recorded,
                Err(e) => {
                    // Nothing of this chunk recorded, so nothing of it (or
                    // of the chunks after it) is launched: those runs stay
                    // pending and their offers are declined.
                    tracing::error!(error = %e, "cannot record launch intents; declining");
                    return Err(held.into_values().collect());
                }
            };
            placed += recorded.len();
            // 2. ACCEPT, one call per agent, with every task recorded for it.
            let mut recorded = recorded.into_iter();
            for (host, assignments) in chunk {
                let mut tasks = Vec::with_capacity(assignments.len());
                for a in assignments {
                    let ok = recorded.next().unwrap_or(false);
                    let p = &pending[a.key];
                    // Placed or refused by the store, it is no longer
                    // pending: the job's next plan says what it still needs.
                    consumed[a.key] = true;
                    self.pending_reasons.remove(&p.launch.task_id);
                    let job = &p.launch.task_id.instance.job;
                    if !ok {
                        self.enqueue(job, Duration::ZERO);
                        continue;
                    }
                    self.enqueue(job, self.config.engine.launch_timeout);
                    let h = &held[host];
                    tasks.push(launch::task_info(
                        &p.launch.task_id,
                        &p.pod,
                        &h.agent_id,
                        h.allocation_role.as_deref(),
                        &a.ports,
                        &self.config.executor,
                    ));
                }
                if tasks.is_empty() {
                    continue;
                }
                let Some(h) = held.remove(host) else {
                    continue;
                };
                self.metrics
                    .launches
                    .fetch_add(tasks.len() as u64, Ordering::Relaxed);
                tracing::debug!(agent = %h.agent_id, tasks = tasks.len(), "accepting");
                self.driver
                    .send(calls::accept(h.offer_ids, tasks, refuse))
                    .await;
            }
        }
        // Hosts placement used but no ACCEPT went to (their runs were not
        // recorded).
        Ok((placed, held.into_values().collect()))
    }

    /// Offers a round did not use (those still held, and `taken` ones it
    /// took out and did not use): declined; or, when no run waits, kept
    /// for a while (`idle_offer_hold`), so that the next job launches at
    /// once. Then SUPPRESS or REVIVE as the pending runs say.
    async fn keep_or_decline(&mut self, taken: Vec<HeldHost>) {
        for host in taken {
            self.offers.put_back(host);
        }
        if self.pending.is_empty() && !self.config.idle_offer_hold.is_zero() {
            if self.idle_until.is_none() && !self.offers.is_empty() {
                self.idle_until = Some(std::time::Instant::now() + self.config.idle_offer_hold);
            }
        } else {
            let refuse = if self.pending.is_empty() {
                self.config.refuse
            } else {
                self.config.pending_refuse
            };
            let ids = self.offers.take_offer_ids();
            self.decline(ids, refuse).await;
        }
        self.update_offer_interest().await;
    }

    /// The idle hold is over: declines the kept offers if still no run
    /// needs them (if one does, a placement round is due and uses them).
    pub(super) async fn decline_idle_offers(&mut self) {
        if !self.pending.is_empty() {
            return;
        }
        let ids = self.offers.take_offer_ids();
        self.decline(ids, self.config.refuse).await;
    }

    /// What host-wide and cluster-wide constraints count, from the store's
    /// live runs: the pods on each `offered` agent (no other host is looked
    /// at this round) and, for each job `placing` runs, its instances per
    /// zone (zone balance compares only a task's own job).
    fn cluster_view(
        &self,
        offered: &HashSet<&str>,
        placing: &HashSet<&str>,
    ) -> (HashMap<String, Vec<PodOnHost>>, Round) {
        let mut round = Round::default();
        round.zones.extend(self.agent_zones.values().cloned());
        let mut on_agents: HashMap<String, Vec<PodOnHost>> = HashMap::new();
        let mut specs: HashMap<String, Option<JobSpec>> = HashMap::new();
        let mut visit = |job: &str, instance: u32, agent: &str| {
            if placing.contains(job) {
                if let Some(zone) = self.agent_zones.get(agent) {
                    round.add(job, zone);
                }
            }
            if !offered.contains(agent) {
                return;
            }
            if !specs.contains_key(job) {
                let spec = JobId::parse(job)
                    .ok()
                    .and_then(|id| self.store.job(&id).ok().flatten())
                    .map(|j| j.spec);
                specs.insert(job.to_owned(), spec);
            }
            let Some(Some(spec)) = specs.get(job) else {
                return;
            };
            let pod = spec.pod_spec(instance);
            on_agents
                .entry(agent.to_owned())
                .or_default()
                .push(PodOnHost {
                    job: job.to_owned(),
                    labels: pod
                        .labels
                        .iter()
                        .map(|l| (l.key.clone(), l.value.clone()))
                        .collect(),
                    exclusive: pod.placement_spec().exclusive_host,
                });
        };
        if let Err(e) = tokio::task::block_in_place(|| self.store.visit_live_agents(&mut visit)) {
            // Placement still runs; cross-task constraints then see only
            // this round's assignments.
            tracing::error!(error = %e, "cannot list live runs for placement");
            return (HashMap::new(), round);
        }
        (on_agents, round)
    }

    /// Records why unplaced runs (this round's `pending`, out of the map
    /// until the round ends) wait, when that changed since last time.
    fn record_unplaced(&mut self, pending: &[Pending], unplaced: &[Unplaced]) {
        let mut changed = Vec::new();
        for miss in unplaced {
            let task: &TaskId = &pending[miss.key].launch.task_id;
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

/// Tasks per chunk of a launch round: a commit and a few hundred ACCEPTs,
/// small enough that the master starts launching within tens of ms.
const LAUNCH_CHUNK: usize = 2048;

/// Placement steps of a round: a step's closed hosts are launched before
/// the next step is placed.
const PLACE_STEP: usize = 1024;

/// The hosts given runs this round and not launched yet, each with its
/// runs, hosts in the order of their first (highest-SLA) run, so the most
/// urgent runs launch first. Bin packing fills one host before the next
/// (`placement::place`), so consecutive hosts then hold consecutive runs,
/// and a chunk's intents, and later its tasks' status updates, touch a few
/// neighbouring pages of the runs table. (Hosts in index order, each
/// holding runs from all over the round, made a 2,048-run chunk of a
/// 90,000-run round write 2,000 pages.)
#[derive(Debug, Default)]
struct OpenHosts {
    hosts: Vec<(usize, Vec<placement::Assignment>)>,
    slot: HashMap<usize, usize>,
}

impl OpenHosts {
    /// Adds a run to its host (assignments come in run order).
    fn add(&mut self, a: &placement::Assignment) {
        let hosts = &mut self.hosts;
        let i = *self.slot.entry(a.host).or_insert_with(|| {
            hosts.push((a.host, Vec::new()));
            hosts.len() - 1
        });
        self.hosts[i].1.push(a.clone());
    }

    /// Takes out the hosts `closed` says are final, in order.
    fn take_closed(
        &mut self,
        closed: impl Fn(usize) -> bool,
    ) -> Vec<(usize, Vec<placement::Assignment>)> {
        let (ready, open): (Vec<_>, Vec<_>) = std::mem::take(&mut self.hosts)
            .into_iter()
            .partition(|(host, _)| closed(*host));
        self.hosts = open;
        self.slot = self
            .hosts
            .iter()
            .enumerate()
            .map(|(i, (host, _))| (*host, i))
            .collect();
        ready
    }
}

/// Consecutive hosts, each chunk with about `size` tasks (whole hosts).
fn host_chunks<T>(by_host: &[(usize, Vec<T>)], size: usize) -> Vec<Vec<(&usize, &Vec<T>)>> {
    let mut chunks = Vec::new();
    let mut chunk = Vec::new();
    let mut tasks = 0;
    for (host, assignments) in by_host {
        chunk.push((host, assignments));
        tasks += assignments.len();
        if tasks >= size {
            chunks.push(std::mem::take(&mut chunk));
            tasks = 0;
        }
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    chunks
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_keep_hosts_whole_and_close_once_big_enough() {
        let by_host: Vec<(usize, Vec<u8>)> =
            vec![(0, vec![0; 3]), (1, vec![0; 3]), (4, vec![0; 1])];
        let sizes: Vec<Vec<usize>> = host_chunks(&by_host, 4)
            .iter()
            .map(|c| c.iter().map(|(h, _)| **h).collect())
            .collect();
        assert_eq!(sizes, vec![vec![0, 1], vec![4]]);
        assert_eq!(host_chunks(&by_host, 100).len(), 1);
        assert!(host_chunks(&Vec::<(usize, Vec<u8>)>::new(), 4).is_empty());
    }

    fn assigned(key: usize, host: usize) -> placement::Assignment {
        placement::Assignment {
            key,
            host,
            ports: Vec::new(),
        }
    }

    fn hosts_and_runs(hosts: &[(usize, Vec<placement::Assignment>)]) -> Vec<(usize, Vec<usize>)> {
        hosts
            .iter()
            .map(|(host, runs)| (*host, runs.iter().map(|a| a.key).collect()))
            .collect()
    }

    #[test]
    fn hosts_launch_in_the_order_of_their_most_urgent_run_once_closed() {
        let mut open = OpenHosts::default();
        // Host 7 holds runs 0 and 3, host 2 runs 1 and 4, host 5 run 2.
        for (key, host) in [(0, 7), (1, 2), (2, 5), (3, 7)] {
            open.add(&assigned(key, host));
        }
        let ready = open.take_closed(|host| host == 7 || host == 5);
        assert_eq!(hosts_and_runs(&ready), vec![(7, vec![0, 3]), (5, vec![2])]);
        open.add(&assigned(4, 2));
        open.add(&assigned(5, 9));
        let rest = open.take_closed(|_| true);
        assert_eq!(hosts_and_runs(&rest), vec![(2, vec![1, 4]), (9, vec![5])]);
        assert!(open.take_closed(|_| true).is_empty());
    }
}
