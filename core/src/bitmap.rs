//! Bitmap updates: TS_UPDATE_BITMAP_DATA and TS_BITMAP_DATA
//! ([MS-RDPBCGR 2.2.9.1.1.3.1.2](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/84a3d4d2-5523-4e49-9a48-33952c559485)).
//!
//! The fast-path bitmap update (2.2.9.1.2.1.2) carries the same structure,
//! updateType field included.

use bytes::BufMut;

use crate::cursor::ReadCursor;
use crate::error::DecodeError;

const UPDATETYPE_BITMAP: u16 = 0x0001;
const BITMAP_COMPRESSION: u16 = 0x0001;
const NO_BITMAP_COMPRESSION_HDR: u16 = 0x0400;

/// One rectangle of a bitmap update. `data` is bottom-up rows, each padded
/// to a multiple of 4 bytes when uncompressed.
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
    pub compressed: bool,
    pub data: &'a [u8],
}

/// Writes the payload of a Bitmap update (fast-path update code 1).
///
/// INVARIANT: the caller keeps each rectangle's data under 64 KiB and the
/// count under 65536 (the session tiles updates to fit its budget).
pub fn encode_bitmap_update(out: &mut Vec<u8>, rects: &[BitmapData<'_>]) {
    out.put_u16_le(UPDATETYPE_BITMAP);
    out.put_u16_le(rects.len() as u16);
    for rect in rects {
        out.put_u16_le(rect.dest_left);
        out.put_u16_le(rect.dest_top);
        out.put_u16_le(rect.dest_right);
        out.put_u16_le(rect.dest_bottom);
        out.put_u16_le(rect.width);
        out.put_u16_le(rect.height);
        out.put_u16_le(rect.bits_per_pixel);
        // Compressed data is written without the TS_CD_HEADER, as the
        // server's NO_BITMAP_COMPRESSION_HDR extra flag announces.
        out.put_u16_le(if rect.compressed {
            BITMAP_COMPRESSION | NO_BITMAP_COMPRESSION_HDR
        } else {
            0
        });
        out.put_u16_le(rect.data.len() as u16);
        out.put_slice(rect.data);
    }
}

/// Parses a Bitmap update payload (for tests and test clients).
pub fn decode_bitmap_update(payload: &[u8]) -> Result<Vec<BitmapData<'_>>, DecodeError> {
    let mut cursor = ReadCursor::new(payload, "bitmap update");
    if cursor.read_u16_le()? != UPDATETYPE_BITMAP {
        return Err(cursor.invalid("updateType", "not UPDATETYPE_BITMAP"));
    }
    let count = usize::from(cursor.read_u16_le()?);
    // Each rectangle takes at least its 18-byte header.
    cursor.ensure(count * 18)?;
    let mut rects = Vec::with_capacity(count);
    for _ in 0..count {
        let dest_left = cursor.read_u16_le()?;
        let dest_top = cursor.read_u16_le()?;
        let dest_right = cursor.read_u16_le()?;
        let dest_bottom = cursor.read_u16_le()?;
        let width = cursor.read_u16_le()?;
        let height = cursor.read_u16_le()?;
        let bits_per_pixel = cursor.read_u16_le()?;
        let flags = cursor.read_u16_le()?;
        let length = usize::from(cursor.read_u16_le()?);
        rects.push(BitmapData {
            dest_left,
            dest_top,
            dest_right,
            dest_bottom,
            width,
            height,
            bits_per_pixel,
            compressed: flags & BITMAP_COMPRESSION != 0,
            data: cursor.read_slice(length)?,
        });
    }
    Ok(rects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let pixels = [7u8; 2 * 3 * 4];
        let rects = [BitmapData {
            dest_left: 10,
            dest_top: 20,
            dest_right: 11,
            dest_bottom: 22,
            width: 2,
            height: 3,
            bits_per_pixel: 32,
            compressed: false,
            data: &pixels,
        }];
        let mut out = Vec::new();
        encode_bitmap_update(&mut out, &rects);
        assert_eq!(out.len(), 4 + 18 + 24);
        assert_eq!(decode_bitmap_update(&out).unwrap(), rects);
        assert!(decode_bitmap_update(&out[..out.len() - 1]).is_err());
        let mut many = out.clone();
        many[2] = 0xFF;
        assert!(decode_bitmap_update(&many).is_err());
    }
}
