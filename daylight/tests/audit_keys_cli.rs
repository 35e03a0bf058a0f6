//! `daylight audit` follows a real log through key rotations: the log's own
//! key (`log rotate-key`, first with a transition, then without) and an
//! agency's key (`log rotate`). The auditor pins the first key, follows the
//! chain from the log's rotation entries, and shows the keys over time in
//! findings.json and the transparency report.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{daylight, generate_key, new_log_and_agency, ok, serve_log as serve, submit_case};

fn findings(dir: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(Path::new(dir).join("findings.json")).unwrap()).unwrap()
}

/// Audits; asserts the exit code; returns findings.json.
fn audit(url: &str, dir: &str, code: i32) -> serde_json::Value {
    let out = daylight(&["audit", "--log", url, "--dir", dir]);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    findings(dir)
}

#[test]
fn audit_follows_log_and_agency_key_rotations() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).to_str().unwrap().to_owned();
    let (first, agency) = new_log_and_agency(&p("log"), "log.test/keys", "0", &p("agency.key"));
    {
        let (_server, url) = serve(&p("log"));
        submit_case(&url, &p("agency.key"), tmp.path(), "K-1");
        let f = audit(&url, &p("audit"), 0);
        assert_eq!(f["history"]["log_keys"].as_array().unwrap().len(), 1);
    }

    // The log's key rotates with a transition: checkpoints carry both.
    let rotated = ok(&daylight(&[
        "log",
        "rotate-key",
        "--dir",
        &p("log"),
        "--transition-days",
        "7",
    ]));
    let agency2 = generate_key("agency.test", &p("agency2.key"));
    ok(&daylight(&[
        "log",
        "rotate",
        "--dir",
        &p("log"),
        "--old",
        agency.trim(),
        "--new",
        agency2.trim(),
    ]));
    {
        let (_server, url) = serve(&p("log"));
        submit_case(&url, &p("agency2.key"), tmp.path(), "K-2");
        // During the transition the log signs with both keys.
        let (status, cp) = common::http_get(&format!("{url}/checkpoint"));
        assert_eq!(status, 200);
        let cp = String::from_utf8(cp).unwrap();
        assert_eq!(cp.matches("\u{2014} log.test/keys ").count(), 2, "{cp}");
        let f = audit(&url, &p("audit"), 0);
        let keys = f["history"]["log_keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2, "{rotated}\n{f:#}");
        assert_eq!(keys[0]["vkey"], first);
        assert!(keys[0]["replaced_at"].is_u64(), "{f:#}");
        assert!(keys[0]["until"].is_string(), "{f:#}");
        assert_eq!(keys[1]["from"], keys[0]["replaced_at"]);
        // The pin stays on the first key.
        let pinned: serde_json::Value = serde_json::from_slice(
            &std::fs::read(Path::new(&p("audit")).join("log.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(pinned["vkey"], first);
        let agency_keys: Vec<_> = f["history"]["identities"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["name"] == "agency.test")
            .flat_map(|i| i["keys"].as_array().unwrap().clone())
            .collect();
        assert_eq!(agency_keys.len(), 2, "{f:#}");
        assert_eq!(agency_keys[0]["vkey"], agency.trim());
        assert_eq!(agency_keys[0]["replaced_by"], agency2.trim());
    }

    // Again, with no transition: checkpoints by the newest key alone. A
    // fresh audit directory follows the whole chain from the first key.
    ok(&daylight(&[
        "log",
        "rotate-key",
        "--dir",
        &p("log"),
        "--transition-days",
        "0",
    ]));
    {
        let (_server, url) = serve(&p("log"));
        submit_case(&url, &p("agency2.key"), tmp.path(), "K-3");
        for dir in ["audit", "fresh"] {
            let f = audit(&url, &p(dir), 0);
            assert_eq!(
                f["history"]["log_keys"].as_array().unwrap().len(),
                3,
                "{f:#}"
            );
            assert_eq!(f["history"]["log_keys"][0]["vkey"], first);
        }
        let md = ok(&daylight(&["audit", "report", "--dir", &p("fresh")]));
        assert!(md.contains("## Log keys"), "{md}");
        assert!(md.contains(&format!("| {first} | first |")), "{md}");
        assert!(
            md.contains(&format!("| agency.test | agency | {} |", agency.trim())),
            "{md}"
        );
    }
}
