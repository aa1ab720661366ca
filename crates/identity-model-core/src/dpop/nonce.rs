//! Server nonces (RFC 9449 §8-9) without state: a nonce is an HMAC of the current time
//! window under the server's secret, so every instance sharing the secret issues and accepts
//! the same nonces, and checking one is a hash, not a lookup. The current and the previous
//! window's nonces are accepted.

use aws_lc_rs::hmac;

use crate::error::{Error, ErrorKind};
use crate::jose::base64url;
use crate::jwt::claims::UnixTime;

/// Issues and accepts rotating DPoP nonces.
pub struct DpopNonces {
    key: hmac::Key,
    period_secs: i64,
}

impl std::fmt::Debug for DpopNonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopNonces").field("period_secs", &self.period_secs).finish_non_exhaustive()
    }
}

impl DpopNonces {
    /// Nonces under `secret` (at least 32 bytes), rotated every `period_secs` (at least 1).
    pub fn new(secret: &[u8], period_secs: u32) -> Result<DpopNonces, Error> {
        if secret.len() < 32 {
            return Err(Error::new(ErrorKind::InvalidConfig, "a DPoP nonce secret needs at least 32 bytes"));
        }
        if period_secs == 0 {
            return Err(Error::new(ErrorKind::InvalidConfig, "the DPoP nonce period must be at least 1 s"));
        }
        Ok(DpopNonces { key: hmac::Key::new(hmac::HMAC_SHA256, secret), period_secs: i64::from(period_secs) })
    }

    fn for_window(&self, window: i64) -> String {
        let tag = hmac::sign(&self.key, &window.to_be_bytes());
        base64url::encode(&tag.as_ref()[..18])
    }

    /// The nonce to hand out at `now` (the `DPoP-Nonce` header).
    pub fn current(&self, now: UnixTime) -> String {
        self.for_window(now.as_secs().div_euclid(self.period_secs))
    }

    /// Whether `nonce` is the current window's or the previous one's.
    pub fn accepts(&self, nonce: &str, now: UnixTime) -> bool {
        let window = now.as_secs().div_euclid(self.period_secs);
        nonce.len() == 24 && [window, window - 1].iter().any(|w| self.for_window(*w) == nonce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_and_previous_are_accepted_older_and_foreign_are_not() {
        let nonces = DpopNonces::new(&[7; 32], 60).unwrap();
        let other = DpopNonces::new(&[8; 32], 60).unwrap();
        let at = |s| UnixTime::from_secs(s);
        let n = nonces.current(at(1_000));
        assert!(nonces.accepts(&n, at(1_000)));
        assert!(nonces.accepts(&n, at(1_079)), "the next window still takes it");
        assert!(!nonces.accepts(&n, at(1_140)), "two windows later it is stale");
        assert!(!other.accepts(&n, at(1_000)), "another secret's");
        assert!(!nonces.accepts("", at(1_000)));
        assert!(DpopNonces::new(&[0; 31], 60).is_err());
        assert!(DpopNonces::new(&[0; 32], 0).is_err());
    }
}
