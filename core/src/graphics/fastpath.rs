//! Fast-path output with fragmentation
//! ([MS-RDPBCGR 2.2.9.1.2](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/a1c4caa8-00ed-45bb-a06e-5177473766d3)).

use bytes::BufMut;

#[cfg(test)]
use crate::wire::cursor::ReadCursor;
#[cfg(test)]
use crate::wire::error::DecodeError;
#[cfg(test)]
use crate::wire::fastpath::split_pdu;
use crate::wire::fastpath::{ACTION_FASTPATH, LENGTH_TWO_BYTES, MAX_PDU_LEN};

/// fpOutputHeader plus the two-byte length.
const OUTPUT_HEADER_LEN: usize = 3;
/// updateHeader plus size.
const UPDATE_HEADER_LEN: usize = 3;
/// Largest single fast-path output PDU we emit. The length field allows
/// 0x7FFF, but clients size their receive buffers for 16 KiB PDUs and
/// fragment reassembly makes larger PDUs pointless.
pub const MAX_FAST_PATH_PDU: usize = 16 * 1024;
/// Update payload size for clients that cannot reassemble fragments.
pub const UNFRAGMENTED_UPDATE_BUDGET: usize = MAX_FAST_PATH_PDU - 64;
/// The smallest `max_pdu_len` that still carries one payload byte per PDU.
const MIN_PDU_LEN: usize = OUTPUT_HEADER_LEN + UPDATE_HEADER_LEN + 1;

// TS_FP_UPDATE fragmentation values (2.2.9.1.2.1).
const FRAGMENT_SINGLE: u8 = 0x0;
const FRAGMENT_LAST: u8 = 0x1;
const FRAGMENT_FIRST: u8 = 0x2;
const FRAGMENT_NEXT: u8 = 0x3;

/// TS_FP_UPDATE updateCode values
/// ([2.2.9.1.2.1](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/a1c4caa8-00ed-45bb-a06e-5177473766d3)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum UpdateCode {
    /// Only the test client decodes it; the server sends none.
    #[cfg(test)]
    Orders = 0x0,
    Bitmap = 0x1,
    /// Only the test client decodes it; the server sends none.
    #[cfg(test)]
    Palette = 0x2,
    /// Only the test client decodes it; the server sends none.
    #[cfg(test)]
    Synchronize = 0x3,
    SurfaceCommands = 0x4,
    PointerHidden = 0x5,
    PointerDefault = 0x6,
    PointerPosition = 0x8,
    ColorPointer = 0x9,
    CachedPointer = 0xA,
    NewPointer = 0xB,
    LargePointer = 0xC,
}

impl UpdateCode {
    #[cfg(test)]
    pub fn from_u8(code: u8) -> Option<Self> {
        Some(match code {
            0x0 => Self::Orders,
            0x1 => Self::Bitmap,
            0x2 => Self::Palette,
            0x3 => Self::Synchronize,
            0x4 => Self::SurfaceCommands,
            0x5 => Self::PointerHidden,
            0x6 => Self::PointerDefault,
            0x8 => Self::PointerPosition,
            0x9 => Self::ColorPointer,
            0xA => Self::CachedPointer,
            0xB => Self::NewPointer,
            0xC => Self::LargePointer,
            _ => return None,
        })
    }
}

/// Appends `payload` as one update in as many fast-path output PDUs
/// ([TS_FP_UPDATE_PDU, 2.2.9.1.2](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/68b5ee54-d0d5-4d65-8d81-e1c4025f7597))
/// as needed so that none exceeds `max_pdu_len` bytes.
///
/// Each PDU is the fpOutputHeader (action fast-path, no security flags), the
/// two-byte length, one TS_FP_UPDATE (no compression) and its data: a single
/// FRAGMENT_SINGLE PDU when the payload fits, else FIRST, NEXT..., LAST.
/// `max_pdu_len` is clamped to the 15-bit length limit ([`MAX_PDU_LEN`]) and
/// to at least one payload byte per PDU. The reassembled size limit the client
/// announced (Multifragment Update capability) is the caller's to respect.
pub fn encode_update(out: &mut Vec<u8>, code: UpdateCode, payload: &[u8], max_pdu_len: usize) {
    let max_pdu_len = max_pdu_len.clamp(MIN_PDU_LEN, MAX_PDU_LEN);
    let chunk_len = max_pdu_len - OUTPUT_HEADER_LEN - UPDATE_HEADER_LEN;
    if payload.len() <= chunk_len {
        write_fragment(out, code, FRAGMENT_SINGLE, payload);
        return;
    }
    let last = payload.len().div_ceil(chunk_len) - 1;
    for (index, chunk) in payload.chunks(chunk_len).enumerate() {
        let fragmentation = match index {
            0 => FRAGMENT_FIRST,
            index if index == last => FRAGMENT_LAST,
            _ => FRAGMENT_NEXT,
        };
        write_fragment(out, code, fragmentation, chunk);
    }
}

/// INVARIANT: `data` is at most MAX_PDU_LEN minus both headers (encode_update
/// clamps its chunks), so the lengths fit their fields.
fn write_fragment(out: &mut Vec<u8>, code: UpdateCode, fragmentation: u8, data: &[u8]) {
    let total = OUTPUT_HEADER_LEN + UPDATE_HEADER_LEN + data.len();
    out.reserve(total);
    out.put_u8(ACTION_FASTPATH); // no reserved bits, no security flags
    // Always the two-byte form, so the header size does not depend on the data.
    out.put_u16(u16::from(LENGTH_TWO_BYTES) << 8 | total as u16);
    // updateHeader: updateCode, fragmentation, compression 0.
    out.put_u8(code as u8 | fragmentation << 4);
    out.put_u16_le(data.len() as u16);
    out.put_slice(data);
}

#[cfg(test)]
/// One update reassembled by [`decode_output`]: its updateCode and data.
pub type DecodedUpdate = (u8, Vec<u8>);

#[cfg(test)]
/// Parses a stream of fast-path output PDUs back into whole updates,
/// joining fragments, the inverse of [`encode_update`] (for tests and test
/// clients). Compressed updates are refused: this server never compresses.
pub fn decode_output(mut stream: &[u8]) -> Result<Vec<DecodedUpdate>, DecodeError> {
    const CONTEXT: &str = "fast-path output";
    let mut updates = Vec::new();
    // The update being reassembled from FIRST/NEXT fragments.
    let mut partial: Option<DecodedUpdate> = None;
    while !stream.is_empty() {
        let (_, body, rest) = split_pdu(stream, CONTEXT)?;
        let mut cursor = ReadCursor::new(body, CONTEXT);
        while !cursor.is_empty() {
            let header = cursor.read_u8()?;
            let code = header & 0x0F;
            let fragmentation = (header >> 4) & 0x03;
            if header >> 6 != 0 {
                return Err(cursor.invalid("compression", "not used by this server"));
            }
            let size = usize::from(cursor.read_u16_le()?);
            let data = cursor.read_slice(size)?;
            match (fragmentation, partial.as_mut()) {
                (FRAGMENT_SINGLE, None) => updates.push((code, data.to_vec())),
                (FRAGMENT_FIRST, None) => partial = Some((code, data.to_vec())),
                (FRAGMENT_NEXT | FRAGMENT_LAST, Some((first_code, buffer))) => {
                    if *first_code != code {
                        return Err(
                            cursor.invalid("updateCode", "changes within a fragmented update")
                        );
                    }
                    buffer.extend_from_slice(data);
                    if fragmentation == FRAGMENT_LAST {
                        updates.extend(partial.take());
                    }
                }
                (FRAGMENT_NEXT | FRAGMENT_LAST, None) => {
                    return Err(
                        cursor.invalid("fragmentation", "continuation without a first fragment")
                    );
                }
                _ => {
                    return Err(
                        cursor.invalid("fragmentation", "new update inside a fragmented one")
                    );
                }
            }
        }
        stream = rest;
    }
    if partial.is_some() {
        return Err(DecodeError::InvalidField {
            context: CONTEXT,
            field: "fragmentation",
            reason: "stream ends inside a fragmented update",
        });
    }
    Ok(updates)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits `stream` into PDUs, checking each against `limit`.
    fn pdus(stream: &[u8], limit: usize) -> Vec<&[u8]> {
        let mut pdus = Vec::new();
        let mut rest = stream;
        while !rest.is_empty() {
            let (_, body, next) = split_pdu(rest, "test").unwrap();
            let pdu = &rest[..rest.len() - next.len()];
            assert!(
                pdu.len() <= limit,
                "pdu of {} bytes over {limit}",
                pdu.len()
            );
            // Always the two-byte length form.
            assert_eq!(pdu.len() - body.len(), OUTPUT_HEADER_LEN);
            pdus.push(pdu);
            rest = next;
        }
        pdus
    }

    #[test]
    fn small_update_is_one_single_fragment() {
        let mut out = Vec::new();
        encode_update(&mut out, UpdateCode::PointerPosition, &[1, 0, 2, 0], 1000);
        // fpOutputHeader, length 0x800A, updateHeader 0x08, size 4, data.
        assert_eq!(out, [0x00, 0x80, 0x0A, 0x08, 0x04, 0x00, 1, 0, 2, 0]);
        out.clear();
        encode_update(&mut out, UpdateCode::PointerHidden, &[], 1000);
        assert_eq!(out, [0x00, 0x80, 0x06, 0x05, 0x00, 0x00]);
        assert_eq!(decode_output(&out).unwrap(), [(5, Vec::new())]);
    }

    #[test]
    fn fragmentation_respects_the_limit_and_reassembles() {
        let limit = 1000;
        let chunk = limit - OUTPUT_HEADER_LEN - UPDATE_HEADER_LEN;
        // Exactly the largest single PDU, one byte more, and 100 KB.
        for size in [0usize, 1, chunk, chunk + 1, 100_000] {
            let payload: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
            let mut out = Vec::new();
            encode_update(&mut out, UpdateCode::Bitmap, &payload, limit);
            let pdus = pdus(&out, limit);
            assert_eq!(pdus.len(), size.div_ceil(chunk).max(1), "size {size}");
            let fragmentation: Vec<u8> = pdus.iter().map(|pdu| (pdu[3] >> 4) & 3).collect();
            match fragmentation.as_slice() {
                [single] => assert_eq!(*single, FRAGMENT_SINGLE),
                [first, middle @ .., last] => {
                    assert_eq!(*first, FRAGMENT_FIRST);
                    assert!(middle.iter().all(|&f| f == FRAGMENT_NEXT));
                    assert_eq!(*last, FRAGMENT_LAST);
                }
                [] => unreachable!("at least one pdu"),
            }
            if size == chunk {
                assert_eq!(pdus[0].len(), limit);
            }
            assert_eq!(
                decode_output(&out).unwrap(),
                [(UpdateCode::Bitmap as u8, payload)]
            );
        }
    }

    #[test]
    fn limits_are_clamped_to_what_the_length_field_holds() {
        let payload = vec![0xAB; 100_000];
        let mut out = Vec::new();
        encode_update(&mut out, UpdateCode::SurfaceCommands, &payload, usize::MAX);
        assert_eq!(pdus(&out, MAX_PDU_LEN).len(), 4);
        out.clear();
        // A limit too small for any data still makes progress, a byte a PDU.
        encode_update(&mut out, UpdateCode::Bitmap, &[1, 2, 3], 0);
        assert_eq!(pdus(&out, MIN_PDU_LEN).len(), 3);
        assert_eq!(decode_output(&out).unwrap(), [(1, vec![1, 2, 3])]);
    }

    #[test]
    fn several_updates_in_one_stream() {
        let mut out = Vec::new();
        encode_update(&mut out, UpdateCode::PointerDefault, &[], 100);
        encode_update(&mut out, UpdateCode::Bitmap, &[9; 250], 100);
        encode_update(&mut out, UpdateCode::CachedPointer, &[3, 0], 100);
        assert_eq!(
            decode_output(&out).unwrap(),
            [(6, vec![]), (1, vec![9; 250]), (0xA, vec![3, 0])]
        );
        assert_eq!(UpdateCode::from_u8(0xA), Some(UpdateCode::CachedPointer));
        assert_eq!(UpdateCode::from_u8(0x7), None);
    }

    #[test]
    fn bad_output_is_an_error() {
        let pdu = |update: &[u8]| {
            let mut out = vec![0x00, 0x80, 3 + update.len() as u8];
            out.extend_from_slice(update);
            out
        };
        let first = pdu(&[0x21, 0x01, 0x00, 0xAA]);
        let last = pdu(&[0x11, 0x01, 0x00, 0xBB]);
        let bad: Vec<(&str, Vec<u8>)> = vec![
            ("continuation without first", last.clone()),
            ("ends inside a fragmented update", first.clone()),
            ("single inside a fragmented update", {
                let mut stream = first.clone();
                stream.extend(pdu(&[0x01, 0x00, 0x00]));
                stream
            }),
            ("update code changes", {
                let mut stream = first.clone();
                stream.extend(pdu(&[0x14, 0x01, 0x00, 0xBB]));
                stream
            }),
            ("compressed", pdu(&[0x81, 0x00, 0x00])),
            ("size past the end", pdu(&[0x01, 0x05, 0x00, 0xAA])),
            (
                "length past the end",
                vec![0x00, 0x80, 0x20, 0x01, 0x00, 0x00],
            ),
            ("encrypted", vec![0x80, 0x80, 0x06, 0x01, 0x00, 0x00]),
            ("truncated header", vec![0x00, 0x80]),
        ];
        for (what, stream) in bad {
            assert!(decode_output(&stream).is_err(), "{what}");
        }
        let mut good = first;
        good.extend(last);
        assert_eq!(decode_output(&good).unwrap(), [(1, vec![0xAA, 0xBB])]);
    }
}
