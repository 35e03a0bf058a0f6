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

impl ApiError {
    /// This refusal at commit as the store keeps it for the frontend that
    /// queued the entry ([`crate::store::Settled::refused`]).
    pub fn to_refusal(&self) -> crate::store::QueueRefusal {
        crate::store::QueueRefusal {
            status: self.status.as_u16(),
            code: self.code.to_owned(),
            detail: self.detail.clone(),
        }
    }

    /// A refusal kept by the sequencing frontend, answered as that frontend
    /// answered its own submitters: its status, detail and code (the check
    /// at commit is the admission's signer check, whose codes are
    /// `SignerError::CODES`; another code, or a status that is no client
    /// error, as 403 `refused_at_commit`: the store is not trusted to name
    /// new ones).
    pub fn from_refusal(r: &crate::store::QueueRefusal) -> ApiError {
        let code = daylight_schemas::registry::SignerError::CODES
            .iter()
            .find(|c| **c == r.code);
        let status = StatusCode::from_u16(r.status)
            .ok()
            .filter(StatusCode::is_client_error);
        match (code, status) {
            (Some(code), Some(status)) => ApiError::new(status, code, r.detail.clone()),
            _ => ApiError::new(StatusCode::FORBIDDEN, "refused_at_commit", r.detail.clone()),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use daylight_core::LeafIndex;
    use daylight_schemas::registry::SignerError;
    use daylight_schemas::Role;

    /// Every refusal the check at commit gives comes back from the store
    /// as it was; anything else comes back as `refused_at_commit`.
    #[test]
    fn a_refusal_at_commit_survives_the_store() {
        // With the statuses the admission gives them (`signer_error`).
        for (status, e) in [
            (StatusCode::UNAUTHORIZED, SignerError::Unknown("k".into())),
            (
                StatusCode::FORBIDDEN,
                SignerError::Revoked {
                    who: "k".into(),
                    role: Role::Agency,
                    at: LeafIndex(7),
                    how: "revoked".into(),
                },
            ),
            (
                StatusCode::FORBIDDEN,
                SignerError::WrongRole {
                    who: "k".into(),
                    kind: "request".into(),
                },
            ),
        ] {
            let sent = ApiError::new(status, e.code(), e.to_string());
            let back = ApiError::from_refusal(&sent.to_refusal());
            assert_eq!(
                (back.status, back.code, back.detail),
                (sent.status, sent.code, sent.detail)
            );
        }
        let odd = |status: u16, code: &str| {
            ApiError::from_refusal(&crate::store::QueueRefusal {
                status,
                code: code.into(),
                detail: "why".into(),
            })
        };
        let unknown = odd(403, "made_up");
        assert_eq!(
            (unknown.status.as_u16(), unknown.code),
            (403, "refused_at_commit")
        );
        let not_an_error = odd(200, "revoked_signer");
        assert_eq!(
            (not_an_error.status.as_u16(), not_an_error.code),
            (403, "refused_at_commit")
        );
        let fault = odd(500, "revoked_signer");
        assert_eq!(
            (fault.status.as_u16(), fault.code),
            (403, "refused_at_commit")
        );
    }
}
