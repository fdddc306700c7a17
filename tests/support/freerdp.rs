//! A FreeRDP 2 `xfreerdp` client process on an Xvfb display.
//!
//! What FreeRDP 2.x does, measured under Xvfb without a window manager:
//! - its window is named `FreeRDP: 127.0.0.1:PORT` ([`FreeRdp::window_name`]),
//!   sits at (0, 0), has no border and is exactly `/size:` large: the
//!   desktop is the window;
//! - when nothing listens on the port it logs
//!   `ERRCONNECT_CONNECT_TRANSPORT_FAILED` (after a misleading "Broken pipe")
//!   and exits with status 147 within a second;
//! - `-grab-keyboard` turns keyboard grabbing *off* (the default is on).

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::client::ClientProcess;
use crate::x11::{WindowGeometry, Xvfb};

/// A running xfreerdp; killed (by PID) when dropped. Its output goes to a
/// log file the test can print when it fails.
pub struct FreeRdp {
    process: ClientProcess,
    server: SocketAddr,
    /// The host in `/v:`, which names the window.
    host: String,
}

/// The arguments the fixture server's tests use: its account, `/sec:`
/// `security`, 32 bpp at `width` x `height`, INFO logs.
pub fn fixture_args(security: &str, width: u16, height: u16) -> Vec<String> {
    vec![
        format!("/u:{}", crate::server::USER),
        format!("/p:{}", crate::server::PASSWORD),
        format!("/sec:{security}"),
        "/bpp:32".into(),
        format!("/size:{width}x{height}"),
        "/log-level:INFO".into(),
    ]
}

/// The security protocol the client asks for (`/sec:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientSecurity {
    /// Standard RDP security (`/sec:rdp`).
    Rdp,
    Tls,
    /// TLS plus CredSSP (`/sec:nla`).
    Nla,
}

impl ClientSecurity {
    fn as_arg(self) -> &'static str {
        match self {
            Self::Rdp => "/sec:rdp",
            Self::Tls => "/sec:tls",
            Self::Nla => "/sec:nla",
        }
    }
}

/// Options for an xfreerdp client; anything unset keeps FreeRDP's default.
#[derive(Debug, Clone)]
pub struct FreeRdpBuilder {
    server: SocketAddr,
    user: Option<String>,
    password: Option<String>,
    domain: Option<String>,
    security: Option<ClientSecurity>,
    bpp: Option<u32>,
    size: Option<(u32, u32)>,
    log_level: Option<String>,
    grab_keyboard: bool,
    extra: Vec<String>,
    log: Option<PathBuf>,
    /// The host name in `/v:` instead of the server's address.
    host: Option<String>,
    /// The `/cert:` mode instead of `ignore`.
    cert: Option<String>,
    env: Vec<(String, String)>,
}

impl FreeRdpBuilder {
    /// Connects to `host` (`/v:HOST:PORT`, which FreeRDP also sends as
    /// the TLS server name unless it is an address) instead of the
    /// server's address.
    pub fn host(mut self, host: &str) -> Self {
        self.host = Some(host.into());
        self
    }

    /// The certificate check, `/cert:MODE` (default `ignore`).
    pub fn cert(mut self, mode: &str) -> Self {
        self.cert = Some(mode.into());
        self
    }

    /// An environment variable for the client (e.g. `HOME`).
    pub fn env(mut self, name: &str, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    pub fn user(mut self, user: &str) -> Self {
        self.user = Some(user.into());
        self
    }

    pub fn password(mut self, password: &str) -> Self {
        self.password = Some(password.into());
        self
    }

    pub fn domain(mut self, domain: &str) -> Self {
        self.domain = Some(domain.into());
        self
    }

    pub fn security(mut self, security: ClientSecurity) -> Self {
        self.security = Some(security);
        self
    }

    /// Colour depth: 32, 24, 16, 15 or 8.
    pub fn bpp(mut self, bpp: u32) -> Self {
        self.bpp = Some(bpp);
        self
    }

    /// Desktop (and, without a window manager, window) size.
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = Some((width, height));
        self
    }

    /// FreeRDP's log level: OFF, FATAL, ERROR, WARN, INFO, DEBUG or TRACE.
    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = Some(level.into());
        self
    }

    /// Whether xfreerdp grabs the keyboard (its default). Off, keys reach it
    /// only while the pointer is over its window.
    pub fn grab_keyboard(mut self, grab: bool) -> Self {
        self.grab_keyboard = grab;
        self
    }

    /// Any other xfreerdp argument, e.g. `/echo` or `-compression`.
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

    /// The arguments after `/v:` and `/cert:ignore`, as [`FreeRdp::spawn`]
    /// takes them.
    pub fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(user) = &self.user {
            args.push(format!("/u:{user}"));
        }
        if let Some(password) = &self.password {
            args.push(format!("/p:{password}"));
        }
        if let Some(domain) = &self.domain {
            args.push(format!("/d:{domain}"));
        }
        if let Some(security) = self.security {
            args.push(security.as_arg().into());
        }
        if let Some(bpp) = self.bpp {
            args.push(format!("/bpp:{bpp}"));
        }
        if let Some((width, height)) = self.size {
            args.push(format!("/size:{width}x{height}"));
        }
        if let Some(level) = &self.log_level {
            args.push(format!("/log-level:{level}"));
        }
        if !self.grab_keyboard {
            args.push("-grab-keyboard".into());
        }
        args.extend(self.extra.iter().cloned());
        args
    }

    /// Starts the client on `xvfb`.
    pub fn spawn(self, xvfb: &Xvfb) -> io::Result<FreeRdp> {
        let log = match &self.log {
            Some(path) => path.clone(),
            None => default_log_path(),
        };
        let host = match &self.host {
            Some(host) => host.clone(),
            None => self.server.ip().to_string(),
        };
        let env: Vec<(&str, String)> = self
            .env
            .iter()
            .map(|(name, value)| (name.as_str(), value.clone()))
            .collect();
        FreeRdp::spawn_full(
            xvfb,
            self.server,
            &host,
            self.cert.as_deref().unwrap_or("ignore"),
            &self.args(),
            &env,
            log,
        )
    }
}

/// A log file no other client in this test process uses.
fn default_log_path() -> PathBuf {
    static CLIENTS: AtomicUsize = AtomicUsize::new(0);
    let number = CLIENTS.fetch_add(1, Ordering::Relaxed);
    crate::artifacts_dir("xfreerdp").join(format!("{}-{number}.log", std::process::id()))
}

impl FreeRdp {
    /// Options for a client of `server`.
    pub fn builder(server: SocketAddr) -> FreeRdpBuilder {
        FreeRdpBuilder {
            server,
            user: None,
            password: None,
            domain: None,
            security: None,
            bpp: None,
            size: None,
            log_level: None,
            grab_keyboard: true,
            extra: Vec::new(),
            log: None,
            host: None,
            cert: None,
            env: Vec::new(),
        }
    }

    /// Connects to `server` with `/cert:ignore` and the given extra arguments
    /// (e.g. `/sec:tls`, `/u:user`, `/size:800x600`), writing its output to
    /// `log`.
    pub fn spawn(
        xvfb: &Xvfb,
        server: SocketAddr,
        args: &[String],
        log: PathBuf,
    ) -> io::Result<Self> {
        Self::spawn_with_env(xvfb, server, args, &[], log)
    }

    /// Like `spawn`, with extra environment variables (e.g. `PULSE_SERVER`).
    pub fn spawn_with_env(
        xvfb: &Xvfb,
        server: SocketAddr,
        args: &[String],
        env: &[(&str, String)],
        log: PathBuf,
    ) -> io::Result<Self> {
        let host = server.ip().to_string();
        Self::spawn_full(xvfb, server, &host, "ignore", args, env, log)
    }

    /// Connects to `host` on the server's port with `/cert:CERT`.
    fn spawn_full(
        xvfb: &Xvfb,
        server: SocketAddr,
        host: &str,
        cert: &str,
        args: &[String],
        env: &[(&str, String)],
        log: PathBuf,
    ) -> io::Result<Self> {
        // Line-buffered output (coreutils' stdbuf, which execs xfreerdp in
        // the same process), so the log can be read while the client runs.
        let mut command = Command::new("stdbuf");
        command
            .args(["-oL", "-eL", "xfreerdp"])
            .arg(format!("/v:{host}:{}", server.port()))
            .arg(format!("/cert:{cert}"))
            .args(args)
            .env("DISPLAY", xvfb.display())
            .envs(env.iter().map(|(name, value)| (*name, value)))
            .stdin(Stdio::null());
        let process = ClientProcess::spawn(command, "xfreerdp", log)?;
        Ok(Self {
            process,
            server,
            host: host.to_owned(),
        })
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

    /// The name FreeRDP 2 gives its window, `FreeRDP: HOST:PORT`.
    pub fn window_name(&self) -> String {
        format!("FreeRDP: {}:{}", self.host, self.server.port())
    }

    /// Waits up to `timeout` for this client's window. Fails at once, with
    /// the client's log, if the client exits first.
    pub fn wait_for_window(
        &mut self,
        xvfb: &Xvfb,
        timeout: Duration,
    ) -> io::Result<WindowGeometry> {
        let pattern = format!("^{}$", self.window_name().replace('.', "\\."));
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
    fn builder_makes_freerdp_2_arguments() {
        let server: SocketAddr = ([127, 0, 0, 1], 3389).into();
        let builder = FreeRdp::builder(server)
            .user("tester")
            .password("secret word")
            .domain("CONTOSO")
            .security(ClientSecurity::Nla)
            .bpp(16)
            .size(800, 600)
            .log_level("DEBUG")
            .grab_keyboard(false)
            .arg("/echo");
        assert_eq!(
            builder.args(),
            [
                "/u:tester",
                "/p:secret word",
                "/d:CONTOSO",
                "/sec:nla",
                "/bpp:16",
                "/size:800x600",
                "/log-level:DEBUG",
                "-grab-keyboard",
                "/echo",
            ]
        );
        assert!(FreeRdp::builder(server).args().is_empty());
    }

    /// What a test sees when the server is not there: a quick exit with a
    /// failure status and the reason in the log.
    #[test]
    fn unreachable_server_fails_with_a_diagnosable_log() {
        if !crate::require_interop() {
            return;
        }
        let xvfb = Xvfb::start(640, 480).expect("Xvfb starts");
        // Nothing listens on a port just released.
        let server = SocketAddr::from(([127, 0, 0, 1], crate::free_port()));
        let log = crate::artifacts_dir("selftest").join("xfreerdp-unreachable.log");
        let mut client = FreeRdp::builder(server)
            .user("nobody")
            .password("nothing")
            .security(ClientSecurity::Tls)
            .size(320, 240)
            .log_file(&log)
            .spawn(&xvfb)
            .expect("xfreerdp starts");
        let status = client
            .wait_exit(Duration::from_secs(60))
            .expect("wait")
            .unwrap_or_else(|| panic!("xfreerdp still running:\n{}", client.log()));
        assert!(!status.success(), "{status}");
        assert!(
            client.log().contains("ERRCONNECT_CONNECT_TRANSPORT_FAILED"),
            "{}",
            client.log()
        );
        assert_eq!(client.log_path(), log);
        let error = client
            .wait_for_window(&xvfb, Duration::from_secs(5))
            .expect_err("no window");
        assert!(error.to_string().contains("exited"), "{error}");
    }
}
