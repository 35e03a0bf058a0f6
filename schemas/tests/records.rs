//! Records: every example seals, parses and validates; round trips for every
//! kind; tampering anywhere is refused; non-canonical encodings are refused;
//! openings open their commitments and nothing else; no plaintext target in
//! a signed record.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::*;
use daylight_core::{leaf_hash, KeyType, LeafIndex};
use daylight_schemas::{
    Body, Draft, EntryRef, Kind, Record, Role, SchemaError, SignedRecord, MAX_RECORD_SIZE,
};
use serde_json::Value;

fn code(r: Result<impl std::fmt::Debug, SchemaError>) -> &'static str {
    r.unwrap_err().code()
}

#[test]
fn kind_names_are_stable() {
    let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "request",
            "emergency",
            "ratification",
            "extension",
            "disclosure",
            "release",
            "withdrawal",
            "outcome",
            "registry",
            "refusal",
            "policy"
        ]
    );
    for k in Kind::ALL {
        assert_eq!(k.as_str().parse::<Kind>().unwrap(), k);
    }
    assert_eq!(code("Request".parse::<Kind>()), "unknown_kind");
}

#[test]
fn every_example_seals_parses_and_validates() {
    let files: BTreeSet<String> = std::fs::read_dir(examples_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut want: BTreeSet<String> = Kind::ALL.iter().map(|k| format!("{k}.json")).collect();
    // The note saying these are fixed fixtures, not drafts to submit today.
    want.insert("README.md".into());
    assert_eq!(
        files, want,
        "one example draft per kind and its README, nothing else"
    );
    for (kind, record, opening) in sealed_examples() {
        assert_eq!(record.kind(), kind);
        let parsed = SignedRecord::parse(record.as_bytes()).unwrap();
        assert_eq!(parsed, record);
        parsed
            .verify_signature(signer_for(kind).verifier())
            .unwrap();
        assert!(kind.signed_by_log() || !kind.signer_roles().is_empty());
        assert_eq!(opening.entry_leaf_hash, record.leaf_hash());
        if record.body().target_commitments().is_some() || record.body().order_document().is_some()
        {
            if record.body().target_commitments().is_some() {
                opening.check_all(&record).unwrap();
            }
        } else {
            assert!(opening.targets.is_empty() && opening.order_document.is_none());
        }
    }
}

#[test]
fn round_trip_every_kind() {
    for (kind, record, _) in sealed_examples() {
        let bytes = record.to_bytes();
        let parsed = SignedRecord::parse(&bytes).unwrap();
        assert_eq!(parsed.to_bytes(), bytes, "{kind}");
        assert_eq!(parsed.body(), record.body());
        assert_eq!(parsed.created(), created());
        assert_eq!(parsed.signer(), record.signer());
        assert_eq!(parsed.leaf_hash(), leaf_hash(&bytes));
        // Re-signing the same content gives the same bytes (Ed25519 is deterministic).
        let again = Record::new(parsed.created(), parsed.body().clone())
            .unwrap()
            .sign(&signer_for(kind), LOG)
            .unwrap();
        assert_eq!(again.to_bytes(), bytes, "{kind}");
        // The JSON value round-trips through the canonical writer.
        assert_eq!(
            daylight_schemas::canonical::to_vec(&parsed.to_json_value()).unwrap(),
            bytes
        );
        // The signed message is the record without its signature member.
        let mut v = value_of(&parsed);
        v.as_object_mut().unwrap().remove("signature");
        let mut msg = daylight_schemas::SIGNATURE_DOMAIN.to_vec();
        msg.extend(daylight_schemas::canonical::to_vec(&v).unwrap());
        assert_eq!(parsed.signed_message(), msg);
    }
}

#[test]
fn accessors_for_the_gate() {
    let (r, _) = sealed(Kind::Request);
    assert_eq!(r.provider(), Some("messenger.example"));
    assert_eq!(r.valid_from(), Some(at("2026-08-01T00:00:00Z")));
    assert_eq!(r.valid_until(), Some(at("2026-08-31T00:00:00Z")));
    assert_eq!(r.sealed_until(), Some(at("2027-08-31T00:00:00Z")));
    assert_eq!(r.target_count(), Some(2));
    assert_eq!(r.ratify_by(), None);
    assert!(r.references().is_empty());
    let (e, _) = sealed(Kind::Emergency);
    assert_eq!(e.ratify_by(), Some(at("2026-08-04T09:00:00Z")));
    assert_eq!(e.provider(), Some("messenger.example"));
    let (rel, _) = sealed(Kind::Release);
    assert_eq!(rel.provider(), None);
    assert_eq!(rel.references()[0].index, LeafIndex(40));
    let (o, _) = sealed(Kind::Outcome);
    assert_eq!(o.references().len(), 1);
}

#[test]
fn flipped_byte_anywhere_is_refused() {
    let (record, _) = sealed(Kind::Request);
    let key = agency();
    let bytes = record.to_bytes();
    let mut parse_errors = 0;
    let mut signature_errors = 0;
    for i in 0..bytes.len() {
        for mask in [0x01u8, 0x20, 0x80] {
            let mut b = bytes.clone();
            b[i] ^= mask;
            match SignedRecord::parse(&b) {
                Err(_) => parse_errors += 1,
                Ok(r) => {
                    let e = r.verify_signature(key.verifier()).unwrap_err();
                    assert!(
                        matches!(e.code(), "bad_signature" | "signer_mismatch"),
                        "byte {i} ^ {mask:#x}: {e}"
                    );
                    signature_errors += 1;
                }
            }
        }
    }
    // Both paths are exercised.
    assert!(parse_errors > 0 && signature_errors > 0);
    // Truncation and extension too.
    for n in 0..bytes.len() {
        assert!(
            SignedRecord::parse(&bytes[..n]).is_err(),
            "truncated at {n}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(b' ');
    assert_eq!(code(SignedRecord::parse(&longer)), "noncanonical");
}

#[test]
fn signature_checks_key_identity() {
    let (record, _) = sealed(Kind::Request);
    assert_eq!(
        code(record.verify_signature(court().verifier())),
        "signer_mismatch"
    );
    // Same name, another key: another key ID.
    assert_eq!(
        code(record.verify_signature(key("agency.example", 99).verifier())),
        "signer_mismatch"
    );
    // The agency's secret as a cosignature key has another key ID too.
    let cosig = agency().with_key_type(KeyType::CosignatureV1);
    assert_eq!(
        code(record.verify_signature(cosig.verifier())),
        "signer_mismatch"
    );
    // A record re-signed by another key under the same signer name and ID fails.
    let mut v = value_of(&record);
    let forged = sign_value(v.clone(), &key("agency.example", 99));
    let mut forged_v: Value = serde_json::from_slice(&forged).unwrap();
    forged_v["signer"] = v["signer"].clone();
    let forged = daylight_schemas::canonical::to_vec(&forged_v).unwrap();
    let parsed = SignedRecord::parse(&forged).unwrap();
    assert_eq!(
        code(parsed.verify_signature(agency().verifier())),
        "bad_signature"
    );
    // A valid signature over other content does not carry over.
    v["body"]["case_reference"] = Value::String("other".into());
    let other = sign_value(v, &agency());
    let other = SignedRecord::parse(&other).unwrap();
    assert!(other.verify_signature(agency().verifier()).is_ok());
    assert_ne!(other.signature(), record.signature());
}

/// Replaces the first occurrence of `from` in the record's bytes.
fn edit(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let s = std::str::from_utf8(bytes).unwrap();
    assert!(s.contains(from), "{from:?} not in record");
    s.replacen(from, to, 1).into_bytes()
}

#[test]
fn noncanonical_encodings_are_refused() {
    let (record, _) = sealed(Kind::Request);
    let b = record.to_bytes();
    let s = std::str::from_utf8(&b).unwrap();
    let sorted_cats = r#"["content","stored_keys","traffic"]"#;
    assert!(s.contains(sorted_cats));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("space after colon", edit(&b, "\"kind\":", "\"kind\": ")),
        ("space after comma", edit(&b, ",\"kind\"", ", \"kind\"")),
        ("leading space", format!(" {s}").into_bytes()),
        ("trailing newline", format!("{s}\n").into_bytes()),
        (
            "pretty printed",
            serde_json::to_vec_pretty(&value_of(&record)).unwrap(),
        ),
        ("top-level key order", {
            // Move "body" to the end.
            let v = value_of(&record);
            let mut out = String::from("{");
            for k in [
                "created",
                "kind",
                "log",
                "signature",
                "signer",
                "version",
                "body",
            ] {
                if out.len() > 1 {
                    out.push(',');
                }
                out.push_str(&format!(
                    "\"{k}\":{}",
                    serde_json::to_string(&v[k]).unwrap()
                ));
            }
            out.push('}');
            out.into_bytes()
        }),
        (
            "nested key order",
            edit(
                &b,
                r#"{"name":"U.S. District Court for the Southern District of New York","type":"court"}"#,
                r#"{"type":"court","name":"U.S. District Court for the Southern District of New York"}"#,
            ),
        ),
        (
            "escaped letter",
            edit(&b, "\"request\"", "\"r\\u0065quest\""),
        ),
        (
            "escaped solidus",
            edit(
                &b,
                "\"case_reference\":\"SDNY",
                "\"case_reference\":\"\\/SDNY",
            ),
        ),
        ("escaped key", edit(&b, "\"kind\":", "\"\\u006bind\":")),
        (
            "duplicate top-level key",
            edit(
                &b,
                "\"kind\":\"request\"",
                "\"kind\":\"request\",\"kind\":\"request\"",
            ),
        ),
        (
            "duplicate nested key",
            edit(
                &b,
                "\"offence\":\"narcotics\"",
                "\"offence\":\"narcotics\",\"offence\":\"narcotics\"",
            ),
        ),
        (
            "version as 2.0",
            edit(&b, "\"version\":2}", "\"version\":2.0}"),
        ),
        (
            "version as 2e0",
            edit(&b, "\"version\":2}", "\"version\":2e0}"),
        ),
        (
            "count as 2.0",
            edit(&b, "\"target_count\":2", "\"target_count\":2.0"),
        ),
        (
            "negative zero",
            edit(&b, "\"target_count\":2", "\"target_count\":-0"),
        ),
        (
            "unsorted set",
            edit(&b, sorted_cats, r#"["traffic","content","stored_keys"]"#),
        ),
        (
            "repeated set member",
            edit(
                &b,
                sorted_cats,
                r#"["content","content","stored_keys","traffic"]"#,
            ),
        ),
        (
            "null for an absent optional field",
            edit(
                &b,
                "\"case_reference\":",
                "\"data_period\":null,\"case_reference\":",
            ),
        ),
    ];
    for (what, bytes) in cases {
        let err = SignedRecord::parse(&bytes).unwrap_err();
        assert_eq!(err.code(), "noncanonical", "{what}: {err}");
    }
    // Forms that are not even the right type.
    for (what, bytes) in [
        (
            "upper-case hex",
            edit(
                &b,
                &record.body().target_commitments().unwrap()[0].to_hex(),
                &record.body().target_commitments().unwrap()[0]
                    .to_hex()
                    .to_uppercase(),
            ),
        ),
        (
            "leading zero",
            edit(&b, "\"target_count\":2", "\"target_count\":02"),
        ),
        (
            "count as string",
            edit(&b, "\"target_count\":2", "\"target_count\":\"2\""),
        ),
        ("invalid utf-8", {
            let mut x = b.clone();
            let i = s.find("SDNY").unwrap();
            x[i] = 0xff;
            x
        }),
    ] {
        let err = SignedRecord::parse(&bytes).unwrap_err();
        assert_eq!(err.code(), "malformed", "{what}: {err}");
    }
}

#[test]
fn unknown_fields_versions_and_kinds_are_refused() {
    let (record, _) = sealed(Kind::Request);
    let key = agency();
    let v = value_of(&record);

    let mut top = v.clone();
    top["zzz"] = Value::from(1);
    assert_eq!(
        code(SignedRecord::parse(&sign_value(top, &key))),
        "unknown_field"
    );

    let mut body = v.clone();
    body["body"]["target_names"] = Value::from("x");
    let err = SignedRecord::parse(&sign_value(body, &key)).unwrap_err();
    assert_eq!(err, SchemaError::UnknownField("target_names".into()));

    let mut nested = v.clone();
    nested["body"]["issuing_authority"]["seal"] = Value::from(true);
    assert_eq!(
        code(SignedRecord::parse(&sign_value(nested, &key))),
        "unknown_field"
    );

    for missing in ["created", "body", "kind", "log", "version"] {
        let mut m = v.clone();
        m.as_object_mut().unwrap().remove(missing);
        let err = SignedRecord::parse(&sign_value(m, &key)).unwrap_err();
        assert_eq!(err, SchemaError::MissingField(missing.into()));
    }
    let mut no_sig = v.clone();
    no_sig.as_object_mut().unwrap().remove("signature");
    let no_sig = daylight_schemas::canonical::to_vec(&no_sig).unwrap();
    assert_eq!(code(SignedRecord::parse(&no_sig)), "missing_field");

    let mut m = v.clone();
    m["body"].as_object_mut().unwrap().remove("sealed_until");
    assert_eq!(
        SignedRecord::parse(&sign_value(m, &key)).unwrap_err(),
        SchemaError::MissingField("sealed_until".into())
    );

    for version in [0, 3, 100] {
        let mut m = v.clone();
        m["version"] = Value::from(version);
        assert_eq!(
            code(SignedRecord::parse(&sign_value(m, &key))),
            "unknown_version"
        );
    }
    let mut m = v.clone();
    m["version"] = Value::from(-1);
    assert_eq!(
        code(SignedRecord::parse(&sign_value(m, &key))),
        "unknown_version"
    );

    let mut m = v.clone();
    m["kind"] = Value::from("subpoena");
    assert_eq!(
        code(SignedRecord::parse(&sign_value(m, &key))),
        "unknown_kind"
    );

    // A request body under another kind's name does not parse as that kind.
    let mut m = v.clone();
    m["kind"] = Value::from("release");
    assert_eq!(
        code(SignedRecord::parse(&sign_value(m, &key))),
        "unknown_field"
    );

    for bad in [&b"[]"[..], b"null", b"\"request\"", b"", b"{", b"{}garbage"] {
        assert_eq!(code(SignedRecord::parse(bad)), "malformed", "{:?}", bad);
    }
    assert_eq!(code(SignedRecord::parse(b"{}")), "missing_field");
}

#[test]
fn size_cap() {
    // Bytes over the cap are refused before anything else.
    let big = vec![b' '; MAX_RECORD_SIZE + 1];
    assert_eq!(
        SignedRecord::parse(&big).unwrap_err(),
        SchemaError::TooLarge(MAX_RECORD_SIZE + 1)
    );
    // A draft whose record would exceed the cap does not seal.
    let (_, draft) = examples().into_iter().next().unwrap();
    let Draft::Request(mut d) = draft else {
        panic!()
    };
    d.targets = (0..1000)
        .map(|i| daylight_schemas::TargetId::new(&format!("acct:{i}")).unwrap())
        .collect();
    let err = Draft::Request(d.clone())
        .seal(&agency(), LOG, created(), &mut rng("big"))
        .unwrap_err();
    assert_eq!(err.code(), "too_large");
    // ... while one that fits does, right up to the limit.
    d.targets.truncate(900);
    let (r, _) = Draft::Request(d)
        .seal(&agency(), LOG, created(), &mut rng("big"))
        .unwrap();
    assert!(r.as_bytes().len() <= MAX_RECORD_SIZE && r.as_bytes().len() > 60_000);
    assert_eq!(SignedRecord::parse(r.as_bytes()).unwrap(), r);
}

#[test]
fn openings_open_their_commitments_only() {
    let (record, opening) = sealed(Kind::Request);
    assert_eq!(opening.check(&record, "acct:4815162342").unwrap(), 0);
    assert_eq!(opening.check(&record, "acct:1123581321").unwrap(), 1);
    opening.check_all(&record).unwrap();
    // A target the opening does not hold.
    assert_eq!(
        code(opening.check(&record, "acct:0000000000")),
        "target_not_in_opening"
    );
    // Nor one that differs by case or white space: identifiers are exact.
    assert_eq!(
        code(opening.check(&record, "ACCT:4815162342")),
        "target_not_in_opening"
    );
    // A wrong target at the right position does not open the commitment.
    let mut wrong_target = opening.clone();
    wrong_target.targets[0].target = daylight_schemas::TargetId::new("acct:4815162343").unwrap();
    assert_eq!(
        code(wrong_target.check(&record, "acct:4815162343")),
        "opening_mismatch"
    );
    // Swapped positions do not either.
    let mut swapped = opening.clone();
    swapped.targets.swap(0, 1);
    assert_eq!(
        code(swapped.check(&record, "acct:4815162342")),
        "opening_mismatch"
    );
    // A wrong salt does not.
    let mut wrong_salt = opening.clone();
    wrong_salt.targets[0].salt.0[31] ^= 1;
    assert_eq!(
        code(wrong_salt.check(&record, "acct:4815162342")),
        "opening_mismatch"
    );
    assert_eq!(code(wrong_salt.check_all(&record)), "opening_mismatch");
    // The other target still opens.
    assert_eq!(wrong_salt.check(&record, "acct:1123581321").unwrap(), 1);
    // A wrong order-document salt fails check_all.
    let mut wrong_doc = opening.clone();
    wrong_doc.order_document.as_mut().unwrap().salt.0[0] ^= 1;
    assert_eq!(code(wrong_doc.check_all(&record)), "opening_mismatch");
    // The same draft sealed again (fresh salts) is another record: the old
    // opening does not apply to it.
    let (_, draft) = examples().into_iter().next().unwrap();
    let (again, again_opening) = draft
        .seal(&agency(), LOG, created(), &mut rng("again"))
        .unwrap();
    assert_ne!(again.to_bytes(), record.to_bytes());
    assert_eq!(
        code(opening.check(&again, "acct:4815162342")),
        "opening_mismatch"
    );
    assert_eq!(again_opening.check(&again, "acct:4815162342").unwrap(), 0);
    // An opening against a record without targets.
    let (release, _) = sealed(Kind::Release);
    assert_eq!(
        code(opening.check(&release, "acct:4815162342")),
        "opening_mismatch"
    );
    // The opening file round-trips.
    let text = opening.to_json();
    assert_eq!(
        daylight_schemas::Opening::from_json(&text).unwrap(),
        opening
    );
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["extra"] = Value::from(1);
    assert_eq!(
        code(daylight_schemas::Opening::from_json(&v.to_string())),
        "unknown_field"
    );
    v.as_object_mut().unwrap().remove("extra");
    v["version"] = Value::from(2);
    assert_eq!(
        code(daylight_schemas::Opening::from_json(&v.to_string())),
        "unknown_version"
    );
    // Emergency without an order document: check_all wants none.
    let (em, em_opening) = sealed(Kind::Emergency);
    em_opening.check_all(&em).unwrap();
    assert_eq!(em_opening.check(&em, "+49 30 5550100").unwrap(), 0);
}

#[test]
fn no_plaintext_target_in_signed_records() {
    for kind in [Kind::Request, Kind::Emergency, Kind::Ratification] {
        let (record, opening) = sealed(kind);
        let text = std::str::from_utf8(record.as_bytes()).unwrap();
        for t in &opening.targets {
            let id = t.target.as_str();
            assert!(!text.contains(id), "{kind}: target {id} in record");
            // Nor its JSON-escaped, hex or lower-case forms.
            let json = serde_json::to_string(id).unwrap();
            assert!(!text.contains(&json[1..json.len() - 1]));
            assert!(!text.contains(&hex::encode(id)));
            assert!(!text.to_lowercase().contains(&id.to_lowercase()));
            // Nor its salt.
            assert!(!text.contains(&t.salt.to_hex()));
        }
        if let Some(doc) = &opening.order_document {
            assert!(
                !text.contains(&doc.sha256.to_hex()),
                "{kind}: document hash in record"
            );
            assert!(!text.contains(&doc.salt.to_hex()));
        }
    }
    // Many random-looking targets, none of them in the record.
    let (_, draft) = examples().into_iter().next().unwrap();
    let Draft::Request(mut d) = draft else {
        panic!()
    };
    d.targets = (0..50)
        .map(|i| daylight_schemas::TargetId::new(&format!("user-{:x}", i * 7919 + 13)).unwrap())
        .collect();
    let (r, o) = Draft::Request(d)
        .seal(&agency(), LOG, created(), &mut rng("many"))
        .unwrap();
    let text = std::str::from_utf8(r.as_bytes()).unwrap();
    for t in &o.targets {
        assert!(!text.contains(t.target.as_str()));
    }
    assert_eq!(r.target_count(), Some(50));
}

#[test]
fn drafts_refuse_bad_input() {
    let text = std::fs::read_to_string(examples_dir().join("request.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let mut m = v.clone();
    m["kind"] = Value::from("subpoena");
    assert_eq!(code(Draft::from_json(&m.to_string())), "unknown_kind");
    let mut m = v.clone();
    m["target_count"] = Value::from(2);
    assert_eq!(code(Draft::from_json(&m.to_string())), "unknown_field");
    let mut m = v.clone();
    m.as_object_mut().unwrap().remove("kind");
    assert_eq!(code(Draft::from_json(&m.to_string())), "missing_field");
    let mut m = v.clone();
    m["targets"] = serde_json::json!(["a", "a"]);
    let d = Draft::from_json(&m.to_string()).unwrap();
    assert_eq!(
        code(d.seal(&agency(), LOG, created(), &mut rng("x"))),
        "bad_target"
    );
    let mut m = v.clone();
    m["targets"] = serde_json::json!([" a"]);
    assert_eq!(code(Draft::from_json(&m.to_string())), "bad_target");
    let mut m = v.clone();
    m["targets"] = serde_json::json!([]);
    let d = Draft::from_json(&m.to_string()).unwrap();
    assert_eq!(
        code(d.seal(&agency(), LOG, created(), &mut rng("x"))),
        "no_targets"
    );
    let mut m = v.clone();
    m["data_categories"] = serde_json::json!(["content", "mind_reading"]);
    assert_eq!(
        code(Draft::from_json(&m.to_string())),
        "unknown_data_category"
    );
    // Data categories in any order and repeated are fine in a draft.
    let mut m = v.clone();
    m["data_categories"] = serde_json::json!(["traffic", "content", "traffic"]);
    Draft::from_json(&m.to_string())
        .unwrap()
        .seal(&agency(), LOG, created(), &mut rng("x"))
        .unwrap();
    // A broken salt source is caught.
    let d = Draft::from_json(&text).unwrap();
    assert_eq!(
        code(d.seal(&agency(), LOG, created(), &mut |b: &mut [u8]| b.fill(0))),
        "bad_randomness"
    );
    assert_eq!(
        code(d.seal(&agency(), LOG, created(), &mut |b: &mut [u8]| b.fill(7))),
        "bad_randomness"
    );
    // A cosignature key cannot sign records.
    let cosig = agency().with_key_type(KeyType::CosignatureV1);
    assert_eq!(
        code(d.seal(&cosig, LOG, created(), &mut rng("x"))),
        "bad_key"
    );
}

#[test]
fn constructors_for_the_log_and_the_gate() {
    let log = log_key();
    let ag = agency();
    let r = Record::registry_add(Role::Agency, ag.verifier(), created())
        .unwrap()
        .sign(&log, LOG)
        .unwrap();
    let parsed = SignedRecord::parse(r.as_bytes()).unwrap();
    parsed.verify_signature(log.verifier()).unwrap();
    let Body::Registry(b) = parsed.body() else {
        panic!()
    };
    assert_eq!(b.key.as_ref().unwrap().key(), ag.verifier());
    assert_eq!(b.role, Role::Agency);
    assert_eq!(b.action, daylight_schemas::RegistryAction::Add);
    let revoke = Record::registry_revoke(Role::Court, court().verifier(), created())
        .unwrap()
        .sign(&log, LOG)
        .unwrap();
    assert_eq!(SignedRecord::parse(revoke.as_bytes()).unwrap(), revoke);
    // A cosignature (witness) key is registrable only for a witness.
    let cosig = ag.with_key_type(KeyType::CosignatureV1);
    assert_eq!(
        code(Record::registry_add(
            Role::Agency,
            cosig.verifier(),
            created()
        )),
        "bad_registry_entry"
    );

    // The gate's release receipt for entry 7 of a request.
    let (req, _) = sealed(Kind::Request);
    let entry = EntryRef::to(&req, LeafIndex(7));
    let rel = Record::release(
        entry,
        2,
        at("2026-08-03T10:00:00Z"),
        at("2026-08-03T10:00:01Z"),
    )
    .unwrap()
    .sign(&provider(), LOG)
    .unwrap();
    let parsed = SignedRecord::parse(rel.as_bytes()).unwrap();
    parsed.verify_signature(provider().verifier()).unwrap();
    assert_eq!(parsed.references(), vec![entry]);
    // Sub-second times are cut to whole seconds.
    let t = at("2026-08-03T10:00:00.75Z");
    let rel2 = Record::release(entry, 1, t, t).unwrap();
    assert_eq!(rel2.created(), at("2026-08-03T10:00:00Z"));
}

#[test]
fn references_point_backwards_to_the_named_leaf() {
    let (req, _) = sealed(Kind::Request);
    let req_hash = req.leaf_hash();
    let (_, draft) = examples()
        .into_iter()
        .find(|(k, _)| *k == Kind::Withdrawal)
        .unwrap();
    let Draft::Withdrawal(mut w) = draft else {
        panic!()
    };
    w.entry = EntryRef::new(LeafIndex(5), req_hash);
    let (rec, _) = Draft::Withdrawal(w)
        .seal(&agency(), LOG, created(), &mut rng("w"))
        .unwrap();
    let lookup = |i: LeafIndex| {
        if i == LeafIndex(5) {
            Some(req_hash)
        } else if i.0 < 5 {
            Some(leaf_hash(b"other"))
        } else {
            None
        }
    };
    rec.check_references(LeafIndex(6), lookup).unwrap();
    rec.check_references(LeafIndex(100), lookup).unwrap();
    for own in [0, 4, 5] {
        assert_eq!(
            rec.check_references(LeafIndex(own), lookup).unwrap_err(),
            SchemaError::ReferenceNotBackwards {
                reference: 5,
                index: own
            }
        );
    }
    assert_eq!(
        code(rec.check_references(LeafIndex(6), |_| Some(leaf_hash(b"other")))),
        "reference_hash_mismatch"
    );
    assert_eq!(
        code(rec.check_references(LeafIndex(6), |_| None)),
        "reference_unknown"
    );
}

#[test]
fn disclosures_check_against_their_entry() {
    use daylight_schemas::{
        DisclosedDocument, DisclosedTarget, DisclosureBody, SealReason, WithheldTarget,
    };
    let (req, opening) = sealed(Kind::Request);
    let doc = opening.order_document.clone().unwrap();
    let good = DisclosureBody {
        entry: EntryRef::to(&req, LeafIndex(3)),
        targets_opened: vec![DisclosedTarget {
            position: 1,
            target: opening.targets[1].target.clone(),
            salt: opening.targets[1].salt,
        }],
        targets_withheld: vec![WithheldTarget {
            position: 0,
            reason: SealReason::RiskToPerson,
        }],
        order_document_opened: Some(DisclosedDocument {
            sha256: doc.sha256,
            salt: doc.salt,
        }),
        order_document_withheld: None,
    };
    good.check_against(&req).unwrap();
    let rec = Record::new(created(), Body::Disclosure(good.clone()))
        .unwrap()
        .sign(&agency(), LOG)
        .unwrap();
    assert_eq!(SignedRecord::parse(rec.as_bytes()).unwrap(), rec);

    let mut wrong_salt = good.clone();
    wrong_salt.targets_opened[0].salt.0[0] ^= 1;
    assert_eq!(code(wrong_salt.check_against(&req)), "opening_mismatch");
    let mut wrong_position = good.clone();
    wrong_position.targets_opened[0].position = 0;
    wrong_position.targets_withheld.clear();
    assert_eq!(code(wrong_position.check_against(&req)), "opening_mismatch");
    let mut out_of_range = good.clone();
    out_of_range.targets_withheld[0].position = 2;
    assert_eq!(code(out_of_range.check_against(&req)), "opening_mismatch");
    let mut wrong_doc = good.clone();
    wrong_doc.order_document_opened.as_mut().unwrap().sha256.0[0] ^= 1;
    assert_eq!(code(wrong_doc.check_against(&req)), "opening_mismatch");
    let (other, _) = sealed(Kind::Emergency);
    assert_eq!(code(good.check_against(&other)), "reference_hash_mismatch");
}

#[test]
fn records_are_bound_to_one_log_and_version_1_stays_readable() {
    let (record, _) = sealed(Kind::Request);
    assert_eq!(record.version(), 2);
    assert_eq!(record.log(), Some(LOG));
    record.check_log(LOG).unwrap();
    record.check_held_by(LOG).unwrap();
    // Another log refuses it, with its code.
    let err = record.check_log("other.example/log").unwrap_err();
    assert_eq!(err.code(), "wrong_log");
    assert_eq!(
        record
            .check_held_by("other.example/log")
            .unwrap_err()
            .code(),
        "wrong_log"
    );
    // The origin is under the signature: changing it breaks the signature.
    let moved = edit(
        record.as_bytes(),
        &format!("\"log\":\"{LOG}\""),
        "\"log\":\"other.example/log\"",
    );
    let moved = SignedRecord::parse(&moved).unwrap();
    assert_eq!(
        moved
            .verify_signature(agency().verifier())
            .unwrap_err()
            .code(),
        "bad_signature"
    );

    // Version 1: no log member; still parses and verifies, but no log takes a new one.
    let v1 = record.record().sign_version_1(&agency()).unwrap();
    assert_eq!(v1.version(), 1);
    assert!(!String::from_utf8_lossy(v1.as_bytes()).contains("\"log\""));
    assert!(String::from_utf8_lossy(v1.as_bytes()).ends_with("\"version\":1}"));
    let parsed = SignedRecord::parse(v1.as_bytes()).unwrap();
    parsed.verify_signature(agency().verifier()).unwrap();
    assert_eq!(parsed.log(), None);
    assert_eq!(parsed.check_log(LOG).unwrap_err().code(), "unbound_record");
    parsed.check_held_by(LOG).unwrap();
    // A version-1 record with a log member is not version 1.
    let mut v = value_of(&v1);
    v["log"] = Value::from(LOG);
    assert_eq!(
        code(SignedRecord::parse(&sign_value(v, &agency()))),
        "unknown_field"
    );
}

#[test]
fn registry_entries_fit_their_action_and_role() {
    let ag = agency();
    let new_ag = key("agency.example", 11);
    let other = court();
    let witness = key("w1.example", 12).with_key_type(KeyType::CosignatureV1);
    let t = created();
    // A rotation keeps the name and names the old key.
    let r = Record::registry_rotate(Role::Agency, ag.verifier(), new_ag.verifier(), None, t)
        .unwrap()
        .sign(&log_key(), LOG)
        .unwrap();
    SignedRecord::parse(r.as_bytes()).unwrap();
    assert_eq!(
        code(Record::registry_rotate(
            Role::Agency,
            ag.verifier(),
            other.verifier(),
            None,
            t
        )),
        "bad_registry_entry"
    );
    assert_eq!(
        code(Record::registry_rotate(
            Role::Agency,
            ag.verifier(),
            ag.verifier(),
            None,
            t
        )),
        "bad_registry_entry"
    );
    // The log's key: rotated with a transition end, never added or revoked.
    let log = log_key();
    let new_log = key("log.example", 13);
    let until = t + chrono::Duration::days(7);
    Record::registry_rotate(
        Role::Log,
        log.verifier(),
        new_log.verifier(),
        Some(until),
        t,
    )
    .unwrap();
    assert_eq!(
        code(Record::registry_rotate(
            Role::Log,
            log.verifier(),
            new_log.verifier(),
            None,
            t
        )),
        "bad_registry_entry"
    );
    assert_eq!(
        code(Record::registry_add(Role::Log, new_log.verifier(), t)),
        "bad_registry_entry"
    );
    assert_eq!(
        code(Record::registry_rotate(
            Role::Log,
            log.verifier(),
            new_log.verifier(),
            Some(t - chrono::Duration::days(1)),
            t
        )),
        "dates_out_of_order"
    );
    // Witnesses: cosignature keys with a URL; a quorum of at least one.
    Record::registry_witness(witness.verifier(), "https://w1.example/", None, t).unwrap();
    assert_eq!(
        code(Record::registry_witness(
            witness.verifier(),
            "ftp://w1.example/",
            None,
            t
        )),
        "bad_registry_entry"
    );
    assert_eq!(
        code(Record::registry_witness(
            ag.verifier(),
            "https://w1.example/",
            None,
            t
        )),
        "bad_registry_entry"
    );
    assert_eq!(
        code(Record::registry_add(Role::Witness, witness.verifier(), t)),
        "bad_registry_entry"
    );
    Record::registry_quorum(2, t).unwrap();
    assert_eq!(code(Record::registry_quorum(0, t)), "bad_registry_entry");
    Record::registry_revoke(Role::Witness, witness.verifier(), t).unwrap();
}
