//! ZGFX, the RDP 8.0 bulk compressor of the Graphics Pipeline
//! ([MS-RDPEGFX 3.1.9.1](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpegfx/f69980f4-7c92-4846-9c8d-61781362c76f)),
//! and the RDP_SEGMENTED_DATA framing every EGFX PDU travels in
//! ([MS-RDPEGFX 2.2.5.1](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpegfx/1b962dc9-c4f1-404c-a5b8-036bb51656ec)).
//!
//! The format is LZ77 over a history of 2,500,000 bytes shared by every
//! segment of a channel, with a fixed prefix code for literals and match
//! distances. [`ZgfxCompressor`] is the server's side; [`ZgfxDecompressor`]
//! is the client's, kept as the independent check of the compressor (tests,
//! fuzzing).

mod bits;
mod compress;
mod decompress;
mod tokens;

pub use compress::ZgfxCompressor;
pub use decompress::{ZgfxDecompressor, ZgfxError};

/// The bytes of history both ends keep; no match reaches further back.
pub const HISTORY_SIZE: usize = 2_500_000;
/// The most uncompressed bytes one segment carries.
pub const MAX_SEGMENT_SIZE: usize = 65_535;

/// RDP_SEGMENTED_DATA descriptor: one segment, no size fields.
const SEGMENTED_SINGLE: u8 = 0xE0;
/// RDP_SEGMENTED_DATA descriptor: a count, a total size and sized segments.
const SEGMENTED_MULTIPART: u8 = 0xE1;
/// RDP8_BULK_ENCODED_DATA header: the compression type (low four bits).
const COMPRESSION_TYPE_RDP8: u8 = 0x04;
/// RDP8_BULK_ENCODED_DATA header: the data is compressed (else it is the
/// bytes themselves, which still enter the history).
const PACKET_COMPRESSED: u8 = 0x20;

#[cfg(test)]
mod tests;
