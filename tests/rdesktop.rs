//! Real-client interop with rdesktop 1.9 under Xvfb: it connects over TLS
//! and over plain RDP (`-e`), renders the server's test pattern pixel for
//! pixel at 32, 24, 16 and 15 bpp, and its keyboard and mouse input
//! (injected with `xdotool`) reaches the server event by event. Recorded
//! rdesktop sessions in `tests/fixtures/` replay byte for byte without
//! rdesktop installed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rdpserve_codecs::ColorDepth;
use rdpserve_core::replay;
use rdpserve_tests::image::{Comparison, RgbImage};
use rdpserve_tests::rdesktop::{
    self, Rdesktop, RdesktopBuilder, RdesktopSecurity, require_rdesktop,
};
use rdpserve_tests::server::{
    self, Adapter, FixtureOptions, Input, Security, TestServer, contains_in_order,
};
use rdpserve_tests::x11::Xvfb;
use rdpserve_tests::{artifacts_dir, wait_until};
use rdpserve_tokio::{CloseReason, DesktopSize, Error, KeyboardEvent, MouseEvent, SessionEvent};

const SIZE: DesktopSize = DesktopSize {
    width: 800,
    height: 600,
};
/// Connecting, TLS and the first frame take about a second on loopback; the
/// bound is generous for a loaded CI machine.
const RENDER_TIMEOUT: Duration = Duration::from_secs(45);

fn client(
    server: &TestServer,
    security: RdesktopSecurity,
    depth: u32,
    test: &str,
) -> RdesktopBuilder {
    client_of(server, security, depth, SIZE, test)
}

fn client_of(
    server: &TestServer,
    security: RdesktopSecurity,
    depth: u32,
    size: DesktopSize,
    test: &str,
) -> RdesktopBuilder {
    Rdesktop::builder(server.addr)
        .user(server::USER)
        .password(server::PASSWORD)
        .security(security)
        .depth(depth)
        .size(u32::from(size.width), u32::from(size.height))
        .log_file(artifacts_dir(test).join("rdesktop.log"))
}

/// The picture rdesktop shows at `depth`.
fn expected_at(depth: u32, size: DesktopSize) -> RgbImage {
    let (width, height) = (size.width, size.height);
    match depth {
        24 => rdesktop::expected_image_at(width, height, ColorDepth::Bpp24),
        16 => rdesktop::expected_image_at(width, height, ColorDepth::Bpp16),
        15 => rdesktop::expected_image_at(width, height, ColorDepth::Bpp15),
        _ => server::expected_image(width, height),
    }
}

/// Waits until the client's window shows exactly `expected`; returns the
/// time it took. Saves the capture and prints the client log on failure.
fn assert_renders(test: &str, xvfb: &Xvfb, client: &mut Rdesktop, expected: &RgbImage) -> Duration {
    let started = Instant::now();
    let result = wait_until(RENDER_TIMEOUT, Duration::from_millis(200), || {
        if let Some(status) = client.try_status().map_err(|e| e.to_string())? {
            // The client gave up: no point waiting for pixels.
            return Err(format!("rdesktop exited with {status}"));
        }
        let window = client
            .window(xvfb)
            .map_err(|e| format!("no rdesktop window yet: {e}"))?;
        let capture = xvfb.capture().map_err(|e| e.to_string())?;
        let comparison = capture.compare_region(window.x, window.y, expected);
        if comparison.mismatches == 0 {
            return Ok(());
        }
        let path = artifacts_dir(test).join("capture.ppm");
        let _ = capture.save_ppm(&path);
        let _ = expected.save_ppm(&artifacts_dir(test).join("expected.ppm"));
        Err(describe(&comparison, &path))
    });
    if let Err(reason) = result {
        panic!(
            "{test}: picture not rendered: {reason}\n--- rdesktop log ---\n{}",
            client.log()
        );
    }
    started.elapsed()
}

fn describe(comparison: &Comparison, capture: &Path) -> String {
    format!(
        "{} pixels differ (psnr {:.1} dB), first (x, y, expected, got): {:?}; capture saved to {}",
        comparison.mismatches,
        comparison.psnr,
        comparison.first_mismatches,
        capture.display()
    )
}

/// Starts a server and an rdesktop at `depth`, and checks the pattern
/// arrives exactly; returns all three for more checks.
fn connect_and_render(
    test: &str,
    security: Security,
    client_security: RdesktopSecurity,
    depth: u32,
) -> Option<(TestServer, Xvfb, Rdesktop)> {
    if !require_rdesktop() {
        return None;
    }
    let server = TestServer::start(security, SIZE);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let mut client = client(&server, client_security, depth, test)
        .spawn(&xvfb)
        .expect("rdesktop starts");
    let elapsed = assert_renders(test, &xvfb, &mut client, &expected_at(depth, SIZE));
    eprintln!(
        "{test}: pattern rendered {} ms after starting rdesktop",
        elapsed.as_millis()
    );
    Some((server, xvfb, client))
}

/// Clicks, a key and the wheel in the client's window arrive at the
/// server in order, at the right place.
fn assert_input_arrives(test: &str, server: &TestServer, xvfb: &Xvfb, client: &Rdesktop) {
    let window = client.window(xvfb).expect("window");
    server.drain_input();
    // The keyboard follows the pointer (Xvfb without a window manager), so
    // the pointer goes into the window before typing.
    xvfb.move_mouse(window.x + 100, window.y + 150)
        .expect("mouse moves");
    xvfb.click(1).expect("left click");
    xvfb.click(3).expect("right click");
    xvfb.key("a").expect("key a");
    let expected = [
        Input::Mouse(MouseEvent::Move { x: 100, y: 150 }),
        Input::Mouse(MouseEvent::LeftPressed),
        Input::Mouse(MouseEvent::LeftReleased),
        Input::Mouse(MouseEvent::RightPressed),
        Input::Mouse(MouseEvent::RightReleased),
        Input::Keyboard(KeyboardEvent::Pressed {
            code: 0x1E,
            extended: false,
        }),
        Input::Keyboard(KeyboardEvent::Released {
            code: 0x1E,
            extended: false,
        }),
    ];
    let received = server.collect_input(Duration::from_secs(20), |received| {
        contains_in_order(received, &expected)
    });
    assert!(
        contains_in_order(&received, &expected),
        "{test}: expected {expected:?} in order, received {received:?}\n{}",
        client.log()
    );
    // An extended key (right arrow: 0x4D with the E0 prefix) and the
    // wheel, one notch up: rdesktop sends 0x80 rotation units per notch
    // where Windows clients send 120, and the server passes on what came.
    server.drain_input();
    xvfb.key("Right").expect("right arrow");
    xvfb.click(4).expect("wheel up");
    let expected = [
        Input::Keyboard(KeyboardEvent::Pressed {
            code: 0x4D,
            extended: true,
        }),
        Input::Keyboard(KeyboardEvent::Released {
            code: 0x4D,
            extended: true,
        }),
        Input::Mouse(MouseEvent::VerticalScroll { value: 128 }),
    ];
    let received = server.collect_input(Duration::from_secs(20), |received| {
        contains_in_order(received, &expected)
    });
    assert!(
        contains_in_order(&received, &expected),
        "{test}: expected {expected:?}, received {received:?}\n{}",
        client.log()
    );
}

#[test]
fn tls_at_32_bpp_renders_exactly_and_sends_input() {
    let test = "rdesktop-tls-32";
    let Some((server, xvfb, client)) =
        connect_and_render(test, Security::Tls, RdesktopSecurity::Negotiated, 32)
    else {
        return;
    };
    assert_input_arrives(test, &server, &xvfb, &client);
}

#[test]
fn tls_at_24_bpp_renders_exactly() {
    connect_and_render(
        "rdesktop-tls-24",
        Security::Tls,
        RdesktopSecurity::Negotiated,
        24,
    );
}

#[test]
fn tls_at_16_bpp_renders_exactly() {
    connect_and_render(
        "rdesktop-tls-16",
        Security::Tls,
        RdesktopSecurity::Negotiated,
        16,
    );
}

#[test]
fn tls_at_15_bpp_renders_exactly() {
    connect_and_render(
        "rdesktop-tls-15",
        Security::Tls,
        RdesktopSecurity::Negotiated,
        15,
    );
}

/// rdesktop asks for TLS first, is refused, and connects again with
/// standard RDP security; `-e` keeps it from encrypting.
#[test]
fn plain_rdp_renders_exactly_and_sends_input() {
    let test = "rdesktop-plain-16";
    let Some((server, xvfb, client)) =
        connect_and_render(test, Security::PlainRdp, RdesktopSecurity::PlainRdp, 16)
    else {
        return;
    };
    assert_input_arrives(test, &server, &xvfb, &client);
}

/// Without `-e` rdesktop sends a Security Exchange PDU to a server that
/// announced no encryption, and would encrypt everything after it: the
/// server refuses it, and says why.
#[test]
fn plain_rdp_with_rdesktop_encryption_is_refused() {
    if !require_rdesktop() {
        return;
    }
    let test = "rdesktop-plain-encrypted";
    let server = TestServer::start(Security::PlainRdp, SIZE);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let mut client = client(&server, RdesktopSecurity::Negotiated, 32, test)
        .spawn(&xvfb)
        .expect("rdesktop starts");
    let status = client.wait_exit(Duration::from_secs(30)).expect("wait");
    let status = status.unwrap_or_else(|| panic!("{test}: rdesktop still runs\n{}", client.log()));
    assert!(!status.success(), "{test}: {status}\n{}", client.log());
    let closed = server.wait_session_event(Duration::from_secs(10), |event| {
        matches!(
            event,
            SessionEvent::Closed {
                reason: CloseReason::Error(Error::Protocol(_)),
                ..
            }
        )
    });
    let Some(SessionEvent::Closed { reason, .. }) = closed else {
        panic!("{test}: no protocol error reported\n{}", client.log());
    };
    assert!(
        format!("{reason:?}").contains("security exchange"),
        "{test}: {reason:?}"
    );
}

/// Small, so fixtures stay small: 200x200 is the smallest desktop RDP allows.
const FIXTURE_SIZE: DesktopSize = DesktopSize {
    width: 200,
    height: 200,
};

/// The recorded sessions: name, server and client security, depth.
const FIXTURES: [(&str, Security, RdesktopSecurity, u32); 2] = [
    (
        "rdesktop-tls-32",
        Security::Tls,
        RdesktopSecurity::Negotiated,
        32,
    ),
    (
        "rdesktop-plain-16",
        Security::PlainRdp,
        RdesktopSecurity::PlainRdp,
        16,
    ),
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(format!("{name}.rdprec"))
}

/// Runs one rdesktop session against a recording server, types a key, ends
/// the session and returns the recording.
fn record_session(
    name: &str,
    security: Security,
    client_security: RdesktopSecurity,
    depth: u32,
) -> Vec<u8> {
    let dir = artifacts_dir(&format!("record-{name}"));
    let recordings = dir.join("recordings");
    let _ = std::fs::remove_dir_all(&recordings);
    std::fs::create_dir_all(&recordings).expect("recording directory");
    let options = FixtureOptions {
        record_dir: Some(recordings.clone()),
        ..FixtureOptions::default()
    };
    let server = TestServer::start_full(Adapter::Tokio, security, FIXTURE_SIZE, options);
    let xvfb = Xvfb::start(640, 480).expect("Xvfb starts");
    let mut client = client_of(&server, client_security, depth, FIXTURE_SIZE, name)
        .spawn(&xvfb)
        .expect("rdesktop starts");
    assert_renders(name, &xvfb, &mut client, &expected_at(depth, FIXTURE_SIZE));
    let window = client.window(&xvfb).expect("window");
    xvfb.move_mouse(window.x + 50, window.y + 50)
        .expect("mouse");
    xvfb.key("b").expect("key");
    let typed = server.collect_input(Duration::from_secs(20), |inputs| {
        inputs
            .iter()
            .any(|input| matches!(input, Input::Keyboard(_)))
    });
    assert!(!typed.is_empty(), "{name}: no input arrived");
    // Ending the client ends the session; wait until the server saw it.
    drop(client);
    let closed = server.wait_session_event(Duration::from_secs(20), |event| {
        matches!(event, SessionEvent::Closed { .. })
    });
    assert!(closed.is_some(), "{name}: session did not close");
    drop(server);
    // rdesktop's first connection, refused TLS under plain RDP, leaves a
    // recording too: the session is the largest.
    let file = std::fs::read_dir(&recordings)
        .expect("recordings")
        .filter_map(Result::ok)
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "rdprec"))
        .max_by_key(|entry| entry.metadata().map(|meta| meta.len()).unwrap_or(0))
        .expect("a recording was written");
    std::fs::read(file.path()).expect("read recording")
}

#[test]
fn fixture_sessions_replay_byte_for_byte() {
    for (name, ..) in FIXTURES {
        let recording =
            std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"));
        let report = replay(&recording, Some(server::validator()))
            .unwrap_or_else(|error| panic!("{name}: replay diverged: {error}"));
        // A logon, the pattern, input and the goodbye.
        assert!(report.frames >= 10, "{name}: {report:?}");
        assert!(report.output_bytes >= 2_000, "{name}: {report:?}");
        assert!(report.events >= 4, "{name}: {report:?}");
        // The password never appears in a recording, in UTF-16 or ASCII.
        let utf16: Vec<u8> = server::PASSWORD
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        for password in [&utf16[..], server::PASSWORD.as_bytes()] {
            assert!(
                !recording
                    .windows(password.len())
                    .any(|window| window == password),
                "{name}"
            );
        }
    }
}

/// Rewrites the rdesktop fixtures from fresh sessions:
/// `cargo test -p rdpserve-tests --test rdesktop -- --ignored`.
#[test]
#[ignore = "regenerates tests/fixtures; run by hand"]
fn regenerate_fixtures() {
    assert!(require_rdesktop(), "regenerating fixtures needs rdesktop");
    for (name, security, client_security, depth) in FIXTURES {
        let recording = record_session(name, security, client_security, depth);
        replay(&recording, Some(server::validator()))
            .unwrap_or_else(|error| panic!("{name}: replay diverged: {error}"));
        std::fs::write(fixture(name), &recording).expect("write fixture");
    }
}
