//! Writes a recording: the engine hands it every input, command, output
//! and event as they happen.

use std::time::Duration;

use bytes::BufMut;

use crate::api::command::Command;
use crate::api::config::Config;
use crate::api::event::Graphics;
use crate::api::update::{BitmapUpdate, PixelFormat};
use crate::record::channel_command::encode_channel_command;
use crate::record::format::*;

/// Collects a recording; the engine owns one when recording is on.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    buffer: Vec<u8>,
    /// The last frame is held back so its secrets can still be redacted.
    pending_frame: Option<(Duration, Vec<u8>)>,
    /// The seed, while the header waits for the served certificate's key.
    awaiting_header: Option<[u8; 32]>,
}

impl Recorder {
    /// A recording whose header is written now; `served_key` as in
    /// `encode_header`.
    pub fn new(config: &Config, seed: &[u8; 32], served_key: Option<&[u8]>) -> Self {
        let mut buffer = Vec::with_capacity(64 * 1024);
        encode_header(config, seed, served_key, &mut buffer);
        Self {
            buffer,
            pending_frame: None,
            awaiting_header: None,
        }
    }

    /// A recording of a session over TLS: the header names the key of the
    /// certificate served, known once the TLS handshake is done (a resolver
    /// may pick it per connection). Entries are kept until
    /// [`write_header`](Self::write_header).
    pub fn awaiting_header(seed: &[u8; 32]) -> Self {
        Self {
            buffer: Vec::with_capacity(64 * 1024),
            pending_frame: None,
            awaiting_header: Some(*seed),
        }
    }

    pub fn is_awaiting_header(&self) -> bool {
        self.awaiting_header.is_some()
    }

    /// Writes the header of an `awaiting_header` recording before the
    /// entries kept so far.
    pub fn write_header(&mut self, config: &Config, served_key: &[u8]) {
        if let Some(seed) = self.awaiting_header.take() {
            let mut header = Vec::with_capacity(self.buffer.capacity());
            encode_header(config, &seed, Some(served_key), &mut header);
            header.append(&mut self.buffer);
            self.buffer = header;
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

    /// A frame of plaintext the engine is about to process, `at` after the
    /// engine was built.
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

    /// The verdict of the password check of the frame being processed.
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

    /// An application command; `at` is when it was given (only echo
    /// requests depend on it).
    pub fn command(&mut self, at: Duration, command: &Command<'_>) {
        self.flush_frame();
        match command {
            Command::Bitmap { update, damage } => {
                if let Some(damage) = damage {
                    self.buffer.put_u8(TAG_DAMAGE);
                    self.buffer.put_u32_le(damage.len() as u32);
                    for area in damage.iter() {
                        for value in [area.left, area.top, area.right, area.bottom] {
                            self.buffer.put_u16_le(value);
                        }
                    }
                }
                // Commands other than echo take no time; the replay needs none.
                if update.format == PixelFormat::BgrX32 {
                    self.moment(TAG_BITMAP, Duration::ZERO);
                } else {
                    self.moment(TAG_BITMAP_FORMATTED, Duration::ZERO);
                    self.buffer.put_u8(update.format.to_byte());
                }
                self.bitmap(update);
            }
            Command::Pointer(image) => {
                self.pointer_slot(image.cache_index);
                self.buffer.put_u8(TAG_POINTER);
                for value in [image.width, image.height, image.hotspot_x, image.hotspot_y] {
                    self.buffer.put_u16_le(value);
                }
                let len = usize::from(image.width) * usize::from(image.height) * 4;
                self.buffer.put_slice(&image.rgba[..len]);
            }
            Command::ColorPointer(pointer) => {
                self.pointer_slot(pointer.cache_index);
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
            Command::PointerCommand(command) => {
                self.buffer.put_u8(TAG_POINTER_COMMAND);
                let (kind, a, b) = match *command {
                    crate::api::pointer::PointerCommand::Position { x, y } => (0, x, y),
                    crate::api::pointer::PointerCommand::Hidden => (1, 0, 0),
                    crate::api::pointer::PointerCommand::Default => (2, 0, 0),
                    crate::api::pointer::PointerCommand::Cached(index) => (3, index, 0),
                };
                self.buffer.put_u8(kind);
                self.buffer.put_u16_le(a);
                self.buffer.put_u16_le(b);
            }
            Command::Resize(size) => {
                self.buffer.put_u8(TAG_RESIZE);
                self.buffer.put_u16_le(size.width);
                self.buffer.put_u16_le(size.height);
            }
            Command::SetGraphics(graphics) => {
                self.buffer.put_u8(TAG_GRAPHICS);
                match graphics {
                    Graphics::Bitmaps => self.buffer.put_u8(0),
                    Graphics::Surface(codec) => {
                        self.buffer.put_u8(1);
                        self.buffer.put_u8(codec_byte(*codec));
                    }
                    Graphics::Pipeline(codec) => {
                        self.buffer.put_u8(2);
                        self.buffer.put_u8(codec.to_byte());
                    }
                }
            }
            Command::RequestEcho { payload: [], .. } => self.moment(TAG_ECHO, at),
            Command::RequestEcho { payload, .. } => {
                self.moment(TAG_ECHO_PAYLOAD, at);
                self.buffer.put_u32_le(payload.len() as u32);
                self.buffer.put_slice(payload);
            }
            Command::Channel(command) => {
                self.buffer.put_u8(TAG_CHANNEL_COMMAND);
                let mut bytes = Vec::new();
                encode_channel_command(command, &mut bytes);
                self.buffer.put_u32_le(bytes.len() as u32);
                self.buffer.put_slice(&bytes);
            }
            Command::Close => self.moment(TAG_CLOSE, Duration::ZERO),
            Command::AcceptConnection => self.buffer.put_u8(TAG_ACCEPT_CONNECTION),
            Command::Avc420(frame) => {
                self.buffer.put_u8(TAG_AVC420);
                // INVARIANT: `Engine::apply` validated at most
                // `Avc420Frame::MAX_REGIONS` regions; the stream is a slice.
                self.buffer.put_u32_le(frame.regions.len() as u32);
                for region in frame.regions.iter() {
                    for side in [region.left, region.top, region.right, region.bottom] {
                        self.buffer.put_u16_le(side);
                    }
                    self.buffer.put_u8(region.qp);
                    self.buffer.put_u8(region.quality);
                }
                self.buffer.put_u32_le(frame.stream.len() as u32);
                self.buffer.put_slice(&frame.stream);
            }
            Command::Redirect(redirection) => {
                let mut packet = Vec::new();
                // INVARIANT: `Engine::apply` refused a packet too long to
                // encode before it reached the recording.
                let _ = crate::connection::redirection::encode_packet(&mut packet, redirection);
                self.buffer.put_u8(TAG_REDIRECT);
                self.buffer.put_u32_le(packet.len() as u32);
                self.buffer.put_slice(&packet);
            }
        }
    }

    /// The slot the application chose for the pointer recorded next.
    fn pointer_slot(&mut self, cache_index: Option<u16>) {
        if let Some(index) = cache_index {
            self.buffer.put_u8(TAG_POINTER_SLOT);
            self.buffer.put_u16_le(index);
        }
    }

    fn bitmap(&mut self, update: &BitmapUpdate<'_>) {
        self.buffer.put_u16_le(update.x);
        self.buffer.put_u16_le(update.y);
        self.buffer.put_u16_le(update.width);
        self.buffer.put_u16_le(update.height);
        // Only the rows the update covers, tightly packed.
        let row = update.row_bytes();
        self.buffer
            .put_u32_le((row * usize::from(update.height)) as u32);
        for y in 0..usize::from(update.height) {
            let start = y * update.stride;
            self.buffer.put_slice(&update.data[start..start + row]);
        }
    }

    /// Plaintext the engine sent.
    pub fn output(&mut self, bytes: &[u8]) {
        self.flush_frame();
        self.buffer.put_u8(TAG_OUTPUT);
        self.buffer.put_u32_le(bytes.len() as u32);
        self.buffer.put_slice(bytes);
    }

    /// An event the application took, as text.
    pub fn event(&mut self, text: &str) {
        self.flush_frame();
        self.buffer.put_u8(TAG_EVENT);
        self.buffer.put_u32_le(text.len() as u32);
        self.buffer.put_slice(text.as_bytes());
    }

    /// Moves the finished part of the recording into `out`.
    pub fn drain(&mut self, out: &mut Vec<u8>, include_pending: bool) -> Option<usize> {
        if self.awaiting_header.is_some() {
            return None;
        }
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
