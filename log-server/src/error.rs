//! API errors: a status and a JSON body `{"error": code, "detail": text}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code.
    pub code: &'static str,
    /// What went wrong, for people.
    pub detail: String,
    /// Seconds to wait before retrying (503).
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// An error with a status, code and detail.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 400.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 500: our fault; the detail is logged, not leaked beyond a summary.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!("internal error: {detail}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }

    /// 503 with Retry-After.
    pub fn unavailable(
        code: &'static str,
        detail: impl Into<String>,
        retry_after: u32,
    ) -> ApiError {
        ApiError {
            retry_after: Some(retry_after),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, detail)
        }
    }
}

/// Seconds a client is told to wait when the log's storage refuses writes or
/// cannot be reached: an operator may have to free space or repair it.
pub const STORAGE_RETRY_AFTER: u32 = 30;

impl ApiError {
    /// A store failure: 503 `storage_unavailable` when waiting may help (the
    /// disk or database refuses writes or cannot be reached), else 500.
    pub fn storage(e: crate::store::StoreError) -> ApiError {
        if e.is_transient() {
            tracing::error!("storage: {e}");
            ApiError::unavailable(
                "storage_unavailable",
                format!("the log cannot use its storage ({e}); try again later"),
                STORAGE_RETRY_AFTER,
            )
        } else {
            ApiError::internal(e)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = crate::openapi::ErrorBody {
            detail: self.detail,
            error: self.code.to_string(),
        };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}
