//! Differential test of [`SignedRecord::parse`]: the parse as it was before
//! records were decoded straight from their bytes (a `serde_json::Value`
//! tree, typed decoding from it, a re-encoding through `Value` compared with
//! the bytes) is kept here word for word, and both must give the same
//! verdict for every input: equal records, or errors equal in variant and
//! message. The inputs: the sample record of every kind, in versions 2 and
//! 1; every single-byte deletion, duplication, flip and insertion of them;
//! canonical JSON with each member of each object, at any depth, removed,
//! replaced (null, numbers at and past 2^53 and u64, negative, fractional,
//! empty and odd strings, booleans, arrays, objects) or joined by an unknown
//! member; every kind name on every body; versions and duplicate, reordered
//! and spaced-out members; and the fuzzer's corpus where it is checked out.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use serde_json::{json, Value};

use super::*;

// ---------------------------------------------------------------------------
// The reference: the parse before the fast path, unchanged

fn reference_parse(bytes: &[u8]) -> Result<SignedRecord, SchemaError> {
    if bytes.len() > MAX_RECORD_SIZE {
        return Err(SchemaError::TooLarge(bytes.len()));
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| SchemaError::Malformed(format!("not JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(SchemaError::Malformed("a record is a JSON object".into()));
    };
    let version = match map.get("version") {
        None => return Err(SchemaError::MissingField("version".into())),
        Some(Value::Number(n)) => {
            if let Some(v) = n.as_u64().filter(|v| !SCHEMA_VERSIONS_READ.contains(v)) {
                return Err(SchemaError::UnknownVersion(v.to_string()));
            }
            if let Some(v) = n.as_i64().filter(|v| *v < 0) {
                return Err(SchemaError::UnknownVersion(v.to_string()));
            }
            n.as_u64().unwrap_or(SCHEMA_VERSION)
        }
        Some(_) => return Err(SchemaError::Malformed("version must be an integer".into())),
    };
    reference_parse_fields(bytes, map, version).map_err(|e| non_canonical(bytes).unwrap_or(e))
}

fn reference_parse_fields(
    bytes: &[u8],
    mut map: serde_json::Map<String, Value>,
    version: u64,
) -> Result<SignedRecord, SchemaError> {
    if let Some(k) = map
        .keys()
        .find(|k| !TOP_FIELDS.contains(&k.as_str()) || (version == 1 && *k == "log"))
    {
        return Err(SchemaError::UnknownField(clip(k)));
    }
    let mut take = |name: &str| {
        map.remove(name)
            .ok_or_else(|| SchemaError::MissingField(name.into()))
    };
    let kind = match take("kind")? {
        Value::String(s) => Kind::from_str(&s)?,
        _ => return Err(SchemaError::Malformed("kind must be a string".into())),
    };
    let created = match take("created")? {
        Value::String(s) => Timestamp::parse(&s)?,
        _ => return Err(SchemaError::Malformed("created must be a string".into())),
    };
    let signature = match take("signature")? {
        Value::String(s) => parse_signature_hex(&s).map_err(SchemaError::Malformed)?,
        _ => return Err(SchemaError::Malformed("signature must be a string".into())),
    };
    let signer: Signer =
        serde_json::from_value(take("signer")?).map_err(|e| SchemaError::from_serde(&e))?;
    let log = match version {
        1 => None,
        _ => Some(match take("log")? {
            Value::String(s) => Name::new(&s)?,
            _ => return Err(SchemaError::Malformed("log must be a string".into())),
        }),
    };
    let body = Body::from_value(kind, take("body")?)?;
    validate(created, &body)?;
    let record = Record { created, body };
    let encoded = reference_encode(&record, &signer, log.as_ref(), Some(&signature))?;
    if encoded.bytes != bytes {
        return Err(SchemaError::NonCanonical(format!(
            "{}; sets must be sorted and without repeats, and an absent optional field is omitted, not null",
            first_difference(bytes, &encoded.bytes)
        )));
    }
    Ok(SignedRecord {
        record,
        signer,
        log,
        signature,
        bytes: encoded.bytes,
        sig_start: encoded.sig_start,
        sig_end: encoded.sig_end,
    })
}

fn body_to_value(body: &Body) -> Result<Value, serde_json::Error> {
    match body {
        Body::Request(b) => serde_json::to_value(b),
        Body::Emergency(b) => serde_json::to_value(b),
        Body::Ratification(b) => serde_json::to_value(b),
        Body::Extension(b) => serde_json::to_value(b),
        Body::Disclosure(b) => serde_json::to_value(b),
        Body::Release(b) => serde_json::to_value(b),
        Body::Withdrawal(b) => serde_json::to_value(b),
        Body::Outcome(b) => serde_json::to_value(b),
        Body::Registry(b) => serde_json::to_value(b),
        Body::Refusal(b) => serde_json::to_value(b),
        Body::Policy(b) => serde_json::to_value(b),
    }
}

fn reference_encode(
    record: &Record,
    signer: &Signer,
    log: Option<&Name>,
    signature: Option<&[u8; 64]>,
) -> Result<Encoded, SchemaError> {
    let body = body_to_value(&record.body).map_err(|e| SchemaError::Malformed(e.to_string()))?;
    let signer = serde_json::to_value(signer).map_err(|e| SchemaError::Malformed(e.to_string()))?;
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"{\"body\":");
    canonical::write(&body, &mut out).map_err(SchemaError::NonCanonical)?;
    out.extend_from_slice(b",\"created\":");
    canonical::write_string(&record.created.to_string(), &mut out);
    out.extend_from_slice(b",\"kind\":");
    canonical::write_string(record.kind().as_str(), &mut out);
    if let Some(log) = log {
        out.extend_from_slice(b",\"log\":");
        canonical::write_string(log.as_str(), &mut out);
    }
    let sig_start = out.len();
    if let Some(sig) = signature {
        out.extend_from_slice(b",\"signature\":\"");
        out.extend_from_slice(hex::encode(sig).as_bytes());
        out.push(b'"');
    }
    let sig_end = out.len();
    out.extend_from_slice(b",\"signer\":");
    canonical::write(&signer, &mut out).map_err(SchemaError::NonCanonical)?;
    out.extend_from_slice(b",\"version\":");
    let version = if log.is_some() { SCHEMA_VERSION } else { 1 };
    out.extend_from_slice(version.to_string().as_bytes());
    out.push(b'}');
    Ok(Encoded {
        bytes: out,
        sig_start,
        sig_end,
    })
}

// ---------------------------------------------------------------------------
// The comparison

#[derive(Default)]
struct Tally {
    inputs: usize,
    accepted: usize,
}

/// Parses `bytes` both ways and asserts the same verdict; for an accepted
/// record also that both encoders agree, signed and unsigned.
fn same(bytes: &[u8], tally: &mut Tally) {
    tally.inputs += 1;
    let new = SignedRecord::parse(bytes);
    let old = reference_parse(bytes);
    let show = || String::from_utf8_lossy(bytes).into_owned();
    match (&new, &old) {
        (Ok(a), Ok(b)) => {
            tally.accepted += 1;
            assert_eq!(a, b, "{}", show());
            assert_eq!(a.as_bytes(), bytes);
            for sig in [Some(&a.signature), None] {
                let fast = encode(&a.record, &a.signer, a.log.as_ref(), sig, 0).unwrap();
                let slow = reference_encode(&a.record, &a.signer, a.log.as_ref(), sig).unwrap();
                assert_eq!(fast.bytes, slow.bytes);
                assert_eq!(
                    (fast.sig_start, fast.sig_end),
                    (slow.sig_start, slow.sig_end)
                );
            }
        }
        (Err(a), Err(b)) => {
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "{}", show());
            assert_eq!(a.to_string(), b.to_string());
        }
        _ => panic!("verdicts differ on {}: new {new:?}, old {old:?}", show()),
    }
    // The fast path alone accepts exactly what the reference accepts.
    assert_eq!(
        SignedRecord::parse_canonical(bytes).is_some(),
        old.is_ok(),
        "{}",
        show()
    );
}

// ---------------------------------------------------------------------------
// The inputs

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The sample record of every kind (`testdata/records`), version 2.
fn samples() -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(manifest().join("testdata/records"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    assert_eq!(paths.len(), Kind::ALL.len());
    paths
        .into_iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

fn canon(v: &Value) -> Vec<u8> {
    canonical::to_vec(v).unwrap_or_else(|_| serde_json::to_vec(v).unwrap())
}

/// The same record in version 1: no `log` member.
fn version_1(record: &[u8]) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(record).unwrap();
    let map = v.as_object_mut().unwrap();
    map.remove("log");
    map.insert("version".into(), json!(1));
    canon(&v)
}

/// Every single-byte deletion, duplication, flip and insertion.
fn byte_mutations(record: &[u8]) -> Vec<Vec<u8>> {
    const SWAPS: [u8; 8] = [b'"', b'\\', b'0', b'}', b',', 0xff, b'{', b'9'];
    let mut out = Vec::new();
    for i in 0..record.len() {
        let mut deleted = record.to_vec();
        deleted.remove(i);
        out.push(deleted);
        let mut doubled = record.to_vec();
        doubled.insert(i, record[i]);
        out.push(doubled);
        for flip in [0x01, 0x20] {
            let mut flipped = record.to_vec();
            flipped[i] ^= flip;
            out.push(flipped);
        }
        let mut swapped = record.to_vec();
        swapped[i] = SWAPS[i % SWAPS.len()];
        out.push(swapped);
        let mut spaced = record.to_vec();
        spaced.insert(i, b' ');
        out.push(spaced);
    }
    out
}

/// Values to put in place of any member or element.
fn replacements() -> Vec<Value> {
    vec![
        Value::Null,
        json!(0),
        json!(1),
        json!(-1),
        json!(9007199254740991u64),
        json!(9007199254740992u64),
        json!(u64::MAX),
        json!(1.5),
        json!(""),
        json!("x"),
        json!(" a"),
        json!("A\u{1f600}"),
        json!("\u{7}"),
        json!(true),
        json!([]),
        json!({}),
    ]
}

/// Canonical JSON with one change at one place of the tree: each member
/// removed, replaced or joined by an unknown member, each array element
/// removed, doubled or replaced.
fn tree_mutations(record: &[u8]) -> Vec<Vec<u8>> {
    fn walk(v: &Value, out: &mut Vec<Value>) {
        let reps = replacements();
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    let mut removed = map.clone();
                    removed.remove(k);
                    out.push(Value::Object(removed));
                    for r in &reps {
                        let mut m = map.clone();
                        m.insert(k.clone(), r.clone());
                        out.push(Value::Object(m));
                    }
                    let mut inner = Vec::new();
                    walk(child, &mut inner);
                    for c in inner {
                        let mut m = map.clone();
                        m.insert(k.clone(), c);
                        out.push(Value::Object(m));
                    }
                }
                for extra in ["aaa", "zzz", "type"] {
                    let mut m = map.clone();
                    m.insert(extra.into(), json!(1));
                    out.push(Value::Object(m));
                }
            }
            Value::Array(items) => {
                for i in 0..items.len() {
                    let mut removed = items.clone();
                    removed.remove(i);
                    out.push(Value::Array(removed));
                    let mut doubled = items.clone();
                    doubled.insert(i, items[i].clone());
                    out.push(Value::Array(doubled));
                    let mut swapped = items.clone();
                    swapped.swap(i, items.len() - 1);
                    out.push(Value::Array(swapped));
                    for r in &reps {
                        let mut a = items.clone();
                        a[i] = r.clone();
                        out.push(Value::Array(a));
                    }
                    let mut inner = Vec::new();
                    walk(&items[i], &mut inner);
                    for c in inner {
                        let mut a = items.clone();
                        a[i] = c;
                        out.push(Value::Array(a));
                    }
                }
            }
            _ => {}
        }
    }
    let v: Value = serde_json::from_slice(record).unwrap();
    let mut trees = Vec::new();
    walk(&v, &mut trees);
    let mut out: Vec<Vec<u8>> = trees.iter().map(canon).collect();
    // Every kind name on this body; versions of every sort.
    for k in Kind::ALL.iter().map(|k| k.as_str()).chain(["Request", ""]) {
        let mut t = v.clone();
        t["kind"] = json!(k);
        out.push(canon(&t));
    }
    for version in [
        json!(0),
        json!(1),
        json!(2),
        json!(3),
        json!(-1),
        json!("2"),
    ] {
        let mut t = v.clone();
        t["version"] = version;
        out.push(canon(&t));
    }
    let text = String::from_utf8(record.to_vec()).unwrap();
    for version in [
        "2.0",
        "1.0",
        "2e0",
        "-0",
        "02",
        "18446744073709551616",
        "1e999",
    ] {
        out.push(
            text.replace("\"version\":2", &format!("\"version\":{version}"))
                .into_bytes(),
        );
        out.push(
            text.replace("\"version\":1", &format!("\"version\":{version}"))
                .into_bytes(),
        );
    }
    out
}

/// Hand-made variants: reordered, spaced out, duplicate and escaped members,
/// huge numbers, trailing bytes.
fn text_mutations(record: &[u8]) -> Vec<Vec<u8>> {
    let v: Value = serde_json::from_slice(record).unwrap();
    let map = v.as_object().unwrap();
    let text = String::from_utf8(record.to_vec()).unwrap();
    let mut out = Vec::new();
    // Members in reverse order; the body's members in reverse order.
    let reversed: Vec<String> = map
        .iter()
        .rev()
        .map(|(k, v)| format!("{}:{}", json!(k), String::from_utf8(canon(v)).unwrap()))
        .collect();
    out.push(format!("{{{}}}", reversed.join(",")).into_bytes());
    if let Some(Value::Object(b)) = map.get("body") {
        let members: Vec<String> = b
            .iter()
            .rev()
            .map(|(k, v)| format!("{}:{}", json!(k), String::from_utf8(canon(v)).unwrap()))
            .collect();
        let body = format!("{{{}}}", members.join(","));
        let canon_body = String::from_utf8(canon(&map["body"])).unwrap();
        out.push(text.replacen(&canon_body, &body, 1).into_bytes());
    }
    out.push(serde_json::to_vec_pretty(&v).unwrap());
    out.push(format!("{text}\n").into_bytes());
    out.push(format!(" {text}").into_bytes());
    out.push(format!("{text}{text}").into_bytes());
    out.push(format!("[{text}]").into_bytes());
    // Duplicate members: the same value twice, or another one after.
    for (key, dup) in [
        ("\"created\":", "\"created\":\"2026-08-02T09:05:00Z\","),
        ("\"kind\":", "\"kind\":\"request\","),
        ("\"kind\":", "\"kind\":\"registry\","),
        (
            "\"signer\":",
            "\"signer\":{\"key_id\":\"00000000\",\"name\":\"x\"},",
        ),
        ("\"version\":", "\"version\":2,"),
        ("\"version\":", "\"version\":1,"),
        ("\"log\":", "\"log\":\"log.example.org/daylight\","),
    ] {
        if let Some(at) = text.find(key) {
            let mut t = text.clone();
            t.insert_str(at, dup);
            out.push(t.into_bytes());
            // The duplicate after the member instead.
            let mut t = text.clone();
            t.insert_str(text.len() - 1, &format!(",{}", dup.trim_end_matches(',')));
            out.push(t.into_bytes());
        }
    }
    // Escapes where the canonical form has none.
    out.push(text.replacen("\"body\"", "\"\\u0062ody\"", 1).into_bytes());
    out.push(
        text.replacen("\"kind\":\"", "\"kind\":\"\\u0072", 1)
            .into_bytes(),
    );
    for k in Kind::ALL {
        let plain = format!("\"kind\":\"{k}\"");
        let escaped = format!(
            "\"kind\":\"\\u00{:02x}{}\"",
            k.as_str().as_bytes()[0],
            &k.as_str()[1..]
        );
        out.push(text.replacen(&plain, &escaped, 1).into_bytes());
    }
    out.push(text.replacen("/", "\\/", 1).into_bytes());
    out.push(text.replacen("e", "\\u0065", 1).into_bytes());
    // Huge and odd numbers wherever there is a digit after a colon.
    for (i, w) in record.windows(2).enumerate() {
        if w[0] == b':' && w[1].is_ascii_digit() {
            for n in [
                "99999999999999999999999",
                "-1",
                "1.0",
                "1e2",
                "00",
                "-0",
                "4294967296",
            ] {
                let mut t = record[..=i].to_vec();
                t.extend_from_slice(n.as_bytes());
                let rest = &record[i + 1..];
                let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
                t.extend_from_slice(&rest[digits..]);
                out.push(t);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// The tests

#[test]
fn samples_parse_the_same_both_ways() {
    let mut tally = Tally::default();
    for record in samples() {
        same(&record, &mut tally);
        same(&version_1(&record), &mut tally);
    }
    assert_eq!(
        tally.accepted, tally.inputs,
        "every sample is a valid record"
    );
}

#[test]
fn byte_mutations_parse_the_same_both_ways() {
    let mut tally = Tally::default();
    for record in samples() {
        for m in byte_mutations(&record) {
            same(&m, &mut tally);
        }
    }
    // Version 1 on two kinds: the bytes around the missing `log` member.
    for record in samples().iter().take(2) {
        for m in byte_mutations(&version_1(record)) {
            same(&m, &mut tally);
        }
    }
    // Some mutations keep a record valid (a digit or letter of a text
    // changed, a hex digit flipped within 0-9): both ways must accept them.
    assert!(
        tally.accepted > 100,
        "{} of {} accepted",
        tally.accepted,
        tally.inputs
    );
}

#[test]
fn tree_and_text_mutations_parse_the_same_both_ways() {
    let mut tally = Tally::default();
    for record in samples() {
        for r in [record.clone(), version_1(&record)] {
            for m in tree_mutations(&r).into_iter().chain(text_mutations(&r)) {
                same(&m, &mut tally);
            }
        }
    }
    assert!(
        tally.accepted > 100,
        "{} of {} accepted",
        tally.accepted,
        tally.inputs
    );
    assert!(tally.inputs > 5_000, "{} inputs", tally.inputs);
}

#[test]
fn the_fuzz_corpus_parses_the_same_both_ways() {
    let dir = manifest().join("../fuzz/corpus/signed_record");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return; // Not checked out with the fuzz targets: nothing to compare.
    };
    let mut tally = Tally::default();
    for e in entries {
        same(&std::fs::read(e.unwrap().path()).unwrap(), &mut tally);
    }
}

#[test]
fn oversized_and_empty_inputs_parse_the_same_both_ways() {
    let mut tally = Tally::default();
    let record = samples().remove(0);
    let mut big = record.clone();
    big.resize(MAX_RECORD_SIZE + 1, b' ');
    for input in [Vec::new(), b"{}".to_vec(), b"null".to_vec(), big] {
        same(&input, &mut tally);
    }
    // A valid record padded out to the limit inside a text member.
    let text = String::from_utf8(record).unwrap();
    let at = text.find("\"case_reference\":\"").map(|i| i + 18);
    if let Some(at) = at {
        let mut t = text.clone();
        t.insert_str(at, &"x".repeat(MAX_RECORD_SIZE - text.len()));
        same(t.as_bytes(), &mut tally);
    }
}
