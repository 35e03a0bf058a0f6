//! Error messages a person can act on: each wrong, missing or stale input
//! to a `daylight` command gives one line on standard error that says what
//! to do next, and a non-zero exit. The README's "Troubleshooting" table
//! lists the same cases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{daylight, fails, free_port, ok, serve_log, submit_output};

/// A log address where nothing is meant to answer (port 9, discard): each
/// submission to it here is refused for its draft.
const NOWHERE: &str = "http://127.0.0.1:9";

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Asserts `o` failed with one line holding every one of `parts`.
fn says(o: &std::process::Output, parts: &[&str]) -> String {
    let line = fails(o);
    for part in parts {
        assert!(line.contains(part), "{part:?} not in: {line}");
    }
    line
}

/// A new agency key in `dir`; (key file, verifier key).
fn agency_key(dir: &Path, name: &str) -> (String, String) {
    let file = dir.join(format!("{name}.key"));
    let vkey = ok(&daylight(&[
        "key",
        "generate",
        "--name",
        name,
        "--out",
        p(&file),
    ]));
    (p(&file).to_owned(), vkey)
}

#[test]
fn a_stale_draft_says_to_write_a_fresh_one() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = agency_key(dir.path(), "agency.example");
    // The fixture's dates are fixed in August 2026: stale by now.
    let stale = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schemas/examples/request.json"
    );
    let out = dir.path().join("b");
    let o = submit_output(NOWHERE, &key, stale, p(&out));
    says(
        &o,
        &[
            "valid_until 2026-08-31T00:00:00Z, which is in the past",
            "edit it, or write a fresh draft with `daylight agency draft request`",
        ],
    );
    // An emergency whose deadline passed says so about ratify_by.
    let emergency = dir.path().join("e.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&ok(&daylight(&["agency", "draft", "emergency"]))).unwrap();
    v["ratify_by"] = "2026-01-02T00:00:00Z".into();
    std::fs::write(&emergency, v.to_string()).unwrap();
    let o = submit_output(NOWHERE, &key, p(&emergency), p(&out));
    says(
        &o,
        &[
            "ratify_by 2026-01-02T00:00:00Z",
            "`daylight agency draft emergency`",
        ],
    );
}

#[test]
fn drafts_that_cannot_be_submitted_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = agency_key(dir.path(), "agency.example");
    let out = dir.path().join("b");
    let submit = |draft: &str| submit_output(NOWHERE, &key, draft, p(&out));
    let missing = dir.path().join("nothing.json");
    says(
        &submit(p(&missing)),
        &[
            "reading the draft",
            "write one with `daylight agency draft request --out",
        ],
    );
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"kind": "request"}"#).unwrap();
    says(
        &submit(p(&bad)),
        &[
            "is not a valid draft: missing field: jurisdiction",
            "`daylight agency draft KIND`",
        ],
    );
    // A draft made without --entry keeps its placeholder until replaced.
    let withdrawal = dir.path().join("w.json");
    let o = daylight(&["agency", "draft", "withdrawal", "--out", p(&withdrawal)]);
    assert!(o.status.success());
    assert!(
        common::stderr(&o).contains("placeholder"),
        "a note about the placeholder"
    );
    says(
        &submit(p(&withdrawal)),
        &[
            "placeholder entry",
            "daylight agency draft withdrawal --log http://127.0.0.1:9 --entry INDEX",
        ],
    );
}

#[test]
fn agency_draft_refuses_what_it_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    says(
        &daylight(&["agency", "draft", "registry"]),
        &[
            "registry entries are the log operator's",
            "daylight log add-agency",
        ],
    );
    says(
        &daylight(&["agency", "draft", "warrant"]),
        &[
            "no kind of record is called \"warrant\"",
            "request, emergency, ratification",
        ],
    );
    says(
        &daylight(&["agency", "draft", "request", "--entry", "3"]),
        &["a request refers to no earlier entry"],
    );
    says(
        &daylight(&["agency", "draft", "outcome", "--entry", "3"]),
        &["needs its leaf hash: add --log URL"],
    );
    let out = dir.path().join("r.json");
    ok(&daylight(&["agency", "draft", "request", "--out", p(&out)]));
    says(
        &daylight(&["agency", "draft", "request", "--out", p(&out)]),
        &["already exists: choose another --out"],
    );
}

#[test]
fn a_log_that_is_not_there_or_refuses_says_what_to_check() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = agency_key(dir.path(), "agency.example");
    let draft = dir.path().join("r.json");
    ok(&daylight(&[
        "agency",
        "draft",
        "request",
        "--out",
        p(&draft),
    ]));
    let out = dir.path().join("b");
    let submit = |log: &str, key: &str| submit_output(log, key, p(&draft), p(&out));
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    says(
        &submit(&nowhere, &key),
        &[
            "cannot reach the log at",
            "nothing answers there",
            "daylight log serve",
        ],
    );
    says(
        &submit("log.example.org", &key),
        &["is not a URL: write it as http://HOST:PORT"],
    );

    // A live log (quorum 0: nothing here needs a witness) and a key it does
    // not know.
    let log = dir.path().join("log");
    ok(&daylight(&[
        "log",
        "init",
        "--dir",
        p(&log),
        "--origin",
        "log.example.org/errors",
        "--quorum",
        "0",
    ]));
    let (_server, url) = serve_log(p(&log));
    says(
        &submit(&url, &key),
        &[
            "unknown_signer",
            "the log operator must register this key first: `daylight log add-agency",
        ],
    );
    // The audit of a log that is not there is exit 3 and says so.
    let o = daylight(&[
        "audit",
        "--log",
        &nowhere,
        "--dir",
        p(&dir.path().join("audit")),
    ]);
    assert_eq!(o.status.code(), Some(3));
    says(
        &o,
        &[
            "is a Daylight log (or a mirror's prefix for it) serving at",
            "check --log",
        ],
    );
}

#[test]
fn keys_say_how_to_make_the_right_one() {
    let dir = tempfile::tempdir().unwrap();
    let (key, vkey) = agency_key(dir.path(), "agency.example");
    says(
        &daylight(&["key", "generate", "--name", "agency.example", "--out", &key]),
        &["already exists: a key file is never overwritten; choose another --out"],
    );
    let missing = dir.path().join("none.key");
    says(
        &daylight(&["key", "public", "--key", p(&missing)]),
        &["no key file at", "daylight key generate --name NAME --out"],
    );
    let public = dir.path().join("agency.vkey");
    common::write_key(&public, &vkey);
    says(
        &daylight(&["key", "public", "--key", p(&public)]),
        &["holds a verifier (public) key, which cannot sign"],
    );
}

#[test]
fn log_and_witness_directories_say_how_to_create_them() {
    let dir = tempfile::tempdir().unwrap();
    let (_, vkey) = agency_key(dir.path(), "agency.example");
    let nolog = dir.path().join("nolog");
    says(
        &daylight(&["log", "add-agency", "--dir", p(&nolog), "--vkey", &vkey]),
        &["no log database in", "daylight log init --dir"],
    );
    let log = dir.path().join("log");
    let init = || {
        daylight(&[
            "log",
            "init",
            "--dir",
            p(&log),
            "--origin",
            "log.example.org/e",
        ])
    };
    ok(&init());
    says(&init(), &["already holds a log: choose another --dir"]);
    says(
        &daylight(&[
            "log",
            "add-agency",
            "--dir",
            p(&log),
            "--vkey",
            "PROVIDER_VKEY",
        ]),
        &[
            "\"PROVIDER_VKEY\" is not a verifier key",
            "NAME+KEYID+BASE64",
        ],
    );
    let nowit = dir.path().join("nowit");
    says(
        &daylight(&[
            "witness",
            "serve",
            "--dir",
            p(&nowit),
            "--listen",
            "127.0.0.1:0",
        ]),
        &["no witness in", "daylight witness init --dir"],
    );
    // A port already taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    says(
        &daylight(&["log", "serve", "--dir", p(&log), "--listen", &addr]),
        &[
            "something else is already listening there",
            "choose another --listen",
        ],
    );
}

#[test]
fn the_gate_names_the_file_it_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy");
    says(
        &daylight(&[
            "gate",
            "verify",
            "--policy",
            p(&policy),
            "--entry",
            "e",
            "--proof",
            "p",
        ]),
        &["does not exist", "daylight gate policy"],
    );
}
