//! Pixel encoders for rdpserve.
#![forbid(unsafe_code)]
