//! Bounds-checked reading of wire bytes.
//!
//! Every parser in the core reads through [`ReadCursor`], so a length from the
//! wire is always checked against the bytes that are really there before use.
//! Writing goes through [`bytes::BufMut`] on a caller-owned `Vec<u8>`.

use crate::wire::error::DecodeError;

/// A read position over a borrowed byte slice; every read checks the length first.
#[derive(Debug, Clone)]
pub struct ReadCursor<'a> {
    buf: &'a [u8],
    pos: usize,
    context: &'static str,
}

impl<'a> ReadCursor<'a> {
    /// `context` names the structure being parsed; it appears in errors.
    pub fn new(buf: &'a [u8], context: &'static str) -> Self {
        Self {
            buf,
            pos: 0,
            context,
        }
    }

    pub fn context(&self) -> &'static str {
        self.context
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread bytes, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Fails unless at least `needed` bytes remain.
    pub fn ensure(&self, needed: usize) -> Result<(), DecodeError> {
        if self.remaining() < needed {
            return Err(DecodeError::Truncated {
                context: self.context,
                needed,
                available: self.remaining(),
            });
        }
        Ok(())
    }

    pub fn read_slice(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        self.ensure(len)?;
        let slice = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(slice)
    }

    pub fn read_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let slice = self.read_slice(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    pub fn skip(&mut self, len: usize) -> Result<(), DecodeError> {
        self.read_slice(len).map(|_| ())
    }

    pub fn peek_u8(&self) -> Result<u8, DecodeError> {
        self.ensure(1)?;
        Ok(self.buf[self.pos])
    }

    pub fn read_u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.read_array::<1>()?[0])
    }

    pub fn read_u16_le(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.read_array()?))
    }

    pub fn read_u16_be(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.read_array()?))
    }

    pub fn read_u32_le(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.read_array()?))
    }

    pub fn read_i16_le(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_le_bytes(self.read_array()?))
    }

    pub fn read_u64_le(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.read_array()?))
    }

    /// An error about a field's value, tagged with this cursor's context.
    pub fn invalid(&self, field: &'static str, reason: &'static str) -> DecodeError {
        DecodeError::InvalidField {
            context: self.context,
            field,
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounds_checked() {
        let mut cursor = ReadCursor::new(&[1, 2, 3], "test");
        assert_eq!(cursor.read_u16_le().unwrap(), 0x0201);
        assert!(matches!(
            cursor.read_u16_be(),
            Err(DecodeError::Truncated {
                needed: 2,
                available: 1,
                ..
            })
        ));
        assert_eq!(cursor.read_u8().unwrap(), 3);
        assert!(cursor.read_slice(usize::MAX).is_err());
        assert!(cursor.is_empty());
    }
}
