//! JOSE signature algorithms (RFC 7518 section 3, RFC 8037, RFC 9864) and sets of them.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, ErrorKind};

/// A JWS signature algorithm this library can verify and sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA P-256 with SHA-256 (raw r||s).
    ES256,
    /// ECDSA P-384 with SHA-384 (raw r||s).
    ES384,
    /// ECDSA P-521 with SHA-512 (raw r||s).
    ES512,
    /// EdDSA; this library supports the Ed25519 curve.
    EdDSA,
    /// Ed25519 by its fully-specified name (RFC 9864).
    Ed25519,
    /// HMAC with SHA-256; only when the caller asks for it.
    HS256,
    /// HMAC with SHA-384; only when the caller asks for it.
    HS384,
    /// HMAC with SHA-512; only when the caller asks for it.
    HS512,
}

/// The family of key an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    /// `kty: RSA`.
    Rsa,
    /// `kty: EC` on the named curve.
    Ec(Curve),
    /// `kty: OKP`, `crv: Ed25519`.
    Ed25519,
    /// `kty: oct`.
    Symmetric,
}

/// The NIST curves of `kty: EC` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// P-256.
    P256,
    /// P-384.
    P384,
    /// P-521.
    P521,
}

impl Curve {
    /// The length in bytes of one coordinate (and of r and s in a signature).
    pub fn coordinate_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    /// The `crv` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 14] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::ES512,
        Algorithm::EdDSA,
        Algorithm::Ed25519,
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
    ];

    /// The `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::ES512 => "ES512",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::Ed25519 => "Ed25519",
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
        }
    }

    /// The key family this algorithm verifies with.
    pub fn key_family(self) -> KeyFamily {
        match self {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => KeyFamily::Rsa,
            Algorithm::ES256 => KeyFamily::Ec(Curve::P256),
            Algorithm::ES384 => KeyFamily::Ec(Curve::P384),
            Algorithm::ES512 => KeyFamily::Ec(Curve::P521),
            Algorithm::EdDSA | Algorithm::Ed25519 => KeyFamily::Ed25519,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => KeyFamily::Symmetric,
        }
    }

    /// Whether this is an HMAC algorithm (never allowed unless asked for).
    pub fn is_symmetric(self) -> bool {
        self.key_family() == KeyFamily::Symmetric
    }

    /// For HMAC algorithms, the minimum key length in bytes (RFC 7518 section 3.2).
    pub fn min_hmac_key_len(self) -> usize {
        match self {
            Algorithm::HS384 => 48,
            Algorithm::HS512 => 64,
            _ => 32,
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Known JOSE `alg` names that are not signature algorithms we verify: encryption and key
/// management algorithms, and deprecated or unimplemented signature algorithms.
const KNOWN_UNSUPPORTED: &[&str] = &[
    "ES256K",
    "Ed448",
    "RSA1_5",
    "RSA-OAEP",
    "RSA-OAEP-256",
    "RSA-OAEP-384",
    "RSA-OAEP-512",
    "A128KW",
    "A192KW",
    "A256KW",
    "dir",
    "ECDH-ES",
    "ECDH-ES+A128KW",
    "ECDH-ES+A192KW",
    "ECDH-ES+A256KW",
    "A128GCMKW",
    "A192GCMKW",
    "A256GCMKW",
    "PBES2-HS256+A128KW",
    "PBES2-HS384+A192KW",
    "PBES2-HS512+A256KW",
];

impl FromStr for Algorithm {
    type Err = Error;

    /// Parses an `alg` name exactly (names are case-sensitive). `none` in any spelling is
    /// `algorithm_not_allowed`; anything else unknown is `unsupported_algorithm`.
    fn from_str(name: &str) -> Result<Self, Error> {
        if let Some(alg) = Algorithm::ALL.into_iter().find(|a| a.as_str() == name) {
            return Ok(alg);
        }
        if name.trim().eq_ignore_ascii_case("none") {
            return Err(Error::new(
                ErrorKind::AlgorithmNotAllowed,
                "alg \"none\" (unsecured JWS) is never accepted",
            )
            .with_claim("alg"));
        }
        let known = KNOWN_UNSUPPORTED.contains(&name);
        let shown: String = name.chars().take(40).collect();
        Err(Error::new(
            ErrorKind::UnsupportedAlgorithm,
            if known {
                format!("alg {shown:?} is not a supported signature algorithm")
            } else {
                format!("alg {shown:?} is unknown")
            },
        )
        .with_claim("alg"))
    }
}

/// A set of algorithms, as a bit set: checking membership costs nothing on the hot path.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct AlgorithmSet(u16);

impl AlgorithmSet {
    /// The empty set.
    pub const fn empty() -> Self {
        AlgorithmSet(0)
    }

    /// Every asymmetric algorithm: the default allow-list.
    pub fn asymmetric() -> Self {
        Algorithm::ALL.into_iter().filter(|a| !a.is_symmetric()).collect()
    }

    /// HS256, HS384 and HS512.
    pub fn symmetric() -> Self {
        Algorithm::ALL.into_iter().filter(|a| a.is_symmetric()).collect()
    }

    /// Adds `alg`.
    pub fn insert(&mut self, alg: Algorithm) {
        self.0 |= alg.bit();
    }

    /// Whether `alg` is in the set.
    pub fn contains(self, alg: Algorithm) -> bool {
        self.0 & alg.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether any HMAC algorithm is in the set.
    pub fn has_symmetric(self) -> bool {
        self.0 & AlgorithmSet::symmetric().0 != 0
    }

    /// The algorithms in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Algorithm> {
        Algorithm::ALL.into_iter().filter(move |a| self.contains(*a))
    }
}

impl FromIterator<Algorithm> for AlgorithmSet {
    fn from_iter<I: IntoIterator<Item = Algorithm>>(iter: I) -> Self {
        let mut set = AlgorithmSet::empty();
        for alg in iter {
            set.insert(alg);
        }
        set
    }
}

impl fmt::Debug for AlgorithmSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_none_is_never_an_algorithm() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.as_str().parse::<Algorithm>().unwrap(), alg);
        }
        for none in ["none", "None", "NONE", "nOnE", " none"] {
            assert_eq!(none.parse::<Algorithm>().unwrap_err().kind(), ErrorKind::AlgorithmNotAllowed);
        }
        for other in ["rs256", "HS1", "RSA-OAEP", "", "ES256K"] {
            assert_eq!(other.parse::<Algorithm>().unwrap_err().kind(), ErrorKind::UnsupportedAlgorithm);
        }
    }

    #[test]
    fn default_set_has_no_hmac() {
        let set = AlgorithmSet::asymmetric();
        assert!(!set.has_symmetric());
        assert!(set.contains(Algorithm::PS512) && set.contains(Algorithm::EdDSA));
        assert_eq!(set.iter().count(), 11);
    }
}
