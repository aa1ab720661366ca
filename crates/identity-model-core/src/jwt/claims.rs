//! A JWT claims set (RFC 7519 section 4): registered claims typed, the rest kept as JSON, and the
//! raw payload available.

use std::fmt;
use std::sync::OnceLock;

use serde::de::{self, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::error::{Error, malformed};
use crate::json_object::{self, Audience, Key, Scalar, SeenKeys, Text};

/// The registered claims held as typed fields; every other claim stays in the raw JSON.
const REGISTERED: [&str; 7] = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

/// A NumericDate: seconds since the Unix epoch, any finite JSON number (fractions allowed;
/// magnitudes past `f64` become infinities, which keeps their order).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct NumericDate(f64);

impl NumericDate {
    /// Seconds since the epoch.
    pub fn as_secs_f64(self) -> f64 {
        self.0
    }
}

/// A point in time given to validation: whole seconds since the Unix epoch. The core never reads
/// a clock; the caller passes `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(i64);

impl UnixTime {
    /// `secs` seconds after the epoch.
    pub const fn from_secs(secs: i64) -> Self {
        UnixTime(secs)
    }

    /// Seconds since the epoch.
    pub const fn as_secs(self) -> i64 {
        self.0
    }

    /// The same instant as a [`std::time::SystemTime`] (for HTTP dates), saturating at the
    /// limits `SystemTime` can hold.
    pub fn as_system_time(self) -> std::time::SystemTime {
        let epoch = std::time::UNIX_EPOCH;
        let by = std::time::Duration::from_secs(self.0.unsigned_abs());
        let moved = if self.0 >= 0 { epoch.checked_add(by) } else { epoch.checked_sub(by) };
        moved.unwrap_or(epoch)
    }
}

/// The claims of a validated JWT.
#[derive(Debug, Clone)]
pub struct Claims {
    iss: Option<Text>,
    sub: Option<Text>,
    aud: Option<Vec<Text>>,
    exp: Option<NumericDate>,
    nbf: Option<NumericDate>,
    iat: Option<NumericDate>,
    jti: Option<Text>,
    other: OnceLock<Map<String, Value>>,
    raw: String,
}

impl Claims {
    /// Parses a payload as a claims set: a JSON object without duplicate members whose
    /// registered claims have their registered types. Anything else is `malformed_token`.
    /// Registered claims are read in one pass; the others are parsed only when asked for.
    pub fn from_json(payload: Vec<u8>) -> Result<Claims, Error> {
        let raw = String::from_utf8(payload).map_err(|e| malformed("payload is not UTF-8").with_source(e))?;
        let fields = json_object::parse_with(&raw, ClaimsVisitor)
            .map_err(|e| malformed("payload is not a JSON object of claims").with_source(e))?;
        let iss = json_object::optional_text(fields.iss, &raw, "claim", "iss")?;
        let sub = json_object::optional_text(fields.sub, &raw, "claim", "sub")?;
        let jti = json_object::optional_text(fields.jti, &raw, "claim", "jti")?;
        let aud = fields.aud.map(|Audience(items)| items.into_iter().map(|a| Text::new(a, &raw)).collect());
        let [exp, nbf, iat] = fields.dates;
        Ok(Claims { iss, sub, aud, exp, nbf, iat, jti, other: OnceLock::new(), raw })
    }

    /// `iss`.
    pub fn iss(&self) -> Option<&str> {
        self.iss.as_ref().map(|t| t.get(&self.raw))
    }

    /// `sub`.
    pub fn sub(&self) -> Option<&str> {
        self.sub.as_ref().map(|t| t.get(&self.raw))
    }

    /// `aud`, as a list whether the token carried a string or an array.
    pub fn aud(&self) -> Option<impl ExactSizeIterator<Item = &str> + Clone + '_> {
        self.aud.as_ref().map(|items| items.iter().map(|t| t.get(&self.raw)))
    }

    /// `exp`.
    pub fn exp(&self) -> Option<NumericDate> {
        self.exp
    }

    /// `nbf`.
    pub fn nbf(&self) -> Option<NumericDate> {
        self.nbf
    }

    /// `iat`.
    pub fn iat(&self) -> Option<NumericDate> {
        self.iat
    }

    /// `jti`.
    pub fn jti(&self) -> Option<&str> {
        self.jti.as_ref().map(|t| t.get(&self.raw))
    }

    /// The scopes granted: the `scope` claim split on spaces (RFC 8693, RFC 9068), or an `scp`
    /// claim (an array, or a space-separated string, as some providers send).
    ///
    /// ```
    /// let claims = identity_model_core::Claims::from_json(br#"{"scope":"a  b"}"#.to_vec())?;
    /// assert_eq!(claims.scopes(), ["a", "b"]);
    /// # Ok::<(), identity_model_core::Error>(())
    /// ```
    pub fn scopes(&self) -> Vec<String> {
        let words = |s: &str| s.split(' ').filter(|w| !w.is_empty()).map(str::to_owned).collect();
        match (self.get("scope"), self.get("scp")) {
            (Some(Value::String(scope)), _) => words(scope),
            (_, Some(Value::Array(items))) => {
                items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
            }
            (_, Some(Value::String(scp))) => words(scp),
            _ => Vec::new(),
        }
    }

    /// A claim other than the registered ones above (`scope`, `client_id`, `nonce`, ...).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.other().get(name)
    }

    /// The claims other than the registered ones above (parsed on first use).
    pub fn other(&self) -> &Map<String, Value> {
        self.other.get_or_init(|| {
            // Dates are read as NumericDates (any magnitude), everything else as values; the
            // hot path has already checked that this parse cannot fail.
            let mut members =
                json_object::parse(self.raw.as_bytes(), true).map(|o| o.members).unwrap_or_default();
            for name in REGISTERED {
                members.remove(name);
            }
            members
        })
    }

    /// Whether the claim `name` (registered or not) is present.
    pub fn contains(&self, name: &str) -> bool {
        match name {
            "iss" => self.iss.is_some(),
            "sub" => self.sub.is_some(),
            "aud" => self.aud.is_some(),
            "exp" => self.exp.is_some(),
            "nbf" => self.nbf.is_some(),
            "iat" => self.iat.is_some(),
            "jti" => self.jti.is_some(),
            _ => self.other().contains_key(name),
        }
    }

    /// The payload JSON exactly as it was signed.
    pub fn raw_json(&self) -> &str {
        &self.raw
    }
}

/// The registered claims, read in one pass.
struct ClaimsFields<'de> {
    iss: Option<Scalar<'de>>,
    sub: Option<Scalar<'de>>,
    jti: Option<Scalar<'de>>,
    aud: Option<Audience<'de>>,
    dates: [Option<NumericDate>; 3],
}

struct ClaimsVisitor;

impl<'de> Visitor<'de> for ClaimsVisitor {
    type Value = ClaimsFields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = ClaimsFields { iss: None, sub: None, jti: None, aud: None, dates: [None; 3] };
        let mut seen = SeenKeys::new();
        while let Some(Key(name)) = map.next_key::<Key<'de>>()? {
            if !seen.insert(&name) {
                return Err(de::Error::custom(format_args!("duplicate claim {}", json_object::shown(&name))));
            }
            let slot = match name.as_ref() {
                "iss" => &mut fields.iss,
                "sub" => &mut fields.sub,
                "jti" => &mut fields.jti,
                "aud" => {
                    fields.aud = Some(map.next_value()?);
                    continue;
                }
                "exp" | "nbf" | "iat" => {
                    let index = json_object::DATE_MEMBERS.iter().position(|m| *m == name).unwrap_or(0);
                    let raw: &RawValue = map.next_value()?;
                    let date = json_object::numeric_date(raw).ok_or_else(|| {
                        de::Error::custom(format_args!("claim \"{name}\" must be a JSON number"))
                    })?;
                    fields.dates[index] = Some(NumericDate(date));
                    continue;
                }
                _ => {
                    map.next_value::<json_object::CheckedValue>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value()?);
        }
        Ok(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn registered_claims_are_typed() {
        let c =
            Claims::from_json(br#"{"iss":"i","aud":["a","b"],"exp":10.5,"scope":"x y"}"#.to_vec()).unwrap();
        assert_eq!(c.iss(), Some("i"));
        assert_eq!(c.aud().unwrap().collect::<Vec<_>>(), ["a", "b"]);
        let escaped = Claims::from_json(br#"{"iss":"\u0069","aud":"x"}"#.to_vec()).unwrap();
        assert_eq!((escaped.iss(), escaped.aud().unwrap().collect::<Vec<_>>()), (Some("i"), vec!["x"]));
        assert_eq!(c.exp().unwrap().as_secs_f64(), 10.5);
        assert_eq!(c.get("scope").unwrap(), "x y");
        assert!(c.contains("exp") && !c.contains("nbf") && c.contains("scope"));
        assert!(c.raw_json().starts_with("{\"iss\""));
        // Every claim that passed is representable: nothing is lost when the rest is read.
        let c = Claims::from_json(br#"{"exp":1e400,"n":[1.5,{"k":null}],"s":"\u00e9"}"#.to_vec()).unwrap();
        assert_eq!(c.other().len(), 2);
        assert_eq!(c.get("s").unwrap(), "é");
    }

    #[test]
    fn wrong_types_are_malformed() {
        for bad in [
            r#"{"exp":"1"}"#,
            r#"{"iss":["i"]}"#,
            r#"{"aud":[1]}"#,
            r#"{"aud":{}}"#,
            r#"{"sub":1}"#,
            r#"{"jti":null}"#,
            r#"[]"#,
            r#""claims""#,
            r#"{"a":1,"a":1}"#,
            r#"{"big":1e400}"#,
            r#"{"nested":{"deep":[1,-1e999]}}"#,
        ] {
            let err = Claims::from_json(bad.as_bytes().to_vec()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::MalformedToken, "{bad}");
        }
    }
}
