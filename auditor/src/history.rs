//! Key history and witness-set history, as the log's own registry entries
//! define them: the log's keys over time, each identity's keys over time,
//! and which witnesses and quorum applied from which entry.
//!
//! Written into `findings.json` (`history`), into the transparency report,
//! and kept as `DIR/history.json` beside `state.json` for the verified size,
//! where the next run reads the log's chain of keys back (to open
//! checkpoints of sizes it already verified).

use std::collections::BTreeMap;

use chrono::SecondsFormat;
use daylight_core::{LeafIndex, VerifierKey};
use daylight_schemas::{LogKeyPeriod, Registry, Role};
use serde::{Deserialize, Serialize};

/// The schema identifier written in every `history.json`.
pub const HISTORY_SCHEMA: &str = "daylight.audit.history/v1";

/// What the registry entries of the first `size` entries say, in a stable order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// Always [`HISTORY_SCHEMA`].
    pub schema: String,
    /// The tree size replayed: registry entries below it are counted.
    pub size: u64,
    /// The log's keys, oldest first; the chain starts at the key the
    /// auditor pinned, and each later key comes from a rotation entry
    /// signed by the key before it.
    pub log_keys: Vec<LogKeyInfo>,
    /// Every agency, court and provider, by key name then role, each with
    /// its keys in the order they were registered.
    pub identities: Vec<Identity>,
    /// Every witness key the registry listed, in the order registered.
    pub witnesses: Vec<WitnessKeyInfo>,
    /// The witness set and quorum after each registry entry that changed
    /// either, oldest first. Each applies to checkpoints whose size exceeds
    /// `from` (they include the entry).
    pub witness_sets: Vec<WitnessSet>,
}

/// One of the log's keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogKeyInfo {
    /// The key (verifier-key text).
    pub vkey: String,
    /// The rotation entry that made it current (`null`: the first key).
    pub from: Option<u64>,
    /// The rotation entry that replaced it, if any.
    pub replaced_at: Option<u64>,
    /// End of its transition after a rotation (RFC 3339): until then the
    /// log's checkpoints may also carry its signature.
    pub until: Option<String>,
}

/// An agency, court or provider: one key name in one role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The key name (the agency, court or provider).
    pub name: String,
    /// `agency`, `court` or `provider`.
    pub role: String,
    /// Its keys in the order they were registered.
    pub keys: Vec<IdentityKey>,
}

/// One key of an identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityKey {
    /// The key (verifier-key text).
    pub vkey: String,
    /// The registry entry that added it (or rotated it in).
    pub added_at: u64,
    /// The entry that revoked it or rotated it out: records it signs after
    /// that entry are findings (`signer_revoked`); before it they stay valid.
    pub revoked_at: Option<u64>,
    /// The key it replaced, if a rotation added it.
    pub replaces: Option<String>,
    /// The key that replaced it, if a rotation retired it.
    pub replaced_by: Option<String>,
    /// The public name given when it was registered.
    pub display_name: Option<String>,
}

/// One witness key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessKeyInfo {
    /// The witness's cosignature key (verifier-key text).
    pub vkey: String,
    /// Its URL, if registered with one.
    pub url: Option<String>,
    /// The registry entry that added it.
    pub added_at: u64,
    /// The entry that removed or replaced it, if any.
    pub removed_at: Option<u64>,
    /// The witness key it replaced, if any.
    pub replaces: Option<String>,
    /// The witness key that replaced it, if any.
    pub replaced_by: Option<String>,
}

/// The witness set and quorum from one registry entry on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessSet {
    /// The registry entry that changed the set or the quorum.
    pub from: u64,
    /// The witness keys in the set after it, in the order registered.
    pub witnesses: Vec<String>,
    /// The quorum after it (`null`: the registry has set none yet).
    pub quorum: Option<u32>,
}

fn text(k: &VerifierKey) -> String {
    k.to_string()
}

impl History {
    /// The history of `registry`, which has replayed the first `size` entries.
    pub fn of(registry: &Registry, size: u64) -> History {
        let log_keys = registry
            .log_keys()
            .iter()
            .map(|p| LogKeyInfo {
                vkey: text(&p.key),
                from: p.from.map(|i| i.0),
                replaced_at: p.replaced_at.map(|i| i.0),
                until: p
                    .until
                    .map(|u| u.to_rfc3339_opts(SecondsFormat::Secs, true)),
            })
            .collect();
        let mut identities: BTreeMap<(String, &'static str), Vec<IdentityKey>> = BTreeMap::new();
        let mut witnesses = Vec::new();
        for r in registry.registrations() {
            if r.role == Role::Witness {
                witnesses.push(WitnessKeyInfo {
                    vkey: text(&r.key),
                    url: r.url.clone(),
                    added_at: r.added_at.0,
                    removed_at: r.revoked_at.map(|i| i.0),
                    replaces: r.replaces.as_ref().map(text),
                    replaced_by: r.replaced_by.as_ref().map(text),
                });
                continue;
            }
            identities
                .entry((r.key.name().to_string(), r.role.as_str()))
                .or_default()
                .push(IdentityKey {
                    vkey: text(&r.key),
                    added_at: r.added_at.0,
                    revoked_at: r.revoked_at.map(|i| i.0),
                    replaces: r.replaces.as_ref().map(text),
                    replaced_by: r.replaced_by.as_ref().map(text),
                    display_name: r.display_name.clone(),
                });
        }
        let identities = identities
            .into_iter()
            .map(|((name, role), keys)| Identity {
                name,
                role: role.to_owned(),
                keys,
            })
            .collect();
        History {
            schema: HISTORY_SCHEMA.to_owned(),
            size,
            log_keys,
            identities,
            witness_sets: witness_sets(registry),
            witnesses,
        }
    }

    /// The log's chain of keys as kept, parsed; `None` if a key does not parse.
    pub fn log_key_chain(&self) -> Option<Vec<(VerifierKey, Option<u64>)>> {
        self.log_keys
            .iter()
            .map(|k| VerifierKey::parse(&k.vkey).ok().map(|v| (v, k.from)))
            .collect()
    }

    /// The witness set and quorum for a checkpoint of `size`: the last
    /// change below `size`, if any.
    pub fn witness_set_for(&self, size: u64) -> Option<&WitnessSet> {
        self.witness_sets.iter().rev().find(|s| s.from < size)
    }
}

fn witness_sets(registry: &Registry) -> Vec<WitnessSet> {
    let witnesses: Vec<_> = registry
        .registrations()
        .iter()
        .filter(|r| r.role == Role::Witness)
        .collect();
    let mut changes: Vec<u64> = witnesses
        .iter()
        .flat_map(|r| std::iter::once(r.added_at.0).chain(r.revoked_at.map(|i| i.0)))
        .chain(registry.quorum_changes().iter().map(|q| q.at.0))
        .collect();
    changes.sort_unstable();
    changes.dedup();
    changes
        .into_iter()
        .map(|at| {
            // In force for checkpoints that include entry `at`.
            let after = LeafIndex(at + 1);
            WitnessSet {
                from: at,
                witnesses: witnesses
                    .iter()
                    .filter(|r| r.active_at(after))
                    .map(|r| text(&r.key))
                    .collect(),
                quorum: registry
                    .quorum_changes()
                    .iter()
                    .rev()
                    .find(|q| q.at.0 <= at)
                    .map(|q| q.quorum),
            }
        })
        .collect()
}

/// The log key that must sign a checkpoint of `size`: the one made current
/// by the last rotation entry below `size` (the first key if none). `chain`
/// is oldest first, with the entry that made each key current.
pub fn key_for_size<K>(chain: &[(K, Option<u64>)], size: u64) -> Option<&K> {
    chain
        .iter()
        .rev()
        .find(|(_, from)| from.is_none_or(|f| f < size))
        .map(|(k, _)| k)
}

/// The chain of a replayed registry, as [`key_for_size`] takes it.
pub fn chain_of(periods: &[LogKeyPeriod]) -> Vec<(VerifierKey, Option<u64>)> {
    periods
        .iter()
        .map(|p| (p.key.clone(), p.from.map(|i| i.0)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_for_size_follows_rotation_entries() {
        let chain = [("a", None), ("b", Some(5)), ("c", Some(9))];
        assert_eq!(key_for_size(&chain, 0), Some(&"a"));
        // A checkpoint of size 5 does not include entry 5.
        assert_eq!(key_for_size(&chain, 5), Some(&"a"));
        assert_eq!(key_for_size(&chain, 6), Some(&"b"));
        assert_eq!(key_for_size(&chain, 9), Some(&"b"));
        assert_eq!(key_for_size(&chain, 10), Some(&"c"));
    }
}
