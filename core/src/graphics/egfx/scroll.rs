//! Scroll detection on the Graphics Pipeline: an update whose rows are
//! rows the client already shows, moved up or down, becomes one
//! SurfaceToSurface (MS-RDPEGFX 2.2.2.5) at the start of the next frame,
//! and the tiles it draws whole are not encoded at all; only the newly
//! exposed band and the partly covered tiles go as tiles.
//!
//! The copy reads the client's surface, not the server's shadow, and
//! frames are paced: a tile marked due may still show older pixels on the
//! client. The rule that keeps copies right: **every tile that is not due
//! shows on the client, once the pending copies ran, exactly what the
//! shadow holds.** So a copy only reads rows of tiles that are not due
//! when the scroll is found, which the client will show by the time the
//! copy runs (the copies go first in the next frame, in the order they
//! were found); its destination rows equal the shadow's new rows (checked
//! byte for byte), so a tile the copy covers whole is up to date after it
//! and no longer due, and any other tile it touches keeps its flag. The
//! bitmap cache is not involved: a copy changes the surface, never a cache
//! slot, and cache keys hash the pixels a slot was filled with.

use rdpserve_codecs::Image;
use rdpserve_codecs::damage::TileRect;
use rdpserve_codecs::scroll::{VerticalScroll, find_vertical_scroll};

use crate::graphics::egfx::pdu::{Point16, Rect16};
use crate::graphics::pacing::{FramePacer, TILE};

/// Copies found while frames were held back wait for the next frame; past
/// this many, updates are encoded as tiles instead, so a client that stops
/// acknowledging cannot make the list grow.
pub(crate) const MAX_PENDING_COPIES: usize = 16;

/// The fewest rows worth a copy: one tile's height.
const MIN_ROWS: usize = TILE;

/// A copy of a rectangle of the surface to another place on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SurfaceCopy {
    pub source: Rect16,
    pub destination: Point16,
}

/// A scroll found in an update, before the shadow takes the update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scroll {
    /// The columns of the update's area.
    left: usize,
    width: usize,
    rows: VerticalScroll,
}

impl Scroll {
    pub fn copy(&self) -> SurfaceCopy {
        // INVARIANT: the rows and columns lie within the surface, whose
        // sides fit in 16 bits (`GfxOutput::fits`).
        let source_top = self.rows.source_top();
        SurfaceCopy {
            source: Rect16 {
                left: self.left as u16,
                top: source_top as u16,
                right: (self.left + self.width) as u16,
                bottom: (source_top + self.rows.rows()) as u16,
            },
            destination: Point16 {
                x: self.left as u16,
                y: self.rows.top as u16,
            },
        }
    }

    /// Whether the copy draws all of `tile`.
    fn covers(&self, tile: &TileRect) -> bool {
        tile.x >= self.left
            && tile.x + tile.width <= self.left + self.width
            && tile.y >= self.rows.top
            && tile.y + tile.height <= self.rows.bottom
    }
}

/// Looks for a vertical scroll in `update`, the new B, G, R, X pixels of
/// `area` (already clipped to the desktop), against `shadow` before it
/// takes them, copying only from rows of tiles that are not due.
pub(crate) fn find(
    pacer: &FramePacer,
    shadow: &Image<'_>,
    update: &Image<'_>,
    area: TileRect,
) -> Option<Scroll> {
    // A copy is only worth it when it can cover a tile whole.
    if area.width < TILE || area.height < 2 * TILE {
        return None;
    }
    let columns = pacer.columns();
    let (first_column, last_column) = (area.x / TILE, (area.x + area.width - 1) / TILE);
    let clean_band = |band: usize| {
        (first_column..=last_column).all(|column| !pacer.is_due(band * columns + column))
    };
    let bands: Vec<bool> = (0..shadow.height.div_ceil(TILE)).map(clean_band).collect();
    let rows = find_vertical_scroll(shadow, update, area, MIN_ROWS, |row| {
        bands.get(row / TILE).copied().unwrap_or(false)
    })?;
    Some(Scroll {
        left: area.x,
        width: area.width,
        rows,
    })
}

/// The shadow took the update `scroll` was found in, and `changed` holds
/// the tiles that changed: the tiles the copy draws whole are taken out of
/// `changed` and are no longer due, and the copy joins `copies` for the
/// next frame. Returns how many changed tiles the copy spared, or `None`
/// (and nothing changes) when it covers no tile whole.
pub(crate) fn apply(
    scroll: &Scroll,
    (width, height): (usize, usize),
    pacer: &mut FramePacer,
    copies: &mut Vec<SurfaceCopy>,
    changed: &mut Vec<TileRect>,
) -> Option<usize> {
    let columns = pacer.columns();
    let mut covered = Vec::new();
    for band in scroll.rows.top / TILE..scroll.rows.bottom.div_ceil(TILE) {
        for column in scroll.left / TILE..(scroll.left + scroll.width).div_ceil(TILE) {
            let (x, y) = (column * TILE, band * TILE);
            if x >= width || y >= height {
                continue;
            }
            let tile = TileRect {
                x,
                y,
                width: TILE.min(width - x),
                height: TILE.min(height - y),
            };
            if scroll.covers(&tile) {
                covered.push((band * columns + column, tile));
            }
        }
    }
    if covered.is_empty() {
        return None;
    }
    let before = changed.len();
    // `changed` holds parts of tiles when the update does not span whole
    // tiles; a part inside a covered tile is drawn by the copy too.
    changed.retain(|part| {
        !covered.iter().any(|(_, tile)| {
            part.x >= tile.x
                && part.y >= tile.y
                && part.x + part.width <= tile.x + tile.width
                && part.y + part.height <= tile.y + tile.height
        })
    });
    for (index, _) in &covered {
        pacer.unmark(*index);
    }
    copies.push(scroll.copy());
    pacer.request_frame();
    Some(before - changed.len())
}
