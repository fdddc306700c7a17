//! The conversion kernels in SSE2, eight pixels an instruction: the same
//! arithmetic as `portable`, lane for lane, so the values are identical
//! (a test runs both over every case).
//!
//! Why `unsafe` here: the portable kernels do not vectorise. rustc turns
//! their four-byte pixels into scalar multiplies or into four-lane
//! shuffles, at 7 ms a 1080p frame; the target is 1 ms. Reading whole
//! 16-byte vectors and splitting channels with masks, shifts and
//! `packssdw` takes three instructions where the compiler emitted twenty.
//! `std::simd` is not stable, and std::arch's loads and stores take raw
//! pointers, so this module is one of the crate's two exceptions to
//! `deny(unsafe_code)` (with `h264/references.rs`). SSE2 is part of every
//! x86_64 target, so it needs no run-time detection; other architectures
//! use the portable kernels.
#![allow(unsafe_code)]

#[cfg(target_arch = "x86")]
use std::arch::x86::*;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::portable::{LANES, U_B, U_G, U_R, V_B, V_G, V_R, Y_B, Y_G, Y_R};

/// B, G and R of 16 pixels, each as two vectors of eight `u16` lanes
/// holding 0..=255: `[b 0..8, b 8..16, g .., g .., r .., r ..]`.
#[inline(always)]
fn channels(pixels: &[u8; 4 * LANES]) -> [__m128i; 6] {
    // SAFETY: SSE2 is enabled at compile time (this module is built only
    // with `target_feature = "sse2"`), so every intrinsic is available. The
    // four loads read bytes 0..16, 16..32, 32..48 and 48..64 of a 64-byte
    // array, and `loadu` has no alignment requirement.
    unsafe {
        let at = pixels.as_ptr().cast::<__m128i>();
        let words = [
            _mm_loadu_si128(at),
            _mm_loadu_si128(at.add(1)),
            _mm_loadu_si128(at.add(2)),
            _mm_loadu_si128(at.add(3)),
        ];
        let low_byte = _mm_set1_epi32(0xFF);
        // Each 32-bit lane holds at most 255, so the signed saturating
        // pack to 16 bits is exact.
        let blue = |w: __m128i| _mm_and_si128(w, low_byte);
        let green = |w: __m128i| _mm_and_si128(_mm_srli_epi32::<8>(w), low_byte);
        let red = |w: __m128i| _mm_and_si128(_mm_srli_epi32::<16>(w), low_byte);
        [
            _mm_packs_epi32(blue(words[0]), blue(words[1])),
            _mm_packs_epi32(blue(words[2]), blue(words[3])),
            _mm_packs_epi32(green(words[0]), green(words[1])),
            _mm_packs_epi32(green(words[2]), green(words[3])),
            _mm_packs_epi32(red(words[0]), red(words[1])),
            _mm_packs_epi32(red(words[2]), red(words[3])),
        ]
    }
}

/// `portable::high` on eight lanes.
#[inline(always)]
fn high(value: __m128i, weight: u16) -> __m128i {
    // SAFETY: SSE2 is enabled at compile time; no memory is touched.
    unsafe { _mm_mulhi_epu16(value, _mm_set1_epi16(weight as i16)) }
}

/// `portable::luma` on eight lanes of channels in high bytes.
#[inline(always)]
fn luma(b: __m128i, g: __m128i, r: __m128i) -> __m128i {
    // SAFETY: SSE2 is enabled at compile time; no memory is touched.
    unsafe {
        let sum = _mm_add_epi16(
            _mm_add_epi16(high(r, Y_R), high(g, Y_G)),
            _mm_add_epi16(high(b, Y_B), _mm_set1_epi16(129)),
        );
        _mm_srli_epi16::<8>(sum)
    }
}

/// `portable::chroma` on eight lanes of channels in high bytes.
#[inline(always)]
fn chroma(b: __m128i, g: __m128i, r: __m128i) -> (__m128i, __m128i) {
    // SAFETY: SSE2 is enabled at compile time; no memory is touched. The
    // 16-bit adds and subtracts wrap, as the portable code's do.
    unsafe {
        let centre = _mm_set1_epi16((32768u16 + 127) as i16);
        let u = _mm_sub_epi16(
            _mm_sub_epi16(_mm_add_epi16(centre, high(b, U_B)), high(r, U_R)),
            high(g, U_G),
        );
        let v = _mm_sub_epi16(
            _mm_sub_epi16(_mm_add_epi16(centre, high(r, V_R)), high(g, V_G)),
            high(b, V_B),
        );
        (_mm_srli_epi16::<8>(u), _mm_srli_epi16::<8>(v))
    }
}

/// Channels 0..=255 moved into the high byte.
#[inline(always)]
fn to_high_byte(channel: __m128i) -> __m128i {
    // SAFETY: SSE2 is enabled at compile time; no memory is touched.
    unsafe { _mm_slli_epi16::<8>(channel) }
}

/// Two vectors of eight 16-bit values 0..=255 packed into 16 bytes.
#[inline(always)]
fn store16(low: __m128i, high: __m128i, out: &mut [u8; LANES]) {
    // SAFETY: SSE2 is enabled at compile time; the store writes the 16
    // bytes of a 16-byte array, and `storeu` has no alignment requirement.
    unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), _mm_packus_epi16(low, high)) }
}

/// Eight 16-bit values 0..=255 packed into 8 bytes.
#[inline(always)]
fn store8(values: __m128i, out: &mut [u8; LANES / 2]) {
    // SAFETY: SSE2 is enabled at compile time; `storel_epi64` writes the
    // low 8 bytes, exactly the 8-byte array, with no alignment requirement.
    unsafe { _mm_storel_epi64(out.as_mut_ptr().cast(), _mm_packus_epi16(values, values)) }
}

/// Luma of 16 pixels from their channels.
#[inline(always)]
fn luma16(channels: &[__m128i; 6], out: &mut [u8; LANES]) {
    let [b0, b1, g0, g1, r0, r1] = channels.map(to_high_byte);
    store16(luma(b0, g0, r0), luma(b1, g1, r1), out);
}

/// `portable::i420_lanes`.
#[inline(always)]
pub(super) fn i420_lanes(
    top: &[u8; 4 * LANES],
    bottom: &[u8; 4 * LANES],
    luma_top: &mut [u8; LANES],
    luma_bottom: &mut [u8; LANES],
    u: &mut [u8; LANES / 2],
    v: &mut [u8; LANES / 2],
) {
    let (top, bottom) = (channels(top), channels(bottom));
    luma16(&top, luma_top);
    luma16(&bottom, luma_bottom);
    // SAFETY: SSE2 is enabled at compile time; no memory is touched.
    let [b, g, r] = unsafe {
        let ones = _mm_set1_epi16(1);
        // A channel's 2x2 block sums: top plus bottom (up to 510 a lane),
        // then `pmaddwd` by ones adds horizontal pairs into 32-bit lanes
        // (up to 1020), packed back to eight 16-bit lanes and shifted left
        // by 6 like the portable code.
        let block = |index: usize| {
            let low = _mm_madd_epi16(_mm_add_epi16(top[index], bottom[index]), ones);
            let high = _mm_madd_epi16(_mm_add_epi16(top[index + 1], bottom[index + 1]), ones);
            _mm_slli_epi16::<6>(_mm_packs_epi32(low, high))
        };
        [block(0), block(2), block(4)]
    };
    let (u_lanes, v_lanes) = chroma(b, g, r);
    store8(u_lanes, u);
    store8(v_lanes, v);
}

/// `portable::yuv444_lanes`.
#[inline(always)]
pub(super) fn yuv444_lanes(
    pixels: &[u8; 4 * LANES],
    y: &mut [u8; LANES],
    u: &mut [u8; LANES],
    v: &mut [u8; LANES],
) {
    let [b0, b1, g0, g1, r0, r1] = channels(pixels).map(to_high_byte);
    store16(luma(b0, g0, r0), luma(b1, g1, r1), y);
    let ((u0, v0), (u1, v1)) = (chroma(b0, g0, r0), chroma(b1, g1, r1));
    store16(u0, u1, u);
    store16(v0, v1, v);
}
