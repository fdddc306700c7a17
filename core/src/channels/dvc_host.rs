//! The "drdynvc" host (MS-RDPEDYC): the capability exchange, creating the
//! dynamic channels the server and the application open, and routing each
//! channel's messages by id to its handler (ECHO, Display Control, the
//! Graphics Pipeline, whose decoded PDUs wait for the session, or an
//! application channel whose messages become events).
//!
//! Every channel goes through the same states: pending until the client's
//! capabilities arrive, requested once the Create Request is sent, open
//! when the client accepts it. A refused or closed channel is forgotten, so
//! later traffic on its id is an error, as is traffic that does not fit the
//! channel's state.

use std::collections::VecDeque;
use std::time::Instant;

use tracing::{debug, warn};

use crate::api::display::MonitorLayout;
use crate::api::error::{ChannelKind, CommandError, Error};
use crate::api::event::Event;
use crate::channels::display_control;
use crate::channels::dvc::{self, ClientDvcPdu, DvcReassembler};
use crate::channels::echo::{self, EchoChannel};
use crate::graphics::egfx::pdu::{self as egfx, ClientPdu};

/// The dynamic channel ids this server opens for itself.
const ECHO_CHANNEL_ID: u32 = 1;
const DISPLAY_CHANNEL_ID: u32 = 2;
const GRAPHICS_CHANNEL_ID: u32 = 3;
/// Application dynamic channels are numbered from here.
const FIRST_APPLICATION_CHANNEL_ID: u32 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the client's capabilities before the Create Request.
    Pending,
    Requested,
    Open,
}

/// What serves a channel's messages.
#[derive(Debug)]
enum Handler {
    Echo(EchoChannel),
    /// Display Control: monitor layouts become events.
    Display,
    /// The Graphics Pipeline: the client's PDUs, decoded, until the
    /// session takes them.
    Graphics(Vec<ClientPdu>),
    /// The application's own: messages become events.
    Application,
}

#[derive(Debug)]
struct Channel {
    id: u32,
    name: String,
    priority: u8,
    state: State,
    reassembler: DvcReassembler,
    handler: Handler,
}

impl Channel {
    fn new(id: u32, name: &str, priority: u8, handler: Handler) -> Self {
        Self {
            id,
            name: name.to_owned(),
            priority,
            state: State::Pending,
            reassembler: DvcReassembler::default(),
            handler,
        }
    }

    fn create_request(&mut self, send: &mut Vec<Vec<u8>>) {
        let mut create = Vec::new();
        dvc::encode_create_request(&mut create, self.id, &self.name, self.priority);
        send.push(create);
        self.state = State::Requested;
    }

    /// The client accepted the channel.
    fn opened(&mut self, now: Instant, messages: &mut Vec<Vec<u8>>, events: &mut VecDeque<Event>) {
        self.state = State::Open;
        match &mut self.handler {
            Handler::Echo(echo) => {
                debug!("ECHO channel open");
                echo.opened(now, messages);
            }
            Handler::Display => {
                debug!("Display Control channel open");
                let mut caps = Vec::new();
                display_control::encode_caps(&mut caps);
                messages.push(caps);
            }
            // The client speaks first: its Caps Advertise.
            Handler::Graphics(_) => debug!("Graphics Pipeline channel open"),
            Handler::Application => events.push_back(Event::DynamicChannelOpened {
                id: self.id,
                name: self.name.clone(),
            }),
        }
    }

    /// The client refused (`status` < 0) or closed the channel, or the
    /// server closed it for a malformed message (`error`).
    fn closed(&self, status: Option<i32>, error: Option<Error>, events: &mut VecDeque<Event>) {
        match self.handler {
            Handler::Echo(_) => debug!(?status, "No ECHO channel"),
            Handler::Display => debug!(?status, "No Display Control channel"),
            Handler::Graphics(_) => debug!(?status, "No Graphics Pipeline channel"),
            Handler::Application => {
                if let Some(status) = status {
                    debug!(name = %self.name, status, "Client refused a dynamic channel");
                }
                events.push_back(Event::DynamicChannelClosed { id: self.id, error });
            }
        }
    }

    /// A whole message from the client.
    fn message(
        &mut self,
        message: Vec<u8>,
        now: Instant,
        events: &mut VecDeque<Event>,
    ) -> Result<(), Error> {
        match &mut self.handler {
            Handler::Echo(echo) => echo.message(&message, now, events),
            Handler::Display => {
                let layout: Vec<MonitorLayout> = display_control::decode_monitor_layout(&message)?;
                events.push_back(Event::MonitorLayout(layout));
                Ok(())
            }
            Handler::Graphics(inbox) => {
                inbox.extend(ClientPdu::decode_all(&message)?);
                Ok(())
            }
            Handler::Application => {
                events.push_back(Event::DynamicChannelData {
                    id: self.id,
                    data: message,
                });
                Ok(())
            }
        }
    }
}

/// The dynamic channel host of one session. Its outputs are whole
/// "drdynvc" messages, for the caller to send on that static channel.
#[derive(Debug)]
pub(crate) struct DvcHost {
    /// Whether the client answered the capabilities.
    ready: bool,
    channels: Vec<Channel>,
    next_application_id: u32,
    /// Largest reassembled message accepted.
    limit: usize,
    /// The static channel's chunk size, which bounds each DVC PDU.
    chunk_size: usize,
    /// The Graphics Pipeline channel was refused, closed or broken.
    graphics_lost: bool,
}

impl DvcHost {
    /// A host that will open ECHO, Display Control and, with `graphics`,
    /// the Graphics Pipeline once the client is ready.
    pub fn new(limit: usize, chunk_size: usize, graphics: bool) -> Self {
        let mut host = Self {
            ready: false,
            channels: vec![
                Channel::new(
                    ECHO_CHANNEL_ID,
                    echo::CHANNEL_NAME,
                    0,
                    Handler::Echo(EchoChannel::default()),
                ),
                Channel::new(
                    DISPLAY_CHANNEL_ID,
                    display_control::CHANNEL_NAME,
                    0,
                    Handler::Display,
                ),
            ],
            next_application_id: FIRST_APPLICATION_CHANNEL_ID,
            limit,
            chunk_size,
            graphics_lost: false,
        };
        if graphics {
            host.channels.push(Channel::new(
                GRAPHICS_CHANNEL_ID,
                egfx::CHANNEL_NAME,
                0,
                Handler::Graphics(Vec::new()),
            ));
        }
        host
    }

    /// The Graphics Pipeline PDUs received since the last call, and
    /// whether the channel is gone (refused, closed, or closed for a
    /// malformed message).
    pub fn take_graphics(&mut self) -> (Vec<ClientPdu>, bool) {
        let pdus = match self.find(GRAPHICS_CHANNEL_ID) {
            Some(Channel {
                handler: Handler::Graphics(inbox),
                ..
            }) => std::mem::take(inbox),
            _ => Vec::new(),
        };
        (pdus, std::mem::take(&mut self.graphics_lost))
    }

    /// Sends one Graphics Pipeline message (RDP_SEGMENTED_DATA).
    pub fn send_graphics(
        &mut self,
        message: &[u8],
        send: &mut Vec<Vec<u8>>,
    ) -> Result<(), CommandError> {
        let chunk_size = self.chunk_size;
        match self.find(GRAPHICS_CHANNEL_ID) {
            Some(channel) if channel.state == State::Open => {
                dvc::encode_message(send, GRAPHICS_CHANNEL_ID, message, chunk_size);
                Ok(())
            }
            _ => Err(CommandError::NoChannel(ChannelKind::Graphics)),
        }
    }

    /// The Capabilities Request that starts the host.
    pub fn start(&self, send: &mut Vec<Vec<u8>>) {
        let mut caps = Vec::new();
        dvc::encode_capabilities_request(&mut caps, dvc::SERVER_VERSION);
        send.push(caps);
    }

    /// Bytes the host's reassemblers hold on to.
    pub fn held(&self) -> usize {
        self.channels
            .iter()
            .map(|channel| channel.reassembler.held())
            .sum()
    }

    fn find(&mut self, id: u32) -> Option<&mut Channel> {
        self.channels.iter_mut().find(|channel| channel.id == id)
    }

    fn remove(&mut self, id: u32) -> Option<Channel> {
        let at = self.channels.iter().position(|channel| channel.id == id)?;
        let channel = self.channels.remove(at);
        if matches!(channel.handler, Handler::Graphics(_)) {
            self.graphics_lost = true;
        }
        Some(channel)
    }

    /// One whole "drdynvc" message from the client.
    pub fn receive(
        &mut self,
        message: &[u8],
        now: Instant,
        send: &mut Vec<Vec<u8>>,
        events: &mut VecDeque<Event>,
    ) -> Result<(), Error> {
        let pdu = ClientDvcPdu::decode(message)?;
        let channel_id = match pdu {
            ClientDvcPdu::CapabilitiesResponse { version } => {
                debug!(version, "DRDYNVC capabilities");
                self.ready = true;
                // The channels the application asked for first, then the
                // server's own.
                for application in [true, false] {
                    for channel in &mut self.channels {
                        let is_application = matches!(channel.handler, Handler::Application);
                        if channel.state == State::Pending && is_application == application {
                            channel.create_request(send);
                        }
                    }
                }
                return Ok(());
            }
            ClientDvcPdu::CreateResponse { channel_id, .. }
            | ClientDvcPdu::DataFirst { channel_id, .. }
            | ClientDvcPdu::Data { channel_id, .. }
            | ClientDvcPdu::Close { channel_id } => channel_id,
        };
        let limit = self.limit;
        let chunk_size = self.chunk_size;
        let Some(channel) = self.find(channel_id) else {
            // Traffic for a channel closed a moment ago, or never opened:
            // nothing waits for it, and it harms nothing.
            debug!(channel_id, pdu = ?pdu, "Dropping a pdu for no open dynamic channel");
            return Ok(());
        };
        match (channel.state, pdu) {
            (State::Requested, ClientDvcPdu::CreateResponse { status, .. }) => {
                if status >= 0 {
                    let mut messages = Vec::new();
                    channel.opened(now, &mut messages, events);
                    for message in messages {
                        dvc::encode_message(send, channel_id, &message, chunk_size);
                    }
                } else {
                    channel.closed(Some(status), None, events);
                    self.remove(channel_id);
                }
            }
            (State::Open, ClientDvcPdu::DataFirst { total, data, .. }) => {
                let result = channel
                    .reassembler
                    .first(total, data, limit)
                    .map_err(Error::from)
                    .and_then(|message| match message {
                        Some(message) => channel.message(message, now, events),
                        None => Ok(()),
                    });
                self.close_on_error(channel_id, result, send, events);
            }
            (State::Open, ClientDvcPdu::Data { data, .. }) => {
                let result = channel
                    .reassembler
                    .more(data)
                    .map_err(Error::from)
                    .and_then(|message| match message {
                        Some(message) => channel.message(message, now, events),
                        None => Ok(()),
                    });
                self.close_on_error(channel_id, result, send, events);
            }
            (State::Requested | State::Open, ClientDvcPdu::Close { .. }) => {
                channel.closed(None, None, events);
                self.remove(channel_id);
            }
            (state, pdu) => {
                debug!(channel_id, ?state, pdu = ?pdu, "Dropping a dynamic channel pdu out of order");
            }
        }
        Ok(())
    }

    /// A channel whose message was malformed is closed, on both sides; the
    /// session and the other channels go on.
    fn close_on_error(
        &mut self,
        channel_id: u32,
        result: Result<(), Error>,
        send: &mut Vec<Vec<u8>>,
        events: &mut VecDeque<Event>,
    ) {
        let Err(error) = result else {
            return;
        };
        if let Some(channel) = self.remove(channel_id) {
            warn!(channel = %channel.name, %error, "Closing a dynamic channel");
            let mut close = Vec::new();
            dvc::encode_close(&mut close, channel_id);
            send.push(close);
            channel.closed(None, Some(error), events);
        }
    }

    /// Asks the client to open a dynamic channel to its listener `name`;
    /// returns the channel id. The Create Request leaves at once when the
    /// host is ready, else with the others when it becomes ready.
    pub fn open(
        &mut self,
        name: &str,
        priority: u8,
        send: &mut Vec<Vec<u8>>,
    ) -> Result<u32, CommandError> {
        if name.is_empty() || name.contains('\0') {
            return Err(CommandError::InvalidChannelName);
        }
        let id = self.next_application_id;
        self.next_application_id = self
            .next_application_id
            .wrapping_add(1)
            .max(FIRST_APPLICATION_CHANNEL_ID);
        // Priorities run from 0 (highest) to 3.
        let mut channel = Channel::new(id, name, priority.min(3), Handler::Application);
        if self.ready {
            channel.create_request(send);
        }
        self.channels.push(channel);
        Ok(id)
    }

    /// A message of any size on an open application channel, split into
    /// DataFirst and Data PDUs that each fit one static channel chunk.
    pub fn send(
        &mut self,
        id: u32,
        message: &[u8],
        send: &mut Vec<Vec<u8>>,
    ) -> Result<(), CommandError> {
        let chunk_size = self.chunk_size;
        match self.find(id) {
            Some(channel)
                if channel.state == State::Open
                    && matches!(channel.handler, Handler::Application) =>
            {
                dvc::encode_message(send, id, message, chunk_size);
                Ok(())
            }
            _ => Err(CommandError::DynamicChannelNotOpen(id)),
        }
    }

    /// Closes an application channel.
    pub fn close(&mut self, id: u32, send: &mut Vec<Vec<u8>>) -> Result<(), CommandError> {
        let Some(at) = self.channels.iter().position(|channel| {
            channel.id == id && matches!(channel.handler, Handler::Application)
        }) else {
            return Err(CommandError::UnknownDynamicChannel(id));
        };
        let channel = self.channels.remove(at);
        if channel.state == State::Open {
            let mut close = Vec::new();
            dvc::encode_close(&mut close, id);
            send.push(close);
        }
        Ok(())
    }

    /// Queues an echo request; returns its id. It is sent at once when the
    /// ECHO channel is open, else when it opens.
    pub fn request_echo(
        &mut self,
        now: Instant,
        payload: &[u8],
        send: &mut Vec<Vec<u8>>,
    ) -> Result<u32, CommandError> {
        let chunk_size = self.chunk_size;
        let Some(channel) = self.find(ECHO_CHANNEL_ID) else {
            return Err(CommandError::NoChannel(ChannelKind::Echo));
        };
        let open = channel.state == State::Open;
        let Handler::Echo(echo) = &mut channel.handler else {
            return Err(CommandError::NoChannel(ChannelKind::Echo));
        };
        let (id, message) = echo.request(now, payload, open);
        if let Some(message) = message {
            dvc::encode_message(send, ECHO_CHANNEL_ID, &message, chunk_size);
        }
        Ok(id)
    }
}
