//! The encode messages of
//! [MS-RDPRFX 2.2.2](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdprfx/edd6c368-4f39-420a-bf14-a0e83c654ab7):
//! block types, field values and writers. All integers are little-endian.

use super::{RfxQuant, RfxRect, RlgrMode};

pub(super) const WBT_SYNC: u16 = 0xCCC0;
pub(super) const WBT_CODEC_VERSIONS: u16 = 0xCCC1;
pub(super) const WBT_CHANNELS: u16 = 0xCCC2;
pub(super) const WBT_CONTEXT: u16 = 0xCCC3;
pub(super) const WBT_FRAME_BEGIN: u16 = 0xCCC4;
pub(super) const WBT_FRAME_END: u16 = 0xCCC5;
pub(super) const WBT_REGION: u16 = 0xCCC6;
pub(super) const WBT_EXTENSION: u16 = 0xCCC7;
pub(super) const CBT_REGION: u16 = 0xCAC1;
pub(super) const CBT_TILESET: u16 = 0xCAC2;
pub(super) const CBT_TILE: u16 = 0xCAC3;

pub(super) const WF_MAGIC: u32 = 0xCACC_ACCA;
pub(super) const WF_VERSION_1_0: u16 = 0x0100;
pub(super) const CODEC_ID: u8 = 0x01;
pub(super) const CHANNEL_ID: u8 = 0x00;
/// TS_RFX_CONTEXT carries this channel id instead of the channel's.
pub(super) const CONTEXT_CHANNEL_ID: u8 = 0xFF;
pub(super) const TILE_SIZE_FIELD: u16 = 0x0040;

/// Property values: ICT colour conversion, the 5/3 DWT, scalar quantization.
pub(super) const COL_CONV_ICT: u16 = 0x1;
pub(super) const CLW_XFORM_DWT_53_A: u16 = 0x1;
pub(super) const SCALAR_QUANTIZATION: u16 = 0x1;

/// TS_RFX_BLOCKT: blockType (2) + blockLen (4).
pub(super) const BLOCK_HEADER: usize = 6;
/// TS_RFX_CODEC_CHANNELT: TS_RFX_BLOCKT + codecId (1) + channelId (1).
pub(super) const CHANNEL_HEADER: usize = BLOCK_HEADER + 2;
/// TS_RFX_TILE up to its data: TS_RFX_BLOCKT + three quantIdx (1 each) +
/// xIdx, yIdx (2 each) + YLen, CbLen, CrLen (2 each).
pub(super) const TILE_HEADER: usize = BLOCK_HEADER + 3 + 4 + 6;
/// TS_RFX_TILESET up to quantVals: TS_RFX_CODEC_CHANNELT + subtype (2) +
/// idx (2) + properties (2) + numQuant (1) + tileSize (1) + numTiles (2) +
/// tilesDataSize (4).
pub(super) const TILESET_HEADER: usize = CHANNEL_HEADER + 14;
/// TS_RFX_CODEC_QUANT: ten 4-bit values.
pub(super) const QUANT_SIZE: usize = 5;

impl RlgrMode {
    /// The `et` property value (CLW_ENTROPY_RLGR1 or CLW_ENTROPY_RLGR3).
    pub(super) fn entropy_field(self) -> u16 {
        match self {
            Self::Rlgr1 => 0x01,
            Self::Rlgr3 => 0x04,
        }
    }
}

impl RfxQuant {
    /// TS_RFX_CODEC_QUANT (2.2.2.1.5): LL3, LH3, HL3, HH3, LH2, HL2, HH2,
    /// LH1, HL1, HH1, two per byte, the first of each pair in the low
    /// nibble.
    pub fn to_bytes(&self) -> [u8; QUANT_SIZE] {
        let pair = |low: u8, high: u8| (low & 0x0F) | (high << 4);
        [
            pair(self.ll3, self.lh3),
            pair(self.hl3, self.hh3),
            pair(self.lh2, self.hl2),
            pair(self.hh2, self.lh1),
            pair(self.hl1, self.hh1),
        ]
    }

    /// The inverse of `to_bytes`.
    pub fn from_bytes(bytes: [u8; QUANT_SIZE]) -> Self {
        let [a, b, c, d, e] = bytes.map(|byte| (byte & 0x0F, byte >> 4));
        Self {
            ll3: a.0,
            lh3: a.1,
            hl3: b.0,
            hh3: b.1,
            lh2: c.0,
            hl2: c.1,
            hh2: d.0,
            lh1: d.1,
            hl1: e.0,
            hh1: e.1,
        }
    }
}

fn block(out: &mut Vec<u8>, block_type: u16, length: u32) {
    out.extend_from_slice(&block_type.to_le_bytes());
    out.extend_from_slice(&length.to_le_bytes());
}

fn channel_block(out: &mut Vec<u8>, block_type: u16, length: u32, channel_id: u8) {
    block(out, block_type, length);
    out.extend_from_slice(&[CODEC_ID, channel_id]);
}

/// TS_RFX_SYNC, TS_RFX_CODEC_VERSIONS, TS_RFX_CHANNELS (one channel of
/// the image's size) and TS_RFX_CONTEXT (2.2.2.2), in the order
/// 3.1.8.3.1 shows.
///
/// INVARIANT: `width` and `height` are within 1..=4096.
pub(super) fn write_headers(out: &mut Vec<u8>, width: u16, height: u16, mode: RlgrMode) {
    // TS_RFX_SYNC: header + magic (4) + version (2).
    block(out, WBT_SYNC, 12);
    out.extend_from_slice(&WF_MAGIC.to_le_bytes());
    out.extend_from_slice(&WF_VERSION_1_0.to_le_bytes());
    // TS_RFX_CODEC_VERSIONS: header + numCodecs (1) + codecId (1) + version (2).
    block(out, WBT_CODEC_VERSIONS, 10);
    out.extend_from_slice(&[1, CODEC_ID]);
    out.extend_from_slice(&WF_VERSION_1_0.to_le_bytes());
    // TS_RFX_CHANNELS: header + numChannels (1) + channelId (1) + width (2) + height (2).
    block(out, WBT_CHANNELS, 12);
    out.extend_from_slice(&[1, CHANNEL_ID]);
    out.extend_from_slice(&width.to_le_bytes());
    out.extend_from_slice(&height.to_le_bytes());
    // TS_RFX_CONTEXT: channel header + ctxId (1) + tileSize (2) + properties (2).
    channel_block(out, WBT_CONTEXT, 13, CONTEXT_CHANNEL_ID);
    out.push(0);
    out.extend_from_slice(&TILE_SIZE_FIELD.to_le_bytes());
    out.extend_from_slice(&context_properties(mode).to_le_bytes());
}

/// TS_RFX_CONTEXT properties: flags (bits 0-2, 0 = video mode, headers
/// once per stream), cct (3-4), xft (5-8), et (9-12), qt (13-14).
pub(super) fn context_properties(mode: RlgrMode) -> u16 {
    COL_CONV_ICT << 3
        | CLW_XFORM_DWT_53_A << 5
        | mode.entropy_field() << 9
        | SCALAR_QUANTIZATION << 13
}

/// TS_RFX_TILESET properties: lt (bit 0, must be 1), flags (1-3, as in the
/// context), cct (4-5), xft (6-9), et (10-13), qt (14-15).
pub(super) fn tileset_properties(mode: RlgrMode) -> u16 {
    1 | COL_CONV_ICT << 4
        | CLW_XFORM_DWT_53_A << 6
        | mode.entropy_field() << 10
        | SCALAR_QUANTIZATION << 14
}

/// TS_RFX_FRAME_BEGIN (2.2.2.3.1): frameIdx, and one region.
pub(super) fn write_frame_begin(out: &mut Vec<u8>, frame_index: u32) {
    channel_block(
        out,
        WBT_FRAME_BEGIN,
        (CHANNEL_HEADER + 6) as u32,
        CHANNEL_ID,
    );
    out.extend_from_slice(&frame_index.to_le_bytes());
    out.extend_from_slice(&1i16.to_le_bytes());
}

/// TS_RFX_REGION (2.2.2.3.3) with one tileset.
///
/// INVARIANT: `rects.len()` fits in u16.
pub(super) fn write_region(out: &mut Vec<u8>, rects: &[RfxRect]) {
    // Channel header + regionFlags (1) + numRects (2) + rects (8 each) +
    // regionType (2) + numTilesets (2).
    let length = CHANNEL_HEADER + 1 + 2 + rects.len() * 8 + 4;
    channel_block(out, WBT_REGION, length as u32, CHANNEL_ID);
    // lrf (bit 0) must be set.
    out.push(0x01);
    out.extend_from_slice(&(rects.len() as u16).to_le_bytes());
    for rect in rects {
        for field in [rect.x, rect.y, rect.width, rect.height] {
            out.extend_from_slice(&field.to_le_bytes());
        }
    }
    out.extend_from_slice(&CBT_REGION.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
}

/// TS_RFX_TILESET (2.2.2.3.4) up to and including its one quant table;
/// the tiles follow.
pub(super) fn write_tileset_header(
    out: &mut Vec<u8>,
    mode: RlgrMode,
    quant: &RfxQuant,
    tiles: u16,
    tiles_size: u32,
    block_length: u32,
) {
    channel_block(out, WBT_EXTENSION, block_length, CHANNEL_ID);
    out.extend_from_slice(&CBT_TILESET.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&tileset_properties(mode).to_le_bytes());
    out.push(1);
    out.push(TILE_SIZE_FIELD as u8);
    out.extend_from_slice(&tiles.to_le_bytes());
    out.extend_from_slice(&tiles_size.to_le_bytes());
    out.extend_from_slice(&quant.to_bytes());
}

/// TS_RFX_FRAME_END (2.2.2.3.2).
pub(super) fn write_frame_end(out: &mut Vec<u8>) {
    channel_block(out, WBT_FRAME_END, CHANNEL_HEADER as u32, CHANNEL_ID);
}
