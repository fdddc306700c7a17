//! Engine tests without sockets: an in-memory client on a simulated clock
//! drives the engine through the connection sequence, garbage at every
//! step, NLA over in-memory TLS, channels, surfaces and replay.

#![allow(dead_code)]

// The in-memory client lives outside `tests` so the fuzz targets share it.
use crate::test_client as common;

mod bad_input;
mod byo_tls;
mod channels;
mod egfx;
mod layers;
mod nla;
mod pixel_formats;
mod rdesktop;
mod relaxed;
mod replay;
mod routing;
mod session;
mod surface;
