//! Long-term reference pictures for an encoder that alternates two
//! unrelated pictures, as AVC444's main and auxiliary views are.
//!
//! openh264 predicts each picture from the one before it, which for
//! AVC444 is the other view: screen-content mode sees a scene change at
//! every picture and codes each as an IDR. With long-term references on,
//! screen-content mode keeps several past pictures and predicts each new
//! one from whichever it finds closest, so each view predicts from its own
//! previous picture. openh264 allows that only when the link loses nothing
//! (`bIsLosslessLink`, true of RDP's reliable channel), a parameter the
//! `openh264` crate does not expose, so this module sets it through the
//! encoder's raw options.
//!
//! Why `unsafe` here: the raw options take a pointer to a C parameter
//! struct. This module is, with `yuv/sse2.rs`, the crate's exception to
//! `deny(unsafe_code)`.
#![allow(unsafe_code)]

use std::ffi::c_void;

use openh264::encoder::Encoder;
use openh264_sys2::{ENCODER_OPTION_SVC_ENCODE_PARAM_EXT, SEncParamExt};

/// Turns on long-term references (and the lossless link they need in
/// screen mode) on `encoder`, which must have encoded a picture already
/// (the crate initialises openh264 at its first picture, and a new picture
/// size initialises it again without them). The next picture is an IDR.
pub(super) fn enable(encoder: &mut Encoder) -> Result<(), ()> {
    let mut params = SEncParamExt::default();
    // SAFETY: the encoder is initialised (it encoded a picture), so
    // openh264's GetOption copies its current parameters, exactly
    // size_of::<SEncParamExt>() bytes, into `params`, a valid and
    // exclusively borrowed SEncParamExt; SetOption copies the same number
    // of bytes out of it and validates every field. `raw_api` asks that no
    // parameter the crate relies on be changed: the two changed here only
    // choose reference pictures, which the crate never reads.
    let status = unsafe {
        let raw = encoder.raw_api();
        let read = raw.get_option(
            ENCODER_OPTION_SVC_ENCODE_PARAM_EXT,
            (&raw mut params).cast::<c_void>(),
        );
        if read != 0 {
            read
        } else {
            params.bIsLosslessLink = true;
            params.bEnableLongTermReference = true;
            raw.set_option(
                ENCODER_OPTION_SVC_ENCODE_PARAM_EXT,
                (&raw mut params).cast::<c_void>(),
            )
        }
    };
    if status == 0 { Ok(()) } else { Err(()) }
}
