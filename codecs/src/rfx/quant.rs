//! Scalar quantization of the sub-bands and the LL3 differencing of
//! MS-RDPRFX section 3.1.8.1.6; the quant table's wire form is
//! TS_RFX_CODEC_QUANT (2.2.2.1.5).
//!
//! A decoder multiplies each coefficient by 2^(q - 1), where q is the
//! band's value in TS_RFX_CODEC_QUANT (the extra -1 absorbs the 5
//! fractional bits of the colour conversion and the halved high bands).
//! The encoder divides by the same power of two, rounding to nearest:
//! flooring would turn every small negative coefficient into -1, which
//! both costs the entropy coder dearly and biases the picture.

use super::RfxQuant;
use super::dwt::COEFFICIENTS;

/// Sub-bands in wire order: first coefficient and count.
const BANDS: [(usize, usize); 10] = [
    (0, 1024),    // HL1
    (1024, 1024), // LH1
    (2048, 1024), // HH1
    (3072, 256),  // HL2
    (3328, 256),  // LH2
    (3584, 256),  // HH2
    (3840, 64),   // HL3
    (3904, 64),   // LH3
    (3968, 64),   // HH3
    (4032, 64),   // LL3
];

/// LL3 is the last band.
const LL3_START: usize = 4032;

impl RfxQuant {
    /// The shift of each band, in the wire order of `BANDS`.
    fn shifts(&self) -> [u32; 10] {
        [
            self.hl1, self.lh1, self.hh1, self.hl2, self.lh2, self.hh2, self.hl3, self.lh3,
            self.hh3, self.ll3,
        ]
        .map(|value| u32::from(value) - 1)
    }
}

/// Quantizes `coefficients` into `out` and replaces LL3 by its differences
/// (first value kept, then each minus the one before).
///
/// INVARIANT: the quant values were checked to lie in 6..=15.
pub(super) fn quantize(
    coefficients: &[i32; COEFFICIENTS],
    quant: &RfxQuant,
    out: &mut [i16; COEFFICIENTS],
) {
    for (&(start, count), shift) in BANDS.iter().zip(quant.shifts()) {
        let half = 1 << (shift - 1);
        // Dequantized values must fit the i16 that decoders hold them in.
        let limit = i32::from(i16::MAX) >> shift;
        let source = &coefficients[start..start + count];
        for (target, &value) in out[start..start + count].iter_mut().zip(source) {
            *target = ((value + half) >> shift).clamp(-limit, limit) as i16;
        }
    }
    // INVARIANT: |LL3| <= 1023 after the clamp, so differences fit.
    for index in (LL3_START + 1..COEFFICIENTS).rev() {
        out[index] -= out[index - 1];
    }
}

/// Undoes `quantize` as a decoder does (test decoder only).
pub(super) fn dequantize(values: &[i32; COEFFICIENTS], quant: &RfxQuant) -> [i64; COEFFICIENTS] {
    let mut out = values.map(i64::from);
    for index in LL3_START + 1..COEFFICIENTS {
        out[index] += out[index - 1];
    }
    for (&(start, count), shift) in BANDS.iter().zip(quant.shifts()) {
        for value in &mut out[start..start + count] {
            *value <<= shift;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_to_nearest_not_down() {
        // Shift 5 everywhere (q = 6): one step is 32.
        let quant = RfxQuant::uniform(6);
        let mut coefficients = [0i32; COEFFICIENTS];
        // -1.3, -0.4, -0.6, 0.4, 0.6, 2.5 steps, in HL1.
        let steps = [-1.3f64, -0.4, -0.6, 0.4, 0.6, 1.5, -1.5];
        for (value, step) in coefficients.iter_mut().zip(steps) {
            *value = (step * 32.0) as i32;
        }
        let mut out = [0i16; COEFFICIENTS];
        quantize(&coefficients, &quant, &mut out);
        // Ties (±1.5 steps) round up.
        assert_eq!(&out[..7], &[-1, 0, -1, 0, 1, 2, -1]);
    }

    #[test]
    fn ll3_is_sent_as_differences() {
        let quant = RfxQuant::uniform(6);
        let mut coefficients = [0i32; COEFFICIENTS];
        coefficients[LL3_START] = 320;
        coefficients[LL3_START + 1] = 352;
        coefficients[LL3_START + 2] = 320;
        let mut out = [0i16; COEFFICIENTS];
        quantize(&coefficients, &quant, &mut out);
        assert_eq!(&out[LL3_START..LL3_START + 4], &[10, 1, -1, -10]);
        let restored = dequantize(&out.map(i32::from), &quant);
        assert_eq!(&restored[LL3_START..LL3_START + 4], &[320, 352, 320, 0]);
    }

    #[test]
    fn huge_coefficients_clamp_to_what_decoders_hold() {
        let quant = RfxQuant::uniform(6);
        let coefficients = [i32::from(i16::MAX) * 4; COEFFICIENTS];
        let mut out = [0i16; COEFFICIENTS];
        quantize(&coefficients, &quant, &mut out);
        assert_eq!(out[0], 1023);
    }
}
