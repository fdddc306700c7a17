//! Load figures of the real server over loopback (`cargo bench -p
//! rdpserve-tests --bench load`): TLS and NLA logons per second with IronRDP's
//! client (p50/p99 time to an active session), the memory one pre-logon
//! connection costs, and the memory of active 1920x1080 sessions (xfreerdp
//! under Xvfb, when installed). `-- --soak MINUTES` instead churns logons
//! for that long and samples the process RSS. Prints the figures; asserts
//! nothing about time.

#[path = "../support/ironrdp_client.rs"]
#[allow(dead_code)]
mod ironrdp_client;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdpserve_tests::server::{Adapter, FixtureOptions, Security, TestServer};
use rdpserve_tokio::{ConnectionLimits, DesktopSize};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// X.224 Connection Request with RDP_NEG_REQ asking for SSL | HYBRID.
const CONNECTION_REQUEST: [u8; 19] = [
    0x03, 0x00, 0x00, 0x13, 0x0e, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x08, 0x00, 0x03,
    0x00, 0x00, 0x00,
];

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS")
}

#[derive(Debug)]
struct AcceptAny;

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client that sends its Connection Request and TLS ClientHello, reads
/// the server's answer, and then does nothing: a pre-logon connection.
fn half_open(server: std::net::SocketAddr, tls: &Arc<rustls::ClientConfig>) -> TcpStream {
    let mut socket = TcpStream::connect(server).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    socket.write_all(&CONNECTION_REQUEST).expect("request");
    let mut confirm = [0u8; 19];
    socket.read_exact(&mut confirm).expect("connection confirm");
    let mut client = rustls::ClientConnection::new(tls.clone(), "localhost".try_into().unwrap())
        .expect("tls client");
    let mut hello = Vec::new();
    client.write_tls(&mut hello).expect("client hello");
    socket.write_all(&hello).expect("hello sent");
    // The server's flight: the TLS state exists on the server once it
    // answered.
    let mut answer = [0u8; 5];
    socket.read_exact(&mut answer).expect("server hello");
    socket
}

fn main() {
    // Each measurement of active sessions runs in a process of its own, so
    // memory freed by an earlier one cannot hide a later one's.
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|arg| arg == "--sessions") {
        active_sessions(&args[at + 1]);
        return;
    }
    if let Some(at) = args.iter().position(|arg| arg == "--soak") {
        let minutes: u64 = args[at + 1].parse().expect("minutes");
        soak(Duration::from_secs(minutes * 60));
        return;
    }
    for security in [Security::Tls, Security::Nla] {
        logons(security, Duration::from_secs(10));
    }
    pre_logon();
    for codec in ["planar", "remotefx"] {
        let status = std::process::Command::new(std::env::current_exe().expect("own path"))
            .args(["--sessions", codec])
            .status()
            .expect("child runs");
        assert!(status.success());
    }
}

fn pre_logon() {
    let connections = 400;
    let options = FixtureOptions {
        limits: Some(ConnectionLimits {
            max_handshakes: connections + 10,
            max_handshakes_per_address: connections + 10,
            ..ConnectionLimits::default()
        }),
        ..FixtureOptions::default()
    };
    let size = DesktopSize {
        width: 1920,
        height: 1080,
    };
    let server = TestServer::start_full(Adapter::Tokio, Security::Nla, size, options);
    let tls = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny))
        .with_no_client_auth(),
    );
    // Warm up allocator pools and the runtime with a few connections first.
    drop(
        (0..10)
            .map(|_| half_open(server.addr, &tls))
            .collect::<Vec<_>>(),
    );
    let before = rss_kib();
    let started = Instant::now();
    let held: Vec<TcpStream> = (0..connections)
        .map(|_| half_open(server.addr, &tls))
        .collect();
    let after = rss_kib();
    let per_connection = (after.saturating_sub(before)) as f64 / connections as f64;
    println!(
        "pre-logon connections: {connections} held (TLS ClientHello answered) in {:.0} ms; \
         process RSS {before} KiB -> {after} KiB: {per_connection:.1} KiB per connection \
         (target <= 64 KiB)",
        started.elapsed().as_secs_f64() * 1000.0
    );
    drop(held);
}

/// The RSS an active 1920x1080 session adds: `sessions` xfreerdp clients
/// log on one after another and render the first frame.
fn active_sessions(codec: &str) {
    use rdpserve_tests::freerdp::FreeRdp;
    use rdpserve_tests::x11::Xvfb;
    use rdpserve_tokio::{BitmapCodecs, SessionEvent};

    if which("xfreerdp").is_none() || which("Xvfb").is_none() {
        println!("active 1080p sessions: skipped (xfreerdp or Xvfb missing)");
        return;
    }
    let size = DesktopSize {
        width: 1920,
        height: 1080,
    };
    let (name, codecs, extra) = match codec {
        "planar" => ("planar", BitmapCodecs::bitmaps_only(), None),
        _ => ("remotefx", BitmapCodecs::default(), Some("/rfx")),
    };
    {
        let options = FixtureOptions {
            codecs: Some(codecs),
            ..FixtureOptions::default()
        };
        let server = TestServer::start_full(Adapter::Tokio, Security::Tls, size, options);
        let xvfb = Xvfb::start(1920, 1080).expect("Xvfb");
        let before = rss_kib();
        let sessions = 3;
        let mut clients = Vec::new();
        for index in 0..sessions {
            let mut args = vec![
                format!("/u:{}", rdpserve_tests::server::USER),
                format!("/p:{}", rdpserve_tests::server::PASSWORD),
                "/sec:tls".into(),
                "/bpp:32".into(),
                format!("/size:{}x{}", size.width, size.height),
            ];
            args.extend(extra.map(str::to_owned));
            let log = std::env::temp_dir().join(format!("load-{name}-{index}.log"));
            clients.push(FreeRdp::spawn(&xvfb, server.addr, &args, log).expect("xfreerdp"));
            let active = server.wait_session_event(Duration::from_secs(60), |event| {
                matches!(event, SessionEvent::Activated { .. })
            });
            assert!(active.is_some(), "session {index} did not start");
        }
        // The first frame takes a moment to encode and send after logon;
        // wait until the process stops growing.
        let mut last = rss_kib();
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let now = rss_kib();
            if now.abs_diff(last) < 256 {
                break;
            }
            last = now;
        }
        let after = rss_kib();
        println!(
            "active 1920x1080 sessions ({name}): {sessions} -> {:.1} MiB per session \
             (target <= 12 MiB)",
            (after.saturating_sub(before)) as f64 / 1024.0 / sessions as f64
        );
        drop(clients);
    }
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| std::path::Path::new(dir).join(program))
        .find(|path| path.is_file())
}

/// A server for logon figures: a small desktop (the first frame is not
/// what is measured) and caps high enough for one busy address.
fn logon_server(security: Security) -> TestServer {
    let options = FixtureOptions {
        limits: Some(ConnectionLimits {
            max_handshakes: 256,
            max_handshakes_per_address: 256,
            max_sessions: 256,
            max_failed_logons: usize::MAX,
            ..ConnectionLimits::default()
        }),
        ..FixtureOptions::default()
    };
    let size = DesktopSize {
        width: 640,
        height: 480,
    };
    TestServer::start_full(Adapter::Tokio, security, size, options)
}

/// Logs on with IronRDP's client from `threads` threads for `duration`;
/// returns each logon's time to an active session, and the failures.
fn churn(
    server: std::net::SocketAddr,
    security: Security,
    threads: usize,
    duration: Duration,
) -> (Vec<Duration>, usize) {
    use ironrdp_client::{ClientOptions, ClientSecurity, IronRdpClient};
    let options = ClientOptions {
        server,
        security: match security {
            Security::Nla => ClientSecurity::Nla,
            _ => ClientSecurity::Tls,
        },
        user: rdpserve_tests::server::USER.into(),
        password: rdpserve_tests::server::PASSWORD.into(),
        domain: None,
        codecs: Vec::new(),
        width: 640,
        height: 480,
        connect_timeout: Duration::from_secs(20),
        tls_server_name: None,
        bind_to_key: None,
    };
    let end = Instant::now() + duration;
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let options = options.clone();
            std::thread::spawn(move || {
                let (mut times, mut failures) = (Vec::new(), 0);
                while Instant::now() < end {
                    let started = Instant::now();
                    match IronRdpClient::connect(&options) {
                        Ok(client) => {
                            times.push(started.elapsed());
                            drop(client);
                        }
                        Err(_) => failures += 1,
                    }
                }
                (times, failures)
            })
        })
        .collect();
    let (mut times, mut failures) = (Vec::new(), 0);
    for worker in workers {
        let (worker_times, worker_failures) = worker.join().expect("worker");
        times.extend(worker_times);
        failures += worker_failures;
    }
    (times, failures)
}

fn logons(security: Security, duration: Duration) {
    let server = logon_server(security);
    let started = Instant::now();
    let (mut times, failures) = churn(server.addr, security, 4, duration);
    let elapsed = started.elapsed().as_secs_f64();
    times.sort();
    let percentile = |p: f64| {
        times
            .get(((times.len() as f64 * p) as usize).min(times.len().saturating_sub(1)))
            .map_or(0.0, |time| time.as_secs_f64() * 1000.0)
    };
    println!(
        "{security:?} logons (IronRDP client, 4 threads, same machine): {} in {elapsed:.1} s = \
         {:.1}/s, p50 {:.1} ms, p99 {:.1} ms, {failures} failed",
        times.len(),
        times.len() as f64 / elapsed,
        percentile(0.5),
        percentile(0.99),
    );
}

/// A server with nothing in it but the library: one small frame per
/// session, no observer, input dropped, so the soak's RSS is the server's.
fn bare_server(nla: bool) -> (std::net::SocketAddr, rdpserve_tokio::StopHandle) {
    use rdpserve_tokio::{
        BitmapUpdate, Credentials, DisplayUpdate, KeyboardEvent, MouseEvent, RdpServer,
        RdpServerDisplay, RdpServerDisplayUpdates, RdpServerInputHandler,
    };

    struct Ignore;
    impl RdpServerInputHandler for Ignore {
        fn keyboard(&mut self, _: KeyboardEvent) {}
        fn mouse(&mut self, _: MouseEvent) {}
    }
    struct Grey;
    struct OneFrame(Option<DisplayUpdate>);
    impl RdpServerDisplay for Grey {
        type Updates = OneFrame;
        async fn size(&self) -> DesktopSize {
            DesktopSize {
                width: 640,
                height: 480,
            }
        }
        async fn updates(&self) -> std::io::Result<OneFrame> {
            Ok(OneFrame(Some(DisplayUpdate::Bitmap(BitmapUpdate {
                x: 0,
                y: 0,
                width: 640,
                height: 480,
                stride: 640 * 4,
                data: Arc::from(vec![0x80u8; 640 * 480 * 4]),
                format: Default::default(),
            }))))
        }
    }
    impl RdpServerDisplayUpdates for OneFrame {
        async fn next_update(&mut self) -> Option<DisplayUpdate> {
            match self.0.take() {
                Some(update) => Some(update),
                None => std::future::pending().await,
            }
        }
    }

    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let builder = RdpServer::builder().with_addr(([127, 0, 0, 1], 0));
            let builder = if nla {
                builder.with_self_signed_hybrid()
            } else {
                builder.with_self_signed_tls()
            };
            let server = builder
                .with_input_handler(Ignore)
                .with_display_handler(Grey)
                .with_credentials(Credentials {
                    username: rdpserve_tests::server::USER.into(),
                    password: rdpserve_tests::server::PASSWORD.into(),
                    domain: None,
                })
                .with_connection_limits(ConnectionLimits {
                    max_handshakes: 256,
                    max_handshakes_per_address: 256,
                    max_sessions: 256,
                    max_failed_logons: usize::MAX,
                    ..ConnectionLimits::default()
                })
                .build()
                .expect("server")
                .bind()
                .await
                .expect("bound");
            let _ = sender.send((server.local_addr().expect("addr"), server.stop_handle()));
            server.run().await.expect("serves");
        });
    });
    receiver.recv().expect("server started")
}

/// Churns NLA and TLS logons for `duration`, printing the process RSS
/// every tenth of it: it must stay flat.
fn soak(duration: Duration) {
    let (tls, _tls_stop) = bare_server(false);
    let (nla, _nla_stop) = bare_server(true);
    let step = duration / 10;
    let mut samples = vec![rss_kib()];
    let mut total = 0;
    for round in 0..10 {
        let (times, failures) = churn(
            if round % 2 == 0 { nla } else { tls },
            if round % 2 == 0 {
                Security::Nla
            } else {
                Security::Tls
            },
            4,
            step,
        );
        total += times.len();
        samples.push(rss_kib());
        println!(
            "soak {:>3}%: {total} logons so far, {failures} failed in this step, RSS {} KiB",
            (round + 1) * 10,
            samples.last().unwrap()
        );
    }
    let first = samples[1];
    let last = *samples.last().unwrap();
    println!(
        "soak: {total} logons in {:.0} s; RSS after the first tenth {first} KiB, at the end {last} KiB",
        duration.as_secs_f64()
    );
}
