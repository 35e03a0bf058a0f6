//! A fixed workload for counting the instructions of `SignedRecord::parse`
//! under callgrind (wall-clock time is useless on a shared machine):
//!
//! ```sh
//! cargo bench -p daylight-schemas --bench parse_cost --no-run
//! PARSE_COST_ROUNDS=0   valgrind --tool=callgrind target/release/deps/parse_cost-<hash>
//! PARSE_COST_ROUNDS=200 valgrind --tool=callgrind target/release/deps/parse_cost-<hash>
//! ```
//!
//! The difference of the two totals, divided by 200 rounds of the eleven
//! `testdata/records` (one per kind), is the cost of one parse;
//! `PARSE_COST_ONLY=request` parses one kind's record only. A bench target
//! without a harness: it measures, it checks nothing new (`cargo bench`
//! runs it once, quickly).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::PathBuf;

use daylight_schemas::SignedRecord;

/// The eleven sample records, one per kind, as the log holds them.
fn records() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/records");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

fn main() {
    let rounds: usize = std::env::var("PARSE_COST_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(200);
    // PARSE_COST_ONLY=request: one kind's record only.
    let only = std::env::var("PARSE_COST_ONLY").ok();
    let records: Vec<Vec<u8>> = records()
        .into_iter()
        .filter(|r| {
            only.as_ref().is_none_or(|k| {
                r.windows(k.len() + 10)
                    .any(|w| w == format!(",\"kind\":\"{k}\"").as_bytes())
            })
        })
        .collect();
    // Read and checked once outside the counted rounds too, so that the
    // run with 0 rounds pays for the same set-up and first-use costs.
    for r in &records {
        SignedRecord::parse(r).unwrap();
    }
    for _ in 0..rounds {
        for r in &records {
            black_box(SignedRecord::parse(black_box(r)).unwrap());
        }
    }
    println!("{} records x {rounds} rounds", records.len());
}
