//! TLS inside the engine, on rustls' in-memory connection API.
//!
//! The engine hands ciphertext from the wire to [`TlsLayer::receive`] and gets
//! plaintext back; plaintext it wants to send goes through [`TlsLayer::send`]
//! and comes out as ciphertext appended to the engine's transmit buffer.

use std::io::{self, Read};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::security::credssp;
use crate::security::served_certificate::{self, Refusal, ServedCertificate};

/// The server's TLS configuration: a certificate chain and key, or the
/// application's own rustls `ServerConfig` (a certificate resolver for SNI
/// or rotation, its cipher suites and protocol versions, its crypto
/// provider).
///
/// Either way CredSSP binds to the certificate TLS actually served on each
/// connection, never to a key given separately: every connection runs on a
/// copy of the configuration whose resolver writes down what it answered.
/// Those copies resume no TLS sessions (a resumed handshake sends no
/// certificate, so the client would bind to one from an earlier
/// connection).
#[derive(Clone)]
pub struct TlsIdentity {
    config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("cert_resolver", &self.config.cert_resolver)
            .finish_non_exhaustive()
    }
}

/// Why a TLS identity could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsIdentityError {
    #[error("no certificate")]
    NoCertificate,
    #[error("certificate: {0}")]
    Certificate(crate::wire::error::DecodeError),
    #[error("tls configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The configuration names ALPN protocols. RDP negotiates none (MS-RDPBCGR
    /// defines no ALPN id), and rustls ends the handshake of any client that
    /// offers ALPN without a match; a list left over from an HTTPS
    /// configuration would refuse such clients for nothing.
    #[error("tls configuration names alpn protocols; rdp uses none")]
    AlpnProtocols,
    /// The resolver serves raw public keys (RFC 7250); RDP clients expect an
    /// X.509 certificate, and CredSSP binds to a certificate's key.
    #[error("tls configuration serves raw public keys; rdp clients need a certificate")]
    RawPublicKeys,
}

impl TlsIdentity {
    /// An identity on the given crypto provider (its randomness and key
    /// exchange are the provider's), TLS 1.2 and 1.3, no client certificates.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<Self, TlsIdentityError> {
        let leaf = chain.first().ok_or(TlsIdentityError::NoCertificate)?;
        credssp::subject_public_key(leaf).map_err(TlsIdentityError::Certificate)?;
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        Self::from_server_config(Arc::new(config))
    }

    /// The application's own rustls configuration. Its certificate
    /// resolver is asked on every connection (so it may pick by SNI or
    /// rotate certificates); a resolver that answers `None` fails that
    /// handshake with [`TlsError::NoCertificate`].
    ///
    /// Refused: ALPN protocols ([`TlsIdentityError::AlpnProtocols`]) and
    /// raw public keys ([`TlsIdentityError::RawPublicKeys`]). Not checked,
    /// because rustls gives no way to read it back: client authentication.
    /// Build the configuration `with_no_client_auth()`; RDP clients present
    /// no TLS client certificate (users log on through CredSSP or the
    /// Client Info PDU), and one that requires a certificate fails every
    /// handshake with `NoCertificatesPresented`.
    ///
    /// Session resumption, tickets and early data of the configuration are
    /// not used (see the type's documentation); its key log, cipher suites,
    /// protocol versions and crypto provider are.
    pub fn from_server_config(config: Arc<rustls::ServerConfig>) -> Result<Self, TlsIdentityError> {
        if !config.alpn_protocols.is_empty() {
            return Err(TlsIdentityError::AlpnProtocols);
        }
        if config.cert_resolver.only_raw_public_keys() {
            return Err(TlsIdentityError::RawPublicKeys);
        }
        Ok(Self { config })
    }

    /// The configuration as the application gave it (before the changes
    /// each connection makes).
    pub fn server_config(&self) -> &Arc<rustls::ServerConfig> {
        &self.config
    }
}

/// Why the TLS layer failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// rustls refused the peer's records or could not set up the connection.
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
    /// Moving bytes through rustls' buffers failed.
    #[error("tls buffer: {0}")]
    Io(io::ErrorKind),
    /// The certificate resolver had no certificate for this client (for
    /// the server name it asked for, if any); the client got a TLS alert.
    #[error("no certificate for server name {server_name:?}")]
    NoCertificate { server_name: Option<String> },
    /// The resolver's certificate has no public key CredSSP can bind to;
    /// it was not served and the client got a TLS alert.
    #[error("resolved certificate: {0}")]
    UnreadableCertificate(crate::wire::error::DecodeError),
}

// rustls::Error holds no floating-point values; equality is reflexive.
impl Eq for TlsError {}

const READ_CHUNK: usize = 16 * 1024;

pub struct TlsLayer {
    connection: rustls::ServerConnection,
    /// What this connection's certificate resolver answered.
    served: Arc<ServedCertificate>,
}

impl std::fmt::Debug for TlsLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsLayer")
            .field("handshaking", &self.connection.is_handshaking())
            .finish()
    }
}

impl TlsLayer {
    pub fn new(identity: &TlsIdentity) -> Result<Self, TlsError> {
        let served = Arc::new(ServedCertificate::default());
        let config = served_certificate::per_connection(&identity.config, served.clone());
        let mut connection = rustls::ServerConnection::new(config)?;
        // The engine drains ciphertext after every write, so rustls never has to
        // push back on us; the adapter applies backpressure on the socket instead.
        connection.set_buffer_limit(None);
        Ok(Self { connection, served })
    }

    /// The subjectPublicKey of the certificate this connection served, once
    /// the TLS handshake is complete.
    pub fn served_public_key(&self) -> Option<Vec<u8>> {
        if self.connection.is_handshaking() {
            return None;
        }
        self.served.public_key()
    }

    /// Feeds ciphertext, appends the plaintext it carried to `plaintext`, and any
    /// handshake records rustls wants to send to `wire`.
    pub fn receive(
        &mut self,
        mut ciphertext: &[u8],
        plaintext: &mut Vec<u8>,
        wire: &mut Vec<u8>,
    ) -> Result<(), TlsError> {
        while !ciphertext.is_empty() {
            let read = self
                .connection
                .read_tls(&mut ciphertext)
                .map_err(|e| TlsError::Io(e.kind()));
            let processed = read.and_then(|_| {
                self.connection
                    .process_new_packets()
                    .map(drop)
                    .map_err(TlsError::from)
            });
            if let Err(error) = processed {
                // rustls queued an alert describing the failure; send it.
                self.flush(wire);
                // rustls says only that nothing was resolved; the slot says
                // for which name, or which certificate was refused.
                return Err(match self.served.refusal() {
                    Some(Refusal::NoCertificate { server_name }) => {
                        TlsError::NoCertificate { server_name }
                    }
                    Some(Refusal::Unreadable(error)) => TlsError::UnreadableCertificate(error),
                    None => error,
                });
            }
            self.drain_plaintext(plaintext)?;
            self.flush(wire);
        }
        Ok(())
    }

    fn drain_plaintext(&mut self, plaintext: &mut Vec<u8>) -> Result<(), TlsError> {
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            match self.connection.reader().read(&mut chunk) {
                Ok(0) => return Ok(()),
                Ok(n) => plaintext.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                // UnexpectedEof: the peer's TCP closed without close_notify; the
                // adapter reports end of stream separately.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(TlsError::Io(e.kind())),
            }
        }
    }

    /// Encrypts `plaintext` and appends the records to `wire`.
    pub fn send(&mut self, plaintext: &[u8], wire: &mut Vec<u8>) -> Result<(), TlsError> {
        use std::io::Write;
        self.connection
            .writer()
            .write_all(plaintext)
            .map_err(|e| TlsError::Io(e.kind()))?;
        self.flush(wire);
        Ok(())
    }

    pub fn close(&mut self, wire: &mut Vec<u8>) {
        self.connection.send_close_notify();
        self.flush(wire);
    }

    fn flush(&mut self, wire: &mut Vec<u8>) {
        while self.connection.wants_write() {
            // Writing into a Vec cannot fail.
            if self.connection.write_tls(wire).is_err() {
                break;
            }
        }
    }
}
