//! Fast-path input
//! ([MS-RDPBCGR 2.2.8.1.2](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/b8e7c588-51cb-455b-bb73-92d480903133)):
//! the events of a fast-path input PDU, mapped onto the application's
//! input model.

#[cfg(any(test, feature = "fuzzing"))]
use bytes::BufMut;

use crate::api::input::{
    self, InputEvent, KBDFLAGS_EXTENDED, KBDFLAGS_EXTENDED1, KBDFLAGS_RELEASE,
};
use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;
use crate::wire::fastpath::split_pdu;
#[cfg(any(test, feature = "fuzzing"))]
use crate::wire::fastpath::{ACTION_FASTPATH, LENGTH_TWO_BYTES, MAX_PDU_LEN};

// TS_FP_INPUT_EVENT eventCode values (2.2.8.1.2.2).
const EVENT_SCANCODE: u8 = 0;
const EVENT_MOUSE: u8 = 1;
const EVENT_MOUSEX: u8 = 2;
const EVENT_SYNC: u8 = 3;
const EVENT_UNICODE: u8 = 4;
const EVENT_RELMOUSE: u8 = 5;
const EVENT_QOE_TIMESTAMP: u8 = 6;
const EVENT_FLAGS_MASK: u8 = 0x1F;
// Keyboard eventFlags (2.2.8.1.2.2.1); the Unicode event uses RELEASE too.
pub const FASTPATH_INPUT_KBDFLAGS_RELEASE: u8 = 0x01;
pub const FASTPATH_INPUT_KBDFLAGS_EXTENDED: u8 = 0x02;
pub const FASTPATH_INPUT_KBDFLAGS_EXTENDED1: u8 = 0x04;

/// One event of a fast-path input PDU, as on the wire
/// ([TS_FP_INPUT_EVENT, 2.2.8.1.2.2](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/76c4dd59-7ba0-445d-a03c-885212ab80f6)).
///
/// The server turns these into [`InputEvent`]s; test clients build them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastPathInputEvent {
    /// TS_FP_KEYBOARD_EVENT; `flags` are FASTPATH_INPUT_KBDFLAGS_*.
    Scancode { flags: u8, code: u8 },
    /// TS_FP_POINTER_EVENT; `flags` are the TS_POINTER_EVENT PTRFLAGS_*.
    Mouse { flags: u16, x: u16, y: u16 },
    /// TS_FP_POINTERX_EVENT; `flags` are PTRXFLAGS_*.
    MouseX { flags: u16, x: u16, y: u16 },
    /// TS_FP_SYNC_EVENT; `flags` are the FASTPATH_INPUT_SYNC_* lock states.
    Sync { flags: u8 },
    /// TS_FP_UNICODE_KEYBOARD_EVENT; `flags` is 0 or FASTPATH_INPUT_KBDFLAGS_RELEASE.
    Unicode { flags: u8, code: u16 },
    /// TS_FP_RELPOINTER_EVENT.
    RelativeMouse { flags: u16, dx: i16, dy: i16 },
    /// TS_FP_QOETIMESTAMP_EVENT, in milliseconds.
    QoeTimestamp { timestamp: u32 },
}

impl FastPathInputEvent {
    #[cfg(any(test, feature = "fuzzing"))]
    /// Encoded size: the eventHeader byte plus the event's fields.
    pub fn size(&self) -> usize {
        1 + match self {
            Self::Scancode { .. } => 1,
            Self::Mouse { .. } | Self::MouseX { .. } | Self::RelativeMouse { .. } => 6,
            Self::Sync { .. } => 0,
            Self::Unicode { .. } => 2,
            Self::QoeTimestamp { .. } => 4,
        }
    }

    pub fn decode(cursor: &mut ReadCursor<'_>) -> Result<Self, DecodeError> {
        let event_header = cursor.read_u8()?;
        let flags = event_header & EVENT_FLAGS_MASK;
        // The pointer and timestamp events require eventFlags to be zero;
        // they carry no meaning there, so other values are ignored.
        Ok(match event_header >> 5 {
            EVENT_SCANCODE => Self::Scancode {
                flags,
                code: cursor.read_u8()?,
            },
            EVENT_MOUSE => Self::Mouse {
                flags: cursor.read_u16_le()?,
                x: cursor.read_u16_le()?,
                y: cursor.read_u16_le()?,
            },
            EVENT_MOUSEX => Self::MouseX {
                flags: cursor.read_u16_le()?,
                x: cursor.read_u16_le()?,
                y: cursor.read_u16_le()?,
            },
            EVENT_SYNC => Self::Sync { flags },
            EVENT_UNICODE => Self::Unicode {
                flags,
                code: cursor.read_u16_le()?,
            },
            EVENT_RELMOUSE => Self::RelativeMouse {
                flags: cursor.read_u16_le()?,
                dx: cursor.read_i16_le()?,
                dy: cursor.read_i16_le()?,
            },
            EVENT_QOE_TIMESTAMP => Self::QoeTimestamp {
                timestamp: cursor.read_u32_le()?,
            },
            other => {
                return Err(DecodeError::Unexpected {
                    context: cursor.context(),
                    what: "event code",
                    value: u32::from(other),
                });
            }
        })
    }

    #[cfg(any(test, feature = "fuzzing"))]
    /// Writes the event; flags wider than the 5-bit eventFlags are cut.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let header = |code: u8, flags: u8| code << 5 | (flags & EVENT_FLAGS_MASK);
        match *self {
            Self::Scancode { flags, code } => {
                out.put_u8(header(EVENT_SCANCODE, flags));
                out.put_u8(code);
            }
            Self::Mouse { flags, x, y } | Self::MouseX { flags, x, y } => {
                let code = if matches!(self, Self::Mouse { .. }) {
                    EVENT_MOUSE
                } else {
                    EVENT_MOUSEX
                };
                out.put_u8(header(code, 0));
                out.put_u16_le(flags);
                out.put_u16_le(x);
                out.put_u16_le(y);
            }
            Self::Sync { flags } => out.put_u8(header(EVENT_SYNC, flags)),
            Self::Unicode { flags, code } => {
                out.put_u8(header(EVENT_UNICODE, flags));
                out.put_u16_le(code);
            }
            Self::RelativeMouse { flags, dx, dy } => {
                out.put_u8(header(EVENT_RELMOUSE, 0));
                out.put_u16_le(flags);
                out.put_i16_le(dx);
                out.put_i16_le(dy);
            }
            Self::QoeTimestamp { timestamp } => {
                out.put_u8(header(EVENT_QOE_TIMESTAMP, 0));
                out.put_u32_le(timestamp);
            }
        }
    }

    /// Appends what the application sees of this event (QoE timestamps are
    /// transport bookkeeping and yield nothing).
    pub fn to_input_events(self, out: &mut Vec<InputEvent>) {
        match self {
            Self::Scancode { flags, code } => {
                // Map to the slow-path flag word so both paths share one decoder.
                let mut slow_path_flags = 0;
                if flags & FASTPATH_INPUT_KBDFLAGS_RELEASE != 0 {
                    slow_path_flags |= KBDFLAGS_RELEASE;
                }
                if flags & FASTPATH_INPUT_KBDFLAGS_EXTENDED != 0 {
                    slow_path_flags |= KBDFLAGS_EXTENDED;
                }
                if flags & FASTPATH_INPUT_KBDFLAGS_EXTENDED1 != 0 {
                    slow_path_flags |= KBDFLAGS_EXTENDED1;
                }
                out.push(input::keyboard_event_from_scancode(
                    slow_path_flags,
                    u16::from(code),
                ));
            }
            Self::Mouse { flags, x, y } => input::mouse_events_from_pointer(flags, x, y, out),
            Self::MouseX { flags, x, y } => input::mouse_events_from_pointer_x(flags, x, y, out),
            // FASTPATH_INPUT_SYNC_* have the values of the slow-path TS_SYNC_EVENT flags.
            Self::Sync { flags } => out.push(input::synchronize_event(u32::from(flags))),
            Self::Unicode { flags, code } => {
                let slow_path_flags = if flags & FASTPATH_INPUT_KBDFLAGS_RELEASE != 0 {
                    KBDFLAGS_RELEASE
                } else {
                    0
                };
                out.push(input::unicode_event(slow_path_flags, code));
            }
            Self::RelativeMouse { flags, dx, dy } => {
                input::mouse_events_from_relative(flags, dx, dy, out)
            }
            Self::QoeTimestamp { .. } => {}
        }
    }
}

/// Decodes a whole fast-path input PDU
/// ([TS_FP_INPUT_PDU](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/b8e7c588-51cb-455b-bb73-92d480903133),
/// as framed by `tpkt::frame_length`) and appends the events it carries.
///
/// The PDU's length field must match `pdu.len()` exactly. PDUs with the
/// encryption or checksum flag are refused: we never negotiate standard RDP
/// encryption, so there is nothing to decrypt them with.
pub fn decode_input(pdu: &[u8], out: &mut Vec<InputEvent>) -> Result<(), DecodeError> {
    const CONTEXT: &str = "fast-path input";
    let (header, body, rest) = split_pdu(pdu, CONTEXT)?;
    let mut cursor = ReadCursor::new(body, CONTEXT);
    if !rest.is_empty() {
        return Err(cursor.invalid("length", "shorter than the pdu"));
    }
    // numEvents sits in the header when it fits 4 bits; 0 there means a
    // separate byte follows the length.
    let mut count = usize::from((header >> 2) & 0x0F);
    if count == 0 {
        count = usize::from(cursor.read_u8()?);
    }
    for _ in 0..count {
        FastPathInputEvent::decode(&mut cursor)?.to_input_events(out);
    }
    if !cursor.is_empty() {
        return Err(cursor.invalid("length", "bytes left after the last event"));
    }
    Ok(())
}

#[cfg(any(test, feature = "fuzzing"))]
/// Most events one PDU can announce (numEvents is one byte).
pub const MAX_INPUT_EVENTS: usize = 255;

#[cfg(any(test, feature = "fuzzing"))]
/// Encodes a fast-path input PDU, the inverse of [`decode_input`] (for test
/// clients): the long length form, numEvents in the header when it fits
/// four bits.
///
/// # Panics
///
/// With more than [`MAX_INPUT_EVENTS`] events, or events adding up to more
/// than the 15-bit length allows: both are mistakes of the caller.
pub fn encode_input(events: &[FastPathInputEvent], out: &mut Vec<u8>) {
    assert!(
        events.len() <= MAX_INPUT_EVENTS,
        "at most {MAX_INPUT_EVENTS} events fit one fast-path input pdu"
    );
    let count_in_header = (1..16).contains(&events.len());
    let total = 3 // fpInputHeader + two-byte length
        + usize::from(!count_in_header) // numEvents byte
        + events.iter().map(FastPathInputEvent::size).sum::<usize>();
    assert!(
        total <= MAX_PDU_LEN,
        "fast-path input pdu over the length limit"
    );
    let count_bits = if count_in_header {
        events.len() as u8
    } else {
        0
    };
    out.put_u8(ACTION_FASTPATH | count_bits << 2);
    out.put_u16(u16::from(LENGTH_TWO_BYTES) << 8 | total as u16);
    if !count_in_header {
        out.put_u8(events.len() as u8);
    }
    for event in events {
        event.encode(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::input::{KeyboardEvent, MouseEvent, SynchronizeFlags};

    fn decode(pdu: &[u8]) -> Vec<InputEvent> {
        let mut events = Vec::new();
        decode_input(pdu, &mut events).unwrap();
        events
    }

    fn key(event: KeyboardEvent) -> InputEvent {
        InputEvent::Keyboard(event)
    }

    fn mouse(event: MouseEvent) -> InputEvent {
        InputEvent::Mouse(event)
    }

    // Hand-assembled per the 2.2.8.1.2.2.x tables (MS-RDPBCGR has no
    // fast-path input dump in its examples). Header 0x04: action 0, one event.

    #[test]
    fn scancode_events() {
        // 'A' pressed: eventHeader code 0, no flags.
        assert_eq!(
            decode(&[0x04, 0x04, 0x00, 0x1E]),
            [key(KeyboardEvent::Pressed {
                code: 0x1E,
                extended: false
            })]
        );
        // Right arrow released: RELEASE | EXTENDED.
        assert_eq!(
            decode(&[0x04, 0x04, 0x03, 0x4D]),
            [key(KeyboardEvent::Released {
                code: 0x4D,
                extended: true
            })]
        );
    }

    #[test]
    fn unicode_events() {
        // eventHeader 0x80 (code 4), then U+20AC little-endian.
        assert_eq!(
            decode(&[0x04, 0x05, 0x80, 0xAC, 0x20]),
            [key(KeyboardEvent::UnicodePressed(0x20AC))]
        );
        assert_eq!(
            decode(&[0x04, 0x05, 0x81, 0xE9, 0x00]),
            [key(KeyboardEvent::UnicodeReleased(0xE9))]
        );
    }

    #[test]
    fn sync_event() {
        // eventHeader 0x60 | NUM_LOCK 0x02 | CAPS_LOCK 0x04.
        assert_eq!(
            decode(&[0x04, 0x03, 0x66]),
            [key(KeyboardEvent::Synchronize(
                SynchronizeFlags::NUM_LOCK | SynchronizeFlags::CAPS_LOCK
            ))]
        );
        assert_eq!(
            decode(&[0x04, 0x03, 0x69]),
            [key(KeyboardEvent::Synchronize(
                SynchronizeFlags::SCROLL_LOCK | SynchronizeFlags::KANA_LOCK
            ))]
        );
    }

    #[test]
    fn mouse_events() {
        // PTRFLAGS_MOVE to (256, 128).
        assert_eq!(
            decode(&[0x04, 0x09, 0x20, 0x00, 0x08, 0x00, 0x01, 0x80, 0x00]),
            [mouse(MouseEvent::Move { x: 256, y: 128 })]
        );
        // PTRFLAGS_DOWN | BUTTON1 at (5, 6): the position first.
        assert_eq!(
            decode(&[0x04, 0x09, 0x20, 0x00, 0x90, 0x05, 0x00, 0x06, 0x00]),
            [
                mouse(MouseEvent::Move { x: 5, y: 6 }),
                mouse(MouseEvent::LeftPressed)
            ]
        );
        // PTRFLAGS_WHEEL with rotation 0x188 = -120 in 9 bits; xPos/yPos ignored.
        assert_eq!(
            decode(&[0x04, 0x09, 0x20, 0x88, 0x03, 0xFF, 0xFF, 0xFF, 0xFF]),
            [mouse(MouseEvent::VerticalScroll { value: -120 })]
        );
    }

    #[test]
    fn extended_mouse_event() {
        // eventHeader 0x40, PTRXFLAGS_DOWN | BUTTON2 at (7, 8).
        assert_eq!(
            decode(&[0x04, 0x09, 0x40, 0x02, 0x80, 0x07, 0x00, 0x08, 0x00]),
            [
                mouse(MouseEvent::Move { x: 7, y: 8 }),
                mouse(MouseEvent::Button5Pressed)
            ]
        );
    }

    #[test]
    fn relative_mouse_event() {
        // eventHeader 0xA0, PTRFLAGS_MOVE, dx -2, dy 3.
        assert_eq!(
            decode(&[0x04, 0x09, 0xA0, 0x00, 0x08, 0xFE, 0xFF, 0x03, 0x00]),
            [mouse(MouseEvent::RelMove { x: -2, y: 3 })]
        );
    }

    #[test]
    fn qoe_timestamp_yields_no_event() {
        assert_eq!(decode(&[0x04, 0x07, 0xC0, 0x10, 0x27, 0x00, 0x00]), []);
    }

    #[test]
    fn event_count_in_its_own_byte_and_long_length() {
        // numEvents 0 in the header, 2 in the byte after a two-byte length.
        let pdu = [0x00, 0x80, 0x08, 0x02, 0x00, 0x1E, 0x01, 0x1E];
        assert_eq!(
            decode(&pdu),
            [
                key(KeyboardEvent::Pressed {
                    code: 0x1E,
                    extended: false
                }),
                key(KeyboardEvent::Released {
                    code: 0x1E,
                    extended: false
                })
            ]
        );
    }

    #[test]
    fn input_round_trips() {
        let events = [
            FastPathInputEvent::Scancode {
                flags: FASTPATH_INPUT_KBDFLAGS_RELEASE | FASTPATH_INPUT_KBDFLAGS_EXTENDED,
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
            FastPathInputEvent::QoeTimestamp { timestamp: 42 },
        ];
        let mut pdu = Vec::new();
        encode_input(&events, &mut pdu);
        assert_eq!(
            pdu.len(),
            3 + events.iter().map(|e| e.size()).sum::<usize>()
        );
        // The raw events come back unchanged.
        let (_, body, _) = split_pdu(&pdu, "test").unwrap();
        let mut cursor = ReadCursor::new(body, "test");
        for event in &events {
            assert_eq!(FastPathInputEvent::decode(&mut cursor).unwrap(), *event);
        }
        assert!(cursor.is_empty());
        assert_eq!(
            decode(&pdu),
            [
                key(KeyboardEvent::Released {
                    code: 0x48,
                    extended: true
                }),
                mouse(MouseEvent::Move { x: 5, y: 6 }),
                mouse(MouseEvent::LeftPressed),
                key(KeyboardEvent::UnicodePressed(0xE9)),
                key(KeyboardEvent::Synchronize(SynchronizeFlags::NUM_LOCK)),
                mouse(MouseEvent::Move { x: 1, y: 1 }),
                mouse(MouseEvent::Button4Released),
                mouse(MouseEvent::RelMove { x: -5, y: 7 }),
            ]
        );
    }

    #[test]
    fn event_counts_beyond_fifteen_and_zero_use_the_count_byte() {
        for count in [0, 15, 16, 20, MAX_INPUT_EVENTS] {
            let events = vec![FastPathInputEvent::Sync { flags: 0 }; count];
            let mut pdu = Vec::new();
            encode_input(&events, &mut pdu);
            assert_eq!(pdu[0] >> 2 == 0, count == 0 || count > 15);
            assert_eq!(decode(&pdu).len(), count);
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        let bad: &[(&str, &[u8])] = &[
            ("empty", &[]),
            ("no length", &[0x04]),
            ("one event announced, none present", &[0x04, 0x02]),
            ("length past the end", &[0x04, 0x09, 0x20, 0x00]),
            ("length shorter than the pdu", &[0x04, 0x03, 0x00, 0x1E]),
            ("length shorter than its header", &[0x04, 0x80, 0x02]),
            ("numEvents byte missing", &[0x00, 0x02]),
            ("encrypted", &[0x84, 0x04, 0x00, 0x1E]),
            ("secure checksum", &[0x44, 0x04, 0x00, 0x1E]),
            ("slow-path action", &[0x05, 0x04, 0x00, 0x1E]),
            ("unknown event code 7", &[0x04, 0x03, 0xE0]),
            (
                "bytes after the last event",
                &[0x04, 0x05, 0x00, 0x1E, 0x00],
            ),
            ("truncated mouse event", &[0x04, 0x05, 0x20, 0x00, 0x08]),
            ("truncated unicode event", &[0x04, 0x04, 0x80, 0x41]),
            ("truncated timestamp", &[0x04, 0x05, 0xC0, 0x00, 0x00]),
        ];
        for (what, pdu) in bad {
            assert!(decode_input(pdu, &mut Vec::new()).is_err(), "{what}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        // Every prefix and a walk of single-byte corruptions of a valid PDU.
        let mut pdu = Vec::new();
        encode_input(
            &[
                FastPathInputEvent::Mouse {
                    flags: 0x0800,
                    x: 1,
                    y: 2,
                },
                FastPathInputEvent::Unicode { flags: 1, code: 3 },
            ],
            &mut pdu,
        );
        for len in 0..pdu.len() {
            let _ = decode_input(&pdu[..len], &mut Vec::new());
        }
        for index in 0..pdu.len() {
            for value in [0x00, 0x7F, 0x80, 0xFF] {
                let mut corrupt = pdu.clone();
                corrupt[index] = value;
                let _ = decode_input(&corrupt, &mut Vec::new());
                let _ = crate::graphics::fastpath::decode_output(&corrupt);
            }
        }
    }
}
