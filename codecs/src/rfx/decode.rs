//! A RemoteFX decoder for tests: it parses every message the encoder
//! writes, checks every length and field, and never panics on bad input.

use super::message::*;
use super::{MAX_SIZE, RfxQuant, RfxRect, RlgrMode, TILE_SIZE, color, dwt, quant, rlgr};

/// One decoded frame: B, G, R, 0xFF pixels, rows top to bottom, with the
/// pixels outside the frame's rects left at zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRfx {
    pub width: usize,
    pub height: usize,
    pub frame_index: u32,
    pub rects: Vec<RfxRect>,
    pub pixels: Vec<u8>,
}

/// Why a RemoteFX message does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RfxDecodeError(pub &'static str);

impl std::fmt::Display for RfxDecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for RfxDecodeError {}

/// Reads little-endian fields, failing at the end of the data.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], RfxDecodeError> {
        let (head, tail) = self
            .0
            .split_at_checked(count)
            .ok_or(RfxDecodeError("message ends early"))?;
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, RfxDecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, RfxDecodeError> {
        let bytes = self.take(2)?;
        Ok(u16::from_le_bytes([bytes[0], bytes[1]]))
    }

    fn u32(&mut self) -> Result<u32, RfxDecodeError> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn expect_u8(&mut self, want: u8, error: &'static str) -> Result<(), RfxDecodeError> {
        check(self.u8()? == want, error)
    }

    fn expect_u16(&mut self, want: u16, error: &'static str) -> Result<(), RfxDecodeError> {
        check(self.u16()? == want, error)
    }

    fn finish(&self) -> Result<(), RfxDecodeError> {
        check(self.0.is_empty(), "block longer than its fields")
    }
}

fn check(condition: bool, error: &'static str) -> Result<(), RfxDecodeError> {
    if condition {
        Ok(())
    } else {
        Err(RfxDecodeError(error))
    }
}

/// What the header messages set up.
#[derive(Default)]
struct Stream {
    synced: bool,
    versions: bool,
    size: Option<(usize, usize)>,
    mode: Option<RlgrMode>,
}

/// Decodes a RemoteFX stream of header messages and exactly one frame.
pub fn decode_rfx_message(data: &[u8]) -> Result<DecodedRfx, RfxDecodeError> {
    let mut reader = Reader(data);
    let mut stream = Stream::default();
    let mut frame: Option<DecodedRfx> = None;
    let mut tileset_seen = false;
    loop {
        let block_type = reader.u16()?;
        let length = reader.u32()? as usize;
        let body_length = length
            .checked_sub(BLOCK_HEADER)
            .ok_or(RfxDecodeError("block shorter than its header"))?;
        let mut body = Reader(reader.take(body_length)?);
        check(
            stream.synced || block_type == WBT_SYNC,
            "stream does not start with sync",
        )?;
        match block_type {
            WBT_SYNC => {
                check(body.u32()? == WF_MAGIC, "bad sync magic")?;
                body.expect_u16(WF_VERSION_1_0, "bad sync version")?;
                stream.synced = true;
            }
            WBT_CODEC_VERSIONS => {
                body.expect_u8(1, "expected one codec")?;
                body.expect_u8(CODEC_ID, "bad codec id")?;
                body.expect_u16(WF_VERSION_1_0, "bad codec version")?;
                stream.versions = true;
            }
            WBT_CHANNELS => {
                body.expect_u8(1, "expected one channel")?;
                body.expect_u8(CHANNEL_ID, "bad channel id")?;
                let width = usize::from(body.u16()?);
                let height = usize::from(body.u16()?);
                let sizes = 1..=MAX_SIZE;
                check(
                    sizes.contains(&width) && sizes.contains(&height),
                    "channel size out of range",
                )?;
                stream.size = Some((width, height));
            }
            WBT_CONTEXT => {
                body.expect_u8(CODEC_ID, "bad codec id")?;
                body.expect_u8(CONTEXT_CHANNEL_ID, "bad context channel id")?;
                body.expect_u8(0, "bad context id")?;
                body.expect_u16(TILE_SIZE_FIELD, "bad tile size")?;
                let properties = body.u16()?;
                let mode = [RlgrMode::Rlgr1, RlgrMode::Rlgr3]
                    .into_iter()
                    .find(|&mode| context_properties(mode) == properties)
                    .ok_or(RfxDecodeError("unsupported context properties"))?;
                stream.mode = Some(mode);
            }
            WBT_FRAME_BEGIN => {
                check(frame.is_none(), "second frame")?;
                check(stream.versions, "no codec versions before the frame")?;
                let (width, height) = stream.size.ok_or(RfxDecodeError("no channel"))?;
                check(stream.mode.is_some(), "no context before the frame")?;
                body.expect_u8(CODEC_ID, "bad codec id")?;
                body.expect_u8(CHANNEL_ID, "bad channel id")?;
                let frame_index = body.u32()?;
                body.expect_u16(1, "expected one region")?;
                frame = Some(DecodedRfx {
                    width,
                    height,
                    frame_index,
                    rects: Vec::new(),
                    pixels: vec![0; width * height * 4],
                });
            }
            WBT_REGION => {
                let frame = frame
                    .as_mut()
                    .ok_or(RfxDecodeError("region outside a frame"))?;
                check(frame.rects.is_empty() && !tileset_seen, "second region")?;
                body.expect_u8(CODEC_ID, "bad codec id")?;
                body.expect_u8(CHANNEL_ID, "bad channel id")?;
                check(body.u8()? & 1 == 1, "region flags without lrf")?;
                let count = body.u16()?;
                for _ in 0..count {
                    let rect = RfxRect {
                        x: body.u16()?,
                        y: body.u16()?,
                        width: body.u16()?,
                        height: body.u16()?,
                    };
                    check(
                        usize::from(rect.x) + usize::from(rect.width) <= frame.width
                            && usize::from(rect.y) + usize::from(rect.height) <= frame.height,
                        "rect outside the channel",
                    )?;
                    frame.rects.push(rect);
                }
                body.expect_u16(CBT_REGION, "bad region type")?;
                body.expect_u16(1, "expected one tileset")?;
            }
            WBT_EXTENSION => {
                let frame = frame
                    .as_mut()
                    .ok_or(RfxDecodeError("tileset outside a frame"))?;
                check(!tileset_seen, "second tileset")?;
                // INVARIANT: a frame begins only after a context.
                let mode = stream.mode.ok_or(RfxDecodeError("no context"))?;
                decode_tileset(&mut body, mode, frame)?;
                tileset_seen = true;
            }
            WBT_FRAME_END => {
                body.expect_u8(CODEC_ID, "bad codec id")?;
                body.expect_u8(CHANNEL_ID, "bad channel id")?;
                body.finish()?;
                check(tileset_seen, "frame without a tileset")?;
                reader.finish()?;
                return frame.ok_or(RfxDecodeError("frame end without a beginning"));
            }
            _ => return Err(RfxDecodeError("unknown block type")),
        }
        body.finish()?;
    }
}

fn decode_tileset(
    body: &mut Reader<'_>,
    mode: RlgrMode,
    frame: &mut DecodedRfx,
) -> Result<(), RfxDecodeError> {
    body.expect_u8(CODEC_ID, "bad codec id")?;
    body.expect_u8(CHANNEL_ID, "bad channel id")?;
    body.expect_u16(CBT_TILESET, "bad tileset subtype")?;
    body.expect_u16(0, "bad tileset context index")?;
    check(
        body.u16()? == tileset_properties(mode),
        "tileset properties differ from the context",
    )?;
    let quant_count = usize::from(body.u8()?);
    check(quant_count > 0, "no quant table")?;
    body.expect_u8(TILE_SIZE_FIELD as u8, "bad tile size")?;
    let tile_count = body.u16()?;
    let tiles_size = body.u32()? as usize;
    let mut tables = Vec::with_capacity(quant_count);
    for _ in 0..quant_count {
        let bytes = body.take(QUANT_SIZE)?;
        let table = RfxQuant::from_bytes([bytes[0], bytes[1], bytes[2], bytes[3], bytes[4]]);
        check(table.is_valid(), "quant value out of range")?;
        tables.push(table);
    }
    check(
        body.0.len() == tiles_size,
        "tiles size does not match the block",
    )?;
    let mut coefficients = [0i32; dwt::COEFFICIENTS];
    let mut tile_pixels = vec![0u8; TILE_SIZE * TILE_SIZE * 4];
    for _ in 0..tile_count {
        body.expect_u16(CBT_TILE, "bad tile block type")?;
        let length = body.u32()? as usize;
        let mut tile = Reader(
            body.take(
                length
                    .checked_sub(BLOCK_HEADER)
                    .ok_or(RfxDecodeError("tile shorter than its header"))?,
            )?,
        );
        let mut table_of = || -> Result<&RfxQuant, RfxDecodeError> {
            tables
                .get(usize::from(tile.u8()?))
                .ok_or(RfxDecodeError("quant index out of range"))
        };
        let component_tables = [table_of()?, table_of()?, table_of()?];
        let column = usize::from(tile.u16()?);
        let row = usize::from(tile.u16()?);
        check(
            column * TILE_SIZE < frame.width && row * TILE_SIZE < frame.height,
            "tile outside the channel",
        )?;
        let lengths = [tile.u16()?, tile.u16()?, tile.u16()?];
        let mut planes = Vec::with_capacity(3);
        for (table, length) in component_tables.into_iter().zip(lengths) {
            let data = tile.take(usize::from(length))?;
            rlgr::decode(mode, data, &mut coefficients).map_err(|error| RfxDecodeError(error.0))?;
            let mut values = quant::dequantize(&coefficients, table);
            dwt::inverse(&mut values);
            planes.push(values);
        }
        tile.finish()?;
        for (index, pixel) in tile_pixels.chunks_exact_mut(4).enumerate() {
            let [b, g, r] = color::to_bgr(planes[0][index], planes[1][index], planes[2][index]);
            pixel.copy_from_slice(&[b, g, r, 0xFF]);
        }
        place_tile(frame, column * TILE_SIZE, row * TILE_SIZE, &tile_pixels);
    }
    Ok(())
}

/// Copies the parts of a decoded tile that lie inside the frame's rects.
fn place_tile(frame: &mut DecodedRfx, left: usize, top: usize, tile: &[u8]) {
    for rect in &frame.rects {
        let x0 = usize::from(rect.x).max(left);
        let y0 = usize::from(rect.y).max(top);
        let x1 = (usize::from(rect.x) + usize::from(rect.width)).min(left + TILE_SIZE);
        let y1 = (usize::from(rect.y) + usize::from(rect.height)).min(top + TILE_SIZE);
        for y in y0..y1 {
            if x0 >= x1 {
                break;
            }
            let source = ((y - top) * TILE_SIZE + x0 - left) * 4;
            let target = (y * frame.width + x0) * 4;
            let count = (x1 - x0) * 4;
            frame.pixels[target..target + count].copy_from_slice(&tile[source..source + count]);
        }
    }
}

/// Peak signal-to-noise ratio in dB over the B, G and R bytes of two
/// equally long BGRX buffers (the fourth byte is ignored); infinite when
/// they are equal, `None` when their lengths differ or are not whole
/// pixels.
pub fn psnr(a: &[u8], b: &[u8]) -> Option<f64> {
    if a.len() != b.len() || a.len() % 4 != 0 || a.is_empty() {
        return None;
    }
    let mut squares = 0u64;
    for (x, y) in a.chunks_exact(4).zip(b.chunks_exact(4)) {
        for channel in 0..3 {
            let difference = i64::from(x[channel]) - i64::from(y[channel]);
            squares += (difference * difference) as u64;
        }
    }
    if squares == 0 {
        return Some(f64::INFINITY);
    }
    let mean = squares as f64 / (a.len() / 4 * 3) as f64;
    Some(10.0 * (255.0 * 255.0 / mean).log10())
}
