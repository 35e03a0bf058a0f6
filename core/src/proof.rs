//! Verification of RFC 9162 inclusion (2.1.3.2) and consistency (2.1.4.2)
//! proofs. These run on the provider's and auditor's side and trust nothing:
//! every failure says which check refused.

use crate::hash::{node_hash, Hash};
use crate::tree::{consistency_proof_len, inclusion_proof_len};
use crate::types::{LeafIndex, TreeSize};

/// Why a proof was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexNotInTree {
        /// The claimed index.
        index: u64,
        /// The claimed tree size.
        size: u64,
    },
    /// The new tree is smaller than the old one.
    #[error("old tree size {old} is larger than new tree size {new}")]
    SizesOutOfOrder {
        /// The old size.
        old: u64,
        /// The new size.
        new: u64,
    },
    /// The proof has the wrong number of hashes for these sizes.
    #[error("proof has {got} hashes, expected {expected}")]
    WrongLength {
        /// Hashes the sizes call for.
        expected: usize,
        /// Hashes given.
        got: usize,
    },
    /// The proof leads to a different root than the one claimed.
    #[error("proof leads to root {computed}, not the expected {expected}")]
    RootMismatch {
        /// The root the proof computes.
        computed: Hash,
        /// The root it had to reach.
        expected: Hash,
    },
    /// For equal sizes the two roots must be equal.
    #[error("trees of equal size {size} have different roots")]
    DifferentRootsSameSize {
        /// The size of both trees.
        size: u64,
    },
    /// A consistency proof from the empty tree proves nothing (RFC 9162
    /// 2.1.4.2 requires 0 < first); accept a first tree on its signatures.
    #[error("no consistency proof exists from an empty tree")]
    EmptyOldTree,
}

/// The root that an inclusion proof computes for `leaf` at `index` in a tree of `size`.
pub fn root_from_inclusion_proof(
    leaf: Hash,
    index: LeafIndex,
    size: TreeSize,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if !size.contains(index) {
        return Err(ProofError::IndexNotInTree {
            index: index.get(),
            size: size.get(),
        });
    }
    let expected = inclusion_proof_len(index, size);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            got: proof.len(),
        });
    }
    let mut fnode = index.get();
    let mut snode = size.get() - 1;
    let mut r = leaf;
    for p in proof {
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    // With the length checked above the path always ends at the root.
    debug_assert_eq!(snode, 0);
    Ok(r)
}

/// Verifies that `leaf` is at `index` in the tree of `size` leaves with `root`.
pub fn verify_inclusion(
    leaf: Hash,
    index: LeafIndex,
    size: TreeSize,
    proof: &[Hash],
    root: Hash,
) -> Result<(), ProofError> {
    let computed = root_from_inclusion_proof(leaf, index, size, proof)?;
    if computed != root {
        return Err(ProofError::RootMismatch {
            computed,
            expected: root,
        });
    }
    Ok(())
}

/// Verifies that the tree (`old`, `old_root`) is a prefix of (`new`, `new_root`).
pub fn verify_consistency(
    old: TreeSize,
    new: TreeSize,
    old_root: Hash,
    new_root: Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::SizesOutOfOrder {
            old: old.get(),
            new: new.get(),
        });
    }
    if old.get() == 0 {
        return Err(ProofError::EmptyOldTree);
    }
    let expected = consistency_proof_len(old, new);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            got: proof.len(),
        });
    }
    if old == new {
        if old_root != new_root {
            return Err(ProofError::DifferentRootsSameSize { size: old.get() });
        }
        return Ok(());
    }

    // RFC 9162 2.1.4.2. When the old size is a power of two its root is the
    // first node of the path and is not sent.
    let mut path = proof;
    let seed;
    if old.get().is_power_of_two() {
        seed = old_root;
    } else {
        seed = proof[0];
        path = &proof[1..];
    }
    let mut fnode = old.get() - 1;
    let mut snode = new.get() - 1;
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let mut fr = seed;
    let mut sr = seed;
    for c in path {
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if fr != old_root {
        return Err(ProofError::RootMismatch {
            computed: fr,
            expected: old_root,
        });
    }
    if sr != new_root {
        return Err(ProofError::RootMismatch {
            computed: sr,
            expected: new_root,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;
    use crate::tree::{consistency_proof, inclusion_proof, tree_hash, MemoryTree};
    use proptest::prelude::*;

    fn tree(n: u64) -> MemoryTree {
        let mut t = MemoryTree::new();
        for i in 0..n {
            t.append(format!("leaf {i}").as_bytes());
        }
        t
    }

    fn root(t: &MemoryTree, n: u64) -> Hash {
        tree_hash(TreeSize(n), t).unwrap()
    }

    fn flip(proof: &mut [Hash], which: usize, bit: usize) {
        proof[which].0[bit / 8] ^= 1 << (bit % 8);
    }

    #[test]
    fn every_consistency_proof_up_to_200_verifies_and_wrong_sizes_fail() {
        let t = tree(200);
        let roots: Vec<Hash> = (0..=200).map(|n| root(&t, n)).collect();
        for new in 1..=200u64 {
            for old in 1..=new {
                let p = consistency_proof(TreeSize(old), TreeSize(new), &t).unwrap();
                let (ro, rn) = (roots[old as usize], roots[new as usize]);
                verify_consistency(TreeSize(old), TreeSize(new), ro, rn, &p)
                    .unwrap_or_else(|e| panic!("{old}->{new}: {e}"));
                // Against any other old size (with that size's true root) it must fail.
                if old > 1 {
                    let o2 = old - 1;
                    assert!(verify_consistency(
                        TreeSize(o2),
                        TreeSize(new),
                        roots[o2 as usize],
                        rn,
                        &p
                    )
                    .is_err());
                }
            }
        }
    }

    #[test]
    fn rollback_and_fork_are_refused() {
        let t = tree(20);
        let mut other = MemoryTree::new();
        for i in 0..20u64 {
            other.append(format!("fork {i}").as_bytes());
        }
        let p = consistency_proof(TreeSize(10), TreeSize(20), &t).unwrap();
        // Larger size, proof from a different tree.
        assert!(verify_consistency(
            TreeSize(10),
            TreeSize(20),
            root(&t, 10),
            root(&other, 20),
            &p
        )
        .is_err());
        // Smaller new size.
        assert_eq!(
            verify_consistency(TreeSize(20), TreeSize(10), root(&t, 20), root(&t, 10), &[]),
            Err(ProofError::SizesOutOfOrder { old: 20, new: 10 })
        );
        // Same size, different root.
        assert_eq!(
            verify_consistency(
                TreeSize(20),
                TreeSize(20),
                root(&t, 20),
                root(&other, 20),
                &[]
            ),
            Err(ProofError::DifferentRootsSameSize { size: 20 })
        );
        // Nothing is proved from an empty tree.
        assert_eq!(
            verify_consistency(
                TreeSize(0),
                TreeSize(20),
                Hash::empty_tree(),
                root(&t, 20),
                &[]
            ),
            Err(ProofError::EmptyOldTree)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Every inclusion proof of a random tree verifies; any flipped bit,
        /// other index, or other checkpoint size is refused.
        #[test]
        fn inclusion_proofs(n in 1u64..3000, seed in any::<u64>()) {
            let t = tree(n);
            let r = root(&t, n);
            for i in 0..n {
                let leaf = leaf_hash(format!("leaf {i}").as_bytes());
                let mut p = inclusion_proof(LeafIndex(i), TreeSize(n), &t).unwrap();
                prop_assert!(verify_inclusion(leaf, LeafIndex(i), TreeSize(n), &p, r).is_ok());
                // Tamper only with a sample of indexes: the full set is slow in debug builds.
                if i % 97 != seed % 97 { continue; }
                let other = (i + 1 + seed % n) % n;
                if other != i {
                    prop_assert!(verify_inclusion(leaf, LeafIndex(other), TreeSize(n), &p, r).is_err());
                }
                if n > 1 {
                    // The proof against a checkpoint of another size (and its root).
                    let m = 1 + (i + seed) % (n - 1);
                    let m = if m > i { m } else { n - 1 };
                    if m != n && m > i {
                        prop_assert!(verify_inclusion(leaf, LeafIndex(i), TreeSize(m), &p, root(&t, m)).is_err());
                    }
                }
                prop_assert!(verify_inclusion(leaf, LeafIndex(n), TreeSize(n), &p, r).is_err());
                if !p.is_empty() {
                    let which = (seed as usize) % p.len();
                    flip(&mut p, which, (seed >> 8) as usize % 256);
                    prop_assert!(verify_inclusion(leaf, LeafIndex(i), TreeSize(n), &p, r).is_err());
                    p.pop();
                    let short = matches!(verify_inclusion(leaf, LeafIndex(i), TreeSize(n), &p, r), Err(ProofError::WrongLength { .. }));
                    prop_assert!(short);
                }
                let mut bad_leaf = leaf;
                bad_leaf.0[(seed % 32) as usize] ^= 0x80;
                let p = inclusion_proof(LeafIndex(i), TreeSize(n), &t).unwrap();
                prop_assert!(verify_inclusion(bad_leaf, LeafIndex(i), TreeSize(n), &p, r).is_err());
            }
        }

        /// Consistency proofs between random sizes verify; tampering fails.
        #[test]
        fn consistency_proofs(n in 2u64..3000, pairs in proptest::collection::vec((any::<u64>(), any::<u64>(), any::<u16>()), 40)) {
            let t = tree(n);
            for (a, b, bit) in pairs {
                let (old, new) = { let x = 1 + a % n; let y = 1 + b % n; (x.min(y), x.max(y)) };
                let (ro, rn) = (root(&t, old), root(&t, new));
                let mut p = consistency_proof(TreeSize(old), TreeSize(new), &t).unwrap();
                prop_assert!(verify_consistency(TreeSize(old), TreeSize(new), ro, rn, &p).is_ok());
                if !p.is_empty() {
                    let which = bit as usize % p.len();
                    flip(&mut p, which, bit as usize % 256);
                    prop_assert!(verify_consistency(TreeSize(old), TreeSize(new), ro, rn, &p).is_err());
                    flip(&mut p, which, bit as usize % 256);
                    p.push(p[0]);
                    let long = matches!(verify_consistency(TreeSize(old), TreeSize(new), ro, rn, &p), Err(ProofError::WrongLength { .. }));
                    prop_assert!(long);
                    p.pop();
                }
                if new < n {
                    // Claiming a newer size than the proof was made for.
                    let r2 = root(&t, new + 1);
                    prop_assert!(verify_consistency(TreeSize(old), TreeSize(new + 1), ro, r2, &p).is_err());
                }
                if old < new {
                    let mut bad = ro;
                    bad.0[0] ^= 1;
                    prop_assert!(verify_consistency(TreeSize(old), TreeSize(new), bad, rn, &p).is_err());
                }
            }
        }
    }
}
