//! Damage tracking: a shadow of what the client shows, compared tile by
//! tile with new pixels so that only changed tiles are encoded.

use crate::pixel_format::{SourceImage, convert_row};
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
    /// One band of tiles being compared, and whether each is due; kept
    /// so no update allocates.
    band: Vec<(TileRect, bool)>,
    /// One row converted from a foreign pixel format, for comparison.
    row: Vec<u8>,
}

impl Framebuffer {
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            pixels: vec![0; width * height * 4],
            initialised: false,
            band: Vec::new(),
            row: Vec::new(),
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

    /// Whether anything has been sent since the shadow was made or last
    /// invalidated.
    pub fn is_initialised(&self) -> bool {
        self.initialised
    }

    /// Appends every tile of the desktop's `tile`-sized grid, row by row,
    /// as `update` reports them.
    pub fn all_tiles(&self, tile: usize, tiles: &mut Vec<TileRect>) {
        for y in (0..self.height).step_by(tile.max(1)) {
            for x in (0..self.width).step_by(tile.max(1)) {
                tiles.push(TileRect {
                    x,
                    y,
                    width: tile.min(self.width - x),
                    height: tile.min(self.height - y),
                });
            }
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
    /// The image must lie within the desktop. Pixels in another format than
    /// B, G, R, X are converted as they are read, in the same pass.
    pub fn update(
        &mut self,
        image: &SourceImage<'_>,
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
        image: &SourceImage<'_>,
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
        image: &SourceImage<'_>,
        origin: (usize, usize),
        tile: usize,
        damage: Option<&[TileRect]>,
        changed: &mut Vec<TileRect>,
    ) -> Result<(), EncodeError> {
        let ((x, y), width, height) = (origin, image.width, image.height);
        image.check()?;
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
            // The band's tiles, left to right.
            self.band.clear();
            let mut left = x;
            while left < right {
                let tile_right = ((left / tile + 1) * tile).min(right);
                let rect = TileRect {
                    x: left,
                    y: top,
                    width: tile_right - left,
                    height: tile_bottom - top,
                };
                let due = force
                    || damage
                        .is_some_and(|damage| damage.iter().any(|area| intersects(area, &rect)));
                self.band.push((rect, due));
                left = tile_right;
            }
            // A foreign format is converted once: the comparison writes
            // what it converted straight into the shadow.
            let copied = !force && damage.is_none() && self.compare_band(image, origin);
            for index in 0..self.band.len() {
                let (rect, due) = self.band[index];
                if due {
                    if !copied {
                        self.copy_tile(image, x, y, rect);
                    }
                    changed.push(rect);
                }
            }
            top = tile_bottom;
        }
        self.initialised = true;
        Ok(())
    }

    /// Marks the tiles of `self.band` whose colours differ from the shadow.
    /// The band is read a whole row at a time, in memory order, so the
    /// comparison runs at the speed of memory: a row equal from end to end
    /// (the common case) is one plain comparison, and only a row that
    /// differs is looked at tile by tile.
    ///
    /// Returns whether the band's new pixels are already in the shadow:
    /// B, G, R, X rows are compared where they lie and copied afterwards,
    /// tile by tile, only where they differ; rows in another format are
    /// converted once, compared, and written back whole (a tile that did
    /// not change gets the same colours again).
    fn compare_band(
        &mut self,
        image: &SourceImage<'_>,
        (origin_x, origin_y): (usize, usize),
    ) -> bool {
        let (Some(first), Some(last)) = (self.band.first(), self.band.last()) else {
            return false;
        };
        let (left, top, height) = (first.0.x, first.0.y, first.0.height);
        let width = last.0.x + last.0.width - left;
        let row_bytes = width * 4;
        let native = image.format.is_native();
        if !native {
            self.row.resize(row_bytes, 0);
        }
        let mut unknown = self.band.len();
        for row in top..top + height {
            let source = image.row(left - origin_x, row - origin_y, width);
            let target = (row * self.width + left) * 4;
            let old = &mut self.pixels[target..target + row_bytes];
            if !native && unknown == 0 {
                // Every tile is due: the rest of the band is a plain conversion.
                convert_row(image.format, source, old);
                continue;
            }
            let new = if native {
                source
            } else {
                convert_row(image.format, source, &mut self.row);
                &self.row[..]
            };
            if new == old {
                continue;
            }
            for (rect, due) in self.band.iter_mut().filter(|(_, due)| !*due) {
                let start = (rect.x - left) * 4;
                let range = start..start + rect.width * 4;
                // Only the B, G, R bytes count: the fourth is ignored on
                // the wire.
                if !same_colours(&new[range.clone()], &old[range]) {
                    *due = true;
                    unknown -= 1;
                }
            }
            if native {
                if unknown == 0 {
                    return false;
                }
            } else {
                old.copy_from_slice(new);
            }
        }
        !native
    }

    fn copy_tile(
        &mut self,
        image: &SourceImage<'_>,
        origin_x: usize,
        origin_y: usize,
        rect: TileRect,
    ) {
        let row_bytes = rect.width * 4;
        for row in 0..rect.height {
            let source = image.row(rect.x - origin_x, rect.y - origin_y + row, rect.width);
            let target = ((rect.y + row) * self.width + rect.x) * 4;
            convert_row(
                image.format,
                source,
                &mut self.pixels[target..target + row_bytes],
            );
        }
    }
}

fn intersects(a: &TileRect, b: &TileRect) -> bool {
    a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height
}

/// Whether two rows of B, G, R, X pixels have the same colours. The common
/// case, identical bytes, is a plain comparison the compiler vectorises;
/// only then are the X bytes masked out, two pixels at a time.
pub(crate) fn same_colours(a: &[u8], b: &[u8]) -> bool {
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

    fn view(width: usize, height: usize, data: &[u8]) -> SourceImage<'_> {
        Image {
            width,
            height,
            stride: width * 4,
            data,
        }
        .into()
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
        let mut all = Vec::new();
        shadow.all_tiles(64, &mut all);
        assert_eq!(all, changed, "the same grid, in the same order");
    }

    /// The tiles a pixel-by-pixel comparison finds, in row-major order.
    fn reference_changes(
        shadow: &[u8],
        desktop_width: usize,
        image: &Image<'_>,
        (x, y): (usize, usize),
        tile: usize,
    ) -> Vec<TileRect> {
        let mut found = Vec::new();
        for top in (y / tile * tile..y + image.height).step_by(tile) {
            for left in (x / tile * tile..x + image.width).step_by(tile) {
                let (x0, y0) = (left.max(x), top.max(y));
                let (x1, y1) = (
                    (left + tile).min(x + image.width),
                    (top + tile).min(y + image.height),
                );
                let differs = (y0..y1).any(|row| {
                    (x0..x1).any(|column| {
                        let new = (row - y) * image.stride + (column - x) * 4;
                        let old = (row * desktop_width + column) * 4;
                        image.data[new..new + 3] != shadow[old..old + 3]
                    })
                });
                if differs {
                    found.push(TileRect {
                        x: x0,
                        y: y0,
                        width: x1 - x0,
                        height: y1 - y0,
                    });
                }
            }
        }
        found
    }

    #[test]
    fn comparison_matches_a_pixel_by_pixel_reference() {
        let mut seed = 0x2545_f491_u32;
        let mut next = move |limit: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed as usize % limit
        };
        for _ in 0..60 {
            let (desktop_width, desktop_height) = (1 + next(300), 1 + next(200));
            let tile = [16, 64, 7][next(3)];
            let mut shadow = Framebuffer::new(desktop_width, desktop_height);
            let full = frame(desktop_width, desktop_height, 1 + next(200) as u8);
            shadow
                .update(
                    &view(desktop_width, desktop_height, &full),
                    (0, 0),
                    tile,
                    &mut Vec::new(),
                )
                .unwrap();
            // A sub-rectangle with padded rows, a few pixels of it changed
            // (some only in the ignored fourth byte).
            let (x, y) = (next(desktop_width), next(desktop_height));
            let (width, height) = (1 + next(desktop_width - x), 1 + next(desktop_height - y));
            let stride = width * 4 + next(3) * 4;
            let mut data = vec![0xAB; stride * height];
            for row in 0..height {
                let from = ((y + row) * desktop_width + x) * 4;
                data[row * stride..row * stride + width * 4]
                    .copy_from_slice(&full[from..from + width * 4]);
            }
            for _ in 0..next(6) {
                let at = next(height) * stride + next(width) * 4 + next(4);
                data[at] ^= 1 + next(255) as u8;
            }
            let image = Image {
                width,
                height,
                stride,
                data: &data,
            };
            let want = reference_changes(&shadow.pixels, desktop_width, &image, (x, y), tile);
            let mut changed = Vec::new();
            shadow
                .update(&image.into(), (x, y), tile, &mut changed)
                .unwrap();
            assert_eq!(changed, want);
            // The shadow now holds the new colours: nothing differs.
            let mut again = Vec::new();
            shadow
                .update(&image.into(), (x, y), tile, &mut again)
                .unwrap();
            assert!(again.is_empty());
        }
    }

    /// The bytes of `width` x `height` pixels in `format` converted to
    /// B, G, R, X, rows packed.
    fn converted(source: &SourceImage<'_>) -> Vec<u8> {
        let mut pixels = vec![0; source.width * source.height * 4];
        for (y, target) in pixels.chunks_exact_mut(source.width * 4).enumerate() {
            convert_row(source.format, source.row(0, y, source.width), target);
        }
        pixels
    }

    fn colours(pixels: &[u8]) -> Vec<u8> {
        pixels
            .chunks_exact(4)
            .flat_map(|pixel| pixel[..3].to_vec())
            .collect()
    }

    /// Every format gives the tiles and colours its conversion to B, G, R,
    /// X gives, on every path: the first update, the comparison (padded
    /// rows, odd widths, a few pixels changed, some only in the ignored
    /// byte) and supplied damage.
    #[test]
    fn foreign_formats_track_like_their_conversion() {
        use crate::pixel_format::PixelFormat;
        let mut seed = 0x1234_5679_u32;
        let mut next = move |limit: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed as usize % limit
        };
        for format in PixelFormat::ALL {
            let bytes = format.bytes_per_pixel();
            for _ in 0..12 {
                let (desktop_width, desktop_height) = (1 + next(150), 1 + next(100));
                let tile = [16, 64, 7][next(3)];
                let full: Vec<u8> = (0..desktop_width * desktop_height * bytes)
                    .map(|_| next(256) as u8)
                    .collect();
                let full_image = SourceImage {
                    width: desktop_width,
                    height: desktop_height,
                    stride: desktop_width * bytes,
                    format,
                    data: &full,
                };
                let full_native = converted(&full_image);
                let mut foreign = Framebuffer::new(desktop_width, desktop_height);
                let mut native = Framebuffer::new(desktop_width, desktop_height);
                let (mut got, mut want) = (Vec::new(), Vec::new());
                foreign.update(&full_image, (0, 0), tile, &mut got).unwrap();
                native
                    .update(
                        &view(desktop_width, desktop_height, &full_native),
                        (0, 0),
                        tile,
                        &mut want,
                    )
                    .unwrap();
                assert_eq!(got, want, "{format} first update");
                for damaged in [false, true] {
                    let (x, y) = (next(desktop_width), next(desktop_height));
                    let (width, height) =
                        (1 + next(desktop_width - x), 1 + next(desktop_height - y));
                    // Rows padded by 0 to 5 bytes, whatever the pixel size.
                    let stride = width * bytes + next(6);
                    let mut data = vec![0xAB; stride * height];
                    for row in 0..height {
                        let from = ((y + row) * desktop_width + x) * bytes;
                        data[row * stride..row * stride + width * bytes]
                            .copy_from_slice(&full[from..from + width * bytes]);
                    }
                    for _ in 0..next(6) {
                        let at = next(height) * stride + next(width * bytes);
                        data[at] ^= 1 + next(255) as u8;
                    }
                    let image = SourceImage {
                        width,
                        height,
                        stride,
                        format,
                        data: &data,
                    };
                    let image_native = converted(&image);
                    let native_view = SourceImage {
                        width,
                        height,
                        stride: width * 4,
                        format: PixelFormat::BgrX32,
                        data: &image_native,
                    };
                    let damage = [TileRect {
                        x: x + next(width),
                        y: y + next(height),
                        width: 1,
                        height: 1,
                    }];
                    got.clear();
                    want.clear();
                    if damaged {
                        foreign
                            .update_damaged(&image, (x, y), tile, &damage, &mut got)
                            .unwrap();
                        native
                            .update_damaged(&native_view, (x, y), tile, &damage, &mut want)
                            .unwrap();
                    } else {
                        foreign.update(&image, (x, y), tile, &mut got).unwrap();
                        native
                            .update(&native_view, (x, y), tile, &mut want)
                            .unwrap();
                    }
                    assert_eq!(got, want, "{format} damaged {damaged}");
                    assert!(
                        colours(&foreign.pixels) == colours(&native.pixels),
                        "{format} damaged {damaged}: the shadows differ"
                    );
                }
            }
        }
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
        shadow
            .update(&image.into(), (30, 60), 64, &mut changed)
            .unwrap();
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
        assert!(
            shadow
                .update(&image.into(), (200, 0), 64, &mut changed)
                .is_err()
        );
    }
}
