//! The custodian's HTTP API (axum): thin handlers over [`Custodian`].
//!
//! - `GET /api/v1/custodian`: [`crate::Info`].
//! - `POST /api/v1/shares`: a [`Deposit`]; 201 stored, 200 the same share
//!   again.
//! - `POST /api/v1/release`: a [`ReleaseRequest`]; 200 [`crate::Released`].
//!
//! Every error is JSON `{"error": code, "detail": text}` (and `"reason"`
//! for a refusal by the gate) with the status of [`CustodianError`].

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use daylight_custody::Deposit;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;

use crate::error::CustodianError;
use crate::service::{Custodian, ReleaseRequest};
use crate::store::Stored;

/// The largest request body taken: a release carries an entry (at most
/// 65,535 bytes, base64), its proof and an opening.
pub const MAX_BODY: usize = 256 * 1024;

impl IntoResponse for CustodianError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(code = self.code(), "{self}");
        }
        (status, Json(self.body())).into_response()
    }
}

/// The custodian's routes.
pub fn router(custodian: Arc<Custodian>) -> Router {
    Router::new()
        .route("/api/v1/custodian", get(info))
        .route("/api/v1/shares", post(deposit))
        .route("/api/v1/release", post(release))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(custodian)
}

/// Serves `custodian` on `listener` until `shutdown` completes, then
/// finishes the requests under way.
pub async fn serve(
    listener: TcpListener,
    custodian: Arc<Custodian>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(custodian))
        .with_graceful_shutdown(shutdown)
        .await
}

/// A JSON body of type `T`, or the error to answer.
fn json_body<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, CustodianError> {
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            CustodianError::TooLarge(MAX_BODY)
        } else {
            CustodianError::Malformed(e.body_text())
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        CustodianError::Malformed(format!("the body is not the JSON this route takes: {e}"))
    })
}

async fn info(State(c): State<Arc<Custodian>>) -> Result<Response, CustodianError> {
    Ok(Json(c.info()?).into_response())
}

async fn deposit(
    State(c): State<Arc<Custodian>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, CustodianError> {
    let d: Deposit = json_body(body)?;
    let (status, said) = match c.deposit(&d)? {
        Stored::New => (StatusCode::CREATED, "stored"),
        Stored::Again => (StatusCode::OK, "already held"),
    };
    Ok((status, Json(serde_json::json!({ "status": said }))).into_response())
}

async fn release(
    State(c): State<Arc<Custodian>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, CustodianError> {
    let req: ReleaseRequest = json_body(body)?;
    Ok(Json(c.release(&req).await?).into_response())
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({"error": "not_found", "detail": "no such route"})),
    )
        .into_response()
}

async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(serde_json::json!({"error": "method_not_allowed", "detail": "this route takes another method"})),
    )
        .into_response()
}
