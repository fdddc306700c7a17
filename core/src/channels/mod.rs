//! Virtual channels of an active session: static channel reassembly and
//! routing (clipboard, the application's own channels), the "drdynvc"
//! dynamic channel host with the ECHO (MS-RDPEECO) and Display Control
//! channels, and dynamic channels the application opens.

pub(crate) mod cliprdr;
pub(crate) mod display_control;
pub(crate) mod dvc;
pub(crate) mod rdpsnd;
pub(crate) mod svc;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use tracing::{debug, trace};

use crate::api::clipboard::ClipboardError;
use crate::api::command::{Applied, ChannelCommand};
use crate::api::config::SoundConfig;
use crate::api::error::{ChannelKind, CommandError, Error};
use crate::api::event::Event;
use crate::api::sound::SoundError;
use crate::transport::Transport;
use crate::transport::io_channel;
use crate::wire::error::DecodeError;
use cliprdr::ClipboardServer;
use dvc::{ClientDvcPdu, DvcReassembler};
use rdpsnd::SoundServer;
use svc::Reassembler;

const DRDYNVC: &str = "drdynvc";
const ECHO: &str = "ECHO";
/// The dynamic channel ids this server opens.
const ECHO_CHANNEL_ID: u32 = 1;
const DISPLAY_CHANNEL_ID: u32 = 2;
/// Application dynamic channels are numbered from here.
const FIRST_APPLICATION_CHANNEL_ID: u32 = 16;

#[derive(Debug)]
struct StaticChannel {
    id: u16,
    name: String,
    reassembler: Reassembler,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EchoState {
    /// Waiting for DRDYNVC capabilities before asking to open ECHO.
    Closed,
    Opening,
    Open,
    /// The client has no ECHO listener.
    Refused,
}

/// What the server does with a static channel's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StaticRole {
    Drdynvc,
    Clipboard,
    Sound,
    /// One the application registered: messages become events.
    Application,
    /// Joined by the client but not served: messages are dropped.
    Unserved,
}

/// A dynamic channel the application asked for.
#[derive(Debug)]
struct ApplicationChannel {
    id: u32,
    name: String,
    priority: u8,
    open: bool,
    reassembler: DvcReassembler,
}

#[derive(Debug)]
pub(crate) struct Channels {
    statics: Vec<StaticChannel>,
    roles: Vec<StaticRole>,
    drdynvc: Option<u16>,
    /// Whether the client answered the DRDYNVC capabilities.
    dvc_ready: bool,
    clipboard: Option<(u16, ClipboardServer)>,
    sound: Option<(u16, SoundServer)>,
    /// The first instant the channels saw: audio timestamps count from it.
    epoch: Option<Instant>,
    application_dvcs: Vec<ApplicationChannel>,
    next_application_id: u32,
    /// Chunk size for server-to-client static channel data.
    chunk_size: usize,
    /// Largest reassembled channel message accepted.
    limit: usize,
    echo: EchoState,
    echo_reassembler: DvcReassembler,
    next_echo_id: u32,
    /// Requests waiting for the channel to open.
    echo_queue: VecDeque<u32>,
    /// Requests sent, by id, with the time they left.
    echo_sent: HashMap<u32, Instant>,
    /// The Display Control channel: requested, then open.
    display_requested: bool,
    display_open: bool,
    display_reassembler: DvcReassembler,
}

/// Which channels the application serves (from the configuration).
#[derive(Debug, Clone, Default)]
pub(crate) struct ChannelSetup {
    pub clipboard: bool,
    pub sound: Option<SoundConfig>,
    /// Names of the application's static channels.
    pub application: Vec<String>,
}

impl Channels {
    pub fn new(
        statics: Vec<(u16, String)>,
        setup: &ChannelSetup,
        chunk_size: usize,
        limit: usize,
    ) -> Self {
        let roles: Vec<StaticRole> = statics
            .iter()
            .map(|(_, name)| {
                if name.eq_ignore_ascii_case(DRDYNVC) {
                    StaticRole::Drdynvc
                } else if setup.clipboard && name.eq_ignore_ascii_case(cliprdr::CHANNEL_NAME) {
                    StaticRole::Clipboard
                } else if setup.sound.is_some() && name.eq_ignore_ascii_case(rdpsnd::CHANNEL_NAME) {
                    StaticRole::Sound
                } else if setup
                    .application
                    .iter()
                    .any(|wanted| wanted.eq_ignore_ascii_case(name))
                {
                    StaticRole::Application
                } else {
                    StaticRole::Unserved
                }
            })
            .collect();
        let with_role = |role| {
            statics
                .iter()
                .zip(&roles)
                .find(|(_, r)| **r == role)
                .map(|((id, _), _)| *id)
        };
        let drdynvc = with_role(StaticRole::Drdynvc);
        let clipboard = with_role(StaticRole::Clipboard).map(|id| (id, ClipboardServer::new()));
        let sound = with_role(StaticRole::Sound)
            .zip(setup.sound.as_ref())
            .map(|(id, sound)| {
                (
                    id,
                    SoundServer::new(sound.formats.clone(), sound.max_in_flight),
                )
            });
        Self {
            roles,
            drdynvc,
            dvc_ready: false,
            clipboard,
            sound,
            epoch: None,
            application_dvcs: Vec::new(),
            next_application_id: FIRST_APPLICATION_CHANNEL_ID,
            statics: statics
                .into_iter()
                .map(|(id, name)| StaticChannel {
                    id,
                    name,
                    reassembler: Reassembler::default(),
                })
                .collect(),
            chunk_size,
            limit,
            echo: EchoState::Closed,
            echo_reassembler: DvcReassembler::default(),
            next_echo_id: 1,
            echo_queue: VecDeque::new(),
            echo_sent: HashMap::new(),
            display_requested: false,
            display_open: false,
            display_reassembler: DvcReassembler::default(),
        }
    }

    /// Starts the dynamic channel host once the session is active.
    pub fn start(&mut self, transport: &mut Transport) -> Result<(), Error> {
        if self.drdynvc.is_some() {
            let mut caps = Vec::new();
            dvc::encode_capabilities_request(&mut caps, dvc::SERVER_VERSION);
            self.send_drdynvc(&caps, transport)?;
        }
        if self.clipboard.is_some() {
            drive(
                &mut self.clipboard,
                self.chunk_size,
                transport,
                |clipboard, out| {
                    clipboard.start(out);
                    Ok(())
                },
            )?;
        }
        if self.sound.is_some() {
            drive(&mut self.sound, self.chunk_size, transport, |sound, out| {
                sound.start(out);
                Ok(())
            })?;
        }
        Ok(())
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
        let Some(index) = self
            .statics
            .iter()
            .position(|channel| channel.id == channel_id)
        else {
            return Err(Error::UnexpectedPdu("data on an unknown static channel"));
        };
        let channel = &mut self.statics[index];
        let Some(message) = channel.reassembler.push(chunk, limit)? else {
            return Ok(());
        };
        match self.roles[index] {
            StaticRole::Drdynvc => self.receive_dvc(&message, now, transport, events),
            StaticRole::Clipboard => self.receive_clipboard(&message, transport, events),
            StaticRole::Sound => self.receive_sound(&message, now, transport, events),
            StaticRole::Application => {
                events.push_back(Event::ChannelData {
                    channel: channel.name.clone(),
                    data: message,
                });
                Ok(())
            }
            StaticRole::Unserved => {
                trace!(name = %channel.name, len = message.len(), "Dropping static channel message");
                Ok(())
            }
        }
    }

    fn receive_clipboard(
        &mut self,
        message: &[u8],
        transport: &mut Transport,
        events: &mut VecDeque<Event>,
    ) -> Result<(), Error> {
        drive(
            &mut self.clipboard,
            self.chunk_size,
            transport,
            |clipboard, out| {
                let mut clipboard_events = Vec::new();
                clipboard.receive(message, out, &mut clipboard_events)?;
                events.extend(clipboard_events.into_iter().map(Event::Clipboard));
                Ok(())
            },
        )
    }

    fn receive_sound(
        &mut self,
        message: &[u8],
        now: Instant,
        transport: &mut Transport,
        events: &mut VecDeque<Event>,
    ) -> Result<(), Error> {
        let epoch = *self.epoch.get_or_insert(now);
        // Wraps after 49 days, as the protocol's 32-bit times do.
        let now_ms = now.saturating_duration_since(epoch).as_millis() as u32;
        drive(&mut self.sound, self.chunk_size, transport, |sound, out| {
            let mut sound_events = Vec::new();
            sound.receive(message, now_ms, out, &mut sound_events)?;
            events.extend(sound_events.into_iter().map(Event::Sound));
            Ok(())
        })
    }

    /// Runs an application command; returns the new channel's id for
    /// `OpenDynamic`, else 0.
    pub fn run(
        &mut self,
        command: ChannelCommand<'_>,
        transport: &mut Transport,
    ) -> Result<Applied, CommandError> {
        match command {
            ChannelCommand::SendChannelData { channel, data } => {
                self.send_application_static(channel, data, transport)?;
            }
            ChannelCommand::OpenDynamic { name, priority } => {
                return self
                    .open_dynamic(name, priority, transport)
                    .map(Applied::DynamicChannel);
            }
            ChannelCommand::SendDynamic { id, data } => self.send_dynamic(id, data, transport)?,
            ChannelCommand::CloseDynamic(id) => self.close_dynamic(id, transport)?,
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
                    server.request_file_contents(&request, out);
                    Ok(())
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

    /// Runs an application command on the clipboard channel.
    fn clipboard_step(
        &mut self,
        transport: &mut Transport,
        step: impl FnOnce(&mut ClipboardServer, &mut Vec<Vec<u8>>) -> Result<(), ClipboardError>,
    ) -> Result<(), CommandError> {
        command_step(
            &mut self.clipboard,
            self.chunk_size,
            transport,
            ChannelKind::Clipboard,
            step,
        )
    }

    /// Runs an application command on the audio output channel.
    fn sound_step(
        &mut self,
        transport: &mut Transport,
        step: impl FnOnce(&mut SoundServer, &mut Vec<Vec<u8>>) -> Result<(), SoundError>,
    ) -> Result<(), CommandError> {
        command_step(
            &mut self.sound,
            self.chunk_size,
            transport,
            ChannelKind::Sound,
            step,
        )
    }

    /// Sends a message on one of the application's static channels.
    pub fn send_application_static(
        &mut self,
        name: &str,
        message: &[u8],
        transport: &mut Transport,
    ) -> Result<(), CommandError> {
        let channel_id = self
            .statics
            .iter()
            .zip(&self.roles)
            .find(|(channel, role)| {
                **role == StaticRole::Application && channel.name.eq_ignore_ascii_case(name)
            })
            .map(|(channel, _)| channel.id)
            .ok_or(CommandError::UnknownStaticChannel)?;
        Ok(self.send_static(channel_id, message, 0, transport)?)
    }

    /// Asks the client to open a dynamic channel to its listener `name`;
    /// returns the channel id. `Event::DynamicChannelOpened` (or `Closed`,
    /// when the client has no such listener) follows. Sent as soon as the
    /// dynamic channel host is ready.
    pub fn open_dynamic(
        &mut self,
        name: &str,
        priority: u8,
        transport: &mut Transport,
    ) -> Result<u32, CommandError> {
        if self.drdynvc.is_none() {
            return Err(CommandError::NoChannel(ChannelKind::Dynamic));
        }
        if name.is_empty() || name.contains('\0') {
            return Err(CommandError::InvalidChannelName);
        }
        // Priorities run from 0 (highest) to 3.
        let priority = priority.min(3);
        let id = self.next_application_id;
        self.next_application_id = self
            .next_application_id
            .wrapping_add(1)
            .max(FIRST_APPLICATION_CHANNEL_ID);
        self.application_dvcs.push(ApplicationChannel {
            id,
            name: name.to_owned(),
            priority,
            open: false,
            reassembler: DvcReassembler::default(),
        });
        if self.dvc_ready {
            let mut create = Vec::new();
            dvc::encode_create_request(&mut create, id, name, priority);
            self.send_drdynvc(&create, transport)?;
        }
        Ok(id)
    }

    /// Sends a message on an open application dynamic channel, split into
    /// DataFirst and Data PDUs that each fit one static channel chunk.
    pub fn send_dynamic(
        &mut self,
        id: u32,
        message: &[u8],
        transport: &mut Transport,
    ) -> Result<(), CommandError> {
        if !self
            .application_dvcs
            .iter()
            .any(|channel| channel.id == id && channel.open)
        {
            return Err(CommandError::DynamicChannelNotOpen(id));
        }
        let mut pdus = Vec::new();
        dvc::encode_message(&mut pdus, id, message, self.chunk_size);
        for pdu in pdus {
            self.send_drdynvc(&pdu, transport)?;
        }
        Ok(())
    }

    /// Closes an application dynamic channel.
    pub fn close_dynamic(
        &mut self,
        id: u32,
        transport: &mut Transport,
    ) -> Result<(), CommandError> {
        let at = self
            .application_dvcs
            .iter()
            .position(|channel| channel.id == id)
            .ok_or(CommandError::UnknownDynamicChannel(id))?;
        let channel = self.application_dvcs.remove(at);
        if channel.open {
            let mut close = Vec::new();
            dvc::encode_close(&mut close, id);
            self.send_drdynvc(&close, transport)?;
        }
        Ok(())
    }

    fn receive_application_dvc(
        &mut self,
        pdu: &ClientDvcPdu<'_>,
        events: &mut VecDeque<Event>,
    ) -> Result<bool, Error> {
        let channel_id = match pdu {
            ClientDvcPdu::CreateResponse { channel_id, .. }
            | ClientDvcPdu::DataFirst { channel_id, .. }
            | ClientDvcPdu::Data { channel_id, .. }
            | ClientDvcPdu::Close { channel_id } => *channel_id,
            ClientDvcPdu::CapabilitiesResponse { .. } => return Ok(false),
        };
        let Some(at) = self
            .application_dvcs
            .iter()
            .position(|channel| channel.id == channel_id)
        else {
            return Ok(false);
        };
        let limit = self.limit;
        let channel = &mut self.application_dvcs[at];
        match *pdu {
            ClientDvcPdu::CreateResponse { status, .. } if !channel.open => {
                if status >= 0 {
                    channel.open = true;
                    events.push_back(Event::DynamicChannelOpened {
                        id: channel_id,
                        name: channel.name.clone(),
                    });
                } else {
                    debug!(name = %channel.name, status, "Client refused a dynamic channel");
                    self.application_dvcs.remove(at);
                    events.push_back(Event::DynamicChannelClosed { id: channel_id });
                }
            }
            ClientDvcPdu::DataFirst { total, data, .. } if channel.open => {
                if let Some(message) = channel.reassembler.first(total, data, limit)? {
                    events.push_back(Event::DynamicChannelData {
                        id: channel_id,
                        data: message,
                    });
                }
            }
            ClientDvcPdu::Data { data, .. } if channel.open => {
                if let Some(message) = channel.reassembler.more(data)? {
                    events.push_back(Event::DynamicChannelData {
                        id: channel_id,
                        data: message,
                    });
                }
            }
            ClientDvcPdu::Close { .. } => {
                self.application_dvcs.remove(at);
                events.push_back(Event::DynamicChannelClosed { id: channel_id });
            }
            _ => return Err(Error::Protocol(unknown_channel(pdu))),
        }
        Ok(true)
    }

    fn receive_dvc(
        &mut self,
        message: &[u8],
        now: Instant,
        transport: &mut Transport,
        events: &mut VecDeque<Event>,
    ) -> Result<(), Error> {
        let pdu = ClientDvcPdu::decode(message)?;
        if self.receive_application_dvc(&pdu, events)? {
            return Ok(());
        }
        match pdu {
            ClientDvcPdu::CapabilitiesResponse { version } => {
                debug!(version, "DRDYNVC capabilities");
                if !self.dvc_ready {
                    self.dvc_ready = true;
                    // Channels the application opened before the host was ready.
                    let creates: Vec<Vec<u8>> = self
                        .application_dvcs
                        .iter()
                        .map(|channel| {
                            let mut create = Vec::new();
                            dvc::encode_create_request(
                                &mut create,
                                channel.id,
                                &channel.name,
                                channel.priority,
                            );
                            create
                        })
                        .collect();
                    for create in creates {
                        self.send_drdynvc(&create, transport)?;
                    }
                }
                if self.echo == EchoState::Closed {
                    let mut create = Vec::new();
                    dvc::encode_create_request(&mut create, ECHO_CHANNEL_ID, ECHO, 0);
                    self.send_drdynvc(&create, transport)?;
                    self.echo = EchoState::Opening;
                }
                if !self.display_requested {
                    let mut create = Vec::new();
                    dvc::encode_create_request(
                        &mut create,
                        DISPLAY_CHANNEL_ID,
                        display_control::CHANNEL_NAME,
                        0,
                    );
                    self.send_drdynvc(&create, transport)?;
                    self.display_requested = true;
                }
            }
            ClientDvcPdu::CreateResponse { channel_id, status }
                if channel_id == DISPLAY_CHANNEL_ID
                    && self.display_requested
                    && !self.display_open =>
            {
                if status >= 0 {
                    debug!("Display Control channel open");
                    self.display_open = true;
                    let mut caps = Vec::new();
                    display_control::encode_caps(&mut caps);
                    let mut pdu = Vec::new();
                    dvc::encode_data(&mut pdu, DISPLAY_CHANNEL_ID, &caps);
                    self.send_drdynvc(&pdu, transport)?;
                } else {
                    debug!(status, "Client has no Display Control");
                }
            }
            ClientDvcPdu::DataFirst {
                channel_id,
                total,
                data,
            } if channel_id == DISPLAY_CHANNEL_ID && self.display_open => {
                if let Some(message) = self.display_reassembler.first(total, data, self.limit)? {
                    events.push_back(Event::MonitorLayout(
                        display_control::decode_monitor_layout(&message)?,
                    ));
                }
            }
            ClientDvcPdu::Data { channel_id, data }
                if channel_id == DISPLAY_CHANNEL_ID && self.display_open =>
            {
                if let Some(message) = self.display_reassembler.more(data)? {
                    events.push_back(Event::MonitorLayout(
                        display_control::decode_monitor_layout(&message)?,
                    ));
                }
            }
            ClientDvcPdu::Close { channel_id } if channel_id == DISPLAY_CHANNEL_ID => {
                self.display_open = false;
            }
            ClientDvcPdu::CreateResponse { channel_id, status }
                if channel_id == ECHO_CHANNEL_ID && self.echo == EchoState::Opening =>
            {
                if status >= 0 {
                    debug!("ECHO channel open");
                    self.echo = EchoState::Open;
                    while let Some(id) = self.echo_queue.pop_front() {
                        self.send_echo(id, now, transport)?;
                    }
                } else {
                    debug!(status, "Client refused the ECHO channel");
                    self.echo = EchoState::Refused;
                    self.echo_queue.clear();
                }
            }
            ClientDvcPdu::DataFirst {
                channel_id,
                total,
                data,
            } if channel_id == ECHO_CHANNEL_ID && self.echo == EchoState::Open => {
                if let Some(message) = self.echo_reassembler.first(total, data, self.limit)? {
                    self.on_echo_response(&message, now, events)?;
                }
            }
            ClientDvcPdu::Data { channel_id, data }
                if channel_id == ECHO_CHANNEL_ID && self.echo == EchoState::Open =>
            {
                if let Some(message) = self.echo_reassembler.more(data)? {
                    self.on_echo_response(&message, now, events)?;
                }
            }
            ClientDvcPdu::Close { channel_id } if channel_id == ECHO_CHANNEL_ID => {
                self.echo = EchoState::Refused;
            }
            other => return Err(Error::Protocol(unknown_channel(&other))),
        }
        Ok(())
    }

    /// Queues an echo request; returns its id. It is sent at once when the
    /// ECHO channel is open, else when it opens.
    pub fn request_echo(
        &mut self,
        now: Instant,
        transport: &mut Transport,
    ) -> Result<u32, CommandError> {
        if self.drdynvc.is_none() || self.echo == EchoState::Refused {
            return Err(CommandError::NoChannel(ChannelKind::Echo));
        }
        let id = self.next_echo_id;
        self.next_echo_id = self.next_echo_id.wrapping_add(1);
        if self.echo == EchoState::Open {
            self.send_echo(id, now, transport)?;
        } else {
            self.echo_queue.push_back(id);
        }
        Ok(id)
    }

    fn send_echo(&mut self, id: u32, now: Instant, transport: &mut Transport) -> Result<(), Error> {
        let mut pdu = Vec::new();
        dvc::encode_data(&mut pdu, ECHO_CHANNEL_ID, &id.to_le_bytes());
        self.echo_sent.insert(id, now);
        self.send_drdynvc(&pdu, transport)
    }

    fn on_echo_response(
        &mut self,
        message: &[u8],
        now: Instant,
        events: &mut VecDeque<Event>,
    ) -> Result<(), Error> {
        let id = message
            .get(..4)
            .map(|bytes| u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
            .ok_or(Error::UnexpectedPdu(
                "echo response shorter than its request",
            ))?;
        let sent = self
            .echo_sent
            .remove(&id)
            .ok_or(Error::UnexpectedPdu("echo response to no request"))?;
        let round_trip: Duration = now.saturating_duration_since(sent);
        events.push_back(Event::EchoRoundTrip { id, round_trip });
        Ok(())
    }

    fn send_drdynvc(&mut self, message: &[u8], transport: &mut Transport) -> Result<(), Error> {
        let Some(channel_id) = self.drdynvc else {
            return Ok(());
        };
        self.send_static(
            channel_id,
            message,
            svc::CHANNEL_FLAG_SHOW_PROTOCOL,
            transport,
        )
    }

    fn send_static(
        &self,
        channel_id: u16,
        message: &[u8],
        flags: u32,
        transport: &mut Transport,
    ) -> Result<(), Error> {
        send_chunked(transport, channel_id, message, self.chunk_size, flags)
    }
}

/// Runs an application command on a channel the client may lack; the
/// channel's own refusals come back typed.
fn command_step<S, E: Into<CommandError>>(
    slot: &mut Option<(u16, S)>,
    chunk_size: usize,
    transport: &mut Transport,
    kind: ChannelKind,
    step: impl FnOnce(&mut S, &mut Vec<Vec<u8>>) -> Result<(), E>,
) -> Result<(), CommandError> {
    let Some((channel_id, server)) = slot else {
        return Err(CommandError::NoChannel(kind));
    };
    let mut out = Vec::new();
    step(server, &mut out).map_err(Into::into)?;
    send_messages(transport, *channel_id, chunk_size, out)?;
    Ok(())
}

/// Runs `step` on a channel's state machine, if the client joined that
/// channel, and sends the whole messages it wrote on the channel.
fn drive<S>(
    slot: &mut Option<(u16, S)>,
    chunk_size: usize,
    transport: &mut Transport,
    step: impl FnOnce(&mut S, &mut Vec<Vec<u8>>) -> Result<(), Error>,
) -> Result<(), Error> {
    let Some((channel_id, server)) = slot else {
        return Ok(());
    };
    let mut out = Vec::new();
    step(server, &mut out)?;
    send_messages(transport, *channel_id, chunk_size, out)
}

/// Sends whole messages a channel's state machine wrote.
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

fn unknown_channel(pdu: &ClientDvcPdu<'_>) -> DecodeError {
    DecodeError::InvalidField {
        context: "dvc pdu",
        field: "channel id",
        reason: match pdu {
            ClientDvcPdu::CreateResponse { .. } => "create response for a channel never requested",
            _ => "data for a channel that is not open",
        },
    }
}
