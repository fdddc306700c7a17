//! Virtual channels of an active session: static channel reassembly and
//! routing by channel id to a small handler each (clipboard, sound, the
//! application's own channels, the dynamic channel host), with the
//! "drdynvc" host routing dynamic channels by id in turn (ECHO, Display
//! Control, the application's dynamic channels).
//!
//! Imports: `wire`, `api`, `transport`, `graphics` (the Graphics
//! Pipeline's PDUs).

pub(crate) mod cliprdr;
pub(crate) mod display_control;
pub(crate) mod dvc;
pub(crate) mod dvc_host;
pub(crate) mod echo;
pub(crate) mod rdpsnd;
pub(crate) mod svc;

use std::collections::VecDeque;
use std::time::Instant;

use tracing::{trace, warn};

use crate::api::clipboard::ClipboardError;
use crate::api::command::{Applied, ChannelCommand};
use crate::api::config::SoundConfig;
use crate::api::error::{ChannelKind, CommandError, Error};
use crate::api::event::Event;
use crate::api::sound::SoundError;
use crate::graphics::egfx::pdu::ClientPdu;
use crate::transport::Transport;
use crate::transport::io_channel;
use crate::wire::error::DecodeError;
use cliprdr::ClipboardServer;
use dvc_host::DvcHost;
use rdpsnd::SoundServer;
use svc::Reassembler;

const DRDYNVC: &str = "drdynvc";

/// What serves a static channel's messages.
#[derive(Debug)]
enum StaticHandler {
    /// The dynamic channel host.
    Drdynvc(DvcHost),
    Clipboard(ClipboardServer),
    Sound(SoundServer),
    /// One the application registered: messages become events.
    Application,
    /// Joined by the client but not served: messages are dropped.
    Unserved,
}

#[derive(Debug)]
struct StaticChannel {
    id: u16,
    name: String,
    reassembler: Reassembler,
    handler: StaticHandler,
}

#[derive(Debug)]
pub(crate) struct Channels {
    statics: Vec<StaticChannel>,
    /// The first instant the channels saw: audio timestamps count from it.
    epoch: Option<Instant>,
    /// Chunk size for server-to-client static channel data.
    chunk_size: usize,
    /// Largest reassembled channel message accepted.
    limit: usize,
    /// Most bytes all the session's reassembly buffers may hold together.
    budget: usize,
}

/// Which channels the application serves (from the configuration).
#[derive(Debug, Clone, Default)]
pub(crate) struct ChannelSetup {
    pub clipboard: bool,
    pub sound: Option<SoundConfig>,
    /// Names of the application's static channels.
    pub application: Vec<String>,
    /// Open the Graphics Pipeline's dynamic channel.
    pub graphics: bool,
}

impl Channels {
    pub fn new(
        statics: Vec<(u16, String)>,
        setup: &ChannelSetup,
        chunk_size: usize,
        limit: usize,
        budget: usize,
    ) -> Self {
        let served = |name: &str| -> StaticHandler {
            if name.eq_ignore_ascii_case(DRDYNVC) {
                StaticHandler::Drdynvc(DvcHost::new(limit, chunk_size, setup.graphics))
            } else if setup.clipboard && name.eq_ignore_ascii_case(cliprdr::CHANNEL_NAME) {
                StaticHandler::Clipboard(ClipboardServer::new())
            } else if let Some(sound) = setup
                .sound
                .as_ref()
                .filter(|_| name.eq_ignore_ascii_case(rdpsnd::CHANNEL_NAME))
            {
                StaticHandler::Sound(SoundServer::new(sound.formats.clone(), sound.max_in_flight))
            } else if setup
                .application
                .iter()
                .any(|wanted| wanted.eq_ignore_ascii_case(name))
            {
                StaticHandler::Application
            } else {
                StaticHandler::Unserved
            }
        };
        let mut channels: Vec<StaticChannel> = Vec::with_capacity(statics.len());
        for (id, name) in statics {
            // One server per kind: a second channel of the same name is not served.
            let mut handler = served(&name);
            let taken = channels.iter().any(|channel| {
                std::mem::discriminant(&channel.handler) == std::mem::discriminant(&handler)
                    && !matches!(
                        channel.handler,
                        StaticHandler::Application | StaticHandler::Unserved
                    )
            });
            if taken {
                handler = StaticHandler::Unserved;
            }
            channels.push(StaticChannel {
                id,
                name,
                reassembler: Reassembler::default(),
                handler,
            });
        }
        Self {
            statics: channels,
            epoch: None,
            chunk_size,
            limit,
            budget,
        }
    }

    /// Starts the channels' protocols once the session is active.
    pub fn start(&mut self, transport: &mut Transport) -> Result<(), Error> {
        // The dynamic channel host first, then clipboard, then sound.
        for kind in 0..3 {
            for channel in &mut self.statics {
                let mut out = Vec::new();
                match (&mut channel.handler, kind) {
                    (StaticHandler::Drdynvc(host), 0) => host.start(&mut out),
                    (StaticHandler::Clipboard(clipboard), 1) => clipboard.start(&mut out),
                    (StaticHandler::Sound(sound), 2) => sound.start(&mut out),
                    _ => continue,
                }
                send_messages(transport, channel.id, self.chunk_size, out)?;
            }
        }
        Ok(())
    }

    /// Bytes all channel reassembly buffers hold.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.statics
            .iter()
            .map(|channel| {
                channel.reassembler.held()
                    + match &channel.handler {
                        StaticHandler::Drdynvc(host) => host.held(),
                        _ => 0,
                    }
            })
            .sum()
    }

    /// Whether `name` is one of the application's static channels that the
    /// client joined and that is still served (not closed for a malformed
    /// message).
    pub fn serves_application(&self, name: &str) -> bool {
        self.statics.iter().any(|channel| {
            matches!(channel.handler, StaticHandler::Application)
                && channel.name.eq_ignore_ascii_case(name)
        })
    }

    pub fn is_static(&self, channel_id: u16) -> bool {
        self.statics.iter().any(|channel| channel.id == channel_id)
    }

    /// One chunk of static channel data from the client.
    pub fn receive(
        &mut self,
        channel_id: u16,
        chunk: &[u8],
        now: Instant,
        transport: &mut Transport,
        events: &mut VecDeque<Event>,
    ) -> Result<(), Error> {
        let limit = self.limit;
        // What every channel holds, before this chunk adds to it.
        let held: usize = self
            .statics
            .iter()
            .map(|channel| {
                channel.reassembler.held()
                    + match &channel.handler {
                        StaticHandler::Drdynvc(host) => host.held(),
                        _ => 0,
                    }
            })
            .sum();
        let over_budget = held + chunk.len() > self.budget;
        let budget = self.budget;
        let Some(channel) = self
            .statics
            .iter_mut()
            .find(|channel| channel.id == channel_id)
        else {
            return Err(Error::UnexpectedPdu("data on an unknown static channel"));
        };
        if let StaticHandler::Unserved = channel.handler {
            // Nothing serves it, so nothing is reassembled or kept.
            trace!(name = %channel.name, len = chunk.len(), "Dropping static channel data");
            return Ok(());
        }
        let mut out = Vec::new();
        let result = if over_budget {
            // One session cannot pin more than its budget across all its
            // channels, however many it declares.
            Err(Error::Protocol(DecodeError::TooLarge {
                context: "session channel buffers",
                size: held + chunk.len(),
                limit: budget,
            }))
        } else {
            handle_chunk(
                channel,
                chunk,
                limit,
                now,
                &mut self.epoch,
                &mut out,
                events,
            )
        };
        match result {
            Ok(()) => send_messages(transport, channel_id, self.chunk_size, out),
            Err(error) => {
                // A channel's malformed or out-of-order message ends that
                // channel, not the session: the server stops serving it
                // (and frees what it held) and the application is told.
                warn!(channel = %channel.name, %error, "Closing a static channel");
                channel.handler = StaticHandler::Unserved;
                channel.reassembler = Reassembler::default();
                events.push_back(Event::ChannelClosed {
                    channel: channel.name.clone(),
                    error,
                });
                Ok(())
            }
        }
    }

    /// Runs an application command.
    pub fn run(
        &mut self,
        command: ChannelCommand<'_>,
        transport: &mut Transport,
    ) -> Result<Applied, CommandError> {
        match command {
            ChannelCommand::SendChannelData { channel, data } => {
                let id = self
                    .statics
                    .iter()
                    .find(|candidate| {
                        matches!(candidate.handler, StaticHandler::Application)
                            && candidate.name.eq_ignore_ascii_case(channel)
                    })
                    .map(|candidate| candidate.id)
                    .ok_or(CommandError::UnknownStaticChannel)?;
                send_chunked(transport, id, data, self.chunk_size, 0)?;
            }
            ChannelCommand::OpenDynamic { name, priority } => {
                let id = self.dvc_step(transport, |host, out| host.open(name, priority, out))?;
                return Ok(Applied::DynamicChannel(id));
            }
            ChannelCommand::SendDynamic { id, data } => {
                self.dvc_step(transport, |host, out| host.send(id, data, out))?;
            }
            ChannelCommand::CloseDynamic(id) => {
                self.dvc_step(transport, |host, out| host.close(id, out))?;
            }
            ChannelCommand::ClipboardOffer(formats) => {
                self.clipboard_step(transport, |server, out| {
                    server.offer(&formats, out);
                    Ok(())
                })?;
            }
            ChannelCommand::ClipboardRequest(format_id) => {
                self.clipboard_step(transport, |server, out| server.request(format_id, out))?;
            }
            ChannelCommand::ClipboardRespond(data) => {
                self.clipboard_step(transport, |server, out| server.respond(data, out))?;
            }
            ChannelCommand::ClipboardRequestFileContents(request) => {
                self.clipboard_step(transport, |server, out| {
                    server.request_file_contents(&request, out)
                })?;
            }
            ChannelCommand::ClipboardRespondFileContents { stream_id, data } => {
                self.clipboard_step(transport, |server, out| {
                    server.respond_file_contents(stream_id, data, out)
                })?;
            }
            ChannelCommand::SoundSamples { timestamp, data } => {
                self.sound_step(transport, |server, out| {
                    server.send_samples(data, timestamp, out)
                })?;
            }
            ChannelCommand::SoundVolume { left, right } => {
                self.sound_step(transport, |server, out| server.set_volume(left, right, out))?;
            }
            ChannelCommand::SoundSelectFormat(index) => {
                self.sound_step(transport, |server, _| server.select_format(index as usize))?;
            }
        }
        Ok(Applied::Done)
    }

    /// The Graphics Pipeline PDUs the client sent since the last call, and
    /// whether its channel is gone.
    pub fn take_graphics(&mut self) -> (Vec<ClientPdu>, bool) {
        self.statics
            .iter_mut()
            .find_map(|channel| match &mut channel.handler {
                StaticHandler::Drdynvc(host) => Some(host.take_graphics()),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// Sends Graphics Pipeline messages (each RDP_SEGMENTED_DATA).
    pub fn send_graphics(
        &mut self,
        messages: &[Vec<u8>],
        transport: &mut Transport,
    ) -> Result<(), CommandError> {
        self.dvc_step(transport, |host, out| {
            messages
                .iter()
                .try_for_each(|message| host.send_graphics(message, out))
        })
    }

    /// Queues an echo request carrying `payload`; returns its id.
    pub fn request_echo(
        &mut self,
        now: Instant,
        payload: &[u8],
        transport: &mut Transport,
    ) -> Result<u32, CommandError> {
        self.dvc_step(transport, |host, out| host.request_echo(now, payload, out))
            .map_err(|error| match error {
                CommandError::NoChannel(_) => CommandError::NoChannel(ChannelKind::Echo),
                other => other,
            })
    }

    /// Runs a command on the dynamic channel host and sends what it wrote.
    fn dvc_step<T>(
        &mut self,
        transport: &mut Transport,
        step: impl FnOnce(&mut DvcHost, &mut Vec<Vec<u8>>) -> Result<T, CommandError>,
    ) -> Result<T, CommandError> {
        self.handler_step(
            transport,
            ChannelKind::Dynamic,
            step,
            |handler| match handler {
                StaticHandler::Drdynvc(host) => Some(host),
                _ => None,
            },
        )
    }

    /// Runs an application command on the clipboard channel.
    fn clipboard_step(
        &mut self,
        transport: &mut Transport,
        step: impl FnOnce(&mut ClipboardServer, &mut Vec<Vec<u8>>) -> Result<(), ClipboardError>,
    ) -> Result<(), CommandError> {
        self.handler_step(
            transport,
            ChannelKind::Clipboard,
            step,
            |handler| match handler {
                StaticHandler::Clipboard(server) => Some(server),
                _ => None,
            },
        )
    }

    /// Runs an application command on the audio output channel.
    fn sound_step(
        &mut self,
        transport: &mut Transport,
        step: impl FnOnce(&mut SoundServer, &mut Vec<Vec<u8>>) -> Result<(), SoundError>,
    ) -> Result<(), CommandError> {
        self.handler_step(
            transport,
            ChannelKind::Sound,
            step,
            |handler| match handler {
                StaticHandler::Sound(server) => Some(server),
                _ => None,
            },
        )
    }

    /// Runs `step` on the handler `select` picks (the client may lack the
    /// channel: `kind` says which) and sends the messages it wrote; the
    /// handler's own refusals come back typed.
    fn handler_step<S, T, E: Into<CommandError>>(
        &mut self,
        transport: &mut Transport,
        kind: ChannelKind,
        step: impl FnOnce(&mut S, &mut Vec<Vec<u8>>) -> Result<T, E>,
        select: impl Fn(&mut StaticHandler) -> Option<&mut S>,
    ) -> Result<T, CommandError> {
        let chunk_size = self.chunk_size;
        let Some((id, handler)) = self
            .statics
            .iter_mut()
            .find_map(|channel| Some((channel.id, select(&mut channel.handler)?)))
        else {
            return Err(CommandError::NoChannel(kind));
        };
        let mut out = Vec::new();
        let value = step(handler, &mut out).map_err(Into::into)?;
        send_messages(transport, id, chunk_size, out)?;
        Ok(value)
    }
}

/// Reassembles one chunk of `channel` and hands a whole message to its
/// handler; what the handler answers lands in `out`.
fn handle_chunk(
    channel: &mut StaticChannel,
    chunk: &[u8],
    limit: usize,
    now: Instant,
    epoch: &mut Option<Instant>,
    out: &mut Vec<Vec<u8>>,
    events: &mut VecDeque<Event>,
) -> Result<(), Error> {
    let Some(message) = channel.reassembler.push(chunk, limit)? else {
        return Ok(());
    };
    match &mut channel.handler {
        StaticHandler::Drdynvc(host) => host.receive(&message, now, out, events)?,
        StaticHandler::Clipboard(clipboard) => {
            let mut clipboard_events = Vec::new();
            clipboard.receive(&message, out, &mut clipboard_events)?;
            events.extend(clipboard_events.into_iter().map(Event::Clipboard));
        }
        StaticHandler::Sound(sound) => {
            // Audio times count from the first audio message, and wrap
            // after 49 days as the protocol's 32-bit times do.
            let epoch = *epoch.get_or_insert(now);
            let now_ms = now.saturating_duration_since(epoch).as_millis() as u32;
            let mut sound_events = Vec::new();
            sound.receive(&message, now_ms, out, &mut sound_events)?;
            events.extend(sound_events.into_iter().map(Event::Sound));
        }
        StaticHandler::Application => events.push_back(Event::ChannelData {
            channel: channel.name.clone(),
            data: message,
        }),
        StaticHandler::Unserved => {}
    }
    Ok(())
}

/// Sends whole messages a channel's handler wrote on static channel
/// `channel_id`.
fn send_messages(
    transport: &mut Transport,
    channel_id: u16,
    chunk_size: usize,
    messages: Vec<Vec<u8>>,
) -> Result<(), Error> {
    for message in messages {
        send_chunked(
            transport,
            channel_id,
            &message,
            chunk_size,
            svc::CHANNEL_FLAG_SHOW_PROTOCOL,
        )?;
    }
    Ok(())
}

/// Sends one static channel message in chunks of at most `chunk_size`.
fn send_chunked(
    transport: &mut Transport,
    channel_id: u16,
    message: &[u8],
    chunk_size: usize,
    flags: u32,
) -> Result<(), Error> {
    let mut result = Ok(());
    svc::chunk(message, chunk_size, flags, |pdu| {
        if result.is_ok() {
            result = io_channel::send_on_channel(transport, channel_id, pdu);
        }
    });
    result
}
