//! Randomised, structure-aware mutation of every parser of outside bytes:
//! valid seeds (a signed note, a cosigned checkpoint, a tlog-proof, tile
//! paths, entry bundles, a signed record, a gate policy, a witness request
//! body, keys, openings, drafts) mutated at the byte, token and line level,
//! and fed to each parser. Goal: no panic and no slow case (a hang) in any.
//!
//! A stable-toolchain coverage-guided engine is not available here (cargo
//! fuzz needs nightly and cargo-afl is not installed), hence this harness.
//! Fast by default (`DAYLIGHT_FUZZ_CASES`, default 10000 per parser). The
//! long run: `DAYLIGHT_FUZZ_CASES=1000000 cargo test --release -p daylight
//! --test fuzz -- --nocapture`. `DAYLIGHT_SEED=N` repeats a run. Inputs that
//! ever crashed live in `tests/fuzz_regressions/<parser>/` and are replayed
//! first.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod reliability;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use chrono::Utc;
use daylight_core::cosignature::verify_cosignatures;
use daylight_core::proof::verify_consistency;
use daylight_core::tile::{encode_entry_bundle, parse_entry_bundle, TilePath};
use daylight_core::tree::{consistency_proof, tree_hash};
use daylight_core::witness_protocol::{parse_cosignatures, parse_size_body, AddCheckpoint};
use daylight_core::{
    Checkpoint, LeafIndex, Note, SignedCheckpoint, SignerKey, TlogProof, TreeSize, VerifierKey,
};
use daylight_gate::testkit::{World, TARGET};
use daylight_gate::{decide, parse_opening, Policy};
use daylight_schemas::{Draft, SignedRecord};
use reliability::Rng;

/// The slowest a single case may take before it counts as a hang.
const SLOW: Duration = Duration::from_secs(2);
/// The largest mutated input.
const MAX_INPUT: usize = 96 * 1024;

fn cases() -> u64 {
    std::env::var("DAYLIGHT_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000)
}

/// Tokens a structure-aware mutation splices in.
const TOKENS: &[&[u8]] = &[
    b"\n",
    b"\n\n",
    b" ",
    b"\t",
    b"\r\n",
    b"\xe2\x80\x94 ",
    b"+",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"null",
    b"true",
    b"-",
    b"0",
    b"-0",
    b"1e999",
    b"18446744073709551615",
    b"18446744073709551616",
    b"99999999999999999999999999",
    b"0x10",
    b"=",
    b"==",
    b"AAAA",
    b"////",
    b"x",
    b".p/",
    b"/",
    b"..",
    b"%00",
    b"\x00",
    b"\xff",
    b"old ",
    b"old 0\n",
    b"log ",
    b"witness ",
    b"group ",
    b"quorum ",
    b"daylight-agency ",
    b"PRIVATE+KEY+",
    b"c2sp.org/tlog-proof@v1\n",
    b"index ",
    b"\"kind\":",
    b"\"v\":",
];

/// One mutation of `seed` (and maybe a splice from `other`).
fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        let at = rng.below(len as u64 + 1) as usize;
        match rng.below(12) {
            0 if len > 0 => v[at.min(len - 1)] ^= 1 << rng.below(8),
            1 if len > 0 => v[at.min(len - 1)] = rng.next() as u8,
            2 => v.insert(at, rng.next() as u8),
            3 if len > 0 => {
                let end = (at + 1 + rng.below(16) as usize).min(len);
                v.drain(at.min(len - 1)..end);
            }
            4 => {
                let t = TOKENS[rng.below(TOKENS.len() as u64) as usize];
                v.splice(at..at, t.iter().copied());
            }
            5 if len > 0 => {
                // Overwrite with a token.
                let t = TOKENS[rng.below(TOKENS.len() as u64) as usize];
                let end = (at + t.len()).min(len);
                v.splice(at.min(len)..end, t.iter().copied());
            }
            6 => v.truncate(at),
            7 if !other.is_empty() => {
                // Splice a chunk of another seed.
                let s = rng.below(other.len() as u64) as usize;
                let e = (s + 1 + rng.below(64) as usize).min(other.len());
                v.splice(at..at, other[s..e].iter().copied());
            }
            8 => {
                // Line-level: duplicate, drop or swap a line.
                let mut lines: Vec<Vec<u8>> =
                    v.split(|&b| b == b'\n').map(|l| l.to_vec()).collect();
                let n = lines.len() as u64;
                let i = rng.below(n) as usize;
                match rng.below(3) {
                    0 => {
                        let l = lines[i].clone();
                        lines.insert(i, l);
                    }
                    1 if n > 1 => {
                        lines.remove(i);
                    }
                    _ => {
                        let j = rng.below(n) as usize;
                        lines.swap(i, j);
                    }
                }
                v = lines.join(&b'\n');
            }
            9 if len > 0 => {
                // Repeat a chunk many times (size and nesting pressure).
                let s = at.min(len - 1);
                let e = (s + 1 + rng.below(8) as usize).min(len);
                let chunk = v[s..e].to_vec();
                let times = 1 + rng.below(4000) as usize;
                let rep: Vec<u8> = chunk
                    .iter()
                    .copied()
                    .cycle()
                    .take(chunk.len() * times)
                    .collect();
                v.splice(s..s, rep);
            }
            10 => {
                // Change a digit run into another number.
                if let Some(p) = v.iter().skip(at).position(|b| b.is_ascii_digit()) {
                    let s = at + p;
                    let e = s + v[s..].iter().take_while(|b| b.is_ascii_digit()).count();
                    let n = match rng.below(4) {
                        0 => "0".to_owned(),
                        1 => u64::MAX.to_string(),
                        2 => "9".repeat(1 + rng.below(60) as usize),
                        _ => rng.next().to_string(),
                    };
                    v.splice(s..e, n.into_bytes());
                }
            }
            _ => {
                let mut b = [0u8; 8];
                rng.fill(&mut b);
                v.splice(at..at, b[..1 + rng.below(8) as usize].iter().copied());
            }
        }
        v.truncate(MAX_INPUT);
    }
    v
}

/// Runs one input through a parser.
type Runner<'a> = Box<dyn Fn(&[u8]) + 'a>;

/// A parser under test: its name, its seeds, and the code that runs it.
struct Target<'a> {
    name: &'static str,
    seeds: Vec<Vec<u8>>,
    run: Runner<'a>,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn parsers_survive_mutated_input() {
    let n = cases();
    let mut rng = Rng::from_env("fuzz");
    let now = Utc::now();

    // A real world to draw valid seeds from.
    let mut w = World::new();
    let policy_text = w.policy_text(2, true);
    let policy = w.policy();
    let draft = World::request_draft(
        daylight_gate::testkit::PROVIDER,
        now - chrono::Duration::hours(1),
    );
    let b = w
        .bundle(
            &draft,
            now - chrono::Duration::hours(1),
            now.timestamp() as u64 - 10,
        )
        .unwrap();
    assert!(decide(&policy, &b.entry, &b.proof, Some((&b.opening, TARGET)), now).is_allow());
    let opening = b.opening.to_json().into_bytes();
    let proof = TlogProof::parse(&b.proof).unwrap();
    let cosigned = proof.checkpoint.clone();
    let log_vkey = w.log.verifier().clone();
    let wkeys: Vec<VerifierKey> = w.witnesses.iter().map(|k| k.verifier().clone()).collect();
    let size = w.tree.size();
    let root = tree_hash(size, &w.tree).unwrap();
    let old = TreeSize(size.get() / 2 + 1);
    let old_root = tree_hash(old, &w.tree).unwrap();
    let add = AddCheckpoint {
        old,
        proof: consistency_proof(old, size, &w.tree).unwrap(),
        checkpoint: cosigned.clone(),
    }
    .to_bytes();
    let checkpoint_text = Checkpoint::new("log.daylight.example", size, root).to_text();
    let signer_text = SignerKey::parse(&w.agency.to_secret_text())
        .unwrap()
        .to_secret_text();
    let bundle = encode_entry_bundle([b.entry.as_slice(), b"x", &[0u8; 300]]).unwrap();
    let draft_json = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schemas/examples/request.json"
    ))
    .unwrap();
    let cosig_lines: Vec<u8> = Note::parse(&cosigned)
        .unwrap()
        .signatures()
        .iter()
        .map(|s| format!("{}\n", s.to_line()))
        .collect::<String>()
        .into_bytes();

    let wk: Vec<&VerifierKey> = wkeys.iter().collect();
    let targets: Vec<Target> = vec![
        Target {
            name: "Note::parse + verify (log key)",
            seeds: vec![cosigned.clone()],
            run: Box::new(|d| {
                if let Ok(n) = Note::parse(d) {
                    let _ = n.verify(&[&log_vkey]);
                    let _ = n.to_bytes();
                }
            }),
        },
        Target {
            name: "Checkpoint::parse_text",
            seeds: vec![checkpoint_text.clone().into_bytes()],
            run: Box::new(|d| {
                if let Ok(s) = std::str::from_utf8(d) {
                    if let Ok(c) = Checkpoint::parse_text(s) {
                        let _ = c.to_text();
                    }
                }
            }),
        },
        Target {
            name: "SignedCheckpoint::open",
            seeds: vec![cosigned.clone()],
            run: Box::new(|d| {
                let _ = SignedCheckpoint::open(d, &log_vkey);
            }),
        },
        Target {
            name: "cosignature verify (verify_cosignatures)",
            seeds: vec![cosigned.clone()],
            run: Box::new(|d| {
                if let Ok(n) = Note::parse(d) {
                    let _ = verify_cosignatures(&n, &wk);
                }
            }),
        },
        Target {
            name: "TlogProof::parse + verify",
            seeds: vec![b.proof.clone()],
            run: Box::new(|d| {
                if let Ok(p) = TlogProof::parse(d) {
                    let _ = p.verify(&b.entry, policy.witness_policy());
                    let _ = p.to_bytes();
                }
            }),
        },
        Target {
            name: "TilePath::parse",
            seeds: vec![
                b"tile/1/x001/x234/067.p/7".to_vec(),
                b"tile/entries/x001/234".to_vec(),
                b"tile/0/000".to_vec(),
                b"tile/entries/123.p/45".to_vec(),
            ],
            run: Box::new(|d| {
                if let Ok(p) = TilePath::parse(&text(d)) {
                    match p {
                        TilePath::Hashes(t) => {
                            let _ = t.path();
                        }
                        TilePath::Entries(e) => {
                            let _ = e.path();
                        }
                    }
                }
            }),
        },
        Target {
            name: "parse_entry_bundle",
            seeds: vec![bundle.clone()],
            run: Box::new(|d| {
                let width = d.first().map(|&x| u16::from(x) + 1).unwrap_or(1);
                let _ = parse_entry_bundle(d.get(1..).unwrap_or_default(), width);
                let _ = parse_entry_bundle(d, 3);
            }),
        },
        Target {
            name: "SignedRecord::parse + verify",
            seeds: vec![b.entry.clone()],
            run: Box::new(|d| {
                if let Ok(r) = SignedRecord::parse(d) {
                    let _ = r.verify_signature(w.agency.verifier());
                    let _ = r.leaf_hash();
                }
            }),
        },
        Target {
            name: "gate Policy::parse",
            seeds: vec![policy_text.clone().into_bytes()],
            run: Box::new(|d| {
                if let Ok(p) = Policy::parse(&text(d)) {
                    let _ = Policy::parse(&p.to_text());
                }
            }),
        },
        Target {
            name: "gate decide (mutated proof)",
            seeds: vec![b.proof.clone()],
            run: Box::new(|d| {
                let _ = decide(&policy, &b.entry, d, Some((&b.opening, TARGET)), now);
            }),
        },
        Target {
            name: "gate decide (mutated entry)",
            seeds: vec![b.entry.clone()],
            run: Box::new(|d| {
                let _ = decide(&policy, d, &b.proof, Some((&b.opening, TARGET)), now);
            }),
        },
        Target {
            name: "gate parse_opening",
            seeds: vec![opening.clone()],
            run: Box::new(|d| {
                if let Ok(o) = parse_opening(d) {
                    let _ = decide(&policy, &b.entry, &b.proof, Some((&o, TARGET)), now);
                }
            }),
        },
        Target {
            name: "witness AddCheckpoint::parse + consistency",
            seeds: vec![add.clone()],
            run: Box::new(|d| {
                if let Ok(a) = AddCheckpoint::parse(d) {
                    if let Ok(c) = SignedCheckpoint::open(&a.checkpoint, &log_vkey) {
                        let _ = verify_consistency(
                            a.old,
                            c.checkpoint.size,
                            old_root,
                            c.checkpoint.root,
                            &a.proof,
                        );
                    }
                }
            }),
        },
        Target {
            name: "witness responses (parse_size_body, parse_cosignatures)",
            seeds: vec![b"12345\n".to_vec(), cosig_lines.clone()],
            run: Box::new(|d| {
                let _ = parse_size_body(d);
                let _ = parse_cosignatures(d);
            }),
        },
        Target {
            name: "VerifierKey::parse",
            seeds: wkeys
                .iter()
                .map(|k| k.to_string().into_bytes())
                .chain([log_vkey.to_string().into_bytes()])
                .collect(),
            run: Box::new(|d| {
                if let Ok(k) = VerifierKey::parse(&text(d)) {
                    let _ = k.verify("text\n", &[0u8; 64]);
                }
            }),
        },
        Target {
            name: "SignerKey::parse",
            seeds: vec![signer_text.clone().into_bytes()],
            run: Box::new(|d| {
                let _ = SignerKey::parse(&text(d));
            }),
        },
        Target {
            name: "schemas Draft::from_json",
            seeds: vec![draft_json.clone()],
            run: Box::new(|d| {
                let _ = Draft::from_json(&text(d));
            }),
        },
    ];

    // Every seed is valid for its parser's happy path: a check that the
    // seeds reach past the first error.
    let _ = LeafIndex(0);
    let all_seeds: Vec<Vec<u8>> = targets.iter().flat_map(|t| t.seeds.clone()).collect();

    // Replay inputs that crashed before.
    let regressions =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut replayed = 0;
    for t in &targets {
        let dir = regressions.join(slug(t.name));
        if let Ok(files) = std::fs::read_dir(&dir) {
            for f in files {
                let data = std::fs::read(f.unwrap().path()).unwrap();
                (t.run)(&data);
                replayed += 1;
            }
        }
    }

    // Quiet panics while fuzzing; each is caught, saved and reported.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut failures = Vec::new();
    let mut total = 0u64;
    let started = Instant::now();
    for t in &targets {
        let t0 = Instant::now();
        let mut slowest = Duration::ZERO;
        for i in 0..n {
            let seed = &t.seeds[(i % t.seeds.len() as u64) as usize];
            let other = &all_seeds[rng.below(all_seeds.len() as u64) as usize];
            let mut input = mutate(&mut rng, seed, other);
            if rng.below(8) == 0 {
                input = mutate(&mut rng, &input, other);
            }
            let c0 = Instant::now();
            let r = catch_unwind(AssertUnwindSafe(|| (t.run)(&input)));
            let took = c0.elapsed();
            slowest = slowest.max(took);
            if r.is_err() || took > SLOW {
                let dir = regressions.join(slug(t.name));
                std::fs::create_dir_all(&dir).unwrap();
                let file = dir.join(format!(
                    "{:016x}",
                    daylight_core::leaf_hash(&input).0[..8]
                        .iter()
                        .fold(0u64, |a, &b| a << 8 | u64::from(b))
                ));
                std::fs::write(&file, &input).unwrap();
                failures.push(format!(
                    "{}: {} on {} ({} bytes)",
                    t.name,
                    if r.is_err() { "panic" } else { "slow" },
                    file.display(),
                    input.len()
                ));
            }
        }
        total += n;
        eprintln!(
            "fuzz: {:<56} {n:>9} cases, {:>7.1?}, slowest case {slowest:?}",
            t.name,
            t0.elapsed()
        );
    }
    std::panic::set_hook(hook);
    eprintln!(
        "fuzz: {} parsers, {total} cases in {:.1?}, {replayed} regression inputs replayed, {} failures",
        targets.len(),
        started.elapsed(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect::<String>()
        .split('_')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}
