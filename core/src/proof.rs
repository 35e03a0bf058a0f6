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
    /// An empty old tree must have the empty-tree root.
    #[error("a tree of size 0 must have the empty-tree root")]
    BadEmptyRoot,
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
    let expected = consistency_proof_len(old, new);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            got: proof.len(),
        });
    }
    if old.get() == 0 {
        // Every tree extends the empty tree, but only if it is the empty tree.
        if old_root != Hash::empty_tree() {
            return Err(ProofError::BadEmptyRoot);
        }
        return Ok(());
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
