//! Scroll detection: finds the rows of a new picture that are rows of the
//! old one moved up or down by the same distance, so that a server can
//! have the client copy them (the Graphics Pipeline's SurfaceToSurface)
//! instead of encoding them again.
//!
//! Rows are matched by a hash of their colours: each changed row of the new
//! picture whose hash names exactly one row of the old picture votes for
//! the distance between the two; the distance with the most votes is then
//! checked row by row, byte for byte, and the longest run of rows that
//! really are the old rows moved is the answer. A hash collision can cost
//! a vote, never a wrong copy.

use std::collections::HashMap;

use crate::Image;
use crate::damage::{TileRect, same_colours};

/// Rows of a picture that show rows of the previous picture moved
/// vertically, in the old picture's (the desktop's) coordinates: rows
/// `top..bottom` now show what rows `top + offset..bottom + offset` showed,
/// across the columns of the area searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerticalScroll {
    pub top: usize,
    pub bottom: usize,
    /// Positive when the content moved up (a document scrolled towards its
    /// end), negative when it moved down.
    pub offset: isize,
}

impl VerticalScroll {
    /// The first row the moved rows came from.
    pub fn source_top(&self) -> usize {
        self.top.saturating_add_signed(self.offset)
    }

    pub fn rows(&self) -> usize {
        self.bottom - self.top
    }
}

/// Looks for a vertical scroll between `old`, the whole previous picture,
/// and `new`, the new pixels of `area` of it (its row 0 and column 0 at
/// the area's top-left corner; both B, G, R, X, the fourth byte ignored).
///
/// `source_usable(row)` says whether `old`'s row `row` (within the area's
/// columns) may be copied from: a caller whose client may not yet show
/// every row of `old` says no for those. Rows are only moved within the
/// area. Returns the longest run of at least `min_rows` moved rows, or
/// `None`: when nothing moved, when the area or the images are
/// inconsistent, and when the run found is shorter.
pub fn find_vertical_scroll(
    old: &Image<'_>,
    new: &Image<'_>,
    area: TileRect,
    min_rows: usize,
    source_usable: impl Fn(usize) -> bool,
) -> Option<VerticalScroll> {
    let TileRect {
        x,
        y,
        width,
        height,
    } = area;
    let min_rows = min_rows.max(1);
    if width == 0 || height <= min_rows {
        return None;
    }
    old.check_rect(x, y, width, height).ok()?;
    new.check_rect(0, 0, width, height).ok()?;
    let row_bytes = width * 4;
    // INVARIANT: check_rect proved every row of the area lies in each image.
    let old_row = |row: usize| {
        let start = (y + row) * old.stride + x * 4;
        &old.data[start..start + row_bytes]
    };
    let new_row = |row: usize| {
        let start = row * new.stride;
        &new.data[start..start + row_bytes]
    };
    // Rows that changed where they are; fewer than a run's worth cannot
    // hold a run of moved rows.
    let changed: Vec<usize> = (0..height)
        .filter(|&row| !same_colours(new_row(row), old_row(row)))
        .collect();
    if changed.len() < min_rows {
        return None;
    }
    // The old rows by hash; a hash shared by several rows (blank lines)
    // says nothing about where a row came from.
    let old_hashes: Vec<u64> = (0..height).map(|row| row_hash(old_row(row))).collect();
    let new_hashes: Vec<u64> = (0..height).map(|row| row_hash(new_row(row))).collect();
    let mut unique: HashMap<u64, Option<usize>> = HashMap::with_capacity(height);
    for (row, &hash) in old_hashes.iter().enumerate() {
        unique
            .entry(hash)
            .and_modify(|seen| *seen = None)
            .or_insert(Some(row));
    }
    let mut votes: HashMap<isize, usize> = HashMap::new();
    for &row in &changed {
        if let Some(Some(source)) = unique.get(&new_hashes[row]) {
            let offset = *source as isize - row as isize;
            if offset != 0 {
                *votes.entry(offset).or_default() += 1;
            }
        }
    }
    // The most votes; between equals, the shortest move.
    let (offset, _) = votes
        .into_iter()
        .max_by_key(|&(offset, count)| (count, std::cmp::Reverse(offset.unsigned_abs())))?;
    // Row by row: the longest run of rows that are the old rows moved.
    let mut best = (0, 0);
    let mut start = None;
    // One past the end closes the last run.
    let rows = new_hashes.iter().map(Some).chain([None]);
    for (row, hash) in rows.enumerate() {
        let moved = hash.is_some_and(|hash| {
            row.checked_add_signed(offset)
                .filter(|&source| source < height)
                .is_some_and(|source| {
                    old_hashes[source] == *hash
                        && source_usable(y + source)
                        && same_colours(new_row(row), old_row(source))
                })
        });
        match (moved, start) {
            (true, None) => start = Some(row),
            (false, Some(first)) => {
                if row - first > best.1 - best.0 {
                    best = (first, row);
                }
                start = None;
            }
            _ => {}
        }
    }
    (best.1 - best.0 >= min_rows).then_some(VerticalScroll {
        top: y + best.0,
        bottom: y + best.1,
        offset,
    })
}

/// A 64-bit hash of a row's colours (the fourth byte of each pixel
/// ignored): four independent multiply-xorshift lanes over 32 bytes at a
/// time, so the compiler keeps them in registers side by side.
fn row_hash(row: &[u8]) -> u64 {
    const COLOUR_MASK: u64 = 0x00FF_FFFF_00FF_FFFF;
    const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut lanes: [u64; 4] = [
        0x243F_6A88_85A3_08D3,
        0x1319_8A2E_0370_7344,
        0xA409_3822_299F_31D0,
        0x082E_FA98_EC4E_6C89,
    ];
    let mut blocks = row.chunks_exact(32);
    for block in &mut blocks {
        for (lane, word) in lanes.iter_mut().zip(block.chunks_exact(8)) {
            let word = u64::from_le_bytes(word.try_into().unwrap_or([0; 8])) & COLOUR_MASK;
            *lane = (*lane ^ word).wrapping_mul(MULTIPLIER);
            *lane ^= *lane >> 31;
        }
    }
    let mut hash = (row.len() as u64).wrapping_mul(MULTIPLIER);
    for pixel in blocks.remainder().chunks_exact(4) {
        let word = u64::from(u32::from_le_bytes([pixel[0], pixel[1], pixel[2], 0]));
        hash = (hash ^ word).wrapping_mul(MULTIPLIER);
        hash ^= hash >> 31;
    }
    for lane in lanes {
        hash = (hash ^ lane).wrapping_mul(MULTIPLIER);
        hash ^= hash >> 29;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIDTH: usize = 200;
    const HEIGHT: usize = 300;

    /// A page of "text": lines of varying dark runs on white, twelve rows
    /// apart with blank rows between, each line different from the others.
    fn document(width: usize, height: usize, first_line: usize) -> Vec<u8> {
        let mut pixels = vec![0xFF; width * height * 4];
        for row in 0..height {
            let line = (row + first_line) / 12;
            if (row + first_line) % 12 >= 8 {
                continue;
            }
            for column in 0..width {
                let ink = (column * 7 + line * 13 + (line * line) % 17) % 11 < 4;
                if ink {
                    let at = (row * width + column) * 4;
                    pixels[at..at + 3].copy_from_slice(&[
                        (line * 3) as u8,
                        (line * 5) as u8,
                        ((row + first_line) * 7) as u8,
                    ]);
                }
            }
        }
        pixels
    }

    fn image(width: usize, height: usize, data: &[u8]) -> Image<'_> {
        Image {
            width,
            height,
            stride: width * 4,
            data,
        }
    }

    fn whole() -> TileRect {
        TileRect {
            x: 0,
            y: 0,
            width: WIDTH,
            height: HEIGHT,
        }
    }

    #[test]
    fn a_document_scrolled_down_is_found_with_its_offset() {
        let old = document(WIDTH, HEIGHT, 0);
        for offset in [1usize, 5, 37, 64, 200] {
            let new = document(WIDTH, HEIGHT, offset);
            let found = find_vertical_scroll(
                &image(WIDTH, HEIGHT, &old),
                &image(WIDTH, HEIGHT, &new),
                whole(),
                16,
                |_| true,
            )
            .expect("a scroll");
            assert_eq!(found.offset, offset as isize);
            assert_eq!((found.top, found.bottom), (0, HEIGHT - offset), "{offset}");
            assert_eq!(found.source_top(), offset);
        }
    }

    #[test]
    fn a_document_scrolled_back_up_moves_rows_down() {
        let old = document(WIDTH, HEIGHT, 90);
        let new = document(WIDTH, HEIGHT, 50);
        let found = find_vertical_scroll(
            &image(WIDTH, HEIGHT, &old),
            &image(WIDTH, HEIGHT, &new),
            whole(),
            16,
            |_| true,
        )
        .expect("a scroll");
        assert_eq!(found.offset, -40);
        assert_eq!((found.top, found.bottom), (40, HEIGHT));
    }

    #[test]
    fn an_area_of_the_desktop_scrolls_inside_its_own_columns() {
        // The old desktop: a document at (30, 20) in a larger noisy picture;
        // the update covers the document's area only.
        let (desktop_width, desktop_height) = (260, 360);
        let mut desktop: Vec<u8> = (0..desktop_width * desktop_height * 4)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let page = document(WIDTH, HEIGHT, 0);
        for row in 0..HEIGHT {
            let at = ((20 + row) * desktop_width + 30) * 4;
            desktop[at..at + WIDTH * 4].copy_from_slice(&page[row * WIDTH * 4..][..WIDTH * 4]);
        }
        let new = document(WIDTH, HEIGHT, 24);
        let area = TileRect {
            x: 30,
            y: 20,
            width: WIDTH,
            height: HEIGHT,
        };
        let found = find_vertical_scroll(
            &image(desktop_width, desktop_height, &desktop),
            &image(WIDTH, HEIGHT, &new),
            area,
            16,
            |_| true,
        )
        .expect("a scroll");
        assert_eq!(found.offset, 24);
        assert_eq!((found.top, found.bottom), (20, 20 + HEIGHT - 24));
    }

    #[test]
    fn rows_the_caller_cannot_copy_from_cut_the_run() {
        let old = document(WIDTH, HEIGHT, 0);
        let new = document(WIDTH, HEIGHT, 30);
        // Source rows 100 to 163 are stale on the client: the run either
        // ends before their destinations or starts after them.
        let found = find_vertical_scroll(
            &image(WIDTH, HEIGHT, &old),
            &image(WIDTH, HEIGHT, &new),
            whole(),
            16,
            |row| !(100..164).contains(&row),
        )
        .expect("a scroll");
        assert_eq!(found.offset, 30);
        assert_eq!((found.top, found.bottom), (134, HEIGHT - 30));
        assert!(found.source_top() >= 164);
        // All of it stale: nothing.
        assert_eq!(
            find_vertical_scroll(
                &image(WIDTH, HEIGHT, &old),
                &image(WIDTH, HEIGHT, &new),
                whole(),
                16,
                |_| false,
            ),
            None
        );
    }

    #[test]
    fn content_that_did_not_scroll_is_no_scroll() {
        let old = document(WIDTH, HEIGHT, 0);
        // The same picture: nothing changed.
        assert_eq!(
            find_vertical_scroll(
                &image(WIDTH, HEIGHT, &old),
                &image(WIDTH, HEIGHT, &old),
                whole(),
                16,
                |_| true,
            ),
            None
        );
        // Another picture altogether.
        let noise: Vec<u8> = (0..WIDTH * HEIGHT * 4)
            .map(|i| (i * 7919 % 257) as u8)
            .collect();
        assert_eq!(
            find_vertical_scroll(
                &image(WIDTH, HEIGHT, &old),
                &image(WIDTH, HEIGHT, &noise),
                whole(),
                16,
                |_| true,
            ),
            None
        );
        // A horizontal move is not a vertical one.
        let mut shifted = old.clone();
        for row in shifted.chunks_exact_mut(WIDTH * 4) {
            row.rotate_right(4 * 3);
        }
        assert_eq!(
            find_vertical_scroll(
                &image(WIDTH, HEIGHT, &old),
                &image(WIDTH, HEIGHT, &shifted),
                whole(),
                16,
                |_| true,
            ),
            None
        );
        // A scroll of fewer rows than asked for is not worth a copy.
        let mut small = old.clone();
        let moved = document(WIDTH, 40, 6);
        small[..WIDTH * 40 * 4].copy_from_slice(&moved);
        // Rows 0..40 of `small` are old rows 6..46: a run of 40.
        let found = find_vertical_scroll(
            &image(WIDTH, HEIGHT, &old),
            &image(WIDTH, HEIGHT, &small),
            whole(),
            16,
            |_| true,
        );
        assert_eq!(
            found.map(|found| (found.offset, found.rows())),
            Some((6, 40))
        );
        assert_eq!(
            find_vertical_scroll(
                &image(WIDTH, HEIGHT, &old),
                &image(WIDTH, HEIGHT, &small),
                whole(),
                64,
                |_| true,
            ),
            None
        );
    }

    #[test]
    fn the_fourth_byte_does_not_count() {
        let old = document(WIDTH, HEIGHT, 0);
        let mut new = document(WIDTH, HEIGHT, 12);
        for pixel in new.chunks_exact_mut(4) {
            pixel[3] = 0x17;
        }
        let found = find_vertical_scroll(
            &image(WIDTH, HEIGHT, &old),
            &image(WIDTH, HEIGHT, &new),
            whole(),
            16,
            |_| true,
        );
        assert_eq!(found.map(|found| found.offset), Some(12));
    }

    #[test]
    fn inconsistent_or_tiny_areas_are_refused_without_panicking() {
        let old = document(WIDTH, HEIGHT, 0);
        let new = document(WIDTH, HEIGHT, 8);
        let old_image = image(WIDTH, HEIGHT, &old);
        let new_image = image(WIDTH, HEIGHT, &new);
        let areas = [
            // Beyond the old picture, by a little and by overflow.
            TileRect { x: 1, ..whole() },
            TileRect {
                y: usize::MAX,
                ..whole()
            },
            TileRect {
                width: usize::MAX,
                ..whole()
            },
            // Empty, one row, one column.
            TileRect {
                width: 0,
                ..whole()
            },
            TileRect {
                height: 1,
                ..whole()
            },
            TileRect {
                height: 0,
                ..whole()
            },
        ];
        for area in areas {
            assert_eq!(
                find_vertical_scroll(&old_image, &new_image, area, 16, |_| true),
                None,
                "{area:?}"
            );
        }
        // A new picture smaller than the area, or with too little data.
        let short = image(WIDTH, HEIGHT - 1, &new[..WIDTH * (HEIGHT - 1) * 4]);
        assert_eq!(
            find_vertical_scroll(&old_image, &short, whole(), 16, |_| true),
            None
        );
        let truncated = Image {
            data: &new[..new.len() - 4],
            ..new_image
        };
        assert_eq!(
            find_vertical_scroll(&old_image, &truncated, whole(), 16, |_| true),
            None
        );
        // A one-column area and an odd width still work.
        for width in [1, 3, 9, 67] {
            let old = document(width, HEIGHT, 0);
            let new = document(width, HEIGHT, 24);
            let area = TileRect { width, ..whole() };
            let found = find_vertical_scroll(
                &image(width, HEIGHT, &old),
                &image(width, HEIGHT, &new),
                area,
                16,
                |_| true,
            );
            // A narrow column may repeat rows; whatever is found is real.
            if let Some(found) = found {
                for row in found.top..found.bottom {
                    let source = found.source_top() + row - found.top;
                    assert_eq!(
                        new[row * width * 4..][..width * 4],
                        old[source * width * 4..][..width * 4]
                    );
                }
            }
        }
    }
}
