//! Publishing the log as static files: C2SP tlog-tiles (hash tiles, entry
//! bundles, then the checkpoint) written to an S3-compatible bucket or a
//! directory, so any web server, object store or CDN can serve the read
//! side without this process.
//!
//! The order is the guarantee: every tile and bundle a checkpoint needs is
//! written before that checkpoint, so a reader of the bucket never sees a
//! checkpoint it cannot verify. A failed write stops the round before the
//! checkpoint; the next round starts again from the checkpoint the bucket
//! holds, so publication resumes by itself once the bucket answers. The
//! bucket's own checkpoint is the only state: a restarted (or another)
//! frontend reads it and goes on from there.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use daylight_core::tile::{encode_entry_bundle, new_tiles, read_tile_data, BundleCoord, Tile};
use daylight_core::{Checkpoint, LeafIndex, Note, TreeSize};
use futures::{StreamExt as _, TryStreamExt as _};
use object_store::path::Path as ObjectPath;
use object_store::{Attribute, Attributes, ObjectStore, PutOptions, PutPayload};
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::store::{LogStore, Published, StoreError, StoreHashes};

/// Cache lifetime of full tiles and bundles: they never change.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Cache lifetime of partial tiles and bundles: they are replaced as they grow.
pub const PARTIAL: &str = "public, max-age=5";
/// Cache lifetime of the checkpoint.
pub const CHECKPOINT: &str = "no-cache, max-age=1";

/// Objects read and written at once within one round.
const PARALLEL: usize = 16;
/// Tiles (and bundles) read from the store per step, bounding memory when a
/// large log is published for the first time.
const STEP: usize = 256;

/// Why publication failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The destination could not be set up (bad URL, missing bucket, ...).
    #[error("publication target {target}: {detail}")]
    Config {
        /// The target as the operator gave it.
        target: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The bucket or directory failed a read or write.
    #[error("{0}")]
    Objects(#[from] object_store::Error),
    /// The log's store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A tile could not be read from the store.
    #[error("reading tiles: {0}")]
    Tree(#[from] daylight_core::tree::TreeError),
    /// The bucket holds something that is not this log's checkpoint.
    #[error("the published checkpoint at {path}: {detail}")]
    Foreign {
        /// Where.
        path: String,
        /// What is wrong.
        detail: String,
    },
}

/// Where the log's tiles go: an object store and a prefix within it.
#[derive(Clone)]
pub struct Target {
    objects: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    /// Whether objects carry Content-Type and Cache-Control (buckets do; a
    /// directory leaves headers to the web server in front of it).
    headers: bool,
    /// How the operator named it, for messages.
    name: String,
}

/// Settings of an S3-compatible bucket beyond its URL.
#[derive(Clone, Debug, Default)]
pub struct S3Options {
    /// The endpoint, for anything but AWS itself (R2, MinIO, Ceph, ...).
    pub endpoint: Option<String>,
    /// The region (default: `AWS_REGION` from the environment, else us-east-1).
    pub region: Option<String>,
    /// `bucket.host/key` addressing instead of path-style `host/bucket/key`.
    pub virtual_hosted: bool,
    /// Access key id and secret; default: `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY` from the environment.
    pub credentials: Option<(String, String)>,
}

impl Target {
    /// A directory (created if missing) that a web server or CDN serves.
    pub fn directory(dir: &std::path::Path) -> Result<Target, PublishError> {
        let config = |detail: String| PublishError::Config {
            target: dir.display().to_string(),
            detail,
        };
        std::fs::create_dir_all(dir).map_err(|e| config(e.to_string()))?;
        let objects = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| config(e.to_string()))?;
        Ok(Target {
            objects: Arc::new(objects),
            prefix: ObjectPath::default(),
            headers: false,
            name: dir.display().to_string(),
        })
    }

    /// An S3-compatible bucket, `s3://BUCKET[/PREFIX]`; credentials come from
    /// the usual `AWS_*` environment variables.
    pub fn s3(url: &str, options: &S3Options) -> Result<Target, PublishError> {
        let config = |detail: String| PublishError::Config {
            target: url.to_string(),
            detail,
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| config("expected s3://BUCKET[/PREFIX]".into()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(config("no bucket name".into()));
        }
        let mut builder = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_virtual_hosted_style_request(options.virtual_hosted)
            .with_retry(object_store::RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(20),
                ..Default::default()
            });
        if let Some(endpoint) = &options.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(region) = &options.region {
            builder = builder.with_region(region);
        }
        if let Some((id, secret)) = &options.credentials {
            builder = builder
                .with_access_key_id(id)
                .with_secret_access_key(secret);
        }
        let objects = builder.build().map_err(|e| config(e.to_string()))?;
        let prefix = ObjectPath::parse(prefix.trim_matches('/'))
            .map_err(|e| config(format!("prefix: {e}")))?;
        Ok(Target {
            objects: Arc::new(objects),
            prefix,
            headers: true,
            name: url.to_string(),
        })
    }

    /// Any object store (tests inject faults through this).
    pub fn objects(objects: Arc<dyn ObjectStore>, prefix: &str, name: &str) -> Target {
        Target {
            objects,
            prefix: ObjectPath::from(prefix),
            headers: true,
            name: name.to_string(),
        }
    }

    /// How the operator named it.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn path(&self, relative: &str) -> ObjectPath {
        relative
            .split('/')
            .fold(self.prefix.clone(), |p, part| p.child(part))
    }

    async fn put(&self, relative: &str, data: Vec<u8>, cache: &str) -> Result<(), PublishError> {
        let mut attributes = Attributes::new();
        if self.headers {
            let content_type = match relative {
                "checkpoint" => "text/plain; charset=utf-8",
                LOG_INFO => "application/json",
                _ => "application/octet-stream",
            };
            attributes.insert(Attribute::ContentType, content_type.to_string().into());
            attributes.insert(Attribute::CacheControl, cache.to_string().into());
        }
        let options = PutOptions {
            attributes,
            ..Default::default()
        };
        self.objects
            .put_opts(&self.path(relative), PutPayload::from(data), options)
            .await?;
        Ok(())
    }

    /// The object at `relative`, or None if there is none.
    pub async fn get(&self, relative: &str) -> Result<Option<Vec<u8>>, PublishError> {
        match self.objects.get(&self.path(relative)).await {
            Ok(got) => Ok(Some(got.bytes().await?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The checkpoint the target holds, checked to be `origin`'s.
    pub async fn checkpoint(&self, origin: &str) -> Result<Option<Checkpoint>, PublishError> {
        match self.get("checkpoint").await? {
            Some(bytes) => self.parse_checkpoint(&bytes, origin).map(Some),
            None => Ok(None),
        }
    }

    /// The checkpoint in `bytes` (read from this target), checked to be
    /// `origin`'s.
    fn parse_checkpoint(&self, bytes: &[u8], origin: &str) -> Result<Checkpoint, PublishError> {
        let note = Note::parse(bytes).map_err(|e| self.foreign(e.to_string()))?;
        let checkpoint =
            Checkpoint::parse_text(note.text()).map_err(|e| self.foreign(e.to_string()))?;
        if checkpoint.origin != origin {
            return Err(self.foreign(format!(
                "it is the log {:?}'s, not {origin:?}'s",
                checkpoint.origin
            )));
        }
        Ok(checkpoint)
    }

    /// What is wrong with the checkpoint this target holds.
    fn foreign(&self, detail: String) -> PublishError {
        PublishError::Foreign {
            path: format!("{}/checkpoint", self.name),
            detail,
        }
    }
}

/// One object to write: its path, bytes and cache lifetime.
type Object = (String, Vec<u8>, &'static str);

/// Reads the tiles and bundles of `tiles` from the store.
fn read_objects(store: &dyn LogStore, tiles: &[Tile]) -> Result<Vec<Object>, PublishError> {
    let mut out = Vec::with_capacity(tiles.len() * 2);
    for &tile in tiles {
        let cache = if tile.is_full() { IMMUTABLE } else { PARTIAL };
        out.push((
            tile.path(),
            read_tile_data(tile, &StoreHashes::new(store))?,
            cache,
        ));
        if tile.level == 0 {
            // A level-0 tile and the entry bundle of the same leaves.
            let bundle = BundleCoord {
                index: tile.index,
                width: tile.width,
            };
            let entries = store.entries(
                LeafIndex(tile.index * daylight_core::tile::TILE_WIDTH),
                u64::from(tile.width),
            )?;
            if entries.len() != usize::from(tile.width) {
                return Err(StoreError::Corrupt(format!(
                    "bundle {} has {} entries in the store",
                    bundle.path(),
                    entries.len()
                ))
                .into());
            }
            let data = encode_entry_bundle(entries.iter().map(|e| e.data.as_slice()))
                .map_err(|e| StoreError::Corrupt(format!("bundle {}: {e}", bundle.path())))?;
            out.push((bundle.path(), data, cache));
        }
    }
    Ok(out)
}

/// What one round wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// Tiles and bundles written.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Where the log's metadata document goes, relative to the prefix: the
/// path `GET /api/v1/log` has on the server, so a reader (the auditor) finds
/// it in the bucket as it would on the server.
pub const LOG_INFO: &str = "api/v1/log";

/// Publishes `checkpoint` (a published note for `size`), after every tile
/// and bundle that differs between a tree of `from` leaves and one of
/// `size` leaves, and after the log's metadata document `info`.
pub async fn publish(
    store: &Arc<dyn LogStore>,
    target: &Target,
    from: TreeSize,
    size: TreeSize,
    checkpoint: &[u8],
    info: &serde_json::Value,
) -> Result<Round, PublishError> {
    let round = publish_tiles(store, target, from, size).await?;
    target
        .put(LOG_INFO, info.to_string().into_bytes(), CHECKPOINT)
        .await?;
    target
        .put("checkpoint", checkpoint.to_vec(), CHECKPOINT)
        .await?;
    Ok(round)
}

/// Writes every tile and bundle that differs between a tree of `from`
/// leaves and one of `size` leaves.
pub async fn publish_tiles(
    store: &Arc<dyn LogStore>,
    target: &Target,
    from: TreeSize,
    size: TreeSize,
) -> Result<Round, PublishError> {
    let tiles = new_tiles(from, size);
    let mut round = Round::default();
    for step in tiles.chunks(STEP) {
        let (s, step) = (store.clone(), step.to_vec());
        let objects = tokio::task::spawn_blocking(move || read_objects(s.as_ref(), &step))
            .await
            .map_err(|e| StoreError::Backend(format!("reading tiles: {e}")))??;
        round.objects += objects.len() as u64;
        round.bytes += objects.iter().map(|o| o.1.len() as u64).sum::<u64>();
        let puts: Vec<_> = objects
            .into_iter()
            .map(|(path, data, cache)| {
                let target = target.clone();
                async move { target.put(&path, data, cache).await }
            })
            .collect();
        futures::stream::iter(puts)
            .buffer_unordered(PARALLEL)
            .try_collect::<Vec<()>>()
            .await?;
    }
    Ok(round)
}

/// What the publisher needs to know of the log.
#[derive(Clone)]
pub struct LogIdentity {
    /// The checkpoint origin.
    pub origin: String,
    /// The log's current verifier key.
    pub key: daylight_core::VerifierKey,
    /// The quorum the log was created with.
    pub quorum: usize,
    /// The log's rules, whose registry gives its keys over time, its
    /// witnesses and quorum now (`None`: `key` and `quorum` alone).
    pub rules: Option<Arc<dyn crate::admission::Admission>>,
}

impl std::fmt::Debug for LogIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogIdentity")
            .field("origin", &self.origin)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl LogIdentity {
    /// Every key the log has signed checkpoints with, oldest first.
    fn keys(&self) -> Vec<daylight_core::VerifierKey> {
        self.rules
            .as_ref()
            .and_then(|r| r.registry())
            .map(|reg| reg.log_keys().iter().map(|p| p.key.clone()).collect())
            .unwrap_or_else(|| vec![self.key.clone()])
    }
}

/// The sequencer term a publisher works for: its checkpoint is written only
/// while the term's lease still holds with time to spare, so a frontend that
/// was paused mid-round (and lost the lease meanwhile) does not put an older
/// checkpoint over its successor's.
#[derive(Clone, Debug)]
pub struct Term {
    /// This frontend's name in the lease.
    pub holder: String,
    /// The term's lease.
    pub lease: crate::store::Lease,
}

/// The least time left on the lease for a checkpoint write to go ahead.
const LEASE_MARGIN_MS: i64 = 1000;

async fn term_holds(store: &Arc<dyn LogStore>, term: &Term) -> Result<(), PublishError> {
    let s = store.clone();
    let state = tokio::task::spawn_blocking(move || s.lease_state())
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))??;
    match state {
        Some(st)
            if st.holder == term.holder
                && st.token == term.lease.token
                && st.expires_in_ms > LEASE_MARGIN_MS =>
        {
            Ok(())
        }
        _ => Err(StoreError::LeaseLost(term.lease.token).into()),
    }
}

/// How far `target` got: the size of its checkpoint, once that checkpoint is
/// shown to be this log's (signed by its key) and of this history (its
/// root is the store's tree hash at that size). A bucket holding another
/// history (a log made anew under the same name, a database restored from
/// an old backup) is refused rather than patched with tiles of two trees.
async fn published_size(
    store: &Arc<dyn LogStore>,
    target: &Target,
    log: &LogIdentity,
) -> Result<TreeSize, PublishError> {
    let Some(bytes) = target.get("checkpoint").await? else {
        return Ok(TreeSize(0));
    };
    // The origin first: the clearest message for a bucket of another log.
    target.parse_checkpoint(&bytes, &log.origin)?;
    let keys = log.keys();
    let keys: Vec<&daylight_core::VerifierKey> = keys.iter().collect();
    let cp = daylight_core::SignedCheckpoint::open_any(&bytes, &keys)
        .map_err(|e| target.foreign(format!("not signed by this log's keys: {e}")))?
        .0
        .checkpoint;
    let s = store.clone();
    let size = cp.size;
    let ours = tokio::task::spawn_blocking(
        move || -> Result<Option<daylight_core::Hash>, PublishError> {
            if s.size()? < size {
                return Ok(None);
            }
            Ok(Some(daylight_core::tree::tree_hash(
                size,
                &StoreHashes::new(s.as_ref()),
            )?))
        },
    )
    .await
    .map_err(|e| StoreError::Backend(e.to_string()))??;
    match ours {
        Some(root) if root == cp.root => Ok(size),
        Some(root) => Err(target.foreign(format!(
            "its root for size {size} is {}, this log's is {root}: another history",
            cp.root
        ))),
        None => Err(target.foreign(format!(
            "it is for size {size}, beyond this log's entries: another history"
        ))),
    }
}

/// The log's metadata document for a checkpoint of `size`.
async fn info_for(
    store: &Arc<dyn LogStore>,
    log: &LogIdentity,
    size: TreeSize,
) -> Result<serde_json::Value, PublishError> {
    let (s, l) = (store.clone(), log.clone());
    Ok(tokio::task::spawn_blocking(move || {
        crate::api::log_info_json(s.as_ref(), l.rules.as_deref(), &l.key, l.quorum, size.get())
    })
    .await
    .map_err(|e| StoreError::Backend(e.to_string()))??)
}

/// Checks, before serving, that `target` can be read and written and holds
/// no other log: reads its checkpoint and writes the metadata document for
/// that size (a missing bucket or a refused write fails here, not later).
pub async fn prepare(
    store: &Arc<dyn LogStore>,
    target: &Target,
    log: &LogIdentity,
) -> Result<(), PublishError> {
    let size = published_size(store, target, log).await?;
    let info = info_for(store, log, size).await?;
    target
        .put(LOG_INFO, info.to_string().into_bytes(), CHECKPOINT)
        .await
}

/// Keeps `target` up to date with the log's published checkpoints until
/// `stop` turns true (a round in progress then stops where it is; the next
/// term, here or elsewhere, starts again from the bucket's checkpoint).
pub async fn run(
    store: Arc<dyn LogStore>,
    target: Target,
    log: LogIdentity,
    term: Option<Term>,
    mut published: watch::Receiver<Option<Arc<Published>>>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let origin = log.origin.clone();
    let mut done: Option<Vec<u8>> = None;
    let mut backoff = Duration::from_millis(250);
    loop {
        let current = published.borrow_and_update().clone();
        let stopping = *stop.borrow();
        let mut failed = false;
        if let Some(p) = current.filter(|p| done.as_deref() != Some(p.bytes.as_slice())) {
            let started = Instant::now();
            let round = async {
                // The bucket says how far it got: the only state kept.
                let from = published_size(&store, &target, &log).await?;
                let size = p.checkpoint.size;
                // A successor already went further (this frontend's view
                // lags, or it was paused): nothing to write.
                if from > size {
                    return Ok(Round::default());
                }
                let info = info_for(&store, &log, size).await?;
                let round = publish_tiles(&store, &target, from, size).await?;
                if let Some(term) = &term {
                    term_holds(&store, term).await?;
                }
                // Never put an older checkpoint over a newer one written
                // meanwhile.
                if target
                    .checkpoint(&origin)
                    .await?
                    .is_some_and(|c| c.size > size)
                {
                    return Ok(round);
                }
                target
                    .put(LOG_INFO, info.to_string().into_bytes(), CHECKPOINT)
                    .await?;
                target
                    .put("checkpoint", p.bytes.clone(), CHECKPOINT)
                    .await?;
                Ok::<Round, PublishError>(round)
            };
            // The term may end mid-round: stop at once rather than finish
            // writing for a lease that is gone.
            let result = tokio::select! {
                r = round => r,
                _ = stop.changed() => return,
            };
            match result {
                Ok(round) => {
                    metrics.publication.observe(started.elapsed());
                    metrics
                        .published_objects
                        .fetch_add(round.objects, Ordering::Relaxed);
                    metrics
                        .bucket_size
                        .store(p.checkpoint.size.get(), Ordering::Relaxed);
                    tracing::debug!(
                        size = p.checkpoint.size.get(),
                        objects = round.objects,
                        "published tiles and checkpoint to {}",
                        target.name
                    );
                    done = Some(p.bytes.clone());
                    backoff = Duration::from_millis(250);
                }
                Err(e) => {
                    metrics.publication_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        "publishing size {} to {}: {e}; retrying in {backoff:?}",
                        p.checkpoint.size,
                        target.name
                    );
                    failed = true;
                }
            }
        }
        if stopping {
            return;
        }
        // A dropped stop sender means the server is gone: stop too.
        if failed {
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                r = stop.changed() => if r.is_err() { return },
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
            continue;
        }
        tokio::select! {
            r = published.changed() => if r.is_err() { return },
            r = stop.changed() => if r.is_err() { return },
        }
    }
}
