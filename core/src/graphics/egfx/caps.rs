//! Choosing the capability set to confirm (MS-RDPEGFX 3.3.5.19): the
//! highest version both sides know, with the client's flags, which say
//! what the server may use.

use crate::api::config::PipelineCodec;
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
    pub fn avc420(&self) -> bool {
        match self.version() {
            version::V8 => false,
            version::V8_1 => self.flags() & caps_flag::AVC420_ENABLED != 0,
            _ => self.flags() & caps_flag::AVC_DISABLED == 0,
        }
    }

    /// Whether AVC444 may be sent: 10.x without AVC_DISABLED.
    #[cfg_attr(not(feature = "h264"), allow(dead_code))]
    pub fn avc444(&self) -> bool {
        !matches!(self.version(), version::V8 | version::V8_1)
            && self.flags() & caps_flag::AVC_DISABLED == 0
    }

    /// The codec a session runs when the application asks for `wanted`:
    /// H.264 only where the client allows it (AVC444 falling back to
    /// AVC420), else planar (the lossless default every client of the
    /// pipeline decodes). A client that says it prefers AVC444
    /// (AVC_THINCLIENT, 2.2.3.6) gets it when the application asked for
    /// AVC420.
    pub fn resolve(&self, wanted: PipelineCodec) -> PipelineCodec {
        #[cfg(feature = "h264")]
        if wanted == PipelineCodec::Avc420
            && self.avc444()
            && self.flags() & caps_flag::AVC_THIN_CLIENT != 0
        {
            return PipelineCodec::Avc444;
        }
        #[cfg(feature = "h264")]
        if wanted == PipelineCodec::Avc444 && !self.avc444() && self.avc420() {
            return PipelineCodec::Avc420;
        }
        if self.allows(wanted) {
            wanted
        } else {
            PipelineCodec::Planar
        }
    }

    /// Whether AVC444 may go as version 2 (RDPGFX_CODECID_AVC444v2): from
    /// 10.1 on, as Windows Server sends it; 10.0 knows only version 1.
    #[cfg(feature = "h264")]
    pub fn avc444_v2(&self) -> bool {
        self.avc444() && self.version() != version::V10
    }

    /// Whether the client can take `codec` (for switching to it).
    pub fn allows(&self, codec: PipelineCodec) -> bool {
        match codec {
            PipelineCodec::Planar | PipelineCodec::Uncompressed => true,
            #[cfg(feature = "h264")]
            PipelineCodec::Avc420 => self.avc420(),
            #[cfg(feature = "h264")]
            PipelineCodec::Avc444 => self.avc444(),
            #[cfg(feature = "h264")]
            PipelineCodec::Adaptive => self.avc420(),
        }
    }

    /// Bytes the client's bitmap cache holds: 16 MB for thin clients and
    /// small caches (2.2.3.1) and under 10.3, whose selection "implies
    /// that the bitmap cache MUST be constrained to 16MB" (2.2.3.6); else
    /// 100 MB.
    pub fn cache_bytes(&self) -> usize {
        if self.flags() & (caps_flag::THIN_CLIENT | caps_flag::SMALL_CACHE) != 0
            || self.version() == version::V10_3
        {
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

    /// A Caps Advertise PDU with (version, flags) sets, as bytes.
    fn advertise(sets: &[(u32, u32)]) -> Vec<u8> {
        let mut body = (sets.len() as u16).to_le_bytes().to_vec();
        for (version, flags) in sets {
            body.extend_from_slice(&version.to_le_bytes());
            body.extend_from_slice(&4u32.to_le_bytes());
            body.extend_from_slice(&flags.to_le_bytes());
        }
        let mut pdu = vec![0x12, 0, 0, 0];
        pdu.extend_from_slice(&(8 + body.len() as u32).to_le_bytes());
        pdu.extend_from_slice(&body);
        pdu
    }

    fn negotiate(bytes: &[u8], wanted: PipelineCodec) -> (u32, PipelineCodec) {
        let (pdu, rest) = crate::graphics::egfx::pdu::ClientPdu::decode(bytes).unwrap();
        assert!(rest.is_empty());
        let crate::graphics::egfx::pdu::ClientPdu::CapsAdvertise(sets) = pdu else {
            panic!("{pdu:?}");
        };
        let confirmed = Confirmed::choose(&sets).unwrap();
        (confirmed.version(), confirmed.resolve(wanted))
    }

    /// xfreerdp 2.11's three advertisements: `/gfx` (eleven sets, H.264
    /// disabled in each 10.x set, none enabled in 8.1), `/gfx:AVC420`
    /// (8.0 and 8.1 with flags 0x13), `/gfx:AVC444` (up to 10.7, flags
    /// 0xC2 there).
    #[test]
    fn each_xfreerdp_advertisement_gets_its_codec() {
        let tens = [
            version::V10,
            version::V10_1,
            version::V10_2,
            version::V10_3,
            version::V10_4,
            version::V10_5,
            version::V10_6,
            0x000A_0601,
        ];
        let mut plain = vec![(version::V8, 0x03), (version::V8_1, 0x03)];
        plain.extend(tens.iter().map(|&v| (v, 0x62)));
        plain.push((version::V10_7, 0xE2));
        assert_eq!(plain.len(), 11);
        let plain = advertise(&plain);
        let avc420 = advertise(&[(version::V8, 0x03), (version::V8_1, 0x13)]);
        assert_eq!(
            avc420,
            [
                0x12, 0, 0, 0, 0x22, 0, 0, 0, 2, 0, // header, two sets
                4, 0, 8, 0, 4, 0, 0, 0, 3, 0, 0, 0, // 8.0
                5, 1, 8, 0, 4, 0, 0, 0, 0x13, 0, 0, 0, // 8.1, AVC420_ENABLED
            ]
        );
        let mut avc444 = vec![(version::V8, 0x03), (version::V8_1, 0x13)];
        avc444.extend(tens.iter().map(|&v| (v, 0x42)));
        avc444.push((version::V10_7, 0xC2));
        let avc444 = advertise(&avc444);

        // Without H.264 asked for, every client gets what it asked.
        for bytes in [&plain, &avc420, &avc444] {
            assert_eq!(
                negotiate(bytes, PipelineCodec::Planar).1,
                PipelineCodec::Planar
            );
            assert_eq!(
                negotiate(bytes, PipelineCodec::Uncompressed).1,
                PipelineCodec::Uncompressed
            );
        }
        #[cfg(feature = "h264")]
        {
            // Plain /gfx keeps planar: H.264 is disabled in its 10.7 set.
            assert_eq!(
                negotiate(&plain, PipelineCodec::Avc420),
                (version::V10_7, PipelineCodec::Planar)
            );
            assert_eq!(
                negotiate(&avc420, PipelineCodec::Avc420),
                (version::V8_1, PipelineCodec::Avc420)
            );
            // /gfx:AVC444 sets AVC_THINCLIENT: it prefers AVC444.
            assert_eq!(
                negotiate(&avc444, PipelineCodec::Avc420),
                (version::V10_7, PipelineCodec::Avc444)
            );
            assert_eq!(
                negotiate(&avc444, PipelineCodec::Avc444),
                (version::V10_7, PipelineCodec::Avc444)
            );
            assert_eq!(
                negotiate(&avc420, PipelineCodec::Avc444).1,
                PipelineCodec::Avc420
            );
            assert_eq!(
                negotiate(&plain, PipelineCodec::Avc444).1,
                PipelineCodec::Planar
            );
            let ten = advertise(&[(version::V10, 0x02)]);
            let confirmed = Confirmed::choose(&[set(version::V10, 0x02)]).unwrap();
            assert!(!confirmed.avc444_v2());
            assert_eq!(
                negotiate(&ten, PipelineCodec::Avc444).1,
                PipelineCodec::Avc444
            );
            // Without the preference, AVC420 stays AVC420.
            let no_preference = advertise(&[(version::V10_7, 0x82)]);
            assert_eq!(
                negotiate(&no_preference, PipelineCodec::Avc420).1,
                PipelineCodec::Avc420
            );
            assert!(
                Confirmed::choose(&[set(version::V10_7, 0)])
                    .unwrap()
                    .avc444_v2()
            );
            // 8.1 without AVC420_ENABLED, and 8.0: no H.264.
            let no_flag = advertise(&[(version::V8_1, 0x02)]);
            assert_eq!(
                negotiate(&no_flag, PipelineCodec::Avc420).1,
                PipelineCodec::Planar
            );
            let eight = advertise(&[(version::V8, 0x00)]);
            assert_eq!(
                negotiate(&eight, PipelineCodec::Avc420).1,
                PipelineCodec::Planar
            );
        }
        // Small caches are honoured: /gfx:AVC420's 8.1 and /gfx:AVC444's
        // 10.7 both ask for 16 MB; 10.3 implies it.
        let ten_three = Confirmed::choose(&[set(version::V10_3, 0)]).unwrap();
        assert_eq!(ten_three.cache_bytes(), 16 << 20);
    }
}
