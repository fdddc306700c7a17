//! Bodies of share data PDUs: connection finalization (MS-RDPBCGR
//! 2.2.1.14-2.2.1.22), slow-path input (2.2.8.1.1.3), Suppress Output
//! (2.2.11.3), Refresh Rect (2.2.11.2), Shutdown (2.2.2.1, 2.2.2.2), Set
//! Error Info (2.2.5.1) and Frame Acknowledge (2.2.14.3).

use bytes::BufMut;

use crate::cursor::ReadCursor;
use crate::error::DecodeError;
use crate::input::{self, InputEvent};

pub const PDUTYPE2_UPDATE: u8 = 0x02;
pub const PDUTYPE2_CONTROL: u8 = 0x14;
pub const PDUTYPE2_POINTER: u8 = 0x1B;
pub const PDUTYPE2_INPUT: u8 = 0x1C;
pub const PDUTYPE2_SYNCHRONIZE: u8 = 0x1F;
pub const PDUTYPE2_REFRESH_RECT: u8 = 0x21;
pub const PDUTYPE2_SUPPRESS_OUTPUT: u8 = 0x23;
pub const PDUTYPE2_SHUTDOWN_REQUEST: u8 = 0x24;
pub const PDUTYPE2_SHUTDOWN_DENIED: u8 = 0x25;
pub const PDUTYPE2_FONTLIST: u8 = 0x27;
pub const PDUTYPE2_FONTMAP: u8 = 0x28;
pub const PDUTYPE2_BITMAPCACHE_PERSISTENT_LIST: u8 = 0x2B;
pub const PDUTYPE2_SET_ERROR_INFO_PDU: u8 = 0x2F;
pub const PDUTYPE2_FRAME_ACKNOWLEDGE: u8 = 0x38;

const SYNCMSGTYPE_SYNC: u16 = 1;
/// Slow-path input events are 12 bytes: eventTime, messageType, 6 bytes of data.
const SLOW_PATH_EVENT_LEN: usize = 12;
/// More input events than fit any sane PDU are refused.
const MAX_INPUT_EVENTS: usize = 1024;
const MAX_REFRESH_AREAS: usize = 256;
const FONTMAP_FIRST_LAST: u16 = 0x0003;

/// ErrorInfo codes of the Set Error Info PDU (MS-RDPBCGR 2.2.5.1.1).
pub mod error_info {
    pub const RPC_INITIATED_DISCONNECT: u32 = 0x0000_0001;
    pub const IDLE_TIMEOUT: u32 = 0x0000_0003;
    pub const LOGON_TIMEOUT: u32 = 0x0000_0004;
    pub const SERVER_DENIED_CONNECTION: u32 = 0x0000_0007;
    pub const LOGOFF_BY_USER: u32 = 0x0000_000C;
    /// ERRINFO_UNKNOWNPDUTYPE: a PDU the server could not decode.
    pub const BAD_PDU: u32 = 0x0000_10CA;
}

/// TS_CONTROL_PDU action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlAction {
    RequestControl = 1,
    Granted = 2,
    Detach = 3,
    Cooperate = 4,
}

/// TS_RECTANGLE16: inclusive bounds, as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rectangle16 {
    pub left: u16,
    pub top: u16,
    pub right: u16,
    pub bottom: u16,
}

impl Rectangle16 {
    fn decode(cursor: &mut ReadCursor<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            left: cursor.read_u16_le()?,
            top: cursor.read_u16_le()?,
            right: cursor.read_u16_le()?,
            bottom: cursor.read_u16_le()?,
        })
    }
}

/// A slow-path input event (TS_INPUT_EVENT) as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlowPathInputEvent {
    Synchronize {
        toggle_flags: u32,
    },
    Scancode {
        flags: u16,
        code: u16,
    },
    Unicode {
        flags: u16,
        code: u16,
    },
    Mouse {
        flags: u16,
        x: u16,
        y: u16,
    },
    MouseX {
        flags: u16,
        x: u16,
        y: u16,
    },
    MouseRelative {
        flags: u16,
        dx: i16,
        dy: i16,
    },
    /// INPUT_EVENT_UNUSED or a type from a newer spec: skipped.
    Ignored {
        message_type: u16,
    },
}

impl SlowPathInputEvent {
    /// Appends the application-level events this one stands for.
    pub fn to_input_events(self, out: &mut Vec<InputEvent>) {
        match self {
            Self::Synchronize { toggle_flags } => out.push(input::synchronize_event(toggle_flags)),
            Self::Scancode { flags, code } => {
                out.push(input::keyboard_event_from_scancode(flags, code))
            }
            Self::Unicode { flags, code } => out.push(input::unicode_event(flags, code)),
            Self::Mouse { flags, x, y } => input::mouse_events_from_pointer(flags, x, y, out),
            Self::MouseX { flags, x, y } => input::mouse_events_from_pointer_x(flags, x, y, out),
            Self::MouseRelative { flags, dx, dy } => {
                input::mouse_events_from_relative(flags, dx, dy, out)
            }
            Self::Ignored { .. } => {}
        }
    }
}

/// A share data PDU from the client, by pduType2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientDataPdu {
    Synchronize {
        target_user: u16,
    },
    Control {
        action: ControlAction,
        grant_id: u16,
        control_id: u32,
    },
    FontList,
    Input(Vec<SlowPathInputEvent>),
    SuppressOutput {
        allow_display_updates: bool,
        area: Option<Rectangle16>,
    },
    RefreshRect(Vec<Rectangle16>),
    ShutdownRequest,
    PersistentKeyList,
    FrameAcknowledge {
        frame_id: u32,
    },
    Unknown {
        pdu_type2: u8,
    },
}

impl ClientDataPdu {
    pub fn decode(pdu_type2: u8, body: &[u8]) -> Result<Self, DecodeError> {
        let mut cursor = ReadCursor::new(body, "share data pdu");
        Ok(match pdu_type2 {
            PDUTYPE2_SYNCHRONIZE => {
                if cursor.read_u16_le()? != SYNCMSGTYPE_SYNC {
                    return Err(cursor.invalid("messageType", "not SYNCMSGTYPE_SYNC"));
                }
                Self::Synchronize {
                    target_user: cursor.read_u16_le()?,
                }
            }
            PDUTYPE2_CONTROL => {
                let action = match cursor.read_u16_le()? {
                    1 => ControlAction::RequestControl,
                    2 => ControlAction::Granted,
                    3 => ControlAction::Detach,
                    4 => ControlAction::Cooperate,
                    _ => return Err(cursor.invalid("action", "unknown control action")),
                };
                Self::Control {
                    action,
                    grant_id: cursor.read_u16_le()?,
                    control_id: cursor.read_u32_le()?,
                }
            }
            PDUTYPE2_FONTLIST => {
                cursor.ensure(8)?;
                Self::FontList
            }
            PDUTYPE2_INPUT => {
                let count = usize::from(cursor.read_u16_le()?);
                cursor.skip(2)?;
                if count > MAX_INPUT_EVENTS {
                    return Err(DecodeError::TooLarge {
                        context: "input pdu",
                        size: count,
                        limit: MAX_INPUT_EVENTS,
                    });
                }
                cursor.ensure(count * SLOW_PATH_EVENT_LEN)?;
                let mut events = Vec::with_capacity(count);
                for _ in 0..count {
                    events.push(decode_slow_path_event(&mut cursor)?);
                }
                Self::Input(events)
            }
            PDUTYPE2_SUPPRESS_OUTPUT => {
                let allow_display_updates = cursor.read_u8()? != 0;
                cursor.skip(3)?;
                let area = if allow_display_updates && !cursor.is_empty() {
                    Some(Rectangle16::decode(&mut cursor)?)
                } else {
                    None
                };
                Self::SuppressOutput {
                    allow_display_updates,
                    area,
                }
            }
            PDUTYPE2_REFRESH_RECT => {
                let count = usize::from(cursor.read_u8()?);
                cursor.skip(3)?;
                if count > MAX_REFRESH_AREAS {
                    return Err(cursor.invalid("numberOfAreas", "too many"));
                }
                cursor.ensure(count * 8)?;
                let areas = (0..count)
                    .map(|_| Rectangle16::decode(&mut cursor))
                    .collect::<Result<_, _>>()?;
                Self::RefreshRect(areas)
            }
            PDUTYPE2_SHUTDOWN_REQUEST => Self::ShutdownRequest,
            PDUTYPE2_BITMAPCACHE_PERSISTENT_LIST => Self::PersistentKeyList,
            PDUTYPE2_FRAME_ACKNOWLEDGE => Self::FrameAcknowledge {
                frame_id: cursor.read_u32_le()?,
            },
            other => Self::Unknown { pdu_type2: other },
        })
    }
}

fn decode_slow_path_event(cursor: &mut ReadCursor<'_>) -> Result<SlowPathInputEvent, DecodeError> {
    let _event_time = cursor.read_u32_le()?;
    let message_type = cursor.read_u16_le()?;
    let a = cursor.read_u16_le()?;
    let b = cursor.read_u16_le()?;
    let c = cursor.read_u16_le()?;
    Ok(match message_type {
        0x0000 => SlowPathInputEvent::Synchronize {
            toggle_flags: u32::from(b) | (u32::from(c) << 16),
        },
        0x0004 => SlowPathInputEvent::Scancode { flags: a, code: b },
        0x0005 => SlowPathInputEvent::Unicode { flags: a, code: b },
        0x8001 => SlowPathInputEvent::Mouse {
            flags: a,
            x: b,
            y: c,
        },
        0x8002 => SlowPathInputEvent::MouseX {
            flags: a,
            x: b,
            y: c,
        },
        0x8004 => SlowPathInputEvent::MouseRelative {
            flags: a,
            dx: b as i16,
            dy: c as i16,
        },
        other => SlowPathInputEvent::Ignored {
            message_type: other,
        },
    })
}

pub fn encode_synchronize(out: &mut Vec<u8>, target_user: u16) {
    out.put_u16_le(SYNCMSGTYPE_SYNC);
    out.put_u16_le(target_user);
}

pub fn encode_control(out: &mut Vec<u8>, action: ControlAction, grant_id: u16, control_id: u32) {
    out.put_u16_le(action as u16);
    out.put_u16_le(grant_id);
    out.put_u32_le(control_id);
}

/// Font Map PDU: no entries, first and last.
pub fn encode_font_map(out: &mut Vec<u8>) {
    out.put_u16_le(0);
    out.put_u16_le(0);
    out.put_u16_le(FONTMAP_FIRST_LAST);
    out.put_u16_le(4);
}

/// Font List PDU (for test clients).
pub fn encode_font_list(out: &mut Vec<u8>) {
    out.put_u16_le(0);
    out.put_u16_le(0);
    out.put_u16_le(FONTMAP_FIRST_LAST);
    out.put_u16_le(0x32);
}

pub fn encode_set_error_info(out: &mut Vec<u8>, code: u32) {
    out.put_u32_le(code);
}

/// Slow-path Input PDU body from raw (messageType, 6 data bytes) events (for test clients).
pub fn encode_input(out: &mut Vec<u8>, events: &[(u16, [u16; 3])]) {
    out.put_u16_le(events.len() as u16);
    out.put_u16_le(0);
    for (message_type, data) in events {
        out.put_u32_le(0);
        out.put_u16_le(*message_type);
        for word in data {
            out.put_u16_le(*word);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{KeyboardEvent, MouseEvent};

    #[test]
    fn finalization_pdus() {
        // MS-RDPBCGR 4.1.16-4.1.18 bodies.
        assert_eq!(
            ClientDataPdu::decode(PDUTYPE2_SYNCHRONIZE, &[0x01, 0x00, 0xea, 0x03]).unwrap(),
            ClientDataPdu::Synchronize { target_user: 0x3ea }
        );
        assert_eq!(
            ClientDataPdu::decode(PDUTYPE2_CONTROL, &[0x04, 0, 0, 0, 0, 0, 0, 0]).unwrap(),
            ClientDataPdu::Control {
                action: ControlAction::Cooperate,
                grant_id: 0,
                control_id: 0
            }
        );
        let mut font_list = Vec::new();
        encode_font_list(&mut font_list);
        assert_eq!(
            ClientDataPdu::decode(PDUTYPE2_FONTLIST, &font_list).unwrap(),
            ClientDataPdu::FontList
        );
        let mut control = Vec::new();
        encode_control(&mut control, ControlAction::Granted, 1007, 0x3ea);
        assert_eq!(control, [0x02, 0x00, 0xef, 0x03, 0xea, 0x03, 0x00, 0x00]);
    }

    #[test]
    fn slow_path_input_maps_to_events() {
        let mut body = Vec::new();
        encode_input(
            &mut body,
            &[
                (0x0004, [0x0000, 0x001E, 0]), // 'a' down
                (0x0004, [0x8000, 0x001E, 0]), // 'a' up
                (0x8001, [0x9000, 100, 200]),  // left button down at (100, 200)
            ],
        );
        let ClientDataPdu::Input(raw) = ClientDataPdu::decode(PDUTYPE2_INPUT, &body).unwrap()
        else {
            panic!("not input");
        };
        let mut events = Vec::new();
        for event in raw {
            event.to_input_events(&mut events);
        }
        assert_eq!(
            events,
            [
                InputEvent::Keyboard(KeyboardEvent::Pressed {
                    code: 0x1E,
                    extended: false
                }),
                InputEvent::Keyboard(KeyboardEvent::Released {
                    code: 0x1E,
                    extended: false
                }),
                InputEvent::Mouse(MouseEvent::Move { x: 100, y: 200 }),
                InputEvent::Mouse(MouseEvent::LeftPressed),
            ]
        );
    }

    #[test]
    fn suppress_output_and_refresh_rect() {
        assert_eq!(
            ClientDataPdu::decode(PDUTYPE2_SUPPRESS_OUTPUT, &[0, 0, 0, 0]).unwrap(),
            ClientDataPdu::SuppressOutput {
                allow_display_updates: false,
                area: None
            }
        );
        let body = [1, 0, 0, 0, 0, 0, 0, 0, 0x1f, 0x03, 0x57, 0x02];
        assert_eq!(
            ClientDataPdu::decode(PDUTYPE2_SUPPRESS_OUTPUT, &body).unwrap(),
            ClientDataPdu::SuppressOutput {
                allow_display_updates: true,
                area: Some(Rectangle16 {
                    left: 0,
                    top: 0,
                    right: 799,
                    bottom: 599
                })
            }
        );
        let refresh = [1, 0, 0, 0, 10, 0, 20, 0, 30, 0, 40, 0];
        assert_eq!(
            ClientDataPdu::decode(PDUTYPE2_REFRESH_RECT, &refresh).unwrap(),
            ClientDataPdu::RefreshRect(vec![Rectangle16 {
                left: 10,
                top: 20,
                right: 30,
                bottom: 40
            }])
        );
    }

    #[test]
    fn bad_bodies_are_errors() {
        // Event count past the end of the PDU.
        assert!(ClientDataPdu::decode(PDUTYPE2_INPUT, &[5, 0, 0, 0, 0, 0]).is_err());
        assert!(matches!(
            ClientDataPdu::decode(PDUTYPE2_INPUT, &[0xFF, 0xFF, 0, 0]),
            Err(DecodeError::TooLarge { .. })
        ));
        assert!(
            ClientDataPdu::decode(PDUTYPE2_REFRESH_RECT, &[2, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])
                .is_err()
        );
        assert!(ClientDataPdu::decode(PDUTYPE2_CONTROL, &[9, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(ClientDataPdu::decode(PDUTYPE2_SYNCHRONIZE, &[2, 0, 0, 0]).is_err());
        assert!(ClientDataPdu::decode(PDUTYPE2_FONTLIST, &[0; 4]).is_err());
        assert_eq!(
            ClientDataPdu::decode(0x77, &[]).unwrap(),
            ClientDataPdu::Unknown { pdu_type2: 0x77 }
        );
    }
}
