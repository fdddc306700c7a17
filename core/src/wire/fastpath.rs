//! Fast-path framing, shared by input
//! ([MS-RDPBCGR 2.2.8.1.2](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/b8e7c588-51cb-455b-bb73-92d480903133))
//! and output ([2.2.9.1.2](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/a1c4caa8-00ed-45bb-a06e-5177473766d3)):
//! one header byte whose low two bits are the action (0 = fast-path) and
//! whose high two bits are security flags, then a 7-bit or 15-bit
//! big-endian length of the whole PDU.

use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;

/// FASTPATH_INPUT_ACTION_FASTPATH / FASTPATH_OUTPUT_ACTION_FASTPATH.
pub const ACTION_FASTPATH: u8 = 0x0;
pub const ACTION_MASK: u8 = 0x03;
/// Security flags in the top two bits of the header byte
/// (FASTPATH_INPUT_SECURE_CHECKSUM / _ENCRYPTED, same values for output).
pub const FASTPATH_SECURE_CHECKSUM: u8 = 0x1;
pub const FASTPATH_ENCRYPTED: u8 = 0x2;
/// The length byte's high bit announces a second length byte.
pub const LENGTH_TWO_BYTES: u8 = 0x80;

/// The fast-path length field holds 15 bits.
pub const MAX_PDU_LEN: usize = 0x7FFF;

/// Splits the fast-path PDU at the start of `stream` into its header byte,
/// its body (after the length field) and the bytes that follow it.
pub fn split_pdu<'a>(
    stream: &'a [u8],
    context: &'static str,
) -> Result<(u8, &'a [u8], &'a [u8]), DecodeError> {
    let mut cursor = ReadCursor::new(stream, context);
    let header = cursor.read_u8()?;
    if header & ACTION_MASK != ACTION_FASTPATH {
        return Err(DecodeError::Unexpected {
            context,
            what: "action",
            value: u32::from(header & ACTION_MASK),
        });
    }
    if (header >> 6) & (FASTPATH_ENCRYPTED | FASTPATH_SECURE_CHECKSUM) != 0 {
        // We never negotiate standard RDP security with encryption, so there
        // is no key to check a signature or decrypt with.
        return Err(cursor.invalid("flags", "encrypted, but no rdp encryption was negotiated"));
    }
    let length1 = cursor.read_u8()?;
    let length = if length1 & LENGTH_TWO_BYTES != 0 {
        usize::from(u16::from_be_bytes([
            length1 & !LENGTH_TWO_BYTES,
            cursor.read_u8()?,
        ]))
    } else {
        usize::from(length1)
    };
    if length < cursor.position() {
        return Err(cursor.invalid("length", "shorter than its own header"));
    }
    if length > stream.len() {
        return Err(DecodeError::Truncated {
            context,
            needed: length,
            available: stream.len(),
        });
    }
    let (pdu, rest) = stream.split_at(length);
    Ok((header, &pdu[cursor.position()..], rest))
}
