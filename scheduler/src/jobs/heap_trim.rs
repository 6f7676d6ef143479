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

use std::time::{Duration, Instant};

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
}
