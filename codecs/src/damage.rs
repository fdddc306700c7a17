//! Damage tracking: a shadow of what the client shows, compared tile by
//! tile with new pixels so that only changed tiles are encoded.

use crate::{EncodeError, Image};

/// A rectangle of the desktop, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileRect {
    pub x: usize,
    pub y: usize,
    pub width: usize,
    pub height: usize,
}

/// The pixels the client shows (B, G, R, X), as last sent. Memory:
/// width x height x 4 bytes (8 MiB at 1920x1080).
#[derive(Debug, Clone)]
pub struct Framebuffer {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
    /// Whether the client has been sent anything yet: until then every tile
    /// counts as changed, whatever the shadow holds.
    initialised: bool,
}

impl Framebuffer {
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            pixels: vec![0; width * height * 4],
            initialised: false,
        }
    }

    /// The shadow as an image: the latest pixels of the whole desktop, for
    /// encoders that read tiles from it instead of from each update.
    pub fn image(&self) -> Image<'_> {
        Image {
            width: self.width,
            height: self.height,
            stride: self.width * 4,
            data: &self.pixels,
        }
    }

    /// Forgets what the client shows (after a refresh request or a
    /// reactivation): the next update sends every tile it covers.
    pub fn invalidate(&mut self) {
        self.initialised = false;
    }

    /// Compares `image`, placed at `origin` on the desktop, against the
    /// shadow on a grid of `tile`-sized tiles aligned to the desktop origin.
    /// Changed tiles are copied into the shadow and appended to `changed`.
    /// The image must lie within the desktop.
    pub fn update(
        &mut self,
        image: &Image<'_>,
        origin: (usize, usize),
        tile: usize,
        changed: &mut Vec<TileRect>,
    ) -> Result<(), EncodeError> {
        self.update_tiles(image, origin, tile, None, changed)
    }

    /// Like [`update`](Self::update), but trusts the caller's `damage`
    /// (desktop coordinates) instead of comparing pixels: exactly the tiles
    /// that intersect a damage rectangle are copied and reported. With no
    /// damage nothing is read at all. Until the first update every tile
    /// counts as changed, as with `update`.
    pub fn update_damaged(
        &mut self,
        image: &Image<'_>,
        origin: (usize, usize),
        tile: usize,
        damage: &[TileRect],
        changed: &mut Vec<TileRect>,
    ) -> Result<(), EncodeError> {
        if self.initialised && damage.is_empty() {
            return Ok(());
        }
        self.update_tiles(image, origin, tile, Some(damage), changed)
    }

    fn update_tiles(
        &mut self,
        image: &Image<'_>,
        origin: (usize, usize),
        tile: usize,
        damage: Option<&[TileRect]>,
        changed: &mut Vec<TileRect>,
    ) -> Result<(), EncodeError> {
        let ((x, y), width, height) = (origin, image.width, image.height);
        image.check_rect(0, 0, width, height)?;
        let fits = x
            .checked_add(width)
            .is_some_and(|right| right <= self.width)
            && y.checked_add(height)
                .is_some_and(|bottom| bottom <= self.height);
        if !fits || tile == 0 {
            return Err(EncodeError::OutOfBounds);
        }
        let force = !self.initialised;
        let (right, bottom) = (x + width, y + height);
        let mut top = y;
        while top < bottom {
            let tile_bottom = ((top / tile + 1) * tile).min(bottom);
            let mut left = x;
            while left < right {
                let tile_right = ((left / tile + 1) * tile).min(right);
                let rect = TileRect {
                    x: left,
                    y: top,
                    width: tile_right - left,
                    height: tile_bottom - top,
                };
                let due = match damage {
                    None => self.sync_tile(image, x, y, rect, force),
                    Some(damage) => {
                        let due = force || damage.iter().any(|area| intersects(area, &rect));
                        if due {
                            self.copy_tile(image, x, y, rect);
                        }
                        due
                    }
                };
                if due {
                    changed.push(rect);
                }
                left = tile_right;
            }
            top = tile_bottom;
        }
        self.initialised = true;
        Ok(())
    }

    /// Copies the tile into the shadow if it differs; returns whether it did.
    fn sync_tile(
        &mut self,
        image: &Image<'_>,
        origin_x: usize,
        origin_y: usize,
        rect: TileRect,
        force: bool,
    ) -> bool {
        let row_bytes = rect.width * 4;
        let source_row =
            |row: usize| (rect.y - origin_y + row) * image.stride + (rect.x - origin_x) * 4;
        let target_row = |row: usize| ((rect.y + row) * self.width + rect.x) * 4;
        // Only the B, G, R bytes count: the fourth is ignored on the wire.
        let differs = force
            || (0..rect.height).any(|row| {
                let new = &image.data[source_row(row)..source_row(row) + row_bytes];
                let old = &self.pixels[target_row(row)..target_row(row) + row_bytes];
                !same_colours(new, old)
            });
        if differs {
            self.copy_tile(image, origin_x, origin_y, rect);
        }
        differs
    }

    fn copy_tile(&mut self, image: &Image<'_>, origin_x: usize, origin_y: usize, rect: TileRect) {
        let row_bytes = rect.width * 4;
        for row in 0..rect.height {
            let source = (rect.y - origin_y + row) * image.stride + (rect.x - origin_x) * 4;
            let target = ((rect.y + row) * self.width + rect.x) * 4;
            self.pixels[target..target + row_bytes]
                .copy_from_slice(&image.data[source..source + row_bytes]);
        }
    }
}

fn intersects(a: &TileRect, b: &TileRect) -> bool {
    a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height
}

/// Whether two rows of B, G, R, X pixels have the same colours. The common
/// case, identical bytes, is a plain comparison the compiler vectorises;
/// only then are the X bytes masked out, two pixels at a time.
fn same_colours(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    const COLOUR_MASK: u64 = 0x00FF_FFFF_00FF_FFFF;
    let (pairs_a, pairs_b) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail_equal = pairs_a.remainder().get(..3) == pairs_b.remainder().get(..3);
    tail_equal
        && pairs_a.zip(pairs_b).all(|(x, y)| {
            let x = u64::from_le_bytes(x.try_into().expect("8 bytes"));
            let y = u64::from_le_bytes(y.try_into().expect("8 bytes"));
            (x ^ y) & COLOUR_MASK == 0
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(width: usize, height: usize, data: &[u8]) -> Image<'_> {
        Image {
            width,
            height,
            stride: width * 4,
            data,
        }
    }

    fn frame(width: usize, height: usize, seed: u8) -> Vec<u8> {
        (0..width * height * 4)
            .map(|i| (i as u8).wrapping_mul(seed))
            .collect()
    }

    #[test]
    fn supplied_damage_replaces_the_comparison() {
        let (width, height) = (200, 130);
        let mut shadow = Framebuffer::new(width, height);
        let pixels = frame(width, height, 3);
        let mut changed = Vec::new();
        // The first update sends everything, damage or not.
        shadow
            .update_damaged(&view(width, height, &pixels), (0, 0), 64, &[], &mut changed)
            .unwrap();
        assert_eq!(changed.len(), 12);
        // Damage across a tile boundary reports both tiles, even though
        // the pixels are the same: the caller is trusted.
        changed.clear();
        let damage = [TileRect {
            x: 60,
            y: 10,
            width: 10,
            height: 5,
        }];
        shadow
            .update_damaged(
                &view(width, height, &pixels),
                (0, 0),
                64,
                &damage,
                &mut changed,
            )
            .unwrap();
        assert_eq!(
            changed.iter().map(|t| (t.x, t.y)).collect::<Vec<_>>(),
            [(0, 0), (64, 0)]
        );
        // No damage, no work, whatever the pixels.
        changed.clear();
        let other = frame(width, height, 5);
        shadow
            .update_damaged(&view(width, height, &other), (0, 0), 64, &[], &mut changed)
            .unwrap();
        assert!(changed.is_empty());
        // A damaged tile is copied: comparing the new pixels finds it equal.
        let damage = [TileRect {
            x: 130,
            y: 70,
            width: 1,
            height: 1,
        }];
        shadow
            .update_damaged(
                &view(width, height, &other),
                (0, 0),
                64,
                &damage,
                &mut changed,
            )
            .unwrap();
        changed.clear();
        shadow
            .update(&view(width, height, &other), (0, 0), 64, &mut changed)
            .unwrap();
        assert!(!changed.iter().any(|t| (t.x, t.y) == (128, 64)));
        assert_eq!(changed.len(), 11);
    }

    #[test]
    fn only_changed_tiles_are_reported() {
        let (width, height) = (200, 130);
        let mut shadow = Framebuffer::new(width, height);
        let mut pixels = frame(width, height, 3);
        let mut changed = Vec::new();
        shadow
            .update(&view(width, height, &pixels), (0, 0), 64, &mut changed)
            .unwrap();
        // 4 x 3 tiles on a 64-pixel grid, all new.
        assert_eq!(changed.len(), 12);
        changed.clear();
        shadow
            .update(&view(width, height, &pixels), (0, 0), 64, &mut changed)
            .unwrap();
        assert!(changed.is_empty(), "an unchanged frame sends nothing");
        // Touch pixels in two tiles; the fourth byte alone does not count.
        pixels[(70 * width + 10) * 4] ^= 0xFF;
        pixels[(5 * width + 199) * 4 + 1] ^= 0x01;
        pixels[(100 * width + 100) * 4 + 3] ^= 0xFF;
        shadow
            .update(&view(width, height, &pixels), (0, 0), 64, &mut changed)
            .unwrap();
        assert_eq!(
            changed,
            [
                TileRect {
                    x: 192,
                    y: 0,
                    width: 8,
                    height: 64
                },
                TileRect {
                    x: 0,
                    y: 64,
                    width: 64,
                    height: 64
                },
            ]
        );
        shadow.invalidate();
        changed.clear();
        shadow
            .update(&view(width, height, &pixels), (0, 0), 64, &mut changed)
            .unwrap();
        assert_eq!(changed.len(), 12, "after invalidate every tile is sent");
    }

    #[test]
    fn sub_rectangles_use_the_desktop_grid() {
        let mut shadow = Framebuffer::new(256, 256);
        let pixels = frame(100, 50, 5);
        let image = Image {
            width: 100,
            height: 50,
            stride: 400,
            data: &pixels,
        };
        let mut changed = Vec::new();
        shadow.update(&image, (30, 60), 64, &mut changed).unwrap();
        assert_eq!(
            changed,
            [
                TileRect {
                    x: 30,
                    y: 60,
                    width: 34,
                    height: 4
                },
                TileRect {
                    x: 64,
                    y: 60,
                    width: 64,
                    height: 4
                },
                TileRect {
                    x: 128,
                    y: 60,
                    width: 2,
                    height: 4
                },
                TileRect {
                    x: 30,
                    y: 64,
                    width: 34,
                    height: 46
                },
                TileRect {
                    x: 64,
                    y: 64,
                    width: 64,
                    height: 46
                },
                TileRect {
                    x: 128,
                    y: 64,
                    width: 2,
                    height: 46
                },
            ]
        );
        assert!(shadow.update(&image, (200, 0), 64, &mut changed).is_err());
    }
}
