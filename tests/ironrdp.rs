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

use ironrdp_client::{
    ChannelLog, ClientChannels, ClientError, ClientOptions, ClientSecurity, Codec, IronRdpClient,
    Seen,
};
use rdpserve_core::SelectedSecurity;
use rdpserve_examples::chat::ChatFactory;
use rdpserve_tests::artifacts_dir;
use rdpserve_tests::image::{Comparison, RgbImage};
use rdpserve_tests::server::{self, Adapter, FixtureOptions, Security, TestServer};
use rdpserve_tokio::{
    BitmapCodecs, BitmapUpdate, ChannelCloseReason, ChannelError, ChannelFactory, ChannelHandle,
    ChannelHandler, ChannelOptions, CloseReason, ConnectionId, DesktopSize, DisplayUpdate, Error,
    Graphics, KeyboardEvent, MouseEvent, RdpServerDisplay, RdpServerDisplayUpdates,
    RdpServerInputHandler, SessionEvent, StopHandle, SurfaceCodec, TlsIdentity,
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

// ----- application channels -----

/// The application's static channel in these tests.
const STATIC_CHANNEL: &str = "RDPTEST";
/// The application's dynamic channel in these tests.
const DYNAMIC_CHANNEL: &str = "rdpserve::Test";
const CHANNEL_TIMEOUT: Duration = Duration::from_secs(30);

/// What the server's channel handlers saw.
#[derive(Debug)]
enum ChannelReport {
    Open(ChannelHandle),
    Message(String, Vec<u8>),
    Closed(String, ChannelCloseReason),
    Unavailable(String, ConnectionId),
}

/// Reports everything and answers each message with its bytes reversed.
struct ReversingChannel {
    name: &'static str,
    reports: std::sync::mpsc::Sender<ChannelReport>,
}

impl ChannelHandler for ReversingChannel {
    fn on_open(&mut self, channel: &ChannelHandle) {
        let _ = self.reports.send(ChannelReport::Open(channel.clone()));
    }

    fn on_message(&mut self, mut message: Vec<u8>, channel: &ChannelHandle) {
        let _ = self
            .reports
            .send(ChannelReport::Message(self.name.into(), message.clone()));
        message.reverse();
        channel.send(message).expect("the channel takes the answer");
    }

    fn on_close(&mut self, reason: ChannelCloseReason) {
        let _ = self
            .reports
            .send(ChannelReport::Closed(self.name.into(), reason));
    }
}

struct ReversingFactory {
    name: &'static str,
    reports: std::sync::Mutex<std::sync::mpsc::Sender<ChannelReport>>,
}

impl ChannelFactory for ReversingFactory {
    fn build(&self, _connection: ConnectionId) -> Box<dyn ChannelHandler> {
        Box::new(ReversingChannel {
            name: self.name,
            reports: self.reports.lock().expect("reports").clone(),
        })
    }

    fn unavailable(&self, connection: ConnectionId) {
        let _ = self
            .reports
            .lock()
            .expect("reports")
            .send(ChannelReport::Unavailable(self.name.into(), connection));
    }
}

struct NoInput;

impl RdpServerInputHandler for NoInput {
    fn keyboard(&mut self, _: KeyboardEvent) {}
    fn mouse(&mut self, _: MouseEvent) {}
}

/// A desktop that never changes: these tests are about channels.
struct StillDisplay;
struct NoUpdates;

impl RdpServerDisplay for StillDisplay {
    type Updates = NoUpdates;

    async fn size(&self) -> DesktopSize {
        SIZE
    }

    async fn updates(&self) -> std::io::Result<NoUpdates> {
        Ok(NoUpdates)
    }
}

impl RdpServerDisplayUpdates for NoUpdates {
    async fn next_update(&mut self) -> Option<DisplayUpdate> {
        std::future::pending().await
    }
}

/// A TLS server on tokio with the application channels, on a free
/// loopback port; stopped when dropped.
struct ChannelServer {
    addr: std::net::SocketAddr,
    reports: std::sync::mpsc::Receiver<ChannelReport>,
    /// Connections whose session closed.
    closed: std::sync::mpsc::Receiver<ConnectionId>,
    stop: StopHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ChannelServer {
    /// Serves `STATIC_CHANNEL` and `DYNAMIC_CHANNEL` with `ReversingChannel`.
    fn start() -> Self {
        Self::start_serving(false, None)
    }

    /// Serves "CHAT" and "rdpserve::Chat" with the example's chat,
    /// ticking every 100 ms, instead, recording every session into
    /// `record_dir`.
    fn start_chat(record_dir: std::path::PathBuf) -> Self {
        Self::start_serving(true, Some(record_dir))
    }

    fn start_serving(chat: bool, record_dir: Option<std::path::PathBuf>) -> Self {
        let (report_sender, reports) = std::sync::mpsc::channel();
        let (ready_sender, ready) = std::sync::mpsc::channel();
        let (closed_sender, closed) = std::sync::mpsc::channel();
        let closed_sender = std::sync::Mutex::new(closed_sender);
        let factory = |name| ReversingFactory {
            name,
            reports: std::sync::Mutex::new(report_sender.clone()),
        };
        let builder = rdpserve_tokio::RdpServer::builder()
            .with_addr(([127, 0, 0, 1], 0))
            .with_tls(TlsIdentity::self_signed(&["localhost"]).expect("identity"))
            .with_input_handler(NoInput)
            .with_display_handler(StillDisplay)
            .with_credentials(rdpserve_tokio::Credentials {
                username: server::USER.into(),
                password: server::PASSWORD.into(),
                domain: None,
            })
            .with_session_observer(move |event| {
                if let SessionEvent::Closed { connection, .. } = event {
                    let _ = closed_sender.lock().expect("sender").send(*connection);
                }
            });
        let builder = match record_dir {
            Some(dir) => builder.with_recording_dir(dir),
            None => builder,
        };
        let builder = if chat {
            let tick = Duration::from_millis(100);
            builder
                .with_static_channel(
                    "CHAT",
                    ChannelOptions::default(),
                    ChatFactory::new("CHAT", tick),
                )
                .with_dynamic_channel(
                    "rdpserve::Chat",
                    ChannelOptions::default(),
                    ChatFactory::new("rdpserve::Chat", tick),
                )
        } else {
            builder
                .with_static_channel(
                    STATIC_CHANNEL,
                    ChannelOptions::default(),
                    factory(STATIC_CHANNEL),
                )
                .with_dynamic_channel(
                    DYNAMIC_CHANNEL,
                    ChannelOptions::default().with_priority(1),
                    factory(DYNAMIC_CHANNEL),
                )
        };
        let server = builder.build().expect("server builds");
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime");
            runtime.block_on(async move {
                let bound = server.bind().await.expect("bind");
                let _ =
                    ready_sender.send((bound.local_addr().expect("address"), bound.stop_handle()));
                bound.run().await.expect("server runs");
            });
        });
        let (addr, stop) = ready.recv_timeout(CHANNEL_TIMEOUT).expect("server started");
        Self {
            addr,
            reports,
            closed,
            stop,
            thread: Some(thread),
        }
    }

    fn client_options(&self) -> ClientOptions {
        ClientOptions {
            server: self.addr,
            security: ClientSecurity::Tls,
            user: server::USER.into(),
            password: server::PASSWORD.into(),
            domain: None,
            codecs: Vec::new(),
            width: SIZE.width,
            height: SIZE.height,
            connect_timeout: CONNECT_TIMEOUT,
            tls_server_name: None,
            bind_to_key: None,
        }
    }

    /// Waits for a report `wanted` accepts, failing on any other than
    /// those `ignore` accepts.
    fn wait_report(
        &self,
        test: &str,
        wanted: impl Fn(&ChannelReport) -> bool,
        ignore: impl Fn(&ChannelReport) -> bool,
    ) -> ChannelReport {
        let deadline = std::time::Instant::now() + CHANNEL_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.reports.recv_timeout(left) {
                Ok(report) if wanted(&report) => return report,
                Ok(report) if ignore(&report) => continue,
                Ok(report) => panic!("{test}: unexpected {report:?}"),
                Err(_) => panic!("{test}: no report within {CHANNEL_TIMEOUT:?}"),
            }
        }
    }
}

impl Drop for ChannelServer {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `len` bytes that differ from any other `seed`'s and from their own
/// reverse.
fn channel_pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

fn messages_on<'a>(log: &'a ChannelLog, channel: &str) -> Vec<&'a [u8]> {
    log.received
        .iter()
        .filter(|(name, _)| name == channel)
        .map(|(_, message)| message.as_slice())
        .collect()
}

/// The application's static and dynamic channels with IronRDP's client
/// on the other end: messages far above the chunk size (1600 bytes)
/// cross whole both ways, reassembled by IronRDP's SVC and DVC code on
/// one side and the engine on the other; the client's close of the
/// dynamic channel reaches the handler; and after the client goes, a
/// handle used from another thread (even one waiting for room) returns
/// `Closed` instead of hanging.
#[test]
fn application_channels_carry_large_messages_both_ways() {
    let test = "ironrdp-app-channels";
    init_logs();
    let server = ChannelServer::start();
    let channels = ClientChannels {
        statics: vec![STATIC_CHANNEL.into()],
        dynamics: vec![DYNAMIC_CHANNEL.into()],
    };
    let mut client = IronRdpClient::connect_with_channels(&server.client_options(), &channels)
        .unwrap_or_else(|error| panic!("{test}: {error}"));

    // Both open: the server's handlers have their handles and IronRDP's
    // DVC client accepted the dynamic channel.
    let mut handles = std::collections::BTreeMap::new();
    client
        .wait_for_channels(CHANNEL_TIMEOUT, |log| {
            for report in server.reports.try_iter() {
                match report {
                    ChannelReport::Open(handle) => {
                        handles.insert(handle.name().to_owned(), handle);
                    }
                    other => panic!("{test}: unexpected {other:?}"),
                }
            }
            handles.len() == 2 && log.open.contains_key(DYNAMIC_CHANNEL)
        })
        .unwrap_or_else(|error| panic!("{test}: channels did not open: {error}"));
    let static_handle = handles[STATIC_CHANNEL].clone();
    let dynamic_handle = handles[DYNAMIC_CHANNEL].clone();
    assert!(dynamic_handle.is_dynamic() && !static_handle.is_dynamic());

    // Server to client, sent from another thread.
    let to_static = channel_pattern(200_000, 1);
    let to_dynamic = channel_pattern(150_000, 2);
    let sender = {
        let (static_handle, dynamic_handle) = (static_handle.clone(), dynamic_handle.clone());
        let (to_static, to_dynamic) = (to_static.clone(), to_dynamic.clone());
        std::thread::spawn(move || {
            static_handle.send(to_static)?;
            dynamic_handle.send(to_dynamic)
        })
    };
    let log = client
        .wait_for_channels(CHANNEL_TIMEOUT, |log| log.received.len() >= 2)
        .unwrap_or_else(|error| panic!("{test}: server messages: {error}"));
    assert_eq!(sender.join().expect("sender thread"), Ok(()));
    assert_eq!(messages_on(&log, STATIC_CHANNEL), [to_static.as_slice()]);
    assert_eq!(messages_on(&log, DYNAMIC_CHANNEL), [to_dynamic.as_slice()]);

    // Client to server: the handlers get them whole, and their answers
    // (the bytes reversed) come back whole.
    let from_static = channel_pattern(120_000, 3);
    let from_dynamic = channel_pattern(90_000, 4);
    client
        .send_static(STATIC_CHANNEL, from_static.clone())
        .unwrap_or_else(|error| panic!("{test}: {error}"));
    client
        .send_dynamic(DYNAMIC_CHANNEL, from_dynamic.clone())
        .unwrap_or_else(|error| panic!("{test}: {error}"));
    let log = client
        .wait_for_channels(CHANNEL_TIMEOUT, |log| log.received.len() >= 4)
        .unwrap_or_else(|error| panic!("{test}: answers: {error}"));
    let received: Vec<ChannelReport> = server.reports.try_iter().collect();
    let got = |channel: &str| -> Vec<&[u8]> {
        received
            .iter()
            .filter_map(|report| match report {
                ChannelReport::Message(name, message) if name == channel => {
                    Some(message.as_slice())
                }
                _ => None,
            })
            .collect()
    };
    assert_eq!(got(STATIC_CHANNEL), [from_static.as_slice()], "{test}");
    assert_eq!(got(DYNAMIC_CHANNEL), [from_dynamic.as_slice()], "{test}");
    let reversed = |message: &[u8]| message.iter().rev().copied().collect::<Vec<u8>>();
    assert_eq!(
        messages_on(&log, STATIC_CHANNEL)[1],
        reversed(&from_static).as_slice()
    );
    assert_eq!(
        messages_on(&log, DYNAMIC_CHANNEL)[1],
        reversed(&from_dynamic).as_slice()
    );

    // The client closes the dynamic channel: the handler hears it, and
    // its handle refuses from then on.
    client
        .close_dynamic(DYNAMIC_CHANNEL)
        .unwrap_or_else(|error| panic!("{test}: {error}"));
    server.wait_report(
        test,
        |report| {
            matches!(report, ChannelReport::Closed(name, ChannelCloseReason::ClientClosed)
                if name == DYNAMIC_CHANNEL)
        },
        |_| false,
    );
    assert_eq!(dynamic_handle.try_send(vec![1]), Err(ChannelError::Closed));
    assert!(static_handle.is_open());

    // A thread floods the static channel while the client stops reading,
    // so the socket, then the send queue, fill and `send` waits; the
    // client disconnects; the waiting send returns `Closed`.
    let flooder = {
        let handle = static_handle.clone();
        std::thread::spawn(move || {
            let mut sent = 0usize;
            loop {
                match handle.send(vec![0x5A; 64 * 1024]) {
                    Ok(()) => sent += 64 * 1024,
                    Err(error) => return (sent, error),
                }
            }
        })
    };
    // Wait until the flood has filled the queue (the connection is not
    // draining it any more): the sender is then waiting for room.
    let deadline = std::time::Instant::now() + CHANNEL_TIMEOUT;
    while static_handle.queued() + 64 * 1024 <= ChannelOptions::DEFAULT_SEND_QUEUE {
        assert!(
            std::time::Instant::now() < deadline,
            "{test}: the queue never filled"
        );
        std::thread::yield_now();
    }
    drop(client);
    let (sent, error) = flooder.join().expect("flooder thread");
    assert_eq!(error, ChannelError::Closed, "{test}: after {sent} bytes");
    server.wait_report(
        test,
        |report| {
            matches!(report, ChannelReport::Closed(name, ChannelCloseReason::ConnectionClosed)
                if name == STATIC_CHANNEL)
        },
        |_| false,
    );
    // And later, from yet another thread.
    let late = std::thread::spawn(move || static_handle.send(vec![1; 10]));
    assert_eq!(late.join().expect("thread"), Err(ChannelError::Closed));
}

/// Clients without the application's channels are served without them:
/// one that joined no static channel and has no dynamic channel host, and
/// one whose DVC client refuses the Create Request (no listener of that
/// name). The factories hear `unavailable` for each, and nothing is built.
#[test]
fn clients_without_the_channels_get_none() {
    let test = "ironrdp-app-channels-absent";
    init_logs();
    let server = ChannelServer::start();
    let _plain = IronRdpClient::connect(&server.client_options())
        .unwrap_or_else(|error| panic!("{test}: {error}"));
    let mut unavailable = Vec::new();
    for _ in 0..2 {
        match server.wait_report(test, |_| true, |_| false) {
            ChannelReport::Unavailable(name, connection) => unavailable.push((name, connection)),
            other => panic!("{test}: unexpected {other:?}"),
        }
    }
    unavailable.sort();
    let first = unavailable[0].1;
    assert_eq!(
        unavailable,
        [
            (STATIC_CHANNEL.to_owned(), first),
            (DYNAMIC_CHANNEL.to_owned(), first)
        ]
    );

    let channels = ClientChannels {
        statics: Vec::new(),
        dynamics: vec!["rdpserve::Other".into()],
    };
    let mut refusing = IronRdpClient::connect_with_channels(&server.client_options(), &channels)
        .unwrap_or_else(|error| panic!("{test}: {error}"));
    let mut reports = Vec::new();
    refusing
        .wait_for_channels(CHANNEL_TIMEOUT, |_| {
            reports.extend(server.reports.try_iter());
            reports.len() >= 2
        })
        .unwrap_or_else(|error| panic!("{test}: {error}"));
    let names: BTreeSet<String> = reports
        .iter()
        .map(|report| match report {
            ChannelReport::Unavailable(name, connection) if *connection != first => name.clone(),
            other => panic!("{test}: unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        names,
        BTreeSet::from([STATIC_CHANNEL.to_owned(), DYNAMIC_CHANNEL.to_owned()])
    );
}

/// The example channel (`examples/src/chat.rs`) with IronRDP's client:
/// text comes back in capitals on both channels, and the ticks its threads
/// send through the handles arrive.
#[test]
fn the_example_chat_answers_and_ticks() {
    let test = "ironrdp-chat-example";
    init_logs();
    let recordings = artifacts_dir(test).join("recordings");
    let _ = std::fs::remove_dir_all(&recordings);
    std::fs::create_dir_all(&recordings).expect("recording directory");
    let server = ChannelServer::start_chat(recordings.clone());
    let channels = ClientChannels {
        statics: vec!["CHAT".into()],
        dynamics: vec!["rdpserve::Chat".into()],
    };
    let mut client = IronRdpClient::connect_with_channels(&server.client_options(), &channels)
        .unwrap_or_else(|error| panic!("{test}: {error}"));
    client
        .wait_for_channels(CHANNEL_TIMEOUT, |log| {
            log.open.contains_key("rdpserve::Chat")
        })
        .unwrap_or_else(|error| panic!("{test}: the chat did not open: {error}"));
    client
        .send_static("CHAT", b"static hello".to_vec())
        .unwrap_or_else(|error| panic!("{test}: {error}"));
    client
        .send_dynamic("rdpserve::Chat", b"dynamic hello".to_vec())
        .unwrap_or_else(|error| panic!("{test}: {error}"));
    let has = |log: &ChannelLog, channel: &str, message: &[u8]| {
        messages_on(log, channel).contains(&message)
    };
    client
        .wait_for_channels(CHANNEL_TIMEOUT, |log| {
            has(log, "CHAT", b"STATIC HELLO")
                && has(log, "rdpserve::Chat", b"DYNAMIC HELLO")
                && has(log, "CHAT", b"tick 1")
                && has(log, "rdpserve::Chat", b"tick 1")
        })
        .unwrap_or_else(|error| panic!("{test}: {error}: {:?}", client.channel_log().received));

    // The session, its channel traffic and the commands the handles gave
    // from their threads included, replays byte for byte.
    drop(client);
    server
        .closed
        .recv_timeout(CHANNEL_TIMEOUT)
        .unwrap_or_else(|_| panic!("{test}: the session did not close"));
    let file = std::fs::read_dir(&recordings)
        .expect("recordings")
        .filter_map(Result::ok)
        .find(|entry| entry.path().extension().is_some_and(|ext| ext == "rdprec"))
        .unwrap_or_else(|| panic!("{test}: no recording"));
    let recording = std::fs::read(file.path()).expect("recording reads");
    let report = rdpserve_core::replay(&recording, Some(server::validator()))
        .unwrap_or_else(|error| panic!("{test}: replay: {error}"));
    assert!(
        report.events > 0 && report.output_bytes > 0,
        "{test}: {report:?}"
    );
}
