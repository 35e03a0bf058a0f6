//! The canonical encoding: RFC 8785 (JSON Canonicalization Scheme) for the
//! JSON values records use (objects, arrays, strings, booleans, integers).
//!
//! - objects: members sorted by their names' UTF-16 code units, no whitespace;
//! - strings: UTF-8, only `"` `\` and U+0000..U+001F escaped, with the short
//!   forms `\b \t \n \f \r` and otherwise `\u00xx` (lower-case hex);
//! - numbers: records only hold integers in 0..=2^53-1, written in decimal
//!   (which is what RFC 8785's ECMAScript number form gives for them). A
//!   non-integer number is refused rather than canonicalised.
//!
//! The key order is sorted here, not taken from the map, so the encoding does
//! not depend on whether serde_json's `preserve_order` feature is on.

use serde_json::Value;

/// The largest integer a record holds: 2^53 - 1, the largest integer an
/// IEEE double (and so every JSON reader, RFC 8785 included) keeps exactly.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Writes the canonical form of `value` to `out`. Fails on a number that is
/// not an integer in -(2^53-1)..=2^53-1.
pub fn write(value: &Value, out: &mut Vec<u8>) -> Result<(), String> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64().filter(|u| *u <= MAX_SAFE_INTEGER) {
                out.extend_from_slice(u.to_string().as_bytes());
            } else if let Some(i) = n.as_i64().filter(|i| i.unsigned_abs() <= MAX_SAFE_INTEGER) {
                out.extend_from_slice(i.to_string().as_bytes());
            } else {
                return Err(format!("number {n} is not an integer within +-(2^53-1)"));
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write(v, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// The canonical bytes of `value`.
pub fn to_vec(value: &Value) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(512);
    write(value, &mut out)?;
    Ok(out)
}

/// Writes a JSON string in RFC 8785 form.
pub fn write_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x09 => b"\\t",
            0x0a => b"\\n",
            0x0c => b"\\f",
            0x0d => b"\\r",
            0x00..=0x1f => &[],
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn canon(text: &str) -> String {
        let v: Value = serde_json::from_str(text).unwrap();
        String::from_utf8(to_vec(&v).unwrap()).unwrap()
    }

    #[test]
    fn sorts_members_by_utf16_and_drops_whitespace() {
        assert_eq!(
            canon(r#"{ "b": 1, "a": [ true, null ] }"#),
            r#"{"a":[true,null],"b":1}"#
        );
        // RFC 8785 3.2.3 sorts by UTF-16 code units: U+20AC (20AC) before
        // U+1F600 (surrogates D83D DE00) ...
        assert_eq!(
            canon("{\"\u{20ac}\":1,\"\u{1f600}\":2}"),
            "{\"\u{20ac}\":1,\"\u{1f600}\":2}"
        );
        // ... while UTF-8 byte order would put U+FB33 (EF AC B3) after U+1F600 (F0 ...):
        // UTF-16 puts the surrogates (D83D) first.
        assert_eq!(
            canon("{\"\u{fb33}\":1,\"\u{1f600}\":2}"),
            "{\"\u{1f600}\":2,\"\u{fb33}\":1}"
        );
    }

    #[test]
    fn escapes_like_rfc8785() {
        assert_eq!(
            canon(r#""\u0041\/\"\\\b\f\n\r\t\u0001\u001f\u007f\u00e9""#),
            "\"A/\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\u{7f}\u{e9}\""
        );
    }

    #[test]
    fn numbers_are_integers_only() {
        assert_eq!(canon("[0,-1,9007199254740991]"), "[0,-1,9007199254740991]");
        // serde_json reads -0 as a float: refused like every non-integer.
        for bad in [
            "-0",
            "1.0",
            "1e3",
            "9007199254740992",
            "-9007199254740992",
            "0.5",
        ] {
            let v: Value = serde_json::from_str(bad).unwrap();
            assert!(to_vec(&v).is_err(), "{bad}");
        }
    }
}
