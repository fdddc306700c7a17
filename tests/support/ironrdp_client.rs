//! A second real RDP client for the tests, independent of FreeRDP: IronRDP's
//! published crates (`ironrdp-connector` for the connection sequence,
//! `sspi` inside it for CredSSP/NTLM, `ironrdp-session` for the active
//! session and its decoders, `ironrdp-blocking` for framing), driven over a
//! blocking `std::net` socket with rustls.
//!
//! It is the only client that decodes QOI and QOIZ. Besides the decoded
//! picture it reports what it saw on the wire ([`Seen`]: the codec id of
//! every surface command, the depth and compression of every bitmap), read
//! from the fast-path PDUs before IronRDP decodes them, so a test proves
//! the path a picture took instead of trusting that the offered codec was
//! used.
//!
//! Every wait has a deadline: the socket's timeouts are set from it before
//! each read and write ([`DeadlineStream`]), so a silent server fails a test
//! instead of hanging it.
//!
//! It can also join application channels ([`ClientChannels`]): static
//! ones through `ironrdp-svc` processors and dynamic ones through
//! `ironrdp-dvc`'s DRDYNVC client, each recording what IronRDP reassembled
//! ([`ChannelLog`]), and send on them.
//!
//! The tests crate compiles this file into the test binaries that use it
//! (`#[path]`), so IronRDP stays a dev-dependency of the tests crate alone.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ironrdp_blocking::Framed;
use ironrdp_connector::sspi::generator::NetworkRequest;
use ironrdp_connector::sspi::network_client::NetworkClient;
use ironrdp_connector::{
    BitmapConfig, ClientConnector, Config, ConnectionOutcome, ConnectorErrorKind, Credentials,
    DesktopSize, ServerName,
};
use ironrdp_core::{Encode, EncodeResult, WriteCursor, impl_as_any};
use ironrdp_dvc::{DrdynvcClient, DvcClientProcessor, DvcEncode, DvcMessage, DvcProcessor};
use ironrdp_graphics::image_processing::PixelFormat;
use ironrdp_pdu::fast_path::{
    FastPathHeader, FastPathUpdate, FastPathUpdatePdu, Fragmentation, UpdateCode,
};
use ironrdp_pdu::gcc::ChannelName;
use ironrdp_pdu::rdp::capability_sets::{self, CodecProperty, MajorPlatformType, RailSupportLevel};
use ironrdp_pdu::surface_commands::SurfaceCommand;
use ironrdp_pdu::{Action, PduResult, ReadCursor, decode_cursor, gcc};
use ironrdp_session::image::DecodedImage;
use ironrdp_session::{ActiveStage, ActiveStageBuilder, ActiveStageOutput};
use ironrdp_svc::{SvcClientProcessor, SvcMessage, SvcProcessor};
use rustls::pki_types::{CertificateDer, ServerName as TlsServerName, UnixTime};
use x509_cert::der::Decode as _;

use rdpserve_tests::image::RgbImage;

/// How the client secures the connection: what it offers in its X.224
/// Connection Request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientSecurity {
    /// PROTOCOL_SSL only.
    Tls,
    /// PROTOCOL_HYBRID and PROTOCOL_HYBRID_EX only: CredSSP over TLS.
    Nla,
}

/// A bitmap codec the client can offer in its Bitmap Codecs capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    RemoteFx,
    Qoi,
    Qoiz,
}

impl Codec {
    fn name(self) -> &'static str {
        match self {
            Self::RemoteFx => "remotefx",
            Self::Qoi => "qoi",
            Self::Qoiz => "qoiz",
        }
    }
}

/// What the client connects with.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub server: SocketAddr,
    pub security: ClientSecurity,
    pub user: String,
    pub password: String,
    pub domain: Option<String>,
    /// The codecs offered; none means plain bitmap updates (no Surface
    /// Commands capability either).
    pub codecs: Vec<Codec>,
    /// The desktop size asked for.
    pub width: u16,
    pub height: u16,
    /// Bound on the whole connection sequence, TCP connect to activation.
    pub connect_timeout: Duration,
    /// The server name sent in the TLS ClientHello (SNI); `None` sends
    /// none, as a client connecting to an address does.
    pub tls_server_name: Option<String>,
    /// Bind CredSSP to this public key instead of the served certificate's,
    /// as a client talking to a relay would: the server must refuse.
    pub bind_to_key: Option<Vec<u8>>,
}

/// Why the client failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server refused the credentials: the NTSTATUS its CredSSP
    /// errorCode carried (STATUS_LOGON_FAILURE is 0xC000006D).
    #[error("logon failed with status {status:#010x}: {report}")]
    LogonFailed { status: u32, report: String },
    /// Any other failure of the connection sequence, with IronRDP's report.
    #[error("connection failed: {0}")]
    Connect(String),
    /// The server redirected the client, which these tests never expect.
    #[error("server redirected the connection")]
    Redirected,
    #[error("tls: {0}")]
    Tls(String),
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The active session failed, e.g. a decoder refused an update.
    #[error("session: {0}")]
    Session(String),
    /// The server ended the session.
    #[error("server ended the session: {0}")]
    Terminated(String),
    /// The server started a deactivation-reactivation, which this client
    /// does not follow.
    #[error("server deactivated the session")]
    Deactivated,
    /// IronRDP discarded a malformed bitmap and would ask for a repaint: a
    /// server bug a repaint must not hide.
    #[error("ironrdp discarded a malformed bitmap update")]
    BitmapDiscarded,
    /// The wire observer could not read a fast-path update IronRDP was
    /// given.
    #[error("unreadable fast-path output: {0}")]
    Wire(String),
    /// The deadline passed before the picture was right.
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
    /// An application channel could not be used as asked.
    #[error("channel: {0}")]
    Channel(String),
}

/// What the server sent, read from the fast-path output PDUs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// The codec id of every Set/Stream Surface Bits command.
    pub surface_codec_ids: BTreeSet<u8>,
    /// (bits per pixel, compressed) of every bitmap update rectangle.
    pub bitmaps: BTreeSet<(u16, bool)>,
    /// Fast-path updates of any kind, counted.
    pub updates: usize,
}

/// Application channels the client joins.
#[derive(Debug, Clone, Default)]
pub struct ClientChannels {
    /// Static channels, declared in the client's network data (names of
    /// up to seven ASCII characters).
    pub statics: Vec<String>,
    /// Dynamic channels the client has a listener for (with these, the
    /// client also joins "drdynvc").
    pub dynamics: Vec<String>,
}

/// What IronRDP delivered on the application channels.
#[derive(Debug, Clone, Default)]
pub struct ChannelLog {
    /// (channel name, whole message), in arrival order.
    pub received: Vec<(String, Vec<u8>)>,
    /// Open dynamic channels by name, with the id the server gave each.
    pub open: BTreeMap<String, u32>,
    /// Dynamic channels that closed, in order.
    pub closed: Vec<String>,
}

type SharedLog = Arc<Mutex<ChannelLog>>;

fn lock(log: &SharedLog) -> std::sync::MutexGuard<'_, ChannelLog> {
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Records what IronRDP reassembled on one static channel.
#[derive(Debug)]
struct StaticRecorder {
    name: ChannelName,
    label: String,
    log: SharedLog,
}

impl_as_any!(StaticRecorder);

impl SvcProcessor for StaticRecorder {
    fn channel_name(&self) -> ChannelName {
        self.name.clone()
    }

    fn process(&mut self, payload: &[u8]) -> PduResult<Vec<SvcMessage>> {
        lock(&self.log)
            .received
            .push((self.label.clone(), payload.to_vec()));
        Ok(Vec::new())
    }
}

impl SvcClientProcessor for StaticRecorder {}

/// Records what IronRDP reassembled on one dynamic channel, and when it
/// opened and closed.
struct DynamicRecorder {
    name: String,
    log: SharedLog,
}

impl_as_any!(DynamicRecorder);

impl DvcProcessor for DynamicRecorder {
    fn channel_name(&self) -> &str {
        &self.name
    }

    fn start(&mut self, channel_id: u32) -> PduResult<Vec<DvcMessage>> {
        lock(&self.log).open.insert(self.name.clone(), channel_id);
        Ok(Vec::new())
    }

    fn process(&mut self, _channel_id: u32, payload: &[u8]) -> PduResult<Vec<DvcMessage>> {
        lock(&self.log)
            .received
            .push((self.name.clone(), payload.to_vec()));
        Ok(Vec::new())
    }

    fn close(&mut self, _channel_id: u32) {
        let mut log = lock(&self.log);
        log.open.remove(&self.name);
        log.closed.push(self.name.clone());
    }
}

impl DvcClientProcessor for DynamicRecorder {}

/// Application bytes as an IronRDP message (IronRDP frames and splits it).
struct RawMessage(Vec<u8>);

impl Encode for RawMessage {
    fn encode(&self, dst: &mut WriteCursor<'_>) -> EncodeResult<()> {
        ironrdp_core::ensure_size!(in: dst, size: self.0.len());
        dst.write_slice(&self.0);
        Ok(())
    }

    fn name(&self) -> &'static str {
        "RawMessage"
    }

    fn size(&self) -> usize {
        self.0.len()
    }
}

impl DvcEncode for RawMessage {}

/// A connected IronRDP session.
pub struct IronRdpClient {
    framed: Framed<TlsStream>,
    stage: ActiveStage,
    image: DecodedImage,
    observer: WireObserver,
    /// The codecs offered, each with the id the client gave it.
    offered: Vec<(Codec, u8)>,
    channels: SharedLog,
    /// The DER certificate the server presented in TLS.
    // Read by tests/byo_tls.rs only; tests/ironrdp.rs compiles this file too.
    #[allow(dead_code)]
    server_certificate: Vec<u8>,
}

impl IronRdpClient {
    /// Connects and runs the connection sequence to the active session.
    pub fn connect(options: &ClientOptions) -> Result<Self, ClientError> {
        Self::connect_with_channels(options, &ClientChannels::default())
    }

    /// `connect`, joining application channels.
    pub fn connect_with_channels(
        options: &ClientOptions,
        channels: &ClientChannels,
    ) -> Result<Self, ClientError> {
        let deadline = Instant::now() + options.connect_timeout;
        let tcp = TcpStream::connect_timeout(&options.server, options.connect_timeout)?;
        tcp.set_nodelay(true)?;
        let client_addr = tcp.local_addr()?;
        let mut framed = Framed::new(DeadlineStream { tcp, deadline });
        let (config, offered) = config(options)?;
        let mut connector = ClientConnector::new(config, client_addr);
        let log = SharedLog::default();
        for name in &channels.statics {
            let recorder = StaticRecorder {
                name: ChannelName::from_utf8(name)
                    .ok_or_else(|| ClientError::Channel(format!("bad static name {name}")))?,
                label: name.clone(),
                log: log.clone(),
            };
            connector
                .try_attach_dynamic_static_channel(recorder)
                .map_err(|error| ClientError::Channel(format!("{name}: {error:?}")))?;
        }
        if !channels.dynamics.is_empty() {
            let mut drdynvc = DrdynvcClient::new();
            for name in &channels.dynamics {
                drdynvc.attach_dynamic_channel(DynamicRecorder {
                    name: name.clone(),
                    log: log.clone(),
                });
            }
            connector.attach_static_channel(drdynvc);
        }

        let should_upgrade =
            ironrdp_blocking::connect_begin(&mut framed, &mut connector).map_err(connect_error)?;
        let stream = framed.into_inner_no_leftover();
        let (tls, server_certificate, served_key) =
            tls_upgrade(stream, options.tls_server_name.as_deref())?;
        let server_public_key = options.bind_to_key.clone().unwrap_or(served_key);
        let upgraded = ironrdp_blocking::mark_as_upgraded(should_upgrade, &mut connector);
        let mut framed = Framed::new(tls);
        let outcome = ironrdp_blocking::connect_finalize(
            upgraded,
            connector,
            &mut framed,
            &mut NoNetwork,
            ServerName::new(options.server.ip().to_string()),
            server_public_key,
            None,
        )
        .map_err(connect_error)?;
        let result = match outcome {
            ConnectionOutcome::Connected(result) => result,
            ConnectionOutcome::Redirected(_) => return Err(ClientError::Redirected),
        };

        let image = DecodedImage::new(
            PixelFormat::RgbA32,
            result.desktop_size.width,
            result.desktop_size.height,
        );
        let stage = ActiveStageBuilder {
            static_channels: result.static_channels,
            user_channel_id: result.user_channel_id,
            io_channel_id: result.io_channel_id,
            message_channel_id: result.message_channel_id,
            share_id: result.share_id,
            compression_type: result.compression_type,
            enable_server_pointer: false,
            pointer_software_rendering: false,
        }
        .build();
        Ok(Self {
            framed,
            stage,
            image,
            observer: WireObserver::default(),
            offered,
            channels: log,
            server_certificate,
        })
    }

    /// What arrived on the application channels so far.
    pub fn channel_log(&self) -> ChannelLog {
        lock(&self.channels).clone()
    }

    /// Receives and processes the server's PDUs until `done` accepts the
    /// channel log or `timeout` passes.
    pub fn wait_for_channels(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&ChannelLog) -> bool,
    ) -> Result<ChannelLog, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.channel_log();
            if done(&log) {
                return Ok(log);
            }
            if Instant::now() >= deadline {
                return Err(ClientError::TimedOut(timeout));
            }
            // Short reads, so `done` is asked again even while the server
            // is silent (it may wait on something outside the connection).
            self.set_deadline(deadline.min(Instant::now() + Duration::from_millis(50)));
            match self.framed.read_pdu() {
                Ok((action, frame)) => {
                    self.process(action, &frame)?;
                }
                Err(error) if is_timeout(&error) => continue,
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Sends one message on static channel `name`, chunked by IronRDP.
    pub fn send_static(&mut self, name: &str, message: Vec<u8>) -> Result<(), ClientError> {
        let channel = ChannelName::from_utf8(name)
            .ok_or_else(|| ClientError::Channel(format!("bad static name {name}")))?;
        let frame = self
            .stage
            .process_svc_messages_by_name(&channel, vec![SvcMessage::from(message)])
            .map_err(|error| ClientError::Session(format!("{}", error.report())))?;
        self.write(&frame)
    }

    /// Sends one message on open dynamic channel `name`, split into
    /// DataFirst and Data PDUs by IronRDP.
    pub fn send_dynamic(&mut self, name: &str, message: Vec<u8>) -> Result<(), ClientError> {
        let id = self.dynamic_id(name)?;
        let messages = ironrdp_dvc::encode_dvc_messages(
            id,
            vec![Box::new(RawMessage(message))],
            ironrdp_svc::ChannelFlags::empty(),
        )
        .map_err(|error| ClientError::Channel(format!("{error}")))?;
        let frame = self
            .stage
            .encode_dvc_messages(messages)
            .map_err(|error| ClientError::Session(format!("{}", error.report())))?;
        self.write(&frame)
    }

    /// Closes open dynamic channel `name` from the client's side.
    pub fn close_dynamic(&mut self, name: &str) -> Result<(), ClientError> {
        let id = self.dynamic_id(name)?;
        let close = self
            .stage
            .get_svc_processor_mut::<DrdynvcClient>()
            .and_then(|drdynvc| drdynvc.close_channel(id))
            .ok_or_else(|| ClientError::Channel(format!("{name} is not open")))?;
        let frame = self
            .stage
            .encode_dvc_messages(vec![close])
            .map_err(|error| ClientError::Session(format!("{}", error.report())))?;
        self.write(&frame)
    }

    fn dynamic_id(&self, name: &str) -> Result<u32, ClientError> {
        lock(&self.channels)
            .open
            .get(name)
            .copied()
            .ok_or_else(|| ClientError::Channel(format!("{name} is not open")))
    }

    fn write(&mut self, frame: &[u8]) -> Result<(), ClientError> {
        self.set_deadline(Instant::now() + Duration::from_secs(30));
        self.framed.write_all(frame)?;
        Ok(())
    }

    /// The DER certificate the server presented in TLS.
    #[allow(dead_code)]
    pub fn server_certificate(&self) -> &[u8] {
        &self.server_certificate
    }

    /// The id the client gave `codec` in its Bitmap Codecs capability, the
    /// one the server's surface commands must carry; `None` if not offered.
    pub fn codec_id(&self, codec: Codec) -> Option<u8> {
        self.offered
            .iter()
            .find(|(offered, _)| *offered == codec)
            .map(|&(_, id)| id)
    }

    /// Receives and decodes until `done` accepts the picture or `timeout`
    /// passes; returns the picture `done` accepted. `done` is asked after
    /// each batch of graphics updates, and once at the start.
    pub fn wait_for_image(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&RgbImage) -> bool,
    ) -> Result<RgbImage, ClientError> {
        let deadline = Instant::now() + timeout;
        let mut painted = true;
        loop {
            // A PDU already buffered is part of the same batch.
            if painted && self.framed.peek().is_empty() {
                let image = self.image();
                if done(&image) {
                    return Ok(image);
                }
                painted = false;
            }
            if Instant::now() >= deadline {
                // A last look, in case a batch never drained.
                let image = self.image();
                return match done(&image) {
                    true => Ok(image),
                    false => Err(ClientError::TimedOut(timeout)),
                };
            }
            self.set_deadline(deadline);
            match self.framed.read_pdu() {
                Ok((action, frame)) => painted |= self.process(action, &frame)?,
                Err(error) if is_timeout(&error) => continue,
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// The picture decoded so far.
    pub fn image(&self) -> RgbImage {
        let (width, height) = (self.image.width(), self.image.height());
        let mut image = RgbImage::new(u32::from(width), u32::from(height));
        let stride = self.image.stride();
        for (y, row) in image
            .pixels
            .chunks_exact_mut(usize::from(width))
            .enumerate()
        {
            let line = &self.image.data()[y * stride..y * stride + usize::from(width) * 4];
            for (pixel, rgba) in row.iter_mut().zip(line.chunks_exact(4)) {
                *pixel = [rgba[0], rgba[1], rgba[2]];
            }
        }
        image
    }

    /// Types `text` as Unicode keyboard events, a press and a release for
    /// each UTF-16 unit (a surrogate pair is two units), in one fast-path
    /// input PDU. (Only tests/x11_desktop.rs types; the other binaries that
    /// include this file do not.)
    #[allow(dead_code)]
    pub fn send_unicode(&mut self, text: &str) -> Result<(), ClientError> {
        use ironrdp_pdu::input::fast_path::{FastPathInputEvent, KeyboardFlags};
        let events: Vec<FastPathInputEvent> = text
            .encode_utf16()
            .flat_map(|unit| {
                [
                    FastPathInputEvent::UnicodeKeyboardEvent(KeyboardFlags::empty(), unit),
                    FastPathInputEvent::UnicodeKeyboardEvent(KeyboardFlags::RELEASE, unit),
                ]
            })
            .collect();
        let outputs = self
            .stage
            .process_fastpath_input(&mut self.image, &events)
            .map_err(|error| ClientError::Session(format!("{}", error.report())))?;
        for output in outputs {
            if let ActiveStageOutput::ResponseFrame(bytes) = output {
                self.framed.write_all(&bytes)?;
            }
        }
        Ok(())
    }

    /// What the server sent since the last call (or the connection).
    pub fn take_seen(&mut self) -> Seen {
        std::mem::take(&mut self.observer.seen)
    }

    fn set_deadline(&mut self, deadline: Instant) {
        self.framed.get_inner_mut().0.sock.deadline = deadline;
    }

    /// Feeds one PDU to IronRDP and sends its answers (frame
    /// acknowledgements and the like); returns whether the picture changed.
    fn process(&mut self, action: Action, frame: &[u8]) -> Result<bool, ClientError> {
        if action == Action::FastPath {
            self.observer.observe(frame)?;
        }
        let outputs = self
            .stage
            .process(&mut self.image, action, frame, self.framed.last_read_at())
            .map_err(|error| ClientError::Session(format!("{}", error.report())))?;
        if self.stage.take_bitmap_recovery_request() {
            return Err(ClientError::BitmapDiscarded);
        }
        let mut painted = false;
        for output in outputs {
            match output {
                ActiveStageOutput::ResponseFrame(bytes) if !bytes.is_empty() => {
                    self.framed.write_all(&bytes)?;
                }
                ActiveStageOutput::GraphicsUpdate(_) => painted = true,
                ActiveStageOutput::Terminate(reason) => {
                    return Err(ClientError::Terminated(reason.description()));
                }
                ActiveStageOutput::DeactivateAll => return Err(ClientError::Deactivated),
                _ => {}
            }
        }
        Ok(painted)
    }
}

/// The connector's configuration: a 32-bpp desktop with exactly the
/// offered codecs, no channels, no bulk compression, no EGFX. Also returns
/// the id each offered codec got.
fn config(options: &ClientOptions) -> Result<(Config, Vec<(Codec, u8)>), ClientError> {
    // IronRDP's own list builder: every codec it knows is named, on or off.
    let choices: Vec<String> = [Codec::RemoteFx, Codec::Qoi, Codec::Qoiz]
        .iter()
        .map(|codec| {
            let on = if options.codecs.contains(codec) {
                "on"
            } else {
                "off"
            };
            format!("{}:{on}", codec.name())
        })
        .collect();
    let choices: Vec<&str> = choices.iter().map(String::as_str).collect();
    let codecs = capability_sets::client_codecs_capabilities(&choices)
        .map_err(|error| ClientError::Connect(format!("codec list: {error}")))?;
    let offered = codecs
        .0
        .iter()
        .filter_map(|entry| {
            let codec = match entry.property {
                CodecProperty::RemoteFx(_) => Codec::RemoteFx,
                CodecProperty::Qoi => Codec::Qoi,
                CodecProperty::QoiZ => Codec::Qoiz,
                _ => return None,
            };
            Some((codec, entry.id))
        })
        .collect();
    let config = Config {
        desktop_size: DesktopSize {
            width: options.width,
            height: options.height,
        },
        monitor_layout: None,
        desktop_scale_factor: 0,
        desktop_physical_size: None,
        desktop_orientation: None,
        device_scale_factor: None,
        monitor_extended_layout: None,
        relative_mouse_input: false,
        enable_tls: options.security == ClientSecurity::Tls,
        enable_credssp: options.security == ClientSecurity::Nla,
        enable_standard_rdp_security: false,
        credentials: Credentials::UsernamePassword {
            username: options.user.clone(),
            password: options.password.clone(),
        },
        domain: options.domain.clone(),
        client_build: 0,
        client_name: "rdpserve-tests".into(),
        keyboard_type: gcc::KeyboardType::IBM_ENHANCED,
        keyboard_subtype: 0,
        keyboard_functional_keys_count: 12,
        keyboard_layout: 0,
        connection_type: gcc::ConnectionType::Lan,
        ime_file_name: String::new(),
        bitmap: Some(BitmapConfig {
            lossy_compression: true,
            color_depth: 32,
            codecs,
        }),
        dig_product_id: String::new(),
        client_dir: String::new(),
        alternate_shell: String::new(),
        work_dir: String::new(),
        remote_application_mode: false,
        rail_support_level: RailSupportLevel::empty(),
        platform: MajorPlatformType::UNIX,
        hardware_id: None,
        request_data: None,
        autologon: false,
        enable_audio_playback: false,
        enable_audio_capture: false,
        performance_flags: Default::default(),
        license_cache: None,
        timezone_info: Default::default(),
        compression_type: None,
        enable_server_pointer: false,
        pointer_software_rendering: false,
        multitransport_flags: None,
        support_dyn_vc_gfx_protocol: false,
    };
    Ok((config, offered))
}

/// A logon failure when CredSSP carried an error status, else the report.
fn connect_error(error: ironrdp_connector::ConnectorError) -> ClientError {
    let report = format!("{}", error.report());
    match error.kind() {
        ConnectorErrorKind::Credssp(sspi) => match sspi.nstatus {
            Some(status) => ClientError::LogonFailed {
                status: status.0,
                report,
            },
            None => ClientError::Connect(report),
        },
        _ => ClientError::Connect(report),
    }
}

/// A TLS connection over the deadline-bound socket.
type TlsStream = rustls::StreamOwned<rustls::ClientConnection, DeadlineStream>;

/// Runs the TLS handshake over `stream`, sending `server_name` as SNI if
/// given; returns the TLS stream, the server's certificate and its public
/// key (the subjectPublicKey), which CredSSP binds to.
fn tls_upgrade(
    mut stream: DeadlineStream,
    server_name: Option<&str>,
) -> Result<(TlsStream, Vec<u8>, Vec<u8>), ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| ClientError::Tls(error.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    // rustls sends no SNI for an address.
    let name = match server_name {
        Some(name) => TlsServerName::try_from(name.to_owned())
            .map_err(|error| ClientError::Tls(error.to_string()))?,
        None => TlsServerName::IpAddress(stream.tcp.peer_addr()?.ip().into()),
    };
    let mut connection = rustls::ClientConnection::new(Arc::new(config), name)
        .map_err(|error| ClientError::Tls(error.to_string()))?;
    while connection.is_handshaking() {
        connection.complete_io(&mut stream)?;
    }
    let certificate = connection
        .peer_certificates()
        .and_then(|chain| chain.first())
        .ok_or_else(|| ClientError::Tls("no server certificate".into()))?;
    let parsed = x509_cert::Certificate::from_der(certificate)
        .map_err(|error| ClientError::Tls(format!("server certificate: {error}")))?;
    let public_key = parsed
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| ClientError::Tls("public key is not whole bytes".into()))?
        .to_vec();
    let certificate = certificate.to_vec();
    Ok((
        rustls::StreamOwned::new(connection, stream),
        certificate,
        public_key,
    ))
}

/// Accepts the self-signed test certificate, still checking that the
/// server holds its key (the handshake signatures).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &TlsServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// sspi's way out to a KDC, which NTLM never takes.
struct NoNetwork;

impl NetworkClient for NoNetwork {
    fn send(&self, _request: &NetworkRequest) -> ironrdp_connector::sspi::Result<Vec<u8>> {
        Err(ironrdp_connector::sspi::Error::new(
            ironrdp_connector::sspi::ErrorKind::NoAuthenticatingAuthority,
            "the test client has no network for Kerberos",
        ))
    }
}

/// A TCP stream whose reads and writes fail with `TimedOut` once
/// `deadline` has passed, and never block beyond it.
pub struct DeadlineStream {
    tcp: TcpStream,
    deadline: Instant,
}

impl DeadlineStream {
    fn time_left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
        }
        Ok(left)
    }
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.time_left()?;
        self.tcp.set_read_timeout(Some(left))?;
        self.tcp.read(buf)
    }
}

impl Write for DeadlineStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.time_left()?;
        self.tcp.set_write_timeout(Some(left))?;
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

/// A socket timeout: `WouldBlock` from `SO_RCVTIMEO` on Unix, `TimedOut`
/// elsewhere and from [`DeadlineStream`].
fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Reads the fast-path output PDUs IronRDP is about to decode, reassembling
/// fragmented updates, and records which codecs they use.
#[derive(Default)]
struct WireObserver {
    /// A fragmented update being reassembled: its code and data so far.
    partial: Option<(UpdateCode, Vec<u8>)>,
    seen: Seen,
}

impl WireObserver {
    fn observe(&mut self, frame: &[u8]) -> Result<(), ClientError> {
        let wire = |error: ironrdp_pdu::DecodeError| ClientError::Wire(error.to_string());
        let mut cursor = ReadCursor::new(frame);
        decode_cursor::<FastPathHeader>(&mut cursor).map_err(wire)?;
        // One PDU can carry several updates.
        while !cursor.is_empty() {
            let update = decode_cursor::<FastPathUpdatePdu<'_>>(&mut cursor).map_err(wire)?;
            if update
                .compression_flags
                .is_some_and(|flags| !flags.is_empty())
            {
                return Err(ClientError::Wire(
                    "bulk-compressed update, though the client offered no compression".into(),
                ));
            }
            let code = update.update_code;
            let complete = match update.fragmentation {
                Fragmentation::Single => Some(update.data.to_vec()),
                Fragmentation::First => {
                    self.partial = Some((code, update.data.to_vec()));
                    None
                }
                Fragmentation::Next | Fragmentation::Last => {
                    let Some((first_code, data)) = self.partial.as_mut() else {
                        return Err(ClientError::Wire("fragment without a first one".into()));
                    };
                    if *first_code != code {
                        return Err(ClientError::Wire("fragment of another update".into()));
                    }
                    data.extend_from_slice(update.data);
                    match update.fragmentation {
                        Fragmentation::Last => self.partial.take().map(|(_, data)| data),
                        _ => None,
                    }
                }
            };
            if let Some(data) = complete {
                self.record(code, &data)?;
            }
        }
        Ok(())
    }

    fn record(&mut self, code: UpdateCode, data: &[u8]) -> Result<(), ClientError> {
        self.seen.updates += 1;
        let update = FastPathUpdate::decode_with_code(data, code)
            .map_err(|error| ClientError::Wire(error.to_string()))?;
        match update {
            FastPathUpdate::SurfaceCommands(commands) => {
                for command in commands {
                    if let SurfaceCommand::SetSurfaceBits(bits)
                    | SurfaceCommand::StreamSurfaceBits(bits) = command
                    {
                        self.seen
                            .surface_codec_ids
                            .insert(bits.extended_bitmap_data.codec_id);
                    }
                }
            }
            FastPathUpdate::Bitmap(bitmap) => {
                for rectangle in bitmap.rectangles {
                    let compressed = rectangle
                        .compression_flags
                        .contains(ironrdp_pdu::bitmap::Compression::BITMAP_COMPRESSION);
                    self.seen
                        .bitmaps
                        .insert((rectangle.bits_per_pixel, compressed));
                }
            }
            _ => {}
        }
        Ok(())
    }
}
