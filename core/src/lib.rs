//! rdpserve-core: the sans-IO RDP server engine.
#![forbid(unsafe_code)]

pub mod cursor;
pub mod error;

// Wire layers, outermost first.
pub mod tpkt;
pub mod x224;
pub mod ber;
pub mod per;
pub mod mcs;
pub mod gcc;

// RDP PDUs carried over MCS.
pub mod capabilities;
pub mod client_info;
pub mod data_pdus;
pub mod licensing;
pub mod share;

// Input and output paths of the active session.
pub mod bitmap;
pub mod fastpath;
pub mod input;

pub use error::{DecodeError, Error, Unsupported};
