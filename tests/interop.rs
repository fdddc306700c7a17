//! Real-client interop: FreeRDP 2 (`xfreerdp`) under Xvfb connects to the
//! server, renders its test pattern (checked pixel by pixel) and sends input
//! injected with `xdotool` (checked event by event).

use std::time::{Duration, Instant};

use rdpserve_codecs::ColorDepth;
use rdpserve_tests::freerdp::FreeRdp;
use rdpserve_tests::image::{Comparison, RgbImage};
use rdpserve_tests::server::{
    self, Adapter, FixtureOptions, Input, Security, TestServer, contains_in_order,
};
use rdpserve_tests::x11::Xvfb;
use rdpserve_tests::{artifacts_dir, require_interop, wait_until};
use rdpserve_tokio::{
    BitmapCompression, BitmapUpdate, CloseReason, CredentialValidator, Credentials, DesktopSize,
    DisplayUpdate, EchoError, Error, Graphics, KeyboardEvent, MouseEvent, PipelineCodec,
    PipelineStats, PixelFormat, Secret, SessionEvent,
};

const SIZE: DesktopSize = DesktopSize {
    width: 800,
    height: 600,
};
/// Connecting, TLS and the first frame take about a second on loopback; the
/// bound is generous for a loaded CI machine.
const RENDER_TIMEOUT: Duration = Duration::from_secs(45);

fn client_args(security: &str) -> Vec<String> {
    rdpserve_tests::freerdp::fixture_args(security, SIZE.width, SIZE.height)
}

/// Waits until the client's window shows exactly the pattern; returns the
/// time it took. Saves the capture and prints the client log on failure.
fn assert_renders_pattern(test: &str, xvfb: &Xvfb, client: &mut FreeRdp) -> Duration {
    assert_renders(
        test,
        xvfb,
        client,
        &server::expected_image(SIZE.width, SIZE.height),
    )
}

fn assert_renders(test: &str, xvfb: &Xvfb, client: &mut FreeRdp, expected: &RgbImage) -> Duration {
    let started = Instant::now();
    wait_for_picture(test, xvfb, client, expected, |comparison| {
        comparison.mismatches == 0
    });
    started.elapsed()
}

/// Waits until the client's window matches `expected` by `good_enough`;
/// saves the capture (and the expected picture) and prints the client log
/// if it never does.
fn wait_for_picture(
    test: &str,
    xvfb: &Xvfb,
    client: &mut FreeRdp,
    expected: &RgbImage,
    good_enough: impl Fn(&Comparison) -> bool,
) -> Comparison {
    let result = wait_until(RENDER_TIMEOUT, Duration::from_millis(200), || {
        if let Some(status) = client.try_status().map_err(|e| e.to_string())? {
            // The client gave up: no point waiting for pixels.
            return Err(format!("xfreerdp exited with {status}"));
        }
        // Without a window manager xfreerdp's window sits at the origin.
        let geometry = xvfb
            .window_geometry("FreeRDP")
            .map_err(|e| format!("no FreeRDP window yet: {e}"))?;
        let capture = xvfb.capture().map_err(|e| e.to_string())?;
        let comparison = capture.compare_region(geometry.x, geometry.y, expected);
        if good_enough(&comparison) {
            Ok(comparison)
        } else {
            let path = artifacts_dir(test).join("capture.ppm");
            let _ = capture.save_ppm(&path);
            let _ = expected.save_ppm(&artifacts_dir(test).join("expected.ppm"));
            Err(describe(&comparison, &path))
        }
    });
    match result {
        Ok(comparison) => comparison,
        Err(reason) => panic!(
            "{test}: picture not rendered: {reason}\n--- xfreerdp log ---\n{}",
            client.log()
        ),
    }
}

fn describe(comparison: &Comparison, capture: &std::path::Path) -> String {
    format!(
        "{} pixels differ (psnr {:.1} dB), first (x, y, expected, got): {:?}; capture saved to {}",
        comparison.mismatches,
        comparison.psnr,
        comparison.first_mismatches,
        capture.display()
    )
}

fn render_and_input(test: &str, security: Security, client_security: &str) {
    render_and_input_on(Adapter::Tokio, test, security, client_security);
}

fn render_and_input_on(adapter: Adapter, test: &str, security: Security, client_security: &str) {
    if !require_interop() {
        return;
    }
    let server = TestServer::start_on(adapter, security, SIZE);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let log = artifacts_dir(test).join("xfreerdp.log");
    let mut client = FreeRdp::spawn(&xvfb, server.addr, &client_args(client_security), log)
        .expect("xfreerdp starts");
    let elapsed = assert_renders_pattern(test, &xvfb, &mut client);
    eprintln!(
        "{test}: pattern rendered {} ms after starting xfreerdp",
        elapsed.as_millis()
    );

    let window = xvfb.window_geometry("FreeRDP").expect("window");
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
        "{test}: expected {expected:?} in order, received {received:?}"
    );
    // The wheel: one notch up is +120.
    server.drain_input();
    xvfb.click(4).expect("wheel up");
    let wheel = [Input::Mouse(MouseEvent::VerticalScroll { value: 120 })];
    let received = server.collect_input(Duration::from_secs(20), |received| {
        contains_in_order(received, &wheel)
    });
    assert!(
        contains_in_order(&received, &wheel),
        "{test}: expected {wheel:?}, received {received:?}"
    );
}

#[test]
fn tls_client_renders_pattern_and_sends_input() {
    render_and_input("tls", Security::Tls, "tls");
}

#[test]
fn plain_rdp_client_renders_pattern_and_sends_input() {
    render_and_input("plain-rdp", Security::PlainRdp, "rdp");
}

#[test]
fn two_clients_render_at_the_same_time() {
    if !require_interop() {
        return;
    }
    let server = TestServer::start(Security::Tls, SIZE);
    let first_display = Xvfb::start(1024, 768).expect("Xvfb starts");
    let second_display = Xvfb::start(1024, 768).expect("Xvfb starts");
    let dir = artifacts_dir("two-clients");
    let mut first = FreeRdp::spawn(
        &first_display,
        server.addr,
        &client_args("tls"),
        dir.join("first.log"),
    )
    .expect("first xfreerdp");
    let mut second = FreeRdp::spawn(
        &second_display,
        server.addr,
        &client_args("tls"),
        dir.join("second.log"),
    )
    .expect("second xfreerdp");
    assert_renders_pattern("two-clients-first", &first_display, &mut first);
    assert_renders_pattern("two-clients-second", &second_display, &mut second);
    // Both still connected: the second did not push the first out.
    assert!(
        first.try_status().expect("status").is_none(),
        "first client exited"
    );
    assert!(
        second.try_status().expect("status").is_none(),
        "second client exited"
    );
}

/// Connects with a wrong password: the client must give up, and the server
/// must report the failed logon.
fn assert_wrong_password_refused(
    test: &str,
    xvfb: &Xvfb,
    server: &TestServer,
    client_security: &str,
) {
    let mut args = client_args(client_security);
    args[1] = "/p:wrong".into();
    assert_logon_refused(test, xvfb, server, &args);
}

/// Connects with `args`: the client must give up, and the server must
/// report the failed logon.
fn assert_logon_refused(test: &str, xvfb: &Xvfb, server: &TestServer, args: &[String]) {
    let log = artifacts_dir(test).join("wrong.log");
    let mut client = FreeRdp::spawn(xvfb, server.addr, args, log).expect("xfreerdp starts");
    let status = client.wait_exit(Duration::from_secs(30)).expect("wait");
    let status = status.unwrap_or_else(|| {
        panic!(
            "{test}: client still connected with a wrong password:\n{}",
            client.log()
        )
    });
    assert!(
        !status.success(),
        "{test}: xfreerdp succeeded with a wrong password"
    );
    let failure = server.wait_session_event(Duration::from_secs(10), |event| {
        matches!(
            event,
            SessionEvent::Closed {
                reason: CloseReason::Error(Error::AuthenticationFailed),
                ..
            }
        )
    });
    assert!(
        failure.is_some(),
        "{test}: server did not report the failed logon"
    );
}

#[test]
fn wrong_password_is_refused() {
    if !require_interop() {
        return;
    }
    let server = TestServer::start(Security::Tls, SIZE);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    assert_wrong_password_refused("wrong-password", &xvfb, &server, "tls");
    // The server keeps serving: the right password still works afterwards.
    let log = artifacts_dir("wrong-password").join("xfreerdp-retry.log");
    let mut retry =
        FreeRdp::spawn(&xvfb, server.addr, &client_args("tls"), log).expect("xfreerdp starts");
    assert_renders_pattern("wrong-password-retry", &xvfb, &mut retry);
}

#[test]
fn nla_client_renders_pattern_and_sends_input() {
    render_and_input("nla", Security::Nla, "nla");
}

#[test]
fn nla_with_a_domain_and_a_wrong_password_then_success() {
    if !require_interop() {
        return;
    }
    let server = TestServer::start(Security::Nla, SIZE);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let dir = artifacts_dir("nla-wrong-password");

    // A wrong password: the client gives up and the server reports why.
    assert_wrong_password_refused("nla-wrong-password", &xvfb, &server, "nla");

    // The right password with a domain, then without: both log on.
    for (name, domain) in [("with-domain", Some("CONTOSO")), ("no-domain", None)] {
        let mut args = client_args("nla");
        if let Some(domain) = domain {
            args.push(format!("/d:{domain}"));
        }
        let mut client = FreeRdp::spawn(&xvfb, server.addr, &args, dir.join(format!("{name}.log")))
            .expect("xfreerdp starts");
        assert_renders_pattern(&format!("nla-{name}"), &xvfb, &mut client);
        let activated = server.wait_session_event(Duration::from_secs(10), |event| {
            matches!(event, SessionEvent::Activated { .. })
        });
        let Some(SessionEvent::Activated { info, .. }) = activated else {
            panic!("no activation reported");
        };
        assert_eq!(info.user_name, server::USER);
        assert_eq!(info.domain, domain.unwrap_or(""));
        assert!(
            info.delegated_password
                .is_some_and(|password| password.matches(server::PASSWORD))
        );
        drop(client);
    }
}

#[test]
fn smol_adapter_tls_renders_pattern_and_sends_input() {
    render_and_input_on(Adapter::Smol, "smol-tls", Security::Tls, "tls");
}

#[test]
fn smol_adapter_nla_renders_pattern_and_sends_input() {
    render_and_input_on(Adapter::Smol, "smol-nla", Security::Nla, "nla");
}

#[test]
fn embedded_loop_tls_renders_pattern_and_sends_input() {
    render_and_input_on(Adapter::Embedded, "embedded-tls", Security::Tls, "tls");
}

#[test]
fn embedded_loop_nla_renders_pattern_and_sends_input() {
    render_and_input_on(Adapter::Embedded, "embedded-nla", Security::Nla, "nla");
}

#[test]
fn uncompressed_bitmaps_render_exactly() {
    if !require_interop() {
        return;
    }
    let server = TestServer::start_full(
        Adapter::Tokio,
        Security::Tls,
        SIZE,
        FixtureOptions {
            compression: BitmapCompression::None,
            ..FixtureOptions::default()
        },
    );
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let log = artifacts_dir("uncompressed").join("xfreerdp.log");
    let mut client =
        FreeRdp::spawn(&xvfb, server.addr, &client_args("tls"), log).expect("xfreerdp starts");
    assert_renders_pattern("uncompressed", &xvfb, &mut client);
}

/// 15, 16 and 24 bpp clients get interleaved RLE at their depth; the screen
/// must equal the pattern reduced to that depth, pixel for pixel.
#[test]
fn lower_colour_depths_render_exactly() {
    if !require_interop() {
        return;
    }
    let server = TestServer::start(Security::Tls, SIZE);
    for (bits, depth) in [
        (24, ColorDepth::Bpp24),
        (16, ColorDepth::Bpp16),
        (15, ColorDepth::Bpp15),
    ] {
        let test = format!("bpp-{bits}");
        let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
        let mut args = client_args("tls");
        args[3] = format!("/bpp:{bits}");
        let log = artifacts_dir(&test).join("xfreerdp.log");
        let mut client = FreeRdp::spawn(&xvfb, server.addr, &args, log).expect("xfreerdp starts");
        let expected = server::expected_image_at(SIZE.width, SIZE.height, depth);
        assert_renders(&test, &xvfb, &mut client, &expected);
    }
}

/// The server sets a 32x32 RGBA pointer (then moves it): xfreerdp creates
/// an X cursor of that size, which its debug log reports.
#[test]
fn pointer_shape_reaches_the_client() {
    if !require_interop() {
        return;
    }
    let options = FixtureOptions {
        pointer: true,
        ..FixtureOptions::default()
    };
    let server = TestServer::start_full(Adapter::Tokio, Security::Tls, SIZE, options);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let mut args = client_args("tls");
    args[5] = "/log-level:DEBUG".into();
    let log = artifacts_dir("pointer").join("xfreerdp.log");
    let mut client = FreeRdp::spawn(&xvfb, server.addr, &args, log).expect("xfreerdp starts");
    assert_renders_pattern("pointer", &xvfb, &mut client);
    // The colour (AND/XOR) pointer first, then the RGBA one.
    let shown = |size: u16| format!("scaling pointer {size}x{size} --> {size}x{size}");
    let (colour, rgba) = (
        shown(server::COLOR_POINTER_SIZE),
        shown(server::POINTER_SIZE),
    );
    let result = wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
        let log = client.log();
        match (log.find(&colour), log.find(&rgba)) {
            (Some(first), Some(second)) if first < second => Ok(()),
            found => Err(format!(
                "{colour:?} then {rgba:?} not in the client log: {found:?}"
            )),
        }
    });
    if let Err(reason) = result {
        panic!("pointer: {reason}\n--- xfreerdp log ---\n{}", client.log());
    }
    // The session survives the pointer updates (position included).
    assert!(
        client.try_status().expect("status").is_none(),
        "client exited after the pointer updates"
    );
}

/// The application keeps its pointers in cache slots it chose and recalls
/// them with `DisplayUpdate::CachedPointer`: xfreerdp's debug log shows each
/// pointer created once (`xf_Pointer_New`) and then set again, by the same
/// object, when its slot is recalled (`xf_Pointer_Set`), the colour one
/// first. A recall of the wrong slot sets the other pointer or nothing.
#[test]
fn cached_pointers_are_recalled_from_the_slots_the_application_chose() {
    if !require_interop() {
        return;
    }
    let options = FixtureOptions {
        cached_pointers: true,
        ..FixtureOptions::default()
    };
    let server = TestServer::start_full(Adapter::Tokio, Security::Tls, SIZE, options);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let mut args = client_args("tls");
    args[5] = "/log-level:DEBUG".into();
    let log = artifacts_dir("cached-pointer").join("xfreerdp.log");
    let mut client = FreeRdp::spawn(&xvfb, server.addr, &args, log).expect("xfreerdp starts");
    assert_renders_pattern("cached-pointer", &xvfb, &mut client);
    // The pointer objects xfreerdp logs, in order, by what happened to them.
    let logged = |log: &str, what: &str| -> Vec<String> {
        log.lines()
            .filter_map(|line| line.split_once(what))
            .map(|(_, pointer)| pointer.trim().to_string())
            .collect()
    };
    let result = wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
        let log = client.log();
        let (created, set) = (
            logged(&log, "xf_Pointer_New: "),
            logged(&log, "xf_Pointer_Set: "),
        );
        let [colour, rgba] = created.as_slice() else {
            return Err(format!("pointers created: {created:?}"));
        };
        // Each shown when sent, then each again from its slot.
        let expected = [colour, rgba, colour, rgba];
        if set.iter().collect::<Vec<_>>() == expected {
            Ok(())
        } else {
            Err(format!("pointers set {set:?}, expected {expected:?}"))
        }
    });
    if let Err(reason) = result {
        panic!(
            "cached pointer: {reason}\n--- xfreerdp log ---\n{}",
            client.log()
        );
    }
    assert!(
        !client.log().contains("invalid pointer index"),
        "a recalled slot was empty"
    );
}

/// `xfreerdp /echo` opens the ECHO dynamic channel over DRDYNVC. A request
/// made for the connection before its handshake (from the observer, on
/// `SessionEvent::Connected`) and one made after activation come back with
/// their payloads and the connection's id, to the observer and to
/// `take_measurements`; requests to every client keep working too.
#[test]
fn echo_round_trips_over_the_dynamic_channel() {
    if !require_interop() {
        return;
    }
    let options = FixtureOptions {
        echo_on_connect: Some(b"before activation".to_vec()),
        ..FixtureOptions::default()
    };
    let server = TestServer::start_full(Adapter::Tokio, Security::Tls, SIZE, options);
    let echo = server.echo().expect("an echo handle").clone();
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let mut args = client_args("tls");
    args.push("/echo".into());
    let log = artifacts_dir("echo").join("xfreerdp.log");
    let mut client = FreeRdp::spawn(&xvfb, server.addr, &args, log).expect("xfreerdp starts");
    let connected = server.wait_session_event(Duration::from_secs(20), |event| {
        matches!(event, SessionEvent::Connected { .. })
    });
    let connection = connected.expect("a connection reported").connection();
    assert_renders_pattern("echo", &xvfb, &mut client);
    echo.send_request(connection, b"after activation".to_vec())
        .expect("the connection is alive");
    let mut payloads = Vec::new();
    while payloads.len() < 2 {
        let answer = server.wait_session_event(Duration::from_secs(20), |event| {
            matches!(event, SessionEvent::EchoRoundTrip(_))
        });
        let Some(SessionEvent::EchoRoundTrip(measurement)) = answer else {
            panic!("echo {payloads:?}: no more round trips\n{}", client.log());
        };
        assert_eq!(measurement.connection, connection);
        assert!(measurement.round_trip < Duration::from_secs(20));
        payloads.push(measurement.payload);
    }
    // In the order the requests were made.
    assert_eq!(
        payloads,
        [b"before activation".to_vec(), b"after activation".to_vec()]
    );
    let kept = echo.take_measurements();
    assert_eq!(
        kept.iter()
            .map(|measurement| (measurement.connection, measurement.payload.clone()))
            .collect::<Vec<_>>(),
        [
            (connection, b"before activation".to_vec()),
            (connection, b"after activation".to_vec())
        ]
    );
    // Requests to every client: an empty payload each.
    for round in 0..3 {
        server.request_echo();
        let answer = server.wait_session_event(Duration::from_secs(20), |event| {
            matches!(event, SessionEvent::EchoRoundTrip(_))
        });
        let Some(SessionEvent::EchoRoundTrip(measurement)) = answer else {
            panic!("echo {round}: no round trip reported\n{}", client.log());
        };
        assert!(measurement.payload.is_empty());
    }
    assert_eq!(echo.take_measurements().len(), 3);
    // A connection that is gone cannot be asked.
    drop(client);
    let closed = server.wait_session_event(Duration::from_secs(20), |event| {
        matches!(event, SessionEvent::Closed { .. })
    });
    assert_eq!(closed.map(|event| event.connection()), Some(connection));
    assert_eq!(
        echo.send_request(connection, b"too late".to_vec()),
        Err(EchoError::NoConnection(connection))
    );
}

/// A server-initiated resize: Deactivate All, a new Demand Active, the
/// finalization again; xfreerdp resizes its window and shows the pattern at
/// the new size.
#[test]
fn server_initiated_resize_reactivates_the_client() {
    if !require_interop() {
        return;
    }
    server_resize_renders("resize", &[]);
}

/// The server resizes the session to 640x480 once the client (`xfreerdp`
/// with `extra` arguments) is active: the client is reactivated, its window
/// follows, and it shows the pattern at the new size. Returns its log.
fn server_resize_renders(name: &str, extra: &[&str]) -> String {
    let smaller = DesktopSize {
        width: 640,
        height: 480,
    };
    let options = FixtureOptions {
        resize_to: Some(smaller),
        ..FixtureOptions::default()
    };
    let server = TestServer::start_full(Adapter::Tokio, Security::Tls, SIZE, options);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let mut args = client_args("tls");
    args.extend(extra.iter().map(|arg| arg.to_string()));
    let log = artifacts_dir(name).join("xfreerdp.log");
    let mut client = FreeRdp::spawn(&xvfb, server.addr, &args, log).expect("xfreerdp starts");
    let resized = server.wait_session_event(Duration::from_secs(30), |event| {
        matches!(event, SessionEvent::Resized { .. })
    });
    assert!(resized.is_some(), "no reactivation\n{}", client.log());
    let expected = server::expected_image(smaller.width, smaller.height);
    assert_renders(name, &xvfb, &mut client, &expected);
    let window = xvfb.window_geometry("FreeRDP").expect("window");
    assert_eq!(
        (window.width, window.height),
        (640, 480),
        "window follows the new size"
    );
    client.log()
}

/// `xfreerdp /dynamic-resolution`: resizing its window sends a Display
/// Control layout; the server follows with a reactivation and the client
/// shows the pattern at the new size.
#[test]
fn client_window_resize_follows_through_display_control() {
    if !require_interop() {
        return;
    }
    let options = FixtureOptions {
        follow_layout: true,
        ..FixtureOptions::default()
    };
    let server = TestServer::start_full(Adapter::Tokio, Security::Tls, SIZE, options);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let mut args = client_args("tls");
    args.push("/dynamic-resolution".into());
    let log = artifacts_dir("display-control").join("xfreerdp.log");
    let mut client = FreeRdp::spawn(&xvfb, server.addr, &args, log).expect("xfreerdp starts");
    assert_renders_pattern("display-control", &xvfb, &mut client);
    let ids = xvfb
        .xdotool(&["search", "--name", "FreeRDP"])
        .expect("window ids");
    for id in ids.lines() {
        let _ = xvfb.xdotool(&["windowsize", id, "700", "500"]);
    }
    let resized = server.wait_session_event(Duration::from_secs(30), |event| {
        matches!(event, SessionEvent::Resized { .. })
    });
    let Some(SessionEvent::Resized { size, .. }) = resized else {
        panic!("no resize after the window changed\n{}", client.log());
    };
    assert_eq!((size.width, size.height), (700, 500));
    let expected = server::expected_image(700, 500);
    assert_renders("display-control-resized", &xvfb, &mut client, &expected);
}

/// `xfreerdp +clipboard`: text, an image (CF_DIB) and HTML the server offers
/// are pasteable on the client (read back with `xclip -o` from the X
/// clipboard xfreerdp then owns), and
/// text copied on the client (`xclip -i`) reaches the server's backend,
/// byte for byte, non-ASCII included.
#[test]
fn clipboard_text_crosses_in_both_directions() {
    use rdpserve_tests::server::ClipboardReport;
    use rdpserve_tests::x11::run_bounded;
    use std::io::Write;
    use std::process::{Command, Stdio};

    if !require_interop() {
        return;
    }
    let server_text = "Grüße vom Server ✓ 日本語\nzweite Zeile";
    let client_text = "Ünïcødé from the client — ½ 🎉";
    let options = FixtureOptions {
        clipboard_text: Some(server_text.into()),
        ..FixtureOptions::default()
    };
    let server = TestServer::start_full(Adapter::Tokio, Security::Tls, SIZE, options);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let mut args = client_args("tls");
    args.push("+clipboard".into());
    let log = artifacts_dir("clipboard").join("xfreerdp.log");
    let mut client = FreeRdp::spawn(&xvfb, server.addr, &args, log).expect("xfreerdp starts");
    assert_renders_pattern("clipboard", &xvfb, &mut client);

    // Server to client: once xfreerdp took the server's format list it owns
    // the X clipboard, and reading it makes it fetch the data from us.
    let pasted = wait_until(Duration::from_secs(30), Duration::from_millis(250), || {
        let output = run_bounded(
            Command::new("xclip")
                .args(["-o", "-selection", "clipboard", "-t", "UTF8_STRING"])
                .env("DISPLAY", xvfb.display()),
            Duration::from_secs(10),
        )
        .map_err(|error| error.to_string())?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        if text == server_text {
            Ok(text)
        } else {
            Err(format!("clipboard holds {text:?}"))
        }
    });
    if let Err(error) = pasted {
        panic!("server text not pasteable: {error}\n{}", client.log());
    }
    assert!(
        server
            .wait_clipboard(Duration::from_secs(5), |report| matches!(
                report,
                ClipboardReport::Pasted(13)
            ))
            .is_some(),
        "the paste did not ask the server for CF_UNICODETEXT"
    );

    // The same copy holds an image and HTML: xfreerdp turns CF_DIB into
    // image/bmp and "HTML Format" into text/html.
    let read_target = |target: &str| {
        run_bounded(
            Command::new("xclip")
                .args(["-o", "-selection", "clipboard", "-t", target])
                .env("DISPLAY", xvfb.display()),
            Duration::from_secs(10),
        )
        .map(|output| output.stdout)
        .unwrap_or_default()
    };
    eprintln!(
        "TARGETS {:?}",
        String::from_utf8_lossy(&read_target("TARGETS"))
    );
    let bmp = read_target("image/bmp");
    assert!(
        bmp.starts_with(b"BM") && bmp.len() > 14,
        "not a bmp: {} bytes",
        bmp.len()
    );
    let (width, height, pixels) =
        rdpserve_tokio::pixels_from_dib(&bmp[14..]).expect("a readable dib");
    let (expected_width, expected_height, expected) = server::clipboard_image();
    assert_eq!((width, height), (expected_width, expected_height));
    assert_eq!(pixels, expected, "image pixels");
    let html = String::from_utf8_lossy(&read_target("text/html")).into_owned();
    assert!(
        html.contains(server::CLIPBOARD_HTML),
        "html fragment missing from {html:?}"
    );

    // Client to server: xclip owns the X clipboard (in the foreground, so it
    // can be ended by PID) and xfreerdp announces the copy to the server.
    let mut xclip = Command::new("xclip")
        .args(["-quiet", "-selection", "clipboard", "-i"])
        .env("DISPLAY", xvfb.display())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("xclip starts");
    {
        let mut stdin = xclip.stdin.take().expect("xclip stdin");
        stdin
            .write_all(client_text.as_bytes())
            .expect("text to xclip");
    }
    let received = server.wait_clipboard(Duration::from_secs(30), |report| {
        matches!(report, ClipboardReport::Text(_))
    });
    let _ = xclip.kill();
    let _ = xclip.wait();
    assert_eq!(
        received,
        Some(ClipboardReport::Text(client_text.into())),
        "client copy did not reach the server\n{}",
        client.log()
    );
}

/// `xfreerdp /sound:sys:pulse` on a PulseAudio null sink: the formats are
/// negotiated (44.1 kHz stereo 16-bit PCM picked), and 40 waves, more than
/// the queue holds, all play: every block is confirmed once, in order, and
/// the handler is held back by the full queue rather than piling up audio.
#[test]
fn sound_plays_with_wave_confirms_for_every_wave() {
    use rdpserve_tests::server::SoundReport;

    if !require_interop() {
        return;
    }
    const WAVES: usize = 40;
    let options = FixtureOptions {
        sound_waves: Some(WAVES),
        ..FixtureOptions::default()
    };
    let server = TestServer::start_full(Adapter::Tokio, Security::Tls, SIZE, options);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let mut args = client_args("tls");
    args.push("/sound:sys:pulse".into());
    let sink = rdpserve_tests::audio::NullSink::start().expect("pulseaudio starts");
    let log = artifacts_dir("sound").join("xfreerdp.log");
    let env = [("PULSE_SERVER", sink.server())];
    let mut client =
        FreeRdp::spawn_with_env(&xvfb, server.addr, &args, &env, log).expect("xfreerdp starts");
    assert_renders_pattern("sound", &xvfb, &mut client);
    let confirmed = |reports: &[SoundReport]| {
        reports
            .iter()
            .filter(|report| matches!(report, SoundReport::Confirmed(_)))
            .count()
    };
    let reports = server.collect_sound(Duration::from_secs(60), |reports| {
        confirmed(reports) >= WAVES
    });
    assert_eq!(
        reports.first(),
        Some(&SoundReport::Started(44_100, 2, 16)),
        "audio did not start\n{}",
        client.log()
    );
    let blocks: Vec<u8> = reports
        .iter()
        .filter_map(|report| match report {
            SoundReport::Confirmed(block) => Some(*block),
            _ => None,
        })
        .collect();
    let expected: Vec<u8> = (0..WAVES as u8).collect();
    let closed = server.wait_session_event(Duration::from_millis(100), |event| {
        matches!(event, SessionEvent::Closed { .. })
    });
    assert_eq!(blocks, expected, "{reports:?} {closed:?}\n{}", client.log());
    assert!(
        reports.contains(&SoundReport::QueueFull),
        "40 waves should exceed the 16-wave queue: {reports:?}"
    );
}

/// Waits until the client's window shows `expected` within `min_psnr` dB
/// (for lossy codecs); returns the PSNR reached.
fn assert_renders_within(
    test: &str,
    xvfb: &Xvfb,
    client: &mut FreeRdp,
    expected: &RgbImage,
    min_psnr: f64,
) -> f64 {
    wait_for_picture(test, xvfb, client, expected, |comparison| {
        comparison.psnr >= min_psnr
    })
    .psnr
}

/// `xfreerdp /rfx`: RemoteFX over stream surface bits with frame markers
/// and acknowledgements; the picture arrives within 40 dB PSNR at the
/// default quantization.
#[test]
fn remotefx_renders_within_40_db() {
    if !require_interop() {
        return;
    }
    let server = TestServer::start(Security::Tls, SIZE);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let mut args = client_args("tls");
    args.push("/rfx".into());
    let log = artifacts_dir("remotefx").join("xfreerdp.log");
    let mut client = FreeRdp::spawn(&xvfb, server.addr, &args, log).expect("xfreerdp starts");
    let expected = server::expected_image(SIZE.width, SIZE.height);
    let psnr = assert_renders_within("remotefx", &xvfb, &mut client, &expected, 40.0);
    eprintln!("remotefx psnr {psnr:.1} dB");
    // Flat areas, the bulk of a desktop, come out right: in every 64x64
    // tile of one colour, greys exactly and other colours within one level
    // (chroma is quantized to whole levels), the tile's last corner too.
    let window = xvfb.window_geometry("FreeRDP").expect("window");
    let shown =
        xvfb.capture()
            .expect("capture")
            .crop(window.x, window.y, expected.width, expected.height);
    let mut flat_tiles = 0;
    for top in (0..expected.height - 63).step_by(64) {
        for left in (0..expected.width - 63).step_by(64) {
            let colour = expected.get(left, top);
            let pixels = (top..top + 64).flat_map(|y| (left..left + 64).map(move |x| (x, y)));
            if pixels.clone().any(|(x, y)| expected.get(x, y) != colour) {
                continue;
            }
            flat_tiles += 1;
            let tolerance = if colour[0] == colour[1] && colour[1] == colour[2] {
                0
            } else {
                1
            };
            for (x, y) in pixels {
                let got = shown.get(x, y);
                assert!(
                    got.iter()
                        .zip(colour)
                        .all(|(&got, want)| got.abs_diff(want) <= tolerance),
                    "flat tile at ({left}, {top}): pixel ({x}, {y}) is {got:?}, not {colour:?}"
                );
            }
        }
    }
    assert!(
        flat_tiles >= 20,
        "only {flat_tiles} flat tiles in the pattern"
    );
}

/// A second whole-screen update that differs in three tiles: the client
/// ends up showing exactly the changed picture, over planar bitmaps and over
/// RemoteFX (within 40 dB). That only the changed tiles are encoded is
/// checked byte by byte in core/tests (session.rs, surface.rs).
#[test]
fn changed_tiles_update_the_screen() {
    if !require_interop() {
        return;
    }
    let options = FixtureOptions {
        second_frame: true,
        ..FixtureOptions::default()
    };
    let server = TestServer::start_full(Adapter::Tokio, Security::Tls, SIZE, options);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let expected = server::expected_changed_image(SIZE.width, SIZE.height);
    let log = artifacts_dir("changed-tiles").join("xfreerdp.log");
    let mut client =
        FreeRdp::spawn(&xvfb, server.addr, &client_args("tls"), log).expect("xfreerdp starts");
    assert_renders("changed-tiles", &xvfb, &mut client, &expected);
    drop(client);
    // A fresh display, so the first client's window cannot be mistaken
    // for the second's.
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let mut args = client_args("tls");
    args.push("/rfx".into());
    let log = artifacts_dir("changed-tiles-rfx").join("xfreerdp.log");
    let mut client = FreeRdp::spawn(&xvfb, server.addr, &args, log).expect("xfreerdp starts");
    assert_renders_within("changed-tiles-rfx", &xvfb, &mut client, &expected, 40.0);
}

/// The application overrides the codec mid-session: a `/rfx` client first
/// gets the lossy RemoteFX picture, then `DisplayUpdate::Graphics(Bitmaps)`
/// repaints it from the server's copy as planar bitmaps, and the screen
/// ends up exact, which RemoteFX alone never reaches (44 dB).
#[test]
fn the_application_switches_a_remotefx_session_to_bitmaps() {
    if !require_interop() {
        return;
    }
    let options = FixtureOptions {
        then_graphics: Some(Graphics::Bitmaps),
        ..FixtureOptions::default()
    };
    let server = TestServer::start_full(Adapter::Tokio, Security::Tls, SIZE, options);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let mut args = client_args("tls");
    args.push("/rfx".into());
    let log = artifacts_dir("switch-to-bitmaps").join("xfreerdp.log");
    let mut client = FreeRdp::spawn(&xvfb, server.addr, &args, log).expect("xfreerdp starts");
    assert_renders_pattern("switch-to-bitmaps", &xvfb, &mut client);
}

/// The fixture's pattern handed to the server in `format` (rows padded by
/// three bytes, a varying alpha or padding byte): the client shows it
/// exactly over planar bitmaps, reduced to 5-6-5 bits for 16-bit formats.
fn renders_in_format(format: PixelFormat) {
    if !require_interop() {
        return;
    }
    let test = format!("format-{format}");
    let options = FixtureOptions {
        pixel_format: format,
        ..FixtureOptions::default()
    };
    let server = TestServer::start_full(Adapter::Tokio, Security::Tls, SIZE, options);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let log = artifacts_dir(&test).join("xfreerdp.log");
    let mut client =
        FreeRdp::spawn(&xvfb, server.addr, &client_args("tls"), log).expect("xfreerdp starts");
    let expected = server::expected_image_in(format, SIZE.width, SIZE.height);
    assert_renders(&test, &xvfb, &mut client, &expected);
}

#[test]
fn bgrx32_renders_exactly() {
    renders_in_format(PixelFormat::BgrX32);
}

#[test]
fn bgra32_renders_exactly() {
    renders_in_format(PixelFormat::BgrA32);
}

#[test]
fn xbgr32_renders_exactly() {
    renders_in_format(PixelFormat::XBgr32);
}

#[test]
fn abgr32_renders_exactly() {
    renders_in_format(PixelFormat::ABgr32);
}

#[test]
fn rgbx32_renders_exactly() {
    renders_in_format(PixelFormat::RgbX32);
}

#[test]
fn rgba32_renders_exactly() {
    renders_in_format(PixelFormat::RgbA32);
}

#[test]
fn xrgb32_renders_exactly() {
    renders_in_format(PixelFormat::XRgb32);
}

#[test]
fn argb32_renders_exactly() {
    renders_in_format(PixelFormat::ARgb32);
}

#[test]
fn bgr24_renders_exactly() {
    renders_in_format(PixelFormat::Bgr24);
}

#[test]
fn rgb24_renders_exactly() {
    renders_in_format(PixelFormat::Rgb24);
}

#[test]
fn bgr16_renders_reduced_to_565() {
    renders_in_format(PixelFormat::Bgr16);
}

#[test]
fn rgb16_renders_reduced_to_565() {
    renders_in_format(PixelFormat::Rgb16);
}

/// What the running server's accounts change to in the credentials tests.
const NEW_PASSWORD: &str = "battery staple";
const HASHED_USER: &str = "hashed";
const HASHED_PASSWORD: &str = "only the hash is kept";

/// An account source that holds one user's password as an NT hash only,
/// in one domain.
struct HashedAccounts;

impl CredentialValidator for HashedAccounts {
    fn secret(&self, user: &str, domain: &str) -> Option<Secret> {
        (user == HASHED_USER && domain == "CONTOSO")
            .then(|| Secret::NtHash(rdpserve_tokio::nt_hash(HASHED_PASSWORD)))
    }
}

fn logon_args(client_security: &str, user: &str, password: &str) -> Vec<String> {
    let mut args = client_args(client_security);
    args[0] = format!("/u:{user}");
    args[1] = format!("/p:{password}");
    args
}

/// The password changes while the server runs: the old one is refused at
/// the next logon and the new one works, while a session logged on before
/// goes on; then a validator that holds only an NT hash takes over, and
/// its user logs on.
fn credentials_change_on_a_running_server(test: &str, security: Security, client_security: &str) {
    if !require_interop() {
        return;
    }
    let server = TestServer::start(security, SIZE);
    let credentials = server.credentials().expect("a credentials handle").clone();
    let dir = artifacts_dir(test);
    // One display per client, so each window is found on its own screen.
    let display = || Xvfb::start(1024, 768).expect("Xvfb starts");
    let before = display();
    let mut logged_on = FreeRdp::spawn(
        &before,
        server.addr,
        &client_args(client_security),
        dir.join("before.log"),
    )
    .expect("xfreerdp starts");
    assert_renders_pattern(&format!("{test}-before"), &before, &mut logged_on);

    credentials.set_credentials(Some(Credentials {
        username: server::USER.into(),
        password: NEW_PASSWORD.into(),
        domain: None,
    }));
    let old = display();
    assert_logon_refused(
        &format!("{test}-old"),
        &old,
        &server,
        &logon_args(client_security, server::USER, server::PASSWORD),
    );
    let new = display();
    let mut client = FreeRdp::spawn(
        &new,
        server.addr,
        &logon_args(client_security, server::USER, NEW_PASSWORD),
        dir.join("new.log"),
    )
    .expect("xfreerdp starts");
    assert_renders_pattern(&format!("{test}-new"), &new, &mut client);
    drop(client);

    credentials.set_credential_validator(HashedAccounts);
    let hashed = display();
    let mut args = logon_args(client_security, HASHED_USER, HASHED_PASSWORD);
    args.push("/d:CONTOSO".into());
    let mut client = FreeRdp::spawn(&hashed, server.addr, &args, dir.join("hashed.log"))
        .expect("xfreerdp starts");
    assert_renders_pattern(&format!("{test}-hashed"), &hashed, &mut client);
    assert!(
        logged_on.try_status().expect("status").is_none(),
        "{test}: the session from before the changes ended\n{}",
        logged_on.log()
    );
}

#[test]
fn tls_credentials_changed_on_a_running_server_apply_at_the_next_logon() {
    credentials_change_on_a_running_server("credentials-tls", Security::Tls, "tls");
}

#[test]
fn nla_credentials_changed_on_a_running_server_apply_at_the_next_logon() {
    credentials_change_on_a_running_server("credentials-nla", Security::Nla, "nla");
}

/// What the Graphics Pipeline tests ask xfreerdp to log: its dynamic
/// channel opening and a line per WireToSurface1 with the codec id.
const GFX_LOG_FILTERS: &str = "/log-filters:com.freerdp.channels.drdynvc.client:DEBUG,\
com.freerdp.channels.rdpgfx.client:DEBUG,com.freerdp.gdi:TRACE";

/// Asserts the client's log (under `GFX_LOG_FILTERS`) shows the Graphics
/// Pipeline's dynamic channel opened.
fn assert_gfx_channel(log: &str) {
    assert!(
        log.lines()
            .any(|line| line.contains("Microsoft::Windows::RDS::Graphics")),
        "no Graphics Pipeline channel in the client's log\n{log}"
    );
}

/// The codec ids of the WireToSurface1s in the client's log, in order
/// (gdi's TRACE line `surfaceId=…, codec=N` for each).
fn gfx_codecs(log: &str) -> Vec<&str> {
    log.lines()
        .filter_map(|line| {
            line.split("codec=")
                .nth(1)?
                .split(|c: char| !c.is_ascii_digit())
                .next()
        })
        .collect()
}

/// Asserts the client's log shows it decoded H.264 (rdpgfx's DEBUG
/// `H264_METABLOCK` lines), not only acknowledged frames.
fn assert_h264_metablocks(log: &str) {
    assert!(
        log.lines().any(|line| line.contains("H264_METABLOCK")),
        "no H264_METABLOCK in the client's log\n{log}"
    );
}

/// `xfreerdp /gfx`: the server opens the Graphics Pipeline, the client
/// renders the pattern from planar WireToSurface1 PDUs through ZGFX
/// (FreeRDP's decoder is the independent check of the compressor), pixel
/// for pixel, and its own log shows the channel and codec 10 (planar).
#[test]
fn graphics_pipeline_renders_planar_exactly() {
    if !require_interop() {
        return;
    }
    let server = TestServer::start(Security::Tls, SIZE);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let mut args = client_args("tls");
    args.push("/gfx".into());
    args.push(GFX_LOG_FILTERS.into());
    let log = artifacts_dir("gfx-planar").join("xfreerdp.log");
    let mut client = FreeRdp::spawn(&xvfb, server.addr, &args, log).expect("xfreerdp starts");
    let changed = server.wait_session_event(Duration::from_secs(30), |event| {
        matches!(event, SessionEvent::GraphicsChanged { .. })
    });
    assert!(
        matches!(
            changed,
            Some(SessionEvent::GraphicsChanged {
                graphics: Graphics::Pipeline(PipelineCodec::Planar),
                ..
            })
        ),
        "the application learns of the pipeline: {changed:?}\n{}",
        client.log()
    );
    assert_renders_pattern("gfx-planar", &xvfb, &mut client);
    let log = client.log();
    assert_gfx_channel(&log);
    let planar = log.lines().filter(|line| line.contains("codec=10")).count();
    assert!(
        planar > 0,
        "no planar WireToSurface1 in the client's log\n{log}"
    );
    assert!(
        !log.lines().any(|line| line.contains("codec=0,")),
        "uncompressed tiles where planar was chosen\n{log}"
    );
}

/// What a perfect AVC420 path shows of `image`: B, G, R, X to I420 as the
/// server converts (BT.709 full range, chroma the mean of each 2x2 block),
/// back to R, G, B as the client does (each block's chroma for its four
/// pixels). 4:2:0 itself smears colour at sharp coloured edges: the
/// pattern's dark text on red comes back at about 19 dB before any H.264
/// loss, which is what AVC444 is for.
fn through_yuv420(image: &RgbImage) -> RgbImage {
    let (width, height) = (image.width as usize, image.height as usize);
    let bgrx: Vec<u8> = image
        .pixels
        .iter()
        .flat_map(|&[r, g, b]| [b, g, r, 0xFF])
        .collect();
    let source = rdpserve_codecs::Image {
        width,
        height,
        stride: width * 4,
        data: &bgrx,
    };
    let mut planes = rdpserve_codecs::I420::default();
    planes
        .convert_from(&source, 0, 0, width, height)
        .expect("the pattern converts");
    let mut out = image.clone();
    for y in 0..height {
        for x in 0..width {
            let luma = f64::from(planes.y[y * planes.width + x]);
            let chroma = (y / 2) * (planes.width / 2) + x / 2;
            let u = f64::from(planes.u[chroma]) - 128.0;
            let v = f64::from(planes.v[chroma]) - 128.0;
            let level = |value: f64| value.round().clamp(0.0, 255.0) as u8;
            out.pixels[y * width + x] = [
                level(luma + 1.5748 * v),
                level(luma - 0.1873 * u - 0.4681 * v),
                level(luma + 1.8556 * u),
            ];
        }
    }
    out
}

/// `xfreerdp /gfx:AVC420` (8.0 and 8.1 with AVC420_ENABLED) against a
/// server asking for H.264: the client shows what 4:2:0 can show of the
/// pattern (`through_yuv420`) within 38 dB PSNR, and its own log shows
/// the pipeline's channel, every WireToSurface1 in codec 11 (AVC420) with
/// its metablock, and no other codec. A broken stream would only log a
/// warning and still be acknowledged, so the pixels are the proof.
#[test]
fn graphics_pipeline_renders_avc420_within_38_db() {
    if !require_interop() {
        return;
    }
    let options = FixtureOptions {
        avc420_pipeline: true,
        ..FixtureOptions::default()
    };
    let server = TestServer::start_full(Adapter::Tokio, Security::Tls, SIZE, options);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let mut args = client_args("tls");
    args.push("/gfx:AVC420".into());
    args.push(GFX_LOG_FILTERS.into());
    let log = artifacts_dir("gfx-avc420").join("xfreerdp.log");
    let mut client = FreeRdp::spawn(&xvfb, server.addr, &args, log).expect("xfreerdp starts");
    let changed = server.wait_session_event(Duration::from_secs(30), |event| {
        matches!(event, SessionEvent::GraphicsChanged { .. })
    });
    assert!(
        matches!(
            changed,
            Some(SessionEvent::GraphicsChanged {
                graphics: Graphics::Pipeline(PipelineCodec::Avc420),
                ..
            })
        ),
        "the application learns of H.264: {changed:?}\n{}",
        client.log()
    );
    let pattern = server::expected_image(SIZE.width, SIZE.height);
    let expected = through_yuv420(&pattern);
    let psnr = assert_renders_within("gfx-avc420", &xvfb, &mut client, &expected, 38.0);
    let window = xvfb.window_geometry("FreeRDP").expect("window");
    let shown = xvfb.capture().expect("capture");
    eprintln!(
        "gfx-avc420 psnr {psnr:.1} dB against 4:2:0 of the pattern, {:.1} dB against the pattern",
        shown.compare_region(window.x, window.y, &pattern).psnr
    );
    let log = client.log();
    assert_gfx_channel(&log);
    let codecs = gfx_codecs(&log);
    assert!(
        !codecs.is_empty() && codecs.iter().all(|codec| *codec == "11"),
        "WireToSurface1 codecs {codecs:?}, expected only 11 (AVC420)\n{log}"
    );
    assert_h264_metablocks(&log);
}

/// `xfreerdp /gfx:AVC444` (up to 10.7, AVC_THINCLIENT set: it prefers
/// AVC444) against a server asking for H.264: both views of one stream,
/// full colour resolution. The whole pattern arrives within 38 dB, its
/// lower half (a gradient band, a photo, flat colour) too, beyond anything
/// 4:2:0 can give it (AVC420's bound on it is 32 dB: its dark text on red
/// comes back at 19 dB there). That needs the main view's chroma chosen
/// for FreeRDP 2.11's combine rule (`Avc444Views::MEAN_ROWS`): with the
/// block mean everywhere the whole pattern came back at 36.6 dB, the text
/// box at 24. The client's log shows only codec 14 or 15 and the
/// metablocks.
#[test]
fn graphics_pipeline_renders_avc444_in_full_colour() {
    if !require_interop() {
        return;
    }
    let options = FixtureOptions {
        avc420_pipeline: true,
        ..FixtureOptions::default()
    };
    let server = TestServer::start_full(Adapter::Tokio, Security::Tls, SIZE, options);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let mut args = client_args("tls");
    args.push("/gfx:AVC444".into());
    args.push(GFX_LOG_FILTERS.into());
    let log = artifacts_dir("gfx-avc444").join("xfreerdp.log");
    let mut client = FreeRdp::spawn(&xvfb, server.addr, &args, log).expect("xfreerdp starts");
    let changed = server.wait_session_event(Duration::from_secs(30), |event| {
        matches!(event, SessionEvent::GraphicsChanged { .. })
    });
    assert!(
        matches!(
            changed,
            Some(SessionEvent::GraphicsChanged {
                graphics: Graphics::Pipeline(PipelineCodec::Avc444),
                ..
            })
        ),
        "the application learns of AVC444: {changed:?}\n{}",
        client.log()
    );
    let expected = server::expected_image(SIZE.width, SIZE.height);
    let psnr = assert_renders_within("gfx-avc444", &xvfb, &mut client, &expected, 38.0);
    let window = xvfb.window_geometry("FreeRDP").expect("window");
    let half = u32::from(SIZE.height) / 2;
    let lower = expected.crop(0, half, expected.width, expected.height - half);
    let lower_psnr = xvfb
        .capture()
        .expect("capture")
        .compare_region(window.x, window.y + half, &lower)
        .psnr;
    eprintln!(
        "gfx-avc444 psnr {psnr:.1} dB against the pattern, {lower_psnr:.1} dB its lower half"
    );
    assert!(
        lower_psnr >= 38.0,
        "the lower half at {lower_psnr:.1} dB\n{}",
        client.log()
    );
    let log = client.log();
    assert_gfx_channel(&log);
    let codecs = gfx_codecs(&log);
    assert!(
        !codecs.is_empty() && codecs.iter().all(|codec| *codec == "14" || *codec == "15"),
        "WireToSurface1 codecs {codecs:?}, expected only 14 or 15 (AVC444)\n{log}"
    );
    assert_h264_metablocks(&log);
}

/// AVC444 across frames: after the first frame, a document in a window
/// of the desktop changes three times (not a scroll: its blue changes),
/// so each later frame's two views are predicted pictures, each from its
/// own view's previous picture through openh264's long-term references
/// (one encoder, one stream, as the client decodes both views with one
/// decoder). The client shows each state within 36 dB (the document's
/// dense one-pixel text is at about 36 dB at QP 22, key frame or not; the
/// whole picture at 38), the parts that did not change within 40 dB, and
/// its log shows four or more AVC444 WireToSurface1s.
#[test]
fn graphics_pipeline_avc444_predicts_each_view_from_its_own() {
    if !require_interop() {
        return;
    }
    let options = FixtureOptions {
        avc420_pipeline: true,
        ..FixtureOptions::default()
    };
    let server = TestServer::start_full(Adapter::Tokio, Security::Tls, SIZE, options);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let mut args = client_args("tls");
    args.push("/gfx:AVC444".into());
    args.push(GFX_LOG_FILTERS.into());
    let log = artifacts_dir("gfx-avc444-predicted").join("xfreerdp.log");
    let mut client = FreeRdp::spawn(&xvfb, server.addr, &args, log).expect("xfreerdp starts");
    let mut expected = server::expected_image(SIZE.width, SIZE.height);
    assert_renders_within("gfx-avc444-predicted", &xvfb, &mut client, &expected, 38.0);
    let (left, top, width, height) = (96 + 5, 64 + 3, 512, 470);
    for step in 1..=3u8 {
        let mut pixels = document(width, height, 0);
        for pixel in pixels.chunks_exact_mut(4) {
            pixel[0] ^= step * 16;
        }
        let page = Patch {
            left,
            top,
            width,
            height,
            pixels,
        };
        server.send_update(page.update());
        page.draw_on(&mut expected);
        let psnr = assert_renders_within(
            &format!("gfx-avc444-predicted-{step}"),
            &xvfb,
            &mut client,
            &expected,
            36.0,
        );
        // The unchanged parts are skipped macroblocks: copies of the
        // view's own earlier picture. Predicted from the other view they
        // would be the wrong picture altogether.
        let window = xvfb.window_geometry("FreeRDP").expect("window");
        let shown = xvfb.capture().expect("capture");
        let unchanged =
            [(0, 0, 800, 64), (0, 540, 800, 60), (620, 64, 180, 476)].map(|(x, y, w, h)| {
                shown
                    .compare_region(window.x + x, window.y + y, &expected.crop(x, y, w, h))
                    .psnr
            });
        eprintln!(
            "gfx-avc444-predicted step {step}: {psnr:.1} dB, unchanged parts {unchanged:.1?} dB"
        );
        assert!(
            unchanged.iter().all(|&psnr| psnr >= 40.0),
            "step {step}: unchanged parts at {unchanged:.1?} dB"
        );
    }
    let log = client.log();
    assert_gfx_channel(&log);
    let codecs = gfx_codecs(&log);
    assert!(
        codecs.len() >= 4 && codecs.iter().all(|codec| *codec == "14" || *codec == "15"),
        "WireToSurface1 codecs {codecs:?}, expected four or more, all 14 or 15 (AVC444)\n{log}"
    );
}

/// The application's own H.264 encoder (`DisplayUpdate::Avc420`): the
/// test encodes the changed pattern with openh264 (a key picture of the
/// desktop, sides rounded up to 16), hands it to the session, and
/// `xfreerdp /gfx:AVC420` shows it within 38 dB of what 4:2:0 can show,
/// its log proving codec 11 and the metablock; the server's own frames
/// before it were planar.
#[test]
fn graphics_pipeline_shows_pre_encoded_avc420_frames() {
    if !require_interop() {
        return;
    }
    let server = TestServer::start(Security::Tls, SIZE);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let mut args = client_args("tls");
    args.push("/gfx:AVC420".into());
    args.push(GFX_LOG_FILTERS.into());
    let log = artifacts_dir("gfx-pre-encoded").join("xfreerdp.log");
    let mut client = FreeRdp::spawn(&xvfb, server.addr, &args, log).expect("xfreerdp starts");
    let changed = server.wait_session_event(Duration::from_secs(30), |event| {
        matches!(event, SessionEvent::GraphicsChanged { .. })
    });
    assert!(changed.is_some(), "the pipeline starts\n{}", client.log());
    assert_renders_pattern("gfx-pre-encoded", &xvfb, &mut client);
    // The application's encoder: the changed pattern, padded to 16.
    let (width, height) = (usize::from(SIZE.width), usize::from(SIZE.height));
    let padded_height = height.next_multiple_of(16);
    let mut pixels = server::changed_pattern(SIZE.width, SIZE.height);
    let last_row = pixels[(height - 1) * width * 4..].to_vec();
    for _ in height..padded_height {
        pixels.extend_from_slice(&last_row);
    }
    let image = rdpserve_codecs::Image {
        width,
        height: padded_height,
        stride: width * 4,
        data: &pixels,
    };
    let mut picture = rdpserve_codecs::I420::default();
    picture
        .convert_from(&image, 0, 0, width, padded_height)
        .expect("converts");
    let mut encoder = rdpserve_codecs::H264Encoder::new(rdpserve_codecs::H264Settings::default())
        .expect("openh264");
    let mut stream = Vec::new();
    encoder.encode(&picture, &mut stream).expect("encodes");
    server.send_update(rdpserve_tokio::DisplayUpdate::Avc420(
        rdpserve_tokio::Avc420Update {
            stream,
            regions: vec![rdpserve_tokio::AvcRegion {
                left: 0,
                top: 0,
                right: SIZE.width,
                bottom: SIZE.height,
                qp: rdpserve_codecs::H264Settings::DEFAULT_QP,
                quality: 57,
            }],
        },
    ));
    let expected = through_yuv420(&server::expected_changed_image(SIZE.width, SIZE.height));
    let psnr = assert_renders_within("gfx-pre-encoded", &xvfb, &mut client, &expected, 38.0);
    eprintln!("gfx-pre-encoded psnr {psnr:.1} dB against 4:2:0 of the changed pattern");
    let log = client.log();
    assert_gfx_channel(&log);
    assert!(
        log.lines().any(|line| line.contains("codec=10")),
        "the server's own frames were planar\n{log}"
    );
    assert!(
        log.lines().any(|line| line.contains("codec=11")),
        "no AVC420 WireToSurface1 in the client's log\n{log}"
    );
    assert_h264_metablocks(&log);
}

/// A video-like `width` x `height` picture for `frame`: a smooth
/// pattern that moves, plus grain; hundreds of colours, as the
/// content-adaptive classifier sees a video.
fn video_frame(width: usize, height: usize, frame: usize) -> Vec<u8> {
    (0..width * height)
        .flat_map(|i| {
            let (x, y) = (i % width, i / width);
            let grain = ((x * 7919 + y * 104_729 + frame * 31) % 13) as u8;
            let wave = |scale: usize, shift: usize| {
                let phase = (x * scale + y * (scale + 1) + frame * shift) % 256;
                (if phase < 128 {
                    phase * 2
                } else {
                    511 - phase * 2
                }) as u8
            };
            [
                wave(2, 9).saturating_add(grain),
                wave(3, 5).saturating_add(grain),
                wave(1, 7).saturating_add(grain),
                0xFF,
            ]
        })
        .collect()
}

/// `xfreerdp /gfx:AVC420` against a content-adaptive server: the pattern
/// arrives pixel-exact (any tile sent lossy refreshed losslessly), then a
/// 256x128 video-like region plays over it for twelve frames. During the
/// motion everything outside the video stays pixel-exact; after it stops,
/// the lossless refresh makes the whole window pixel-exact to the last
/// frame. The client's log shows planar (codec 10) and AVC420 (codec 11)
/// WireToSurface1 PDUs, and the server's figures lossy and refreshed
/// tiles.
#[test]
fn graphics_pipeline_adaptive_mixes_planar_and_avc420_then_refreshes() {
    if !require_interop() {
        return;
    }
    let options = FixtureOptions {
        adaptive_pipeline: true,
        ..FixtureOptions::default()
    };
    let server = TestServer::start_full(Adapter::Tokio, Security::Tls, SIZE, options);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let mut args = client_args("tls");
    args.push("/gfx:AVC420".into());
    args.push(GFX_LOG_FILTERS.into());
    let log = artifacts_dir("gfx-adaptive").join("xfreerdp.log");
    let mut client = FreeRdp::spawn(&xvfb, server.addr, &args, log).expect("xfreerdp starts");
    let changed = server.wait_session_event(Duration::from_secs(30), |event| {
        matches!(event, SessionEvent::GraphicsChanged { .. })
    });
    assert!(
        matches!(
            changed,
            Some(SessionEvent::GraphicsChanged {
                graphics: Graphics::Pipeline(PipelineCodec::Adaptive),
                ..
            })
        ),
        "the application learns of the adaptive pipeline: {changed:?}\n{}",
        client.log()
    );
    assert_renders_pattern("gfx-adaptive", &xvfb, &mut client);
    let mut expected = server::expected_image(SIZE.width, SIZE.height);
    let (left, top, width, height) = (192, 128, 256, 128);
    let mut outside_checked = 0;
    for frame in 0..12 {
        let patch = Patch {
            left,
            top,
            width,
            height,
            pixels: video_frame(width, height, frame),
        };
        server.send_update(patch.update());
        patch.draw_on(&mut expected);
        // The application's frame rate, about 25 fps.
        std::thread::sleep(Duration::from_millis(40));
        if frame % 4 == 3 {
            // Mid-motion: everything but the video is exact.
            let geometry = xvfb.window_geometry("FreeRDP").expect("window");
            let shown = xvfb.capture().expect("capture").crop(
                geometry.x,
                geometry.y,
                expected.width,
                expected.height,
            );
            let image_width = expected.width as usize;
            let differing = (0..expected.pixels.len())
                .filter(|&at| {
                    let (x, y) = (at % image_width, at / image_width);
                    let inside =
                        (left..left + width).contains(&x) && (top..top + height).contains(&y);
                    !inside && shown.pixels[at] != expected.pixels[at]
                })
                .count();
            assert_eq!(
                differing,
                0,
                "frame {frame}: pixels outside the video differ\n{}",
                client.log()
            );
            outside_checked += 1;
        }
    }
    assert_eq!(outside_checked, 3);
    // Motion stopped: the refresh makes the whole window exact.
    assert_renders("gfx-adaptive-refreshed", &xvfb, &mut client, &expected);
    let log = client.log();
    assert_gfx_channel(&log);
    let codec_lines = |codec: &str| log.lines().filter(|line| line.contains(codec)).count();
    let (planar, avc420) = (codec_lines("codec=10"), codec_lines("codec=11"));
    assert!(
        planar > 0 && avc420 >= 12,
        "planar {planar} and AVC420 {avc420} WireToSurface1 lines\n{log}"
    );
    assert_h264_metablocks(&log);
    // The last AVC420 frame is followed by planar tiles: the refresh.
    let lines: Vec<&str> = log.lines().collect();
    let last_avc = lines.iter().rposition(|line| line.contains("codec=11"));
    let last_planar = lines.iter().rposition(|line| line.contains("codec=10"));
    assert!(
        last_planar > last_avc,
        "no lossless refresh after the motion\n{log}"
    );
    let stats = pipeline_stats_at_close(&server, client);
    println!("gfx-adaptive: {stats:?}");
    assert!(
        stats.tiles_lossy >= 12 * 8 && stats.tiles_refreshed >= 8,
        "lossy and refreshed tiles: {stats:?}"
    );
}

/// A server-initiated resize under `/gfx`: the reactivation, then a new
/// surface at the new size; the client shows the pattern at that size,
/// drawn through the pipeline.
#[test]
fn graphics_pipeline_follows_a_server_resize() {
    if !require_interop() {
        return;
    }
    let log = server_resize_renders("gfx-resize", &["/gfx", GFX_LOG_FILTERS]);
    assert!(
        log.lines().any(|line| line.contains("codec=10")),
        "the pipeline drew nothing\n{log}"
    );
}

/// `xfreerdp /gfx` with the pipeline's uncompressed codec: pixel-exact,
/// codec 0 in the client's log.
#[test]
fn graphics_pipeline_renders_uncompressed_exactly() {
    if !require_interop() {
        return;
    }
    let options = FixtureOptions {
        uncompressed_pipeline: true,
        ..FixtureOptions::default()
    };
    let server = TestServer::start_full(Adapter::Tokio, Security::Tls, SIZE, options);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let mut args = client_args("tls");
    args.push("/gfx".into());
    args.push(GFX_LOG_FILTERS.into());
    let log = artifacts_dir("gfx-uncompressed").join("xfreerdp.log");
    let mut client = FreeRdp::spawn(&xvfb, server.addr, &args, log).expect("xfreerdp starts");
    assert_renders_pattern("gfx-uncompressed", &xvfb, &mut client);
    let log = client.log();
    assert!(
        log.lines().any(|line| line.contains("codec=0,")),
        "no uncompressed WireToSurface1 in the client's log\n{log}"
    );
    assert!(
        !log.lines().any(|line| line.contains("codec=10")),
        "planar tiles where uncompressed was chosen\n{log}"
    );
}

/// The pipeline's figures for the session, reported when it closes: the
/// client is stopped and the server's `SessionEvent::PipelineStats` read.
fn pipeline_stats_at_close(server: &TestServer, client: FreeRdp) -> PipelineStats {
    let log = client.log();
    drop(client);
    let reported = server.wait_session_event(Duration::from_secs(20), |event| {
        matches!(event, SessionEvent::PipelineStats { .. })
    });
    match reported {
        Some(SessionEvent::PipelineStats { stats, .. }) => stats,
        other => panic!("no pipeline figures at the close: {other:?}\n{log}"),
    }
}

/// Starts `xfreerdp /gfx` (with `GFX_LOG_FILTERS`) on the fixture server
/// and waits until it shows the pattern through the pipeline, as the
/// client's log confirms.
fn gfx_client(test: &str, server: &TestServer, xvfb: &Xvfb, extra: &[&str]) -> FreeRdp {
    let mut args = client_args("tls");
    args.push("/gfx".into());
    args.push(GFX_LOG_FILTERS.into());
    args.extend(extra.iter().map(|arg| arg.to_string()));
    let log = artifacts_dir(test).join("xfreerdp.log");
    let mut client = FreeRdp::spawn(xvfb, server.addr, &args, log).expect("xfreerdp starts");
    let changed = server.wait_session_event(Duration::from_secs(30), |event| {
        matches!(event, SessionEvent::GraphicsChanged { .. })
    });
    assert!(
        matches!(
            changed,
            Some(SessionEvent::GraphicsChanged {
                graphics: Graphics::Pipeline(_),
                ..
            })
        ),
        "{test}: no pipeline: {changed:?}\n{}",
        client.log()
    );
    assert_renders_pattern(test, xvfb, &mut client);
    // The client's own log: the pattern came through the pipeline's
    // channel in planar tiles, not through a fallback.
    let log = client.log();
    assert_gfx_channel(&log);
    assert!(
        gfx_codecs(&log).contains(&"10"),
        "{test}: no planar WireToSurface1 in the client's log\n{log}"
    );
    client
}

/// A rectangle of B, G, R, X pixels the test sends as one update at
/// (`left`, `top`) and draws into the picture the client should show.
struct Patch {
    left: usize,
    top: usize,
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Patch {
    fn update(&self) -> DisplayUpdate {
        DisplayUpdate::Bitmap(BitmapUpdate {
            x: self.left as u16,
            y: self.top as u16,
            width: self.width as u16,
            height: self.height as u16,
            stride: self.width * 4,
            format: PixelFormat::BgrX32,
            data: std::sync::Arc::from(self.pixels.clone()),
        })
    }

    fn draw_on(&self, image: &mut RgbImage) {
        let image_width = image.width as usize;
        for row in 0..self.height {
            for column in 0..self.width {
                let at = (row * self.width + column) * 4;
                let [b, g, r] = [self.pixels[at], self.pixels[at + 1], self.pixels[at + 2]];
                image.pixels[(self.top + row) * image_width + self.left + column] = [r, g, b];
            }
        }
    }
}

/// A page of "text" `width` x `height`, scrolled down by `first_row`:
/// lines of dark runs on white, twelve rows apart, no two lines alike.
fn document(width: usize, height: usize, first_row: usize) -> Vec<u8> {
    let mut pixels = vec![0xFF; width * height * 4];
    for row in 0..height {
        let (page_row, line) = (row + first_row, (row + first_row) / 12);
        if page_row % 12 >= 8 {
            continue;
        }
        for column in 0..width {
            if (column * 7 + line * 13 + (line * line) % 17) % 11 < 4 {
                let at = (row * width + column) * 4;
                pixels[at..at + 3].copy_from_slice(&[
                    (line * 3) as u8,
                    (line * 5) as u8,
                    (page_row * 7) as u8,
                ]);
            }
        }
    }
    pixels
}

/// `xfreerdp /gfx`: a document in a window of the desktop scrolls down by
/// 37 rows, then back up by 29. Each scroll reaches the client as one
/// SurfaceToSurface plus the exposed band (the session's figures count the
/// copies and the tiles they spared), and the window is pixel-exact after
/// each, so FreeRDP copied the rows the server meant in both directions.
#[test]
fn graphics_pipeline_scrolls_with_surface_copies() {
    if !require_interop() {
        return;
    }
    let server = TestServer::start(Security::Tls, SIZE);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let mut client = gfx_client("gfx-scroll", &server, &xvfb, &[]);
    let mut expected = server::expected_image(SIZE.width, SIZE.height);
    // The document's window: not on the tile grid, so copies cover some
    // tiles whole and others in part.
    let (left, top, width, height) = (96 + 5, 64 + 3, 512, 470);
    for (step, first_row) in [0, 37, 8].into_iter().enumerate() {
        let page = Patch {
            left,
            top,
            width,
            height,
            pixels: document(width, height, first_row),
        };
        server.send_update(page.update());
        page.draw_on(&mut expected);
        assert_renders(&format!("gfx-scroll-{step}"), &xvfb, &mut client, &expected);
    }
    let stats = pipeline_stats_at_close(&server, client);
    println!("gfx-scroll: {stats:?}");
    assert!(
        stats.surface_to_surface >= 2,
        "both scrolls were copies: {stats:?}"
    );
    assert!(
        stats.tiles_copied >= 50,
        "the copies spared tiles: {stats:?}"
    );
}

/// `xfreerdp /gfx`: an image of 2 x 2 tiles shown at three places in one
/// update, then overwritten, then shown again: the client's bitmap cache
/// draws every showing after the first (CacheToSurface), and the window is
/// pixel-exact after each step.
#[test]
fn graphics_pipeline_draws_a_repeated_image_from_the_cache() {
    if !require_interop() {
        return;
    }
    let server = TestServer::start(Security::Tls, SIZE);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let mut client = gfx_client("gfx-cache", &server, &xvfb, &[]);
    let mut expected = server::expected_image(SIZE.width, SIZE.height);
    // A "photo": every pixel different, so no tile of it is flat or equal
    // to another tile.
    let side = 128;
    let photo: Vec<u8> = (0..side * side)
        .flat_map(|i| {
            let (x, y) = (i % side, i / side);
            [
                (x * 2) as u8,
                (y * 2) as u8,
                ((x * 7 + y * 13) % 256) as u8,
                0xFF,
            ]
        })
        .collect();
    // The desktop: noise (no two tiles alike), the photo at three places
    // on the tile grid.
    let noise: Vec<u8> = (0..usize::from(SIZE.width) * usize::from(SIZE.height))
        .flat_map(|i| {
            let value = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
            [value as u8, (value >> 8) as u8, (value >> 16) as u8, 0xFF]
        })
        .collect();
    let places = [(64, 64), (320, 192), (576, 384)];
    let desktop_with = |photos: &[(usize, usize)]| {
        let mut pixels = noise.clone();
        let width = usize::from(SIZE.width);
        for &(left, top) in photos {
            for row in 0..side {
                let at = ((top + row) * width + left) * 4;
                pixels[at..at + side * 4].copy_from_slice(&photo[row * side * 4..][..side * 4]);
            }
        }
        Patch {
            left: 0,
            top: 0,
            width,
            height: usize::from(SIZE.height),
            pixels,
        }
    };
    for (step, photos) in [&places[..], &[], &places[..]].into_iter().enumerate() {
        let desktop = desktop_with(photos);
        server.send_update(desktop.update());
        desktop.draw_on(&mut expected);
        assert_renders(&format!("gfx-cache-{step}"), &xvfb, &mut client, &expected);
    }
    let stats = pipeline_stats_at_close(&server, client);
    println!("gfx-cache: {stats:?}");
    // Two repeats of four tiles, then three showings of four tiles.
    assert!(stats.cache_hits >= 2 * 4 + 3 * 4, "{stats:?}");
}

/// `xfreerdp /gfx /dynamic-resolution`: resizing the client's window sends
/// a Display Control layout while the pipeline runs; the server follows
/// with a reactivation and a new surface, and the client shows the pattern
/// at the new size, pixel for pixel, drawn through the pipeline again.
#[test]
fn graphics_pipeline_follows_display_control() {
    if !require_interop() {
        return;
    }
    let options = FixtureOptions {
        follow_layout: true,
        ..FixtureOptions::default()
    };
    let server = TestServer::start_full(Adapter::Tokio, Security::Tls, SIZE, options);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let mut client = gfx_client(
        "gfx-display-control",
        &server,
        &xvfb,
        &["/dynamic-resolution"],
    );
    let planar_before = client.log().matches("codec=10").count();
    let ids = xvfb
        .xdotool(&["search", "--name", "FreeRDP"])
        .expect("window ids");
    for id in ids.lines() {
        let _ = xvfb.xdotool(&["windowsize", id, "700", "500"]);
    }
    let resized = server.wait_session_event(Duration::from_secs(30), |event| {
        matches!(event, SessionEvent::Resized { .. })
    });
    let Some(SessionEvent::Resized { size, .. }) = resized else {
        panic!("no resize after the window changed\n{}", client.log());
    };
    assert_eq!((size.width, size.height), (700, 500));
    let expected = server::expected_image(700, 500);
    assert_renders("gfx-display-control-resized", &xvfb, &mut client, &expected);
    let log = client.log();
    assert!(
        log.matches("codec=10").count() > planar_before,
        "the new size was not drawn through the pipeline\n{log}"
    );
    let stats = pipeline_stats_at_close(&server, client);
    assert!(stats.frames >= 2, "{stats:?}");
}
