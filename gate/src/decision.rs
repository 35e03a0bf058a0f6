//! The release decision: every check in order, each failing closed with its
//! own stable [`ReasonCode`].

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, TimeZone as _, Utc};
use daylight_core::checkpoint::Checkpoint;
use daylight_core::cosignature::verify_cosignatures;
use daylight_core::proof::verify_inclusion;
use daylight_core::tlog_proof::TlogProof;
use daylight_core::{leaf_hash, Hash, LeafIndex, Note, TreeSize, VerifierKey};
use daylight_schemas::{Kind, Opening, RefusalReason, SchemaError, SignedRecord};

use crate::later::Later;
use crate::policy::Policy;

/// How far ahead of `now` a witness cosignature's timestamp may be (clock
/// skew between the witness and the gate), in seconds. Further ahead, the
/// checkpoint is refused with [`ReasonCode::CheckpointInFuture`]: a
/// timestamp from the future would keep a checkpoint "fresh" indefinitely.
pub const MAX_CLOCK_SKEW: u64 = 300;

/// Why the gate refused: one code per check, stable (the `snake_case` text of
/// [`ReasonCode::as_str`] is printed by `daylight gate verify` and never
/// changes meaning). Listed in the order the checks run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ReasonCode {
    /// `bundle_malformed`: the proof is not a C2SP tlog-proof, or its checkpoint is not a
    /// signed note holding a C2SP checkpoint.
    BundleMalformed,
    /// `unknown_log`: the checkpoint's origin is not a log of the policy.
    UnknownLog,
    /// `log_signature_invalid`: no valid signature by a policy key for that log
    /// (missing, wrong key, or a signature that does not verify).
    LogSignatureInvalid,
    /// `cosignature_invalid`: a cosignature line by a policy witness does not verify.
    CosignatureInvalid,
    /// `quorum_not_met`: the valid cosignatures by policy witnesses do not satisfy its quorum.
    QuorumNotMet,
    /// `log_key_retired`: the checkpoint is signed only by rotated-out log keys
    /// (`daylight-log-key-until`) and the quorum did not cosign it before their end.
    LogKeyRetired,
    /// `checkpoint_too_old`: the newest valid cosignature is older than `daylight-max-age`.
    CheckpointTooOld,
    /// `checkpoint_in_future`: the newest valid cosignature is dated more than
    /// [`MAX_CLOCK_SKEW`] seconds after now.
    CheckpointInFuture,
    /// `tlog_mirror_not_cosigned`: fewer than `daylight-tlog-mirror-quorum` of the policy's
    /// C2SP tlog-mirrors validly cosigned the checkpoint, or a cosignature line by one of
    /// them does not verify (made over another checkpoint, or damaged).
    TlogMirrorNotCosigned,
    /// `not_included`: the inclusion proof does not put exactly these entry bytes at
    /// that index under the checkpoint's root.
    NotIncluded,
    /// `record_malformed`: the entry is not a canonical, valid Daylight record.
    RecordMalformed,
    /// `wrong_log`: a version-2 record bound to another log than the checkpoint's origin.
    WrongLog,
    /// `kind_not_authorising`: the record is not a `request` or an `emergency`.
    KindNotAuthorising,
    /// `untrusted_signer`: the record's signer is not a `daylight-agency` key of the policy.
    UntrustedSigner,
    /// `record_signature_invalid`: the record's signature does not verify under that key.
    RecordSignatureInvalid,
    /// `emergency_not_allowed`: an emergency, and the policy says `daylight-emergencies deny`.
    EmergencyNotAllowed,
    /// `emergency_deadline_passed`: an emergency whose ratify-by deadline has passed, and no
    /// ratification was presented.
    EmergencyDeadlinePassed,
    /// `ratification_unproven`: the ratification bundle fails a check the main bundle must
    /// pass (proof, checkpoint, log signature, quorum, freshness, inclusion, record, log binding).
    RatificationUnproven,
    /// `ratification_wrong_kind`: the ratification bundle's entry is not a `ratification`.
    RatificationWrongKind,
    /// `ratification_not_by_court`: the ratification is not validly signed by a `daylight-court`
    /// key of the policy.
    RatificationNotByCourt,
    /// `ratification_wrong_emergency`: the ratification decides on another entry (index or
    /// leaf hash), or is in another log.
    RatificationWrongEmergency,
    /// `ratification_denied`: the court denied the emergency (a presented ratification, or
    /// one in the mirror).
    RatificationDenied,
    /// `provider_not_configured`: the policy names no provider (`daylight-provider`).
    ProviderNotConfigured,
    /// `wrong_provider`: the record is addressed to another provider.
    WrongProvider,
    /// `not_yet_valid`: now is before the record's `valid_from`.
    NotYetValid,
    /// `expired`: now is at or after the record's `valid_until`.
    Expired,
    /// `mirror_missing`: the policy requires a mirror (`daylight-mirror required`) and none
    /// was given, or the mirror given could not be read.
    MirrorMissing,
    /// `mirror_invalid`: the mirror's checkpoint fails the policy (log key, witnesses,
    /// quorum), the size and root it verified are not the checkpoint's, its tiles do not
    /// give that root, an entry it holds is not the leaf at its index, or its registry
    /// does not replay.
    MirrorInvalid,
    /// `mirror_stale`: the mirror's newest witness cosignature is older than its maximum age.
    MirrorStale,
    /// `mirror_behind`: the mirror does not reach the entry's index yet (or the presented
    /// ratification's).
    MirrorBehind,
    /// `mirror_mismatch`: the mirror holds another entry at the entry's index (or at the
    /// presented ratification's), or is of another log.
    MirrorMismatch,
    /// `withdrawn`: a withdrawal entry in the mirror refers to this entry.
    Withdrawn,
    /// `agency_revoked`: the mirror's registry revokes the signer's key.
    AgencyRevoked,
    /// `agency_key_replaced`: the signer's key had been rotated out before this entry was logged.
    AgencyKeyReplaced,
    /// `agency_not_registered`: the mirror's registry never registered the signer's key as an
    /// agency before this entry.
    AgencyNotRegistered,
    /// `court_revoked`: the mirror's registry revokes the key that signed the presented
    /// ratification, before or after the ratification was logged.
    CourtRevoked,
    /// `court_key_replaced`: the key that signed the presented ratification had been rotated
    /// out before the ratification was logged.
    CourtKeyReplaced,
    /// `court_not_registered`: the mirror's registry never registered the key that signed the
    /// presented ratification as a court key before the ratification.
    CourtNotRegistered,
    /// `opening_malformed`: the opening file does not parse.
    OpeningMalformed,
    /// `opening_mismatch`: the opening is for another entry, or the target's opening
    /// (its salt) does not open the record's commitment.
    OpeningMismatch,
    /// `target_not_in_opening`: the target asked about is not in the opening.
    TargetNotInOpening,
    /// `jurisdiction_not_allowed` (content): a `daylight-jurisdictions allow` line does not
    /// cover the request's jurisdiction.
    JurisdictionNotAllowed,
    /// `jurisdiction_denied` (content): a `daylight-jurisdictions deny` line covers the
    /// request's jurisdiction.
    JurisdictionDenied,
    /// `issuer_not_allowed` (content): the issuing authority's type is not on a
    /// `daylight-issuers allow` line.
    IssuerNotAllowed,
    /// `category_not_allowed` (content): a data category asked for is not on a
    /// `daylight-categories allow` line.
    CategoryNotAllowed,
    /// `category_denied` (content): a data category asked for is on a
    /// `daylight-categories deny` line.
    CategoryDenied,
    /// `offence_not_allowed` (content): the offence is not on a `daylight-offences allow` line.
    OffenceNotAllowed,
    /// `too_many_targets` (content): more targets than `daylight-max-targets`.
    TooManyTargets,
    /// `validity_too_long` (content): a validity window longer than
    /// `daylight-max-validity-days`.
    ValidityTooLong,
}

impl ReasonCode {
    /// Every code, in the order the checks run.
    pub const ALL: [ReasonCode; 49] = [
        ReasonCode::BundleMalformed,
        ReasonCode::UnknownLog,
        ReasonCode::LogSignatureInvalid,
        ReasonCode::CosignatureInvalid,
        ReasonCode::QuorumNotMet,
        ReasonCode::LogKeyRetired,
        ReasonCode::CheckpointTooOld,
        ReasonCode::CheckpointInFuture,
        ReasonCode::TlogMirrorNotCosigned,
        ReasonCode::NotIncluded,
        ReasonCode::RecordMalformed,
        ReasonCode::WrongLog,
        ReasonCode::KindNotAuthorising,
        ReasonCode::UntrustedSigner,
        ReasonCode::RecordSignatureInvalid,
        ReasonCode::EmergencyNotAllowed,
        ReasonCode::EmergencyDeadlinePassed,
        ReasonCode::RatificationUnproven,
        ReasonCode::RatificationWrongKind,
        ReasonCode::RatificationNotByCourt,
        ReasonCode::RatificationWrongEmergency,
        ReasonCode::RatificationDenied,
        ReasonCode::ProviderNotConfigured,
        ReasonCode::WrongProvider,
        ReasonCode::NotYetValid,
        ReasonCode::Expired,
        ReasonCode::MirrorMissing,
        ReasonCode::MirrorInvalid,
        ReasonCode::MirrorStale,
        ReasonCode::MirrorBehind,
        ReasonCode::MirrorMismatch,
        ReasonCode::Withdrawn,
        ReasonCode::AgencyRevoked,
        ReasonCode::AgencyKeyReplaced,
        ReasonCode::AgencyNotRegistered,
        ReasonCode::CourtRevoked,
        ReasonCode::CourtKeyReplaced,
        ReasonCode::CourtNotRegistered,
        ReasonCode::OpeningMalformed,
        ReasonCode::OpeningMismatch,
        ReasonCode::TargetNotInOpening,
        ReasonCode::JurisdictionNotAllowed,
        ReasonCode::JurisdictionDenied,
        ReasonCode::IssuerNotAllowed,
        ReasonCode::CategoryNotAllowed,
        ReasonCode::CategoryDenied,
        ReasonCode::OffenceNotAllowed,
        ReasonCode::TooManyTargets,
        ReasonCode::ValidityTooLong,
    ];

    /// The stable code.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::BundleMalformed => "bundle_malformed",
            ReasonCode::UnknownLog => "unknown_log",
            ReasonCode::LogSignatureInvalid => "log_signature_invalid",
            ReasonCode::CosignatureInvalid => "cosignature_invalid",
            ReasonCode::QuorumNotMet => "quorum_not_met",
            ReasonCode::LogKeyRetired => "log_key_retired",
            ReasonCode::CheckpointTooOld => "checkpoint_too_old",
            ReasonCode::CheckpointInFuture => "checkpoint_in_future",
            ReasonCode::TlogMirrorNotCosigned => "tlog_mirror_not_cosigned",
            ReasonCode::NotIncluded => "not_included",
            ReasonCode::RecordMalformed => "record_malformed",
            ReasonCode::WrongLog => "wrong_log",
            ReasonCode::KindNotAuthorising => "kind_not_authorising",
            ReasonCode::UntrustedSigner => "untrusted_signer",
            ReasonCode::RecordSignatureInvalid => "record_signature_invalid",
            ReasonCode::EmergencyNotAllowed => "emergency_not_allowed",
            ReasonCode::EmergencyDeadlinePassed => "emergency_deadline_passed",
            ReasonCode::RatificationUnproven => "ratification_unproven",
            ReasonCode::RatificationWrongKind => "ratification_wrong_kind",
            ReasonCode::RatificationNotByCourt => "ratification_not_by_court",
            ReasonCode::RatificationWrongEmergency => "ratification_wrong_emergency",
            ReasonCode::RatificationDenied => "ratification_denied",
            ReasonCode::ProviderNotConfigured => "provider_not_configured",
            ReasonCode::WrongProvider => "wrong_provider",
            ReasonCode::NotYetValid => "not_yet_valid",
            ReasonCode::Expired => "expired",
            ReasonCode::MirrorMissing => "mirror_missing",
            ReasonCode::MirrorInvalid => "mirror_invalid",
            ReasonCode::MirrorStale => "mirror_stale",
            ReasonCode::MirrorBehind => "mirror_behind",
            ReasonCode::MirrorMismatch => "mirror_mismatch",
            ReasonCode::Withdrawn => "withdrawn",
            ReasonCode::AgencyRevoked => "agency_revoked",
            ReasonCode::AgencyKeyReplaced => "agency_key_replaced",
            ReasonCode::AgencyNotRegistered => "agency_not_registered",
            ReasonCode::CourtRevoked => "court_revoked",
            ReasonCode::CourtKeyReplaced => "court_key_replaced",
            ReasonCode::CourtNotRegistered => "court_not_registered",
            ReasonCode::OpeningMalformed => "opening_malformed",
            ReasonCode::OpeningMismatch => "opening_mismatch",
            ReasonCode::TargetNotInOpening => "target_not_in_opening",
            // The content codes are the schemas crate's refusal reasons'
            // (a test holds them equal), so a DENY line and the refusal
            // record it leads to say the same word.
            ReasonCode::JurisdictionNotAllowed => "jurisdiction_not_allowed",
            ReasonCode::JurisdictionDenied => "jurisdiction_denied",
            ReasonCode::IssuerNotAllowed => "issuer_not_allowed",
            ReasonCode::CategoryNotAllowed => "category_not_allowed",
            ReasonCode::CategoryDenied => "category_denied",
            ReasonCode::OffenceNotAllowed => "offence_not_allowed",
            ReasonCode::TooManyTargets => "too_many_targets",
            ReasonCode::ValidityTooLong => "validity_too_long",
        }
    }

    /// The code of a refusal on content (a provider's standards).
    pub fn from_refusal(reason: RefusalReason) -> ReasonCode {
        match reason {
            RefusalReason::JurisdictionNotAllowed => ReasonCode::JurisdictionNotAllowed,
            RefusalReason::JurisdictionDenied => ReasonCode::JurisdictionDenied,
            RefusalReason::IssuerNotAllowed => ReasonCode::IssuerNotAllowed,
            RefusalReason::CategoryNotAllowed => ReasonCode::CategoryNotAllowed,
            RefusalReason::CategoryDenied => ReasonCode::CategoryDenied,
            RefusalReason::OffenceNotAllowed => ReasonCode::OffenceNotAllowed,
            RefusalReason::TooManyTargets => ReasonCode::TooManyTargets,
            RefusalReason::ValidityTooLong => ReasonCode::ValidityTooLong,
        }
    }

    /// For a refusal on content, the reason a `refusal` record carries;
    /// `None` for every other code (a broken bundle is not a refusal of a
    /// request, and is never logged as one).
    pub fn refusal_reason(self) -> Option<RefusalReason> {
        Some(match self {
            ReasonCode::JurisdictionNotAllowed => RefusalReason::JurisdictionNotAllowed,
            ReasonCode::JurisdictionDenied => RefusalReason::JurisdictionDenied,
            ReasonCode::IssuerNotAllowed => RefusalReason::IssuerNotAllowed,
            ReasonCode::CategoryNotAllowed => RefusalReason::CategoryNotAllowed,
            ReasonCode::CategoryDenied => RefusalReason::CategoryDenied,
            ReasonCode::OffenceNotAllowed => RefusalReason::OffenceNotAllowed,
            ReasonCode::TooManyTargets => RefusalReason::TooManyTargets,
            ReasonCode::ValidityTooLong => RefusalReason::ValidityTooLong,
            _ => return None,
        })
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal: the check that failed and what failed, in words.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Denied {
    /// Which check failed.
    pub reason: ReasonCode,
    /// What failed, for a person (one line; may change between versions).
    pub detail: String,
    /// A refusal on content: what a `refusal` record names. `None` for
    /// every other refusal. Boxed: a refusal travels through every check's
    /// `Result`, and this is rare.
    pub refused: Option<Box<Refused>>,
}

impl Denied {
    pub(crate) fn new(reason: ReasonCode, detail: impl Into<String>) -> Denied {
        // One line, always: details quote outside data.
        let detail: String = detail.into();
        let detail = detail.replace(['\n', '\r'], " ");
        Denied {
            reason,
            detail,
            refused: None,
        }
    }
}

/// A request or emergency refused on its content, after every other check
/// passed: an authentic, logged, valid request addressed to this provider
/// that the provider's standards (its policy's content lines) refuse. What
/// the provider's `refusal` record names ([`crate::refusal_receipt`]):
/// nothing secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The entry's index in the log.
    pub index: LeafIndex,
    /// The entry's leaf hash.
    pub leaf_hash: Hash,
    /// The stable reason.
    pub reason: RefusalReason,
    /// The agency that signed it, as `name+keyid`.
    pub agency: String,
    /// The provider it is addressed to (this provider).
    pub provider: String,
    /// The log that holds it (the checkpoint's origin).
    pub origin: String,
}

/// What the gate allowed: the entry, who asked, for whom, until when, and
/// the checkpoint that proves it is public.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allowed {
    /// The entry's index in the log.
    pub index: LeafIndex,
    /// The entry's leaf hash (what a release receipt refers to).
    pub leaf_hash: Hash,
    /// `request` or `emergency`.
    pub kind: Kind,
    /// The agency that signed it, as `name+keyid`.
    pub agency: String,
    /// The provider it is addressed to (this provider).
    pub provider: String,
    /// Access is authorised from this time.
    pub valid_from: DateTime<Utc>,
    /// Access is authorised until this time (exclusive).
    pub valid_until: DateTime<Utc>,
    /// An emergency's ratify-by deadline.
    pub ratify_by: Option<DateTime<Utc>>,
    /// How many targets the record commits to.
    pub target_count: u32,
    /// With an opening and a target: the position of the commitment the target opens.
    pub target_position: Option<usize>,
    /// The checkpoint's origin.
    pub origin: String,
    /// The checkpoint's tree size.
    pub checkpoint_size: TreeSize,
    /// How many policy witnesses validly cosigned it.
    pub cosignatures: usize,
    /// The newest of their timestamps.
    pub newest_cosignature: DateTime<Utc>,
    /// How many of the policy's C2SP tlog-mirrors (`daylight-tlog-mirror`)
    /// validly cosigned it (0 when the policy lists none).
    pub tlog_mirror_cosignatures: usize,
    /// An emergency past its deadline: the index of the court's ratification
    /// that allowed it (a ratification presented otherwise is checked too).
    pub ratification: Option<LeafIndex>,
    /// With a mirror: the size of its verified checkpoint, up to which no
    /// withdrawal, revocation or denial stands against the entry.
    pub mirror_size: Option<TreeSize>,
}

impl fmt::Display for Allowed {
    /// One line, without the `ALLOW ` prefix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = |t: &DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        write!(f, "{} {}", self.kind, self.index)?;
        match self.target_position {
            Some(p) => write!(f, " target #{p} of {}", self.target_count)?,
            None => write!(f, " ({} targets, none checked)", self.target_count)?,
        }
        write!(
            f,
            " for {} by {} until {}",
            self.provider,
            self.agency,
            time(&self.valid_until)
        )?;
        if let Some(r) = &self.ratify_by {
            write!(f, " (ratify by {})", time(r))?;
        }
        write!(
            f,
            "; checkpoint {} size {}, {} cosignatures, newest {}",
            self.origin,
            self.checkpoint_size,
            self.cosignatures,
            time(&self.newest_cosignature)
        )?;
        if self.tlog_mirror_cosignatures > 0 {
            write!(
                f,
                ", {} tlog-mirror cosignatures",
                self.tlog_mirror_cosignatures
            )?;
        }
        if let Some(r) = self.ratification {
            write!(f, "; ratified by entry {r}")?;
        }
        if let Some(m) = self.mirror_size {
            write!(
                f,
                "; mirror size {m}: not withdrawn, signer in good standing"
            )?;
            if self.ratification.is_some() {
                f.write_str(", ratification held, court in good standing")?;
            }
        }
        Ok(())
    }
}

/// The gate's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
// One decision per release request, returned by value and matched on by
// callers: boxing the allowed details would change every caller's pattern
// for a few hundred bytes of stack.
#[allow(clippy::large_enum_variant)]
pub enum Decision {
    /// Every check passed.
    Allow(Allowed),
    /// A check failed; nothing may be released.
    Deny {
        /// Which check failed.
        reason: ReasonCode,
        /// What failed, in words.
        detail: String,
        /// A refusal on content: the entry and reason a `refusal` record
        /// names ([`crate::refusal_receipt`]); `None` for every other code.
        refused: Option<Box<Refused>>,
    },
}

impl Decision {
    /// As a `Result`, for `?`.
    pub fn into_result(self) -> Result<Allowed, Denied> {
        match self {
            Decision::Allow(a) => Ok(a),
            Decision::Deny {
                reason,
                detail,
                refused,
            } => Err(Denied {
                reason,
                detail,
                refused,
            }),
        }
    }

    /// Whether this is an `Allow`.
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }

    /// The refusal's code, if denied.
    pub fn reason(&self) -> Option<ReasonCode> {
        match self {
            Decision::Allow(_) => None,
            Decision::Deny { reason, .. } => Some(*reason),
        }
    }

    /// A refusal on content: what the provider's `refusal` record names.
    /// `None` for an allow and for every other refusal.
    pub fn refused(&self) -> Option<&Refused> {
        match self {
            Decision::Deny { refused, .. } => refused.as_deref(),
            Decision::Allow(_) => None,
        }
    }
}

impl From<Result<Allowed, Denied>> for Decision {
    fn from(r: Result<Allowed, Denied>) -> Decision {
        match r {
            Ok(a) => Decision::Allow(a),
            Err(Denied {
                reason,
                detail,
                refused,
            }) => Decision::Deny {
                reason,
                detail,
                refused,
            },
        }
    }
}

impl fmt::Display for Decision {
    /// `ALLOW ...` or `DENY <reason-code>: <detail>`, one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Allow(a) => write!(f, "ALLOW {a}"),
            Decision::Deny { reason, detail, .. } => write!(f, "DENY {reason}: {detail}"),
        }
    }
}

/// Reads an opening file (JSON, as `daylight agency submit` writes it);
/// refuses with [`ReasonCode::OpeningMalformed`].
pub fn parse_opening(bytes: &[u8]) -> Result<Opening, Denied> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| Denied::new(ReasonCode::OpeningMalformed, "the opening is not UTF-8"))?;
    Opening::from_json(text).map_err(|e| {
        Denied::new(
            ReasonCode::OpeningMalformed,
            format!("{} ({})", e, e.code()),
        )
    })
}

/// The release decision, offline: may the provider release access for this
/// entry (and, with an opening, for this target) now?
///
/// - `entry`: the exact log entry bytes (the signed record).
/// - `proof`: the C2SP tlog-proof (index, inclusion proof, cosigned checkpoint).
/// - `opening`: the agency's private opening and the target identifier asked
///   about; without it the decision is about the request as a whole.
/// - `now`: the current time (the library reads no clock).
///
/// Every check fails closed with its own [`ReasonCode`]; nothing here panics
/// on any input, does I/O, or keeps state. The same as [`decide_later`]
/// with nothing later: no ratification, no mirror.
pub fn decide(
    policy: &Policy,
    entry: &[u8],
    proof: &[u8],
    opening: Option<(&Opening, &str)>,
    now: DateTime<Utc>,
) -> Decision {
    decide_later(policy, entry, proof, opening, &Later::default(), now)
}

/// [`decide`], also weighing what the log holds after the entry: a court's
/// ratification of an emergency (a second bundle) and the provider's own
/// verified mirror of the log (withdrawals, the registry, denials). The
/// caller reads them; the decision stays pure.
pub fn decide_later(
    policy: &Policy,
    entry: &[u8],
    proof: &[u8],
    opening: Option<(&Opening, &str)>,
    later: &Later<'_>,
    now: DateTime<Utc>,
) -> Decision {
    check(policy, entry, proof, opening, later, now).into()
}

pub(crate) fn deny<T>(reason: ReasonCode, detail: impl Into<String>) -> Result<T, Denied> {
    Err(Denied::new(reason, detail))
}

pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn unix_time(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| Utc.timestamp_opt(s, 0).single())
        .map_or_else(|| format!("{secs} (Unix time)"), time)
}

/// A checkpoint the policy believes: signed by a key of its log, cosigned
/// by its quorum, fresh.
pub(crate) struct Witnessed {
    /// The signed note that holds it (for the cosignatures weighed after).
    pub note: Note,
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// The valid cosignatures by policy witnesses.
    pub cosignatures: usize,
    /// The newest of their timestamps.
    pub newest: DateTime<Utc>,
}

/// Verifies a signed checkpoint note under the policy, in the order of the
/// reason codes: parse, known log, log signature (any of the log's keys;
/// a rotated-out key alone only if the quorum cosigned before its end),
/// cosignatures, quorum, freshness against `max_age`.
pub(crate) fn verify_checkpoint(
    policy: &Policy,
    bytes: &[u8],
    max_age: u64,
    now: DateTime<Utc>,
) -> Result<Witnessed, Denied> {
    use ReasonCode as R;
    let witnesses = policy.witness_policy();
    let note =
        Note::parse(bytes).or_else(|e| deny(R::BundleMalformed, format!("checkpoint: {e}")))?;
    let checkpoint =
        Checkpoint::parse_text(note.text()).or_else(|e| deny(R::BundleMalformed, e.to_string()))?;
    let origin = &checkpoint.origin;
    let keys = policy.log_keys(origin);
    if keys.is_empty() {
        return deny(
            R::UnknownLog,
            format!("checkpoint origin {origin:?} is not a log of the policy"),
        );
    }
    if witnesses.quorum.is_none() {
        // Policy::parse refuses this; kept so the gate fails closed regardless.
        return deny(R::QuorumNotMet, "the policy requires no witnesses");
    }

    // The log's signature: during a key rotation the log signs with both
    // keys, so any one of the policy's keys for this origin will do; a
    // signature line by one of them that does not verify refuses the note.
    let refs: Vec<&VerifierKey> = keys.iter().map(|k| k.key).collect();
    let signed = note.verify(&refs).or_else(|e| {
        deny(
            R::LogSignatureInvalid,
            format!("checkpoint of {origin}: {e}"),
        )
    })?;

    let cosignatures = verify_cosignatures(&note, &witnesses.witness_keys())
        .or_else(|e| deny(R::CosignatureInvalid, format!("witness cosignature: {e}")))?;
    if !witnesses.quorum_met(&cosignatures) {
        return deny(
            R::QuorumNotMet,
            format!(
                "witness quorum not met: {} valid cosignatures from known witnesses",
                cosignatures.len()
            ),
        );
    }

    // Signed only by rotated-out keys: the witnesses must have seen it
    // before the latest of their ends. After the end the old key may be
    // anyone's; a witness cosigning now dates its cosignature now.
    let current = signed.iter().any(|v| keys[v.key].until.is_none());
    if !current {
        let end = signed.iter().filter_map(|v| keys[v.key].until).max();
        let Some(end) = end else {
            return deny(R::LogSignatureInvalid, "no log key signed the checkpoint");
        };
        let end_secs = end.timestamp();
        let before: Vec<_> = cosignatures
            .iter()
            .filter(|c| i64::try_from(c.timestamp).is_ok_and(|t| t < end_secs))
            .cloned()
            .collect();
        if !witnesses.quorum_met(&before) {
            return deny(
                R::LogKeyRetired,
                format!(
                    "checkpoint of {origin} is signed only by a log key rotated out at {}, \
                     and {} of its cosignatures predate that (the quorum is not met)",
                    time(end),
                    before.len()
                ),
            );
        }
    }

    // Freshness: the newest cosignature by a policy witness.
    let Some(newest) = cosignatures.iter().map(|c| c.timestamp).max() else {
        return deny(R::QuorumNotMet, "no cosignature by a policy witness");
    };
    let now_secs = i128::from(now.timestamp());
    let age = now_secs - i128::from(newest);
    if age < -i128::from(MAX_CLOCK_SKEW) {
        return deny(
            R::CheckpointInFuture,
            format!(
                "newest cosignature is dated {}, {} s after now ({})",
                unix_time(newest),
                -age,
                time(now)
            ),
        );
    }
    if age > i128::from(max_age) {
        return deny(
            R::CheckpointTooOld,
            format!(
                "newest cosignature is from {}, {age} s ago; at most {max_age} s allowed",
                unix_time(newest),
            ),
        );
    }
    let newest = i64::try_from(newest)
        .ok()
        .and_then(|s| Utc.timestamp_opt(s, 0).single())
        .map_or_else(
            || deny(R::CheckpointInFuture, "cosignature time out of range"),
            Ok,
        )?;
    Ok(Witnessed {
        note,
        checkpoint,
        cosignatures: cosignatures.len(),
        newest,
    })
}

/// A bundle whose entry is proven in a checkpoint the policy believes.
pub(crate) struct Proven {
    /// The entry's index.
    pub index: LeafIndex,
    /// The checkpoint and its witnesses.
    pub witnessed: Witnessed,
    /// How many of the policy's tlog-mirrors cosigned the checkpoint.
    pub tlog_mirrors: usize,
    /// The record, parsed and bound to the checkpoint's log (not yet
    /// checked for kind or signer).
    pub record: SignedRecord,
}

/// The checks every bundle passes, the main one and a ratification alike:
/// the tlog-proof parses, its checkpoint is believed ([`verify_checkpoint`])
/// and cosigned by the policy's tlog-mirrors ([`verify_tlog_mirrors`]), the
/// entry is included at its index, and it is a valid record bound to that
/// log.
pub(crate) fn verify_bundle(
    policy: &Policy,
    entry: &[u8],
    proof: &[u8],
    now: DateTime<Utc>,
) -> Result<Proven, Denied> {
    use ReasonCode as R;
    let bundle = TlogProof::parse(proof).or_else(|e| deny(R::BundleMalformed, e.to_string()))?;
    let witnessed = verify_checkpoint(policy, &bundle.checkpoint, policy.max_age(), now)?;
    let tlog_mirrors = verify_tlog_mirrors(policy, &witnessed)?;
    let cp = &witnessed.checkpoint;
    verify_inclusion(
        leaf_hash(entry),
        bundle.index,
        cp.size,
        &bundle.proof,
        cp.root,
    )
    .or_else(|e| {
        deny(
            R::NotIncluded,
            format!("entry at index {}: inclusion proof: {e}", bundle.index),
        )
    })?;
    let record = SignedRecord::parse(entry)
        .or_else(|e| deny(R::RecordMalformed, format!("{e} ({})", e.code())))?;
    // A version-2 record names its log under its signature: one signed for
    // another log is not authorised here, whatever this log did with it.
    record
        .check_held_by(&cp.origin)
        .or_else(|e| deny(R::WrongLog, format!("{e} ({})", e.code())))?;
    Ok(Proven {
        index: bundle.index,
        witnessed,
        tlog_mirrors,
        record,
    })
}

/// The C2SP tlog-mirrors of the policy (`daylight-tlog-mirror`) on a
/// believed checkpoint: at least [`Policy::tlog_mirror_quorum`] distinct
/// mirrors must have validly cosigned it, each cosignature saying that the
/// mirror durably stores, and serves, every entry up to the checkpoint, so
/// the entry is readable somewhere the log operator does not control. The
/// number of mirrors that did (0 when the policy lists none).
///
/// Verified exactly as witness cosignatures are (one function): lines by
/// other keys never count, a line by a listed mirror that does not verify
/// refuses (no honest mirror writes one; a cosignature cut from another
/// checkpoint is one), a mirror that cosigned twice counts once. A mirror's
/// key is never a witness's ([`Policy::parse`] refuses that), so no line
/// counts for both quorums.
///
/// The mirrors' timestamps are not weighed: what a mirror's cosignature
/// asserts (it holds entries `[0, size)`) does not go stale, whereas
/// freshness (that the log was at this size recently, not showing an old
/// view) is the witnesses' to vouch for and is checked on them. A mirror
/// cosigns a checkpoint once it has its entries, and need not cosign it
/// again while the log does not grow, so holding it to `daylight-max-age`
/// would refuse every entry of a quiet log.
fn verify_tlog_mirrors(policy: &Policy, witnessed: &Witnessed) -> Result<usize, Denied> {
    use ReasonCode as R;
    let mirrors = policy.tlog_mirrors();
    if mirrors.is_empty() {
        return Ok(0);
    }
    let cp = &witnessed.checkpoint;
    let keys: Vec<&VerifierKey> = mirrors.iter().map(|m| &m.key).collect();
    let cosigned = verify_cosignatures(&witnessed.note, &keys).or_else(|e| {
        deny(
            R::TlogMirrorNotCosigned,
            format!(
                "tlog-mirror cosignature on the checkpoint of {} size {}: {e}",
                cp.origin, cp.size
            ),
        )
    })?;
    let by: BTreeSet<usize> = cosigned.iter().map(|c| c.witness).collect();
    let quorum = policy.tlog_mirror_quorum();
    if by.len() < quorum {
        let missing: Vec<String> = keys
            .iter()
            .enumerate()
            .filter(|(i, _)| !by.contains(i))
            .map(|(_, k)| k.name().to_string())
            .collect();
        return deny(
            R::TlogMirrorNotCosigned,
            format!(
                "the checkpoint of {} size {} is cosigned by {} of the policy's {} tlog-mirrors, \
                 {quorum} required (not by {}): no mirror the policy names vouches that it \
                 stores the entries",
                cp.origin,
                cp.size,
                by.len(),
                keys.len(),
                missing.join(", ")
            ),
        );
    }
    Ok(by.len())
}

/// Any entry proven public: what [`verify_entry`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Included {
    /// The entry's index.
    pub index: LeafIndex,
    /// The log that holds it (the checkpoint's origin).
    pub origin: String,
    /// The size of the checkpoint that includes it.
    pub checkpoint_size: TreeSize,
    /// How many policy witnesses validly cosigned that checkpoint.
    pub cosignatures: usize,
    /// How many of the policy's tlog-mirrors validly cosigned it.
    pub tlog_mirror_cosignatures: usize,
    /// The record, parsed (canonical, valid, bound to that log).
    pub record: SignedRecord,
}

/// Verifies that `entry` (any record: a custodian's receipt, a provider's
/// release, ...) is public under `policy`, offline: `proof` is a C2SP
/// tlog-proof whose checkpoint the policy believes (log key, witness
/// quorum, freshness, the policy's tlog-mirrors, exactly as for a request),
/// which includes these exact bytes at its index, and the bytes are a valid
/// record bound to that log.
/// Nothing is checked about the record's kind, signer or content: that is
/// the caller's. The same checks, in the same order and with the same
/// reason codes, as the first steps of [`decide`].
pub fn verify_entry(
    policy: &Policy,
    entry: &[u8],
    proof: &[u8],
    now: DateTime<Utc>,
) -> Result<Included, Denied> {
    let Proven {
        index,
        witnessed,
        tlog_mirrors,
        record,
    } = verify_bundle(policy, entry, proof, now)?;
    Ok(Included {
        index,
        origin: witnessed.checkpoint.origin,
        checkpoint_size: witnessed.checkpoint.size,
        cosignatures: witnessed.cosignatures,
        tlog_mirror_cosignatures: tlog_mirrors,
        record,
    })
}

fn check(
    policy: &Policy,
    entry: &[u8],
    proof: &[u8],
    opening: Option<(&Opening, &str)>,
    later: &Later<'_>,
    now: DateTime<Utc>,
) -> Result<Allowed, Denied> {
    use ReasonCode as R;

    // 1-8. The bundle: checkpoint, log key, witnesses, freshness, inclusion,
    // a valid record bound to this log.
    let Proven {
        index,
        witnessed,
        tlog_mirrors,
        record,
    } = verify_bundle(policy, entry, proof, now)?;
    let origin = witnessed.checkpoint.origin.clone();

    // 9. A kind that authorises access.
    let kind = record.kind();
    if !matches!(kind, Kind::Request | Kind::Emergency) {
        return deny(
            R::KindNotAuthorising,
            format!("a {kind} entry does not authorise access; only request and emergency do"),
        );
    }

    // 10. Signed by an agency the policy trusts.
    let signer = record.signer();
    let Some(agency) = policy.agencies().iter().find(|k| signer.is(k)) else {
        let court = policy.courts().iter().any(|k| signer.is(k));
        return deny(
            R::UntrustedSigner,
            format!(
                "signed by {signer}, {}",
                if court {
                    "a court key; a request must be signed by an agency"
                } else {
                    "which is not a daylight-agency key of the policy"
                }
            ),
        );
    };
    record.verify_signature(agency).or_else(|e| {
        deny(
            R::RecordSignatureInvalid,
            format!("signature by {signer}: {e}"),
        )
    })?;

    // 11. Emergencies: allowed by the policy, and before their deadline
    // unless the court's ratification is presented. A presented
    // ratification is checked whatever the kind: what is handed over must
    // hold.
    let ratify_by = record.ratify_by();
    let ratification = match later.ratification {
        None => None,
        Some((r_entry, r_proof)) => Some(crate::later::check_ratification(
            policy, &record, index, &origin, r_entry, r_proof, now,
        )?),
    };
    if kind == Kind::Emergency {
        if !policy.emergencies_allowed() {
            return deny(
                R::EmergencyNotAllowed,
                "an emergency entry, and the policy says daylight-emergencies deny",
            );
        }
        let Some(deadline) = ratify_by else {
            return deny(R::RecordMalformed, "an emergency without ratify_by");
        };
        if now >= deadline && ratification.is_none() {
            return deny(
                R::EmergencyDeadlinePassed,
                format!(
                    "the emergency had to be ratified by {}; now is {}, and no ratification \
                     was presented",
                    time(deadline),
                    time(now)
                ),
            );
        }
    }

    // 12. Addressed to this provider.
    let Some(me) = policy.provider() else {
        return deny(
            R::ProviderNotConfigured,
            "the policy names no provider (daylight-provider)",
        );
    };
    let provider = record.provider().unwrap_or_default();
    if provider != me {
        return deny(
            R::WrongProvider,
            format!("the request is addressed to {provider:?}, not to {me:?}"),
        );
    }

    // 13. Within the validity window [valid_from, valid_until).
    let (Some(valid_from), Some(valid_until)) = (record.valid_from(), record.valid_until()) else {
        return deny(R::RecordMalformed, "no validity window");
    };
    if now < valid_from {
        return deny(
            R::NotYetValid,
            format!("valid from {}; now is {}", time(valid_from), time(now)),
        );
    }
    if now >= valid_until {
        return deny(
            R::Expired,
            format!("valid until {}; now is {}", time(valid_until), time(now)),
        );
    }

    // 14. What came later, from the provider's own mirror of the log: the
    // entry, and the presented ratification, as the provider's copy holds them.
    let mirror_size = crate::later::check_mirror(
        policy,
        &later.mirror,
        &record,
        index,
        ratification.as_ref(),
        &origin,
        now,
    )?;

    // 15. The target opens one of the commitments.
    let target_position = match opening {
        None => None,
        Some((opening, target)) => Some(opening.check(&record, target).or_else(|e| match e {
            SchemaError::TargetNotInOpening => deny(
                R::TargetNotInOpening,
                "the opening has no such target identifier",
            ),
            e => deny(R::OpeningMismatch, e.to_string()),
        })?),
    };

    // 16. What the request asks: the policy's content lines that apply to
    // its agency (by key name), in order. Last, so that only an authentic,
    // logged, valid request addressed to this provider is refused on its
    // content: that refusal, and only that, may be logged as one.
    if let Err(refusal) = policy.content().check(&record, signer.key_name().as_str()) {
        let mut denied = Denied::new(ReasonCode::from_refusal(refusal.reason), refusal.detail);
        denied.refused = Some(Box::new(Refused {
            index,
            leaf_hash: record.leaf_hash(),
            reason: refusal.reason,
            agency: signer.to_string(),
            provider: provider.to_owned(),
            origin,
        }));
        return Err(denied);
    }

    Ok(Allowed {
        index,
        leaf_hash: record.leaf_hash(),
        kind,
        agency: signer.to_string(),
        provider: provider.to_owned(),
        valid_from,
        valid_until,
        ratify_by,
        target_count: record.target_count().unwrap_or(0),
        target_position,
        origin,
        checkpoint_size: witnessed.checkpoint.size,
        cosignatures: witnessed.cosignatures,
        newest_cosignature: witnessed.newest,
        tlog_mirror_cosignatures: tlog_mirrors,
        ratification: ratification.map(|r| r.index),
        mirror_size,
    })
}

#[cfg(test)]
mod tests {
    //! Records bound to their log, and log keys rotated out (the checks of
    //! [`verify_checkpoint`] and [`verify_bundle`]).
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::testkit::{World, ORIGIN, PROVIDER, TARGET};
    use chrono::Duration;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 8, 10, 12, 0, 0).unwrap()
    }

    fn secs(t: DateTime<Utc>) -> u64 {
        t.timestamp() as u64
    }

    #[track_caller]
    fn denied(d: Decision, reason: ReasonCode) {
        assert_eq!(d.reason(), Some(reason), "{d}");
    }

    /// Logs `record` after some filler; a proof cosigned by witnesses 0 and 1 at `t`.
    fn logged(w: &mut World, entry: &[u8], t: u64) -> (Vec<u8>, Vec<u8>) {
        w.append_filler(2);
        let index = w.append(entry);
        (entry.to_vec(), w.proof(index, &[(0, t), (1, t)]))
    }

    #[test]
    fn a_record_for_another_log_is_refused_and_version_1_is_accepted() {
        let mut w = World::new();
        let policy = w.policy();
        let created = now() - Duration::hours(1);
        let draft = World::request_draft(PROVIDER, created);
        let agency = w.agency.clone();
        let t = secs(now()) - 60;

        // Sealed for another log, logged (by a careless or hostile log) in this one.
        let (other, opening) = w
            .seal_for(&draft, &agency, "other-log.example", created)
            .unwrap();
        let (entry, proof) = logged(&mut w, other.as_bytes(), t);
        let d = decide(&policy, &entry, &proof, Some((&opening, TARGET)), now());
        assert!(d.to_string().contains("other-log.example"), "{d}");
        denied(d, ReasonCode::WrongLog);

        // The same record for this log is allowed.
        let (mine, opening) = w.seal(&draft, &agency, created).unwrap();
        assert_eq!(mine.log(), Some(ORIGIN));
        let (entry, proof) = logged(&mut w, mine.as_bytes(), t);
        let d = decide(&policy, &entry, &proof, Some((&opening, TARGET)), now());
        assert!(d.is_allow(), "{d}");

        // Version 1 (bound to no log, from before binding) is read as the log holds it.
        let v1 = mine.record().sign_version_1(&agency).unwrap();
        assert_eq!(v1.version(), 1);
        let (entry, proof) = logged(&mut w, v1.as_bytes(), t);
        // (The opening names the version-2 entry, so the decision is on the request.)
        let d = decide(&policy, &entry, &proof, None, now());
        assert!(d.is_allow(), "{d}");
    }

    /// The world's policy with both log keys, the old one retired at `until`.
    fn rotated_policy(w: &World, until: Option<DateTime<Utc>>, old: bool, new: bool) -> Policy {
        let base = w.policy_text(2, true);
        let mut text = String::new();
        for line in base.lines() {
            if line.starts_with("log ") {
                if old {
                    text.push_str(&format!("log {}\n", w.log.verifier()));
                }
                if new {
                    text.push_str(&format!("log {}\n", w.log2.verifier()));
                }
            } else {
                text.push_str(line);
                text.push('\n');
            }
        }
        if let Some(u) = until {
            text.push_str(&format!(
                "daylight-log-key-until {} {}\n",
                w.log.verifier(),
                u.to_rfc3339()
            ));
        }
        let p = Policy::parse(&text).unwrap();
        assert_eq!(Policy::parse(&p.to_text()).unwrap(), p);
        p
    }

    fn request(w: &mut World, cosigned: DateTime<Utc>) -> crate::testkit::Bundle {
        let created = now() - Duration::hours(2);
        w.bundle(
            &World::request_draft(PROVIDER, created),
            created,
            secs(cosigned),
        )
        .unwrap()
    }

    fn decide_bundle(p: &Policy, b: &crate::testkit::Bundle) -> Decision {
        decide(p, &b.entry, &b.proof, Some((&b.opening, TARGET)), now())
    }

    #[test]
    fn a_rotated_out_log_key_is_believed_only_for_checkpoints_witnessed_before_its_end() {
        // Signed by the old key alone, cosigned ten minutes ago.
        let mut w = World::new();
        let b = request(&mut w, now() - Duration::minutes(10));

        // The old key's end is after the cosignatures: allowed.
        let p = rotated_policy(&w, Some(now() - Duration::minutes(5)), true, true);
        let d = decide_bundle(&p, &b);
        assert!(d.is_allow(), "{d}");
        // The end is before them: a stolen old key could have signed it.
        let p = rotated_policy(&w, Some(now() - Duration::minutes(15)), true, true);
        let d = decide_bundle(&p, &b);
        assert!(d.to_string().contains("rotated out"), "{d}");
        denied(d, ReasonCode::LogKeyRetired);
        // Exactly at the end: not before it.
        let p = rotated_policy(&w, Some(now() - Duration::minutes(10)), true, true);
        denied(decide_bundle(&p, &b), ReasonCode::LogKeyRetired);
        // One witness before the end, one after: the quorum (2) is not met before it.
        let proof = w.proof(b.index, &[(0, secs(now()) - 900), (1, secs(now()) - 60)]);
        let mixed = crate::testkit::Bundle { proof, ..b.clone() };
        let p = rotated_policy(&w, Some(now() - Duration::minutes(5)), true, true);
        denied(decide_bundle(&p, &mixed), ReasonCode::LogKeyRetired);
        // A policy that knows only the new key refuses the old key's checkpoint.
        let p = rotated_policy(&w, None, false, true);
        denied(decide_bundle(&p, &b), ReasonCode::LogSignatureInvalid);
    }

    #[test]
    fn a_checkpoint_signed_by_both_keys_opens_under_either() {
        let mut w = World::new();
        w.checkpoint_keys = vec![w.log.clone(), w.log2.clone()];
        let b = request(&mut w, now() - Duration::minutes(1));
        for (old, new) in [(true, false), (false, true), (true, true)] {
            let p = rotated_policy(&w, None, old, new);
            let d = decide_bundle(&p, &b);
            assert!(d.is_allow(), "old {old} new {new}: {d}");
        }
        // The old key retired long ago: the new key's signature carries it.
        let p = rotated_policy(&w, Some(now() - Duration::days(30)), true, true);
        assert!(decide_bundle(&p, &b).is_allow());
        // ... but a policy that knows only the retired key does not.
        let p = rotated_policy(&w, Some(now() - Duration::days(30)), true, false);
        denied(decide_bundle(&p, &b), ReasonCode::LogKeyRetired);

        // Tampered: the new key's signature line broken. A policy that knows
        // the new key refuses the note; one that knows only the old key
        // ignores a line by a key it does not know (C2SP signed-note rules).
        let text = String::from_utf8(b.proof.clone()).unwrap();
        let name = format!("\u{2014} {ORIGIN} ");
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(&name)).collect();
        assert_eq!(lines.len(), 2);
        let second = lines[1];
        let mut broken: Vec<char> = second.chars().collect();
        let at = broken.len() - 5;
        broken[at] = if broken[at] == 'A' { 'B' } else { 'A' };
        let broken: String = broken.into_iter().collect();
        let tampered = crate::testkit::Bundle {
            proof: text.replace(second, &broken).into_bytes(),
            ..b.clone()
        };
        denied(
            decide_bundle(&rotated_policy(&w, None, false, true), &tampered),
            ReasonCode::LogSignatureInvalid,
        );
        denied(
            decide_bundle(&rotated_policy(&w, None, true, true), &tampered),
            ReasonCode::LogSignatureInvalid,
        );
        assert!(decide_bundle(&rotated_policy(&w, None, true, false), &tampered).is_allow());
    }

    #[test]
    fn retired_key_lines_are_checked() {
        let w = World::new();
        let base = w.policy_text(2, true);
        let old = w.log.verifier();
        for bad in [
            // The key must be on a log line.
            format!(
                "{base}daylight-log-key-until {} 2026-08-01T00:00:00Z\n",
                w.log2.verifier()
            ),
            format!("{base}daylight-log-key-until {old} yesterday\n"),
            format!("{base}daylight-log-key-until {old}\n"),
            format!(
                "{base}daylight-log-key-until {old} 2026-08-01T00:00:00Z\n\
                 daylight-log-key-until {old} 2026-09-01T00:00:00Z\n"
            ),
            format!(
                "{base}daylight-log-key-until {} 2026-08-01T00:00:00Z\n",
                w.witnesses[0].verifier()
            ),
            format!("{base}daylight-mirror required 0\n"),
            format!("{base}daylight-mirror optional 60\n"),
            format!("{base}daylight-mirror required 60\ndaylight-mirror required 60\n"),
        ] {
            assert!(Policy::parse(&bad).is_err(), "accepted:\n{bad}");
        }
        let p = Policy::parse(&format!(
            "{base}daylight-log-key-until {old} 2026-08-01T02:00:00+02:00\ndaylight-mirror required 600\n"
        ))
        .unwrap();
        assert_eq!(
            p.retired_log_keys()[0].until,
            Utc.with_ymd_and_hms(2026, 8, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(p.mirror_required(), Some(600));
        assert_eq!(p.mirror_max_age(), 600);
        assert_eq!(Policy::parse(&p.to_text()).unwrap(), p);
        assert_eq!(w.policy().mirror_max_age(), 3600);
    }
}
