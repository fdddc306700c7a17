//! Wire encodings: pure encoders and decoders of the structures RDP's lower
//! layers put on the wire (TPKT, X.224, MCS and GCC with their BER and PER
//! subsets, UTF-16 strings), and the bounds-checked reader every parser
//! uses. No state machines live here.
//!
//! Imports: nothing else in the crate. Every layer above may use it.

pub(crate) mod ber;
pub(crate) mod cursor;
pub(crate) mod error;
pub(crate) mod fastpath;
pub(crate) mod gcc;
pub(crate) mod mcs;
pub(crate) mod per;
pub mod routing_token;
pub(crate) mod tpkt;
pub(crate) mod utf16;
pub(crate) mod x224;
