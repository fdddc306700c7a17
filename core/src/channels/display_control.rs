//! Display Control (MS-RDPEDISP) over its dynamic channel: the server's
//! capabilities and the client's monitor layouts.

use bytes::BufMut;

use crate::api::display::MonitorLayout;
use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;

/// The dynamic channel's name.
pub const CHANNEL_NAME: &str = "Microsoft::Windows::RDS::DisplayControl";
const TYPE_MONITOR_LAYOUT: u32 = 0x0000_0002;
const TYPE_CAPS: u32 = 0x0000_0005;
/// DISPLAYCONTROL_MONITOR_LAYOUT is 40 bytes.
const MONITOR_LAYOUT_SIZE: usize = 40;
/// Monitors accepted in one layout (the capability this server announces).
pub const MAX_MONITORS: u32 = 16;
const MONITOR_PRIMARY: u32 = 0x0000_0001;

/// DISPLAYCONTROL_CAPS_PDU (2.2.2.1): up to 16 monitors of 8192x8192.
pub fn encode_caps(out: &mut Vec<u8>) {
    out.put_u32_le(TYPE_CAPS);
    out.put_u32_le(20);
    out.put_u32_le(MAX_MONITORS);
    out.put_u32_le(8192);
    out.put_u32_le(8192);
}

/// Decodes a DISPLAYCONTROL_MONITOR_LAYOUT_PDU (2.2.2.2).
pub fn decode_monitor_layout(message: &[u8]) -> Result<Vec<MonitorLayout>, DecodeError> {
    let mut cursor = ReadCursor::new(message, "display control pdu");
    let kind = cursor.read_u32_le()?;
    if kind != TYPE_MONITOR_LAYOUT {
        return Err(DecodeError::Unexpected {
            context: "display control pdu",
            what: "type",
            value: kind,
        });
    }
    let length = cursor.read_u32_le()? as usize;
    if length != message.len() {
        return Err(cursor.invalid("length", "does not match the message"));
    }
    if cursor.read_u32_le()? as usize != MONITOR_LAYOUT_SIZE {
        return Err(cursor.invalid("monitorLayoutSize", "must be 40"));
    }
    let count = cursor.read_u32_le()?;
    if count == 0 || count > MAX_MONITORS {
        return Err(cursor.invalid("numMonitors", "outside 1..=16"));
    }
    cursor.ensure(count as usize * MONITOR_LAYOUT_SIZE)?;
    let mut monitors = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let flags = cursor.read_u32_le()?;
        let left = cursor.read_u32_le()? as i32;
        let top = cursor.read_u32_le()? as i32;
        let width = cursor.read_u32_le()?;
        let height = cursor.read_u32_le()?;
        let _physical_width = cursor.read_u32_le()?;
        let _physical_height = cursor.read_u32_le()?;
        monitors.push(MonitorLayout {
            primary: flags & MONITOR_PRIMARY != 0,
            left,
            top,
            width,
            height,
            orientation: cursor.read_u32_le()?,
            desktop_scale_factor: cursor.read_u32_le()?,
            device_scale_factor: cursor.read_u32_le()?,
        });
    }
    Ok(monitors)
}

#[cfg(any(test, feature = "fuzzing"))]
/// Encodes a monitor layout PDU (for test clients).
pub fn encode_monitor_layout(out: &mut Vec<u8>, monitors: &[MonitorLayout]) {
    out.put_u32_le(TYPE_MONITOR_LAYOUT);
    out.put_u32_le((16 + monitors.len() * MONITOR_LAYOUT_SIZE) as u32);
    out.put_u32_le(MONITOR_LAYOUT_SIZE as u32);
    out.put_u32_le(monitors.len() as u32);
    for monitor in monitors {
        out.put_u32_le(if monitor.primary { MONITOR_PRIMARY } else { 0 });
        out.put_u32_le(monitor.left as u32);
        out.put_u32_le(monitor.top as u32);
        out.put_u32_le(monitor.width);
        out.put_u32_le(monitor.height);
        out.put_u32_le(0);
        out.put_u32_le(0);
        out.put_u32_le(monitor.orientation);
        out.put_u32_le(monitor.desktop_scale_factor);
        out.put_u32_le(monitor.device_scale_factor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor() -> MonitorLayout {
        MonitorLayout {
            primary: true,
            left: 0,
            top: 0,
            width: 1024,
            height: 768,
            orientation: 0,
            desktop_scale_factor: 100,
            device_scale_factor: 100,
        }
    }

    #[test]
    fn layouts_round_trip() {
        let mut out = Vec::new();
        encode_monitor_layout(
            &mut out,
            &[
                monitor(),
                MonitorLayout {
                    primary: false,
                    left: 1024,
                    ..monitor()
                },
            ],
        );
        assert_eq!(out.len(), 16 + 80);
        assert_eq!(decode_monitor_layout(&out).unwrap()[1].left, 1024);
        let mut caps = Vec::new();
        encode_caps(&mut caps);
        assert_eq!(caps.len(), 20);
    }

    #[test]
    fn bad_layouts_are_errors() {
        let mut out = Vec::new();
        encode_monitor_layout(&mut out, &[monitor()]);
        for end in 0..out.len() {
            assert!(decode_monitor_layout(&out[..end]).is_err());
        }
        let mut wrong_size = out.clone();
        wrong_size[8] = 41;
        assert!(decode_monitor_layout(&wrong_size).is_err());
        let mut too_many = out.clone();
        too_many[12] = 17;
        assert!(decode_monitor_layout(&too_many).is_err());
        let mut zero = out.clone();
        zero[12] = 0;
        assert!(decode_monitor_layout(&zero).is_err());
        let mut wrong_type = out;
        wrong_type[0] = 5;
        assert!(decode_monitor_layout(&wrong_type).is_err());
    }
}
