//! Admission: whether a submitted record may enter the log. The rules live
//! behind a trait so the handlers and the sequencer do not depend on the
//! record format.

use crate::error::ApiError;
use crate::store::{LogStore, NewEntry};

/// Decides what enters the log.
pub trait Admission: Send + Sync + 'static {
    /// Parses and checks a submitted record (format, signer registered and
    /// not revoked, signature, validation rules, references) and returns
    /// what to store, or the error to answer with.
    fn admit(&self, bytes: &[u8], store: &dyn LogStore) -> Result<NewEntry, ApiError>;
    /// Brings the registry up to date with the log's own registry entries
    /// (called at start; an implementation keeps itself current as the log
    /// grows, see [`RecordAdmission`]).
    fn refresh(&self, store: &dyn LogStore);
    /// A stored entry as JSON for `GET /api/v1/entries/{index}`.
    fn describe(&self, data: &[u8]) -> serde_json::Value;
    /// The registered keys as JSON for `GET /api/v1/agencies`.
    fn registry_json(&self) -> serde_json::Value;
}

use std::collections::BTreeMap;
use std::sync::RwLock;

use axum::http::StatusCode;
use daylight_core::{LeafIndex, VerifierKey};
use daylight_schemas::{Body, Kind, RegistryAction, Role, SchemaError, SignedRecord};

/// One registered key and its roles, as the log's registry entries say.
#[derive(Clone, Debug)]
pub struct Registration {
    /// The key.
    pub key: VerifierKey,
    /// Its role.
    pub role: Role,
    /// The registry entry that added it.
    pub added_at: LeafIndex,
    /// The registry entry that revoked it, if any.
    pub revoked_at: Option<LeafIndex>,
}

#[derive(Default)]
struct RegistryState {
    /// By (key name, key ID, role).
    keys: BTreeMap<(String, u32, &'static str), Registration>,
    /// The next index to scan from.
    next: u64,
    /// The log size when last scanned: a larger log may hold new registry entries.
    scanned_size: u64,
}

/// Daylight's admission rules over the schemas crate's records, with the
/// registry rebuilt from the log's own registry entries.
pub struct RecordAdmission {
    log_key: VerifierKey,
    registry: RwLock<RegistryState>,
    rate: Option<RateLimit>,
    buckets: std::sync::Mutex<std::collections::HashMap<String, Bucket>>,
}

/// Submissions each signing key may make: a sustained rate and a burst.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Records per second, sustained.
    pub per_second: f64,
    /// Records allowed at once after a quiet spell.
    pub burst: f64,
}

/// A token bucket for one key.
struct Bucket {
    tokens: f64,
    last: std::time::Instant,
}

/// The status for a record-format or rule error.
fn schema_error(e: SchemaError) -> ApiError {
    let status = match e.code() {
        "too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        "malformed" | "noncanonical" | "unknown_field" | "missing_field" | "unknown_version"
        | "unknown_kind" | "bad_text" | "bad_key" | "bad_time" => StatusCode::BAD_REQUEST,
        "bad_signature" | "signer_mismatch" => StatusCode::FORBIDDEN,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    ApiError::new(status, e.code(), e.to_string())
}

impl RecordAdmission {
    /// Rules for the log whose registry entries `log_key` signs.
    pub fn new(log_key: VerifierKey) -> RecordAdmission {
        RecordAdmission {
            log_key,
            registry: RwLock::new(RegistryState::default()),
            rate: None,
            buckets: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Limits how fast each signing key may submit (429 beyond it).
    pub fn with_rate_limit(mut self, rate: RateLimit) -> RecordAdmission {
        self.rate = Some(rate);
        self
    }

    /// Takes one token from `signer`'s bucket, or says how long to wait.
    fn take_token(&self, signer: &str) -> Result<(), ApiError> {
        let Some(rate) = self.rate else {
            return Ok(());
        };
        let mut buckets = self
            .buckets
            .lock()
            .map_err(|_| ApiError::internal("rate limiter poisoned"))?;
        let now = std::time::Instant::now();
        let b = buckets.entry(signer.to_owned()).or_insert(Bucket {
            tokens: rate.burst,
            last: now,
        });
        b.tokens =
            (b.tokens + now.duration_since(b.last).as_secs_f64() * rate.per_second).min(rate.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Ok(());
        }
        let wait = ((1.0 - b.tokens) / rate.per_second).ceil().max(1.0) as u32;
        Err(ApiError {
            retry_after: Some(wait),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "{signer} may submit {} records per second; retry later",
                    rate.per_second
                ),
            )
        })
    }

    /// The registration that lets `record`'s signer sign its kind now.
    fn signer_for(&self, record: &SignedRecord) -> Result<VerifierKey, ApiError> {
        let signer = record.signer();
        let kind = record.kind();
        let reg = self
            .registry
            .read()
            .map_err(|_| ApiError::internal("registry lock poisoned"))?;
        let mut found_any = false;
        for role in kind.signer_roles() {
            let k = (signer.name.to_string(), signer.key_id.0, role.as_str());
            if let Some(r) = reg.keys.get(&k) {
                found_any = true;
                if r.revoked_at.is_none() {
                    return Ok(r.key.clone());
                }
            }
        }
        let who = format!("{}+{}", signer.name, signer.key_id);
        if found_any {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "revoked_signer",
                format!("{who} was revoked"),
            ));
        }
        if reg
            .keys
            .keys()
            .any(|(n, id, _)| *n == signer.name.to_string() && *id == signer.key_id.0)
        {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "wrong_role",
                format!("{who} is not registered for a role that may sign {kind} records"),
            ));
        }
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unknown_signer",
            format!("{who} is not a registered key"),
        ))
    }

    fn apply(&self, reg: &mut RegistryState, index: LeafIndex, data: &[u8]) -> Result<(), String> {
        let record = SignedRecord::parse(data).map_err(|e| e.to_string())?;
        record
            .verify_signature(&self.log_key)
            .map_err(|e| format!("registry entry {index} not signed by the log: {e}"))?;
        let Body::Registry(body) = record.body() else {
            return Err(format!("entry {index} is not a registry record"));
        };
        let key = body.key.key().clone();
        let k = (key.name().to_string(), key.id().0, body.role.as_str());
        match body.action {
            RegistryAction::Add => {
                reg.keys.insert(
                    k,
                    Registration {
                        key,
                        role: body.role,
                        added_at: index,
                        revoked_at: None,
                    },
                );
            }
            RegistryAction::Revoke => {
                if let Some(r) = reg.keys.get_mut(&k) {
                    r.revoked_at.get_or_insert(index);
                }
            }
        }
        Ok(())
    }

    /// Every registration, in key order.
    pub fn registrations(&self) -> Vec<Registration> {
        self.registry
            .read()
            .map(|r| r.keys.values().cloned().collect())
            .unwrap_or_default()
    }
}

impl Admission for RecordAdmission {
    fn admit(&self, bytes: &[u8], store: &dyn LogStore) -> Result<NewEntry, ApiError> {
        let record = SignedRecord::parse(bytes).map_err(schema_error)?;
        // The registry must be current: an operator may revoke a key offline
        // while the server runs.
        let size = store.size().map_err(ApiError::storage)?;
        let stale = self
            .registry
            .read()
            .map(|r| r.scanned_size < size.get())
            .unwrap_or(true);
        if stale {
            self.refresh(store);
        }
        if record.kind() == Kind::Registry {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "registry_by_operator",
                "registry records are written by the log operator (daylight log add-agency ...)",
            ));
        }
        let key = self.signer_for(&record)?;
        record.verify_signature(&key).map_err(schema_error)?;
        // Only after the signature: forged records cannot drain a key's budget.
        self.take_token(&key.to_string())?;
        let mut lookup_failed = None;
        record
            .check_references(LeafIndex(size.get()), |i| match store.entry(i) {
                Ok(e) => e.map(|e| e.leaf_hash),
                Err(err) => {
                    lookup_failed = Some(err);
                    None
                }
            })
            .map_err(|e| match lookup_failed.take() {
                Some(err) => ApiError::storage(err),
                None => schema_error(e),
            })?;
        Ok(NewEntry {
            leaf_hash: record.leaf_hash(),
            data: bytes.to_vec(),
            kind: record.kind().to_string(),
            signer: key.to_string(),
        })
    }

    fn refresh(&self, store: &dyn LogStore) {
        let Ok(mut reg) = self.registry.write() else {
            return;
        };
        let size = match store.size() {
            Ok(s) => s.get(),
            Err(e) => {
                tracing::error!("reloading the registry: {e}");
                return;
            }
        };
        let entries = match store.entries_of_kind(Kind::Registry.as_str(), LeafIndex(reg.next)) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!("reloading the registry: {e}");
                return;
            }
        };
        for e in entries {
            if let Err(why) = self.apply(&mut reg, e.index, &e.data) {
                // The log only writes registry entries it signed itself.
                tracing::error!("registry entry {}: {why}", e.index);
            }
            reg.next = e.index.get() + 1;
        }
        reg.scanned_size = reg.scanned_size.max(size);
    }

    fn describe(&self, data: &[u8]) -> serde_json::Value {
        serde_json::from_slice(data).unwrap_or(serde_json::Value::Null)
    }

    fn registry_json(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .registrations()
            .into_iter()
            .map(|r| {
                serde_json::json!({
                    "vkey": r.key.to_string(),
                    "name": r.key.name().as_str(),
                    "role": r.role.as_str(),
                    "added_at": r.added_at.get(),
                    "revoked_at": r.revoked_at.map(|i| i.get()),
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }
}
