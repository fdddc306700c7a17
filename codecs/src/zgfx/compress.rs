//! The server's side of ZGFX: LZ77 with one hash probe per position over
//! the shared history, literals and matches in the fixed codes of
//! `tokens.rs`, and stretches that do not compress sent as unencoded
//! bytes (or a whole segment uncompressed).

use super::bits::BitWriter;
use super::tokens::{LITERAL_CODES, distance_token, length_code};
use super::{
    COMPRESSION_TYPE_RDP8, HISTORY_SIZE, MAX_SEGMENT_SIZE, PACKET_COMPRESSED, SEGMENTED_MULTIPART,
    SEGMENTED_SINGLE,
};
use crate::EncodeError;

/// log2 of the hash table's slots.
const HASH_BITS: u32 = 16;
/// The shortest match looked for: the hash covers four bytes.
const MIN_MATCH: usize = 4;
/// The most bytes one unencoded run carries (a 15-bit count).
const MAX_UNENCODED: usize = 0x7FFF;
/// Bits of a distance-0 token: the prefix "10001", five zero bits and a
/// 15-bit count.
const UNENCODED_HEADER_BITS: u32 = 5 + 5 + 15;
/// Every this many input bytes, a segment that has not shrunk to 97% of its
/// size so far stops compressing and goes as it is: data that does not
/// compress (photos, video already encoded) costs a fraction of a full
/// search.
const CHECKPOINT: usize = 4096;

/// How much the window may grow past the history before the oldest bytes
/// are dropped: moving the history is paid once per this many bytes.
const SLACK: usize = 1 << 20;

/// A ZGFX compressor: one per graphics channel, since the client keeps one
/// history per channel. Holds at most the history plus 1 MiB of window and
/// a 256 KiB hash table.
pub struct ZgfxCompressor {
    /// The last bytes sent (up to `max_distance` of them are referenced),
    /// then the segment being compressed.
    window: Vec<u8>,
    /// Per hash of four bytes, the window position after the last place
    /// they were seen (0: never).
    head: Vec<u32>,
    /// The furthest back a match may reach.
    max_distance: usize,
    /// Whether to look for matches at all.
    compress: bool,
}

impl std::fmt::Debug for ZgfxCompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZgfxCompressor")
            .field("window", &self.window.len())
            .field("max_distance", &self.max_distance)
            .field("compress", &self.compress)
            .finish_non_exhaustive()
    }
}

impl Default for ZgfxCompressor {
    fn default() -> Self {
        Self::new()
    }
}

impl ZgfxCompressor {
    /// A compressor that may reach back over the whole history.
    pub fn new() -> Self {
        Self::with_max_distance(HISTORY_SIZE)
    }

    /// A compressor whose matches reach back at most `max_distance` bytes
    /// (capped at the history's size); less memory, fewer matches.
    pub fn with_max_distance(max_distance: usize) -> Self {
        Self {
            window: Vec::new(),
            head: vec![0; 1 << HASH_BITS],
            max_distance: max_distance.clamp(1, HISTORY_SIZE),
            compress: true,
        }
    }

    /// A "compressor" that sends every segment uncompressed, as FreeRDP's
    /// server does: no history kept, no CPU spent.
    pub fn uncompressed() -> Self {
        Self {
            window: Vec::new(),
            head: Vec::new(),
            max_distance: 1,
            compress: false,
        }
    }

    /// Appends `data` to `out` as one RDP_SEGMENTED_DATA: a single segment
    /// up to 65,535 bytes, else multipart. Fails only for data of 4 GiB or
    /// more, which the format cannot count.
    pub fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let total = u32::try_from(data.len()).map_err(|_| EncodeError::Unsupported)?;
        if data.len() <= MAX_SEGMENT_SIZE {
            out.push(SEGMENTED_SINGLE);
            self.segment(data, out);
            return Ok(());
        }
        let count = data.len().div_ceil(MAX_SEGMENT_SIZE);
        let count = u16::try_from(count).map_err(|_| EncodeError::Unsupported)?;
        out.push(SEGMENTED_MULTIPART);
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&total.to_le_bytes());
        for chunk in data.chunks(MAX_SEGMENT_SIZE) {
            let size_at = out.len();
            out.extend_from_slice(&[0; 4]);
            self.segment(chunk, out);
            // INVARIANT: a segment is at most 65,535 bytes plus its header
            // and the cost of sending it unencoded, far below 4 GiB.
            let size = (out.len() - size_at - 4) as u32;
            out[size_at..size_at + 4].copy_from_slice(&size.to_le_bytes());
        }
        Ok(())
    }

    /// One RDP8_BULK_ENCODED_DATA of at most 65,535 bytes: compressed when
    /// that is smaller, else the bytes themselves. Either way they enter
    /// the history, as they do on the client.
    fn segment(&mut self, data: &[u8], out: &mut Vec<u8>) {
        debug_assert!(data.len() <= MAX_SEGMENT_SIZE);
        let header_at = out.len();
        out.push(COMPRESSION_TYPE_RDP8 | PACKET_COMPRESSED);
        if !self.compress || data.len() < MIN_MATCH {
            self.append_history(data);
            out[header_at] = COMPRESSION_TYPE_RDP8;
            out.extend_from_slice(data);
            return;
        }
        let start = self.append_history(data);
        let compressed = self.encode(start, out);
        // The header byte aside, no smaller than the data: send it as it is.
        if !compressed || out.len() - header_at > data.len() {
            out.truncate(header_at);
            out.push(COMPRESSION_TYPE_RDP8);
            out.extend_from_slice(data);
        }
    }

    /// Adds `data` to the window, dropping bytes no match may reach;
    /// returns where `data` starts in the window.
    fn append_history(&mut self, data: &[u8]) -> usize {
        if !self.compress {
            return 0;
        }
        let keep = self.max_distance;
        if self.window.len() + data.len() > keep + SLACK {
            let drop = self.window.len().saturating_sub(keep);
            self.window.drain(..drop);
            let drop = drop as u32;
            for slot in &mut self.head {
                *slot = slot.saturating_sub(drop);
            }
        }
        let start = self.window.len();
        self.window.extend_from_slice(data);
        start
    }

    #[inline]
    fn hash(bytes: [u8; 4]) -> usize {
        (u32::from_le_bytes(bytes).wrapping_mul(0x9E37_79B1) >> (32 - HASH_BITS)) as usize
    }

    /// Encodes the window from `start` to its end as tokens, then the
    /// padding and the padding count; returns false, leaving `out` for the
    /// caller to cut, when a checkpoint finds the data not compressing.
    fn encode(&mut self, start: usize, out: &mut Vec<u8>) -> bool {
        let end = self.window.len();
        let out_start = out.len();
        let mut writer = BitWriter::new(out);
        let mut checkpoint = start + CHECKPOINT;
        let mut literals_from = start;
        let mut position = start;
        // Positions without a match in a row: past 32 the search strides
        // (by misses / 32), so data that does not compress costs little.
        let mut misses = 0usize;
        while position + MIN_MATCH <= end {
            if position >= checkpoint {
                checkpoint = position + CHECKPOINT;
                // Bytes so far, with pending literals at a byte each.
                let estimate = writer.output_len() - out_start + (position - literals_from);
                if estimate * 100 >= (position - start) * 97 {
                    return false;
                }
            }
            let window = &self.window;
            let key = [
                window[position],
                window[position + 1],
                window[position + 2],
                window[position + 3],
            ];
            let slot = Self::hash(key);
            let candidate = self.head[slot] as usize;
            // INVARIANT: the window is at most the history plus 1 MiB plus a
            // segment, well within u32.
            self.head[slot] = (position + 1) as u32;
            let mut length = 0;
            if candidate != 0 {
                let from = candidate - 1;
                let distance = position - from;
                if distance <= self.max_distance {
                    let limit = (end - position).min(MAX_SEGMENT_SIZE);
                    length = common_length(&window[from..], &window[position..position + limit]);
                }
                if length >= MIN_MATCH && !worth_it(distance, &window[position..position + length])
                {
                    length = 0;
                }
                if length >= MIN_MATCH {
                    Self::flush_literals(&mut writer, &window[literals_from..position]);
                    write_match(&mut writer, distance as u32, length as u32);
                    // Index a few positions inside the match: enough for
                    // repeats, cheap for long runs.
                    let stop = (position + length).min(end - MIN_MATCH + 1);
                    let from = (position + 1).max(stop.saturating_sub(8));
                    for inside in from..stop {
                        let key = [
                            window[inside],
                            window[inside + 1],
                            window[inside + 2],
                            window[inside + 3],
                        ];
                        self.head[Self::hash(key)] = (inside + 1) as u32;
                    }
                    position += length;
                    literals_from = position;
                    misses = 0;
                    continue;
                }
            }
            misses += 1;
            position += 1 + (misses >> 5).min(64);
        }
        Self::flush_literals(&mut writer, &self.window[literals_from..end]);
        let padding = writer.align();
        out.push(padding as u8);
        true
    }

    /// Literals, or unencoded bytes where those are shorter.
    fn flush_literals(writer: &mut BitWriter<'_>, literals: &[u8]) {
        for run in literals.chunks(MAX_UNENCODED) {
            let coded: u32 = run
                .iter()
                .map(|&byte| u32::from(LITERAL_CODES[usize::from(byte)].1))
                .sum();
            let after_header = writer.partial_bits() + UNENCODED_HEADER_BITS;
            let unencoded =
                UNENCODED_HEADER_BITS + (8 - after_header % 8) % 8 + 8 * run.len() as u32;
            if unencoded < coded {
                writer.put(0b10001, 5);
                writer.put(0, 5);
                writer.put(run.len() as u32, 15);
                writer.align();
                writer.bytes(run);
            } else {
                for &byte in run {
                    let (code, bits) = LITERAL_CODES[usize::from(byte)];
                    writer.put(u32::from(code), u32::from(bits));
                }
            }
        }
    }
}

/// How many leading bytes of `candidate` equal those of `current` (the
/// candidate may run into `current`: an overlapping match).
#[inline]
fn common_length(candidate: &[u8], current: &[u8]) -> usize {
    let mut length = 0;
    for (chunk_a, chunk_b) in candidate.chunks_exact(8).zip(current.chunks_exact(8)) {
        let a = u64::from_le_bytes(chunk_a.try_into().unwrap_or([0; 8]));
        let b = u64::from_le_bytes(chunk_b.try_into().unwrap_or([0; 8]));
        let differ = a ^ b;
        if differ != 0 {
            return length + (differ.trailing_zeros() / 8) as usize;
        }
        length += 8;
    }
    length
        + candidate[length..]
            .iter()
            .zip(&current[length..])
            .take_while(|(a, b)| a == b)
            .count()
}

fn match_bits(distance: u32, length: u32) -> u32 {
    let token = distance_token(distance);
    u32::from(token.prefix_length) + u32::from(token.value_bits) + length_code(length).1
}

/// A far match of a few cheap literals can cost more than the literals.
fn worth_it(distance: usize, bytes: &[u8]) -> bool {
    if bytes.len() >= 8 {
        return true;
    }
    let literal_bits: u32 = bytes
        .iter()
        .map(|&byte| u32::from(LITERAL_CODES[usize::from(byte)].1))
        .sum();
    match_bits(distance as u32, bytes.len() as u32) < literal_bits
}

fn write_match(writer: &mut BitWriter<'_>, distance: u32, length: u32) {
    let token = distance_token(distance);
    writer.put(u32::from(token.prefix), u32::from(token.prefix_length));
    writer.put(distance - token.base, u32::from(token.value_bits));
    let (code, bits) = length_code(length);
    writer.put(code, bits);
}
