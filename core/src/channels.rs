//! Virtual channels of an active session: static channel reassembly, the
//! "drdynvc" dynamic channel host, and the ECHO dynamic channel
//! (MS-RDPEECO) that measures round-trip times on the engine's clock.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use tracing::{debug, trace};

use crate::display_control;
use crate::dvc::{self, ClientDvcPdu, DvcReassembler};
use crate::error::{DecodeError, Error};
use crate::event::Event;
use crate::io_channel;
use crate::svc::{self, Reassembler};
use crate::transport::Transport;

const DRDYNVC: &str = "drdynvc";
const ECHO: &str = "ECHO";
/// The dynamic channel ids this server opens.
const ECHO_CHANNEL_ID: u32 = 1;
const DISPLAY_CHANNEL_ID: u32 = 2;

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

#[derive(Debug)]
pub(crate) struct Channels {
    statics: Vec<StaticChannel>,
    drdynvc: Option<u16>,
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

impl Channels {
    pub fn new(statics: Vec<(u16, String)>, chunk_size: usize, limit: usize) -> Self {
        let drdynvc = statics
            .iter()
            .find(|(_, name)| name.eq_ignore_ascii_case(DRDYNVC))
            .map(|(id, _)| *id);
        Self {
            statics: statics
                .into_iter()
                .map(|(id, name)| StaticChannel {
                    id,
                    name,
                    reassembler: Reassembler::default(),
                })
                .collect(),
            drdynvc,
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
        let Some(channel) = self
            .statics
            .iter_mut()
            .find(|channel| channel.id == channel_id)
        else {
            return Err(Error::UnexpectedPdu("data on an unknown static channel"));
        };
        let Some(message) = channel.reassembler.push(chunk, limit)? else {
            return Ok(());
        };
        if Some(channel_id) != self.drdynvc {
            // No application handler is registered for other static channels.
            trace!(name = %channel.name, len = message.len(), "Dropping static channel message");
            return Ok(());
        }
        self.receive_dvc(&message, now, transport, events)
    }

    fn receive_dvc(
        &mut self,
        message: &[u8],
        now: Instant,
        transport: &mut Transport,
        events: &mut VecDeque<Event>,
    ) -> Result<(), Error> {
        match ClientDvcPdu::decode(message)? {
            ClientDvcPdu::CapabilitiesResponse { version } => {
                debug!(version, "DRDYNVC capabilities");
                if self.echo == EchoState::Closed {
                    let mut create = Vec::new();
                    dvc::encode_create_request(&mut create, ECHO_CHANNEL_ID, ECHO);
                    self.send_drdynvc(&create, transport)?;
                    self.echo = EchoState::Opening;
                }
                if !self.display_requested {
                    let mut create = Vec::new();
                    dvc::encode_create_request(
                        &mut create,
                        DISPLAY_CHANNEL_ID,
                        display_control::CHANNEL_NAME,
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
    pub fn request_echo(&mut self, now: Instant, transport: &mut Transport) -> Result<u32, Error> {
        if self.drdynvc.is_none() || self.echo == EchoState::Refused {
            return Err(Error::Unsupported(crate::error::Unsupported::Other(
                "client has no echo channel",
            )));
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
        let mut result = Ok(());
        svc::chunk(
            message,
            self.chunk_size,
            svc::CHANNEL_FLAG_SHOW_PROTOCOL,
            |pdu| {
                if result.is_ok() {
                    result = io_channel::send_on_channel(transport, channel_id, pdu);
                }
            },
        );
        result
    }
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
