//! Interoperability with Go's reference packages golang.org/x/mod/sumdb/note
//! and golang.org/x/mod/sumdb/tlog, as Debian ships them (packages
//! `golang-go` and `golang-golang-x-mod-dev`, sources under
//! /usr/share/gocode/src). The Go side is `tests/go/interop.go`, built once
//! per test run in GOPATH mode (no module proxy needed) into
//! `$CARGO_TARGET_TMPDIR/go-interop`.
//!
//! Without a `go` binary (or without the x/mod sources) the tests print
//! "skipping: go not installed" and pass, unless `DAYLIGHT_REQUIRE_GO=1`,
//! when they fail. `DAYLIGHT_GOPATH` overrides the GOPATH (default
//! /usr/share/gocode).

// Test code: a panic is how a failed expectation is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, RandomState};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use daylight_core::cosignature::verify_cosignatures;
use daylight_core::proof::{verify_consistency, verify_inclusion};
use daylight_core::tile::{hash_from_tile, new_tiles, read_tile_data, Tile, TILE_WIDTH};
use daylight_core::tree::{consistency_proof, inclusion_proof, tree_hash, MemoryTree};
use daylight_core::{
    leaf_hash, Checkpoint, Hash, KeyName, KeyType, LeafIndex, Note, SignedCheckpoint, SignerKey,
    TreeSize, VerifierKey,
};
use serde_json::{json, Value};

const LEAVES: u64 = 1000;

#[path = "go/harness.rs"]
mod harness;
use harness::{interop, run_go};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A fresh 32-byte seed (the core takes randomness from its callers).
fn fresh_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    for (i, chunk) in seed.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&RandomState::new().hash_one(i).to_le_bytes());
    }
    seed
}

/// A small deterministic generator for choosing samples.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn entry(i: u64) -> Vec<u8> {
    format!("daylight interop entry {i}\n").into_bytes()
}

fn build_tree(n: u64) -> MemoryTree {
    let mut t = MemoryTree::new();
    for i in 0..n {
        t.append(&entry(i));
    }
    t
}

fn root(t: &MemoryTree, n: u64) -> Hash {
    tree_hash(TreeSize(n), t).expect("the memory tree has every size up to its own")
}

fn b64s(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(Hash::to_base64).collect()
}

fn flip(h: &mut Hash, bit: u64) {
    h.0[(bit / 8 % 32) as usize] ^= 1 << (bit % 8);
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("a JSON array")
        .iter()
        .map(|s| s.as_str().expect("of strings").to_owned())
        .collect()
}

/// Go's results for a list of jobs, checked to be in the same order.
fn results<'a>(result: &'a Value, key: &str, labels: &[String]) -> &'a [Value] {
    let list = result[key]
        .as_array()
        .expect("Go answers every section of the job");
    assert_eq!(list.len(), labels.len(), "{key}: one result per job item");
    for (r, l) in list.iter().zip(labels) {
        assert_eq!(r["label"].as_str(), Some(l.as_str()));
    }
    list
}

// ---------------------------------------------------------------------------
// Signed notes and keys
// ---------------------------------------------------------------------------

#[test]
fn go_opens_our_notes_and_we_open_gos() {
    let Some(bin) = interop() else { return };

    let origin = "interop.daylight.example/log";
    let log = SignerKey::from_seed(
        KeyName::new(origin).unwrap(),
        KeyType::Ed25519,
        fresh_seed(),
    );
    let other = SignerKey::from_seed(
        KeyName::new("interop.daylight.example/other").unwrap(),
        KeyType::Ed25519,
        fresh_seed(),
    );
    let impostor = SignerKey::from_seed(
        KeyName::new(origin).unwrap(),
        KeyType::Ed25519,
        fresh_seed(),
    );
    let witness = SignerKey::from_seed(
        KeyName::new("interop.daylight.example/witness").unwrap(),
        KeyType::CosignatureV1,
        fresh_seed(),
    );
    let (log_vkey, other_vkey, impostor_vkey, witness_vkey) = (
        log.verifier().to_string(),
        other.verifier().to_string(),
        impostor.verifier().to_string(),
        witness.verifier().to_string(),
    );
    eprintln!("log key {log_vkey}");

    let tree = build_tree(LEAVES);
    let checkpoint = Checkpoint::new(origin, tree.size(), tree.root());
    let note = checkpoint.sign(&log).unwrap();
    let text = checkpoint.to_text();
    assert_eq!(note.text(), text);
    let msg = String::from_utf8(note.to_bytes()).unwrap();

    let mut two_sigs = note.clone();
    two_sigs.sign(&other, 0).unwrap();
    let mut cosigned = note.clone();
    cosigned.sign(&witness, 1_700_000_000).unwrap();
    let tampered = msg.replacen(&format!("\n{LEAVES}\n"), &format!("\n{}\n", LEAVES + 1), 1);
    assert_ne!(tampered, msg);
    let mut bad_sig = msg.clone().into_bytes();
    // The last base64 character before the final newline of the signature:
    // change it so the signature bytes change (not only padding bits).
    let pos = bad_sig.len() - 4;
    bad_sig[pos] = if bad_sig[pos] == b'A' { b'B' } else { b'A' };
    let bad_sig = String::from_utf8(bad_sig).unwrap();
    let plain_text = "a note that is not a checkpoint\n\nwith a blank line inside\n";
    let mut plain = Note::new(plain_text).unwrap();
    plain.sign(&log, 0).unwrap();

    let opens = [
        ("checkpoint", msg.clone(), vec![log_vkey.clone()], true),
        (
            "two signatures, both known",
            String::from_utf8(two_sigs.to_bytes()).unwrap(),
            vec![log_vkey.clone(), other_vkey.clone()],
            true,
        ),
        (
            "two signatures, one known",
            String::from_utf8(two_sigs.to_bytes()).unwrap(),
            vec![other_vkey.clone()],
            true,
        ),
        (
            "cosigned checkpoint",
            String::from_utf8(cosigned.to_bytes()).unwrap(),
            vec![log_vkey.clone()],
            true,
        ),
        (
            "text with a blank line",
            String::from_utf8(plain.to_bytes()).unwrap(),
            vec![log_vkey.clone()],
            true,
        ),
        (
            "tampered text",
            tampered.clone(),
            vec![log_vkey.clone()],
            false,
        ),
        (
            "tampered signature",
            bad_sig.clone(),
            vec![log_vkey.clone()],
            false,
        ),
        (
            "same name, other key",
            msg.clone(),
            vec![impostor_vkey.clone()],
            false,
        ),
    ];
    let texts: BTreeMap<&str, String> = [
        ("checkpoint", text.clone()),
        ("two signatures, both known", text.clone()),
        ("two signatures, one known", text.clone()),
        ("cosigned checkpoint", text.clone()),
        ("text with a blank line", plain_text.to_owned()),
    ]
    .into_iter()
    .collect();

    // Go signs with our secret key: Ed25519 is deterministic, so the note
    // must come out byte for byte as ours.
    let job = json!({
        "open": opens.iter().map(|(label, msg, vkeys, ok)| json!({
            "label": label, "msg": msg, "vkeys": vkeys, "expect_ok": ok,
            "want_text": texts.get(label),
        })).collect::<Vec<_>>(),
        "verifier_keys": [&log_vkey, &other_vkey, &witness_vkey],
        "sign": [
            {"label": "our log key", "skey": log.to_secret_text(), "text": text},
            {"label": "our witness key", "skey": witness.to_secret_text(), "text": text},
        ],
        "generate": [
            {"name": "go.example/generated", "text": "hello from Go\n"},
            {"name": "go.example/log", "text": "go.example/log\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"},
        ],
    });
    let go = run_go(&bin, "notes", &job);

    // Go's verdicts, and that ours are the same.
    let labels: Vec<String> = opens.iter().map(|o| o.0.to_owned()).collect();
    for ((label, msg, vkeys, want_ok), r) in opens.iter().zip(results(&go, "open", &labels)) {
        assert_eq!(r["ok"].as_bool().unwrap(), *want_ok, "Go on {label}: {r}");
        let keys: Vec<VerifierKey> = vkeys
            .iter()
            .map(|k| VerifierKey::parse(k).unwrap())
            .collect();
        let key_refs: Vec<&VerifierKey> = keys.iter().collect();
        let ours = Note::parse(msg.as_bytes()).and_then(|n| n.verify(&key_refs));
        assert_eq!(ours.is_ok(), *want_ok, "Daylight on {label}: {ours:?}");
        if *want_ok {
            assert_eq!(r["text"].as_str().unwrap(), texts[label], "{label}");
        }
    }
    let open = go["open"].as_array().unwrap();
    let log_id = log.verifier().id().to_string();
    let other_id = other.verifier().id().to_string();
    let witness_id = witness.verifier().id().to_string();
    assert_eq!(open[0]["sigs"], json!([{"name": origin, "hash": log_id}]));
    assert_eq!(open[0]["unverified_sigs"], json!([]));
    assert_eq!(open[1]["sigs"].as_array().unwrap().len(), 2);
    assert_eq!(
        open[2]["unverified_sigs"],
        json!([{"name": origin, "hash": log_id}])
    );
    assert_eq!(
        open[2]["sigs"],
        json!([{"name": other.name().as_str(), "hash": other_id}])
    );
    assert_eq!(
        open[3]["unverified_sigs"],
        json!([{"name": witness.name().as_str(), "hash": witness_id}])
    );
    assert_eq!(open[5]["error_kind"], "invalid_signature", "{}", open[5]);
    assert_eq!(open[6]["error_kind"], "invalid_signature", "{}", open[6]);
    assert_eq!(open[7]["error_kind"], "unverified", "{}", open[7]);
    // And ours still checks the cosignature Go could only carry along.
    let cosigned_back = Note::parse(&cosigned.to_bytes()).unwrap();
    assert_eq!(
        verify_cosignatures(&cosigned_back, &[witness.verifier()]).unwrap()[0].timestamp,
        1_700_000_000
    );

    // Go parses our verifier keys to the same name and key ID. It does not
    // know cosignature/v1 (type 0x04) keys at all.
    let vks = go["verifier_keys"].as_array().unwrap();
    assert_eq!(vks[0]["ok"], true, "{}", vks[0]);
    assert_eq!(vks[0]["name"], origin);
    assert_eq!(vks[0]["hash"], log_id);
    assert_eq!(vks[1]["hash"], other_id);
    assert_eq!(vks[2]["ok"], false, "{}", vks[2]);
    assert_eq!(vks[2]["error"], "unknown verifier algorithm");

    // Go signs with our signer key: identical bytes.
    let signed = go["sign"].as_array().unwrap();
    assert_eq!(signed[0]["ok"], true, "{}", signed[0]);
    assert_eq!(signed[0]["hash"], log_id);
    assert_eq!(signed[0]["msg"].as_str().unwrap(), msg);
    assert_eq!(
        signed[1]["ok"], false,
        "Go has no type 0x04 signer: {}",
        signed[1]
    );

    // Keys Go generated parse in ours and print back identically; notes Go
    // signed with them verify, and ours signs them identically.
    for g in go["generate"].as_array().unwrap() {
        let (skey, vkey, gmsg) = (
            g["skey"].as_str().unwrap(),
            g["vkey"].as_str().unwrap(),
            g["msg"].as_str().unwrap(),
        );
        let signer = SignerKey::parse(skey).unwrap();
        let verifier = VerifierKey::parse(vkey).unwrap();
        assert_eq!(signer.to_secret_text(), skey);
        assert_eq!(verifier.to_string(), vkey);
        assert_eq!(signer.verifier(), &verifier);
        assert_eq!(signer.name().as_str(), g["name"].as_str().unwrap());
        let parsed = Note::parse(gmsg.as_bytes()).unwrap();
        let verified = parsed.verify(&[&verifier]).unwrap();
        assert_eq!(verified.len(), 1);
        let mut ours = Note::new(parsed.text()).unwrap();
        ours.sign(&signer, 0).unwrap();
        assert_eq!(String::from_utf8(ours.to_bytes()).unwrap(), gmsg);
        // Flip one signature bit: ours refuses as Go would.
        let mut sig = parsed.signatures()[0].clone();
        sig.signature[0] ^= 1;
        let mut forged = Note::new(parsed.text()).unwrap();
        forged.add_signature(sig).unwrap();
        assert!(forged.verify(&[&verifier]).is_err());
    }
    let gen_log = &go["generate"][1];
    let cp = SignedCheckpoint::open(
        gen_log["msg"].as_str().unwrap().as_bytes(),
        &VerifierKey::parse(gen_log["vkey"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(cp.checkpoint.origin, "go.example/log");
    assert_eq!(cp.checkpoint.size, TreeSize(5));
}

// ---------------------------------------------------------------------------
// Tree hashes, inclusion and consistency proofs
// ---------------------------------------------------------------------------

const SIZES: [u64; 30] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257,
    511, 512, 513, 767, 999, 1000,
];

struct ProofCase {
    label: String,
    json: Value,
    ok: bool,
    ours: bool,
}

#[test]
fn go_checks_our_proofs_and_tree_hashes() {
    let Some(bin) = interop() else { return };
    let tree = build_tree(LEAVES);
    let leaves: Vec<Hash> = (0..LEAVES).map(|i| leaf_hash(&entry(i))).collect();
    let roots: Vec<Hash> = (0..=LEAVES).map(|n| root(&tree, n)).collect();
    let mut rng = Rng(0x6461_796c_6967_6874);

    // Inclusion: every pair in small trees, a sample in larger ones, and
    // for each size a few tampered proofs Go must refuse.
    let mut inclusion = Vec::new();
    let mut add_incl =
        |label: String, index: u64, size: u64, leaf: Hash, proof: &[Hash], root: Hash, ok: bool| {
            let ours =
                verify_inclusion(leaf, LeafIndex(index), TreeSize(size), proof, root).is_ok();
            inclusion.push(ProofCase {
                json: json!({
                    "label": label, "index": index, "size": size, "root": root.to_base64(),
                    "leaf": leaf.to_base64(), "proof": b64s(proof), "expect_ok": ok,
                }),
                label,
                ok,
                ours,
            });
        };
    let mut pairs = BTreeSet::new();
    for size in 1..=17u64 {
        for index in 0..size {
            pairs.insert((index, size));
        }
    }
    for &size in &SIZES {
        for index in [0, size / 2, size - 1, rng.below(size), rng.below(size)] {
            pairs.insert((index, size));
        }
    }
    for &(index, size) in &pairs {
        let proof = inclusion_proof(LeafIndex(index), TreeSize(size), &tree).unwrap();
        let (leaf, r) = (leaves[index as usize], roots[size as usize]);
        add_incl(
            format!("incl {index}@{size}"),
            index,
            size,
            leaf,
            &proof,
            r,
            true,
        );
    }
    for &size in &SIZES {
        let index = rng.below(size);
        let proof = inclusion_proof(LeafIndex(index), TreeSize(size), &tree).unwrap();
        let (leaf, r) = (leaves[index as usize], roots[size as usize]);
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let which = rng.below(bad.len() as u64) as usize;
            flip(&mut bad[which], rng.next());
            add_incl(
                format!("incl {index}@{size} flipped bit in proof[{which}]"),
                index,
                size,
                leaf,
                &bad,
                r,
                false,
            );
            let mut short = proof.clone();
            short.pop();
            add_incl(
                format!("incl {index}@{size} short proof"),
                index,
                size,
                leaf,
                &short,
                r,
                false,
            );
            let other = (index + 1) % size;
            add_incl(
                format!("incl {index}@{size} claimed at {other}"),
                other,
                size,
                leaf,
                &proof,
                r,
                false,
            );
        }
        let mut bad_leaf = leaf;
        flip(&mut bad_leaf, rng.next());
        add_incl(
            format!("incl {index}@{size} flipped leaf"),
            index,
            size,
            bad_leaf,
            &proof,
            r,
            false,
        );
        let mut bad_root = r;
        flip(&mut bad_root, rng.next());
        add_incl(
            format!("incl {index}@{size} flipped root"),
            index,
            size,
            leaf,
            &proof,
            bad_root,
            false,
        );
    }

    // Consistency: likewise.
    let mut consistency = Vec::new();
    let mut add_cons =
        |label: String, old: u64, new: u64, ro: Hash, rn: Hash, proof: &[Hash], ok: bool| {
            let ours = verify_consistency(TreeSize(old), TreeSize(new), ro, rn, proof).is_ok();
            consistency.push(ProofCase {
                json: json!({
                    "label": label, "old": old, "new": new, "old_root": ro.to_base64(),
                    "new_root": rn.to_base64(), "proof": b64s(proof), "expect_ok": ok,
                }),
                label,
                ok,
                ours,
            });
        };
    let mut pairs = BTreeSet::new();
    for new in 1..=17u64 {
        for old in 1..=new {
            pairs.insert((old, new));
        }
    }
    for (i, &a) in SIZES.iter().enumerate() {
        for &b in &SIZES[i..] {
            pairs.insert((a, b));
        }
    }
    for _ in 0..60 {
        let (a, b) = (1 + rng.below(LEAVES), 1 + rng.below(LEAVES));
        pairs.insert((a.min(b), a.max(b)));
    }
    for &(old, new) in &pairs {
        let proof = consistency_proof(TreeSize(old), TreeSize(new), &tree).unwrap();
        let (ro, rn) = (roots[old as usize], roots[new as usize]);
        add_cons(format!("cons {old}->{new}"), old, new, ro, rn, &proof, true);
    }
    for _ in 0..60 {
        let (a, b) = (1 + rng.below(LEAVES), 1 + rng.below(LEAVES));
        let (old, new) = (a.min(b), a.max(b));
        if old == new {
            continue;
        }
        let proof = consistency_proof(TreeSize(old), TreeSize(new), &tree).unwrap();
        let (ro, rn) = (roots[old as usize], roots[new as usize]);
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let which = rng.below(bad.len() as u64) as usize;
            flip(&mut bad[which], rng.next());
            add_cons(
                format!("cons {old}->{new} flipped bit in proof[{which}]"),
                old,
                new,
                ro,
                rn,
                &bad,
                false,
            );
            let mut long = proof.clone();
            long.push(proof[0]);
            add_cons(
                format!("cons {old}->{new} extra hash"),
                old,
                new,
                ro,
                rn,
                &long,
                false,
            );
        }
        let mut bad_old = ro;
        flip(&mut bad_old, rng.next());
        add_cons(
            format!("cons {old}->{new} flipped old root"),
            old,
            new,
            bad_old,
            rn,
            &proof,
            false,
        );
        let mut bad_new = rn;
        flip(&mut bad_new, rng.next());
        add_cons(
            format!("cons {old}->{new} flipped new root"),
            old,
            new,
            ro,
            bad_new,
            &proof,
            false,
        );
        if new < LEAVES {
            add_cons(
                format!("cons {old}->{new} claimed to {}", new + 1),
                old,
                new + 1,
                ro,
                roots[new as usize + 1],
                &proof,
                false,
            );
        }
    }
    // Equal sizes: the empty proof, and only for equal roots.
    add_cons(
        "cons 500->500 different roots".into(),
        500,
        500,
        roots[500],
        roots[501],
        &[],
        false,
    );

    let job = json!({
        "leaves": b64s(&leaves),
        "tree_sizes": (0..=LEAVES).collect::<Vec<_>>(),
        "inclusion": inclusion.iter().map(|c| &c.json).collect::<Vec<_>>(),
        "consistency": consistency.iter().map(|c| &c.json).collect::<Vec<_>>(),
    });
    let go = run_go(&bin, "proofs", &job);

    // Go builds the same stored-hash layout from the leaf hashes...
    assert_eq!(strings(&go["stored_hashes"]), b64s(tree.stored_hashes()));
    // ...and the same root at every size but 0.
    let go_roots = go["tree_hashes"].as_array().unwrap();
    assert_eq!(go_roots.len(), LEAVES as usize + 1);
    for (n, r) in go_roots.iter().enumerate() {
        assert_eq!(r["size"].as_u64().unwrap(), n as u64);
        let h = r["hash"].as_str().unwrap();
        if n == 0 {
            // Known difference, not a bug on either side: Go's TreeHash(0)
            // is all zeros, RFC 6962/9162 (and ours) say SHA-256("").
            assert_eq!(h, Hash::default().to_base64());
            assert_eq!(roots[0], Hash::empty_tree());
        } else {
            assert_eq!(h, roots[n].to_base64(), "TreeHash({n})");
        }
    }

    let mut refused = 0;
    for (key, cases) in [("inclusion", &inclusion), ("consistency", &consistency)] {
        let labels: Vec<String> = cases.iter().map(|c| c.label.clone()).collect();
        for (case, r) in cases.iter().zip(results(&go, key, &labels)) {
            assert_eq!(
                r["ok"].as_bool().unwrap(),
                case.ok,
                "Go CheckRecord/CheckTree on {}: {r}",
                case.label
            );
            assert_eq!(case.ours, case.ok, "Daylight on {}", case.label);
            if !case.ok {
                refused += 1;
                continue;
            }
            // Go's own proof for the same sizes is exactly ours.
            assert_eq!(
                r["go_proof"], case.json["proof"],
                "Go's ProveRecord/ProveTree for {}",
                case.label
            );
        }
    }
    eprintln!(
        "go interop: {} inclusion and {} consistency checks, {refused} tampered proofs refused by Go",
        inclusion.len(),
        consistency.len()
    );
    assert!(refused > 200);
}

// ---------------------------------------------------------------------------
// Tiles
// ---------------------------------------------------------------------------

/// Go's tile paths carry the height (`tile/8/L/...`), C2SP's do not.
fn c2sp_path(go_path: &str) -> String {
    go_path
        .strip_prefix("tile/8/")
        .map(|rest| format!("tile/{rest}"))
        .unwrap_or_else(|| panic!("not a height-8 Go tile path: {go_path}"))
}

fn old_width(tile: &Tile, old: u64) -> u64 {
    let count = old.checked_shr(8 * u32::from(tile.level)).unwrap_or(0);
    count
        .saturating_sub(tile.index * TILE_WIDTH)
        .min(TILE_WIDTH)
}

#[test]
fn go_reads_our_tiles() {
    let Some(bin) = interop() else { return };
    let tree = build_tree(LEAVES);
    let leaves: Vec<Hash> = (0..LEAVES).map(|i| leaf_hash(&entry(i))).collect();

    // Every tile of the 1000-leaf tree, at each intermediate size too, so
    // partial tiles of many widths are covered.
    let mut tiles = BTreeSet::new();
    let mut old = 0;
    for size in [1, 2, 3, 100, 255, 256, 257, 511, 512, 700, 768, 999, 1000] {
        tiles.extend(new_tiles(TreeSize(old), TreeSize(size)));
        old = size;
    }
    let tiles: Vec<Tile> = tiles.into_iter().collect();
    let data: Vec<Vec<u8>> = tiles
        .iter()
        .map(|t| read_tile_data(*t, &tree).unwrap())
        .collect();

    let pairs: Vec<(u64, u64)> = vec![
        (0, 1),
        (0, 255),
        (0, 256),
        (0, 257),
        (1, 2),
        (255, 256),
        (256, 257),
        (300, 301),
        (0, 1000),
        (1000, 1000),
        (500, 70_000),
        (65_535, 65_536),
        (65_536, 65_537),
        (70_000, 140_000),
        (16_777_215, 16_777_217),
    ];
    let job = json!({
        "leaves": b64s(&leaves),
        "tiles": tiles.iter().zip(&data).map(|(t, d)| json!({
            "level": t.level, "index": t.index, "width": t.width, "data": BASE64.encode(d),
        })).collect::<Vec<_>>(),
        "new_tiles": pairs,
    });
    let go = run_go(&bin, "tiles", &job);

    let go_tiles = go["tiles"].as_array().unwrap();
    assert_eq!(go_tiles.len(), tiles.len());
    let mut checked = 0;
    for ((tile, d), r) in tiles.iter().zip(&data).zip(go_tiles) {
        assert_eq!(c2sp_path(r["path"].as_str().unwrap()), tile.path());
        // Go's ReadTileData over its own tree gives our tile bytes.
        assert_eq!(r["go_data"].as_str().unwrap(), BASE64.encode(d), "{tile}");
        // Go's HashFromTile gives the stored hash, as does ours.
        let hashes = r["hashes"].as_array().unwrap();
        assert!(hashes.len() >= usize::from(tile.width), "{tile}");
        for h in hashes {
            let index = h["index"].as_u64().unwrap();
            let ours = hash_from_tile(*tile, d, index).unwrap();
            assert_eq!(
                h["hash"].as_str().unwrap(),
                ours.to_base64(),
                "{tile} hash {index}"
            );
            assert_eq!(
                ours,
                tree.stored_hashes()[index as usize],
                "{tile} hash {index}"
            );
            checked += 1;
        }
    }

    // Go's NewTiles lists every partial width from the old one to the new
    // one (including the unchanged old tile); ours lists, for each tile
    // that changed, only its final width. Same tiles, same final widths.
    for (r, &(old, new)) in go["new_tiles"].as_array().unwrap().iter().zip(&pairs) {
        let mut widest: BTreeMap<String, (u16, String)> = BTreeMap::new();
        for p in strings(&r["paths"]) {
            let path = c2sp_path(&p);
            let (key, width) = match path.split_once(".p/") {
                Some((k, w)) => (k.to_owned(), w.parse::<u16>().unwrap()),
                None => (path.clone(), TILE_WIDTH as u16),
            };
            let e = widest.entry(key).or_insert((0, String::new()));
            if width > e.0 {
                *e = (width, path);
            }
        }
        let ours: BTreeSet<String> = new_tiles(TreeSize(old), TreeSize(new))
            .iter()
            .map(Tile::path)
            .collect();
        let go_changed: BTreeSet<String> = widest
            .values()
            .filter(|(w, path)| {
                let t = match daylight_core::tile::TilePath::parse(path).unwrap() {
                    daylight_core::tile::TilePath::Hashes(t) => t,
                    other => panic!("{other:?}"),
                };
                u64::from(*w) != old_width(&t, old)
            })
            .map(|(_, p)| p.clone())
            .collect();
        assert_eq!(ours, go_changed, "NewTiles({old}, {new})");
    }
    eprintln!(
        "go interop: {} tiles, {checked} tile hashes agree with Go",
        tiles.len()
    );
}

// ---------------------------------------------------------------------------
// Edge cases: where Go's note package is laxer
// ---------------------------------------------------------------------------

/// Inputs on the edges of the signed-note format. Daylight must never accept
/// a note Go refuses; where Go accepts what Daylight refuses, the difference
/// is printed ("Go laxer").
#[test]
fn daylight_is_never_laxer_than_go_on_notes() {
    let Some(bin) = interop() else { return };
    let name = "edge.daylight.example";
    let key = SignerKey::from_seed(KeyName::new(name).unwrap(), KeyType::Ed25519, fresh_seed());
    let vkey = key.verifier().to_string();
    let sign = |text: &str| format!("{text}\n{}", key.sign_note_text(text, 0).to_line());
    let good = sign("edge\n");
    let sig_line = key.sign_note_text("edge\n", 0).to_line();
    let b64 = sig_line.trim_end().rsplit_once(' ').unwrap().1.to_owned();

    // The signature's base64 (4 + 64 = 68 bytes) has two spare bits before
    // its "=" padding: set one for the same bytes in non-canonical text.
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let last = b64.len() - 2;
    let pos = alphabet
        .iter()
        .position(|&c| c == b64.as_bytes()[last])
        .unwrap();
    let mut noncanonical = b64.clone();
    noncanonical.replace_range(last..=last, &char::from(alphabet[pos ^ 1]).to_string());
    assert_eq!(BASE64.decode(&b64).unwrap().len(), 68);

    // A second, invalid signature by the same key after the valid one.
    let mut garbage = key.sign_note_text("edge\n", 0);
    garbage.signature[10] ^= 1;

    // The key ID in upper case.
    let (vname, rest) = vkey.split_once('+').unwrap();
    let (id, data) = rest.split_once('+').unwrap();
    let upper_vkey = format!("{vname}+{}+{data}", id.to_uppercase());

    // Ed25519's identity point as the public key, and (R = identity, s = 0)
    // as the signature: cofactorless verification accepts it for any text.
    let identity = {
        let mut b = [0u8; 32];
        b[0] = 1;
        ed25519_dalek::VerifyingKey::from_bytes(&b).unwrap()
    };
    let weak = VerifierKey::from_parts(KeyName::new("weak").unwrap(), KeyType::Ed25519, identity);
    let weak_sig = daylight_core::note::NoteSignature {
        name: weak.name().clone(),
        id: weak.id(),
        signature: {
            let mut s = vec![0u8; 64];
            s[0] = 1;
            s
        },
    };

    // A key name with a C1 control character (U+0080, not a space), which
    // KeyName refuses, so its key text is built by hand.
    let c1_name = "edge\u{80}";
    let c1_key = {
        let mut data = vec![0x01];
        data.extend_from_slice(key.verifier().public_key().as_bytes());
        let mut h = <sha2::Sha256 as sha2::Digest>::new();
        sha2::Digest::update(&mut h, c1_name.as_bytes());
        sha2::Digest::update(&mut h, b"\n");
        sha2::Digest::update(&mut h, &data);
        let sum = sha2::Digest::finalize(h);
        (
            u32::from_be_bytes([sum[0], sum[1], sum[2], sum[3]]),
            BASE64.encode(&data),
        )
    };
    let c1_vkey = format!("{c1_name}+{:08x}+{}", c1_key.0, c1_key.1);
    let c1_msg = {
        let mut raw = c1_key.0.to_be_bytes().to_vec();
        raw.extend_from_slice(&key.sign_raw(b"edge\n"));
        format!("edge\n\n\u{2014} {c1_name} {}\n", BASE64.encode(raw))
    };

    let unknown_lines = |n: usize| -> String {
        (0..n)
            .map(|i| format!("\u{2014} other{i} AAAAAAAA\n"))
            .collect()
    };

    let probes: Vec<(&str, String, String)> = vec![
        ("baseline", good.clone(), vkey.clone()),
        ("DEL (0x7f) in the text", sign("edge\u{7f}\n"), vkey.clone()),
        (
            "C1 control U+0085 in the text",
            sign("edge\u{85}\n"),
            vkey.clone(),
        ),
        (
            "tab in the text",
            format!("edge\t\n\n{sig_line}"),
            vkey.clone(),
        ),
        (
            "CR in the text",
            format!("edge\r\n\n{sig_line}"),
            vkey.clone(),
        ),
        ("text is only a newline", sign("\n"), vkey.clone()),
        ("no final newline", good.trim_end().to_owned(), vkey.clone()),
        ("empty signature block", "edge\n\n".to_owned(), vkey.clone()),
        (
            "same signature line twice",
            format!("{good}{sig_line}"),
            vkey.clone(),
        ),
        (
            "valid then invalid signature by the same key",
            format!("{good}{}", garbage.to_line()),
            vkey.clone(),
        ),
        (
            "invalid then valid signature by the same key",
            format!("edge\n\n{}{sig_line}", garbage.to_line()),
            vkey.clone(),
        ),
        (
            "unknown signer's line twice",
            format!("{good}\u{2014} other AAAAAAAA\n\u{2014} other AAAAAAAA\n"),
            vkey.clone(),
        ),
        (
            "100 signature lines",
            format!("{good}{}", unknown_lines(99)),
            vkey.clone(),
        ),
        (
            "101 signature lines",
            format!("{good}{}", unknown_lines(100)),
            vkey.clone(),
        ),
        (
            "non-canonical base64 in the signature",
            good.replace(&b64, &noncanonical),
            vkey.clone(),
        ),
        (
            "uppercase key ID in the verifier key",
            good.clone(),
            upper_vkey,
        ),
        (
            "verifier key with a final newline",
            good.clone(),
            format!("{vkey}\n"),
        ),
        ("C1 control U+0080 in the key name", c1_msg, c1_vkey),
        (
            "small-order (identity) public key",
            format!("edge\n\n{}", weak_sig.to_line()),
            weak.to_string(),
        ),
    ];
    let job = json!({
        "open": probes.iter().map(|(label, msg, vkey)| json!({
            "label": label, "msg": msg, "vkeys": [vkey],
        })).collect::<Vec<_>>(),
    });
    let go = run_go(&bin, "note-edges", &job);
    let labels: Vec<String> = probes.iter().map(|p| p.0.to_owned()).collect();

    let mut laxer = Vec::new();
    for ((label, msg, vkey), r) in probes.iter().zip(results(&go, "open", &labels)) {
        let go_ok = r["ok"].as_bool().unwrap();
        let ours = VerifierKey::parse(vkey).and_then(|k| {
            let note = Note::parse(msg.as_bytes())?;
            note.verify(&[&k])?;
            Ok(note.text().to_owned())
        });
        let verdict = |ok: bool| if ok { "accepts" } else { "refuses" };
        eprintln!(
            "note edge {label:?}: Go {} ({}), Daylight {} ({})",
            verdict(go_ok),
            r["error"].as_str().unwrap_or("-"),
            verdict(ours.is_ok()),
            ours.as_ref()
                .err()
                .map_or("-".to_owned(), ToString::to_string),
        );
        assert!(
            go_ok || ours.is_err(),
            "Daylight accepts a note Go refuses: {label}: Go says {r}"
        );
        if let Ok(text) = &ours {
            assert_eq!(r["text"].as_str().unwrap(), text, "{label}");
        }
        if go_ok && ours.is_err() {
            laxer.push(*label);
        }
    }
    assert_eq!(probes[0].0, "baseline");
    assert!(!laxer.contains(&"baseline"));
    eprintln!("note edges where Go is laxer than Daylight: {laxer:?}");
}
