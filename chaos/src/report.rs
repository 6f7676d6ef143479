//! The summary a run prints, and whether it passed. Pure: the run fills
//! a [`Summary`], this writes it.
//!
//! A run fails when any of the four counts (`duplicated`, `re_run`,
//! `lost`, `acked_not_stored`) is not 0, and also when part of the dose
//! could not be carried out (a fault found no leader to hit, a job could
//! not be created): a dose that did not happen proves nothing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::leadership::percentile;

/// What one run found.
#[derive(Debug, Default)]
pub struct Summary {
    pub dose: String,
    pub seed: u64,
    pub instances: u64,
    pub agents: usize,
    pub real_agents: usize,
    pub masters: usize,
    pub replicas: usize,
    pub master_state_dir: bool,
    /// Faults carried out, by kind (the schedule's wording).
    pub faults_done: BTreeMap<String, u32>,
    /// Faults or jobs that could not be carried out.
    pub not_done: Vec<String>,
    pub duplicated: BTreeMap<String, String>,
    pub re_run: BTreeMap<String, String>,
    pub lost: BTreeMap<String, String>,
    pub acked_not_stored: BTreeMap<String, String>,
    pub leaderless: Duration,
    /// Leader SIGKILL → a working leader again.
    pub failovers: Vec<Duration>,
    /// The same for the other faults on the leader (pause, partition).
    pub other_failovers: Vec<Duration>,
    pub audit_rounds: u64,
    /// (acknowledged terminal updates checked, runs seen, instances seen
    /// finished): what the zeros stand on.
    pub coverage: (usize, usize, usize),
    /// The masters' call logs: (calls, SUBSCRIBEs, ACKNOWLEDGEs).
    pub calls: (u64, u64, u64),
    /// Calls on a stream after a newer one began, by type (see `calls`).
    pub calls_from_replaced_streams: BTreeMap<String, u64>,
    pub elapsed: Duration,
    pub settled_after: Option<Duration>,
    /// Per process: restarts and exits.
    pub processes: Vec<(String, u32, BTreeMap<String, u32>)>,
}

impl Summary {
    /// Whether the run passed.
    pub fn passed(&self) -> bool {
        self.duplicated.is_empty()
            && self.re_run.is_empty()
            && self.lost.is_empty()
            && self.acked_not_stored.is_empty()
            && self.not_done.is_empty()
    }

    /// The summary as printed.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let secs = |d: Duration| format!("{:.2}s", d.as_secs_f64());
        let pct = |s: &[Duration], p| percentile(s, p).map_or("-".to_owned(), secs);
        let _ = writeln!(out, "== drover-chaos summary ==");
        let _ = writeln!(
            out,
            "dose {} seed {}: {} instances on {} simulated + {} real agents, {} masters{}, {} replicas; {} elapsed{}",
            self.dose,
            self.seed,
            self.instances,
            self.agents,
            self.real_agents,
            self.masters,
            if self.master_state_dir { " (--state-dir)" } else { "" },
            self.replicas,
            secs(self.elapsed),
            self.settled_after
                .map(|d| format!(", settled {} after the last fault", secs(d)))
                .unwrap_or_else(|| ", did NOT settle".to_owned()),
        );
        let faults: Vec<String> = self
            .faults_done
            .iter()
            .map(|(kind, n)| format!("{n} x {kind}"))
            .collect();
        let _ = writeln!(out, "faults: {}", faults.join(", "));
        for (name, found) in [
            ("duplicated", &self.duplicated),
            ("re_run", &self.re_run),
            ("lost", &self.lost),
            ("acked_not_stored", &self.acked_not_stored),
        ] {
            let _ = writeln!(out, "{name}: {}", found.len());
            for (what, detail) in found.iter().take(10) {
                let _ = writeln!(out, "  {what}: {detail}");
            }
        }
        let _ = writeln!(
            out,
            "leaderless_seconds: {:.1}",
            self.leaderless.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "failover (leader SIGKILL -> new leader subscribed and launching): p50 {} p99 {} max {} (n={})",
            pct(&self.failovers, 50),
            pct(&self.failovers, 99),
            pct(&self.failovers, 100),
            self.failovers.len()
        );
        let _ = writeln!(
            out,
            "failover (leader paused or partitioned -> another leader working): p50 {} p99 {} (n={})",
            pct(&self.other_failovers, 50),
            pct(&self.other_failovers, 99),
            self.other_failovers.len()
        );
        let (acked, runs, finished) = self.coverage;
        let _ = writeln!(
            out,
            "checked: {} audit rounds, {runs} runs seen launched, {finished} instances seen finished, {acked} acknowledged terminal updates against the store",
            self.audit_rounds
        );
        let (calls, subscribes, acks) = self.calls;
        let replaced: Vec<String> = self
            .calls_from_replaced_streams
            .iter()
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect();
        let _ = writeln!(
            out,
            "call logs: {calls} calls, {subscribes} SUBSCRIBEs, {acks} ACKNOWLEDGEs; after a newer SUBSCRIBE's stream began: {}",
            if replaced.is_empty() { "none".to_owned() } else { replaced.join(", ") }
        );
        for (name, restarts, exits) in &self.processes {
            let exits: Vec<String> = exits
                .iter()
                .map(|(how, n)| format!("{n} x {how}"))
                .collect();
            let _ = writeln!(
                out,
                "  {name}: {restarts} restarts; exits: {}",
                if exits.is_empty() {
                    "none".to_owned()
                } else {
                    exits.join(", ")
                }
            );
        }
        for line in &self.not_done {
            let _ = writeln!(out, "not carried out: {line}");
        }
        let _ = writeln!(
            out,
            "result: {}",
            if self.passed() { "PASS" } else { "FAIL" }
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_run_passes_and_prints_the_four_counts_as_zero() {
        let summary = Summary {
            failovers: vec![Duration::from_secs(2), Duration::from_secs(4)],
            ..Summary::default()
        };
        assert!(summary.passed());
        let text = summary.render();
        for line in [
            "duplicated: 0",
            "re_run: 0",
            "lost: 0",
            "acked_not_stored: 0",
            "result: PASS",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert!(text.contains("p50 2.00s p99 4.00s"), "{text}");
    }

    #[test]
    fn one_duplicate_or_one_undone_fault_fails_the_run() {
        let mut summary = Summary::default();
        summary
            .duplicated
            .insert("svc-1".into(), "svc-1-0, svc-1-1".into());
        assert!(!summary.passed());
        assert!(summary
            .render()
            .contains("duplicated: 1\n  svc-1: svc-1-0, svc-1-1"));
        let summary = Summary {
            not_done: vec!["no working leader".into()],
            ..Summary::default()
        };
        assert!(!summary.passed());
    }
}
