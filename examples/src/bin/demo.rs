//! A demo RDP server: a bouncing square and a clock over a gradient, with
//! every input event logged, a clipboard (text copied on the client is
//! logged, and pasting on the client gives a greeting from the server) and
//! a generated chime over rdpsnd. NLA with the account demo/demo unless
//! told otherwise.
//!
//! ```text
//! cargo run --release -p rdpserve-examples --bin demo -- --help
//! ```

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rdpserve_examples::canvas::{Canvas, Rect};
use rdpserve_tokio::{
    AudioFormat, BitmapCodecs, BitmapCompression, BitmapUpdate, ClipboardFormat, ClipboardHandle,
    CliprdrBackend, CliprdrServerFactory, Credentials, DesktopSize, DisplayUpdate, KeyboardEvent,
    MouseEvent, PixelFormat, RdpServer, RdpServerDisplay, RdpServerDisplayUpdates,
    RdpServerInputHandler, RdpsndServerHandler, SoundHandle, SoundServerFactory, SurfaceCodec,
    TlsIdentity, clipboard_format, text_from_unicode, unicode_text,
};
use tracing::debug;

const USAGE: &str = "\
demo: an rdpserve demo server

USAGE: demo [--addr IP:PORT] [--size WxH] [--user NAME --password PASS]
            [--security nla|tls|none] [--cert FILE --key FILE]
            [--codec remotefx|qoi|qoiz|planar|uncompressed|avc420|avc444] [--no-sound]

  --addr       listen address (default 127.0.0.1:3389)
  --size       desktop size (default 1024x768)
  --user       the account clients log on with (default: user demo,
  --password   password demo)
  --security   nla (default: TLS + CredSSP), tls, or none (plain RDP, no
               encryption); certificates are self-signed unless --cert/--key
  --cert/--key PEM certificate chain and private key for TLS
  --codec      offer only this codec: remotefx (xfreerdp /rfx), qoi or qoiz
               (IronRDP clients), planar or uncompressed bitmaps; a client
               that does not take a surface codec gets planar bitmaps (or
               interleaved below 32 bpp); avc420 or avc444: H.264 in the
               Graphics Pipeline (xfreerdp /gfx:AVC420 or /gfx:AVC444;
               built with the h264 feature). Default: every codec, the client's best
  --no-sound   no audio channel (default: a chime every two seconds)
";

/// The account used when the operator names none.
const DEMO_USER: &str = "demo";
const DEMO_PASSWORD: &str = "demo";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Security {
    Tls,
    Nla,
    None,
}

/// A codec forced with `--codec`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Codec {
    Surface(SurfaceCodec),
    Bitmaps(BitmapCompression),
    /// The Graphics Pipeline in H.264.
    #[cfg(feature = "h264")]
    Pipeline(rdpserve_tokio::PipelineCodec),
}

struct Options {
    addr: SocketAddr,
    size: DesktopSize,
    credentials: Credentials,
    /// Whether `credentials` are the demo account rather than the operator's.
    demo_account: bool,
    security: Security,
    cert: Option<(String, String)>,
    codec: Option<Codec>,
    sound: bool,
}

fn parse_codec(value: &str) -> Result<Codec, String> {
    Ok(match value {
        "remotefx" => Codec::Surface(SurfaceCodec::RemoteFx),
        #[cfg(feature = "qoi")]
        "qoi" => Codec::Surface(SurfaceCodec::Qoi),
        #[cfg(feature = "qoiz")]
        "qoiz" => Codec::Surface(SurfaceCodec::Qoiz),
        #[cfg(not(feature = "qoi"))]
        "qoi" => return Err("--codec: built without the qoi feature".into()),
        #[cfg(not(feature = "qoiz"))]
        "qoiz" => return Err("--codec: built without the qoiz feature".into()),
        "planar" => Codec::Bitmaps(BitmapCompression::Planar),
        "uncompressed" => Codec::Bitmaps(BitmapCompression::None),
        #[cfg(feature = "h264")]
        "avc420" => Codec::Pipeline(rdpserve_tokio::PipelineCodec::Avc420),
        #[cfg(feature = "h264")]
        "avc444" => Codec::Pipeline(rdpserve_tokio::PipelineCodec::Avc444),
        #[cfg(feature = "h264")]
        "adaptive" => Codec::Pipeline(rdpserve_tokio::PipelineCodec::Adaptive),
        #[cfg(not(feature = "h264"))]
        "avc420" | "avc444" | "adaptive" => {
            return Err("--codec: built without the h264 feature".into());
        }
        other => return Err(format!("--codec: unknown value {other}")),
    })
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        addr: ([127, 0, 0, 1], 3389).into(),
        size: DesktopSize {
            width: 1024,
            height: 768,
        },
        credentials: Credentials {
            username: DEMO_USER.into(),
            password: DEMO_PASSWORD.into(),
            domain: None,
        },
        demo_account: true,
        security: Security::Nla,
        cert: None,
        codec: None,
        sound: true,
    };
    let (mut user, mut password, mut cert, mut key) = (None, None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            print!("{USAGE}");
            std::process::exit(0);
        }
        if flag == "--no-sound" {
            options.sound = false;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => options.addr = value.parse().map_err(|e| format!("--addr: {e}"))?,
            "--size" => {
                let (w, h) = value.split_once('x').ok_or("--size: expected WxH")?;
                options.size = DesktopSize {
                    width: w.parse().map_err(|e| format!("--size: {e}"))?,
                    height: h.parse().map_err(|e| format!("--size: {e}"))?,
                };
            }
            "--user" => user = Some(value),
            "--password" => password = Some(value),
            "--security" => match value.as_str() {
                "tls" => options.security = Security::Tls,
                "nla" => options.security = Security::Nla,
                "none" => options.security = Security::None,
                other => return Err(format!("--security: unknown value {other}")),
            },
            "--codec" => options.codec = Some(parse_codec(&value)?),
            "--cert" => cert = Some(value),
            "--key" => key = Some(value),
            other => return Err(format!("unknown flag {other}\n\n{USAGE}")),
        }
    }
    match (user, password) {
        (Some(username), Some(password)) => {
            options.credentials = Credentials {
                username,
                password,
                domain: None,
            };
            options.demo_account = false;
        }
        (None, None) => {}
        _ => return Err("--user and --password go together".into()),
    }
    match (cert, key) {
        (Some(cert), Some(key)) => options.cert = Some((cert, key)),
        (None, None) => {}
        _ => return Err("--cert and --key go together".into()),
    }
    Ok(options)
}

/// Logs input at DEBUG (keystrokes are private), at most ten lines a
/// second: a client flooding mouse moves cannot flood the log.
#[derive(Default)]
struct LoggingInput {
    second: Option<std::time::Instant>,
    logged: u32,
    skipped: u32,
}

impl LoggingInput {
    fn log(&mut self, event: &dyn std::fmt::Debug) {
        let now = std::time::Instant::now();
        if self
            .second
            .is_none_or(|start| now.duration_since(start) >= std::time::Duration::from_secs(1))
        {
            if self.skipped > 0 {
                debug!(skipped = self.skipped, "Input events not logged");
            }
            (self.second, self.logged, self.skipped) = (Some(now), 0, 0);
        }
        if self.logged < 10 {
            self.logged += 1;
            debug!(?event, "Input");
        } else {
            self.skipped += 1;
        }
    }
}

impl RdpServerInputHandler for LoggingInput {
    fn keyboard(&mut self, event: KeyboardEvent) {
        self.log(&event);
    }

    fn mouse(&mut self, event: MouseEvent) {
        self.log(&event);
    }
}

struct DemoDisplay {
    size: DesktopSize,
}

impl RdpServerDisplay for DemoDisplay {
    type Updates = DemoUpdates;

    async fn size(&self) -> DesktopSize {
        self.size
    }

    async fn updates(&self) -> io::Result<DemoUpdates> {
        Ok(DemoUpdates::new(self.size))
    }
}

/// Animates at 30 frames per second, sending only what changed.
struct DemoUpdates {
    canvas: Canvas,
    ticker: tokio::time::Interval,
    frame: u64,
    square: Rect,
    velocity: (i32, i32),
    pending: VecDeque<Rect>,
}

const SQUARE: u16 = 96;
const CLOCK: Rect = Rect {
    x: 16,
    y: 16,
    width: 8 * 6 * 4,
    height: 7 * 4,
};

impl DemoUpdates {
    fn new(size: DesktopSize) -> Self {
        let mut canvas = Canvas::new(size.width, size.height);
        canvas.fill_gradient();
        let square = Rect {
            x: size.width / 3,
            y: size.height / 3,
            width: SQUARE,
            height: SQUARE,
        };
        let mut updates = Self {
            canvas,
            ticker: tokio::time::interval(Duration::from_millis(33)),
            frame: 0,
            square,
            velocity: (5, 3),
            pending: VecDeque::new(),
        };
        updates.draw_dynamic();
        updates.pending.push_back(Rect {
            x: 0,
            y: 0,
            width: size.width,
            height: size.height,
        });
        updates
    }

    fn draw_dynamic(&mut self) {
        let hue = (self.frame * 3 % 360) as u16;
        self.canvas.fill_rect(self.square, Canvas::hue(hue));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs())
            .unwrap_or_default();
        let text = format!(
            "{:02}:{:02}:{:02}",
            now / 3600 % 24,
            now / 60 % 60,
            now % 60
        );
        self.canvas.fill_rect(CLOCK, [32, 32, 32, 255]);
        self.canvas
            .draw_text(CLOCK.x, CLOCK.y, &text, 4, [255, 255, 255, 255]);
    }

    fn step(&mut self) {
        self.frame += 1;
        let old = self.square;
        self.canvas.restore_gradient(old);
        let (width, height) = (self.canvas.width(), self.canvas.height());
        let mut x = i32::from(old.x) + self.velocity.0;
        let mut y = i32::from(old.y) + self.velocity.1;
        if x < 0 || x + i32::from(SQUARE) > i32::from(width) {
            self.velocity.0 = -self.velocity.0;
            x = x.clamp(0, i32::from(width - SQUARE));
        }
        if y < 0 || y + i32::from(SQUARE) > i32::from(height) {
            self.velocity.1 = -self.velocity.1;
            y = y.clamp(0, i32::from(height - SQUARE));
        }
        self.square = Rect {
            x: x as u16,
            y: y as u16,
            ..old
        };
        self.draw_dynamic();
        self.pending.push_back(old.union(self.square));
        self.pending.push_back(CLOCK);
    }
}

impl RdpServerDisplayUpdates for DemoUpdates {
    async fn next_update(&mut self) -> Option<DisplayUpdate> {
        if self.pending.is_empty() {
            self.ticker.tick().await;
            self.step();
        }
        let rect = self.pending.pop_front()?;
        let (data, stride) = self.canvas.copy_rect(rect);
        Some(DisplayUpdate::Bitmap(BitmapUpdate {
            x: rect.x,
            y: rect.y,
            width: rect.width,
            height: rect.height,
            stride,
            format: PixelFormat::BgrX32,
            data: Arc::from(data),
        }))
    }
}

/// The demo's clipboard: offers a greeting, logs what the client copies.
struct DemoClipboard;

impl CliprdrServerFactory for DemoClipboard {
    fn build_cliprdr_backend(&self) -> Box<dyn CliprdrBackend> {
        Box::new(DemoClipboard)
    }
}

impl CliprdrBackend for DemoClipboard {
    fn on_ready(&mut self, clipboard: &ClipboardHandle) {
        clipboard.offer(vec![ClipboardFormat::standard(
            clipboard_format::CF_UNICODETEXT,
        )]);
    }

    fn on_remote_copy(&mut self, formats: &[ClipboardFormat], clipboard: &ClipboardHandle) {
        if formats
            .iter()
            .any(|format| format.id == clipboard_format::CF_UNICODETEXT)
        {
            clipboard.request(clipboard_format::CF_UNICODETEXT);
        }
    }

    fn on_format_data_request(&mut self, format_id: u32, clipboard: &ClipboardHandle) {
        let text = (format_id == clipboard_format::CF_UNICODETEXT)
            .then(|| unicode_text("Hello from the rdpserve demo ✓"));
        clipboard.respond(text);
    }

    fn on_format_data_response(&mut self, _format_id: u32, data: Option<&[u8]>) {
        if let Some(text) = data.and_then(text_from_unicode) {
            // Clipboard contents are private: DEBUG only.
            debug!(%text, "Client copied");
        }
    }
}

/// The demo's audio: a short chime every two seconds, 16-bit stereo PCM at
/// 44.1 kHz, generated as the client plays it.
struct DemoSound;

/// Samples per second, and per 20 ms wave.
const SAMPLE_RATE: usize = 44_100;
const WAVE_FRAMES: usize = SAMPLE_RATE / 50;

impl SoundServerFactory for DemoSound {
    fn formats(&self) -> Vec<AudioFormat> {
        vec![AudioFormat::pcm(2, SAMPLE_RATE as u32, 16)]
    }

    fn build_backend(&self) -> Box<dyn RdpsndServerHandler> {
        Box::new(Chime {
            sound: None,
            waves: 0,
        })
    }
}

/// One connection's chime. Pacing comes from the queue: it fills the
/// queue when the client is ready and sends one more wave each time the
/// client confirms one, so it produces exactly as fast as the client plays
/// and never polls.
struct Chime {
    sound: Option<SoundHandle>,
    /// Waves sent so far: the position in the tone.
    waves: usize,
}

impl Chime {
    fn fill(&mut self) {
        let Some(sound) = &self.sound else { return };
        loop {
            let wave = chime_wave(self.waves);
            let timestamp_ms = (self.waves * 20) as u32;
            if sound.send_samples(wave, timestamp_ms).is_err() {
                // Full: the next confirmation makes room.
                return;
            }
            self.waves += 1;
        }
    }
}

/// Wave `index` of the chime: a 660 Hz tone fading out over the first
/// 300 ms of every two seconds, silence otherwise.
fn chime_wave(index: usize) -> Vec<u8> {
    let mut wave = Vec::with_capacity(WAVE_FRAMES * 4);
    for frame in 0..WAVE_FRAMES {
        let position = (index * WAVE_FRAMES + frame) % (2 * SAMPLE_RATE);
        let seconds = position as f64 / SAMPLE_RATE as f64;
        let amplitude = if seconds < 0.3 {
            let envelope = 1.0 - seconds / 0.3;
            (seconds * 660.0 * std::f64::consts::TAU).sin() * envelope * 6000.0
        } else {
            0.0
        };
        let sample = amplitude as i16;
        wave.extend_from_slice(&sample.to_le_bytes());
        wave.extend_from_slice(&sample.to_le_bytes());
    }
    wave
}

impl RdpsndServerHandler for Chime {
    fn start(&mut self, formats: &[AudioFormat], sound: &SoundHandle) -> Option<usize> {
        // The factory offers one format; the client plays it or stays silent.
        let index = formats.iter().position(|format| {
            format.samples_per_sec == SAMPLE_RATE as u32 && format.channels == 2
        })?;
        self.sound = Some(sound.clone());
        self.fill();
        Some(index)
    }

    fn wave_confirmed(&mut self, _timestamp: u16, _block: u8) {
        self.fill();
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let builder = RdpServer::builder().with_addr(options.addr);
    let identity = match &options.cert {
        Some((cert, key)) => Some(TlsIdentity::from_pem_files(cert, key)?),
        None => None,
    };
    let builder = match (options.security, identity) {
        (Security::None, _) => builder.with_no_security(),
        (Security::Tls, Some(identity)) => builder.with_tls(identity),
        #[cfg(feature = "self-signed")]
        (Security::Tls, None) => builder.with_self_signed_tls(),
        (Security::Nla, Some(identity)) => builder.with_hybrid(identity),
        #[cfg(feature = "self-signed")]
        (Security::Nla, None) => builder.with_self_signed_hybrid(),
        #[cfg(not(feature = "self-signed"))]
        (_, None) => {
            return Err("built without the self-signed feature: pass --cert and --key".into());
        }
    };
    let mut builder = builder
        .with_input_handler(LoggingInput::default())
        .with_display_handler(DemoDisplay { size: options.size })
        .with_cliprdr_factory(DemoClipboard)
        .with_credentials(options.credentials.clone());
    if options.sound {
        builder = builder.with_sound_factory(DemoSound);
    }
    match options.codec {
        Some(Codec::Surface(codec)) => {
            builder = builder.with_bitmap_codecs(BitmapCodecs {
                surface: vec![codec],
            });
        }
        Some(Codec::Bitmaps(compression)) => {
            builder = builder
                .with_bitmap_codecs(BitmapCodecs::bitmaps_only())
                .with_bitmap_compression(compression);
        }
        #[cfg(feature = "h264")]
        Some(Codec::Pipeline(codec)) => {
            builder = builder.with_graphics_pipeline(Some(codec));
        }
        None => {}
    }
    let server = builder.build()?.bind().await?;
    let addr = server.local_addr()?;
    println!(
        "rdpserve demo listening on {addr}\nconnect with:\n  {}",
        connect_command(&options, addr)
    );
    if matches!(options.codec, Some(Codec::Surface(codec)) if codec != SurfaceCodec::RemoteFx) {
        println!("(QOI and QOIZ are decoded by IronRDP's clients; xfreerdp gets bitmaps)");
    }
    server.run().await?;
    Ok(())
}

/// The xfreerdp command line for this server. It names the password only
/// for the demo account: a password the operator chose is never printed.
fn connect_command(options: &Options, addr: SocketAddr) -> String {
    let password = if options.demo_account {
        DEMO_PASSWORD
    } else {
        "<password>"
    };
    let mut command = format!(
        "xfreerdp /v:{}:{} /u:{} /p:{password}",
        addr.ip(),
        addr.port(),
        options.credentials.username
    );
    command.push_str(match options.security {
        Security::Nla => " /cert:ignore /sec:nla",
        Security::Tls => " /cert:ignore /sec:tls",
        // Plain RDP has no certificate to ignore.
        Security::None => " /sec:rdp",
    });
    command.push_str(" /bpp:32 +clipboard");
    if options.sound {
        command.push_str(" /sound");
    }
    if options.codec == Some(Codec::Surface(SurfaceCodec::RemoteFx)) {
        command.push_str(" /rfx");
    }
    #[cfg(feature = "h264")]
    match options.codec {
        Some(Codec::Pipeline(rdpserve_tokio::PipelineCodec::Avc444)) => {
            command.push_str(" /gfx:AVC444");
        }
        Some(Codec::Pipeline(_)) => command.push_str(" /gfx:AVC420"),
        _ => {}
    }
    command
}
