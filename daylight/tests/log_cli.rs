//! `daylight log` and `daylight agency submit` as separate processes: init,
//! register, serve, submit, revoke, shut down.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn daylight(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_daylight"))
        .args(args)
        .output()
        .expect("run daylight")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone())
        .unwrap()
        .trim()
        .to_owned()
}

fn fails(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "unexpected success: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let err = String::from_utf8(o.stderr.clone()).unwrap();
    assert_eq!(err.lines().count(), 1, "one line expected: {err}");
    err
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_ready(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(url.trim_start_matches("http://")).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server at {url} did not start");
}

fn draft(dir: &Path) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schemas/examples/request.json"
    ))
    .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let now = chrono::Utc::now();
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    v["valid_from"] = fmt(now - chrono::Duration::days(1)).into();
    v["valid_until"] = fmt(now + chrono::Duration::days(30)).into();
    v["sealed_until"] = fmt(now + chrono::Duration::days(365)).into();
    let path = dir.join("draft.json");
    std::fs::write(&path, v.to_string()).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn init_register_serve_submit_revoke() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).to_str().unwrap().to_owned();
    let agency_vkey = ok(&daylight(&[
        "key",
        "generate",
        "--name",
        "agency.test",
        "--out",
        &p("agency.key"),
    ]));

    let log_vkey = ok(&daylight(&[
        "log",
        "init",
        "--dir",
        &p("log"),
        "--origin",
        "log.test/cli",
        "--quorum",
        "0",
    ]));
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

    let draft = draft(tmp.path());
    let index = ok(&daylight(&[
        "agency",
        "submit",
        "--log",
        &url,
        "--key",
        &p("agency.key"),
        "--draft",
        &draft,
        "--out",
        &p("out"),
    ]));
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
    let err = fails(&daylight(&[
        "agency",
        "submit",
        "--log",
        &url,
        "--key",
        &p("agency.key"),
        "--draft",
        &draft,
        "--out",
        &p("out2"),
    ]));
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
}
