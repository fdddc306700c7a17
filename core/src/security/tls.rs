//! TLS inside the engine, on rustls' in-memory connection API.
//!
//! The engine hands ciphertext from the wire to [`TlsLayer::receive`] and gets
//! plaintext back; plaintext it wants to send goes through [`TlsLayer::send`]
//! and comes out as ciphertext appended to the engine's transmit buffer.

use std::io::{self, Read};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::security::credssp;

/// The server's certificate chain and key, as a rustls configuration plus
/// the public key of the served certificate. Built in one step so the key
/// CredSSP binds to is always the one TLS presents.
#[derive(Clone)]
pub struct TlsIdentity {
    config: Arc<rustls::ServerConfig>,
    public_key: Vec<u8>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("public_key_len", &self.public_key.len())
            .finish()
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
        let public_key =
            credssp::subject_public_key(leaf).map_err(TlsIdentityError::Certificate)?;
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        Ok(Self {
            config: Arc::new(config),
            public_key,
        })
    }

    pub fn server_config(&self) -> &Arc<rustls::ServerConfig> {
        &self.config
    }

    /// subjectPublicKey of the served certificate.
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }
}

/// Upper bound on plaintext rustls may hold for us between reads; it bounds
/// memory per connection even when a peer floods us.
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
}

// rustls::Error holds no floating-point values; equality is reflexive.
impl Eq for TlsError {}

const READ_CHUNK: usize = 16 * 1024;

pub struct TlsLayer {
    connection: rustls::ServerConnection,
}

impl std::fmt::Debug for TlsLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsLayer")
            .field("handshaking", &self.connection.is_handshaking())
            .finish()
    }
}

impl TlsLayer {
    pub fn new(config: Arc<rustls::ServerConfig>) -> Result<Self, TlsError> {
        let mut connection = rustls::ServerConnection::new(config)?;
        // The engine drains ciphertext after every write, so rustls never has to
        // push back on us; the adapter applies backpressure on the socket instead.
        connection.set_buffer_limit(None);
        Ok(Self { connection })
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
                return Err(error);
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
