//! The active phase: input in, graphics out.
//!
//! A [`Session`] can only be built from a finished [`Handshake`], so nothing
//! reaches the client as graphics before it confirmed its capabilities.

pub(crate) mod fastpath_input;

use std::collections::VecDeque;

use tracing::{debug, trace};

use crate::graphics::bitmap_output::BitmapOutput;

#[cfg(feature = "qoiz")]
use rdpserve_codecs::QoizEncoder;
use rdpserve_codecs::damage::{Framebuffer, TileRect};

use std::time::Instant;

use crate::api::config::{Config, DesktopSize, PipelineCodec, SurfaceCodec};
use crate::api::error::{CommandError, EncodeError, Error};
use crate::api::event::{CloseReason, Event, Graphics, Rectangle, SessionInfo};
use crate::api::input::InputEvent;
use crate::api::pointer::ColorPointer;
use crate::api::pointer::PointerCommand;
use crate::api::pointer::PointerImage;
use crate::api::update::BitmapUpdate;
use crate::channels::svc;
use crate::channels::{ChannelSetup, Channels};
use crate::connection::capabilities::{DRAW_ALLOW_SKIP_ALPHA, ServerCapabilities};
use crate::connection::codecs;
use crate::connection::data_pdus::{self, ClientDataPdu};
use crate::connection::finalization::{Finalization, Progress};
use crate::connection::handshake::Handshake;
use crate::connection::share::{self, ClientShareControlPdu};
use crate::graphics::egfx::caps::Confirmed;
use crate::graphics::egfx::output::{self as egfx_output, GfxOutput};
use crate::graphics::egfx::pdu::ClientPdu;
use crate::graphics::fastpath::{self, MAX_FAST_PATH_PDU, UNFRAGMENTED_UPDATE_BUDGET, UpdateCode};
use crate::graphics::pointer;
use crate::graphics::surface_output::{self, Negotiated, SurfaceOutput};
use crate::transport::Transport;
use crate::transport::io_channel::{self, ChannelIds};
use crate::wire::mcs::DomainPdu;
use crate::wire::x224;

/// LARGE_POINTER_FLAG_384x384 in the client's Large Pointer capability.
const LARGE_POINTER_FLAG_384X384: u16 = 0x0002;

/// Progress of a deactivation-reactivation.
#[derive(Debug, Default)]
struct Reactivation {
    confirmed: bool,
    finalization: Finalization,
}

#[derive(Debug)]
pub(crate) struct Session {
    info: SessionInfo,
    share_id: u32,
    channel_ids: ChannelIds,
    /// Largest update payload the client reassembles (and we agree to send).
    update_budget: usize,
    supports_error_info: bool,
    max_request_size: u32,
    /// Set between a Deactivate All and the end of the new finalization.
    reactivation: Option<Reactivation>,
    channels: Channels,
    /// Pointer cache slots the client has, the next one to fill, and the
    /// largest pointer side it accepts.
    pointer_cache_size: u16,
    next_pointer_slot: u16,
    max_pointer_side: u16,
    /// What the client shows, to send only tiles that changed.
    framebuffer: Framebuffer,
    changed: Vec<TileRect>,
    /// Damage the application supplied, clipped to its update.
    damage: Vec<TileRect>,
    /// One pointer update's payload, reused.
    payload: Vec<u8>,
    input: Vec<InputEvent>,
    /// Surface commands (RemoteFX) when both sides support them; else
    /// bitmap updates.
    surface: Option<SurfaceOutput>,
    /// This activation's QOIZ zstd stream while another path is in use.
    #[cfg(feature = "qoiz")]
    qoiz_stream: Option<Box<QoizEncoder>>,
    bitmaps: BitmapOutput,
    /// Every offered surface codec the client takes, as negotiated, in the
    /// server's order: what `set_graphics` may switch to.
    surface_choices: Vec<(SurfaceCodec, Negotiated)>,
    /// Frame pacing for surface output: `Some` when the client
    /// acknowledges frames.
    max_unacknowledged: Option<usize>,
    /// The frame id an output made by `set_graphics` starts from.
    next_frame_id: u32,
    /// What the Demand Active of a reactivation offers again.
    surface_offer: Vec<SurfaceCodec>,
    max_unacknowledged_frames: u32,
    /// The Graphics Pipeline, once the client confirmed its capabilities;
    /// while it runs, every update goes through it.
    gfx: Option<GfxOutput>,
    /// The codec the pipeline starts with (`Config::graphics_pipeline`).
    gfx_codec: Option<PipelineCodec>,
    /// `Config::scroll_detection`.
    scroll_detection: bool,
    /// What the session used before the pipeline, to return to if its
    /// channel goes away.
    legacy_graphics: Graphics,
    /// Messages for the pipeline's channel, reused.
    gfx_messages: Vec<Vec<u8>>,
    /// A Caps Advertise that arrived during a reactivation: the pipeline
    /// starts when the client runs at the new size.
    deferred_caps: Option<Vec<crate::graphics::egfx::pdu::CapabilitySet>>,
}

impl Session {
    pub fn from_handshake(handshake: Handshake, config: &Config) -> Self {
        let client_max = handshake
            .client_capabilities()
            .and_then(|caps| caps.multifragment_update.as_ref())
            .map(|multifragment| multifragment.max_request_size as usize);
        let update_budget = match client_max {
            Some(client_max) => client_max
                .min(config.max_request_size as usize)
                .max(UNFRAGMENTED_UPDATE_BUDGET),
            None => UNFRAGMENTED_UPDATE_BUDGET,
        };
        let mut info = handshake.session_info();
        let desktop = info.desktop_size;

        let surface_choices = Self::surface_choices(&handshake, config, info.color_depth);
        // Clients that acknowledge frames pace the output; the others get
        // every frame as the socket takes it.
        let max_unacknowledged = handshake
            .client_capabilities()
            .and_then(|caps| caps.frame_acknowledge.as_ref())
            .map(|_| config.max_unacknowledged_frames as usize);
        let surface = surface_choices.iter().find_map(|&(codec, negotiated)| {
            let output = SurfaceOutput::new(
                negotiated,
                usize::from(desktop.width),
                usize::from(desktop.height),
                max_unacknowledged,
                update_budget,
                #[cfg(feature = "qoiz")]
                None,
            )?;
            Some((codec, output))
        });
        info.graphics = surface
            .as_ref()
            .map_or(Graphics::Bitmaps, |&(codec, _)| Graphics::Surface(codec));
        info.surface_codecs = surface_choices.iter().map(|&(codec, _)| codec).collect();
        debug!(graphics = ?info.graphics, "Graphics path chosen");
        Self {
            bitmaps: BitmapOutput::new(
                config.bitmap_compression,
                // Planar bitmaps carry an alpha plane unless the client
                // allows skipping it (MS-RDPBCGR 2.2.7.1.2 drawingFlags).
                handshake
                    .client_capabilities()
                    .and_then(|caps| caps.bitmap)
                    .is_none_or(|bitmap| bitmap.drawing_flags & DRAW_ALLOW_SKIP_ALPHA == 0),
                info.color_depth,
                update_budget,
            ),
            surface: surface.map(|(_, output)| output),
            #[cfg(feature = "qoiz")]
            qoiz_stream: None,
            surface_choices,
            max_unacknowledged,
            next_frame_id: 0,
            surface_offer: config.bitmap_codecs.deduplicated(),
            max_unacknowledged_frames: config.max_unacknowledged_frames,
            gfx: None,
            gfx_codec: config.graphics_pipeline,
            scroll_detection: config.scroll_detection,
            legacy_graphics: info.graphics,
            gfx_messages: Vec::new(),
            deferred_caps: None,
            info,
            share_id: handshake.share_id(),
            channel_ids: handshake.channels().clone(),
            update_budget,
            supports_error_info: handshake.client_supports_error_info(),
            max_request_size: config.max_request_size,
            reactivation: None,
            channels: Channels::new(
                handshake.static_channels(),
                &ChannelSetup {
                    clipboard: config.clipboard,
                    sound: config.sound.clone(),
                    application: config.static_channels.clone(),
                    graphics: config.graphics_pipeline.is_some()
                        && handshake.client_supports_graphics_pipeline(),
                },
                // The client's VCChunkSize is ignored (MS-RDPBCGR 2.2.7.1.10
                // says the server ignores it): every client takes chunks of
                // CHANNEL_CHUNK_LENGTH, which is what Windows sends.
                // IronRDP's client announces 0, which taken at its word
                // meant 64-byte chunks.
                svc::DEFAULT_CHUNK_SIZE,
                config.max_channel_message,
                config.channel_memory_budget,
            ),
            pointer_cache_size: handshake
                .client_capabilities()
                .and_then(|caps| caps.pointer)
                .map(|pointer| {
                    pointer
                        .pointer_cache_size
                        .unwrap_or(pointer.color_pointer_cache_size)
                })
                .unwrap_or(0)
                .max(1),
            next_pointer_slot: 0,
            max_pointer_side: if handshake
                .client_capabilities()
                .and_then(|caps| caps.large_pointer)
                .is_some_and(|flags| flags & LARGE_POINTER_FLAG_384X384 != 0)
            {
                crate::api::pointer::MAX_LARGE_SIDE
            } else {
                crate::api::pointer::MAX_REGULAR_SIDE
            },
            framebuffer: Framebuffer::new(usize::from(desktop.width), usize::from(desktop.height)),
            changed: Vec::new(),
            damage: Vec::new(),
            payload: Vec::new(),
            input: Vec::new(),
        }
    }

    /// Each surface codec of the server's list that the client takes (with
    /// stream surface bits at 32 bpp), in the server's order.
    fn surface_choices(
        handshake: &Handshake,
        config: &Config,
        color_depth: u16,
    ) -> Vec<(SurfaceCodec, Negotiated)> {
        let Some(caps) = handshake.client_capabilities() else {
            return Vec::new();
        };
        let streams = caps
            .surface_commands
            .is_some_and(|flags| flags & codecs::SURFCMDS_STREAM_SURFACE_BITS != 0);
        if !streams || color_depth != 32 {
            return Vec::new();
        }
        let negotiate = |codec| match codec {
            SurfaceCodec::RemoteFx => match codecs::client_remotefx(&caps.bitmap_codecs) {
                Ok(remotefx) => remotefx.map(Negotiated::RemoteFx),
                Err(error) => {
                    debug!(%error, "Unusable RemoteFX capabilities");
                    None
                }
            },
            #[cfg(feature = "qoi")]
            SurfaceCodec::Qoi => codecs::client_codec_id(&caps.bitmap_codecs, codec)
                .map(|codec_id| Negotiated::Qoi { codec_id }),
            #[cfg(feature = "qoiz")]
            SurfaceCodec::Qoiz => codecs::client_codec_id(&caps.bitmap_codecs, codec)
                .map(|codec_id| Negotiated::Qoiz { codec_id }),
        };
        config
            .bitmap_codecs
            .deduplicated()
            .into_iter()
            .filter_map(|codec| Some((codec, negotiate(codec)?)))
            .collect()
    }

    /// Switches the session's graphics to `graphics` and repaints the whole
    /// desktop from the shadow in it, so nothing the old path still held
    /// back (frames awaiting acknowledgement) is lost.
    pub fn set_graphics(
        &mut self,
        graphics: Graphics,
        transport: &mut Transport,
        wire: &mut Vec<u8>,
    ) -> Result<(), CommandError> {
        if let Some(gfx) = &mut self.gfx {
            // While the pipeline runs the client draws nothing else: only
            // its codecs can be switched to.
            let Graphics::Pipeline(codec) = graphics else {
                return Err(CommandError::CodecNotTaken);
            };
            if !gfx.set_codec(codec) {
                return Err(CommandError::CodecNotTaken);
            }
            self.info.graphics = graphics;
            debug!(?graphics, "Graphics path changed");
            return Ok(self.flush_pipeline(transport)?);
        }
        let desktop = self.info.desktop_size;
        let (width, height) = (usize::from(desktop.width), usize::from(desktop.height));
        let negotiated = match graphics {
            Graphics::Pipeline(_) => return Err(CommandError::CodecNotTaken),
            Graphics::Bitmaps => None,
            Graphics::Surface(codec) => {
                let &(_, negotiated) = self
                    .surface_choices
                    .iter()
                    .find(|(choice, _)| *choice == codec)
                    .ok_or(CommandError::CodecNotTaken)?;
                if !SurfaceOutput::fits(width, height) {
                    return Err(CommandError::DesktopTooLargeForSurfaces);
                }
                Some(negotiated)
            }
        };
        if let Some(old) = self.surface.take() {
            self.next_frame_id = old.next_frame_id();
            // The client keeps its QOIZ decoder until the next activation:
            // a return to QOIZ continues the same zstd stream.
            #[cfg(feature = "qoiz")]
            if let Some(stream) = old.into_qoiz_stream() {
                self.qoiz_stream = Some(stream);
            }
        }
        if let Some(negotiated) = negotiated {
            #[cfg(feature = "qoiz")]
            let stream = match negotiated {
                Negotiated::Qoiz { .. } => self.qoiz_stream.take(),
                _ => None,
            };
            let output = SurfaceOutput::new(
                negotiated,
                width,
                height,
                self.max_unacknowledged,
                self.update_budget,
                #[cfg(feature = "qoiz")]
                stream,
            )
            .ok_or(Error::Encode(EncodeError {
                codec: "surface commands",
                reason: "encoder unavailable",
            }))?;
            self.surface = Some(output);
        }
        if let Some(surface) = &mut self.surface {
            surface.continue_frame_ids(self.next_frame_id);
        }
        self.info.graphics = graphics;
        self.legacy_graphics = graphics;
        debug!(?graphics, "Graphics path changed");
        if !self.framebuffer.is_initialised() {
            return Ok(());
        }
        // The shadow is the latest picture: send all of it again, on the new
        // path's grid.
        self.changed.clear();
        self.framebuffer
            .all_tiles(self.tile_size(), &mut self.changed);
        Ok(self.send_changed(transport, wire)?)
    }

    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// Whether the content-adaptive pipeline needs quiet frames for its
    /// lossless refresh (the engine's timer makes them).
    pub fn wants_refresh(&self) -> bool {
        self.gfx.as_ref().is_some_and(GfxOutput::wants_refresh)
    }

    /// A quiet frame for the content-adaptive refresh, if the client may
    /// take one now (else with its next acknowledgement).
    pub fn refresh_tick(&mut self, transport: &mut Transport) -> Result<(), Error> {
        if let Some(gfx) = &mut self.gfx {
            gfx.request_refresh_frame();
        }
        self.flush_pipeline(transport)
    }

    pub fn pipeline_stats(&self) -> Option<crate::api::event::PipelineStats> {
        self.gfx.as_ref().map(GfxOutput::stats)
    }

    /// What the pipeline keeps between frames (`GfxOutput::held_bytes`).
    #[cfg(test)]
    pub fn held_graphics_bytes(&self) -> usize {
        self.gfx.as_ref().map_or(0, GfxOutput::held_bytes)
    }

    pub fn process_fast_path(
        &mut self,
        frame: &[u8],
        events: &mut VecDeque<Event>,
    ) -> Result<Option<CloseReason>, Error> {
        self.input.clear();
        fastpath_input::decode_input(frame, &mut self.input)?;
        events.extend(self.input.drain(..).map(Event::Input));
        Ok(None)
    }

    /// Starts what runs from activation on (the dynamic channel host).
    pub fn start(&mut self, transport: &mut Transport) -> Result<(), Error> {
        self.channels.start(transport)
    }

    pub fn request_echo(
        &mut self,
        now: Instant,
        payload: &[u8],
        transport: &mut Transport,
    ) -> Result<u32, CommandError> {
        self.channels.request_echo(now, payload, transport)
    }

    /// Whether the client joined the application static channel `name`.
    pub fn serves_static_channel(&self, name: &str) -> bool {
        self.channels.serves_application(name)
    }

    pub fn channels(&mut self) -> &mut Channels {
        &mut self.channels
    }

    pub fn process_slow_path(
        &mut self,
        frame: &[u8],
        now: Instant,
        transport: &mut Transport,
        events: &mut VecDeque<Event>,
    ) -> Result<Option<CloseReason>, Error> {
        let payload = x224::decode_data(frame)?;
        match DomainPdu::decode(payload)? {
            DomainPdu::DisconnectProviderUltimatum { .. } => Ok(Some(CloseReason::ClientRequested)),
            DomainPdu::SendDataRequest {
                initiator,
                channel_id,
                data,
            } => {
                // One user per connection: another initiator names nobody.
                // Except on a static virtual channel, where IronRDP's client
                // (ironrdp-session 0.13), which Windows Server serves,
                // answers with the initiator of the server's PDU, the MCS
                // server channel (MS-RDPBCGR's rules for sending a Virtual
                // Channel PDU ask for the user channel); the data is the
                // user's all the same.
                let echoed_server_channel = initiator == io_channel::SERVER_CHANNEL_ID
                    && self.channels.is_static(channel_id);
                if initiator != self.channel_ids.user && !echoed_server_channel {
                    return Err(Error::UnexpectedPdu("send data from an unknown user"));
                }
                if channel_id == self.channel_ids.io {
                    self.process_io_data(data, transport, events)
                } else if self.channels.is_static(channel_id) {
                    self.channels
                        .receive(channel_id, data, now, transport, events)?;
                    self.handle_graphics(transport, events)?;
                    Ok(None)
                } else {
                    Err(Error::UnexpectedPdu("send data on an unknown channel"))
                }
            }
            _ => Err(Error::UnexpectedPdu(
                "mcs pdu not valid in an active session",
            )),
        }
    }

    fn process_io_data(
        &mut self,
        data: &[u8],
        transport: &mut Transport,
        events: &mut VecDeque<Event>,
    ) -> Result<Option<CloseReason>, Error> {
        let (_, pdu) = share::decode_client_share_control(data)?;
        if let Some(reactivation) = &mut self.reactivation {
            // Between Deactivate All and the new Font Map only the capability
            // exchange and finalization are valid.
            match pdu {
                ClientShareControlPdu::ConfirmActive(confirm) => {
                    if confirm.share_id != self.share_id || reactivation.confirmed {
                        return Err(Error::UnexpectedPdu("confirm active out of place"));
                    }
                    reactivation.confirmed = true;
                    reactivation.finalization.confirm_active(
                        self.share_id,
                        &self.channel_ids,
                        transport,
                    )?;
                }
                ClientShareControlPdu::Data { header, body } if reactivation.confirmed => {
                    let pdu = ClientDataPdu::decode(header.pdu_type2, body)?;
                    let progress = reactivation.finalization.handle(
                        pdu,
                        self.share_id,
                        &self.channel_ids,
                        transport,
                    )?;
                    if let Progress::Finished = progress {
                        self.reactivation = None;
                        debug!(size = ?self.info.desktop_size, "Session reactivated");
                        // The pipeline's surface follows the new size, now
                        // that the client runs at it.
                        if let Some(gfx) = &mut self.gfx {
                            let size = self.info.desktop_size;
                            gfx.resize(
                                usize::from(size.width),
                                usize::from(size.height),
                                &mut self.gfx_messages,
                            )?;
                            // H.264 gives way to planar beyond openh264's
                            // sizes.
                            let graphics = Graphics::Pipeline(gfx.codec());
                            self.send_gfx_messages(transport)?;
                            if graphics != self.info.graphics {
                                self.info.graphics = graphics;
                                events.push_back(Event::GraphicsChanged(graphics));
                            }
                        } else if let Some(sets) = self.deferred_caps.take()
                            && self.start_pipeline(&sets, transport)?
                        {
                            events.push_back(Event::GraphicsChanged(self.info.graphics));
                        }
                        events.push_back(Event::Resized(self.info.desktop_size));
                    }
                }
                ClientShareControlPdu::Flow => {}
                // Input that raced the deactivation has no target any more.
                ClientShareControlPdu::Data { .. } => {}
            }
            return Ok(None);
        }
        let (header, body) = match pdu {
            ClientShareControlPdu::Data { header, body } => (header, body),
            ClientShareControlPdu::Flow => return Ok(None),
            _ => {
                return Err(Error::UnexpectedPdu(
                    "share control pdu not valid in an active session",
                ));
            }
        };
        match ClientDataPdu::decode(header.pdu_type2, body)? {
            ClientDataPdu::Input(raw) => {
                self.input.clear();
                for event in raw {
                    event.to_input_events(&mut self.input);
                }
                events.extend(self.input.drain(..).map(Event::Input));
            }
            ClientDataPdu::SuppressOutput {
                allow_display_updates,
                ..
            } => {
                if allow_display_updates {
                    // What the client shows after resuming is not ours to know.
                    self.framebuffer.invalidate();
                }
                events.push_back(Event::SuppressOutput {
                    allow_display_updates,
                });
            }
            ClientDataPdu::RefreshRect(areas) => {
                let areas = areas
                    .iter()
                    .map(|area| Rectangle {
                        left: area.left,
                        top: area.top,
                        right: area.right.saturating_add(1),
                        bottom: area.bottom.saturating_add(1),
                    })
                    .collect();
                // The client lost these pixels: the resend must not be
                // filtered out as unchanged.
                self.framebuffer.invalidate();
                events.push_back(Event::RefreshRect(areas));
            }
            ClientDataPdu::FrameAcknowledge { frame_id } => {
                if let Some(surface) = &mut self.surface
                    && surface.acknowledge(frame_id)
                {
                    surface.flush(&self.framebuffer.image(), transport)?;
                }
            }
            ClientDataPdu::ShutdownRequest => {
                debug!("Client requested shutdown");
                self.send_disconnect(transport)?;
                return Ok(Some(CloseReason::ClientRequested));
            }
            // Repeats of finalization PDUs, persistent keys and frame acks
            // carry nothing we act on.
            other => trace!(pdu = ?other, "Ignoring data pdu"),
        }
        Ok(None)
    }

    /// Changes the desktop size by deactivation-reactivation (MS-RDPBCGR
    /// 1.3.1.3): Deactivate All, a Demand Active with the new size, and the
    /// capability exchange and finalization again. Channels stay open.
    /// Graphics wait until `Event::Resized`.
    pub fn resize(
        &mut self,
        size: DesktopSize,
        transport: &mut Transport,
    ) -> Result<(), CommandError> {
        if self.reactivation.is_some() {
            return Err(CommandError::Reactivating);
        }
        let size = size.clamped();
        let mut pdu = Vec::new();
        share::encode_deactivate_all(&mut pdu, io_channel::SERVER_CHANNEL_ID, self.share_id);
        io_channel::send_data(transport, &self.channel_ids, &pdu)?;
        let capabilities = ServerCapabilities {
            desktop_width: size.width,
            desktop_height: size.height,
            color_depth: self.info.color_depth,
            max_request_size: self.max_request_size,
            io_channel: self.channel_ids.io,
            surface_codecs: self.surface_offer.clone(),
            max_unacknowledged_frames: self.max_unacknowledged_frames,
        };
        pdu.clear();
        share::encode_demand_active(
            &mut pdu,
            io_channel::SERVER_CHANNEL_ID,
            self.share_id,
            &capabilities,
        );
        io_channel::send_data(transport, &self.channel_ids, &pdu)?;
        self.info.desktop_size = size;
        self.framebuffer = Framebuffer::new(usize::from(size.width), usize::from(size.height));
        let (width, height) = (usize::from(size.width), usize::from(size.height));
        // A reactivation starts every codec stream over, on both sides.
        #[cfg(feature = "qoiz")]
        {
            self.qoiz_stream = None;
        }
        if SurfaceOutput::fits(width, height) {
            if let Some(surface) = &mut self.surface {
                surface.resize(width, height)?;
            }
        } else {
            // RemoteFX stops at 4096 pixels; bitmaps carry larger desktops.
            self.surface = None;
            self.info.graphics = Graphics::Bitmaps;
        }
        self.reactivation = Some(Reactivation::default());
        Ok(())
    }

    pub fn is_reactivating(&self) -> bool {
        self.reactivation.is_some()
    }

    /// Whether changed tiles wait for a frame acknowledgement, which would
    /// then encode and send them.
    pub fn holds_frame_back(&self) -> bool {
        self.surface
            .as_ref()
            .is_some_and(|surface| surface.has_due_tiles())
    }

    /// Cuts the update into tiles, encodes each (planar or uncompressed) and
    /// sends them as bitmap updates that fit the client's limits.
    /// With `damage` (desktop coordinates, exclusive bounds) the pixels are
    /// not compared: exactly the tiles the rectangles touch are sent.
    pub fn send_bitmap(
        &mut self,
        update: &BitmapUpdate<'_>,
        damage: Option<&[Rectangle]>,
        transport: &mut Transport,
        wire: &mut Vec<u8>,
    ) -> Result<(), CommandError> {
        // INVARIANT: the engine validated `update` before recording it.
        let desktop = self.info.desktop_size;
        // Clip to the desktop: pixels outside it have nowhere to go.
        let right = (u32::from(update.x) + u32::from(update.width)).min(u32::from(desktop.width));
        let bottom =
            (u32::from(update.y) + u32::from(update.height)).min(u32::from(desktop.height));
        if u32::from(update.x) >= right || u32::from(update.y) >= bottom {
            return Ok(());
        }
        let tile = self.tile_size();
        let (left, top) = (usize::from(update.x), usize::from(update.y));
        let (width, height) = (right as usize - left, bottom as usize - top);
        let source = rdpserve_codecs::SourceImage {
            width,
            height,
            stride: update.stride,
            format: update.format,
            data: update.data,
        };
        self.changed.clear();
        let area = TileRect {
            x: left,
            y: top,
            width,
            height,
        };
        // With damage, the shadow only takes the damaged tiles; a copy
        // must not draw anywhere else, so the damage must span the area.
        let searchable = damage.is_none_or(|damage| {
            damage.iter().any(|rect| {
                usize::from(rect.left) <= left
                    && usize::from(rect.top) <= top
                    && usize::from(rect.right) >= left + width
                    && usize::from(rect.bottom) >= top + height
            })
        });
        let scroll = searchable
            .then(|| self.find_scroll(&source, area))
            .flatten();
        let result = match damage {
            None => self
                .framebuffer
                .update(&source, (left, top), tile, &mut self.changed),
            Some(damage) => {
                // Damage clipped to the update; what lies outside has no pixels.
                self.damage.clear();
                self.damage.extend(damage.iter().filter_map(|area| {
                    let (x0, y0) = (
                        usize::from(area.left).max(left),
                        usize::from(area.top).max(top),
                    );
                    let x1 = usize::from(area.right).min(left + width);
                    let y1 = usize::from(area.bottom).min(top + height);
                    (x0 < x1 && y0 < y1).then(|| TileRect {
                        x: x0,
                        y: y0,
                        width: x1 - x0,
                        height: y1 - y0,
                    })
                }));
                self.framebuffer.update_damaged(
                    &source,
                    (left, top),
                    tile,
                    &self.damage,
                    &mut self.changed,
                )
            }
        };
        result.map_err(|_| {
            Error::Encode(EncodeError {
                codec: "damage tracker",
                reason: "update outside its data",
            })
        })?;
        if let (Some(scroll), Some(gfx)) = (scroll, &mut self.gfx) {
            gfx.scroll(&scroll, &mut self.changed);
        }
        Ok(self.send_changed(transport, wire)?)
    }

    /// A vertical scroll in an update of `area`, for the pipeline to send as
    /// a copy of the client's surface. Only B, G, R, X updates are searched
    /// (what the shadow holds, compared where they lie), and only once the
    /// client has been sent a picture to copy from.
    fn find_scroll(
        &self,
        update: &rdpserve_codecs::SourceImage<'_>,
        area: TileRect,
    ) -> Option<egfx_output::Scroll> {
        let gfx = self.gfx.as_ref().filter(|_| self.scroll_detection)?;
        if !update.format.is_native() || !self.framebuffer.is_initialised() {
            return None;
        }
        let new = rdpserve_codecs::Image {
            width: update.width,
            height: update.height,
            stride: update.stride,
            data: update.data,
        };
        gfx.find_scroll(&self.framebuffer.image(), &new, area)
    }

    /// Tiles on a grid aligned to the desktop, so repeated updates of the
    /// same area compare like with like: 64x64 for surface codecs, the
    /// bitmap path's own size otherwise.
    fn tile_size(&self) -> usize {
        match (&self.gfx, &self.surface) {
            (Some(_), _) => egfx_output::TILE,
            (None, Some(_)) => surface_output::TILE,
            (None, None) => self.bitmaps.tile_size(),
        }
    }

    /// Encodes the tiles in `self.changed` from the shadow, which holds
    /// their latest pixels, and sends them on the session's graphics path.
    fn send_changed(&mut self, transport: &mut Transport, wire: &mut Vec<u8>) -> Result<(), Error> {
        if let Some(gfx) = &mut self.gfx {
            gfx.mark(&self.changed);
            return self.flush_pipeline(transport);
        }
        let source = self.framebuffer.image();
        match &mut self.surface {
            Some(surface) => {
                surface.mark(&self.changed);
                surface.flush(&source, transport)
            }
            None => self.bitmaps.send(&source, &self.changed, transport, wire),
        }
    }

    /// Sends the pipeline's due tiles as a frame, if the client may take
    /// one now (and the shadow holds a picture).
    fn flush_pipeline(&mut self, transport: &mut Transport) -> Result<(), Error> {
        if !self.framebuffer.is_initialised() {
            return Ok(());
        }
        if let Some(gfx) = &mut self.gfx {
            gfx.flush(&self.framebuffer.image(), &mut self.gfx_messages)?;
        }
        self.send_gfx_messages(transport)
    }

    fn send_gfx_messages(&mut self, transport: &mut Transport) -> Result<(), Error> {
        let messages = std::mem::take(&mut self.gfx_messages);
        let sent = self.channels.send_graphics(&messages, transport);
        self.gfx_messages = messages;
        self.gfx_messages.clear();
        match sent {
            Ok(()) => Ok(()),
            // The channel closed under the pipeline: `handle_graphics`
            // returns the session to its other path.
            Err(CommandError::NoChannel(_)) => Ok(()),
            Err(CommandError::Connection(error)) => Err(error),
            Err(other) => Err(Error::Encode(EncodeError {
                codec: "graphics pipeline",
                reason: if matches!(other, CommandError::NotActive) {
                    "session not active"
                } else {
                    "channel refused the message"
                },
            })),
        }
    }

    /// Acts on what the client sent on the pipeline's channel: its
    /// capabilities start the pipeline, acknowledgements release frames.
    fn handle_graphics(
        &mut self,
        transport: &mut Transport,
        events: &mut VecDeque<Event>,
    ) -> Result<(), Error> {
        let (pdus, lost) = self.channels.take_graphics();
        for pdu in pdus {
            match pdu {
                ClientPdu::CapsAdvertise(sets) => {
                    if self.start_pipeline(&sets, transport)? {
                        events.push_back(Event::GraphicsChanged(self.info.graphics));
                    }
                }
                ClientPdu::FrameAcknowledge {
                    queue_depth,
                    frame_id,
                    ..
                } => {
                    if let Some(gfx) = &mut self.gfx
                        && gfx.acknowledge(queue_depth, frame_id)
                    {
                        self.flush_pipeline(transport)?;
                    }
                }
                ClientPdu::QoeFrameAcknowledge { frame_id, .. } => {
                    trace!(frame_id, "Graphics Pipeline QoE acknowledgement");
                }
                ClientPdu::CacheImportOffer(entries) => {
                    if let Some(gfx) = &mut self.gfx {
                        trace!(entries = entries.len(), "Refusing a cache import offer");
                        gfx.refuse_cache_import(&mut self.gfx_messages)?;
                        self.send_gfx_messages(transport)?;
                    }
                }
            }
        }
        if lost && self.gfx.take().is_some() {
            // Back to the path the session had, with everything repainted.
            debug!(
                "Graphics Pipeline channel gone, back to {:?}",
                self.legacy_graphics
            );
            self.info.graphics = self.legacy_graphics;
            self.framebuffer.invalidate();
            events.push_back(Event::GraphicsChanged(self.info.graphics));
        }
        Ok(())
    }

    /// The application's own H.264 picture, as one pipeline frame.
    pub fn send_avc420(
        &mut self,
        frame: &crate::api::update::Avc420Frame<'_>,
        transport: &mut Transport,
    ) -> Result<(), CommandError> {
        let Some(gfx) = &mut self.gfx else {
            return Err(CommandError::CodecNotTaken);
        };
        gfx.send_avc420(frame, &mut self.gfx_messages)?;
        // The client now shows pixels the shadow does not hold: the next
        // bitmap update sends every tile it covers.
        self.framebuffer.invalidate();
        self.send_gfx_messages(transport)?;
        Ok(())
    }

    /// Starts the pipeline on the client's Caps Advertise; returns whether
    /// it started.
    fn start_pipeline(
        &mut self,
        sets: &[crate::graphics::egfx::pdu::CapabilitySet],
        transport: &mut Transport,
    ) -> Result<bool, Error> {
        let Some(codec) = self.gfx_codec else {
            return Ok(false);
        };
        if self.gfx.is_some() {
            debug!("Ignoring a Caps Advertise while the pipeline runs");
            return Ok(false);
        }
        if self.reactivation.is_some() {
            // The surface would be made at the size being left.
            self.deferred_caps = Some(sets.to_vec());
            return Ok(false);
        }
        let Some(confirmed) = Confirmed::choose(sets) else {
            debug!("No Graphics Pipeline version in common");
            return Ok(false);
        };
        let desktop = self.info.desktop_size;
        let size = (usize::from(desktop.width), usize::from(desktop.height));
        debug!(
            version = format_args!("{:#010x}", confirmed.version()),
            flags = confirmed.flags(),
            ?codec,
            "Graphics Pipeline started"
        );
        let gfx = GfxOutput::start(
            confirmed,
            codec,
            size,
            self.max_unacknowledged_frames as usize,
            &mut self.gfx_messages,
        )?;
        self.legacy_graphics = self.info.graphics;
        self.info.graphics = Graphics::Pipeline(gfx.codec());
        self.gfx = Some(gfx);
        self.send_gfx_messages(transport)?;
        self.flush_pipeline(transport)?;
        Ok(true)
    }

    /// Sends a new pointer shape and shows it; returns its cache slot, for
    /// `use_cached_pointer`.
    pub fn send_pointer(
        &mut self,
        image: &PointerImage<'_>,
        transport: &mut Transport,
    ) -> Result<u16, CommandError> {
        // INVARIANT: the engine validated `image` before recording it.
        let index = self.pointer_slot(image.cache_index)?;
        self.payload.clear();
        let code =
            pointer::encode_new_pointer(&mut self.payload, index, image, self.max_pointer_side);
        self.send_update(code, transport)?;
        Ok(index)
    }

    /// Sends a colour (AND/XOR mask) pointer and shows it; returns its
    /// cache slot.
    pub fn send_color_pointer(
        &mut self,
        pointer: &ColorPointer<'_>,
        transport: &mut Transport,
    ) -> Result<u16, CommandError> {
        // INVARIANT: the engine validated `pointer`.
        let index = self.pointer_slot(pointer.cache_index)?;
        self.payload.clear();
        pointer::encode_color_pointer(&mut self.payload, index, pointer);
        self.send_update(UpdateCode::ColorPointer, transport)?;
        Ok(index)
    }

    /// The cache slot for a new pointer: the application's choice, if it
    /// is one the client has, or else the next in turn.
    fn pointer_slot(&mut self, chosen: Option<u16>) -> Result<u16, CommandError> {
        match chosen {
            Some(index) if index >= self.pointer_cache_size => {
                Err(CommandError::PointerCacheIndex {
                    index,
                    cache_size: self.pointer_cache_size,
                })
            }
            Some(index) => Ok(index),
            None => {
                let index = self.next_pointer_slot;
                self.next_pointer_slot = (index + 1) % self.pointer_cache_size;
                Ok(index)
            }
        }
    }

    /// Pointer commands without an image.
    pub fn send_pointer_command(
        &mut self,
        command: PointerCommand,
        transport: &mut Transport,
    ) -> Result<(), CommandError> {
        self.payload.clear();
        let code = match command {
            PointerCommand::Position { x, y } => {
                pointer::encode_position(&mut self.payload, x, y);
                UpdateCode::PointerPosition
            }
            PointerCommand::Hidden => UpdateCode::PointerHidden,
            PointerCommand::Default => UpdateCode::PointerDefault,
            PointerCommand::Cached(index) => {
                if index >= self.pointer_cache_size {
                    return Err(CommandError::PointerCacheIndex {
                        index,
                        cache_size: self.pointer_cache_size,
                    });
                }
                pointer::encode_cached(&mut self.payload, index);
                UpdateCode::CachedPointer
            }
        };
        Ok(self.send_update(code, transport)?)
    }

    fn send_update(&mut self, code: UpdateCode, transport: &mut Transport) -> Result<(), Error> {
        let mut wire = Vec::with_capacity(self.payload.len() + 16);
        fastpath::encode_update(&mut wire, code, &self.payload, MAX_FAST_PATH_PDU);
        transport.send(&wire)
    }

    /// Tells the client why we end the session, then disconnects it.
    /// Sends a share control PDU on the I/O channel.
    pub fn send_io_data(&mut self, body: &[u8], transport: &mut Transport) -> Result<(), Error> {
        io_channel::send_data(transport, &self.channel_ids, body)
    }

    pub fn send_goodbye(
        &mut self,
        error_info: u32,
        transport: &mut Transport,
    ) -> Result<(), Error> {
        if self.supports_error_info {
            let mut body = Vec::new();
            data_pdus::encode_set_error_info(&mut body, error_info);
            let mut pdu = Vec::new();
            share::encode_data_pdu(
                &mut pdu,
                io_channel::SERVER_CHANNEL_ID,
                self.share_id,
                data_pdus::PDUTYPE2_SET_ERROR_INFO_PDU,
                &body,
            );
            io_channel::send_data(transport, &self.channel_ids, &pdu)?;
        }
        self.send_disconnect(transport)
    }

    fn send_disconnect(&mut self, transport: &mut Transport) -> Result<(), Error> {
        io_channel::send_disconnect(transport)
    }
}
