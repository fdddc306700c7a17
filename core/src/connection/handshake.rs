//! The server side of the MS-RDPBCGR connection sequence (section 1.3.1.1),
//! from the X.224 Connection Request to the end of connection finalization.
//!
//! Each client PDU moves [`Step`] forward by exactly one transition; anything
//! that does not belong to the current step is a protocol error.

use std::collections::VecDeque;
use std::time::{Instant, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tracing::{debug, trace, warn};

use crate::api::config::{Config, DesktopSize};
use crate::api::error::{CommandError, ConfigurationError, Error, Unsupported};
use crate::api::event::{ClusterInfo, ConnectionRouting, Graphics, SelectedSecurity, SessionInfo};
use crate::api::routing::Redirection;
use crate::connection::capabilities::{ClientCapabilities, ServerCapabilities};
use crate::connection::client_info::{ClientInfoPdu, InfoFlags};
use crate::connection::data_pdus::ClientDataPdu;
use crate::connection::finalization::{Finalization, Progress};
use crate::connection::licensing;
use crate::connection::redirection;
use crate::connection::share::{self, ClientShareControlPdu};
use crate::security::credssp::{self, CredSspError, CredSspServer, PasswordCredentials};
use crate::security::password::Password;
use crate::transport::Transport;
use crate::transport::io_channel::{self, ChannelIds};
use crate::wire::gcc::{self, ClientGccData};
use crate::wire::mcs::{ConnectInitial, ConnectResponse, DomainPdu};
use crate::wire::utf16;
use crate::wire::x224;
use crate::wire::x224::{
    ConnectionConfirm, ConnectionRequest, FailureCode, SecurityProtocol, ServerNegotiationFlags,
};

/// Where in the connection sequence we are; named after what we wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    ConnectionRequest,
    /// NLA: CredSSP TSRequests over TLS.
    CredSsp,
    ConnectInitial,
    ErectDomain,
    AttachUser,
    ChannelJoins,
    /// Logged on; the application decides where the connection goes
    /// (`Config::route_after_logon`).
    Routing,
    ConfirmActive,
    Finalization,
}

#[derive(Debug)]
pub(crate) enum HandshakeOutcome {
    Continue,
    /// Finalization is complete: the session may start.
    Finished,
    /// Negotiation failed and the client was told so; close the connection.
    Rejected(Error),
    /// The client sent an MCS Disconnect Provider Ultimatum.
    ClientDisconnected,
    /// The user logged on; the application decides where the connection
    /// goes.
    Route(ConnectionRouting),
    /// A Server Redirection the application asked for earlier went out:
    /// the client reconnects elsewhere.
    Redirected,
}

#[derive(Debug)]
pub(crate) struct Handshake {
    step: Step,
    /// Identifies this capability exchange; derived from the seed.
    share_id: u32,
    requested: SecurityProtocol,
    selected: SecurityProtocol,
    channels: ChannelIds,
    /// Channel ids the client joined so far.
    joined: Vec<u16>,
    skip_channel_join: bool,
    client: Option<ClientGccData>,
    client_info: Option<ClientInfoPdu>,
    client_capabilities: Option<ClientCapabilities>,
    color_depth: u16,
    desktop_size: DesktopSize,
    finalization: Finalization,
    seed: [u8; 32],
    started: Instant,
    credssp: Option<CredSspServer>,
    /// The identity NLA proved, with the delegated password.
    nla_credentials: Option<PasswordCredentials>,
    tls: TlsSource,
    /// Verdicts decided in advance for the next Client Info password checks.
    decided_verdicts: VecDeque<bool>,
    /// The last Client Info password check, until `take_password_check`.
    password_check: Option<PasswordCheck>,
    /// The client's load-balancing data, from the Connection Request on.
    routing: Option<ConnectionRouting>,
    /// A redirection asked for before logon (its PDU), sent once the user
    /// logs on.
    pending_redirect: Option<Vec<u8>>,
}

/// Where the bytes after the X.224 Connection Confirm come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TlsSource {
    /// TLS runs here, from the configured identity.
    Identity,
    /// The bytes arrive already decrypted (a recording taken above TLS);
    /// CredSSP binds to the public key the original session served.
    Decrypted { public_key: Vec<u8> },
}

/// A Client Info password check: what was checked and its verdict. An
/// observer above (the recorder) uses it to keep the secret out of its
/// copy of the frame and to keep the verdict instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PasswordCheck {
    /// The password as its bytes stood in the Client Info PDU.
    pub secret: Vec<u8>,
    /// `None` when there was nothing to decide (NLA already proved the user).
    pub accepted: Option<bool>,
}

/// HYBRID_EX Early User Authorization Result (MS-RDPBCGR 2.2.10.2).
const AUTHZ_SUCCESS: [u8; 4] = [0, 0, 0, 0];
const AUTHZ_ACCESS_DENIED: [u8; 4] = [5, 0, 0, 0];
/// Seconds from 1601 (FILETIME's epoch) to 1970.
const FILETIME_UNIX_OFFSET: u64 = 11_644_473_600;

/// Server core data version for RDP 5.0 and later (MS-RDPBCGR 2.2.1.4.2).
const SERVER_CORE_VERSION: u32 = 0x0008_0004;
/// RNS_UD_SC_SKIP_CHANNELJOIN_SUPPORTED in the server core data.
const SERVER_SKIP_CHANNELJOIN_SUPPORTED: u32 = 0x8;
/// RNS_UD_CS_SUPPORT_SKIP_CHANNELJOIN in the client core data.
const CLIENT_SUPPORT_SKIP_CHANNELJOIN: u16 = 0x0800;
/// RNS_UD_CS_WANT_32BPP_SESSION in the client's early capability flags.
const WANT_32BPP_SESSION: u16 = 0x0002;
/// RNS_UD_32BPP_SUPPORT in supportedColorDepths.
const SUPPORTS_32BPP: u16 = 0x0008;
/// MCS Result rt-successful and rt-no-such-channel (T.125).
const MCS_RESULT_SUCCESSFUL: u8 = 0;

impl Handshake {
    pub fn new(config: &Config, seed: [u8; 32], started: Instant, tls: TlsSource) -> Self {
        // Share ids only need to differ between activations of one connection;
        // take them from the seed so runs are reproducible.
        let share_id = 0x0001_0000 | u32::from(u16::from_le_bytes([seed[0], seed[1]]));
        Self {
            step: Step::ConnectionRequest,
            share_id,
            requested: SecurityProtocol::empty(),
            selected: SecurityProtocol::empty(),
            channels: ChannelIds::default(),
            joined: Vec::new(),
            skip_channel_join: false,
            client: None,
            client_info: None,
            client_capabilities: None,
            color_depth: 32,
            desktop_size: config.desktop_size.clamped(),
            finalization: Finalization::default(),
            seed,
            started,
            credssp: None,
            nla_credentials: None,
            tls,
            decided_verdicts: VecDeque::new(),
            password_check: None,
            routing: None,
            pending_redirect: None,
        }
    }

    /// The client's load-balancing data, once its Connection Request
    /// arrived (the cluster block once its MCS Connect Initial did).
    pub fn routing(&self) -> Option<&ConnectionRouting> {
        self.routing.as_ref()
    }

    /// After `HandshakeOutcome::Route`: goes on with the connection here.
    pub fn accept(&mut self, config: &Config, transport: &mut Transport) -> Result<(), Error> {
        self.send_demand_active(config, transport)?;
        self.step = Step::ConfirmActive;
        Ok(())
    }

    /// Whether the connection waits for the application's decision.
    pub fn awaits_route(&self) -> bool {
        self.step == Step::Routing
    }

    /// Sends a Server Redirection now if the user has logged on (`Ok(true)`:
    /// the connection is over), or keeps it until they do (`Ok(false)`).
    pub fn redirect(
        &mut self,
        redirection: &Redirection,
        transport: &mut Transport,
    ) -> Result<bool, CommandError> {
        let routing = self
            .routing
            .as_ref()
            .ok_or(CommandError::RedirectionNotSupported)?;
        let pdu = redirection::checked_pdu(routing, redirection)?;
        match self.step {
            Step::Routing | Step::ConfirmActive | Step::Finalization => {
                io_channel::send_data(transport, &self.channels, &pdu)?;
                Ok(true)
            }
            _ => {
                self.pending_redirect = Some(pdu);
                Ok(false)
            }
        }
    }

    fn selected_security(&self) -> SelectedSecurity {
        if self.selected.contains(SecurityProtocol::HYBRID_EX) {
            SelectedSecurity::HybridEx
        } else if self.selected.contains(SecurityProtocol::HYBRID) {
            SelectedSecurity::Hybrid
        } else if self.selected.contains(SecurityProtocol::SSL) {
            SelectedSecurity::Tls
        } else {
            SelectedSecurity::PlainRdp
        }
    }

    /// Decides the verdict of the next Client Info password check in
    /// advance, instead of asking the validator (the password is not there
    /// when a recording is replayed).
    pub fn decide_next_password_check(&mut self, accepted: bool) {
        self.decided_verdicts.push_back(accepted);
    }

    /// The last Client Info password check, once.
    pub fn take_password_check(&mut self) -> Option<PasswordCheck> {
        self.password_check.take()
    }

    /// Whether the X.224 Connection Request arrived.
    pub fn started(&self) -> bool {
        self.step != Step::ConnectionRequest
    }

    /// Whether the next frame is a CredSSP TSRequest rather than TPKT.
    pub fn expects_ts_request(&self) -> bool {
        self.step == Step::CredSsp
    }

    /// 8 bytes for `label`, derived from the seed: the engine's only randomness.
    fn derive_random(&self, label: &[u8]) -> [u8; 8] {
        let digest = Sha256::new()
            .chain_update(self.seed)
            .chain_update(label)
            .finalize();
        let mut out = [0u8; 8];
        out.copy_from_slice(&digest[..8]);
        out
    }

    /// FILETIME (100 ns since 1601) of `now`, from the configured wall clock.
    fn filetime(&self, config: &Config, now: Instant) -> u64 {
        let since_epoch = config
            .wall_clock
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            + now.saturating_duration_since(self.started);
        (since_epoch.as_secs() + FILETIME_UNIX_OFFSET) * 10_000_000
            + u64::from(since_epoch.subsec_nanos() / 100)
    }

    pub fn share_id(&self) -> u32 {
        self.share_id
    }

    pub fn channels(&self) -> &ChannelIds {
        &self.channels
    }

    /// Each static channel's id and name, as the client listed them.
    pub fn static_channels(&self) -> Vec<(u16, String)> {
        let names: Vec<String> = self
            .client
            .as_ref()
            .and_then(|client| client.network.as_ref())
            .map(|network| {
                network
                    .channels
                    .iter()
                    .map(|channel| channel.name.clone())
                    .collect()
            })
            .unwrap_or_default();
        self.channels.statics.iter().copied().zip(names).collect()
    }

    pub fn client_capabilities(&self) -> Option<&ClientCapabilities> {
        self.client_capabilities.as_ref()
    }

    /// Whether the client understands Set Error Info PDUs.
    pub fn client_supports_error_info(&self) -> bool {
        self.client
            .as_ref()
            .and_then(|client| client.core.early_capability_flags)
            .is_some_and(|flags| flags & 0x0001 != 0)
    }

    /// Whether the client's core data sets SUPPORT_DYN_VC_GFX_PROTOCOL
    /// (0x0100): it can open the Graphics Pipeline's channel.
    pub fn client_supports_graphics_pipeline(&self) -> bool {
        self.client
            .as_ref()
            .and_then(|client| client.core.early_capability_flags)
            .is_some_and(|flags| flags & 0x0100 != 0)
    }

    /// What the application learns when the session starts.
    pub fn session_info(&self) -> SessionInfo {
        let (user_name, domain) = match (&self.nla_credentials, &self.client_info) {
            (Some(nla), _) => (nla.user.clone(), nla.domain.clone()),
            (None, Some(info)) => (info.user_name.clone(), info.domain.clone()),
            (None, None) => Default::default(),
        };
        let delegated_password: Option<Password> = self
            .nla_credentials
            .as_ref()
            .map(|nla| nla.password.clone());
        let (client_name, requested_size) = self
            .client
            .as_ref()
            .map(|client| {
                let size = DesktopSize {
                    width: client.core.desktop_width,
                    height: client.core.desktop_height,
                };
                (client.core.client_name.clone(), size.clamped())
            })
            .unwrap_or((String::new(), self.desktop_size));
        SessionInfo {
            user_name,
            domain,
            client_name,
            requested_size,
            desktop_size: self.desktop_size,
            color_depth: self.color_depth,
            security: self.selected_security(),
            delegated_password,
            // The session fills these in once it has weighed the codecs.
            graphics: Graphics::Bitmaps,
            surface_codecs: Vec::new(),
        }
    }

    /// Tells the client we are leaving, if the protocol has reached a point
    /// where it has a way to say so (after MCS connect).
    pub fn send_goodbye(&mut self, transport: &mut Transport) {
        if matches!(
            self.step,
            Step::ConnectionRequest | Step::CredSsp | Step::ConnectInitial
        ) {
            return;
        }
        let _ = io_channel::send_disconnect(transport);
    }

    pub fn process_frame(
        &mut self,
        frame: &[u8],
        now: Instant,
        config: &Config,
        transport: &mut Transport,
    ) -> Result<HandshakeOutcome, Error> {
        trace!(step = ?self.step, len = frame.len(), "Handshake frame");
        if self.step == Step::ConnectionRequest {
            return self.on_connection_request(frame, config, transport);
        }
        if self.step == Step::CredSsp {
            return self.on_ts_request(frame, now, config, transport);
        }
        let payload = x224::decode_data(frame)?;
        if self.step == Step::ConnectInitial {
            self.on_connect_initial(payload, transport)?;
            return Ok(HandshakeOutcome::Continue);
        }
        match DomainPdu::decode(payload)? {
            DomainPdu::DisconnectProviderUltimatum { .. } => {
                Ok(HandshakeOutcome::ClientDisconnected)
            }
            DomainPdu::ErectDomainRequest { .. } if self.step == Step::ErectDomain => {
                self.step = Step::AttachUser;
                Ok(HandshakeOutcome::Continue)
            }
            DomainPdu::AttachUserRequest if self.step == Step::AttachUser => {
                let mut pdu = Vec::new();
                DomainPdu::AttachUserConfirm {
                    result: MCS_RESULT_SUCCESSFUL,
                    initiator: Some(self.channels.user),
                }
                .encode(&mut pdu);
                io_channel::send_mcs(transport, &pdu)?;
                self.step = Step::ChannelJoins;
                Ok(HandshakeOutcome::Continue)
            }
            DomainPdu::ChannelJoinRequest {
                initiator,
                channel_id,
            } if self.step == Step::ChannelJoins => {
                self.on_channel_join(initiator, channel_id, transport)?;
                Ok(HandshakeOutcome::Continue)
            }
            DomainPdu::SendDataRequest {
                initiator,
                channel_id,
                data,
            } => {
                if initiator != self.channels.user {
                    return Err(Error::UnexpectedPdu("send data from an unknown user"));
                }
                if channel_id != self.channels.io {
                    // Static channel traffic before activation: nothing reads it yet.
                    trace!(channel_id, "Ignoring channel data during handshake");
                    return Ok(HandshakeOutcome::Continue);
                }
                self.on_io_data(data, config, transport)
            }
            _ => Err(Error::UnexpectedPdu("mcs pdu out of order")),
        }
    }

    fn on_connection_request(
        &mut self,
        frame: &[u8],
        config: &Config,
        transport: &mut Transport,
    ) -> Result<HandshakeOutcome, Error> {
        let request = ConnectionRequest::decode(frame)?;
        debug!(
            cookie = ?request.cookie,
            routing_token = ?request.routing_token.as_deref().map(String::from_utf8_lossy),
            negotiation = ?request.negotiation,
            "X.224 Connection Request"
        );
        self.routing = Some(ConnectionRouting::new(
            request.cookie.clone(),
            request.routing_token.clone(),
        ));
        let mut confirm = Vec::new();
        let Some(negotiation) = &request.negotiation else {
            // A client from before RDP 5.2 negotiation: only plain RDP is possible.
            if !config.security.allow_plain_rdp {
                ConnectionConfirm::Failure(FailureCode::SslRequiredByServer).encode(&mut confirm);
                transport.send(&confirm)?;
                return Ok(HandshakeOutcome::Rejected(Error::Unsupported(
                    Unsupported::SecurityProtocol { requested: 0 },
                )));
            }
            ConnectionConfirm::Legacy.encode(&mut confirm);
            transport.send(&confirm)?;
            self.step = Step::ConnectInitial;
            return Ok(HandshakeOutcome::Continue);
        };
        let requested = negotiation.requested_protocols;
        self.requested = requested;
        let selection = select_protocol(requested, config, &self.tls);
        let selected = match selection {
            Ok(selected) => selected,
            Err(code) => {
                debug!(?requested, ?code, "No common security protocol");
                ConnectionConfirm::Failure(code).encode(&mut confirm);
                transport.send(&confirm)?;
                return Ok(HandshakeOutcome::Rejected(Error::Unsupported(
                    Unsupported::SecurityProtocol {
                        requested: requested.bits(),
                    },
                )));
            }
        };
        self.selected = selected;
        ConnectionConfirm::Response {
            flags: ServerNegotiationFlags::EXTENDED_CLIENT_DATA_SUPPORTED,
            selected,
        }
        .encode(&mut confirm);
        transport.send(&confirm)?;
        if selected.is_empty() {
            self.step = Step::ConnectInitial;
            return Ok(HandshakeOutcome::Continue);
        }
        match (&self.tls, &config.security.tls) {
            (TlsSource::Decrypted { .. }, _) => {}
            (TlsSource::Identity, Some(tls)) => transport.start_tls(tls)?,
            (TlsSource::Identity, None) => {
                return Err(Error::Configuration(ConfigurationError::NoTlsIdentity));
            }
        }
        if selected.intersects(SecurityProtocol::HYBRID | SecurityProtocol::HYBRID_EX) {
            // CredSSP starts on the first TSRequest, when TLS has served a
            // certificate to bind to.
            self.step = Step::CredSsp;
        } else {
            self.step = Step::ConnectInitial;
        }
        Ok(HandshakeOutcome::Continue)
    }

    fn on_ts_request(
        &mut self,
        frame: &[u8],
        now: Instant,
        config: &Config,
        transport: &mut Transport,
    ) -> Result<HandshakeOutcome, Error> {
        let validator = config.credentials.as_ref().ok_or(Error::Configuration(
            ConfigurationError::NoCredentialValidator,
        ))?;
        let cookies = config.redirection_cookies.as_ref();
        let secrets = redirection::NlaSecrets {
            accounts: validator,
            cookies,
        };
        let context = credssp::Context {
            hashes: &secrets,
            server_challenge: self.derive_random(b"ntlm server challenge"),
            timestamp: self.filetime(config, now),
            require_mic: config.security.require_ntlm_mic,
        };
        let credssp = match &mut self.credssp {
            Some(credssp) => credssp,
            // The first TSRequest: bind to the certificate TLS served.
            slot @ None => {
                let public_key = match &self.tls {
                    TlsSource::Decrypted { public_key } => public_key.clone(),
                    // INVARIANT: rustls hands out plaintext only once its
                    // handshake is complete, and this frame is plaintext, so
                    // a certificate was served (a resolver that refuses one
                    // fails the handshake before any plaintext).
                    TlsSource::Identity => transport.served_public_key().ok_or(
                        Error::UnexpectedPdu("tsrequest before the tls handshake completed"),
                    )?,
                };
                slot.insert(CredSspServer::new(
                    public_key,
                    config.security.minimum_credssp_version,
                ))
            }
        };
        match credssp.handle(frame, &context) {
            Ok(credssp::Step::Reply(reply)) => {
                transport.send(&reply)?;
                Ok(HandshakeOutcome::Continue)
            }
            Ok(credssp::Step::Done(credentials)) => {
                debug!(user = %credentials.user, domain = %credentials.domain, "NLA succeeded");
                // NTLM may have proved a redirection cookie rather than the
                // account: then the delegated password is that cookie,
                // redeemed once here.
                let with_cookie = cookies.is_some()
                    && !validator.0.check_password(
                        &credentials.user,
                        &credentials.domain,
                        credentials.password.expose(),
                    );
                if with_cookie {
                    let redeemed = cookies.is_some_and(|cookies| {
                        cookies.0.redeem(
                            &credentials.user,
                            &credentials.domain,
                            credentials.password.expose(),
                        )
                    });
                    if !redeemed {
                        warn!(user = %credentials.user, domain = %credentials.domain, reason = "redirection cookie invalid, used or expired", "Logon failed");
                        if self.selected.contains(SecurityProtocol::HYBRID_EX) {
                            transport.send(&AUTHZ_ACCESS_DENIED)?;
                        }
                        return Ok(HandshakeOutcome::Rejected(Error::AuthenticationFailed));
                    }
                    debug!(user = %credentials.user, "Logged on with a redirection cookie");
                }
                if let Some(routing) = &mut self.routing {
                    routing.logged_on_with_cookie = with_cookie;
                }
                if self.selected.contains(SecurityProtocol::HYBRID_EX) {
                    transport.send(&AUTHZ_SUCCESS)?;
                }
                self.nla_credentials = Some(credentials);
                self.credssp = None;
                self.step = Step::ConnectInitial;
                Ok(HandshakeOutcome::Continue)
            }
            Err(error) if error.is_authorization_failure() => {
                warn!(reason = %error, "NLA logon refused after authentication");
                if self.selected.contains(SecurityProtocol::HYBRID_EX) {
                    transport.send(&AUTHZ_ACCESS_DENIED)?;
                }
                Ok(HandshakeOutcome::Rejected(Error::AuthenticationFailed))
            }
            Err(error) if error.is_authentication_failure() => {
                warn!(reason = %error, "NLA logon failed");
                transport.send(&credssp.failure_reply())?;
                Ok(HandshakeOutcome::Rejected(Error::AuthenticationFailed))
            }
            Err(error) => Err(match error {
                CredSspError::Decode(decode) => Error::Protocol(decode),
                CredSspError::VersionTooOld(_) => {
                    Error::Unsupported(Unsupported::Other("credssp version below the minimum"))
                }
                other => Error::Nla(other),
            }),
        }
    }

    fn on_connect_initial(
        &mut self,
        payload: &[u8],
        transport: &mut Transport,
    ) -> Result<(), Error> {
        let initial = ConnectInitial::decode(payload)?;
        let client = initial.gcc;
        // The client echoes the protocol we selected; anything else means a
        // man in the middle rewrote our Connection Confirm (MS-RDPBCGR 5.4.2.1).
        let reported = client.core.server_selected_protocol.unwrap_or(0);
        if reported != self.selected.bits() {
            return Err(Error::Unsupported(Unsupported::DowngradeDetected {
                selected: self.selected.bits(),
                reported,
            }));
        }
        self.color_depth = choose_color_depth(&client.core)?;
        let static_channels = client
            .network
            .as_ref()
            .map(|network| network.channels.len())
            .unwrap_or(0);
        self.channels = ChannelIds::allocate(static_channels);
        let early_flags = client.core.early_capability_flags.unwrap_or(0);
        self.skip_channel_join = early_flags & CLIENT_SUPPORT_SKIP_CHANNELJOIN != 0;
        debug!(
            client = %client.core.client_name,
            width = client.core.desktop_width,
            height = client.core.desktop_height,
            static_channels,
            "MCS Connect Initial"
        );
        let response = ConnectResponse {
            result: 0,
            called_connect_id: 0,
            domain_parameters: initial.target_parameters.clone(),
            gcc: gcc::ServerGccData {
                core: gcc::ServerCoreData {
                    version: SERVER_CORE_VERSION,
                    client_requested_protocols: Some(self.requested.bits()),
                    early_capability_flags: Some(SERVER_SKIP_CHANNELJOIN_SUPPORTED),
                },
                network: gcc::ServerNetworkData {
                    io_channel: self.channels.io,
                    channel_ids: self.channels.statics.clone(),
                },
                security: gcc::ServerSecurityData::none(),
                message_channel: None,
                multitransport: None,
            },
        };
        let mut pdu = Vec::new();
        response.encode(&mut pdu);
        io_channel::send_mcs(transport, &pdu)?;
        let security = self.selected_security();
        if let Some(routing) = &mut self.routing {
            routing.cluster = client.cluster.map(|cluster| {
                ClusterInfo::from_wire(cluster.flags, cluster.redirected_session_id)
            });
            routing.security = security;
            debug!(cluster = ?routing.cluster, "Client cluster data");
        }
        self.client = Some(client);
        self.step = Step::ErectDomain;
        Ok(())
    }

    fn on_channel_join(
        &mut self,
        initiator: u16,
        channel_id: u16,
        transport: &mut Transport,
    ) -> Result<(), Error> {
        if initiator != self.channels.user {
            return Err(Error::UnexpectedPdu("channel join from an unknown user"));
        }
        // Each channel the connection has (the user channel, the I/O
        // channel and the static channels the client declared) is joined
        // once. Refusing anything else protects the server before logon:
        // a client repeating joins it never reads the answers to makes the
        // server write without end.
        if !self.channels.contains(channel_id) {
            return Err(Error::UnexpectedPdu(
                "channel join for a channel the client did not declare",
            ));
        }
        if self.joined.contains(&channel_id) {
            return Err(Error::UnexpectedPdu("channel joined twice"));
        }
        self.joined.push(channel_id);
        let mut pdu = Vec::new();
        DomainPdu::ChannelJoinConfirm {
            result: MCS_RESULT_SUCCESSFUL,
            initiator,
            requested: channel_id,
            channel_id: Some(channel_id),
        }
        .encode(&mut pdu);
        io_channel::send_mcs(transport, &pdu)
    }

    fn on_io_data(
        &mut self,
        data: &[u8],
        config: &Config,
        transport: &mut Transport,
    ) -> Result<HandshakeOutcome, Error> {
        match self.step {
            Step::ChannelJoins => {
                let all_joined = self.channels.all().all(|id| self.joined.contains(&id));
                if !all_joined && !self.skip_channel_join {
                    return Err(Error::UnexpectedPdu("client info before channel joins"));
                }
                self.on_client_info(data, config, transport)
            }
            Step::ConfirmActive => {
                let (_, pdu) = share::decode_client_share_control(data)?;
                match pdu {
                    ClientShareControlPdu::ConfirmActive(confirm) => {
                        if confirm.share_id != self.share_id {
                            return Err(Error::UnexpectedPdu("confirm active for another share"));
                        }
                        debug!(capabilities = ?confirm.capabilities, "Confirm Active");
                        self.client_capabilities = Some(confirm.capabilities);
                        self.finalization.confirm_active(
                            self.share_id,
                            &self.channels,
                            transport,
                        )?;
                        self.step = Step::Finalization;
                        Ok(HandshakeOutcome::Continue)
                    }
                    ClientShareControlPdu::Flow => Ok(HandshakeOutcome::Continue),
                    _ => Err(Error::UnexpectedPdu("expected confirm active")),
                }
            }
            Step::Finalization => {
                let (_, pdu) = share::decode_client_share_control(data)?;
                match pdu {
                    ClientShareControlPdu::Data { header, body } => {
                        let pdu = ClientDataPdu::decode(header.pdu_type2, body)?;
                        self.on_finalization_pdu(pdu, transport)
                    }
                    ClientShareControlPdu::Flow => Ok(HandshakeOutcome::Continue),
                    _ => Err(Error::UnexpectedPdu("expected a finalization pdu")),
                }
            }
            _ => Err(Error::UnexpectedPdu("data on the i/o channel out of order")),
        }
    }

    fn on_client_info(
        &mut self,
        data: &[u8],
        config: &Config,
        transport: &mut Transport,
    ) -> Result<HandshakeOutcome, Error> {
        let info = ClientInfoPdu::decode(data)?;
        debug!(user = %info.user_name, domain = %info.domain, "Client Info");
        let secret: Vec<u8> = if info.flags.contains(InfoFlags::UNICODE) {
            utf16::encode(info.password.expose())
        } else {
            info.password.expose().chars().map(|c| c as u8).collect()
        };
        // Under NLA the user already proved who they are; otherwise the
        // Client Info password is the credential.
        let mut with_cookie = false;
        let verdict = match self.decided_verdicts.pop_front() {
            Some(decided) => Some(decided),
            None => match (&self.nla_credentials, &config.credentials) {
                (None, Some(validator)) => Some(
                    validator.0.check_password(
                        &info.user_name,
                        &info.domain,
                        info.password.expose(),
                    ) || {
                        // A redirected client sends its one-time cookie as
                        // the password (with the NUL it came with).
                        let cookie = info.password.expose().trim_end_matches('\0');
                        with_cookie = config.redirection_cookies.as_ref().is_some_and(|cookies| {
                            cookies.0.redeem(&info.user_name, &info.domain, cookie)
                        });
                        with_cookie
                    },
                ),
                _ => None,
            },
        };
        self.password_check = Some(PasswordCheck {
            secret,
            accepted: verdict,
        });
        if verdict == Some(false) {
            // Never the password; the adapter's span adds the address.
            warn!(user = %info.user_name, domain = %info.domain, reason = "wrong password or unknown user", "Logon failed");
            return Err(Error::AuthenticationFailed);
        }
        if with_cookie {
            debug!(user = %info.user_name, "Logged on with a redirection cookie");
        }
        let mut body = Vec::new();
        licensing::encode_valid_client(&mut body);
        io_channel::send_data(transport, &self.channels, &body)?;
        if let Some(routing) = &mut self.routing {
            if self.nla_credentials.is_none() {
                routing.logged_on_with_cookie = with_cookie;
            }
            let (user_name, domain) = match &self.nla_credentials {
                Some(nla) => (nla.user.clone(), nla.domain.clone()),
                None => (info.user_name.clone(), info.domain.clone()),
            };
            routing.user_name = user_name;
            routing.domain = domain;
        }
        self.client_info = Some(info);
        // Where the Demand Active would go, a redirection asked for
        // earlier goes instead (as Windows sends it, after logon).
        if let Some(pdu) = self.pending_redirect.take() {
            io_channel::send_data(transport, &self.channels, &pdu)?;
            return Ok(HandshakeOutcome::Redirected);
        }
        if config.route_after_logon {
            if let Some(routing) = &self.routing {
                self.step = Step::Routing;
                return Ok(HandshakeOutcome::Route(routing.clone()));
            }
        }
        self.send_demand_active(config, transport)?;
        self.step = Step::ConfirmActive;
        Ok(HandshakeOutcome::Continue)
    }

    fn send_demand_active(&self, config: &Config, transport: &mut Transport) -> Result<(), Error> {
        let capabilities = ServerCapabilities {
            desktop_width: self.desktop_size.width,
            desktop_height: self.desktop_size.height,
            color_depth: self.color_depth,
            max_request_size: config.max_request_size,
            io_channel: self.channels.io,
            surface_codecs: config.bitmap_codecs.deduplicated(),
            max_unacknowledged_frames: config.max_unacknowledged_frames,
        };
        let mut body = Vec::new();
        share::encode_demand_active(
            &mut body,
            io_channel::SERVER_CHANNEL_ID,
            self.share_id,
            &capabilities,
        );
        io_channel::send_data(transport, &self.channels, &body)
    }

    fn on_finalization_pdu(
        &mut self,
        pdu: ClientDataPdu,
        transport: &mut Transport,
    ) -> Result<HandshakeOutcome, Error> {
        match self
            .finalization
            .handle(pdu, self.share_id, &self.channels, transport)?
        {
            Progress::Continue => Ok(HandshakeOutcome::Continue),
            Progress::Finished => Ok(HandshakeOutcome::Finished),
        }
    }
}

/// Picks the security protocol per MS-RDPBCGR 3.3.5.3.1, or the failure code
/// to answer with.
fn select_protocol(
    requested: SecurityProtocol,
    config: &Config,
    tls_source: &TlsSource,
) -> Result<SecurityProtocol, FailureCode> {
    let security = &config.security;
    let tls = security.tls.is_some() || matches!(tls_source, TlsSource::Decrypted { .. });
    let nla = tls && security.nla && config.credentials.is_some();
    if nla && requested.contains(SecurityProtocol::HYBRID_EX) {
        return Ok(SecurityProtocol::HYBRID_EX);
    }
    if nla && requested.contains(SecurityProtocol::HYBRID) {
        return Ok(SecurityProtocol::HYBRID);
    }
    let tls_allowed = tls && (!nla || security.allow_tls_without_nla);
    if tls_allowed && requested.contains(SecurityProtocol::SSL) {
        return Ok(SecurityProtocol::SSL);
    }
    if requested.is_empty() {
        return if security.allow_plain_rdp {
            Ok(SecurityProtocol::empty())
        } else if nla && !security.allow_tls_without_nla {
            Err(FailureCode::HybridRequiredByServer)
        } else {
            Err(FailureCode::SslRequiredByServer)
        };
    }
    if !tls {
        // The client wants enhanced security and we only speak plain RDP;
        // the client may retry with PROTOCOL_RDP.
        return Err(FailureCode::SslNotAllowedByServer);
    }
    if nla {
        // TLS-only client and the server insists on NLA.
        return Err(FailureCode::HybridRequiredByServer);
    }
    // Only CredSSP was requested and NLA is not offered.
    Err(FailureCode::SslRequiredByServer)
}

/// The client's colour depth: 32 bpp when it asks for a 32-bpp session,
/// else its high colour depth (24, 16 or 15); 8 bpp palettes are not served.
fn choose_color_depth(core: &gcc::ClientCoreData) -> Result<u16, Error> {
    let supported = core.supported_color_depths.unwrap_or(0);
    let wants_32 = core.early_capability_flags.unwrap_or(0) & WANT_32BPP_SESSION != 0;
    if wants_32 && supported & SUPPORTS_32BPP != 0 {
        return Ok(32);
    }
    match core.high_color_depth {
        Some(depth @ (15 | 16 | 24)) => Ok(depth),
        _ if supported & SUPPORTS_32BPP != 0 => Ok(32),
        _ => Err(Error::Unsupported(Unsupported::ColorDepth)),
    }
}
