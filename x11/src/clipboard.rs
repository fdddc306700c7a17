//! The X selections (CLIPBOARD, and PRIMARY when asked for) and the RDP
//! clients' clipboards: text, HTML and images, both ways, large ones with
//! the ICCCM's INCR protocol.
//!
//! One thread owns an X connection and a hidden window and serves every
//! connection's backend through a channel; a second thread only waits for
//! X events and forwards them into the same channel, so neither polls.
//!
//! - An X application copies: XFixes reports the new owner, the thread
//!   asks it for its TARGETS and offers the clients what it can carry. A
//!   client pasting makes the thread convert the selection to the matching
//!   target and answer with the data, read in pieces when the owner sends
//!   it INCR.
//! - A client copies: the thread takes the selections. An X application
//!   pasting makes it ask that client for the matching format and answer
//!   the X request, in pieces (INCR) when the data is larger than 256 KiB
//!   (or a quarter of the X server's largest request, if less).
//!
//! Formats, as Windows and FreeRDP map them: text is CF_UNICODETEXT and
//! `UTF8_STRING` (`STRING`, `TEXT` and `text/plain;charset=utf-8` are
//! served too); HTML is the registered "HTML Format" (CF_HTML, a header of
//! byte offsets around the document) and `text/html`; images are CF_DIB and
//! `image/bmp` (a DIB behind a 14-byte BMP file header). PNG is not
//! carried: it would need a PNG codec, and FreeRDP 2's X client offers and
//! takes images as `image/bmp` anyway.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use rdpserve_tokio::{
    ClipboardFormat, ClipboardHandle, CliprdrBackend, CliprdrServerFactory, clipboard_format, html,
    html_fragment, text_from_unicode, unicode_text,
};
use tracing::{debug, warn};
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::Event;
use x11rb::protocol::xfixes::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{
    self, Atom, AtomEnum, ChangeWindowAttributesAux, ConnectionExt as _, CreateWindowAux,
    EventMask, PropMode, Property, SelectionNotifyEvent, SelectionRequestEvent, Window,
    WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

use crate::{X11Error, connect, require_extension};

/// The id the server gives "HTML Format" in the lists it sends (registered
/// formats take ids from 0xC000 up; the name is what identifies it).
const HTML_FORMAT_ID: u32 = 0xC0F0;

/// The largest piece of an INCR transfer to an X requestor, and the size
/// above which data goes in pieces: the X server then never holds more than
/// this in one property for us, and a requestor reads it at its own pace.
const INCR_PIECE: usize = 256 * 1024;

/// How long an X owner may take to answer a conversion (or to send the
/// next INCR piece), and a client to send data an X application waits
/// for: past it the paste fails, so one owner or client that never
/// answers cannot hold up every later paste.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// The size of a BMP file header (BITMAPFILEHEADER) before the DIB.
const BMP_FILE_HEADER: usize = 14;

/// What the clipboard carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Html,
    Image,
}

impl Kind {
    /// The format the server offers for it.
    fn format(self) -> ClipboardFormat {
        match self {
            Kind::Text => ClipboardFormat::standard(clipboard_format::CF_UNICODETEXT),
            Kind::Html => {
                ClipboardFormat::registered(HTML_FORMAT_ID, clipboard_format::HTML_FORMAT_NAME)
            }
            Kind::Image => ClipboardFormat::standard(clipboard_format::CF_DIB),
        }
    }

    /// What a format the client lists carries.
    fn of_client_format(format: &ClipboardFormat) -> Option<Self> {
        match format.id {
            clipboard_format::CF_UNICODETEXT => Some(Kind::Text),
            clipboard_format::CF_DIB => Some(Kind::Image),
            _ if format.name == clipboard_format::HTML_FORMAT_NAME => Some(Kind::Html),
            _ => None,
        }
    }

    /// What a format the server listed carries (the client names its id).
    fn of_server_format(id: u32) -> Option<Self> {
        match id {
            clipboard_format::CF_UNICODETEXT => Some(Kind::Text),
            clipboard_format::CF_DIB => Some(Kind::Image),
            HTML_FORMAT_ID => Some(Kind::Html),
            _ => None,
        }
    }
}

/// What the clipboard thread is told.
enum Message {
    X(Event),
    /// A client is ready: it is offered what X holds from now on.
    Ready(ClipboardHandle),
    /// A client copied: X applications get these kinds (with the client's
    /// format ids) from that client.
    ClientCopied(ClipboardHandle, Vec<(Kind, u32)>),
    /// A client pastes: it is answered with the X selection's data.
    ClientPastes(ClipboardHandle, Kind),
    /// The data a client sent for a format the thread asked for.
    ClientData(u32, Option<Vec<u8>>),
}

struct Atoms {
    clipboard: Atom,
    primary: Atom,
    targets: Atom,
    incr: Atom,
    utf8: Atom,
    text: Atom,
    text_plain_utf8: Atom,
    html: Atom,
    bmp: Atom,
    property: Atom,
}

impl Atoms {
    /// The X target that carries `kind` (asked for and announced first).
    fn target(&self, kind: Kind) -> Atom {
        match kind {
            Kind::Text => self.utf8,
            Kind::Html => self.html,
            Kind::Image => self.bmp,
        }
    }

    /// What an X target carries.
    fn kind(&self, target: Atom) -> Option<Kind> {
        if [
            self.utf8,
            self.text,
            self.text_plain_utf8,
            AtomEnum::STRING.into(),
        ]
        .contains(&target)
        {
            Some(Kind::Text)
        } else if target == self.html {
            Some(Kind::Html)
        } else if target == self.bmp {
            Some(Kind::Image)
        } else {
            None
        }
    }

    /// Every X target for `kind`, as TARGETS lists them.
    fn targets(&self, kind: Kind) -> Vec<Atom> {
        match kind {
            Kind::Text => vec![
                self.utf8,
                self.text_plain_utf8,
                self.text,
                AtomEnum::STRING.into(),
            ],
            Kind::Html => vec![self.html],
            Kind::Image => vec![self.bmp],
        }
    }
}

/// The clipboard factory for `RdpServerBuilder::with_cliprdr_factory`.
pub struct X11Clipboard {
    sender: Mutex<mpsc::Sender<Message>>,
}

impl X11Clipboard {
    /// Opens a connection to `display` and starts the clipboard threads;
    /// `primary` shares the PRIMARY selection too.
    pub(crate) fn start(display: &str, primary: bool) -> Result<Self, X11Error> {
        let (connection, screen_number) = connect(display)?;
        require_extension(&connection, xfixes::X11_EXTENSION_NAME)?;
        connection.xfixes_query_version(5, 0)?.reply()?;
        let root = connection.setup().roots[screen_number].root;
        let window = connection.generate_id()?;
        connection.create_window(
            0,
            window,
            root,
            0,
            0,
            1,
            1,
            0,
            WindowClass::INPUT_ONLY,
            0,
            &CreateWindowAux::new().event_mask(EventMask::PROPERTY_CHANGE),
        )?;
        let intern = |name: &[u8]| -> Result<Atom, X11Error> {
            Ok(connection.intern_atom(false, name)?.reply()?.atom)
        };
        let atoms = Atoms {
            clipboard: intern(b"CLIPBOARD")?,
            primary: AtomEnum::PRIMARY.into(),
            targets: intern(b"TARGETS")?,
            incr: intern(b"INCR")?,
            utf8: intern(b"UTF8_STRING")?,
            text: intern(b"TEXT")?,
            text_plain_utf8: intern(b"text/plain;charset=utf-8")?,
            html: intern(b"text/html")?,
            bmp: intern(b"image/bmp")?,
            property: intern(b"RDPSERVE_CLIPBOARD")?,
        };
        let mut selections = vec![atoms.clipboard];
        if primary {
            selections.push(atoms.primary);
        }
        for &selection in &selections {
            connection.xfixes_select_selection_input(
                window,
                selection,
                xfixes::SelectionEventMask::SET_SELECTION_OWNER,
            )?;
        }
        connection.flush()?;
        // Larger data goes in pieces of this size: a quarter of the largest
        // request (xclip's choice), at most INCR_PIECE.
        let incr_chunk = (connection.maximum_request_bytes() / 4).clamp(4096, INCR_PIECE);
        let connection = Arc::new(connection);
        let (sender, receiver) = mpsc::channel();
        let events = sender.clone();
        let waiting = connection.clone();
        std::thread::Builder::new()
            .name("rdpserve-x11-clipboard-events".into())
            .spawn(move || {
                while let Ok(event) = waiting.wait_for_event() {
                    if events.send(Message::X(event)).is_err() {
                        break;
                    }
                }
            })?;
        let mut clipboard = Clipboard {
            connection,
            display: display.to_owned(),
            window,
            atoms,
            selections,
            source: None,
            clients: Vec::new(),
            offered: Vec::new(),
            owner: None,
            owned: 0,
            pending_x: Vec::new(),
            asked: Vec::new(),
            wants: VecDeque::new(),
            converting: None,
            outgoing: Vec::new(),
            incr_chunk,
        };
        std::thread::Builder::new()
            .name("rdpserve-x11-clipboard".into())
            .spawn(move || {
                loop {
                    let handled = match receiver.recv_timeout(ANSWER_TIMEOUT / 4) {
                        Ok(message) => clipboard.handle(message),
                        Err(mpsc::RecvTimeoutError::Timeout) => clipboard.expire(),
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    };
                    if let Err(error) = handled {
                        warn!(%error, "Clipboard stopped");
                        break;
                    }
                }
            })?;
        Ok(Self {
            sender: Mutex::new(sender),
        })
    }
}

impl CliprdrServerFactory for X11Clipboard {
    fn build_cliprdr_backend(&self) -> Box<dyn CliprdrBackend> {
        let sender = self
            .sender
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        Box::new(Backend { sender })
    }
}

/// One connection's side: forwards to the clipboard thread.
struct Backend {
    sender: mpsc::Sender<Message>,
}

impl CliprdrBackend for Backend {
    fn on_ready(&mut self, clipboard: &ClipboardHandle) {
        let _ = self.sender.send(Message::Ready(clipboard.clone()));
    }

    fn on_remote_copy(&mut self, formats: &[ClipboardFormat], clipboard: &ClipboardHandle) {
        let mut kinds: Vec<(Kind, u32)> = Vec::new();
        for format in formats {
            if let Some(kind) = Kind::of_client_format(format)
                && !kinds.iter().any(|(known, _)| *known == kind)
            {
                kinds.push((kind, format.id));
            }
        }
        // FreeRDP's provisional list (format id 0 only) carries nothing.
        if !kinds.is_empty() {
            let _ = self
                .sender
                .send(Message::ClientCopied(clipboard.clone(), kinds));
        }
    }

    fn on_format_data_request(&mut self, format_id: u32, clipboard: &ClipboardHandle) {
        match Kind::of_server_format(format_id) {
            Some(kind) => {
                let _ = self
                    .sender
                    .send(Message::ClientPastes(clipboard.clone(), kind));
            }
            None => clipboard.respond(None),
        }
    }

    fn on_format_data_response(&mut self, format_id: u32, data: Option<&[u8]>) {
        let _ = self
            .sender
            .send(Message::ClientData(format_id, data.map(<[u8]>::to_vec)));
    }
}

/// A conversion of an X selection the thread waits for.
enum Want {
    /// The owner's TARGETS, to offer the clients.
    Targets(Atom),
    /// A client's paste.
    Paste(ClipboardHandle, Kind),
}

struct Conversion {
    want: Want,
    /// When it was asked for, or its last INCR piece arrived.
    progress: Instant,
    /// The pieces so far, once the owner started an INCR transfer.
    incr: Option<Vec<u8>>,
}

/// Data sent in pieces to an X requestor (INCR): the next piece goes when
/// the requestor deletes the property.
struct Outgoing {
    requestor: Window,
    property: Atom,
    target: Atom,
    data: Vec<u8>,
    sent: usize,
}

struct Clipboard {
    connection: Arc<RustConnection>,
    display: String,
    window: Window,
    atoms: Atoms,
    /// CLIPBOARD, and PRIMARY when shared.
    selections: Vec<Atom>,
    /// The selection an X application changed last: what clients paste.
    source: Option<Atom>,
    clients: Vec<ClipboardHandle>,
    /// What the X owner of `source` offers.
    offered: Vec<Kind>,
    /// The client whose copy X applications paste, with its formats, while
    /// the thread owns selections.
    owner: Option<(ClipboardHandle, Vec<(Kind, u32)>)>,
    /// How many selections the thread owns.
    owned: usize,
    /// X requests waiting for the owning client's data.
    pending_x: Vec<(SelectionRequestEvent, Kind)>,
    /// Format ids asked of the owning client, not yet answered, and when.
    asked: Vec<(u32, Instant)>,
    /// Conversions to make, one at a time, oldest first.
    wants: VecDeque<Want>,
    converting: Option<Conversion>,
    outgoing: Vec<Outgoing>,
    incr_chunk: usize,
}

impl Clipboard {
    fn handle(&mut self, message: Message) -> Result<(), X11Error> {
        match message {
            Message::Ready(handle) => {
                if !self.offered.is_empty() {
                    handle.offer(self.offered.iter().map(|kind| kind.format()).collect());
                }
                self.clients.push(handle);
            }
            Message::ClientCopied(handle, kinds) => {
                debug!(?kinds, "A client copied; taking the X selections");
                self.owner = Some((handle, kinds));
                // Requests for the previous copy's data get no answer now.
                for (request, _) in std::mem::take(&mut self.pending_x) {
                    self.answer(&request, None)?;
                }
                self.asked.clear();
                for &selection in &self.selections {
                    self.connection.set_selection_owner(
                        self.window,
                        selection,
                        x11rb::CURRENT_TIME,
                    )?;
                }
                self.owned = self.selections.len();
            }
            Message::ClientPastes(handle, kind) => {
                self.wants.push_back(Want::Paste(handle, kind));
                self.next_conversion()?;
            }
            Message::ClientData(format_id, data) => {
                debug!(
                    format_id,
                    bytes = data.as_ref().map(Vec::len),
                    "A client's data arrived"
                );
                self.asked.retain(|(asked, _)| *asked != format_id);
                let kind = self.owner.as_ref().and_then(|(_, kinds)| {
                    kinds
                        .iter()
                        .find(|(_, id)| *id == format_id)
                        .map(|(kind, _)| *kind)
                });
                if let Some(kind) = kind {
                    let data = data.and_then(|data| from_rdp(kind, &data));
                    let (answered, waiting) = std::mem::take(&mut self.pending_x)
                        .into_iter()
                        .partition(|(_, wanted)| *wanted == kind);
                    self.pending_x = waiting;
                    for (request, _) in answered {
                        self.answer(&request, data.as_deref())?;
                    }
                }
            }
            Message::X(event) => self.x_event(event)?,
        }
        self.connection.flush()?;
        Ok(())
    }

    fn x_event(&mut self, event: Event) -> Result<(), X11Error> {
        match event {
            // An X application copied: it owns the data now.
            Event::XfixesSelectionNotify(notify)
                if notify.owner != self.window && notify.owner != x11rb::NONE =>
            {
                debug!(selection = notify.selection, "X selection changed");
                self.source = Some(notify.selection);
                self.wants.push_back(Want::Targets(notify.selection));
                self.next_conversion()?;
            }
            Event::SelectionRequest(request) => self.x_request(request)?,
            Event::SelectionClear(_) => {
                self.owned = self.owned.saturating_sub(1);
                if self.owned == 0 {
                    self.owner = None;
                }
            }
            Event::SelectionNotify(notify) if notify.requestor == self.window => {
                self.converted(notify)?;
            }
            Event::PropertyNotify(notify) => {
                if notify.window == self.window
                    && notify.atom == self.atoms.property
                    && notify.state == Property::NEW_VALUE
                {
                    self.incr_piece()?;
                } else if notify.state == Property::DELETE {
                    self.send_piece(notify.window, notify.atom)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Gives up on answers that did not come in time: a conversion (the X
    /// owner's) and the X requests waiting for a client's data.
    fn expire(&mut self) -> Result<(), X11Error> {
        let now = Instant::now();
        if let Some(conversion) = self
            .converting
            .take_if(|conversion| now - conversion.progress > ANSWER_TIMEOUT)
        {
            warn!(
                display = self.display,
                "The X selection owner did not answer"
            );
            self.finish_conversion(conversion.want, None);
            self.next_conversion()?;
        }
        let (late, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.asked)
            .into_iter()
            .partition(|(_, asked)| now - *asked > ANSWER_TIMEOUT);
        self.asked = waiting;
        for (format_id, _) in late {
            warn!(format_id, "A client did not send the data it copied");
            let kind = self.owner.as_ref().and_then(|(_, kinds)| {
                kinds
                    .iter()
                    .find(|(_, id)| *id == format_id)
                    .map(|(kind, _)| *kind)
            });
            let (refused, kept) = std::mem::take(&mut self.pending_x)
                .into_iter()
                .partition(|(_, wanted)| Some(*wanted) == kind);
            self.pending_x = kept;
            for (request, _) in refused {
                self.answer(&request, None)?;
            }
        }
        self.connection.flush()?;
        Ok(())
    }

    /// Starts the next conversion unless one is under way.
    fn next_conversion(&mut self) -> Result<(), X11Error> {
        if self.converting.is_some() {
            return Ok(());
        }
        let Some(want) = self.wants.pop_front() else {
            return Ok(());
        };
        let (selection, target) = match &want {
            Want::Targets(selection) => (*selection, self.atoms.targets),
            Want::Paste(_, kind) => match self.source {
                Some(source) => (source, self.atoms.target(*kind)),
                None => {
                    Self::finish(want, None);
                    return self.next_conversion();
                }
            },
        };
        self.connection.convert_selection(
            self.window,
            selection,
            target,
            self.atoms.property,
            x11rb::CURRENT_TIME,
        )?;
        self.converting = Some(Conversion {
            want,
            progress: Instant::now(),
            incr: None,
        });
        Ok(())
    }

    /// The owner answered a conversion: the data is in the property, or an
    /// INCR transfer starts.
    fn converted(&mut self, notify: SelectionNotifyEvent) -> Result<(), X11Error> {
        let Some(conversion) = self.converting.take() else {
            return Ok(());
        };
        if notify.property == x11rb::NONE {
            self.finish_conversion(conversion.want, None);
            return self.next_conversion();
        }
        let reply = self.read_property()?;
        if reply.type_ == self.atoms.incr {
            // Deleting the property (done by reading it) starts the
            // transfer; each piece arrives as a new value.
            debug!(display = self.display, "INCR transfer started");
            self.converting = Some(Conversion {
                want: conversion.want,
                progress: Instant::now(),
                incr: Some(Vec::new()),
            });
            return Ok(());
        }
        self.finish_conversion(conversion.want, Some((reply.type_, reply.value)));
        self.next_conversion()
    }

    /// A piece of an INCR transfer arrived; an empty one ends it.
    fn incr_piece(&mut self) -> Result<(), X11Error> {
        let Some(Conversion {
            incr: Some(buffer),
            progress,
            ..
        }) = &mut self.converting
        else {
            return Ok(());
        };
        *progress = Instant::now();
        let reply = self
            .connection
            .get_property(
                true,
                self.window,
                self.atoms.property,
                AtomEnum::ANY,
                0,
                u32::MAX / 4,
            )?
            .reply()?;
        if !reply.value.is_empty() {
            buffer.extend_from_slice(&reply.value);
            return Ok(());
        }
        let Some(conversion) = self.converting.take() else {
            return Ok(());
        };
        let data = conversion.incr.unwrap_or_default();
        debug!(
            display = self.display,
            bytes = data.len(),
            "INCR transfer received"
        );
        self.finish_conversion(conversion.want, Some((reply.type_, data)));
        self.next_conversion()
    }

    fn read_property(&self) -> Result<xproto::GetPropertyReply, X11Error> {
        Ok(self
            .connection
            .get_property(
                true,
                self.window,
                self.atoms.property,
                AtomEnum::ANY,
                0,
                u32::MAX / 4,
            )?
            .reply()?)
    }

    /// Acts on a finished conversion: `data` is (type, bytes), `None` when
    /// the owner refused.
    fn finish_conversion(&mut self, want: Want, data: Option<(Atom, Vec<u8>)>) {
        match want {
            Want::Targets(selection) => {
                if Some(selection) != self.source {
                    return;
                }
                let mut kinds = Vec::new();
                match data {
                    Some((_, bytes)) => {
                        for target in bytes
                            .chunks_exact(4)
                            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                        {
                            if let Some(kind) = self.atoms.kind(target)
                                && !kinds.contains(&kind)
                            {
                                kinds.push(kind);
                            }
                        }
                    }
                    // An owner without TARGETS: text is worth a try.
                    None => kinds.push(Kind::Text),
                }
                debug!(?kinds, "Offering the X selection to the clients");
                self.offered = kinds;
                let formats: Vec<ClipboardFormat> =
                    self.offered.iter().map(|kind| kind.format()).collect();
                for client in &self.clients {
                    client.offer(formats.clone());
                }
            }
            want @ Want::Paste(..) => Self::finish(want, data),
        }
    }

    /// Answers a client's paste with the X data converted to its format.
    fn finish(want: Want, data: Option<(Atom, Vec<u8>)>) {
        let Want::Paste(client, kind) = want else {
            return;
        };
        client.respond(data.and_then(|(_, bytes)| to_rdp(kind, &bytes)));
    }

    /// An X application asks for the client's data (or its targets).
    fn x_request(&mut self, request: SelectionRequestEvent) -> Result<(), X11Error> {
        let Some((owner, kinds)) = &self.owner else {
            return self.answer(&request, None);
        };
        if request.target == self.atoms.targets {
            let mut targets = vec![self.atoms.targets];
            for (kind, _) in kinds {
                targets.extend(self.atoms.targets(*kind));
            }
            let property = reply_property(&request);
            self.connection.change_property32(
                PropMode::REPLACE,
                request.requestor,
                property,
                AtomEnum::ATOM,
                &targets,
            )?;
            return self.notify(&request, property);
        }
        let wanted = self.atoms.kind(request.target).and_then(|kind| {
            kinds
                .iter()
                .find(|(offered, _)| *offered == kind)
                .map(|(kind, id)| (*kind, *id))
        });
        let Some((kind, format_id)) = wanted else {
            return self.answer(&request, None);
        };
        if !self.asked.iter().any(|(asked, _)| *asked == format_id) {
            debug!(format_id, "An X application pastes; asking the client");
            self.asked.push((format_id, Instant::now()));
            owner.request(format_id);
        }
        self.pending_x.push((request, kind));
        Ok(())
    }

    /// Answers an X application's request with `data` (refused when there
    /// is none), in pieces when it is large.
    fn answer(
        &mut self,
        request: &SelectionRequestEvent,
        data: Option<&[u8]>,
    ) -> Result<(), X11Error> {
        let property = reply_property(request);
        let Some(data) = data else {
            return self.notify(request, x11rb::NONE);
        };
        if data.len() > self.incr_chunk {
            // The requestor's property deletions pace the pieces.
            self.connection.change_window_attributes(
                request.requestor,
                &ChangeWindowAttributesAux::new().event_mask(EventMask::PROPERTY_CHANGE),
            )?;
            let size = u32::try_from(data.len()).unwrap_or(u32::MAX);
            self.connection.change_property32(
                PropMode::REPLACE,
                request.requestor,
                property,
                self.atoms.incr,
                &[size],
            )?;
            self.outgoing.push(Outgoing {
                requestor: request.requestor,
                property,
                target: request.target,
                data: data.to_vec(),
                sent: 0,
            });
            debug!(
                display = self.display,
                bytes = data.len(),
                "INCR transfer offered"
            );
        } else {
            self.connection.change_property8(
                PropMode::REPLACE,
                request.requestor,
                property,
                request.target,
                data,
            )?;
        }
        self.notify(request, property)
    }

    /// The requestor of an INCR transfer deleted the property: the next
    /// piece, or the empty one that ends it.
    fn send_piece(&mut self, requestor: Window, property: Atom) -> Result<(), X11Error> {
        let Some(index) = self
            .outgoing
            .iter()
            .position(|out| out.requestor == requestor && out.property == property)
        else {
            return Ok(());
        };
        let out = &mut self.outgoing[index];
        let end = (out.sent + self.incr_chunk).min(out.data.len());
        self.connection.change_property8(
            PropMode::REPLACE,
            requestor,
            property,
            out.target,
            &out.data[out.sent..end],
        )?;
        if out.sent == end {
            debug!(
                display = self.display,
                bytes = out.data.len(),
                "INCR transfer sent"
            );
            self.outgoing.swap_remove(index);
            // Nothing more is wanted from this window.
            self.connection.change_window_attributes(
                requestor,
                &ChangeWindowAttributesAux::new().event_mask(EventMask::NO_EVENT),
            )?;
        } else {
            out.sent = end;
        }
        Ok(())
    }

    fn notify(&self, request: &SelectionRequestEvent, property: Atom) -> Result<(), X11Error> {
        let notify = SelectionNotifyEvent {
            response_type: xproto::SELECTION_NOTIFY_EVENT,
            sequence: 0,
            time: request.time,
            requestor: request.requestor,
            selection: request.selection,
            target: request.target,
            property,
        };
        self.connection
            .send_event(false, request.requestor, EventMask::NO_EVENT, notify)?;
        Ok(())
    }
}

/// The property to answer in (ICCCM: `None` from an obsolete requestor
/// means the target's name).
fn reply_property(request: &SelectionRequestEvent) -> Atom {
    if request.property == x11rb::NONE {
        request.target
    } else {
        request.property
    }
}

/// X data of `kind` as the client's format.
fn to_rdp(kind: Kind, bytes: &[u8]) -> Option<Vec<u8>> {
    match kind {
        Kind::Text => Some(unicode_text(&String::from_utf8_lossy(bytes))),
        Kind::Html => Some(html(&String::from_utf8_lossy(bytes))),
        Kind::Image => dib_from_bmp(bytes).map(<[u8]>::to_vec),
    }
}

/// The client's data of `kind` as X data.
fn from_rdp(kind: Kind, data: &[u8]) -> Option<Vec<u8>> {
    match kind {
        Kind::Text => text_from_unicode(data).map(String::into_bytes),
        Kind::Html => html_fragment(data).map(String::into_bytes),
        Kind::Image => bmp_from_dib(data),
    }
}

/// The DIB inside a BMP file: what follows its 14-byte file header.
fn dib_from_bmp(bmp: &[u8]) -> Option<&[u8]> {
    if bmp.len() <= BMP_FILE_HEADER || !bmp.starts_with(b"BM") {
        return None;
    }
    Some(&bmp[BMP_FILE_HEADER..])
}

/// A BMP file of CF_DIB data: the file header in front, its offset to the
/// pixels counting the info header, BI_BITFIELDS masks and colour table.
fn bmp_from_dib(dib: &[u8]) -> Option<Vec<u8>> {
    let u32_at = |at: usize| -> Option<u32> {
        dib.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let header_size = u32_at(0)? as usize;
    let bits = u16::from_le_bytes([*dib.get(14)?, *dib.get(15)?]);
    let compression = u32_at(16)?;
    let colors_used = u32_at(32)? as usize;
    if header_size < 40 || header_size > dib.len() {
        return None;
    }
    // BI_BITFIELDS: three masks follow a BITMAPINFOHEADER (later headers
    // hold them inside).
    let masks = if compression == 3 && header_size == 40 {
        12
    } else {
        0
    };
    let colors = match (colors_used, bits) {
        (0, 1..=8) => 1usize << bits,
        (used, _) => used,
    };
    let offset = BMP_FILE_HEADER
        .checked_add(header_size)?
        .checked_add(masks)?
        .checked_add(colors.checked_mul(4)?)?;
    let size = u32::try_from(BMP_FILE_HEADER + dib.len()).ok()?;
    let mut bmp = Vec::with_capacity(BMP_FILE_HEADER + dib.len());
    bmp.extend_from_slice(b"BM");
    bmp.extend_from_slice(&size.to_le_bytes());
    bmp.extend_from_slice(&[0; 4]);
    bmp.extend_from_slice(&u32::try_from(offset).ok()?.to_le_bytes());
    bmp.extend_from_slice(dib);
    Some(bmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dib_becomes_a_bmp_and_back() {
        // X as pixels_from_dib reads it back: opaque.
        let pixels = [1u8, 2, 3, 0xff, 4, 5, 6, 0xff];
        let dib = rdpserve_tokio::dib(2, 1, 8, &pixels).expect("dib");
        let bmp = bmp_from_dib(&dib).expect("bmp");
        assert_eq!(&bmp[..2], b"BM");
        assert_eq!(
            u32::from_le_bytes([bmp[2], bmp[3], bmp[4], bmp[5]]) as usize,
            bmp.len()
        );
        assert_eq!(u32::from_le_bytes([bmp[10], bmp[11], bmp[12], bmp[13]]), 54);
        assert_eq!(dib_from_bmp(&bmp), Some(&dib[..]));
        let (width, height, back) = rdpserve_tokio::pixels_from_dib(&dib).expect("pixels");
        assert_eq!((width, height, back), (2, 1, pixels.to_vec()));
    }

    #[test]
    fn bad_images_are_refused() {
        assert_eq!(dib_from_bmp(b"BM"), None);
        assert_eq!(dib_from_bmp(b"PNG............."), None);
        assert_eq!(bmp_from_dib(&[40, 0, 0]), None);
        // A header size past the data.
        let mut dib = vec![0u8; 40];
        dib[0] = 200;
        assert_eq!(bmp_from_dib(&dib), None);
    }

    #[test]
    fn an_8_bit_dib_counts_its_colour_table() {
        let mut dib = vec![0u8; 40 + 256 * 4 + 4];
        dib[0] = 40;
        dib[14] = 8;
        let bmp = bmp_from_dib(&dib).expect("bmp");
        assert_eq!(
            u32::from_le_bytes([bmp[10], bmp[11], bmp[12], bmp[13]]),
            14 + 40 + 1024
        );
    }

    #[test]
    fn client_formats_map_to_kinds() {
        let html = ClipboardFormat::registered(0xC123, "HTML Format");
        assert_eq!(Kind::of_client_format(&html), Some(Kind::Html));
        assert_eq!(
            Kind::of_client_format(&ClipboardFormat::standard(13)),
            Some(Kind::Text)
        );
        assert_eq!(
            Kind::of_client_format(&ClipboardFormat::standard(8)),
            Some(Kind::Image)
        );
        assert_eq!(Kind::of_client_format(&ClipboardFormat::standard(0)), None);
        assert_eq!(Kind::of_server_format(HTML_FORMAT_ID), Some(Kind::Html));
    }
}
