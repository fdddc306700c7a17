//! H.264 frames for the Graphics Pipeline: RFX_AVC420_BITMAP_STREAM
//! ([MS-RDPEGFX 2.2.4.4](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpegfx/5f12c20e-2ea1-4ad1-a2a0-019ee3893731)),
//! a metablock of region rectangles with their quantizer and quality,
//! then the H.264 picture, carried by one WireToSurface1 per frame.
//!
//! The H.264 picture always covers the whole surface, its sides rounded up
//! to 16 as 2.2.4.4 asks, and the client's decoder keeps it from frame to
//! frame as its reference. The region rectangles are the mask: the client
//! copies only them out of the decoded picture onto the surface, so the
//! pixels outside them stay as they were (FreeRDP indexes the picture and
//! the surface with the same coordinates, so the picture starts at the
//! surface's origin). Damage therefore limits the work three ways:
//! only the damaged tiles are converted to I420 (the rest of the picture
//! is kept from the frames before), unchanged macroblocks cost openh264
//! a skip each (a few bits), and a frame with no damage is not encoded
//! at all.

#[cfg(feature = "h264")]
use rdpserve_codecs::{Avc444Version, Avc444Views, H264Encoder, H264Settings, I420, Image};

use crate::graphics::egfx::pdu::Rect16;
#[cfg(feature = "h264")]
use crate::graphics::pacing::TILE;

/// RDPGFX_AVC420_QUANT_QUALITY (2.2.4.4.2): the quantizer (6 bits), the
/// progressive bit (off: every region is final) and a quality level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QuantQuality {
    pub qp: u8,
    pub progressive: bool,
    /// 0 (lowest) to 100 (highest).
    pub quality: u8,
}

/// RFX_AVC420_METABLOCK (2.2.4.4.1), each region with its quantizer and
/// quality, followed by the H.264 stream.
pub(crate) fn encode_avc420_bitmap(
    regions: &[(Rect16, QuantQuality)],
    stream: &[u8],
    out: &mut Vec<u8>,
) {
    // INVARIANT: at most one region per tile of a 65535 x 65535 surface,
    // or `Avc420Frame::MAX_REGIONS`.
    out.extend_from_slice(&(regions.len() as u32).to_le_bytes());
    for (rect, _) in regions {
        for side in [rect.left, rect.top, rect.right, rect.bottom] {
            out.extend_from_slice(&side.to_le_bytes());
        }
    }
    for (_, quant) in regions {
        let qp_val = (quant.qp & 0x3F) | if quant.progressive { 0x80 } else { 0 };
        out.extend_from_slice(&[qp_val, quant.quality]);
    }
    out.extend_from_slice(stream);
}

/// The quality level sent with every region: the encoder's quantizer on
/// H.264's scale (0 best, 51 worst) mapped onto 0 to 100.
#[cfg(feature = "h264")]
fn quality_of(qp: u8) -> u8 {
    (100 - u32::from(qp.min(51)) * 100 / 51) as u8
}

/// One surface's H.264 state: the encoder and the picture it encodes.
#[cfg(feature = "h264")]
#[derive(Debug)]
pub(crate) struct AvcEncoder {
    encoder: H264Encoder,
    /// The surface's picture, sides rounded up to 16.
    picture: I420,
    /// One damaged tile, converted.
    tile: I420,
    regions: Vec<(Rect16, QuantQuality)>,
    stream: Vec<u8>,
    width: usize,
    height: usize,
}

#[cfg(feature = "h264")]
impl AvcEncoder {
    /// An encoder for a surface of `width` x `height` (at most 3840 x 2160
    /// either way round, openh264's limit); its first frame is a key frame
    /// and must cover the whole surface.
    pub fn new(
        settings: H264Settings,
        width: usize,
        height: usize,
    ) -> Result<Self, rdpserve_codecs::EncodeError> {
        let (padded_width, padded_height) =
            (width.next_multiple_of(16), height.next_multiple_of(16));
        if width == 0
            || height == 0
            || padded_width.max(padded_height) > 3840
            || padded_width.min(padded_height) > 2160
        {
            return Err(rdpserve_codecs::EncodeError::Unsupported);
        }
        let chroma = (padded_width / 2) * (padded_height / 2);
        Ok(Self {
            encoder: H264Encoder::new(settings)?,
            // Black padding; it never changes, so it costs nothing after
            // the key frame.
            picture: I420 {
                width: padded_width,
                height: padded_height,
                y: vec![0; padded_width * padded_height],
                u: vec![128; chroma],
                v: vec![128; chroma],
            },
            tile: I420::default(),
            regions: Vec::new(),
            stream: Vec::new(),
            width,
            height,
        })
    }

    /// Whether a surface of this size can be encoded.
    pub fn fits(width: usize, height: usize) -> bool {
        let (width, height) = (width.next_multiple_of(16), height.next_multiple_of(16));
        width > 0 && height > 0 && width.max(height) <= 3840 && width.min(height) <= 2160
    }

    /// The whole surface, as a WireToSurface1's destination.
    pub fn destination(&self) -> Rect16 {
        // INVARIANT: `new` bounded the sides to 3840.
        Rect16 {
            left: 0,
            top: 0,
            right: self.width as u16,
            bottom: self.height as u16,
        }
    }

    /// Converts the damaged `tiles` (indices on the 64x64 grid of
    /// `columns` a row, ascending) of `shadow` into the picture, encodes
    /// it and writes an RFX_AVC420_BITMAP_STREAM into `out`; the regions
    /// are the tiles, those side by side in a row merged.
    pub fn encode_frame(
        &mut self,
        shadow: &Image<'_>,
        tiles: &[usize],
        columns: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), rdpserve_codecs::EncodeError> {
        self.regions.clear();
        let qp = self.encoder.settings().qp;
        let quant = QuantQuality {
            qp,
            progressive: false,
            quality: quality_of(qp),
        };
        for &index in tiles {
            let (x, y) = ((index % columns) * TILE, (index / columns) * TILE);
            if x >= self.width || y >= self.height {
                return Err(rdpserve_codecs::EncodeError::OutOfBounds);
            }
            let (width, height) = (TILE.min(self.width - x), TILE.min(self.height - y));
            self.tile.convert_from(shadow, x, y, width, height)?;
            // INVARIANT: tiles start on the 64-pixel grid within the
            // surface and their even-rounded sides end within the
            // 16-rounded picture.
            self.tile.copy_into(&mut self.picture, x, y);
            // INVARIANT: `new` bounded the sides to 3840.
            let rect = Rect16 {
                left: x as u16,
                top: y as u16,
                right: (x + width) as u16,
                bottom: (y + height) as u16,
            };
            match self.regions.last_mut() {
                Some((last, _)) if last.right == rect.left && last.top == rect.top => {
                    last.right = rect.right;
                }
                _ => self.regions.push((rect, quant)),
            }
        }
        if self.regions.is_empty() {
            return Err(rdpserve_codecs::EncodeError::Unsupported);
        }
        self.stream.clear();
        self.encoder.encode(&self.picture, &mut self.stream)?;
        encode_avc420_bitmap(&self.regions, &self.stream, out);
        Ok(())
    }
}

/// One surface's AVC444 state (MS-RDPEGFX 2.2.4.5, 3.3.8.3.2 and
/// 3.3.8.3.3): one encoder for both views, which form one H.264 stream
/// (the main view's picture, then the auxiliary view's), as the client
/// decodes them with one decoder (FreeRDP 2.11 decodes both subframes
/// through the same decoder context). The encoder keeps long-term
/// references, so each view predicts from its own previous picture
/// (`H264Encoder::for_two_views`). Each frame converts the whole surface
/// into the two views (the auxiliary view's layout does not split by
/// tile) and sends both (LC 0); the regions are the damaged tiles, as for
/// AVC420, those in the first row of tiles split for FreeRDP 2.11's
/// chroma filter ([`split_first_rows`]).
#[cfg(feature = "h264")]
#[derive(Debug)]
pub(crate) struct Avc444Encoder {
    encoder: H264Encoder,
    version: Avc444Version,
    views: Avc444Views,
    regions: Vec<(Rect16, QuantQuality)>,
    stream: Vec<u8>,
    width: usize,
    height: usize,
}

#[cfg(feature = "h264")]
impl Avc444Encoder {
    pub fn new(
        settings: H264Settings,
        version: Avc444Version,
        width: usize,
        height: usize,
    ) -> Result<Self, rdpserve_codecs::EncodeError> {
        if !AvcEncoder::fits(width, height) {
            return Err(rdpserve_codecs::EncodeError::Unsupported);
        }
        Ok(Self {
            encoder: H264Encoder::for_two_views(settings)?,
            version,
            views: Avc444Views::default(),
            regions: Vec::new(),
            stream: Vec::new(),
            width,
            height,
        })
    }

    pub fn version(&self) -> Avc444Version {
        self.version
    }

    /// Writes an RFX_AVC444_BITMAP_STREAM (or its v2 twin, the same
    /// layout) for the damaged `tiles` of `shadow` into `out`.
    pub fn encode_frame(
        &mut self,
        shadow: &Image<'_>,
        tiles: &[usize],
        columns: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), rdpserve_codecs::EncodeError> {
        let qp = self.encoder.settings().qp;
        let quant = QuantQuality {
            qp,
            progressive: false,
            quality: quality_of(qp),
        };
        self.regions.clear();
        for &index in tiles {
            let (x, y) = ((index % columns) * TILE, (index / columns) * TILE);
            if x >= self.width || y >= self.height {
                return Err(rdpserve_codecs::EncodeError::OutOfBounds);
            }
            // INVARIANT: `new` bounded the sides to 3840.
            let rect = Rect16 {
                left: x as u16,
                top: y as u16,
                right: (x + TILE.min(self.width - x)) as u16,
                bottom: (y + TILE.min(self.height - y)) as u16,
            };
            match self.regions.last_mut() {
                Some((last, _)) if last.right == rect.left && last.top == rect.top => {
                    last.right = rect.right;
                }
                _ => self.regions.push((rect, quant)),
            }
        }
        if self.regions.is_empty() {
            return Err(rdpserve_codecs::EncodeError::Unsupported);
        }
        split_first_rows(&mut self.regions, self.width);
        self.views
            .convert_from(shadow, 0, 0, self.width, self.height, self.version)?;
        // avc420EncodedBitstreamInfo: the first stream's size (30 bits)
        // and LC 0 (both views present), filled in once known.
        let info_at = out.len();
        out.extend_from_slice(&[0; 4]);
        self.stream.clear();
        self.encoder.encode(&self.views.main, &mut self.stream)?;
        let first_start = out.len();
        encode_avc420_bitmap(&self.regions, &self.stream, out);
        let first_len = out.len() - first_start;
        if first_len >= 1 << 30 {
            return Err(rdpserve_codecs::EncodeError::Unsupported);
        }
        out[info_at..info_at + 4].copy_from_slice(&(first_len as u32).to_le_bytes());
        self.stream.clear();
        self.encoder
            .encode(&self.views.auxiliary, &mut self.stream)?;
        encode_avc420_bitmap(&self.regions, &self.stream, out);
        Ok(())
    }
}

/// Splits the regions of the first row of tiles so that FreeRDP 2.11's
/// chroma filter runs only where the main view carries block means
/// ([`Avc444Views::MEAN_ROWS`]): the client filters a rectangle whose
/// height exceeds twice its top, and for one at the top but not at the
/// left it filters columns beyond it. So the first macroblock row goes in
/// one rectangle of the surface's whole width (harmless: both views are
/// converted whole every frame, so all of it is current), and the rest of
/// each first-row region in rows 16 to 32 and 32 to 64, tops multiples of
/// 16 as AVC444 v1's layout needs. Rows of tiles below start at 64 or
/// more with at most 64 rows, which the filter never reaches.
#[cfg(feature = "h264")]
fn split_first_rows(regions: &mut Vec<(Rect16, QuantQuality)>, width: usize) {
    const _: () = assert!(Avc444Views::MEAN_ROWS == 16 && TILE == 64);
    let Some(&(_, quant)) = regions.iter().find(|(rect, _)| rect.top == 0) else {
        return;
    };
    let first: Vec<Rect16> = regions
        .iter()
        .filter(|(rect, _)| rect.top == 0)
        .map(|(rect, _)| *rect)
        .collect();
    regions.retain(|(rect, _)| rect.top != 0);
    let bottom = first[0].bottom;
    let mut split = vec![(
        Rect16 {
            left: 0,
            top: 0,
            // INVARIANT: `new` bounded the sides to 3840.
            right: width as u16,
            bottom: bottom.min(16),
        },
        quant,
    )];
    for (top, end) in [(16, 32), (32, 64)] {
        if bottom <= top {
            break;
        }
        for rect in &first {
            split.push((
                Rect16 {
                    top,
                    bottom: bottom.min(end),
                    ..*rect
                },
                quant,
            ));
        }
    }
    regions.splice(0..0, split);
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(feature = "h264")]
    use rdpserve_codecs::{H264Decoder, i420_psnr};

    /// A metablock as the client reads it: regions, quant values, stream.
    #[cfg(feature = "h264")]
    fn parse(bitmap: &[u8]) -> (Vec<Rect16>, Vec<(u8, u8)>, &[u8]) {
        let count = u32::from_le_bytes(bitmap[..4].try_into().unwrap()) as usize;
        let word = |at: usize| u16::from_le_bytes([bitmap[at], bitmap[at + 1]]);
        let rects = (0..count)
            .map(|i| {
                let at = 4 + i * 8;
                Rect16 {
                    left: word(at),
                    top: word(at + 2),
                    right: word(at + 4),
                    bottom: word(at + 6),
                }
            })
            .collect();
        let quant_at = 4 + count * 8;
        let quants = (0..count)
            .map(|i| (bitmap[quant_at + 2 * i], bitmap[quant_at + 2 * i + 1]))
            .collect();
        (rects, quants, &bitmap[quant_at + 2 * count..])
    }

    #[test]
    fn the_metablock_has_the_spec_layout() {
        let mut out = Vec::new();
        let regions = [
            Rect16 {
                left: 0,
                top: 0,
                right: 128,
                bottom: 64,
            },
            Rect16 {
                left: 64,
                top: 64,
                right: 100,
                bottom: 90,
            },
        ];
        let quants = [
            QuantQuality {
                qp: 22,
                progressive: true,
                quality: 57,
            },
            QuantQuality {
                qp: 51,
                progressive: false,
                quality: 0,
            },
        ];
        let regions = [(regions[0], quants[0]), (regions[1], quants[1])];
        encode_avc420_bitmap(&regions, &[0, 0, 0, 1, 0x67], &mut out);
        assert_eq!(
            out,
            [
                2, 0, 0, 0, // numRegionRects
                0, 0, 0, 0, 128, 0, 64, 0, // first rect
                64, 0, 64, 0, 100, 0, 90, 0, // second rect
                0x96, 57, // qp 22 | progressive, quality 57
                0x33, 0, // qp 51, quality 0
                0, 0, 0, 1, 0x67, // the stream
            ]
        );
        #[cfg(feature = "h264")]
        {
            assert_eq!(quality_of(0), 100);
            assert_eq!(quality_of(51), 0);
            assert_eq!(quality_of(22), 57);
        }
    }

    #[cfg(feature = "h264")]
    fn shadow(width: usize, height: usize, seed: u8) -> Vec<u8> {
        (0..width * height)
            .flat_map(|i| {
                let (x, y) = (i % width, i / width);
                let level = ((x / 8 + y / 8) % 2) as u8 * 200;
                [
                    level.wrapping_add(seed),
                    (x % 256) as u8,
                    (y % 256) as u8,
                    0xFF,
                ]
            })
            .collect()
    }

    #[cfg(feature = "h264")]
    #[test]
    fn damaged_tiles_become_merged_regions_over_a_whole_surface_picture() {
        let (width, height) = (200, 130);
        let data = shadow(width, height, 0);
        let image = Image {
            width,
            height,
            stride: width * 4,
            data: &data,
        };
        let mut encoder = AvcEncoder::new(H264Settings::default(), width, height).unwrap();
        assert_eq!(
            encoder.destination(),
            Rect16 {
                left: 0,
                top: 0,
                right: 200,
                bottom: 130
            }
        );
        let columns = 4;
        let all: Vec<usize> = (0..12).collect();
        let mut first = Vec::new();
        encoder
            .encode_frame(&image, &all, columns, &mut first)
            .unwrap();
        let (rects, quants, stream) = parse(&first);
        // One region a row of tiles; the last row and column are clipped.
        assert_eq!(
            rects,
            [0, 64, 128].map(|top| Rect16 {
                left: 0,
                top,
                right: 200,
                bottom: (top + 64).min(130),
            })
        );
        assert_eq!(quants, [(22, 57); 3]);
        let mut decoder = H264Decoder::new().unwrap();
        let mut decoded = I420::default();
        assert!(decoder.decode(stream, &mut decoded).unwrap());
        // The picture's sides are rounded up to 16.
        assert_eq!((decoded.width, decoded.height), (208, 144));
        let mut expected = I420::default();
        expected.convert_from(&image, 0, 0, width, height).unwrap();
        // Compare the surface's part of the luma plane.
        let mut squared = 0u64;
        for y in 0..height {
            for x in 0..width {
                let difference =
                    i64::from(expected.y[y * width + x]) - i64::from(decoded.y[y * 208 + x]);
                squared += (difference * difference) as u64;
            }
        }
        let mse = squared as f64 / (width * height) as f64;
        let psnr = 10.0 * (255.0f64 * 255.0 / mse.max(1e-9)).log10();
        assert!(psnr >= 38.0, "{psnr:.1} dB");

        // Two damaged tiles, not side by side: two regions, a small frame.
        let changed = shadow(width, height, 90);
        let image = Image {
            width,
            height,
            stride: width * 4,
            data: &changed,
        };
        let mut second = Vec::new();
        encoder
            .encode_frame(&image, &[1, 6], columns, &mut second)
            .unwrap();
        let (rects, _, stream) = parse(&second);
        assert_eq!(
            rects,
            [
                Rect16 {
                    left: 64,
                    top: 0,
                    right: 128,
                    bottom: 64
                },
                Rect16 {
                    left: 128,
                    top: 64,
                    right: 192,
                    bottom: 128
                }
            ]
        );
        assert!(decoder.decode(stream, &mut decoded).unwrap());
        let mut now = I420::default();
        now.convert_from(&image, 64, 0, 64, 64).unwrap();
        let mut got = I420 {
            width: 64,
            height: 64,
            y: Vec::new(),
            u: Vec::new(),
            v: Vec::new(),
        };
        for row in 0..64 {
            got.y
                .extend_from_slice(&decoded.y[row * 208 + 64..row * 208 + 128]);
        }
        for row in 0..32 {
            got.u
                .extend_from_slice(&decoded.u[row * 104 + 32..row * 104 + 64]);
            got.v
                .extend_from_slice(&decoded.v[row * 104 + 32..row * 104 + 64]);
        }
        assert!(i420_psnr(&now, &got) >= 38.0);
        assert!(second.len() < first.len());
    }

    #[cfg(feature = "h264")]
    #[test]
    fn first_row_regions_are_split_where_freerdp_2_filters_chroma() {
        let quant = QuantQuality {
            qp: 22,
            progressive: false,
            quality: 57,
        };
        let rect = |left, top, right, bottom| Rect16 {
            left,
            top,
            right,
            bottom,
        };
        // Two regions in the first row of tiles, one below.
        let mut regions = vec![
            (rect(64, 0, 128, 64), quant),
            (rect(192, 0, 200, 64), quant),
            (rect(0, 64, 64, 100), quant),
        ];
        split_first_rows(&mut regions, 200);
        let rects: Vec<Rect16> = regions.iter().map(|(rect, _)| *rect).collect();
        assert_eq!(
            rects,
            [
                rect(0, 0, 200, 16),
                rect(64, 16, 128, 32),
                rect(192, 16, 200, 32),
                rect(64, 32, 128, 64),
                rect(192, 32, 200, 64),
                rect(0, 64, 64, 100),
            ]
        );
        // The client's filter runs in a rectangle whose height exceeds
        // twice its top: here only in the first macroblock row.
        for rect in &rects {
            let (top, height) = (rect.top, rect.bottom - rect.top);
            assert!(top == 0 && height <= 16 || height <= 2 * top, "{rect:?}");
        }
        // A short surface: only what exists.
        let mut regions = vec![(rect(0, 0, 40, 20), quant)];
        split_first_rows(&mut regions, 40);
        let rects: Vec<Rect16> = regions.iter().map(|(rect, _)| *rect).collect();
        assert_eq!(rects, [rect(0, 0, 40, 16), rect(0, 16, 40, 20)]);
        // No damage in the first row: unchanged.
        let mut regions = vec![(rect(0, 64, 64, 128), quant)];
        split_first_rows(&mut regions, 64);
        assert_eq!(regions, [(rect(0, 64, 64, 128), quant)]);
    }

    #[cfg(feature = "h264")]
    #[test]
    fn sizes_beyond_openh264_and_tiles_outside_are_refused() {
        assert!(AvcEncoder::fits(1920, 1080) && AvcEncoder::fits(1080, 1920));
        assert!(!AvcEncoder::fits(3850, 100) && !AvcEncoder::fits(2200, 2200));
        assert!(AvcEncoder::new(H264Settings::default(), 4000, 100).is_err());
        let data = shadow(64, 64, 0);
        let image = Image {
            width: 64,
            height: 64,
            stride: 256,
            data: &data,
        };
        let mut encoder = AvcEncoder::new(H264Settings::default(), 64, 64).unwrap();
        let mut out = Vec::new();
        assert!(encoder.encode_frame(&image, &[1], 1, &mut out).is_err());
        assert!(encoder.encode_frame(&image, &[], 1, &mut out).is_err());
        assert!(out.is_empty());
    }
}
