//! `daylight demo` end to end, as a user runs it: its log holds only
//! coherent records (each request's statute, court and agency belong to its
//! jurisdiction; follow-ups are signed by a court of the same jurisdiction,
//! the same agency or the addressed provider), each provider publishes its
//! standards and refuses exactly the requests they refuse (and releases none
//! of those), the auditor finds only the rule breaks the demo makes on
//! purpose, the ready bundle passes the gate, and the recovery command it
//! prints gets the bundle's target key back from two of its three
//! custodians, each of which logged its receipt.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{daylight, gate_verify, http_get, serve_log, spawn};
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

/// Why the content lines `policy` refuse a request `body` (its reason
/// code), if they do. Written out here for the lines the demo publishes,
/// independently of the schemas crate's rules; any other line fails the test.
fn refused_by(policy: &[String], body: &Value) -> Option<&'static str> {
    let day = |f: &str| {
        chrono::DateTime::parse_from_rfc3339(body[f].as_str().unwrap())
            .unwrap()
            .timestamp()
    };
    for line in policy {
        let words: Vec<&str> = line.split_whitespace().collect();
        let refused = match words.as_slice() {
            ["daylight-jurisdictions", "deny", codes @ ..] => {
                let j = body["jurisdiction"].as_str().unwrap();
                codes
                    .iter()
                    .any(|c| j == *c || j.starts_with(&format!("{c}-")))
                    .then_some("jurisdiction_denied")
            }
            ["daylight-issuers", "allow", types @ ..] => {
                let t = body["issuing_authority"]["type"].as_str().unwrap();
                (!types.contains(&t)).then_some("issuer_not_allowed")
            }
            ["daylight-max-targets", n] => (body["target_count"].as_u64().unwrap()
                > n.parse::<u64>().unwrap())
            .then_some("too_many_targets"),
            ["daylight-max-validity-days", n] => ((day("valid_until") - day("valid_from"))
                > n.parse::<i64>().unwrap() * 86_400)
                .then_some("validity_too_long"),
            _ => panic!("the demo publishes a line this test does not know: {line}"),
        };
        if refused.is_some() {
            return refused;
        }
    }
    None
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
    // The demo listens here and runs its witnesses on the next three ports,
    // its custodians on the three after them and its mirror after those.
    let first_port = common::free_port_run(8);
    let listen = format!("127.0.0.1:{first_port}");
    let o = daylight(&[
        "demo",
        "--dir",
        d,
        "--listen",
        &listen,
        // The default: a smaller history missed an undisclosed withdrawn
        // request the auditor reports (about 4 s).
        "--requests",
        "300",
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
    // `daylight gate verify` of the demo's bundle in `{d}/NAME`, by the
    // provider's policy, for the target the bundle names.
    let gate_verify = |name: &str| {
        let bundle = |f: &str| format!("{d}/{name}/{f}");
        let target = std::fs::read_to_string(bundle("target")).unwrap();
        gate_verify(
            &format!("{d}/provider/policy"),
            &bundle("entry"),
            &bundle("proof"),
            &bundle("opening.json"),
            target.trim(),
            &[],
        )
    };
    let g = gate_verify("bundle");
    assert!(
        g.status.success(),
        "{}{}",
        String::from_utf8_lossy(&g.stdout),
        String::from_utf8_lossy(&g.stderr)
    );

    // The provider's gate holds its published standards: the GB request is
    // refused for its jurisdiction.
    let g = gate_verify("bundle-refused");
    let line = String::from_utf8_lossy(&g.stdout);
    assert_eq!(g.status.code(), Some(1), "{line}");
    assert!(line.starts_with("DENY jurisdiction_denied: "), "{line}");

    // The provider requires the demo's C2SP tlog-mirror: the bundle's
    // checkpoint carries its cosignature (the mirror's own copy is audited
    // below, once the demo serves again).
    let g = gate_verify("bundle");
    let line = String::from_utf8_lossy(&g.stdout);
    assert!(line.contains("1 tlog-mirror cosignatures"), "{line}");
    let mirror = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("mirror "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|u| u.strip_suffix("/checkpoint"))
        .unwrap_or_else(|| panic!("no mirror in the guide: {out}"))
        .to_owned();
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
    // Each provider's published standards, in log order: (index, lines).
    let mut standards = std::collections::BTreeMap::<String, Vec<(usize, Vec<String>)>>::new();
    // The entries refused and released, and why refused.
    let mut refused = std::collections::BTreeMap::<u64, String>::new();
    let mut released = std::collections::BTreeSet::<u64>::new();
    let providers = ["messenger.example", "cloud.example", "devices.example"];
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
            "release" | "refusal" => {
                let e = referred("entry");
                let index = b["entry"]["index"].as_u64().unwrap();
                // What the provider's standards in force here say of the request.
                let in_force = standards
                    .get(signer)
                    .and_then(|v| v.last())
                    .map(|(_, lines)| lines.clone())
                    .unwrap_or_default();
                let verdict = refused_by(&in_force, &e["body"]);
                if kind == "release" {
                    assert_eq!(
                        verdict, None,
                        "entry {i} releases a request its provider's standards refuse: {e}"
                    );
                    released.insert(index);
                } else {
                    assert_eq!(verdict, b["reason"].as_str(), "entry {i}: {r}");
                    refused.insert(index, b["reason"].as_str().unwrap().to_owned());
                }
                e["body"]["provider"] == signer
            }
            "policy" => {
                let lines = b["lines"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l.as_str().unwrap().to_owned())
                    .collect();
                standards
                    .entry(signer.to_owned())
                    .or_default()
                    .push((i, lines));
                providers.contains(&signer)
            }
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
        "policy",
        "refusal",
    ] {
        assert!(seen.contains_key(k), "no {k} in the demo log: {seen:?}");
    }

    // Every provider published its standards before the first request.
    let first_request = records
        .iter()
        .position(|r| r["kind"] == "request" || r["kind"] == "emergency")
        .unwrap();
    for p in providers {
        let versions = standards
            .get(p)
            .unwrap_or_else(|| panic!("{p} published no standards"));
        assert!(versions[0].0 < first_request, "{p}'s standards come late");
    }
    // One provider revised its standards later: every old line kept, more added.
    let revised: Vec<_> = standards.values().filter(|v| v.len() > 1).collect();
    assert_eq!(revised.len(), 1, "{standards:?}");
    let (old, new) = (&revised[0][0], &revised[0][1]);
    let created = |i: usize| records[i]["created"].as_str().unwrap().to_owned();
    assert!(new.0 > old.0 && created(new.0) > created(old.0));
    assert!(old.1.iter().all(|l| new.1.contains(l)) && new.1.len() > old.1.len());

    // No request is both refused and released; every refusal is one of the
    // standards' reasons (checked above against the lines in force).
    assert!(
        refused.keys().all(|i| !released.contains(i)),
        "refused and released: {refused:?} {released:?}"
    );
    assert!(!refused.is_empty());

    // Threshold custody: the demo split the bundle's target key among its
    // custodians and logged nothing for it yet. Served again, the printed
    // recovery command gets the key back.
    let shares_before = records
        .iter()
        .filter(|r| !r["body"]["share"].is_null())
        .count();
    assert_eq!(shares_before, 0, "a share was released before anyone asked");
    let recover: Vec<String> = out
        .lines()
        .find(|l| l.contains(" escrow recover "))
        .unwrap_or_else(|| panic!("no recovery command in the guide: {out}"))
        .split_whitespace()
        .skip(1)
        .map(str::to_owned)
        .collect();
    drop(_server);
    let _demo = spawn(&["demo", "--dir", d, "--listen", &listen]);
    let last_custodian = format!("127.0.0.1:{}", first_port + 6);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::net::TcpStream::connect(&last_custodian).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the resumed demo's custodians never listened"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let args: Vec<&str> = recover.iter().map(String::as_str).collect();
    let o = daylight(&args);
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let escrowed = std::fs::read_to_string(format!("{d}/provider/escrowed.key")).unwrap();
    assert_eq!(
        said.lines().last().unwrap_or(""),
        escrowed.trim(),
        "recovery gave another key: {said}"
    );
    // Two custodians' receipts for the bundle's entry are in the log now.
    let url = format!("http://{listen}");
    let bundle_index: u64 = std::fs::read_to_string(format!("{d}/bundle/index"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let (_, body) = http_get(&format!("{url}/api/v1/log"));
    let size = serde_json::from_slice::<Value>(&body).unwrap()["size"]
        .as_u64()
        .unwrap();
    let mut custodians = std::collections::BTreeSet::new();
    for i in records.len() as u64..size {
        let (_, body) = http_get(&format!("{url}/api/v1/entries/{i}"));
        let r = serde_json::from_slice::<Value>(&body).unwrap()["record"].clone();
        if r["kind"] == "release" && r["body"]["entry"]["index"] == bundle_index {
            assert_eq!(r["body"]["share"]["threshold"], 2, "{r}");
            custodians.insert(r["signer"]["name"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(custodians.len(), 2, "receipts by {custodians:?}");

    // The mirror's copy, read as tlog-tiles under its prefix, audits on its
    // own (the auditor reads only the mirror's URL).
    let audit = daylight(&[
        "audit",
        "--log",
        &mirror,
        "--dir",
        &format!("{d}/mirror-audit"),
    ]);
    let summary = String::from_utf8_lossy(&audit.stdout);
    assert!(
        matches!(audit.status.code(), Some(0) | Some(1)),
        "auditing the mirror: {summary}{}",
        String::from_utf8_lossy(&audit.stderr)
    );
    assert!(summary.contains("verified tree: "), "{summary}");
}
