//! Hash maps and sets whose iteration order follows from the inputs alone.
//!
//! The master must replay exactly: the same seed and the same inputs give
//! the same effects in the same order, in any process (the whole-system
//! simulation replays a failing seed that way). std's `HashMap` seeds every
//! map at random, so wherever the master iterates one (the frameworks an
//! allocation cycle weighs, the tasks an agent loses, the answers to an
//! implicit reconciliation, `/state`), two runs of one seed differ. These
//! maps hash with foldhash's fixed seed instead: the same insertions and
//! removals give the same order. foldhash is also several times faster
//! than std's SipHash on the short string keys used here. It gives up
//! SipHash's resistance to chosen-key collisions, which only a framework
//! attacking its own test simulator could exploit.

/// A `HashMap` with a fixed hasher; make one with `HashMap::default()`.
pub type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;

/// A `HashSet` with a fixed hasher; make one with `HashSet::default()`.
pub type HashSet<T> = std::collections::HashSet<T, foldhash::fast::FixedState>;
