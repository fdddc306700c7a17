//! H.264 (MPEG-4 AVC) for the Graphics Pipeline's AVC420 and AVC444
//! codecs, on Cisco's openh264 built from source (the `h264` feature).
//!
//! The encoder is set up for screen content at a fixed quantizer:
//!
//! - **Screen content mode** (`ScreenContentRealTime`): openh264's screen
//!   mode adds scroll and static-block detection and keeps sharp edges of
//!   text; camera mode is faster but blurs text at the same bytes. The
//!   benchmark (`cargo bench -p rdpserve-codecs --features h264 -- h264`)
//!   prints both.
//! - **A fixed quantizer**: quality-mode rate control with its quantizer
//!   range pinned to one value (`QpRange::new(qp, qp)`), so it cannot move
//!   (openh264's rate-control-off mode takes its quantizer from a field the
//!   crate leaves at its default). A remote desktop wants every frame at
//!   the same quality, text legible at once, not a bitrate reached by
//!   blurring the first frames. The pacing by frame acknowledgement already adapts
//!   the frame rate to the link, which is how Windows Server throttles too.
//! - No frame skipping (a skipped frame would leave the client's picture
//!   behind the server's), no periodic IDR (the channel is reliable), one
//!   slice, one thread (the server encodes many sessions in parallel
//!   already), deblocking as openh264 sets it.
//! - BT.709 full range in the VUI, as [`I420::convert_from`] converts and
//!   MS-RDPEGFX 3.3.8.3.1 decodes.

use openh264::OpenH264API;
use openh264::decoder::Decoder;
use openh264::encoder::{
    Complexity, Encoder, EncoderConfig, FrameType, QpRange, RateControlMode, UsageType, VuiConfig,
};
use openh264::formats::YUVSource;

use crate::{EncodeError, I420};

mod references;

/// The kind of picture openh264 tunes its tools for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum H264Content {
    /// Desktops, documents, UI: openh264's screen content mode.
    Screen,
    /// Natural video: openh264's camera mode, several times faster.
    Camera,
}

/// How an [`H264Encoder`] encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H264Settings {
    /// The quantizer of every frame, 0 (best) to 51. Default 22: about
    /// 40 dB PSNR on desktop pictures, text crisp.
    pub qp: u8,
    /// Default [`H264Content::Screen`].
    pub content: H264Content,
}

impl Default for H264Settings {
    fn default() -> Self {
        Self {
            qp: Self::DEFAULT_QP,
            content: H264Content::Screen,
        }
    }
}

impl H264Settings {
    pub const DEFAULT_QP: u8 = 22;
}

/// One H.264 encoder: a stream of pictures of one size (a new size starts
/// over with an IDR picture).
pub struct H264Encoder {
    encoder: Encoder,
    settings: H264Settings,
    /// Whether to keep long-term references (`for_two_views`), and the
    /// picture size they were turned on for.
    long_term: bool,
    long_term_size: Option<(usize, usize)>,
}

impl std::fmt::Debug for H264Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Encoder")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What an encoded picture is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H264Picture {
    /// An IDR picture, decodable on its own (with the SPS and PPS before it).
    Key,
    /// A picture predicted from the ones before it.
    Predicted,
}

/// An I420 picture as openh264 reads it.
struct Source<'a>(&'a I420);

impl YUVSource for Source<'_> {
    fn dimensions(&self) -> (usize, usize) {
        (self.0.width, self.0.height)
    }

    fn strides(&self) -> (usize, usize, usize) {
        (self.0.width, self.0.width / 2, self.0.width / 2)
    }

    fn y(&self) -> &[u8] {
        &self.0.y
    }

    fn u(&self) -> &[u8] {
        &self.0.u
    }

    fn v(&self) -> &[u8] {
        &self.0.v
    }
}

impl H264Encoder {
    /// A new encoder; its first picture is a key picture.
    pub fn new(settings: H264Settings) -> Result<Self, EncodeError> {
        if settings.qp > 51 {
            return Err(EncodeError::Unsupported);
        }
        let usage = match settings.content {
            H264Content::Screen => UsageType::ScreenContentRealTime,
            H264Content::Camera => UsageType::CameraVideoRealTime,
        };
        let config = EncoderConfig::new()
            .usage_type(usage)
            .rate_control_mode(RateControlMode::Quality)
            .qp(QpRange::new(settings.qp, settings.qp))
            .skip_frames(false)
            .complexity(Complexity::Medium)
            .num_threads(1)
            .vui(VuiConfig::bt709_full());
        let encoder = Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|_| EncodeError::Compression)?;
        Ok(Self {
            encoder,
            settings,
            long_term: false,
            long_term_size: None,
        })
    }

    /// An encoder for a stream that alternates two kinds of picture (AVC444's
    /// main and auxiliary views, which the client decodes with one
    /// decoder): it keeps long-term reference pictures so that each picture
    /// predicts from the last of its own kind, not from the other's (see
    /// `references`). Screen content only: openh264's camera mode does
    /// not choose among references.
    pub fn for_two_views(settings: H264Settings) -> Result<Self, EncodeError> {
        let mut encoder = Self::new(settings)?;
        encoder.long_term = settings.content == H264Content::Screen;
        Ok(encoder)
    }

    pub fn settings(&self) -> H264Settings {
        self.settings
    }

    /// Makes the next picture a key picture (after the client lost its
    /// decoder state, e.g. a new surface).
    pub fn request_key_picture(&mut self) {
        self.encoder.force_intra_frame();
    }

    /// Encodes `picture` (sizes even, at most 3840x2160 either way round),
    /// appending an Annex B byte stream to `out`.
    pub fn encode(
        &mut self,
        picture: &I420,
        out: &mut Vec<u8>,
    ) -> Result<H264Picture, EncodeError> {
        let (width, height) = (picture.width, picture.height);
        let chroma = (width / 2) * (height / 2);
        if width == 0
            || height == 0
            || width % 2 == 1
            || height % 2 == 1
            || picture.y.len() < width * height
            || picture.u.len() < chroma
            || picture.v.len() < chroma
        {
            return Err(EncodeError::Unsupported);
        }
        if self.long_term && self.long_term_size != Some((width, height)) {
            // The crate initialises openh264 at the first picture of a
            // size: one picture to set it up, thrown away, then the
            // references on, then this picture for real (an IDR).
            self.encoder
                .encode(&Source(picture))
                .map_err(|_| EncodeError::Unsupported)?;
            references::enable(&mut self.encoder).map_err(|()| EncodeError::Compression)?;
            self.long_term_size = Some((width, height));
        }
        let stream = self
            .encoder
            .encode(&Source(picture))
            .map_err(|_| EncodeError::Unsupported)?;
        let kind = match stream.frame_type() {
            FrameType::IDR | FrameType::I => H264Picture::Key,
            FrameType::P | FrameType::IPMixed => H264Picture::Predicted,
            // Frame skipping is off; a skipped or invalid picture is a
            // fault of the encoder.
            FrameType::Skip | FrameType::Invalid => return Err(EncodeError::Compression),
        };
        let start = out.len();
        stream.write_vec(out);
        if out.len() == start {
            return Err(EncodeError::Compression);
        }
        Ok(kind)
    }
}

/// An H.264 decoder, to check streams in tests and benchmarks (the server
/// decodes nothing).
pub struct H264Decoder {
    decoder: Decoder,
}

impl std::fmt::Debug for H264Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Decoder").finish_non_exhaustive()
    }
}

impl H264Decoder {
    pub fn new() -> Result<Self, EncodeError> {
        let decoder = Decoder::new().map_err(|_| EncodeError::Compression)?;
        Ok(Self { decoder })
    }

    /// Decodes one access unit (as [`H264Encoder::encode`] wrote it) into
    /// `picture`; `Ok(false)` when it held no picture.
    pub fn decode(&mut self, stream: &[u8], picture: &mut I420) -> Result<bool, EncodeError> {
        let Some(decoded) = self
            .decoder
            .decode(stream)
            .map_err(|_| EncodeError::Compression)?
        else {
            return Ok(false);
        };
        let (width, height) = decoded.dimensions();
        let (y_stride, u_stride, v_stride) = decoded.strides();
        picture.width = width;
        picture.height = height;
        let copy = |plane: &[u8], stride: usize, width: usize, height: usize, out: &mut Vec<u8>| {
            out.clear();
            for row in 0..height {
                out.extend_from_slice(&plane[row * stride..row * stride + width]);
            }
        };
        copy(decoded.y(), y_stride, width, height, &mut picture.y);
        copy(decoded.u(), u_stride, width / 2, height / 2, &mut picture.u);
        copy(decoded.v(), v_stride, width / 2, height / 2, &mut picture.v);
        Ok(true)
    }
}

/// The peak signal-to-noise ratio of `decoded` against `original` over the
/// luma and both chroma planes, in dB (100 when identical).
pub fn i420_psnr(original: &I420, decoded: &I420) -> f64 {
    let mut squared = 0u64;
    let mut count = 0u64;
    for (a, b) in [
        (&original.y, &decoded.y),
        (&original.u, &decoded.u),
        (&original.v, &decoded.v),
    ] {
        for (&x, &y) in a.iter().zip(b.iter()) {
            let difference = i64::from(x) - i64::from(y);
            squared += (difference * difference) as u64;
            count += 1;
        }
    }
    if squared == 0 || count == 0 {
        return 100.0;
    }
    let mean = squared as f64 / count as f64;
    10.0 * (255.0 * 255.0 / mean).log10()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Image;

    /// A desktop-like picture: flat areas, a gradient, and lines of
    /// "text" (one-pixel strokes).
    fn desktop(width: usize, height: usize, shift: usize) -> Vec<u8> {
        let mut data = vec![0u8; width * height * 4];
        for y in 0..height {
            for x in 0..width {
                let at = (y * width + x) * 4;
                let pixel = if y < 24 {
                    [120, 80, 40]
                } else if (y / 12) % 3 == 0
                    && ((x + shift) / 3) % 4 != 0
                    && x > 16
                    && x < width - 16
                {
                    [20, 20, 20]
                } else {
                    [(x * 255 / width) as u8, 230, (y * 255 / height) as u8]
                };
                data[at..at + 3].copy_from_slice(&pixel);
                data[at + 3] = 0xFF;
            }
        }
        data
    }

    fn picture(data: &[u8], width: usize, height: usize) -> I420 {
        let image = Image {
            width,
            height,
            stride: width * 4,
            data,
        };
        let mut planes = I420::default();
        planes.convert_from(&image, 0, 0, width, height).unwrap();
        planes
    }

    #[test]
    fn a_stream_decodes_to_the_pictures_within_the_quality_asked() {
        let (width, height) = (320, 192);
        let mut encoder = H264Encoder::new(H264Settings::default()).unwrap();
        let mut decoder = H264Decoder::new().unwrap();
        let mut decoded = I420::default();
        for (frame, shift) in [0, 0, 5].into_iter().enumerate() {
            let original = picture(&desktop(width, height, shift), width, height);
            let mut stream = Vec::new();
            let kind = encoder.encode(&original, &mut stream).unwrap();
            assert_eq!(kind == H264Picture::Key, frame == 0, "frame {frame}");
            // Annex B: a start code first.
            assert_eq!(&stream[..4], [0, 0, 0, 1]);
            assert!(decoder.decode(&stream, &mut decoded).unwrap());
            assert_eq!((decoded.width, decoded.height), (width, height));
            let psnr = i420_psnr(&original, &decoded);
            assert!(psnr >= 38.0, "frame {frame}: {psnr:.1} dB");
        }
    }

    #[test]
    fn an_unchanged_picture_costs_almost_nothing_and_keys_come_on_request() {
        let (width, height) = (256, 128);
        let original = picture(&desktop(width, height, 0), width, height);
        let mut encoder = H264Encoder::new(H264Settings::default()).unwrap();
        let mut first = Vec::new();
        encoder.encode(&original, &mut first).unwrap();
        let mut second = Vec::new();
        assert_eq!(
            encoder.encode(&original, &mut second).unwrap(),
            H264Picture::Predicted
        );
        assert!(
            second.len() * 20 < first.len(),
            "{} vs {}",
            second.len(),
            first.len()
        );
        encoder.request_key_picture();
        let mut third = Vec::new();
        assert_eq!(
            encoder.encode(&original, &mut third).unwrap(),
            H264Picture::Key
        );
    }

    #[test]
    fn a_lower_quantizer_gives_a_better_picture() {
        let (width, height) = (256, 128);
        let original = picture(&desktop(width, height, 0), width, height);
        let quality = |qp: u8| {
            let mut encoder = H264Encoder::new(H264Settings {
                qp,
                content: H264Content::Screen,
            })
            .unwrap();
            let mut stream = Vec::new();
            encoder.encode(&original, &mut stream).unwrap();
            let mut decoded = I420::default();
            H264Decoder::new()
                .unwrap()
                .decode(&stream, &mut decoded)
                .unwrap();
            (i420_psnr(&original, &decoded), stream.len())
        };
        let (fine, fine_bytes) = quality(12);
        let (coarse, coarse_bytes) = quality(40);
        assert!(fine > coarse + 6.0, "{fine:.1} vs {coarse:.1} dB");
        assert!(fine_bytes > coarse_bytes);
    }

    #[test]
    fn bad_settings_and_pictures_are_refused() {
        assert_eq!(
            H264Encoder::new(H264Settings {
                qp: 52,
                content: H264Content::Camera
            })
            .map(|_| ()),
            Err(EncodeError::Unsupported)
        );
        let mut encoder = H264Encoder::new(H264Settings::default()).unwrap();
        let mut out = Vec::new();
        let odd = I420 {
            width: 3,
            height: 2,
            y: vec![0; 6],
            u: vec![0; 1],
            v: vec![0; 1],
        };
        assert_eq!(
            encoder.encode(&odd, &mut out),
            Err(EncodeError::Unsupported)
        );
        let short = I420 {
            width: 16,
            height: 16,
            y: vec![0; 10],
            u: vec![0; 64],
            v: vec![0; 64],
        };
        assert_eq!(
            encoder.encode(&short, &mut out),
            Err(EncodeError::Unsupported)
        );
        let huge = I420 {
            width: 4096,
            height: 2304,
            y: vec![0; 4096 * 2304],
            u: vec![0; 2048 * 1152],
            v: vec![0; 2048 * 1152],
        };
        assert_eq!(
            encoder.encode(&huge, &mut out),
            Err(EncodeError::Unsupported)
        );
        assert!(out.is_empty());
    }

    /// Two alternating kinds of picture through one encoder and one
    /// decoder, as AVC444's views go: with long-term references each
    /// picture after the first pair predicts from its own kind's last, at a
    /// fraction of a key picture's bytes, and decodes to the picture.
    #[test]
    fn alternating_views_predict_from_their_own_kind() {
        let (width, height) = (320, 192);
        let other = |frame: usize| {
            let mut picture = picture(&desktop(width, height, 0), width, height);
            for (index, value) in picture.y.iter_mut().enumerate() {
                *value = ((index % width) * 3 % 251) as u8
                    ^ (u8::from(index < width * 16) * frame as u8);
            }
            picture
        };
        let run = |mut encoder: H264Encoder| {
            let mut decoder = H264Decoder::new().unwrap();
            let mut decoded = I420::default();
            let mut later = (0, 0);
            for frame in 0..4 {
                let main = picture(&desktop(width, height, frame), width, height);
                for view in [main, other(frame)] {
                    let mut stream = Vec::new();
                    let kind = encoder.encode(&view, &mut stream).unwrap();
                    assert!(decoder.decode(&stream, &mut decoded).unwrap());
                    let psnr = i420_psnr(&view, &decoded);
                    assert!(psnr >= 38.0, "frame {frame}: {psnr:.1} dB");
                    if frame > 0 {
                        later.0 += stream.len();
                        later.1 += usize::from(kind == H264Picture::Key);
                    }
                }
            }
            later
        };
        let (alone_bytes, alone_keys) = run(H264Encoder::new(H264Settings::default()).unwrap());
        let (paired_bytes, paired_keys) =
            run(H264Encoder::for_two_views(H264Settings::default()).unwrap());
        // Without long-term references every picture is a key picture.
        assert_eq!((alone_keys, paired_keys), (6, 0));
        assert!(
            paired_bytes * 3 < alone_bytes * 2,
            "{paired_bytes} vs {alone_bytes} bytes"
        );
    }
}
