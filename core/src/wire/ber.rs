//! The subset of BER (ITU-T X.690) that the MCS Connect-Initial and
//! Connect-Response PDUs use (T.125 via MS-RDPBCGR 2.2.1.3 and 2.2.1.4).

use bytes::BufMut;

use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;

pub const TAG_BOOLEAN: u8 = 0x01;
pub const TAG_INTEGER: u8 = 0x02;
pub const TAG_OCTET_STRING: u8 = 0x04;
pub const TAG_ENUMERATED: u8 = 0x0A;
pub const TAG_SEQUENCE: u8 = 0x30;

/// Reads a definite length and checks that many bytes remain.
///
/// BER (X.690 8.1.3) lets a sender use the long form for any length and
/// put leading zero bytes in it: `81 05` and `82 00 05` both mean 5. Only
/// DER asks for the shortest form, and nothing in MS-RDPBCGR or MS-CSSP
/// asks a client for DER, so any of them is read. What stays refused: the
/// indefinite form (`80`; MS-RDPBCGR 2.2.1.3 requires definite lengths),
/// the reserved `FF`, and values past 32 bits, which no PDU here can have.
pub fn read_length(cursor: &mut ReadCursor<'_>) -> Result<usize, DecodeError> {
    let first = cursor.read_u8()?;
    let length = if first & 0x80 == 0 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7F);
        if count == 0 {
            return Err(cursor.invalid("ber length", "indefinite form"));
        }
        if count == 0x7F {
            return Err(cursor.invalid("ber length", "reserved initial octet"));
        }
        let mut length: u32 = 0;
        for _ in 0..count {
            let byte = cursor.read_u8()?;
            if length >> 24 != 0 {
                return Err(cursor.invalid("ber length", "longer than 32 bits"));
            }
            length = (length << 8) | u32::from(byte);
        }
        length as usize
    };
    cursor.ensure(length)?;
    Ok(length)
}

pub fn write_length(out: &mut Vec<u8>, length: usize) {
    if length < 0x80 {
        out.put_u8(length as u8);
    } else if length <= 0xFF {
        out.put_u8(0x81);
        out.put_u8(length as u8);
    } else {
        // INVARIANT: MCS PDUs are bounded by TPKT's 65535-byte frames.
        out.put_u8(0x82);
        out.put_u16(length as u16);
    }
}

/// Reads a one-byte tag and its length; returns the content length.
pub fn read_tag(cursor: &mut ReadCursor<'_>, tag: u8) -> Result<usize, DecodeError> {
    let found = cursor.read_u8()?;
    if found != tag {
        return Err(DecodeError::Unexpected {
            context: cursor.context(),
            what: "ber tag",
            value: u32::from(found),
        });
    }
    read_length(cursor)
}

/// Reads an [APPLICATION n] constructed tag (high-tag-number form for n >= 31).
pub fn read_application_tag(cursor: &mut ReadCursor<'_>, number: u8) -> Result<usize, DecodeError> {
    let first = cursor.read_u8()?;
    if number >= 0x1F {
        let second = cursor.read_u8()?;
        if first != 0x7F || second != number {
            return Err(DecodeError::Unexpected {
                context: cursor.context(),
                what: "ber application tag",
                value: u32::from(second),
            });
        }
    } else if first != 0x60 | number {
        return Err(DecodeError::Unexpected {
            context: cursor.context(),
            what: "ber application tag",
            value: u32::from(first),
        });
    }
    read_length(cursor)
}

pub fn write_application_tag(out: &mut Vec<u8>, number: u8, length: usize) {
    if number >= 0x1F {
        out.put_u8(0x7F);
        out.put_u8(number);
    } else {
        out.put_u8(0x60 | number);
    }
    write_length(out, length);
}

/// A non-negative INTEGER that fits 32 bits. The content is read as
/// unsigned: T.125's INTEGERs are all non-negative, and mstsc writes 65535
/// as `02 02 FF FF` (MS-RDPBCGR 4.1.3), which strict DER would read as -1.
/// Leading zero bytes beyond the one a set top bit needs are not minimal
/// BER, but they are unambiguous and read.
pub fn read_integer(cursor: &mut ReadCursor<'_>) -> Result<u32, DecodeError> {
    let length = read_tag(cursor, TAG_INTEGER)?;
    if length == 0 {
        return Err(cursor.invalid("ber integer", "empty"));
    }
    let bytes = cursor.read_slice(length)?;
    let start = bytes
        .iter()
        .position(|&byte| byte != 0)
        .unwrap_or(bytes.len());
    if bytes.len() - start > 4 {
        return Err(cursor.invalid("ber integer", "does not fit 32 bits"));
    }
    Ok(bytes[start..]
        .iter()
        .fold(0u32, |value, &byte| (value << 8) | u32::from(byte)))
}

/// Writes a non-negative INTEGER in its shortest form.
pub fn write_integer(out: &mut Vec<u8>, value: u32) {
    out.put_u8(TAG_INTEGER);
    let bytes = value.to_be_bytes();
    let start = bytes.iter().position(|&byte| byte != 0).unwrap_or(3);
    // A set top bit would read as negative: keep a leading zero.
    let pad = bytes[start] & 0x80 != 0;
    write_length(out, 4 - start + usize::from(pad));
    if pad {
        out.put_u8(0);
    }
    out.put_slice(&bytes[start..]);
}

/// A signed INTEGER of 1 to 4 bytes, two's complement, such as an NTSTATUS
/// (MS-DTYP 2.2.38).
pub fn read_signed_integer(cursor: &mut ReadCursor<'_>) -> Result<i32, DecodeError> {
    let length = read_tag(cursor, TAG_INTEGER)?;
    if length == 0 || length > 4 {
        return Err(cursor.invalid("ber integer", "length out of range"));
    }
    let bytes = cursor.read_slice(length)?;
    // Sign-extend from the top bit of the first byte.
    let sign = if bytes[0] & 0x80 == 0 { 0 } else { -1 };
    Ok(bytes
        .iter()
        .fold(sign, |value, &byte| (value << 8) | i32::from(byte)))
}

/// Writes a signed INTEGER in its shortest two's-complement form.
pub fn write_signed_integer(out: &mut Vec<u8>, value: i32) {
    out.put_u8(TAG_INTEGER);
    let bytes = value.to_be_bytes();
    // A leading byte is redundant when it only repeats the sign of the next.
    let start = (0..3)
        .find(|&index| {
            let redundant = (bytes[index] == 0x00 && bytes[index + 1] & 0x80 == 0)
                || (bytes[index] == 0xFF && bytes[index + 1] & 0x80 != 0);
            !redundant
        })
        .unwrap_or(3);
    write_length(out, 4 - start);
    out.put_slice(&bytes[start..]);
}

pub fn read_boolean(cursor: &mut ReadCursor<'_>) -> Result<bool, DecodeError> {
    if read_tag(cursor, TAG_BOOLEAN)? != 1 {
        return Err(cursor.invalid("ber boolean", "length must be 1"));
    }
    Ok(cursor.read_u8()? != 0)
}

#[cfg(any(test, feature = "fuzzing"))]
pub fn write_boolean(out: &mut Vec<u8>, value: bool) {
    out.put_slice(&[TAG_BOOLEAN, 1, if value { 0xFF } else { 0 }]);
}

#[cfg(any(test, feature = "fuzzing"))]
pub fn read_enumerated(cursor: &mut ReadCursor<'_>) -> Result<u8, DecodeError> {
    if read_tag(cursor, TAG_ENUMERATED)? != 1 {
        return Err(cursor.invalid("ber enumerated", "length must be 1"));
    }
    cursor.read_u8()
}

pub fn write_enumerated(out: &mut Vec<u8>, value: u8) {
    out.put_slice(&[TAG_ENUMERATED, 1, value]);
}

pub fn read_octet_string<'a>(cursor: &mut ReadCursor<'a>) -> Result<&'a [u8], DecodeError> {
    let length = read_tag(cursor, TAG_OCTET_STRING)?;
    cursor.read_slice(length)
}

pub fn write_octet_string(out: &mut Vec<u8>, value: &[u8]) {
    out.put_u8(TAG_OCTET_STRING);
    write_length(out, value.len());
    out.put_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip_in_shortest_form() {
        for (value, bytes) in [
            (0u32, vec![2, 1, 0]),
            (0x7F, vec![2, 1, 0x7F]),
            (0x80, vec![2, 2, 0, 0x80]),
            (0xFFFF, vec![2, 3, 0, 0xFF, 0xFF]),
            (0xFFFF_FFFF, vec![2, 5, 0, 0xFF, 0xFF, 0xFF, 0xFF]),
        ] {
            let mut out = Vec::new();
            write_integer(&mut out, value);
            assert_eq!(out, bytes, "{value:#x}");
            assert_eq!(
                read_integer(&mut ReadCursor::new(&out, "test")).unwrap(),
                value
            );
        }
    }

    #[test]
    fn signed_integers_round_trip_in_shortest_twos_complement() {
        for (value, bytes) in [
            (0i32, vec![2, 1, 0]),
            (0x7F, vec![2, 1, 0x7F]),
            (0x80, vec![2, 2, 0, 0x80]),
            (-1, vec![2, 1, 0xFF]),
            (-128, vec![2, 1, 0x80]),
            (-129, vec![2, 2, 0xFF, 0x7F]),
            (0x7FFF_FFFF, vec![2, 4, 0x7F, 0xFF, 0xFF, 0xFF]),
            (i32::MIN, vec![2, 4, 0x80, 0, 0, 0]),
            // STATUS_LOGON_FAILURE, 0xC000006D as an NTSTATUS.
            (-0x3FFF_FF93, vec![2, 4, 0xC0, 0, 0, 0x6D]),
        ] {
            let mut out = Vec::new();
            write_signed_integer(&mut out, value);
            assert_eq!(out, bytes, "{value:#x}");
            assert_eq!(
                read_signed_integer(&mut ReadCursor::new(&out, "test")).unwrap(),
                value
            );
        }
        // Five bytes do not fit 32 signed bits; no bytes is no integer.
        let five = [2, 5, 0, 0xC0, 0, 0, 0x6D];
        assert!(read_signed_integer(&mut ReadCursor::new(&five, "test")).is_err());
        assert!(read_signed_integer(&mut ReadCursor::new(&[2, 0], "test")).is_err());
    }

    #[test]
    fn lengths_are_checked_against_the_input() {
        assert!(read_length(&mut ReadCursor::new(&[0x82, 0x01, 0x00], "test")).is_err());
        assert!(read_length(&mut ReadCursor::new(&[0x80], "test")).is_err());
        assert!(read_length(&mut ReadCursor::new(&[0x85, 1, 1, 1, 1, 1], "test")).is_err());
        assert_eq!(
            read_length(&mut ReadCursor::new(&[0x81, 1, 9], "test")).unwrap(),
            1
        );
    }

    /// Every definite form of 5 reads as 5: short, long with one byte, long
    /// with leading zeros (BER allows them; only DER forbids them).
    #[test]
    fn longer_than_minimal_lengths_are_read() {
        let body = [0xAA; 5];
        for header in [
            &[0x05][..],
            &[0x81, 0x05],
            &[0x82, 0x00, 0x05],
            &[0x84, 0x00, 0x00, 0x00, 0x05],
            &[0x88, 0, 0, 0, 0, 0, 0, 0, 0x05],
        ] {
            let input = [header, &body].concat();
            let mut cursor = ReadCursor::new(&input, "test");
            assert_eq!(read_length(&mut cursor).unwrap(), 5, "{header:02x?}");
            assert_eq!(cursor.remaining(), 5);
        }
        // Still refused: indefinite, reserved, past 32 bits, past the input.
        for bad in [
            &[0x80, 0, 0][..],
            &[0xFF, 0x05],
            &[0x85, 0x01, 0, 0, 0, 0x05],
            &[0x82, 0x00],
            &[0x82, 0x00, 0x06, 0, 0, 0, 0, 0],
        ] {
            assert!(
                read_length(&mut ReadCursor::new(bad, "test")).is_err(),
                "{bad:02x?}"
            );
        }
    }

    #[test]
    fn integers_with_leading_zeros_are_read() {
        for (bytes, value) in [
            (&[2, 2, 0, 5][..], 5),
            (&[2, 6, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF], 0xFFFF_FFFF),
            (&[2, 0x81, 1, 7], 7),
            (&[2, 3, 0, 0, 0], 0),
        ] {
            assert_eq!(
                read_integer(&mut ReadCursor::new(bytes, "test")).unwrap(),
                value
            );
        }
        for bad in [&[2, 0][..], &[2, 5, 1, 0, 0, 0, 0], &[2, 3, 0, 1]] {
            assert!(read_integer(&mut ReadCursor::new(bad, "test")).is_err());
        }
    }

    #[test]
    fn application_tags() {
        let mut out = Vec::new();
        write_application_tag(&mut out, 101, 300);
        assert_eq!(out, [0x7F, 0x65, 0x82, 0x01, 0x2C]);
        out.resize(out.len() + 300, 0);
        assert_eq!(
            read_application_tag(&mut ReadCursor::new(&out, "test"), 101).unwrap(),
            300
        );
        assert!(read_application_tag(&mut ReadCursor::new(&out, "test"), 102).is_err());
    }
}
