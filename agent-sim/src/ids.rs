//! Identifiers: the ids a Mesos master mints (reference 2.6), and the keys
//! the master's parts and the agents share, kept here below both so
//! neither imports the other for them.
//!
//! Minted ids: a random master id, `<master>-0000` framework ids,
//! `<master>-S<n>` agent ids, `<master>-O<n>` offer ids, and random v4
//! UUIDs for stream ids, container ids and status update uuids. Randomness
//! comes from a seeded generator so a `--seed` run is deterministic.

use rand::{rngs::SmallRng, RngCore, SeedableRng};

/// A stream the driver numbered: a framework's subscription or an
/// executor's.
pub type ConnId = u64;

/// An agent's place in the fleet. Agents are never removed, so an index
/// stays valid for the master's life.
pub type AgentIndex = usize;

/// A task across frameworks: (framework id, task id).
pub type TaskKey = (String, String);

/// An executor of a real agent: its agent, framework id and executor id.
pub type ExecutorKey = (AgentIndex, String, String);

/// Mints ids; owned by the master state machine.
#[derive(Debug)]
pub struct IdGen {
    rng: SmallRng,
    master_id: String,
    next_framework: u64,
    next_agent: u64,
    next_offer: u64,
}

impl IdGen {
    /// A generator whose every id follows from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let master_id = random_uuid(&mut rng).to_string();
        IdGen {
            rng,
            master_id,
            next_framework: 0,
            next_agent: 0,
            next_offer: 0,
        }
    }

    /// The master's own id.
    pub fn master_id(&self) -> &str {
        &self.master_id
    }

    /// A new framework id, `<master-id>-0000`.
    pub fn framework(&mut self) -> String {
        let id = format!("{}-{:04}", self.master_id, self.next_framework);
        self.next_framework += 1;
        id
    }

    /// A new agent id, `<master-id>-S<n>`.
    pub fn agent(&mut self) -> String {
        let id = format!("{}-S{}", self.master_id, self.next_agent);
        self.next_agent += 1;
        id
    }

    /// A new offer id, `<master-id>-O<n>`.
    pub fn offer(&mut self) -> String {
        let id = format!("{}-O{}", self.master_id, self.next_offer);
        self.next_offer += 1;
        id
    }

    /// A random version-4 UUID.
    pub fn uuid(&mut self) -> uuid::Uuid {
        random_uuid(&mut self.rng)
    }

    /// A draw in `[0, 1)`, for probabilistic faults.
    pub fn unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn random_uuid(rng: &mut SmallRng) -> uuid::Uuid {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_a_real_masters_and_follow_the_seed() {
        let mut a = IdGen::new(7);
        let b = IdGen::new(7);
        assert_eq!(a.master_id(), b.master_id());
        assert_eq!(a.master_id().len(), 36);
        assert_eq!(a.framework(), format!("{}-0000", b.master_id()));
        assert_eq!(a.agent(), format!("{}-S0", a.master_id()));
        assert_eq!(a.offer(), format!("{}-O0", a.master_id()));
        assert_eq!(a.offer(), format!("{}-O1", a.master_id()));
        assert_eq!(a.uuid().get_version_num(), 4);
    }
}
