//! Which hosts a task looks at, and in what order: Nomad's `ShuffleNodes`
//! and `LimitIterator`. Each task walks every host in a seeded
//! pseudo-random order and stops once it has scored `limit` feasible
//! ones, so a decision costs about `limit` host checks on a roomy cluster
//! instead of one per agent. Hosts that fail a filter do not count, so a
//! task that fits nowhere has walked every host: a task is never reported
//! unplaced while a feasible host exists.

/// How many feasible hosts each task scores, and the seed of its walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlacementConfig {
    /// Feasible hosts scored per task before the best is taken
    /// ([`DEFAULT_LIMIT`]); `usize::MAX` scores every feasible host.
    pub limit: usize,
    /// Feasible hosts a task with preferences scores at most while none it
    /// has scored meets them all ([`DEFAULT_PREFER_LIMIT`]); never below
    /// `limit`. The walk stops at `limit` once one does.
    pub prefer_limit: usize,
    /// Seeds every task's walk (mixed with the task's key), so the same
    /// inputs give the same placement. Callers log it with the round.
    pub seed: u64,
}

/// 32 feasible hosts: Nomad's default limit is 2 (power of two choices)
/// and grows to log2(nodes) with spread; 32 is ample for both at 10,000
/// agents (log2 = 13.3) while a decision stays a few tens of microseconds.
pub const DEFAULT_LIMIT: usize = 32;

/// 256 feasible hosts: a preferred host one in a hundred (a rare
/// attribute, the one empty zone of three on a busy cluster) is among
/// them with 92% odds, while a task whose preference no host meets still
/// costs a bounded walk, not one over 10,000 agents.
pub const DEFAULT_PREFER_LIMIT: usize = 256;

/// The seed used unless the caller picks one.
pub const DEFAULT_SEED: u64 = 0x5EED_D20E_u64;

impl Default for PlacementConfig {
    fn default() -> Self {
        PlacementConfig {
            limit: DEFAULT_LIMIT,
            prefer_limit: DEFAULT_PREFER_LIMIT,
            seed: DEFAULT_SEED,
        }
    }
}

/// Every index of `0..n` once, in a seeded order: `start`, `start +
/// stride`, ... modulo `n`, with `stride` coprime to `n`. A true shuffle
/// per task would cost O(n) before the first host is looked at; this walk
/// costs O(1) to set up and still spreads consecutive tasks' first
/// choices across the cluster (ties go to the first visited host).
#[derive(Debug, Clone)]
pub struct Walk {
    n: usize,
    next: usize,
    stride: usize,
    left: usize,
}

impl Walk {
    /// The walk of task `key` over `n` hosts.
    pub fn new(n: usize, seed: u64, key: usize) -> Self {
        if n == 0 {
            return Walk {
                n,
                next: 0,
                stride: 0,
                left: 0,
            };
        }
        let a = splitmix64(seed ^ (key as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let b = splitmix64(a);
        let start = (a % n as u64) as usize;
        let mut stride = (b % n as u64) as usize;
        // Coprime strides are common (for 10,000, 40% of candidates), so
        // this loop ends in a few steps; 1 is coprime to every n.
        while gcd(stride, n) != 1 {
            stride = if stride + 1 >= n { 1 } else { stride + 1 };
        }
        Walk {
            n,
            next: start,
            stride,
            left: n,
        }
    }
}

impl Iterator for Walk {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let here = self.next;
        // Both are below n, so the sum is below 2n and cannot overflow.
        let step = self.next + self.stride;
        self.next = if step >= self.n { step - self.n } else { step };
        Some(here)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Sebastiano Vigna's splitmix64: a cheap, well-mixed hash of the seed.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_walk_visits_every_host_once_and_depends_on_seed_and_key() {
        for n in 0..60 {
            for key in 0..8 {
                let mut seen: Vec<_> = Walk::new(n, DEFAULT_SEED, key).collect();
                seen.sort_unstable();
                assert_eq!(seen, (0..n).collect::<Vec<_>>(), "n={n} key={key}");
            }
        }
        let first = |seed, key| Walk::new(10_000, seed, key).next().unwrap();
        let starts: std::collections::BTreeSet<_> = (0..100).map(|k| first(1, k)).collect();
        assert!(starts.len() > 90, "keys start in different places");
        assert_eq!(first(1, 7), first(1, 7));
        assert_ne!(first(1, 7), first(2, 7));
    }
}
