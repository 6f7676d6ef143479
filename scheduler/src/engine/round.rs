//! One placement round: every held offer × every pending run (in SLA
//! order), placed a step at a time. As hosts close (no run still to place
//! fits on them) they are launched a chunk at a time, each chunk strictly
//! in this order: (1) its launch intents are recorded, (2) one ACCEPT per
//! agent is sent. Then the runs left over say why they found no host, and
//! the offers not used are declined (or kept while no run waits). A crash
//! between (1) and (2) leaves intents the next subscription reconciles; it
//! can never leave a launched task the store does not know.
//!
//! The round is a state machine the engine drives: [`Round::next`] places
//! until a chunk is ready and hands it out; the engine records it, sends
//! its ACCEPTs and asks for the next, until [`RoundStep::Done`]. Placing a
//! step at a time means a bin-packing wave's first hosts launch while the
//! rest of a 20,000-run round is still being placed (20 ms of placement
//! before the first ACCEPT otherwise). What each host gets is what placing
//! the round whole would give it ([`Placer`]).

use super::offer_book::{HeldHost, OfferBook};
use super::pending_runs::WaitingRun;
use super::reconcile::PendingLaunch;
use super::registry::Registry;
use crate::model::change::LaunchRecord;
use crate::model::demand::TaskDemand;
use crate::model::ids::JobId;
use crate::model::policies::sla_order::SlaKey;
use crate::model::resources::Resources;
use crate::model::run::{may_hand_over, may_launch};
use crate::model::secret::SecretSpec;
use crate::model::spec::{JobType, PlacementStrategy, PodSpec};
use crate::model::state::JobGoal;
use crate::model::time::UnixMillis;
use crate::placement::{self, Assignment, Chain, HostView, Placer, PodOnHost, Unplaced};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Tasks per chunk of a launch round: a commit and a few hundred ACCEPTs,
/// small enough that the master starts launching within tens of ms.
pub const LAUNCH_CHUNK: usize = 2048;

/// Placement steps of a round: a step's closed hosts are launched before
/// the next step is placed.
pub const PLACE_STEP: usize = 1024;

/// A run waiting for an offer.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The run to launch.
    pub launch: PendingLaunch,
    /// What it runs.
    pub pod: Arc<PodSpec>,
    /// Its job's spec as the task carries it to the master
    /// ([`crate::model::spec_label`]), shared by the job's runs.
    pub spec_label: Option<Arc<str>>,
    /// Its job's secrets (of the spec it runs), shared by the job's runs.
    pub secrets: Arc<[SecretSpec]>,
    /// What it takes from an offer (executor included).
    pub demand: Resources,
    /// Its job's SLA priority and creation time (placement order).
    pub sla: SlaKey,
    /// Its job's type (the default placement strategy).
    pub job_type: JobType,
}

impl WaitingRun for Pending {
    fn job(&self) -> &JobId {
        &self.launch.task_id.instance.job
    }

    fn sla(&self) -> SlaKey {
        self.sla
    }
}

/// A round in progress.
pub struct Round {
    started: Instant,
    /// The round's runs; taken out (None) once launched or refused.
    pending: Vec<Option<Pending>>,
    placer: Placer<Vec<TaskDemand>, Arc<Chain>>,
    /// Hosts given runs and not launched yet.
    open: OpenHosts,
    /// Positions of the hosts taken out of the offer book so far.
    taken_before: Vec<usize>,
    /// Hosts taken out and not used.
    unused: Vec<HeldHost>,
    /// Closed hosts being launched: the chunks still to go, and the hosts
    /// taken for them.
    chunks: VecDeque<Vec<(usize, Vec<Assignment>)>>,
    /// (Ordered: the hosts left over are declined in a stable order.)
    held: BTreeMap<usize, HeldHost>,
    /// The refuse filter of the ACCEPTs of the hosts being launched.
    refuse: Duration,
    /// Runs launched.
    launched: usize,
    failed: bool,
    placed_at: Option<Duration>,
}

/// A chunk of hosts to launch.
pub struct Chunk {
    /// The intents to record first.
    pub records: Vec<LaunchRecord>,
    /// Per host with runs recorded for it: its offers, and the runs.
    pub hosts: Vec<(HeldHost, Vec<ChunkRun>)>,
    /// The refuse filter for what the ACCEPTs leave.
    pub refuse: Duration,
    /// Jobs whose placed runs the model refused (their plan is stale).
    pub refused: Vec<JobId>,
}

/// A run of a chunk.
pub struct ChunkRun {
    /// Its place in the round.
    key: usize,
    /// The run.
    pub pending: Pending,
    /// The ports placement gave it: (name, port).
    pub ports: Vec<(String, u32)>,
}

/// How a round ended.
pub struct RoundEnd {
    /// Runs still waiting for a host, in the order taken.
    pub unplaced_runs: Vec<Pending>,
    /// Why unplaced runs found no host (each miss with the index of its
    /// run in `unplaced_runs`), when the round was not cut short.
    pub misses: Vec<(usize, Unplaced)>,
    /// Hosts taken out of the offer book and not used.
    pub unused: Vec<HeldHost>,
    /// A chunk's intents could not be recorded: nothing after it launched.
    pub failed: bool,
    /// Runs launched.
    pub launched: usize,
    /// How long placing took.
    pub placement: Duration,
    /// The round's length.
    pub elapsed: Duration,
}

impl Round {
    /// A round of `pending` (in SLA order) over the hosts of `offers`, with
    /// the runs already live as `registry` has them.
    pub fn start(
        pending: Vec<Pending>,
        offers: &OfferBook,
        registry: &Registry,
        zones: &HashMap<crate::model::ids::AgentId, String>,
        chain: Arc<Chain>,
        started: Instant,
    ) -> Round {
        let demands: Vec<_> = pending
            .iter()
            .enumerate()
            .map(|(key, p)| demand(key, p))
            .collect();
        // The held hosts stay in the book: placement sees their views, and
        // only the hosts it uses are taken out (below).
        let offered: HashSet<&str> = offers.hosts().map(|h| h.agent_id.as_str()).collect();
        let placing: HashSet<&JobId> = pending.iter().map(WaitingRun::job).collect();
        let (mut on_agents, tally) = cluster_view(registry, zones, &offered, &placing);
        let views: Vec<HostView> = offers
            .hosts()
            .map(|h| {
                let pods = on_agents.remove(h.agent_id.as_str()).unwrap_or_default();
                h.view().with_pods(pods)
            })
            .collect();
        let placer = Placer::new(demands, views, tally, chain);
        Round {
            started,
            pending: pending.into_iter().map(Some).collect(),
            placer,
            open: OpenHosts::default(),
            taken_before: Vec::new(),
            unused: Vec::new(),
            chunks: VecDeque::new(),
            held: BTreeMap::new(),
            refuse: Duration::ZERO,
            launched: 0,
            failed: false,
            placed_at: None,
        }
    }

    /// Places until a chunk is ready to launch, and hands it out; None
    /// once the round is over ([`Round::end`]). `refuse`: the refuse
    /// filter for hosts that close while runs still wait (their leftovers
    /// fit no run of the round).
    pub fn next(
        &mut self,
        offers: &mut OfferBook,
        registry: &Registry,
        refuse: Duration,
        now: Instant,
        unix_ms: UnixMillis,
    ) -> Option<Chunk> {
        loop {
            if self.failed {
                return None;
            }
            if let Some(chunk) = self.chunks.pop_front() {
                if let Some(chunk) = self.admit(chunk, registry, unix_ms) {
                    return Some(chunk);
                }
                continue;
            }
            // Hosts taken for the last chunks and given no recorded run.
            self.unused
                .extend(std::mem::take(&mut self.held).into_values());
            if self.placed_at.is_some() {
                return None;
            }
            for a in self.placer.place(PLACE_STEP) {
                self.open.add(a);
            }
            let placer = &self.placer;
            let ready = self.open.take_closed(|host| placer.is_closed(host));
            self.refuse = if self.placer.is_done() {
                self.placed_at = Some(now.saturating_duration_since(self.started));
                // Leftovers of accepted offers come back at once while
                // runs still wait; once nothing waits, the agent may rest
                // for `refuse`.
                if self.placer.placed() == self.pending.len() {
                    refuse
                } else {
                    Duration::ZERO
                }
            } else {
                // No run of this round fits in what is left of a closed
                // host, so its leftovers need not come back at once.
                refuse
            };
            if ready.is_empty() {
                continue;
            }
            let positions: HashSet<usize> = ready.iter().map(|(host, _)| *host).collect();
            self.held = offers.take_at(&positions, &self.taken_before);
            self.taken_before.extend(positions);
            self.taken_before.sort_unstable();
            self.chunks = host_chunks(ready, LAUNCH_CHUNK).into();
        }
    }

    /// The runs of `chunk` the model admits (their job still runs, their
    /// instance has no live run and this is its next run), as intents.
    /// None when the chunk holds no run at all.
    fn admit(
        &mut self,
        chunk: Vec<(usize, Vec<Assignment>)>,
        registry: &Registry,
        now: UnixMillis,
    ) -> Option<Chunk> {
        let mut records = Vec::with_capacity(chunk.iter().map(|(_, a)| a.len()).sum());
        let mut hosts = Vec::new();
        let mut refused = Vec::new();
        for (host, assignments) in chunk {
            let Some(held) = self.held.get(&host) else {
                continue;
            };
            let mut runs = Vec::with_capacity(assignments.len());
            for a in assignments {
                // Placed or refused, it is no longer pending: the job's
                // next plan says what it still needs.
                let Some(p) = self.pending.get_mut(a.key).and_then(Option::take) else {
                    continue;
                };
                let task = &p.launch.task_id;
                let hands_over = p.launch.hands_over;
                let admitted = registry.get(&task.instance.job).is_some_and(|entry| {
                    let history = entry.history(task.instance.instance);
                    entry.job.goal == JobGoal::Running
                        && match hands_over {
                            Some(from) => may_hand_over(history, from, task.run),
                            None => may_launch(history, task.run),
                        }
                });
                if !admitted {
                    refused.push(task.instance.job.clone());
                    continue;
                }
                records.push(LaunchRecord {
                    task_id: task.clone(),
                    agent_id: held.agent_id.clone(),
                    hostname: held.hostname.clone(),
                    spec_version: p.launch.spec_version,
                    ports: a.ports.clone(),
                    at: now,
                    hands_over,
                });
                runs.push(ChunkRun {
                    key: a.key,
                    pending: p,
                    ports: a.ports,
                });
            }
            if runs.is_empty() {
                continue;
            }
            if let Some(held) = self.held.remove(&host) {
                hosts.push((held, runs));
            }
        }
        if records.is_empty() && refused.is_empty() {
            return None;
        }
        self.launched += records.len();
        Some(Chunk {
            records,
            hosts,
            refuse: self.refuse,
            refused,
        })
    }

    /// The chunk handed out last could not be recorded: nothing of it, or
    /// after it, is launched. Its runs stay pending, its hosts go back to
    /// the unused.
    pub fn chunk_failed(&mut self, chunk: Chunk) {
        self.launched -= chunk.records.len();
        self.failed = true;
        for (host, runs) in chunk.hosts {
            for run in runs {
                self.pending[run.key] = Some(run.pending);
            }
            self.unused.push(host);
        }
        self.unused
            .extend(std::mem::take(&mut self.held).into_values());
        self.chunks.clear();
    }

    /// The round is over ([`Round::next`] said so): what is left of it.
    pub fn end(self, now: Instant) -> RoundEnd {
        let placement = self.placer.finish();
        let mut index = vec![None; self.pending.len()];
        let mut unplaced_runs = Vec::new();
        for (key, p) in self.pending.into_iter().enumerate() {
            if let Some(p) = p {
                index[key] = Some(unplaced_runs.len());
                unplaced_runs.push(p);
            }
        }
        let misses = if self.failed {
            Vec::new()
        } else {
            placement
                .unplaced
                .into_iter()
                .filter_map(|miss| Some((index.get(miss.key).copied().flatten()?, miss)))
                .collect()
        };
        RoundEnd {
            unplaced_runs,
            misses,
            unused: self.unused,
            failed: self.failed,
            launched: self.launched,
            placement: self.placed_at.unwrap_or_default(),
            elapsed: now.saturating_duration_since(self.started),
        }
    }
}

/// What host-wide and cluster-wide constraints count, from the live runs
/// in `registry`: the pods on each `offered` agent (no other host is looked
/// at this round) and, for each job `placing` runs, its instances per zone
/// (zone balance compares only a task's own job).
fn cluster_view(
    registry: &Registry,
    zones: &HashMap<crate::model::ids::AgentId, String>,
    offered: &HashSet<&str>,
    placing: &HashSet<&JobId>,
) -> (HashMap<String, Vec<PodOnHost>>, placement::Round) {
    let mut tally = placement::Round::default();
    for zone in zones.values() {
        tally.note_zone(zone);
    }
    let mut on_agents: HashMap<String, Vec<PodOnHost>> = HashMap::new();
    for (instance, run) in registry.live_runs() {
        let Some(agent) = &run.agent else {
            continue;
        };
        if placing.contains(instance.job) {
            if let Some(zone) = zones.get(agent) {
                tally.add(instance.job.as_str(), zone);
            }
        }
        if !offered.contains(agent.as_str()) {
            continue;
        }
        let Some(entry) = registry.get(instance.job) else {
            continue;
        };
        let pod = entry.job.spec.pod_spec(instance.instance);
        on_agents
            .entry(agent.as_str().to_owned())
            .or_default()
            .push(PodOnHost {
                job: instance.job.as_str().to_owned(),
                labels: pod
                    .labels
                    .iter()
                    .map(|l| (l.key.clone(), l.value.clone()))
                    .collect(),
                exclusive: pod.placement_spec().exclusive_host,
            });
    }
    (on_agents, tally)
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
        soft_constraint: p.pod.soft_constraint.clone(),
        placement,
        strategy: placement.strategy.unwrap_or(default_strategy),
        previous_agent: p
            .launch
            .in_place
            .as_ref()
            .map(|agent| agent.as_str().to_owned()),
    }
}

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
    hosts: Vec<(usize, Vec<Assignment>)>,
    slot: HashMap<usize, usize>,
}

impl OpenHosts {
    /// Adds a run to its host (assignments come in run order).
    fn add(&mut self, a: &Assignment) {
        let hosts = &mut self.hosts;
        let i = *self.slot.entry(a.host).or_insert_with(|| {
            hosts.push((a.host, Vec::new()));
            hosts.len() - 1
        });
        self.hosts[i].1.push(a.clone());
    }

    /// Takes out the hosts `closed` says are final, in order.
    fn take_closed(&mut self, closed: impl Fn(usize) -> bool) -> Vec<(usize, Vec<Assignment>)> {
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
fn host_chunks<T>(by_host: Vec<(usize, Vec<T>)>, size: usize) -> Vec<Vec<(usize, Vec<T>)>> {
    let mut chunks = Vec::new();
    let mut chunk = Vec::new();
    let mut tasks = 0;
    for (host, assignments) in by_host {
        tasks += assignments.len();
        chunk.push((host, assignments));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_keep_hosts_whole_and_close_once_big_enough() {
        let by_host: Vec<(usize, Vec<u8>)> =
            vec![(0, vec![0; 3]), (1, vec![0; 3]), (4, vec![0; 1])];
        let sizes: Vec<Vec<usize>> = host_chunks(by_host.clone(), 4)
            .iter()
            .map(|c| c.iter().map(|(h, _)| *h).collect())
            .collect();
        assert_eq!(sizes, vec![vec![0, 1], vec![4]]);
        assert_eq!(host_chunks(by_host, 100).len(), 1);
        assert!(host_chunks(Vec::<(usize, Vec<u8>)>::new(), 4).is_empty());
    }

    fn assigned(key: usize, host: usize) -> Assignment {
        Assignment {
            key,
            host,
            ports: Vec::new(),
        }
    }

    fn hosts_and_runs(hosts: &[(usize, Vec<Assignment>)]) -> Vec<(usize, Vec<usize>)> {
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
