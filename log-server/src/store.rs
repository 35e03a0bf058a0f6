//! The log's state behind one trait: entries, stored hashes, checkpoints,
//! witnesses. SQLite ([`crate::sqlite::SqliteStore`]) is the embedded
//! default; another backend plugs in here without touching the sequencer,
//! the witnessing or the handlers.

use daylight_core::tree::{split_stored_hash_index, stored_hash_index, TreeError};
use daylight_core::{Hash, LeafIndex, TreeSize, VerifierKey};

use crate::codec::Packed;

pub use crate::durability::Durable;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (I/O, corruption, disk full, read-only database).
    #[error("storage: {0}")]
    Backend(String),
    /// Another writer appended since the caller read the size.
    #[error("log size changed: expected {expected}, found {found}")]
    SizeChanged {
        /// The size the caller built on.
        expected: u64,
        /// The size found.
        found: u64,
    },
    /// Stored data that does not decode.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The storage refused a write: the disk is full, or the filesystem is
    /// read-only or failing. The store is intact up to the last commit and
    /// writes can succeed again once an operator has fixed the disk (after
    /// a failed sync, once the log is restarted on it).
    #[error("storage cannot write: {0}")]
    Unwritable(String),
    /// The writer's sequencer lease ended (another frontend took over, or it
    /// expired): its batch was refused, and it must stop sequencing.
    #[error("the sequencer lease (token {0}) is no longer held")]
    LeaseLost(u64),
    /// The storage could not be reached (a database server that refuses
    /// connections or lost one mid-call). Nothing unacknowledged is assumed
    /// written; the backend reconnects by itself on the next call.
    #[error("storage unreachable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// Whether waiting (for an operator, or for the database to come back)
    /// may let the same call succeed: the caller answers 503, not 500.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unwritable(_) | StoreError::Unavailable(_))
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull | ErrorCode::ReadOnly | ErrorCode::SystemIoFailure) => {
                StoreError::Unwritable(e.to_string())
            }
            // Another process sharing the file held it past busy_timeout.
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Backend(e.to_string()),
        }
    }
}

impl From<StoreError> for TreeError {
    fn from(e: StoreError) -> Self {
        TreeError::Storage(e.to_string())
    }
}

/// One entry as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEntry {
    /// Its index.
    pub index: LeafIndex,
    /// The exact entry bytes (the leaf).
    pub data: Vec<u8>,
    /// RFC 6962 leaf hash of `data`.
    pub leaf_hash: Hash,
}

/// A new entry with what the store indexes it by.
#[derive(Clone, Debug)]
pub struct NewEntry {
    /// The exact bytes.
    pub data: Vec<u8>,
    /// Leaf hash of `data`.
    pub leaf_hash: Hash,
    /// The record kind, for queries.
    pub kind: String,
    /// The signer's verifier key name, for queries.
    pub signer: String,
    /// What [`LogStore::pack`] made of `data` (a frame, or "stays raw",
    /// with its dictionary's id), or `None`: the append compresses what it
    /// needs to.
    pub packed: Option<Packed>,
}

/// Milliseconds since the Unix epoch: the lease clock of a backend that has
/// no server clock to ask (SQLite, whose writers share one machine).
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A term as the log's one sequencer, named by its fencing token: every new
/// holder gets a larger token, and a batch carrying an old one is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lease {
    /// The fencing token.
    pub token: u64,
}

/// Who holds the sequencer lease, for operators and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseState {
    /// The holder's name (a frontend's identity).
    pub holder: String,
    /// Its fencing token.
    pub token: u64,
    /// Milliseconds until it expires (negative: expired).
    pub expires_in_ms: i64,
}

/// What a batch takes out of the submission queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settled {
    /// Leaf hashes removed from the queue: the batch's new entries, queued
    /// ones found already in the log, and those refused at commit.
    pub leaves: Vec<Hash>,
    /// Those refused at commit, with why: kept at least [`REFUSALS_KEPT`], so
    /// that the frontend that queued one can answer its submitter
    /// ([`LogStore::refusals`]).
    pub refused: Vec<(Hash, QueueRefusal)>,
}

impl Settled {
    /// Settles `leaves`, none of them refused.
    pub fn only(leaves: Vec<Hash>) -> Settled {
        Settled {
            leaves,
            refused: Vec::new(),
        }
    }
}

/// Why the sequencing frontend refused a queued entry at commit (the
/// admission's rules checked again: its signer revoked since, say), as the
/// API answers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueRefusal {
    /// The HTTP status.
    pub status: u16,
    /// The machine-readable code.
    pub code: String,
    /// What went wrong, for people.
    pub detail: String,
}

/// How long a refusal is kept at least after its batch: well past the time
/// a frontend waits for an entry it queued (`sequencer::QUEUE_WAIT`). Older
/// ones go when a new refusal is written.
pub const REFUSALS_KEPT: std::time::Duration = std::time::Duration::from_secs(600);

/// The time (Unix milliseconds) before which kept refusals go, when one is
/// written at `now_ms`.
pub fn refusals_cutoff(now_ms: i64) -> i64 {
    now_ms.saturating_sub(i64::try_from(REFUSALS_KEPT.as_millis()).unwrap_or(i64::MAX))
}

/// Everything one integration writes, in one transaction.
#[derive(Clone, Debug)]
pub struct Append {
    /// The size the batch was built on; the store refuses if it moved.
    pub old_size: TreeSize,
    /// The writer's lease, checked in the same transaction (None: a writer
    /// outside any server, such as `daylight log add-agency`, which relies
    /// on the size check alone).
    pub fence: Option<Lease>,
    /// What this batch takes out of the submission queue, in the same
    /// transaction.
    pub settled: Settled,
    /// The entries, in order, from index `old_size`.
    pub entries: Vec<NewEntry>,
    /// The new stored hashes, from stored-hash index `stored_hash_count(old_size)`.
    pub hashes: Vec<Hash>,
    /// The log-signed checkpoint for the new size.
    pub checkpoint: Vec<u8>,
}

/// A witness the log asks to cosign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessConfig {
    /// Its cosignature/v1 verifier key.
    pub key: VerifierKey,
    /// Its tlog-witness submission prefix (`POST {url}/add-checkpoint`).
    pub url: String,
    /// The size it last cosigned, as far as the log knows.
    pub known_size: TreeSize,
}

/// Most keys a [`KeyCache`] holds; past it, keys are parsed every time.
const KEY_CACHE_MAX: usize = 1024;

/// Witness and mirror keys parsed once per store: their lists are read
/// for every checkpoint, and parsing a key decompresses its curve point
/// (about 90,000 instructions; three witnesses' keys were 1.5% of the
/// server's instructions a submission, callgrind, BENCHMARKS.md).
#[derive(Default)]
pub struct KeyCache(std::sync::Mutex<std::collections::HashMap<String, VerifierKey>>);

impl KeyCache {
    /// The key written `text` in a row of the `what` table ("witness",
    /// "mirror"): parsed the first time, then the same key again. A text
    /// that does not parse is [`StoreError::Corrupt`], every time.
    pub fn parse(&self, text: &str, what: &str) -> Result<VerifierKey, StoreError> {
        // A panic elsewhere cannot leave the map half written: it holds
        // only whole parses.
        let mut keys = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(key) = keys.get(text) {
            return Ok(key.clone());
        }
        let key = VerifierKey::parse(text)
            .map_err(|e| StoreError::Corrupt(format!("{what} key {text}: {e}")))?;
        if keys.len() < KEY_CACHE_MAX {
            keys.insert(text.to_string(), key.clone());
        }
        Ok(key)
    }

    /// How many keys are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// The mirrors the log pushes to (C2SP tlog-mirror) and how many of them
/// must cosign a checkpoint before it is published.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MirrorSet {
    /// Each mirror: its cosignature/v1 key and its submission prefix
    /// (`POST {url}/add-checkpoint`, `POST {url}/add-entries`);
    /// `known_size` is unused (a mirror's state is learnt from its answers).
    pub mirrors: Vec<WitnessConfig>,
    /// Mirror cosignatures needed besides the witness quorum (0: mirrors
    /// are best effort, their cosignatures added as they come).
    pub quorum: usize,
}

/// The log's fixed settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogMeta {
    /// The checkpoint origin (and log key name).
    pub origin: String,
    /// Cosignatures needed before a checkpoint is published.
    pub quorum: usize,
}

/// The log's state.
pub trait LogStore: Send + Sync + 'static {
    /// Origin and quorum.
    fn meta(&self) -> Result<LogMeta, StoreError>;
    /// The number of entries.
    fn size(&self) -> Result<TreeSize, StoreError>;
    /// The number of entries known durable: [`size`](Self::size) less the
    /// batches committed and not yet synced. Tiles and entries served to
    /// readers outside the process stop here, so that a full tile cached as
    /// immutable never holds entries a power loss could take back.
    fn durable_size(&self) -> Result<TreeSize, StoreError> {
        self.size()
    }
    /// The index of the entry with this leaf hash, if any.
    fn find_leaf(&self, leaf: &Hash) -> Result<Option<LeafIndex>, StoreError>;
    /// One entry.
    fn entry(&self, index: LeafIndex) -> Result<Option<StoredEntry>, StoreError>;
    /// Up to `count` entries from `start`, in order.
    fn entries(&self, start: LeafIndex, count: u64) -> Result<Vec<StoredEntry>, StoreError>;
    /// Stored hashes by stored-hash index.
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, StoreError>;
    /// Writes a batch atomically, or nothing.
    fn append(&self, batch: Append) -> Result<(), StoreError>;
    /// Prepares `entry` for a later append, on the caller's thread, so
    /// that the append (the log's one serial step) does less: SQLite
    /// compresses its record bytes with the dictionary in use. Optional:
    /// an append does itself whatever was not done, or whose packing does
    /// not match the entry or the dictionary in use. By default, nothing.
    fn pack(&self, _entry: &mut NewEntry) {}
    /// [`append`](Self::append), returning once the batch is committed
    /// (readers see it) with a handle that answers once it is durable: a
    /// batch may be acknowledged, or its checkpoint given to witnesses,
    /// only after that. Lets a sequencer build its next batch meanwhile.
    /// By default the commit is the durability.
    fn append_pipelined(&self, batch: Append) -> Result<Durable, StoreError> {
        self.append(batch).map(|()| Durable::now())
    }
    /// A handle durable once every batch committed so far is, by this
    /// process or another (for answers that rest on entries found in the
    /// log rather than committed by the caller).
    fn durable_barrier(&self) -> Durable {
        Durable::now()
    }
    /// The newest log-signed checkpoint (not yet necessarily cosigned),
    /// never one of this process's batches whose [`Durable`] has not
    /// answered Ok (after a failed sync, none beyond the last batch synced
    /// before it, until the process is restarted). Another process's
    /// commit may not be synced yet: callers that hand it out wait for
    /// [`durable_barrier`](Self::durable_barrier).
    fn latest_checkpoint(&self) -> Result<Option<Vec<u8>>, StoreError>;
    /// The newest published checkpoint (log signature plus the quorum's cosignatures).
    fn published_checkpoint(&self) -> Result<Option<Vec<u8>>, StoreError>;
    /// Records a newly published checkpoint; never goes back to a smaller size.
    fn publish(&self, size: TreeSize, note: &[u8]) -> Result<(), StoreError>;
    /// The configured witnesses.
    fn witnesses(&self) -> Result<Vec<WitnessConfig>, StoreError>;
    /// Adds a witness (or changes its URL).
    fn add_witness(&self, key: &VerifierKey, url: &str) -> Result<(), StoreError>;
    /// Remembers the size a witness last cosigned.
    fn set_witness_size(&self, key: &VerifierKey, size: TreeSize) -> Result<(), StoreError>;
    /// The mirrors and the mirror quorum (none and 0 until set).
    fn mirrors(&self) -> Result<MirrorSet, StoreError>;
    /// Adds a mirror (or changes its URL).
    fn add_mirror(&self, key: &VerifierKey, url: &str) -> Result<(), StoreError>;
    /// Sets how many mirrors must cosign a checkpoint before it is published.
    fn set_mirror_quorum(&self, quorum: usize) -> Result<(), StoreError>;
    /// Entries of one kind from `start` on, in order (the registry reload uses it).
    fn entries_of_kind(&self, kind: &str, start: LeafIndex)
        -> Result<Vec<StoredEntry>, StoreError>;
    /// Takes the sequencer lease for `holder` for `ttl`, or renews it if
    /// `holder` has it; None while another holder's lease runs, unless that
    /// holder is `dead` (known gone, so its lease need not run out).
    fn acquire_lease(
        &self,
        holder: &str,
        ttl: std::time::Duration,
        dead: Option<&str>,
    ) -> Result<Option<Lease>, StoreError>;
    /// Gives the lease up, if `holder` still has it with this token.
    fn release_lease(&self, holder: &str, lease: Lease) -> Result<(), StoreError>;
    /// Who holds the lease, if anyone ever did.
    fn lease_state(&self) -> Result<Option<LeaseState>, StoreError>;
    /// Queues admitted entries for whichever frontend sequences (one already
    /// queued is left as it is), forgetting any earlier refusal of them.
    fn enqueue(&self, entries: &[NewEntry]) -> Result<(), StoreError>;
    /// Up to `max` queued entries, oldest first.
    fn queued(&self, max: usize) -> Result<Vec<NewEntry>, StoreError>;
    /// Drops queued entries that are already in the log or refused, and
    /// keeps the refusals (those older than [`REFUSALS_KEPT`] go), for a
    /// batch with nothing new checked against the log at `size`. With
    /// refusals, refused (`SizeChanged`) if the log moved since, as a
    /// refusal made then may not hold now, and (`LeaseLost`) if `fence` no
    /// longer holds the lease; without, dropping copies of entries in the
    /// log is safe for anyone at any size.
    fn settle(
        &self,
        settled: &Settled,
        fence: Option<Lease>,
        size: TreeSize,
    ) -> Result<(), StoreError>;
    /// The refusal kept for each of `leaves` (refused at commit since it
    /// was last queued), in the same order.
    fn refusals(&self, leaves: &[Hash]) -> Result<Vec<Option<QueueRefusal>>, StoreError>;
    /// [`LogStore::find_leaf`] for many leaves at once, in the same order;
    /// a networked backend answers a whole batch in one round trip.
    fn find_leaves(&self, leaves: &[Hash]) -> Result<Vec<Option<LeafIndex>>, StoreError> {
        leaves.iter().map(|l| self.find_leaf(l)).collect()
    }
}

/// Stored hashes of subtrees of 64 leaves or more, kept in memory by a
/// backend: every proof reads several, they never change once written, and
/// there is one per 32 entries (about 17 MB at 10M entries; capped by
/// `HashCache::CAP`).
#[derive(Default)]
pub struct HashCache {
    // FxHash, not SipHash (6% of a proof's instructions): the keys are
    // indexes into the log's own tree, at most `CAP` of them, so chosen
    // keys can at worst slow the lookups of a cache that stays bounded.
    upper: std::sync::RwLock<rustc_hash::FxHashMap<u64, Hash>>,
}

impl HashCache {
    /// Subtrees at least this high (2^6 leaves) are cached.
    const LEVEL: u32 = 6;
    /// The most hashes cached (about 42 MB once the map has grown to hold
    /// them), so memory stays bounded on any log. From about 64M entries
    /// the warmed levels alone fill it.
    const CAP: usize = 500_000;

    /// Reads `indexes`, taking what the cache holds and the rest from `fetch`
    /// (called once, with the stored-hash indexes missing, in order).
    pub fn read(
        &self,
        indexes: &[u64],
        fetch: impl FnOnce(&[u64]) -> Result<Vec<Hash>, StoreError>,
    ) -> Result<Vec<Hash>, StoreError> {
        let mut out: Vec<Option<Hash>> = {
            let upper = self
                .upper
                .read()
                .map_err(|_| StoreError::Backend("hash cache poisoned".into()))?;
            indexes.iter().map(|i| upper.get(i).copied()).collect()
        };
        let missing: Vec<u64> = indexes
            .iter()
            .zip(&out)
            .filter(|(_, h)| h.is_none())
            .map(|(&i, _)| i)
            .collect();
        if missing.is_empty() {
            return Ok(out.into_iter().flatten().collect());
        }
        let fetched = fetch(&missing)?;
        if fetched.len() != missing.len() {
            return Err(StoreError::Backend(format!(
                "asked for {} stored hashes, got {}",
                missing.len(),
                fetched.len()
            )));
        }
        let keep: Vec<(u64, Hash)> = missing
            .iter()
            .zip(&fetched)
            .filter(|(&i, _)| split_stored_hash_index(i).0 >= Self::LEVEL)
            .map(|(&i, &h)| (i, h))
            .collect();
        let mut fetched = fetched.into_iter();
        for slot in out.iter_mut().filter(|h| h.is_none()) {
            *slot = fetched.next();
        }
        if !keep.is_empty() {
            if let Ok(mut upper) = self.upper.write() {
                let room = Self::CAP.saturating_sub(upper.len());
                upper.extend(keep.into_iter().take(room));
            }
        }
        Ok(out.into_iter().flatten().collect())
    }
}

impl HashCache {
    /// Levels [`warm_hash_cache`] reads: subtrees of 256 leaves and up. A
    /// proof's hashes below that come from its own 256-leaf stretch of
    /// stored hashes, one or two rows; above it each level is a row of its
    /// own, so a cold cache costs a proof at 10M entries about fifteen
    /// reads.
    pub const WARM_LEVEL: u32 = 8;

    /// The stored-hash indexes [`warm_hash_cache`] reads for a tree of
    /// `size`: every complete subtree at [`HashCache::WARM_LEVEL`] or
    /// above, highest level first, at most `HashCache::CAP` (500,000) of them.
    pub fn warm_indexes(size: TreeSize) -> Vec<u64> {
        let size = size.get();
        let mut out = Vec::new();
        for level in (Self::WARM_LEVEL..64).rev() {
            for n in 0..(size >> level) {
                if out.len() == Self::CAP {
                    return out;
                }
                out.push(stored_hash_index(level, n));
            }
        }
        out
    }
}

/// Reads the upper stored hashes of the tree of `size` through `store`, so
/// that its [`HashCache`] holds them before the first proofs ask (about
/// 80,000 hashes, 4 MB, at 10M entries). In chunks, so a backend that reads
/// whole rows holds a few of them at a time. Returns how many were read.
pub fn warm_hash_cache(store: &dyn LogStore, size: TreeSize) -> Result<usize, StoreError> {
    let indexes = HashCache::warm_indexes(size);
    for chunk in indexes.chunks(256) {
        store.read_hashes(chunk)?;
    }
    Ok(indexes.len())
}

/// Reads stored hashes through a store, for the core's tree functions, and
/// remembers whether a failure was one that waiting may cure (the core's
/// tree errors carry only text).
pub struct StoreHashes<'a> {
    store: &'a dyn LogStore,
    transient: std::cell::Cell<bool>,
}

impl<'a> StoreHashes<'a> {
    /// Reads through `store`.
    pub fn new(store: &'a dyn LogStore) -> StoreHashes<'a> {
        StoreHashes {
            store,
            transient: std::cell::Cell::new(false),
        }
    }

    /// A tree error from a function that read through this, as a store
    /// error: [`StoreError::Unavailable`] when the store could not be
    /// reached, so callers answer 503 rather than 500.
    pub fn store_error(&self, e: TreeError) -> StoreError {
        if self.transient.get() {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Backend(e.to_string())
        }
    }
}

impl daylight_core::tree::HashReader for StoreHashes<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        self.store.read_hashes(indexes).map_err(|e| {
            self.transient.set(e.is_transient());
            e.into()
        })
    }
}

/// The newest published checkpoint, parsed once and shared.
#[derive(Clone, Debug)]
pub struct Published {
    /// The note: log signature and the quorum's cosignatures.
    pub bytes: Vec<u8>,
    /// Its body.
    pub checkpoint: daylight_core::Checkpoint,
}

/// Reads and parses the newest published checkpoint.
pub fn load_published(store: &dyn LogStore) -> Result<Option<Published>, StoreError> {
    let Some(bytes) = store.published_checkpoint()? else {
        return Ok(None);
    };
    let note = daylight_core::Note::parse(&bytes)
        .map_err(|e| StoreError::Corrupt(format!("published checkpoint: {e}")))?;
    let checkpoint = daylight_core::Checkpoint::parse_text(note.text())
        .map_err(|e| StoreError::Corrupt(format!("published checkpoint: {e}")))?;
    Ok(Some(Published { bytes, checkpoint }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use daylight_core::note::{KeyName, KeyType, SignerKey};

    fn key_text(n: u8) -> String {
        let name = KeyName::new(&format!("w{n}.example")).unwrap();
        SignerKey::from_seed(name, KeyType::Ed25519, [n; 32])
            .verifier()
            .to_string()
    }

    /// A cached key is the key the text parses to, every time; a text that
    /// does not parse is corrupt every time and never cached; the cache
    /// stops growing at its bound and still answers.
    #[test]
    fn the_key_cache_gives_what_parsing_gives() {
        let cache = KeyCache::default();
        for _ in 0..2 {
            for n in 1..4 {
                let text = key_text(n);
                assert_eq!(
                    cache.parse(&text, "witness").unwrap(),
                    VerifierKey::parse(&text).unwrap()
                );
            }
        }
        assert_eq!(cache.len(), 3);
        let mut bad = key_text(1);
        bad.pop();
        bad.push('!');
        for _ in 0..2 {
            let err = cache.parse(&bad, "mirror").err().unwrap();
            assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
            assert!(err.to_string().contains("mirror key w1.example+"), "{err}");
        }
        assert_eq!(cache.len(), 3);
        let full = KeyCache::default();
        for n in 0..=u8::MAX {
            let name = KeyName::new(&format!("m{n}.example")).unwrap();
            for m in 0..5u8 {
                let text = SignerKey::from_seed(name.clone(), KeyType::Ed25519, [m; 32])
                    .verifier()
                    .to_string();
                assert_eq!(
                    full.parse(&text, "mirror").unwrap(),
                    VerifierKey::parse(&text).unwrap()
                );
            }
        }
        assert_eq!(full.len(), KEY_CACHE_MAX);
    }
}
