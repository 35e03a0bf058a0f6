//! Integration: turning a batch of new entries into stored hashes and a
//! signed checkpoint, written in one transaction. Used by the sequencer and
//! by the offline `daylight log` commands alike, so there is one way to grow
//! the log.

use chrono::{DateTime, Utc};
use daylight_core::note::{Note, NoteError};
use daylight_core::tree::{stored_hash_count, Frontier, HashReader, TreeError};
use daylight_core::{Checkpoint, Hash, LeafIndex, SignerKey, TreeSize};

use crate::store::{Append, Durable, Lease, LogStore, NewEntry, Settled, StoreError};

/// Whatever signs the log's checkpoints: one key, or [`LogKeys`] while a
/// rotated-out key is in its transition.
pub trait CheckpointSigner: Send + Sync {
    /// The signed note of `checkpoint`.
    fn sign_checkpoint(&self, checkpoint: &Checkpoint) -> Result<Note, NoteError>;
}

impl CheckpointSigner for SignerKey {
    fn sign_checkpoint(&self, checkpoint: &Checkpoint) -> Result<Note, NoteError> {
        checkpoint.sign(self)
    }
}

/// The log's checkpoint keys: the current one, and rotated-out ones that
/// keep signing beside it until their transition ends (so verifiers that
/// know only the old key keep working while they learn the new one).
#[derive(Debug)]
pub struct LogKeys {
    current: SignerKey,
    retiring: Vec<(SignerKey, DateTime<Utc>)>,
}

impl LogKeys {
    /// The current key, and each retiring key with the end of its transition.
    pub fn new(current: SignerKey, retiring: Vec<(SignerKey, DateTime<Utc>)>) -> LogKeys {
        LogKeys { current, retiring }
    }

    /// The key that signs registry entries and every checkpoint.
    pub fn current(&self) -> &SignerKey {
        &self.current
    }

    /// The rotated-out keys, each with the end of its transition.
    pub fn retiring(&self) -> &[(SignerKey, DateTime<Utc>)] {
        &self.retiring
    }

    /// The keys that sign a checkpoint at `now`, current first.
    pub fn signing_at(&self, now: DateTime<Utc>) -> Vec<&SignerKey> {
        std::iter::once(&self.current)
            .chain(
                self.retiring
                    .iter()
                    .filter(|(_, until)| now < *until)
                    .map(|(k, _)| k),
            )
            .collect()
    }
}

impl CheckpointSigner for LogKeys {
    fn sign_checkpoint(&self, checkpoint: &Checkpoint) -> Result<Note, NoteError> {
        let mut note = Note::new(&checkpoint.to_text())?;
        for key in self.signing_at(Utc::now()) {
            note.sign(key, 0)?;
        }
        Ok(note)
    }
}

/// Where a running log finds its checkpoint keys again after a rotation
/// (the binary reads its key directory).
pub type KeySource = std::sync::Arc<dyn Fn() -> Result<LogKeys, String> + Send + Sync>;

/// The keys a running log signs with, reloaded when its registry names a
/// log key they do not have as current (a `log rotate-key` while serving).
pub struct KeyRing {
    keys: std::sync::RwLock<std::sync::Arc<LogKeys>>,
    reload: Option<KeySource>,
}

impl KeyRing {
    /// `keys` now; `reload` to find them again after a rotation.
    pub fn new(keys: LogKeys, reload: Option<KeySource>) -> KeyRing {
        KeyRing {
            keys: std::sync::RwLock::new(std::sync::Arc::new(keys)),
            reload,
        }
    }

    /// The keys to sign with for a log whose registry says its key is
    /// `current`: the ones held if they agree, else reloaded. If they still
    /// disagree the caller must not sign: a checkpoint without the log's
    /// current key would be a finding for every auditor.
    pub fn for_log_key(
        &self,
        current: &daylight_core::VerifierKey,
    ) -> Result<std::sync::Arc<LogKeys>, String> {
        let held = self
            .keys
            .read()
            .map_err(|_| "key lock poisoned".to_string())?
            .clone();
        if held.current().verifier() == current {
            return Ok(held);
        }
        let Some(reload) = &self.reload else {
            return Err(format!(
                "the log's key is now {current} but this server signs with {}; restart it",
                held.current().verifier()
            ));
        };
        let fresh = std::sync::Arc::new(reload()?);
        if fresh.current().verifier() != current {
            return Err(format!(
                "the log's key is now {current} but its key files hold {}",
                fresh.current().verifier()
            ));
        }
        tracing::info!(key = %current, "log key reloaded after a rotation");
        *self
            .keys
            .write()
            .map_err(|_| "key lock poisoned".to_string())? = fresh.clone();
        Ok(fresh)
    }

    /// The keys held now.
    pub fn current(&self) -> Result<std::sync::Arc<LogKeys>, String> {
        self.keys
            .read()
            .map(|k| k.clone())
            .map_err(|_| "key lock poisoned".to_string())
    }
}

/// Why a batch was not integrated.
#[derive(Debug, thiserror::Error)]
pub enum IntegrateError {
    /// The store failed or moved under us.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The tree could not be computed from the store.
    #[error("tree: {0}")]
    Tree(#[from] TreeError),
    /// Signing the checkpoint failed.
    #[error("signing the checkpoint: {0}")]
    Sign(String),
    /// The log's registry would refuse the registry entry here.
    #[error("the log's registry refuses this entry: {0}")]
    Registry(#[from] daylight_schemas::RegistryError),
    /// The log kept growing while a registry entry waited for its turn.
    #[error("the log kept growing; try again")]
    Busy,
}

/// What an integration produced.
#[derive(Clone, Debug)]
pub struct Integrated {
    /// Index of the batch's first entry.
    pub first: LeafIndex,
    /// The new tree size.
    pub size: TreeSize,
    /// The new root.
    pub root: Hash,
    /// The log-signed checkpoint for `size`.
    pub checkpoint: Vec<u8>,
}

/// Stored hashes in the store, plus the ones this batch has computed so far.
struct Overlay<'a> {
    store: &'a dyn LogStore,
    base: u64,
    new: Vec<Hash>,
    /// Set when the store failed in a way waiting may cure, so that the
    /// batch's submitters are told to retry (503), not that the log broke.
    transient: std::cell::Cell<bool>,
}

impl Overlay<'_> {
    /// A tree error, as a transient store failure where that is what it was.
    fn error(&self, e: TreeError) -> IntegrateError {
        if self.transient.get() {
            IntegrateError::Store(StoreError::Unavailable(e.to_string()))
        } else {
            IntegrateError::Tree(e)
        }
    }
}

impl HashReader for Overlay<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        let old: Vec<u64> = indexes.iter().copied().filter(|&i| i < self.base).collect();
        let mut from_store = match self.store.read_hashes(&old) {
            Ok(h) => h.into_iter(),
            Err(e) => {
                self.transient.set(e.is_transient());
                return Err(e.into());
            }
        };
        indexes
            .iter()
            .map(|&i| {
                if i < self.base {
                    from_store.next().ok_or(TreeError::ShortRead {
                        asked: old.len(),
                        got: 0,
                    })
                } else {
                    usize::try_from(i - self.base)
                        .ok()
                        .and_then(|j| self.new.get(j).copied())
                        .ok_or_else(|| {
                            TreeError::Storage(format!("stored hash {i} not computed yet"))
                        })
                }
            })
            .collect()
    }
}

/// The stored hashes `entries` add to the tree of `old` leaves, and the new
/// root. The tree's parts are read from the store once, and every new
/// stored hash is computed from them in memory: the same hashes as
/// `stored_hashes_for_leaf` entry by entry (the tests below compare the
/// two), which read through the store's cache and allocated several
/// vectors once per entry, then read the parts again for the root.
fn batch_hashes(
    store: &dyn LogStore,
    old: TreeSize,
    entries: &[NewEntry],
) -> Result<(Vec<Hash>, Hash), IntegrateError> {
    // Every part of the tree at `old` is already stored: nothing is read
    // from `new`, which stays empty.
    let overlay = Overlay {
        store,
        base: stored_hash_count(old),
        new: Vec::new(),
        transient: std::cell::Cell::new(false),
    };
    let mut frontier = Frontier::new(old, &overlay).map_err(|e| overlay.error(e))?;
    // Two per entry on average, plus the carries of the last one.
    let mut hashes = Vec::with_capacity(2 * entries.len() + 64);
    for e in entries {
        frontier.append(e.leaf_hash, &mut hashes);
    }
    Ok((hashes, frontier.root()))
}

/// Appends `entries` at the end of the log and signs the new checkpoint.
/// An empty batch signs a checkpoint for the current size.
pub fn integrate(
    store: &dyn LogStore,
    key: &dyn CheckpointSigner,
    origin: &str,
    entries: Vec<NewEntry>,
) -> Result<Integrated, IntegrateError> {
    integrate_committed(store, key, origin, entries, None, Settled::default(), None)?.wait()
}

/// What an integration committed, and the handle that answers once it is
/// durable: nothing of the batch may be acknowledged before
/// [`wait`](Committed::wait) (or `durable.wait()`) answers `Ok`.
#[derive(Debug)]
#[must_use = "a batch may be acknowledged only once it is durable"]
pub struct Committed {
    /// What the batch came to.
    pub integrated: Integrated,
    /// Answers once the batch is durable.
    pub durable: Durable,
}

impl Committed {
    /// Waits until the batch is durable.
    pub fn wait(self) -> Result<Integrated, IntegrateError> {
        self.durable.wait()?;
        Ok(self.integrated)
    }
}

/// [`integrate`] by a sequencer holding `fence`: the store refuses the batch
/// if the lease moved on, and settles `settled` in the submission queue in
/// the same transaction. A refused batch's signed checkpoint is dropped
/// here: it is never stored, served or sent to a witness. With `built_on`,
/// the batch is refused (`SizeChanged`) unless the log still has that size,
/// the one the caller checked the batch against. Returns once the batch is
/// committed: a sequencer builds its next batch while this one syncs.
pub fn integrate_committed(
    store: &dyn LogStore,
    key: &dyn CheckpointSigner,
    origin: &str,
    entries: Vec<NewEntry>,
    fence: Option<Lease>,
    settled: Settled,
    built_on: Option<TreeSize>,
) -> Result<Committed, IntegrateError> {
    let old = store.size()?;
    if let Some(expected) = built_on.filter(|b| *b != old) {
        return Err(StoreError::SizeChanged {
            expected: expected.get(),
            found: old.get(),
        }
        .into());
    }
    let (hashes, root) = batch_hashes(store, old, &entries)?;
    let size = TreeSize(old.get() + entries.len() as u64);
    let checkpoint = key
        .sign_checkpoint(&Checkpoint::new(origin, size, root))
        .map_err(|e| IntegrateError::Sign(e.to_string()))?
        .to_bytes();
    let durable = store.append_pipelined(Append {
        old_size: old,
        fence,
        settled,
        entries,
        hashes,
        checkpoint: checkpoint.clone(),
    })?;
    Ok(Committed {
        integrated: Integrated {
            first: LeafIndex(old.get()),
            size,
            root,
            checkpoint,
        },
        durable,
    })
}

/// Appends a registry entry at the end of the log, only if the log's
/// registry accepts it there: `registry` must be replayed up to the log's
/// current size; the entry is applied to a copy first and integrated only
/// at that size (retried a few times while a serving sequencer grows the
/// log). Returns its index.
pub fn append_registry_entry(
    store: &dyn LogStore,
    keys: &dyn CheckpointSigner,
    record: &daylight_schemas::SignedRecord,
    signer: &daylight_core::VerifierKey,
    mut registry: impl FnMut() -> Result<daylight_schemas::Registry, IntegrateError>,
) -> Result<LeafIndex, IntegrateError> {
    let origin = store.meta()?.origin;
    for _ in 0..10 {
        let reg = registry()?;
        let at = reg.next();
        reg.clone().apply(at, record)?;
        let entry = NewEntry {
            leaf_hash: record.leaf_hash(),
            data: record.to_bytes(),
            kind: record.kind().to_string(),
            signer: signer.to_string(),
            packed: None,
        };
        match integrate_committed(
            store,
            keys,
            &origin,
            vec![entry],
            None,
            Settled::default(),
            Some(TreeSize(at.get())),
        )
        .and_then(Committed::wait)
        {
            Ok(done) => return Ok(done.first),
            Err(IntegrateError::Store(StoreError::SizeChanged { .. })) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(IntegrateError::Busy)
}

/// Appends one record signed by `signer` (for the operator's registry
/// entries, written offline by `daylight log` commands); returns its index.
pub fn append_record(
    store: &dyn LogStore,
    log_key: &dyn CheckpointSigner,
    record: &daylight_schemas::SignedRecord,
    signer: &daylight_core::VerifierKey,
) -> Result<LeafIndex, IntegrateError> {
    let origin = store.meta()?.origin;
    let entry = NewEntry {
        leaf_hash: record.leaf_hash(),
        data: record.to_bytes(),
        kind: record.kind().to_string(),
        signer: signer.to_string(),
        packed: None,
    };
    Ok(integrate(store, log_key, &origin, vec![entry])?.first)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::sqlite::SqliteStore;
    use daylight_core::tree::{stored_hashes_for_leaf, tree_hash, MemoryTree};
    use daylight_core::{leaf_hash, KeyName, KeyType};

    const ORIGIN: &str = "batch.test/log";

    /// The per-entry path the batch path replaced: each entry's left
    /// siblings read through the overlay, then the root read back.
    fn per_entry_hashes(
        store: &dyn LogStore,
        old: TreeSize,
        entries: &[NewEntry],
    ) -> Result<(Vec<Hash>, Hash), IntegrateError> {
        let mut overlay = Overlay {
            store,
            base: stored_hash_count(old),
            new: Vec::with_capacity(entries.len() * 2),
            transient: std::cell::Cell::new(false),
        };
        for (i, e) in entries.iter().enumerate() {
            let index = LeafIndex(old.get() + i as u64);
            let hashes = stored_hashes_for_leaf(index, e.leaf_hash, &overlay)
                .map_err(|e| overlay.error(e))?;
            overlay.new.extend(hashes);
        }
        let size = TreeSize(old.get() + entries.len() as u64);
        let root = tree_hash(size, &overlay).map_err(|e| overlay.error(e))?;
        Ok((overlay.new, root))
    }

    fn entry(i: u64) -> NewEntry {
        let data = format!("batch test entry {i}").into_bytes();
        NewEntry {
            leaf_hash: leaf_hash(&data),
            data,
            kind: "request".into(),
            signer: "s".into(),
            packed: None,
        }
    }

    fn key() -> SignerKey {
        SignerKey::from_seed(KeyName::new(ORIGIN).unwrap(), KeyType::Ed25519, [7; 32])
    }

    /// Batch lengths tried from each size the log passes through: every
    /// length to 40, and powers of two and their neighbours to 1,025.
    fn lengths() -> Vec<u64> {
        let mut out: Vec<u64> = (0..=40).collect();
        for b in 6..=10 {
            out.extend([(1u64 << b) - 1, 1 << b, (1 << b) + 1]);
        }
        out
    }

    /// Where the log is committed: batches ending at 1, 2, 3, powers of two
    /// and their neighbours, and a few odd sizes, so the trials above start
    /// from trees of many shapes (and from the store's partial hash blocks
    /// of 255, and its cache of upper hashes).
    const COMMITS: [u64; 22] = [
        1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 63, 64, 65, 255, 256, 257, 300, 511, 512, 513, 1000,
    ];

    #[test]
    fn batch_hashes_match_per_entry_hashes_from_many_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::create(&dir.path().join("log.db"), ORIGIN, 0).unwrap();
        let key = key();
        let all: Vec<NewEntry> = (0..1000 + 1025).map(entry).collect();
        let mut size = 0u64;
        for &next in std::iter::once(&0).chain(COMMITS.iter()) {
            if next > size {
                let batch = all[size as usize..next as usize].to_vec();
                integrate(&store, &key, ORIGIN, batch).unwrap();
                size = next;
            }
            assert_eq!(store.size().unwrap(), TreeSize(size));
            for n in lengths() {
                let entries = &all[size as usize..(size + n) as usize];
                let batch = batch_hashes(&store, TreeSize(size), entries).unwrap();
                let per_entry = per_entry_hashes(&store, TreeSize(size), entries).unwrap();
                assert_eq!(batch, per_entry, "{n} entries onto {size}");
            }
        }
    }

    /// Integrated in batches cut at arbitrary points, the log stores
    /// exactly the hashes and checkpoints a tree built in memory gives.
    #[test]
    fn integrated_batches_store_what_the_tree_gives() {
        let key = key();
        let cuts: [&[u64]; 4] = [
            &[1, 2, 3, 6, 10, 15, 21, 28, 36, 45, 55, 66, 78, 91, 105],
            &[127, 128, 129, 383, 384, 385, 600],
            &[255, 510, 765],
            &[700],
        ];
        for cut in cuts {
            let dir = tempfile::tempdir().unwrap();
            let store = SqliteStore::create(&dir.path().join("log.db"), ORIGIN, 0).unwrap();
            let mut tree = MemoryTree::new();
            let mut size = 0u64;
            for &next in cut {
                let batch: Vec<NewEntry> = (size..next).map(entry).collect();
                for e in &batch {
                    tree.append_leaf_hash(e.leaf_hash);
                }
                let done = integrate(&store, &key, ORIGIN, batch).unwrap();
                assert_eq!(done.first, LeafIndex(size));
                assert_eq!(done.size, TreeSize(next));
                assert_eq!(done.root, tree.root(), "cuts {cut:?} at {next}");
                let want = Checkpoint::new(ORIGIN, TreeSize(next), tree.root())
                    .sign(&key)
                    .unwrap()
                    .to_bytes();
                assert_eq!(done.checkpoint, want);
                assert_eq!(store.latest_checkpoint().unwrap(), Some(want));
                size = next;
            }
            let all: Vec<u64> = (0..stored_hash_count(TreeSize(size))).collect();
            assert_eq!(
                store.read_hashes(&all).unwrap(),
                tree.stored_hashes(),
                "cuts {cut:?}"
            );
        }
    }
}
