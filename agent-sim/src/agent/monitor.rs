//! `GET /monitor/statistics`: each running executor's resource usage, as
//! a Mesos agent serves it, summed over the executor's process tree (the
//! executor and every descendant, its tasks included) from `/proc`.

use std::collections::HashMap;

use http::{Response, StatusCode};
use serde_json::{json, Value};

use super::processes::Running;
use crate::server::{json as json_response, ResponseBody};

/// One process's figures from `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProcStat {
    pub pid: i32,
    pub ppid: i32,
    pub utime_ticks: u64,
    pub stime_ticks: u64,
    pub threads: u64,
    pub rss_pages: u64,
}

/// Parses `/proc/<pid>/stat` (the command name may hold spaces and
/// parentheses, so fields are counted from the last `)`).
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let pid = text.split_whitespace().next()?.parse().ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid(1) ... utime(11) stime(12) ... num_threads(17) ... rss(21)
    Some(ProcStat {
        pid,
        ppid: f.get(1)?.parse().ok()?,
        utime_ticks: f.get(11)?.parse().ok()?,
        stime_ticks: f.get(12)?.parse().ok()?,
        threads: f.get(17)?.parse().ok()?,
        rss_pages: f.get(21)?.parse().ok()?,
    })
}

/// The processes of the tree rooted at `root`.
pub fn tree(all: &[ProcStat], root: i32) -> Vec<ProcStat> {
    let mut children: HashMap<i32, Vec<&ProcStat>> = HashMap::new();
    for p in all {
        children.entry(p.ppid).or_default().push(p);
    }
    let mut out: Vec<ProcStat> = all.iter().filter(|p| p.pid == root).copied().collect();
    let mut i = 0;
    while i < out.len() {
        if let Some(kids) = children.get(&out[i].pid) {
            out.extend(kids.iter().map(|k| **k));
        }
        i += 1;
    }
    out
}

fn read_all() -> Vec<ProcStat> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|t| parse_stat(&t))
        .collect()
}

/// The statistics of `executors`, in Mesos' JSON form.
pub fn statistics(executors: &[Running]) -> Response<ResponseBody> {
    let all = read_all();
    let ticks = sysconf(nix::unistd::SysconfVar::CLK_TCK).unwrap_or(100) as f64;
    let page = sysconf(nix::unistd::SysconfVar::PAGE_SIZE).unwrap_or(4096) as u64;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let list: Vec<Value> = executors
        .iter()
        .map(|r| {
            let procs = tree(&all, r.pid);
            let user: u64 = procs.iter().map(|p| p.utime_ticks).sum();
            let system: u64 = procs.iter().map(|p| p.stime_ticks).sum();
            let rss: u64 = procs.iter().map(|p| p.rss_pages).sum();
            let threads: u64 = procs.iter().map(|p| p.threads).sum();
            json!({
                "executor_id": r.spec.executor_id,
                "executor_name": "",
                "framework_id": r.spec.framework_id,
                "source": r.spec.executor_id,
                "container_id": r.spec.container_id,
                "statistics": {
                    "timestamp": now,
                    "cpus_user_time_secs": user as f64 / ticks,
                    "cpus_system_time_secs": system as f64 / ticks,
                    "mem_rss_bytes": rss * page,
                    "processes": procs.len(),
                    "threads": threads,
                },
            })
        })
        .collect();
    json_response(StatusCode::OK, &Value::Array(list))
}

fn sysconf(var: nix::unistd::SysconfVar) -> Option<i64> {
    nix::unistd::sysconf(var).ok().flatten()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_even_with_odd_command_names() {
        let line = "42 (a b) c)) S 7 42 42 0 -1 4194560 100 0 0 0 15 5 0 0 20 0 3 0 1000 1000000 250 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(
            (s.pid, s.ppid, s.utime_ticks, s.stime_ticks),
            (42, 7, 15, 5)
        );
        assert_eq!((s.threads, s.rss_pages), (3, 250));
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn a_tree_holds_the_root_and_every_descendant_only() {
        let p = |pid, ppid| ProcStat {
            pid,
            ppid,
            ..Default::default()
        };
        let all = [p(1, 0), p(10, 1), p(11, 10), p(12, 11), p(20, 1)];
        let mut pids: Vec<i32> = tree(&all, 10).iter().map(|p| p.pid).collect();
        pids.sort();
        assert_eq!(pids, [10, 11, 12]);
        assert!(tree(&all, 99).is_empty());
    }
}
