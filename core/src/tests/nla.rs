//! NLA through the whole engine: an in-memory TLS client (rustls) runs
//! CredSSP against the engine on a simulated clock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api::config::{Config, Credentials, DesktopSize, SecurityConfig};
use crate::api::event::CloseReason;
use crate::security::credssp::TsRequest;
use crate::security::credssp::client::ClientExchange;
use crate::wire::x224::{
    ConnectionConfirm, ConnectionRequest, NegotiationRequest, SecurityProtocol,
};
use crate::{Engine, Error, Event, TlsIdentity};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

pub(super) const USER: &str = "bob";
pub(super) const PASSWORD: &str = "builder";

/// Accepts any certificate: the test checks the CredSSP binding instead.
#[derive(Debug)]
pub(super) struct AcceptAny(pub Arc<CryptoProvider>);

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
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

pub(super) struct Pair {
    pub engine: Engine,
    pub tls: rustls::ClientConnection,
    pub now: Instant,
    pub events: Vec<Event>,
    /// The subjectPublicKey of the certificate the client received.
    pub public_key: Vec<u8>,
}

/// An ECDSA P-256 certificate made for the test.
pub(super) fn ecdsa_identity(provider: &Arc<CryptoProvider>) -> TlsIdentity {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let key = PrivateKeyDer::try_from(certified.key_pair.serialize_der()).unwrap();
    TlsIdentity::new(vec![certified.cert.der().clone()], key, provider.clone()).unwrap()
}

/// An RSA-2048 certificate like a Windows server's, from a throwaway key
/// kept for this test (ring cannot generate RSA keys).
fn rsa_identity(provider: &Arc<CryptoProvider>) -> TlsIdentity {
    let cert =
        CertificateDer::from(&include_bytes!("fixtures/test-rsa2048-cert.der")[..]).into_owned();
    let key = PrivateKeyDer::try_from(&include_bytes!("fixtures/test-rsa2048-key.der")[..])
        .unwrap()
        .clone_key();
    TlsIdentity::new(vec![cert], key, provider.clone()).unwrap()
}

/// The NLA test configuration: one account, `USER` and `PASSWORD`.
pub(super) fn nla_config(identity: TlsIdentity) -> Config {
    let mut config = Config::new(
        SecurityConfig::nla(identity),
        DesktopSize {
            width: 640,
            height: 480,
        },
    );
    config.credentials = Some(
        Credentials {
            username: USER.into(),
            password: PASSWORD.into(),
            domain: None,
        }
        .into(),
    );
    config
}

impl Pair {
    fn new() -> Self {
        Self::with(ecdsa_identity, |_| {})
    }

    fn with_validator(validator: crate::Validator) -> Self {
        Self::with(ecdsa_identity, |config| {
            config.credentials = Some(validator)
        })
    }

    fn with(
        identity: fn(&Arc<CryptoProvider>) -> TlsIdentity,
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = nla_config(identity(&provider));
        configure(&mut config);
        let pair = Self::start(config, "localhost".try_into().unwrap());
        assert!(
            !pair.tls.is_handshaking(),
            "tls handshake completes in memory"
        );
        pair
    }

    /// Negotiates NLA with an engine on `config`, then runs the TLS
    /// handshake with a client that asks for `server_name` (an IP address
    /// sends no SNI), as far as it goes.
    pub(super) fn start(config: Config, server_name: ServerName<'static>) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let now = Instant::now();
        let mut engine = Engine::new(config, [4; 32], now);
        let mut request = Vec::new();
        ConnectionRequest {
            cookie: None,
            routing_token: None,
            negotiation: Some(NegotiationRequest {
                flags: 0,
                requested_protocols: SecurityProtocol::SSL
                    | SecurityProtocol::HYBRID
                    | SecurityProtocol::HYBRID_EX,
            }),
        }
        .encode(&mut request);
        engine.handle_input(now, &request);
        let mut confirm = Vec::new();
        while engine.poll_transmit(&mut confirm).is_some() {}
        assert_eq!(
            ConnectionConfirm::decode(&confirm).unwrap(),
            ConnectionConfirm::Response {
                flags: crate::wire::x224::ServerNegotiationFlags::EXTENDED_CLIENT_DATA_SUPPORTED,
                selected: SecurityProtocol::HYBRID_EX
            }
        );
        let client_config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth();
        let tls = rustls::ClientConnection::new(Arc::new(client_config), server_name).unwrap();
        let mut pair = Self {
            engine,
            tls,
            now,
            events: Vec::new(),
            public_key: Vec::new(),
        };
        pair.pump();
        if let Some(leaf) = pair.tls.peer_certificates().and_then(|chain| chain.first()) {
            pair.public_key = crate::security::credssp::subject_public_key(leaf).unwrap();
        }
        pair
    }

    /// Moves bytes both ways until neither side has anything to say; bounded.
    fn pump(&mut self) {
        for _ in 0..50 {
            let mut moved = false;
            let mut to_server = Vec::new();
            while self.tls.wants_write() {
                self.tls.write_tls(&mut to_server).unwrap();
            }
            if !to_server.is_empty() {
                self.now += Duration::from_millis(1);
                self.engine.handle_input(self.now, &to_server);
                moved = true;
            }
            let mut to_client = Vec::new();
            while self.engine.poll_transmit(&mut to_client).is_some() {}
            if !to_client.is_empty() {
                let mut slice = &to_client[..];
                while !slice.is_empty() {
                    self.tls.read_tls(&mut slice).unwrap();
                    // A fatal alert from the server ends the client's side;
                    // tests look at the engine's close reason.
                    if self.tls.process_new_packets().is_err() {
                        break;
                    }
                }
                moved = true;
            }
            while let Some(event) = self.engine.poll_event() {
                self.events.push(event);
            }
            if !moved {
                return;
            }
        }
        panic!("livelock: the pair kept talking for 50 rounds");
    }

    pub(super) fn send(&mut self, plaintext: &[u8]) {
        use std::io::Write;
        self.tls.writer().write_all(plaintext).unwrap();
        self.pump();
    }

    pub(super) fn receive(&mut self) -> Vec<u8> {
        use std::io::Read;
        let mut out = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            match self.tls.reader().read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buffer[..n]),
                Err(_) => break,
            }
        }
        out
    }

    pub(super) fn closed_reason(&self) -> Option<&CloseReason> {
        self.events.iter().find_map(|event| match event {
            Event::Closed { reason } => Some(reason),
            _ => None,
        })
    }
}

#[test]
fn nla_succeeds_and_sends_the_early_authorization_result() {
    let mut pair = Pair::new();
    let mut client = ClientExchange::new(6, &pair.public_key, USER, "", PASSWORD);
    pair.send(&client.first());
    let challenge = pair.receive();
    pair.send(&client.second(&challenge).unwrap());
    let binding = pair.receive();
    pair.send(
        &client
            .third(&binding)
            .expect("server proves the same certificate key"),
    );
    // HYBRID_EX: the Early User Authorization Result, AUTHZ_SUCCESS.
    assert_eq!(pair.receive(), [0, 0, 0, 0]);
    assert!(pair.closed_reason().is_none());
    assert!(!pair.engine.is_closed());
}

/// Runs the three CredSSP rounds; returns what the server sent last.
pub(super) fn log_on(pair: &mut Pair, client: &mut ClientExchange) -> Vec<u8> {
    pair.send(&client.first());
    let challenge = pair.receive();
    pair.send(&client.second(&challenge).unwrap());
    let binding = pair.receive();
    if let Ok(third) = client.third(&binding) {
        pair.send(&third);
        return pair.receive();
    }
    binding
}

/// Windows serves an RSA key; the CredSSP binding covers its RSAPublicKey.
#[test]
fn nla_over_an_rsa_certificate() {
    let mut pair = Pair::with(rsa_identity, |_| {});
    assert_eq!(&pair.public_key[..4], &[0x30, 0x82, 0x01, 0x0A]);
    let mut client = ClientExchange::new(6, &pair.public_key, USER, "", PASSWORD);
    assert_eq!(log_on(&mut pair, &mut client), [0, 0, 0, 0]);
    assert!(!pair.engine.is_closed());
    // CredSSP before version 5 binds the key itself, echoed plus one.
    let mut pair = Pair::with(rsa_identity, |_| {});
    let mut client = ClientExchange::new(3, &pair.public_key, USER, "", PASSWORD);
    assert_eq!(log_on(&mut pair, &mut client), [0, 0, 0, 0]);
}

/// A client that sends no NTLM MIC and does not claim one logs on, as on
/// Windows; with `require_ntlm_mic` it is refused like a wrong password.
#[test]
fn ntlm_without_a_mic_logs_on_unless_the_server_requires_one() {
    let mut pair = Pair::new();
    let mut client = ClientExchange::new(6, &pair.public_key, USER, "", PASSWORD);
    client.without_mic();
    assert_eq!(log_on(&mut pair, &mut client), [0, 0, 0, 0]);
    assert!(pair.closed_reason().is_none());

    let mut pair = Pair::with(ecdsa_identity, |config| {
        config.security.require_ntlm_mic = true;
    });
    let mut client = ClientExchange::new(6, &pair.public_key, USER, "", PASSWORD);
    client.without_mic();
    let reply = TsRequest::decode(&log_on(&mut pair, &mut client)).unwrap();
    assert_eq!(reply.error_code, Some(0xC000_006D));
    assert_eq!(
        pair.closed_reason(),
        Some(&CloseReason::Error(Error::AuthenticationFailed))
    );

    // The switch does not refuse clients that send a MIC.
    let mut pair = Pair::with(ecdsa_identity, |config| {
        config.security.require_ntlm_mic = true;
    });
    let mut client = ClientExchange::new(6, &pair.public_key, USER, "", PASSWORD);
    assert_eq!(log_on(&mut pair, &mut client), [0, 0, 0, 0]);
}

#[test]
fn wrong_password_gets_an_error_code_and_closes() {
    let mut pair = Pair::new();
    let mut client = ClientExchange::new(6, &pair.public_key, USER, "", "bulldozer");
    pair.send(&client.first());
    let challenge = pair.receive();
    pair.send(&client.second(&challenge).unwrap());
    let reply = TsRequest::decode(&pair.receive()).unwrap();
    assert_eq!(reply.error_code, Some(0xC000_006D));
    assert_eq!(
        pair.closed_reason(),
        Some(&CloseReason::Error(Error::AuthenticationFailed))
    );
}

#[test]
fn client_that_never_sends_credentials_hits_the_deadline() {
    let mut pair = Pair::new();
    let mut client = ClientExchange::new(6, &pair.public_key, USER, "", PASSWORD);
    pair.send(&client.first());
    let challenge = pair.receive();
    pair.send(&client.second(&challenge).unwrap());
    let _ = pair.receive();
    // The client stops here; the simulated clock jumps to the deadline.
    let (deadline, _) = pair
        .engine
        .poll_timeout()
        .expect("deadline armed during nla");
    pair.engine.handle_timeout(deadline);
    pair.pump();
    assert_eq!(
        pair.closed_reason(),
        Some(&CloseReason::Error(Error::TimedOut("handshake")))
    );
}

#[test]
fn malformed_ts_request_is_a_protocol_error() {
    let mut pair = Pair::new();
    pair.send(&[0x30, 0x03, 0xA0, 0x01, 0xFF]);
    assert!(matches!(
        pair.closed_reason(),
        Some(CloseReason::Error(Error::Protocol(_)))
    ));
}

#[test]
fn oversized_ts_request_is_refused() {
    let mut pair = Pair::new();
    pair.send(&[0x30, 0x83, 0x10, 0x00, 0x00]);
    assert!(matches!(
        pair.closed_reason(),
        Some(CloseReason::Error(Error::Protocol(_)))
    ));
}

#[test]
fn delegating_another_account_is_access_denied() {
    let mut pair = Pair::new();
    let mut client = ClientExchange::new(6, &pair.public_key, USER, "", PASSWORD);
    client.delegate_as("mallory");
    pair.send(&client.first());
    let challenge = pair.receive();
    pair.send(&client.second(&challenge).unwrap());
    let binding = pair.receive();
    pair.send(&client.third(&binding).unwrap());
    // HYBRID_EX: AUTHZ_ACCESS_DENIED, then the connection closes.
    assert_eq!(pair.receive(), [5, 0, 0, 0]);
    assert_eq!(
        pair.closed_reason(),
        Some(&CloseReason::Error(Error::AuthenticationFailed))
    );
}

/// An account database that keeps NT hashes only.
struct Hashes;

impl crate::CredentialValidator for Hashes {
    fn secret(&self, user: &str, _domain: &str) -> Option<crate::Secret> {
        (user == USER).then(|| crate::Secret::NtHash(crate::nt_hash(PASSWORD)))
    }
}

#[test]
fn a_validator_that_holds_only_nt_hashes_serves_nla() {
    for (password, accepted) in [(PASSWORD, true), ("bulldozer", false)] {
        let mut pair = Pair::with_validator(Hashes.into());
        let mut client = ClientExchange::new(6, &pair.public_key, USER, "", password);
        pair.send(&client.first());
        let challenge = pair.receive();
        pair.send(&client.second(&challenge).unwrap());
        if accepted {
            let binding = pair.receive();
            pair.send(
                &client
                    .third(&binding)
                    .expect("the hash proves the password"),
            );
            assert_eq!(pair.receive(), [0, 0, 0, 0], "AUTHZ_SUCCESS");
            assert!(pair.closed_reason().is_none());
        } else {
            assert_eq!(
                pair.closed_reason(),
                Some(&CloseReason::Error(Error::AuthenticationFailed))
            );
        }
    }
}

/// A store of one-time redirection cookies, as an application keeps them.
#[derive(Default)]
struct Cookies(std::sync::Mutex<Vec<(String, String)>>);

impl crate::RedirectionCookieValidator for Arc<Cookies> {
    fn pending(&self, user: &str, _domain: &str) -> Vec<crate::Password> {
        let issued = self.0.lock().unwrap();
        issued
            .iter()
            .filter(|(owner, _)| owner == user)
            .map(|(_, cookie)| crate::Password::new(cookie.clone()))
            .collect()
    }

    fn redeem(&self, user: &str, _domain: &str, cookie: &str) -> bool {
        let mut issued = self.0.lock().unwrap();
        let before = issued.len();
        issued.retain(|(owner, value)| !(owner == user && value == cookie));
        issued.len() < before
    }
}

/// A redirected client proves its one-time cookie in NTLM and delegates it:
/// logged on once; the same cookie again is a logon failure.
#[test]
fn a_redirection_cookie_logs_on_over_nla_once() {
    let cookies = Arc::new(Cookies::default());
    cookies
        .0
        .lock()
        .unwrap()
        .push((USER.into(), "one-time-7f3a".into()));
    for attempt in 0..2 {
        let store = cookies.clone();
        let mut pair = Pair::with(ecdsa_identity, |config| {
            config.redirection_cookies = Some(store.into());
        });
        let mut client = ClientExchange::new(6, &pair.public_key, USER, "", "one-time-7f3a");
        let last = log_on(&mut pair, &mut client);
        if attempt == 0 {
            assert_eq!(last, [0, 0, 0, 0], "AUTHZ_SUCCESS");
            assert!(pair.closed_reason().is_none());
        } else {
            assert_eq!(
                pair.closed_reason(),
                Some(&CloseReason::Error(Error::AuthenticationFailed)),
                "a replayed cookie"
            );
        }
    }
    // The account's own password still logs on beside the cookies.
    let store = cookies.clone();
    let mut pair = Pair::with(ecdsa_identity, |config| {
        config.redirection_cookies = Some(store.into());
    });
    let mut client = ClientExchange::new(6, &pair.public_key, USER, "", PASSWORD);
    assert_eq!(log_on(&mut pair, &mut client), [0, 0, 0, 0]);
}
