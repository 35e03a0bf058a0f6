//! What the log holds after the entry: a court's ratification of an
//! emergency (a second bundle the agency presents) and the provider's own
//! verified mirror of the log (withdrawals, the registry's revocations and
//! rotations, courts' denials).
//!
//! The caller reads these (the CLI reads `daylight audit --follow`'s
//! directory); the checks here are pure, like the rest of the gate. A
//! [`MirrorView`] is not the whole log: it holds the size and root the
//! auditor verified, the leaf hashes the decision compares, and the few
//! entries that can change it (the registry, and the withdrawals and
//! ratifications of the entries asked about), so a decision reads O(log n +
//! k) of the mirror, not all of it. What stands behind each part:
//!
//! - the tree: `daylight audit` verified every entry and the tree before it
//!   recorded the size and root; the mirror check holds them equal to the
//!   mirror's signed checkpoint (log key, witnesses, freshness);
//! - the leaves: the caller reads them from the mirror's tiles,
//!   authenticated against that root, and every entry the view holds must
//!   be the leaf the tiles give at its index (checked here);
//! - which entries: the auditor's ledger (`daylight-ledger`) says which
//!   entries refer to the one asked about and where the registry is. The
//!   absence of a withdrawal or a denial is the ledger's word, which the
//!   provider's own auditor wrote from the entries it verified; the bytes
//!   of every entry the ledger points to are checked as above.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use daylight_core::{leaf_hash, Hash, LeafIndex, TreeSize, VerifierKey};
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
    /// A mirror was asked for but could not be read (no verified state or
    /// ledger yet, files missing or damaged): always refused
    /// (`mirror_missing`), with this explanation.
    Unavailable(&'a str),
    /// A mirror was read but does not hold together (its tiles do not give
    /// the root it verified): always refused (`mirror_invalid`), with this
    /// explanation.
    Invalid(&'a str),
    /// The mirror's content.
    View(&'a MirrorView),
}

/// What the gate needs from a mirror of the log: its verified checkpoint,
/// the tree size and root it verified, the leaf hashes the decision
/// compares, and the entries that can change a decision later (registry,
/// withdrawal, ratification), with their indices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorView {
    /// The mirror's verified signed checkpoint, with its cosignatures (the
    /// auditor's `DIR/checkpoint`). Its witnesses date the view.
    pub checkpoint: Vec<u8>,
    /// The tree size the mirror verified (the auditor's `state.json`); it
    /// must be the checkpoint's.
    pub size: u64,
    /// That tree's RFC 6962 root, as the mirror recorded it; it must be the
    /// checkpoint's.
    pub root: Hash,
    /// Leaf hashes of that tree, authenticated against `root` by the caller
    /// (the mirror's tiles): at the indices asked about (the bundle's, and
    /// a presented ratification's) and at the index of every entry in
    /// `entries`.
    pub leaves: BTreeMap<u64, Hash>,
    /// Entries that may be registry, withdrawal or ratification records
    /// (the CLI gives every registry record and the withdrawals and
    /// ratifications that refer to an index asked about, as the auditor's
    /// ledger lists them; the gate parses them), in index order. Each must
    /// be the leaf `leaves` holds at its index.
    pub entries: Vec<(LeafIndex, Vec<u8>)>,
}

/// A presented ratification that passed its checks: where the log holds it,
/// and the record (the mirror check compares both with the provider's copy).
#[derive(Clone, Debug)]
pub(crate) struct Ratified {
    /// The ratification's index in the log.
    pub(crate) index: LeafIndex,
    /// The ratification record.
    pub(crate) record: SignedRecord,
}

/// Checks a presented ratification of the emergency `emergency` at
/// `index` in the log `origin`.
pub(crate) fn check_ratification(
    policy: &Policy,
    emergency: &SignedRecord,
    index: LeafIndex,
    origin: &str,
    entry: &[u8],
    proof: &[u8],
    now: DateTime<Utc>,
) -> Result<Ratified, Denied> {
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
    Ok(Ratified {
        index: proven.index,
        record: proven.record,
    })
}

/// The mirror check: returns the mirror's size if one was consulted. The
/// view's size and root must be its signed checkpoint's (the tree the
/// auditor verified), its leaf at `index` the entry's, and each entry it
/// holds the leaf it authenticates at that index; then its withdrawals,
/// denials and registry are weighed. With a presented `ratification`, the
/// mirror must hold it too, and the log's registry must stand behind its
/// court as behind the entry's agency.
pub(crate) fn check_mirror(
    policy: &Policy,
    mirror: &MirrorInput<'_>,
    record: &SignedRecord,
    index: LeafIndex,
    ratification: Option<&Ratified>,
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
        MirrorInput::Invalid(why) => return deny(R::MirrorInvalid, *why),
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
                "the mirror verified size {} root {}; its checkpoint says size {} root {}",
                view.size,
                view.root.to_base64(),
                cp.size,
                cp.root.to_base64()
            ),
        );
    }
    let leaf = record.leaf_hash();
    holds(view, cp.size, index, &leaf, "entry")?;
    if let Some(r) = ratification {
        holds(
            view,
            cp.size,
            r.index,
            &r.record.leaf_hash(),
            "ratification",
        )?;
    }

    // The later entries: each the leaf the tiles authenticate at its
    // index (so the bytes the ledger pointed to are the log's), parsed.
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
        if view.leaves.get(&i.0) != Some(&leaf_hash(bytes)) {
            return deny(
                R::MirrorInvalid,
                format!("mirror entry {i} is not the leaf the mirror's tiles give at its index"),
            );
        }
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

    // The signers' standing in the log's own registry: the agency's at the
    // entry, the court's at the ratification.
    let registry = replay(policy, origin, &records)?;
    signer_standing(&registry, Role::Agency, record, index)?;
    if let Some(r) = ratification {
        signer_standing(&registry, Role::Court, &r.record, r.index)?;
    }
    Ok(Some(cp.size))
}

/// Whether the mirror (of `size` entries) holds the leaf `leaf` at `index`:
/// not yet (`mirror_behind`), or another one (`mirror_mismatch`: the log
/// showed the provider and the agency two histories). `what` names the
/// entry in the detail.
fn holds(
    view: &MirrorView,
    size: TreeSize,
    index: LeafIndex,
    leaf: &Hash,
    what: &str,
) -> Result<(), Denied> {
    use ReasonCode as R;
    if index.0 >= size.0 {
        return deny(
            R::MirrorBehind,
            format!(
                "the mirror holds {size} entries, not yet the {what} at {index}; sync it (daylight audit --follow)"
            ),
        );
    }
    match view.leaves.get(&index.0) {
        Some(h) if h == leaf => Ok(()),
        Some(h) => deny(
            R::MirrorMismatch,
            format!(
                "the mirror holds leaf {} at index {index}, the {what}'s bundle {}: the log showed two histories",
                h.to_hex(),
                leaf.to_hex()
            ),
        ),
        None => deny(
            R::MirrorMismatch,
            format!("the mirror view records no leaf at index {index} (the {what})"),
        ),
    }
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

/// The refusal codes for a signer's standing in one role.
struct StandingCodes {
    revoked: ReasonCode,
    replaced: ReasonCode,
    not_registered: ReasonCode,
}

fn standing_codes(role: Role) -> Option<StandingCodes> {
    use ReasonCode as R;
    match role {
        Role::Agency => Some(StandingCodes {
            revoked: R::AgencyRevoked,
            replaced: R::AgencyKeyReplaced,
            not_registered: R::AgencyNotRegistered,
        }),
        Role::Court => Some(StandingCodes {
            revoked: R::CourtRevoked,
            replaced: R::CourtKeyReplaced,
            not_registered: R::CourtNotRegistered,
        }),
        _ => None,
    }
}

/// Whether the registry still stands behind the record's signer in `role`
/// (an agency for a request, a court for a ratification): it was a key of
/// that role when the record was logged at `index`, and has not been revoked
/// since. A rotation after the record keeps it valid (same identity, new
/// key); a revocation at any time refuses it (a revoked key may have been
/// stolen).
fn signer_standing(
    registry: &Registry,
    role: Role,
    record: &SignedRecord,
    index: LeafIndex,
) -> Result<(), Denied> {
    let Some(codes) = standing_codes(role) else {
        return deny(
            ReasonCode::MirrorInvalid,
            format!("the gate does not weigh a {role} signer's standing"),
        );
    };
    let signer = record.signer();
    let mine: Vec<_> = registry
        .registrations()
        .iter()
        .filter(|r| r.role == role && signer.is(&r.key))
        .collect();
    if let Some(r) = mine.iter().find(|r| r.active_at(index)) {
        return match (r.revoked_at, &r.replaced_by) {
            (Some(at), None) => deny(
                codes.revoked,
                format!("{role} key {signer} was revoked at entry {at}, after entry {index}"),
            ),
            // Not revoked, or rotated out after the entry: in good standing.
            _ => Ok(()),
        };
    }
    // Never a key of that role at the entry's index: the log should have refused it.
    match mine.iter().find(|r| r.added_at < index) {
        Some(r) => match (&r.replaced_by, r.revoked_at) {
            (Some(new), Some(at)) => deny(
                codes.replaced,
                format!(
                    "{role} key {signer} was replaced by {}+{} at entry {at}, before entry {index}",
                    new.name(),
                    new.id()
                ),
            ),
            (None, Some(at)) => deny(
                codes.revoked,
                format!("{role} key {signer} was revoked at entry {at}, before entry {index}"),
            ),
            _ => deny(
                codes.not_registered,
                format!("{signer} was not a {role} key at entry {index}"),
            ),
        },
        None => deny(
            codes.not_registered,
            format!(
                "the log's registry (up to the mirror's size) has no {role} key {signer} registered before entry {index}"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::testkit::{Bundle, World, PROVIDER, TARGET};
    use crate::{decide_later, Decision};
    use chrono::{Duration, TimeZone as _};
    use daylight_schemas::Record;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 8, 10, 12, 0, 0).unwrap()
    }

    fn fresh() -> u64 {
        now().timestamp() as u64 - 60
    }

    const ALL3: fn(u64) -> [(usize, u64); 3] = |t| [(0, t), (1, t), (2, t)];

    #[track_caller]
    fn denied(d: Decision, reason: ReasonCode) {
        crate::testkit::assert_denied(&d, reason);
    }

    fn run(p: &Policy, b: &Bundle, later: &Later<'_>) -> Decision {
        decide_later(
            p,
            &b.entry,
            &b.proof,
            Some((&b.opening, TARGET)),
            later,
            now(),
        )
    }

    /// An emergency created 30 hours ago: its 24-hour deadline has passed.
    fn late_emergency(w: &mut World) -> Bundle {
        let created = now() - Duration::hours(30);
        w.bundle(&World::emergency_draft(PROVIDER, created), created, fresh())
            .unwrap()
    }

    fn ratification(w: &mut World, of: &Bundle, decision: &str, by: &str) -> Bundle {
        let draft =
            World::ratification_draft(of.index, daylight_core::leaf_hash(&of.entry), decision);
        let signer = match by {
            "court" => w.court.clone(),
            _ => w.agency.clone(),
        };
        w.bundle_by(&draft, &signer, now() - Duration::hours(2), fresh())
            .unwrap()
    }

    fn with(r: &Bundle) -> Later<'_> {
        Later {
            ratification: Some((&r.entry, &r.proof)),
            ..Later::default()
        }
    }

    #[test]
    fn an_emergency_past_its_deadline_needs_the_courts_ratification() {
        let mut w = World::new();
        let p = w.policy();
        let e = late_emergency(&mut w);
        denied(
            run(&p, &e, &Later::default()),
            ReasonCode::EmergencyDeadlinePassed,
        );
        let r = ratification(&mut w, &e, "granted", "court");
        let Decision::Allow(a) = run(&p, &e, &with(&r)) else {
            panic!("{}", run(&p, &e, &with(&r)));
        };
        assert_eq!(a.ratification, Some(r.index));
        assert!(Decision::Allow(a)
            .to_string()
            .contains(&format!("ratified by entry {}", r.index)));

        // Signed by the agency, not a court.
        let by_agency = ratification(&mut w, &e, "granted", "agency");
        denied(
            run(&p, &e, &with(&by_agency)),
            ReasonCode::RatificationNotByCourt,
        );
        // A court key the policy does not list.
        let text = w.policy_text(2, true);
        let court_line = format!("daylight-court {}\n", w.court.verifier());
        let no_court = Policy::parse(&text.replace(&court_line, "")).unwrap();
        denied(
            run(&no_court, &e, &with(&r)),
            ReasonCode::RatificationNotByCourt,
        );
        // For another emergency.
        let other = late_emergency(&mut w);
        let r_other = ratification(&mut w, &other, "granted", "court");
        denied(
            run(&p, &e, &with(&r_other)),
            ReasonCode::RatificationWrongEmergency,
        );
        // Denied by the court: refused even before the deadline.
        let denial = ratification(&mut w, &e, "denied", "court");
        denied(run(&p, &e, &with(&denial)), ReasonCode::RatificationDenied);
        let created = now() - Duration::hours(1);
        let early = w
            .bundle(&World::emergency_draft(PROVIDER, created), created, fresh())
            .unwrap();
        assert!(run(&p, &early, &Later::default()).is_allow());
        let early_denial = ratification(&mut w, &early, "denied", "court");
        denied(
            run(&p, &early, &with(&early_denial)),
            ReasonCode::RatificationDenied,
        );
        // Not a ratification at all (the emergency itself, presented again).
        denied(run(&p, &e, &with(&e)), ReasonCode::RatificationWrongKind);

        // A broken proof: one byte of an inclusion hash, the checkpoint's
        // log signature, a stale checkpoint, someone else's entry bytes.
        let mut broken = r.proof.clone();
        let at = broken.iter().position(|&c| c == b'\n').unwrap() + 1;
        let at = at + broken[at..].iter().position(|&c| c == b'\n').unwrap() + 3;
        broken[at] = if broken[at] == b'A' { b'B' } else { b'A' };
        let bad = Bundle {
            proof: broken,
            ..r.clone()
        };
        let d = run(&p, &e, &with(&bad));
        assert!(d.to_string().contains("not_included"), "{d}");
        denied(d, ReasonCode::RatificationUnproven);
        let stale = Bundle {
            proof: w.proof(r.index, &ALL3(now().timestamp() as u64 - 7200)),
            ..r.clone()
        };
        let d = run(&p, &e, &with(&stale));
        assert!(d.to_string().contains("checkpoint_too_old"), "{d}");
        denied(d, ReasonCode::RatificationUnproven);
        let swapped = Bundle {
            entry: denial.entry.clone(),
            ..r.clone()
        };
        denied(
            run(&p, &e, &with(&swapped)),
            ReasonCode::RatificationUnproven,
        );
        let mut w2 = World::new();
        w2.log = w2.log2.clone();
        w2.checkpoint_keys = vec![w2.log2.clone()];
        let forged = ratification(&mut w2, &e, "granted", "court");
        let d = run(&p, &e, &with(&forged));
        assert!(d.to_string().contains("log_signature_invalid"), "{d}");
        denied(d, ReasonCode::RatificationUnproven);
    }

    /// A world whose registry lists the agency, court and provider.
    fn registered() -> World {
        let mut w = World::new();
        w.register_parties(now() - Duration::days(10)).unwrap();
        w
    }

    fn request(w: &mut World) -> Bundle {
        let created = now() - Duration::hours(1);
        w.bundle(&World::request_draft(PROVIDER, created), created, fresh())
            .unwrap()
    }

    fn mirrored(view: &MirrorView) -> Later<'_> {
        Later {
            mirror: MirrorInput::View(view),
            ..Later::default()
        }
    }

    fn required(w: &World, secs: u64) -> Policy {
        Policy::parse(&format!(
            "{}daylight-mirror required {secs}\n",
            w.policy_text(2, true)
        ))
        .unwrap()
    }

    #[test]
    fn a_mirror_that_is_missing_stale_or_invalid_is_a_refusal() {
        let mut w = registered();
        let b = request(&mut w);
        let p = w.policy();
        let view = w.mirror(&[b.index], &ALL3(fresh()));
        let Decision::Allow(a) = run(&p, &b, &mirrored(&view)) else {
            panic!("{}", run(&p, &b, &mirrored(&view)));
        };
        assert_eq!(a.mirror_size, Some(w.tree.size()));
        assert!(Decision::Allow(a).to_string().contains("not withdrawn"));

        // No mirror: as before, unless the policy requires one.
        assert!(run(&p, &b, &Later::default()).is_allow());
        let req = required(&w, 600);
        denied(run(&req, &b, &Later::default()), ReasonCode::MirrorMissing);
        let unreadable = Later {
            mirror: MirrorInput::Unavailable("no verified mirror in /x"),
            ..Later::default()
        };
        denied(run(&p, &b, &unreadable), ReasonCode::MirrorMissing);
        assert!(run(&req, &b, &mirrored(&view)).is_allow());

        // Stale: older than the policy's max age (3600 s), or than the mirror line's.
        let old = w.mirror(&[b.index], &ALL3(now().timestamp() as u64 - 7200));
        denied(run(&p, &b, &mirrored(&old)), ReasonCode::MirrorStale);
        let twenty = w.mirror(&[b.index], &ALL3(now().timestamp() as u64 - 1200));
        assert!(run(&p, &b, &mirrored(&twenty)).is_allow());
        denied(run(&req, &b, &mirrored(&twenty)), ReasonCode::MirrorStale);

        // Behind: the mirror stopped before the entry.
        let mut early = registered();
        let early_view = early.mirror(&[], &ALL3(fresh()));
        let eb = request(&mut early);
        denied(
            run(&p, &eb, &mirrored(&early_view)),
            ReasonCode::MirrorBehind,
        );

        // Invalid: a size or root that is not the checkpoint's (one entry
        // dropped, another root), a checkpoint below quorum or by another
        // key, an entry that is not the leaf at its index.
        let mut dropped = view.clone();
        dropped.size -= 1;
        denied(run(&p, &b, &mirrored(&dropped)), ReasonCode::MirrorInvalid);
        let mut root = view.clone();
        root.root = daylight_core::leaf_hash(b"other");
        denied(run(&p, &b, &mirrored(&root)), ReasonCode::MirrorInvalid);
        let one = w.mirror(&[b.index], &[(0, fresh())]);
        denied(run(&p, &b, &mirrored(&one)), ReasonCode::MirrorInvalid);
        let mut forged = view.clone();
        let mut impostor = World::new();
        impostor.checkpoint_keys = vec![impostor.log2.clone()];
        impostor.tree = w.tree.clone();
        forged.checkpoint = impostor.checkpoint(&ALL3(fresh()));
        denied(run(&p, &b, &mirrored(&forged)), ReasonCode::MirrorInvalid);
        let mut junk = view.clone();
        junk.entries
            .push((LeafIndex(view.size - 1), b"registry junk".to_vec()));
        denied(run(&p, &b, &mirrored(&junk)), ReasonCode::MirrorInvalid);
        // An entry whose bytes are not the leaf authenticated at its index
        // (one byte of a registry record changed).
        let mut flipped = view.clone();
        let (at, bytes) = &mut flipped.entries[0];
        let at = *at;
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        let d = run(&p, &b, &mirrored(&flipped));
        assert!(
            d.to_string()
                .contains(&format!("mirror entry {at} is not the leaf")),
            "{d}"
        );
        denied(d, ReasonCode::MirrorInvalid);
        // A mirror the caller read and found not to hold together.
        let invalid = Later {
            mirror: MirrorInput::Invalid("tiles do not give the verified root"),
            ..Later::default()
        };
        denied(run(&p, &b, &invalid), ReasonCode::MirrorInvalid);
    }

    #[test]
    fn a_mirror_that_disagrees_with_the_bundle_is_a_refusal() {
        // The same log key showed the provider's mirror another entry at
        // that index: a split view.
        let mut w = registered();
        let b = request(&mut w);
        let mut other = registered();
        let created = now() - Duration::hours(3);
        other
            .bundle(&World::request_draft(PROVIDER, created), created, fresh())
            .unwrap();
        let view = other.mirror(&[b.index], &ALL3(fresh()));
        let d = run(&w.policy(), &b, &mirrored(&view));
        assert!(d.to_string().contains("two histories"), "{d}");
        denied(d, ReasonCode::MirrorMismatch);
        // A view that did not record the index asked about.
        let blind = w.mirror(&[], &ALL3(fresh()));
        denied(
            run(&w.policy(), &b, &mirrored(&blind)),
            ReasonCode::MirrorMismatch,
        );
    }

    #[test]
    fn withdrawals_revocations_and_rotations_in_the_mirror() {
        let p = World::new().policy();
        let t = now() - Duration::minutes(30);
        let leaf = |b: &Bundle| daylight_core::leaf_hash(&b.entry);

        // Withdrawn by the agency after it was logged.
        let mut w = registered();
        let b = request(&mut w);
        let agency = w.agency.clone();
        let (r, _) = w
            .seal(&World::withdrawal_draft(b.index, leaf(&b)), &agency, t)
            .unwrap();
        let at = w.append(r.as_bytes());
        let d = run(&p, &b, &mirrored(&w.mirror(&[b.index], &ALL3(fresh()))));
        assert!(
            d.to_string().contains(&format!("withdrawn by entry {at}")),
            "{d}"
        );
        denied(d, ReasonCode::Withdrawn);
        // A withdrawal of another entry does not touch this one.
        let mut w = registered();
        let b = request(&mut w);
        let b2 = request(&mut w);
        let (r, _) = w
            .seal(&World::withdrawal_draft(b2.index, leaf(&b2)), &agency, t)
            .unwrap();
        w.append(r.as_bytes());
        assert!(run(&p, &b, &mirrored(&w.mirror(&[b.index], &ALL3(fresh())))).is_allow());

        // The agency's key revoked after the request was logged.
        let mut w = registered();
        let b = request(&mut w);
        let log = w.log.clone();
        let revoke = Record::registry_revoke(Role::Agency, agency.verifier(), t).unwrap();
        w.log_record(&revoke, &log).unwrap();
        denied(
            run(&p, &b, &mirrored(&w.mirror(&[b.index], &ALL3(fresh())))),
            ReasonCode::AgencyRevoked,
        );

        // Rotated after the request: the old key's request stays valid.
        let mut w = registered();
        let b = request(&mut w);
        // The agency's next key: same name (same identity), another key.
        let new = daylight_core::SignerKey::from_seed(
            agency.name().clone(),
            daylight_core::KeyType::Ed25519,
            [77; 32],
        );
        let rotate =
            Record::registry_rotate(Role::Agency, agency.verifier(), new.verifier(), None, t)
                .unwrap();
        w.log_record(&rotate, &log).unwrap();
        let view = w.mirror(&[b.index], &ALL3(fresh()));
        assert!(run(&p, &b, &mirrored(&view)).is_allow());
        // ... but a request signed with the old key after the rotation is refused.
        let late = request(&mut w);
        let view = w.mirror(&[late.index], &ALL3(fresh()));
        let d = run(&p, &late, &mirrored(&view));
        assert!(d.to_string().contains("replaced by agency.example+"), "{d}");
        denied(d, ReasonCode::AgencyKeyReplaced);

        // Never registered in the log's registry.
        let mut w = World::new();
        let b = request(&mut w);
        denied(
            run(&p, &b, &mirrored(&w.mirror(&[b.index], &ALL3(fresh())))),
            ReasonCode::AgencyNotRegistered,
        );

        // A registry entry not signed by the log: the mirror is broken.
        let mut w = registered();
        let court = Record::registry_add(Role::Court, w.log2.verifier(), t).unwrap();
        let stranger = w.agency.clone();
        w.log_record(&court, &stranger).unwrap();
        let b = request(&mut w);
        denied(
            run(&p, &b, &mirrored(&w.mirror(&[b.index], &ALL3(fresh())))),
            ReasonCode::MirrorInvalid,
        );
    }

    fn ratified_and_mirrored<'a>(r: &'a Bundle, view: &'a MirrorView) -> Later<'a> {
        Later {
            ratification: Some((&r.entry, &r.proof)),
            mirror: MirrorInput::View(view),
        }
    }

    /// A registered world with an emergency past its deadline and the
    /// court's granted ratification, logged after the deadline.
    fn ratified_world() -> (World, Bundle, Bundle) {
        let mut w = registered();
        let e = late_emergency(&mut w);
        let r = ratification(&mut w, &e, "granted", "court");
        (w, e, r)
    }

    #[test]
    fn a_mirror_must_hold_the_ratification_and_stand_behind_its_court() {
        let p = World::new().policy();
        let late =
            |w: &World, e: &Bundle, r: &Bundle| w.mirror(&[e.index, r.index], &ALL3(fresh()));

        // Held, by a registered court in good standing: allowed, even though
        // the court ratified after the emergency's deadline (it still counts).
        let (w, e, r) = ratified_world();
        let deadline = now() - Duration::hours(6);
        let created = SignedRecord::parse(&r.entry).unwrap().created();
        assert!(created > deadline, "the ratification is late");
        let view = late(&w, &e, &r);
        let d = run(&p, &e, &ratified_and_mirrored(&r, &view));
        let Decision::Allow(a) = &d else {
            panic!("{d}")
        };
        assert_eq!(a.ratification, Some(r.index));
        assert!(d.to_string().contains("court in good standing"), "{d}");

        // The mirror stops before the ratification.
        let mut w = registered();
        let e = late_emergency(&mut w);
        let before = w.mirror(&[e.index], &ALL3(fresh()));
        let r = ratification(&mut w, &e, "granted", "court");
        let d = run(&p, &e, &ratified_and_mirrored(&r, &before));
        assert!(d.to_string().contains("ratification"), "{d}");
        denied(d, ReasonCode::MirrorBehind);
        // A view that did not record the ratification's index.
        let mut blind = w.mirror(&[e.index], &ALL3(fresh()));
        blind.leaves.remove(&r.index.0);
        blind.entries.retain(|(i, _)| *i != r.index);
        denied(
            run(&p, &e, &ratified_and_mirrored(&r, &blind)),
            ReasonCode::MirrorMismatch,
        );

        // A split view: the same log key showed the provider's mirror
        // another entry at the ratification's index.
        let (_, e, r) = ratified_world();
        let mut other = registered();
        let e2 = late_emergency(&mut other);
        assert_eq!((e2.index, &e2.entry), (e.index, &e.entry));
        let court = other.court.clone();
        let r2 = other
            .bundle_by(
                &World::ratification_draft(e.index, daylight_core::leaf_hash(&e.entry), "granted"),
                &court,
                now() - Duration::hours(3),
                fresh(),
            )
            .unwrap();
        assert_eq!(r2.index, r.index);
        assert_ne!(r2.entry, r.entry);
        let split = late(&other, &e, &r);
        let d = run(&p, &e, &ratified_and_mirrored(&r, &split));
        assert!(d.to_string().contains("two histories"), "{d}");
        denied(d, ReasonCode::MirrorMismatch);
        // ... while the other history's own ratification is held there.
        assert!(run(&p, &e, &ratified_and_mirrored(&r2, &split)).is_allow());
    }

    #[test]
    fn a_revoked_rotated_or_unregistered_court_key_is_refused_with_a_mirror() {
        let p = World::new().policy();
        let t = now() - Duration::minutes(30);
        let view =
            |w: &World, e: &Bundle, r: &Bundle| w.mirror(&[e.index, r.index], &ALL3(fresh()));

        // Revoked after the ratification was logged: a revoked key may have
        // been stolen, so what it signed no longer opens anything.
        let (mut w, e, r) = ratified_world();
        let (log, court) = (w.log.clone(), w.court.clone());
        // Without a mirror the gate cannot know.
        assert!(run(&p, &e, &with(&r)).is_allow());
        let revoke = Record::registry_revoke(Role::Court, court.verifier(), t).unwrap();
        let (at, _) = w.log_record(&revoke, &log).unwrap();
        let d = run(&p, &e, &ratified_and_mirrored(&r, &view(&w, &e, &r)));
        assert!(
            d.to_string()
                .contains(&format!("revoked at entry {at}, after")),
            "{d}"
        );
        denied(d, ReasonCode::CourtRevoked);

        // Revoked before the ratification (the log should have refused it).
        let mut w = registered();
        let e = late_emergency(&mut w);
        w.log_record(&revoke, &log).unwrap();
        let r = ratification(&mut w, &e, "granted", "court");
        let d = run(&p, &e, &ratified_and_mirrored(&r, &view(&w, &e, &r)));
        assert!(d.to_string().contains("before"), "{d}");
        denied(d, ReasonCode::CourtRevoked);

        // Rotated out before the ratification: the old key is refused ...
        let new = daylight_core::SignerKey::from_seed(
            court.name().clone(),
            daylight_core::KeyType::Ed25519,
            [78; 32],
        );
        let rotate =
            Record::registry_rotate(Role::Court, court.verifier(), new.verifier(), None, t)
                .unwrap();
        let mut w = registered();
        let e = late_emergency(&mut w);
        w.log_record(&rotate, &log).unwrap();
        let r = ratification(&mut w, &e, "granted", "court");
        let d = run(&p, &e, &ratified_and_mirrored(&r, &view(&w, &e, &r)));
        assert!(d.to_string().contains("replaced by court.example+"), "{d}");
        denied(d, ReasonCode::CourtKeyReplaced);
        // ... and the new key, listed in the policy, stands.
        let r_new = w
            .bundle_by(
                &World::ratification_draft(e.index, daylight_core::leaf_hash(&e.entry), "granted"),
                &new,
                now() - Duration::hours(1),
                fresh(),
            )
            .unwrap();
        let both = Policy::parse(&format!(
            "{}daylight-court {}\n",
            w.policy_text(2, true),
            new.verifier()
        ))
        .unwrap();
        let v = view(&w, &e, &r_new);
        assert!(run(&both, &e, &ratified_and_mirrored(&r_new, &v)).is_allow());

        // Rotated after the ratification: it stays valid (same court, new key).
        let (mut w, e, r) = ratified_world();
        w.log_record(&rotate, &log).unwrap();
        assert!(run(&p, &e, &ratified_and_mirrored(&r, &view(&w, &e, &r))).is_allow());

        // Never registered as a court: not at all, or only in another role.
        let mut w = World::new();
        let agency = Record::registry_add(Role::Agency, w.agency.verifier(), t).unwrap();
        w.log_record(&agency, &log).unwrap();
        let as_provider = Record::registry_add(Role::Provider, court.verifier(), t).unwrap();
        let e = late_emergency(&mut w);
        let r = ratification(&mut w, &e, "granted", "court");
        let d = run(&p, &e, &ratified_and_mirrored(&r, &view(&w, &e, &r)));
        assert!(d.to_string().contains("no court key"), "{d}");
        denied(d, ReasonCode::CourtNotRegistered);
        let mut w = World::new();
        w.log_record(&agency, &log).unwrap();
        w.log_record(&as_provider, &log).unwrap();
        let e = late_emergency(&mut w);
        let r = ratification(&mut w, &e, "granted", "court");
        denied(
            run(&p, &e, &ratified_and_mirrored(&r, &view(&w, &e, &r))),
            ReasonCode::CourtNotRegistered,
        );
        // The agency's standing is still checked first.
        let mut w = registered();
        let e = late_emergency(&mut w);
        let r = ratification(&mut w, &e, "granted", "court");
        let revoke_agency = Record::registry_revoke(Role::Agency, w.agency.verifier(), t).unwrap();
        w.log_record(&revoke_agency, &log).unwrap();
        w.log_record(&revoke, &log).unwrap();
        denied(
            run(&p, &e, &ratified_and_mirrored(&r, &view(&w, &e, &r))),
            ReasonCode::AgencyRevoked,
        );
    }

    #[test]
    fn the_registry_replays_across_a_log_key_rotation_and_a_denial_in_the_mirror_stops_an_emergency(
    ) {
        let t = now() - Duration::days(1);
        let mut w = registered();
        let (old, new) = (w.log.clone(), w.log2.clone());
        let until = now() + Duration::days(7);
        let rotate =
            Record::registry_rotate(Role::Log, old.verifier(), new.verifier(), Some(until), t)
                .unwrap();
        w.log_record(&rotate, &old).unwrap();
        // After the rotation the new key signs the registry, and both keys
        // sign checkpoints during the transition.
        let revoke_court = Record::registry_revoke(Role::Court, w.court.verifier(), t).unwrap();
        w.log_record(&revoke_court, &new).unwrap();
        w.checkpoint_keys = vec![old.clone(), new.clone()];
        let e = {
            let created = now() - Duration::hours(1);
            w.bundle(&World::emergency_draft(PROVIDER, created), created, fresh())
                .unwrap()
        };
        let text = w.policy_text(2, true).replace(
            &format!("log {}\n", old.verifier()),
            &format!(
                "log {}\nlog {}\ndaylight-log-key-until {} {}\n",
                old.verifier(),
                new.verifier(),
                old.verifier(),
                until.to_rfc3339()
            ),
        );
        let p = Policy::parse(&text).unwrap();
        let view = w.mirror(&[e.index], &ALL3(fresh()));
        assert!(run(&p, &e, &mirrored(&view)).is_allow());
        // A policy with only the new key cannot replay the registry from its start.
        let only_new = Policy::parse(&w.policy_text(2, true).replace(
            &format!("log {}\n", old.verifier()),
            &format!("log {}\n", new.verifier()),
        ))
        .unwrap();
        let d = run(&only_new, &e, &mirrored(&view));
        assert!(d.to_string().contains("registry"), "{d}");
        denied(d, ReasonCode::MirrorInvalid);

        // The court denies the emergency; the mirror shows it.
        let court = w.court.clone();
        let (denial, _) = w
            .seal(
                &World::ratification_draft(e.index, daylight_core::leaf_hash(&e.entry), "denied"),
                &court,
                now() - Duration::minutes(10),
            )
            .unwrap();
        w.append(denial.as_bytes());
        denied(
            run(&p, &e, &mirrored(&w.mirror(&[e.index], &ALL3(fresh())))),
            ReasonCode::RatificationDenied,
        );
    }
}
