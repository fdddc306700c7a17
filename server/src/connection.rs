//! One client: drives an [`Engine`] over a runtime's TCP stream.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::FutureExt;
use rdpserve_core::clipboard::ClipboardEvent;
use rdpserve_core::input::InputEvent;
use rdpserve_core::sound::SoundEvent;
use rdpserve_core::{CloseReason, Config, Engine, Event, PointerCommand};
use tracing::{debug, info, warn};

use crate::admission::Ticket;
use crate::app_channels::{AppChannels, ChannelSpec};
use crate::blocking::{Callbacks, lend, with_engine};
use crate::clipboard::{ClipboardCommand, ClipboardHandle, CliprdrBackend};
use crate::echo::{ConnectionId, EchoHandle, EchoMeasurement, Request};
use crate::handlers::{
    DisplayUpdate, InputHandlerFactory, RdpServerDisplay, RdpServerDisplayUpdates,
    RdpServerInputHandler, SessionEvent, SessionObserver,
};
use crate::runtime::Runtime;
use crate::server::Shared;
use crate::sound::{RdpsndServerHandler, SoundCommand, SoundHandle};
use crate::stop::StopHandle;

const READ_BUFFER: usize = 16 * 1024;
/// The largest transmit buffer kept between writes.
const KEEP_TRANSMIT: usize = 256 * 1024;

/// The application's backends for one connection's channels.
pub(crate) struct ChannelBackends {
    pub clipboard: Option<Box<dyn CliprdrBackend>>,
    pub sound: Option<Box<dyn RdpsndServerHandler>>,
    /// The application's own channels.
    pub application: Vec<Arc<ChannelSpec>>,
}

/// What woke the connection up.
enum Wake {
    AppChannels,
    Clipboard,
    Sound,
    Read(io::Result<usize>),
    Timeout,
    Update(Option<DisplayUpdate>),
    Echo,
    Stop,
}

/// Everything a connection task gets from the listener besides its socket.
pub(crate) struct ConnectionSetup {
    pub id: ConnectionId,
    pub config: Config,
    pub stop: StopHandle,
    pub echo: EchoHandle,
    pub observer: Option<SessionObserver>,
    /// Where to record the session, if recording is on.
    pub recording: Option<std::path::PathBuf>,
    pub backends: ChannelBackends,
    /// The connection's place under the server's caps.
    pub ticket: Ticket,
    pub peer: SocketAddr,
    /// How long one socket write may take.
    pub write_timeout: Duration,
}

/// Writes `bytes`, or fails with `TimedOut` when the client does not take
/// them by `deadline`: a client that stops reading must not hold its task
/// (and its slot) forever.
async fn write_by<R: Runtime>(
    stream: &mut R::Stream,
    bytes: &[u8],
    deadline: Instant,
) -> io::Result<()> {
    R::write_all(stream, bytes)
        .or(async {
            R::sleep_until(deadline).await;
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            ))
        })
        .await
}

pub(crate) async fn serve<R: Runtime, I: InputHandlerFactory, D: RdpServerDisplay>(
    mut stream: R::Stream,
    shared: Arc<Shared<I, D>>,
    setup: ConnectionSetup,
) -> io::Result<()> {
    let ConnectionSetup {
        id,
        config,
        stop,
        echo,
        observer,
        recording,
        mut backends,
        mut ticket,
        peer,
        write_timeout,
    } = setup;
    let clipboard = ClipboardHandle::default();
    let sound = SoundHandle::new(config.sound.as_ref().map_or(1, |sound| sound.max_in_flight));
    // Recordings go to a local file; writes are small and buffered, so the
    // blocking file API is acceptable inside the task.
    let mut recording = match recording {
        Some(path) => Some(io::BufWriter::new(std::fs::File::create(path)?)),
        None => None,
    };
    let mut recorded = Vec::new();
    let notify = |event: SessionEvent| {
        if let Some(observer) = &observer {
            observer(&event);
        }
    };
    let mut app_channels = AppChannels::new(id, &backends.application, config.max_channel_message);
    let app_channels_wakeup = app_channels.wakeup();
    let connected_at = Instant::now();
    // Boxed, to be lent to blocking threads for the work that encodes.
    let mut engine = Box::new(Engine::new(config, fresh_seed(), connected_at));
    let input = Callbacks::new(shared.input.build_input_handler(id));
    let mut read_buffer = vec![0u8; READ_BUFFER];
    let mut transmit = Vec::new();
    let mut updates: Option<D::Updates> = None;
    let mut output_allowed = true;
    let mut first_frame_logged = false;
    // An application's H.264 picture the client had no room for yet: it
    // goes after the next acknowledgement, and no update is pulled before.
    let mut held_avc420: Option<crate::handlers::Avc420Update> = None;
    // Echo requests for this connection; those made before the session is
    // active wait here.
    let echo_inbox = echo.register(id);
    let mut echoes_waiting: Vec<Vec<u8>> = Vec::new();
    notify(SessionEvent::Connected {
        connection: id,
        peer,
    });
    // The pipeline's figures as of the last pass, for the application once
    // the session is over (the engine forgets them when it closes).
    let mut pipeline_stats = None;
    loop {
        if let Some(stats) = engine.pipeline_stats() {
            pipeline_stats = Some(stats);
        }
        // Drain in the order the engine documents: bytes, then events. The
        // socket write completes before the next update is pulled, which is
        // the backpressure on the application.
        // Before logon the handshake deadline bounds a write too.
        let write_deadline = match engine.poll_timeout() {
            Some((at, _)) if !engine.is_active() => at.min(Instant::now() + write_timeout),
            _ => Instant::now() + write_timeout,
        };
        while engine.poll_transmit(&mut transmit).is_some() {
            if let Err(error) = write_by::<R>(&mut stream, &transmit, write_deadline).await {
                if error.kind() == io::ErrorKind::TimedOut {
                    warn!(%error, "Closing a connection whose writes stalled");
                    echo_inbox.close();
                    notify(SessionEvent::Closed {
                        connection: id,
                        reason: CloseReason::Error(rdpserve_core::Error::TimedOut("write")),
                    });
                    return Err(error);
                }
                // The peer is gone (reset, broken pipe): the session ends as
                // when it closes the socket, so the application hears of it
                // (SessionEvent::Closed) and the channels' handles close.
                debug!(%error, "Socket write failed");
                engine.handle_eof(Instant::now());
                transmit.clear();
                break;
            }
            transmit.clear();
            // A whole frame can be megabytes; keeping that much per idle
            // session would multiply by the sessions. The engine gets this
            // buffer back in the next swap, so drop an oversized one.
            if transmit.capacity() > KEEP_TRANSMIT {
                transmit = Vec::new();
            }
        }
        let mut events = Vec::new();
        while let Some(event) = engine.poll_event() {
            events.push(event);
        }
        if let Some(file) = &mut recording {
            use std::io::Write;
            while engine.poll_recording(&mut recorded).is_some() {
                file.write_all(&recorded)?;
                recorded.clear();
            }
            if engine.is_closed() {
                file.flush()?;
            }
        }
        for event in events {
            match event {
                Event::Activated(info) => {
                    if let Err(refusal) = ticket.promote() {
                        warn!(user = %info.user_name, reason = %refusal, "Session refused after logon");
                        engine.close();
                        continue;
                    }
                    info!(user = %info.user_name, client = %info.client_name, elapsed_ms = connected_at.elapsed().as_millis(), "Session active");
                    notify(SessionEvent::Activated {
                        connection: id,
                        info,
                    });
                    for payload in echoes_waiting.drain(..) {
                        request_echo(&mut engine, &payload);
                    }
                    // Channel handlers may block, as the clipboard's do: this
                    // connection waits for them on a blocking thread.
                    ((engine, app_channels), ()) =
                        lend::<R, _, _>((engine, app_channels), |(engine, channels)| {
                            channels.activated(&mut **engine)
                        })
                        .await;
                    updates = Some(shared.display.updates().await?);
                }
                Event::Input(event) => {
                    input.call::<R>(move |handler| dispatch_input(handler, event))
                }
                Event::SuppressOutput {
                    allow_display_updates,
                } => {
                    output_allowed = allow_display_updates;
                    if let Some(updates) = &mut updates {
                        updates.suppress_output(allow_display_updates);
                    }
                }
                Event::RefreshRect(areas) => {
                    if let Some(updates) = &mut updates {
                        updates.refresh(&areas);
                    }
                }
                Event::MonitorLayout(monitors) => {
                    debug!(?monitors, "Monitor layout requested");
                    if let Some(updates) = &mut updates {
                        updates.request_layout(&monitors);
                    }
                }
                Event::Resized(size) => {
                    debug!(?size, "Session resized");
                    notify(SessionEvent::Resized {
                        connection: id,
                        size,
                    });
                }
                Event::GraphicsChanged(graphics) => {
                    debug!(?graphics, "Graphics path changed by the client");
                    notify(SessionEvent::GraphicsChanged {
                        connection: id,
                        graphics,
                    });
                }
                // The channels' callbacks may block: this connection waits
                // for them on a blocking thread, no other one does.
                Event::Clipboard(event) => {
                    let handle = clipboard.clone();
                    (backends.clipboard, ()) =
                        lend::<R, _, _>(backends.clipboard, move |backend| {
                            if let Some(backend) = backend {
                                dispatch_clipboard(backend.as_mut(), event, &handle);
                            }
                        })
                        .await;
                }
                Event::Sound(event) => {
                    let handle = sound.clone();
                    let format;
                    (backends.sound, format) = lend::<R, _, _>(backends.sound, move |handler| {
                        dispatch_sound(handler.as_mut()?.as_mut(), event, &handle)
                    })
                    .await;
                    if let Some(index) = format
                        && let Err(error) = engine.select_sound_format(index)
                    {
                        warn!(%error, "Audio format not selected");
                    }
                }
                Event::EchoRoundTrip {
                    round_trip,
                    payload,
                    ..
                } => {
                    debug!(?round_trip, "Echo round trip");
                    let measurement = EchoMeasurement {
                        connection: id,
                        payload,
                        round_trip,
                    };
                    echo.keep(measurement.clone());
                    notify(SessionEvent::EchoRoundTrip(measurement));
                }
                Event::Closed { reason } => {
                    if let CloseReason::Error(rdpserve_core::Error::AuthenticationFailed) = reason {
                        // The user and the reason were logged by the engine.
                        warn!("Logon failed");
                        ticket.record_failure(peer.ip());
                    }
                    debug!(?reason, "Session closed");
                    if let Some(handler) = backends.sound.take() {
                        lend::<R, _, _>(handler, |handler| handler.stop()).await;
                    }
                    echo_inbox.close();
                    lend::<R, _, _>(app_channels, |channels| channels.shutdown()).await;
                    if let Some(stats) = pipeline_stats {
                        notify(SessionEvent::PipelineStats {
                            connection: id,
                            stats,
                        });
                    }
                    notify(SessionEvent::Closed {
                        connection: id,
                        reason,
                    });
                    // The goodbye gets a short while; a client that does not
                    // read it loses nothing.
                    let deadline = Instant::now() + write_timeout.min(Duration::from_secs(5));
                    while engine.poll_transmit(&mut transmit).is_some() {
                        write_by::<R>(&mut stream, &transmit, deadline).await?;
                        transmit.clear();
                    }
                    R::shutdown(&mut stream).await;
                    return Ok(());
                }
                Event::Routing(routing) => {
                    // The router may block (a directory lookup): on a
                    // blocking thread, it holds up only this connection.
                    let router = shared.router.clone();
                    (engine, ()) = with_engine::<R, _>(engine, move |engine| {
                        crate::routing::decide(engine, router.as_ref(), id, &routing)
                    })
                    .await;
                }
                Event::ChannelClosed { channel, error } => {
                    // The engine already stopped serving it; the session goes on.
                    warn!(%channel, %error, "Client broke a channel; it is closed");
                    (app_channels, ()) = lend::<R, _, _>(app_channels, move |channels| {
                        channels.channel_broken(&channel, &error)
                    })
                    .await;
                }
                event @ (Event::ChannelData { .. }
                | Event::DynamicChannelOpened { .. }
                | Event::DynamicChannelData { .. }
                | Event::DynamicChannelClosed { .. }) => {
                    (app_channels, ()) =
                        lend::<R, _, _>(app_channels, move |channels| channels.handle_event(event))
                            .await;
                }
                other => debug!(event = ?other, "Unhandled event"),
            }
        }
        // A handler above (a routing decision) may have queued bytes or
        // closed the engine: those go out before waiting for anything.
        if engine.pending_transmit() > 0 || engine.is_closed() {
            continue;
        }
        let deadline = engine.poll_timeout().map(|(at, _)| at);
        // During a resize the client cannot take graphics; updates wait.
        let pull_updates = output_allowed
            && updates.is_some()
            && !engine.is_reactivating()
            && held_avc420.is_none();
        let wake = async { Wake::Read(R::read(&mut stream, &mut read_buffer).await) }
            .or(async {
                match deadline {
                    Some(at) => R::sleep_until(at).await,
                    None => std::future::pending().await,
                }
                Wake::Timeout
            })
            .or(async {
                match (&mut updates, pull_updates) {
                    (Some(updates), true) => Wake::Update(updates.next_update().await),
                    _ => std::future::pending().await,
                }
            })
            .or(async {
                echo_inbox.mailbox().wait().await;
                Wake::Echo
            })
            .or(async {
                clipboard.mailbox().wait().await;
                Wake::Clipboard
            })
            .or(async {
                sound.mailbox().wait().await;
                Wake::Sound
            })
            .or(async {
                app_channels_wakeup.wait().await;
                Wake::AppChannels
            })
            .or(async {
                stop.stopped().await;
                Wake::Stop
            })
            .await;
        // Anything read may be the acknowledgement a held picture waits for.
        let read_input = matches!(wake, Wake::Read(Ok(n)) if n > 0);
        match wake {
            Wake::Read(read) => match read.unwrap_or_else(|error| {
                // A reset socket ends the session as a closed one does: the
                // application hears of it (SessionEvent::Closed).
                debug!(%error, "Socket read failed");
                0
            }) {
                0 => engine.handle_eof(Instant::now()),
                // Input is cheap, unless it completes the handshake's
                // cryptography or acknowledges a frame and so releases the
                // tiles held back: then it goes to a blocking thread.
                n if engine.is_active() && !engine.holds_frame_back() => {
                    engine.handle_input(Instant::now(), &read_buffer[..n]);
                }
                n => {
                    let (now, bytes) = (Instant::now(), std::mem::take(&mut read_buffer));
                    (engine, read_buffer) = with_engine::<R, _>(engine, move |engine| {
                        engine.handle_input(now, &bytes[..n]);
                        bytes
                    })
                    .await;
                }
            },
            Wake::Timeout => engine.handle_timeout(Instant::now()),
            Wake::Update(Some(DisplayUpdate::Avc420(update))) => {
                held_avc420 = send_avc420(&mut engine, update);
            }
            Wake::AppChannels => app_channels.run_commands(&mut *engine),
            Wake::Sound => {
                for command in sound.mailbox().take_all() {
                    let result = match command {
                        SoundCommand::Samples { data, timestamp_ms } => {
                            let result = engine.send_sound(&data, timestamp_ms);
                            if result.is_err() {
                                // The wave never left: it no longer counts.
                                sound.release();
                            }
                            result
                        }
                        SoundCommand::Volume { left, right } => {
                            engine.set_sound_volume(left, right)
                        }
                    };
                    if let Err(error) = result {
                        warn!(%error, "Audio command rejected");
                    }
                }
            }
            Wake::Clipboard => {
                for command in clipboard.mailbox().take_all() {
                    if let Err(error) = run_clipboard_command(&mut engine, command) {
                        warn!(%error, "Clipboard command rejected");
                    }
                }
            }
            Wake::Echo => {
                for request in echo_inbox.mailbox().take_all() {
                    match request {
                        Request::Echo(payload) if engine.is_active() => {
                            request_echo(&mut engine, &payload);
                        }
                        Request::Echo(payload) => echoes_waiting.push(payload),
                        Request::Redirect(redirection) => crate::routing::redirect_now(
                            &mut engine,
                            shared.router.as_ref(),
                            id,
                            &redirection,
                        ),
                    }
                }
            }
            Wake::Update(Some(DisplayUpdate::RgbaPointer(pointer))) => {
                let image = rdpserve_core::PointerImage {
                    width: pointer.width,
                    height: pointer.height,
                    hotspot_x: pointer.hotspot_x,
                    hotspot_y: pointer.hotspot_y,
                    cache_index: pointer.cache_index,
                    rgba: &pointer.data,
                };
                match engine.send_pointer(&image) {
                    Ok(slot) => debug!(slot, "Pointer sent"),
                    Err(error) => warn!(%error, "Pointer update rejected"),
                }
            }
            Wake::Update(Some(DisplayUpdate::ColorPointer(shape))) => {
                let pointer = rdpserve_core::ColorPointer {
                    width: shape.width,
                    height: shape.height,
                    hotspot_x: shape.hotspot_x,
                    hotspot_y: shape.hotspot_y,
                    cache_index: shape.cache_index,
                    xor_bgr: &shape.xor_bgr,
                    and_mask: &shape.and_mask,
                };
                match engine.send_color_pointer(&pointer) {
                    Ok(slot) => debug!(slot, "Colour pointer sent"),
                    Err(error) => warn!(%error, "Pointer update rejected"),
                }
            }
            Wake::Update(Some(
                update @ (DisplayUpdate::PointerPosition { .. }
                | DisplayUpdate::HidePointer
                | DisplayUpdate::DefaultPointer
                | DisplayUpdate::CachedPointer(_)),
            )) => {
                let command = match update {
                    DisplayUpdate::PointerPosition { x, y } => PointerCommand::Position { x, y },
                    DisplayUpdate::HidePointer => PointerCommand::Hidden,
                    DisplayUpdate::CachedPointer(slot) => PointerCommand::Cached(slot),
                    _ => PointerCommand::Default,
                };
                if let Err(error) = engine.send_pointer_command(command) {
                    warn!(%error, "Pointer update rejected");
                }
            }
            // These encode pixels: on a blocking thread.
            Wake::Update(Some(DisplayUpdate::Resize(size))) => {
                let resized;
                (engine, resized) = with_engine::<R, _>(engine, move |e| e.resize(size)).await;
                if let Err(error) = resized {
                    warn!(%error, "Resize rejected");
                }
            }
            Wake::Update(Some(DisplayUpdate::Graphics(graphics))) => {
                let set;
                (engine, set) =
                    with_engine::<R, _>(engine, move |e| e.set_graphics(graphics)).await;
                if let Err(error) = set {
                    warn!(%error, "Graphics change rejected");
                }
            }
            Wake::Update(Some(DisplayUpdate::Bitmap(bitmap))) => {
                let sent;
                (engine, sent) =
                    with_engine::<R, _>(engine, move |e| e.send_bitmap(&bitmap.as_core())).await;
                log_frame(sent, &mut first_frame_logged, connected_at);
            }
            Wake::Update(Some(DisplayUpdate::DamagedBitmap { bitmap, damage })) => {
                let sent;
                (engine, sent) = with_engine::<R, _>(engine, move |e| {
                    e.send_bitmap_damaged(&bitmap.as_core(), &damage)
                })
                .await;
                log_frame(sent, &mut first_frame_logged, connected_at);
            }
            Wake::Update(None) | Wake::Stop => engine.close(),
        }
        if read_input && let Some(update) = held_avc420.take() {
            held_avc420 = send_avc420(&mut engine, update);
        }
    }
}

/// Asks the client for an echo of `payload`; a client without the ECHO
/// channel cannot answer, which is no fault of the connection.
fn request_echo(engine: &mut Engine, payload: &[u8]) {
    match engine.request_echo(Instant::now(), payload) {
        Ok(_) => {}
        Err(error @ rdpserve_core::CommandError::EchoPayloadTooLarge { .. }) => {
            warn!(%error, "Echo request refused");
        }
        Err(error) => debug!(%error, "Echo request not sent"),
    }
}

/// Logs a rejected display update, or the time to the first frame.
fn log_frame(
    sent: Result<(), rdpserve_core::CommandError>,
    first_frame_logged: &mut bool,
    connected_at: Instant,
) {
    if let Err(error) = sent {
        warn!(%error, "Display update rejected");
    } else if !*first_frame_logged {
        *first_frame_logged = true;
        info!(
            elapsed_ms = connected_at.elapsed().as_millis(),
            "First frame sent"
        );
    }
}

fn dispatch_clipboard(
    backend: &mut dyn CliprdrBackend,
    event: ClipboardEvent,
    handle: &ClipboardHandle,
) {
    match event {
        ClipboardEvent::Ready => backend.on_ready(handle),
        ClipboardEvent::RemoteCopy(formats) => backend.on_remote_copy(&formats, handle),
        ClipboardEvent::DataRequest { format_id } => {
            backend.on_format_data_request(format_id, handle)
        }
        ClipboardEvent::DataResponse { format_id, data } => {
            backend.on_format_data_response(format_id, data.as_deref());
        }
        ClipboardEvent::FileContentsRequest(request) => {
            backend.on_file_contents_request(&request, handle);
        }
        ClipboardEvent::FileContentsResponse { stream_id, data } => {
            backend.on_file_contents_response(stream_id, data.as_deref());
        }
        ClipboardEvent::Lock { clip_data_id } => backend.on_lock(clip_data_id),
        ClipboardEvent::Unlock { clip_data_id } => backend.on_unlock(clip_data_id),
        other => debug!(event = ?other, "Unhandled clipboard event"),
    }
}

/// Calls the sound handler; returns the format it chose to start in.
fn dispatch_sound(
    handler: &mut dyn RdpsndServerHandler,
    event: SoundEvent,
    sound: &SoundHandle,
) -> Option<usize> {
    match event {
        SoundEvent::Ready { formats, version } => {
            debug!(version, formats = formats.len(), "Audio output ready");
            if formats.is_empty() {
                return None;
            }
            let chosen = handler.start(&formats, sound);
            if chosen.is_none() {
                debug!("Application keeps audio off");
            }
            chosen
        }
        SoundEvent::WaveConfirmed { timestamp, block } => {
            sound.release();
            handler.wave_confirmed(timestamp, block);
            None
        }
    }
}

fn run_clipboard_command(
    engine: &mut Engine,
    command: ClipboardCommand,
) -> Result<(), rdpserve_core::CommandError> {
    match command {
        ClipboardCommand::Offer(formats) => engine.clipboard_offer(&formats),
        ClipboardCommand::Request(format_id) => engine.clipboard_request(format_id),
        ClipboardCommand::Respond(data) => engine.clipboard_respond(data.as_deref()),
        ClipboardCommand::RequestFileContents(request) => {
            engine.clipboard_request_file_contents(&request)
        }
        ClipboardCommand::RespondFileContents { stream_id, data } => {
            engine.clipboard_respond_file_contents(stream_id, data.as_deref())
        }
    }
}

fn dispatch_input(handler: &mut Box<dyn RdpServerInputHandler>, input: InputEvent) {
    match input {
        InputEvent::Keyboard(event) => handler.keyboard(event),
        InputEvent::Mouse(event) => handler.mouse(event),
    }
}

/// The engine's seed: the adapter side is where OS randomness may be read.
fn fresh_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    let random = rustls::crypto::ring::default_provider().secure_random;
    if random.fill(&mut seed).is_err() {
        // The seed feeds identifiers and the NTLM challenge; a time-based
        // fallback keeps the server up on a machine whose RNG failed.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default();
        seed[..16].copy_from_slice(&nanos.to_le_bytes());
    }
    seed
}

/// Sends the application's H.264 picture; returns it when the client has
/// no room for another frame yet (it goes after an acknowledgement).
fn send_avc420(
    engine: &mut rdpserve_core::Engine,
    update: crate::handlers::Avc420Update,
) -> Option<crate::handlers::Avc420Update> {
    let frame = rdpserve_core::Avc420Frame {
        stream: std::borrow::Cow::Borrowed(&update.stream),
        regions: std::borrow::Cow::Borrowed(&update.regions),
    };
    match engine.send_avc420(&frame) {
        Ok(()) => None,
        Err(rdpserve_core::CommandError::FramesInFlight) => Some(update),
        Err(error) => {
            warn!(%error, "H.264 picture rejected");
            None
        }
    }
}
