//! Threshold custody: when custodians' share receipts put an escrowed key
//! together again.
//!
//! Under threshold custody each escrowed key is split k of n among
//! custodians; each custodian logs a `release` receipt naming the share it
//! released ([`ShareRef`]: the key's tag for the request, the share's index, k and
//! n). A key exists again only once k shares with distinct indices are out,
//! and since each custodian holds one share, they must come from k distinct
//! custodians. This module decides that, in one place: the ledger's
//! statuses (a request is "released" once a key of it is put together), the
//! auditor's rules (a provider's release with fewer keys put together than
//! it claims) and the web view's timeline read it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use daylight_schemas::{KeyTag, ShareRef};

use crate::Summary;

/// One custodian's receipt for a share: who signed it and what it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Receipt<'a> {
    /// The custodian's key name.
    pub custodian: &'a str,
    /// The share it released.
    pub share: ShareRef,
}

/// The custodians' share releases among `entries`, as receipts.
pub fn receipts(entries: &[Summary]) -> Vec<Receipt<'_>> {
    entries
        .iter()
        .filter(|s| s.is_share_release())
        .filter_map(|s| {
            Some(Receipt {
                custodian: &s.signer,
                share: s.share?,
            })
        })
        .collect()
}

/// How many of `receipts` could be combined into one key: shares with
/// distinct indices, each from a different custodian. Two receipts by one
/// custodian, or two naming one index, count once: this is the largest
/// matching of custodians to indices. The caller gives receipts of one key
/// and one split; the key and the split are not looked at here.
pub fn usable(receipts: &[Receipt<'_>]) -> usize {
    // Each custodian's indices (a custodian answering again names its
    // share again: the same edge twice is one edge).
    let mut edges: BTreeMap<&str, BTreeSet<u8>> = BTreeMap::new();
    for r in receipts {
        edges.entry(r.custodian).or_default().insert(r.share.index);
    }
    let edges: Vec<Vec<u8>> = edges
        .into_values()
        .map(|s| s.into_iter().collect())
        .collect();
    // Kuhn's augmenting paths: at most 255 indices, so small.
    let mut holder: HashMap<u8, usize> = HashMap::new();
    let mut matched = 0;
    for c in 0..edges.len() {
        let mut seen = BTreeSet::new();
        if augment(c, &edges, &mut holder, &mut seen) {
            matched += 1;
        }
    }
    matched
}

/// Finds a free index for custodian `c`, moving earlier custodians to
/// other indices if they have one.
fn augment(
    c: usize,
    edges: &[Vec<u8>],
    holder: &mut HashMap<u8, usize>,
    seen: &mut BTreeSet<u8>,
) -> bool {
    for &i in &edges[c] {
        if !seen.insert(i) {
            continue;
        }
        let free = match holder.get(&i).copied() {
            None => true,
            Some(other) => augment(other, edges, holder, seen),
        };
        if free {
            holder.insert(i, c);
            return true;
        }
    }
    false
}

/// The keys `receipts` put together, in order: those for which the
/// receipts naming one split (k of n) give at least k usable shares
/// ([`usable`]). Receipts of one key that name different splits are not
/// combined: shares of different splits do not make one key.
pub fn assembled(receipts: &[Receipt<'_>]) -> Vec<KeyTag> {
    let mut by_split: BTreeMap<(KeyTag, u8, u8), Vec<Receipt<'_>>> = BTreeMap::new();
    for r in receipts {
        by_split
            .entry((r.share.key, r.share.threshold, r.share.shares))
            .or_default()
            .push(*r);
    }
    let mut out: Vec<KeyTag> = by_split
        .into_iter()
        .filter(|((_, k, _), rs)| usable(rs) >= usize::from(*k))
        .map(|((key, _, _), _)| key)
        .collect();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(key: u8, index: u8, threshold: u8, shares: u8) -> ShareRef {
        ShareRef {
            key: KeyTag([key; 32]),
            index,
            threshold,
            shares,
        }
    }

    fn r(custodian: &str, share: ShareRef) -> Receipt<'_> {
        Receipt { custodian, share }
    }

    #[test]
    fn k_distinct_shares_from_k_custodians_put_a_key_together() {
        let one = [r("a", share(1, 1, 2, 3))];
        assert_eq!(usable(&one), 1);
        assert!(assembled(&one).is_empty());
        let two = [r("a", share(1, 1, 2, 3)), r("b", share(1, 2, 2, 3))];
        assert_eq!(assembled(&two), vec![KeyTag([1; 32])]);
    }

    #[test]
    fn repeats_and_one_custodians_several_shares_count_once() {
        // One custodian twice, with the same or another index.
        let same = [r("a", share(1, 1, 2, 3)), r("a", share(1, 1, 2, 3))];
        let other = [r("a", share(1, 1, 2, 3)), r("a", share(1, 2, 2, 3))];
        // Two custodians naming the same index.
        let clash = [r("a", share(1, 1, 2, 3)), r("b", share(1, 1, 2, 3))];
        for rs in [&same[..], &other[..], &clash[..]] {
            assert_eq!(usable(rs), 1, "{rs:?}");
            assert!(assembled(rs).is_empty(), "{rs:?}");
        }
        // A matching, not a count of distinct values: three custodians
        // and three indices, but a and b can only give index 1.
        let tight = [
            r("a", share(1, 1, 3, 3)),
            r("b", share(1, 1, 3, 3)),
            r("c", share(1, 2, 3, 3)),
            r("c", share(1, 3, 3, 3)),
        ];
        assert_eq!(usable(&tight), 2);
        assert!(assembled(&tight).is_empty());
        // An augmenting path: a first takes 1, then b needs a moved to 2.
        let moved = [
            r("a", share(1, 1, 2, 3)),
            r("a", share(1, 2, 2, 3)),
            r("b", share(1, 1, 2, 3)),
        ];
        assert_eq!(usable(&moved), 2);
    }

    #[test]
    fn splits_and_keys_are_not_mixed() {
        let mixed = [r("a", share(1, 1, 2, 3)), r("b", share(1, 2, 2, 4))];
        assert!(assembled(&mixed).is_empty());
        let keys = [
            r("a", share(1, 1, 2, 3)),
            r("b", share(2, 2, 2, 3)),
            r("c", share(2, 3, 2, 3)),
        ];
        assert_eq!(assembled(&keys), vec![KeyTag([2; 32])]);
    }
}
