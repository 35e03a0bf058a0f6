//! The whole system as deployed: the real `daylight` binary as separate
//! processes (a log, three witnesses), talking HTTP on 127.0.0.1 free ports.
//! Submit, gate, witness outages, audit, web view.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{daylight, free_port, generate_key, ok, request_draft, wait_ready};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_daylight")
}

/// A child process killed when dropped.
struct Proc(Option<Child>);

impl Proc {
    fn spawn(args: &[&str], log: &Path) -> Proc {
        let err = std::fs::File::create(log).unwrap();
        Proc(Some(
            Command::new(bin())
                .args(args)
                .stdout(Stdio::null())
                .stderr(err)
                .spawn()
                .unwrap(),
        ))
    }
    fn stop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

fn http_get(url: &str) -> (u16, String) {
    let (status, body) = common::http_get(url);
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn draft(dir: &Path, name: &str, provider: &str) -> String {
    request_draft(dir, name, |v| v["provider"] = provider.into())
}

struct World {
    tmp: tempfile::TempDir,
    log_port: u16,
    witness_ports: Vec<u16>,
    log: Proc,
    witnesses: Vec<Proc>,
}

impl World {
    fn p(&self, name: &str) -> String {
        self.tmp.path().join(name).to_str().unwrap().to_owned()
    }
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.log_port)
    }
    fn start_witness(&mut self, i: usize) {
        let (dir, addr) = (
            self.p(&format!("w{i}")),
            format!("127.0.0.1:{}", self.witness_ports[i]),
        );
        self.witnesses[i] = Proc::spawn(
            &["witness", "serve", "--dir", &dir, "--listen", &addr],
            &PathBuf::from(self.p(&format!("w{i}.log"))),
        );
        wait_ready(&format!("127.0.0.1:{}", self.witness_ports[i]));
    }
    fn submit(&self, draft: &str, out: &str, timeout: &str) -> Output {
        daylight(&[
            "agency",
            "submit",
            "--log",
            &self.url(),
            "--key",
            &self.p("agency.key"),
            "--draft",
            draft,
            "--out",
            &self.p(out),
            "--timeout",
            timeout,
        ])
    }
}

/// The world with the log's state in `database` (a PostgreSQL URL), or in
/// SQLite when `None`.
fn world(database: Option<&str>) -> World {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = World {
        tmp,
        log_port: free_port(),
        witness_ports: (0..3).map(|_| free_port()).collect(),
        log: Proc(None),
        witnesses: (0..3).map(|_| Proc(None)).collect(),
    };
    let agency = generate_key("agency.test", &w.p("agency.key"));
    let provider = generate_key("messenger.example", &w.p("provider.key"));
    let log_dir = w.p("log");
    let mut init = vec![
        "log",
        "init",
        "--dir",
        &log_dir,
        "--origin",
        "e2e.test/log",
        "--quorum",
        "2",
    ];
    if let Some(url) = database {
        init.extend(["--database", url]);
    }
    let log_vkey = ok(&daylight(&init));
    ok(&daylight(&[
        "log",
        "add-agency",
        "--dir",
        &w.p("log"),
        "--vkey",
        &agency,
    ]));
    ok(&daylight(&[
        "log",
        "add-provider",
        "--dir",
        &w.p("log"),
        "--vkey",
        &provider,
    ]));
    for i in 0..3 {
        let wkey = ok(&daylight(&[
            "witness",
            "init",
            "--dir",
            &w.p(&format!("w{i}")),
            "--name",
            &format!("w{i}.test"),
        ]));
        ok(&daylight(&[
            "witness",
            "add-log",
            "--dir",
            &w.p(&format!("w{i}")),
            "--origin",
            "e2e.test/log",
            "--vkey",
            &log_vkey,
        ]));
        ok(&daylight(&[
            "log",
            "add-witness",
            "--dir",
            &w.p("log"),
            "--vkey",
            &wkey,
            "--url",
            &format!("http://127.0.0.1:{}", w.witness_ports[i]),
        ]));
        w.start_witness(i);
    }
    w.log = Proc::spawn(
        &[
            "log",
            "serve",
            "--dir",
            &w.p("log"),
            "--listen",
            &format!("127.0.0.1:{}", w.log_port),
        ],
        &PathBuf::from(w.p("log.stderr")),
    );
    wait_ready(&format!("127.0.0.1:{}", w.log_port));
    w
}

#[test]
fn submit_gate_witness_outages_audit_and_web() {
    scenario(world(None));
}

/// The same, with the log's state in PostgreSQL.
#[test]
fn submit_gate_witness_outages_audit_and_web_on_postgres() {
    let Some(schema) = daylight_log_server::postgres::ScratchSchema::for_tests() else {
        return;
    };
    scenario(world(Some(schema.url())));
}

fn scenario(mut w: World) {
    let d = draft(w.tmp.path(), "draft.json", "messenger.example");

    // Submit; the provider's gate allows the bundle for the right target.
    let index = ok(&w.submit(&d, "b1", "60"));
    let policy = ok(&daylight(&[
        "gate",
        "policy",
        "--log",
        &w.url(),
        "--provider",
        "messenger.example",
    ]));
    assert!(policy.contains("quorum"), "{policy}");
    std::fs::write(w.p("policy"), format!("{policy}\n")).unwrap();
    let verify = |entry: &str, proof: &str, target: &str| {
        daylight(&[
            "gate",
            "verify",
            "--policy",
            &w.p("policy"),
            "--entry",
            entry,
            "--proof",
            proof,
            "--opening",
            &w.p("b1/opening.json"),
            "--target",
            target,
            "--provider",
            "messenger.example",
        ])
    };
    let allow = verify(&w.p("b1/entry"), &w.p("b1/proof"), "acct:4815162342");
    let out = String::from_utf8_lossy(&allow.stdout).into_owned();
    assert_eq!(
        allow.status.code(),
        Some(0),
        "{out} {}",
        String::from_utf8_lossy(&allow.stderr)
    );
    assert!(out.starts_with("ALLOW"), "{out}");
    // Tampered copies are denied.
    let mut entry = std::fs::read(w.p("b1/entry")).unwrap();
    let at = entry.len() / 2;
    entry[at] ^= 0x01;
    std::fs::write(w.p("tampered-entry"), &entry).unwrap();
    let deny = verify(&w.p("tampered-entry"), &w.p("b1/proof"), "acct:4815162342");
    assert_eq!(deny.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&deny.stdout).starts_with("DENY "),
        "{}",
        String::from_utf8_lossy(&deny.stdout)
    );
    let proof = std::fs::read_to_string(w.p("b1/proof")).unwrap();
    std::fs::write(
        w.p("tampered-proof"),
        proof.replacen(
            &format!("index {index}"),
            &format!("index {}", index.parse::<u64>().unwrap() + 1),
            1,
        ),
    )
    .unwrap();
    assert_eq!(
        verify(&w.p("b1/entry"), &w.p("tampered-proof"), "acct:4815162342")
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        verify(&w.p("b1/entry"), &w.p("b1/proof"), "acct:0000000000")
            .status
            .code(),
        Some(1)
    );

    // One witness down: quorum 2 of the remaining two still publishes.
    w.witnesses[0].stop();
    ok(&w.submit(&d, "b2", "60"));

    // Two down: the entry is logged but proofs wait (503) ...
    w.witnesses[1].stop();
    let pending = w.submit(&d, "b3", "3");
    assert!(!pending.status.success());
    let err = String::from_utf8_lossy(&pending.stderr).into_owned();
    assert!(err.contains("no cosigned checkpoint"), "{err}");
    let size: u64 = {
        let (_, body) = http_get(&format!("{}/api/v1/log", w.url()));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["size"].as_u64().unwrap()
    };
    let (status, _) = http_get(&format!("{}/api/v1/entries/{size}/proof", w.url()));
    assert_eq!(status, 503);
    // ... and resume when a witness returns.
    w.start_witness(1);
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (status, _) = http_get(&format!("{}/api/v1/entries/{size}/proof", w.url()));
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "proofs did not resume after the witness returned"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    w.start_witness(0);

    // The auditor: clean (0), then a rule-breaking record (1).
    let audit = daylight(&["audit", "--log", &w.url(), "--dir", &w.p("audit")]);
    assert_eq!(
        audit.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&audit.stdout),
        String::from_utf8_lossy(&audit.stderr)
    );
    assert!(Path::new(&w.p("audit/findings.json")).exists());
    // A release by the provider for more targets than the request named.
    let release = serde_json::json!({
        "kind": "release",
        "entry": { "index": index.parse::<u64>().unwrap(), "leaf_hash": daylight_core::leaf_hash(&std::fs::read(w.p("b1/entry")).unwrap()).to_hex() },
        "targets_released": 9,
        "released_at": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    });
    std::fs::write(w.p("release.json"), release.to_string()).unwrap();
    ok(&daylight(&[
        "agency",
        "submit",
        "--log",
        &w.url(),
        "--key",
        &w.p("provider.key"),
        "--draft",
        &w.p("release.json"),
        "--out",
        &w.p("b4"),
        "--timeout",
        "60",
    ]));
    let audit = daylight(&["audit", "--log", &w.url(), "--dir", &w.p("audit")]);
    assert_eq!(
        audit.status.code(),
        Some(1),
        "{}{}",
        String::from_utf8_lossy(&audit.stdout),
        String::from_utf8_lossy(&audit.stderr)
    );

    // The web view's pages.
    for path in ["/", "/entries", &format!("/entries/{index}"), "/witnesses"] {
        let (status, body) = http_get(&format!("{}{path}", w.url()));
        assert_eq!(status, 200, "{path}");
        assert!(
            body.contains("<html") || body.contains("<!DOCTYPE") || body.contains("<!doctype"),
            "{path}"
        );
    }
}
