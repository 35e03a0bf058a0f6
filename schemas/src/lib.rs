//! Daylight's records: the signed entries of the transparency log of
//! exceptional-access requests, their one canonical encoding, their
//! validation rules, drafts, commitments and openings, and their JSON Schema.
//!
//! # Kinds
//!
//! [`Kind`]: `request`, `emergency`, `ratification`, `extension`,
//! `disclosure`, `release`, `withdrawal`, `outcome`, `registry`. Each has a
//! body type ([`RequestBody`], ...) gathered in [`Body`]. `schemas/README.md`
//! documents every field with its meaning and source.
//!
//! # The API other parts use
//!
//! Reading (log server, gate, auditor):
//! - [`SignedRecord::parse`]`(&[u8]) -> Result<SignedRecord, SchemaError>`:
//!   size cap ([`MAX_RECORD_SIZE`]), canonical encoding only, unknown fields
//!   and versions refused, the context-free rules applied. Parse, don't
//!   validate: a `SignedRecord` is always well-formed.
//! - [`SignedRecord::verify_signature`]`(&VerifierKey)`: Ed25519 over
//!   [`SIGNATURE_DOMAIN`] followed by the canonical record without its
//!   `signature` member, under the rule of [`signature`] (strict encodings,
//!   cofactored equation); the key must be the record's [`Signer`]. Many at
//!   once: [`SignedRecord::signature_check`] then
//!   [`signature::verify_batch`]`(checks, rng)`, with the same verdicts.
//! - [`SignedRecord::as_bytes`] / [`SignedRecord::to_bytes`] (the exact log
//!   entry), [`SignedRecord::leaf_hash`], [`SignedRecord::kind`],
//!   [`SignedRecord::signer`], [`SignedRecord::created`],
//!   [`SignedRecord::body`], [`SignedRecord::provider`],
//!   [`SignedRecord::valid_from`], [`SignedRecord::valid_until`],
//!   [`SignedRecord::sealed_until`], [`SignedRecord::ratify_by`],
//!   [`SignedRecord::target_count`], [`SignedRecord::to_json_value`].
//! - [`SignedRecord::references`] (the [`EntryRef`]s, index and leaf hash,
//!   of earlier entries) and [`SignedRecord::check_references`]`(own_index,
//!   leaf_hash_at)`: references point backwards and name the right leaf.
//! - [`Kind::signer_roles`] / [`Kind::signed_by_log`]: which registered keys
//!   may sign which kind.
//! - [`SchemaError::code`]: a stable machine code per error.
//!
//! Writing:
//! - [`Record::registry_add`] / [`Record::registry_revoke`] (log operator),
//!   [`Record::release`] (provider's gate), [`Record::new`] for any body;
//!   then [`Record::sign`]`(&SignerKey, log_origin) -> Result<SignedRecord, _>`
//!   (schema version 2: bound to that log; [`SignedRecord::check_log`]).
//! - [`Draft::from_json`] and [`Draft::seal`]`(&SignerKey, log_origin, created, rng)
//!   -> (SignedRecord, Opening)` (agency).
//!
//! The registry (log server, auditor, gate, web view): [`Registry`]
//! replays the log's registry entries in order (the chain of log keys, each
//! identity's keys over time, the witness set and quorum) and answers
//! [`Registry::signer_for`].
//!
//! Openings (gate, auditor):
//! - [`Opening::from_json`], [`Opening::to_json`],
//!   [`Opening::check`]`(&SignedRecord, target) -> Result<usize, _>` (which
//!   commitment the target opens), [`Opening::check_all`].
//! - [`commitment::commit`]: the commitment scheme.
//!
//! Schemas: [`json_schema::generate`] gives the files under `schemas/json/`.
//!
//! No I/O, no clock, no randomness: callers pass times and a salt source.

pub mod canonical;
pub mod commitment;
pub mod content_policy;
pub mod draft;
pub mod error;
pub mod fields;
pub mod json_schema;
pub mod record;
pub mod registry;
pub mod signature;

pub use commitment::{DocumentOpening, Opening, TargetOpening};
pub use draft::{Draft, EmergencyDraft, RatificationDraft, RequestDraft};
pub use error::SchemaError;
pub use fields::{
    Commitment, DataCategory, Decision, DocumentHash, EmergencyGround, EntryRef, IssuerType,
    Jurisdiction, KeyCheck, KeyTag, Name, Offence, RefusalReason, RegisteredKey, RegistryAction,
    Role, Salt, SealReason, Signer, TargetId, TargetType, Text, Timestamp, WithdrawalReason,
};
pub use record::{
    Authority, Body, DisclosedDocument, DisclosedTarget, DisclosureBody, EmergencyBody,
    ExtensionBody, Kind, OutcomeBody, Period, PolicyBody, RatificationBody, Record, RefusalBody,
    RegistryBody, ReleaseBody, RequestBody, ShareRef, SignedRecord, WithdrawalBody, WithheldTarget,
    MAX_RATIFY_HOURS, MAX_RECORD_SIZE, SCHEMA_VERSION, SCHEMA_VERSIONS_READ, SIGNATURE_DOMAIN,
};
pub use registry::{LogKeyPeriod, Registration, Registry, RegistryError, SignerError};
pub use signature::SignatureCheck;
