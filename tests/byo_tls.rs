//! Bring your own TLS through the public `RdpServer` API: the server runs
//! on the application's rustls `ServerConfig`, whose resolver picks a
//! certificate by the server name the client sends (SNI), and NLA binds to
//! the certificate the client received.
//!
//! IronRDP's client (always built) sends SNI when given a name. FreeRDP's
//! `xfreerdp /v:localhost` sends "localhost"; `/v:127.0.0.1` puts the
//! address in the SNI extension (which RFC 6066 does not allow), and rustls
//! ignores an address there, so the resolver sees no name. The xfreerdp
//! test shows both from both sides: the ClientHello on the wire, the names
//! the server's resolver saw, and the fingerprint of the certificate served
//! in the client's own store (`/cert:tofu`).

#[path = "support/ironrdp_client.rs"]
#[allow(dead_code)]
mod ironrdp_client;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ironrdp_client::{ClientError, ClientOptions, ClientSecurity, IronRdpClient};
use rdpserve_core::{SelectedSecurity, TlsError};
use rdpserve_tests::server::{self, Adapter, FixtureOptions, Security, TestServer};
use rdpserve_tests::{FreeRdp, Xvfb, artifacts_dir, require_interop, wait_until};
use rdpserve_tokio::rustls;
use rdpserve_tokio::rustls::crypto::CryptoProvider;
use rdpserve_tokio::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rdpserve_tokio::rustls::server::{ClientHello, ResolvesServerCert, ResolvesServerCertUsingSni};
use rdpserve_tokio::rustls::sign::CertifiedKey;
use rdpserve_tokio::{CloseReason, DesktopSize, Error, SessionEvent};
use sha2::{Digest, Sha256};

const SIZE: DesktopSize = DesktopSize {
    width: 640,
    height: 480,
};
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A fresh self-signed ECDSA certificate for `name`, and its key for a
/// resolver.
fn certified(name: &str, provider: &CryptoProvider) -> (Vec<u8>, Arc<CertifiedKey>) {
    let generated = rcgen::generate_simple_self_signed(vec![name.into()]).expect("certificate");
    let der: CertificateDer<'static> = generated.cert.der().clone();
    let key = PrivateKeyDer::try_from(generated.key_pair.serialize_der()).expect("key");
    let signer = provider.key_provider.load_private_key(key).expect("signer");
    (der.to_vec(), Arc::new(CertifiedKey::new(vec![der], signer)))
}

fn server_config(resolver: Arc<dyn ResolvesServerCert>) -> Arc<rustls::ServerConfig> {
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(resolver),
    )
}

/// Two names, two certificates, picked by rustls' own SNI resolver.
struct TwoNames {
    alpha: Vec<u8>,
    beta: Vec<u8>,
    config: Arc<rustls::ServerConfig>,
}

fn two_names() -> TwoNames {
    let provider = provider();
    let (alpha, alpha_key) = certified("alpha.test", &provider);
    let (beta, beta_key) = certified("beta.test", &provider);
    let mut resolver = ResolvesServerCertUsingSni::new();
    resolver
        .add("alpha.test", (*alpha_key).clone())
        .expect("alpha");
    resolver
        .add("beta.test", (*beta_key).clone())
        .expect("beta");
    TwoNames {
        alpha,
        beta,
        config: server_config(Arc::new(resolver)),
    }
}

fn start(config: Arc<rustls::ServerConfig>, adapter: Adapter) -> TestServer {
    TestServer::start_full(
        adapter,
        Security::Nla,
        SIZE,
        FixtureOptions {
            tls_config: Some(config),
            ..FixtureOptions::default()
        },
    )
}

fn options(server: &TestServer, tls_server_name: Option<&str>) -> ClientOptions {
    ClientOptions {
        server: server.addr,
        security: ClientSecurity::Nla,
        user: server::USER.into(),
        password: server::PASSWORD.into(),
        domain: None,
        codecs: Vec::new(),
        width: SIZE.width,
        height: SIZE.height,
        connect_timeout: CONNECT_TIMEOUT,
        tls_server_name: tls_server_name.map(str::to_owned),
        bind_to_key: None,
    }
}

/// The subjectPublicKey of a DER certificate.
fn public_key(certificate: &[u8]) -> Vec<u8> {
    use x509_cert::der::Decode as _;
    x509_cert::Certificate::from_der(certificate)
        .expect("certificate")
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .as_bytes()
        .expect("whole bytes")
        .to_vec()
}

/// Waits for the server to report the close of a connection for `reason`.
fn wait_close(server: &TestServer, reason: impl Fn(&CloseReason) -> bool) -> CloseReason {
    match server.wait_session_event(
        EVENT_TIMEOUT,
        |event| matches!(event, SessionEvent::Closed { reason: r, .. } if reason(r)),
    ) {
        Some(SessionEvent::Closed { reason, .. }) => reason,
        other => panic!("no such close reported: {other:?}"),
    }
}

/// SNI picks between two certificates; NLA (sspi's CredSSP, which binds to
/// the certificate it received) logs on against each, and the picture
/// arrives. On tokio and smol.
#[test]
fn sni_picks_the_certificate_and_nla_binds_to_it() {
    for adapter in [Adapter::Tokio, Adapter::Smol] {
        let names = two_names();
        let server = start(names.config.clone(), adapter);
        for (name, expected) in [("alpha.test", &names.alpha), ("beta.test", &names.beta)] {
            let test = format!("byo-tls-{adapter:?}-{name}");
            let mut client = IronRdpClient::connect(&options(&server, Some(name)))
                .unwrap_or_else(|error| panic!("{test}: {error}"));
            assert_eq!(
                client.server_certificate(),
                &expected[..],
                "{test}: served certificate"
            );
            let activated = server.wait_session_event(EVENT_TIMEOUT, |event| {
                matches!(event, SessionEvent::Activated { .. })
            });
            let Some(SessionEvent::Activated { info, .. }) = activated else {
                panic!("{test}: server reported no activation");
            };
            assert!(
                matches!(
                    info.security,
                    SelectedSecurity::Hybrid | SelectedSecurity::HybridEx
                ),
                "{test}: {:?}",
                info.security
            );
            let expected_image = server::expected_image(SIZE.width, SIZE.height);
            client
                .wait_for_image(CONNECT_TIMEOUT, |image| {
                    image.compare_region(0, 0, &expected_image).mismatches == 0
                })
                .unwrap_or_else(|error| panic!("{test}: picture: {error}"));
        }
    }
}

/// A client whose CredSSP binds to the other certificate (what a relay
/// showing its own certificate would make it do) is refused, and a client
/// that sends no name gets no certificate: each a typed close.
#[test]
fn a_wrong_binding_or_no_certificate_is_refused() {
    let names = two_names();
    let server = start(names.config.clone(), Adapter::Tokio);

    let mut relayed = options(&server, Some("alpha.test"));
    relayed.bind_to_key = Some(public_key(&names.beta));
    match IronRdpClient::connect(&relayed) {
        Ok(_) => panic!("logged on with a binding to another certificate"),
        Err(error) => eprintln!("bound to beta's key: {error}"),
    }
    let reason = wait_close(&server, |reason| {
        matches!(reason, CloseReason::Error(Error::Nla(_)))
    });
    let CloseReason::Error(error) = &reason else {
        unreachable!("matched above")
    };
    assert!(
        error.to_string().contains("public key binding"),
        "{reason:?}"
    );

    match IronRdpClient::connect(&options(&server, None)) {
        // rustls on the client reports the server's alert.
        Err(ClientError::Io(error)) => eprintln!("no sni: {error}"),
        Err(other) => panic!("no sni: expected the tls alert, got {other}"),
        Ok(_) => panic!("connected without a certificate"),
    }
    wait_close(&server, |reason| {
        reason == &CloseReason::Error(Error::Tls(TlsError::NoCertificate { server_name: None }))
    });

    // The right binding still logs on.
    IronRdpClient::connect(&options(&server, Some("alpha.test"))).expect("alpha logs on");
}

/// A resolver for the xfreerdp test: "localhost" and no name at all get
/// different certificates; every name asked for is kept.
#[derive(Debug)]
struct ByName {
    localhost: Arc<CertifiedKey>,
    unnamed: Arc<CertifiedKey>,
    asked: Mutex<Vec<Option<String>>>,
}

impl ResolvesServerCert for ByName {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name().map(str::to_owned);
        let key = match name.as_deref() {
            Some("localhost") => Some(self.localhost.clone()),
            None => Some(self.unnamed.clone()),
            Some(_) => None,
        };
        self.asked.lock().expect("names").push(name);
        key
    }
}

/// The files under `dir`, read whole (FreeRDP's certificate store is a
/// few small text files).
fn read_tree(dir: &std::path::Path, into: &mut String) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            read_tree(&path, into);
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            into.push_str(&text);
            into.push('\n');
        }
    }
}

/// The SHA-256 fingerprint FreeRDP stores, as bare lowercase hex.
fn fingerprint(certificate: &[u8]) -> String {
    Sha256::digest(certificate)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Forwards one connection from a fresh loopback port to `server`, keeping
/// the first bytes the client sent (its X.224 Connection Request and TLS
/// ClientHello). Returns the port's address and the kept bytes.
fn relay(server: std::net::SocketAddr) -> (std::net::SocketAddr, Arc<Mutex<Vec<u8>>>) {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};

    let listener = TcpListener::bind("127.0.0.1:0").expect("relay port");
    let addr = listener.local_addr().expect("relay address");
    let first_bytes = Arc::new(Mutex::new(Vec::new()));
    let kept = first_bytes.clone();
    std::thread::spawn(move || {
        let Ok((client, _)) = listener.accept() else {
            return;
        };
        let upstream = TcpStream::connect(server).expect("server");
        // Every read is bounded, so the copies end with the test.
        for stream in [&client, &upstream] {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
        }
        let copy = |mut from: TcpStream, mut to: TcpStream, keep: Option<Arc<Mutex<Vec<u8>>>>| {
            let mut buffer = [0u8; 16 * 1024];
            while let Ok(n @ 1..) = from.read(&mut buffer) {
                if let Some(keep) = &keep {
                    let mut kept = keep.lock().expect("kept bytes");
                    if kept.len() < 4096 {
                        kept.extend_from_slice(&buffer[..n]);
                    }
                }
                if to.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        };
        let (client_read, upstream_read) = (
            client.try_clone().expect("clone"),
            upstream.try_clone().expect("clone"),
        );
        let to_server = std::thread::spawn(move || copy(client_read, upstream, Some(kept)));
        copy(upstream_read, client, None);
        let _ = to_server.join();
    });
    (addr, first_bytes)
}

/// Whether `haystack` holds `needle`.
fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// `xfreerdp /v:localhost` sends SNI "localhost" and gets that name's
/// certificate; `/v:127.0.0.1` sends the address as SNI, the server sees
/// no name, and the client gets the other certificate. NLA logs on over
/// each. The client's own certificate store (`/cert:tofu`, in a private
/// HOME) holds the fingerprint of the certificate it was served, and the
/// server's resolver saw the names.
#[test]
fn xfreerdp_gets_the_certificate_for_the_name_it_connects_to() {
    if !require_interop() {
        return;
    }
    let provider = provider();
    let (localhost_cert, localhost) = certified("localhost", &provider);
    let (unnamed_cert, unnamed) = certified("unnamed.test", &provider);
    let resolver = Arc::new(ByName {
        localhost,
        unnamed,
        asked: Mutex::new(Vec::new()),
    });
    let server = start(server_config(resolver.clone()), Adapter::Tokio);
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    for (host, served, other, sni) in [
        (
            "localhost",
            &localhost_cert,
            &unnamed_cert,
            Some("localhost"),
        ),
        ("127.0.0.1", &unnamed_cert, &localhost_cert, None),
    ] {
        let test = format!("byo-tls-xfreerdp-{host}");
        let dir = artifacts_dir(&test);
        let home = dir.join("home");
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home).expect("client home");
        let (relay_addr, first_bytes) = relay(server.addr);
        let client = FreeRdp::builder(relay_addr)
            .host(host)
            .cert("tofu")
            .env("HOME", home.display().to_string())
            .env(
                "XDG_CONFIG_HOME",
                home.join(".config").display().to_string(),
            )
            .user(server::USER)
            .password(server::PASSWORD)
            .security(rdpserve_tests::ClientSecurity::Nla)
            .size(u32::from(SIZE.width), u32::from(SIZE.height))
            .log_level("DEBUG")
            .log_file(dir.join("xfreerdp.log"))
            .spawn(&xvfb)
            .expect("xfreerdp starts");
        let activated = server.wait_session_event(Duration::from_secs(30), |event| {
            matches!(event, SessionEvent::Activated { .. })
        });
        let Some(SessionEvent::Activated { info, .. }) = activated else {
            panic!("{test}: no activation\n{}", client.log());
        };
        assert!(
            matches!(
                info.security,
                SelectedSecurity::Hybrid | SelectedSecurity::HybridEx
            ),
            "{test}: {:?}",
            info.security
        );
        assert_eq!(
            resolver.asked.lock().expect("names").last(),
            Some(&sni.map(str::to_owned)),
            "{test}: the server name the resolver was given"
        );
        // On the wire, the ClientHello after the Connection Request names
        // the host either way (the Connection Request's cookie names the
        // user, not the host).
        assert!(
            contains(&first_bytes.lock().expect("kept bytes"), host),
            "{test}: the ClientHello does not name {host}"
        );
        // FreeRDP writes the certificate it accepted on first use into its
        // store; wait for the file rather than for time.
        let stored = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
            let mut text = String::new();
            read_tree(&home, &mut text);
            let bare = text.to_lowercase().replace(':', "");
            if bare.contains(&fingerprint(served)) {
                Ok(bare)
            } else {
                Err(text)
            }
        })
        .unwrap_or_else(|store| {
            panic!(
                "{test}: the served certificate is not in the client's store:\n{store}\n{}",
                client.log()
            )
        });
        assert!(!stored.contains(&fingerprint(other)), "{test}");
        // The client's side of NLA finished: it checked the server's proof
        // of the key it was served.
        let log = client.log();
        assert!(
            log.contains("Sending PubKeyAuth Token")
                && log.contains("CONNECTION_STATE_NLA --> CONNECTION_STATE_MCS_CONNECT"),
            "{test}: the client's log shows no completed NLA\n{log}"
        );
    }
}
