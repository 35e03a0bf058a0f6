//! The registry: what the log's own registry entries say, replayed in log
//! order. One model for the log server (who may submit), the auditor (who
//! could sign what, when), the gate's mirror check and the web view (an
//! identity's keys over time, the witness set at each point).
//!
//! The chain of log keys starts at the key a reader already trusts (the one
//! `daylight log init` printed). Every registry entry must verify under the
//! log key current at its index; a `rotate` of the log's key must name that
//! key as the one it replaces and is signed by it, so a reader follows the
//! chain from the log's entries alone and refuses a change the old key did
//! not sign.

use chrono::{DateTime, Utc};
use daylight_core::{LeafIndex, VerifierKey};

use crate::error::SchemaError;
use crate::fields::{RegistryAction, Role};
use crate::record::{Body, RegistryBody, SignedRecord};

/// Why a registry entry could not be applied. The log writes only entries
/// it signed itself, so any of these means the log (or its storage) broke
/// its own rules: an integrity failure for an auditor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The entry is not a registry record.
    #[error("entry {0} is not a registry record")]
    NotRegistry(LeafIndex),
    /// The entry's signature does not verify under the log key current at
    /// its index (for a log-key rotation: the key it replaces).
    #[error("registry entry {index} is not signed by the log key {log_key} current there: {why}")]
    NotSignedByLog {
        /// The entry.
        index: LeafIndex,
        /// The log key that should have signed it.
        log_key: String,
        /// What failed.
        why: SchemaError,
    },
    /// A log-key rotation that does not replace the current log key.
    #[error("registry entry {index} rotates the log key {replaces}, but the current log key is {current}")]
    WrongLogKey {
        /// The entry.
        index: LeafIndex,
        /// The key the entry says it replaces.
        replaces: String,
        /// The log key current at the entry.
        current: String,
    },
    /// A revocation or rotation of a key that is not registered (and
    /// unrevoked) for the role, or an addition of one that already is.
    #[error("registry entry {index}: {why}")]
    Inconsistent {
        /// The entry.
        index: LeafIndex,
        /// What does not fit.
        why: String,
    },
}

impl RegistryError {
    /// A stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::NotRegistry(_) => "not_registry",
            RegistryError::NotSignedByLog { .. } => "registry_not_signed_by_log",
            RegistryError::WrongLogKey { .. } => "log_key_change_not_by_old_key",
            RegistryError::Inconsistent { .. } => "registry_inconsistent",
        }
    }
}

/// Why a record's signer may not sign it at this point of the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignerError {
    /// The key is not registered at all.
    #[error("{0} is not a registered key")]
    Unknown(String),
    /// The key was registered for a role that may sign this kind, but was
    /// revoked (or rotated out) at `at`.
    #[error("{who} was {how} at entry {at}")]
    Revoked {
        /// The signer.
        who: String,
        /// Its role.
        role: Role,
        /// The entry that revoked or replaced it.
        at: LeafIndex,
        /// "revoked" or "replaced by <key>".
        how: String,
    },
    /// The key is registered, but for no role that may sign this kind.
    #[error("{who} is not registered for a role that may sign {kind} records")]
    WrongRole {
        /// The signer.
        who: String,
        /// The record kind.
        kind: String,
    },
}

impl SignerError {
    /// Every code [`SignerError::code`] gives, for a reader that gets one
    /// back as text (a refusal kept in the log's store).
    pub const CODES: [&'static str; 3] = ["unknown_signer", "revoked_signer", "wrong_role"];

    /// A stable machine code (the log's HTTP error codes).
    pub fn code(&self) -> &'static str {
        match self {
            SignerError::Unknown(_) => Self::CODES[0],
            SignerError::Revoked { .. } => Self::CODES[1],
            SignerError::WrongRole { .. } => Self::CODES[2],
        }
    }
}

/// Which of `mine` (one key's registrations) lets it sign `kind` (in one of
/// `roles`) now, or why none does. `who` writes the key for the error, and
/// runs only when there is one (every submission asks).
fn standing<'a>(
    mine: &[&'a Registration],
    kind: crate::Kind,
    roles: &[Role],
    who: impl FnOnce() -> String,
) -> Result<&'a Registration, SignerError> {
    let mut revoked = None;
    for r in mine.iter().filter(|r| roles.contains(&r.role)) {
        match r.revoked_at {
            None => return Ok(r),
            Some(at) => revoked = Some((*r, at)),
        }
    }
    if let Some((r, at)) = revoked {
        return Err(SignerError::Revoked {
            who: format!("{}+{}", r.key.name(), r.key.id()),
            role: r.role,
            at,
            how: how_revoked(r),
        });
    }
    if mine.is_empty() {
        Err(SignerError::Unknown(who()))
    } else {
        Err(SignerError::WrongRole {
            who: who(),
            kind: kind.to_string(),
        })
    }
}

fn how_revoked(r: &Registration) -> String {
    match &r.replaced_by {
        Some(k) => format!("replaced by {}+{}", k.name(), k.id()),
        None => "revoked".to_string(),
    }
}

/// One key registered for one role, and what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// The key.
    pub key: VerifierKey,
    /// Its role.
    pub role: Role,
    /// The registry entry that added it (or rotated it in).
    pub added_at: LeafIndex,
    /// The entry that revoked it or rotated it out, if any: records it
    /// signs after that entry are refused.
    pub revoked_at: Option<LeafIndex>,
    /// The key it replaced (a rotation).
    pub replaces: Option<VerifierKey>,
    /// The key that replaced it (a rotation).
    pub replaced_by: Option<VerifierKey>,
    /// The public name given when it was added, if any.
    pub display_name: Option<String>,
    /// A witness's URL (witness role only).
    pub url: Option<String>,
}

impl Registration {
    /// Whether the key may sign at `index` (added before, not revoked at or before).
    pub fn active_at(&self, index: LeafIndex) -> bool {
        self.added_at < index && self.revoked_at.is_none_or(|r| index <= r)
    }
}

/// One of the log's keys over time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogKeyPeriod {
    /// The key (named by the log's origin).
    pub key: VerifierKey,
    /// The rotation entry that made it current (`None`: the first key).
    pub from: Option<LeafIndex>,
    /// The rotation entry that replaced it, if any.
    pub replaced_at: Option<LeafIndex>,
    /// After a rotation: until when checkpoints still carry its signature
    /// beside the new key's. A checkpoint signed by it alone is believed
    /// only if witnessed before then.
    pub until: Option<DateTime<Utc>>,
}

impl LogKeyPeriod {
    /// Whether the log still signs checkpoints with this key at `now`.
    pub fn signs_at(&self, now: DateTime<Utc>) -> bool {
        self.replaced_at.is_none() || self.until.is_some_and(|u| now < u)
    }
}

/// A quorum change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuorumChange {
    /// The registry entry.
    pub at: LeafIndex,
    /// The quorum from then on.
    pub quorum: u32,
}

/// The registry replayed from the log's registry entries, in index order.
#[derive(Clone, Debug)]
pub struct Registry {
    origin: String,
    log_keys: Vec<LogKeyPeriod>,
    keys: Vec<Registration>,
    quorums: Vec<QuorumChange>,
    /// Positions in `keys` by the key's text form, for [`Registry::may_sign`].
    by_text: std::collections::HashMap<String, Vec<usize>>,
    /// The first index not yet replayed.
    next: LeafIndex,
}

impl Registry {
    /// An empty registry for the log whose first key is `log_key` (its name
    /// is the log's origin).
    pub fn new(log_key: VerifierKey) -> Registry {
        Registry {
            origin: log_key.name().to_string(),
            log_keys: vec![LogKeyPeriod {
                key: log_key,
                from: None,
                replaced_at: None,
                until: None,
            }],
            keys: Vec::new(),
            quorums: Vec::new(),
            by_text: std::collections::HashMap::new(),
            next: LeafIndex(0),
        }
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The first index not yet replayed (one past the last entry applied).
    pub fn next(&self) -> LeafIndex {
        self.next
    }

    /// Notes that every entry before `index` has been seen (entries of
    /// other kinds do not change the registry).
    pub fn seen_up_to(&mut self, index: LeafIndex) {
        self.next = self.next.max(index);
    }

    /// The log key current now: it signs registry entries.
    pub fn log_key(&self) -> &VerifierKey {
        &self.current_log_key().key
    }

    fn current_log_key(&self) -> &LogKeyPeriod {
        // Never empty: `new` puts the first key in and nothing removes one.
        &self.log_keys[self.log_keys.len() - 1]
    }

    /// Every log key, oldest first.
    pub fn log_keys(&self) -> &[LogKeyPeriod] {
        &self.log_keys
    }

    /// The log keys that sign checkpoints at `now`: the current one, and
    /// rotated-out ones still in their transition.
    pub fn checkpoint_keys(&self, now: DateTime<Utc>) -> Vec<&VerifierKey> {
        self.log_keys
            .iter()
            .filter(|p| p.signs_at(now))
            .map(|p| &p.key)
            .collect()
    }

    /// Every registration, in the order the entries made them.
    pub fn registrations(&self) -> &[Registration] {
        &self.keys
    }

    /// One identity's keys over time (every registration under `name`).
    pub fn history(&self, name: &str) -> Vec<&Registration> {
        self.keys
            .iter()
            .filter(|r| r.key.name().as_str() == name)
            .collect()
    }

    /// The witnesses registered and not removed now.
    pub fn witnesses(&self) -> Vec<&Registration> {
        self.keys
            .iter()
            .filter(|r| r.role == Role::Witness && r.revoked_at.is_none())
            .collect()
    }

    /// The quorum the registry set last, if it set one.
    pub fn quorum(&self) -> Option<u32> {
        self.quorums.last().map(|q| q.quorum)
    }

    /// Every quorum change, oldest first.
    pub fn quorum_changes(&self) -> &[QuorumChange] {
        &self.quorums
    }

    /// The registration that lets `record`'s signer sign its kind now (after
    /// every entry replayed so far).
    pub fn signer_for(&self, record: &SignedRecord) -> Result<&Registration, SignerError> {
        let signer = record.signer();
        let mine: Vec<&Registration> = self.keys.iter().filter(|r| signer.is(&r.key)).collect();
        standing(&mine, record.kind(), record.body().signer_roles(), || {
            signer.to_string()
        })
    }

    /// Whether the key written `vkey` (verifier-key text) may sign `kind`
    /// now: the check a sequencer repeats at commit without parsing the
    /// record again.
    pub fn may_sign(&self, vkey: &str, kind: crate::Kind) -> Result<(), SignerError> {
        let mine: Vec<&Registration> = self
            .by_text
            .get(vkey)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|&pos| &self.keys[pos])
            .collect();
        standing(&mine, kind, kind.signer_roles(), || vkey.to_string()).map(|_| ())
    }

    /// Replays the registry entry at `index` (entries must come in index
    /// order; the caller skips other kinds or calls [`Registry::seen_up_to`]).
    /// Checks its signature under the log key current here.
    pub fn apply(&mut self, index: LeafIndex, record: &SignedRecord) -> Result<(), RegistryError> {
        let Body::Registry(body) = record.body() else {
            return Err(RegistryError::NotRegistry(index));
        };
        let current = self.log_key().clone();
        record
            .verify_signature(&current)
            .and_then(|()| record.check_held_by(&self.origin))
            .map_err(|why| RegistryError::NotSignedByLog {
                index,
                log_key: current.to_string(),
                why,
            })?;
        self.change(index, body, record.created())?;
        self.next = self.next.max(LeafIndex(index.0 + 1));
        Ok(())
    }

    fn change(
        &mut self,
        index: LeafIndex,
        body: &RegistryBody,
        created: DateTime<Utc>,
    ) -> Result<(), RegistryError> {
        let inconsistent = |why: String| RegistryError::Inconsistent { index, why };
        let key = body.key.as_ref().map(|k| k.key().clone());
        match (body.action, body.role) {
            (RegistryAction::Quorum, _) => {
                let quorum = body
                    .quorum
                    .ok_or_else(|| inconsistent("quorum entry without a quorum".into()))?;
                self.quorums.push(QuorumChange { at: index, quorum });
            }
            (RegistryAction::Rotate, Role::Log) => {
                let (Some(new), Some(old)) = (key, body.replaces.as_ref()) else {
                    return Err(inconsistent("log-key rotation without both keys".into()));
                };
                let current = self.log_key().clone();
                if *old.key() != current {
                    return Err(RegistryError::WrongLogKey {
                        index,
                        replaces: old.key().to_string(),
                        current: current.to_string(),
                    });
                }
                if new.name().as_str() != self.origin {
                    return Err(inconsistent(format!(
                        "the new log key is named {}, not the origin {}",
                        new.name(),
                        self.origin
                    )));
                }
                let last = self.log_keys.len() - 1;
                self.log_keys[last].replaced_at = Some(index);
                self.log_keys[last].until = Some(body.until.map_or(created, |u| u.get()));
                self.log_keys.push(LogKeyPeriod {
                    key: new,
                    from: Some(index),
                    replaced_at: None,
                    until: None,
                });
            }
            (RegistryAction::Add, role) => {
                let key = key.ok_or_else(|| inconsistent("add without a key".into()))?;
                if self.active(&key, role).is_some() {
                    return Err(inconsistent(format!(
                        "{key} is already registered as {role}"
                    )));
                }
                self.push(Registration {
                    key,
                    role,
                    added_at: index,
                    revoked_at: None,
                    replaces: None,
                    replaced_by: None,
                    display_name: body.display_name.as_ref().map(|t| t.as_str().to_string()),
                    url: body.url.as_ref().map(|t| t.as_str().to_string()),
                });
            }
            (RegistryAction::Revoke, role) => {
                let key = key.ok_or_else(|| inconsistent("revoke without a key".into()))?;
                let pos = self.active(&key, role).ok_or_else(|| {
                    inconsistent(format!("{key} is not a registered, unrevoked {role} key"))
                })?;
                self.keys[pos].revoked_at = Some(index);
            }
            (RegistryAction::Rotate, role) => {
                let (Some(new), Some(old)) = (key, body.replaces.as_ref()) else {
                    return Err(inconsistent("rotation without both keys".into()));
                };
                let pos = self.active(old.key(), role).ok_or_else(|| {
                    inconsistent(format!(
                        "{} is not a registered, unrevoked {role} key",
                        old.key()
                    ))
                })?;
                if self.active(&new, role).is_some() {
                    return Err(inconsistent(format!(
                        "{new} is already registered as {role}"
                    )));
                }
                let display_name = self.keys[pos].display_name.clone();
                self.keys[pos].revoked_at = Some(index);
                self.keys[pos].replaced_by = Some(new.clone());
                self.push(Registration {
                    key: new,
                    role,
                    added_at: index,
                    revoked_at: None,
                    replaces: Some(old.key().clone()),
                    replaced_by: None,
                    display_name: body
                        .display_name
                        .as_ref()
                        .map(|t| t.as_str().to_string())
                        .or(display_name),
                    url: body.url.as_ref().map(|t| t.as_str().to_string()),
                });
            }
        }
        Ok(())
    }

    fn push(&mut self, r: Registration) {
        self.by_text
            .entry(r.key.to_string())
            .or_default()
            .push(self.keys.len());
        self.keys.push(r);
    }

    /// The position of `key`'s unrevoked registration for `role`.
    fn active(&self, key: &VerifierKey, role: Role) -> Option<usize> {
        self.keys
            .iter()
            .position(|r| r.key == *key && r.role == role && r.revoked_at.is_none())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::record::Record;
    use chrono::TimeZone;
    use daylight_core::{KeyName, KeyType, SignerKey};

    const ORIGIN: &str = "log.example/daylight";

    fn key(name: &str, seed: u8) -> SignerKey {
        SignerKey::from_seed(KeyName::new(name).unwrap(), KeyType::Ed25519, [seed; 32])
    }

    fn t() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn a_share_release_is_a_custodians_and_a_plain_release_a_providers() {
        let log = key(ORIGIN, 1);
        let provider = key("provider.example", 5);
        let custodian = key("custodian.example", 6);
        let mut reg = Registry::new(log.verifier().clone());
        for (i, (role, k)) in [(Role::Provider, &provider), (Role::Custodian, &custodian)]
            .into_iter()
            .enumerate()
        {
            let add = Record::registry_add(role, k.verifier(), t())
                .unwrap()
                .sign(&log, ORIGIN)
                .unwrap();
            reg.apply(LeafIndex(i as u64), &add).unwrap();
        }
        let entry = crate::EntryRef {
            index: LeafIndex(0),
            leaf_hash: daylight_core::Hash([1; 32]),
        };
        let share = crate::ShareRef {
            key: crate::KeyTag([2; 32]),
            index: 1,
            threshold: 2,
            shares: 3,
        };
        let plain = Record::release(entry, 1, t(), t()).unwrap();
        let of_share = Record::share_release(entry, share, t(), t()).unwrap();
        let role_of = |r: &Record, k: &SignerKey| {
            reg.signer_for(&r.clone().sign(k, ORIGIN).unwrap())
                .map(|r| r.role)
                .map_err(|e| e.code())
        };
        assert_eq!(role_of(&plain, &provider), Ok(Role::Provider));
        assert_eq!(role_of(&plain, &custodian), Err("wrong_role"));
        assert_eq!(role_of(&of_share, &custodian), Ok(Role::Custodian));
        assert_eq!(role_of(&of_share, &provider), Err("wrong_role"));
    }

    #[test]
    fn share_numbers_are_checked() {
        let entry = crate::EntryRef {
            index: LeafIndex(0),
            leaf_hash: daylight_core::Hash([1; 32]),
        };
        let ok = crate::ShareRef {
            key: crate::KeyTag([2; 32]),
            index: 3,
            threshold: 2,
            shares: 3,
        };
        assert!(Record::share_release(entry, ok, t(), t()).is_ok());
        for (index, threshold, shares) in [(0, 2, 3), (4, 2, 3), (1, 1, 3), (1, 4, 3), (1, 0, 0)] {
            let bad = crate::ShareRef {
                index,
                threshold,
                shares,
                ..ok
            };
            assert!(
                Record::share_release(entry, bad, t(), t()).is_err(),
                "{index} {threshold} {shares}"
            );
        }
    }

    #[test]
    fn keys_rotate_revoke_and_the_log_key_chain_is_followed() {
        let log = key(ORIGIN, 1);
        let log2 = key(ORIGIN, 2);
        let agency = key("agency.example", 3);
        let agency2 = key("agency.example", 4);
        let mut reg = Registry::new(log.verifier().clone());
        let add = Record::registry_add(Role::Agency, agency.verifier(), t())
            .unwrap()
            .sign(&log, ORIGIN)
            .unwrap();
        reg.apply(LeafIndex(0), &add).unwrap();
        let request = Record::release(
            crate::EntryRef {
                index: LeafIndex(0),
                leaf_hash: add.leaf_hash(),
            },
            1,
            t(),
            t(),
        )
        .unwrap();
        // A release is a provider's: the agency has the wrong role.
        let by_agency = request.sign(&agency, ORIGIN).unwrap();
        assert_eq!(reg.signer_for(&by_agency).unwrap_err().code(), "wrong_role");

        // The log key rotates, signed by the old key, with a transition.
        let until = t() + chrono::Duration::days(7);
        let rotate =
            Record::registry_rotate(Role::Log, log.verifier(), log2.verifier(), Some(until), t())
                .unwrap();
        // Signed by the new key alone: refused.
        let forged = rotate.sign(&log2, ORIGIN).unwrap();
        let err = reg.clone().apply(LeafIndex(1), &forged).unwrap_err();
        assert_eq!(err.code(), "registry_not_signed_by_log");
        reg.apply(LeafIndex(1), &rotate.sign(&log, ORIGIN).unwrap())
            .unwrap();
        assert_eq!(reg.log_key(), log2.verifier());
        assert_eq!(reg.checkpoint_keys(t()).len(), 2);
        assert_eq!(reg.checkpoint_keys(until).len(), 1);
        // After the rotation the old log key signs nothing.
        let late =
            Record::registry_add(Role::Court, key("court.example", 5).verifier(), t()).unwrap();
        let err = reg
            .clone()
            .apply(LeafIndex(2), &late.sign(&log, ORIGIN).unwrap())
            .unwrap_err();
        assert_eq!(err.code(), "registry_not_signed_by_log");
        // A second rotation naming a key that is no longer current.
        let stale = Record::registry_rotate(
            Role::Log,
            log.verifier(),
            key(ORIGIN, 9).verifier(),
            Some(until),
            t(),
        )
        .unwrap()
        .sign(&log2, ORIGIN)
        .unwrap();
        let err = reg.clone().apply(LeafIndex(2), &stale).unwrap_err();
        assert_eq!(err.code(), "log_key_change_not_by_old_key");

        // The agency rotates: the old key is refused from here on, the new one accepted.
        let rot = Record::registry_rotate(
            Role::Agency,
            agency.verifier(),
            agency2.verifier(),
            None,
            t(),
        )
        .unwrap()
        .sign(&log2, ORIGIN)
        .unwrap();
        reg.apply(LeafIndex(2), &rot).unwrap();
        let withdrawal = |k: &SignerKey| {
            Record::new(
                t(),
                Body::Withdrawal(crate::WithdrawalBody {
                    entry: crate::EntryRef {
                        index: LeafIndex(0),
                        leaf_hash: add.leaf_hash(),
                    },
                    reason: crate::WithdrawalReason::IssuedInError,
                }),
            )
            .unwrap()
            .sign(k, ORIGIN)
            .unwrap()
        };
        let err = reg.signer_for(&withdrawal(&agency)).unwrap_err();
        assert_eq!(err.code(), "revoked_signer");
        assert!(
            err.to_string().contains("replaced by agency.example+"),
            "{err}"
        );
        assert_eq!(
            reg.signer_for(&withdrawal(&agency2)).unwrap().key,
            *agency2.verifier()
        );
        let history = reg.history("agency.example");
        assert_eq!(history.len(), 2);
        assert_eq!(history[0].revoked_at, Some(LeafIndex(2)));
        assert!(history[0].active_at(LeafIndex(2)));
        assert!(!history[0].active_at(LeafIndex(3)));
        assert_eq!(history[1].replaces.as_ref(), Some(agency.verifier()));
        // Revoking a key that is not registered is the log breaking its rules.
        let again = Record::registry_revoke(Role::Agency, agency.verifier(), t())
            .unwrap()
            .sign(&log2, ORIGIN)
            .unwrap();
        assert_eq!(
            reg.clone().apply(LeafIndex(3), &again).unwrap_err().code(),
            "registry_inconsistent"
        );
        let unknown = withdrawal(&key("stranger.example", 8));
        assert_eq!(
            reg.signer_for(&unknown).unwrap_err().code(),
            "unknown_signer"
        );
    }

    #[test]
    fn witnesses_and_quorum_change() {
        let log = key(ORIGIN, 1);
        let w1 = key("w1.example", 5).with_key_type(KeyType::CosignatureV1);
        let w2 = key("w2.example", 6).with_key_type(KeyType::CosignatureV1);
        let mut reg = Registry::new(log.verifier().clone());
        let entries = [
            Record::registry_witness(w1.verifier(), "https://w1.example/", None, t()).unwrap(),
            Record::registry_quorum(1, t()).unwrap(),
            Record::registry_witness(
                w2.verifier(),
                "https://w2.example/",
                Some(w1.verifier()),
                t(),
            )
            .unwrap(),
        ];
        for (i, r) in entries.iter().enumerate() {
            reg.apply(LeafIndex(i as u64), &r.sign(&log, ORIGIN).unwrap())
                .unwrap();
        }
        let now: Vec<_> = reg.witnesses().iter().map(|r| r.key.clone()).collect();
        assert_eq!(now, [w2.verifier().clone()]);
        assert_eq!(reg.quorum(), Some(1));
        assert_eq!(
            reg.witnesses()[0].url.as_deref(),
            Some("https://w2.example/")
        );
        let remove = Record::registry_revoke(Role::Witness, w2.verifier(), t())
            .unwrap()
            .sign(&log, ORIGIN)
            .unwrap();
        reg.apply(LeafIndex(3), &remove).unwrap();
        assert!(reg.witnesses().is_empty());
        assert_eq!(reg.next(), LeafIndex(4));
    }
}
