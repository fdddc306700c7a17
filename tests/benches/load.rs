//! Load figures of the real server over loopback (`cargo bench -p
//! rdpserve-tests --bench load`): the memory one pre-logon connection
//! costs. Prints the figures; asserts nothing about time.

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
