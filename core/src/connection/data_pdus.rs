//! Bodies of share data PDUs: connection finalization (MS-RDPBCGR
//! 2.2.1.14-2.2.1.22), slow-path input (2.2.8.1.1.3), Suppress Output
//! (2.2.11.3), Refresh Rect (2.2.11.2), Shutdown (2.2.2.1, 2.2.2.2), Set
//! Error Info (2.2.5.1) and Frame Acknowledge (2.2.14.3).

use bytes::BufMut;

use crate::api::input::{self, InputEvent};
use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;

// pduType2 values of the share data header (MS-RDPBCGR 2.2.8.1.1.1.2).
pub const PDUTYPE2_CONTROL: u8 = 0x14;
pub const PDUTYPE2_INPUT: u8 = 0x1C;
pub const PDUTYPE2_SYNCHRONIZE: u8 = 0x1F;
pub const PDUTYPE2_REFRESH_RECT: u8 = 0x21;
pub const PDUTYPE2_SUPPRESS_OUTPUT: u8 = 0x23;
pub const PDUTYPE2_SHUTDOWN_REQUEST: u8 = 0x24;
pub const PDUTYPE2_FONTLIST: u8 = 0x27;
pub const PDUTYPE2_FONTMAP: u8 = 0x28;
pub const PDUTYPE2_BITMAPCACHE_PERSISTENT_LIST: u8 = 0x2B;
pub const PDUTYPE2_SET_ERROR_INFO_PDU: u8 = 0x2F;
pub const PDUTYPE2_FRAME_ACKNOWLEDGE: u8 = 0x38;

// messageType of slow-path input events (TS_INPUT_EVENT).
const INPUT_EVENT_SYNC: u16 = 0x0000;
const INPUT_EVENT_SCANCODE: u16 = 0x0004;
const INPUT_EVENT_UNICODE: u16 = 0x0005;
const INPUT_EVENT_MOUSE: u16 = 0x8001;
const INPUT_EVENT_MOUSEX: u16 = 0x8002;
const INPUT_EVENT_MOUSEREL: u16 = 0x8004;
/// allowDisplayUpdates of the Suppress Output PDU.
const SUPPRESS_DISPLAY_UPDATES: u8 = 0x00;
const ALLOW_DISPLAY_UPDATES: u8 = 0x01;

const SYNCMSGTYPE_SYNC: u16 = 1;
/// Slow-path input events are 12 bytes: eventTime, messageType, 6 bytes of data.
const SLOW_PATH_EVENT_LEN: usize = 12;
/// More input events than fit any sane PDU are refused.
const MAX_INPUT_EVENTS: usize = 1024;
const FONTMAP_FIRST_LAST: u16 = 0x0003;

/// ErrorInfo codes of the Set Error Info PDU (MS-RDPBCGR 2.2.5.1.1).
pub mod error_info {
    /// An administrative tool disconnected the session.
    pub const RPC_INITIATED_DISCONNECT: u32 = 0x0000_0001;
    pub const IDLE_TIMEOUT: u32 = 0x0000_0003;
    pub const SERVER_DENIED_CONNECTION: u32 = 0x0000_0007;
    #[cfg(test)]
    pub const LOGOFF_BY_USER: u32 = 0x0000_000C;
    /// ERRINFO_UNKNOWNPDUTYPE: a PDU the server could not decode.
    pub const BAD_PDU: u32 = 0x0000_10CA;
}

/// [TS_CONTROL_PDU](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/0448f397-aa11-455d-81b1-f1265085239d) action.
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

/// A slow-path input event (TS_INPUT_EVENT, MS-RDPBCGR 2.2.8.1.1.3.1.1) as
/// on the wire; [`SlowPathInputEvent::to_input_events`] maps it to
/// [`InputEvent`]s.
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
    /// INPUT_EVENT_UNUSED: skipped.
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

/// The body of a share data PDU from the client, by pduType2: Synchronize
/// (2.2.1.14), Control (2.2.1.15, 2.2.1.16), Persistent Key List (2.2.1.17),
/// Font List (2.2.1.18), Input (2.2.8.1.1.3), Refresh Rect (2.2.11.2),
/// Suppress Output (2.2.11.3), Shutdown Request (2.2.2.1) and Frame
/// Acknowledge (2.2.14.3). Other types decode as `Unknown` for the caller
/// to ignore or refuse.
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
    /// `body` is what follows the share data header.
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
                let allow_display_updates = match cursor.read_u8()? {
                    SUPPRESS_DISPLAY_UPDATES => false,
                    ALLOW_DISPLAY_UPDATES => true,
                    _ => return Err(cursor.invalid("allowDisplayUpdates", "not 0 or 1")),
                };
                cursor.skip(3)?;
                // desktopRect comes with ALLOW_DISPLAY_UPDATES; it is read
                // when present rather than required, as the server redraws
                // everything on resume anyway.
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
                // numberOfAreas is one byte: at most 255 areas.
                let count = usize::from(cursor.read_u8()?);
                cursor.skip(3)?;
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
        // pad2Octets, then toggleFlags.
        INPUT_EVENT_SYNC => SlowPathInputEvent::Synchronize {
            toggle_flags: u32::from(b) | (u32::from(c) << 16),
        },
        INPUT_EVENT_SCANCODE => SlowPathInputEvent::Scancode { flags: a, code: b },
        INPUT_EVENT_UNICODE => SlowPathInputEvent::Unicode { flags: a, code: b },
        INPUT_EVENT_MOUSE => SlowPathInputEvent::Mouse {
            flags: a,
            x: b,
            y: c,
        },
        INPUT_EVENT_MOUSEX => SlowPathInputEvent::MouseX {
            flags: a,
            x: b,
            y: c,
        },
        INPUT_EVENT_MOUSEREL => SlowPathInputEvent::MouseRelative {
            flags: a,
            dx: b as i16,
            dy: c as i16,
        },
        // Every TS_INPUT_EVENT is 12 bytes, so an event type from a newer
        // spec can be skipped without losing the ones after it.
        other => SlowPathInputEvent::Ignored {
            message_type: other,
        },
    })
}

/// Synchronize PDU body (2.2.1.19.1): the server sends the user channel id.
pub fn encode_synchronize(out: &mut Vec<u8>, target_user: u16) {
    out.put_u16_le(SYNCMSGTYPE_SYNC);
    out.put_u16_le(target_user);
}

/// Control PDU body (2.2.1.20.1, 2.2.1.21.1).
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

#[cfg(any(test, feature = "fuzzing"))]
/// Font List PDU (for test clients).
pub fn encode_font_list(out: &mut Vec<u8>) {
    out.put_u16_le(0);
    out.put_u16_le(0);
    out.put_u16_le(FONTMAP_FIRST_LAST);
    out.put_u16_le(0x32);
}

/// Set Error Info PDU body (2.2.5.1): one of the [`error_info`] codes.
pub fn encode_set_error_info(out: &mut Vec<u8>, code: u32) {
    out.put_u32_le(code);
}

#[cfg(test)]
/// Shutdown Request Denied PDU body (2.2.2.2): the share data header says it all.
pub fn encode_shutdown_denied(_out: &mut Vec<u8>) {}

#[cfg(test)]
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
    use crate::api::input::{KeyboardEvent, MouseEvent};

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

    #[test]
    fn spec_synchronize_body() {
        // The body of the MS-RDPBCGR 4.1 Server Synchronize PDU dump: the
        // annotation notes targetUser is uninitialized there.
        assert_eq!(
            ClientDataPdu::decode(PDUTYPE2_SYNCHRONIZE, &[0x01, 0x00, 0x63, 0x44]).unwrap(),
            ClientDataPdu::Synchronize {
                target_user: 0x4463
            }
        );
        let mut body = Vec::new();
        encode_synchronize(&mut body, 0x4463);
        assert_eq!(body, [0x01, 0x00, 0x63, 0x44]);
    }

    #[test]
    fn server_bodies() {
        let mut body = Vec::new();
        encode_font_map(&mut body);
        // numberEntries 0, totalNumEntries 0, FONTMAP_FIRST | FONTMAP_LAST, entrySize 4.
        assert_eq!(body, [0, 0, 0, 0, 3, 0, 4, 0]);
        body.clear();
        encode_set_error_info(&mut body, error_info::LOGOFF_BY_USER);
        assert_eq!(body, [0x0C, 0, 0, 0]);
        body.clear();
        // MS-RDPBCGR 4.2.2: the Shutdown Request Denied PDU ends with its
        // share data header.
        encode_shutdown_denied(&mut body);
        assert!(body.is_empty());
        let mut control = Vec::new();
        encode_control(&mut control, ControlAction::Cooperate, 0, 0);
        assert_eq!(
            ClientDataPdu::decode(PDUTYPE2_CONTROL, &control).unwrap(),
            ClientDataPdu::Control {
                action: ControlAction::Cooperate,
                grant_id: 0,
                control_id: 0
            }
        );
    }

    #[test]
    fn every_slow_path_event_type() {
        let mut body = Vec::new();
        encode_input(
            &mut body,
            &[
                (0x0000, [0, 0x0006, 0]),
                (0x0002, [0, 0, 0]),
                (0x0005, [0x8000, 0x20AC, 0]),
                (0x8002, [0x8001, 5, 6]),
                (0x8004, [0x0800, 0xFFFD, 4]),
            ],
        );
        assert_eq!(
            ClientDataPdu::decode(PDUTYPE2_INPUT, &body).unwrap(),
            ClientDataPdu::Input(vec![
                SlowPathInputEvent::Synchronize { toggle_flags: 6 },
                SlowPathInputEvent::Ignored { message_type: 2 },
                SlowPathInputEvent::Unicode {
                    flags: 0x8000,
                    code: 0x20AC
                },
                SlowPathInputEvent::MouseX {
                    flags: 0x8001,
                    x: 5,
                    y: 6
                },
                SlowPathInputEvent::MouseRelative {
                    flags: 0x0800,
                    dx: -3,
                    dy: 4
                },
            ])
        );
    }

    #[test]
    fn other_client_pdus() {
        assert_eq!(
            ClientDataPdu::decode(PDUTYPE2_SHUTDOWN_REQUEST, &[]).unwrap(),
            ClientDataPdu::ShutdownRequest
        );
        assert_eq!(
            ClientDataPdu::decode(PDUTYPE2_FRAME_ACKNOWLEDGE, &[7, 0, 0, 0]).unwrap(),
            ClientDataPdu::FrameAcknowledge { frame_id: 7 }
        );
        assert_eq!(
            ClientDataPdu::decode(PDUTYPE2_BITMAPCACHE_PERSISTENT_LIST, &[0; 24]).unwrap(),
            ClientDataPdu::PersistentKeyList
        );
        assert_eq!(
            ClientDataPdu::decode(PDUTYPE2_REFRESH_RECT, &[0, 0, 0, 0]).unwrap(),
            ClientDataPdu::RefreshRect(Vec::new())
        );
    }

    #[test]
    fn truncated_bodies_are_errors() {
        let mut input = Vec::new();
        encode_input(
            &mut input,
            &[(0x8001, [0x0800, 1, 2]), (0x0004, [0, 0x1E, 0])],
        );
        let refresh = [1, 0, 0, 0, 10, 0, 20, 0, 30, 0, 40, 0];
        let suppress = [1, 0, 0, 0, 0, 0, 0, 0, 0x1f, 0x03, 0x57, 0x02];
        let cases: [(u8, &[u8]); 7] = [
            (PDUTYPE2_SYNCHRONIZE, &[1, 0, 0xea, 0x03]),
            (PDUTYPE2_CONTROL, &[4, 0, 0, 0, 0, 0, 0, 0]),
            (PDUTYPE2_FONTLIST, &[0, 0, 0, 0, 3, 0, 0x32, 0]),
            (PDUTYPE2_INPUT, &input),
            (PDUTYPE2_REFRESH_RECT, &refresh),
            (PDUTYPE2_FRAME_ACKNOWLEDGE, &[7, 0, 0, 0]),
            (PDUTYPE2_SUPPRESS_OUTPUT, &suppress[..4]),
        ];
        for (pdu_type2, body) in cases {
            assert!(
                ClientDataPdu::decode(pdu_type2, body).is_ok(),
                "{pdu_type2}"
            );
            for end in 0..body.len() {
                assert!(
                    ClientDataPdu::decode(pdu_type2, &body[..end]).is_err(),
                    "{pdu_type2} cut at {end}"
                );
            }
        }
        // With ALLOW_DISPLAY_UPDATES a desktopRect that is started must be whole.
        assert!(ClientDataPdu::decode(PDUTYPE2_SUPPRESS_OUTPUT, &suppress[..10]).is_err());
    }

    #[test]
    fn bad_enum_values_are_errors() {
        // allowDisplayUpdates other than 0 or 1.
        assert!(matches!(
            ClientDataPdu::decode(PDUTYPE2_SUPPRESS_OUTPUT, &[2, 0, 0, 0]),
            Err(DecodeError::InvalidField { .. })
        ));
        // An input event type the spec does not define is skipped (every
        // event is 12 bytes); the events after it still count.
        let mut body = Vec::new();
        encode_input(&mut body, &[(0x0006, [0, 0, 0]), (0x0004, [0, 0x1E, 0])]);
        assert_eq!(
            ClientDataPdu::decode(PDUTYPE2_INPUT, &body).unwrap(),
            ClientDataPdu::Input(vec![
                SlowPathInputEvent::Ignored { message_type: 6 },
                SlowPathInputEvent::Scancode {
                    flags: 0,
                    code: 0x1E
                },
            ])
        );
        // Control action 0.
        assert!(ClientDataPdu::decode(PDUTYPE2_CONTROL, &[0; 8]).is_err());
    }
}
