//! Rules on claims beside scopes, per route: a claim equal to a value, one of values, or (an
//! array claim such as `groups` or `roles`) containing one or all of values. Claims are named
//! by their name, or by a dotted path into nested objects (`realm_access.roles`): the whole
//! name is looked up first (claim names may hold dots, `https://example.com/roles`), then the
//! path. A check whose token fails a rule is refused with 403 `insufficient_claims`.

use identity_model::ValidToken;
use serde::Deserialize;
use serde_json::Value;

/// A claim rule as written in the file: `claim` and exactly one test.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClaimRuleFile {
    claim: String,
    equals: Option<toml::Value>,
    one_of: Option<Vec<toml::Value>>,
    contains_any: Option<Vec<toml::Value>>,
    contains_all: Option<Vec<toml::Value>>,
}

/// What a claim must be.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ClaimTest {
    Equals(Value),
    OneOf(Vec<Value>),
    ContainsAny(Vec<Value>),
    ContainsAll(Vec<Value>),
}

/// One rule: the claim and its test.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ClaimRule {
    pub(crate) claim: String,
    pub(crate) test: ClaimTest,
}

fn json(value: toml::Value) -> Result<Value, String> {
    match value {
        toml::Value::String(s) => Ok(Value::String(s)),
        toml::Value::Integer(i) => Ok(Value::from(i)),
        toml::Value::Boolean(b) => Ok(Value::Bool(b)),
        toml::Value::Float(f) => {
            serde_json::Number::from_f64(f).map(Value::Number).ok_or("not a finite number".into())
        }
        other => Err(format!("{other} is not a string, number or boolean")),
    }
}

impl ClaimRuleFile {
    /// The rule, or why it is not one.
    pub(crate) fn check(self) -> Result<ClaimRule, String> {
        let claim = self.claim;
        if claim.is_empty() || claim.starts_with('.') || claim.ends_with('.') || claim.contains("..") {
            return Err(format!("claim rule {claim:?}: not a claim name or dotted path"));
        }
        let values = |list: Vec<toml::Value>| -> Result<Vec<Value>, String> {
            if list.is_empty() {
                return Err(format!("claim rule {claim:?}: an empty list matches nothing"));
            }
            list.into_iter()
                .map(json)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("claim rule {claim:?}: {e}"))
        };
        let tests = [
            self.equals.is_some(),
            self.one_of.is_some(),
            self.contains_any.is_some(),
            self.contains_all.is_some(),
        ];
        if tests.iter().filter(|t| **t).count() != 1 {
            return Err(format!(
                "claim rule {claim:?}: give exactly one of equals, one_of, contains_any, contains_all"
            ));
        }
        let test = if let Some(value) = self.equals {
            ClaimTest::Equals(json(value).map_err(|e| format!("claim rule {claim:?}: {e}"))?)
        } else if let Some(list) = self.one_of {
            ClaimTest::OneOf(values(list)?)
        } else if let Some(list) = self.contains_any {
            ClaimTest::ContainsAny(values(list)?)
        } else {
            ClaimTest::ContainsAll(values(self.contains_all.unwrap_or_default())?)
        };
        Ok(ClaimRule { claim, test })
    }
}

/// The claim `name` of `valid`: the registered ones by accessor, others by name, then by
/// dotted path through nested objects. `None` when absent.
pub(crate) fn lookup<'v>(valid: &'v ValidToken, name: &str) -> Option<std::borrow::Cow<'v, Value>> {
    use std::borrow::Cow;
    let claims = &valid.claims;
    let text = |t: Option<&str>| t.map(|t| Cow::Owned(Value::String(t.to_owned())));
    match name {
        "iss" => return text(claims.iss()),
        "sub" => return text(claims.sub()),
        "jti" => return text(claims.jti()),
        "aud" => {
            let audiences: Vec<Value> = claims.aud()?.map(|a| Value::String(a.to_owned())).collect();
            return Some(Cow::Owned(Value::Array(audiences)));
        }
        _ => {}
    }
    if let Some(value) = claims.get(name) {
        return Some(Cow::Borrowed(value));
    }
    let mut segments = name.split('.');
    let mut value = claims.get(segments.next()?)?;
    for segment in segments {
        value = value.as_object()?.get(segment)?;
    }
    Some(Cow::Borrowed(value))
}

impl ClaimRule {
    /// Whether `valid` meets the rule; why not when it does not.
    pub(crate) fn judge(&self, valid: &ValidToken) -> Result<(), String> {
        let found = lookup(valid, &self.claim);
        let ok = match (&self.test, found.as_deref()) {
            (_, None | Some(Value::Null)) => false,
            (ClaimTest::Equals(wanted), Some(value)) => value == wanted,
            (ClaimTest::OneOf(wanted), Some(value)) => wanted.contains(value),
            (ClaimTest::ContainsAny(wanted), Some(Value::Array(items))) => {
                wanted.iter().any(|w| items.contains(w))
            }
            (ClaimTest::ContainsAll(wanted), Some(Value::Array(items))) => {
                wanted.iter().all(|w| items.contains(w))
            }
            (ClaimTest::ContainsAny(_) | ClaimTest::ContainsAll(_), Some(_)) => false,
        };
        if ok {
            return Ok(());
        }
        let (how, wanted) = match &self.test {
            ClaimTest::Equals(v) => ("equal", v.to_string()),
            ClaimTest::OneOf(v) => ("be one of", Value::Array(v.clone()).to_string()),
            ClaimTest::ContainsAny(v) => ("contain one of", Value::Array(v.clone()).to_string()),
            ClaimTest::ContainsAll(v) => ("contain all of", Value::Array(v.clone()).to_string()),
        };
        let state = if found.is_none() { "is absent" } else { "does not" };
        Err(format!("claim {:?} must {how} {wanted}: it {state}", self.claim))
    }
}

#[cfg(test)]
mod tests {
    use identity_model::{KeySet, SigningKey, StaticKeyValidator, Validation};
    use serde_json::json;

    use super::*;

    fn valid(claims: Value) -> ValidToken {
        let key = SigningKey::generate(identity_model::Algorithm::ES256).unwrap().with_kid("k");
        let jwks = json!({"keys": [Value::Object(key.verification_jwk())]});
        let keys = KeySet::from_json(jwks.to_string().as_bytes()).unwrap();
        let mut claims = claims;
        let now = identity_model::Clock::now(&identity_model::SystemClock).as_secs();
        claims["iss"] = json!("https://iss.example");
        claims["aud"] = json!("api");
        claims["exp"] = json!(now + 60);
        let token = key.sign_jwt(Some("JWT"), &claims).unwrap();
        StaticKeyValidator::new(keys, Validation::new("https://iss.example").audience("api"))
            .unwrap()
            .validate(&token)
            .unwrap()
    }

    fn rule(text: &str) -> Result<ClaimRule, String> {
        toml::from_str::<ClaimRuleFile>(text).map_err(|e| e.to_string())?.check()
    }

    #[test]
    fn each_test_on_names_and_dotted_paths() {
        let token = valid(json!({
            "tenant": "acme", "level": 3, "groups": ["ops", "dev"],
            "realm_access": {"roles": ["admin", "user"]}, "https://example.com/roles": ["x"],
            "sub": "alice",
        }));
        let holds = |text: &str| rule(text).unwrap().judge(&token);
        assert!(holds("claim = \"tenant\"\nequals = \"acme\"").is_ok());
        assert!(holds("claim = \"tenant\"\nequals = \"other\"").is_err());
        assert!(holds("claim = \"level\"\nequals = 3").is_ok());
        assert!(holds("claim = \"level\"\nequals = \"3\"").is_err(), "a string is not a number");
        assert!(holds("claim = \"tenant\"\none_of = [\"x\", \"acme\"]").is_ok());
        assert!(holds("claim = \"groups\"\ncontains_any = [\"ops\", \"qa\"]").is_ok());
        assert!(holds("claim = \"groups\"\ncontains_all = [\"ops\", \"qa\"]").is_err());
        assert!(holds("claim = \"groups\"\ncontains_all = [\"ops\", \"dev\"]").is_ok());
        assert!(holds("claim = \"realm_access.roles\"\ncontains_any = [\"admin\"]").is_ok());
        assert!(holds("claim = \"realm_access.missing\"\ncontains_any = [\"admin\"]").is_err());
        assert!(holds("claim = \"https://example.com/roles\"\ncontains_any = [\"x\"]").is_ok());
        assert!(holds("claim = \"tenant\"\ncontains_any = [\"acme\"]").is_err(), "not an array");
        assert!(holds("claim = \"sub\"\nequals = \"alice\"").is_ok());
        assert!(holds("claim = \"aud\"\ncontains_any = [\"api\"]").is_ok());
        let why = holds("claim = \"absent\"\nequals = \"x\"").unwrap_err();
        assert!(why.contains("absent"), "{why}");
    }

    #[test]
    fn malformed_rules_are_refused() {
        for text in [
            "claim = \"a\"",
            "claim = \"a\"\nequals = \"x\"\none_of = [\"y\"]",
            "claim = \"a\"\none_of = []",
            "claim = \"\"\nequals = \"x\"",
            "claim = \"a..b\"\nequals = \"x\"",
            "claim = \"a\"\nequals = { x = 1 }",
            "claim = \"a\"\nequal = \"x\"",
        ] {
            assert!(rule(text).is_err(), "{text}");
        }
    }
}
