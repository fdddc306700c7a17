//! The application's side of the clipboard: a backend per connection, made
//! by a factory (`with_cliprdr_factory`), and a handle to send to the client.

pub use rdpserve_core::clipboard::{ClipboardFormat, FileContentsRequest, format};

use crate::mailbox::Mailbox;

/// Makes one clipboard backend per connection.
pub trait CliprdrServerFactory: Send + Sync + 'static {
    fn build_cliprdr_backend(&self) -> Box<dyn CliprdrBackend>;
}

/// One connection's clipboard. Everything the backend sends goes through
/// the [`ClipboardHandle`] it is given, which it may clone and keep to copy
/// later from any thread.
///
/// # Threads
///
/// Methods run on the runtime's blocking threads, never on the async
/// executor, one at a time and in the order of the client's messages. A
/// method may block: its own connection waits for it meanwhile (input,
/// output and all), no other connection does.
pub trait CliprdrBackend: Send + 'static {
    /// The client's clipboard channel is set up. A good moment to `offer`
    /// what the server's clipboard holds.
    fn on_ready(&mut self, clipboard: &ClipboardHandle) {
        let _ = clipboard;
    }

    /// The user copied on the client; ask for data with `clipboard.request`.
    ///
    /// FreeRDP's X11 client (2.x) first announces a provisional list, which
    /// holds the invalid format id 0, while it asks the new X owner for its
    /// formats, then the real list. A request made in between is answered
    /// with a failure and followed by an empty list, so a backend that
    /// fetches eagerly should wait for a list without id 0.
    fn on_remote_copy(&mut self, formats: &[ClipboardFormat], clipboard: &ClipboardHandle);

    /// The client pastes the server's data in `format_id`: answer with
    /// `clipboard.respond` (now or later, in request order).
    fn on_format_data_request(&mut self, format_id: u32, clipboard: &ClipboardHandle);

    /// The answer to `request`: the data, or `None` when the client had none.
    fn on_format_data_response(&mut self, format_id: u32, data: Option<&[u8]>);

    /// The client wants part of a file the server listed. By default the
    /// request is refused.
    fn on_file_contents_request(
        &mut self,
        request: &FileContentsRequest,
        clipboard: &ClipboardHandle,
    ) {
        clipboard.respond_file_contents(request.stream_id, None);
    }

    /// The answer to `request_file_contents`.
    fn on_file_contents_response(&mut self, stream_id: u32, data: Option<&[u8]>) {
        let _ = (stream_id, data);
    }

    /// The client asks to keep the listed data available until `on_unlock`.
    fn on_lock(&mut self, clip_data_id: u32) {
        let _ = clip_data_id;
    }

    fn on_unlock(&mut self, clip_data_id: u32) {
        let _ = clip_data_id;
    }
}

/// What a [`ClipboardHandle`] asks the connection to send.
#[derive(Debug, Clone)]
pub(crate) enum ClipboardCommand {
    Offer(Vec<ClipboardFormat>),
    Request(u32),
    Respond(Option<Vec<u8>>),
    RequestFileContents(FileContentsRequest),
    RespondFileContents {
        stream_id: u32,
        data: Option<Vec<u8>>,
    },
}

/// Sends clipboard messages to one client. Clone it freely and use it from
/// any thread; commands run in order on the connection's task.
#[derive(Debug, Clone, Default)]
pub struct ClipboardHandle {
    mailbox: Mailbox<ClipboardCommand>,
}

impl ClipboardHandle {
    pub(crate) fn mailbox(&self) -> &Mailbox<ClipboardCommand> {
        &self.mailbox
    }

    /// The server copied: announces its formats (its data is asked for by
    /// `on_format_data_request` when the user pastes).
    pub fn offer(&self, formats: Vec<ClipboardFormat>) {
        self.mailbox.push(ClipboardCommand::Offer(formats));
    }

    /// Asks for the client's data in `format_id` (from `on_remote_copy`).
    pub fn request(&self, format_id: u32) {
        self.mailbox.push(ClipboardCommand::Request(format_id));
    }

    /// Answers the oldest `on_format_data_request`; `None` if the data is
    /// not available.
    pub fn respond(&self, data: Option<Vec<u8>>) {
        self.mailbox.push(ClipboardCommand::Respond(data));
    }

    pub fn request_file_contents(&self, request: FileContentsRequest) {
        self.mailbox
            .push(ClipboardCommand::RequestFileContents(request));
    }

    pub fn respond_file_contents(&self, stream_id: u32, data: Option<Vec<u8>>) {
        self.mailbox
            .push(ClipboardCommand::RespondFileContents { stream_id, data });
    }
}

/// Text as CF_UNICODETEXT data (UTF-16LE, CRLF line ends, NUL-terminated).
pub fn unicode_text(text: &str) -> Vec<u8> {
    rdpserve_core::clipboard::encode_unicode_text(text)
}

/// An HTML fragment as CF_HTML ("HTML Format") data.
pub fn html(fragment: &str) -> Vec<u8> {
    rdpserve_core::clipboard::encode_html(fragment)
}

/// The fragment of CF_HTML data.
pub fn html_fragment(data: &[u8]) -> Option<String> {
    rdpserve_core::clipboard::decode_html(data)
}

/// B, G, R, X pixels (rows `stride` apart) as CF_DIB data.
pub fn dib(width: u32, height: u32, stride: usize, pixels: &[u8]) -> Option<Vec<u8>> {
    rdpserve_core::clipboard::encode_dib(width, height, stride, pixels)
}

/// CF_DIB data (24 or 32 bpp) as width, height and B, G, R, X pixels.
pub fn pixels_from_dib(data: &[u8]) -> Option<(u32, u32, Vec<u8>)> {
    rdpserve_core::clipboard::decode_dib(data).ok()
}

/// CF_UNICODETEXT data as text, or `None` if it is not valid.
pub fn text_from_unicode(data: &[u8]) -> Option<String> {
    rdpserve_core::clipboard::decode_unicode_text(data).ok()
}
