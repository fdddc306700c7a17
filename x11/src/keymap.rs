//! RDP scancodes to X keycodes through the server's XKB key names.
//!
//! A scancode names a key by its place on the keyboard, and so does an XKB
//! key name (`<AD01>` is the key right of Tab, whatever it prints). The
//! table here pairs the two, which is fixed by the hardware; which keycode
//! carries each name is the X server's choice (evdev, kbd, a remote
//! server's own), so it is read from the server's keymap at start.

use std::collections::HashMap;

/// The XKB key name of set-1 scancode `code` (with the E0 prefix when
/// `extended`), for the keys of PC keyboards.
pub(crate) fn key_name(code: u8, extended: bool) -> Option<&'static str> {
    Some(if extended {
        match code {
            0x1c => "KPEN",
            0x1d => "RCTL",
            0x35 => "KPDV",
            0x37 => "PRSC",
            0x38 => "RALT",
            0x46 => "PAUS",
            0x47 => "HOME",
            0x48 => "UP",
            0x49 => "PGUP",
            0x4b => "LEFT",
            0x4d => "RGHT",
            0x4f => "END",
            0x50 => "DOWN",
            0x51 => "PGDN",
            0x52 => "INS",
            0x53 => "DELE",
            0x5b => "LWIN",
            0x5c => "RWIN",
            0x5d => "COMP",
            0x5e => "POWR",
            0x5f => "I150", // Sleep
            0x20 => "MUTE",
            0x2e => "VOL-",
            0x30 => "VOL+",
            _ => return None,
        }
    } else {
        const MAIN: [&str; 0x59] = [
            "", "ESC", "AE01", "AE02", "AE03", "AE04", "AE05", "AE06", "AE07", "AE08", "AE09",
            "AE10", "AE11", "AE12", "BKSP", "TAB", "AD01", "AD02", "AD03", "AD04", "AD05", "AD06",
            "AD07", "AD08", "AD09", "AD10", "AD11", "AD12", "RTRN", "LCTL", "AC01", "AC02", "AC03",
            "AC04", "AC05", "AC06", "AC07", "AC08", "AC09", "AC10", "AC11", "TLDE", "LFSH", "BKSL",
            "AB01", "AB02", "AB03", "AB04", "AB05", "AB06", "AB07", "AB08", "AB09", "AB10", "RTSH",
            "KPMU", "LALT", "SPCE", "CAPS", "FK01", "FK02", "FK03", "FK04", "FK05", "FK06", "FK07",
            "FK08", "FK09", "FK10", "NMLK", "SCLK", "KP7", "KP8", "KP9", "KPSU", "KP4", "KP5",
            "KP6", "KPAD", "KP1", "KP2", "KP3", "KP0", "KPDL", "PRSC", "", "LSGT", "FK11", "FK12",
        ];
        match code {
            0x59 => "KPEQ",
            0x64..=0x6e => [
                "FK13", "FK14", "FK15", "FK16", "FK17", "FK18", "FK19", "FK20", "FK21", "FK22",
                "FK23",
            ][usize::from(code - 0x64)],
            0x70 => "HKTG",
            0x73 => "AB11",
            0x76 => "FK24",
            0x79 => "HENK",
            0x7b => "MUHE",
            0x7d => "AE13",
            _ => match MAIN.get(usize::from(code)) {
                Some(name) if !name.is_empty() => name,
                _ => return None,
            },
        }
    })
}

/// XKB key names to keycodes, aliases resolved.
#[derive(Debug, Default)]
pub(crate) struct KeyNames {
    keycodes: HashMap<[u8; 4], u8>,
}

impl KeyNames {
    /// From the names of keycodes `first..` in order, and the aliases.
    pub(crate) fn new(first: u8, names: &[[u8; 4]], aliases: &[([u8; 4], [u8; 4])]) -> Self {
        let mut keycodes = HashMap::new();
        for (index, name) in names.iter().enumerate() {
            let Some(keycode) = usize::from(first).checked_add(index) else {
                break;
            };
            let Ok(keycode) = u8::try_from(keycode) else {
                break;
            };
            if name != &[0; 4] {
                keycodes.entry(*name).or_insert(keycode);
            }
        }
        for (real, alias) in aliases {
            if let Some(&keycode) = keycodes.get(real) {
                keycodes.entry(*alias).or_insert(keycode);
            }
        }
        Self { keycodes }
    }

    /// How many names (and aliases) have keycodes.
    pub(crate) fn len(&self) -> usize {
        self.keycodes.len()
    }

    /// The keycode of key `name` (e.g. "AD01").
    pub(crate) fn keycode(&self, name: &str) -> Option<u8> {
        let mut padded = [0u8; 4];
        let bytes = name.as_bytes();
        padded.get_mut(..bytes.len())?.copy_from_slice(bytes);
        self.keycodes.get(&padded).copied()
    }

    /// The keycode of a scancode.
    pub(crate) fn scancode(&self, code: u8, extended: bool) -> Option<u8> {
        self.keycode(key_name(code, extended)?)
    }
}

/// The keysym X gives character `c`: Latin-1 as itself, a few controls as
/// their function keys, everything else as `0x0100_0000 + code point`.
pub(crate) fn keysym_of(c: char) -> u32 {
    match c {
        '\u{8}' => 0xff08,     // BackSpace
        '\t' => 0xff09,        // Tab
        '\r' | '\n' => 0xff0d, // Return
        '\u{1b}' => 0xff1b,    // Escape
        '\u{7f}' => 0xffff,    // Delete
        ' '..='~' | '\u{a0}'..='\u{ff}' => u32::from(c),
        _ => 0x0100_0000 + u32::from(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scancodes_name_the_keys_of_a_pc_keyboard() {
        assert_eq!(key_name(0x01, false), Some("ESC"));
        assert_eq!(key_name(0x10, false), Some("AD01"));
        assert_eq!(key_name(0x2a, false), Some("LFSH"));
        assert_eq!(key_name(0x39, false), Some("SPCE"));
        assert_eq!(key_name(0x58, false), Some("FK12"));
        assert_eq!(key_name(0x56, false), Some("LSGT"));
        assert_eq!(key_name(0x1c, true), Some("KPEN"));
        assert_eq!(key_name(0x4d, true), Some("RGHT"));
        assert_eq!(key_name(0x55, false), None);
        assert_eq!(key_name(0xff, false), None);
        assert_eq!(key_name(0x10, true), None);
    }

    #[test]
    fn names_and_aliases_find_keycodes() {
        let names = KeyNames::new(
            9,
            &[*b"ESC\0", *b"AE01", [0; 4], *b"COMP"],
            &[(*b"COMP", *b"MENU"), (*b"NONE", *b"ALSO")],
        );
        assert_eq!(names.keycode("ESC"), Some(9));
        assert_eq!(names.scancode(0x02, false), Some(10));
        assert_eq!(names.keycode("MENU"), Some(12));
        assert_eq!(names.keycode("ALSO"), None);
        assert_eq!(names.keycode("TOOLONG"), None);
    }

    #[test]
    fn characters_have_keysyms() {
        assert_eq!(keysym_of('a'), 0x61);
        assert_eq!(keysym_of('é'), 0xe9);
        assert_eq!(keysym_of('€'), 0x0100_20ac);
        assert_eq!(keysym_of('\r'), 0xff0d);
    }
}
