//! Public test vectors: see core/testdata/SOURCES.md for where each file
//! came from (transparency-dev/merkle, golang/mod sumdb/note, transparency-dev
//! formats, the C2SP specs) and which values were derived locally.

// Test code: a panic is how a failed expectation is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use daylight_core::cosignature::verify_cosignatures;
use daylight_core::proof::{verify_consistency, verify_inclusion};
use daylight_core::tile::{new_tiles, Tile, TilePath};
use daylight_core::tree::{consistency_proof, inclusion_proof, tree_hash, MemoryTree};
use daylight_core::{
    Checkpoint, Hash, KeyType, LeafIndex, Note, NoteError, SignedCheckpoint, SignerKey, TlogProof,
    TreeSize, VerifierKey,
};
use serde_json::Value;

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(rel)
}

fn json(rel: &str) -> Value {
    serde_json::from_slice(&std::fs::read(testdata(rel)).unwrap()).unwrap()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

fn b64_hash(v: &Value) -> Option<Hash> {
    Hash::from_base64(v.as_str()?)
}

fn b64_proof(v: &Value) -> Option<Vec<Hash>> {
    match v {
        Value::Null => Some(vec![]),
        Value::Array(a) => a.iter().map(b64_hash).collect(),
        _ => None,
    }
}

fn hex_hash(v: &Value) -> Hash {
    let bytes = hex::decode(v.as_str().unwrap()).unwrap();
    Hash::from_slice(&bytes).unwrap()
}

/// transparency-dev/merkle testdata/inclusion: every case, valid and invalid.
/// Hashes that are not 32 bytes cannot become a `Hash`, which counts as a refusal.
#[test]
fn merkle_inclusion_vectors() {
    let mut files = Vec::new();
    walk(&testdata("merkle/inclusion"), &mut files);
    assert!(files.len() >= 90, "expected the whole upstream directory");
    let (mut valid, mut invalid) = (0, 0);
    for f in files {
        let v: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        let want_err = v["wantErr"].as_bool().unwrap();
        let result = (|| {
            let proof = b64_proof(&v["proof"]).ok_or("bad proof hash")?;
            let leaf = b64_hash(&v["leafHash"]).ok_or("bad leaf hash")?;
            let root = b64_hash(&v["root"]).ok_or("bad root")?;
            let index = LeafIndex(v["leafIdx"].as_u64().unwrap());
            let size = TreeSize(v["treeSize"].as_u64().unwrap());
            verify_inclusion(leaf, index, size, &proof, root).map_err(|_| "refused")
        })();
        assert_eq!(result.is_err(), want_err, "{}: {result:?}", f.display());
        if want_err {
            invalid += 1
        } else {
            valid += 1
        }
    }
    assert!(valid >= 6 && invalid >= 90);
}

/// transparency-dev/merkle testdata/consistency. One deliberate difference:
/// upstream accepts equal sizes with equal 12-byte "roots"; here a root is a
/// 32-byte hash by type, so that input cannot even be expressed.
#[test]
fn merkle_consistency_vectors() {
    let mut files = Vec::new();
    walk(&testdata("merkle/consistency"), &mut files);
    assert!(files.len() >= 90);
    let mut differences = Vec::new();
    for f in files {
        let v: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        let want_err = v["wantErr"].as_bool().unwrap();
        let result = (|| {
            let proof = b64_proof(&v["proof"]).ok_or("bad proof hash")?;
            let r1 = b64_hash(&v["root1"]).ok_or("bad root1")?;
            let r2 = b64_hash(&v["root2"]).ok_or("bad root2")?;
            let s1 = TreeSize(v["size1"].as_u64().unwrap());
            let s2 = TreeSize(v["size2"].as_u64().unwrap());
            verify_consistency(s1, s2, r1, r2, &proof).map_err(|_| "refused")
        })();
        if result.is_err() != want_err {
            differences.push(f.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    assert_eq!(differences, ["sizes-are-equal-one-and-proof-is-empty.json"]);
}

/// The eight RFC 6962 reference leaves: roots at every size, and every proof
/// (public ones from transparency-dev/merkle, the rest derived) generated
/// byte-for-byte and verified.
#[test]
fn rfc6962_reference_tree() {
    for file in [
        "merkle/rfc6962_reference.json",
        "merkle/rfc6962_derived_all_proofs.json",
    ] {
        let v = json(file);
        let mut tree = MemoryTree::new();
        for leaf in v["leaves_hex"].as_array().unwrap() {
            tree.append(&hex::decode(leaf.as_str().unwrap()).unwrap());
        }
        for (size, root) in v["roots_hex_by_size"].as_object().unwrap() {
            let size = TreeSize(size.parse().unwrap());
            assert_eq!(
                tree_hash(size, &tree).unwrap(),
                hex_hash(root),
                "{file} size {size}"
            );
        }
        for p in v["inclusion_proofs"].as_array().unwrap() {
            let index = LeafIndex(p["index"].as_u64().unwrap());
            let size = TreeSize(p["size"].as_u64().unwrap());
            let want: Vec<Hash> = p["proof"]
                .as_array()
                .unwrap()
                .iter()
                .map(hex_hash)
                .collect();
            assert_eq!(
                inclusion_proof(index, size, &tree).unwrap(),
                want,
                "{file} {index}@{size}"
            );
            verify_inclusion(
                hex_hash(&p["leaf_hash"]),
                index,
                size,
                &want,
                hex_hash(&p["root"]),
            )
            .unwrap();
        }
        for p in v["consistency_proofs"].as_array().unwrap() {
            let s1 = TreeSize(p["size1"].as_u64().unwrap());
            let s2 = TreeSize(p["size2"].as_u64().unwrap());
            let want: Vec<Hash> = p["proof"]
                .as_array()
                .unwrap()
                .iter()
                .map(hex_hash)
                .collect();
            assert_eq!(
                consistency_proof(s1, s2, &tree).unwrap(),
                want,
                "{file} {s1}->{s2}"
            );
            verify_consistency(s1, s2, hex_hash(&p["root1"]), hex_hash(&p["root2"]), &want)
                .unwrap();
        }
    }
}

const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";

/// golang.org/x/mod/sumdb/note: signing the example text with the example
/// key gives exactly Go's signed note, and Go's notes open here.
#[test]
fn go_note_sign_and_open() {
    let text = std::fs::read_to_string(testdata("note/peterneumann_text.txt")).unwrap();
    let signed = std::fs::read(testdata("note/peterneumann_signed.note")).unwrap();
    let signer = SignerKey::parse(PETER_SKEY).unwrap();
    assert_eq!(signer.verifier().to_string(), PETER_VKEY);
    assert_eq!(signer.to_secret_text(), PETER_SKEY);
    let mut note = Note::new(&text).unwrap();
    note.sign(&signer, 0).unwrap();
    assert_eq!(note.to_bytes(), signed);

    let peter = VerifierKey::parse(PETER_VKEY).unwrap();
    let opened = Note::parse(&signed).unwrap();
    assert_eq!(opened.text(), text);
    assert_eq!(opened.verify(&[&peter]).unwrap().len(), 1);

    // Adding EnochRoot's signature gives Go's two-signature note.
    let keys = json("note/note_test_vectors.json");
    let enoch_skey = keys["keys"]["EnochRoot"]["skey"].as_str().unwrap();
    let enoch = VerifierKey::parse(keys["keys"]["EnochRoot"]["vkey"].as_str().unwrap()).unwrap();
    note.sign(&SignerKey::parse(enoch_skey).unwrap(), 0)
        .unwrap();
    let both = std::fs::read(testdata("note/peterneumann_enochroot_signed.note")).unwrap();
    assert_eq!(note.to_bytes(), both);
    assert_eq!(
        Note::parse(&both)
            .unwrap()
            .verify(&[&peter, &enoch])
            .unwrap()
            .len(),
        2
    );
}

/// Go's TestOpen cases. One deliberate difference, stricter than Go: a note
/// repeating one key's (name, ID) is refused at parse time (Go keeps the
/// first), as the foundation issue asks of duplicates.
#[test]
fn go_note_open_cases() {
    let v = json("note/note_test_vectors.json");
    let keys: std::collections::HashMap<String, VerifierKey> = v["keys"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, k)| {
            (
                name.clone(),
                VerifierKey::parse(k["vkey"].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    let mut stricter = Vec::new();
    let mut checked = 0;
    for case in v["cases"].as_array().unwrap() {
        let desc = case["desc"].as_str().unwrap();
        let msg = BASE64.decode(case["msg_b64"].as_str().unwrap()).unwrap();
        let verifiers: Vec<&VerifierKey> = case["verifiers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| &keys[n.as_str().unwrap()])
            .collect();
        let got = Note::parse(&msg).and_then(|n| n.verify(&verifiers).map(|_| n));
        match (case["want"].as_str().unwrap(), &got) {
            ("ok", Ok(note)) => {
                if let Some(text) = case["text"].as_str() {
                    assert_eq!(note.text(), text, "{desc}");
                }
            }
            ("error", Err(_)) => {}
            ("ok", Err(NoteError::DuplicateSignature { .. })) => stricter.push(desc.to_owned()),
            (want, got) => panic!("{desc}: want {want}, got {got:?}"),
        }
        checked += 1;
    }
    assert!(checked >= 16);
    assert_eq!(stricter.len(), 1, "{stricter:?}");
}

/// Go's bad verifier keys, and its mangling rule: every proper substring and
/// every one-byte change of a good key must be refused.
#[test]
fn go_bad_and_mangled_keys() {
    let v = json("note/note_test_vectors.json");
    for bad in v["bad_vkeys"].as_array().unwrap() {
        assert!(
            VerifierKey::parse(bad["vkey"].as_str().unwrap()).is_err(),
            "{bad}"
        );
    }
    for good in [PETER_VKEY, PETER_SKEY] {
        let parse = |s: &str| {
            if good == PETER_SKEY {
                SignerKey::parse(s).is_ok()
            } else {
                VerifierKey::parse(s).is_ok()
            }
        };
        assert!(parse(good));
        let b = good.as_bytes();
        for i in 0..b.len() {
            for j in i + 1..=b.len() {
                if (i, j) != (0, b.len()) {
                    assert!(!parse(&good[i..j]), "substring {i}..{j} accepted");
                }
            }
            let mut m = b.to_vec();
            m[i] = m[i].wrapping_add(1);
            if let Ok(s) = std::str::from_utf8(&m) {
                assert!(!parse(s), "byte {i} incremented accepted: {s}");
            }
        }
    }
}

/// transparency-dev/formats: the sum.golang.org checkpoint opens; the
/// four-signature copy opens with all four keys.
#[test]
fn formats_checkpoint_notes() {
    let v = json("cosignature/formats_test_vectors.json");
    let key = |n: &str| VerifierKey::parse(v["ed25519_keys"][n]["vkey"].as_str().unwrap()).unwrap();
    let sum = key("sum.golang.org");
    let bytes = std::fs::read(testdata("cosignature/sumdb_checkpoint.note")).unwrap();
    let note = Note::parse(&bytes).unwrap();
    note.verify(&[&sum]).unwrap();
    let cp = Checkpoint::parse_text(note.text()).unwrap();
    assert_eq!(cp.origin, "go.sum database tree");
    assert_eq!(cp.size, TreeSize(6476701));
    assert_eq!(
        cp.root.to_base64(),
        "mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk="
    );
    // The key's name is not the origin, so it does not open as that log's checkpoint.
    assert!(SignedCheckpoint::open(&bytes, &sum).is_err());

    let four =
        Note::parse(&std::fs::read(testdata("cosignature/sumdb_checkpoint_4sigs.note")).unwrap())
            .unwrap();
    let keys = [
        key("sum.golang.org"),
        key("monkeys"),
        key("bananas"),
        key("witness"),
    ];
    let refs: Vec<&VerifierKey> = keys.iter().collect();
    assert_eq!(four.verify(&refs).unwrap().len(), 4);
}

/// cosignature/v1: the derived vectors (Wit1..3 keys from transparency-dev
/// formats, message from the C2SP spec example) are reproduced exactly and
/// verify; the formats timestamp vector decodes.
#[test]
fn cosignature_v1_vectors() {
    let formats = json("cosignature/formats_test_vectors.json");
    let derived = json("cosignature/derived_cosignature_v1.json");
    let vectors = derived["vectors"].as_array().unwrap();
    assert!(!vectors.is_empty());
    for vec in vectors {
        let name = vec["cosigner"].as_str().unwrap();
        let skey = formats["ed25519_keys"][name]["skey"].as_str().unwrap();
        let signer = SignerKey::parse(skey)
            .unwrap()
            .with_key_type(KeyType::CosignatureV1);
        let vkey = VerifierKey::parse(vec["cosig_vkey"].as_str().unwrap()).unwrap();
        assert_eq!(signer.verifier(), &vkey);
        let body = vec["checkpoint_body"].as_str().unwrap();
        let ts = vec["timestamp"].as_u64().unwrap();
        let sig = signer.sign_note_text(body, ts);
        assert_eq!(sig.to_line(), vec["signature_line"].as_str().unwrap());
        let mut note = Note::new(body).unwrap();
        note.add_signature(sig).unwrap();
        let cosigs = verify_cosignatures(&note, &[&vkey]).unwrap();
        assert_eq!(cosigs.len(), 1);
        assert_eq!(cosigs[0].timestamp, ts);
        // The plain Ed25519 key of the same name and secret has another key
        // ID, so it does not even recognise the cosignature as its own.
        let plain = SignerKey::parse(skey).unwrap();
        assert_eq!(
            note.verify(&[plain.verifier()]),
            Err(NoteError::NoKnownSignature)
        );
    }
    let ts = &formats["cosignature_v1"]["timestamp_extraction"];
    let good = BASE64.decode(ts[0]["sig_b64"].as_str().unwrap()).unwrap();
    assert_eq!(good.len(), 76);
    assert_eq!(
        u64::from_be_bytes(good[4..12].try_into().unwrap()),
        ts[0]["want_unix"].as_u64().unwrap()
    );
}

/// The C2SP examples: the signed-note example verifies with its published
/// key; the checkpoint and tlog-proof examples parse.
#[test]
fn c2sp_examples() {
    let key =
        VerifierKey::parse("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
            .unwrap();
    let note =
        Note::parse(&std::fs::read(testdata("c2sp/signed-note_example.note")).unwrap()).unwrap();
    note.verify(&[&key]).unwrap();

    let cp = Note::parse(&std::fs::read(testdata("c2sp/tlog-checkpoint_example.note")).unwrap())
        .unwrap();
    let cp = Checkpoint::parse_text(cp.text()).unwrap();
    assert_eq!(cp.origin, "example.com/behind-the-sofa");
    assert_eq!(cp.size, TreeSize(20852163));
    assert_eq!(
        cp.to_text().as_bytes(),
        &std::fs::read(testdata("c2sp/tlog-checkpoint_example.note")).unwrap()
            [..cp.to_text().len()]
    );

    // The tlog-proof example (its signatures are elided with "[...]", so only
    // the proof part is checked) parses and re-encodes byte for byte.
    let bytes = std::fs::read(testdata("c2sp/tlog-proof_example.tlog-proof")).unwrap();
    let proof = TlogProof::parse(&bytes).unwrap();
    assert_eq!(proof.index, LeafIndex(73894));
    assert_eq!(proof.proof.len(), 5);
    assert!(proof.extra.is_some());
    assert_eq!(proof.to_bytes(), bytes);
}

/// C2SP tlog-tiles paths: the spec's examples and its tile counts for trees
/// of 70,000 and 256 leaves.
#[test]
fn tile_paths() {
    let v = json("c2sp/tlog_tiles_paths.json");
    for e in v["index_encoding"].as_array().unwrap() {
        let n = e["N"].as_u64().unwrap();
        let tile = Tile {
            level: 0,
            index: n,
            width: 256,
        };
        assert_eq!(
            tile.path(),
            format!("tile/0/{}", e["encoded"].as_str().unwrap())
        );
        assert_eq!(
            TilePath::parse(&tile.path()).unwrap(),
            TilePath::Hashes(tile)
        );
    }
    for bad in v["invalid_paths_derived"].as_array().unwrap() {
        assert!(
            TilePath::parse(bad["path"].as_str().unwrap()).is_err(),
            "{bad}"
        );
    }
    let tiles = new_tiles(TreeSize(0), TreeSize(70000));
    let count = |level: u8, full: bool| {
        tiles
            .iter()
            .filter(|t| t.level == level && t.is_full() == full)
            .count()
    };
    assert_eq!(
        (
            count(0, true),
            count(0, false),
            count(1, true),
            count(1, false),
            count(2, false)
        ),
        (273, 1, 1, 1, 1)
    );
    let partial: Vec<String> = tiles
        .iter()
        .filter(|t| !t.is_full())
        .map(Tile::path)
        .collect();
    assert_eq!(
        partial,
        ["tile/0/273.p/112", "tile/1/001.p/17", "tile/2/000.p/1"]
    );
    let tiles: Vec<String> = new_tiles(TreeSize(0), TreeSize(256))
        .iter()
        .map(Tile::path)
        .collect();
    assert_eq!(tiles, ["tile/0/000", "tile/1/000.p/1"]);

    // Go's sumdb/tlog paths carry a height; those of height 8 are C2SP paths
    // once the height is dropped.
    let go = json("note/tlog_test_vectors.json");
    for p in go["tile_paths"].as_array().unwrap() {
        let path = p["path"].as_str().unwrap();
        let Some(rest) = path.strip_prefix("tile/8/") else {
            continue;
        };
        let parsed = TilePath::parse(&format!("tile/{rest}"));
        assert_eq!(parsed.is_ok(), p["valid"].as_bool().unwrap(), "{path}");
    }
}
