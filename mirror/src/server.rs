//! The HTTP face of the mirror: thin axum handlers over [`Mirror`]. The
//! submission and monitoring prefixes are both the server's root.
//!
//! | route | what |
//! | --- | --- |
//! | `POST /add-checkpoint` | C2SP tlog-witness semantics on the pending checkpoint; `200` with an empty body |
//! | `POST /add-entries` | C2SP tlog-mirror upload, read as it streams in |
//! | `GET /<origin hash>/checkpoint` | the mirror checkpoint (log signature + mirror cosignature) |
//! | `GET /<origin hash>/tile/...` | C2SP tlog-tiles hash tiles and entry bundles of the mirrored log |
//! | `GET /logs` | JSON: the mirror's key and every mirrored log's state (with `follow`: URL and last poll error, for a followed log) |
//!
//! The GET routes answer with `Access-Control-Allow-Origin: *`: what they
//! serve is public, and a page on another origin (the log's web view and
//! its in-browser verifier) must be able to read it.

use std::future::Future;
use std::io::Write as _;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::map_response;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use daylight_core::mirror_protocol::{
    AddEntriesParser, BodyEnd, MirrorInfo, ParseEvent, ADD_ENTRIES_CONTENT_TYPE,
    MIRROR_INFO_CONTENT_TYPE,
};
use daylight_core::tile::TilePath;
use daylight_core::witness_protocol::origin_hash;
use http_body_util::BodyExt as _;
use serde::Serialize;
use tokio::net::TcpListener;

use crate::mirror::{Mirror, MirrorError, Upload};
use crate::unix_now;

/// Largest add-checkpoint body (larger ones get `413`), as the witness.
pub const MAX_CHECKPOINT_BODY: usize = daylight_witness::server::MAX_BODY;

const TEXT: &str = "text/plain; charset=utf-8";

/// The mirror's routes.
pub fn router(mirror: Arc<Mirror>) -> Router {
    let public = Router::new()
        .route("/logs", get(logs))
        .route("/{origin_hash}/checkpoint", get(checkpoint))
        .route("/{origin_hash}/tile/{*path}", get(tile))
        .layer(map_response(allow_any_origin));
    Router::new()
        .route(
            "/add-checkpoint",
            post(add_checkpoint).layer(DefaultBodyLimit::max(MAX_CHECKPOINT_BODY)),
        )
        .route("/add-entries", post(add_entries))
        .merge(public)
        .fallback(|| async { text(StatusCode::NOT_FOUND, "no such route\n") })
        .with_state(mirror)
}

/// Lets a page on any origin read a public answer (CORS).
async fn allow_any_origin(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

/// Serves `mirror` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    mirror: Arc<Mirror>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(mirror))
        .with_graceful_shutdown(shutdown)
        .await
}

fn text(status: StatusCode, body: &str) -> Response {
    (status, [(header::CONTENT_TYPE, TEXT)], body.to_owned()).into_response()
}

fn mirror_info(status: StatusCode, info: &MirrorInfo) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(MIRROR_INFO_CONTENT_TYPE),
        )],
        info.to_bytes(),
    )
        .into_response()
}

/// The one place a [`MirrorError`] becomes an HTTP answer.
pub fn refusal(err: &MirrorError) -> Response {
    match err {
        MirrorError::Checkpoint(e) => daylight_witness::server::refusal(e),
        MirrorError::Conflict { info, .. } => mirror_info(StatusCode::CONFLICT, info),
        _ => {
            let status =
                StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let line: String = err
                .to_string()
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            text(status, &format!("{line}\n"))
        }
    }
}

/// Runs blocking mirror work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, MirrorError> + Send + 'static,
) -> Result<T, MirrorError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(MirrorError::Storage(format!("internal error: {e}"))))
}

async fn add_checkpoint(State(mirror): State<Arc<Mirror>>, body: Bytes) -> Response {
    match blocking(move || mirror.add_checkpoint(&body)).await {
        Ok(()) => text(StatusCode::OK, ""),
        Err(e) => refusal(&e),
    }
}

/// How an add-entries body is encoded on the wire.
enum Decoder {
    /// As is.
    Identity,
    /// `Content-Encoding: gzip`, decoded as it arrives.
    Gzip(Box<flate2::write::GzDecoder<Vec<u8>>>),
}

impl Decoder {
    /// The decoded bytes of `data`, the next piece of the body.
    fn decode(&mut self, data: &[u8]) -> Result<Vec<u8>, MirrorError> {
        match self {
            Decoder::Identity => Ok(data.to_vec()),
            Decoder::Gzip(gz) => {
                gz.write_all(data)
                    .and_then(|()| gz.flush())
                    .map_err(|e| MirrorError::BadEncoding(e.to_string()))?;
                Ok(std::mem::take(gz.get_mut()))
            }
        }
    }
}

/// Whether the request's headers allow an add-entries body: the spec's
/// content type (else `415`, as Sunlight), and no content encoding or gzip
/// (others: `415`). The error is the `415` reason.
fn check_entries_headers(headers: &HeaderMap) -> Result<Decoder, &'static str> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case(ADD_ENTRIES_CONTENT_TYPE) {
        return Err("add-entries takes Content-Type: application/octet-stream\n");
    }
    match headers.get(header::CONTENT_ENCODING).map(|v| v.as_bytes()) {
        None => Ok(Decoder::Identity),
        Some(enc) if enc.eq_ignore_ascii_case(b"identity") => Ok(Decoder::Identity),
        Some(enc) if enc.eq_ignore_ascii_case(b"gzip") => Ok(Decoder::Gzip(Box::new(
            flate2::write::GzDecoder::new(Vec::new()),
        ))),
        Some(_) => Err("add-entries takes Content-Encoding gzip or none\n"),
    }
}

async fn add_entries(State(mirror): State<Arc<Mirror>>, request: Request) -> Response {
    let mut response = match check_entries_headers(request.headers()) {
        Err(why) => text(StatusCode::UNSUPPORTED_MEDIA_TYPE, why),
        Ok(decoder) => match upload(&mirror, decoder, request.into_body()).await {
            Ok(response) => response,
            Err(e) => refusal(&e),
        },
    };
    // The spec: mirrors SHOULD say which encodings they take.
    response
        .headers_mut()
        .insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
    response
}

/// Reads the body as it arrives: the header is checked as soon as it is in
/// (errors answer before the body is read), each package is verified and
/// stored before the next is parsed. A body that breaks off (the client
/// went away, a cut) ends like a short one.
async fn upload(
    mirror: &Arc<Mirror>,
    mut decoder: Decoder,
    mut body: Body,
) -> Result<Response, MirrorError> {
    let mut parser = AddEntriesParser::new();
    let mut upload: Option<Upload> = None;
    let mut saved = 0u64;
    loop {
        while let Some(event) = parser.next_event()? {
            match event {
                ParseEvent::Header(header) => {
                    let m = Arc::clone(mirror);
                    upload = Some(blocking(move || m.begin_upload(&header)).await?);
                }
                ParseEvent::Package(package) => {
                    let Some(u) = upload.clone() else {
                        return Err(MirrorError::Storage("package before header".to_owned()));
                    };
                    let m = Arc::clone(mirror);
                    blocking(move || m.store_package(&u, &package)).await?;
                    saved += 1;
                }
            }
        }
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    parser.push(&decoder.decode(&data)?);
                }
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "add-entries body broke off");
                break;
            }
            None => break,
        }
    }
    let end = parser.finish()?;
    let Some(upload) = upload else {
        return Err(MirrorError::Storage(
            "no header after a finished body".to_owned(),
        ));
    };
    match end {
        BodyEnd::Complete { .. } => {
            let m = Arc::clone(mirror);
            let now = unix_now();
            let cosignatures = blocking(move || m.finish_upload(&upload, now)).await?;
            Ok((StatusCode::OK, [(header::CONTENT_TYPE, TEXT)], cosignatures).into_response())
        }
        BodyEnd::Incomplete {
            next_entry,
            partial_bytes,
            ..
        } => {
            if saved == 0 {
                // The spec's 400: the sequence was not empty and no package
                // was saved before the body ended.
                return Ok(text(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "the body ended {partial_bytes} bytes into the package at {next_entry}; nothing saved\n"
                    ),
                ));
            }
            let m = Arc::clone(mirror);
            let info = blocking(move || m.progress(&upload)).await?;
            Ok(mirror_info(StatusCode::ACCEPTED, &info))
        }
    }
}

fn well_formed_hash(origin_hash: &str) -> bool {
    origin_hash.len() == 64
        && origin_hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

async fn checkpoint(State(mirror): State<Arc<Mirror>>, Path(hash): Path<String>) -> Response {
    if !well_formed_hash(&hash) {
        return text(
            StatusCode::NOT_FOUND,
            "not a lower-case hex SHA-256 origin hash\n",
        );
    }
    match blocking(move || mirror.checkpoint(&hash)).await {
        Ok(Some(note)) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, TEXT),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            note,
        )
            .into_response(),
        Ok(None) => text(
            StatusCode::NOT_FOUND,
            "no mirror checkpoint for this origin\n",
        ),
        Err(e) => refusal(&e),
    }
}

async fn tile(
    State(mirror): State<Arc<Mirror>>,
    Path((hash, path)): Path<(String, String)>,
) -> Response {
    if !well_formed_hash(&hash) {
        return text(
            StatusCode::NOT_FOUND,
            "not a lower-case hex SHA-256 origin hash\n",
        );
    }
    let Ok(parsed) = TilePath::parse(&format!("tile/{path}")) else {
        return text(StatusCode::NOT_FOUND, "not a tlog-tiles path\n");
    };
    let full = match parsed {
        TilePath::Hashes(t) => t.is_full(),
        TilePath::Entries(b) => b.is_full(),
    };
    match blocking(move || mirror.tile(&hash, parsed)).await {
        Ok(Some(data)) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (
                    header::CACHE_CONTROL,
                    if full {
                        "public, max-age=604800, immutable"
                    } else {
                        "no-cache"
                    },
                ),
            ],
            data,
        )
            .into_response(),
        Ok(None) => text(StatusCode::NOT_FOUND, "not stored here\n"),
        Err(e) => refusal(&e),
    }
}

/// `GET /logs`.
#[derive(Serialize)]
struct LogsView {
    /// The mirror's cosignature verifier key.
    mirror: String,
    /// One per mirrored log.
    logs: Vec<LogView>,
}

/// One mirrored log in `GET /logs`.
#[derive(Serialize)]
struct LogView {
    origin: String,
    /// Its monitoring prefix, `/<origin hash>`.
    prefix: String,
    vkey: String,
    pending_size: u64,
    next_entry: u64,
    mirror_size: u64,
    cosigned_at: Option<u64>,
    /// Pull mode: the log's tlog-tiles prefix the mirror follows, and how
    /// the last poll went (absent for a log that only pushes).
    #[serde(skip_serializing_if = "Option::is_none")]
    follow: Option<FollowView>,
}

/// A followed log's poll state in `GET /logs`.
#[derive(Serialize)]
struct FollowView {
    url: String,
    /// Why the last poll failed; `null` when it succeeded.
    error: Option<String>,
    checked_at: Option<u64>,
}

async fn logs(State(mirror): State<Arc<Mirror>>) -> Response {
    let key = mirror.verifier().to_string();
    match blocking(move || Ok((mirror.logs()?, mirror.follows()?))).await {
        Ok((records, follows)) => Json(LogsView {
            mirror: key,
            logs: records
                .into_iter()
                .map(|r| LogView {
                    follow: follows
                        .iter()
                        .find(|f| f.origin == r.origin)
                        .map(|f| FollowView {
                            url: f.url.clone(),
                            error: f.error.clone(),
                            checked_at: f.checked_at,
                        }),
                    prefix: format!("/{}", origin_hash(&r.origin)),
                    origin: r.origin,
                    vkey: r.vkey.to_string(),
                    pending_size: r.pending_size.get(),
                    next_entry: r.next_entry,
                    mirror_size: r.mirror_size.get(),
                    cosigned_at: r.cosigned_at,
                })
                .collect(),
        })
        .into_response(),
        Err(e) => refusal(&e),
    }
}
