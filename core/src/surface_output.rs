//! Graphics over surface commands: which tiles are due, the codec that
//! encodes them from the session's shadow framebuffer, frame markers, and
//! pacing by the client's frame acknowledgements.
//!
//! Updates never queue: changed tiles are marked dirty, and while the client
//! has too many frames unacknowledged nothing is sent. When an
//! acknowledgement arrives, the dirty tiles go out with the pixels the
//! shadow holds then, so the latest pixels win and memory stays at one
//! shadow plus one flag per tile.

use std::collections::VecDeque;

use rdpserve_codecs::damage::TileRect;
use rdpserve_codecs::{Image, RfxEncoder, RfxQuant, RfxRect, RlgrMode};
use tracing::trace;

use crate::error::Error;
use crate::fastpath::{self, UpdateCode};
use crate::surface::{self, RemoteFxCaps};
use crate::transport::Transport;

/// Side of the tiles damage is tracked in; RemoteFX's own tile size.
pub(crate) const TILE: usize = 64;
/// Largest single fast-path PDU (see session.rs).
const MAX_FAST_PATH_PDU: usize = 16 * 1024;
/// Frame marker commands around each frame: 8 bytes each.
const FRAME_MARKERS: usize = 16;
/// The most a 64x64 RemoteFX tile can take: three components of 4096
/// coefficients, each at most a few bytes in RLGR, plus headers. Used to
/// size groups of tiles so one message never exceeds the client's limit.
const WORST_CASE_TILE: usize = 3 * 4096 * 3 + 64;

/// The encoder with its scratch buffers (they are large and not worth a
/// `Debug` dump).
struct Encoder(Box<RfxEncoder>);

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RfxEncoder(frame {})", self.0.frame_index())
    }
}

#[derive(Debug)]
pub(crate) struct SurfaceOutput {
    caps: RemoteFxCaps,
    encoder: Encoder,
    /// Whether the stream's header messages went out since activation.
    headers_sent: bool,
    /// Desktop size in pixels and in tiles.
    width: usize,
    height: usize,
    columns: usize,
    /// One flag per tile: changed since last sent.
    dirty: Vec<bool>,
    dirty_count: usize,
    next_frame_id: u32,
    /// Frames sent and not yet acknowledged, oldest first.
    unacknowledged: VecDeque<u32>,
    /// With a client that acknowledges frames: how many may be outstanding.
    max_unacknowledged: Option<usize>,
    /// Largest update payload the client reassembles.
    update_budget: usize,
    rects: Vec<RfxRect>,
    message: Vec<u8>,
    payload: Vec<u8>,
    wire: Vec<u8>,
}

impl SurfaceOutput {
    /// RemoteFX output for a desktop of `width` x `height` (at most 4096
    /// each way, RemoteFX's limit); `None` if the desktop is larger.
    pub fn remotefx(
        caps: RemoteFxCaps,
        width: usize,
        height: usize,
        max_unacknowledged: Option<usize>,
        update_budget: usize,
    ) -> Option<Self> {
        let mode = if caps.rlgr3 {
            RlgrMode::Rlgr3
        } else {
            RlgrMode::Rlgr1
        };
        let encoder = RfxEncoder::new(RfxQuant::default(), mode).ok()?;
        if width > 4096 || height > 4096 {
            return None;
        }
        let mut output = Self {
            caps,
            encoder: Encoder(Box::new(encoder)),
            headers_sent: false,
            width: 0,
            height: 0,
            columns: 0,
            dirty: Vec::new(),
            dirty_count: 0,
            next_frame_id: 0,
            unacknowledged: VecDeque::new(),
            max_unacknowledged: max_unacknowledged.map(|max| max.max(1)),
            update_budget,
            rects: Vec::new(),
            message: Vec::new(),
            payload: Vec::new(),
            wire: Vec::new(),
        };
        output.resize(width, height);
        Some(output)
    }

    /// A new desktop size (after a reactivation): everything is due again,
    /// and the codec stream starts over with its headers.
    pub fn resize(&mut self, width: usize, height: usize) {
        self.width = width;
        self.height = height;
        self.columns = width.div_ceil(TILE);
        let rows = height.div_ceil(TILE);
        self.dirty = vec![false; self.columns * rows];
        self.dirty_count = 0;
        self.headers_sent = false;
        self.unacknowledged.clear();
    }

    /// Whether the desktop still fits the codec.
    pub fn fits(width: usize, height: usize) -> bool {
        width <= 4096 && height <= 4096
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

    /// Whether the client's acknowledgements hold frames back.
    fn throttled(&self) -> bool {
        self.max_unacknowledged
            .is_some_and(|max| self.unacknowledged.len() >= max)
    }

    /// The client finished frame `frame_id`; returns whether a frame is due.
    pub fn acknowledge(&mut self, frame_id: u32) -> bool {
        // Acknowledging a frame acknowledges every earlier one too.
        if let Some(at) = self.unacknowledged.iter().position(|&id| id == frame_id) {
            self.unacknowledged.drain(..=at);
        }
        self.dirty_count > 0 && !self.throttled()
    }

    /// Sends the due tiles from `shadow` as one frame, unless the client
    /// has too many frames unacknowledged (then they wait for an ack).
    pub fn flush(&mut self, shadow: &Image<'_>, transport: &mut Transport) -> Result<(), Error> {
        if self.dirty_count == 0 || self.throttled() {
            if self.dirty_count > 0 {
                trace!(
                    due = self.dirty_count,
                    "Frame held back until the client catches up"
                );
            }
            return Ok(());
        }
        let frame_id = self.next_frame_id;
        self.next_frame_id = self.next_frame_id.wrapping_add(1);
        // Tiles per message so that each surface command fits the budget.
        let per_message = (self
            .update_budget
            .saturating_sub(FRAME_MARKERS + surface::STREAM_SURFACE_BITS_HEADER + 1024)
            / WORST_CASE_TILE)
            .max(1);
        self.payload.clear();
        surface::encode_frame_marker(&mut self.payload, true, frame_id);
        let mut tiles = Vec::with_capacity(self.dirty_count);
        for (index, flag) in self.dirty.iter_mut().enumerate() {
            if std::mem::take(flag) {
                tiles.push(index);
            }
        }
        self.dirty_count = 0;
        for group in tiles.chunks(per_message) {
            self.rects.clear();
            for &index in group {
                let (x, y) = ((index % self.columns) * TILE, (index / self.columns) * TILE);
                // INVARIANT: tiles lie within a desktop of at most 4096 pixels.
                self.rects.push(RfxRect {
                    x: x as u16,
                    y: y as u16,
                    width: TILE.min(self.width - x) as u16,
                    height: TILE.min(self.height - y) as u16,
                });
            }
            self.message.clear();
            let headers = !self.headers_sent || self.caps.image_mode;
            self.encoder
                .0
                .encode_frame(shadow, &self.rects, headers, &mut self.message)
                .map_err(|_| Error::Misuse("desktop not encodable with remotefx"))?;
            self.headers_sent = true;
            let length = u32::try_from(self.message.len())
                .map_err(|_| Error::Misuse("remotefx message too large"))?;
            if self.payload.len() + surface::STREAM_SURFACE_BITS_HEADER + self.message.len()
                > self.update_budget
            {
                self.send_payload(transport)?;
            }
            surface::encode_stream_surface_bits_header(
                &mut self.payload,
                (0, 0, self.width as u16, self.height as u16),
                self.caps.codec_id,
                (self.width as u16, self.height as u16),
                length,
            );
            self.payload.extend_from_slice(&self.message);
        }
        surface::encode_frame_marker(&mut self.payload, false, frame_id);
        self.send_payload(transport)?;
        if self.max_unacknowledged.is_some() {
            self.unacknowledged.push_back(frame_id);
        }
        Ok(())
    }

    fn send_payload(&mut self, transport: &mut Transport) -> Result<(), Error> {
        if self.payload.is_empty() {
            return Ok(());
        }
        self.wire.clear();
        fastpath::encode_update(
            &mut self.wire,
            UpdateCode::SurfaceCommands,
            &self.payload,
            MAX_FAST_PATH_PDU,
        );
        self.payload.clear();
        transport.send(&self.wire)
    }
}
