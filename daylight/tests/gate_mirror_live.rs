//! The provider's mirror end to end, with real processes: a log with two
//! witnesses, an agency's request, `daylight audit` keeping the provider's
//! mirror, `gate verify --mirror` allowing it; then the agency withdraws
//! the request, the mirror syncs, and the gate refuses (`withdrawn`).

// Test code: a panic is how a failed expectation is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use chrono::Utc;
use common::{daylight, free_port, ok, serve_witness_for, spawn, wait_ready};

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

fn key(dir: &Path, name: &str) -> String {
    let file = dir.join(format!("{name}.key"));
    ok(&daylight(&[
        "key",
        "generate",
        "--name",
        name,
        "--out",
        file.to_str().unwrap(),
    ]))
    .trim()
    .to_owned()
}

#[test]
fn a_withdrawal_reaches_the_gate_through_the_providers_mirror() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).to_str().unwrap().to_owned();
    let origin = "log.test/mirror";
    let log_vkey = ok(&daylight(&[
        "log",
        "init",
        "--dir",
        &p("log"),
        "--origin",
        origin,
        "--quorum",
        "2",
    ]))
    .trim()
    .to_owned();
    let agency = key(tmp.path(), "agency.test");
    let provider = key(tmp.path(), "messenger.example");
    ok(&daylight(&[
        "log",
        "add-agency",
        "--dir",
        &p("log"),
        "--vkey",
        &agency,
    ]));
    ok(&daylight(&[
        "log",
        "add-provider",
        "--dir",
        &p("log"),
        "--vkey",
        &provider,
    ]));
    let mut servers = Vec::new();
    for name in ["w1", "w2"] {
        let (server, _, _) = serve_witness_for(
            &p(name),
            &format!("witness.test/{name}"),
            &p("log"),
            origin,
            &log_vkey,
        );
        servers.push(server);
    }
    let addr = format!("127.0.0.1:{}", free_port());
    servers.push(spawn(&[
        "log",
        "serve",
        "--dir",
        &p("log"),
        "--listen",
        &addr,
    ]));
    wait_ready(&addr);
    let url = format!("http://{addr}");

    // The agency's request.
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schemas/examples/request.json"
    ))
    .unwrap();
    let mut draft: serde_json::Value = serde_json::from_str(&example).unwrap();
    let now = Utc::now();
    let fmt = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    draft["valid_from"] = fmt(now - chrono::Duration::days(1)).into();
    draft["valid_until"] = fmt(now + chrono::Duration::days(30)).into();
    draft["sealed_until"] = fmt(now + chrono::Duration::days(365)).into();
    draft["provider"] = "messenger.example".into();
    std::fs::write(p("draft.json"), draft.to_string()).unwrap();
    let submit = |draft: &str, out: &str| {
        ok(&daylight(&[
            "agency",
            "submit",
            "--log",
            &url,
            "--key",
            &p("agency.test.key"),
            "--draft",
            &p(draft),
            "--out",
            &p(out),
            "--timeout",
            "60",
        ]))
        .trim()
        .parse::<u64>()
        .unwrap()
    };
    let index = submit("draft.json", "bundle");

    // The provider: a policy that requires a mirror at most an hour old.
    let policy = ok(&daylight(&[
        "gate",
        "policy",
        "--log",
        &url,
        "--provider",
        "messenger.example",
    ]));
    std::fs::write(
        p("policy"),
        format!("{policy}\ndaylight-mirror required 3600\n"),
    )
    .unwrap();
    let audit = || {
        let o = daylight(&["audit", "--log", &url, "--dir", &p("mirror")]);
        // 0 clean, 1 rule findings (the sample request's sealing and so on);
        // 2 and 3 would mean the mirror is not verified.
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "audit: {} {}",
            text(&o.stdout),
            text(&o.stderr)
        );
    };
    let verify = |mirror: bool| {
        let (policy, entry, proof, dir) = (
            p("policy"),
            p("bundle/entry"),
            p("bundle/proof"),
            p("mirror"),
        );
        let mut args = vec![
            "gate", "verify", "--policy", &policy, "--entry", &entry, "--proof", &proof,
        ];
        if mirror {
            args.extend_from_slice(&["--mirror", &dir]);
        }
        let o = daylight(&args);
        (o.status.code(), text(&o.stdout))
    };

    // No mirror yet: refused.
    let (code, line) = verify(true);
    assert_eq!(code, Some(1), "{line}");
    assert!(line.starts_with("DENY mirror_missing: "), "{line}");
    let (code, line) = verify(false);
    assert_eq!(code, Some(1), "{line}");
    assert!(line.starts_with("DENY mirror_missing: "), "{line}");

    // The mirror synced: allowed.
    audit();
    let (code, line) = verify(true);
    assert_eq!(code, Some(0), "{line}");
    assert!(line.contains("mirror size"), "{line}");

    // The agency withdraws the request; once the mirror has synced, refused.
    let entry = std::fs::read(p("bundle/entry")).unwrap();
    let withdrawal = serde_json::json!({
        "kind": "withdrawal",
        "entry": {"index": index, "leaf_hash": daylight_core::leaf_hash(&entry).to_hex()},
        "reason": "no_longer_needed",
    });
    std::fs::write(p("withdrawal.json"), withdrawal.to_string()).unwrap();
    let at = submit("withdrawal.json", "withdrawal");
    assert!(at > index);
    // Before the sync the mirror does not know yet (the risk its maximum age bounds).
    let (code, line) = verify(true);
    assert_eq!(code, Some(0), "{line}");
    audit();
    let (code, line) = verify(true);
    assert_eq!(code, Some(1), "{line}");
    assert!(line.starts_with("DENY withdrawn: "), "{line}");
    assert!(line.contains(&format!("by entry {at}")), "{line}");
}
