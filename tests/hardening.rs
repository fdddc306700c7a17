//! A hostile network against the real server over loopback: clients that
//! stop reading, idle sockets and channel-join floods from other addresses
//! must not keep a real client (xfreerdp under Xvfb) from logging on.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use rdpserve_tests::freerdp::FreeRdp;
use rdpserve_tests::server::{Adapter, FixtureOptions, Security, TestServer};
use rdpserve_tests::x11::Xvfb;
use rdpserve_tests::{artifacts_dir, require_interop};
use rdpserve_tokio::{CloseReason, ConnectionLimits, DesktopSize, Error, SessionEvent};

const SIZE: DesktopSize = DesktopSize {
    width: 800,
    height: 600,
};
const LOGON_TIMEOUT: Duration = Duration::from_secs(45);

fn client_args(security: &str) -> Vec<String> {
    rdpserve_tests::freerdp::fixture_args(security, SIZE.width, SIZE.height)
}

fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {signal} {pid}");
}

#[test]
fn a_client_that_stops_reading_is_closed_by_the_write_timeout() {
    if !require_interop() {
        return;
    }
    let limits = ConnectionLimits {
        write_timeout: Duration::from_secs(2),
        ..ConnectionLimits::default()
    };
    let options = FixtureOptions {
        animate: true,
        limits: Some(limits),
        ..FixtureOptions::default()
    };
    let server = TestServer::start_full(Adapter::Tokio, Security::Tls, SIZE, options);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let log = artifacts_dir("write_timeout").join("xfreerdp.log");
    let client =
        FreeRdp::spawn(&xvfb, server.addr, &client_args("tls"), log).expect("xfreerdp starts");
    let active = server.wait_session_event(LOGON_TIMEOUT, |event| {
        matches!(event, SessionEvent::Activated { .. })
    });
    assert!(active.is_some(), "no logon\n{}", client.log());
    // The client freezes: it reads nothing more while the server keeps
    // sending whole frames, so the socket fills and a write stalls.
    signal(client.pid(), "-STOP");
    let closed = server.wait_session_event(Duration::from_secs(60), |event| {
        matches!(event, SessionEvent::Closed { .. })
    });
    signal(client.pid(), "-CONT");
    assert!(
        matches!(
            closed,
            Some(SessionEvent::Closed {
                reason: CloseReason::Error(Error::TimedOut("write")),
                ..
            })
        ),
        "{closed:?}"
    );
}

/// A socket from `local` (another loopback address) to `server`.
fn connect_from(local: [u8; 4], server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((local, 0)).into())?;
    socket.connect_timeout(&server.into(), Duration::from_secs(5))?;
    Ok(socket.into())
}

/// The bytes a plain-RDP client sends up to its Attach User Request (its
/// first four frames, as rdesktop sent them in the recorded fixture
/// session), and a Channel Join Request for channel 9999, never declared.
fn join_flood_prefix() -> (Vec<u8>, Vec<u8>) {
    let recording = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rdesktop-plain-16.rdprec"),
    )
    .expect("fixture");
    // Magic, header length and header, then tagged entries: a frame is tag
    // 1, its time (8 bytes), length (4) and bytes; output and events are
    // tags 6 and 7 with a length (4).
    let read_u32 =
        |at: usize| u32::from_le_bytes(recording[at..at + 4].try_into().unwrap()) as usize;
    let mut at = 12 + read_u32(8);
    let mut frames: Vec<&[u8]> = Vec::new();
    while frames.len() < 4 {
        let tag = recording[at];
        let len_at = match tag {
            1 => at + 1 + 8,
            6 | 7 => at + 1,
            other => panic!("entry {other} before the attach user request"),
        };
        let len = read_u32(len_at);
        if tag == 1 {
            frames.push(&recording[len_at + 4..len_at + 4 + len]);
        }
        at = len_at + 4 + len;
    }
    let join = vec![
        0x03, 0x00, 0x00, 0x0c, 0x02, 0xf0, 0x80, 0x38, 0x00, 0x09, 0x27, 0x0f,
    ];
    (frames.concat(), join)
}

#[test]
fn idle_sockets_and_join_floods_from_elsewhere_do_not_lock_out_a_logon() {
    if !require_interop() {
        return;
    }
    let server = TestServer::start_full(
        Adapter::Tokio,
        Security::PlainRdp,
        SIZE,
        FixtureOptions::default(),
    );
    // 200 sockets from 127.0.0.2 that never send a byte, held open.
    let idle: Vec<TcpStream> = (0..200)
        .filter_map(|_| connect_from([127, 0, 0, 2], server.addr).ok())
        .collect();
    assert!(
        idle.len() >= 100,
        "only {} idle sockets connected",
        idle.len()
    );
    // 64 join flooders from 127.0.0.3: a plain-RDP prefix up to Attach
    // User, then Channel Join Requests for an undeclared channel, written
    // without ever reading an answer.
    let (prefix, join) = join_flood_prefix();
    let flooders: Vec<TcpStream> = (0..64)
        .filter_map(|_| {
            let mut socket = connect_from([127, 0, 0, 3], server.addr).ok()?;
            socket
                .set_write_timeout(Some(Duration::from_secs(2)))
                .ok()?;
            let _ = socket.write_all(&prefix);
            for _ in 0..256 {
                if socket.write_all(&join).is_err() {
                    break;
                }
            }
            Some(socket)
        })
        .collect();
    assert!(!flooders.is_empty());
    // A real client from 127.0.0.1 logs on while all of them are held.
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let log = artifacts_dir("flood_logon").join("xfreerdp.log");
    let client =
        FreeRdp::spawn(&xvfb, server.addr, &client_args("rdp"), log).expect("xfreerdp starts");
    let active = server.wait_session_event(LOGON_TIMEOUT, |event| {
        matches!(event, SessionEvent::Activated { .. })
    });
    assert!(
        active.is_some(),
        "the real client did not log on\n{}",
        client.log()
    );
    drop((idle, flooders));
}

#[test]
fn ten_quick_copies_on_the_client_keep_the_session_and_the_last_text_arrives() {
    use rdpserve_tests::server::ClipboardReport;
    use std::process::{Command, Stdio};

    if !require_interop() {
        return;
    }
    let options = FixtureOptions {
        clipboard_text: Some("from the server".into()),
        ..FixtureOptions::default()
    };
    let server = TestServer::start_full(Adapter::Tokio, Security::Tls, SIZE, options);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let mut args = client_args("tls");
    args.push("+clipboard".into());
    let log = artifacts_dir("quick_copies").join("xfreerdp.log");
    let client = FreeRdp::spawn(&xvfb, server.addr, &args, log).expect("xfreerdp starts");
    let active = server.wait_session_event(LOGON_TIMEOUT, |event| {
        matches!(event, SessionEvent::Activated { .. })
    });
    assert!(active.is_some(), "no logon\n{}", client.log());
    // The clipboard channel is up once xfreerdp sent its first format list.
    assert!(
        server
            .wait_clipboard(Duration::from_secs(30), |report| matches!(
                report,
                ClipboardReport::RemoteCopy(_)
            ))
            .is_some(),
        "the clipboard channel did not start\n{}",
        client.log()
    );
    // Ten copies on the client, 100 ms apart: each new xclip takes the X
    // clipboard from the one before (which then exits), and xfreerdp sends
    // a Format List for each while the server's requests are in flight.
    let texts: Vec<String> = (0..10).map(|n| format!("copy number {n}")).collect();
    let mut copies = Vec::new();
    for text in &texts {
        let mut xclip = Command::new("xclip")
            .args(["-quiet", "-selection", "clipboard", "-i"])
            .env("DISPLAY", xvfb.display())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("xclip starts");
        xclip
            .stdin
            .take()
            .expect("xclip stdin")
            .write_all(text.as_bytes())
            .expect("text to xclip");
        copies.push(xclip);
        std::thread::sleep(Duration::from_millis(100));
    }
    let last = ClipboardReport::Text(texts.last().unwrap().clone());
    let arrived = server.wait_clipboard(Duration::from_secs(30), |report| *report == last);
    for mut xclip in copies {
        let _ = xclip.kill();
        let _ = xclip.wait();
    }
    assert!(
        arrived.is_some(),
        "the last copy did not arrive\n{}",
        client.log()
    );
    let closed = server.wait_session_event(Duration::ZERO, |event| {
        matches!(event, SessionEvent::Closed { .. })
    });
    assert!(closed.is_none(), "the session closed: {closed:?}");
}

/// A client whose connection is reset (killed, or its path dropped) is
/// reported closed to the application, like one that closes its socket:
/// the server once returned on the socket error without a word.
#[test]
fn a_reset_connection_is_reported_closed() {
    use rdpserve_tests::loopback::LoopbackClient;
    use rdpserve_tests::server::{PASSWORD, USER};

    for adapter in [Adapter::Tokio, Adapter::Smol] {
        let server = TestServer::start_on(adapter, Security::PlainRdp, SIZE);
        let client = LoopbackClient::connect(server.addr, USER, PASSWORD, Duration::from_secs(30))
            .expect("the test client logs on");
        let active = server.wait_session_event(Duration::from_secs(30), |event| {
            matches!(event, SessionEvent::Activated { .. })
        });
        assert!(active.is_some(), "{adapter:?}: no session");
        client.reset().expect("SO_LINGER");
        let closed = server.wait_session_event(Duration::from_secs(30), |event| {
            matches!(event, SessionEvent::Closed { .. })
        });
        assert!(
            matches!(
                closed,
                Some(SessionEvent::Closed {
                    reason: CloseReason::TransportClosed,
                    ..
                })
            ),
            "{adapter:?}: {closed:?}"
        );
    }
}
