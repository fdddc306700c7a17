//! Text between the X CLIPBOARD selection and the RDP clients' clipboards.
//!
//! One thread owns an X connection and a hidden window and serves every
//! connection's backend through a channel; a second thread only waits for
//! X events and forwards them into the same channel, so neither polls.
//!
//! - An X application copies: XFixes reports the new owner, and every
//!   client is offered CF_UNICODETEXT. A client pasting makes the thread
//!   convert the selection to UTF8_STRING and answer with the text.
//! - A client copies: the thread takes the X CLIPBOARD. An X application
//!   pasting makes it ask that client for CF_UNICODETEXT and answer the
//!   X request with the text as UTF8_STRING (or STRING).
//!
//! Text only, in one property (no INCR transfers, no HTML or images).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, mpsc};

use rdpserve_tokio::{
    ClipboardFormat, ClipboardHandle, CliprdrBackend, CliprdrServerFactory, clipboard_format,
    text_from_unicode, unicode_text,
};
use tracing::{debug, warn};
use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::xfixes::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{
    self, Atom, AtomEnum, ConnectionExt as _, CreateWindowAux, EventMask, PropMode,
    SelectionNotifyEvent, SelectionRequestEvent, Window, WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

use crate::{X11Error, connect, require_extension};

/// What the clipboard thread is told.
enum Message {
    X(Event),
    /// A client is ready: it is offered what X holds from now on.
    Ready(ClipboardHandle),
    /// A client copied text: X applications get it from that client.
    ClientCopied(ClipboardHandle),
    /// A client pastes: it is answered with the X clipboard's text.
    ClientPastes(ClipboardHandle),
    /// The text a client sent for a pending X request.
    ClientData(Option<Vec<u8>>),
}

struct Atoms {
    clipboard: Atom,
    targets: Atom,
    utf8: Atom,
    property: Atom,
}

/// The clipboard factory for `RdpServerBuilder::with_cliprdr_factory`.
pub struct X11Clipboard {
    sender: Mutex<mpsc::Sender<Message>>,
}

impl X11Clipboard {
    /// Opens a connection to `display` and starts the clipboard threads.
    pub(crate) fn start(display: &str) -> Result<Self, X11Error> {
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
            targets: intern(b"TARGETS")?,
            utf8: intern(b"UTF8_STRING")?,
            property: intern(b"RDPSERVE_CLIPBOARD")?,
        };
        connection.xfixes_select_selection_input(
            window,
            atoms.clipboard,
            xfixes::SelectionEventMask::SET_SELECTION_OWNER,
        )?;
        connection.flush()?;
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
            window,
            atoms,
            clients: Vec::new(),
            owner: None,
            pending_x: VecDeque::new(),
            pasting: VecDeque::new(),
        };
        std::thread::Builder::new()
            .name("rdpserve-x11-clipboard".into())
            .spawn(move || {
                for message in receiver {
                    if let Err(error) = clipboard.handle(message) {
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
        if formats
            .iter()
            .any(|format| format.id == clipboard_format::CF_UNICODETEXT)
        {
            let _ = self.sender.send(Message::ClientCopied(clipboard.clone()));
        }
    }

    fn on_format_data_request(&mut self, format_id: u32, clipboard: &ClipboardHandle) {
        if format_id == clipboard_format::CF_UNICODETEXT {
            let _ = self.sender.send(Message::ClientPastes(clipboard.clone()));
        } else {
            clipboard.respond(None);
        }
    }

    fn on_format_data_response(&mut self, format_id: u32, data: Option<&[u8]>) {
        let data = (format_id == clipboard_format::CF_UNICODETEXT)
            .then(|| data.map(<[u8]>::to_vec))
            .flatten();
        let _ = self.sender.send(Message::ClientData(data));
    }
}

struct Clipboard {
    connection: Arc<RustConnection>,
    window: Window,
    atoms: Atoms,
    clients: Vec<ClipboardHandle>,
    /// The client whose copy X applications paste, while we own CLIPBOARD.
    owner: Option<ClipboardHandle>,
    /// X requests waiting for the owning client's text.
    pending_x: VecDeque<SelectionRequestEvent>,
    /// Clients waiting for the X clipboard's text, oldest first.
    pasting: VecDeque<ClipboardHandle>,
}

impl Clipboard {
    fn handle(&mut self, message: Message) -> Result<(), X11Error> {
        match message {
            Message::Ready(handle) => self.clients.push(handle),
            Message::ClientCopied(handle) => {
                self.owner = Some(handle);
                self.connection.set_selection_owner(
                    self.window,
                    self.atoms.clipboard,
                    x11rb::CURRENT_TIME,
                )?;
            }
            Message::ClientPastes(handle) => {
                self.pasting.push_back(handle);
                self.connection.convert_selection(
                    self.window,
                    self.atoms.clipboard,
                    self.atoms.utf8,
                    self.atoms.property,
                    x11rb::CURRENT_TIME,
                )?;
            }
            Message::ClientData(data) => {
                let text = data.as_deref().and_then(text_from_unicode);
                while let Some(request) = self.pending_x.pop_front() {
                    self.answer(&request, text.as_deref())?;
                }
            }
            Message::X(event) => self.x_event(event)?,
        }
        self.connection.flush()?;
        Ok(())
    }

    fn x_event(&mut self, event: Event) -> Result<(), X11Error> {
        match event {
            Event::XfixesSelectionNotify(notify) if notify.owner != self.window => {
                // An X application copied: it owns the text now.
                self.owner = None;
                if notify.owner != x11rb::NONE {
                    debug!("X clipboard changed, offering it to the clients");
                    self.clients.retain(|client| {
                        client.offer(vec![ClipboardFormat::standard(
                            clipboard_format::CF_UNICODETEXT,
                        )]);
                        true
                    });
                }
            }
            Event::SelectionRequest(request) => match &self.owner {
                Some(owner) if request.target != self.atoms.targets => {
                    if self.pending_x.is_empty() {
                        owner.request(clipboard_format::CF_UNICODETEXT);
                    }
                    self.pending_x.push_back(request);
                }
                _ => self.answer(&request, None)?,
            },
            Event::SelectionClear(_) => self.owner = None,
            Event::SelectionNotify(notify) => {
                let text = if notify.property == x11rb::NONE {
                    None
                } else {
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
                    let is_text = reply.type_ == self.atoms.utf8
                        || reply.type_ == u32::from(AtomEnum::STRING);
                    is_text.then(|| String::from_utf8_lossy(&reply.value).into_owned())
                };
                if let Some(client) = self.pasting.pop_front() {
                    client.respond(text.as_deref().map(unicode_text));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Answers an X application's request: the target list, or `text`
    /// (refused when there is none or the target is not text).
    fn answer(&self, request: &SelectionRequestEvent, text: Option<&str>) -> Result<(), X11Error> {
        let property = if request.property == x11rb::NONE {
            request.target
        } else {
            request.property
        };
        let string = u32::from(AtomEnum::STRING);
        let stored = if request.target == self.atoms.targets {
            let targets = [self.atoms.targets, self.atoms.utf8, string];
            self.connection.change_property32(
                PropMode::REPLACE,
                request.requestor,
                property,
                AtomEnum::ATOM,
                &targets,
            )?;
            true
        } else if let Some(text) = text
            && (request.target == self.atoms.utf8 || request.target == string)
        {
            self.connection.change_property8(
                PropMode::REPLACE,
                request.requestor,
                property,
                request.target,
                text.as_bytes(),
            )?;
            true
        } else {
            false
        };
        let notify = SelectionNotifyEvent {
            response_type: xproto::SELECTION_NOTIFY_EVENT,
            sequence: 0,
            time: request.time,
            requestor: request.requestor,
            selection: request.selection,
            target: request.target,
            property: if stored { property } else { x11rb::NONE },
        };
        self.connection
            .send_event(false, request.requestor, EventMask::NO_EVENT, notify)?;
        Ok(())
    }
}
