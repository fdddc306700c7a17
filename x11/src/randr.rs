//! Resizing the X screen when a client asks (Display Control), through
//! RandR 1.2 on a connection and a thread of its own.
//!
//! The resize itself is only asked of the X server here: the capture thread
//! hears of it as RandR's screen change notification, like a resize made by
//! anything else on the X side (`xrandr`), and every viewer follows from
//! there. So a client's request and an X-side change take one path.
//!
//! A resize disables the CRTCs that would not fit the new screen, sets the
//! screen size, and shows the screen on the first lit CRTC in a mode of
//! exactly that size (created and added to its output when missing), as
//! `xrandr --fb WxH --output O --mode WxH` would. The X server bounds the
//! size: Xvfb, for one, never grows past the framebuffer it started with.

use std::sync::mpsc;

use rdpserve_tokio::DesktopSize;
use tracing::{debug, info, warn};
use x11rb::connection::Connection;
use x11rb::protocol::randr::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{ConnectionExt as _, Window};
use x11rb::rust_connection::RustConnection;

use crate::{X11Error, connect};

/// The RandR version with screen sizes, CRTCs and modes.
const RANDR_VERSION: (u32, u32) = (1, 2);

/// Millimetres for `pixels` at 96 dots an inch, the DPI Xvfb and most X
/// servers report by default (RandR wants a physical size with the
/// screen's).
fn millimetres(pixels: u16) -> u32 {
    (u32::from(pixels) * 254 + 480) / 960
}

/// Whether the X server speaks RandR 1.2 or later.
pub(crate) fn supported(connection: &impl Connection) -> Result<bool, X11Error> {
    if connection
        .extension_information(randr::X11_EXTENSION_NAME)?
        .is_none()
    {
        return Ok(false);
    }
    let version = connection
        .randr_query_version(RANDR_VERSION.0, RANDR_VERSION.1)?
        .reply()?;
    Ok((version.major_version, version.minor_version) >= RANDR_VERSION)
}

/// Hands the clients' size requests to the resizing thread.
#[derive(Clone)]
pub(crate) struct Resizer {
    sender: mpsc::Sender<DesktopSize>,
}

impl Resizer {
    /// Opens a connection to `display` and starts the resizing thread.
    pub(crate) fn start(display: &str) -> Result<Self, X11Error> {
        let (connection, screen_number) = connect(display)?;
        let root = connection.setup().roots[screen_number].root;
        let supported = supported(&connection)?;
        let display = display.to_owned();
        let (sender, receiver) = mpsc::channel::<DesktopSize>();
        std::thread::Builder::new()
            .name("rdpserve-x11-resize".into())
            .spawn(move || {
                let mut screen = Screen {
                    connection,
                    root,
                    display,
                    warned: false,
                };
                while let Ok(mut size) = receiver.recv() {
                    // Only the latest request matters (a window being
                    // dragged sends many).
                    while let Ok(newer) = receiver.try_recv() {
                        size = newer;
                    }
                    if !supported {
                        debug!(display = screen.display, ?size, "Kept the X screen's size");
                        screen.warn_once(format_args!(
                            "the X server has no RandR {}.{}",
                            RANDR_VERSION.0, RANDR_VERSION.1
                        ));
                        continue;
                    }
                    if let Err(error) = screen.resize(size) {
                        warn!(
                            display = screen.display,
                            %error,
                            ?size,
                            "X screen resize failed; it keeps its size"
                        );
                    }
                }
            })?;
        Ok(Self { sender })
    }

    /// Asks for the X screen to become `size` (returns at once).
    pub(crate) fn request(&self, size: DesktopSize) {
        let _ = self.sender.send(size);
    }
}

struct Screen {
    connection: RustConnection,
    root: Window,
    display: String,
    /// Whether the log already said why the screen cannot follow.
    warned: bool,
}

impl Screen {
    fn warn_once(&mut self, reason: std::fmt::Arguments<'_>) {
        if !std::mem::replace(&mut self.warned, true) {
            warn!(
                display = self.display,
                "Clients asked for another desktop size, but {reason}: the X screen keeps its size"
            );
        }
    }

    fn resize(&mut self, requested: DesktopSize) -> Result<(), X11Error> {
        let range = self
            .connection
            .randr_get_screen_size_range(self.root)?
            .reply()?;
        let width = requested.width.clamp(range.min_width, range.max_width);
        let height = requested.height.clamp(range.min_height, range.max_height);
        if (width, height) != (requested.width, requested.height) {
            self.warn_once(format_args!(
                "the X server's screen can only be {}x{} to {}x{} ({}x{} asked; using {width}x{height})",
                range.min_width,
                range.min_height,
                range.max_width,
                range.max_height,
                requested.width,
                requested.height
            ));
        }
        let connection = &self.connection;
        let geometry = connection.get_geometry(self.root)?.reply()?;
        if (geometry.width, geometry.height) == (width, height) {
            return Ok(());
        }
        let resources = connection
            .randr_get_screen_resources_current(self.root)?
            .reply()?;
        let config_timestamp = resources.config_timestamp;
        let mut lit = Vec::new();
        for &crtc in &resources.crtcs {
            let info = connection
                .randr_get_crtc_info(crtc, config_timestamp)?
                .reply()?;
            if info.mode != x11rb::NONE && !info.outputs.is_empty() {
                lit.push((crtc, info));
            }
        }
        let mode = match lit.first() {
            Some((_, info)) => Some(self.mode(&resources, info.outputs[0], width, height)?),
            None => None,
        };
        info!(
            from = ?(geometry.width, geometry.height),
            to = ?(width, height),
            "Resizing the X screen for a client"
        );
        // One grab, so X clients never see the screen half changed.
        connection.grab_server()?;
        let result = (|| -> Result<(), X11Error> {
            // A CRTC showing more than the new screen must go dark before
            // the screen shrinks (the server refuses the size otherwise).
            for (crtc, info) in &lit {
                let right = i32::from(info.x) + i32::from(info.width);
                let bottom = i32::from(info.y) + i32::from(info.height);
                if right > i32::from(width) || bottom > i32::from(height) {
                    connection
                        .randr_set_crtc_config(
                            *crtc,
                            x11rb::CURRENT_TIME,
                            config_timestamp,
                            0,
                            0,
                            x11rb::NONE,
                            randr::Rotation::ROTATE0,
                            &[],
                        )?
                        .reply()?;
                }
            }
            connection
                .randr_set_screen_size(
                    self.root,
                    width,
                    height,
                    millimetres(width),
                    millimetres(height),
                )?
                .check()?;
            if let (Some((crtc, info)), Some(mode)) = (lit.first(), mode) {
                let status = connection
                    .randr_set_crtc_config(
                        *crtc,
                        x11rb::CURRENT_TIME,
                        config_timestamp,
                        0,
                        0,
                        mode,
                        randr::Rotation::ROTATE0,
                        &info.outputs,
                    )?
                    .reply()?
                    .status;
                if status != randr::SetConfig::SUCCESS {
                    debug!(?status, "The CRTC refused the new mode");
                }
            }
            Ok(())
        })();
        connection.ungrab_server()?;
        connection.flush()?;
        result
    }

    /// A mode of exactly `width` x `height` that `output` can show: one it
    /// lists already, or a new one added to it.
    fn mode(
        &self,
        resources: &randr::GetScreenResourcesCurrentReply,
        output: randr::Output,
        width: u16,
        height: u16,
    ) -> Result<randr::Mode, X11Error> {
        let connection = &self.connection;
        let info = connection
            .randr_get_output_info(output, resources.config_timestamp)?
            .reply()?;
        let same_size = |mode: &&randr::ModeInfo| mode.width == width && mode.height == height;
        if let Some(mode) = resources
            .modes
            .iter()
            .filter(same_size)
            .find(|mode| info.modes.contains(&mode.id))
        {
            return Ok(mode.id);
        }
        let id = match resources.modes.iter().find(same_size) {
            Some(mode) => mode.id,
            None => {
                let name = format!("{width}x{height}");
                // Timings of a 60 Hz mode without blanking: a virtual
                // screen has no monitor to drive.
                let mode = randr::ModeInfo {
                    id: 0,
                    width,
                    height,
                    dot_clock: u32::from(width) * u32::from(height) * 60,
                    hsync_start: width,
                    hsync_end: width,
                    htotal: width,
                    hskew: 0,
                    vsync_start: height,
                    vsync_end: height,
                    vtotal: height,
                    name_len: name.len() as u16,
                    mode_flags: randr::ModeFlag::from(0u32),
                };
                connection
                    .randr_create_mode(self.root, mode, name.as_bytes())?
                    .reply()?
                    .mode
            }
        };
        connection.randr_add_output_mode(output, id)?.check()?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::millimetres;

    #[test]
    fn sizes_in_millimetres_are_at_96_dpi() {
        assert_eq!(millimetres(96), 25);
        assert_eq!(millimetres(1920), 508);
        assert_eq!(millimetres(0), 0);
    }
}
