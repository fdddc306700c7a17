//! Engine configuration: security, credentials and the limits of rule 5.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The desktop size the server announces, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DesktopSize {
    pub width: u16,
    pub height: u16,
}

impl DesktopSize {
    /// The range MS-RDPBCGR 2.2.1.3.2 allows for a desktop dimension.
    pub const MIN: u16 = 200;
    pub const MAX: u16 = 8192;

    /// The size with each dimension clamped to the range the spec allows.
    pub fn clamped(self) -> Self {
        Self {
            width: self.width.clamp(Self::MIN, Self::MAX),
            height: self.height.clamp(Self::MIN, Self::MAX),
        }
    }
}

/// A user name and password the client must present.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// `None` accepts any domain.
    pub domain: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("domain", &self.domain)
            .finish()
    }
}

/// Which security protocols the server accepts.
#[derive(Clone)]
pub struct SecurityConfig {
    /// TLS (PROTOCOL_SSL) with this rustls configuration.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Standard RDP security without encryption (PROTOCOL_RDP): everything,
    /// the password included, crosses the wire in clear. Only for trusted links.
    pub allow_plain_rdp: bool,
}

impl fmt::Debug for SecurityConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecurityConfig")
            .field("tls", &self.tls.is_some())
            .field("allow_plain_rdp", &self.allow_plain_rdp)
            .finish()
    }
}

/// Everything an [`Engine`](crate::Engine) needs besides its seed.
#[derive(Debug, Clone)]
pub struct Config {
    pub security: SecurityConfig,
    /// `None` accepts any user; otherwise the Client Info PDU must match.
    pub credentials: Option<Credentials>,
    /// Announced in Demand Active; clamped to 200..=8192 per dimension.
    pub desktop_size: DesktopSize,
    /// The largest graphics update the server sends in one piece (fast-path
    /// fragments are reassembled by the client up to this size). The client's
    /// Multifragment Update capability lowers it further. Default 8 MiB.
    pub max_request_size: u32,
    /// Time from construction until the session must be active. Default 30 s,
    /// long enough for a person typing a password at a TLS logon prompt would
    /// not apply here (credentials come with Client Info), short enough that a
    /// stalled client does not hold a slot.
    pub handshake_timeout: Duration,
    /// Largest PDU accepted from the client. TPKT caps it at 65535 anyway; the
    /// default is that maximum.
    pub max_incoming_pdu: usize,
}

impl Config {
    pub const DEFAULT_MAX_REQUEST_SIZE: u32 = 8 * 1024 * 1024;
    pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_MAX_INCOMING_PDU: usize = 0xFFFF;

    /// A configuration with the documented defaults and the given security.
    pub fn new(security: SecurityConfig, desktop_size: DesktopSize) -> Self {
        Self {
            security,
            credentials: None,
            desktop_size,
            max_request_size: Self::DEFAULT_MAX_REQUEST_SIZE,
            handshake_timeout: Self::DEFAULT_HANDSHAKE_TIMEOUT,
            max_incoming_pdu: Self::DEFAULT_MAX_INCOMING_PDU,
        }
    }
}
