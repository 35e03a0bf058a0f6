//! The HTTP face of the witness: thin axum handlers over [`Witness`].
//!
//! | route | what |
//! | --- | --- |
//! | `POST /add-checkpoint` | C2SP tlog-witness: cosign a checkpoint |
//! | `GET /<origin hash>/checkpoint` | latest cosigned checkpoint of a log (monitoring) |
//! | `GET /logs` | JSON list of known logs and their latest cosigned state |

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

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

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
#[derive(Serialize)]
struct LogView {
    origin: String,
    vkey: String,
    size: u64,
    /// Base64 root hash of the latest cosigned checkpoint.
    root: String,
    /// Unix seconds of the latest cosignature, `null` if never cosigned.
    cosigned_at: Option<u64>,
}

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
