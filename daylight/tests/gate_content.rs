//! A provider's standards through the binary, with real processes: a log
//! with two witnesses, the agency's request, `gate policy`'s starting set of
//! content lines (which allows it), a content line that refuses it (`DENY
//! <reason>`), `gate verify --refusal-key ... --submit` logging the refusal
//! (the log takes it and it names the entry), and `gate publish-policy`
//! putting the policy's content lines in the log.

// Test code: a panic is how a failed expectation is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{daylight, gate_policy, http_get, submit_request, witnessed_log};
use daylight_schemas::content_policy::ContentLine;
use daylight_schemas::{Body, RefusalReason, SignedRecord};

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

/// The log's view of entry `index`.
fn entry(url: &str, index: u64) -> serde_json::Value {
    let (status, body) = http_get(&format!("{url}/api/v1/entries/{index}"));
    assert_eq!(status, 200, "{}", text(&body));
    serde_json::from_slice(&body).unwrap()
}

/// The first index of a tlog-proof (`c2sp.org/tlog-proof@v1`, then `index N`).
fn proof_index(proof: &Path) -> u64 {
    let t = std::fs::read_to_string(proof).unwrap();
    t.lines()
        .find_map(|l| l.strip_prefix("index "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn content_lines_refuse_and_refusals_and_policies_reach_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).to_str().unwrap().to_owned();
    let log = witnessed_log(tmp.path(), "log.test/content", true);
    let url = log.url.clone();

    // The agency's request: US-NY, a court, content/traffic/stored_keys,
    // two targets, valid 31 days.
    let bundle = submit_request(&url, &p("agency.key"), tmp.path(), "bundle", |v| {
        v["provider"] = "messenger.example".into();
    });
    let (entry_file, proof_file) = (bundle.join("entry"), bundle.join("proof"));
    let index = proof_index(&proof_file);
    let entry_bytes = std::fs::read(&entry_file).unwrap();
    let leaf_hash = daylight_core::leaf_hash(&entry_bytes).to_hex();

    // `gate policy` writes the starting set, each line commented; it allows
    // this request.
    let starting = gate_policy(&url, "messenger.example", &[]);
    for line in [
        "daylight-issuers allow court",
        "daylight-categories deny device_unlock",
        "daylight-max-targets 5",
        "daylight-max-validity-days 90",
    ] {
        let at = starting
            .lines()
            .position(|l| l == line)
            .unwrap_or_else(|| panic!("no {line:?} in\n{starting}"));
        let above = starting.lines().nth(at - 1).unwrap();
        assert!(above.starts_with("# "), "{line} has no comment: {above}");
    }
    // The commented-out examples parse once uncommented.
    for example in [
        "# daylight-jurisdictions allow",
        "# daylight-offences allow",
    ] {
        let l = starting.lines().find(|l| l.starts_with(example)).unwrap();
        ContentLine::parse(l.trim_start_matches("# ")).unwrap();
    }
    std::fs::write(p("policy"), &starting).unwrap();
    // `gate verify` of the bundle's entry with `proof` (a file in tmp):
    // exit code, standard output and error.
    let verify_with = |policy: &str, proof: &str, extra: &[&str]| {
        let (policy, entry, proof) = (p(policy), p("bundle/entry"), p(proof));
        let mut args = vec![
            "gate", "verify", "--policy", &policy, "--entry", &entry, "--proof", &proof,
        ];
        args.extend_from_slice(extra);
        let o = daylight(&args);
        (o.status.code(), text(&o.stdout), text(&o.stderr))
    };
    let verify = |policy: &str, extra: &[&str]| verify_with(policy, "bundle/proof", extra);
    let (code, line, err) = verify("policy", &[]);
    assert_eq!(code, Some(0), "{line} {err}");
    assert!(line.starts_with("ALLOW request "), "{line}");

    // A provider that refuses US requests: DENY with the reason's code.
    std::fs::write(
        p("strict"),
        format!("{starting}\ndaylight-jurisdictions deny US\n"),
    )
    .unwrap();
    let (code, line, _) = verify("strict", &[]);
    assert_eq!(code, Some(1), "{line}");
    assert!(line.starts_with("DENY jurisdiction_denied: "), "{line}");
    assert_eq!(line.lines().count(), 1, "{line}");

    // A non-content refusal writes no refusal record.
    let provider_key = p("provider.key");
    let refusal = p("refusal.json");
    let log_refusal = [
        "--refusal-key",
        provider_key.as_str(),
        "--refusal-out",
        refusal.as_str(),
        "--submit",
        url.as_str(),
    ];
    let broken = p("broken.proof");
    let mut proof = std::fs::read(&proof_file).unwrap();
    let last = proof.len() - 10;
    proof[last] ^= 1;
    std::fs::write(&broken, proof).unwrap();
    let (code, line, _) = verify_with("strict", "broken.proof", &log_refusal);
    assert_eq!(code, Some(1), "{line}");
    assert!(!line.starts_with("DENY jurisdiction_denied"));
    assert!(!Path::new(&refusal).exists());

    // The agency's key cannot sign a refusal: usage error, nothing written.
    let (code, _, err) = verify(
        "strict",
        &["--refusal-key", &p("agency.key"), "--refusal-out", &refusal],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("refusal key "), "{err}");
    assert!(!Path::new(&refusal).exists());

    // The refusal, signed by the provider and submitted: the log takes it.
    let (code, line, err) = verify("strict", &log_refusal);
    assert_eq!(code, Some(1), "{line} {err}");
    assert!(line.starts_with("DENY jurisdiction_denied: "), "{line}");
    let logged: u64 = line
        .trim()
        .rsplit_once(" logged at index ")
        .unwrap_or_else(|| panic!("{line}"))
        .1
        .parse()
        .unwrap();
    assert!(logged > index);
    // The record names the request entry and the reason, nothing else.
    let record = SignedRecord::parse(&std::fs::read(&refusal).unwrap()).unwrap();
    let Body::Refusal(body) = record.body() else {
        panic!("{}", record.kind())
    };
    assert_eq!(body.entry.index.get(), index);
    assert_eq!(body.entry.leaf_hash.to_hex(), leaf_hash);
    assert_eq!(body.reason, RefusalReason::JurisdictionDenied);
    assert_eq!(record.log(), Some("log.test/content"));
    assert!(!text(record.as_bytes()).contains("acct:"));
    let view = entry(&url, logged);
    assert_eq!(
        view["leaf_hash"].as_str().unwrap(),
        daylight_core::leaf_hash(record.as_bytes()).to_hex()
    );
    let shown = view.to_string();
    assert!(shown.contains("refusal"), "{shown}");
    assert!(shown.contains(&leaf_hash), "{shown}");

    // The receipt is never overwritten.
    let (code, _, err) = verify(
        "strict",
        &["--refusal-key", &provider_key, "--refusal-out", &refusal],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("never overwritten"), "{err}");

    // The provider publishes its standards: a `policy` entry holding the
    // content lines only.
    let publish = |policy: &str, key: &str| {
        daylight(&[
            "gate",
            "publish-policy",
            "--policy",
            &p(policy),
            "--key",
            &p(key),
            "--log",
            &url,
        ])
    };
    let o = publish("strict", "provider.key");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let published: u64 = text(&o.stdout).trim().parse().unwrap();
    assert!(published > logged);
    let shown = entry(&url, published).to_string();
    assert!(shown.contains("\"policy\""), "{shown}");
    assert!(shown.contains("daylight-jurisdictions deny US"), "{shown}");
    assert!(shown.contains("daylight-max-targets 5"), "{shown}");
    assert!(!shown.contains("daylight-agency"), "{shown}");
    assert!(!shown.contains("witness"), "{shown}");

    // A policy without content lines has nothing to publish; the agency's
    // key is not the provider's.
    let bare: String = starting
        .lines()
        .filter(|l| ContentLine::parse(l).is_err())
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(p("bare"), bare).unwrap();
    for (policy, key, says) in [
        ("bare", "provider.key", "no content lines"),
        ("strict", "agency.key", "policy key "),
    ] {
        let o = publish(policy, key);
        assert_ne!(o.status.code(), Some(0));
        assert!(text(&o.stderr).contains(says), "{}", text(&o.stderr));
    }
}
