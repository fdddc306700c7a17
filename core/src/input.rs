//! Input as the application sees it, built from the flag words that
//! slow-path (MS-RDPBCGR 2.2.8.1.1.3.1.1) and fast-path (2.2.8.1.2.2) input
//! events share.

use bitflags::bitflags;

bitflags! {
    /// Lock key states of a synchronize event (TS_SYNC_EVENT toggleFlags).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct SynchronizeFlags: u32 {
        const SCROLL_LOCK = 0x1;
        const NUM_LOCK = 0x2;
        const CAPS_LOCK = 0x4;
        const KANA_LOCK = 0x8;
    }
}

/// A keyboard event. `code` is a set-1 scancode; `extended` is the E0 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyboardEvent {
    Pressed { code: u8, extended: bool },
    Released { code: u8, extended: bool },
    UnicodePressed(u16),
    UnicodeReleased(u16),
    Synchronize(SynchronizeFlags),
}

/// A mouse event. Button events follow the `Move` to the click position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MouseEvent {
    Move {
        x: u16,
        y: u16,
    },
    LeftPressed,
    LeftReleased,
    RightPressed,
    RightReleased,
    MiddlePressed,
    MiddleReleased,
    /// The "back" button (X1).
    Button4Pressed,
    Button4Released,
    /// The "forward" button (X2).
    Button5Pressed,
    Button5Released,
    /// Positive away from the user, in units of 1/120 of a notch.
    VerticalScroll {
        value: i16,
    },
    /// Positive to the right.
    HorizontalScroll {
        value: i16,
    },
    /// Relative motion (only when the client negotiated relative mouse input).
    RelMove {
        x: i32,
        y: i32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputEvent {
    Keyboard(KeyboardEvent),
    Mouse(MouseEvent),
}

// Slow-path keyboard flags (TS_KEYBOARD_EVENT).
pub const KBDFLAGS_EXTENDED: u16 = 0x0100;
pub const KBDFLAGS_EXTENDED1: u16 = 0x0200;
pub const KBDFLAGS_RELEASE: u16 = 0x8000;

// Pointer flags (TS_POINTER_EVENT).
const PTRFLAGS_HWHEEL: u16 = 0x0400;
const PTRFLAGS_WHEEL: u16 = 0x0200;
const PTRFLAGS_WHEEL_NEGATIVE: u16 = 0x0100;
const WHEEL_ROTATION_MASK: u16 = 0x01FF;
const PTRFLAGS_MOVE: u16 = 0x0800;
const PTRFLAGS_DOWN: u16 = 0x8000;
const PTRFLAGS_BUTTON1: u16 = 0x1000;
const PTRFLAGS_BUTTON2: u16 = 0x2000;
const PTRFLAGS_BUTTON3: u16 = 0x4000;
// Extended pointer flags (TS_POINTERX_EVENT).
const PTRXFLAGS_DOWN: u16 = 0x8000;
const PTRXFLAGS_BUTTON1: u16 = 0x0001;
const PTRXFLAGS_BUTTON2: u16 = 0x0002;

/// Flag bit, pressed and released events of the three classic buttons.
const BUTTONS: [(u16, MouseEvent, MouseEvent); 3] = [
    (
        PTRFLAGS_BUTTON1,
        MouseEvent::LeftPressed,
        MouseEvent::LeftReleased,
    ),
    (
        PTRFLAGS_BUTTON2,
        MouseEvent::RightPressed,
        MouseEvent::RightReleased,
    ),
    (
        PTRFLAGS_BUTTON3,
        MouseEvent::MiddlePressed,
        MouseEvent::MiddleReleased,
    ),
];

/// The same for buttons 4 and 5 (PTRXFLAGS_BUTTON1/2).
const EXTENDED_BUTTONS: [(u16, MouseEvent, MouseEvent); 2] = [
    (
        PTRXFLAGS_BUTTON1,
        MouseEvent::Button4Pressed,
        MouseEvent::Button4Released,
    ),
    (
        PTRXFLAGS_BUTTON2,
        MouseEvent::Button5Pressed,
        MouseEvent::Button5Released,
    ),
];

/// Appends a press or release (by PTRFLAGS_DOWN) for every button bit set.
fn push_buttons(flags: u16, buttons: &[(u16, MouseEvent, MouseEvent)], out: &mut Vec<InputEvent>) {
    let down = flags & PTRFLAGS_DOWN != 0;
    for &(bit, pressed, released) in buttons {
        if flags & bit != 0 {
            out.push(InputEvent::Mouse(if down { pressed } else { released }));
        }
    }
}

/// A scancode event from slow-path keyboard flags.
pub fn keyboard_event_from_scancode(flags: u16, code: u16) -> InputEvent {
    // Scancodes are 8 bits; the high byte of the wire field is unused.
    let code = (code & 0xFF) as u8;
    let extended = flags & KBDFLAGS_EXTENDED != 0;
    InputEvent::Keyboard(if flags & KBDFLAGS_RELEASE != 0 {
        KeyboardEvent::Released { code, extended }
    } else {
        KeyboardEvent::Pressed { code, extended }
    })
}

/// A Unicode key event from slow-path keyboard flags.
pub fn unicode_event(flags: u16, code: u16) -> InputEvent {
    InputEvent::Keyboard(if flags & KBDFLAGS_RELEASE != 0 {
        KeyboardEvent::UnicodeReleased(code)
    } else {
        KeyboardEvent::UnicodePressed(code)
    })
}

pub fn synchronize_event(toggle_flags: u32) -> InputEvent {
    InputEvent::Keyboard(KeyboardEvent::Synchronize(
        SynchronizeFlags::from_bits_truncate(toggle_flags),
    ))
}

/// The signed 9-bit wheel rotation of a pointer flag word.
fn wheel_rotation(flags: u16) -> i16 {
    let magnitude = (flags & WHEEL_ROTATION_MASK) as i16;
    if flags & PTRFLAGS_WHEEL_NEGATIVE != 0 {
        magnitude - 0x200
    } else {
        magnitude
    }
}

/// Events of a TS_POINTER_EVENT (or its fast-path twin).
pub fn mouse_events_from_pointer(flags: u16, x: u16, y: u16, out: &mut Vec<InputEvent>) {
    let mut push = |event| out.push(InputEvent::Mouse(event));
    if flags & PTRFLAGS_WHEEL != 0 {
        push(MouseEvent::VerticalScroll {
            value: wheel_rotation(flags),
        });
        return;
    }
    if flags & PTRFLAGS_HWHEEL != 0 {
        push(MouseEvent::HorizontalScroll {
            value: wheel_rotation(flags),
        });
        return;
    }
    let buttons = flags & (PTRFLAGS_BUTTON1 | PTRFLAGS_BUTTON2 | PTRFLAGS_BUTTON3);
    // A button event carries the position too: report it as a move first.
    if flags & PTRFLAGS_MOVE != 0 || buttons != 0 {
        push(MouseEvent::Move { x, y });
    }
    push_buttons(flags, &BUTTONS, out);
}

/// Events of a TS_POINTERX_EVENT: buttons 4 and 5.
pub fn mouse_events_from_pointer_x(flags: u16, x: u16, y: u16, out: &mut Vec<InputEvent>) {
    let down = flags & PTRXFLAGS_DOWN != 0;
    let mut push = |event| out.push(InputEvent::Mouse(event));
    if flags & (PTRXFLAGS_BUTTON1 | PTRXFLAGS_BUTTON2) != 0 {
        push(MouseEvent::Move { x, y });
    }
    if flags & PTRXFLAGS_BUTTON1 != 0 {
        push(if down {
            MouseEvent::Button4Pressed
        } else {
            MouseEvent::Button4Released
        });
    }
    if flags & PTRXFLAGS_BUTTON2 != 0 {
        push(if down {
            MouseEvent::Button5Pressed
        } else {
            MouseEvent::Button5Released
        });
    }
}

/// Events of a relative mouse event (TS_POINTER_REL_EVENT): motion and buttons.
pub fn mouse_events_from_relative(flags: u16, dx: i16, dy: i16, out: &mut Vec<InputEvent>) {
    if flags & PTRFLAGS_MOVE != 0 || dx != 0 || dy != 0 {
        out.push(InputEvent::Mouse(MouseEvent::RelMove {
            x: i32::from(dx),
            y: i32::from(dy),
        }));
    }
    // Buttons use the same flag bits as absolute events, without a position;
    // the extended buttons share the low bits.
    push_buttons(flags, &BUTTONS, out);
    push_buttons(flags, &EXTENDED_BUTTONS, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pointer(flags: u16) -> Vec<InputEvent> {
        let mut out = Vec::new();
        mouse_events_from_pointer(flags, 10, 20, &mut out);
        out
    }

    #[test]
    fn wheel_rotation_is_nine_bit_twos_complement() {
        assert_eq!(
            pointer(0x0200 | 120),
            [InputEvent::Mouse(MouseEvent::VerticalScroll { value: 120 })]
        );
        // -120 is 0x188 in 9 bits.
        assert_eq!(
            pointer(0x0200 | 0x0188),
            [InputEvent::Mouse(MouseEvent::VerticalScroll {
                value: -120
            })]
        );
        assert_eq!(
            pointer(0x0400 | 0x0188),
            [InputEvent::Mouse(MouseEvent::HorizontalScroll {
                value: -120
            })]
        );
    }

    #[test]
    fn buttons_come_after_the_move() {
        assert_eq!(
            pointer(0x8000 | 0x2000),
            [
                InputEvent::Mouse(MouseEvent::Move { x: 10, y: 20 }),
                InputEvent::Mouse(MouseEvent::RightPressed)
            ]
        );
        assert_eq!(
            pointer(0x4000)[1],
            InputEvent::Mouse(MouseEvent::MiddleReleased)
        );
        assert_eq!(
            pointer(0x0800),
            [InputEvent::Mouse(MouseEvent::Move { x: 10, y: 20 })]
        );
        let mut out = Vec::new();
        mouse_events_from_pointer_x(0x8002, 1, 2, &mut out);
        assert_eq!(out[1], InputEvent::Mouse(MouseEvent::Button5Pressed));
        out.clear();
        mouse_events_from_relative(0x0800, -3, 4, &mut out);
        assert_eq!(
            out,
            [InputEvent::Mouse(MouseEvent::RelMove { x: -3, y: 4 })]
        );
    }

    #[test]
    fn keyboard_flags() {
        assert_eq!(
            keyboard_event_from_scancode(KBDFLAGS_EXTENDED | KBDFLAGS_RELEASE, 0x4B),
            InputEvent::Keyboard(KeyboardEvent::Released {
                code: 0x4B,
                extended: true
            })
        );
        assert_eq!(
            unicode_event(0, 0x20AC),
            InputEvent::Keyboard(KeyboardEvent::UnicodePressed(0x20AC))
        );
        assert_eq!(
            synchronize_event(0x6),
            InputEvent::Keyboard(KeyboardEvent::Synchronize(
                SynchronizeFlags::NUM_LOCK | SynchronizeFlags::CAPS_LOCK
            ))
        );
    }
}
