//! Capability sets ([MS-RDPBCGR 2.2.7](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/4d0bd6ae-0585-4b91-be4c-6ad31b07e5b7)):
//! what the server advertises in Demand Active and what it reads from the
//! client's Confirm Active.

use crate::connection::codecs::BitmapCodec;
use bytes::BufMut;

use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;

const CAPSTYPE_GENERAL: u16 = 1;
const CAPSTYPE_BITMAP: u16 = 2;
const CAPSTYPE_ORDER: u16 = 3;
const CAPSTYPE_POINTER: u16 = 8;
const CAPSTYPE_SHARE: u16 = 9;
const CAPSTYPE_COLORCACHE: u16 = 10;
const CAPSTYPE_INPUT: u16 = 13;
const CAPSTYPE_FONT: u16 = 14;
const CAPSTYPE_VIRTUALCHANNEL: u16 = 20;
const CAPSTYPE_MULTIFRAGMENTUPDATE: u16 = 26;
const CAPSTYPE_LARGE_POINTER: u16 = 27;
const CAPSTYPE_SURFACE_COMMANDS: u16 = 28;
const CAPSTYPE_BITMAP_CODECS: u16 = 29;
const CAPSTYPE_FRAME_ACKNOWLEDGE: u16 = 30;

/// Capability set header: type and length, 2 bytes each.
const CAPABILITY_HEADER_LEN: usize = 4;
/// More sets than any client sends (Windows sends about 20).
pub const MAX_CAPABILITY_SETS: usize = 64;
/// Bitmap codec entries accepted (a client lists a handful).
const MAX_BITMAP_CODECS: usize = 16;

/// TS_GENERAL_CAPABILITYSET extraFlags.
pub mod extra_flags {
    pub const FASTPATH_OUTPUT_SUPPORTED: u16 = 0x0001;
    pub const LONG_CREDENTIALS_SUPPORTED: u16 = 0x0004;
    pub const NO_BITMAP_COMPRESSION_HDR: u16 = 0x0400;
}

/// TS_INPUT_CAPABILITYSET inputFlags.
pub mod input_flags {
    pub const SCANCODES: u16 = 0x0001;
    pub const MOUSEX: u16 = 0x0004;
    pub const UNICODE: u16 = 0x0010;
    pub const FASTPATH_INPUT2: u16 = 0x0020;
    pub const MOUSE_RELATIVE: u16 = 0x0080;
    pub const MOUSE_HWHEEL: u16 = 0x0100;
}

/// What this server offers; everything advertised is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCapabilities {
    pub desktop_width: u16,
    pub desktop_height: u16,
    pub color_depth: u16,
    /// Largest fast-path update (after reassembly) the server will send.
    pub max_request_size: u32,
    /// The I/O channel id, used as the Share capability's node id.
    pub io_channel: u16,
    /// Surface codecs offered (with surface commands, frame markers and
    /// acknowledgements); none means bitmap updates only.
    pub surface_codecs: Vec<crate::api::config::SurfaceCodec>,
    /// Frames a client may leave unacknowledged.
    pub max_unacknowledged_frames: u32,
}

impl ServerCapabilities {
    /// Writes numberCapabilities, pad2Octets and the sets; returns nothing
    /// because the caller measures `out` for lengthCombinedCapabilities.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut count = 0u16;
        let mut sets = Vec::with_capacity(256);
        let mut set = |kind: u16, body: &[u8]| {
            sets.put_u16_le(kind);
            sets.put_u16_le((CAPABILITY_HEADER_LEN + body.len()) as u16);
            sets.put_slice(body);
            count += 1;
        };

        let mut general = Vec::new();
        general.put_u16_le(1); // osMajorType: Windows
        general.put_u16_le(3); // osMinorType: Windows NT
        general.put_u16_le(0x0200); // protocolVersion
        general.put_u16_le(0);
        general.put_u16_le(0); // generalCompressionTypes
        general.put_u16_le(
            extra_flags::FASTPATH_OUTPUT_SUPPORTED
                | extra_flags::LONG_CREDENTIALS_SUPPORTED
                | extra_flags::NO_BITMAP_COMPRESSION_HDR,
        );
        general.put_u16_le(0); // updateCapabilityFlag
        general.put_u16_le(0); // remoteUnshareFlag
        general.put_u16_le(0); // generalCompressionLevel
        general.put_u8(1); // refreshRectSupport
        general.put_u8(1); // suppressOutputSupport
        set(CAPSTYPE_GENERAL, &general);

        let mut bitmap = Vec::new();
        bitmap.put_u16_le(self.color_depth);
        bitmap.put_u16_le(1); // receive1BitPerPixel
        bitmap.put_u16_le(1); // receive4BitsPerPixel
        bitmap.put_u16_le(1); // receive8BitsPerPixel
        bitmap.put_u16_le(self.desktop_width);
        bitmap.put_u16_le(self.desktop_height);
        bitmap.put_u16_le(0);
        bitmap.put_u16_le(1); // desktopResizeFlag
        bitmap.put_u16_le(1); // bitmapCompressionFlag
        bitmap.put_u8(0); // highColorFlags
        bitmap.put_u8(0); // drawingFlags
        bitmap.put_u16_le(1); // multipleRectangleSupport
        bitmap.put_u16_le(0);
        set(CAPSTYPE_BITMAP, &bitmap);

        // No drawing orders are sent: every orderSupport entry is zero.
        let mut order = Vec::new();
        order.put_bytes(0, 16); // terminalDescriptor
        order.put_u32_le(0);
        order.put_u16_le(1); // desktopSaveXGranularity
        order.put_u16_le(20); // desktopSaveYGranularity
        order.put_u16_le(0);
        order.put_u16_le(1); // maximumOrderLevel
        order.put_u16_le(0); // numberFonts
        order.put_u16_le(0x0002 | 0x0008); // NEGOTIATEORDERSUPPORT | ZEROBOUNDSDELTASSUPPORT
        order.put_bytes(0, 32); // orderSupport
        order.put_u16_le(0); // textFlags
        order.put_u16_le(0); // orderSupportExFlags
        order.put_u32_le(0);
        order.put_u32_le(0); // desktopSaveSize
        order.put_u16_le(0);
        order.put_u16_le(0);
        order.put_u16_le(0); // textANSICodePage
        order.put_u16_le(0);
        set(CAPSTYPE_ORDER, &order);

        let mut pointer = Vec::new();
        pointer.put_u16_le(1); // colorPointerFlag
        pointer.put_u16_le(25); // colorPointerCacheSize
        pointer.put_u16_le(25); // pointerCacheSize
        set(CAPSTYPE_POINTER, &pointer);

        let mut input = Vec::new();
        input.put_u16_le(
            input_flags::SCANCODES
                | input_flags::MOUSEX
                | input_flags::UNICODE
                | input_flags::FASTPATH_INPUT2
                | input_flags::MOUSE_RELATIVE
                | input_flags::MOUSE_HWHEEL,
        );
        input.put_u16_le(0);
        input.put_bytes(0, 16); // keyboard layout, type, subtype, function keys
        input.put_bytes(0, 64); // imeFileName
        set(CAPSTYPE_INPUT, &input);

        let mut virtual_channel = Vec::new();
        virtual_channel.put_u32_le(0); // no compression
        virtual_channel.put_u32_le(1600); // VCChunkSize
        set(CAPSTYPE_VIRTUALCHANNEL, &virtual_channel);

        let mut share = Vec::new();
        share.put_u16_le(self.io_channel);
        share.put_u16_le(0);
        set(CAPSTYPE_SHARE, &share);

        set(CAPSTYPE_FONT, &[1, 0, 0, 0]); // FONTSUPPORT_FONTLIST
        set(CAPSTYPE_COLORCACHE, &[6, 0, 0, 0]); // colorTableCacheSize 6

        // Pointers up to 384x384 for clients that take them (96x96 otherwise).
        set(CAPSTYPE_LARGE_POINTER, &[0x03, 0x00]);

        let mut multifragment = Vec::new();
        multifragment.put_u32_le(self.max_request_size);
        set(CAPSTYPE_MULTIFRAGMENTUPDATE, &multifragment);

        if !self.surface_codecs.is_empty() {
            let mut surface = Vec::new();
            surface.put_u32_le(
                crate::connection::codecs::SURFCMDS_SET_SURFACE_BITS
                    | crate::connection::codecs::SURFCMDS_FRAME_MARKER
                    | crate::connection::codecs::SURFCMDS_STREAM_SURFACE_BITS,
            );
            surface.put_u32_le(0); // reserved
            set(CAPSTYPE_SURFACE_COMMANDS, &surface);
            // INVARIANT: the codec list holds each of a few codecs at most once.
            let mut codecs = vec![self.surface_codecs.len() as u8]; // bitmapCodecCount
            for &codec in &self.surface_codecs {
                crate::connection::codecs::encode_server_codec(&mut codecs, codec);
            }
            set(CAPSTYPE_BITMAP_CODECS, &codecs);
            set(
                CAPSTYPE_FRAME_ACKNOWLEDGE,
                &self.max_unacknowledged_frames.to_le_bytes(),
            );
        }

        out.put_u16_le(count);
        out.put_u16_le(0);
        out.put_slice(&sets);
    }
}

/// The client's capabilities that change what the server does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientCapabilities {
    pub general: Option<GeneralCapability>,
    pub bitmap: Option<BitmapCapability>,
    pub input: Option<InputCapability>,
    pub pointer: Option<PointerCapability>,
    pub virtual_channel: Option<VirtualChannelCapability>,
    pub multifragment_update: Option<MultifragmentUpdateCapability>,
    /// largePointerSupportFlags (LARGE_POINTER_FLAG_96x96 0x1, _384x384 0x2).
    pub large_pointer: Option<u16>,
    /// cmdFlags of the surface commands set.
    pub surface_commands: Option<u32>,
    /// Codecs of the bitmap codecs set, at most 16.
    pub bitmap_codecs: Vec<BitmapCodec>,
    /// maxUnacknowledgedFrameCount of the frame acknowledge set.
    pub frame_acknowledge: Option<u32>,
    /// (type, length) of every set, for diagnostics.
    pub seen: Vec<(u16, u16)>,
}

/// [TS_GENERAL_CAPABILITYSET](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/41dc6845-07dc-4af6-bc14-d8281acd4877),
/// the fields a server acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneralCapability {
    pub extra_flags: u16,
    pub refresh_rect_support: bool,
    pub suppress_output_support: bool,
}

/// [TS_BITMAP_CAPABILITYSET](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/76670547-e35c-4b95-a242-5729a21b83f6),
/// the fields a server acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitmapCapability {
    pub preferred_bits_per_pixel: u16,
    pub desktop_width: u16,
    pub desktop_height: u16,
    pub desktop_resize: bool,
    /// drawingFlags: how 32-bpp bitmaps may be compressed
    /// ([`DRAW_ALLOW_SKIP_ALPHA`] and the lossy options).
    pub drawing_flags: u8,
}

/// drawingFlags bit: the client takes 32-bpp planar bitmaps without an
/// alpha plane. Older clients that leave it clear (rdesktop 1.9) get one.
pub const DRAW_ALLOW_SKIP_ALPHA: u8 = 0x08;

/// [TS_INPUT_CAPABILITYSET](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/b3bc76ae-9ee5-454f-b197-ede845ca69cc)
/// without imeFileName.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputCapability {
    pub input_flags: u16,
    pub keyboard_layout: u32,
    pub keyboard_type: u32,
    pub keyboard_subtype: u32,
    pub keyboard_function_keys: u32,
}

/// [TS_POINTER_CAPABILITYSET](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/925e2c05-c13f-44b1-aa20-23082051fef9);
/// pointerCacheSize is absent from old clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointerCapability {
    pub color_pointer_cache_size: u16,
    pub pointer_cache_size: Option<u16>,
}

/// [TS_VIRTUALCHANNEL_CAPABILITYSET](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/a8593178-80c0-4b80-876c-cb77e62cecfc);
/// VCChunkSize is absent from old clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtualChannelCapability {
    pub flags: u32,
    pub chunk_size: Option<u32>,
}

/// [TS_MULTIFRAGMENTUPDATE_CAPABILITYSET](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/01717954-716a-424d-af35-28fb2b86df89).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultifragmentUpdateCapability {
    pub max_request_size: u32,
}

impl ClientCapabilities {
    /// Decodes `count` capability sets from `cursor`. Every lengthCapability
    /// is checked against the bytes left; unknown set types are skipped; a
    /// known set shorter than its fixed part is an error.
    pub fn decode(cursor: &mut ReadCursor<'_>, count: usize) -> Result<Self, DecodeError> {
        if count > MAX_CAPABILITY_SETS {
            return Err(DecodeError::TooLarge {
                context: "confirm active",
                size: count,
                limit: MAX_CAPABILITY_SETS,
            });
        }
        let mut caps = Self::default();
        for _ in 0..count {
            let kind = cursor.read_u16_le()?;
            let length = cursor.read_u16_le()?;
            if usize::from(length) < CAPABILITY_HEADER_LEN {
                return Err(cursor.invalid("lengthCapability", "shorter than the header"));
            }
            let body = cursor.read_slice(usize::from(length) - CAPABILITY_HEADER_LEN)?;
            caps.seen.push((kind, length));
            caps.decode_set(kind, body)?;
        }
        Ok(caps)
    }

    fn decode_set(&mut self, kind: u16, body: &[u8]) -> Result<(), DecodeError> {
        let mut set = ReadCursor::new(body, "capability set");
        match kind {
            CAPSTYPE_GENERAL => {
                set.ensure(20)?;
                set.skip(10)?;
                let extra_flags = set.read_u16_le()?;
                set.skip(6)?;
                self.general = Some(GeneralCapability {
                    extra_flags,
                    refresh_rect_support: set.read_u8()? != 0,
                    suppress_output_support: set.read_u8()? != 0,
                });
            }
            CAPSTYPE_BITMAP => {
                set.ensure(24)?;
                let preferred_bits_per_pixel = set.read_u16_le()?;
                set.skip(6)?;
                let desktop_width = set.read_u16_le()?;
                let desktop_height = set.read_u16_le()?;
                set.skip(2)?;
                let desktop_resize = set.read_u16_le()? != 0;
                // bitmapCompressionFlag and highColorFlags.
                set.skip(3)?;
                self.bitmap = Some(BitmapCapability {
                    preferred_bits_per_pixel,
                    desktop_width,
                    desktop_height,
                    desktop_resize,
                    drawing_flags: set.read_u8()?,
                });
            }
            CAPSTYPE_INPUT => {
                // inputFlags, pad2octetsA, four keyboard fields, imeFileName.
                set.ensure(84)?;
                let input_flags = set.read_u16_le()?;
                set.skip(2)?;
                self.input = Some(InputCapability {
                    input_flags,
                    keyboard_layout: set.read_u32_le()?,
                    keyboard_type: set.read_u32_le()?,
                    keyboard_subtype: set.read_u32_le()?,
                    keyboard_function_keys: set.read_u32_le()?,
                });
            }
            CAPSTYPE_POINTER => {
                let _color_pointer_flag = set.read_u16_le()?;
                let color_pointer_cache_size = set.read_u16_le()?;
                let pointer_cache_size =
                    (!set.is_empty()).then(|| set.read_u16_le()).transpose()?;
                self.pointer = Some(PointerCapability {
                    color_pointer_cache_size,
                    pointer_cache_size,
                });
            }
            CAPSTYPE_VIRTUALCHANNEL => {
                let flags = set.read_u32_le()?;
                let chunk_size = (!set.is_empty()).then(|| set.read_u32_le()).transpose()?;
                self.virtual_channel = Some(VirtualChannelCapability { flags, chunk_size });
            }
            CAPSTYPE_MULTIFRAGMENTUPDATE => {
                self.multifragment_update = Some(MultifragmentUpdateCapability {
                    max_request_size: set.read_u32_le()?,
                });
            }
            CAPSTYPE_LARGE_POINTER => self.large_pointer = Some(set.read_u16_le()?),
            CAPSTYPE_SURFACE_COMMANDS => {
                // cmdFlags, then a reserved 32-bit field.
                set.ensure(8)?;
                self.surface_commands = Some(set.read_u32_le()?);
            }
            CAPSTYPE_FRAME_ACKNOWLEDGE => self.frame_acknowledge = Some(set.read_u32_le()?),
            CAPSTYPE_BITMAP_CODECS => {
                let count = usize::from(set.read_u8()?);
                if count > MAX_BITMAP_CODECS {
                    return Err(DecodeError::TooLarge {
                        context: "bitmap codecs capability",
                        size: count,
                        limit: MAX_BITMAP_CODECS,
                    });
                }
                for _ in 0..count {
                    let guid = set.read_array::<16>()?;
                    let id = set.read_u8()?;
                    let length = usize::from(set.read_u16_le()?);
                    let properties = set.read_slice(length)?.to_vec();
                    self.bitmap_codecs.push(BitmapCodec {
                        guid,
                        id,
                        properties,
                    });
                }
            }
            // Sets that do not change what this server sends.
            _ => {}
        }
        Ok(())
    }

    #[cfg(test)]
    /// Whether the client accepts fast-path output.
    pub fn fast_path_output(&self) -> bool {
        self.general.is_some_and(|general| {
            general.extra_flags & extra_flags::FASTPATH_OUTPUT_SUPPORTED != 0
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> ServerCapabilities {
        ServerCapabilities {
            desktop_width: 1024,
            desktop_height: 768,
            color_depth: 32,
            max_request_size: 0x3F_0000,
            io_channel: 1003,
            surface_codecs: Vec::new(),
            max_unacknowledged_frames: 2,
        }
    }

    #[test]
    fn server_sets_are_well_formed_and_readable() {
        let mut out = Vec::new();
        server().encode(&mut out);
        let mut cursor = ReadCursor::new(&out, "test");
        let count = usize::from(cursor.read_u16_le().unwrap());
        cursor.skip(2).unwrap();
        // Reading our own sets with the client-side parser checks every length.
        let caps = ClientCapabilities::decode(&mut cursor, count).unwrap();
        assert!(cursor.is_empty());
        assert_eq!(count, 11);
        assert_eq!(caps.large_pointer, Some(0x03));
        assert!(caps.fast_path_output());
        let bitmap = caps.bitmap.unwrap();
        assert_eq!(
            (
                bitmap.preferred_bits_per_pixel,
                bitmap.desktop_width,
                bitmap.desktop_height
            ),
            (32, 1024, 768)
        );
        assert_eq!(
            caps.multifragment_update.unwrap().max_request_size,
            0x3F_0000
        );
        let order = caps
            .seen
            .iter()
            .find(|(kind, _)| *kind == CAPSTYPE_ORDER)
            .unwrap();
        assert_eq!(order.1, 88);
        let input = caps
            .seen
            .iter()
            .find(|(kind, _)| *kind == CAPSTYPE_INPUT)
            .unwrap();
        assert_eq!(input.1, 88);
        assert!(caps.surface_commands.is_none() && caps.bitmap_codecs.is_empty());
    }

    #[test]
    fn remotefx_adds_surface_commands_codecs_and_frame_acks() {
        let mut out = Vec::new();
        ServerCapabilities {
            surface_codecs: vec![crate::api::config::SurfaceCodec::RemoteFx],
            ..server()
        }
        .encode(&mut out);
        let mut cursor = ReadCursor::new(&out, "test");
        let count = usize::from(cursor.read_u16_le().unwrap());
        cursor.skip(2).unwrap();
        let caps = ClientCapabilities::decode(&mut cursor, count).unwrap();
        assert_eq!(count, 14);
        assert_eq!(caps.surface_commands, Some(0x52));
        assert_eq!(caps.frame_acknowledge, Some(2));
        assert_eq!(
            caps.bitmap_codecs,
            [BitmapCodec {
                guid: crate::connection::codecs::CODEC_GUID_REMOTEFX,
                id: 0,
                properties: vec![0; 4],
            }]
        );
    }

    #[test]
    fn bad_sets_are_rejected() {
        // Length shorter than the header.
        assert!(
            ClientCapabilities::decode(&mut ReadCursor::new(&[1, 0, 2, 0], "test"), 1).is_err()
        );
        // Length past the end.
        assert!(
            ClientCapabilities::decode(&mut ReadCursor::new(&[1, 0, 30, 0, 0, 0], "test"), 1)
                .is_err()
        );
        // A known set shorter than its fixed part.
        assert!(
            ClientCapabilities::decode(&mut ReadCursor::new(&[2, 0, 8, 0, 0, 0, 0, 0], "test"), 1)
                .is_err()
        );
        // Too many sets.
        assert!(matches!(
            ClientCapabilities::decode(&mut ReadCursor::new(&[], "test"), 1000),
            Err(DecodeError::TooLarge { .. })
        ));
        // An unknown set is skipped.
        let caps =
            ClientCapabilities::decode(&mut ReadCursor::new(&[0x99, 0, 6, 0, 1, 2], "test"), 1)
                .unwrap();
        assert_eq!(caps.seen, [(0x99, 6)]);
        // Bitmap codecs whose property length runs past the end.
        let codecs = [
            29, 0, 25, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xFF, 0xFF, 0,
        ];
        assert!(ClientCapabilities::decode(&mut ReadCursor::new(&codecs, "test"), 1).is_err());
    }

    fn set(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.put_u16_le(kind);
        out.put_u16_le((body.len() + 4) as u16);
        out.put_slice(body);
        out
    }

    /// The sets a modern client sends, built field by field from 2.2.7.
    fn client_sets() -> (usize, Vec<u8>) {
        let mut general = vec![1, 0, 3, 0, 0, 2, 0, 0, 0, 0];
        general.extend_from_slice(&0x041Du16.to_le_bytes()); // extraFlags
        general.extend_from_slice(&[0, 0, 0, 0, 0, 0, 1, 1]);
        let mut bitmap = Vec::new();
        for field in [32u16, 1, 1, 1, 1920, 1080, 0, 1, 1] {
            bitmap.put_u16_le(field);
        }
        bitmap.extend_from_slice(&[0, 0x08, 1, 0, 0, 0]);
        let mut input = Vec::new();
        input.put_u16_le(0x01B5);
        input.put_u16_le(0);
        for field in [0x0409u32, 4, 0, 12] {
            input.put_u32_le(field);
        }
        input.put_bytes(0, 64);
        let mut codecs = vec![1];
        codecs.extend_from_slice(&[0xAB; 16]);
        codecs.push(3);
        codecs.extend_from_slice(&2u16.to_le_bytes());
        codecs.extend_from_slice(&[9, 8]);
        let sets = [
            set(CAPSTYPE_GENERAL, &general),
            set(CAPSTYPE_BITMAP, &bitmap),
            set(CAPSTYPE_INPUT, &input),
            // An old-style pointer set without pointerCacheSize.
            set(CAPSTYPE_POINTER, &[1, 0, 20, 0]),
            // A virtual channel set without VCChunkSize.
            set(CAPSTYPE_VIRTUALCHANNEL, &[1, 0, 0, 0]),
            set(CAPSTYPE_SURFACE_COMMANDS, &[0x52, 0, 0, 0, 0, 0, 0, 0]),
            set(CAPSTYPE_BITMAP_CODECS, &codecs),
            set(CAPSTYPE_FRAME_ACKNOWLEDGE, &[2, 0, 0, 0]),
            set(CAPSTYPE_LARGE_POINTER, &[3, 0]),
            // An order set, which this server reads nothing from.
            set(CAPSTYPE_ORDER, &[0; 84]),
        ];
        (sets.len(), sets.concat())
    }

    #[test]
    fn client_sets_decode() {
        let (count, bytes) = client_sets();
        let caps = ClientCapabilities::decode(&mut ReadCursor::new(&bytes, "test"), count).unwrap();
        let general = caps.general.unwrap();
        assert_eq!(general.extra_flags, 0x041D);
        assert!(general.refresh_rect_support && general.suppress_output_support);
        assert!(caps.fast_path_output());
        assert_eq!(
            caps.bitmap,
            Some(BitmapCapability {
                preferred_bits_per_pixel: 32,
                desktop_width: 1920,
                desktop_height: 1080,
                desktop_resize: true,
                drawing_flags: DRAW_ALLOW_SKIP_ALPHA,
            })
        );
        assert_eq!(
            caps.input,
            Some(InputCapability {
                input_flags: 0x01B5,
                keyboard_layout: 0x0409,
                keyboard_type: 4,
                keyboard_subtype: 0,
                keyboard_function_keys: 12,
            })
        );
        assert_eq!(
            caps.pointer,
            Some(PointerCapability {
                color_pointer_cache_size: 20,
                pointer_cache_size: None,
            })
        );
        assert_eq!(
            caps.virtual_channel,
            Some(VirtualChannelCapability {
                flags: 1,
                chunk_size: None,
            })
        );
        assert_eq!(caps.surface_commands, Some(0x52));
        assert_eq!(
            caps.bitmap_codecs,
            [BitmapCodec {
                guid: [0xAB; 16],
                id: 3,
                properties: vec![9, 8],
            }]
        );
        assert_eq!(caps.frame_acknowledge, Some(2));
        assert_eq!(caps.large_pointer, Some(3));
        assert_eq!(caps.seen.len(), count);
        assert_eq!(caps.seen[9], (CAPSTYPE_ORDER, 88));
    }

    #[test]
    fn client_sets_truncated_anywhere_are_errors() {
        let (count, bytes) = client_sets();
        for end in 0..bytes.len() {
            assert!(
                ClientCapabilities::decode(&mut ReadCursor::new(&bytes[..end], "test"), count)
                    .is_err(),
                "{end}"
            );
        }
    }

    #[test]
    fn known_sets_shorter_than_their_fixed_part_are_errors() {
        for (kind, fixed) in [
            (CAPSTYPE_GENERAL, 20),
            (CAPSTYPE_BITMAP, 24),
            (CAPSTYPE_INPUT, 84),
            (CAPSTYPE_POINTER, 4),
            (CAPSTYPE_VIRTUALCHANNEL, 4),
            (CAPSTYPE_MULTIFRAGMENTUPDATE, 4),
            (CAPSTYPE_LARGE_POINTER, 2),
            (CAPSTYPE_SURFACE_COMMANDS, 8),
            (CAPSTYPE_FRAME_ACKNOWLEDGE, 4),
            (CAPSTYPE_BITMAP_CODECS, 1),
        ] {
            let short = set(kind, &vec![0; fixed - 1]);
            assert!(
                ClientCapabilities::decode(&mut ReadCursor::new(&short, "test"), 1).is_err(),
                "{kind}"
            );
            let exact = set(kind, &vec![0; fixed]);
            assert!(
                ClientCapabilities::decode(&mut ReadCursor::new(&exact, "test"), 1).is_ok(),
                "{kind}"
            );
        }
    }

    #[test]
    fn too_many_bitmap_codecs_are_refused() {
        let too_many = set(CAPSTYPE_BITMAP_CODECS, &[17]);
        assert!(matches!(
            ClientCapabilities::decode(&mut ReadCursor::new(&too_many, "test"), 1),
            Err(DecodeError::TooLarge { .. })
        ));
    }
}
