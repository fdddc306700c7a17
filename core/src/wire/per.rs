//! The subset of aligned PER (ITU-T X.691) that T.125 domain PDUs and the
//! T.124 GCC conference PDUs use, as MS-RDPBCGR profiles them.

use bytes::BufMut;

use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;

/// Reads a length determinant (X.691 10.9): one byte below 0x80, two bytes
/// with the top bit set up to 0x3FFF. The two-byte form of a small value
/// (`80 05` for 5) is not the shortest, but it is unambiguous and read.
/// Fragmented lengths (0xC0 prefix, for 16K and more) are refused: no PDU
/// this server reads before the session is that large. Checks that many
/// bytes remain.
pub fn read_length(cursor: &mut ReadCursor<'_>) -> Result<usize, DecodeError> {
    let length = read_length_determinant(cursor)?;
    cursor.ensure(length)?;
    Ok(length)
}

/// A length determinant that counts something other than the bytes that
/// follow (set elements, or a length the reader does not rely on).
pub fn read_length_determinant(cursor: &mut ReadCursor<'_>) -> Result<usize, DecodeError> {
    let first = cursor.read_u8()?;
    if first & 0x80 == 0 {
        Ok(usize::from(first))
    } else if first & 0x40 == 0 {
        Ok(usize::from(u16::from_be_bytes([
            first & 0x3F,
            cursor.read_u8()?,
        ])))
    } else {
        Err(cursor.invalid("per length", "fragmented lengths are not supported"))
    }
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

/// An unconstrained INTEGER as T.124 uses it: a length determinant, then
/// the value's bytes. Leading zero bytes and the two-byte form of the
/// length are read; the value must fit 32 bits.
pub fn read_integer(cursor: &mut ReadCursor<'_>) -> Result<u32, DecodeError> {
    let length = read_length_determinant(cursor)?;
    if length == 0 {
        return Err(cursor.invalid("per integer", "empty"));
    }
    let bytes = cursor.read_slice(length)?;
    let start = bytes
        .iter()
        .position(|&byte| byte != 0)
        .unwrap_or(bytes.len());
    if bytes.len() - start > 4 {
        return Err(cursor.invalid("per integer", "does not fit 32 bits"));
    }
    Ok(bytes[start..]
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

/// An OBJECT IDENTIFIER in its BER content encoding, preceded by its
/// length determinant.
pub fn read_object_identifier<'a>(cursor: &mut ReadCursor<'a>) -> Result<&'a [u8], DecodeError> {
    let length = read_length_determinant(cursor)?;
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

    /// The two-byte form of a small length reads as the length.
    #[test]
    fn longer_than_minimal_lengths_are_read() {
        for (input, length) in [
            (&[0x05, 1, 2, 3, 4, 5][..], 5),
            (&[0x80, 0x05, 1, 2, 3, 4, 5], 5),
            (&[0x80, 0x00], 0),
        ] {
            assert_eq!(
                read_length(&mut ReadCursor::new(input, "test")).unwrap(),
                length
            );
        }
        assert!(read_length(&mut ReadCursor::new(&[0x80, 0x06, 1, 2, 3, 4, 5], "test")).is_err());
        assert_eq!(
            read_integer(&mut ReadCursor::new(&[0x80, 0x02, 0x00, 0x07], "test")).unwrap(),
            7
        );
        assert_eq!(
            read_integer(&mut ReadCursor::new(&[0x06, 0, 0, 0, 0, 0, 9], "test")).unwrap(),
            9
        );
        assert_eq!(
            read_object_identifier(&mut ReadCursor::new(&[0x80, 0x02, 7, 8], "test")).unwrap(),
            [7, 8]
        );
        assert!(read_integer(&mut ReadCursor::new(&[0x80, 0x00], "test")).is_err());
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
        assert!(read_integer(&mut ReadCursor::new(&[5, 1, 0, 0, 0, 0], "test")).is_err());
        assert!(read_u16(&mut ReadCursor::new(&[0xFF, 0xFF], "test"), 1001).is_err());
    }
}
