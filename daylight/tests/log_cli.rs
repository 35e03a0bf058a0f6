//! `daylight log` and `daylight agency submit` as separate processes: init,
//! register, serve, submit, revoke, shut down.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    agency_submit, daylight, fails, free_port, generate_key, ok, request_draft, submit_output,
    wait_ready, Server,
};

#[test]
fn init_register_serve_submit_revoke() {
    init_register_serve_submit_revoke_on(None);
}

/// The same commands against a log kept in PostgreSQL.
#[test]
fn init_register_serve_submit_revoke_on_postgres() {
    let Some(schema) = daylight_log_server::postgres::ScratchSchema::for_tests() else {
        return;
    };
    init_register_serve_submit_revoke_on(Some(schema.url()));
}

/// With `database`, `log init` puts the log's state there; every other
/// command finds it through the log's directory.
fn init_register_serve_submit_revoke_on(database: Option<&str>) {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).to_str().unwrap().to_owned();
    let agency_vkey = generate_key("agency.test", &p("agency.key"));

    let log_dir = p("log");
    let mut init = vec![
        "log",
        "init",
        "--dir",
        &log_dir,
        "--origin",
        "log.test/cli",
        "--quorum",
        "0",
    ];
    if let Some(url) = database {
        init.extend(["--database", url]);
        assert!(
            !tmp.path().join("log/log.db").exists(),
            "no SQLite file for a PostgreSQL log"
        );
    }
    let log_vkey = ok(&daylight(&init));
    if let Some(url) = database {
        assert!(!tmp.path().join("log/log.db").exists());
        let recorded = std::fs::read_to_string(tmp.path().join("log/database.url")).unwrap();
        assert_eq!(recorded.trim(), url);
        // A second log in the same database is refused.
        let again = fails(&daylight(&[
            "log",
            "init",
            "--dir",
            &p("log-again"),
            "--origin",
            "log.test/other",
            "--database",
            url,
        ]));
        assert!(again.contains("already holds the log"), "{again}");
    }
    assert!(log_vkey.starts_with("log.test/cli+"));
    assert!(fails(&daylight(&[
        "log",
        "init",
        "--dir",
        &p("log"),
        "--origin",
        "log.test/cli"
    ]))
    .contains("already holds a log"));
    assert!(ok(&daylight(&[
        "log",
        "add-agency",
        "--dir",
        &p("log"),
        "--vkey",
        &agency_vkey
    ]))
    .contains("at entry 0"));
    assert!(fails(&daylight(&[
        "log",
        "add-agency",
        "--dir",
        &p("log"),
        "--vkey",
        &agency_vkey
    ]))
    .contains("already registered"));
    assert!(fails(&daylight(&[
        "log",
        "add-witness",
        "--dir",
        &p("log"),
        "--vkey",
        &agency_vkey,
        "--url",
        "http://127.0.0.1:1"
    ]))
    .contains("cosignature"));
    assert!(fails(&daylight(&[
        "log",
        "add-agency",
        "--dir",
        &p("log"),
        "--vkey",
        "garbage"
    ]))
    .contains("--vkey"));
    assert!(fails(&daylight(&[
        "log",
        "add-agency",
        "--dir",
        &p("nolog"),
        "--vkey",
        &agency_vkey
    ]))
    .contains("no log database"));

    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_daylight"))
            .args([
                "log",
                "serve",
                "--dir",
                &p("log"),
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_ready(&url);

    let draft = request_draft(tmp.path(), "draft.json", |_| {});
    let index = agency_submit(&url, &p("agency.key"), &draft, &p("out"));
    assert_eq!(index, "1", "entry 0 is the registry entry");
    let entry = std::fs::read(p("out/entry")).unwrap();
    let record = daylight_schemas::SignedRecord::parse(&entry).unwrap();
    assert_eq!(record.kind(), daylight_schemas::Kind::Request);
    let proof = daylight_core::TlogProof::parse(&std::fs::read(p("out/proof")).unwrap()).unwrap();
    assert_eq!(proof.index, daylight_core::LeafIndex(1));
    let log_key = daylight_core::VerifierKey::parse(&log_vkey).unwrap();
    proof
        .verify(
            &entry,
            &daylight_core::WitnessPolicy::k_of_n(log_key, vec![], 0),
        )
        .unwrap();
    let opening = std::fs::read_to_string(p("out/opening.json")).unwrap();
    assert!(opening.contains("acct:4815162342"));
    assert!(
        !String::from_utf8_lossy(&entry).contains("acct:4815162342"),
        "no plaintext target in the log entry"
    );

    // Revoked while the server runs: the next submission is refused.
    ok(&daylight(&[
        "log",
        "revoke",
        "--dir",
        &p("log"),
        "--vkey",
        &agency_vkey,
    ]));
    let err = fails(&submit_output(&url, &p("agency.key"), &draft, &p("out2")));
    assert!(err.contains("revoked_signer"), "{err}");

    // Ctrl-C: a graceful stop.
    let mut server = server;
    let pid = server.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    }

    if database.is_some() {
        // The database out of reach: one clear line, for every command.
        std::fs::write(
            tmp.path().join("log/database.url"),
            "postgres://postgres@127.0.0.1:1/test\n",
        )
        .unwrap();
        let err = fails(&daylight(&[
            "log",
            "add-agency",
            "--dir",
            &p("log"),
            "--vkey",
            &agency_vkey,
        ]));
        assert!(err.contains("storage unreachable"), "{err}");
        let err = fails(&daylight(&["log", "serve", "--dir", &p("log")]));
        assert!(err.contains("storage unreachable"), "{err}");
    }
}
