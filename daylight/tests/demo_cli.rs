//! `daylight demo` end to end, as a user runs it: its log holds only
//! coherent records (each request's statute, court and agency belong to its
//! jurisdiction; follow-ups are signed by a court of the same jurisdiction,
//! the same agency or the addressed provider), the auditor finds only the
//! rule breaks the demo makes on purpose, and the ready bundle passes the gate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{daylight, http_get, serve_log};
use serde_json::Value;

/// What each jurisdiction's records may cite and be issued by, written out
/// here independently of the demo's own table.
fn jurisdiction_fits(j: &str, legal_basis: &str, authority: &str, kind: &str) -> bool {
    let (statutes, courts): (&[&str], &[&str]) = match j {
        "US" => (
            &["18 U.S.C. ", "28 U.S.C. "],
            &["U.S. District Court for the Southern District of New York"],
        ),
        "US-CA" => (
            &["Cal. Penal Code "],
            &["Superior Court of California, County of Los Angeles"],
        ),
        "GB" => (
            &[
                "Investigatory Powers Act 2016 ",
                "Regulation of Investigatory Powers Act 2000 ",
            ],
            &[
                "Investigatory Powers Commissioner's Office",
                "Crown Court at Southwark",
            ],
        ),
        "DE" => (
            &["StPO "],
            &["Amtsgericht Tiergarten", "Landgericht Berlin"],
        ),
        "FR" => (
            &["Code de procédure pénale "],
            &["Tribunal judiciaire de Paris"],
        ),
        _ => return false,
    };
    statutes.iter().any(|s| legal_basis.starts_with(s))
        && (kind != "court" || courts.iter().any(|c| authority.starts_with(c)))
}

/// Whether a key name belongs to jurisdiction `j` (the demo names keys
/// after it: `us-…`, `us-ca-…`, `gb-…`).
fn key_of(key: &str, j: &str) -> bool {
    let prefix = format!("{}-", j.to_lowercase());
    key.starts_with(&prefix) && !(j == "US" && key.starts_with("us-ca-"))
}

#[test]
fn the_demo_logs_coherent_records_and_a_ready_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("demo");
    let d = d.to_str().unwrap();
    // The demo listens here and runs its witnesses on the next three ports.
    let listen = format!("127.0.0.1:{}", common::free_port_run(4));
    let o = daylight(&[
        "demo",
        "--dir",
        d,
        "--listen",
        &listen,
        "--requests",
        "80",
        "--no-serve",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // The auditor found nothing but the demo's deliberate breaks.
    let findings: Value =
        serde_json::from_slice(&std::fs::read(format!("{d}/audit/findings.json")).unwrap())
            .unwrap();
    for f in findings["findings"].as_array().unwrap() {
        let id = f["id"].as_str().unwrap();
        assert!(
            [
                "emergency_unratified",
                "release_excess_targets",
                "disclosure_overdue"
            ]
            .contains(&id),
            "unexpected finding {f}"
        );
    }

    // The printed gate command allows the ready bundle.
    let target = std::fs::read_to_string(format!("{d}/bundle/target")).unwrap();
    let bundle = |f: &str| format!("{d}/bundle/{f}");
    let g = daylight(&[
        "gate",
        "verify",
        "--policy",
        &format!("{d}/provider/policy"),
        "--entry",
        &bundle("entry"),
        "--proof",
        &bundle("proof"),
        "--opening",
        &bundle("opening.json"),
        "--target",
        target.trim(),
    ]);
    assert!(
        g.status.success(),
        "{}{}",
        String::from_utf8_lossy(&g.stdout),
        String::from_utf8_lossy(&g.stderr)
    );

    // Every record in the log agrees with itself and with what it refers to.
    let (_server, url) = serve_log(&format!("{d}/log"));
    let get = |path: &str| -> Value {
        let (status, body) = http_get(&format!("{url}{path}"));
        assert_eq!(status, 200, "{path}");
        serde_json::from_slice(&body).unwrap()
    };
    let size = get("/api/v1/log")["size"].as_u64().unwrap();
    let records: Vec<Value> = (0..size)
        .map(|i| get(&format!("/api/v1/entries/{i}"))["record"].clone())
        .collect();
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for (i, r) in records.iter().enumerate() {
        let kind = r["kind"].as_str().unwrap_or("");
        let signer = r["signer"]["name"].as_str().unwrap_or("");
        let b = &r["body"];
        let referred = |field: &str| &records[b[field]["index"].as_u64().unwrap() as usize];
        let ok = match kind {
            "request" | "emergency" => {
                let j = b["jurisdiction"].as_str().unwrap();
                key_of(signer, j)
                    && jurisdiction_fits(
                        j,
                        b["legal_basis"].as_str().unwrap(),
                        b["issuing_authority"]["name"].as_str().unwrap(),
                        b["issuing_authority"]["type"].as_str().unwrap(),
                    )
            }
            "ratification" => {
                let e = referred("emergency");
                e["kind"] == "emergency"
                    && signer.contains(".courts.")
                    && key_of(signer, e["body"]["jurisdiction"].as_str().unwrap())
            }
            "extension" => {
                let e = referred("entry");
                signer.contains(".courts.")
                    && key_of(signer, e["body"]["jurisdiction"].as_str().unwrap())
            }
            "outcome" | "withdrawal" | "disclosure" => {
                referred("entry")["signer"]["name"] == signer
            }
            "release" => referred("entry")["body"]["provider"] == signer,
            _ => continue,
        };
        assert!(ok, "entry {i} is not coherent: {r}");
        *seen.entry(kind.to_owned()).or_default() += 1;
    }
    for k in [
        "request",
        "ratification",
        "release",
        "outcome",
        "disclosure",
    ] {
        assert!(seen.contains_key(k), "no {k} in the demo log: {seen:?}");
    }
}
