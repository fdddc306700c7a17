//! The type-state builder: address, then security, then handlers, then options.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::time::Duration;

use rdpserve_core::{
    BitmapCodecs, BitmapCompression, CredentialValidator, Credentials, SecurityConfig,
};

use crate::admission::ConnectionLimits;
use crate::clipboard::CliprdrServerFactory;
use crate::handlers::{RdpServerDisplay, RdpServerInputHandler, SessionEvent};
use crate::identity::{IdentityError, TlsIdentity};
use crate::runtime::Runtime;
use crate::server::{RdpServer, ServerOptions};
use crate::sound::SoundServerFactory;

pub struct WantsAddr;
pub struct WantsSecurity {
    addr: SocketAddr,
}
pub struct WantsInputHandler {
    addr: SocketAddr,
    security: SecurityChoice,
}
pub struct WantsDisplay<I> {
    addr: SocketAddr,
    security: SecurityChoice,
    input: I,
}
pub struct Ready<I, D> {
    addr: SocketAddr,
    security: SecurityChoice,
    input: I,
    display: D,
    options: ServerOptions,
}

enum SecurityChoice {
    Tls(Option<TlsIdentity>),
    Hybrid(Option<TlsIdentity>),
    None,
}

/// Builds an [`RdpServer`] for runtime `R`; start with [`RdpServer::builder`].
pub struct RdpServerBuilder<R, State> {
    state: State,
    runtime: PhantomData<R>,
}

impl<R: Runtime> RdpServerBuilder<R, WantsAddr> {
    pub(crate) fn new() -> Self {
        Self {
            state: WantsAddr,
            runtime: PhantomData,
        }
    }

    pub fn with_addr(self, addr: impl Into<SocketAddr>) -> RdpServerBuilder<R, WantsSecurity> {
        RdpServerBuilder {
            state: WantsSecurity { addr: addr.into() },
            runtime: PhantomData,
        }
    }
}

impl<R: Runtime> RdpServerBuilder<R, WantsSecurity> {
    /// TLS with this identity.
    pub fn with_tls(self, identity: TlsIdentity) -> RdpServerBuilder<R, WantsInputHandler> {
        self.security(SecurityChoice::Tls(Some(identity)))
    }

    /// Network Level Authentication: TLS plus CredSSP (PROTOCOL_HYBRID and
    /// HYBRID_EX) with NTLMv2. Clients that only offer TLS are refused unless
    /// [`allow_tls_without_nla`](RdpServerBuilder::allow_tls_without_nla) is
    /// set. Needs credentials or a validator.
    pub fn with_hybrid(self, identity: TlsIdentity) -> RdpServerBuilder<R, WantsInputHandler> {
        self.security(SecurityChoice::Hybrid(Some(identity)))
    }

    /// NLA with a self-signed certificate generated when the server is built
    /// (RSA-2048, like Windows Server's; for another key type pass
    /// [`TlsIdentity::self_signed_with`] to [`with_hybrid`](Self::with_hybrid)).
    pub fn with_self_signed_hybrid(self) -> RdpServerBuilder<R, WantsInputHandler> {
        self.security(SecurityChoice::Hybrid(None))
    }

    /// TLS with a self-signed certificate generated when the server is built
    /// (RSA-2048, as with [`with_self_signed_hybrid`](Self::with_self_signed_hybrid)).
    pub fn with_self_signed_tls(self) -> RdpServerBuilder<R, WantsInputHandler> {
        self.security(SecurityChoice::Tls(None))
    }

    /// Plain RDP security without encryption: passwords and pixels cross the
    /// network in clear. For trusted links and tests only.
    pub fn with_no_security(self) -> RdpServerBuilder<R, WantsInputHandler> {
        self.security(SecurityChoice::None)
    }

    fn security(self, security: SecurityChoice) -> RdpServerBuilder<R, WantsInputHandler> {
        RdpServerBuilder {
            state: WantsInputHandler {
                addr: self.state.addr,
                security,
            },
            runtime: PhantomData,
        }
    }
}

impl<R: Runtime> RdpServerBuilder<R, WantsInputHandler> {
    pub fn with_input_handler<I: RdpServerInputHandler>(
        self,
        input: I,
    ) -> RdpServerBuilder<R, WantsDisplay<I>> {
        RdpServerBuilder {
            state: WantsDisplay {
                addr: self.state.addr,
                security: self.state.security,
                input,
            },
            runtime: PhantomData,
        }
    }
}

impl<R: Runtime, I: RdpServerInputHandler> RdpServerBuilder<R, WantsDisplay<I>> {
    pub fn with_display_handler<D: RdpServerDisplay>(
        self,
        display: D,
    ) -> RdpServerBuilder<R, Ready<I, D>> {
        let WantsDisplay {
            addr,
            security,
            input,
        } = self.state;
        RdpServerBuilder {
            state: Ready {
                addr,
                security,
                input,
                display,
                options: ServerOptions::default(),
            },
            runtime: PhantomData,
        }
    }
}

impl<R: Runtime, I: RdpServerInputHandler, D: RdpServerDisplay> RdpServerBuilder<R, Ready<I, D>> {
    /// The user name and password clients must log on with. Without it any
    /// credentials are accepted. `RdpServer::credentials_handle` changes
    /// them while the server runs.
    pub fn with_credentials(self, credentials: Credentials) -> Self {
        self.state
            .options
            .credentials
            .set_credentials(Some(credentials));
        self
    }

    /// An application-defined account source instead of one fixed account:
    /// it answers with the password or the NT hash it holds for a user.
    pub fn with_credential_validator(self, validator: impl CredentialValidator) -> Self {
        self.state
            .options
            .credentials
            .set_credential_validator(validator);
        self
    }

    /// Calls `observer` when a session becomes active and when a connection
    /// closes (with the reason, e.g. a failed logon).
    pub fn with_session_observer(
        mut self,
        observer: impl Fn(&SessionEvent) + Send + Sync + 'static,
    ) -> Self {
        self.state.options.observer = Some(std::sync::Arc::new(observer));
        self
    }

    /// How bitmaps are compressed (default: RDP 6.0 planar, lossless).
    pub fn with_bitmap_compression(mut self, compression: BitmapCompression) -> Self {
        self.state.options.bitmap_compression = compression;
        self
    }

    /// Serves the clipboard (MS-RDPECLIP): each connection whose client
    /// joins the "cliprdr" channel gets a backend from `factory`.
    pub fn with_cliprdr_factory(mut self, factory: impl CliprdrServerFactory) -> Self {
        self.state.options.cliprdr = Some(std::sync::Arc::new(factory));
        self
    }

    /// Plays audio (MS-RDPEA): each connection whose client joins the
    /// "rdpsnd" channel gets a handler from `factory`.
    pub fn with_sound_factory(mut self, factory: impl SoundServerFactory) -> Self {
        self.state.options.sound = Some(std::sync::Arc::new(factory));
        self
    }

    /// The surface codecs offered, in order of preference (default:
    /// RemoteFX); `BitmapCodecs::bitmaps_only()` keeps every client on
    /// bitmap updates.
    pub fn with_bitmap_codecs(mut self, codecs: BitmapCodecs) -> Self {
        self.state.options.bitmap_codecs = codecs;
        self
    }

    /// Records every session into `dir` (one `.rdprec` file per connection)
    /// for `rdpserve_core::replay`. Off by default; recordings hold
    /// everything above TLS except passwords (see `rdpserve_core::replay`).
    pub fn with_recording_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.state.options.record_dir = Some(dir.into());
        self
    }

    /// With NLA, also accept clients that only offer TLS (they log on with
    /// the password in their Client Info PDU).
    pub fn allow_tls_without_nla(mut self) -> Self {
        self.state.options.allow_tls_without_nla = true;
        self
    }

    /// Largest graphics update sent in one piece; see
    /// [`Config::max_request_size`](rdpserve_core::Config::max_request_size).
    pub fn with_max_request_size(mut self, size: u32) -> Self {
        self.state.options.max_request_size = size;
        self
    }

    /// Time a client has to complete the connection sequence (default 30 s).
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.state.options.handshake_timeout = timeout;
        self
    }

    /// Active sessions served at once (default 64); see
    /// [`ConnectionLimits::max_sessions`]. Connections still in their
    /// handshake have their own cap.
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.state.options.limits.max_sessions = max.max(1);
        self
    }

    /// All connection limits at once: handshake and session caps, the cap
    /// per source address, the write timeout and the failed-logon throttle
    /// (see [`ConnectionLimits`] for the defaults).
    pub fn with_connection_limits(mut self, limits: ConnectionLimits) -> Self {
        self.state.options.limits = ConnectionLimits {
            max_handshakes: limits.max_handshakes.max(1),
            max_handshakes_per_address: limits.max_handshakes_per_address.max(1),
            max_sessions: limits.max_sessions.max(1),
            ..limits
        };
        self
    }

    /// Time a client has to send its first bytes (the X.224 Connection
    /// Request; default 5 s), before the whole handshake's deadline.
    pub fn with_first_bytes_timeout(mut self, timeout: Duration) -> Self {
        self.state.options.first_bytes_timeout = timeout;
        self
    }

    /// Closes an active session after `timeout` without input from the
    /// client (default: never).
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.state.options.idle_timeout = Some(timeout);
        self
    }

    /// Finishes the server. With `with_self_signed_tls` this generates the certificate.
    pub fn build(self) -> Result<RdpServer<R, I, D>, IdentityError> {
        let Ready {
            addr,
            security,
            input,
            display,
            options,
        } = self.state;
        let identity = |identity: Option<TlsIdentity>| -> Result<_, IdentityError> {
            match identity {
                Some(identity) => identity.core_identity(),
                None => TlsIdentity::self_signed(&["localhost", "127.0.0.1"])?.core_identity(),
            }
        };
        let security = match security {
            SecurityChoice::Tls(chosen) => SecurityConfig::tls(identity(chosen)?),
            SecurityChoice::Hybrid(chosen) => {
                if !options.credentials.is_set() {
                    return Err(IdentityError::NlaWithoutCredentials);
                }
                let mut security = SecurityConfig::nla(identity(chosen)?);
                security.allow_tls_without_nla = options.allow_tls_without_nla;
                security
            }
            SecurityChoice::None => SecurityConfig::plain_rdp(),
        };
        Ok(RdpServer::new(addr, security, input, display, options))
    }
}
