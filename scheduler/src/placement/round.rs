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
    /// Instances per job, then per zone: nested so that zone balance, which
    /// asks for every host a task looks at, looks up with borrowed keys
    /// and never allocates.
    pub zone_counts: BTreeMap<String, BTreeMap<String, u32>>,
}

impl Round {
    /// Instances of `job` in `zone`.
    pub fn count(&self, job: &str, zone: &str) -> u32 {
        self.zone_counts
            .get(job)
            .and_then(|zones| zones.get(zone))
            .copied()
            .unwrap_or(0)
    }

    /// The least-loaded zone of `job` and its count.
    pub fn emptiest_zone(&self, job: &str) -> Option<(&str, u32)> {
        let counts = self.zone_counts.get(job);
        self.zones
            .iter()
            .map(|z| {
                let n = counts.and_then(|c| c.get(z)).copied().unwrap_or(0);
                (z.as_str(), n)
            })
            .min_by_key(|(_, n)| *n)
    }

    /// Notes one more instance of `job` in `zone`.
    pub fn add(&mut self, job: &str, zone: &str) {
        self.note_zone(zone);
        let zones = match self.zone_counts.get_mut(job) {
            Some(zones) => zones,
            None => self.zone_counts.entry(job.to_owned()).or_default(),
        };
        match zones.get_mut(zone) {
            Some(n) => *n += 1,
            None => {
                zones.insert(zone.to_owned(), 1);
            }
        }
    }

    /// Knows `zone`, allocating only the first time it is seen.
    pub fn note_zone(&mut self, zone: &str) {
        if !self.zones.contains(zone) {
            self.zones.insert(zone.to_owned());
        }
    }
}
