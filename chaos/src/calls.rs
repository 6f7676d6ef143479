//! What the masters' call logs (`GET /sim/calls`) show of the
//! scheduler's calls: how many ACKNOWLEDGEs arrived, and how many calls
//! came on a stream after a newer stream had begun, that is from a
//! framework connection that a later SUBSCRIBE replaced (a deposed leader
//! still acting). Pure: the auditor feeds each master's records in
//! arrival order, a master's restart starts a new log.
//!
//! A stream (`Mesos-Stream-Id`) belongs to the SUBSCRIBE last received
//! before its first call. A call on a stream older than the newest one
//! seen is counted. The log cannot tell which process sent a call, so a
//! call already in flight when its own replica re-subscribed would count
//! too: the count is reported beside the four, not as one of them.

use std::collections::HashMap;

use serde_json::Value;

/// One record of a call log, as `/sim/calls` serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    pub seq: u64,
    pub stream_id: Option<String>,
    pub call_type: String,
}

/// Reads a `/sim/calls` answer (a JSON list); unreadable records are skipped.
pub fn parse(list: &Value) -> Vec<CallRecord> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            Some(CallRecord {
                seq: r["seq"].as_u64()?,
                stream_id: r["stream_id"].as_str().map(str::to_owned),
                call_type: r["type"].as_str()?.to_owned(),
            })
        })
        .collect()
}

/// One master process's log, followed.
#[derive(Debug, Default)]
struct Followed {
    /// The last seq read.
    after: u64,
    /// The seq of the last SUBSCRIBE.
    last_subscribe: u64,
    /// Each stream's SUBSCRIBE seq.
    streams: HashMap<String, u64>,
    /// The newest stream's SUBSCRIBE seq.
    newest: u64,
}

/// Every master's log, followed.
#[derive(Debug, Default)]
pub struct CallAudit {
    logs: HashMap<String, Followed>,
    pub calls: u64,
    pub acknowledges: u64,
    pub subscribes: u64,
    /// Calls on a stream after a newer one began, by call type.
    pub from_replaced_streams: HashMap<String, u64>,
}

impl CallAudit {
    /// Where to read `master`'s log from (`?after=`).
    pub fn after(&self, master: &str) -> u64 {
        self.logs.get(master).map_or(0, |f| f.after)
    }

    /// The records read from `master` after [`CallAudit::after`]. A list
    /// that starts at seq 1 again is a restarted master's new log.
    pub fn on_records(&mut self, master: &str, records: &[CallRecord]) {
        let log = self.logs.entry(master.to_owned()).or_default();
        if records.first().is_some_and(|r| r.seq <= log.after) {
            *log = Followed::default();
        }
        for record in records {
            log.after = record.seq;
            self.calls += 1;
            match record.call_type.as_str() {
                "SUBSCRIBE" => {
                    self.subscribes += 1;
                    log.last_subscribe = record.seq;
                    continue;
                }
                "ACKNOWLEDGE" => self.acknowledges += 1,
                _ => {}
            }
            let Some(stream) = &record.stream_id else {
                continue;
            };
            let epoch = *log
                .streams
                .entry(stream.clone())
                .or_insert(log.last_subscribe);
            log.newest = log.newest.max(epoch);
            if epoch < log.newest {
                *self
                    .from_replaced_streams
                    .entry(record.call_type.clone())
                    .or_default() += 1;
            }
        }
    }

    /// Calls counted from replaced streams, all types.
    pub fn replaced_total(&self) -> u64 {
        self.from_replaced_streams.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(seq: u64, stream: Option<&str>, kind: &str) -> CallRecord {
        CallRecord {
            seq,
            stream_id: stream.map(str::to_owned),
            call_type: kind.to_owned(),
        }
    }

    #[test]
    fn a_call_on_a_stream_after_a_newer_stream_began_is_counted() {
        let mut audit = CallAudit::default();
        audit.on_records(
            "m",
            &[
                call(1, None, "SUBSCRIBE"),
                call(2, Some("a"), "ACCEPT"),
                call(3, Some("a"), "ACKNOWLEDGE"),
                call(4, None, "SUBSCRIBE"),
                call(5, Some("b"), "ACKNOWLEDGE"),
            ],
        );
        assert_eq!(audit.replaced_total(), 0);
        audit.on_records("m", &[call(6, Some("a"), "ACKNOWLEDGE")]);
        assert_eq!(audit.from_replaced_streams.get("ACKNOWLEDGE"), Some(&1));
        assert_eq!(audit.acknowledges, 3);
        assert_eq!(audit.after("m"), 6);
    }

    #[test]
    fn a_restarted_masters_log_starts_over() {
        let mut audit = CallAudit::default();
        audit.on_records(
            "m",
            &[call(1, None, "SUBSCRIBE"), call(2, Some("a"), "ACCEPT")],
        );
        audit.on_records(
            "m",
            &[call(1, None, "SUBSCRIBE"), call(2, Some("z"), "ACCEPT")],
        );
        audit.on_records("m", &[call(3, Some("z"), "ACCEPT")]);
        assert_eq!(audit.replaced_total(), 0);
        assert_eq!(audit.subscribes, 2);
    }

    #[test]
    fn records_parse_from_the_routes_json() {
        let list = serde_json::json!([
            {"seq": 1, "connection": 1, "peer": "127.0.0.1:1", "stream_id": null,
             "framework_id": null, "type": "SUBSCRIBE", "at_ms": 3},
            {"seq": 2, "connection": 2, "peer": "127.0.0.1:2", "stream_id": "s",
             "framework_id": "f", "type": "ACCEPT", "at_ms": 4}
        ]);
        assert_eq!(
            parse(&list),
            vec![call(1, None, "SUBSCRIBE"), call(2, Some("s"), "ACCEPT")]
        );
    }
}
