//! Graphics output of an active session: bitmap updates, surface commands
//! (RemoteFX, QOI, QOIZ) with frame pacing, the Graphics Pipeline's PDUs
//! and frames (egfx/), pointer updates, and fast-path output framing. The pixel work is `rdpserve-codecs`'; this layer decides
//! what to encode and how it is cut into PDUs.
//!
//! Imports: `wire`, `api`, `transport`, `connection` (negotiated capabilities).

pub(crate) mod bitmap;
pub(crate) mod bitmap_output;
pub(crate) mod egfx;
pub(crate) mod fastpath;
pub(crate) mod pacing;
pub(crate) mod pointer;
pub(crate) mod surface;
pub(crate) mod surface_output;
