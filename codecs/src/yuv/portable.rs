//! The portable kernels: 16 pixels at a time on fixed-size arrays, the
//! definition of every value the conversions produce. Any faster kernel
//! (see `sse2`) computes exactly these values, and tests check that it does.
//!
//! Each channel sits in the high byte of a `u16` (`c << 8`), and a weight
//! w (scaled by 65536) times the channel is the high half of the 32-bit
//! product, `(c << 8) * w >> 16 = c * w / 256`: the result in 1/256 of a
//! level, summed and rounded to a level at the end. Sixteen bits per lane
//! is what lets SIMD do eight pixels an instruction (SSE2's `pmulhuw`). The
//! three truncated products leave a sum at most 3/256 of a level below the
//! exact one (the rounding constants centre that), so a value differs by
//! one from exact rounding only when the exact value lies that close to a
//! half.

// On x86 the build uses `sse2`; there only the tests run these kernels, as
// the reference `sse2` must match.
#![cfg_attr(
    all(
        any(target_arch = "x86", target_arch = "x86_64"),
        target_feature = "sse2",
        not(test)
    ),
    allow(dead_code)
)]

/// Luma weights x 65536 (0.2126, 0.7152, 0.0722; they sum to 65536).
pub(super) const Y_R: u16 = 13933;
pub(super) const Y_G: u16 = 46871;
pub(super) const Y_B: u16 = 4732;
/// Chroma weights x 65536, magnitudes: U = (B - Y) / 1.8556, so
/// U = 0.5 B - 0.1146 R - 0.3854 G; V = (R - Y) / 1.5748, so
/// V = 0.5 R - 0.4542 G - 0.0458 B.
pub(super) const U_R: u16 = 7510;
pub(super) const U_G: u16 = 25258;
pub(super) const U_B: u16 = 32768;
pub(super) const V_R: u16 = 32768;
pub(super) const V_G: u16 = 29764;
pub(super) const V_B: u16 = 3004;

/// Pixels one kernel call converts: 64 bytes of input.
pub(super) const LANES: usize = 16;

/// The high 16 bits of a 16 x 16-bit product (one SSE2 `pmulhuw` per eight
/// lanes once vectorised).
#[inline(always)]
fn high(value: u16, weight: u16) -> u16 {
    ((u32::from(value) * u32::from(weight)) >> 16) as u16
}

/// 16 pixels as little-endian words B | G << 8 | R << 16 | X << 24. Reading
/// the words first, then working on them, is the shape the vectoriser
/// recognises (one 16-byte load per four pixels).
#[inline(always)]
fn words(pixels: &[u8; 4 * LANES]) -> [u32; LANES] {
    let mut words = [0u32; LANES];
    for (lane, word) in words.iter_mut().enumerate() {
        let at = 4 * lane;
        *word = u32::from_le_bytes([pixels[at], pixels[at + 1], pixels[at + 2], pixels[at + 3]]);
    }
    words
}

/// A pixel's B, G and R each in the high byte of a `u16`.
#[inline(always)]
fn channels(word: u32) -> (u16, u16, u16) {
    (
        (word << 8) as u16,
        word as u16 & 0xFF00,
        (word >> 8) as u16 & 0xFF00,
    )
}

/// Luma of one pixel from its channels in high bytes: the sum in 1/256 of a
/// level, rounded. The largest sum (white) is 65280 + 128, so `u16` holds it.
#[inline(always)]
fn luma(b: u16, g: u16, r: u16) -> u8 {
    ((high(r, Y_R) + high(g, Y_G) + high(b, Y_B) + 129) >> 8) as u8
}

/// U and V of one pixel (or of the mean of a block, see
/// [`block_chroma_lanes`]) from channels in high bytes. Exact values lie in
/// 0.5..=255.5 levels (128..=65408 in 1/256), and the half added to round
/// is 127/256 so that pure blue's U (and pure red's V) still fits in 16
/// bits; the order of the wrapping operations then never matters.
#[inline(always)]
fn chroma(b: u16, g: u16, r: u16) -> (u8, u8) {
    let u = (32768u16 + 127 + high(b, U_B))
        .wrapping_sub(high(r, U_R))
        .wrapping_sub(high(g, U_G));
    let v = (32768u16 + 127 + high(r, V_R))
        .wrapping_sub(high(g, V_G))
        .wrapping_sub(high(b, V_B));
    ((u >> 8) as u8, (v >> 8) as u8)
}

/// Luma of 16 pixels.
#[inline(always)]
fn luma_lanes(words: &[u32; LANES], out: &mut [u8; LANES]) {
    for (word, luma_out) in words.iter().zip(out.iter_mut()) {
        let (b, g, r) = channels(*word);
        *luma_out = luma(b, g, r);
    }
}

/// Luma, U and V of 16 pixels each (AVC444's full-resolution chroma).
#[inline(always)]
fn yuv_lanes(words: &[u32; LANES], y: &mut [u8; LANES], u: &mut [u8; LANES], v: &mut [u8; LANES]) {
    for lane in 0..LANES {
        let (b, g, r) = channels(words[lane]);
        y[lane] = luma(b, g, r);
        (u[lane], v[lane]) = chroma(b, g, r);
    }
}

/// U and V of the eight 2x2 blocks under 16 pixels of two rows. Channels
/// are summed two at a time in the 16-bit fields of a word (B and R, then G;
/// four values of 255 need 10 bits); a block's sum (up to 1020) shifted left
/// by 6 is its mean in the high byte, with two more bits of fraction.
#[inline(always)]
fn block_chroma_lanes(
    top: &[u32; LANES],
    bottom: &[u32; LANES],
    u: &mut [u8; LANES / 2],
    v: &mut [u8; LANES / 2],
) {
    let (mut blue_red, mut green) = ([0u32; LANES], [0u32; LANES]);
    for lane in 0..LANES {
        blue_red[lane] = (top[lane] & 0x00FF_00FF) + (bottom[lane] & 0x00FF_00FF);
        green[lane] = ((top[lane] >> 8) & 0xFF) + ((bottom[lane] >> 8) & 0xFF);
    }
    let (mut b, mut g, mut r) = ([0u16; LANES / 2], [0u16; LANES / 2], [0u16; LANES / 2]);
    for block in 0..LANES / 2 {
        let sums = blue_red[2 * block] + blue_red[2 * block + 1];
        b[block] = (sums << 6) as u16;
        r[block] = ((sums >> 16) << 6) as u16;
        g[block] = ((green[2 * block] + green[2 * block + 1]) << 6) as u16;
    }
    for block in 0..LANES / 2 {
        (u[block], v[block]) = chroma(b[block], g[block], r[block]);
    }
}

/// Luma of two rows of 16 pixels and the U and V of the eight 2x2 blocks
/// under them: one group of I420.
#[inline(always)]
pub(super) fn i420_lanes(
    top: &[u8; 4 * LANES],
    bottom: &[u8; 4 * LANES],
    luma_top: &mut [u8; LANES],
    luma_bottom: &mut [u8; LANES],
    u: &mut [u8; LANES / 2],
    v: &mut [u8; LANES / 2],
) {
    let (top, bottom) = (words(top), words(bottom));
    luma_lanes(&top, luma_top);
    luma_lanes(&bottom, luma_bottom);
    block_chroma_lanes(&top, &bottom, u, v);
}

/// Luma, U and V of 16 pixels: one group of YUV444.
#[inline(always)]
pub(super) fn yuv444_lanes(
    pixels: &[u8; 4 * LANES],
    y: &mut [u8; LANES],
    u: &mut [u8; LANES],
    v: &mut [u8; LANES],
) {
    yuv_lanes(&words(pixels), y, u, v);
}

/// Y, U and V of one pixel (B, G, R, X bytes): the definition the tests
/// check every path against.
#[cfg(test)]
pub(super) fn pixel_yuv(pixel: [u8; 4]) -> (u8, u8, u8) {
    let (b, g, r) = channels(u32::from_le_bytes(pixel));
    let (u, v) = chroma(b, g, r);
    (luma(b, g, r), u, v)
}
