//! A demo RDP server: a bouncing square and a clock over a gradient, with
//! every input event logged, and a clipboard: text copied on the client is
//! logged, and pasting on the client gives a greeting from the server.
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
    BitmapUpdate, ClipboardFormat, ClipboardHandle, CliprdrBackend, CliprdrServerFactory,
    Credentials, DesktopSize, DisplayUpdate, KeyboardEvent, MouseEvent, PixelFormat, RdpServer,
    RdpServerDisplay, RdpServerDisplayUpdates, RdpServerInputHandler, TlsIdentity,
    clipboard_format, text_from_unicode, unicode_text,
};
use tracing::debug;

const USAGE: &str = "\
demo: an rdpserve demo server

USAGE: demo [--addr IP:PORT] [--size WxH] [--user NAME --password PASS]
            [--security nla|tls|none] [--cert FILE --key FILE]

  --addr       listen address (default 127.0.0.1:3389)
  --size       desktop size (default 1024x768)
  --user       user name clients must log on with (default: any)
  --password   password for --user
  --security   tls (default), nla (TLS + CredSSP; needs --user/--password)
               or none; TLS certificates are self-signed unless --cert/--key
  --cert/--key PEM certificate chain and private key for TLS
";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Security {
    Tls,
    Nla,
    None,
}

struct Options {
    addr: SocketAddr,
    size: DesktopSize,
    credentials: Option<Credentials>,
    security: Security,
    cert: Option<(String, String)>,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        addr: ([127, 0, 0, 1], 3389).into(),
        size: DesktopSize {
            width: 1024,
            height: 768,
        },
        credentials: None,
        security: Security::Tls,
        cert: None,
    };
    let (mut user, mut password, mut cert, mut key) = (None, None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            print!("{USAGE}");
            std::process::exit(0);
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
            "--cert" => cert = Some(value),
            "--key" => key = Some(value),
            other => return Err(format!("unknown flag {other}\n\n{USAGE}")),
        }
    }
    match (user, password) {
        (Some(username), Some(password)) => {
            options.credentials = Some(Credentials {
                username,
                password,
                domain: None,
            })
        }
        (None, None) => {}
        _ => return Err("--user and --password go together".into()),
    }
    match (cert, key) {
        (Some(cert), Some(key)) => options.cert = Some((cert, key)),
        (None, None) => {}
        _ => return Err("--cert and --key go together".into()),
    }
    if options.security == Security::Nla && options.credentials.is_none() {
        return Err("--security nla needs --user and --password".into());
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
        (Security::Tls, None) => builder.with_self_signed_tls(),
        (Security::Nla, Some(identity)) => builder.with_hybrid(identity),
        (Security::Nla, None) => builder.with_self_signed_hybrid(),
    };
    let mut builder = builder
        .with_input_handler(LoggingInput::default())
        .with_display_handler(DemoDisplay { size: options.size })
        .with_cliprdr_factory(DemoClipboard);
    if let Some(credentials) = options.credentials.clone() {
        builder = builder.with_credentials(credentials);
    }
    let server = builder.build()?.bind().await?;
    let addr = server.local_addr()?;
    // The banner never shows a password the operator chose.
    let (user, password) = options
        .credentials
        .as_ref()
        .map(|c| (c.username.as_str(), "<password>"))
        .unwrap_or(("demo", "demo"));
    let security = match options.security {
        Security::Tls => "tls",
        Security::Nla => "nla",
        Security::None => "rdp",
    };
    println!(
        "rdpserve demo listening on {addr}\nconnect with:\n  xfreerdp /v:{}:{} /u:{user} /p:{password} /cert:ignore /sec:{security} /bpp:32 +clipboard",
        addr.ip(),
        addr.port()
    );
    server.run().await?;
    Ok(())
}
