//! The rules, run over what changed since the last run and kept in the
//! ledger: a run costs what is new, not the whole log.
//!
//! Every rule finding belongs to one subject, and is recomputed only when
//! something its subject depends on changed:
//!
//! - an authorisation's story (`rule:a:`, the authorisation and every entry
//!   about it: ratifications, extensions, disclosures, releases,
//!   withdrawals, refusals, with the provider's published policies): when
//!   an entry joins the story, or when the clock passes one of its
//!   deadlines (ratify-by and sealed-until, with their grace);
//! - a release or refusal that names no authorisation (`rule:e:`): once,
//!   when it is new;
//! - an agency's emergencies (`rule:s:`, emergency_spike): when it logs a
//!   new one;
//! - an agency's case on one day (`rule:o:`, order_splitting): when it logs
//!   another authorisation for it;
//! - an escrowed key under threshold custody (`rule:k:`,
//!   custody_share_conflict: every custodian's receipt for that key, from
//!   every authorisation): when a custodian logs another receipt for it.
//!   (custody_below_threshold and custody_released_refused read one story:
//!   a new receipt, like a new refusal, joins the story of the
//!   authorisation it names, which is evaluated again with every receipt
//!   and refusal already in it, whichever came first.)
//!
//! Other rules thresholds than the last run's, or a first run, recompute
//! everything (in bounded chunks).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use daylight_ledger::{Ledger, LedgerError, Summary};
use daylight_schemas::{KeyTag, Kind};

use crate::findings::Finding;
use crate::rules::{self, Rules};
use crate::verify::Fact;

/// The rules that read more than one story: each has its own subjects
/// (an agency's emergencies, an agency's case on a day, an escrowed key's
/// receipts); every other rule `rules::apply` runs reads one
/// authorisation's story.
const GROUP_RULES: &[&str] = &[
    "emergency_spike",
    "order_splitting",
    "custody_share_conflict",
];

/// Ledger keys of the rules' progress.
const RULES_KEY: &str = "auditor.rules";
const SIZE_KEY: &str = "auditor.rules_size";
const NOW_KEY: &str = "auditor.rules_now";

/// Stories read per query.
const CHUNK_ROOTS: u64 = 4096;

/// What one update did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Updated {
    /// Whether everything was recomputed (first run, other thresholds).
    pub full: bool,
    /// Stories evaluated.
    pub stories: u64,
    /// Agencies, cases and escrowed keys evaluated.
    pub groups: u64,
}

/// Brings the kept rule findings up to the ledger's entries and `now`.
pub fn update(
    ledger: &mut Ledger,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Result<Updated, LedgerError> {
    let size = ledger.size()?;
    let rules_text = serde_json::to_string(&rules.for_entries()).unwrap_or_default();
    let done: Option<u64> = ledger.meta(SIZE_KEY)?.and_then(|t| t.parse().ok());
    let last_now: Option<i64> = ledger.meta(NOW_KEY)?.and_then(|t| t.parse().ok());
    let same_rules = ledger.meta(RULES_KEY)?.as_deref() == Some(rules_text.as_str());
    let mut out = Updated::default();
    let policies: Vec<Fact> = ledger
        .of_kind(Kind::Policy)?
        .iter()
        .filter_map(Fact::of)
        .collect();
    let story_rules = without(rules, GROUP_RULES);
    let mut sink = Sink::default();

    let changed = match (done, last_now, same_rules) {
        (Some(d), Some(t), true) if d <= size => Some((d, t)),
        _ => None,
    };
    let (agencies, cases, keys) = match changed {
        None => {
            // Everything, story chunk by story chunk (the kept rule
            // findings go first, in their own transaction: if this run
            // stops, the next one starts over, as the progress is unchanged).
            out.full = true;
            let batch = ledger.findings_batch()?;
            batch.clear_findings("rule:")?;
            batch.set_meta(SIZE_KEY, "none")?;
            batch.commit()?;
            let mut lo = 0;
            while lo < size {
                let hi = (lo + CHUNK_ROOTS).min(size) - 1;
                let stories = ledger.stories(lo, hi)?;
                out.stories += stories.iter().filter(|s| s.root == Some(s.index)).count() as u64;
                for w in evaluate_stories(&story_rules, &stories, &policies, now) {
                    sink.push(ledger, w)?;
                }
                lo = hi + 1;
            }
            for s in &ledger.orphan_answers()? {
                sink.push(ledger, evaluate_orphan(&story_rules, s, now))?;
            }
            let cases = if rules.on("order_splitting") {
                ledger.crowded_cases(rules.order_splitting_max_per_day)?
            } else {
                Vec::new()
            };
            let keys = if rules.on("custody_share_conflict") {
                ledger.share_keys()?
            } else {
                Vec::new()
            };
            (ledger.emergency_agencies()?, cases, keys)
        }
        Some((done, last_now)) => {
            let changes = Changes::since(ledger, rules, done, last_now, now)?;
            let roots: Vec<u64> = changes.roots.into_iter().collect();
            let mut i = 0;
            while i < roots.len() {
                // Consecutive dirty roots close together share one query.
                let lo = roots[i];
                let mut j = i;
                while j + 1 < roots.len() && roots[j + 1] - lo < CHUNK_ROOTS {
                    j += 1;
                }
                let wanted = &roots[i..=j];
                let stories: Vec<Summary> = ledger
                    .stories(lo, roots[j])?
                    .into_iter()
                    .filter(|s| s.root.is_some_and(|r| wanted.binary_search(&r).is_ok()))
                    .collect();
                out.stories += wanted.len() as u64;
                let mut found: BTreeMap<String, Vec<Finding>> =
                    evaluate_stories(&story_rules, &stories, &policies, now)
                        .into_iter()
                        .collect();
                for r in wanted {
                    // A story with no finding now loses the ones it had.
                    let subject = story_subject(*r);
                    let f = found.remove(&subject).unwrap_or_default();
                    sink.push(ledger, (subject, f))?;
                }
                i = j + 1;
            }
            for s in &changes.orphans {
                sink.push(ledger, evaluate_orphan(&story_rules, s, now))?;
            }
            (
                changes.agencies.into_iter().collect(),
                changes.cases.into_iter().collect(),
                changes.keys.into_iter().collect(),
            )
        }
    };
    let split_rules = only(rules, "order_splitting");
    let conflict_rules = only(rules, "custody_share_conflict");
    for agency in agencies {
        out.groups += 1;
        let mut times = ledger.emergency_times(&agency)?;
        let f = rules::spikes(rules, &agency, &mut times);
        sink.push(ledger, (format!("rule:s:{agency}"), f))?;
    }
    for (agency, case, day) in cases {
        out.groups += 1;
        let facts: Vec<Fact> = ledger
            .case_on_day(&agency, &case, day)?
            .iter()
            .filter_map(Fact::of)
            .collect();
        let f = rules::apply(&split_rules, &facts, now);
        sink.push(ledger, (case_subject(&agency, &case, day), f))?;
    }
    for key in keys {
        out.groups += 1;
        let facts: Vec<Fact> = ledger
            .shares_of_key(&key)?
            .iter()
            .filter_map(Fact::of)
            .collect();
        let f = rules::apply(&conflict_rules, &facts, now);
        sink.push(ledger, (format!("rule:k:{}", key.to_hex()), f))?;
    }
    sink.flush(ledger)?;
    let batch = ledger.findings_batch()?;
    batch.set_meta(RULES_KEY, &rules_text)?;
    batch.set_meta(SIZE_KEY, &size.to_string())?;
    batch.set_meta(NOW_KEY, &now.timestamp().to_string())?;
    batch.commit()?;
    Ok(out)
}

/// What changed since the rules last ran: the stories new entries joined
/// or whose deadlines the clock passed, the new releases and refusals that
/// name no authorisation, the agencies with new emergencies, the cases
/// with new authorisations and the escrowed keys with new share receipts.
#[derive(Default)]
struct Changes {
    roots: BTreeSet<u64>,
    orphans: Vec<Summary>,
    agencies: BTreeSet<String>,
    cases: BTreeSet<(String, String, i64)>,
    keys: BTreeSet<KeyTag>,
}

impl Changes {
    fn since(
        ledger: &Ledger,
        rules: &Rules,
        done: u64,
        last_now: i64,
        now: DateTime<Utc>,
    ) -> Result<Changes, LedgerError> {
        let size = ledger.size()?;
        let mut c = Changes::default();
        let mut lo = done;
        while lo < size {
            let hi = (lo + CHUNK_ROOTS).min(size);
            for s in ledger.range(lo, hi)? {
                match (s.root, s.kind) {
                    (Some(r), _) => {
                        c.roots.insert(r);
                    }
                    (None, Some(Kind::Release | Kind::Refusal)) => c.orphans.push(s.clone()),
                    _ => {}
                }
                if s.kind == Some(Kind::Emergency) {
                    c.agencies.insert(s.signer.clone());
                }
                if let (Some(share), true) = (s.share, s.is_share_release()) {
                    c.keys.insert(share.key);
                }
                if let (Some(case), Some(created), true) =
                    (&s.case_reference, s.created, s.is_authorisation())
                {
                    let day = daylight_ledger::summary::epoch_day(created.date_naive());
                    c.cases.insert((s.signer.clone(), case.clone(), day));
                }
            }
            lo = hi;
        }
        // The stories whose deadline (with its grace) the clock passed,
        // either way: ratify-by plus the ratification grace, sealed-until
        // in force plus the disclosure grace.
        let now_s = now.timestamp();
        if last_now != now_s {
            let (a, b) = (last_now.min(now_s), last_now.max(now_s));
            let hours = |h: i64| h.saturating_mul(3600);
            let ratify = hours(rules.ratification_grace_hours);
            let sealed = hours(rules.disclosure_grace_days.saturating_mul(24));
            c.roots
                .extend(ledger.ratify_between(a.saturating_sub(ratify), b.saturating_sub(ratify))?);
            c.roots
                .extend(ledger.sealed_between(a.saturating_sub(sealed), b.saturating_sub(sealed))?);
        }
        Ok(c)
    }
}

/// Findings to write, per subject, flushed in transactions of bounded size
/// so memory stays flat however many there are.
#[derive(Default)]
struct Sink {
    pending: Vec<(String, Vec<Finding>)>,
    findings: usize,
}

impl Sink {
    const FLUSH_AT: usize = 8192;

    fn push(&mut self, ledger: &mut Ledger, w: (String, Vec<Finding>)) -> Result<(), LedgerError> {
        self.findings += w.1.len() + 1;
        self.pending.push(w);
        if self.findings >= Self::FLUSH_AT {
            self.flush(ledger)?;
        }
        Ok(())
    }

    fn flush(&mut self, ledger: &mut Ledger) -> Result<(), LedgerError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = ledger.findings_batch()?;
        for (subject, findings) in self.pending.drain(..) {
            let rows: Vec<(String, String)> = findings
                .iter()
                .map(|f| (f.sort_key(), f.rendered()))
                .collect();
            batch.set_findings(&subject, &rows)?;
        }
        batch.commit()?;
        self.findings = 0;
        Ok(())
    }
}

/// `rules` with every rule but `id` off (a group's own rule).
fn only(rules: &Rules, id: &str) -> Rules {
    without(
        rules,
        &rules::RULE_IDS
            .iter()
            .copied()
            .filter(|x| *x != id)
            .collect::<Vec<_>>(),
    )
}

/// `rules` with the rules `ids` off as well.
fn without(rules: &Rules, ids: &[&str]) -> Rules {
    let mut r = rules.clone();
    r.disabled.extend(ids.iter().map(|id| (*id).to_owned()));
    r
}

fn story_subject(root: u64) -> String {
    format!("rule:a:{root:012}")
}

fn case_subject(agency: &str, case: &str, day: i64) -> String {
    format!("rule:o:{agency}\u{1f}{case}\u{1f}{day}")
}

/// The story rules over the stories in `stories` (grouped by root), with
/// the providers' `policies`; the findings per story subject.
fn evaluate_stories(
    rules: &Rules,
    stories: &[Summary],
    policies: &[Fact],
    now: DateTime<Utc>,
) -> Vec<(String, Vec<Finding>)> {
    let root_of: HashMap<u64, u64> = stories
        .iter()
        .filter_map(|s| s.root.map(|r| (s.index, r)))
        .collect();
    let mut facts: Vec<Fact> = stories.iter().filter_map(Fact::of).collect();
    facts.extend(policies.iter().cloned());
    facts.sort_by_key(|f| f.index);
    let mut by_subject: BTreeMap<String, Vec<Finding>> = BTreeMap::new();
    for f in rules::apply(rules, &facts, now) {
        // A story's finding names at least one entry of the story.
        if let Some(root) = f.entries.iter().find_map(|e| root_of.get(e)) {
            by_subject.entry(story_subject(*root)).or_default().push(f);
        }
    }
    by_subject.into_iter().collect()
}

/// The story rules over a release or refusal that names no authorisation.
fn evaluate_orphan(rules: &Rules, s: &Summary, now: DateTime<Utc>) -> (String, Vec<Finding>) {
    let facts: Vec<Fact> = Fact::of(s).into_iter().collect();
    (
        format!("rule:e:{:012}", s.index),
        rules::apply(rules, &facts, now),
    )
}
