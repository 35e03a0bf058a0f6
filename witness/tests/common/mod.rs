//! Shared test fixtures: a log (key and Merkle tree) that builds real signed
//! checkpoints and consistency proofs with the core, and a witness in a
//! temporary directory.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use daylight_core::tree::{consistency_proof, tree_hash, MemoryTree};
use daylight_core::witness_protocol::AddCheckpoint;
use daylight_core::{Checkpoint, Hash, KeyName, KeyType, SignerKey, TreeSize, VerifierKey};
use daylight_witness::{store, Witness, DB_FILE};

/// A test log: its signing key and its tree.
pub struct TestLog {
    pub origin: String,
    pub key: SignerKey,
    pub tree: MemoryTree,
}

impl TestLog {
    /// A log with `leaves` entries; `seed` picks its key.
    pub fn new(origin: &str, seed: u8, leaves: u64) -> TestLog {
        let key = SignerKey::from_seed(KeyName::new(origin).unwrap(), KeyType::Ed25519, [seed; 32]);
        let mut log = TestLog {
            origin: origin.to_owned(),
            key,
            tree: MemoryTree::new(),
        };
        log.grow(leaves);
        log
    }

    /// Appends `n` entries named after their index and the key.
    pub fn grow(&mut self, n: u64) {
        for _ in 0..n {
            let i = self.tree.size().get();
            let entry = format!("{} entry {i} {}", self.origin, self.key.verifier());
            self.tree.append(entry.as_bytes());
        }
    }

    pub fn vkey(&self) -> &VerifierKey {
        self.key.verifier()
    }

    pub fn size(&self) -> u64 {
        self.tree.size().get()
    }

    pub fn root_at(&self, size: u64) -> Hash {
        tree_hash(TreeSize(size), &self.tree).unwrap()
    }

    /// The checkpoint at `size`, signed by the log.
    pub fn checkpoint_at(&self, size: u64) -> Vec<u8> {
        Checkpoint::new(&self.origin, TreeSize(size), self.root_at(size))
            .sign(&self.key)
            .unwrap()
            .to_bytes()
    }

    pub fn proof(&self, old: u64, new: u64) -> Vec<Hash> {
        consistency_proof(TreeSize(old), TreeSize(new), &self.tree).unwrap()
    }

    /// A correct add-checkpoint body from `old` to `new`.
    pub fn request(&self, old: u64, new: u64) -> Vec<u8> {
        AddCheckpoint {
            old: TreeSize(old),
            proof: self.proof(old, new),
            checkpoint: self.checkpoint_at(new),
        }
        .to_bytes()
    }
}

/// A cosignature/v1 witness key.
pub fn witness_key(name: &str) -> SignerKey {
    SignerKey::from_seed(
        KeyName::new(name).unwrap(),
        KeyType::CosignatureV1,
        [42; 32],
    )
}

/// A witness directory with its database and the given logs added.
pub struct TestWitness {
    pub dir: tempfile::TempDir,
    pub key: SignerKey,
}

impl TestWitness {
    pub fn new(logs: &[&TestLog]) -> TestWitness {
        let dir = tempfile::tempdir().unwrap();
        store::create(&dir.path().join(DB_FILE)).unwrap();
        let w = TestWitness {
            dir,
            key: witness_key("witness.test/w1"),
        };
        for log in logs {
            w.add_log(&log.origin, log.vkey());
        }
        w
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join(DB_FILE)
    }

    pub fn add_log(&self, origin: &str, vkey: &VerifierKey) {
        add_log(&self.db(), origin, vkey);
    }

    pub fn open(&self) -> Witness {
        Witness::open(&self.db(), self.key.clone()).unwrap()
    }
}

pub fn add_log(db: &Path, origin: &str, vkey: &VerifierKey) {
    let mut conn = store::open(db).unwrap();
    store::add_log(&mut conn, origin, vkey, 1_700_000_000).unwrap();
}

/// A fixed, non-zero time for requests.
pub const NOW: u64 = 1_750_000_000;
