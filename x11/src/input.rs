//! Client input replayed on the X server through XTEST.

use std::collections::{BTreeSet, HashMap};

use rdpserve_tokio::{KeyboardEvent, MouseEvent, RdpServerInputHandler, SynchronizeFlags};
use tracing::{debug, warn};
use x11rb::connection::Connection;
use x11rb::protocol::xkb::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{self, ConnectionExt as _, Window};
use x11rb::protocol::xtest::{self, ConnectionExt as _};
use x11rb::rust_connection::RustConnection;

use crate::keymap::{KeyNames, keysym_of};
use crate::{X11Error, connect, require_extension};

// XTEST FakeInput event types (the core protocol's event codes).
const KEY_PRESS: u8 = xproto::KEY_PRESS_EVENT;
const KEY_RELEASE: u8 = xproto::KEY_RELEASE_EVENT;
const BUTTON_PRESS: u8 = xproto::BUTTON_PRESS_EVENT;
const BUTTON_RELEASE: u8 = xproto::BUTTON_RELEASE_EVENT;
const MOTION: u8 = xproto::MOTION_NOTIFY_EVENT;

/// A wheel notch in RDP's units.
const NOTCH: i32 = 120;

/// Keycodes kept for Unicode input: keycodes with no symbols, remapped to
/// the characters typed, the least recently used first. Many, because an
/// application may look a key press up after later remappings (Xlib
/// refetches a stale keymap when it next needs it, so a keycode remapped
/// twice before the application reads its events shows the second
/// character twice).
const SPARE_KEYCODES: usize = 64;

/// A keycode with no symbols of its own, lent to Unicode input.
struct Spare {
    keycode: u8,
    keysym: Option<u32>,
    typed: u64,
}

/// The input handler: one X connection shared by every viewer.
pub struct X11Input {
    connection: RustConnection,
    root: Window,
    names: KeyNames,
    /// Keycodes this handler holds down.
    pressed: BTreeSet<u8>,
    /// Spare keycodes with the keysym each carries and when it was last
    /// typed (a counter).
    spare: Vec<Spare>,
    typed: u64,
    /// Keysyms the keymap has without a modifier: keycode by keysym.
    unshifted: HashMap<u32, u8>,
    /// The keycode a held Unicode key was typed with, by UTF-16 unit.
    unicode_held: HashMap<u16, u8>,
    high_surrogate: Option<u16>,
    /// Indicator bits of Caps, Num and Scroll Lock.
    indicators: [Option<u32>; 3],
    wheel: (i32, i32),
    failed: bool,
}

impl X11Input {
    /// Opens its own connection to `display` and reads the keymap.
    pub fn open(display: &str) -> Result<Self, X11Error> {
        let (connection, screen_number) = connect(display)?;
        let root = connection.setup().roots[screen_number].root;
        require_extension(&connection, xtest::X11_EXTENSION_NAME)?;
        require_extension(&connection, xkb::X11_EXTENSION_NAME)?;
        connection.xtest_get_version(2, 2)?.reply()?;
        let xkb = connection.xkb_use_extension(1, 0)?.reply()?;
        if !xkb.supported {
            return Err(X11Error::MissingExtension("XKEYBOARD 1.0"));
        }
        let names = connection
            .xkb_get_names(
                xkb::ID::USE_CORE_KBD.into(),
                xkb::NameDetail::KEY_NAMES
                    | xkb::NameDetail::KEY_ALIASES
                    | xkb::NameDetail::INDICATOR_NAMES,
            )?
            .reply()?;
        let key_names: Vec<[u8; 4]> = names
            .value_list
            .key_names
            .unwrap_or_default()
            .iter()
            .map(|name| name.name)
            .collect();
        let aliases: Vec<([u8; 4], [u8; 4])> = names
            .value_list
            .key_aliases
            .unwrap_or_default()
            .iter()
            .map(|alias| (alias.real, alias.alias))
            .collect();
        let key_names = KeyNames::new(names.first_key, &key_names, &aliases);

        // Indicator names come for the set bits of `indicators`, in order.
        let mut indicators = [None; 3];
        let indicator_atoms = names.value_list.indicator_names.unwrap_or_default();
        let bits = (0..32).filter(|bit| names.indicators & (1 << bit) != 0);
        for (bit, atom) in bits.zip(indicator_atoms) {
            let name = connection.get_atom_name(atom)?.reply()?.name;
            let slot = match name.as_slice() {
                b"Caps Lock" => 0,
                b"Num Lock" => 1,
                b"Scroll Lock" => 2,
                _ => continue,
            };
            indicators[slot] = Some(1 << bit);
        }

        let setup = connection.setup();
        let (min, max) = (setup.min_keycode, setup.max_keycode);
        let mapping = connection
            .get_keyboard_mapping(min, max - min + 1)?
            .reply()?;
        let per = usize::from(mapping.keysyms_per_keycode.max(1));
        let mut unshifted = HashMap::new();
        for (keysyms, keycode) in mapping.keysyms.chunks(per).zip(min..=max) {
            if let Some(&keysym) = keysyms.first()
                && keysym != 0
            {
                unshifted.entry(keysym).or_insert(keycode);
            }
        }
        let mut spare: Vec<u8> = mapping
            .keysyms
            .chunks(per)
            .zip(min..=max)
            .filter(|(keysyms, _)| keysyms.iter().all(|keysym| *keysym == 0))
            .map(|(_, keycode)| keycode)
            .collect();
        // From the top: the low keycodes are the ones keyboards have.
        spare.reverse();
        spare.truncate(SPARE_KEYCODES);
        if spare.is_empty() {
            warn!("No free keycode: Unicode input will not be typed");
        }
        debug!(keys = key_names.len(), ?spare, ?indicators, "Keymap read");
        Ok(Self {
            connection,
            root,
            names: key_names,
            pressed: BTreeSet::new(),
            spare: spare
                .into_iter()
                .map(|keycode| Spare {
                    keycode,
                    keysym: None,
                    typed: 0,
                })
                .collect(),
            typed: 0,
            unshifted,
            unicode_held: HashMap::new(),
            high_surrogate: None,
            indicators,
            wheel: (0, 0),
            failed: false,
        })
    }

    fn fake(&mut self, kind: u8, detail: u8, x: i16, y: i16) -> Result<(), X11Error> {
        self.connection
            .xtest_fake_input(kind, detail, x11rb::CURRENT_TIME, self.root, x, y, 0)?;
        Ok(())
    }

    fn key(&mut self, keycode: u8, down: bool) -> Result<(), X11Error> {
        if down {
            self.pressed.insert(keycode);
        } else {
            self.pressed.remove(&keycode);
        }
        self.fake(if down { KEY_PRESS } else { KEY_RELEASE }, keycode, 0, 0)
    }

    fn button(&mut self, button: u8, down: bool) -> Result<(), X11Error> {
        let kind = if down { BUTTON_PRESS } else { BUTTON_RELEASE };
        self.fake(kind, button, 0, 0)
    }

    fn click(&mut self, button: u8) -> Result<(), X11Error> {
        self.button(button, true)?;
        self.button(button, false)
    }

    /// A keycode that types `c`: the keymap's own when it has the
    /// character without a modifier and no modifier or lock can change it
    /// (digits, space, punctuation; not letters, which Shift and Caps Lock
    /// turn), else a spare one, remapped unless it already carries it.
    fn keycode_for(&mut self, c: char) -> Result<Option<u8>, X11Error> {
        let keysym = keysym_of(c);
        let shift_held = ["LFSH", "RTSH"]
            .iter()
            .filter_map(|name| self.names.keycode(name))
            .any(|keycode| self.pressed.contains(&keycode));
        let cased = c.is_lowercase() || c.is_uppercase();
        if !cased
            && !shift_held
            && let Some(&keycode) = self.unshifted.get(&keysym)
        {
            return Ok(Some(keycode));
        }
        self.typed += 1;
        if let Some(spare) = self.spare.iter_mut().find(|s| s.keysym == Some(keysym)) {
            spare.typed = self.typed;
            return Ok(Some(spare.keycode));
        }
        let pressed = &self.pressed;
        let Some(spare) = self
            .spare
            .iter_mut()
            .filter(|spare| !pressed.contains(&spare.keycode))
            .min_by_key(|spare| spare.typed)
        else {
            return Ok(None);
        };
        spare.keysym = Some(keysym);
        spare.typed = self.typed;
        let keycode = spare.keycode;
        // The same keysym at both levels, so Shift or Caps Lock held on
        // the client cannot change the character.
        self.connection
            .change_keyboard_mapping(1, keycode, 2, &[keysym, keysym])?;
        // No wait before the press: the server handles one connection's
        // requests in order, so it has the new symbols when the press
        // comes, and an application that follows keymap changes hears of
        // this one before the press. The one gap is Xlib's: it loads an
        // application's keymap at its first key lookup and asks to hear of
        // changes only after that reply, so a remap landing in between is
        // never seen there (the key reads as NoSymbol). That window is the
        // application's own round trip; no delay on our side closes it.
        Ok(Some(keycode))
    }

    fn unicode(&mut self, unit: u16, down: bool) -> Result<(), X11Error> {
        if down {
            let c = match unit {
                0xd800..=0xdbff => {
                    self.high_surrogate = Some(unit);
                    return Ok(());
                }
                0xdc00..=0xdfff => {
                    let Some(high) = self.high_surrogate.take() else {
                        return Ok(());
                    };
                    char::decode_utf16([high, unit]).next().and_then(Result::ok)
                }
                _ => char::from_u32(u32::from(unit)),
            };
            let Some(c) = c else { return Ok(()) };
            let Some(keycode) = self.keycode_for(c)? else {
                debug!("Unicode key dropped: no spare keycode");
                return Ok(());
            };
            self.unicode_held.insert(unit, keycode);
            self.key(keycode, true)
        } else {
            match self.unicode_held.remove(&unit) {
                Some(keycode) => self.key(keycode, false),
                None => Ok(()),
            }
        }
    }

    /// Releases every key held and sets the lock keys as the client has
    /// them (its synchronize event follows focus and reconnection).
    fn synchronize(&mut self, flags: SynchronizeFlags) -> Result<(), X11Error> {
        for keycode in std::mem::take(&mut self.pressed) {
            self.fake(KEY_RELEASE, keycode, 0, 0)?;
        }
        let state = self
            .connection
            .xkb_get_indicator_state(xkb::ID::USE_CORE_KBD.into())?
            .reply()?
            .state;
        let locks = [
            (SynchronizeFlags::CAPS_LOCK, "CAPS"),
            (SynchronizeFlags::NUM_LOCK, "NMLK"),
            (SynchronizeFlags::SCROLL_LOCK, "SCLK"),
        ];
        for (index, (flag, key)) in locks.into_iter().enumerate() {
            let Some(bit) = self.indicators[index] else {
                continue;
            };
            let (wanted, on) = (flags.contains(flag), state & bit != 0);
            if wanted != on
                && let Some(keycode) = self.names.keycode(key)
            {
                debug!(key, wanted, "Lock key toggled to match the client");
                self.key(keycode, true)?;
                self.key(keycode, false)?;
            }
        }
        Ok(())
    }

    fn wheel(&mut self, value: i16, horizontal: bool) -> Result<(), X11Error> {
        // Buttons 4/5 scroll up/down, 6/7 left/right.
        let (total, towards, away) = if horizontal {
            (&mut self.wheel.1, 6, 7)
        } else {
            (&mut self.wheel.0, 5, 4)
        };
        *total += i32::from(value);
        let mut clicks = Vec::new();
        while *total >= NOTCH {
            *total -= NOTCH;
            clicks.push(away);
        }
        while *total <= -NOTCH {
            *total += NOTCH;
            clicks.push(towards);
        }
        for button in clicks {
            self.click(button)?;
        }
        Ok(())
    }

    fn keyboard_event(&mut self, event: KeyboardEvent) -> Result<(), X11Error> {
        match event {
            KeyboardEvent::Pressed { code, extended }
            | KeyboardEvent::Released { code, extended } => {
                let down = matches!(event, KeyboardEvent::Pressed { .. });
                match self.names.scancode(code, extended) {
                    Some(keycode) => self.key(keycode, down)?,
                    None => debug!(code, extended, "Scancode with no X key"),
                }
            }
            KeyboardEvent::UnicodePressed(unit) => self.unicode(unit, true)?,
            KeyboardEvent::UnicodeReleased(unit) => self.unicode(unit, false)?,
            KeyboardEvent::Synchronize(flags) => self.synchronize(flags)?,
        }
        Ok(())
    }

    fn mouse_event(&mut self, event: MouseEvent) -> Result<(), X11Error> {
        match event {
            MouseEvent::Move { x, y } => {
                let clamp = |value: u16| value.min(i16::MAX as u16) as i16;
                self.fake(MOTION, 0, clamp(x), clamp(y))?;
            }
            MouseEvent::RelMove { x, y } => {
                let clamp =
                    |value: i32| value.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
                // Detail 1: relative motion.
                self.fake(MOTION, 1, clamp(x), clamp(y))?;
            }
            MouseEvent::LeftPressed => self.button(1, true)?,
            MouseEvent::LeftReleased => self.button(1, false)?,
            MouseEvent::MiddlePressed => self.button(2, true)?,
            MouseEvent::MiddleReleased => self.button(2, false)?,
            MouseEvent::RightPressed => self.button(3, true)?,
            MouseEvent::RightReleased => self.button(3, false)?,
            // X numbers back and forward 8 and 9, after the wheels.
            MouseEvent::Button4Pressed => self.button(8, true)?,
            MouseEvent::Button4Released => self.button(8, false)?,
            MouseEvent::Button5Pressed => self.button(9, true)?,
            MouseEvent::Button5Released => self.button(9, false)?,
            MouseEvent::VerticalScroll { value } => self.wheel(value, false)?,
            MouseEvent::HorizontalScroll { value } => self.wheel(value, true)?,
        }
        Ok(())
    }

    /// Sends what the requests queued; logs the first failure only, so a
    /// lost X server does not flood the log with one line an event.
    fn finish(&mut self, result: Result<(), X11Error>) {
        let result = result.and_then(|()| Ok(self.connection.flush()?));
        match result {
            Ok(()) => self.failed = false,
            Err(error) if !self.failed => {
                self.failed = true;
                warn!(%error, "Input not delivered to the X server");
            }
            Err(_) => {}
        }
    }
}

impl RdpServerInputHandler for X11Input {
    fn keyboard(&mut self, event: KeyboardEvent) {
        let result = self.keyboard_event(event);
        self.finish(result);
    }

    fn mouse(&mut self, event: MouseEvent) {
        let result = self.mouse_event(event);
        self.finish(result);
    }
}
