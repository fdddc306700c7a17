//! Recording a session at the engine boundary, and replaying it.
//!
//! A recording holds what the protocol layer saw **above TLS**: every frame
//! of plaintext the engine processed with its time, every timeout, end of
//! stream and application command, and every plaintext byte and event the
//! engine produced. TLS records are not kept (their keys come from the
//! crypto provider, not the seed), so a replay runs the same engine without
//! TLS and compares plaintext.
//!
//! Secrets: the Client Info password is overwritten with zeros before the
//! frame is written, and the verdict of the password check is recorded
//! instead, so a replay reproduces the logon without the password. Under
//! NLA the password only travels sealed inside CredSSP (with NTLM keys that
//! need the account's NT hash to derive), so the replay needs the same
//! credential validator, and the recording never holds the password in clear.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BufMut;

use crate::api::command::ChannelCommand;
use crate::api::config::{
    BitmapCodecs, Config, DesktopSize, SecurityConfig, SoundConfig, SurfaceCodec, Validator,
};
use crate::api::event::{Graphics, Rectangle};
use crate::api::pointer::ColorPointer;
use crate::api::pointer::PointerCommand;
use crate::api::pointer::PointerImage;
use crate::api::sound::AudioFormat;
use crate::api::update::BitmapUpdate;
use crate::engine::Engine;
use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;

const MAGIC: &[u8; 8] = b"RDPSREC1";

const TAG_FRAME: u8 = 1;
const TAG_EOF: u8 = 2;
const TAG_TIMEOUT: u8 = 3;
const TAG_BITMAP: u8 = 4;
const TAG_CLOSE: u8 = 5;
const TAG_OUTPUT: u8 = 6;
const TAG_EVENT: u8 = 7;
const TAG_VERDICT: u8 = 8;
const TAG_POINTER: u8 = 9;
const TAG_POINTER_COMMAND: u8 = 10;
const TAG_ECHO: u8 = 11;
const TAG_CHANNEL_COMMAND: u8 = 12;
/// Damage rectangles for the bitmap that follows.
const TAG_DAMAGE: u8 = 13;
const TAG_COLOR_POINTER: u8 = 14;
const TAG_GRAPHICS: u8 = 15;
const TAG_RESIZE: u8 = 16;

/// A surface codec's byte in the recording.
fn codec_byte(codec: SurfaceCodec) -> u8 {
    match codec {
        SurfaceCodec::RemoteFx => 0,
        SurfaceCodec::Qoiz => 1,
        SurfaceCodec::Qoi => 2,
    }
}

fn read_codec(cursor: &mut ReadCursor<'_>) -> Result<SurfaceCodec, DecodeError> {
    Ok(match cursor.read_u8()? {
        0 => SurfaceCodec::RemoteFx,
        1 => SurfaceCodec::Qoiz,
        2 => SurfaceCodec::Qoi,
        _ => return Err(cursor.invalid("surface codec", "unknown")),
    })
}

const FLAG_TLS: u8 = 1;
const FLAG_NLA: u8 = 2;
const FLAG_TLS_WITHOUT_NLA: u8 = 4;
const FLAG_PLAIN_RDP: u8 = 8;
const FLAG_CLIPBOARD: u8 = 16;

/// What a replay needs to rebuild the engine's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplaySetup {
    /// The public key CredSSP bound to in the recorded session.
    pub public_key: Vec<u8>,
}

/// Collects a recording; lives in the engine's transport when enabled.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    buffer: Vec<u8>,
    /// The last frame is held back so its secrets can still be redacted.
    pending_frame: Option<(Duration, Vec<u8>)>,
}

impl Recorder {
    pub fn new(config: &Config, seed: &[u8; 32]) -> Self {
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
        if security.tls.is_some() {
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
        let public_key = security
            .tls
            .as_ref()
            .map(|tls| tls.public_key())
            .unwrap_or(&[]);
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
        let mut buffer = Vec::with_capacity(64 * 1024);
        buffer.put_slice(MAGIC);
        buffer.put_u32_le(header.len() as u32);
        buffer.put_slice(&header);
        Self {
            buffer,
            pending_frame: None,
        }
    }

    fn flush_frame(&mut self) {
        if let Some((at, frame)) = self.pending_frame.take() {
            self.buffer.put_u8(TAG_FRAME);
            self.buffer.put_u64_le(at.as_nanos() as u64);
            self.buffer.put_u32_le(frame.len() as u32);
            self.buffer.put_slice(&frame);
        }
    }

    pub fn frame(&mut self, at: Duration, frame: &[u8]) {
        self.flush_frame();
        self.pending_frame = Some((at, frame.to_vec()));
    }

    /// Zeroes `secret` where it occurs in the frame being processed.
    pub fn redact(&mut self, secret: &[u8]) {
        if secret.is_empty() {
            return;
        }
        if let Some((_, frame)) = &mut self.pending_frame
            && let Some(start) = frame
                .windows(secret.len())
                .position(|window| window == secret)
        {
            frame[start..start + secret.len()].fill(0);
        }
    }

    pub fn verdict(&mut self, accepted: bool) {
        self.flush_frame();
        self.buffer.put_u8(TAG_VERDICT);
        self.buffer.put_u8(u8::from(accepted));
    }

    fn moment(&mut self, tag: u8, at: Duration) {
        self.flush_frame();
        self.buffer.put_u8(tag);
        self.buffer.put_u64_le(at.as_nanos() as u64);
    }

    pub fn eof(&mut self, at: Duration) {
        self.moment(TAG_EOF, at);
    }

    pub fn timeout(&mut self, at: Duration) {
        self.moment(TAG_TIMEOUT, at);
    }

    pub fn close(&mut self, at: Duration) {
        self.moment(TAG_CLOSE, at);
    }

    pub fn bitmap(&mut self, at: Duration, update: &BitmapUpdate<'_>) {
        self.moment(TAG_BITMAP, at);
        self.buffer.put_u16_le(update.x);
        self.buffer.put_u16_le(update.y);
        self.buffer.put_u16_le(update.width);
        self.buffer.put_u16_le(update.height);
        // Only the rows the update covers, tightly packed.
        let row = usize::from(update.width) * BitmapUpdate::BYTES_PER_PIXEL;
        self.buffer
            .put_u32_le((row * usize::from(update.height)) as u32);
        for y in 0..usize::from(update.height) {
            let start = y * update.stride;
            self.buffer.put_slice(&update.data[start..start + row]);
        }
    }

    pub fn damage(&mut self, damage: &[Rectangle]) {
        self.flush_frame();
        self.buffer.put_u8(TAG_DAMAGE);
        self.buffer.put_u32_le(damage.len() as u32);
        for area in damage {
            for value in [area.left, area.top, area.right, area.bottom] {
                self.buffer.put_u16_le(value);
            }
        }
    }

    pub fn pointer(&mut self, image: &PointerImage<'_>) {
        self.flush_frame();
        self.buffer.put_u8(TAG_POINTER);
        for value in [image.width, image.height, image.hotspot_x, image.hotspot_y] {
            self.buffer.put_u16_le(value);
        }
        let len = usize::from(image.width) * usize::from(image.height) * 4;
        self.buffer.put_slice(&image.rgba[..len]);
    }

    pub fn color_pointer(&mut self, pointer: &ColorPointer<'_>) {
        self.flush_frame();
        self.buffer.put_u8(TAG_COLOR_POINTER);
        for value in [
            pointer.width,
            pointer.height,
            pointer.hotspot_x,
            pointer.hotspot_y,
        ] {
            self.buffer.put_u16_le(value);
        }
        let (width, height) = (usize::from(pointer.width), usize::from(pointer.height));
        self.buffer
            .put_slice(&pointer.xor_bgr[..width * 3 * height]);
        self.buffer
            .put_slice(&pointer.and_mask[..width.div_ceil(8) * height]);
    }

    pub fn pointer_command(&mut self, command: PointerCommand) {
        self.flush_frame();
        self.buffer.put_u8(TAG_POINTER_COMMAND);
        let (kind, a, b) = match command {
            PointerCommand::Position { x, y } => (0, x, y),
            PointerCommand::Hidden => (1, 0, 0),
            PointerCommand::Default => (2, 0, 0),
            PointerCommand::Cached(index) => (3, index, 0),
        };
        self.buffer.put_u8(kind);
        self.buffer.put_u16_le(a);
        self.buffer.put_u16_le(b);
    }

    pub fn graphics(&mut self, graphics: Graphics) {
        self.flush_frame();
        self.buffer.put_u8(TAG_GRAPHICS);
        match graphics {
            Graphics::Bitmaps => self.buffer.put_u8(0),
            Graphics::Surface(codec) => {
                self.buffer.put_u8(1);
                self.buffer.put_u8(codec_byte(codec));
            }
        }
    }

    pub fn resize(&mut self, size: DesktopSize) {
        self.flush_frame();
        self.buffer.put_u8(TAG_RESIZE);
        self.buffer.put_u16_le(size.width);
        self.buffer.put_u16_le(size.height);
    }

    pub fn command(&mut self, command: &ChannelCommand) {
        self.flush_frame();
        self.buffer.put_u8(TAG_CHANNEL_COMMAND);
        let mut bytes = Vec::new();
        command.encode(&mut bytes);
        self.buffer.put_u32_le(bytes.len() as u32);
        self.buffer.put_slice(&bytes);
    }

    pub fn echo(&mut self, at: Duration) {
        self.moment(TAG_ECHO, at);
    }

    pub fn output(&mut self, bytes: &[u8]) {
        self.flush_frame();
        self.buffer.put_u8(TAG_OUTPUT);
        self.buffer.put_u32_le(bytes.len() as u32);
        self.buffer.put_slice(bytes);
    }

    pub fn event(&mut self, text: &str) {
        self.flush_frame();
        self.buffer.put_u8(TAG_EVENT);
        self.buffer.put_u32_le(text.len() as u32);
        self.buffer.put_slice(text.as_bytes());
    }

    /// Moves the finished part of the recording into `out`.
    pub fn drain(&mut self, out: &mut Vec<u8>, include_pending: bool) -> Option<usize> {
        if include_pending {
            self.flush_frame();
        }
        if self.buffer.is_empty() {
            return None;
        }
        let len = self.buffer.len();
        out.append(&mut self.buffer);
        Some(len)
    }
}

/// How a replay differed from its recording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    #[error("recording is malformed: {0}")]
    Malformed(#[from] DecodeError),
    #[error("output differs at byte {offset} (recorded {recorded:?}, replayed {replayed:?})")]
    OutputDiverged {
        offset: usize,
        recorded: Option<u8>,
        replayed: Option<u8>,
    },
    #[error("event {index} differs: recorded {recorded:?}, replayed {replayed:?}")]
    EventDiverged {
        index: usize,
        recorded: Option<String>,
        replayed: Option<String>,
    },
}

/// What a successful replay checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    pub frames: usize,
    pub output_bytes: usize,
    pub events: usize,
}

/// Replays `recording` on a fresh engine with the recorded seed and
/// configuration, checking every output byte and event. `credentials` must
/// be the validator the session ran with when it used NLA.
pub fn replay(
    recording: &[u8],
    credentials: Option<Validator>,
) -> Result<ReplayReport, ReplayError> {
    let mut cursor = ReadCursor::new(recording, "recording");
    if &cursor.read_array::<8>()? != MAGIC {
        return Err(cursor.invalid("magic", "not an rdpserve recording").into());
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
    if !header.is_empty() {
        for _ in 0..header.read_u8()? {
            let len = usize::from(header.read_u8()?);
            static_channels.push(String::from_utf8_lossy(header.read_slice(len)?).into_owned());
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

    let security = SecurityConfig {
        tls: None,
        nla: flags & FLAG_NLA != 0,
        allow_tls_without_nla: flags & FLAG_TLS_WITHOUT_NLA != 0,
        allow_plain_rdp: flags & FLAG_PLAIN_RDP != 0,
        minimum_credssp_version,
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
    config.replay = (flags & FLAG_TLS != 0).then_some(ReplaySetup { public_key });

    let base = Instant::now();
    let mut engine = Engine::new(config, seed, base);
    let mut expected_output = Vec::new();
    let mut expected_events = Vec::new();
    let mut output = Vec::new();
    let mut events = Vec::new();
    let mut frames = 0;
    let mut scratch = Vec::new();
    let mut damage: Option<Vec<Rectangle>> = None;
    let at = |cursor: &mut ReadCursor<'_>| -> Result<Instant, DecodeError> {
        Ok(base + Duration::from_nanos(cursor.read_u64_le()?))
    };
    while !cursor.is_empty() {
        match cursor.read_u8()? {
            TAG_FRAME => {
                let now = at(&mut cursor)?;
                let len = cursor.read_u32_le()? as usize;
                let frame = cursor.read_slice(len)?;
                // A verdict recorded for this frame decides its password check.
                if cursor.rest().first() == Some(&TAG_VERDICT) {
                    cursor.read_u8()?;
                    engine.push_replayed_verdict(cursor.read_u8()? != 0);
                }
                engine.handle_input(now, frame);
                frames += 1;
            }
            TAG_EOF => engine.handle_eof(at(&mut cursor)?),
            TAG_TIMEOUT => engine.handle_timeout(at(&mut cursor)?),
            TAG_CLOSE => {
                at(&mut cursor)?;
                engine.close();
            }
            TAG_BITMAP => {
                at(&mut cursor)?;
                let x = cursor.read_u16_le()?;
                let y = cursor.read_u16_le()?;
                let width = cursor.read_u16_le()?;
                let height = cursor.read_u16_le()?;
                let len = cursor.read_u32_le()? as usize;
                let data = cursor.read_slice(len)?;
                // A rejected update was rejected when recorded too; the
                // output comparison catches any difference.
                let update = BitmapUpdate {
                    x,
                    y,
                    width,
                    height,
                    stride: usize::from(width) * BitmapUpdate::BYTES_PER_PIXEL,
                    data,
                };
                let _ = match damage.take() {
                    Some(damage) => engine.send_bitmap_damaged(&update, &damage),
                    None => engine.send_bitmap(&update),
                };
            }
            TAG_POINTER => {
                let width = cursor.read_u16_le()?;
                let height = cursor.read_u16_le()?;
                let hotspot_x = cursor.read_u16_le()?;
                let hotspot_y = cursor.read_u16_le()?;
                let rgba = cursor.read_slice(usize::from(width) * usize::from(height) * 4)?;
                let _ = engine.send_pointer(&PointerImage {
                    width,
                    height,
                    hotspot_x,
                    hotspot_y,
                    rgba,
                });
            }
            TAG_POINTER_COMMAND => {
                let kind = cursor.read_u8()?;
                let a = cursor.read_u16_le()?;
                let b = cursor.read_u16_le()?;
                let command = match kind {
                    0 => PointerCommand::Position { x: a, y: b },
                    1 => PointerCommand::Hidden,
                    2 => PointerCommand::Default,
                    3 => PointerCommand::Cached(a),
                    _ => return Err(cursor.invalid("pointer command", "unknown kind").into()),
                };
                let _ = engine.send_pointer_command(command);
            }
            TAG_ECHO => {
                let _ = engine.request_echo(at(&mut cursor)?);
            }
            TAG_GRAPHICS => {
                let graphics = match cursor.read_u8()? {
                    0 => Graphics::Bitmaps,
                    1 => Graphics::Surface(read_codec(&mut cursor)?),
                    _ => return Err(cursor.invalid("graphics", "unknown kind").into()),
                };
                let _ = engine.set_graphics(graphics);
            }
            TAG_RESIZE => {
                let width = cursor.read_u16_le()?;
                let height = cursor.read_u16_le()?;
                let _ = engine.resize(DesktopSize { width, height });
            }
            TAG_COLOR_POINTER => {
                let width = cursor.read_u16_le()?;
                let height = cursor.read_u16_le()?;
                let hotspot_x = cursor.read_u16_le()?;
                let hotspot_y = cursor.read_u16_le()?;
                let (w, h) = (usize::from(width), usize::from(height));
                let xor_bgr = cursor.read_slice(w * 3 * h)?;
                let and_mask = cursor.read_slice(w.div_ceil(8) * h)?;
                let _ = engine.send_color_pointer(&ColorPointer {
                    width,
                    height,
                    hotspot_x,
                    hotspot_y,
                    xor_bgr,
                    and_mask,
                });
            }
            TAG_DAMAGE => {
                let count = cursor.read_u32_le()? as usize;
                let mut areas = Vec::new();
                for _ in 0..count {
                    areas.push(Rectangle {
                        left: cursor.read_u16_le()?,
                        top: cursor.read_u16_le()?,
                        right: cursor.read_u16_le()?,
                        bottom: cursor.read_u16_le()?,
                    });
                }
                damage = Some(areas);
            }
            TAG_CHANNEL_COMMAND => {
                let len = cursor.read_u32_le()? as usize;
                let mut command = ReadCursor::new(cursor.read_slice(len)?, "recorded command");
                let _ = engine.command(ChannelCommand::decode(&mut command)?);
            }
            TAG_OUTPUT => {
                let len = cursor.read_u32_le()? as usize;
                expected_output.extend_from_slice(cursor.read_slice(len)?);
            }
            TAG_EVENT => {
                let len = cursor.read_u32_le()? as usize;
                expected_events.push(String::from_utf8_lossy(cursor.read_slice(len)?).into_owned());
            }
            TAG_VERDICT => {
                cursor.read_u8()?;
            }
            other => {
                return Err(DecodeError::Unexpected {
                    context: "recording",
                    what: "entry tag",
                    value: u32::from(other),
                }
                .into());
            }
        }
        while engine.poll_transmit(&mut scratch).is_some() {
            output.append(&mut scratch);
        }
        while let Some(event) = engine.poll_event() {
            events.push(format!("{event:?}"));
        }
    }
    if let Some(offset) = (0..output.len().max(expected_output.len()))
        .find(|&i| output.get(i) != expected_output.get(i))
    {
        return Err(ReplayError::OutputDiverged {
            offset,
            recorded: expected_output.get(offset).copied(),
            replayed: output.get(offset).copied(),
        });
    }
    if let Some(index) = (0..events.len().max(expected_events.len()))
        .find(|&i| events.get(i) != expected_events.get(i))
    {
        return Err(ReplayError::EventDiverged {
            index,
            recorded: expected_events.get(index).cloned(),
            replayed: events.get(index).cloned(),
        });
    }
    Ok(ReplayReport {
        frames,
        output_bytes: output.len(),
        events: events.len(),
    })
}

/// Nanoseconds since the Unix epoch of a wall-clock time (for file names).
pub fn unix_nanos(time: SystemTime) -> u128 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}
