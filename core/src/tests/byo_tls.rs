//! The application's own rustls configuration (`TlsIdentity::from_server_config`):
//! a resolver picks the certificate by SNI, and CredSSP binds to the one
//! the client received, through the whole engine over in-memory TLS.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::ResolvesServerCertUsingSni;
use rustls::sign::CertifiedKey;

use super::nla::{AcceptAny, PASSWORD, Pair, USER, log_on, nla_config};
use crate::api::event::CloseReason;
use crate::security::credssp::client::ClientExchange;
use crate::security::credssp::{CredSspError, subject_public_key};
use crate::wire::x224::{ConnectionRequest, NegotiationRequest, SecurityProtocol};
use crate::{Error, TlsError, TlsIdentity, TlsIdentityError};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A fresh ECDSA certificate for `name` and its key, ready for a resolver.
fn certified(name: &str, provider: &CryptoProvider) -> (CertificateDer<'static>, CertifiedKey) {
    let generated = rcgen::generate_simple_self_signed(vec![name.into()]).unwrap();
    let cert = generated.cert.der().clone();
    let key = PrivateKeyDer::try_from(generated.key_pair.serialize_der()).unwrap();
    let signer = provider.key_provider.load_private_key(key).unwrap();
    (cert.clone(), CertifiedKey::new(vec![cert], signer))
}

/// The certificates served for alpha.test and beta.test.
struct TwoNames {
    alpha: CertificateDer<'static>,
    beta: CertificateDer<'static>,
    identity: TlsIdentity,
}

fn two_names() -> TwoNames {
    let provider = provider();
    let (alpha, alpha_key) = certified("alpha.test", &provider);
    let (beta, beta_key) = certified("beta.test", &provider);
    let mut resolver = ResolvesServerCertUsingSni::new();
    resolver.add("alpha.test", alpha_key).unwrap();
    resolver.add("beta.test", beta_key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    TwoNames {
        alpha,
        beta,
        identity: TlsIdentity::from_server_config(Arc::new(config)).unwrap(),
    }
}

fn name(text: &str) -> ServerName<'static> {
    ServerName::try_from(text.to_owned()).unwrap()
}

fn served(pair: &Pair) -> CertificateDer<'static> {
    pair.tls.peer_certificates().expect("a certificate")[0].clone()
}

#[test]
fn sni_picks_the_certificate_and_nla_binds_to_it() {
    let names = two_names();
    for (server_name, expected) in [("alpha.test", &names.alpha), ("beta.test", &names.beta)] {
        let mut pair = Pair::start(nla_config(names.identity.clone()), name(server_name));
        assert_eq!(&served(&pair), expected, "{server_name}");
        assert_eq!(pair.public_key, subject_public_key(expected).unwrap());
        let mut client = ClientExchange::new(6, &pair.public_key, USER, "", PASSWORD);
        // AUTHZ_SUCCESS: the server proved the key of the served certificate
        // and accepted the client's binding to it.
        assert_eq!(
            log_on(&mut pair, &mut client),
            [0, 0, 0, 0],
            "{server_name}"
        );
        assert!(pair.closed_reason().is_none());
    }
}

/// A client bound to the other certificate's key (as a relay presenting
/// its own certificate would make it) is refused.
#[test]
fn a_binding_to_the_other_certificate_fails() {
    let names = two_names();
    let mut pair = Pair::start(nla_config(names.identity.clone()), name("alpha.test"));
    assert_eq!(served(&pair), names.alpha);
    let beta_key = subject_public_key(&names.beta).unwrap();
    let mut client = ClientExchange::new(6, &beta_key, USER, "", PASSWORD);
    pair.send(&client.first());
    let challenge = pair.receive();
    pair.send(&client.second(&challenge).unwrap());
    assert_eq!(
        pair.closed_reason(),
        Some(&CloseReason::Error(Error::Nla(
            CredSspError::PublicKeyMismatch
        )))
    );
}

#[test]
fn no_certificate_for_the_name_is_a_typed_close() {
    let names = two_names();
    // An address sends no SNI; an unknown name gets nothing either.
    for (server_name, sent) in [
        ("127.0.0.1", None),
        ("gamma.test", Some("gamma.test".to_owned())),
    ] {
        let pair = Pair::start(nla_config(names.identity.clone()), name(server_name));
        assert!(pair.tls.peer_certificates().is_none());
        assert_eq!(
            pair.closed_reason(),
            Some(&CloseReason::Error(Error::Tls(TlsError::NoCertificate {
                server_name: sent
            })))
        );
        assert!(pair.engine.is_closed());
        // The client was told: its side of the handshake failed on the alert.
        assert!(pair.tls.is_handshaking());
    }
}

/// A resolver whose certificate is not X.509.
#[derive(Debug)]
struct Garbage(Arc<CertifiedKey>);

impl rustls::server::ResolvesServerCert for Garbage {
    fn resolve(&self, _: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

#[test]
fn a_certificate_without_a_readable_key_is_not_served() {
    let provider = provider();
    let (_, good) = certified("localhost", &provider);
    let garbage = CertifiedKey::new(
        vec![CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])],
        good.key,
    );
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Garbage(Arc::new(garbage))));
    let identity = TlsIdentity::from_server_config(Arc::new(config)).unwrap();
    let pair = Pair::start(nla_config(identity), name("localhost"));
    assert!(pair.tls.peer_certificates().is_none());
    assert!(matches!(
        pair.closed_reason(),
        Some(CloseReason::Error(Error::Tls(
            TlsError::UnreadableCertificate(_)
        )))
    ));
}

/// A client that would resume its TLS session gets a full handshake, with
/// the certificate, so what it binds to is what this connection served. The
/// same configuration used by rustls directly does resume.
#[test]
fn tls_sessions_are_not_resumed() {
    let names = two_names();
    let provider = provider();
    let client_config = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth(),
    );
    let kinds = |server: &mut dyn FnMut() -> rustls::ServerConnection| {
        let mut kinds = Vec::new();
        for _ in 0..2 {
            let mut client =
                rustls::ClientConnection::new(client_config.clone(), name("alpha.test")).unwrap();
            let mut server = server();
            for _ in 0..20 {
                let mut bytes = Vec::new();
                while client.wants_write() {
                    client.write_tls(&mut bytes).unwrap();
                }
                server.read_tls(&mut &bytes[..]).unwrap();
                server.process_new_packets().unwrap();
                let mut bytes = Vec::new();
                while server.wants_write() {
                    server.write_tls(&mut bytes).unwrap();
                }
                client.read_tls(&mut &bytes[..]).unwrap();
                client.process_new_packets().unwrap();
            }
            kinds.push(client.handshake_kind());
        }
        kinds
    };
    let full = Some(rustls::HandshakeKind::Full);
    let application = names.identity.server_config().clone();
    assert_eq!(
        kinds(&mut || rustls::ServerConnection::new(application.clone()).unwrap()),
        [full, Some(rustls::HandshakeKind::Resumed)],
        "the control: rustls resumes with the application's configuration"
    );
    // The engine's TLS layer: every handshake is full and sends the
    // certificate.
    let served = Arc::new(crate::security::served_certificate::ServedCertificate::default());
    let per_connection =
        crate::security::served_certificate::per_connection(&application, served.clone());
    assert_eq!(
        kinds(&mut || rustls::ServerConnection::new(per_connection.clone()).unwrap()),
        [full, full]
    );
    assert_eq!(
        served.public_key(),
        Some(subject_public_key(&names.alpha).unwrap())
    );
}

#[test]
fn the_recording_header_names_the_served_key_and_replays() {
    let names = two_names();
    let mut config = nla_config(names.identity.clone());
    config.record = true;
    let validator = config.credentials.clone();
    let mut pair = Pair::start(config, name("beta.test"));
    let mut recording = Vec::new();
    let mut client = ClientExchange::new(6, &pair.public_key, USER, "", PASSWORD);
    assert_eq!(log_on(&mut pair, &mut client), [0, 0, 0, 0]);
    while pair.engine.poll_recording(&mut recording).is_some() {}
    pair.engine.close();
    while pair.engine.poll_event().is_some() {}
    while pair.engine.poll_recording(&mut recording).is_some() {}
    let header = crate::record::format::decode_header(
        &mut crate::wire::cursor::ReadCursor::new(&recording, "recording"),
        None,
    )
    .unwrap();
    assert_eq!(
        header.public_key,
        Some(subject_public_key(&names.beta).unwrap())
    );
    crate::replay(&recording, validator).expect("replays against the served key");
}

/// Until the TLS handshake is done the key is unknown, so the recording
/// holds back; a connection that ends first still gets its header.
#[test]
fn the_recording_waits_for_the_served_key() {
    let names = two_names();
    let mut config = nla_config(names.identity.clone());
    config.record = true;
    let validator = config.credentials.clone();
    let now = std::time::Instant::now();
    let mut engine = crate::Engine::new(config, [4; 32], now);
    let mut request = Vec::new();
    ConnectionRequest {
        cookie: None,
        routing_token: None,
        negotiation: Some(NegotiationRequest {
            flags: 0,
            requested_protocols: SecurityProtocol::HYBRID_EX,
        }),
    }
    .encode(&mut request);
    engine.handle_input(now, &request);
    let mut recording = Vec::new();
    while engine.poll_transmit(&mut recording).is_some() {}
    recording.clear();
    assert_eq!(
        engine.poll_recording(&mut recording),
        None,
        "tls is under way"
    );
    engine.handle_eof(now);
    while engine.poll_event().is_some() {}
    while engine.poll_recording(&mut recording).is_some() {}
    let header = crate::record::format::decode_header(
        &mut crate::wire::cursor::ReadCursor::new(&recording, "recording"),
        None,
    )
    .unwrap();
    assert_eq!(header.public_key, Some(Vec::new()), "no certificate served");
    crate::replay(&recording, validator).expect("replays");
}

#[test]
fn configurations_rdp_clients_cannot_use_are_refused() {
    let provider = provider();
    let (_, key) = certified("localhost", &provider);
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(
            rustls::server::AlwaysResolvesServerRawPublicKeys::new(Arc::new(key)),
        ));
    assert!(matches!(
        TlsIdentity::from_server_config(Arc::new(config.clone())),
        Err(TlsIdentityError::RawPublicKeys)
    ));
    config.cert_resolver = two_names().identity.server_config().cert_resolver.clone();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    assert!(matches!(
        TlsIdentity::from_server_config(Arc::new(config)),
        Err(TlsIdentityError::AlpnProtocols)
    ));
}
