//! The subset of aligned PER (ITU-T X.691) that T.125 domain PDUs and the
//! T.124 GCC conference PDUs use, as MS-RDPBCGR profiles them.

use bytes::BufMut;

use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;

/// Reads a length determinant: one byte below 0x80, two bytes with the top
/// bit set up to 0x3FFF. Fragmented lengths (0xC0 prefix) are refused: no
/// PDU this server accepts needs them. Checks that many bytes remain.
pub fn read_length(cursor: &mut ReadCursor<'_>) -> Result<usize, DecodeError> {
    let first = cursor.read_u8()?;
    let length = if first & 0x80 == 0 {
        usize::from(first)
    } else if first & 0x40 == 0 {
        usize::from(u16::from_be_bytes([first & 0x3F, cursor.read_u8()?]))
    } else {
        return Err(cursor.invalid("per length", "fragmented lengths are not supported"));
    };
    cursor.ensure(length)?;
    Ok(length)
}

/// INVARIANT: `length` is below 0x4000 (the callers' PDUs are bounded by
/// TPKT frames, and graphics travel over fast-path).
pub fn write_length(out: &mut Vec<u8>, length: usize) {
    debug_assert!(length < 0x4000);
    if length < 0x80 {
        out.put_u8(length as u8);
    } else {
        out.put_u16(0x8000 | length as u16);
    }
}

/// A 16-bit constrained whole number with lower bound `min`.
pub fn read_u16(cursor: &mut ReadCursor<'_>, min: u16) -> Result<u16, DecodeError> {
    cursor
        .read_u16_be()?
        .checked_add(min)
        .ok_or(cursor.invalid("per integer", "exceeds 16 bits"))
}

pub fn write_u16(out: &mut Vec<u8>, value: u16, min: u16) {
    out.put_u16(value.saturating_sub(min));
}

/// An unconstrained INTEGER as T.124 uses it: a length byte, then 1 to 4 bytes.
pub fn read_integer(cursor: &mut ReadCursor<'_>) -> Result<u32, DecodeError> {
    let length = usize::from(cursor.read_u8()?);
    if length == 0 || length > 4 {
        return Err(cursor.invalid("per integer", "length out of range"));
    }
    let bytes = cursor.read_slice(length)?;
    Ok(bytes
        .iter()
        .fold(0u32, |value, &byte| (value << 8) | u32::from(byte)))
}

pub fn write_integer(out: &mut Vec<u8>, value: u32) {
    if value <= 0xFF {
        out.put_u8(1);
        out.put_u8(value as u8);
    } else if value <= 0xFFFF {
        out.put_u8(2);
        out.put_u16(value as u16);
    } else {
        out.put_u8(4);
        out.put_u32(value);
    }
}

/// An OBJECT IDENTIFIER in its BER content encoding, preceded by a length byte.
pub fn read_object_identifier<'a>(cursor: &mut ReadCursor<'a>) -> Result<&'a [u8], DecodeError> {
    let length = usize::from(cursor.read_u8()?);
    cursor.read_slice(length)
}

pub fn write_object_identifier(out: &mut Vec<u8>, encoded: &[u8]) {
    out.put_u8(encoded.len() as u8);
    out.put_slice(encoded);
}

/// An OCTET STRING of at least `min` bytes (its length is written minus `min`).
pub fn read_octet_string<'a>(
    cursor: &mut ReadCursor<'a>,
    min: usize,
) -> Result<&'a [u8], DecodeError> {
    let length = usize::from(cursor.read_u8()?) + min;
    cursor.read_slice(length)
}

pub fn write_octet_string(out: &mut Vec<u8>, value: &[u8], min: usize) {
    out.put_u8((value.len() - min) as u8);
    out.put_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip() {
        for length in [0usize, 1, 0x7F, 0x80, 0x3FFF] {
            let mut out = Vec::new();
            write_length(&mut out, length);
            out.resize(out.len() + length, 0);
            assert_eq!(
                read_length(&mut ReadCursor::new(&out, "test")).unwrap(),
                length
            );
        }
    }

    #[test]
    fn bad_lengths_are_errors() {
        assert!(read_length(&mut ReadCursor::new(&[0x05, 1, 2], "test")).is_err());
        assert!(read_length(&mut ReadCursor::new(&[0xC1, 0], "test")).is_err());
        assert!(read_length(&mut ReadCursor::new(&[0x81], "test")).is_err());
    }

    #[test]
    fn integers_round_trip() {
        for value in [0u32, 0xFF, 0x100, 0xFFFF, 0x10000] {
            let mut out = Vec::new();
            write_integer(&mut out, value);
            assert_eq!(
                read_integer(&mut ReadCursor::new(&out, "test")).unwrap(),
                value
            );
        }
        assert!(read_integer(&mut ReadCursor::new(&[5, 0, 0, 0, 0, 0], "test")).is_err());
        assert!(read_u16(&mut ReadCursor::new(&[0xFF, 0xFF], "test"), 1001).is_err());
    }
}
