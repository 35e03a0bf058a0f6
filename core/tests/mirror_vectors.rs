//! C2SP tlog-mirror wire bytes over a public mirrored tree: Sunlight's
//! Skylight test mirror checkpoint (300 entries `record %d`, a verifiable
//! Ed25519 cosignature/v1 mirror signature) and add-entries bodies over the
//! same tree. The bodies are DERIVED (no public add-entries vector exists):
//! see core/testdata/SOURCES.md, "mirror/".

// Test code: a panic is how a failed expectation is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use daylight_core::cosignature::verify_cosignatures;
use daylight_core::mirror_protocol::{
    package_proof, AddEntriesEncoder, AddEntriesHeader, BodyEnd, PackageReader, PackageVerifyError,
};
use daylight_core::subtree::SubtreeProofError;
use daylight_core::tree::MemoryTree;
use daylight_core::{leaf_hash, Checkpoint, Hash, LeafIndex, Note, TreeSize, VerifierKey};
use sha2::{Digest, Sha256};

const MIRROR_VKEY: &str =
    "mirror.example.org+3fb148ef+BAAjjch9GyYz0sJsJx7ALhbdAtz2ov0unbzSl1vMp94O";

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/mirror")
        .join(rel)
}

fn records() -> Vec<Vec<u8>> {
    (0..300)
        .map(|i| format!("record {i}").into_bytes())
        .collect()
}

/// The Skylight mirror checkpoint: its cosignature verifies, and its root is
/// the tree of `record 0` .. `record 299`.
fn checkpoint() -> Checkpoint {
    let bytes = std::fs::read(testdata("skylight_mirror_checkpoint.note")).unwrap();
    let note = Note::parse(&bytes).unwrap();
    let key = VerifierKey::parse(MIRROR_VKEY).unwrap();
    let cosigs = verify_cosignatures(&note, &[&key]).unwrap();
    assert_eq!(cosigs.len(), 1);
    assert_eq!(cosigs[0].timestamp, 1767139200);
    Checkpoint::parse_text(note.text()).unwrap()
}

fn tree() -> MemoryTree {
    let mut tree = MemoryTree::new();
    for r in records() {
        tree.append(&r);
    }
    tree
}

fn encode(start: u64, end: u64, tree: &MemoryTree) -> Vec<u8> {
    let header = AddEntriesHeader {
        origin: "rome2026h1.example.org".into(),
        upload_start: LeafIndex(start),
        upload_end: TreeSize(end),
        ticket: vec![],
    };
    let entries = records();
    let mut out = Vec::new();
    let mut enc = AddEntriesEncoder::new(&header, &mut out).unwrap();
    while let Some(range) = enc.next_package() {
        let proof = package_proof(range, TreeSize(end), tree).unwrap();
        let es = &entries[range.start.get() as usize..range.end.get() as usize];
        enc.push_package(es, &proof, &mut out).unwrap();
    }
    out
}

#[test]
fn skylight_checkpoint_is_the_record_tree() {
    let cp = checkpoint();
    assert_eq!(cp.origin, "rome2026h1.example.org");
    assert_eq!(cp.size, TreeSize(300));
    assert_eq!(tree().root(), cp.root);
}

/// The two DERIVED bodies: our encoder writes them byte for byte (they were
/// written independently, by a Python script from the spec text, and their
/// digests are the ones in the research notes).
#[test]
fn derived_bodies_are_what_the_encoder_writes() {
    let tree = tree();
    for (file, start, len, digest) in [
        (
            "derived_add_entries_0_300.bin",
            0,
            3598,
            "9543bff8bc42b4712462270b301e990a88888db85c658727b18983bd991aca86",
        ),
        (
            "derived_add_entries_260_300.bin",
            260,
            555,
            "99f19548e7ce2d7587ecc92c1d7fe91e65010128200c39d15db9e195c8f71e78",
        ),
    ] {
        let want = std::fs::read(testdata(file)).unwrap();
        assert_eq!(want.len(), len, "{file}");
        assert_eq!(hex::encode(Sha256::digest(&want)), digest, "{file}");
        assert_eq!(encode(start, 300, &tree), want, "{file}");
    }
    // The header of [0, 300) as the notes spell it (42 bytes).
    let body = std::fs::read(testdata("derived_add_entries_0_300.bin")).unwrap();
    assert_eq!(
        hex::encode(&body[..42]),
        "0016726f6d653230323668312e6578616d706c652e6f72670000000000000000000000000000012c0000"
    );
}

/// A mirror's side: read each body package by package and verify it
/// against the cosigned checkpoint, supplying entries 256..260 itself for
/// the unaligned upload.
#[test]
fn derived_bodies_verify_against_the_checkpoint() {
    let cp = checkpoint();
    let leaves: Vec<Hash> = records().iter().map(|r| leaf_hash(r)).collect();
    for (file, start, packages) in [
        ("derived_add_entries_0_300.bin", 0u64, 2u64),
        ("derived_add_entries_260_300.bin", 260, 1),
    ] {
        let body = std::fs::read(testdata(file)).unwrap();
        let mut reader = PackageReader::new(body.as_slice()).unwrap();
        assert_eq!(reader.header().upload_start, LeafIndex(start));
        assert_eq!(reader.header().upload_end, cp.size);
        let mut next = start;
        while let Some(p) = reader.next_package().unwrap() {
            let r = p.range();
            assert_eq!(r.start, LeafIndex(next));
            let prefix = &leaves[r.subtree_start.get() as usize..r.start.get() as usize];
            p.verify(prefix, cp.size, cp.root).unwrap();
            assert_eq!(p.proof().len(), 1);
            for (i, e) in p.entries().enumerate() {
                assert_eq!(e, format!("record {}", next + i as u64).as_bytes());
            }
            next = r.end.get();
        }
        assert_eq!(next, 300);
        assert_eq!(
            reader.finish(),
            Ok(BodyEnd::Complete {
                packages,
                trailing_bytes: 0
            })
        );
    }
}

/// A changed byte in an entry, the proof or the checkpoint is refused.
#[test]
fn tampered_bodies_are_refused() {
    let cp = checkpoint();
    let body = std::fs::read(testdata("derived_add_entries_0_300.bin")).unwrap();
    let verify = |bytes: &[u8], root: Hash| -> Vec<Result<(), PackageVerifyError>> {
        let mut reader = PackageReader::new(bytes).unwrap();
        let mut out = Vec::new();
        while let Some(p) = reader.next_package().unwrap() {
            out.push(p.verify(&[], cp.size, root));
        }
        out
    };
    assert_eq!(verify(&body, cp.root), vec![Ok(()), Ok(())]);

    // "record 5" -> "record 4" in package 0: the root no longer matches
    // ([0, 256) is a node of the tree, so the subtree hash is taken as is).
    let mut bad = body.clone();
    let at = 42 + 5 * 10 + 2 + 7;
    assert_eq!(bad[at], b'5');
    bad[at] = b'4';
    let got = verify(&bad, cp.root);
    assert!(matches!(
        got[0],
        Err(PackageVerifyError::Proof {
            source: SubtreeProofError::RootMismatch { .. },
            ..
        })
    ));
    assert_eq!(got[1], Ok(()));

    // The last byte of package 1's proof hash.
    let mut bad = body.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(verify(&bad, cp.root)[1].is_err());

    // Another checkpoint root.
    let mut root = cp.root;
    root.0[0] ^= 0x80;
    assert!(verify(&body, root).iter().all(Result::is_err));
}
