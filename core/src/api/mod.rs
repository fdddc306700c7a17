//! The application's vocabulary: configuration, events, errors, the
//! graphics and channel commands it gives, and the value types inside them
//! (input, pointers, clipboard, sound, monitor layouts). Everything here is
//! data; the protocol layers above speak it.
//!
//! Imports: `wire` and `security`.

pub mod clipboard;
pub(crate) mod command;
pub(crate) mod config;
pub(crate) mod display;
pub(crate) mod error;
pub(crate) mod event;
pub mod input;
pub(crate) mod pointer;
pub(crate) mod routing;
pub mod sound;
pub(crate) mod update;
