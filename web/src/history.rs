//! Key history and witness-set history, from the log's own registry
//! entries replayed with the schemas crate's [`Registry`] (the model the
//! log server and the auditor replay), shaped for the pages: each
//! identity's keys over time, the log's keys over time, and the witness
//! set and quorum in force from each registry entry on.

use daylight_core::{LeafIndex, VerifierKey};
use daylight_log_server::admission::first_log_key;
use daylight_log_server::store::{LogStore, StoreError, WitnessConfig};
use daylight_schemas::registry::{Registration, Registry};
use daylight_schemas::{Kind, Role, SignedRecord};

/// The registry as far as the web view has replayed it, kept between page
/// loads so each load reads only the registry entries added since.
#[derive(Default)]
pub struct RegistryCache {
    state: Option<Replayed>,
}

/// The replayed registry and what could not be replayed.
#[derive(Clone)]
pub struct Replayed {
    /// The registry after every registry entry below [`Replayed::size`].
    pub registry: Registry,
    /// The log size replayed up to.
    pub size: u64,
    /// Registry entries the registry refused, with why (the log writes only
    /// entries it signed, so each is an integrity problem an auditor flags).
    pub problems: Vec<(u64, String)>,
}

impl RegistryCache {
    /// The registry replayed up to the log's current size. `current` is
    /// the key the log signs with now: the chain of log keys starts from
    /// the key the first rotation replaced ([`first_log_key`]).
    pub fn catch_up(
        &mut self,
        store: &dyn LogStore,
        current: &VerifierKey,
    ) -> Result<&Replayed, StoreError> {
        let size = store.size()?.get();
        let fresh = self.state.as_ref().is_some_and(|s| s.size >= size);
        let entries = match (&self.state, fresh) {
            (_, true) => Vec::new(),
            (state, false) => {
                let from = state.as_ref().map_or(0, |s| s.registry.next().get());
                store.entries_of_kind(Kind::Registry.as_str(), LeafIndex(from))?
            }
        };
        // Made only on the first call, when `entries` holds every registry entry.
        let state = self.state.get_or_insert_with(|| Replayed {
            registry: Registry::new(first_log_key(current, &entries)),
            size: 0,
            problems: Vec::new(),
        });
        if fresh {
            return Ok(state);
        }
        // Entries stored past the size are not sequenced yet.
        for e in entries.iter().filter(|e| e.index.get() < size) {
            let applied = SignedRecord::parse(&e.data)
                .map_err(|why| why.to_string())
                .and_then(|r| {
                    state
                        .registry
                        .apply(e.index, &r)
                        .map_err(|why| format!("{}: {why}", why.code()))
                });
            if let Err(why) = applied {
                // Shown, and skipped: the rest of the registry still reads.
                state.problems.push((e.index.get(), why));
                state.registry.seen_up_to(LeafIndex(e.index.get() + 1));
            }
        }
        state.registry.seen_up_to(LeafIndex(size));
        state.size = size;
        Ok(state)
    }
}

/// An agency, court or provider: one key name and its keys over time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The key name every one of its keys carries.
    pub name: String,
    /// The newest public name given for it, if any.
    pub display_name: Option<String>,
    /// Its roles, in the order first registered.
    pub roles: Vec<Role>,
    /// Its registrations, oldest first.
    pub keys: Vec<Registration>,
}

impl Identity {
    /// Whether any of its keys may sign now.
    pub fn active(&self) -> bool {
        self.keys.iter().any(|k| k.revoked_at.is_none())
    }
}

/// Whether `role` belongs to an identity that signs records (not the log
/// itself, not a witness: those have their own histories).
pub(crate) fn signs_records(role: Role) -> bool {
    matches!(
        role,
        Role::Agency | Role::Court | Role::Provider | Role::Custodian
    )
}

/// Every agency, court, provider and custodian, in the order first
/// registered, each with its keys over time.
pub fn identities(reg: &Registry) -> Vec<Identity> {
    let mut out: Vec<Identity> = Vec::new();
    for r in reg.registrations().iter().filter(|r| signs_records(r.role)) {
        let name = r.key.name().as_str();
        if out.iter().any(|i| i.name == name) {
            continue;
        }
        out.push(identity(reg, name).unwrap_or_else(|| Identity {
            name: name.to_owned(),
            display_name: None,
            roles: vec![r.role],
            keys: vec![r.clone()],
        }));
    }
    out
}

/// One identity's keys over time (any role, witnesses included), or
/// `None` if the registry never named it.
pub fn identity(reg: &Registry, name: &str) -> Option<Identity> {
    let keys: Vec<Registration> = reg.history(name).into_iter().cloned().collect();
    if keys.is_empty() {
        return None;
    }
    let mut roles = Vec::new();
    for k in &keys {
        if !roles.contains(&k.role) {
            roles.push(k.role);
        }
    }
    Some(Identity {
        name: name.to_owned(),
        display_name: keys.iter().rev().find_map(|k| k.display_name.clone()),
        roles,
        keys,
    })
}

/// One witness in a set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its cosignature key.
    pub key: VerifierKey,
    /// Where the log asks it.
    pub url: String,
    /// The registry entry that added it; `None`: configured before
    /// witnesses were registry entries.
    pub since: Option<u64>,
}

/// What one registry entry changed in the witness set or quorum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WitnessChange {
    /// A witness joined.
    Added(VerifierKey),
    /// A witness took another's place.
    Replaced {
        /// The new witness.
        new: VerifierKey,
        /// The one it replaced (boxed: keys are large, the other variants small).
        old: Box<VerifierKey>,
    },
    /// A witness left.
    Removed(VerifierKey),
    /// The quorum changed.
    Quorum(u32),
}

/// The witness set and quorum in force from one point of the log on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessSet {
    /// The registry entry that made this set; `None`: the set the log
    /// started with.
    pub from: Option<u64>,
    /// What that entry changed.
    pub change: Option<WitnessChange>,
    /// The witnesses.
    pub witnesses: Vec<Member>,
    /// Cosignatures needed to publish a checkpoint.
    pub quorum: usize,
}

/// The witness sets over time, oldest first: the set the log started with
/// (witnesses configured before they were registry entries, and the quorum
/// the log was created with), then one set per registry entry that changed
/// the witnesses or the quorum. The same rules as the log server's
/// `effective_witnesses` (which gives the last of these sets), applied at
/// each entry.
pub fn witness_sets(
    reg: &Registry,
    stored: &[WitnessConfig],
    init_quorum: usize,
) -> Vec<WitnessSet> {
    let witnesses: Vec<&Registration> = reg
        .registrations()
        .iter()
        .filter(|r| r.role == Role::Witness)
        .collect();
    let mut changes: Vec<(u64, WitnessChange)> = Vec::new();
    for r in &witnesses {
        changes.push((
            r.added_at.get(),
            match &r.replaces {
                Some(old) => WitnessChange::Replaced {
                    new: r.key.clone(),
                    old: Box::new(old.clone()),
                },
                None => WitnessChange::Added(r.key.clone()),
            },
        ));
        // A replaced witness leaves with the entry that added its successor.
        if let (Some(at), None) = (r.revoked_at, &r.replaced_by) {
            changes.push((at.get(), WitnessChange::Removed(r.key.clone())));
        }
    }
    for q in reg.quorum_changes() {
        changes.push((q.at.get(), WitnessChange::Quorum(q.quorum)));
    }
    changes.sort_by_key(|c| c.0);
    let set_at = |at: Option<u64>| -> Vec<Member> {
        // `log add-witness` also stores a row (for the size each witness
        // last cosigned): only rows for keys the registry never names are
        // witnesses configured before witnesses were registry entries.
        let mut set: Vec<Member> = stored
            .iter()
            .filter(|w| !witnesses.iter().any(|r| r.key == w.key))
            .map(|w| Member {
                key: w.key.clone(),
                url: w.url.clone(),
                since: None,
            })
            .collect();
        if let Some(a) = at {
            set.extend(
                witnesses
                    .iter()
                    .filter(|r| r.added_at.get() <= a && r.revoked_at.is_none_or(|x| x.get() > a))
                    .map(|r| Member {
                        key: r.key.clone(),
                        url: r.url.clone().unwrap_or_default(),
                        since: Some(r.added_at.get()),
                    }),
            );
        }
        set
    };
    let quorum_at = |at: u64| -> usize {
        reg.quorum_changes()
            .iter()
            .rev()
            .find(|q| q.at.get() <= at)
            .map_or(init_quorum, |q| q.quorum as usize)
    };
    let mut out = vec![WitnessSet {
        from: None,
        change: None,
        witnesses: set_at(None),
        quorum: init_quorum,
    }];
    for (at, change) in changes {
        out.push(WitnessSet {
            from: Some(at),
            change: Some(change),
            witnesses: set_at(Some(at)),
            quorum: quorum_at(at),
        });
    }
    out
}
