//! The benchmark commands `scripts/bench` reads, run small: they work, print
//! the `key: value` lines the script parses, and leave the log whole. (What
//! they measure is reported by the benchmarks, never asserted here.)

// Test code: a panic is how a failed expectation is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use daylight_core::{LeafIndex, TreeSize};
use daylight_log_server::sqlite::SqliteStore;
use daylight_log_server::store::LogStore;

mod common;

use common::{daylight, fails, ok};

/// The `key: value` lines of a bench command's output.
fn values(out: &str) -> HashMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

fn rate(v: &HashMap<String, String>, key: &str) -> f64 {
    let r: f64 = v
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {v:?}"))
        .parse()
        .unwrap();
    assert!(r > 0.0, "{key} is {r}");
    r
}

fn init(dir: &std::path::Path, quorum: &str) -> String {
    let d = dir.to_str().unwrap().to_owned();
    ok(&daylight(&[
        "log",
        "init",
        "--dir",
        &d,
        "--origin",
        "bench.test/cli",
        "--quorum",
        quorum,
    ]));
    d
}

#[test]
fn bench_integrate_appends_and_publishes_and_reports_both_rates() {
    let tmp = tempfile::tempdir().unwrap();
    let d = init(&tmp.path().join("log"), "0");
    let out = ok(&daylight(&[
        "bench",
        "integrate",
        "--dir",
        &d,
        "--batches",
        "3",
        "--batch",
        "16",
        "--bytes",
        "200",
    ]));
    let v = values(&out);
    let (log, raw) = (
        rate(&v, "integrate_entries_per_s"),
        rate(&v, "raw_sqlite_entries_per_s"),
    );
    let ratio: f64 = v["integrate_ratio"].parse().unwrap();
    assert!((ratio - log / raw).abs() < 0.01, "{out}");
    assert_eq!(v["integrate_batches"], "3");
    assert_eq!(v["log_has"], "48");
    assert!(
        !tmp.path().join("log/bench-raw.db").exists(),
        "the raw limit's file is removed"
    );
    // The entries are in the log, distinct, and the last checkpoint is published.
    let store = SqliteStore::open(&tmp.path().join("log/log.db")).unwrap();
    assert_eq!(store.size().unwrap(), TreeSize(48));
    let entries = store.entries(LeafIndex(0), 48).unwrap();
    assert!(entries.iter().all(|e| e.data.len() == 200));
    let note = String::from_utf8(store.published_checkpoint().unwrap().unwrap()).unwrap();
    assert!(note.lines().nth(1) == Some("48"), "{note}");
    // A second run goes on from there.
    let again = values(&ok(&daylight(&[
        "bench",
        "integrate",
        "--dir",
        &d,
        "--batches",
        "1",
        "--batch",
        "8",
    ])));
    assert_eq!(again["integrate_base_entries"], "48");
    assert_eq!(again["log_has"], "56");
}

#[test]
fn bench_integrate_refuses_a_log_with_witnesses() {
    let tmp = tempfile::tempdir().unwrap();
    let d = init(&tmp.path().join("log"), "1");
    let err = fails(&daylight(&["bench", "integrate", "--dir", &d]));
    assert!(err.contains("--quorum 0"), "{err}");
}

#[test]
fn bench_web_index_indexes_every_entry_beside_its_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let d = init(&tmp.path().join("log"), "0");
    ok(&daylight(&[
        "bench",
        "fill",
        "--dir",
        &d,
        "--entries",
        "300",
        "--records",
    ]));
    let size = SqliteStore::open(&tmp.path().join("log/log.db"))
        .unwrap()
        .size()
        .unwrap()
        .get();
    let index = tmp.path().join("index.db");
    let out = ok(&daylight(&[
        "bench",
        "web-index",
        "--dir",
        &d,
        "--out",
        index.to_str().unwrap(),
    ]));
    let v = values(&out);
    assert_eq!(v["web_index_entries"], size.to_string(), "{out}");
    assert_eq!(v["web_index_log_entries"], size.to_string(), "{out}");
    rate(&v, "web_index_entries_per_s");
    rate(&v, "web_index_limit_per_s");
    let store = SqliteStore::open(&tmp.path().join("log/log.db")).unwrap();
    let records: u64 = store
        .entries(daylight_core::LeafIndex(0), size)
        .unwrap()
        .iter()
        .map(|e| e.data.len() as u64)
        .sum();
    assert_eq!(v["log_entries_read"], size.to_string(), "{out}");
    assert_eq!(v["log_record_bytes"], records.to_string(), "{out}");
    let bytes: u64 = v["web_index_bytes"].parse().unwrap();
    let file = std::fs::metadata(&index).unwrap().len();
    assert!(
        file > 0 && bytes >= file,
        "{bytes} bytes reported, {file} in the file"
    );
}

/// The load generators against a served log, through their lean HTTP/1.1
/// client: every signed submission is answered with its index, every proof
/// and page with a 2xx, and none is counted as an error.
#[test]
fn bench_submit_proofs_and_pages_drive_a_served_log() {
    let tmp = tempfile::tempdir().unwrap();
    let d = init(&tmp.path().join("log"), "0");
    let key = tmp.path().join("agency.key");
    let vkey = ok(&daylight(&[
        "key",
        "generate",
        "--name",
        "bench-cli.example",
        "--out",
        key.to_str().unwrap(),
    ]));
    ok(&daylight(&[
        "log",
        "add-agency",
        "--dir",
        &d,
        "--vkey",
        &vkey,
    ]));
    let (server, url) = common::serve_log(&d);
    let key = key.to_str().unwrap();
    let out = ok(&daylight(&[
        "bench",
        "submit",
        "--log",
        &url,
        "--key",
        key,
        "--n",
        "60",
        "--concurrency",
        "4",
        "--max-seconds",
        "60",
    ]));
    assert!(out.contains("submitted 60 of 60"), "{out}");
    assert!(out.contains("(0 errors)"), "{out}");
    assert!(
        out.contains("entries seen in a published checkpoint: 60 of 60"),
        "{out}"
    );
    // The limit is the better of the two measurements, before and after.
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("raw Ed25519 verification, one core, same run: "))
        .unwrap_or_else(|| panic!("no raw Ed25519 line: {out}"));
    let rates: Vec<f64> = line
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .filter_map(|w| w.parse().ok())
        .collect();
    // limit, ratio, before, after
    assert_eq!(rates.len(), 4, "{line}");
    assert!(rates[0] > 0.0, "{line}");
    assert_eq!(rates[0], rates[2].max(rates[3]), "{line}");

    let out = ok(&daylight(&[
        "bench",
        "proofs",
        "--log",
        &url,
        "--n",
        "200",
        "--concurrency",
        "4",
        "--max-seconds",
        "60",
        "--baseline-seconds",
        "1",
    ]));
    let v = values(&out);
    assert_eq!(v["http_floor_errors"], "0", "{out}");
    rate(&v, "http_floor_per_s");
    rate(&v, "proofs_per_s");
    assert!(out.contains("200 proofs of 200 (0 errors)"), "{out}");

    let out = ok(&daylight(&[
        "bench",
        "pages",
        "--log",
        &url,
        "--n",
        "40",
        "--concurrency",
        "2",
        "--max-seconds",
        "60",
    ]));
    assert!(out.contains("40 pages of 40 (0 errors)"), "{out}");
    drop(server);
}
