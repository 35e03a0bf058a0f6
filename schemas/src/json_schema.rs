//! JSON Schema (draft 2020-12) for every record kind, for drafts and for
//! openings, generated from the Rust types with schemars. The files under
//! `schemas/json/` are this module's output; a test keeps them current.
//!
//! A schema checks shape, not everything: canonical form, the cross-field
//! rules (dates in order, counts) and signatures are checked only by
//! [`crate::SignedRecord::parse`] and [`crate::SignedRecord::verify_signature`].

use std::borrow::Cow;

use schemars::generate::SchemaSettings;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Value};

use crate::commitment::Opening;
use crate::draft::Draft;
use crate::fields::{Signer, Timestamp};
use crate::record::{
    DisclosureBody, EmergencyBody, ExtensionBody, Kind, OutcomeBody, PolicyBody, RatificationBody,
    RefusalBody, RegistryBody, ReleaseBody, RequestBody, WithdrawalBody,
};

/// The `$id` prefix of the generated schemas.
pub const SCHEMA_ID_BASE: &str = "https://daylight.invalid/schemas/v1/";

/// A signed record of one kind, for schema generation only. Version 2
/// requires `log`; version 1 has none.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend(
    "if" = {"properties": {"version": {"const": 2}}},
    "then" = {"required": ["log"]},
    "else" = {"not": {"required": ["log"]}}
))]
#[allow(dead_code)]
struct SignedRecordDoc<B> {
    /// The kind-specific content.
    body: B,
    /// When the signer created the record.
    created: Timestamp,
    /// The record kind.
    kind: KindConst,
    /// The origin of the log the record is for (version 2; a log refuses a
    /// record naming another). Absent only in version-1 records, which
    /// logs keep but no longer take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    log: Option<crate::fields::Name>,
    /// Ed25519 signature over "daylight/record/v1\n" followed by the canonical encoding of the record without this member: 128 lower-case hex digits.
    signature: SignatureHex,
    /// The signing key.
    signer: Signer,
    /// Schema version: 2 (with `log`), or 1 (without; read, never written).
    version: Version,
}

struct KindConst;
impl JsonSchema for KindConst {
    fn schema_name() -> Cow<'static, str> {
        "Kind".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        json_schema!({ "type": "string", "enum": names })
    }
}

struct SignatureHex;
impl JsonSchema for SignatureHex {
    fn schema_name() -> Cow<'static, str> {
        "Signature".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": "^[0-9a-f]{128}$" })
    }
}

struct Version;
impl JsonSchema for Version {
    fn schema_name() -> Cow<'static, str> {
        "Version".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "enum": [1, 2] })
    }
}

fn generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12().into_generator()
}

fn record_schema<B: JsonSchema>(kind: Kind, description: &str) -> Value {
    let schema = generator().into_root_schema_for::<SignedRecordDoc<B>>();
    let mut v = schema.to_value();
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "$id".into(),
            json!(format!("{SCHEMA_ID_BASE}{}.json", kind.as_str())),
        );
        obj.insert("title".into(), json!(format!("Daylight {kind} record")));
        obj.insert("description".into(), json!(description));
        if let Some(kind_prop) = obj
            .get_mut("properties")
            .and_then(|p| p.get_mut("kind"))
            .and_then(Value::as_object_mut)
        {
            kind_prop.clear();
            kind_prop.insert("const".into(), json!(kind.as_str()));
            kind_prop.insert("description".into(), json!("The record kind."));
        }
    }
    v
}

fn named_schema<T: JsonSchema>(file: &str, title: &str, description: &str) -> Value {
    let mut v = generator().into_root_schema_for::<T>().to_value();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("$id".into(), json!(format!("{SCHEMA_ID_BASE}{file}")));
        obj.insert("title".into(), json!(title));
        obj.insert("description".into(), json!(description));
    }
    v
}

/// The schemas as `(file name, pretty JSON with a final newline)`, in a fixed order:
/// one `<kind>.json` per record kind, then `draft.json` and `opening.json`.
pub fn generate() -> Vec<(String, String)> {
    let kinds: Vec<(Kind, Value)> = vec![
        (Kind::Request, record_schema::<RequestBody>(Kind::Request, "An authority asks a provider for exceptional access under an order; signed by the agency. Targets and the order document appear only as commitments.")),
        (Kind::Emergency, record_schema::<EmergencyBody>(Kind::Emergency, "Exceptional access before a court order, to be ratified within 48 hours; signed by the agency.")),
        (Kind::Ratification, record_schema::<RatificationBody>(Kind::Ratification, "A court's decision on an earlier emergency entry; signed by the court.")),
        (Kind::Extension, record_schema::<ExtensionBody>(Kind::Extension, "A court extends an entry's sealed-until date; signed by the court.")),
        (Kind::Disclosure, record_schema::<DisclosureBody>(Kind::Disclosure, "Opens, or says why it withholds, the commitments of an earlier entry; signed by the agency or a court.")),
        (Kind::Release, record_schema::<ReleaseBody>(Kind::Release, "The provider's receipt that it released access for an entry; signed by the provider.")),
        (Kind::Withdrawal, record_schema::<WithdrawalBody>(Kind::Withdrawal, "The agency withdraws an entry it made; signed by the agency.")),
        (Kind::Outcome, record_schema::<OutcomeBody>(Kind::Outcome, "What an authorisation led to, in the terms of the US Wiretap Report; signed by the agency.")),
        (Kind::Registry, record_schema::<RegistryBody>(Kind::Registry, "The log operator changes who may sign what (keys added, revoked or rotated, witnesses, quorum); signed by the log's key.")),
        (Kind::Refusal, record_schema::<RefusalBody>(Kind::Refusal, "The provider refused access for a request or emergency on its content, with a stable reason; signed by the provider.")),
        (Kind::Policy, record_schema::<PolicyBody>(Kind::Policy, "The provider publishes the content lines its gate enforces; signed by the provider.")),
    ];
    let mut out: Vec<(String, Value)> = kinds
        .into_iter()
        .map(|(k, v)| (format!("{}.json", k.as_str()), v))
        .collect();
    out.push((
        "draft.json".into(),
        named_schema::<Draft>(
            "draft.json",
            "Daylight draft",
            "A human-writable draft of a record (schemas/examples/): targets and documents in the clear, no salts, no time, no signature.",
        ),
    ));
    out.push((
        "opening.json".into(),
        named_schema::<Opening>(
            "opening.json",
            "Daylight opening",
            "The private openings of a signed record's commitments (target identifiers and salts); given to the provider, never logged.",
        ),
    ));
    out.into_iter()
        .map(|(name, v)| {
            let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
            s.push('\n');
            (name, s)
        })
        .collect()
}
