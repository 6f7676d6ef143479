//! Load shedding of API writes. Every write goes to the engine's runner
//! through one bounded queue, whose capacity is `--max-pending-requests`;
//! the runner takes them one at a time, each answered once committed. A
//! write that finds the queue full is refused at once with 503 UNAVAILABLE
//! and `Retry-After` rather than waiting for room: under a burst the
//! scheduler's backlog (and each waiting client's connection and memory)
//! stays bounded, and the client learns at once to come back. Reads do not
//! go through the queue and are served throughout.
//!
//! `/health/ready` names `shedding` while writes are refused and for
//! [`SHED_HOLD`] after the last refusal, so that a probe polling every few
//! seconds sees a burst that a single poll would fall between.
//!
//! Why not tower's `LoadShed` over a `ConcurrencyLimit`: those bound the
//! requests a service is handling, from the head to the end of the answer,
//! reads, slow bodies and validation included, per route stack; what has to
//! be bounded is the engine's queue of writes, which only the point where a
//! write is handed to the runner sees. That queue already exists (a tokio
//! channel), so its own capacity is the bound and `try_send` the decision:
//! a write a client gave up on still holds its slot until the runner has
//! taken it, so the count never drifts from what the runner has to do.

use super::error::{ApiError, Code};
use super::AppState;
use crate::runner::ApiCommand;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::error::TrySendError;

/// How long readiness stays red after the last refused write, and the
/// window whose refusals it counts.
pub const SHED_HOLD: Duration = Duration::from_secs(5);

/// What a refused client is told to wait before it retries, in seconds:
/// the queue drains at hundreds of writes a second.
pub const RETRY_AFTER_SECS: u32 = 1;

/// Refusals counted in buckets of this width: the window holds at most
/// `SHED_HOLD / BUCKET` of them however many writes are refused.
const BUCKET: Duration = Duration::from_millis(100);

/// Refusals of the last [`SHED_HOLD`], counted per [`BUCKET`] (so the
/// window's edge is exact to a bucket). Pure: the caller says when.
#[derive(Debug, Default)]
pub struct RefusalWindow {
    /// (start of the bucket, refusals in it), oldest first.
    buckets: VecDeque<(Instant, u64)>,
}

impl RefusalWindow {
    /// One write refused at `now`.
    pub fn record(&mut self, now: Instant) {
        self.forget_before(now);
        match self.buckets.back_mut() {
            Some((start, n)) if now.saturating_duration_since(*start) < BUCKET => *n += 1,
            _ => self.buckets.push_back((now, 1)),
        }
    }

    /// Writes refused in the [`SHED_HOLD`] before `now`.
    pub fn refused(&mut self, now: Instant) -> u64 {
        self.forget_before(now);
        self.buckets.iter().map(|(_, n)| n).sum()
    }

    fn forget_before(&mut self, now: Instant) {
        while let Some((start, _)) = self.buckets.front() {
            if now.saturating_duration_since(*start) < SHED_HOLD {
                break;
            }
            self.buckets.pop_front();
        }
    }
}

/// Whether writes are being shed, as read at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shedding {
    /// Writes refused in the last [`SHED_HOLD`].
    pub refused: u64,
    /// Writes waiting for the runner now.
    pub backlog: usize,
    /// Most writes that may wait (`--max-pending-requests`).
    pub limit: usize,
}

impl Shedding {
    /// Whether readiness fails: a write was refused within the hold-down.
    pub fn is_shedding(&self) -> bool {
        self.refused > 0
    }

    /// What `/health/ready` says of it.
    pub fn message(&self) -> String {
        format!(
            "{} requests refused in the last {}s, backlog {}/{}",
            self.refused,
            SHED_HOLD.as_secs(),
            self.backlog,
            self.limit
        )
    }
}

/// The refusals, shared by the API's handlers.
#[derive(Debug, Default)]
pub struct Shedder {
    refusals: Mutex<RefusalWindow>,
}

impl Shedder {
    fn record(&self, now: Instant) {
        self.refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(now);
    }

    fn refused(&self, now: Instant) -> u64 {
        self.refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .refused(now)
    }
}

/// Hands `command` to the runner if its queue has room; else refuses it
/// at once (UNAVAILABLE, counted for readiness and `/metrics`).
pub fn submit(state: &AppState, command: ApiCommand) -> Result<(), ApiError> {
    match state.runner.try_send(command) {
        Ok(()) => Ok(()),
        Err(TrySendError::Closed(_)) => Err(ApiError::shutting_down()),
        Err(TrySendError::Full(_)) => {
            state.shed.record(Instant::now());
            state.metrics.api_shed.inc();
            let limit = state.runner.max_capacity();
            Err(ApiError {
                code: Code::Unavailable,
                message: format!(
                    "the scheduler is overloaded: {limit} writes already wait for it \
                     (--max-pending-requests {limit}); retry after {RETRY_AFTER_SECS}s"
                ),
            })
        }
    }
}

/// Whether writes are being shed now.
pub fn shedding(state: &AppState) -> Shedding {
    let limit = state.runner.max_capacity();
    Shedding {
        refused: state.shed.refused(Instant::now()),
        backlog: limit - state.runner.capacity(),
        limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_count_for_the_hold_down_and_then_are_forgotten() {
        let t0 = Instant::now();
        let mut window = RefusalWindow::default();
        assert_eq!(window.refused(t0), 0);
        for ms in [0, 10, 50, 150, 4_000] {
            window.record(t0 + Duration::from_millis(ms));
        }
        assert_eq!(window.refused(t0 + Duration::from_millis(4_000)), 5);
        // The first bucket (0..100 ms: three refusals) leaves the window.
        assert_eq!(window.refused(t0 + SHED_HOLD), 2);
        assert_eq!(
            window.refused(t0 + SHED_HOLD + Duration::from_millis(150)),
            1
        );
        assert_eq!(window.refused(t0 + Duration::from_millis(9_000)), 0);
    }

    #[test]
    fn a_burst_keeps_the_window_small() {
        let t0 = Instant::now();
        let mut window = RefusalWindow::default();
        for i in 0..100_000u64 {
            window.record(t0 + Duration::from_micros(i * 40));
        }
        assert!(window.buckets.len() <= 41, "{}", window.buckets.len());
        assert_eq!(window.refused(t0 + Duration::from_secs(4)), 100_000);
    }

    #[test]
    fn shedding_names_refusals_and_backlog() {
        let s = Shedding {
            refused: 37,
            backlog: 1024,
            limit: 1024,
        };
        assert!(s.is_shedding());
        assert_eq!(
            s.message(),
            "37 requests refused in the last 5s, backlog 1024/1024"
        );
        let calm = Shedding { refused: 0, ..s };
        assert!(!calm.is_shedding());
    }
}
