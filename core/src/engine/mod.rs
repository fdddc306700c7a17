//! The per-connection state machine: one [`Engine`] per client.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tracing::{debug, info, trace, warn};

use crate::api::clipboard::{ClipboardFormat, FileContentsRequest};
use crate::api::command::{Applied, ChannelCommand, Command};
use crate::api::config::{Config, DesktopSize};
use crate::api::error::{CommandError, Error};
use crate::api::event::{CloseReason, ConnectionRouting, Event, Graphics, Rectangle, SessionInfo};
use crate::api::pointer::{ColorPointer, PointerCommand, PointerImage};
use crate::api::routing::Redirection;
use crate::api::update::BitmapUpdate;
use crate::connection::handshake::{Handshake, HandshakeOutcome, TlsSource};
use crate::record::recorder::Recorder;
use crate::session::Session;
use crate::transport::{Framing, Transport};
use crate::wire::tpkt::FrameKind;

pub(crate) mod replay;

/// What an echo request puts before the application's payload: its id.
const ECHO_ID_BYTES: usize = 4;

/// The sans-IO RDP server engine for one connection.
///
/// Its methods come in four kinds:
/// - getters: [`is_active`](Self::is_active), [`is_closed`](Self::is_closed),
///   [`session_info`](Self::session_info), [`pending_transmit`](Self::pending_transmit),
///   [`holds_frame_back`](Self::holds_frame_back);
/// - inputs: [`handle_input`](Self::handle_input) (bytes from the socket),
///   [`handle_eof`](Self::handle_eof) (the socket closed) and
///   [`handle_timeout`](Self::handle_timeout);
/// - application commands, all through [`apply`](Self::apply) (which
///   records them): [`send_bitmap`](Self::send_bitmap), pointers,
///   [`resize`](Self::resize), [`set_graphics`](Self::set_graphics),
///   [`request_echo`](Self::request_echo), the
///   clipboard (`clipboard_*`), sound (`send_sound`, ...), application
///   channels ([`send_channel_data`](Self::send_channel_data),
///   `*_dynamic_channel*`), [`close`](Self::close);
/// - outputs: [`poll_transmit`](Self::poll_transmit), [`poll_event`](Self::poll_event),
///   [`poll_timeout`](Self::poll_timeout), and [`poll_recording`](Self::poll_recording)
///   when recording.
///
/// **Drain order**: after any input or command, drain `poll_transmit` until
/// `None` (write those bytes to the socket in order), then `poll_event` until
/// `None`, then arm a timer for `poll_timeout` (and take `poll_recording` when
/// recording). After `Event::Closed`, write what `poll_transmit` still
/// returns and close the socket.
///
/// ```no_run
/// # use std::io::{Read, Write};
/// # use std::time::{Duration, Instant};
/// # use rdpserve_core::{Config, Engine, Event};
/// # fn run(mut socket: std::net::TcpStream, config: Config) -> std::io::Result<()> {
/// let mut engine = Engine::new(config, [7u8; 32], Instant::now());
/// let (mut input, mut output) = (vec![0u8; 16 * 1024], Vec::new());
/// loop {
///     while engine.poll_transmit(&mut output).is_some() {
///         socket.write_all(&output)?;
///         output.clear();
///     }
///     while let Some(event) = engine.poll_event() {
///         match event {
///             Event::Closed { .. } => return Ok(()),
///             other => println!("{other:?}"),
///         }
///     }
///     // A real loop also waits for engine.poll_timeout() and app updates.
///     match socket.read(&mut input)? {
///         0 => engine.handle_eof(Instant::now()),
///         n => engine.handle_input(Instant::now(), &input[..n]),
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Engine {
    config: Config,
    transport: Transport,
    phase: Phase,
    events: VecDeque<Event>,
    /// When the engine was built; recorded times are relative to it.
    created: Instant,
    /// When the handshake must be finished.
    handshake_deadline: Instant,
    /// When the X.224 Connection Request must have arrived.
    first_bytes_deadline: Instant,
    /// The last time the client sent bytes, for the idle timeout.
    last_input: Instant,
    /// The latest time the runtime told the engine.
    clock: Instant,
    /// When the next quiet frame for the content-adaptive refresh goes
    /// (`PipelineCodec::Adaptive`), while tiles sent lossy await it.
    refresh_at: Option<Instant>,
    /// Scratch space for encoding, reused across PDUs.
    scratch: Vec<u8>,
    /// The session's recording, when `Config::record` is set.
    recorder: Option<Recorder>,
    /// The client's load-balancing data, kept from the handshake.
    routing: Option<ConnectionRouting>,
}

/// The interval of the content-adaptive refresh's quiet frames: with the
/// classifier's two quiet frames, a tile sent lossy is re-sent losslessly
/// 100 to 200 ms after it stopped changing, and a video at 10 fps or more
/// is never refreshed between its frames.
const REFRESH_TICK: std::time::Duration = std::time::Duration::from_millis(100);

#[derive(Debug)]
enum Phase {
    /// Connection sequence from X.224 to finalization.
    Handshake(Box<Handshake>),
    /// Only reachable from a finished handshake.
    Active(Box<Session>),
    Closed,
}

impl Engine {
    /// A new engine for a freshly accepted connection. `seed` is the only
    /// source of randomness (identifiers, later NTLM challenges); `now` starts
    /// the handshake deadline.
    pub fn new(config: Config, seed: [u8; 32], now: Instant) -> Self {
        Self::with_tls_source(config, seed, now, TlsSource::Identity)
    }

    /// An engine whose input arrives already decrypted, as a recording
    /// taken above TLS holds it; CredSSP binds to `public_key`.
    pub(crate) fn decrypted(
        config: Config,
        seed: [u8; 32],
        now: Instant,
        public_key: Vec<u8>,
    ) -> Self {
        Self::with_tls_source(config, seed, now, TlsSource::Decrypted { public_key })
    }

    fn with_tls_source(config: Config, seed: [u8; 32], now: Instant, tls: TlsSource) -> Self {
        let handshake_deadline = now + config.handshake_timeout;
        let first_bytes_deadline = (now + config.first_bytes_timeout).min(handshake_deadline);
        let mut transport = Transport::default();
        let recorder = config.record.then(|| match (&tls, &config.security.tls) {
            (TlsSource::Decrypted { public_key }, _) => {
                Recorder::new(&config, &seed, Some(public_key))
            }
            (TlsSource::Identity, Some(_)) => Recorder::awaiting_header(&seed),
            (TlsSource::Identity, None) => Recorder::new(&config, &seed, None),
        });
        if recorder.is_some() {
            transport.enable_tap();
        }
        Self {
            phase: Phase::Handshake(Box::new(Handshake::new(&config, seed, now, tls))),
            config,
            transport,
            events: VecDeque::new(),
            created: now,
            handshake_deadline,
            first_bytes_deadline,
            last_input: now,
            clock: now,
            refresh_at: None,
            scratch: Vec::new(),
            recorder,
            routing: None,
        }
    }

    // ----- getters -----

    pub fn is_active(&self) -> bool {
        matches!(self.phase, Phase::Active(_))
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Who is connected and how, once active.
    pub fn session_info(&self) -> Option<&SessionInfo> {
        match &self.phase {
            Phase::Active(session) => Some(session.info()),
            _ => None,
        }
    }

    /// Whether `name`, one of `Config::static_channels`, is served in this
    /// session: the session is active, the client joined the channel, and
    /// it has not been closed for a malformed message
    /// (`Event::ChannelClosed`). `send_channel_data` refuses the others.
    pub fn serves_static_channel(&self, name: &str) -> bool {
        match &self.phase {
            Phase::Active(session) => session.serves_static_channel(name),
            _ => false,
        }
    }

    /// Where the connection is going: the client's X.224 cookie or routing
    /// token (from its Connection Request on), its cluster block (from its
    /// MCS Connect Initial on) and, once logged on, the user. `None` before
    /// the Connection Request.
    pub fn routing(&self) -> Option<&ConnectionRouting> {
        match &self.phase {
            Phase::Handshake(handshake) => handshake.routing(),
            _ => self.routing.as_ref(),
        }
    }

    /// What the Graphics Pipeline sent so far, while the session uses it.
    pub fn pipeline_stats(&self) -> Option<crate::api::event::PipelineStats> {
        match &self.phase {
            Phase::Active(session) => session.pipeline_stats(),
            _ => None,
        }
    }

    /// What the Graphics Pipeline keeps between frames, in bytes.
    #[cfg(test)]
    pub(crate) fn held_graphics_bytes(&self) -> usize {
        match &self.phase {
            Phase::Active(session) => session.held_graphics_bytes(),
            _ => 0,
        }
    }

    /// Bytes queued for the socket and not yet taken by `poll_transmit`; an
    /// adapter uses it to stop asking the application for frames while the
    /// socket is behind.
    pub fn pending_transmit(&self) -> usize {
        self.transport.pending_transmit()
    }

    // ----- inputs -----

    /// Bytes read from the socket.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        if self.is_closed() {
            return;
        }
        self.last_input = now;
        self.clock = now;
        if let Err(error) = self.process_input(now, bytes) {
            self.fail(error);
        }
        self.schedule_refresh(now);
        self.record_output();
    }

    /// The socket reached end of stream.
    pub fn handle_eof(&mut self, now: Instant) {
        if self.is_closed() {
            return;
        }
        let at = now.saturating_duration_since(self.created);
        if let Some(recorder) = &mut self.recorder {
            recorder.eof(at);
        }
        debug!("Transport closed by peer");
        self.finish(CloseReason::TransportClosed);
    }

    /// Call when the instant from `poll_timeout` has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_closed() {
            return;
        }
        let at = now.saturating_duration_since(self.created);
        if let Some(recorder) = &mut self.recorder {
            recorder.timeout(at);
        }
        let refresh_due = self.refresh_deadline().is_some_and(|due| now >= due);
        self.clock = now;
        if refresh_due && let Phase::Active(session) = &mut self.phase {
            self.refresh_at = None;
            if let Err(error) = session.refresh_tick(&mut self.transport) {
                self.fail(error);
                self.record_output();
                return;
            }
        }
        self.schedule_refresh(now);
        match &self.phase {
            Phase::Handshake(handshake)
                if !handshake.started() && now >= self.first_bytes_deadline =>
            {
                warn!("No connection request before the first-bytes deadline");
                self.fail(Error::TimedOut("first bytes"));
            }
            Phase::Handshake(_) if now >= self.handshake_deadline => {
                warn!("Handshake deadline passed");
                self.fail(Error::TimedOut("handshake"));
            }
            Phase::Active(_)
                if self
                    .config
                    .idle_timeout
                    .is_some_and(|idle| now >= self.last_input + idle) =>
            {
                info!("Session idle for too long");
                self.fail(Error::TimedOut("idle"));
            }
            _ => {}
        }
        self.record_output();
    }

    // ----- application commands -----

    /// Carries out one application command. Every command enters the
    /// engine here, and only here: when recording, it is recorded before it
    /// runs, so a replay gives the engine the same commands in the same
    /// order. The methods below are shorthands for it.
    ///
    /// A refused command changes nothing. [`CommandError::Connection`]
    /// means carrying it out failed the connection; `Event::Closed` follows.
    pub fn apply(&mut self, command: Command<'_>) -> Result<Applied, CommandError> {
        // Malformed pixels are refused before they reach the recording.
        match &command {
            Command::Bitmap { update, .. } => update.validate()?,
            Command::Avc420(frame) => frame.validate()?,
            Command::Pointer(image) => image.validate()?,
            Command::ColorPointer(pointer) => pointer.validate()?,
            Command::RequestEcho { payload, .. } => {
                // The answer is a channel message like any other: it must
                // fit the cap on what the client may send.
                let max = self
                    .config
                    .max_channel_message
                    .saturating_sub(ECHO_ID_BYTES);
                if payload.len() > max {
                    return Err(CommandError::EchoPayloadTooLarge {
                        len: payload.len(),
                        max,
                    });
                }
            }
            Command::Redirect(redirection) => {
                crate::connection::redirection::encode_packet(&mut Vec::new(), redirection)
                    .map_err(|_| CommandError::RedirectionTooLong)?;
            }
            Command::Close if self.is_closed() => return Ok(Applied::Done),
            _ => {}
        }
        if let Some(recorder) = &mut self.recorder {
            let at = match &command {
                Command::RequestEcho { now, .. } => now.saturating_duration_since(self.created),
                _ => Duration::ZERO,
            };
            recorder.command(at, &command);
        }
        let result = self.run(command);
        if let Err(CommandError::Connection(error)) = &result {
            self.fail(error.clone());
        }
        self.record_output();
        result
    }

    fn run(&mut self, command: Command<'_>) -> Result<Applied, CommandError> {
        match command {
            Command::Close => {
                self.close_now();
                return Ok(Applied::Done);
            }
            Command::AcceptConnection => {
                let Phase::Handshake(handshake) = &mut self.phase else {
                    return Err(CommandError::NotAwaitingRoute);
                };
                if !handshake.awaits_route() {
                    return Err(CommandError::NotAwaitingRoute);
                }
                handshake.accept(&self.config, &mut self.transport)?;
                return Ok(Applied::Done);
            }
            Command::Redirect(redirection) => return self.send_redirection(&redirection),
            _ => {}
        }
        let Phase::Active(session) = &mut self.phase else {
            return Err(match self.phase {
                Phase::Closed => CommandError::Closed,
                _ => CommandError::NotActive,
            });
        };
        let transport = &mut self.transport;
        match command {
            Command::Bitmap { update, damage } => {
                if session.is_reactivating() {
                    return Err(CommandError::Reactivating);
                }
                session.send_bitmap(&update, damage.as_deref(), transport, &mut self.scratch)?;
            }
            Command::Pointer(image) => {
                return session
                    .send_pointer(&image, transport)
                    .map(Applied::PointerSlot);
            }
            Command::ColorPointer(pointer) => {
                return session
                    .send_color_pointer(&pointer, transport)
                    .map(Applied::PointerSlot);
            }
            Command::PointerCommand(command) => session.send_pointer_command(command, transport)?,
            Command::Resize(size) => session.resize(size, transport)?,
            Command::SetGraphics(graphics) => {
                if session.is_reactivating() {
                    return Err(CommandError::Reactivating);
                }
                session.set_graphics(graphics, transport, &mut self.scratch)?;
            }
            Command::Avc420(frame) => {
                if session.is_reactivating() {
                    return Err(CommandError::Reactivating);
                }
                session.send_avc420(&frame, transport)?;
            }
            Command::RequestEcho { now, payload } => {
                return session
                    .request_echo(now, payload, transport)
                    .map(Applied::Echo);
            }
            Command::Channel(command) => return session.channels().run(command, transport),
            Command::Close | Command::AcceptConnection | Command::Redirect(_) => {
                unreachable!("handled above")
            }
        }
        Ok(Applied::Done)
    }

    /// Sends a rectangle of the desktop, as the session's graphics path
    /// encodes it (surface commands or bitmap updates); only tiles whose
    /// pixels changed go out.
    pub fn send_bitmap(&mut self, update: &BitmapUpdate<'_>) -> Result<(), CommandError> {
        self.apply(Command::Bitmap {
            update: *update,
            damage: None,
        })
        .map(drop)
    }

    /// Like [`send_bitmap`](Self::send_bitmap), but the application says
    /// which areas changed (desktop coordinates, exclusive bounds): no pixels
    /// are compared, and exactly the tiles the rectangles touch are sent.
    /// An empty list sends nothing. The caller must be right: an area left
    /// out keeps showing its old pixels.
    pub fn send_bitmap_damaged(
        &mut self,
        update: &BitmapUpdate<'_>,
        damage: &[Rectangle],
    ) -> Result<(), CommandError> {
        self.apply(Command::Bitmap {
            update: *update,
            damage: Some(Cow::Borrowed(damage)),
        })
        .map(drop)
    }

    /// Sends a new pointer shape (clipped to 96x96 unless the client takes
    /// large pointers) and shows it. Returns its cache slot for
    /// `PointerCommand::Cached`: `image.cache_index` when the application
    /// chose one, the next slot in turn otherwise.
    pub fn send_pointer(&mut self, image: &PointerImage<'_>) -> Result<u16, CommandError> {
        match self.apply(Command::Pointer(*image))? {
            Applied::PointerSlot(slot) => Ok(slot),
            _ => unreachable!("a pointer command gives a slot"),
        }
    }

    /// Sends a legacy colour pointer (24-bit XOR and 1-bit AND masks, at
    /// most 96x96) and shows it. Returns its cache slot, chosen as for
    /// [`send_pointer`](Self::send_pointer).
    pub fn send_color_pointer(&mut self, pointer: &ColorPointer<'_>) -> Result<u16, CommandError> {
        match self.apply(Command::ColorPointer(*pointer))? {
            Applied::PointerSlot(slot) => Ok(slot),
            _ => unreachable!("a pointer command gives a slot"),
        }
    }

    /// Moves, hides, resets or recalls the pointer.
    pub fn send_pointer_command(&mut self, command: PointerCommand) -> Result<(), CommandError> {
        self.apply(Command::PointerCommand(command)).map(drop)
    }

    /// Changes the desktop size of an active session by
    /// deactivation-reactivation; `Event::Resized` follows when the client
    /// has caught up. Graphics sent before then are refused.
    pub fn resize(&mut self, size: DesktopSize) -> Result<(), CommandError> {
        self.apply(Command::Resize(size)).map(drop)
    }

    /// Overrides the codec the session picked: from now on graphics go out
    /// as `graphics`, which must be bitmaps or one of
    /// `SessionInfo::surface_codecs`. The whole desktop is sent again at
    /// once from the server's copy, in the new codec, so nothing the old
    /// codec still held back is lost; `session_info().graphics` tells what
    /// is in use.
    pub fn set_graphics(&mut self, graphics: Graphics) -> Result<(), CommandError> {
        self.apply(Command::SetGraphics(graphics)).map(drop)
    }

    /// Sends an H.264 picture the application encoded itself (see
    /// [`Avc420Frame`](crate::api::update::Avc420Frame)) as one Graphics Pipeline
    /// frame. Refused with `CodecNotTaken` unless the pipeline runs and
    /// the client takes AVC420, `FramesInFlight` while the client has
    /// `Config::max_unacknowledged_frames` frames unacknowledged (try again
    /// after the next acknowledgement: a predicted picture cannot be
    /// dropped), `KeyFrameNeeded` when the client's decoder starts over
    /// and the frame holds no IDR picture, `InvalidAvcRegion` for a
    /// region outside the desktop. The server's copy of the screen no
    /// longer matches the client's afterwards, so the next bitmap update
    /// sends every tile it covers, in the session's codec.
    pub fn send_avc420(
        &mut self,
        frame: &crate::api::update::Avc420Frame<'_>,
    ) -> Result<(), CommandError> {
        self.apply(Command::Avc420(frame.clone())).map(drop)
    }

    /// Bytes the session's channel buffers hold (tests only).
    #[cfg(test)]
    pub(crate) fn channel_memory(&mut self) -> usize {
        match &mut self.phase {
            Phase::Active(session) => session.channels().held(),
            _ => 0,
        }
    }

    /// Whether a resize is under way (graphics wait for `Event::Resized`).
    pub fn is_reactivating(&self) -> bool {
        matches!(&self.phase, Phase::Active(session) if session.is_reactivating())
    }

    /// Whether changed tiles wait for the client to acknowledge a frame
    /// (surface codecs with pacing): the `handle_input` that carries the
    /// acknowledgement then encodes them. A driver that keeps encoding off
    /// its event loop's thread can tell from this (and from `is_active`:
    /// the handshake does the TLS and CredSSP cryptography) whether
    /// `handle_input` may take long.
    pub fn holds_frame_back(&self) -> bool {
        matches!(&self.phase, Phase::Active(session) if session.holds_frame_back())
    }

    /// Measures the round-trip time to the client over the ECHO dynamic
    /// channel: returns the request's id; `Event::EchoRoundTrip` reports the
    /// time, with `payload`, when the answer arrives. Requests made before
    /// the channel opens are sent when it does. The payload (any bytes, up
    /// to `Config::max_channel_message` less 4) comes back as it was sent.
    pub fn request_echo(&mut self, now: Instant, payload: &[u8]) -> Result<u32, CommandError> {
        match self.apply(Command::RequestEcho { now, payload })? {
            Applied::Echo(id) => Ok(id),
            _ => unreachable!("an echo request gives an id"),
        }
    }

    /// Announces the server's clipboard formats to the client (the user
    /// copied on the server). Waits for the clipboard channel's setup when
    /// the client is not ready yet; a later offer replaces a waiting one.
    pub fn clipboard_offer(&mut self, formats: &[ClipboardFormat]) -> Result<(), CommandError> {
        self.channel(ChannelCommand::ClipboardOffer(Cow::Borrowed(formats)))
            .map(drop)
    }

    /// Asks for the client's clipboard data in `format_id`, one of the
    /// formats of its last `ClipboardEvent::RemoteCopy`; the answer arrives
    /// as `ClipboardEvent::DataResponse`.
    pub fn clipboard_request(&mut self, format_id: u32) -> Result<(), CommandError> {
        self.channel(ChannelCommand::ClipboardRequest(format_id))
            .map(drop)
    }

    /// Answers the client's oldest `ClipboardEvent::DataRequest`; `None`
    /// reports that the data is not available.
    pub fn clipboard_respond(&mut self, data: Option<&[u8]>) -> Result<(), CommandError> {
        self.channel(ChannelCommand::ClipboardRespond(data))
            .map(drop)
    }

    /// Asks the client for part of a file it listed on its clipboard.
    pub fn clipboard_request_file_contents(
        &mut self,
        request: &FileContentsRequest,
    ) -> Result<(), CommandError> {
        self.channel(ChannelCommand::ClipboardRequestFileContents(*request))
            .map(drop)
    }

    /// Answers `ClipboardEvent::FileContentsRequest` `stream_id`.
    pub fn clipboard_respond_file_contents(
        &mut self,
        stream_id: u32,
        data: Option<&[u8]>,
    ) -> Result<(), CommandError> {
        self.channel(ChannelCommand::ClipboardRespondFileContents { stream_id, data })
            .map(drop)
    }

    /// Sends a message on one of the application's static channels
    /// (`Config::static_channels`) that the client joined.
    pub fn send_channel_data(&mut self, channel: &str, data: &[u8]) -> Result<(), CommandError> {
        self.channel(ChannelCommand::SendChannelData { channel, data })
            .map(drop)
    }

    /// Opens a dynamic channel to the client's listener `name` with a
    /// priority from 0 (highest) to 3; returns its id.
    /// `Event::DynamicChannelOpened` follows, or `Event::DynamicChannelClosed`
    /// when the client has no such listener.
    pub fn open_dynamic_channel(&mut self, name: &str, priority: u8) -> Result<u32, CommandError> {
        match self.channel(ChannelCommand::OpenDynamic { name, priority })? {
            Applied::DynamicChannel(id) => Ok(id),
            _ => unreachable!("opening a channel gives its id"),
        }
    }

    /// Sends a message of any size on an open application dynamic channel.
    pub fn send_dynamic_channel_data(&mut self, id: u32, data: &[u8]) -> Result<(), CommandError> {
        self.channel(ChannelCommand::SendDynamic { id, data })
            .map(drop)
    }

    pub fn close_dynamic_channel(&mut self, id: u32) -> Result<(), CommandError> {
        self.channel(ChannelCommand::CloseDynamic(id)).map(drop)
    }

    /// Plays PCM (or whatever format was selected) samples on the client:
    /// one wave, a whole number of the format's blocks, stamped with the
    /// application's `timestamp_ms`. Refused while `SoundConfig::max_in_flight`
    /// waves await confirmation (`Event::Sound(WaveConfirmed)` frees one).
    pub fn send_sound(&mut self, samples: &[u8], timestamp_ms: u32) -> Result<(), CommandError> {
        self.channel(ChannelCommand::SoundSamples {
            timestamp: timestamp_ms,
            data: samples,
        })
        .map(drop)
    }

    /// Picks the audio format, an index into the formats of
    /// `SoundEvent::Ready` (the first is used by default).
    pub fn select_sound_format(&mut self, index: usize) -> Result<(), CommandError> {
        // An index beyond u32 is out of range all the same.
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        self.channel(ChannelCommand::SoundSelectFormat(index))
            .map(drop)
    }

    /// Sets the client's playback volume, 0 (silent) to 0xFFFF per channel.
    pub fn set_sound_volume(&mut self, left: u16, right: u16) -> Result<(), CommandError> {
        self.channel(ChannelCommand::SoundVolume { left, right })
            .map(drop)
    }

    fn channel(&mut self, command: ChannelCommand<'_>) -> Result<Applied, CommandError> {
        self.apply(Command::Channel(command))
    }

    /// After `Event::Routing` (`Config::route_after_logon`): goes on with
    /// the connection here.
    pub fn accept_connection(&mut self) -> Result<(), CommandError> {
        self.apply(Command::AcceptConnection).map(drop)
    }

    /// Sends the client a Server Redirection (the Enhanced Security Server
    /// Redirection PDU) and closes the connection with
    /// `CloseReason::Redirected`: the client reconnects as `redirection`
    /// says. During the session it goes at once; after `Event::Routing` too;
    /// asked between the client's MCS Connect Initial and its logon, it
    /// waits for the logon and goes where the Demand Active would.
    ///
    /// Refused with `RedirectionNotSupported` when the client did not
    /// advertise REDIRECTION_SUPPORTED (or has not sent its cluster block
    /// yet), with `RedirectionNeedsEnhancedSecurity` under plain RDP.
    pub fn redirect(&mut self, redirection: &Redirection) -> Result<(), CommandError> {
        self.apply(Command::Redirect(Cow::Borrowed(redirection)))
            .map(drop)
    }

    fn send_redirection(&mut self, redirection: &Redirection) -> Result<Applied, CommandError> {
        let sent = match &mut self.phase {
            Phase::Handshake(handshake) => handshake.redirect(redirection, &mut self.transport)?,
            Phase::Active(session) => {
                let routing = self
                    .routing
                    .as_ref()
                    .ok_or(CommandError::RedirectionNotSupported)?;
                let pdu = crate::connection::redirection::checked_pdu(routing, redirection)?;
                session.send_io_data(&pdu, &mut self.transport)?;
                true
            }
            Phase::Closed => return Err(CommandError::Closed),
        };
        if sent {
            info!(
                session_id = redirection.session_id,
                "Server Redirection sent"
            );
            self.finish(CloseReason::Redirected);
        }
        Ok(Applied::Done)
    }

    /// Ends the session: tells the client why (Set Error Info) and disconnects.
    pub fn close(&mut self) {
        // Closing cannot be refused.
        let _ = self.apply(Command::Close);
    }

    fn close_now(&mut self) {
        match &mut self.phase {
            Phase::Active(session) => {
                let _ = session.send_goodbye(
                    crate::connection::data_pdus::error_info::RPC_INITIATED_DISCONNECT,
                    &mut self.transport,
                );
            }
            Phase::Handshake(handshake) => handshake.send_goodbye(&mut self.transport),
            Phase::Closed => return,
        }
        self.finish(CloseReason::ServerRequested);
    }

    // ----- outputs -----

    /// Appends bytes for the socket to `buf`; returns how many, or `None`.
    #[must_use]
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<usize> {
        self.transport.drain_transmit(buf)
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front()?;
        if let Some(recorder) = &mut self.recorder {
            recorder.event(&format!("{event:?}"));
        }
        Some(event)
    }

    /// Appends the recorded session so far to `buf` (only when
    /// `Config::record` is set); returns how many bytes, or `None`. Drain it
    /// after the other outputs; once the engine is closed the last frame is
    /// included too.
    #[must_use]
    pub fn poll_recording(&mut self, buf: &mut Vec<u8>) -> Option<usize> {
        let closed = self.is_closed();
        let recorder = self.recorder.as_mut()?;
        if recorder.is_awaiting_header() {
            // The header names the key of the certificate TLS served, known
            // when its handshake is done; or there is none to name because
            // the client did not take TLS or the connection ended first.
            let served_key = self.transport.served_public_key();
            let past_request =
                !matches!(&self.phase, Phase::Handshake(handshake) if !handshake.started());
            let without_tls = past_request && !self.transport.tls_started();
            if served_key.is_none() && !without_tls && !closed {
                return None;
            }
            recorder.write_header(&self.config, served_key.as_deref().unwrap_or_default());
        }
        recorder.drain(buf, closed)
    }

    /// Decides the next Client Info password check in advance (a replay,
    /// whose recording holds the verdict instead of the password).
    pub(crate) fn decide_next_password_check(&mut self, accepted: bool) {
        if let Phase::Handshake(handshake) = &mut self.phase {
            handshake.decide_next_password_check(accepted);
        }
    }

    /// When `handle_timeout` must be called next, and why.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<(Instant, &'static str)> {
        match &self.phase {
            Phase::Handshake(handshake) if !handshake.started() => {
                Some((self.first_bytes_deadline, "first-bytes deadline"))
            }
            Phase::Handshake(_) => Some((self.handshake_deadline, "handshake deadline")),
            Phase::Active(_) => {
                let idle = self
                    .config
                    .idle_timeout
                    .map(|idle| (self.last_input + idle, "idle timeout"));
                let refresh = self
                    .refresh_deadline()
                    .map(|at| (at, "lossless refresh frame"));
                match (idle, refresh) {
                    (Some(idle), Some(refresh)) => {
                        Some(if refresh.0 < idle.0 { refresh } else { idle })
                    }
                    (idle, refresh) => idle.or(refresh),
                }
            }
            Phase::Closed => None,
        }
    }

    // ----- internals -----

    /// When the next content-adaptive quiet frame is due, if tiles sent
    /// lossy await their refresh: a frame every `REFRESH_TICK` while the
    /// application sends none, so a paused video sharpens without a busy
    /// loop, and no timer at all when nothing waits. Until the engine
    /// learns the time again (after a command), the tick counts from the
    /// latest time it knows.
    fn refresh_deadline(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Active(session) if session.wants_refresh() => {
                Some(self.refresh_at.unwrap_or(self.clock + REFRESH_TICK))
            }
            _ => None,
        }
    }

    fn schedule_refresh(&mut self, now: Instant) {
        let wanted = matches!(&self.phase, Phase::Active(session) if session.wants_refresh());
        self.refresh_at = match (wanted, self.refresh_at) {
            (false, _) => None,
            (true, Some(at)) => Some(at),
            (true, None) => Some(now + REFRESH_TICK),
        };
    }

    fn process_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), Error> {
        self.transport.receive(bytes)?;
        loop {
            let framing = match &self.phase {
                Phase::Handshake(handshake) if handshake.expects_ts_request() => Framing::TsRequest,
                _ => Framing::Rdp,
            };
            let Some((kind, len)) = self
                .transport
                .next_frame(framing, self.config.max_incoming_pdu)?
            else {
                break;
            };
            // Copy the frame out so handlers can write to the transport while
            // reading it; frames are at most 64 KiB.
            self.scratch.clear();
            self.scratch.extend_from_slice(self.transport.frame(len));
            self.transport.consume(len);
            let at = now.saturating_duration_since(self.created);
            if let Some(recorder) = &mut self.recorder {
                recorder.frame(at, &self.scratch);
            }
            let frame = std::mem::take(&mut self.scratch);
            let result = self.process_frame(now, kind, &frame);
            self.scratch = frame;
            result?;
            self.record_output();
            if self.is_closed() {
                self.transport.discard_received();
                break;
            }
        }
        Ok(())
    }

    fn process_frame(&mut self, now: Instant, kind: FrameKind, frame: &[u8]) -> Result<(), Error> {
        match &mut self.phase {
            Phase::Handshake(handshake) => {
                if kind == FrameKind::FastPath {
                    return Err(Error::UnexpectedPdu("fast-path input during the handshake"));
                }
                let outcome =
                    handshake.process_frame(frame, now, &self.config, &mut self.transport);
                // Recordings never hold the password: it is zeroed in the
                // recorded frame and the check's verdict kept in its place.
                if let (Some(check), Some(recorder)) =
                    (handshake.take_password_check(), &mut self.recorder)
                {
                    recorder.redact(&check.secret);
                    if let Some(accepted) = check.accepted {
                        recorder.verdict(accepted);
                    }
                }
                match outcome? {
                    HandshakeOutcome::Continue => {}
                    HandshakeOutcome::Rejected(error) => {
                        self.finish(CloseReason::Error(error));
                    }
                    HandshakeOutcome::ClientDisconnected => {
                        self.finish(CloseReason::ClientRequested);
                    }
                    HandshakeOutcome::Route(routing) => {
                        self.events.push_back(Event::Routing(routing));
                    }
                    HandshakeOutcome::Redirected => {
                        info!("Server Redirection sent after logon");
                        self.finish(CloseReason::Redirected);
                    }
                    HandshakeOutcome::Finished => {
                        let Phase::Handshake(handshake) =
                            std::mem::replace(&mut self.phase, Phase::Closed)
                        else {
                            unreachable!("matched above");
                        };
                        self.routing = handshake.routing().cloned();
                        let mut session = Session::from_handshake(*handshake, &self.config);
                        session.start(&mut self.transport)?;
                        debug!(info = ?session.info(), "Session active");
                        self.events
                            .push_back(Event::Activated(session.info().clone()));
                        self.phase = Phase::Active(Box::new(session));
                    }
                }
                Ok(())
            }
            Phase::Active(session) => {
                let outcome = match kind {
                    FrameKind::FastPath => session.process_fast_path(frame, &mut self.events)?,
                    FrameKind::X224 => session.process_slow_path(
                        frame,
                        now,
                        &mut self.transport,
                        &mut self.events,
                    )?,
                };
                if let Some(reason) = outcome {
                    self.finish(reason);
                }
                Ok(())
            }
            Phase::Closed => Ok(()),
        }
    }

    /// Ends the connection because of `error`, saying goodbye where the spec
    /// has a way to.
    fn fail(&mut self, error: Error) {
        debug!(%error, "Closing connection");
        match &mut self.phase {
            Phase::Active(session) => {
                let _ = session.send_goodbye(error_info_for(&error), &mut self.transport);
            }
            Phase::Handshake(handshake) => handshake.send_goodbye(&mut self.transport),
            Phase::Closed => return,
        }
        self.finish(CloseReason::Error(error));
    }

    /// Moves the plaintext sent since the last call into the recording.
    fn record_output(&mut self) {
        if let Some(recorder) = &mut self.recorder {
            self.transport.drain_tap(|bytes| recorder.output(bytes));
        }
    }

    fn finish(&mut self, reason: CloseReason) {
        if self.is_closed() {
            return;
        }
        trace!(?reason, "Connection closed");
        self.transport.close();
        self.phase = Phase::Closed;
        self.events.push_back(Event::Closed { reason });
    }
}

/// The Set Error Info code that tells the client why we disconnect it.
fn error_info_for(error: &Error) -> u32 {
    use crate::connection::data_pdus::error_info;
    match error {
        Error::TimedOut(_) => error_info::IDLE_TIMEOUT,
        Error::AuthenticationFailed => error_info::SERVER_DENIED_CONNECTION,
        Error::Unsupported(_) => error_info::SERVER_DENIED_CONNECTION,
        _ => error_info::BAD_PDU,
    }
}
