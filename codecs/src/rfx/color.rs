//! RGB to YCbCr, the irreversible colour transform (ICT) of MS-RDPRFX
//! section 3.1.8.1.4.
//!
//! Values leave here in the fixed point decoders expect: 5 fractional
//! bits, Y shifted into a signed range by subtracting 128, so each of Y, Cb
//! and Cr lies within [-4096, 4095]. A decoder computes, for instance,
//! R = (Y + 4096 + 1.402525 Cr) >> 5.

use super::{TILE_SIZE, dwt};
use crate::Image;

/// The matrix of 3.1.8.1.4 scaled by 2^15, rounded so each row sums to
/// exactly 2^15 (Y) or 0 (Cb, Cr): greys stay grey and exact.
const Y: [i32; 3] = [9798, 19234, 3736];
const CB: [i32; 3] = [-5535, -10868, 16403];
const CR: [i32; 3] = [16378, -13714, -2664];

/// 2^15 scale down to 5 fractional bits.
const SHIFT: u32 = 10;
const HALF: i32 = 1 << (SHIFT - 1);
/// 128 in 5 fractional bits, the level shift of Y.
const Y_OFFSET: i32 = 128 << 5;
/// Not quite half a level added to Y. The usual decoders (FreeRDP's among
/// them) round down when they drop the fraction, so a bias of about half a
/// level makes their output round to nearest instead of sitting half a
/// level dark on average. Exactly half would be a tie wherever Y is a
/// whole level, as it is for every grey: in a flat area, where LL3 carries
/// the colour in steps of one level at the default quant, the tie rounds
/// up and greys come out one level light. 14/32 keeps the centring and
/// makes flat greys exact.
const Y_BIAS: i32 = 14;
/// The level shift and bias, applied before the shift instead of after:
/// adding a multiple of 2^SHIFT commutes with the arithmetic shift, so the
/// result is the same, and the value is then narrowed right after the
/// shift, which the compiler turns into one pack instruction (a
/// subtraction in between made it clamp by hand).
const Y_ROUNDING: i32 = HALF + ((Y_BIAS - Y_OFFSET) << SHIFT);

/// One 64x64 tile as three planes, row-major, each row with its columns
/// split as the transform wants them ([`dwt::split_columns`]). i16 holds
/// the range above.
pub(super) type Planes = [[i16; TILE_SIZE * TILE_SIZE]; 3];

/// Converts the tile whose top-left pixel is (`left`, `top`) into `planes`.
/// Where the tile reaches past the image, the last column and row are
/// replicated: a smooth continuation costs almost no bits, where zero
/// padding would put a hard edge into the tile whose quantization ringing
/// would bleed into the visible pixels.
///
/// The columns are split here rather than in the transform because whole
/// pixels move as one 32-bit word, once for all three planes, where the
/// transform would have to move 16-bit samples plane by plane.
///
/// INVARIANT: `image` was checked, and (`left`, `top`) lies inside it.
pub(super) fn load_tile(image: &Image<'_>, left: usize, top: usize, planes: &mut Planes) {
    let width = TILE_SIZE.min(image.width - left);
    let height = TILE_SIZE.min(image.height - top);
    let [y_plane, cb_plane, cr_plane] = planes;
    for row in 0..height {
        let start = (top + row) * image.stride + left * 4;
        let source = &image.data[start..start + width * 4];
        let range = row * TILE_SIZE..(row + 1) * TILE_SIZE;
        let (y_row, cb_row, cr_row) = (
            &mut y_plane[range.clone()],
            &mut cb_plane[range.clone()],
            &mut cr_plane[range],
        );
        // INVARIANT: plane rows are TILE_SIZE long.
        let (y_row, cb_row, cr_row): (&mut [i16; TILE_SIZE], _, _) = (
            y_row.try_into().expect("tile row"),
            cb_row.try_into().expect("tile row"),
            cr_row.try_into().expect("tile row"),
        );
        match <&[u8; 4 * TILE_SIZE]>::try_from(source) {
            // Whole rows with fixed sizes, so the loop has no bounds checks
            // and vectorises.
            Ok(source) => convert_row(source, y_row, cb_row, cr_row),
            Err(_) => convert_short_row(source, [y_row, cb_row, cr_row]),
        }
    }
    for plane in planes.iter_mut() {
        let (filled, rest) = plane.split_at_mut(height * TILE_SIZE);
        let last_row = &filled[(height - 1) * TILE_SIZE..];
        for row in rest.chunks_exact_mut(TILE_SIZE) {
            row.copy_from_slice(last_row);
        }
    }
}

#[inline(always)]
fn convert_pixel(pixel: &[u8]) -> [i16; 3] {
    let (b, g, r) = (
        i32::from(pixel[0]),
        i32::from(pixel[1]),
        i32::from(pixel[2]),
    );
    // INVARIANT: each lies within [-4096, 4095] (see the module comment).
    [
        ((Y[0] * r + Y[1] * g + Y[2] * b + Y_ROUNDING) >> SHIFT) as i16,
        ((CB[0] * r + CB[1] * g + CB[2] * b + HALF) >> SHIFT) as i16,
        ((CR[0] * r + CR[1] * g + CR[2] * b + HALF) >> SHIFT) as i16,
    ]
}

fn convert_row(
    source: &[u8; 4 * TILE_SIZE],
    y: &mut [i16; TILE_SIZE],
    cb: &mut [i16; TILE_SIZE],
    cr: &mut [i16; TILE_SIZE],
) {
    // Whole pixels as words, then channels by shifting: byte-by-byte
    // loads would keep the compiler from using vector registers. Channels
    // as i16, so each product is a widening 16-bit multiply (the baseline
    // x86-64 vector unit has no 32-bit one).
    let (mut reds, mut greens, mut blues) =
        ([0i16; TILE_SIZE], [0i16; TILE_SIZE], [0i16; TILE_SIZE]);
    // Even pixels to the front half, odd ones to the back: the order of
    // `dwt::split_columns`.
    let mut words = [0u32; TILE_SIZE];
    let (evens, odds) = words.split_at_mut(TILE_SIZE / 2);
    for ((pair, even), odd) in source.chunks_exact(8).zip(evens).zip(odds) {
        *even = u32::from_le_bytes([pair[0], pair[1], pair[2], pair[3]]);
        *odd = u32::from_le_bytes([pair[4], pair[5], pair[6], pair[7]]);
    }
    for (((&word, r), g), b) in words.iter().zip(&mut reds).zip(&mut greens).zip(&mut blues) {
        *b = (word & 0xFF) as i16;
        *g = ((word >> 8) & 0xFF) as i16;
        *r = ((word >> 16) & 0xFF) as i16;
    }
    let weigh = |weights: [i32; 3], index: usize| {
        // INVARIANT: the weights fit i16 (all below 2^15 in magnitude).
        let [wr, wg, wb] = weights.map(|weight| i32::from(weight as i16));
        wr * i32::from(reds[index]) + wg * i32::from(greens[index]) + wb * i32::from(blues[index])
    };
    for index in 0..TILE_SIZE {
        y[index] = narrow((weigh(Y, index) + Y_ROUNDING) >> SHIFT);
        cb[index] = narrow((weigh(CB, index) + HALF) >> SHIFT);
        cr[index] = narrow((weigh(CR, index) + HALF) >> SHIFT);
    }
}

/// A converted value as i16. INVARIANT: it lies within [-4096, 4095], so
/// the clamp never acts; it is there because a saturating narrowing
/// vectorises (one pack instruction) where a truncating one does not.
#[inline(always)]
fn narrow(value: i32) -> i16 {
    value.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

/// A row cut short by the image's right edge: converted in pixel order,
/// its last pixel replicated to the tile's width, then split.
fn convert_short_row(source: &[u8], rows: [&mut [i16; TILE_SIZE]; 3]) {
    let mut natural = [[0i16; TILE_SIZE]; 3];
    let width = source.len() / 4;
    for (index, pixel) in source.chunks_exact(4).enumerate() {
        let [y, cb, cr] = convert_pixel(pixel);
        [natural[0][index], natural[1][index], natural[2][index]] = [y, cb, cr];
    }
    for (natural, row) in natural.iter_mut().zip(rows) {
        let edge = natural[width - 1];
        natural[width..].fill(edge);
        dwt::split_columns(natural, row);
    }
}

/// The inverse transform a decoder applies, in 16 fractional
/// bits like FreeRDP's, dropping the fraction by rounding down. Returns
/// B, G, R.
pub(super) fn to_bgr(y: i64, cb: i64, cr: i64) -> [u8; 3] {
    let y = (y + i64::from(Y_OFFSET)) << 16;
    let clamp = |value: i64| (value >> 21).clamp(0, 255) as u8;
    [
        clamp(y + 115_993 * cb),
        clamp(y - 22_527 * cb - 46_819 * cr),
        clamp(y + 91_916 * cr),
    ]
}
