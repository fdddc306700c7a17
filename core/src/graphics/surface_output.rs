//! Graphics over surface commands (RemoteFX, QOI, QOIZ): the codec that
//! encodes the due tiles from the session's shadow framebuffer, frame
//! markers, and pacing by the client's frame acknowledgements
//! (`pacing.rs`: updates never queue, the latest pixels win).

use crate::api::error::{EncodeError, Error};
use crate::connection::codecs::RemoteFxCaps;
use crate::graphics::fastpath::{self, MAX_FAST_PATH_PDU, UpdateCode};
use crate::graphics::pacing::FramePacer;
/// Side of the tiles damage is tracked in; RemoteFX's own tile size.
pub(crate) use crate::graphics::pacing::TILE;
use crate::graphics::surface;
use crate::transport::Transport;
#[cfg(feature = "qoiz")]
use rdpserve_codecs::QoizEncoder;
use rdpserve_codecs::damage::TileRect;
use rdpserve_codecs::{Image, RfxEncoder, RfxQuant, RfxRect, RlgrMode};
/// Frame marker commands around each frame: 8 bytes each.
const FRAME_MARKERS: usize = 16;
/// The most a 64x64 RemoteFX tile can take: three components of 4096
/// coefficients, each at most a few bytes in RLGR, plus headers. Used to
/// size groups of tiles so one message never exceeds the client's limit.
const WORST_CASE_TILE: usize = 3 * 4096 * 3 + 64;

/// The codec of a session, with its state.
enum Codec {
    RemoteFx {
        caps: RemoteFxCaps,
        encoder: Box<RfxEncoder>,
        /// Whether the stream's header messages went out since activation.
        headers_sent: bool,
    },
    /// One QOI image per tile.
    #[cfg(feature = "qoi")]
    Qoi { codec_id: u8 },
    /// QOI images through one zstd stream per activation.
    #[cfg(feature = "qoiz")]
    Qoiz {
        codec_id: u8,
        encoder: Box<QoizEncoder>,
    },
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The encoders' scratch buffers are large and not worth a dump.
        match self {
            Self::RemoteFx { caps, .. } => write!(f, "RemoteFx({caps:?})"),
            #[cfg(feature = "qoi")]
            Self::Qoi { codec_id } => write!(f, "Qoi({codec_id})"),
            #[cfg(feature = "qoiz")]
            Self::Qoiz { codec_id, .. } => write!(f, "Qoiz({codec_id})"),
        }
    }
}

/// Which codec a session uses, as negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Negotiated {
    RemoteFx(RemoteFxCaps),
    #[cfg(feature = "qoi")]
    Qoi {
        codec_id: u8,
    },
    #[cfg(feature = "qoiz")]
    Qoiz {
        codec_id: u8,
    },
}

#[derive(Debug)]
pub(crate) struct SurfaceOutput {
    codec: Codec,
    /// Desktop size in pixels and in tiles.
    width: usize,
    height: usize,
    /// Due tiles and frames in flight.
    pacer: FramePacer,
    /// Largest update payload the client reassembles.
    update_budget: usize,
    /// Reused buffers: the due tiles' indices, RemoteFX rects, one codec
    /// message, one update's payload, its fast-path framing.
    due: Vec<usize>,
    rects: Vec<RfxRect>,
    message: Vec<u8>,
    payload: Vec<u8>,
    wire: Vec<u8>,
}

impl SurfaceOutput {
    /// Output with the negotiated codec for a desktop of `width` x `height`
    /// (at most 4096 each way); `None` if the desktop is larger. A QOIZ
    /// output continues `qoiz_stream`, the zstd stream of this activation
    /// when an earlier output used it, since the client keeps one decoder
    /// per activation.
    pub fn new(
        negotiated: Negotiated,
        width: usize,
        height: usize,
        max_unacknowledged: Option<usize>,
        update_budget: usize,
        #[cfg(feature = "qoiz")] qoiz_stream: Option<Box<QoizEncoder>>,
    ) -> Option<Self> {
        if !Self::fits(width, height) {
            return None;
        }
        let codec = match negotiated {
            Negotiated::RemoteFx(caps) => {
                let mode = if caps.rlgr3 {
                    RlgrMode::Rlgr3
                } else {
                    RlgrMode::Rlgr1
                };
                Codec::RemoteFx {
                    caps,
                    encoder: Box::new(RfxEncoder::new(RfxQuant::default(), mode).ok()?),
                    headers_sent: false,
                }
            }
            #[cfg(feature = "qoi")]
            Negotiated::Qoi { codec_id } => Codec::Qoi { codec_id },
            #[cfg(feature = "qoiz")]
            Negotiated::Qoiz { codec_id } => Codec::Qoiz {
                codec_id,
                encoder: match qoiz_stream {
                    Some(stream) => stream,
                    None => Box::new(QoizEncoder::new().ok()?),
                },
            },
        };
        let mut output = Self {
            codec,
            width: 0,
            height: 0,
            pacer: FramePacer::new(max_unacknowledged),
            update_budget,
            due: Vec::new(),
            rects: Vec::new(),
            message: Vec::new(),
            payload: Vec::new(),
            wire: Vec::new(),
        };
        output.set_size(width, height);
        Some(output)
    }

    /// The zstd stream of a QOIZ output, for the output that follows it in
    /// the same activation.
    #[cfg(feature = "qoiz")]
    pub fn into_qoiz_stream(self) -> Option<Box<QoizEncoder>> {
        match self.codec {
            Codec::Qoiz { encoder, .. } => Some(encoder),
            _ => None,
        }
    }

    /// A new desktop size (after a reactivation): everything is due again,
    /// and the codec stream starts over with its headers.
    pub fn resize(&mut self, width: usize, height: usize) -> Result<(), Error> {
        self.set_size(width, height);
        match &mut self.codec {
            Codec::RemoteFx { headers_sent, .. } => *headers_sent = false,
            #[cfg(feature = "qoi")]
            Codec::Qoi { .. } => {}
            #[cfg(feature = "qoiz")]
            Codec::Qoiz { encoder, .. } => {
                // A new activation starts a new zstd stream on both sides.
                **encoder = QoizEncoder::new()
                    .map_err(|_| encode_error("qoiz", "zstd compressor unavailable"))?;
            }
        }
        Ok(())
    }

    fn set_size(&mut self, width: usize, height: usize) {
        self.width = width;
        self.height = height;
        self.pacer.resize(width, height, false);
    }

    /// Whether the desktop still fits the codec.
    pub fn fits(width: usize, height: usize) -> bool {
        width <= 4096 && height <= 4096
    }

    /// Marks changed tiles (on the desktop's 64x64 grid) as due.
    pub fn mark(&mut self, changed: &[TileRect]) {
        self.pacer.mark(changed);
    }

    /// Whether changed tiles wait to be sent (for the client's
    /// acknowledgement, when throttled).
    pub fn has_due_tiles(&self) -> bool {
        self.pacer.has_due_tiles()
    }

    /// The id the next frame will carry.
    pub fn next_frame_id(&self) -> u32 {
        self.pacer.next_frame_id()
    }

    /// Continues the frame ids of an earlier output, so a late
    /// acknowledgement of one of its frames cannot pass for one of ours.
    pub fn continue_frame_ids(&mut self, next_frame_id: u32) {
        self.pacer.continue_frame_ids(next_frame_id);
    }

    /// The client finished frame `frame_id`; returns whether a frame is due.
    pub fn acknowledge(&mut self, frame_id: u32) -> bool {
        self.pacer.acknowledge(frame_id)
    }

    /// Sends the due tiles from `shadow` as one frame, unless the client
    /// has too many frames unacknowledged (then they wait for an ack).
    pub fn flush(&mut self, shadow: &Image<'_>, transport: &mut Transport) -> Result<(), Error> {
        let mut tiles = std::mem::take(&mut self.due);
        let Some(frame_id) = self.pacer.start_frame(&mut tiles) else {
            self.due = tiles;
            return Ok(());
        };
        // Tiles per message so that each surface command fits the budget.
        let per_message = (self
            .update_budget
            .saturating_sub(FRAME_MARKERS + surface::STREAM_SURFACE_BITS_HEADER + 1024)
            / WORST_CASE_TILE)
            .max(1);
        self.payload.clear();
        surface::encode_frame_marker(&mut self.payload, true, frame_id);
        let sent = match self.codec {
            Codec::RemoteFx { .. } => self.send_remotefx(shadow, &tiles, per_message, transport),
            #[cfg(feature = "qoi")]
            _ => self.send_qoi(shadow, &tiles, transport),
        };
        self.due = tiles;
        sent?;
        surface::encode_frame_marker(&mut self.payload, false, frame_id);
        self.send_payload(transport)?;
        self.pacer.frame_sent(frame_id);
        Ok(())
    }

    fn tile_rect(&self, index: usize) -> RfxRect {
        let columns = self.pacer.columns();
        let (x, y) = ((index % columns) * TILE, (index / columns) * TILE);
        // INVARIANT: tiles lie within a desktop of at most 4096 pixels.
        RfxRect {
            x: x as u16,
            y: y as u16,
            width: TILE.min(self.width - x) as u16,
            height: TILE.min(self.height - y) as u16,
        }
    }

    /// Appends one stream surface bits command for `rect` carrying
    /// `self.message`, sending the payload first if it would overflow.
    fn append_command(
        &mut self,
        rect: (u16, u16, u16, u16),
        size: (u16, u16),
        codec_id: u8,
        transport: &mut Transport,
    ) -> Result<(), Error> {
        let length = u32::try_from(self.message.len())
            .map_err(|_| encode_error("surface commands", "message beyond 4 GiB"))?;
        if self.payload.len() + surface::STREAM_SURFACE_BITS_HEADER + self.message.len()
            > self.update_budget
        {
            self.send_payload(transport)?;
        }
        surface::encode_stream_surface_bits_header(&mut self.payload, rect, codec_id, size, length);
        self.payload.extend_from_slice(&self.message);
        Ok(())
    }

    /// RemoteFX: messages over the whole desktop, each with a group of tiles.
    fn send_remotefx(
        &mut self,
        shadow: &Image<'_>,
        tiles: &[usize],
        per_message: usize,
        transport: &mut Transport,
    ) -> Result<(), Error> {
        for group in tiles.chunks(per_message) {
            self.rects.clear();
            for &index in group {
                let rect = self.tile_rect(index);
                self.rects.push(rect);
            }
            self.message.clear();
            let (caps, encoder, headers_sent) = match &mut self.codec {
                Codec::RemoteFx {
                    caps,
                    encoder,
                    headers_sent,
                } => (caps, encoder, headers_sent),
                #[cfg(feature = "qoi")]
                _ => return Ok(()),
            };
            let headers = !*headers_sent || caps.image_mode;
            encoder
                .encode_frame(shadow, &self.rects, headers, &mut self.message)
                .map_err(|_| encode_error("remotefx", "desktop not encodable"))?;
            *headers_sent = true;
            let codec_id = caps.codec_id;
            let (width, height) = (self.width as u16, self.height as u16);
            self.append_command((0, 0, width, height), (width, height), codec_id, transport)?;
        }
        Ok(())
    }

    /// QOI and QOIZ: one image per tile, placed by its command.
    #[cfg(feature = "qoi")]
    fn send_qoi(
        &mut self,
        shadow: &Image<'_>,
        tiles: &[usize],
        transport: &mut Transport,
    ) -> Result<(), Error> {
        for &index in tiles {
            let rect = self.tile_rect(index);
            let (x, y, width, height) = (
                usize::from(rect.x),
                usize::from(rect.y),
                usize::from(rect.width),
                usize::from(rect.height),
            );
            self.message.clear();
            let codec_id = match &mut self.codec {
                #[cfg(feature = "qoi")]
                Codec::Qoi { codec_id } => {
                    rdpserve_codecs::encode_qoi(shadow, x, y, width, height, &mut self.message)
                        .map_err(|_| encode_error("qoi", "tile not encodable"))?;
                    *codec_id
                }
                #[cfg(feature = "qoiz")]
                Codec::Qoiz { codec_id, encoder } => {
                    encoder
                        .encode(shadow, x, y, width, height, &mut self.message)
                        .map_err(|_| encode_error("qoiz", "tile not encodable"))?;
                    *codec_id
                }
                Codec::RemoteFx { .. } => return Ok(()),
            };
            let bounds = (rect.x, rect.y, rect.x + rect.width, rect.y + rect.height);
            self.append_command(bounds, (rect.width, rect.height), codec_id, transport)?;
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

fn encode_error(codec: &'static str, reason: &'static str) -> Error {
    Error::Encode(EncodeError { codec, reason })
}
