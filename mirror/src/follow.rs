//! Pull mode: the mirror follows a log's tlog-tiles by itself, for a log
//! that does not push. C2SP tlog-mirror lets a mirror "implement other
//! update processes, provided it continues to correctly operate
//! add-entries and never violates its cosigner requirements"; the original
//! draft's procedure (poll the checkpoint, authenticate tiles, check every
//! entry against them, cosign once durable) is what this does, by driving
//! the push path itself:
//!
//! 1. `GET <url>/checkpoint`, opened with the key the mirror holds for the
//!    log (a bad signature is refused before anything else).
//! 2. If it is larger than the mirror's pending checkpoint, a consistency
//!    proof from the pending size is computed from the log's tiles, each
//!    tile authenticated against the new root by core's
//!    [`TileHashReader`], and given to [`Mirror::add_checkpoint`]: the
//!    witness checks refuse a fork (422), which is never stored. The same
//!    size with another root is refused here as a fork.
//! 3. The entry bundles from the mirror's next entry to the new size are
//!    fetched and turned into the add-entries packages a pushing log would
//!    send (entries, and the package's subtree consistency proof from the
//!    authenticated tiles); each goes through [`Mirror::store_package`],
//!    which checks every entry's leaf hash through that proof and stores
//!    the package in one durable transaction. A tampered bundle fails its
//!    proof: nothing of it is stored.
//! 4. [`Mirror::finish_upload`] re-derives the root from the stored entries
//!    and only then cosigns, exactly as after a push.
//!
//! A log that pushes and is followed at once stays consistent: both paths
//! go through the same [`Mirror`] methods, whose transactions (one writer,
//! `BEGIN IMMEDIATE`) check each step against the pending checkpoint and
//! the next entry as they are at that moment; a poll that loses a race
//! gets the push path's `409` and tries again at the next poll.
//!
//! A poll's outcome is kept in the database (`follows.error`) and shown in
//! `GET /logs`. Failed polls back off (doubling up to [`MAX_BACKOFF`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use daylight_core::mirror_protocol::{
    package_proof, AddEntriesEncoder, AddEntriesHeader, EntryPackage, PackageRange, PackageReader,
};
use daylight_core::tile::{
    parse_entry_bundle, BundleCoord, Tile, TileError, TileHashReader, TileReader, TILE_WIDTH,
};
use daylight_core::tree::consistency_proof;
use daylight_core::witness_protocol::AddCheckpoint;
use daylight_core::{Checkpoint, Hash, LeafIndex, Note, SignedCheckpoint, TreeSize};
use tokio::runtime::Handle;

use crate::mirror::{Mirror, MirrorError};
use crate::store::LogRecord;
use crate::unix_now;

/// The longest wait between polls of a failing log.
pub const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// Why a poll of a followed log stopped. Nothing past the last verified
/// package is stored, and nothing is cosigned, when it does.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The log did not answer.
    #[error("fetching {url}: {why}")]
    Fetch {
        /// What was fetched.
        url: String,
        /// Why it failed.
        why: String,
    },
    /// The log's checkpoint is not signed by the key the mirror holds.
    #[error("the log's checkpoint is refused: {0}")]
    Checkpoint(String),
    /// The log serves a checkpoint of the pending size with another root.
    #[error(
        "fork: the log's checkpoint of size {size} has root {served}, the mirror holds {held}"
    )]
    Fork {
        /// The size.
        size: u64,
        /// The root the log serves.
        served: String,
        /// The root the mirror holds.
        held: String,
    },
    /// The log's tiles or entry bundles do not match its checkpoint.
    #[error("the log's tiles do not match its checkpoint: {0}")]
    Tiles(String),
    /// The mirror refused what the log served (a fork, a tampered entry) or
    /// failed to store it.
    #[error(transparent)]
    Mirror(#[from] MirrorError),
    /// The log is not mirrored here.
    #[error("log {0:?} is not mirrored here")]
    UnknownLog(String),
}

/// What a successful poll did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Polled {
    /// The log's checkpoint is not ahead of what the mirror cosigned.
    UpToDate(TreeSize),
    /// The mirror stored the entries up to this size and cosigned it.
    Cosigned(TreeSize),
}

/// The log's tiles over HTTP, fetched from a blocking thread through the
/// runtime `handle`. Tiles that [`TileHashReader`] authenticated are kept,
/// so one poll fetches each tile once.
struct HttpTiles {
    client: reqwest::Client,
    base: String,
    handle: Handle,
    authenticated: Mutex<HashMap<Tile, Vec<u8>>>,
}

impl HttpTiles {
    fn get(&self, path: &str) -> Result<Vec<u8>, FollowError> {
        let url = format!("{}/{path}", self.base);
        let fetch = |why: String| FollowError::Fetch {
            url: url.clone(),
            why,
        };
        self.handle.block_on(async {
            let resp = self
                .client
                .get(&url)
                .send()
                .await
                .map_err(|e| fetch(e.to_string()))?;
            let status = resp.status();
            if !status.is_success() {
                return Err(fetch(format!("HTTP status {status}")));
            }
            resp.bytes()
                .await
                .map(|b| b.to_vec())
                .map_err(|e| fetch(e.to_string()))
        })
    }
}

impl TileReader for HttpTiles {
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TileError> {
        tiles
            .iter()
            .map(|tile| {
                let known = self
                    .authenticated
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(tile)
                    .cloned();
                match known {
                    Some(data) => Ok(data),
                    None => self
                        .get(&tile.path())
                        .map_err(|e| TileError::Read(e.to_string())),
                }
            })
            .collect()
    }

    fn save_tiles(&self, tiles: &[Tile], data: &[Vec<u8>]) {
        let mut known = self
            .authenticated
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (tile, data) in tiles.iter().zip(data) {
            known.insert(*tile, data.clone());
        }
    }
}

/// The root of the mirror checkpoint the mirror holds for `log`.
fn mirror_root(log: &LogRecord) -> Result<Hash, FollowError> {
    let corrupt =
        |e: String| FollowError::Mirror(MirrorError::Storage(format!("mirror checkpoint: {e}")));
    let bytes = log
        .mirror_checkpoint
        .as_deref()
        .ok_or_else(|| corrupt("none".into()))?;
    let note = Note::parse(bytes).map_err(|e| corrupt(e.to_string()))?;
    Ok(Checkpoint::parse_text(note.text())
        .map_err(|e| corrupt(e.to_string()))?
        .root)
}

/// One poll of the log `origin` at `url` (its tlog-tiles prefix), blocking:
/// call it off the async threads, inside the runtime of `handle`.
pub fn poll(
    mirror: &Mirror,
    client: &reqwest::Client,
    handle: Handle,
    origin: &str,
    url: &str,
) -> Result<Polled, FollowError> {
    let log = mirror
        .log(origin)?
        .ok_or_else(|| FollowError::UnknownLog(origin.to_owned()))?;
    let tiles = HttpTiles {
        client: client.clone(),
        base: url.trim_end_matches('/').to_owned(),
        handle,
        authenticated: Mutex::new(HashMap::new()),
    };
    let bytes = tiles.get("checkpoint")?;
    let signed = SignedCheckpoint::open(&bytes, &log.vkey)
        .map_err(|e| FollowError::Checkpoint(e.to_string()))?;
    let (size, root) = (signed.checkpoint.size, signed.checkpoint.root);
    if size == log.mirror_size && log.mirror_checkpoint.is_some() {
        let held = mirror_root(&log)?;
        if root != held {
            return Err(FollowError::Fork {
                size: size.get(),
                served: root.to_base64(),
                held: held.to_base64(),
            });
        }
    }
    if size <= log.mirror_size {
        // Nothing new to cosign (a smaller size is a log or cache behind
        // the mirror: not evidence of anything by itself).
        return Ok(Polled::UpToDate(log.mirror_size));
    }
    let reader = TileHashReader::new(size, root, &tiles);
    if size == log.pending_size && log.has_pending {
        if root != log.pending_root {
            return Err(FollowError::Fork {
                size: size.get(),
                served: root.to_base64(),
                held: log.pending_root.to_base64(),
            });
        }
    } else if size > log.pending_size {
        let old = log.pending_size;
        let proof = if old.get() == 0 {
            Vec::new()
        } else {
            consistency_proof(old, size, &reader).map_err(|e| FollowError::Tiles(e.to_string()))?
        };
        mirror.add_checkpoint(
            &AddCheckpoint {
                old,
                proof,
                checkpoint: bytes,
            }
            .to_bytes(),
        )?;
    } else {
        // Between the mirror checkpoint and a pending checkpoint pushed
        // since: the push path will finish it.
        return Ok(Polled::UpToDate(log.mirror_size));
    }

    // Upload [next entry, size) as a pushing log would, each package
    // verified and durable before the next bundle is fetched.
    let header = AddEntriesHeader {
        origin: origin.to_owned(),
        upload_start: LeafIndex(log.next_entry.min(size.get())),
        upload_end: size,
        ticket: Vec::new(),
    };
    let upload = mirror.begin_upload(&header)?;
    for range in header.packages() {
        let bundle = BundleCoord {
            index: range.subtree_start.get() / TILE_WIDTH,
            // At most 256 by construction.
            width: (range.end.get() - range.subtree_start.get()) as u16,
        };
        let data = tiles.get(&bundle.path())?;
        let entries = parse_entry_bundle(&data, bundle.width)
            .map_err(|e| FollowError::Tiles(format!("{}: {e}", bundle.path())))?;
        let proof =
            package_proof(range, size, &reader).map_err(|e| FollowError::Tiles(e.to_string()))?;
        let package = decode_package(origin, range, &entries[range.prefix_len()..], &proof, size)?;
        mirror.store_package(&upload, &package)?;
    }
    mirror.finish_upload(&upload, unix_now())?;
    Ok(Polled::Cosigned(size))
}

/// The package a pushing log would send for `range`, as the mirror's
/// add-entries parser reads it off the wire.
fn decode_package(
    origin: &str,
    range: PackageRange,
    entries: &[&[u8]],
    proof: &[Hash],
    size: TreeSize,
) -> Result<EntryPackage, FollowError> {
    let wire =
        |e: String| FollowError::Tiles(format!("entries {}..{}: {e}", range.start, range.end));
    let header = AddEntriesHeader {
        origin: origin.to_owned(),
        upload_start: range.start,
        upload_end: size,
        ticket: Vec::new(),
    };
    let mut body = Vec::new();
    let mut encoder =
        AddEntriesEncoder::new(&header, &mut body).map_err(|e| wire(e.to_string()))?;
    encoder
        .push_package(entries, proof, &mut body)
        .map_err(|e| wire(e.to_string()))?;
    PackageReader::new(body.as_slice())
        .map_err(|e| wire(e.to_string()))?
        .next_package()
        .map_err(|e| wire(e.to_string()))?
        .ok_or_else(|| wire("no package".into()))
}

/// Polls every log the mirror follows, each in its own task, every
/// `interval` (doubling after each failed poll, up to [`MAX_BACKOFF`]),
/// until the task is dropped. The logs followed are read once, at start.
pub async fn follow_all(mirror: Arc<Mirror>, interval: Duration) -> Result<(), FollowError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| FollowError::Fetch {
            url: String::new(),
            why: e.to_string(),
        })?;
    let follows = mirror.follows()?;
    let mut tasks = tokio::task::JoinSet::new();
    for follow in follows {
        tasks.spawn(follow_one(
            mirror.clone(),
            client.clone(),
            follow.origin,
            follow.url,
            interval,
        ));
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// The poll loop of one log; each outcome is recorded for `GET /logs`.
pub async fn follow_one(
    mirror: Arc<Mirror>,
    client: reqwest::Client,
    origin: String,
    url: String,
    interval: Duration,
) {
    let mut wait = interval;
    loop {
        let (m, c, o, u) = (mirror.clone(), client.clone(), origin.clone(), url.clone());
        let handle = Handle::current();
        let outcome = tokio::task::spawn_blocking(move || poll(&m, &c, handle, &o, &u))
            .await
            .unwrap_or_else(|e| Err(FollowError::Tiles(format!("poll task: {e}"))));
        let error = match &outcome {
            Ok(Polled::Cosigned(size)) => {
                tracing::info!(%origin, %size, "followed log: cosigned");
                None
            }
            Ok(Polled::UpToDate(_)) => None,
            Err(e) => {
                tracing::warn!(%origin, %url, error = %e, "followed log: poll failed");
                Some(e.to_string())
            }
        };
        wait = if error.is_some() {
            (wait * 2).min(MAX_BACKOFF.max(interval))
        } else {
            interval
        };
        let (m, o) = (mirror.clone(), origin.clone());
        let recorded = tokio::task::spawn_blocking(move || {
            m.set_follow_status(&o, error.as_deref(), unix_now())
        })
        .await;
        if let Ok(Err(e)) = recorded {
            tracing::warn!(%origin, error = %e, "recording the poll's outcome");
        }
        tokio::time::sleep(wait).await;
    }
}
