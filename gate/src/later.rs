//! What the log holds after the entry: a court's ratification of an
//! emergency (a second bundle the agency presents) and the provider's own
//! verified mirror of the log (withdrawals, the registry's revocations and
//! rotations, courts' denials).
//!
//! The caller reads these (the CLI reads `daylight audit --follow`'s
//! directory); the checks here are pure, like the rest of the gate. A
//! [`MirrorView`] is built with a [`MirrorBuilder`] fed every entry of the
//! mirror in order: it keeps the few entries the gate needs and re-derives
//! the tree's root, so the gate knows the view is the whole verified tree.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use daylight_core::{leaf_hash, node_hash, Hash, LeafIndex, TreeSize, VerifierKey};
use daylight_schemas::registry::Registry;
use daylight_schemas::{Body, Decision, Kind, Role, SignedRecord};

use crate::decision::{deny, verify_bundle, verify_checkpoint, Denied, ReasonCode};
use crate::policy::Policy;

/// Everything after the entry that a decision may weigh (see
/// [`decide_later`](crate::decide_later)). The default is nothing: the
/// decision is [`decide`](crate::decide)'s.
#[derive(Clone, Copy, Debug, Default)]
pub struct Later<'a> {
    /// The court's ratification of an emergency, as a second bundle:
    /// (entry bytes, C2SP tlog-proof).
    pub ratification: Option<(&'a [u8], &'a [u8])>,
    /// The provider's mirror of the log.
    pub mirror: MirrorInput<'a>,
}

/// The mirror as the caller found it.
#[derive(Clone, Copy, Debug, Default)]
pub enum MirrorInput<'a> {
    /// No mirror was given: refused only if the policy requires one.
    #[default]
    None,
    /// A mirror was asked for but could not be read (no verified state yet,
    /// damaged files): always refused, with this explanation.
    Unavailable(&'a str),
    /// The mirror's content.
    View(&'a MirrorView),
}

/// What the gate needs from a mirror of the log: its verified checkpoint,
/// the tree size and root its entries give, the leaf hashes at the indices
/// asked about, and the entries that can change a decision later
/// (registry, withdrawal, ratification), with their indices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorView {
    /// The mirror's verified signed checkpoint, with its cosignatures (the
    /// auditor's `DIR/checkpoint`). Its witnesses date the view.
    pub checkpoint: Vec<u8>,
    /// How many entries were read.
    pub size: u64,
    /// The RFC 6962 root of those entries.
    pub root: Hash,
    /// Leaf hashes at the indices asked about (the bundle's).
    pub leaves: BTreeMap<u64, Hash>,
    /// Entries that may be registry, withdrawal or ratification records
    /// (a superset: kept by a byte search, parsed by the gate), in index order.
    pub entries: Vec<(LeafIndex, Vec<u8>)>,
}

/// Builds a [`MirrorView`] from every entry of a mirror, in index order,
/// keeping only what the gate needs (memory stays small whatever the size).
#[derive(Clone, Debug, Default)]
pub struct MirrorBuilder {
    asked: Vec<u64>,
    size: u64,
    /// Roots of the perfect subtrees of the tree so far, left to right.
    frontier: Vec<Hash>,
    leaves: BTreeMap<u64, Hash>,
    entries: Vec<(LeafIndex, Vec<u8>)>,
}

/// Whether `entry` might be a record the mirror check reads. A byte search
/// and not a parse: cheap for millions of entries, and a false positive only
/// costs a parse.
fn may_matter(entry: &[u8]) -> bool {
    const WORDS: [&[u8]; 3] = [b"registry", b"withdrawal", b"ratification"];
    WORDS
        .iter()
        .any(|w| entry.windows(w.len()).any(|win| win == *w))
}

impl MirrorBuilder {
    /// A builder that records the leaf hashes at `asked` (the bundle's index).
    pub fn new(asked: &[LeafIndex]) -> MirrorBuilder {
        MirrorBuilder {
            asked: asked.iter().map(|i| i.0).collect(),
            ..MirrorBuilder::default()
        }
    }

    /// Adds the next entry of the mirror.
    pub fn push(&mut self, entry: &[u8]) {
        let index = self.size;
        let leaf = leaf_hash(entry);
        if self.asked.contains(&index) {
            self.leaves.insert(index, leaf);
        }
        if may_matter(entry) {
            self.entries.push((LeafIndex(index), entry.to_vec()));
        }
        // Compact range: merge while the subtree to the left is complete.
        let mut h = leaf;
        let mut s = self.size;
        while s & 1 == 1 {
            let Some(left) = self.frontier.pop() else {
                break;
            };
            h = node_hash(&left, &h);
            s >>= 1;
        }
        self.frontier.push(h);
        self.size += 1;
    }

    /// How many entries were pushed.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The view, with the mirror's signed checkpoint.
    pub fn finish(self, checkpoint: Vec<u8>) -> MirrorView {
        let mut iter = self.frontier.iter().rev();
        let root = match iter.next() {
            None => Hash::empty_tree(),
            Some(last) => iter.fold(*last, |acc, h| node_hash(h, &acc)),
        };
        MirrorView {
            checkpoint,
            size: self.size,
            root,
            leaves: self.leaves,
            entries: self.entries,
        }
    }
}

/// Checks a presented ratification of the emergency `emergency` at
/// `index` in the log `origin`; returns the ratification's index.
pub(crate) fn check_ratification(
    policy: &Policy,
    emergency: &SignedRecord,
    index: LeafIndex,
    origin: &str,
    entry: &[u8],
    proof: &[u8],
    now: DateTime<Utc>,
) -> Result<LeafIndex, Denied> {
    use ReasonCode as R;
    // Exactly the main bundle's checks, each failure under one code whose
    // detail names the underlying check.
    let proven = verify_bundle(policy, entry, proof, now).or_else(|d| {
        deny(
            R::RatificationUnproven,
            format!("ratification bundle: {}: {}", d.reason, d.detail),
        )
    })?;
    let r_origin = &proven.witnessed.checkpoint.origin;
    if r_origin != origin {
        return deny(
            R::RatificationWrongEmergency,
            format!("the ratification is in the log {r_origin}, the emergency in {origin}"),
        );
    }
    let record = &proven.record;
    let Body::Ratification(body) = record.body() else {
        return deny(
            R::RatificationWrongKind,
            format!(
                "the ratification bundle holds a {} entry, not a ratification",
                record.kind()
            ),
        );
    };
    let signer = record.signer();
    let Some(court) = policy.courts().iter().find(|k| signer.is(k)) else {
        return deny(
            R::RatificationNotByCourt,
            format!("the ratification is signed by {signer}, which is not a daylight-court key of the policy"),
        );
    };
    record.verify_signature(court).or_else(|e| {
        deny(
            R::RatificationNotByCourt,
            format!("the ratification's signature by {signer}: {e}"),
        )
    })?;
    let wanted = emergency.leaf_hash();
    if body.emergency.index != index || body.emergency.leaf_hash != wanted {
        return deny(
            R::RatificationWrongEmergency,
            format!(
                "the ratification decides on entry {} ({}), not on entry {index} ({})",
                body.emergency.index,
                body.emergency.leaf_hash.to_hex(),
                wanted.to_hex()
            ),
        );
    }
    if body.decision == Decision::Denied {
        return deny(
            R::RatificationDenied,
            format!(
                "the court denied the emergency (ratification at entry {}, case {})",
                proven.index,
                body.case_reference.as_str()
            ),
        );
    }
    Ok(proven.index)
}

/// The mirror check: returns the mirror's size if one was consulted.
pub(crate) fn check_mirror(
    policy: &Policy,
    mirror: &MirrorInput<'_>,
    record: &SignedRecord,
    index: LeafIndex,
    origin: &str,
    now: DateTime<Utc>,
) -> Result<Option<TreeSize>, Denied> {
    use ReasonCode as R;
    let view = match mirror {
        MirrorInput::None => {
            return match policy.mirror_required() {
                None => Ok(None),
                Some(_) => deny(
                    R::MirrorMissing,
                    "the policy requires a mirror of the log (daylight-mirror required) and none was given",
                ),
            }
        }
        MirrorInput::Unavailable(why) => return deny(R::MirrorMissing, *why),
        MirrorInput::View(v) => v,
    };

    // The mirror's checkpoint, under the same policy as any bundle, dated
    // by its witnesses (not by a file time anyone on the machine can set).
    let witnessed = verify_checkpoint(policy, &view.checkpoint, policy.mirror_max_age(), now)
        .or_else(|d| {
            let reason = match d.reason {
                R::CheckpointTooOld => R::MirrorStale,
                R::UnknownLog => R::MirrorMismatch,
                _ => R::MirrorInvalid,
            };
            deny(
                reason,
                format!("mirror checkpoint: {}: {}", d.reason, d.detail),
            )
        })?;
    let cp = &witnessed.checkpoint;
    if cp.origin != origin {
        return deny(
            R::MirrorMismatch,
            format!(
                "the mirror is of the log {}, the entry is in {origin}",
                cp.origin
            ),
        );
    }
    if view.size != cp.size.0 || view.root != cp.root {
        return deny(
            R::MirrorInvalid,
            format!(
                "the mirror's entries give size {} root {}; its checkpoint says size {} root {}",
                view.size,
                view.root.to_base64(),
                cp.size,
                cp.root.to_base64()
            ),
        );
    }
    if index.0 >= cp.size.0 {
        return deny(
            R::MirrorBehind,
            format!(
                "the mirror holds {} entries, not yet entry {index}; sync it (daylight audit --follow)",
                cp.size
            ),
        );
    }
    let leaf = record.leaf_hash();
    match view.leaves.get(&index.0) {
        Some(h) if *h == leaf => {}
        Some(h) => {
            return deny(
                R::MirrorMismatch,
                format!(
                    "the mirror holds leaf {} at index {index}, the bundle {}: the log showed two histories",
                    h.to_hex(),
                    leaf.to_hex()
                ),
            )
        }
        None => {
            return deny(
                R::MirrorMismatch,
                format!("the mirror view records no leaf at index {index}"),
            )
        }
    }

    // The later entries, parsed.
    let mut records = Vec::new();
    let mut last = None;
    for (i, bytes) in &view.entries {
        if i.0 >= cp.size.0 || last.is_some_and(|l| *i <= l) {
            return deny(
                R::MirrorInvalid,
                format!("mirror entry {i} is out of order or beyond the checkpoint"),
            );
        }
        last = Some(*i);
        let r = SignedRecord::parse(bytes).or_else(|e| {
            deny(
                R::MirrorInvalid,
                format!("mirror entry {i} does not parse: {e} ({})", e.code()),
            )
        })?;
        records.push((*i, r));
    }

    // Withdrawn: any withdrawal of this very entry. Refusing is the safe
    // side, so who withdrew it does not matter here (the auditor checks that).
    for (i, r) in &records {
        if let Body::Withdrawal(w) = r.body() {
            if w.entry.index == index && w.entry.leaf_hash == leaf {
                return deny(
                    R::Withdrawn,
                    format!(
                        "entry {index} was withdrawn by entry {i} ({})",
                        w.reason.as_str()
                    ),
                );
            }
        }
    }
    // A court denied the emergency: access must stop.
    for (i, r) in &records {
        if let Body::Ratification(rat) = r.body() {
            if rat.emergency.index == index
                && rat.emergency.leaf_hash == leaf
                && rat.decision == Decision::Denied
            {
                return deny(
                    R::RatificationDenied,
                    format!("the court denied entry {index} at entry {i} (from the mirror)"),
                );
            }
        }
    }

    // The signer's standing in the log's own registry.
    let registry = replay(policy, origin, &records)?;
    signer_standing(&registry, record, index)?;
    Ok(Some(cp.size))
}

/// Replays the mirror's registry entries. The chain of log keys starts at
/// the log's first key: whichever of the policy's keys for the log the
/// registry replays under (a policy keeps the first key, retired, for as
/// long as the registry must be replayed from it).
fn replay(
    policy: &Policy,
    origin: &str,
    records: &[(LeafIndex, SignedRecord)],
) -> Result<Registry, Denied> {
    let keys: Vec<&VerifierKey> = policy.log_keys(origin).iter().map(|k| k.key).collect();
    let mut last_error = String::from("no log key in the policy");
    for first in keys {
        let mut registry = Registry::new(first.clone());
        let mut ok = true;
        for (i, r) in records.iter().filter(|(_, r)| r.kind() == Kind::Registry) {
            if let Err(e) = registry.apply(*i, r) {
                last_error = format!("{e} ({})", e.code());
                ok = false;
                break;
            }
        }
        if ok {
            return Ok(registry);
        }
    }
    deny(
        ReasonCode::MirrorInvalid,
        format!(
            "the mirror's registry does not replay from any log key of the policy: {last_error}"
        ),
    )
}

/// Whether the registry still stands behind the record's signer: it was an
/// agency key when the entry was logged, and has not been revoked since. A
/// rotation after the entry keeps it valid (same identity, new key); a
/// revocation at any time refuses it (a revoked key may have been stolen).
fn signer_standing(
    registry: &Registry,
    record: &SignedRecord,
    index: LeafIndex,
) -> Result<(), Denied> {
    use ReasonCode as R;
    let signer = record.signer();
    let mine: Vec<_> = registry
        .registrations()
        .iter()
        .filter(|r| r.role == Role::Agency && signer.is(&r.key))
        .collect();
    if let Some(r) = mine.iter().find(|r| r.active_at(index)) {
        return match (r.revoked_at, &r.replaced_by) {
            (Some(at), None) => deny(
                R::AgencyRevoked,
                format!("{signer} was revoked at entry {at}, after this entry ({index})"),
            ),
            // Not revoked, or rotated out after the entry: in good standing.
            _ => Ok(()),
        };
    }
    // Never an agency key at the entry's index: the log should have refused it.
    match mine.iter().find(|r| r.added_at < index) {
        Some(r) => match (&r.replaced_by, r.revoked_at) {
            (Some(new), Some(at)) => deny(
                R::AgencyKeyReplaced,
                format!(
                    "{signer} was replaced by {}+{} at entry {at}, before this entry ({index})",
                    new.name(),
                    new.id()
                ),
            ),
            (None, Some(at)) => deny(
                R::AgencyRevoked,
                format!("{signer} was revoked at entry {at}, before this entry ({index})"),
            ),
            _ => deny(
                R::AgencyNotRegistered,
                format!("{signer} was not an agency key at entry {index}"),
            ),
        },
        None => deny(
            R::AgencyNotRegistered,
            format!(
                "the log's registry (up to the mirror's size) has no agency key {signer} registered before entry {index}"
            ),
        ),
    }
}
