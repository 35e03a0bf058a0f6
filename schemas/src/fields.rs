//! The field types of records: each parses its own text strictly, so a value
//! of one of these types is always well-formed (parse, don't validate).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use daylight_core::{Hash, KeyId, KeyName, KeyType, LeafIndex, VerifierKey};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::Error as _;
use serde::de::{Unexpected, Visitor};
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::canonical::MAX_SAFE_INTEGER;
use crate::error::{clip, de_error, SchemaError};

/// A string from a deserializer, borrowed from the input where it can be.
/// serde's `Cow<str>` always copies into a `String`, and every field type
/// here only checks the text (keeping a copy of its own where it keeps
/// it): a dozen needless allocations per record parsed. Takes exactly what
/// `Cow<str>` takes (serde's `String` visitor: strings, and bytes that are
/// UTF-8), through the same `deserialize_string` call, so what is accepted
/// and every error stay the same.
pub(crate) fn str_of<'de, D: Deserializer<'de>>(d: D) -> Result<Cow<'de, str>, D::Error> {
    struct StrVisitor;
    impl<'de> Visitor<'de> for StrVisitor {
        type Value = Cow<'de, str>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Cow::Borrowed(v))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Cow::Owned(v.to_owned()))
        }
        fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Cow::Owned(v))
        }
        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
            match std::str::from_utf8(v) {
                Ok(s) => Ok(Cow::Owned(s.to_owned())),
                Err(_) => Err(E::invalid_value(Unexpected::Bytes(v), &self)),
            }
        }
        fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
            match String::from_utf8(v) {
                Ok(s) => Ok(Cow::Owned(s)),
                Err(e) => Err(E::invalid_value(Unexpected::Bytes(&e.into_bytes()), &self)),
            }
        }
    }
    d.deserialize_string(StrVisitor)
}

// ---------------------------------------------------------------------------
// Times

/// A point in time as records write it: UTC, whole seconds,
/// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339), years 1970 to 9999.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// `time` cut to whole seconds. Fails outside years 1970..=9999.
    pub fn new(time: DateTime<Utc>) -> Result<Timestamp, SchemaError> {
        let t = time.with_nanosecond(0).unwrap_or(time);
        let year = t.format("%Y").to_string();
        if year.len() != 4 || t.timestamp() < 0 {
            return Err(SchemaError::BadTime(format!(
                "{t} is outside the years 1970 to 9999"
            )));
        }
        Ok(Timestamp(t))
    }

    /// The time.
    pub fn get(self) -> DateTime<Utc> {
        self.0
    }

    /// Parses exactly `YYYY-MM-DDTHH:MM:SSZ`.
    pub fn parse(text: &str) -> Result<Timestamp, SchemaError> {
        let bad = || {
            SchemaError::BadTime(format!(
                "{} is not YYYY-MM-DDTHH:MM:SSZ (UTC, whole seconds)",
                clip(text)
            ))
        };
        let b = text.as_bytes();
        let shape_ok = b.len() == 20
            && b.iter().enumerate().all(|(i, &c)| match i {
                4 | 7 => c == b'-',
                10 => c == b'T',
                13 | 16 => c == b':',
                19 => c == b'Z',
                _ => c.is_ascii_digit(),
            });
        if !shape_ok {
            return Err(bad());
        }
        // The shape is checked: every other byte is an ASCII digit.
        let num = |r: std::ops::Range<usize>| {
            b[r].iter().fold(0u32, |n, &c| n * 10 + u32::from(c - b'0'))
        };
        let date = NaiveDate::from_ymd_opt(num(0..4) as i32, num(5..7), num(8..10));
        // from_hms_opt refuses second 60: a record has no leap seconds.
        let time = NaiveTime::from_hms_opt(num(11..13), num(14..16), num(17..19));
        let (Some(date), Some(time)) = (date, time) else {
            return Err(bad());
        };
        let t = NaiveDateTime::new(date, time).and_utc();
        if t.timestamp() < 0 {
            return Err(bad());
        }
        Ok(Timestamp(t))
    }
}

impl Timestamp {
    /// `YYYY-MM-DDTHH:MM:SSZ`, written digit by digit: every record's
    /// timestamps are written at every parse (the re-encoding), and this
    /// costs a fraction of `write!` with padded fields, itself a sixth of
    /// chrono's format string (callgrind). `None` for years past 9999 and
    /// leap seconds, which keep chrono's own spelling.
    fn digits(self) -> Option<[u8; 20]> {
        use chrono::{Datelike as _, Timelike as _};
        let t = &self.0;
        let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
        if t.nanosecond() >= 1_000_000_000 {
            return None;
        }
        let mut b = *b"0000-00-00T00:00:00Z";
        let mut put = |at: usize, width: usize, mut n: u32| {
            for i in (at..at + width).rev() {
                // n % 10 < 10: the cast keeps it.
                b[i] = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, t.month());
        put(8, 2, t.day());
        put(11, 2, t.hour());
        put(14, 2, t.minute());
        put(17, 2, t.second());
        Some(b)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.digits() {
            // ASCII digits and punctuation only: always UTF-8.
            Some(b) => f.write_str(std::str::from_utf8(&b).map_err(|_| fmt::Error)?),
            None => write!(f, "{}", self.0.format("%Y-%m-%dT%H:%M:%SZ")),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.digits() {
            Some(b) => s.serialize_str(std::str::from_utf8(&b).map_err(S::Error::custom)?),
            None => s.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = str_of(d)?;
        Timestamp::parse(&s).map_err(|e| de_error("bad_time", e))
    }
}

impl JsonSchema for Timestamp {
    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A time in UTC with whole seconds: RFC 3339 `YYYY-MM-DDTHH:MM:SSZ`.",
            "type": "string",
            "format": "date-time",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"
        })
    }
}

// ---------------------------------------------------------------------------
// Text

/// The most characters a text field holds.
pub const MAX_TEXT_CHARS: usize = 200;

/// A short human text (a name, a statute, a case reference): 1 to 200
/// characters, no control characters, no leading or trailing white space.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text(String);

impl Text {
    /// Checks `text`.
    pub fn new(text: &str) -> Result<Text, SchemaError> {
        check_text(text, MAX_TEXT_CHARS).map_err(SchemaError::BadText)?;
        Ok(Text(text.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// JSON Schema pattern for [`Text`] and [`TargetId`]: no control characters
/// (U+0000..U+001F, U+007F..U+009F), no white space at either end. Written
/// without `\p{..}` classes so that both ECMA 262 and Python regexes read it.
const TEXT_PATTERN: &str =
    "^[^\\s\\u0000-\\u001f\\u007f-\\u009f]([^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f])?$";

fn check_text(text: &str, max: usize) -> Result<(), String> {
    if text.is_empty() {
        return Err("empty".into());
    }
    if text.chars().count() > max {
        return Err(format!("{} is longer than {max} characters", clip(text)));
    }
    if text.chars().any(char::is_control) {
        return Err(format!("{} has control characters", clip(text)));
    }
    if text.trim() != text {
        return Err(format!(
            "{} has leading or trailing white space",
            clip(text)
        ));
    }
    Ok(())
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = str_of(d)?;
        check_text(&s, MAX_TEXT_CHARS).map_err(|e| de_error("bad_text", e))?;
        Ok(Text(s.into_owned()))
    }
}

impl JsonSchema for Text {
    fn schema_name() -> Cow<'static, str> {
        "Text".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Human text: 1 to 200 characters, no control characters, no leading or trailing white space.",
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_TEXT_CHARS,
            "pattern": TEXT_PATTERN
        })
    }
}

// ---------------------------------------------------------------------------
// Target identifiers (drafts, openings, disclosures only: never in a request)

/// The most bytes a target identifier holds.
pub const MAX_TARGET_BYTES: usize = 256;

/// A target identifier in the clear (an account, a phone number, a device
/// serial): 1 to 256 bytes of UTF-8, no control characters, no leading or
/// trailing white space. Compared byte for byte: no case folding or other
/// normalisation, so write it exactly as the provider knows it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetId(String);

impl TargetId {
    /// Checks `text`.
    pub fn new(text: &str) -> Result<TargetId, SchemaError> {
        check_target(text).map_err(SchemaError::BadTarget)?;
        Ok(TargetId(text.to_owned()))
    }

    /// The identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_target(text: &str) -> Result<(), String> {
    if text.len() > MAX_TARGET_BYTES {
        return Err(format!("longer than {MAX_TARGET_BYTES} bytes"));
    }
    check_text(text, MAX_TARGET_BYTES)
}

impl fmt::Debug for TargetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TargetId({:?})", self.0)
    }
}

impl Serialize for TargetId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TargetId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = str_of(d)?;
        check_target(&s).map_err(|e| de_error("bad_target", e))?;
        Ok(TargetId(s.into_owned()))
    }
}

impl JsonSchema for TargetId {
    fn schema_name() -> Cow<'static, str> {
        "TargetId".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A target identifier in the clear, exactly as the provider knows it (no normalisation): 1 to 256 bytes, no control characters, no leading or trailing white space. Appears only in drafts, openings and disclosures, never in a request.",
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_TARGET_BYTES,
            "pattern": TEXT_PATTERN
        })
    }
}

// ---------------------------------------------------------------------------
// Key names

/// The most bytes a key name holds in a record.
pub const MAX_NAME_BYTES: usize = 128;

/// A key name as the signed-note format allows (non-empty, no white space,
/// no `+`), at most 128 bytes: the name of a registered key, used for the
/// signer and for the provider a request is addressed to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(KeyName);

impl Name {
    /// Checks `text`.
    pub fn new(text: &str) -> Result<Name, SchemaError> {
        if text.len() > MAX_NAME_BYTES {
            return Err(SchemaError::BadKey(format!(
                "key name {} is longer than {MAX_NAME_BYTES} bytes",
                clip(text)
            )));
        }
        KeyName::new(text)
            .map(Name)
            .map_err(|e| SchemaError::BadKey(e.to_string()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The name as the core's key name.
    pub fn key_name(&self) -> &KeyName {
        &self.0
    }
}

impl From<KeyName> for Name {
    fn from(k: KeyName) -> Name {
        Name(k)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = str_of(d)?;
        Name::new(&s).map_err(|e| de_error("bad_key", e))
    }
}

impl JsonSchema for Name {
    fn schema_name() -> Cow<'static, str> {
        "KeyName".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A key name (signed-note rules): 1 to 128 bytes, no white space, no control characters, no '+'.",
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_NAME_BYTES,
            "pattern": "^[^\\s\\u0000-\\u001f\\u007f-\\u009f+]+$"
        })
    }
}

/// Serde for a key ID as 8 lower-case hex digits.
pub(crate) mod key_id_hex {
    use super::*;

    pub fn serialize<S: Serializer>(id: &KeyId, s: S) -> Result<S::Ok, S::Error> {
        // As `KeyId`'s Display (`{:08x}`), without the formatter.
        let mut buf = [0u8; 8];
        hex::encode_to_slice(id.0.to_be_bytes(), &mut buf).map_err(S::Error::custom)?;
        s.serialize_str(std::str::from_utf8(&buf).map_err(S::Error::custom)?)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<KeyId, D::Error> {
        let s = str_of(d)?;
        parse_key_id(&s).map_err(|e| de_error("bad_key", e))
    }

    pub fn schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A key ID: 8 lower-case hex digits (signed-note key ID).",
            "type": "string",
            "pattern": "^[0-9a-f]{8}$"
        })
    }
}

/// Parses 8 lower-case hex digits.
pub(crate) fn parse_key_id(s: &str) -> Result<KeyId, String> {
    if s.len() != 8 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(format!("key ID {} is not 8 lower-case hex digits", clip(s)));
    }
    u32::from_str_radix(s, 16)
        .map(KeyId)
        .map_err(|_| format!("key ID {} is not 8 lower-case hex digits", clip(s)))
}

/// Who signed a record: the key's name and ID (as in a signed-note signature line).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Signer {
    /// The signing key's name.
    pub name: Name,
    /// The signing key's ID: 8 lower-case hex digits.
    #[serde(with = "key_id_hex")]
    #[schemars(schema_with = "key_id_hex::schema")]
    pub key_id: KeyId,
}

impl Signer {
    /// The signer a verifier key stands for.
    pub fn of(key: &VerifierKey) -> Signer {
        Signer {
            name: Name(key.name().clone()),
            key_id: key.id(),
        }
    }

    /// The key name.
    pub fn key_name(&self) -> &KeyName {
        self.name.key_name()
    }

    /// Whether `key` is this signer (same name and key ID).
    pub fn is(&self, key: &VerifierKey) -> bool {
        key.name() == self.name.key_name() && key.id() == self.key_id
    }
}

impl fmt::Display for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{}", self.name, self.key_id)
    }
}

// ---------------------------------------------------------------------------
// Registered keys

/// A signed-note verifier key (`name+keyid+base64`), as registered in the
/// log: Ed25519 (type 0x01) for an agency, a court, a provider or the log,
/// cosignature/v1 (type 0x04) for a witness (the registry rules pair them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredKey(VerifierKey);

impl RegisteredKey {
    /// Accepts `key` if it is an Ed25519 note key (type 0x01) or a
    /// cosignature/v1 key (type 0x04) with a name records can carry.
    pub fn new(key: VerifierKey) -> Result<RegisteredKey, SchemaError> {
        if !matches!(key.key_type(), KeyType::Ed25519 | KeyType::CosignatureV1) {
            return Err(SchemaError::BadKey(format!(
                "{key} is neither an Ed25519 note key (type 0x01) nor a cosignature/v1 key (type 0x04)"
            )));
        }
        Name::new(key.name().as_str())?;
        Ok(RegisteredKey(key))
    }

    /// Parses the verifier-key text form.
    pub fn parse(text: &str) -> Result<RegisteredKey, SchemaError> {
        let key = VerifierKey::parse(text)
            .map_err(|e| SchemaError::BadKey(format!("{}: {e}", clip(text))))?;
        let canonical = key.to_string();
        if canonical != text {
            return Err(SchemaError::BadKey(format!(
                "{} is not written in the standard form {canonical}",
                clip(text)
            )));
        }
        RegisteredKey::new(key)
    }

    /// The verifier key.
    pub fn key(&self) -> &VerifierKey {
        &self.0
    }
}

impl Serialize for RegisteredKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RegisteredKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = str_of(d)?;
        RegisteredKey::parse(&s).map_err(|e| de_error("bad_key", e))
    }
}

impl JsonSchema for RegisteredKey {
    fn schema_name() -> Cow<'static, str> {
        "VerifierKey".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A signed-note verifier key `<name>+<keyid hex8>+<base64(type || Ed25519 public key)>`: type 0x01 (Ed25519 note key) for agencies, courts, providers and the log, 0x04 (cosignature/v1) for witnesses.",
            "type": "string",
            "pattern": "^[^\\s\\u0000-\\u001f\\u007f-\\u009f+]{1,128}\\+[0-9a-f]{8}\\+[AB][A-Za-z0-9+/]{43}$"
        })
    }
}

// ---------------------------------------------------------------------------
// Country codes

/// ISO 3166-1 alpha-2 codes officially assigned, as listed by the tz
/// database's `iso3166.tab` (ISO/TC 46 N1108, 2023-04-05): 249 codes.
pub const ISO_3166_1_ALPHA2: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// A jurisdiction: an assigned ISO 3166-1 alpha-2 country code (`DE`),
/// optionally with an ISO 3166-2 style subdivision of 1 to 3 upper-case
/// letters or digits (`US-CA`). The subdivision is checked for form only.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Jurisdiction(String);

impl Jurisdiction {
    /// Checks `text`.
    pub fn new(text: &str) -> Result<Jurisdiction, SchemaError> {
        let bad = |why: &str| SchemaError::BadCountryCode(format!("{}: {why}", clip(text)));
        let (country, sub) = match text.split_once('-') {
            Some((c, s)) => (c, Some(s)),
            None => (text, None),
        };
        if ISO_3166_1_ALPHA2.binary_search(&country).is_err() {
            return Err(bad("not an assigned ISO 3166-1 alpha-2 code"));
        }
        if let Some(sub) = sub {
            if sub.is_empty()
                || sub.len() > 3
                || !sub
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            {
                return Err(bad(
                    "subdivision must be 1 to 3 upper-case letters or digits",
                ));
            }
        }
        Ok(Jurisdiction(text.to_owned()))
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ISO 3166-1 alpha-2 country part.
    pub fn country(&self) -> &str {
        self.0.split('-').next().unwrap_or(&self.0)
    }
}

impl fmt::Display for Jurisdiction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Jurisdiction {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Jurisdiction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = str_of(d)?;
        Jurisdiction::new(&s).map_err(|e| de_error("bad_country_code", e))
    }
}

impl JsonSchema for Jurisdiction {
    fn schema_name() -> Cow<'static, str> {
        "Jurisdiction".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let countries = ISO_3166_1_ALPHA2.join("|");
        json_schema!({
            "description": "ISO 3166-1 alpha-2 country code, optionally followed by '-' and an ISO 3166-2 subdivision of 1 to 3 upper-case letters or digits (US-CA).",
            "type": "string",
            "pattern": format!("^({countries})(-[A-Z0-9]{{1,3}})?$")
        })
    }
}

// ---------------------------------------------------------------------------
// 32-byte values in hex

macro_rules! hex32 {
    ($(#[$meta:meta])* $name:ident, $schema_name:literal, $desc:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// Parses 64 lower-case hex digits.
            pub fn from_hex(text: &str) -> Result<$name, SchemaError> {
                parse_hex32(text).map($name).map_err(SchemaError::Malformed)
            }

            /// 64 lower-case hex digits.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                serialize_hex32(&self.0, s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = str_of(d)?;
                parse_hex32(&s).map($name).map_err(D::Error::custom)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                $schema_name.into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "description": $desc,
                    "type": "string",
                    "pattern": "^[0-9a-f]{64}$"
                })
            }
        }
    };
}

hex32!(
    /// A commitment to a secret: SHA-256 over a domain-separated message with
    /// a fresh 32-byte salt (see [`crate::commitment`]).
    Commitment,
    "Commitment",
    "A commitment: SHA-256(\"daylight/commitment/v1\\n\" || purpose || \"\\n\" || salt || value), 64 lower-case hex digits."
);
hex32!(
    /// A commitment's 32-byte random salt. Secret until disclosed.
    Salt,
    "Salt",
    "A commitment's 32-byte salt, 64 lower-case hex digits."
);
hex32!(
    /// The check value of an escrowed key under threshold custody: SHA-256
    /// over a domain string and the key (`daylight-custody`). It names the
    /// key in custodians' receipts without revealing it, and tells whoever
    /// reconstructs the key whether the shares were right.
    KeyCheck,
    "KeyCheck",
    "An escrowed key's check value: SHA-256(\"daylight/escrow-key-check/v1\\n\" || key), 64 lower-case hex digits."
);
hex32!(
    /// An escrowed key's tag for one request, as a custodian's public
    /// receipt names it: SHA-256 over a domain string, the key's check
    /// value and the request's leaf hash (`daylight-custody`). The receipts
    /// of one key for one request share it; receipts for other requests
    /// about the same target do not, so the log does not link them.
    KeyTag,
    "KeyTag",
    "An escrowed key's tag for one request: SHA-256(\"daylight/escrow-key-tag/v1\\n\" || key check || request leaf hash), 64 lower-case hex digits."
);
hex32!(
    /// The SHA-256 of a document (an order), as the agency computed it.
    DocumentHash,
    "DocumentHash",
    "SHA-256 of a document's bytes, 64 lower-case hex digits."
);

/// Writes 32 bytes as 64 lower-case hex digits, from a buffer on the stack.
fn serialize_hex32<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; 64];
    hex::encode_to_slice(bytes, &mut buf).map_err(S::Error::custom)?;
    s.serialize_str(std::str::from_utf8(&buf).map_err(S::Error::custom)?)
}

/// Decodes lower-case hex digits into `out` (twice as many digits as
/// bytes); `false` on any other character or length. One pass with a
/// table: hashes and signatures are decoded at every parse, and checking
/// the digits before `hex::decode_to_slice` cost two.
fn decode_lower_hex(text: &[u8], out: &mut [u8]) -> bool {
    const BAD: u8 = 0xff;
    const NIBBLE: [u8; 256] = {
        let mut t = [BAD; 256];
        let mut i = 0;
        while i < 10 {
            t[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            t[b'a' as usize + i] = 10 + i as u8;
            i += 1;
        }
        t
    };
    if text.len() != 2 * out.len() {
        return false;
    }
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let (hi, lo) = (NIBBLE[usize::from(pair[0])], NIBBLE[usize::from(pair[1])]);
        // A bad digit has the high bit set; the byte written then is junk,
        // and the whole result is refused below.
        bad |= hi | lo;
        *o = (hi << 4) | (lo & 0x0f);
    }
    bad & 0x80 == 0
}

pub(crate) fn parse_hex32(text: &str) -> Result<[u8; 32], String> {
    let mut out = [0u8; 32];
    if !decode_lower_hex(text.as_bytes(), &mut out) {
        return Err(format!("{} is not 64 lower-case hex digits", clip(text)));
    }
    Ok(out)
}

/// Serde for a 64-byte signature as 128 lower-case hex digits.
pub(crate) fn parse_signature_hex(text: &str) -> Result<[u8; 64], String> {
    let mut out = [0u8; 64];
    if !decode_lower_hex(text.as_bytes(), &mut out) {
        return Err(format!(
            "signature {} is not 128 lower-case hex digits",
            clip(text)
        ));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// References to earlier entries

/// A reference to an earlier log entry: its index and its RFC 6962 leaf
/// hash (SHA-256(0x00 || entry bytes)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryRef {
    /// The entry's zero-based index in the log.
    #[serde(with = "index_num")]
    #[schemars(schema_with = "index_num::schema")]
    pub index: LeafIndex,
    /// The entry's leaf hash: 64 lower-case hex digits.
    #[serde(with = "hash_hex")]
    #[schemars(schema_with = "hash_hex::schema")]
    pub leaf_hash: Hash,
}

impl EntryRef {
    /// A reference to the entry at `index` with leaf hash `leaf_hash`.
    pub fn new(index: LeafIndex, leaf_hash: Hash) -> EntryRef {
        EntryRef { index, leaf_hash }
    }

    /// A reference to `record`, sequenced at `index`.
    pub fn to(record: &crate::SignedRecord, index: LeafIndex) -> EntryRef {
        EntryRef {
            index,
            leaf_hash: record.leaf_hash(),
        }
    }
}

mod index_num {
    use super::*;

    pub fn serialize<S: Serializer>(i: &LeafIndex, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(i.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<LeafIndex, D::Error> {
        let n = u64::deserialize(d)?;
        if n > MAX_SAFE_INTEGER {
            return Err(D::Error::custom(format!("index {n} is above 2^53-1")));
        }
        Ok(LeafIndex(n))
    }

    pub fn schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A leaf index: an integer from 0 to 2^53-1.",
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_SAFE_INTEGER
        })
    }
}

pub(crate) mod hash_hex {
    use super::*;

    pub fn serialize<S: Serializer>(h: &Hash, s: S) -> Result<S::Ok, S::Error> {
        // Not `Hash::to_hex`, a `format!` per byte: this runs for every
        // reference at every parse of a record (its re-encoding).
        serialize_hex32(&h.0, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let s = str_of(d)?;
        parse_hex32(&s).map(Hash).map_err(D::Error::custom)
    }

    pub fn schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A SHA-256 hash, 64 lower-case hex digits.",
            "type": "string",
            "pattern": "^[0-9a-f]{64}$"
        })
    }
}

// ---------------------------------------------------------------------------
// Closed code lists

/// Defines a closed list of codes: an enum whose JSON form is a fixed
/// lower-case string, refusing any other string with the error `$code`.
macro_rules! closed_set {
    (
        $(#[$meta:meta])*
        $name:ident, $code:literal, $what:literal,
        { $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, JsonSchema)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant ),+
        }

        impl $name {
            /// Every code, in the order of their names.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The code as written in records.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl FromStr for $name {
            type Err = SchemaError;
            fn from_str(s: &str) -> Result<$name, SchemaError> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(closed_set_error($code, $what, s)),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &$name) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        /// Ordered by the code's text, so a sorted set is sorted as written.
        impl Ord for $name {
            fn cmp(&self, other: &$name) -> std::cmp::Ordering {
                self.as_str().cmp(other.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = str_of(d)?;
                $name::from_str(&s).map_err(|e| {
                    let detail = match &e {
                        SchemaError::UnknownDataCategory(d) | SchemaError::UnknownCode(d) => d.clone(),
                        other => other.to_string(),
                    };
                    de_error(e.code(), detail)
                })
            }
        }
    };
}

fn closed_set_error(code: &str, what: &str, s: &str) -> SchemaError {
    let detail = format!("{what} {} is not one of the defined codes", clip(s));
    match code {
        "unknown_data_category" => SchemaError::UnknownDataCategory(detail),
        _ => SchemaError::UnknownCode(detail),
    }
}

closed_set!(
    /// The kind of data an authority asks for. A closed set: the EU
    /// e-evidence Regulation 2023/1543 categories (subscriber, identification,
    /// traffic, content) plus location and the two kinds of exceptional access
    /// this log exists for (stored keys, device unlock).
    DataCategory, "unknown_data_category", "data category",
    {
        /// Content data: messages, files, calls (EU 2023/1543 Art. 3).
        Content = "content",
        /// Unlocking a device, or a key that unlocks one.
        DeviceUnlock = "device_unlock",
        /// Data requested only to identify the user: IP address, source port, time (EU 2023/1543 Art. 3(10)).
        Identification = "identification",
        /// Location data (cell, GPS), historical or real time.
        Location = "location",
        /// Escrowed or stored decryption keys for the target's data.
        StoredKeys = "stored_keys",
        /// Subscriber data: name, address, contact, payment, account metadata (EU 2023/1543 Art. 3).
        Subscriber = "subscriber",
        /// Traffic data: who communicated with whom, when, how (EU 2023/1543 Art. 3).
        Traffic = "traffic",
    }
);

closed_set!(
    /// The most serious offence under investigation, in categories close to
    /// the US Wiretap Report's, plus the offences EU 2023/1543 lists by name.
    Offence, "unknown_code", "offence",
    {
        /// Assault (without homicide).
        Assault = "assault",
        /// Child sexual abuse and exploitation (EU 2023/1543 Art. 5(4)).
        ChildSexualAbuse = "child_sexual_abuse",
        /// Conspiracy (as the Wiretap Report counts it).
        Conspiracy = "conspiracy",
        /// Bribery and corruption.
        Corruption = "corruption",
        /// Attacks on information systems (EU 2023/1543 Art. 5(4)).
        Cybercrime = "cybercrime",
        /// Espionage and other offences against national security.
        Espionage = "espionage",
        /// Extortion, loansharking and usury.
        Extortion = "extortion",
        /// Fraud.
        Fraud = "fraud",
        /// Illegal gambling.
        Gambling = "gambling",
        /// Homicide.
        Homicide = "homicide",
        /// Human trafficking and smuggling.
        HumanTrafficking = "human_trafficking",
        /// Kidnapping.
        Kidnapping = "kidnapping",
        /// Money laundering.
        MoneyLaundering = "money_laundering",
        /// Narcotics.
        Narcotics = "narcotics",
        /// An offence in none of the other categories.
        Other = "other",
        /// Racketeering, organised crime.
        Racketeering = "racketeering",
        /// Robbery.
        Robbery = "robbery",
        /// Terrorism (EU 2023/1543 Art. 5(4)).
        Terrorism = "terrorism",
        /// Larceny and theft.
        Theft = "theft",
        /// Weapons offences.
        Weapons = "weapons",
    }
);

closed_set!(
    /// What kind of body issued the order or authorisation.
    IssuerType, "unknown_code", "issuer type",
    {
        /// The requesting agency itself (emergency authorisations, administrative subpoenas).
        Agency = "agency",
        /// A judge or court.
        Court = "court",
        /// A minister or other executive authority (e.g. UK warrants by a Secretary of State).
        Executive = "executive",
        /// A public prosecutor.
        Prosecutor = "prosecutor",
    }
);

closed_set!(
    /// What the targets are (Apple's request types and the identifiers in
    /// provider transparency reports).
    TargetType, "unknown_code", "target type",
    {
        /// An account or user ID at the provider.
        Account = "account",
        /// A device (serial number, IMEI).
        Device = "device",
        /// An e-mail address.
        EmailAddress = "email_address",
        /// An IP address or other network address.
        NetworkAddress = "network_address",
        /// A payment identifier (card, bank account).
        PaymentIdentifier = "payment_identifier",
        /// A telephone number.
        PhoneNumber = "phone_number",
    }
);

closed_set!(
    /// Why access could not wait for a court (EU 2023/1543 Art. 3, "emergency situation").
    EmergencyGround, "unknown_code", "emergency ground",
    {
        /// An imminent threat to critical infrastructure.
        CriticalInfrastructure = "critical_infrastructure",
        /// An imminent threat to the life, physical integrity or safety of a person.
        LifeOrSafety = "life_or_safety",
    }
);

closed_set!(
    /// A court's decision on an emergency request.
    Decision, "unknown_code", "decision",
    {
        /// The court refused to ratify: access must stop.
        Denied = "denied",
        /// The court ratified the emergency access.
        Granted = "granted",
    }
);

closed_set!(
    /// Why something stays sealed (an extension of sealed-until, or a part a
    /// disclosure withholds).
    SealReason, "unknown_code", "seal reason",
    {
        /// The investigation is still going on.
        InvestigationOngoing = "investigation_ongoing",
        /// National security.
        NationalSecurity = "national_security",
        /// Court proceedings are pending.
        ProceedingsPending = "proceedings_pending",
        /// Disclosure would endanger a person.
        RiskToPerson = "risk_to_person",
        /// Disclosure would expose uninvolved third parties.
        ThirdPartyPrivacy = "third_party_privacy",
    }
);

closed_set!(
    /// Why an agency withdrew an entry.
    WithdrawalReason, "unknown_code", "withdrawal reason",
    {
        /// The entry was made in error.
        IssuedInError = "issued_in_error",
        /// Access is no longer needed.
        NoLongerNeeded = "no_longer_needed",
        /// The order was quashed or revoked.
        OrderQuashed = "order_quashed",
        /// A later entry replaces it.
        Superseded = "superseded",
    }
);

closed_set!(
    /// The role a registered key plays.
    Role, "unknown_code", "role",
    {
        /// An agency: signs requests, emergencies, withdrawals, outcomes, disclosures.
        Agency = "agency",
        /// A court: signs ratifications, extensions, disclosures.
        Court = "court",
        /// The log itself: its checkpoint and registry key (changed only by `rotate`).
        Log = "log",
        /// A custodian: holds one share of each escrowed key and signs
        /// receipts for the shares it releases (threshold custody).
        Custodian = "custodian",
        /// A provider: signs release receipts.
        Provider = "provider",
        /// A witness the log asks to cosign (a cosignature/v1 key).
        Witness = "witness",
    }
);

closed_set!(
    /// Why a provider refused a request on its content (the gate's content
    /// lines; `schemas::content_policy`).
    RefusalReason, "unknown_code", "refusal reason",
    {
        /// It asks for a data category the provider does not release.
        CategoryNotAllowed = "category_not_allowed",
        /// It asks for a data category the provider refuses.
        CategoryDenied = "category_denied",
        /// It was issued by a type of authority the provider does not accept.
        IssuerNotAllowed = "issuer_not_allowed",
        /// It comes from a jurisdiction the provider refuses.
        JurisdictionDenied = "jurisdiction_denied",
        /// It comes from a jurisdiction the provider does not serve.
        JurisdictionNotAllowed = "jurisdiction_not_allowed",
        /// It is for an offence the provider does not release for.
        OffenceNotAllowed = "offence_not_allowed",
        /// It names more targets than the provider takes per request.
        TooManyTargets = "too_many_targets",
        /// Its validity window is longer than the provider allows.
        ValidityTooLong = "validity_too_long",
    }
);

closed_set!(
    /// What a registry entry does.
    RegistryAction, "unknown_code", "registry action",
    {
        /// Registers the key for the role.
        Add = "add",
        /// Sets how many witnesses must cosign a checkpoint (role `witness`).
        Quorum = "quorum",
        /// Revokes the key (for the role): records it signs after this entry are refused.
        Revoke = "revoke",
        /// Replaces `replaces` by `key` for the same identity: records the old
        /// key signed before this entry stay valid, after it they are refused.
        Rotate = "rotate",
    }
);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn timestamps_are_written_as_chrono_writes_them() {
        let chrono_text = |t: &DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let mut seconds = 0i64;
        // Every field width, across 1970..2300, in irregular steps.
        while seconds < 10_500_000_000 {
            let t = DateTime::from_timestamp(seconds, 0).unwrap();
            assert_eq!(Timestamp(t).to_string(), chrono_text(&t));
            seconds += 7_777_777 + seconds % 3_601;
        }
        // The cases written by chrono itself: a leap second, a year past 9999.
        let leap = DateTime::from_timestamp(1_483_228_799, 1_500_000_000).unwrap();
        assert_eq!(Timestamp(leap).to_string(), "2016-12-31T23:59:60Z");
        let far = DateTime::from_timestamp(253_402_300_800, 0).unwrap();
        assert_eq!(Timestamp(far).to_string(), chrono_text(&far));
        let parsed = Timestamp::parse("2026-01-02T03:04:05Z").unwrap();
        assert_eq!(parsed.to_string(), "2026-01-02T03:04:05Z");
    }

    #[test]
    fn country_list_is_sorted_and_complete() {
        let mut sorted = ISO_3166_1_ALPHA2.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, ISO_3166_1_ALPHA2.to_vec());
        assert!(Jurisdiction::new("US-CA").is_ok());
        assert!(Jurisdiction::new("DE").is_ok());
        for bad in [
            "XX", "us", "UK", "EU", "USA", "US-", "US-ca", "US-ABCD", "", "D",
        ] {
            assert_eq!(
                Jurisdiction::new(bad).unwrap_err().code(),
                "bad_country_code",
                "{bad}"
            );
        }
    }

    #[test]
    fn timestamps_are_strict() {
        let t = Timestamp::parse("2026-07-01T12:00:00Z").unwrap();
        assert_eq!(t.to_string(), "2026-07-01T12:00:00Z");
        for bad in [
            "2026-07-01T12:00:00+00:00",
            "2026-07-01T12:00:00.000Z",
            "2026-07-01 12:00:00Z",
            "2026-07-01T12:00:00z",
            "2026-02-30T12:00:00Z",
            "2026-07-01T24:00:00Z",
            "2026-12-31T23:59:60Z",
            "1969-12-31T23:59:59Z",
            "+2026-07-01T12:00:00Z",
        ] {
            assert_eq!(
                Timestamp::parse(bad).unwrap_err().code(),
                "bad_time",
                "{bad}"
            );
        }
    }

    #[test]
    fn closed_sets_sort_by_name() {
        for w in DataCategory::ALL.windows(2) {
            assert!(w[0].as_str() < w[1].as_str());
        }
        for w in Offence::ALL.windows(2) {
            assert!(w[0].as_str() < w[1].as_str());
        }
        assert_eq!(
            serde_json::to_string(&DataCategory::StoredKeys).unwrap(),
            "\"stored_keys\""
        );
    }

    #[test]
    fn text_rules() {
        assert!(Text::new("18 U.S.C. § 2518").is_ok());
        for bad in ["", " x", "x ", "a\nb", "a\u{7}b", &"x".repeat(201)] {
            assert_eq!(Text::new(bad).unwrap_err().code(), "bad_text", "{bad:?}");
        }
    }
}
