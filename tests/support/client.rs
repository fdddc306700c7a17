//! What the real-client harnesses share: a client process whose output
//! goes to a log file, which a test can wait on (its window, its exit)
//! and which is killed by PID when dropped.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus};
use std::time::{Duration, Instant};

use crate::x11::{WindowGeometry, Xvfb};

/// A running client program (xfreerdp, rdesktop, ...).
pub struct ClientProcess {
    child: Child,
    /// The program's name, for messages.
    name: &'static str,
    log: PathBuf,
}

impl ClientProcess {
    /// Starts `command` with stdout and stderr going to `log`.
    pub fn spawn(mut command: Command, name: &'static str, log: PathBuf) -> io::Result<Self> {
        let output = std::fs::File::create(&log)?;
        let child = command.stdout(output.try_clone()?).stderr(output).spawn()?;
        Ok(Self { child, name, log })
    }

    /// Everything the client printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The client's stdin, when it was spawned with a pipe there; once.
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.stdin.take()
    }

    /// The client's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for `window` to find the client's window.
    /// Fails at once, with the client's log, if the client exits first.
    pub fn wait_for_window(
        &mut self,
        xvfb: &Xvfb,
        timeout: Duration,
        window: impl Fn(&Xvfb) -> io::Result<WindowGeometry>,
    ) -> io::Result<WindowGeometry> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "{name} exited with {status} before showing a window\n--- {name} log ---\n{}",
                    self.log(),
                    name = self.name,
                )));
            }
            match window(xvfb) {
                Ok(geometry) => return Ok(geometry),
                Err(error) if Instant::now() >= deadline => return Err(error),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// The exit status if the client has ended.
    pub fn try_status(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// Waits up to `timeout` for the client to exit; `None` if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        crate::x11::wait_bounded(&mut self.child, timeout)
    }
}

impl Drop for ClientProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
