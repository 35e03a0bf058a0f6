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
