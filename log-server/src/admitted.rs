//! Records the admission has parsed, kept a short while by leaf hash, so
//! that the web index, which reads every new entry back from the log, need
//! not parse each one again (about 3.5 us a record, a twentieth of a
//! submission's CPU in the served log).
//!
//! A kept record is handed out only for an entry of exactly its bytes;
//! anything else (an entry another frontend admitted, one read after its
//! record was dropped to make room, or other bytes under the same hash) is
//! parsed as before. The cache is bounded: past [`Admitted::CAPACITY`]
//! records or [`Admitted::MAX_BYTES`] of their bytes, the oldest go first,
//! as the index reads the oldest first.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use daylight_core::Hash;
use daylight_schemas::SignedRecord;

/// Parsed records by leaf hash, shared by the admission (which keeps them)
/// and the web index (which takes them).
#[derive(Debug)]
pub struct Admitted {
    capacity: usize,
    max_bytes: usize,
    recent: Mutex<Recent>,
    reused: AtomicU64,
}

#[derive(Debug, Default)]
struct Recent {
    /// Each record with the number it was kept under.
    by_leaf: HashMap<Hash, (u64, SignedRecord)>,
    /// Numbers and leaf hashes in the order kept; may name records since
    /// taken, or kept again under a later number.
    order: VecDeque<(u64, Hash)>,
    next: u64,
    /// The record bytes of those in `by_leaf`.
    bytes: usize,
}

impl Admitted {
    /// Records kept at most: about a second of submissions at the served
    /// log's highest rate, so that an index that polls twice a second
    /// finds them (about 16 MB of ~1 KB records).
    pub const CAPACITY: usize = 16_384;

    /// Record bytes kept at most, whatever the records' sizes (a record
    /// may be 64 KB); their parsed values take about as much again.
    pub const MAX_BYTES: usize = 32 << 20;

    /// An empty cache of at most `capacity` records and `max_bytes` of
    /// their bytes ([`CAPACITY`](Self::CAPACITY) and
    /// [`MAX_BYTES`](Self::MAX_BYTES) for a served log).
    pub fn new(capacity: usize, max_bytes: usize) -> Admitted {
        Admitted {
            capacity: capacity.max(1),
            max_bytes,
            recent: Mutex::default(),
            reused: AtomicU64::new(0),
        }
    }

    /// Keeps `record`, whose leaf hash is `leaf`, dropping the oldest
    /// beyond the capacity or the byte budget.
    pub fn keep(&self, leaf: Hash, record: SignedRecord) {
        // Records dropped here are freed after the lock is released.
        let mut dropped = Vec::new();
        let mut recent = self.lock();
        let n = recent.next;
        recent.next += 1;
        recent.bytes += record.as_bytes().len();
        if let Some((_, old)) = recent.by_leaf.insert(leaf, (n, record)) {
            recent.bytes -= old.as_bytes().len();
            dropped.push(old);
        }
        recent.order.push_back((n, leaf));
        while recent.order.len() > self.capacity || recent.bytes > self.max_bytes {
            let Some((old, leaf)) = recent.order.pop_front() else {
                break;
            };
            // A leaf kept again since stays: its later number drops it.
            if recent.by_leaf.get(&leaf).is_some_and(|(n, _)| *n == old) {
                if let Some((_, r)) = recent.by_leaf.remove(&leaf) {
                    recent.bytes -= r.as_bytes().len();
                    dropped.push(r);
                }
            }
        }
        drop(recent);
        drop(dropped);
    }

    /// The record of the entry `data` with leaf hash `leaf`: the one kept,
    /// when its bytes are exactly `data`; else `data` parsed (a record kept
    /// under `leaf` with other bytes is dropped). Either way nothing stays
    /// kept under `leaf`. `None` when `data` is not a signed record.
    pub fn record_of(&self, data: &[u8], leaf: &Hash) -> Option<SignedRecord> {
        let kept = {
            let mut recent = self.lock();
            let kept = recent.by_leaf.remove(leaf);
            if let Some((_, r)) = &kept {
                recent.bytes -= r.as_bytes().len();
            }
            kept
        };
        match kept {
            Some((_, record)) if record.as_bytes() == data => {
                self.reused.fetch_add(1, Ordering::Relaxed);
                Some(record)
            }
            _ => SignedRecord::parse(data).ok(),
        }
    }

    /// Records handed out without a parse so far.
    pub fn reused(&self) -> u64 {
        self.reused.load(Ordering::Relaxed)
    }

    /// Records kept now.
    pub fn len(&self) -> usize {
        self.lock().by_leaf.len()
    }

    /// No record is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Recent> {
        // Nothing panics with the lock held: a poisoned cache is as good.
        self.recent.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use daylight_core::{KeyName, KeyType, SignerKey};
    use daylight_schemas::Draft;

    /// `n` distinct signed request records.
    fn records(n: u8) -> Vec<SignedRecord> {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../schemas/examples/request.json"
        ))
        .unwrap();
        let agency = SignerKey::from_seed(
            KeyName::new("agency.test").unwrap(),
            KeyType::Ed25519,
            [7; 32],
        );
        // Before the example's dates, which are fixed.
        let created = chrono::DateTime::parse_from_rfc3339("2026-01-02T00:00:00Z")
            .unwrap()
            .to_utc();
        (0..n)
            .map(|i| {
                let mut salt = i;
                let draft = Draft::from_json(&text).unwrap();
                let mut random = |buf: &mut [u8]| {
                    salt = salt.wrapping_add(101);
                    buf.fill(salt);
                };
                draft
                    .seal(&agency, "admitted.test/log", created, &mut random)
                    .unwrap()
                    .0
            })
            .collect()
    }

    /// A record is handed out once, without a parse, for its own bytes;
    /// the next time, and for other bytes under its hash, the bytes given
    /// are parsed.
    #[test]
    fn a_kept_record_is_handed_out_for_its_own_bytes_only() {
        let rs = records(2);
        let (a, b) = (&rs[0], &rs[1]);
        let admitted = Admitted::new(8, Admitted::MAX_BYTES);
        admitted.keep(a.leaf_hash(), a.clone());
        assert_eq!(admitted.len(), 1);
        let got = admitted.record_of(a.as_bytes(), &a.leaf_hash()).unwrap();
        assert_eq!(got.as_bytes(), a.as_bytes());
        assert_eq!((admitted.reused(), admitted.len()), (1, 0));
        // Taken: parsed now.
        let again = admitted.record_of(a.as_bytes(), &a.leaf_hash()).unwrap();
        assert_eq!(again.as_bytes(), a.as_bytes());
        assert_eq!(admitted.reused(), 1);
        // A record kept under another entry's hash is never handed out
        // for it: the entry's own bytes are parsed.
        admitted.keep(b.leaf_hash(), a.clone());
        let got = admitted.record_of(b.as_bytes(), &b.leaf_hash()).unwrap();
        assert_eq!(got.as_bytes(), b.as_bytes());
        assert_eq!(admitted.reused(), 1);
        // Bytes that are no record: none.
        admitted.keep(a.leaf_hash(), a.clone());
        assert!(admitted
            .record_of(b"not a record", &a.leaf_hash())
            .is_none());
    }

    /// Past the byte budget the oldest go first, whatever the count.
    #[test]
    fn the_oldest_go_first_past_the_byte_budget() {
        let rs = records(4);
        let size = rs[0].as_bytes().len();
        assert!(rs.iter().all(|r| r.as_bytes().len() == size));
        // Room for two records' bytes and a little.
        let admitted = Admitted::new(100, 2 * size + size / 2);
        for r in &rs {
            admitted.keep(r.leaf_hash(), r.clone());
        }
        assert_eq!(admitted.len(), 2);
        for (i, r) in rs.iter().enumerate() {
            let before = admitted.reused();
            admitted.record_of(r.as_bytes(), &r.leaf_hash()).unwrap();
            assert_eq!(admitted.reused() > before, i >= 2, "record {i}");
        }
        // Taken records free their bytes: two fit again.
        for r in &rs[..2] {
            admitted.keep(r.leaf_hash(), r.clone());
        }
        assert_eq!(admitted.len(), 2);
    }

    /// Past the capacity the oldest go first; a record kept again keeps
    /// its later place.
    #[test]
    fn the_oldest_go_first_past_the_capacity() {
        let rs = records(5);
        let admitted = Admitted::new(3, Admitted::MAX_BYTES);
        for r in &rs[..3] {
            admitted.keep(r.leaf_hash(), r.clone());
        }
        // Record 0 again: now the newest.
        admitted.keep(rs[0].leaf_hash(), rs[0].clone());
        for r in &rs[3..] {
            admitted.keep(r.leaf_hash(), r.clone());
        }
        // Kept: 0 (again, after 2), 3 and 4; 1 and 2 went first.
        assert_eq!(admitted.len(), 3);
        for (i, r) in rs.iter().enumerate() {
            let before = admitted.reused();
            admitted.record_of(r.as_bytes(), &r.leaf_hash()).unwrap();
            let handed = admitted.reused() > before;
            assert_eq!(handed, [0, 3, 4].contains(&i), "record {i}");
        }
    }
}
