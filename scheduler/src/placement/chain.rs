//! The placement chain, assembled in the order it runs.

use super::filter::Filter;
use super::resources_fit::ResourcesFitFilter;
use super::scorer::{Scorer, SpreadScorer};

/// Filters (all must pass) and weighted scorers.
pub struct Chain {
    /// Feasibility checks, cheapest first.
    pub filters: Vec<Box<dyn Filter>>,
    /// Ranking criteria and their weights.
    pub scorers: Vec<(Box<dyn Scorer>, f64)>,
}

/// Drover's chain today.
pub fn default_chain() -> Chain {
    Chain {
        filters: vec![
            // Resources first: the cheapest check, and the one that rejects
            // most hosts on a busy cluster. Attribute and cross-task
            // constraints (issue 6) come after it.
            Box::new(ResourcesFitFilter),
        ],
        scorers: vec![
            // Spread keeps the load even and finishes batch jobs sooner on
            // simulated clusters; bin-pack arrives as a per-job policy.
            (Box::new(SpreadScorer), 1.0),
        ],
    }
}
