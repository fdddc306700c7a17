//! Which certificate TLS served on one connection, so CredSSP binds to it.
//!
//! rustls has no server-side accessor for the certificate it sent. Each
//! connection therefore gets its own copy of the application's
//! `ServerConfig` whose certificate resolver wraps the application's: it
//! asks the application's resolver, then writes down what it answered into
//! a slot only this connection reads. After the TLS handshake, the slot
//! holds the certificate the client saw, even when the application's
//! resolver picks one per connection (SNI) or rotates them over time.

use std::sync::{Arc, Mutex, PoisonError};

use rustls::server::{ClientHello, NoServerSessionStorage, ProducesTickets, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::security::credssp;
use crate::wire::error::DecodeError;

/// What the resolver answered for this connection's ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resolution {
    /// A certificate whose subjectPublicKey CredSSP binds to.
    Served { public_key: Vec<u8> },
    /// The application's resolver had nothing for this client.
    NoCertificate { server_name: Option<String> },
    /// The application's resolver answered with a certificate whose public
    /// key cannot be read; it was not served.
    Unreadable(DecodeError),
}

/// The per-connection slot the resolver writes and the TLS layer reads.
#[derive(Debug, Default)]
pub(crate) struct ServedCertificate {
    resolution: Mutex<Option<Resolution>>,
}

impl ServedCertificate {
    fn set(&self, resolution: Resolution) {
        // A panic while the lock was held cannot leave the Option half
        // written; keep going with its value.
        *self
            .resolution
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(resolution);
    }

    fn get(&self) -> Option<Resolution> {
        self.resolution
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The subjectPublicKey of the certificate the resolver last gave
    /// rustls. rustls asks again after a HelloRetryRequest; the last answer
    /// is the one the client receives.
    pub fn public_key(&self) -> Option<Vec<u8>> {
        match self.get()? {
            Resolution::Served { public_key } => Some(public_key),
            _ => None,
        }
    }

    /// Why no certificate was served, if the resolver refused: rustls only
    /// reports "no server certificate chain resolved", and nothing for a
    /// certificate refused here.
    pub fn refusal(&self) -> Option<Refusal> {
        match self.get()? {
            Resolution::Served { .. } => None,
            Resolution::NoCertificate { server_name } => {
                Some(Refusal::NoCertificate { server_name })
            }
            Resolution::Unreadable(error) => Some(Refusal::Unreadable(error)),
        }
    }
}

/// Why no certificate was served.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The application's resolver had nothing for this client.
    NoCertificate { server_name: Option<String> },
    /// Its certificate has no public key CredSSP could bind to.
    Unreadable(DecodeError),
}

/// The application's resolver, with this connection's answers written down.
#[derive(Debug)]
struct RecordingResolver {
    inner: Arc<dyn ResolvesServerCert>,
    served: Arc<ServedCertificate>,
}

impl ResolvesServerCert for RecordingResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let server_name = client_hello.server_name().map(str::to_owned);
        let Some(certified) = self.inner.resolve(client_hello) else {
            self.served.set(Resolution::NoCertificate { server_name });
            return None;
        };
        // Read the key before the certificate goes out: a certificate
        // CredSSP could not bind to is refused here, with a handshake
        // failure, rather than after the client has trusted it.
        let public_key = match certified.end_entity_cert() {
            Ok(leaf) => credssp::subject_public_key(leaf),
            Err(_) => Err(DecodeError::InvalidField {
                context: "certified key",
                field: "certificate chain",
                reason: "empty",
            }),
        };
        match public_key {
            Ok(public_key) => {
                self.served.set(Resolution::Served { public_key });
                Some(certified)
            }
            Err(error) => {
                self.served.set(Resolution::Unreadable(error));
                None
            }
        }
    }

    fn only_raw_public_keys(&self) -> bool {
        self.inner.only_raw_public_keys()
    }
}

/// Issues no session tickets.
#[derive(Debug)]
struct NoTickets;

impl ProducesTickets for NoTickets {
    fn enabled(&self) -> bool {
        false
    }

    fn lifetime(&self) -> u32 {
        0
    }

    fn encrypt(&self, _plain: &[u8]) -> Option<Vec<u8>> {
        None
    }

    fn decrypt(&self, _cipher: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

/// This connection's configuration: the application's, with the resolver
/// wrapped to fill `served`, and without session resumption.
///
/// Resumption is off because a resumed handshake sends no certificate: the
/// client keeps the one from the session it resumes, and binds CredSSP to
/// that one. rustls still asks the resolver on a resumed handshake, and the
/// resolver may by now pick another certificate (it was rotated, or the
/// session was made for another name), so what the slot says would not be
/// what the client holds. An RDP connection lasts long and starts with
/// CredSSP or a logon anyway, so the one signature a full handshake adds
/// costs little. Early data needs resumption, so it is off too.
pub(crate) fn per_connection(
    config: &rustls::ServerConfig,
    served: Arc<ServedCertificate>,
) -> Arc<rustls::ServerConfig> {
    let mut config = config.clone();
    config.cert_resolver = Arc::new(RecordingResolver {
        inner: config.cert_resolver.clone(),
        served,
    });
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.ticketer = Arc::new(NoTickets);
    config.send_tls13_tickets = 0;
    config.max_early_data_size = 0;
    Arc::new(config)
}
