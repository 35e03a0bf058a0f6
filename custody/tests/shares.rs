//! Splitting and recovery, from outside the crate: every k of n shares give
//! the key back; k - 1 shares, a changed share, a duplicate or a share of
//! another split are refused with the right reason; and one share of a
//! 2-of-3 split is consistent with every possible key (it tells nothing).

#![allow(clippy::unwrap_used)]

use daylight_custody::{recover, split, CustodyError, EscrowKey, Share, Slot};
use daylight_schemas::KeyCheck;

fn slot() -> Slot {
    Slot::of("provider.example", "alice@example.net")
}

/// Every subset of `0..n` with `k` members.
fn subsets(n: usize, k: usize) -> Vec<Vec<usize>> {
    (0u32..1 << n)
        .filter(|m| m.count_ones() as usize == k)
        .map(|m| (0..n).filter(|i| m & (1 << i) != 0).collect())
        .collect()
}

#[test]
fn any_k_of_n_shares_give_the_key_and_k_minus_1_do_not() {
    for (k, n) in [(2u8, 3u8), (3, 5), (2, 2), (5, 5)] {
        let key = EscrowKey::generate().unwrap();
        let shares = split(&key, slot(), k, n).unwrap();
        assert_eq!(shares.len(), usize::from(n));
        for (i, s) in shares.iter().enumerate() {
            assert_eq!(usize::from(s.reference.index), i + 1);
            assert_eq!(s.reference.key, key.check());
            assert_eq!((s.reference.threshold, s.reference.shares), (k, n));
        }
        for pick in subsets(usize::from(n), usize::from(k)) {
            let some: Vec<Share> = pick.iter().map(|&i| shares[i].clone()).collect();
            assert_eq!(recover(&some).unwrap(), key, "{k} of {n}: {pick:?}");
        }
        for pick in subsets(usize::from(n), usize::from(k) - 1) {
            let some: Vec<Share> = pick.iter().map(|&i| shares[i].clone()).collect();
            let err = recover(&some).unwrap_err();
            let want = if pick.is_empty() {
                CustodyError::NoShares
            } else {
                CustodyError::TooFew {
                    have: pick.len(),
                    need: usize::from(k),
                }
            };
            assert_eq!(err, want, "{k} of {n}: {pick:?}");
        }
    }
}

#[test]
fn one_share_of_two_is_consistent_with_every_key() {
    // Information-theoretic secrecy, checked exhaustively on one byte: for
    // share 1's first byte, every candidate key byte has some second share
    // that completes it. So k - 1 = 1 share rules out no key.
    let key = EscrowKey::generate().unwrap();
    let share = &split(&key, slot(), 2, 3).unwrap()[0];
    let x1 = share.reference.index;
    let y1 = share.value[0];
    let mut reachable = [false; 256];
    for y2 in 0..=255u8 {
        let points = [
            blahaj::Share::try_from(&[x1, y1][..]).unwrap(),
            blahaj::Share::try_from(&[2u8, y2][..]).unwrap(),
        ];
        let secret = blahaj::Sharks(2).recover(&points).unwrap();
        reachable[usize::from(secret[0])] = true;
    }
    assert!(reachable.iter().all(|&r| r), "some key byte is ruled out");
}

#[test]
fn changed_mixed_or_repeated_shares_are_refused() {
    let key = EscrowKey::generate().unwrap();
    let shares = split(&key, slot(), 2, 3).unwrap();

    // A flipped bit in a value: the key put together fails its check.
    for byte in [0, 17, 31] {
        let mut bad = shares[1].clone();
        bad.value[byte] ^= 0x80;
        assert!(
            matches!(
                recover(&[shares[0].clone(), bad]),
                Err(CustodyError::CheckMismatch(_))
            ),
            "byte {byte}"
        );
    }
    // A wrong index on a share (the point moves): the check fails.
    let mut moved = shares[1].clone();
    moved.reference.index = 3;
    assert!(matches!(
        recover(&[shares[0].clone(), moved]),
        Err(CustodyError::CheckMismatch(_))
    ));
    // The same share twice is one share.
    assert_eq!(
        recover(&[shares[0].clone(), shares[0].clone()]),
        Err(CustodyError::DuplicateIndex(1))
    );
    // A share of another key, another slot, another split.
    let other = split(&EscrowKey::generate().unwrap(), slot(), 2, 3).unwrap();
    assert!(matches!(
        recover(&[shares[0].clone(), other[1].clone()]),
        Err(CustodyError::Mixed(_))
    ));
    let mut elsewhere = shares[1].clone();
    elsewhere.slot = Slot::of("provider.example", "bob@example.net");
    assert!(matches!(
        recover(&[shares[0].clone(), elsewhere]),
        Err(CustodyError::Mixed(_))
    ));
    let mut resplit = shares[1].clone();
    resplit.reference.shares = 4;
    assert!(matches!(
        recover(&[shares[0].clone(), resplit]),
        Err(CustodyError::Mixed(_))
    ));
    // A check value naming another key: everything else right.
    let mut renamed = shares.clone();
    for s in &mut renamed {
        s.reference.key = KeyCheck([9; 32]);
    }
    assert!(matches!(
        recover(&renamed[..2]),
        Err(CustodyError::CheckMismatch(_))
    ));
}

#[test]
fn impossible_splits_are_refused() {
    let key = EscrowKey::generate().unwrap();
    for (k, n) in [(0u8, 3u8), (1, 3), (4, 3), (2, 1)] {
        assert_eq!(
            split(&key, slot(), k, n).unwrap_err(),
            CustodyError::BadSplit {
                threshold: k,
                shares: n
            }
        );
    }
}

#[test]
fn shares_parse_only_when_their_numbers_hold() {
    let key = EscrowKey::generate().unwrap();
    let share = split(&key, slot(), 2, 3).unwrap().remove(2);
    let json = share.to_json();
    assert_eq!(Share::from_json(&json).unwrap(), share);
    let text = String::from_utf8(json).unwrap();
    for (from, to) in [
        ("\"index\":3", "\"index\":0"),
        ("\"index\":3", "\"index\":4"),
        ("\"threshold\":2", "\"threshold\":1"),
        ("\"threshold\":2", "\"threshold\":4"),
        ("\"index\":3", "\"index\":3,\"extra\":1"),
    ] {
        assert!(text.contains(from), "{text}");
        let bad = text.replace(from, to);
        assert!(
            matches!(
                Share::from_json(bad.as_bytes()),
                Err(CustodyError::Malformed { .. })
            ),
            "{bad}"
        );
    }
    let short = text.replace(&hex::encode(share.value), "abcd");
    assert!(Share::from_json(short.as_bytes()).is_err());
    assert!(!format!("{share:?}").contains(&hex::encode(share.value)));
}
