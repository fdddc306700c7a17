//! A second, independent real client: IronRDP's published crates
//! (`support/ironrdp_client.rs`) connect to the server over TLS and over
//! NLA (sspi's CredSSP/NTLM), offer one codec each, and must decode the
//! test pattern: exactly for the lossless paths (QOI, QOIZ, planar
//! bitmaps), within 40 dB PSNR for RemoteFX. Each test also checks on the
//! wire that the offered codec carried the picture, so a silent fallback
//! to another path fails.
//!
//! The client is pure Rust and always built, so these tests always run.

#[path = "support/ironrdp_client.rs"]
mod ironrdp_client;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ironrdp_client::{ClientError, ClientOptions, ClientSecurity, Codec, IronRdpClient, Seen};
use rdpserve_core::SelectedSecurity;
use rdpserve_tests::artifacts_dir;
use rdpserve_tests::image::{Comparison, RgbImage};
use rdpserve_tests::server::{self, Adapter, FixtureOptions, Security, TestServer};
use rdpserve_tokio::{
    BitmapCodecs, BitmapUpdate, CloseReason, DesktopSize, DisplayUpdate, Error, Graphics,
    SessionEvent, SurfaceCodec,
};

const SIZE: DesktopSize = DesktopSize {
    width: 800,
    height: 600,
};
/// Connecting takes well under a second on loopback; the bounds are
/// generous for a loaded CI machine.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const RENDER_TIMEOUT: Duration = Duration::from_secs(30);
/// STATUS_LOGON_FAILURE (MS-ERREF 2.3.1).
const STATUS_LOGON_FAILURE: u32 = 0xC000_006D;

/// IronRDP's logs (RUST_LOG=ironrdp=debug) help when a test fails.
fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

fn options(server: &TestServer, security: Security, codecs: &[Codec]) -> ClientOptions {
    ClientOptions {
        server: server.addr,
        security: match security {
            Security::Tls => ClientSecurity::Tls,
            Security::Nla => ClientSecurity::Nla,
            Security::PlainRdp => panic!("the IronRDP client speaks TLS or NLA"),
        },
        user: server::USER.into(),
        password: server::PASSWORD.into(),
        domain: None,
        codecs: codecs.to_vec(),
        width: SIZE.width,
        height: SIZE.height,
        connect_timeout: CONNECT_TIMEOUT,
        tls_server_name: None,
        bind_to_key: None,
    }
}

fn connect(test: &str, options: &ClientOptions) -> IronRdpClient {
    IronRdpClient::connect(options).unwrap_or_else(|error| panic!("{test}: {error}"))
}

/// How close the picture must come.
#[derive(Debug, Clone, Copy)]
enum Fidelity {
    Exact,
    /// At least this PSNR, in dB.
    Psnr(f64),
}

impl Fidelity {
    fn of(codec: Option<Codec>) -> Self {
        match codec {
            Some(Codec::RemoteFx) => Self::Psnr(40.0),
            _ => Self::Exact,
        }
    }

    fn accepts(self, comparison: &Comparison) -> bool {
        match self {
            Self::Exact => comparison.mismatches == 0,
            Self::Psnr(min) => comparison.psnr >= min,
        }
    }
}

/// Waits until the client's picture is `expected` (by `fidelity`); returns
/// the comparison. On failure saves both pictures and panics with the
/// comparison, the error and what the wire carried.
fn assert_picture(
    test: &str,
    client: &mut IronRdpClient,
    expected: &RgbImage,
    fidelity: Fidelity,
) -> Comparison {
    let result = client.wait_for_image(RENDER_TIMEOUT, |image| {
        fidelity.accepts(&image.compare_region(0, 0, expected))
    });
    match result {
        Ok(image) => image.compare_region(0, 0, expected),
        Err(error) => {
            let image = client.image();
            let comparison = image.compare_region(0, 0, expected);
            let dir = artifacts_dir(test);
            let _ = image.save_ppm(&dir.join("decoded.ppm"));
            let _ = expected.save_ppm(&dir.join("expected.ppm"));
            panic!(
                "{test}: picture not {fidelity:?}: {error}\n{} pixels differ (psnr {:.1} dB), \
                 first (x, y, expected, got): {:?}\nwire: {:?}\npictures saved in {}",
                comparison.mismatches,
                comparison.psnr,
                comparison.first_mismatches,
                client.take_seen(),
                dir.display()
            );
        }
    }
}

/// Asserts the wire carried the picture in `codec` only, with the id the
/// client gave it (plain bitmaps: 32-bpp compressed, i.e. planar, bitmap
/// updates only).
fn assert_path(test: &str, client: &mut IronRdpClient, codec: Option<Codec>) -> Seen {
    let seen = client.take_seen();
    match codec {
        Some(codec) => {
            let id = client
                .codec_id(codec)
                .unwrap_or_else(|| panic!("{test}: {codec:?} not offered"));
            assert_eq!(
                seen.surface_codec_ids,
                BTreeSet::from([id]),
                "{test}: surface codec ids seen, offered {codec:?}: {seen:?}"
            );
            assert!(seen.bitmaps.is_empty(), "{test}: bitmaps too: {seen:?}");
        }
        None => {
            assert!(
                seen.surface_codec_ids.is_empty(),
                "{test}: surface commands without a codec offered: {seen:?}"
            );
            assert_eq!(
                seen.bitmaps,
                BTreeSet::from([(32, true)]),
                "{test}: bitmap updates seen: {seen:?}"
            );
        }
    }
    seen
}

/// Connects offering `codec` (or none) and checks the pattern arrives
/// through it, and that the server saw the security and codec asked for.
fn renders(test: &str, security: Security, codec: Option<Codec>) {
    init_logs();
    let server = TestServer::start(security, SIZE);
    let codecs: Vec<Codec> = codec.into_iter().collect();
    let mut client = connect(test, &options(&server, security, &codecs));
    let activated = server.wait_session_event(Duration::from_secs(10), |event| {
        matches!(event, SessionEvent::Activated { .. })
    });
    let Some(SessionEvent::Activated { info, .. }) = activated else {
        panic!("{test}: server reported no activation");
    };
    let expected_security = match security {
        Security::Tls => vec![SelectedSecurity::Tls],
        _ => vec![SelectedSecurity::Hybrid, SelectedSecurity::HybridEx],
    };
    assert!(
        expected_security.contains(&info.security),
        "{test}: server selected {:?}",
        info.security
    );
    let expected_graphics = match codec {
        Some(Codec::Qoi) => Graphics::Surface(SurfaceCodec::Qoi),
        Some(Codec::Qoiz) => Graphics::Surface(SurfaceCodec::Qoiz),
        Some(Codec::RemoteFx) => Graphics::Surface(SurfaceCodec::RemoteFx),
        None => Graphics::Bitmaps,
    };
    assert_eq!(
        info.graphics, expected_graphics,
        "{test}: server's graphics"
    );
    assert_eq!(info.user_name, server::USER);
    let expected = server::expected_image(SIZE.width, SIZE.height);
    let comparison = assert_picture(test, &mut client, &expected, Fidelity::of(codec));
    let seen = assert_path(test, &mut client, codec);
    eprintln!(
        "{test}: psnr {:.1} dB, {} updates, {seen:?}",
        comparison.psnr, seen.updates
    );
}

#[test]
fn tls_qoi_renders_exactly() {
    renders("ironrdp-tls-qoi", Security::Tls, Some(Codec::Qoi));
}

#[test]
fn tls_qoiz_renders_exactly() {
    renders("ironrdp-tls-qoiz", Security::Tls, Some(Codec::Qoiz));
}

#[test]
fn tls_remotefx_renders_within_40_db() {
    renders("ironrdp-tls-remotefx", Security::Tls, Some(Codec::RemoteFx));
}

#[test]
fn tls_bitmaps_render_exactly() {
    renders("ironrdp-tls-bitmaps", Security::Tls, None);
}

#[test]
fn nla_qoi_renders_exactly() {
    renders("ironrdp-nla-qoi", Security::Nla, Some(Codec::Qoi));
}

#[test]
fn nla_qoiz_renders_exactly() {
    renders("ironrdp-nla-qoiz", Security::Nla, Some(Codec::Qoiz));
}

#[test]
fn nla_remotefx_renders_within_40_db() {
    renders("ironrdp-nla-remotefx", Security::Nla, Some(Codec::RemoteFx));
}

#[test]
fn nla_bitmaps_render_exactly() {
    renders("ironrdp-nla-bitmaps", Security::Nla, None);
}

/// A wrong password under NLA: sspi reports the server's CredSSP errorCode,
/// STATUS_LOGON_FAILURE, not a decode error; the server reports the failed
/// logon and then still lets the right password in.
#[test]
fn nla_wrong_password_is_a_logon_failure() {
    let test = "ironrdp-nla-wrong-password";
    init_logs();
    let server = TestServer::start(Security::Nla, SIZE);
    let mut wrong = options(&server, Security::Nla, &[]);
    wrong.password = "wrong".into();
    match IronRdpClient::connect(&wrong) {
        Err(ClientError::LogonFailed { status, .. }) => assert_eq!(
            status, STATUS_LOGON_FAILURE,
            "{test}: status {status:#010x}"
        ),
        Err(other) => panic!("{test}: expected a logon failure, got: {other}"),
        Ok(_) => panic!("{test}: logged on with a wrong password"),
    }
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

    let mut client = connect(test, &options(&server, Security::Nla, &[]));
    let expected = server::expected_image(SIZE.width, SIZE.height);
    assert_picture(test, &mut client, &expected, Fidelity::Exact);
}

/// A whole-screen bitmap of `pixels` (B, G, R, X).
fn whole_screen(pixels: Vec<u8>) -> DisplayUpdate {
    DisplayUpdate::Bitmap(BitmapUpdate {
        x: 0,
        y: 0,
        width: SIZE.width,
        height: SIZE.height,
        stride: usize::from(SIZE.width) * 4,
        data: Arc::from(pixels),
        format: Default::default(),
    })
}

/// Starts a QOIZ session (the client offers QOIZ and RemoteFX, the server
/// prefers QOIZ), then for each step switches the graphics
/// (`DisplayUpdate::Graphics`, which repaints from the server's copy) and
/// sends the other of two pictures, and checks the client shows it,
/// through the step's codec.
fn qoiz_switches(test: &str, steps: &[Graphics]) {
    init_logs();
    let options = FixtureOptions {
        codecs: Some(BitmapCodecs {
            surface: vec![SurfaceCodec::Qoiz, SurfaceCodec::RemoteFx],
        }),
        ..FixtureOptions::default()
    };
    let server = TestServer::start_full(Adapter::Tokio, Security::Tls, SIZE, options);
    let codecs = [Codec::Qoiz, Codec::RemoteFx];
    let mut client = connect(test, &self::options(&server, Security::Tls, &codecs));
    let pattern = server::expected_image(SIZE.width, SIZE.height);
    let changed = server::expected_changed_image(SIZE.width, SIZE.height);
    assert_picture(test, &mut client, &pattern, Fidelity::Exact);
    assert_path(test, &mut client, Some(Codec::Qoiz));

    for (index, &graphics) in steps.iter().enumerate() {
        let step = format!("{test} step {} ({graphics:?})", index + 1);
        let (pixels, expected) = if index % 2 == 0 {
            (server::changed_pattern(SIZE.width, SIZE.height), &changed)
        } else {
            (server::pattern(SIZE.width, SIZE.height), &pattern)
        };
        let codec = match graphics {
            Graphics::Surface(SurfaceCodec::Qoiz) => Some(Codec::Qoiz),
            Graphics::Surface(SurfaceCodec::RemoteFx) => Some(Codec::RemoteFx),
            Graphics::Surface(SurfaceCodec::Qoi) => Some(Codec::Qoi),
            Graphics::Bitmaps => None,
            other => panic!("{step}: no client codec for {other:?}"),
        };
        server.send_update(DisplayUpdate::Graphics(graphics));
        server.send_update(whole_screen(pixels));
        let comparison = assert_picture(&step, &mut client, expected, Fidelity::of(codec));
        let seen = assert_path(&step, &mut client, codec);
        eprintln!("{step}: psnr {:.1} dB, {seen:?}", comparison.psnr);
    }
}

#[test]
fn qoiz_survives_a_switch_to_qoiz() {
    qoiz_switches(
        "ironrdp-qoiz-to-qoiz",
        &[Graphics::Surface(SurfaceCodec::Qoiz)],
    );
}

#[test]
fn qoiz_survives_bitmaps_and_back() {
    qoiz_switches(
        "ironrdp-qoiz-bitmaps-qoiz",
        &[Graphics::Bitmaps, Graphics::Surface(SurfaceCodec::Qoiz)],
    );
}

#[test]
fn qoiz_survives_remotefx_and_back() {
    qoiz_switches(
        "ironrdp-qoiz-remotefx-qoiz",
        &[
            Graphics::Surface(SurfaceCodec::RemoteFx),
            Graphics::Surface(SurfaceCodec::Qoiz),
        ],
    );
}
