//! RLGR1 and RLGR3 entropy coding of one component's 4,096 coefficients:
//! [MS-RDPRFX 3.1.8.1.7](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdprfx/0a20d8cf-588a-4194-9133-35a47e2766f6),
//! following the pseudocode of 3.1.8.1.7.3. Bits are written most
//! significant first.

use super::RlgrMode;

/// Parameters are kept scaled by 2^LSGR so they adapt in small steps.
const LSGR: u32 = 3;
const KP_MAX: u32 = 80;
/// Adaptation steps of 3.1.8.1.7.1 (RLGR1) and 3.1.8.1.7.2 (RLGR3).
const UP_GR: u32 = 4;
const DN_GR: u32 = 6;
const UQ_GR: u32 = 3;
const DQ_GR: u32 = 3;
/// Both kP and kRP start at 8, that is k = kR = 1.
const INITIAL_PARAM: u32 = 8;

/// Accumulates bits MSB-first and appends whole 32-bit words to `out`.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    /// Pending bits are the low `pending` bits; bits above are stale.
    accumulator: u64,
    pending: u32,
}

impl<'a> BitWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Self {
            out,
            accumulator: 0,
            pending: 0,
        }
    }

    /// Writes the low `count` bits of `value`; `count` is at most 32 and
    /// `value` has no bits above them.
    #[inline(always)]
    fn put(&mut self, value: u32, count: u32) {
        debug_assert!(count <= 32 && (count == 32 || value >> count == 0));
        self.accumulator = (self.accumulator << count) | u64::from(value);
        self.pending += count;
        if self.pending >= 32 {
            self.pending -= 32;
            let word = (self.accumulator >> self.pending) as u32;
            self.out.extend_from_slice(&word.to_be_bytes());
        }
    }

    /// Writes `count` one bits.
    #[inline(always)]
    fn put_ones(&mut self, mut count: u32) {
        while count >= 32 {
            self.put(u32::MAX, 32);
            count -= 32;
        }
        if count > 0 {
            self.put((1 << count) - 1, count);
        }
    }

    /// Pads the last byte with zero bits.
    fn finish(self) {
        let bytes = self.pending.div_ceil(8);
        let aligned = self.accumulator << (bytes * 8 - self.pending);
        for index in (0..bytes).rev() {
            self.out.push((aligned >> (index * 8)) as u8);
        }
    }
}

/// Adds to an adaptive parameter, clamped to [0, KP_MAX].
#[inline(always)]
fn raise(param: &mut u32, step: u32) {
    *param = (*param + step).min(KP_MAX);
}

#[inline(always)]
fn lower(param: &mut u32, step: u32) {
    *param = param.saturating_sub(step);
}

/// How kRP moves after a GR code, by its quotient (capped at KP_MAX): down
/// 2 for 0, not at all for 1, up by the quotient above. A table rather
/// than a match: the quotient is data, and the compiler turned the match
/// into branches that are often mispredicted.
const KRP_STEPS: [i8; KP_MAX as usize + 1] = {
    let mut steps = [0i8; KP_MAX as usize + 1];
    steps[0] = -2;
    let mut quotient = 2;
    while quotient <= KP_MAX as usize {
        steps[quotient] = quotient as i8;
        quotient += 1;
    }
    steps
};

/// Golomb-Rice code of `value` with parameter kR = krp >> LSGR: the
/// quotient in unary (ones closed by a zero), then kR remainder bits; then
/// the low `suffix_bits` bits of `suffix`, which RLGR3 sends straight after.
#[inline(always)]
fn code_gr(writer: &mut BitWriter<'_>, krp: &mut u32, value: u32, suffix: u32, suffix_bits: u32) {
    let kr = *krp >> LSGR;
    let quotient = value >> kr;
    let length = quotient + 1 + kr;
    if length + suffix_bits <= 32 {
        // The common case in one write: ones, the closing zero, remainder,
        // suffix. With `value` = quotient * 2^kR + remainder, the code
        // (2^quotient - 1) * 2^(kR + 1) + remainder is
        // (2^(quotient + 1) - 2 - quotient) * 2^kR + value: one shift
        // fewer than masking out the remainder.
        let code = (((2u64 << quotient) - 2 - u64::from(quotient)) << kr) + u64::from(value);
        writer.put(
            ((code << suffix_bits) | u64::from(suffix)) as u32,
            length + suffix_bits,
        );
    } else {
        let remainder = value & ((1 << kr) - 1);
        writer.put_ones(quotient);
        writer.put(0, 1);
        writer.put(remainder, kr);
        writer.put(suffix, suffix_bits);
    }
    let step = i32::from(KRP_STEPS[quotient.min(KP_MAX) as usize]);
    *krp = (*krp as i32 + step).clamp(0, KP_MAX as i32) as u32;
}

/// 2 * magnitude - sign, the mapping of signed values to GR inputs.
#[inline(always)]
fn two_magnitude_sign(value: i16) -> u32 {
    let value = i32::from(value);
    if value < 0 {
        (-2 * value - 1) as u32
    } else {
        (2 * value) as u32
    }
}

/// How many values at the start of `data` are zero, eight at a time (the
/// tiles of flat areas are almost all zeros).
#[inline(always)]
fn leading_zeros(data: &[i16]) -> usize {
    let mut chunks = data.chunks_exact(8);
    let mut count = 0;
    for chunk in &mut chunks {
        if chunk != [0; 8] {
            return count + chunk.iter().take_while(|&&value| value == 0).count();
        }
        count += 8;
    }
    count
        + chunks
            .remainder()
            .iter()
            .take_while(|&&value| value == 0)
            .count()
}

/// Appends the RLGR encoding of `data` to `out`, padded to a whole byte.
///
/// A run of zeros that reaches the end of `data` takes in every remaining
/// zero and still closes, as every run does, with a terminating value: a
/// placeholder of magnitude 1 that lies past the end, which decoders never
/// store, as with the zero that completes a final RLGR3 pair. Ending the
/// run one zero early instead, so the terminator lands on the last
/// coefficient, would turn that zero (LL3's last difference, zero in every
/// flat area) into a 1: a step of one level in the tile's bottom-right
/// corner.
pub(super) fn encode(mode: RlgrMode, data: &[i16], out: &mut Vec<u8>) {
    // One loop per mode, so the mode is not tested per value and each
    // loop keeps its state in registers.
    match mode {
        RlgrMode::Rlgr1 => encode_in::<false>(data, out),
        RlgrMode::Rlgr3 => encode_in::<true>(data, out),
    }
}

/// [`encode`] in RLGR3 if `RLGR3`, else in RLGR1.
fn encode_in<const RLGR3: bool>(data: &[i16], out: &mut Vec<u8>) {
    let mut writer = BitWriter::new(out);
    let mut kp = INITIAL_PARAM;
    let mut krp = INITIAL_PARAM;
    let mut at = 0;
    while at < data.len() {
        let k = kp >> LSGR;
        if k != 0 {
            // Run-length mode: a run of zeros, then one nonzero value (or,
            // at the end, the placeholder).
            let zeros_found = leading_zeros(&data[at..]);
            at += zeros_found;
            let mut zeros = zeros_found as u32;
            let mut k = k;
            while zeros >= 1 << k {
                writer.put(0, 1);
                zeros -= 1 << k;
                raise(&mut kp, UP_GR);
                k = kp >> LSGR;
            }
            // Past the end: the placeholder, sign 0 and magnitude 1.
            let value = data.get(at).copied().unwrap_or(1);
            at += 1;
            let magnitude = u32::from(value.unsigned_abs());
            // Closing one bit, the rest of the run in k bits, the sign.
            writer.put((1 << (k + 1)) | (zeros << 1) | u32::from(value < 0), k + 2);
            code_gr(&mut writer, &mut krp, magnitude.saturating_sub(1), 0, 0);
            lower(&mut kp, DN_GR);
        } else if !RLGR3 {
            let value = two_magnitude_sign(data[at]);
            at += 1;
            code_gr(&mut writer, &mut krp, value, 0, 0);
            // kp < 8 in this mode (k is 0), so raising it cannot pass
            // KP_MAX: only the floor needs a clamp.
            kp = if value == 0 {
                kp + UQ_GR
            } else {
                kp.saturating_sub(DQ_GR)
            };
        } else {
            // RLGR3 codes values in pairs: the GR code of their sum, then
            // the first in as many bits as the sum needs. A pair that would
            // start at the last value is completed with a zero.
            let (first_value, second_value) = (data[at], data.get(at + 1).copied().unwrap_or(0));
            let (first, second) = (
                two_magnitude_sign(first_value),
                two_magnitude_sign(second_value),
            );
            at += 2;
            let sum = first + second;
            code_gr(
                &mut writer,
                &mut krp,
                sum,
                first,
                u32::BITS - sum.leading_zeros(),
            );
            // Down if both are nonzero, up if both are zero. As in RLGR1,
            // kp < 8 here, so only the floor needs a clamp.
            kp = if sum == 0 {
                kp + 2 * UQ_GR
            } else if (first_value != 0) & (second_value != 0) {
                kp.saturating_sub(2 * DQ_GR)
            } else {
                kp
            };
        }
    }
    writer.finish();
}

/// Why RLGR data does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RlgrError(pub &'static str);

struct BitReader<'a> {
    data: &'a [u8],
    position: usize,
}

impl BitReader<'_> {
    fn bit(&mut self) -> Result<u32, RlgrError> {
        let byte = self
            .data
            .get(self.position / 8)
            .ok_or(RlgrError("rlgr data ends early"))?;
        let bit = (byte >> (7 - self.position % 8)) & 1;
        self.position += 1;
        Ok(u32::from(bit))
    }

    fn bits(&mut self, count: u32) -> Result<u32, RlgrError> {
        let mut value = 0;
        for _ in 0..count {
            value = (value << 1) | self.bit()?;
        }
        Ok(value)
    }
}

/// Largest GR value a decoder accepts: twice the largest i16 magnitude.
const MAX_GR_VALUE: u32 = 1 << 17;

fn decode_gr(reader: &mut BitReader<'_>, krp: &mut u32) -> Result<u32, RlgrError> {
    let kr = *krp >> LSGR;
    let mut quotient = 0u32;
    while reader.bit()? == 1 {
        quotient += 1;
        if quotient > MAX_GR_VALUE {
            return Err(RlgrError("rlgr code too long"));
        }
    }
    let value = (quotient << kr) | reader.bits(kr)?;
    if quotient == 0 {
        lower(krp, 2);
    } else if quotient > 1 {
        raise(krp, quotient);
    }
    if value > MAX_GR_VALUE {
        return Err(RlgrError("rlgr value out of range"));
    }
    Ok(value)
}

fn from_two_magnitude_sign(value: u32) -> i32 {
    if value & 1 == 1 {
        -((value as i32 + 1) >> 1)
    } else {
        (value >> 1) as i32
    }
}

/// Decodes exactly `output.len()` values (a test decoder: it checks every
/// length and never panics). Only the second value of a final RLGR3 pair
/// may lie beyond the end; it must be zero. The data may hold at most the
/// padding of its last byte after the values.
pub(super) fn decode(mode: RlgrMode, data: &[u8], output: &mut [i32]) -> Result<(), RlgrError> {
    let mut reader = BitReader { data, position: 0 };
    let mut kp = INITIAL_PARAM;
    let mut krp = INITIAL_PARAM;
    let mut at = 0;
    while at < output.len() {
        let mut k = kp >> LSGR;
        if k != 0 {
            let mut run = 0usize;
            while reader.bit()? == 0 {
                run += 1 << k;
                raise(&mut kp, UP_GR);
                k = kp >> LSGR;
            }
            run += reader.bits(k)? as usize;
            let negative = reader.bit()? == 1;
            let magnitude = decode_gr(&mut reader, &mut krp)? as i32 + 1;
            lower(&mut kp, DN_GR);
            if at + run > output.len() {
                return Err(RlgrError("rlgr run beyond the coefficients"));
            }
            output[at..at + run].fill(0);
            at += run;
            // A run that fills the output ends with a placeholder, not
            // stored.
            if let Some(slot) = output.get_mut(at) {
                *slot = if negative { -magnitude } else { magnitude };
            }
            at += 1;
        } else if mode == RlgrMode::Rlgr1 {
            let value = decode_gr(&mut reader, &mut krp)?;
            output[at] = from_two_magnitude_sign(value);
            at += 1;
            if value == 0 {
                raise(&mut kp, UQ_GR);
            } else {
                lower(&mut kp, DQ_GR);
            }
        } else {
            let sum = decode_gr(&mut reader, &mut krp)?;
            let first = reader.bits(u32::BITS - sum.leading_zeros())?;
            let second = sum
                .checked_sub(first)
                .ok_or(RlgrError("rlgr3 pair does not add up"))?;
            output[at] = from_two_magnitude_sign(first);
            match output.get_mut(at + 1) {
                Some(slot) => *slot = from_two_magnitude_sign(second),
                None if second == 0 => {}
                None => return Err(RlgrError("rlgr3 pair beyond the coefficients")),
            }
            at += 2;
            if first != 0 && second != 0 {
                lower(&mut kp, 2 * DQ_GR);
            } else if first == 0 && second == 0 {
                raise(&mut kp, 2 * UQ_GR);
            }
        }
    }
    if reader.position.div_ceil(8) != data.len() {
        return Err(RlgrError("rlgr data longer than its values"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(mode: RlgrMode, data: &[i16]) {
        let mut encoded = Vec::new();
        encode(mode, data, &mut encoded);
        let mut decoded = vec![0i32; data.len()];
        decode(mode, &encoded, &mut decoded).expect("decodes");
        for (index, (&want, &got)) in data.iter().zip(&decoded).enumerate() {
            assert_eq!(i32::from(want), got, "{mode:?} value {index}");
        }
    }

    struct Lcg(u32);

    impl Lcg {
        fn next(&mut self) -> u32 {
            self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            self.0 >> 8
        }
    }

    fn both_modes(data: &[i16]) {
        round_trip(RlgrMode::Rlgr1, data);
        round_trip(RlgrMode::Rlgr3, data);
    }

    #[test]
    fn all_zeros_and_single_values() {
        both_modes(&[0; 4096]);
        both_modes(&[0]);
        both_modes(&[5]);
        both_modes(&[-1, 0]);
        let mut data = [0i16; 4096];
        data[4095] = -3;
        both_modes(&data);
        data[0] = 1;
        both_modes(&data);
        // A flat tile: one LL3 value, then zeros to the end. The run that
        // reaches the end decodes as zeros, the last one included.
        let mut flat = [0i16; 4096];
        flat[4032] = -128;
        both_modes(&flat);
    }

    #[test]
    fn a_run_past_the_end_is_rejected() {
        // Eight zeros and a value, for room for only four values.
        let mut encoded = Vec::new();
        encode(RlgrMode::Rlgr1, &[0, 0, 0, 0, 0, 0, 0, 0, 7], &mut encoded);
        let mut decoded = [0i32; 4];
        assert_eq!(
            decode(RlgrMode::Rlgr1, &encoded, &mut decoded),
            Err(RlgrError("rlgr run beyond the coefficients"))
        );
    }

    #[test]
    fn large_magnitudes() {
        both_modes(&[i16::MAX, i16::MIN + 1, 0, i16::MAX, -1, 1, i16::MIN + 1]);
        let mut random = Lcg(7);
        let data: Vec<i16> = (0..4096)
            .map(|_| (random.next() % 65_535) as i32 - 32_767)
            .map(|value| value as i16)
            .collect();
        both_modes(&data);
    }

    #[test]
    fn long_runs_and_sparse_values() {
        let mut random = Lcg(99);
        for density in [2, 10, 100, 1000] {
            let data: Vec<i16> = (0..4096)
                .map(|_| {
                    if random.next() % density == 0 {
                        (random.next() % 41) as i16 - 20
                    } else {
                        0
                    }
                })
                .collect();
            both_modes(&data);
        }
        let mut data = vec![0i16; 4096];
        data[2000] = 7;
        both_modes(&data);
    }

    #[test]
    fn small_dense_values() {
        let mut random = Lcg(3);
        for length in [1, 2, 3, 17, 4095, 4096] {
            let data: Vec<i16> = (0..length)
                .map(|_| (random.next() % 7) as i16 - 3)
                .collect();
            both_modes(&data);
        }
    }

    #[test]
    fn decoder_rejects_garbage() {
        let mut random = Lcg(5);
        let mut output = vec![0i32; 4096];
        for length in 0..200 {
            let data: Vec<u8> = (0..length).map(|_| random.next() as u8).collect();
            for mode in [RlgrMode::Rlgr1, RlgrMode::Rlgr3] {
                // Must return, never panic; most garbage is an error.
                let _ = decode(mode, &data, &mut output);
            }
        }
        assert!(decode(RlgrMode::Rlgr1, &[], &mut output).is_err());
    }
}
