//! The engine's placement rounds: when the offer hold ends, a round takes
//! every waiting run, each closed chunk of hosts is stored (intents) and
//! then accepted, the runs left over say why they wait, and the offers not
//! used are kept or declined. What a round places is [`super::round`]'s;
//! this drives it through the engine's parts.

use super::offers;
use super::pools_admission::{self, Admission};
use super::round::{Chunk, RoundEnd};
use super::{Action, Awaiting, Call, Engine, LaunchTask, Now};
use crate::model::change::{Change, LaunchRecord, PodEvent};
use crate::model::ids::TaskId;
use crate::model::job::Revision;
use crate::model::run::Run;
use crate::store::StoreError;
use std::time::Duration;

impl Engine {
    pub(super) fn start_round(&mut self, now: Now) -> Vec<Action> {
        if !self.subscription.subscribed {
            self.offers.clear();
            return Vec::new();
        }
        if self.offers.is_empty() {
            return Vec::new();
        }
        if !self.launches.runs_wait() {
            // Nothing to place: no need to look at what runs where.
            let mut actions: Vec<Action> = self
                .offers
                .keep_or_decline(Vec::new(), false, now.instant, &self.config)
                .map(Action::Send)
                .into_iter()
                .collect();
            actions.extend(self.interest());
            return actions;
        }
        let pools = &self.pools;
        let registry = &self.registry;
        let overhead = &self.config.executor_overhead;
        let free = self.offers.book.free();
        let known = self.cluster.capacity();
        let standings = self.launches.start_round(
            &self.offers.book,
            &self.registry,
            &self.cluster.zones,
            now.instant,
            |pending| {
                if !pools_admission::pools_matter(pools) {
                    return Admission {
                        admitted: pending,
                        ..Admission::default()
                    };
                }
                let usage = super::pool_usage::usage(registry, pools, overhead);
                pools_admission::admit(pools, &usage, pending, &free, &known, |p| {
                    pools_admission::job_pool(pools, registry, &p.launch.task_id.instance.job)
                })
            },
        );
        if !standings.is_empty() {
            self.pool_standings = Some(standings);
        }
        self.continue_round(now)
    }

    /// Places until the next chunk is ready (then hands its intents out
    /// to be stored), or ends the round.
    fn continue_round(&mut self, now: Now) -> Vec<Action> {
        loop {
            let Some(round) = self.launches.round.as_mut() else {
                return Vec::new();
            };
            let next = round.next(
                &mut self.offers.book,
                &self.registry,
                self.config.refuse,
                now.instant,
                now.unix_ms,
            );
            let Some(chunk) = next else {
                let Some(round) = self.launches.round.take() else {
                    return Vec::new();
                };
                return self.end_round(round.end(now.instant), now);
            };
            if chunk.records.is_empty() {
                // Every run of the chunk was refused: their plans are stale.
                for job in &chunk.refused {
                    self.enqueue(job, Duration::ZERO, now.instant);
                }
                continue;
            }
            let change = Change {
                launches: chunk.records.clone(),
                events: self.handover_events(&chunk.records, now.unix_ms),
                ..Change::default()
            };
            return self.persist(change, Awaiting::Chunk(chunk));
        }
    }

    pub(super) fn chunk_stored(
        &mut self,
        chunk: Chunk,
        result: Result<Revision, StoreError>,
        now: Now,
    ) -> Vec<Action> {
        for job in &chunk.refused {
            self.enqueue(job, Duration::ZERO, now.instant);
        }
        if let Err(e) = result {
            // Nothing of this chunk recorded, so nothing of it (or of the
            // chunks after it) is launched: those runs stay pending and
            // their offers are declined.
            tracing::error!(error = %e, "cannot record launch intents; declining");
            if let Some(round) = self.launches.round.as_mut() {
                round.chunk_failed(chunk);
            }
            return self.continue_round(now);
        }
        for record in &chunk.records {
            let run = Run::launching(
                record.task_id.run,
                record.agent_id.clone(),
                record.spec_version,
                record.at,
            );
            self.registry.put_run(&record.task_id.instance, run);
            if let Some(from) = record.hands_over {
                let old = TaskId::new(record.task_id.instance.clone(), from);
                self.registry.mark_handing_over(&old);
            }
        }
        self.launches.launched(&chunk.records);
        let mut actions = Vec::with_capacity(chunk.hosts.len() + 1);
        for (host, runs) in chunk.hosts {
            let mut tasks = Vec::with_capacity(runs.len());
            for run in runs {
                let job = &run.pending.launch.task_id.instance.job;
                self.enqueue(job, self.config.launch_timeout, now.instant);
                tasks.push(LaunchTask {
                    task_id: run.pending.launch.task_id,
                    pod: run.pending.pod,
                    spec_label: run.pending.spec_label,
                    secrets: run.pending.secrets,
                    ports: run.ports,
                });
            }
            tracing::debug!(agent = %host.agent_id, tasks = tasks.len(), "accepting");
            actions.push(Action::Send(Call::Accept {
                offer_ids: host.offer_ids,
                agent_id: host.agent_id,
                allocation_role: host.allocation_role,
                tasks,
                refuse: chunk.refuse,
            }));
        }
        actions.extend(self.continue_round(now));
        actions
    }

    /// The pod events of the handovers among `records`: each old run's
    /// pod says which run replaces it, and where (the old run's own
    /// history goes on: it serves until the replacement does).
    fn handover_events(&self, records: &[LaunchRecord], now: i64) -> Vec<PodEvent> {
        records
            .iter()
            .filter_map(|record| {
                let from = record.hands_over?;
                let old = TaskId::new(record.task_id.instance.clone(), from);
                self.note_on_run(
                    &old,
                    None,
                    |host| {
                        format!(
                            "handing over (host {} drains): replacement run {} starting on host {}",
                            host.unwrap_or("?"),
                            record.task_id.run,
                            record.hostname
                        )
                    },
                    now,
                )
            })
            .collect()
    }

    /// Records why the runs left over wait (when that changed), then
    /// finishes the round.
    fn end_round(&mut self, end: RoundEnd, now: Now) -> Vec<Action> {
        if !end.misses.is_empty() {
            tracing::debug!(
                unplaced = end.misses.len(),
                "runs without a fitting offer this round"
            );
        }
        let reasons = self.launches.changed_reasons(&end, now.unix_ms);
        if reasons.is_empty() {
            return self.round_ended(end, now);
        }
        let change = Change {
            pending_reasons: reasons,
            ..Change::default()
        };
        self.persist(change, Awaiting::PendingReasons(end))
    }

    pub(super) fn round_ended(&mut self, end: RoundEnd, now: Now) -> Vec<Action> {
        let round_size = end.unplaced_runs.len() + end.launched;
        self.launches.put_back(end.unplaced_runs);
        let mut actions = Vec::new();
        if end.failed {
            let mut ids = self.offers.book.take_offer_ids();
            ids.extend(end.unused.into_iter().flat_map(|h| h.offer_ids));
            actions.extend(offers::decline(ids, Duration::ZERO).map(Action::Send));
            return actions;
        }
        let runs_wait = self.launches.runs_wait();
        actions.extend(
            self.offers
                .keep_or_decline(end.unused, runs_wait, now.instant, &self.config)
                .map(Action::Send),
        );
        actions.extend(self.interest());
        tracing::debug!(
            pending = round_size,
            placed = end.launched,
            elapsed_ms = end.elapsed.as_secs_f64() * 1e3,
            placement_ms = end.placement.as_secs_f64() * 1e3,
            "placement round"
        );
        actions
    }

    /// The idle hold is over: declines the kept offers if still no run
    /// needs them (if one does, a placement round is due and uses them).
    pub(super) fn decline_idle_offers(&mut self) -> Vec<Action> {
        if self.launches.runs_wait() {
            return Vec::new();
        }
        self.offers
            .decline_all(self.config.refuse)
            .map(Action::Send)
            .into_iter()
            .collect()
    }
}
