//! Static virtual channel framing: CHANNEL_PDU_HEADER, chunking and
//! reassembly ([MS-RDPBCGR 2.2.6.1](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/f125c65e-6901-43c3-8071-d7d5aaee7ae4)).

use bytes::BufMut;

use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;

pub const CHANNEL_FLAG_FIRST: u32 = 0x01;
pub const CHANNEL_FLAG_LAST: u32 = 0x02;
pub const CHANNEL_FLAG_SHOW_PROTOCOL: u32 = 0x10;
/// The chunk size every client accepts (CHANNEL_CHUNK_LENGTH), and the
/// one the server sends in.
pub const DEFAULT_CHUNK_SIZE: usize = 1600;

/// Reassembles one channel's chunks into messages, refusing messages whose
/// declared length exceeds `limit`.
#[derive(Debug, Default)]
pub struct Reassembler {
    buffer: Vec<u8>,
    expected: usize,
    in_progress: bool,
}

impl Reassembler {
    /// Bytes this reassembler holds on to.
    pub fn held(&self) -> usize {
        self.buffer.capacity()
    }

    /// Feeds one chunk (header included); returns a whole message when the
    /// last chunk arrives.
    pub fn push(&mut self, chunk: &[u8], limit: usize) -> Result<Option<Vec<u8>>, DecodeError> {
        let mut cursor = ReadCursor::new(chunk, "channel pdu");
        let length = cursor.read_u32_le()? as usize;
        let flags = cursor.read_u32_le()?;
        let data = cursor.rest();
        if flags & CHANNEL_FLAG_FIRST != 0 {
            if length > limit {
                return Err(DecodeError::TooLarge {
                    context: "channel message",
                    size: length,
                    limit,
                });
            }
            self.buffer.clear();
            self.expected = length;
            self.in_progress = true;
        } else if !self.in_progress {
            return Err(cursor.invalid("flags", "continuation without a first chunk"));
        }
        if self.buffer.len() + data.len() > self.expected {
            return Err(cursor.invalid("length", "chunks exceed the declared total"));
        }
        self.buffer.extend_from_slice(data);
        if flags & CHANNEL_FLAG_LAST == 0 {
            return Ok(None);
        }
        self.in_progress = false;
        if self.buffer.len() != self.expected {
            return Err(cursor.invalid("length", "chunks fall short of the declared total"));
        }
        Ok(Some(std::mem::take(&mut self.buffer)))
    }
}

/// Splits `message` into chunks of at most `chunk_size` data bytes, each
/// with its CHANNEL_PDU_HEADER, and hands each to `emit`.
pub fn chunk(message: &[u8], chunk_size: usize, extra_flags: u32, mut emit: impl FnMut(&[u8])) {
    let chunk_size = chunk_size.max(1);
    let count = message.len().div_ceil(chunk_size).max(1);
    let mut pdu = Vec::with_capacity(chunk_size.min(message.len()) + 8);
    for index in 0..count {
        let data = &message[index * chunk_size..((index + 1) * chunk_size).min(message.len())];
        let mut flags = extra_flags;
        if index == 0 {
            flags |= CHANNEL_FLAG_FIRST;
        }
        if index + 1 == count {
            flags |= CHANNEL_FLAG_LAST;
        }
        pdu.clear();
        pdu.put_u32_le(message.len() as u32);
        pdu.put_u32_le(flags);
        pdu.put_slice(data);
        emit(&pdu);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_reassemble() {
        for size in [0usize, 1, 1600, 1601, 5000] {
            let message: Vec<u8> = (0..size).map(|i| i as u8).collect();
            let mut reassembler = Reassembler::default();
            let mut result = None;
            chunk(&message, 1600, 0, |pdu| {
                assert!(pdu.len() <= 1608);
                if let Some(whole) = reassembler.push(pdu, 1 << 20).unwrap() {
                    result = Some(whole);
                }
            });
            assert_eq!(result.as_deref(), Some(&message[..]));
        }
    }

    #[test]
    fn bad_chunks_are_errors() {
        let mut reassembler = Reassembler::default();
        // A declared total over the cap.
        assert!(matches!(
            reassembler.push(&[0, 0, 0x10, 0, 3, 0, 0, 0], 1024),
            Err(DecodeError::TooLarge { .. })
        ));
        // A continuation without a first chunk.
        assert!(
            reassembler
                .push(&[4, 0, 0, 0, 2, 0, 0, 0, 1, 2], 1024)
                .is_err()
        );
        // More data than declared.
        assert!(
            reassembler
                .push(&[1, 0, 0, 0, 3, 0, 0, 0, 1, 2], 1024)
                .is_err()
        );
        // Less data than declared at the last chunk.
        assert!(
            reassembler
                .push(&[4, 0, 0, 0, 3, 0, 0, 0, 1, 2], 1024)
                .is_err()
        );
        assert!(reassembler.push(&[4, 0, 0], 1024).is_err());
    }
}
