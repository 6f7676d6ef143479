//! The master's timers, kept as data: each armed [`Timer`] waits in a heap
//! ordered by deadline, then by the order it was armed (so two timers due
//! at one instant fire as they were armed, in every run), and
//! `Master::on_tick` fires whatever is due. A timer is cancelled by
//! forgetting it; its heap slot is dropped when it comes due.
//!
//! Allocation cycles are one timer among these, with one rule of their own:
//! an early cycle (a framework or agent was added, a framework revived)
//! replaces the periodic one rather than adding to it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::agent::sim_task::SimTimer;
use crate::deadline::after;
use crate::fixed_hash::HashMap;
use crate::ids::{ConnId, TaskKey};

/// The shortest period of any repeating timer, so a zero interval from a
/// flag cannot make `Master::on_tick` loop forever at one instant.
pub const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// An armed timer's handle, to cancel it.
pub type TimerId = u64;

/// What is due when a timer fires.
#[derive(Debug, Clone, PartialEq)]
pub enum Timer {
    Allocate,
    Heartbeat {
        framework: String,
        conn: ConnId,
    },
    Failover {
        framework: String,
        epoch: u64,
    },
    OfferTimeout {
        offer: String,
    },
    Sim {
        task: TaskKey,
        timer: SimTimer,
    },
    UpdateRetry {
        task: TaskKey,
        uuid: Bytes,
    },
    /// A status update held back by the delay fault.
    DelayedSend {
        task: TaskKey,
        uuid: Bytes,
    },
    /// An executor's shutdown grace period ended.
    ExecutorKill {
        container_id: String,
    },
}

/// Every armed timer.
#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, TimerId)>>,
    armed: HashMap<TimerId, Timer>,
    next: TimerId,
    /// When the next allocation cycle runs.
    allocation_at: Option<Instant>,
}

impl Timers {
    /// Arms `timer` to fire at `at`.
    pub fn arm(&mut self, at: Instant, timer: Timer) -> TimerId {
        let id = self.next;
        self.next += 1;
        self.heap.push(Reverse((at, id)));
        self.armed.insert(id, timer);
        id
    }

    /// Cancels an armed timer.
    pub fn disarm(&mut self, id: TimerId) {
        self.armed.remove(&id);
    }

    /// When the earliest timer is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// The next timer due at `now`, skipping cancelled ones.
    pub fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        while let Some(Reverse((at, id))) = self.heap.peek().copied() {
            if at > now {
                return None;
            }
            self.heap.pop();
            if let Some(timer) = self.armed.remove(&id) {
                return Some(timer);
            }
        }
        None
    }

    /// How many timers are armed.
    pub fn len(&self) -> usize {
        self.armed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.armed.is_empty()
    }

    /// Runs an allocation cycle at `now` rather than at the next interval
    /// (Mesos also allocates when a framework or agent is added or revives).
    pub fn allocate_soon(&mut self, now: Instant) {
        if self.allocation_at.is_none_or(|t| t > now) {
            self.allocation_at = Some(now);
            self.arm(now, Timer::Allocate);
        }
    }

    /// An allocation timer fired at `now`: whether its cycle runs. Only the
    /// earliest armed cycle runs, and it arms the next periodic one.
    pub fn start_allocation(&mut self, now: Instant, interval: Duration) -> bool {
        if self.allocation_at.is_some_and(|t| t > now) {
            return false;
        }
        let next = after(now, interval.max(MIN_INTERVAL));
        self.allocation_at = Some(next);
        self.arm(next, Timer::Allocate);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_due_together_fire_in_the_order_they_were_armed() {
        let now = Instant::now();
        let mut t = Timers::default();
        let late = t.arm(now + Duration::from_secs(1), Timer::Allocate);
        t.arm(
            now,
            Timer::OfferTimeout {
                offer: "first".into(),
            },
        );
        let cancelled = t.arm(now, Timer::OfferTimeout { offer: "x".into() });
        t.arm(
            now,
            Timer::OfferTimeout {
                offer: "second".into(),
            },
        );
        t.disarm(cancelled);
        assert_eq!(t.len(), 3);
        assert_eq!(
            t.pop_due(now),
            Some(Timer::OfferTimeout {
                offer: "first".into()
            })
        );
        assert_eq!(
            t.pop_due(now),
            Some(Timer::OfferTimeout {
                offer: "second".into()
            })
        );
        assert_eq!(t.pop_due(now), None);
        assert_eq!(t.next_deadline(), Some(now + Duration::from_secs(1)));
        t.disarm(late);
        assert!(t.is_empty());
    }

    #[test]
    fn an_early_allocation_replaces_the_periodic_one() {
        let now = Instant::now();
        let interval = Duration::from_secs(1);
        let mut t = Timers::default();
        t.allocate_soon(now);
        assert_eq!(t.pop_due(now), Some(Timer::Allocate));
        assert!(t.start_allocation(now, interval));
        // Asked again before the periodic cycle: it runs now instead.
        t.allocate_soon(now + Duration::from_millis(10));
        let soon = now + Duration::from_millis(10);
        assert_eq!(t.pop_due(soon), Some(Timer::Allocate));
        assert!(t.start_allocation(soon, interval));
        // The periodic timer armed by the first cycle is stale.
        assert_eq!(t.pop_due(now + interval), Some(Timer::Allocate));
        assert!(!t.start_allocation(now + interval, interval));
    }
}
