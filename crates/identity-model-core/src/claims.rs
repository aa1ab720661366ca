//! A JWT claims set (RFC 7519 section 4): registered claims typed, the rest kept as JSON, and the
//! raw payload available.

use serde_json::{Map, Value};

use crate::error::{Error, malformed};
use crate::json_object;

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
}

/// The claims of a validated JWT.
#[derive(Debug, Clone)]
pub struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Vec<String>>,
    exp: Option<NumericDate>,
    nbf: Option<NumericDate>,
    iat: Option<NumericDate>,
    jti: Option<String>,
    other: Map<String, Value>,
    raw: String,
}

impl Claims {
    /// Parses a payload as a claims set: a JSON object without duplicate members whose
    /// registered claims have their registered types. Anything else is `malformed_token`.
    pub fn from_json(payload: Vec<u8>) -> Result<Claims, Error> {
        let object = json_object::parse(&payload, true)
            .map_err(|e| malformed("payload is not a JSON object of claims").with_source(e))?;
        let mut other = object.members;
        let raw = String::from_utf8(payload).map_err(|e| malformed("payload is not UTF-8").with_source(e))?;
        let [exp, nbf, iat] = object.dates.map(|d| d.map(NumericDate));
        Ok(Claims {
            iss: take_string(&mut other, "iss")?,
            sub: take_string(&mut other, "sub")?,
            aud: take_audience(&mut other)?,
            jti: take_string(&mut other, "jti")?,
            exp,
            nbf,
            iat,
            other,
            raw,
        })
    }

    /// `iss`.
    pub fn iss(&self) -> Option<&str> {
        self.iss.as_deref()
    }

    /// `sub`.
    pub fn sub(&self) -> Option<&str> {
        self.sub.as_deref()
    }

    /// `aud`, as a list whether the token carried a string or an array.
    pub fn aud(&self) -> Option<&[String]> {
        self.aud.as_deref()
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
        self.jti.as_deref()
    }

    /// A claim other than the registered ones above (`scope`, `client_id`, `nonce`, ...).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.other.get(name)
    }

    /// The claims other than the registered ones above.
    pub fn other(&self) -> &Map<String, Value> {
        &self.other
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
            _ => self.other.contains_key(name),
        }
    }

    /// The payload JSON exactly as it was signed.
    pub fn raw_json(&self) -> &str {
        &self.raw
    }
}

fn take_string(claims: &mut Map<String, Value>, name: &'static str) -> Result<Option<String>, Error> {
    match claims.remove(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(malformed(format!("claim \"{name}\" is not a string")).with_claim(name)),
    }
}

fn take_audience(claims: &mut Map<String, Value>) -> Result<Option<Vec<String>>, Error> {
    match claims.remove("aud") {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s])),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                _ => Err(malformed("claim \"aud\" holds a non-string").with_claim("aud")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(malformed("claim \"aud\" is neither a string nor an array").with_claim("aud")),
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
        assert_eq!(c.aud().unwrap(), ["a", "b"]);
        assert_eq!(c.exp().unwrap().as_secs_f64(), 10.5);
        assert_eq!(c.get("scope").unwrap(), "x y");
        assert!(c.contains("exp") && !c.contains("nbf") && c.contains("scope"));
        assert!(c.raw_json().starts_with("{\"iss\""));
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
        ] {
            let err = Claims::from_json(bad.as_bytes().to_vec()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::MalformedToken, "{bad}");
        }
    }
}
