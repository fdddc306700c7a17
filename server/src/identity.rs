//! The server's TLS identity: one certificate chain and its private key.
//!
//! The identity is a single object so the public key a client sees in TLS is
//! always the one the server proves possession of; CredSSP binds to the
//! certificate TLS served rather than to a key passed separately. An
//! application with its own rustls `ServerConfig` (SNI, rotation, cipher
//! policy) passes that instead (`with_tls_config`, `with_hybrid_config`).

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
    #[cfg(feature = "self-signed")]
    #[error("generating a self-signed certificate: {0}")]
    SelfSigned(#[from] rcgen::Error),
    #[cfg(feature = "self-signed")]
    #[error("generating an rsa key: {0}")]
    RsaKey(String),
    #[error(transparent)]
    Tls(#[from] rdpserve_core::TlsIdentityError),
    #[error("nla needs credentials or a credential validator")]
    NlaWithoutCredentials,
    /// An application channel (`with_static_channel`,
    /// `with_dynamic_channel`) cannot have this name.
    #[error("channel name {name:?}: {reason}")]
    InvalidChannelName { name: String, reason: &'static str },
}

/// The key type of a generated self-signed certificate.
#[cfg(feature = "self-signed")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// RSA with a 2048-bit modulus, signed with SHA-256: what Windows
    /// Server's self-signed RDP certificate uses. Some clients need it:
    /// rdesktop's CredSSP only handles RSA server keys, and RDP proxies
    /// that re-sign with the server's key type expect RSA.
    #[default]
    Rsa2048,
    /// ECDSA on P-256 with SHA-256: smaller and generated instantly, for
    /// deployments whose clients all handle it (FreeRDP, IronRDP, mstsc).
    EcdsaP256,
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

    /// Generates a self-signed certificate with an RSA-2048 key for `names`
    /// (host names or addresses), as Windows Server does. With the
    /// `self-signed` feature (on by default).
    #[cfg(feature = "self-signed")]
    pub fn self_signed(names: &[&str]) -> Result<Self, IdentityError> {
        Self::self_signed_with(names, KeyAlgorithm::default())
    }

    /// Generates a self-signed certificate for `names` with a fresh key of
    /// `algorithm`, drawn from the operating system's random generator.
    #[cfg(feature = "self-signed")]
    pub fn self_signed_with(
        names: &[&str],
        algorithm: KeyAlgorithm,
    ) -> Result<Self, IdentityError> {
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let key_pair = match algorithm {
            KeyAlgorithm::Rsa2048 => rsa_2048_key_pair()?,
            KeyAlgorithm::EcdsaP256 => {
                rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?
            }
        };
        let cert = rcgen::CertificateParams::new(names)?.self_signed(&key_pair)?;
        let key = PrivateKeyDer::try_from(key_pair.serialize_der())
            .map_err(|_| IdentityError::NoCertificate)?;
        Self::new(vec![cert.der().clone()], key)
    }

    /// The DER certificate the server presents first.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// The engine's identity: a rustls configuration on the ring provider
    /// (TLS 1.2 and 1.3) serving this certificate, whose public key CredSSP
    /// binds to.
    pub fn core_identity(&self) -> Result<rdpserve_core::TlsIdentity, IdentityError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(rdpserve_core::TlsIdentity::new(
            self.chain.clone(),
            self.key.clone_key(),
            provider,
        )?)
    }
}

/// A fresh RSA-2048 key for rcgen. rcgen's ring backend signs with RSA keys
/// but cannot make one, so RustCrypto's `rsa` generates it from the OS
/// random generator and hands it over as PKCS#8.
#[cfg(feature = "self-signed")]
fn rsa_2048_key_pair() -> Result<rcgen::KeyPair, IdentityError> {
    use rsa::pkcs8::EncodePrivateKey;

    let private_key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
        .map_err(|error| IdentityError::RsaKey(error.to_string()))?;
    let pkcs8 = private_key
        .to_pkcs8_der()
        .map_err(|error| IdentityError::RsaKey(error.to_string()))?;
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_bytes().to_vec());
    Ok(rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &der,
        &rcgen::PKCS_RSA_SHA256,
    )?)
}

#[cfg(all(test, feature = "self-signed"))]
mod tests {
    use super::*;

    /// The SubjectPublicKeyInfo algorithm of a DER certificate, found by
    /// its OID bytes.
    fn has_oid(certificate: &[u8], oid: &[u8]) -> bool {
        certificate.windows(oid.len()).any(|window| window == oid)
    }

    /// rsaEncryption, 1.2.840.113549.1.1.1.
    const RSA_ENCRYPTION: &[u8] = &[
        0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01,
    ];
    /// id-ecPublicKey, 1.2.840.10045.2.1.
    const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];

    #[test]
    fn self_signed_defaults_to_rsa_2048() {
        let identity = TlsIdentity::self_signed(&["localhost"]).unwrap();
        let certificate = identity.certificate().as_ref();
        assert!(has_oid(certificate, RSA_ENCRYPTION));
        assert!(!has_oid(certificate, EC_PUBLIC_KEY));
        identity.core_identity().unwrap();
        // The subjectPublicKey, an RSAPublicKey: SEQUENCE (270 bytes) {
        // INTEGER (257 bytes) modulus, exponent }, after the BIT STRING's
        // header and unused-bits byte.
        assert!(has_oid(
            certificate,
            &[
                0x03, 0x82, 0x01, 0x0F, 0x00, 0x30, 0x82, 0x01, 0x0A, 0x02, 0x82, 0x01, 0x01, 0x00
            ]
        ));
        assert!(matches!(identity.key, PrivateKeyDer::Pkcs8(_)));
    }

    #[test]
    fn ecdsa_stays_available() {
        let identity =
            TlsIdentity::self_signed_with(&["localhost"], KeyAlgorithm::EcdsaP256).unwrap();
        assert!(has_oid(identity.certificate().as_ref(), EC_PUBLIC_KEY));
        identity.core_identity().unwrap();
        // The subjectPublicKey: an uncompressed P-256 point (65 bytes after
        // the BIT STRING's unused-bits byte).
        assert!(has_oid(
            identity.certificate().as_ref(),
            &[0x03, 0x42, 0x00, 0x04]
        ));
    }
}
