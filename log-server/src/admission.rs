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
    /// Admits several records that arrived at about the same time, one
    /// answer each, in order, as [`admit`](Self::admit) would give it: an
    /// implementation may share the work (one read of the log's size, one
    /// batch signature verification on the calling thread). The default
    /// admits them one by one.
    fn admit_batch(
        &self,
        records: &[&[u8]],
        store: &dyn LogStore,
    ) -> Vec<Result<NewEntry, ApiError>> {
        records.iter().map(|r| self.admit(r, store)).collect()
    }
    /// Brings the registry up to date with the log's own registry entries
    /// (called at start; an implementation keeps itself current as the log
    /// grows, see [`RecordAdmission`]).
    fn refresh(&self, store: &dyn LogStore);
    /// A stored entry as JSON for `GET /api/v1/entries/{index}`.
    fn describe(&self, data: &[u8]) -> serde_json::Value;
    /// The registered keys as JSON for `GET /api/v1/agencies`.
    fn registry_json(&self) -> serde_json::Value;
    /// Checks again, inside the sequencer's commit, that each entry's signer
    /// may still sign it with the log at `size` (a revocation may have been
    /// appended since admission): one answer per entry, `Some(error)` for
    /// an entry to refuse. The store's size check at commit makes the
    /// answer hold for the batch it lets through.
    fn recheck(
        &self,
        store: &dyn LogStore,
        size: TreeSize,
        entries: &[NewEntry],
    ) -> Result<Vec<Option<ApiError>>, ApiError>;
    /// The log's registry as last refreshed, if the rules keep one.
    fn registry(&self) -> Option<Registry> {
        None
    }
    /// Whether the rules keep a registry (then `registry()` being `None`
    /// means it could not be read yet, not that there is none).
    fn keeps_registry(&self) -> bool {
        false
    }
    /// The log key the registry says is current, if the rules keep one.
    fn log_key(&self) -> Option<VerifierKey> {
        None
    }
    /// Where admitted records are kept for the web index, if anywhere (for
    /// `/metrics`).
    fn admitted(&self) -> Option<&crate::admitted::Admitted> {
        None
    }
}

use std::sync::RwLock;

use axum::http::StatusCode;
use daylight_core::{LeafIndex, TreeSize, VerifierKey};
use daylight_schemas::registry::{Registration, Registry, SignerError};
use daylight_schemas::{
    Body, Kind, RegistryAction, Role, SchemaError, SignatureCheck, SignedRecord,
};

use crate::signatures::{NoVerdict, Verdict};
use crate::store::StoredEntry;

struct RegistryState {
    /// The registry as of `next`: every registry entry before it applied.
    registry: Registry,
    /// The log size when last scanned: a larger log may hold new registry entries.
    scanned_size: u64,
}

/// Daylight's admission rules over the schemas crate's records, with the
/// registry rebuilt from the log's own registry entries.
pub struct RecordAdmission {
    /// The log key the server signs with now; the registry's chain of log
    /// keys starts from the first one (see [`first_log_key`]).
    log_key: VerifierKey,
    registry: RwLock<Option<RegistryState>>,
    rate: Option<RateLimit>,
    buckets: std::sync::Mutex<std::collections::HashMap<String, Bucket>>,
    /// Where admitted records are kept for the web index, if anywhere.
    admitted: Option<std::sync::Arc<crate::admitted::Admitted>>,
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
            registry: RwLock::new(None),
            rate: None,
            buckets: std::sync::Mutex::new(std::collections::HashMap::new()),
            admitted: None,
        }
    }

    /// Keeps each admitted record in `admitted`, parsed, for the web index.
    pub fn with_admitted(
        mut self,
        admitted: std::sync::Arc<crate::admitted::Admitted>,
    ) -> RecordAdmission {
        self.admitted = Some(admitted);
        self
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
        let reg = self
            .registry
            .read()
            .map_err(|_| ApiError::internal("registry lock poisoned"))?;
        let Some(state) = reg.as_ref() else {
            return Err(ApiError::unavailable(
                "registry_unavailable",
                "the log could not read its registry yet",
                1,
            ));
        };
        state
            .registry
            .signer_for(record)
            .map(|r| r.key.clone())
            .map_err(signer_error)
    }

    /// Every registration, in the order the registry entries made them.
    pub fn registrations(&self) -> Vec<Registration> {
        self.with_registry(|r| r.registrations().to_vec())
            .unwrap_or_default()
    }

    /// Runs `f` on the registry as last refreshed (`None` before the first refresh).
    pub fn with_registry<T>(&self, f: impl FnOnce(&Registry) -> T) -> Option<T> {
        let reg = self.registry.read().ok()?;
        reg.as_ref().map(|s| f(&s.registry))
    }
}

/// The HTTP answer for a signer the registry does not let sign.
fn signer_error(e: SignerError) -> ApiError {
    let status = match e {
        SignerError::Unknown(_) => StatusCode::UNAUTHORIZED,
        SignerError::Revoked { .. } | SignerError::WrongRole { .. } => StatusCode::FORBIDDEN,
    };
    ApiError::new(status, e.code(), e.to_string())
}

/// A provider's answer to a request (a release or a refusal) must name a
/// request or emergency (`reference_not_authorising`, 422) addressed to
/// the provider that signed the answer (`wrong_provider`, 403; a
/// custodian's share release names a request or emergency too, but any
/// registered custodian may sign it): a receipt
/// for anything else would make the log's counts of releases and refusals
/// say what did not happen. A withdrawal must name a request or emergency
/// made by the same agency (`wrong_agency`, 403). `referenced` holds the entries the record's
/// references name, already checked to exist with the named leaf hash.
fn check_provider_answer(
    record: &SignedRecord,
    referenced: &[StoredEntry],
) -> Result<(), ApiError> {
    let (what, entry) = match record.body() {
        Body::Release(b) => ("release", &b.entry),
        Body::Refusal(b) => ("refusal", &b.entry),
        Body::Withdrawal(b) => ("withdrawal", &b.entry),
        _ => return Ok(()),
    };
    let index = entry.index;
    let Some(stored) = referenced.iter().find(|e| e.index == index) else {
        // check_references found it; not finding it here is a bug.
        return Err(ApiError::internal(format!(
            "the {what}'s entry {index} was not kept"
        )));
    };
    // An entry the log holds but cannot read as a record (written under
    // older rules) authorises nothing.
    let target = SignedRecord::parse(&stored.data).ok();
    let target = match target {
        Some(t) if matches!(t.kind(), Kind::Request | Kind::Emergency) => t,
        other => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "reference_not_authorising",
                format!(
                    "a {what} must name a request or emergency entry; entry {index} is {}",
                    other.map_or_else(
                        || "not a readable record".to_owned(),
                        |t| format!("a {} record", t.kind())
                    )
                ),
            ))
        }
    };
    let signer = record.signer().name.as_str();
    if record.kind() == Kind::Withdrawal {
        // Only the agency that made a request may take it back (an identity
        // is its key name, so a rotated key still can): another agency's
        // withdrawal would make every provider's gate refuse the request.
        let made_by = target.signer().name.as_str();
        if made_by != signer {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "wrong_agency",
                format!(
                    "entry {index} was made by {made_by}, not by {signer}: only the agency that made a request may withdraw it"
                ),
            ));
        }
        return Ok(());
    }
    if matches!(record.body(), Body::Release(b) if b.share.is_some()) {
        // A custodian's receipt for the share it released (threshold
        // custody): the registry already required a custodian's key, and
        // custodians are not the provider the request is addressed to.
        return Ok(());
    }
    match target.provider() {
        Some(provider) if provider == signer => Ok(()),
        addressed => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_provider",
            format!(
                "entry {index} is addressed to {}, not to {signer}: only the addressed provider may log a {what} for it",
                addressed.unwrap_or("no provider")
            ),
        )),
    }
}

/// The log key a registry chain starts from: the key the first log-key
/// rotation replaced, or `current` if the key never rotated. The log trusts
/// its own store for this; readers start from a key they already trust.
pub fn first_log_key(current: &VerifierKey, registry_entries: &[StoredEntry]) -> VerifierKey {
    registry_entries
        .iter()
        .filter_map(|e| SignedRecord::parse(&e.data).ok())
        .find_map(|r| match r.body() {
            daylight_schemas::Body::Registry(b)
                if b.action == RegistryAction::Rotate && b.role == Role::Log =>
            {
                b.replaces.as_ref().map(|k| k.key().clone())
            }
            _ => None,
        })
        .unwrap_or_else(|| current.clone())
}

impl RecordAdmission {
    /// Replays registry entries up to the log's current size; returns that size.
    fn refresh_to(&self, store: &dyn LogStore) -> Result<u64, String> {
        let mut reg = self
            .registry
            .write()
            .map_err(|_| "registry lock poisoned".to_string())?;
        let size = store.size().map_err(|e| e.to_string())?.get();
        let from = reg.as_ref().map_or(0, |s| s.registry.next().get());
        let entries = store
            .entries_of_kind(Kind::Registry.as_str(), LeafIndex(from))
            .map_err(|e| e.to_string())?;
        let state = reg.get_or_insert_with(|| RegistryState {
            registry: Registry::new(first_log_key(&self.log_key, &entries)),
            scanned_size: 0,
        });
        for e in entries.iter().filter(|e| e.index.get() < size) {
            let record = SignedRecord::parse(&e.data).map_err(|e| e.to_string());
            if let Err(why) =
                record.and_then(|r| state.registry.apply(e.index, &r).map_err(|e| e.to_string()))
            {
                // The log only writes registry entries it signed itself.
                tracing::error!("registry entry {}: {why}", e.index);
                state.registry.seen_up_to(LeafIndex(e.index.get() + 1));
            }
        }
        state.registry.seen_up_to(LeafIndex(size));
        state.scanned_size = state.scanned_size.max(size);
        Ok(size)
    }
}

impl RecordAdmission {
    /// Brings the registry up to the log's `size` if entries were appended
    /// since it was last read: an operator may revoke a key offline while
    /// the server runs.
    fn refresh_if_stale(&self, store: &dyn LogStore, size: TreeSize) {
        let stale = self
            .registry
            .read()
            .map(|r| r.as_ref().is_none_or(|s| s.scanned_size < size.get()))
            .unwrap_or(true);
        if stale {
            self.refresh(store);
        }
    }

    /// The checks before the signature's: the record's log, its kind, and
    /// a registered signer who may sign it; the signer's key and the
    /// signature check to run.
    fn before_signature(
        &self,
        record: &SignedRecord,
    ) -> Result<(VerifierKey, SignatureCheck), ApiError> {
        record
            .check_log(self.log_key.name().as_str())
            .map_err(schema_error)?;
        if record.kind() == Kind::Registry {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "registry_by_operator",
                "registry records are written by the log operator (daylight log add-agency ...)",
            ));
        }
        let key = self.signer_for(record)?;
        let check = record.signature_check(&key).map_err(schema_error)?;
        Ok((key, check))
    }

    /// The checks after a good signature (the key's rate, the references
    /// against the log at `size`, who may answer what), and the entry.
    fn after_signature(
        &self,
        bytes: &[u8],
        record: &SignedRecord,
        key: &VerifierKey,
        size: TreeSize,
        store: &dyn LogStore,
    ) -> Result<NewEntry, ApiError> {
        // Only after the signature: forged records cannot drain a key's budget.
        let signer = key.to_string();
        self.take_token(&signer)?;
        let mut lookup_failed = None;
        // The entries the references name, kept from the leaf-hash check so
        // the authorisation check below does not read them again.
        let mut referenced = Vec::new();
        record
            .check_references(LeafIndex(size.get()), |i| match store.entry(i) {
                Ok(e) => e.map(|e| {
                    let hash = e.leaf_hash;
                    referenced.push(e);
                    hash
                }),
                Err(err) => {
                    lookup_failed = Some(err);
                    None
                }
            })
            .map_err(|e| match lookup_failed.take() {
                Some(err) => ApiError::storage(err),
                None => schema_error(e),
            })?;
        check_provider_answer(record, &referenced)?;
        Ok(NewEntry {
            leaf_hash: record.leaf_hash(),
            data: bytes.to_vec(),
            kind: record.kind().to_string(),
            signer,
            packed: None,
        })
    }
}

/// A signature check's outcome as the answer to its submission.
fn signature_answer(verdict: Verdict) -> Result<(), ApiError> {
    match verdict {
        Ok(verdict) => verdict.map_err(schema_error),
        Err(e @ NoVerdict::Full) => Err(ApiError::unavailable("queue_full", e.to_string(), 1)),
        Err(e @ NoVerdict::Down) => Err(ApiError::unavailable(
            "signature_check_unavailable",
            format!("{e}; submit the record again"),
            1,
        )),
    }
}

impl Admission for RecordAdmission {
    /// A batch of one: a record alone and records together take one path.
    fn admit(&self, bytes: &[u8], store: &dyn LogStore) -> Result<NewEntry, ApiError> {
        self.admit_batch(&[bytes], store)
            .pop()
            .unwrap_or_else(|| Err(ApiError::internal("a record was not admitted")))
    }

    /// The checks for each record in order (parse, the log's size and the
    /// registry, its log, kind and signer, the signature, the key's rate,
    /// references, who may answer what), with the work they can share done once:
    /// the log's size is read once, after every record arrived (so it is
    /// as current as the read each would make alone), and the signatures
    /// are verified together on this thread.
    fn admit_batch(
        &self,
        records: &[&[u8]],
        store: &dyn LogStore,
    ) -> Vec<Result<NewEntry, ApiError>> {
        // A record that does not parse is refused before any storage read.
        let parsed: Vec<Result<SignedRecord, ApiError>> = records
            .iter()
            .map(|r| SignedRecord::parse(r).map_err(schema_error))
            .collect();
        let size = if parsed.iter().any(Result::is_ok) {
            match store.size() {
                Ok(size) => {
                    self.refresh_if_stale(store, size);
                    Ok(size)
                }
                Err(e) => Err(ApiError::storage(e)),
            }
        } else {
            Ok(TreeSize(0))
        };
        // Until its signature is checked: the record, its key and size.
        let mut pending = Vec::with_capacity(records.len());
        let mut checks = Vec::with_capacity(records.len());
        let mut answers: Vec<Option<Result<NewEntry, ApiError>>> =
            Vec::with_capacity(records.len());
        for (i, record) in parsed.into_iter().enumerate() {
            let before = record.and_then(|record| {
                let size = size.clone()?;
                let (key, check) = self.before_signature(&record)?;
                Ok((record, key, check, size))
            });
            match before {
                Ok((record, key, check, size)) => {
                    pending.push((i, record, key, size));
                    checks.push(check);
                    answers.push(None);
                }
                Err(e) => answers.push(Some(Err(e))),
            }
        }
        let verdicts = crate::signatures::verify_now(&checks);
        for ((i, record, key, size), verdict) in pending.into_iter().zip(verdicts) {
            let answer = signature_answer(verdict)
                .and_then(|()| self.after_signature(records[i], &record, &key, size, store));
            if let (Ok(entry), Some(admitted)) = (&answer, &self.admitted) {
                admitted.keep(entry.leaf_hash, record);
            }
            answers[i] = Some(answer);
        }
        answers
            .into_iter()
            .map(|a| a.unwrap_or_else(|| Err(ApiError::internal("a record was not admitted"))))
            .collect()
    }

    fn refresh(&self, store: &dyn LogStore) {
        if let Err(e) = self.refresh_to(store) {
            tracing::error!("reloading the registry: {e}");
        }
    }

    fn recheck(
        &self,
        store: &dyn LogStore,
        size: TreeSize,
        entries: &[NewEntry],
    ) -> Result<Vec<Option<ApiError>>, ApiError> {
        let scanned = self.refresh_to(store).map_err(ApiError::internal)?;
        if scanned != size.get() {
            // The log grew since the caller read its size; the caller's
            // commit will be refused by the store's size check anyway.
            return Err(ApiError::unavailable(
                "log_moved",
                format!("the log grew from {size} to {scanned} during the check"),
                1,
            ));
        }
        let reg = self
            .registry
            .read()
            .map_err(|_| ApiError::internal("registry lock poisoned"))?;
        let Some(state) = reg.as_ref() else {
            return Err(ApiError::internal("registry not loaded"));
        };
        Ok(entries
            .iter()
            .map(|e| {
                let Ok(kind) = e.kind.parse::<Kind>() else {
                    return Some(ApiError::internal(format!("unknown kind {:?}", e.kind)));
                };
                state
                    .registry
                    .may_sign(&e.signer, kind)
                    .err()
                    .map(signer_error)
            })
            .collect())
    }

    fn registry(&self) -> Option<Registry> {
        self.with_registry(Registry::clone)
    }

    fn keeps_registry(&self) -> bool {
        true
    }

    fn log_key(&self) -> Option<VerifierKey> {
        self.with_registry(|r| r.log_key().clone())
    }

    fn admitted(&self) -> Option<&crate::admitted::Admitted> {
        self.admitted.as_deref()
    }

    fn describe(&self, data: &[u8]) -> serde_json::Value {
        serde_json::from_slice(data).unwrap_or(serde_json::Value::Null)
    }

    fn registry_json(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .registrations()
            .into_iter()
            .filter(|r| r.role != Role::Witness)
            .map(|r| {
                serde_json::json!({
                    "vkey": r.key.to_string(),
                    "name": r.key.name().as_str(),
                    "role": r.role.as_str(),
                    "added_at": r.added_at.get(),
                    "revoked_at": r.revoked_at.map(|i| i.get()),
                    "replaces": r.replaces.as_ref().map(|k| k.to_string()),
                    "replaced_by": r.replaced_by.as_ref().map(|k| k.to_string()),
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }
}
