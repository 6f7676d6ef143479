//! Gives memory freed after a burst back to the operating system.
//!
//! A launch of 100,000 tasks briefly holds every pending run, placement's
//! view of them, their TaskInfos, the queued calls and the burst of status
//! updates; once they are stored and sent, what the scheduler keeps is
//! about 1 KiB per task. glibc's allocator keeps the freed pages, though:
//! the scheduler's resident memory stayed at ~1 GB after such a launch, and
//! fell to ~100 MB after one `malloc_trim` (measured with gdb on the
//! release build). So work (events handled, tasks placed) arms a timer, and
//! when it fires the runner trims if enough work was done since the last
//! trim: about once per `settle` during a burst, once more a `settle` after
//! the last one (what the burst's tail freed: queued calls, the last
//! batches), and never on a quiet scheduler.
//!
//! The runner only sees its own work, though: memory freed after its last
//! trim (a placement round that loaded every live run and placed nothing,
//! the driver draining its acknowledgements, an API listing) stayed
//! resident, 0 to 150 MB after a 100,000-task launch depending on timing
//! (gdb `malloc_trim` on the settled process gave it back). So [`watch`]
//! also samples the process's memory once a second and trims whenever it
//! moved since the last trim, whatever moved it: the settled scheduler then
//! keeps what is in use plus partly used pages (measured: 67 to 84 MB
//! resident anonymous memory, no more given back by a gdb `malloc_trim`).

use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// When to trim, as data: the runner reports work, sleeps until
/// [`HeapTrim::next_deadline`] and then calls [`HeapTrim::on_tick`].
#[derive(Debug)]
pub struct HeapTrim {
    work: u64,
    due: Option<Instant>,
    /// The last tick trimmed, so the next one trims whatever the work.
    trailing: bool,
    min_work: u64,
    settle: Duration,
}

impl HeapTrim {
    /// Trims `settle` after work starts, if `min_work` units were done.
    pub fn new(min_work: u64, settle: Duration) -> Self {
        HeapTrim {
            work: 0,
            due: None,
            trailing: false,
            min_work,
            settle,
        }
    }

    /// `units` of work were done at `now`.
    pub fn on_work(&mut self, units: u64, now: Instant) {
        if units == 0 {
            return;
        }
        self.work = self.work.saturating_add(units);
        if self.due.is_none() {
            self.due = Some(now + self.settle);
        }
    }

    /// When [`HeapTrim::on_tick`] is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.due
    }

    /// Whether to trim now; the work count restarts when it says yes.
    pub fn on_tick(&mut self, now: Instant) -> bool {
        if self.due.is_none_or(|due| now < due) {
            return false;
        }
        self.due = None;
        if self.work >= self.min_work {
            self.work = 0;
            self.trailing = true;
            self.due = Some(now + self.settle);
            return true;
        }
        std::mem::take(&mut self.trailing)
    }
}

/// A change of resident or in-use memory since the last trim smaller than
/// this is quiet: a settled scheduler's own heartbeats and API calls.
pub const QUIET_BYTES: u64 = 1 << 20;

/// What [`watch`] reads each second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Resident bytes of the process.
    pub resident: u64,
    /// Bytes malloc has handed out and not had back.
    pub in_use: u64,
}

/// When [`watch`] trims, as data: whenever memory (resident or in use)
/// moved by [`QUIET_BYTES`] since the last trim, so at most once a
/// sample while it moves and never on a settled scheduler. Not on growth
/// of idle memory (resident, not in use): freeing the last objects of
/// partly used pages makes whole pages trimmable while idle bytes grow by
/// those objects only, and a watcher that waited for 16 MiB of idle growth
/// left 50 to 100 MB behind after a launch.
#[derive(Debug, Default)]
pub struct MoveTrim {
    /// What the last trim left (or the first sample).
    since: Option<Usage>,
}

impl MoveTrim {
    /// Memory is `usage` now: whether to trim.
    pub fn on_sample(&mut self, usage: Usage) -> bool {
        let since = *self.since.get_or_insert(usage);
        since.resident.abs_diff(usage.resident) >= QUIET_BYTES
            || since.in_use.abs_diff(usage.in_use) >= QUIET_BYTES
    }

    /// A trim left `usage`: movement counts from here.
    pub fn on_trimmed(&mut self, usage: Usage) {
        self.since = Some(usage);
    }
}

/// Samples memory every `every` and trims as [`MoveTrim`] says, until
/// `shutdown` (or at once where it cannot be measured: not Linux/glibc).
pub async fn watch(every: Duration, shutdown: CancellationToken) {
    let mut trim = MoveTrim::default();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(usage) = usage() else {
            return;
        };
        if trim.on_sample(usage) {
            tokio::task::block_in_place(release_free_memory);
            if let Some(after) = self::usage() {
                trim.on_trimmed(after);
            }
        }
    }
}

/// Resident bytes (`/proc/self/statm`) and malloc's bytes in use.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn usage() -> Option<Usage> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a constant of the running system;
    // mallinfo2 walks the allocator's own lists under its own locks.
    let (page, info) = unsafe { (libc::sysconf(libc::_SC_PAGESIZE), libc::mallinfo2()) };
    Some(Usage {
        resident: pages * u64::try_from(page).ok()?,
        in_use: u64::try_from(info.uordblks.saturating_add(info.hblkhd)).ok()?,
    })
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn usage() -> Option<Usage> {
    None
}

/// Returns free heap pages to the operating system (glibc only; a no-op
/// elsewhere).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists, under
    // its own locks; it takes no pointer from us.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_after_enough_work_once_the_timer_fires_and_once_after() {
        let t0 = Instant::now();
        let settle = Duration::from_secs(1);
        let at = |n: u32| t0 + settle * n;
        let mut trim = HeapTrim::new(100, settle);
        assert_eq!(trim.next_deadline(), None, "a quiet scheduler never trims");
        trim.on_work(10, t0);
        assert_eq!(trim.next_deadline(), Some(at(1)));
        assert!(!trim.on_tick(at(1)), "too little work");
        assert_eq!(trim.next_deadline(), None);
        trim.on_work(60, at(2));
        trim.on_work(60, at(2) + settle / 2);
        assert_eq!(trim.next_deadline(), Some(at(3)), "not pushed back");
        assert!(!trim.on_tick(at(3) - settle / 10), "not yet");
        assert!(trim.on_tick(at(3)), "the small amounts added up");
        assert_eq!(trim.next_deadline(), Some(at(4)), "a trailing trim");
        trim.on_work(5, at(3) + settle / 2);
        assert!(trim.on_tick(at(4)), "the tail of the burst");
        assert_eq!(trim.next_deadline(), None);
        trim.on_work(5, at(5));
        assert!(!trim.on_tick(at(6)), "only one trailing trim");
    }

    #[test]
    fn the_watcher_trims_when_memory_moved_since_the_last_trim() {
        const MB: u64 = 1 << 20;
        let at = |resident: u64, in_use: u64| Usage {
            resident: resident * MB,
            in_use: in_use * MB,
        };
        let mut trim = MoveTrim::default();
        assert!(!trim.on_sample(at(50, 40)), "the first sample");
        assert!(!trim.on_sample(at(50, 40)), "settled: nothing to give back");
        assert!(trim.on_sample(at(300, 250)), "a burst");
        trim.on_trimmed(at(290, 250));
        assert!(trim.on_sample(at(290, 60)), "freed");
        trim.on_trimmed(at(80, 60));
        assert!(
            !trim.on_sample(at(80, 60)),
            "the trim's own drop is no movement"
        );
        assert!(!trim.on_sample(at(80, 60)), "settled: never again");
        assert!(
            trim.on_sample(at(180, 60)),
            "a transient (alloc and free between samples)"
        );
        trim.on_trimmed(at(80, 60));
        assert!(!trim.on_sample(at(80, 60)));
        assert!(!trim.on_sample(at(80, 60)), "slow drift adds up...");
        assert!(trim.on_sample(at(81, 61)), "...to a trim");
    }

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn usage_sees_memory_in_use_and_resident() {
        const MB: u64 = 1 << 20;
        let before = usage().unwrap();
        // 256 MiB in 64 KiB blocks (heap, not mmap), touched: resident. The
        // figures are the whole process's and other tests run beside this
        // one, so the margins are far above what they allocate.
        let blocks: Vec<Vec<u8>> = (0..4096).map(|_| vec![1u8; 64 * 1024]).collect();
        let during = usage().unwrap();
        assert!(
            during.in_use >= before.in_use + 200 * MB,
            "{before:?} {during:?}"
        );
        assert!(
            during.resident >= before.resident + 200 * MB,
            "{before:?} {during:?}"
        );
        drop(blocks);
        let after = usage().unwrap();
        assert!(
            after.in_use + 200 * MB <= during.in_use,
            "{during:?} {after:?}"
        );
    }
}
