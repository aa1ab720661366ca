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
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let object = (&mut de).deserialize_map(ObjectVisitor { with_dates })?;
    de.end()?;
    Ok(object)
}

struct ObjectVisitor {
    with_dates: bool,
}

/// A member name, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
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
                    return Err(de::Error::custom(format_args!("duplicate member \"{name}\"")));
                }
                out.dates[slot] =
                    Some(numeric_date(raw).ok_or_else(|| {
                        de::Error::custom(format_args!("\"{name}\" must be a JSON number"))
                    })?);
            } else {
                if out.members.contains_key(name.as_ref()) {
                    return Err(de::Error::custom(format_args!("duplicate member \"{name}\"")));
                }
                let value: Value = map.next_value()?;
                out.members.insert(name.into_owned(), value);
            }
        }
        Ok(out)
    }
}

/// Reads a JSON number's text as `f64`. Overflowing magnitudes become infinities, which keeps
/// their order; anything that is not a JSON number is `None`.
fn numeric_date(raw: &RawValue) -> Option<f64> {
    let text = raw.get();
    let first = *text.as_bytes().first()?;
    if first != b'-' && !first.is_ascii_digit() {
        return None;
    }
    text.parse::<f64>().ok()
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
