//! Entry verification: canonical parse and validation (schemas), the signer
//! registered for a role allowed to sign that kind in the log's own registry
//! at that point in the log, references to earlier entries, and the
//! signatures (Ed25519 batch verification, with a strict per-entry check of
//! any batch that fails to find which entries are bad).
//!
//! What the rules need of each entry is kept as a compact [`Fact`].

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use daylight_core::{LeafIndex, VerifierKey};
use daylight_ledger::{Added, Batch, Ledger, LedgerError, Prepared, Summary};
use daylight_schemas::content_policy::RequestContent;
use daylight_schemas::{
    Body, Decision, Kind, Registry, RegistryAction, RegistryError, Role, ShareRef, SignedRecord,
    SignerError,
};
use serde_json::json;

use crate::findings::{Category, Finding, Severity};

/// What the rules and the report need from a request or emergency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// Whether it is an emergency (else a request).
    pub emergency: bool,
    /// The provider's key name it is addressed to.
    pub provider: String,
    /// The case reference.
    pub case_reference: String,
    /// The jurisdiction code.
    pub jurisdiction: String,
    /// The legal basis.
    pub legal_basis: String,
    /// The offence code.
    pub offence: &'static str,
    /// The data category codes.
    pub categories: Vec<&'static str>,
    /// How many targets.
    pub target_count: u32,
    /// Start of the validity window.
    pub valid_from: DateTime<Utc>,
    /// End of the validity window.
    pub valid_until: DateTime<Utc>,
    /// Sealed until (before any extension).
    pub sealed_until: DateTime<Utc>,
    /// An emergency's ratification deadline.
    pub ratify_by: Option<DateTime<Utc>>,
    /// What a provider's content lines look at (jurisdiction, issuer type,
    /// categories, offence, targets, validity), to check releases and
    /// refusals against its published policy with the schemas crate's one
    /// evaluation.
    pub content: RequestContent,
}

/// An outcome's numbers (US Wiretap Report terms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The entry reported on.
    pub entry: Option<u64>,
    /// The earlier outcome it replaces.
    pub amends: Option<u64>,
    /// Encryption encountered.
    pub encryption_encountered: bool,
    /// Encryption prevented access.
    pub encryption_prevented_access: bool,
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

/// The kind-specific part of a [`Fact`]. References are `None` when the
/// entry's reference was invalid (reported as `entry_bad_reference`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FactBody {
    /// A request or emergency.
    Access(Box<Access>),
    /// A court's decision on an emergency.
    Ratification {
        /// The emergency entry.
        emergency: Option<u64>,
        /// Granted (else denied).
        granted: bool,
    },
    /// A seal extension.
    Extension {
        /// The entry extended.
        entry: Option<u64>,
        /// The new sealed-until.
        sealed_until: DateTime<Utc>,
    },
    /// A disclosure.
    Disclosure {
        /// The entry disclosed.
        entry: Option<u64>,
    },
    /// A provider's release receipt, or a custodian's for one share of a
    /// key (threshold custody).
    Release {
        /// The entry acted on.
        entry: Option<u64>,
        /// Targets released (1 for a share).
        targets: u32,
        /// When.
        released_at: DateTime<Utc>,
        /// The share a custodian released; `None` for a provider's release.
        share: Option<ShareRef>,
    },
    /// A withdrawal.
    Withdrawal {
        /// The entry withdrawn.
        entry: Option<u64>,
    },
    /// A provider's refusal on content.
    Refusal {
        /// The entry refused.
        entry: Option<u64>,
        /// The reason code.
        reason: &'static str,
    },
    /// A provider's published content lines.
    Policy {
        /// The lines as published.
        lines: Vec<String>,
    },
    /// An outcome report.
    Outcome(Box<Outcome>),
    /// A registry change.
    Registry,
}

/// One verified entry, as the rules see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fact {
    /// Leaf index.
    pub index: u64,
    /// Kind.
    pub kind: Kind,
    /// The signing key's name (the agency, court or provider).
    pub signer: String,
    /// The record's creation time.
    pub created: DateTime<Utc>,
    /// Kind-specific data.
    pub body: FactBody,
}

impl Fact {
    /// The fact the rules read of an entry the ledger holds (`None` for an
    /// entry that is not a record). References are the ledger's valid ones.
    pub fn of(s: &Summary) -> Option<Fact> {
        let kind = s.kind?;
        let access = || -> Option<Box<Access>> {
            Some(Box::new(Access {
                emergency: kind == Kind::Emergency,
                provider: s.provider.clone()?,
                case_reference: s.case_reference.clone()?,
                jurisdiction: s.jurisdiction.clone()?,
                legal_basis: s.legal_basis.clone()?,
                offence: s.offence?,
                categories: s.categories.clone(),
                target_count: s.target_count?,
                valid_from: s.valid_from?,
                valid_until: s.valid_until?,
                sealed_until: s.sealed_until?,
                ratify_by: s.ratify_by,
                content: s.content()?,
            }))
        };
        let body = match kind {
            Kind::Request | Kind::Emergency => FactBody::Access(access()?),
            Kind::Ratification => FactBody::Ratification {
                emergency: s.about,
                granted: s.decision == Some(Decision::Granted),
            },
            Kind::Extension => FactBody::Extension {
                entry: s.about,
                sealed_until: s.sealed_until?,
            },
            Kind::Disclosure => FactBody::Disclosure { entry: s.about },
            Kind::Release => FactBody::Release {
                entry: s.about,
                targets: s.targets_released?,
                released_at: s.released_at?,
                share: s.share,
            },
            Kind::Withdrawal => FactBody::Withdrawal { entry: s.about },
            Kind::Refusal => FactBody::Refusal {
                entry: s.about,
                reason: s.reason?.as_str(),
            },
            Kind::Policy => FactBody::Policy {
                lines: s.policy.clone(),
            },
            Kind::Outcome => {
                let o = s.outcome?;
                let n = s.outcome_numbers?;
                FactBody::Outcome(Box::new(Outcome {
                    entry: s.about,
                    amends: s.amends,
                    encryption_encountered: o.encryption_encountered,
                    encryption_prevented_access: o.encryption_prevented_access,
                    communications_intercepted: n.communications_intercepted,
                    incriminating_communications: n.incriminating_communications,
                    persons_intercepted: n.persons_intercepted,
                    arrests: n.arrests,
                    convictions: n.convictions,
                }))
            }
            Kind::Registry => FactBody::Registry,
        };
        Some(Fact {
            index: s.index,
            kind,
            signer: s.signer.clone(),
            created: s.created?,
            body,
        })
    }
}

/// Where [`EntryVerifier::push_batch`] puts the entries it read: a ledger
/// [`Batch`] (which answers each entry's bad references at once), or a
/// writer on another thread (which answers at the end).
pub trait EntrySink {
    /// Adds entries, in order; returns the additions answered now, with
    /// their entries' indexes.
    fn add(&mut self, entries: Vec<Prepared>) -> Result<Vec<(u64, Added)>, LedgerError>;
    /// Keeps a value with the ledger.
    fn set_meta(&mut self, key: &str, value: &str) -> Result<(), LedgerError>;
}

impl EntrySink for Batch<'_> {
    fn add(&mut self, entries: Vec<Prepared>) -> Result<Vec<(u64, Added)>, LedgerError> {
        let mut out = Vec::new();
        for p in entries {
            let index = p.index();
            let added = self.add_prepared(p)?;
            if added != Added::default() {
                out.push((index, added));
            }
        }
        Ok(out)
    }

    fn set_meta(&mut self, key: &str, value: &str) -> Result<(), LedgerError> {
        Batch::set_meta(self, key, value)
    }
}

/// The ledger key under which the first log-bound entry is noted.
const FIRST_BOUND: &str = "auditor.first_bound";

/// Verifies `entries` (a whole log, from index 0) into a ledger in memory;
/// returns their facts, in order, and the verification findings. For
/// tests and tools over small logs.
pub fn facts_of(
    log_key: VerifierKey,
    entries: &[&[u8]],
) -> Result<(Vec<Fact>, Vec<Finding>), LedgerError> {
    let mut ledger = Ledger::open(std::path::Path::new(":memory:"), "")?;
    let mut v = EntryVerifier::new(log_key, 0, 1);
    let mut batch = ledger.batch()?;
    let hashes: Vec<_> = entries
        .iter()
        .map(|e| daylight_core::leaf_hash(e))
        .collect();
    v.push_batch(&mut batch, entries, &hashes)?;
    batch.commit()?;
    let facts = ledger
        .range(0, v.len())?
        .iter()
        .filter_map(Fact::of)
        .collect();
    Ok((facts, v.findings))
}

/// What the registry is asked of an entry's signer: its key name and key
/// ID, the entry's kind, and the roles its body allows.
type SignerAsked = (String, u32, Kind, &'static [Role]);

/// A pending signature check.
struct SigJob {
    index: u64,
    key: VerifierKey,
    record: SignedRecord,
}

/// Walks the log's entries in order, keeping the registry as the log's own
/// registry entries define it at each point (one [`Registry`] model, shared
/// with the log server, the gate and the web view).
pub struct EntryVerifier {
    registry: Registry,
    /// What the registry said of each (signer, kind, roles allowed) since it
    /// last changed: `Registry::signer_for` scans every registration, and
    /// most entries come from a few keys between rare registry entries.
    signers: HashMap<SignerAsked, Result<VerifierKey, SignerError>>,
    /// The next entry's index.
    next: u64,
    /// Entries from this index on get their signatures checked.
    verify_from: u64,
    /// The first version-2 (log-bound) entry: from it on the log refuses
    /// version-1 records, so a later one is `entry_unbound_after_binding`.
    first_bound: Option<u64>,
    threads: usize,
    /// Findings so far.
    pub findings: Vec<Finding>,
    /// Signatures checked.
    pub signatures_checked: u64,
}

const MALFORMED: &str = "The log holds an entry that is not a valid Daylight record (not canonical, unknown fields, or breaking a validation rule). A log must refuse such records at submission.";
const UNKNOWN_SIGNER: &str = "The entry is signed by a key that the log's own registry did not list at that point in the log. A log must only accept records from registered keys.";
const WRONG_ROLE: &str = "The entry's signer is registered, but not for a role allowed to sign this kind of record (requests by agencies, ratifications and extensions by courts, releases by providers, registry entries by the log).";
const BAD_REFERENCE: &str = "The entry refers to an earlier entry by index and leaf hash, but no earlier entry has that index and hash.";
const BAD_SIGNATURE: &str = "The entry's signature does not verify under the key the log's registry lists for its signer: the log holds a record its signer did not sign.";
const SIGNER_REVOKED: &str = "The entry is signed by a key that the log's registry had already revoked or rotated out when the entry was added. Records a key signed before its revocation or rotation stay valid; after it, the key may no longer submit.";
const WRONG_LOG: &str = "The entry is a version-2 record bound to another log (its signed `log` member names another origin). A record is meant for the one log it names; a log must refuse records for others.";
const UNBOUND_AFTER_BINDING: &str = "The entry is a version-1 record (bound to no log), logged after the log's first version-2 record. Since it binds records to itself the log refuses new version-1 records, so it broke its own rule, or replays unbound records signed for another log. Version-1 entries from before the first version-2 one are read as the log holds them.";
const REGISTRY_NOT_BY_LOG: &str = "A registry entry does not verify under the log key current at its place in the log (after a rotation, only the new key may sign registry entries). Only the log writes its registry, so the log (or whoever holds a retired key) broke its own rules.";
const KEY_CHANGE_NOT_BY_OLD_KEY: &str = "A change of the log's own key is not signed by the key it replaces, or replaces a key that is not the current one. A reader follows the log's keys only through changes the old key signed; this one breaks the chain.";
const REGISTRY_INCONSISTENT: &str = "A registry entry does not fit the registry before it (revoking or rotating a key that is not registered and unrevoked, adding one twice, a rotation or quorum without its fields). Only the log writes its registry, so the log broke its own rules.";

impl EntryVerifier {
    /// A verifier for the log whose first key is `log_key` (the key the
    /// auditor trusts; later keys come only from rotation entries it signed);
    /// entry signatures are checked for entries from `verify_from` on
    /// (registry entries always, to follow the chain of log keys).
    pub fn new(log_key: VerifierKey, verify_from: u64, threads: usize) -> EntryVerifier {
        EntryVerifier {
            registry: Registry::new(log_key),
            signers: HashMap::new(),
            next: 0,
            verify_from,
            first_bound: None,
            threads: threads.max(1),
            findings: Vec::new(),
            signatures_checked: 0,
        }
    }

    /// A verifier that goes on after the entries `ledger` holds: the
    /// registry is replayed from the registry records it keeps (registry
    /// entries are few, so this costs nothing like reading the log), and
    /// the first log-bound entry is the one it noted.
    pub fn resume(
        log_key: VerifierKey,
        ledger: &Ledger,
        verify_from: u64,
        threads: usize,
    ) -> Result<EntryVerifier, LedgerError> {
        let mut v = EntryVerifier::new(log_key, verify_from, threads);
        for (index, bytes) in ledger.records(Kind::Registry)? {
            // Refused registry entries were findings when first read; the
            // registry stays as it was then, as it does now.
            if let Ok(record) = SignedRecord::parse(&bytes) {
                let _ = v.registry.apply(LeafIndex(index), &record);
            }
        }
        v.next = ledger.size()?;
        v.registry.seen_up_to(LeafIndex(v.next));
        v.first_bound = ledger
            .meta(FIRST_BOUND)?
            .and_then(|t| t.parse::<u64>().ok());
        Ok(v)
    }

    /// How many entries have been processed (the ledger's size).
    pub fn len(&self) -> u64 {
        self.next
    }

    /// Whether no entry has been processed.
    pub fn is_empty(&self) -> bool {
        self.next == 0
    }

    /// The registry as replayed from the entries processed so far.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Processes the next entries (in log order, starting at [`len`](Self::len)),
    /// given with their leaf hashes, and adds them to the ledger through
    /// `sink`, which checks their references (see [`EntryVerifier::bad_references`]
    /// for a sink that answers later).
    pub fn push_batch(
        &mut self,
        sink: &mut dyn EntrySink,
        entries: &[&[u8]],
        hashes: &[daylight_core::Hash],
    ) -> Result<(), LedgerError> {
        let first = self.len();
        // Parsing and what the ledger reads of each record, on every thread.
        let items: Vec<(u64, &[u8], daylight_core::Hash)> = entries
            .iter()
            .zip(hashes)
            .enumerate()
            .map(|(k, (d, h))| (first + k as u64, *d, *h))
            .collect();
        let parsed = par_map(&items, self.threads, |(index, data, hash)| {
            let record = SignedRecord::parse(data);
            let prepared = Prepared::new(*index, data, *hash, record.as_ref().ok());
            (record, prepared)
        });
        let mut jobs = Vec::new();
        let bound_before = self.first_bound;
        let mut prepared = Vec::with_capacity(parsed.len());
        for (result, p) in parsed {
            let index = p.index();
            self.next = index + 1;
            prepared.push(p);
            match result {
                Err(e) => {
                    self.findings.push(
                        Finding::new(
                            "entry_malformed",
                            Category::Entry,
                            Severity::Critical,
                            format!("entry {index} is not a valid record: {e}"),
                            MALFORMED,
                            vec![index],
                        )
                        .with_details(json!({ "error_code": e.code(), "error": e.to_string() })),
                    );
                }
                Ok(record) => {
                    if let Some(job) = self.admit(index, record) {
                        if index >= self.verify_from {
                            jobs.push(job);
                        }
                    }
                }
            }
        }
        for (index, added) in sink.add(prepared)? {
            self.bad_references(index, &added.bad_references);
        }
        if self.first_bound != bound_before {
            if let Some(first) = self.first_bound {
                sink.set_meta(FIRST_BOUND, &first.to_string())?;
            }
        }
        self.signatures_checked += jobs.len() as u64;
        for index in verify_parallel(&jobs, self.threads) {
            self.findings.push(Finding::new(
                "entry_bad_signature",
                Category::Integrity,
                Severity::Critical,
                format!("entry {index} has a signature that does not verify"),
                BAD_SIGNATURE,
                vec![index],
            ));
        }
        Ok(())
    }

    /// Findings for references that name no earlier entry with that leaf
    /// hash (the ledger decides which are valid); called by
    /// [`EntryVerifier::push_batch`] with what its sink answered, or later
    /// with what a sink that writes on another thread found.
    pub fn bad_references(&mut self, index: u64, bad: &[daylight_schemas::EntryRef]) {
        for r in bad {
            self.findings.push(
                Finding::new(
                    "entry_bad_reference",
                    Category::Entry,
                    Severity::High,
                    format!(
                        "entry {index} refers to entry {} with a leaf hash no earlier entry has",
                        r.index.0
                    ),
                    BAD_REFERENCE,
                    vec![index],
                )
                .with_details(json!({ "reference": r.index.0, "leaf_hash": r.leaf_hash.to_hex() })),
            );
        }
    }

    /// Registry and binding checks for one parsed entry; returns its
    /// signature check.
    fn admit(&mut self, index: u64, record: SignedRecord) -> Option<SigJob> {
        let kind = record.kind();
        self.check_binding(index, &record);
        let key = if kind.signed_by_log() {
            // The registry verifies it under the log key current here.
            if index >= self.verify_from {
                self.signatures_checked += 1;
            }
            match self.registry.apply(LeafIndex(index), &record) {
                Ok(()) => self.signers.clear(),
                Err(e) => self.registry_finding(index, &record, &e),
            }
            None
        } else {
            if let Err(e) = record.check_held_by(self.registry.origin()) {
                self.findings.push(
                    Finding::new(
                        "entry_wrong_log",
                        Category::Entry,
                        Severity::Critical,
                        format!("entry {index} ({kind}) is bound to another log: {e}"),
                        WRONG_LOG,
                        vec![index],
                    )
                    .with_details(json!({
                        "record_log": record.log(),
                        "log": self.registry.origin(),
                        "error_code": e.code(),
                    })),
                );
            }
            self.resolve_signer(index, &record)
        };
        self.registry.seen_up_to(LeafIndex(index + 1));
        key.map(|key| SigJob { index, key, record })
    }

    /// A registry entry the registry refused: the log wrote into its own
    /// registry what it may not, an integrity failure.
    fn registry_finding(&mut self, index: u64, record: &SignedRecord, e: &RegistryError) {
        let log_rotation = matches!(
            record.body(),
            Body::Registry(b) if b.role == Role::Log && b.action == RegistryAction::Rotate
        );
        let (id, why) = match e {
            // A change of the log's key that the current (old) key did not
            // sign, or that replaces another key: the chain breaks here.
            RegistryError::WrongLogKey { .. } | RegistryError::NotSignedByLog { .. }
                if log_rotation =>
            {
                ("log_key_change_not_by_old_key", KEY_CHANGE_NOT_BY_OLD_KEY)
            }
            RegistryError::NotSignedByLog { .. } => {
                ("registry_not_signed_by_log", REGISTRY_NOT_BY_LOG)
            }
            RegistryError::WrongLogKey { .. } => {
                ("log_key_change_not_by_old_key", KEY_CHANGE_NOT_BY_OLD_KEY)
            }
            RegistryError::Inconsistent { .. } | RegistryError::NotRegistry(_) => {
                ("registry_inconsistent", REGISTRY_INCONSISTENT)
            }
        };
        self.findings.push(
            Finding::new(
                id,
                Category::Integrity,
                Severity::Critical,
                format!("registry entry {index}: {e}"),
                why,
                vec![index],
            )
            .with_details(json!({
                "entry": index,
                "error_code": e.code(),
                "signer": record.signer().to_string(),
                "log_key": self.registry.log_key().to_string(),
            })),
        );
    }

    /// The key that may sign this entry here, with findings for revoked,
    /// wrong-role and unknown signers.
    /// Version-1 records are read as the log holds them, but only from
    /// before the log began binding records to itself (its first version-2
    /// entry, of any kind): after it, the log refuses them.
    fn check_binding(&mut self, index: u64, record: &SignedRecord) {
        match (record.version(), self.first_bound) {
            (1, Some(first)) => self.findings.push(
                Finding::new(
                    "entry_unbound_after_binding",
                    Category::Rule,
                    Severity::High,
                    format!(
                        "entry {index} ({}) is a version-1 record, bound to no log, logged after the log's first version-2 entry {first}",
                        record.kind()
                    ),
                    UNBOUND_AFTER_BINDING,
                    vec![first, index],
                )
                .with_details(json!({
                    "version": 1,
                    "first_bound_entry": first,
                    "signer": record.signer().to_string(),
                })),
            ),
            (1, None) => {}
            (_, None) => self.first_bound = Some(index),
            (_, Some(_)) => {}
        }
    }

    fn resolve_signer(&mut self, index: u64, record: &SignedRecord) -> Option<VerifierKey> {
        let signer = record.signer();
        let kind = record.kind();
        // A release's roles depend on its body (a custodian's share or a
        // provider's release), so they are part of the key.
        let cache_key = (
            signer.name.to_string(),
            signer.key_id.0,
            kind,
            record.body().signer_roles(),
        );
        let known = match self.signers.get(&cache_key) {
            Some(known) => known.clone(),
            None => {
                let known = self.registry.signer_for(record).map(|r| r.key.clone());
                self.signers.insert(cache_key, known.clone());
                known
            }
        };
        let err = match known {
            Ok(key) => return Some(key),
            Err(e) => e,
        };
        match &err {
            SignerError::Revoked { role, at, how, .. } => {
                let at = at.0;
                // Its registration, to check the signature under it: the
                // key did sign, but too late.
                let registration = self.registry.registrations().iter().find(|r| {
                    r.role == *role && r.revoked_at == Some(LeafIndex(at)) && signer.is(&r.key)
                });
                self.findings.push(
                    Finding::new(
                        "signer_revoked",
                        Category::Rule,
                        Severity::High,
                        format!(
                            "entry {index} ({kind}) is signed by {signer}, whose {role} key was {how} at entry {at}",
                            role = role.as_str()
                        ),
                        SIGNER_REVOKED,
                        vec![at, index],
                    )
                    .with_details(json!({
                        "signer": signer.to_string(),
                        "revoked_at": at,
                        "role": role.as_str(),
                        "replaced_by": registration.and_then(|r| r.replaced_by.as_ref()).map(|k| k.to_string()),
                    })),
                );
                registration.map(|r| r.key.clone())
            }
            SignerError::WrongRole { .. } | SignerError::Unknown(_) => {
                let (id, title, why) = if matches!(err, SignerError::WrongRole { .. }) {
                    (
                        "entry_wrong_role",
                        format!("entry {index} ({kind}) is signed by {signer}, which is not registered for a role that may sign {kind} records"),
                        WRONG_ROLE,
                    )
                } else {
                    (
                        "entry_unknown_signer",
                        format!("entry {index} ({kind}) is signed by {signer}, which the log's registry does not list"),
                        UNKNOWN_SIGNER,
                    )
                };
                self.findings.push(
                    Finding::new(
                        id,
                        Category::Entry,
                        Severity::Critical,
                        title,
                        why,
                        vec![index],
                    )
                    .with_details(json!({ "signer": signer.to_string() })),
                );
                None
            }
        }
    }
}

/// `f` over `items` on `threads` threads (one if few), results in order.
pub fn par_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    if threads <= 1 || items.len() < 64 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| s.spawn(move || c.iter().map(f).collect::<Vec<_>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for (h, c) in handles.into_iter().zip(items.chunks(chunk)) {
            match h.join() {
                Ok(v) => out.extend(v),
                // A panic is a bug; do that chunk again here so it
                // surfaces on this thread.
                Err(_) => out.extend(c.iter().map(f)),
            }
        }
        out
    })
}

/// Size of one Ed25519 batch.
const BATCH: usize = 64;

/// Verifies the jobs; returns the indexes whose signatures are bad.
fn verify_parallel(jobs: &[SigJob], threads: usize) -> Vec<u64> {
    if jobs.is_empty() {
        return Vec::new();
    }
    let chunk = jobs.len().div_ceil(threads.max(1)).max(BATCH);
    let mut bad: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .chunks(chunk)
            .map(|c| s.spawn(move || c.chunks(BATCH).flat_map(verify_batch).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .zip(jobs.chunks(chunk))
            .flat_map(|(h, c)| {
                h.join()
                    .unwrap_or_else(|_| c.chunks(BATCH).flat_map(verify_batch).collect())
            })
            .collect()
    });
    bad.sort_unstable();
    bad
}

/// One batch under the record signature rule
/// ([`daylight_schemas::signature`], the log's and the gate's rule too):
/// the indexes whose signatures are bad, a key that is not the record's
/// signer included.
fn verify_batch(jobs: &[SigJob]) -> Vec<u64> {
    let mut bad = Vec::new();
    let mut checks = Vec::with_capacity(jobs.len());
    let mut indexes = Vec::with_capacity(jobs.len());
    for j in jobs {
        match j.record.signature_check(&j.key) {
            Ok(c) => {
                checks.push(c);
                indexes.push(j.index);
            }
            Err(_) => bad.push(j.index),
        }
    }
    let verdicts = daylight_schemas::signature::verify_batch(&checks, rand_core_06::OsRng);
    bad.extend(
        indexes
            .into_iter()
            .zip(verdicts)
            .filter(|(_, v)| v.is_err())
            .map(|(i, _)| i),
    );
    bad
}
