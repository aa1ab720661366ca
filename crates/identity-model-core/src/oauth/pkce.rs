//! PKCE (RFC 7636): code verifiers and their S256 challenges.

use crate::error::{Error, ErrorKind};
use crate::jose::base64url;
use crate::jose::signing::sha256;
use crate::oauth::secret::Secret;

/// A code verifier and its S256 challenge. The verifier is secret until redemption.
#[derive(Debug, Clone)]
pub struct Pkce {
    verifier: Secret,
    challenge: String,
}

impl Pkce {
    /// A fresh verifier: 32 random bytes, base64url (43 characters, RFC 7636 section 4.1).
    pub fn generate() -> Result<Pkce, Error> {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes)
            .map_err(|_| Error::new(ErrorKind::InvalidUsage, "the system random generator failed"))?;
        Pkce::from_verifier(&base64url::encode(bytes))
    }

    /// Uses a given verifier: 43 to 128 characters from `[A-Za-z0-9-._~]`.
    pub fn from_verifier(verifier: &str) -> Result<Pkce, Error> {
        let unreserved =
            verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if !(43..=128).contains(&verifier.len()) || !unreserved {
            return Err(Error::new(
                ErrorKind::InvalidUsage,
                "a PKCE code verifier is 43 to 128 unreserved characters (RFC 7636 section 4.1)",
            ));
        }
        Ok(Pkce { verifier: Secret::new(verifier), challenge: challenge_s256(verifier) })
    }

    /// The verifier, sent with the code redemption.
    pub fn verifier(&self) -> &Secret {
        &self.verifier
    }

    /// `code_challenge`, sent with the authorization request.
    pub fn challenge(&self) -> &str {
        &self.challenge
    }

    /// `code_challenge_method`: always `S256` (`plain` is not offered).
    pub fn method(&self) -> &'static str {
        "S256"
    }
}

/// `BASE64URL(SHA256(ASCII(verifier)))`.
pub fn challenge_s256(verifier: &str) -> String {
    base64url::encode(sha256(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        let pkce = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        assert_eq!(pkce.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert_eq!(pkce.method(), "S256");
        assert_eq!(format!("{:?}", pkce.verifier()), "[redacted]");
    }

    #[test]
    fn generated_verifiers_are_valid_and_distinct() {
        let (a, b) = (Pkce::generate().unwrap(), Pkce::generate().unwrap());
        assert_eq!(a.verifier().expose().len(), 43);
        assert_ne!(a.verifier(), b.verifier());
        assert_eq!(a.challenge(), challenge_s256(a.verifier().expose()));
    }

    #[test]
    fn malformed_verifiers_are_refused() {
        for bad in
            ["short", &"a".repeat(129), &format!("{}!", "a".repeat(43)), &format!("{} ", "a".repeat(43))]
        {
            assert_eq!(Pkce::from_verifier(bad).unwrap_err().kind(), ErrorKind::InvalidUsage, "{bad}");
        }
        assert!(Pkce::from_verifier(&"~".repeat(128)).is_ok());
    }
}
