//! Entry points for the fuzz targets in `fuzz/`, compiled only with the
//! `fuzzing` feature. Not an API: the wire modules stay private, and this
//! module exists so that targets outside the crate can reach them.
//!
//! One function per decoder: each hands arbitrary bytes to the crate's own
//! decoder and discards the result. Where an encoder exists, what decoded
//! must decode to the same value again after encoding. The state machines
//! (channel servers, reassemblers, CredSSP) take a sequence of messages,
//! each a little-endian `u16` length and that many bytes ([`records`]). The
//! `engine_*` functions take the in-memory client of `test_client` to one
//! phase of the connection sequence and give the engine the input from
//! there, as the byte stream a client sends next.
//!
//! A panic in any of them is a bug in the crate, never in the input.

pub mod seeds;

use std::collections::VecDeque;
use std::fmt::Debug;
use std::time::{Duration, Instant};

use crate::api::clipboard::{ClipboardFormat, FileContentsRequest};
use crate::api::config::DesktopSize;
use crate::api::event::Event;
use crate::api::sound::AudioFormat;
use crate::channels::cliprdr::ClipboardServer;
use crate::channels::display_control;
use crate::channels::dvc::{self, ClientDvcPdu};
use crate::channels::dvc_host::DvcHost;
use crate::channels::rdpsnd::{ClientSoundPdu, SoundServer};
use crate::channels::svc::{self, Reassembler};
use crate::connection::capabilities::ClientCapabilities;
use crate::connection::client_info::ClientInfoPdu;
use crate::connection::codecs;
use crate::connection::data_pdus::{self, ClientDataPdu};
use crate::connection::share::{self, ClientShareControlPdu};
use crate::graphics::egfx::pdu as egfx;
use crate::record::channel_command::{decode_channel_command, encode_channel_command};
use crate::record::format;
use crate::record::reader::{Entry, Reader};
use crate::record::recorder::Recorder;
use crate::security::credssp::{self, CredSspServer, PasswordCredentials, TsRequest};
use crate::security::ntlm::{self, NegotiateMessage, NtHashSource, NtlmServer, ServerNames};
use crate::session::fastpath_input::{self, FastPathInputEvent};
use crate::test_client::{self, Harness, Phase};
use crate::wire::cursor::ReadCursor;
use crate::wire::fastpath;
use crate::wire::gcc::ClientGccData;
use crate::wire::mcs::{ConnectInitial, DomainPdu};
use crate::wire::tpkt::{self, FrameKind};
use crate::wire::x224::{self, ConnectionRequest};
use crate::wire::{ber, per};
use crate::{BitmapUpdate, Command, CommandError};
use rdpserve_codecs::zgfx::{ZgfxCompressor, ZgfxDecompressor};

/// Splits `data` into records: a little-endian `u16` length, then that many
/// bytes (the last record takes what is left).
pub fn records(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (length, rest) = data.split_first_chunk::<2>()?;
        let length = usize::from(u16::from_le_bytes(*length)).min(rest.len());
        let (record, rest) = rest.split_at(length);
        data = rest;
        Some(record)
    })
}

/// Appends `record` to `out` in the form [`records`] reads.
pub fn push_record(out: &mut Vec<u8>, record: &[u8]) {
    let length = u16::try_from(record.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&record[..usize::from(length)]);
}

/// Asserts that `again`, the decoding of an encoded `decoded`, is `decoded`.
fn assert_round_trip<T: PartialEq + Debug, E: Debug>(decoded: &T, again: Result<T, E>) {
    match again {
        Ok(again) => assert_eq!(&again, decoded, "decode(encode(x)) differs from x"),
        Err(error) => panic!("decode(encode({decoded:?})) failed: {error:?}"),
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    for (slot, byte) in word.iter_mut().zip(bytes.iter().skip(at)) {
        *slot = *byte;
    }
    u32::from_le_bytes(word)
}

// ----- wire -----

/// X.224 Connection Request (with RDP_NEG_REQ and cookies).
pub fn x224_connection_request(data: &[u8]) {
    if let Ok(request) = ConnectionRequest::decode(data) {
        let mut encoded = Vec::new();
        request.encode(&mut encoded);
        assert_round_trip(&request, ConnectionRequest::decode(&encoded));
    }
}

/// An X.224 routing token of the `Cookie: msts=` form: what decodes
/// encodes to a token that decodes to the same address.
pub fn routing_token(data: &[u8]) {
    if let Ok(target) = crate::wire::routing_token::decode(data) {
        assert_round_trip(
            &target,
            crate::wire::routing_token::decode(&crate::wire::routing_token::encode(target)),
        );
    }
}

/// The Server Redirection Packet, as a recording holds it.
pub fn server_redirection_packet(data: &[u8]) {
    use crate::connection::redirection::{decode_packet, encode_packet};
    if let Ok(redirection) = decode_packet(data) {
        let mut encoded = Vec::new();
        encode_packet(&mut encoded, &redirection).expect("a decoded packet fits");
        assert_round_trip(&redirection, decode_packet(&encoded));
    }
}

/// The engine's framing of the byte stream: TPKT or fast-path lengths,
/// then each whole frame's X.224 Data or fast-path header.
pub fn tpkt_frame(data: &[u8]) {
    let mut rest = data;
    while let Ok(Some((kind, len))) = tpkt::frame_length(rest, usize::from(u16::MAX)) {
        assert!(
            len > 0 && len <= rest.len(),
            "frame length {len} out of range"
        );
        let (frame, after) = rest.split_at(len);
        match kind {
            FrameKind::X224 => {
                if let Ok(payload) = x224::decode_data(frame) {
                    let mut encoded = Vec::new();
                    x224::encode_data(&mut encoded, payload);
                    assert_round_trip(&payload, x224::decode_data(&encoded));
                }
            }
            FrameKind::FastPath => {
                let _ = fastpath::split_pdu(frame, "fuzzed fast-path pdu");
            }
        }
        rest = after;
    }
}

/// MCS Connect Initial (BER) with the GCC data inside.
pub fn mcs_connect_initial(data: &[u8]) {
    if let Ok(initial) = ConnectInitial::decode(data) {
        let mut encoded = Vec::new();
        initial.encode(&mut encoded);
        assert_round_trip(&initial, ConnectInitial::decode(&encoded));
    }
}

/// MCS domain PDUs (PER): erect domain, attach user, channel join, send
/// data, disconnect provider ultimatum.
pub fn mcs_domain_pdu(data: &[u8]) {
    if let Ok(pdu) = DomainPdu::decode(data) {
        let mut encoded = Vec::new();
        pdu.encode(&mut encoded);
        assert_round_trip(&pdu, DomainPdu::decode(&encoded));
    }
}

/// The T.124 Conference Create Request and the client data blocks inside.
pub fn gcc_conference_create_request(data: &[u8]) {
    if let Ok(gcc) = ClientGccData::decode(data) {
        let mut encoded = Vec::new();
        gcc.encode(&mut encoded);
        assert_round_trip(&gcc, ClientGccData::decode(&encoded));
    }
}

/// A sequence of client data blocks (core, security, network, cluster,
/// monitor, message channel, multitransport).
pub fn gcc_client_data_blocks(data: &[u8]) {
    if let Ok(gcc) = ClientGccData::decode_blocks(data) {
        let mut encoded = Vec::new();
        gcc.encode(&mut encoded);
        assert_round_trip(&gcc, ClientGccData::decode(&encoded));
    }
}

/// The BER and PER readers on their own: the first byte picks a reader,
/// the rest is read until it fails; each value read is written again and
/// must read back the same.
pub fn ber_per(data: &[u8]) {
    let Some((&choice, data)) = data.split_first() else {
        return;
    };
    let mut cursor = ReadCursor::new(data, "fuzzed ber/per");
    for _ in 0..64 {
        let mut encoded = Vec::new();
        // `None` once a read fails, else whether the value read back.
        let round_trip = match choice % 8 {
            0 => ber::read_integer(&mut cursor).ok().map(|value| {
                ber::write_integer(&mut encoded, value);
                ber::read_integer(&mut ReadCursor::new(&encoded, "again")) == Ok(value)
            }),
            1 => ber::read_length(&mut cursor).ok().map(|length| {
                ber::write_length(&mut encoded, length);
                encoded.resize(encoded.len() + length, 0);
                ber::read_length(&mut ReadCursor::new(&encoded, "again")) == Ok(length)
            }),
            2 => ber::read_octet_string(&mut cursor).ok().map(|value| {
                ber::write_octet_string(&mut encoded, value);
                ber::read_octet_string(&mut ReadCursor::new(&encoded, "again")) == Ok(value)
            }),
            3 => ber::read_boolean(&mut cursor).ok().map(|value| {
                ber::write_boolean(&mut encoded, value);
                ber::read_boolean(&mut ReadCursor::new(&encoded, "again")) == Ok(value)
            }),
            4 => ber::read_enumerated(&mut cursor).ok().map(|value| {
                ber::write_enumerated(&mut encoded, value);
                ber::read_enumerated(&mut ReadCursor::new(&encoded, "again")) == Ok(value)
            }),
            5 => per::read_length(&mut cursor).ok().map(|length| {
                per::write_length(&mut encoded, length);
                encoded.resize(encoded.len() + length, 0);
                per::read_length(&mut ReadCursor::new(&encoded, "again")) == Ok(length)
            }),
            6 => per::read_integer(&mut cursor).ok().map(|value| {
                per::write_integer(&mut encoded, value);
                per::read_integer(&mut ReadCursor::new(&encoded, "again")) == Ok(value)
            }),
            _ => per::read_u16(&mut cursor, 1001).ok().map(|value| {
                per::write_u16(&mut encoded, value, 1001);
                per::read_u16(&mut ReadCursor::new(&encoded, "again"), 1001) == Ok(value)
            }),
        };
        match round_trip {
            None => return,
            Some(same) => assert!(same, "ber/per value {encoded:?} does not read back"),
        }
    }
}

// ----- connection -----

/// The Client Info PDU, security header included.
pub fn client_info(data: &[u8]) {
    if let Ok(info) = ClientInfoPdu::decode(data) {
        let mut encoded = Vec::new();
        info.encode(&mut encoded);
        assert_round_trip(&info, ClientInfoPdu::decode(&encoded));
    }
}

/// The capability sets of a Confirm Active (numberCapabilities, pad2Octets,
/// then the sets), and the RemoteFX capabilities among its codecs.
pub fn capability_sets(data: &[u8]) {
    let mut cursor = ReadCursor::new(data, "fuzzed capabilities");
    let Ok(count) = cursor.read_u16_le() else {
        return;
    };
    if cursor.skip(2).is_err() {
        return;
    }
    if let Ok(capabilities) = ClientCapabilities::decode(&mut cursor, usize::from(count)) {
        let _ = codecs::client_remotefx(&capabilities.bitmap_codecs);
    }
}

/// A share control PDU from the client on the I/O channel: Confirm Active,
/// a Data PDU or a flow PDU.
pub fn share_control(data: &[u8]) {
    let Ok((header, pdu)) = share::decode_client_share_control(data) else {
        return;
    };
    let mut encoded = Vec::new();
    header.encode(&mut encoded);
    assert_round_trip(
        &header,
        share::ShareControlHeader::decode(&mut ReadCursor::new(&encoded, "again")),
    );
    if let ClientShareControlPdu::Data { header, body } = pdu {
        let mut encoded = Vec::new();
        header.encode(&mut encoded);
        assert_round_trip(
            &header,
            share::ShareDataHeader::decode(&mut ReadCursor::new(&encoded, "again")),
        );
        let _ = ClientDataPdu::decode(header.pdu_type2, body);
    }
}

/// A share data PDU body; the first byte is its pduType2.
pub fn share_data(data: &[u8]) {
    let Some((&pdu_type2, body)) = data.split_first() else {
        return;
    };
    let Ok(pdu) = ClientDataPdu::decode(pdu_type2, body) else {
        return;
    };
    let mut encoded = Vec::new();
    let again = match pdu {
        ClientDataPdu::Synchronize { target_user } => {
            data_pdus::encode_synchronize(&mut encoded, target_user);
            ClientDataPdu::decode(pdu_type2, &encoded)
        }
        ClientDataPdu::Control {
            action,
            grant_id,
            control_id,
        } => {
            data_pdus::encode_control(&mut encoded, action, grant_id, control_id);
            ClientDataPdu::decode(pdu_type2, &encoded)
        }
        ClientDataPdu::Input(events) => {
            let mut input = Vec::new();
            for event in events {
                event.to_input_events(&mut input);
            }
            return;
        }
        _ => return,
    };
    assert_round_trip(&pdu, again);
}

/// The Frame Acknowledge PDU body.
pub fn frame_acknowledge(data: &[u8]) {
    let _ = ClientDataPdu::decode(data_pdus::PDUTYPE2_FRAME_ACKNOWLEDGE, data);
}

/// The Refresh Rect PDU body.
pub fn refresh_rect(data: &[u8]) {
    let _ = ClientDataPdu::decode(data_pdus::PDUTYPE2_REFRESH_RECT, data);
}

/// The Suppress Output PDU body.
pub fn suppress_output(data: &[u8]) {
    let _ = ClientDataPdu::decode(data_pdus::PDUTYPE2_SUPPRESS_OUTPUT, data);
}

// ----- session -----

/// A fast-path input PDU as the session reads it; then the same bytes as
/// bare events, each of which must encode and decode to itself.
pub fn fastpath_input(data: &[u8]) {
    let mut events = Vec::new();
    let _ = fastpath_input::decode_input(data, &mut events);
    let mut cursor = ReadCursor::new(data, "fuzzed fast-path events");
    while let Ok(event) = FastPathInputEvent::decode(&mut cursor) {
        let mut encoded = Vec::new();
        event.encode(&mut encoded);
        assert_round_trip(
            &event,
            FastPathInputEvent::decode(&mut ReadCursor::new(&encoded, "again")),
        );
        event.to_input_events(&mut events);
    }
}

// ----- security -----

/// Users for the NTLM and CredSSP targets: "alice" with password "secret".
struct Users;

impl NtHashSource for Users {
    fn nt_hash(&self, user: &str, _domain: &str) -> Option<[u8; 16]> {
        user.eq_ignore_ascii_case("alice")
            .then(|| ntlm::nt_hash("secret"))
    }
}

/// The NEGOTIATE_MESSAGE as the NTLM server reads it (and its CHALLENGE).
pub fn ntlm_negotiate(data: &[u8]) {
    if let Ok(message) = NegotiateMessage::decode(data) {
        let mut encoded = Vec::new();
        message.encode(&mut encoded);
        assert_round_trip(&message, NegotiateMessage::decode(&encoded));
    }
    let _ = NtlmServer::new(data, [7; 8], 0x01DA_0000_0000_0000, &ServerNames::default());
}

/// The AUTHENTICATE_MESSAGE as the NTLM server verifies it, after a
/// NEGOTIATE from a modern client.
pub fn ntlm_authenticate(data: &[u8]) {
    let mut negotiate = Vec::new();
    NegotiateMessage {
        flags: ntlm::flags::SUPPORTED,
    }
    .encode(&mut negotiate);
    let (server, _challenge) = NtlmServer::new(
        &negotiate,
        [7; 8],
        0x01DA_0000_0000_0000,
        &ServerNames::default(),
    )
    .expect("a supported negotiate");
    let _ = server.authenticate(data, &Users, false);
}

/// A CredSSP TSRequest (and its framing).
pub fn credssp_ts_request(data: &[u8]) {
    let _ = credssp::frame_length(data, credssp::MAX_TS_REQUEST);
    if let Ok(request) = TsRequest::decode(data) {
        assert_round_trip(&request, TsRequest::decode(&request.encode()));
    }
}

/// TSCredentials carrying TSPasswordCreds, as unsealed from authInfo.
pub fn credssp_ts_credentials(data: &[u8]) {
    if let Ok(credentials) = PasswordCredentials::decode(data) {
        assert_round_trip(
            &credentials,
            PasswordCredentials::decode(&credentials.encode()),
        );
    }
}

/// The CredSSP server fed a sequence of TSRequests ([`records`]).
pub fn credssp_server(data: &[u8]) {
    let mut server = CredSspServer::new(vec![0x30, 0x82, 0x01, 0x0A, 0x02, 0x82], 2);
    let context = credssp::Context {
        hashes: &Users,
        server_challenge: [7; 8],
        timestamp: 0x01DA_0000_0000_0000,
        require_mic: false,
    };
    for request in records(data) {
        if server.handle(request, &context).is_err() {
            return;
        }
    }
}

// ----- channels -----

/// Static virtual channel chunks ([`records`]) through the reassembler;
/// every whole message, chunked again, must reassemble to itself.
pub fn svc_reassembler(data: &[u8]) {
    const LIMIT: usize = 64 * 1024;
    let mut reassembler = Reassembler::default();
    for chunk in records(data) {
        let Ok(Some(message)) = reassembler.push(chunk, LIMIT) else {
            continue;
        };
        for chunk_size in [1, 7, svc::DEFAULT_CHUNK_SIZE] {
            let mut again = Reassembler::default();
            let mut whole = None;
            svc::chunk(&message, chunk_size, 0, |chunk| {
                whole = again.push(chunk, LIMIT).expect("our own chunks reassemble");
            });
            assert_eq!(whole.as_ref(), Some(&message), "chunks lost bytes");
        }
    }
}

/// One DVC PDU from the client; Data and Close encode back to themselves.
pub fn dvc_pdu(data: &[u8]) {
    let Ok(pdu) = ClientDvcPdu::decode(data) else {
        return;
    };
    let mut encoded = Vec::new();
    match pdu {
        ClientDvcPdu::Data { channel_id, data } => dvc::encode_data(&mut encoded, channel_id, data),
        ClientDvcPdu::Close { channel_id } => dvc::encode_close(&mut encoded, channel_id),
        _ => return,
    }
    assert_round_trip(&pdu, ClientDvcPdu::decode(&encoded));
}

/// Graphics Pipeline PDUs as the server reads them from the client (one
/// DVC message, any number of PDUs); each that decodes must decode the
/// same after encoding.
pub fn egfx_client_pdu(data: &[u8]) {
    let mut rest = data;
    while let Ok((pdu, after)) = egfx::ClientPdu::decode(rest) {
        let mut encoded = Vec::new();
        pdu.encode(&mut encoded);
        assert_round_trip(&pdu, egfx::ClientPdu::decode(&encoded).map(|(pdu, _)| pdu));
        rest = after;
    }
}

/// Graphics Pipeline PDUs the server sends, through the client's view of
/// them; each that decodes must decode the same after encoding.
pub fn egfx_server_pdu(data: &[u8]) {
    let mut rest = data;
    while let Ok((pdu, after)) = egfx::ServerPdu::decode(rest) {
        let mut encoded = Vec::new();
        pdu.encode(&mut encoded);
        assert_round_trip(&pdu, egfx::ServerPdu::decode(&encoded).map(|(pdu, _)| pdu));
        rest = after;
    }
}

/// ZGFX (RDP 8.0 bulk compression): the bytes as RDP_SEGMENTED_DATA through
/// the decoder, then compressed and decoded again by a fresh pair, which
/// must give them back.
pub fn zgfx(data: &[u8]) {
    let mut decoded = Vec::new();
    let _ = ZgfxDecompressor::new().decompress(data, 1 << 24, &mut decoded);
    let mut compressor = ZgfxCompressor::new();
    let mut decompressor = ZgfxDecompressor::new();
    for part in [data, data] {
        let mut wire = Vec::new();
        compressor
            .compress(part, &mut wire)
            .expect("data under 4 GiB compresses");
        let mut back = Vec::new();
        decompressor
            .decompress(&wire, part.len(), &mut back)
            .expect("the compressor's output decodes");
        assert!(back == part, "zgfx round trip differs");
    }
}

/// The DVC host fed a sequence of "drdynvc" messages ([`records`]), with
/// the ECHO and Display Control channels and one application channel.
pub fn dvc_host(data: &[u8]) {
    let now = Instant::now();
    let mut host = DvcHost::new(64 * 1024, svc::DEFAULT_CHUNK_SIZE, false);
    let (mut send, mut events) = (Vec::new(), VecDeque::<Event>::new());
    host.start(&mut send);
    let application = host
        .open("fuzzed", 1, &mut send)
        .expect("a valid channel name");
    let _ = host.request_echo(now, b"fuzz", &mut send);
    for message in records(data) {
        let _ = host.receive(message, now, &mut send, &mut events);
        let _ = host.send(application, message, &mut send);
    }
    let _ = host.close(application, &mut send);
}

/// A Display Control monitor layout PDU.
pub fn display_control(data: &[u8]) {
    if let Ok(layout) = display_control::decode_monitor_layout(data) {
        let mut encoded = Vec::new();
        display_control::encode_monitor_layout(&mut encoded, &layout);
        assert_round_trip(&layout, display_control::decode_monitor_layout(&encoded));
    }
}

/// The clipboard server fed a sequence of [`records`], each an operation
/// byte and its bytes: below 0xC0 a whole "cliprdr" message from the client,
/// else one of the application's commands (offer, request, respond, file
/// contents), so every state can be reached.
pub fn cliprdr_server(data: &[u8]) {
    let mut server = ClipboardServer::new();
    let (mut out, mut events) = (Vec::new(), Vec::new());
    server.start(&mut out);
    for record in records(data) {
        let Some((&operation, bytes)) = record.split_first() else {
            continue;
        };
        match operation {
            0..0xC0 => {
                let _ = server.receive(bytes, &mut out, &mut events);
            }
            0xC0..0xC8 => {
                let formats: Vec<_> = bytes
                    .chunks(6)
                    .map(|chunk| ClipboardFormat {
                        id: u32_at(chunk, 0),
                        name: String::from_utf8_lossy(chunk.get(4..).unwrap_or(&[])).into_owned(),
                    })
                    .collect();
                server.offer(&formats, &mut out);
            }
            0xC8..0xD0 => {
                let _ = server.request(u32_at(bytes, 0), &mut out);
            }
            0xD0..0xD8 => {
                let _ = server.respond((!bytes.is_empty()).then_some(bytes), &mut out);
            }
            0xD8..0xE0 => {
                let request = FileContentsRequest {
                    stream_id: u32_at(bytes, 0),
                    list_index: u32_at(bytes, 4),
                    flags: u32_at(bytes, 8),
                    position: u64::from(u32_at(bytes, 12)),
                    requested: u32_at(bytes, 16),
                    clip_data_id: (bytes.len() > 20).then(|| u32_at(bytes, 20)),
                };
                let _ = server.request_file_contents(&request, &mut out);
            }
            _ => {
                let data = bytes.get(4..).filter(|rest| !rest.is_empty());
                let _ = server.respond_file_contents(u32_at(bytes, 0), data, &mut out);
            }
        }
        out.clear();
        events.clear();
    }
}

/// The audio output server fed a sequence of [`records`], each an operation
/// byte and its bytes: below 0xC0 a whole "rdpsnd" message from the client,
/// else one of the application's commands (samples, format, volume). Every
/// Client Audio Formats PDU must encode and decode to itself.
pub fn rdpsnd_server(data: &[u8]) {
    let mut server = SoundServer::new(
        vec![
            AudioFormat::pcm(2, 44_100, 16),
            AudioFormat::pcm(1, 22_050, 8),
        ],
        4,
    );
    let (mut out, mut events) = (Vec::new(), Vec::new());
    server.start(&mut out);
    for (now_ms, record) in (0u32..).step_by(10).zip(records(data)) {
        let Some((&operation, bytes)) = record.split_first() else {
            continue;
        };
        match operation {
            0..0xC0 => {
                if let Ok(ClientSoundPdu::AudioFormats(formats)) = ClientSoundPdu::decode(bytes) {
                    let mut encoded = Vec::new();
                    formats.encode(&mut encoded).expect("a decoded pdu fits");
                    assert_round_trip(
                        &ClientSoundPdu::AudioFormats(formats),
                        ClientSoundPdu::decode(&encoded),
                    );
                }
                let _ = server.receive(bytes, now_ms, &mut out, &mut events);
            }
            0xC0..0xE0 => {
                let _ = server.send_samples(bytes, now_ms, &mut out);
            }
            0xE0..0xF0 => {
                let _ = server.select_format(u32_at(bytes, 0) as usize);
            }
            _ => {
                let volume = u32_at(bytes, 0);
                let _ = server.set_volume(volume as u16, (volume >> 16) as u16, &mut out);
            }
        }
        out.clear();
        events.clear();
    }
}

// ----- record -----

/// A recording: the magic and header, then every entry. The header must
/// encode the same again once decoded; the entries, written again by the
/// recorder, must read back as the same entries, and every recorded
/// channel command must decode to itself.
pub fn recording(data: &[u8]) {
    let mut cursor = ReadCursor::new(data, "fuzzed recording");
    let Ok(header) = format::decode_header(&mut cursor, None) else {
        return;
    };
    let mut encoded = Vec::new();
    format::encode_header(
        &header.config,
        &header.seed,
        header.public_key.as_deref(),
        &mut encoded,
    );
    let again = format::decode_header(&mut ReadCursor::new(&encoded, "again"), None)
        .expect("an encoded header decodes");
    let mut encoded_again = Vec::new();
    format::encode_header(
        &again.config,
        &again.seed,
        again.public_key.as_deref(),
        &mut encoded_again,
    );
    assert_eq!(
        encoded, encoded_again,
        "the header does not encode the same"
    );

    let mut reader = Reader::new(cursor);
    let mut recorder = Recorder::new(&header.config, &header.seed, header.public_key.as_deref());
    let mut written = 0;
    while let Ok(Some(entry)) = reader.next_entry() {
        if let Entry::Command(Command::Channel(command)) = &entry {
            let mut encoded = Vec::new();
            encode_channel_command(command, &mut encoded);
            assert_round_trip(
                command,
                decode_channel_command(&mut ReadCursor::new(&encoded, "again")),
            );
        }
        written += usize::from(seeds::record_entry(&mut recorder, &entry));
    }
    // The recorder keeps bitmaps to the rows they cover, so one rewrite
    // makes a recording that every further rewrite leaves unchanged.
    let rewritten = rewrite(recorder);
    let entries = read_entries(&rewritten);
    assert_eq!(entries.len(), written, "entries lost in the rewrite");
    assert_eq!(read_entries(&rewrite_recording(&rewritten)), entries);
}

fn rewrite(mut recorder: Recorder) -> Vec<u8> {
    let mut bytes = Vec::new();
    let _ = recorder.drain(&mut bytes, true);
    bytes
}

fn rewrite_recording(recording: &[u8]) -> Vec<u8> {
    let mut cursor = ReadCursor::new(recording, "rewritten recording");
    let header = format::decode_header(&mut cursor, None).expect("a rewritten header decodes");
    let mut recorder = Recorder::new(&header.config, &header.seed, header.public_key.as_deref());
    let mut reader = Reader::new(cursor);
    while let Some(entry) = reader.next_entry().expect("a rewritten entry decodes") {
        seeds::record_entry(&mut recorder, &entry);
    }
    rewrite(recorder)
}

/// Every entry of a recording the recorder wrote, as text.
fn read_entries(recording: &[u8]) -> Vec<String> {
    let mut cursor = ReadCursor::new(recording, "rewritten recording");
    format::decode_header(&mut cursor, None).expect("a rewritten header decodes");
    let mut reader = Reader::new(cursor);
    let mut entries = Vec::new();
    while let Some(entry) = reader.next_entry().expect("a rewritten entry decodes") {
        entries.push(format!("{entry:?}"));
    }
    entries
}

// ----- engine -----

const ENGINE_SEED: [u8; 32] = [0x5E; 32];

/// What the application has done when the input arrives (the engine
/// targets on an active session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Setup {
    /// Nothing.
    Plain,
    /// The client asked for RemoteFX surface commands with frame
    /// acknowledgements, and the application sent one frame.
    RemoteFx,
    /// The application resized the desktop: the session awaits the client's
    /// Confirm Active and finalization again.
    Resized,
}

/// A fresh plain-RDP engine with the clipboard on, as the engine targets
/// (and their seeds) run it.
pub(crate) fn engine_harness() -> Harness {
    let mut config = test_client::plain_config();
    config.clipboard = true;
    Harness::new(config, ENGINE_SEED)
}

/// The client's Confirm Active capability sets for `setup`.
pub(crate) fn engine_capability_sets(setup: Setup) -> Vec<Vec<u8>> {
    match setup {
        Setup::RemoteFx => test_client::remotefx_client_sets(),
        Setup::Plain | Setup::Resized => Vec::new(),
    }
}

/// Takes a plain-RDP engine (clipboard on) through the in-memory client's
/// connection sequence up to `phase` and sets it up, gives it `data` as the
/// client's next bytes, then the application's commands and the end of the
/// stream. Whatever the input, the engine must not panic, must send only
/// whole frames, and must report exactly one `Event::Closed` once closed.
fn engine_at(phase: Phase, setup: Setup, data: &[u8]) {
    let mut harness = engine_connected(phase, setup);
    harness.send(data);
    check_closed_events(&harness);
    run_commands(&mut harness);
    check_closed_events(&harness);
    if let Some((deadline, _)) = harness.engine.poll_timeout() {
        harness.now = harness.now.max(deadline);
        harness.engine.handle_timeout(harness.now);
        harness.drain();
        check_closed_events(&harness);
    }
    harness.now += Duration::from_millis(1);
    harness.engine.handle_eof(harness.now);
    harness.drain();
    assert!(
        harness.engine.is_closed(),
        "end of stream closes the engine"
    );
    check_closed_events(&harness);
    // Every byte the engine sent is a whole frame.
    while harness.next_pdu().is_some() {}
    assert!(harness.received.is_empty(), "a partial frame was sent");
}

/// The engine of the targets, connected up to `phase` and set up.
pub(crate) fn engine_connected(phase: Phase, setup: Setup) -> Harness {
    let mut harness = engine_harness();
    let sets = engine_capability_sets(setup);
    test_client::connect_through(&mut harness, test_client::PASSWORD, &sets, phase)
        .expect("the in-memory client reaches its phase");
    match setup {
        Setup::Plain => {}
        Setup::RemoteFx => {
            let pixels = vec![0x3Cu8; 64 * 64 * 4];
            harness
                .engine
                .send_bitmap(&tile(&pixels))
                .expect("a frame for a remotefx client");
        }
        Setup::Resized => harness
            .engine
            .resize(DesktopSize {
                width: 640,
                height: 480,
            })
            .expect("an active session resizes"),
    }
    harness.drain();
    harness
}

/// A 64x64 update at (8, 8) of `pixels`.
fn tile(pixels: &[u8]) -> BitmapUpdate<'_> {
    BitmapUpdate {
        x: 8,
        y: 8,
        width: 64,
        height: 64,
        stride: 64 * 4,
        data: pixels,
        format: Default::default(),
    }
}

fn check_closed_events(harness: &Harness) {
    let closed = harness
        .events
        .iter()
        .filter(|event| matches!(event, Event::Closed { .. }))
        .count();
    let expected = usize::from(harness.engine.is_closed());
    assert_eq!(closed, expected, "closed events: {:?}", harness.events);
}

/// The application's commands, whatever state the input left the engine
/// in; they may be refused, never panic.
fn run_commands(harness: &mut Harness) {
    let pixels = vec![0x7Fu8; 64 * 64 * 4];
    let update = tile(&pixels);
    let engine = &mut harness.engine;
    let results: [Result<(), CommandError>; 6] = [
        engine.send_bitmap(&update),
        engine.clipboard_offer(&[ClipboardFormat {
            id: 13,
            name: String::new(),
        }]),
        engine.request_echo(harness.now, b"fuzz").map(drop),
        engine.open_dynamic_channel("fuzzed", 1).map(drop),
        engine.send_channel_data("cliprdr", &[0; 8]),
        engine.resize(DesktopSize {
            width: 640,
            height: 480,
        }),
    ];
    drop(results);
    harness.drain();
}

/// The engine fed from its first byte.
pub fn engine_start(data: &[u8]) {
    engine_at(Phase::Start, Setup::Plain, data);
}

/// The engine after the X.224 Connection Request and Confirm.
pub fn engine_after_x224(data: &[u8]) {
    engine_at(Phase::X224, Setup::Plain, data);
}

/// The engine after MCS Connect Initial and Response.
pub fn engine_after_mcs_connect(data: &[u8]) {
    engine_at(Phase::McsConnect, Setup::Plain, data);
}

/// The engine after Erect Domain, Attach User and the channel joins.
pub fn engine_after_channel_joins(data: &[u8]) {
    engine_at(Phase::ChannelsJoined, Setup::Plain, data);
}

/// The engine after Client Info, awaiting Confirm Active.
pub fn engine_after_client_info(data: &[u8]) {
    engine_at(Phase::ClientInfo, Setup::Plain, data);
}

/// The engine with the session active.
pub fn engine_active(data: &[u8]) {
    engine_at(Phase::Active, Setup::Plain, data);
}

/// The engine active with RemoteFX surfaces, one frame unacknowledged.
pub fn engine_active_remotefx(data: &[u8]) {
    engine_at(Phase::Active, Setup::RemoteFx, data);
}

/// The engine active, then resized by the application: in the middle of
/// deactivation-reactivation.
pub fn engine_reactivating(data: &[u8]) {
    engine_at(Phase::Active, Setup::Resized, data);
}
