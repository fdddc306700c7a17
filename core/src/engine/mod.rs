//! The per-connection state machine: one [`Engine`] per client.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tracing::{debug, trace, warn};

use crate::api::clipboard::ClipboardFormat;
use crate::api::clipboard::FileContentsRequest;
use std::borrow::Cow;

use crate::api::command::ChannelCommand;
use crate::api::config::Config;
use crate::api::error::Error;
use crate::api::event::{CloseReason, Event, Graphics, Rectangle, SessionInfo};
use crate::api::pointer::ColorPointer;
use crate::api::pointer::PointerCommand;
use crate::api::pointer::PointerImage;
use crate::api::update::BitmapUpdate;
use crate::connection::handshake::{Handshake, HandshakeOutcome};
use crate::record::Recorder;
use crate::session::Session;
use crate::transport::{Framing, Transport};
use crate::wire::tpkt::FrameKind;

/// The sans-IO RDP server engine for one connection.
///
/// Its methods come in four kinds:
/// - getters: [`is_active`](Self::is_active), [`is_closed`](Self::is_closed), [`session`](Self::session_info);
/// - inputs: [`handle_input`](Self::handle_input) (bytes from the socket),
///   [`handle_eof`](Self::handle_eof) (the socket closed) and
///   [`handle_timeout`](Self::handle_timeout);
/// - application commands: [`send_bitmap`](Self::send_bitmap), pointers,
///   [`resize`](Self::resize), [`set_graphics`](Self::set_graphics),
///   [`request_echo`](Self::request_echo), the
///   clipboard (`clipboard_*`), application channels
///   ([`send_channel_data`](Self::send_channel_data), `*_dynamic_channel*`),
///   [`close`](Self::close);
/// - outputs: [`poll_transmit`](Self::poll_transmit), [`poll_event`](Self::poll_event),
///   [`poll_timeout`](Self::poll_timeout).
///
/// **Drain order**: after any input or command, drain `poll_transmit` until
/// `None` (write those bytes to the socket in order), then `poll_event` until
/// `None`, then arm a timer for `poll_timeout`. After `Event::Closed`, write what
/// `poll_transmit` still returns and close the socket.
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
    /// Scratch space for encoding, reused across PDUs.
    scratch: Vec<u8>,
}

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
        let handshake_deadline = now + config.handshake_timeout;
        let mut transport = Transport::default();
        transport.recorder = config.record.then(|| Recorder::new(&config, &seed));
        Self {
            phase: Phase::Handshake(Box::new(Handshake::new(&config, seed, now))),
            config,
            transport,
            events: VecDeque::new(),
            created: now,
            handshake_deadline,
            scratch: Vec::new(),
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
        if let Err(error) = self.process_input(now, bytes) {
            self.fail(error);
        }
    }

    /// The socket reached end of stream.
    pub fn handle_eof(&mut self, now: Instant) {
        if self.is_closed() {
            return;
        }
        let at = now.saturating_duration_since(self.created);
        if let Some(recorder) = &mut self.transport.recorder {
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
        if let Some(recorder) = &mut self.transport.recorder {
            recorder.timeout(at);
        }
        if let Phase::Handshake(_) = self.phase
            && now >= self.handshake_deadline
        {
            warn!("Handshake deadline passed");
            self.fail(Error::TimedOut("handshake"));
        }
    }

    // ----- application commands -----

    /// Sends a rectangle of the desktop as uncompressed bitmap updates.
    pub fn send_bitmap(&mut self, update: &BitmapUpdate<'_>) -> Result<(), Error> {
        self.send_bitmap_with(update, None)
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
    ) -> Result<(), Error> {
        self.send_bitmap_with(update, Some(damage))
    }

    fn send_bitmap_with(
        &mut self,
        update: &BitmapUpdate<'_>,
        damage: Option<&[Rectangle]>,
    ) -> Result<(), Error> {
        update.validate()?;
        if let Some(recorder) = &mut self.transport.recorder {
            if let Some(damage) = damage {
                recorder.damage(damage);
            }
            // Commands take no time argument; the replay does not need one.
            recorder.bitmap(Duration::ZERO, update);
        }
        let Phase::Active(session) = &mut self.phase else {
            return Err(Error::Misuse("graphics sent before the session is active"));
        };
        if session.is_reactivating() {
            return Err(Error::Misuse("graphics sent during a resize"));
        }
        session.send_bitmap(update, damage, &mut self.transport, &mut self.scratch)
    }

    /// Sends a new pointer shape (clipped to 96x96 unless the client takes
    /// large pointers) and shows it. Returns its cache slot for
    /// `PointerCommand::Cached`.
    pub fn send_pointer(&mut self, image: &PointerImage<'_>) -> Result<u16, Error> {
        image.validate()?;
        if let Some(recorder) = &mut self.transport.recorder {
            recorder.pointer(image);
        }
        let Phase::Active(session) = &mut self.phase else {
            return Err(Error::Misuse("pointer sent before the session is active"));
        };
        session.send_pointer(image, &mut self.transport)
    }

    /// Sends a legacy colour pointer (24-bit XOR and 1-bit AND masks, at
    /// most 96x96) and shows it. Returns its cache slot.
    pub fn send_color_pointer(&mut self, pointer: &ColorPointer<'_>) -> Result<u16, Error> {
        pointer.validate()?;
        if let Some(recorder) = &mut self.transport.recorder {
            recorder.color_pointer(pointer);
        }
        let Phase::Active(session) = &mut self.phase else {
            return Err(Error::Misuse("pointer sent before the session is active"));
        };
        session.send_color_pointer(pointer, &mut self.transport)
    }

    /// Moves, hides, resets or recalls the pointer.
    pub fn send_pointer_command(&mut self, command: PointerCommand) -> Result<(), Error> {
        if let Some(recorder) = &mut self.transport.recorder {
            recorder.pointer_command(command);
        }
        let Phase::Active(session) = &mut self.phase else {
            return Err(Error::Misuse("pointer sent before the session is active"));
        };
        session.send_pointer_command(command, &mut self.transport)
    }

    /// Changes the desktop size of an active session by
    /// deactivation-reactivation; `Event::Resized` follows when the client
    /// has caught up. Graphics sent before then are refused.
    pub fn resize(&mut self, size: crate::api::config::DesktopSize) -> Result<(), Error> {
        if let Some(recorder) = &mut self.transport.recorder {
            recorder.resize(size);
        }
        let Phase::Active(session) = &mut self.phase else {
            return Err(Error::Misuse("resize before the session is active"));
        };
        session.resize(size, &mut self.transport)
    }

    /// Overrides the codec the session picked: from now on graphics go out
    /// as `graphics`, which must be bitmaps or one of
    /// `SessionInfo::surface_codecs`. The whole desktop is sent again at
    /// once from the server's copy, in the new codec, so nothing the old
    /// codec still held back is lost; `session_info().graphics` tells what
    /// is in use.
    pub fn set_graphics(&mut self, graphics: Graphics) -> Result<(), Error> {
        if let Some(recorder) = &mut self.transport.recorder {
            recorder.graphics(graphics);
        }
        let Phase::Active(session) = &mut self.phase else {
            return Err(Error::Misuse(
                "graphics chosen before the session is active",
            ));
        };
        if session.is_reactivating() {
            return Err(Error::Misuse("graphics chosen during a resize"));
        }
        session.set_graphics(graphics, &mut self.transport, &mut self.scratch)
    }

    /// Whether a resize is under way (graphics wait for `Event::Resized`).
    pub fn is_reactivating(&self) -> bool {
        matches!(&self.phase, Phase::Active(session) if session.is_reactivating())
    }

    /// Measures the round-trip time to the client over the ECHO dynamic
    /// channel: returns the request's id; `Event::EchoRoundTrip` reports the
    /// time when the answer arrives. Requests made before the channel opens
    /// are sent when it does.
    pub fn request_echo(&mut self, now: Instant) -> Result<u32, Error> {
        let at = now.saturating_duration_since(self.created);
        if let Some(recorder) = &mut self.transport.recorder {
            recorder.echo(at);
        }
        let Phase::Active(session) = &mut self.phase else {
            return Err(Error::Misuse("echo requested before the session is active"));
        };
        session.request_echo(now, &mut self.transport)
    }

    /// Announces the server's clipboard formats to the client (the user
    /// copied on the server). Waits for the clipboard channel's setup when
    /// the client is not ready yet; a later offer replaces a waiting one.
    pub fn clipboard_offer(&mut self, formats: &[ClipboardFormat]) -> Result<(), Error> {
        self.command(ChannelCommand::ClipboardOffer(Cow::Borrowed(formats)))
            .map(drop)
    }

    /// Asks for the client's clipboard data in `format_id`, one of the
    /// formats of its last `ClipboardEvent::RemoteCopy`; the answer arrives
    /// as `ClipboardEvent::DataResponse`.
    pub fn clipboard_request(&mut self, format_id: u32) -> Result<(), Error> {
        self.command(ChannelCommand::ClipboardRequest(format_id))
            .map(drop)
    }

    /// Answers the client's oldest `ClipboardEvent::DataRequest`; `None`
    /// reports that the data is not available.
    pub fn clipboard_respond(&mut self, data: Option<&[u8]>) -> Result<(), Error> {
        self.command(ChannelCommand::ClipboardRespond(data))
            .map(drop)
    }

    /// Asks the client for part of a file it listed on its clipboard.
    pub fn clipboard_request_file_contents(
        &mut self,
        request: &FileContentsRequest,
    ) -> Result<(), Error> {
        self.command(ChannelCommand::ClipboardRequestFileContents(*request))
            .map(drop)
    }

    /// Answers `ClipboardEvent::FileContentsRequest` `stream_id`.
    pub fn clipboard_respond_file_contents(
        &mut self,
        stream_id: u32,
        data: Option<&[u8]>,
    ) -> Result<(), Error> {
        self.command(ChannelCommand::ClipboardRespondFileContents { stream_id, data })
            .map(drop)
    }

    /// Sends a message on one of the application's static channels
    /// (`Config::static_channels`) that the client joined.
    pub fn send_channel_data(&mut self, channel: &str, data: &[u8]) -> Result<(), Error> {
        self.command(ChannelCommand::SendChannelData { channel, data })
            .map(drop)
    }

    /// Opens a dynamic channel to the client's listener `name` with a
    /// priority from 0 (highest) to 3; returns its id.
    /// `Event::DynamicChannelOpened` follows, or `Event::DynamicChannelClosed`
    /// when the client has no such listener.
    pub fn open_dynamic_channel(&mut self, name: &str, priority: u8) -> Result<u32, Error> {
        self.command(ChannelCommand::OpenDynamic { name, priority })
    }

    /// Sends a message of any size on an open application dynamic channel.
    pub fn send_dynamic_channel_data(&mut self, id: u32, data: &[u8]) -> Result<(), Error> {
        self.command(ChannelCommand::SendDynamic { id, data })
            .map(drop)
    }

    pub fn close_dynamic_channel(&mut self, id: u32) -> Result<(), Error> {
        self.command(ChannelCommand::CloseDynamic(id)).map(drop)
    }

    /// Plays PCM (or whatever format was selected) samples on the client:
    /// one wave, a whole number of the format's blocks, stamped with the
    /// application's `timestamp_ms`. Refused while `SoundConfig::max_in_flight`
    /// waves await confirmation (`Event::Sound(WaveConfirmed)` frees one).
    pub fn send_sound(&mut self, samples: &[u8], timestamp_ms: u32) -> Result<(), Error> {
        self.command(ChannelCommand::SoundSamples {
            timestamp: timestamp_ms,
            data: samples,
        })
        .map(drop)
    }

    /// Picks the audio format, an index into the formats of
    /// `SoundEvent::Ready` (the first is used by default).
    pub fn select_sound_format(&mut self, index: usize) -> Result<(), Error> {
        let index =
            u32::try_from(index).map_err(|_| Error::Misuse("audio format index out of range"))?;
        self.command(ChannelCommand::SoundSelectFormat(index))
            .map(drop)
    }

    /// Sets the client's playback volume, 0 (silent) to 0xFFFF per channel.
    pub fn set_sound_volume(&mut self, left: u16, right: u16) -> Result<(), Error> {
        self.command(ChannelCommand::SoundVolume { left, right })
            .map(drop)
    }

    /// Records and runs a channel command; some return an id.
    pub(crate) fn command(&mut self, command: ChannelCommand<'_>) -> Result<u32, Error> {
        if let Some(recorder) = &mut self.transport.recorder {
            recorder.command(&command);
        }
        let Phase::Active(session) = &mut self.phase else {
            return Err(Error::Misuse(
                "channel command before the session is active",
            ));
        };
        session.channels().run(command, &mut self.transport)
    }

    /// Ends the session: tells the client why (Set Error Info) and disconnects.
    pub fn close(&mut self) {
        if self.is_closed() {
            return;
        }
        if let Some(recorder) = &mut self.transport.recorder {
            recorder.close(Duration::ZERO);
        }
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
        if let Some(recorder) = &mut self.transport.recorder {
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
        self.transport.recorder.as_mut()?.drain(buf, closed)
    }

    /// Replay only: the verdict of the next Client Info password check.
    pub(crate) fn push_replayed_verdict(&mut self, accepted: bool) {
        self.transport.replayed_verdicts.push_back(accepted);
    }

    /// When `handle_timeout` must be called next, and why.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<(Instant, &'static str)> {
        match self.phase {
            Phase::Handshake(_) => Some((self.handshake_deadline, "handshake deadline")),
            _ => None,
        }
    }

    // ----- internals -----

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
            if let Some(recorder) = &mut self.transport.recorder {
                recorder.frame(at, &self.scratch);
            }
            let frame = std::mem::take(&mut self.scratch);
            let result = self.process_frame(now, kind, &frame);
            self.scratch = frame;
            result?;
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
                match handshake.process_frame(frame, now, &self.config, &mut self.transport)? {
                    HandshakeOutcome::Continue => {}
                    HandshakeOutcome::Rejected(error) => {
                        self.finish(CloseReason::Error(error));
                    }
                    HandshakeOutcome::ClientDisconnected => {
                        self.finish(CloseReason::ClientRequested);
                    }
                    HandshakeOutcome::Finished => {
                        let Phase::Handshake(handshake) =
                            std::mem::replace(&mut self.phase, Phase::Closed)
                        else {
                            unreachable!("matched above");
                        };
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
