//! UTF-16LE strings as RDP, NTLM and CredSSP carry them.

use bytes::BufMut;

use crate::wire::error::DecodeError;

/// `value` as UTF-16LE bytes, without a terminator.
pub(crate) fn encode(value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() * 2);
    put(&mut out, value);
    out
}

/// Appends `value` as UTF-16LE, without a terminator.
pub(crate) fn put(out: &mut Vec<u8>, value: &str) {
    for unit in value.encode_utf16() {
        out.put_u16_le(unit);
    }
}

/// Decodes UTF-16LE up to the first NUL (unpaired surrogates become U+FFFD).
/// An odd byte count is an error.
pub(crate) fn decode(
    bytes: &[u8],
    context: &'static str,
    field: &'static str,
) -> Result<String, DecodeError> {
    if bytes.len() % 2 != 0 {
        return Err(DecodeError::InvalidField {
            context,
            field,
            reason: "odd utf-16 length",
        });
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .take_while(|&unit| unit != 0)
        .collect();
    Ok(String::from_utf16_lossy(&units))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_checks_length() {
        let text = "Grüße ✓ 𝄞";
        assert_eq!(decode(&encode(text), "test", "field").unwrap(), text);
        let mut terminated = encode("ab");
        terminated.extend_from_slice(&[0, 0, b'c', 0]);
        assert_eq!(decode(&terminated, "test", "field").unwrap(), "ab");
        assert!(decode(&[b'a', 0, b'b'], "test", "field").is_err());
    }
}
