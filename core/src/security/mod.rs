//! Security: TLS (rustls on in-memory buffers), the NTLM server (MS-NLMP)
//! and CredSSP (MS-CSSP) for Network Level Authentication.
//!
//! Imports: `wire` only.

pub(crate) mod credssp;
pub(crate) mod ntlm;
pub(crate) mod password;
pub(crate) mod served_certificate;
pub(crate) mod tls;
