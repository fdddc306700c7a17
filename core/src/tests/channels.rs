//! DRDYNVC and ECHO against the in-memory client, and bad channel input.

use super::common;
use crate::api::clipboard::ClipboardError;
use crate::{ChannelKind, CommandError};

use crate::api::event::CloseReason;
use crate::wire::mcs::DomainPdu;
use crate::{Error, Event};
use common::{Harness, PASSWORD, connect, plain_config, send_dvc, send_mcs};

/// Whether the server stopped serving static channel `name` for a protocol
/// error, with the session still up.
fn channel_closed(harness: &Harness, name: &str) -> bool {
    !harness.engine.is_closed()
        && harness.events.iter().any(|event| {
            matches!(
                event,
                Event::ChannelClosed {
                    channel,
                    error: Error::Protocol(_),
                } if channel == name
            )
        })
}

fn closed_with_protocol_error(harness: &Harness) -> bool {
    harness.events.iter().any(|event| {
        matches!(
            event,
            Event::Closed {
                reason: CloseReason::Error(Error::Protocol(_))
            }
        )
    })
}

#[test]
fn echo_opens_after_capabilities_and_measures_round_trips() {
    let mut config = plain_config();
    config.record = true;
    let mut harness = Harness::new(config, [6; 32]);
    let connected = connect(&mut harness, PASSWORD).unwrap();
    harness.events.clear();
    // A request before the channel exists is queued, payload and all.
    let first = harness.engine.request_echo(harness.now, b"early").unwrap();
    harness.drain();
    assert!(
        harness.received.is_empty(),
        "nothing is sent before the channel opens"
    );
    // Capabilities response (version 3), then the server asks to create ECHO.
    send_dvc(&mut harness, &connected, &[0x50, 0x00, 0x03, 0x00]);
    let (_, create) = harness.next_channel_data();
    assert_eq!(&create[8..], &[0x10, 0x01, b'E', b'C', b'H', b'O', 0]);
    // ... and Display Control on id 2.
    let (_, display) = harness.next_channel_data();
    assert_eq!(&display[8..10], &[0x10, 0x02]);
    // The client accepts; the queued request goes out as DVC data on id 1:
    // its id, then the payload.
    send_dvc(&mut harness, &connected, &[0x10, 0x01, 0, 0, 0, 0]);
    let (_, data) = harness.next_channel_data();
    assert_eq!(&data[8..10], &[0x30, 0x01]);
    let request = data[10..].to_vec();
    assert_eq!(request[..4], first.to_le_bytes());
    assert_eq!(&request[4..], b"early");
    // The client echoes it: 4 ms pass, and the harness adds 1 ms per send.
    harness.now += std::time::Duration::from_millis(4);
    let mut echo = vec![0x30, 0x01];
    echo.extend_from_slice(&request);
    send_dvc(&mut harness, &connected, &echo);
    // A request on the open channel leaves at once; an empty payload is
    // the id alone.
    let second = harness.engine.request_echo(harness.now, &[]).unwrap();
    harness.drain();
    let (_, data) = harness.next_channel_data();
    assert_eq!(&data[10..], second.to_le_bytes());
    send_dvc(&mut harness, &connected, &data[8..]);
    assert_eq!(
        harness.events,
        [
            Event::EchoRoundTrip {
                id: first,
                round_trip: std::time::Duration::from_millis(5),
                payload: b"early".to_vec(),
            },
            Event::EchoRoundTrip {
                id: second,
                round_trip: std::time::Duration::from_millis(1),
                payload: Vec::new(),
            }
        ]
    );
    // A payload whose answer could not fit a channel message is refused.
    let too_large = vec![0u8; 1024 * 1024 - 3];
    assert_eq!(
        harness.engine.request_echo(harness.now, &too_large),
        Err(CommandError::EchoPayloadTooLarge {
            len: 1024 * 1024 - 3,
            max: 1024 * 1024 - 4
        })
    );
    // Requests with and without payloads replay byte for byte.
    let mut recording = Vec::new();
    while harness.engine.poll_recording(&mut recording).is_some() {}
    crate::replay(&recording, None).expect("replay matches");
}

#[test]
fn refused_echo_channel_is_reported_to_the_caller() {
    let mut harness = Harness::new(plain_config(), [6; 32]);
    let connected = connect(&mut harness, PASSWORD).unwrap();
    send_dvc(&mut harness, &connected, &[0x50, 0x00, 0x01, 0x00]);
    let _ = harness.next_channel_data();
    // STATUS: E_FAIL-like negative creation status.
    send_dvc(
        &mut harness,
        &connected,
        &[0x10, 0x01, 0x05, 0x40, 0x00, 0x80],
    );
    assert!(matches!(
        harness.engine.request_echo(harness.now, b"payload"),
        Err(CommandError::NoChannel(ChannelKind::Echo))
    ));
    assert!(!harness.engine.is_closed());
}

#[test]
fn channel_chunks_declaring_too_much_close_the_channel() {
    let mut harness = Harness::new(plain_config(), [6; 32]);
    let connected = connect(&mut harness, PASSWORD).unwrap();
    // A first chunk declaring 64 MiB, over the 1 MiB default cap.
    let mut chunk = (64u32 << 20).to_le_bytes().to_vec();
    chunk.extend_from_slice(&1u32.to_le_bytes());
    chunk.extend_from_slice(&[0; 16]);
    send_mcs(
        &mut harness,
        DomainPdu::SendDataRequest {
            initiator: connected.user_channel,
            channel_id: connected.drdynvc,
            data: &chunk,
        },
    );
    // The dynamic channel host stops; the session goes on, and the
    // channel's later data is dropped without being reassembled.
    assert!(channel_closed(&harness, "drdynvc"));
    harness.events.clear();
    send_dvc(&mut harness, &connected, &[0x50, 0x00, 0x03, 0x00]);
    assert!(harness.events.is_empty() && !harness.engine.is_closed());
}

#[test]
fn malformed_dvc_pdus_close_the_host_and_late_ones_are_dropped() {
    for message in [
        vec![0xF0],       // unknown command
        vec![],           // empty
        vec![0x13, 0x01], // a 4-byte channel id cut short
    ] {
        let mut harness = Harness::new(plain_config(), [6; 32]);
        let connected = connect(&mut harness, PASSWORD).unwrap();
        send_dvc(&mut harness, &connected, &message);
        assert!(
            channel_closed(&harness, "drdynvc"),
            "{message:?} did not close the dvc host"
        );
    }
    // Traffic for channels that are not open is a timing matter: dropped.
    for message in [
        vec![0x30, 0x07, 1, 2, 3, 4],       // data for a channel never opened
        vec![0x10, 0x09, 0, 0, 0, 0],       // create response nobody asked for
        vec![0x24, 0x01, 0xFF, 0xFF, 0, 0], // data first, channel not open
    ] {
        let mut harness = Harness::new(plain_config(), [6; 32]);
        let connected = connect(&mut harness, PASSWORD).unwrap();
        harness.events.clear();
        send_dvc(&mut harness, &connected, &message);
        assert!(
            harness.events.is_empty(),
            "{message:?}: {:?}",
            harness.events
        );
        assert!(!harness.engine.is_closed());
    }
}

#[test]
fn display_control_layouts_reach_the_application() {
    use crate::api::display::MonitorLayout;
    use crate::channels::display_control::encode_monitor_layout;
    let mut harness = Harness::new(plain_config(), [6; 32]);
    let connected = connect(&mut harness, PASSWORD).unwrap();
    harness.events.clear();
    send_dvc(&mut harness, &connected, &[0x50, 0x00, 0x03, 0x00]);
    let _echo_create = harness.next_channel_data();
    let _display_create = harness.next_channel_data();
    // The client accepts Display Control; the server sends its caps on id 2.
    send_dvc(&mut harness, &connected, &[0x10, 0x02, 0, 0, 0, 0]);
    let (_, caps) = harness.next_channel_data();
    assert_eq!(&caps[8..14], &[0x30, 0x02, 0x05, 0, 0, 0]);
    let layout = MonitorLayout {
        primary: true,
        left: 0,
        top: 0,
        width: 700,
        height: 500,
        orientation: 0,
        desktop_scale_factor: 100,
        device_scale_factor: 100,
    };
    let mut message = vec![0x30, 0x02];
    encode_monitor_layout(&mut message, &[layout]);
    send_dvc(&mut harness, &connected, &message);
    assert_eq!(harness.events, [Event::MonitorLayout(vec![layout])]);
    // A malformed layout closes Display Control (DYNVC_CLOSE on id 2),
    // not the session.
    harness.events.clear();
    send_dvc(&mut harness, &connected, &[0x30, 0x02, 2, 0, 0, 0]);
    let (_, close) = harness.next_channel_data();
    assert_eq!(&close[8..], &[0x40, 0x02]);
    assert!(harness.events.is_empty() && !harness.engine.is_closed());
    // Later layouts have no channel to arrive on.
    send_dvc(&mut harness, &connected, &message);
    assert!(harness.events.is_empty());
}

/// The static channel id the in-memory client's "cliprdr" gets (the first
/// in its list, right after the I/O channel).
const CLIPRDR: u16 = 1004;

/// Sends one whole message on a static channel, in one chunk.
fn send_static(harness: &mut Harness, connected: &common::Connected, channel: u16, message: &[u8]) {
    let mut chunk = (message.len() as u32).to_le_bytes().to_vec();
    chunk.extend_from_slice(&0x03u32.to_le_bytes()); // FIRST | LAST
    chunk.extend_from_slice(message);
    send_mcs(
        harness,
        DomainPdu::SendDataRequest {
            initiator: connected.user_channel,
            channel_id: channel,
            data: &chunk,
        },
    );
}

fn cliprdr_pdu(msg_type: u16, flags: u16, body: &[u8]) -> Vec<u8> {
    let mut pdu = msg_type.to_le_bytes().to_vec();
    pdu.extend_from_slice(&flags.to_le_bytes());
    pdu.extend_from_slice(&(body.len() as u32).to_le_bytes());
    pdu.extend_from_slice(body);
    pdu
}

#[test]
fn clipboard_runs_through_the_engine() {
    use crate::api::clipboard::ClipboardEvent;
    use crate::api::clipboard::ClipboardFormat;
    use crate::api::clipboard::decode_unicode_text;

    let mut config = plain_config();
    config.clipboard = true;
    let mut harness = Harness::new(config, [6; 32]);
    let connected = connect(&mut harness, PASSWORD).unwrap();
    // Capabilities and Monitor Ready on the cliprdr channel.
    let (channel, caps) = harness.next_channel_data();
    assert_eq!((channel, caps[8]), (CLIPRDR, 0x07));
    let (_, ready) = harness.next_channel_data();
    assert_eq!(&ready[8..], [1, 0, 0, 0, 0, 0, 0, 0]);
    // An offer before the client is ready waits for it.
    harness
        .engine
        .clipboard_offer(&[ClipboardFormat::standard(13)])
        .unwrap();
    harness.drain();
    assert!(harness.received.is_empty());
    harness.events.clear();
    // The client: long names, then its format list (CF_UNICODETEXT).
    send_static(
        &mut harness,
        &connected,
        CLIPRDR,
        &cliprdr_pdu(7, 0, &[1, 0, 0, 0, 1, 0, 12, 0, 2, 0, 0, 0, 2, 0, 0, 0]),
    );
    send_static(
        &mut harness,
        &connected,
        CLIPRDR,
        &cliprdr_pdu(2, 0, &[13, 0, 0, 0, 0, 0]),
    );
    assert_eq!(
        harness.events,
        [
            Event::Clipboard(ClipboardEvent::Ready),
            Event::Clipboard(ClipboardEvent::RemoteCopy(vec![ClipboardFormat::standard(
                13
            )])),
        ]
    );
    let (_, response) = harness.next_channel_data();
    assert_eq!(&response[8..], cliprdr_pdu(3, 1, &[]));
    let (_, offer) = harness.next_channel_data();
    assert_eq!(&offer[8..], cliprdr_pdu(2, 0, &[13, 0, 0, 0, 0, 0]));
    // The server asks for the client's text; the answer becomes an event.
    harness.engine.clipboard_request(13).unwrap();
    harness.drain();
    let (_, request) = harness.next_channel_data();
    assert_eq!(&request[8..], cliprdr_pdu(4, 0, &[13, 0, 0, 0]));
    harness.events.clear();
    let text = crate::api::clipboard::encode_unicode_text("héllo");
    send_static(&mut harness, &connected, CLIPRDR, &cliprdr_pdu(5, 1, &text));
    let [
        Event::Clipboard(ClipboardEvent::DataResponse {
            format_id: 13,
            data: Some(data),
        }),
    ] = harness.events.as_slice()
    else {
        panic!("unexpected {:?}", harness.events);
    };
    assert_eq!(decode_unicode_text(data).unwrap(), "héllo");
    // Answering without a request is the application's mistake, not fatal.
    assert!(matches!(
        harness.engine.clipboard_respond(None),
        Err(CommandError::Clipboard(ClipboardError::NothingToAnswer))
    ));
    assert!(!harness.engine.is_closed());
    // A late second response is dropped, not an error.
    harness.events.clear();
    send_static(&mut harness, &connected, CLIPRDR, &cliprdr_pdu(5, 1, &text));
    assert!(harness.events.is_empty() && !harness.engine.is_closed());
    // A malformed clipboard message closes the clipboard channel only.
    send_static(
        &mut harness,
        &connected,
        CLIPRDR,
        &cliprdr_pdu(0x77, 0, &[]),
    );
    assert!(channel_closed(&harness, "cliprdr"));
    assert!(matches!(
        harness.engine.clipboard_request(13),
        Err(CommandError::NoChannel(ChannelKind::Clipboard))
    ));
}

#[test]
fn without_a_backend_the_clipboard_is_not_announced() {
    let mut harness = Harness::new(plain_config(), [6; 32]);
    let connected = connect(&mut harness, PASSWORD).unwrap();
    assert!(harness.received.is_empty(), "no cliprdr setup was sent");
    // Client clipboard traffic is dropped, not an error.
    send_static(&mut harness, &connected, CLIPRDR, &cliprdr_pdu(2, 0, &[]));
    assert!(!harness.engine.is_closed());
    assert!(matches!(
        harness.engine.clipboard_request(13),
        Err(CommandError::NoChannel(ChannelKind::Clipboard))
    ));
}

#[test]
fn application_static_channel_messages_round_trip() {
    let mut config = plain_config();
    config.static_channels = vec!["CLIPRDR".into()];
    let mut harness = Harness::new(config, [6; 32]);
    assert!(!harness.engine.serves_static_channel("cliprdr"));
    let connected = connect(&mut harness, PASSWORD).unwrap();
    harness.events.clear();
    // Joined by the client and configured: served. Joined but not
    // configured, or configured but not joined: not.
    assert!(harness.engine.serves_static_channel("CLIPRDR"));
    assert!(!harness.engine.serves_static_channel("drdynvc"));
    assert!(!harness.engine.serves_static_channel("rdpsnd"));
    // A message in two chunks arrives whole.
    let mut first = 6u32.to_le_bytes().to_vec();
    first.extend_from_slice(&1u32.to_le_bytes());
    first.extend_from_slice(b"abc");
    let mut last = 6u32.to_le_bytes().to_vec();
    last.extend_from_slice(&2u32.to_le_bytes());
    last.extend_from_slice(b"def");
    for chunk in [first, last] {
        send_mcs(
            &mut harness,
            DomainPdu::SendDataRequest {
                initiator: connected.user_channel,
                channel_id: CLIPRDR,
                data: &chunk,
            },
        );
    }
    assert_eq!(
        harness.events,
        [Event::ChannelData {
            channel: "cliprdr".into(),
            data: b"abcdef".to_vec()
        }]
    );
    // A long answer is chunked at the client's chunk size (1600 by default).
    let message: Vec<u8> = (0..4000).map(|i| i as u8).collect();
    harness
        .engine
        .send_channel_data("cliprdr", &message)
        .unwrap();
    harness.drain();
    let mut reassembled = Vec::new();
    for expected_flags in [1u32, 0, 2] {
        let (channel, chunk) = harness.next_channel_data();
        assert_eq!(channel, CLIPRDR);
        assert_eq!(&chunk[..4], 4000u32.to_le_bytes());
        assert_eq!(&chunk[4..8], expected_flags.to_le_bytes());
        reassembled.extend_from_slice(&chunk[8..]);
    }
    assert_eq!(reassembled, message);
    assert!(matches!(
        harness.engine.send_channel_data("rdpsnd", b"x"),
        Err(CommandError::UnknownStaticChannel)
    ));
    // A malformed chunk closes the channel: no longer served.
    send_mcs(
        &mut harness,
        DomainPdu::SendDataRequest {
            initiator: connected.user_channel,
            channel_id: CLIPRDR,
            data: &[1, 0, 0, 0, 2, 0, 0, 0, 1],
        },
    );
    assert!(channel_closed(&harness, "cliprdr"));
    assert!(!harness.engine.serves_static_channel("cliprdr"));
}

#[test]
fn application_dynamic_channels_open_carry_and_close() {
    let mut harness = Harness::new(plain_config(), [6; 32]);
    let connected = connect(&mut harness, PASSWORD).unwrap();
    harness.events.clear();
    // Opened before the DVC host is ready: the request waits.
    let id = harness
        .engine
        .open_dynamic_channel("Test::Chan", 2)
        .unwrap();
    harness.drain();
    assert!(harness.received.is_empty());
    send_dvc(&mut harness, &connected, &[0x50, 0x00, 0x03, 0x00]);
    // Create requests: ours first (priority 2 in bits 2-3), then ECHO and
    // Display Control.
    let (_, create) = harness.next_channel_data();
    let mut expected = vec![0x18, id as u8];
    expected.extend_from_slice(b"Test::Chan\0");
    assert_eq!(&create[8..], expected);
    let _ = harness.next_channel_data();
    let _ = harness.next_channel_data();
    assert!(matches!(
        harness.engine.send_dynamic_channel_data(id, b"early"),
        Err(CommandError::DynamicChannelNotOpen(_))
    ));
    send_dvc(&mut harness, &connected, &[0x10, id as u8, 0, 0, 0, 0]);
    assert_eq!(
        harness.events,
        [Event::DynamicChannelOpened {
            id,
            name: "Test::Chan".into()
        }]
    );
    // 5000 bytes leave as DataFirst plus Data PDUs, each within 1600 bytes.
    let message: Vec<u8> = (0..5000).map(|i| (i % 251) as u8).collect();
    harness
        .engine
        .send_dynamic_channel_data(id, &message)
        .unwrap();
    harness.drain();
    let mut reassembler = crate::channels::dvc::DvcReassembler::default();
    let mut whole = None;
    while whole.is_none() {
        let (_, chunk) = harness.next_channel_data();
        let pdu = &chunk[8..];
        assert!(pdu.len() <= crate::channels::dvc::MAX_PDU);
        whole = match crate::channels::dvc::ClientDvcPdu::decode(pdu).unwrap() {
            crate::channels::dvc::ClientDvcPdu::DataFirst { total, data, .. } => {
                reassembler.first(total, data, 1 << 20).unwrap()
            }
            crate::channels::dvc::ClientDvcPdu::Data { data, .. } => {
                reassembler.more(data).unwrap()
            }
            other => panic!("unexpected {other:?}"),
        };
    }
    assert_eq!(whole, Some(message));
    // Client data arrives whole; its close is reported.
    harness.events.clear();
    send_dvc(&mut harness, &connected, &[0x30, id as u8, 7, 8, 9]);
    send_dvc(&mut harness, &connected, &[0x40, id as u8]);
    assert_eq!(
        harness.events,
        [
            Event::DynamicChannelData {
                id,
                data: vec![7, 8, 9]
            },
            Event::DynamicChannelClosed { id, error: None },
        ]
    );
    assert!(!harness.engine.is_closed());
}

#[test]
fn a_malformed_dynamic_channel_message_closes_that_channel_with_its_error() {
    let mut harness = Harness::new(plain_config(), [6; 32]);
    let connected = connect(&mut harness, PASSWORD).unwrap();
    let id = harness
        .engine
        .open_dynamic_channel("Test::Chan", 0)
        .unwrap();
    send_dvc(&mut harness, &connected, &[0x50, 0x00, 0x03, 0x00]);
    send_dvc(&mut harness, &connected, &[0x10, id as u8, 0, 0, 0, 0]);
    harness.events.clear();
    // A DataFirst declaring more than `max_channel_message` (1 MiB).
    send_dvc(
        &mut harness,
        &connected,
        &[0x28, id as u8, 0x00, 0x00, 0x20, 0x00, 1, 2],
    );
    assert!(matches!(
        harness.events.as_slice(),
        [Event::DynamicChannelClosed {
            id: closed,
            error: Some(Error::Protocol(_)),
        }] if *closed == id
    ));
    assert!(!harness.engine.is_closed());
    assert!(matches!(
        harness.engine.send_dynamic_channel_data(id, b"late"),
        Err(CommandError::DynamicChannelNotOpen(_))
    ));
}

#[test]
fn a_new_format_list_does_not_orphan_requests_in_flight() {
    use crate::api::clipboard::{ClipboardEvent, decode_unicode_text, encode_unicode_text};

    let mut config = plain_config();
    config.clipboard = true;
    let mut harness = Harness::new(config, [6; 32]);
    let connected = connect(&mut harness, PASSWORD).unwrap();
    let format_list = cliprdr_pdu(2, 0, &[13, 0, 0, 0, 0, 0]);
    send_static(
        &mut harness,
        &connected,
        CLIPRDR,
        &cliprdr_pdu(7, 0, &[1, 0, 0, 0, 1, 0, 12, 0, 2, 0, 0, 0, 2, 0, 0, 0]),
    );
    send_static(&mut harness, &connected, CLIPRDR, &format_list);
    // The server asks, the user copies again on the client, the server asks
    // again, and only then do both answers arrive, in order.
    harness.engine.clipboard_request(13).unwrap();
    send_static(&mut harness, &connected, CLIPRDR, &format_list);
    harness.engine.clipboard_request(13).unwrap();
    harness.events.clear();
    for text in ["first", "second"] {
        send_static(
            &mut harness,
            &connected,
            CLIPRDR,
            &cliprdr_pdu(5, 1, &encode_unicode_text(text)),
        );
    }
    let answers: Vec<String> = harness
        .events
        .iter()
        .map(|event| match event {
            Event::Clipboard(ClipboardEvent::DataResponse {
                format_id: 13,
                data: Some(data),
            }) => decode_unicode_text(data).unwrap(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(answers, ["first", "second"]);
    assert!(!harness.engine.is_closed());
}

/// Sends `len` bytes of a message on `channel` that declares 1 MiB and
/// never finishes, in chunks of 10 000 bytes.
fn send_unfinished(harness: &mut Harness, connected: &common::Connected, channel: u16, len: usize) {
    let mut sent = 0;
    while sent < len {
        let part = (len - sent).min(10_000);
        let mut chunk = (1u32 << 20).to_le_bytes().to_vec();
        let flags: u32 = if sent == 0 { 0x01 } else { 0x00 }; // FIRST, then middle
        chunk.extend_from_slice(&flags.to_le_bytes());
        chunk.extend(std::iter::repeat_n(0x5A, part));
        send_mcs(
            harness,
            DomainPdu::SendDataRequest {
                initiator: connected.user_channel,
                channel_id: channel,
                data: &chunk,
            },
        );
        sent += part;
    }
}

#[test]
fn an_unserved_channel_allocates_nothing() {
    // Without a clipboard backend "cliprdr" is joined but not served.
    let mut harness = Harness::new(plain_config(), [6; 32]);
    let connected = connect(&mut harness, PASSWORD).unwrap();
    send_unfinished(&mut harness, &connected, CLIPRDR, 500_000);
    assert_eq!(harness.engine.channel_memory(), 0);
    assert!(!harness.engine.is_closed());
}

#[test]
fn channel_buffers_stay_within_the_session_budget() {
    let mut config = plain_config();
    config.clipboard = true;
    config.channel_memory_budget = 64 * 1024;
    let mut harness = Harness::new(config, [6; 32]);
    let connected = connect(&mut harness, PASSWORD).unwrap();
    harness.events.clear();
    // 40 KB of an unfinished clipboard message is within the budget...
    send_unfinished(&mut harness, &connected, CLIPRDR, 40_000);
    assert!(harness.events.is_empty());
    assert!(harness.engine.channel_memory() >= 40_000);
    // ...40 KB more on the dynamic channel host is not: that channel closes.
    send_unfinished(&mut harness, &connected, connected.drdynvc, 40_000);
    assert!(channel_closed(&harness, "drdynvc"));
    assert!(harness.engine.channel_memory() <= 64 * 1024);
    assert!(!harness.engine.is_closed());
}
