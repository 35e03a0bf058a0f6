//! HTTP routes: thin handlers over the store, the sequencer and the
//! admission rules. The read side is C2SP tlog-tiles; the API is JSON.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use daylight_core::tile::{read_tile_data, TilePath, TILE_HEIGHT, TILE_WIDTH};
use daylight_core::tlog_proof::tlog_proof_bytes;
use daylight_core::tree::{inclusion_proof, inclusion_proof_with_edge};
use daylight_core::{LeafIndex, VerifierKey};

use crate::admission::Admission;
use crate::error::{ApiError, STORAGE_RETRY_AFTER};
use crate::metrics::Metrics;
use crate::openapi::{
    Agencies, EntryView, ErrorBody, LogInfo, LogKeyPeriod, Submitted, WitnessInfo, TILE_INDEX,
};
use crate::read_pool::{ReadPool, ReadPoolError};
use crate::sequencer::{SequenceError, Sequencer};
use crate::store::{LogStore, Published, StoreHashes};

mod proofs;
mod submissions;
use proofs::ProofCache;
pub(crate) use submissions::AdmissionQueue;

/// The largest request body accepted (an entry is at most 65535 bytes).
pub const MAX_BODY: usize = 65_535;

/// How long a submission's body may take to arrive (a slow client is
/// answered 408 and its connection freed).
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Oversize bodies up to this size are read and dropped before the 413.
const DRAIN_LIMIT: u64 = 4 << 20;

/// Reads a body to its end, keeping nothing.
async fn drain(mut body: axum::body::Body) {
    use http_body_util::BodyExt as _;
    while let Some(Ok(_)) = body.frame().await {}
}

/// Reads a submission body: at most [`MAX_BODY`] bytes within
/// [`BODY_TIMEOUT`]; otherwise a JSON 413 or 408 (axum's own body-limit
/// rejection is plain text).
async fn read_body(headers: &HeaderMap, body: axum::body::Body) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("a record is at most {MAX_BODY} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        // Read (and drop) a moderately oversize body before answering, so the
        // client, still sending, gets the 413 rather than a reset connection.
        if declared.is_some_and(|n| n <= DRAIN_LIMIT) {
            let _ = tokio::time::timeout(BODY_TIMEOUT, drain(body)).await;
        }
        return Err(too_large());
    }
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY)).await {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!("the body did not arrive within {BODY_TIMEOUT:?}"),
        )),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) if e.to_string().contains("length limit") => Err(too_large()),
        Ok(Err(e)) => Err(ApiError::bad_request("bad_body", e.to_string())),
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The log's state.
    pub store: Arc<dyn LogStore>,
    /// Where submissions go.
    pub sequencer: Sequencer,
    /// Who may submit what.
    pub admission: Arc<dyn Admission>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The log's verifier key.
    pub log_key: VerifierKey,
    /// Cosignatures needed to publish.
    pub quorum: usize,
    /// The newest published checkpoint (kept current by the witnessing).
    pub published: tokio::sync::watch::Receiver<Option<Arc<Published>>>,
    /// What every proof against the published checkpoint shares.
    pub(crate) proofs: Arc<ProofCache>,
    /// Submissions waiting to be admitted, in batches.
    pub(crate) admission_queue: Arc<AdmissionQueue>,
}

/// The router, without the web view (the binary mounts that under `/`).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/checkpoint", get(checkpoint))
        .route("/tile/{*path}", get(tile))
        .route("/api/v1/log", get(log_info))
        .route("/api/v1/entries", post(submit))
        .route("/api/v1/entries/{index}", get(entry))
        .route("/api/v1/entries/{index}/proof", get(proof))
        .route("/api/v1/agencies", get(agencies))
        .route("/metrics", get(metrics))
        .route(
            crate::openapi::OPENAPI_PATH,
            get(crate::openapi::openapi_json),
        )
        // axum matches whole segments: `{file}` is `{kind}.json`.
        .route("/api/v1/schemas/{file}", get(crate::openapi::schema_file))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .fallback(|| async { ApiError::not_found("no such route") })
        .with_state(state)
}

/// Runs a read on `pool`'s threads ([`crate::read_pool`]: tiles below the
/// write path's priority, the API's reads beside it).
async fn blocking<T: Send + 'static>(
    pool: &ReadPool,
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    pool.run(f).await.map_err(|e| match e {
        ReadPoolError::Busy => ApiError::unavailable("reads_busy", e.to_string(), 1),
        ReadPoolError::NoAnswer => ApiError::internal(e),
    })?
}

fn text(body: Vec<u8>, cache: &'static str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        body,
    )
        .into_response()
}

impl AppState {
    fn published(&self) -> Option<Arc<Published>> {
        self.published.borrow().clone()
    }
}

/// The newest checkpoint cosigned by the witness quorum.
#[utoipa::path(
    get, path = "/checkpoint", tag = "tiles",
    responses(
        (status = 200, description = "The checkpoint as a signed note: the log's signature and the witnesses' cosignatures", body = String, content_type = "text/plain; charset=utf-8"),
        (status = 503, description = "No checkpoint cosigned by the quorum yet (`no_checkpoint`)", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
pub(crate) async fn checkpoint(State(s): State<AppState>) -> Result<Response, ApiError> {
    let p = s.published().ok_or_else(|| {
        ApiError::unavailable(
            "no_checkpoint",
            "no checkpoint has been cosigned by the witness quorum yet",
            1,
        )
    })?;
    Ok(text(p.bytes.clone(), "no-cache, max-age=1"))
}

/// A full hash tile (the route also serves partial tiles and entry bundles,
/// documented as their own path templates).
#[utoipa::path(
    get, path = "/tile/{L}/{N}", tag = "tiles",
    params(
        ("L" = u8, Path, maximum = 63, example = 0, description = "Tile level, 0..=63"),
        ("N" = String, Path, pattern = "^[0-9]{3}$", example = "000", description = TILE_INDEX),
    ),
    responses(
        (status = 200, description = "256 hashes of 32 bytes; immutable", body = [u8], content_type = "application/octet-stream"),
        (status = 400, description = "Not a tile path (`bad_tile_path`)", body = ErrorBody),
        (status = 404, description = "Not (yet) in the tree", body = ErrorBody),
        (status = 503, description = "Storage unavailable (`storage_unavailable`), or too many reads waiting (`reads_busy`)", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
pub(crate) async fn tile(
    State(s): State<AppState>,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    let parsed = TilePath::parse(&format!("tile/{path}"))
        .map_err(|e| ApiError::bad_request("bad_tile_path", e.to_string()))?;
    let data = blocking(ReadPool::tiles(), move || {
        let size = s.store.durable_size().map_err(ApiError::storage)?.get();
        match parsed {
            TilePath::Hashes(t) => {
                let available = size
                    .checked_shr(u32::from(t.level) * TILE_HEIGHT)
                    .unwrap_or(0);
                let start = t.index.saturating_mul(TILE_WIDTH);
                if available.saturating_sub(start) < u64::from(t.width) {
                    return Err(ApiError::not_found(format!(
                        "tile {} is not in a tree of size {size}",
                        t.path()
                    )));
                }
                let reader = StoreHashes::new(s.store.as_ref());
                let data = read_tile_data(t, &reader)
                    .map_err(|e| ApiError::storage(reader.store_error(e)))?;
                Ok((data, t.is_full()))
            }
            TilePath::Entries(b) => {
                let start = b.index.saturating_mul(TILE_WIDTH);
                if size.saturating_sub(start) < u64::from(b.width) {
                    return Err(ApiError::not_found(format!(
                        "bundle {} is not in a tree of size {size}",
                        b.path()
                    )));
                }
                let entries = s
                    .store
                    .entries(LeafIndex(start), u64::from(b.width))
                    .map_err(ApiError::storage)?;
                let bundle = daylight_core::tile::encode_entry_bundle(
                    entries.iter().map(|e| e.data.as_slice()),
                )
                .map_err(ApiError::internal)?;
                Ok((bundle, b.is_full()))
            }
        }
    })
    .await?;
    let (data, full) = data;
    // Full tiles never change: cache them forever. Partial ones grow.
    let cache = if full {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=5"
    };
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        data,
    )
        .into_response())
}

/// What a reader needs to know about the log.
#[utoipa::path(
    get, path = "/api/v1/log", tag = "api",
    responses(
        (status = 200, description = "Origin, keys, published size, quorum, witnesses, mirrors and mirror quorum", body = LogInfo),
        (status = 503, description = "Storage unavailable (`storage_unavailable`), or too many reads waiting (`reads_busy`)", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
pub(crate) async fn log_info(State(s): State<AppState>) -> Result<Json<LogInfo>, ApiError> {
    let (store, key, quorum) = (s.store.clone(), s.log_key.clone(), s.quorum);
    let rules = s.admission.clone();
    let size = s.published().map(|p| p.checkpoint.size.get()).unwrap_or(0);
    blocking(ReadPool::api(), move || {
        log_info_document(store.as_ref(), Some(rules.as_ref()), &key, quorum, size)
            .map(Json)
            .map_err(ApiError::storage)
    })
    .await
}

/// The `GET /api/v1/log` document: origin, key, published size, quorum,
/// witnesses, mirrors and mirror quorum. The publisher writes the same document beside the tiles, so a
/// reader of a bucket alone finds what it needs at the same path.
pub fn log_info_json(
    store: &dyn LogStore,
    rules: Option<&dyn Admission>,
    key: &VerifierKey,
    init_quorum: usize,
    size: u64,
) -> Result<serde_json::Value, crate::store::StoreError> {
    let info = log_info_document(store, rules, key, init_quorum, size)?;
    // Only strings, numbers and lists: serialising cannot fail.
    Ok(serde_json::to_value(info).unwrap_or(serde_json::Value::Null))
}

/// [`log_info_json`] as its typed document.
pub fn log_info_document(
    store: &dyn LogStore,
    rules: Option<&dyn Admission>,
    key: &VerifierKey,
    init_quorum: usize,
    size: u64,
) -> Result<LogInfo, crate::store::StoreError> {
    let meta = store.meta()?;
    let registry = rules.and_then(|r| r.registry());
    let (set, quorum) =
        crate::witnessing::effective_witnesses(store, registry.as_ref(), init_quorum)?;
    let info = |w: crate::store::WitnessConfig| WitnessInfo {
        url: w.url,
        vkey: w.key.to_string(),
    };
    let witnesses: Vec<WitnessInfo> = set.into_iter().map(info).collect();
    let mirror_set = store.mirrors()?;
    let mirrors: Vec<WitnessInfo> = mirror_set.mirrors.into_iter().map(info).collect();
    let time = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let vkeys: Vec<LogKeyPeriod> = match &registry {
        Some(reg) => reg
            .log_keys()
            .iter()
            .map(|p| LogKeyPeriod {
                from: p.from.map(|i| i.get()),
                replaced_at: p.replaced_at.map(|i| i.get()),
                until: p.until.map(time),
                vkey: p.key.to_string(),
            })
            .collect(),
        None => vec![LogKeyPeriod {
            from: None,
            replaced_at: None,
            until: None,
            vkey: key.to_string(),
        }],
    };
    // The registry's word on the current key: a frontend not yet restarted
    // after a rotation must not advertise the old one.
    let current = registry.as_ref().map_or(key, |r| r.log_key());
    Ok(LogInfo {
        origin: meta.origin,
        quorum: quorum as u64,
        size,
        vkey: current.to_string(),
        vkeys,
        witnesses,
        mirrors,
        mirror_quorum: mirror_set.quorum as u64,
    })
}

/// Submits a signed record.
#[utoipa::path(
    post, path = "/api/v1/entries", tag = "api",
    request_body(
        content = crate::openapi::Record, content_type = "application/json",
        description = "A signed record, at most 65535 bytes (`application/octet-stream` is also taken, or no content type). Registry records are written by the operator, not here."
    ),
    responses(
        (status = 200, description = "Logged: its index (the same record again answers the same index)", body = Submitted),
        (status = 400, description = "Not a record: malformed JSON, not canonical, unknown kind, bad field (`bad_json`, `not_canonical`, ...)", body = ErrorBody),
        (status = 401, description = "The signer is not a registered key (`unknown_signer`)", body = ErrorBody),
        (status = 403, description = "Bad signature, a revoked key or one of the wrong role, a registry record, a release or refusal by a provider the entry is not addressed to (`wrong_provider`), or a withdrawal by another agency than the one that made the entry (`wrong_agency`); `refused_at_commit` for a refusal at commit another frontend made whose code this one does not know", body = ErrorBody),
        (status = 408, description = "The body did not arrive in time (`body_timeout`)", body = ErrorBody),
        (status = 413, description = "Larger than 65535 bytes (`too_large`)", body = ErrorBody),
        (status = 415, description = "Neither JSON nor octets (`unsupported_media_type`)", body = ErrorBody),
        (status = 422, description = "Well-formed but refused by the log's rules: another log's record, dates out of order, a reference to a missing or wrong entry, a release, refusal or withdrawal naming an entry that is not a request or emergency (`reference_not_authorising`), ...", body = ErrorBody),
        (status = 429, description = "The signer's key is over its rate (`rate_limited`)", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait"))),
        (status = 503, description = "Cannot take it now: `queue_full`, `shutting_down`, `not_sequenced`, `storage_unavailable`, `log_key_unavailable`, `signature_check_unavailable`", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
pub(crate) async fn submit(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<Submitted>, ApiError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default();
        if !ct.starts_with("application/json") && !ct.starts_with("application/octet-stream") {
            s.metrics
                .rejected
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("send the record as application/json, not {ct}"),
            ));
        }
    }
    let body = match read_body(&headers, body).await {
        Ok(b) => b,
        Err(e) => {
            s.metrics
                .rejected
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(e);
        }
    };
    let index = s.admission_queue.submit(body).await.map_err(|e| match e {
        SequenceError::NotAdmitted(refusal) => {
            s.metrics
                .rejected
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            refusal
        }
        SequenceError::Refused(refusal) => refusal,
        SequenceError::QueueFull => ApiError::unavailable("queue_full", e.to_string(), 1),
        SequenceError::Stopped => ApiError::unavailable("shutting_down", e.to_string(), 5),
        SequenceError::LeaseLost | SequenceError::NotSequenced => {
            ApiError::unavailable("not_sequenced", format!("{e}; submit it again"), 2)
        }
        SequenceError::Integration(d) => ApiError::internal(d),
        SequenceError::Storage(d) => {
            tracing::error!("submission refused: {d}");
            ApiError::unavailable(
                "storage_unavailable",
                format!(
                    "the log cannot write to its storage ({d}); submit the record again \
                     later: if it was recorded after all, the log answers its index"
                ),
                STORAGE_RETRY_AFTER,
            )
        }
    })?;
    Ok(Json(Submitted { index: index.get() }))
}

fn parse_index(text: &str) -> Result<LeafIndex, ApiError> {
    daylight_core::types::parse_decimal(text)
        .map(LeafIndex)
        .ok_or_else(|| {
            ApiError::bad_request("bad_index", format!("{text:?} is not an entry index"))
        })
}

/// One logged record.
#[utoipa::path(
    get, path = "/api/v1/entries/{index}", tag = "api",
    params(("index" = u64, Path, example = 0, description = "Entry index, decimal without leading zeros")),
    responses(
        (status = 200, description = "The record with its index and leaf hash", body = EntryView),
        (status = 400, description = "Not an entry index (`bad_index`)", body = ErrorBody),
        (status = 404, description = "No such entry", body = ErrorBody),
        (status = 503, description = "Storage unavailable (`storage_unavailable`), or too many reads waiting (`reads_busy`)", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
pub(crate) async fn entry(
    State(s): State<AppState>,
    Path(index): Path<String>,
) -> Result<Json<EntryView>, ApiError> {
    let index = parse_index(&index)?;
    let (store, admission) = (s.store.clone(), s.admission.clone());
    blocking(ReadPool::api(), move || {
        let missing = || ApiError::not_found(format!("no entry {index}"));
        // Past the tree's end first: the stores cannot even look up an index
        // beyond their integer range (2^63 and up), and answered 500.
        if !store
            .durable_size()
            .map_err(ApiError::storage)?
            .contains(index)
        {
            return Err(missing());
        }
        let e = store
            .entry(index)
            .map_err(ApiError::storage)?
            .ok_or_else(missing)?;
        Ok(Json(EntryView {
            index: index.get(),
            leaf_hash: e.leaf_hash.to_hex(),
            record: admission.describe(&e.data),
        }))
    })
    .await
}

/// A C2SP tlog-proof of one entry against the newest published checkpoint.
#[utoipa::path(
    get, path = "/api/v1/entries/{index}/proof", tag = "api",
    params(("index" = u64, Path, example = 0, description = "Entry index, decimal without leading zeros")),
    responses(
        (status = 200, description = "C2SP tlog-proof: index, inclusion path and the cosigned checkpoint", body = String, content_type = "text/plain; charset=utf-8"),
        (status = 400, description = "Not an entry index (`bad_index`)", body = ErrorBody),
        (status = 404, description = "No such entry", body = ErrorBody),
        (status = 503, description = "Not yet in a checkpoint cosigned by the quorum (`not_yet_published`), storage unavailable, or too many reads waiting (`reads_busy`)", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
pub(crate) async fn proof(
    State(s): State<AppState>,
    Path(index): Path<String>,
) -> Result<Response, ApiError> {
    let index = parse_index(&index)?;
    let (store, published, cache) = (s.store.clone(), s.published(), s.proofs.clone());
    let work = move || {
        let covered = published
            .as_ref()
            .filter(|p| p.checkpoint.size.contains(index));
        let Some(p) = covered else {
            // Not covered yet: unknown (404) or waiting for witnesses (503).
            let size = store.size().map_err(ApiError::storage)?;
            if !size.contains(index) {
                return Err(ApiError::not_found(format!("no entry {index}")));
            }
            return Err(ApiError::unavailable(
                "not_yet_published",
                format!("entry {index} is not yet in a checkpoint cosigned by the witness quorum"),
                1,
            ));
        };
        let reader = StoreHashes::new(store.as_ref());
        let size = p.checkpoint.size;
        let path = match cache.edge(&p.checkpoint, &reader) {
            Ok(Some(edge)) => inclusion_proof_with_edge(index, size, &edge, &reader),
            Ok(None) => inclusion_proof(index, size, &reader),
            Err(e) => Err(e),
        }
        .map_err(|e| ApiError::storage(reader.store_error(e)))?;
        Ok(tlog_proof_bytes(None, index, &path, &p.bytes))
    };
    let body = blocking(ReadPool::api(), work).await?;
    Ok(text(body, "no-cache"))
}

/// The registered keys (agencies, courts, providers, the log's), from the
/// log's own registry entries.
#[utoipa::path(
    get, path = "/api/v1/agencies", tag = "api",
    responses((status = 200, description = "Every registered key but the witnesses'", body = Agencies))
)]
pub(crate) async fn agencies(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(s.admission.registry_json())
}

/// Counters for Prometheus.
#[utoipa::path(
    get, path = "/metrics", tag = "meta",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain; version=0.0.4"))
)]
pub(crate) async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        s.metrics.render() + &admitted_metrics(s.admission.admitted()),
    )
        .into_response()
}

/// The exposition of the records kept for the web index, if any are.
fn admitted_metrics(admitted: Option<&crate::admitted::Admitted>) -> String {
    let Some(a) = admitted else {
        return String::new();
    };
    format!(
        "# HELP daylight_admitted_records_reused_total Entries the web index took as the admission parsed them, without a parse of its own.\n\
         # TYPE daylight_admitted_records_reused_total counter\n\
         daylight_admitted_records_reused_total {}\n\
         # HELP daylight_admitted_records_kept Records the admission parsed, kept now for the web index.\n\
         # TYPE daylight_admitted_records_kept gauge\n\
         daylight_admitted_records_kept {}\n",
        a.reused(),
        a.len()
    )
}
