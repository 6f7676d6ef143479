//! The change log watchers read: every committed change as the jobs and
//! pods it changed, each as that revision left it, keyed by the store-wide
//! revision and kept for a bounded window (by count of object changes and
//! by age). One writer, the runner, appends after each commit; any number
//! of watchers read it through a [`Cursor`] (fan-out from one log, no
//! per-watcher store reads), and it also keeps every job and pod as the
//! head revision left them, for the snapshot a new watcher starts from.
//!
//! A watch from revision R is complete while every entry after R is still
//! held: R must be at least the window's floor (the revision of the last
//! entry evicted, or the revision the log started at), else the watcher
//! takes a fresh snapshot (`OUT_OF_RANGE`). The log lives in memory: after
//! a restart it starts empty at the store's revision.
//!
//! [`capture`] turns one committed change into an entry; it reads the
//! engine's registry (what the store now holds) and the pods as the log
//! last knew them (for what only a reader shows: host, ports, message).

pub mod capture;

use crate::model::ids::{InstanceId, JobId};
use crate::model::job::{JobView, Revision};
use crate::model::time::UnixMillis;
use crate::store::RunRecord;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// How much the log keeps and how far a watcher may fall behind.
#[derive(Debug, Clone, Copy)]
pub struct WatchConfig {
    /// Object changes kept (`--watch-window`).
    pub window_changes: u64,
    /// How long a change is kept (`--watch-window-age`).
    pub window_age: Duration,
    /// Object changes a watcher may be behind the head before it is cut
    /// off with its resume revision (`--watch-max-lag`).
    pub max_lag: u64,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            window_changes: 100_000,
            window_age: Duration::from_secs(600),
            max_lag: 50_000,
        }
    }
}

/// A pod as one revision left it.
#[derive(Debug)]
pub struct WatchedPod {
    /// Its job, as the same revision left it.
    pub job: Arc<JobView>,
    /// Its instance number.
    pub instance: u32,
    /// Its latest run; None: never launched.
    pub latest: Option<RunRecord>,
    /// Its failures, as the engine counts them.
    pub failure_count: usize,
    /// It as the JSON stream renders it: rendered once, shared by every
    /// watcher it passes.
    pub json: OnceLock<Arc<str>>,
}

impl WatchedPod {
    /// The pod as `revision` left it.
    pub fn new(
        job: Arc<JobView>,
        instance: u32,
        latest: Option<RunRecord>,
        failure_count: usize,
    ) -> Self {
        WatchedPod {
            job,
            instance,
            latest,
            failure_count,
            json: OnceLock::new(),
        }
    }

    /// Its `<job>-<instance>` name.
    pub fn pod_name(&self) -> String {
        self.id().pod_name()
    }

    /// Its instance id.
    pub fn id(&self) -> InstanceId {
        InstanceId::new(self.job.job.job_id.clone(), self.instance)
    }
}

/// One committed revision, as watchers see it.
#[derive(Debug, Default)]
pub struct WatchEntry {
    /// The revision.
    pub revision: Revision,
    /// When it was committed.
    pub at: UnixMillis,
    /// Jobs it changed (their state, counts or spec), as it left them.
    pub jobs: Vec<Arc<JobView>>,
    /// Each of `jobs` as the JSON stream renders it (same order), rendered
    /// once for every watcher it passes.
    pub jobs_json: Vec<OnceLock<Arc<str>>>,
    /// Jobs it deleted, as they were last seen.
    pub deleted_jobs: Vec<Arc<JobView>>,
    /// Pods it changed, as it left them. The job of every pod here and in
    /// `deleted_pods` is among `jobs` or `deleted_jobs`.
    pub pods: Vec<Arc<WatchedPod>>,
    /// Pods it removed (their job deleted or shrunk), as they were last
    /// seen.
    pub deleted_pods: Vec<Arc<WatchedPod>>,
    /// The entry as the JSON stream renders it for an unfiltered watcher:
    /// rendered once, shared by every such watcher.
    pub rendered: OnceLock<Arc<str>>,
}

impl WatchEntry {
    /// How many object changes it carries.
    pub fn changes(&self) -> u64 {
        (self.jobs.len() + self.deleted_jobs.len() + self.pods.len() + self.deleted_pods.len())
            as u64
    }
}

/// Every job and pod as a revision left them.
#[derive(Debug)]
pub struct WatchSnapshot {
    /// The revision.
    pub revision: Revision,
    /// Every job, in creation order.
    pub jobs: Vec<Arc<JobView>>,
    /// Every pod, by job (in the same order) then instance.
    pub pods: Vec<Arc<WatchedPod>>,
}

/// Where a watcher stands: the last revision it has read past, and the
/// count of object changes up to it (its lag is the head's count less this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The revision.
    pub revision: Revision,
    /// Object changes committed up to it.
    seq: u64,
}

/// A watch that cannot start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WatchOpenError {
    /// The revision is older than the window: take a fresh snapshot.
    #[error(
        "revision {asked} is older than the watch window (it starts after revision {floor}); \
         take a fresh snapshot"
    )]
    OutOfRange {
        /// The revision asked.
        asked: Revision,
        /// The oldest revision a watch may resume from.
        floor: Revision,
    },
    /// The revision is ahead of the head.
    #[error("revision {asked} is ahead of the latest revision {head}")]
    Ahead {
        /// The revision asked.
        asked: Revision,
        /// The latest revision.
        head: Revision,
    },
}

/// A watch that can start: its snapshot (when it asked for none of the
/// past) and where it reads from.
#[derive(Debug)]
pub struct Opened {
    /// Every job and pod at `cursor`, for a watch from now.
    pub snapshot: Option<WatchSnapshot>,
    /// Where the watcher reads from.
    pub cursor: Cursor,
}

/// What the log has after a cursor.
#[derive(Debug)]
pub enum Read {
    /// Entries after it, oldest first (possibly none yet).
    Entries(Vec<Arc<WatchEntry>>),
    /// The window moved past it: the watcher missed changes.
    Evicted,
}

/// The shared log. See the module doc.
#[derive(Debug)]
pub struct WatchLog {
    config: WatchConfig,
    state: RwLock<LogState>,
    /// The head revision, for watchers waiting for more.
    head: watch::Sender<Revision>,
    /// Each open watcher's position (its count of changes read past),
    /// for the lag gauges.
    watchers: Mutex<BTreeMap<u64, Arc<AtomicU64>>>,
    next_watcher: AtomicU64,
    cut_off: AtomicU64,
}

#[derive(Debug, Default)]
struct LogState {
    entries: VecDeque<Arc<WatchEntry>>,
    /// The oldest revision a watch may resume from.
    floor: Revision,
    /// Object changes up to the floor.
    floor_seq: u64,
    /// The latest committed revision.
    head: Revision,
    /// Object changes up to the head.
    head_seq: u64,
    /// Object changes the entries hold.
    held: u64,
    /// Every job and its pods as the head left them.
    current: Current,
}

/// Every job and its pods (by instance), as the head left them.
#[derive(Debug, Default)]
pub struct Current {
    jobs: BTreeMap<JobId, CurrentJob>,
}

#[derive(Debug)]
struct CurrentJob {
    view: Arc<JobView>,
    pods: Vec<Arc<WatchedPod>>,
}

impl Current {
    /// The pod as the head left it.
    pub fn pod(&self, id: &InstanceId) -> Option<&Arc<WatchedPod>> {
        self.jobs.get(&id.job)?.pods.get(id.instance as usize)
    }

    /// The job as the head left it.
    pub fn job(&self, id: &JobId) -> Option<&Arc<JobView>> {
        self.jobs.get(id).map(|j| &j.view)
    }

    /// The job's pods as the head left them, by instance.
    pub fn pods(&self, job: &JobId) -> &[Arc<WatchedPod>] {
        self.jobs.get(job).map_or(&[], |j| &j.pods)
    }

    /// Sets a job and its pods (replacing what was known).
    pub fn set_job(&mut self, view: Arc<JobView>, pods: Vec<Arc<WatchedPod>>) {
        let id = view.job.job_id.clone();
        self.jobs.insert(id, CurrentJob { view, pods });
    }

    fn apply(&mut self, entry: &WatchEntry) {
        for gone in &entry.deleted_jobs {
            self.jobs.remove(&gone.job.job_id);
        }
        for view in &entry.jobs {
            let id = &view.job.job_id;
            match self.jobs.get_mut(id) {
                Some(job) => job.view = view.clone(),
                None => {
                    self.jobs.insert(
                        id.clone(),
                        CurrentJob {
                            view: view.clone(),
                            pods: Vec::new(),
                        },
                    );
                }
            }
        }
        for gone in &entry.deleted_pods {
            if let Some(job) = self.jobs.get_mut(&gone.job.job.job_id) {
                job.pods.truncate(gone.instance as usize);
            }
        }
        for pod in &entry.pods {
            let Some(job) = self.jobs.get_mut(&pod.job.job.job_id) else {
                continue;
            };
            let at = pod.instance as usize;
            if at < job.pods.len() {
                job.pods[at] = pod.clone();
            } else if at == job.pods.len() {
                job.pods.push(pod.clone());
            } else {
                tracing::error!(pod = %pod.pod_name(), "a watched pod skipped an instance");
            }
        }
    }
}

impl Default for WatchLog {
    fn default() -> Self {
        WatchLog::new(WatchConfig::default(), 0, Current::default())
    }
}

impl WatchLog {
    /// An empty log at `revision` (the store's, at start), knowing the
    /// jobs and pods in `current`.
    pub fn new(config: WatchConfig, revision: Revision, current: Current) -> Self {
        WatchLog {
            config,
            state: RwLock::new(LogState {
                floor: revision,
                head: revision,
                current,
                ..LogState::default()
            }),
            head: watch::Sender::new(revision),
            watchers: Mutex::default(),
            next_watcher: AtomicU64::new(0),
            cut_off: AtomicU64::new(0),
        }
    }

    /// Starts the log over at `revision` (the store's, once the engine
    /// loaded it), knowing the jobs and pods in `current`.
    pub fn start_at(&self, revision: Revision, current: Current) {
        {
            let mut state = self.write();
            *state = LogState {
                floor: revision,
                head: revision,
                current,
                ..LogState::default()
            };
        }
        self.head.send_replace(revision);
    }

    /// Its settings.
    pub fn config(&self) -> WatchConfig {
        self.config
    }

    /// The latest committed revision.
    pub fn head(&self) -> Revision {
        self.read().head
    }

    /// Reads what the log knows now (for [`capture`]: the runner, the
    /// only writer, reads and then appends).
    pub fn with_current<T>(&self, read: impl FnOnce(&Current) -> T) -> T {
        read(&self.read().current)
    }

    /// Appends the entry for a committed revision (or, for an entry with
    /// nothing in it, moves the head), then evicts what the window no
    /// longer holds. `now` is the commit's time.
    pub fn append(&self, entry: WatchEntry) {
        let revision = entry.revision;
        {
            let mut state = self.write();
            if revision <= state.head {
                return;
            }
            state.head = revision;
            if entry.changes() > 0 {
                let mut entry = entry;
                entry.jobs_json.resize_with(entry.jobs.len(), OnceLock::new);
                state.current.apply(&entry);
                state.head_seq += entry.changes();
                state.held += entry.changes();
                state.entries.push_back(Arc::new(entry));
            }
            let now = state.entries.back().map_or(0, |e| e.at);
            self.evict(&mut state, now);
        }
        self.head.send_replace(revision);
    }

    fn evict(&self, state: &mut LogState, now: UnixMillis) {
        let max_age = self.config.window_age.as_millis() as i64;
        while let Some(oldest) = state.entries.front() {
            let too_many = state.held > self.config.window_changes && state.entries.len() > 1;
            let too_old = oldest.at + max_age < now;
            if !too_many && !too_old {
                break;
            }
            state.held -= oldest.changes();
            state.floor = oldest.revision;
            state.floor_seq += oldest.changes();
            state.entries.pop_front();
        }
    }

    /// Starts a watch: from `from` (changes after it, no snapshot), or
    /// from now (a snapshot, then changes after it).
    pub fn open(&self, from: Option<Revision>) -> Result<Opened, WatchOpenError> {
        let state = self.read();
        let Some(asked) = from else {
            let snapshot = snapshot_of(&state);
            return Ok(Opened {
                snapshot: Some(snapshot),
                cursor: Cursor {
                    revision: state.head,
                    seq: state.head_seq,
                },
            });
        };
        if asked > state.head {
            return Err(WatchOpenError::Ahead {
                asked,
                head: state.head,
            });
        }
        if asked < state.floor {
            return Err(WatchOpenError::OutOfRange {
                asked,
                floor: state.floor,
            });
        }
        // The count of changes up to `asked`: the last entry at or before
        // it, else the floor's.
        let at = state.entries.partition_point(|e| e.revision <= asked);
        let seq = state
            .entries
            .iter()
            .take(at)
            .map(|e| e.changes())
            .sum::<u64>()
            + state.floor_seq;
        Ok(Opened {
            snapshot: None,
            cursor: Cursor {
                revision: asked,
                seq,
            },
        })
    }

    /// Up to `max` entries after `cursor`, or that the window moved past it.
    pub fn read_after(&self, cursor: &Cursor, max: usize) -> Read {
        let state = self.read();
        if cursor.revision < state.floor {
            return Read::Evicted;
        }
        let from = state
            .entries
            .partition_point(|e| e.revision <= cursor.revision);
        Read::Entries(state.entries.range(from..).take(max).cloned().collect())
    }

    /// How many object changes `cursor` is behind the head.
    pub fn lag(&self, cursor: &Cursor) -> u64 {
        self.read().head_seq.saturating_sub(cursor.seq)
    }

    /// A receiver told each time the head moves.
    pub fn heads(&self) -> watch::Receiver<Revision> {
        self.head.subscribe()
    }

    /// Registers a watcher for the gauges; dropping the guard forgets it.
    pub fn register(self: &Arc<Self>, at: &Cursor) -> WatcherGuard {
        let id = self.next_watcher.fetch_add(1, Ordering::Relaxed);
        let position = Arc::new(AtomicU64::new(at.seq));
        self.watchers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, position.clone());
        WatcherGuard {
            log: self.clone(),
            id,
            position,
        }
    }

    /// Open watchers, the largest lag among them (object changes) and how
    /// many watchers were cut off for lagging, for the metrics.
    pub fn stats(&self) -> WatchStats {
        let (head, floor, head_seq) = {
            let state = self.read();
            (state.head, state.floor, state.head_seq)
        };
        let watchers = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        let max_lag = watchers
            .values()
            .map(|p| head_seq.saturating_sub(p.load(Ordering::Relaxed)))
            .max()
            .unwrap_or(0);
        WatchStats {
            head,
            floor,
            watchers: watchers.len(),
            max_lag,
            cut_off: self.cut_off.load(Ordering::Relaxed),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, LogState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, LogState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// The watchers, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchStats {
    /// The latest revision.
    pub head: Revision,
    /// The oldest revision a watch may resume from.
    pub floor: Revision,
    /// Open watchers.
    pub watchers: usize,
    /// The largest lag, in object changes.
    pub max_lag: u64,
    /// Watchers cut off for lagging, since start.
    pub cut_off: u64,
}

/// One open watcher, counted while it lives.
#[derive(Debug)]
pub struct WatcherGuard {
    log: Arc<WatchLog>,
    id: u64,
    position: Arc<AtomicU64>,
}

impl WatcherGuard {
    /// The watcher has read past `cursor`.
    pub fn advanced(&self, cursor: &Cursor) {
        self.position.store(cursor.seq, Ordering::Relaxed);
    }

    /// The watcher was cut off for lagging.
    pub fn cut_off(&self) {
        self.log.cut_off.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        self.log
            .watchers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

impl Cursor {
    /// The cursor just past `entry`, read from `self`.
    pub fn past(&self, entry: &WatchEntry) -> Cursor {
        Cursor {
            revision: entry.revision,
            seq: self.seq + entry.changes(),
        }
    }
}

fn snapshot_of(state: &LogState) -> WatchSnapshot {
    let mut jobs: Vec<&CurrentJob> = state.current.jobs.values().collect();
    jobs.sort_by(|a, b| {
        (a.view.job.created_at, &a.view.job.job_id)
            .cmp(&(b.view.job.created_at, &b.view.job.job_id))
    });
    WatchSnapshot {
        revision: state.head,
        jobs: jobs.iter().map(|j| j.view.clone()).collect(),
        pods: jobs.iter().flat_map(|j| j.pods.iter().cloned()).collect(),
    }
}

#[cfg(test)]
pub(crate) mod tests;
