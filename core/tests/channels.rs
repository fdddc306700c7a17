//! DRDYNVC and ECHO against the in-memory client, and bad channel input.

mod common;

use common::{Harness, PASSWORD, connect, plain_config, send_dvc, send_mcs};
use rdpserve_core::event::CloseReason;
use rdpserve_core::mcs::DomainPdu;
use rdpserve_core::{Error, Event};

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
    let mut harness = Harness::new(plain_config(), [6; 32]);
    let connected = connect(&mut harness, PASSWORD).unwrap();
    harness.events.clear();
    // A request before the channel exists is queued.
    let first = harness.engine.request_echo(harness.now).unwrap();
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
    // The client accepts; the queued request goes out as DVC data on id 1.
    send_dvc(&mut harness, &connected, &[0x10, 0x01, 0, 0, 0, 0]);
    let (_, data) = harness.next_channel_data();
    assert_eq!(&data[8..10], &[0x30, 0x01]);
    let payload = data[10..].to_vec();
    assert_eq!(payload, first.to_le_bytes());
    // The client echoes it: 4 ms pass, and the harness adds 1 ms per send.
    harness.now += std::time::Duration::from_millis(4);
    let mut echo = vec![0x30, 0x01];
    echo.extend_from_slice(&payload);
    send_dvc(&mut harness, &connected, &echo);
    assert_eq!(
        harness.events,
        [Event::EchoRoundTrip {
            id: first,
            round_trip: std::time::Duration::from_millis(5)
        }]
    );
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
        harness.engine.request_echo(harness.now),
        Err(Error::Unsupported(_))
    ));
    assert!(!harness.engine.is_closed());
}

#[test]
fn channel_chunks_declaring_too_much_close_the_connection() {
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
    assert!(closed_with_protocol_error(&harness));
}

#[test]
fn malformed_and_out_of_state_dvc_messages_close_cleanly() {
    for message in [
        vec![0xF0],                         // unknown command
        vec![],                             // empty
        vec![0x13, 0x01],                   // a 4-byte channel id cut short
        vec![0x30, 0x07, 1, 2, 3, 4],       // data for a channel never opened
        vec![0x10, 0x09, 0, 0, 0, 0],       // create response nobody asked for
        vec![0x24, 0x01, 0xFF, 0xFF, 0, 0], // data first, channel not open
    ] {
        let mut harness = Harness::new(plain_config(), [6; 32]);
        let connected = connect(&mut harness, PASSWORD).unwrap();
        send_dvc(&mut harness, &connected, &message);
        assert!(
            closed_with_protocol_error(&harness),
            "{message:?} did not close with a protocol error"
        );
    }
}

#[test]
fn display_control_layouts_reach_the_application() {
    use rdpserve_core::display_control::{MonitorLayout, encode_monitor_layout};
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
    // A malformed layout closes the connection with a protocol error.
    send_dvc(&mut harness, &connected, &[0x30, 0x02, 2, 0, 0, 0]);
    assert!(closed_with_protocol_error(&harness));
}
