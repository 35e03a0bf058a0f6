//! What can go wrong, each with the HTTP status and stable code the
//! custodian answers with.

use daylight_custody::CustodyError;
use daylight_gate::ReasonCode;

/// Why a custodian refused or failed. Each variant has one HTTP status and
/// one stable `snake_case` code ([`CustodianError::code`]); the message is
/// the detail, for a person.
#[derive(Debug, thiserror::Error)]
pub enum CustodianError {
    /// The request body is not what the route takes (JSON, base64, a key).
    #[error("{0}")]
    Malformed(String),
    /// The request body is larger than the route takes.
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    /// The custodian's gate refused the request (nothing logged, nothing
    /// released).
    #[error("{reason}: {detail}")]
    Denied {
        /// The gate's stable reason.
        reason: ReasonCode,
        /// What failed, in words.
        detail: String,
    },
    /// The custodian holds no share for that provider and target.
    #[error("no share is held for this target of {provider}")]
    NoShare {
        /// The provider the request is addressed to.
        provider: String,
    },
    /// A deposit by a key that is not one of the custodian's depositors.
    #[error("{0} is not a depositor of this custodian")]
    UnknownDepositor(String),
    /// A deposit whose signature does not verify.
    #[error("the deposit's signature by {0} does not verify")]
    BadSignature(String),
    /// A deposit whose box does not open for this custodian and depositor.
    #[error("the sealed share does not open with this custodian's key for that depositor")]
    DoesNotOpen,
    /// A deposit into a slot that holds another share.
    #[error("this custodian already holds a different share for that target (key {held})")]
    SlotTaken {
        /// The check value of the key whose share is held.
        held: String,
    },
    /// The log refused the receipt or could not be reached: the share is
    /// not released.
    #[error("the release receipt was not logged: {0}")]
    ReceiptNotLogged(String),
    /// The log took the receipt but did not serve a proof of it that the
    /// policy believes in time: the share is not released.
    #[error("the release receipt (entry {index}) is not proven in the log: {why}")]
    ReceiptNotIncluded {
        /// The receipt's index.
        index: u64,
        /// What was missing.
        why: String,
    },
    /// The custodian's own storage failed.
    #[error("storage: {0}")]
    Storage(String),
    /// Something that cannot happen did (a bug or a broken configuration).
    #[error("{0}")]
    Internal(String),
}

impl CustodianError {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            CustodianError::Malformed(_) => 400,
            CustodianError::TooLarge(_) => 413,
            CustodianError::Denied { .. }
            | CustodianError::UnknownDepositor(_)
            | CustodianError::BadSignature(_) => 403,
            CustodianError::NoShare { .. } => 404,
            CustodianError::SlotTaken { .. } => 409,
            CustodianError::DoesNotOpen => 422,
            CustodianError::ReceiptNotLogged(_) => 502,
            CustodianError::ReceiptNotIncluded { .. } => 504,
            CustodianError::Storage(_) => 503,
            CustodianError::Internal(_) => 500,
        }
    }

    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            CustodianError::Malformed(_) => "malformed",
            CustodianError::TooLarge(_) => "too_large",
            CustodianError::Denied { .. } => "denied",
            CustodianError::NoShare { .. } => "no_share",
            CustodianError::UnknownDepositor(_) => "unknown_depositor",
            CustodianError::BadSignature(_) => "bad_signature",
            CustodianError::DoesNotOpen => "does_not_open",
            CustodianError::SlotTaken { .. } => "slot_taken",
            CustodianError::ReceiptNotLogged(_) => "receipt_not_logged",
            CustodianError::ReceiptNotIncluded { .. } => "receipt_not_included",
            CustodianError::Storage(_) => "storage_unavailable",
            CustodianError::Internal(_) => "internal",
        }
    }

    /// The gate's reason, for a refusal by the gate.
    pub fn reason(&self) -> Option<ReasonCode> {
        match self {
            CustodianError::Denied { reason, .. } => Some(*reason),
            _ => None,
        }
    }

    /// The JSON body: `{"error": code, "detail": text}`, and `"reason"`
    /// for a refusal by the gate.
    pub fn body(&self) -> serde_json::Value {
        // One line: details quote outside data.
        let detail = self.to_string().replace(['\n', '\r'], " ");
        let mut body = serde_json::json!({ "error": self.code(), "detail": detail });
        if let Some(reason) = self.reason() {
            body["reason"] = reason.as_str().into();
        }
        body
    }
}

impl From<CustodyError> for CustodianError {
    fn from(e: CustodyError) -> CustodianError {
        match e {
            CustodyError::UnknownDepositor(who) => CustodianError::UnknownDepositor(who),
            CustodyError::BadSignature(who) => CustodianError::BadSignature(who),
            CustodyError::DoesNotOpen => CustodianError::DoesNotOpen,
            CustodyError::Malformed { .. } | CustodyError::NotEd25519(_) => {
                CustodianError::Malformed(e.to_string())
            }
            other => CustodianError::Internal(other.to_string()),
        }
    }
}

impl From<rusqlite::Error> for CustodianError {
    fn from(e: rusqlite::Error) -> CustodianError {
        CustodianError::Storage(e.to_string())
    }
}
