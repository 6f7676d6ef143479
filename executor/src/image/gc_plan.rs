//! Which cached layers a collection removes. Pure: the cache lists its
//! layers and leases, this decides, the cache deletes.
//!
//! A leased layer (one a live container uses) is never removed. An explicit
//! collection removes every unleased layer; the size bound removes unleased
//! layers least recently used first until the cache fits, and stops there.

use std::collections::HashSet;
use std::time::SystemTime;

/// A layer in the cache, as the collector sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CachedLayer {
    /// Its digest (the cache key).
    pub digest: String,
    /// The bytes it takes on disk.
    pub size_bytes: u64,
    /// When a prepare last used it.
    pub last_used: SystemTime,
}

/// How much a collection removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GcBound {
    /// Every unleased layer (`ImageStore::gc`).
    Unused,
    /// Unleased layers, oldest use first, until the cache holds at most this many bytes.
    MaxBytes(u64),
}

/// The digests to remove, in removal order.
pub(crate) fn plan(
    layers: &[CachedLayer],
    leased: &HashSet<String>,
    bound: GcBound,
) -> Vec<String> {
    let mut unleased: Vec<&CachedLayer> = layers
        .iter()
        .filter(|layer| !leased.contains(&layer.digest))
        .collect();
    match bound {
        GcBound::Unused => unleased
            .into_iter()
            .map(|layer| layer.digest.clone())
            .collect(),
        GcBound::MaxBytes(max_bytes) => {
            unleased.sort_by(|a, b| {
                a.last_used
                    .cmp(&b.last_used)
                    .then_with(|| a.digest.cmp(&b.digest))
            });
            let mut total: u64 = layers.iter().map(|layer| layer.size_bytes).sum();
            let mut removed = Vec::new();
            for layer in unleased {
                if total <= max_bytes {
                    break;
                }
                total = total.saturating_sub(layer.size_bytes);
                removed.push(layer.digest.clone());
            }
            removed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn layer(digest: &str, size_bytes: u64, used_at_secs: u64) -> CachedLayer {
        CachedLayer {
            digest: digest.to_owned(),
            size_bytes,
            last_used: SystemTime::UNIX_EPOCH + Duration::from_secs(used_at_secs),
        }
    }

    fn leased(digests: &[&str]) -> HashSet<String> {
        digests.iter().map(|digest| (*digest).to_owned()).collect()
    }

    #[test]
    fn an_explicit_collection_removes_every_unleased_layer() {
        let layers = [layer("a", 10, 1), layer("b", 10, 2), layer("c", 10, 3)];
        assert_eq!(
            plan(&layers, &leased(&["b"]), GcBound::Unused),
            vec!["a", "c"]
        );
        assert!(plan(&layers, &leased(&["a", "b", "c"]), GcBound::Unused).is_empty());
    }

    #[test]
    fn the_size_bound_removes_least_recently_used_first_and_stops_when_it_fits() {
        let layers = [
            layer("new", 40, 30),
            layer("old", 40, 10),
            layer("mid", 40, 20),
        ];
        assert_eq!(
            plan(&layers, &leased(&[]), GcBound::MaxBytes(80)),
            vec!["old"]
        );
        assert_eq!(
            plan(&layers, &leased(&[]), GcBound::MaxBytes(40)),
            vec!["old", "mid"]
        );
        assert!(plan(&layers, &leased(&[]), GcBound::MaxBytes(120)).is_empty());
    }

    #[test]
    fn the_size_bound_never_removes_a_leased_layer_even_when_over() {
        let layers = [layer("old-leased", 100, 1), layer("young", 10, 5)];
        assert_eq!(
            plan(&layers, &leased(&["old-leased"]), GcBound::MaxBytes(50)),
            vec!["young"]
        );
        assert!(plan(
            &layers,
            &leased(&["old-leased", "young"]),
            GcBound::MaxBytes(0)
        )
        .is_empty());
    }
}
