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
//! daylight-tlog-mirror <vkey> [<url>]     a C2SP tlog-mirror's cosignature/v1 key: its cosignature is required (one or more)
//! daylight-tlog-mirror-quorum <k>         how many of those mirrors must have cosigned (at most once; default 1)
//! ```
//!
//! `daylight-mirror` is the provider's own verified copy of the log (read
//! by `daylight gate verify --mirror`); `daylight-tlog-mirror` is a public
//! C2SP tlog-mirror whose cosignature on the proof's checkpoint says it
//! durably stores, and serves, every entry up to it.
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
    tlog_mirrors: Vec<TlogMirror>,
    tlog_mirror_quorum: Option<usize>,
    content: ContentPolicy,
}

/// A C2SP tlog-mirror the policy requires (a `daylight-tlog-mirror` line):
/// its cosignature on a checkpoint says it has durably stored every entry
/// up to that checkpoint and serves them, somewhere the log operator does
/// not control.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlogMirror {
    /// Its cosignature/v1 verifier key.
    pub key: VerifierKey,
    /// Its URL, if given (for people and tools; the gate does no I/O).
    pub url: Option<String>,
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
    tlog_mirrors: Vec<TlogMirror>,
    tlog_mirror_quorum: Option<usize>,
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
            ["daylight-mirror", ..] => {
                return Err(
                    "expected: daylight-mirror required <seconds> (the provider's own \
                     verified mirror, gate verify --mirror); a C2SP tlog-mirror's key goes on a \
                     daylight-tlog-mirror line"
                        .into(),
                )
            }
            ["daylight-tlog-mirror", key, url @ ..] if url.len() <= 1 => {
                let key =
                    VerifierKey::parse(key).map_err(|e| format!("daylight-tlog-mirror: {e}"))?;
                if key.key_type() != KeyType::CosignatureV1 {
                    return Err(
                        "daylight-tlog-mirror: a mirror key must be a cosignature/v1 \
                         key (type 0x04): C2SP tlog-mirror cosigns like a witness"
                            .into(),
                    );
                }
                if self
                    .tlog_mirrors
                    .iter()
                    .any(|m| same_cosigner(&m.key, &key))
                {
                    return Err(
                        "daylight-tlog-mirror: key listed twice (the same public key, \
                         or the same name and key ID)"
                            .into(),
                    );
                }
                self.tlog_mirrors.push(TlogMirror {
                    key,
                    url: url.first().map(|u| (*u).to_owned()),
                });
            }
            ["daylight-tlog-mirror-quorum", k] => {
                if self.tlog_mirror_quorum.is_some() {
                    return Err("more than one daylight-tlog-mirror-quorum line".into());
                }
                let k = daylight_core::types::parse_decimal(k)
                    .and_then(|k| usize::try_from(k).ok())
                    .filter(|&k| k >= 1)
                    .ok_or_else(|| {
                        "daylight-tlog-mirror-quorum must be a whole number, at least 1 \
                         (to require no mirror, list none)"
                            .to_owned()
                    })?;
                self.tlog_mirror_quorum = Some(k);
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

/// Whether one cosignature line could count for both keys: a line is matched
/// to a key by name and key ID, and a cosignature/v1 signature does not sign
/// the key's name, so the same public key under another name verifies it too.
fn same_cosigner(a: &VerifierKey, b: &VerifierKey) -> bool {
    a.public_key() == b.public_key() || same_signer(a, b)
}

/// The tlog-mirror lines against the rest: a quorum needs that many mirror
/// keys, and no mirror key may be a witness's ([`same_cosigner`]: one
/// signature would count for the witness quorum and for the mirrors' alike).
fn check_tlog_mirrors(
    witnesses: &WitnessPolicy,
    mirrors: &[TlogMirror],
    quorum: Option<usize>,
) -> Result<(), PolicyError> {
    let incomplete = |why: String| Err(PolicyError::Incomplete(why));
    if let Some(k) = quorum {
        if k > mirrors.len() {
            return incomplete(format!(
                "daylight-tlog-mirror-quorum {k}, but {} daylight-tlog-mirror key(s) listed: \
                 no checkpoint could ever satisfy it",
                mirrors.len()
            ));
        }
    }
    for m in mirrors {
        if let Some(w) = witnesses
            .witnesses
            .iter()
            .find(|w| same_cosigner(&w.key, &m.key))
        {
            return incomplete(format!(
                "daylight-tlog-mirror {}: the same key (public key, or name and key ID) as the \
                 witness {}; \
                 one cosignature would count as both, so a mirror must have its own key",
                m.key, w.name
            ));
        }
    }
    Ok(())
}

impl Policy {
    /// Parses a policy file (see the module documentation for the grammar).
    ///
    /// Refused: any line that does not parse; no `log` line; `quorum none`
    /// (the gate never releases without witnesses); no `daylight-agency`
    /// line (nothing could ever be allowed); no `daylight-max-age` line; a
    /// `daylight-tlog-mirror` key that is not a cosignature/v1 key, listed
    /// twice, or also a witness's; a `daylight-tlog-mirror-quorum` of 0 or
    /// above the number of mirror keys.
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
        check_tlog_mirrors(&witnesses, &extra.tlog_mirrors, extra.tlog_mirror_quorum)?;
        Ok(Policy {
            witnesses,
            agencies: extra.agencies,
            courts: extra.courts,
            provider: extra.provider,
            max_age,
            emergencies: extra.emergencies.unwrap_or(false),
            retired: extra.retired,
            mirror_max_age: extra.mirror_max_age,
            tlog_mirrors: extra.tlog_mirrors,
            tlog_mirror_quorum: extra.tlog_mirror_quorum,
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
        for m in &self.tlog_mirrors {
            out.push_str(&format!("daylight-tlog-mirror {}", m.key));
            if let Some(u) = &m.url {
                out.push_str(&format!(" {u}"));
            }
            out.push('\n');
        }
        if let Some(k) = self.tlog_mirror_quorum {
            out.push_str(&format!("daylight-tlog-mirror-quorum {k}\n"));
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

    /// The C2SP tlog-mirrors whose cosignatures the proof's checkpoint must
    /// carry (`daylight-tlog-mirror` lines), in policy order. Empty: none
    /// required.
    pub fn tlog_mirrors(&self) -> &[TlogMirror] {
        &self.tlog_mirrors
    }

    /// How many distinct [`Policy::tlog_mirrors`] must have validly
    /// cosigned the checkpoint: `daylight-tlog-mirror-quorum`, else 1 if
    /// any mirror is listed, else 0.
    pub fn tlog_mirror_quorum(&self) -> usize {
        match self.tlog_mirror_quorum {
            Some(k) => k,
            None => usize::from(!self.tlog_mirrors.is_empty()),
        }
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
    fn tlog_mirror_lines_parse_and_round_trip() {
        let m1 = key("mirror1.example", KeyType::CosignatureV1, 6);
        let m2 = key("mirror2.example", KeyType::CosignatureV1, 7);
        // None listed: none required.
        let p = Policy::parse(&base()).unwrap();
        assert!(p.tlog_mirrors().is_empty());
        assert_eq!(p.tlog_mirror_quorum(), 0);
        // One, with its URL: a quorum of 1 by default.
        let p = Policy::parse(&format!(
            "{}daylight-tlog-mirror {m1} https://mirror1.example/\n",
            base()
        ))
        .unwrap();
        assert_eq!(p.tlog_mirrors().len(), 1);
        assert_eq!(p.tlog_mirrors()[0].key, m1);
        assert_eq!(
            p.tlog_mirrors()[0].url.as_deref(),
            Some("https://mirror1.example/")
        );
        assert_eq!(p.tlog_mirror_quorum(), 1);
        assert_eq!(Policy::parse(&p.to_text()).unwrap(), p);
        // Two of two; the quorum line may come first.
        let p = Policy::parse(&format!(
            "daylight-tlog-mirror-quorum 2\n{}daylight-tlog-mirror {m1}\ndaylight-tlog-mirror {m2}\n",
            base()
        ))
        .unwrap();
        assert_eq!(p.tlog_mirrors().len(), 2);
        assert_eq!(p.tlog_mirrors()[1].url, None);
        assert_eq!(p.tlog_mirror_quorum(), 2);
        assert_eq!(Policy::parse(&p.to_text()).unwrap(), p);
        // The provider's own mirror line is another line, kept as it was.
        let p = Policy::parse(&format!(
            "{}daylight-mirror required 600\ndaylight-tlog-mirror {m1}\n",
            base()
        ))
        .unwrap();
        assert_eq!(p.mirror_required(), Some(600));
        assert_eq!(p.tlog_mirror_quorum(), 1);
    }

    #[test]
    fn bad_tlog_mirror_lines_are_refused() {
        let b = base();
        let m1 = key("mirror1.example", KeyType::CosignatureV1, 6);
        let m2 = key("mirror2.example", KeyType::CosignatureV1, 7);
        let ed = key("mirror1.example", KeyType::Ed25519, 6);
        let w1 = key("w1.example", KeyType::CosignatureV1, 2);
        let w1_renamed = key("mirror9.example", KeyType::CosignatureV1, 2);
        let m1_renamed = key("mirror9.example", KeyType::CosignatureV1, 6);
        let err = |text: String| Policy::parse(&text).unwrap_err().to_string();
        for (bad, why) in [
            // Not a cosignature/v1 key, or not a key.
            (format!("{b}daylight-tlog-mirror {ed}\n"), "cosignature/v1"),
            (
                format!("{b}daylight-tlog-mirror notakey\n"),
                "daylight-tlog-mirror",
            ),
            (
                format!("{b}daylight-tlog-mirror\n"),
                "wrong number of arguments",
            ),
            (
                format!("{b}daylight-tlog-mirror {m1} https://a https://b\n"),
                "wrong number",
            ),
            // Listed twice.
            (
                format!("{b}daylight-tlog-mirror {m1}\ndaylight-tlog-mirror {m1} https://m\n"),
                "twice",
            ),
            // A witness's key: one line would count for both quorums; also
            // under another name (the signature does not sign the name).
            (format!("{b}daylight-tlog-mirror {w1}\n"), "the witness A"),
            (
                format!("{b}daylight-tlog-mirror {w1_renamed}\n"),
                "the witness A",
            ),
            (
                format!("{b}daylight-tlog-mirror {m1}\ndaylight-tlog-mirror {m1_renamed}\n"),
                "twice",
            ),
            // Quorums that could never be met, or that require nothing.
            (
                format!("{b}daylight-tlog-mirror {m1}\ndaylight-tlog-mirror-quorum 2\n"),
                "1 daylight-tlog-mirror key",
            ),
            (
                format!("{b}daylight-tlog-mirror-quorum 1\n"),
                "0 daylight-tlog-mirror key",
            ),
            (
                format!("{b}daylight-tlog-mirror {m1}\ndaylight-tlog-mirror-quorum 0\n"),
                "at least 1",
            ),
            (
                format!("{b}daylight-tlog-mirror {m1}\ndaylight-tlog-mirror-quorum one\n"),
                "whole number",
            ),
            (
                format!(
                    "{b}daylight-tlog-mirror {m1}\ndaylight-tlog-mirror {m2}\n\
                     daylight-tlog-mirror-quorum 1\ndaylight-tlog-mirror-quorum 2\n"
                ),
                "more than one daylight-tlog-mirror-quorum",
            ),
            // The provider's mirror line given a mirror key: pointed to the right line.
            (
                format!("{b}daylight-mirror {m1}\n"),
                "daylight-tlog-mirror line",
            ),
        ] {
            let e = err(bad.clone());
            assert!(e.contains(why), "{e:?} lacks {why:?} for:\n{bad}");
        }
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
