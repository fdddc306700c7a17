//! Whole sessions against the in-memory client, on a simulated clock.

use super::common;
use crate::CommandError;

use crate::api::event::{CloseReason, Rectangle};
use crate::api::input::{InputEvent, KeyboardEvent, MouseEvent};
use crate::connection::data_pdus;
use crate::graphics::bitmap::decode_bitmap_update;
use crate::graphics::fastpath;
use crate::session::fastpath_input::{self, FastPathInputEvent};
use crate::wire::mcs::{DisconnectReason, DomainPdu};
use crate::{BitmapUpdate, Error, Event, PixelFormat};
use common::{Harness, PASSWORD, connect, plain_config, send_data_pdu, send_mcs};

fn closed_reason(events: &[Event]) -> Option<&CloseReason> {
    events.iter().find_map(|event| match event {
        Event::Closed { reason } => Some(reason),
        _ => None,
    })
}

#[test]
fn connection_sequence_activates_the_session() {
    let mut harness = Harness::new(plain_config(), [3; 32]);
    connect(&mut harness, PASSWORD).expect("connected");
    let Some(Event::Activated(info)) = harness.events.first() else {
        panic!("expected Activated, got {:?}", harness.events);
    };
    assert_eq!(info.user_name, common::USER);
    assert_eq!(info.client_name, "memclient");
    assert_eq!(info.color_depth, 32);
    assert!(harness.engine.is_active());
    assert_eq!(
        harness.engine.poll_timeout(),
        None,
        "no deadline once active"
    );
}

#[test]
fn wrong_password_closes_with_authentication_failed() {
    let mut harness = Harness::new(plain_config(), [3; 32]);
    assert!(connect(&mut harness, "guess").is_none());
    assert_eq!(
        closed_reason(&harness.events),
        Some(&CloseReason::Error(Error::AuthenticationFailed))
    );
    // The client is told goodbye with an MCS Disconnect Provider Ultimatum.
    let goodbye = harness.next_mcs();
    assert!(matches!(
        DomainPdu::decode(&goodbye).unwrap(),
        DomainPdu::DisconnectProviderUltimatum { .. }
    ));
}

#[test]
fn fast_path_and_slow_path_input_reach_the_application() {
    let mut harness = Harness::new(plain_config(), [3; 32]);
    let connected = connect(&mut harness, PASSWORD).unwrap();
    harness.events.clear();
    let mut pdu = Vec::new();
    fastpath_input::encode_input(
        &[
            FastPathInputEvent::Scancode {
                flags: 0,
                code: 0x1C,
            },
            FastPathInputEvent::Mouse {
                flags: 0x0200 | 0x0188,
                x: 0,
                y: 0,
            },
        ],
        &mut pdu,
    );
    harness.send(&pdu);
    let mut body = Vec::new();
    data_pdus::encode_input(&mut body, &[(0x8001, [0x8000 | 0x4000, 7, 9])]);
    send_data_pdu(&mut harness, &connected, data_pdus::PDUTYPE2_INPUT, &body);
    assert_eq!(
        harness.events,
        [
            Event::Input(InputEvent::Keyboard(KeyboardEvent::Pressed {
                code: 0x1C,
                extended: false
            })),
            Event::Input(InputEvent::Mouse(MouseEvent::VerticalScroll {
                value: -120
            })),
            Event::Input(InputEvent::Mouse(MouseEvent::Move { x: 7, y: 9 })),
            Event::Input(InputEvent::Mouse(MouseEvent::MiddlePressed)),
        ]
    );
}

#[test]
fn suppress_output_and_refresh_rect_reach_the_application() {
    let mut harness = Harness::new(plain_config(), [3; 32]);
    let connected = connect(&mut harness, PASSWORD).unwrap();
    harness.events.clear();
    send_data_pdu(
        &mut harness,
        &connected,
        data_pdus::PDUTYPE2_SUPPRESS_OUTPUT,
        &[0, 0, 0, 0],
    );
    send_data_pdu(
        &mut harness,
        &connected,
        data_pdus::PDUTYPE2_REFRESH_RECT,
        &[1, 0, 0, 0, 10, 0, 20, 0, 29, 0, 39, 0],
    );
    assert_eq!(
        harness.events,
        [
            Event::SuppressOutput {
                allow_display_updates: false
            },
            Event::RefreshRect(vec![Rectangle {
                left: 10,
                top: 20,
                right: 30,
                bottom: 40
            }]),
        ]
    );
}

#[test]
fn shutdown_request_ends_the_session_cleanly() {
    let mut harness = Harness::new(plain_config(), [3; 32]);
    let connected = connect(&mut harness, PASSWORD).unwrap();
    send_data_pdu(
        &mut harness,
        &connected,
        data_pdus::PDUTYPE2_SHUTDOWN_REQUEST,
        &[],
    );
    assert_eq!(
        closed_reason(&harness.events),
        Some(&CloseReason::ClientRequested)
    );
    assert!(matches!(
        DomainPdu::decode(&harness.next_mcs()).unwrap(),
        DomainPdu::DisconnectProviderUltimatum { .. }
    ));
    assert!(harness.engine.is_closed());
}

#[test]
fn client_disconnect_ultimatum_closes() {
    let mut harness = Harness::new(plain_config(), [3; 32]);
    connect(&mut harness, PASSWORD).unwrap();
    send_mcs(
        &mut harness,
        DomainPdu::DisconnectProviderUltimatum {
            reason: DisconnectReason::USER_REQUESTED,
        },
    );
    assert_eq!(
        closed_reason(&harness.events),
        Some(&CloseReason::ClientRequested)
    );
}

#[test]
fn server_close_sends_error_info_then_disconnect() {
    let mut harness = Harness::new(plain_config(), [3; 32]);
    connect(&mut harness, PASSWORD).unwrap();
    harness.engine.close();
    harness.drain();
    let (_, set_error_info) = harness.next_channel_data();
    // Share data header: pduType2 at offset 14, the error code after the 18-byte headers.
    assert_eq!(set_error_info[14], data_pdus::PDUTYPE2_SET_ERROR_INFO_PDU);
    assert_eq!(
        u32::from_le_bytes(set_error_info[18..22].try_into().unwrap()),
        data_pdus::error_info::RPC_INITIATED_DISCONNECT
    );
    assert!(matches!(
        DomainPdu::decode(&harness.next_mcs()).unwrap(),
        DomainPdu::DisconnectProviderUltimatum { .. }
    ));
    assert_eq!(
        closed_reason(&harness.events),
        Some(&CloseReason::ServerRequested)
    );
}

#[test]
fn bitmaps_are_tiled_and_clipped_to_the_desktop() {
    let mut harness = Harness::new(plain_config(), [3; 32]);
    connect(&mut harness, PASSWORD).unwrap();
    assert!(harness.received.is_empty());
    // A 100x70 update at (300, 150) is clipped to the 320x200 desktop.
    let (width, height) = (100u16, 70u16);
    let data: Vec<u8> = (0..usize::from(width) * usize::from(height))
        .flat_map(|i| [(i % 251) as u8, (i / 251) as u8, 7, 0xFF])
        .collect();
    harness
        .engine
        .send_bitmap(&BitmapUpdate {
            x: 300,
            y: 150,
            width,
            height,
            stride: usize::from(width) * 4,
            format: PixelFormat::BgrX32,
            data: &data,
        })
        .unwrap();
    harness.drain();
    let updates = fastpath::decode_output(&harness.received).unwrap();
    let mut covered = 0usize;
    for (code, payload) in &updates {
        assert_eq!(*code, fastpath::UpdateCode::Bitmap as u8);
        for rect in decode_bitmap_update(payload).unwrap() {
            assert!(rect.dest_right < 320 && rect.dest_bottom < 200);
            assert_eq!(rect.bits_per_pixel, 32);
            assert!(rect.compressed, "planar by default");
            let (w, h) = (usize::from(rect.width), usize::from(rect.height));
            // The test decoder returns rows top-down (planar is bottom-up on the wire).
            let pixels = rdpserve_codecs::decode_planar(rect.data, w, h).expect("valid planar");
            for row in 0..h {
                let source_y = usize::from(rect.dest_top - 150) + row;
                let source_x = usize::from(rect.dest_left - 300);
                for column in 0..w {
                    let at = (source_y * usize::from(width) + source_x + column) * 4;
                    let got = &pixels[(row * w + column) * 4..(row * w + column) * 4 + 3];
                    assert_eq!(got, &data[at..at + 3], "pixel ({column}, {row}) of a tile");
                }
            }
            covered += w * h;
        }
    }
    assert_eq!(covered, 20 * 50, "only the visible 20x50 part is sent");
}

/// A frame too big for one update goes out in several, each within the
/// client's limit, and every tile still decodes to its pixels: the tile
/// that overflows one update starts the next.
#[test]
fn a_frame_larger_than_one_update_is_split_without_losing_tiles() {
    let (width, height) = (800u16, 600u16);
    let mut config = plain_config();
    config.desktop_size = crate::DesktopSize { width, height };
    let mut harness = Harness::new(config, [3; 32]);
    connect(&mut harness, PASSWORD).unwrap();
    // Noise: planar cannot shrink it, so the 1.9 MB frame needs more than
    // one update of the test client's 1 MiB.
    let mut state = 0x1234_5678u32;
    let data: Vec<u8> = (0..usize::from(width) * usize::from(height) * 4)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect();
    harness
        .engine
        .send_bitmap(&full_frame(width, height, &data))
        .unwrap();
    harness.drain();
    let updates = fastpath::decode_output(&harness.received).unwrap();
    assert!(updates.len() >= 2, "{} updates", updates.len());
    let mut covered = 0usize;
    for (_, payload) in &updates {
        assert!(payload.len() <= 1 << 20);
        for rect in decode_bitmap_update(payload).unwrap() {
            let (w, h) = (usize::from(rect.width), usize::from(rect.height));
            let pixels = rdpserve_codecs::decode_planar(rect.data, w, h).expect("valid planar");
            for row in 0..h {
                let y = usize::from(rect.dest_top) + row;
                for column in 0..w {
                    let at = (y * usize::from(width) + usize::from(rect.dest_left) + column) * 4;
                    let got = &pixels[(row * w + column) * 4..(row * w + column) * 4 + 3];
                    assert_eq!(got, &data[at..at + 3], "pixel ({column}, {y})");
                }
            }
            covered += w * h;
        }
    }
    assert_eq!(covered, usize::from(width) * usize::from(height));
}

#[test]
fn graphics_before_activation_are_refused() {
    let mut harness = Harness::new(plain_config(), [3; 32]);
    let data = [0u8; 16];
    let result = harness.engine.send_bitmap(&BitmapUpdate {
        x: 0,
        y: 0,
        width: 2,
        height: 2,
        stride: 8,
        format: PixelFormat::BgrX32,
        data: &data,
    });
    assert!(matches!(result, Err(CommandError::NotActive)));
}

#[test]
fn same_seed_and_input_give_identical_output() {
    let run = |seed| {
        let mut harness = Harness::new(plain_config(), seed);
        connect(&mut harness, PASSWORD).unwrap();
        harness.transcript
    };
    assert_eq!(run([9; 32]), run([9; 32]));
    // The seed matters (share ids come from it).
    assert_ne!(run([9; 32]), run([10; 32]));
}

#[test]
fn garbage_at_every_step_of_the_handshake_is_a_clean_error() {
    // Record the client's PDUs of one good connection, then replay them with
    // the n-th replaced by garbage of the same length.
    let mut recorder = Harness::new(plain_config(), [5; 32]);
    let steps = client_pdus(&mut recorder);
    for (index, _) in steps.iter().enumerate() {
        for flip in [0usize, 7, 13] {
            let mut harness = Harness::new(plain_config(), [5; 32]);
            for (step, pdu) in steps.iter().enumerate() {
                let mut pdu = pdu.clone();
                if step == index {
                    // Keep the TPKT header so the damage reaches the parsers.
                    for (offset, byte) in pdu.iter_mut().enumerate().skip(4) {
                        *byte ^= ((offset + flip) as u8).wrapping_mul(0x9D);
                    }
                }
                harness.send(&pdu);
                if harness.engine.is_closed() {
                    break;
                }
            }
            // Either the damage was harmless or the engine closed with a typed
            // reason; it never panics and never closes twice.
            let closes = harness
                .events
                .iter()
                .filter(|event| matches!(event, Event::Closed { .. }))
                .count();
            assert!(closes <= 1);
        }
    }
}

/// The client's PDUs of one successful connection.
fn client_pdus(harness: &mut Harness) -> Vec<Vec<u8>> {
    connect(harness, PASSWORD).expect("connected");
    harness.sent.clone()
}

/// Tiles (x, y, width, height) of every bitmap the engine sent since the last call.
fn sent_tiles(harness: &mut Harness) -> Vec<(u16, u16, u16, u16)> {
    let updates = fastpath::decode_output(&harness.received).unwrap();
    harness.received.clear();
    updates
        .iter()
        .flat_map(|(_, payload)| decode_bitmap_update(payload).unwrap())
        .map(|rect| (rect.dest_left, rect.dest_top, rect.width, rect.height))
        .collect()
}

#[test]
fn only_changed_tiles_are_sent_again() {
    let mut harness = Harness::new(plain_config(), [3; 32]);
    let connected = connect(&mut harness, PASSWORD).unwrap();
    let (width, height) = (320u16, 200u16);
    let mut frame: Vec<u8> = (0..usize::from(width) * usize::from(height) * 4)
        .map(|i| (i % 253) as u8)
        .collect();
    harness
        .engine
        .send_bitmap(&full_frame(width, height, &frame))
        .unwrap();
    harness.drain();
    assert_eq!(
        sent_tiles(&mut harness).len(),
        5 * 4,
        "the first frame sends every tile"
    );
    harness
        .engine
        .send_bitmap(&full_frame(width, height, &frame))
        .unwrap();
    harness.drain();
    assert!(
        sent_tiles(&mut harness).is_empty(),
        "an unchanged frame sends nothing"
    );
    // Change one pixel in each of two tiles.
    frame[(10 * 320 + 10) * 4] ^= 0xFF;
    frame[(150 * 320 + 300) * 4 + 2] ^= 0xFF;
    harness
        .engine
        .send_bitmap(&full_frame(width, height, &frame))
        .unwrap();
    harness.drain();
    assert_eq!(
        sent_tiles(&mut harness),
        [(0, 0, 64, 64), (256, 128, 64, 64)]
    );
    // A refresh request makes the next update complete again.
    send_data_pdu(
        &mut harness,
        &connected,
        data_pdus::PDUTYPE2_REFRESH_RECT,
        &[1, 0, 0, 0, 0, 0, 0, 0, 63, 1, 199, 0],
    );
    harness
        .engine
        .send_bitmap(&full_frame(width, height, &frame))
        .unwrap();
    harness.drain();
    assert_eq!(sent_tiles(&mut harness).len(), 5 * 4);
}

#[test]
fn supplied_damage_decides_which_tiles_are_sent() {
    use crate::api::event::Rectangle;

    let mut config = plain_config();
    config.record = true;
    let mut harness = Harness::new(config, [3; 32]);
    connect(&mut harness, PASSWORD).unwrap();
    let (width, height) = (320u16, 200u16);
    let mut frame: Vec<u8> = (0..usize::from(width) * usize::from(height) * 4)
        .map(|i| (i % 253) as u8)
        .collect();
    harness
        .engine
        .send_bitmap_damaged(&full_frame(width, height, &frame), &[])
        .unwrap();
    harness.drain();
    assert_eq!(
        sent_tiles(&mut harness).len(),
        20,
        "the first frame is whole"
    );
    // The pixels change everywhere, but the application says only this
    // area did: only its tiles go out.
    for byte in frame.iter_mut() {
        *byte = byte.wrapping_add(1);
    }
    let damage = [Rectangle {
        left: 60,
        top: 5,
        right: 70,
        bottom: 6,
    }];
    harness
        .engine
        .send_bitmap_damaged(&full_frame(width, height, &frame), &damage)
        .unwrap();
    harness.drain();
    assert_eq!(sent_tiles(&mut harness), [(0, 0, 64, 64), (64, 0, 64, 64)]);
    // No damage: nothing, however different the pixels.
    harness
        .engine
        .send_bitmap_damaged(&full_frame(width, height, &frame), &[])
        .unwrap();
    harness.drain();
    assert!(sent_tiles(&mut harness).is_empty());
    // Damage outside the update is clipped away.
    let outside = [Rectangle {
        left: 400,
        top: 300,
        right: 500,
        bottom: 400,
    }];
    harness
        .engine
        .send_bitmap_damaged(&full_frame(width, height, &frame), &outside)
        .unwrap();
    harness.drain();
    assert!(sent_tiles(&mut harness).is_empty());
    // The damage is recorded: the session replays byte for byte.
    let mut recording = Vec::new();
    while harness.engine.poll_recording(&mut recording).is_some() {}
    crate::replay(&recording, None).expect("replay matches");
}

fn full_frame(width: u16, height: u16, data: &[u8]) -> BitmapUpdate<'_> {
    BitmapUpdate {
        x: 0,
        y: 0,
        width,
        height,
        stride: usize::from(width) * 4,
        format: PixelFormat::BgrX32,
        data,
    }
}

#[test]
fn pointer_updates_are_sent_with_their_codes() {
    use crate::{PointerCommand, PointerImage};
    let mut harness = Harness::new(plain_config(), [3; 32]);
    let rgba = vec![200u8; 16 * 16 * 4];
    let image = PointerImage {
        width: 16,
        height: 16,
        hotspot_x: 1,
        hotspot_y: 2,
        cache_index: None,
        rgba: &rgba,
    };
    assert!(
        matches!(
            harness.engine.send_pointer(&image),
            Err(CommandError::NotActive)
        ),
        "not before activation"
    );
    connect(&mut harness, PASSWORD).unwrap();
    harness.received.clear();
    // The in-memory client sends no Pointer capability: one cache slot.
    assert_eq!(harness.engine.send_pointer(&image).unwrap(), 0);
    harness
        .engine
        .send_pointer_command(PointerCommand::Position { x: 40, y: 30 })
        .unwrap();
    harness
        .engine
        .send_pointer_command(PointerCommand::Hidden)
        .unwrap();
    harness
        .engine
        .send_pointer_command(PointerCommand::Default)
        .unwrap();
    harness
        .engine
        .send_pointer_command(PointerCommand::Cached(0))
        .unwrap();
    assert!(matches!(
        harness
            .engine
            .send_pointer_command(PointerCommand::Cached(5)),
        Err(CommandError::PointerCacheIndex { index: 5, .. })
    ));
    harness.drain();
    let updates = fastpath::decode_output(&harness.received).unwrap();
    let codes: Vec<u8> = updates.iter().map(|(code, _)| *code).collect();
    assert_eq!(codes, [0xB, 0x8, 0x5, 0x6, 0xA]);
    assert_eq!(updates[1].1, [40, 0, 30, 0]);
    // xorBpp 32, slot 0, hotspot (1, 2), 16x16, masks of 32 and 1024 bytes.
    assert_eq!(
        &updates[0].1[..16],
        &[32, 0, 0, 0, 1, 0, 2, 0, 16, 0, 16, 0, 32, 0, 0, 4]
    );
}

#[test]
fn resize_reactivates_and_holds_graphics_until_done() {
    use crate::DesktopSize;
    let mut harness = Harness::new(plain_config(), [3; 32]);
    let connected = connect(&mut harness, PASSWORD).unwrap();
    harness.events.clear();
    harness
        .engine
        .resize(DesktopSize {
            width: 256,
            height: 240,
        })
        .unwrap();
    harness.drain();
    // Deactivate All (share control type 6), then Demand Active (type 1).
    let (_, deactivate) = harness.next_channel_data();
    assert_eq!(deactivate[2] & 0x0F, 6);
    let (_, demand) = harness.next_channel_data();
    assert_eq!(demand[2] & 0x0F, 1);
    let data = [0u8; 16];
    let tiny = BitmapUpdate {
        x: 0,
        y: 0,
        width: 2,
        height: 2,
        stride: 8,
        format: PixelFormat::BgrX32,
        data: &data,
    };
    assert!(matches!(
        harness.engine.send_bitmap(&tiny),
        Err(CommandError::Reactivating)
    ));
    assert!(
        harness
            .engine
            .resize(DesktopSize {
                width: 300,
                height: 300
            })
            .is_err()
    );
    // Confirm Active and the finalization again.
    let mut confirm = Vec::new();
    crate::connection::share::encode_confirm_active(
        &mut confirm,
        connected.user_channel,
        connected.share_id,
        0,
        &[],
    );
    common::send_io(&mut harness, &connected, &confirm);
    common::send_finalization(&mut harness, &connected);
    assert_eq!(
        harness.events,
        [Event::Resized(DesktopSize {
            width: 256,
            height: 240
        })]
    );
    assert!(!harness.engine.is_reactivating());
    harness.engine.send_bitmap(&tiny).unwrap();
    assert_eq!(
        harness.engine.session_info().unwrap().desktop_size,
        DesktopSize {
            width: 256,
            height: 240
        }
    );
}

#[test]
fn confirm_active_outside_a_reactivation_is_a_protocol_error() {
    let mut harness = Harness::new(plain_config(), [3; 32]);
    let connected = connect(&mut harness, PASSWORD).unwrap();
    let mut confirm = Vec::new();
    crate::connection::share::encode_confirm_active(
        &mut confirm,
        connected.user_channel,
        connected.share_id,
        0,
        &[],
    );
    common::send_io(&mut harness, &connected, &confirm);
    assert!(matches!(
        closed_reason(&harness.events),
        Some(CloseReason::Error(Error::UnexpectedPdu(_)))
    ));
}

#[test]
fn the_application_chooses_pointer_cache_slots() {
    use crate::{ColorPointer, PointerCommand, PointerImage};
    let mut config = plain_config();
    config.record = true;
    let mut harness = Harness::new(config, [6; 32]);
    // Pointer capability: colour pointers, 20 colour slots, 25 slots.
    let pointer_caps = vec![8, 0, 10, 0, 1, 0, 20, 0, 25, 0];
    common::connect_with(&mut harness, PASSWORD, &[pointer_caps]).unwrap();
    harness.received.clear();
    let rgba = vec![200u8; 8 * 8 * 4];
    let image = PointerImage {
        width: 8,
        height: 8,
        hotspot_x: 0,
        hotspot_y: 0,
        cache_index: Some(7),
        rgba: &rgba,
    };
    let (xor, and) = (vec![0u8; 8 * 8 * 3], vec![0u8; 8]);
    let colour = ColorPointer {
        width: 8,
        height: 8,
        hotspot_x: 0,
        hotspot_y: 0,
        cache_index: Some(24),
        xor_bgr: &xor,
        and_mask: &and,
    };
    assert_eq!(harness.engine.send_pointer(&image), Ok(7));
    assert_eq!(harness.engine.send_color_pointer(&colour), Ok(24));
    // A slot the client does not have is refused, and nothing is sent.
    assert_eq!(
        harness.engine.send_pointer(&PointerImage {
            cache_index: Some(25),
            ..image
        }),
        Err(CommandError::PointerCacheIndex {
            index: 25,
            cache_size: 25
        })
    );
    // Without a choice the engine takes the slots in turn from the first.
    assert_eq!(
        harness.engine.send_color_pointer(&ColorPointer {
            cache_index: None,
            ..colour
        }),
        Ok(0)
    );
    harness
        .engine
        .send_pointer_command(PointerCommand::Cached(24))
        .unwrap();
    harness
        .engine
        .send_pointer_command(PointerCommand::Cached(7))
        .unwrap();
    harness.drain();
    let updates = fastpath::decode_output(&harness.received).unwrap();
    let sent: Vec<(u8, [u8; 2])> = updates
        .iter()
        .map(|(code, payload)| {
            // The slot: after xorBpp in a new pointer, first otherwise.
            let at = if *code == 0xB { 2 } else { 0 };
            (*code, [payload[at], payload[at + 1]])
        })
        .collect();
    assert_eq!(
        sent,
        [
            (0xB, [7, 0]),
            (0x9, [24, 0]),
            (0x9, [0, 0]),
            (0xA, [24, 0]),
            (0xA, [7, 0]),
        ]
    );
    // The chosen slots are recorded: the session replays byte for byte.
    let mut recording = Vec::new();
    while harness.engine.poll_recording(&mut recording).is_some() {}
    crate::replay(&recording, None).expect("replay matches");
}

#[test]
fn client_info_passwords_are_checked_against_a_password_or_an_nt_hash() {
    use crate::{CredentialValidator, Password, Secret};

    /// Holds alice's password in clear, bob's as an NT hash only.
    struct Accounts;
    impl CredentialValidator for Accounts {
        fn secret(&self, user: &str, _domain: &str) -> Option<Secret> {
            match user {
                "alice" => Some(Secret::Password(Password::new("wonderland"))),
                "bob" => Some(Secret::NtHash(crate::nt_hash("builder"))),
                _ => None,
            }
        }
    }
    for (user, password, accepted) in [
        ("alice", "wonderland", true),
        ("alice", "builder", false),
        ("bob", "builder", true),
        ("bob", "wonderland", false),
        ("bob", "", false),
        ("carol", "wonderland", false),
    ] {
        let mut config = plain_config();
        config.credentials = Some(Accounts.into());
        let mut harness = Harness::new(config, [3; 32]);
        let connected = common::connect_as(&mut harness, user, password).is_some();
        assert_eq!(connected, accepted, "{user} with {password:?}");
        if !accepted {
            assert_eq!(
                closed_reason(&harness.events),
                Some(&CloseReason::Error(Error::AuthenticationFailed))
            );
        }
    }
}
