//! One conformance suite for every `LogStore` backend: each test function
//! below runs against SQLite and against PostgreSQL (a scratch schema on the
//! test server), so a new backend is done when it passes them all.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr as _;
use std::sync::Arc;

use daylight_core::tree::{stored_hash_count, tree_hash, MemoryTree};
use daylight_core::{leaf_hash, KeyName, KeyType, LeafIndex, SignerKey, TreeSize, VerifierKey};
use daylight_log_server::integrate::{integrate, integrate_committed, Committed, IntegrateError};
use daylight_log_server::postgres::{PostgresStore, ScratchSchema};
use daylight_log_server::sqlite::SqliteStore;
use daylight_log_server::store::{
    Append, Lease, LogStore, NewEntry, QueueRefusal, Settled, StoreError, StoreHashes,
};
use std::time::Duration;

const ORIGIN: &str = "conformance.test/log";

/// A backend under test: makes a new log, and opens it again.
trait Backend {
    fn create(&self, origin: &str, quorum: usize) -> Result<Arc<dyn LogStore>, StoreError>;
    fn reopen(&self) -> Result<Arc<dyn LogStore>, StoreError>;
}

struct Sqlite(tempfile::TempDir);

impl Backend for Sqlite {
    fn create(&self, origin: &str, quorum: usize) -> Result<Arc<dyn LogStore>, StoreError> {
        Ok(Arc::new(SqliteStore::create(
            &self.0.path().join("log.db"),
            origin,
            quorum,
        )?))
    }
    fn reopen(&self) -> Result<Arc<dyn LogStore>, StoreError> {
        Ok(Arc::new(SqliteStore::open(&self.0.path().join("log.db"))?))
    }
}

struct Postgres(ScratchSchema);

impl Backend for Postgres {
    fn create(&self, origin: &str, quorum: usize) -> Result<Arc<dyn LogStore>, StoreError> {
        Ok(Arc::new(PostgresStore::create(
            self.0.url(),
            origin,
            quorum,
        )?))
    }
    fn reopen(&self) -> Result<Arc<dyn LogStore>, StoreError> {
        Ok(Arc::new(PostgresStore::open(self.0.url())?))
    }
}

fn log_key() -> SignerKey {
    SignerKey::from_seed(KeyName::new(ORIGIN).unwrap(), KeyType::Ed25519, [7; 32])
}

fn entry(i: u64) -> NewEntry {
    let data = format!(
        "{{\"entry\":{i},\"pad\":\"{}\"}}",
        "x".repeat((i % 50) as usize)
    );
    NewEntry {
        leaf_hash: leaf_hash(data.as_bytes()),
        data: data.into_bytes(),
        kind: if i % 3 == 0 { "registry" } else { "request" }.into(),
        signer: format!("signer{}", i % 4),
        packed: None,
    }
}

fn witness_key(name: &str, seed: u8) -> VerifierKey {
    SignerKey::from_seed(
        KeyName::new(name).unwrap(),
        KeyType::CosignatureV1,
        [seed; 32],
    )
    .verifier()
    .clone()
}

/// A new log with `n` entries integrated in batches of `batch`.
fn filled(b: &dyn Backend, n: u64, batch: u64) -> (Arc<dyn LogStore>, MemoryTree) {
    let store = b.create(ORIGIN, 2).unwrap();
    let key = log_key();
    let mut reference = MemoryTree::new();
    let mut i = 0;
    while i < n {
        let entries: Vec<NewEntry> = (i..(i + batch).min(n)).map(entry).collect();
        for e in &entries {
            reference.append(&e.data);
        }
        let done = integrate(store.as_ref(), &key, ORIGIN, entries).unwrap();
        assert_eq!(done.first, LeafIndex(i));
        i = done.size.get();
        assert_eq!(done.root, reference.root(), "root at size {i}");
    }
    (store, reference)
}

fn new_log_is_empty(b: &dyn Backend) {
    let store = b.create(ORIGIN, 3).unwrap();
    let meta = store.meta().unwrap();
    assert_eq!((meta.origin.as_str(), meta.quorum), (ORIGIN, 3));
    assert_eq!(store.size().unwrap(), TreeSize(0));
    assert_eq!(store.latest_checkpoint().unwrap(), None);
    assert_eq!(store.published_checkpoint().unwrap(), None);
    assert!(store.witnesses().unwrap().is_empty());
    assert_eq!(store.entry(LeafIndex(0)).unwrap(), None);
    assert!(store.entries(LeafIndex(0), 10).unwrap().is_empty());
    assert_eq!(store.find_leaf(&leaf_hash(b"nothing")).unwrap(), None);
    // A second log in the same place is refused, and the first is untouched.
    assert!(b.create("other.test/log", 1).is_err());
    assert_eq!(b.reopen().unwrap().meta().unwrap().origin, ORIGIN);
}

fn appended_entries_read_back_in_order(b: &dyn Backend) {
    let (store, _) = filled(b, 300, 64);
    assert_eq!(store.size().unwrap(), TreeSize(300));
    for i in [0, 1, 63, 64, 299] {
        let e = store.entry(LeafIndex(i)).unwrap().unwrap();
        assert_eq!(e.index, LeafIndex(i));
        assert_eq!(e.data, entry(i).data);
        assert_eq!(e.leaf_hash, entry(i).leaf_hash);
    }
    assert_eq!(store.entry(LeafIndex(300)).unwrap(), None);
    let range = store.entries(LeafIndex(250), 100).unwrap();
    assert_eq!(range.len(), 50, "a range stops at the end of the log");
    assert!(
        range
            .iter()
            .enumerate()
            .all(|(k, e)| e.index == LeafIndex(250 + k as u64)
                && e.data == entry(250 + k as u64).data)
    );
    let registry = store.entries_of_kind("registry", LeafIndex(100)).unwrap();
    let expected: Vec<u64> = (100..300).filter(|i| i % 3 == 0).collect();
    assert_eq!(
        registry.iter().map(|e| e.index.get()).collect::<Vec<_>>(),
        expected
    );
}

fn leaves_are_found_by_hash(b: &dyn Backend) {
    let (store, _) = filled(b, 100, 30);
    assert_eq!(
        store.find_leaf(&entry(42).leaf_hash).unwrap(),
        Some(LeafIndex(42))
    );
    let asked = [
        entry(99).leaf_hash,
        leaf_hash(b"absent"),
        entry(0).leaf_hash,
        entry(99).leaf_hash,
    ];
    assert_eq!(
        store.find_leaves(&asked).unwrap(),
        vec![
            Some(LeafIndex(99)),
            None,
            Some(LeafIndex(0)),
            Some(LeafIndex(99))
        ]
    );
    assert!(store.find_leaves(&[]).unwrap().is_empty());
}

fn stored_hashes_match_the_reference_tree(b: &dyn Backend) {
    let (store, reference) = filled(b, 1000, 97);
    let count = stored_hash_count(TreeSize(1000));
    let all: Vec<u64> = (0..count).collect();
    // Twice: the second read comes partly from the backend's cache.
    for _ in 0..2 {
        assert_eq!(store.read_hashes(&all).unwrap(), reference.stored_hashes());
    }
    let some = [count - 1, 0, 517, 0];
    let want: Vec<_> = some
        .iter()
        .map(|&i| reference.stored_hashes()[i as usize])
        .collect();
    assert_eq!(store.read_hashes(&some).unwrap(), want);
    assert!(store.read_hashes(&[count]).is_err(), "a hash not stored");
    for size in [1, 2, 3, 64, 65, 999, 1000] {
        let mut prefix = MemoryTree::new();
        for i in 0..size {
            prefix.append(&entry(i).data);
        }
        assert_eq!(
            tree_hash(TreeSize(size), &StoreHashes::new(store.as_ref())).unwrap(),
            prefix.root()
        );
    }
}

fn checkpoints_follow_the_tree(b: &dyn Backend) {
    let store = b.create(ORIGIN, 1).unwrap();
    let key = log_key();
    integrate(store.as_ref(), &key, ORIGIN, vec![]).unwrap();
    let empty = store.latest_checkpoint().unwrap().unwrap();
    assert!(String::from_utf8_lossy(&empty).starts_with(&format!("{ORIGIN}\n0\n")));
    let done = integrate(store.as_ref(), &key, ORIGIN, (0..5).map(entry).collect()).unwrap();
    assert_eq!(store.latest_checkpoint().unwrap().unwrap(), done.checkpoint);
    assert!(String::from_utf8_lossy(&done.checkpoint).starts_with(&format!("{ORIGIN}\n5\n")));
}

fn publish_never_goes_back(b: &dyn Backend) {
    let store = b.create(ORIGIN, 1).unwrap();
    store.publish(TreeSize(5), b"five").unwrap();
    store.publish(TreeSize(3), b"three").unwrap();
    assert_eq!(store.published_checkpoint().unwrap().unwrap(), b"five");
    // The same size again: more cosignatures on the same checkpoint.
    store.publish(TreeSize(5), b"five, cosigned again").unwrap();
    assert_eq!(
        store.published_checkpoint().unwrap().unwrap(),
        b"five, cosigned again"
    );
    store.publish(TreeSize(9), b"nine").unwrap();
    assert_eq!(store.published_checkpoint().unwrap().unwrap(), b"nine");
    assert_eq!(
        b.reopen().unwrap().published_checkpoint().unwrap().unwrap(),
        b"nine"
    );
}

fn mirrors_are_kept(b: &dyn Backend) {
    let store = b.create(ORIGIN, 1).unwrap();
    assert_eq!(store.mirrors().unwrap(), Default::default());
    let (m1, m2) = (witness_key("m1.test", 3), witness_key("m2.test", 4));
    store.add_mirror(&m2, "http://m2.test").unwrap();
    store.add_mirror(&m1, "http://m1.test").unwrap();
    store.add_mirror(&m1, "http://m1.test/moved").unwrap();
    store.set_mirror_quorum(2).unwrap();
    store.set_mirror_quorum(1).unwrap();
    let set = b.reopen().unwrap().mirrors().unwrap();
    assert_eq!(set.quorum, 1);
    let mut got: Vec<(String, String)> = set
        .mirrors
        .iter()
        .map(|m| (m.key.to_string(), m.url.clone()))
        .collect();
    got.sort();
    let mut want = vec![
        (m1.to_string(), "http://m1.test/moved".to_string()),
        (m2.to_string(), "http://m2.test".to_string()),
    ];
    want.sort();
    assert_eq!(got, want);
    // Mirrors are not witnesses.
    assert!(store.witnesses().unwrap().is_empty());
}

fn witnesses_are_kept(b: &dyn Backend) {
    let store = b.create(ORIGIN, 2).unwrap();
    let (w1, w2) = (witness_key("w1.test", 1), witness_key("w2.test", 2));
    store.add_witness(&w2, "http://w2.test/").unwrap();
    store.add_witness(&w1, "http://w1.test/").unwrap();
    store.add_witness(&w1, "http://w1.test/moved/").unwrap();
    store.set_witness_size(&w2, TreeSize(17)).unwrap();
    let ws = b.reopen().unwrap().witnesses().unwrap();
    assert_eq!(ws.len(), 2);
    let w1_row = ws.iter().find(|w| w.key == w1).unwrap();
    assert_eq!(
        (w1_row.url.as_str(), w1_row.known_size),
        ("http://w1.test/moved/", TreeSize(0))
    );
    let w2_row = ws.iter().find(|w| w.key == w2).unwrap();
    assert_eq!(
        (w2_row.url.as_str(), w2_row.known_size),
        ("http://w2.test/", TreeSize(17))
    );
}

fn a_stale_append_is_refused_and_writes_nothing(b: &dyn Backend) {
    let (store, _) = filled(b, 10, 10);
    let checkpoint = store.latest_checkpoint().unwrap();
    let stale = Append {
        old_size: TreeSize(8),
        fence: None,
        settled: Settled::default(),
        entries: vec![entry(100)],
        hashes: vec![entry(100).leaf_hash],
        checkpoint: b"stale".to_vec(),
    };
    match store.append(stale) {
        Err(StoreError::SizeChanged { expected, found }) => {
            assert_eq!((expected, found), (8, 10));
        }
        other => panic!("a stale append must be refused, got {other:?}"),
    }
    assert_eq!(store.size().unwrap(), TreeSize(10));
    assert_eq!(store.find_leaf(&entry(100).leaf_hash).unwrap(), None);
    assert_eq!(store.latest_checkpoint().unwrap(), checkpoint);
}

fn a_failed_batch_writes_nothing(b: &dyn Backend) {
    let (store, _) = filled(b, 10, 10);
    // The same leaf twice in one batch: the store's uniqueness refuses it,
    // and none of the batch may stay behind.
    let bad = Append {
        old_size: TreeSize(10),
        fence: None,
        settled: Settled::default(),
        entries: vec![entry(50), entry(51), entry(50)],
        hashes: Vec::new(),
        checkpoint: b"bad".to_vec(),
    };
    assert!(store.append(bad).is_err());
    assert_eq!(store.size().unwrap(), TreeSize(10));
    assert_eq!(store.find_leaf(&entry(51).leaf_hash).unwrap(), None);
    let good = integrate(store.as_ref(), &log_key(), ORIGIN, vec![entry(51)]).unwrap();
    assert_eq!(
        good.first,
        LeafIndex(10),
        "the log goes on after a failed batch"
    );
}

fn an_entry_already_in_the_log_is_refused(b: &dyn Backend) {
    let (store, _) = filled(b, 40, 10);
    let again = Append {
        old_size: TreeSize(40),
        fence: None,
        settled: Settled::default(),
        entries: vec![entry(40), entry(3)],
        hashes: Vec::new(),
        checkpoint: b"bad".to_vec(),
    };
    assert!(store.append(again).is_err(), "entry 3 is in the log");
    assert_eq!(store.size().unwrap(), TreeSize(40));
    assert_eq!(store.find_leaf(&entry(40).leaf_hash).unwrap(), None);
    assert_eq!(
        store.find_leaf(&entry(3).leaf_hash).unwrap(),
        Some(LeafIndex(3))
    );
}

fn concurrent_writers_never_share_an_index(b: &dyn Backend) {
    let store = b.create(ORIGIN, 1).unwrap();
    let writers = 4u64;
    let per_writer = 25u64;
    std::thread::scope(|s| {
        for w in 0..writers {
            // Each writer through a store of its own (its own connections),
            // as separate frontends would.
            let store = b.reopen().unwrap();
            s.spawn(move || {
                for k in 0..per_writer {
                    let e = entry(1000 * (w + 1) + k);
                    // Build on the size read, and build again when another
                    // writer got there first: what the sequencer does.
                    loop {
                        match integrate(store.as_ref(), &log_key(), ORIGIN, vec![e.clone()]) {
                            Ok(_) => break,
                            Err(daylight_log_server::integrate::IntegrateError::Store(
                                StoreError::SizeChanged { .. },
                            )) => continue,
                            Err(e) => panic!("writer {w}: {e}"),
                        }
                    }
                }
            });
        }
    });
    let size = store.size().unwrap().get();
    assert_eq!(size, writers * per_writer);
    let entries = store.entries(LeafIndex(0), size).unwrap();
    let mut reference = MemoryTree::new();
    for e in &entries {
        reference.append(&e.data);
    }
    assert_eq!(
        tree_hash(TreeSize(size), &StoreHashes::new(store.as_ref())).unwrap(),
        reference.root(),
        "the stored hashes are those of the entries in their stored order"
    );
    let mut seen: Vec<_> = entries.iter().map(|e| e.leaf_hash).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len() as u64, size, "every entry once");
}

fn everything_survives_a_reopen(b: &dyn Backend) {
    let (store, reference) = filled(b, 200, 50);
    let checkpoint = store.latest_checkpoint().unwrap();
    drop(store);
    let store = b.reopen().unwrap();
    assert_eq!(store.size().unwrap(), TreeSize(200));
    assert_eq!(store.latest_checkpoint().unwrap(), checkpoint);
    assert_eq!(
        tree_hash(TreeSize(200), &StoreHashes::new(store.as_ref())).unwrap(),
        reference.root()
    );
    // And it grows from where it was.
    let done = integrate(store.as_ref(), &log_key(), ORIGIN, vec![entry(200)]).unwrap();
    assert_eq!(done.first, LeafIndex(200));
}

fn the_lease_is_exclusive_and_fences_an_old_holder(b: &dyn Backend) {
    let store = b.create(ORIGIN, 1).unwrap();
    let key = log_key();
    integrate(store.as_ref(), &key, ORIGIN, vec![]).unwrap();
    assert_eq!(store.lease_state().unwrap(), None, "never held");
    let short = Duration::from_millis(300);
    let a = store
        .acquire_lease("a", short, None)
        .unwrap()
        .expect("free lease");
    assert_eq!(
        store.acquire_lease("b", short, None).unwrap(),
        None,
        "a holds it"
    );
    assert_eq!(
        store.acquire_lease("a", short, None).unwrap(),
        Some(a),
        "renewing keeps the term"
    );
    let state = store.lease_state().unwrap().unwrap();
    assert_eq!((state.holder.as_str(), state.token), ("a", a.token));
    assert!(
        state.expires_in_ms > 0 && state.expires_in_ms <= 300,
        "{state:?}"
    );
    // a's lease runs out; b takes over with a larger token.
    std::thread::sleep(Duration::from_millis(450));
    let b_lease = store
        .acquire_lease("b", Duration::from_secs(30), None)
        .unwrap()
        .expect("expired");
    assert!(b_lease.token > a.token);
    assert_eq!(store.acquire_lease("a", short, None).unwrap(), None);
    // a's batch, built before it noticed, is refused and writes nothing.
    let refused = integrate_committed(
        store.as_ref(),
        &key,
        ORIGIN,
        vec![entry(1)],
        Some(a),
        Settled::default(),
        None,
    )
    .and_then(Committed::wait);
    assert!(
        matches!(refused, Err(IntegrateError::Store(StoreError::LeaseLost(t))) if t == a.token),
        "{refused:?}"
    );
    assert_eq!(store.size().unwrap(), TreeSize(0));
    // A made-up token is refused too.
    let forged = Lease {
        token: b_lease.token + 1,
    };
    let refused = integrate_committed(
        store.as_ref(),
        &key,
        ORIGIN,
        vec![entry(1)],
        Some(forged),
        Settled::default(),
        None,
    )
    .and_then(Committed::wait);
    assert!(
        matches!(refused, Err(IntegrateError::Store(StoreError::LeaseLost(t))) if t == forged.token),
        "{refused:?}"
    );
    let done = integrate_committed(
        store.as_ref(),
        &key,
        ORIGIN,
        vec![entry(1)],
        Some(b_lease),
        Settled::default(),
        None,
    )
    .and_then(Committed::wait)
    .unwrap();
    assert_eq!(done.size, TreeSize(1));
    // A holder known to be dead need not be waited for; a live one must.
    assert_eq!(
        store
            .acquire_lease("d", short, Some("someone else"))
            .unwrap(),
        None
    );
    let d = store
        .acquire_lease("d", short, Some("b"))
        .unwrap()
        .expect("b is dead");
    assert!(d.token > b_lease.token);
    let b_lease = store
        .acquire_lease("b", Duration::from_secs(30), Some("d"))
        .unwrap()
        .expect("and back");
    // Released: the next holder need not wait for expiry.
    store.release_lease("a", b_lease).unwrap();
    assert_eq!(
        store.acquire_lease("a", short, None).unwrap(),
        None,
        "only b releases"
    );
    store.release_lease("b", b_lease).unwrap();
    let c = store
        .acquire_lease("c", short, None)
        .unwrap()
        .expect("released");
    assert!(c.token > b_lease.token);
    assert_eq!(
        b.reopen().unwrap().lease_state().unwrap().unwrap().holder,
        "c"
    );
}

fn queued_entries_wait_until_a_batch_settles_them(b: &dyn Backend) {
    let store = b.create(ORIGIN, 1).unwrap();
    assert!(store.queued(10).unwrap().is_empty());
    store.enqueue(&[entry(3), entry(1)]).unwrap();
    store.enqueue(&[entry(1), entry(2)]).unwrap();
    let queued = store.queued(10).unwrap();
    assert_eq!(
        queued.iter().map(|e| e.data.clone()).collect::<Vec<_>>(),
        vec![entry(3).data, entry(1).data, entry(2).data],
        "oldest first, each once"
    );
    assert_eq!(store.queued(2).unwrap().len(), 2);
    assert_eq!(queued[0].kind, entry(3).kind);
    assert_eq!(queued[0].signer, entry(3).signer);
    // A batch that fails settles nothing.
    let stale = Append {
        old_size: TreeSize(5),
        fence: None,
        settled: Settled::only(vec![entry(3).leaf_hash]),
        entries: vec![entry(3)],
        hashes: vec![entry(3).leaf_hash],
        checkpoint: b"stale".to_vec(),
    };
    assert!(store.append(stale).is_err());
    assert_eq!(store.queued(10).unwrap().len(), 3);
    let settled = Settled::only(vec![entry(3).leaf_hash, entry(1).leaf_hash]);
    integrate_committed(
        store.as_ref(),
        &log_key(),
        ORIGIN,
        vec![entry(3), entry(1)],
        None,
        settled,
        None,
    )
    .and_then(Committed::wait)
    .unwrap();
    let left = store.queued(10).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].data, entry(2).data);
}

fn refusals_are_kept_until_the_entry_is_queued_again(b: &dyn Backend) {
    let store = b.create(ORIGIN, 1).unwrap();
    let leaves = [entry(1).leaf_hash, entry(2).leaf_hash, entry(3).leaf_hash];
    store.enqueue(&[entry(1), entry(2), entry(3)]).unwrap();
    assert_eq!(store.refusals(&leaves).unwrap(), vec![None, None, None]);
    let revoked = QueueRefusal {
        status: 403,
        code: "revoked_signer".into(),
        detail: "k was revoked at entry 9".into(),
    };
    // A batch that fails keeps no refusal and settles nothing.
    let stale = Append {
        old_size: TreeSize(5),
        fence: None,
        settled: Settled {
            leaves: vec![entry(1).leaf_hash, entry(2).leaf_hash],
            refused: vec![(entry(2).leaf_hash, revoked.clone())],
        },
        entries: vec![entry(1)],
        hashes: vec![entry(1).leaf_hash],
        checkpoint: b"stale".to_vec(),
    };
    assert!(store.append(stale).is_err());
    assert_eq!(store.refusals(&leaves).unwrap(), vec![None, None, None]);
    assert_eq!(store.queued(10).unwrap().len(), 3);
    // A batch that commits entry 1 and refuses entry 2.
    integrate_committed(
        store.as_ref(),
        &log_key(),
        ORIGIN,
        vec![entry(1)],
        None,
        Settled {
            leaves: vec![entry(1).leaf_hash, entry(2).leaf_hash],
            refused: vec![(entry(2).leaf_hash, revoked.clone())],
        },
        None,
    )
    .and_then(Committed::wait)
    .unwrap();
    assert_eq!(
        store.refusals(&leaves).unwrap(),
        vec![None, Some(revoked.clone()), None]
    );
    assert_eq!(store.queued(10).unwrap()[0].data, entry(3).data);
    // Settled without a batch (nothing new in it): only against the log's
    // size now, and only by the lease's holder.
    let unknown = QueueRefusal {
        status: 401,
        code: "unknown_signer".into(),
        detail: "k is not a registered key".into(),
    };
    let settled = Settled {
        leaves: vec![entry(3).leaf_hash],
        refused: vec![(entry(3).leaf_hash, unknown.clone())],
    };
    let size = store.size().unwrap();
    // Copies of entries in the log are dropped whatever the size.
    store.enqueue(&[entry(1)]).unwrap();
    store
        .settle(&Settled::only(vec![entry(1).leaf_hash]), None, TreeSize(0))
        .unwrap();
    assert_eq!(store.queued(10).unwrap().len(), 1);
    let moved = store.settle(&settled, None, TreeSize(size.get() - 1));
    assert!(
        matches!(moved, Err(StoreError::SizeChanged { .. })),
        "{moved:?}"
    );
    let lease = store
        .acquire_lease("a", Duration::from_secs(60), None)
        .unwrap()
        .unwrap();
    store.release_lease("a", lease).unwrap();
    let lost = store.settle(&settled, Some(lease), size);
    assert!(matches!(lost, Err(StoreError::LeaseLost(_))), "{lost:?}");
    assert_eq!(
        store.queued(10).unwrap().len(),
        1,
        "refused settles nothing"
    );
    assert_eq!(store.refusals(&leaves).unwrap()[2], None);
    let lease = store
        .acquire_lease("a", Duration::from_secs(60), None)
        .unwrap()
        .unwrap();
    store.settle(&settled, Some(lease), size).unwrap();
    assert!(store.queued(10).unwrap().is_empty());
    assert_eq!(
        b.reopen().unwrap().refusals(&leaves).unwrap(),
        vec![None, Some(revoked), Some(unknown.clone())],
        "kept across a reopen"
    );
    // Queued again (the signer registered again, say): forgotten.
    store.enqueue(&[entry(2)]).unwrap();
    assert_eq!(
        store.refusals(&leaves).unwrap(),
        vec![None, None, Some(unknown)]
    );
}

/// One `#[test]` per backend per suite function.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    super::$name(&super::Sqlite(dir));
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(schema) = super::ScratchSchema::for_tests() {
                        super::$name(&super::Postgres(schema));
                    }
                }
            )*
        }
    };
}

conformance!(
    new_log_is_empty,
    appended_entries_read_back_in_order,
    leaves_are_found_by_hash,
    stored_hashes_match_the_reference_tree,
    checkpoints_follow_the_tree,
    publish_never_goes_back,
    witnesses_are_kept,
    mirrors_are_kept,
    a_stale_append_is_refused_and_writes_nothing,
    a_failed_batch_writes_nothing,
    an_entry_already_in_the_log_is_refused,
    concurrent_writers_never_share_an_index,
    everything_survives_a_reopen,
    the_lease_is_exclusive_and_fences_an_old_holder,
    queued_entries_wait_until_a_batch_settles_them,
    refusals_are_kept_until_the_entry_is_queued_again,
);

/// PostgreSQL alone: a server that is not there is a clear, transient
/// error, not a hang or a panic.
#[test]
fn an_unreachable_database_is_unavailable() {
    // Port 1 on loopback: nothing listens there.
    let err = PostgresStore::open("postgres://postgres@127.0.0.1:1/test").err();
    match err {
        Some(e @ StoreError::Unavailable(_)) => assert!(e.is_transient()),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let err = PostgresStore::open("mysql://nonsense").err();
    assert!(
        matches!(&err, Some(StoreError::Backend(d)) if d.contains("database URL")),
        "{err:?}"
    );
}

/// PostgreSQL alone: a log an earlier version made, without the table of
/// refusals, opens, and gets it.
#[test]
fn a_log_from_before_the_refusals_opens() {
    let Some(schema) = ScratchSchema::for_tests() else {
        return;
    };
    drop(PostgresStore::create(schema.url(), ORIGIN, 0).unwrap());
    let mut c = ::postgres::Config::from_str(schema.url())
        .unwrap()
        .connect(::postgres::NoTls)
        .unwrap();
    c.batch_execute(&format!("DROP TABLE \"{}\".refused", schema.name()))
        .unwrap();
    let store = PostgresStore::open(schema.url()).unwrap();
    assert_eq!(store.refusals(&[entry(1).leaf_hash]).unwrap(), vec![None]);
}

/// PostgreSQL alone: an empty database is not a log.
#[test]
fn a_database_without_a_log_is_refused() {
    let Some(schema) = ScratchSchema::for_tests() else {
        return;
    };
    match PostgresStore::open(schema.url()) {
        Err(StoreError::Backend(d)) => assert!(d.contains("holds no Daylight log"), "{d}"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("an empty schema opened as a log"),
    }
}
