//! A server fixture: serves a fixed test pattern and records input.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdpserve_core::Event;
use rdpserve_core::input::InputEvent;
use rdpserve_server::{
    AudioFormat, BitmapCodecs, BitmapCompression, BitmapUpdate, ClipboardFormat, ClipboardHandle,
    CliprdrBackend, CliprdrServerFactory, ColorPointerShape, Credentials, CredentialsHandle,
    DesktopSize, DisplayUpdate, EchoHandle, Graphics, KeyboardEvent, MonitorLayout, MouseEvent,
    PixelFormat, RdpServerDisplay, RdpServerDisplayUpdates, RdpServerInputHandler,
    RdpsndServerHandler, RgbaPointer, Runtime, SessionEvent, SharedInputHandler, SoundHandle,
    SoundServerFactory, StopHandle, TlsIdentity, clipboard_format, dib, html, text_from_unicode,
    unicode_text,
};
use rdpserve_smol::Smol;
use rdpserve_tokio::Tokio;

use crate::image::RgbImage;

/// Input the server received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Keyboard(KeyboardEvent),
    Mouse(MouseEvent),
}

/// How the fixture secures connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    Tls,
    PlainRdp,
    /// TLS plus CredSSP (NLA).
    Nla,
}

pub const USER: &str = "tester";
pub const PASSWORD: &str = "correct horse";

/// The test pattern, as B, G, R, X bytes: four coloured quadrants (flat
/// areas) with a horizontal gradient band across the middle, lines of
/// a box of anti-aliased text-like strokes in the top-left quadrant, and a smooth
/// photo-like area in the bottom-right one.
pub fn pattern(width: u16, height: u16) -> Vec<u8> {
    let (w, h) = (usize::from(width), usize::from(height));
    let mut pixels = Vec::with_capacity(w * h * 4);
    for y in 0..h {
        for x in 0..w {
            let [r, g, b] = pattern_pixel(x, y, w, h);
            pixels.extend_from_slice(&[b, g, r, 0xFF]);
        }
    }
    pixels
}

fn pattern_pixel(x: usize, y: usize, width: usize, height: usize) -> [u8; 3] {
    let band = height / 2 - 20..height / 2 + 20;
    if band.contains(&y) {
        let level = (x * 255 / (width - 1)) as u8;
        return [level, 255 - level, (y * 4) as u8];
    }
    let (left, top) = (x < width / 2, y < height / 2);
    // A text box of up to 200x120 pixels, as on a desktop.
    let text_right = (width / 2 - 16).min(216);
    let text_bottom = (height / 2 - 16).min(136);
    if left && top && (16..text_right).contains(&x) && (16..text_bottom).contains(&y) {
        if let Some(ink) = text_stroke(x - 16, y - 16) {
            return ink;
        }
    }
    if !left && !top && x >= width / 2 + 16 && y >= height / 2 + 36 {
        return photo_pixel(x - width / 2, y - height / 2);
    }
    match (left, top) {
        (true, true) => [220, 30, 30],
        (false, true) => [30, 200, 40],
        (true, false) => [20, 40, 210],
        (false, false) => [250, 250, 250],
    }
}

/// Glyph-like strokes on 12-pixel lines: dark ink with grey edge pixels,
/// as anti-aliased text looks. `None` where the background shows.
fn text_stroke(x: usize, y: usize) -> Option<[u8; 3]> {
    let (line, row) = (y / 12, y % 12);
    if row >= 9 {
        return None;
    }
    // Glyph cells 6 pixels wide, with a word gap every 7 cells.
    let (cell, column) = (x / 6, x % 6);
    if column == 5 || (cell + line) % 7 == 6 {
        return None;
    }
    let glyph = (cell * 31 + line * 17) % 5;
    let ink = match glyph {
        0 => column == 0 || column == 4 || row == 4,
        1 => column == 2 || row == 0,
        2 => row == 0 || row == 8 || column == 0,
        3 => (column + row) % 4 == 0,
        _ => column == 0 || (row == 0 && column < 4) || (row == 4 && column < 3),
    };
    let edge = !ink && (column + 1 < 5) && (glyph + row + column) % 3 == 0;
    if ink {
        Some([25, 20, 20])
    } else if edge {
        Some([150, 70, 70])
    } else {
        None
    }
}

/// A smooth picture: overlapping slow waves of colour, as in a photo.
fn photo_pixel(x: usize, y: usize) -> [u8; 3] {
    let (fx, fy) = (x as f64, y as f64);
    let r = 128.0 + 90.0 * (fx / 23.0).sin() * (fy / 31.0).cos();
    let g = 128.0 + 80.0 * ((fx + fy) / 37.0).sin();
    let b = 120.0 + 70.0 * (fx / 17.0 - fy / 29.0).cos();
    [r as u8, g as u8, b as u8]
}

/// The pattern as FreeRDP 2 shows it at `depth` bits per pixel: reduced to
/// that depth by the server, widened back to 8 bits by the client, which
/// replicates the high bits of 5-bit channels and widens 6-bit green as
/// `min(255, (g << 2) + (g >> 3))` (measured from its screen).
pub fn expected_image_at(width: u16, height: u16, depth: rdpserve_codecs::ColorDepth) -> RgbImage {
    use rdpserve_codecs::ColorDepth;
    let five = |v: u32| ((v << 3) | (v >> 2)) as u8;
    let six = |v: u32| ((v << 2) + (v >> 3)).min(255) as u8;
    let mut image = expected_image(width, height);
    for pixel in &mut image.pixels {
        let [r, g, b] = *pixel;
        let value = depth.convert(b, g, r);
        *pixel = match depth {
            ColorDepth::Bpp24 => [r, g, b],
            ColorDepth::Bpp16 => [
                five((value >> 11) & 0x1F),
                six((value >> 5) & 0x3F),
                five(value & 0x1F),
            ],
            ColorDepth::Bpp15 => [
                five((value >> 10) & 0x1F),
                five((value >> 5) & 0x1F),
                five(value & 0x1F),
            ],
        };
    }
    image
}

/// The pattern as the client should show it.
pub fn expected_image(width: u16, height: u16) -> RgbImage {
    let mut image = RgbImage::new(u32::from(width), u32::from(height));
    for y in 0..usize::from(height) {
        for x in 0..usize::from(width) {
            image.pixels[y * usize::from(width) + x] =
                pattern_pixel(x, y, usize::from(width), usize::from(height));
        }
    }
    image
}

/// The pattern with its pixels laid out as `format`, rows `stride` bytes
/// apart (the padding holds 0xEE, which must never show).
pub fn pattern_in(format: PixelFormat, width: u16, height: u16, stride: usize) -> Vec<u8> {
    let (w, h) = (usize::from(width), usize::from(height));
    let bytes = format.bytes_per_pixel();
    let mut data = vec![0xEE; stride * h];
    for y in 0..h {
        for x in 0..w {
            let [r, g, b] = pattern_pixel(x, y, w, h);
            // Beyond the default layout the alpha or padding byte varies:
            // it must be ignored.
            let a = if format == PixelFormat::BgrX32 {
                0xFF
            } else {
                (x * 7 + y) as u8
            };
            let rgb565 = |top: u8, bottom: u8| {
                let word =
                    (u16::from(top >> 3) << 11) | (u16::from(g >> 2) << 5) | u16::from(bottom >> 3);
                word.to_le_bytes()
            };
            let pixel: Vec<u8> = match format {
                PixelFormat::BgrX32 | PixelFormat::BgrA32 => vec![b, g, r, a],
                PixelFormat::XBgr32 | PixelFormat::ABgr32 => vec![a, b, g, r],
                PixelFormat::RgbX32 | PixelFormat::RgbA32 => vec![r, g, b, a],
                PixelFormat::XRgb32 | PixelFormat::ARgb32 => vec![a, r, g, b],
                PixelFormat::Bgr24 => vec![b, g, r],
                PixelFormat::Rgb24 => vec![r, g, b],
                PixelFormat::Bgr16 => rgb565(b, r).to_vec(),
                PixelFormat::Rgb16 => rgb565(r, b).to_vec(),
                other => panic!("no test layout for {other}"),
            };
            let at = y * stride + x * bytes;
            data[at..at + bytes].copy_from_slice(&pixel);
        }
    }
    data
}

/// The pattern as the client shows it when the server was given it in
/// `format`: exact for 24- and 32-bit formats; reduced to 5-6-5 bits and
/// widened back by repeating the top bits for 16-bit ones.
pub fn expected_image_in(format: PixelFormat, width: u16, height: u16) -> RgbImage {
    let mut image = expected_image(width, height);
    if format.bytes_per_pixel() == 2 {
        let five = |v: u8| (v >> 3 << 3) | (v >> 5);
        let six = |v: u8| (v >> 2 << 2) | (v >> 6);
        for pixel in &mut image.pixels {
            let [r, g, b] = *pixel;
            *pixel = [five(r), six(g), five(b)];
        }
    }
    image
}

pub struct RecordingInput(Sender<Input>);

impl RdpServerInputHandler for RecordingInput {
    fn keyboard(&mut self, event: KeyboardEvent) {
        let _ = self.0.send(Input::Keyboard(event));
    }

    fn mouse(&mut self, event: MouseEvent) {
        let _ = self.0.send(Input::Mouse(event));
    }
}

pub struct PatternDisplay {
    size: DesktopSize,
    feed: UpdateFeed,
    frame: Arc<[u8]>,
    cached_pointers: bool,
    /// The first frame's layout and stride.
    format: PixelFormat,
    stride: usize,
    pointer: bool,
    resize_to: Option<DesktopSize>,
    follow_layout: bool,
    second_frame: bool,
    then_graphics: Option<Graphics>,
    animate: bool,
}

/// Squares (left, top, side, colour) that `changed_pattern` adds to the
/// pattern: each inside one 64x64 tile, so three tiles change.
const CHANGES: [(usize, usize, usize, [u8; 3]); 3] = [
    (70, 70, 20, [255, 255, 0]),
    (530, 200, 30, [0, 0, 0]),
    (200, 450, 40, [0, 255, 255]),
];

/// The pattern with `CHANGES` drawn on it, as B, G, R, X bytes.
pub fn changed_pattern(width: u16, height: u16) -> Vec<u8> {
    let mut pixels = pattern(width, height);
    let w = usize::from(width);
    for (left, top, side, [r, g, b]) in CHANGES {
        for y in top..(top + side).min(usize::from(height)) {
            for x in left..(left + side).min(w) {
                pixels[(y * w + x) * 4..(y * w + x) * 4 + 3].copy_from_slice(&[b, g, r]);
            }
        }
    }
    pixels
}

/// `changed_pattern` as the client should show it.
pub fn expected_changed_image(width: u16, height: u16) -> RgbImage {
    let pixels = changed_pattern(width, height);
    let mut image = RgbImage::new(u32::from(width), u32::from(height));
    for (target, source) in image.pixels.iter_mut().zip(pixels.chunks_exact(4)) {
        *target = [source[2], source[1], source[0]];
    }
    image
}

/// The fixture's pointer: 32x32, opaque red with a transparent top-left
/// quarter, hotspot (3, 5), then moved to `POINTER_POSITION`.
pub const POINTER_SIZE: u16 = 32;
pub const POINTER_POSITION: (u16, u16) = (200, 150);

/// The fixture's colour pointer, sent before the RGBA one: 24x24, an
/// inverting (AND 1, XOR white) frame around an opaque black square.
pub const COLOR_POINTER_SIZE: u16 = 24;

/// The cache slots of the colour and the RGBA pointer when the fixture
/// recalls them (`FixtureOptions::cached_pointers`).
pub const COLOR_POINTER_SLOT: u16 = 2;
pub const RGBA_POINTER_SLOT: u16 = 5;

fn color_pointer_shape(cache_index: Option<u16>) -> ColorPointerShape {
    let side = usize::from(COLOR_POINTER_SIZE);
    let mut xor = Vec::with_capacity(side * side * 3);
    let mut and = vec![0u8; side.div_ceil(8) * side];
    for y in 0..side {
        for x in 0..side {
            let border = x < 3 || y < 3 || x >= side - 3 || y >= side - 3;
            xor.extend_from_slice(if border { &[255; 3] } else { &[0; 3] });
            if border {
                and[y * side.div_ceil(8) + x / 8] |= 0x80 >> (x % 8);
            }
        }
    }
    ColorPointerShape {
        width: COLOR_POINTER_SIZE,
        height: COLOR_POINTER_SIZE,
        hotspot_x: 12,
        hotspot_y: 12,
        cache_index,
        xor_bgr: Arc::from(xor),
        and_mask: Arc::from(and),
    }
}

fn pointer_image(cache_index: Option<u16>) -> RgbaPointer {
    let side = usize::from(POINTER_SIZE);
    let mut data = Vec::with_capacity(side * side * 4);
    for y in 0..side {
        for x in 0..side {
            let alpha = if x < side / 2 && y < side / 2 { 0 } else { 255 };
            data.extend_from_slice(&[230, 20, 20, alpha]);
        }
    }
    RgbaPointer {
        width: POINTER_SIZE,
        height: POINTER_SIZE,
        hotspot_x: 3,
        hotspot_y: 5,
        cache_index,
        data: Arc::from(data),
    }
}

impl RdpServerDisplay for PatternDisplay {
    type Updates = PatternUpdates;

    async fn size(&self) -> DesktopSize {
        self.size
    }

    async fn updates(&self) -> io::Result<PatternUpdates> {
        let mut queue = vec![DisplayUpdate::Bitmap(BitmapUpdate {
            x: 0,
            y: 0,
            width: self.size.width,
            height: self.size.height,
            stride: self.stride,
            format: self.format,
            data: self.frame.clone(),
        })];
        if self.second_frame {
            // The whole screen again, three tiles different: damage tracking
            // sends only those.
            queue.push(DisplayUpdate::Bitmap(BitmapUpdate {
                x: 0,
                y: 0,
                width: self.size.width,
                height: self.size.height,
                stride: usize::from(self.size.width) * 4,
                format: PixelFormat::BgrX32,
                data: Arc::from(changed_pattern(self.size.width, self.size.height)),
            }));
        }
        if let Some(graphics) = self.then_graphics {
            queue.push(DisplayUpdate::Graphics(graphics));
        }
        if let Some(size) = self.resize_to {
            queue.push(DisplayUpdate::Resize(size));
            queue.push(DisplayUpdate::Bitmap(BitmapUpdate {
                x: 0,
                y: 0,
                width: size.width,
                height: size.height,
                stride: usize::from(size.width) * 4,
                format: PixelFormat::BgrX32,
                data: Arc::from(pattern(size.width, size.height)),
            }));
        }
        if self.pointer || self.cached_pointers {
            let (colour_slot, rgba_slot) = match self.cached_pointers {
                true => (Some(COLOR_POINTER_SLOT), Some(RGBA_POINTER_SLOT)),
                false => (None, None),
            };
            queue.push(DisplayUpdate::ColorPointer(color_pointer_shape(
                colour_slot,
            )));
            queue.push(DisplayUpdate::RgbaPointer(pointer_image(rgba_slot)));
            let (x, y) = POINTER_POSITION;
            queue.push(DisplayUpdate::PointerPosition { x, y });
        }
        if self.cached_pointers {
            queue.push(DisplayUpdate::CachedPointer(COLOR_POINTER_SLOT));
            queue.push(DisplayUpdate::CachedPointer(RGBA_POINTER_SLOT));
        }
        queue.reverse();
        let wake = Arc::new(event_listener::Event::new());
        let (sender, fed) = channel();
        if let Ok(mut sessions) = self.feed.0.lock() {
            sessions.push(SessionFeed {
                sender,
                wake: wake.clone(),
            });
        }
        let animation = self.animate.then(|| {
            [
                Arc::from(pattern(self.size.width, self.size.height)),
                Arc::from(changed_pattern(self.size.width, self.size.height)),
            ]
        });
        Ok(PatternUpdates {
            queue,
            fed,
            follow_layout: self.follow_layout,
            wake,
            animation,
            frames: 0,
            size: self.size,
        })
    }
}

/// Updates the test sends while sessions run (`TestServer::send_update`),
/// to every session.
#[derive(Clone, Default)]
struct UpdateFeed(Arc<std::sync::Mutex<Vec<SessionFeed>>>);

/// One session's share of the feed: its channel, and the event that wakes
/// its update stream.
struct SessionFeed {
    sender: Sender<DisplayUpdate>,
    wake: Arc<event_listener::Event>,
}

impl UpdateFeed {
    /// Queues `update` for every live session; ended sessions are dropped.
    fn send(&self, update: &DisplayUpdate) {
        let Ok(mut sessions) = self.0.lock() else {
            return;
        };
        sessions.retain(|session| {
            let live = session.sender.send(update.clone()).is_ok();
            session.wake.notify(usize::MAX);
            live
        });
    }
}

/// Sends the pattern (and the pointer) once, then nothing: the screen must
/// stay right.
pub struct PatternUpdates {
    /// Updates still to send, last first.
    queue: Vec<DisplayUpdate>,
    /// Then those the test sends (`TestServer::send_update`).
    fed: Receiver<DisplayUpdate>,
    /// Answer Display Control layouts with a resize and the pattern at the
    /// new size.
    follow_layout: bool,
    wake: Arc<event_listener::Event>,
    /// Two frames to alternate once the queue is empty, when animating.
    animation: Option<[Arc<[u8]>; 2]>,
    frames: usize,
    size: DesktopSize,
}

impl RdpServerDisplayUpdates for PatternUpdates {
    async fn next_update(&mut self) -> Option<DisplayUpdate> {
        loop {
            if let Some(update) = self.queue.pop() {
                return Some(update);
            }
            if let Ok(update) = self.fed.try_recv() {
                return Some(update);
            }
            if let Some(frames) = &self.animation {
                self.frames += 1;
                return Some(DisplayUpdate::Bitmap(BitmapUpdate {
                    x: 0,
                    y: 0,
                    width: self.size.width,
                    height: self.size.height,
                    stride: usize::from(self.size.width) * 4,
                    format: PixelFormat::BgrX32,
                    data: frames[self.frames % 2].clone(),
                }));
            }
            let listener = self.wake.listen();
            if !self.queue.is_empty() {
                continue;
            }
            if let Ok(update) = self.fed.try_recv() {
                return Some(update);
            }
            listener.await;
        }
    }

    fn request_layout(&mut self, monitors: &[MonitorLayout]) {
        let Some(monitor) = monitors.first().filter(|_| self.follow_layout) else {
            return;
        };
        let size = DesktopSize {
            width: monitor.width.clamp(200, 8192) as u16,
            height: monitor.height.clamp(200, 8192) as u16,
        };
        // Sent in this order: the resize, then the pattern at the new size.
        self.queue.insert(
            0,
            DisplayUpdate::Bitmap(BitmapUpdate {
                x: 0,
                y: 0,
                width: size.width,
                height: size.height,
                stride: usize::from(size.width) * 4,
                format: PixelFormat::BgrX32,
                data: Arc::from(pattern(size.width, size.height)),
            }),
        );
        self.queue.insert(1, DisplayUpdate::Resize(size));
        self.wake.notify(usize::MAX);
    }
}

/// Options of the fixture server beyond adapter and security.
#[derive(Debug, Clone, Default)]
pub struct FixtureOptions {
    /// Record every session into this directory (tokio and smol only).
    pub record_dir: Option<std::path::PathBuf>,
    pub compression: BitmapCompression,
    /// Send `pointer_image()` and `POINTER_POSITION` after the pattern.
    pub pointer: bool,
    /// Send the pointers into `COLOR_POINTER_SLOT` and `RGBA_POINTER_SLOT`,
    /// then recall the colour one and the RGBA one from their slots.
    pub cached_pointers: bool,
    /// After the pattern, resize the desktop and send the pattern at that size.
    pub resize_to: Option<DesktopSize>,
    /// Follow the client's Display Control layouts (resize, then repaint).
    pub follow_layout: bool,
    /// Serve the clipboard: offer this text when the client is ready, and
    /// fetch the text of every copy on the client (see `clipboard_report`).
    pub clipboard_text: Option<String>,
    /// Play this many 20 ms waves of a 440 Hz tone (44.1 kHz stereo PCM)
    /// when the client's audio is ready, as fast as the queue allows.
    pub sound_waves: Option<usize>,
    /// After the pattern, send `changed_pattern` as a whole-screen update.
    pub second_frame: bool,
    /// Then switch the session's graphics to this.
    pub then_graphics: Option<Graphics>,
    /// After everything else, alternate the pattern and `changed_pattern`
    /// as whole-screen updates for as long as the client takes them.
    pub animate: bool,
    /// The server's connection limits, instead of the defaults.
    pub limits: Option<rdpserve_server::ConnectionLimits>,
    /// The codecs the server offers, in its order of preference (tokio and
    /// smol only); `None` keeps the default.
    pub codecs: Option<BitmapCodecs>,
    /// Ask each connection for an echo of this payload as soon as it is
    /// reported connected, before its handshake.
    pub echo_on_connect: Option<Vec<u8>>,
    /// The first frame's pixel layout (`pattern_in`); any other than
    /// `BgrX32` gets rows padded by three bytes.
    pub pixel_format: PixelFormat,
    /// Serve TLS (and NLA) with this rustls configuration
    /// (`with_tls_config`, `with_hybrid_config`) instead of the fixture's
    /// self-signed certificate (tokio and smol only).
    pub tls_config: Option<Arc<rustls::ServerConfig>>,
    /// The Graphics Pipeline's tiles uncompressed instead of planar.
    pub uncompressed_pipeline: bool,
    /// The Graphics Pipeline in H.264 (AVC420) instead of planar.
    pub avc420_pipeline: bool,
    /// The Graphics Pipeline content-adaptive (planar and AVC420 by tile).
    pub adaptive_pipeline: bool,
}

/// The stride of the fixture's first frame in `format`: packed rows for
/// B, G, R, X, rows padded by three bytes otherwise.
fn first_stride(format: PixelFormat, width: u16) -> usize {
    let row = usize::from(width) * format.bytes_per_pixel();
    if format == PixelFormat::BgrX32 {
        row
    } else {
        row + 3
    }
}

/// What the fixture's audio handler saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoundReport {
    /// Audio started in this format (samples per second, channels, bits).
    Started(u32, u16, u16),
    /// The client confirmed this block.
    Confirmed(u8),
    /// A wave was refused because the queue was full (the handler then
    /// waits for a confirmation instead).
    QueueFull,
}

/// Bytes of one 20 ms wave at 44.1 kHz, stereo, 16 bits.
pub const WAVE_BYTES: usize = 44_100 / 50 * 4;

struct FixtureSound {
    waves: usize,
    reports: std::sync::Mutex<Sender<SoundReport>>,
}

impl SoundServerFactory for FixtureSound {
    fn formats(&self) -> Vec<AudioFormat> {
        vec![
            AudioFormat::pcm(2, 44_100, 16),
            AudioFormat::pcm(2, 22_050, 16),
        ]
    }

    fn build_backend(&self) -> Box<dyn RdpsndServerHandler> {
        let reports = self.reports.lock().expect("report sender").clone();
        Box::new(FixtureSoundHandler {
            waves: self.waves,
            sent: 0,
            sound: None,
            reports,
        })
    }
}

struct FixtureSoundHandler {
    waves: usize,
    sent: usize,
    sound: Option<SoundHandle>,
    reports: Sender<SoundReport>,
}

impl FixtureSoundHandler {
    /// Sends waves until the queue is full or all are sent.
    fn fill(&mut self) {
        let Some(sound) = &self.sound else { return };
        while self.sent < self.waves {
            let timestamp = (self.sent * 20) as u32;
            let mut wave = Vec::with_capacity(WAVE_BYTES);
            for frame in 0..WAVE_BYTES / 4 {
                let t = (self.sent * WAVE_BYTES / 4 + frame) as f64 / 44_100.0;
                let sample = ((t * 440.0 * std::f64::consts::TAU).sin() * 8000.0) as i16;
                wave.extend_from_slice(&sample.to_le_bytes());
                wave.extend_from_slice(&sample.to_le_bytes());
            }
            if sound.send_samples(wave, timestamp).is_err() {
                let _ = self.reports.send(SoundReport::QueueFull);
                return;
            }
            self.sent += 1;
        }
    }
}

impl RdpsndServerHandler for FixtureSoundHandler {
    fn start(&mut self, formats: &[AudioFormat], sound: &SoundHandle) -> Option<usize> {
        let index = formats
            .iter()
            .position(|format| format.samples_per_sec == 44_100)?;
        let format = &formats[index];
        let _ = self.reports.send(SoundReport::Started(
            format.samples_per_sec,
            format.channels,
            format.bits_per_sample,
        ));
        self.sound = Some(sound.clone());
        self.fill();
        Some(index)
    }

    fn wave_confirmed(&mut self, _timestamp: u16, block: u8) {
        let _ = self.reports.send(SoundReport::Confirmed(block));
        self.fill();
    }
}

/// The id the fixture gives its registered "HTML Format".
const CLIPBOARD_HTML_ID: u32 = 0xC0F0;
/// The HTML fragment the fixture's clipboard offers.
pub const CLIPBOARD_HTML: &str = "<p>Grüße <b>vom</b> Server</p>";

/// The image the fixture's clipboard offers (as CF_DIB): 24x16 pixels of a
/// two-way gradient, as width, height and B, G, R, X bytes.
pub fn clipboard_image() -> (u32, u32, Vec<u8>) {
    let (width, height) = (24u32, 16u32);
    let mut pixels = Vec::new();
    for y in 0..height {
        for x in 0..width {
            pixels.extend_from_slice(&[(x * 10) as u8, (y * 15) as u8, 200, 0xFF]);
        }
    }
    (width, height, pixels)
}

/// What the fixture's clipboard backend saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClipboardReport {
    /// The client announced a copy with these format ids.
    RemoteCopy(Vec<u32>),
    /// The client pasted: it asked for the server's data in this format.
    Pasted(u32),
    /// The text of the client's copy (CF_UNICODETEXT), as received.
    Text(String),
}

struct FixtureClipboard {
    text: String,
    reports: std::sync::Mutex<Sender<ClipboardReport>>,
}

impl CliprdrServerFactory for FixtureClipboard {
    fn build_cliprdr_backend(&self) -> Box<dyn CliprdrBackend> {
        let reports = self.reports.lock().expect("report sender").clone();
        Box::new(FixtureClipboardBackend {
            text: self.text.clone(),
            reports,
        })
    }
}

struct FixtureClipboardBackend {
    text: String,
    reports: Sender<ClipboardReport>,
}

impl CliprdrBackend for FixtureClipboardBackend {
    fn on_ready(&mut self, clipboard: &ClipboardHandle) {
        clipboard.offer(vec![
            ClipboardFormat::standard(clipboard_format::CF_UNICODETEXT),
            ClipboardFormat::standard(clipboard_format::CF_DIB),
            ClipboardFormat::registered(CLIPBOARD_HTML_ID, clipboard_format::HTML_FORMAT_NAME),
        ]);
    }

    fn on_remote_copy(&mut self, formats: &[ClipboardFormat], clipboard: &ClipboardHandle) {
        let ids: Vec<u32> = formats.iter().map(|format| format.id).collect();
        // When the X clipboard changes hands, xfreerdp first announces a
        // provisional list (holding the invalid id 0) while it asks the new
        // owner for its targets, then the real one. A request made in
        // between confuses it: it answers with a failure and then announces
        // an empty clipboard. So only the real list is fetched.
        let provisional = ids.contains(&0);
        if ids.contains(&clipboard_format::CF_UNICODETEXT) && !provisional {
            clipboard.request(clipboard_format::CF_UNICODETEXT);
        }
        let _ = self.reports.send(ClipboardReport::RemoteCopy(ids));
    }

    fn on_format_data_request(&mut self, format_id: u32, clipboard: &ClipboardHandle) {
        let _ = self.reports.send(ClipboardReport::Pasted(format_id));
        let data = match format_id {
            clipboard_format::CF_UNICODETEXT => Some(unicode_text(&self.text)),
            clipboard_format::CF_DIB => {
                let (width, height, pixels) = clipboard_image();
                dib(width, height, width as usize * 4, &pixels)
            }
            CLIPBOARD_HTML_ID => Some(html(CLIPBOARD_HTML)),
            _ => None,
        };
        clipboard.respond(data);
    }

    fn on_format_data_response(&mut self, _format_id: u32, data: Option<&[u8]>) {
        if let Some(text) = data.and_then(text_from_unicode) {
            let _ = self.reports.send(ClipboardReport::Text(text));
        }
    }
}

/// Which driver runs the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adapter {
    Tokio,
    Smol,
    /// The blocking `std::net` loop of the embedding example.
    Embedded,
}

/// A running server on a free loopback port; stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub size: DesktopSize,
    inputs: Receiver<Input>,
    sessions: Receiver<SessionEvent>,
    clipboard: Receiver<ClipboardReport>,
    sound: Receiver<SoundReport>,
    feed: UpdateFeed,
    stop: Stopper,
    thread: Option<JoinHandle<()>>,
}

enum Stopper {
    Async(StopHandle, EchoHandle, CredentialsHandle),
    Embedded(Arc<std::sync::atomic::AtomicBool>),
}

fn credentials() -> Credentials {
    Credentials {
        username: USER.into(),
        password: PASSWORD.into(),
        domain: None,
    }
}

fn identity() -> TlsIdentity {
    TlsIdentity::self_signed(&["localhost"]).expect("self-signed identity")
}

/// What connects a fixture server to its `TestServer`: where it reports
/// what it sees, and the updates the test sends.
struct Wiring {
    input: Sender<Input>,
    sessions: Sender<SessionEvent>,
    clipboard: Sender<ClipboardReport>,
    sound: Sender<SoundReport>,
    feed: UpdateFeed,
}

/// The same server on any runtime.
fn build<R: Runtime>(
    security: Security,
    size: DesktopSize,
    wiring: Wiring,
    options: FixtureOptions,
) -> rdpserve_server::RdpServer<R, SharedInputHandler<RecordingInput>, PatternDisplay> {
    let Wiring {
        input,
        sessions,
        clipboard,
        sound,
        feed,
    } = wiring;
    let builder = rdpserve_server::RdpServer::<R, (), ()>::builder()
        .with_addr(SocketAddr::from(([127, 0, 0, 1], 0)));
    let builder = match (security, options.tls_config.clone()) {
        (Security::Tls, Some(config)) => builder.with_tls_config(config),
        (Security::Tls, None) => builder.with_tls(identity()),
        (Security::PlainRdp, _) => builder.with_no_security(),
        (Security::Nla, Some(config)) => builder.with_hybrid_config(config),
        (Security::Nla, None) => builder.with_hybrid(identity()),
    };
    let sessions = std::sync::Mutex::new(sessions);
    let builder = builder
        .with_input_handler(RecordingInput(input))
        .with_display_handler(PatternDisplay {
            size,
            feed,
            frame: Arc::from(pattern_in(
                options.pixel_format,
                size.width,
                size.height,
                first_stride(options.pixel_format, size.width),
            )),
            format: options.pixel_format,
            stride: first_stride(options.pixel_format, size.width),
            pointer: options.pointer,
            cached_pointers: options.cached_pointers,
            resize_to: options.resize_to,
            second_frame: options.second_frame,
            then_graphics: options.then_graphics,
            follow_layout: options.follow_layout,
            animate: options.animate,
        })
        .with_credentials(credentials())
        .with_bitmap_compression(options.compression);
    let builder = match options.codecs {
        Some(codecs) => builder.with_bitmap_codecs(codecs),
        None => builder,
    };
    let builder = if options.uncompressed_pipeline {
        builder.with_graphics_pipeline(Some(rdpserve_tokio::PipelineCodec::Uncompressed))
    } else if options.adaptive_pipeline {
        builder.with_graphics_pipeline(Some(rdpserve_tokio::PipelineCodec::Adaptive))
    } else if options.avc420_pipeline {
        builder.with_graphics_pipeline(Some(rdpserve_tokio::PipelineCodec::Avc420))
    } else {
        builder
    };
    let builder = match options.limits {
        Some(limits) => builder.with_connection_limits(limits),
        None => builder,
    };
    let builder = match options.record_dir {
        Some(dir) => builder.with_recording_dir(dir),
        None => builder,
    };
    let builder = match options.clipboard_text {
        Some(text) => builder.with_cliprdr_factory(FixtureClipboard {
            text,
            reports: std::sync::Mutex::new(clipboard),
        }),
        None => builder,
    };
    let builder = match options.sound_waves {
        Some(waves) => builder.with_sound_factory(FixtureSound {
            waves,
            reports: std::sync::Mutex::new(sound),
        }),
        None => builder,
    };
    // The observer needs the server's echo handle, which exists once the
    // server is built.
    let echo = Arc::new(std::sync::OnceLock::<EchoHandle>::new());
    let echo_on_connect = options.echo_on_connect;
    let server = builder
        .with_session_observer({
            let echo = echo.clone();
            move |event| {
                // Asked from inside the observer, before the connection
                // goes on: the request surely precedes the activation.
                if let (SessionEvent::Connected { connection, .. }, Some(payload), Some(echo)) =
                    (event, &echo_on_connect, echo.get())
                {
                    echo.send_request(*connection, payload.clone())
                        .expect("the connection is registered");
                }
                if let Ok(sender) = sessions.lock() {
                    let _ = sender.send(event.clone());
                }
            }
        })
        .build()
        .expect("server builds");
    let _ = echo.set(server.echo_handle());
    server
}

impl TestServer {
    pub fn start(security: Security, size: DesktopSize) -> Self {
        Self::start_on(Adapter::Tokio, security, size)
    }

    pub fn start_on(adapter: Adapter, security: Security, size: DesktopSize) -> Self {
        Self::start_with(adapter, security, size, None)
    }

    /// Like `start_on`, recording every session into `record_dir`
    /// (tokio and smol only).
    pub fn start_with(
        adapter: Adapter,
        security: Security,
        size: DesktopSize,
        record_dir: Option<std::path::PathBuf>,
    ) -> Self {
        let options = FixtureOptions {
            record_dir,
            ..FixtureOptions::default()
        };
        Self::start_full(adapter, security, size, options)
    }

    /// Every option (those in `FixtureOptions` apply to tokio and smol only).
    pub fn start_full(
        adapter: Adapter,
        security: Security,
        size: DesktopSize,
        options: FixtureOptions,
    ) -> Self {
        let (input_sender, inputs) = channel();
        let (session_sender, sessions) = channel();
        let (clipboard_sender, clipboard) = channel();
        let (sound_sender, sound) = channel();
        let (ready_sender, ready) = channel();
        let feed = UpdateFeed::default();
        let wiring = Wiring {
            input: input_sender.clone(),
            sessions: session_sender.clone(),
            clipboard: clipboard_sender,
            sound: sound_sender,
            feed: feed.clone(),
        };
        let thread = match adapter {
            Adapter::Tokio => std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                let server = build::<Tokio>(security, size, wiring, options);
                runtime.block_on(serve(server, ready_sender));
            }),
            Adapter::Smol => std::thread::spawn(move || {
                let server = build::<Smol>(security, size, wiring, options);
                smol::block_on(serve(server, ready_sender));
            }),
            Adapter::Embedded => std::thread::spawn(move || {
                run_embedded(security, size, input_sender, session_sender, ready_sender)
            }),
        };
        let (addr, stop) = ready
            .recv_timeout(Duration::from_secs(30))
            .expect("server started");
        Self {
            addr,
            size,
            inputs,
            sessions,
            clipboard,
            sound,
            feed,
            stop,
            thread: Some(thread),
        }
    }

    /// Collects input until `done` says the sequence is complete or `timeout`
    /// passes; returns everything received.
    pub fn collect_input(
        &self,
        timeout: Duration,
        done: impl FnMut(&[Input]) -> bool,
    ) -> Vec<Input> {
        collect(&self.inputs, timeout, done)
    }

    /// Asks every connected client for an echo (tokio and smol only).
    pub fn request_echo(&self) {
        if let Some(echo) = self.echo() {
            echo.request();
        }
    }

    /// The server's echo handle (tokio and smol only).
    pub fn echo(&self) -> Option<&EchoHandle> {
        match &self.stop {
            Stopper::Async(_, echo, _) => Some(echo),
            Stopper::Embedded(_) => None,
        }
    }

    /// Changes who may log on (tokio and smol only).
    pub fn credentials(&self) -> Option<&CredentialsHandle> {
        match &self.stop {
            Stopper::Async(_, _, credentials) => Some(credentials),
            Stopper::Embedded(_) => None,
        }
    }

    /// Waits for the next session event matching `wanted`.
    pub fn wait_session_event(
        &self,
        timeout: Duration,
        wanted: impl FnMut(&SessionEvent) -> bool,
    ) -> Option<SessionEvent> {
        wait_for(&self.sessions, timeout, wanted)
    }

    /// Waits for the next clipboard report matching `wanted`.
    pub fn wait_clipboard(
        &self,
        timeout: Duration,
        wanted: impl FnMut(&ClipboardReport) -> bool,
    ) -> Option<ClipboardReport> {
        wait_for(&self.clipboard, timeout, wanted)
    }

    /// Collects audio reports until `done` says enough or `timeout` passes.
    pub fn collect_sound(
        &self,
        timeout: Duration,
        done: impl FnMut(&[SoundReport]) -> bool,
    ) -> Vec<SoundReport> {
        collect(&self.sound, timeout, done)
    }

    /// Sends `update` to every connected session, after the fixture's own
    /// updates (tokio and smol only).
    pub fn send_update(&self, update: DisplayUpdate) {
        self.feed.send(&update);
    }

    /// Drops input received so far.
    pub fn drain_input(&self) {
        while self.inputs.try_recv().is_ok() {}
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        match &self.stop {
            Stopper::Async(handle, _, _) => handle.stop(),
            Stopper::Embedded(flag) => {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                // Wake the blocking accept so it sees the flag.
                let _ = std::net::TcpStream::connect(self.addr);
            }
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Receives until `done` says the sequence is complete or `timeout`
/// passes; returns everything received.
fn collect<T>(
    receiver: &Receiver<T>,
    timeout: Duration,
    mut done: impl FnMut(&[T]) -> bool,
) -> Vec<T> {
    let deadline = Instant::now() + timeout;
    let mut received = Vec::new();
    while !done(&received) {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(left) {
            Ok(item) => received.push(item),
            Err(_) => break,
        }
    }
    received
}

/// The next item matching `wanted` within `timeout`.
fn wait_for<T>(
    receiver: &Receiver<T>,
    timeout: Duration,
    mut wanted: impl FnMut(&T) -> bool,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(left) {
            Ok(item) if wanted(&item) => return Some(item),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

/// Binds, reports the address and stop handle, and serves until stopped.
async fn serve<R: Runtime>(
    server: rdpserve_server::RdpServer<R, SharedInputHandler<RecordingInput>, PatternDisplay>,
    ready: Sender<(SocketAddr, Stopper)>,
) {
    let server = server.bind().await.expect("bind a loopback port");
    let addr = server.local_addr().expect("local address");
    let _ = ready.send((
        addr,
        Stopper::Async(
            server.stop_handle(),
            server.echo_handle(),
            server.credentials_handle(),
        ),
    ));
    server.run().await.expect("server runs");
}

/// The embedding example's blocking loop, one thread per client.
fn run_embedded(
    security: Security,
    size: DesktopSize,
    input: Sender<Input>,
    sessions: Sender<SessionEvent>,
    ready: Sender<(SocketAddr, Stopper)>,
) {
    use rdpserve_core::{Config, SecurityConfig};
    use rdpserve_examples::embedded::{Frame, os_seed, serve_connection};

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let _ = ready.send((addr, Stopper::Embedded(stopped.clone())));
    let security = match security {
        Security::Tls => SecurityConfig::tls(identity().core_identity().expect("identity")),
        Security::Nla => SecurityConfig::nla(identity().core_identity().expect("identity")),
        Security::PlainRdp => SecurityConfig::plain_rdp(),
    };
    let mut config = Config::new(security, size);
    config.credentials = Some(credentials().into());
    let frame = Frame {
        width: size.width,
        height: size.height,
        pixels: pattern(size.width, size.height),
    };
    for (number, stream) in (1u64..).zip(listener.incoming()) {
        if stopped.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let connection = rdpserve_server::ConnectionId::from(number);
        let (config, frame, input, sessions) = (
            config.clone(),
            frame.clone(),
            input.clone(),
            sessions.clone(),
        );
        std::thread::spawn(move || {
            let Ok(seed) = os_seed() else { return };
            let _ = serve_connection(stream, config, seed, &frame, |event| match event {
                Event::Input(InputEvent::Keyboard(event)) => {
                    let _ = input.send(Input::Keyboard(*event));
                }
                Event::Input(InputEvent::Mouse(event)) => {
                    let _ = input.send(Input::Mouse(*event));
                }
                Event::Activated(info) => {
                    let _ = sessions.send(SessionEvent::Activated {
                        connection,
                        info: info.clone(),
                    });
                }
                Event::Closed { reason } => {
                    let _ = sessions.send(SessionEvent::Closed {
                        connection,
                        reason: reason.clone(),
                    });
                }
                _ => {}
            });
        });
    }
}

/// Whether `needle` appears in `haystack` in order (not necessarily adjacent).
pub fn contains_in_order(haystack: &[Input], needle: &[Input]) -> bool {
    let mut wanted = needle.iter().peekable();
    for item in haystack {
        if wanted.peek() == Some(&item) {
            wanted.next();
        }
    }
    wanted.peek().is_none()
}

/// The credential validator the fixture's sessions use, for replays.
pub fn validator() -> rdpserve_core::Validator {
    credentials().into()
}
