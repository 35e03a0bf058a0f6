//! Randomised, structure-aware mutation of every parser of outside bytes:
//! valid seeds (a signed note, a cosigned checkpoint, a tlog-proof, tile
//! paths, entry bundles, a signed record, a gate policy, a witness request
//! body, keys, openings, drafts) mutated at the byte, token and line level,
//! and fed to each parser. Goal: no panic and no slow case (a hang) in any.
//!
//! The parsers, their seeds and what each run calls are one table shared
//! with the coverage-guided libFuzzer targets in `fuzz/`
//! (`daylight_gate::testkit::fuzz`); `scripts/fuzz-coverage` runs those.
//! This harness runs on the stable test build in `cargo test`: fast by
//! default (`DAYLIGHT_FUZZ_CASES`, default 10000 per parser). The long run:
//! `DAYLIGHT_FUZZ_CASES=1000000 cargo test --release -p daylight --test fuzz
//! -- --nocapture`. `DAYLIGHT_SEED=N` repeats a run. Before mutating, it
//! replays every input that ever crashed (`tests/fuzz_regressions/<parser>/`)
//! and libFuzzer's minimised corpus (`fuzz/corpus/<parser>/`), so both are
//! regression tests of the stable build.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod reliability;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use daylight_gate::testkit::fuzz::{Fixture, Parser};
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

/// Inputs that crashed before, then the coverage corpus, for `parser`.
fn replay_inputs(parser: Parser) -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [
        root.join("tests/fuzz_regressions").join(parser.name()),
        root.join("../fuzz/corpus").join(parser.name()),
    ] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut found: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
            found.sort();
            files.extend(found);
        }
    }
    files
}

#[test]
fn parsers_survive_mutated_input() {
    let n = cases();
    let mut rng = Rng::from_env("fuzz");
    let fixture = Fixture::new();
    let seeds: Vec<Vec<Vec<u8>>> = Parser::ALL.iter().map(|&p| fixture.seeds(p)).collect();
    let all_seeds: Vec<Vec<u8>> = seeds.iter().flatten().cloned().collect();

    // Replay inputs that crashed before and the coverage-guided corpus:
    // a panic here fails the test with the file's name.
    let t0 = Instant::now();
    let mut replayed = 0;
    for p in Parser::ALL {
        for file in replay_inputs(p) {
            let data = std::fs::read(&file).unwrap();
            let r = catch_unwind(AssertUnwindSafe(|| fixture.run(p, &data)));
            assert!(
                r.is_ok(),
                "{}: panic replaying {}",
                p.name(),
                file.display()
            );
            replayed += 1;
        }
    }
    eprintln!(
        "fuzz: replayed {replayed} regression and corpus inputs in {:.1?}",
        t0.elapsed()
    );

    // Quiet panics while fuzzing; each is caught, saved and reported.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut failures = Vec::new();
    let mut total = 0u64;
    let started = Instant::now();
    for (p, seeds) in Parser::ALL.into_iter().zip(&seeds) {
        let t0 = Instant::now();
        let mut slowest = Duration::ZERO;
        for i in 0..n {
            let seed = &seeds[(i % seeds.len() as u64) as usize];
            let other = &all_seeds[rng.below(all_seeds.len() as u64) as usize];
            let mut input = mutate(&mut rng, seed, other);
            if rng.below(8) == 0 {
                input = mutate(&mut rng, &input, other);
            }
            let c0 = Instant::now();
            let r = catch_unwind(AssertUnwindSafe(|| fixture.run(p, &input)));
            let took = c0.elapsed();
            slowest = slowest.max(took);
            if r.is_err() || took > SLOW {
                let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/fuzz_regressions")
                    .join(p.name());
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
                    p.name(),
                    if r.is_err() { "panic" } else { "slow" },
                    file.display(),
                    input.len()
                ));
            }
        }
        total += n;
        eprintln!(
            "fuzz: {:<20} {n:>9} cases, {:>7.1?}, slowest case {slowest:?}",
            p.name(),
            t0.elapsed()
        );
    }
    std::panic::set_hook(hook);
    eprintln!(
        "fuzz: {} parsers, {total} cases in {:.1?}, {} failures",
        Parser::ALL.len(),
        started.elapsed(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
