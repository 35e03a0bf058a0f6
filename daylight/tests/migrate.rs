//! `daylight log migrate`: a SQLite log moves to PostgreSQL with its whole
//! history, serves on from there with the same checkpoints, and a copy that
//! would not reach the signed root is refused with nothing switched over.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};

use common::{daylight, fails, free_port, http_get, ok, serve_log as serve, wait_ready, Server};
use daylight_log_server::postgres::ScratchSchema;

/// A SQLite log with an agency and `n` real records, not being served.
fn sqlite_log(tmp: &std::path::Path, n: &str) -> String {
    let dir = tmp.join("log");
    let d = dir.to_str().unwrap();
    ok(&daylight(&[
        "log",
        "init",
        "--dir",
        d,
        "--origin",
        "log.test/migrate",
        "--quorum",
        "0",
    ]));
    ok(&daylight(&[
        "bench",
        "fill",
        "--dir",
        d,
        "--entries",
        n,
        "--records",
    ]));
    d.to_string()
}

/// `daylight log migrate --dir DIR --database URL`.
fn migrate(dir: &str, url: &str) -> std::process::Output {
    daylight(&["log", "migrate", "--dir", dir, "--database", url])
}

#[test]
fn a_sqlite_log_moves_to_postgres_and_serves_on() {
    let Some(schema) = ScratchSchema::for_tests() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = sqlite_log(tmp.path(), "3000");
    // Its checkpoint and a proof, as served from SQLite.
    let (server, url) = serve(&dir);
    let before = http_get(&format!("{url}/checkpoint"));
    assert_eq!(before.0, 200);
    let proof_before = http_get(&format!("{url}/api/v1/entries/1234/proof"));
    assert_eq!(proof_before.0, 200);
    // Not while it is served.
    let busy = fails(&migrate(&dir, schema.url()));
    assert!(busy.contains("being served"), "{busy}");
    drop(server);

    let public = tmp.path().join("public");
    let out = ok(&daylight(&[
        "log",
        "migrate",
        "--dir",
        &dir,
        "--database",
        schema.url(),
        "--publish-dir",
        public.to_str().unwrap(),
    ]));
    assert!(
        out.contains("root") && out.contains("matches the signed checkpoint"),
        "{out}"
    );
    assert!(out.contains("published"), "{out}");
    let moved = std::fs::read_to_string(tmp.path().join("log/database.url")).unwrap();
    assert_eq!(moved.trim(), schema.url());
    // The published directory holds the same checkpoint.
    assert_eq!(std::fs::read(public.join("checkpoint")).unwrap(), before.1);
    // The directory alone, behind a plain static web server, is enough for
    // the auditor: it reads the metadata, checkpoint, tiles and bundles
    // there and verifies the whole tree against the log's key.
    let port = free_port();
    let static_server = Server(
        Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(&public)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let static_url = format!("http://127.0.0.1:{port}");
    wait_ready(&static_url);
    let audit = daylight(&[
        "audit",
        "--log",
        &static_url,
        "--dir",
        tmp.path().join("audit").to_str().unwrap(),
    ]);
    let report = String::from_utf8_lossy(&audit.stdout);
    // 0 clean or 1 rule findings (the bench's records trip a rule); never
    // 2 (integrity) or 3 (could not run).
    assert!(
        matches!(audit.status.code(), Some(0 | 1)),
        "{report}{}",
        String::from_utf8_lossy(&audit.stderr)
    );
    let size = String::from_utf8_lossy(&before.1)
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    assert!(
        report.contains(&format!("verified tree: {size} entries")),
        "{report}"
    );
    drop(static_server);

    // Again: this log has moved.
    let again = fails(&migrate(&dir, schema.url()));
    assert!(again.contains("has moved"), "{again}");

    // Served from PostgreSQL: the same checkpoint and proof, and it grows on.
    let (_server, url) = serve(&dir);
    assert_eq!(http_get(&format!("{url}/checkpoint")), before);
    assert_eq!(
        http_get(&format!("{url}/api/v1/entries/1234/proof")),
        proof_before
    );
    let (status, body) = http_get(&format!("{url}/api/v1/log"));
    assert_eq!(status, 200);
    let info: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(info["origin"], "log.test/migrate");
}

#[test]
fn a_copy_that_misses_the_signed_root_is_refused() {
    let Some(schema) = ScratchSchema::for_tests() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = sqlite_log(tmp.path(), "600");
    // One entry's bytes changed behind the log's back (its leaf hash kept).
    // Entry 300 of 600 is stored raw: the log compresses only after 4,096.
    let db = rusqlite::Connection::open(tmp.path().join("log/log.db")).unwrap();
    db.execute(
        "UPDATE entries SET stored = CAST(REPLACE(CAST(stored AS TEXT), 'request', 'requesT') AS BLOB) WHERE idx = 300",
        [],
    )
    .unwrap();
    drop(db);
    let err = fails(&migrate(&dir, schema.url()));
    assert!(err.contains("entry 300"), "{err}");
    assert!(
        !tmp.path().join("log/database.url").exists(),
        "nothing switched over"
    );

    // Its leaf hash made to match too: the copy is self-consistent but does
    // not reach the root the log signed.
    let db = rusqlite::Connection::open(tmp.path().join("log/log.db")).unwrap();
    let data: Vec<u8> = db
        .query_row("SELECT stored FROM entries WHERE idx = 300", [], |r| {
            r.get(0)
        })
        .unwrap();
    let leaf = daylight_core::leaf_hash(&data);
    db.execute(
        "UPDATE entries SET leaf_hash = ?1 WHERE idx = 300",
        [leaf.as_bytes().as_slice()],
    )
    .unwrap();
    drop(db);
    let fresh = ScratchSchema::for_tests().unwrap();
    let err = fails(&migrate(&dir, fresh.url()));
    assert!(err.contains("the log's entries give the root"), "{err}");
    assert!(
        !tmp.path().join("log/database.url").exists(),
        "nothing switched over"
    );

    // And a database that already holds a log is not overwritten.
    let tmp2 = tempfile::tempdir().unwrap();
    let other = tmp2.path().join("other");
    ok(&daylight(&[
        "log",
        "init",
        "--dir",
        other.to_str().unwrap(),
        "--origin",
        "log.test/other",
        "--database",
        schema.url(),
    ]));
    let tmp3 = tempfile::tempdir().unwrap();
    let dir3 = sqlite_log(tmp3.path(), "10");
    let err = fails(&migrate(&dir3, schema.url()));
    assert!(err.contains("already holds the log"), "{err}");
}
