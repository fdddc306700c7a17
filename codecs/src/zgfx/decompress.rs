//! The client's side of ZGFX: RDP_SEGMENTED_DATA in, the PDU bytes out.
//! The server never decodes ZGFX (clients send EGFX PDUs uncompressed and
//! unsegmented); this decoder checks the compressor, in tests and fuzzing.

use super::bits::BitReader;
use super::tokens::{Kind, TOKENS};
use super::{
    COMPRESSION_TYPE_RDP8, HISTORY_SIZE, MAX_SEGMENT_SIZE, PACKET_COMPRESSED, SEGMENTED_MULTIPART,
    SEGMENTED_SINGLE,
};

/// Why ZGFX data could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ZgfxError {
    /// The data ends inside a field or a token.
    Truncated,
    /// The RDP_SEGMENTED_DATA descriptor is neither 0xE0 nor 0xE1.
    Descriptor(u8),
    /// A segment's compression type is not RDP 8.0 (0x04).
    CompressionType(u8),
    /// A segment's size field says more bytes than remain, or zero.
    SegmentSize(u32),
    /// A segment's last byte counts more padding bits than it has.
    Padding(u8),
    /// A prefix that names no token.
    UnknownToken,
    /// A match reaching further back than the history.
    Distance(u32),
    /// A segment decodes to more than 65,535 bytes.
    SegmentTooLarge,
    /// The multipart total is not the sum of its segments, or is over the
    /// caller's limit.
    UncompressedSize { declared: u32, decoded: usize },
    /// Bytes after the last segment.
    TrailingBytes,
}

impl std::fmt::Display for ZgfxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Truncated => f.write_str("zgfx data truncated"),
            Self::Descriptor(value) => write!(f, "unknown segmented data descriptor {value:#04x}"),
            Self::CompressionType(value) => write!(f, "unknown bulk compression type {value:#04x}"),
            Self::SegmentSize(size) => write!(f, "segment size {size} does not fit the data"),
            Self::Padding(value) => write!(f, "segment padding of {value} bits is too large"),
            Self::UnknownToken => f.write_str("unknown zgfx token prefix"),
            Self::Distance(distance) => write!(f, "match distance {distance} beyond the history"),
            Self::SegmentTooLarge => f.write_str("segment decodes to more than 65535 bytes"),
            Self::UncompressedSize { declared, decoded } => {
                write!(
                    f,
                    "uncompressed size {declared} but {decoded} bytes decoded"
                )
            }
            Self::TrailingBytes => f.write_str("bytes after the last segment"),
        }
    }
}

impl std::error::Error for ZgfxError {}

/// A ZGFX decoder: the history of one channel, 2,500,000 bytes.
pub struct ZgfxDecompressor {
    history: Vec<u8>,
    /// Where the next byte goes in `history` (a ring).
    index: usize,
}

impl std::fmt::Debug for ZgfxDecompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZgfxDecompressor")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl Default for ZgfxDecompressor {
    fn default() -> Self {
        Self::new()
    }
}

impl ZgfxDecompressor {
    pub fn new() -> Self {
        Self {
            history: vec![0; HISTORY_SIZE],
            index: 0,
        }
    }

    /// Decodes one RDP_SEGMENTED_DATA, appending the bytes to `out`.
    /// `limit` caps the multipart total. On error the history may hold part
    /// of the data: the channel is lost, as it would be for a client.
    pub fn decompress(
        &mut self,
        input: &[u8],
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), ZgfxError> {
        let (&descriptor, rest) = input.split_first().ok_or(ZgfxError::Truncated)?;
        match descriptor {
            SEGMENTED_SINGLE => self.segment(rest, out),
            SEGMENTED_MULTIPART => {
                let (count, rest) = rest.split_first_chunk::<2>().ok_or(ZgfxError::Truncated)?;
                let (total, mut rest) =
                    rest.split_first_chunk::<4>().ok_or(ZgfxError::Truncated)?;
                let count = u16::from_le_bytes(*count);
                let total = u32::from_le_bytes(*total);
                if total as usize > limit {
                    return Err(ZgfxError::UncompressedSize {
                        declared: total,
                        decoded: 0,
                    });
                }
                let start = out.len();
                for _ in 0..count {
                    let (size, after) =
                        rest.split_first_chunk::<4>().ok_or(ZgfxError::Truncated)?;
                    let size = u32::from_le_bytes(*size);
                    if size == 0 || size as usize > after.len() {
                        return Err(ZgfxError::SegmentSize(size));
                    }
                    let (segment, after) = after.split_at(size as usize);
                    self.segment(segment, out)?;
                    if out.len() - start > total as usize {
                        break;
                    }
                    rest = after;
                }
                let decoded = out.len() - start;
                if decoded != total as usize {
                    return Err(ZgfxError::UncompressedSize {
                        declared: total,
                        decoded,
                    });
                }
                if !rest.is_empty() {
                    return Err(ZgfxError::TrailingBytes);
                }
                Ok(())
            }
            other => Err(ZgfxError::Descriptor(other)),
        }
    }

    fn remember(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.history[self.index] = byte;
            self.index = if self.index + 1 == HISTORY_SIZE {
                0
            } else {
                self.index + 1
            };
        }
    }

    /// One RDP8_BULK_ENCODED_DATA: a header byte and its data.
    fn segment(&mut self, segment: &[u8], out: &mut Vec<u8>) -> Result<(), ZgfxError> {
        let (&header, data) = segment.split_first().ok_or(ZgfxError::Truncated)?;
        if header & 0x0F != COMPRESSION_TYPE_RDP8 {
            return Err(ZgfxError::CompressionType(header & 0x0F));
        }
        if header & PACKET_COMPRESSED == 0 {
            if data.len() > MAX_SEGMENT_SIZE {
                return Err(ZgfxError::SegmentTooLarge);
            }
            self.remember(data);
            out.extend_from_slice(data);
            return Ok(());
        }
        // The last byte counts the unused bits of the byte before it.
        let (&padding, body) = data.split_last().ok_or(ZgfxError::Truncated)?;
        let valid_bits = (body.len() * 8)
            .checked_sub(usize::from(padding))
            .filter(|_| padding < 8)
            .ok_or(ZgfxError::Padding(padding))?;
        let mut reader = BitReader::new(body, valid_bits);
        let start = out.len();
        while reader.remaining() > 0 {
            let token = Self::token(&mut reader)?;
            let value = reader
                .get(u32::from(token.value_bits))
                .ok_or(ZgfxError::Truncated)?;
            let value = token.base + value;
            match token.kind {
                Kind::Literal => {
                    let byte = value as u8;
                    self.remember(&[byte]);
                    out.push(byte);
                }
                Kind::Match if value == 0 => {
                    // Unencoded bytes: a 15-bit count, then the bytes from
                    // the next byte boundary.
                    let count = reader.get(15).ok_or(ZgfxError::Truncated)? as usize;
                    let bytes = reader.align();
                    let bytes = bytes.get(..count).ok_or(ZgfxError::Truncated)?;
                    reader.skip_bytes(count);
                    self.remember(bytes);
                    out.extend_from_slice(bytes);
                }
                Kind::Match => {
                    let length = Self::match_length(&mut reader)? as usize;
                    if value as usize > HISTORY_SIZE {
                        return Err(ZgfxError::Distance(value));
                    }
                    if out.len() - start + length > MAX_SEGMENT_SIZE {
                        return Err(ZgfxError::SegmentTooLarge);
                    }
                    // Byte by byte: a match may overlap the bytes it makes.
                    let mut from = (self.index + HISTORY_SIZE - value as usize) % HISTORY_SIZE;
                    for _ in 0..length {
                        let byte = self.history[from];
                        from = if from + 1 == HISTORY_SIZE {
                            0
                        } else {
                            from + 1
                        };
                        self.remember(&[byte]);
                        out.push(byte);
                    }
                }
            }
            if out.len() - start > MAX_SEGMENT_SIZE {
                return Err(ZgfxError::SegmentTooLarge);
            }
        }
        Ok(())
    }

    fn token(reader: &mut BitReader<'_>) -> Result<super::tokens::Token, ZgfxError> {
        let mut prefix = 0u16;
        let mut length = 0u8;
        for token in TOKENS {
            while length < token.prefix_length {
                prefix = (prefix << 1) | reader.get(1).ok_or(ZgfxError::Truncated)? as u16;
                length += 1;
            }
            if prefix == token.prefix {
                return Ok(token);
            }
        }
        Err(ZgfxError::UnknownToken)
    }

    fn match_length(reader: &mut BitReader<'_>) -> Result<u32, ZgfxError> {
        let mut ones = 0u32;
        while reader.get(1).ok_or(ZgfxError::Truncated)? == 1 {
            ones += 1;
            // 65,535 is the longest a segment can hold: 2^15 + 15 bits.
            if ones > 14 {
                return Err(ZgfxError::SegmentTooLarge);
            }
        }
        if ones == 0 {
            return Ok(3);
        }
        let bits = ones + 1;
        let extra = reader.get(bits).ok_or(ZgfxError::Truncated)?;
        Ok((1 << bits) + extra)
    }
}
