//! Request targets and their paths (RFC 9112 section 3.2, RFC 3986): the one set of path
//! routines that both the DPoP `htu` comparison and the forward-auth sidecar's route matching
//! use.
//!
//! A path can be read in more than one way by the servers behind a proxy: nginx and Go decode
//! every percent-encoding before resolving dot segments, Express and other raw routers treat
//! `%2F` as part of a segment and never resolve `%2e%2e`, and Tomcat, Jetty and Spring strip
//! `;parameters` from each segment first (the `/..;/` bypass). [`canonical_path`] gives the
//! path as each [`PathReading`] sees it, so that a caller can refuse a target whose readings
//! disagree about which rule it falls under.

use std::borrow::Cow;

/// Longest request target judged, in bytes.
pub const MAX_TARGET_LEN: usize = 8192;

/// Why a request target or path cannot be judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetError {
    /// Empty, longer than [`MAX_TARGET_LEN`], or with a space, a control character or a `#`.
    Unusable,
    /// Neither origin-form (`/path`) nor an absolute `http`/`https` URI.
    NotAPath,
    /// A `%` not followed by two hexadecimal digits.
    BadEscape,
    /// A NUL or a backslash, literal or encoded (servers disagree about both).
    NulOrBackslash,
    /// The decoded path is not UTF-8.
    NotUtf8,
}

impl TargetError {
    /// A short human explanation.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetError::Unusable => {
                "the request target is empty, too long, or has a space, control character or '#'"
            }
            TargetError::NotAPath => "the request target is neither a path nor an absolute http(s) URI",
            TargetError::BadEscape => "the path has a bad percent escape",
            TargetError::NulOrBackslash => "the path has a NUL or a backslash",
            TargetError::NotUtf8 => "the decoded path is not UTF-8",
        }
    }
}

impl std::fmt::Display for TargetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for TargetError {}

/// The parts of a request target: the path and query of origin-form (`/a/b?q`), or of an
/// absolute-form `http`/`https` URI (`http://host/a/b?q`; `://` is only special there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestTarget<'a> {
    /// `scheme://authority` of an absolute-form target, as written.
    pub origin: Option<&'a str>,
    /// The path, raw (not decoded); `/` when an absolute-form target has none.
    pub path: &'a str,
    /// The query without its `?`.
    pub query: Option<&'a str>,
}

impl<'a> RequestTarget<'a> {
    /// Splits `target`. Only origin-form and absolute `http`/`https` targets are paths: `*`,
    /// authority-form, relative references and other schemes are [`TargetError::NotAPath`].
    pub fn parse(target: &'a str) -> Result<RequestTarget<'a>, TargetError> {
        if target.is_empty()
            || target.len() > MAX_TARGET_LEN
            || target.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'#')
        {
            return Err(TargetError::Unusable);
        }
        let (before_query, query) = match target.split_once('?') {
            Some((head, query)) => (head, Some(query)),
            None => (target, None),
        };
        if before_query.starts_with('/') {
            return Ok(RequestTarget { origin: None, path: before_query, query });
        }
        let scheme_end = before_query.find("://").ok_or(TargetError::NotAPath)?;
        let scheme = &before_query[..scheme_end];
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return Err(TargetError::NotAPath);
        }
        let rest = &before_query[scheme_end + 3..];
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(TargetError::NotAPath);
        }
        let origin = &before_query[..scheme_end + 3 + authority.len()];
        Ok(RequestTarget { origin: Some(origin), path, query })
    }

    /// The path and query (`/a/b?q`): what an origin-form target would have said.
    pub fn path_and_query(&self) -> String {
        match self.query {
            Some(query) => format!("{}?{query}", self.path),
            None => self.path.to_owned(),
        }
    }
}

/// One way a server may read a raw path (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathReading {
    /// Every percent-encoding decoded, then repeated slashes merged and dot segments removed
    /// (nginx's `$uri`, Go's `net/http`).
    Decoded,
    /// Literal `.` and `..` segments removed as RFC 3986 does (empty segments count, as in
    /// WHATWG URL parsers), then repeated slashes merged, then each segment decoded: an
    /// encoded `/` stays inside its segment (written `%2F`) and an encoded dot segment is a
    /// name, not a step (raw routers such as Express).
    Segments,
    /// `;parameters` cut from every raw segment, then read as [`PathReading::Decoded`] with
    /// any `;parameters` that decoding revealed cut too (Tomcat, Jetty, Spring:
    /// `/public/..;/admin` is `/admin`).
    ParamsStripped,
}

/// Every reading, in the order callers should try them.
pub const PATH_READINGS: [PathReading; 3] =
    [PathReading::Decoded, PathReading::Segments, PathReading::ParamsStripped];

/// Whether every reading of `path` is the same text, so one [`canonical_path`] is enough: no
/// `%`, no `;` and no `//`.
pub fn single_reading(path: &str) -> bool {
    !path.bytes().any(|b| b == b'%' || b == b';') && !path.contains("//")
}

/// Whether `path` is already canonical in every reading: it starts with `/` and has no `%`,
/// `;`, backslash, NUL, empty segment (`//`) or dot segment. Such a path needs no copy.
pub fn is_canonical(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.first() == Some(&b'/')
        && !bytes.iter().any(|&b| matches!(b, b'%' | b';' | b'\\' | 0))
        && !path.contains("//")
        && !path.split('/').any(|segment| segment == "." || segment == "..")
}

/// `path` (raw, starting with `/`) as `reading` sees it: absolute, with single slashes and no
/// dot segments; a trailing slash is kept. NUL and backslash, literal or encoded, bad escapes
/// and non-UTF-8 are refused in every reading. A path that [`is_canonical`] is returned as
/// it is, without a copy.
pub fn canonical_path(path: &str, reading: PathReading) -> Result<Cow<'_, str>, TargetError> {
    if is_canonical(path) {
        return Ok(Cow::Borrowed(path));
    }
    if !path.starts_with('/') {
        return Err(TargetError::NotAPath);
    }
    canonical_copy(path, reading).map(Cow::Owned)
}

fn canonical_copy(path: &str, reading: PathReading) -> Result<String, TargetError> {
    match reading {
        PathReading::Decoded => decoded_reading(path),
        PathReading::ParamsStripped => {
            // Cut on the raw path (Tomcat), and again after decoding (an encoded `;`).
            let decoded = percent_decode(strip_params(path).as_bytes())?;
            check_decoded(&decoded)?;
            let decoded = String::from_utf8(decoded).map_err(|_| TargetError::NotUtf8)?;
            Ok(merged_without_dots(&strip_params(&decoded)))
        }
        PathReading::Segments => {
            let resolved = merge_slashes(&remove_dot_segments(path));
            let mut out = String::with_capacity(resolved.len());
            for (i, segment) in resolved.split('/').enumerate() {
                if i > 0 {
                    out.push('/');
                }
                let decoded = String::from_utf8(percent_decode(segment.as_bytes())?)
                    .map_err(|_| TargetError::NotUtf8)?;
                check_decoded(decoded.as_bytes())?;
                // An encoded dot segment is a name here: written encoded, so that the result
                // never shows a dot segment it did not resolve.
                match decoded.as_str() {
                    "." => out.push_str("%2E"),
                    ".." => out.push_str("%2E%2E"),
                    name => out.push_str(&name.replace('/', "%2F")),
                }
            }
            Ok(out)
        }
    }
}

/// `;parameters` cut from every segment.
fn strip_params(path: &str) -> String {
    let segments: Vec<&str> =
        path.split('/').map(|segment| segment.split(';').next().unwrap_or_default()).collect();
    segments.join("/")
}

fn decoded_reading(path: &str) -> Result<String, TargetError> {
    let decoded = percent_decode(path.as_bytes())?;
    check_decoded(&decoded)?;
    let decoded = String::from_utf8(decoded).map_err(|_| TargetError::NotUtf8)?;
    Ok(merged_without_dots(&decoded))
}

fn check_decoded(bytes: &[u8]) -> Result<(), TargetError> {
    if bytes.iter().any(|&b| b == 0 || b == b'\\') {
        return Err(TargetError::NulOrBackslash);
    }
    Ok(())
}

/// Repeated slashes merged, then dot segments removed ([`remove_dot_segments`]); a path that
/// ended in a slash or a dot segment keeps one trailing slash.
fn merged_without_dots(path: &str) -> String {
    let out = remove_dot_segments(&merge_slashes(path));
    if out.is_empty() { "/".to_owned() } else { out }
}

/// Repeated slashes merged into one; an empty path becomes `/`.
fn merge_slashes(path: &str) -> String {
    let mut merged = String::with_capacity(path.len());
    for c in path.chars() {
        if c != '/' || !merged.ends_with('/') {
            merged.push(c);
        }
    }
    if merged.is_empty() {
        merged.push('/');
    }
    merged
}

/// Every `%XX` decoded; a `%` without two hexadecimal digits is [`TargetError::BadEscape`].
pub fn percent_decode(bytes: &[u8]) -> Result<Vec<u8>, TargetError> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let high = bytes.get(i + 1).and_then(|b| (*b as char).to_digit(16));
            let low = bytes.get(i + 2).and_then(|b| (*b as char).to_digit(16));
            let (Some(high), Some(low)) = (high, low) else { return Err(TargetError::BadEscape) };
            out.push((high * 16 + low) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// RFC 3986 section 6.2.2.2: percent-encodings of unreserved characters decoded, the others
/// written with upper-case hex. `None` for a bad escape.
pub fn normalize_percent_encoding(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i] as char);
            i += 1;
            continue;
        }
        let hex = bytes.get(i + 1..i + 3)?;
        let value = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
        if value.is_ascii_alphanumeric() || b"-._~".contains(&value) {
            out.push(value as char);
        } else {
            out.push('%');
            out.push_str(&std::str::from_utf8(hex).ok()?.to_ascii_uppercase());
        }
        i += 3;
    }
    Some(out)
}

/// RFC 3986 section 5.2.4: `.` and `..` segments removed (`..` never climbs above the root).
pub fn remove_dot_segments(path: &str) -> String {
    let mut input = path;
    let mut output: Vec<&str> = Vec::new();
    while !input.is_empty() {
        if let Some(rest) = input.strip_prefix("../").or_else(|| input.strip_prefix("./")) {
            input = rest;
        } else if input.starts_with("/./") {
            input = &input[2..];
        } else if input == "/." {
            input = "/";
        } else if input.starts_with("/../") {
            input = &input[3..];
            output.pop();
        } else if input == "/.." {
            input = "/";
            output.pop();
        } else if input == "." || input == ".." {
            input = "";
        } else {
            let start = usize::from(input.starts_with('/'));
            let end = input[start..].find('/').map_or(input.len(), |at| at + start);
            output.push(&input[..end]);
            input = &input[end..];
        }
    }
    output.concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(path: &str) -> [String; 3] {
        PATH_READINGS.map(|r| canonical_path(path, r).map_or_else(|e| format!("error: {e}"), Cow::into_owned))
    }

    #[test]
    fn targets_split_only_at_a_real_scheme() {
        let t = RequestTarget::parse("/admin/x://y/public?q=1").unwrap();
        assert_eq!((t.origin, t.path, t.query), (None, "/admin/x://y/public", Some("q=1")));
        let t = RequestTarget::parse("HTTP://Host:8080/a/b?c").unwrap();
        assert_eq!((t.origin, t.path, t.query), (Some("HTTP://Host:8080"), "/a/b", Some("c")));
        let t = RequestTarget::parse("https://host?x").unwrap();
        assert_eq!((t.path, t.query), ("/", Some("x")));
        assert_eq!(t.path_and_query(), "/?x");
        for bad in ["*", "host:443", "admin", "ftp://h/a", "javascript://x/", "https:///a", "//host/a?x"] {
            let parsed = RequestTarget::parse(bad);
            // `//host/a` is origin-form with an empty first segment: a path, not a host.
            if bad.starts_with('/') {
                assert!(parsed.is_ok(), "{bad}");
            } else {
                assert_eq!(parsed, Err(TargetError::NotAPath), "{bad}");
            }
        }
        for bad in ["", "/a b", "/a#b", "/a\tb", "/a\u{7f}"] {
            assert_eq!(RequestTarget::parse(bad), Err(TargetError::Unusable), "{bad:?}");
        }
        assert_eq!(
            RequestTarget::parse(&format!("/{}", "a".repeat(MAX_TARGET_LEN))),
            Err(TargetError::Unusable)
        );
    }

    #[test]
    fn readings_agree_on_plain_paths() {
        for (raw, want) in [
            ("/", "/"),
            ("/a/b/../c", "/a/c"),
            ("/a/./b/", "/a/b/"),
            ("//admin", "/admin"),
            ("/../../etc", "/etc"),
            ("/a/..", "/"),
            ("/a/b/.", "/a/b/"),
            ("/admin/x://y/public", "/admin/x:/y/public"),
        ] {
            assert_eq!(single_reading(raw), !raw.contains("//"), "{raw}");
            assert_eq!(is_canonical(raw), raw == want, "{raw}");
            assert_eq!(all(raw), [want, want, want].map(str::to_owned), "{raw}");
        }
    }

    #[test]
    fn readings_differ_where_servers_do() {
        // Encoded slash and dots: decoded readers climb, raw routers do not.
        assert_eq!(all("/admin/..%2fpublic"), ["/public", "/admin/..%2Fpublic", "/public"]);
        assert_eq!(all("/admin/%2e%2e/public"), ["/public", "/admin/%2E%2E/public", "/public"]);
        // Path parameters: only the stripping reader sees /admin.
        assert_eq!(all("/admin;x"), ["/admin;x", "/admin;x", "/admin"]);
        assert_eq!(all("/public/..;/admin"), ["/public/..;/admin", "/public/..;/admin", "/admin"]);
        assert_eq!(
            all("/admin;jsessionid=0/users"),
            ["/admin;jsessionid=0/users", "/admin;jsessionid=0/users", "/admin/users"]
        );
        assert_eq!(all("/%41pi"), ["/Api", "/Api", "/Api"]);
        assert_eq!(all("/admin%3bx"), ["/admin;x", "/admin;x", "/admin"]);
        assert_eq!(all("/admin;x%2F..%2F..%2Fpublic"), ["/public", "/admin;x%2F..%2F..%2Fpublic", "/admin"]);
        // Empty segments: merged before the dots by nginx, after them by RFC 3986 readers.
        assert_eq!(all("/admin//..//public"), ["/public", "/admin/public", "/public"]);
    }

    #[test]
    fn what_no_reading_can_judge_is_refused() {
        for (bad, why) in [
            ("/%zz", TargetError::BadEscape),
            ("/%4", TargetError::BadEscape),
            ("/a%00b", TargetError::NulOrBackslash),
            ("/a\\b", TargetError::NulOrBackslash),
            ("/a%5cb", TargetError::NulOrBackslash),
            ("/%c3%28", TargetError::NotUtf8),
            ("relative", TargetError::NotAPath),
        ] {
            for reading in PATH_READINGS {
                assert_eq!(canonical_path(bad, reading), Err(why), "{bad} {reading:?}");
            }
            assert!(!is_canonical(bad), "{bad}");
        }
    }

    #[test]
    fn dot_segments_per_rfc_3986() {
        assert_eq!(remove_dot_segments("/a/b/c/./../../g"), "/a/g");
        assert_eq!(remove_dot_segments("mid/content=5/../6"), "mid/6");
        assert_eq!(remove_dot_segments("/.."), "/");
        assert_eq!(normalize_percent_encoding("/%7euser/%2f").as_deref(), Some("/~user/%2F"));
        assert_eq!(normalize_percent_encoding("/%z"), None);
    }
}
