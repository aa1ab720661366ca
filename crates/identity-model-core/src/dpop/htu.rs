//! The `htu` comparison of RFC 9449 §4.3: both sides normalized per RFC 3986 §6.2.2 and
//! §6.2.3 (scheme and host lower case, the default port dropped, percent-encodings of
//! unreserved characters decoded and the others in upper case, dot segments removed, an empty
//! path made `/`), query and fragment left out. Written here rather than taken from the `url`
//! crate: WHATWG parsing also rewrites backslashes, IDNA and IPv4 forms, which would make two
//! different request targets compare equal. The path routines are the ones route matching
//! uses ([`crate::http::target`]).

use crate::http::target::{normalize_percent_encoding, remove_dot_segments};

/// Longest URI compared, in bytes.
pub const MAX_HTU_LEN: usize = 8192;

/// `uri` normalized for comparison, without query and fragment; `None` when it is not an
/// absolute `http` or `https` URI this comparison can judge (user info, a bad port, a bad
/// percent-encoding, control characters, too long).
pub fn normalize_htu(uri: &str) -> Option<String> {
    if uri.len() > MAX_HTU_LEN || uri.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'\\') {
        return None;
    }
    let uri = uri.split(['#', '?']).next().unwrap_or_default();
    let (scheme, rest) = uri.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let (host, port) = split_port(authority)?;
    if host.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(uri.len());
    out.push_str(&scheme);
    out.push_str("://");
    out.push_str(&normalize_percent_encoding(&host.to_ascii_lowercase())?);
    if !port.is_empty() {
        let digits = port.trim_start_matches('0');
        let digits = if digits.is_empty() { "0" } else { digits };
        if !port.bytes().all(|b| b.is_ascii_digit())
            || digits.len() > 5
            || digits.parse::<u32>().ok()? > 65_535
        {
            return None;
        }
        if digits != default_port {
            out.push(':');
            out.push_str(digits);
        }
    }
    let path = normalize_percent_encoding(path)?;
    out.push_str(&remove_dot_segments(if path.is_empty() { "/" } else { &path }));
    Some(out)
}

/// Host and port (the port possibly empty); an IPv6 literal keeps its brackets.
fn split_port(authority: &str) -> Option<(&str, &str)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let close = rest.find(']')?;
        let host = &authority[..close + 2];
        return match &rest[close + 1..] {
            "" => Some((host, "")),
            port => Some((host, port.strip_prefix(':')?)),
        };
    }
    Some(authority.rsplit_once(':').unwrap_or((authority, "")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equivalent_forms_normalize_alike() {
        let same = [
            ("https://Server.Example.COM/token", "https://server.example.com/token"),
            ("HTTPS://server.example.com:443/token", "https://server.example.com/token"),
            ("http://server.example.com:80/a", "http://server.example.com/a"),
            ("http://server.example.com:8080/a", "http://server.example.com:8080/a"),
            ("https://server.example.com", "https://server.example.com/"),
            ("https://server.example.com/a/./b/../c", "https://server.example.com/a/c"),
            ("https://server.example.com/%7euser/%2f", "https://server.example.com/~user/%2F"),
            ("https://server.example.com/r?x=1#frag", "https://server.example.com/r"),
            ("https://[::1]:443/r", "https://[::1]/r"),
            ("https://[::1]:8443/r", "https://[::1]:8443/r"),
            ("https://server.example.com:0443/r", "https://server.example.com/r"),
        ];
        for (given, expected) in same {
            assert_eq!(normalize_htu(given).as_deref(), Some(expected), "{given}");
        }
    }

    #[test]
    fn what_cannot_be_judged_is_refused() {
        for bad in [
            "ftp://server.example.com/",
            "https://user@server.example.com/",
            "https://server.example.com:99999/",
            "https://server.example.com:8x/",
            "https:///path",
            "https://server.example.com/%zz",
            "https://server.example.com/a b",
            "https://server.example.com\\@evil/",
            "/relative",
        ] {
            assert_eq!(normalize_htu(bad), None, "{bad}");
        }
        assert_eq!(normalize_htu(&format!("https://a/{}", "x".repeat(MAX_HTU_LEN))), None);
    }
}
