//! Test support for rdpserve's cross-crate tests: real FreeRDP and
//! rdesktop clients under Xvfb (`x11`, `freerdp`, `rdesktop`), screen
//! captures (`image`), a server fixture that draws a known pattern and
//! records input (`server`), and the core's test client over loopback TCP
//! (`loopback`).
//!
//! `ironrdp_client.rs` beside these is not part of this library: the test
//! binaries that drive IronRDP include it, so its crates stay
//! dev-dependencies.

pub mod audio;
pub mod client;
pub mod freerdp;
pub mod image;
pub mod loopback;
pub mod rdesktop;
pub mod server;
pub mod x11;

use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

pub use freerdp::{ClientSecurity, FreeRdp, FreeRdpBuilder};
pub use image::{Comparison, RgbImage};
pub use x11::{WindowGeometry, Xvfb, capture_screen, wait_for_window};

/// The programs the interop tests drive.
pub const REQUIRED_PROGRAMS: [&str; 6] =
    ["xfreerdp", "Xvfb", "xwd", "xdotool", "xclip", "pulseaudio"];

/// Whether the interop tools are installed. When one is missing the test
/// fails if `RDPSERVE_REQUIRE_INTEROP=1` (as in CI), else it is reported as
/// skipped and the caller returns early.
pub fn require_interop() -> bool {
    require_programs(
        &REQUIRED_PROGRAMS,
        "freerdp2-x11 xvfb x11-apps xdotool xclip pulseaudio",
    )
}

/// Whether `programs` are all on the PATH. When one is missing the test
/// fails if `RDPSERVE_REQUIRE_INTEROP=1`, else it is reported as skipped
/// (naming the Debian `packages` that provide them) and the caller returns
/// early.
pub fn require_programs(programs: &[&str], packages: &str) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|program| !on_path(program))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "interop tools missing: {} (Debian: {packages})",
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

/// A TCP port on 127.0.0.1 that was free a moment ago (the OS picked it).
/// Another process may take it before the caller binds it; a server fixture
/// that binds port 0 itself and reports its address is race-free.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("binding 127.0.0.1:0 succeeds")
}

/// A directory for a test's logs and failure captures, under the target
/// dir: `$CARGO_TARGET_TMPDIR` when set, else `target/tmp` next to the
/// running test binary (cargo sets that variable only while compiling
/// integration tests, not when running them), else the system temporary
/// directory.
pub fn artifacts_dir(test: &str) -> std::path::PathBuf {
    let base = std::env::var_os("CARGO_TARGET_TMPDIR")
        .map(std::path::PathBuf::from)
        .or_else(target_tmp_dir)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join("rdpserve-interop").join(test);
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// `target/tmp` for a test binary at `target/PROFILE/deps/NAME`.
fn target_tmp_dir() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let deps = exe.parent()?;
    if deps.file_name()? != "deps" {
        return None;
    }
    Some(deps.parent()?.parent()?.join("tmp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_until_returns_the_first_success() {
        let mut calls = 0;
        let result: Result<u32, String> =
            wait_until(Duration::from_secs(60), Duration::from_millis(1), || {
                calls += 1;
                if calls == 3 {
                    Ok(calls)
                } else {
                    Err(format!("call {calls}"))
                }
            });
        assert_eq!(result, Ok(3));
    }

    #[test]
    fn wait_until_returns_the_last_observation_on_timeout() {
        let mut calls = 0;
        let result: Result<(), String> =
            wait_until(Duration::from_millis(50), Duration::from_millis(5), || {
                calls += 1;
                Err(format!("call {calls}"))
            });
        assert_eq!(result, Err(format!("call {calls}")));
        assert!(calls >= 2);
    }

    #[test]
    fn free_port_can_be_bound() {
        let port = free_port();
        assert_ne!(port, 0);
        let _listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("port is free");
    }

    #[test]
    fn on_path_finds_the_shell() {
        assert!(on_path("sh"));
        assert!(!on_path("rdpserve-no-such-program"));
    }
}
