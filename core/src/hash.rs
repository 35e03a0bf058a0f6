//! RFC 6962 / RFC 9162 section 2.1 hashing: SHA-256 with domain-separated
//! leaf (0x00) and interior node (0x01) prefixes.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha2::digest::block_buffer::BlockBuffer;
use sha2::digest::core_api::{Block, Buffer, UpdateCore, VariableOutputCore};
use sha2::digest::Output;
use sha2::{Digest, Sha256, Sha256VarCore};

/// Size in bytes of every hash in the log.
pub const HASH_SIZE: usize = 32;

/// A SHA-256 hash: a leaf hash, an interior node hash or a tree root.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; HASH_SIZE]);

impl Hash {
    /// The hash of a tree with no leaves: SHA-256 of the empty string (RFC 9162 2.1.1).
    pub fn empty_tree() -> Hash {
        Hash(Sha256::digest([]).into())
    }

    /// Reads a hash from exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Hash> {
        bytes.try_into().ok().map(Hash)
    }

    /// Parses standard base64 (with padding) of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Option<Hash> {
        let bytes = BASE64.decode(text).ok()?;
        Hash::from_slice(&bytes)
    }

    /// Standard base64 with padding, as in checkpoints and proofs.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; HASH_SIZE] {
        &self.0
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

/// The leaf hash of an entry: SHA-256(0x00 || entry).
// Inlined across crates: in a rebuild loop (`MemoryTree::append`) the call
// boundaries around each hash cost about a tenth of the time per leaf.
#[inline]
pub fn leaf_hash(entry: &[u8]) -> Hash {
    // The one-byte prefix shifts the entry off the block boundary, so the
    // first block is assembled here; the rest of the entry is then
    // block-aligned and goes straight to the compression function.
    let Some((head, rest)) = entry.split_at_checked(BLOCK - 1) else {
        let mut short = [0u8; BLOCK];
        short[1..=entry.len()].copy_from_slice(entry);
        return finish(start(), &short[..=entry.len()]);
    };
    let mut first = Block::<Sha256VarCore>::default();
    first[1..].copy_from_slice(head);
    let mut core = start();
    core.update_blocks(std::slice::from_ref(&first));
    let mut buffer = BlockBuffer::default();
    buffer.digest_blocks(rest, |blocks| core.update_blocks(blocks));
    finish_buffer(core, buffer)
}

/// The hash of an interior node: SHA-256(0x01 || left || right).
// Inlined across crates for the same reason as `leaf_hash`.
#[inline]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    // 65 bytes: one block assembled in place and one byte left for the
    // padding block. Building the block directly, rather than through three
    // `Digest::update` calls and their buffer copies, shortens the work
    // between a leaf hash and its parent's, which depends on it.
    let mut first = Block::<Sha256VarCore>::default();
    first[0] = 0x01;
    first[1..=HASH_SIZE].copy_from_slice(&left.0);
    first[HASH_SIZE + 1..].copy_from_slice(&right.0[..HASH_SIZE - 1]);
    let mut core = start();
    core.update_blocks(std::slice::from_ref(&first));
    finish(core, &right.0[HASH_SIZE - 1..])
}

/// The SHA-256 block size.
const BLOCK: usize = 64;

/// A fresh SHA-256 block-level state.
#[inline]
fn start() -> Sha256VarCore {
    Sha256VarCore::new(HASH_SIZE).expect("SHA-256 has a 32-byte output")
}

/// Pads and finishes after whole blocks, with `tail` (shorter than a block)
/// the last bytes of the message.
#[inline]
fn finish(core: Sha256VarCore, tail: &[u8]) -> Hash {
    finish_buffer(core, BlockBuffer::new(tail))
}

/// Pads and finishes with the message's last partial block in `buffer`.
#[inline]
fn finish_buffer(mut core: Sha256VarCore, mut buffer: Buffer<Sha256VarCore>) -> Hash {
    let mut out = Output::<Sha256VarCore>::default();
    core.finalize_variable_core(&mut buffer, &mut out);
    Hash(out.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6962 reference values, as used by transparency-dev/merkle's rfc6962 tests.
    #[test]
    fn empty_and_leaf_vectors() {
        assert_eq!(
            Hash::empty_tree().to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            leaf_hash(b"").to_hex(),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        assert_eq!(
            leaf_hash(b"L123456").to_hex(),
            "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
        );
        let l = leaf_hash(b"N123");
        let r = leaf_hash(b"N456");
        assert_eq!(l.to_hex().len(), 64);
        assert_ne!(node_hash(&l, &r), node_hash(&r, &l));
    }

    /// The block-level hashing agrees with plain SHA-256 of the prefixed
    /// message at every length around the block boundaries.
    #[test]
    fn block_level_hashing_matches_plain_sha256() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in 0..data.len() {
            let mut message = vec![0x00];
            message.extend_from_slice(&data[..len]);
            assert_eq!(
                leaf_hash(&data[..len]).0,
                <[u8; 32]>::from(Sha256::digest(&message)),
                "length {len}"
            );
        }
        let (l, r) = (leaf_hash(b"left"), leaf_hash(b"right"));
        let mut message = vec![0x01];
        message.extend_from_slice(&l.0);
        message.extend_from_slice(&r.0);
        assert_eq!(
            node_hash(&l, &r).0,
            <[u8; 32]>::from(Sha256::digest(&message))
        );
    }

    #[test]
    fn base64_round_trip_and_rejects_wrong_length() {
        let h = leaf_hash(b"x");
        assert_eq!(Hash::from_base64(&h.to_base64()), Some(h));
        assert_eq!(Hash::from_base64("AAAA"), None);
        assert_eq!(Hash::from_base64("not base64!"), None);
    }
}
