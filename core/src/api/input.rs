//! Input as the application sees it, built from the flag words that
//! slow-path ([MS-RDPBCGR 2.2.8.1.1.3.1](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/ff7f06f8-0dcf-4c8d-be1f-596ae60c4396))
//! and fast-path ([2.2.8.1.2.2](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/76c4dd59-7ba0-445d-a03c-885212ab80f6))
//! input events share. The wire decoders (`data_pdus`, `fastpath`) hand
//! their flag words to the functions here, so both paths report a click, a
//! wheel turn or a key the same way.

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
pub(crate) const KBDFLAGS_EXTENDED: u16 = 0x0100;
pub(crate) const KBDFLAGS_EXTENDED1: u16 = 0x0200;
pub(crate) const KBDFLAGS_RELEASE: u16 = 0x8000;

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

/// A scancode event from slow-path keyboard flags (TS_KEYBOARD_EVENT,
/// 2.2.8.1.1.3.1.1.1; fast-path flags are mapped to these first).
///
/// KBDFLAGS_EXTENDED1 (the E1 prefix, sent only with the Pause key) has no
/// place in [`KeyboardEvent`] and is dropped: the application sees the
/// scancodes of the sequence without the prefix.
pub(crate) fn keyboard_event_from_scancode(flags: u16, code: u16) -> InputEvent {
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
pub(crate) fn unicode_event(flags: u16, code: u16) -> InputEvent {
    InputEvent::Keyboard(if flags & KBDFLAGS_RELEASE != 0 {
        KeyboardEvent::UnicodeReleased(code)
    } else {
        KeyboardEvent::UnicodePressed(code)
    })
}

/// A synchronize event; unknown lock bits are ignored.
pub(crate) fn synchronize_event(toggle_flags: u32) -> InputEvent {
    InputEvent::Keyboard(KeyboardEvent::Synchronize(
        SynchronizeFlags::from_bits_truncate(toggle_flags),
    ))
}

/// The signed 9-bit wheel rotation of a pointer flag word: WheelRotationMask
/// (0x01FF) includes PTRFLAGS_WHEEL_NEGATIVE (0x0100) as its sign bit, so a
/// negative value is the 9-bit two's complement (0x188 is -120).
fn wheel_rotation(flags: u16) -> i16 {
    let magnitude = (flags & WHEEL_ROTATION_MASK) as i16;
    if flags & PTRFLAGS_WHEEL_NEGATIVE != 0 {
        magnitude - 0x200
    } else {
        magnitude
    }
}

/// Events of a [TS_POINTER_EVENT](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/2c1ced34-340a-46cd-be6e-fc8cab7c3b17)
/// (or its fast-path twin): a wheel turn (the position is to be ignored), or
/// a move and/or button change. A button event carries the position it
/// happened at, so a `Move` to it comes first.
pub(crate) fn mouse_events_from_pointer(flags: u16, x: u16, y: u16, out: &mut Vec<InputEvent>) {
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

/// Events of a [TS_POINTERX_EVENT](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/2ef7632f-2f2a-4de7-ab58-2585cedcdf48):
/// buttons 4 and 5, after a `Move` to where they were pressed or released.
pub(crate) fn mouse_events_from_pointer_x(flags: u16, x: u16, y: u16, out: &mut Vec<InputEvent>) {
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

/// Events of a [TS_RELPOINTER_EVENT](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/9af47964-8bfc-4f43-8a15-4339a89833fa):
/// the motion (a button event also applies its delta first), then buttons.
pub(crate) fn mouse_events_from_relative(flags: u16, dx: i16, dy: i16, out: &mut Vec<InputEvent>) {
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

    fn pointer_x(flags: u16) -> Vec<InputEvent> {
        let mut out = Vec::new();
        mouse_events_from_pointer_x(flags, 10, 20, &mut out);
        out
    }

    fn relative(flags: u16, dx: i16, dy: i16) -> Vec<InputEvent> {
        let mut out = Vec::new();
        mouse_events_from_relative(flags, dx, dy, &mut out);
        out
    }

    fn mouse(events: &[MouseEvent]) -> Vec<InputEvent> {
        events.iter().copied().map(InputEvent::Mouse).collect()
    }

    const AT: MouseEvent = MouseEvent::Move { x: 10, y: 20 };

    #[test]
    fn wheel_rotation_is_nine_bit_twos_complement() {
        for (flags, value) in [
            (0x0200 | 120, 120),
            (0x0200 | 0x00FF, 255),
            // -120 is 0x188 in 9 bits, -1 is 0x1FF, -256 is 0x100.
            (0x0200 | 0x0188, -120),
            (0x0200 | 0x01FF, -1),
            (0x0200 | 0x0100, -256),
            (0x0200, 0),
        ] {
            assert_eq!(
                pointer(flags),
                mouse(&[MouseEvent::VerticalScroll { value }]),
                "{flags:#x}"
            );
        }
        assert_eq!(
            pointer(0x0400 | 0x0188),
            mouse(&[MouseEvent::HorizontalScroll { value: -120 }])
        );
        assert_eq!(
            pointer(0x0400 | 0x0078),
            mouse(&[MouseEvent::HorizontalScroll { value: 120 }])
        );
    }

    #[test]
    fn move_alone() {
        assert_eq!(pointer(0x0800), mouse(&[AT]));
        // No flags at all: nothing happened.
        assert_eq!(pointer(0), []);
    }

    #[test]
    fn every_classic_button_follows_the_move() {
        for (bit, pressed, released) in BUTTONS {
            assert_eq!(pointer(0x8000 | bit), mouse(&[AT, pressed]));
            assert_eq!(pointer(bit), mouse(&[AT, released]));
            // PTRFLAGS_MOVE with the button still yields a single move.
            assert_eq!(pointer(0x0800 | 0x8000 | bit), mouse(&[AT, pressed]));
        }
        assert_eq!(
            pointer(0x8000 | 0x1000),
            mouse(&[AT, MouseEvent::LeftPressed])
        );
        assert_eq!(pointer(0x2000), mouse(&[AT, MouseEvent::RightReleased]));
        assert_eq!(
            pointer(0x8000 | 0x4000),
            mouse(&[AT, MouseEvent::MiddlePressed])
        );
    }

    #[test]
    fn extended_buttons_follow_the_move() {
        assert_eq!(
            pointer_x(0x8000 | 0x0001),
            mouse(&[AT, MouseEvent::Button4Pressed])
        );
        assert_eq!(pointer_x(0x0001), mouse(&[AT, MouseEvent::Button4Released]));
        assert_eq!(
            pointer_x(0x8000 | 0x0002),
            mouse(&[AT, MouseEvent::Button5Pressed])
        );
        assert_eq!(pointer_x(0x0002), mouse(&[AT, MouseEvent::Button5Released]));
        // No button bit: nothing to report.
        assert_eq!(pointer_x(0x8000), []);
    }

    #[test]
    fn relative_motion_and_buttons() {
        assert_eq!(
            relative(0x0800, -3, 4),
            mouse(&[MouseEvent::RelMove { x: -3, y: 4 }])
        );
        assert_eq!(
            relative(0x0800, i16::MIN, i16::MAX),
            mouse(&[MouseEvent::RelMove {
                x: -32768,
                y: 32767
            }])
        );
        // A press without motion.
        assert_eq!(
            relative(0x8000 | 0x1000, 0, 0),
            mouse(&[MouseEvent::LeftPressed])
        );
        // A press after a delta: the delta first.
        assert_eq!(
            relative(0x8000 | 0x0002, 1, 0),
            mouse(&[
                MouseEvent::RelMove { x: 1, y: 0 },
                MouseEvent::Button5Pressed
            ])
        );
        assert_eq!(relative(0x4000, 0, 0), mouse(&[MouseEvent::MiddleReleased]));
    }

    #[test]
    fn scancodes() {
        assert_eq!(
            keyboard_event_from_scancode(0, 0x1E),
            InputEvent::Keyboard(KeyboardEvent::Pressed {
                code: 0x1E,
                extended: false
            })
        );
        assert_eq!(
            keyboard_event_from_scancode(KBDFLAGS_RELEASE, 0x1E),
            InputEvent::Keyboard(KeyboardEvent::Released {
                code: 0x1E,
                extended: false
            })
        );
        assert_eq!(
            keyboard_event_from_scancode(KBDFLAGS_EXTENDED | KBDFLAGS_RELEASE, 0x4B),
            InputEvent::Keyboard(KeyboardEvent::Released {
                code: 0x4B,
                extended: true
            })
        );
        // The E1 prefix is dropped; the unused high byte of keyCode too.
        assert_eq!(
            keyboard_event_from_scancode(KBDFLAGS_EXTENDED1, 0x011D),
            InputEvent::Keyboard(KeyboardEvent::Pressed {
                code: 0x1D,
                extended: false
            })
        );
    }

    #[test]
    fn unicode_keys() {
        assert_eq!(
            unicode_event(0, 0x20AC),
            InputEvent::Keyboard(KeyboardEvent::UnicodePressed(0x20AC))
        );
        assert_eq!(
            unicode_event(KBDFLAGS_RELEASE, 0x20AC),
            InputEvent::Keyboard(KeyboardEvent::UnicodeReleased(0x20AC))
        );
    }

    #[test]
    fn synchronize() {
        assert_eq!(
            synchronize_event(0x6),
            InputEvent::Keyboard(KeyboardEvent::Synchronize(
                SynchronizeFlags::NUM_LOCK | SynchronizeFlags::CAPS_LOCK
            ))
        );
        // Bits beyond the four lock keys are ignored.
        assert_eq!(
            synchronize_event(0xFFFF_FFF9),
            InputEvent::Keyboard(KeyboardEvent::Synchronize(
                SynchronizeFlags::SCROLL_LOCK | SynchronizeFlags::KANA_LOCK
            ))
        );
    }
}
