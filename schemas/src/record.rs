//! Records: the kinds, their bodies, the canonical encoding, signing,
//! parsing and the context-free validation rules.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use daylight_core::{leaf_hash, Hash, KeyType, LeafIndex, SignerKey, VerifierKey};
use schemars::JsonSchema;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::canonical::{self, EncodeError, Encoder};
use crate::error::{clip, SchemaError};
use crate::fields::{
    parse_signature_hex, Commitment, DataCategory, Decision, DocumentHash, EmergencyGround,
    EntryRef, IssuerType, Jurisdiction, KeyTag, Name, Offence, RefusalReason, RegisteredKey,
    RegistryAction, Role, Salt, SealReason, Signer, TargetId, TargetType, Text, Timestamp,
    WithdrawalReason,
};
use crate::signature::SignatureCheck;

/// The schema version this code writes: version 2 binds every record to
/// one log (its `log` member, under the signature).
pub const SCHEMA_VERSION: u64 = 2;

/// The schema versions this code reads: version 1 (no `log` member) stays
/// readable wherever a log holds entries of it.
pub const SCHEMA_VERSIONS_READ: [u64; 2] = [1, 2];

/// The largest record: the tlog-tiles entry limit, 65535 bytes.
pub const MAX_RECORD_SIZE: usize = daylight_core::tile::MAX_ENTRY_SIZE;

/// Domain separation for record signatures: the signed message is this
/// prefix followed by the canonical encoding of the record without its
/// `signature` member.
pub const SIGNATURE_DOMAIN: &[u8] = b"daylight/record/v1\n";

/// The most content lines a published `policy` record holds.
pub const MAX_POLICY_LINES: usize = 200;

/// The longest an emergency may wait for its court ratification: 48 hours
/// after the emergency record is created (EU 2023/1543 Art. 4(5): emergency
/// orders validated within 48 hours). A log or gate policy may be stricter.
pub const MAX_RATIFY_HOURS: i64 = 48;

/// The members of a signed record, in canonical (sorted) order; version 1
/// has all but `log`.
const TOP_FIELDS: [&str; 7] = [
    "body",
    "created",
    "kind",
    "log",
    "signature",
    "signer",
    "version",
];

// ---------------------------------------------------------------------------
// Kinds

/// The kind of a record. The lower-case names ([`Kind::as_str`]) are stable:
/// they are the `kind` member of every record and draft.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `request`: an authority asks a provider for exceptional access under a court order.
    Request,
    /// `emergency`: exceptional access before a court order, to be ratified by a deadline.
    Emergency,
    /// `ratification`: a court's decision on an earlier emergency entry.
    Ratification,
    /// `extension`: a court extends an entry's sealed-until date.
    Extension,
    /// `disclosure`: opens (or states why it withholds) the commitments of an earlier entry.
    Disclosure,
    /// `release`: the provider's receipt that it released access for an entry.
    Release,
    /// `withdrawal`: the agency withdraws an entry it made.
    Withdrawal,
    /// `outcome`: the agency reports what an authorisation led to.
    Outcome,
    /// `registry`: the log operator adds or revokes a key for a role.
    Registry,
    /// `refusal`: the provider's receipt that it refused an entry on its content.
    Refusal,
    /// `policy`: the provider publishes the content lines it enforces.
    Policy,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 11] = [
        Kind::Request,
        Kind::Emergency,
        Kind::Ratification,
        Kind::Extension,
        Kind::Disclosure,
        Kind::Release,
        Kind::Withdrawal,
        Kind::Outcome,
        Kind::Registry,
        Kind::Refusal,
        Kind::Policy,
    ];

    /// The stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Request => "request",
            Kind::Emergency => "emergency",
            Kind::Ratification => "ratification",
            Kind::Extension => "extension",
            Kind::Disclosure => "disclosure",
            Kind::Release => "release",
            Kind::Withdrawal => "withdrawal",
            Kind::Outcome => "outcome",
            Kind::Registry => "registry",
            Kind::Refusal => "refusal",
            Kind::Policy => "policy",
        }
    }

    /// The roles whose registered keys may sign this kind. Empty for
    /// [`Kind::Registry`], which only the log's own key signs.
    pub fn signer_roles(self) -> &'static [Role] {
        match self {
            Kind::Request | Kind::Emergency | Kind::Withdrawal | Kind::Outcome => &[Role::Agency],
            Kind::Ratification | Kind::Extension => &[Role::Court],
            Kind::Disclosure => &[Role::Agency, Role::Court],
            Kind::Release => &[Role::Provider, Role::Custodian],
            Kind::Refusal | Kind::Policy => &[Role::Provider],
            Kind::Registry => &[],
        }
    }

    /// Whether only the log's own key signs this kind.
    pub fn signed_by_log(self) -> bool {
        self == Kind::Registry
    }
}

impl FromStr for Kind {
    type Err = SchemaError;
    fn from_str(s: &str) -> Result<Kind, SchemaError> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| SchemaError::UnknownKind(clip(s)))
    }
}

impl Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        Kind::from_str(&s).map_err(|e| crate::error::de_error(e.code(), e))
    }
}

impl JsonSchema for Kind {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Kind".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        schemars::json_schema!({
            "description": "A record kind.",
            "type": "string",
            "enum": names
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------
// Bodies

/// Who issued an order or authorisation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Authority {
    /// The issuing court or authority, by name (Wiretap Report: "authorising official").
    pub name: Text,
    /// What kind of body it is (EU 2023/1543 distinguishes judges and courts from prosecutors).
    #[serde(rename = "type")]
    pub issuer_type: IssuerType,
}

/// A span of time: `from` strictly before `until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Period {
    /// Start (inclusive).
    pub from: Timestamp,
    /// End (exclusive).
    pub until: Timestamp,
}

crate::draft::body_with_draft! {
    /// `request`: an authority asks a provider for exceptional access under an
    /// order. Signed by the agency's registered key (the record's signer).
    pub struct RequestBody;
    /// A draft `request`: as [`RequestBody`] but with the target identifiers and
    /// the order document's SHA-256 in the clear, and no `target_count`.
    pub struct RequestDraft;
    {
        /// Where the order was issued: ISO 3166-1 alpha-2, optionally with a subdivision (`US-NY`).
        jurisdiction: Jurisdiction,
        /// The legal basis: statute or section the order rests on (`18 U.S.C. 2518`).
        legal_basis: Text,
        /// The court or authority that issued the order.
        issuing_authority: Authority,
        /// The provider asked: the name of its registered key. The gate checks it is itself.
        provider: Name,
        /// What data is asked for: a non-empty set, sorted by name, no repeats.
        #[schemars(length(min = 1))]
        data_categories: BTreeSet<DataCategory> => see "; any order here, sorted when sealed.",
        /// The most serious offence under investigation.
        offence: Offence,
        /// What the targets are.
        target_type: TargetType,
        /// How many targets: equals the number of `targets` commitments.
        target_count: u32 => none,
        /// One commitment per target identifier (never the identifier itself).
        #[schemars(length(min = 1))]
        targets: Vec<Commitment> => {
            /// The target identifiers in the clear, exactly as the provider knows them. Never logged.
            #[schemars(length(min = 1))]
            targets: Vec<TargetId>
        },
        /// Access is authorised from this time.
        valid_from: Timestamp,
        /// Access is authorised until this time; after the record's creation.
        valid_until: Timestamp,
        /// The order's details stay sealed until this time; not before `valid_until`.
        sealed_until: Timestamp,
        /// The agency's or court's case reference.
        case_reference: Text,
        /// Commitment to the SHA-256 of the order document.
        order_document: Commitment => {
            /// SHA-256 of the order document (e.g. `sha256sum order.pdf`). Never logged: committed to.
            order_document_sha256: DocumentHash
        },
        /// The period the data asked for covers (historical data), if not the validity window.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data_period: Option<Period>,
    }
}

crate::draft::body_with_draft! {
    /// `emergency`: exceptional access before a court order, which a court must
    /// ratify by `ratify_by`. Signed by the agency.
    pub struct EmergencyBody;
    /// A draft `emergency`: as [`EmergencyBody`] with targets (and the written
    /// authorisation's SHA-256, if any) in the clear, and no `target_count`.
    pub struct EmergencyDraft;
    {
        /// Where: ISO 3166-1 alpha-2, optionally with a subdivision.
        jurisdiction: Jurisdiction,
        /// The legal basis for emergency access.
        legal_basis: Text,
        /// Who authorised the emergency access (often a prosecutor or the agency itself).
        issuing_authority: Authority,
        /// The provider asked: the name of its registered key.
        provider: Name,
        /// What data is asked for: a non-empty set, sorted by name, no repeats.
        #[schemars(length(min = 1))]
        data_categories: BTreeSet<DataCategory> => see "; any order here.",
        /// The most serious offence under investigation.
        offence: Offence,
        /// What the targets are.
        target_type: TargetType,
        /// How many targets: equals the number of `targets` commitments.
        target_count: u32 => none,
        /// One commitment per target identifier.
        #[schemars(length(min = 1))]
        targets: Vec<Commitment> => {
            /// The target identifiers in the clear. Never logged.
            #[schemars(length(min = 1))]
            targets: Vec<TargetId>
        },
        /// Access is authorised from this time.
        valid_from: Timestamp,
        /// Access is authorised until this time (if ratified); after the record's creation.
        valid_until: Timestamp,
        /// Details stay sealed until this time; not before `valid_until`.
        sealed_until: Timestamp,
        /// The agency's case reference.
        case_reference: Text,
        /// Why access could not wait for a court.
        ground: EmergencyGround,
        /// A court must ratify by this time: after creation, at most 48 hours after it.
        ratify_by: Timestamp,
        /// Commitment to the SHA-256 of the written emergency authorisation, if there is one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        order_document: Option<Commitment> => {
            /// SHA-256 of the written emergency authorisation, if any. Never logged.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            order_document_sha256: Option<DocumentHash>
        },
        /// The period the data asked for covers, if not the validity window.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data_period: Option<Period>,
    }
}

crate::draft::body_with_draft! {
    /// `ratification`: a court's decision on an earlier emergency entry. Signed
    /// by the court's registered key.
    pub struct RatificationBody;
    /// A draft `ratification`: as [`RatificationBody`] with the court order's SHA-256 in the clear.
    pub struct RatificationDraft;
    {
        /// The emergency entry decided on.
        emergency: EntryRef,
        /// Granted or denied (Wiretap Report: order granted or denied).
        decision: Decision,
        /// The court's case reference.
        case_reference: Text,
        /// Commitment to the SHA-256 of the court's order.
        order_document: Commitment => {
            /// SHA-256 of the court's order. Never logged: committed to.
            order_document_sha256: DocumentHash
        },
    }
}

/// `extension`: a court extends an entry's sealed-until date. Signed by the court.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionBody {
    /// The request or emergency entry whose seal is extended.
    pub entry: EntryRef,
    /// The new sealed-until time; after this record's creation.
    pub sealed_until: Timestamp,
    /// Why it stays sealed.
    pub reason: SealReason,
}

/// One target commitment opened by a disclosure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DisclosedTarget {
    /// The commitment's position in the entry's `targets` (from 0).
    pub position: u32,
    /// The target identifier.
    pub target: TargetId,
    /// The commitment's salt.
    pub salt: Salt,
}

/// One target commitment a disclosure keeps sealed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WithheldTarget {
    /// The commitment's position in the entry's `targets` (from 0).
    pub position: u32,
    /// Why it stays sealed.
    pub reason: SealReason,
}

/// The order-document commitment opened by a disclosure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DisclosedDocument {
    /// SHA-256 of the order document.
    pub sha256: DocumentHash,
    /// The commitment's salt.
    pub salt: Salt,
}

/// `disclosure`: after sealed-until, opens the commitments of an earlier
/// entry so anyone can check them, or states which stay sealed and why.
/// Signed by the agency or a court.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DisclosureBody {
    /// The request, emergency or ratification entry disclosed.
    pub entry: EntryRef,
    /// Target commitments opened, by ascending position.
    pub targets_opened: Vec<DisclosedTarget>,
    /// Target commitments kept sealed, by ascending position.
    pub targets_withheld: Vec<WithheldTarget>,
    /// The order-document commitment, opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_document_opened: Option<DisclosedDocument>,
    /// Why the order document stays sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_document_withheld: Option<SealReason>,
}

/// `release`: the provider's receipt: it released access for an entry, for
/// some number of targets, at a time. Signed by the provider's registered
/// key; or, under threshold custody, a custodian's receipt for the one share
/// of one target's escrowed key it released (`share` set, signed by the
/// custodian's registered key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBody {
    /// The request or emergency entry acted on.
    pub entry: EntryRef,
    /// How many targets access was released for (at least 1; exactly 1
    /// for a custodian's share).
    pub targets_released: u32,
    /// When it was released; not after this record's creation.
    pub released_at: Timestamp,
    /// A custodian's receipt: the share it released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<ShareRef>,
}

/// The share a custodian released: which escrowed key (by its tag for this
/// request, never its check value, which would link every request about
/// the same target), which of its shares, and the split (k of n).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareRef {
    /// The escrowed key's tag for the request the receipt names.
    pub key: KeyTag,
    /// The share's index (its x coordinate), 1 to `shares`.
    pub index: u8,
    /// How many shares reconstruct the key (k, at least 2).
    pub threshold: u8,
    /// How many shares the key was split into (n, at least `threshold`).
    pub shares: u8,
}

impl ShareRef {
    /// Checks the numbers: 2 <= threshold <= shares, 1 <= index <= shares.
    pub fn check(&self) -> Result<(), SchemaError> {
        if self.threshold < 2 || self.threshold > self.shares {
            return Err(SchemaError::Malformed(format!(
                "share threshold {} of {} shares: need 2 <= threshold <= shares",
                self.threshold, self.shares
            )));
        }
        if self.index == 0 || self.index > self.shares {
            return Err(SchemaError::Malformed(format!(
                "share index {} of {} shares: need 1 <= index <= shares",
                self.index, self.shares
            )));
        }
        Ok(())
    }
}

/// `refusal`: the provider refused access for a request or emergency on
/// its content (its standards: jurisdiction, issuer, categories, offence,
/// targets, validity). Signed by the provider's registered key; names the
/// entry and the reason, nothing secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RefusalBody {
    /// The request or emergency entry refused.
    pub entry: EntryRef,
    /// Why, as a stable code.
    pub reason: RefusalReason,
    /// When it was refused; not after this record's creation.
    pub refused_at: Timestamp,
}

/// `policy`: a provider publishes the content lines its gate enforces (see
/// `schemas::content_policy`), so anyone can check its releases and
/// refusals against its own stated standards. The newest one is in force.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    /// The content lines, one per item, in the gate's policy syntax.
    pub lines: Vec<Text>,
}

/// `withdrawal`: the agency withdraws an entry it made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalBody {
    /// The entry withdrawn.
    pub entry: EntryRef,
    /// Why.
    pub reason: WithdrawalReason,
}

/// `outcome`: after an authorisation ends, what it led to, in the terms of
/// the US Wiretap Report's prosecutor report (18 U.S.C. 2519(2)). A later
/// outcome can amend an earlier one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeBody {
    /// The request or emergency entry reported on.
    pub entry: EntryRef,
    /// The earlier outcome entry this one replaces, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amends: Option<EntryRef>,
    /// Whether any data was obtained.
    pub data_obtained: bool,
    /// Whether encryption was encountered.
    pub encryption_encountered: bool,
    /// Whether encryption kept the plain text out of reach (implies `encryption_encountered`).
    pub encryption_prevented_access: bool,
    /// Communications intercepted or obtained.
    pub communications_intercepted: u32,
    /// Of those, incriminating (at most `communications_intercepted`).
    pub incriminating_communications: u32,
    /// Persons whose communications were intercepted.
    pub persons_intercepted: u32,
    /// Arrests resulting so far.
    pub arrests: u32,
    /// Convictions resulting so far.
    pub convictions: u32,
}

/// `registry`: the log operator changes who may sign what. Signed by the
/// log's own key (a log-key rotation by the key it replaces), so the set of
/// keys allowed to submit, the log's key and its witnesses are in the log.
///
/// | action | role | fields |
/// | --- | --- | --- |
/// | `add` | agency, court, provider | `key` |
/// | `add` | witness | `key` (cosignature/v1), `url` |
/// | `revoke` | any but log | `key` |
/// | `rotate` | agency, court, provider | `key` (new), `replaces` (old, same name) |
/// | `rotate` | witness | `key` (new), `replaces` (old), `url` |
/// | `rotate` | log | `key` (new), `replaces` (old, same name), `until` |
/// | `quorum` | witness | `quorum` |
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistryBody {
    /// What the entry does.
    pub action: RegistryAction,
    /// The role the key has.
    pub role: Role,
    /// The key, in verifier-key text form (`name+keyid+base64`): Ed25519
    /// for agencies, courts, providers and the log, cosignature/v1 for
    /// witnesses. Absent only for `quorum`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<RegisteredKey>,
    /// The key holder's public name (an agency's, a court's, a provider's), if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<Text>,
    /// `rotate`: the key `key` replaces (same identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<RegisteredKey>,
    /// A witness's tlog-witness URL prefix (it serves `URL/add-checkpoint`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Text>,
    /// `quorum`: how many witnesses must cosign a checkpoint from this entry on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<u32>,
    /// A log-key rotation's transition end: checkpoints carry the old key's
    /// signature beside the new one's until then, and verifiers accept a
    /// checkpoint signed by the old key alone only if witnessed before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
}

impl RegistryBody {
    /// A body with only its action and role set.
    fn empty(action: RegistryAction, role: Role) -> RegistryBody {
        RegistryBody {
            action,
            role,
            key: None,
            display_name: None,
            replaces: None,
            url: None,
            quorum: None,
            until: None,
        }
    }
}

/// The typed content of a record, one variant per [`Kind`].
#[derive(Clone, Debug, PartialEq, Eq)]
// Bodies are parsed once per record and kept whole: boxing the larger
// variants would add an allocation per record and buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Body {
    /// See [`RequestBody`].
    Request(RequestBody),
    /// See [`EmergencyBody`].
    Emergency(EmergencyBody),
    /// See [`RatificationBody`].
    Ratification(RatificationBody),
    /// See [`ExtensionBody`].
    Extension(ExtensionBody),
    /// See [`DisclosureBody`].
    Disclosure(DisclosureBody),
    /// See [`ReleaseBody`].
    Release(ReleaseBody),
    /// See [`WithdrawalBody`].
    Withdrawal(WithdrawalBody),
    /// See [`OutcomeBody`].
    Outcome(OutcomeBody),
    /// See [`RegistryBody`].
    Registry(RegistryBody),
    /// See [`RefusalBody`].
    Refusal(RefusalBody),
    /// See [`PolicyBody`].
    Policy(PolicyBody),
}

impl Body {
    /// The roles whose registered keys may sign this body: its kind's
    /// ([`Kind::signer_roles`]), narrowed for a release: a custodian signs
    /// a share's release, a provider any other.
    pub fn signer_roles(&self) -> &'static [Role] {
        match self {
            Body::Release(b) if b.share.is_some() => &[Role::Custodian],
            Body::Release(_) => &[Role::Provider],
            other => other.kind().signer_roles(),
        }
    }

    /// The kind.
    pub fn kind(&self) -> Kind {
        match self {
            Body::Request(_) => Kind::Request,
            Body::Emergency(_) => Kind::Emergency,
            Body::Ratification(_) => Kind::Ratification,
            Body::Extension(_) => Kind::Extension,
            Body::Disclosure(_) => Kind::Disclosure,
            Body::Release(_) => Kind::Release,
            Body::Withdrawal(_) => Kind::Withdrawal,
            Body::Outcome(_) => Kind::Outcome,
            Body::Registry(_) => Kind::Registry,
            Body::Refusal(_) => Kind::Refusal,
            Body::Policy(_) => Kind::Policy,
        }
    }

    /// The earlier entries this body refers to, in field order.
    pub fn references(&self) -> Vec<EntryRef> {
        match self {
            Body::Request(_) | Body::Emergency(_) | Body::Registry(_) | Body::Policy(_) => {
                Vec::new()
            }
            Body::Ratification(b) => vec![b.emergency],
            Body::Extension(b) => vec![b.entry],
            Body::Disclosure(b) => vec![b.entry],
            Body::Release(b) => vec![b.entry],
            Body::Refusal(b) => vec![b.entry],
            Body::Withdrawal(b) => vec![b.entry],
            Body::Outcome(b) => std::iter::once(b.entry).chain(b.amends).collect(),
        }
    }

    /// The provider a request or emergency is addressed to.
    pub fn provider(&self) -> Option<&Name> {
        match self {
            Body::Request(b) => Some(&b.provider),
            Body::Emergency(b) => Some(&b.provider),
            _ => None,
        }
    }

    /// The target commitments of a request or emergency.
    pub fn target_commitments(&self) -> Option<&[Commitment]> {
        match self {
            Body::Request(b) => Some(&b.targets),
            Body::Emergency(b) => Some(&b.targets),
            _ => None,
        }
    }

    /// The order-document commitment of a request, emergency (if any) or ratification.
    pub fn order_document(&self) -> Option<&Commitment> {
        match self {
            Body::Request(b) => Some(&b.order_document),
            Body::Emergency(b) => b.order_document.as_ref(),
            Body::Ratification(b) => Some(&b.order_document),
            _ => None,
        }
    }

    /// The validity window `(valid_from, valid_until)` of a request or emergency.
    pub fn validity(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        match self {
            Body::Request(b) => Some((b.valid_from.get(), b.valid_until.get())),
            Body::Emergency(b) => Some((b.valid_from.get(), b.valid_until.get())),
            _ => None,
        }
    }

    /// The sealed-until time of a request or emergency, or the new one an extension sets.
    pub fn sealed_until(&self) -> Option<DateTime<Utc>> {
        match self {
            Body::Request(b) => Some(b.sealed_until.get()),
            Body::Emergency(b) => Some(b.sealed_until.get()),
            Body::Extension(b) => Some(b.sealed_until.get()),
            _ => None,
        }
    }

    /// The ratify-by deadline of an emergency.
    pub fn ratify_by(&self) -> Option<DateTime<Utc>> {
        match self {
            Body::Emergency(b) => Some(b.ratify_by.get()),
            _ => None,
        }
    }

    /// Writes the body's canonical form.
    fn write_canonical(&self, enc: &mut Encoder) -> Result<(), EncodeError> {
        match self {
            Body::Request(b) => enc.value(b),
            Body::Emergency(b) => enc.value(b),
            Body::Ratification(b) => enc.value(b),
            Body::Extension(b) => enc.value(b),
            Body::Disclosure(b) => enc.value(b),
            Body::Release(b) => enc.value(b),
            Body::Withdrawal(b) => enc.value(b),
            Body::Outcome(b) => enc.value(b),
            Body::Registry(b) => enc.value(b),
            Body::Refusal(b) => enc.value(b),
            Body::Policy(b) => enc.value(b),
        }
    }

    /// Decodes a body of `kind` straight from a deserializer.
    fn deserialize_as<'de, D: Deserializer<'de>>(kind: Kind, d: D) -> Result<Body, D::Error> {
        Ok(match kind {
            Kind::Request => Body::Request(RequestBody::deserialize(d)?),
            Kind::Emergency => Body::Emergency(EmergencyBody::deserialize(d)?),
            Kind::Ratification => Body::Ratification(RatificationBody::deserialize(d)?),
            Kind::Extension => Body::Extension(ExtensionBody::deserialize(d)?),
            Kind::Disclosure => Body::Disclosure(DisclosureBody::deserialize(d)?),
            Kind::Release => Body::Release(ReleaseBody::deserialize(d)?),
            Kind::Withdrawal => Body::Withdrawal(WithdrawalBody::deserialize(d)?),
            Kind::Outcome => Body::Outcome(OutcomeBody::deserialize(d)?),
            Kind::Registry => Body::Registry(RegistryBody::deserialize(d)?),
            Kind::Refusal => Body::Refusal(RefusalBody::deserialize(d)?),
            Kind::Policy => Body::Policy(PolicyBody::deserialize(d)?),
        })
    }

    fn from_value(kind: Kind, v: Value) -> Result<Body, SchemaError> {
        fn de<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, SchemaError> {
            serde_json::from_value(v).map_err(|e| SchemaError::from_serde(&e))
        }
        Ok(match kind {
            Kind::Request => Body::Request(de(v)?),
            Kind::Emergency => Body::Emergency(de(v)?),
            Kind::Ratification => Body::Ratification(de(v)?),
            Kind::Extension => Body::Extension(de(v)?),
            Kind::Disclosure => Body::Disclosure(de(v)?),
            Kind::Release => Body::Release(de(v)?),
            Kind::Withdrawal => Body::Withdrawal(de(v)?),
            Kind::Outcome => Body::Outcome(de(v)?),
            Kind::Registry => Body::Registry(de(v)?),
            Kind::Refusal => Body::Refusal(de(v)?),
            Kind::Policy => Body::Policy(de(v)?),
        })
    }
}

// ---------------------------------------------------------------------------
// Validation: the context-free rules

fn validate(created: Timestamp, body: &Body) -> Result<(), SchemaError> {
    match body {
        Body::Request(b) => {
            check_access(
                created,
                b.target_count,
                &b.targets,
                &b.data_categories,
                b.valid_from,
                b.valid_until,
                b.sealed_until,
                b.data_period,
            )?;
        }
        Body::Emergency(b) => {
            check_access(
                created,
                b.target_count,
                &b.targets,
                &b.data_categories,
                b.valid_from,
                b.valid_until,
                b.sealed_until,
                b.data_period,
            )?;
            if b.ratify_by <= created {
                return Err(SchemaError::DatesOutOfOrder(format!(
                    "ratify_by {} is not after created {created}",
                    b.ratify_by
                )));
            }
            let wait = b.ratify_by.get() - created.get();
            if wait > Duration::hours(MAX_RATIFY_HOURS) {
                let hours = (wait.num_seconds() + 3599) / 3600;
                return Err(SchemaError::EmergencyDeadlineTooLong {
                    hours,
                    max_hours: MAX_RATIFY_HOURS,
                });
            }
        }
        Body::Ratification(_) | Body::Withdrawal(_) => {}
        Body::Extension(b) => {
            if b.sealed_until <= created {
                return Err(SchemaError::DatesOutOfOrder(format!(
                    "new sealed_until {} is not after created {created}",
                    b.sealed_until
                )));
            }
        }
        Body::Disclosure(b) => check_disclosure(b)?,
        Body::Release(b) => {
            if b.targets_released == 0 {
                return Err(SchemaError::NoTargets(
                    "a release is for at least one target".into(),
                ));
            }
            if let Some(share) = &b.share {
                share.check()?;
                if b.targets_released != 1 {
                    return Err(SchemaError::Malformed(format!(
                        "a custodian's share release is for one target's key, not {}",
                        b.targets_released
                    )));
                }
            }
            if b.released_at > created {
                return Err(SchemaError::DatesOutOfOrder(format!(
                    "released_at {} is after created {created}",
                    b.released_at
                )));
            }
        }
        Body::Registry(b) => check_registry(created, b)?,
        Body::Refusal(b) => {
            if b.refused_at > created {
                return Err(SchemaError::DatesOutOfOrder(format!(
                    "refused_at {} is after created {created}",
                    b.refused_at
                )));
            }
        }
        Body::Policy(b) => {
            if b.lines.is_empty() || b.lines.len() > MAX_POLICY_LINES {
                return Err(SchemaError::BadPolicyLine(format!(
                    "a policy has 1 to {MAX_POLICY_LINES} content lines, not {}",
                    b.lines.len()
                )));
            }
            for line in &b.lines {
                crate::content_policy::ContentLine::parse(line.as_str())
                    .map_err(|e| SchemaError::BadPolicyLine(format!("{:?}: {e}", line.as_str())))?;
            }
        }
        Body::Outcome(b) => {
            if b.encryption_prevented_access && !b.encryption_encountered {
                return Err(SchemaError::InconsistentOutcome(
                    "encryption_prevented_access without encryption_encountered".into(),
                ));
            }
            if b.incriminating_communications > b.communications_intercepted {
                return Err(SchemaError::InconsistentOutcome(format!(
                    "{} incriminating communications out of {} intercepted",
                    b.incriminating_communications, b.communications_intercepted
                )));
            }
        }
    }
    Ok(())
}

/// The fields each registry action and role need, and no others (see
/// [`RegistryBody`]).
fn check_registry(created: Timestamp, b: &RegistryBody) -> Result<(), SchemaError> {
    let bad = |why: String| Err(SchemaError::BadRegistryEntry(why));
    let what = format!("{} {}", b.action, b.role);
    let want_cosignature = b.role == Role::Witness;
    for k in [&b.key, &b.replaces].into_iter().flatten() {
        let is_cosignature = k.key().key_type() == KeyType::CosignatureV1;
        if is_cosignature != want_cosignature {
            return bad(format!(
                "{what}: {} must be {}",
                k.key(),
                if want_cosignature {
                    "a cosignature/v1 key (type 0x04)"
                } else {
                    "an Ed25519 note key (type 0x01)"
                }
            ));
        }
    }
    let needs = |field: &str, present: bool, wanted: bool| -> Result<(), SchemaError> {
        match (present, wanted) {
            (false, true) => Err(SchemaError::BadRegistryEntry(format!(
                "{what} needs {field}"
            ))),
            (true, false) => Err(SchemaError::BadRegistryEntry(format!(
                "{what} takes no {field}"
            ))),
            _ => Ok(()),
        }
    };
    let (key, replaces, url, quorum, until) = match (b.action, b.role) {
        (RegistryAction::Quorum, Role::Witness) => (false, false, false, true, false),
        (RegistryAction::Quorum, _) => return bad(format!("{what}: only witnesses have a quorum")),
        (RegistryAction::Add | RegistryAction::Revoke, Role::Log) => {
            return bad(format!(
                "{what}: the log's key changes only by rotation, signed by the key it replaces"
            ))
        }
        (RegistryAction::Add, Role::Witness) => (true, false, true, false, false),
        (RegistryAction::Add | RegistryAction::Revoke, _) => (true, false, false, false, false),
        (RegistryAction::Rotate, Role::Witness) => (true, true, true, false, false),
        (RegistryAction::Rotate, Role::Log) => (true, true, false, false, true),
        (RegistryAction::Rotate, _) => (true, true, false, false, false),
    };
    needs("key", b.key.is_some(), key)?;
    needs("replaces", b.replaces.is_some(), replaces)?;
    needs("url", b.url.is_some(), url)?;
    needs("quorum", b.quorum.is_some(), quorum)?;
    needs("until", b.until.is_some(), until)?;
    if let (Some(new), Some(old)) = (&b.key, &b.replaces) {
        if new.key() == old.key() {
            return bad(format!("{what}: a key cannot replace itself"));
        }
        // An identity is its name: a rotation keeps it (a witness may be
        // replaced by another witness altogether).
        if b.role != Role::Witness && new.key().name() != old.key().name() {
            return bad(format!(
                "{what}: the new key is named {}, the old one {}; a rotation keeps the name",
                new.key().name(),
                old.key().name()
            ));
        }
    }
    if let Some(until) = b.until {
        if until < created {
            return Err(SchemaError::DatesOutOfOrder(format!(
                "transition end {until} is before created {created}"
            )));
        }
    }
    if b.quorum == Some(0) {
        return bad(format!(
            "{what}: a quorum of 0 would publish unwitnessed checkpoints"
        ));
    }
    if let Some(url) = &b.url {
        let u = url.as_str();
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return bad(format!("{what}: url {} is not an http(s) URL", clip(u)));
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn check_access(
    created: Timestamp,
    target_count: u32,
    targets: &[Commitment],
    categories: &BTreeSet<DataCategory>,
    valid_from: Timestamp,
    valid_until: Timestamp,
    sealed_until: Timestamp,
    data_period: Option<Period>,
) -> Result<(), SchemaError> {
    if u64::from(target_count) != targets.len() as u64 {
        return Err(SchemaError::TargetCountMismatch {
            target_count: target_count.into(),
            commitments: targets.len(),
        });
    }
    if targets.is_empty() {
        return Err(SchemaError::NoTargets(
            "a request names at least one target".into(),
        ));
    }
    if categories.is_empty() {
        return Err(SchemaError::NoDataCategories);
    }
    if valid_from >= valid_until {
        return Err(SchemaError::DatesOutOfOrder(format!(
            "valid_from {valid_from} is not before valid_until {valid_until}"
        )));
    }
    if valid_until <= created {
        return Err(SchemaError::DatesOutOfOrder(format!(
            "valid_until {valid_until} is not after created {created}"
        )));
    }
    if let Some(p) = data_period {
        if p.from >= p.until {
            return Err(SchemaError::DatesOutOfOrder(format!(
                "data_period from {} is not before until {}",
                p.from, p.until
            )));
        }
    }
    if sealed_until < valid_until {
        return Err(SchemaError::SealedBeforeValidUntil {
            sealed_until: sealed_until.to_string(),
            valid_until: valid_until.to_string(),
        });
    }
    Ok(())
}

fn check_disclosure(b: &DisclosureBody) -> Result<(), SchemaError> {
    if b.targets_opened.is_empty()
        && b.targets_withheld.is_empty()
        && b.order_document_opened.is_none()
        && b.order_document_withheld.is_none()
    {
        return Err(SchemaError::EmptyDisclosure);
    }
    let opened: Vec<u32> = b.targets_opened.iter().map(|t| t.position).collect();
    let withheld: Vec<u32> = b.targets_withheld.iter().map(|t| t.position).collect();
    for (name, list) in [("targets_opened", &opened), ("targets_withheld", &withheld)] {
        for w in list.windows(2) {
            if w[0] == w[1] {
                return Err(SchemaError::DuplicateDisclosureItem(format!(
                    "target position {}",
                    w[0]
                )));
            }
            if w[0] > w[1] {
                return Err(SchemaError::NonCanonical(format!(
                    "{name} must be in ascending order of position"
                )));
            }
        }
    }
    if let Some(p) = opened.iter().find(|p| withheld.binary_search(p).is_ok()) {
        return Err(SchemaError::DuplicateDisclosureItem(format!(
            "target position {p}"
        )));
    }
    if b.order_document_opened.is_some() && b.order_document_withheld.is_some() {
        return Err(SchemaError::DuplicateDisclosureItem(
            "the order document".into(),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Unsigned records

/// A record's content before it is signed: creation time and body, already
/// checked against the context-free rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    created: Timestamp,
    body: Body,
}

impl Record {
    /// A record created at `created` (cut to whole seconds) with `body`,
    /// checked against the context-free rules.
    pub fn new(created: DateTime<Utc>, body: Body) -> Result<Record, SchemaError> {
        let created = Timestamp::new(created)?;
        validate(created, &body)?;
        Ok(Record { created, body })
    }

    /// A registry record adding `key` for `role` (to be signed by the log's key).
    pub fn registry_add(
        role: Role,
        key: &VerifierKey,
        created: DateTime<Utc>,
    ) -> Result<Record, SchemaError> {
        Record::registry(RegistryAction::Add, role, key, created)
    }

    /// A registry record revoking `key` for `role` (to be signed by the log's key).
    pub fn registry_revoke(
        role: Role,
        key: &VerifierKey,
        created: DateTime<Utc>,
    ) -> Result<Record, SchemaError> {
        Record::registry(RegistryAction::Revoke, role, key, created)
    }

    fn registry(
        action: RegistryAction,
        role: Role,
        key: &VerifierKey,
        created: DateTime<Utc>,
    ) -> Result<Record, SchemaError> {
        Record::new(
            created,
            Body::Registry(RegistryBody {
                key: Some(RegisteredKey::new(key.clone())?),
                ..RegistryBody::empty(action, role)
            }),
        )
    }

    /// A registry record replacing `old` by `new` for `role` (same name;
    /// to be signed by the log's key, or for [`Role::Log`] by `old`, with
    /// `until` the end of the transition in which checkpoints carry both).
    pub fn registry_rotate(
        role: Role,
        old: &VerifierKey,
        new: &VerifierKey,
        until: Option<DateTime<Utc>>,
        created: DateTime<Utc>,
    ) -> Result<Record, SchemaError> {
        Record::new(
            created,
            Body::Registry(RegistryBody {
                key: Some(RegisteredKey::new(new.clone())?),
                replaces: Some(RegisteredKey::new(old.clone())?),
                until: until.map(Timestamp::new).transpose()?,
                ..RegistryBody::empty(RegistryAction::Rotate, role)
            }),
        )
    }

    /// A registry record adding witness `key` at `url`, or (with
    /// `replaces`) putting it in the place of another witness.
    pub fn registry_witness(
        key: &VerifierKey,
        url: &str,
        replaces: Option<&VerifierKey>,
        created: DateTime<Utc>,
    ) -> Result<Record, SchemaError> {
        let action = match replaces {
            Some(_) => RegistryAction::Rotate,
            None => RegistryAction::Add,
        };
        Record::new(
            created,
            Body::Registry(RegistryBody {
                key: Some(RegisteredKey::new(key.clone())?),
                replaces: replaces
                    .map(|k| RegisteredKey::new(k.clone()))
                    .transpose()?,
                url: Some(Text::new(url)?),
                ..RegistryBody::empty(action, Role::Witness)
            }),
        )
    }

    /// A registry record setting the witness quorum to `quorum`.
    pub fn registry_quorum(quorum: u32, created: DateTime<Utc>) -> Result<Record, SchemaError> {
        Record::new(
            created,
            Body::Registry(RegistryBody {
                quorum: Some(quorum),
                ..RegistryBody::empty(RegistryAction::Quorum, Role::Witness)
            }),
        )
    }

    /// A provider's release receipt for `entry`: access released for
    /// `targets_released` targets at `released_at` (to be signed by the provider's key).
    pub fn release(
        entry: EntryRef,
        targets_released: u32,
        released_at: DateTime<Utc>,
        created: DateTime<Utc>,
    ) -> Result<Record, SchemaError> {
        Record::new(
            created,
            Body::Release(ReleaseBody {
                entry,
                targets_released,
                released_at: Timestamp::new(released_at)?,
                share: None,
            }),
        )
    }

    /// A custodian's receipt for `entry`: it released `share` of one
    /// target's escrowed key at `released_at` (to be signed by the
    /// custodian's key).
    pub fn share_release(
        entry: EntryRef,
        share: ShareRef,
        released_at: DateTime<Utc>,
        created: DateTime<Utc>,
    ) -> Result<Record, SchemaError> {
        Record::new(
            created,
            Body::Release(ReleaseBody {
                entry,
                targets_released: 1,
                released_at: Timestamp::new(released_at)?,
                share: Some(share),
            }),
        )
    }

    /// The kind.
    pub fn kind(&self) -> Kind {
        self.body.kind()
    }

    /// The creation time.
    pub fn created(&self) -> DateTime<Utc> {
        self.created.get()
    }

    /// The body.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// Signs the record with `key` (an Ed25519 note key) for the log whose
    /// origin is `log` (schema version 2: the origin is under the signature,
    /// so no other log takes the record). Fails if the encoded record would
    /// exceed [`MAX_RECORD_SIZE`].
    pub fn sign(&self, key: &SignerKey, log: &str) -> Result<SignedRecord, SchemaError> {
        self.sign_for(key, Some(Name::new(log)?))
    }

    /// Signs a version-1 record, bound to no log. Logs no longer take new
    /// ones (`unbound_record`); this exists so tests and tools can make the
    /// entries older logs hold.
    pub fn sign_version_1(&self, key: &SignerKey) -> Result<SignedRecord, SchemaError> {
        self.sign_for(key, None)
    }

    fn sign_for(&self, key: &SignerKey, log: Option<Name>) -> Result<SignedRecord, SchemaError> {
        let vkey = key.verifier();
        if vkey.key_type() != KeyType::Ed25519 {
            return Err(SchemaError::BadKey(format!(
                "{vkey} is not an Ed25519 note key (type 0x01)"
            )));
        }
        let signer = Signer {
            name: Name::new(vkey.name().as_str())?,
            key_id: vkey.id(),
        };
        let unsigned = encode(self, &signer, log.as_ref(), None, 1024)?;
        let mut message = Vec::with_capacity(SIGNATURE_DOMAIN.len() + unsigned.bytes.len());
        message.extend_from_slice(SIGNATURE_DOMAIN);
        message.extend_from_slice(&unsigned.bytes);
        let signature = key.sign_raw(&message);
        let encoded = encode(self, &signer, log.as_ref(), Some(&signature), 1024)?;
        if encoded.bytes.len() > MAX_RECORD_SIZE {
            return Err(SchemaError::TooLarge(encoded.bytes.len()));
        }
        Ok(SignedRecord {
            record: self.clone(),
            signer,
            log,
            signature,
            bytes: encoded.bytes,
            sig_start: encoded.sig_start,
            sig_end: encoded.sig_end,
        })
    }
}

struct Encoded {
    bytes: Vec<u8>,
    sig_start: usize,
    sig_end: usize,
}

/// The canonical encoding, written member by member in sorted order; the
/// `signature` member (with its leading comma) sits at `sig_start..sig_end`.
/// `capacity`: the expected length (a parse knows it exactly).
///
/// The body and signer are written straight from their `Serialize` impls
/// ([`canonical::Encoder`]): the same bytes as `serde_json::to_value` and
/// [`canonical::write`], and the same errors (`Malformed` where `to_value`
/// would fail, `NonCanonical` where `write` would refuse), at about a
/// quarter of the cost.
fn encode(
    record: &Record,
    signer: &Signer,
    log: Option<&Name>,
    signature: Option<&[u8; 64]>,
    capacity: usize,
) -> Result<Encoded, SchemaError> {
    let fail = |e: EncodeError| match e {
        EncodeError::Serialize(m) => SchemaError::Malformed(m),
        EncodeError::NonCanonical(m) => SchemaError::NonCanonical(m),
    };
    let mut out = Encoder::with_capacity(capacity);
    out.raw(b"{\"body\":");
    record.body.write_canonical(&mut out).map_err(fail)?;
    out.raw(b",\"created\":");
    out.value(&record.created).map_err(fail)?;
    out.raw(b",\"kind\":");
    out.string(record.kind().as_str());
    if let Some(log) = log {
        out.raw(b",\"log\":");
        out.string(log.as_str());
    }
    let sig_start = out.len();
    if let Some(sig) = signature {
        let mut hex = [0u8; 128];
        // 128 bytes hold the 64 bytes' hex exactly: this cannot fail.
        hex::encode_to_slice(sig, &mut hex).map_err(|e| SchemaError::Malformed(e.to_string()))?;
        out.raw(b",\"signature\":\"");
        out.raw(&hex);
        out.raw(b"\"");
    }
    let sig_end = out.len();
    out.raw(b",\"signer\":");
    out.value(signer).map_err(fail)?;
    out.raw(b",\"version\":");
    let version = if log.is_some() { SCHEMA_VERSION } else { 1 };
    out.value(&version).map_err(fail)?;
    out.raw(b"}");
    Ok(Encoded {
        bytes: out.into_bytes(),
        sig_start,
        sig_end,
    })
}

// ---------------------------------------------------------------------------
// Signed records

/// A signed record: the log entry. Only [`SignedRecord::parse`] and
/// [`Record::sign`] make one, so every value is canonical, within the size
/// limit and valid under the context-free rules. Its signature is checked
/// separately ([`SignedRecord::verify_signature`]) because that needs the
/// signer's registered key.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedRecord {
    record: Record,
    signer: Signer,
    /// The log the record is bound to (version 2); `None` for version 1.
    log: Option<Name>,
    signature: [u8; 64],
    bytes: Vec<u8>,
    sig_start: usize,
    sig_end: usize,
}

impl fmt::Debug for SignedRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedRecord")
            .field("kind", &self.kind())
            .field("signer", &self.signer.to_string())
            .field("created", &self.record.created.to_string())
            .field("body", &self.record.body)
            .finish()
    }
}

impl SignedRecord {
    /// Parses untrusted bytes: at most 65535 bytes of canonical JSON, schema
    /// version 2 (or 1, which has no `log` member), a known kind, no unknown
    /// or missing fields, every field well-formed, and the context-free
    /// rules. Does not check the signature, nor which log it is bound to
    /// ([`SignedRecord::check_log`]).
    pub fn parse(bytes: &[u8]) -> Result<SignedRecord, SchemaError> {
        if bytes.len() > MAX_RECORD_SIZE {
            return Err(SchemaError::TooLarge(bytes.len()));
        }
        // Nearly every record parsed (at admission, by every reader of the
        // log) is canonical and valid: decoded straight into its types and
        // re-encoded, it is accepted when the bytes match. Anything else is
        // parsed again through a `Value`, the way whose error names the
        // problem (and whose precedence of problems) callers and tests know.
        // Both accept exactly the same records (the differential test in
        // `record/parse_tests.rs`).
        if let Some(record) = Self::parse_canonical(bytes) {
            return Ok(record);
        }
        Self::parse_explained(bytes)
    }

    /// The fast way: `Some` only for a canonical, valid record.
    fn parse_canonical(bytes: &[u8]) -> Option<SignedRecord> {
        let kind = kind_hint(bytes)?;
        // One UTF-8 check of the whole record: reading `str` spares the
        // reader one per string (a tenth of the parse, callgrind).
        let text = std::str::from_utf8(bytes).ok()?;
        let mut de = serde_json::Deserializer::from_str(text);
        let wire = WireSeed(kind).deserialize(&mut de).ok()?;
        de.end().ok()?;
        let log = match (wire.version, wire.log) {
            (1, None) => None,
            (SCHEMA_VERSION, Some(log)) => Some(log),
            _ => return None,
        };
        validate(wire.created, &wire.body).ok()?;
        let record = Record {
            created: wire.created,
            body: wire.body,
        };
        let encoded = encode(
            &record,
            &wire.signer,
            log.as_ref(),
            Some(&wire.signature),
            bytes.len(),
        )
        .ok()?;
        (encoded.bytes == bytes).then_some(SignedRecord {
            record,
            signer: wire.signer,
            log,
            signature: wire.signature,
            bytes: encoded.bytes,
            sig_start: encoded.sig_start,
            sig_end: encoded.sig_end,
        })
    }

    /// The general way, through a `serde_json::Value`: the verdict for
    /// anything [`SignedRecord::parse_canonical`] does not accept.
    fn parse_explained(bytes: &[u8]) -> Result<SignedRecord, SchemaError> {
        if bytes.len() > MAX_RECORD_SIZE {
            return Err(SchemaError::TooLarge(bytes.len()));
        }
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| SchemaError::Malformed(format!("not JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(SchemaError::Malformed("a record is a JSON object".into()));
        };
        let version = match map.get("version") {
            None => return Err(SchemaError::MissingField("version".into())),
            Some(Value::Number(n)) => {
                // A non-integer is left to the canonical check below.
                if let Some(v) = n.as_u64().filter(|v| !SCHEMA_VERSIONS_READ.contains(v)) {
                    return Err(SchemaError::UnknownVersion(v.to_string()));
                }
                if let Some(v) = n.as_i64().filter(|v| *v < 0) {
                    return Err(SchemaError::UnknownVersion(v.to_string()));
                }
                n.as_u64().unwrap_or(SCHEMA_VERSION)
            }
            Some(_) => return Err(SchemaError::Malformed("version must be an integer".into())),
        };
        // The typed re-encoding at the end is canonical JSON, so bytes
        // equal to it are canonical too: the generic check only explains a
        // failure, and its verdict comes first, as it always has (it costs
        // an encoding of every record otherwise).
        Self::parse_fields(bytes, map, version).map_err(|e| non_canonical(bytes).unwrap_or(e))
    }

    /// [`SignedRecord::parse`] from the top-level object on.
    fn parse_fields(
        bytes: &[u8],
        mut map: serde_json::Map<String, Value>,
        version: u64,
    ) -> Result<SignedRecord, SchemaError> {
        if let Some(k) = map
            .keys()
            .find(|k| !TOP_FIELDS.contains(&k.as_str()) || (version == 1 && *k == "log"))
        {
            return Err(SchemaError::UnknownField(clip(k)));
        }
        let mut take = |name: &str| {
            map.remove(name)
                .ok_or_else(|| SchemaError::MissingField(name.into()))
        };
        let kind = match take("kind")? {
            Value::String(s) => Kind::from_str(&s)?,
            _ => return Err(SchemaError::Malformed("kind must be a string".into())),
        };
        let created = match take("created")? {
            Value::String(s) => Timestamp::parse(&s)?,
            _ => return Err(SchemaError::Malformed("created must be a string".into())),
        };
        let signature = match take("signature")? {
            Value::String(s) => parse_signature_hex(&s).map_err(SchemaError::Malformed)?,
            _ => return Err(SchemaError::Malformed("signature must be a string".into())),
        };
        let signer: Signer =
            serde_json::from_value(take("signer")?).map_err(|e| SchemaError::from_serde(&e))?;
        let log = match version {
            1 => None,
            _ => Some(match take("log")? {
                Value::String(s) => Name::new(&s)?,
                _ => return Err(SchemaError::Malformed("log must be a string".into())),
            }),
        };
        let body = Body::from_value(kind, take("body")?)?;
        validate(created, &body)?;
        let record = Record { created, body };
        let encoded = encode(
            &record,
            &signer,
            log.as_ref(),
            Some(&signature),
            bytes.len(),
        )?;
        if encoded.bytes != bytes {
            return Err(SchemaError::NonCanonical(format!(
                "{}; sets must be sorted and without repeats, and an absent optional field is omitted, not null",
                first_difference(bytes, &encoded.bytes)
            )));
        }
        Ok(SignedRecord {
            record,
            signer,
            log,
            signature,
            bytes: encoded.bytes,
            sig_start: encoded.sig_start,
            sig_end: encoded.sig_end,
        })
    }

    /// The canonical bytes: exactly the log entry.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The canonical bytes, copied: exactly the log entry.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    /// The entry's RFC 6962 leaf hash, SHA-256(0x00 || bytes): what other
    /// records use to refer to it.
    pub fn leaf_hash(&self) -> Hash {
        leaf_hash(&self.bytes)
    }

    /// The schema version: 2, or 1 for a record bound to no log.
    pub fn version(&self) -> u64 {
        if self.log.is_some() {
            SCHEMA_VERSION
        } else {
            1
        }
    }

    /// The origin of the log the record is bound to (`None`: version 1).
    pub fn log(&self) -> Option<&str> {
        self.log.as_ref().map(Name::as_str)
    }

    /// Checks that the record may enter the log whose origin is `origin`:
    /// it names that log (`wrong_log`) and is not a version-1 record,
    /// which names none (`unbound_record`).
    pub fn check_log(&self, origin: &str) -> Result<(), SchemaError> {
        match self.log() {
            None => Err(SchemaError::UnboundRecord(SCHEMA_VERSION)),
            Some(l) if l != origin => Err(SchemaError::WrongLog {
                record_log: l.to_string(),
                log: origin.to_string(),
            }),
            Some(_) => Ok(()),
        }
    }

    /// Checks that a record read from the log with `origin` belongs there:
    /// a version-2 record must name it; a version-1 record (from before
    /// records were bound) is accepted as the log holds it.
    pub fn check_held_by(&self, origin: &str) -> Result<(), SchemaError> {
        match self.log() {
            None => Ok(()),
            Some(_) => self.check_log(origin),
        }
    }

    /// The record (creation time and body).
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// The kind.
    pub fn kind(&self) -> Kind {
        self.record.kind()
    }

    /// Who signed it (key name and key ID); check with [`SignedRecord::verify_signature`].
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// When the signer says it created the record.
    pub fn created(&self) -> DateTime<Utc> {
        self.record.created()
    }

    /// The typed body.
    pub fn body(&self) -> &Body {
        &self.record.body
    }

    /// The Ed25519 signature.
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }

    /// The message the signature is over: [`SIGNATURE_DOMAIN`] followed by
    /// the canonical encoding of the record without its `signature` member.
    pub fn signed_message(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(SIGNATURE_DOMAIN.len() + self.bytes.len());
        m.extend_from_slice(SIGNATURE_DOMAIN);
        m.extend_from_slice(&self.bytes[..self.sig_start]);
        m.extend_from_slice(&self.bytes[self.sig_end..]);
        m
    }

    /// Checks the signature under `key`, which must be the record's signer
    /// (same name and key ID) and an Ed25519 note key, under the record
    /// signature rule of [`crate::signature`] (canonical, not-small-order
    /// points, canonical S, the cofactored equation). Many records at once:
    /// [`SignedRecord::signature_check`] and [`crate::signature::verify_batch`].
    pub fn verify_signature(&self, key: &VerifierKey) -> Result<(), SchemaError> {
        self.signature_check(key)?.verify()
    }

    /// What [`SignedRecord::verify_signature`] checks, as a
    /// [`SignatureCheck`] to verify alone or in a batch; refuses here a key
    /// that is not the record's signer or not an Ed25519 note key.
    pub fn signature_check(&self, key: &VerifierKey) -> Result<SignatureCheck, SchemaError> {
        if !self.signer.is(key) {
            return Err(SchemaError::SignerMismatch(format!(
                "record is signed by {}, not by {}+{}",
                self.signer,
                key.name(),
                key.id()
            )));
        }
        if key.key_type() != KeyType::Ed25519 {
            return Err(SchemaError::SignerMismatch(format!(
                "{key} is not an Ed25519 note key"
            )));
        }
        Ok(SignatureCheck::new(
            key,
            self.signed_message(),
            self.signature,
        ))
    }

    /// The earlier entries this record refers to.
    pub fn references(&self) -> Vec<EntryRef> {
        self.body().references()
    }

    /// Checks this record's references for a log about to store it at
    /// `own_index`: each must point before it, and `leaf_hash_at` (the log's
    /// stored leaf hash of an earlier index) must give the named leaf hash.
    pub fn check_references(
        &self,
        own_index: LeafIndex,
        mut leaf_hash_at: impl FnMut(LeafIndex) -> Option<Hash>,
    ) -> Result<(), SchemaError> {
        for r in self.references() {
            if r.index >= own_index {
                return Err(SchemaError::ReferenceNotBackwards {
                    reference: r.index.0,
                    index: own_index.0,
                });
            }
            match leaf_hash_at(r.index) {
                None => return Err(SchemaError::ReferenceUnknown(r.index.0)),
                Some(h) if h != r.leaf_hash => {
                    return Err(SchemaError::ReferenceHashMismatch { index: r.index.0 })
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The provider's key name a request or emergency is addressed to.
    pub fn provider(&self) -> Option<&str> {
        self.body().provider().map(Name::as_str)
    }

    /// Start of a request's or emergency's validity window.
    pub fn valid_from(&self) -> Option<DateTime<Utc>> {
        self.body().validity().map(|v| v.0)
    }

    /// End of a request's or emergency's validity window.
    pub fn valid_until(&self) -> Option<DateTime<Utc>> {
        self.body().validity().map(|v| v.1)
    }

    /// A request's or emergency's sealed-until time (or the new one an extension sets).
    pub fn sealed_until(&self) -> Option<DateTime<Utc>> {
        self.body().sealed_until()
    }

    /// An emergency's ratify-by deadline.
    pub fn ratify_by(&self) -> Option<DateTime<Utc>> {
        self.body().ratify_by()
    }

    /// A request's or emergency's number of targets.
    pub fn target_count(&self) -> Option<u32> {
        self.body().target_commitments().map(|t| t.len() as u32)
    }

    /// The record as a JSON value (for APIs that embed it).
    pub fn to_json_value(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
}

impl Serialize for SignedRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json_value().serialize(s)
    }
}

// ---------------------------------------------------------------------------
// Decoding a canonical record straight from its bytes

/// The kind a canonical record names: its last `,"kind":"` (only `log`,
/// `signature`, `signer` and `version` follow the `kind` member, and no
/// string can hold those bytes: a `"` inside one is escaped). A hint: the
/// decoding checks it against the `kind` member it reads, and the body is
/// decoded as it.
fn kind_hint(bytes: &[u8]) -> Option<Kind> {
    const KEY: &[u8] = b",\"kind\":\"";
    // Backwards from the end, looking at the rare `k` first: about 300
    // bytes follow the member.
    let mut end = bytes.len();
    let at = loop {
        let k = bytes[..end].iter().rposition(|&b| b == b'k')?;
        match k.checked_sub(2) {
            Some(i) if bytes[i..].starts_with(KEY) => break i + KEY.len(),
            Some(_) => end = k,
            None => return None,
        }
    };
    let rest = bytes.get(at..)?;
    let len = rest.iter().position(|&b| b == b'"')?;
    let name = std::str::from_utf8(&rest[..len]).ok()?;
    Kind::ALL.into_iter().find(|k| k.as_str() == name)
}

/// A record's members, decoded straight from canonical bytes.
struct Wire {
    body: Body,
    created: Timestamp,
    log: Option<Name>,
    signature: [u8; 64],
    signer: Signer,
    version: u64,
}

/// The member names of a record (anything else is refused).
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum WireField {
    Body,
    Created,
    Kind,
    Log,
    Signature,
    Signer,
    Version,
}

/// Decodes a record whose body is of the kind given (the hint), failing
/// on the first thing amiss: the caller then asks the general parse why.
struct WireSeed(Kind);

impl<'de> DeserializeSeed<'de> for WireSeed {
    type Value = Wire;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Wire, D::Error> {
        d.deserialize_map(self)
    }
}

/// A body of a given kind.
struct BodySeed(Kind);

impl<'de> DeserializeSeed<'de> for BodySeed {
    type Value = Body;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Body, D::Error> {
        Body::deserialize_as(self.0, d)
    }
}

/// A string member checked in place, without a `String` of its own: the
/// `kind` (which must be the hint) and the `signature` (hex).
struct InPlace<F>(F);

impl<'de, T, F: FnOnce(&str) -> Option<T>> DeserializeSeed<'de> for InPlace<F> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, T, F: FnOnce(&str) -> Option<T>> Visitor<'de> for InPlace<F> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.0)(v).ok_or_else(|| E::custom("refused"))
    }
}

impl<'de> Visitor<'de> for WireSeed {
    type Value = Wire;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a record")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Wire, A::Error> {
        fn once<T, E: de::Error>(slot: &mut Option<T>, value: T) -> Result<(), E> {
            match slot.replace(value) {
                None => Ok(()),
                Some(_) => Err(E::custom("duplicate member")),
            }
        }
        let kind = self.0;
        let mut body = None;
        let mut created = None;
        let mut seen_kind = None;
        let mut log = None;
        let mut signature = None;
        let mut signer = None;
        let mut version = None;
        while let Some(field) = map.next_key::<WireField>()? {
            match field {
                WireField::Body => once(&mut body, map.next_value_seed(BodySeed(kind))?)?,
                WireField::Created => once(&mut created, map.next_value::<Timestamp>()?)?,
                WireField::Kind => {
                    let named = map.next_value_seed(InPlace(|s: &str| Some(s == kind.as_str())))?;
                    if !named {
                        return Err(de::Error::custom("not the kind the body was read as"));
                    }
                    once(&mut seen_kind, named)?
                }
                WireField::Log => once(&mut log, map.next_value::<Name>()?)?,
                WireField::Signature => {
                    let sig =
                        map.next_value_seed(InPlace(|s: &str| parse_signature_hex(s).ok()))?;
                    once(&mut signature, sig)?
                }
                WireField::Signer => once(&mut signer, map.next_value::<Signer>()?)?,
                WireField::Version => once(&mut version, map.next_value::<u64>()?)?,
            }
        }
        let missing = || de::Error::custom("missing member");
        seen_kind.ok_or_else(missing)?;
        Ok(Wire {
            body: body.ok_or_else(missing)?,
            created: created.ok_or_else(missing)?,
            log,
            signature: signature.ok_or_else(missing)?,
            signer: signer.ok_or_else(missing)?,
            version: version.ok_or_else(missing)?,
        })
    }
}

/// Why `bytes` (a JSON object) are not canonical JSON, if they are not.
fn non_canonical(bytes: &[u8]) -> Option<SchemaError> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    match canonical::to_vec(&value) {
        Ok(canon) if canon == bytes => None,
        Ok(canon) => Some(SchemaError::NonCanonical(first_difference(bytes, &canon))),
        Err(e) => Some(SchemaError::NonCanonical(e)),
    }
}

fn first_difference(got: &[u8], canonical: &[u8]) -> String {
    let at = got
        .iter()
        .zip(canonical)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(canonical.len()));
    format!(
        "differs from the canonical encoding at byte {at} (canonical is {} bytes, input {})",
        canonical.len(),
        got.len()
    )
}

#[cfg(test)]
mod parse_tests;
