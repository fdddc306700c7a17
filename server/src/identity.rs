//! The server's TLS identity: one certificate chain and its private key.
//!
//! The identity is a single object so the public key a client sees in TLS is
//! always the one the server proves possession of; CredSSP (later) binds to
//! the same certificate rather than to a key passed separately.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why an identity could not be loaded or generated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    #[error("reading {what}: {source}")]
    Pem {
        what: &'static str,
        source: rustls::pki_types::pem::Error,
    },
    #[error("no certificate in the pem input")]
    NoCertificate,
    #[error("generating a self-signed certificate: {0}")]
    SelfSigned(#[from] rcgen::Error),
    #[error(transparent)]
    Tls(#[from] rdpserve_core::TlsIdentityError),
    #[error("nla needs credentials or a credential validator")]
    NlaWithoutCredentials,
}

/// A certificate chain and the private key of its first certificate.
#[derive(Debug)]
pub struct TlsIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for TlsIdentity {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl TlsIdentity {
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, IdentityError> {
        if chain.is_empty() {
            return Err(IdentityError::NoCertificate);
        }
        Ok(Self { chain, key })
    }

    /// Loads a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem_files(
        cert_path: impl AsRef<Path>,
        key_path: impl AsRef<Path>,
    ) -> Result<Self, IdentityError> {
        let chain = CertificateDer::pem_file_iter(cert_path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|source| IdentityError::Pem {
                what: "certificate",
                source,
            })?;
        let key = PrivateKeyDer::from_pem_file(key_path).map_err(|source| IdentityError::Pem {
            what: "private key",
            source,
        })?;
        Self::new(chain, key)
    }

    /// Parses PEM text held in memory.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, IdentityError> {
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| IdentityError::Pem {
                what: "certificate",
                source,
            })?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|source| IdentityError::Pem {
            what: "private key",
            source,
        })?;
        Self::new(chain, key)
    }

    /// Generates a self-signed certificate for `names` (host names or addresses).
    pub fn self_signed(names: &[&str]) -> Result<Self, IdentityError> {
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let certified = rcgen::generate_simple_self_signed(names)?;
        let key = PrivateKeyDer::try_from(certified.key_pair.serialize_der())
            .map_err(|_| IdentityError::NoCertificate)?;
        Self::new(vec![certified.cert.der().clone()], key)
    }

    /// The DER certificate the server presents first.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// The engine's identity: a rustls configuration on the ring provider
    /// (TLS 1.2 and 1.3) and the public key CredSSP binds to, both from this
    /// certificate.
    pub fn core_identity(&self) -> Result<rdpserve_core::TlsIdentity, IdentityError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(rdpserve_core::TlsIdentity::new(
            self.chain.clone(),
            self.key.clone_key(),
            provider,
        )?)
    }
}
