//! The accountability rules over verified entries. Thresholds come from a
//! JSON rules file ([`Rules`]); every field has a default.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::findings::{Category, Finding, Severity};
use crate::verify::{Access, Fact, FactBody};
use daylight_ledger::custody::{self, Receipt};
use daylight_schemas::content_policy::{ContentLine, ContentPolicy};
use daylight_schemas::{KeyTag, ShareRef};

/// Thresholds for the rules. Unknown fields are refused, so a typo in a
/// rules file is an error rather than a silently ignored threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    /// Hours after `ratify_by` before an unratified emergency is flagged.
    pub ratification_grace_hours: i64,
    /// Length of the sliding window for emergency spikes, in days.
    pub emergency_spike_window_days: i64,
    /// More emergencies than this by one agency within one window is a spike.
    pub emergency_spike_max: usize,
    /// Days after sealed-until (as extended) before a missing disclosure is flagged.
    pub disclosure_grace_days: i64,
    /// More extensions than this of one entry's seal is flagged.
    pub max_seal_extensions: usize,
    /// More requests or emergencies than this with one case reference, by one
    /// agency, on one UTC day, is flagged as possible order splitting.
    pub order_splitting_max_per_day: usize,
    /// Hours of tolerance around a validity window for a release's time.
    pub release_window_grace_hours: i64,
    /// A mirror (`--mirror`) more than this many entries behind the
    /// verified tree is `mirror_behind`.
    pub mirror_max_lag_entries: u64,
    /// A mirror behind the verified tree for more than this many hours
    /// (since this audit directory first saw the log serve a checkpoint
    /// larger than the mirror's) is `mirror_behind`.
    pub mirror_max_lag_hours: i64,
    /// Rule identifiers to skip.
    pub disabled: Vec<String>,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules {
            ratification_grace_hours: 0,
            emergency_spike_window_days: 7,
            emergency_spike_max: 10,
            disclosure_grace_days: 30,
            max_seal_extensions: 2,
            order_splitting_max_per_day: 5,
            release_window_grace_hours: 0,
            mirror_max_lag_entries: 1000,
            mirror_max_lag_hours: 24,
            disabled: Vec::new(),
        }
    }
}

/// Why a rules file was refused.
#[derive(Debug, thiserror::Error)]
#[error("rules file: {0}")]
pub struct RulesError(String);

impl Rules {
    /// Parses a JSON rules file.
    pub fn from_json(text: &str) -> Result<Rules, RulesError> {
        let rules: Rules = serde_json::from_str(text).map_err(|e| RulesError(e.to_string()))?;
        for id in &rules.disabled {
            if !RULE_IDS.contains(&id.as_str()) && !MIRROR_IDS.contains(&id.as_str()) {
                return Err(RulesError(format!(
                    "unknown rule {id:?} in disabled (known: {}, {})",
                    RULE_IDS.join(", "),
                    MIRROR_IDS.join(", ")
                )));
            }
        }
        let nonneg = [
            rules.ratification_grace_hours,
            rules.disclosure_grace_days,
            rules.release_window_grace_hours,
            rules.mirror_max_lag_hours,
        ];
        if nonneg.iter().any(|v| *v < 0) || rules.emergency_spike_window_days < 1 {
            return Err(RulesError(
                "grace periods must be >= 0 and the spike window >= 1 day".into(),
            ));
        }
        Ok(rules)
    }

    /// Whether rule `id` runs.
    pub fn on(&self, id: &str) -> bool {
        !self.disabled.iter().any(|d| d == id)
    }

    /// These rules without the mirrors' settings (default thresholds, the
    /// mirror ids not in `disabled`): what the rules over entries depend
    /// on, so that changing a mirror setting does not make the next run
    /// evaluate every entry again.
    pub fn for_entries(&self) -> Rules {
        let defaults = Rules::default();
        let mut r = self.clone();
        r.mirror_max_lag_entries = defaults.mirror_max_lag_entries;
        r.mirror_max_lag_hours = defaults.mirror_max_lag_hours;
        r.disabled.retain(|id| !MIRROR_IDS.contains(&id.as_str()));
        r
    }
}

/// The mirror findings that `disabled` may name (`--mirror`; the
/// integrity finding `mirror_split_view` and the notice
/// `mirror_unreachable` cannot be disabled).
pub const MIRROR_IDS: &[&str] = &[
    "mirror_behind",
    "mirror_content_mismatch",
    "mirror_checkpoint_invalid",
];

/// Every rule identifier.
pub const RULE_IDS: &[&str] = &[
    "emergency_unratified",
    "emergency_spike",
    "release_without_authorisation",
    "release_outside_window",
    "release_excess_targets",
    "release_after_withdrawal",
    "disclosure_overdue",
    "repeated_seal_extensions",
    "order_splitting",
    "signer_revoked",
    "entry_unbound_after_binding",
    "released_and_refused",
    "release_against_published_policy",
    "refusal_without_authorisation",
    "refusal_unsupported_by_policy",
    "custody_below_threshold",
    "custody_share_conflict",
    "custody_released_refused",
];

const EMERGENCY_UNRATIFIED: &str = "An emergency request gives access before a court has decided. A court must ratify (or deny) it by its ratify_by deadline; this one has no ratification logged by then.";
const EMERGENCY_SPIKE: &str = "One agency logged many more emergency requests than usual within a short window. Emergency access skips prior court review, so a burst of them deserves scrutiny.";
const RELEASE_UNAUTHORISED: &str = "A provider logged that it released access, but the entry it names is not a request or emergency addressed to that provider, or a court had denied the emergency before the release. Under threshold custody, a custodian logged the release of its share of a key for an entry that is not a request or emergency, or that a court had denied before the release (that only a registered custodian signs a share's release is checked with the entry's signature).";
const RELEASE_WINDOW: &str =
    "A provider released access, or a custodian released its share of a key, outside the validity window of the request or emergency it names.";
const RELEASE_TARGETS: &str = "A provider released access for more targets than the request or emergency it names authorised, or custodians released shares of more distinct keys for it (one key per target) than it authorised targets.";
const RELEASE_WITHDRAWN: &str =
    "A provider released access, or a custodian released its share of a key, for an entry after the agency had withdrawn it.";
const CUSTODY_BELOW_THRESHOLD: &str = "Under threshold custody, a target's escrowed key exists again only once k of its n custodians have each logged the release of their share (k shares of one key, with distinct indices, from distinct custodians). Custodians logged shares for this request, so its keys are in custody; yet the provider logged a release of access for more targets than the custodians' receipts logged before it put keys together. A key was used without the receipts that make every use public.";
const CUSTODY_SHARE_CONFLICT: &str = "Custodians' receipts for one escrowed key must describe one split: the same threshold and number of shares, and each share held by one custodian. Receipts that name different splits, or two custodians that each released the same share, leave the log unable to say how many custodians a release of the key really took.";
const CUSTODY_RELEASED_REFUSED: &str = "Under threshold custody, the provider refused a request or emergency on its content, yet the custodians logged releases of enough shares (k shares of one key, with distinct indices, from distinct custodians) to put one of its keys together again. The data's key went out although the provider's standards refused the request: either the custodians released against the refusal, or the refusal is counted while the data was opened. The order of the two does not matter: both stand in the log.";
const RELEASED_AND_REFUSED: &str = "The provider logged both a release and a refusal for the same request or emergency. One of the two does not say what happened: either access was given after all, or the refusal is counted while the data went out.";
const RELEASE_AGAINST_POLICY: &str = "The provider released access for a request or emergency that its own policy, as it last published it in the log before the release, refuses. The release contradicts the provider's stated standards.";
const REFUSAL_UNAUTHORISED: &str = "A provider logged a refusal of an entry that is not a request or emergency addressed to that provider. Refusals are counted per jurisdiction and agency; one for another provider's request, or for no request at all, distorts the counts.";
const REFUSAL_UNSUPPORTED: &str = "The provider refused a request or emergency for a reason that no line of its own published policy gives for that request. Either the published policy does not state the provider's real standards, or the reason logged is not the real one.";
const DISCLOSURE_OVERDUE: &str = "The entry's sealed-until date (as extended by courts) has passed, but no disclosure entry opens it or states why it stays sealed.";
const SEAL_EXTENSIONS: &str = "The seal of one entry was extended many times. Repeated extensions keep a request secret indefinitely, one step at a time.";
const ORDER_SPLITTING: &str = "Many requests with the same case reference were logged by one agency on one day. Splitting one order into many small ones can hide its true scope.";

/// Applies the rules at time `now`; returns the findings (signer_revoked and
/// entry_unbound_after_binding are found during entry verification and only
/// filtered here).
pub fn apply(rules: &Rules, facts: &[Fact], now: DateTime<Utc>) -> Vec<Finding> {
    let mut out = Vec::new();
    let access: HashMap<u64, (&Fact, &Access)> = facts
        .iter()
        .filter_map(|f| match &f.body {
            FactBody::Access(a) => Some((f.index, (f, a.as_ref()))),
            _ => None,
        })
        .collect();
    // Links from an entry to the entries that refer to it.
    let mut ratifications: HashMap<u64, Vec<(&Fact, bool)>> = HashMap::new();
    let mut extensions: HashMap<u64, Vec<(&Fact, DateTime<Utc>)>> = HashMap::new();
    let mut disclosed: HashMap<u64, Vec<u64>> = HashMap::new();
    let mut withdrawals: HashMap<u64, Vec<&Fact>> = HashMap::new();
    for f in facts {
        match &f.body {
            FactBody::Ratification {
                emergency: Some(e),
                granted,
            } => ratifications.entry(*e).or_default().push((f, *granted)),
            FactBody::Extension {
                entry: Some(e),
                sealed_until,
            } => extensions.entry(*e).or_default().push((f, *sealed_until)),
            FactBody::Disclosure { entry: Some(e) } => {
                disclosed.entry(*e).or_default().push(f.index)
            }
            FactBody::Withdrawal { entry: Some(e) } => withdrawals.entry(*e).or_default().push(f),
            _ => {}
        }
    }
    // A disclosure of a ratification discloses its emergency too.
    let mut via_ratification = Vec::new();
    for (e, rs) in &ratifications {
        for (r, _) in rs {
            if disclosed.contains_key(&r.index) {
                via_ratification.push((*e, r.index));
            }
        }
    }
    for (e, r) in via_ratification {
        disclosed.entry(e).or_default().push(r);
    }

    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();

    // emergency_unratified
    if rules.on("emergency_unratified") {
        let grace = Duration::hours(rules.ratification_grace_hours);
        for f in facts {
            let Some((_, a)) = access.get(&f.index) else {
                continue;
            };
            let Some(deadline) = a.ratify_by else {
                continue;
            };
            let rs = ratifications
                .get(&f.index)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let in_time = rs.iter().any(|(r, _)| r.created <= deadline + grace);
            if in_time || now <= deadline + grace {
                continue;
            }
            let mut entries = vec![f.index];
            entries.extend(rs.iter().map(|(r, _)| r.index));
            let late = !rs.is_empty();
            out.push(
                Finding::new(
                    "emergency_unratified",
                    Category::Rule,
                    Severity::High,
                    format!(
                        "emergency entry {} by {} was {} by its deadline {}",
                        f.index,
                        f.signer,
                        if late {
                            "ratified only after"
                        } else {
                            "not ratified"
                        },
                        fmt(deadline)
                    ),
                    EMERGENCY_UNRATIFIED,
                    entries,
                )
                .with_details(json!({
                    "agency": f.signer,
                    "ratify_by": fmt(deadline),
                    "grace_hours": rules.ratification_grace_hours,
                    "late_ratifications": rs.iter().map(|(r, _)| r.index).collect::<Vec<_>>(),
                })),
            );
        }
    }

    // emergency_spike
    if rules.on("emergency_spike") {
        let mut by_agency: BTreeMap<&str, Vec<(DateTime<Utc>, u64)>> = BTreeMap::new();
        for f in facts {
            if matches!(&f.body, FactBody::Access(a) if a.emergency) {
                by_agency
                    .entry(&f.signer)
                    .or_default()
                    .push((f.created, f.index));
            }
        }
        for (agency, mut list) in by_agency {
            out.extend(spikes(rules, agency, &mut list));
        }
    }

    // Releases: a provider's release of access, or a custodian's release of
    // one share of a target's escrowed key (threshold custody). Each must
    // name an authorisation that allowed it, within its window, before any
    // withdrawal.
    let grace = Duration::hours(rules.release_window_grace_hours);
    // Per authorisation, the custodians' share receipts naming it.
    let mut shares: BTreeMap<u64, Vec<(&Fact, ShareRef)>> = BTreeMap::new();
    for f in facts {
        let FactBody::Release {
            entry,
            targets,
            released_at,
            share,
        } = &f.body
        else {
            continue;
        };
        // Who released what, in the findings' words and details.
        let (who, role) = match share {
            Some(_) => (
                format!("share release {} by custodian {}", f.index, f.signer),
                "custodian",
            ),
            None => (format!("release {} by {}", f.index, f.signer), "provider"),
        };
        let target = entry.and_then(|e| access.get(&e));
        let Some((af, a)) = target else {
            if rules.on("release_without_authorisation") {
                let mut entries = vec![f.index];
                entries.extend(*entry);
                out.push(
                    Finding::new(
                        "release_without_authorisation",
                        Category::Rule,
                        Severity::Critical,
                        match entry {
                            Some(e) => {
                                format!(
                                    "{who} names entry {e}, which is not a request or emergency"
                                )
                            }
                            None => format!("{who} names no valid entry"),
                        },
                        RELEASE_UNAUTHORISED,
                        entries,
                    )
                    .with_details(json!({ role: f.signer })),
                );
            }
            continue;
        };
        if let Some(s) = share {
            shares.entry(af.index).or_default().push((f, *s));
        }
        if rules.on("release_without_authorisation") {
            let denied_before = ratifications.get(&af.index).and_then(|rs| {
                rs.iter()
                    .find(|(r, granted)| !granted && r.created <= *released_at)
                    .map(|(r, _)| r.index)
            });
            // A provider releases only what is addressed to it; a custodian
            // holds shares of keys escrowed with any provider, so any
            // request or emergency allows its share.
            let why = if share.is_none() && a.provider != f.signer {
                Some(format!(
                    "is addressed to {}, not to the releasing provider {}",
                    a.provider, f.signer
                ))
            } else {
                denied_before.map(|d| format!("was denied by the court at entry {d}"))
            };
            if let Some(why) = why {
                let mut entries = vec![f.index, af.index];
                entries.extend(denied_before);
                out.push(
                    Finding::new(
                        "release_without_authorisation",
                        Category::Rule,
                        Severity::Critical,
                        format!("{who} names entry {}, which {why}", af.index),
                        RELEASE_UNAUTHORISED,
                        entries,
                    )
                    .with_details(json!({ role: f.signer, "addressed_to": a.provider })),
                );
            }
        }
        if rules.on("release_outside_window")
            && (*released_at + grace < a.valid_from || *released_at >= a.valid_until + grace)
        {
            out.push(
                Finding::new(
                    "release_outside_window",
                    Category::Rule,
                    Severity::High,
                    format!(
                        "{who} at {} is outside entry {}'s window {} to {}",
                        fmt(*released_at),
                        af.index,
                        fmt(a.valid_from),
                        fmt(a.valid_until)
                    ),
                    RELEASE_WINDOW,
                    vec![f.index, af.index],
                )
                .with_details(json!({
                    role: f.signer,
                    "released_at": fmt(*released_at),
                    "valid_from": fmt(a.valid_from),
                    "valid_until": fmt(a.valid_until),
                    "grace_hours": rules.release_window_grace_hours,
                })),
            );
        }
        // A share is one target's: custodians' shares are counted per
        // authorisation, by distinct keys, below.
        if rules.on("release_excess_targets") && share.is_none() && *targets > a.target_count {
            out.push(
                Finding::new(
                    "release_excess_targets",
                    Category::Rule,
                    Severity::High,
                    format!(
                        "{who} is for {targets} targets; entry {} authorised {}",
                        af.index, a.target_count
                    ),
                    RELEASE_TARGETS,
                    vec![f.index, af.index],
                )
                .with_details(
                    json!({ "targets_released": targets, "target_count": a.target_count }),
                ),
            );
        }
        if rules.on("release_after_withdrawal") {
            if let Some(w) = withdrawals.get(&af.index).and_then(|ws| {
                ws.iter()
                    .find(|w| w.index < f.index && w.created <= *released_at)
            }) {
                out.push(
                    Finding::new(
                        "release_after_withdrawal",
                        Category::Rule,
                        Severity::High,
                        format!(
                            "{who} at {} is for entry {}, withdrawn at entry {} ({})",
                            fmt(*released_at),
                            af.index,
                            w.index,
                            fmt(w.created)
                        ),
                        RELEASE_WITHDRAWN,
                        vec![f.index, af.index, w.index],
                    )
                    .with_details(json!({ role: f.signer, "withdrawal": w.index })),
                );
            }
        }
    }
    if rules.on("release_excess_targets") {
        for (auth, receipts) in &shares {
            let Some((af, a)) = access.get(auth) else {
                continue;
            };
            let keys: BTreeSet<KeyTag> = receipts.iter().map(|(_, s)| s.key).collect();
            if keys.len() <= a.target_count as usize {
                continue;
            }
            let mut entries = vec![af.index];
            entries.extend(receipts.iter().map(|(f, _)| f.index));
            out.push(
                Finding::new(
                    "release_excess_targets",
                    Category::Rule,
                    Severity::High,
                    format!(
                        "custodians released shares of {} distinct keys for entry {}, which authorised {} targets",
                        keys.len(),
                        af.index,
                        a.target_count
                    ),
                    RELEASE_TARGETS,
                    entries,
                )
                .with_details(json!({
                    "keys": keys.iter().map(KeyTag::to_hex).collect::<Vec<_>>(),
                    "target_count": a.target_count,
                })),
            );
        }
    }
    if rules.on("custody_below_threshold") {
        custody_below_threshold(facts, &access, &shares, &mut out);
    }
    if rules.on("custody_share_conflict") {
        custody_share_conflict(facts, &mut out);
    }
    let answers = provider_answers(rules, facts, &access, &mut out);
    if rules.on("custody_released_refused") {
        custody_released_refused(&access, &answers, &shares, &mut out);
    }

    // disclosure_overdue and repeated_seal_extensions
    for f in facts {
        let Some((_, a)) = access.get(&f.index) else {
            continue;
        };
        let exts = extensions.get(&f.index).map(Vec::as_slice).unwrap_or(&[]);
        if rules.on("disclosure_overdue") {
            let sealed = exts
                .iter()
                .map(|(_, s)| *s)
                .fold(a.sealed_until, DateTime::max);
            let overdue_at = sealed + Duration::days(rules.disclosure_grace_days);
            if now > overdue_at && !disclosed.contains_key(&f.index) {
                let mut entries = vec![f.index];
                entries.extend(exts.iter().map(|(e, _)| e.index));
                out.push(
                    Finding::new(
                        "disclosure_overdue",
                        Category::Rule,
                        Severity::Medium,
                        format!(
                            // No count of days since: a finding says the same
                            // thing until a later entry changes it, so kept
                            // findings need not be rewritten as time passes.
                            "entry {} by {} was sealed until {}; no disclosure within the {}-day grace",
                            f.index,
                            f.signer,
                            fmt(sealed),
                            rules.disclosure_grace_days
                        ),
                        DISCLOSURE_OVERDUE,
                        entries,
                    )
                    .with_details(json!({
                        "agency": f.signer,
                        "sealed_until": fmt(sealed),
                        "grace_days": rules.disclosure_grace_days,
                    })),
                );
            }
        }
        if rules.on("repeated_seal_extensions") && exts.len() > rules.max_seal_extensions {
            let mut entries = vec![f.index];
            entries.extend(exts.iter().map(|(e, _)| e.index));
            out.push(
                Finding::new(
                    "repeated_seal_extensions",
                    Category::Rule,
                    Severity::Medium,
                    format!(
                        "entry {}'s seal was extended {} times (threshold {})",
                        f.index,
                        exts.len(),
                        rules.max_seal_extensions
                    ),
                    SEAL_EXTENSIONS,
                    entries,
                )
                .with_details(
                    json!({ "extensions": exts.len(), "threshold": rules.max_seal_extensions }),
                ),
            );
        }
    }

    // order_splitting
    if rules.on("order_splitting") {
        let mut groups: BTreeMap<(&str, &str, String), Vec<u64>> = BTreeMap::new();
        for f in facts {
            if let FactBody::Access(a) = &f.body {
                groups
                    .entry((
                        f.signer.as_str(),
                        a.case_reference.as_str(),
                        f.created.format("%Y-%m-%d").to_string(),
                    ))
                    .or_default()
                    .push(f.index);
            }
        }
        for ((agency, case, day), entries) in groups {
            if entries.len() > rules.order_splitting_max_per_day {
                out.push(
                    Finding::new(
                        "order_splitting",
                        Category::Rule,
                        Severity::Medium,
                        format!(
                            "{agency} logged {} requests for case {case:?} on {day} (threshold {})",
                            entries.len(),
                            rules.order_splitting_max_per_day
                        ),
                        ORDER_SPLITTING,
                        entries.clone(),
                    )
                    .with_details(json!({
                        "agency": agency,
                        "case_reference": case,
                        "day": day,
                        "count": entries.len(),
                        "threshold": rules.order_splitting_max_per_day,
                    })),
                );
            }
        }
    }
    out
}

/// The emergency_spike rule over one agency's emergencies, given as
/// (created, index) each: every burst of more than the threshold within one
/// window. Needs only those two values, so a reader can hand it an
/// agency's whole history without loading the records.
pub fn spikes(rules: &Rules, agency: &str, list: &mut [(DateTime<Utc>, u64)]) -> Vec<Finding> {
    let mut out = Vec::new();
    if !rules.on("emergency_spike") {
        return out;
    }
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let window = Duration::days(rules.emergency_spike_window_days);
    list.sort_unstable();
    let mut start = 0;
    let mut i = 0;
    while i < list.len() {
        while list[i].0 - list[start].0 >= window {
            start += 1;
        }
        if i + 1 - start > rules.emergency_spike_max {
            // Extend to the whole burst: every emergency within a window of
            // the first one.
            let mut end = i;
            while end + 1 < list.len() && list[end + 1].0 - list[start].0 < window {
                end += 1;
            }
            let burst = &list[start..=end];
            out.push(
                Finding::new(
                    "emergency_spike",
                    Category::Rule,
                    Severity::Medium,
                    format!(
                        "{agency} logged {} emergency requests within {} days from {} (threshold {})",
                        burst.len(),
                        rules.emergency_spike_window_days,
                        fmt(list[start].0),
                        rules.emergency_spike_max
                    ),
                    EMERGENCY_SPIKE,
                    burst.iter().map(|(_, i)| *i).collect(),
                )
                .with_details(json!({
                    "agency": agency,
                    "count": burst.len(),
                    "window_days": rules.emergency_spike_window_days,
                    "threshold": rules.emergency_spike_max,
                    "from": fmt(list[start].0),
                })),
            );
            // Continue after this burst.
            i = end + 1;
            start = i;
            continue;
        }
        i += 1;
    }
    out
}

/// A provider's published policy: its entry and the content lines read from
/// it (a line that does not parse is left out; the log checks each line when
/// it admits the entry, so there should be none).
struct Published<'a> {
    fact: &'a Fact,
    policy: ContentPolicy,
}

/// Per request or emergency: the releases and the refusals (their leaf
/// indexes, in log order) by the provider it is addressed to.
#[derive(Default)]
struct Answers {
    releases: Vec<u64>,
    refusals: Vec<u64>,
}

/// The rules over a provider's releases and refusals: released_and_refused,
/// release_against_published_policy, refusal_without_authorisation and
/// refusal_unsupported_by_policy. Returns the provider's answers per
/// request, for the rules that compare them with custodians' receipts.
fn provider_answers(
    rules: &Rules,
    facts: &[Fact],
    access: &HashMap<u64, (&Fact, &Access)>,
    out: &mut Vec<Finding>,
) -> BTreeMap<u64, Answers> {
    // Each provider's published policies, in log order.
    let mut policies: HashMap<&str, Vec<Published>> = HashMap::new();
    for f in facts {
        if let FactBody::Policy { lines } = &f.body {
            let policy = ContentPolicy {
                lines: lines
                    .iter()
                    .filter_map(|l| ContentLine::parse(l).ok())
                    .collect(),
            };
            policies
                .entry(f.signer.as_str())
                .or_default()
                .push(Published { fact: f, policy });
        }
    }
    // The provider's newest policy logged before entry `before`.
    let policy_before = |provider: &str, before: u64| {
        policies
            .get(provider)
            .and_then(|ps| ps.iter().rev().find(|p| p.fact.index < before))
    };
    // The request or emergency a provider's answer names, if it is
    // addressed to that provider (the others are findings of their own).
    let addressed = |entry: &Option<u64>, provider: &str| {
        entry
            .and_then(|e| access.get(&e))
            .filter(|(_, a)| a.provider == provider)
            .copied()
    };

    // Per request: the releases and refusals by the addressed provider.
    let mut answers: BTreeMap<u64, Answers> = BTreeMap::new();
    for f in facts {
        match &f.body {
            // A custodian's share is not the provider's answer, even when
            // the provider holds a share under the same name.
            FactBody::Release {
                entry, share: None, ..
            } => {
                let Some((af, a)) = addressed(entry, &f.signer) else {
                    continue;
                };
                answers.entry(af.index).or_default().releases.push(f.index);
                if !rules.on("release_against_published_policy") {
                    continue;
                }
                let Some(p) = policy_before(&f.signer, f.index) else {
                    continue;
                };
                if let Err(refusal) = p.policy.check_content(&a.content, &af.signer) {
                    out.push(
                        Finding::new(
                            "release_against_published_policy",
                            Category::Rule,
                            Severity::High,
                            format!(
                                "release {} by {} is for entry {}, which its policy at entry {} refuses ({}: {})",
                                f.index,
                                f.signer,
                                af.index,
                                p.fact.index,
                                refusal.reason.as_str(),
                                refusal.detail
                            ),
                            RELEASE_AGAINST_POLICY,
                            vec![p.fact.index, af.index, f.index],
                        )
                        .with_details(json!({
                            "provider": f.signer,
                            "agency": af.signer,
                            "policy": p.fact.index,
                            "reason": refusal.reason.as_str(),
                            "detail": refusal.detail,
                        })),
                    );
                }
            }
            FactBody::Refusal { entry, reason } => {
                let Some((af, a)) = addressed(entry, &f.signer) else {
                    if rules.on("refusal_without_authorisation") {
                        let target = entry.and_then(|e| access.get(&e));
                        let why = match (entry, target) {
                            (None, _) => "names no valid entry".to_owned(),
                            (Some(e), None) => {
                                format!("names entry {e}, which is not a request or emergency")
                            }
                            (Some(e), Some((_, a))) => format!(
                                "names entry {e}, which is addressed to {}, not to {}",
                                a.provider, f.signer
                            ),
                        };
                        let mut entries = vec![f.index];
                        entries.extend(*entry);
                        out.push(
                            Finding::new(
                                "refusal_without_authorisation",
                                Category::Rule,
                                Severity::High,
                                format!("refusal {} by {} {why}", f.index, f.signer),
                                REFUSAL_UNAUTHORISED,
                                entries,
                            )
                            .with_details(json!({
                                "provider": f.signer,
                                "addressed_to": target.map(|(_, a)| a.provider.clone()),
                            })),
                        );
                    }
                    continue;
                };
                answers.entry(af.index).or_default().refusals.push(f.index);
                if !rules.on("refusal_unsupported_by_policy") {
                    continue;
                }
                let Some(p) = policy_before(&f.signer, f.index) else {
                    continue;
                };
                // Supported if any line that applies gives this reason, not
                // only the first refusing one: a request may break several.
                let supported = p
                    .policy
                    .lines
                    .iter()
                    .filter(|l| l.applies_to(&af.signer))
                    .filter_map(|l| l.check_content(&a.content).err())
                    .any(|r| r.reason.as_str() == *reason);
                if !supported {
                    out.push(
                        Finding::new(
                            "refusal_unsupported_by_policy",
                            Category::Rule,
                            Severity::Low,
                            format!(
                                "refusal {} by {} of entry {} gives {reason}, which no line of its policy at entry {} gives for it",
                                f.index, f.signer, af.index, p.fact.index
                            ),
                            REFUSAL_UNSUPPORTED,
                            vec![p.fact.index, af.index, f.index],
                        )
                        .with_details(json!({
                            "provider": f.signer,
                            "agency": af.signer,
                            "policy": p.fact.index,
                            "reason": reason,
                        })),
                    );
                }
            }
            _ => {}
        }
    }

    if rules.on("released_and_refused") {
        for (request, Answers { releases, refusals }) in &answers {
            if releases.is_empty() || refusals.is_empty() {
                continue;
            }
            let provider = access
                .get(request)
                .map(|(_, a)| a.provider.clone())
                .unwrap_or_default();
            let mut entries = vec![*request];
            entries.extend(releases);
            entries.extend(refusals);
            out.push(
                Finding::new(
                    "released_and_refused",
                    Category::Rule,
                    Severity::High,
                    format!(
                        "entry {request} was both released (entry {}) and refused (entry {}) by {provider}",
                        list(releases),
                        list(refusals)
                    ),
                    RELEASED_AND_REFUSED,
                    entries,
                )
                .with_details(json!({
                    "provider": provider,
                    "releases": releases,
                    "refusals": refusals,
                })),
            );
        }
    }
    answers
}

/// Indexes as `1, 2, 3`.
fn list(indexes: &[u64]) -> String {
    indexes
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first 16 hex digits of a key's tag (as receipts name it), as titles name it.
fn short(hex: &str) -> &str {
    hex.get(..16).unwrap_or(hex)
}

/// Share receipts (each custodian's release entry and the share it names)
/// as the custody module reads them.
fn as_receipts<'a>(
    receipts: impl IntoIterator<Item = &'a (&'a Fact, ShareRef)>,
) -> Vec<Receipt<'a>> {
    receipts
        .into_iter()
        .map(|(r, s)| Receipt {
            custodian: &r.signer,
            share: *s,
        })
        .collect()
}

/// custody_released_refused: the provider a request or emergency is
/// addressed to refused it, and custodians' share receipts for it (logged
/// before or after the refusal) put one of its keys together, as
/// [`custody::assembled`] decides for the ledger. One share, or any k-1,
/// is not flagged: no key went out.
fn custody_released_refused(
    access: &HashMap<u64, (&Fact, &Access)>,
    answers: &BTreeMap<u64, Answers>,
    shares: &BTreeMap<u64, Vec<(&Fact, ShareRef)>>,
    out: &mut Vec<Finding>,
) {
    for (request, Answers { refusals, .. }) in answers {
        let (Some(receipts), Some((af, a))) = (shares.get(request), access.get(request)) else {
            continue;
        };
        if refusals.is_empty() {
            continue;
        }
        let keys = custody::assembled(&as_receipts(receipts));
        if keys.is_empty() {
            continue;
        }
        // The receipts of the keys put together, and who signed them.
        let used: Vec<&(&Fact, ShareRef)> = receipts
            .iter()
            .filter(|(_, s)| keys.contains(&s.key))
            .collect();
        let custodians: BTreeSet<&str> = used.iter().map(|(r, _)| r.signer.as_str()).collect();
        let custodians: Vec<&str> = custodians.into_iter().collect();
        let indexes: Vec<u64> = used.iter().map(|(r, _)| r.index).collect();
        let hexes: Vec<String> = keys.iter().map(KeyTag::to_hex).collect();
        let mut entries = vec![af.index];
        entries.extend(refusals);
        entries.extend(&indexes);
        out.push(
            Finding::new(
                "custody_released_refused",
                Category::Rule,
                Severity::High,
                format!(
                    "entry {} was refused by {} (entry {}), yet custodians {} released shares (entry {}) that put together {} of its key(s): {}",
                    af.index,
                    a.provider,
                    list(refusals),
                    custodians.join(", "),
                    list(&indexes),
                    keys.len(),
                    hexes
                        .iter()
                        .map(|h| format!("{}…", short(h)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                CUSTODY_RELEASED_REFUSED,
                entries,
            )
            .with_details(json!({
                "provider": a.provider,
                "refusals": refusals,
                "custodians": custodians,
                "receipts": indexes,
                "keys_put_together": hexes,
            })),
        );
    }
}

/// custody_below_threshold: a provider's release of an authorisation for
/// which custodians logged share receipts (custody is in use for it) is
/// for more targets than the receipts logged before it put keys together.
fn custody_below_threshold(
    facts: &[Fact],
    access: &HashMap<u64, (&Fact, &Access)>,
    shares: &BTreeMap<u64, Vec<(&Fact, ShareRef)>>,
    out: &mut Vec<Finding>,
) {
    for f in facts {
        let FactBody::Release {
            entry: Some(e),
            targets,
            share: None,
            ..
        } = &f.body
        else {
            continue;
        };
        let (Some(receipts), Some((af, _))) = (shares.get(e), access.get(e)) else {
            continue;
        };
        // Only shares logged before the provider's receipt can have given
        // it the keys: a custodian logs its receipt before it answers.
        let (before, after): (Vec<_>, Vec<_>) =
            receipts.iter().partition(|(r, _)| r.index < f.index);
        let keys = custody::assembled(&as_receipts(before.iter().copied()));
        if keys.len() >= *targets as usize {
            continue;
        }
        let mut entries = vec![f.index, af.index];
        entries.extend(receipts.iter().map(|(r, _)| r.index));
        out.push(
            Finding::new(
                "custody_below_threshold",
                Category::Rule,
                Severity::Critical,
                format!(
                    "release {} by {} is for {targets} target(s) of entry {}, but the custodians' share receipts logged before it put together {} key(s)",
                    f.index,
                    f.signer,
                    af.index,
                    keys.len()
                ),
                CUSTODY_BELOW_THRESHOLD,
                entries,
            )
            .with_details(json!({
                "provider": f.signer,
                "targets_released": targets,
                "keys_put_together": keys.iter().map(KeyTag::to_hex).collect::<Vec<_>>(),
                "receipts_before": before.iter().map(|(r, _)| r.index).collect::<Vec<_>>(),
                "receipts_after": after.iter().map(|(r, _)| r.index).collect::<Vec<_>>(),
            })),
        );
    }
}

/// custody_share_conflict: the receipts for one escrowed key (from every
/// authorisation they name) disagree on the split, or two custodians
/// released the same share of it.
fn custody_share_conflict(facts: &[Fact], out: &mut Vec<Finding>) {
    let mut by_key: BTreeMap<KeyTag, Vec<(&Fact, ShareRef)>> = BTreeMap::new();
    for f in facts {
        if let FactBody::Release { share: Some(s), .. } = &f.body {
            by_key.entry(s.key).or_default().push((f, *s));
        }
    }
    for (key, receipts) in by_key {
        let hex = key.to_hex();
        let short = short(&hex);
        let mut splits: BTreeMap<(u8, u8), Vec<u64>> = BTreeMap::new();
        let mut holders: BTreeMap<u8, BTreeMap<&str, Vec<u64>>> = BTreeMap::new();
        for (f, s) in &receipts {
            splits
                .entry((s.threshold, s.shares))
                .or_default()
                .push(f.index);
            holders
                .entry(s.index)
                .or_default()
                .entry(f.signer.as_str())
                .or_default()
                .push(f.index);
        }
        if splits.len() > 1 {
            let said: Vec<String> = splits
                .iter()
                .map(|((k, n), at)| format!("{k} of {n} (entry {})", list(at)))
                .collect();
            out.push(
                Finding::new(
                    "custody_share_conflict",
                    Category::Rule,
                    Severity::High,
                    format!(
                        "receipts for key {short}… name {} different splits: {}",
                        splits.len(),
                        said.join("; ")
                    ),
                    CUSTODY_SHARE_CONFLICT,
                    splits.values().flatten().copied().collect(),
                )
                .with_details(json!({
                    "key": hex,
                    "splits": splits
                        .iter()
                        .map(|((k, n), at)| json!({ "threshold": k, "shares": n, "receipts": at }))
                        .collect::<Vec<_>>(),
                })),
            );
        }
        for (index, by) in holders.iter().filter(|(_, by)| by.len() > 1) {
            let names: Vec<&str> = by.keys().copied().collect();
            out.push(
                Finding::new(
                    "custody_share_conflict",
                    Category::Rule,
                    Severity::High,
                    format!(
                        "custodians {} each released share {index} of key {short}…",
                        names.join(", ")
                    ),
                    CUSTODY_SHARE_CONFLICT,
                    by.values().flatten().copied().collect(),
                )
                .with_details(json!({
                    "key": hex,
                    "index": index,
                    "custodians": by,
                })),
            );
        }
    }
}
