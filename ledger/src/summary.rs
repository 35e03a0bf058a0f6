//! What one entry says, read from its record once: the [`Summary`] every
//! reader (rules, lists, filters, the gate) works from.

use chrono::{DateTime, Datelike as _, NaiveDate, Utc};
use daylight_core::Hash;
use daylight_schemas::content_policy::RequestContent;
use daylight_schemas::{
    Body, DataCategory, Decision, IssuerType, Jurisdiction, Kind, Offence, RefusalReason, ShareRef,
    SignedRecord,
};

use crate::status::{Facts, Status, StatusSet};

/// What the ledger keeps of one entry. Fields that do not apply to its kind
/// are empty. References are the record's own; which of them are valid
/// (an earlier entry with that leaf hash) the ledger decides when it adds
/// the entry ([`Summary::about`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The entry's index.
    pub index: u64,
    /// Its kind, or `None` if the bytes do not parse as a record.
    pub kind: Option<Kind>,
    /// The record's format version (0: unreadable).
    pub version: u64,
    /// When the signer made it.
    pub created: Option<DateTime<Utc>>,
    /// The signer's key name.
    pub signer: String,
    /// Jurisdiction (requests and emergencies; for an outcome report or a
    /// refusal read from the ledger, that of the authorisation it is about).
    pub jurisdiction: Option<String>,
    /// Legal basis (requests and emergencies).
    pub legal_basis: Option<String>,
    /// The provider asked (requests and emergencies), or the provider that
    /// signed it (refusals and published policies).
    pub provider: Option<String>,
    /// Data categories asked for (requests and emergencies), in
    /// [`DataCategory::ALL`] order.
    pub categories: Vec<&'static str>,
    /// Sealed-until (requests and emergencies), or the new one (extensions).
    pub sealed_until: Option<DateTime<Utc>>,
    /// The sealed-until date in force: the entry's own, or a later
    /// extension's.
    pub sealed_in_force: Option<DateTime<Utc>>,
    /// The ratification deadline (emergencies).
    pub ratify_by: Option<DateTime<Utc>>,
    /// A ratification's decision.
    pub decision: Option<Decision>,
    /// Indexes of the earlier entries the record refers to, as it names them.
    pub references: Vec<u64>,
    /// The entry the record is about (its first reference), if that
    /// reference is valid: an earlier entry with the leaf hash it names.
    pub about: Option<u64>,
    /// A later outcome report's second reference (`amends`), if valid.
    pub amends: Option<u64>,
    /// The authorisation (request or emergency) whose story this entry is
    /// part of: itself for an authorisation; for an entry about one (a
    /// ratification, a release, a disclosure of a ratification...), that
    /// authorisation. The rules read an authorisation with every entry of
    /// its story.
    pub root: Option<u64>,
    /// What later entries said about it ([`crate::status::flags`] bits).
    pub flags: u8,
    /// Leaf hash.
    pub leaf_hash: Hash,
    /// What an outcome report says (outcome reports only).
    pub outcome: Option<OutcomeFacts>,
    /// An outcome report's numbers (outcome reports only).
    pub outcome_numbers: Option<OutcomeNumbers>,
    /// Why the provider refused (refusals only).
    pub reason: Option<RefusalReason>,
    /// The agency that signed the request a refusal is about (refusals
    /// read from the ledger).
    pub request_agency: Option<String>,
    /// The content lines a provider published (policies only).
    pub policy: Vec<String>,
    /// The case reference (requests and emergencies).
    pub case_reference: Option<String>,
    /// The offence code (requests and emergencies).
    pub offence: Option<&'static str>,
    /// The issuing authority's type (requests and emergencies).
    pub issuer: Option<&'static str>,
    /// Targets authorised (requests and emergencies).
    pub target_count: Option<u32>,
    /// Start of the validity window (requests and emergencies).
    pub valid_from: Option<DateTime<Utc>>,
    /// End of the validity window (requests and emergencies).
    pub valid_until: Option<DateTime<Utc>>,
    /// When access was released (releases).
    pub released_at: Option<DateTime<Utc>>,
    /// Targets released (releases).
    pub targets_released: Option<u32>,
    /// The share a custodian released (a custodian's share release under
    /// threshold custody; `None` for a provider's release). Only a
    /// registered custodian may sign a release with a share, only a
    /// provider one without, so this also tells the signer's role.
    pub share: Option<ShareRef>,
}

/// What an outcome report says, as lists and counts filter on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutcomeFacts {
    /// Whether any data was obtained.
    pub data_obtained: bool,
    /// Whether encryption was encountered.
    pub encryption_encountered: bool,
    /// Whether encryption kept the plain text out of reach.
    pub encryption_prevented_access: bool,
    /// Whether it is the latest report on its authorisation: a later
    /// outcome report on the same authorisation replaces it. `true` for a
    /// report read alone.
    pub latest: bool,
}

/// An outcome report's counts (US Wiretap Report terms).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutcomeNumbers {
    /// Communications intercepted.
    pub communications_intercepted: u32,
    /// Incriminating communications.
    pub incriminating_communications: u32,
    /// Persons intercepted.
    pub persons_intercepted: u32,
    /// Arrests.
    pub arrests: u32,
    /// Convictions.
    pub convictions: u32,
}

impl OutcomeNumbers {
    /// As stored: the five numbers separated by `;`.
    pub(crate) fn to_text(self) -> String {
        format!(
            "{};{};{};{};{}",
            self.communications_intercepted,
            self.incriminating_communications,
            self.persons_intercepted,
            self.arrests,
            self.convictions
        )
    }

    /// From [`OutcomeNumbers::to_text`].
    pub(crate) fn from_text(text: &str) -> Option<OutcomeNumbers> {
        let mut n = text.split(';').map(|x| x.parse::<u32>().ok());
        let mut next = || n.next().flatten();
        Some(OutcomeNumbers {
            communications_intercepted: next()?,
            incriminating_communications: next()?,
            persons_intercepted: next()?,
            arrests: next()?,
            convictions: next()?,
        })
    }
}

/// The bits of [`OutcomeFacts`] in the ledger's `outcome` column (NULL for
/// entries that are no outcome report, so no outcome condition matches them).
pub mod outcome_bits {
    /// Data was obtained.
    pub const DATA_OBTAINED: i64 = 1;
    /// Encryption was encountered.
    pub const ENCOUNTERED: i64 = 2;
    /// Encryption prevented access.
    pub const PREVENTED: i64 = 4;
    /// The latest report on its authorisation.
    pub const LATEST: i64 = 8;
}

impl OutcomeFacts {
    /// As the ledger stores them ([`outcome_bits`]).
    pub fn bits(self) -> i64 {
        use outcome_bits::*;
        let b = |x: bool, bit: i64| if x { bit } else { 0 };
        b(self.data_obtained, DATA_OBTAINED)
            | b(self.encryption_encountered, ENCOUNTERED)
            | b(self.encryption_prevented_access, PREVENTED)
            | b(self.latest, LATEST)
    }

    /// From [`OutcomeFacts::bits`].
    pub fn from_bits(bits: i64) -> OutcomeFacts {
        use outcome_bits::*;
        OutcomeFacts {
            data_obtained: bits & DATA_OBTAINED != 0,
            encryption_encountered: bits & ENCOUNTERED != 0,
            encryption_prevented_access: bits & PREVENTED != 0,
            latest: bits & LATEST != 0,
        }
    }
}

impl Summary {
    /// An entry whose bytes are not a record.
    pub fn unreadable(index: u64, leaf_hash: Hash) -> Summary {
        Summary {
            index,
            kind: None,
            version: 0,
            created: None,
            signer: String::new(),
            jurisdiction: None,
            legal_basis: None,
            provider: None,
            categories: Vec::new(),
            sealed_until: None,
            sealed_in_force: None,
            ratify_by: None,
            decision: None,
            references: Vec::new(),
            about: None,
            amends: None,
            root: None,
            flags: 0,
            leaf_hash,
            outcome: None,
            outcome_numbers: None,
            reason: None,
            request_agency: None,
            policy: Vec::new(),
            case_reference: None,
            offence: None,
            issuer: None,
            target_count: None,
            valid_from: None,
            valid_until: None,
            released_at: None,
            targets_released: None,
            share: None,
        }
    }

    /// The summary of entry `index` with these bytes (references not yet
    /// checked: [`Summary::about`] and [`Summary::root`] are set when the
    /// ledger adds it).
    pub fn of(index: u64, data: &[u8]) -> Summary {
        match SignedRecord::parse(data) {
            Ok(r) => Summary::of_parsed(index, &r, daylight_core::leaf_hash(data)),
            Err(_) => Summary::unreadable(index, daylight_core::leaf_hash(data)),
        }
    }

    /// The summary of entry `index`, the parsed `record`.
    pub fn of_record(index: u64, r: &SignedRecord) -> Summary {
        Summary::of_parsed(index, r, r.leaf_hash())
    }

    /// [`Summary::of_record`] when the leaf hash is known (the bytes' hash):
    /// [`SignedRecord::leaf_hash`] encodes the record again to hash it.
    pub fn of_parsed(index: u64, r: &SignedRecord, leaf_hash: Hash) -> Summary {
        let mut s = Summary::unreadable(index, leaf_hash);
        s.kind = Some(r.kind());
        s.version = r.version();
        s.created = Some(r.created());
        s.signer = r.signer().name.to_string();
        s.references = r.references().iter().map(|e| e.index.get()).collect();
        s.sealed_until = r.body().sealed_until();
        s.ratify_by = r.body().ratify_by();
        s.provider = r.provider().map(str::to_owned);
        let content = RequestContent::of(r);
        match r.body() {
            Body::Request(b) => {
                s.legal_basis = Some(b.legal_basis.to_string());
                s.case_reference = Some(b.case_reference.to_string());
            }
            Body::Emergency(b) => {
                s.legal_basis = Some(b.legal_basis.to_string());
                s.case_reference = Some(b.case_reference.to_string());
            }
            Body::Ratification(b) => s.decision = Some(b.decision),
            Body::Release(b) => {
                s.released_at = Some(b.released_at.get());
                s.targets_released = Some(b.targets_released);
                s.share = b.share;
            }
            Body::Refusal(b) => {
                s.reason = Some(b.reason);
                s.provider = Some(s.signer.clone());
            }
            Body::Policy(b) => {
                s.policy = b.lines.iter().map(|l| l.as_str().to_owned()).collect();
                s.provider = Some(s.signer.clone());
            }
            Body::Outcome(b) => {
                s.outcome = Some(OutcomeFacts {
                    data_obtained: b.data_obtained,
                    encryption_encountered: b.encryption_encountered,
                    encryption_prevented_access: b.encryption_prevented_access,
                    latest: true,
                });
                s.outcome_numbers = Some(OutcomeNumbers {
                    communications_intercepted: b.communications_intercepted,
                    incriminating_communications: b.incriminating_communications,
                    persons_intercepted: b.persons_intercepted,
                    arrests: b.arrests,
                    convictions: b.convictions,
                });
            }
            _ => {}
        }
        if let Some(c) = content {
            s.jurisdiction = Some(c.jurisdiction.to_string());
            s.categories = categories_of(
                c.categories
                    .iter()
                    .fold(0, |m, c| m | category_bit(c.as_str())),
            );
            s.offence = Some(c.offence.as_str());
            s.issuer = Some(c.issuer.as_str());
            s.target_count = Some(c.targets);
            s.valid_from = Some(c.valid_from);
            s.valid_until = Some(c.valid_until);
        }
        if s.is_authorisation() {
            s.sealed_in_force = s.sealed_until;
        }
        s
    }

    /// Whether this is an authorisation (a request or an emergency).
    pub fn is_authorisation(&self) -> bool {
        matches!(self.kind, Some(Kind::Request | Kind::Emergency))
    }

    /// Whether this is a custodian's release of one key share (threshold
    /// custody), not a provider's release of access.
    pub fn is_share_release(&self) -> bool {
        self.kind == Some(Kind::Release) && self.share.is_some()
    }

    /// The [`crate::status::flags`] bit this entry sets on the entries it
    /// validly refers to. A custodian's share release sets none of its
    /// own: one share gives no access, so it counts only once enough
    /// shares of one key are logged ([`crate::status::flags::SHARES`],
    /// which the ledger sets from all of them).
    pub fn flag_bit(&self) -> u8 {
        if self.is_share_release() {
            0
        } else {
            crate::status::flags::of(self.kind, self.decision)
        }
    }

    /// The kind's name, or `unreadable`.
    pub fn kind_name(&self) -> &'static str {
        self.kind.map(Kind::as_str).unwrap_or("unreadable")
    }

    /// The leaf hash as 64 lower-case hex digits.
    pub fn leaf_hash_hex(&self) -> String {
        self.leaf_hash.to_hex()
    }

    /// What the statuses depend on at `now`.
    pub fn facts(&self, now: DateTime<Utc>) -> Facts {
        Facts::at(
            self.kind,
            self.flags,
            self.sealed_in_force,
            self.ratify_by,
            now,
        )
    }

    /// The statuses of an authorisation at `now`; empty for other kinds.
    pub fn status_set(&self, now: DateTime<Utc>) -> StatusSet {
        self.facts(now).statuses()
    }

    /// [`Summary::status_set`] in [`Status::ALL`] order.
    pub fn statuses(&self, now: DateTime<Utc>) -> Vec<Status> {
        self.status_set(now).to_vec()
    }

    /// What a provider's content lines look at, for an authorisation (the
    /// one evaluation in `daylight_schemas::content_policy`).
    pub fn content(&self) -> Option<RequestContent> {
        Some(RequestContent {
            jurisdiction: Jurisdiction::new(self.jurisdiction.as_deref()?).ok()?,
            issuer: self.issuer?.parse::<IssuerType>().ok()?,
            categories: self
                .categories
                .iter()
                .filter_map(|c| c.parse::<DataCategory>().ok())
                .collect(),
            offence: self.offence?.parse::<Offence>().ok()?,
            targets: self.target_count?,
            valid_from: self.valid_from?,
            valid_until: self.valid_until?,
        })
        .filter(|_| self.is_authorisation())
    }
}

/// A data category's bit in the ledger's `categories` mask (0 if unknown).
pub fn category_bit(c: &str) -> i64 {
    DataCategory::ALL
        .iter()
        .position(|x| x.as_str() == c)
        .and_then(|i| 1i64.checked_shl(u32::try_from(i).ok()?))
        .unwrap_or(0)
}

/// The categories of a mask, in [`DataCategory::ALL`] order.
pub fn categories_of(mask: i64) -> Vec<&'static str> {
    DataCategory::ALL
        .iter()
        .enumerate()
        .filter(|(i, _)| u32::try_from(*i).is_ok_and(|i| i < 63 && mask & (1 << i) != 0))
        .map(|(_, c)| c.as_str())
        .collect()
}

/// Days since 1970-01-01 of a UTC date.
pub fn epoch_day(d: NaiveDate) -> i64 {
    i64::from(d.num_days_from_ce()) - 719_163
}

/// A month as a number: year * 12 + month (0 to 11).
pub fn month_key(t: DateTime<Utc>) -> i64 {
    i64::from(t.year()) * 12 + i64::from(t.month0())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_masks_round_trip() {
        let all: Vec<&str> = DataCategory::ALL.iter().map(|c| c.as_str()).collect();
        let mask = all.iter().fold(0, |m, c| m | category_bit(c));
        assert_eq!(categories_of(mask), all);
        assert_eq!(category_bit("nonsense"), 0);
        assert!(categories_of(0).is_empty());
    }

    #[test]
    fn epoch_days() {
        assert_eq!(epoch_day(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()), 0);
        assert_eq!(
            epoch_day(NaiveDate::from_ymd_opt(2024, 1, 10).unwrap()),
            19_732
        );
    }

    #[test]
    fn outcome_numbers_round_trip() {
        let n = OutcomeNumbers {
            communications_intercepted: 1,
            incriminating_communications: 2,
            persons_intercepted: 3,
            arrests: 4,
            convictions: 5,
        };
        assert_eq!(OutcomeNumbers::from_text(&n.to_text()), Some(n));
        assert_eq!(OutcomeNumbers::from_text("1;2"), None);
    }

    #[test]
    fn outcome_bits_round_trip() {
        for bits in 0..16 {
            assert_eq!(OutcomeFacts::from_bits(bits).bits(), bits);
        }
    }
}
