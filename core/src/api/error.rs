//! Errors, split by who is at fault.

use std::fmt;

use crate::wire::error::DecodeError;

/// Why a connection ended, as reported in `Event::Closed`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client sent something malformed or out of order.
    #[error("peer misbehaved: {0}")]
    Protocol(#[from] DecodeError),
    /// The client sent a PDU that is well-formed but not valid in this state.
    #[error("peer misbehaved: {0}")]
    UnexpectedPdu(&'static str),
    /// The client asks for something this server does not support.
    #[error("unsupported by peer: {0}")]
    Unsupported(Unsupported),
    /// NLA (CredSSP) failed for a reason other than wrong credentials.
    #[error("nla: {0}")]
    Nla(crate::security::credssp::CredSspError),
    /// The client's credentials were rejected.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// A handshake or idle deadline passed.
    #[error("timed out: {0}")]
    TimedOut(&'static str),
    /// TLS failed (bad record, handshake failure, ...).
    #[error("tls: {0}")]
    Tls(String),
    /// The application used the API wrongly.
    #[error("api misuse: {0}")]
    Misuse(&'static str),
}

/// What the peer wanted that we do not offer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unsupported {
    /// No security protocol in common; carries what the client requested.
    SecurityProtocol {
        requested: u32,
    },
    /// The client's core data names a different protocol than the one selected.
    DowngradeDetected {
        selected: u32,
        reported: u32,
    },
    /// Standard RDP security with encryption (we only speak it without).
    RdpEncryption,
    /// The client offers no colour depth we can draw at.
    ColorDepth,
    Other(&'static str),
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SecurityProtocol { requested } => {
                write!(
                    f,
                    "no common security protocol (client requested {requested:#x})"
                )
            }
            Self::DowngradeDetected { selected, reported } => write!(
                f,
                "downgrade detected: selected protocol {selected:#x}, client reported {reported:#x}"
            ),
            Self::RdpEncryption => f.write_str("standard rdp security with encryption"),
            Self::ColorDepth => f.write_str("no supported colour depth"),
            Self::Other(what) => f.write_str(what),
        }
    }
}
