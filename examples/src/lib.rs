//! Shared pieces of the example programs.

pub mod canvas;
pub mod chat;
pub mod embedded;
#[cfg(feature = "self-signed")]
pub mod farm;
