//! Bit streams, most significant bit first, as RDP 8.0 compression
//! writes them.

/// Appends bits to a byte vector.
pub(super) struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    /// Bits not yet written, in the low `count` bits.
    pending: u64,
    count: u32,
}

impl<'a> BitWriter<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Self {
            out,
            pending: 0,
            count: 0,
        }
    }

    /// Writes the low `bits` bits of `value` (at most 32).
    #[inline]
    pub fn put(&mut self, value: u32, bits: u32) {
        debug_assert!(bits <= 32);
        if bits == 0 {
            return;
        }
        let mask = (1u64 << bits) - 1;
        self.pending = (self.pending << bits) | (u64::from(value) & mask);
        self.count += bits;
        while self.count >= 8 {
            self.count -= 8;
            self.out.push((self.pending >> self.count) as u8);
        }
        self.pending &= (1u64 << self.count) - 1;
    }

    /// Length of the output vector (whole bytes written, and what was
    /// there before).
    pub fn output_len(&self) -> usize {
        self.out.len()
    }

    /// Bits written so far past the last whole byte.
    pub fn partial_bits(&self) -> u32 {
        self.count
    }

    /// Pads with zero bits to the next byte boundary; returns how many.
    pub fn align(&mut self) -> u32 {
        let padding = (8 - self.count % 8) % 8;
        self.put(0, padding);
        padding
    }

    /// Bytes as they are (the writer must be aligned).
    pub fn bytes(&mut self, bytes: &[u8]) {
        debug_assert_eq!(self.count, 0);
        self.out.extend_from_slice(bytes);
    }
}

/// Reads bits from a slice, with a known number of valid bits.
pub(super) struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits.
    position: usize,
    /// Valid bits in `data`.
    end: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8], valid_bits: usize) -> Self {
        Self {
            data,
            position: 0,
            end: valid_bits,
        }
    }

    pub fn remaining(&self) -> usize {
        self.end - self.position
    }

    /// The next `bits` bits (at most 32), or `None` past the end.
    #[inline]
    pub fn get(&mut self, bits: u32) -> Option<u32> {
        let bits_usize = bits as usize;
        if self.remaining() < bits_usize {
            return None;
        }
        let mut value = 0u32;
        for _ in 0..bits {
            let byte = self.data[self.position / 8];
            let bit = (byte >> (7 - self.position % 8)) & 1;
            value = (value << 1) | u32::from(bit);
            self.position += 1;
        }
        Some(value)
    }

    /// Skips to the next byte boundary; returns the remaining whole bytes.
    pub fn align(&mut self) -> &'a [u8] {
        self.position = self.position.div_ceil(8) * 8;
        self.position = self.position.min(self.end);
        let start = self.position / 8;
        let stop = self.end / 8;
        &self.data[start..stop]
    }

    /// Moves past `count` bytes (the reader must be aligned and hold them).
    pub fn skip_bytes(&mut self, count: usize) {
        self.position += count * 8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reads_back() {
        let mut out = Vec::new();
        let mut writer = BitWriter::new(&mut out);
        writer.put(0b1, 1);
        writer.put(0b0101, 4);
        writer.put(0xABCDE, 20);
        writer.put(0xFFFF_FFFF, 32);
        let padding = writer.align();
        // 57 bits written: 7 of padding.
        assert_eq!(padding, 7);
        let bits = out.len() * 8 - padding as usize;
        let mut reader = BitReader::new(&out, bits);
        assert_eq!(reader.get(1), Some(1));
        assert_eq!(reader.get(4), Some(0b0101));
        assert_eq!(reader.get(20), Some(0xABCDE));
        assert_eq!(reader.get(32), Some(0xFFFF_FFFF));
        assert_eq!(reader.get(1), None);
    }
}
