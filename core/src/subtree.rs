//! Subtrees of an RFC 9162 Merkle tree and their consistency proofs, as the
//! Merkle Tree Certificates draft defines them (draft-ietf-plants-merkle-tree-certs,
//! sections "Subtrees" and "Subtree Consistency Proofs") and C2SP tlog-mirror
//! uses them: every `add-entries` package carries the subtree consistency
//! proof of its 256-aligned subtree against the checkpoint being mirrored.
//!
//! A subtree `[start, end)` is the Merkle tree over the entries `start..end`
//! taken as a list of their own. It is only valid when `start` is a multiple
//! of `BIT_CEIL(end - start)`: then its hash is built from complete subtrees
//! of the big tree, which is what lets a short proof tie it to the root.
//! With `start = 0` a subtree consistency proof is exactly RFC 9162's
//! consistency proof, and with `end = start + 1` it is an inclusion proof.
//!
//! Proofs are generated from stored hashes through [`HashReader`], with the
//! same range machinery as [`crate::tree`]'s proofs; verification follows the
//! draft's procedure step by step and says which check refused.

use crate::hash::{leaf_hash, node_hash, Hash};
use crate::tree::{range_hashes, split_point, HashReader, Range, TreeError};
use crate::types::{LeafIndex, TreeSize};

/// Why a subtree could not be formed or its proof generated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubtreeError {
    /// `start` is after `end`.
    #[error("subtree start {start} is after its end {end}")]
    Inverted {
        /// The first leaf.
        start: u64,
        /// One past the last leaf.
        end: u64,
    },
    /// `start` is not a multiple of `BIT_CEIL(end - start)`, so the range's
    /// hash is not made of nodes of the big tree and no proof can tie them.
    #[error("[{start}, {end}) is not a subtree: {start} is not a multiple of {alignment}")]
    Unaligned {
        /// The first leaf.
        start: u64,
        /// One past the last leaf.
        end: u64,
        /// `BIT_CEIL(end - start)`, the multiple `start` must be (2^64 is
        /// written as 0).
        alignment: u64,
    },
    /// The subtree reaches past the tree it is to be proven against.
    #[error("subtree [{start}, {end}) ends past the tree of size {size}")]
    PastTree {
        /// The first leaf.
        start: u64,
        /// One past the last leaf.
        end: u64,
        /// The tree's size.
        size: u64,
    },
    /// Stored hashes could not be read.
    #[error(transparent)]
    Tree(#[from] TreeError),
}

/// Why a subtree consistency proof was refused. Each variant is one check of
/// the draft's "Verifying a Subtree Consistency Proof" procedure.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum SubtreeProofError {
    /// Step 1: the subtree ends past the tree.
    #[error("subtree [{start}, {end}) ends past the tree of size {size}")]
    PastTree {
        /// The first leaf.
        start: u64,
        /// One past the last leaf.
        end: u64,
        /// The tree's size.
        size: u64,
    },
    /// Step 2: an empty subtree is proven by an empty proof, nothing else.
    #[error("the subtree is empty but the proof has {got} hashes")]
    EmptySubtreeWithProof {
        /// Hashes given.
        got: usize,
    },
    /// Step 2: the hash of an empty subtree is SHA-256 of the empty string.
    #[error("the subtree is empty but its hash {got} is not the empty tree's hash")]
    EmptySubtreeHash {
        /// The hash given for the empty subtree.
        got: Hash,
    },
    /// Steps 7 to 10: the proof has the wrong number of hashes for this
    /// subtree and tree size (checked up front, so a dropped or an extra
    /// hash is named as such rather than as a root mismatch).
    #[error("proof has {got} hashes, subtree [{start}, {end}) in a tree of size {size} needs {expected}")]
    WrongLength {
        /// The first leaf.
        start: u64,
        /// One past the last leaf.
        end: u64,
        /// The tree's size.
        size: u64,
        /// Hashes the subtree and size call for.
        expected: usize,
        /// Hashes given.
        got: usize,
    },
    /// Step 10: the proof does not rebuild the subtree hash the verifier holds.
    #[error("proof leads to subtree hash {computed}, not the expected {expected}")]
    SubtreeHashMismatch {
        /// The subtree hash the proof computes.
        computed: Hash,
        /// The subtree hash it had to reach.
        expected: Hash,
    },
    /// Step 10: the proof does not lead to the tree's root.
    #[error("proof leads to root {computed}, not the expected {expected}")]
    RootMismatch {
        /// The root the proof computes.
        computed: Hash,
        /// The root it had to reach.
        expected: Hash,
    },
}

/// A subtree `[start, end)`: valid by construction (`start <= end` and
/// `start` is a multiple of `BIT_CEIL(end - start)`). Whether it fits in a
/// given tree (`end <= n`) is checked where a tree size is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Subtree {
    start: u64,
    end: u64,
}

impl Subtree {
    /// The subtree of the leaves `start..end`, if it is a valid subtree.
    pub fn new(start: LeafIndex, end: TreeSize) -> Result<Subtree, SubtreeError> {
        let (start, end) = (start.get(), end.get());
        if start > end {
            return Err(SubtreeError::Inverted { start, end });
        }
        let size = end - start;
        // BIT_CEIL(size) overflows u64 above 2^63; only start = 0 is a
        // multiple of 2^64 then (the draft's C++ does the same).
        let aligned = match size.checked_next_power_of_two() {
            Some(ceil) => start & (ceil - 1) == 0,
            None => start == 0,
        };
        if !aligned {
            return Err(SubtreeError::Unaligned {
                start,
                end,
                alignment: size.checked_next_power_of_two().unwrap_or(0),
            });
        }
        Ok(Subtree { start, end })
    }

    /// A subtree the caller knows is valid (a 256-aligned package range):
    /// no error path for what cannot fail.
    pub(crate) fn from_valid(start: u64, end: u64) -> Subtree {
        debug_assert!(Subtree::new(LeafIndex(start), TreeSize(end)).is_ok());
        Subtree { start, end }
    }

    /// The first leaf.
    pub fn start(&self) -> LeafIndex {
        LeafIndex(self.start)
    }

    /// One past the last leaf: the size of the smallest tree that holds it.
    pub fn end(&self) -> TreeSize {
        TreeSize(self.end)
    }

    /// How many leaves it has.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether it has no leaves (`[x, x)`, whose hash is the empty tree's).
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Whether it fits in a tree of `size` leaves.
    pub fn fits_in(&self, size: TreeSize) -> bool {
        self.end <= size.get()
    }

    fn check_fits(&self, size: TreeSize) -> Result<(), SubtreeError> {
        if self.fits_in(size) {
            Ok(())
        } else {
            Err(SubtreeError::PastTree {
                start: self.start,
                end: self.end,
                size: size.get(),
            })
        }
    }
}

impl std::fmt::Display for Subtree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {})", self.start, self.end)
    }
}

/// The subtree's hash, `MTH(D[start:end])`, read from stored hashes: a
/// valid subtree is a run of complete subtrees of the big tree, so this
/// reads O(log n) hashes and hashes nothing but their fold.
pub fn subtree_hash(subtree: Subtree, reader: &impl HashReader) -> Result<Hash, SubtreeError> {
    if subtree.is_empty() {
        return Ok(Hash::empty_tree());
    }
    Ok(range_hashes(&[(subtree.start, subtree.end)], reader)?[0])
}

/// The Merkle tree hash of a list of leaf hashes taken as a tree of its own:
/// what a mirror computes for a package's subtree from the entries it
/// received (and the ones it already stored before an unaligned start).
pub fn hash_of_leaves(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Hash::empty_tree(),
        1 => leaves[0],
        n => {
            // Recursion depth is log2(n); n is a package (<= 256) in practice.
            let k = split_point(n as u64) as usize;
            node_hash(&hash_of_leaves(&leaves[..k]), &hash_of_leaves(&leaves[k..]))
        }
    }
}

/// [`hash_of_leaves`] over the leaf hashes of `entries`.
pub fn hash_of_entries<E: AsRef<[u8]>>(entries: &[E]) -> Hash {
    let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e.as_ref())).collect();
    hash_of_leaves(&leaves)
}

/// The ranges whose hashes form `SUBTREE_SUBPROOF(start, end, D[lo:hi], whole)`,
/// in proof order. `start`, `end` are absolute leaf indexes.
fn subtree_proof_ranges(start: u64, end: u64, lo: u64, hi: u64, whole: bool, out: &mut Vec<Range>) {
    if start == lo && end == hi {
        // The subtree is this node: the verifier holds its hash already
        // unless an earlier split turned it into a right part of the subtree.
        if !whole {
            out.push((lo, hi));
        }
        return;
    }
    // A valid subtree that is not the whole of [lo, hi) leaves hi - lo >= 2.
    let mid = lo + split_point(hi - lo);
    if end <= mid {
        subtree_proof_ranges(start, end, lo, mid, whole, out);
        out.push((mid, hi));
    } else if mid <= start {
        subtree_proof_ranges(start, end, mid, hi, whole, out);
        out.push((lo, mid));
    } else {
        // start < mid < end only happens for start == lo (alignment): the
        // left child is all in the subtree, so prove its right part.
        debug_assert_eq!(start, lo);
        subtree_proof_ranges(mid, end, mid, hi, false, out);
        out.push((lo, mid));
    }
}

fn proof_ranges(subtree: Subtree, size: TreeSize) -> Vec<Range> {
    let mut ranges = Vec::new();
    if !subtree.is_empty() && subtree.fits_in(size) {
        subtree_proof_ranges(subtree.start, subtree.end, 0, size.get(), true, &mut ranges);
    }
    ranges
}

/// How many hashes the consistency proof of `subtree` in a tree of `size` has
/// (0 for an empty subtree or one that does not fit).
pub fn subtree_consistency_proof_len(subtree: Subtree, size: TreeSize) -> usize {
    proof_ranges(subtree, size).len()
}

/// `SUBTREE_PROOF(start, end, D_n)`: the proof that `subtree` is consistent
/// with the tree of `size` leaves, from stored hashes. For `start = 0` it is
/// RFC 9162's consistency proof from `end` to `size`.
pub fn subtree_consistency_proof(
    subtree: Subtree,
    size: TreeSize,
    reader: &impl HashReader,
) -> Result<Vec<Hash>, SubtreeError> {
    subtree.check_fits(size)?;
    let ranges = proof_ranges(subtree, size);
    if ranges.is_empty() {
        return Ok(Vec::new());
    }
    Ok(range_hashes(&ranges, reader)?)
}

/// Verifies that `subtree`, whose hash is `subtree_hash`, is consistent with
/// the tree of `size` leaves whose root is `root`: the draft's "Verifying a
/// Subtree Consistency Proof", with the proof length checked first so a
/// missing or extra hash is reported as such.
pub fn verify_subtree_consistency(
    subtree: Subtree,
    size: TreeSize,
    subtree_hash: Hash,
    root: Hash,
    proof: &[Hash],
) -> Result<(), SubtreeProofError> {
    let (start, end, n) = (subtree.start, subtree.end, size.get());
    // Step 1 (validity itself is the type's invariant).
    if end > n {
        return Err(SubtreeProofError::PastTree {
            start,
            end,
            size: n,
        });
    }
    // Step 2. The root is deliberately not compared: an empty subtree is
    // consistent with every tree.
    if start == end {
        if !proof.is_empty() {
            return Err(SubtreeProofError::EmptySubtreeWithProof { got: proof.len() });
        }
        if subtree_hash != Hash::empty_tree() {
            return Err(SubtreeProofError::EmptySubtreeHash { got: subtree_hash });
        }
        return Ok(());
    }
    let wrong_length = || SubtreeProofError::WrongLength {
        start,
        end,
        size: n,
        expected: subtree_consistency_proof_len(subtree, size),
        got: proof.len(),
    };
    if proof.len() != subtree_consistency_proof_len(subtree, size) {
        return Err(wrong_length());
    }

    // Step 3.
    let (mut fnode, mut snode, mut tnode) = (start, end - 1, n - 1);
    // Steps 4 and 5: climb while the subtree's node is also a node of the
    // tree (a left child, or on the right edge), whose hash we hold.
    if snode == tnode {
        while fnode != snode {
            fnode >>= 1;
            snode >>= 1;
            tnode >>= 1;
        }
    } else {
        while fnode != snode && snode & 1 == 1 {
            fnode >>= 1;
            snode >>= 1;
            tnode >>= 1;
        }
    }
    // Steps 6 and 7.
    let (mut fr, mut sr, rest) = if fnode == snode {
        (subtree_hash, subtree_hash, proof)
    } else {
        let (first, rest) = proof.split_first().ok_or_else(wrong_length)?;
        (*first, *first, rest)
    };
    // Step 8.
    for c in rest {
        if tnode == 0 {
            return Err(wrong_length());
        }
        if snode & 1 == 1 || snode == tnode {
            if fnode < snode {
                fr = node_hash(c, &fr);
            }
            sr = node_hash(c, &sr);
            // snode != 0 here (snode == tnode != 0, or snode is odd), so
            // this ends within 64 shifts.
            while snode & 1 == 0 {
                fnode >>= 1;
                snode >>= 1;
                tnode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
        tnode >>= 1;
    }
    // Step 9.
    if tnode != 0 {
        return Err(wrong_length());
    }
    if fr != subtree_hash {
        return Err(SubtreeProofError::SubtreeHashMismatch {
            computed: fr,
            expected: subtree_hash,
        });
    }
    if sr != root {
        return Err(SubtreeProofError::RootMismatch {
            computed: sr,
            expected: root,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    // Test code: a panic is how a failed expectation is reported.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::proof::verify_consistency;
    use crate::tree::{consistency_proof, inclusion_proof, tree_hash, MemoryTree};
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};

    fn st(start: u64, end: u64) -> Subtree {
        Subtree::new(LeafIndex(start), TreeSize(end)).unwrap()
    }

    fn valid(start: u64, end: u64) -> bool {
        Subtree::new(LeafIndex(start), TreeSize(end)).is_ok()
    }

    /// The MTC draft's test tree: d[i] is the single byte i.
    fn draft_tree(n: u64) -> MemoryTree {
        let mut tree = MemoryTree::new();
        for i in 0..n {
            tree.append(&[i as u8]);
        }
        tree
    }

    /// The draft's definition of SUBTREE_PROOF over a list of leaf hashes,
    /// straight from the text: the oracle for the storage-based generator.
    fn oracle_proof(start: usize, end: usize, d: &[Hash]) -> Vec<Hash> {
        fn sub(start: usize, end: usize, d: &[Hash], b: bool) -> Vec<Hash> {
            let n = d.len();
            if start == 0 && end == n {
                return if b { vec![] } else { vec![hash_of_leaves(d)] };
            }
            let k = split_point(n as u64) as usize;
            if end <= k {
                let mut p = sub(start, end, &d[..k], b);
                p.push(hash_of_leaves(&d[k..]));
                p
            } else if k <= start {
                let mut p = sub(start - k, end - k, &d[k..], b);
                p.push(hash_of_leaves(&d[..k]));
                p
            } else {
                let mut p = sub(0, end - k, &d[k..], false);
                p.push(hash_of_leaves(&d[..k]));
                p
            }
        }
        if start == end {
            vec![]
        } else {
            sub(start, end, d, true)
        }
    }

    #[test]
    fn validity_follows_the_draft() {
        // The draft's examples: [4, 8) and [8, 13) are subtrees; [7, 9) is not.
        assert!(valid(4, 8));
        assert!(valid(8, 13));
        assert!(valid(0, 9));
        assert!(valid(5, 5), "empty subtrees are valid");
        assert!(valid(0, 0));
        assert_eq!(
            Subtree::new(LeafIndex(7), TreeSize(9)),
            Err(SubtreeError::Unaligned {
                start: 7,
                end: 9,
                alignment: 2
            })
        );
        assert_eq!(
            Subtree::new(LeafIndex(1), TreeSize(3)),
            Err(SubtreeError::Unaligned {
                start: 1,
                end: 3,
                alignment: 2
            })
        );
        assert_eq!(
            Subtree::new(LeafIndex(3), TreeSize(2)),
            Err(SubtreeError::Inverted { start: 3, end: 2 })
        );
        // The overflow corner the draft points out.
        assert!(valid(0, (1 << 63) + 1));
        assert!(valid(0, u64::MAX));
        assert_eq!(
            Subtree::new(LeafIndex(1), TreeSize(u64::MAX)),
            Err(SubtreeError::Unaligned {
                start: 1,
                end: u64::MAX,
                alignment: 0
            })
        );
        assert!(valid(1 << 63, u64::MAX));
        // Every 256-aligned package subtree is valid.
        for k in 0..4u64 {
            for len in 1..=256 {
                assert!(valid(256 * k, 256 * k + len));
            }
        }
    }

    /// MTC draft appendix "Subtree Test Vectors", "Subtree Hashes".
    #[test]
    fn draft_accumulated_subtree_hashes() {
        let tree = draft_tree(130);
        let mut h = Sha256::new();
        for end in 0..=130u64 {
            for start in 0..=end {
                if valid(start, end) {
                    let hash = subtree_hash(st(start, end), &tree).unwrap();
                    h.update(format!("[{start}, {end}) {}\n", hash.to_hex()));
                }
            }
        }
        assert_eq!(
            hex::encode(h.finalize()),
            "b82806ad4265bb151c1119c0f4db437bb4d1a1f887b3a7fba1cd4ebf552e3e81"
        );
    }

    /// MTC draft appendix "Subtree Test Vectors", "Subtree Consistency
    /// Proofs"; every proof also verifies and matches the draft's definition.
    #[test]
    fn draft_accumulated_subtree_consistency_proofs() {
        let full = draft_tree(130);
        let leaves: Vec<Hash> = (0..130u8).map(|i| leaf_hash(&[i])).collect();
        let mut h = Sha256::new();
        for n in 0..=130u64 {
            let root = tree_hash(TreeSize(n), &full).unwrap();
            for end in 0..=n {
                for start in 0..=end {
                    if !valid(start, end) {
                        continue;
                    }
                    let sub = st(start, end);
                    let proof = subtree_consistency_proof(sub, TreeSize(n), &full).unwrap();
                    let mut line = format!("[{start}, {end}) {n}");
                    for p in &proof {
                        line.push(' ');
                        line.push_str(&p.to_hex());
                    }
                    line.push('\n');
                    h.update(line);

                    assert_eq!(
                        proof,
                        oracle_proof(start as usize, end as usize, &leaves[..n as usize]),
                        "{sub} in {n}"
                    );
                    assert_eq!(proof.len(), subtree_consistency_proof_len(sub, TreeSize(n)));
                    let sub_hash = subtree_hash(sub, &full).unwrap();
                    assert_eq!(
                        verify_subtree_consistency(sub, TreeSize(n), sub_hash, root, &proof),
                        Ok(()),
                        "{sub} in {n}"
                    );
                }
            }
        }
        assert_eq!(
            hex::encode(h.finalize()),
            "10fa99b37bf9bf9ffa26b412fbd98bd75363256d0b75d61bc4538b9c9c5a0a74"
        );
    }

    /// With start = 0 a subtree consistency proof is RFC 9162's consistency
    /// proof, and with end = start + 1 it is an inclusion proof.
    #[test]
    fn special_cases_are_rfc9162_proofs() {
        let tree = draft_tree(70);
        for n in 1..=70u64 {
            let root = tree_hash(TreeSize(n), &tree).unwrap();
            for m in 0..=n {
                let proof = subtree_consistency_proof(st(0, m), TreeSize(n), &tree).unwrap();
                assert_eq!(
                    proof,
                    consistency_proof(TreeSize(m), TreeSize(n), &tree).unwrap(),
                    "0..{m} in {n}"
                );
                if m > 0 {
                    let old_root = tree_hash(TreeSize(m), &tree).unwrap();
                    assert_eq!(
                        verify_consistency(TreeSize(m), TreeSize(n), old_root, root, &proof),
                        Ok(())
                    );
                }
            }
            for i in 0..n {
                assert_eq!(
                    subtree_consistency_proof(st(i, i + 1), TreeSize(n), &tree).unwrap(),
                    inclusion_proof(LeafIndex(i), TreeSize(n), &tree).unwrap(),
                    "leaf {i} in {n}"
                );
            }
        }
    }

    /// The draft's two worked examples (tree of 14).
    #[test]
    fn draft_examples() {
        let tree = draft_tree(14);
        let node = |lo, hi| subtree_hash(st(lo, hi), &tree).unwrap();
        assert_eq!(
            subtree_consistency_proof(st(4, 8), TreeSize(14), &tree).unwrap(),
            vec![node(0, 4), node(8, 14)]
        );
        assert_eq!(
            subtree_consistency_proof(st(8, 13), TreeSize(14), &tree).unwrap(),
            vec![node(12, 13), node(13, 14), node(8, 12), node(0, 8)]
        );
    }

    #[test]
    fn generation_refuses_what_does_not_fit() {
        let tree = draft_tree(10);
        assert_eq!(
            subtree_consistency_proof(st(8, 11), TreeSize(10), &tree),
            Err(SubtreeError::PastTree {
                start: 8,
                end: 11,
                size: 10
            })
        );
        // Storage that lacks the hashes is a storage error, not a panic.
        assert!(matches!(
            subtree_consistency_proof(st(8, 12), TreeSize(16), &tree),
            Err(SubtreeError::Tree(TreeError::Storage(_)))
        ));
        assert!(matches!(
            subtree_hash(st(8, 12), &tree),
            Err(SubtreeError::Tree(TreeError::Storage(_)))
        ));
    }

    /// Tampering: each change fails, with the reason that names it.
    #[test]
    fn tampered_proofs_fail_with_their_reason() {
        let tree = draft_tree(14);
        let n = TreeSize(14);
        let root = tree_hash(n, &tree).unwrap();
        let sub = st(8, 13);
        let sub_hash = subtree_hash(sub, &tree).unwrap();
        let proof = subtree_consistency_proof(sub, n, &tree).unwrap();
        assert_eq!(proof.len(), 4);
        assert_eq!(
            verify_subtree_consistency(sub, n, sub_hash, root, &proof),
            Ok(())
        );

        // A flipped bit in the hashes that rebuild the subtree ([12,13),
        // [13,14)... [8,12)) shows as a subtree mismatch; in the left
        // sibling [0,8), which only the root uses, as a root mismatch.
        for (i, want_subtree) in [(0, true), (1, false), (2, true), (3, false)] {
            let mut bad = proof.clone();
            bad[i].0[7] ^= 0x10;
            let err = verify_subtree_consistency(sub, n, sub_hash, root, &bad).unwrap_err();
            if want_subtree {
                assert!(
                    matches!(err, SubtreeProofError::SubtreeHashMismatch { .. }),
                    "{i}: {err}"
                );
            } else {
                assert!(
                    matches!(err, SubtreeProofError::RootMismatch { .. }),
                    "{i}: {err}"
                );
            }
        }
        // A flipped bit in the subtree hash or the root.
        let mut flipped = sub_hash;
        flipped.0[0] ^= 1;
        assert!(matches!(
            verify_subtree_consistency(sub, n, flipped, root, &proof),
            Err(SubtreeProofError::SubtreeHashMismatch { .. })
        ));
        let mut flipped_root = root;
        flipped_root.0[31] ^= 0x80;
        assert_eq!(
            verify_subtree_consistency(sub, n, sub_hash, flipped_root, &proof),
            Err(SubtreeProofError::RootMismatch {
                computed: root,
                expected: flipped_root
            })
        );
        // A dropped hash, an extra hash.
        let wrong = |got| SubtreeProofError::WrongLength {
            start: 8,
            end: 13,
            size: 14,
            expected: 4,
            got,
        };
        assert_eq!(
            verify_subtree_consistency(sub, n, sub_hash, root, &proof[..3]),
            Err(wrong(3))
        );
        assert_eq!(
            verify_subtree_consistency(sub, n, sub_hash, root, &proof[1..]),
            Err(wrong(3))
        );
        let mut longer = proof.clone();
        longer.push(root);
        assert_eq!(
            verify_subtree_consistency(sub, n, sub_hash, root, &longer),
            Err(wrong(5))
        );
        assert_eq!(
            verify_subtree_consistency(sub, n, sub_hash, root, &[]),
            Err(wrong(0))
        );
        // Another start, end or size.
        assert!(verify_subtree_consistency(st(8, 12), n, sub_hash, root, &proof).is_err());
        assert!(verify_subtree_consistency(st(0, 13), n, sub_hash, root, &proof).is_err());
        assert_eq!(
            Subtree::new(LeafIndex(9), TreeSize(13)).unwrap_err(),
            SubtreeError::Unaligned {
                start: 9,
                end: 13,
                alignment: 4
            }
        );
        assert_eq!(
            verify_subtree_consistency(sub, TreeSize(12), sub_hash, root, &proof),
            Err(SubtreeProofError::PastTree {
                start: 8,
                end: 13,
                size: 12
            })
        );
        // Size 13: [8,13) is then the right edge and needs one hash.
        assert!(matches!(
            verify_subtree_consistency(sub, TreeSize(13), sub_hash, root, &proof),
            Err(SubtreeProofError::WrongLength { expected: 1, .. })
        ));
        // Size 15: [14, 15) joins the proof.
        assert!(matches!(
            verify_subtree_consistency(sub, TreeSize(15), sub_hash, root, &proof),
            Err(SubtreeProofError::WrongLength { expected: 5, .. })
        ));
        // Swapped hashes.
        assert!(matches!(
            verify_subtree_consistency(sub, n, root, sub_hash, &proof),
            Err(SubtreeProofError::SubtreeHashMismatch { .. })
        ));
    }

    #[test]
    fn empty_subtrees() {
        let tree = draft_tree(5);
        let root = tree.root();
        let empty = Hash::empty_tree();
        assert_eq!(subtree_hash(st(3, 3), &tree), Ok(empty));
        assert_eq!(
            subtree_consistency_proof(st(3, 3), TreeSize(5), &tree),
            Ok(vec![])
        );
        // Any root: an empty subtree is consistent with every tree.
        assert_eq!(
            verify_subtree_consistency(st(3, 3), TreeSize(5), empty, Hash([7; 32]), &[]),
            Ok(())
        );
        assert_eq!(
            verify_subtree_consistency(st(3, 3), TreeSize(5), empty, root, &[root]),
            Err(SubtreeProofError::EmptySubtreeWithProof { got: 1 })
        );
        assert_eq!(
            verify_subtree_consistency(st(3, 3), TreeSize(5), root, root, &[]),
            Err(SubtreeProofError::EmptySubtreeHash { got: root })
        );
        assert_eq!(
            verify_subtree_consistency(st(6, 6), TreeSize(5), empty, root, &[]),
            Err(SubtreeProofError::PastTree {
                start: 6,
                end: 6,
                size: 5
            })
        );
    }

    #[test]
    fn hash_of_leaves_is_the_tree_hash() {
        let tree = draft_tree(300);
        let leaves: Vec<Hash> = (0..300u32).map(|i| leaf_hash(&[i as u8])).collect();
        for n in [0usize, 1, 2, 3, 7, 8, 9, 255, 256, 257, 300] {
            assert_eq!(
                hash_of_leaves(&leaves[..n]),
                tree_hash(TreeSize(n as u64), &tree).unwrap()
            );
        }
        let entries: Vec<[u8; 1]> = (0..44u8).map(|i| [i]).collect();
        assert_eq!(hash_of_entries(&entries), hash_of_leaves(&leaves[..44]));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Every generated proof verifies, for every valid subtree of random
        /// trees up to a few hundred leaves; a flipped bit in any proof hash
        /// is refused as a hash mismatch.
        #[test]
        fn every_generated_proof_verifies(n in 1u64..400, salt in any::<u64>(), flip in any::<(usize, u8)>()) {
            let mut tree = MemoryTree::new();
            for i in 0..n {
                tree.append(&(salt ^ i).to_le_bytes());
            }
            let size = TreeSize(n);
            let root = tree.root();
            for end in 0..=n {
                // Valid starts for this end: multiples of BIT_CEIL(end - start).
                for start in (0..=end).filter(|&s| valid(s, end)) {
                    let sub = st(start, end);
                    let proof = subtree_consistency_proof(sub, size, &tree).unwrap();
                    let sub_hash = subtree_hash(sub, &tree).unwrap();
                    prop_assert_eq!(verify_subtree_consistency(sub, size, sub_hash, root, &proof), Ok(()));
                    if !proof.is_empty() {
                        let mut bad = proof.clone();
                        let i = flip.0 % bad.len();
                        bad[i].0[usize::from(flip.1) % 32] ^= 1 << (flip.1 % 8);
                        let err = verify_subtree_consistency(sub, size, sub_hash, root, &bad).unwrap_err();
                        let mismatch = matches!(
                            err,
                            SubtreeProofError::SubtreeHashMismatch { .. }
                                | SubtreeProofError::RootMismatch { .. }
                        );
                        prop_assert!(mismatch, "{}", err);
                    }
                }
            }
        }
    }
}
