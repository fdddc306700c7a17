//! QOIZ, IronRDP's QOI behind zstd (DESIGN.md, Graphics): each rectangle's
//! QOI image ([`crate::encode_qoi`]) goes into one zstd stream that lives as
//! long as the activation, flushed (ZSTD_e_flush) after every image and never
//! ended, at level 3. A rectangle's payload is exactly what its flush wrote;
//! the client's decoder keeps one stream too, so later images may refer
//! back to earlier ones.

use zstd::zstd_safe::zstd_sys::ZSTD_EndDirective;
use zstd::zstd_safe::{CCtx, CParameter, InBuffer, OutBuffer, compress_bound};

use crate::{EncodeError, Image, encode_qoi};

/// The codecGUID of IronRDP's QOIZ codec, {229cc6dc-a860-4b52-b4d8-053a22b3892b}
/// (DESIGN.md), in the order TS_BITMAPCODEC carries it: Data1, Data2 and
/// Data3 little-endian, then Data4's eight bytes as written. Its codec
/// properties are empty.
pub const QOIZ_CODEC_GUID: [u8; 16] = [
    0xdc, 0xc6, 0x9c, 0x22, 0x60, 0xa8, 0x52, 0x4b, 0xb4, 0xd8, 0x05, 0x3a, 0x22, 0xb3, 0x89, 0x2b,
];

/// The level IronRDP's QOIZ compresses at.
const LEVEL: i32 = 3;

/// One activation's QOIZ stream. Create one per activation (the client
/// starts a new decoder stream on each) and encode every QOIZ rectangle of
/// that activation through it, in the order they are sent.
///
/// After an error the stream is lost: the client's decoder would no longer
/// follow it, so every later call fails too.
pub struct QoizEncoder {
    compressor: CCtx<'static>,
    /// Each image's QOI bytes, reused between calls.
    qoi: Vec<u8>,
    failed: bool,
}

impl std::fmt::Debug for QoizEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QoizEncoder")
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl QoizEncoder {
    /// Starts a stream at level 3.
    pub fn new() -> Result<Self, EncodeError> {
        let mut compressor = CCtx::try_create().ok_or(EncodeError::Compression)?;
        compressor
            .set_parameter(CParameter::CompressionLevel(LEVEL))
            .map_err(|_| EncodeError::Compression)?;
        Ok(Self {
            compressor,
            qoi: Vec::new(),
            failed: false,
        })
    }

    /// Appends to `out` the QOIZ payload of the rectangle (`x`, `y`,
    /// `width`, `height`) of `image`: the bytes the stream's flush produced
    /// after taking the rectangle's QOI image, and nothing else.
    ///
    /// A rectangle [`encode_qoi`] refuses leaves the stream as it was.
    pub fn encode(
        &mut self,
        image: &Image<'_>,
        x: usize,
        y: usize,
        width: usize,
        height: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        if self.failed {
            return Err(EncodeError::Compression);
        }
        self.qoi.clear();
        encode_qoi(image, x, y, width, height, &mut self.qoi)?;
        let start = out.len();
        let result = self.compress(out);
        if result.is_err() {
            self.failed = true;
            out.truncate(start);
        }
        result
    }

    /// Feeds `self.qoi` to the stream and flushes it into `out`.
    fn compress(&mut self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        // Room for all of it in one call, usually.
        out.reserve(compress_bound(self.qoi.len()));
        let mut input = InBuffer::around(&self.qoi);
        loop {
            // zstd writes into the spare capacity; keep some so every call
            // makes progress.
            if out.capacity() - out.len() < 4096 {
                out.reserve(64 * 1024);
            }
            let position = out.len();
            let mut output = OutBuffer::around_pos(out, position);
            let left_to_flush = self
                .compressor
                .compress_stream2(&mut output, &mut input, ZSTD_EndDirective::ZSTD_e_flush)
                .map_err(|_| EncodeError::Compression)?;
            if left_to_flush == 0 && input.pos() == self.qoi.len() {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use zstd::zstd_safe::DCtx;

    use super::*;
    use crate::qoi::tests::{Random, assert_decodes_to, content};

    /// Decompresses one image's payload with the stream's decoder, which
    /// must yield the whole image from that payload alone.
    fn decompress(decoder: &mut DCtx<'_>, payload: &[u8]) -> Vec<u8> {
        let mut input = InBuffer::around(payload);
        let mut decoded = Vec::with_capacity(payload.len() * 4 + 1024);
        loop {
            if decoded.capacity() - decoded.len() < 4096 {
                decoded.reserve(decoded.capacity());
            }
            let position = decoded.len();
            let mut output = OutBuffer::around_pos(&mut decoded, position);
            decoder
                .decompress_stream(&mut output, &mut input)
                .expect("decompresses");
            let filled = output.pos() == output.capacity();
            if input.pos() == payload.len() && !filled {
                return decoded;
            }
        }
    }

    #[test]
    fn guid_bytes_are_in_wire_order() {
        // {229cc6dc-a860-4b52-b4d8-053a22b3892b}
        assert_eq!(
            QOIZ_CODEC_GUID,
            [
                0xDC, 0xC6, 0x9C, 0x22, // Data1 0x229cc6dc, little-endian
                0x60, 0xA8, // Data2 0xa860
                0x52, 0x4B, // Data3 0x4b52
                0xB4, 0xD8, 0x05, 0x3A, 0x22, 0xB3, 0x89, 0x2B, // Data4
            ]
        );
    }

    #[test]
    fn one_stream_carries_every_image_of_an_activation() {
        let (width, height) = (200, 120);
        let mut random = Random::new(7);
        let first = content(&mut random, 1, width * height * 4);
        let mut changed = first.clone();
        for byte in &mut changed[40_000..41_000] {
            *byte ^= 0x5A;
        }
        let noise = content(&mut random, 0, width * height * 4);
        let frames = [&first, &first, &changed, &noise, &first];
        let rects = [
            (0, 0, width, height),
            (0, 0, width, height),
            (10, 20, 150, 90),
            (0, 0, width, height),
            (199, 119, 1, 1),
        ];
        let mut encoder = QoizEncoder::new().expect("compressor");
        let mut stream = Vec::new();
        let mut payload_ends = Vec::new();
        for (frame, &(x, y, w, h)) in frames.iter().zip(&rects) {
            let image = Image {
                width,
                height,
                stride: width * 4,
                data: frame,
            };
            let mut payload = vec![0xEE];
            encoder
                .encode(&image, x, y, w, h, &mut payload)
                .expect("in bounds");
            assert_eq!(payload[0], 0xEE, "appends");
            stream.extend_from_slice(&payload[1..]);
            payload_ends.push(stream.len());
        }
        // A repeated image costs little: the stream remembers the first.
        assert!(payload_ends[1] - payload_ends[0] < payload_ends[0] / 4);

        // The client's side: one decoder over the concatenated payloads.
        let mut decoder = DCtx::create();
        let mut payload_start = 0;
        for ((frame, &(x, y, w, h)), end) in frames.iter().zip(&rects).zip(payload_ends) {
            let image = Image {
                width,
                height,
                stride: width * 4,
                data: frame,
            };
            let decoded = decompress(&mut decoder, &stream[payload_start..end]);
            let mut qoi = Vec::new();
            encode_qoi(&image, x, y, w, h, &mut qoi).expect("in bounds");
            assert!(decoded == qoi, "payload decompresses to the qoi image");
            assert_decodes_to(&decoded, &image, x, y, w, h);
            payload_start = end;
        }
    }

    #[test]
    fn refused_rects_leave_the_stream_usable() {
        let data = vec![0x33u8; 8 * 8 * 4];
        let image = Image {
            width: 8,
            height: 8,
            stride: 32,
            data: &data,
        };
        let mut encoder = QoizEncoder::new().expect("compressor");
        let mut out = Vec::new();
        assert_eq!(
            encoder.encode(&image, 4, 4, 5, 1, &mut out),
            Err(EncodeError::OutOfBounds)
        );
        assert_eq!(
            encoder.encode(&image, 0, 0, 0, 1, &mut out),
            Err(EncodeError::Unsupported)
        );
        assert!(out.is_empty());
        encoder
            .encode(&image, 0, 0, 8, 8, &mut out)
            .expect("in bounds");
        let decoded = decompress(&mut DCtx::create(), &out);
        assert_decodes_to(&decoded, &image, 0, 0, 8, 8);
    }

    #[test]
    fn random_images_through_one_stream() {
        let mut random = Random::new(0x9e37_79b9);
        let mut encoder = QoizEncoder::new().expect("compressor");
        let mut decoder = DCtx::create();
        let mut payload = Vec::new();
        for _ in 0..60 {
            let width = 1 + random.below(4096);
            let height = 1 + random.below(if width > 512 { 3 } else { 30 });
            let stride = width * 4 + random.below(5);
            let len = stride * (height - 1) + width * 4;
            let kind = random.below(7);
            let data = content(&mut random, kind, len.div_ceil(4) * 4);
            let image = Image {
                width,
                height,
                stride,
                data: &data[..len],
            };
            let (x, y) = (random.below(width), random.below(height));
            let (w, h) = (1 + random.below(width - x), 1 + random.below(height - y));
            payload.clear();
            encoder
                .encode(&image, x, y, w, h, &mut payload)
                .expect("in bounds");
            let decoded = decompress(&mut decoder, &payload);
            assert_decodes_to(&decoded, &image, x, y, w, h);
        }
    }
}
