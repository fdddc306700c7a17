//! Content-adaptive codec choice for the Graphics Pipeline: per tile,
//! lossless (planar, or a cache hit) for text and UI, lossy (H.264) for
//! photos and video, and a lossless refresh of the tiles last sent lossy
//! once they stop changing.
//!
//! Two signals per tile, both cheap enough to run on every changed tile of
//! every frame:
//!
//! - What the pixels look like. Text and UI are flat: most pixels repeat
//!   their left or upper neighbour, and a tile holds few colours (a
//!   background, the ink, a few anti-aliasing shades). Photos and video
//!   frames have sensor noise and smooth gradients: few pixels repeat a
//!   neighbour and the colours run into the hundreds.
//! - How the tile changes. Video changes frame after frame; a document
//!   changes when someone types or scrolls.
//!
//! Hysteresis keeps a tile's choice stable: between the "clearly text" and
//! "clearly photo" thresholds a tile keeps its current choice, and a tile
//! in lossy mode that keeps changing stays lossy, so a video does not
//! flicker between codecs on frames that happen to look flat (a fade to
//! black, a title card).
//!
//! After motion stops, each tile last sent lossy is named once in
//! [`Decisions::refresh`], at most `max_refresh_per_frame` a frame (oldest
//! first), so the caller re-sends it losslessly from the shadow and the
//! screen ends pixel-exact.

use std::collections::VecDeque;

use crate::damage::TileRect;
use crate::{EncodeError, Image};

/// How a changed tile should be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TileCodec {
    /// Pixel-exact: planar, uncompressed or a cache hit.
    Lossless,
    /// H.264 (AVC420 or AVC444).
    Lossy,
}

/// The thresholds and timings of a [`ContentClassifier`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassifierSettings {
    /// Below this share of pixels repeating their left or upper neighbour,
    /// with at least `photo_colours` colours, a tile looks like a photo.
    pub photo_flat_share: f32,
    pub photo_colours: usize,
    /// Above this share, or with at most `text_colours` colours, a tile
    /// looks like text or UI. Between the two a tile keeps its choice.
    pub text_flat_share: f32,
    pub text_colours: usize,
    /// A tile changed in this many consecutive frames is moving: if it is
    /// not clearly text it goes lossy.
    pub motion_frames: u8,
    /// Frames a tile sent lossy must stay unchanged before its refresh.
    pub quiet_frames: u32,
    /// Most refreshes named in one frame, to spread their bytes.
    pub max_refresh_per_frame: usize,
}

impl Default for ClassifierSettings {
    fn default() -> Self {
        Self {
            photo_flat_share: 0.35,
            photo_colours: 96,
            text_flat_share: 0.6,
            text_colours: 24,
            motion_frames: 3,
            // Two frames at 30 fps: long enough that a paused video is
            // really paused, short enough that text over it sharpens at
            // once.
            quiet_frames: 2,
            max_refresh_per_frame: 64,
        }
    }
}

/// What a tile's pixels look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileContent {
    /// Flat or few colours: text, UI.
    Synthetic,
    /// Noisy or graded with many colours: photo, video.
    Natural,
    /// Between the thresholds.
    Ambiguous,
}

/// The per-frame output of [`ContentClassifier::classify`]: buffers the
/// caller owns and reuses (they are cleared on each call).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decisions {
    /// Changed tiles to encode losslessly.
    pub lossless: Vec<TileRect>,
    /// Changed tiles to encode lossy.
    pub lossy: Vec<TileRect>,
    /// Unchanged tiles last sent lossy and now quiet: re-send losslessly.
    pub refresh: Vec<TileRect>,
}

#[derive(Debug, Clone, Copy, Default)]
struct TileState {
    /// The current choice (the hysteresis' memory).
    lossy: bool,
    /// Consecutive frames the tile changed in, saturating.
    changed_run: u8,
    /// Frames since the tile last changed, saturating.
    quiet: u32,
    /// Last sent lossy and not yet refreshed.
    awaiting_refresh: bool,
    /// Queued in `pending` (so it is queued once).
    queued: bool,
}

/// Decides per 64x64 (or `tile`-sized) tile between lossless and lossy, and
/// when to refresh losslessly. Feed it every frame, changed tiles or not:
/// quiet frames are what release the refreshes.
#[derive(Debug, Clone)]
pub struct ContentClassifier {
    settings: ClassifierSettings,
    tile: usize,
    columns: usize,
    rows: usize,
    width: usize,
    height: usize,
    tiles: Vec<TileState>,
    /// Tiles awaiting refresh, in the order they were last sent lossy.
    pending: VecDeque<usize>,
    /// Whether each tile changed in the current frame (scratch).
    changed_now: Vec<bool>,
    /// Two rows of colours (scratch).
    scratch: Vec<u32>,
}

impl ContentClassifier {
    /// A classifier for a `width` x `height` desktop cut into `tile`-sized
    /// tiles (the damage tracker's grid).
    pub fn new(width: usize, height: usize, tile: usize, settings: ClassifierSettings) -> Self {
        let tile = tile.max(1);
        let (columns, rows) = (width.div_ceil(tile), height.div_ceil(tile));
        Self {
            settings,
            tile,
            columns,
            rows,
            width,
            height,
            tiles: vec![TileState::default(); columns * rows],
            pending: VecDeque::new(),
            changed_now: vec![false; columns * rows],
            scratch: Vec::new(),
        }
    }

    /// Forgets every tile (after a resize or a full lossless refresh).
    pub fn reset(&mut self, width: usize, height: usize) {
        *self = Self::new(width, height, self.tile, self.settings);
    }

    /// Whether tiles sent lossy wait for their refresh: frames are
    /// needed, changes or not, until this turns false.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Classifies one frame. `changed` are the tiles that changed (as the
    /// damage tracker reports them, on this classifier's grid), `image` the
    /// frame's pixels. Fills `decisions` (cleared first).
    pub fn classify(
        &mut self,
        image: &Image<'_>,
        changed: &[TileRect],
        decisions: &mut Decisions,
    ) -> Result<(), EncodeError> {
        decisions.lossless.clear();
        decisions.lossy.clear();
        decisions.refresh.clear();
        if image.width != self.width || image.height != self.height {
            return Err(EncodeError::OutOfBounds);
        }
        self.changed_now.fill(false);
        for rect in changed {
            let index = self.index_of(rect)?;
            image.check_rect(rect.x, rect.y, rect.width, rect.height)?;
            // A tile listed twice is classified once.
            if std::mem::replace(&mut self.changed_now[index], true) {
                continue;
            }
            let content = tile_content_with(image, rect, &self.settings, &mut self.scratch);
            let settings = self.settings;
            let state = &mut self.tiles[index];
            state.changed_run = state.changed_run.saturating_add(1);
            state.quiet = 0;
            let moving = state.changed_run >= settings.motion_frames;
            state.lossy = match content {
                TileContent::Natural => true,
                TileContent::Synthetic => false,
                TileContent::Ambiguous => state.lossy || moving,
            };
            if state.lossy {
                state.awaiting_refresh = true;
                if !state.queued {
                    state.queued = true;
                    self.pending.push_back(index);
                }
                decisions.lossy.push(*rect);
            } else {
                // Sent losslessly: nothing left to refresh.
                state.awaiting_refresh = false;
                decisions.lossless.push(*rect);
            }
        }
        for (state, &changed) in self.tiles.iter_mut().zip(&self.changed_now) {
            if !changed {
                state.changed_run = 0;
                state.quiet = state.quiet.saturating_add(1);
            }
        }
        // Refreshes, oldest first. A tile whose turn has not come (still
        // moving, or not quiet long enough) keeps its place; one sent
        // losslessly since is dropped.
        let mut kept = self.pending.len();
        while kept > 0 && decisions.refresh.len() < self.settings.max_refresh_per_frame {
            kept -= 1;
            let Some(index) = self.pending.pop_front() else {
                break;
            };
            let state = &mut self.tiles[index];
            if !state.awaiting_refresh {
                state.queued = false;
                continue;
            }
            if state.quiet >= self.settings.quiet_frames {
                state.awaiting_refresh = false;
                state.queued = false;
                // The refresh is lossless: the tile leaves lossy mode until
                // its content says otherwise again.
                state.lossy = false;
                decisions.refresh.push(self.rect_of(index));
            } else {
                self.pending.push_back(index);
            }
        }
        Ok(())
    }

    /// The tile's index on the grid, if `rect` is one of its tiles.
    fn index_of(&self, rect: &TileRect) -> Result<usize, EncodeError> {
        let (column, row) = (rect.x / self.tile, rect.y / self.tile);
        if column >= self.columns || row >= self.rows {
            return Err(EncodeError::OutOfBounds);
        }
        let index = row * self.columns + column;
        if self.rect_of(index) != *rect {
            // Not aligned to the grid: a refresh of it would name another
            // rectangle than the one classified.
            return Err(EncodeError::Unsupported);
        }
        Ok(index)
    }

    fn rect_of(&self, index: usize) -> TileRect {
        let (x, y) = (
            index % self.columns * self.tile,
            index / self.columns * self.tile,
        );
        TileRect {
            x,
            y,
            width: self.tile.min(self.width - x),
            height: self.tile.min(self.height - y),
        }
    }
}

/// A value no colour (B, G, R with X cleared) takes.
const NO_COLOUR: u32 = u32::MAX;

/// Counts distinct colours up to a cap with a small open-addressed table:
/// 256 slots hold the 96 a photo reaches long before the table fills.
struct ColourSet {
    slots: [u32; 256],
    count: usize,
}

impl ColourSet {
    const EMPTY: u32 = NO_COLOUR;

    fn new() -> Self {
        Self {
            slots: [Self::EMPTY; 256],
            count: 0,
        }
    }

    fn insert(&mut self, colour: u32) {
        let mut slot = (colour.wrapping_mul(0x9E37_79B1) >> 24) as usize;
        loop {
            match self.slots[slot] {
                Self::EMPTY => {
                    self.slots[slot] = colour;
                    self.count += 1;
                    return;
                }
                present if present == colour => return,
                _ => slot = (slot + 1) % self.slots.len(),
            }
        }
    }
}

/// Classifies a tile's pixels: the share of pixels equal to their left or
/// upper neighbour, and the number of colours (counted up to
/// `photo_colours`, at most 128, which the table holds at under half full).
pub fn tile_content(
    image: &Image<'_>,
    rect: &TileRect,
    settings: &ClassifierSettings,
) -> TileContent {
    tile_content_with(image, rect, settings, &mut Vec::new())
}

/// [`tile_content`] with a scratch buffer the caller keeps.
fn tile_content_with(
    image: &Image<'_>,
    rect: &TileRect,
    settings: &ClassifierSettings,
    scratch: &mut Vec<u32>,
) -> TileContent {
    let colour_cap = settings.photo_colours.clamp(1, 128);
    let mut colours = ColourSet::new();
    let mut flat = 0usize;
    let width = rect.width;
    scratch.clear();
    // Above the first row: a value no colour takes (colours have X = 0),
    // so the comparisons below need no special case and vectorise.
    scratch.resize(2 * width, NO_COLOUR);
    let (mut previous, mut current) = scratch.split_at_mut(width);
    for row in 0..rect.height {
        let start = (rect.y + row) * image.stride + rect.x * 4;
        // INVARIANT: the caller checked the rectangle against the image.
        let pixels = &image.data[start..start + width * 4];
        for (colour, pixel) in current.iter_mut().zip(pixels.chunks_exact(4)) {
            *colour = u32::from_le_bytes([pixel[0], pixel[1], pixel[2], 0]);
        }
        // Flat: equal to the left or the upper neighbour.
        let mut flat_now = usize::from(current[0] == previous[0]);
        for (pair, &above) in current.windows(2).zip(&previous[1..]) {
            flat_now += usize::from((pair[1] == pair[0]) | (pair[1] == above));
        }
        flat += flat_now;
        // Colours from every fourth row: a photo's noise passes the cap in
        // a few rows, and text's few colours repeat on every row. Only
        // pixels unlike both neighbours can bring a new colour.
        if row % 4 == 0 && colours.count < colour_cap {
            let mut left = NO_COLOUR;
            for (&colour, &above) in current.iter().zip(previous.iter()) {
                if colour != left && colour != above {
                    colours.insert(colour);
                    if colours.count >= colour_cap {
                        break;
                    }
                }
                left = colour;
            }
        }
        std::mem::swap(&mut previous, &mut current);
    }
    let pixels = (rect.width * rect.height).max(1);
    let flat_share = flat as f32 / pixels as f32;
    if flat_share > settings.text_flat_share || colours.count <= settings.text_colours {
        TileContent::Synthetic
    } else if flat_share < settings.photo_flat_share && colours.count >= colour_cap {
        TileContent::Natural
    } else {
        TileContent::Ambiguous
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIDTH: usize = 256;
    const HEIGHT: usize = 192;
    const TILE: usize = 64;

    struct Frame {
        pixels: Vec<u8>,
    }

    impl Frame {
        /// A desktop: light grey background, a white window with lines of
        /// dark anti-aliased "glyphs".
        fn desktop() -> Self {
            let mut frame = Self {
                pixels: [235u8, 235, 235, 0xFF].repeat(WIDTH * HEIGHT),
            };
            for y in 8..HEIGHT - 8 {
                for x in 8..WIDTH - 8 {
                    frame.set(x, y, [255, 255, 255]);
                }
            }
            let mut seed = 3u32;
            for line in 0..(HEIGHT - 24) / 14 {
                let y = 14 + line * 14;
                let mut x = 12;
                while x + 8 < WIDTH - 12 {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    let glyph = 3 + (seed >> 16) as usize % 5;
                    for dx in 0..glyph {
                        for dy in 0..9 {
                            match (dx + dy + (seed >> 8) as usize) % 4 {
                                0 => frame.set(x + dx, y + dy, [30, 30, 30]),
                                1 if dy % 3 == 0 => frame.set(x + dx, y + dy, [150, 150, 150]),
                                _ => {}
                            }
                        }
                    }
                    x += glyph + 2;
                }
            }
            frame
        }

        /// A photo-like patch (smooth colour fields plus noise) over
        /// `rect`, varying with `time`.
        fn paint_video(&mut self, rect: TileRect, time: u32) {
            let mut seed = 99 + time.wrapping_mul(7919);
            for y in rect.y..rect.y + rect.height {
                for x in rect.x..rect.x + rect.width {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    let noise = (seed >> 28) as f32 - 8.0;
                    let (fx, fy) = ((x as f32 + time as f32 * 3.0) / 23.0, y as f32 / 17.0);
                    let r = 120.0 + 80.0 * fx.sin() * fy.cos() + noise;
                    let g = 110.0 + 70.0 * (fx + fy).sin() + noise;
                    let b = 100.0 + 60.0 * (fy - fx).cos() + noise;
                    self.set(x, y, [r as u8, g as u8, b as u8]);
                }
            }
        }

        fn set(&mut self, x: usize, y: usize, [r, g, b]: [u8; 3]) {
            let at = (y * WIDTH + x) * 4;
            self.pixels[at..at + 3].copy_from_slice(&[b, g, r]);
        }

        fn image(&self) -> Image<'_> {
            Image {
                width: WIDTH,
                height: HEIGHT,
                stride: WIDTH * 4,
                data: &self.pixels,
            }
        }
    }

    fn tile(column: usize, row: usize) -> TileRect {
        TileRect {
            x: column * TILE,
            y: row * TILE,
            width: TILE,
            height: TILE,
        }
    }

    fn all_tiles() -> Vec<TileRect> {
        (0..HEIGHT / TILE)
            .flat_map(|row| (0..WIDTH / TILE).map(move |column| tile(column, row)))
            .collect()
    }

    fn classifier() -> ContentClassifier {
        ContentClassifier::new(WIDTH, HEIGHT, TILE, ClassifierSettings::default())
    }

    #[test]
    fn text_is_synthetic_and_a_photo_natural() {
        let settings = ClassifierSettings::default();
        let mut frame = Frame::desktop();
        for rect in all_tiles() {
            assert_eq!(
                tile_content(&frame.image(), &rect, &settings),
                TileContent::Synthetic
            );
        }
        let photo = tile(1, 1);
        frame.paint_video(photo, 0);
        assert_eq!(
            tile_content(&frame.image(), &photo, &settings),
            TileContent::Natural
        );
    }

    #[test]
    fn a_first_frame_sends_text_lossless_and_a_photo_lossy() {
        let mut frame = Frame::desktop();
        frame.paint_video(tile(2, 1), 0);
        let mut classifier = classifier();
        let mut decisions = Decisions::default();
        classifier
            .classify(&frame.image(), &all_tiles(), &mut decisions)
            .unwrap();
        assert_eq!(decisions.lossy, [tile(2, 1)]);
        assert_eq!(decisions.lossless.len(), all_tiles().len() - 1);
        assert!(decisions.refresh.is_empty());
    }

    /// A video plays over a desktop for ten frames, then pauses: its tiles
    /// go lossy every frame, the desktop is never touched again, and two
    /// quiet frames after the pause each video tile is refreshed once.
    #[test]
    fn a_video_goes_lossy_and_is_refreshed_once_when_it_stops() {
        let video = TileRect {
            x: 64,
            y: 64,
            width: 128,
            height: 64,
        };
        let video_tiles = [tile(1, 1), tile(2, 1)];
        let mut frame = Frame::desktop();
        let mut classifier = classifier();
        let mut decisions = Decisions::default();
        frame.paint_video(video, 0);
        classifier
            .classify(&frame.image(), &all_tiles(), &mut decisions)
            .unwrap();
        assert_eq!(decisions.lossy, video_tiles);
        for time in 1..10 {
            frame.paint_video(video, time);
            classifier
                .classify(&frame.image(), &video_tiles, &mut decisions)
                .unwrap();
            assert_eq!(decisions.lossy, video_tiles, "frame {time}");
            assert!(decisions.lossless.is_empty() && decisions.refresh.is_empty());
        }
        let mut refreshed = Vec::new();
        for quiet in 1..=5 {
            classifier
                .classify(&frame.image(), &[], &mut decisions)
                .unwrap();
            assert!(decisions.lossy.is_empty() && decisions.lossless.is_empty());
            if quiet < 2 {
                assert!(
                    decisions.refresh.is_empty(),
                    "refresh before two quiet frames"
                );
            }
            refreshed.extend_from_slice(&decisions.refresh);
        }
        assert_eq!(refreshed, video_tiles);
    }

    /// Frames that look flat in the middle of a video (a fade to a title
    /// card) stay lossy while the tile keeps moving; a tile that is not
    /// moving keeps lossless on the same ambiguous content.
    #[test]
    fn ambiguous_frames_keep_the_current_choice() {
        let settings = ClassifierSettings::default();
        let target = tile(1, 1);
        let mut frame = Frame::desktop();
        // Ambiguous: a coarse pattern of 40 colours with half the pixels
        // repeating a neighbour.
        let paint_ambiguous = |frame: &mut Frame, shift: usize| {
            for y in target.y..target.y + target.height {
                for x in target.x..target.x + target.width {
                    let level = (((x + shift) / 2 + y * 3) % 40) as u8;
                    frame.set(x, y, [level * 5, 100, 200 - level * 4]);
                }
            }
        };
        paint_ambiguous(&mut frame, 0);
        assert_eq!(
            tile_content(&frame.image(), &target, &settings),
            TileContent::Ambiguous
        );

        let mut classifier = classifier();
        let mut decisions = Decisions::default();
        classifier
            .classify(&frame.image(), &all_tiles(), &mut decisions)
            .unwrap();
        assert!(
            decisions.lossless.contains(&target),
            "ambiguous starts lossless"
        );

        let mut moving = classifier.clone();
        for time in 0..4 {
            frame.paint_video(target, time);
            moving
                .classify(&frame.image(), &[target], &mut decisions)
                .unwrap();
            assert_eq!(decisions.lossy, [target]);
        }
        paint_ambiguous(&mut frame, 1);
        moving
            .classify(&frame.image(), &[target], &mut decisions)
            .unwrap();
        assert_eq!(decisions.lossy, [target], "a moving tile stays lossy");

        // Unmoving: changes every few frames only, ambiguous each time.
        for shift in 0..6 {
            paint_ambiguous(&mut frame, shift);
            classifier
                .classify(&frame.image(), &[target], &mut decisions)
                .unwrap();
            assert_eq!(decisions.lossless, [target]);
            classifier
                .classify(&frame.image(), &[], &mut decisions)
                .unwrap();
        }
    }

    /// Text typed into a tile after it was sent lossy replaces the lossy
    /// pixels losslessly: no refresh follows.
    #[test]
    fn a_tile_sent_lossless_since_is_not_refreshed() {
        let target = tile(0, 0);
        let mut frame = Frame::desktop();
        let text = frame.pixels.clone();
        let mut classifier = classifier();
        let mut decisions = Decisions::default();
        frame.paint_video(target, 0);
        classifier
            .classify(&frame.image(), &[target], &mut decisions)
            .unwrap();
        assert_eq!(decisions.lossy, [target]);
        frame.pixels = text;
        classifier
            .classify(&frame.image(), &[target], &mut decisions)
            .unwrap();
        assert_eq!(decisions.lossless, [target]);
        for _ in 0..5 {
            classifier
                .classify(&frame.image(), &[], &mut decisions)
                .unwrap();
            assert!(decisions.refresh.is_empty());
        }
    }

    #[test]
    fn refreshes_are_spread_over_frames_oldest_first() {
        let settings = ClassifierSettings {
            max_refresh_per_frame: 5,
            ..ClassifierSettings::default()
        };
        let mut classifier = ContentClassifier::new(WIDTH, HEIGHT, TILE, settings);
        let mut frame = Frame::desktop();
        frame.paint_video(
            TileRect {
                x: 0,
                y: 0,
                width: WIDTH,
                height: HEIGHT,
            },
            0,
        );
        let mut decisions = Decisions::default();
        classifier
            .classify(&frame.image(), &all_tiles(), &mut decisions)
            .unwrap();
        assert_eq!(decisions.lossy, all_tiles());
        let mut refreshed = Vec::new();
        for _ in 0..10 {
            classifier
                .classify(&frame.image(), &[], &mut decisions)
                .unwrap();
            assert!(decisions.refresh.len() <= 5);
            refreshed.extend_from_slice(&decisions.refresh);
        }
        assert_eq!(refreshed, all_tiles(), "each tile once, in order");
    }

    #[test]
    fn rectangles_off_the_grid_are_refused() {
        let frame = Frame::desktop();
        let mut classifier = classifier();
        let mut decisions = Decisions::default();
        let misaligned = TileRect {
            x: 10,
            y: 0,
            width: TILE,
            height: TILE,
        };
        assert_eq!(
            classifier.classify(&frame.image(), &[misaligned], &mut decisions),
            Err(EncodeError::Unsupported)
        );
        let outside = tile(WIDTH / TILE, 0);
        assert_eq!(
            classifier.classify(&frame.image(), &[outside], &mut decisions),
            Err(EncodeError::OutOfBounds)
        );
        let mut smaller = ContentClassifier::new(128, 128, TILE, ClassifierSettings::default());
        assert_eq!(
            smaller.classify(&frame.image(), &[], &mut decisions),
            Err(EncodeError::OutOfBounds)
        );
    }
}
