#![allow(clippy::unwrap_used)]

use super::*;
use crate::model::job::Job;
use crate::model::state::InstanceCounts;

fn view(id: &str) -> Arc<JobView> {
    let spec = serde_json::from_value(serde_json::json!({
        "type": "BATCH", "name": "t", "instance_count": 1,
        "default_spec": {"containers": [{"command": {"value": "true"}}]}
    }))
    .unwrap();
    Arc::new(JobView {
        job: Job::new(JobId::parse(id).unwrap(), spec, 1),
        instances: InstanceCounts::default(),
    })
}

/// An entry at `revision` changing job `id` and its one pod: two changes.
fn entry(revision: Revision, at: UnixMillis, id: &str) -> WatchEntry {
    pods_entry(revision, at, id, 1)
}

/// An entry at `revision` changing job `id` and `pods` of its pods:
/// `pods + 1` changes.
pub(crate) fn pods_entry(revision: Revision, at: UnixMillis, id: &str, pods: u32) -> WatchEntry {
    let job = view(id);
    WatchEntry {
        revision,
        at,
        pods: (0..pods)
            .map(|i| Arc::new(WatchedPod::new(job.clone(), i, None, 0)))
            .collect(),
        jobs: vec![job],
        ..WatchEntry::default()
    }
}

pub(crate) fn config(window_changes: u64) -> WatchConfig {
    WatchConfig {
        window_changes,
        window_age: Duration::from_secs(60),
        max_lag: 1000,
    }
}

fn revisions(read: Read) -> Vec<Revision> {
    match read {
        Read::Entries(entries) => entries.iter().map(|e| e.revision).collect(),
        Read::Evicted => panic!("evicted"),
    }
}

#[test]
fn a_watch_from_a_revision_reads_every_entry_after_it_in_order() {
    let log = WatchLog::new(config(100), 10, Current::default());
    for r in [11, 13, 14] {
        log.append(entry(r, 0, "a"));
    }
    let opened = log.open(Some(11)).unwrap();
    assert!(opened.snapshot.is_none());
    assert_eq!(revisions(log.read_after(&opened.cursor, 10)), [13, 14]);
    let from_start = log.open(Some(10)).unwrap().cursor;
    assert_eq!(revisions(log.read_after(&from_start, 2)), [11, 13]);
    // Between revisions (12 took no entry): the same as from 11.
    assert_eq!(
        revisions(log.read_after(&log.open(Some(12)).unwrap().cursor, 10)),
        [13, 14]
    );
    assert_eq!(log.lag(&from_start), 6);
    assert_eq!(log.lag(&opened.cursor), 4);
}

#[test]
fn a_watch_from_now_gets_a_snapshot_at_the_head_and_nothing_before() {
    let log = WatchLog::new(config(100), 0, Current::default());
    log.append(entry(1, 0, "a"));
    log.append(entry(2, 0, "b"));
    let opened = log.open(None).unwrap();
    let snapshot = opened.snapshot.unwrap();
    assert_eq!(snapshot.revision, 2);
    assert_eq!(snapshot.jobs.len(), 2);
    assert_eq!(snapshot.pods.len(), 2);
    assert_eq!(opened.cursor.revision, 2);
    assert!(revisions(log.read_after(&opened.cursor, 10)).is_empty());
    assert_eq!(log.lag(&opened.cursor), 0);
}

#[test]
fn the_window_keeps_its_count_and_a_resume_before_it_is_out_of_range() {
    let log = WatchLog::new(config(4), 0, Current::default());
    let early = log.open(Some(0)).unwrap().cursor;
    for r in 1..=5 {
        log.append(entry(r, 0, "a"));
    }
    // Two changes an entry, four kept: revisions 4 and 5.
    assert_eq!(
        log.open(Some(2)).unwrap_err(),
        WatchOpenError::OutOfRange { asked: 2, floor: 3 }
    );
    assert_eq!(
        revisions(log.read_after(&log.open(Some(3)).unwrap().cursor, 10)),
        [4, 5]
    );
    assert!(matches!(log.read_after(&early, 10), Read::Evicted));
    assert_eq!(
        log.open(Some(6)).unwrap_err(),
        WatchOpenError::Ahead { asked: 6, head: 5 }
    );
}

#[test]
fn the_window_drops_changes_older_than_its_age() {
    let log = WatchLog::new(config(100), 0, Current::default());
    log.append(entry(1, 1_000, "a"));
    log.append(entry(2, 50_000, "a"));
    log.append(entry(3, 70_000, "a"));
    assert!(log.open(Some(0)).is_err());
    assert!(log.open(Some(1)).is_ok());
}

#[test]
fn the_snapshot_follows_deletions_and_the_gauges_count_watchers() {
    let log = Arc::new(WatchLog::new(config(100), 0, Current::default()));
    log.append(entry(1, 0, "a"));
    let gone = view("a");
    log.append(WatchEntry {
        revision: 2,
        deleted_jobs: vec![gone.clone()],
        deleted_pods: vec![Arc::new(WatchedPod::new(gone, 0, None, 0))],
        ..WatchEntry::default()
    });
    let opened = log.open(None).unwrap();
    assert!(opened.snapshot.unwrap().jobs.is_empty());
    let start = log.open(Some(0)).unwrap().cursor;
    let guard = log.register(&start);
    assert_eq!(log.stats().watchers, 1);
    assert_eq!(log.stats().max_lag, 4);
    guard.advanced(&opened.cursor);
    assert_eq!(log.stats().max_lag, 0);
    drop(guard);
    assert_eq!(log.stats().watchers, 0);
}
