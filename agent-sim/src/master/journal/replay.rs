//! Reading a journal back (pure): its frames (`[u32 length, little-endian]
//! [Entry]`) decoded in order and folded into what they describe, the
//! latest record about each agent, framework and task winning. A journal
//! cut mid-record (the process died inside a write, or the disk filled)
//! ends at the last whole record: everything before it is replayed and
//! the cut is reported, not treated as an error.

use std::collections::BTreeMap;

use drover_proto::v1;
use prost::Message;

use super::entry::{AgentEntry, Entry, Kind, TaskEntry, TaskKeyEntry};

/// The most one record may take; a longer length prefix is not a record.
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// Appends `entry` as one frame.
pub fn encode_frame(entry: &Entry, out: &mut Vec<u8>) {
    let len = entry.encoded_len();
    out.reserve(4 + len);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    // Encoding into a Vec only fails for want of capacity, reserved above.
    let _ = entry.encode(out);
}

/// Where and why a journal ended before its last byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// The offset of the first byte not replayed.
    pub offset: usize,
    pub why: CutReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutReason {
    /// Fewer bytes than the length prefix (or the prefix itself) needs.
    Truncated,
    /// A length past [`MAX_RECORD_BYTES`].
    TooLong,
    /// Bytes that do not decode as a record.
    Undecodable,
}

/// What a journal describes.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Recovered {
    /// Simulated agents by their place in the fleet.
    pub agents: BTreeMap<u64, AgentEntry>,
    /// Frameworks by id.
    pub frameworks: BTreeMap<String, v1::FrameworkInfo>,
    /// Tasks by (framework id, task id).
    pub tasks: BTreeMap<TaskKeyEntry, TaskEntry>,
    /// How many records were replayed.
    pub records: usize,
}

impl Recovered {
    /// Applies one record.
    pub fn apply(&mut self, entry: Entry) {
        self.records += 1;
        match entry.kind {
            Some(Kind::Agent(a)) => {
                self.agents.insert(a.index, a);
            }
            Some(Kind::Framework(info)) => {
                if let Some(id) = info.id.as_ref().map(|i| i.value.clone()) {
                    self.frameworks.insert(id, info);
                }
            }
            Some(Kind::FrameworkGone(id)) => {
                self.frameworks.remove(&id);
                self.tasks.retain(|k, _| k.framework != id);
            }
            Some(Kind::Task(t)) => {
                let key = TaskKeyEntry {
                    framework: t.framework.clone(),
                    task_id: t.task_id.clone(),
                };
                self.tasks.insert(key, t);
            }
            Some(Kind::TaskGone(key)) => {
                self.tasks.remove(&key);
            }
            None => {}
        }
    }

    pub fn is_empty(&self) -> bool {
        self.agents.is_empty() && self.frameworks.is_empty() && self.tasks.is_empty()
    }
}

/// Replays a journal's bytes: what its whole records describe, and where
/// it was cut if it was.
pub fn replay(bytes: &[u8]) -> (Recovered, Option<Cut>) {
    let mut recovered = Recovered::default();
    let mut at = 0;
    while at < bytes.len() {
        let cut = |why| Some(Cut { offset: at, why });
        let Some(prefix) = bytes.get(at..at + 4) else {
            return (recovered, cut(CutReason::Truncated));
        };
        let mut len = [0u8; 4];
        len.copy_from_slice(prefix);
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_RECORD_BYTES {
            return (recovered, cut(CutReason::TooLong));
        }
        let Some(body) = bytes.get(at + 4..at + 4 + len) else {
            return (recovered, cut(CutReason::Truncated));
        };
        match Entry::decode(body) {
            Ok(entry) => recovered.apply(entry),
            Err(_) => return (recovered, cut(CutReason::Undecodable)),
        }
        at += 4 + len;
    }
    (recovered, None)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn task(id: &str, state: v1::TaskState) -> Entry {
        Entry {
            kind: Some(Kind::Task(TaskEntry {
                framework: "fw".into(),
                task_id: id.into(),
                agent_id: "a-S0".into(),
                state: state as i32,
                ..Default::default()
            })),
        }
    }

    fn journal(entries: &[Entry]) -> (Vec<u8>, Vec<usize>) {
        let mut bytes = Vec::new();
        let mut ends = Vec::new();
        for e in entries {
            encode_frame(e, &mut bytes);
            ends.push(bytes.len());
        }
        (bytes, ends)
    }

    #[test]
    fn the_latest_record_of_each_task_wins_and_forgotten_tasks_stay_forgotten() {
        let (bytes, _) = journal(&[
            Entry {
                kind: Some(Kind::Agent(AgentEntry {
                    index: 0,
                    id: "a-S0".into(),
                    ..Default::default()
                })),
            },
            task("t1", v1::TaskState::TaskStaging),
            task("t2", v1::TaskState::TaskStaging),
            task("t1", v1::TaskState::TaskRunning),
            task("t2", v1::TaskState::TaskFinished),
            Entry {
                kind: Some(Kind::TaskGone(TaskKeyEntry {
                    framework: "fw".into(),
                    task_id: "t2".into(),
                })),
            },
        ]);
        let (r, cut) = replay(&bytes);
        assert_eq!(cut, None);
        assert_eq!(r.records, 6);
        assert_eq!(r.agents[&0].id, "a-S0");
        let tasks: Vec<_> = r
            .tasks
            .values()
            .map(|t| (&t.task_id[..], t.state))
            .collect();
        assert_eq!(tasks, [("t1", v1::TaskState::TaskRunning as i32)]);
    }

    #[test]
    fn a_journal_cut_mid_record_replays_every_record_before_the_cut() {
        let entries = [
            task("t1", v1::TaskState::TaskRunning),
            task("t2", v1::TaskState::TaskRunning),
            task("t3", v1::TaskState::TaskRunning),
        ];
        let (bytes, ends) = journal(&entries);
        // Every cut inside the last record, its length prefix included.
        for cut_at in ends[1] + 1..ends[2] {
            let (r, cut) = replay(&bytes[..cut_at]);
            let ids: Vec<_> = r.tasks.values().map(|t| &t.task_id[..]).collect();
            assert_eq!(ids, ["t1", "t2"], "cut at {cut_at}");
            assert_eq!(
                cut,
                Some(Cut {
                    offset: ends[1],
                    why: CutReason::Truncated
                })
            );
        }
        // A cut on a record boundary is a whole journal.
        assert_eq!(replay(&bytes[..ends[1]]).1, None);
    }

    #[test]
    fn garbage_after_the_records_ends_the_replay_there() {
        let (mut bytes, ends) = journal(&[task("t1", v1::TaskState::TaskRunning)]);
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        let (r, cut) = replay(&bytes);
        assert_eq!(r.tasks.len(), 1);
        assert_eq!(cut.unwrap().why, CutReason::TooLong);
        bytes.truncate(ends[0]);
        bytes.extend_from_slice(&[3, 0, 0, 0, 0xff, 0xff, 0xff]);
        assert_eq!(replay(&bytes).1.unwrap().why, CutReason::Undecodable);
    }
}
