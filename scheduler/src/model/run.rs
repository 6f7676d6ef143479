//! One run (Mesos task) of an instance as the engine keeps it, and the rule
//! for how a status update changes it. Pure.
//!
//! The rule, for an update that names a stored run:
//! - an update that says nothing new (the same state, agent and health, and
//!   the same reason and message, or a reconciliation answer, whose reason
//!   and message describe the reconciliation, not the task) changes nothing
//!   and records nothing: agents resend updates until acknowledged, and a
//!   reconciliation of 100,000 tasks would otherwise add 100,000 events;
//! - otherwise the update joins the pod's history, and
//!   - a run the scheduler gave up on (LOST: its agent went away, or the
//!     master could not say) that its agent reports FINISHED when it comes
//!     back succeeded after all, and a batch instance with a run that
//!     succeeded is done. (Only that end: a later FAILED or KILLED changes
//!     nothing, the run was given up on and replaced already, and the
//!     KILLED is usually the scheduler's own kill of the returned task);
//!   - TASK_UNREACHABLE does not end a run: its task may still be running
//!     and may still finish. The run keeps its state and is marked
//!     unreachable (the partition policy decides when it is replaced and
//!     given up, [`super::policies::unreachable`]); any later update from
//!     its agent clears the mark;
//!   - a run replaced while it was unreachable that reports its end takes
//!     it (its true end is recorded; a batch instance whose replaced run
//!     succeeded is done);
//!   - a run handing its instance over (see below) takes its updates as
//!     the latest run does, though a later run exists: it still serves;
//!   - any other run that is terminal already, or is not its instance's
//!     latest run, keeps its state (terminal states are final; a replaced
//!     run's news changes nothing), and if the update says the task is
//!     alive it must be killed;
//!   - else the run takes the update's state, reason, message, health and
//!     readiness (each kept when the update has none), its first RUNNING time,
//!     and, when terminal, its completion time.
//!
//! A handover is the one recorded case of an instance with two live runs
//! its agents can reach (DESIGN principle 4 relaxed, on the record): a
//! service run moved off a draining host keeps serving while its
//! replacement starts elsewhere ([`crate::engine::reconcile`]'s drain).
//! The replacement's launch intent marks the old run `handing_over` in the
//! same transaction, so the store (and a restarted scheduler) knows both;
//! the mark lets further replacements launch ([`may_launch`]) and keeps
//! the old run's updates from making it a stray. The old run is killed
//! once a replacement serves, or when the instance is not wanted.
//!
//! A run keeps a digest of its message, not the text: the engine only ever
//! compares messages, and 100,000 runs' texts would cost megabytes. The
//! text goes to the store with the update that brought it.

use super::ids::AgentId;
use super::state::PodState;
use super::time::UnixMillis;
use drover_proto::v1::task_status::Reason;
use drover_proto::v1::TaskState;
use smallvec::SmallVec;
use std::num::{NonZeroI64, NonZeroU64};

/// The reason on a run killed by its runtime limit: the Mesos reason for
/// a task that outlived its `max_completion_time`.
pub const RUNTIME_LIMIT_REASON: Reason = Reason::MaxCompletionTimeReached;

/// The reason on a run Drover killed to move it off a draining host (the
/// Mesos reason for a task killed because its agent drains). Such a run
/// ended well: its instance is relaunched elsewhere, batch or service.
pub const DRAIN_REASON: Reason = Reason::AgentDraining;

/// An instance's runs, oldest first. Most instances only ever have one
/// run, so that one is kept in place rather than in an allocation of its
/// own: a launch of 100,000 tasks otherwise made 100,000 small allocations
/// in the middle of its burst, each kept for good among the burst's
/// short-lived ones (with the agent ids below, the scheduler's settled
/// memory after such a launch fell from 94 to 72-77 MiB).
pub type RunHistory = SmallVec<[Run; 1]>;

/// One run of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The run number: 0 for the first, one more for each launch.
    pub run: u32,
    /// Its latest state.
    pub state: PodState,
    /// Its latest health, once an executor judged it.
    pub healthy: Option<bool>,
    /// Whether its readiness check (a Mesos `check`) last passed, once its
    /// executor reported one.
    pub ready: Option<bool>,
    /// The Mesos reason of its latest update.
    pub reason: Option<Reason>,
    /// A digest of the message of its latest update (see the module doc).
    pub message: Option<MessageDigest>,
    /// The agent it was launched on.
    pub agent: Option<AgentId>,
    /// The job version it runs.
    pub spec_version: u64,
    /// When its launch intent was recorded.
    pub launched_at: UnixMillis,
    /// When it first ran.
    pub started_at: Option<UnixMillis>,
    /// When it became terminal.
    pub completed_at: Option<UnixMillis>,
    /// When its last update (or its intent) was recorded.
    pub updated_at: UnixMillis,
    /// When a kill was last sent for it.
    pub kill_requested_at: Option<UnixMillis>,
    /// Why the scheduler killed it, when not for the job's or pod's goal
    /// (the runtime limit).
    pub kill_reason: Option<Reason>,
    /// Since when the master has reported it unreachable, while it is (not
    /// stored: after a restart, reconciliation says it again, with the
    /// time the agent became unreachable). Non-zero so the option takes no
    /// more room than the time (see [`Run::unreachable_since`]).
    pub unreachable: Option<NonZeroI64>,
    /// It hands its instance over to a later run (a drain's handover, see
    /// the module doc): it serves until a replacement does.
    pub handing_over: bool,
}

/// A 64-bit FNV-1a digest of a message (never zero, so that an optional
/// one takes no more room than the digest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageDigest(NonZeroU64);

impl MessageDigest {
    /// The digest of `message`.
    pub fn of(message: &str) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in message.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        MessageDigest(NonZeroU64::new(hash).unwrap_or(NonZeroU64::MIN))
    }
}

/// What a status update says about a run, in the model's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    /// The pod state it reports.
    pub state: PodState,
    /// The Mesos state it came as (None: made up by the scheduler).
    pub mesos_state: Option<TaskState>,
    /// The Mesos reason.
    pub reason: Option<Reason>,
    /// The message.
    pub message: Option<String>,
    /// The health it reports, if any.
    pub healthy: Option<bool>,
    /// Whether its readiness check passes, if it reports a check status.
    pub ready: Option<bool>,
    /// The agent it names.
    pub agent: Option<AgentId>,
    /// When it happened.
    pub timestamp: UnixMillis,
}

/// What a status update did to the run it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// The run took the update: its job needs a look.
    Applied,
    /// Recorded in the pod's history, but the run keeps its state: it is
    /// terminal, or not its instance's latest. `stray`: the update says
    /// the task is alive, so it must be killed.
    Stale {
        /// The task is alive on an agent and should not be.
        stray: bool,
    },
    /// Nothing new: nothing is recorded. `stray` as for [`UpdateOutcome::Stale`].
    Unchanged {
        /// The task is alive on an agent and should not be.
        stray: bool,
    },
}

impl UpdateOutcome {
    /// Whether the update goes into the pod's history.
    pub fn is_recorded(self) -> bool {
        !matches!(self, UpdateOutcome::Unchanged { .. })
    }

    /// Whether the update names a task that must be killed.
    pub fn is_stray(self) -> bool {
        matches!(
            self,
            UpdateOutcome::Stale { stray: true } | UpdateOutcome::Unchanged { stray: true }
        )
    }
}

impl Run {
    /// A run whose launch intent is recorded at `now`, on `agent`.
    pub fn launching(run: u32, agent: AgentId, spec_version: u64, now: UnixMillis) -> Self {
        Run {
            run,
            state: PodState::Launching,
            healthy: None,
            ready: None,
            reason: None,
            message: None,
            agent: Some(agent),
            spec_version,
            launched_at: now,
            started_at: None,
            completed_at: None,
            updated_at: now,
            kill_requested_at: None,
            kill_reason: None,
            unreachable: None,
            handing_over: false,
        }
    }

    /// Since when the master has reported it unreachable, if it is.
    pub fn unreachable_since(&self) -> Option<UnixMillis> {
        self.unreachable.map(NonZeroI64::get)
    }

    /// Marks it unreachable since `at` (the epoch's first millisecond
    /// counts as the second).
    pub fn mark_unreachable(&mut self, at: UnixMillis) {
        self.unreachable = NonZeroI64::new(at).or(NonZeroI64::new(1));
    }

    /// Applies `update` by the rule in the module doc. `is_latest`: no
    /// later run of the instance exists.
    pub fn apply(&mut self, update: &StatusUpdate, is_latest: bool) -> UpdateOutcome {
        // A run handing over still serves: its news is the instance's.
        let is_latest = is_latest || self.handing_over;
        if update.mesos_state == Some(TaskState::TaskUnreachable) {
            return self.unreachable(update);
        }
        let agent = update.agent.as_ref().or(self.agent.as_ref());
        let message = update.message.as_deref().map(MessageDigest::of);
        let confirms = update.reason == Some(Reason::Reconciliation)
            || (update.reason == self.reason && message == self.message);
        if self.state == update.state
            && agent == self.agent.as_ref()
            && confirms
            && update.healthy.is_none_or(|h| self.healthy == Some(h))
            && update.ready.is_none_or(|r| self.ready == Some(r))
            && self.unreachable.is_none()
        {
            return UpdateOutcome::Unchanged {
                stray: update.state.is_live() && !is_latest,
            };
        }
        if self.state == PodState::Lost && update.state == PodState::Succeeded {
            self.state = update.state;
            self.reason = update.reason;
            self.message = message;
            self.healthy = update.healthy.or(self.healthy);
            self.ready = update.ready.or(self.ready);
            self.updated_at = update.timestamp;
            return UpdateOutcome::Applied;
        }
        // A replaced run still live: its end is news, its being alive a stray.
        if self.state.is_terminal() || (!is_latest && update.state.is_live()) {
            return UpdateOutcome::Stale {
                stray: update.state.is_live(),
            };
        }
        // The same agent keeps the run's own (shared) id: an update's id
        // is a fresh copy, 64 bytes a task if kept.
        if let Some(agent) = update
            .agent
            .as_ref()
            .filter(|a| self.agent.as_ref() != Some(*a))
        {
            self.agent = Some(agent.clone());
        }
        self.state = update.state;
        self.reason = update.reason;
        self.message = message;
        self.healthy = update.healthy.or(self.healthy);
        self.ready = update.ready.or(self.ready);
        if update.state == PodState::Running && self.started_at.is_none() {
            self.started_at = Some(update.timestamp);
        }
        if update.state.is_terminal() && self.completed_at.is_none() {
            self.completed_at = Some(update.timestamp);
        }
        self.updated_at = update.timestamp;
        self.unreachable = None;
        UpdateOutcome::Applied
    }

    /// TASK_UNREACHABLE: the run keeps its state (its task may well be
    /// running, and may still finish) and is marked unreachable from the
    /// update's time, once; a terminal run stays as it is.
    fn unreachable(&mut self, update: &StatusUpdate) -> UpdateOutcome {
        if self.state.is_terminal() || self.unreachable.is_some() {
            return UpdateOutcome::Unchanged { stray: false };
        }
        self.mark_unreachable(update.timestamp);
        self.reason = update.reason;
        self.message = update.message.as_deref().map(MessageDigest::of);
        self.updated_at = update.timestamp;
        UpdateOutcome::Applied
    }

    /// Whether the run ended badly: FAILED, KILLED without the scheduler
    /// asking (a failed health check, an OOM), or killed by its runtime
    /// limit.
    pub fn counts_as_failure(&self) -> bool {
        match self.state {
            PodState::Failed => true,
            PodState::Killed => {
                self.kill_requested_at.is_none() || self.kill_reason == Some(RUNTIME_LIMIT_REASON)
            }
            _ => false,
        }
    }
}

/// Whether run number `run` may be launched for an instance whose runs so
/// far are `history` (oldest first): every earlier run is terminal,
/// unreachable (the partition policy replaces those) or handing over (a
/// drain's replacement that failed is tried again), and `run` comes after
/// them all. With the job's goal (checked by the caller), the rule that
/// keeps an instance to one live run its agent can reach, but for a
/// recorded handover.
pub fn may_launch(history: &[Run], run: u32) -> bool {
    history.iter().all(|r| {
        r.run < run && (r.state.is_terminal() || r.unreachable.is_some() || r.handing_over)
    })
}

/// Whether run number `run` may be launched beside `from`, the run it
/// takes the instance over from (a drain's handover): `from` is the
/// instance's latest run, live and not handing over already, every run
/// before it is terminal, and `run` is the next number.
pub fn may_hand_over(history: &[Run], from: u32, run: u32) -> bool {
    let Some((latest, earlier)) = history.split_last() else {
        return false;
    };
    latest.run == from
        && run == from.saturating_add(1)
        && latest.state.is_live()
        && !latest.handing_over
        && latest.unreachable.is_none()
        && earlier.iter().all(|r| r.state.is_terminal())
}

/// The live run of `history` handing its instance over to a later run, if
/// a handover is in progress (as its index).
pub fn handover_in<R: AsRef<Run>>(history: &[R]) -> Option<usize> {
    let (_, earlier) = history.split_last()?;
    earlier.iter().rposition(|r| {
        let r = r.as_ref();
        r.handing_over && r.state.is_live()
    })
}

/// The run that stands for its instance (views, availability), as an
/// index: the latest, unless a handover is in progress and the latest is
/// not live and `serving`, when the run handing over still serves.
pub fn serving_run<R: AsRef<Run>>(history: &[R], serving: impl Fn(&Run) -> bool) -> Option<usize> {
    let latest = history.len().checked_sub(1)?;
    let last = history[latest].as_ref();
    match handover_in(history) {
        Some(old) if !last.state.is_live() || !serving(last) => Some(old),
        _ => Some(latest),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn launched() -> Run {
        Run::launching(0, AgentId::new("agent-1"), 1, 1)
    }

    fn update(state: PodState, timestamp: UnixMillis) -> StatusUpdate {
        StatusUpdate {
            state,
            mesos_state: None,
            reason: None,
            message: None,
            healthy: None,
            ready: None,
            agent: Some(AgentId::new("agent-1")),
            timestamp,
        }
    }

    fn history(states: &[PodState]) -> Vec<Run> {
        states
            .iter()
            .enumerate()
            .map(|(i, s)| Run {
                state: *s,
                ..Run::launching(i as u32, AgentId::new("a"), 1, 1)
            })
            .collect()
    }

    #[test]
    fn readiness_is_news_and_kept_by_updates_without_a_check_status() {
        let mut run = launched();
        let mut running = update(PodState::Running, 10);
        running.reason = Some(Reason::TaskCheckStatusUpdated);
        running.ready = Some(false);
        assert_eq!(run.apply(&running, true), UpdateOutcome::Applied);
        assert_eq!(run.ready, Some(false));
        // The check passes: the same state and reason, but news.
        let mut ready = running.clone();
        ready.ready = Some(true);
        ready.timestamp = 20;
        assert_eq!(run.apply(&ready, true), UpdateOutcome::Applied);
        assert_eq!(run.ready, Some(true));
        assert_eq!(
            run.apply(&ready, true),
            UpdateOutcome::Unchanged { stray: false }
        );
        // A health update says nothing of readiness: it is kept.
        let mut healthy = update(PodState::Running, 30);
        healthy.healthy = Some(true);
        assert_eq!(run.apply(&healthy, true), UpdateOutcome::Applied);
        assert_eq!(run.ready, Some(true));
    }

    /// The engine holds every run in memory: 100,000 of them are a few
    /// MB only while a run stays this small.
    #[test]
    fn a_run_stays_small() {
        assert!(
            std::mem::size_of::<Run>() <= 120,
            "{}",
            std::mem::size_of::<Run>()
        );
    }

    #[test]
    fn an_instance_never_gets_a_second_live_run() {
        // No run yet: run 0 may go, and only run 0 comes first.
        assert!(may_launch(&[], 0));
        // Still live: no run 1.
        let live = history(&[PodState::Launching]);
        assert!(!may_launch(&live, 1));
        // Terminal: run 1 may go, but not a reused run number.
        let ended = history(&[PodState::Failed]);
        assert!(!may_launch(&ended, 0));
        assert!(may_launch(&ended, 1));
        assert!(!may_launch(
            &history(&[PodState::Failed, PodState::Running]),
            2
        ));
    }

    #[test]
    fn a_handover_is_the_one_recorded_second_live_run() {
        let mut old = Run {
            state: PodState::Running,
            ..launched()
        };
        let serving = [old.clone()];
        // Only beside the latest live run, as its next run.
        assert!(may_hand_over(&serving, 0, 1));
        assert!(!may_hand_over(&serving, 0, 2));
        assert!(!may_hand_over(&serving, 1, 2));
        assert!(!may_launch(&serving, 1), "no second live run otherwise");
        old.handing_over = true;
        let mut replacement = Run::launching(1, AgentId::new("agent-2"), 1, 2);
        let both = [old.clone(), replacement.clone()];
        assert!(!may_hand_over(&both, 1, 2), "one handover at a time");
        assert!(!may_launch(&both, 2), "the replacement is live");
        assert_eq!(handover_in(&both), Some(0));
        let serves = |r: &Run| r.state == PodState::Running;
        assert_eq!(serving_run(&both, serves), Some(0), "the old run serves");
        // A replacement that failed may be retried beside the old run.
        replacement.state = PodState::Failed;
        let failed = [old.clone(), replacement.clone()];
        assert!(may_launch(&failed, 2));
        assert_eq!(serving_run(&failed, serves), Some(0));
        replacement.state = PodState::Running;
        let replaced = [old.clone(), replacement];
        assert_eq!(serving_run(&replaced, serves), Some(1));
        // The old run's news is taken, not killed as a stray's.
        let mut update = update(PodState::Running, 9);
        update.healthy = Some(true);
        assert_eq!(old.apply(&update, false), UpdateOutcome::Applied);
        assert_eq!(old.healthy, Some(true));
        assert_eq!(
            old.apply(&update, false),
            UpdateOutcome::Unchanged { stray: false }
        );
        assert_eq!(
            old.apply(&self::update(PodState::Killed, 10), false),
            UpdateOutcome::Applied
        );
        assert_eq!(handover_in(&[old, launched()]), None, "ended");
    }

    #[test]
    fn statuses_apply_in_order_and_terminal_states_are_final() {
        let mut run = launched();
        let outcomes: Vec<_> = [
            update(PodState::Running, 10),
            update(PodState::Succeeded, 10),
            update(PodState::Running, 12),
        ]
        .iter()
        .map(|u| run.apply(u, true))
        .collect();
        assert_eq!(
            outcomes,
            [
                UpdateOutcome::Applied,
                UpdateOutcome::Applied,
                UpdateOutcome::Stale { stray: true }
            ]
        );
        assert_eq!(run.state, PodState::Succeeded);
        assert_eq!(run.started_at, Some(10));
        assert_eq!(run.completed_at, Some(10));
        assert_eq!(run.updated_at, 10);
    }

    #[test]
    fn a_resent_update_or_reconciliation_answer_changes_nothing() {
        let mut run = launched();
        let running = update(PodState::Running, 10);
        let reconciled = StatusUpdate {
            reason: Some(Reason::Reconciliation),
            message: Some("Reconciliation: latest task status".into()),
            ..running.clone()
        };
        let healthy = StatusUpdate {
            healthy: Some(true),
            ..running.clone()
        };
        let outcomes: Vec<_> = [
            running.clone(),
            running,
            reconciled,
            healthy.clone(),
            healthy,
        ]
        .iter()
        .map(|u| run.apply(u, true))
        .collect();
        let unchanged = UpdateOutcome::Unchanged { stray: false };
        assert_eq!(
            outcomes,
            [
                UpdateOutcome::Applied,
                unchanged,
                unchanged,
                // Same state, new health: a change.
                UpdateOutcome::Applied,
                unchanged
            ]
        );
        assert_eq!(run.reason, None, "a reconciliation answer changes nothing");
        assert_eq!(run.healthy, Some(true));
    }

    #[test]
    fn a_new_message_or_reason_is_news_and_health_is_kept_without_one() {
        let mut run = launched();
        let mut healthy = update(PodState::Running, 10);
        healthy.healthy = Some(false);
        assert_eq!(run.apply(&healthy, true), UpdateOutcome::Applied);
        let mut reasoned = update(PodState::Running, 20);
        reasoned.reason = Some(Reason::TaskHealthCheckStatusUpdated);
        assert_eq!(run.apply(&reasoned, true), UpdateOutcome::Applied);
        assert_eq!(run.healthy, Some(false), "kept when the update has none");
        let mut said = reasoned.clone();
        said.message = Some("check failed".into());
        assert_eq!(run.apply(&said, true), UpdateOutcome::Applied);
        assert_eq!(
            run.apply(&said, true),
            UpdateOutcome::Unchanged { stray: false }
        );
        assert_eq!(run.message, Some(MessageDigest::of("check failed")));
        assert_eq!(run.updated_at, 20);
    }

    #[test]
    fn news_of_a_replaced_run_is_recorded_but_changes_nothing() {
        let mut old = launched();
        assert_eq!(
            old.apply(&update(PodState::Running, 5), false),
            UpdateOutcome::Stale { stray: true }
        );
        assert_eq!(old.state, PodState::Launching);
        assert_eq!(
            old.apply(&update(PodState::Launching, 5), false),
            UpdateOutcome::Unchanged { stray: true }
        );
        // A replaced run still live (replaced while unreachable) that
        // ends: its true end is recorded.
        assert_eq!(
            old.apply(&update(PodState::Killed, 6), false),
            UpdateOutcome::Applied
        );
        assert_eq!(old.state, PodState::Killed);
        assert_eq!(
            old.apply(&update(PodState::Failed, 7), false),
            UpdateOutcome::Stale { stray: false }
        );
    }

    #[test]
    fn an_unreachable_run_keeps_its_state_until_its_agent_speaks_again() {
        let mut run = launched();
        run.apply(&update(PodState::Running, 5), true);
        let unreachable = StatusUpdate {
            state: PodState::Lost,
            mesos_state: Some(TaskState::TaskUnreachable),
            reason: Some(Reason::AgentRemoved),
            ..update(PodState::Lost, 8)
        };
        assert_eq!(run.apply(&unreachable, true), UpdateOutcome::Applied);
        assert_eq!(run.state, PodState::Running, "it may still be running");
        assert_eq!(run.unreachable_since(), Some(8));
        assert!(may_launch(&[run.clone()], 1), "the policy may replace it");
        let again = StatusUpdate {
            timestamp: 20,
            ..unreachable.clone()
        };
        assert_eq!(
            run.apply(&again, true),
            UpdateOutcome::Unchanged { stray: false },
            "a reconciliation answer says nothing new"
        );
        assert_eq!(run.unreachable_since(), Some(8));
        // Back: a RUNNING (even a reconciliation answer) clears the mark.
        let back = StatusUpdate {
            reason: Some(Reason::Reconciliation),
            ..update(PodState::Running, 30)
        };
        assert_eq!(run.apply(&back, true), UpdateOutcome::Applied);
        assert_eq!(run.unreachable_since(), None);
        assert!(!may_launch(&[run.clone()], 1));
        // Replaced while unreachable, it finishes: that is how it ended.
        run.apply(&unreachable, true);
        assert_eq!(
            run.apply(&update(PodState::Succeeded, 40), false),
            UpdateOutcome::Applied
        );
        assert_eq!(run.state, PodState::Succeeded);
        assert_eq!(run.completed_at, Some(40));
    }

    #[test]
    fn a_run_given_up_on_takes_the_end_its_agent_reports_later() {
        let mut lost = Run {
            state: PodState::Lost,
            completed_at: Some(5),
            ..launched()
        };
        // Replaced meanwhile (not the latest): still how it ended.
        assert_eq!(
            lost.apply(&update(PodState::Succeeded, 9), false),
            UpdateOutcome::Applied
        );
        assert_eq!(lost.state, PodState::Succeeded);
        assert_eq!(lost.completed_at, Some(5), "it ended when it was given up");
        assert_eq!(lost.updated_at, 9);
        // That end is final; and a live word of it is a stray.
        assert_eq!(
            lost.apply(&update(PodState::Failed, 10), false),
            UpdateOutcome::Stale { stray: false }
        );
        let mut again = Run {
            state: PodState::Lost,
            ..launched()
        };
        assert_eq!(
            again.apply(&update(PodState::Killed, 9), false),
            UpdateOutcome::Stale { stray: false },
            "most likely the scheduler's own kill of the returned task"
        );
        assert_eq!(
            again.apply(&update(PodState::Running, 9), false),
            UpdateOutcome::Stale { stray: true }
        );
        assert_eq!(again.state, PodState::Lost);
        assert_eq!(
            again.apply(&update(PodState::Lost, 9), true),
            UpdateOutcome::Unchanged { stray: false }
        );
    }

    #[test]
    fn failures_are_bad_ends_the_scheduler_did_not_ask_for() {
        let ended = |state, asked: bool, reason| Run {
            state,
            kill_requested_at: asked.then_some(5),
            kill_reason: reason,
            ..launched()
        };
        assert!(ended(PodState::Failed, false, None).counts_as_failure());
        assert!(ended(PodState::Killed, false, None).counts_as_failure());
        assert!(!ended(PodState::Killed, true, None).counts_as_failure());
        assert!(ended(PodState::Killed, true, Some(RUNTIME_LIMIT_REASON)).counts_as_failure());
        assert!(!ended(PodState::Lost, false, None).counts_as_failure());
        assert!(!ended(PodState::Succeeded, false, None).counts_as_failure());
    }
}
