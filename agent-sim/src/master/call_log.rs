//! The scheduler calls the master received, in arrival order, each with
//! the HTTP connection it came on: what `GET /sim/calls` serves, so a test
//! or the chaos checker can prove from the master's side that a deposed
//! framework leader sent nothing after its successor's SUBSCRIBE.
//!
//! Drive-layer bookkeeping: the HTTP server numbers its connections
//! ([`CallLog::next_connection`]) and the scheduler endpoint records each
//! decoded call before the master task sees it; the state machine knows
//! nothing of it. The log is a ring preallocated at its capacity: a push
//! holds a `std` mutex for a few word copies (never across an `.await`),
//! and the oldest entry goes when it is full, so a long run costs a fixed
//! amount of memory. Readers page with `after`: every record has a
//! sequence number, so a gap says entries were dropped before they read.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use drover_proto::v1::scheduler::{call::Type, Call};
use serde::Serialize;

/// How many calls are kept by default: about an hour of a busy
/// framework's ACCEPTs and ACKNOWLEDGEs, at ~100 bytes each (~10 MB).
pub const DEFAULT_CAPACITY: usize = 100_000;

/// One scheduler call as it arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallRecord {
    /// Its place in arrival order (from 1, never reused).
    pub seq: u64,
    /// The HTTP connection it came on (numbered by the server from 1).
    pub connection: u64,
    /// The connection's remote address.
    pub peer: SocketAddr,
    /// Its `Mesos-Stream-Id` header (none on SUBSCRIBE, which gets one).
    pub stream_id: Option<String>,
    /// The framework id it names (SUBSCRIBE: its `FrameworkInfo.id`, set
    /// when a framework subscribes again).
    pub framework_id: Option<String>,
    /// The call's type, as Mesos names it (`SUBSCRIBE`, `ACCEPT`...).
    #[serde(rename = "type")]
    pub call_type: &'static str,
    /// Milliseconds since the master started, on a monotonic clock.
    pub at_ms: u64,
}

/// The shared log; clones are handles on the same ring.
#[derive(Clone)]
pub struct CallLog {
    shared: Arc<Shared>,
}

struct Shared {
    started: Instant,
    connections: AtomicU64,
    ring: Mutex<Ring>,
}

struct Ring {
    records: VecDeque<CallRecord>,
    capacity: usize,
    last_seq: u64,
}

impl CallLog {
    /// An empty log keeping the last `capacity` calls (at least one).
    pub fn new(capacity: usize) -> CallLog {
        let capacity = capacity.max(1);
        CallLog {
            shared: Arc::new(Shared {
                started: Instant::now(),
                connections: AtomicU64::new(0),
                ring: Mutex::new(Ring {
                    records: VecDeque::with_capacity(capacity),
                    capacity,
                    last_seq: 0,
                }),
            }),
        }
    }

    /// A fresh connection number, for a connection just accepted.
    pub fn next_connection(&self) -> u64 {
        self.shared.connections.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Records `call`, which came on `connection` from `peer` with the
    /// `Mesos-Stream-Id` header `stream_id`.
    pub fn record(&self, connection: u64, peer: SocketAddr, stream_id: Option<&str>, call: &Call) {
        let framework_id = call
            .framework_id
            .as_ref()
            .or_else(|| {
                call.subscribe
                    .as_ref()
                    .and_then(|s| s.framework_info.id.as_ref())
            })
            .map(|id| id.value.clone());
        let call_type = call
            .r#type
            .and_then(|t| Type::try_from(t).ok())
            .map_or("UNKNOWN", |t| t.as_str_name());
        let stream_id = stream_id.map(str::to_owned);
        // Read the clock under the lock, so `at_ms` never goes backwards
        // along `seq`.
        let mut ring = self.lock();
        let at_ms = u64::try_from(self.shared.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        ring.last_seq += 1;
        let record = CallRecord {
            seq: ring.last_seq,
            connection,
            peer,
            stream_id,
            framework_id,
            call_type,
            at_ms,
        };
        if ring.records.len() == ring.capacity {
            ring.records.pop_front();
        }
        ring.records.push_back(record);
    }

    /// The records with `seq > after`, oldest first.
    pub fn since(&self, after: u64) -> Vec<CallRecord> {
        let ring = self.lock();
        // Sequence numbers are consecutive in the ring: skip by arithmetic.
        let first = ring.records.front().map_or(0, |r| r.seq);
        let skip =
            usize::try_from(after.saturating_add(1).saturating_sub(first)).unwrap_or(usize::MAX);
        ring.records.iter().skip(skip).cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        // A panic while holding it cannot leave the ring inconsistent
        // (each push is a pop then a push), so a poisoned lock is used on.
        self.shared
            .ring
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for CallLog {
    fn default() -> Self {
        CallLog::new(DEFAULT_CAPACITY)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use drover_proto::v1::FrameworkId;

    fn call(ty: Type, framework: Option<&str>) -> Call {
        Call {
            r#type: Some(ty as i32),
            framework_id: framework.map(|f| FrameworkId {
                value: f.to_owned(),
            }),
            ..Call::default()
        }
    }

    #[test]
    fn calls_are_kept_in_arrival_order_with_their_connection_and_the_oldest_go_first() {
        let log = CallLog::new(3);
        let peer: SocketAddr = "10.0.0.2:4000".parse().unwrap();
        let (one, two) = (log.next_connection(), log.next_connection());
        assert_eq!((one, two), (1, 2));
        log.record(one, peer, None, &call(Type::Subscribe, None));
        log.record(one, peer, Some("s1"), &call(Type::Accept, Some("f")));
        log.record(two, peer, None, &call(Type::Subscribe, Some("f")));
        log.record(two, peer, Some("s2"), &call(Type::Decline, Some("f")));
        let kept = log.since(0);
        let seen: Vec<_> = kept
            .iter()
            .map(|r| (r.seq, r.connection, r.call_type, r.stream_id.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [
                (2, 1, "ACCEPT", Some("s1")),
                (3, 2, "SUBSCRIBE", None),
                (4, 2, "DECLINE", Some("s2")),
            ]
        );
        assert!(kept.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        assert_eq!(kept[1].framework_id.as_deref(), Some("f"));
        let after: Vec<_> = log.since(3).iter().map(|r| r.seq).collect();
        assert_eq!(after, [4]);
        assert!(log.since(4).is_empty());
        assert_eq!(
            log.since(1).len(),
            3,
            "a reader behind the ring gets all kept"
        );
    }

    #[test]
    fn a_record_serializes_with_the_names_the_checkers_read() {
        let log = CallLog::new(1);
        let peer: SocketAddr = "10.0.0.2:4000".parse().unwrap();
        log.record(7, peer, Some("s"), &call(Type::Kill, Some("f")));
        let json = serde_json::to_value(log.since(0)).unwrap();
        assert_eq!(json[0]["connection"], 7);
        assert_eq!(json[0]["peer"], "10.0.0.2:4000");
        assert_eq!(json[0]["stream_id"], "s");
        assert_eq!(json[0]["framework_id"], "f");
        assert_eq!(json[0]["type"], "KILL");
        assert!(json[0]["at_ms"].is_u64());
    }
}
