//! RemoteFX encoding, MS-RDPRFX: the codec steps of section 3.1.8.1 and the
//! [encode messages](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdprfx/edd6c368-4f39-420a-bf14-a0e83c654ab7)
//! of 2.2.2, as the
//! [annotated example](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdprfx/1e0cad4d-b60e-4152-9fd7-48755a2ecd3f)
//! (4.2.3) shows them.
//!
//! The picture is cut into 64x64 tiles on a grid fixed to the image's
//! origin, as the codec requires. Each tile is converted to YCbCr
//! ([`color`]), wavelet transformed ([`dwt`]), quantized ([`quant`]) and
//! entropy coded ([`rlgr`]); [`message`] frames the tiles into the encode
//! messages a client decodes. With the `rayon` feature, tiles are encoded
//! in parallel; the bytes are the same either way.

mod color;
mod decode;
mod dwt;
mod message;
mod quant;
mod rlgr;
#[cfg(test)]
mod tests;

pub use decode::{DecodedRfx, RfxDecodeError, decode_rfx_message, psnr};

use crate::{EncodeError, Image};
use color::Planes;
use dwt::{COEFFICIENTS, DwtScratch};
use message::TILE_HEADER;

/// Tiles are always 64x64 pixels.
const TILE_SIZE: usize = 64;
/// TS_RFX_CHANNELT limits a channel to 4096x4096.
const MAX_SIZE: usize = 4096;

/// The entropy coder, as the client chose in its TS_RFX_CAPSET
/// (2.2.1.1.1.1.1, entropyBits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RlgrMode {
    Rlgr1,
    Rlgr3,
}

/// A quant table, TS_RFX_CODEC_QUANT (2.2.2.1.5): per sub-band, the
/// power of two (plus one) that coefficients are divided by. Higher is
/// coarser; each value must lie in 6..=15.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RfxQuant {
    pub ll3: u8,
    pub lh3: u8,
    pub hl3: u8,
    pub hh3: u8,
    pub lh2: u8,
    pub hl2: u8,
    pub hh2: u8,
    pub lh1: u8,
    pub hl1: u8,
    pub hh1: u8,
}

impl Default for RfxQuant {
    /// The table most encoders use (and the spec's example in 4.2.3):
    /// fine for the low bands, coarser for the first level's detail.
    fn default() -> Self {
        Self {
            ll3: 6,
            lh3: 6,
            hl3: 6,
            hh3: 6,
            lh2: 7,
            hl2: 7,
            hh2: 8,
            lh1: 8,
            hl1: 8,
            hh1: 9,
        }
    }
}

impl RfxQuant {
    fn values(&self) -> [u8; 10] {
        [
            self.ll3, self.lh3, self.hl3, self.hh3, self.lh2, self.hl2, self.hh2, self.lh1,
            self.hl1, self.hh1,
        ]
    }

    /// Whether every value lies in the range 2.2.2.1.5 allows.
    pub fn is_valid(&self) -> bool {
        self.values().iter().all(|value| (6..=15).contains(value))
    }

    #[cfg(test)]
    fn uniform(value: u8) -> Self {
        Self {
            ll3: value,
            lh3: value,
            hl3: value,
            hh3: value,
            lh2: value,
            hl2: value,
            hh2: value,
            lh1: value,
            hl1: value,
            hh1: value,
        }
    }
}

/// A rectangle of the frame that changed, TS_RFX_RECT (2.2.2.1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RfxRect {
    pub x: u16,
    pub y: u16,
    pub width: u16,
    pub height: u16,
}

/// Per-tile working memory, reused from tile to tile.
struct TileScratch {
    planes: Box<Planes>,
    transform: Box<DwtScratch>,
    quantized: Box<[i16; COEFFICIENTS]>,
}

impl TileScratch {
    fn new() -> Self {
        Self {
            planes: Box::new([[0; COEFFICIENTS]; 3]),
            transform: Box::new(DwtScratch::new()),
            quantized: Box::new([0; COEFFICIENTS]),
        }
    }
}

/// A RemoteFX encoder for one stream: its settings, the frame counter, and
/// buffers reused from frame to frame (no allocation per tile once they
/// have grown to the largest frame).
pub struct RfxEncoder {
    quant: RfxQuant,
    mode: RlgrMode,
    frame_index: u32,
    /// Which tiles of the grid the current frame's rects touch.
    marks: Vec<bool>,
    /// The touched tiles' (x, y) indices, row by row.
    tiles: Vec<(u16, u16)>,
    /// Each touched tile's TS_RFX_TILE block.
    encoded: Vec<Vec<u8>>,
    scratch: TileScratch,
}

impl RfxEncoder {
    /// An encoder with one quant table for Y, Cb and Cr.
    pub fn new(quant: RfxQuant, mode: RlgrMode) -> Result<Self, EncodeError> {
        if !quant.is_valid() {
            return Err(EncodeError::Unsupported);
        }
        Ok(Self {
            quant,
            mode,
            frame_index: 0,
            marks: Vec::new(),
            tiles: Vec::new(),
            encoded: Vec::new(),
            scratch: TileScratch::new(),
        })
    }

    /// The frameIdx the next frame will carry.
    pub fn frame_index(&self) -> u32 {
        self.frame_index
    }

    /// Appends one frame to `out`: TS_RFX_FRAME_BEGIN, a TS_RFX_REGION of
    /// `rects`, a TS_RFX_TILESET of every tile the rects touch, and
    /// TS_RFX_FRAME_END. With `include_headers`, the header messages
    /// (TS_RFX_SYNC, TS_RFX_CODEC_VERSIONS, TS_RFX_CHANNELS with the image's
    /// size, TS_RFX_CONTEXT) come first, as a stream's first frame needs.
    ///
    /// The image must be 1 to 4096 pixels each way and the rects inside it.
    pub fn encode_frame(
        &mut self,
        image: &Image<'_>,
        rects: &[RfxRect],
        include_headers: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let sizes = 1..=MAX_SIZE;
        if !sizes.contains(&image.width) || !sizes.contains(&image.height) {
            return Err(EncodeError::Unsupported);
        }
        image.check_rect(0, 0, image.width, image.height)?;
        for rect in rects {
            let [x, y, width, height] = [rect.x, rect.y, rect.width, rect.height].map(usize::from);
            image.check_rect(x, y, width, height)?;
        }
        // The region's length field is 32 bits, but numRects is 16.
        let rect_count = u16::try_from(rects.len()).map_err(|_| EncodeError::Unsupported)?;
        self.find_tiles(image, rects);
        if self.encoded.len() < self.tiles.len() {
            self.encoded.resize_with(self.tiles.len(), Vec::new);
        }
        self.encode_tiles(image)?;

        let encoded = &self.encoded[..self.tiles.len()];
        let tiles_size: usize = encoded.iter().map(Vec::len).sum();
        let tileset_length = message::TILESET_HEADER + message::QUANT_SIZE + tiles_size;
        let tileset_length = u32::try_from(tileset_length).map_err(|_| EncodeError::Unsupported)?;
        // INVARIANT: at most 64 x 64 tiles in a 4096x4096 image.
        let tile_count = self.tiles.len() as u16;
        debug_assert_eq!(usize::from(rect_count), rects.len());

        out.reserve(tileset_length as usize + 128 + rects.len() * 8);
        if include_headers {
            // INVARIANT: the sizes were checked to lie within 1..=4096.
            message::write_headers(out, image.width as u16, image.height as u16, self.mode);
        }
        message::write_frame_begin(out, self.frame_index);
        message::write_region(out, rects);
        message::write_tileset_header(
            out,
            self.mode,
            &self.quant,
            tile_count,
            // INVARIANT: smaller than the tileset's length, which fits.
            tiles_size as u32,
            tileset_length,
        );
        for tile in encoded {
            out.extend_from_slice(tile);
        }
        message::write_frame_end(out);
        self.frame_index = self.frame_index.wrapping_add(1);
        Ok(())
    }

    /// Lists, row by row, the tiles any of `rects` touches.
    fn find_tiles(&mut self, image: &Image<'_>, rects: &[RfxRect]) {
        let columns = image.width.div_ceil(TILE_SIZE);
        let rows = image.height.div_ceil(TILE_SIZE);
        self.marks.clear();
        self.marks.resize(columns * rows, false);
        for rect in rects
            .iter()
            .filter(|rect| rect.width > 0 && rect.height > 0)
        {
            let (x, y) = (usize::from(rect.x), usize::from(rect.y));
            let right = (x + usize::from(rect.width) - 1) / TILE_SIZE;
            let bottom = (y + usize::from(rect.height) - 1) / TILE_SIZE;
            for row in y / TILE_SIZE..=bottom {
                self.marks[row * columns + x / TILE_SIZE..=row * columns + right].fill(true);
            }
        }
        self.tiles.clear();
        for (index, _) in self.marks.iter().enumerate().filter(|(_, marked)| **marked) {
            // INVARIANT: fewer than 64 tiles each way.
            self.tiles
                .push(((index % columns) as u16, (index / columns) as u16));
        }
    }

    fn encode_tiles(&mut self, image: &Image<'_>) -> Result<(), EncodeError> {
        // One thread (a one-thread pool, or no rayon) works in order with
        // the encoder's own scratch.
        #[cfg(feature = "rayon")]
        if rayon::current_num_threads() > 1 {
            return self.encode_tiles_in_parallel(image);
        }
        for (&tile, out) in self.tiles.iter().zip(&mut self.encoded) {
            encode_tile(image, tile, &self.quant, self.mode, &mut self.scratch, out)?;
        }
        Ok(())
    }

    #[cfg(feature = "rayon")]
    fn encode_tiles_in_parallel(&mut self, image: &Image<'_>) -> Result<(), EncodeError> {
        use rayon::prelude::*;
        let (quant, mode) = (&self.quant, self.mode);
        self.tiles
            .par_iter()
            .zip(&mut self.encoded)
            // Batches of tiles per job, so scratch is made a few times per
            // frame rather than once per tile.
            .with_min_len(8)
            .try_for_each_init(TileScratch::new, |scratch, (&tile, out)| {
                encode_tile(image, tile, quant, mode, scratch, out)
            })
    }
}

/// Encodes one TS_RFX_TILE (2.2.2.3.4.1) into `out`, replacing its contents.
fn encode_tile(
    image: &Image<'_>,
    (column, row): (u16, u16),
    quant: &RfxQuant,
    mode: RlgrMode,
    scratch: &mut TileScratch,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    out.clear();
    out.resize(TILE_HEADER, 0);
    let (left, top) = (
        usize::from(column) * TILE_SIZE,
        usize::from(row) * TILE_SIZE,
    );
    color::load_tile(image, left, top, &mut scratch.planes);
    let mut lengths = [0u16; 3];
    for (plane, length) in scratch.planes.iter().zip(&mut lengths) {
        // The transform hands its sub-bands straight to quantization.
        let mut quantizer = quant::Quantizer::new(quant, &mut scratch.quantized);
        dwt::forward(plane, &mut scratch.transform, &mut quantizer);
        quantizer.finish();
        let start = out.len();
        rlgr::encode(mode, &scratch.quantized[..], out);
        *length = u16::try_from(out.len() - start).map_err(|_| EncodeError::Unsupported)?;
    }
    // INVARIANT: three components of at most 65535 bytes each.
    let block_length = out.len() as u32;
    let mut header = [0u8; TILE_HEADER];
    header[..2].copy_from_slice(&message::CBT_TILE.to_le_bytes());
    header[2..6].copy_from_slice(&block_length.to_le_bytes());
    // quantIdxY, quantIdxCb, quantIdxCr: the one table, 0.
    header[9..11].copy_from_slice(&column.to_le_bytes());
    header[11..13].copy_from_slice(&row.to_le_bytes());
    for (index, length) in lengths.iter().enumerate() {
        header[13 + 2 * index..15 + 2 * index].copy_from_slice(&length.to_le_bytes());
    }
    out[..TILE_HEADER].copy_from_slice(&header);
    Ok(())
}
