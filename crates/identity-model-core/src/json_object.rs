//! JSON objects read strictly: the document must be one object, and no member name may appear
//! twice (RFC 7515 section 5.2 and RFC 7519 section 4 leave duplicates to the parser; we reject
//! them so two parsers can never disagree about a token). NumericDate members are read from the
//! raw number text, so any JSON number, however large, keeps its order (1e400 is +infinity,
//! never an overflow into the past).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The NumericDate members of a JWT claims set that are read from raw number text.
pub(crate) const DATE_MEMBERS: [&str; 3] = ["exp", "nbf", "iat"];

/// A parsed object: all members except the date members, and the date members as `f64`.
#[derive(Debug, Default)]
pub(crate) struct StrictObject {
    pub(crate) members: Map<String, Value>,
    pub(crate) dates: [Option<f64>; 3],
}

/// Parses `bytes` as one JSON object without duplicate members. When `with_dates` is set, the
/// members named in [`DATE_MEMBERS`] must be JSON numbers and land in `dates`.
pub(crate) fn parse(bytes: &[u8], with_dates: bool) -> Result<StrictObject, serde_json::Error> {
    let text = std::str::from_utf8(bytes).map_err(<serde_json::Error as de::Error>::custom)?;
    parse_with(text, ObjectVisitor { with_dates })
}

struct ObjectVisitor {
    with_dates: bool,
}

/// A member name, borrowed from the input when it has no escapes.
pub(crate) struct Key<'de>(pub(crate) Cow<'de, str>);

/// Member names seen so far in one object, to reject duplicates without allocating for the
/// usual handful of members (a hash set takes over past that, so large objects stay linear).
/// Each borrowed name is kept with a fingerprint (its length and first eight bytes), so the
/// usual comparison is one integer compare instead of a string compare (JWT claim names are
/// mostly three bytes long: lengths alone do not tell them apart).
pub(crate) struct SeenKeys<'de> {
    small: [(u64, &'de str); 24],
    len: usize,
    owned: Vec<String>,
    large: Option<std::collections::HashSet<String>>,
}

/// The length and the first eight bytes of `name`, packed.
#[inline]
fn fingerprint(name: &str) -> u64 {
    let bytes = name.as_bytes();
    let mut head = [0u8; 8];
    let n = bytes.len().min(8);
    head[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(head) ^ (bytes.len() as u64).rotate_left(56)
}

impl<'de> SeenKeys<'de> {
    pub(crate) fn new() -> Self {
        SeenKeys { small: [(0, ""); 24], len: 0, owned: Vec::new(), large: None }
    }

    /// Records `name`; `false` when it was seen before.
    #[allow(clippy::ptr_arg)] // borrowed names are kept without copying; owned ones are copied
    pub(crate) fn insert(&mut self, name: &Cow<'de, str>) -> bool {
        if let Some(large) = &mut self.large {
            return large.insert(name.to_string());
        }
        let print = fingerprint(name);
        let seen = self.small[..self.len].iter().any(|(p, k)| *p == print && *k == name.as_ref())
            || self.owned.iter().any(|k| k == name.as_ref());
        if seen {
            return false;
        }
        match name {
            Cow::Borrowed(b) if self.len < self.small.len() => {
                self.small[self.len] = (print, b);
                self.len += 1;
            }
            _ => self.owned.push(name.to_string()),
        }
        if self.len + self.owned.len() > 64 {
            let mut large: std::collections::HashSet<String> =
                self.small[..self.len].iter().map(|(_, k)| k.to_string()).collect();
            large.extend(self.owned.drain(..));
            self.large = Some(large);
        }
        true
    }
}

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = StrictObject;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StrictObject, A::Error> {
        let mut out = StrictObject::default();
        while let Some(Key(name)) = map.next_key::<Key<'de>>()? {
            let date_slot = if self.with_dates { DATE_MEMBERS.iter().position(|m| *m == name) } else { None };
            if let Some(slot) = date_slot {
                let raw: &RawValue = map.next_value()?;
                if out.dates[slot].is_some() {
                    return Err(de::Error::custom(format_args!("duplicate member {}", shown(&name))));
                }
                out.dates[slot] =
                    Some(numeric_date(raw).ok_or_else(|| {
                        de::Error::custom(format_args!("\"{name}\" must be a JSON number"))
                    })?);
            } else {
                if out.members.contains_key(name.as_ref()) {
                    return Err(de::Error::custom(format_args!("duplicate member {}", shown(&name))));
                }
                let StrictValue(value) = map.next_value()?;
                out.members.insert(name.into_owned(), value);
            }
        }
        Ok(out)
    }
}

/// A member value read without building a [`Value`]: strings (borrowed when unescaped) and
/// booleans are kept, anything else is consumed and only its presence noted.
#[derive(Debug)]
pub(crate) enum Scalar<'de> {
    Str(Cow<'de, str>),
    Bool(bool),
    Other,
}

/// An optional member that must be a string when present, kept as [`Text`] of `raw`;
/// `malformed_token` naming it (`what` is "header" or "claim") otherwise.
pub(crate) fn optional_text(
    value: Option<Scalar<'_>>,
    raw: &str,
    what: &str,
    name: &'static str,
) -> Result<Option<Text>, crate::error::Error> {
    match value {
        None => Ok(None),
        Some(Scalar::Str(s)) => Ok(Some(Text::new(s, raw))),
        Some(_) => {
            Err(crate::error::malformed(format!("{what} \"{name}\" is not a string")).with_claim(name))
        }
    }
}

impl<'de> de::Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Scalar::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Scalar::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Other)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// Skips one value like `IgnoredAny`, but has serde_json parse it fully: numbers beyond `f64`
/// (`1e400`) are refused here, so a claims set that passed validation always converts to
/// [`Value`]s later (nothing silently lost in `Claims::other`).
pub(crate) struct CheckedValue;

impl<'de> de::Deserialize<'de> for CheckedValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CheckedVisitor;
        impl<'de> Visitor<'de> for CheckedVisitor {
            type Value = CheckedValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<CheckedValue, E> {
                Ok(CheckedValue)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<CheckedValue, E> {
                Ok(CheckedValue)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<CheckedValue, E> {
                Ok(CheckedValue)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<CheckedValue, E> {
                Ok(CheckedValue)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<CheckedValue, E> {
                Ok(CheckedValue)
            }
            fn visit_unit<E: de::Error>(self) -> Result<CheckedValue, E> {
                Ok(CheckedValue)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<CheckedValue, A::Error> {
                while seq.next_element::<CheckedValue>()?.is_some() {}
                Ok(CheckedValue)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CheckedValue, A::Error> {
                let mut seen = SeenKeys::new();
                while let Some(Key(name)) = map.next_key::<Key<'de>>()? {
                    if !seen.insert(&name) {
                        return Err(de::Error::custom(format_args!("duplicate member {}", shown(&name))));
                    }
                    map.next_value::<CheckedValue>()?;
                }
                Ok(CheckedValue)
            }
        }
        deserializer.deserialize_any(CheckedVisitor)
    }
}

/// A [`Value`] read like serde_json reads one, except that an object with a member name twice,
/// at any depth, is an error (serde_json keeps the last): two parsers must never disagree
/// about a document. Numbers beyond `f64` are refused, as serde_json does.
pub(crate) struct StrictValue(pub(crate) Value);

impl<'de> de::Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrictVisitor;
        impl<'de> Visitor<'de> for StrictVisitor {
            type Value = StrictValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::Bool(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::from(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::from(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<StrictValue, E> {
                serde_json::Number::from_f64(v)
                    .map(|n| StrictValue(Value::Number(n)))
                    .ok_or_else(|| E::custom("a number is not finite"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::String(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::String(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::Null))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<StrictValue, A::Error> {
                let mut items = Vec::new();
                while let Some(StrictValue(item)) = seq.next_element()? {
                    items.push(item);
                }
                Ok(StrictValue(Value::Array(items)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StrictValue, A::Error> {
                let mut members = Map::new();
                while let Some(Key(name)) = map.next_key::<Key<'de>>()? {
                    if members.contains_key(name.as_ref()) {
                        return Err(de::Error::custom(format_args!("duplicate member {}", shown(&name))));
                    }
                    let StrictValue(value) = map.next_value()?;
                    members.insert(name.into_owned(), value);
                }
                Ok(StrictValue(Value::Object(members)))
            }
        }
        deserializer.deserialize_any(StrictVisitor)
    }
}

/// A member name from the input as it may appear in a message: quoted with escapes, at most
/// 64 characters (attacker-chosen text is never written raw).
pub(crate) fn shown(name: &str) -> String {
    let cut: String = name.chars().take(64).collect();
    let quoted = format!("{cut:?}");
    if cut.len() < name.len() { format!("{quoted}...") } else { quoted }
}

/// Parses `bytes` as one JSON object, strictly (no duplicate member at any depth): the one
/// reading path for every document and response the library reads.
pub(crate) fn parse_members(bytes: &[u8]) -> Result<Map<String, Value>, serde_json::Error> {
    parse(bytes, false).map(|o| o.members)
}

/// Runs `visitor` over `text`, which must hold exactly one JSON object. Taking `&str` (UTF-8
/// checked once by the caller) lets serde_json skip re-validating every string.
pub(crate) fn parse_with<'de, V: Visitor<'de>>(
    text: &'de str,
    visitor: V,
) -> Result<V::Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = (&mut de).deserialize_map(visitor)?;
    de.end()?;
    Ok(value)
}

/// Reads a JSON number's text as `f64`. Overflowing magnitudes become infinities, which keeps
/// their order; anything that is not a JSON number is `None`.
pub(crate) fn numeric_date(raw: &RawValue) -> Option<f64> {
    let text = raw.get();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let first = *digits.as_bytes().first()?;
    if !first.is_ascii_digit() {
        return None;
    }
    // Fast path: plain integers of up to 15 digits are exact in f64 (serde_json has already
    // checked the JSON grammar, so no leading zeros or other surprises).
    if digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit()) {
        let value = digits.bytes().fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0')) as f64;
        return Some(if negative { -value } else { value });
    }
    text.parse::<f64>().ok()
}

/// A string member kept as a range of the raw JSON when it had no escapes (no copy), or owned
/// when unescaping changed it.
#[derive(Debug, Clone)]
pub(crate) enum Text {
    Range(usize, usize),
    Owned(Box<str>),
}

impl Text {
    /// `value`, a string read from `raw`: borrowed strings become ranges of `raw`.
    pub(crate) fn new(value: Cow<'_, str>, raw: &str) -> Text {
        if let Cow::Borrowed(s) = &value {
            let start = (s.as_ptr() as usize).wrapping_sub(raw.as_ptr() as usize);
            let end = start.wrapping_add(s.len());
            if raw.get(start..end).is_some_and(|r| std::ptr::eq(r.as_ptr(), s.as_ptr())) {
                return Text::Range(start, end);
            }
        }
        Text::Owned(value.into_owned().into_boxed_str())
    }

    /// The text, given the same `raw` it was read from.
    pub(crate) fn get<'a>(&'a self, raw: &'a str) -> &'a str {
        match self {
            Text::Range(start, end) => raw.get(*start..*end).unwrap_or_default(),
            Text::Owned(s) => s,
        }
    }
}

/// `aud`: a string or an array of strings, read without building a [`Value`].
#[derive(Debug)]
pub(crate) struct Audience<'de>(pub(crate) Vec<Cow<'de, str>>);

impl<'de> de::Deserialize<'de> for Audience<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AudienceVisitor;
        impl<'de> Visitor<'de> for AudienceVisitor {
            type Value = Audience<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("claim \"aud\" as a string or an array of strings")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Audience(vec![Cow::Borrowed(v)]))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Audience(vec![Cow::Owned(v.to_owned())]))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Audience(vec![Cow::Owned(v)]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(Key(item)) = seq.next_element::<Key<'de>>()? {
                    items.push(item);
                }
                Ok(Audience(items))
            }
        }
        deserializer.deserialize_any(AudienceVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_duplicates_and_non_objects() {
        assert!(parse(br#"{"a":1,"a":2}"#, false).is_err());
        assert!(parse(br#"{"exp":1,"exp":2}"#, true).is_err());
        assert!(parse(br#"{"a":1,"\u0061":2}"#, false).is_err(), "escaped duplicate");
        assert!(parse(b"[1]", false).is_err());
        assert!(parse(b"\"x\"", false).is_err());
        assert!(parse(br#"{"a":1} {}"#, false).is_err());
        assert!(parse(br#"{"a":1}"#, false).is_ok());
    }

    #[test]
    fn seen_keys_switch_to_a_set_without_losing_names() {
        let names: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
        let mut seen = SeenKeys::new();
        for name in &names {
            assert!(seen.insert(&Cow::Borrowed(name.as_str())));
        }
        for name in &names {
            assert!(!seen.insert(&Cow::Owned(name.clone())), "{name}");
        }
    }

    #[test]
    fn fingerprints_never_hide_a_name_or_invent_a_duplicate() {
        // Same first eight bytes, same length, a NUL that packs like padding, empty names.
        let names =
            ["iss", "iat", "abcdefgh1", "abcdefgh2", "abcdefgh", "abc", "abc\0", "", "\0", "abcdefgh12"];
        let mut seen = SeenKeys::new();
        let mut reference = std::collections::HashSet::new();
        for name in names.iter().chain(names.iter().rev()) {
            assert_eq!(seen.insert(&Cow::Borrowed(*name)), reference.insert(*name), "{name:?}");
        }
    }

    #[test]
    fn integer_fast_path_agrees_with_float_parsing() {
        for text in [
            "0",
            "-0",
            "1700000000",
            "-1700000000",
            "999999999999999",
            "9999999999999999",
            "1.5",
            "1e3",
            "-2E-2",
        ] {
            let raw = RawValue::from_string(text.to_owned()).unwrap();
            assert_eq!(numeric_date(&raw), text.parse::<f64>().ok(), "{text}");
        }
    }

    #[test]
    fn text_ranges_point_into_the_raw_json() {
        let raw = String::from(r#"{"a":"plain","b":"esc\u0061ped"}"#);
        let plain = Text::new(Cow::Borrowed(&raw[6..11]), &raw);
        assert!(matches!(plain, Text::Range(6, 11)));
        assert_eq!(plain.get(&raw), "plain");
        let elsewhere = String::from("plain");
        assert!(matches!(Text::new(Cow::Borrowed(&elsewhere), &raw), Text::Owned(_)));
        assert_eq!(Text::new(Cow::Owned("escaped".into()), &raw).get(&raw), "escaped");
    }

    #[test]
    fn dates_keep_their_order_however_large() {
        let o = parse(br#"{"exp":1e400,"nbf":-1e400,"iat":12.5}"#, true).unwrap();
        assert_eq!(o.dates, [Some(f64::INFINITY), Some(f64::NEG_INFINITY), Some(12.5)]);
        let o = parse(br#"{"exp":123456789012345678901234567890}"#, true).unwrap();
        assert!(o.dates[0].unwrap() > 1e29);
        for bad in [r#"{"exp":"1"}"#, r#"{"exp":null}"#, r#"{"exp":[1]}"#, r#"{"exp":true}"#] {
            assert!(parse(bad.as_bytes(), true).is_err(), "{bad}");
        }
        // Without dates, the same members are plain values.
        let o = parse(br#"{"exp":"1"}"#, false).unwrap();
        assert_eq!(o.members["exp"], "1");
    }
}
