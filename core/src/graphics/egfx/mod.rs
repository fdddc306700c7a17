//! The Graphics Pipeline (MS-RDPEGFX): its PDUs (pdu.rs), the choice of a
//! capability set (caps.rs), and the output (output.rs): one surface the
//! size of the desktop, frames of WireToSurface1 PDUs from the shadow's
//! changed tiles, paced by the client's frame acknowledgements, every
//! message through ZGFX, and scroll detection (scroll.rs): moved rows as
//! one SurfaceToSurface. The channel itself is the DVC host's
//! (channels/dvc_host.rs); the session joins the two.

pub(crate) mod avc;
pub(crate) mod caps;
pub(crate) mod output;
pub(crate) mod pdu;
pub(crate) mod scroll;
