//! The three-level 2D discrete wavelet transform of MS-RDPRFX section
//! 3.1.8.1.5:
//! LeGall 5/3 lifting with the high band halved,
//!
//! H(n) = (X(2n+1) - (X(2n) + X(2n+2)) / 2) / 2,
//! L(n) = X(2n) + (H(n-1) + H(n)) / 2,
//!
//! mirrored at the block edges (X(N) = X(N-2), H(-1) = H(0)). Each level
//! runs down the columns, then along the rows, and yields its sub-bands HL
//! (horizontally high), LH and HH to a [`Bands`] sink row by row; the next
//! level transforms the LL. Three levels of a 64x64 tile give the wire order
//! HL1, LH1, HH1, HL2, LH2, HH2, HL3, LH3, HH3, LL3 ([`BANDS`]).
//!
//! Levels 1 and 2 compute in i16, eight samples to a 128-bit vector; level 3
//! in i32. The bounds, for inputs |X| <= 4096 (the colour conversion's
//! range): a pass's high band is at most its input bound B, since
//! |X(2n+1) - (X(2n) + X(2n+2)) / 2| <= 2B before the halving. The low band
//! is the filter (-1/8, 1/4, 3/4, 1/4, -1/8) of the input plus under one
//! unit of rounding, so at most 1.5B + 1. Passes 1 to 4 (levels 1 and 2)
//! thus see inputs of at most 4096, 6145, 9219 and 13830 and produce at most
//! 20746; their largest intermediate, a sum of two inputs, is 27660, within
//! i16. Level 3's inputs reach 20746, where such a sum would not fit.

use super::TILE_SIZE;

pub(super) const COEFFICIENTS: usize = TILE_SIZE * TILE_SIZE;

/// Sub-bands in wire order: first coefficient and count.
pub(super) const BANDS: [(usize, usize); 10] = [
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

/// Where the transform's sub-bands go, row by row (a band's rows are half
/// its level's block size long). `band` indexes [`BANDS`].
pub(super) trait Bands {
    /// A row of a level 1 or 2 detail band (bands 0 to 5).
    fn narrow(&mut self, band: usize, row: usize, values: &[i16]);
    /// A row of a level 3 band (bands 6 to 9).
    fn wide(&mut self, band: usize, row: usize, values: &[i32]);
}

/// The lifting steps in the sample type of a level.
trait Sample: Copy + Default {
    fn low(even: Self, high_before: Self, high: Self) -> Self;
    fn high(odd: Self, even: Self, even_after: Self) -> Self;
}

macro_rules! sample {
    ($type:ty) => {
        impl Sample for $type {
            /// Rounds like the decoders' inverse of the low-band step, so
            /// that step undoes exactly.
            #[inline(always)]
            fn low(even: Self, high_before: Self, high: Self) -> Self {
                even + ((high_before + high + 1) >> 1)
            }

            #[inline(always)]
            fn high(odd: Self, even: Self, even_after: Self) -> Self {
                (odd - ((even + even_after) >> 1)) >> 1
            }
        }
    };
}

// INVARIANT (i16): only levels 1 and 2 use it, whose values and
// intermediates stay within 27660 (see the module comment).
sample!(i16);
sample!(i32);

/// Working memory of one transform.
pub(super) struct DwtScratch {
    /// The vertical pass's output of levels 1 and 2.
    columns: [i16; COEFFICIENTS],
    /// LL1 (32x32), then LL2 (16x16).
    low_low: [i16; COEFFICIENTS / 4],
    /// Level 3's input and its vertical pass's output.
    wide: [i32; 256],
    wide_columns: [i32; 256],
}

impl DwtScratch {
    pub(super) fn new() -> Self {
        Self {
            columns: [0; COEFFICIENTS],
            low_low: [0; COEFFICIENTS / 4],
            wide: [0; 256],
            wide_columns: [0; 256],
        }
    }
}

/// Writes a row of 64 samples with its even columns first, then its odd
/// ones: the order [`forward`] takes a plane's rows in.
pub(super) fn split_columns(natural: &[i16; TILE_SIZE], split: &mut [i16; TILE_SIZE]) {
    let (evens, odds) = split.split_at_mut(TILE_SIZE / 2);
    for ((pair, even), odd) in natural.chunks_exact(2).zip(evens).zip(odds) {
        *even = pair[0];
        *odd = pair[1];
    }
}

/// Forward transform of one 64x64 plane (row-major, each row in the order
/// of [`split_columns`]), its sub-bands handed to `bands`.
///
/// The vertical pass treats every column alike, so the column order does
/// not matter to it; the horizontal pass then finds each row's even and
/// odd samples apart, which it would otherwise have to separate sample by
/// sample (the compiler does not vectorise that).
///
/// INVARIANT: every value of `plane` lies within [-4096, 4096].
pub(super) fn forward(
    plane: &[i16; COEFFICIENTS],
    scratch: &mut DwtScratch,
    bands: &mut impl Bands,
) {
    let DwtScratch {
        columns,
        low_low,
        wide,
        wide_columns,
    } = scratch;
    // Level 1: the plane into LL1 and bands 0 to 2.
    forward_columns::<_, 64>(plane, columns);
    narrow_rows::<64, 32>(columns, low_low, 0, bands, lift_split_row);
    // Level 2: LL1 into LL2 and bands 3 to 5. The vertical pass reads LL1
    // before the horizontal one overwrites it with LL2.
    forward_columns::<_, 32>(low_low, &mut columns[..1024]);
    narrow_rows::<32, 16>(&columns[..1024], low_low, 3, bands, split_row);
    // Level 3: LL2 in i32 into bands 6 to 9.
    for (wide, &value) in wide.iter_mut().zip(&low_low[..256]) {
        *wide = i32::from(value);
    }
    forward_columns::<_, 16>(wide, wide_columns);
    let half = 8;
    for (index, row) in wide_columns.chunks_exact(16).enumerate() {
        let (mut lows, mut highs) = ([0i32; 8], [0i32; 8]);
        // INVARIANT: chunks_exact gives rows of 16.
        split_row::<_, 16, 8>(row.try_into().expect("row"), &mut lows, &mut highs);
        if index < half {
            bands.wide(9, index, &lows);
            bands.wide(6, index, &highs);
        } else {
            bands.wide(7, index - half, &lows);
            bands.wide(8, index - half, &highs);
        }
    }
}

/// Horizontal pass of level 1 or 2 (SIZE 64 or 32, HALF its half) over the
/// vertical pass's output, each row lifted by `lift_row`: LL into
/// `low_low`, HL, LH and HH as bands `first_band` to `first_band + 2`.
fn narrow_rows<const SIZE: usize, const HALF: usize>(
    columns: &[i16],
    low_low: &mut [i16],
    first_band: usize,
    bands: &mut impl Bands,
    lift_row: fn(&[i16; SIZE], &mut [i16; HALF], &mut [i16; HALF]),
) {
    const { assert!(2 * HALF == SIZE) };
    let half = HALF;
    for (index, row) in columns[..SIZE * SIZE].chunks_exact(SIZE).enumerate() {
        let (mut lows, mut highs) = ([0i16; HALF], [0i16; HALF]);
        // INVARIANT: chunks_exact gives rows of SIZE.
        lift_row(row.try_into().expect("row"), &mut lows, &mut highs);
        if index < half {
            low_low[index * half..(index + 1) * half].copy_from_slice(&lows);
            bands.narrow(first_band, index, &highs);
        } else {
            bands.narrow(first_band + 1, index - half, &lows);
            bands.narrow(first_band + 2, index - half, &highs);
        }
    }
}

/// Vertical pass over a SIZE x SIZE block: `output`'s top half gets the low
/// rows, the bottom half the high rows. Whole rows at a time, so the
/// compiler vectorises.
fn forward_columns<S: Sample, const SIZE: usize>(input: &[S], output: &mut [S]) {
    let half = SIZE / 2;
    let input = &input[..SIZE * SIZE];
    let row = |index: usize| &input[index * SIZE..(index + 1) * SIZE];
    let (lows, highs) = output[..SIZE * SIZE].split_at_mut(half * SIZE);
    for (index, high_row) in highs.chunks_exact_mut(SIZE).enumerate() {
        let even = row(2 * index);
        let odd = row(2 * index + 1);
        let even_after = row(if index + 1 < half {
            2 * index + 2
        } else {
            2 * index
        });
        for (((out, &odd), &even), &after) in high_row.iter_mut().zip(odd).zip(even).zip(even_after)
        {
            *out = S::high(odd, even, after);
        }
    }
    for (index, low_row) in lows.chunks_exact_mut(SIZE).enumerate() {
        let even = row(2 * index);
        let high_row = &highs[index * SIZE..(index + 1) * SIZE];
        let high_before = &highs[index.saturating_sub(1) * SIZE..][..SIZE];
        for (((out, &even), &before), &high) in
            low_row.iter_mut().zip(even).zip(high_before).zip(high_row)
        {
            *out = S::low(even, before, high);
        }
    }
}

/// One row's lifting into HALF low and HALF high values, from its even
/// and odd samples. The mirrored neighbours, X(N) = X(N-2) and
/// H(-1) = H(0), go into shifted copies first, so both steps are whole
/// loops of fixed length that vectorise.
#[inline(always)]
fn lift<S: Sample, const HALF: usize>(
    evens: &[S; HALF],
    odds: &[S; HALF],
    lows: &mut [S; HALF],
    highs: &mut [S; HALF],
) {
    let mut evens_after = [S::default(); HALF];
    evens_after[..HALF - 1].copy_from_slice(&evens[1..]);
    evens_after[HALF - 1] = evens[HALF - 1];
    for (((out, &odd), &even), &after) in highs.iter_mut().zip(odds).zip(evens).zip(&evens_after) {
        *out = S::high(odd, even, after);
    }
    let mut highs_before = [S::default(); HALF];
    highs_before[1..].copy_from_slice(&highs[..HALF - 1]);
    highs_before[0] = highs[0];
    for (((out, &even), &before), &high) in
        lows.iter_mut().zip(evens).zip(&highs_before).zip(&*highs)
    {
        *out = S::low(even, before, high);
    }
}

/// [`lift`] of a row whose even samples come first, then its odd ones.
#[inline(always)]
fn lift_split_row<S: Sample, const SIZE: usize, const HALF: usize>(
    row: &[S; SIZE],
    lows: &mut [S; HALF],
    highs: &mut [S; HALF],
) {
    const { assert!(2 * HALF == SIZE) };
    let (evens, odds) = row.split_at(HALF);
    // INVARIANT: both halves are HALF long.
    lift(
        evens.try_into().expect("half row"),
        odds.try_into().expect("half row"),
        lows,
        highs,
    );
}

/// [`lift`] of a row in sample order: even and odd samples are separated
/// first.
#[inline(always)]
fn split_row<S: Sample, const SIZE: usize, const HALF: usize>(
    row: &[S; SIZE],
    lows: &mut [S; HALF],
    highs: &mut [S; HALF],
) {
    const { assert!(2 * HALF == SIZE) };
    let mut evens = [S::default(); HALF];
    let mut odds = [S::default(); HALF];
    for ((pair, even), odd) in row.chunks_exact(2).zip(&mut evens).zip(&mut odds) {
        *even = pair[0];
        *odd = pair[1];
    }
    lift(&evens, &odds, lows, highs);
}

/// Inverse transform, as a decoder does it (test decoder only): i64 so no
/// input can overflow.
pub(super) fn inverse(data: &mut [i64; COEFFICIENTS]) {
    let mut scratch = vec![0i64; COEFFICIENTS];
    for level in (0..3).rev() {
        let size = TILE_SIZE >> level;
        let half = size / 2;
        let band = half * half;
        let offset: usize = (0..level).map(|l| 3 * (TILE_SIZE >> (l + 1)).pow(2)).sum();
        let block = &mut data[offset..offset + size * size];
        // Rows: LL with HL into the top half, LH with HH into the bottom.
        for index in 0..size {
            let (low_band, high_band, line) = if index < half {
                (3 * band, 0, index)
            } else {
                (band, 2 * band, index - half)
            };
            let lows = &block[low_band + line * half..][..half];
            let highs = &block[high_band + line * half..][..half];
            merge(lows, highs, &mut scratch[index * size..(index + 1) * size]);
        }
        // Columns.
        let mut column = vec![0i64; size];
        for x in 0..size {
            let lows: Vec<i64> = (0..half).map(|y| scratch[y * size + x]).collect();
            let highs: Vec<i64> = (half..size).map(|y| scratch[y * size + x]).collect();
            merge(&lows, &highs, &mut column);
            for (y, &value) in column.iter().enumerate() {
                block[y * size + x] = value;
            }
        }
    }
}

fn merge(lows: &[i64], highs: &[i64], out: &mut [i64]) {
    let half = lows.len();
    for index in 0..half {
        let before = highs[index.saturating_sub(1)];
        out[2 * index] = lows[index] - ((before + highs[index] + 1) >> 1);
    }
    for index in 0..half {
        let after = if index + 1 < half {
            out[2 * index + 2]
        } else {
            out[2 * index]
        };
        out[2 * index + 1] = (highs[index] << 1) + ((out[2 * index] + after) >> 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects the sub-bands unquantized.
    struct Collect([i64; COEFFICIENTS]);

    impl Collect {
        fn put(&mut self, band: usize, row: usize, values: impl Iterator<Item = i64>) {
            let (start, count) = BANDS[band];
            let width = values.size_hint().0;
            assert_eq!(width * width, count);
            for (slot, value) in self.0[start + row * width..].iter_mut().zip(values) {
                *slot = value;
            }
        }
    }

    impl Bands for Collect {
        fn narrow(&mut self, band: usize, row: usize, values: &[i16]) {
            assert!(band < 6);
            self.put(band, row, values.iter().map(|&value| i64::from(value)));
        }

        fn wide(&mut self, band: usize, row: usize, values: &[i32]) {
            assert!(band >= 6);
            self.put(band, row, values.iter().map(|&value| i64::from(value)));
        }
    }

    fn transform(data: &[i16; COEFFICIENTS]) -> [i64; COEFFICIENTS] {
        let mut split = [0i16; COEFFICIENTS];
        for (natural, row) in data
            .chunks_exact(TILE_SIZE)
            .zip(split.chunks_exact_mut(TILE_SIZE))
        {
            split_columns(
                natural.try_into().expect("row"),
                row.try_into().expect("row"),
            );
        }
        let mut bands = Collect([i64::MIN; COEFFICIENTS]);
        forward(&split, &mut DwtScratch::new(), &mut bands);
        assert!(
            bands.0.iter().all(|&value| value != i64::MIN),
            "every band filled"
        );
        bands.0
    }

    fn round_trip(data: &[i16; COEFFICIENTS], what: &str) {
        let mut wide = transform(data);
        inverse(&mut wide);
        for (index, (&want, &got)) in data.iter().zip(&wide).enumerate() {
            // Each pass drops the high band's lowest bit; through three
            // levels that adds up to a quarter of a level (8/32) at most.
            assert!(
                (i64::from(want) - got).abs() <= 8,
                "{what} at {index}: {want} vs {got}"
            );
        }
    }

    #[test]
    fn forward_then_inverse_is_within_a_fraction_of_a_level() {
        let mut seed = 1u32;
        for pattern in 0..4 {
            let mut data = [0i16; COEFFICIENTS];
            for (index, value) in data.iter_mut().enumerate() {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let (x, y) = ((index % 64) as i16, (index / 64) as i16);
                *value = match pattern {
                    0 => (x * 64 + y * 32) - 4096,
                    1 => ((seed >> 16) % 8192) as i16 - 4096,
                    2 => {
                        if (x / 3 + y / 5) % 2 == 0 {
                            4000
                        } else {
                            -4000
                        }
                    }
                    _ => 1234,
                };
            }
            round_trip(&data, &format!("pattern {pattern}"));
        }
    }

    /// Extreme inputs that push the low band towards its bound: the sign
    /// pattern of the low-pass filter repeated at each level's scale, and
    /// random full-scale values. An i16 overflow would wreck the round trip.
    #[test]
    fn extreme_inputs_do_not_overflow() {
        // Signs of (-1/8, 1/4, 3/4, 1/4, -1/8) around every even sample,
        // compounded over the six passes.
        let sign = |position: usize| -> i32 {
            let mut sign = 1;
            let mut position = position;
            for _ in 0..3 {
                if position % 4 == 2 {
                    sign = -sign;
                }
                position /= 2;
            }
            sign
        };
        let mut seed = 7u32;
        for pattern in 0..6 {
            let mut data = [0i16; COEFFICIENTS];
            for (index, value) in data.iter_mut().enumerate() {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let (x, y) = (index % 64, index / 64);
                let level = match pattern {
                    0 => sign(x) * sign(y),
                    1 => -sign(x) * sign(y),
                    2 => sign(x + 1) * sign(y + 1),
                    _ => {
                        if seed >> 31 == 0 {
                            1
                        } else {
                            -1
                        }
                    }
                };
                *value = (4096 * level) as i16;
            }
            round_trip(&data, &format!("extreme pattern {pattern}"));
        }
    }

    #[test]
    fn flat_tile_has_only_a_dc_coefficient() {
        let bands = transform(&[500; COEFFICIENTS]);
        assert!(bands[..COEFFICIENTS - 64].iter().all(|&value| value == 0));
        assert!(bands[COEFFICIENTS - 64..].iter().all(|&value| value == 500));
    }
}
