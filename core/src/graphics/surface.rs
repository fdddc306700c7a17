//! Surface commands
//! ([MS-RDPBCGR 2.2.9.2](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/a29e8ed9-8e7e-4eb4-96ce-d2d4f5c8e3c6)):
//! Stream Surface Bits with TS_BITMAP_DATA_EX, and frame markers.

use bytes::BufMut;

const CMDTYPE_STREAM_SURFACE_BITS: u16 = 0x0006;
const CMDTYPE_FRAME_MARKER: u16 = 0x0004;
const SURFACECMD_FRAMEACTION_BEGIN: u16 = 0x0000;
const SURFACECMD_FRAMEACTION_END: u16 = 0x0001;

/// TS_SURFCMD_STREAM_SURF_BITS with its TS_BITMAP_DATA_EX header; the
/// codec's bytes follow (appended by the caller after this header).
pub fn encode_stream_surface_bits_header(
    out: &mut Vec<u8>,
    (left, top, right, bottom): (u16, u16, u16, u16),
    codec_id: u8,
    (width, height): (u16, u16),
    data_length: u32,
) {
    out.put_u16_le(CMDTYPE_STREAM_SURFACE_BITS);
    out.put_u16_le(left);
    out.put_u16_le(top);
    // Exclusive bounds.
    out.put_u16_le(right);
    out.put_u16_le(bottom);
    out.put_u8(32); // bpp
    out.put_u8(0); // flags: no extended header
    out.put_u8(0); // reserved
    out.put_u8(codec_id);
    out.put_u16_le(width);
    out.put_u16_le(height);
    out.put_u32_le(data_length);
}

/// Bytes of the Stream Surface Bits command and TS_BITMAP_DATA_EX before
/// the codec data.
pub const STREAM_SURFACE_BITS_HEADER: usize = 10 + 12;

/// TS_FRAME_MARKER: the start (`begin`) or end of frame `frame_id`.
pub fn encode_frame_marker(out: &mut Vec<u8>, begin: bool, frame_id: u32) {
    out.put_u16_le(CMDTYPE_FRAME_MARKER);
    out.put_u16_le(if begin {
        SURFACECMD_FRAMEACTION_BEGIN
    } else {
        SURFACECMD_FRAMEACTION_END
    });
    out.put_u32_le(frame_id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_have_the_spec_layout() {
        let mut out = Vec::new();
        encode_frame_marker(&mut out, true, 7);
        assert_eq!(out, [4, 0, 0, 0, 7, 0, 0, 0]);
        out.clear();
        encode_stream_surface_bits_header(&mut out, (0, 0, 64, 32), 3, (64, 32), 100);
        assert_eq!(out.len(), STREAM_SURFACE_BITS_HEADER);
        assert_eq!(&out[..2], [6, 0]);
        assert_eq!(&out[10..14], [32, 0, 0, 3]);
        assert_eq!(&out[18..22], 100u32.to_le_bytes());
    }
}
