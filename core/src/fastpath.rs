//! Fast-path input ([MS-RDPBCGR 2.2.8.1.2](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/b8e7c588-51cb-455b-bb73-92d480903133))
//! and fast-path output with fragmentation (2.2.9.1.2).

use bytes::BufMut;

use crate::cursor::ReadCursor;
use crate::error::DecodeError;
use crate::input::{self, InputEvent, KBDFLAGS_EXTENDED, KBDFLAGS_EXTENDED1, KBDFLAGS_RELEASE};

const FASTPATH_INPUT_ENCRYPTED: u8 = 0x2;
const FASTPATH_INPUT_SECURE_CHECKSUM: u8 = 0x1;
const EVENT_SCANCODE: u8 = 0;
const EVENT_MOUSE: u8 = 1;
const EVENT_MOUSEX: u8 = 2;
const EVENT_SYNC: u8 = 3;
const EVENT_UNICODE: u8 = 4;
const EVENT_RELMOUSE: u8 = 5;
const EVENT_QOE_TIMESTAMP: u8 = 6;
const KBDFLAGS_FP_RELEASE: u8 = 0x01;
const KBDFLAGS_FP_EXTENDED: u8 = 0x02;
const KBDFLAGS_FP_EXTENDED1: u8 = 0x04;

/// fpOutputHeader plus the two-byte length.
const OUTPUT_HEADER_LEN: usize = 3;
/// updateHeader plus size.
const UPDATE_HEADER_LEN: usize = 3;
/// The fast-path length field holds 15 bits.
pub const MAX_PDU_LEN: usize = 0x7FFF;

const FRAGMENT_SINGLE: u8 = 0;
const FRAGMENT_LAST: u8 = 1;
const FRAGMENT_FIRST: u8 = 2;
const FRAGMENT_NEXT: u8 = 3;

/// The header length of a fast-path PDU: the header byte and a one- or two-byte length.
fn skip_header(cursor: &mut ReadCursor<'_>) -> Result<u8, DecodeError> {
    let header = cursor.read_u8()?;
    let length = cursor.read_u8()?;
    if length & 0x80 != 0 {
        cursor.read_u8()?;
    }
    Ok(header)
}

/// Decodes a whole fast-path input PDU (as framed by `tpkt::frame_length`)
/// and appends the events it carries.
pub fn decode_input(pdu: &[u8], out: &mut Vec<InputEvent>) -> Result<(), DecodeError> {
    let mut cursor = ReadCursor::new(pdu, "fast-path input");
    let header = skip_header(&mut cursor)?;
    let flags = header >> 6;
    if flags & (FASTPATH_INPUT_ENCRYPTED | FASTPATH_INPUT_SECURE_CHECKSUM) != 0 {
        return Err(cursor.invalid("flags", "encrypted, but no rdp encryption was negotiated"));
    }
    let mut count = usize::from((header >> 2) & 0x0F);
    if count == 0 {
        count = usize::from(cursor.read_u8()?);
    }
    for _ in 0..count {
        let event_header = cursor.read_u8()?;
        let event_flags = event_header & 0x1F;
        match event_header >> 5 {
            EVENT_SCANCODE => {
                let code = cursor.read_u8()?;
                let mut flags = 0;
                if event_flags & KBDFLAGS_FP_RELEASE != 0 {
                    flags |= KBDFLAGS_RELEASE;
                }
                if event_flags & KBDFLAGS_FP_EXTENDED != 0 {
                    flags |= KBDFLAGS_EXTENDED;
                }
                if event_flags & KBDFLAGS_FP_EXTENDED1 != 0 {
                    flags |= KBDFLAGS_EXTENDED1;
                }
                out.push(input::keyboard_event_from_scancode(flags, u16::from(code)));
            }
            EVENT_MOUSE | EVENT_MOUSEX => {
                let pointer_flags = cursor.read_u16_le()?;
                let x = cursor.read_u16_le()?;
                let y = cursor.read_u16_le()?;
                if event_header >> 5 == EVENT_MOUSE {
                    input::mouse_events_from_pointer(pointer_flags, x, y, out);
                } else {
                    input::mouse_events_from_pointer_x(pointer_flags, x, y, out);
                }
            }
            EVENT_SYNC => out.push(input::synchronize_event(u32::from(event_flags))),
            EVENT_UNICODE => {
                let code = cursor.read_u16_le()?;
                let flags = if event_flags & KBDFLAGS_FP_RELEASE != 0 {
                    KBDFLAGS_RELEASE
                } else {
                    0
                };
                out.push(input::unicode_event(flags, code));
            }
            EVENT_RELMOUSE => {
                let pointer_flags = cursor.read_u16_le()?;
                let dx = cursor.read_u16_le()? as i16;
                let dy = cursor.read_u16_le()? as i16;
                input::mouse_events_from_relative(pointer_flags, dx, dy, out);
            }
            EVENT_QOE_TIMESTAMP => cursor.skip(4)?,
            other => {
                return Err(DecodeError::Unexpected {
                    context: "fast-path input",
                    what: "event code",
                    value: u32::from(other),
                });
            }
        }
    }
    if !cursor.is_empty() {
        return Err(cursor.invalid("length", "bytes left after the last event"));
    }
    Ok(())
}

/// A raw fast-path input event, for test clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastPathInputEvent {
    Scancode { flags: u8, code: u8 },
    Mouse { flags: u16, x: u16, y: u16 },
    MouseX { flags: u16, x: u16, y: u16 },
    Sync { flags: u8 },
    Unicode { flags: u8, code: u16 },
    RelativeMouse { flags: u16, dx: i16, dy: i16 },
}

/// Encodes a fast-path input PDU (for test clients).
pub fn encode_input(events: &[FastPathInputEvent], out: &mut Vec<u8>) {
    let mut body = Vec::new();
    for event in events {
        match *event {
            FastPathInputEvent::Scancode { flags, code } => {
                body.put_slice(&[EVENT_SCANCODE << 5 | flags, code])
            }
            FastPathInputEvent::Mouse { flags, x, y }
            | FastPathInputEvent::MouseX { flags, x, y } => {
                let code = if matches!(event, FastPathInputEvent::Mouse { .. }) {
                    EVENT_MOUSE
                } else {
                    EVENT_MOUSEX
                };
                body.put_u8(code << 5);
                body.put_u16_le(flags);
                body.put_u16_le(x);
                body.put_u16_le(y);
            }
            FastPathInputEvent::Sync { flags } => body.put_u8(EVENT_SYNC << 5 | flags),
            FastPathInputEvent::Unicode { flags, code } => {
                body.put_u8(EVENT_UNICODE << 5 | flags);
                body.put_u16_le(code);
            }
            FastPathInputEvent::RelativeMouse { flags, dx, dy } => {
                body.put_u8(EVENT_RELMOUSE << 5);
                body.put_u16_le(flags);
                body.put_i16_le(dx);
                body.put_i16_le(dy);
            }
        }
    }
    // numEvents in the header when it fits 4 bits, else in its own byte.
    let (header, count_byte) = if events.len() < 16 {
        ((events.len() as u8) << 2, None)
    } else {
        (0, Some(events.len() as u8))
    };
    let total = 3 + usize::from(count_byte.is_some()) + body.len();
    out.put_u8(header);
    out.put_u16(0x8000 | total as u16);
    if let Some(count) = count_byte {
        out.put_u8(count);
    }
    out.put_slice(&body);
}

/// TS_FP_UPDATE updateCode values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum UpdateCode {
    Orders = 0x0,
    Bitmap = 0x1,
    Palette = 0x2,
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

/// Appends `payload` as one update in as many fast-path PDUs as needed so
/// that none exceeds `max_pdu_len` bytes (capped at the 15-bit limit).
pub fn encode_update(out: &mut Vec<u8>, code: UpdateCode, payload: &[u8], max_pdu_len: usize) {
    let max_pdu_len = max_pdu_len.clamp(OUTPUT_HEADER_LEN + UPDATE_HEADER_LEN + 1, MAX_PDU_LEN);
    let chunk_len = max_pdu_len - OUTPUT_HEADER_LEN - UPDATE_HEADER_LEN;
    if payload.len() <= chunk_len {
        write_fragment(out, code, FRAGMENT_SINGLE, payload);
        return;
    }
    let mut chunks = payload.chunks(chunk_len).peekable();
    let mut first = true;
    while let Some(chunk) = chunks.next() {
        let fragmentation = match (first, chunks.peek().is_none()) {
            (true, _) => FRAGMENT_FIRST,
            (false, true) => FRAGMENT_LAST,
            (false, false) => FRAGMENT_NEXT,
        };
        write_fragment(out, code, fragmentation, chunk);
        first = false;
    }
}

fn write_fragment(out: &mut Vec<u8>, code: UpdateCode, fragmentation: u8, data: &[u8]) {
    let total = OUTPUT_HEADER_LEN + UPDATE_HEADER_LEN + data.len();
    out.put_u8(0); // action fast-path, no flags
    out.put_u16(0x8000 | total as u16);
    out.put_u8(code as u8 | fragmentation << 4);
    out.put_u16_le(data.len() as u16);
    out.put_slice(data);
}

/// Parses a stream of fast-path output PDUs back into whole updates (for
/// tests and test clients).
pub fn decode_output(mut stream: &[u8]) -> Result<Vec<(u8, Vec<u8>)>, DecodeError> {
    let mut updates = Vec::new();
    let mut partial: Option<(u8, Vec<u8>)> = None;
    while !stream.is_empty() {
        let Some((_, len)) = crate::tpkt::frame_length(stream, MAX_PDU_LEN)? else {
            return Err(DecodeError::Truncated {
                context: "fast-path output",
                needed: 3,
                available: stream.len(),
            });
        };
        let mut cursor = ReadCursor::new(&stream[..len], "fast-path output");
        skip_header(&mut cursor)?;
        while !cursor.is_empty() {
            let header = cursor.read_u8()?;
            if header >> 6 != 0 {
                return Err(cursor.invalid("compression", "not used by this server"));
            }
            let size = usize::from(cursor.read_u16_le()?);
            let data = cursor.read_slice(size)?;
            let code = header & 0x0F;
            match (header >> 4) & 0x03 {
                FRAGMENT_SINGLE => updates.push((code, data.to_vec())),
                FRAGMENT_FIRST => partial = Some((code, data.to_vec())),
                FRAGMENT_NEXT | FRAGMENT_LAST => {
                    let Some((_, buffer)) = partial.as_mut() else {
                        return Err(cursor
                            .invalid("fragmentation", "continuation without a first fragment"));
                    };
                    buffer.extend_from_slice(data);
                    if (header >> 4) & 0x03 == FRAGMENT_LAST {
                        updates.extend(partial.take());
                    }
                }
                _ => unreachable!("two bits"),
            }
        }
        stream = &stream[len..];
    }
    Ok(updates)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{KeyboardEvent, MouseEvent};

    #[test]
    fn input_round_trips_through_the_decoder() {
        let mut pdu = Vec::new();
        encode_input(
            &[
                FastPathInputEvent::Scancode {
                    flags: KBDFLAGS_FP_RELEASE | KBDFLAGS_FP_EXTENDED,
                    code: 0x48,
                },
                FastPathInputEvent::Mouse {
                    flags: 0x8000 | 0x1000,
                    x: 5,
                    y: 6,
                },
                FastPathInputEvent::Unicode {
                    flags: 0,
                    code: 0x00E9,
                },
                FastPathInputEvent::Sync { flags: 0x2 },
                FastPathInputEvent::MouseX {
                    flags: 0x0001,
                    x: 1,
                    y: 1,
                },
                FastPathInputEvent::RelativeMouse {
                    flags: 0x0800,
                    dx: -5,
                    dy: 7,
                },
            ],
            &mut pdu,
        );
        let mut events = Vec::new();
        decode_input(&pdu, &mut events).unwrap();
        assert_eq!(
            events,
            [
                InputEvent::Keyboard(KeyboardEvent::Released {
                    code: 0x48,
                    extended: true
                }),
                InputEvent::Mouse(MouseEvent::Move { x: 5, y: 6 }),
                InputEvent::Mouse(MouseEvent::LeftPressed),
                InputEvent::Keyboard(KeyboardEvent::UnicodePressed(0xE9)),
                InputEvent::Keyboard(KeyboardEvent::Synchronize(
                    crate::input::SynchronizeFlags::NUM_LOCK
                )),
                InputEvent::Mouse(MouseEvent::Move { x: 1, y: 1 }),
                InputEvent::Mouse(MouseEvent::Button4Released),
                InputEvent::Mouse(MouseEvent::RelMove { x: -5, y: 7 }),
            ]
        );
    }

    #[test]
    fn many_events_use_the_count_byte() {
        let events = vec![
            FastPathInputEvent::Scancode {
                flags: 0,
                code: 0x1E
            };
            20
        ];
        let mut pdu = Vec::new();
        encode_input(&events, &mut pdu);
        let mut decoded = Vec::new();
        decode_input(&pdu, &mut decoded).unwrap();
        assert_eq!(decoded.len(), 20);
    }

    #[test]
    fn bad_input_is_rejected() {
        // One scancode event announced, none present.
        assert!(decode_input(&[0x04, 0x02], &mut Vec::new()).is_err());
        // Encrypted.
        assert!(decode_input(&[0x84, 0x04, 0x00, 0x1E], &mut Vec::new()).is_err());
        // Unknown event code 7.
        assert!(decode_input(&[0x04, 0x03, 0xE0], &mut Vec::new()).is_err());
        // Trailing bytes.
        assert!(decode_input(&[0x04, 0x05, 0x00, 0x1E, 0x00], &mut Vec::new()).is_err());
        // A truncated mouse event.
        assert!(decode_input(&[0x04, 0x05, 0x20, 0x00, 0x08], &mut Vec::new()).is_err());
    }

    #[test]
    fn fragmentation_respects_the_limit_and_reassembles() {
        let limit = 1000;
        let chunk = limit - 6;
        for size in [0usize, 1, chunk, chunk + 1, 100_000] {
            let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
            let mut out = Vec::new();
            encode_update(&mut out, UpdateCode::Bitmap, &payload, limit);
            let mut rest = &out[..];
            let mut pdus = 0;
            while let Some((_, len)) = crate::tpkt::frame_length(rest, MAX_PDU_LEN).unwrap() {
                assert!(len <= limit, "pdu of {len} bytes over {limit}");
                rest = &rest[len..];
                pdus += 1;
                if rest.is_empty() {
                    break;
                }
            }
            assert_eq!(pdus, size.div_ceil(chunk).max(1));
            let updates = decode_output(&out).unwrap();
            assert_eq!(updates, [(UpdateCode::Bitmap as u8, payload)]);
        }
    }
}
