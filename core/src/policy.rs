//! C2SP tlog-policy: which logs to trust and which witnesses, in which groups,
//! must have cosigned a checkpoint before a client believes it.

use crate::cosignature::Cosignature;
use crate::note::{KeyType, VerifierKey};

/// The most logs, witnesses and groups a policy may name (the spec asks for at least 32).
pub const MAX_POLICY_ITEMS: usize = 256;

/// Why a policy was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum PolicyError {
    /// A line that does not parse, with its 1-based number.
    #[error("policy line {line}: {why}")]
    Line {
        /// Line number, from 1.
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// No `quorum` line.
    #[error("policy has no quorum line")]
    NoQuorum,
}

/// A witness the policy knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyWitness {
    /// The policy's name for it.
    pub name: String,
    /// Its cosignature/v1 verifier key.
    pub key: VerifierKey,
    /// Its tlog-witness submission prefix, if given.
    pub url: Option<String>,
}

/// A log the policy trusts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyLog {
    /// Its verifier key (named by its origin).
    pub key: VerifierKey,
    /// Where it is served, if given.
    pub url: Option<String>,
}

/// A member of a group: a witness or an earlier group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Member {
    /// A witness, by position.
    Witness(usize),
    /// A group, by position.
    Group(usize),
}

/// A group of members of which at least `threshold` must have cosigned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Its name.
    pub name: String,
    /// How many members must be satisfied.
    pub threshold: usize,
    /// The members.
    pub members: Vec<Member>,
}

/// A parsed tlog-policy.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct WitnessPolicy {
    /// Trusted logs.
    pub logs: Vec<PolicyLog>,
    /// Known witnesses.
    pub witnesses: Vec<PolicyWitness>,
    /// Groups, each referring only to earlier ones.
    pub groups: Vec<Group>,
    /// What must be satisfied; None is `quorum none`.
    pub quorum: Option<Member>,
}

impl WitnessPolicy {
    /// A policy trusting `log` with a flat `k` of the given witnesses.
    pub fn k_of_n(log: VerifierKey, witnesses: Vec<VerifierKey>, k: usize) -> WitnessPolicy {
        let n = witnesses.len();
        let witnesses: Vec<PolicyWitness> = witnesses
            .into_iter()
            .map(|key| PolicyWitness {
                name: key.name().to_string(),
                key,
                url: None,
            })
            .collect();
        let quorum = (k > 0).then_some(Member::Group(0));
        let groups = if k > 0 {
            vec![Group {
                name: "quorum".into(),
                threshold: k,
                members: (0..n).map(Member::Witness).collect(),
            }]
        } else {
            vec![]
        };
        WitnessPolicy {
            logs: vec![PolicyLog {
                key: log,
                url: None,
            }],
            witnesses,
            groups,
            quorum,
        }
    }

    /// Parses a policy. `extension` sees every line whose keyword the spec
    /// does not define (split into words) and says whether it took it; lines
    /// nobody takes are errors.
    pub fn parse_with(
        text: &str,
        mut extension: impl FnMut(&[&str]) -> Result<bool, String>,
    ) -> Result<WitnessPolicy, PolicyError> {
        let mut policy = WitnessPolicy::default();
        let mut seen_quorum = false;
        for (i, raw) in text.lines().enumerate() {
            let err = |why: String| PolicyError::Line { line: i + 1, why };
            let line = raw.trim_matches([' ', '\t']);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = line.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
            match words[0] {
                "log" => {
                    let (key, url) = match &words[1..] {
                        [k] => (k, None),
                        [k, u] => (k, Some(u.to_string())),
                        _ => return Err(err("expected: log <vkey> [<url>]".into())),
                    };
                    let key = VerifierKey::parse(key).map_err(|e| err(e.to_string()))?;
                    if key.key_type() != KeyType::Ed25519 {
                        return Err(err("a log key must be an Ed25519 (type 0x01) key".into()));
                    }
                    if policy
                        .logs
                        .iter()
                        .any(|l| l.key.public_key() == key.public_key())
                    {
                        return Err(err("duplicate log key".into()));
                    }
                    policy.logs.push(PolicyLog { key, url });
                }
                "witness" => {
                    let (name, key, url) = match &words[1..] {
                        [n, k] => (n, k, None),
                        [n, k, u] => (n, k, Some(u.to_string())),
                        _ => return Err(err("expected: witness <name> <vkey> [<url>]".into())),
                    };
                    policy.check_new_name(name).map_err(err)?;
                    let key = VerifierKey::parse(key).map_err(|e| err(e.to_string()))?;
                    if key.key_type() != KeyType::CosignatureV1 {
                        return Err(err(
                            "a witness key must be a cosignature/v1 (type 0x04) key".into(),
                        ));
                    }
                    if policy
                        .witnesses
                        .iter()
                        .any(|w| w.key.public_key() == key.public_key())
                    {
                        return Err(err("duplicate witness key".into()));
                    }
                    policy.witnesses.push(PolicyWitness {
                        name: name.to_string(),
                        key,
                        url,
                    });
                }
                "group" => {
                    let [_, name, threshold, members @ ..] = words.as_slice() else {
                        return Err(err("expected: group <name> all|any|<k> <name>...".into()));
                    };
                    if members.is_empty() {
                        return Err(err("a group needs at least one member".into()));
                    }
                    policy.check_new_name(name).map_err(err)?;
                    let mut resolved = Vec::new();
                    for m in members {
                        let member = policy.lookup(m).ok_or_else(|| {
                            err(format!("unknown name {m:?} (define it on an earlier line)"))
                        })?;
                        if resolved.contains(&member) {
                            return Err(err(format!("{m:?} appears twice in the group")));
                        }
                        resolved.push(member);
                    }
                    let n = resolved.len();
                    let threshold = match *threshold {
                        "all" => n,
                        "any" => 1,
                        k => crate::types::parse_decimal(k)
                            .and_then(|k| usize::try_from(k).ok())
                            .filter(|k| (1..=n).contains(k))
                            .ok_or_else(|| err(format!("threshold must be all, any or 1..={n}")))?,
                    };
                    policy.groups.push(Group {
                        name: name.to_string(),
                        threshold,
                        members: resolved,
                    });
                }
                "quorum" => {
                    let [_, name] = words.as_slice() else {
                        return Err(err("expected: quorum <name>".into()));
                    };
                    if seen_quorum {
                        return Err(err("more than one quorum line".into()));
                    }
                    seen_quorum = true;
                    policy.quorum = if *name == "none" {
                        None
                    } else {
                        Some(policy.lookup(name).ok_or_else(|| {
                            err(format!(
                                "unknown name {name:?} (define it on an earlier line)"
                            ))
                        })?)
                    };
                }
                _ => {
                    if !extension(&words).map_err(err)? {
                        return Err(err(format!("unknown keyword {:?}", words[0])));
                    }
                }
            }
            if policy.logs.len() + policy.witnesses.len() + policy.groups.len() > MAX_POLICY_ITEMS {
                return Err(err(format!(
                    "more than {MAX_POLICY_ITEMS} logs, witnesses and groups"
                )));
            }
        }
        if !seen_quorum {
            return Err(PolicyError::NoQuorum);
        }
        Ok(policy)
    }

    /// Parses a policy with no extension lines.
    pub fn parse(text: &str) -> Result<WitnessPolicy, PolicyError> {
        Self::parse_with(text, |_| Ok(false))
    }

    fn check_new_name(&self, name: &str) -> Result<(), String> {
        if name == "none" {
            return Err("the name none is reserved".into());
        }
        if self.lookup(name).is_some() {
            return Err(format!("name {name:?} is already defined"));
        }
        Ok(())
    }

    fn lookup(&self, name: &str) -> Option<Member> {
        if let Some(i) = self.witnesses.iter().position(|w| w.name == name) {
            return Some(Member::Witness(i));
        }
        self.groups
            .iter()
            .position(|g| g.name == name)
            .map(Member::Group)
    }

    /// The witness keys, in policy order.
    pub fn witness_keys(&self) -> Vec<&VerifierKey> {
        self.witnesses.iter().map(|w| &w.key).collect()
    }

    /// Whether cosignatures by these witnesses (positions in the policy)
    /// satisfy the quorum.
    pub fn quorum_met(&self, cosigned: &[Cosignature]) -> bool {
        let Some(q) = self.quorum else {
            return true;
        };
        let signed: Vec<bool> = (0..self.witnesses.len())
            .map(|i| cosigned.iter().any(|c| c.witness == i))
            .collect();
        self.member_met(q, &signed)
    }

    fn member_met(&self, m: Member, signed: &[bool]) -> bool {
        match m {
            Member::Witness(i) => signed.get(i).copied().unwrap_or(false),
            Member::Group(g) => {
                let group = &self.groups[g];
                group
                    .members
                    .iter()
                    .filter(|&&m| self.member_met(m, signed))
                    .count()
                    >= group.threshold
            }
        }
    }

    /// The policy in tlog-policy text (extension lines are the caller's).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for l in &self.logs {
            out.push_str(&format!("log {}", l.key));
            if let Some(u) = &l.url {
                out.push_str(&format!(" {u}"));
            }
            out.push('\n');
        }
        for w in &self.witnesses {
            out.push_str(&format!("witness {} {}", w.name, w.key));
            if let Some(u) = &w.url {
                out.push_str(&format!(" {u}"));
            }
            out.push('\n');
        }
        let name = |m: &Member| match *m {
            Member::Witness(i) => self.witnesses[i].name.clone(),
            Member::Group(g) => self.groups[g].name.clone(),
        };
        for g in &self.groups {
            let members: Vec<String> = g.members.iter().map(name).collect();
            out.push_str(&format!(
                "group {} {} {}\n",
                g.name,
                g.threshold,
                members.join(" ")
            ));
        }
        match &self.quorum {
            Some(m) => out.push_str(&format!("quorum {}\n", name(m))),
            None => out.push_str("quorum none\n"),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{KeyName, SignerKey};

    fn key(name: &str, t: KeyType, seed: u8) -> VerifierKey {
        SignerKey::from_seed(KeyName::new(name).unwrap(), t, [seed; 32])
            .verifier()
            .clone()
    }

    fn cosigned(ws: &[usize]) -> Vec<Cosignature> {
        ws.iter()
            .map(|&w| Cosignature {
                witness: w,
                timestamp: 1,
            })
            .collect()
    }

    fn sample() -> String {
        let log = key("log.example", KeyType::Ed25519, 1);
        let mut text = format!("# a comment\nlog {log} https://log.example/\n\n");
        for i in 0..6u8 {
            let w = key(&format!("w{i}.example"), KeyType::CosignatureV1, 10 + i);
            text.push_str(&format!("witness X{i} {w}\n"));
        }
        text.push_str(
            "group X 2 X0 X1 X2\ngroup Y any X3 X4 X5\n\tgroup XY all X Y  \nquorum XY\n",
        );
        text
    }

    #[test]
    fn groups_and_quorum() {
        let p = WitnessPolicy::parse(&sample()).unwrap();
        assert_eq!(p.logs.len(), 1);
        assert_eq!(p.logs[0].url.as_deref(), Some("https://log.example/"));
        assert!(p.quorum_met(&cosigned(&[0, 1, 3])));
        assert!(!p.quorum_met(&cosigned(&[0, 3])));
        assert!(!p.quorum_met(&cosigned(&[0, 1, 2])));
        assert!(!p.quorum_met(&cosigned(&[])));
        // Round trip through text keeps the meaning.
        let again = WitnessPolicy::parse(&p.to_text()).unwrap();
        assert_eq!(again, p);
    }

    #[test]
    fn bad_policies_are_refused_with_line_numbers() {
        let base = sample();
        let w = key("w9.example", KeyType::CosignatureV1, 99);
        let dup = base
            .lines()
            .find(|l| l.starts_with("witness X0"))
            .unwrap()
            .replace("X0", "X9");
        for (bad, line) in [
            (base.replace("quorum XY\n", ""), None),
            (format!("{base}quorum X\n"), Some(14)),
            (base.replace("group X 2", "group X 4"), Some(10)),
            (base.replace("group X 2", "group X 0"), Some(10)),
            (base.replace("X0 X1 X2", "X0 X0 X2"), Some(10)),
            (base.replace("quorum XY", "quorum nobody"), Some(13)),
            (format!("group early 1 {w}\n{base}"), Some(1)),
            (format!("{base}{dup}\n"), Some(14)),
            (base.replace("witness X1 ", "witness X0 "), Some(5)),
            (format!("frobnicate 3\n{base}"), Some(1)),
            (base.replace("log log.example", "log notakey"), Some(2)),
        ] {
            match WitnessPolicy::parse(&bad) {
                Err(PolicyError::NoQuorum) => assert_eq!(line, None),
                Err(PolicyError::Line { line: l, .. }) => assert_eq!(Some(l), line, "{bad}"),
                Ok(_) => panic!("accepted: {bad}"),
            }
        }
        // A log key used as a witness key (wrong signature type) is refused.
        let log = key("log.example", KeyType::Ed25519, 1);
        assert!(WitnessPolicy::parse(&format!("witness W {log}\nquorum W\n")).is_err());
    }

    #[test]
    fn extensions_and_none() {
        let mut seen = Vec::new();
        let p = WitnessPolicy::parse_with("daylight-provider acme\nquorum none\n", |w| {
            seen.push(w.join(" "));
            Ok(w[0] == "daylight-provider")
        })
        .unwrap();
        assert_eq!(seen, ["daylight-provider acme"]);
        assert!(p.quorum_met(&[]));
    }
}
