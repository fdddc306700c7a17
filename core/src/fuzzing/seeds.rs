//! Seed corpora for the fuzz targets, cut from recorded sessions.
//!
//! A recording holds every frame a client sent, above TLS. Each frame is
//! peeled with the crate's own decoders, layer by layer, and the bytes at
//! each layer become a seed of the target that fuzzes that layer; the
//! engine targets get the rest of the session from the phase they start
//! at. [`synthetic`] adds seeds for what recordings do not hold in clear
//! (delegated credentials travel sealed) or rarely hold (monitor layouts).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::api::display::MonitorLayout;
use crate::api::sound::AudioFormat;
use crate::channels::display_control;
use crate::channels::dvc::ClientDvcPdu;
use crate::channels::rdpsnd::AudioFormatsPdu;
use crate::channels::svc::{self, Reassembler};
use crate::connection::data_pdus;
use crate::connection::share::{self, ClientShareControlPdu};
use crate::fuzzing::{self, Setup, push_record};
use crate::record::format;
use crate::record::reader::{Entry, Reader};
use crate::record::recorder::Recorder;
use crate::security::credssp::{PasswordCredentials, TsRequest};
use crate::security::ntlm::{self, NegotiateMessage};
use crate::security::password::Password;
use crate::session::fastpath_input::FastPathInputEvent;
use crate::test_client::{self, Connected, Harness, Phase};
use crate::wire::ber;
use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;
use crate::wire::mcs::{ConnectInitial, ConnectResponse, DomainPdu};
use crate::wire::tpkt::{self, FrameKind};
use crate::wire::x224;
use crate::{Command, CommandError};

/// One seed: the target it is for and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    pub target: &'static str,
    pub bytes: Vec<u8>,
}

/// Seeds for the recording target stay under this size, so they do not
/// raise the fuzzer's input length limit for everyone.
const MAX_RECORDING_SEED: usize = 4096;
/// The engine targets take at most this much of the rest of a session.
const MAX_ENGINE_SEED: usize = 16 * 1024;
/// Sequences for the channel and CredSSP state machines: the whole one,
/// and its first few messages.
const SHORT_SEQUENCE: usize = 8;

/// The seeds a recorded session gives every target it reaches.
pub fn from_recording(recording: &[u8]) -> Result<Vec<Seed>, DecodeError> {
    let mut cursor = ReadCursor::new(recording, "recording");
    let header = format::decode_header(&mut cursor, None)?;
    let mut reader = Reader::new(cursor);
    let mut trimmed = Recorder::new(&header.config, &header.seed, header.public_key.as_deref());
    let mut trimmed_bytes = Vec::new();
    let mut peeler = Peeler::default();
    while let Some(entry) = reader.next_entry()? {
        // The recording target gets the session's start, long outputs cut.
        if trimmed_bytes.len() < MAX_RECORDING_SEED {
            let entry = match entry {
                Entry::Output(bytes) => Entry::Output(&bytes[..bytes.len().min(64)]),
                ref other => clone_entry(other),
            };
            if !matches!(&entry, Entry::Command(Command::Bitmap { update, .. }) if update.data.len() > 1024)
            {
                record_entry(&mut trimmed, &entry);
            }
            let _ = trimmed.drain(&mut trimmed_bytes, false);
        }
        match entry {
            Entry::Frame { frame, .. } => peeler.frame(frame),
            Entry::Output(bytes) => peeler.output(bytes),
            _ => {}
        }
    }
    let _ = trimmed.drain(&mut trimmed_bytes, true);
    let mut seeds = peeler.finish();
    seeds.push(Seed {
        target: "recording",
        bytes: trimmed_bytes,
    });
    Ok(seeds)
}

/// Entries borrow the recording; this one borrows the same bytes.
fn clone_entry<'a>(entry: &Entry<'a>) -> Entry<'a> {
    match entry {
        Entry::Frame { at, frame, verdict } => Entry::Frame {
            at: *at,
            frame,
            verdict: *verdict,
        },
        Entry::Eof(at) => Entry::Eof(*at),
        Entry::Timeout(at) => Entry::Timeout(*at),
        Entry::Command(command) => Entry::Command(command.clone()),
        Entry::Echo { at, payload } => Entry::Echo { at: *at, payload },
        Entry::Output(bytes) => Entry::Output(bytes),
        Entry::Event(text) => Entry::Event(text),
    }
}

/// Writes `entry` into `recorder` as the engine would have; returns
/// `false` for a command the engine refuses before recording it.
pub(crate) fn record_entry(recorder: &mut Recorder, entry: &Entry<'_>) -> bool {
    match entry {
        Entry::Frame { at, frame, verdict } => {
            recorder.frame(*at, frame);
            if let Some(accepted) = verdict {
                recorder.verdict(*accepted);
            }
        }
        Entry::Eof(at) => recorder.eof(*at),
        Entry::Timeout(at) => recorder.timeout(*at),
        Entry::Command(command) => {
            let valid: Result<(), CommandError> = match command {
                Command::Bitmap { update, .. } => update.validate(),
                Command::Pointer(image) => image.validate(),
                Command::ColorPointer(pointer) => pointer.validate(),
                _ => Ok(()),
            };
            if valid.is_err() {
                return false;
            }
            recorder.command(Duration::ZERO, command);
        }
        Entry::Echo { at, payload } => recorder.command(
            *at,
            &Command::RequestEcho {
                now: Instant::now(),
                payload,
            },
        ),
        Entry::Output(bytes) => recorder.output(bytes),
        Entry::Event(text) => recorder.event(text),
    }
    true
}

/// Peels the client's frames of one session in order.
#[derive(Default)]
struct Peeler {
    seeds: Vec<Seed>,
    /// Every client frame so far.
    frames: Vec<Vec<u8>>,
    /// Where each engine target starts: the index of its first frame.
    starts: Vec<(&'static str, usize)>,
    io_channel: Option<u16>,
    /// The client's static channel names, in its order.
    channel_names: Vec<String>,
    /// Static channel ids by name, from the server's Connect Response.
    channels: HashMap<u16, String>,
    reassemblers: HashMap<u16, Reassembler>,
    client_info_seen: bool,
    active: bool,
    /// Sequences for the state machine targets, as records.
    sequences: HashMap<&'static str, Vec<Vec<u8>>>,
}

impl Peeler {
    fn seed(&mut self, target: &'static str, bytes: &[u8]) {
        let seed = Seed {
            target,
            bytes: bytes.to_vec(),
        };
        if !self.seeds.contains(&seed) {
            self.seeds.push(seed);
        }
    }

    fn sequence(&mut self, target: &'static str, record: Vec<u8>) {
        self.sequences.entry(target).or_default().push(record);
    }

    /// The engine target `target` starts at the next frame.
    fn start_next(&mut self, target: &'static str) {
        if !self.starts.iter().any(|(known, _)| *known == target) {
            self.starts.push((target, self.frames.len()));
        }
    }

    /// Server output (whole PDUs): learns the channel ids from the Connect
    /// Response.
    fn output(&mut self, mut bytes: &[u8]) {
        while let Ok(Some((kind, len))) = tpkt::frame_length(bytes, usize::MAX) {
            let (frame, rest) = bytes.split_at(len);
            bytes = rest;
            if kind != FrameKind::X224 {
                continue;
            }
            let Ok(payload) = x224::decode_data(frame) else {
                continue;
            };
            if let Ok(response) = ConnectResponse::decode(payload) {
                let network = response.gcc.network;
                self.io_channel = Some(network.io_channel);
                for (id, name) in network.channel_ids.iter().zip(&self.channel_names) {
                    self.channels.insert(*id, name.clone());
                }
            }
        }
    }

    fn frame(&mut self, frame: &[u8]) {
        if self.frames.is_empty() {
            self.start_next("engine_start");
        }
        // A TSRequest's first byte could start a fast-path PDU too.
        if let Ok(request) = TsRequest::decode(frame) {
            self.ts_request(frame, &request);
        } else {
            self.seed("tpkt_frame", frame);
            match tpkt::frame_length(frame, usize::MAX) {
                Ok(Some((FrameKind::FastPath, _))) => self.seed("fastpath_input", frame),
                Ok(Some((FrameKind::X224, _))) => self.x224(frame),
                _ => {}
            }
        }
        self.frames.push(frame.to_vec());
    }

    fn ts_request(&mut self, frame: &[u8], request: &TsRequest) {
        self.seed("credssp_ts_request", frame);
        self.sequence("credssp_server", frame.to_vec());
        for token in &request.nego_tokens {
            let Some(start) = token.windows(8).position(|window| window == b"NTLMSSP\0") else {
                continue;
            };
            let message = &token[start..];
            match message.get(8) {
                Some(1) => self.seed("ntlm_negotiate", message),
                Some(3) => self.seed("ntlm_authenticate", message),
                _ => {}
            }
        }
    }

    fn x224(&mut self, frame: &[u8]) {
        // X.224 Connection Request: TPDU code 0xE0.
        if frame.get(5).is_some_and(|code| code & 0xF0 == 0xE0) {
            self.seed("x224_connection_request", frame);
            self.start_next("engine_after_x224");
            return;
        }
        let Ok(payload) = x224::decode_data(frame) else {
            return;
        };
        if let Ok(initial) = ConnectInitial::decode(payload) {
            self.connect_initial(payload, initial);
            return;
        }
        self.seed("mcs_domain_pdu", payload);
        for choice in 5..8 {
            self.seed("ber_per", &[&[choice][..], &payload[1..]].concat());
        }
        if let Ok(DomainPdu::SendDataRequest {
            channel_id, data, ..
        }) = DomainPdu::decode(payload)
        {
            if Some(channel_id) == self.io_channel {
                self.io_data(data);
            } else {
                self.static_data(channel_id, data);
            }
        }
    }

    fn connect_initial(&mut self, payload: &[u8], initial: ConnectInitial) {
        self.seed("mcs_connect_initial", payload);
        for choice in 0..5 {
            self.seed("ber_per", &[&[choice][..], payload].concat());
        }
        if let Ok(user_data) = connect_initial_user_data(payload) {
            self.seed("gcc_conference_create_request", user_data);
            // The blocks start with the core data's header (0xC001).
            if let Some(start) = user_data.windows(2).position(|pair| pair == [0x01, 0xC0]) {
                self.seed("gcc_client_data_blocks", &user_data[start..]);
            }
        }
        self.channel_names = initial
            .gcc
            .network
            .map(|network| network.channels.into_iter().map(|c| c.name).collect())
            .unwrap_or_default();
        self.start_next("engine_after_mcs_connect");
    }

    /// Data on the I/O channel: Client Info first, then share control PDUs.
    fn io_data(&mut self, data: &[u8]) {
        if !self.client_info_seen {
            self.client_info_seen = true;
            self.seed("client_info", data);
            self.starts
                .push(("engine_after_channel_joins", self.frames.len()));
            self.starts
                .push(("engine_after_client_info", self.frames.len() + 1));
            return;
        }
        self.seed("share_control", data);
        match share::decode_client_share_control(data) {
            Ok((_, ClientShareControlPdu::ConfirmActive(_))) => {
                if let Some(combined) = confirm_active_capabilities(data) {
                    self.seed("capability_sets", combined);
                }
            }
            Ok((_, ClientShareControlPdu::Data { header, body })) => {
                let target = match header.pdu_type2 {
                    data_pdus::PDUTYPE2_FRAME_ACKNOWLEDGE => Some("frame_acknowledge"),
                    data_pdus::PDUTYPE2_REFRESH_RECT => Some("refresh_rect"),
                    data_pdus::PDUTYPE2_SUPPRESS_OUTPUT => Some("suppress_output"),
                    _ => None,
                };
                if let Some(target) = target {
                    self.seed(target, body);
                }
                self.seed("share_data", &[&[header.pdu_type2][..], body].concat());
                if header.pdu_type2 == data_pdus::PDUTYPE2_FONTLIST && !self.active {
                    self.active = true;
                    self.start_next("engine_active");
                }
            }
            _ => {}
        }
    }

    /// A static channel chunk: reassembled, then handed to the target of
    /// the channel it travels on.
    fn static_data(&mut self, channel_id: u16, chunk: &[u8]) {
        self.sequence("svc_reassembler", chunk.to_vec());
        let reassembler = self.reassemblers.entry(channel_id).or_default();
        let Ok(Some(message)) = reassembler.push(chunk, 1 << 20) else {
            return;
        };
        match self.channels.get(&channel_id).map(String::as_str) {
            Some("cliprdr") => self.sequence("cliprdr_server", [&[0][..], &message].concat()),
            Some("rdpsnd") => self.sequence("rdpsnd_server", [&[0][..], &message].concat()),
            Some("drdynvc") => {
                self.seed("dvc_pdu", &message);
                self.sequence("dvc_host", message.clone());
                // Display Control is the server's dynamic channel 2.
                if let Ok(ClientDvcPdu::Data {
                    channel_id: 2,
                    data,
                }) = ClientDvcPdu::decode(&message)
                {
                    self.seed("display_control", data);
                }
            }
            _ => {}
        }
    }

    fn finish(mut self) -> Vec<Seed> {
        let mut sequences: Vec<_> = std::mem::take(&mut self.sequences).into_iter().collect();
        sequences.sort_by_key(|(target, _)| *target);
        for (target, records) in sequences {
            for count in [SHORT_SEQUENCE.min(records.len()), records.len()] {
                let mut bytes = Vec::new();
                for record in &records[..count] {
                    push_record(&mut bytes, record);
                }
                self.seed(target, &bytes);
            }
        }
        let starts = std::mem::take(&mut self.starts);
        let frames = std::mem::take(&mut self.frames);
        for (target, start) in starts {
            let rest = frames.get(start..).unwrap_or_default();
            if let Some(first) = rest.first() {
                self.seed(target, first);
            }
            let mut stream = Vec::new();
            for frame in rest {
                if stream.len() + frame.len() > MAX_ENGINE_SEED {
                    break;
                }
                stream.extend_from_slice(frame);
            }
            self.seed(target, &stream);
        }
        self.seeds
    }
}

/// The userData OCTET STRING of an MCS Connect Initial.
fn connect_initial_user_data(payload: &[u8]) -> Result<&[u8], DecodeError> {
    let mut outer = ReadCursor::new(payload, "mcs connect initial");
    let length = ber::read_application_tag(&mut outer, 101)?;
    let mut cursor = ReadCursor::new(outer.read_slice(length)?, "mcs connect initial");
    ber::read_octet_string(&mut cursor)?;
    ber::read_octet_string(&mut cursor)?;
    ber::read_boolean(&mut cursor)?;
    for _ in 0..3 {
        let length = ber::read_tag(&mut cursor, ber::TAG_SEQUENCE)?;
        cursor.skip(length)?;
    }
    ber::read_octet_string(&mut cursor)
}

/// The combined capabilities of a Confirm Active (numberCapabilities,
/// pad2Octets and the sets), what the capability target reads.
fn confirm_active_capabilities(pdu: &[u8]) -> Option<&[u8]> {
    // Share control header (6), shareId (4), originatorId (2), then the lengths.
    let mut cursor = ReadCursor::new(pdu.get(12..)?, "confirm active");
    let descriptor = usize::from(cursor.read_u16_le().ok()?);
    let combined = usize::from(cursor.read_u16_le().ok()?);
    cursor.skip(descriptor).ok()?;
    cursor.read_slice(combined).ok()
}

/// The engine targets' own client, whose ids (share, channels) match the
/// engine they run: the rest of its connection sequence from each phase,
/// then a session of input, graphics control PDUs and channel traffic.
fn engine_sessions() -> Vec<Seed> {
    let phases = [
        (Phase::Start, "engine_start"),
        (Phase::X224, "engine_after_x224"),
        (Phase::McsConnect, "engine_after_mcs_connect"),
        (Phase::ChannelsJoined, "engine_after_channel_joins"),
        (Phase::ClientInfo, "engine_after_client_info"),
        (Phase::Active, "engine_active"),
    ];
    // Where each phase starts among the client's sends.
    let starts: Vec<usize> = phases
        .iter()
        .map(|&(phase, _)| {
            let mut harness = fuzzing::engine_harness();
            test_client::connect_through(&mut harness, test_client::PASSWORD, &[], phase)
                .expect("the client reaches its phase");
            harness.sent.len()
        })
        .collect();
    let (sent, active) = scripted_session(Setup::Plain);
    let mut seeds = Vec::new();
    for (&(_, target), &start) in phases.iter().zip(&starts) {
        seeds.push(Seed {
            target,
            bytes: sent[start..].concat(),
        });
    }
    for message in &sent[active..] {
        seeds.push(Seed {
            target: "engine_active",
            bytes: message.clone(),
        });
    }
    // After a resize the client confirms and finalizes again, then goes on.
    let client_info = starts[phases.len() - 2];
    seeds.push(Seed {
        target: "engine_reactivating",
        bytes: sent[client_info..].concat(),
    });
    let (sent, active) = scripted_session(Setup::RemoteFx);
    seeds.push(Seed {
        target: "engine_active_remotefx",
        bytes: sent[active..].concat(),
    });
    seeds
}

/// Everything the client sends in its scripted session with the engine
/// set up as `setup` asks, and where the active session starts.
fn scripted_session(setup: Setup) -> (Vec<Vec<u8>>, usize) {
    let mut harness = fuzzing::engine_harness();
    let sets = fuzzing::engine_capability_sets(setup);
    let connected = test_client::connect_with(&mut harness, test_client::PASSWORD, &sets)
        .expect("the client connects");
    let active = harness.sent.len();
    active_session(&mut harness, &connected);
    (harness.sent, active)
}

/// What an active client sends: input both ways, the graphics control
/// PDUs, clipboard and dynamic channel traffic, and last a shutdown.
fn active_session(harness: &mut Harness, connected: &Connected) {
    // Fast-path input: the event count in the header, a two-byte length.
    let mut events = Vec::new();
    for event in [
        FastPathInputEvent::Scancode {
            flags: 0,
            code: 0x1E,
        },
        FastPathInputEvent::Mouse {
            flags: 0x0800,
            x: 10,
            y: 20,
        },
        FastPathInputEvent::Unicode {
            flags: 0,
            code: 0x41,
        },
        FastPathInputEvent::RelativeMouse {
            flags: 0x0800,
            dx: -3,
            dy: 4,
        },
        FastPathInputEvent::Sync { flags: 2 },
    ] {
        event.encode(&mut events);
    }
    let length = 3 + events.len();
    let mut pdu = vec![5 << 2, 0x80 | (length >> 8) as u8, length as u8];
    pdu.extend_from_slice(&events);
    harness.send(&pdu);
    // Slow-path input: one scancode and one mouse event.
    let mut input = vec![2, 0, 0, 0];
    input.extend_from_slice(&[0, 0, 0, 0, 0x04, 0x00, 0, 0, 0x1E, 0, 0, 0]);
    input.extend_from_slice(&[0, 0, 0, 0, 0x01, 0x80, 0x00, 0x08, 5, 0, 6, 0]);
    let area = [0, 0, 0, 0, 63, 0, 47, 0];
    for (pdu_type2, body) in [
        (data_pdus::PDUTYPE2_INPUT, &input[..]),
        (data_pdus::PDUTYPE2_SUPPRESS_OUTPUT, &[0, 0, 0, 0][..]),
        (
            data_pdus::PDUTYPE2_SUPPRESS_OUTPUT,
            &[&[1, 0, 0, 0][..], &area].concat(),
        ),
        (
            data_pdus::PDUTYPE2_REFRESH_RECT,
            &[&[1, 0, 0, 0][..], &area].concat(),
        ),
        (data_pdus::PDUTYPE2_FRAME_ACKNOWLEDGE, &[1, 0, 0, 0][..]),
        (data_pdus::PDUTYPE2_BITMAPCACHE_PERSISTENT_LIST, &[][..]),
    ] {
        test_client::send_data_pdu(harness, connected, pdu_type2, body);
    }
    // Clipboard on its static channel: the client's messages only.
    for message in clipboard_messages() {
        if message[0] != 0 {
            continue;
        }
        let mut chunks = Vec::new();
        svc::chunk(&message[1..], 8, svc::CHANNEL_FLAG_SHOW_PROTOCOL, |chunk| {
            chunks.push(chunk.to_vec());
        });
        for chunk in chunks {
            test_client::send_mcs(
                harness,
                DomainPdu::SendDataRequest {
                    initiator: connected.user_channel,
                    channel_id: connected.cliprdr,
                    data: &chunk,
                },
            );
        }
    }
    // DRDYNVC: capabilities, ECHO and Display Control accepted, an echo
    // answer and a monitor layout.
    for message in [
        &[0x50, 0x00, 0x03, 0x00][..],
        &[0x10, 0x01, 0, 0, 0, 0],
        &[0x10, 0x02, 0, 0, 0, 0],
        &[0x30, 0x01, 1, 0, 0, 0],
        &[&[0x30, 0x02][..], &monitor_layout()].concat(),
    ] {
        test_client::send_dvc(harness, connected, message);
    }
    test_client::send_data_pdu(
        harness,
        connected,
        data_pdus::PDUTYPE2_SHUTDOWN_REQUEST,
        &[],
    );
}

/// A Display Control layout of two monitors.
fn monitor_layout() -> Vec<u8> {
    let monitor = MonitorLayout {
        primary: true,
        left: 0,
        top: 0,
        width: 1024,
        height: 768,
        orientation: 0,
        desktop_scale_factor: 100,
        device_scale_factor: 100,
    };
    let mut layout = Vec::new();
    display_control::encode_monitor_layout(
        &mut layout,
        &[
            monitor,
            MonitorLayout {
                primary: false,
                left: 1024,
                ..monitor
            },
        ],
    );
    layout
}

/// Clipboard messages from a client, each after the operation byte of
/// the clipboard target (0: a message from the client), and two of the
/// application's commands: capabilities with long names, a format list,
/// a data request, our request and its answer, file contents, a lock.
fn clipboard_messages() -> Vec<Vec<u8>> {
    let cliprdr = |msg_type: u16, flags: u16, body: &[u8]| {
        let mut message = vec![0];
        message.extend_from_slice(&msg_type.to_le_bytes());
        message.extend_from_slice(&flags.to_le_bytes());
        message.extend_from_slice(&(body.len() as u32).to_le_bytes());
        message.extend_from_slice(body);
        message
    };
    let mut format_list = 13u32.to_le_bytes().to_vec();
    format_list.extend_from_slice(&[0, 0]);
    format_list.extend_from_slice(&0xC004u32.to_le_bytes());
    format_list.extend(
        "FileGroupDescriptorW"
            .encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes),
    );
    let mut file_request = Vec::new();
    for word in [1u32, 0, 2, 0, 0, 4096] {
        file_request.extend_from_slice(&word.to_le_bytes());
    }
    vec![
        cliprdr(7, 0, &[1, 0, 0, 0, 1, 0, 12, 0, 2, 0, 0, 0, 0x1E, 0, 0, 0]),
        cliprdr(2, 0, &format_list),
        cliprdr(4, 0, &13u32.to_le_bytes()),
        [&[0xC8][..], &13u32.to_le_bytes()].concat(),
        cliprdr(5, 1, b"h\0i\0\0\0"),
        cliprdr(8, 0, &file_request),
        cliprdr(10, 0, &7u32.to_le_bytes()),
        [&[0xD0][..], b"answer"].concat(),
    ]
}

/// Seeds for layers recordings do not show in clear.
pub fn synthetic() -> Vec<Seed> {
    let mut seeds = engine_sessions();
    let mut seed = |target, bytes| seeds.push(Seed { target, bytes });

    seed(
        "credssp_ts_credentials",
        PasswordCredentials {
            domain: "CONTOSO".into(),
            user: "alice".into(),
            password: Password::new("secret"),
        }
        .encode(),
    );

    let mut negotiate = Vec::new();
    NegotiateMessage {
        flags: ntlm::flags::SUPPORTED,
    }
    .encode(&mut negotiate);
    seed("ntlm_negotiate", negotiate.clone());
    let first = TsRequest {
        version: 6,
        nego_tokens: vec![negotiate],
        ..TsRequest::default()
    }
    .encode();
    seed("credssp_ts_request", first.clone());
    let mut sequence = Vec::new();
    push_record(&mut sequence, &first);
    seed("credssp_server", sequence);

    seed(
        "routing_token",
        crate::wire::routing_token::encode("127.0.0.2:3390".parse().expect("address")),
    );
    seed(
        "routing_token",
        b"Cookie: msts=3640205228.15629.0000".to_vec(),
    );
    let mut redirection = crate::api::routing::Redirection::new(4242);
    redirection.target_addresses = vec!["127.0.0.3".into(), "10.0.0.3".into()];
    redirection.load_balance_info = Some(b"Cookie: msts=50331775.15629.0000\r\n".to_vec());
    redirection.user_name = Some("alice".into());
    redirection.domain = Some("FARM".into());
    redirection.password_cookie = Some(Password::new("one-time"));
    redirection.target_fqdn = Some("member.farm".into());
    redirection.target_netbios_name = Some("MEMBER".into());
    let mut packet = Vec::new();
    crate::connection::redirection::encode_packet(&mut packet, &redirection)
        .expect("a short packet");
    seed("server_redirection_packet", packet);

    let layout = monitor_layout();
    seed("display_control", layout.clone());

    // The Graphics Pipeline: xfreerdp /gfx:AVC420's Caps Advertise, then a
    // Frame Acknowledge and a QoE acknowledgement in one message; a frame
    // of server PDUs.
    let mut client_pdus = Vec::new();
    for pdu in [
        crate::graphics::egfx::pdu::ClientPdu::CapsAdvertise(vec![
            crate::graphics::egfx::pdu::CapabilitySet {
                version: 0x0008_0004,
                data: vec![0; 4],
            },
            crate::graphics::egfx::pdu::CapabilitySet {
                version: 0x0008_0105,
                data: vec![0x13, 0, 0, 0],
            },
        ]),
        crate::graphics::egfx::pdu::ClientPdu::FrameAcknowledge {
            queue_depth: 0,
            frame_id: 1,
            total_frames_decoded: 1,
        },
        crate::graphics::egfx::pdu::ClientPdu::QoeFrameAcknowledge {
            frame_id: 1,
            timestamp: 5,
            time_diff_se: 1,
            time_diff_edr: 1,
        },
    ] {
        pdu.encode(&mut client_pdus);
    }
    seed("egfx_client_pdu", client_pdus);
    let mut server_pdus = Vec::new();
    for pdu in [
        crate::graphics::egfx::pdu::ServerPdu::StartFrame {
            timestamp: 0,
            frame_id: 1,
        },
        crate::graphics::egfx::pdu::ServerPdu::WireToSurface1 {
            surface_id: 1,
            codec_id: 0x000A,
            pixel_format: 0x20,
            destination: crate::graphics::egfx::pdu::Rect16 {
                left: 0,
                top: 0,
                right: 2,
                bottom: 1,
            },
            bitmap_data: &[0x20, 1, 2, 3, 4, 5, 6, 0],
        },
        crate::graphics::egfx::pdu::ServerPdu::EndFrame { frame_id: 1 },
    ] {
        pdu.encode(&mut server_pdus);
    }
    seed("egfx_server_pdu", server_pdus);

    // ZGFX: MS-RDPEDYC 4.3.3's bitstream as an RDP 8.0 segment, and a
    // compressed multipart stream.
    seed("zgfx", vec![0xE0, 0x24, 0x38, 0xC4, 0x3F, 0xF4, 0x74, 0x01]);
    let mut multipart = Vec::new();
    let pattern: Vec<u8> = (0..70_000u32).map(|at| (at % 251) as u8).collect();
    rdpserve_codecs::zgfx::ZgfxCompressor::new()
        .compress(&pattern, &mut multipart)
        .expect("compresses");
    seed("zgfx", multipart);

    // The DVC host: capabilities, ECHO (1) and Display Control (2) accepted,
    // an echo, a layout in two parts, the application channel (16) closed.
    let mut dvc = Vec::new();
    let mut layout_first = vec![0x20, 0x02, layout.len() as u8];
    layout_first.extend_from_slice(&layout[..20]);
    let mut layout_rest = vec![0x30, 0x02];
    layout_rest.extend_from_slice(&layout[20..]);
    for message in [
        &[0x50, 0x00, 0x03, 0x00][..],
        &[0x10, 0x01, 0, 0, 0, 0],
        &[0x10, 0x02, 0, 0, 0, 0],
        &[0x10, 0x10, 0, 0, 0, 0],
        &[0x30, 0x01, 1, 0, 0, 0],
        &layout_first,
        &layout_rest,
        &[0x30, 0x10, b'h', b'i'],
        &[0x40, 0x10],
    ] {
        push_record(&mut dvc, message);
    }
    seed("dvc_host", dvc);

    let mut clipboard = Vec::new();
    for message in clipboard_messages() {
        push_record(&mut clipboard, &message);
    }
    seed("cliprdr_server", clipboard);

    // Sound: the client's formats, training confirmed, a wave and its
    // confirmation, quality mode, volume.
    let mut formats = vec![0];
    AudioFormatsPdu {
        flags: 0x3,
        volume: 0xFFFF_FFFF,
        pitch: 0,
        dgram_port: 0,
        last_block_confirmed: 0,
        version: 8,
        formats: vec![AudioFormat::pcm(2, 44_100, 16)],
    }
    .encode(&mut formats)
    .expect("one format fits");
    let mut sound = Vec::new();
    for message in [
        formats,
        vec![0, 0x06, 0, 4, 0, 0, 0, 0, 0],
        [&[0xC0][..], &[0; 16]].concat(),
        vec![0, 0x05, 0, 4, 0, 10, 0, 0, 0],
        vec![0, 0x0C, 0, 4, 0, 2, 0, 0, 0],
        vec![0xF0, 0xFF, 0xFF, 0, 0],
    ] {
        push_record(&mut sound, &message);
    }
    seed("rdpsnd_server", sound);

    // Share data PDUs no recorded client happened to send.
    seed("frame_acknowledge", 7u32.to_le_bytes().to_vec());
    let area = [0, 0, 0, 0, 63, 0, 47, 0];
    seed("refresh_rect", [&[1, 0, 0, 0][..], &area].concat());
    seed("suppress_output", vec![0, 0, 0, 0]);
    seed("suppress_output", [&[1, 0, 0, 0][..], &area].concat());
    seeds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::event::{CloseReason, Event};

    fn seed<'a>(seeds: &'a [Seed], target: &str) -> &'a [u8] {
        &seeds
            .iter()
            .find(|seed| seed.target == target)
            .expect("a seed for the target")
            .bytes
    }

    fn saw(events: &[Event], expected: &str) -> bool {
        events
            .iter()
            .any(|event| format!("{event:?}").contains(expected))
    }

    /// The engine targets' scripted session runs through every part of it,
    /// from the start, after a resize and with RemoteFX (with `--features
    /// fuzzing`).
    #[test]
    fn the_engine_seeds_run_whole_sessions() {
        let seeds = engine_sessions();
        let mut harness = fuzzing::engine_connected(Phase::Start, Setup::Plain);
        harness.send(seed(&seeds, "engine_start"));
        let events = &harness.events;
        assert!(matches!(events[0], Event::Activated(_)), "{events:?}");
        for expected in [
            "Input",
            "SuppressOutput",
            "RefreshRect",
            "DataRequest",
            "MonitorLayout",
        ] {
            assert!(saw(events, expected), "no {expected} in {events:?}");
        }
        assert!(!saw(events, "ChannelClosed"), "{events:?}");
        assert_eq!(
            events.last(),
            Some(&Event::Closed {
                reason: CloseReason::ClientRequested
            })
        );

        let mut harness = fuzzing::engine_connected(Phase::Active, Setup::Resized);
        harness.send(seed(&seeds, "engine_reactivating"));
        assert!(saw(&harness.events, "Resized"), "{:?}", harness.events);
        assert!(saw(&harness.events, "ClientRequested"));

        let mut harness = fuzzing::engine_connected(Phase::Active, Setup::RemoteFx);
        assert!(saw(&harness.events, "RemoteFx"), "{:?}", harness.events);
        harness.send(seed(&seeds, "engine_active_remotefx"));
        assert!(
            saw(&harness.events, "ClientRequested"),
            "{:?}",
            harness.events
        );
    }
}
