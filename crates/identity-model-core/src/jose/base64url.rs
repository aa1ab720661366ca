//! Strict base64url (RFC 7515 section 2): URL-safe alphabet, no padding, no whitespace, no
//! non-zero trailing bits. Anything else is rejected rather than repaired.

use base64::Engine as _;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

const STRICT: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Decodes strict base64url.
pub fn decode(input: &[u8]) -> Result<Vec<u8>, base64::DecodeError> {
    STRICT.decode(input)
}

/// Decodes strict base64url into a caller's buffer (no allocation), returning the length.
pub(crate) fn decode_slice(input: &[u8], out: &mut [u8]) -> Result<usize, base64::DecodeSliceError> {
    STRICT.decode_slice(input, out)
}

/// Encodes as base64url without padding.
pub fn encode(input: impl AsRef<[u8]>) -> String {
    STRICT.encode(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_padding_standard_alphabet_and_whitespace() {
        assert_eq!(decode(b"Zm9v").unwrap(), b"foo");
        for bad in ["Zm8=", "Zm9v+A", "Zm9v/A", "Zm9 v", "Zm9v\n", "Zm9\tv", "Z", "Zm9", "Zh"] {
            // "Zm9" decodes to "fo" only when trailing bits are zero: 'Z' 'm' '9' has non-zero bits.
            assert!(decode(bad.as_bytes()).is_err(), "{bad:?} must be rejected");
        }
        assert_eq!(decode(b"Zm8").unwrap(), b"fo");
    }

    #[test]
    fn round_trips() {
        for len in 0..64u8 {
            let data: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(decode(encode(&data).as_bytes()).unwrap(), data);
        }
    }
}
