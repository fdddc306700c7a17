//! Sessions of a real client (xfreerdp) recorded at the engine boundary and
//! replayed byte for byte: live on both runtimes, and from fixtures checked
//! into `tests/fixtures/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rdpserve_core::{ReplayError, replay};
use rdpserve_tests::freerdp::FreeRdp;
use rdpserve_tests::server::{self, Adapter, Security, TestServer};
use rdpserve_tests::x11::Xvfb;
use rdpserve_tests::{artifacts_dir, require_interop, wait_until};
use rdpserve_tokio::{DesktopSize, SessionEvent};

/// Small, so fixtures stay small: 200x200 is the smallest desktop RDP allows.
const SIZE: DesktopSize = DesktopSize {
    width: 200,
    height: 200,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(format!("{name}.rdprec"))
}

/// Runs one xfreerdp session against a recording server, types a key, ends
/// the session and returns the recording.
fn record_session(
    name: &str,
    adapter: Adapter,
    security: Security,
    client_security: &str,
) -> Vec<u8> {
    let dir = artifacts_dir(&format!("record-{name}"));
    let recordings = dir.join("recordings");
    let _ = std::fs::remove_dir_all(&recordings);
    std::fs::create_dir_all(&recordings).expect("recording directory");
    let server = TestServer::start_with(adapter, security, SIZE, Some(recordings.clone()));
    let xvfb = Xvfb::start(640, 480).expect("Xvfb starts");
    let args = vec![
        format!("/u:{}", server::USER),
        format!("/p:{}", server::PASSWORD),
        format!("/sec:{client_security}"),
        "/bpp:32".into(),
        format!("/size:{}x{}", SIZE.width, SIZE.height),
    ];
    let client = FreeRdp::spawn(&xvfb, server.addr, &args, dir.join("xfreerdp.log"))
        .expect("xfreerdp starts");
    let expected = server::expected_image(SIZE.width, SIZE.height);
    let rendered = wait_until(Duration::from_secs(45), Duration::from_millis(200), || {
        let geometry = xvfb.window_geometry("FreeRDP").map_err(|e| e.to_string())?;
        let capture = xvfb.capture().map_err(|e| e.to_string())?;
        match capture
            .compare_region(geometry.x, geometry.y, &expected)
            .mismatches
        {
            0 => Ok(geometry),
            n => Err(format!("{n} pixels differ")),
        }
    });
    let geometry =
        rendered.unwrap_or_else(|e| panic!("{name}: not rendered: {e}\n{}", client.log()));
    xvfb.move_mouse(geometry.x + 50, geometry.y + 50)
        .expect("mouse");
    xvfb.key("b").expect("key");
    let typed = server.collect_input(Duration::from_secs(20), |inputs| inputs.len() >= 3);
    assert!(!typed.is_empty(), "{name}: no input arrived");
    // Ending the client ends the session; wait until the server saw it.
    drop(client);
    let closed = server.wait_session_event(Duration::from_secs(20), |event| {
        matches!(event, SessionEvent::Closed { .. })
    });
    assert!(closed.is_some(), "{name}: session did not close");
    drop(server);
    let file = std::fs::read_dir(&recordings)
        .expect("recordings")
        .filter_map(Result::ok)
        .find(|entry| entry.path().extension().is_some_and(|ext| ext == "rdprec"))
        .expect("a recording was written");
    std::fs::read(file.path()).expect("read recording")
}

fn assert_replays(name: &str, recording: &[u8]) {
    let report = replay(recording, Some(server::validator()))
        .unwrap_or_else(|error| panic!("{name}: replay diverged: {error}"));
    // A logon, the pattern (planar-compressed), input and the goodbye.
    assert!(report.frames >= 10, "{name}: {report:?}");
    assert!(report.output_bytes >= 2_000, "{name}: {report:?}");
    assert!(report.events >= 4, "{name}: {report:?}");
}

#[test]
fn live_tls_session_on_tokio_replays() {
    if !require_interop() {
        return;
    }
    let recording = record_session("live-tls-tokio", Adapter::Tokio, Security::Tls, "tls");
    assert_replays("live-tls-tokio", &recording);
}

#[test]
fn live_nla_session_on_smol_replays() {
    if !require_interop() {
        return;
    }
    let recording = record_session("live-nla-smol", Adapter::Smol, Security::Nla, "nla");
    assert_replays("live-nla-smol", &recording);
}

#[test]
fn fixture_sessions_replay_byte_for_byte() {
    for name in ["xfreerdp-tls-tokio", "xfreerdp-nla-smol"] {
        let recording =
            std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"));
        assert_replays(name, &recording);
        // The password never appears in a recording, in UTF-16 or ASCII.
        let utf16: Vec<u8> = server::PASSWORD
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert!(
            !recording.windows(utf16.len()).any(|window| window == utf16),
            "{name}"
        );
        assert!(
            !recording
                .windows(server::PASSWORD.len())
                .any(|window| window == server::PASSWORD.as_bytes())
        );
    }
}

#[test]
fn fixture_replay_detects_a_one_byte_divergence() {
    let mut recording = std::fs::read(fixture("xfreerdp-tls-tokio")).expect("fixture");
    // The server's Demand Active carries the source descriptor "RDP\0".
    let at = recording
        .windows(4)
        .position(|window| window == b"RDP\0")
        .expect("demand active recorded");
    recording[at + 1] ^= 0x20;
    assert!(matches!(
        replay(&recording, Some(server::validator())),
        Err(ReplayError::OutputDiverged { .. })
    ));
}

/// Rewrites the fixtures from fresh xfreerdp sessions:
/// `cargo test -p rdpserve-tests --test record_replay -- --ignored`.
#[test]
#[ignore = "regenerates tests/fixtures; run by hand"]
fn regenerate_fixtures() {
    assert!(require_interop(), "regenerating fixtures needs xfreerdp");
    for (name, adapter, security, client) in [
        ("xfreerdp-tls-tokio", Adapter::Tokio, Security::Tls, "tls"),
        ("xfreerdp-nla-smol", Adapter::Smol, Security::Nla, "nla"),
    ] {
        let recording = record_session(name, adapter, security, client);
        assert_replays(name, &recording);
        std::fs::write(fixture(name), &recording).expect("write fixture");
    }
}
