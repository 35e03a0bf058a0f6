//! An RFC 6962 Merkle tree kept as "stored hashes", after Go's sumdb/tlog.
//!
//! Every complete subtree's hash is stored once, in the order the subtrees
//! complete, at a position given by [`stored_hash_index`]. Appending a leaf adds
//! the leaf hash plus one hash per subtree it completes (O(log n) hashes, on
//! average two), and any tree hash or proof reads only O(log n) stored hashes
//! through a [`HashReader`]. Nothing needs the whole tree in memory.

use crate::hash::{leaf_hash, node_hash, Hash};
use crate::types::{LeafIndex, TreeSize};

/// Why the tree could not answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    /// A leaf index at or past the tree size.
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexNotInTree {
        /// The index asked for.
        index: u64,
        /// The tree's size.
        size: u64,
    },
    /// A consistency proof from a larger tree to a smaller one.
    #[error("old tree size {old} is larger than new tree size {new}")]
    SizesOutOfOrder {
        /// The old size.
        old: u64,
        /// The new size.
        new: u64,
    },
    /// The storage returned a different number of hashes than asked for.
    #[error("hash reader returned {got} hashes for {asked} indexes")]
    ShortRead {
        /// How many were asked for.
        asked: usize,
        /// How many came back.
        got: usize,
    },
    /// The storage failed; the text says how.
    #[error("reading stored hashes: {0}")]
    Storage(String),
    /// Hashes read from an untrusted source do not match the trusted root.
    #[error("hashes do not match the trusted tree: {0}")]
    Inconsistent(String),
}

/// Reads stored hashes by their stored-hash index. Implementations return
/// exactly one hash per index, in the order asked.
pub trait HashReader {
    /// The hashes at `indexes`.
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError>;
}

/// The position in storage of the hash of the `n`th complete subtree of height
/// `level` (level 0 is the leaves).
pub fn stored_hash_index(level: u32, n: u64) -> u64 {
    // The subtree completes when its last leaf is appended. Before leaf m's
    // hash, sum over k >= 1 of floor(m / 2^k) interior hashes and m leaf
    // hashes are stored, which is 2m - popcount(m); then come the `level`
    // hashes below this one that the same leaf completes.
    let last_leaf = ((n + 1) << level) - 1;
    2 * last_leaf - u64::from(last_leaf.count_ones()) + u64::from(level)
}

/// The inverse of [`stored_hash_index`]: (level, n).
pub fn split_stored_hash_index(index: u64) -> (u32, u64) {
    // Leaf n is stored at roughly 2n; start at index/2 and walk forward.
    let mut n = index / 2;
    let mut index_n = stored_hash_index(0, n);
    debug_assert!(index_n <= index);
    loop {
        let next = index_n + 1 + u64::from((n + 1).trailing_zeros());
        if next > index {
            break;
        }
        n += 1;
        index_n = next;
    }
    let level = (index - index_n) as u32;
    (level, n >> level)
}

/// How many hashes a tree of `size` leaves stores.
pub fn stored_hash_count(size: TreeSize) -> u64 {
    let n = size.get();
    if n == 0 {
        return 0;
    }
    let mut count = stored_hash_index(0, n - 1) + 1;
    let mut i = n - 1;
    while i & 1 == 1 {
        count += 1;
        i >>= 1;
    }
    count
}

/// The hashes to append to storage when the entry at `index` (the current tree
/// size) is added with leaf hash `leaf`: the leaf hash, then one hash for each
/// subtree the leaf completes. They belong at `stored_hash_count(index)..`.
pub fn stored_hashes_for_leaf(
    index: LeafIndex,
    leaf: Hash,
    reader: &impl HashReader,
) -> Result<Vec<Hash>, TreeError> {
    // Left siblings of the new node at each level, read in one call.
    let indexes: Vec<u64> = left_siblings(index).collect();
    let siblings = read_exact(reader, &indexes)?;
    let mut hashes = Vec::with_capacity(1 + siblings.len());
    let mut h = leaf;
    hashes.push(h);
    for sibling in &siblings {
        h = node_hash(sibling, &h);
        hashes.push(h);
    }
    Ok(hashes)
}

/// The roots of a tree's complete subtrees ("parts"), largest first: all
/// that appending needs of the tree. Every left sibling a new leaf combines
/// with is one of them, so a batch of leaves reads storage once (the
/// parts, [`Frontier::new`]) and computes the rest of its stored hashes in
/// memory, where [`stored_hashes_for_leaf`] reads once per leaf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// One per set bit of `size`, the highest bit's (largest) first.
    parts: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the tree of `size` leaves, read in one call.
    pub fn new(size: TreeSize, reader: &impl HashReader) -> Result<Frontier, TreeError> {
        let mut parts = read_exact(reader, &tree_hash_indexes(size))?;
        // Room for every part a tree can have, so appends never reallocate.
        parts.reserve(64usize.saturating_sub(parts.len()));
        Ok(Frontier {
            size: size.get(),
            parts,
        })
    }

    /// The number of leaves.
    pub fn size(&self) -> TreeSize {
        TreeSize(self.size)
    }

    /// Appends a leaf by its leaf hash, pushing onto `out` exactly what
    /// [`stored_hashes_for_leaf`] returns for it: the leaf hash, then one
    /// hash per subtree it completes.
    #[inline]
    pub fn append(&mut self, leaf: Hash, out: &mut Vec<Hash>) {
        let mut h = leaf;
        out.push(h);
        // The new leaf completes one subtree per trailing one bit of the
        // old size; each one's left half is the smallest part held, which
        // the new subtree replaces.
        for _ in 0..(self.size + 1).trailing_zeros() {
            let Some(sibling) = self.parts.pop() else {
                // Unreachable: a trailing one bit of the size is a part.
                debug_assert!(false, "frontier of {} lacks a part", self.size);
                break;
            };
            h = node_hash(&sibling, &h);
            out.push(h);
        }
        self.parts.push(h);
        self.size += 1;
    }

    /// The root hash at the current size: the parts folded as
    /// [`tree_hash`] folds them.
    pub fn root(&self) -> Hash {
        if self.parts.is_empty() {
            return Hash::empty_tree();
        }
        fold_right(&self.parts)
    }
}

/// The stored hashes to append when `leaves` are added, in order, to the
/// tree of `first` leaves: the concatenation of [`stored_hashes_for_leaf`]
/// for each, with the tree's parts read once instead of each leaf's left
/// siblings. Returns them and the new root.
pub fn stored_hashes_for_leaves(
    first: TreeSize,
    leaves: &[Hash],
    reader: &impl HashReader,
) -> Result<(Vec<Hash>, Hash), TreeError> {
    let mut frontier = Frontier::new(first, reader)?;
    // Two per leaf on average, plus the carries of the last one.
    let mut out = Vec::with_capacity(2 * leaves.len() + 64);
    for &leaf in leaves {
        frontier.append(leaf, &mut out);
    }
    Ok((out, frontier.root()))
}

/// The stored-hash indexes of the left siblings that a new leaf at `index`
/// combines with, lowest level first: one per subtree the leaf completes.
fn left_siblings(index: LeafIndex) -> impl Iterator<Item = u64> {
    let n = index.get();
    (0..(n + 1).trailing_zeros()).map(move |level| stored_hash_index(level, (n >> level) - 1))
}

/// The largest power of two strictly less than `n` (n >= 2): RFC 9162's split point.
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// The largest power of two not above `n` (n >= 1).
fn largest_pow2_at_most(n: u64) -> u64 {
    1 << (63 - n.leading_zeros())
}

/// A half-open range of leaves whose Merkle tree hash a proof needs.
pub(crate) type Range = (u64, u64);

/// The stored hashes that make up MTH(D[lo:hi]) for a range produced by RFC
/// 9162's recursive splits: complete subtrees, largest first.
fn range_indexes(lo: u64, hi: u64, out: &mut Vec<u64>) {
    let mut lo = lo;
    while lo < hi {
        let k = largest_pow2_at_most(hi - lo);
        debug_assert_eq!(lo & (k - 1), 0, "range not aligned");
        let level = k.trailing_zeros();
        out.push(stored_hash_index(level, lo >> level));
        lo += k;
    }
}

fn range_parts(lo: u64, hi: u64) -> usize {
    let mut parts = 0;
    let mut lo = lo;
    while lo < hi {
        lo += largest_pow2_at_most(hi - lo);
        parts += 1;
    }
    parts
}

/// Computes MTH for each range with one call to the reader.
pub(crate) fn range_hashes(
    ranges: &[Range],
    reader: &impl HashReader,
) -> Result<Vec<Hash>, TreeError> {
    let mut indexes = Vec::new();
    for &(lo, hi) in ranges {
        range_indexes(lo, hi, &mut indexes);
    }
    let stored = read_exact(reader, &indexes)?;
    let mut rest = stored.as_slice();
    let mut out = Vec::with_capacity(ranges.len());
    for &(lo, hi) in ranges {
        let (parts, tail) = rest.split_at(range_parts(lo, hi));
        rest = tail;
        out.push(fold_right(parts));
    }
    Ok(out)
}

/// Combines complete subtrees listed largest first into their tree hash.
pub(crate) fn fold_right(parts: &[Hash]) -> Hash {
    let (last, init) = parts.split_last().expect("a non-empty range has parts");
    init.iter().rev().fold(*last, |acc, h| node_hash(h, &acc))
}

fn read_exact(reader: &impl HashReader, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
    if indexes.is_empty() {
        return Ok(Vec::new());
    }
    let hashes = reader.read_hashes(indexes)?;
    if hashes.len() != indexes.len() {
        return Err(TreeError::ShortRead {
            asked: indexes.len(),
            got: hashes.len(),
        });
    }
    Ok(hashes)
}

/// The stored-hash indexes needed for the tree hash at `size`.
pub fn tree_hash_indexes(size: TreeSize) -> Vec<u64> {
    let mut out = Vec::new();
    range_indexes(0, size.get(), &mut out);
    out
}

/// The root hash of the tree of the first `size` leaves.
pub fn tree_hash(size: TreeSize, reader: &impl HashReader) -> Result<Hash, TreeError> {
    if size.get() == 0 {
        return Ok(Hash::empty_tree());
    }
    Ok(range_hashes(&[(0, size.get())], reader)?[0])
}

/// The ranges whose hashes form the inclusion proof of leaf `m` in [lo, hi),
/// in proof order (RFC 9162 2.1.3.1, PATH).
fn inclusion_ranges(m: u64, lo: u64, hi: u64, out: &mut Vec<Range>) {
    if hi - lo <= 1 {
        return;
    }
    let k = split_point(hi - lo);
    if m < lo + k {
        inclusion_ranges(m, lo, lo + k, out);
        out.push((lo + k, hi));
    } else {
        inclusion_ranges(m, lo + k, hi, out);
        out.push((lo, lo + k));
    }
}

/// The ranges whose hashes form the consistency proof from the first `m`
/// leaves of [lo, hi) (RFC 9162 2.1.4.1, SUBPROOF).
fn consistency_ranges(m: u64, lo: u64, hi: u64, whole: bool, out: &mut Vec<Range>) {
    let n = hi - lo;
    if m == n {
        if !whole {
            out.push((lo, hi));
        }
        return;
    }
    let k = split_point(n);
    if m <= k {
        consistency_ranges(m, lo, lo + k, whole, out);
        out.push((lo + k, hi));
    } else {
        consistency_ranges(m - k, lo + k, hi, false, out);
        out.push((lo, lo + k));
    }
}

/// How many hashes an inclusion proof for `index` in a tree of `size` has.
pub fn inclusion_proof_len(index: LeafIndex, size: TreeSize) -> usize {
    let mut ranges = Vec::new();
    if size.contains(index) {
        inclusion_ranges(index.get(), 0, size.get(), &mut ranges);
    }
    ranges.len()
}

/// How many hashes a consistency proof from `old` to `new` has.
pub fn consistency_proof_len(old: TreeSize, new: TreeSize) -> usize {
    if old.get() == 0 || old >= new {
        return 0;
    }
    let mut ranges = Vec::new();
    consistency_ranges(old.get(), 0, new.get(), true, &mut ranges);
    ranges.len()
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves.
pub fn inclusion_proof(
    index: LeafIndex,
    size: TreeSize,
    reader: &impl HashReader,
) -> Result<Vec<Hash>, TreeError> {
    if !size.contains(index) {
        return Err(TreeError::IndexNotInTree {
            index: index.get(),
            size: size.get(),
        });
    }
    let mut ranges = Vec::new();
    inclusion_ranges(index.get(), 0, size.get(), &mut ranges);
    range_hashes(&ranges, reader)
}

/// The hashes of MTH(D[lo:size]) for every `lo` at which one of a tree's
/// complete subtrees ("parts", largest first) starts: its right edge, folded.
///
/// An inclusion proof in a tree of `size` leaves holds at most one hash that
/// is not a stored hash, and that hash is one of these (the range from a
/// part's start to the tree's end). They are the same for every proof at
/// one size, so a server that answers many proofs against one checkpoint
/// folds them once ([`inclusion_proof_with_edge`]) instead of once a proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RightEdge {
    size: TreeSize,
    /// (first leaf of the range, MTH of the range to `size`), largest first.
    suffixes: Vec<(u64, Hash)>,
}

impl RightEdge {
    /// Reads the parts of the tree of `size` leaves in one call and folds
    /// each suffix of them.
    pub fn new(size: TreeSize, reader: &impl HashReader) -> Result<RightEdge, TreeError> {
        let n = size.get();
        let mut starts = Vec::new();
        let mut lo = 0;
        while lo < n {
            starts.push(lo);
            lo += largest_pow2_at_most(n - lo);
        }
        let parts = read_exact(reader, &tree_hash_indexes(size))?;
        let mut suffixes = Vec::with_capacity(starts.len());
        let mut acc: Option<Hash> = None;
        for (&start, part) in starts.iter().zip(&parts).rev() {
            // The same order of combination as `fold_right`.
            let h = acc.map_or(*part, |right| node_hash(part, &right));
            acc = Some(h);
            suffixes.push((start, h));
        }
        suffixes.reverse();
        Ok(RightEdge { size, suffixes })
    }

    /// The tree size these hashes belong to.
    pub fn size(&self) -> TreeSize {
        self.size
    }

    /// The tree's root hash (the fold of all its parts).
    pub fn root(&self) -> Hash {
        self.suffixes
            .first()
            .map_or_else(Hash::empty_tree, |&(_, h)| h)
    }

    /// MTH(D[lo:size]), if `lo` is where one of the parts starts.
    fn suffix(&self, lo: u64) -> Option<Hash> {
        self.suffixes.iter().find(|s| s.0 == lo).map(|s| s.1)
    }
}

/// [`inclusion_proof`] with the right edge's folds taken from `edge`, so
/// that only complete subtrees are read (one stored hash each) and nothing
/// is folded. An `edge` of another size than `size` is not used: the proof
/// is then computed as [`inclusion_proof`] does. The result is the same
/// either way.
pub fn inclusion_proof_with_edge(
    index: LeafIndex,
    size: TreeSize,
    edge: &RightEdge,
    reader: &impl HashReader,
) -> Result<Vec<Hash>, TreeError> {
    if edge.size() != size {
        return inclusion_proof(index, size, reader);
    }
    if !size.contains(index) {
        return Err(TreeError::IndexNotInTree {
            index: index.get(),
            size: size.get(),
        });
    }
    let mut ranges = Vec::with_capacity(64);
    inclusion_ranges(index.get(), 0, size.get(), &mut ranges);
    let from_edge: Vec<Option<Hash>> = ranges
        .iter()
        .map(|&(lo, hi)| (hi == size.get()).then(|| edge.suffix(lo)).flatten())
        .collect();
    let rest: Vec<Range> = ranges
        .iter()
        .zip(&from_edge)
        .filter(|(_, h)| h.is_none())
        .map(|(&r, _)| r)
        .collect();
    let read = range_hashes(&rest, reader)?;
    let got = read.len();
    let mut read = read.into_iter();
    from_edge
        .into_iter()
        .map(|h| {
            h.or_else(|| read.next()).ok_or(TreeError::ShortRead {
                asked: rest.len(),
                got,
            })
        })
        .collect()
}

/// The consistency proof from the tree of `old` leaves to the tree of `new`
/// leaves. Empty when `old` is 0 or equal to `new`.
pub fn consistency_proof(
    old: TreeSize,
    new: TreeSize,
    reader: &impl HashReader,
) -> Result<Vec<Hash>, TreeError> {
    if old > new {
        return Err(TreeError::SizesOutOfOrder {
            old: old.get(),
            new: new.get(),
        });
    }
    if old.get() == 0 || old == new {
        return Ok(Vec::new());
    }
    let mut ranges = Vec::new();
    consistency_ranges(old.get(), 0, new.get(), true, &mut ranges);
    range_hashes(&ranges, reader)
}

/// A tree held in memory as its stored hashes: for tests, benchmarks, and
/// verifiers that rebuild a log they have already downloaded.
#[derive(Clone, Debug, Default)]
pub struct MemoryTree {
    hashes: Vec<Hash>,
    size: u64,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> MemoryTree {
        MemoryTree::default()
    }

    /// An empty tree with room for `leaves` leaves without reallocating, for
    /// a verifier that knows the size it will rebuild from a checkpoint.
    pub fn with_capacity(leaves: u64) -> MemoryTree {
        let hashes = usize::try_from(stored_hash_count(TreeSize(leaves))).unwrap_or(0);
        MemoryTree {
            hashes: Vec::with_capacity(hashes),
            size: 0,
        }
    }

    /// The number of leaves.
    pub fn size(&self) -> TreeSize {
        TreeSize(self.size)
    }

    /// Appends an entry and returns its index.
    // Inlined into the caller's loop with the hashing: a rebuild spends its
    // time here, and a call per leaf costs about a tenth of it.
    #[inline]
    pub fn append(&mut self, entry: &[u8]) -> LeafIndex {
        self.append_leaf_hash(leaf_hash(entry))
    }

    /// Appends a leaf by its leaf hash and returns its index.
    #[inline]
    pub fn append_leaf_hash(&mut self, leaf: Hash) -> LeafIndex {
        // The same computation as `stored_hashes_for_leaf`, without the
        // batch read and its allocations: this is the hot path of rebuilding
        // a downloaded log.
        let index = LeafIndex(self.size);
        let mut h = leaf;
        self.hashes.push(h);
        for level in 0..(self.size + 1).trailing_zeros() {
            // The new leaf's complete subtree of 2^level leaves is stored
            // last, as its 2^(level+1) - 1 hashes, and the left sibling's
            // root comes right before them: an offset from the end, cheaper
            // than `stored_hash_index` (popcount, multiply) on every level.
            let sibling = self.hashes.len() - (2 << level);
            debug_assert_eq!(
                sibling as u64,
                stored_hash_index(level, (self.size >> level) - 1)
            );
            h = node_hash(&self.hashes[sibling], &h);
            self.hashes.push(h);
        }
        self.size += 1;
        index
    }

    /// The root hash at the current size.
    pub fn root(&self) -> Hash {
        tree_hash(self.size(), self).expect("an in-memory tree holds every hash it asks for")
    }

    /// All stored hashes, in stored-hash-index order.
    pub fn stored_hashes(&self) -> &[Hash] {
        &self.hashes
    }
}

impl HashReader for MemoryTree {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        indexes
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.hashes.get(i).copied())
                    .ok_or_else(|| TreeError::Storage(format!("no stored hash at index {i}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9162's recursive definition, straight from the text, as the oracle.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => Hash::empty_tree(),
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    #[test]
    fn stored_hash_index_round_trips() {
        for index in 0..5000u64 {
            let (level, n) = split_stored_hash_index(index);
            assert_eq!(stored_hash_index(level, n), index, "index {index}");
        }
        // Known positions from Go's tlog: leaves 0,1 at 0,1; their parent at 2.
        assert_eq!(stored_hash_index(0, 0), 0);
        assert_eq!(stored_hash_index(0, 1), 1);
        assert_eq!(stored_hash_index(1, 0), 2);
        assert_eq!(stored_hash_index(0, 2), 3);
        assert_eq!(stored_hash_index(2, 0), 6);
    }

    #[test]
    fn fast_append_matches_reader_append() {
        let mut fast = MemoryTree::new();
        let mut slow: Vec<Hash> = Vec::new();
        struct V<'a>(&'a [Hash]);
        impl HashReader for V<'_> {
            fn read_hashes(&self, ix: &[u64]) -> Result<Vec<Hash>, TreeError> {
                Ok(ix.iter().map(|&i| self.0[i as usize]).collect())
            }
        }
        for i in 0..1000u64 {
            let leaf = leaf_hash(&i.to_be_bytes());
            fast.append_leaf_hash(leaf);
            let new = stored_hashes_for_leaf(LeafIndex(i), leaf, &V(&slow)).unwrap();
            slow.extend(new);
            assert_eq!(fast.stored_hashes(), slow.as_slice());
        }
    }

    /// The per-leaf path, one reader call per leaf, as the oracle for the
    /// frontier: each leaf's hashes read from what is stored so far.
    fn per_leaf(leaves: &[Hash]) -> Vec<Hash> {
        let mut stored: Vec<Hash> = Vec::new();
        for (i, &leaf) in leaves.iter().enumerate() {
            let new = stored_hashes_for_leaf(LeafIndex(i as u64), leaf, &V(&stored)).unwrap();
            stored.extend(new);
        }
        stored
    }

    /// Sizes for the batch tests: every size to 70, and powers of two and
    /// their neighbours to 4,097.
    fn batch_sizes() -> Vec<u64> {
        let mut sizes: Vec<u64> = (0..=70).collect();
        for b in 7..=12 {
            sizes.extend([(1 << b) - 1, 1 << b, (1 << b) + 1]);
        }
        sizes.extend([1000, 3071, 3333, 4095, 4097]);
        sizes
    }

    /// Where a tree of `n` leaves is cut into batches: none, everywhere,
    /// at powers of two and their neighbours, and at a few odd strides.
    fn cuts(n: u64) -> Vec<Vec<u64>> {
        let mut out = vec![vec![], (1..n).collect()];
        let mut pow: Vec<u64> = (0..13)
            .flat_map(|b| [(1u64 << b) - 1, 1 << b, (1 << b) + 1])
            .filter(|&c| c > 0 && c < n)
            .collect();
        pow.sort_unstable();
        pow.dedup();
        out.push(pow);
        for stride in [2, 3, 7, 100, 1024] {
            out.push((1..n).filter(|c| c % stride == 0).collect());
        }
        // An uneven walk: batches of 1, 2, 3, ... leaves.
        let mut c = 0;
        let mut walk = Vec::new();
        for k in 1.. {
            c += k;
            if c >= n {
                break;
            }
            walk.push(c);
        }
        out.push(walk);
        out
    }

    #[test]
    fn batch_hashes_match_per_leaf_at_many_sizes_and_cuts() {
        let all: Vec<Hash> = (0..4097u64)
            .map(|i| leaf_hash(format!("entry {i}").as_bytes()))
            .collect();
        let oracle = per_leaf(&all);
        for n in batch_sizes() {
            let leaves = &all[..n as usize];
            let want = &oracle[..stored_hash_count(TreeSize(n)) as usize];
            let mut stored = MemoryTree::new();
            for cut in cuts(n) {
                // Batches between consecutive cuts, each started from
                // what the earlier ones stored.
                let mut got: Vec<Hash> = Vec::new();
                let mut bounds = vec![0];
                bounds.extend(&cut);
                bounds.push(n);
                for w in bounds.windows(2) {
                    let (lo, hi) = (w[0], w[1]);
                    let reader = V(&got);
                    let (hashes, root) = stored_hashes_for_leaves(
                        TreeSize(lo),
                        &leaves[lo as usize..hi as usize],
                        &reader,
                    )
                    .unwrap();
                    assert_eq!(
                        stored_hash_count(TreeSize(lo)) + hashes.len() as u64,
                        stored_hash_count(TreeSize(hi)),
                        "n {n}, batch [{lo}, {hi})"
                    );
                    got.extend(hashes);
                    assert_eq!(
                        root,
                        tree_hash(TreeSize(hi), &V(&got)).unwrap(),
                        "n {n}, batch [{lo}, {hi})"
                    );
                }
                assert_eq!(got, want, "n {n}, cuts {cut:?}");
            }
            for &leaf in leaves {
                stored.append_leaf_hash(leaf);
            }
            let frontier = Frontier::new(TreeSize(n), &stored).unwrap();
            assert_eq!(frontier.size(), TreeSize(n));
            assert_eq!(frontier.root(), mth(leaves), "n {n}");
        }
    }

    /// Reads stored hashes from a slice (the frontier tests' storage).
    struct V<'a>(&'a [Hash]);
    impl HashReader for V<'_> {
        fn read_hashes(&self, ix: &[u64]) -> Result<Vec<Hash>, TreeError> {
            ix.iter()
                .map(|&i| {
                    self.0
                        .get(i as usize)
                        .copied()
                        .ok_or_else(|| TreeError::Storage(format!("no stored hash {i}")))
                })
                .collect()
        }
    }

    #[test]
    fn frontier_reads_once_and_only_the_parts() {
        let tree = tree_of(1000);
        for size in [0u64, 1, 2, 3, 255, 256, 257, 999] {
            let counting = Counting(&tree, std::cell::Cell::new(0));
            let leaves: Vec<Hash> = (0..50u64).map(|i| leaf_hash(&i.to_be_bytes())).collect();
            stored_hashes_for_leaves(TreeSize(size), &leaves, &counting).unwrap();
            assert_eq!(counting.1.get(), size.count_ones() as usize, "size {size}");
        }
        assert_eq!(
            stored_hashes_for_leaves(TreeSize(3), &[], &Lying),
            Err(TreeError::ShortRead { asked: 2, got: 0 })
        );
    }

    #[test]
    fn stored_hash_count_matches_appends() {
        let mut tree = MemoryTree::new();
        assert_eq!(stored_hash_count(TreeSize(0)), 0);
        for i in 0..600u64 {
            tree.append(&i.to_be_bytes());
            assert_eq!(
                stored_hash_count(tree.size()),
                tree.stored_hashes().len() as u64
            );
        }
    }

    #[test]
    fn tree_hash_matches_recursive_definition_at_every_size() {
        let mut tree = MemoryTree::new();
        let mut leaves = Vec::new();
        assert_eq!(tree.root(), Hash::empty_tree());
        for i in 0..300u64 {
            let entry = format!("entry {i}");
            leaves.push(leaf_hash(entry.as_bytes()));
            tree.append(entry.as_bytes());
            assert_eq!(tree.root(), mth(&leaves), "size {}", i + 1);
        }
        // Old sizes stay answerable from the same storage.
        for size in 0..=300usize {
            assert_eq!(
                tree_hash(TreeSize(size as u64), &tree).unwrap(),
                mth(&leaves[..size])
            );
        }
    }

    #[test]
    fn proofs_refuse_bad_arguments() {
        let mut tree = MemoryTree::new();
        for i in 0..10u8 {
            tree.append(&[i]);
        }
        assert_eq!(
            inclusion_proof(LeafIndex(10), TreeSize(10), &tree),
            Err(TreeError::IndexNotInTree {
                index: 10,
                size: 10
            })
        );
        assert_eq!(
            consistency_proof(TreeSize(6), TreeSize(5), &tree),
            Err(TreeError::SizesOutOfOrder { old: 6, new: 5 })
        );
        assert_eq!(
            consistency_proof(TreeSize(0), TreeSize(5), &tree),
            Ok(vec![])
        );
        assert_eq!(
            consistency_proof(TreeSize(5), TreeSize(5), &tree),
            Ok(vec![])
        );
        // Asking past what storage holds is a storage error, not a panic.
        assert!(matches!(
            tree_hash(TreeSize(11), &tree),
            Err(TreeError::Storage(_))
        ));
    }

    struct Lying;
    impl HashReader for Lying {
        fn read_hashes(&self, _: &[u64]) -> Result<Vec<Hash>, TreeError> {
            Ok(vec![])
        }
    }

    #[test]
    fn short_reads_are_errors() {
        assert_eq!(
            tree_hash(TreeSize(3), &Lying),
            Err(TreeError::ShortRead { asked: 2, got: 0 })
        );
    }

    /// A tree of `n` leaves, for the edge tests.
    fn tree_of(n: u64) -> MemoryTree {
        let mut tree = MemoryTree::new();
        for i in 0..n {
            tree.append(format!("entry {i}").as_bytes());
        }
        tree
    }

    /// Indexes to prove at `size`: all of them up to 300, else a spread
    /// that includes both ends and every power of two.
    fn indexes_at(size: u64) -> Vec<u64> {
        if size <= 300 {
            return (0..size).collect();
        }
        let mut out: Vec<u64> = (0..40).map(|i| i * size / 40).collect();
        out.extend((0..64).map(|b| 1u64 << b).filter(|&p| p < size));
        out.extend([size - 1, size - 2, size / 2]);
        out
    }

    /// Sizes at which the edge tests run: every size to 300, then sizes
    /// around powers of two and some with many parts.
    fn edge_sizes() -> Vec<u64> {
        let mut sizes: Vec<u64> = (1..=300).collect();
        for b in 9..13 {
            sizes.extend([(1 << b) - 1, 1 << b, (1 << b) + 1]);
        }
        sizes.extend([1000, 2047 - 256, 3071, 3333, 4095]);
        sizes
    }

    #[test]
    fn edge_proofs_match_uncached_at_many_sizes() {
        let tree = tree_of(4097);
        for size in edge_sizes() {
            let size = TreeSize(size);
            let edge = RightEdge::new(size, &tree).unwrap();
            assert_eq!(edge.size(), size);
            assert_eq!(edge.root(), tree_hash(size, &tree).unwrap(), "size {size}");
            for index in indexes_at(size.get()) {
                let index = LeafIndex(index);
                assert_eq!(
                    inclusion_proof_with_edge(index, size, &edge, &tree),
                    inclusion_proof(index, size, &tree),
                    "index {index} size {size}"
                );
            }
        }
    }

    #[test]
    fn edge_of_the_empty_tree_has_the_empty_root() {
        let edge = RightEdge::new(TreeSize(0), &MemoryTree::new()).unwrap();
        assert_eq!(edge.root(), Hash::empty_tree());
        assert_eq!(
            inclusion_proof_with_edge(LeafIndex(0), TreeSize(0), &edge, &MemoryTree::new()),
            Err(TreeError::IndexNotInTree { index: 0, size: 0 })
        );
    }

    #[test]
    fn edge_of_another_size_is_never_used() {
        let tree = tree_of(600);
        // An edge whose every fold is wrong: if any of its hashes were used
        // for a proof at another size, the proof would differ.
        let poisoned = |size: u64| {
            let mut edge = RightEdge::new(TreeSize(size), &tree).unwrap();
            for s in &mut edge.suffixes {
                s.1 = leaf_hash(b"not a fold of this tree");
            }
            edge
        };
        for (edge_size, size) in [
            (599, 600),
            (600, 599),
            (300, 600),
            (1, 2),
            (256, 257),
            (257, 256),
        ] {
            let edge = poisoned(edge_size);
            for index in indexes_at(size) {
                let index = LeafIndex(index);
                assert_eq!(
                    inclusion_proof_with_edge(index, TreeSize(size), &edge, &tree),
                    inclusion_proof(index, TreeSize(size), &tree),
                    "edge {edge_size}, index {index} size {size}"
                );
            }
        }
    }

    /// Counts the hashes asked for.
    struct Counting<'a>(&'a MemoryTree, std::cell::Cell<usize>);
    impl HashReader for Counting<'_> {
        fn read_hashes(&self, ix: &[u64]) -> Result<Vec<Hash>, TreeError> {
            self.1.set(self.1.get() + ix.len());
            self.0.read_hashes(ix)
        }
    }

    #[test]
    fn edge_proofs_read_one_stored_hash_per_line_at_most() {
        let tree = tree_of(1000);
        let size = TreeSize(999); // 1111100111 in binary: eight parts
        let edge = RightEdge::new(size, &tree).unwrap();
        for index in 0..999 {
            let counting = Counting(&tree, std::cell::Cell::new(0));
            let proof =
                inclusion_proof_with_edge(LeafIndex(index), size, &edge, &counting).unwrap();
            assert!(counting.1.get() <= proof.len(), "index {index}");
        }
    }

    #[test]
    fn edge_read_errors_are_errors() {
        assert_eq!(
            RightEdge::new(TreeSize(3), &Lying),
            Err(TreeError::ShortRead { asked: 2, got: 0 })
        );
    }
}
