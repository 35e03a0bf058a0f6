//! Every validation rule has a record that breaks it and gets its named
//! error, both when the record is parsed (validly signed, so the rule and
//! not the signature refuses it) and, where the body can be typed at all,
//! when it is built with `Record::new`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::*;
use daylight_core::KeyType;
use daylight_schemas::{Body, Kind, Record, SignedRecord};
use serde_json::{json, Value};

fn body_from(kind: Kind, v: Value) -> Result<Body, serde_json::Error> {
    use serde_json::from_value as f;
    Ok(match kind {
        Kind::Request => Body::Request(f(v)?),
        Kind::Emergency => Body::Emergency(f(v)?),
        Kind::Ratification => Body::Ratification(f(v)?),
        Kind::Extension => Body::Extension(f(v)?),
        Kind::Disclosure => Body::Disclosure(f(v)?),
        Kind::Release => Body::Release(f(v)?),
        Kind::Withdrawal => Body::Withdrawal(f(v)?),
        Kind::Outcome => Body::Outcome(f(v)?),
        Kind::Registry => Body::Registry(f(v)?),
        Kind::Refusal => Body::Refusal(f(v)?),
        Kind::Policy => Body::Policy(f(v)?),
    })
}

struct Case {
    what: &'static str,
    kind: Kind,
    code: &'static str,
    edit: Box<dyn Fn(&mut Value)>,
}

fn case(
    what: &'static str,
    kind: Kind,
    code: &'static str,
    edit: impl Fn(&mut Value) + 'static,
) -> Case {
    Case {
        what,
        kind,
        code,
        edit: Box::new(edit),
    }
}

fn cases() -> Vec<Case> {
    use Kind::*;
    vec![
        // Dates in order.
        case(
            "valid_from equals valid_until",
            Request,
            "dates_out_of_order",
            |v| v["body"]["valid_from"] = json!("2026-08-31T00:00:00Z"),
        ),
        case(
            "valid_from after valid_until",
            Emergency,
            "dates_out_of_order",
            |v| v["body"]["valid_from"] = json!("2026-08-05T00:00:00Z"),
        ),
        case(
            "validity over before creation",
            Request,
            "dates_out_of_order",
            |v| {
                v["body"]["valid_from"] = json!("2026-07-01T00:00:00Z");
                v["body"]["valid_until"] = json!("2026-08-02T09:05:00Z");
            },
        ),
        case(
            "data period backwards",
            Request,
            "dates_out_of_order",
            |v| {
                v["body"]["data_period"] =
                    json!({"from": "2026-06-01T00:00:00Z", "until": "2026-05-01T00:00:00Z"})
            },
        ),
        case(
            "ratify_by at creation",
            Emergency,
            "dates_out_of_order",
            |v| v["body"]["ratify_by"] = json!("2026-08-02T09:05:00Z"),
        ),
        case(
            "extension seals until the past",
            Extension,
            "dates_out_of_order",
            |v| v["body"]["sealed_until"] = json!("2026-08-01T00:00:00Z"),
        ),
        case(
            "release after its receipt",
            Release,
            "dates_out_of_order",
            |v| v["body"]["released_at"] = json!("2026-08-02T09:05:01Z"),
        ),
        // Sealed-until not before valid-until.
        case(
            "sealed before valid_until",
            Request,
            "sealed_before_valid_until",
            |v| v["body"]["sealed_until"] = json!("2026-08-30T23:59:59Z"),
        ),
        case(
            "emergency sealed before valid_until",
            Emergency,
            "sealed_before_valid_until",
            |v| v["body"]["sealed_until"] = json!("2026-08-03T00:00:00Z"),
        ),
        // Emergency deadline within the maximum (48 hours after creation).
        case(
            "ratify_by 48h + 1s",
            Emergency,
            "emergency_deadline_too_long",
            |v| v["body"]["ratify_by"] = json!("2026-08-04T09:05:01Z"),
        ),
        case(
            "ratify_by a month away",
            Emergency,
            "emergency_deadline_too_long",
            |v| v["body"]["ratify_by"] = json!("2026-09-02T09:05:00Z"),
        ),
        // Target count equals the number of commitments.
        case(
            "count above commitments",
            Request,
            "target_count_mismatch",
            |v| v["body"]["target_count"] = json!(3),
        ),
        case(
            "count below commitments",
            Emergency,
            "target_count_mismatch",
            |v| v["body"]["target_count"] = json!(0),
        ),
        case(
            "commitment removed",
            Request,
            "target_count_mismatch",
            |v| {
                v["body"]["targets"].as_array_mut().unwrap().pop();
            },
        ),
        case("no targets", Request, "no_targets", |v| {
            v["body"]["targets"] = json!([]);
            v["body"]["target_count"] = json!(0);
        }),
        case("release of zero targets", Release, "no_targets", |v| {
            v["body"]["targets_released"] = json!(0)
        }),
        // Known data categories.
        case(
            "unknown data category",
            Request,
            "unknown_data_category",
            |v| v["body"]["data_categories"] = json!(["content", "thoughts"]),
        ),
        case(
            "upper-case data category",
            Emergency,
            "unknown_data_category",
            |v| v["body"]["data_categories"] = json!(["Location"]),
        ),
        case("no data category", Request, "no_data_categories", |v| {
            v["body"]["data_categories"] = json!([])
        }),
        // Well-formed country codes.
        case("unassigned country", Request, "bad_country_code", |v| {
            v["body"]["jurisdiction"] = json!("XX")
        }),
        case("lower-case country", Request, "bad_country_code", |v| {
            v["body"]["jurisdiction"] = json!("us")
        }),
        case("UK is not ISO 3166-1", Emergency, "bad_country_code", |v| {
            v["body"]["jurisdiction"] = json!("UK")
        }),
        case("alpha-3", Request, "bad_country_code", |v| {
            v["body"]["jurisdiction"] = json!("USA")
        }),
        case("bad subdivision", Request, "bad_country_code", |v| {
            v["body"]["jurisdiction"] = json!("US-york")
        }),
        // Closed code lists.
        case("unknown offence", Request, "unknown_code", |v| {
            v["body"]["offence"] = json!("jaywalking")
        }),
        case("unknown issuer type", Request, "unknown_code", |v| {
            v["body"]["issuing_authority"]["type"] = json!("oracle")
        }),
        case("unknown target type", Emergency, "unknown_code", |v| {
            v["body"]["target_type"] = json!("brain")
        }),
        case("unknown ground", Emergency, "unknown_code", |v| {
            v["body"]["ground"] = json!("curiosity")
        }),
        case("unknown decision", Ratification, "unknown_code", |v| {
            v["body"]["decision"] = json!("maybe")
        }),
        case("unknown seal reason", Extension, "unknown_code", |v| {
            v["body"]["reason"] = json!("because")
        }),
        case(
            "unknown withdrawal reason",
            Withdrawal,
            "unknown_code",
            |v| v["body"]["reason"] = json!("bored"),
        ),
        case("unknown role", Registry, "unknown_code", |v| {
            v["body"]["role"] = json!("auditor")
        }),
        case(
            "witness with a note key",
            Registry,
            "bad_registry_entry",
            |v| v["body"]["role"] = json!("witness"),
        ),
        case(
            "rotation without the old key",
            Registry,
            "bad_registry_entry",
            |v| v["body"]["action"] = json!("rotate"),
        ),
        case("unknown refusal reason", Refusal, "unknown_code", |v| {
            v["body"]["reason"] = json!("we_dislike_it")
        }),
        case(
            "refused after created",
            Refusal,
            "dates_out_of_order",
            |v| v["body"]["refused_at"] = json!("2099-01-01T00:00:00Z"),
        ),
        case("policy without lines", Policy, "bad_policy_line", |v| {
            v["body"]["lines"] = json!([])
        }),
        case(
            "policy line that is not a content line",
            Policy,
            "bad_policy_line",
            |v| v["body"]["lines"] = json!(["witness w k"]),
        ),
        case(
            "policy line that does not parse",
            Policy,
            "bad_policy_line",
            |v| v["body"]["lines"] = json!(["daylight-max-targets 0"]),
        ),
        case("unknown registry action", Registry, "unknown_code", |v| {
            v["body"]["action"] = json!("suspend")
        }),
        // Times, texts and keys are well-formed.
        case("time with fraction", Request, "bad_time", |v| {
            v["body"]["valid_from"] = json!("2026-08-01T00:00:00.5Z")
        }),
        case("time with offset", Request, "bad_time", |v| {
            v["created"] = json!("2026-08-02T11:05:00+02:00")
        }),
        case("impossible date", Release, "bad_time", |v| {
            v["body"]["released_at"] = json!("2026-02-30T00:00:00Z")
        }),
        case("control character", Request, "bad_text", |v| {
            v["body"]["legal_basis"] = json!("18 U.S.C.\u{7} 2518")
        }),
        case("padded text", Ratification, "bad_text", |v| {
            v["body"]["case_reference"] = json!(" 351 Gs 88/26")
        }),
        case("empty text", Request, "bad_text", |v| {
            v["body"]["issuing_authority"]["name"] = json!("")
        }),
        case("overlong text", Request, "bad_text", |v| {
            v["body"]["case_reference"] = json!("x".repeat(201))
        }),
        case("provider name with a space", Request, "bad_key", |v| {
            v["body"]["provider"] = json!("messenger example")
        }),
        case("provider name with a plus", Emergency, "bad_key", |v| {
            v["body"]["provider"] = json!("messenger+example")
        }),
        case(
            "registry key of cosignature type",
            Registry,
            "bad_registry_entry",
            |v| {
                let k = agency().with_key_type(KeyType::CosignatureV1);
                v["body"]["key"] = json!(k.verifier().to_string());
            },
        ),
        case(
            "registry key with a wrong key ID",
            Registry,
            "bad_key",
            |v| {
                let k = v["body"]["key"]
                    .as_str()
                    .unwrap()
                    .replace("+7a1f96c0+", "+7a1f96c1+");
                v["body"]["key"] = json!(k);
            },
        ),
        // Outcomes agree with themselves.
        case(
            "prevented without encountered",
            Outcome,
            "inconsistent_outcome",
            |v| {
                v["body"]["encryption_encountered"] = json!(false);
                v["body"]["encryption_prevented_access"] = json!(true);
            },
        ),
        case(
            "more incriminating than intercepted",
            Outcome,
            "inconsistent_outcome",
            |v| v["body"]["incriminating_communications"] = json!(1841),
        ),
        // Disclosures name each item once, and something.
        case(
            "target opened twice",
            Disclosure,
            "duplicate_disclosure_item",
            |v| {
                let t = v["body"]["targets_opened"][0].clone();
                v["body"]["targets_opened"].as_array_mut().unwrap().push(t);
            },
        ),
        case(
            "target opened and withheld",
            Disclosure,
            "duplicate_disclosure_item",
            |v| v["body"]["targets_withheld"][0]["position"] = json!(0),
        ),
        case(
            "document opened and withheld",
            Disclosure,
            "duplicate_disclosure_item",
            |v| v["body"]["order_document_withheld"] = json!("national_security"),
        ),
        case("empty disclosure", Disclosure, "empty_disclosure", |v| {
            v["body"]["targets_opened"] = json!([]);
            v["body"]["targets_withheld"] = json!([]);
            v["body"]
                .as_object_mut()
                .unwrap()
                .remove("order_document_opened");
        }),
        case("positions out of order", Disclosure, "noncanonical", |v| {
            v["body"]["targets_withheld"] = json!([
                {"position": 3, "reason": "national_security"},
                {"position": 2, "reason": "national_security"}
            ])
        }),
        // References are well-formed.
        case("short leaf hash", Release, "malformed", |v| {
            v["body"]["entry"]["leaf_hash"] = json!("abcd")
        }),
        case("short commitment", Request, "malformed", |v| {
            v["body"]["targets"][0] = json!("00")
        }),
    ]
}

#[test]
fn each_rule_has_a_record_that_breaks_it() {
    let sealed = sealed_examples();
    let mut codes_seen = BTreeSet::new();
    for c in cases() {
        let (_, record, _) = sealed.iter().find(|(k, _, _)| *k == c.kind).unwrap();
        let key = signer_for(c.kind);
        let mut v = value_of(record);
        (c.edit)(&mut v);
        let bytes = sign_value(v.clone(), &key);
        let err = SignedRecord::parse(&bytes).expect_err(c.what);
        assert_eq!(err.code(), c.code, "{}: parse gave {err}", c.what);
        // The same content, typed and built directly, breaks the same rule
        // (a body that does not even type cannot be built: parse is the only path).
        if let Ok(body) = body_from(c.kind, v["body"].clone()) {
            if let Ok(created) = daylight_schemas::Timestamp::parse(v["created"].as_str().unwrap())
            {
                let err = Record::new(created.get(), body).expect_err(c.what);
                assert_eq!(err.code(), c.code, "{}: Record::new gave {err}", c.what);
            }
        }
        codes_seen.insert(c.code);
    }
    for rule in [
        "dates_out_of_order",
        "sealed_before_valid_until",
        "emergency_deadline_too_long",
        "target_count_mismatch",
        "no_targets",
        "unknown_data_category",
        "no_data_categories",
        "bad_country_code",
        "unknown_code",
        "bad_time",
        "bad_text",
        "bad_key",
        "inconsistent_outcome",
        "duplicate_disclosure_item",
        "empty_disclosure",
    ] {
        assert!(codes_seen.contains(rule), "no case for {rule}");
    }
}

#[test]
fn rule_boundaries_are_allowed() {
    let sealed = sealed_examples();
    type Edit = Box<dyn Fn(&mut Value)>;
    let edits: Vec<(Kind, Edit)> = vec![
        // Exactly 48 hours.
        (
            Kind::Emergency,
            Box::new(|v| v["body"]["ratify_by"] = json!("2026-08-04T09:05:00Z")),
        ),
        // Sealed exactly until valid_until.
        (
            Kind::Request,
            Box::new(|v| v["body"]["sealed_until"] = json!("2026-08-31T00:00:00Z")),
        ),
        // Released at the same second as the receipt.
        (
            Kind::Release,
            Box::new(|v| v["body"]["released_at"] = json!("2026-08-02T09:05:00Z")),
        ),
        // Encryption met but not in the way; all incriminating.
        (
            Kind::Outcome,
            Box::new(|v| {
                v["body"]["encryption_prevented_access"] = json!(false);
                v["body"]["incriminating_communications"] = json!(1840);
            }),
        ),
        // A subdivision code and 200 characters of text.
        (
            Kind::Request,
            Box::new(|v| {
                v["body"]["jurisdiction"] = json!("GB-ENG");
                v["body"]["case_reference"] = json!("é".repeat(200));
            }),
        ),
    ];
    for (kind, edit) in edits {
        let (_, record, _) = sealed.iter().find(|(k, _, _)| *k == kind).unwrap();
        let key = signer_for(kind);
        let mut v = value_of(record);
        edit(&mut v);
        let r = SignedRecord::parse(&sign_value(v, &key)).unwrap();
        r.verify_signature(key.verifier()).unwrap();
    }
}

#[test]
fn numbers_beyond_two_to_the_53_are_refused() {
    // RFC 8785 writes numbers as IEEE doubles: above 2^53-1 integers are no
    // longer exact, so a record never holds one.
    let (record, _) = sealed(Kind::Withdrawal);
    let text = std::str::from_utf8(record.as_bytes()).unwrap();
    for (n, code) in [
        ("9007199254740992", "noncanonical"),
        ("18446744073709551616", "noncanonical"),
    ] {
        let bad = text.replacen("\"index\":40", &format!("\"index\":{n}"), 1);
        assert_ne!(bad, text);
        assert_eq!(
            SignedRecord::parse(bad.as_bytes()).unwrap_err().code(),
            code,
            "{n}"
        );
    }
    let ok = text.replacen("\"index\":40", "\"index\":9007199254740991", 1);
    let r = SignedRecord::parse(ok.as_bytes()).unwrap();
    assert_eq!(r.references()[0].index.0, 9007199254740991);
}
