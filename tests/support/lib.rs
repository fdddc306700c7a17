//! Test support for rdpserve's cross-crate tests: a real FreeRDP client
//! under Xvfb (`x11`, `freerdp`), screen captures (`image`), and a server
//! fixture that draws a known pattern and records input (`server`).

pub mod freerdp;
pub mod image;
pub mod server;
pub mod x11;

use std::time::{Duration, Instant};

/// The programs the interop tests drive.
pub const REQUIRED_PROGRAMS: [&str; 4] = ["xfreerdp", "Xvfb", "xwd", "xdotool"];

/// Whether the interop tools are installed. When one is missing the test
/// fails if `RDPSERVE_REQUIRE_INTEROP=1` (as in CI), else it is reported as
/// skipped and the caller returns early.
pub fn require_interop() -> bool {
    let missing: Vec<&str> = REQUIRED_PROGRAMS
        .into_iter()
        .filter(|program| !on_path(program))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "interop tools missing: {} (Debian: freerdp2-x11 xvfb x11-apps xdotool)",
        missing.join(", ")
    );
    if std::env::var("RDPSERVE_REQUIRE_INTEROP").is_ok_and(|value| value == "1") {
        panic!("{message}");
    }
    eprintln!("SKIPPED: {message}");
    false
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Polls `probe` every `interval` until it returns `Ok`, or returns the last
/// `Err` once `timeout` has passed. Tests wait for a state, never a fixed time.
pub fn wait_until<T, E>(
    timeout: Duration,
    interval: Duration,
    mut probe: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let deadline = Instant::now() + timeout;
    loop {
        match probe() {
            Ok(value) => return Ok(value),
            Err(error) if Instant::now() >= deadline => return Err(error),
            Err(_) => std::thread::sleep(interval),
        }
    }
}

/// A directory for a test's logs and failure captures, under the target dir.
pub fn artifacts_dir(test: &str) -> std::path::PathBuf {
    let base = std::env::var_os("CARGO_TARGET_TMPDIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join("rdpserve-interop").join(test);
    let _ = std::fs::create_dir_all(&dir);
    dir
}
