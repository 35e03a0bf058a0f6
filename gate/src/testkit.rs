//! A self-contained Daylight world for tests, benchmarks and a provider's
//! own integration tests: a log, three witnesses, two C2SP tlog-mirrors, an
//! agency, a court and a provider with keys from fixed seeds, an in-memory
//! tree, and helpers that seal drafts and cut proof bundles. No server, no
//! clock, no randomness.
//!
//! Never use these keys for anything real: their seeds are public.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use daylight_core::tree::{inclusion_proof, tree_hash, MemoryTree};
use daylight_core::{
    leaf_hash, Checkpoint, Hash, KeyName, KeyType, LeafIndex, SignerKey, TlogProof, TreeSize,
};
use daylight_schemas::{Draft, Kind, Opening, Record, Role, SchemaError, SignedRecord};

use crate::later::MirrorView;
use crate::policy::Policy;

pub mod fuzz;

/// Asserts that `d` is a DENY for `reason` with a one-line, non-empty
/// detail (panics, naming the decision, otherwise).
#[track_caller]
pub fn assert_denied(d: &crate::Decision, reason: crate::ReasonCode) {
    match d {
        crate::Decision::Deny {
            reason: r, detail, ..
        } => {
            assert_eq!(*r, reason, "{d}");
            assert!(!detail.is_empty() && !detail.contains('\n'), "{d}");
        }
        crate::Decision::Allow(_) => panic!("expected DENY {reason}, got {d}"),
    }
}

/// The test log's origin.
pub const ORIGIN: &str = "log.daylight.example";
/// The test provider's name (its key's name).
pub const PROVIDER: &str = "messenger.example";
/// The test agency's key name.
pub const AGENCY: &str = "agency.example";
/// The first target identifier of [`World::request_draft`].
pub const TARGET: &str = "acct:4815162342";
/// The second target identifier of [`World::request_draft`].
pub const OTHER_TARGET: &str = "acct:1123581321";

fn key(name: &str, key_type: KeyType, seed: u8) -> SignerKey {
    // The names are constants known to be valid key names.
    #[allow(clippy::expect_used)]
    let name = KeyName::new(name).expect("a valid key name");
    SignerKey::from_seed(name, key_type, [seed; 32])
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// One entry's bundle, as an agency hands it to the provider.
#[derive(Clone, Debug)]
pub struct Bundle {
    /// The entry bytes.
    pub entry: Vec<u8>,
    /// The C2SP tlog-proof text.
    pub proof: Vec<u8>,
    /// The private opening.
    pub opening: Opening,
    /// The entry's index.
    pub index: LeafIndex,
}

/// The test world.
pub struct World {
    /// The log's signing key (named [`ORIGIN`]).
    pub log: SignerKey,
    /// Three witnesses' cosignature keys.
    pub witnesses: Vec<SignerKey>,
    /// Two C2SP tlog-mirrors' cosignature keys (`mirror0.example`,
    /// `mirror1.example`): in no policy unless [`World::tlog_mirror_lines`]
    /// adds them; cosign with [`World::proof_with`].
    pub mirrors: Vec<SignerKey>,
    /// The agency's key (named [`AGENCY`]).
    pub agency: SignerKey,
    /// A court's key.
    pub court: SignerKey,
    /// The provider's key (named [`PROVIDER`]).
    pub provider: SignerKey,
    /// The log's next key, for rotations (also named [`ORIGIN`]).
    pub log2: SignerKey,
    /// The keys that sign checkpoints (default: [`World::log`] alone; during
    /// a rotation's transition both `log` and `log2`).
    pub checkpoint_keys: Vec<SignerKey>,
    /// The log's tree.
    pub tree: MemoryTree,
    /// The bytes of every entry that is not filler (filler at index `i` is
    /// `i` as 8 big-endian bytes).
    entries: BTreeMap<u64, Vec<u8>>,
    salt: u64,
}

impl Default for World {
    fn default() -> World {
        World::new()
    }
}

impl World {
    /// A world with an empty log.
    pub fn new() -> World {
        let log = key(ORIGIN, KeyType::Ed25519, 1);
        World {
            checkpoint_keys: vec![log.clone()],
            log,
            log2: key(ORIGIN, KeyType::Ed25519, 2),
            witnesses: (0..3u8)
                .map(|i| {
                    key(
                        &format!("witness{i}.example"),
                        KeyType::CosignatureV1,
                        10 + i,
                    )
                })
                .collect(),
            mirrors: (0..2u8)
                .map(|i| {
                    key(
                        &format!("mirror{i}.example"),
                        KeyType::CosignatureV1,
                        30 + i,
                    )
                })
                .collect(),
            agency: key(AGENCY, KeyType::Ed25519, 20),
            court: key("court.example", KeyType::Ed25519, 21),
            provider: key(PROVIDER, KeyType::Ed25519, 22),
            tree: MemoryTree::new(),
            entries: BTreeMap::new(),
            salt: 0,
        }
    }

    /// A policy text for this world: its log, its three witnesses, `quorum`
    /// of them, its agency and court, [`PROVIDER`], one hour maximum age,
    /// and emergencies allowed or not.
    pub fn policy_text(&self, quorum: usize, emergencies: bool) -> String {
        let mut out = format!("log {}\n", self.log.verifier());
        let mut names = Vec::new();
        for (i, w) in self.witnesses.iter().enumerate() {
            out.push_str(&format!("witness w{i} {}\n", w.verifier()));
            names.push(format!("w{i}"));
        }
        out.push_str(&format!(
            "group witnesses {quorum} {}\nquorum witnesses\n",
            names.join(" ")
        ));
        out.push_str(&format!(
            "daylight-agency {}\ndaylight-court {}\ndaylight-provider {PROVIDER}\n\
             daylight-max-age 3600\ndaylight-emergencies {}\n",
            self.agency.verifier(),
            self.court.verifier(),
            if emergencies { "allow" } else { "deny" }
        ));
        out
    }

    /// Policy lines requiring the first `n` of [`World::mirrors`]
    /// (`daylight-tlog-mirror`), and with `quorum` a
    /// `daylight-tlog-mirror-quorum` line: to append to
    /// [`World::policy_text`].
    pub fn tlog_mirror_lines(&self, n: usize, quorum: Option<usize>) -> String {
        let mut out: String = self
            .mirrors
            .iter()
            .take(n)
            .enumerate()
            .map(|(i, m)| {
                format!(
                    "daylight-tlog-mirror {} https://mirror{i}.example/\n",
                    m.verifier()
                )
            })
            .collect();
        if let Some(k) = quorum {
            out.push_str(&format!("daylight-tlog-mirror-quorum {k}\n"));
        }
        out
    }

    /// [`World::policy_text`] with a quorum of 2 and emergencies allowed, parsed.
    pub fn policy(&self) -> Policy {
        // The text is generated above and known to parse.
        #[allow(clippy::expect_used)]
        Policy::parse(&self.policy_text(2, true)).expect("the test policy parses")
    }

    /// A request draft to `provider` for [`TARGET`] and [`OTHER_TARGET`],
    /// valid from `created` for thirty days.
    pub fn request_draft(provider: &str, created: DateTime<Utc>) -> Draft {
        Self::draft_json(&Self::request_draft_json(provider, created))
    }

    /// The JSON text of [`World::request_draft`], as the agency's API takes it.
    pub fn request_draft_json(provider: &str, created: DateTime<Utc>) -> String {
        format!(
            r#"{{"kind": "request", "jurisdiction": "US-NY", "legal_basis": "18 U.S.C. 2518",
            "issuing_authority": {{"name": "U.S. District Court", "type": "court"}},
            "provider": "{provider}", "data_categories": ["content", "stored_keys"],
            "offence": "narcotics", "target_type": "account",
            "targets": ["{TARGET}", "{OTHER_TARGET}"],
            "valid_from": "{}", "valid_until": "{}", "sealed_until": "{}",
            "case_reference": "SDNY 26-MJ-0412",
            "order_document_sha256": "e150b12b36a887da8b38ee40d0dd46bdabfb71520b59476de35d931676d65fae"}}"#,
            stamp(created),
            stamp(created + Duration::days(30)),
            stamp(created + Duration::days(365)),
        )
    }

    /// An emergency draft to `provider` for [`TARGET`], valid from `created`
    /// for three days, to be ratified within 24 hours.
    pub fn emergency_draft(provider: &str, created: DateTime<Utc>) -> Draft {
        Self::draft_json(&Self::emergency_draft_json(provider, created))
    }

    /// The JSON text of [`World::emergency_draft`], as the agency's API takes it.
    pub fn emergency_draft_json(provider: &str, created: DateTime<Utc>) -> String {
        format!(
            r#"{{"kind": "emergency", "jurisdiction": "DE",
            "legal_basis": "Regulation (EU) 2023/1543 Art. 4(5)",
            "issuing_authority": {{"name": "Staatsanwaltschaft Berlin", "type": "prosecutor"}},
            "provider": "{provider}", "data_categories": ["subscriber", "location"],
            "offence": "kidnapping", "target_type": "account", "targets": ["{TARGET}"],
            "valid_from": "{}", "valid_until": "{}", "sealed_until": "{}",
            "case_reference": "276 Js 1234/26", "ground": "life_or_safety", "ratify_by": "{}"}}"#,
            stamp(created),
            stamp(created + Duration::days(3)),
            stamp(created + Duration::days(90)),
            stamp(created + Duration::hours(24)),
        )
    }

    fn draft_json(text: &str) -> Draft {
        // The drafts above are fixed and known to parse.
        #[allow(clippy::expect_used)]
        Draft::from_json(text).expect("the test draft parses")
    }

    /// Seals `draft` with `signer` at `created` for this log, with distinct
    /// salts from a counter.
    pub fn seal(
        &mut self,
        draft: &Draft,
        signer: &SignerKey,
        created: DateTime<Utc>,
    ) -> Result<(SignedRecord, Opening), SchemaError> {
        self.seal_for(draft, signer, ORIGIN, created)
    }

    /// As [`World::seal`], bound to the log `origin` (another log's, to test
    /// that a record signed for one log authorises nothing in another).
    pub fn seal_for(
        &mut self,
        draft: &Draft,
        signer: &SignerKey,
        origin: &str,
        created: DateTime<Utc>,
    ) -> Result<(SignedRecord, Opening), SchemaError> {
        let mut counter = self.salt;
        let mut rng = |buf: &mut [u8]| {
            counter += 1;
            buf.fill(0x5a);
            let n = counter.to_be_bytes();
            let len = n.len().min(buf.len());
            buf[..len].copy_from_slice(&n[..len]);
        };
        let sealed = draft.seal(signer, origin, created, &mut rng);
        self.salt = counter;
        sealed
    }

    /// Appends an entry to the log's tree.
    pub fn append(&mut self, entry: &[u8]) -> LeafIndex {
        let index = self.tree.append(entry);
        self.entries.insert(index.0, entry.to_vec());
        index
    }

    /// The bytes of the entry at `index` (filler included).
    pub fn entry(&self, index: u64) -> Vec<u8> {
        self.entries
            .get(&index)
            .cloned()
            .unwrap_or_else(|| index.to_be_bytes().to_vec())
    }

    /// Signs `record` with `key` for this log and appends it.
    pub fn log_record(
        &mut self,
        record: &Record,
        key: &SignerKey,
    ) -> Result<(LeafIndex, SignedRecord), SchemaError> {
        let signed = record.sign(key, ORIGIN)?;
        Ok((self.append(signed.as_bytes()), signed))
    }

    /// Registers the agency, the court and the provider in the log's own
    /// registry (entries signed by the log's key), as `daylight log
    /// add-agency` and friends do.
    pub fn register_parties(&mut self, created: DateTime<Utc>) -> Result<(), SchemaError> {
        let log = self.log.clone();
        for (role, k) in [
            (Role::Agency, self.agency.verifier().clone()),
            (Role::Court, self.court.verifier().clone()),
            (Role::Provider, self.provider.verifier().clone()),
        ] {
            self.log_record(&Record::registry_add(role, &k, created)?, &log)?;
        }
        Ok(())
    }

    /// A ratification draft deciding (`"granted"` or `"denied"`) on the
    /// entry at `index` with leaf hash `leaf`.
    pub fn ratification_draft(index: LeafIndex, leaf: Hash, decision: &str) -> Draft {
        Self::draft_json(&format!(
            r#"{{"kind": "ratification", "emergency": {{"index": {index}, "leaf_hash": "{}"}},
            "decision": "{decision}", "case_reference": "AG Tiergarten 351 Gs 88/26",
            "order_document_sha256": "9dd7385194b0ad0261b34104583c61d8c4179fd9ea64c07e17946e5c3e3a0410"}}"#,
            leaf.to_hex()
        ))
    }

    /// A withdrawal draft for the entry at `index` with leaf hash `leaf`.
    pub fn withdrawal_draft(index: LeafIndex, leaf: Hash) -> Draft {
        Self::draft_json(&format!(
            r#"{{"kind": "withdrawal", "entry": {{"index": {index}, "leaf_hash": "{}"}},
            "reason": "no_longer_needed"}}"#,
            leaf.to_hex()
        ))
    }

    /// The signed checkpoint at the current size, signed by
    /// [`World::checkpoint_keys`] and cosigned by the witnesses given as
    /// (position, Unix timestamp).
    pub fn checkpoint(&self, cosigners: &[(usize, u64)]) -> Vec<u8> {
        self.checkpoint_note(self.tree.size(), cosigners, &[])
    }

    /// The provider's mirror of this log as the gate sees it: the tree's
    /// size and root, the checkpoint cosigned by `cosigners`, every
    /// registry, withdrawal and ratification entry (a superset of what the
    /// CLI reads from the auditor's ledger: the check weighs only those
    /// about the entry), and the leaf hashes at `asked` (those in the tree)
    /// and at those entries.
    pub fn mirror(&self, asked: &[LeafIndex], cosigners: &[(usize, u64)]) -> MirrorView {
        let size = self.tree.size();
        let entries: Vec<(LeafIndex, Vec<u8>)> = self
            .entries
            .iter()
            .filter(|(_, e)| {
                SignedRecord::parse(e).is_ok_and(|r| {
                    matches!(
                        r.kind(),
                        Kind::Registry | Kind::Withdrawal | Kind::Ratification
                    )
                })
            })
            .map(|(&i, e)| (LeafIndex(i), e.clone()))
            .collect();
        let leaves = asked
            .iter()
            .map(|i| i.0)
            .filter(|&i| i < size.get())
            .chain(entries.iter().map(|(i, _)| i.0))
            .map(|i| (i, leaf_hash(&self.entry(i))))
            .collect();
        // The tree holds every hash it is asked for.
        #[allow(clippy::expect_used)]
        let root = tree_hash(size, &self.tree).expect("in-memory tree");
        MirrorView {
            checkpoint: self.checkpoint(cosigners),
            size: size.get(),
            root,
            leaves,
            entries,
        }
    }

    /// Appends `n` filler leaves (for large trees).
    pub fn append_filler(&mut self, n: u64) {
        let start = self.tree.size().get();
        for i in start..start + n {
            self.tree.append_leaf_hash(leaf_hash(&i.to_be_bytes()));
        }
    }

    /// A tlog-proof for `index` against the checkpoint at the current size,
    /// signed by the log and cosigned by the witnesses given as
    /// (position, Unix timestamp).
    pub fn proof(&self, index: LeafIndex, cosigners: &[(usize, u64)]) -> Vec<u8> {
        self.proof_with(index, cosigners, &[])
    }

    /// As [`World::proof`], with extra cosignatures by other keys.
    pub fn proof_with(
        &self,
        index: LeafIndex,
        cosigners: &[(usize, u64)],
        strangers: &[(&SignerKey, u64)],
    ) -> Vec<u8> {
        let size = self.tree.size();
        self.proof_at(index, size, cosigners, strangers)
    }

    fn proof_at(
        &self,
        index: LeafIndex,
        size: TreeSize,
        cosigners: &[(usize, u64)],
        strangers: &[(&SignerKey, u64)],
    ) -> Vec<u8> {
        TlogProof {
            extra: None,
            index,
            proof: inclusion_proof(index, size, &self.tree).unwrap_or_default(),
            checkpoint: self.checkpoint_note(size, cosigners, strangers),
        }
        .to_bytes()
    }

    fn checkpoint_note(
        &self,
        size: TreeSize,
        cosigners: &[(usize, u64)],
        strangers: &[(&SignerKey, u64)],
    ) -> Vec<u8> {
        // The tree holds every hash it is asked for; the checkpoint text is
        // generated and valid; the witness positions are the caller's.
        #[allow(clippy::expect_used)]
        let root = tree_hash(size, &self.tree).expect("in-memory tree");
        #[allow(clippy::expect_used)]
        let mut note = daylight_core::Note::new(&Checkpoint::new(ORIGIN, size, root).to_text())
            .expect("checkpoint note");
        for k in &self.checkpoint_keys {
            #[allow(clippy::expect_used)]
            note.sign(k, 0).expect("log signature");
        }
        for &(w, t) in cosigners {
            #[allow(clippy::expect_used)]
            note.sign(&self.witnesses[w], t).expect("cosign");
        }
        for &(k, t) in strangers {
            #[allow(clippy::expect_used)]
            note.sign(k, t).expect("cosign");
        }
        note.to_bytes()
    }

    /// Seals `draft` by the agency at `created`, appends it after a few
    /// other entries, and cuts a bundle cosigned by all three witnesses at
    /// `cosigned` (Unix seconds).
    pub fn bundle(
        &mut self,
        draft: &Draft,
        created: DateTime<Utc>,
        cosigned: u64,
    ) -> Result<Bundle, SchemaError> {
        let agency = self.agency.clone();
        self.bundle_by(draft, &agency, created, cosigned)
    }

    /// As [`World::bundle`], sealed by `signer` (a court's ratification, an
    /// agency's rotated key).
    pub fn bundle_by(
        &mut self,
        draft: &Draft,
        signer: &SignerKey,
        created: DateTime<Utc>,
        cosigned: u64,
    ) -> Result<Bundle, SchemaError> {
        let (record, opening) = self.seal(draft, signer, created)?;
        self.append_filler(3);
        let index = self.append(record.as_bytes());
        self.append_filler(2);
        let proof = self.proof(index, &[(0, cosigned), (1, cosigned), (2, cosigned)]);
        Ok(Bundle {
            entry: record.to_bytes(),
            proof,
            opening,
            index,
        })
    }
}
