//! The status update manager, as a Mesos agent's forwards updates and the
//! master relays them (reference 3.8): every update an agent generates
//! carries a uuid and waits in its task's stream; only the stream's head is
//! in flight, re-sent with a doubling backoff until the framework
//! acknowledges its uuid, and then the next goes out. The status-update
//! faults (`/sim/status-updates`) lose or hold back first transmissions.
//!
//! A stream exists only while it holds updates: most tasks sit idle for
//! long, and an idle task costs nothing here. Master-generated updates
//! (no uuid) never enter a stream; they are sent once.
//!
//! ```text
//!  push ──► queued ──(head)──transmit──► in flight ──ACKNOWLEDGE(uuid)──► next head, or gone
//!                                          │    ▲
//!                                          └────┘ retry timer: re-send, backoff doubles
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use drover_proto::v1;

use super::journal::changes::Changes;
use super::timers::{Timer, TimerId, Timers, MIN_INTERVAL};
use crate::deadline::after;
use crate::fixed_hash::HashMap;
use crate::ids::{IdGen, TaskKey};

/// Status-update faults injected through `/sim` (see `faults.rs`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateFaults {
    /// Lose the next N first transmissions (retries still deliver them).
    pub drop_next: u32,
    /// Lose each first transmission with this probability.
    pub drop_probability: f64,
    /// Hold each first transmission back this long.
    pub delay: Option<Duration>,
}

/// One task's updates not yet acknowledged.
#[derive(Debug)]
struct Stream {
    /// The head is the one in flight.
    pending: VecDeque<v1::TaskStatus>,
    /// The head's next retry interval.
    backoff: Duration,
    /// The head's retry timer, cancelled when it is acknowledged.
    retry: Option<TimerId>,
}

/// An acknowledged update.
#[derive(Debug)]
pub struct Acknowledged {
    pub status: v1::TaskStatus,
    /// Whether another update waits (and is now the head).
    pub more: bool,
}

/// Every task's stream of unacknowledged updates, and the faults.
#[derive(Debug)]
pub struct StatusUpdates {
    streams: HashMap<TaskKey, Stream>,
    faults: UpdateFaults,
    retry_min: Duration,
    retry_max: Duration,
    /// The tasks whose streams changed since the journal last took them.
    changes: Changes<TaskKey>,
}

impl StatusUpdates {
    /// Retries start at `retry_min` and double up to `retry_max`.
    pub fn new(retry_min: Duration, retry_max: Duration) -> Self {
        StatusUpdates {
            streams: HashMap::default(),
            faults: UpdateFaults::default(),
            retry_min,
            retry_max,
            changes: Changes::default(),
        }
    }

    /// Starts noting changed streams for the journal.
    pub fn journal_changes(&mut self) {
        self.changes.enable();
    }

    /// The tasks whose streams changed since the last call.
    pub fn take_changes(&mut self) -> Vec<TaskKey> {
        self.changes.take()
    }

    /// The task's unacknowledged updates, the one in flight first.
    pub fn pending(&self, key: &TaskKey) -> impl Iterator<Item = &v1::TaskStatus> {
        self.streams
            .get(key)
            .into_iter()
            .flat_map(|s| s.pending.iter())
    }

    /// Queues an update (it has a uuid); whether it is the head and must
    /// be transmitted now.
    pub fn push(&mut self, key: &TaskKey, status: v1::TaskStatus) -> bool {
        self.changes.note(key);
        // Looked up before inserting: `entry` would clone the key on every
        // update, and most go to a stream that exists.
        if let Some(stream) = self.streams.get_mut(key) {
            stream.pending.push_back(status);
            return stream.pending.len() == 1;
        }
        let stream = Stream {
            pending: VecDeque::from([status]),
            backoff: self.retry_min,
            retry: None,
        };
        self.streams.insert(key.clone(), stream);
        true
    }

    /// Transmits the head: arms its retry (the backoff doubles for the
    /// next), and, on a first attempt, lets the faults lose it or hold it
    /// back (a held update comes back as [`Timer::DelayedSend`]). Returns
    /// the uuid of the head to send now, if any.
    pub fn transmit(
        &mut self,
        key: &TaskKey,
        first_attempt: bool,
        now: Instant,
        timers: &mut Timers,
        ids: &mut IdGen,
    ) -> Option<Bytes> {
        let stream = self.streams.get_mut(key)?;
        let head = stream.pending.front()?;
        let uuid = head.uuid.clone().unwrap_or_default();
        let backoff = stream.backoff.max(MIN_INTERVAL);
        stream.backoff = (backoff * 2).min(self.retry_max);
        if let Some(old) = stream.retry.take() {
            timers.disarm(old);
        }
        stream.retry = Some(timers.arm(
            after(now, backoff),
            Timer::UpdateRetry {
                task: key.clone(),
                uuid: uuid.clone(),
            },
        ));
        if first_attempt {
            let faults = &mut self.faults;
            if faults.drop_next > 0 {
                faults.drop_next -= 1;
                return None;
            }
            if faults.drop_probability > 0.0 && ids.unit() < faults.drop_probability {
                return None;
            }
            if let Some(delay) = faults.delay {
                timers.arm(
                    after(now, delay),
                    Timer::DelayedSend {
                        task: key.clone(),
                        uuid,
                    },
                );
                return None;
            }
        }
        Some(uuid)
    }

    /// The task's head update, if its uuid is `uuid`.
    pub fn head(&self, key: &TaskKey, uuid: &[u8]) -> Option<&v1::TaskStatus> {
        self.streams
            .get(key)?
            .pending
            .front()
            .filter(|h| h.uuid.as_deref() == Some(uuid))
    }

    /// The uuid of the task's head update.
    pub fn head_uuid(&self, key: &TaskKey) -> Option<Bytes> {
        self.streams.get(key)?.pending.front()?.uuid.clone()
    }

    /// ACKNOWLEDGE of `uuid`: if it is the head's, the head is done, its
    /// retry cancelled and the backoff reset.
    pub fn acknowledge(
        &mut self,
        key: &TaskKey,
        uuid: &[u8],
        timers: &mut Timers,
    ) -> Option<Acknowledged> {
        let stream = self.streams.get_mut(key)?;
        if stream.pending.front().and_then(|h| h.uuid.as_deref()) != Some(uuid) {
            return None;
        }
        let status = stream.pending.pop_front()?;
        self.changes.note(key);
        stream.backoff = self.retry_min;
        if let Some(t) = stream.retry.take() {
            timers.disarm(t);
        }
        let more = !stream.pending.is_empty();
        if !more {
            self.streams.remove(key);
        }
        Some(Acknowledged { status, more })
    }

    /// Whether an update with `uuid` waits in the task's stream.
    pub fn is_pending(&self, key: &TaskKey, uuid: &[u8]) -> bool {
        self.streams
            .get(key)
            .is_some_and(|s| s.pending.iter().any(|u| u.uuid.as_deref() == Some(uuid)))
    }

    /// How many of the task's updates wait for an acknowledgement.
    pub fn unacknowledged(&self, key: &TaskKey) -> usize {
        self.streams.get(key).map_or(0, |s| s.pending.len())
    }

    /// The task is gone (its framework was removed): its updates are dropped.
    pub fn forget(&mut self, key: &TaskKey) {
        self.changes.note(key);
        self.streams.remove(key);
    }

    pub fn faults(&self) -> &UpdateFaults {
        &self.faults
    }

    /// Sets how first transmissions are lost or delayed from now on.
    pub fn set_faults(&mut self, faults: UpdateFaults) {
        self.faults = faults;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn status(n: u8) -> v1::TaskStatus {
        v1::TaskStatus {
            uuid: Some(Bytes::from(vec![n; 16])),
            ..Default::default()
        }
    }

    #[test]
    fn only_the_head_is_in_flight_and_its_retries_back_off_until_acknowledged() {
        let now = Instant::now();
        let s = Duration::from_secs(1);
        let key: TaskKey = ("fw".into(), "t".into());
        let (mut timers, mut ids) = (Timers::default(), IdGen::new(1));
        let mut u = StatusUpdates::new(10 * s, 25 * s);
        assert!(u.push(&key, status(1)));
        assert!(
            !u.push(&key, status(2)),
            "the second waits behind the first"
        );
        let uuid = u.transmit(&key, true, now, &mut timers, &mut ids).unwrap();
        assert_eq!(&uuid[..], &[1; 16]);
        assert_eq!(timers.next_deadline(), Some(now + 10 * s));
        u.transmit(&key, false, now + 10 * s, &mut timers, &mut ids);
        u.transmit(&key, false, now + 30 * s, &mut timers, &mut ids);
        assert_eq!(timers.len(), 1, "each retry replaces the last");
        assert_eq!(timers.next_deadline(), Some(now + 10 * s), "a stale slot");
        assert!(u.acknowledge(&key, &[2; 16], &mut timers).is_none());
        let acked = u.acknowledge(&key, &[1; 16], &mut timers).unwrap();
        assert!(acked.more);
        assert!(timers.is_empty());
        u.transmit(&key, true, now, &mut timers, &mut ids);
        assert_eq!(u.unacknowledged(&key), 1);
        let last = u.acknowledge(&key, &[2; 16], &mut timers).unwrap();
        assert!(!last.more);
        assert_eq!(u.unacknowledged(&key), 0);
        assert!(u.streams.is_empty(), "an idle task holds no stream");
    }

    #[test]
    fn faults_lose_or_hold_back_only_first_transmissions() {
        let now = Instant::now();
        let key: TaskKey = ("fw".into(), "t".into());
        let (mut timers, mut ids) = (Timers::default(), IdGen::new(1));
        let mut u = StatusUpdates::new(Duration::from_secs(10), Duration::from_secs(600));
        u.set_faults(UpdateFaults {
            drop_next: 1,
            drop_probability: 0.0,
            delay: Some(Duration::from_secs(2)),
        });
        u.push(&key, status(1));
        assert!(u.transmit(&key, true, now, &mut timers, &mut ids).is_none());
        assert_eq!(u.faults().drop_next, 0);
        assert!(u
            .transmit(&key, false, now, &mut timers, &mut ids)
            .is_some());
        assert!(u.transmit(&key, true, now, &mut timers, &mut ids).is_none());
        assert_eq!(timers.next_deadline(), Some(now + Duration::from_secs(2)));
        assert!(u.is_pending(&key, &[1; 16]));
        u.forget(&key);
        assert!(!u.is_pending(&key, &[1; 16]));
    }
}
