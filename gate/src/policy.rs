//! The gate's policy file: C2SP tlog-policy (`log`, `witness`, `group`,
//! `quorum`) extended with Daylight's own lines.
//!
//! ```text
//! # comments and blank lines are ignored
//! log <log vkey> [<url>]                  C2SP: a log the gate trusts (one or more)
//! witness <name> <cosignature vkey> [<url>]   C2SP: a witness
//! group <name> all|any|<k> <member>...    C2SP: k of the members (witnesses or earlier groups)
//! quorum <name>                           C2SP: what must have cosigned (`none` is refused)
//! daylight-agency <vkey>                  an agency key whose requests the gate honours (one or more)
//! daylight-court <vkey>                   a court key: its ratifications let emergencies past their deadline through
//! daylight-provider <name>                this provider: the name of its registered key (at most once)
//! daylight-max-age <seconds>              newest witness cosignature may be at most this old (exactly once)
//! daylight-emergencies allow|deny         whether emergency entries are honoured (at most once; default deny)
//! daylight-log-key-until <vkey> <time>    a rotated-out log key (also on a `log` line) and its transition end (RFC 3339)
//! daylight-mirror required <seconds>      refuse without a verified mirror of the log at most this old (at most once)
//! ```
//!
//! And the content lines of [`daylight_schemas::content_policy`], any
//! number, kept in order: what a request may ask (jurisdictions, issuing
//! authorities, data categories, offences, targets, validity), for every
//! agency or, ending `for AGENCY`, for the agency with that key name.
//!
//! ```text
//! daylight-jurisdictions allow|deny CODE... [for AGENCY]
//! daylight-issuers allow TYPE... [for AGENCY]
//! daylight-categories allow|deny CATEGORY... [for AGENCY]
//! daylight-offences allow OFFENCE... [for AGENCY]
//! daylight-max-targets N [for AGENCY]
//! daylight-max-validity-days N [for AGENCY]
//! ```
//!
//! The C2SP lines are parsed by [`daylight_core::WitnessPolicy::parse_with`];
//! the Daylight lines through its extension hook. Anything else is an error
//! with its line number.

use chrono::{DateTime, SecondsFormat, Utc};
use daylight_core::policy::WitnessPolicy;
use daylight_core::{KeyName, KeyType, VerifierKey};
use daylight_schemas::content_policy::{ContentLine, ContentPolicy};

/// The largest `daylight-max-age`: ten years, in seconds.
pub const MAX_MAX_AGE: u64 = 10 * 366 * 24 * 3600;

/// Why a policy file was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum PolicyError {
    /// A C2SP line, or a Daylight line, that does not parse (with its line number).
    #[error("{0}")]
    Syntax(#[from] daylight_core::policy::PolicyError),
    /// The policy parses but lacks something the gate needs, or asks for
    /// something the gate refuses.
    #[error("policy: {0}")]
    Incomplete(String),
}

/// A parsed gate policy: which log, witnesses and quorum to believe, which
/// agencies to honour, who this provider is, and how fresh a checkpoint
/// must be. Build one with [`Policy::parse`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    witnesses: WitnessPolicy,
    agencies: Vec<VerifierKey>,
    courts: Vec<VerifierKey>,
    provider: Option<String>,
    max_age: u64,
    emergencies: bool,
    retired: Vec<RetiredLogKey>,
    mirror_max_age: Option<u64>,
    content: ContentPolicy,
}

/// A log key rotated out (a `daylight-log-key-until` line): the log signed
/// checkpoints with it until `until`. A checkpoint signed by it alone is
/// believed only if the witness quorum cosigned it before then; a stolen
/// old key can sign new checkpoints, but honest witnesses date their
/// cosignatures now, after the end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetiredLogKey {
    /// The key (also listed on a `log` line).
    pub key: VerifierKey,
    /// The end of its transition period.
    pub until: DateTime<Utc>,
}

/// One of a log's keys as the gate uses it: the key and, if rotated out,
/// the end of its transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogKey<'a> {
    /// The key.
    pub key: &'a VerifierKey,
    /// `None` for a current key; the transition end for a rotated-out one.
    pub until: Option<DateTime<Utc>>,
}

#[derive(Default)]
struct Extra {
    agencies: Vec<VerifierKey>,
    courts: Vec<VerifierKey>,
    provider: Option<String>,
    max_age: Option<u64>,
    emergencies: Option<bool>,
    retired: Vec<RetiredLogKey>,
    mirror_max_age: Option<u64>,
    content: Vec<ContentLine>,
}

fn seconds(text: &str, what: &str) -> Result<u64, String> {
    daylight_core::types::parse_decimal(text)
        .filter(|s| (1..=MAX_MAX_AGE).contains(s))
        .ok_or_else(|| format!("{what} must be whole seconds, 1..={MAX_MAX_AGE}"))
}

impl Extra {
    fn line(&mut self, words: &[&str]) -> Result<bool, String> {
        // Content lines: one parser, the schemas crate's, shared with the
        // auditor and the web view, so the gate enforces exactly what a
        // published `policy` record says.
        if let Some(line) = ContentLine::parse_words(words).map_err(|e| e.to_string())? {
            if let Some(agency) = &line.agency {
                KeyName::new(agency).map_err(|e| format!("for {agency}: {e}"))?;
            }
            self.content.push(line);
            return Ok(true);
        }
        match words {
            ["daylight-agency", key] => {
                let key = note_key(key)?;
                if self.agencies.iter().any(|k| same_signer(k, &key)) {
                    return Err("agency key listed twice (same name and key ID)".into());
                }
                self.agencies.push(key);
            }
            ["daylight-court", key] => {
                let key = note_key(key)?;
                if self.courts.iter().any(|k| same_signer(k, &key)) {
                    return Err("court key listed twice (same name and key ID)".into());
                }
                self.courts.push(key);
            }
            ["daylight-provider", name] => {
                if self.provider.is_some() {
                    return Err("more than one daylight-provider line".into());
                }
                KeyName::new(name).map_err(|e| e.to_string())?;
                self.provider = Some((*name).to_owned());
            }
            ["daylight-max-age", secs] => {
                if self.max_age.is_some() {
                    return Err("more than one daylight-max-age line".into());
                }
                self.max_age = Some(seconds(secs, "daylight-max-age")?);
            }
            ["daylight-log-key-until", key, until] => {
                let key = VerifierKey::parse(key).map_err(|e| e.to_string())?;
                if key.key_type() != KeyType::Ed25519 {
                    return Err("a log key must be an Ed25519 note key (type 0x01)".into());
                }
                if self.retired.iter().any(|r| r.key == key) {
                    return Err("daylight-log-key-until repeated for one key".into());
                }
                let until = DateTime::parse_from_rfc3339(until)
                    .map_err(|e| {
                        format!("daylight-log-key-until: {until:?} is not an RFC 3339 time: {e}")
                    })?
                    .with_timezone(&Utc);
                self.retired.push(RetiredLogKey { key, until });
            }
            ["daylight-mirror", "required", secs] => {
                if self.mirror_max_age.is_some() {
                    return Err("more than one daylight-mirror line".into());
                }
                self.mirror_max_age = Some(seconds(secs, "daylight-mirror's maximum age")?);
            }
            ["daylight-emergencies", value] => {
                if self.emergencies.is_some() {
                    return Err("more than one daylight-emergencies line".into());
                }
                self.emergencies = Some(match *value {
                    "allow" => true,
                    "deny" => false,
                    _ => return Err("expected: daylight-emergencies allow|deny".into()),
                });
            }
            [word, ..] if word.starts_with("daylight-") => {
                return Err(format!(
                    "{word}: unknown keyword or wrong number of arguments (see the gate's README)"
                ))
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

fn note_key(text: &str) -> Result<VerifierKey, String> {
    let key = VerifierKey::parse(text).map_err(|e| e.to_string())?;
    if key.key_type() != KeyType::Ed25519 {
        return Err("an agency or court key must be an Ed25519 note key (type 0x01)".into());
    }
    Ok(key)
}

fn same_signer(a: &VerifierKey, b: &VerifierKey) -> bool {
    a.name() == b.name() && a.id() == b.id()
}

impl Policy {
    /// Parses a policy file (see the module documentation for the grammar).
    ///
    /// Refused: any line that does not parse; no `log` line; `quorum none`
    /// (the gate never releases without witnesses); no `daylight-agency`
    /// line (nothing could ever be allowed); no `daylight-max-age` line.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let mut extra = Extra::default();
        let witnesses = WitnessPolicy::parse_with(text, |words| extra.line(words))?;
        let incomplete = |why: &str| Err(PolicyError::Incomplete(why.to_owned()));
        if witnesses.logs.is_empty() {
            return incomplete("no log line: the gate must know the log's key");
        }
        if witnesses.quorum.is_none() {
            return incomplete("quorum none: the gate never releases without witness cosignatures");
        }
        if extra.agencies.is_empty() {
            return incomplete("no daylight-agency line: the gate would refuse every request");
        }
        let Some(max_age) = extra.max_age else {
            return incomplete("no daylight-max-age line: say how old a checkpoint may be");
        };
        // A retired key must be one of the log keys: the C2SP lines say which
        // keys may sign, the Daylight line only narrows one of them. A key
        // named only on the Daylight line would be invisible to C2SP tools.
        if let Some(r) = extra
            .retired
            .iter()
            .find(|r| !witnesses.logs.iter().any(|l| l.key == r.key))
        {
            return Err(PolicyError::Incomplete(format!(
                "daylight-log-key-until {}: the key is on no log line",
                r.key
            )));
        }
        // A `for AGENCY` line naming no agency of the policy is a typo or a
        // leftover: it would restrict nobody, silently. Refused, so that the
        // provider's stated standard is the one enforced.
        if let Some(line) = extra.content.iter().find(|l| {
            l.agency
                .as_deref()
                .is_some_and(|a| !extra.agencies.iter().any(|k| k.name().as_str() == a))
        }) {
            return Err(PolicyError::Incomplete(format!(
                "{line}: no daylight-agency key is named {}",
                line.agency.as_deref().unwrap_or_default()
            )));
        }
        Ok(Policy {
            witnesses,
            agencies: extra.agencies,
            courts: extra.courts,
            provider: extra.provider,
            max_age,
            emergencies: extra.emergencies.unwrap_or(false),
            retired: extra.retired,
            mirror_max_age: extra.mirror_max_age,
            content: ContentPolicy {
                lines: extra.content,
            },
        })
    }

    /// The policy as text that [`Policy::parse`] reads back to an equal policy.
    pub fn to_text(&self) -> String {
        let mut out = self.witnesses.to_text();
        for k in &self.agencies {
            out.push_str(&format!("daylight-agency {k}\n"));
        }
        for k in &self.courts {
            out.push_str(&format!("daylight-court {k}\n"));
        }
        if let Some(p) = &self.provider {
            out.push_str(&format!("daylight-provider {p}\n"));
        }
        out.push_str(&format!("daylight-max-age {}\n", self.max_age));
        out.push_str(&format!(
            "daylight-emergencies {}\n",
            if self.emergencies { "allow" } else { "deny" }
        ));
        for r in &self.retired {
            out.push_str(&format!(
                "daylight-log-key-until {} {}\n",
                r.key,
                r.until.to_rfc3339_opts(SecondsFormat::AutoSi, true)
            ));
        }
        if let Some(secs) = self.mirror_max_age {
            out.push_str(&format!("daylight-mirror required {secs}\n"));
        }
        for line in &self.content.lines {
            out.push_str(&format!("{line}\n"));
        }
        out
    }

    /// Sets (or replaces) this provider's name, e.g. from a command-line flag.
    pub fn set_provider(&mut self, name: &str) -> Result<(), PolicyError> {
        KeyName::new(name).map_err(|e| PolicyError::Incomplete(e.to_string()))?;
        self.provider = Some(name.to_owned());
        Ok(())
    }

    /// The logs, witnesses, groups and quorum (the C2SP part).
    pub fn witness_policy(&self) -> &WitnessPolicy {
        &self.witnesses
    }

    /// The agency keys whose requests and emergencies the gate honours.
    pub fn agencies(&self) -> &[VerifierKey] {
        &self.agencies
    }

    /// The court keys whose ratifications the gate accepts for an emergency
    /// past its deadline.
    pub fn courts(&self) -> &[VerifierKey] {
        &self.courts
    }

    /// This provider's name (its registered key's name), if the policy names it.
    pub fn provider(&self) -> Option<&str> {
        self.provider.as_deref()
    }

    /// How old, in seconds, the newest witness cosignature may be.
    pub fn max_age(&self) -> u64 {
        self.max_age
    }

    /// Whether emergency entries are honoured (before their ratify-by deadline).
    pub fn emergencies_allowed(&self) -> bool {
        self.emergencies
    }

    /// The keys of the log whose origin is `origin` (its `log` lines), each
    /// with its transition end if a `daylight-log-key-until` line retires it.
    /// Empty if the policy does not trust that log.
    pub fn log_keys(&self, origin: &str) -> Vec<LogKey<'_>> {
        self.witnesses
            .logs
            .iter()
            .filter(|l| l.key.name().as_str() == origin)
            .map(|l| LogKey {
                key: &l.key,
                until: self
                    .retired
                    .iter()
                    .find(|r| r.key == l.key)
                    .map(|r| r.until),
            })
            .collect()
    }

    /// The rotated-out log keys (`daylight-log-key-until` lines).
    pub fn retired_log_keys(&self) -> &[RetiredLogKey] {
        &self.retired
    }

    /// With `daylight-mirror required <seconds>`: the mirror is mandatory and
    /// its newest witness cosignature may be at most this old.
    pub fn mirror_required(&self) -> Option<u64> {
        self.mirror_max_age
    }

    /// The content lines (what a request may ask), in the order written:
    /// checked after every other check, the first refusal in line order
    /// is the answer.
    pub fn content(&self) -> &ContentPolicy {
        &self.content
    }

    /// How old the mirror's newest witness cosignature may be: the
    /// `daylight-mirror` line's age, else `daylight-max-age`.
    pub fn mirror_max_age(&self) -> u64 {
        self.mirror_max_age.unwrap_or(self.max_age)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use daylight_core::SignerKey;

    fn key(name: &str, t: KeyType, seed: u8) -> VerifierKey {
        SignerKey::from_seed(KeyName::new(name).unwrap(), t, [seed; 32])
            .verifier()
            .clone()
    }

    fn base() -> String {
        let log = key("log.example", KeyType::Ed25519, 1);
        let w1 = key("w1.example", KeyType::CosignatureV1, 2);
        let w2 = key("w2.example", KeyType::CosignatureV1, 3);
        let agency = key("agency.example", KeyType::Ed25519, 4);
        let court = key("court.example", KeyType::Ed25519, 5);
        format!(
            "# gate policy\nlog {log} https://log.example\nwitness A {w1}\nwitness B {w2}\n\
             group q any A B\nquorum q\n\ndaylight-agency {agency}\ndaylight-court {court}\n\
             daylight-provider messenger.example\ndaylight-max-age 3600\ndaylight-emergencies allow\n"
        )
    }

    #[test]
    fn parses_and_round_trips() {
        let p = Policy::parse(&base()).unwrap();
        assert_eq!(p.agencies().len(), 1);
        assert_eq!(p.courts().len(), 1);
        assert_eq!(p.provider(), Some("messenger.example"));
        assert_eq!(p.max_age(), 3600);
        assert!(p.emergencies_allowed());
        assert_eq!(Policy::parse(&p.to_text()).unwrap(), p);
        // Emergencies default to deny; the provider may come later.
        let text = base()
            .replace("daylight-emergencies allow\n", "")
            .replace("daylight-provider messenger.example\n", "");
        let mut p = Policy::parse(&text).unwrap();
        assert!(!p.emergencies_allowed());
        assert_eq!(p.provider(), None);
        p.set_provider("other.example").unwrap();
        assert_eq!(p.provider(), Some("other.example"));
        assert!(p.set_provider("two words").is_err());
    }

    #[test]
    fn bad_policies_are_refused() {
        let b = base();
        let w1 = key("w1.example", KeyType::CosignatureV1, 2);
        let agency_line = b
            .lines()
            .find(|l| l.starts_with("daylight-agency"))
            .unwrap()
            .to_owned();
        for bad in [
            b.replace("quorum q", "quorum none"),
            b.replace("daylight-max-age 3600\n", ""),
            b.replace("daylight-max-age 3600", "daylight-max-age 0"),
            b.replace("daylight-max-age 3600", "daylight-max-age 1h"),
            b.replace("daylight-max-age 3600", "daylight-max-age 99999999999"),
            format!("{b}daylight-max-age 60\n"),
            b.replace("daylight-emergencies allow", "daylight-emergencies maybe"),
            format!("{b}daylight-emergencies deny\n"),
            format!("{b}daylight-provider second.example\n"),
            b.replace("daylight-provider messenger.example", "daylight-provider"),
            format!("{b}{agency_line}\n"),
            b.replace(&agency_line, ""),
            b.replace(&agency_line, &format!("daylight-agency {w1}")),
            format!("{b}daylight-agency notakey\n"),
            format!("{b}daylight-frobnicate 1\n"),
            format!("{b}frobnicate 1\n"),
            b.lines()
                .filter(|l| !l.starts_with("log "))
                .map(|l| format!("{l}\n"))
                .collect(),
        ] {
            assert!(Policy::parse(&bad).is_err(), "accepted:\n{bad}");
        }
    }
}
