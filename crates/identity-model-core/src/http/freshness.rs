//! How long a fetched document stays fresh, and how long a server asked us to wait.

use std::time::{Duration, SystemTime};

/// What a response's caching headers say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// `Cache-Control: max-age`, or `Expires` minus `now`.
    For(Duration),
    /// `no-store` or `no-cache`: do not keep it (callers give it their minimum).
    DoNotStore,
    /// No caching header: callers use their configured default.
    Unspecified,
}

/// The bounds a caller applies to what a provider declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreshnessBounds {
    /// Used when the response says nothing.
    pub default: Duration,
    /// Least freshness given, whatever the headers say (also for `no-store`).
    pub floor: Duration,
    /// Most freshness given.
    pub cap: Duration,
}

impl Freshness {
    /// Reads `Cache-Control` (`max-age`, `no-store`, `no-cache`) and, without `max-age`,
    /// `Expires` relative to `now`. An `Expires` that is unreadable or past means expired.
    /// Any number parses: a `max-age` beyond `u64` seconds is "forever" (and then capped).
    pub fn of(cache_control: Option<&str>, expires: Option<&str>, now: SystemTime) -> Freshness {
        if let Some(value) = cache_control {
            let mut age = None;
            for directive in value.split(',').map(str::trim) {
                let (name, argument) = match directive.split_once('=') {
                    Some((name, argument)) => (name.trim(), Some(argument.trim().trim_matches('"'))),
                    None => (directive, None),
                };
                if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                    return Freshness::DoNotStore;
                }
                if name.eq_ignore_ascii_case("max-age") {
                    age = argument.and_then(delay_seconds);
                }
            }
            if let Some(age) = age {
                return Freshness::For(age);
            }
        }
        match expires {
            Some(expires) => Freshness::For(
                httpdate::parse_http_date(expires.trim())
                    .ok()
                    .and_then(|at| at.duration_since(now).ok())
                    .unwrap_or(Duration::ZERO),
            ),
            None => Freshness::Unspecified,
        }
    }

    /// The freshness to use: the declared one (or the default) within `[floor, cap]`.
    pub fn within(self, bounds: FreshnessBounds) -> Duration {
        let declared = match self {
            Freshness::For(age) => age,
            Freshness::DoNotStore => Duration::ZERO,
            Freshness::Unspecified => bounds.default,
        };
        declared.clamp(bounds.floor, bounds.cap.max(bounds.floor))
    }
}

/// [`Freshness::of`] then [`Freshness::within`].
pub fn freshness(
    cache_control: Option<&str>,
    expires: Option<&str>,
    now: SystemTime,
    bounds: FreshnessBounds,
) -> Duration {
    Freshness::of(cache_control, expires, now).within(bounds)
}

/// A `Retry-After` value (RFC 9110 section 10.2.3): delay-seconds or an HTTP date. A date in
/// the past means "now"; anything unreadable is `None`. Any number of digits parses (a delay
/// beyond `u64` seconds saturates): callers compare it with their own cap.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Some(delay) = delay_seconds(value) {
        return Some(delay);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Non-empty ASCII digits as seconds, saturating.
fn delay_seconds(value: &str) -> Option<Duration> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);
    const DAY: Duration = Duration::from_secs(86_400);

    fn now() -> SystemTime {
        httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap()
    }

    fn f(cache_control: Option<&str>, expires: Option<&str>) -> Duration {
        let bounds = FreshnessBounds { default: HOUR, floor: Duration::from_secs(60), cap: DAY };
        freshness(cache_control, expires, now(), bounds)
    }

    #[test]
    fn cache_control_then_expires_then_default_within_bounds() {
        assert_eq!(f(Some("public, max-age=600"), None), Duration::from_secs(600));
        assert_eq!(f(Some("Max-Age=\"600\""), None), Duration::from_secs(600), "case, quotes");
        assert_eq!(f(Some("max-age=5"), None), Duration::from_secs(60), "floor");
        assert_eq!(f(Some("max-age=9999999"), None), DAY, "cap");
        assert_eq!(f(Some("max-age=99999999999999999999999999"), None), DAY, "beyond u64");
        assert_eq!(f(Some("no-store"), None), Duration::from_secs(60));
        assert_eq!(f(Some("max-age=600, no-cache"), None), Duration::from_secs(60));
        assert_eq!(f(Some("max-age=-5"), None), HOUR, "unreadable max-age: unspecified");
        assert_eq!(f(Some("max-age=1e300"), None), HOUR);
        assert_eq!(f(None, None), HOUR, "default");
        assert_eq!(f(None, Some("Sun, 06 Nov 1994 10:49:37 GMT")), 2 * HOUR);
        assert_eq!(f(None, Some("Thu, 01 Jan 1970 00:00:00 GMT")), Duration::from_secs(60), "past");
        assert_eq!(f(None, Some("0")), Duration::from_secs(60), "invalid = expired");
        assert_eq!(f(Some("max-age=600"), Some("Mon, 07 Nov 1994 08:49:37 GMT")), Duration::from_secs(600));
        assert_eq!(f(Some("public"), Some("Sun, 06 Nov 1994 09:49:37 GMT")), HOUR, "Expires without max-age");
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(retry_after("120", now()), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(" 0 ", now()), Some(Duration::ZERO));
        assert_eq!(retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now()), Some(Duration::from_secs(60)));
        assert_eq!(retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now()), Some(Duration::ZERO), "past");
        assert_eq!(retry_after(&"9".repeat(400), now()), Some(Duration::from_secs(u64::MAX)));
        for bad in ["", "-1", "1.5", "soon", "Sun, 06 Nov 1994", "1e300"] {
            assert_eq!(retry_after(bad, now()), None, "{bad:?}");
        }
    }
}
