//! The process' own families (`process_*`, the names every Prometheus
//! client library exports, so dashboards built for them work): resident
//! and virtual memory, CPU seconds, open and most file descriptors, and
//! the start time, read from `/proc/self` when scraped.
//!
//! Our own collector, because `prometheus-client` has none (the older
//! `prometheus` crate's `process` feature is not available to it), and a
//! scrape-time read is a few small files, cheaper than keeping anything
//! up to date. Parsing is pure ([`ProcStat::parse`]) and tested; a file
//! that cannot be read leaves its families out rather than failing the
//! scrape.

use super::encode_one;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Reads `/proc/self` when scraped.
#[derive(Debug)]
pub struct ProcessCollector;

/// What `/proc/<pid>/stat` says, in its own units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// User-mode CPU time, in clock ticks.
    pub utime: u64,
    /// Kernel-mode CPU time, in clock ticks.
    pub stime: u64,
    /// Start time after boot, in clock ticks.
    pub starttime: u64,
    /// Virtual memory, in bytes.
    pub vsize: u64,
    /// Resident set, in pages.
    pub rss: u64,
}

impl ProcStat {
    /// Parses the one line of `/proc/<pid>/stat`. The command name (field
    /// 2) is in parentheses and may hold spaces and parentheses itself, so
    /// fields are counted from the last `)`.
    pub fn parse(line: &str) -> Option<ProcStat> {
        let after = &line[line.rfind(')')? + 1..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        // `fields[0]` is field 3 (state); field n is `fields[n - 3]`.
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        Some(ProcStat {
            utime: field(14)?,
            stime: field(15)?,
            starttime: field(22)?,
            vsize: field(23)?,
            rss: field(24)?,
        })
    }
}

/// The boot time (seconds since the epoch) from `/proc/stat`.
pub fn boot_time(proc_stat: &str) -> Option<u64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// The soft limit of open files from `/proc/<pid>/limits`.
pub fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: sysconf only reads a constant of the running system.
    let value = unsafe { libc::sysconf(name) };
    u64::try_from(value).ok().filter(|v| *v > 0)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let e = &mut encoder;
        let ticks = sysconf(libc::_SC_CLK_TCK).unwrap_or(100) as f64;
        let page = sysconf(libc::_SC_PAGESIZE).unwrap_or(4096);
        let stat = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| ProcStat::parse(&s));
        if let Some(stat) = stat {
            let cpu = (stat.utime + stat.stime) as f64 / ticks;
            encode_one(
                e,
                "process_cpu_seconds",
                "User and system CPU time spent, in seconds",
                &ConstCounter::new(cpu),
            )?;
            encode_one(
                e,
                "process_resident_memory_bytes",
                "Resident memory size, in bytes",
                &ConstGauge::new(stat.rss.saturating_mul(page) as i64),
            )?;
            encode_one(
                e,
                "process_virtual_memory_bytes",
                "Virtual memory size, in bytes",
                &ConstGauge::new(stat.vsize as i64),
            )?;
            let boot = std::fs::read_to_string("/proc/stat")
                .ok()
                .and_then(|s| boot_time(&s));
            if let Some(boot) = boot {
                let start = boot as f64 + stat.starttime as f64 / ticks;
                encode_one(
                    e,
                    "process_start_time_seconds",
                    "Start time of the process since the Unix epoch, in seconds",
                    &ConstGauge::new(start),
                )?;
            }
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            // The directory's own descriptor, open while it is read, is
            // one of them: counted out.
            let open = fds.count().saturating_sub(1);
            encode_one(
                e,
                "process_open_fds",
                "Open file descriptors",
                &ConstGauge::new(open as i64),
            )?;
        }
        let most = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|s| max_open_files(&s));
        if let Some(most) = most {
            encode_one(
                e,
                "process_max_fds",
                "The most file descriptors the process may open",
                &ConstGauge::new(most as i64),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_past_a_command_with_spaces_and_parentheses() {
        let line = "4242 (drover (x) y) S 1 4242 4242 0 -1 4194560 1200 0 0 0 \
            250 75 0 0 20 0 9 0 123456 987654321 5120 18446744073709551615 \
            1 1 0 0 0 0 0 4096 17920 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(
            ProcStat::parse(line),
            Some(ProcStat {
                utime: 250,
                stime: 75,
                starttime: 123456,
                vsize: 987654321,
                rss: 5120,
            })
        );
        assert_eq!(ProcStat::parse("4242 (cut) S 1 2"), None);
        assert_eq!(ProcStat::parse(""), None);
    }

    #[test]
    fn reads_boot_time_and_the_open_files_limit() {
        assert_eq!(
            boot_time("cpu  1 2 3\nintr 5\nbtime 1765000000\nprocesses 9\n"),
            Some(1_765_000_000)
        );
        assert_eq!(boot_time("cpu 1\n"), None);
        let limits =
            "Limit                     Soft Limit           Hard Limit           Units     \n\
            Max open files            1048576              1048576              files     \n";
        assert_eq!(max_open_files(limits), Some(1_048_576));
        assert_eq!(
            max_open_files("Max open files            unlimited   unlimited  files\n"),
            None
        );
    }

    #[test]
    fn this_process_reads_itself() {
        let stat = ProcStat::parse(&std::fs::read_to_string("/proc/self/stat").unwrap()).unwrap();
        assert!(stat.rss > 0 && stat.vsize > 0);
        assert!(boot_time(&std::fs::read_to_string("/proc/stat").unwrap()).is_some());
    }
}
