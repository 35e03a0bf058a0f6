//! The local mirror: the audit directory's layout, its state, the kept
//! checkpoints, tiles read from disk, and the compact range ("frontier")
//! that re-derives the root from the entries.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use daylight_core::tile::{Tile, TileError, TileReader};
use daylight_core::{node_hash, Checkpoint, Hash, Note};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::AuditError;

/// The audit directory.
#[derive(Clone, Debug)]
pub struct AuditDir {
    root: PathBuf,
}

/// What the auditor last verified: the tree and the compact range of its
/// leaves (enough to extend the root with new entries).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorState {
    /// Verified tree size.
    pub size: u64,
    /// Its root, base64.
    pub root: String,
    /// Roots of the perfect subtrees making up the tree, left to right, base64.
    pub frontier: Vec<String>,
    /// The kept signed checkpoint for that size (relative path).
    pub checkpoint: String,
}

/// The pinned identity of the audited log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedLog {
    /// URL it was first audited at.
    pub url: String,
    /// Origin.
    pub origin: String,
    /// Verifier key.
    pub vkey: String,
}

fn io(path: &Path, e: std::io::Error) -> AuditError {
    AuditError::Io(format!("{}: {e}", path.display()))
}

impl AuditDir {
    /// Opens (creating) the audit directory.
    pub fn open(root: &Path) -> Result<AuditDir, AuditError> {
        for sub in ["checkpoints", "tile", "evidence"] {
            let p = root.join(sub);
            std::fs::create_dir_all(&p).map_err(|e| io(&p, e))?;
        }
        Ok(AuditDir {
            root: root.to_owned(),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Absolute path of a relative one.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Writes `data` at `rel` atomically (temporary file, then rename).
    pub fn write(&self, rel: &str, data: &[u8]) -> Result<(), AuditError> {
        let path = self.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, data).map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))
    }

    /// Reads `rel`, or None if it does not exist.
    pub fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, AuditError> {
        let path = self.join(rel);
        match std::fs::read(&path) {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path, e)),
        }
    }

    /// Whether `rel` exists.
    pub fn exists(&self, rel: &str) -> bool {
        self.join(rel).is_file()
    }

    /// The mirror's state (default: nothing verified).
    pub fn state(&self) -> Result<MirrorState, AuditError> {
        match self.read("state.json")? {
            None => Ok(MirrorState::default()),
            Some(d) => serde_json::from_slice(&d)
                .map_err(|e| AuditError::Corrupt(format!("state.json: {e}"))),
        }
    }

    /// Saves the state.
    pub fn save_state(&self, state: &MirrorState) -> Result<(), AuditError> {
        let text = serde_json::to_vec_pretty(state)
            .map_err(|e| AuditError::Corrupt(format!("state.json: {e}")))?;
        self.write("state.json", &text)
    }

    /// The pinned log, if any.
    pub fn pinned(&self) -> Result<Option<PinnedLog>, AuditError> {
        match self.read("log.json")? {
            None => Ok(None),
            Some(d) => serde_json::from_slice(&d)
                .map(Some)
                .map_err(|e| AuditError::Corrupt(format!("log.json: {e}"))),
        }
    }

    /// Pins the log.
    pub fn pin(&self, log: &PinnedLog) -> Result<(), AuditError> {
        let text = serde_json::to_vec_pretty(log)
            .map_err(|e| AuditError::Corrupt(format!("log.json: {e}")))?;
        self.write("log.json", &text)
    }

    /// The key and witness-set history kept for the verified size, if any.
    pub fn history(&self) -> Result<Option<crate::history::History>, AuditError> {
        match self.read("history.json")? {
            None => Ok(None),
            Some(d) => serde_json::from_slice(&d)
                .map(Some)
                .map_err(|e| AuditError::Corrupt(format!("history.json: {e}"))),
        }
    }

    /// Keeps the history (written before `state.json`, so that a kept
    /// history always covers at least the kept size).
    pub fn save_history(&self, history: &crate::history::History) -> Result<(), AuditError> {
        let text = serde_json::to_vec_pretty(history)
            .map_err(|e| AuditError::Corrupt(format!("history.json: {e}")))?;
        self.write("history.json", &text)
    }

    /// Keeps a signed checkpoint as evidence under `checkpoints/`, named by
    /// its size (if it parses) and the hash of its bytes; logs where it
    /// came from in `checkpoints/seen.jsonl`. Returns the relative path.
    pub fn keep_checkpoint(&self, bytes: &[u8], source: &str) -> Result<String, AuditError> {
        let digest = hex::encode(&Sha256::digest(bytes)[..8]);
        let size = Note::parse(bytes)
            .ok()
            .and_then(|n| Checkpoint::parse_text(n.text()).ok())
            .map(|c| c.size.get().to_string())
            .unwrap_or_else(|| "unparsed".into());
        let rel = format!("checkpoints/{size}-{digest}.checkpoint");
        if !self.exists(&rel) {
            self.write(&rel, bytes)?;
        }
        let line = serde_json::json!({
            "file": rel,
            "source": source,
            "seen_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
        use std::io::Write as _;
        let path = self.join("checkpoints/seen.jsonl");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        writeln!(f, "{line}").map_err(|e| io(&path, e))?;
        Ok(rel)
    }

    /// Copies `rel` files into `evidence/<name>/` and removes them from the
    /// mirror (they failed verification, so a later run fetches them again).
    pub fn quarantine(&self, name: &str, rels: &[String]) -> Result<Vec<String>, AuditError> {
        let mut out = Vec::new();
        for rel in rels {
            if let Some(data) = self.read(rel)? {
                let dest = format!("evidence/{name}/{rel}");
                self.write(&dest, &data)?;
                let _ = std::fs::remove_file(self.join(rel));
                out.push(dest);
            }
        }
        Ok(out)
    }
}

/// Reads tiles from the mirror, caching those above level 0 (few, reused).
pub struct LocalTiles<'a> {
    dir: &'a AuditDir,
    cache: Mutex<HashMap<Tile, Vec<u8>>>,
    /// Tiles fetched but not stored (checking a witness's larger tree).
    pub overlay: HashMap<Tile, Vec<u8>>,
}

impl<'a> LocalTiles<'a> {
    /// Tiles under `dir`.
    pub fn new(dir: &'a AuditDir) -> LocalTiles<'a> {
        LocalTiles {
            dir,
            cache: Mutex::new(HashMap::new()),
            overlay: HashMap::new(),
        }
    }
}

impl TileReader for LocalTiles<'_> {
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TileError> {
        let mut out = Vec::with_capacity(tiles.len());
        for t in tiles {
            if let Some(d) = self.overlay.get(t) {
                out.push(d.clone());
                continue;
            }
            if t.level > 0 {
                if let Some(d) = self.cache.lock().ok().and_then(|c| c.get(t).cloned()) {
                    out.push(d);
                    continue;
                }
            }
            let data = self
                .dir
                .read(&t.path())
                .map_err(|e| TileError::Read(e.to_string()))?
                .ok_or_else(|| TileError::Read(format!("tile {t} is not in the mirror")))?;
            if t.level > 0 {
                if let Ok(mut c) = self.cache.lock() {
                    c.insert(*t, data.clone());
                }
            }
            out.push(data);
        }
        Ok(out)
    }
}

/// The roots of the perfect subtrees of a tree, left to right: appending a
/// leaf needs only these, and they give the root.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    hashes: Vec<Hash>,
}

impl Frontier {
    /// From a saved state.
    pub fn from_state(size: u64, hashes: &[String]) -> Option<Frontier> {
        let hashes: Option<Vec<Hash>> = hashes.iter().map(|h| Hash::from_base64(h)).collect();
        let hashes = hashes?;
        (hashes.len() == size.count_ones() as usize).then_some(Frontier { size, hashes })
    }

    /// For saving.
    pub fn to_state(&self) -> Vec<String> {
        self.hashes.iter().map(Hash::to_base64).collect()
    }

    /// Leaves so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut s = self.size;
        while s & 1 == 1 {
            // Invariant: one stored hash per set bit of size.
            let Some(left) = self.hashes.pop() else {
                break;
            };
            h = node_hash(&left, &h);
            s >>= 1;
        }
        self.hashes.push(h);
        self.size += 1;
    }

    /// The root (RFC 6962 Merkle tree hash).
    pub fn root(&self) -> Hash {
        let mut iter = self.hashes.iter().rev();
        let Some(last) = iter.next() else {
            return Hash::empty_tree();
        };
        iter.fold(*last, |acc, h| node_hash(h, &acc))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use daylight_core::tree::MemoryTree;

    #[test]
    fn frontier_matches_memory_tree() {
        let mut t = MemoryTree::new();
        let mut f = Frontier::default();
        assert_eq!(f.root(), t.root());
        for i in 0u64..1100 {
            t.append(&i.to_be_bytes());
            f.push(daylight_core::leaf_hash(&i.to_be_bytes()));
            assert_eq!(f.root(), t.root(), "size {}", i + 1);
            let saved = Frontier::from_state(f.size(), &f.to_state()).unwrap();
            assert_eq!(saved, f);
        }
    }
}
