//! Gives memory freed after a burst back to the operating system.
//!
//! A launch of 100,000 tasks briefly holds every pending run, placement's
//! view of them, their TaskInfos, the queued calls and the burst of status
//! updates; once they are stored and sent, what the scheduler keeps is
//! about 1 KiB per task. glibc's allocator keeps the freed pages, though:
//! the scheduler's resident memory stayed at ~1 GB after such a launch, and
//! fell to ~100 MB after one `malloc_trim` (measured with gdb on the
//! release build). Memory is freed by every part of the scheduler (the
//! runner's rounds and batches, the driver draining its acknowledgements,
//! API listings), so [`watch`] samples the process's memory once a second
//! and trims whenever it moved since the last trim, whatever moved it: at
//! most once a second during a burst, once after it, never on a quiet
//! scheduler. Settled after a 100,000-task launch, the scheduler keeps what
//! is in use plus partly used pages (measured: 67 to 84 MB resident
//! anonymous memory, no more given back by a gdb `malloc_trim`).
//!
//! The scheduler binary allocates with mimalloc (see its `main.rs`) and
//! SQLite with glibc, so a trim asks both: mimalloc gives back its free
//! pages on its own after a short delay, but not all of them (settled
//! after a 100,000-task launch: 111 to 142 MB resident without the
//! collection, 98 to 112 MB with it). Where mimalloc is not the global
//! allocator (the library's tests) its collection finds nothing to do.

use std::time::Duration;
use tokio_util::sync::CancellationToken;

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

/// Resident bytes (`/proc/self/statm`), and the bytes glibc's malloc has
/// handed out plus the memory mimalloc holds committed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn usage() -> Option<Usage> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let mut committed = 0usize;
    let none = std::ptr::null_mut();
    // SAFETY: sysconf only reads a constant of the running system;
    // mallinfo2 walks glibc's own lists under its own locks;
    // mi_process_info writes only the out-parameters it is given, and
    // takes null for the ones not wanted.
    let (page, info) = unsafe {
        libmimalloc_sys::mi_process_info(none, none, none, none, none, &mut committed, none, none);
        (libc::sysconf(libc::_SC_PAGESIZE), libc::mallinfo2())
    };
    let glibc = info.uordblks.saturating_add(info.hblkhd);
    Some(Usage {
        resident: pages * u64::try_from(page).ok()?,
        in_use: u64::try_from(glibc.saturating_add(committed)).ok()?,
    })
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn usage() -> Option<Usage> {
    None
}

/// Turns transparent huge pages off for this process (`PR_SET_THP_DISABLE`;
/// the kernel's own setting is left alone). mimalloc asks for huge pages on
/// its arenas (`MADV_HUGEPAGE`), and with the kernel's `madvise` default
/// each first touch of 2 MiB then zeroes (and may first compact) the whole
/// of it: a launch burst touching scattered new memory paid that on every
/// page. Five paired 20,000-task launches, with huge pages and without:
/// peak resident 113-142 MB and 79-87 MB, scheduler CPU 0.53-0.64 s and
/// 0.53-0.57 s, last task RUNNING after 0.27-0.46 s and 0.27-0.30 s.
/// Returns whether the kernel took it.
pub fn disable_transparent_huge_pages() -> bool {
    #[cfg(target_os = "linux")]
    {
        nix::sys::prctl::set_thp_disable(true).is_ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// Returns free heap pages to the operating system: mimalloc's, and
/// glibc's where glibc is the C library.
pub fn release_free_memory() {
    // SAFETY: mi_collect only walks mimalloc's own heaps, under its own
    // locks; it takes no pointer from us.
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own free lists, under its own
    // locks; it takes no pointer from us.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // 256 MiB in 64 KiB blocks (heap, not mmap), touched: resident,
        // then freed. The figures are the whole process's, and the other
        // tests of this binary allocate and free beside this one (a CI run
        // once saw only 82 MiB of growth while another test freed), so a
        // try that a neighbour disturbed is made again; a `usage` that
        // does not see the allocation fails every try.
        let mut tries = Vec::new();
        for _ in 0..5 {
            let before = usage().unwrap();
            let blocks: Vec<Vec<u8>> = (0..4096).map(|_| vec![1u8; 64 * 1024]).collect();
            let during = usage().unwrap();
            drop(blocks);
            let after = usage().unwrap();
            let seen = during.in_use >= before.in_use + 200 * MB
                && during.resident >= before.resident + 200 * MB
                && after.in_use + 200 * MB <= during.in_use;
            if seen {
                return;
            }
            tries.push((before, during, after));
        }
        panic!("the allocation was never seen: {tries:#?}");
    }
}
