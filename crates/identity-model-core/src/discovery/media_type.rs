//! `Content-Type` checks for metadata and key set responses (RFC 9110 section 8.3.1): the value
//! is parsed as `type/subtype` followed by `;`-separated parameters, and the essence compared
//! case-insensitively. A list of media types (`text/html; application/json`) is not accepted
//! just because `application/json` appears in it (seed review 000 #8).

use crate::error::{Error, ErrorKind};

/// Media types a JSON document may be served as.
pub const JSON: &[&str] = &["application/json"];
/// Media types a JWK Set may be served as (RFC 7517 section 8.5.1).
pub const JWK_SET: &[&str] = &["application/json", "application/jwk-set+json"];

/// Checks that `content_type` (the header's value) names one of `accepted`, ignoring
/// parameters such as `charset`.
pub fn check(content_type: Option<&str>, accepted: &[&str]) -> Result<(), Error> {
    let Some(value) = content_type else {
        return Err(Error::new(ErrorKind::UnexpectedContentType, "response has no Content-Type"));
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let well_formed = essence.split_once('/').is_some_and(|(t, s)| token(t) && token(s));
    if well_formed && accepted.iter().any(|a| a.eq_ignore_ascii_case(essence)) {
        let params_ok =
            value.split(';').skip(1).all(|p| p.trim().split_once('=').is_some_and(|(n, _)| token(n.trim())));
        if params_ok {
            return Ok(());
        }
    }
    let shown: String = value.chars().take(80).collect();
    Err(Error::new(
        ErrorKind::UnexpectedContentType,
        format!("Content-Type {shown:?} is not {}", accepted.join(" or ")),
    ))
}

/// An RFC 9110 token.
fn token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_essence_and_parameters() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8 ",
        ] {
            assert!(check(Some(ok), JSON).is_ok(), "{ok}");
        }
        assert!(check(Some("application/jwk-set+json"), JWK_SET).is_ok());
        for bad in [
            "text/html; application/json",
            "text/html",
            "application/jsonp",
            "application/json, text/html",
            "application/jwk-set+json",
            "application/json; charset",
            "",
            "application/",
        ] {
            assert_eq!(check(Some(bad), JSON).unwrap_err().kind(), ErrorKind::UnexpectedContentType, "{bad}");
        }
        assert!(check(None, JSON).is_err());
    }
}
