//! A small in-memory RDP client that speaks just enough of the protocol
//! (plain RDP security, no TLS) to drive the engine through the connection
//! sequence, send input and read graphics, on a simulated clock.
//!
//! The engine's tests use it, and so do the fuzz targets (the `fuzzing`
//! feature), which take it to one phase of the connection sequence and
//! hand the engine their input from there; they use only part of it. The
//! client talks through a [`Link`]: the engine in memory ([`Harness`]), or
//! a real server over a socket that a test outside the crate provides
//! (the `fuzzing` feature makes this module public for them).
#![cfg_attr(not(test), allow(dead_code))]

use std::time::{Duration, Instant};

use crate::api::config::{Config, Credentials, DesktopSize, SecurityConfig};
use crate::connection::client_info;
use crate::connection::codecs::CODEC_GUID_REMOTEFX;
use crate::connection::data_pdus;
use crate::connection::share;
use crate::wire::gcc::{
    ChannelDef, ClientCoreData, ClientGccData, ClientNetworkData, ClientSecurityData,
};
use crate::wire::mcs::{ConnectInitial, ConnectResponse, DomainParameters, DomainPdu};
use crate::wire::tpkt;
use crate::wire::x224;
use crate::wire::x224::{
    ConnectionConfirm, ConnectionRequest, NegotiationRequest, SecurityProtocol,
};
use crate::{Engine, Event};

pub const USER: &str = "alice";
pub const PASSWORD: &str = "wonderland";

pub fn plain_config() -> Config {
    let mut config = Config::new(
        SecurityConfig::plain_rdp(),
        DesktopSize {
            width: 320,
            height: 200,
        },
    );
    config.credentials = Some(
        Credentials {
            username: USER.into(),
            password: PASSWORD.into(),
            domain: None,
        }
        .into(),
    );
    config
}

/// An engine plus everything it emitted, on a clock the test controls.
pub struct Harness {
    pub engine: Engine,
    pub now: Instant,
    /// Bytes the engine transmitted and the client has not consumed yet.
    pub received: Vec<u8>,
    /// Every byte the engine ever transmitted.
    pub transcript: Vec<u8>,
    pub events: Vec<Event>,
    /// Every chunk the client handed to the engine, in order.
    pub sent: Vec<Vec<u8>>,
}

/// Where the client's bytes go and come from.
pub trait Link {
    /// Hands `bytes` to the server.
    fn send(&mut self, bytes: &[u8]);

    /// The next whole PDU the server sent (TPKT or fast-path); `None` when
    /// none will come: in memory, none is pending; over a socket, the
    /// server closed it.
    fn next_pdu(&mut self) -> Option<Vec<u8>>;

    /// Whether the server closed the connection, as far as the client knows.
    fn is_closed(&self) -> bool;

    /// The MCS payload of the next slow-path PDU.
    fn next_mcs(&mut self) -> Vec<u8> {
        let frame = self.next_pdu().expect("a pdu from the server");
        x224::decode_data(&frame).expect("x.224 data").to_vec()
    }

    /// The data of the next Send Data Indication.
    fn next_channel_data(&mut self) -> (u16, Vec<u8>) {
        let mcs = self.next_mcs();
        match DomainPdu::decode(&mcs).expect("domain pdu") {
            DomainPdu::SendDataIndication {
                channel_id, data, ..
            } => (channel_id, data.to_vec()),
            other => panic!("expected send data indication, got {other:?}"),
        }
    }
}

/// Cuts the first whole frame (TPKT or fast-path) off `received`.
pub fn take_frame(received: &mut Vec<u8>) -> Option<Vec<u8>> {
    let (_, len) = tpkt::frame_length(received, 0xFFFF).expect("the server sends valid frames")?;
    Some(received.drain(..len).collect())
}

impl Link for Harness {
    fn send(&mut self, bytes: &[u8]) {
        Harness::send(self, bytes);
    }

    fn next_pdu(&mut self) -> Option<Vec<u8>> {
        Harness::next_pdu(self)
    }

    fn is_closed(&self) -> bool {
        self.engine.is_closed()
    }
}

impl Harness {
    pub fn new(config: Config, seed: [u8; 32]) -> Self {
        let now = Instant::now();
        Self {
            engine: Engine::new(config, seed, now),
            now,
            received: Vec::new(),
            transcript: Vec::new(),
            events: Vec::new(),
            sent: Vec::new(),
        }
    }

    /// Hands bytes to the engine one millisecond later and drains its outputs.
    pub fn send(&mut self, bytes: &[u8]) {
        self.now += Duration::from_millis(1);
        self.sent.push(bytes.to_vec());
        self.engine.handle_input(self.now, bytes);
        self.drain();
    }

    pub fn drain(&mut self) {
        let mut buffer = Vec::new();
        while self.engine.poll_transmit(&mut buffer).is_some() {
            self.received.extend_from_slice(&buffer);
            self.transcript.extend_from_slice(&buffer);
            buffer.clear();
        }
        while let Some(event) = self.engine.poll_event() {
            self.events.push(event);
        }
    }

    /// Takes the next whole PDU the engine sent (TPKT or fast-path).
    pub fn next_pdu(&mut self) -> Option<Vec<u8>> {
        take_frame(&mut self.received)
    }

    /// The MCS payload of the next slow-path PDU.
    pub fn next_mcs(&mut self) -> Vec<u8> {
        Link::next_mcs(self)
    }

    /// The data of the next Send Data Indication.
    pub fn next_channel_data(&mut self) -> (u16, Vec<u8>) {
        Link::next_channel_data(self)
    }
}

/// What the client learned during the connection sequence.
pub struct Connected {
    pub user_channel: u16,
    pub io_channel: u16,
    pub share_id: u32,
    /// The static channel id of "cliprdr" (the first in the client's list).
    pub cliprdr: u16,
    /// The static channel id of "drdynvc" (the second in the client's list).
    pub drdynvc: u16,
}

pub fn client_gcc_data(selected: u32) -> ClientGccData {
    ClientGccData {
        core: ClientCoreData {
            version: 0x0008_0004,
            desktop_width: 320,
            desktop_height: 200,
            color_depth: 0xCA01,
            keyboard_layout: 0x409,
            client_name: "memclient".into(),
            keyboard_type: 4,
            keyboard_function_key: 12,
            post_beta2_color_depth: Some(0xCA01),
            client_product_id: Some(1),
            serial_number: Some(0),
            high_color_depth: Some(24),
            supported_color_depths: Some(0x000F),
            // SUPPORT_ERRINFO_PDU | WANT_32BPP_SESSION
            early_capability_flags: Some(0x0003),
            client_dig_product_id: Some(String::new()),
            connection_type: Some(0),
            server_selected_protocol: Some(selected),
            ..ClientCoreData::default()
        },
        security: Some(ClientSecurityData {
            encryption_methods: 0,
            ext_encryption_methods: 0,
        }),
        network: Some(ClientNetworkData {
            channels: vec![
                ChannelDef {
                    name: "cliprdr".into(),
                    options: 0xC0A0_0000,
                },
                ChannelDef {
                    name: "drdynvc".into(),
                    options: 0xC080_0000,
                },
            ],
        }),
        cluster: None,
        monitor: None,
        message_channel: None,
        multitransport: None,
    }
}

pub fn send_mcs(harness: &mut impl Link, pdu: DomainPdu<'_>) {
    let mut mcs = Vec::new();
    pdu.encode(&mut mcs);
    let mut frame = Vec::new();
    x224::encode_data(&mut frame, &mcs);
    harness.send(&frame);
}

pub fn send_io(harness: &mut impl Link, connected: &Connected, body: &[u8]) {
    send_mcs(
        harness,
        DomainPdu::SendDataRequest {
            initiator: connected.user_channel,
            channel_id: connected.io_channel,
            data: body,
        },
    );
}

pub fn send_data_pdu(harness: &mut impl Link, connected: &Connected, pdu_type2: u8, body: &[u8]) {
    let mut pdu = Vec::new();
    share::encode_data_pdu(
        &mut pdu,
        connected.user_channel,
        connected.share_id,
        pdu_type2,
        body,
    );
    send_io(harness, connected, &pdu);
}

/// How far [`connect_through`] takes the connection sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Nothing sent yet.
    Start,
    /// X.224 Connection Request sent and confirmed.
    X224,
    /// MCS Connect Initial sent and answered.
    McsConnect,
    /// Erect Domain and Attach User sent, Attach User Confirm received.
    Attached,
    /// Erect Domain, Attach User and every channel joined.
    ChannelsJoined,
    /// Client Info sent; the license and Demand Active arrived.
    ClientInfo,
    /// Confirm Active and finalization done: the session is active.
    Active,
}

/// Runs the whole connection sequence as a plain-RDP client logging on with
/// `password`; returns `None` if the engine closed the connection.
pub fn connect(harness: &mut impl Link, password: &str) -> Option<Connected> {
    connect_with(harness, password, &[])
}

/// Like `connect`, with extra capability sets (each whole, header included)
/// in the Confirm Active.
pub fn connect_with(
    harness: &mut impl Link,
    password: &str,
    extra_sets: &[Vec<u8>],
) -> Option<Connected> {
    connect_through(harness, password, extra_sets, Phase::Active)
}

/// Like `connect`, logging on as `user`.
pub fn connect_as(harness: &mut impl Link, user: &str, password: &str) -> Option<Connected> {
    let tweaks = Tweaks {
        user: Some(user.into()),
        ..Tweaks::default()
    };
    connect_through_tweaked(harness, password, &[], Phase::Active, &tweaks)
}

/// Changes a test client makes to the PDUs it sends, to see what the
/// server tolerates.
pub struct Tweaks {
    /// The variable part of the X.224 Connection Request (cookie lines and
    /// RDP_NEG_REQ), instead of the usual cookie and negotiation.
    pub connection_request: Option<Vec<u8>>,
    /// Applied to the Client Info PDU (security header first) before it goes.
    pub client_info: fn(&mut Vec<u8>),
    /// The user name logged on with, instead of `USER`.
    pub user: Option<String>,
    /// The core data's earlyCapabilityFlags, instead of SUPPORT_ERRINFO_PDU
    /// and WANT_32BPP_SESSION.
    pub early_capability_flags: Option<u16>,
}

impl Default for Tweaks {
    fn default() -> Self {
        Self {
            connection_request: None,
            client_info: |_| {},
            user: None,
            early_capability_flags: None,
        }
    }
}

/// The channels a client has once attached, before its joins.
pub struct Attached {
    pub user_channel: u16,
    pub io_channel: u16,
    pub static_channels: Vec<u16>,
}

/// Runs the connection sequence up to Attach User Confirm.
pub fn attach(harness: &mut impl Link) -> Option<Attached> {
    let connected = connect_through(harness, "", &[], Phase::Attached)?;
    Some(Attached {
        user_channel: connected.user_channel,
        io_channel: connected.io_channel,
        static_channels: vec![connected.cliprdr, connected.drdynvc],
    })
}

/// The connection sequence up to the Demand Active, as a plain-RDP client
/// logging on with `password`; `None` if the engine closed the connection.
pub fn start(harness: &mut impl Link, password: &str, tweaks: &Tweaks) -> Option<Connected> {
    connect_through_tweaked(harness, password, &[], Phase::ClientInfo, tweaks)
}

/// Runs the connection sequence up to and including `last`. Returns what
/// the client learned (ids not learned yet are 0), or `None` if the engine
/// closed the connection.
pub fn connect_through(
    harness: &mut impl Link,
    password: &str,
    extra_sets: &[Vec<u8>],
    last: Phase,
) -> Option<Connected> {
    connect_through_tweaked(harness, password, extra_sets, last, &Tweaks::default())
}

fn connect_through_tweaked(
    harness: &mut impl Link,
    password: &str,
    extra_sets: &[Vec<u8>],
    last: Phase,
    tweaks: &Tweaks,
) -> Option<Connected> {
    let mut connected = Connected {
        user_channel: 0,
        io_channel: 0,
        share_id: 0,
        cliprdr: 0,
        drdynvc: 0,
    };
    if last == Phase::Start {
        return Some(connected);
    }
    let mut request = Vec::new();
    match &tweaks.connection_request {
        Some(variable) => x224::encode_connection_request_frame(&mut request, variable),
        None => ConnectionRequest {
            cookie: Some(USER.into()),
            routing_token: None,
            negotiation: Some(NegotiationRequest {
                flags: 0,
                requested_protocols: SecurityProtocol::empty(),
            }),
        }
        .encode(&mut request),
    }
    harness.send(&request);
    let confirm = harness.next_pdu()?;
    assert!(matches!(
        ConnectionConfirm::decode(&confirm).unwrap(),
        ConnectionConfirm::Response { .. }
    ));
    if last == Phase::X224 {
        return Some(connected);
    }

    let initial = ConnectInitial {
        calling_domain_selector: vec![1],
        called_domain_selector: vec![1],
        upward_flag: true,
        target_parameters: DomainParameters::server_default(),
        minimum_parameters: DomainParameters::server_default(),
        maximum_parameters: DomainParameters::server_default(),
        gcc: {
            let mut gcc = client_gcc_data(0);
            if let Some(flags) = tweaks.early_capability_flags {
                gcc.core.early_capability_flags = Some(flags);
            }
            gcc
        },
    };
    let mut mcs = Vec::new();
    initial.encode(&mut mcs);
    let mut frame = Vec::new();
    x224::encode_data(&mut frame, &mcs);
    harness.send(&frame);
    let response = ConnectResponse::decode(&harness.next_mcs()).expect("connect response");
    let io_channel = response.gcc.network.io_channel;
    let static_channels = response.gcc.network.channel_ids.clone();
    connected.io_channel = io_channel;
    connected.cliprdr = static_channels[0];
    connected.drdynvc = static_channels[1];
    if last == Phase::McsConnect {
        return Some(connected);
    }

    send_mcs(
        harness,
        DomainPdu::ErectDomainRequest {
            sub_height: 0,
            sub_interval: 0,
        },
    );
    send_mcs(harness, DomainPdu::AttachUserRequest);
    let user_channel = match DomainPdu::decode(&harness.next_mcs()).unwrap() {
        DomainPdu::AttachUserConfirm {
            initiator: Some(id),
            ..
        } => id,
        other => panic!("expected attach user confirm, got {other:?}"),
    };
    connected.user_channel = user_channel;
    if last == Phase::Attached {
        return Some(connected);
    }
    for channel_id in [user_channel, io_channel]
        .into_iter()
        .chain(static_channels)
    {
        send_mcs(
            harness,
            DomainPdu::ChannelJoinRequest {
                initiator: user_channel,
                channel_id,
            },
        );
        assert!(matches!(
            DomainPdu::decode(&harness.next_mcs()).unwrap(),
            DomainPdu::ChannelJoinConfirm { result: 0, .. }
        ));
    }
    if last == Phase::ChannelsJoined {
        return Some(connected);
    }

    let mut info = Vec::new();
    client_info::ClientInfoPdu {
        code_page: 0,
        flags: client_info::InfoFlags::MOUSE | client_info::InfoFlags::UNICODE,
        domain: String::new(),
        user_name: tweaks.user.clone().unwrap_or_else(|| USER.into()),
        password: crate::security::password::Password::new(password),
        alternate_shell: String::new(),
        working_dir: String::new(),
        extended: None,
    }
    .encode(&mut info);
    (tweaks.client_info)(&mut info);
    send_io(harness, &connected, &info);
    if harness.is_closed() {
        return None;
    }
    let (_, _license) = harness.next_channel_data();
    let (_, demand_active) = harness.next_channel_data();
    connected.share_id = u32::from_le_bytes(demand_active[6..10].try_into().unwrap());
    if last == Phase::ClientInfo {
        return Some(connected);
    }

    send_confirm_active(harness, &connected, extra_sets);
    send_finalization(harness, &connected);
    // Server Synchronize, Cooperate, Granted, Font Map.
    for _ in 0..4 {
        harness.next_channel_data();
    }
    // Then the DRDYNVC capabilities request on the static channel.
    let (channel_id, caps) = harness.next_channel_data();
    assert_eq!(channel_id, connected.drdynvc);
    assert_eq!(caps[8], 0x50, "dvc capabilities request");
    Some(connected)
}

/// The Confirm Active with General (fast-path output), Multifragment Update
/// and `extra_sets`.
pub fn send_confirm_active(harness: &mut impl Link, connected: &Connected, extra_sets: &[Vec<u8>]) {
    // Confirm Active with General (fast-path output) and Multifragment Update.
    let mut sets = Vec::new();
    sets.extend_from_slice(&[1, 0, 24, 0]);
    sets.extend_from_slice(&[
        1, 0, 3, 0, 0, 2, 0, 0, 0, 0, 0x05, 0x04, 0, 0, 0, 0, 0, 0, 1, 1,
    ]);
    sets.extend_from_slice(&[26, 0, 8, 0]);
    sets.extend_from_slice(&(1u32 << 20).to_le_bytes());
    for set in extra_sets {
        sets.extend_from_slice(set);
    }
    let mut confirm = Vec::new();
    let count = 2 + extra_sets.len() as u16;
    share::encode_confirm_active(
        &mut confirm,
        connected.user_channel,
        connected.share_id,
        count,
        &sets,
    );
    send_io(harness, connected, &confirm);
}

/// A capability set: its type, its length and `body`.
pub fn set(kind: u16, body: &[u8]) -> Vec<u8> {
    let mut out = kind.to_le_bytes().to_vec();
    out.extend_from_slice(&((body.len() + 4) as u16).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// A TS_RFX_CLNT_CAPS_CONTAINER with one RLGR3 video-mode icap.
pub fn remotefx_properties() -> Vec<u8> {
    let icap = [0x00, 0x01, 64, 0, 0, 1, 1, 4];
    let mut capset = vec![0xC1, 0xCB];
    capset.extend_from_slice(&((13 + icap.len()) as u32).to_le_bytes());
    capset.extend_from_slice(&[1, 0xC0, 0xCF, 1, 0, icap.len() as u8, 0]);
    capset.extend_from_slice(&icap);
    let mut caps = vec![0xC0, 0xCB, 8, 0, 0, 0, 1, 0];
    caps.extend_from_slice(&capset);
    let mut container = ((12 + caps.len()) as u32).to_le_bytes().to_vec();
    container.extend_from_slice(&[0; 4]);
    container.extend_from_slice(&(caps.len() as u32).to_le_bytes());
    container.extend_from_slice(&caps);
    container
}

/// The Confirm Active sets of a RemoteFX client that acknowledges frames.
pub fn remotefx_client_sets() -> Vec<Vec<u8>> {
    let mut codecs = vec![1];
    codecs.extend_from_slice(&CODEC_GUID_REMOTEFX);
    codecs.push(3); // codecID
    let properties = remotefx_properties();
    codecs.extend_from_slice(&(properties.len() as u16).to_le_bytes());
    codecs.extend_from_slice(&properties);
    vec![
        set(28, &[0x52, 0, 0, 0, 0, 0, 0, 0]),
        set(29, &codecs),
        set(30, &[2, 0, 0, 0]),
    ]
}

/// Sends one DVC message to the server on the drdynvc static channel.
pub fn send_dvc(harness: &mut impl Link, connected: &Connected, message: &[u8]) {
    let mut chunk = Vec::new();
    chunk.extend_from_slice(&(message.len() as u32).to_le_bytes());
    chunk.extend_from_slice(&0x13u32.to_le_bytes()); // FIRST | LAST | SHOW_PROTOCOL
    chunk.extend_from_slice(message);
    send_mcs(
        harness,
        DomainPdu::SendDataRequest {
            initiator: connected.user_channel,
            channel_id: connected.drdynvc,
            data: &chunk,
        },
    );
}

/// The client's finalization PDUs: Synchronize, Control Cooperate, Control
/// Request Control, Font List.
pub fn send_finalization(harness: &mut impl Link, connected: &Connected) {
    let mut body = Vec::new();
    data_pdus::encode_synchronize(&mut body, 1002);
    send_data_pdu(harness, connected, data_pdus::PDUTYPE2_SYNCHRONIZE, &body);
    for action in [
        data_pdus::ControlAction::Cooperate,
        data_pdus::ControlAction::RequestControl,
    ] {
        body.clear();
        data_pdus::encode_control(&mut body, action, 0, 0);
        send_data_pdu(harness, connected, data_pdus::PDUTYPE2_CONTROL, &body);
    }
    body.clear();
    data_pdus::encode_font_list(&mut body);
    send_data_pdu(harness, connected, data_pdus::PDUTYPE2_FONTLIST, &body);
}

/// The next fast-path update, its fragments reassembled: its update code
/// and payload; `None` when the server sent nothing more.
pub fn next_update(link: &mut impl Link) -> Option<(u8, Vec<u8>)> {
    let mut payload = Vec::new();
    loop {
        let pdu = link.next_pdu()?;
        if pdu[0] & 0x03 != 0 {
            // A slow-path PDU (TPKT) between updates.
            continue;
        }
        let start = if pdu[1] & 0x80 != 0 { 3 } else { 2 };
        let header = pdu[start];
        let size = usize::from(u16::from_le_bytes([pdu[start + 1], pdu[start + 2]]));
        payload.extend_from_slice(&pdu[start + 3..start + 3 + size]);
        let fragmentation = header >> 4 & 0x03;
        // Single (0) or last (1) ends the update.
        if fragmentation == 0 || fragmentation == 1 {
            return Some((header & 0x0F, payload));
        }
    }
}

/// The id of the frame a surface commands payload (update code 4) ends,
/// when it ends with a TS_FRAME_MARKER of frameAction SURFACECMD_FRAMEACTION_END.
pub fn frame_end(payload: &[u8]) -> Option<u32> {
    let marker = payload.get(payload.len().checked_sub(8)?..)?;
    (marker[..4] == [4, 0, 1, 0]).then(|| u32::from_le_bytes(marker[4..].try_into().unwrap()))
}

/// Acknowledges frame `frame_id` (TS_FRAME_ACKNOWLEDGE_PDU).
pub fn send_frame_acknowledge(link: &mut impl Link, connected: &Connected, frame_id: u32) {
    send_data_pdu(
        link,
        connected,
        data_pdus::PDUTYPE2_FRAME_ACKNOWLEDGE,
        &frame_id.to_le_bytes(),
    );
}

/// Moves the pointer to (`x`, `y`) with a fast-path input PDU.
pub fn send_mouse_move(link: &mut impl Link, x: u16, y: u16) {
    let mut pdu = Vec::new();
    crate::session::fastpath_input::encode_input(
        &[crate::session::fastpath_input::FastPathInputEvent::Mouse {
            // PTRFLAGS_MOVE
            flags: 0x0800,
            x,
            y,
        }],
        &mut pdu,
    );
    link.send(&pdu);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_stops_at_every_phase() {
        for phase in [
            Phase::Start,
            Phase::X224,
            Phase::McsConnect,
            Phase::ChannelsJoined,
            Phase::ClientInfo,
            Phase::Active,
        ] {
            let mut harness = Harness::new(plain_config(), [3; 32]);
            let connected =
                connect_through(&mut harness, PASSWORD, &[], phase).expect("the engine goes along");
            assert!(!harness.engine.is_closed(), "{phase:?}");
            assert_eq!(harness.engine.is_active(), phase == Phase::Active);
            assert_eq!(connected.share_id != 0, phase >= Phase::ClientInfo);
            assert!(
                harness.received.is_empty(),
                "{phase:?}: a server pdu is left"
            );
        }
    }
}
