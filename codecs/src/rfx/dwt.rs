//! The three-level 2D discrete wavelet transform of MS-RDPRFX section
//! 3.1.8.1.5:
//! LeGall 5/3 lifting with the high band halved,
//!
//! H(n) = (X(2n+1) - (X(2n) + X(2n+2)) / 2) / 2,
//! L(n) = X(2n) + (H(n-1) + H(n)) / 2,
//!
//! mirrored at the block edges (X(N) = X(N-2), H(-1) = H(0)). Each level
//! runs down the columns, then along the rows, and writes its sub-bands HL
//! (horizontally high), LH, HH and then LL, each row-major; the next level
//! transforms that LL in place. Three levels of a 64x64 tile give the wire
//! order HL1, LH1, HH1, HL2, LH2, HH2, HL3, LH3, HH3, LL3.
//!
//! Arithmetic is in i32: the low band can grow by up to 1.5x per pass, so
//! six passes could overflow i16 on adversarial input.

use super::TILE_SIZE;

pub(super) const COEFFICIENTS: usize = TILE_SIZE * TILE_SIZE;

/// Rounds like the decoders' inverse of the low-band step, so that step
/// undoes exactly.
#[inline(always)]
fn low(even: i32, high_before: i32, high: i32) -> i32 {
    even + ((high_before + high + 1) >> 1)
}

#[inline(always)]
fn high(odd: i32, even: i32, even_after: i32) -> i32 {
    (odd - ((even + even_after) >> 1)) >> 1
}

/// Forward transform of the tile in `data` (64x64, row-major) into the
/// sub-band layout above. `scratch` is overwritten.
pub(super) fn forward(data: &mut [i32; COEFFICIENTS], scratch: &mut [i32; COEFFICIENTS]) {
    let mut size = TILE_SIZE;
    let mut offset = 0;
    while size >= 16 {
        let block = &mut data[offset..offset + size * size];
        forward_columns(block, &mut scratch[..size * size], size);
        forward_rows(&scratch[..size * size], block, size);
        offset += 3 * (size / 2) * (size / 2);
        size /= 2;
    }
}

/// Vertical pass: `output`'s top half gets the low rows, the bottom half
/// the high rows. Whole rows at a time, so the compiler vectorises.
fn forward_columns(input: &[i32], output: &mut [i32], size: usize) {
    let half = size / 2;
    let row = |index: usize| &input[index * size..(index + 1) * size];
    let (lows, highs) = output.split_at_mut(half * size);
    for (index, high_row) in highs.chunks_exact_mut(size).enumerate() {
        let even = row(2 * index);
        let odd = row(2 * index + 1);
        let even_after = row(if index + 1 < half {
            2 * index + 2
        } else {
            2 * index
        });
        for (((out, &odd), &even), &after) in high_row.iter_mut().zip(odd).zip(even).zip(even_after)
        {
            *out = high(odd, even, after);
        }
    }
    for (index, low_row) in lows.chunks_exact_mut(size).enumerate() {
        let even = row(2 * index);
        let high_row = &highs[index * size..(index + 1) * size];
        let high_before = &highs[index.saturating_sub(1) * size..][..size];
        for (((out, &even), &before), &high) in
            low_row.iter_mut().zip(even).zip(high_before).zip(high_row)
        {
            *out = low(even, before, high);
        }
    }
}

/// Horizontal pass: splits each row of `input` into low and high halves
/// and places them in the sub-bands of `output`.
fn forward_rows(input: &[i32], output: &mut [i32], size: usize) {
    let half = size / 2;
    let band = half * half;
    let (high_low, rest) = output.split_at_mut(band);
    let (low_high, rest) = rest.split_at_mut(band);
    let (high_high, low_low) = rest.split_at_mut(band);
    let (top, bottom) = input.split_at(half * size);
    // Rows from the vertical low half hold LL and HL, the others LH and HH.
    for (row, (lows, highs)) in top.chunks_exact(size).zip(
        low_low
            .chunks_exact_mut(half)
            .zip(high_low.chunks_exact_mut(half)),
    ) {
        split_row(row, lows, highs);
    }
    for (row, (lows, highs)) in bottom.chunks_exact(size).zip(
        low_high
            .chunks_exact_mut(half)
            .zip(high_high.chunks_exact_mut(half)),
    ) {
        split_row(row, lows, highs);
    }
}

/// One row's lifting: even and odd samples are separated first so both
/// steps run over plain, shifted slices and vectorise.
#[inline(always)]
fn split_row(row: &[i32], lows: &mut [i32], highs: &mut [i32]) {
    const HALF: usize = TILE_SIZE / 2;
    let half = lows.len();
    let mut evens = [0i32; HALF];
    let mut odds = [0i32; HALF];
    let (evens, odds) = (&mut evens[..half], &mut odds[..half]);
    for ((pair, even), odd) in row
        .chunks_exact(2)
        .zip(evens.iter_mut())
        .zip(odds.iter_mut())
    {
        *even = pair[0];
        *odd = pair[1];
    }
    let highs = &mut highs[..half];
    let last = half - 1;
    for (((out, &odd), &even), &after) in highs[..last]
        .iter_mut()
        .zip(&odds[..last])
        .zip(&evens[..last])
        .zip(&evens[1..])
    {
        *out = high(odd, even, after);
    }
    highs[last] = high(odds[last], evens[last], evens[last]);
    lows[0] = low(evens[0], highs[0], highs[0]);
    for (((out, &even), &before), &high) in lows[1..]
        .iter_mut()
        .zip(&evens[1..])
        .zip(&highs[..last])
        .zip(&highs[1..])
    {
        *out = low(even, before, high);
    }
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

    #[test]
    fn forward_then_inverse_is_within_a_fraction_of_a_level() {
        let mut seed = 1u32;
        for pattern in 0..4 {
            let mut data = [0i32; COEFFICIENTS];
            for (index, value) in data.iter_mut().enumerate() {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let (x, y) = ((index % 64) as i32, (index / 64) as i32);
                *value = match pattern {
                    0 => (x * 64 + y * 32) - 4096,
                    1 => ((seed >> 16) % 8192) as i32 - 4096,
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
            let original = data;
            let mut scratch = [0i32; COEFFICIENTS];
            forward(&mut data, &mut scratch);
            let mut wide = data.map(i64::from);
            inverse(&mut wide);
            for (index, (&want, &got)) in original.iter().zip(&wide).enumerate() {
                // Each pass drops the high band's lowest bit; through three
                // levels that adds up to a quarter of a level (8/32) at most.
                assert!(
                    (i64::from(want) - got).abs() <= 8,
                    "pattern {pattern} at {index}: {want} vs {got}"
                );
            }
        }
    }

    #[test]
    fn flat_tile_has_only_a_dc_coefficient() {
        let mut data = [500i32; COEFFICIENTS];
        let mut scratch = [0i32; COEFFICIENTS];
        forward(&mut data, &mut scratch);
        assert!(data[..COEFFICIENTS - 64].iter().all(|&value| value == 0));
        assert!(data[COEFFICIENTS - 64..].iter().all(|&value| value == 500));
    }
}
