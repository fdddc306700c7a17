//! Monitor layouts a client asks for (MS-RDPEDISP).

/// One monitor of a layout the client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorLayout {
    pub primary: bool,
    pub left: i32,
    pub top: i32,
    pub width: u32,
    pub height: u32,
    pub orientation: u32,
    pub desktop_scale_factor: u32,
    pub device_scale_factor: u32,
}
