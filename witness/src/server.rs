//! The HTTP face of the witness: thin axum handlers over [`Witness`].
//!
//! | route | what |
//! | --- | --- |
//! | `POST /add-checkpoint` | C2SP tlog-witness: cosign a checkpoint |
//! | `GET /<origin hash>/checkpoint` | latest cosigned checkpoint of a log (monitoring) |
//! | `GET /logs` | JSON list of known logs and their latest cosigned state |
//! | `GET /openapi.json` | these routes as an OpenAPI 3.1 document ([`openapi`]) |

use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use daylight_core::witness_protocol::{format_size_body, TLOG_SIZE_CONTENT_TYPE};
use serde::Serialize;
use tokio::net::TcpListener;
use utoipa::{OpenApi, ToSchema};

use crate::witness::{Witness, WitnessError};

/// Largest request body accepted (larger ones get `413`): a checkpoint with
/// many post-quantum signatures and 63 proof lines fits many times over.
pub const MAX_BODY: usize = 64 * 1024;

const TEXT: &str = "text/plain; charset=utf-8";

/// The witness's routes.
pub fn router(witness: Witness) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .route("/logs", get(logs))
        .route("/{origin_hash}/checkpoint", get(checkpoint))
        .route(OPENAPI_PATH, get(openapi_json))
        .fallback(|| async { text(StatusCode::NOT_FOUND, "no such route\n".to_owned()) })
        .method_not_allowed_fallback(|| async {
            text(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed on this route\n".to_owned(),
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(witness)
}

/// Serves `witness` on `listener` until `shutdown` completes, then finishes
/// the requests in flight.
pub async fn serve(
    listener: TcpListener,
    witness: Witness,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(witness))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Where the witness serves its OpenAPI document.
pub const OPENAPI_PATH: &str = "/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Daylight witness API",
        description = "A C2SP tlog-witness that never cosigns a fork or a rollback. `POST /add-checkpoint` speaks the C2SP tlog-witness protocol exactly: its bodies and its errors are plain text (one line saying why), not JSON; a 409 answers the witness's size for that log as `text/x.tlog.size`."
    ),
    paths(add_checkpoint, checkpoint, logs, openapi_json)
)]
struct WitnessApi;

/// The witness's OpenAPI 3.1 document, generated from the handlers'
/// annotations.
pub fn openapi() -> utoipa::openapi::OpenApi {
    WitnessApi::openapi()
}

/// This document.
#[utoipa::path(
    get, path = "/openapi.json",
    responses((status = 200, description = "This OpenAPI 3.1 document", body = Object, content_type = "application/json"))
)]
async fn openapi_json() -> Response {
    // Serialising utoipa's own types cannot fail.
    let doc = openapi().to_pretty_json().unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        doc,
    )
        .into_response()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// C2SP tlog-witness: asks the witness to cosign a checkpoint.
#[utoipa::path(
    post, path = "/add-checkpoint",
    request_body(
        content = String, content_type = "text/plain",
        description = "`old <size>`, the consistency proof's lines (base64 hashes), an empty line, and the checkpoint as a signed note (C2SP tlog-witness); at most 64 KiB"
    ),
    responses(
        (status = 200, description = "The witness's cosignature lines", body = String, content_type = "text/plain; charset=utf-8"),
        (status = 400, description = "Malformed request or checkpoint, old size after the checkpoint's, or too many proof lines", body = String, content_type = "text/plain; charset=utf-8"),
        (status = 403, description = "The log's signature does not verify", body = String, content_type = "text/plain; charset=utf-8"),
        (status = 404, description = "The witness does not know this log's origin", body = String, content_type = "text/plain; charset=utf-8"),
        (status = 409, description = "`old` is not the witness's size for this log: the body is that size", body = String, content_type = "text/x.tlog.size"),
        (status = 413, description = "Larger than 64 KiB", body = String, content_type = "text/plain; charset=utf-8"),
        (status = 422, description = "Inconsistent: a bad consistency proof, the same size with another root, or an empty tree's root", body = String, content_type = "text/plain; charset=utf-8"),
        (status = 500, description = "The witness's own storage or clock failed (nothing was cosigned)", body = String, content_type = "text/plain; charset=utf-8"),
    )
)]
async fn add_checkpoint(State(witness): State<Witness>, body: Bytes) -> Response {
    let now = unix_now();
    // Signature checks and the wait for the commit are blocking work.
    let result = tokio::task::spawn_blocking(move || witness.add_checkpoint(&body, now)).await;
    match result {
        Ok(Ok(cosignatures)) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, TEXT)], cosignatures).into_response()
        }
        Ok(Err(err)) => refusal(&err),
        Err(join) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {join}\n"),
        ),
    }
}

/// The one place a [`WitnessError`] becomes an HTTP answer: its status, and
/// a one-line reason (for 409, the spec's size body instead).
pub fn refusal(err: &WitnessError) -> Response {
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let WitnessError::Conflict { latest, .. } = err {
        return (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(TLOG_SIZE_CONTENT_TYPE),
            )],
            format_size_body(*latest),
        )
            .into_response();
    }
    text(status, one_line(&err.to_string()))
}

fn one_line(reason: &str) -> String {
    let mut line: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    line.push('\n');
    line
}

fn text(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, TEXT)], body).into_response()
}

/// The latest checkpoint this witness cosigned for a log (monitoring).
#[utoipa::path(
    get, path = "/{origin_hash}/checkpoint",
    params(("origin_hash" = String, Path, pattern = "^[0-9a-f]{64}$", description = "Lower-case hex SHA-256 of the log's origin")),
    responses(
        (status = 200, description = "The cosigned checkpoint as a signed note", body = String, content_type = "text/plain; charset=utf-8"),
        (status = 404, description = "Not an origin hash, or nothing cosigned for it", body = String, content_type = "text/plain; charset=utf-8"),
        (status = 500, description = "The witness's storage failed", body = String, content_type = "text/plain; charset=utf-8"),
    )
)]
async fn checkpoint(State(witness): State<Witness>, Path(origin_hash): Path<String>) -> Response {
    let well_formed = origin_hash.len() == 64
        && origin_hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !well_formed {
        return text(
            StatusCode::NOT_FOUND,
            "not a lower-case hex SHA-256 origin hash\n".to_owned(),
        );
    }
    let result = tokio::task::spawn_blocking(move || witness.checkpoint(&origin_hash)).await;
    match result {
        Ok(Ok(Some(note))) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, TEXT)], note).into_response()
        }
        Ok(Ok(None)) => text(
            StatusCode::NOT_FOUND,
            "no cosigned checkpoint for this origin\n".to_owned(),
        ),
        Ok(Err(err)) => refusal(&err),
        Err(join) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {join}\n"),
        ),
    }
}

/// One log in `GET /logs`.
#[derive(Serialize, ToSchema)]
struct LogView {
    /// The log's origin.
    origin: String,
    /// The log's verifier key.
    vkey: String,
    /// Size of the latest cosigned checkpoint.
    size: u64,
    /// Base64 root hash of the latest cosigned checkpoint.
    root: String,
    /// Unix seconds of the latest cosignature, `null` if never cosigned.
    cosigned_at: Option<u64>,
}

/// The logs this witness knows, with their latest cosigned state.
#[utoipa::path(
    get, path = "/logs",
    responses(
        (status = 200, description = "One entry per log", body = [LogView]),
        (status = 500, description = "The witness's storage failed", body = String, content_type = "text/plain; charset=utf-8"),
    )
)]
async fn logs(State(witness): State<Witness>) -> Response {
    let result = tokio::task::spawn_blocking(move || witness.logs()).await;
    match result {
        Ok(Ok(records)) => {
            let views: Vec<LogView> = records
                .into_iter()
                .map(|r| LogView {
                    origin: r.origin,
                    vkey: r.vkey.to_string(),
                    size: r.size.get(),
                    root: r.root.to_base64(),
                    cosigned_at: r.cosigned_at,
                })
                .collect();
            Json(views).into_response()
        }
        Ok(Err(err)) => refusal(&err),
        Err(join) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {join}\n"),
        ),
    }
}
