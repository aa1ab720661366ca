//! `WWW-Authenticate: Bearer` challenges (RFC 6750 section 3, RFC 7235 syntax): parameters
//! separated by commas, values quoted with `\` and `"` escaped, only visible ASCII.

/// A quoted-string of `value`: printable ASCII kept, `"` and `\` escaped, anything else
/// (control characters, non-ASCII) replaced by `?`, cut to 200 characters.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars().take(200) {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push('"');
    out
}

/// A `Bearer` challenge: `realm`, then `error`, `error_description`, `scope` and (RFC 9728
/// section 5.1) `resource_metadata` when given.
pub(crate) fn bearer(
    realm: &str,
    error: Option<&str>,
    description: Option<&str>,
    scope: Option<&str>,
    resource_metadata: Option<&str>,
) -> String {
    let mut params = vec![format!("realm={}", quoted(realm))];
    if let Some(error) = error {
        params.push(format!("error={}", quoted(error)));
    }
    if let Some(description) = description {
        params.push(format!("error_description={}", quoted(description)));
    }
    if let Some(scope) = scope {
        params.push(format!("scope={}", quoted(scope)));
    }
    if let Some(url) = resource_metadata {
        params.push(format!("resource_metadata={}", quoted(url)));
    }
    format!("Bearer {}", params.join(", "))
}

/// A `DPoP` challenge (RFC 9449 section 7.1): `realm`, `error`, `error_description`, `algs`,
/// and `resource_metadata` when given.
pub(crate) fn dpop(
    realm: &str,
    error: &str,
    description: &str,
    algs: &str,
    resource_metadata: Option<&str>,
) -> String {
    let mut params = vec![
        format!("realm={}", quoted(realm)),
        format!("error={}", quoted(error)),
        format!("error_description={}", quoted(description)),
        format!("algs={}", quoted(algs)),
    ];
    if let Some(url) = resource_metadata {
        params.push(format!("resource_metadata={}", quoted(url)));
    }
    format!("DPoP {}", params.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comma_separated_quoted_and_escaped() {
        assert_eq!(bearer("api", None, None, None, None), r#"Bearer realm="api""#);
        assert_eq!(
            bearer("api", None, None, None, Some("https://api.example/.well-known/oauth-protected-resource")),
            r#"Bearer realm="api", resource_metadata="https://api.example/.well-known/oauth-protected-resource""#
        );
        assert_eq!(
            bearer("api", Some("invalid_token"), Some("say \"hi\" \\ \n é"), None, None),
            r#"Bearer realm="api", error="invalid_token", error_description="say \"hi\" \\ ? ?""#
        );
        assert_eq!(
            bearer("a", Some("insufficient_scope"), None, Some("orders:read orders:write"), None),
            r#"Bearer realm="a", error="insufficient_scope", scope="orders:read orders:write""#
        );
    }
}
