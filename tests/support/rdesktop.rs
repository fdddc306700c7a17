//! An rdesktop 1.9 client process on an Xvfb display.
//!
//! What rdesktop 1.9 does, measured under Xvfb without a window manager:
//! - it asks for TLS or CredSSP first (`SSL | HYBRID`); when the server
//!   refuses both it connects again without a negotiation request, which is
//!   standard RDP security. With `-e` it then sends no Security Exchange and
//!   nothing encrypted, which is what a server without encryption needs;
//!   without `-e` it insists on RC4 ([`RdesktopSecurity::PlainRdp`]);
//! - it asks whether to trust a certificate it does not know on stdin and
//!   remembers the answer in `$HOME/.local/share/rdesktop/certs/known_certs`,
//!   so every client here runs with a private, fresh `HOME` and gets "yes"
//!   on stdin;
//! - its window is named by `-T` ([`Rdesktop::title`]), sits at (0, 0), has
//!   no border and is exactly `-g` large: the desktop is the window.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rdpserve_codecs::ColorDepth;

use crate::client::ClientProcess;
use crate::image::RgbImage;
use crate::x11::{WindowGeometry, Xvfb};

/// The programs the rdesktop tests drive.
pub const REQUIRED_PROGRAMS: [&str; 4] = ["rdesktop", "Xvfb", "xwd", "xdotool"];

/// Whether rdesktop and the X tools are installed; see
/// [`crate::require_programs`] for what happens when one is missing.
pub fn require_rdesktop() -> bool {
    crate::require_programs(&REQUIRED_PROGRAMS, "rdesktop xvfb x11-apps xdotool")
}

/// The fixture's pattern as rdesktop 1.9 shows it at `depth`: reduced to
/// that depth by the server, widened back to 8 bits by rdesktop (measured
/// from its screen; its X11 code does the same). Each 5- or 6-bit channel
/// repeats its high bits below itself, except 15-bit green, whose three low
/// bits are its own top two and the lowest bit of red.
pub fn expected_image_at(width: u16, height: u16, depth: ColorDepth) -> RgbImage {
    let five = |v: u32| ((v << 3) | (v >> 2)) as u8;
    let mut image = crate::server::expected_image(width, height);
    for pixel in &mut image.pixels {
        let [r, g, b] = *pixel;
        let value = depth.convert(b, g, r);
        *pixel = match depth {
            ColorDepth::Bpp24 => [r, g, b],
            ColorDepth::Bpp16 => {
                let green = (value >> 5) & 0x3F;
                [
                    five((value >> 11) & 0x1F),
                    ((green << 2) | (green >> 4)) as u8,
                    five(value & 0x1F),
                ]
            }
            ColorDepth::Bpp15 => [
                five((value >> 10) & 0x1F),
                ((((value >> 5) & 0x1F) << 3) | ((value >> 8) & 0x07)) as u8,
                five(value & 0x1F),
            ],
        };
    }
    image
}

/// How rdesktop secures the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RdesktopSecurity {
    /// rdesktop's default: it asks for TLS or CredSSP and takes what the
    /// server selects; refused both, it falls back to standard RDP
    /// security with RC4 encryption. Its CredSSP is Kerberos only: offered
    /// NLA by this NTLM server it gives up ("Failed to initialize NLA, do
    /// you have correct Kerberos TGT initialized ?"), with the RSA
    /// certificate as with an ECDSA one.
    Negotiated,
    /// Standard RDP security with encryption off (`-e`): the only plain RDP
    /// rdesktop speaks to a server that does not encrypt. Without `-e`
    /// rdesktop sends a Security Exchange PDU and RC4-encrypts its PDUs
    /// even when the server announced no encryption.
    PlainRdp,
}

/// Options for an rdesktop client; anything unset keeps rdesktop's default.
#[derive(Debug, Clone)]
pub struct RdesktopBuilder {
    server: SocketAddr,
    user: Option<String>,
    password: Option<String>,
    security: RdesktopSecurity,
    depth: Option<u32>,
    size: Option<(u32, u32)>,
    title: String,
    extra: Vec<String>,
    log: Option<PathBuf>,
}

impl RdesktopBuilder {
    pub fn user(mut self, user: &str) -> Self {
        self.user = Some(user.into());
        self
    }

    pub fn password(mut self, password: &str) -> Self {
        self.password = Some(password.into());
        self
    }

    pub fn security(mut self, security: RdesktopSecurity) -> Self {
        self.security = security;
        self
    }

    /// Colour depth (`-a`): 32, 24, 16, 15 or 8.
    pub fn depth(mut self, depth: u32) -> Self {
        self.depth = Some(depth);
        self
    }

    /// Desktop (and, without a window manager, window) size (`-g`).
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = Some((width, height));
        self
    }

    /// Any other rdesktop option, e.g. `-v` or `-z`.
    pub fn arg(mut self, arg: &str) -> Self {
        self.extra.push(arg.into());
        self
    }

    /// Where the client's output goes; by default a fresh file under
    /// [`crate::artifacts_dir`].
    pub fn log_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.log = Some(path.into());
        self
    }

    /// The command line after the program name.
    pub fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(user) = &self.user {
            args.extend(["-u".into(), user.clone()]);
        }
        if let Some(password) = &self.password {
            args.extend(["-p".into(), password.clone()]);
        }
        if self.security == RdesktopSecurity::PlainRdp {
            args.push("-e".into());
        }
        if let Some(depth) = self.depth {
            args.extend(["-a".into(), depth.to_string()]);
        }
        if let Some((width, height)) = self.size {
            args.extend(["-g".into(), format!("{width}x{height}")]);
        }
        args.extend(["-T".into(), self.title.clone()]);
        args.extend(self.extra.iter().cloned());
        args.push(format!("{}:{}", self.server.ip(), self.server.port()));
        args
    }

    /// Starts the client on `xvfb`.
    pub fn spawn(self, xvfb: &Xvfb) -> io::Result<Rdesktop> {
        let number = CLIENTS.fetch_add(1, Ordering::Relaxed);
        let log = match &self.log {
            Some(path) => path.clone(),
            None => crate::artifacts_dir("rdesktop")
                .join(format!("{}-{number}.log", std::process::id())),
        };
        let home = PrivateHome::create(number)?;
        // Line-buffered output (coreutils' stdbuf, which execs rdesktop in
        // the same process), so the log can be read while the client runs.
        let mut command = Command::new("stdbuf");
        command
            .args(["-oL", "-eL", "rdesktop"])
            .args(self.args())
            .env("DISPLAY", xvfb.display())
            .env("HOME", home.path())
            .stdin(Stdio::piped());
        let mut process = ClientProcess::spawn(command, "rdesktop", log)?;
        // The answer to "Do you trust this certificate (yes/no)?", asked
        // once per unknown certificate; a pipe holds it until then. Closing
        // stdin afterwards makes any further question fail instead of hang.
        if let Some(mut stdin) = process.take_stdin() {
            let _ = stdin.write_all(b"yes\n");
        }
        Ok(Rdesktop {
            process,
            title: self.title,
            _home: home,
        })
    }
}

static CLIENTS: AtomicUsize = AtomicUsize::new(0);

/// A `HOME` of one client, removed when the client is dropped, so no
/// certificate answer or licence is remembered from an earlier run.
struct PrivateHome(PathBuf);

impl PrivateHome {
    fn create(number: usize) -> io::Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "rdpserve-rdesktop-home-{}-{number}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PrivateHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running rdesktop; killed (by PID) when dropped. Its output goes to a
/// log file the test can print when it fails.
pub struct Rdesktop {
    process: ClientProcess,
    title: String,
    // Dropped after the child is killed (fields drop in order).
    _home: PrivateHome,
}

impl Rdesktop {
    /// Options for a client of `server`, its window titled after the port.
    pub fn builder(server: SocketAddr) -> RdesktopBuilder {
        static TITLES: AtomicUsize = AtomicUsize::new(0);
        let number = TITLES.fetch_add(1, Ordering::Relaxed);
        RdesktopBuilder {
            server,
            user: None,
            password: None,
            security: RdesktopSecurity::Negotiated,
            depth: None,
            size: None,
            title: format!("rdesktop-test-{}-{number}", server.port()),
            extra: Vec::new(),
            log: None,
        }
    }

    /// Everything the client printed so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }

    /// The client's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The window title given with `-T`.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// Position and size of this client's window right now.
    pub fn window(&self, xvfb: &Xvfb) -> io::Result<WindowGeometry> {
        xvfb.window_geometry(&format!("^{}$", self.title))
    }

    /// Waits up to `timeout` for this client's window. Fails at once, with
    /// the client's log, if the client exits first.
    pub fn wait_for_window(
        &mut self,
        xvfb: &Xvfb,
        timeout: Duration,
    ) -> io::Result<WindowGeometry> {
        let pattern = format!("^{}$", self.title);
        self.process
            .wait_for_window(xvfb, timeout, |xvfb| xvfb.window_geometry(&pattern))
    }

    /// The exit status if the client has ended.
    pub fn try_status(&mut self) -> io::Result<Option<ExitStatus>> {
        self.process.try_status()
    }

    /// Waits up to `timeout` for the client to exit; `None` if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        self.process.wait_exit(timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_makes_rdesktop_arguments() {
        let server: SocketAddr = ([127, 0, 0, 1], 3390).into();
        let builder = Rdesktop::builder(server)
            .user("tester")
            .password("secret word")
            .security(RdesktopSecurity::PlainRdp)
            .depth(16)
            .size(800, 600)
            .arg("-v");
        let title = builder.title.clone();
        assert!(title.starts_with("rdesktop-test-3390-"), "{title}");
        assert_eq!(
            builder.args(),
            [
                "-u",
                "tester",
                "-p",
                "secret word",
                "-e",
                "-a",
                "16",
                "-g",
                "800x600",
                "-T",
                &title,
                "-v",
                "127.0.0.1:3390",
            ]
        );
        assert_eq!(
            Rdesktop::builder(server).args()[2..],
            ["127.0.0.1:3390".to_string()]
        );
    }

    /// Colours of the pattern, reduced and widened as rdesktop does.
    #[test]
    fn expected_colours_follow_rdesktop() {
        let widened = |depth| expected_image_at(200, 200, depth).get(0, 0);
        // The top-left quadrant is (220, 30, 30).
        assert_eq!(widened(ColorDepth::Bpp24), [220, 30, 30]);
        // 16 bpp: red 27, green 7 (of 63), blue 3.
        assert_eq!(widened(ColorDepth::Bpp16), [222, 28, 24]);
        // 15 bpp: red 27 (odd), green 3: green's low bits 0b100.
        assert_eq!(widened(ColorDepth::Bpp15), [222, 28, 24]);
        // The bottom-right quadrant is (250, 250, 250): red 31 is odd too.
        let white = expected_image_at(200, 200, ColorDepth::Bpp15).get(110, 130);
        assert_eq!(white, [255, 255, 255]);
    }

    #[test]
    fn private_homes_are_fresh_and_removed() {
        let home = PrivateHome::create(usize::MAX).expect("home");
        let path = home.path().to_path_buf();
        std::fs::write(path.join("known"), b"x").expect("write");
        drop(home);
        assert!(!path.exists());
        let again = PrivateHome::create(usize::MAX).expect("home");
        assert_eq!(std::fs::read_dir(again.path()).expect("dir").count(), 0);
    }
}
