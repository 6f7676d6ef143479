//! What a placement round knows beyond single hosts: every zone of the
//! cluster, and how many instances of each job each zone already holds
//! (live runs plus this round's assignments). Zone balance needs it; the
//! caller builds it from the store and the agents it has seen.

use std::collections::{BTreeMap, BTreeSet};

/// The cluster-wide tally of a round.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Round {
    /// Every zone known, offering this round or not.
    pub zones: BTreeSet<String>,
    /// Instances per (job, zone).
    pub zone_counts: BTreeMap<(String, String), u32>,
}

impl Round {
    /// Instances of `job` in `zone`.
    pub fn count(&self, job: &str, zone: &str) -> u32 {
        self.zone_counts
            .get(&(job.to_owned(), zone.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// The least-loaded zone of `job` and its count.
    pub fn emptiest_zone(&self, job: &str) -> Option<(&str, u32)> {
        self.zones
            .iter()
            .map(|z| (z.as_str(), self.count(job, z)))
            .min_by_key(|(_, n)| *n)
    }

    /// Notes one more instance of `job` in `zone`.
    pub fn add(&mut self, job: &str, zone: &str) {
        self.zones.insert(zone.to_owned());
        *self
            .zone_counts
            .entry((job.to_owned(), zone.to_owned()))
            .or_default() += 1;
    }
}
