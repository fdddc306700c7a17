//! Framing of the byte stream: TPKT (T.123) for slow-path PDUs and the
//! fast-path header (MS-RDPBCGR 2.2.8.1.2) for fast-path input.
//!
//! Both kinds share one stream; the first byte tells them apart.

use bytes::BufMut;

use crate::wire::error::DecodeError;

/// The 4-byte TPKT header: version 3, reserved, big-endian total length.
pub const TPKT_HEADER_LEN: usize = 4;
const TPKT_VERSION: u8 = 3;
/// A TPKT frame carries at least the 3-byte X.224 Data TPDU header.
const TPKT_MIN_LEN: usize = TPKT_HEADER_LEN + 3;
/// FASTPATH_INPUT_ACTION_FASTPATH in the low two bits of the first byte.
const FASTPATH_ACTION_MASK: u8 = 0x03;
/// The smallest fast-path PDU: header byte plus one length byte.
const FASTPATH_MIN_LEN: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// TPKT-framed X.224 (slow path).
    X224,
    /// A fast-path PDU.
    FastPath,
}

/// The kind and total length of the PDU at the start of `buf`, or `None`
/// while more bytes are needed to know. Lengths above `max_len` are refused
/// before anything is buffered for them.
pub fn frame_length(buf: &[u8], max_len: usize) -> Result<Option<(FrameKind, usize)>, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let (kind, len) = if first == TPKT_VERSION {
        if buf.len() < TPKT_HEADER_LEN {
            return Ok(None);
        }
        let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        if len < TPKT_MIN_LEN {
            return Err(DecodeError::InvalidField {
                context: "tpkt header",
                field: "length",
                reason: "shorter than the smallest x.224 tpdu",
            });
        }
        (FrameKind::X224, len)
    } else if first & FASTPATH_ACTION_MASK == 0 {
        let Some(&length1) = buf.get(1) else {
            return Ok(None);
        };
        let len = if length1 & 0x80 != 0 {
            let Some(&length2) = buf.get(2) else {
                return Ok(None);
            };
            usize::from(u16::from_be_bytes([length1 & 0x7F, length2]))
        } else {
            usize::from(length1)
        };
        if len < FASTPATH_MIN_LEN {
            return Err(DecodeError::InvalidField {
                context: "fast-path header",
                field: "length",
                reason: "shorter than its own header",
            });
        }
        (FrameKind::FastPath, len)
    } else {
        return Err(DecodeError::Unexpected {
            context: "pdu framing",
            what: "first byte",
            value: u32::from(first),
        });
    };
    if len > max_len {
        return Err(DecodeError::TooLarge {
            context: "incoming pdu",
            size: len,
            limit: max_len,
        });
    }
    Ok((buf.len() >= len).then_some((kind, len)))
}

/// Writes a TPKT header for a frame of `total_len` bytes, header included.
///
/// INVARIANT: callers never build frames over 65535 bytes; the X.224 and MCS
/// payloads the server sends are small, and graphics go over fast-path.
pub fn encode_tpkt_header(out: &mut Vec<u8>, total_len: usize) {
    debug_assert!(total_len <= usize::from(u16::MAX));
    out.put_u8(TPKT_VERSION);
    out.put_u8(0);
    out.put_u16(total_len as u16);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tpkt_needs_whole_frame() {
        let frame = [3, 0, 0, 8, 2, 0xF0, 0x80, 0x7F];
        assert_eq!(frame_length(&frame[..3], 100), Ok(None));
        assert_eq!(frame_length(&frame[..7], 100), Ok(None));
        assert_eq!(frame_length(&frame, 100), Ok(Some((FrameKind::X224, 8))));
    }

    #[test]
    fn fast_path_lengths() {
        assert_eq!(
            frame_length(&[0x44, 3, 0], 100),
            Ok(Some((FrameKind::FastPath, 3)))
        );
        assert_eq!(frame_length(&[0x44, 0x80], 1000), Ok(None));
        assert_eq!(
            frame_length(&[0x44, 0x81, 0x00], 1000),
            Ok(None),
            "256-byte pdu, 3 bytes present"
        );
        let mut long = vec![0x44, 0x80, 0x05];
        long.resize(5, 0);
        assert_eq!(
            frame_length(&long, 1000),
            Ok(Some((FrameKind::FastPath, 5)))
        );
    }

    #[test]
    fn bad_frames_are_errors() {
        assert!(frame_length(&[3, 0, 0, 3], 100).is_err());
        assert!(matches!(
            frame_length(&[3, 0, 0xFF, 0xFF], 100),
            Err(DecodeError::TooLarge { size: 0xFFFF, .. })
        ));
        assert!(frame_length(&[0x01], 100).is_err());
        assert!(frame_length(&[0x44, 0x01], 100).is_err());
    }
}
