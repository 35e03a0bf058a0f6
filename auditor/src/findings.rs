//! Findings and the `findings.json` document (schema `daylight.audit.findings/v1`,
//! documented in `auditor/README.md`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The schema identifier written in every `findings.json`.
pub const FINDINGS_SCHEMA: &str = "daylight.audit.findings/v1";

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Proof that the log lied, or an entry nobody was entitled to write.
    Critical,
    /// A likely breach of the rules that needs an explanation.
    High,
    /// A pattern worth a closer look.
    Medium,
    /// Minor.
    Low,
    /// For information; does not change the exit code.
    Info,
}

impl Severity {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }
}

/// What part of the audit a finding comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// The log's signed statements do not hold together (exit 2).
    Integrity,
    /// An entry the log should not have accepted.
    Entry,
    /// An accountability rule over the entries.
    Rule,
    /// Something the auditor could not check (a witness down); informational.
    Notice,
}

impl Category {
    /// Whether a finding of it makes the audit fail with exit code 2.
    pub fn is_integrity(self) -> bool {
        self == Category::Integrity
    }
}

/// Whether a finding of `category` and `severity` counts towards exit code 1.
fn counts(category: Category, severity: Severity) -> bool {
    severity != Severity::Info && category != Category::Notice
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable identifier of the check or rule, e.g. `emergency_unratified`.
    pub id: String,
    /// Which part of the audit.
    pub category: Category,
    /// How serious.
    pub severity: Severity,
    /// One line: what was found, with the numbers.
    pub title: String,
    /// What the check means, in plain language.
    pub explanation: String,
    /// The log entries involved (leaf indexes), ascending.
    pub entries: Vec<u64>,
    /// Files under the audit directory that prove it (relative paths).
    pub evidence: Vec<String>,
    /// Check-specific values (dates, counts, thresholds).
    pub details: serde_json::Value,
}

impl Finding {
    /// A finding with no evidence files and no details.
    pub fn new(
        id: &str,
        category: Category,
        severity: Severity,
        title: String,
        explanation: &str,
        mut entries: Vec<u64>,
    ) -> Finding {
        entries.sort_unstable();
        entries.dedup();
        Finding {
            id: id.to_owned(),
            category,
            severity,
            title,
            explanation: explanation.to_owned(),
            entries,
            evidence: Vec::new(),
            details: serde_json::Value::Object(Default::default()),
        }
    }

    /// With details.
    pub fn with_details(mut self, details: serde_json::Value) -> Finding {
        self.details = details;
        self
    }

    /// With evidence files.
    pub fn with_evidence(mut self, evidence: Vec<String>) -> Finding {
        self.evidence = evidence;
        self
    }

    /// A text whose order is [`sort_findings`]' order (category, severity,
    /// id, entries, title), for findings kept sorted in the ledger.
    pub fn sort_key(&self) -> String {
        let entries: Vec<String> = self.entries.iter().map(|e| format!("{e:020}")).collect();
        format!(
            "{}{}\u{1f}{}\u{1f}{}\u{1f}{}",
            self.category as u8,
            self.severity as u8,
            self.id,
            entries.join(","),
            self.title
        )
    }

    /// The finding as `findings.json` lists it: pretty JSON, each line
    /// indented by four spaces. The ledger keeps findings in this form, so a
    /// run writes them out without reading them as values again.
    pub fn rendered(&self) -> String {
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        let mut out = String::with_capacity(text.len() + 64);
        for (i, line) in text.lines().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str("    ");
            out.push_str(line);
        }
        out
    }

    /// Whether it makes the audit fail with exit code 2.
    pub fn is_integrity(&self) -> bool {
        self.category.is_integrity()
    }

    /// Whether it counts towards exit code 1.
    pub fn counts(&self) -> bool {
        counts(self.category, self.severity)
    }
}

/// The overall result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No findings (exit 0).
    Clean,
    /// Rule or entry findings (exit 1).
    Findings,
    /// An integrity failure (exit 2).
    IntegrityFailure,
}

impl Status {
    /// The process exit code for this status.
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Clean => 0,
            Status::Findings => 1,
            Status::IntegrityFailure => 2,
        }
    }

    /// From what the findings hold: an integrity failure, and any that
    /// counts towards exit code 1.
    pub fn of(integrity: bool, counting: bool) -> Status {
        if integrity {
            Status::IntegrityFailure
        } else if counting {
            Status::Findings
        } else {
            Status::Clean
        }
    }
}

/// The log audited.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogInfo {
    /// Its base URL.
    pub url: String,
    /// Its origin line.
    pub origin: String,
    /// Its verifier key (pinned in `DIR/log.json` on the first run).
    pub vkey: String,
}

/// A checkpoint, as summarised in the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// Tree size.
    pub size: u64,
    /// Root hash, base64 as in the checkpoint.
    pub root: String,
    /// Where the signed checkpoint is kept (relative to the audit directory).
    pub file: String,
    /// Valid cosignatures by witnesses the log lists.
    pub cosignatures: usize,
}

/// What one witness said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessInfo {
    /// Its monitoring URL prefix.
    pub url: String,
    /// `consistent`, `split_view`, `unreachable`, `no_checkpoint`, `invalid` or `ahead_unverified`.
    pub status: String,
    /// Size of its latest cosigned checkpoint for this log, if any.
    pub size: Option<u64>,
    /// Root of that checkpoint (base64), if any.
    pub root: Option<String>,
    /// Where that checkpoint is kept, if fetched.
    pub file: Option<String>,
}

/// What one C2SP tlog-mirror of the log held (`--mirror`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorInfo {
    /// Its monitoring prefix for the log (`MIRROR/<hex sha256(origin)>`).
    pub url: String,
    /// `consistent`, `behind`, `ahead`, `split_view`, `content_mismatch`,
    /// `unreachable`, `no_checkpoint`, `invalid` or `unverified`.
    pub status: String,
    /// Size of the mirror's checkpoint, if any.
    pub size: Option<u64>,
    /// Root of that checkpoint (base64), if any.
    pub root: Option<String>,
    /// Where that checkpoint is kept, if fetched.
    pub file: Option<String>,
    /// Tiles and entry bundles fetched from the mirror and compared with
    /// the verified tree in this run.
    pub compared: usize,
}

/// The whole `findings.json` document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FindingsReport {
    /// Always [`FINDINGS_SCHEMA`].
    pub schema: String,
    /// When the audit ran (RFC 3339).
    pub generated_at: String,
    /// The time the rules were evaluated at (RFC 3339; `--now`).
    pub now: String,
    /// `clean`, `findings` or `integrity_failure`.
    pub status: Status,
    /// 0, 1 or 2.
    pub exit_code: u8,
    /// The log.
    pub log: LogInfo,
    /// The newest checkpoint verified (the mirror's state), if any.
    pub verified_checkpoint: Option<CheckpointInfo>,
    /// The checkpoint the log served in this run, if it could be read.
    pub served_checkpoint: Option<CheckpointInfo>,
    /// Entries verified in total (the verified tree size).
    pub entries_audited: u64,
    /// Entries newly fetched and verified in this run.
    pub entries_new: u64,
    /// Findings per severity.
    pub counts: BTreeMap<String, usize>,
    /// Every finding, integrity first, then entry, rule and notice findings.
    pub findings: Vec<Finding>,
    /// What each witness said.
    pub witnesses: Vec<WitnessInfo>,
    /// What each mirror held (`--mirror`).
    #[serde(default)]
    pub mirrors: Vec<MirrorInfo>,
    /// The rule thresholds in effect.
    pub rules: serde_json::Value,
    /// The log's keys, each identity's keys and the witness sets over time,
    /// from the registry entries of the newest verified tree (this run's, or
    /// the last one kept if this run verified none). `null` before any.
    #[serde(default)]
    pub history: Option<crate::history::History>,
    /// How many findings there are in all (`findings` holds the first
    /// [`Tally::KEPT`] of them in memory; `findings.json` holds every one).
    #[serde(skip, default)]
    pub findings_total: u64,
}

/// The findings of a run as they are written, counted as they pass: the
/// counts and status need every finding, the report in memory only the
/// first [`Tally::KEPT`].
pub struct Tally<W: std::io::Write> {
    out: W,
    /// Findings written.
    pub total: u64,
    /// Counts per severity.
    pub counts: BTreeMap<String, usize>,
    /// The first findings, in order.
    pub kept: Vec<Finding>,
    integrity: bool,
    counting: bool,
}

impl<W: std::io::Write> Tally<W> {
    /// Findings a report keeps in memory; `findings.json` has them all.
    pub const KEPT: usize = 10_000;

    /// A tally writing the findings' JSON array items to `out`.
    pub fn new(out: W) -> Tally<W> {
        Tally {
            out,
            total: 0,
            counts: count_by_severity(&[]),
            kept: Vec::new(),
            integrity: false,
            counting: false,
        }
    }

    /// Writes and counts the next finding.
    pub fn add(&mut self, f: Finding) -> std::io::Result<()> {
        let (key, text) = (f.sort_key(), f.rendered());
        self.write(&key, &text)?;
        if self.kept.len() < Self::KEPT {
            self.kept.push(f);
        }
        Ok(())
    }

    /// Writes and counts the next finding, given as its sort key and
    /// [`Finding::rendered`] text (as the ledger keeps it): counted from the
    /// key, read as a value only if the report keeps it in memory.
    pub fn add_rendered(&mut self, key: &str, text: &str) -> std::io::Result<()> {
        self.write(key, text)?;
        if self.kept.len() < Self::KEPT {
            let f: Finding = serde_json::from_str(text).map_err(std::io::Error::other)?;
            self.kept.push(f);
        }
        Ok(())
    }

    fn write(&mut self, key: &str, text: &str) -> std::io::Result<()> {
        let (category, severity, _) = SortKey::parse(key).ok_or_else(|| {
            std::io::Error::other(format!("a kept finding's sort key is damaged: {key:?}"))
        })?;
        self.out
            .write_all(if self.total > 0 { b",\n" } else { b"\n" })?;
        self.out.write_all(text.as_bytes())?;
        self.total += 1;
        *self.counts.entry(severity.as_str().to_owned()).or_default() += 1;
        self.integrity |= category.is_integrity();
        self.counting |= counts(category, severity);
        Ok(())
    }

    /// The status of everything added.
    pub fn status(&self) -> Status {
        Status::of(self.integrity, self.counting)
    }

    /// The writer back, flushed.
    pub fn into_inner(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// What a [`Finding::sort_key`] says: category, severity and id.
pub struct SortKey;

impl SortKey {
    /// The category, severity and id a sort key starts with.
    pub fn parse(key: &str) -> Option<(Category, Severity, &str)> {
        let mut chars = key.chars();
        let category = match chars.next()? {
            '0' => Category::Integrity,
            '1' => Category::Entry,
            '2' => Category::Rule,
            '3' => Category::Notice,
            _ => return None,
        };
        let severity = match chars.next()? {
            '0' => Severity::Critical,
            '1' => Severity::High,
            '2' => Severity::Medium,
            '3' => Severity::Low,
            '4' => Severity::Info,
            _ => return None,
        };
        let id = key.get(3..)?.split('\u{1f}').next()?;
        Some((category, severity, id))
    }
}

/// Sorts findings into their stable order: category, severity, id, entries.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (a.category, a.severity, &a.id, &a.entries, &a.title)
            .cmp(&(b.category, b.severity, &b.id, &b.entries, &b.title))
    });
}

/// Counts per severity, every severity present (zero if none).
pub fn count_by_severity(findings: &[Finding]) -> BTreeMap<String, usize> {
    let mut out: BTreeMap<String, usize> = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ]
    .iter()
    .map(|s| (s.as_str().to_owned(), 0))
    .collect();
    for f in findings {
        *out.entry(f.severity.as_str().to_owned()).or_default() += 1;
    }
    out
}

impl FindingsReport {
    /// A one-screen summary for a terminal.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let verdict = match self.status {
            Status::Clean => "CLEAN",
            Status::Findings => "FINDINGS",
            Status::IntegrityFailure => "INTEGRITY FAILURE",
        };
        s.push_str(&format!(
            "daylight audit: {verdict} (exit {}) for {} at {}\n",
            self.exit_code, self.log.origin, self.log.url
        ));
        if let Some(cp) = &self.verified_checkpoint {
            s.push_str(&format!(
                "verified tree: {} entries, root {} ({} cosignatures); {} new this run\n",
                cp.size, cp.root, cp.cosignatures, self.entries_new
            ));
        } else {
            s.push_str("verified tree: none yet\n");
        }
        if let Some(h) = &self.history {
            if let Some(current) = h.log_keys.last() {
                if h.log_keys.len() > 1 {
                    s.push_str(&format!(
                        "log keys: {} over time; current {} since entry {}\n",
                        h.log_keys.len(),
                        current.vkey,
                        current
                            .from
                            .map_or_else(|| "0".to_owned(), |f| f.to_string())
                    ));
                }
            }
        }
        for w in &self.witnesses {
            s.push_str(&format!(
                "witness {}: {}{}\n",
                w.url,
                w.status,
                w.size.map(|n| format!(" (size {n})")).unwrap_or_default()
            ));
        }
        for m in &self.mirrors {
            s.push_str(&format!(
                "mirror {}: {}{}\n",
                m.url,
                m.status,
                m.size.map(|n| format!(" (size {n})")).unwrap_or_default()
            ));
        }
        let counts: Vec<String> = self
            .counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        if counts.is_empty() {
            s.push_str("findings: none\n");
        } else {
            s.push_str(&format!("findings: {}\n", counts.join(", ")));
        }
        const MAX_LINES: usize = 15;
        for f in self.findings.iter().take(MAX_LINES) {
            let entries = match f.entries.len() {
                0 => String::new(),
                1..=5 => format!(
                    " [entries {}]",
                    f.entries
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                n => format!(" [{n} entries from {}]", f.entries[0]),
            };
            s.push_str(&format!(
                "  {:<8} {}: {}{}\n",
                f.severity.as_str(),
                f.id,
                f.title,
                entries
            ));
        }
        let total = self.findings_total.max(self.findings.len() as u64);
        if total > MAX_LINES as u64 {
            s.push_str(&format!(
                "  ... and {} more in findings.json\n",
                total - MAX_LINES as u64
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sort_key_says_category_severity_and_id() {
        for (category, severity) in [
            (Category::Integrity, Severity::Critical),
            (Category::Entry, Severity::High),
            (Category::Rule, Severity::Medium),
            (Category::Rule, Severity::Low),
            (Category::Notice, Severity::Info),
        ] {
            let f = Finding::new("some_id", category, severity, "t".into(), "e", vec![3, 1]);
            assert_eq!(
                SortKey::parse(&f.sort_key()),
                Some((category, severity, "some_id"))
            );
            // What the ledger keeps reads back as the same finding.
            let back: Finding = serde_json::from_str(&f.rendered()).unwrap();
            assert_eq!(back, f);
        }
        assert_eq!(SortKey::parse("9\u{1f}x"), None);
        assert_eq!(SortKey::parse(""), None);
    }

    #[test]
    fn sort_keys_order_as_sort_findings_does() {
        let mut fs = vec![
            Finding::new(
                "b",
                Category::Rule,
                Severity::High,
                "x".into(),
                "",
                vec![10],
            ),
            Finding::new(
                "a",
                Category::Rule,
                Severity::High,
                "x".into(),
                "",
                vec![9, 10],
            ),
            Finding::new("a", Category::Rule, Severity::High, "x".into(), "", vec![9]),
            Finding::new(
                "z",
                Category::Integrity,
                Severity::Critical,
                "x".into(),
                "",
                vec![],
            ),
            Finding::new(
                "a",
                Category::Rule,
                Severity::Medium,
                "x".into(),
                "",
                vec![1],
            ),
            Finding::new(
                "a",
                Category::Rule,
                Severity::High,
                "y".into(),
                "",
                vec![100],
            ),
        ];
        let mut by_key = fs.clone();
        by_key.sort_by_key(Finding::sort_key);
        sort_findings(&mut fs);
        assert_eq!(fs, by_key);
    }
}
