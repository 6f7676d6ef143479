//! A part's note of which of its things changed since the journal last
//! took them: `None` (the default) without `--state-dir`, so noting is one
//! branch and nothing else.

use std::hash::Hash;

use crate::fixed_hash::HashSet;

/// The keys changed since [`Changes::take`], while journaling is on.
#[derive(Debug)]
pub struct Changes<K>(Option<HashSet<K>>);

impl<K> Default for Changes<K> {
    fn default() -> Self {
        Changes(None)
    }
}

impl<K: Eq + Hash + Clone> Changes<K> {
    /// Starts noting changes.
    pub fn enable(&mut self) {
        self.0.get_or_insert_with(HashSet::default);
    }

    /// Notes that `key` changed (the key is cloned only when journaling).
    pub fn note(&mut self, key: &K) {
        if let Some(set) = &mut self.0 {
            if !set.contains(key) {
                set.insert(key.clone());
            }
        }
    }

    /// The keys noted since the last take, in no particular order.
    pub fn take(&mut self) -> Vec<K> {
        match &mut self.0 {
            Some(set) if !set.is_empty() => set.drain().collect(),
            _ => Vec::new(),
        }
    }
}
