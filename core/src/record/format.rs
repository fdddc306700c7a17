//! The recording's byte format: magic, header (seed and configuration) and
//! the tags of its entries. Entries after the header are a tag byte and the
//! entry's fields, little-endian.

use std::time::{Duration, UNIX_EPOCH};

use bytes::BufMut;

use crate::api::config::PipelineCodec;
use crate::api::config::{
    BitmapCodecs, Config, DesktopSize, SecurityConfig, SoundConfig, SurfaceCodec, Validator,
};
use crate::api::sound::AudioFormat;
use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;

pub const MAGIC: &[u8; 8] = b"RDPSREC1";

pub const TAG_FRAME: u8 = 1;
pub const TAG_EOF: u8 = 2;
pub const TAG_TIMEOUT: u8 = 3;
pub const TAG_BITMAP: u8 = 4;
pub const TAG_CLOSE: u8 = 5;
pub const TAG_OUTPUT: u8 = 6;
pub const TAG_EVENT: u8 = 7;
pub const TAG_VERDICT: u8 = 8;
pub const TAG_POINTER: u8 = 9;
pub const TAG_POINTER_COMMAND: u8 = 10;
pub const TAG_ECHO: u8 = 11;
pub const TAG_CHANNEL_COMMAND: u8 = 12;
/// Damage rectangles for the bitmap that follows.
pub const TAG_DAMAGE: u8 = 13;
pub const TAG_COLOR_POINTER: u8 = 14;
pub const TAG_GRAPHICS: u8 = 15;
pub const TAG_RESIZE: u8 = 16;
/// A bitmap in a pixel format other than B, G, R, X: the format's byte
/// after the time, then the fields of a TAG_BITMAP entry. B, G, R, X
/// bitmaps keep TAG_BITMAP, so their recordings stay as they were.
pub const TAG_BITMAP_FORMATTED: u8 = 17;
/// The cache slot the application chose for the pointer that follows
/// (TAG_POINTER or TAG_COLOR_POINTER); absent when the engine chose.
pub const TAG_POINTER_SLOT: u8 = 18;
/// An echo request with a payload: the time, the payload's length (u32)
/// and the payload. Requests without one keep TAG_ECHO.
pub const TAG_ECHO_PAYLOAD: u8 = 19;
/// `Engine::accept_connection`.
pub const TAG_ACCEPT_CONNECTION: u8 = 20;
/// `Engine::redirect`: the length (u32) and the Server Redirection Packet.
/// The one-time cookie stays in it: the recording replays the bytes the
/// client was sent, and the cookie is spent once the client logs on.
pub const TAG_REDIRECT: u8 = 21;
/// `Engine::send_avc420`: the region count (u32), each region (left, top,
/// right, bottom as u16, qp and quality as u8), the stream's length (u32)
/// and the stream.
pub const TAG_AVC420: u8 = 22;

const FLAG_TLS: u8 = 1;
const FLAG_NLA: u8 = 2;
const FLAG_TLS_WITHOUT_NLA: u8 = 4;
const FLAG_PLAIN_RDP: u8 = 8;
const FLAG_CLIPBOARD: u8 = 16;
/// In the second flags byte, appended after the frame acknowledgement limit.
const FLAG2_REQUIRE_NTLM_MIC: u8 = 1;
const FLAG2_ROUTE_AFTER_LOGON: u8 = 2;

/// A surface codec's byte in the recording.
pub fn codec_byte(codec: SurfaceCodec) -> u8 {
    match codec {
        SurfaceCodec::RemoteFx => 0,
        #[cfg(feature = "qoiz")]
        SurfaceCodec::Qoiz => 1,
        #[cfg(feature = "qoi")]
        SurfaceCodec::Qoi => 2,
    }
}

pub fn read_codec(cursor: &mut ReadCursor<'_>) -> Result<SurfaceCodec, DecodeError> {
    Ok(match cursor.read_u8()? {
        0 => SurfaceCodec::RemoteFx,
        #[cfg(feature = "qoiz")]
        1 => SurfaceCodec::Qoiz,
        #[cfg(feature = "qoi")]
        2 => SurfaceCodec::Qoi,
        // QOIZ or QOI when this build leaves it out: the session cannot be
        // replayed without its encoder.
        #[cfg(not(feature = "qoiz"))]
        1 => return Err(cursor.invalid("surface codec", "not built in")),
        #[cfg(not(feature = "qoi"))]
        2 => return Err(cursor.invalid("surface codec", "not built in")),
        _ => return Err(cursor.invalid("surface codec", "unknown")),
    })
}

/// The magic and header of a recording of a session with `config` and
/// `seed`. `served_key` is `Some` when the server offered TLS: the public
/// key of the certificate TLS served, which CredSSP bound to (empty when
/// no certificate was served).
pub fn encode_header(
    config: &Config,
    seed: &[u8; 32],
    served_key: Option<&[u8]>,
    out: &mut Vec<u8>,
) {
    let mut header = Vec::new();
    header.put_slice(seed);
    let wall_clock = config
        .wall_clock
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    header.put_u64_le(wall_clock.as_nanos() as u64);
    header.put_u16_le(config.desktop_size.width);
    header.put_u16_le(config.desktop_size.height);
    header.put_u32_le(config.max_request_size);
    header.put_u64_le(config.handshake_timeout.as_millis() as u64);
    header.put_u32_le(config.max_incoming_pdu as u32);
    let security = &config.security;
    let mut flags = 0;
    if served_key.is_some() {
        flags |= FLAG_TLS;
    }
    if security.nla {
        flags |= FLAG_NLA;
    }
    if security.allow_tls_without_nla {
        flags |= FLAG_TLS_WITHOUT_NLA;
    }
    if security.allow_plain_rdp {
        flags |= FLAG_PLAIN_RDP;
    }
    if config.clipboard {
        flags |= FLAG_CLIPBOARD;
    }
    header.put_u8(flags);
    header.put_u32_le(security.minimum_credssp_version);
    let public_key = served_key.unwrap_or(&[]);
    header.put_u16_le(public_key.len() as u16);
    header.put_slice(public_key);
    // Later additions; recordings from before them end here.
    header.put_u8(config.static_channels.len() as u8);
    for name in &config.static_channels {
        header.put_u8(name.len() as u8);
        header.put_slice(name.as_bytes());
    }
    match &config.sound {
        Some(sound) => {
            header.put_u8(1);
            header.put_u32_le(sound.max_in_flight as u32);
            header.put_u8(sound.formats.len() as u8);
            for format in &sound.formats {
                format.encode(&mut header);
            }
        }
        None => header.put_u8(0),
    }
    let codecs = config.bitmap_codecs.deduplicated();
    header.put_u8(codecs.len() as u8);
    for codec in codecs {
        header.put_u8(codec_byte(codec));
    }
    header.put_u32_le(config.max_unacknowledged_frames);
    // Added later still; recordings from before it end here.
    let mut more_flags = 0;
    if security.require_ntlm_mic {
        more_flags |= FLAG2_REQUIRE_NTLM_MIC;
    }
    if config.route_after_logon {
        more_flags |= FLAG2_ROUTE_AFTER_LOGON;
    }
    header.put_u8(more_flags);
    // Added after that.
    header.put_u64_le(config.first_bytes_timeout.as_millis() as u64);
    header.put_u64_le(
        config
            .idle_timeout
            .map_or(0, |idle| idle.as_millis() as u64),
    );
    header.put_u64_le(config.channel_memory_budget as u64);
    // Added with the application channels' size option.
    header.put_u64_le(config.max_channel_message as u64);
    // Added with the Graphics Pipeline: 0 not offered, else 1 + codec.
    header.put_u8(
        config
            .graphics_pipeline
            .map_or(0, |codec| 1 + codec.to_byte()),
    );
    // Added with scroll detection.
    header.put_u8(u8::from(config.scroll_detection));
    out.put_slice(MAGIC);
    out.put_u32_le(header.len() as u32);
    out.put_slice(&header);
}

/// What a recording's header says about the session.
#[derive(Debug)]
pub struct Header {
    pub seed: [u8; 32],
    /// The configuration to replay with (no TLS identity: replays run
    /// above TLS).
    pub config: Config,
    /// When the server offered TLS: the public key of the certificate it
    /// served, which CredSSP bound to (empty if none was served).
    pub public_key: Option<Vec<u8>>,
}

/// Reads the magic and header; the cursor is left at the first entry.
/// `credentials` become the replay configuration's validator.
pub fn decode_header(
    cursor: &mut ReadCursor<'_>,
    credentials: Option<Validator>,
) -> Result<Header, DecodeError> {
    if &cursor.read_array::<8>()? != MAGIC {
        return Err(cursor.invalid("magic", "not an rdpserve recording"));
    }
    let header_len = cursor.read_u32_le()? as usize;
    let mut header = ReadCursor::new(cursor.read_slice(header_len)?, "recording header");
    let seed = header.read_array::<32>()?;
    let wall_clock = UNIX_EPOCH + Duration::from_nanos(header.read_u64_le()?);
    let desktop_size = DesktopSize {
        width: header.read_u16_le()?,
        height: header.read_u16_le()?,
    };
    let max_request_size = header.read_u32_le()?;
    let handshake_timeout = Duration::from_millis(header.read_u64_le()?);
    let max_incoming_pdu = header.read_u32_le()? as usize;
    let flags = header.read_u8()?;
    let minimum_credssp_version = header.read_u32_le()?;
    let key_len = usize::from(header.read_u16_le()?);
    let public_key = header.read_slice(key_len)?.to_vec();
    let mut static_channels = Vec::new();
    let mut sound = None;
    // Recordings from before surface codecs offered none.
    let mut bitmap_codecs = BitmapCodecs::bitmaps_only();
    let mut max_unacknowledged_frames = 2;
    // Recordings from before the first-bytes deadline had none.
    let mut first_bytes_timeout = handshake_timeout;
    let mut idle_timeout = None;
    // Recordings from before the budget had none.
    let mut channel_memory_budget = usize::MAX;
    // Recordings from before the message cap was recorded had the default.
    let mut max_channel_message = Config::DEFAULT_MAX_CHANNEL_MESSAGE;
    if !header.is_empty() {
        for _ in 0..header.read_u8()? {
            let len = usize::from(header.read_u8()?);
            // A lossy conversion would write back a different name (and a
            // different length): what the header says must stay what it
            // reads as.
            let name = std::str::from_utf8(header.read_slice(len)?)
                .map_err(|_| header.invalid("static channel name", "not UTF-8"))?;
            static_channels.push(name.to_owned());
        }
        if header.read_u8()? == 1 {
            let max_in_flight = header.read_u32_le()? as usize;
            let mut formats = Vec::new();
            for _ in 0..header.read_u8()? {
                formats.push(AudioFormat::decode(&mut header)?);
            }
            sound = Some(SoundConfig {
                formats,
                max_in_flight,
            });
        }
        let mut surface = Vec::new();
        for _ in 0..header.read_u8()? {
            surface.push(read_codec(&mut header)?);
        }
        bitmap_codecs = BitmapCodecs { surface };
        max_unacknowledged_frames = header.read_u32_le()?;
    }
    // Recordings from before the second flags byte required no MIC.
    let more_flags = if header.is_empty() {
        0
    } else {
        header.read_u8()?
    };
    // Then the deadlines and the channel budget, added after it.
    if !header.is_empty() {
        first_bytes_timeout = Duration::from_millis(header.read_u64_le()?);
        idle_timeout = match header.read_u64_le()? {
            0 => None,
            millis => Some(Duration::from_millis(millis)),
        };
        if !header.is_empty() {
            channel_memory_budget = header.read_u64_le()? as usize;
        }
        if !header.is_empty() {
            max_channel_message = header.read_u64_le()? as usize;
        }
    }
    // Recordings from before the Graphics Pipeline did not offer it.
    let graphics_pipeline = if header.is_empty() {
        None
    } else {
        match header.read_u8()? {
            0 => None,
            byte => Some(
                PipelineCodec::from_byte(byte - 1)
                    .ok_or_else(|| header.invalid("graphics pipeline", "unknown codec"))?,
            ),
        }
    };
    // Recordings from before scroll detection were made without it.
    let scroll_detection = if header.is_empty() {
        false
    } else {
        match header.read_u8()? {
            0 => false,
            1 => true,
            _ => return Err(header.invalid("scroll detection", "not a flag")),
        }
    };

    let security = SecurityConfig {
        tls: None,
        nla: flags & FLAG_NLA != 0,
        allow_tls_without_nla: flags & FLAG_TLS_WITHOUT_NLA != 0,
        allow_plain_rdp: flags & FLAG_PLAIN_RDP != 0,
        minimum_credssp_version,
        require_ntlm_mic: more_flags & FLAG2_REQUIRE_NTLM_MIC != 0,
    };
    let mut config = Config::new(security, desktop_size);
    config.credentials = credentials;
    config.max_request_size = max_request_size;
    config.handshake_timeout = handshake_timeout;
    config.max_incoming_pdu = max_incoming_pdu;
    config.wall_clock = wall_clock;
    config.clipboard = flags & FLAG_CLIPBOARD != 0;
    config.static_channels = static_channels;
    config.sound = sound;
    config.bitmap_codecs = bitmap_codecs;
    config.max_unacknowledged_frames = max_unacknowledged_frames;
    config.first_bytes_timeout = first_bytes_timeout;
    config.idle_timeout = idle_timeout;
    config.channel_memory_budget = channel_memory_budget;
    config.max_channel_message = max_channel_message;
    config.route_after_logon = more_flags & FLAG2_ROUTE_AFTER_LOGON != 0;
    config.graphics_pipeline = graphics_pipeline;
    config.scroll_detection = scroll_detection;
    Ok(Header {
        seed,
        config,
        public_key: (flags & FLAG_TLS != 0).then_some(public_key),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_with(require_ntlm_mic: bool) -> Vec<u8> {
        let mut config = Config::new(
            SecurityConfig::plain_rdp(),
            DesktopSize {
                width: 640,
                height: 480,
            },
        );
        config.security.require_ntlm_mic = require_ntlm_mic;
        let mut out = Vec::new();
        encode_header(&config, &[7; 32], None, &mut out);
        out
    }

    fn decode(bytes: &[u8]) -> Header {
        decode_header(&mut ReadCursor::new(bytes, "test"), None).unwrap()
    }

    /// Found by the `recording` fuzz target: a name that is not UTF-8 was
    /// read lossily, so the header encoded again differently, with its
    /// later fields shifted.
    #[test]
    fn a_static_channel_name_that_is_not_utf8_is_refused() {
        let mut config = Config::new(
            SecurityConfig::plain_rdp(),
            DesktopSize {
                width: 640,
                height: 480,
            },
        );
        config.static_channels = vec!["okay".into()];
        let mut bytes = Vec::new();
        encode_header(&config, &[7; 32], None, &mut bytes);
        let at = bytes
            .windows(5)
            .position(|window| window == b"\x04okay")
            .expect("the name is in the header");
        bytes[at + 1..at + 5].copy_from_slice(&[0xFF; 4]);
        let error = decode_header(&mut ReadCursor::new(&bytes, "test"), None).unwrap_err();
        assert!(
            matches!(
                error,
                DecodeError::InvalidField {
                    field: "static channel name",
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn the_ntlm_mic_switch_round_trips() {
        assert!(decode(&header_with(true)).config.security.require_ntlm_mic);
        assert!(!decode(&header_with(false)).config.security.require_ntlm_mic);
    }

    /// A recording from before the second flags byte ends right after the
    /// frame acknowledgement limit; it still reads, without the switch.
    #[test]
    fn headers_from_before_the_second_flags_byte_still_read() {
        // The flags byte, the four later 8-byte fields, the graphics
        // pipeline's byte and the scroll detection's go.
        let mut old = header_with(true);
        old.truncate(old.len() - 35);
        let header_len = u32::from_le_bytes(old[8..12].try_into().unwrap()) - 35;
        old[8..12].copy_from_slice(&header_len.to_le_bytes());
        let header = decode(&old);
        assert!(!header.config.security.require_ntlm_mic);
        assert_eq!(header.config.max_unacknowledged_frames, 2);
        assert_eq!(header.seed, [7; 32]);
        // Without the deadlines, the replay keeps the old behaviour: no
        // first-bytes deadline before the handshake's, no budget.
        assert_eq!(
            header.config.first_bytes_timeout,
            header.config.handshake_timeout
        );
        assert_eq!(header.config.channel_memory_budget, usize::MAX);
        assert_eq!(
            header.config.max_channel_message,
            Config::DEFAULT_MAX_CHANNEL_MESSAGE
        );
    }

    /// Recordings from before the Graphics Pipeline replay without it;
    /// the setting round trips.
    #[test]
    fn the_graphics_pipeline_setting_round_trips() {
        let mut old = header_with(false);
        assert_eq!(
            decode(&old).config.graphics_pipeline,
            Some(PipelineCodec::Planar)
        );
        assert!(decode(&old).config.scroll_detection);
        // Without the scroll detection byte: recorded without it.
        old.truncate(old.len() - 1);
        let header_len = u32::from_le_bytes(old[8..12].try_into().unwrap()) - 1;
        old[8..12].copy_from_slice(&header_len.to_le_bytes());
        assert!(!decode(&old).config.scroll_detection);
        assert_eq!(
            decode(&old).config.graphics_pipeline,
            Some(PipelineCodec::Planar)
        );
        old.truncate(old.len() - 1);
        let header_len = u32::from_le_bytes(old[8..12].try_into().unwrap()) - 1;
        old[8..12].copy_from_slice(&header_len.to_le_bytes());
        assert_eq!(decode(&old).config.graphics_pipeline, None);
        let mut config = Config::new(
            SecurityConfig::plain_rdp(),
            DesktopSize {
                width: 640,
                height: 480,
            },
        );
        config.graphics_pipeline = Some(PipelineCodec::Uncompressed);
        let mut out = Vec::new();
        encode_header(&config, &[7; 32], None, &mut out);
        assert_eq!(
            decode(&out).config.graphics_pipeline,
            Some(PipelineCodec::Uncompressed)
        );
    }

    #[test]
    fn deadlines_and_the_channel_budget_round_trip() {
        let mut config = Config::new(
            SecurityConfig::plain_rdp(),
            DesktopSize {
                width: 640,
                height: 480,
            },
        );
        config.first_bytes_timeout = Duration::from_secs(3);
        config.idle_timeout = Some(Duration::from_secs(600));
        config.channel_memory_budget = 12345;
        config.max_channel_message = 4321;
        let mut out = Vec::new();
        encode_header(&config, &[7; 32], None, &mut out);
        let decoded = decode(&out).config;
        assert_eq!(decoded.first_bytes_timeout, Duration::from_secs(3));
        assert_eq!(decoded.idle_timeout, Some(Duration::from_secs(600)));
        assert_eq!(decoded.channel_memory_budget, 12345);
        assert_eq!(decoded.max_channel_message, 4321);
    }
}
