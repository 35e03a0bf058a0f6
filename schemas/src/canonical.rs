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

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use serde::{ser, Serialize};
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

/// Whether any of the 8 bytes in `w` is below 0x20, `"` or `\\` (the
/// bytes RFC 8785 escapes). Exact: `x - 0x01.. & !x & 0x80..` is nonzero
/// iff some byte of x is zero, and with 0x20 for 0x01 iff some byte is
/// below 0x20.
fn needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_in = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    let quote = zero_in(w ^ (ONES * u64::from(b'"')));
    let backslash = zero_in(w ^ (ONES * u64::from(b'\\')));
    control | quote | backslash != 0
}

/// The canonical bytes of `value`.
pub fn to_vec(value: &Value) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(512);
    write(value, &mut out)?;
    Ok(out)
}

/// Writes a JSON string in RFC 8785 form.
pub fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    write_escaped(s, out);
    out.push(b'"');
}

/// Writes the inside of a JSON string in RFC 8785 form (no quotes).
fn write_escaped(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    // Nearly every string in a record needs no escape: find that out 8
    // bytes at a time, and copy the clean part whole.
    let mut clean = 0;
    for word in bytes.chunks_exact(8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        if needs_escape(u64::from_le_bytes(w)) {
            break;
        }
        clean += 8;
    }
    while clean < bytes.len() && !matches!(bytes[clean], 0x00..=0x1f | b'"' | b'\\') {
        clean += 1;
    }
    if clean == bytes.len() {
        out.extend_from_slice(bytes);
        return;
    }
    out.extend_from_slice(&bytes[..clean]);
    let mut start = clean;
    for (i, &b) in bytes.iter().enumerate().skip(clean) {
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
}

// ---------------------------------------------------------------------------
// Straight from serde, without a `Value`

/// Why an [`Encoder`] could not write a value, in the terms of the path it
/// replaces: `serde_json::to_value` failing (`Serialize`), or [`write`]
/// refusing the value it gives (`NonCanonical`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum EncodeError {
    /// `serde_json::to_value` would fail: a map key that is not a string,
    /// a number out of range, or a `Serialize` impl's own error.
    Serialize(String),
    /// [`write`] would refuse the value: a number outside +-(2^53-1).
    NonCanonical(String),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::Serialize(m) | EncodeError::NonCanonical(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for EncodeError {}

impl ser::Error for EncodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        EncodeError::Serialize(msg.to_string())
    }
}

/// One member of an object being written: its name, and where
/// `"name":value` sits in the output.
struct Member {
    key: Cow<'static, str>,
    start: usize,
    end: usize,
}

/// Writes values in canonical form straight from their `Serialize` impls:
/// the same bytes as [`write`] of `serde_json::to_value(value)`, without
/// the `Value` tree. Records are parsed and re-encoded at every admission
/// and every index build; the tree cost an allocation per member and a
/// UTF-16 sort of every object, about half of a parse (callgrind).
///
/// Members are written in the order `Serialize` gives them; an object whose
/// names did not come sorted is put in order when it ends (a copy of its
/// bytes), and of two members with one name the later one stays, as in a
/// `serde_json::Map`.
pub(crate) struct Encoder {
    out: Vec<u8>,
    /// The members of the objects being written, innermost last.
    members: Vec<Member>,
    /// Where an object's members wait while they are put in order.
    scratch: Vec<u8>,
}

impl Encoder {
    /// An encoder whose output starts with room for `capacity` bytes.
    pub(crate) fn with_capacity(capacity: usize) -> Encoder {
        // Room for a record's members and its body's bytes up front: the
        // vectors would otherwise grow (reallocate) during every encoding.
        Encoder {
            out: Vec::with_capacity(capacity),
            members: Vec::with_capacity(32),
            scratch: Vec::with_capacity(capacity),
        }
    }

    /// Appends bytes as they are (punctuation the caller knows is canonical).
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Appends a string in RFC 8785 form.
    pub(crate) fn string(&mut self, s: &str) {
        write_string(s, &mut self.out);
    }

    /// Appends the canonical form of `value`.
    pub(crate) fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        value.serialize(self)
    }

    /// How many bytes are written so far.
    pub(crate) fn len(&self) -> usize {
        self.out.len()
    }

    /// The bytes written.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.out
    }

    fn u64(&mut self, n: u64) -> Result<(), EncodeError> {
        if n > MAX_SAFE_INTEGER {
            return Err(out_of_range(n));
        }
        write_decimal(n, &mut self.out);
        Ok(())
    }

    fn i64(&mut self, n: i64) -> Result<(), EncodeError> {
        if n >= 0 {
            return self.u64(n.unsigned_abs());
        }
        if n.unsigned_abs() > MAX_SAFE_INTEGER {
            return Err(out_of_range(n));
        }
        self.out.push(b'-');
        write_decimal(n.unsigned_abs(), &mut self.out);
        Ok(())
    }

    /// Floats go through `serde_json::Value`, whose spelling of them the
    /// refusal repeats; records hold none.
    fn float<T: Serialize>(&mut self, v: T) -> Result<(), EncodeError> {
        let value = serde_json::to_value(v).map_err(|e| EncodeError::Serialize(e.to_string()))?;
        write(&value, &mut self.out).map_err(EncodeError::NonCanonical)
    }

    fn begin_object(&mut self) -> Object {
        self.out.push(b'{');
        Object {
            base: self.members.len(),
            start: self.out.len(),
            sorted: true,
        }
    }

    /// Starts the member `key` of `object`; its value is written next.
    fn member(&mut self, object: &mut Object, key: Cow<'static, str>) {
        if let Some(last) = self.members[object.base..].last() {
            self.out.push(b',');
            if utf16_cmp(&last.key, &key) != Ordering::Less {
                object.sorted = false;
            }
        }
        let start = self.out.len();
        write_string(&key, &mut self.out);
        self.out.push(b':');
        self.members.push(Member {
            key,
            start,
            end: start,
        });
    }

    /// Ends the member whose value was just written.
    fn member_done(&mut self) {
        let end = self.out.len();
        if let Some(m) = self.members.last_mut() {
            m.end = end;
        }
    }

    fn end_object(&mut self, object: Object) {
        if !object.sorted {
            let Encoder {
                out,
                members,
                scratch,
            } = self;
            scratch.clear();
            scratch.extend_from_slice(&out[object.start..]);
            out.truncate(object.start);
            let ms = &mut members[object.base..];
            // Stable: of members with one name, the later stays last.
            ms.sort_by(|a, b| utf16_cmp(&a.key, &b.key));
            let mut first = true;
            for (i, m) in ms.iter().enumerate() {
                if ms.get(i + 1).is_some_and(|next| next.key == m.key) {
                    continue;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                out.extend_from_slice(&scratch[m.start - object.start..m.end - object.start]);
            }
        }
        self.members.truncate(object.base);
        self.out.push(b'}');
    }
}

/// An object being written: its first member in `Encoder::members`, where
/// its members start in the output, and whether they came sorted so far.
struct Object {
    base: usize,
    start: usize,
    sorted: bool,
}

/// RFC 8785's member order: by UTF-16 code units. That is byte order
/// unless the first difference is between two non-ASCII characters (where
/// U+E000..U+FFFF sort after the surrogates of U+10000 and up in UTF-16
/// and before them in UTF-8); every name records use is ASCII.
fn utf16_cmp(a: &str, b: &str) -> Ordering {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    match x.iter().zip(y).position(|(p, q)| p != q) {
        None => x.len().cmp(&y.len()),
        Some(i) if x[i] < 0x80 || y[i] < 0x80 => x[i].cmp(&y[i]),
        Some(_) => a.encode_utf16().cmp(b.encode_utf16()),
    }
}

/// [`write`]'s refusal of an integer out of range, word for word.
fn out_of_range(n: impl fmt::Display) -> EncodeError {
    EncodeError::NonCanonical(format!("number {n} is not an integer within +-(2^53-1)"))
}

fn write_decimal(mut n: u64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        // n % 10 < 10: the cast keeps it.
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Escapes what a `Display` impl writes straight into the output, so
/// `collect_str` (timestamps, keys) needs no `String` of its own.
struct Escaping<'a>(&'a mut Vec<u8>);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_escaped(s, self.0);
        Ok(())
    }
}

/// An array, an object, or either inside a one-member object naming an
/// enum variant (`{"variant":...}`, as serde_json writes them).
pub(crate) struct Compound<'a> {
    enc: &'a mut Encoder,
    /// `None` for an array; the object otherwise.
    object: Option<Object>,
    /// Whether the array or object is the value of a `{"variant":...}`.
    variant: bool,
    first: bool,
}

impl<'a> Compound<'a> {
    fn array(enc: &'a mut Encoder, variant: bool) -> Compound<'a> {
        enc.out.push(b'[');
        Compound {
            enc,
            object: None,
            variant,
            first: true,
        }
    }

    fn object(enc: &'a mut Encoder, variant: bool) -> Compound<'a> {
        let object = Some(enc.begin_object());
        Compound {
            enc,
            object,
            variant,
            first: true,
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        if !self.first {
            self.enc.out.push(b',');
        }
        self.first = false;
        value.serialize(&mut *self.enc)
    }

    fn field<T: Serialize + ?Sized>(
        &mut self,
        key: Cow<'static, str>,
        value: &T,
    ) -> Result<(), EncodeError> {
        let object = self
            .object
            .as_mut()
            .ok_or_else(|| ser::Error::custom("a member outside an object"))?;
        self.enc.member(object, key);
        value.serialize(&mut *self.enc)?;
        self.enc.member_done();
        Ok(())
    }

    fn finish(self) -> Result<(), EncodeError> {
        match self.object {
            None => self.enc.out.push(b']'),
            Some(object) => self.enc.end_object(object),
        }
        if self.variant {
            self.enc.out.push(b'}');
        }
        Ok(())
    }
}

impl<'a> ser::Serializer for &'a mut Encoder {
    type Ok = ();
    type Error = EncodeError;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = MapCompound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), EncodeError> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), EncodeError> {
        self.i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), EncodeError> {
        self.i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), EncodeError> {
        self.i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), EncodeError> {
        self.i64(v)
    }
    fn serialize_i128(self, v: i128) -> Result<(), EncodeError> {
        if let Ok(u) = u64::try_from(v) {
            self.u64(u)
        } else if let Ok(i) = i64::try_from(v) {
            self.i64(i)
        } else {
            Err(EncodeError::Serialize("number out of range".into()))
        }
    }
    fn serialize_u8(self, v: u8) -> Result<(), EncodeError> {
        self.u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), EncodeError> {
        self.u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), EncodeError> {
        self.u64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), EncodeError> {
        self.u64(v)
    }
    fn serialize_u128(self, v: u128) -> Result<(), EncodeError> {
        let u =
            u64::try_from(v).map_err(|_| EncodeError::Serialize("number out of range".into()))?;
        self.u64(u)
    }
    fn serialize_f32(self, v: f32) -> Result<(), EncodeError> {
        self.float(v)
    }
    fn serialize_f64(self, v: f64) -> Result<(), EncodeError> {
        self.float(v)
    }
    fn serialize_char(self, v: char) -> Result<(), EncodeError> {
        self.string(v.encode_utf8(&mut [0u8; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), EncodeError> {
        self.string(v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), EncodeError> {
        self.out.push(b'[');
        for (i, b) in v.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            write_decimal((*b).into(), &mut self.out);
        }
        self.out.push(b']');
        Ok(())
    }
    fn serialize_none(self) -> Result<(), EncodeError> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), EncodeError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), EncodeError> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), EncodeError> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), EncodeError> {
        self.string(variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        self.out.push(b'{');
        self.string(variant);
        self.out.push(b':');
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a>, EncodeError> {
        Ok(Compound::array(self, false))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Compound<'a>, EncodeError> {
        Ok(Compound::array(self, false))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, EncodeError> {
        Ok(Compound::array(self, false))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, EncodeError> {
        self.out.push(b'{');
        self.string(variant);
        self.out.push(b':');
        Ok(Compound::array(self, true))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<MapCompound<'a>, EncodeError> {
        Ok(MapCompound {
            inner: Compound::object(self, false),
            key: None,
        })
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, EncodeError> {
        Ok(Compound::object(self, false))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, EncodeError> {
        self.out.push(b'{');
        self.string(variant);
        self.out.push(b':');
        Ok(Compound::object(self, true))
    }
    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<(), EncodeError> {
        self.out.push(b'"');
        fmt::write(&mut Escaping(&mut self.out), format_args!("{value}"))
            .map_err(|_| ser::Error::custom("a Display impl failed"))?;
        self.out.push(b'"');
        Ok(())
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.element(value)
    }
    fn end(self) -> Result<(), EncodeError> {
        self.finish()
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.element(value)
    }
    fn end(self) -> Result<(), EncodeError> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.element(value)
    }
    fn end(self) -> Result<(), EncodeError> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.element(value)
    }
    fn end(self) -> Result<(), EncodeError> {
        self.finish()
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        self.field(Cow::Borrowed(key), value)
    }
    fn end(self) -> Result<(), EncodeError> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        self.field(Cow::Borrowed(key), value)
    }
    fn end(self) -> Result<(), EncodeError> {
        self.finish()
    }
}

/// A map: its keys become member names as serde_json's `Value` makes them.
pub(crate) struct MapCompound<'a> {
    inner: Compound<'a>,
    key: Option<String>,
}

impl ser::SerializeMap for MapCompound<'_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), EncodeError> {
        self.key = Some(key.serialize(MapKey)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| ser::Error::custom("serialize_value called before serialize_key"))?;
        self.inner.field(Cow::Owned(key), value)
    }
    fn end(self) -> Result<(), EncodeError> {
        self.inner.finish()
    }
}

/// A map key as serde_json's `Value` spells it: strings, and numbers,
/// booleans and unit variants as their text; anything else is refused.
struct MapKey;

fn key_must_be_a_string() -> EncodeError {
    EncodeError::Serialize("key must be a string".into())
}

impl ser::Serializer for MapKey {
    type Ok = String;
    type Error = EncodeError;
    type SerializeSeq = ser::Impossible<String, EncodeError>;
    type SerializeTuple = ser::Impossible<String, EncodeError>;
    type SerializeTupleStruct = ser::Impossible<String, EncodeError>;
    type SerializeTupleVariant = ser::Impossible<String, EncodeError>;
    type SerializeMap = ser::Impossible<String, EncodeError>;
    type SerializeStruct = ser::Impossible<String, EncodeError>;
    type SerializeStructVariant = ser::Impossible<String, EncodeError>;

    fn serialize_bool(self, v: bool) -> Result<String, EncodeError> {
        Ok(v.to_string())
    }
    fn serialize_i8(self, v: i8) -> Result<String, EncodeError> {
        Ok(v.to_string())
    }
    fn serialize_i16(self, v: i16) -> Result<String, EncodeError> {
        Ok(v.to_string())
    }
    fn serialize_i32(self, v: i32) -> Result<String, EncodeError> {
        Ok(v.to_string())
    }
    fn serialize_i64(self, v: i64) -> Result<String, EncodeError> {
        Ok(v.to_string())
    }
    fn serialize_i128(self, v: i128) -> Result<String, EncodeError> {
        Ok(v.to_string())
    }
    fn serialize_u8(self, v: u8) -> Result<String, EncodeError> {
        Ok(v.to_string())
    }
    fn serialize_u16(self, v: u16) -> Result<String, EncodeError> {
        Ok(v.to_string())
    }
    fn serialize_u32(self, v: u32) -> Result<String, EncodeError> {
        Ok(v.to_string())
    }
    fn serialize_u64(self, v: u64) -> Result<String, EncodeError> {
        Ok(v.to_string())
    }
    fn serialize_u128(self, v: u128) -> Result<String, EncodeError> {
        Ok(v.to_string())
    }
    fn serialize_f32(self, v: f32) -> Result<String, EncodeError> {
        float_key(v)
    }
    fn serialize_f64(self, v: f64) -> Result<String, EncodeError> {
        float_key(v)
    }
    fn serialize_char(self, v: char) -> Result<String, EncodeError> {
        Ok(v.to_string())
    }
    fn serialize_str(self, v: &str) -> Result<String, EncodeError> {
        Ok(v.to_owned())
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<String, EncodeError> {
        Err(key_must_be_a_string())
    }
    fn serialize_none(self) -> Result<String, EncodeError> {
        Err(key_must_be_a_string())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<String, EncodeError> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit(self) -> Result<String, EncodeError> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<String, EncodeError> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<String, EncodeError> {
        Ok(variant.to_owned())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<String, EncodeError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<String, EncodeError> {
        Err(key_must_be_a_string())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, EncodeError> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, EncodeError> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, EncodeError> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, EncodeError> {
        Err(key_must_be_a_string())
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, EncodeError> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, EncodeError> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, EncodeError> {
        Err(key_must_be_a_string())
    }
}

/// A float map key as serde_json's `Value` spells it.
fn float_key<T: Serialize + Into<f64> + Copy>(v: T) -> Result<String, EncodeError> {
    if !v.into().is_finite() {
        return Err(EncodeError::Serialize(
            "float key must be finite (got NaN or +/-inf)".into(),
        ));
    }
    match serde_json::to_value(v) {
        Ok(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(key_must_be_a_string()),
    }
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

    /// The encoder against the path it replaces: `serde_json::to_value`,
    /// then [`write`]; bytes or error alike.
    fn both<T: Serialize + ?Sized>(v: &T) {
        let mut enc = Encoder::with_capacity(0);
        let fast = enc.value(v).map(|()| enc.into_bytes());
        let slow = match serde_json::to_value(v) {
            Err(e) => Err(EncodeError::Serialize(e.to_string())),
            Ok(value) => to_vec(&value).map_err(EncodeError::NonCanonical),
        };
        assert_eq!(
            fast.as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned()),
            slow.as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
        );
    }

    #[derive(Serialize)]
    struct Inner {
        b: bool,
        a: &'static str,
    }

    #[derive(Serialize)]
    enum Variants {
        Unit,
        New(u8),
        Tuple(u8, i8),
        Struct { y: u8, x: Inner },
    }

    #[derive(Serialize)]
    struct Unsorted {
        zeta: u32,
        alpha: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        mid: Vec<Inner>,
        #[serde(rename = "\u{fb33}")]
        bmp: u8,
        #[serde(rename = "\u{1f600}")]
        astral: u8,
        #[serde(rename = "a\"b")]
        quoted: u8,
        map: std::collections::BTreeMap<String, i64>,
        variants: Vec<Variants>,
        tuple: (u8, char, ()),
        empty: Vec<u8>,
    }

    /// Emits `key` twice: a map keeps the later value.
    struct Twice;
    impl Serialize for Twice {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use ser::SerializeStruct as _;
            let mut st = s.serialize_struct("Twice", 3)?;
            st.serialize_field("key", &1)?;
            st.serialize_field("a", &2)?;
            st.serialize_field("key", &3)?;
            st.end()
        }
    }

    struct Bytes(&'static [u8]);
    impl Serialize for Bytes {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }

    #[test]
    fn encoder_writes_what_value_and_write_write() {
        let map = [
            ("b", 1),
            ("a", -2),
            ("\u{e000}", 3),
            ("\u{10000}", 4),
            ("", 5),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        both(&Unsorted {
            zeta: u32::MAX,
            alpha: None,
            skipped: None,
            mid: vec![
                Inner { b: true, a: "x" },
                Inner {
                    b: false,
                    a: "\u{1}\"\\\n\u{7f}é",
                },
            ],
            bmp: 1,
            astral: 2,
            quoted: 3,
            map,
            variants: vec![
                Variants::Unit,
                Variants::New(7),
                Variants::Tuple(1, -1),
                Variants::Struct {
                    y: 1,
                    x: Inner { b: true, a: "" },
                },
            ],
            tuple: (0, '\u{8}', ()),
            empty: vec![],
        });
        both(&Twice);
        both(&Bytes(&[0, 1, 255]));
        both(&Some(Some(())));
        both(&[i64::MIN, -9007199254740991, -1, 0, 9007199254740991]);
        for n in [MAX_SAFE_INTEGER, MAX_SAFE_INTEGER + 1, u64::MAX] {
            both(&n);
            both(&vec![n]);
        }
        for n in [-9007199254740992i64, i64::MIN] {
            both(&n);
        }
        for n in [u128::MAX, 5, u128::from(u64::MAX)] {
            both(&n);
        }
        for n in [i128::MIN, -5, i128::from(i64::MIN)] {
            both(&n);
        }
        for f in [1.5f64, 0.0, -0.0, f64::NAN, f64::INFINITY, 1e300] {
            both(&f);
        }
        both(&1.5f32);
        // Map keys that are not strings.
        let ints: std::collections::BTreeMap<i32, u8> = [(10, 1), (-2, 2), (3, 3)].into();
        both(&ints);
        let bools: std::collections::BTreeMap<bool, u8> = [(true, 1), (false, 2)].into();
        both(&bools);
        let units: std::collections::BTreeMap<(), u8> = [((), 1)].into();
        both(&units);
        let seqs: std::collections::BTreeMap<Vec<u8>, u8> = [(vec![1], 1)].into();
        both(&seqs);
    }

    #[test]
    fn strings_escape_like_write_string_at_every_position() {
        let specials = [
            '"', '\\', '\u{0}', '\u{8}', '\t', '\n', '\u{c}', '\r', '\u{1f}',
        ];
        for len in 0..40 {
            let base: String = "abcdefghij0123456789ABCDEFGHIJ\u{e9}xyzwvu"
                .chars()
                .take(len)
                .collect();
            both(&base);
            for at in 0..=len {
                for c in specials {
                    let mut t: String = base.chars().take(at).collect();
                    t.push(c);
                    t.extend(base.chars().skip(at));
                    both(&t);
                }
            }
        }
    }

    #[test]
    fn needs_escape_is_exact_for_every_byte_and_pair() {
        let wanted = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
        for pos in 0..8 {
            for b in 0..=255u8 {
                let mut w = [b'a'; 8];
                w[pos] = b;
                assert_eq!(
                    needs_escape(u64::from_le_bytes(w)),
                    wanted(b),
                    "{b:#x} at {pos}"
                );
            }
        }
        // Borrows between neighbouring bytes must not make or hide a hit.
        for pos in [0, 3, 6] {
            for b1 in 0..=255u8 {
                for b2 in 0..=255u8 {
                    let mut w = [0x80; 8];
                    w[pos] = b1;
                    w[pos + 1] = b2;
                    assert_eq!(
                        needs_escape(u64::from_le_bytes(w)),
                        wanted(b1) || wanted(b2),
                        "{b1:#x} {b2:#x} at {pos}"
                    );
                }
            }
        }
    }

    #[test]
    fn member_order_is_utf16_order() {
        let names = [
            "",
            "a",
            "ab",
            "b",
            "\u{7f}",
            "\u{80}",
            "\u{e9}",
            "\u{e9}a",
            "\u{ff}",
            "\u{20ac}",
            "\u{e000}",
            "\u{fb33}",
            "\u{ffff}",
            "\u{10000}",
            "\u{1f600}",
            "a\u{1f600}",
            "a\u{fb33}",
        ];
        for a in names {
            for b in names {
                assert_eq!(
                    utf16_cmp(a, b),
                    a.encode_utf16().cmp(b.encode_utf16()),
                    "{a:?} {b:?}"
                );
            }
        }
    }
}
