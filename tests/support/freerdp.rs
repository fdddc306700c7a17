//! A FreeRDP 2 `xfreerdp` client process on an Xvfb display.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::x11::Xvfb;

/// A running xfreerdp; killed (by PID) when dropped. Its output goes to a
/// log file the test can print when it fails.
pub struct FreeRdp {
    child: Child,
    log: PathBuf,
}

impl FreeRdp {
    /// Connects to `server` with `/cert:ignore` and the given extra arguments
    /// (e.g. `/sec:tls`, `/u:user`, `/size:800x600`).
    pub fn spawn(
        xvfb: &Xvfb,
        server: SocketAddr,
        args: &[String],
        log: PathBuf,
    ) -> io::Result<Self> {
        let output = File::create(&log)?;
        // Line-buffered output (coreutils' stdbuf), so the log can be read
        // while the client runs.
        let child = Command::new("stdbuf")
            .args(["-oL", "-eL", "xfreerdp"])
            .arg(format!("/v:{}:{}", server.ip(), server.port()))
            .arg("/cert:ignore")
            .args(args)
            .env("DISPLAY", xvfb.display())
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            .spawn()?;
        Ok(Self { child, log })
    }

    /// Everything the client printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The exit status if the client has ended.
    pub fn try_status(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// Waits up to `timeout` for the client to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for FreeRdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
