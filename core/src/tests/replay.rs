//! Record a whole session with the in-memory client, replay it byte for byte.

use super::common;

use crate::connection::data_pdus;
use crate::session::fastpath_input::{self as fastpath, FastPathInputEvent};
use crate::{BitmapUpdate, PixelFormat};
use crate::{ReplayError, replay};
use common::{Harness, PASSWORD, connect, plain_config, send_data_pdu};

/// Sends a 64x48 block of a `seed` pattern at (`at`, `at`).
fn send_block(harness: &mut Harness, at: u16, seed: usize) {
    let pixels: Vec<u8> = (0..64 * 48 * 4).map(|i| (i * seed % 256) as u8).collect();
    harness
        .engine
        .send_bitmap(&BitmapUpdate {
            x: at,
            y: at,
            width: 64,
            height: 48,
            stride: 256,
            format: PixelFormat::BgrX32,
            data: &pixels,
        })
        .unwrap();
    harness.drain();
}

/// A session with logon, input, graphics and a shutdown; returns the recording.
fn recorded_session(password: &str) -> Vec<u8> {
    let mut config = plain_config();
    config.record = true;
    let mut harness = Harness::new(config, [8; 32]);
    let mut recording = Vec::new();
    if let Some(connected) = connect(&mut harness, password) {
        let mut pdu = Vec::new();
        fastpath::encode_input(
            &[FastPathInputEvent::Scancode {
                flags: 0,
                code: 0x10,
            }],
            &mut pdu,
        );
        harness.send(&pdu);
        send_block(&mut harness, 10, 7);
        send_data_pdu(
            &mut harness,
            &connected,
            data_pdus::PDUTYPE2_SHUTDOWN_REQUEST,
            &[],
        );
    }
    while harness.engine.poll_recording(&mut recording).is_some() {}
    recording
}

fn utf16(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

#[test]
fn recorded_session_replays_byte_for_byte() {
    let recording = recorded_session(PASSWORD);
    let report = replay(&recording, None).expect("replay matches the recording");
    assert!(report.frames > 10, "{report:?}");
    assert!(report.output_bytes > 1_000, "{report:?}");
    assert!(report.events >= 3);
}

#[test]
fn failed_logon_replays_from_the_recorded_verdict() {
    let recording = recorded_session("not the password");
    replay(&recording, None).expect("the refusal replays too");
}

#[test]
fn recordings_never_hold_the_password() {
    let recording = recorded_session(PASSWORD);
    assert!(
        !recording
            .windows(utf16(PASSWORD).len())
            .any(|window| window == utf16(PASSWORD))
    );
    assert!(
        !recording
            .windows(PASSWORD.len())
            .any(|window| window == PASSWORD.as_bytes())
    );
}

#[test]
fn replay_detects_a_one_byte_divergence() {
    let recording = recorded_session(PASSWORD);
    // Flip one byte of recorded server output: the Demand Active's "RDP\0"
    // source descriptor.
    let mut tampered = recording.clone();
    let at = tampered
        .windows(4)
        .position(|window| window == b"RDP\0")
        .unwrap();
    tampered[at] ^= 0x01;
    assert!(
        matches!(
            replay(&tampered, None),
            Err(ReplayError::OutputDiverged {
                recorded: Some(b'S'),
                replayed: Some(b'R'),
                ..
            })
        ),
        "{:?}",
        replay(&tampered, None)
    );
    // And a flipped byte in a recorded input frame changes what the server says.
    let mut tampered = recording;
    let client_name = utf16("memclient");
    let at = tampered
        .windows(client_name.len())
        .position(|window| window == client_name)
        .unwrap();
    tampered[at] ^= 0x01;
    assert!(matches!(
        replay(&tampered, None),
        Err(ReplayError::EventDiverged { .. })
    ));
}

#[test]
fn recording_is_off_by_default() {
    let mut harness = Harness::new(plain_config(), [8; 32]);
    connect(&mut harness, PASSWORD).unwrap();
    let mut recording = Vec::new();
    assert_eq!(harness.engine.poll_recording(&mut recording), None);
}

/// Clipboard traffic and its application commands replay too.
#[test]
fn clipboard_commands_replay_byte_for_byte() {
    use crate::api::clipboard::ClipboardFormat;
    use crate::wire::mcs::DomainPdu;

    let mut config = plain_config();
    config.record = true;
    config.clipboard = true;
    config.static_channels = vec!["nothing".into()];
    let mut harness = Harness::new(config, [9; 32]);
    let connected = connect(&mut harness, PASSWORD).expect("connects");
    // The client's (empty) format list makes the clipboard ready.
    let mut chunk = 8u32.to_le_bytes().to_vec();
    chunk.extend_from_slice(&3u32.to_le_bytes());
    chunk.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0]);
    common::send_mcs(
        &mut harness,
        DomainPdu::SendDataRequest {
            initiator: connected.user_channel,
            channel_id: 1004,
            data: &chunk,
        },
    );
    harness
        .engine
        .clipboard_offer(&[ClipboardFormat::registered(0xC001, "HTML Format")])
        .unwrap();
    harness.drain();
    let mut recording = Vec::new();
    while harness.engine.poll_recording(&mut recording).is_some() {}
    let report = replay(&recording, None).expect("replay matches the recording");
    assert!(report.events >= 3, "{report:?}");
}

#[test]
fn codec_changes_and_resizes_replay_byte_for_byte() {
    use crate::Graphics;
    use crate::api::config::DesktopSize;

    let mut config = plain_config();
    config.record = true;
    let mut harness = Harness::new(config, [10; 32]);
    connect(&mut harness, PASSWORD).expect("connects");
    send_block(&mut harness, 0, 5);
    // Both send something: a repaint of the desktop, a Demand Active.
    let before = harness.received.len();
    harness.engine.set_graphics(Graphics::Bitmaps).unwrap();
    harness.drain();
    assert!(harness.received.len() > before, "the desktop is repainted");
    let before = harness.received.len();
    harness
        .engine
        .resize(DesktopSize {
            width: 800,
            height: 600,
        })
        .unwrap();
    harness.drain();
    assert!(harness.received.len() > before, "a Demand Active");
    let mut recording = Vec::new();
    while harness.engine.poll_recording(&mut recording).is_some() {}
    replay(&recording, None).expect("replay matches the recording");
}
