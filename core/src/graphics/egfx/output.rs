//! The Graphics Pipeline's output: one surface the size of the desktop,
//! mapped to the output at (0, 0), and frames (StartFrame, a
//! WireToSurface1 per changed 64x64 tile, EndFrame) encoded from the
//! session's shadow framebuffer. Tiles of one colour go as SolidFill
//! rectangles instead, one PDU per colour: 20 bytes where a planar tile
//! takes about 30 and the client decodes nothing. Every other tile sent is
//! kept in the client's bitmap cache (SurfaceToCache, under a 128-bit hash
//! of its pixels); a tile whose pixels were sent before and are still
//! cached goes as CacheToSurface, 18 bytes.
//!
//! A vertical scroll goes as one SurfaceToSurface at the start of a frame
//! (scroll.rs says when that is safe), then the tiles it did not draw.
//!
//! Frames are paced as on the surface-command path (`pacing.rs`: updates
//! never queue, the latest pixels win). A client that suspends
//! acknowledgements (queueDepth 0xFFFFFFFF) gets every frame as the socket
//! takes it, as clients without acknowledgements do on that path.

use std::collections::HashMap;

use rdpserve_codecs::damage::TileRect;
use rdpserve_codecs::zgfx::ZgfxCompressor;
use rdpserve_codecs::{Image, encode_planar_top_down};

use crate::api::config::PipelineCodec;
use crate::api::error::{CommandError, EncodeError, Error};
use crate::api::event::PipelineStats;
use crate::api::update::Avc420Frame;
#[cfg(feature = "h264")]
use crate::graphics::egfx::avc::{Avc444Encoder, AvcEncoder};
use crate::graphics::egfx::avc::{QuantQuality, encode_avc420_bitmap};
use crate::graphics::egfx::caps::Confirmed;
use crate::graphics::egfx::pdu::{
    Color32, MonitorDef, Point16, Rect16, SUSPEND_FRAME_ACKNOWLEDGEMENT, ServerPdu, codec,
    pixel_format,
};
pub(crate) use crate::graphics::egfx::scroll::Scroll;
use crate::graphics::egfx::scroll::{self, MAX_PENDING_COPIES, SurfaceCopy};

use crate::graphics::pacing::FramePacer;
/// Side of the tiles damage is tracked in.
pub(crate) use crate::graphics::pacing::TILE;
/// The surface the desktop is drawn on.
const SURFACE_ID: u16 = 1;
/// PDUs are gathered into messages of about this many bytes before ZGFX:
/// large enough to compress well, small enough to start on the wire early.
const MESSAGE_TARGET: usize = 1 << 20;
/// The largest desktop a surface carries (16-bit sizes).
const MAX_SIDE: usize = u16::MAX as usize;

fn encode_error(reason: &'static str) -> Error {
    Error::Encode(EncodeError {
        codec: "graphics pipeline",
        reason,
    })
}

#[derive(Debug)]
pub(crate) struct GfxOutput {
    confirmed: Confirmed,
    codec: PipelineCodec,
    compressor: ZgfxCompressor,
    width: usize,
    height: usize,
    /// Due tiles and frames in flight.
    pacer: FramePacer,
    /// The due tiles' indices of the frame being sent.
    due: Vec<usize>,
    /// PDUs of the message being gathered, before ZGFX.
    pending: Vec<u8>,
    tile: Vec<u8>,
    scratch: Vec<u8>,
    /// This frame's flat tiles: colour (B, G, R) and rectangle.
    fills: Vec<([u8; 3], Rect16)>,
    cache: TileCache,
    /// Surface copies (scrolls) for the start of the next frame, in order.
    copies: Vec<SurfaceCopy>,
    stats: PipelineStats,
    /// The surface's H.264 encoder while the codec is AVC (avc.rs).
    #[cfg(feature = "h264")]
    avc: Option<AvcEncoder>,
    /// The same for AVC444.
    #[cfg(feature = "h264")]
    avc444: Option<Avc444Encoder>,
    /// Whether the client's H.264 decoder starts over at the application's
    /// next pre-encoded frame (a new surface, or frames of the server's
    /// own encoder in between), which must then hold an IDR picture.
    own_stream_needs_key: bool,
    /// The content-adaptive state while the codec is `Adaptive`.
    #[cfg(feature = "h264")]
    adaptive: Option<Adaptive>,
}

/// Content-adaptive encoding (`PipelineCodec::Adaptive`): the classifier,
/// which tiles the client holds lossy, and per-frame scratch.
#[cfg(feature = "h264")]
#[derive(Debug)]
struct Adaptive {
    classifier: rdpserve_codecs::classify::ContentClassifier,
    decisions: rdpserve_codecs::classify::Decisions,
    /// Per tile: the client holds lossy (H.264) pixels there.
    lossy: Vec<bool>,
    /// This frame's tiles left for the classifier (not flat, not cached).
    candidates: Vec<TileRect>,
    /// This frame's tiles going lossy, and those a copy from lossy pixels
    /// drew (re-sent losslessly).
    lossy_tiles: Vec<usize>,
    forced: Vec<usize>,
}

#[cfg(feature = "h264")]
impl Adaptive {
    fn new(width: usize, height: usize) -> Self {
        let classifier = rdpserve_codecs::classify::ContentClassifier::new(
            width,
            height,
            TILE,
            Default::default(),
        );
        Self {
            classifier,
            decisions: Default::default(),
            lossy: vec![false; width.div_ceil(TILE) * height.div_ceil(TILE)],
            candidates: Vec::new(),
            lossy_tiles: Vec::new(),
            forced: Vec::new(),
        }
    }
}

impl GfxOutput {
    /// Starts the pipeline for a desktop of `width` x `height`: Caps
    /// Confirm, Reset Graphics, Create Surface and Map Surface To Output
    /// go into `out`, each element one message for the channel. Every tile
    /// is due: the first frame paints the whole surface. The codec is
    /// `codec` as far as the client takes it (`Confirmed::resolve`).
    pub fn start(
        confirmed: Confirmed,
        codec: PipelineCodec,
        (width, height): (usize, usize),
        max_unacknowledged: usize,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<Self, Error> {
        let codec = confirmed.resolve(codec);
        let mut output = Self {
            confirmed,
            codec,
            compressor: ZgfxCompressor::new(),
            width: 0,
            height: 0,
            pacer: FramePacer::new(Some(max_unacknowledged)),
            due: Vec::new(),
            pending: Vec::new(),
            tile: Vec::new(),
            scratch: Vec::new(),
            fills: Vec::new(),
            cache: TileCache::new(0),
            // Never more: the list does not grow while frames are held.
            copies: Vec::with_capacity(MAX_PENDING_COPIES),
            stats: PipelineStats::default(),
            #[cfg(feature = "h264")]
            avc: None,
            #[cfg(feature = "h264")]
            avc444: None,
            own_stream_needs_key: true,
            #[cfg(feature = "h264")]
            adaptive: None,
        };
        output.cache = TileCache::new(output.cache_entries());
        ServerPdu::CapsConfirm(output.confirmed.set.clone()).encode(&mut output.pending);
        output.reset(width, height, false)?;
        output.finish_message(out)?;
        Ok(output)
    }

    /// How many tiles the client's cache holds: its slots, and its bytes
    /// at 64 x 64 x 4 bytes a tile, whichever is fewer.
    fn cache_entries(&self) -> u16 {
        let by_bytes = self.confirmed.cache_bytes() / (TILE * TILE * 4);
        usize::from(self.confirmed.cache_slots()).min(by_bytes) as u16
    }

    pub fn fits(width: usize, height: usize) -> bool {
        width <= MAX_SIDE && height <= MAX_SIDE
    }

    pub fn stats(&self) -> PipelineStats {
        self.stats
    }

    /// The codec frames go in.
    pub fn codec(&self) -> PipelineCodec {
        self.codec
    }

    /// The bytes the pipeline keeps between frames: its buffers, the tile
    /// flags, the cache's keys and the pending copies (the ZGFX history,
    /// fixed in size, aside).
    #[cfg(test)]
    pub fn held_bytes(&self) -> usize {
        use std::mem::size_of;
        self.pacer.held_bytes()
            + self.due.capacity() * size_of::<usize>()
            + self.pending.capacity()
            + self.tile.capacity()
            + self.scratch.capacity()
            + self.fills.capacity() * size_of::<([u8; 3], Rect16)>()
            + self.cache.by_key.capacity() * size_of::<(u128, u16)>()
            + self.cache.slots.capacity() * size_of::<Option<u128>>()
            + self.copies.capacity() * size_of::<SurfaceCopy>()
    }

    /// Reset Graphics with one monitor the size of the desktop, and a new
    /// surface for it (the old one deleted when `existing`). Everything is
    /// due again.
    fn reset(&mut self, width: usize, height: usize, existing: bool) -> Result<(), Error> {
        if !Self::fits(width, height) || width == 0 || height == 0 {
            return Err(encode_error("desktop size beyond a surface"));
        }
        if existing {
            ServerPdu::DeleteSurface {
                surface_id: SURFACE_ID,
            }
            .encode(&mut self.pending);
        }
        ServerPdu::ResetGraphics {
            width: width as u32,
            height: height as u32,
            monitors: vec![MonitorDef {
                left: 0,
                top: 0,
                right: width as i32 - 1,
                bottom: height as i32 - 1,
                primary: true,
            }],
        }
        .encode(&mut self.pending);
        ServerPdu::CreateSurface {
            surface_id: SURFACE_ID,
            width: width as u16,
            height: height as u16,
            pixel_format: pixel_format::XRGB_8888,
        }
        .encode(&mut self.pending);
        ServerPdu::MapSurfaceToOutput {
            surface_id: SURFACE_ID,
            origin_x: 0,
            origin_y: 0,
        }
        .encode(&mut self.pending);
        self.width = width;
        self.height = height;
        self.pacer.resize(width, height, true);
        self.own_stream_needs_key = true;
        #[cfg(feature = "h264")]
        {
            // The new surface has a new decoder: a new stream, starting
            // with a key frame; planar where openh264 cannot follow.
            self.avc = None;
            self.avc444 = None;
            if self.codec.is_avc() && !AvcEncoder::fits(width, height) {
                self.codec = PipelineCodec::Planar;
            }
            self.adaptive =
                (self.codec == PipelineCodec::Adaptive).then(|| Adaptive::new(width, height));
        }
        // The copies were for the old surface.
        self.copies.clear();
        Ok(())
    }

    /// A new desktop size: a new surface, everything due again.
    pub fn resize(
        &mut self,
        width: usize,
        height: usize,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), Error> {
        self.reset(width, height, true)?;
        self.finish_message(out)
    }

    /// Switches the codec; everything is due again in it. Returns false,
    /// changing nothing, when the client cannot take it.
    pub fn set_codec(&mut self, codec: PipelineCodec) -> bool {
        #[cfg(feature = "h264")]
        if codec.is_avc() && !AvcEncoder::fits(self.width, self.height) {
            return false;
        }
        if !self.confirmed.allows(codec) {
            return false;
        }
        self.codec = codec;
        #[cfg(feature = "h264")]
        {
            self.avc = None;
            self.avc444 = None;
            self.adaptive =
                (codec == PipelineCodec::Adaptive).then(|| Adaptive::new(self.width, self.height));
        }
        self.pacer.mark_all();
        true
    }

    /// Whether tiles sent lossy wait for their lossless refresh, which
    /// needs frames (`request_refresh_frame`) while nothing changes.
    pub fn wants_refresh(&self) -> bool {
        #[cfg(feature = "h264")]
        if let Some(adaptive) = &self.adaptive {
            return adaptive.classifier.has_pending();
        }
        false
    }

    /// Makes the next flush send a frame, changes or not: a quiet frame
    /// for the content-adaptive refresh.
    pub fn request_refresh_frame(&mut self) {
        if self.wants_refresh() {
            self.pacer.request_frame();
        }
    }

    pub fn mark(&mut self, changed: &[TileRect]) {
        self.pacer.mark(changed);
    }

    /// A scroll in `update` (the new pixels of `area`) against `shadow`,
    /// which has not taken them yet (scroll.rs); `None` while too many
    /// copies wait for a frame.
    pub fn find_scroll(
        &self,
        shadow: &Image<'_>,
        update: &Image<'_>,
        area: TileRect,
    ) -> Option<Scroll> {
        if self.copies.len() >= MAX_PENDING_COPIES {
            return None;
        }
        scroll::find(&self.pacer, shadow, update, area)
    }

    /// The shadow took the update `found` came from: the copy goes at the
    /// start of the next frame, and the tiles it draws whole leave
    /// `changed`.
    pub fn scroll(&mut self, found: &Scroll, changed: &mut Vec<TileRect>) {
        let size = (self.width, self.height);
        if let Some(spared) = scroll::apply(found, size, &mut self.pacer, &mut self.copies, changed)
        {
            self.stats.tiles_copied += spared as u64;
        }
    }

    /// A Frame Acknowledge; returns whether tiles are due and may go now.
    pub fn acknowledge(&mut self, queue_depth: u32, frame_id: u32) -> bool {
        self.pacer
            .suspend(queue_depth == SUSPEND_FRAME_ACKNOWLEDGEMENT);
        self.pacer.acknowledge(frame_id)
    }

    /// Sends the due tiles as one frame, unless too many frames await
    /// their acknowledgement.
    pub fn flush(&mut self, shadow: &Image<'_>, out: &mut Vec<Vec<u8>>) -> Result<(), Error> {
        let mut tiles = std::mem::take(&mut self.due);
        let Some(frame_id) = self.pacer.start_frame(&mut tiles) else {
            self.due = tiles;
            return Ok(());
        };
        let sent = self.send_frame(shadow, frame_id, &tiles, out);
        self.due = tiles;
        sent
    }

    /// StartFrame, the `tiles` (indices on the tile grid), EndFrame.
    fn send_frame(
        &mut self,
        shadow: &Image<'_>,
        frame_id: u32,
        tiles: &[usize],
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), Error> {
        // No clock in the core: "if no timestamp is available, this field
        // MUST be set to zero" (2.2.2.11).
        ServerPdu::StartFrame {
            timestamp: 0,
            frame_id,
        }
        .encode(&mut self.pending);
        // Copies first: they read what the client showed before this frame.
        #[cfg(feature = "h264")]
        self.copies_from_lossy();
        for copy in self.copies.drain(..) {
            ServerPdu::SurfaceToSurface {
                source_surface_id: SURFACE_ID,
                destination_surface_id: SURFACE_ID,
                source: copy.source,
                destinations: vec![copy.destination],
            }
            .encode(&mut self.pending);
            self.stats.surface_to_surface += 1;
        }
        // An H.264 frame carries all the tiles at once.
        #[cfg(feature = "h264")]
        let tiles = if self.codec == PipelineCodec::Adaptive {
            self.send_adaptive(shadow, tiles, out)?;
            &[][..]
        } else if self.send_avc(shadow, tiles)? {
            &[][..]
        } else {
            tiles
        };
        for &index in tiles {
            self.send_tile(shadow, index, out)?;
        }
        self.send_fills();
        ServerPdu::EndFrame { frame_id }.encode(&mut self.pending);
        self.finish_message(out)?;
        self.stats.frames += 1;
        self.pacer.frame_sent(frame_id);
        Ok(())
    }

    /// One tile, losslessly: a SolidFill (gathered for the frame's end), a
    /// cache hit, or the session's codec (planar under `Adaptive`) and
    /// into the cache.
    fn send_tile(
        &mut self,
        shadow: &Image<'_>,
        index: usize,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), Error> {
        let columns = self.pacer.columns();
        {
            let (x, y) = ((index % columns) * TILE, (index / columns) * TILE);
            let (width, height) = (TILE.min(self.width - x), TILE.min(self.height - y));
            // INVARIANT: tiles lie within a surface of at most 65535 pixels
            // a side.
            let destination = Rect16 {
                left: x as u16,
                top: y as u16,
                right: (x + width) as u16,
                bottom: (y + height) as u16,
            };
            if let Some(colour) = flat_colour(shadow, x, y, width, height) {
                self.fills.push((colour, destination));
                return Ok(());
            }
            let key = tile_key(shadow, x, y, width, height);
            if let Some(slot) = self.cache.find(key) {
                ServerPdu::CacheToSurface {
                    cache_slot: slot,
                    surface_id: SURFACE_ID,
                    destinations: vec![Point16 {
                        x: destination.left,
                        y: destination.top,
                    }],
                }
                .encode(&mut self.pending);
                self.stats.cache_hits += 1;
                return Ok(());
            }
            self.tile.clear();
            let codec_id = match self.codec {
                #[cfg(feature = "h264")]
                PipelineCodec::Planar | PipelineCodec::Adaptive => {
                    encode_planar_top_down(
                        shadow,
                        x,
                        y,
                        width,
                        height,
                        &mut self.scratch,
                        &mut self.tile,
                    )
                    .map_err(|_| encode_error("planar tile outside the shadow"))?;
                    codec::PLANAR
                }
                #[cfg(not(feature = "h264"))]
                PipelineCodec::Planar => {
                    encode_planar_top_down(
                        shadow,
                        x,
                        y,
                        width,
                        height,
                        &mut self.scratch,
                        &mut self.tile,
                    )
                    .map_err(|_| encode_error("planar tile outside the shadow"))?;
                    codec::PLANAR
                }
                PipelineCodec::Uncompressed => {
                    shadow
                        .check_rect(x, y, width, height)
                        .map_err(|_| encode_error("tile outside the shadow"))?;
                    for row in y..y + height {
                        let start = row * shadow.stride + x * 4;
                        self.tile
                            .extend_from_slice(&shadow.data[start..start + width * 4]);
                    }
                    codec::UNCOMPRESSED
                }
                #[cfg(feature = "h264")]
                PipelineCodec::Avc420 | PipelineCodec::Avc444 => {
                    return Err(encode_error("h264 tile outside an h264 frame"));
                }
            };
            ServerPdu::WireToSurface1 {
                surface_id: SURFACE_ID,
                codec_id,
                pixel_format: pixel_format::XRGB_8888,
                destination,
                bitmap_data: &self.tile,
            }
            .encode(&mut self.pending);
            self.stats.wire_to_surface += 1;
            if let Some((slot, evicted)) = self.cache.insert(key) {
                if evicted {
                    ServerPdu::EvictCacheEntry { cache_slot: slot }.encode(&mut self.pending);
                }
                ServerPdu::SurfaceToCache {
                    surface_id: SURFACE_ID,
                    // The low half of the key: the client only keeps it.
                    cache_key: key as u64,
                    cache_slot: slot,
                    source: destination,
                }
                .encode(&mut self.pending);
            }
            if self.pending.len() >= MESSAGE_TARGET {
                self.finish_message(out)?;
            }
        }
        Ok(())
    }

    /// The content-adaptive frame (`PipelineCodec::Adaptive`): flat tiles
    /// and cache hits first; the classifier sorts the rest into lossless
    /// tiles (planar, into the cache) and lossy ones, which go as ONE
    /// AVC420 WireToSurface1 whose regions are exactly those tiles and
    /// never enter the cache (the client would keep lossy pixels under the
    /// key of the shadow's lossless ones). Tiles sent lossy and quiet
    /// since, and tiles a copy filled from lossy pixels, go planar.
    #[cfg(feature = "h264")]
    fn send_adaptive(
        &mut self,
        shadow: &Image<'_>,
        tiles: &[usize],
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), Error> {
        let Some(mut adaptive) = self.adaptive.take() else {
            return Err(encode_error("adaptive frame without its state"));
        };
        let sent = self.send_adaptive_with(&mut adaptive, shadow, tiles, out);
        self.adaptive = Some(adaptive);
        sent
    }

    #[cfg(feature = "h264")]
    fn send_adaptive_with(
        &mut self,
        adaptive: &mut Adaptive,
        shadow: &Image<'_>,
        tiles: &[usize],
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), Error> {
        let columns = self.pacer.columns();
        adaptive.candidates.clear();
        for &index in tiles {
            let rect = self.tile_rect(index);
            if flat_colour(shadow, rect.x, rect.y, rect.width, rect.height).is_some()
                || self
                    .cache
                    .find(tile_key(shadow, rect.x, rect.y, rect.width, rect.height))
                    .is_some()
            {
                self.send_tile(shadow, index, out)?;
                adaptive.lossy[index] = false;
            } else {
                adaptive.candidates.push(rect);
            }
        }
        adaptive
            .classifier
            .classify(shadow, &adaptive.candidates, &mut adaptive.decisions)
            .map_err(|_| encode_error("tile outside the classifier's grid"))?;
        for rect in &adaptive.decisions.lossless {
            let index = rect.y / TILE * columns + rect.x / TILE;
            self.send_tile(shadow, index, out)?;
            adaptive.lossy[index] = false;
        }
        for rect in &adaptive.decisions.refresh {
            let index = rect.y / TILE * columns + rect.x / TILE;
            // A tile sent losslessly since (a fill, a cache hit, a copy's
            // repair) needs no refresh.
            if std::mem::take(&mut adaptive.lossy[index]) {
                self.send_tile(shadow, index, out)?;
                self.stats.tiles_refreshed += 1;
            }
        }
        // Copies that drew from lossy pixels: lossless now, unless the
        // frame sends the tile anyway.
        adaptive
            .forced
            .retain(|index| tiles.binary_search(index).is_err());
        for index in std::mem::take(&mut adaptive.forced) {
            self.send_tile(shadow, index, out)?;
            adaptive.lossy[index] = false;
        }
        adaptive.lossy_tiles.clear();
        adaptive.lossy_tiles.extend(
            adaptive
                .decisions
                .lossy
                .iter()
                .map(|rect| rect.y / TILE * columns + rect.x / TILE),
        );
        if !adaptive.lossy_tiles.is_empty() {
            adaptive.lossy_tiles.sort_unstable();
            for &index in &adaptive.lossy_tiles {
                adaptive.lossy[index] = true;
            }
            self.stats.tiles_lossy += adaptive.lossy_tiles.len() as u64;
            self.send_avc(shadow, &adaptive.lossy_tiles)?;
        }
        Ok(())
    }

    /// Notes the tiles a pending copy draws from lossy pixels: the copy
    /// carries the lossy pixels along, so they are re-sent losslessly in
    /// the same frame.
    #[cfg(feature = "h264")]
    fn copies_from_lossy(&mut self) {
        let Some(adaptive) = &mut self.adaptive else {
            return;
        };
        let columns = self.pacer.columns();
        let rows = self.height.div_ceil(TILE);
        let tiles_of = |left: usize, top: usize, right: usize, bottom: usize| {
            let (first_column, last_column) = (left / TILE, (right.max(left + 1) - 1) / TILE);
            let (first_row, last_row) = (top / TILE, (bottom.max(top + 1) - 1) / TILE);
            (first_row..=last_row.min(rows.saturating_sub(1))).flat_map(move |row| {
                (first_column..=last_column.min(columns.saturating_sub(1)))
                    .map(move |column| row * columns + column)
            })
        };
        for copy in &self.copies {
            let source = copy.source;
            let (left, top, right, bottom) = (
                usize::from(source.left),
                usize::from(source.top),
                usize::from(source.right),
                usize::from(source.bottom),
            );
            let (to_x, to_y) = (
                usize::from(copy.destination.x),
                usize::from(copy.destination.y),
            );
            // Each lossy tile the copy reads, where the copy puts it.
            for index in tiles_of(left, top, right, bottom) {
                if !adaptive.lossy[index] {
                    continue;
                }
                let (x, y) = ((index % columns) * TILE, (index / columns) * TILE);
                let (from_x, from_y) = (x.max(left), y.max(top));
                let (end_x, end_y) = ((x + TILE).min(right), (y + TILE).min(bottom));
                let (moved_x, moved_y) = (to_x + (from_x - left), to_y + (from_y - top));
                let moved = tiles_of(
                    moved_x,
                    moved_y,
                    moved_x + (end_x - from_x),
                    moved_y + (end_y - from_y),
                );
                for destination in moved {
                    if !adaptive.forced.contains(&destination) {
                        adaptive.forced.push(destination);
                    }
                }
            }
        }
        adaptive.forced.sort_unstable();
    }

    /// Tile `index`'s rectangle, clipped to the surface.
    #[cfg(feature = "h264")]
    fn tile_rect(&self, index: usize) -> TileRect {
        let columns = self.pacer.columns();
        let (x, y) = ((index % columns) * TILE, (index / columns) * TILE);
        TileRect {
            x,
            y,
            width: TILE.min(self.width - x),
            height: TILE.min(self.height - y),
        }
    }

    /// With an H.264 codec, the frame's `tiles` as one WireToSurface1
    /// (avc.rs); returns false, sending nothing, with the other codecs.
    #[cfg(feature = "h264")]
    fn send_avc(&mut self, shadow: &Image<'_>, tiles: &[usize]) -> Result<bool, Error> {
        if !self.codec.is_avc() {
            return Ok(false);
        }
        if self.codec == PipelineCodec::Avc444 {
            return self.send_avc444(shadow, tiles);
        }
        let avc = match &mut self.avc {
            Some(avc) => avc,
            empty => empty.insert(
                AvcEncoder::new(Default::default(), self.width, self.height)
                    .map_err(|_| encode_error("h264 encoder refused the surface"))?,
            ),
        };
        self.tile.clear();
        avc.encode_frame(shadow, tiles, self.pacer.columns(), &mut self.tile)
            .map_err(|_| encode_error("h264 frame failed"))?;
        self.own_stream_needs_key = true;
        ServerPdu::WireToSurface1 {
            surface_id: SURFACE_ID,
            codec_id: codec::AVC420,
            pixel_format: pixel_format::XRGB_8888,
            destination: avc.destination(),
            bitmap_data: &self.tile,
        }
        .encode(&mut self.pending);
        self.stats.wire_to_surface += 1;
        Ok(true)
    }

    /// AVC444: both views of the surface as one WireToSurface1, v2 where
    /// the client takes it and the surface is a whole number of
    /// macroblocks wide (FreeRDP splits v2's auxiliary view at the
    /// surface's half width).
    #[cfg(feature = "h264")]
    fn send_avc444(&mut self, shadow: &Image<'_>, tiles: &[usize]) -> Result<bool, Error> {
        use rdpserve_codecs::Avc444Version;
        let version = if self.confirmed.avc444_v2() && self.width % 16 == 0 {
            Avc444Version::V2
        } else {
            Avc444Version::V1
        };
        let avc = match &mut self.avc444 {
            Some(avc) => avc,
            empty => empty.insert(
                Avc444Encoder::new(Default::default(), version, self.width, self.height)
                    .map_err(|_| encode_error("h264 encoder refused the surface"))?,
            ),
        };
        self.tile.clear();
        avc.encode_frame(shadow, tiles, self.pacer.columns(), &mut self.tile)
            .map_err(|_| encode_error("h264 frame failed"))?;
        let codec_id = match avc.version() {
            Avc444Version::V1 => codec::AVC444,
            Avc444Version::V2 => codec::AVC444V2,
        };
        self.own_stream_needs_key = true;
        // INVARIANT: `fits` bounded the surface to 16-bit sides.
        ServerPdu::WireToSurface1 {
            surface_id: SURFACE_ID,
            codec_id,
            pixel_format: pixel_format::XRGB_8888,
            destination: Rect16 {
                left: 0,
                top: 0,
                right: self.width as u16,
                bottom: self.height as u16,
            },
            bitmap_data: &self.tile,
        }
        .encode(&mut self.pending);
        self.stats.wire_to_surface += 1;
        Ok(true)
    }

    /// The application's own H.264 picture as one frame: StartFrame, a
    /// WireToSurface1 in AVC420 over the whole surface with the frame's
    /// regions, EndFrame. Tiles still due stay due.
    pub fn send_avc420(
        &mut self,
        frame: &Avc420Frame<'_>,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), CommandError> {
        if !self.confirmed.avc420() {
            return Err(CommandError::CodecNotTaken);
        }
        let mut regions = Vec::with_capacity(frame.regions.len());
        for (index, region) in frame.regions.iter().enumerate() {
            if usize::from(region.right) > self.width || usize::from(region.bottom) > self.height {
                return Err(CommandError::InvalidAvcRegion { index });
            }
            let rect = Rect16 {
                left: region.left,
                top: region.top,
                right: region.right,
                bottom: region.bottom,
            };
            let quant = QuantQuality {
                qp: region.qp,
                progressive: false,
                quality: region.quality,
            };
            regions.push((rect, quant));
        }
        if self.own_stream_needs_key && !frame.has_idr() {
            return Err(CommandError::KeyFrameNeeded);
        }
        let Some(frame_id) = self.pacer.start_own_frame() else {
            return Err(CommandError::FramesInFlight);
        };
        ServerPdu::StartFrame {
            timestamp: 0,
            frame_id,
        }
        .encode(&mut self.pending);
        self.tile.clear();
        encode_avc420_bitmap(&regions, &frame.stream, &mut self.tile);
        // INVARIANT: `fits` bounded the surface to 16-bit sides.
        ServerPdu::WireToSurface1 {
            surface_id: SURFACE_ID,
            codec_id: codec::AVC420,
            pixel_format: pixel_format::XRGB_8888,
            destination: Rect16 {
                left: 0,
                top: 0,
                right: self.width as u16,
                bottom: self.height as u16,
            },
            bitmap_data: &self.tile,
        }
        .encode(&mut self.pending);
        ServerPdu::EndFrame { frame_id }.encode(&mut self.pending);
        self.finish_message(out)?;
        self.stats.frames += 1;
        self.stats.wire_to_surface += 1;
        self.pacer.frame_sent(frame_id);
        self.own_stream_needs_key = false;
        // The server's own encoder must start over with a key frame after
        // these pictures: the client's decoder holds them as references.
        #[cfg(feature = "h264")]
        {
            self.avc = None;
            self.avc444 = None;
        }
        Ok(())
    }

    /// One SolidFill per colour of this frame's flat tiles.
    fn send_fills(&mut self) {
        self.fills.sort_unstable_by_key(|(colour, _)| *colour);
        for group in self.fills.chunk_by(|a, b| a.0 == b.0) {
            let [b, g, r] = group[0].0;
            // A frame has at most 1024 x 1024 tiles; far fewer share a
            // colour in practice, but the count field is 16 bits.
            for rects in group.chunks(usize::from(u16::MAX)) {
                ServerPdu::SolidFill {
                    surface_id: SURFACE_ID,
                    color: Color32 { b, g, r, xa: 0xFF },
                    rects: rects.iter().map(|(_, rect)| *rect).collect(),
                }
                .encode(&mut self.pending);
            }
            self.stats.solid_fills += group.len() as u64;
        }
        self.fills.clear();
    }

    /// Answers a Cache Import Offer: this server imports no entries (it
    /// keeps no persistent cache to match them against), which the reply
    /// says with an empty list.
    pub fn refuse_cache_import(&mut self, out: &mut Vec<Vec<u8>>) -> Result<(), Error> {
        ServerPdu::CacheImportReply {
            cache_slots: Vec::new(),
        }
        .encode(&mut self.pending);
        self.finish_message(out)
    }

    /// Compresses the gathered PDUs into one message.
    fn finish_message(&mut self, out: &mut Vec<Vec<u8>>) -> Result<(), Error> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut message = Vec::with_capacity(self.pending.len() / 2 + 64);
        self.compressor
            .compress(&self.pending, &mut message)
            .map_err(|_| encode_error("message beyond what zgfx can frame"))?;
        self.stats.uncompressed_bytes += self.pending.len() as u64;
        self.stats.compressed_bytes += message.len() as u64;
        out.push(message);
        self.pending.clear();
        Ok(())
    }
}

/// The B, G, R colour of a rectangle whose pixels are all that colour (the
/// fourth byte aside).
fn flat_colour(
    image: &Image<'_>,
    x: usize,
    y: usize,
    width: usize,
    height: usize,
) -> Option<[u8; 3]> {
    image.check_rect(x, y, width, height).ok()?;
    let first = image.stride * y + x * 4;
    let colour = [
        image.data[first],
        image.data[first + 1],
        image.data[first + 2],
    ];
    let expected = u32::from_le_bytes([colour[0], colour[1], colour[2], 0]);
    for row in y..y + height {
        let start = row * image.stride + x * 4;
        // INVARIANT: check_rect proved the rows lie in the data.
        let same = image.data[start..start + width * 4]
            .chunks_exact(4)
            .all(|pixel| u32::from_le_bytes([pixel[0], pixel[1], pixel[2], 0]) == expected);
        if !same {
            return None;
        }
    }
    Some(colour)
}

/// A 128-bit hash of a tile's pixels (the fourth byte aside) and size: two
/// independent 64-bit multiply-xorshift lanes, so that two different tiles
/// share a key with odds far below any other fault.
fn tile_key(image: &Image<'_>, x: usize, y: usize, width: usize, height: usize) -> u128 {
    const MULTIPLIER: [u64; 2] = [0x9E37_79B9_7F4A_7C15, 0xC2B2_AE3D_27D4_EB4F];
    let mut lanes = [
        0x243F_6A88_85A3_08D3 ^ (width as u64) << 32 ^ height as u64,
        0x1319_8A2E_0370_7344 ^ (height as u64) << 32 ^ width as u64,
    ];
    let mut mix = |word: u64| {
        for (lane, multiplier) in lanes.iter_mut().zip(MULTIPLIER) {
            *lane = (*lane ^ word).wrapping_mul(multiplier);
            *lane ^= *lane >> 29;
        }
    };
    for row in y..y + height {
        let start = row * image.stride + x * 4;
        // INVARIANT: the caller checked the rectangle (flat_colour).
        let bytes = &image.data[start..start + width * 4];
        let mut pairs = bytes.chunks_exact(8);
        for pair in &mut pairs {
            let word = u64::from_le_bytes(pair.try_into().unwrap_or([0; 8]));
            // The fourth byte of each pixel is not drawn.
            mix(word & 0x00FF_FFFF_00FF_FFFF);
        }
        for pixel in pairs.remainder().chunks_exact(4) {
            mix(u64::from(u32::from_le_bytes([
                pixel[0], pixel[1], pixel[2], 0,
            ])));
        }
    }
    (u128::from(lanes[0]) << 64) | u128::from(lanes[1])
}

/// The server's view of the client's bitmap cache: which tile key sits in
/// which slot (slots 1 to `capacity`), refilled oldest first.
#[derive(Debug)]
struct TileCache {
    capacity: u16,
    by_key: HashMap<u128, u16>,
    /// The key in each slot (index slot - 1).
    slots: Vec<Option<u128>>,
    /// The slot the next tile goes into.
    next: u16,
}

impl TileCache {
    fn new(capacity: u16) -> Self {
        Self {
            capacity,
            by_key: HashMap::new(),
            slots: Vec::new(),
            next: 1,
        }
    }

    fn find(&self, key: u128) -> Option<u16> {
        self.by_key.get(&key).copied()
    }

    /// Takes a slot for `key`; returns it and whether it held another tile
    /// (which the client must evict first: a SurfaceToCache over a full slot
    /// leaks the old entry in FreeRDP). `None` without a cache.
    fn insert(&mut self, key: u128) -> Option<(u16, bool)> {
        if self.capacity == 0 {
            return None;
        }
        let slot = self.next;
        self.next = if slot >= self.capacity { 1 } else { slot + 1 };
        let index = usize::from(slot - 1);
        if self.slots.len() <= index {
            self.slots.resize(index + 1, None);
        }
        let evicted = self.slots[index].replace(key);
        if let Some(old) = evicted {
            self.by_key.remove(&old);
        }
        self.by_key.insert(key, slot);
        Some((slot, evicted.is_some()))
    }
}
