//! The mirror itself, independent of HTTP: add-checkpoint (the pending
//! checkpoint), add-entries in three steps ([`Mirror::begin_upload`] for the
//! header, [`Mirror::store_package`] for each package, [`Mirror::finish_upload`]
//! to commit and cosign), and the read side (checkpoint, tiles, bundles).
//!
//! One writer connection behind a mutex serialises every state change, so
//! the next entry only grows and packages are stored in log order; each
//! package is one SQLite transaction (`synchronous=FULL`), durable before
//! the next is read. The cosignature is made in the transaction that
//! checks every entry below `upload_end` is stored and whose hashes give the
//! pending root, and persisted before it is returned.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use daylight_core::mirror_protocol::{
    AddEntriesHeader, EntryPackage, MirrorInfo, MirrorProtocolError, PackageVerifyError,
    MAX_EXCESS_ENTRIES,
};
use daylight_core::tile::{encode_entry_bundle, read_tile_data, TilePath, TILE_HEIGHT, TILE_WIDTH};
use daylight_core::tree::{
    stored_hash_count, stored_hash_index, stored_hashes_for_leaf, tree_hash, HashReader as _,
    TreeError,
};
use daylight_core::witness_protocol::format_cosignatures;
use daylight_core::{leaf_hash, Hash, KeyType, LeafIndex, Note, SignerKey, TreeSize, VerifierKey};
use daylight_witness::{check_add_checkpoint, signed_note, LogView, WitnessError};
use rusqlite::{Connection, TransactionBehavior};

use crate::store::{self, LogRecord, StoreError, StoredHashes};

/// Why a mirror request was refused. [`MirrorError::status`] maps each to
/// its HTTP status (C2SP tlog-mirror, and tlog-witness for add-checkpoint).
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// add-checkpoint refused, as a witness would (400/403/404/409/422).
    #[error(transparent)]
    Checkpoint(WitnessError),
    /// The add-entries origin is not a mirrored log.
    #[error("unknown log origin {0:?}")]
    UnknownOrigin(String),
    /// No pending checkpoint was ever accepted for the log.
    #[error("no pending checkpoint for {0:?}: send add-checkpoint first")]
    NoPendingCheckpoint(String),
    /// The upload does not fit the mirror's state (the body says where it is).
    #[error("{reason}")]
    Conflict {
        /// Why.
        reason: String,
        /// The mirror-info to retry with.
        info: MirrorInfo,
    },
    /// The body is not an add-entries body, or ended before any package
    /// was saved.
    #[error("malformed add-entries body: {0}")]
    Malformed(#[from] MirrorProtocolError),
    /// The gzip-encoded body does not decode.
    #[error("the body's gzip encoding is corrupt: {0}")]
    BadEncoding(String),
    /// A package's subtree consistency proof failed: nothing of it stored.
    #[error("package refused: {0}")]
    Proof(#[from] PackageVerifyError),
    /// The key given to [`Mirror::open`] is not a cosignature key.
    #[error("the mirror key must be a cosignature/v1 key (type 0x04)")]
    NotACosignatureKey,
    /// The clock says 1970.
    #[error("the system clock is not set")]
    Clock,
    /// Storage failed, or holds what this code did not write.
    #[error("storage: {0}")]
    Storage(String),
}

impl MirrorError {
    /// The HTTP status for this refusal.
    pub fn status(&self) -> u16 {
        match self {
            MirrorError::Checkpoint(e) => e.status(),
            MirrorError::UnknownOrigin(_) => 404,
            MirrorError::NoPendingCheckpoint(_) | MirrorError::Proof(_) => 422,
            MirrorError::Conflict { .. } => 409,
            MirrorError::Malformed(_) | MirrorError::BadEncoding(_) => 400,
            MirrorError::NotACosignatureKey | MirrorError::Clock | MirrorError::Storage(_) => 500,
        }
    }
}

impl From<StoreError> for MirrorError {
    fn from(e: StoreError) -> Self {
        MirrorError::Storage(e.to_string())
    }
}

impl From<rusqlite::Error> for MirrorError {
    fn from(e: rusqlite::Error) -> Self {
        MirrorError::Storage(e.to_string())
    }
}

impl From<TreeError> for MirrorError {
    fn from(e: TreeError) -> Self {
        MirrorError::Storage(e.to_string())
    }
}

/// An add-entries request whose header passed: which log, which range, and
/// the root every package is checked against.
#[derive(Clone, Debug)]
pub struct Upload {
    log: i64,
    origin: String,
    upload_end: TreeSize,
    root: Hash,
}

impl Upload {
    /// The size every proof is against.
    pub fn upload_end(&self) -> TreeSize {
        self.upload_end
    }
}

/// A mirror: its cosignature key and its database.
pub struct Mirror {
    signer: SignerKey,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("key", self.signer.verifier())
            .finish_non_exhaustive()
    }
}

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Mirror {
    /// Opens the mirror database at `db` with the cosignature key `signer`.
    pub fn open(db: &Path, signer: SignerKey) -> Result<Mirror, MirrorError> {
        if signer.verifier().key_type() != KeyType::CosignatureV1 {
            return Err(MirrorError::NotACosignatureKey);
        }
        Ok(Mirror {
            signer,
            writer: Mutex::new(store::open(db)?),
            reader: Mutex::new(store::open(db)?),
        })
    }

    /// The mirror's verifier key (cosignature/v1).
    pub fn verifier(&self) -> &VerifierKey {
        self.signer.verifier()
    }

    /// `POST /add-checkpoint`: checks the request exactly as a witness does
    /// against the pending checkpoint, and makes the checkpoint (with the
    /// log's verified signatures only) the new pending one. No cosignature.
    pub fn add_checkpoint(&self, body: &[u8]) -> Result<(), MirrorError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut found: Option<LogRecord> = None;
        let checked = check_add_checkpoint(body, |origin| {
            let record =
                store::log(&tx, origin).map_err(|e| WitnessError::Storage(e.to_string()))?;
            let view = record.as_ref().map(|r| LogView {
                vkey: r.vkey.clone(),
                size: r.pending_size,
                root: r.pending_root,
            });
            found = record;
            Ok(view)
        })
        .map_err(MirrorError::Checkpoint)?;
        let log =
            found.ok_or_else(|| MirrorError::UnknownOrigin(checked.checkpoint.origin.clone()))?;
        let note = signed_note(checked.note.text(), checked.log_signatures)
            .map_err(MirrorError::Checkpoint)?;
        store::set_pending(
            &tx,
            &log,
            checked.checkpoint.size,
            checked.checkpoint.root,
            &note,
        )?;
        tx.commit()?;
        tracing::info!(origin = %log.origin, size = %checked.checkpoint.size, "pending checkpoint");
        Ok(())
    }

    /// The add-entries header checks, in the spec's order: 404 unknown
    /// origin, 422 no pending checkpoint, 409 unknown `upload_end`, below
    /// the mirror checkpoint, `upload_start` after the next entry, or more
    /// than [`MAX_EXCESS_ENTRIES`] already-stored entries sent again.
    pub fn begin_upload(&self, header: &AddEntriesHeader) -> Result<Upload, MirrorError> {
        let conn = lock(&self.writer);
        let log = store::log(&conn, &header.origin)?
            .ok_or_else(|| MirrorError::UnknownOrigin(header.origin.clone()))?;
        if !log.has_pending {
            return Err(MirrorError::NoPendingCheckpoint(header.origin.clone()));
        }
        let end = header.upload_end;
        let known = store::pending(&conn, log.id, end)?;
        let conflict = |reason: String, valid_end: bool| MirrorError::Conflict {
            reason,
            info: mirror_info(&log, valid_end.then_some(end)),
        };
        let Some((root, _)) = known else {
            return Err(conflict(
                format!("upload_end {end} is not a pending checkpoint size this mirror keeps"),
                false,
            ));
        };
        if end < log.mirror_size {
            return Err(conflict(
                format!(
                    "upload_end {end} is below the mirror checkpoint's size {}",
                    log.mirror_size
                ),
                false,
            ));
        }
        let start = header.upload_start.get();
        if start > log.next_entry {
            return Err(conflict(
                format!(
                    "upload_start {start} is after the next entry {}",
                    log.next_entry
                ),
                true,
            ));
        }
        let excess = end.get().min(log.next_entry) - start;
        if excess > MAX_EXCESS_ENTRIES {
            return Err(conflict(
                format!("{excess} entries already stored would be sent again (at most {MAX_EXCESS_ENTRIES})"),
                true,
            ));
        }
        Ok(Upload {
            log: log.id,
            origin: log.origin,
            upload_end: end,
            root,
        })
    }

    /// Verifies one package against the upload's checkpoint (rebuilding its
    /// subtree with the stored entries before an unaligned start) and, if
    /// it verifies, stores its entries not yet stored in one durable
    /// transaction. A package that fails stores nothing (422).
    pub fn store_package(
        &self,
        upload: &Upload,
        package: &EntryPackage,
    ) -> Result<(), MirrorError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let log = store::log(&tx, &upload.origin)?
            .ok_or_else(|| MirrorError::UnknownOrigin(upload.origin.clone()))?;
        let range = package.range();
        let next = log.next_entry;
        if range.start.get() > next {
            // Only possible if the state went back (a restored database).
            return Err(MirrorError::Conflict {
                reason: format!(
                    "package starts at {} after the next entry {next}",
                    range.start
                ),
                info: mirror_info(&log, Some(upload.upload_end)),
            });
        }
        let hashes = StoredHashes {
            conn: &tx,
            log: upload.log,
        };
        let prefix = hashes.read_hashes(
            &(range.subtree_start.get()..range.start.get())
                .map(|i| stored_hash_index(0, i))
                .collect::<Vec<_>>(),
        )?;
        package.verify(&prefix, upload.upload_end, upload.root)?;
        let mut stored = 0u64;
        for (i, entry) in (range.start.get()..).zip(package.entries()) {
            if i < next {
                // Already stored (by an earlier or concurrent upload): the
                // spec lets the mirror assume the copies are identical, and
                // the proof just verified says they are.
                continue;
            }
            let hashes = StoredHashes {
                conn: &tx,
                log: upload.log,
            };
            let new = stored_hashes_for_leaf(LeafIndex(i), leaf_hash(entry), &hashes)?;
            store::put_entry(
                &tx,
                upload.log,
                i,
                entry,
                stored_hash_count(TreeSize(i)),
                &new,
            )?;
            stored += 1;
        }
        if range.end.get() > next {
            store::set_next_entry(&tx, upload.log, range.end.get())?;
        }
        tx.commit()?;
        tracing::debug!(origin = %upload.origin, start = %range.start, end = %range.end, stored, "package stored");
        Ok(())
    }

    /// The mirror-info to answer `202` with after a partial upload.
    pub fn progress(&self, upload: &Upload) -> Result<MirrorInfo, MirrorError> {
        let conn = lock(&self.writer);
        let log = store::log(&conn, &upload.origin)?
            .ok_or_else(|| MirrorError::UnknownOrigin(upload.origin.clone()))?;
        Ok(mirror_info(&log, Some(upload.upload_end)))
    }

    /// The last step of a complete upload, atomically: checks that every
    /// entry below `upload_end` is stored and that the stored hashes give
    /// the pending checkpoint's root, that `upload_end` is not below the
    /// mirror checkpoint (409), then cosigns that checkpoint at `now` (never
    /// earlier than the last cosignature) and stores it as the mirror
    /// checkpoint before returning the `200` body (the cosignature line).
    /// `upload_end` equal to the mirror checkpoint's size refreshes its
    /// timestamp.
    pub fn finish_upload(&self, upload: &Upload, now: u64) -> Result<Vec<u8>, MirrorError> {
        if now == 0 {
            return Err(MirrorError::Clock);
        }
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let log = store::log(&tx, &upload.origin)?
            .ok_or_else(|| MirrorError::UnknownOrigin(upload.origin.clone()))?;
        let end = upload.upload_end;
        if end < log.mirror_size {
            return Err(MirrorError::Conflict {
                reason: format!(
                    "the mirror checkpoint moved to {} past upload_end {end}",
                    log.mirror_size
                ),
                info: mirror_info(&log, None),
            });
        }
        if log.next_entry < end.get() {
            return Err(MirrorError::Conflict {
                reason: format!("entries from {} to {end} are missing", log.next_entry),
                info: mirror_info(&log, Some(end)),
            });
        }
        let (root, note) =
            store::pending(&tx, upload.log, end)?.ok_or_else(|| MirrorError::Conflict {
                reason: format!("upload_end {end} is no longer a pending checkpoint size"),
                info: mirror_info(&log, None),
            })?;
        let hashes = StoredHashes {
            conn: &tx,
            log: upload.log,
        };
        let computed = tree_hash(end, &hashes)?;
        if computed != root {
            return Err(MirrorError::Storage(format!(
                "stored entries give root {computed} at {end}, the checkpoint says {root}"
            )));
        }
        let note =
            Note::parse(&note).map_err(|e| MirrorError::Storage(format!("pending note: {e}")))?;
        let timestamp = now.max(log.cosigned_at.unwrap_or(0));
        let cosignature = self.signer.sign_note_text(note.text(), timestamp);
        let mirror_note = signed_note(
            note.text(),
            note.signatures()
                .iter()
                .cloned()
                .chain(std::iter::once(cosignature.clone())),
        )
        .map_err(MirrorError::Checkpoint)?;
        store::set_mirror(&tx, upload.log, end, &mirror_note, timestamp)?;
        tx.commit()?;
        tracing::info!(origin = %upload.origin, size = %end, "cosigned mirror checkpoint");
        Ok(format_cosignatures(&[cosignature]))
    }

    /// What the mirror holds for the log with `origin`.
    pub fn log(&self, origin: &str) -> Result<Option<LogRecord>, MirrorError> {
        Ok(store::log(&lock(&self.reader), origin)?)
    }

    /// Every log the mirror follows by itself ([`crate::follow`]).
    pub fn follows(&self) -> Result<Vec<store::Follow>, MirrorError> {
        Ok(store::follows(&lock(&self.reader))?)
    }

    /// Records how a poll of the followed log `origin` ended at `now`.
    pub fn set_follow_status(
        &self,
        origin: &str,
        error: Option<&str>,
        now: u64,
    ) -> Result<(), MirrorError> {
        Ok(store::set_follow_status(
            &lock(&self.writer),
            origin,
            error,
            now,
        )?)
    }

    /// Every mirrored log.
    pub fn logs(&self) -> Result<Vec<LogRecord>, MirrorError> {
        Ok(store::logs(&lock(&self.reader))?)
    }

    /// The mirror checkpoint of the log whose origin hashes to `origin_hash`.
    pub fn checkpoint(&self, origin_hash: &str) -> Result<Option<Vec<u8>>, MirrorError> {
        let conn = lock(&self.reader);
        Ok(store::log_by_hash(&conn, origin_hash)?.and_then(|l| l.mirror_checkpoint))
    }

    /// A tlog-tiles resource (`tile/...`) of the log whose origin hashes to
    /// `origin_hash`, if the mirror stores every entry it covers: hash tiles
    /// are read from the hashes computed from the stored entries, bundles
    /// are the stored entries.
    pub fn tile(&self, origin_hash: &str, path: TilePath) -> Result<Option<Vec<u8>>, MirrorError> {
        let conn = lock(&self.reader);
        let Some(log) = store::log_by_hash(&conn, origin_hash)? else {
            return Ok(None);
        };
        match path {
            TilePath::Hashes(tile) => {
                let shift = u32::from(tile.level) * TILE_HEIGHT;
                let count = tile
                    .index
                    .checked_mul(TILE_WIDTH)
                    .and_then(|c| c.checked_add(u64::from(tile.width)));
                let leaves = count.and_then(|c| c.checked_shl(shift).filter(|l| l >> shift == c));
                match leaves {
                    Some(l) if l <= log.next_entry => {}
                    _ => return Ok(None),
                }
                let hashes = StoredHashes {
                    conn: &conn,
                    log: log.id,
                };
                Ok(Some(read_tile_data(tile, &hashes)?))
            }
            TilePath::Entries(coord) => {
                let start = coord.index.checked_mul(TILE_WIDTH);
                match start.and_then(|s| s.checked_add(u64::from(coord.width))) {
                    Some(end) if end <= log.next_entry => {}
                    _ => return Ok(None),
                }
                let start = coord.index * TILE_WIDTH;
                let entries = store::entries(&conn, log.id, start, u64::from(coord.width))?;
                let bundle = encode_entry_bundle(entries.iter().map(Vec::as_slice))
                    .map_err(|e| MirrorError::Storage(e.to_string()))?;
                Ok(Some(bundle))
            }
        }
    }
}

/// The mirror-info for `log`: `upload_end` if it was valid, else the
/// current pending size (also when the next entry is past it, so the
/// client never sees a next entry beyond the size); the next entry; no ticket (past pending sizes are
/// kept in the database instead).
fn mirror_info(log: &LogRecord, valid_end: Option<TreeSize>) -> MirrorInfo {
    MirrorInfo {
        pending_size: valid_end
            .filter(|end| end.get() >= log.next_entry)
            .unwrap_or(log.pending_size),
        next_entry: LeafIndex(log.next_entry),
        ticket: Vec::new(),
    }
}
