//! The Graphics Pipeline with the in-memory client: the channel opens for
//! a client that supports it, capabilities, the surface, frames of planar
//! tiles through ZGFX decoded back to the pixels sent, pacing by frame
//! acknowledgements (latest pixels win, suspension), scrolls as surface
//! copies, a client that never acknowledges, and garbage on the channel
//! closing it and returning the session to bitmaps.

use super::common;
use crate::graphics::egfx::pdu::{self, CapabilitySet, ClientPdu, ServerPdu, codec, version};
use crate::{BitmapUpdate, Graphics, PipelineCodec, PixelFormat};
use common::{Connected, Harness, PASSWORD, Tweaks, plain_config, send_dvc};
use rdpserve_codecs::zgfx::ZgfxDecompressor;

const WIDTH: usize = 320;
const HEIGHT: usize = 200;
const GRAPHICS: u8 = 3;
/// SUPPORT_ERRINFO_PDU | WANT_32BPP_SESSION | SUPPORT_DYN_VC_GFX_PROTOCOL.
const GFX_FLAGS: u16 = 0x0103;

/// The client's side: the DVC messages of the graphics channel, through
/// ZGFX, and the picture the PDUs draw.
struct GfxClient {
    zgfx: ZgfxDecompressor,
    /// A DataFirst's message being reassembled and its total.
    partial: Option<(Vec<u8>, usize)>,
    screen: Vec<u8>,
    pdus: Vec<String>,
    frames: Vec<u32>,
    /// The bitmap cache: slot to width, height and pixels.
    cache: std::collections::HashMap<u16, (usize, usize, Vec<u8>)>,
    /// The surface's H.264 decoder and its last picture.
    #[cfg(feature = "h264")]
    h264: Option<(rdpserve_codecs::H264Decoder, rdpserve_codecs::I420)>,
    /// Each SurfaceToSurface: source and destinations.
    copies: Vec<(pdu::Rect16, Vec<pdu::Point16>)>,
    /// The region rectangles of the last AVC420 bitmap (left, top,
    /// right, bottom), and the rectangles put into the cache.
    regions: Vec<[usize; 4]>,
    cached: Vec<[usize; 4]>,
}

impl GfxClient {
    fn new() -> Self {
        Self {
            zgfx: ZgfxDecompressor::new(),
            partial: None,
            screen: vec![0; WIDTH * HEIGHT * 4],
            pdus: Vec::new(),
            frames: Vec::new(),
            cache: std::collections::HashMap::new(),
            #[cfg(feature = "h264")]
            h264: None,
            copies: Vec::new(),
            regions: Vec::new(),
            cached: Vec::new(),
        }
    }

    /// An RFX_AVC420_BITMAP_STREAM over the whole surface: decodes the
    /// stream and copies the region rectangles out of the picture (BT.709
    /// full range, MS-RDPEGFX 3.3.8.3.1), the rest of the screen kept.
    #[cfg(feature = "h264")]
    fn avc420(&mut self, bitmap: &[u8]) -> Vec<u8> {
        let count = u32::from_le_bytes(bitmap[..4].try_into().unwrap()) as usize;
        let word = |at: usize| usize::from(u16::from_le_bytes([bitmap[at], bitmap[at + 1]]));
        let stream = &bitmap[4 + count * 10..];
        let (decoder, picture) = self.h264.get_or_insert_with(|| {
            (
                rdpserve_codecs::H264Decoder::new().unwrap(),
                rdpserve_codecs::I420::default(),
            )
        });
        assert!(decoder.decode(stream, picture).expect("the stream decodes"));
        assert!(picture.width % 16 == 0 && picture.height % 16 == 0);
        let mut screen = self.screen.clone();
        self.regions.clear();
        for region in 0..count {
            let at = 4 + region * 8;
            let (left, top, right, bottom) = (word(at), word(at + 2), word(at + 4), word(at + 6));
            self.regions.push([left, top, right, bottom]);
            for y in top..bottom {
                for x in left..right {
                    let luma = f64::from(picture.y[y * picture.width + x]);
                    let chroma = (y / 2) * (picture.width / 2) + x / 2;
                    let u = f64::from(picture.u[chroma]) - 128.0;
                    let v = f64::from(picture.v[chroma]) - 128.0;
                    let level = |value: f64| value.round().clamp(0.0, 255.0) as u8;
                    let pixel = [
                        level(luma + 1.8556 * u),
                        level(luma - 0.1873 * u - 0.4681 * v),
                        level(luma + 1.5748 * v),
                        0xFF,
                    ];
                    let at = (y * WIDTH + x) * 4;
                    screen[at..at + 4].copy_from_slice(&pixel);
                }
            }
        }
        screen
    }

    /// Reads every drdynvc message the engine sent so far.
    fn receive(&mut self, harness: &mut Harness) {
        while !harness.received.is_empty() {
            let (_, data) = harness.next_channel_data();
            // CHANNEL_PDU_HEADER, then one DVC PDU.
            let dvc = &data[8..];
            let (command, sp, cb_id) = (dvc[0] >> 4, (dvc[0] >> 2) & 3, dvc[0] & 3);
            let read = |at: usize, code: u8| -> (usize, usize) {
                match code {
                    0 => (usize::from(dvc[at]), 1),
                    1 => (usize::from(u16::from_le_bytes([dvc[at], dvc[at + 1]])), 2),
                    _ => (
                        u32::from_le_bytes(dvc[at..at + 4].try_into().unwrap()) as usize,
                        4,
                    ),
                }
            };
            let (channel, id_len) = read(1, cb_id);
            if channel != usize::from(GRAPHICS) || !(2..=3).contains(&command) {
                continue;
            }
            let message = if command == 2 {
                let (total, len_len) = read(1 + id_len, sp);
                let first = dvc[1 + id_len + len_len..].to_vec();
                self.partial = Some((first, total));
                None
            } else {
                let part = &dvc[1 + id_len..];
                match self.partial.take() {
                    Some((mut buffer, total)) => {
                        buffer.extend_from_slice(part);
                        if buffer.len() < total {
                            self.partial = Some((buffer, total));
                            None
                        } else {
                            Some(buffer)
                        }
                    }
                    None => Some(part.to_vec()),
                }
            };
            if let Some(message) = message {
                self.message(&message);
            }
        }
    }

    fn message(&mut self, message: &[u8]) {
        let mut pdus = Vec::new();
        self.zgfx
            .decompress(message, 64 << 20, &mut pdus)
            .expect("the server's zgfx decodes");
        let mut rest = &pdus[..];
        while !rest.is_empty() {
            let (pdu, after) = ServerPdu::decode(rest).expect("the server's pdus decode");
            rest = after;
            match &pdu {
                ServerPdu::WireToSurface1 {
                    codec_id,
                    destination,
                    bitmap_data,
                    ..
                } => {
                    let (left, top) = (usize::from(destination.left), usize::from(destination.top));
                    let width = usize::from(destination.right) - left;
                    let height = usize::from(destination.bottom) - top;
                    let pixels = match *codec_id {
                        codec::PLANAR => {
                            // decode_planar reads bitmap updates bottom-up;
                            // the pipeline's planar runs top-down.
                            let flipped =
                                rdpserve_codecs::decode_planar(bitmap_data, width, height)
                                    .expect("planar decodes");
                            flipped
                                .chunks_exact(width * 4)
                                .rev()
                                .flatten()
                                .copied()
                                .collect::<Vec<u8>>()
                        }
                        codec::UNCOMPRESSED => bitmap_data.to_vec(),
                        #[cfg(feature = "h264")]
                        codec::AVC420 => self.avc420(bitmap_data),
                        // RFX_AVC444_BITMAP_STREAM: the first stream's
                        // length and LC, then two AVC420 bitmap streams;
                        // checked for shape, the picture left as it was.
                        #[cfg(feature = "h264")]
                        codec::AVC444 | codec::AVC444V2 => {
                            let info = u32::from_le_bytes(bitmap_data[..4].try_into().unwrap());
                            let (first, lc) = ((info & 0x3FFF_FFFF) as usize, info >> 30);
                            assert_eq!(lc, 0, "both views");
                            let regions = |stream: &[u8]| {
                                u32::from_le_bytes(stream[..4].try_into().unwrap()) as usize
                            };
                            let (main, auxiliary) = bitmap_data[4..].split_at(first);
                            assert_eq!(regions(main), regions(auxiliary));
                            assert!(main.len() > 4 + regions(main) * 10);
                            assert!(auxiliary.len() > 4 + regions(auxiliary) * 10);
                            self.screen.clone()
                        }
                        other => panic!("codec {other}"),
                    };
                    for row in 0..height {
                        let at = ((top + row) * WIDTH + left) * 4;
                        self.screen[at..at + width * 4]
                            .copy_from_slice(&pixels[row * width * 4..(row + 1) * width * 4]);
                    }
                    self.pdus.push(format!("WireToSurface1 codec {codec_id}"));
                }
                ServerPdu::SolidFill { color, rects, .. } => {
                    for rect in rects {
                        for y in rect.top..rect.bottom {
                            for x in rect.left..rect.right {
                                let at = (usize::from(y) * WIDTH + usize::from(x)) * 4;
                                self.screen[at..at + 4]
                                    .copy_from_slice(&[color.b, color.g, color.r, color.xa]);
                            }
                        }
                        self.pdus.push("SolidFill rect".to_owned());
                    }
                }
                ServerPdu::SurfaceToCache {
                    cache_slot, source, ..
                } => {
                    let (left, top) = (usize::from(source.left), usize::from(source.top));
                    let width = usize::from(source.right) - left;
                    let height = usize::from(source.bottom) - top;
                    let mut pixels = Vec::new();
                    for row in top..top + height {
                        let at = (row * WIDTH + left) * 4;
                        pixels.extend_from_slice(&self.screen[at..at + width * 4]);
                    }
                    self.cached.push([left, top, left + width, top + height]);
                    let old = self.cache.insert(*cache_slot, (width, height, pixels));
                    assert!(
                        old.is_none(),
                        "slot {cache_slot} filled without an eviction"
                    );
                    self.pdus.push("SurfaceToCache".to_owned());
                }
                ServerPdu::EvictCacheEntry { cache_slot } => {
                    assert!(
                        self.cache.remove(cache_slot).is_some(),
                        "evicting an empty slot"
                    );
                }
                ServerPdu::CacheToSurface {
                    cache_slot,
                    destinations,
                    ..
                } => {
                    let (width, height, pixels) =
                        self.cache.get(cache_slot).expect("a filled slot").clone();
                    for point in destinations {
                        for row in 0..height {
                            let at =
                                ((usize::from(point.y) + row) * WIDTH + usize::from(point.x)) * 4;
                            self.screen[at..at + width * 4]
                                .copy_from_slice(&pixels[row * width * 4..(row + 1) * width * 4]);
                        }
                    }
                    self.pdus.push("CacheToSurface".to_owned());
                }
                ServerPdu::SurfaceToSurface {
                    source,
                    destinations,
                    ..
                } => {
                    let (left, top) = (usize::from(source.left), usize::from(source.top));
                    let width = usize::from(source.right) - left;
                    let height = usize::from(source.bottom) - top;
                    // Read whole before writing: source and destination overlap.
                    let mut pixels = Vec::new();
                    for row in top..top + height {
                        let at = (row * WIDTH + left) * 4;
                        pixels.extend_from_slice(&self.screen[at..at + width * 4]);
                    }
                    for point in destinations {
                        for row in 0..height {
                            let at =
                                ((usize::from(point.y) + row) * WIDTH + usize::from(point.x)) * 4;
                            self.screen[at..at + width * 4]
                                .copy_from_slice(&pixels[row * width * 4..(row + 1) * width * 4]);
                        }
                    }
                    self.copies.push((*source, destinations.clone()));
                    self.pdus.push("SurfaceToSurface".to_owned());
                }
                ServerPdu::StartFrame { frame_id, .. } => self.frames.push(*frame_id),
                other => self.pdus.push(
                    format!("{other:?}")
                        .split([' ', '('])
                        .next()
                        .unwrap()
                        .to_owned(),
                ),
            }
        }
    }

    /// The client's screen with the fourth byte set as the server's
    /// pictures have it.
    fn picture(&self) -> Vec<u8> {
        self.screen
            .chunks_exact(4)
            .flat_map(|pixel| [pixel[0], pixel[1], pixel[2], 0xFF])
            .collect()
    }
}

fn picture(seed: u32) -> Vec<u8> {
    (0..WIDTH * HEIGHT)
        .flat_map(|i| {
            let (x, y) = ((i % WIDTH) as u32, (i / WIDTH) as u32);
            let flat = (x / 64 + y / 64) % 3 == 0;
            if flat {
                [0x30, 0x60, 0x90, 0xFF]
            } else {
                [
                    (x + seed) as u8,
                    (y * 2) as u8,
                    ((x ^ y) + seed * 3) as u8,
                    0xFF,
                ]
            }
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
        .expect("update accepted");
    harness.drain();
}

fn send_graphics(harness: &mut Harness, connected: &Connected, pdu: &ClientPdu) {
    let mut message = vec![0x30, GRAPHICS];
    pdu.encode(&mut message);
    send_dvc(harness, connected, &message);
}

/// A session whose client supports the pipeline, active, with the DVC
/// capabilities exchanged and the graphics channel accepted.
fn connect_gfx(config: crate::Config) -> (Harness, Connected) {
    let mut harness = Harness::new(config, [9; 32]);
    let tweaks = Tweaks {
        early_capability_flags: Some(GFX_FLAGS),
        ..Tweaks::default()
    };
    let connected = common::start(&mut harness, PASSWORD, &tweaks).unwrap();
    common::send_confirm_active(&mut harness, &connected, &[]);
    common::send_finalization(&mut harness, &connected);
    harness.received.clear();
    send_dvc(&mut harness, &connected, &[0x50, 0x00, 0x03, 0x00]);
    let mut created = Vec::new();
    while !harness.received.is_empty() {
        let (_, create) = harness.next_channel_data();
        created.push(create[8..].to_vec());
    }
    let mut graphics = vec![0x10, GRAPHICS];
    graphics.extend_from_slice(pdu::CHANNEL_NAME.as_bytes());
    graphics.push(0);
    assert!(
        created.contains(&graphics),
        "graphics channel requested: {created:?}"
    );
    send_dvc(&mut harness, &connected, &[0x10, GRAPHICS, 0, 0, 0, 0]);
    assert!(harness.received.is_empty(), "the client speaks first");
    (harness, connected)
}

fn advertise(harness: &mut Harness, connected: &Connected) {
    send_graphics(
        harness,
        connected,
        &ClientPdu::CapsAdvertise(vec![
            CapabilitySet {
                version: version::V8,
                data: vec![0; 4],
            },
            CapabilitySet {
                version: version::V8_1,
                data: vec![0x13, 0, 0, 0],
            },
        ]),
    );
}

fn acknowledge(harness: &mut Harness, connected: &Connected, queue_depth: u32, frame_id: u32) {
    send_graphics(
        harness,
        connected,
        &ClientPdu::FrameAcknowledge {
            queue_depth,
            frame_id,
            total_frames_decoded: frame_id + 1,
        },
    );
}

fn count(client: &GfxClient, name: &str) -> usize {
    client.pdus.iter().filter(|pdu| pdu.contains(name)).count()
}

#[test]
fn the_pipeline_draws_the_pictures_sent_paced_by_acknowledgements() {
    let (mut harness, connected) = connect_gfx(plain_config());
    let mut client = GfxClient::new();
    let first = picture(1);
    // Before the capabilities, updates take the bitmap path.
    send(&mut harness, &first);
    assert!(harness.received.len() > 1000);
    assert_eq!(
        harness.engine.session_info().unwrap().graphics,
        Graphics::Bitmaps
    );
    harness.received.clear();
    advertise(&mut harness, &connected);
    client.receive(&mut harness);
    assert_eq!(
        client.pdus[..4],
        [
            "CapsConfirm",
            "ResetGraphics",
            "CreateSurface",
            "MapSurfaceToOutput"
        ]
    );
    assert_eq!(
        harness.engine.session_info().unwrap().graphics,
        Graphics::Pipeline(PipelineCodec::Planar)
    );
    // The whole picture, repainted as the first frame: planar tiles, each
    // kept in the client's cache, and solid fills for the flat ones. The
    // tiles 256 pixels apart on rows 64 to 127 are the same picture: the
    // second comes from the cache.
    assert_eq!(client.frames, [0]);
    assert_eq!(count(&client, "codec 10"), 12);
    assert_eq!(count(&client, "SurfaceToCache"), 12);
    assert_eq!(count(&client, "CacheToSurface"), 1);
    assert_eq!(count(&client, "SolidFill rect"), 7);
    assert!(
        client.picture() == first,
        "the first frame draws the picture"
    );
    // Frames 1 goes out (two may be outstanding); the next is held, and
    // later updates only mark tiles.
    let (second, third, fourth) = (picture(2), picture(3), picture(4));
    send(&mut harness, &second);
    client.receive(&mut harness);
    assert_eq!(client.frames, [0, 1]);
    // A client that stops acknowledging gets nothing more, however many
    // updates come: nothing queues.
    for seed in 10..40 {
        send(&mut harness, &picture(seed));
        assert!(harness.received.is_empty(), "update {seed} held back");
    }
    send(&mut harness, &third);
    send(&mut harness, &fourth);
    client.receive(&mut harness);
    assert_eq!(client.frames, [0, 1], "held until acknowledged");
    // The acknowledgement releases one frame with the latest pixels.
    acknowledge(&mut harness, &connected, 0, 0);
    client.receive(&mut harness);
    assert_eq!(client.frames, [0, 1, 2]);
    assert!(client.picture() == fourth, "latest pixels win");
    // A client that suspends acknowledgements gets every frame.
    acknowledge(
        &mut harness,
        &connected,
        pdu::SUSPEND_FRAME_ACKNOWLEDGEMENT,
        2,
    );
    for seed in 5..9 {
        send(&mut harness, &picture(seed));
    }
    client.receive(&mut harness);
    assert_eq!(client.frames, [0, 1, 2, 3, 4, 5, 6]);
    assert!(client.picture() == picture(8));
    // A picture sent before comes from the client's cache, tile by tile.
    client.pdus.clear();
    send(&mut harness, &first);
    client.receive(&mut harness);
    assert_eq!(count(&client, "CacheToSurface"), 13);
    assert_eq!(count(&client, "WireToSurface1"), 0);
    assert!(client.picture() == first);
    // One hit in each of the seven frames so far (the twin tiles), then
    // these thirteen; the flat tiles never changed after the first frame.
    let stats = harness.engine.pipeline_stats().unwrap();
    assert_eq!((stats.cache_hits, stats.solid_fills), (20, 7));
    assert!(stats.compressed_bytes < stats.uncompressed_bytes);
    // The codec switches within the pipeline: what is encoded from now on
    // is uncompressed.
    harness
        .engine
        .set_graphics(Graphics::Pipeline(PipelineCodec::Uncompressed))
        .unwrap();
    harness.drain();
    client.receive(&mut harness);
    send(&mut harness, &picture(9));
    client.receive(&mut harness);
    assert!(count(&client, "WireToSurface1 codec 0") > 0);
    assert!(client.picture() == picture(9));
    // Other paths are refused while the pipeline runs.
    assert_eq!(
        harness.engine.set_graphics(Graphics::Bitmaps),
        Err(crate::CommandError::CodecNotTaken)
    );
    // A cache import offer is answered: nothing imported.
    send_graphics(
        &mut harness,
        &connected,
        &ClientPdu::CacheImportOffer(vec![pdu::CacheEntryMetadata {
            cache_key: 7,
            bitmap_length: 64,
        }]),
    );
    client.receive(&mut harness);
    assert_eq!(client.pdus.last().unwrap(), "CacheImportReply");
}

#[test]
fn garbage_on_the_channel_closes_it_and_bitmaps_take_over() {
    let (mut harness, connected) = connect_gfx(plain_config());
    let mut client = GfxClient::new();
    advertise(&mut harness, &connected);
    send(&mut harness, &picture(1));
    client.receive(&mut harness);
    assert_eq!(client.frames, [0]);
    // A FrameAcknowledge whose pduLength says more than the message holds.
    send_dvc(
        &mut harness,
        &connected,
        &[0x30, GRAPHICS, 0x0D, 0, 0, 0, 0x40, 0, 0, 0, 1, 2, 3],
    );
    let (_, close) = harness.next_channel_data();
    assert_eq!(&close[8..], [0x40, GRAPHICS], "the channel is closed");
    assert_eq!(
        harness.engine.session_info().unwrap().graphics,
        Graphics::Bitmaps
    );
    assert!(
        harness
            .events
            .iter()
            .all(|event| !matches!(event, crate::Event::Closed { .. }))
    );
    // The session goes on, drawing with bitmaps.
    harness.received.clear();
    send(&mut harness, &picture(2));
    let pdu = harness.next_pdu().expect("a bitmap update");
    assert_eq!(pdu[0] & 0x03, 0, "fast-path output");
}

#[test]
fn without_client_support_or_configuration_no_channel_opens() {
    for (flags, offered) in [(0x0003, true), (GFX_FLAGS, false)] {
        let mut config = plain_config();
        if !offered {
            config.graphics_pipeline = None;
        }
        let mut harness = Harness::new(config, [9; 32]);
        let tweaks = Tweaks {
            early_capability_flags: Some(flags),
            ..Tweaks::default()
        };
        let connected = common::start(&mut harness, PASSWORD, &tweaks).unwrap();
        common::send_confirm_active(&mut harness, &connected, &[]);
        common::send_finalization(&mut harness, &connected);
        harness.received.clear();
        send_dvc(&mut harness, &connected, &[0x50, 0x00, 0x03, 0x00]);
        while !harness.received.is_empty() {
            let (_, create) = harness.next_channel_data();
            assert_ne!(create[9], GRAPHICS, "no graphics channel");
        }
    }
}

/// PSNR in dB of `got` against `expected` over B, G and R.
#[cfg(feature = "h264")]
fn psnr(expected: &[u8], got: &[u8]) -> f64 {
    let mut squared = 0u64;
    let mut count = 0u64;
    for (a, b) in expected.chunks_exact(4).zip(got.chunks_exact(4)) {
        for channel in 0..3 {
            let difference = i64::from(a[channel]) - i64::from(b[channel]);
            squared += (difference * difference) as u64;
            count += 1;
        }
    }
    if squared == 0 {
        return 100.0;
    }
    10.0 * (255.0f64 * 255.0 / (squared as f64 / count as f64)).log10()
}

/// A desktop-like picture for H.264: flat tiles, smooth gradients and a
/// block of one-pixel "text" strokes moved by `seed`.
#[cfg(feature = "h264")]
fn desktop(seed: usize) -> Vec<u8> {
    (0..WIDTH * HEIGHT)
        .flat_map(|i| {
            let (x, y) = (i % WIDTH, i / WIDTH);
            if (70..130).contains(&y) && (100..220).contains(&x) {
                let ink = (y / 6) % 2 == 0 && ((x + seed) / 3) % 3 != 0;
                return if ink {
                    [20, 20, 20, 0xFF]
                } else {
                    [250, 250, 250, 0xFF]
                };
            }
            if (x / 64 + y / 64) % 3 == 0 {
                [0x30, 0x60, 0x90, 0xFF]
            } else {
                [(x * 255 / WIDTH) as u8, 180, (y * 255 / HEIGHT) as u8, 0xFF]
            }
        })
        .collect()
}

/// A server asking for AVC420 and a client allowing it (8.1 with
/// AVC420_ENABLED): one WireToSurface1 in codec 11 a frame, its regions
/// the damaged tiles; the picture decodes within 38 dB; the codec switches
/// to planar and back.
#[cfg(feature = "h264")]
#[test]
fn avc420_frames_carry_the_damaged_regions_and_decode_to_the_pictures() {
    let mut config = plain_config();
    config.graphics_pipeline = Some(PipelineCodec::Avc420);
    let (mut harness, connected) = connect_gfx(config);
    let mut client = GfxClient::new();
    advertise(&mut harness, &connected);
    let first = desktop(0);
    send(&mut harness, &first);
    client.receive(&mut harness);
    assert_eq!(
        harness.engine.session_info().unwrap().graphics,
        Graphics::Pipeline(PipelineCodec::Avc420)
    );
    assert_eq!(count(&client, "WireToSurface1 codec 11"), 1);
    assert_eq!(count(&client, "WireToSurface1"), 1);
    let quality = psnr(&first, &client.picture());
    assert!(quality >= 38.0, "first frame {quality:.1} dB");
    acknowledge(&mut harness, &connected, 0, 0);
    // The text moves: only its tiles are regions of the next frame.
    let second = desktop(1);
    send(&mut harness, &second);
    client.pdus.clear();
    client.receive(&mut harness);
    assert_eq!(count(&client, "WireToSurface1 codec 11"), 1);
    let quality = psnr(&second, &client.picture());
    assert!(quality >= 38.0, "second frame {quality:.1} dB");
    // No change, no frame.
    acknowledge(&mut harness, &connected, 0, 1);
    send(&mut harness, &second);
    client.pdus.clear();
    client.receive(&mut harness);
    assert_eq!(count(&client, "WireToSurface1"), 0);
    // Planar and back: exact, then H.264 again from a key frame.
    harness
        .engine
        .set_graphics(Graphics::Pipeline(PipelineCodec::Planar))
        .unwrap();
    harness.drain();
    client.receive(&mut harness);
    assert!(client.picture() == second);
    acknowledge(&mut harness, &connected, 0, 2);
    harness
        .engine
        .set_graphics(Graphics::Pipeline(PipelineCodec::Avc420))
        .unwrap();
    harness.drain();
    client.pdus.clear();
    client.h264 = None;
    client.receive(&mut harness);
    assert_eq!(count(&client, "WireToSurface1 codec 11"), 1);
    assert!(psnr(&second, &client.picture()) >= 38.0);
    // One WireToSurface1 for each H.264 frame, planar tiles besides.
    assert!(harness.engine.pipeline_stats().unwrap().wire_to_surface >= 3);
}

/// A client without H.264 (8.0 only) gets planar when the server asks for
/// AVC420, and cannot be switched to it.
#[cfg(feature = "h264")]
#[test]
fn avc420_gives_way_to_planar_for_a_client_without_it() {
    let mut config = plain_config();
    config.graphics_pipeline = Some(PipelineCodec::Avc420);
    let (mut harness, connected) = connect_gfx(config);
    let mut client = GfxClient::new();
    send_graphics(
        &mut harness,
        &connected,
        &ClientPdu::CapsAdvertise(vec![CapabilitySet {
            version: version::V8,
            data: vec![0; 4],
        }]),
    );
    send(&mut harness, &picture(1));
    client.receive(&mut harness);
    assert_eq!(
        harness.engine.session_info().unwrap().graphics,
        Graphics::Pipeline(PipelineCodec::Planar)
    );
    assert!(count(&client, "codec 10") > 0);
    assert_eq!(count(&client, "codec 11"), 0);
    assert_eq!(
        harness
            .engine
            .set_graphics(Graphics::Pipeline(PipelineCodec::Avc420)),
        Err(crate::CommandError::CodecNotTaken)
    );
}

/// The application's own H.264 pictures (`Engine::send_avc420`): wrapped
/// in frames the client decodes, paced, refused while the client's
/// decoder needs a key frame, for bad regions and for clients without
/// H.264.
#[cfg(feature = "h264")]
#[test]
fn pre_encoded_avc420_frames_reach_the_client_paced() {
    use crate::{Avc420Frame, AvcRegion, CommandError};
    use rdpserve_codecs::{H264Encoder, H264Settings, I420, Image};
    use std::borrow::Cow;

    // The application's encoder: a picture of the desktop, sides rounded
    // up to 16 (the last row repeated).
    let encode = |encoder: &mut H264Encoder, pixels: &[u8]| {
        let padded_height = HEIGHT.next_multiple_of(16);
        let mut padded = pixels.to_vec();
        for _ in HEIGHT..padded_height {
            padded.extend_from_slice(&pixels[(HEIGHT - 1) * WIDTH * 4..]);
        }
        let image = Image {
            width: WIDTH,
            height: padded_height,
            stride: WIDTH * 4,
            data: &padded,
        };
        let mut picture = I420::default();
        picture
            .convert_from(&image, 0, 0, WIDTH, padded_height)
            .unwrap();
        let mut stream = Vec::new();
        encoder.encode(&picture, &mut stream).unwrap();
        stream
    };
    let whole = [AvcRegion {
        left: 0,
        top: 0,
        right: WIDTH as u16,
        bottom: HEIGHT as u16,
        qp: 22,
        quality: 57,
    }];
    let frame = |stream: &[u8], regions: &[AvcRegion]| Avc420Frame {
        stream: Cow::Owned(stream.to_vec()),
        regions: Cow::Owned(regions.to_vec()),
    };
    let mut encoder = H264Encoder::new(H264Settings::default()).unwrap();
    let key = encode(&mut encoder, &desktop(0));
    let predicted = encode(&mut encoder, &desktop(1));

    let (mut harness, connected) = connect_gfx(plain_config());
    let mut client = GfxClient::new();
    advertise(&mut harness, &connected);
    send(&mut harness, &picture(1));
    client.receive(&mut harness);
    assert_eq!(client.frames, [0], "the planar first frame");
    // The client's decoder starts with a key frame.
    assert_eq!(
        harness.engine.send_avc420(&frame(&predicted, &whole)),
        Err(CommandError::KeyFrameNeeded)
    );
    // Bad frames are refused before anything is sent.
    let mut outside = whole;
    outside[0].right = WIDTH as u16 + 1;
    assert_eq!(
        harness.engine.send_avc420(&frame(&key, &outside)),
        Err(CommandError::InvalidAvcRegion { index: 0 })
    );
    let mut bad_qp = whole;
    bad_qp[0].qp = 52;
    assert_eq!(
        harness.engine.send_avc420(&frame(&key, &bad_qp)),
        Err(CommandError::InvalidAvcRegion { index: 0 })
    );
    assert_eq!(
        harness.engine.send_avc420(&frame(&key, &[])),
        Err(CommandError::EmptyAvc420Frame)
    );
    harness.drain();
    assert!(harness.received.is_empty());
    harness.engine.send_avc420(&frame(&key, &whole)).unwrap();
    harness.drain();
    client.receive(&mut harness);
    assert_eq!(client.frames, [0, 1]);
    assert_eq!(count(&client, "WireToSurface1 codec 11"), 1);
    let quality = psnr(&desktop(0), &client.picture());
    assert!(quality >= 38.0, "key frame {quality:.1} dB");
    // Two frames await acknowledgement: a third waits (a predicted picture
    // cannot be dropped, so the application tries again).
    assert_eq!(
        harness.engine.send_avc420(&frame(&predicted, &whole)),
        Err(CommandError::FramesInFlight)
    );
    acknowledge(&mut harness, &connected, 0, 0);
    // Only the text block's rows change: one region is enough.
    let text = [AvcRegion {
        top: 64,
        bottom: 192,
        ..whole[0]
    }];
    harness
        .engine
        .send_avc420(&frame(&predicted, &text))
        .unwrap();
    harness.drain();
    client.receive(&mut harness);
    assert_eq!(client.frames, [0, 1, 2]);
    let quality = psnr(&desktop(1), &client.picture());
    assert!(quality >= 38.0, "predicted frame {quality:.1} dB");
}

/// Without H.264 in the client's capabilities, pre-encoded frames are
/// refused.
#[test]
fn pre_encoded_frames_need_a_client_with_h264() {
    use crate::{Avc420Frame, AvcRegion, CommandError};
    let (mut harness, connected) = connect_gfx(plain_config());
    send_graphics(
        &mut harness,
        &connected,
        &ClientPdu::CapsAdvertise(vec![CapabilitySet {
            version: version::V8,
            data: vec![0; 4],
        }]),
    );
    harness.drain();
    let frame = Avc420Frame {
        stream: std::borrow::Cow::Borrowed(&[0, 0, 0, 1, 0x65]),
        regions: std::borrow::Cow::Owned(vec![AvcRegion {
            left: 0,
            top: 0,
            right: 16,
            bottom: 16,
            qp: 22,
            quality: 57,
        }]),
    };
    assert_eq!(
        harness.engine.send_avc420(&frame),
        Err(CommandError::CodecNotTaken)
    );
}

/// A client preferring AVC444 (xfreerdp /gfx:AVC444's 10.7 set, flags
/// 0xC2) gets AVC444v2 when the server asks for H.264: one WireToSurface1
/// in codec 15 a frame, both views behind their length.
#[cfg(feature = "h264")]
#[test]
fn a_client_preferring_avc444_gets_both_views() {
    let mut config = plain_config();
    config.graphics_pipeline = Some(PipelineCodec::Avc420);
    let (mut harness, connected) = connect_gfx(config);
    let mut client = GfxClient::new();
    send_graphics(
        &mut harness,
        &connected,
        &ClientPdu::CapsAdvertise(vec![CapabilitySet {
            version: version::V10_7,
            data: vec![0xC2, 0, 0, 0],
        }]),
    );
    send(&mut harness, &desktop(0));
    client.receive(&mut harness);
    assert_eq!(
        harness.engine.session_info().unwrap().graphics,
        Graphics::Pipeline(PipelineCodec::Avc444)
    );
    assert_eq!(count(&client, "WireToSurface1 codec 15"), 1);
    assert_eq!(count(&client, "WireToSurface1"), 1);
}

/// A page of "text" scrolled down by `first_row` rows: lines of dark runs
/// on white, twelve rows apart, each line different from the others.
fn document(first_row: usize) -> Vec<u8> {
    let mut pixels = vec![0xFF; WIDTH * HEIGHT * 4];
    for row in 0..HEIGHT {
        let line = (row + first_row) / 12;
        if (row + first_row) % 12 >= 8 {
            continue;
        }
        for column in 0..WIDTH {
            if (column * 7 + line * 13 + (line * line) % 17) % 11 < 4 {
                let at = (row * WIDTH + column) * 4;
                pixels[at..at + 3].copy_from_slice(&[
                    (line * 3) as u8,
                    (line * 5) as u8,
                    ((row + first_row) * 7) as u8,
                ]);
            }
        }
    }
    pixels
}

/// `pixels` with rows `rows` overwritten by noise seeded with `seed`.
fn with_noise(mut pixels: Vec<u8>, rows: std::ops::Range<usize>, seed: usize) -> Vec<u8> {
    for row in rows {
        for (column, pixel) in pixels[row * WIDTH * 4..(row + 1) * WIDTH * 4]
            .chunks_exact_mut(4)
            .enumerate()
        {
            // A hash, so that no row is another row of another seed moved.
            let value = ((row * 1_000_003 + column * 7919 + seed * 104_729) as u64)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                >> 40;
            pixel[..3].copy_from_slice(&[value as u8, (value >> 8) as u8, (value >> 16) as u8]);
        }
    }
    pixels
}

/// The picture `pixels` scrolled up by `rows` rows, the exposed band at
/// the bottom filled with `fill`.
fn scrolled_up(pixels: &[u8], rows: usize, fill: u8) -> Vec<u8> {
    let mut moved = pixels[rows * WIDTH * 4..].to_vec();
    moved.resize(WIDTH * HEIGHT * 4, fill);
    moved
}

#[test]
fn a_vertical_scroll_goes_as_one_surface_copy_and_the_exposed_band() {
    let (mut harness, connected) = connect_gfx(plain_config());
    let mut client = GfxClient::new();
    advertise(&mut harness, &connected);
    send(&mut harness, &document(0));
    client.receive(&mut harness);
    assert!(client.picture() == document(0));
    acknowledge(&mut harness, &connected, 0, 0);
    let full = harness.engine.pipeline_stats().unwrap();
    // Down by 40 rows: rows 0 to 159 are copied from rows 40 to 199; the
    // tiles wholly inside (the first two bands) are not encoded.
    client.pdus.clear();
    send(&mut harness, &document(40));
    client.receive(&mut harness);
    assert!(
        client.picture() == document(40),
        "pixel-exact after the copy"
    );
    assert_eq!(count(&client, "SurfaceToSurface"), 1);
    let (source, destinations) = client.copies[0].clone();
    assert_eq!(
        (source.left, source.top, source.right, source.bottom),
        (0, 40, WIDTH as u16, HEIGHT as u16)
    );
    assert_eq!((destinations[0].x, destinations[0].y), (0, 0));
    assert_eq!(
        client.pdus.first().map(String::as_str),
        Some("SurfaceToSurface"),
        "the copy goes first in its frame"
    );
    let stats = harness.engine.pipeline_stats().unwrap();
    assert_eq!(stats.surface_to_surface, 1);
    assert_eq!(stats.tiles_copied, 10, "two bands of five tiles");
    let encoded = stats.wire_to_surface - full.wire_to_surface;
    let hits = stats.cache_hits - full.cache_hits;
    assert!(
        encoded + hits <= 10,
        "only the bands the copy did not cover: {encoded} encoded, {hits} from the cache"
    );
    acknowledge(&mut harness, &connected, 0, 1);
    // Back up by 30 rows: the content moves down.
    client.pdus.clear();
    send(&mut harness, &document(10));
    client.receive(&mut harness);
    assert!(client.picture() == document(10));
    let (source, destinations) = client.copies[1].clone();
    assert_eq!((source.top, source.bottom), (0, (HEIGHT - 30) as u16));
    assert_eq!(destinations[0].y, 30);
    acknowledge(&mut harness, &connected, 0, 2);
    // Not a scroll: another picture altogether is encoded as tiles.
    client.pdus.clear();
    send(&mut harness, &picture(5));
    client.receive(&mut harness);
    assert!(client.picture() == picture(5));
    assert_eq!(count(&client, "SurfaceToSurface"), 0);
    // Pixels in another layout than B, G, R, X are not searched: the
    // scroll is encoded as tiles, and still right.
    acknowledge(&mut harness, &connected, 0, 3);
    send(&mut harness, &document(0));
    client.receive(&mut harness);
    acknowledge(&mut harness, &connected, 0, 4);
    client.pdus.clear();
    let moved = document(50);
    let rgbx: Vec<u8> = moved
        .chunks_exact(4)
        .flat_map(|pixel| [pixel[2], pixel[1], pixel[0], 0])
        .collect();
    harness
        .engine
        .send_bitmap(&BitmapUpdate {
            format: PixelFormat::RgbX32,
            data: &rgbx,
            x: 0,
            y: 0,
            width: WIDTH as u16,
            height: HEIGHT as u16,
            stride: WIDTH * 4,
        })
        .unwrap();
    harness.drain();
    client.receive(&mut harness);
    assert!(client.picture() == moved);
    assert_eq!(count(&client, "SurfaceToSurface"), 0);
    assert_eq!(
        harness.engine.pipeline_stats().unwrap().surface_to_surface,
        2
    );
}

#[test]
fn a_scroll_never_copies_rows_the_client_does_not_show_yet() {
    let (mut harness, connected) = connect_gfx(plain_config());
    let mut client = GfxClient::new();
    advertise(&mut harness, &connected);
    // Frames 0 and 1 go unacknowledged; then frames are held back.
    send(&mut harness, &document(0));
    send(&mut harness, &with_noise(document(0), 150..190, 1));
    client.receive(&mut harness);
    assert_eq!(client.frames, [0, 1]);
    // Held: rows 150 to 189 change again, so band 2 (rows 128 to 191) is
    // due and the client still shows the noise of frame 1 there.
    let held = with_noise(document(0), 150..190, 2);
    send(&mut harness, &held);
    assert!(harness.received.is_empty(), "held back");
    // Then the whole page scrolls up by 24 rows. Rows 104 to 175 would be
    // copied from the due band: only rows 0 to 103, from rows 24 to 127,
    // are copied.
    let scrolled = scrolled_up(&held, 24, 0xFF);
    send(&mut harness, &scrolled);
    assert!(harness.received.is_empty(), "still held back");
    acknowledge(&mut harness, &connected, 0, 1);
    client.receive(&mut harness);
    assert_eq!(client.frames, [0, 1, 2]);
    assert_eq!(client.copies.len(), 1);
    let (source, destinations) = client.copies[0].clone();
    assert_eq!((source.top, source.bottom), (24, 128));
    assert_eq!(destinations[0].y, 0);
    assert!(
        client.picture() == scrolled,
        "pixel-exact: nothing stale was copied"
    );
    // A scroll whose sources are all due is encoded as tiles: frame 3 goes
    // out (two outstanding again), the next picture is held, and its scroll
    // would copy only from due rows.
    let noisy = with_noise(scrolled.clone(), 0..HEIGHT, 3);
    send(&mut harness, &noisy);
    client.receive(&mut harness);
    assert_eq!(client.frames, [0, 1, 2, 3]);
    let renoised = with_noise(scrolled.clone(), 0..HEIGHT, 4);
    send(&mut harness, &renoised);
    send(&mut harness, &scrolled_up(&renoised, 30, 0xFF));
    acknowledge(&mut harness, &connected, 0, 3);
    client.receive(&mut harness);
    assert_eq!(client.copies.len(), 1, "no copy from stale rows");
    assert!(client.picture() == scrolled_up(&renoised, 30, 0xFF));
    assert_eq!(
        harness.engine.pipeline_stats().unwrap().surface_to_surface,
        1
    );
}

#[test]
fn scrolls_while_frames_are_held_queue_in_order_within_a_bound() {
    let (mut harness, connected) = connect_gfx(plain_config());
    let mut client = GfxClient::new();
    advertise(&mut harness, &connected);
    send(&mut harness, &document(0));
    send(&mut harness, &with_noise(document(0), 0..10, 9));
    client.receive(&mut harness);
    assert_eq!(client.frames, [0, 1]);
    // Held back: the page scrolls a tile down and back, again and again.
    // Each copy reads what the client will show once the copies before it
    // ran (a tile a copy covers whole is up to date after it); past the
    // bound, tiles take over.
    for step in 1..=40 {
        send(&mut harness, &document(if step % 2 == 1 { 64 } else { 0 }));
        assert!(harness.received.is_empty());
    }
    acknowledge(&mut harness, &connected, 0, 1);
    client.receive(&mut harness);
    assert_eq!(client.frames, [0, 1, 2]);
    assert!(client.picture() == document(0), "pixel-exact");
    assert_eq!(
        count(&client, "SurfaceToSurface"),
        crate::graphics::egfx::scroll::MAX_PENDING_COPIES
    );
}

#[test]
fn a_client_that_never_acknowledges_holds_output_in_bounded_memory() {
    let (mut harness, connected) = connect_gfx(plain_config());
    let mut client = GfxClient::new();
    advertise(&mut harness, &connected);
    let mut held_after = Vec::new();
    let mut sent = 0;
    let mut last = Vec::new();
    for update in 0..1000usize {
        // Pictures, scrolls and noise in turn, all different.
        let pixels = match update % 3 {
            0 => document(update),
            1 => with_noise(document(update), 20..120, update),
            _ => picture(update as u32),
        };
        send(&mut harness, &pixels);
        last = pixels;
        sent += harness.received.len();
        client.receive(&mut harness);
        if update + 1 == 10 || update + 1 == 1000 {
            held_after.push((
                harness.engine.pending_transmit(),
                harness.engine.held_graphics_bytes(),
            ));
        }
    }
    // Two frames went out, then nothing: the latest pixels wait in the
    // shadow, one flag per tile.
    assert_eq!(client.frames, [0, 1]);
    assert!(sent > 0);
    let (after_10, after_1000) = (held_after[0], held_after[1]);
    assert_eq!(after_10.0, 0, "nothing queued for the socket");
    assert_eq!(after_1000.0, 0, "nothing queued for the socket");
    assert_eq!(
        after_10.1, after_1000.1,
        "the pipeline holds as much after 1000 updates as after 10"
    );
    println!(
        "bytes held by the pipeline: {} after 10 updates, {} after 1000",
        after_10.1, after_1000.1
    );
    // The acknowledgement releases one frame with the last picture.
    acknowledge(&mut harness, &connected, 0, 0);
    client.receive(&mut harness);
    assert_eq!(client.frames, [0, 1, 2]);
    assert!(client.picture() == last, "the latest pixels");
}

#[test]
fn with_damage_a_scroll_is_copied_only_when_the_damage_spans_the_update() {
    let (mut harness, connected) = connect_gfx(plain_config());
    let mut client = GfxClient::new();
    advertise(&mut harness, &connected);
    send(&mut harness, &document(0));
    client.receive(&mut harness);
    acknowledge(&mut harness, &connected, 0, 0);
    let send_damaged = |harness: &mut Harness, pixels: &[u8], bottom: u16| {
        let damage = [crate::Rectangle {
            left: 0,
            top: 0,
            right: WIDTH as u16,
            bottom,
        }];
        harness
            .engine
            .send_bitmap_damaged(
                &BitmapUpdate {
                    x: 0,
                    y: 0,
                    width: WIDTH as u16,
                    height: HEIGHT as u16,
                    stride: WIDTH * 4,
                    format: PixelFormat::BgrX32,
                    data: pixels,
                },
                &damage,
            )
            .unwrap();
        harness.drain();
    };
    // Damage over part of the update: the shadow takes only those tiles,
    // so no copy may draw outside them; the damaged tiles are encoded.
    send_damaged(&mut harness, &document(24), 128);
    client.receive(&mut harness);
    assert_eq!(count(&client, "SurfaceToSurface"), 0);
    let mut expected = document(0);
    expected[..WIDTH * 128 * 4].copy_from_slice(&document(24)[..WIDTH * 128 * 4]);
    assert!(client.picture() == expected);
    acknowledge(&mut harness, &connected, 0, 1);
    // Damage over all of it: the scroll is a copy.
    send_damaged(&mut harness, &document(48), HEIGHT as u16);
    client.receive(&mut harness);
    assert_eq!(count(&client, "SurfaceToSurface"), 1);
    assert!(client.picture() == document(48));
}

/// A text-like desktop (flat tiles, lines of dark strokes on a pale
/// page) with a video-like 128x64 region at (128, 64): a smooth pattern
/// moved by `frame` plus grain, hundreds of colours.
#[cfg(feature = "h264")]
fn mixed(frame: usize) -> Vec<u8> {
    (0..WIDTH * HEIGHT)
        .flat_map(|i| {
            let (x, y) = (i % WIDTH, i / WIDTH);
            if (128..256).contains(&x) && (64..128).contains(&y) {
                let grain = (x * 7919 + y * 104_729 + frame * 31) % 13;
                let wave = |scale: usize, shift: usize| {
                    let phase = (x * scale + y * (scale + 1) + frame * shift) % 256;
                    (if phase < 128 {
                        phase * 2
                    } else {
                        511 - phase * 2
                    }) as u8
                };
                return [
                    wave(2, 9).saturating_add(grain as u8),
                    wave(3, 5).saturating_add(grain as u8),
                    wave(1, 7).saturating_add(grain as u8),
                    0xFF,
                ];
            }
            if y >= 128 && x < 64 {
                return [0x30, 0x60, 0x90, 0xFF];
            }
            let ink = (y % 12) < 8 && (x % 7) < 4 && (x * 3 + y) % 5 != 0;
            if ink {
                [20, 20, 20, 0xFF]
            } else {
                [250, 250, 250, 0xFF]
            }
        })
        .collect()
}

/// The pixels of `area` (left, top, right, bottom) of a picture.
#[cfg(feature = "h264")]
fn area_of(pixels: &[u8], [left, top, right, bottom]: [usize; 4]) -> Vec<u8> {
    (top..bottom)
        .flat_map(|y| pixels[(y * WIDTH + left) * 4..(y * WIDTH + right) * 4].to_vec())
        .collect()
}

/// Whether two rectangles (left, top, right, bottom) overlap.
#[cfg(feature = "h264")]
fn overlaps(a: [usize; 4], b: [usize; 4]) -> bool {
    a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3]
}

/// Content-adaptive encoding: text and UI tiles go planar (pixel-exact,
/// into the cache), the video-like region as one AVC420 frame whose
/// regions are exactly its tiles, never cached; once the motion stops,
/// the engine's timer makes quiet frames, the lossy tiles are re-sent
/// losslessly and the client's screen ends pixel-exact; then the timer
/// stops.
#[cfg(feature = "h264")]
#[test]
fn adaptive_sends_text_lossless_video_as_avc420_and_refreshes_it_after_motion() {
    let mut config = plain_config();
    config.graphics_pipeline = Some(PipelineCodec::Adaptive);
    let (mut harness, connected) = connect_gfx(config);
    let mut client = GfxClient::new();
    advertise(&mut harness, &connected);
    assert_eq!(
        harness.engine.session_info().unwrap().graphics,
        Graphics::Pipeline(PipelineCodec::Adaptive)
    );
    const VIDEO: [usize; 4] = [128, 64, 256, 128];
    let text_areas = [
        [0, 0, WIDTH, 64],
        [0, 128, WIDTH, HEIGHT],
        [0, 64, 128, 128],
        [256, 64, WIDTH, 128],
    ];
    let mut last = Vec::new();
    for frame in 0..5 {
        let pixels = mixed(frame);
        client.pdus.clear();
        send(&mut harness, &pixels);
        client.receive(&mut harness);
        assert_eq!(
            count(&client, "WireToSurface1 codec 11"),
            1,
            "frame {frame}"
        );
        assert_eq!(
            client.regions,
            vec![VIDEO],
            "frame {frame}: the video's tiles"
        );
        if frame == 0 {
            assert!(count(&client, "WireToSurface1 codec 10") > 0);
            assert!(count(&client, "SolidFill") > 0);
        } else {
            // The text did not change: only the video goes.
            assert_eq!(count(&client, "WireToSurface1"), 1, "frame {frame}");
        }
        let screen = client.picture();
        for area in text_areas {
            assert!(
                area_of(&screen, area) == area_of(&pixels, area),
                "frame {frame}: text area {area:?} exact"
            );
        }
        let quality = psnr(&area_of(&pixels, VIDEO), &area_of(&screen, VIDEO));
        assert!(quality >= 30.0, "frame {frame}: video {quality:.1} dB");
        assert!(
            screen != pixels,
            "frame {frame}: the video is lossy, so not exact yet"
        );
        acknowledge(&mut harness, &connected, 0, *client.frames.last().unwrap());
        last = pixels;
    }
    // Motion stops: the timer makes quiet frames until the refresh went.
    client.pdus.clear();
    let mut ticks = 0;
    while let Some((at, why)) = harness.engine.poll_timeout() {
        if why != "lossless refresh frame" {
            break;
        }
        ticks += 1;
        assert!(ticks <= 5, "the refresh timer stops");
        assert!(at >= harness.now, "no busy loop: the tick is ahead");
        harness.now = at;
        harness.engine.handle_timeout(at);
        harness.drain();
        client.receive(&mut harness);
        acknowledge(&mut harness, &connected, 0, *client.frames.last().unwrap());
    }
    assert!(ticks >= 2, "two quiet frames before the refresh");
    assert_eq!(count(&client, "WireToSurface1 codec 11"), 0);
    assert_eq!(
        count(&client, "WireToSurface1 codec 10"),
        2,
        "the two video tiles"
    );
    assert!(client.picture() == last, "pixel-exact after the refresh");
    let stats = harness.engine.pipeline_stats().unwrap();
    assert_eq!(stats.tiles_lossy, 10);
    assert_eq!(stats.tiles_refreshed, 2);
    // No lossy tile ever entered the cache; the refreshed ones did.
    assert!(!client.cached.is_empty());
    let refreshed = client
        .cached
        .iter()
        .filter(|area| overlaps(**area, VIDEO))
        .count();
    assert_eq!(
        refreshed, 2,
        "only the lossless refreshes of the video tiles"
    );
}

/// Content-adaptive encoding under a scroll: a copy whose source holds
/// lossy (H.264) pixels carries them along, so the tiles it draws them
/// into are re-sent planar in the same frame, and the client's screen is
/// pixel-exact at once (the band's own tiles, now text, went planar).
#[cfg(feature = "h264")]
#[test]
fn adaptive_copies_from_lossy_pixels_are_resent_losslessly() {
    let mut config = plain_config();
    config.graphics_pipeline = Some(PipelineCodec::Adaptive);
    let (mut harness, connected) = connect_gfx(config);
    let mut client = GfxClient::new();
    advertise(&mut harness, &connected);
    // A photo-like band in tile row 1, under text.
    let first = with_noise(document(0), 64..128, 1);
    send(&mut harness, &first);
    client.receive(&mut harness);
    assert_eq!(count(&client, "WireToSurface1 codec 11"), 1);
    assert!(
        client
            .regions
            .iter()
            .all(|region| region[1] == 64 && region[3] == 128)
    );
    acknowledge(&mut harness, &connected, 0, *client.frames.last().unwrap());
    // Down by 40 rows: the band moves to rows 24 to 87.
    client.pdus.clear();
    let second = scrolled_up(&first, 40, 0xFF);
    send(&mut harness, &second);
    client.receive(&mut harness);
    assert_eq!(count(&client, "SurfaceToSurface"), 1);
    assert_eq!(count(&client, "WireToSurface1 codec 11"), 0);
    assert!(
        client.picture() == second,
        "the band's lossy pixels, copied, were replaced losslessly"
    );
    // The rows the band left (tile row 1 below 88) came from text, and
    // the copy's destination tiles 0 and 1 went planar: ten tiles at least.
    assert!(count(&client, "WireToSurface1 codec 10") >= 10);
}
