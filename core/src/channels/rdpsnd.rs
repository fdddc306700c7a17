//! Audio output, server side
//! ([MS-RDPEA](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpea/bea2d5cf-e3b9-4419-92e5-0e074ff9bc5b)):
//! format and version exchange, training, quality mode, waves and their
//! confirmations and volume.
//!
//! [`SoundServer`] is a pure state machine. It sees whole reassembled channel
//! messages (the static channel "rdpsnd" chunking, or the dynamic channel
//! AUDIO_PLAYBACK_DVC framing, is done by the caller; the PDUs are the same on
//! both) and writes whole messages to send into a caller-owned queue.
//!
//! The initialization sequence (MS-RDPEA 1.3.2.1), as this server runs it:
//!
//! ```text
//! server                                   client
//!   start()  -- Server Audio Formats ------>
//!            <----- Client Audio Formats --  receive(): common formats found,
//!            -- Training ------------------>           Training sent
//!            <----- Quality Mode (v >= 6) --  receive(): stored
//!            <----- Training Confirm -------  receive(): SoundEvent::Ready
//!   send_samples() -- Wave2 (v >= 8) or WaveInfo + Wave -->
//!            <----- Wave Confirm -----------  receive(): SoundEvent::WaveConfirmed
//! ```

use std::collections::VecDeque;

use bytes::BufMut;
use tracing::{debug, trace, warn};

use crate::api::sound::{AUDIO_FORMAT_FIXED_SIZE, AudioFormat, SoundError, SoundEvent};
use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;

/// The static virtual channel this module speaks on.
pub const CHANNEL_NAME: &str = "rdpsnd";

/// The protocol version this server announces
/// ([3.1.1.1](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpea/0b0ea8ea-b3f1-49f3-b548-524de455b15b)):
/// 8 is the first version with the Wave2 PDU.
pub const SERVER_VERSION: u16 = 8;

/// The most waves that can await confirmation at once: block numbers are
/// 8 bits, so more would make two outstanding waves share a number.
pub const MAX_IN_FLIGHT: usize = 255;

// msgType values of the RDPSND PDU Header
// ([2.2.1](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpea/863d154b-dbe0-4781-979d-fa48daed721e)).
const SNDC_WAVE: u8 = 0x02;
const SNDC_SETVOLUME: u8 = 0x03;
const SNDC_WAVECONFIRM: u8 = 0x05;
const SNDC_TRAINING: u8 = 0x06;
const SNDC_FORMATS: u8 = 0x07;
const SNDC_QUALITYMODE: u8 = 0x0C;
const SNDC_WAVE2: u8 = 0x0D;

/// msgType, bPad, BodySize.
const HEADER_SIZE: usize = 4;
/// BodySize is 16 bits.
const MAX_BODY_SIZE: usize = u16::MAX as usize;
/// The formats PDU body before sndFormats: dwFlags, dwVolume, dwPitch,
/// wDGramPort, wNumberOfFormats, cLastBlockConfirmed, wVersion, bPad.
const AUDIO_FORMATS_FIXED_SIZE: usize = 4 + 4 + 4 + 2 + 2 + 1 + 2 + 1;
/// WaveInfo body: wTimeStamp, wFormatNo, cBlockNo, bPad (3), Data (4).
const WAVE_INFO_BODY_SIZE: usize = 2 + 2 + 1 + 3 + 4;
/// The audio bytes that ride in the WaveInfo PDU rather than the Wave PDU.
const WAVE_INFO_DATA_SIZE: usize = 4;
/// Wave2 body before data: wTimeStamp, wFormatNo, cBlockNo, bPad (3),
/// dwAudioTimeStamp.
const WAVE2_FIXED_SIZE: usize = 2 + 2 + 1 + 3 + 4;
/// The first client version that takes Wave2 PDUs (3.3.5.2.1.8).
const WAVE2_MIN_VERSION: u16 = 8;

/// Client capability flags (dwFlags of 2.2.2.2).
const TSSNDCAPS_ALIVE: u32 = 0x0000_0001;
const TSSNDCAPS_VOLUME: u32 = 0x0000_0002;

/// cLastBlockConfirmed we announce, so the first wave is block 0.
const INITIAL_LAST_BLOCK: u8 = 0xFF;

/// The Server Audio Formats and Version PDU
/// ([2.2.2.1](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpea/53e45199-5629-4352-8617-3dd0347964ee))
/// and the Client Audio Formats and Version PDU
/// ([2.2.2.2](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpea/d58d4d57-cb36-453a-866f-86beacc6d79b)):
/// one layout, SNDC_FORMATS both ways. `flags`, `volume`, `pitch` and
/// `dgram_port` are meaningful only from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFormatsPdu {
    /// dwFlags: TSSNDCAPS_ALIVE (0x1), TSSNDCAPS_VOLUME (0x2), TSSNDCAPS_PITCH (0x4).
    pub flags: u32,
    /// dwVolume: the client's initial volume, left in the low word.
    pub volume: u32,
    pub pitch: u32,
    /// wDGramPort: a UDP port for audio, or 0. This server always uses the channel.
    pub dgram_port: u16,
    /// cLastBlockConfirmed: the first wave's cBlockNo is one more.
    pub last_block_confirmed: u8,
    /// wVersion.
    pub version: u16,
    pub formats: Vec<AudioFormat>,
}

impl AudioFormatsPdu {
    /// Encoded size, header included.
    pub fn size(&self) -> usize {
        HEADER_SIZE
            + AUDIO_FORMATS_FIXED_SIZE
            + self.formats.iter().map(AudioFormat::size).sum::<usize>()
    }

    /// Writes the PDU; fails when it does not fit a 16-bit BodySize.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), SoundError> {
        let body_size = self.size() - HEADER_SIZE;
        if body_size > MAX_BODY_SIZE {
            return Err(SoundError::TooLarge {
                size: body_size,
                limit: MAX_BODY_SIZE,
            });
        }
        // INVARIANT: every format is at least 18 bytes, so a body within
        // 65535 bytes holds fewer than 65536 formats and no `extra` over 65535.
        encode_header(out, SNDC_FORMATS, body_size);
        out.put_u32_le(self.flags);
        out.put_u32_le(self.volume);
        out.put_u32_le(self.pitch);
        out.put_u16_le(self.dgram_port);
        out.put_u16_le(self.formats.len() as u16);
        out.put_u8(self.last_block_confirmed);
        out.put_u16_le(self.version);
        out.put_u8(0); // bPad
        for format in &self.formats {
            format.encode(out);
        }
        Ok(())
    }

    /// Decodes the body that follows the RDPSND header.
    fn decode_body(body: &[u8]) -> Result<Self, DecodeError> {
        let mut cursor = ReadCursor::new(body, "rdpsnd audio formats");
        let flags = cursor.read_u32_le()?;
        let volume = cursor.read_u32_le()?;
        let pitch = cursor.read_u32_le()?;
        let dgram_port = cursor.read_u16_le()?;
        let count = usize::from(cursor.read_u16_le()?);
        let last_block_confirmed = cursor.read_u8()?;
        let version = cursor.read_u16_le()?;
        cursor.skip(1)?; // bPad
        // The count is from the wire: allocate for what the bytes can hold.
        let mut formats =
            Vec::with_capacity(count.min(cursor.remaining() / AUDIO_FORMAT_FIXED_SIZE));
        for _ in 0..count {
            formats.push(AudioFormat::decode(&mut cursor)?);
        }
        Ok(Self {
            flags,
            volume,
            pitch,
            dgram_port,
            last_block_confirmed,
            version,
            formats,
        })
    }
}

/// The client's requested quality
/// ([Quality Mode PDU, 2.2.2.3](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpea/70d863e0-24d6-4d21-b91d-8a3226d18e70)),
/// a hint for which common format the application picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QualityMode {
    /// DYNAMIC_QUALITY (0): adapt to the network; the default when none is sent.
    Dynamic,
    /// MEDIUM_QUALITY (1).
    Medium,
    /// HIGH_QUALITY (2).
    High,
    /// A value the spec does not define, kept as sent.
    Other(u16),
}

impl From<u16> for QualityMode {
    fn from(value: u16) -> Self {
        match value {
            0 => Self::Dynamic,
            1 => Self::Medium,
            2 => Self::High,
            other => Self::Other(other),
        }
    }
}

/// A PDU from the client, decoded from one whole channel message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientSoundPdu {
    /// Client Audio Formats and Version PDU (2.2.2.2).
    AudioFormats(AudioFormatsPdu),
    /// Quality Mode PDU (2.2.2.3).
    QualityMode(QualityMode),
    /// Training Confirm PDU
    /// ([2.2.3.2](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpea/922a0b02-d8d7-4146-a79a-167de880ff36)):
    /// echoes the Training PDU's fields.
    TrainingConfirm { timestamp: u16, pack_size: u16 },
    /// Wave Confirm PDU
    /// ([2.2.3.8](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpea/6384540e-0851-4a89-bcb5-794918b04d3c)):
    /// the wave's wTimeStamp plus the client's delay, and its block number.
    WaveConfirm { timestamp: u16, block: u8 },
}

impl ClientSoundPdu {
    /// Decodes one message. Bytes after BodySize are ignored; a BodySize
    /// beyond the message is an error.
    pub fn decode(message: &[u8]) -> Result<Self, DecodeError> {
        let mut cursor = ReadCursor::new(message, "rdpsnd pdu");
        let msg_type = cursor.read_u8()?;
        cursor.skip(1)?; // bPad
        let body_size = usize::from(cursor.read_u16_le()?);
        let body = cursor.read_slice(body_size)?;
        Ok(match msg_type {
            SNDC_FORMATS => Self::AudioFormats(AudioFormatsPdu::decode_body(body)?),
            SNDC_QUALITYMODE => {
                let mut body = ReadCursor::new(body, "rdpsnd quality mode");
                let mode = body.read_u16_le()?;
                body.skip(2)?; // Reserved
                Self::QualityMode(QualityMode::from(mode))
            }
            SNDC_TRAINING => {
                let mut body = ReadCursor::new(body, "rdpsnd training confirm");
                Self::TrainingConfirm {
                    timestamp: body.read_u16_le()?,
                    pack_size: body.read_u16_le()?,
                }
            }
            SNDC_WAVECONFIRM => {
                let mut body = ReadCursor::new(body, "rdpsnd wave confirm");
                let timestamp = body.read_u16_le()?;
                let block = body.read_u8()?;
                body.skip(1)?; // bPad
                Self::WaveConfirm { timestamp, block }
            }
            // Everything else, including the server-to-client types, is not
            // something a client sends.
            other => {
                return Err(DecodeError::Unexpected {
                    context: "rdpsnd pdu",
                    what: "msgType",
                    value: u32::from(other),
                });
            }
        })
    }

    fn msg_type(&self) -> u8 {
        match self {
            Self::AudioFormats(_) => SNDC_FORMATS,
            Self::QualityMode(_) => SNDC_QUALITYMODE,
            Self::TrainingConfirm { .. } => SNDC_TRAINING,
            Self::WaveConfirm { .. } => SNDC_WAVECONFIRM,
        }
    }
}

/// INVARIANT: callers pass `body_size <= MAX_BODY_SIZE`.
fn encode_header(out: &mut Vec<u8>, msg_type: u8, body_size: usize) {
    out.put_u8(msg_type);
    out.put_u8(0); // bPad
    out.put_u16_le(body_size as u16);
}

/// Training PDU (2.2.3.1) without padding data, so wPackSize is 0.
pub fn encode_training(out: &mut Vec<u8>, timestamp: u16) {
    encode_header(out, SNDC_TRAINING, 4);
    out.put_u16_le(timestamp);
    out.put_u16_le(0); // wPackSize: no data follows
}

/// Volume PDU (2.2.4.1): 0xFFFF is full volume, 0 silence.
pub fn encode_volume(out: &mut Vec<u8>, left: u16, right: u16) {
    encode_header(out, SNDC_SETVOLUME, 4);
    out.put_u32_le(u32::from(left) | (u32::from(right) << 16));
}

/// Wave2 PDU (2.2.3.10).
/// INVARIANT: `data.len() <= MAX_BODY_SIZE - WAVE2_FIXED_SIZE` (checked in `send_samples`).
fn encode_wave2(
    out: &mut Vec<u8>,
    timestamp: u16,
    format_no: u16,
    block: u8,
    audio_timestamp: u32,
    data: &[u8],
) {
    encode_header(out, SNDC_WAVE2, WAVE2_FIXED_SIZE + data.len());
    out.put_u16_le(timestamp);
    out.put_u16_le(format_no);
    out.put_u8(block);
    out.put_bytes(0, 3); // bPad
    out.put_u32_le(audio_timestamp);
    out.put_slice(data);
}

/// WaveInfo PDU (2.2.3.3) into `info` and Wave PDU
/// ([2.2.3.4](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpea/81841793-f5d3-4305-aa22-ddcbd81a96b5))
/// into `wave`: the first four audio bytes ride in WaveInfo, the Wave PDU has
/// no header and starts with four zero bytes the client replaces with them.
/// BodySize counts the WaveInfo body plus the Wave PDU's data.
/// INVARIANT: `WAVE_INFO_DATA_SIZE <= data.len() <= MAX_BODY_SIZE - WAVE_INFO_BODY_SIZE + WAVE_INFO_DATA_SIZE`
/// (checked in `send_samples`).
fn encode_wave_info(
    info: &mut Vec<u8>,
    wave: &mut Vec<u8>,
    timestamp: u16,
    format_no: u16,
    block: u8,
    data: &[u8],
) {
    let (head, rest) = data.split_at(WAVE_INFO_DATA_SIZE);
    encode_header(info, SNDC_WAVE, WAVE_INFO_BODY_SIZE + rest.len());
    info.put_u16_le(timestamp);
    info.put_u16_le(format_no);
    info.put_u8(block);
    info.put_bytes(0, 3); // bPad
    info.put_slice(head);
    wave.put_u32_le(0); // bPad
    wave.put_slice(rest);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `start` not called yet.
    Created,
    /// Server Audio Formats sent.
    AwaitingFormats,
    /// Client formats accepted, Training sent at this 16-bit time.
    Training {
        sent_at: u16,
    },
    Ready,
    /// The client answered but cannot play anything we offer.
    Unplayable,
}

/// A format both sides support and its index in the client's list, which is
/// what wFormatNo refers to (3.3.5.2.1.8).
#[derive(Debug, Clone)]
struct CommonFormat {
    format: AudioFormat,
    client_index: u16,
}

/// The server end of one audio output channel.
///
/// Methods sort into: getters (`is_ready`, `in_flight`, `selected_format`,
/// `quality_mode`); input (`receive`, one whole client message); commands
/// (`start`, `send_samples`, `select_format`, `set_volume`). Every
/// call that may produce messages takes `out` and appends whole messages to
/// it, in order; `receive` also appends [`SoundEvent`]s to `events`. Send
/// `out` on the channel after each call.
///
/// Policies:
/// - **Back-pressure**: at most `max_in_flight` waves await a Wave Confirm.
///   When full, [`send_samples`](Self::send_samples) returns
///   [`SoundError::QueueFull`] and queues nothing: the caller drops the audio
///   or waits for [`SoundEvent::WaveConfirmed`]. The server never piles up
///   audio without bound.
/// - **A client that cannot play** (no format in common, or no
///   TSSNDCAPS_ALIVE flag) gets no Training PDU; the application sees
///   `Ready` with empty `formats`, `is_ready()` stays false and
///   `send_samples` returns [`SoundError::NoCommonFormat`].
/// - **Bad or out-of-order client messages** are a [`DecodeError`]: an
///   unknown or server-only msgType, any message before `start`, formats
///   twice, Training Confirm without a Training, Quality Mode before the
///   formats, Wave Confirm before ready or for a block not awaiting one.
///   The state is unchanged by a refused message.
/// - Training Confirm values that do not echo our Training PDU are logged,
///   not refused: they only feed a diagnostic.
#[derive(Debug)]
pub struct SoundServer {
    server_formats: Vec<AudioFormat>,
    max_in_flight: usize,
    phase: Phase,
    client_version: u16,
    client_flags: u32,
    common: Vec<CommonFormat>,
    selected: usize,
    quality_mode: Option<QualityMode>,
    next_block: u8,
    /// Block numbers sent and not yet confirmed, oldest first.
    in_flight: VecDeque<u8>,
    /// The last blocks confirmed (at most `max_in_flight`), to tell a
    /// repeated confirm from one for a block never sent.
    recently_confirmed: VecDeque<u8>,
}

impl SoundServer {
    /// `server_formats` are offered in order. Formats that do not fit the
    /// Server Audio Formats PDU (a 16-bit BodySize) are dropped with a
    /// warning. `max_in_flight` is clamped to `1..=MAX_IN_FLIGHT`.
    pub fn new(server_formats: Vec<AudioFormat>, max_in_flight: usize) -> Self {
        let mut size = AUDIO_FORMATS_FIXED_SIZE;
        let mut kept = Vec::with_capacity(server_formats.len());
        for format in server_formats {
            if size + format.size() > MAX_BODY_SIZE {
                warn!(
                    format_tag = format.format_tag,
                    "Audio format dropped: the formats PDU is full"
                );
                continue;
            }
            size += format.size();
            kept.push(format);
        }
        Self {
            server_formats: kept,
            max_in_flight: max_in_flight.clamp(1, MAX_IN_FLIGHT),
            phase: Phase::Created,
            client_version: 0,
            client_flags: 0,
            common: Vec::new(),
            selected: 0,
            quality_mode: None,
            next_block: INITIAL_LAST_BLOCK.wrapping_add(1),
            in_flight: VecDeque::new(),
            recently_confirmed: VecDeque::new(),
        }
    }

    /// Sends the Server Audio Formats and Version PDU; call once the channel
    /// is joined. Later calls do nothing.
    pub fn start(&mut self, out: &mut Vec<Vec<u8>>) {
        if self.phase != Phase::Created {
            return;
        }
        let pdu = AudioFormatsPdu {
            flags: 0,
            volume: 0,
            pitch: 0,
            dgram_port: 0,
            last_block_confirmed: INITIAL_LAST_BLOCK,
            version: SERVER_VERSION,
            formats: self.server_formats.clone(),
        };
        let mut message = Vec::with_capacity(pdu.size());
        // INVARIANT: `new` kept only the formats that fit a 16-bit BodySize.
        if let Err(error) = pdu.encode(&mut message) {
            warn!(%error, "Server audio formats do not fit");
            return;
        }
        out.push(message);
        self.phase = Phase::AwaitingFormats;
    }

    /// One whole message from the client. `now_ms` is any millisecond clock;
    /// its low 16 bits stamp the Training PDU.
    pub fn receive(
        &mut self,
        message: &[u8],
        now_ms: u32,
        out: &mut Vec<Vec<u8>>,
        events: &mut Vec<SoundEvent>,
    ) -> Result<(), DecodeError> {
        let pdu = ClientSoundPdu::decode(message)?;
        let out_of_order = DecodeError::Unexpected {
            context: "rdpsnd",
            what: "msgType in this state",
            value: u32::from(pdu.msg_type()),
        };
        match (self.phase, pdu) {
            (Phase::AwaitingFormats, ClientSoundPdu::AudioFormats(formats)) => {
                self.accept_formats(formats, now_ms, out, events);
                Ok(())
            }
            (
                Phase::Training { .. } | Phase::Ready | Phase::Unplayable,
                ClientSoundPdu::QualityMode(mode),
            ) => {
                self.quality_mode = Some(mode);
                Ok(())
            }
            (
                Phase::Training { sent_at },
                ClientSoundPdu::TrainingConfirm {
                    timestamp,
                    pack_size,
                },
            ) => {
                if timestamp != sent_at || pack_size != 0 {
                    debug!(
                        timestamp,
                        pack_size, "Training Confirm does not echo the Training PDU"
                    );
                }
                debug!(
                    round_trip_ms = (now_ms as u16).wrapping_sub(sent_at),
                    "Audio training confirmed"
                );
                self.phase = Phase::Ready;
                events.push(SoundEvent::Ready {
                    formats: self.common.iter().map(|c| c.format.clone()).collect(),
                    version: self.client_version,
                });
                Ok(())
            }
            (Phase::Ready, ClientSoundPdu::WaveConfirm { timestamp, block }) => {
                let Some(position) = self.in_flight.iter().position(|&b| b == block) else {
                    if self.recently_confirmed.contains(&block) {
                        // FreeRDP 2 confirms every Wave2 twice (once when it
                        // queues the audio, once when it plays): a repeat
                        // frees nothing and is not an error.
                        trace!(block, "Repeated wave confirm");
                        return Ok(());
                    }
                    return Err(DecodeError::Unexpected {
                        context: "rdpsnd wave confirm",
                        what: "block number",
                        value: u32::from(block),
                    });
                };
                self.in_flight.remove(position);
                if self.recently_confirmed.len() >= self.max_in_flight {
                    self.recently_confirmed.pop_front();
                }
                self.recently_confirmed.push_back(block);
                events.push(SoundEvent::WaveConfirmed { timestamp, block });
                Ok(())
            }
            _ => Err(out_of_order),
        }
    }

    /// Processing a Client Audio Formats and Version PDU
    /// ([3.3.5.1.1.2](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpea/3ac32514-c369-4f60-af53-13335acee83a)).
    fn accept_formats(
        &mut self,
        pdu: AudioFormatsPdu,
        now_ms: u32,
        out: &mut Vec<Vec<u8>>,
        events: &mut Vec<SoundEvent>,
    ) {
        self.client_version = pdu.version;
        self.client_flags = pdu.flags;
        // The client's list is meant to be a subset of ours; anything else it
        // names cannot be encoded by us and is skipped, keeping its index.
        self.common = pdu
            .formats
            .into_iter()
            .enumerate()
            .filter(|(_, format)| self.server_formats.contains(format))
            .map(|(index, format)| CommonFormat {
                format,
                // INVARIANT: wNumberOfFormats is 16 bits, so indices fit.
                client_index: index as u16,
            })
            .collect();
        self.selected = 0;
        if self.common.is_empty() || pdu.flags & TSSNDCAPS_ALIVE == 0 {
            debug!(
                flags = pdu.flags,
                common = self.common.len(),
                "Client cannot play any offered audio format"
            );
            self.common.clear();
            self.phase = Phase::Unplayable;
            events.push(SoundEvent::Ready {
                formats: Vec::new(),
                version: self.client_version,
            });
            return;
        }
        let sent_at = now_ms as u16;
        let mut training = Vec::with_capacity(HEADER_SIZE + 4);
        encode_training(&mut training, sent_at);
        out.push(training);
        self.phase = Phase::Training { sent_at };
    }

    /// Queues one wave of samples in the selected format (the first common
    /// format unless [`select_format`](Self::select_format) picked another).
    /// The low 16 bits of `timestamp_ms` are the wave's wTimeStamp (echoed in
    /// its confirmation); Wave2 also carries all 32 bits as dwAudioTimeStamp.
    /// Sends a Wave2 PDU to clients of version 8 or later, else a WaveInfo
    /// and a Wave PDU (two messages).
    pub fn send_samples(
        &mut self,
        samples: &[u8],
        timestamp_ms: u32,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), SoundError> {
        let common = self.playable()?;
        let Some(selected) = common.get(self.selected) else {
            return Err(SoundError::NotReady);
        };
        if samples.is_empty() {
            return Err(SoundError::Empty);
        }
        let block_align = selected.format.block_align;
        if block_align != 0 && samples.len() % usize::from(block_align) != 0 {
            return Err(SoundError::Misaligned {
                size: samples.len(),
                block_align,
            });
        }
        let wave2 = self.client_version >= WAVE2_MIN_VERSION;
        let limit = if wave2 {
            MAX_BODY_SIZE - WAVE2_FIXED_SIZE
        } else {
            MAX_BODY_SIZE - WAVE_INFO_BODY_SIZE + WAVE_INFO_DATA_SIZE
        };
        if samples.len() > limit {
            return Err(SoundError::TooLarge {
                size: samples.len(),
                limit,
            });
        }
        if !wave2 && samples.len() < WAVE_INFO_DATA_SIZE {
            return Err(SoundError::TooShort {
                size: samples.len(),
                minimum: WAVE_INFO_DATA_SIZE,
            });
        }
        if self.in_flight.len() >= self.max_in_flight {
            return Err(SoundError::QueueFull {
                in_flight: self.in_flight.len(),
            });
        }
        let format_no = selected.client_index;
        let block = self.next_block;
        let timestamp = timestamp_ms as u16;
        if wave2 {
            let mut message = Vec::with_capacity(HEADER_SIZE + WAVE2_FIXED_SIZE + samples.len());
            encode_wave2(
                &mut message,
                timestamp,
                format_no,
                block,
                timestamp_ms,
                samples,
            );
            out.push(message);
        } else {
            let mut info = Vec::with_capacity(HEADER_SIZE + WAVE_INFO_BODY_SIZE);
            let mut wave = Vec::with_capacity(samples.len());
            encode_wave_info(&mut info, &mut wave, timestamp, format_no, block, samples);
            out.push(info);
            out.push(wave);
        }
        self.next_block = block.wrapping_add(1);
        self.in_flight.push_back(block);
        Ok(())
    }

    /// Picks the format for later waves: an index into the `formats` of
    /// [`SoundEvent::Ready`].
    pub fn select_format(&mut self, index: usize) -> Result<(), SoundError> {
        let count = self.playable()?.len();
        if index >= count {
            return Err(SoundError::FormatIndex { index, count });
        }
        self.selected = index;
        Ok(())
    }

    /// Sends a Volume PDU; the client must have announced TSSNDCAPS_VOLUME.
    pub fn set_volume(
        &mut self,
        left: u16,
        right: u16,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), SoundError> {
        self.playable()?;
        if self.client_flags & TSSNDCAPS_VOLUME == 0 {
            return Err(SoundError::VolumeNotSupported);
        }
        let mut message = Vec::with_capacity(HEADER_SIZE + 4);
        encode_volume(&mut message, left, right);
        out.push(message);
        Ok(())
    }

    #[cfg(test)]
    /// Whether waves can be sent: training confirmed with a common format.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    #[cfg(test)]
    /// Waves sent and not yet confirmed.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    #[cfg(test)]
    /// The format `send_samples` encodes for, once ready.
    pub fn selected_format(&self) -> Option<&AudioFormat> {
        if !self.is_ready() {
            return None;
        }
        self.common.get(self.selected).map(|c| &c.format)
    }

    #[cfg(test)]
    /// The quality the client asked for, if it sent a Quality Mode PDU
    /// ([3.3.5.1.1.3](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpea/ad465c76-f91c-4040-868b-d0f3ee77b1f7));
    /// treat `None` as [`QualityMode::Dynamic`].
    pub fn quality_mode(&self) -> Option<QualityMode> {
        self.quality_mode
    }

    /// The common formats when ready, else why not.
    fn playable(&self) -> Result<&[CommonFormat], SoundError> {
        match self.phase {
            Phase::Ready => Ok(&self.common),
            Phase::Unplayable => Err(SoundError::NoCommonFormat),
            Phase::Created | Phase::AwaitingFormats | Phase::Training { .. } => {
                Err(SoundError::NotReady)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MS-RDPEA 4.1.1 Server Audio Formats and Version PDU
    /// (https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpea/004d76f8-b88d-42b7-a0aa-1c77a39390bb).
    const SPEC_SERVER_FORMATS: [u8; 148] = [
        0x07, 0x2b, 0x90, 0x00, 0x08, 0xfb, 0x8b, 0x00, 0xe0, 0xf1, 0x09, 0x00, 0x70, 0x27, 0x1f,
        0x77, 0x00, 0x00, 0x05, 0x00, 0xff, 0x05, 0x00, 0x00, 0x01, 0x00, 0x02, 0x00, 0x22, 0x56,
        0x00, 0x00, 0x88, 0x58, 0x01, 0x00, 0x04, 0x00, 0x10, 0x00, 0x00, 0x00, 0x06, 0x00, 0x02,
        0x00, 0x22, 0x56, 0x00, 0x00, 0x44, 0xac, 0x00, 0x00, 0x02, 0x00, 0x08, 0x00, 0x00, 0x00,
        0x07, 0x00, 0x02, 0x00, 0x22, 0x56, 0x00, 0x00, 0x44, 0xac, 0x00, 0x00, 0x02, 0x00, 0x08,
        0x00, 0x00, 0x00, 0x02, 0x00, 0x02, 0x00, 0x22, 0x56, 0x00, 0x00, 0x27, 0x57, 0x00, 0x00,
        0x00, 0x04, 0x04, 0x00, 0x20, 0x00, 0xf4, 0x03, 0x07, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x02, 0x00, 0xff, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x40, 0x00, 0xf0, 0x00, 0x00, 0x00,
        0xcc, 0x01, 0x30, 0xff, 0x88, 0x01, 0x18, 0xff, 0x11, 0x00, 0x02, 0x00, 0x22, 0x56, 0x00,
        0x00, 0xb9, 0x56, 0x00, 0x00, 0x00, 0x04, 0x04, 0x00, 0x02, 0x00, 0xf9, 0x03,
    ];

    /// MS-RDPEA 4.1.4 Training Confirm PDU
    /// (https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpea/b6630619-933e-480c-a8c9-5d5fa5defc60).
    const SPEC_TRAINING_CONFIRM: [u8; 8] = [0x06, 0x55, 0x04, 0x00, 0xda, 0x89, 0x00, 0x04];

    /// MS-RDPEA 4.2.4 Wave2 PDU
    /// (https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpea/ecafc3ff-cf98-4864-bb1a-2996d8e3a3b3):
    /// the dump elides 0x50..0xe0, so these are its first and last bytes.
    const SPEC_WAVE2_HEAD: [u8; 0x50] = [
        0x0d, 0x00, 0x04, 0x01, 0x16, 0xa1, 0x03, 0x00, 0x02, 0x00, 0x00, 0x00, 0xc2, 0xb8, 0xac,
        0x0d, 0x27, 0x0c, 0x45, 0x83, 0x04, 0x84, 0x82, 0x20, 0xb0, 0x48, 0x6c, 0x18, 0x0d, 0x84,
        0x84, 0xc3, 0x41, 0x10, 0x50, 0x2a, 0x11, 0x19, 0x84, 0x42, 0xa1, 0x11, 0x81, 0x44, 0x40,
        0x21, 0x08, 0x08, 0x4b, 0xfe, 0xc7, 0x24, 0x3c, 0x1c, 0x9f, 0x07, 0x45, 0x9a, 0x07, 0x0e,
        0x13, 0x28, 0xa5, 0xba, 0x60, 0xc4, 0x03, 0xc5, 0xf8, 0x57, 0x1d, 0xd6, 0x5a, 0x2b, 0xf3,
        0x4f, 0x83, 0x9e, 0x5f, 0x04,
    ];
    const SPEC_WAVE2_TAIL: [u8; 0x28] = [
        0xb1, 0x51, 0x00, 0x09, 0x8b, 0x26, 0x04, 0xc1, 0x71, 0x41, 0x71, 0x34, 0xeb, 0xbc, 0x01,
        0x25, 0x45, 0xc6, 0xe0, 0x14, 0x2c, 0x0c, 0x20, 0xb1, 0x6b, 0x67, 0xd8, 0x10, 0x5c, 0x48,
        0xa8, 0x2e, 0xb0, 0xdc, 0x44, 0xba, 0x53, 0x00, 0x55, 0xc0,
    ];
    const SPEC_WAVE2_LEN: usize = 0x108;

    // The client examples of 4.1.2 (formats), 4.1.5 (quality mode) and 4.2.3
    // (wave confirm) were not reachable; these are built field by field from
    // the layouts of 2.2.2.2, 2.2.2.3 and 2.2.3.8.

    /// Client Audio Formats: ALIVE|VOLUME, volume 0xFFFF/0xFFFF, version 8,
    /// PCM 2ch 22050 Hz 16 bit (the spec example's first format) and a
    /// format the server does not offer.
    const CLIENT_FORMATS: [u8; 60] = [
        0x07, 0x00, 0x38, 0x00, // header: SNDC_FORMATS, BodySize 56
        0x03, 0x00, 0x00, 0x00, // dwFlags
        0xff, 0xff, 0xff, 0xff, // dwVolume
        0x00, 0x00, 0x00, 0x00, // dwPitch
        0x00, 0x00, // wDGramPort
        0x02, 0x00, // wNumberOfFormats
        0x00, // cLastBlockConfirmed
        0x08, 0x00, // wVersion
        0x00, // bPad
        0x01, 0x00, 0x02, 0x00, 0x22, 0x56, 0x00, 0x00, 0x88, 0x58, 0x01, 0x00, 0x04, 0x00, 0x10,
        0x00, 0x00, 0x00, // PCM 2ch 22050 16 bit
        0x01, 0x00, 0x01, 0x00, 0x40, 0x1f, 0x00, 0x00, 0x40, 0x1f, 0x00, 0x00, 0x01, 0x00, 0x08,
        0x00, 0x00, 0x00, // PCM 1ch 8000 8 bit
    ];
    const CLIENT_QUALITY_MODE: [u8; 8] = [0x0c, 0x00, 0x04, 0x00, 0x02, 0x00, 0x00, 0x00];
    const CLIENT_WAVE_CONFIRM: [u8; 8] = [0x05, 0x00, 0x04, 0x00, 0x34, 0x12, 0x07, 0x00];

    fn stereo_22k() -> AudioFormat {
        AudioFormat::pcm(2, 22050, 16)
    }

    fn client_formats(version: u16, flags: u32, formats: Vec<AudioFormat>) -> Vec<u8> {
        let mut message = Vec::new();
        AudioFormatsPdu {
            flags,
            volume: 0,
            pitch: 0,
            dgram_port: 0,
            last_block_confirmed: 0,
            version,
            formats,
        }
        .encode(&mut message)
        .unwrap();
        message
    }

    fn training_confirm(timestamp: u16) -> Vec<u8> {
        let mut message = vec![SNDC_TRAINING, 0, 4, 0];
        message.extend_from_slice(&timestamp.to_le_bytes());
        message.extend_from_slice(&[0, 0]);
        message
    }

    fn wave_confirm(timestamp: u16, block: u8) -> Vec<u8> {
        let mut message = vec![SNDC_WAVECONFIRM, 0, 4, 0];
        message.extend_from_slice(&timestamp.to_le_bytes());
        message.extend_from_slice(&[block, 0]);
        message
    }

    /// A server whose client (of `version`) is past training.
    fn ready_server(version: u16, max_in_flight: usize) -> SoundServer {
        let mut server = SoundServer::new(
            vec![stereo_22k(), AudioFormat::pcm(1, 8000, 8)],
            max_in_flight,
        );
        let (mut out, mut events) = (Vec::new(), Vec::new());
        server.start(&mut out);
        let formats = client_formats(
            version,
            TSSNDCAPS_ALIVE | TSSNDCAPS_VOLUME,
            vec![stereo_22k(), AudioFormat::pcm(1, 8000, 8)],
        );
        server
            .receive(&formats, 100, &mut out, &mut events)
            .unwrap();
        server
            .receive(&training_confirm(100), 110, &mut out, &mut events)
            .unwrap();
        assert!(server.is_ready());
        server
    }

    fn out_of_order(msg_type: u8) -> DecodeError {
        DecodeError::Unexpected {
            context: "rdpsnd",
            what: "msgType in this state",
            value: u32::from(msg_type),
        }
    }

    #[test]
    fn server_formats_match_spec_example() {
        // The layout is shared both ways, so the client decoder reads the
        // server example too.
        let ClientSoundPdu::AudioFormats(pdu) =
            ClientSoundPdu::decode(&SPEC_SERVER_FORMATS).unwrap()
        else {
            panic!("not a formats pdu");
        };
        assert_eq!(pdu.flags, 0x008b_fb08);
        assert_eq!(pdu.volume, 0x0009_f1e0);
        assert_eq!(pdu.pitch, 0x771f_2770);
        assert_eq!(pdu.last_block_confirmed, 0xff);
        assert_eq!(pdu.version, 5);
        assert_eq!(pdu.formats.len(), 5);
        assert_eq!(pdu.formats[0], stereo_22k());
        assert_eq!(pdu.formats[3].format_tag, 0x0002);
        assert_eq!(pdu.formats[3].extra.len(), 32);
        assert_eq!(pdu.formats[4].extra, [0xf9, 0x03]);
        let mut encoded = Vec::new();
        pdu.encode(&mut encoded).unwrap();
        // The example's header bPad is 0x2b, an arbitrary value; ours is 0.
        let mut expected = SPEC_SERVER_FORMATS;
        expected[1] = 0;
        assert_eq!(encoded, expected);
    }

    #[test]
    fn start_sends_version_8_formats_with_last_block_255() {
        let mut server = SoundServer::new(vec![stereo_22k()], 4);
        let mut out = Vec::new();
        server.start(&mut out);
        server.start(&mut out);
        assert_eq!(out.len(), 1);
        let mut expected = vec![0x07, 0x00, 0x26, 0x00];
        expected.extend_from_slice(&[0; 14]); // flags, volume, pitch, port
        expected.extend_from_slice(&[0x01, 0x00, 0xff, 0x08, 0x00, 0x00]);
        expected.extend_from_slice(&SPEC_SERVER_FORMATS[24..42]);
        assert_eq!(out[0], expected);
    }

    #[test]
    fn wave2_matches_spec_example() {
        let data_len = SPEC_WAVE2_LEN - 16;
        let mut data = vec![0u8; data_len];
        data[..0x40].copy_from_slice(&SPEC_WAVE2_HEAD[16..]);
        data[data_len - 0x28..].copy_from_slice(&SPEC_WAVE2_TAIL);
        let mut out = Vec::new();
        encode_wave2(&mut out, 0xa116, 3, 2, 0x0dac_b8c2, &data);
        assert_eq!(out.len(), SPEC_WAVE2_LEN);
        assert_eq!(out[..0x50], SPEC_WAVE2_HEAD);
        assert_eq!(out[SPEC_WAVE2_LEN - 0x28..], SPEC_WAVE2_TAIL);
    }

    #[test]
    fn server_pdus_have_spec_layouts() {
        let mut out = Vec::new();
        encode_training(&mut out, 0x89da);
        assert_eq!(out, [0x06, 0x00, 0x04, 0x00, 0xda, 0x89, 0x00, 0x00]);
        out.clear();
        encode_volume(&mut out, 0x1234, 0xffff);
        assert_eq!(out, [0x03, 0x00, 0x04, 0x00, 0x34, 0x12, 0xff, 0xff]);

        let (mut info, mut wave) = (Vec::new(), Vec::new());
        encode_wave_info(
            &mut info,
            &mut wave,
            0xa116,
            3,
            2,
            &[1, 2, 3, 4, 5, 6, 7, 8],
        );
        // BodySize = 12 (WaveInfo body) + 4 (the Wave PDU's data).
        assert_eq!(
            info,
            [
                0x02, 0x00, 0x10, 0x00, 0x16, 0xa1, 0x03, 0x00, 0x02, 0, 0, 0, 1, 2, 3, 4
            ]
        );
        assert_eq!(wave, [0, 0, 0, 0, 5, 6, 7, 8]);
    }

    #[test]
    fn client_pdus_decode() {
        assert_eq!(
            ClientSoundPdu::decode(&SPEC_TRAINING_CONFIRM).unwrap(),
            ClientSoundPdu::TrainingConfirm {
                timestamp: 0x89da,
                pack_size: 0x400
            }
        );
        assert_eq!(
            ClientSoundPdu::decode(&CLIENT_QUALITY_MODE).unwrap(),
            ClientSoundPdu::QualityMode(QualityMode::High)
        );
        assert_eq!(
            ClientSoundPdu::decode(&CLIENT_WAVE_CONFIRM).unwrap(),
            ClientSoundPdu::WaveConfirm {
                timestamp: 0x1234,
                block: 7
            }
        );
        let ClientSoundPdu::AudioFormats(pdu) = ClientSoundPdu::decode(&CLIENT_FORMATS).unwrap()
        else {
            panic!("not a formats pdu");
        };
        assert_eq!(pdu.flags, TSSNDCAPS_ALIVE | TSSNDCAPS_VOLUME);
        assert_eq!(pdu.volume, 0xffff_ffff);
        assert_eq!(pdu.version, 8);
        assert_eq!(pdu.formats, [stereo_22k(), AudioFormat::pcm(1, 8000, 8)]);
        // Exact inverse of the encoder.
        let mut encoded = Vec::new();
        pdu.encode(&mut encoded).unwrap();
        assert_eq!(encoded, CLIENT_FORMATS);
        // Bytes after BodySize are not part of the PDU.
        let mut padded = CLIENT_WAVE_CONFIRM.to_vec();
        padded.push(0xee);
        assert!(ClientSoundPdu::decode(&padded).is_ok());
    }

    #[test]
    fn full_exchange_wave2() {
        let mut server = SoundServer::new(vec![stereo_22k()], 2);
        let (mut out, mut events) = (Vec::new(), Vec::new());
        server.start(&mut out);
        assert_eq!(out.len(), 1);
        out.clear();

        server
            .receive(&CLIENT_FORMATS, 0x1_89da, &mut out, &mut events)
            .unwrap();
        assert_eq!(out, [vec![0x06, 0x00, 0x04, 0x00, 0xda, 0x89, 0x00, 0x00]]);
        assert!(events.is_empty());
        assert!(!server.is_ready());
        out.clear();

        server
            .receive(&CLIENT_QUALITY_MODE, 0x1_89e0, &mut out, &mut events)
            .unwrap();
        assert_eq!(server.quality_mode(), Some(QualityMode::High));
        server
            .receive(&training_confirm(0x89da), 0x1_89f0, &mut out, &mut events)
            .unwrap();
        assert!(out.is_empty());
        assert_eq!(
            events,
            [SoundEvent::Ready {
                formats: vec![stereo_22k()],
                version: 8
            }]
        );
        assert!(server.is_ready());
        assert_eq!(server.selected_format(), Some(&stereo_22k()));
        events.clear();

        let samples = [9u8; 8];
        server
            .send_samples(&samples, 0x0001_0203, &mut out)
            .unwrap();
        assert_eq!(server.in_flight(), 1);
        let mut expected = vec![
            0x0d, 0x00, 0x14, 0x00, 0x03, 0x02, 0x00, 0x00, 0x00, 0, 0, 0,
        ];
        expected.extend_from_slice(&[0x03, 0x02, 0x01, 0x00]);
        expected.extend_from_slice(&samples);
        assert_eq!(out, [expected]);
        out.clear();

        server
            .receive(&wave_confirm(0x0210, 0), 0, &mut out, &mut events)
            .unwrap();
        assert_eq!(
            events,
            [SoundEvent::WaveConfirmed {
                timestamp: 0x0210,
                block: 0
            }]
        );
        assert_eq!(server.in_flight(), 0);
        assert!(out.is_empty());

        server.set_volume(0x8000, 0x8000, &mut out).unwrap();
        assert_eq!(out, [vec![0x03, 0x00, 0x04, 0x00, 0x00, 0x80, 0x00, 0x80]]);
    }

    #[test]
    fn older_clients_get_wave_info_and_wave() {
        let mut server = ready_server(6, 4);
        server.select_format(1).unwrap();
        assert_eq!(
            server.selected_format(),
            Some(&AudioFormat::pcm(1, 8000, 8))
        );
        let mut out = Vec::new();
        server
            .send_samples(&[1, 2, 3, 4, 5, 6], 0x0005_0007, &mut out)
            .unwrap();
        assert_eq!(
            out,
            [
                vec![
                    0x02, 0x00, 0x0e, 0x00, 0x07, 0x00, 0x01, 0x00, 0x00, 0, 0, 0, 1, 2, 3, 4
                ],
                vec![0, 0, 0, 0, 5, 6],
            ]
        );
        out.clear();
        assert_eq!(
            server.send_samples(&[1, 2, 3], 0, &mut out),
            Err(SoundError::TooShort {
                size: 3,
                minimum: 4
            })
        );
        assert!(out.is_empty());
    }

    #[test]
    fn format_index_follows_the_client_list() {
        // The client lists a format we do not offer first: wFormatNo of the
        // common one is its index in the client's list, 1.
        let mut server = SoundServer::new(vec![stereo_22k()], 4);
        let (mut out, mut events) = (Vec::new(), Vec::new());
        server.start(&mut out);
        let formats = client_formats(
            8,
            TSSNDCAPS_ALIVE,
            vec![AudioFormat::pcm(1, 8000, 8), stereo_22k()],
        );
        server.receive(&formats, 0, &mut out, &mut events).unwrap();
        server
            .receive(&training_confirm(0), 0, &mut out, &mut events)
            .unwrap();
        out.clear();
        server.send_samples(&[0; 4], 0, &mut out).unwrap();
        assert_eq!(out[0][6..8], [0x01, 0x00]);
        assert_eq!(
            server.select_format(1),
            Err(SoundError::FormatIndex { index: 1, count: 1 })
        );
        assert_eq!(
            server.set_volume(1, 1, &mut out),
            Err(SoundError::VolumeNotSupported)
        );
    }

    #[test]
    fn queue_full_until_a_confirm_frees_a_slot() {
        let mut server = ready_server(8, 2);
        let (mut out, mut events) = (Vec::new(), Vec::new());
        server.send_samples(&[0; 4], 0, &mut out).unwrap();
        server.send_samples(&[0; 4], 0, &mut out).unwrap();
        assert_eq!(
            server.send_samples(&[0; 4], 0, &mut out),
            Err(SoundError::QueueFull { in_flight: 2 })
        );
        assert_eq!(out.len(), 2);
        // Confirms may come out of order.
        server
            .receive(&wave_confirm(0, 1), 0, &mut out, &mut events)
            .unwrap();
        assert_eq!(server.in_flight(), 1);
        server.send_samples(&[0; 4], 0, &mut out).unwrap();
        assert_eq!(out[2][8], 2);
        // A repeated confirm (FreeRDP 2 sends two per wave) frees nothing
        // and reports nothing.
        events.clear();
        server
            .receive(&wave_confirm(0, 1), 0, &mut out, &mut events)
            .unwrap();
        assert!(events.is_empty());
        assert_eq!(server.in_flight(), 2);
        // Block 3 was never sent.
        assert_eq!(
            server.receive(&wave_confirm(0, 3), 0, &mut out, &mut events),
            Err(DecodeError::Unexpected {
                context: "rdpsnd wave confirm",
                what: "block number",
                value: 3
            })
        );
    }

    #[test]
    fn block_numbers_cycle_through_255() {
        let mut server = ready_server(8, 1);
        let (mut out, mut events) = (Vec::new(), Vec::new());
        for wave in 0..300usize {
            out.clear();
            server.send_samples(&[0; 4], 0, &mut out).unwrap();
            let block = out[0][8];
            assert_eq!(usize::from(block), wave % 256);
            server
                .receive(&wave_confirm(0, block), 0, &mut out, &mut events)
                .unwrap();
        }
        assert_eq!(events.len(), 300);
    }

    #[test]
    fn samples_are_validated() {
        let mut server = ready_server(8, 4);
        let mut out = Vec::new();
        assert_eq!(
            server.send_samples(&[], 0, &mut out),
            Err(SoundError::Empty)
        );
        assert_eq!(
            server.send_samples(&[0; 6], 0, &mut out),
            Err(SoundError::Misaligned {
                size: 6,
                block_align: 4
            })
        );
        assert_eq!(
            server.send_samples(&vec![0; 65528], 0, &mut out),
            Err(SoundError::TooLarge {
                size: 65528,
                limit: 65523
            })
        );
        assert!(out.is_empty());
        assert_eq!(server.in_flight(), 0);
    }

    #[test]
    fn client_that_cannot_play_gets_empty_ready() {
        for (flags, formats) in [
            (TSSNDCAPS_ALIVE, vec![AudioFormat::pcm(1, 11025, 8)]),
            (TSSNDCAPS_ALIVE, vec![]),
            (0, vec![stereo_22k()]),
        ] {
            let mut server = SoundServer::new(vec![stereo_22k()], 4);
            let (mut out, mut events) = (Vec::new(), Vec::new());
            server.start(&mut out);
            out.clear();
            server
                .receive(&client_formats(8, flags, formats), 0, &mut out, &mut events)
                .unwrap();
            assert!(out.is_empty(), "no training for a client that cannot play");
            assert_eq!(
                events,
                [SoundEvent::Ready {
                    formats: vec![],
                    version: 8
                }]
            );
            assert!(!server.is_ready());
            assert_eq!(server.selected_format(), None);
            assert_eq!(
                server.send_samples(&[0; 4], 0, &mut out),
                Err(SoundError::NoCommonFormat)
            );
            assert_eq!(
                server.receive(&training_confirm(0), 0, &mut out, &mut events),
                Err(out_of_order(SNDC_TRAINING))
            );
        }
    }

    #[test]
    fn commands_before_ready_are_refused() {
        let mut server = SoundServer::new(vec![stereo_22k()], 4);
        let mut out = Vec::new();
        assert_eq!(
            server.send_samples(&[0; 4], 0, &mut out),
            Err(SoundError::NotReady)
        );
        assert_eq!(server.set_volume(0, 0, &mut out), Err(SoundError::NotReady));
        assert_eq!(server.select_format(0), Err(SoundError::NotReady));
    }

    #[test]
    fn truncated_client_pdus_are_errors() {
        for example in [
            &SPEC_TRAINING_CONFIRM[..],
            &CLIENT_FORMATS[..],
            &CLIENT_QUALITY_MODE[..],
            &CLIENT_WAVE_CONFIRM[..],
            &SPEC_SERVER_FORMATS[..],
        ] {
            for len in 0..example.len() {
                assert!(
                    matches!(
                        ClientSoundPdu::decode(&example[..len]),
                        Err(DecodeError::Truncated { .. })
                    ),
                    "prefix of {len} bytes of {example:02x?}"
                );
            }
            // The same with BodySize shrunk to match: the body itself is short.
            for len in HEADER_SIZE..example.len() {
                let mut short = example[..len].to_vec();
                short[2..4].copy_from_slice(&((len - HEADER_SIZE) as u16).to_le_bytes());
                assert!(matches!(
                    ClientSoundPdu::decode(&short),
                    Err(DecodeError::Truncated { .. })
                ));
            }
        }
    }

    #[test]
    fn lengths_from_the_wire_are_checked() {
        // BodySize beyond the message.
        let mut long = CLIENT_WAVE_CONFIRM;
        long[2] = 0x05;
        assert!(matches!(
            ClientSoundPdu::decode(&long),
            Err(DecodeError::Truncated {
                context: "rdpsnd pdu",
                needed: 5,
                available: 4
            })
        ));
        // A format count beyond the data.
        let mut many = CLIENT_FORMATS;
        many[18] = 0xff;
        many[19] = 0xff;
        assert!(matches!(
            ClientSoundPdu::decode(&many),
            Err(DecodeError::Truncated {
                context: "rdpsnd audio formats",
                ..
            })
        ));
        // cbSize beyond the data.
        let mut extra = CLIENT_FORMATS;
        extra[58] = 0x10;
        assert!(ClientSoundPdu::decode(&extra).is_err());
    }

    #[test]
    fn unknown_and_server_only_msg_types_are_errors() {
        for msg_type in [
            0x00,
            SNDC_WAVE,
            SNDC_SETVOLUME,
            0x04,
            0x08,
            0x09,
            0x0a,
            0x0b,
            SNDC_WAVE2,
            0x0e,
            0xff,
        ] {
            assert_eq!(
                ClientSoundPdu::decode(&[msg_type, 0, 0, 0]),
                Err(DecodeError::Unexpected {
                    context: "rdpsnd pdu",
                    what: "msgType",
                    value: u32::from(msg_type)
                })
            );
        }
    }

    #[test]
    fn messages_in_the_wrong_state_are_errors() {
        let (mut out, mut events) = (Vec::new(), Vec::new());

        // Before start.
        let mut server = SoundServer::new(vec![stereo_22k()], 4);
        assert_eq!(
            server.receive(&CLIENT_FORMATS, 0, &mut out, &mut events),
            Err(out_of_order(SNDC_FORMATS))
        );

        // Awaiting formats: training confirm, quality mode, wave confirm.
        server.start(&mut out);
        for (message, msg_type) in [
            (&SPEC_TRAINING_CONFIRM[..], SNDC_TRAINING),
            (&CLIENT_QUALITY_MODE[..], SNDC_QUALITYMODE),
            (&CLIENT_WAVE_CONFIRM[..], SNDC_WAVECONFIRM),
        ] {
            assert_eq!(
                server.receive(message, 0, &mut out, &mut events),
                Err(out_of_order(msg_type))
            );
        }

        // Training: formats twice, wave confirm before ready.
        server
            .receive(&CLIENT_FORMATS, 0, &mut out, &mut events)
            .unwrap();
        assert_eq!(
            server.receive(&CLIENT_FORMATS, 0, &mut out, &mut events),
            Err(out_of_order(SNDC_FORMATS))
        );
        assert_eq!(
            server.receive(&CLIENT_WAVE_CONFIRM, 0, &mut out, &mut events),
            Err(out_of_order(SNDC_WAVECONFIRM))
        );

        // Ready: a second training confirm, formats again.
        server
            .receive(&training_confirm(0), 0, &mut out, &mut events)
            .unwrap();
        assert!(server.is_ready());
        assert_eq!(
            server.receive(&SPEC_TRAINING_CONFIRM, 0, &mut out, &mut events),
            Err(out_of_order(SNDC_TRAINING))
        );
        assert_eq!(
            server.receive(&CLIENT_FORMATS, 0, &mut out, &mut events),
            Err(out_of_order(SNDC_FORMATS))
        );
        // A confirm for a block never sent.
        assert_eq!(
            server.receive(&CLIENT_WAVE_CONFIRM, 0, &mut out, &mut events),
            Err(DecodeError::Unexpected {
                context: "rdpsnd wave confirm",
                what: "block number",
                value: 7
            })
        );
        assert!(
            server.is_ready(),
            "a refused message leaves the state alone"
        );
    }

    #[test]
    fn oversized_server_formats_are_dropped() {
        let mut big = stereo_22k();
        big.extra = vec![0; 40_000];
        let server = SoundServer::new(vec![big.clone(), big, stereo_22k()], 0);
        assert_eq!(server.server_formats.len(), 2);
        assert_eq!(server.max_in_flight, 1);
        let mut out = Vec::new();
        let mut server = server;
        server.start(&mut out);
        assert_eq!(out.len(), 1);
        assert!(out[0].len() <= HEADER_SIZE + MAX_BODY_SIZE);
    }

    /// xorshift64: a fixed-seed generator, so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng(0x5eed_cafe_f00d_beef);
        let known = [
            SNDC_FORMATS,
            SNDC_QUALITYMODE,
            SNDC_TRAINING,
            SNDC_WAVECONFIRM,
        ];
        let (mut out, mut events) = (Vec::new(), Vec::new());
        for round in 0..2000 {
            let len = (rng.next() % 80) as usize;
            let mut message: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            // Mostly well-typed headers with a plausible BodySize, to get past
            // the first checks.
            if len >= HEADER_SIZE && rng.next() % 4 != 0 {
                message[0] = known[(rng.next() % 4) as usize];
                let body = (len - HEADER_SIZE) as u16;
                let body = if rng.next() % 2 == 0 {
                    body
                } else {
                    body.wrapping_add(rng.next() as u16 % 8)
                };
                message[2..4].copy_from_slice(&body.to_le_bytes());
            }
            let mut server = match round % 3 {
                0 => SoundServer::new(vec![stereo_22k()], 4),
                1 => {
                    let mut server = SoundServer::new(vec![stereo_22k()], 4);
                    server.start(&mut out);
                    server
                }
                _ => ready_server(6 + (round % 4) as u16, 4),
            };
            let _ = server.receive(&message, rng.next() as u32, &mut out, &mut events);
            let _ = server.send_samples(&message, 0, &mut out);
            out.clear();
            events.clear();
        }
    }
}
