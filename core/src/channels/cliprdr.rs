//! The clipboard channel, server side
//! ([MS-RDPECLIP](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpeclip/fb9b7e0b-6db4-41c2-b83c-f889c1ee7688)):
//! its PDUs and the state machine the session drives with whole messages of
//! the "cliprdr" static channel.
//!
//! Clipboard data is rendered late: each side announces the formats it has
//! (Format List) and the other asks for the data of one format only when the
//! user pastes (Format Data Request and Response).

use std::collections::VecDeque;

use bytes::BufMut;
use tracing::debug;

use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;
use crate::wire::utf16;

pub(crate) use crate::api::clipboard::{
    ClipboardError, ClipboardEvent, ClipboardFormat, FILECONTENTS_RANGE, FILECONTENTS_SIZE,
    FileContentsRequest,
};

pub const CHANNEL_NAME: &str = "cliprdr";

// CLIPRDR_HEADER msgType values (2.2.1).
const CB_MONITOR_READY: u16 = 0x0001;
const CB_FORMAT_LIST: u16 = 0x0002;
const CB_FORMAT_LIST_RESPONSE: u16 = 0x0003;
const CB_FORMAT_DATA_REQUEST: u16 = 0x0004;
const CB_FORMAT_DATA_RESPONSE: u16 = 0x0005;
const CB_TEMP_DIRECTORY: u16 = 0x0006;
const CB_CLIP_CAPS: u16 = 0x0007;
const CB_FILECONTENTS_REQUEST: u16 = 0x0008;
const CB_FILECONTENTS_RESPONSE: u16 = 0x0009;
const CB_LOCK_CLIPDATA: u16 = 0x000A;
const CB_UNLOCK_CLIPDATA: u16 = 0x000B;

// msgFlags.
const CB_RESPONSE_OK: u16 = 0x0001;
const CB_RESPONSE_FAIL: u16 = 0x0002;
const CB_ASCII_NAMES: u16 = 0x0004;

const CB_CAPSTYPE_GENERAL: u16 = 1;
const CB_CAPS_VERSION_2: u32 = 2;
/// General capability flags (2.2.2.1.1.1).
pub const CB_USE_LONG_FORMAT_NAMES: u32 = 0x0002;
pub const CB_STREAM_FILECLIP_ENABLED: u32 = 0x0004;
pub const CB_FILECLIP_NO_FILE_PATHS: u32 = 0x0008;
pub const CB_CAN_LOCK_CLIPDATA: u32 = 0x0010;
/// What this server offers: long names, file transfer by stream without
/// paths, and locking, all of which reach the application as events.
const SERVER_FLAGS: u32 = CB_USE_LONG_FORMAT_NAMES
    | CB_STREAM_FILECLIP_ENABLED
    | CB_FILECLIP_NO_FILE_PATHS
    | CB_CAN_LOCK_CLIPDATA;

/// Bytes of CLIPRDR_HEADER: msgType, msgFlags (2 each), dataLen (4).
const HEADER_SIZE: usize = 8;
/// A short format name is 32 bytes after its id.
const SHORT_NAME_SIZE: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Monitor Ready sent; waiting for the client's first Format List.
    AwaitingClient,
    Ready,
}

/// The server's clipboard endpoint for one session.
///
/// Inputs are whole channel messages (`receive`); outputs are whole
/// messages appended to `out`, for the caller to chunk onto the channel.
#[derive(Debug)]
pub struct ClipboardServer {
    state: State,
    /// Whether both sides use long format names.
    long_names: bool,
    /// The client's general capability flags (defaults when it sent none).
    client_flags: u32,
    /// Formats the client announced last; requests must name one of them.
    remote_formats: Vec<ClipboardFormat>,
    /// The server's offer made before the client was ready, sent then.
    pending_offer: Option<Vec<ClipboardFormat>>,
    /// Format ids we asked the client for, oldest first: responses carry no
    /// id, so they are matched by order.
    requested: VecDeque<u32>,
    /// Format ids the client asked us for, oldest first.
    to_answer: VecDeque<u32>,
    /// File contents requests of the client not yet answered.
    file_requests: Vec<u32>,
    /// Stream ids of our file contents requests.
    file_requested: Vec<u32>,
    /// At most this many unanswered requests of each kind are kept; a
    /// client that keeps asking without reading answers is misbehaving.
    max_outstanding: usize,
}

impl Default for ClipboardServer {
    fn default() -> Self {
        Self::new()
    }
}

impl ClipboardServer {
    /// Unanswered requests kept per direction.
    pub const MAX_OUTSTANDING: usize = 64;

    pub fn new() -> Self {
        Self {
            state: State::AwaitingClient,
            long_names: false,
            client_flags: 0,
            remote_formats: Vec::new(),
            pending_offer: None,
            requested: VecDeque::new(),
            to_answer: VecDeque::new(),
            file_requests: Vec::new(),
            file_requested: Vec::new(),
            max_outstanding: Self::MAX_OUTSTANDING,
        }
    }

    #[cfg(test)]
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    #[cfg(test)]
    /// The client's general capability flags.
    pub fn client_flags(&self) -> u32 {
        self.client_flags
    }

    /// The Clipboard Capabilities and Monitor Ready PDUs (3.3.5.1).
    pub fn start(&mut self, out: &mut Vec<Vec<u8>>) {
        out.push(encode_capabilities(SERVER_FLAGS));
        out.push(encode_pdu(CB_MONITOR_READY, 0, &[]));
    }

    /// One whole message from the client.
    pub fn receive(
        &mut self,
        message: &[u8],
        out: &mut Vec<Vec<u8>>,
        events: &mut Vec<ClipboardEvent>,
    ) -> Result<(), DecodeError> {
        let (msg_type, flags, body) = decode_header(message)?;
        let mut cursor = ReadCursor::new(body, "cliprdr pdu");
        match msg_type {
            CB_CLIP_CAPS => {
                self.expect_state(State::AwaitingClient, &cursor, "capabilities after setup")?;
                self.client_flags = decode_capabilities(&mut cursor)?;
                self.long_names = self.client_flags & CB_USE_LONG_FORMAT_NAMES != 0;
            }
            CB_TEMP_DIRECTORY => {
                // Where the client keeps pasted files; nothing the server needs.
                self.expect_state(State::AwaitingClient, &cursor, "temp directory after setup")?;
            }
            CB_FORMAT_LIST => {
                let formats = decode_format_list(body, flags, self.long_names)?;
                out.push(encode_pdu(CB_FORMAT_LIST_RESPONSE, CB_RESPONSE_OK, &[]));
                if self.state == State::AwaitingClient {
                    self.state = State::Ready;
                    events.push(ClipboardEvent::Ready);
                    if let Some(offer) = self.pending_offer.take() {
                        out.push(self.encode_format_list(&offer));
                    }
                }
                // Requests already sent stay outstanding: the client answers
                // them in order even after a new copy (MS-RDPECLIP 3.1.5.2),
                // and dropping them would orphan those answers.
                self.remote_formats = formats.clone();
                events.push(ClipboardEvent::RemoteCopy(formats));
            }
            CB_FORMAT_LIST_RESPONSE => {
                self.expect_state(State::Ready, &cursor, "format list response before setup")?;
                // A failure only means the client did not take our copy;
                // the next offer replaces it anyway.
            }
            CB_FORMAT_DATA_REQUEST => {
                self.expect_state(State::Ready, &cursor, "data request before setup")?;
                let format_id = cursor.read_u32_le()?;
                if self.to_answer.len() >= self.max_outstanding {
                    return Err(cursor.invalid("requestedFormatId", "too many unanswered requests"));
                }
                self.to_answer.push_back(format_id);
                events.push(ClipboardEvent::DataRequest { format_id });
            }
            CB_FORMAT_DATA_RESPONSE => {
                let Some(format_id) = self.requested.pop_front() else {
                    // Late or unsolicited: nothing waits for it.
                    debug!("Dropping a clipboard data response without a request");
                    return Ok(());
                };
                events.push(ClipboardEvent::DataResponse {
                    format_id,
                    data: response_data(flags, body),
                });
            }
            CB_FILECONTENTS_REQUEST => {
                self.expect_state(State::Ready, &cursor, "file contents request before setup")?;
                let request = decode_file_contents_request(&mut cursor)?;
                if self.file_requests.len() >= self.max_outstanding {
                    return Err(cursor.invalid("streamId", "too many unanswered requests"));
                }
                self.file_requests.push(request.stream_id);
                events.push(ClipboardEvent::FileContentsRequest(request));
            }
            CB_FILECONTENTS_RESPONSE => {
                let stream_id = cursor.read_u32_le()?;
                let Some(at) = self.file_requested.iter().position(|&id| id == stream_id) else {
                    debug!(
                        stream_id,
                        "Dropping a file contents response without a request"
                    );
                    return Ok(());
                };
                self.file_requested.remove(at);
                events.push(ClipboardEvent::FileContentsResponse {
                    stream_id,
                    data: response_data(flags, cursor.rest()),
                });
            }
            CB_LOCK_CLIPDATA | CB_UNLOCK_CLIPDATA => {
                self.expect_state(State::Ready, &cursor, "lock before setup")?;
                let clip_data_id = cursor.read_u32_le()?;
                events.push(if msg_type == CB_LOCK_CLIPDATA {
                    ClipboardEvent::Lock { clip_data_id }
                } else {
                    ClipboardEvent::Unlock { clip_data_id }
                });
            }
            other => {
                return Err(DecodeError::Unexpected {
                    context: "cliprdr pdu",
                    what: "msgType",
                    value: u32::from(other),
                });
            }
        }
        Ok(())
    }

    /// The server copied: announces `formats` to the client (Format List).
    /// Before the client is ready the offer waits; a later offer replaces it.
    pub fn offer(&mut self, formats: &[ClipboardFormat], out: &mut Vec<Vec<u8>>) {
        if self.state == State::Ready {
            out.push(self.encode_format_list(formats));
        } else {
            self.pending_offer = Some(formats.to_vec());
        }
    }

    /// Asks the client for its data in `format_id`, one it announced.
    pub fn request(
        &mut self,
        format_id: u32,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), ClipboardError> {
        if !self
            .remote_formats
            .iter()
            .any(|format| format.id == format_id)
        {
            return Err(ClipboardError::UnknownFormat);
        }
        if self.requested.len() >= self.max_outstanding {
            return Err(ClipboardError::TooManyRequests);
        }
        self.requested.push_back(format_id);
        out.push(encode_pdu(
            CB_FORMAT_DATA_REQUEST,
            0,
            &format_id.to_le_bytes(),
        ));
        Ok(())
    }

    /// Answers the client's oldest Format Data Request: the data, or `None`
    /// to tell it the data is not available.
    pub fn respond(
        &mut self,
        data: Option<&[u8]>,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), ClipboardError> {
        self.to_answer
            .pop_front()
            .ok_or(ClipboardError::NothingToAnswer)?;
        out.push(match data {
            Some(data) => encode_pdu(CB_FORMAT_DATA_RESPONSE, CB_RESPONSE_OK, data),
            None => encode_pdu(CB_FORMAT_DATA_RESPONSE, CB_RESPONSE_FAIL, &[]),
        });
        Ok(())
    }

    /// Asks the client for part of a file it listed.
    pub fn request_file_contents(
        &mut self,
        request: &FileContentsRequest,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), ClipboardError> {
        if self.file_requested.len() >= self.max_outstanding {
            return Err(ClipboardError::TooManyRequests);
        }
        self.file_requested.push(request.stream_id);
        let mut body = Vec::with_capacity(28);
        body.put_u32_le(request.stream_id);
        body.put_u32_le(request.list_index);
        body.put_u32_le(request.flags);
        body.put_u32_le(request.position as u32);
        body.put_u32_le((request.position >> 32) as u32);
        body.put_u32_le(request.requested);
        if let Some(id) = request.clip_data_id {
            body.put_u32_le(id);
        }
        out.push(encode_pdu(CB_FILECONTENTS_REQUEST, 0, &body));
        Ok(())
    }

    /// Answers the client's file contents request `stream_id`.
    pub fn respond_file_contents(
        &mut self,
        stream_id: u32,
        data: Option<&[u8]>,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), ClipboardError> {
        let at = self
            .file_requests
            .iter()
            .position(|&id| id == stream_id)
            .ok_or(ClipboardError::UnknownStream)?;
        self.file_requests.remove(at);
        let mut body = stream_id.to_le_bytes().to_vec();
        let flags = match data {
            Some(data) => {
                body.extend_from_slice(data);
                CB_RESPONSE_OK
            }
            None => CB_RESPONSE_FAIL,
        };
        out.push(encode_pdu(CB_FILECONTENTS_RESPONSE, flags, &body));
        Ok(())
    }

    fn expect_state(
        &self,
        state: State,
        cursor: &ReadCursor<'_>,
        reason: &'static str,
    ) -> Result<(), DecodeError> {
        if self.state == state {
            Ok(())
        } else {
            Err(cursor.invalid("msgType", reason))
        }
    }

    fn encode_format_list(&self, formats: &[ClipboardFormat]) -> Vec<u8> {
        let mut body = Vec::new();
        for format in formats {
            body.put_u32_le(format.id);
            if self.long_names {
                utf16::put(&mut body, &format.name);
                body.put_u16_le(0);
            } else {
                // Short names: 32 bytes of UTF-16, truncated and NUL-padded.
                let mut name = utf16::encode(&format.name);
                name.resize(SHORT_NAME_SIZE, 0);
                name[SHORT_NAME_SIZE - 2..].fill(0);
                body.put_slice(&name);
            }
        }
        encode_pdu(CB_FORMAT_LIST, 0, &body)
    }
}

/// A Format Data or File Contents Response body, or `None` when it reports failure.
fn response_data(flags: u16, data: &[u8]) -> Option<Vec<u8>> {
    (flags & CB_RESPONSE_OK != 0 && flags & CB_RESPONSE_FAIL == 0).then(|| data.to_vec())
}

/// A CLIPRDR_HEADER and its body.
pub fn encode_pdu(msg_type: u16, flags: u16, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_SIZE + body.len());
    out.put_u16_le(msg_type);
    out.put_u16_le(flags);
    out.put_u32_le(body.len() as u32);
    out.put_slice(body);
    out
}

/// Splits a message into msgType, msgFlags and the dataLen bytes of body.
fn decode_header(message: &[u8]) -> Result<(u16, u16, &[u8]), DecodeError> {
    let mut cursor = ReadCursor::new(message, "cliprdr header");
    let msg_type = cursor.read_u16_le()?;
    let flags = cursor.read_u16_le()?;
    let length = cursor.read_u32_le()? as usize;
    // Some clients pad messages; bytes after dataLen are not part of the PDU.
    let body = cursor.read_slice(length)?;
    Ok((msg_type, flags, body))
}

/// CLIPRDR_CAPS with one general capability set (2.2.2.1).
fn encode_capabilities(flags: u32) -> Vec<u8> {
    let mut body = Vec::with_capacity(16);
    body.put_u16_le(1); // cCapabilitiesSets
    body.put_u16_le(0); // pad1
    body.put_u16_le(CB_CAPSTYPE_GENERAL);
    body.put_u16_le(12); // lengthCapability
    body.put_u32_le(CB_CAPS_VERSION_2);
    body.put_u32_le(flags);
    encode_pdu(CB_CLIP_CAPS, 0, &body)
}

/// The general flags from CLIPRDR_CAPS; unknown capability sets are skipped.
fn decode_capabilities(cursor: &mut ReadCursor<'_>) -> Result<u32, DecodeError> {
    let count = cursor.read_u16_le()?;
    cursor.skip(2)?;
    let mut flags = 0;
    for _ in 0..count {
        let set_type = cursor.read_u16_le()?;
        let length = usize::from(cursor.read_u16_le()?);
        if length < 4 {
            return Err(cursor.invalid("lengthCapability", "shorter than its header"));
        }
        let set = cursor.read_slice(length - 4)?;
        if set_type == CB_CAPSTYPE_GENERAL {
            let mut set = ReadCursor::new(set, "cliprdr general capability");
            let _version = set.read_u32_le()?;
            flags = set.read_u32_le()?;
        }
    }
    Ok(flags)
}

/// The formats of a Format List body (2.2.3.1), in long or short names.
fn decode_format_list(
    body: &[u8],
    flags: u16,
    long_names: bool,
) -> Result<Vec<ClipboardFormat>, DecodeError> {
    let mut cursor = ReadCursor::new(body, "cliprdr format list");
    let mut formats = Vec::new();
    while !cursor.is_empty() {
        let id = cursor.read_u32_le()?;
        let name = if long_names {
            let rest = cursor.rest();
            let end = rest
                .chunks_exact(2)
                .position(|unit| unit == [0, 0])
                .ok_or_else(|| cursor.invalid("wszFormatName", "missing terminator"))?;
            let name = utf16::decode(&rest[..end * 2], "cliprdr format list", "wszFormatName")?;
            cursor.skip(end * 2 + 2)?;
            name
        } else {
            let raw = cursor.read_slice(SHORT_NAME_SIZE)?;
            if flags & CB_ASCII_NAMES != 0 {
                let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
                String::from_utf8_lossy(&raw[..end]).into_owned()
            } else {
                utf16::decode(raw, "cliprdr format list", "formatName")?
            }
        };
        formats.push(ClipboardFormat { id, name });
    }
    Ok(formats)
}

fn decode_file_contents_request(
    cursor: &mut ReadCursor<'_>,
) -> Result<FileContentsRequest, DecodeError> {
    let stream_id = cursor.read_u32_le()?;
    let list_index = cursor.read_u32_le()?;
    let flags = cursor.read_u32_le()?;
    let low = cursor.read_u32_le()?;
    let high = cursor.read_u32_le()?;
    let requested = cursor.read_u32_le()?;
    // clipDataId is present only when locking was negotiated.
    let clip_data_id = if cursor.remaining() >= 4 {
        Some(cursor.read_u32_le()?)
    } else {
        None
    };
    if flags & (FILECONTENTS_SIZE | FILECONTENTS_RANGE) == 0 {
        return Err(cursor.invalid("dwFlags", "neither size nor range"));
    }
    if flags & FILECONTENTS_SIZE != 0 && requested != 8 {
        return Err(cursor.invalid("cbRequested", "a size request must ask for 8 bytes"));
    }
    Ok(FileContentsRequest {
        stream_id,
        list_index,
        flags,
        position: (u64::from(high) << 32) | u64::from(low),
        requested,
        clip_data_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::clipboard::format;
    use crate::api::clipboard::{decode_unicode_text, encode_unicode_text};

    /// MS-RDPECLIP 4.1.3 Client Clipboard Capabilities PDU.
    const CLIENT_CAPS: [u8; 24] = [
        0x07, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x0c,
        0x00, 0x02, 0x00, 0x00, 0x00, 0x0e, 0x00, 0x00, 0x00,
    ];

    fn long_format_list(formats: &[(u32, &str)]) -> Vec<u8> {
        let mut body = Vec::new();
        for (id, name) in formats {
            body.put_u32_le(*id);
            utf16::put(&mut body, name);
            body.put_u16_le(0);
        }
        encode_pdu(CB_FORMAT_LIST, 0, &body)
    }

    /// A server that went through setup with long format names.
    fn ready_server() -> ClipboardServer {
        let mut server = ClipboardServer::new();
        let (mut out, mut events) = (Vec::new(), Vec::new());
        server.start(&mut out);
        server.receive(&CLIENT_CAPS, &mut out, &mut events).unwrap();
        server
            .receive(&long_format_list(&[]), &mut out, &mut events)
            .unwrap();
        assert!(server.is_ready());
        server
    }

    #[test]
    fn server_setup_has_the_spec_layout() {
        let mut server = ClipboardServer::new();
        let mut out = Vec::new();
        server.start(&mut out);
        // The same layout as 4.1.3, with the server's flags (0x1e).
        let mut expected = CLIENT_CAPS.to_vec();
        expected[20] = 0x1e;
        assert_eq!(out[0], expected);
        // 4.1.2 Monitor Ready.
        assert_eq!(out[1], [0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
    }

    #[test]
    fn client_capabilities_from_the_spec_decode() {
        let mut server = ClipboardServer::new();
        let (mut out, mut events) = (Vec::new(), Vec::new());
        server.receive(&CLIENT_CAPS, &mut out, &mut events).unwrap();
        assert_eq!(server.client_flags(), 0x0e);
        assert!(server.long_names);
        assert!(events.is_empty() && out.is_empty());
    }

    #[test]
    fn client_copy_then_server_request() {
        let mut server = ClipboardServer::new();
        let (mut out, mut events) = (Vec::new(), Vec::new());
        server.start(&mut out);
        server.offer(
            &[ClipboardFormat::standard(format::CF_UNICODETEXT)],
            &mut out,
        );
        out.clear();
        server.receive(&CLIENT_CAPS, &mut out, &mut events).unwrap();
        let list = long_format_list(&[(13, ""), (0xC004, "HTML Format")]);
        server.receive(&list, &mut out, &mut events).unwrap();
        // Response OK, then the offer that waited for the client.
        assert_eq!(out[0], [0x03, 0x00, 0x01, 0x00, 0, 0, 0, 0]);
        assert_eq!(out[1], [0x02, 0, 0, 0, 6, 0, 0, 0, 13, 0, 0, 0, 0, 0]);
        assert_eq!(
            events,
            [
                ClipboardEvent::Ready,
                ClipboardEvent::RemoteCopy(vec![
                    ClipboardFormat::standard(13),
                    ClipboardFormat::registered(0xC004, "HTML Format"),
                ])
            ]
        );
        out.clear();
        events.clear();
        assert_eq!(
            server.request(99, &mut out),
            Err(ClipboardError::UnknownFormat)
        );
        server.request(13, &mut out).unwrap();
        assert_eq!(out[0], [0x04, 0, 0, 0, 4, 0, 0, 0, 13, 0, 0, 0]);
        let text = encode_unicode_text("Grüße\n✓");
        let response = encode_pdu(CB_FORMAT_DATA_RESPONSE, CB_RESPONSE_OK, &text);
        server.receive(&response, &mut out, &mut events).unwrap();
        let ClipboardEvent::DataResponse {
            format_id: 13,
            data: Some(data),
        } = &events[0]
        else {
            panic!("unexpected {events:?}");
        };
        assert_eq!(decode_unicode_text(data).unwrap(), "Grüße\n✓");
        // A second response has no request to belong to: dropped.
        events.clear();
        server.receive(&response, &mut out, &mut events).unwrap();
        assert!(events.is_empty());
    }

    #[test]
    fn client_paste_is_answered_in_order() {
        let mut server = ready_server();
        let (mut out, mut events) = (Vec::new(), Vec::new());
        assert_eq!(
            server.respond(Some(b"x"), &mut out),
            Err(ClipboardError::NothingToAnswer)
        );
        let request = encode_pdu(CB_FORMAT_DATA_REQUEST, 0, &13u32.to_le_bytes());
        server.receive(&request, &mut out, &mut events).unwrap();
        assert_eq!(events, [ClipboardEvent::DataRequest { format_id: 13 }]);
        server.respond(Some(&[1, 2]), &mut out).unwrap();
        assert_eq!(out[0], [0x05, 0, 0x01, 0, 2, 0, 0, 0, 1, 2]);
        server.receive(&request, &mut out, &mut events).unwrap();
        server.respond(None, &mut out).unwrap();
        assert_eq!(out[1], [0x05, 0, 0x02, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn short_names_are_used_without_long_name_support() {
        let mut server = ClipboardServer::new();
        let (mut out, mut events) = (Vec::new(), Vec::new());
        // No capabilities: defaults, i.e. short names.
        let mut body = Vec::new();
        body.put_u32_le(13);
        body.put_slice(&[0; 32]);
        body.put_u32_le(0xC001);
        let mut name = b"HTML Format".to_vec();
        name.resize(32, 0);
        body.put_slice(&name);
        let list = encode_pdu(CB_FORMAT_LIST, CB_ASCII_NAMES, &body);
        server.receive(&list, &mut out, &mut events).unwrap();
        assert_eq!(
            events[1],
            ClipboardEvent::RemoteCopy(vec![
                ClipboardFormat::standard(13),
                ClipboardFormat::registered(0xC001, "HTML Format"),
            ])
        );
        out.clear();
        server.offer(
            &[ClipboardFormat::registered(0xC002, "HTML Format")],
            &mut out,
        );
        assert_eq!(out[0].len(), HEADER_SIZE + 36);
        assert_eq!(&out[0][12..14], [b'H', 0]);
    }

    #[test]
    fn file_contents_and_locks() {
        let mut server = ready_server();
        let (mut out, mut events) = (Vec::new(), Vec::new());
        let mut body = Vec::new();
        for value in [7u32, 0, FILECONTENTS_RANGE, 16, 1, 100, 3] {
            body.put_u32_le(value);
        }
        let request = encode_pdu(CB_FILECONTENTS_REQUEST, 0, &body);
        server.receive(&request, &mut out, &mut events).unwrap();
        assert_eq!(
            events[0],
            ClipboardEvent::FileContentsRequest(FileContentsRequest {
                stream_id: 7,
                list_index: 0,
                flags: FILECONTENTS_RANGE,
                position: (1 << 32) | 16,
                requested: 100,
                clip_data_id: Some(3),
            })
        );
        assert_eq!(
            server.respond_file_contents(8, None, &mut out),
            Err(ClipboardError::UnknownStream)
        );
        server
            .respond_file_contents(7, Some(b"abc"), &mut out)
            .unwrap();
        assert_eq!(
            out[0],
            [0x09, 0, 1, 0, 7, 0, 0, 0, 7, 0, 0, 0, b'a', b'b', b'c']
        );
        events.clear();
        server
            .receive(
                &encode_pdu(CB_LOCK_CLIPDATA, 0, &[3, 0, 0, 0]),
                &mut out,
                &mut events,
            )
            .unwrap();
        server
            .receive(
                &encode_pdu(CB_UNLOCK_CLIPDATA, 0, &[3, 0, 0, 0]),
                &mut out,
                &mut events,
            )
            .unwrap();
        assert_eq!(
            events,
            [
                ClipboardEvent::Lock { clip_data_id: 3 },
                ClipboardEvent::Unlock { clip_data_id: 3 }
            ]
        );
        // A size request must ask for 8 bytes.
        let mut body = Vec::new();
        for value in [8u32, 0, FILECONTENTS_SIZE, 0, 0, 4] {
            body.put_u32_le(value);
        }
        let bad = encode_pdu(CB_FILECONTENTS_REQUEST, 0, &body);
        assert!(server.receive(&bad, &mut out, &mut events).is_err());
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let list = long_format_list(&[(13, ""), (0xC004, "HTML Format")]);
        let request = encode_pdu(CB_FORMAT_DATA_REQUEST, 0, &13u32.to_le_bytes());
        // Every truncation of every client message.
        for message in [&CLIENT_CAPS[..], &list, &request] {
            for len in 0..message.len() {
                let mut server = ready_server();
                let (mut out, mut events) = (Vec::new(), Vec::new());
                let result = server.receive(&message[..len], &mut out, &mut events);
                assert!(result.is_err(), "truncated to {len}: {result:?}");
            }
        }
        let mut server = ready_server();
        let (mut out, mut events) = (Vec::new(), Vec::new());
        // dataLen beyond the message.
        let mut long = request.clone();
        long[4] = 200;
        assert!(server.receive(&long, &mut out, &mut events).is_err());
        // Unknown message type.
        let unknown = encode_pdu(0x0042, 0, &[]);
        assert!(matches!(
            server.receive(&unknown, &mut out, &mut events),
            Err(DecodeError::Unexpected { value: 0x42, .. })
        ));
        // Wrong state: capabilities after setup, a request before setup.
        assert!(server.receive(&CLIENT_CAPS, &mut out, &mut events).is_err());
        let mut fresh = ClipboardServer::new();
        assert!(fresh.receive(&request, &mut out, &mut events).is_err());
        // An unterminated long name.
        let mut body = 13u32.to_le_bytes().to_vec();
        body.extend_from_slice(&[b'A', 0]);
        let unterminated = encode_pdu(CB_FORMAT_LIST, 0, &body);
        assert!(
            server
                .receive(&unterminated, &mut out, &mut events)
                .is_err()
        );
        // A capability set whose length is below its own header.
        let mut caps = CLIENT_CAPS;
        caps[14] = 2;
        assert!(
            ClipboardServer::new()
                .receive(&caps, &mut out, &mut events)
                .is_err()
        );
        // Requests without reading the answers are capped.
        for index in 0..=ClipboardServer::MAX_OUTSTANDING {
            let result = server.receive(&request, &mut out, &mut events);
            assert_eq!(result.is_err(), index == ClipboardServer::MAX_OUTSTANDING);
        }
    }

    #[test]
    fn random_messages_never_panic() {
        let mut state = 0x1234_5678u32;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        for _ in 0..2000 {
            let mut server = if next() % 2 == 0 {
                ready_server()
            } else {
                ClipboardServer::new()
            };
            let len = (next() % 64) as usize;
            let mut message: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if len >= 8 {
                // Mostly valid types and lengths, so the bodies get parsed.
                message[0] = (next() % 12) as u8;
                message[1] = 0;
                message[4..8].copy_from_slice(&((len - 8) as u32).to_le_bytes());
            }
            let (mut out, mut events) = (Vec::new(), Vec::new());
            let _ = server.receive(&message, &mut out, &mut events);
        }
    }
}
