//! A PulseAudio server with only a null sink, for clients that play audio
//! in tests (Debian's FreeRDP 2 has no fake audio backend, and its ALSA
//! backend needs a mixer that ALSA's null device lacks).

use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::wait_until;

/// How long PulseAudio may take to open its socket.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A private PulseAudio daemon on a socket of its own; killed (by PID) when
/// dropped. Its runtime files live in a fresh directory.
pub struct NullSink {
    child: Child,
    dir: PathBuf,
}

impl NullSink {
    pub fn start() -> io::Result<Self> {
        let dir = crate::artifacts_dir("pulseaudio").join(format!(
            "{}-{}",
            std::process::id(),
            crate::free_port()
        ));
        std::fs::create_dir_all(&dir)?;
        let socket = dir.join("native");
        let log = std::fs::File::create(dir.join("pulseaudio.log"))?;
        // `-n`: no default configuration, only the modules named here.
        let child = Command::new("pulseaudio")
            .args([
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--use-pid-file=no",
                "--disable-shm=yes",
                "--log-target=stderr",
                "-L",
                "module-null-sink sink_name=rdpserve_null",
            ])
            .arg("-L")
            .arg(format!(
                "module-native-protocol-unix socket={} auth-anonymous=1",
                socket.display()
            ))
            .env("HOME", &dir)
            .env("XDG_RUNTIME_DIR", &dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        let mut sink = Self { child, dir };
        let started = wait_until(START_TIMEOUT, Duration::from_millis(50), || {
            if let Ok(Some(status)) = sink.child.try_wait() {
                return Err(format!("pulseaudio exited with {status}"));
            }
            if socket.exists() {
                Ok(())
            } else {
                Err("pulseaudio socket not there yet".to_owned())
            }
        });
        started.map_err(|error| io::Error::other(format!("{error}: {}", sink.log())))?;
        Ok(sink)
    }

    /// The value for a client's `PULSE_SERVER`.
    pub fn server(&self) -> String {
        format!("unix:{}", self.dir.join("native").display())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pulseaudio.log")).unwrap_or_default()
    }
}

impl Drop for NullSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
