//! Serving inclusion proofs cheaply: what every proof against one published
//! checkpoint shares, computed once per checkpoint ([`ProofCache`]: the
//! folded right edge of its tree); proofs are answered in turn by the
//! reading threads ([`crate::read_pool`]).
//!
//! Each proof at a tree size holds at most one hash that is not a stored
//! hash (the hash of a range from one of the tree's complete subtrees to its
//! end), and there are only as many of those as the size has bits set.
//! Folding it again for every proof cost about ten node hashes and, for the
//! subtrees low in the tree, a storage read; the proofs are the same bytes
//! either way.

use std::sync::{Arc, RwLock};

use daylight_core::tree::{HashReader, RightEdge, TreeError};
use daylight_core::types::TreeSize;
use daylight_core::Checkpoint;

/// The right edge of the newest tree proofs were asked for.
#[derive(Default)]
pub(crate) struct ProofCache {
    newest: RwLock<Option<Cached>>,
}

/// One size's edge, or the fact that it did not match its checkpoint.
#[derive(Clone)]
struct Cached {
    size: TreeSize,
    /// None when the stored hashes do not give the checkpoint's root: no
    /// proof at that size then uses an edge.
    edge: Option<Arc<RightEdge>>,
}

impl ProofCache {
    /// The right edge of the tree of `checkpoint`, folded from `reader` on
    /// the first call at its size and kept until a larger size is asked for.
    /// None if the stored hashes fold to another root than the checkpoint's
    /// (then the proof is computed without the edge, as before there was
    /// one, and the mismatch is logged once).
    pub(crate) fn edge(
        &self,
        checkpoint: &Checkpoint,
        reader: &impl HashReader,
    ) -> Result<Option<Arc<RightEdge>>, TreeError> {
        if let Some(c) = self.cached(checkpoint.size) {
            return Ok(c.edge);
        }
        let edge = RightEdge::new(checkpoint.size, reader)?;
        let edge = if edge.root() == checkpoint.root {
            Some(Arc::new(edge))
        } else {
            tracing::error!(
                size = checkpoint.size.get(),
                "the stored hashes do not fold to the published checkpoint's root"
            );
            None
        };
        self.keep(Cached {
            size: checkpoint.size,
            edge: edge.clone(),
        });
        Ok(edge)
    }

    /// What is cached for exactly `size`.
    fn cached(&self, size: TreeSize) -> Option<Cached> {
        let newest = self.newest.read().ok()?;
        newest.as_ref().filter(|c| c.size == size).cloned()
    }

    /// Keeps `c` unless a larger size is already kept: a request that read
    /// an older checkpoint must not push out the newest one's edge.
    fn keep(&self, c: Cached) {
        if let Ok(mut newest) = self.newest.write() {
            if newest.as_ref().is_none_or(|n| n.size < c.size) {
                *newest = Some(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use daylight_core::tree::{inclusion_proof, inclusion_proof_with_edge, tree_hash, MemoryTree};
    use daylight_core::types::LeafIndex;
    use daylight_core::Hash;

    fn tree(n: u64) -> MemoryTree {
        let mut t = MemoryTree::new();
        for i in 0..n {
            t.append(format!("{i}").as_bytes());
        }
        t
    }

    fn checkpoint(size: u64, root: Hash) -> Checkpoint {
        Checkpoint::new("example.test/log", TreeSize(size), root)
    }

    #[test]
    fn serves_the_edge_of_the_size_asked_for() {
        let t = tree(300);
        let cache = ProofCache::default();
        for size in [5u64, 6, 200, 199, 300, 7, 300, 299] {
            let cp = checkpoint(size, tree_hash(TreeSize(size), &t).unwrap());
            let edge = cache.edge(&cp, &t).unwrap().unwrap();
            assert_eq!(edge.size(), TreeSize(size));
            for index in 0..size {
                assert_eq!(
                    inclusion_proof_with_edge(LeafIndex(index), TreeSize(size), &edge, &t),
                    inclusion_proof(LeafIndex(index), TreeSize(size), &t)
                );
            }
        }
    }

    #[test]
    fn keeps_the_largest_size() {
        let t = tree(300);
        let cache = ProofCache::default();
        let cp = |s: u64| checkpoint(s, tree_hash(TreeSize(s), &t).unwrap());
        cache.edge(&cp(200), &t).unwrap();
        cache.edge(&cp(100), &t).unwrap();
        assert!(cache.cached(TreeSize(200)).is_some());
        assert!(cache.cached(TreeSize(100)).is_none());
        cache.edge(&cp(250), &t).unwrap();
        assert!(cache.cached(TreeSize(250)).is_some());
        assert!(cache.cached(TreeSize(200)).is_none());
    }

    #[test]
    fn no_edge_when_the_root_differs() {
        let t = tree(10);
        let cache = ProofCache::default();
        let wrong = checkpoint(10, tree_hash(TreeSize(9), &t).unwrap());
        assert!(cache.edge(&wrong, &t).unwrap().is_none());
        // Remembered: asked again, still none (and not rebuilt as if right).
        assert!(cache.cached(TreeSize(10)).is_some_and(|c| c.edge.is_none()));
        assert!(cache.edge(&wrong, &t).unwrap().is_none());
    }

    #[test]
    fn read_errors_are_errors() {
        let cache = ProofCache::default();
        let cp = checkpoint(10, Hash::empty_tree());
        assert!(cache.edge(&cp, &MemoryTree::new()).is_err());
        assert!(cache.cached(TreeSize(10)).is_none());
    }
}
