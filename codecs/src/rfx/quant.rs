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
use super::dwt::{BANDS, Bands, COEFFICIENTS};

/// LL3 is the last band.
const LL3_START: usize = BANDS[9].0;

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

/// Quantizes the transform's sub-bands as they come ([`Bands`]) into one
/// component's coefficients; [`Quantizer::finish`] then replaces LL3 by its
/// differences.
pub(super) struct Quantizer<'a> {
    shifts: [u32; 10],
    out: &'a mut [i16; COEFFICIENTS],
}

impl<'a> Quantizer<'a> {
    /// INVARIANT: the quant values were checked to lie in 6..=15.
    pub(super) fn new(quant: &RfxQuant, out: &'a mut [i16; COEFFICIENTS]) -> Self {
        Self {
            shifts: quant.shifts(),
            out,
        }
    }

    /// The slots of one band row.
    fn row(&mut self, band: usize, row: usize, width: usize) -> (&mut [i16], u32) {
        let start = BANDS[band].0 + row * width;
        (&mut self.out[start..start + width], self.shifts[band])
    }

    /// Replaces LL3 by its differences (first value kept, then each minus
    /// the one before).
    pub(super) fn finish(self) {
        // INVARIANT: |LL3| <= 1023 after the clamp, so differences fit.
        for index in (LL3_START + 1..COEFFICIENTS).rev() {
            self.out[index] -= self.out[index - 1];
        }
    }
}

impl Bands for Quantizer<'_> {
    fn narrow(&mut self, band: usize, row: usize, values: &[i16]) {
        let (target, shift) = self.row(band, row, values.len());
        // INVARIANT: shift is 5..=14, so half fits; the values are at most
        // 13830 (see dwt), so adding half does not overflow, and the result
        // is at most 13830 / 32 + 1 = 433: dequantized, it fits the i16
        // decoders hold it in without the clamp the wide bands need.
        let half = 1i16 << (shift - 1);
        for (target, &value) in target.iter_mut().zip(values) {
            *target = (value + half) >> shift;
        }
    }

    fn wide(&mut self, band: usize, row: usize, values: &[i32]) {
        let (target, shift) = self.row(band, row, values.len());
        let half = 1 << (shift - 1);
        let limit = i32::from(i16::MAX) >> shift;
        for (target, &value) in target.iter_mut().zip(values) {
            *target = ((value + half) >> shift).clamp(-limit, limit) as i16;
        }
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
        // -1.3, -0.4, -0.6, 0.4, 0.6, 1.5, -1.5 steps, in HL1 and HL3.
        let steps = [-1.3f64, -0.4, -0.6, 0.4, 0.6, 1.5, -1.5];
        let values = steps.map(|step| (step * 32.0) as i16);
        let mut out = [0i16; COEFFICIENTS];
        let mut quantizer = Quantizer::new(&quant, &mut out);
        quantizer.narrow(0, 0, &values);
        quantizer.wide(6, 0, &values.map(i32::from));
        // Ties (±1.5 steps) round up.
        let want = [-1, 0, -1, 0, 1, 2, -1];
        assert_eq!(out[..7], want);
        assert_eq!(out[BANDS[6].0..BANDS[6].0 + 7], want);
    }

    #[test]
    fn ll3_is_sent_as_differences() {
        let quant = RfxQuant::uniform(6);
        let mut out = [0i16; COEFFICIENTS];
        let mut quantizer = Quantizer::new(&quant, &mut out);
        quantizer.wide(9, 0, &[320, 352, 320, 0, 0, 0, 0, 0]);
        quantizer.finish();
        assert_eq!(&out[LL3_START..LL3_START + 4], &[10, 1, -1, -10]);
        let restored = dequantize(&out.map(i32::from), &quant);
        assert_eq!(&restored[LL3_START..LL3_START + 4], &[320, 352, 320, 0]);
    }

    #[test]
    fn huge_coefficients_clamp_to_what_decoders_hold() {
        let quant = RfxQuant::uniform(6);
        let mut out = [0i16; COEFFICIENTS];
        let mut quantizer = Quantizer::new(&quant, &mut out);
        quantizer.wide(9, 0, &[i32::from(i16::MAX) * 4; 8]);
        assert_eq!(out[LL3_START], 1023);
    }
}
