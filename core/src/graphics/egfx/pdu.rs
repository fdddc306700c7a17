//! Graphics Pipeline PDUs
//! ([MS-RDPEGFX 2.2](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpegfx/da5c75f9-cd99-450c-98c4-014a496942b0)):
//! each is an RDPGFX_HEADER (cmdId, flags, pduLength) and its fields.
//! The server's PDUs encode (and decode, for tests and fuzzing); the
//! client's decode with every length checked (and encode, for the tests'
//! client).

use bytes::BufMut;

use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;

/// The dynamic channel's name.
pub const CHANNEL_NAME: &str = "Microsoft::Windows::RDS::Graphics";

/// RDPGFX_HEADER: cmdId (2), flags (2), pduLength (4).
const HEADER_SIZE: usize = 8;

mod command {
    pub const WIRE_TO_SURFACE_1: u16 = 0x0001;
    pub const SOLID_FILL: u16 = 0x0004;
    pub const SURFACE_TO_SURFACE: u16 = 0x0005;
    pub const SURFACE_TO_CACHE: u16 = 0x0006;
    pub const CACHE_TO_SURFACE: u16 = 0x0007;
    pub const EVICT_CACHE_ENTRY: u16 = 0x0008;
    pub const CREATE_SURFACE: u16 = 0x0009;
    pub const DELETE_SURFACE: u16 = 0x000A;
    pub const START_FRAME: u16 = 0x000B;
    pub const END_FRAME: u16 = 0x000C;
    pub const FRAME_ACKNOWLEDGE: u16 = 0x000D;
    pub const RESET_GRAPHICS: u16 = 0x000E;
    pub const MAP_SURFACE_TO_OUTPUT: u16 = 0x000F;
    pub const CACHE_IMPORT_OFFER: u16 = 0x0010;
    pub const CACHE_IMPORT_REPLY: u16 = 0x0011;
    pub const CAPS_ADVERTISE: u16 = 0x0012;
    pub const CAPS_CONFIRM: u16 = 0x0013;
    pub const QOE_FRAME_ACKNOWLEDGE: u16 = 0x0016;
}

/// Capability set versions (2.2.1.6).
pub mod version {
    pub const V8: u32 = 0x0008_0004;
    pub const V8_1: u32 = 0x0008_0105;
    pub const V10: u32 = 0x000A_0002;
    pub const V10_1: u32 = 0x000A_0100;
    pub const V10_2: u32 = 0x000A_0200;
    pub const V10_3: u32 = 0x000A_0301;
    pub const V10_4: u32 = 0x000A_0400;
    pub const V10_5: u32 = 0x000A_0502;
    pub const V10_6: u32 = 0x000A_0600;
    pub const V10_7: u32 = 0x000A_0701;
}

/// Capability flags (2.2.3).
#[allow(dead_code)]
pub mod caps_flag {
    pub const THIN_CLIENT: u32 = 0x01;
    pub const SMALL_CACHE: u32 = 0x02;
    /// 8.1 only: AVC420 may be used.
    pub const AVC420_ENABLED: u32 = 0x10;
    /// 10.0 and later: no AVC at all.
    pub const AVC_DISABLED: u32 = 0x20;
    /// 10.3 and later: the client prefers AVC444 (2.2.3.6).
    pub const AVC_THIN_CLIENT: u32 = 0x40;
    /// 10.7: no scaled output mapping.
    pub const SCALEDMAP_DISABLE: u32 = 0x80;
}

/// Codec ids of RDPGFX_WIRE_TO_SURFACE_PDU_1 (2.2.2.1).
#[allow(dead_code)]
pub mod codec {
    pub const UNCOMPRESSED: u16 = 0x0000;
    pub const PLANAR: u16 = 0x000A;
    pub const AVC420: u16 = 0x000B;
    pub const AVC444: u16 = 0x000E;
    pub const AVC444V2: u16 = 0x000F;
}

/// RDPGFX_PIXELFORMAT (2.2.1.4).
#[allow(dead_code)]
pub mod pixel_format {
    pub const XRGB_8888: u8 = 0x20;
    pub const ARGB_8888: u8 = 0x21;
}

/// FrameAcknowledge queueDepth: the client stops acknowledging frames.
pub const SUSPEND_FRAME_ACKNOWLEDGEMENT: u32 = 0xFFFF_FFFF;
/// The most cache entries an offer or a reply carries (2.2.2.16).
pub const MAX_CACHE_ENTRIES: usize = 5462;
/// ResetGraphics carries at most 16 monitors (2.2.2.14).
pub const MAX_MONITORS: usize = 16;
/// ResetGraphics is always 340 bytes, padded.
const RESET_GRAPHICS_SIZE: usize = 340;

/// RDPGFX_RECT16: right and bottom exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect16 {
    pub left: u16,
    pub top: u16,
    pub right: u16,
    pub bottom: u16,
}

/// RDPGFX_POINT16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point16 {
    pub x: u16,
    pub y: u16,
}

/// RDPGFX_COLOR32 in wire order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Color32 {
    pub b: u8,
    pub g: u8,
    pub r: u8,
    pub xa: u8,
}

/// TS_MONITOR_DEF (MS-RDPBCGR 2.2.1.3.6.1): inclusive edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorDef {
    pub left: i32,
    pub top: i32,
    pub right: i32,
    pub bottom: i32,
    pub primary: bool,
}

/// RDPGFX_CAPSET (2.2.1.6): a version and its data (flags for most).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapabilitySet {
    pub version: u32,
    pub data: Vec<u8>,
}

impl CapabilitySet {
    /// A set whose data is its flags.
    #[cfg(test)]
    pub fn with_flags(version: u32, flags: u32) -> Self {
        Self {
            version,
            data: flags.to_le_bytes().to_vec(),
        }
    }

    /// The flags: the data's first four bytes (10.1 has none: reserved).
    pub fn flags(&self) -> u32 {
        match (self.version, self.data.first_chunk::<4>()) {
            (version::V10_1, _) | (_, None) => 0,
            (_, Some(flags)) => u32::from_le_bytes(*flags),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32_le(self.version);
        // INVARIANT: sets come from a decoded PDU or a constructor, both far
        // below 4 GiB.
        out.put_u32_le(self.data.len() as u32);
        out.extend_from_slice(&self.data);
    }

    fn decode(cursor: &mut ReadCursor<'_>) -> Result<Self, DecodeError> {
        let version = cursor.read_u32_le()?;
        let length = cursor.read_u32_le()? as usize;
        let data = cursor.read_slice(length)?.to_vec();
        Ok(Self { version, data })
    }
}

/// RDPGFX_CACHE_ENTRY_METADATA (2.2.2.16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheEntryMetadata {
    pub cache_key: u64,
    pub bitmap_length: u32,
}

/// A PDU the server sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerPdu<'a> {
    /// 2.2.2.1
    WireToSurface1 {
        surface_id: u16,
        codec_id: u16,
        pixel_format: u8,
        destination: Rect16,
        bitmap_data: &'a [u8],
    },
    /// 2.2.2.4
    SolidFill {
        surface_id: u16,
        color: Color32,
        rects: Vec<Rect16>,
    },
    /// 2.2.2.5
    SurfaceToSurface {
        source_surface_id: u16,
        destination_surface_id: u16,
        source: Rect16,
        destinations: Vec<Point16>,
    },
    /// 2.2.2.6
    SurfaceToCache {
        surface_id: u16,
        cache_key: u64,
        cache_slot: u16,
        source: Rect16,
    },
    /// 2.2.2.7
    CacheToSurface {
        cache_slot: u16,
        surface_id: u16,
        destinations: Vec<Point16>,
    },
    /// 2.2.2.8
    EvictCacheEntry { cache_slot: u16 },
    /// 2.2.2.9
    CreateSurface {
        surface_id: u16,
        width: u16,
        height: u16,
        pixel_format: u8,
    },
    /// 2.2.2.10
    DeleteSurface { surface_id: u16 },
    /// 2.2.2.11
    StartFrame { timestamp: u32, frame_id: u32 },
    /// 2.2.2.12
    EndFrame { frame_id: u32 },
    /// 2.2.2.14
    ResetGraphics {
        width: u32,
        height: u32,
        monitors: Vec<MonitorDef>,
    },
    /// 2.2.2.15
    MapSurfaceToOutput {
        surface_id: u16,
        origin_x: u32,
        origin_y: u32,
    },
    /// 2.2.2.17
    CacheImportReply { cache_slots: Vec<u16> },
    /// 2.2.2.19
    CapsConfirm(CapabilitySet),
}

fn put_rect(out: &mut Vec<u8>, rect: Rect16) {
    out.put_u16_le(rect.left);
    out.put_u16_le(rect.top);
    out.put_u16_le(rect.right);
    out.put_u16_le(rect.bottom);
}

#[cfg(any(test, feature = "fuzzing"))]
fn read_rect(cursor: &mut ReadCursor<'_>) -> Result<Rect16, DecodeError> {
    let rect = Rect16 {
        left: cursor.read_u16_le()?,
        top: cursor.read_u16_le()?,
        right: cursor.read_u16_le()?,
        bottom: cursor.read_u16_le()?,
    };
    if rect.left > rect.right || rect.top > rect.bottom {
        return Err(cursor.invalid("rect16", "right or bottom before left or top"));
    }
    Ok(rect)
}

fn put_points(out: &mut Vec<u8>, points: &[Point16]) {
    // INVARIANT: callers never build more than u16::MAX points (the
    // session sends at most a few per PDU).
    out.put_u16_le(points.len() as u16);
    for point in points {
        out.put_u16_le(point.x);
        out.put_u16_le(point.y);
    }
}

#[cfg(any(test, feature = "fuzzing"))]
fn read_points(cursor: &mut ReadCursor<'_>) -> Result<Vec<Point16>, DecodeError> {
    let count = usize::from(cursor.read_u16_le()?);
    cursor.ensure(count * 4)?;
    (0..count)
        .map(|_| {
            Ok(Point16 {
                x: cursor.read_u16_le()?,
                y: cursor.read_u16_le()?,
            })
        })
        .collect()
}

/// Writes the header, then the body `write` appends, with the length
/// filled in.
fn framed(out: &mut Vec<u8>, command: u16, write: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.put_u16_le(command);
    out.put_u16_le(0);
    out.put_u32_le(0);
    write(out);
    // INVARIANT: a PDU body is bounded by what the session encodes (a
    // tile's bitmap, at most 16 monitors, 5462 slots), far below 4 GiB.
    let length = (out.len() - start) as u32;
    out[start + 4..start + 8].copy_from_slice(&length.to_le_bytes());
}

/// Splits one PDU off `message`: its command, its body (pduLength bounds
/// it) and the rest of the message.
fn split_pdu<'a>(
    message: &'a [u8],
    context: &'static str,
) -> Result<(u16, ReadCursor<'a>, &'a [u8]), DecodeError> {
    let mut cursor = ReadCursor::new(message, context);
    let command = cursor.read_u16_le()?;
    let _flags = cursor.read_u16_le()?;
    let length = cursor.read_u32_le()? as usize;
    if length < HEADER_SIZE {
        return Err(cursor.invalid("pduLength", "shorter than the header"));
    }
    if length > message.len() {
        return Err(DecodeError::Truncated {
            context,
            needed: length,
            available: message.len(),
        });
    }
    let body = ReadCursor::new(&message[HEADER_SIZE..length], context);
    Ok((command, body, &message[length..]))
}

impl<'a> ServerPdu<'a> {
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::WireToSurface1 {
                surface_id,
                codec_id,
                pixel_format,
                destination,
                bitmap_data,
            } => framed(out, command::WIRE_TO_SURFACE_1, |out| {
                out.put_u16_le(*surface_id);
                out.put_u16_le(*codec_id);
                out.put_u8(*pixel_format);
                put_rect(out, *destination);
                // INVARIANT: see `framed`.
                out.put_u32_le(bitmap_data.len() as u32);
                out.extend_from_slice(bitmap_data);
            }),
            Self::SolidFill {
                surface_id,
                color,
                rects,
            } => framed(out, command::SOLID_FILL, |out| {
                out.put_u16_le(*surface_id);
                out.extend_from_slice(&[color.b, color.g, color.r, color.xa]);
                // INVARIANT: the session fills at most a frame's tiles.
                out.put_u16_le(rects.len() as u16);
                for rect in rects {
                    put_rect(out, *rect);
                }
            }),
            Self::SurfaceToSurface {
                source_surface_id,
                destination_surface_id,
                source,
                destinations,
            } => framed(out, command::SURFACE_TO_SURFACE, |out| {
                out.put_u16_le(*source_surface_id);
                out.put_u16_le(*destination_surface_id);
                put_rect(out, *source);
                put_points(out, destinations);
            }),
            Self::SurfaceToCache {
                surface_id,
                cache_key,
                cache_slot,
                source,
            } => framed(out, command::SURFACE_TO_CACHE, |out| {
                out.put_u16_le(*surface_id);
                out.put_u64_le(*cache_key);
                out.put_u16_le(*cache_slot);
                put_rect(out, *source);
            }),
            Self::CacheToSurface {
                cache_slot,
                surface_id,
                destinations,
            } => framed(out, command::CACHE_TO_SURFACE, |out| {
                out.put_u16_le(*cache_slot);
                out.put_u16_le(*surface_id);
                put_points(out, destinations);
            }),
            Self::EvictCacheEntry { cache_slot } => {
                framed(out, command::EVICT_CACHE_ENTRY, |out| {
                    out.put_u16_le(*cache_slot)
                })
            }
            Self::CreateSurface {
                surface_id,
                width,
                height,
                pixel_format,
            } => framed(out, command::CREATE_SURFACE, |out| {
                out.put_u16_le(*surface_id);
                out.put_u16_le(*width);
                out.put_u16_le(*height);
                out.put_u8(*pixel_format);
            }),
            Self::DeleteSurface { surface_id } => framed(out, command::DELETE_SURFACE, |out| {
                out.put_u16_le(*surface_id)
            }),
            Self::StartFrame {
                timestamp,
                frame_id,
            } => framed(out, command::START_FRAME, |out| {
                out.put_u32_le(*timestamp);
                out.put_u32_le(*frame_id);
            }),
            Self::EndFrame { frame_id } => {
                framed(out, command::END_FRAME, |out| out.put_u32_le(*frame_id))
            }
            Self::ResetGraphics {
                width,
                height,
                monitors,
            } => framed(out, command::RESET_GRAPHICS, |out| {
                let start = out.len() - HEADER_SIZE;
                out.put_u32_le(*width);
                out.put_u32_le(*height);
                let monitors = &monitors[..monitors.len().min(MAX_MONITORS)];
                out.put_u32_le(monitors.len() as u32);
                for monitor in monitors {
                    out.put_i32_le(monitor.left);
                    out.put_i32_le(monitor.top);
                    out.put_i32_le(monitor.right);
                    out.put_i32_le(monitor.bottom);
                    out.put_u32_le(u32::from(monitor.primary));
                }
                out.resize(start + RESET_GRAPHICS_SIZE, 0);
            }),
            Self::MapSurfaceToOutput {
                surface_id,
                origin_x,
                origin_y,
            } => framed(out, command::MAP_SURFACE_TO_OUTPUT, |out| {
                out.put_u16_le(*surface_id);
                out.put_u16_le(0);
                out.put_u32_le(*origin_x);
                out.put_u32_le(*origin_y);
            }),
            Self::CacheImportReply { cache_slots } => {
                framed(out, command::CACHE_IMPORT_REPLY, |out| {
                    let slots = &cache_slots[..cache_slots.len().min(MAX_CACHE_ENTRIES)];
                    out.put_u16_le(slots.len() as u16);
                    for slot in slots {
                        out.put_u16_le(*slot);
                    }
                })
            }
            Self::CapsConfirm(set) => framed(out, command::CAPS_CONFIRM, |out| set.encode(out)),
        }
    }

    /// Decodes one PDU off `message`; returns it and the bytes after it.
    /// The client's view, for tests and fuzzing.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn decode(message: &'a [u8]) -> Result<(Self, &'a [u8]), DecodeError> {
        let (command, mut cursor, rest) = split_pdu(message, "egfx server pdu")?;
        let pdu = match command {
            command::WIRE_TO_SURFACE_1 => {
                let surface_id = cursor.read_u16_le()?;
                let codec_id = cursor.read_u16_le()?;
                let pixel_format = cursor.read_u8()?;
                let destination = read_rect(&mut cursor)?;
                let length = cursor.read_u32_le()? as usize;
                Self::WireToSurface1 {
                    surface_id,
                    codec_id,
                    pixel_format,
                    destination,
                    bitmap_data: cursor.read_slice(length)?,
                }
            }
            command::SOLID_FILL => {
                let surface_id = cursor.read_u16_le()?;
                let [b, g, r, xa] = cursor.read_array::<4>()?;
                let count = usize::from(cursor.read_u16_le()?);
                cursor.ensure(count * 8)?;
                let rects = (0..count)
                    .map(|_| read_rect(&mut cursor))
                    .collect::<Result<_, _>>()?;
                Self::SolidFill {
                    surface_id,
                    color: Color32 { b, g, r, xa },
                    rects,
                }
            }
            command::SURFACE_TO_SURFACE => Self::SurfaceToSurface {
                source_surface_id: cursor.read_u16_le()?,
                destination_surface_id: cursor.read_u16_le()?,
                source: read_rect(&mut cursor)?,
                destinations: read_points(&mut cursor)?,
            },
            command::SURFACE_TO_CACHE => Self::SurfaceToCache {
                surface_id: cursor.read_u16_le()?,
                cache_key: cursor.read_u64_le()?,
                cache_slot: cursor.read_u16_le()?,
                source: read_rect(&mut cursor)?,
            },
            command::CACHE_TO_SURFACE => Self::CacheToSurface {
                cache_slot: cursor.read_u16_le()?,
                surface_id: cursor.read_u16_le()?,
                destinations: read_points(&mut cursor)?,
            },
            command::EVICT_CACHE_ENTRY => Self::EvictCacheEntry {
                cache_slot: cursor.read_u16_le()?,
            },
            command::CREATE_SURFACE => Self::CreateSurface {
                surface_id: cursor.read_u16_le()?,
                width: cursor.read_u16_le()?,
                height: cursor.read_u16_le()?,
                pixel_format: cursor.read_u8()?,
            },
            command::DELETE_SURFACE => Self::DeleteSurface {
                surface_id: cursor.read_u16_le()?,
            },
            command::START_FRAME => Self::StartFrame {
                timestamp: cursor.read_u32_le()?,
                frame_id: cursor.read_u32_le()?,
            },
            command::END_FRAME => Self::EndFrame {
                frame_id: cursor.read_u32_le()?,
            },
            command::RESET_GRAPHICS => {
                let width = cursor.read_u32_le()?;
                let height = cursor.read_u32_le()?;
                let count = cursor.read_u32_le()? as usize;
                if count > MAX_MONITORS {
                    return Err(cursor.invalid("monitorCount", "more than 16"));
                }
                let monitors = (0..count)
                    .map(|_| {
                        Ok(MonitorDef {
                            left: cursor.read_u32_le()? as i32,
                            top: cursor.read_u32_le()? as i32,
                            right: cursor.read_u32_le()? as i32,
                            bottom: cursor.read_u32_le()? as i32,
                            primary: cursor.read_u32_le()? & 1 != 0,
                        })
                    })
                    .collect::<Result<_, DecodeError>>()?;
                Self::ResetGraphics {
                    width,
                    height,
                    monitors,
                }
            }
            command::MAP_SURFACE_TO_OUTPUT => {
                let surface_id = cursor.read_u16_le()?;
                cursor.skip(2)?;
                Self::MapSurfaceToOutput {
                    surface_id,
                    origin_x: cursor.read_u32_le()?,
                    origin_y: cursor.read_u32_le()?,
                }
            }
            command::CACHE_IMPORT_REPLY => {
                let count = usize::from(cursor.read_u16_le()?);
                if count > MAX_CACHE_ENTRIES {
                    return Err(cursor.invalid("importedEntriesCount", "more than 5462"));
                }
                cursor.ensure(count * 2)?;
                Self::CacheImportReply {
                    cache_slots: (0..count)
                        .map(|_| cursor.read_u16_le())
                        .collect::<Result<_, _>>()?,
                }
            }
            command::CAPS_CONFIRM => Self::CapsConfirm(CapabilitySet::decode(&mut cursor)?),
            other => {
                return Err(DecodeError::Unexpected {
                    context: "egfx server pdu",
                    what: "cmdId",
                    value: u32::from(other),
                });
            }
        };
        Ok((pdu, rest))
    }
}

/// A PDU the client sends. Clients send them neither segmented nor
/// compressed, one or more to a DVC message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientPdu {
    /// 2.2.2.18
    CapsAdvertise(Vec<CapabilitySet>),
    /// 2.2.2.13
    FrameAcknowledge {
        queue_depth: u32,
        frame_id: u32,
        total_frames_decoded: u32,
    },
    /// 2.2.2.21
    QoeFrameAcknowledge {
        frame_id: u32,
        timestamp: u32,
        time_diff_se: u16,
        time_diff_edr: u16,
    },
    /// 2.2.2.16
    CacheImportOffer(Vec<CacheEntryMetadata>),
}

impl ClientPdu {
    /// Decodes one PDU off `message`; returns it and the bytes after it.
    /// Bytes inside pduLength after the fields are ignored (room for
    /// fields a later version adds, as Windows reads them); a length that
    /// does not hold the fields is an error.
    pub fn decode(message: &[u8]) -> Result<(Self, &[u8]), DecodeError> {
        let (command, mut cursor, rest) = split_pdu(message, "egfx client pdu")?;
        let pdu = match command {
            command::CAPS_ADVERTISE => {
                let count = usize::from(cursor.read_u16_le()?);
                // Each set is at least 8 bytes: a count the body cannot
                // hold is refused before anything is allocated.
                cursor.ensure(count * 8)?;
                Self::CapsAdvertise(
                    (0..count)
                        .map(|_| CapabilitySet::decode(&mut cursor))
                        .collect::<Result<_, _>>()?,
                )
            }
            command::FRAME_ACKNOWLEDGE => Self::FrameAcknowledge {
                queue_depth: cursor.read_u32_le()?,
                frame_id: cursor.read_u32_le()?,
                total_frames_decoded: cursor.read_u32_le()?,
            },
            command::QOE_FRAME_ACKNOWLEDGE => Self::QoeFrameAcknowledge {
                frame_id: cursor.read_u32_le()?,
                timestamp: cursor.read_u32_le()?,
                time_diff_se: cursor.read_u16_le()?,
                time_diff_edr: cursor.read_u16_le()?,
            },
            command::CACHE_IMPORT_OFFER => {
                let count = usize::from(cursor.read_u16_le()?);
                if count > MAX_CACHE_ENTRIES {
                    return Err(cursor.invalid("cacheEntriesCount", "more than 5462"));
                }
                cursor.ensure(count * 12)?;
                Self::CacheImportOffer(
                    (0..count)
                        .map(|_| {
                            Ok(CacheEntryMetadata {
                                cache_key: cursor.read_u64_le()?,
                                bitmap_length: cursor.read_u32_le()?,
                            })
                        })
                        .collect::<Result<_, DecodeError>>()?,
                )
            }
            other => {
                return Err(DecodeError::Unexpected {
                    context: "egfx client pdu",
                    what: "cmdId",
                    value: u32::from(other),
                });
            }
        };
        Ok((pdu, rest))
    }

    /// Every PDU of one DVC message, in order.
    pub fn decode_all(mut message: &[u8]) -> Result<Vec<Self>, DecodeError> {
        let mut pdus = Vec::new();
        while !message.is_empty() {
            let (pdu, rest) = Self::decode(message)?;
            pdus.push(pdu);
            message = rest;
        }
        Ok(pdus)
    }

    #[cfg(any(test, feature = "fuzzing"))]
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::CapsAdvertise(sets) => framed(out, command::CAPS_ADVERTISE, |out| {
                out.put_u16_le(sets.len() as u16);
                for set in sets {
                    set.encode(out);
                }
            }),
            Self::FrameAcknowledge {
                queue_depth,
                frame_id,
                total_frames_decoded,
            } => framed(out, command::FRAME_ACKNOWLEDGE, |out| {
                out.put_u32_le(*queue_depth);
                out.put_u32_le(*frame_id);
                out.put_u32_le(*total_frames_decoded);
            }),
            Self::QoeFrameAcknowledge {
                frame_id,
                timestamp,
                time_diff_se,
                time_diff_edr,
            } => framed(out, command::QOE_FRAME_ACKNOWLEDGE, |out| {
                out.put_u32_le(*frame_id);
                out.put_u32_le(*timestamp);
                out.put_u16_le(*time_diff_se);
                out.put_u16_le(*time_diff_edr);
            }),
            Self::CacheImportOffer(entries) => framed(out, command::CACHE_IMPORT_OFFER, |out| {
                out.put_u16_le(entries.len() as u16);
                for entry in entries {
                    out.put_u64_le(entry.cache_key);
                    out.put_u32_le(entry.bitmap_length);
                }
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        text.split_whitespace()
            .map(|byte| u8::from_str_radix(byte, 16).unwrap())
            .collect()
    }

    fn encoded(pdu: &ServerPdu<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        pdu.encode(&mut out);
        let (again, rest) = ServerPdu::decode(&out).expect("decodes");
        assert!(rest.is_empty());
        assert_eq!(&again, pdu);
        out
    }

    // The byte strings below are the field tables of 2.2.2.x laid out by
    // hand: header (cmdId, flags 0, pduLength), then each field.

    #[test]
    fn caps_confirm_8_1_with_avc420() {
        let pdu = ServerPdu::CapsConfirm(CapabilitySet::with_flags(
            version::V8_1,
            caps_flag::AVC420_ENABLED,
        ));
        assert_eq!(
            encoded(&pdu),
            hex("13 00 00 00 14 00 00 00  05 01 08 00  04 00 00 00  10 00 00 00")
        );
    }

    #[test]
    fn caps_confirm_10_1_echoes_its_reserved_bytes() {
        let set = CapabilitySet {
            version: version::V10_1,
            data: vec![0; 16],
        };
        assert_eq!(set.flags(), 0);
        let bytes = encoded(&ServerPdu::CapsConfirm(set));
        assert_eq!(bytes.len(), 8 + 8 + 16);
        assert_eq!(&bytes[8..16], &hex("00 01 0a 00 10 00 00 00")[..]);
    }

    #[test]
    fn surfaces_and_frames() {
        assert_eq!(
            encoded(&ServerPdu::CreateSurface {
                surface_id: 1,
                width: 1024,
                height: 768,
                pixel_format: pixel_format::XRGB_8888,
            }),
            hex("09 00 00 00 0f 00 00 00  01 00  00 04  00 03  20")
        );
        assert_eq!(
            encoded(&ServerPdu::MapSurfaceToOutput {
                surface_id: 1,
                origin_x: 0,
                origin_y: 0,
            }),
            hex("0f 00 00 00 14 00 00 00  01 00 00 00  00 00 00 00  00 00 00 00")
        );
        assert_eq!(
            encoded(&ServerPdu::DeleteSurface { surface_id: 7 }),
            hex("0a 00 00 00 0a 00 00 00  07 00")
        );
        assert_eq!(
            encoded(&ServerPdu::StartFrame {
                timestamp: 0x0102_0304,
                frame_id: 9,
            }),
            hex("0b 00 00 00 10 00 00 00  04 03 02 01  09 00 00 00")
        );
        assert_eq!(
            encoded(&ServerPdu::EndFrame { frame_id: 9 }),
            hex("0c 00 00 00 0c 00 00 00  09 00 00 00")
        );
    }

    #[test]
    fn reset_graphics_is_340_bytes() {
        let bytes = encoded(&ServerPdu::ResetGraphics {
            width: 1920,
            height: 1080,
            monitors: vec![MonitorDef {
                left: 0,
                top: 0,
                right: 1919,
                bottom: 1079,
                primary: true,
            }],
        });
        assert_eq!(bytes.len(), 340);
        assert_eq!(
            &bytes[..40],
            &hex(
                "0e 00 00 00 54 01 00 00  80 07 00 00  38 04 00 00  01 00 00 00  \
                  00 00 00 00  00 00 00 00  7f 07 00 00  37 04 00 00  01 00 00 00"
            )[..]
        );
        assert!(bytes[40..].iter().all(|&byte| byte == 0));
    }

    #[test]
    fn commands() {
        assert_eq!(
            encoded(&ServerPdu::WireToSurface1 {
                surface_id: 1,
                codec_id: codec::PLANAR,
                pixel_format: pixel_format::XRGB_8888,
                destination: Rect16 {
                    left: 64,
                    top: 0,
                    right: 128,
                    bottom: 64
                },
                bitmap_data: &[0xAA, 0xBB],
            }),
            hex(
                "01 00 00 00 1b 00 00 00  01 00  0a 00  20  40 00 00 00 80 00 40 00  \
                 02 00 00 00  aa bb"
            )
        );
        assert_eq!(
            encoded(&ServerPdu::SolidFill {
                surface_id: 1,
                color: Color32 {
                    b: 1,
                    g: 2,
                    r: 3,
                    xa: 0xFF
                },
                rects: vec![Rect16 {
                    left: 0,
                    top: 0,
                    right: 64,
                    bottom: 64
                }],
            }),
            hex("04 00 00 00 18 00 00 00  01 00  01 02 03 ff  01 00  00 00 00 00 40 00 40 00")
        );
        assert_eq!(
            encoded(&ServerPdu::SurfaceToSurface {
                source_surface_id: 1,
                destination_surface_id: 1,
                source: Rect16 {
                    left: 0,
                    top: 10,
                    right: 100,
                    bottom: 110
                },
                destinations: vec![Point16 { x: 0, y: 0 }],
            }),
            hex(
                "05 00 00 00 1a 00 00 00  01 00 01 00  00 00 0a 00 64 00 6e 00  01 00  00 00 00 00"
            )
        );
        assert_eq!(
            encoded(&ServerPdu::SurfaceToCache {
                surface_id: 1,
                cache_key: 0x1122_3344_5566_7788,
                cache_slot: 3,
                source: Rect16 {
                    left: 0,
                    top: 0,
                    right: 64,
                    bottom: 64
                },
            }),
            hex(
                "06 00 00 00 1c 00 00 00  01 00  88 77 66 55 44 33 22 11  03 00  00 00 00 00 40 00 40 00"
            )
        );
        assert_eq!(
            encoded(&ServerPdu::CacheToSurface {
                cache_slot: 3,
                surface_id: 1,
                destinations: vec![Point16 { x: 64, y: 128 }],
            }),
            hex("07 00 00 00 12 00 00 00  03 00  01 00  01 00  40 00 80 00")
        );
        assert_eq!(
            encoded(&ServerPdu::EvictCacheEntry { cache_slot: 3 }),
            hex("08 00 00 00 0a 00 00 00  03 00")
        );
        assert_eq!(
            encoded(&ServerPdu::CacheImportReply {
                cache_slots: vec![1, 2]
            }),
            hex("11 00 00 00 0e 00 00 00  02 00  01 00 02 00")
        );
    }

    #[test]
    fn client_pdus_decode() {
        // xfreerdp /gfx:AVC420's advertisement: 8.0 and 8.1 (flags 0x13).
        let advertise = hex(
            "12 00 00 00 22 00 00 00  02 00  04 00 08 00 04 00 00 00 00 00 00 00  \
             05 01 08 00 04 00 00 00 13 00 00 00",
        );
        let (pdu, rest) = ClientPdu::decode(&advertise).unwrap();
        assert!(rest.is_empty());
        let ClientPdu::CapsAdvertise(sets) = &pdu else {
            panic!("{pdu:?}");
        };
        assert_eq!(sets.len(), 2);
        assert_eq!(sets[1].version, version::V8_1);
        assert_eq!(sets[1].flags(), 0x13);
        let mut again = Vec::new();
        pdu.encode(&mut again);
        assert_eq!(again, advertise);

        let acknowledge = hex("0d 00 00 00 14 00 00 00  ff ff ff ff  05 00 00 00  06 00 00 00");
        let qoe = hex("16 00 00 00 14 00 00 00  05 00 00 00  10 00 00 00  01 00 02 00");
        let mut both = acknowledge.clone();
        both.extend_from_slice(&qoe);
        assert_eq!(
            ClientPdu::decode_all(&both).unwrap(),
            vec![
                ClientPdu::FrameAcknowledge {
                    queue_depth: SUSPEND_FRAME_ACKNOWLEDGEMENT,
                    frame_id: 5,
                    total_frames_decoded: 6,
                },
                ClientPdu::QoeFrameAcknowledge {
                    frame_id: 5,
                    timestamp: 16,
                    time_diff_se: 1,
                    time_diff_edr: 2,
                },
            ]
        );

        let offer = hex("10 00 00 00 16 00 00 00  01 00  01 00 00 00 00 00 00 00  00 40 00 00");
        assert_eq!(
            ClientPdu::decode_all(&offer).unwrap(),
            vec![ClientPdu::CacheImportOffer(vec![CacheEntryMetadata {
                cache_key: 1,
                bitmap_length: 0x4000,
            }])]
        );
    }

    #[test]
    fn bad_client_pdus_get_typed_errors() {
        let truncated =
            |bytes: &[u8]| matches!(ClientPdu::decode(bytes), Err(DecodeError::Truncated { .. }));
        // The header cut short, a pduLength past the message, a body too
        // short for its fields.
        assert!(truncated(&hex("0d 00 00 00 14 00")));
        assert!(truncated(&hex("0d 00 00 00 14 00 00 00  00 00 00 00")));
        assert!(truncated(&hex(
            "0d 00 00 00 0c 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00"
        )));
        // A pduLength shorter than the header.
        assert!(matches!(
            ClientPdu::decode(&hex("0d 00 00 00 04 00 00 00")),
            Err(DecodeError::InvalidField {
                field: "pduLength",
                ..
            })
        ));
        // A command the client does not send.
        assert!(matches!(
            ClientPdu::decode(&hex("0b 00 00 00 08 00 00 00")),
            Err(DecodeError::Unexpected { value: 0x0B, .. })
        ));
        // More capability sets than the body holds; a set longer than it.
        assert!(truncated(&hex("12 00 00 00 0a 00 00 00  ff ff")));
        assert!(truncated(&hex(
            "12 00 00 00 12 00 00 00  01 00  04 00 08 00 ff 00 00 00"
        )));
        // A cache offer over 5462 entries.
        assert!(matches!(
            ClientPdu::decode(&hex("10 00 00 00 0a 00 00 00  57 15")),
            Err(DecodeError::InvalidField {
                field: "cacheEntriesCount",
                ..
            })
        ));
        // Bytes after the fields, inside pduLength, are tolerated.
        let padded = hex("0d 00 00 00 16 00 00 00  00 00 00 00  01 00 00 00  01 00 00 00  aa bb");
        let (pdu, rest) = ClientPdu::decode(&padded).unwrap();
        assert!(rest.is_empty());
        assert!(matches!(
            pdu,
            ClientPdu::FrameAcknowledge { frame_id: 1, .. }
        ));
    }

    #[test]
    fn rectangles_must_not_be_inverted() {
        let bytes = hex(
            "05 00 00 00 1a 00 00 00  01 00 01 00  64 00 0a 00 00 00 6e 00  01 00  00 00 00 00",
        );
        assert!(matches!(
            ServerPdu::decode(&bytes),
            Err(DecodeError::InvalidField {
                context: "egfx server pdu",
                ..
            })
        ));
    }
}
