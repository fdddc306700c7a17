//! Graphics over bitmap updates (MS-RDPBCGR 2.2.9.1.1.3.1.2): changed tiles
//! encoded as RDP 6.0 planar, interleaved RLE at the client's depth, or
//! uncompressed, and grouped into TS_UPDATE_BITMAP_DATA PDUs within the
//! client's reassembly limit.

use rdpserve_codecs::ColorDepth;
use rdpserve_codecs::damage::TileRect;

use crate::api::config::BitmapCompression;
use crate::api::error::{EncodeError, Error};
use crate::graphics::bitmap::{self, BITMAP_DATA_HEADER_LEN, BITMAP_UPDATE_HEADER_LEN, BitmapData};
use crate::graphics::fastpath::{self, MAX_FAST_PATH_PDU, UpdateCode};
use crate::transport::Transport;

/// Encoded PDUs gathered before they go to the transport.
const FLUSH_BYTES: usize = 64 * 1024;

/// The largest scratch buffer kept from one update to the next.
const KEEP_SCRATCH: usize = 256 * 1024;

/// Side of the square tiles a large update is cut into.
const TILE_SIZE: u16 = 64;

/// One encoded tile: where it goes and where its bytes are in the buffer.
#[derive(Debug)]
struct EncodedTile {
    x: u16,
    y: u16,
    width: u16,
    /// The encoded bitmap's width (at least `width`).
    bitmap_width: u16,
    height: u16,
    range: std::ops::Range<usize>,
}

/// A session's bitmap update path, with its reused buffers.
#[derive(Debug)]
pub(crate) struct BitmapOutput {
    compression: BitmapCompression,
    /// Planar bitmaps carry an alpha plane: the client did not allow
    /// skipping it (DRAW_ALLOW_SKIP_ALPHA clear, as rdesktop 1.9 and
    /// FreeRDP 2 leave it).
    planar_alpha: bool,
    /// The session's colour depth: 32 (planar or uncompressed) or 15, 16
    /// and 24 (interleaved RLE at that depth).
    color_depth: u16,
    /// Largest update payload the client reassembles.
    update_budget: usize,
    /// Encoded tiles back to back, and where each is.
    tile: Vec<u8>,
    tiles: Vec<EncodedTile>,
    /// Planar scratch planes and interleaved converted pixels.
    planes: Vec<u8>,
    converted: Vec<u32>,
    /// One update's payload.
    payload: Vec<u8>,
}

impl BitmapOutput {
    pub fn new(
        compression: BitmapCompression,
        planar_alpha: bool,
        color_depth: u16,
        update_budget: usize,
    ) -> Self {
        Self {
            compression,
            planar_alpha,
            color_depth,
            update_budget,
            tile: Vec::new(),
            tiles: Vec::new(),
            planes: Vec::new(),
            converted: Vec::new(),
            payload: Vec::new(),
        }
    }

    /// Tiles on a grid aligned to the desktop, so repeated updates of the
    /// same area compare like with like: square unless the budget is small.
    pub fn tile_size(&self) -> usize {
        usize::from(tile_height_for_budget(self.update_budget))
    }

    /// Encodes the `changed` tiles of `source` (the shadow, which holds
    /// their latest pixels) and sends them as bitmap updates.
    pub fn send(
        &mut self,
        source: &rdpserve_codecs::Image<'_>,
        changed: &[TileRect],
        transport: &mut Transport,
        wire: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let depth = match self.color_depth {
            15 => Some(ColorDepth::Bpp15),
            16 => Some(ColorDepth::Bpp16),
            24 => Some(ColorDepth::Bpp24),
            _ => None,
        };
        // Tiles are encoded one by one into `self.tile` and go out in
        // updates as soon as the next one would overflow the budget, so the
        // scratch holds one update's tiles, never a whole frame's.
        self.tile.clear();
        self.tiles.clear();
        wire.clear();
        let mut group_bytes = BITMAP_UPDATE_HEADER_LEN;
        for changed in changed {
            let start = self.tile.len();
            let (x, y) = (changed.x, changed.y);
            let (codec, encoded) = match (depth, self.compression) {
                (Some(depth), _) => (
                    "interleaved",
                    rdpserve_codecs::encode_interleaved(
                        source,
                        x,
                        y,
                        changed.width,
                        changed.height,
                        depth,
                        &mut self.converted,
                        &mut self.tile,
                    ),
                ),
                (None, BitmapCompression::Planar) if self.planar_alpha => (
                    "planar",
                    rdpserve_codecs::encode_planar_with_alpha(
                        source,
                        x,
                        y,
                        changed.width,
                        changed.height,
                        &mut self.planes,
                        &mut self.tile,
                    ),
                ),
                (None, BitmapCompression::Planar) => (
                    "planar",
                    rdpserve_codecs::encode_planar(
                        source,
                        x,
                        y,
                        changed.width,
                        changed.height,
                        &mut self.planes,
                        &mut self.tile,
                    ),
                ),
                (None, BitmapCompression::None) => (
                    "uncompressed",
                    rdpserve_codecs::encode_uncompressed_32(
                        source,
                        x,
                        y,
                        changed.width,
                        changed.height,
                        &mut self.tile,
                    ),
                ),
            };
            encoded.map_err(|_| {
                Error::Encode(EncodeError {
                    codec,
                    reason: "tile outside the shadow framebuffer",
                })
            })?;
            // INVARIANT: tiles lie within the desktop, whose sides are at most 8192.
            // Interleaved bitmaps are padded to four pixels; the client clips
            // them to the destination rectangle.
            let bitmap_width = match depth {
                Some(_) => rdpserve_codecs::padded_width(changed.width),
                None => changed.width,
            };
            let tile = EncodedTile {
                x: changed.x as u16,
                y: changed.y as u16,
                width: changed.width as u16,
                bitmap_width: bitmap_width as u16,
                height: changed.height as u16,
                range: start..self.tile.len(),
            };
            let size = BITMAP_DATA_HEADER_LEN + tile.range.len();
            if group_bytes + size > self.update_budget && !self.tiles.is_empty() {
                // The tiles before this one make an update; this one starts
                // the next, moved to the front of the scratch.
                self.flush_group(transport, wire)?;
                self.tile.copy_within(tile.range.clone(), 0);
                self.tile.truncate(tile.range.len());
                group_bytes = BITMAP_UPDATE_HEADER_LEN;
                self.tiles.push(EncodedTile {
                    range: 0..self.tile.len(),
                    ..tile
                });
            } else {
                self.tiles.push(tile);
            }
            group_bytes += size;
        }
        if !self.tiles.is_empty() {
            self.flush_group(transport, wire)?;
        }
        if !wire.is_empty() {
            transport.send(wire)?;
            wire.clear();
        }
        // A client with a large reassembly limit takes a whole frame in one
        // update, which these buffers then held (megabytes each) for the
        // rest of the session; give such a frame's memory back.
        for buffer in [&mut self.tile, &mut self.payload, wire] {
            if buffer.capacity() > KEEP_SCRATCH {
                *buffer = Vec::new();
            }
        }
        Ok(())
    }

    /// Encodes the tiles gathered in `self.tiles` as one bitmap update into
    /// `wire`, handing `wire` to the transport once it holds a flush's
    /// worth, and forgets the gathered tiles (their bytes stay in
    /// `self.tile` for the caller to drop or move).
    fn flush_group(&mut self, transport: &mut Transport, wire: &mut Vec<u8>) -> Result<(), Error> {
        let compressed = self.compression == BitmapCompression::Planar || self.color_depth != 32;
        let bits_per_pixel = self.color_depth;
        let rects: Vec<BitmapData<'_>> = self
            .tiles
            .iter()
            .map(|tile| BitmapData {
                dest_left: tile.x,
                dest_top: tile.y,
                dest_right: tile.x + tile.width - 1,
                dest_bottom: tile.y + tile.height - 1,
                width: tile.bitmap_width,
                height: tile.height,
                bits_per_pixel,
                compressed,
                data: &self.tile[tile.range.clone()],
            })
            .collect();
        self.payload.clear();
        bitmap::encode_bitmap_update(&mut self.payload, &rects);
        fastpath::encode_update(wire, UpdateCode::Bitmap, &self.payload, MAX_FAST_PATH_PDU);
        self.tiles.clear();
        // Hand the PDUs over as they fill a flush's worth, so this scratch
        // stays small instead of holding a whole frame beside the
        // transport's copy.
        if wire.len() >= FLUSH_BYTES {
            transport.send(wire)?;
            wire.clear();
        }
        Ok(())
    }
}

/// The tallest tile of full width that fits one update of `budget` bytes.
fn tile_height_for_budget(budget: usize) -> u16 {
    let row = usize::from(TILE_SIZE) * 4;
    let rows = budget.saturating_sub(BITMAP_DATA_HEADER_LEN + BITMAP_UPDATE_HEADER_LEN) / row;
    rows.clamp(1, usize::from(TILE_SIZE)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graphics::fastpath::UNFRAGMENTED_UPDATE_BUDGET;

    /// Bytes one uncompressed 32-bpp tile takes in a bitmap update (rows of
    /// 32-bpp pixels are always 4-byte aligned, so there is no padding).
    fn encoded_tile_size(width: u16, height: u16) -> usize {
        BITMAP_DATA_HEADER_LEN + usize::from(width) * usize::from(height) * 4
    }

    #[test]
    fn tiles_fit_the_unfragmented_budget() {
        let height = tile_height_for_budget(UNFRAGMENTED_UPDATE_BUDGET);
        assert!(height < TILE_SIZE);
        assert!(
            encoded_tile_size(TILE_SIZE, height) + BITMAP_UPDATE_HEADER_LEN
                <= UNFRAGMENTED_UPDATE_BUDGET
        );
        assert_eq!(tile_height_for_budget(1 << 20), TILE_SIZE);
    }
}
