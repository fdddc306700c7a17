//! Bitmap updates: TS_UPDATE_BITMAP_DATA
//! ([MS-RDPBCGR 2.2.9.1.1.3.1.2.1](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/d681bb11-f3b5-4add-b092-19fe7075f9e3))
//! and TS_BITMAP_DATA
//! ([2.2.9.1.1.3.1.2.2](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/84a3d4d2-5523-4e49-9a48-33952c559485)),
//! and the planner that cuts a dirty rectangle into rectangles that fit.
//!
//! The fast-path bitmap update (TS_FP_UPDATE_BITMAP, 2.2.9.1.2.1.2) carries
//! "the actual bitmap update data, as specified in 2.2.9.1.1.3.1.2", i.e. a
//! whole TS_UPDATE_BITMAP_DATA *including* its updateType field
//! (UPDATETYPE_BITMAP): only the slow-path share headers are dropped. So
//! [`encode_bitmap_update`] writes updateType first in both paths.

#[cfg(test)]
use crate::wire::cursor::ReadCursor;
#[cfg(test)]
use crate::wire::error::DecodeError;
use bytes::BufMut;

const UPDATETYPE_BITMAP: u16 = 0x0001;
const BITMAP_COMPRESSION: u16 = 0x0001;
const NO_BITMAP_COMPRESSION_HDR: u16 = 0x0400;
#[cfg(test)]
/// TS_CD_HEADER, present in compressed data unless NO_BITMAP_COMPRESSION_HDR.
const COMPRESSED_DATA_HEADER_LEN: usize = 8;

/// updateType and numberRectangles of TS_UPDATE_BITMAP_DATA.
pub const BITMAP_UPDATE_HEADER_LEN: usize = 4;
/// The fixed fields of TS_BITMAP_DATA: destLeft, destTop, destRight,
/// destBottom, width, height, bitsPerPixel, flags, bitmapLength.
pub const BITMAP_DATA_HEADER_LEN: usize = 18;
/// bitmapLength is 16 bits.
pub const MAX_BITMAP_DATA_LEN: usize = u16::MAX as usize;

/// One rectangle of a bitmap update (TS_BITMAP_DATA).
///
/// `width` x `height` is the size of the bitmap in `data`, which may exceed
/// the destination rectangle (the client clips; compressed codecs pad widths
/// to 4 pixels). Uncompressed data is bottom-up rows, each padded to a
/// multiple of 4 bytes (see [`uncompressed_row_len`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitmapData<'a> {
    pub dest_left: u16,
    pub dest_top: u16,
    /// Inclusive.
    pub dest_right: u16,
    /// Inclusive.
    pub dest_bottom: u16,
    pub width: u16,
    pub height: u16,
    pub bits_per_pixel: u16,
    /// Compressed data is written without TS_CD_HEADER, as the server's
    /// NO_BITMAP_COMPRESSION_HDR extra flag (General Capability Set) announces.
    pub compressed: bool,
    pub data: &'a [u8],
}

impl BitmapData<'_> {
    /// Encoded size: the fixed fields plus the data.
    pub fn size(&self) -> usize {
        BITMAP_DATA_HEADER_LEN + self.data.len()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16_le(self.dest_left);
        out.put_u16_le(self.dest_top);
        out.put_u16_le(self.dest_right);
        out.put_u16_le(self.dest_bottom);
        out.put_u16_le(self.width);
        out.put_u16_le(self.height);
        out.put_u16_le(self.bits_per_pixel);
        out.put_u16_le(if self.compressed {
            BITMAP_COMPRESSION | NO_BITMAP_COMPRESSION_HDR
        } else {
            0
        });
        out.put_u16_le(self.data.len() as u16);
        out.put_slice(self.data);
    }
}

impl<'a> BitmapData<'a> {
    #[cfg(test)]
    fn decode(cursor: &mut ReadCursor<'a>) -> Result<Self, DecodeError> {
        let dest_left = cursor.read_u16_le()?;
        let dest_top = cursor.read_u16_le()?;
        let dest_right = cursor.read_u16_le()?;
        let dest_bottom = cursor.read_u16_le()?;
        let width = cursor.read_u16_le()?;
        let height = cursor.read_u16_le()?;
        let bits_per_pixel = cursor.read_u16_le()?;
        let flags = cursor.read_u16_le()?;
        let length = usize::from(cursor.read_u16_le()?);
        if dest_right < dest_left || dest_bottom < dest_top {
            return Err(cursor.invalid("destination", "right or bottom before left or top"));
        }
        if !matches!(bits_per_pixel, 8 | 15 | 16 | 24 | 32) {
            return Err(DecodeError::Unexpected {
                context: cursor.context(),
                what: "bitsPerPixel",
                value: u32::from(bits_per_pixel),
            });
        }
        let compressed = flags & BITMAP_COMPRESSION != 0;
        let mut data = cursor.read_slice(length)?;
        if compressed && flags & NO_BITMAP_COMPRESSION_HDR == 0 {
            // bitmapLength counts the TS_CD_HEADER too; we keep only the stream.
            let Some(stream) = data.get(COMPRESSED_DATA_HEADER_LEN..) else {
                return Err(cursor.invalid("bitmapLength", "shorter than TS_CD_HEADER"));
            };
            data = stream;
        }
        if !compressed
            && data.len() != uncompressed_row_len(width, bits_per_pixel) * usize::from(height)
        {
            return Err(cursor.invalid("bitmapLength", "not width x height padded rows"));
        }
        Ok(Self {
            dest_left,
            dest_top,
            dest_right,
            dest_bottom,
            width,
            height,
            bits_per_pixel,
            compressed,
            data,
        })
    }
}

#[cfg(test)]
/// Bytes in one row of an uncompressed bitmap: whole-byte pixels (15 bpp
/// takes 2 bytes), padded to a multiple of 4.
pub fn uncompressed_row_len(width: u16, bits_per_pixel: u16) -> usize {
    let bytes_per_pixel = usize::from(bits_per_pixel).div_ceil(8);
    (usize::from(width) * bytes_per_pixel).next_multiple_of(4)
}

/// Encoded size of a TS_UPDATE_BITMAP_DATA holding `rects`.
pub fn bitmap_update_size(rects: &[BitmapData<'_>]) -> usize {
    BITMAP_UPDATE_HEADER_LEN + rects.iter().map(BitmapData::size).sum::<usize>()
}

/// Writes the payload of a Bitmap update (fast-path update code 1 or the
/// slow-path TS_UPDATE_BITMAP after its share headers).
///
/// INVARIANT: each rectangle's data is at most [`MAX_BITMAP_DATA_LEN`] and
/// there are at most 65535 rectangles ([`plan_tiles`] and the caller's
/// update budget keep it so).
pub fn encode_bitmap_update(out: &mut Vec<u8>, rects: &[BitmapData<'_>]) {
    debug_assert!(rects.len() <= usize::from(u16::MAX), "too many rectangles");
    debug_assert!(
        rects
            .iter()
            .all(|rect| rect.data.len() <= MAX_BITMAP_DATA_LEN),
        "bitmap data over 64 KiB"
    );
    out.reserve(bitmap_update_size(rects));
    out.put_u16_le(UPDATETYPE_BITMAP);
    out.put_u16_le(rects.len() as u16);
    for rect in rects {
        rect.encode(out);
    }
}

#[cfg(test)]
/// Parses a Bitmap update payload, the inverse of [`encode_bitmap_update`]
/// (for tests and test clients).
pub fn decode_bitmap_update(payload: &[u8]) -> Result<Vec<BitmapData<'_>>, DecodeError> {
    let mut cursor = ReadCursor::new(payload, "bitmap update");
    let update_type = cursor.read_u16_le()?;
    if update_type != UPDATETYPE_BITMAP {
        return Err(DecodeError::Unexpected {
            context: cursor.context(),
            what: "updateType",
            value: u32::from(update_type),
        });
    }
    let count = usize::from(cursor.read_u16_le()?);
    // Each rectangle takes at least its fixed fields: check before allocating.
    cursor.ensure(count * BITMAP_DATA_HEADER_LEN)?;
    let mut rects = Vec::with_capacity(count);
    for _ in 0..count {
        rects.push(BitmapData::decode(&mut cursor)?);
    }
    if !cursor.is_empty() {
        return Err(cursor.invalid("numberRectangles", "bytes left after the last rectangle"));
    }
    Ok(rects)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(data: &[u8]) -> BitmapData<'_> {
        BitmapData {
            dest_left: 10,
            dest_top: 20,
            dest_right: 11,
            dest_bottom: 22,
            width: 2,
            height: 3,
            bits_per_pixel: 32,
            compressed: false,
            data,
        }
    }

    #[test]
    fn encodes_the_spec_layout() {
        let pixels: Vec<u8> = (0..24).collect();
        let mut out = Vec::new();
        encode_bitmap_update(&mut out, &[rect(&pixels)]);
        let mut expected = vec![
            0x01, 0x00, // updateType UPDATETYPE_BITMAP
            0x01, 0x00, // numberRectangles
            0x0A, 0x00, 0x14, 0x00, // destLeft, destTop
            0x0B, 0x00, 0x16, 0x00, // destRight, destBottom (inclusive)
            0x02, 0x00, 0x03, 0x00, // width, height
            0x20, 0x00, 0x00, 0x00, // bitsPerPixel 32, flags 0
            0x18, 0x00, // bitmapLength 24
        ];
        expected.extend_from_slice(&pixels);
        assert_eq!(out, expected);
        assert_eq!(out.len(), bitmap_update_size(&[rect(&pixels)]));
    }

    #[test]
    fn round_trips() {
        let pixels = [7u8; 2 * 3 * 4];
        let compressed = [1u8, 2, 3];
        let rects = [
            rect(&pixels),
            BitmapData {
                compressed: true,
                bits_per_pixel: 16,
                width: 4,
                ..rect(&compressed)
            },
            BitmapData {
                bits_per_pixel: 24,
                width: 3,
                height: 1,
                dest_bottom: 20,
                // 3 pixels of 3 bytes, padded from 9 to 12.
                ..rect(&[0; 12])
            },
        ];
        let mut out = Vec::new();
        encode_bitmap_update(&mut out, &rects);
        assert_eq!(decode_bitmap_update(&out).unwrap(), rects);
        // Three rectangles announced, none present: refused before allocating.
        assert!(matches!(
            decode_bitmap_update(&out[..4]),
            Err(DecodeError::Truncated { needed: 54, .. })
        ));
    }

    #[test]
    fn compressed_data_header_is_skipped() {
        // BITMAP_COMPRESSION without NO_BITMAP_COMPRESSION_HDR: 8 bytes of
        // TS_CD_HEADER before the stream, counted in bitmapLength.
        let mut payload = vec![
            1, 0, 1, 0, 0, 0, 0, 0, 3, 0, 3, 0, 4, 0, 4, 0, 16, 0, 1, 0, 10, 0,
        ];
        payload.extend_from_slice(&[0, 0, 2, 0, 8, 0, 32, 0]);
        payload.extend_from_slice(&[0xAA, 0xBB]);
        let rects = decode_bitmap_update(&payload).unwrap();
        assert!(rects[0].compressed);
        assert_eq!(rects[0].data, [0xAA, 0xBB]);
    }

    #[test]
    fn bad_updates_are_errors() {
        let pixels = [7u8; 24];
        let mut good = Vec::new();
        encode_bitmap_update(&mut good, &[rect(&pixels)]);
        let corrupt = |index: usize, value: u8| {
            let mut bad = good.clone();
            bad[index] = value;
            bad
        };
        let bad: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("truncated data", good[..good.len() - 1].to_vec()),
            ("trailing bytes", [good.as_slice(), &[0]].concat()),
            ("numberRectangles past the end", corrupt(2, 0xFF)),
            ("bitmapLength past the end", corrupt(20, 0xFF)),
            ("updateType orders", corrupt(0, 0x00)),
            ("bitsPerPixel 33", corrupt(16, 33)),
            ("destRight before destLeft", corrupt(8, 0x00)),
            ("uncompressed length wrong for the size", corrupt(12, 3)),
            ("compressed, shorter than TS_CD_HEADER", {
                // flags BITMAP_COMPRESSION alone, bitmapLength 4.
                let mut bad = good[..BITMAP_UPDATE_HEADER_LEN + 16].to_vec();
                bad.extend_from_slice(&[0x01, 0x00, 0x04, 0x00, 1, 2, 3, 4]);
                bad
            }),
        ];
        for (what, payload) in bad {
            assert!(decode_bitmap_update(&payload).is_err(), "{what}");
        }
        for len in 0..good.len() {
            assert!(decode_bitmap_update(&good[..len]).is_err());
        }
    }

    #[test]
    fn row_lengths_are_padded_to_four_bytes() {
        assert_eq!(uncompressed_row_len(1, 32), 4);
        assert_eq!(uncompressed_row_len(3, 24), 12);
        assert_eq!(uncompressed_row_len(4, 24), 12);
        assert_eq!(uncompressed_row_len(1, 16), 4);
        assert_eq!(uncompressed_row_len(3, 15), 8);
        assert_eq!(uncompressed_row_len(5, 8), 8);
        assert_eq!(uncompressed_row_len(0, 32), 0);
    }
}
