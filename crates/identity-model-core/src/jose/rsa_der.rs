//! The private members of an RSA key for a JWK (RFC 7518 §6.3.2), read from the PKCS#8 DER
//! that aws-lc-rs exports: aws-lc-rs has no accessor for `d`, `p`, `q` and the CRT values.
//! Only this one well-formed input is read (our own export), through a minimal DER walk.

/// One TLV: its tag and contents, and what follows it.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[count..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// An INTEGER's magnitude without the sign byte.
fn unsigned(bytes: &[u8]) -> &[u8] {
    match bytes {
        [0, rest @ ..] if !rest.is_empty() => rest,
        other => other,
    }
}

/// `[n, e, d, p, q, dp, dq, qi]` of a PKCS#8 `PrivateKeyInfo` holding an RSA key.
pub(crate) fn rsa_private_members(pkcs8: &[u8]) -> Option<[Vec<u8>; 8]> {
    let (0x30, info, _) = tlv(pkcs8)? else { return None };
    let (0x02, _version, rest) = tlv(info)? else { return None };
    let (0x30, _algorithm, rest) = tlv(rest)? else { return None };
    let (0x04, key, _) = tlv(rest)? else { return None };
    let (0x30, mut fields, _) = tlv(key)? else { return None };
    let (0x02, _version, rest) = tlv(fields)? else { return None };
    fields = rest;
    let mut out: [Vec<u8>; 8] = Default::default();
    for slot in &mut out {
        let (0x02, value, rest) = tlv(fields)? else { return None };
        *slot = unsigned(value).to_vec();
        fields = rest;
    }
    Some(out)
}
