//! The placement chain, assembled in the order it runs. Filters run
//! cheapest first, as Nomad's stack does: per-host arithmetic, then
//! attribute and label matching, then the constraints that look across
//! hosts and the round. Preferences (soft constraints) rank the feasible
//! hosts before the scorers do; they never reject one.

use super::binpack::BinPackScorer;
use super::exclusive_host::{ExclusiveHostFilter, ExclusiveHostPreference};
use super::filter::Filter;
use super::label_constraint::{LabelConstraintFilter, SoftConstraintPreference};
use super::ports_fit::PortsFitFilter;
use super::preference::Preference;
use super::resources_fit::ResourcesFitFilter;
use super::sample::PlacementConfig;
use super::scorer::Scorer;
use super::spread::SpreadScorer;
use super::unique_host::{UniqueHostFilter, UniqueHostPreference};
use super::zone_balance::{ZoneBalanceFilter, ZoneBalancePreference};

/// Filters (all must pass), preferences and weighted scorers.
pub struct Chain {
    /// Feasibility checks, cheapest first.
    pub filters: Vec<Box<dyn Filter>>,
    /// Soft constraints, most important first (at most
    /// [`super::preference::MAX_PREFERENCES`]): a feasible host's penalties
    /// rank it before its score does.
    pub preferences: Vec<Box<dyn Preference>>,
    /// Ranking criteria and their weights.
    pub scorers: Vec<(Box<dyn Scorer>, f64)>,
    /// How many feasible hosts a task scores, and the seed of its walk.
    pub config: PlacementConfig,
}

/// Drover's chain.
pub fn default_chain() -> Chain {
    Chain {
        filters: vec![
            // Resources first: four comparisons, and the check that rejects
            // most hosts on a busy cluster.
            Box::new(ResourcesFitFilter),
            // Ports next: a scan of a few ranges.
            Box::new(PortsFitFilter),
            // Peloton constraints: attribute lookups and a walk over the
            // host's pods for POD labels.
            Box::new(LabelConstraintFilter),
            // Cross-task constraints: they read the pods on the host...
            Box::new(UniqueHostFilter),
            Box::new(ExclusiveHostFilter),
            // ...and the whole round's zone tally, so they come last.
            Box::new(ZoneBalanceFilter),
        ],
        preferences: vec![
            // The hosts the user named (attributes, pod labels) first: the
            // most specific wish.
            Box::new(SoftConstraintPreference),
            // Then what the task asks of its neighbours: alone on the
            // host...
            Box::new(ExclusiveHostPreference),
            // ...or at least no sibling there.
            Box::new(UniqueHostPreference),
            // Zone balance last: graded (instances beyond the emptiest
            // zone), it orders whatever ties the others leave, and a zone
            // with no room must not outrank the rules above.
            Box::new(ZoneBalancePreference),
        ],
        scorers: vec![
            // Exactly one of these applies to a task (its strategy); the
            // other scores every host 0 and so does not change the order.
            (Box::new(SpreadScorer), 1.0),
            (Box::new(BinPackScorer), 1.0),
        ],
        // The best of the first 32 feasible hosts of a seeded walk, as
        // Nomad's LimitIterator: a decision costs about 32 host checks, not
        // one per agent.
        config: PlacementConfig::default(),
    }
}
