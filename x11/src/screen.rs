//! The one copy of the screen the capture thread keeps, and each viewer's
//! stream of updates cut from it.
//!
//! The capture thread writes what XDamage reported into `Screen::pixels`,
//! logs the damaged rectangles under a new generation number and wakes the
//! viewers (a `watch` channel). Each viewer remembers the last generation it
//! sent and, when woken, sends the union of the rectangles logged since, as
//! one `DamagedBitmap`. A viewer that fell further behind than the log
//! reaches (or just connected, or was hidden) sends the whole screen.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use rdpserve_tokio::{
    BitmapUpdate, DesktopSize, DisplayUpdate, MonitorLayout, PixelFormat, RdpServerDisplay,
    RdpServerDisplayUpdates, Rectangle, RgbaPointer,
};
use tokio::sync::watch;
use tracing::{debug, info};

use crate::cursor::CursorImage;
use crate::randr::Resizer;

/// Damaged rectangles kept for viewers that are behind; past this a viewer
/// repaints the whole screen, which costs no more than that many rectangles.
const DAMAGE_LOG: usize = 256;

/// Rectangles one update carries before they become their bounding box.
const MAX_DAMAGE_RECTANGLES: usize = 64;

/// Pointer cache slots used; FreeRDP and Windows clients announce 20 to 25.
pub(crate) const POINTER_SLOTS: usize = 16;

/// The capture's state, shared by the capture thread and every viewer.
pub(crate) struct Shared {
    screen: Mutex<Screen>,
    changed: watch::Sender<u64>,
    method: &'static str,
}

pub(crate) struct Screen {
    pub width: u16,
    pub height: u16,
    pub stride: usize,
    pub bytes_per_pixel: usize,
    pub format: PixelFormat,
    pub pixels: Vec<u8>,
    /// Bumped once per capture.
    pub generation: u64,
    /// (generation, rectangle) of the last captures, oldest first.
    damage: VecDeque<(u64, Rectangle)>,
    pub cursor: Option<Arc<CursorImage>>,
}

impl Shared {
    pub(crate) fn new(
        width: u16,
        height: u16,
        stride: usize,
        bytes_per_pixel: usize,
        format: PixelFormat,
        method: &'static str,
    ) -> Self {
        let screen = Screen {
            width,
            height,
            stride,
            bytes_per_pixel,
            format,
            pixels: vec![0; stride * usize::from(height)],
            generation: 0,
            damage: VecDeque::new(),
            cursor: None,
        };
        Self {
            screen: Mutex::new(screen),
            changed: watch::Sender::new(0),
            method,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Screen> {
        // A poisoned lock means a panic elsewhere; the pixels are still
        // usable, and a viewer should not take the server down with it.
        self.screen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn size(&self) -> DesktopSize {
        let screen = self.lock();
        DesktopSize {
            width: screen.width,
            height: screen.height,
        }
    }

    pub(crate) fn method(&self) -> &'static str {
        self.method
    }

    /// Logs `damage` as one capture's and wakes the viewers.
    pub(crate) fn publish(&self, damage: &[Rectangle]) {
        let generation = {
            let mut screen = self.lock();
            screen.generation += 1;
            let generation = screen.generation;
            for rectangle in damage {
                screen.damage.push_back((generation, *rectangle));
            }
            while screen.damage.len() > DAMAGE_LOG {
                screen.damage.pop_front();
            }
            generation
        };
        self.changed.send_replace(generation);
    }

    /// Gives the screen a new size (its pixels black until the capture
    /// reads them) and forgets the damage logged at the old one, so every
    /// viewer repaints the whole screen after resizing its session.
    pub(crate) fn resize(&self, width: u16, height: u16, stride: usize) {
        let mut screen = self.lock();
        screen.width = width;
        screen.height = height;
        screen.stride = stride;
        screen.pixels = vec![0; stride * usize::from(height)];
        screen.damage.clear();
        screen.generation += 1;
    }

    /// Wakes the viewers without new damage (a new cursor).
    pub(crate) fn wake(&self) {
        self.changed.send_modify(|_| {});
    }
}

/// The display handler: hands each connection its own [`X11Updates`].
pub struct X11Display {
    shared: Arc<Shared>,
    resizer: Option<Resizer>,
}

impl X11Display {
    pub(crate) fn new(shared: Arc<Shared>, resizer: Option<Resizer>) -> Self {
        Self { shared, resizer }
    }
}

impl RdpServerDisplay for X11Display {
    type Updates = X11Updates;

    async fn size(&self) -> DesktopSize {
        self.shared.size()
    }

    async fn updates(&self) -> io::Result<X11Updates> {
        let changed = self.shared.changed.subscribe();
        Ok(X11Updates {
            size: self.shared.size(),
            resizer: self.resizer.clone(),
            shared: self.shared.clone(),
            changed,
            sent: 0,
            full: true,
            refresh: Vec::new(),
            cursor_serial: None,
            slots: [None; POINTER_SLOTS],
            next_slot: 0,
            queue: VecDeque::new(),
        })
    }
}

/// One viewer's updates.
pub struct X11Updates {
    shared: Arc<Shared>,
    /// The size of this viewer's session.
    size: DesktopSize,
    /// Where a client's wish for another size goes; `None` keeps the size.
    resizer: Option<Resizer>,
    changed: watch::Receiver<u64>,
    /// The last generation this viewer sent.
    sent: u64,
    /// Whether the next update repaints the whole screen.
    full: bool,
    /// Areas the client asked for again.
    refresh: Vec<Rectangle>,
    cursor_serial: Option<u32>,
    /// The cursor serial each pointer cache slot of the client holds.
    slots: [Option<u32>; POINTER_SLOTS],
    next_slot: usize,
    queue: VecDeque<DisplayUpdate>,
}

impl X11Updates {
    /// Queues what changed since this viewer's last update.
    fn collect(&mut self) {
        self.changed.borrow_and_update();
        let shared = self.shared.clone();
        let screen = shared.lock();
        let size = DesktopSize {
            width: screen.width,
            height: screen.height,
        };
        if size != self.size {
            // The session is reactivated at the new size; the client may
            // have dropped its pointer cache on the way, so the pointer is
            // sent again, then the whole screen.
            self.size = size;
            self.queue.push_back(DisplayUpdate::Resize(size));
            self.cursor_serial = None;
            self.slots = [None; POINTER_SLOTS];
            self.full = true;
        }
        if let Some(cursor) = &screen.cursor
            && self.cursor_serial != Some(cursor.serial)
        {
            self.cursor_serial = Some(cursor.serial);
            let update = self.pointer_update(cursor);
            self.queue.push_back(update);
        }
        let whole = Rectangle {
            left: 0,
            top: 0,
            right: screen.width,
            bottom: screen.height,
        };
        let mut damage = std::mem::take(&mut self.refresh);
        if screen.generation > self.sent {
            let oldest = screen.damage.front().map(|(generation, _)| *generation);
            // The log holds every generation after `sent` only when its
            // oldest entry is no newer than `sent + 1`.
            if oldest.is_none_or(|oldest| oldest > self.sent + 1) {
                self.full = true;
            } else {
                damage.extend(
                    screen
                        .damage
                        .iter()
                        .filter(|(generation, _)| *generation > self.sent)
                        .map(|(_, rectangle)| *rectangle),
                );
            }
            self.sent = screen.generation;
        }
        if std::mem::take(&mut self.full) {
            damage = vec![whole];
        }
        let damage: Vec<Rectangle> = damage
            .into_iter()
            .filter_map(|rectangle| clip(rectangle, &whole))
            .collect();
        let Some(bounds) = damage.iter().copied().reduce(union) else {
            return;
        };
        let damage = if damage.len() > MAX_DAMAGE_RECTANGLES {
            vec![bounds]
        } else {
            damage
        };
        let bitmap = crop(&screen, bounds);
        self.queue
            .push_back(DisplayUpdate::DamagedBitmap { bitmap, damage });
    }

    /// A pointer update for `cursor`: recalled from the client's cache when
    /// a slot holds it, else sent into the next slot.
    fn pointer_update(&mut self, cursor: &CursorImage) -> DisplayUpdate {
        if cursor.width == 0 || cursor.height == 0 {
            return DisplayUpdate::HidePointer;
        }
        if let Some(slot) = self.slots.iter().position(|s| *s == Some(cursor.serial)) {
            debug!(slot, serial = cursor.serial, "Pointer recalled from cache");
            return DisplayUpdate::CachedPointer(slot as u16);
        }
        let slot = self.next_slot;
        self.next_slot = (self.next_slot + 1) % POINTER_SLOTS;
        self.slots[slot] = Some(cursor.serial);
        let mut pointer = RgbaPointer {
            width: cursor.width,
            height: cursor.height,
            hotspot_x: cursor.hotspot_x,
            hotspot_y: cursor.hotspot_y,
            cache_index: None,
            data: cursor.rgba.clone(),
        };
        pointer.cache_index = Some(slot as u16);
        DisplayUpdate::RgbaPointer(pointer)
    }
}

impl RdpServerDisplayUpdates for X11Updates {
    async fn next_update(&mut self) -> Option<DisplayUpdate> {
        loop {
            if let Some(update) = self.queue.pop_front() {
                return Some(update);
            }
            self.collect();
            if !self.queue.is_empty() {
                continue;
            }
            // An error means the capture thread ended (the X server went
            // away): the session ends with it.
            self.changed.changed().await.ok()?;
        }
    }

    fn suppress_output(&mut self, allow_display_updates: bool) {
        // Nothing is pulled while hidden; on resume the generations since
        // the last update are sent, or the whole screen when the log no
        // longer reaches back that far.
        let _ = allow_display_updates;
    }

    fn refresh(&mut self, areas: &[Rectangle]) {
        self.refresh.extend_from_slice(areas);
        self.changed.mark_changed();
    }

    fn request_layout(&mut self, monitors: &[MonitorLayout]) {
        // The desktop spans every monitor the client asks for.
        let right = monitors
            .iter()
            .map(|monitor| i64::from(monitor.left) + i64::from(monitor.width))
            .max();
        let bottom = monitors
            .iter()
            .map(|monitor| i64::from(monitor.top) + i64::from(monitor.height))
            .max();
        let left = monitors.iter().map(|monitor| i64::from(monitor.left)).min();
        let top = monitors.iter().map(|monitor| i64::from(monitor.top)).min();
        let (Some(right), Some(bottom), Some(left), Some(top)) = (right, bottom, left, top) else {
            return;
        };
        let dimension = |extent: i64| {
            extent.clamp(i64::from(DesktopSize::MIN), i64::from(DesktopSize::MAX)) as u16
        };
        let size = DesktopSize {
            width: dimension(right - left),
            height: dimension(bottom - top),
        };
        match &self.resizer {
            Some(resizer) => {
                debug!(?size, "Client asked for another desktop size");
                resizer.request(size);
            }
            None => info!(
                ?monitors,
                "Client asked for another layout; the X screen keeps its size"
            ),
        }
    }
}

fn clip(rectangle: Rectangle, bounds: &Rectangle) -> Option<Rectangle> {
    let clipped = Rectangle {
        left: rectangle.left.max(bounds.left),
        top: rectangle.top.max(bounds.top),
        right: rectangle.right.min(bounds.right),
        bottom: rectangle.bottom.min(bounds.bottom),
    };
    (clipped.left < clipped.right && clipped.top < clipped.bottom).then_some(clipped)
}

fn union(a: Rectangle, b: Rectangle) -> Rectangle {
    Rectangle {
        left: a.left.min(b.left),
        top: a.top.min(b.top),
        right: a.right.max(b.right),
        bottom: a.bottom.max(b.bottom),
    }
}

/// The pixels of `area` (inside the screen), in the screen's format.
fn crop(screen: &Screen, area: Rectangle) -> BitmapUpdate {
    let bytes_per_pixel = screen.bytes_per_pixel;
    let width = usize::from(area.right - area.left);
    let height = usize::from(area.bottom - area.top);
    let row = width * bytes_per_pixel;
    let mut data = Vec::with_capacity(row * height);
    for y in usize::from(area.top)..usize::from(area.bottom) {
        let start = y * screen.stride + usize::from(area.left) * bytes_per_pixel;
        data.extend_from_slice(&screen.pixels[start..start + row]);
    }
    BitmapUpdate {
        x: area.left,
        y: area.top,
        width: area.right - area.left,
        height: area.bottom - area.top,
        stride: row,
        format: screen.format,
        data: Arc::from(data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rectangle(left: u16, top: u16, right: u16, bottom: u16) -> Rectangle {
        Rectangle {
            left,
            top,
            right,
            bottom,
        }
    }

    fn viewer(shared: &Arc<Shared>) -> X11Updates {
        let display = X11Display::new(shared.clone(), None);
        futures_block_on(display.updates()).expect("updates")
    }

    /// Runs a future that never waits (the tests only call ready ones).
    fn futures_block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    fn damaged(update: DisplayUpdate) -> (BitmapUpdate, Vec<Rectangle>) {
        match update {
            DisplayUpdate::DamagedBitmap { bitmap, damage } => (bitmap, damage),
            other => panic!("expected a damaged bitmap, got {other:?}"),
        }
    }

    fn screen(width: u16, height: u16) -> Arc<Shared> {
        let shared = Arc::new(Shared::new(
            width,
            height,
            usize::from(width) * 4,
            4,
            PixelFormat::BgrX32,
            "test",
        ));
        for (index, byte) in shared.lock().pixels.iter_mut().enumerate() {
            *byte = index as u8;
        }
        shared
    }

    #[test]
    fn a_new_viewer_gets_the_whole_screen_then_only_damage() {
        let shared = screen(8, 4);
        let mut viewer = viewer(&shared);
        viewer.collect();
        let (bitmap, damage) = damaged(viewer.queue.pop_front().expect("first update"));
        assert_eq!((bitmap.width, bitmap.height), (8, 4));
        assert_eq!(damage, [rectangle(0, 0, 8, 4)]);
        assert_eq!(&bitmap.data[..], &shared.lock().pixels[..]);

        shared.publish(&[rectangle(1, 1, 3, 2), rectangle(5, 2, 6, 4)]);
        viewer.collect();
        let (bitmap, damage) = damaged(viewer.queue.pop_front().expect("damage"));
        assert_eq!(
            (bitmap.x, bitmap.y, bitmap.width, bitmap.height),
            (1, 1, 5, 3)
        );
        assert_eq!(damage, [rectangle(1, 1, 3, 2), rectangle(5, 2, 6, 4)]);
        // Row 1 from x = 1: bytes 32 + 4 ...
        assert_eq!(bitmap.data[0], 36);
        assert_eq!(bitmap.stride, 20);

        viewer.collect();
        assert!(viewer.queue.is_empty(), "nothing new, nothing sent");
    }

    #[test]
    fn two_viewers_share_one_capture() {
        let shared = screen(8, 4);
        let (mut first, mut second) = (viewer(&shared), viewer(&shared));
        first.collect();
        second.collect();
        first.queue.clear();
        second.queue.clear();
        shared.publish(&[rectangle(0, 0, 2, 2)]);
        first.collect();
        shared.publish(&[rectangle(4, 2, 6, 4)]);
        first.collect();
        second.collect();
        assert_eq!(first.queue.len(), 2);
        let (_, damage) = damaged(second.queue.pop_front().expect("both captures"));
        assert_eq!(damage, [rectangle(0, 0, 2, 2), rectangle(4, 2, 6, 4)]);
    }

    #[test]
    fn a_viewer_behind_the_log_repaints_everything() {
        let shared = screen(8, 4);
        let mut viewer = viewer(&shared);
        viewer.collect();
        viewer.queue.clear();
        for _ in 0..=DAMAGE_LOG {
            shared.publish(&[rectangle(0, 0, 1, 1)]);
        }
        viewer.collect();
        let (_, damage) = damaged(viewer.queue.pop_front().expect("repaint"));
        assert_eq!(damage, [rectangle(0, 0, 8, 4)]);
    }

    #[test]
    fn refresh_sends_the_asked_areas() {
        let shared = screen(8, 4);
        let mut viewer = viewer(&shared);
        viewer.collect();
        viewer.queue.clear();
        viewer.refresh(&[rectangle(2, 2, 20, 3)]);
        viewer.collect();
        let (_, damage) = damaged(viewer.queue.pop_front().expect("refresh"));
        assert_eq!(damage, [rectangle(2, 2, 8, 3)], "clipped to the screen");
    }

    #[test]
    fn cursors_are_cached_and_recalled() {
        let shared = screen(8, 4);
        let mut viewer = viewer(&shared);
        viewer.collect();
        viewer.queue.clear();
        let arrow = Arc::new(CursorImage::test(1, 2, 2));
        let hand = Arc::new(CursorImage::test(2, 3, 3));
        for (cursor, expected) in [(&arrow, "rgba 0"), (&hand, "rgba 1"), (&arrow, "cached 0")] {
            shared.lock().cursor = Some(cursor.clone());
            shared.wake();
            viewer.collect();
            let seen = match viewer.queue.pop_front().expect("pointer") {
                DisplayUpdate::RgbaPointer(pointer) => {
                    format!("rgba {}", pointer.cache_index.expect("slot"))
                }
                DisplayUpdate::CachedPointer(slot) => format!("cached {slot}"),
                other => panic!("{other:?}"),
            };
            assert_eq!(seen, expected);
        }
    }
}
