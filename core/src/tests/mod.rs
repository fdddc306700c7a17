//! Engine tests without sockets: an in-memory client on a simulated clock
//! drives the engine through the connection sequence, garbage at every
//! step, NLA over in-memory TLS, channels, surfaces and replay.

#![allow(dead_code)]

mod bad_input;
mod channels;
mod common;
mod layers;
mod nla;
mod pixel_formats;
mod rdesktop;
mod relaxed;
mod replay;
mod session;
mod surface;
