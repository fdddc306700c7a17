//! Choosing the capability set to confirm (MS-RDPEGFX 3.3.5.19): the
//! highest version both sides know, with the client's flags, which say
//! what the server may use.

use crate::graphics::egfx::pdu::{CapabilitySet, caps_flag, version};

/// The versions this server confirms, lowest first.
const KNOWN: [u32; 10] = [
    version::V8,
    version::V8_1,
    version::V10,
    version::V10_1,
    version::V10_2,
    version::V10_3,
    version::V10_4,
    version::V10_5,
    version::V10_6,
    version::V10_7,
];

/// What the confirmed set allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Confirmed {
    /// The set, as the client sent it: the Caps Confirm echoes it.
    pub set: CapabilitySet,
}

impl Confirmed {
    /// The highest known version among the client's sets; `None` when the
    /// client advertises none this server knows (then the pipeline is not
    /// used). Windows Server picks the highest too.
    pub fn choose(advertised: &[CapabilitySet]) -> Option<Self> {
        advertised
            .iter()
            .filter_map(|set| Some((KNOWN.iter().position(|&known| known == set.version)?, set)))
            .max_by_key(|(rank, _)| *rank)
            .map(|(_, set)| Self { set: set.clone() })
    }

    pub fn version(&self) -> u32 {
        self.set.version
    }

    pub fn flags(&self) -> u32 {
        self.set.flags()
    }

    /// Whether AVC420 may be sent: 8.1 with AVC420_ENABLED, 10.x without
    /// AVC_DISABLED; never in 8.0.
    // Read by the AVC step of issue 15 that follows; tested here already.
    #[allow(dead_code)]
    pub fn avc420(&self) -> bool {
        match self.version() {
            version::V8 => false,
            version::V8_1 => self.flags() & caps_flag::AVC420_ENABLED != 0,
            _ => self.flags() & caps_flag::AVC_DISABLED == 0,
        }
    }

    /// Whether AVC444 may be sent: 10.x without AVC_DISABLED.
    #[allow(dead_code)]
    pub fn avc444(&self) -> bool {
        !matches!(self.version(), version::V8 | version::V8_1)
            && self.flags() & caps_flag::AVC_DISABLED == 0
    }

    /// Bytes the client's bitmap cache holds: 16 MB for thin clients and
    /// small caches (2.2.3.1), else 100 MB.
    pub fn cache_bytes(&self) -> usize {
        if self.flags() & (caps_flag::THIN_CLIENT | caps_flag::SMALL_CACHE) != 0 {
            16 << 20
        } else {
            100 << 20
        }
    }

    /// Cache slots the client has (3.3.1.4): 4096 with a small cache,
    /// else 25600.
    pub fn cache_slots(&self) -> u16 {
        if self.flags() & (caps_flag::THIN_CLIENT | caps_flag::SMALL_CACHE) != 0 {
            4096
        } else {
            25600
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(version: u32, flags: u32) -> CapabilitySet {
        CapabilitySet::with_flags(version, flags)
    }

    #[test]
    fn the_highest_known_version_wins() {
        // xfreerdp /gfx:AVC444 advertises up to 10.7 (flags 0xC2 there).
        let advertised = [
            set(version::V8, 0),
            set(version::V8_1, 0x13),
            set(version::V10_7, 0xC2),
            set(0x000A_0601, 0),
            set(version::V10_5, 0),
        ];
        let confirmed = Confirmed::choose(&advertised).unwrap();
        assert_eq!(confirmed.version(), version::V10_7);
        assert!(confirmed.avc420() && confirmed.avc444());
        assert_eq!(confirmed.cache_slots(), 4096);
    }

    #[test]
    fn flags_are_honoured() {
        let avc420 = Confirmed::choose(&[set(version::V8, 0), set(version::V8_1, 0x13)]).unwrap();
        assert_eq!(avc420.version(), version::V8_1);
        assert!(avc420.avc420() && !avc420.avc444());
        assert_eq!(avc420.cache_bytes(), 16 << 20);
        let no_avc = Confirmed::choose(&[set(version::V10_6, caps_flag::AVC_DISABLED)]).unwrap();
        assert!(!no_avc.avc420() && !no_avc.avc444());
        assert_eq!(no_avc.cache_slots(), 25600);
        let plain = Confirmed::choose(&[set(version::V8, 0)]).unwrap();
        assert!(!plain.avc420());
        let ten_one = Confirmed::choose(&[CapabilitySet {
            version: version::V10_1,
            data: vec![0xFF; 16],
        }])
        .unwrap();
        assert_eq!(ten_one.flags(), 0);
        assert!(ten_one.avc420());
        assert_eq!(Confirmed::choose(&[set(0x0009_0000, 0)]), None);
        assert_eq!(Confirmed::choose(&[]), None);
    }
}
