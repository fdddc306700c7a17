//! What the server tolerates where the spec allows it (ARCHITECTURE.md,
//! "Where the server is stricter than the spec, and why"), through the
//! whole engine: each tolerated input connects, and what stays refused
//! still closes the connection.

use super::common::{
    self, Connected, Harness, PASSWORD, Tweaks, plain_config, send_confirm_active, send_data_pdu,
};
use crate::Event;
use crate::connection::data_pdus::{self, ControlAction};

/// pduType2 of the next share data PDU the server sent, and its body.
fn next_data_pdu(harness: &mut Harness) -> (u8, Vec<u8>) {
    let (_, data) = harness.next_channel_data();
    // Share control header (6 bytes), then the share data header with
    // pduType2 at its ninth byte; the body follows its 12 bytes.
    (data[14], data[18..].to_vec())
}

fn activated(harness: &Harness) -> bool {
    harness
        .events
        .iter()
        .any(|event| matches!(event, Event::Activated(_)))
}

fn send_control(harness: &mut Harness, connected: &Connected, action: ControlAction) {
    let mut body = Vec::new();
    data_pdus::encode_control(&mut body, action, 0, 0);
    send_data_pdu(harness, connected, data_pdus::PDUTYPE2_CONTROL, &body);
}

fn send_synchronize(harness: &mut Harness, connected: &Connected) {
    let mut body = Vec::new();
    data_pdus::encode_synchronize(&mut body, connected.user_channel);
    send_data_pdu(harness, connected, data_pdus::PDUTYPE2_SYNCHRONIZE, &body);
}

fn send_font_list(harness: &mut Harness, connected: &Connected) {
    let mut body = Vec::new();
    data_pdus::encode_font_list(&mut body);
    send_data_pdu(harness, connected, data_pdus::PDUTYPE2_FONTLIST, &body);
}

/// The server sends its Synchronize and Cooperate on the Confirm Active,
/// so a client that waits for them before sending its own (MS-RDPBCGR
/// 1.3.1.1 lets it) is not left waiting; Granted Control and the Font Map
/// still answer the client's Request Control and Font List.
#[test]
fn the_server_finalizes_without_waiting_for_the_client() {
    let mut harness = Harness::new(plain_config(), [1; 32]);
    let connected = common::start(&mut harness, PASSWORD, &Tweaks::default()).unwrap();
    send_confirm_active(&mut harness, &connected, &[]);
    let (pdu_type2, body) = next_data_pdu(&mut harness);
    assert_eq!(pdu_type2, data_pdus::PDUTYPE2_SYNCHRONIZE);
    assert_eq!(body[..2], [1, 0]);
    let (pdu_type2, body) = next_data_pdu(&mut harness);
    assert_eq!(pdu_type2, data_pdus::PDUTYPE2_CONTROL);
    assert_eq!(body, [4, 0, 0, 0, 0, 0, 0, 0], "cooperate, ids zero");
    assert!(
        harness.received.is_empty(),
        "nothing more before the client"
    );

    // The client answers only now; its Synchronize and Cooperate need no reply.
    send_synchronize(&mut harness, &connected);
    send_control(&mut harness, &connected, ControlAction::Cooperate);
    assert!(harness.received.is_empty());
    send_control(&mut harness, &connected, ControlAction::RequestControl);
    let (pdu_type2, body) = next_data_pdu(&mut harness);
    assert_eq!(pdu_type2, data_pdus::PDUTYPE2_CONTROL);
    assert_eq!(body[..2], [2, 0], "granted control");
    assert!(!activated(&harness));
    send_font_list(&mut harness, &connected);
    assert_eq!(next_data_pdu(&mut harness).0, data_pdus::PDUTYPE2_FONTMAP);
    assert!(activated(&harness));
}

/// Input, Refresh Rect, Suppress Output, Frame Acknowledge and PDU types
/// the server does not know may come during finalization; the active
/// session ignores the ones it cannot use, and so does finalization.
#[test]
fn finalization_ignores_what_the_session_would_ignore() {
    let mut harness = Harness::new(plain_config(), [2; 32]);
    let connected = common::start(&mut harness, PASSWORD, &Tweaks::default()).unwrap();
    send_confirm_active(&mut harness, &connected, &[]);
    send_synchronize(&mut harness, &connected);
    // A refresh of one rectangle, a frame acknowledgement, an unknown type.
    send_data_pdu(
        &mut harness,
        &connected,
        data_pdus::PDUTYPE2_REFRESH_RECT,
        &[1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 9, 0],
    );
    send_data_pdu(
        &mut harness,
        &connected,
        data_pdus::PDUTYPE2_FRAME_ACKNOWLEDGE,
        &[1, 0, 0, 0],
    );
    send_data_pdu(&mut harness, &connected, 0x7E, &[0; 4]);
    send_control(&mut harness, &connected, ControlAction::Cooperate);
    send_control(&mut harness, &connected, ControlAction::RequestControl);
    send_font_list(&mut harness, &connected);
    assert!(!harness.engine.is_closed());
    assert!(activated(&harness));
}

/// The client's own PDUs keep their order (1.3.1.1: "provided that
/// sequencing is maintained"): a Font List before Request Control closes
/// the connection, without a Font Map.
#[test]
fn font_list_before_request_control_is_still_refused() {
    let mut harness = Harness::new(plain_config(), [3; 32]);
    let connected = common::start(&mut harness, PASSWORD, &Tweaks::default()).unwrap();
    send_confirm_active(&mut harness, &connected, &[]);
    send_synchronize(&mut harness, &connected);
    send_control(&mut harness, &connected, ControlAction::Cooperate);
    send_font_list(&mut harness, &connected);
    assert!(harness.engine.is_closed());
    assert!(!activated(&harness));
}

/// A Connection Request with both a routing token and a cookie
/// (MS-RDPBCGR 3.3.5.3.1: the server SHOULD continue) connects.
#[test]
fn routing_token_and_cookie_together_connect() {
    let mut harness = Harness::new(plain_config(), [4; 32]);
    let tweaks = Tweaks {
        connection_request: Some(
            [
                &b"Cookie: msts=3640205228.15629.0000\r\n"[..],
                b"Cookie: mstshash=alice\r\n",
                &[1, 0, 8, 0, 0, 0, 0, 0],
            ]
            .concat(),
        ),
        ..Tweaks::default()
    };
    assert!(common::start(&mut harness, PASSWORD, &tweaks).is_some());
    // A negotiation request that is not one stays refused: reading it as
    // absent would select Standard RDP Security, a downgrade.
    let mut harness = Harness::new(plain_config(), [4; 32]);
    let tweaks = Tweaks {
        connection_request: Some([&b"Cookie: mstshash=alice\r\n"[..], &[9; 8]].concat()),
        ..Tweaks::default()
    };
    assert!(common::start(&mut harness, PASSWORD, &tweaks).is_none());
}

/// RDP 4.0 to 6.1 clients set SEC_ENCRYPT on the Client Info PDU under
/// ENCRYPTION_LEVEL_NONE, where "the value of the flag MUST be ignored"
/// (MS-RDPBCGR 3.3.5.3.11): they log on. A Client Info that also says it
/// is a licensing PDU stays refused.
#[test]
fn client_info_with_sec_encrypt_logs_on() {
    let mut harness = Harness::new(plain_config(), [5; 32]);
    let tweaks = Tweaks {
        client_info: |info| info[0] |= 0x08,
        ..Tweaks::default()
    };
    let connected = common::start(&mut harness, PASSWORD, &tweaks).unwrap();
    send_confirm_active(&mut harness, &connected, &[]);
    common::send_finalization(&mut harness, &connected);
    assert!(activated(&harness));

    let mut harness = Harness::new(plain_config(), [5; 32]);
    let tweaks = Tweaks {
        client_info: |info| info[0] |= 0x80,
        ..Tweaks::default()
    };
    assert!(common::start(&mut harness, PASSWORD, &tweaks).is_none());
}

/// IronRDP's client answers static channel data with the server channel
/// (1002) as initiator: accepted there, and nowhere else.
#[test]
fn static_channel_data_with_the_server_channel_as_initiator_is_accepted() {
    use crate::wire::mcs::DomainPdu;
    let mut config = plain_config();
    config.static_channels = vec!["CLIPRDR".into()];
    let mut harness = Harness::new(config, [6; 32]);
    let connected = common::connect(&mut harness, PASSWORD).unwrap();
    harness.events.clear();
    let mut chunk = 3u32.to_le_bytes().to_vec();
    chunk.extend_from_slice(&3u32.to_le_bytes());
    chunk.extend_from_slice(b"abc");
    common::send_mcs(
        &mut harness,
        DomainPdu::SendDataRequest {
            initiator: 1002,
            channel_id: connected.cliprdr,
            data: &chunk,
        },
    );
    assert_eq!(
        harness.events,
        [Event::ChannelData {
            channel: "cliprdr".into(),
            data: b"abc".to_vec()
        }]
    );
    // On the I/O channel it is still nobody.
    common::send_mcs(
        &mut harness,
        DomainPdu::SendDataRequest {
            initiator: 1002,
            channel_id: connected.io_channel,
            data: &[0; 8],
        },
    );
    assert!(harness.engine.is_closed());
}
