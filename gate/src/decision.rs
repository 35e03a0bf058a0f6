//! The release decision: every check in order, each failing closed with its
//! own stable [`ReasonCode`].

use std::fmt;

use chrono::{DateTime, TimeZone as _, Utc};
use daylight_core::checkpoint::Checkpoint;
use daylight_core::tlog_proof::{TlogProof, TlogProofError};
use daylight_core::{Hash, LeafIndex, Note, TreeSize};
use daylight_schemas::{Kind, Opening, SchemaError, SignedRecord};

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
    /// `log_signature_invalid`: no valid signature by the policy's key for that log
    /// (missing, wrong key, or a signature that does not verify).
    LogSignatureInvalid,
    /// `cosignature_invalid`: a cosignature line by a policy witness does not verify.
    CosignatureInvalid,
    /// `quorum_not_met`: the valid cosignatures by policy witnesses do not satisfy its quorum.
    QuorumNotMet,
    /// `checkpoint_too_old`: the newest valid cosignature is older than `daylight-max-age`.
    CheckpointTooOld,
    /// `checkpoint_in_future`: the newest valid cosignature is dated more than
    /// [`MAX_CLOCK_SKEW`] seconds after now.
    CheckpointInFuture,
    /// `not_included`: the inclusion proof does not put exactly these entry bytes at
    /// that index under the checkpoint's root.
    NotIncluded,
    /// `record_malformed`: the entry is not a canonical, valid Daylight record.
    RecordMalformed,
    /// `kind_not_authorising`: the record is not a `request` or an `emergency`.
    KindNotAuthorising,
    /// `untrusted_signer`: the record's signer is not a `daylight-agency` key of the policy.
    UntrustedSigner,
    /// `record_signature_invalid`: the record's signature does not verify under that key.
    RecordSignatureInvalid,
    /// `emergency_not_allowed`: an emergency, and the policy says `daylight-emergencies deny`.
    EmergencyNotAllowed,
    /// `emergency_deadline_passed`: an emergency whose ratify-by deadline has passed.
    EmergencyDeadlinePassed,
    /// `provider_not_configured`: the policy names no provider (`daylight-provider`).
    ProviderNotConfigured,
    /// `wrong_provider`: the record is addressed to another provider.
    WrongProvider,
    /// `not_yet_valid`: now is before the record's `valid_from`.
    NotYetValid,
    /// `expired`: now is at or after the record's `valid_until`.
    Expired,
    /// `opening_malformed`: the opening file does not parse.
    OpeningMalformed,
    /// `opening_mismatch`: the opening is for another entry, or the target's opening
    /// (its salt) does not open the record's commitment.
    OpeningMismatch,
    /// `target_not_in_opening`: the target asked about is not in the opening.
    TargetNotInOpening,
}

impl ReasonCode {
    /// Every code, in the order the checks run.
    pub const ALL: [ReasonCode; 21] = [
        ReasonCode::BundleMalformed,
        ReasonCode::UnknownLog,
        ReasonCode::LogSignatureInvalid,
        ReasonCode::CosignatureInvalid,
        ReasonCode::QuorumNotMet,
        ReasonCode::CheckpointTooOld,
        ReasonCode::CheckpointInFuture,
        ReasonCode::NotIncluded,
        ReasonCode::RecordMalformed,
        ReasonCode::KindNotAuthorising,
        ReasonCode::UntrustedSigner,
        ReasonCode::RecordSignatureInvalid,
        ReasonCode::EmergencyNotAllowed,
        ReasonCode::EmergencyDeadlinePassed,
        ReasonCode::ProviderNotConfigured,
        ReasonCode::WrongProvider,
        ReasonCode::NotYetValid,
        ReasonCode::Expired,
        ReasonCode::OpeningMalformed,
        ReasonCode::OpeningMismatch,
        ReasonCode::TargetNotInOpening,
    ];

    /// The stable code.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::BundleMalformed => "bundle_malformed",
            ReasonCode::UnknownLog => "unknown_log",
            ReasonCode::LogSignatureInvalid => "log_signature_invalid",
            ReasonCode::CosignatureInvalid => "cosignature_invalid",
            ReasonCode::QuorumNotMet => "quorum_not_met",
            ReasonCode::CheckpointTooOld => "checkpoint_too_old",
            ReasonCode::CheckpointInFuture => "checkpoint_in_future",
            ReasonCode::NotIncluded => "not_included",
            ReasonCode::RecordMalformed => "record_malformed",
            ReasonCode::KindNotAuthorising => "kind_not_authorising",
            ReasonCode::UntrustedSigner => "untrusted_signer",
            ReasonCode::RecordSignatureInvalid => "record_signature_invalid",
            ReasonCode::EmergencyNotAllowed => "emergency_not_allowed",
            ReasonCode::EmergencyDeadlinePassed => "emergency_deadline_passed",
            ReasonCode::ProviderNotConfigured => "provider_not_configured",
            ReasonCode::WrongProvider => "wrong_provider",
            ReasonCode::NotYetValid => "not_yet_valid",
            ReasonCode::Expired => "expired",
            ReasonCode::OpeningMalformed => "opening_malformed",
            ReasonCode::OpeningMismatch => "opening_mismatch",
            ReasonCode::TargetNotInOpening => "target_not_in_opening",
        }
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
}

impl Denied {
    fn new(reason: ReasonCode, detail: impl Into<String>) -> Denied {
        // One line, always: details quote outside data.
        let detail: String = detail.into();
        let detail = detail.replace(['\n', '\r'], " ");
        Denied { reason, detail }
    }
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
        )
    }
}

/// The gate's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Every check passed.
    Allow(Allowed),
    /// A check failed; nothing may be released.
    Deny {
        /// Which check failed.
        reason: ReasonCode,
        /// What failed, in words.
        detail: String,
    },
}

impl Decision {
    /// As a `Result`, for `?`.
    pub fn into_result(self) -> Result<Allowed, Denied> {
        match self {
            Decision::Allow(a) => Ok(a),
            Decision::Deny { reason, detail } => Err(Denied { reason, detail }),
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
}

impl From<Result<Allowed, Denied>> for Decision {
    fn from(r: Result<Allowed, Denied>) -> Decision {
        match r {
            Ok(a) => Decision::Allow(a),
            Err(Denied { reason, detail }) => Decision::Deny { reason, detail },
        }
    }
}

impl fmt::Display for Decision {
    /// `ALLOW ...` or `DENY <reason-code>: <detail>`, one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Allow(a) => write!(f, "ALLOW {a}"),
            Decision::Deny { reason, detail } => write!(f, "DENY {reason}: {detail}"),
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
/// on any input, does I/O, or keeps state.
pub fn decide(
    policy: &Policy,
    entry: &[u8],
    proof: &[u8],
    opening: Option<(&Opening, &str)>,
    now: DateTime<Utc>,
) -> Decision {
    check(policy, entry, proof, opening, now).into()
}

fn deny<T>(reason: ReasonCode, detail: impl Into<String>) -> Result<T, Denied> {
    Err(Denied::new(reason, detail))
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn unix_time(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| Utc.timestamp_opt(s, 0).single())
        .map_or_else(|| format!("{secs} (Unix time)"), time)
}

fn check(
    policy: &Policy,
    entry: &[u8],
    proof: &[u8],
    opening: Option<(&Opening, &str)>,
    now: DateTime<Utc>,
) -> Result<Allowed, Denied> {
    use ReasonCode as R;
    let witnesses = policy.witness_policy();

    // 1. The bundle and its checkpoint parse.
    let bundle = TlogProof::parse(proof).or_else(|e| deny(R::BundleMalformed, e.to_string()))?;
    let note = Note::parse(&bundle.checkpoint)
        .or_else(|e| deny(R::BundleMalformed, format!("checkpoint: {e}")))?;
    let origin = Checkpoint::parse_text(note.text())
        .or_else(|e| deny(R::BundleMalformed, e.to_string()))?
        .origin;
    if !witnesses
        .logs
        .iter()
        .any(|l| l.key.name().as_str() == origin)
    {
        return deny(
            R::UnknownLog,
            format!("checkpoint origin {origin:?} is not a log of the policy"),
        );
    }
    if witnesses.quorum.is_none() {
        // Policy::parse refuses this; kept so the gate fails closed regardless.
        return deny(R::QuorumNotMet, "the policy requires no witnesses");
    }

    // 2-5. Log signature, cosignatures, quorum, inclusion: the core's
    // tlog-proof verification, in the spec's order.
    let verified = bundle.verify(entry, witnesses).or_else(|e| match e {
        TlogProofError::Malformed(_) => deny(R::BundleMalformed, e.to_string()),
        TlogProofError::UnknownLog(_) => deny(R::UnknownLog, e.to_string()),
        TlogProofError::Checkpoint(_) => deny(
            R::LogSignatureInvalid,
            format!("checkpoint of {origin}: {e}"),
        ),
        TlogProofError::Cosignature(_) => deny(R::CosignatureInvalid, e.to_string()),
        TlogProofError::QuorumNotMet { .. } => deny(R::QuorumNotMet, e.to_string()),
        TlogProofError::Inclusion(_) => deny(
            R::NotIncluded,
            format!("entry at index {}: {e}", bundle.index),
        ),
    })?;

    // 6. Freshness: the newest cosignature by a policy witness.
    let Some(newest) = verified.cosignatures.iter().map(|c| c.timestamp).max() else {
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
    if age > i128::from(policy.max_age()) {
        return deny(
            R::CheckpointTooOld,
            format!(
                "newest cosignature is from {}, {age} s ago; the policy allows {} s",
                unix_time(newest),
                policy.max_age()
            ),
        );
    }
    let newest_cosignature = i64::try_from(newest)
        .ok()
        .and_then(|s| Utc.timestamp_opt(s, 0).single())
        .map_or_else(
            || deny(R::CheckpointInFuture, "cosignature time out of range"),
            Ok,
        )?;

    // 7. The record: canonical, valid, a kind that authorises access.
    let record = SignedRecord::parse(entry)
        .or_else(|e| deny(R::RecordMalformed, format!("{e} ({})", e.code())))?;
    let kind = record.kind();
    if !matches!(kind, Kind::Request | Kind::Emergency) {
        return deny(
            R::KindNotAuthorising,
            format!("a {kind} entry does not authorise access; only request and emergency do"),
        );
    }

    // 8. Signed by an agency the policy trusts.
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

    // 9. Emergencies: allowed by the policy, and before their deadline.
    let ratify_by = record.ratify_by();
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
        if now >= deadline {
            return deny(
                R::EmergencyDeadlinePassed,
                format!(
                    "the emergency had to be ratified by {}; now is {}",
                    time(deadline),
                    time(now)
                ),
            );
        }
    }

    // 10. Addressed to this provider.
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

    // 11. Within the validity window [valid_from, valid_until).
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

    // 12. The target opens one of the commitments.
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

    Ok(Allowed {
        index: bundle.index,
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
        checkpoint_size: verified.checkpoint.size,
        cosignatures: verified.cosignatures.len(),
        newest_cosignature,
    })
}
