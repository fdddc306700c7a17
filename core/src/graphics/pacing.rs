//! Tiles due and frames in flight, shared by the two frame-based graphics
//! paths (surface commands, the Graphics Pipeline): updates only mark
//! 64x64 tiles due, and a frame carries every due tile with the pixels the
//! shadow holds when it goes, so the latest pixels win and memory stays at
//! one flag per tile. While the client has too many frames unacknowledged,
//! no frame starts; its next acknowledgement lets the due tiles go.

use std::collections::VecDeque;

use rdpserve_codecs::damage::TileRect;
use tracing::trace;

/// Side of the tiles damage is tracked in.
pub(crate) const TILE: usize = 64;

#[derive(Debug)]
pub(crate) struct FramePacer {
    /// Tiles in a row of the desktop.
    columns: usize,
    /// One flag per tile: changed since last sent.
    dirty: Vec<bool>,
    dirty_count: usize,
    next_frame_id: u32,
    /// Frames sent and not yet acknowledged, oldest first.
    unacknowledged: VecDeque<u32>,
    /// With a client that acknowledges frames: how many may be outstanding.
    max_unacknowledged: Option<usize>,
    /// The client suspended its acknowledgements (the Graphics Pipeline's
    /// SUSPEND_FRAME_ACKNOWLEDGEMENT): frames are neither counted nor held.
    suspended: bool,
    /// A frame is wanted even without due tiles (it carries other work:
    /// the Graphics Pipeline's surface copies).
    frame_requested: bool,
}

impl FramePacer {
    pub fn new(max_unacknowledged: Option<usize>) -> Self {
        Self {
            columns: 0,
            dirty: Vec::new(),
            dirty_count: 0,
            next_frame_id: 0,
            unacknowledged: VecDeque::new(),
            max_unacknowledged: max_unacknowledged.map(|max| max.max(1)),
            suspended: false,
            frame_requested: false,
        }
    }

    /// A desktop of `width` x `height`: every tile due (`due`) or none, and
    /// no frame in flight.
    pub fn resize(&mut self, width: usize, height: usize, due: bool) {
        self.columns = width.div_ceil(TILE);
        self.dirty = vec![due; self.columns * height.div_ceil(TILE)];
        self.dirty_count = if due { self.dirty.len() } else { 0 };
        self.unacknowledged.clear();
        self.frame_requested = false;
    }

    /// The bytes the flags and the frames in flight take.
    #[cfg(test)]
    pub fn held_bytes(&self) -> usize {
        self.dirty.capacity() + self.unacknowledged.capacity() * std::mem::size_of::<u32>()
    }

    /// Tiles in a row of the desktop.
    pub fn columns(&self) -> usize {
        self.columns
    }

    /// Marks changed tiles (on the desktop's 64x64 grid) as due.
    pub fn mark(&mut self, changed: &[TileRect]) {
        for rect in changed {
            let index = (rect.y / TILE) * self.columns + rect.x / TILE;
            if let Some(flag) = self.dirty.get_mut(index)
                && !*flag
            {
                *flag = true;
                self.dirty_count += 1;
            }
        }
    }

    /// Whether the tile at `index` (row by row on the grid) is due.
    pub fn is_due(&self, index: usize) -> bool {
        self.dirty.get(index).copied().unwrap_or(false)
    }

    /// The tile at `index` no longer needs sending: something else (a
    /// surface copy in the next frame) draws its latest pixels.
    pub fn unmark(&mut self, index: usize) {
        if let Some(flag) = self.dirty.get_mut(index)
            && std::mem::take(flag)
        {
            self.dirty_count -= 1;
        }
    }

    /// The next frame goes when the client may take one, due tiles or not.
    pub fn request_frame(&mut self) {
        self.frame_requested = true;
    }

    /// Every tile due again.
    pub fn mark_all(&mut self) {
        self.dirty.fill(true);
        self.dirty_count = self.dirty.len();
    }

    /// Whether changed tiles (or a requested frame) wait to be sent.
    pub fn has_due_tiles(&self) -> bool {
        self.dirty_count > 0 || self.frame_requested
    }

    fn throttled(&self) -> bool {
        !self.suspended
            && self
                .max_unacknowledged
                .is_some_and(|max| self.unacknowledged.len() >= max)
    }

    /// The id the next frame will carry.
    pub fn next_frame_id(&self) -> u32 {
        self.next_frame_id
    }

    /// Continues the frame ids of an earlier output, so a late
    /// acknowledgement of one of its frames cannot pass for one of ours.
    pub fn continue_frame_ids(&mut self, next_frame_id: u32) {
        self.next_frame_id = next_frame_id;
    }

    /// The client suspends (`true`) or resumes its acknowledgements.
    pub fn suspend(&mut self, suspended: bool) {
        self.suspended = suspended;
        if suspended {
            self.unacknowledged.clear();
        }
    }

    /// The client finished frame `frame_id`, and with it every earlier
    /// one; returns whether due tiles may go now.
    pub fn acknowledge(&mut self, frame_id: u32) -> bool {
        if let Some(at) = self.unacknowledged.iter().position(|&id| id == frame_id) {
            self.unacknowledged.drain(..=at);
        }
        self.has_due_tiles() && !self.throttled()
    }

    /// Starts a frame when tiles are due and the client is not behind:
    /// moves the due tiles' indices (row by row) into `tiles` and returns
    /// the frame's id. Call [`frame_sent`](Self::frame_sent) once it went.
    pub fn start_frame(&mut self, tiles: &mut Vec<usize>) -> Option<u32> {
        if !self.has_due_tiles() || self.throttled() {
            if self.has_due_tiles() {
                trace!(
                    due = self.dirty_count,
                    "Frame held back until the client catches up"
                );
            }
            return None;
        }
        tiles.clear();
        for (index, flag) in self.dirty.iter_mut().enumerate() {
            if std::mem::take(flag) {
                tiles.push(index);
            }
        }
        self.dirty_count = 0;
        self.frame_requested = false;
        let frame_id = self.next_frame_id;
        self.next_frame_id = self.next_frame_id.wrapping_add(1);
        Some(frame_id)
    }

    /// Starts a frame of the application's own pixels (no due tiles move)
    /// unless the client is behind; returns its id.
    pub fn start_own_frame(&mut self) -> Option<u32> {
        if self.throttled() {
            return None;
        }
        let frame_id = self.next_frame_id;
        self.next_frame_id = self.next_frame_id.wrapping_add(1);
        Some(frame_id)
    }

    /// Frame `frame_id` went out: it counts until acknowledged.
    pub fn frame_sent(&mut self, frame_id: u32) {
        if self.max_unacknowledged.is_some() && !self.suspended {
            self.unacknowledged.push_back(frame_id);
        }
    }
}
