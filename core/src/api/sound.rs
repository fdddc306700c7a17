//! Audio output as the application sees it (MS-RDPEA): audio formats, the
//! events the sound channel reports, and the errors of its commands.

use bytes::BufMut;

use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;

/// WAVE_FORMAT_PCM, the one format every client and server supports (2.2.2.1.1).
pub const WAVE_FORMAT_PCM: u16 = 0x0001;

/// AUDIO_FORMAT without its variable `data`: tag, channels, rate, byte rate,
/// block align, bits per sample, cbSize.
pub(crate) const AUDIO_FORMAT_FIXED_SIZE: usize = 2 + 2 + 4 + 4 + 2 + 2 + 2;

/// One audio format
/// ([AUDIO_FORMAT, 2.2.2.1.1](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpea/30a6cc00-31c4-4e15-9aa4-95a5c5074697)),
/// a WAVEFORMATEX with its trailing codec data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFormat {
    /// wFormatTag, e.g. [`WAVE_FORMAT_PCM`].
    pub format_tag: u16,
    pub channels: u16,
    pub samples_per_sec: u32,
    pub avg_bytes_per_sec: u32,
    /// Bytes of one sample frame (all channels); samples are sent in whole blocks.
    pub block_align: u16,
    pub bits_per_sample: u16,
    /// Codec-specific bytes after cbSize (empty for PCM).
    pub extra: Vec<u8>,
}

impl AudioFormat {
    /// Interleaved PCM with the derived block align and byte rate.
    pub fn pcm(channels: u16, samples_per_sec: u32, bits_per_sample: u16) -> Self {
        let block_align = channels.saturating_mul(bits_per_sample.div_ceil(8));
        Self {
            format_tag: WAVE_FORMAT_PCM,
            channels,
            samples_per_sec,
            avg_bytes_per_sec: samples_per_sec.saturating_mul(u32::from(block_align)),
            block_align,
            bits_per_sample,
            extra: Vec::new(),
        }
    }

    /// Encoded size: the fixed part plus the codec data.
    pub fn size(&self) -> usize {
        AUDIO_FORMAT_FIXED_SIZE + self.extra.len()
    }

    /// Writes the AUDIO_FORMAT. The caller keeps `extra` within 65535 bytes
    /// ([`AudioFormatsPdu::encode`] checks it).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16_le(self.format_tag);
        out.put_u16_le(self.channels);
        out.put_u32_le(self.samples_per_sec);
        out.put_u32_le(self.avg_bytes_per_sec);
        out.put_u16_le(self.block_align);
        out.put_u16_le(self.bits_per_sample);
        out.put_u16_le(self.extra.len() as u16);
        out.put_slice(&self.extra);
    }

    pub(crate) fn decode(cursor: &mut ReadCursor<'_>) -> Result<Self, DecodeError> {
        let format_tag = cursor.read_u16_le()?;
        let channels = cursor.read_u16_le()?;
        let samples_per_sec = cursor.read_u32_le()?;
        let avg_bytes_per_sec = cursor.read_u32_le()?;
        let block_align = cursor.read_u16_le()?;
        let bits_per_sample = cursor.read_u16_le()?;
        let extra_size = usize::from(cursor.read_u16_le()?);
        let extra = cursor.read_slice(extra_size)?.to_vec();
        Ok(Self {
            format_tag,
            channels,
            samples_per_sec,
            avg_bytes_per_sec,
            block_align,
            bits_per_sample,
            extra,
        })
    }
}

/// What the application learns from the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoundEvent {
    /// The client answered the formats and confirmed training. `formats` are
    /// the server formats the client also lists, in the client's order
    /// (empty when it cannot play anything the server offers); `version` is the
    /// client's protocol version.
    Ready {
        formats: Vec<AudioFormat>,
        version: u16,
    },
    /// The client played a wave: the wave's 16-bit timestamp plus the
    /// client's delay, and its block number, so the application can pace.
    WaveConfirmed { timestamp: u16, block: u8 },
}

/// Why a command from the application was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SoundError {
    #[error("audio channel not ready")]
    NotReady,
    #[error("client has no audio format in common with the server")]
    NoCommonFormat,
    #[error("{in_flight} waves await confirmation, the limit")]
    QueueFull { in_flight: usize },
    #[error("no samples")]
    Empty,
    #[error("{size} bytes of samples, need at least {minimum}")]
    TooShort { size: usize, minimum: usize },
    #[error("{size} bytes exceeds the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("{size} bytes is not a whole number of {block_align}-byte blocks")]
    Misaligned { size: usize, block_align: u16 },
    #[error("format index {index} out of {count} common formats")]
    FormatIndex { index: usize, count: usize },
    #[error("client does not accept volume changes")]
    VolumeNotSupported,
}
