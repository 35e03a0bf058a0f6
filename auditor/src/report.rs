//! The transparency report: statistics over the verified entries of the
//! mirror, each number with the entries it counts, as JSON, CSV and Markdown.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::history::History;
use crate::mirror::AuditDir;
use crate::verify::{EntryVerifier, Fact, FactBody};
use crate::AuditError;
use daylight_ledger::custody::{self, Receipt};
use daylight_ledger::Ledger;

/// One counted value and the entries it counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Count {
    /// How many.
    pub count: u64,
    /// The entries counted (leaf indexes).
    pub entries: Vec<u64>,
}

impl Count {
    fn add(&mut self, index: u64, n: u64) {
        self.count += n;
        if self.entries.last() != Some(&index) {
            self.entries.push(index);
        }
    }
}

/// The transparency report.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TransparencyReport {
    /// The log's origin.
    pub origin: String,
    /// Verified tree size the report covers.
    pub tree_size: u64,
    /// Entries per kind.
    pub kinds: BTreeMap<String, Count>,
    /// Authorisations (requests and emergencies) per agency (signing key name).
    pub by_agency: BTreeMap<String, Count>,
    /// Authorisations per jurisdiction.
    pub by_jurisdiction: BTreeMap<String, Count>,
    /// Authorisations per legal basis.
    pub by_legal_basis: BTreeMap<String, Count>,
    /// Authorisations per data category (one authorisation counts in each of its categories).
    pub by_data_category: BTreeMap<String, Count>,
    /// Authorisations per offence.
    pub by_offence: BTreeMap<String, Count>,
    /// Authorisations per month of creation (YYYY-MM).
    pub by_month: BTreeMap<String, Count>,
    /// Emergency authorisations.
    pub emergencies: Count,
    /// Emergencies over all authorisations (0 if none).
    pub emergency_share: f64,
    /// Authorisations released: with at least one provider's release
    /// receipt, or (threshold custody) custodians' share receipts that put
    /// one of its keys together (the ledger's "released" status).
    pub authorisations_released: Count,
    /// Targets authorised, over all authorisations.
    pub targets_authorised: Count,
    /// Targets released, over all providers' release receipts.
    pub targets_released: Count,
    /// Custodians' receipts for the release of one share of a key
    /// (threshold custody), counted apart from the providers' releases.
    pub share_releases: Count,
    /// Refusals (by the provider a request or emergency is addressed to,
    /// naming it), counted per refusal entry.
    pub refusals: Count,
    /// Refusals per jurisdiction of the request refused.
    pub refusals_by_jurisdiction: BTreeMap<String, Count>,
    /// Refusals per agency (the refused request's signing key name).
    pub refusals_by_agency: BTreeMap<String, Count>,
    /// Refusals per reason code.
    pub refusals_by_reason: BTreeMap<String, Count>,
    /// Refusals per provider (the refusal's signing key name).
    pub refusals_by_provider: BTreeMap<String, Count>,
    /// Outcome totals (latest outcome per authorisation; amended ones replaced),
    /// in the terms of the US Wiretap Report.
    pub outcomes: BTreeMap<String, Count>,
    /// The log's keys, each identity's keys and the witness sets over time,
    /// from the log's registry entries.
    pub history: History,
}

impl TransparencyReport {
    /// Computes the report from verified facts.
    pub fn from_facts(origin: &str, tree_size: u64, facts: &[Fact]) -> TransparencyReport {
        let mut r = TransparencyReport {
            origin: origin.to_owned(),
            tree_size,
            ..Default::default()
        };
        let mut authorisations = 0u64;
        let mut released: HashMap<u64, ()> = HashMap::new();
        // Custodians' share receipts per entry named.
        let mut receipts: BTreeMap<u64, Vec<Receipt<'_>>> = BTreeMap::new();
        let mut latest_outcome: BTreeMap<u64, &Fact> = BTreeMap::new();
        for f in facts {
            r.kinds
                .entry(f.kind.as_str().to_owned())
                .or_default()
                .add(f.index, 1);
            match &f.body {
                FactBody::Access(a) => {
                    authorisations += 1;
                    r.by_agency
                        .entry(f.signer.clone())
                        .or_default()
                        .add(f.index, 1);
                    r.by_jurisdiction
                        .entry(a.jurisdiction.clone())
                        .or_default()
                        .add(f.index, 1);
                    r.by_legal_basis
                        .entry(a.legal_basis.clone())
                        .or_default()
                        .add(f.index, 1);
                    for c in &a.categories {
                        r.by_data_category
                            .entry((*c).to_owned())
                            .or_default()
                            .add(f.index, 1);
                    }
                    r.by_offence
                        .entry(a.offence.to_owned())
                        .or_default()
                        .add(f.index, 1);
                    r.by_month
                        .entry(f.created.format("%Y-%m").to_string())
                        .or_default()
                        .add(f.index, 1);
                    if a.emergency {
                        r.emergencies.add(f.index, 1);
                    }
                    r.targets_authorised.add(f.index, u64::from(a.target_count));
                }
                FactBody::Release {
                    entry: Some(e),
                    targets,
                    share,
                    ..
                } => match share {
                    // A custodian's share: one share gives no access; its
                    // authorisation counts as released once shares put a
                    // key together (below).
                    Some(s) => {
                        r.share_releases.add(f.index, 1);
                        receipts.entry(*e).or_default().push(Receipt {
                            custodian: &f.signer,
                            share: *s,
                        });
                    }
                    None => {
                        if released.insert(*e, ()).is_none() {
                            r.authorisations_released.add(*e, 1);
                        }
                        r.targets_released.add(f.index, u64::from(*targets));
                    }
                },
                FactBody::Refusal {
                    entry: Some(e),
                    reason,
                } => {
                    // Only refusals the log should have taken: of a request
                    // or emergency, by its provider (the rest are findings).
                    let Some((af, a)) = facts_by_index(facts, *e).and_then(|af| match &af.body {
                        FactBody::Access(a) if a.provider == f.signer => Some((af, a)),
                        _ => None,
                    }) else {
                        continue;
                    };
                    r.refusals.add(f.index, 1);
                    for (map, key) in [
                        (&mut r.refusals_by_jurisdiction, a.jurisdiction.as_str()),
                        (&mut r.refusals_by_agency, af.signer.as_str()),
                        (&mut r.refusals_by_reason, reason),
                        (&mut r.refusals_by_provider, f.signer.as_str()),
                    ] {
                        map.entry(key.to_owned()).or_default().add(f.index, 1);
                    }
                }
                FactBody::Outcome(o) => {
                    if let Some(e) = o.entry {
                        // Later entries replace earlier ones (amendments).
                        latest_outcome.insert(e, f);
                    }
                }
                _ => {}
            }
        }
        for (e, rs) in &receipts {
            if !custody::assembled(rs).is_empty() && released.insert(*e, ()).is_none() {
                r.authorisations_released.add(*e, 1);
            }
        }
        r.authorisations_released.entries.sort_unstable();
        r.emergency_share = if authorisations == 0 {
            0.0
        } else {
            r.emergencies.count as f64 / authorisations as f64
        };
        for f in latest_outcome.values() {
            let FactBody::Outcome(o) = &f.body else {
                continue;
            };
            let rows: [(&str, u64); 7] = [
                (
                    "encryption_encountered",
                    u64::from(o.encryption_encountered),
                ),
                (
                    "encryption_prevented_access",
                    u64::from(o.encryption_prevented_access),
                ),
                (
                    "communications_intercepted",
                    u64::from(o.communications_intercepted),
                ),
                (
                    "incriminating_communications",
                    u64::from(o.incriminating_communications),
                ),
                ("persons_intercepted", u64::from(o.persons_intercepted)),
                ("arrests", u64::from(o.arrests)),
                ("convictions", u64::from(o.convictions)),
            ];
            for (k, n) in rows {
                let c = r.outcomes.entry(k.to_owned()).or_default();
                if n > 0 {
                    c.add(f.index, n);
                }
            }
        }
        r
    }

    fn tables(&self) -> Vec<(&'static str, &BTreeMap<String, Count>)> {
        vec![
            ("kind", &self.kinds),
            ("agency", &self.by_agency),
            ("jurisdiction", &self.by_jurisdiction),
            ("legal_basis", &self.by_legal_basis),
            ("data_category", &self.by_data_category),
            ("offence", &self.by_offence),
            ("month", &self.by_month),
            ("outcome", &self.outcomes),
            ("refusal_jurisdiction", &self.refusals_by_jurisdiction),
            ("refusal_agency", &self.refusals_by_agency),
            ("refusal_reason", &self.refusals_by_reason),
            ("refusal_provider", &self.refusals_by_provider),
        ]
    }

    fn totals(&self) -> Vec<(&'static str, &Count)> {
        vec![
            ("emergencies", &self.emergencies),
            ("authorisations_released", &self.authorisations_released),
            ("targets_authorised", &self.targets_authorised),
            ("targets_released", &self.targets_released),
            ("share_releases", &self.share_releases),
            ("refusals", &self.refusals),
        ]
    }

    /// CSV: `table,key,count,entries` (entries space-separated).
    pub fn to_csv(&self) -> String {
        let mut s = String::from("table,key,count,entries\n");
        let esc = |v: &str| format!("\"{}\"", v.replace('"', "\"\""));
        let list = |c: &Count| {
            c.entries
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        };
        for (table, map) in self.tables() {
            for (k, c) in map {
                s.push_str(&format!("{table},{},{},{}\n", esc(k), c.count, list(c)));
            }
        }
        for (k, c) in self.totals() {
            s.push_str(&format!("total,{k},{},{}\n", c.count, list(c)));
        }
        s.push_str(&format!(
            "total,emergency_share,{:.4},\n",
            self.emergency_share
        ));
        s
    }

    /// Markdown, for people; the JSON and CSV list the entries behind each number.
    pub fn to_markdown(&self) -> String {
        let mut s = format!(
            "# Transparency report: {}\n\nEvery number below is computed from the {} entries of the log verified by `daylight audit`; `report.json` and `report.csv` list the entries behind each.\n\n",
            self.origin, self.tree_size
        );
        let authorisations: u64 = self.by_agency.values().map(|c| c.count).sum();
        s.push_str(&format!(
            "- Authorisations (requests and emergencies): {authorisations}\n- Emergencies: {} ({:.1}% of authorisations)\n- Authorisations released (a provider's receipt, or custodians' shares that put a key together): {}\n- Targets authorised: {}; targets released by providers: {}\n- Custodians' share receipts: {}\n- Refusals by the addressed provider: {}\n\n",
            self.emergencies.count,
            self.emergency_share * 100.0,
            self.authorisations_released.count,
            self.targets_authorised.count,
            self.targets_released.count,
            self.share_releases.count,
            self.refusals.count
        ));
        for (table, map) in self.tables() {
            if map.is_empty() {
                continue;
            }
            s.push_str(&format!(
                "## By {}\n\n| {table} | count |\n| --- | ---: |\n",
                table.replace('_', " ")
            ));
            for (k, c) in map {
                s.push_str(&format!("| {} | {} |\n", k.replace('|', "\\|"), c.count));
            }
            s.push('\n');
        }
        s.push_str(&history_markdown(&self.history));
        s
    }
}

/// The fact at leaf index `index` (facts are kept one per entry, in order;
/// a gap would come from a mirror that is not whole, so search then).
fn facts_by_index(facts: &[Fact], index: u64) -> Option<&Fact> {
    match facts.get(index as usize) {
        Some(f) if f.index == index => Some(f),
        _ => facts
            .binary_search_by_key(&index, |f| f.index)
            .ok()
            .map(|i| &facts[i]),
    }
}

/// A table cell: `-` for nothing, pipes escaped.
fn cell<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string().replace('|', "\\|"))
}

/// The history as Markdown tables (entries are leaf indexes of the log).
fn history_markdown(h: &History) -> String {
    let mut s = String::from(
        "## Log keys\n\nA checkpoint of size N is signed by the key current after the registry entries below N; a replaced key may sign beside the new one until its transition ends.\n\n| key | from entry | replaced at | transition until |\n| --- | --- | --- | --- |\n",
    );
    for k in &h.log_keys {
        s.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            k.vkey,
            k.from.map_or_else(|| "first".to_owned(), |f| f.to_string()),
            cell(k.replaced_at),
            cell(k.until.as_deref()),
        ));
    }
    s.push_str("\n## Keys of each identity\n\nRecords a key signed before it was revoked or replaced stay valid; after, they are findings.\n\n| identity | role | key | added at | revoked or replaced at | replaced by |\n| --- | --- | --- | ---: | --- | --- |\n");
    for i in &h.identities {
        for k in &i.keys {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                cell(Some(&i.name)),
                i.role,
                k.vkey,
                k.added_at,
                cell(k.revoked_at),
                cell(k.replaced_by.as_deref()),
            ));
        }
    }
    s.push_str("\n## Witness sets\n\nEach row applies to checkpoints that include its entry.\n\n| from entry | quorum | witnesses |\n| ---: | --- | --- |\n");
    for w in &h.witness_sets {
        s.push_str(&format!(
            "| {} | {} | {} |\n",
            w.from,
            cell(w.quorum),
            if w.witnesses.is_empty() {
                "none".to_owned()
            } else {
                w.witnesses.join(", ")
            },
        ));
    }
    s.push('\n');
    s
}

/// Builds the report from the audit directory's verified mirror and writes
/// `report/report.{json,csv,md}`; returns it.
pub fn write_report(dir: &AuditDir) -> Result<TransparencyReport, AuditError> {
    let pinned = dir
        .pinned()?
        .ok_or_else(|| AuditError::Corrupt("no log.json: run `daylight audit` first".into()))?;
    let state = dir.state()?;
    let key = daylight_core::VerifierKey::parse(&pinned.vkey)
        .map_err(|e| AuditError::Corrupt(format!("log.json key: {e}")))?;
    // The verified entries' facts, from the ledger the audit keeps (no
    // entry is read or verified again here).
    let ledger = Ledger::open_for(
        &dir.join(crate::LEDGER_FILE),
        &pinned.origin,
        daylight_ledger::Use::Rules,
    )?;
    if ledger.size()? != state.size {
        return Err(AuditError::Corrupt(format!(
            "the ledger holds {} entries, the verified state {}: run `daylight audit` again",
            ledger.size()?,
            state.size
        )));
    }
    let mut facts = Vec::new();
    let mut lo = 0;
    while lo < state.size {
        let hi = (lo + 65_536).min(state.size);
        facts.extend(ledger.range(lo, hi)?.iter().filter_map(Fact::of));
        lo = hi;
    }
    let mut report = TransparencyReport::from_facts(&pinned.origin, state.size, &facts);
    let ev = EntryVerifier::resume(key, &ledger, state.size, 1)?;
    report.history = History::of(ev.registry(), state.size);
    let json = serde_json::to_vec_pretty(&report)
        .map_err(|e| AuditError::Io(format!("report.json: {e}")))?;
    dir.write("report/report.json", &json)?;
    dir.write("report/report.csv", report.to_csv().as_bytes())?;
    dir.write("report/report.md", report.to_markdown().as_bytes())?;
    Ok(report)
}
