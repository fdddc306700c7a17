//! RemoteFX over surface commands with the in-memory client: negotiation,
//! frame markers, and pacing by frame acknowledgements (latest pixels win).

// Without the QOI codecs their tests and what only they use compile out.
#![cfg_attr(not(all(feature = "qoi", feature = "qoiz")), allow(unused_imports))]

use super::common;
use crate::CommandError;

use crate::connection::codecs::CODEC_GUID_REMOTEFX;
use crate::connection::data_pdus;
use crate::{BitmapUpdate, Graphics, PixelFormat};
use common::{
    Harness, PASSWORD, connect_with, plain_config, remotefx_client_sets, remotefx_properties,
    send_data_pdu, set,
};

const WIDTH: usize = 320;
const HEIGHT: usize = 200;

/// Takes the next fast-path update, reassembling fragments; returns its
/// update code and payload.
fn next_update(harness: &mut Harness) -> Option<(u8, Vec<u8>)> {
    let mut payload = Vec::new();
    loop {
        let pdu = harness.next_pdu()?;
        assert_eq!(pdu[0] & 0x03, 0, "a fast-path pdu");
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

/// The frame id of a surface commands payload and the RemoteFX messages
/// of its stream surface bits commands.
fn frame(payload: &[u8]) -> (u32, Vec<Vec<u8>>) {
    assert_eq!(&payload[..4], [4, 0, 0, 0], "frame marker, begin");
    let id = u32::from_le_bytes(payload[4..8].try_into().unwrap());
    let mut at = 8;
    let mut messages = Vec::new();
    loop {
        let kind = u16::from_le_bytes([payload[at], payload[at + 1]]);
        if kind == 4 {
            assert_eq!(&payload[at + 2..at + 4], [1, 0]);
            assert_eq!(&payload[at + 4..at + 8], id.to_le_bytes());
            assert_eq!(at + 8, payload.len());
            return (id, messages);
        }
        assert_eq!(kind, 6, "stream surface bits");
        assert_eq!(payload[at + 13], 3, "the client's codec id");
        let length = u32::from_le_bytes(payload[at + 18..at + 22].try_into().unwrap()) as usize;
        messages.push(payload[at + 22..at + 22 + length].to_vec());
        at += 22 + length;
    }
}

fn picture(seed: u32) -> Vec<u8> {
    (0..WIDTH * HEIGHT)
        .flat_map(|i| {
            let (x, y) = ((i % WIDTH) as u32, (i / WIDTH) as u32);
            [
                (x + seed) as u8,
                (y * 2) as u8,
                ((x ^ y) + seed * 3) as u8,
                0xFF,
            ]
        })
        .collect()
}

fn send(harness: &mut Harness, pixels: &[u8]) {
    harness
        .engine
        .send_bitmap(&BitmapUpdate {
            x: 0,
            y: 0,
            width: WIDTH as u16,
            height: HEIGHT as u16,
            stride: WIDTH * 4,
            format: PixelFormat::BgrX32,
            data: pixels,
        })
        .unwrap();
    harness.drain();
}

#[test]
fn remotefx_frames_decode_and_are_paced_by_acknowledgements() {
    let mut harness = Harness::new(plain_config(), [5; 32]);
    let connected = connect_with(&mut harness, PASSWORD, &remotefx_client_sets()).unwrap();
    harness.received.clear();

    // Frame 0: the whole desktop, with the stream's header messages.
    let first = picture(0);
    send(&mut harness, &first);
    let (code, payload) = next_update(&mut harness).expect("a frame");
    assert_eq!(code, 4, "surface commands");
    let (id, messages) = frame(&payload);
    assert_eq!((id, messages.len()), (0, 1));
    let decoded = rdpserve_codecs::decode_rfx_message(&messages[0]).expect("decodable");
    assert_eq!((decoded.width, decoded.height), (WIDTH, HEIGHT));
    // Video mode: later frames carry no headers; the decoder gets the first
    // frame's (everything before its TS_RFX_FRAME_BEGIN, block type 0xCCC4).
    let begin = messages[0]
        .windows(2)
        .position(|pair| pair == [0xC4, 0xCC])
        .expect("frame begin");
    let headers = messages[0][..begin].to_vec();
    let decode_later =
        |message: &[u8]| rdpserve_codecs::decode_rfx_message(&[&headers[..], message].concat());
    let psnr = rdpserve_codecs::psnr(&decoded.pixels, &first).unwrap();
    assert!(psnr >= 40.0, "{psnr} dB");

    // Frame 1: one changed tile only.
    let mut second = first.clone();
    second[(70 * WIDTH + 70) * 4] ^= 0xFF;
    send(&mut harness, &second);
    let (_, payload) = next_update(&mut harness).expect("a frame");
    let (id, messages) = frame(&payload);
    assert_eq!(id, 1);
    assert!(!messages[0].starts_with(&headers), "headers only once");
    let decoded = decode_later(&messages[0]).expect("decodable");
    assert_eq!(decoded.rects.len(), 1, "only the changed tile");
    assert_eq!((decoded.rects[0].x, decoded.rects[0].y), (64, 64));

    // Two frames unacknowledged: further updates coalesce, nothing is sent.
    send(&mut harness, &picture(1));
    let latest = picture(2);
    send(&mut harness, &latest);
    assert!(harness.next_pdu().is_none(), "held back until an ack");

    // The ack of frame 0 releases one frame with the latest pixels.
    send_data_pdu(
        &mut harness,
        &connected,
        data_pdus::PDUTYPE2_FRAME_ACKNOWLEDGE,
        &0u32.to_le_bytes(),
    );
    let (_, payload) = next_update(&mut harness).expect("the coalesced frame");
    let (id, messages) = frame(&payload);
    assert_eq!(id, 2);
    assert!(harness.next_pdu().is_none(), "one frame, not two");
    let decoded = decode_later(&messages[0]).expect("decodable");
    assert_eq!(decoded.rects.len(), 20, "every tile changed");
    let psnr = rdpserve_codecs::psnr(&decoded.pixels, &latest).unwrap();
    assert!(psnr >= 40.0, "{psnr} dB");
}

#[test]
fn clients_without_remotefx_get_bitmap_updates() {
    let mut harness = Harness::new(plain_config(), [5; 32]);
    let _connected = connect_with(&mut harness, PASSWORD, &[]).unwrap();
    harness.received.clear();
    send(&mut harness, &picture(0));
    let (code, _) = next_update(&mut harness).expect("an update");
    assert_eq!(code, 1, "bitmap update");
}

/// QOI and QOIZ, when built (`qoiz` implies `qoi`).
#[cfg(feature = "qoiz")]
mod qoi_and_qoiz {
    use super::*;
    use crate::api::config::SurfaceCodec;

    /// Confirm Active sets of a client that lists only `guid` (as codec 5),
    /// like IronRDP's clients list QOI and QOIZ.
    fn client_sets_with(guid: [u8; 16]) -> Vec<Vec<u8>> {
        let mut codecs = vec![1];
        codecs.extend_from_slice(&guid);
        codecs.extend_from_slice(&[5, 0, 0]); // codecID 5, no properties
        vec![set(28, &[0x52, 0, 0, 0, 0, 0, 0, 0]), set(29, &codecs)]
    }

    /// The commands of a QOI/QOIZ frame: (left, top, width, height, data).
    fn tile_commands(payload: &[u8]) -> Vec<(usize, usize, usize, usize, Vec<u8>)> {
        assert_eq!(&payload[..2], [4, 0], "frame marker");
        let mut at = 8;
        let mut commands = Vec::new();
        while u16::from_le_bytes([payload[at], payload[at + 1]]) == 6 {
            let field = |offset: usize| {
                usize::from(u16::from_le_bytes([
                    payload[at + offset],
                    payload[at + offset + 1],
                ]))
            };
            let (left, top, right, bottom) = (field(2), field(4), field(6), field(8));
            assert_eq!(payload[at + 13], 5, "the client's codec id");
            assert_eq!((field(14), field(16)), (right - left, bottom - top));
            let length = u32::from_le_bytes(payload[at + 18..at + 22].try_into().unwrap()) as usize;
            commands.push((
                left,
                top,
                right - left,
                bottom - top,
                payload[at + 22..at + 22 + length].to_vec(),
            ));
            at += 22 + length;
        }
        assert_eq!(&payload[at..at + 4], [4, 0, 1, 0], "frame marker, end");
        commands
    }

    /// The RGB bytes of a rectangle of a B, G, R, X picture.
    fn rgb_of(pixels: &[u8], left: usize, top: usize, width: usize, height: usize) -> Vec<u8> {
        let mut rgb = Vec::new();
        for y in top..top + height {
            for x in left..left + width {
                let at = (y * WIDTH + x) * 4;
                rgb.extend_from_slice(&[pixels[at + 2], pixels[at + 1], pixels[at]]);
            }
        }
        rgb
    }

    #[test]
    fn qoi_tiles_decode_exactly_with_a_standard_decoder() {
        let mut harness = Harness::new(plain_config(), [5; 32]);
        connect_with(
            &mut harness,
            PASSWORD,
            &client_sets_with(rdpserve_codecs::QOI_CODEC_GUID),
        )
        .unwrap();
        harness.received.clear();
        let pixels = picture(7);
        send(&mut harness, &pixels);
        let (code, payload) = next_update(&mut harness).expect("a frame");
        assert_eq!(code, 4);
        let commands = tile_commands(&payload);
        assert_eq!(commands.len(), 20, "5 x 4 tiles of 64x64");
        for (left, top, width, height, data) in commands {
            let (header, rgb) = qoi::decode_to_vec(&data).expect("a standard qoi image");
            assert_eq!(
                (header.width as usize, header.height as usize),
                (width, height)
            );
            assert_eq!(
                rgb,
                rgb_of(&pixels, left, top, width, height),
                "tile at {left},{top}"
            );
        }
    }

    #[test]
    fn qoiz_is_one_zstd_stream_across_frames() {
        use zstd::zstd_safe::{DCtx, InBuffer, OutBuffer};

        let mut harness = Harness::new(plain_config(), [5; 32]);
        connect_with(
            &mut harness,
            PASSWORD,
            &client_sets_with(rdpserve_codecs::QOIZ_CODEC_GUID),
        )
        .unwrap();
        harness.received.clear();
        let mut decoder = DCtx::create();
        let mut decompress = |payload: &[u8]| {
            let mut input = InBuffer::around(payload);
            let mut decoded = Vec::with_capacity(64 * 1024);
            loop {
                let position = decoded.len();
                decoded.reserve(64 * 1024);
                let mut output = OutBuffer::around_pos(&mut decoded, position);
                decoder
                    .decompress_stream(&mut output, &mut input)
                    .expect("one stream");
                let filled = output.pos() == output.capacity();
                if input.pos() == payload.len() && !filled {
                    return decoded;
                }
            }
        };
        let mut pixels = picture(3);
        for round in 0..2 {
            send(&mut harness, &pixels);
            let (_, payload) = next_update(&mut harness).expect("a frame");
            let commands = tile_commands(&payload);
            assert_eq!(commands.len(), if round == 0 { 20 } else { 1 });
            for (left, top, width, height, data) in commands {
                let image = decompress(&data);
                let (_, rgb) = qoi::decode_to_vec(&image).expect("qoi inside zstd");
                assert_eq!(rgb, rgb_of(&pixels, left, top, width, height));
            }
            // Change one tile for the second frame.
            pixels[(130 * WIDTH + 200) * 4] ^= 0x55;
        }
    }

    /// A QOIZ decoder as a client keeps it: one zstd stream per activation.
    struct QoizClient {
        decoder: zstd::zstd_safe::DCtx<'static>,
    }

    impl QoizClient {
        fn new() -> Self {
            Self {
                decoder: zstd::zstd_safe::DCtx::create(),
            }
        }

        /// Decodes every QOIZ frame (codec id 5) that arrived, skipping other
        /// updates; checks each tile against `pixels`; returns how many tiles.
        fn check_frames(&mut self, harness: &mut Harness, pixels: &[u8]) -> usize {
            use zstd::zstd_safe::{InBuffer, OutBuffer};
            let mut tiles = 0;
            while let Some((code, payload)) = next_update(harness) {
                let qoiz = code == 4 && payload.get(8..10) == Some(&[6, 0]) && payload[8 + 13] == 5;
                if !qoiz {
                    continue;
                }
                for (left, top, width, height, data) in tile_commands(&payload) {
                    let mut input = InBuffer::around(&data);
                    let mut image = Vec::with_capacity(64 * 1024);
                    loop {
                        let position = image.len();
                        image.reserve(64 * 1024);
                        let mut output = OutBuffer::around_pos(&mut image, position);
                        self.decoder
                            .decompress_stream(&mut output, &mut input)
                            .expect("the activation's one zstd stream");
                        let filled = output.pos() == output.capacity();
                        if input.pos() == data.len() && !filled {
                            break;
                        }
                    }
                    let (_, rgb) = qoi::decode_to_vec(&image).expect("qoi inside zstd");
                    assert_eq!(rgb, rgb_of(pixels, left, top, width, height));
                    tiles += 1;
                }
            }
            tiles
        }
    }

    /// Confirm Active sets of a client that takes RemoteFX (codec 3) and QOIZ
    /// (codec 5), without frame acknowledgements.
    fn remotefx_and_qoiz_client_sets() -> Vec<Vec<u8>> {
        let mut codecs = vec![2];
        codecs.extend_from_slice(&CODEC_GUID_REMOTEFX);
        codecs.push(3);
        let properties = remotefx_properties();
        codecs.extend_from_slice(&(properties.len() as u16).to_le_bytes());
        codecs.extend_from_slice(&properties);
        codecs.extend_from_slice(&rdpserve_codecs::QOIZ_CODEC_GUID);
        codecs.extend_from_slice(&[5, 0, 0]);
        vec![set(28, &[0x52, 0, 0, 0, 0, 0, 0, 0]), set(29, &codecs)]
    }

    #[test]
    fn returning_to_qoiz_continues_the_activation_stream() {
        let mut harness = Harness::new(plain_config(), [5; 32]);
        connect_with(&mut harness, PASSWORD, &remotefx_and_qoiz_client_sets()).unwrap();
        harness.received.clear();
        let mut client = QoizClient::new();
        let mut pixels = picture(11);
        send(&mut harness, &pixels);
        let qoiz = Graphics::Surface(SurfaceCodec::Qoiz);
        // QOIZ, QOIZ again, bitmaps then QOIZ, RemoteFX then QOIZ: every QOIZ
        // repaint and update must decode on the client's one stream.
        let switches: [&[Graphics]; 4] = [
            &[qoiz],
            &[qoiz],
            &[Graphics::Bitmaps, qoiz],
            &[Graphics::Surface(SurfaceCodec::RemoteFx), qoiz],
        ];
        for (round, switch) in switches.iter().enumerate() {
            for &graphics in *switch {
                harness.engine.set_graphics(graphics).unwrap();
                harness.drain();
            }
            assert_eq!(
                client.check_frames(&mut harness, &pixels),
                20,
                "repaint {round}"
            );
            pixels[(70 * WIDTH + 10) * 4] ^= 0x33;
            send(&mut harness, &pixels);
            assert_eq!(
                client.check_frames(&mut harness, &pixels),
                1,
                "update {round}"
            );
        }
    }

    /// Confirm Active sets of a client that takes RemoteFX (codec 3) and QOI
    /// (codec 5) and acknowledges frames.
    fn remotefx_and_qoi_client_sets() -> Vec<Vec<u8>> {
        let mut codecs = vec![2];
        codecs.extend_from_slice(&CODEC_GUID_REMOTEFX);
        codecs.push(3);
        let properties = remotefx_properties();
        codecs.extend_from_slice(&(properties.len() as u16).to_le_bytes());
        codecs.extend_from_slice(&properties);
        codecs.extend_from_slice(&rdpserve_codecs::QOI_CODEC_GUID);
        codecs.extend_from_slice(&[5, 0, 0]);
        vec![
            set(28, &[0x52, 0, 0, 0, 0, 0, 0, 0]),
            set(29, &codecs),
            set(30, &[2, 0, 0, 0]),
        ]
    }

    #[test]
    fn the_application_can_switch_codecs_without_losing_held_back_pixels() {
        let mut harness = Harness::new(plain_config(), [5; 32]);
        connect_with(&mut harness, PASSWORD, &remotefx_and_qoi_client_sets()).unwrap();
        harness.received.clear();
        let info = harness.engine.session_info().expect("active").clone();
        assert_eq!(info.graphics, Graphics::Surface(SurfaceCodec::RemoteFx));
        assert_eq!(
            info.surface_codecs,
            [SurfaceCodec::RemoteFx, SurfaceCodec::Qoi],
            "what the client takes, in the server's order"
        );

        // Two RemoteFX frames go unacknowledged; a third picture is held back.
        send(&mut harness, &picture(0));
        send(&mut harness, &picture(1));
        assert_eq!(frame(&next_update(&mut harness).unwrap().1).0, 0);
        assert_eq!(frame(&next_update(&mut harness).unwrap().1).0, 1);
        let latest = picture(2);
        send(&mut harness, &latest);
        assert!(harness.next_pdu().is_none(), "held back");

        // Switching to QOI repaints everything at once with the latest pixels,
        // in a frame whose id follows RemoteFX's.
        harness
            .engine
            .set_graphics(Graphics::Surface(SurfaceCodec::Qoi))
            .unwrap();
        harness.drain();
        let (code, payload) = next_update(&mut harness).expect("a QOI frame");
        assert_eq!(code, 4);
        assert_eq!(u32::from_le_bytes(payload[4..8].try_into().unwrap()), 2);
        let commands = tile_commands(&payload);
        assert_eq!(commands.len(), 20, "the whole desktop");
        for (left, top, width, height, data) in commands {
            let (_, rgb) = qoi::decode_to_vec(&data).expect("qoi");
            assert_eq!(rgb, rgb_of(&latest, left, top, width, height));
        }
        assert_eq!(
            harness.engine.session_info().unwrap().graphics,
            Graphics::Surface(SurfaceCodec::Qoi)
        );

        // A codec the client does not take is refused, and changes nothing.
        assert!(matches!(
            harness
                .engine
                .set_graphics(Graphics::Surface(SurfaceCodec::Qoiz)),
            Err(CommandError::CodecNotTaken)
        ));
        assert!(harness.next_pdu().is_none());

        // Bitmaps: the whole desktop again, as bitmap updates.
        harness.engine.set_graphics(Graphics::Bitmaps).unwrap();
        harness.drain();
        let mut covered = 0;
        while let Some((code, payload)) = next_update(&mut harness) {
            assert_eq!(code, 1, "bitmap update");
            for rect in crate::graphics::bitmap::decode_bitmap_update(&payload).unwrap() {
                covered += usize::from(rect.dest_right - rect.dest_left + 1)
                    * usize::from(rect.dest_bottom - rect.dest_top + 1);
            }
        }
        assert_eq!(covered, WIDTH * HEIGHT);
        // And later updates use bitmaps.
        let mut changed = latest.clone();
        changed[(10 * WIDTH + 10) * 4] ^= 0xFF;
        send(&mut harness, &changed);
        assert_eq!(next_update(&mut harness).expect("an update").0, 1);
    }
}
#[test]
fn graphics_cannot_be_chosen_before_activation() {
    let mut harness = Harness::new(plain_config(), [5; 32]);
    assert!(matches!(
        harness.engine.set_graphics(Graphics::Bitmaps),
        Err(CommandError::NotActive)
    ));
}
