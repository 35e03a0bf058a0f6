//! The provider's mirror end to end, with real processes: a log with two
//! witnesses, an agency's request, `daylight audit` keeping the provider's
//! mirror, `gate verify --mirror` allowing it; then the agency withdraws
//! the request, the mirror syncs, and the gate refuses (`withdrawn`).

// Test code: a panic is how a failed expectation is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{daylight, gate_policy, request_draft, witnessed_log};

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

#[test]
fn a_withdrawal_reaches_the_gate_through_the_providers_mirror() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).to_str().unwrap().to_owned();
    let log = witnessed_log(tmp.path(), "log.test/mirror", true);
    let url = log.url.clone();

    // The agency's request.
    request_draft(tmp.path(), "draft.json", |v| {
        v["provider"] = "messenger.example".into();
    });
    let submit = |draft: &str, out: &str| {
        common::agency_submit(&url, &p("agency.key"), &p(draft), &p(out))
            .parse::<u64>()
            .unwrap()
    };
    let index = submit("draft.json", "bundle");

    // The provider: a policy that requires a mirror at most an hour old.
    let policy = gate_policy(&url, "messenger.example", &[]);
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
