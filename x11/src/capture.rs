//! The capture thread: waits for XDamage and XFixes cursor events on a
//! connection of its own, reads the damaged areas once (MIT-SHM or
//! `GetImage`) into the shared screen, and wakes the viewers.
//!
//! DAMAGE reports at level NonEmpty: one event when the screen goes from
//! clean to damaged. The thread then takes the whole damaged region with
//! `DamageSubtract` (which also makes it clean again) and reads it, at most
//! [`MAX_CAPTURES_PER_SECOND`] times a second; everything drawn in between
//! collects in the region. An idle screen sends no events, so the thread
//! sleeps in `wait_for_event` and costs nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdpserve_tokio::Rectangle;
use tracing::{debug, error, info, warn};
use x11rb::connection::Connection;
use x11rb::errors::ReplyError;
use x11rb::protocol::Event;
use x11rb::protocol::damage::{self, ConnectionExt as _};
use x11rb::protocol::randr::{self, ConnectionExt as _};
use x11rb::protocol::xfixes::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{self, ConnectionExt as _, ImageFormat, Window};
use x11rb::rust_connection::RustConnection;

use crate::cursor::CursorImage;
use crate::format::ScreenFormat;
use crate::screen::Shared;
use crate::shm::ShmSegment;
use crate::{X11Error, X11Options, connect, require_extension};

/// The most captures a second: damage arriving faster is gathered into the
/// next capture. Clients rarely draw more; the cap bounds the cost of a
/// screen that changes all the time.
const MAX_CAPTURES_PER_SECOND: u32 = 60;

/// Damaged rectangles read one by one; past this the region's bounding box
/// is read in one request, cheaper than many small ones.
const MAX_RECTANGLES_READ: usize = 32;

/// Opens `display`, reads the whole screen and starts the capture thread.
pub(crate) fn start(display_name: &str, options: &X11Options) -> Result<Arc<Shared>, X11Error> {
    let (connection, screen_number) = connect(display_name)?;
    let setup = connection.setup();
    let screen = &setup.roots[screen_number];
    let root = screen.root;
    let format = ScreenFormat::of(setup, screen)?;
    let (width, height) = (screen.width_in_pixels, screen.height_in_pixels);

    require_extension(&connection, damage::X11_EXTENSION_NAME)?;
    require_extension(&connection, xfixes::X11_EXTENSION_NAME)?;
    // Each extension must be told the client's version before use.
    connection.xfixes_query_version(5, 0)?.reply()?;
    connection.damage_query_version(1, 1)?.reply()?;

    let stride = format.stride(width);
    let shm = if options.no_shm {
        None
    } else {
        match ShmSegment::attach(&connection, stride * usize::from(height)) {
            Ok(segment) => Some(segment),
            Err(error) => {
                warn!(%error, "MIT-SHM unavailable, capturing with GetImage");
                None
            }
        }
    };
    let method = if shm.is_some() { "MIT-SHM" } else { "GetImage" };
    info!(
        display = display_name,
        width,
        height,
        format = ?format.format,
        method,
        "Sharing X display"
    );
    let shared = Arc::new(Shared::new(
        width,
        height,
        stride,
        format.bytes_per_pixel(),
        format.format,
        method,
    ));

    let damage = connection.generate_id()?;
    connection.damage_create(damage, root, damage::ReportLevel::NON_EMPTY)?;
    let region = connection.generate_id()?;
    connection.xfixes_create_region(region, &[])?;
    connection.xfixes_select_cursor_input(root, xfixes::CursorNotifyMask::DISPLAY_CURSOR)?;
    // Resizes, whoever makes them (a client through Display Control, or
    // `xrandr` on the X side), arrive as screen change notifications.
    if crate::randr::supported(&connection)? {
        connection.randr_select_input(root, randr::NotifyMask::SCREEN_CHANGE)?;
    }
    connection.flush()?;

    let mut capture = Capture {
        connection,
        root,
        format,
        shm,
        damage,
        region,
        shared: shared.clone(),
        size: (width, height),
    };
    // The first picture: the whole screen, then what damage says.
    capture.read(&[xproto::Rectangle {
        x: 0,
        y: 0,
        width,
        height,
    }])?;
    capture.read_cursor()?;
    std::thread::Builder::new()
        .name("rdpserve-x11-capture".into())
        .spawn(move || {
            if let Err(error) = capture.run() {
                error!(%error, "Capture stopped; sessions end");
            }
            if let Some(shm) = &capture.shm {
                shm.detach(&capture.connection);
            }
        })?;
    Ok(shared)
}

struct Capture {
    connection: RustConnection,
    root: Window,
    format: ScreenFormat,
    shm: Option<ShmSegment>,
    damage: damage::Damage,
    region: xfixes::Region,
    shared: Arc<Shared>,
    size: (u16, u16),
}

impl Capture {
    fn run(&mut self) -> Result<(), X11Error> {
        let interval = Duration::from_secs(1) / MAX_CAPTURES_PER_SECOND;
        let mut last_capture = Instant::now();
        loop {
            let (mut damaged, mut cursor, mut resized) = (false, false, false);
            let event = self.connection.wait_for_event()?;
            let mut next = Some(event);
            while let Some(event) = next {
                match event {
                    Event::DamageNotify(_) => damaged = true,
                    Event::XfixesCursorNotify(_) => cursor = true,
                    Event::RandrScreenChangeNotify(_) => resized = true,
                    Event::Error(error) => warn!(?error, "X error on the capture connection"),
                    _ => {}
                }
                next = self.connection.poll_for_event()?;
            }
            if cursor {
                self.read_cursor()?;
            }
            if resized {
                self.follow_size()?;
            }
            if damaged {
                // Let damage gather until the next capture is due.
                let due = last_capture + interval;
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                last_capture = Instant::now();
                self.connection
                    .damage_subtract(self.damage, x11rb::NONE, self.region)?;
                let region = self.connection.xfixes_fetch_region(self.region)?.reply()?;
                let read = if region.rectangles.len() > MAX_RECTANGLES_READ {
                    self.read(&[region.extents])
                } else {
                    self.read(&region.rectangles)
                };
                match read {
                    // The screen shrank after the damage was reported and
                    // before its notification arrived: the server refuses
                    // areas outside the root window.
                    Err(X11Error::Reply(ReplyError::X11Error(error))) => {
                        debug!(?error, "Capture refused; checking the screen size");
                        self.follow_size()?;
                    }
                    other => other?,
                }
            }
        }
    }

    /// Takes the root window's size and, when it changed, resizes the
    /// shared screen, reads it whole and wakes the viewers (each then
    /// resizes its session).
    fn follow_size(&mut self) -> Result<(), X11Error> {
        let geometry = self.connection.get_geometry(self.root)?.reply()?;
        let (width, height) = (geometry.width, geometry.height);
        if (width, height) == self.size {
            return Ok(());
        }
        info!(
            from = ?self.size,
            to = ?(width, height),
            "The X screen changed size"
        );
        self.size = (width, height);
        let stride = self.format.stride(width);
        let needed = stride * usize::from(height);
        if let Some(shm) = &self.shm
            && shm.len() < needed
        {
            shm.detach(&self.connection);
            self.shm = Some(ShmSegment::attach(&self.connection, needed)?);
        }
        self.shared.resize(width, height, stride);
        self.read(&[xproto::Rectangle {
            x: 0,
            y: 0,
            width,
            height,
        }])
    }

    /// Reads `rectangles` of the root window into the shared screen and
    /// wakes the viewers.
    fn read(&mut self, rectangles: &[xproto::Rectangle]) -> Result<(), X11Error> {
        let (screen_width, screen_height) = self.size;
        let mut damage = Vec::with_capacity(rectangles.len());
        for rectangle in rectangles {
            // Clipped to the screen this capture was sized for.
            let left = rectangle.x.max(0) as u16;
            let top = rectangle.y.max(0) as u16;
            let right = (i32::from(rectangle.x) + i32::from(rectangle.width))
                .clamp(0, i32::from(screen_width)) as u16;
            let bottom = (i32::from(rectangle.y) + i32::from(rectangle.height))
                .clamp(0, i32::from(screen_height)) as u16;
            if left >= right || top >= bottom {
                continue;
            }
            let area = Rectangle {
                left,
                top,
                right,
                bottom,
            };
            self.read_area(area)?;
            damage.push(area);
        }
        if !damage.is_empty() {
            self.shared.publish(&damage);
        }
        Ok(())
    }

    fn read_area(&mut self, area: Rectangle) -> Result<(), X11Error> {
        let (width, height) = (area.right - area.left, area.bottom - area.top);
        let stride = self.format.stride(width);
        let size = stride * usize::from(height);
        let geometry = (area.left as i16, area.top as i16, width, height);
        let owned;
        let data: &[u8] = match &mut self.shm {
            Some(shm) => shm.get_image(&self.connection, self.root, geometry, size)?,
            None => {
                owned = self
                    .connection
                    .get_image(
                        ImageFormat::Z_PIXMAP,
                        self.root,
                        geometry.0,
                        geometry.1,
                        width,
                        height,
                        !0,
                    )?
                    .reply()?
                    .data;
                &owned
            }
        };
        let row = usize::from(width) * self.format.bytes_per_pixel();
        let mut screen = self.shared.lock();
        let screen_stride = screen.stride;
        let offset = usize::from(area.left) * self.format.bytes_per_pixel();
        for (y, source) in data.chunks(stride).take(usize::from(height)).enumerate() {
            let start = (usize::from(area.top) + y) * screen_stride + offset;
            let (Some(target), Some(source)) =
                (screen.pixels.get_mut(start..start + row), source.get(..row))
            else {
                // A reply shorter than asked: keep what arrived.
                debug!(?area, "Short image reply");
                break;
            };
            target.copy_from_slice(source);
        }
        Ok(())
    }

    fn read_cursor(&mut self) -> Result<(), X11Error> {
        let image = match self.connection.xfixes_get_cursor_image()?.reply() {
            Ok(image) => image,
            // The server refuses the image of a cursor whose client is
            // gone (BadAccess, seen after `xsetroot -cursor_name` exits):
            // viewers keep the last shape, the capture goes on.
            Err(x11rb::errors::ReplyError::X11Error(error)) => {
                debug!(?error, "Cursor image refused");
                return Ok(());
            }
            Err(error) => return Err(error.into()),
        };
        let cursor = CursorImage::from_xfixes(
            image.cursor_serial,
            (image.width, image.height),
            (image.xhot, image.yhot),
            &image.cursor_image,
        );
        debug!(
            serial = cursor.serial,
            width = cursor.width,
            height = cursor.height,
            "Cursor changed"
        );
        self.shared.lock().cursor = Some(Arc::new(cursor));
        self.shared.wake();
        Ok(())
    }
}
