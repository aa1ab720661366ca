//! Where a check's token is: the `Authorization` header (the default), a named cookie, a
//! named header, or, only when configured as `dangerous_token_from_query`, a query parameter
//! of the original URI (query strings end up in access logs, browser history and `Referer`).
//! Exactly one credential per check: a token in two places (say a cookie and an
//! `Authorization` header) is refused with 400 `multiple_credentials`, because the upstream
//! may read the other one. The `Authorization` header always counts as a place, configured or
//! not.

use std::borrow::Cow;

use http::{HeaderMap, HeaderName, HeaderValue, header};

use super::proxy::{BadCheck, BadCheckKind};

/// One place a token may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenSource {
    /// `Authorization: Bearer ...` or `DPoP ...`.
    Authorization,
    /// The value of the cookie of this name.
    Cookie(String),
    /// The value of this header.
    Header(HeaderName),
    /// A parameter of the original URI's query (`dangerous_token_from_query`).
    Query(String),
}

impl TokenSource {
    /// `authorization`, `cookie:NAME` or `header:NAME` (the query needs its own, dangerous key).
    pub(crate) fn parse(text: &str) -> Result<TokenSource, String> {
        let bad = || {
            format!("token source {text:?}: expected \"authorization\", \"cookie:NAME\" or \"header:NAME\"")
        };
        match text.split_once(':') {
            None if text == "authorization" => Ok(TokenSource::Authorization),
            Some(("cookie", name)) if is_token(name) => Ok(TokenSource::Cookie(name.to_owned())),
            Some(("header", name)) => match HeaderName::from_bytes(name.as_bytes()) {
                Ok(name) if name == header::AUTHORIZATION => Ok(TokenSource::Authorization),
                Ok(name) if name == header::COOKIE => {
                    Err(format!("{}: name the cookie (cookie:NAME)", bad()))
                }
                Ok(name) => Ok(TokenSource::Header(name)),
                Err(_) => Err(bad()),
            },
            _ => Err(bad()),
        }
    }

    /// A query parameter of the original URI.
    pub(crate) fn query(name: &str) -> Result<TokenSource, String> {
        if name.is_empty() || name.contains(['&', '=', '#', ' ']) {
            return Err(format!("dangerous_token_from_query {name:?} is not a parameter name"));
        }
        Ok(TokenSource::Query(name.to_owned()))
    }

    fn describe(&self) -> String {
        match self {
            TokenSource::Authorization => "the Authorization header".into(),
            TokenSource::Cookie(name) => format!("the cookie {name:?}"),
            TokenSource::Header(name) => format!("the header {name}"),
            TokenSource::Query(name) => format!("the query parameter {name:?}"),
        }
    }
}

/// An RFC 6265 cookie name (an RFC 7230 token).
fn is_token(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The credential a check carries.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Found<'a> {
    /// None at all (the token layer answers 401, or lets an anonymous route through).
    Nothing,
    /// In the `Authorization` header: the check's headers are judged as they are.
    Authorization,
    /// Elsewhere: judged as if it came as `Authorization: Bearer VALUE`.
    Bearer(Cow<'a, str>),
}

/// The one credential in `headers` and the original `target` (path and query) among
/// `sources`, or 400 when there are two, or one place holds two values.
pub(crate) fn find<'a>(
    sources: &[TokenSource],
    headers: &'a HeaderMap,
    target: Option<&'a str>,
) -> Result<Found<'a>, BadCheck> {
    let mut found: Vec<(&TokenSource, Found<'a>)> = Vec::new();
    let authorization = TokenSource::Authorization;
    if headers.contains_key(header::AUTHORIZATION) {
        found.push((&authorization, Found::Authorization));
    }
    for source in sources {
        let value = match source {
            TokenSource::Authorization => None, // counted above
            TokenSource::Cookie(name) => cookie(headers, name)?,
            TokenSource::Header(name) => single_header(headers, name)?,
            TokenSource::Query(name) => query(target, name)?,
        };
        if let Some(value) = value {
            found.push((source, Found::Bearer(value)));
        }
    }
    match found.len() {
        0 => Ok(Found::Nothing),
        // A lone Authorization header where the rule does not look for one: no token (the
        // rule says where its tokens come from).
        1 if matches!(found[0].1, Found::Authorization) && !sources.contains(&authorization) => {
            Ok(Found::Nothing)
        }
        1 => Ok(found.pop().map_or(Found::Nothing, |(_, found)| found)),
        _ => {
            let places: Vec<String> = found.iter().map(|(source, _)| source.describe()).collect();
            Err(BadCheck {
                kind: BadCheckKind::MultipleCredentials,
                message: format!("a token in more than one place ({}): send exactly one", places.join(", ")),
            })
        }
    }
}

/// The check's headers with the token as `Authorization: Bearer TOKEN`.
pub(crate) fn as_bearer(headers: &HeaderMap, token: &str) -> Result<HeaderMap, BadCheck> {
    let value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| BadCheck::invalid("the token holds characters a header cannot carry"))?;
    let mut rewritten = headers.clone();
    rewritten.insert(header::AUTHORIZATION, value);
    Ok(rewritten)
}

/// The check's headers without `Authorization` (a rule that does not look there).
pub(crate) fn without_authorization(headers: &HeaderMap) -> HeaderMap {
    let mut rewritten = headers.clone();
    rewritten.remove(header::AUTHORIZATION);
    rewritten
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<Cow<'a, str>>, BadCheck> {
    let mut value = None;
    for line in headers.get_all(header::COOKIE) {
        let line = line.to_str().map_err(|_| BadCheck::invalid("a Cookie header is not visible ASCII"))?;
        for pair in line.split(';') {
            let Some((key, text)) = pair.trim().split_once('=') else { continue };
            if key.trim() != name {
                continue;
            }
            if value.is_some() {
                // Cookie tossing: a sibling domain's cookie of the same name beside the real
                // one. Which one the upstream reads is unknown.
                return Err(BadCheck::invalid(format!("the cookie {name:?} is sent more than once")));
            }
            let text = text.trim();
            let text = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
            value = Some(text);
        }
    }
    Ok(value.filter(|v| !v.is_empty()).map(Cow::Borrowed))
}

fn single_header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<Cow<'a, str>>, BadCheck> {
    let mut values = headers.get_all(name).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return if headers.contains_key(name) {
            Err(BadCheck::invalid(format!("the header {name} is sent more than once")))
        } else {
            Ok(None)
        };
    };
    let text =
        value.to_str().map_err(|_| BadCheck::invalid(format!("the header {name} is not visible ASCII")))?;
    Ok((!text.trim().is_empty()).then(|| Cow::Borrowed(text.trim())))
}

fn query<'a>(target: Option<&'a str>, name: &str) -> Result<Option<Cow<'a, str>>, BadCheck> {
    let Some((_, query)) = target.and_then(|t| t.split_once('?')) else { return Ok(None) };
    let mut value = None;
    for (key, text) in form_urlencoded::parse(query.as_bytes()) {
        if key == name {
            if value.is_some() {
                return Err(BadCheck::invalid(format!(
                    "the query parameter {name:?} is sent more than once"
                )));
            }
            value = Some(text);
        }
    }
    Ok(value.filter(|v| !v.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn sources(texts: &[&str]) -> Vec<TokenSource> {
        texts.iter().map(|t| TokenSource::parse(t).unwrap()).collect()
    }

    #[test]
    fn one_credential_is_found_where_configured() {
        let cookie = sources(&["cookie:session"]);
        let h = headers(&[("cookie", "a=1; session=tok.en; b=2")]);
        assert_eq!(find(&cookie, &h, None).unwrap(), Found::Bearer("tok.en".into()));
        let h = headers(&[("cookie", "a=1"), ("cookie", "session=\"quoted\"")]);
        assert_eq!(find(&cookie, &h, None).unwrap(), Found::Bearer("quoted".into()));
        assert_eq!(find(&cookie, &headers(&[("cookie", "session=")]), None).unwrap(), Found::Nothing);
        let api = sources(&["header:X-Api-Token"]);
        assert_eq!(find(&api, &headers(&[("x-api-token", " t ")]), None).unwrap(), Found::Bearer("t".into()));
        let query = vec![TokenSource::query("access_token").unwrap()];
        let empty = HeaderMap::new();
        let found = find(&query, &empty, Some("/p?x=1&access_token=a%2Bb")).unwrap();
        assert_eq!(found, Found::Bearer("a+b".into()));
        assert_eq!(find(&query, &HeaderMap::new(), Some("/p")).unwrap(), Found::Nothing);
        let default = sources(&["authorization"]);
        assert_eq!(
            find(&default, &headers(&[("authorization", "Bearer x")]), None).unwrap(),
            Found::Authorization
        );
        // Where the rule looks only in a cookie, a lone Authorization header is no token.
        assert_eq!(find(&cookie, &headers(&[("authorization", "Bearer x")]), None).unwrap(), Found::Nothing);
    }

    #[test]
    fn two_places_or_two_values_are_refused() {
        let both = sources(&["authorization", "cookie:session"]);
        let h = headers(&[("authorization", "Bearer x"), ("cookie", "session=y")]);
        assert_eq!(find(&both, &h, None).unwrap_err().kind, BadCheckKind::MultipleCredentials);
        // The Authorization header counts even where only the cookie is configured.
        let cookie = sources(&["cookie:session"]);
        assert_eq!(find(&cookie, &h, None).unwrap_err().kind, BadCheckKind::MultipleCredentials);
        for h in [
            headers(&[("cookie", "session=a; session=b")]),
            headers(&[("cookie", "session=a"), ("cookie", "session=b")]),
        ] {
            assert_eq!(find(&cookie, &h, None).unwrap_err().kind, BadCheckKind::InvalidRequest);
        }
        let api = sources(&["header:x-api-token"]);
        let h = headers(&[("x-api-token", "a"), ("x-api-token", "b")]);
        assert_eq!(find(&api, &h, None).unwrap_err().kind, BadCheckKind::InvalidRequest);
        let query = vec![TokenSource::query("t").unwrap()];
        assert_eq!(
            find(&query, &HeaderMap::new(), Some("/?t=a&t=b")).unwrap_err().kind,
            BadCheckKind::InvalidRequest
        );
        let mixed = vec![TokenSource::parse("cookie:s").unwrap(), TokenSource::query("t").unwrap()];
        let h = headers(&[("cookie", "s=a")]);
        assert_eq!(find(&mixed, &h, Some("/?t=b")).unwrap_err().kind, BadCheckKind::MultipleCredentials);
    }

    #[test]
    fn sources_are_parsed_strictly() {
        assert_eq!(TokenSource::parse("header:Authorization").unwrap(), TokenSource::Authorization);
        for bad in [
            "",
            "cookie",
            "cookie:",
            "cookie:a b",
            "header:",
            "header:bad header",
            "header:cookie",
            "query:x",
            "bearer",
        ] {
            assert!(TokenSource::parse(bad).is_err(), "{bad:?}");
        }
        assert!(TokenSource::query("a&b").is_err());
        assert!(as_bearer(&HeaderMap::new(), "bad\ntoken").is_err());
    }
}
