//! The application's own virtual channels: static channels
//! (`with_static_channel`) and dynamic ones (`with_dynamic_channel`), each
//! served per connection by a [`ChannelHandler`] that the channel's
//! [`ChannelFactory`] builds once the channel is open, with a
//! [`ChannelHandle`] that sends from any thread through the connection's
//! mailbox. What happens when is said on [`ChannelHandler`].

use std::cell::Cell;
use std::sync::{Arc, Mutex, PoisonError};

use event_listener::{Event as Notify, Listener as _};
use rdpserve_core::{CommandError, Engine, Error, Event};
use tracing::{debug, warn};

use crate::echo::ConnectionId;
use crate::mailbox::Mailbox;

/// How the server serves one application channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelOptions {
    /// Dynamic channels only: the priority of the Create Request, from 0
    /// (the default, as for the server's own channels) to 3 (MS-RDPEDYC
    /// 2.2.2.1); larger values count as 3.
    pub priority: u8,
    /// Bytes a handle's queue holds before [`ChannelHandle::send`] waits
    /// (and `try_send` refuses): the backpressure on an application that
    /// produces faster than the client reads. A message always fits an
    /// empty queue. Default [`ChannelOptions::DEFAULT_SEND_QUEUE`].
    pub send_queue: usize,
}

impl ChannelOptions {
    pub const DEFAULT_SEND_QUEUE: usize = 1024 * 1024;

    pub fn with_priority(mut self, priority: u8) -> Self {
        self.priority = priority.min(3);
        self
    }

    pub fn with_send_queue(mut self, bytes: usize) -> Self {
        self.send_queue = bytes;
        self
    }
}

impl Default for ChannelOptions {
    fn default() -> Self {
        Self {
            priority: 0,
            send_queue: Self::DEFAULT_SEND_QUEUE,
        }
    }
}

/// Makes one [`ChannelHandler`] per connection whose client opens the
/// channel. A closure `Fn(ConnectionId) -> H` is a factory:
///
/// ```
/// use rdpserve_server::{ChannelFactory, ChannelHandle, ChannelHandler, ConnectionId};
///
/// /// Sends every message back.
/// struct Echo;
///
/// impl ChannelHandler for Echo {
///     fn on_message(&mut self, message: Vec<u8>, channel: &ChannelHandle) {
///         // From a callback this returns at once; it fails only if the
///         // channel closed.
///         let _ = channel.send(message);
///     }
/// }
///
/// fn takes(_: impl ChannelFactory) {}
/// takes(|_connection: ConnectionId| Echo);
/// ```
///
/// `RdpServerBuilder::with_static_channel("ECHOAPP", ChannelOptions::default(),
/// |_: ConnectionId| Echo)` then serves it.
pub trait ChannelFactory: Send + Sync + 'static {
    /// The channel opened on `connection`.
    fn build(&self, connection: ConnectionId) -> Box<dyn ChannelHandler>;

    /// The client of `connection` does not have the channel: it did not
    /// join the static channel, has no dynamic channel host, or refused
    /// the dynamic channel. Nothing is built for that connection.
    fn unavailable(&self, connection: ConnectionId) {
        let _ = connection;
    }
}

impl<F, H> ChannelFactory for F
where
    F: Fn(ConnectionId) -> H + Send + Sync + 'static,
    H: ChannelHandler,
{
    fn build(&self, connection: ConnectionId) -> Box<dyn ChannelHandler> {
        Box::new(self(connection))
    }
}

/// One connection's side of an application channel. Its methods run on
/// the runtime's blocking threads, one at a time and in order: a method may
/// block, which holds this connection (its frames and input wait) but no
/// other. The handle they get sends on this channel; clone it to send
/// later from any thread.
///
/// What happens when:
///
/// - **The client lacks the channel.** A static channel the client did not
///   join (clients join only the channels they were set up with), a
///   client without the dynamic channel host ("drdynvc"), or a Create
///   Request the client refuses (no listener of that name): no handler is
///   built for that connection, and the factory's
///   [`unavailable`](ChannelFactory::unavailable) is called. The session
///   goes on.
/// - **It opens.** A static channel opens when the session becomes active;
///   a dynamic one when the client accepts the Create Request the server
///   sends at activation. The factory builds the handler, and
///   [`on_open`](Self::on_open) gets the handle.
/// - **It closes.** The client closed the dynamic channel
///   ([`ChannelCloseReason::ClientClosed`]), the application did
///   ([`ChannelHandle::close`]), the client sent something malformed or
///   oversized on it ([`ChannelCloseReason::Broken`]; the session goes
///   on), or the connection ended. The handler hears it once, in
///   [`on_close`](Self::on_close); from then on every handle of the
///   channel returns [`ChannelError::Closed`], and senders waiting for
///   room wake up with it. A closed channel does not reopen on the same
///   connection. Static channels have no close on the wire: closing one
///   makes the server stop serving it on that connection.
/// - **Sizes.** A message is any number of bytes up to
///   `Config::max_channel_message` (1 MiB by default; the builder's
///   `with_max_channel_message`), in both directions: the engine refuses
///   a larger one from the client (closing the channel, `Broken`) and the
///   handle refuses a larger one from the application
///   ([`ChannelError::TooLarge`]). The engine cuts messages into chunks
///   of the size the client announced for static channels (1600 bytes
///   unless its Virtual Channel capability says otherwise) and into DVC
///   Data PDUs of at most 1600 bytes, and reassembles the client's within
///   the same cap and the session's channel memory budget.
pub trait ChannelHandler: Send + 'static {
    /// The channel is open.
    fn on_open(&mut self, channel: &ChannelHandle) {
        let _ = channel;
    }

    /// One whole message from the client, reassembled from its chunks.
    fn on_message(&mut self, message: Vec<u8>, channel: &ChannelHandle);

    /// The channel closed (see [`ChannelCloseReason`]); nothing more
    /// arrives and its handles refuse to send.
    fn on_close(&mut self, reason: ChannelCloseReason) {
        let _ = reason;
    }
}

/// Why an application channel closed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelCloseReason {
    /// The client closed the dynamic channel.
    ClientClosed,
    /// The application closed it ([`ChannelHandle::close`]).
    ServerClosed,
    /// The client sent a malformed or oversized message on it (or on the
    /// dynamic channel host that carries it): the server stopped serving
    /// it, and the session goes on without it.
    Broken(Error),
    /// The connection ended.
    ConnectionClosed,
}

/// Why a [`ChannelHandle`] did not take a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// The channel or its connection is closed.
    #[error("the channel is closed")]
    Closed,
    /// Larger than a channel message may be (`Config::max_channel_message`).
    #[error("message of {len} bytes over the {max} a channel message may carry")]
    TooLarge { len: usize, max: usize },
    /// `try_send` only: the queue holds `queued` bytes the connection has
    /// not taken yet, and this message does not fit beside them.
    #[error("send queue full: {queued} bytes wait")]
    QueueFull { queued: usize },
}

/// An application channel the builder registered: what every connection
/// serves.
pub(crate) struct ChannelSpec {
    pub name: String,
    pub dynamic: bool,
    pub options: ChannelOptions,
    pub factory: Arc<dyn ChannelFactory>,
}

/// Checks the names of the application's channels: static names fit a
/// CHANNEL_DEF (seven ANSI characters and a NUL, MS-RDPBCGR 2.2.1.3.4.1),
/// dynamic names fit a Create Request in one chunk, and no name is taken
/// twice or by a channel the server serves itself (`clipboard` and `sound`
/// say whether cliprdr and rdpsnd are served).
pub(crate) fn check_names(
    specs: &[Arc<ChannelSpec>],
    clipboard: bool,
    sound: bool,
) -> Result<(), (String, &'static str)> {
    for (index, spec) in specs.iter().enumerate() {
        let name = spec.name.as_str();
        let refuse = |reason| Err((name.to_owned(), reason));
        if name.is_empty() || !name.bytes().all(|byte| byte.is_ascii_graphic()) {
            return refuse("a channel name is printable ascii without spaces");
        }
        let taken = specs[..index].iter().any(|earlier| {
            earlier.dynamic == spec.dynamic && earlier.name.eq_ignore_ascii_case(name)
        });
        if taken {
            return refuse("registered twice");
        }
        if spec.dynamic {
            // Create Request: a header byte, a channel id of up to 4
            // bytes, the name and its NUL, in one 1600-byte chunk.
            if name.len() > 1600 - 6 {
                return refuse("a dynamic channel name fits 1594 bytes");
            }
            if name == "ECHO" || name == "Microsoft::Windows::RDS::DisplayControl" {
                return refuse("the server opens this dynamic channel itself");
            }
        } else {
            if name.len() > 7 {
                return refuse("a static channel name has at most 7 characters");
            }
            let served = name.eq_ignore_ascii_case("drdynvc")
                || (clipboard && name.eq_ignore_ascii_case("cliprdr"))
                || (sound && name.eq_ignore_ascii_case("rdpsnd"));
            if served {
                return refuse("the server serves this static channel itself");
            }
        }
    }
    Ok(())
}

/// What a handle asks the connection to do.
enum Outgoing {
    Send(Vec<u8>),
    Close,
}

/// One open channel's queue, shared by its handles and the connection.
struct Outbox {
    name: String,
    connection: ConnectionId,
    dynamic: bool,
    /// Which of the connection's channels this is.
    slot: usize,
    max_message: usize,
    capacity: usize,
    queue: Mutex<Queue>,
    /// Notified when bytes leave the queue or the channel closes.
    space: Notify,
    mailbox: Mailbox<(Arc<Outbox>, Outgoing)>,
}

#[derive(Default)]
struct Queue {
    /// Bytes handed to the mailbox and not yet taken by the connection.
    queued: usize,
    closed: bool,
}

thread_local! {
    /// Set while a handler's callback runs on this thread: a connection
    /// task that waited for room in a queue could never drain it.
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

/// Runs a handler callback with `IN_CALLBACK` set.
fn in_callback<T>(callback: impl FnOnce() -> T) -> T {
    let outer = IN_CALLBACK.with(|flag| flag.replace(true));
    let result = callback();
    IN_CALLBACK.with(|flag| flag.set(outer));
    result
}

impl Outbox {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes room for `len` bytes, or says why not.
    fn reserve(&self, len: usize) -> Result<(), ChannelError> {
        if len > self.max_message {
            return Err(ChannelError::TooLarge {
                len,
                max: self.max_message,
            });
        }
        let mut queue = self.queue();
        if queue.closed {
            return Err(ChannelError::Closed);
        }
        // From a callback the queue is never full: the connection is
        // waiting for the callback and drains the queue right after.
        let full = queue.queued > 0 && queue.queued + len > self.capacity;
        if full && !IN_CALLBACK.with(Cell::get) {
            return Err(ChannelError::QueueFull {
                queued: queue.queued,
            });
        }
        queue.queued += len;
        Ok(())
    }

    fn release(&self, len: usize) {
        let mut queue = self.queue();
        queue.queued = queue.queued.saturating_sub(len);
        drop(queue);
        self.space.notify(usize::MAX);
    }

    fn close(&self) {
        self.queue().closed = true;
        self.space.notify(usize::MAX);
    }
}

/// Sends on one application channel of one connection. Clone it freely and
/// use it from any thread; messages leave in the order they were queued.
///
/// `send` waits while the queue is full, so call it from the application's
/// own threads; in async code use `send_async`, and where waiting is not
/// an option `try_send`. Inside a handler's callbacks every form returns at
/// once (the queue does not count as full there). Once the channel or its
/// connection is closed, every form returns [`ChannelError::Closed`], and
/// senders waiting for room wake up with it.
#[derive(Clone)]
pub struct ChannelHandle {
    outbox: Arc<Outbox>,
}

impl std::fmt::Debug for ChannelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelHandle")
            .field("name", &self.outbox.name)
            .field("connection", &self.outbox.connection)
            .field("dynamic", &self.outbox.dynamic)
            .finish()
    }
}

impl ChannelHandle {
    /// The channel's name, as registered.
    pub fn name(&self) -> &str {
        &self.outbox.name
    }

    pub fn connection(&self) -> ConnectionId {
        self.outbox.connection
    }

    pub fn is_dynamic(&self) -> bool {
        self.outbox.dynamic
    }

    /// Whether the channel is still open (a send may still fail if it
    /// closes meanwhile).
    pub fn is_open(&self) -> bool {
        !self.outbox.queue().closed
    }

    /// The largest message `send` takes.
    pub fn max_message(&self) -> usize {
        self.outbox.max_message
    }

    /// Bytes queued and not yet taken by the connection.
    pub fn queued(&self) -> usize {
        self.outbox.queue().queued
    }

    /// Queues `message` without waiting.
    pub fn try_send(&self, message: Vec<u8>) -> Result<(), ChannelError> {
        self.outbox.reserve(message.len())?;
        self.push(Outgoing::Send(message));
        Ok(())
    }

    /// Queues `message`, blocking the calling thread while the queue is
    /// full; returns `Closed` as soon as the channel closes.
    pub fn send(&self, message: Vec<u8>) -> Result<(), ChannelError> {
        loop {
            match self.outbox.reserve(message.len()) {
                Err(ChannelError::QueueFull { .. }) => {}
                other => return other.map(|()| self.push(Outgoing::Send(message))),
            }
            let listener = self.outbox.space.listen();
            // Checked again after registering, so a release in between is
            // not missed.
            match self.outbox.reserve(message.len()) {
                Err(ChannelError::QueueFull { .. }) => listener.wait(),
                other => return other.map(|()| self.push(Outgoing::Send(message))),
            }
        }
    }

    /// `send` for async code: waits for room without blocking the thread.
    pub async fn send_async(&self, message: Vec<u8>) -> Result<(), ChannelError> {
        loop {
            match self.outbox.reserve(message.len()) {
                Err(ChannelError::QueueFull { .. }) => {}
                other => return other.map(|()| self.push(Outgoing::Send(message))),
            }
            let listener = self.outbox.space.listen();
            match self.outbox.reserve(message.len()) {
                Err(ChannelError::QueueFull { .. }) => listener.await,
                other => return other.map(|()| self.push(Outgoing::Send(message))),
            }
        }
    }

    /// Closes the channel after the messages queued before: a dynamic
    /// channel with a DYNVC_CLOSE; a static one, which RDP cannot close,
    /// by no longer serving it on this connection. The handler's
    /// `on_close` follows with [`ChannelCloseReason::ServerClosed`].
    pub fn close(&self) {
        if self.is_open() {
            self.push(Outgoing::Close);
        }
    }

    fn push(&self, outgoing: Outgoing) {
        self.outbox.mailbox.push((self.outbox.clone(), outgoing));
    }
}

/// What the application channels need from the engine (an engine double
/// in the tests).
pub(crate) trait ChannelEngine {
    fn serves_static_channel(&self, name: &str) -> bool;
    fn open_dynamic_channel(&mut self, name: &str, priority: u8) -> Result<u32, CommandError>;
    fn send_channel_data(&mut self, name: &str, data: &[u8]) -> Result<(), CommandError>;
    fn send_dynamic_channel_data(&mut self, id: u32, data: &[u8]) -> Result<(), CommandError>;
    fn close_dynamic_channel(&mut self, id: u32) -> Result<(), CommandError>;
}

impl ChannelEngine for Engine {
    fn serves_static_channel(&self, name: &str) -> bool {
        Engine::serves_static_channel(self, name)
    }

    fn open_dynamic_channel(&mut self, name: &str, priority: u8) -> Result<u32, CommandError> {
        Engine::open_dynamic_channel(self, name, priority)
    }

    fn send_channel_data(&mut self, name: &str, data: &[u8]) -> Result<(), CommandError> {
        Engine::send_channel_data(self, name, data)
    }

    fn send_dynamic_channel_data(&mut self, id: u32, data: &[u8]) -> Result<(), CommandError> {
        Engine::send_dynamic_channel_data(self, id, data)
    }

    fn close_dynamic_channel(&mut self, id: u32) -> Result<(), CommandError> {
        Engine::close_dynamic_channel(self, id)
    }
}

enum State {
    /// Until the session is active.
    Waiting,
    /// The Create Request for this dynamic channel id is out.
    Opening(u32),
    Open {
        handler: Box<dyn ChannelHandler>,
        handle: ChannelHandle,
        /// The dynamic channel id; `None` for a static channel.
        dynamic_id: Option<u32>,
    },
    Closed,
}

struct Slot {
    spec: Arc<ChannelSpec>,
    state: State,
}

/// Completes [`wait`](Self::wait) once a handle queued a command.
pub(crate) struct AppChannelsWakeup(Mailbox<(Arc<Outbox>, Outgoing)>);

impl AppChannelsWakeup {
    pub async fn wait(&self) {
        self.0.wait().await;
    }
}

/// One connection's application channels, driven by its task: events from
/// the engine go in, commands from the handles come out of the mailbox.
pub(crate) struct AppChannels {
    connection: ConnectionId,
    max_message: usize,
    mailbox: Mailbox<(Arc<Outbox>, Outgoing)>,
    slots: Vec<Slot>,
}

impl AppChannels {
    pub fn new(connection: ConnectionId, specs: &[Arc<ChannelSpec>], max_message: usize) -> Self {
        Self {
            connection,
            max_message,
            mailbox: Mailbox::default(),
            slots: specs
                .iter()
                .map(|spec| Slot {
                    spec: spec.clone(),
                    state: State::Waiting,
                })
                .collect(),
        }
    }

    /// What the connection's task waits on for the handles' commands
    /// (apart from `self`, whose handlers need not be `Sync`).
    pub fn wakeup(&self) -> AppChannelsWakeup {
        AppChannelsWakeup(self.mailbox.clone())
    }

    /// The session is active: static channels the client joined open, and
    /// the dynamic ones are asked for.
    pub fn activated(&mut self, engine: &mut impl ChannelEngine) {
        for index in 0..self.slots.len() {
            let spec = self.slots[index].spec.clone();
            if !spec.dynamic {
                if engine.serves_static_channel(&spec.name) {
                    self.open(index, None);
                } else {
                    debug!(channel = %spec.name, "Client did not join the channel");
                    self.unavailable(index);
                }
                continue;
            }
            match engine.open_dynamic_channel(&spec.name, spec.options.priority) {
                Ok(id) => self.slots[index].state = State::Opening(id),
                Err(error) => {
                    debug!(channel = %spec.name, %error, "Dynamic channel not opened");
                    self.unavailable(index);
                }
            }
        }
    }

    /// One of the engine's channel events.
    pub fn handle_event(&mut self, event: Event) {
        match event {
            Event::ChannelData { channel, data } => {
                let found = self.slots.iter().position(|slot| {
                    !slot.spec.dynamic && slot.spec.name.eq_ignore_ascii_case(&channel)
                });
                if let Some(index) = found {
                    self.deliver(index, data);
                }
            }
            Event::DynamicChannelOpened { id, .. } => {
                if let Some(index) = self.opening(id) {
                    self.open(index, Some(id));
                }
            }
            Event::DynamicChannelData { id, data } => {
                if let Some(index) = self.open_dynamic(id) {
                    self.deliver(index, data);
                }
            }
            Event::DynamicChannelClosed { id, error } => {
                if let Some(index) = self.opening(id) {
                    debug!(channel = %self.slots[index].spec.name, "Client refused the channel");
                    self.unavailable(index);
                } else if let Some(index) = self.open_dynamic(id) {
                    let reason = match error {
                        Some(error) => ChannelCloseReason::Broken(error),
                        None => ChannelCloseReason::ClientClosed,
                    };
                    self.close(index, reason);
                }
            }
            other => debug!(event = ?other, "Not an application channel event"),
        }
    }

    /// The engine stopped serving static channel `channel` for a malformed
    /// message: an application static channel of that name closes, and
    /// with the dynamic channel host ("drdynvc") every dynamic one.
    pub fn channel_broken(&mut self, channel: &str, error: &Error) {
        let host = channel.eq_ignore_ascii_case("drdynvc");
        for index in 0..self.slots.len() {
            let spec = &self.slots[index].spec;
            let affected = if spec.dynamic {
                host
            } else {
                spec.name.eq_ignore_ascii_case(channel)
            };
            if !affected {
                continue;
            }
            match self.slots[index].state {
                State::Opening(_) => self.unavailable(index),
                State::Open { .. } => self.close(index, ChannelCloseReason::Broken(error.clone())),
                State::Waiting | State::Closed => {}
            }
        }
    }

    /// Carries out what the handles queued.
    pub fn run_commands(&mut self, engine: &mut impl ChannelEngine) {
        for (outbox, outgoing) in self.mailbox.take_all() {
            let index = outbox.slot;
            let State::Open {
                handle, dynamic_id, ..
            } = &self.slots[index].state
            else {
                // Queued just before the channel closed.
                if let Outgoing::Send(message) = outgoing {
                    outbox.release(message.len());
                }
                continue;
            };
            // INVARIANT: a slot opens at most once, so this handle's outbox
            // is the one the command came from.
            debug_assert!(Arc::ptr_eq(&handle.outbox, &outbox));
            let dynamic_id = *dynamic_id;
            match outgoing {
                Outgoing::Send(message) => {
                    let sent = match dynamic_id {
                        Some(id) => engine.send_dynamic_channel_data(id, &message),
                        None => engine.send_channel_data(&outbox.name, &message),
                    };
                    outbox.release(message.len());
                    if let Err(error) = sent {
                        warn!(channel = %outbox.name, %error, "Channel message not sent");
                    }
                }
                Outgoing::Close => {
                    if let Some(id) = dynamic_id {
                        if let Err(error) = engine.close_dynamic_channel(id) {
                            debug!(channel = %outbox.name, %error, "Channel already closed");
                        }
                    }
                    self.close(index, ChannelCloseReason::ServerClosed);
                }
            }
        }
    }

    /// The connection ended: every open channel closes.
    pub fn shutdown(&mut self) {
        for index in 0..self.slots.len() {
            match self.slots[index].state {
                State::Open { .. } => self.close(index, ChannelCloseReason::ConnectionClosed),
                _ => self.slots[index].state = State::Closed,
            }
        }
    }

    fn opening(&self, id: u32) -> Option<usize> {
        self.slots
            .iter()
            .position(|slot| matches!(slot.state, State::Opening(opening) if opening == id))
    }

    fn open_dynamic(&self, id: u32) -> Option<usize> {
        self.slots.iter().position(
            |slot| matches!(slot.state, State::Open { dynamic_id: Some(open), .. } if open == id),
        )
    }

    fn open(&mut self, index: usize, dynamic_id: Option<u32>) {
        let spec = self.slots[index].spec.clone();
        debug!(channel = %spec.name, ?dynamic_id, "Application channel open");
        let handle = ChannelHandle {
            outbox: Arc::new(Outbox {
                name: spec.name.clone(),
                connection: self.connection,
                dynamic: spec.dynamic,
                slot: index,
                max_message: self.max_message,
                capacity: spec.options.send_queue,
                queue: Mutex::default(),
                space: Notify::new(),
                mailbox: self.mailbox.clone(),
            }),
        };
        let mut handler = in_callback(|| spec.factory.build(self.connection));
        in_callback(|| handler.on_open(&handle));
        self.slots[index].state = State::Open {
            handler,
            handle,
            dynamic_id,
        };
    }

    fn deliver(&mut self, index: usize, message: Vec<u8>) {
        if let State::Open {
            handler, handle, ..
        } = &mut self.slots[index].state
        {
            in_callback(|| handler.on_message(message, handle));
        }
    }

    fn close(&mut self, index: usize, reason: ChannelCloseReason) {
        if let State::Open {
            mut handler,
            handle,
            ..
        } = std::mem::replace(&mut self.slots[index].state, State::Closed)
        {
            debug!(channel = %handle.name(), ?reason, "Application channel closed");
            handle.outbox.close();
            in_callback(|| handler.on_close(reason));
        }
    }

    fn unavailable(&mut self, index: usize) {
        self.slots[index].state = State::Closed;
        let factory = self.slots[index].spec.factory.clone();
        in_callback(|| factory.unavailable(self.connection));
    }
}

impl Drop for AppChannels {
    /// However the connection ends, handles stop accepting and senders
    /// waiting for room wake up.
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    //! The channel machinery in memory, against an engine double: what
    //! the handlers hear, what reaches the engine, and handles used from
    //! other threads.

    use std::sync::mpsc::{Receiver, Sender, channel};
    use std::time::Duration;

    use rdpserve_core::ChannelKind;

    use super::*;

    const WAIT: Duration = Duration::from_secs(10);

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Report {
        Built(ConnectionId),
        Unavailable(ConnectionId),
        Open(String),
        Message(Vec<u8>),
        Closed(ChannelCloseReason),
    }

    /// A handler that reports everything and answers each message with
    /// its bytes reversed.
    struct Reverser {
        reports: Sender<Report>,
        handles: Sender<ChannelHandle>,
    }

    impl ChannelHandler for Reverser {
        fn on_open(&mut self, channel: &ChannelHandle) {
            let _ = self.reports.send(Report::Open(channel.name().to_owned()));
            let _ = self.handles.send(channel.clone());
        }

        fn on_message(&mut self, mut message: Vec<u8>, channel: &ChannelHandle) {
            let _ = self.reports.send(Report::Message(message.clone()));
            message.reverse();
            channel
                .send(message)
                .expect("a callback's send returns at once");
        }

        fn on_close(&mut self, reason: ChannelCloseReason) {
            let _ = self.reports.send(Report::Closed(reason));
        }
    }

    struct Factory {
        reports: Mutex<Sender<Report>>,
        handles: Mutex<Sender<ChannelHandle>>,
    }

    impl ChannelFactory for Factory {
        fn build(&self, connection: ConnectionId) -> Box<dyn ChannelHandler> {
            let reports = self.reports.lock().unwrap().clone();
            let _ = reports.send(Report::Built(connection));
            Box::new(Reverser {
                reports,
                handles: self.handles.lock().unwrap().clone(),
            })
        }

        fn unavailable(&self, connection: ConnectionId) {
            let _ = self
                .reports
                .lock()
                .unwrap()
                .send(Report::Unavailable(connection));
        }
    }

    /// What the engine double was asked to do.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Sent {
        Static(String, Vec<u8>),
        Dynamic(u32, Vec<u8>),
        CloseDynamic(u32),
    }

    #[derive(Default)]
    struct FakeEngine {
        joined: Vec<&'static str>,
        /// `None`: the client has no dynamic channel host.
        next_dynamic: Option<u32>,
        sent: Vec<Sent>,
    }

    impl ChannelEngine for FakeEngine {
        fn serves_static_channel(&self, name: &str) -> bool {
            self.joined
                .iter()
                .any(|joined| joined.eq_ignore_ascii_case(name))
        }

        fn open_dynamic_channel(&mut self, _: &str, _: u8) -> Result<u32, CommandError> {
            let id = self
                .next_dynamic
                .ok_or(CommandError::NoChannel(ChannelKind::Dynamic))?;
            self.next_dynamic = Some(id + 1);
            Ok(id)
        }

        fn send_channel_data(&mut self, name: &str, data: &[u8]) -> Result<(), CommandError> {
            self.sent.push(Sent::Static(name.to_owned(), data.to_vec()));
            Ok(())
        }

        fn send_dynamic_channel_data(&mut self, id: u32, data: &[u8]) -> Result<(), CommandError> {
            self.sent.push(Sent::Dynamic(id, data.to_vec()));
            Ok(())
        }

        fn close_dynamic_channel(&mut self, id: u32) -> Result<(), CommandError> {
            self.sent.push(Sent::CloseDynamic(id));
            Ok(())
        }
    }

    struct Setup {
        channels: AppChannels,
        reports: Receiver<Report>,
        handles: Receiver<ChannelHandle>,
    }

    /// One static channel "MYCHAN" and one dynamic "Test::Dyn", each with
    /// a send queue of `queue` bytes, on connection 7.
    fn setup(queue: usize, max_message: usize) -> Setup {
        let (report_sender, reports) = channel();
        let (handle_sender, handles) = channel();
        let factory: Arc<dyn ChannelFactory> = Arc::new(Factory {
            reports: Mutex::new(report_sender),
            handles: Mutex::new(handle_sender),
        });
        let options = ChannelOptions::default().with_send_queue(queue);
        let specs = [("MYCHAN", false), ("Test::Dyn", true)].map(|(name, dynamic)| {
            Arc::new(ChannelSpec {
                name: name.into(),
                dynamic,
                options,
                factory: factory.clone(),
            })
        });
        Setup {
            channels: AppChannels::new(ConnectionId::from(7), &specs, max_message),
            reports,
            handles,
        }
    }

    fn reports(receiver: &Receiver<Report>) -> Vec<Report> {
        receiver.try_iter().collect()
    }

    #[test]
    fn messages_flow_both_ways_and_handles_send_from_other_threads() {
        let Setup {
            mut channels,
            reports: report,
            handles,
        } = setup(1 << 20, 1 << 20);
        let mut engine = FakeEngine {
            joined: vec!["mychan"],
            next_dynamic: Some(16),
            ..FakeEngine::default()
        };
        channels.activated(&mut engine);
        // The static channel opens at once; the dynamic one when the
        // client accepts it.
        let connection = ConnectionId::from(7);
        assert_eq!(
            reports(&report),
            [Report::Built(connection), Report::Open("MYCHAN".into())]
        );
        channels.handle_event(Event::DynamicChannelOpened {
            id: 16,
            name: "Test::Dyn".into(),
        });
        assert_eq!(
            reports(&report),
            [Report::Built(connection), Report::Open("Test::Dyn".into())]
        );
        let static_handle = handles.try_recv().unwrap();
        let dynamic_handle = handles.try_recv().unwrap();
        assert!(!static_handle.is_dynamic() && dynamic_handle.is_dynamic());
        assert_eq!(static_handle.connection(), connection);

        // Whole messages from the client reach the handler, whose answers
        // (sent from the callback) reach the engine on the next turn.
        channels.handle_event(Event::ChannelData {
            channel: "mychan".into(),
            data: vec![1, 2, 3],
        });
        channels.handle_event(Event::DynamicChannelData {
            id: 16,
            data: vec![4, 5],
        });
        assert_eq!(
            reports(&report),
            [Report::Message(vec![1, 2, 3]), Report::Message(vec![4, 5])]
        );
        assert_eq!(static_handle.queued(), 3);
        channels.run_commands(&mut engine);
        assert_eq!(
            engine.sent,
            [
                Sent::Static("MYCHAN".into(), vec![3, 2, 1]),
                Sent::Dynamic(16, vec![5, 4])
            ]
        );
        assert_eq!(static_handle.queued(), 0);

        // From another thread, in order, on both channels.
        engine.sent.clear();
        let sender = std::thread::spawn(move || {
            for round in 0..3u8 {
                static_handle.send(vec![round; 5000]).unwrap();
                futures_lite::future::block_on(dynamic_handle.send_async(vec![round; 70_000]))
                    .unwrap();
            }
        });
        sender.join().unwrap();
        channels.run_commands(&mut engine);
        let expected: Vec<Sent> = (0..3u8)
            .flat_map(|round| {
                [
                    Sent::Static("MYCHAN".into(), vec![round; 5000]),
                    Sent::Dynamic(16, vec![round; 70_000]),
                ]
            })
            .collect();
        assert_eq!(engine.sent, expected);
    }

    #[test]
    fn a_full_queue_holds_senders_back_until_the_connection_drains_it() {
        let Setup {
            mut channels,
            handles,
            ..
        } = setup(10, 1 << 20);
        let mut engine = FakeEngine {
            joined: vec!["MYCHAN"],
            ..FakeEngine::default()
        };
        channels.activated(&mut engine);
        let handle = handles.try_recv().unwrap();
        handle.try_send(vec![1; 8]).unwrap();
        assert_eq!(
            handle.try_send(vec![2; 8]),
            Err(ChannelError::QueueFull { queued: 8 })
        );
        // A message larger than the queue still fits it empty.
        let (done_sender, done) = channel();
        let blocked = handle.clone();
        let sender = std::thread::spawn(move || {
            let result = blocked.send(vec![3; 30]);
            let _ = done_sender.send(());
            result
        });
        // The connection drains the queue whenever there is something in
        // it, until the sender got its message in.
        let deadline = std::time::Instant::now() + WAIT;
        while done.try_recv().is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "sender never got room"
            );
            channels.run_commands(&mut engine);
            std::thread::yield_now();
        }
        assert_eq!(sender.join().unwrap(), Ok(()));
        channels.run_commands(&mut engine);
        assert_eq!(
            engine.sent,
            [
                Sent::Static("MYCHAN".into(), vec![1; 8]),
                Sent::Static("MYCHAN".into(), vec![3; 30])
            ]
        );
    }

    #[test]
    fn a_closed_connection_wakes_waiting_senders_with_an_error() {
        let Setup {
            mut channels,
            reports: report,
            handles,
        } = setup(4, 1 << 20);
        let mut engine = FakeEngine {
            joined: vec!["MYCHAN"],
            ..FakeEngine::default()
        };
        channels.activated(&mut engine);
        let handle = handles.try_recv().unwrap();
        handle.try_send(vec![0; 4]).unwrap();
        let (result_sender, result) = channel();
        let waiting = handle.clone();
        let sender = std::thread::spawn(move || {
            let _ = result_sender.send(waiting.send(vec![1; 4]));
        });
        // The connection ends without draining; the waiting sender wakes.
        drop(channels);
        assert_eq!(result.recv_timeout(WAIT), Ok(Err(ChannelError::Closed)));
        sender.join().unwrap();
        assert!(!handle.is_open());
        assert_eq!(handle.try_send(vec![2]), Err(ChannelError::Closed));
        // And from yet another thread, later.
        let later = std::thread::spawn(move || handle.send(vec![3]));
        assert_eq!(later.join().unwrap(), Err(ChannelError::Closed));
        assert!(reports(&report).contains(&Report::Closed(ChannelCloseReason::ConnectionClosed)));
    }

    #[test]
    fn messages_over_the_cap_are_refused() {
        let Setup {
            mut channels,
            handles,
            ..
        } = setup(1 << 20, 100);
        let mut engine = FakeEngine {
            joined: vec!["MYCHAN"],
            ..FakeEngine::default()
        };
        channels.activated(&mut engine);
        let handle = handles.try_recv().unwrap();
        assert_eq!(handle.max_message(), 100);
        assert_eq!(
            handle.send(vec![0; 101]),
            Err(ChannelError::TooLarge { len: 101, max: 100 })
        );
        assert_eq!(handle.send(vec![0; 100]), Ok(()));
    }

    #[test]
    fn a_client_without_the_channels_gets_no_handler() {
        let Setup {
            mut channels,
            reports: report,
            ..
        } = setup(1 << 20, 1 << 20);
        // Neither joined the static channel nor has a dynamic channel host.
        let mut engine = FakeEngine::default();
        channels.activated(&mut engine);
        let connection = ConnectionId::from(7);
        assert_eq!(
            reports(&report),
            [
                Report::Unavailable(connection),
                Report::Unavailable(connection)
            ]
        );
        // Late traffic for them is dropped.
        channels.handle_event(Event::ChannelData {
            channel: "MYCHAN".into(),
            data: vec![1],
        });
        assert!(reports(&report).is_empty());

        // A client with the host but no listener refuses the channel.
        let Setup {
            mut channels,
            reports: report,
            ..
        } = setup(1 << 20, 1 << 20);
        let mut engine = FakeEngine {
            joined: vec!["MYCHAN"],
            next_dynamic: Some(20),
            ..FakeEngine::default()
        };
        channels.activated(&mut engine);
        let _ = reports(&report);
        channels.handle_event(Event::DynamicChannelClosed {
            id: 20,
            error: None,
        });
        assert_eq!(reports(&report), [Report::Unavailable(connection)]);
    }

    #[test]
    fn each_close_is_reported_once_with_its_reason() {
        let Setup {
            mut channels,
            reports: report,
            handles,
        } = setup(1 << 20, 1 << 20);
        let mut engine = FakeEngine {
            joined: vec!["MYCHAN"],
            next_dynamic: Some(16),
            ..FakeEngine::default()
        };
        channels.activated(&mut engine);
        channels.handle_event(Event::DynamicChannelOpened {
            id: 16,
            name: "Test::Dyn".into(),
        });
        let static_handle = handles.try_recv().unwrap();
        let dynamic_handle = handles.try_recv().unwrap();
        let _ = reports(&report);

        // The client closes the dynamic channel.
        channels.handle_event(Event::DynamicChannelClosed {
            id: 16,
            error: None,
        });
        assert_eq!(
            reports(&report),
            [Report::Closed(ChannelCloseReason::ClientClosed)]
        );
        assert_eq!(dynamic_handle.try_send(vec![1]), Err(ChannelError::Closed));
        channels.handle_event(Event::DynamicChannelData {
            id: 16,
            data: vec![1],
        });
        assert!(reports(&report).is_empty());

        // The application closes the static one: what was queued before
        // still leaves, then nothing more is served.
        static_handle.try_send(vec![9]).unwrap();
        static_handle.close();
        channels.run_commands(&mut engine);
        assert_eq!(engine.sent, [Sent::Static("MYCHAN".into(), vec![9])]);
        assert_eq!(
            reports(&report),
            [Report::Closed(ChannelCloseReason::ServerClosed)]
        );
        channels.handle_event(Event::ChannelData {
            channel: "MYCHAN".into(),
            data: vec![1],
        });
        channels.shutdown();
        assert!(reports(&report).is_empty());
    }

    #[test]
    fn broken_channels_close_with_the_error() {
        let Setup {
            mut channels,
            reports: report,
            handles,
        } = setup(1 << 20, 1 << 20);
        let mut engine = FakeEngine {
            joined: vec!["MYCHAN"],
            next_dynamic: Some(16),
            ..FakeEngine::default()
        };
        channels.activated(&mut engine);
        channels.handle_event(Event::DynamicChannelOpened {
            id: 16,
            name: "Test::Dyn".into(),
        });
        let static_handle = handles.try_recv().unwrap();
        let dynamic_handle = handles.try_recv().unwrap();
        let _ = reports(&report);
        let error = Error::UnexpectedPdu("test");
        // The dynamic channel host broke: the dynamic channel goes with it.
        channels.channel_broken("drdynvc", &error);
        assert_eq!(
            reports(&report),
            [Report::Closed(ChannelCloseReason::Broken(error.clone()))]
        );
        assert!(!dynamic_handle.is_open());
        assert!(static_handle.is_open());
        channels.channel_broken("mychan", &error);
        assert_eq!(
            reports(&report),
            [Report::Closed(ChannelCloseReason::Broken(error))]
        );
        assert!(!static_handle.is_open());
        // The application closing a dynamic channel sends DYNVC_CLOSE.
        let Setup {
            mut channels,
            handles,
            ..
        } = setup(1 << 20, 1 << 20);
        let mut engine = FakeEngine {
            next_dynamic: Some(16),
            ..FakeEngine::default()
        };
        channels.activated(&mut engine);
        channels.handle_event(Event::DynamicChannelOpened {
            id: 16,
            name: "Test::Dyn".into(),
        });
        let dynamic_handle = handles.try_recv().unwrap();
        assert!(dynamic_handle.is_dynamic());
        dynamic_handle.close();
        channels.run_commands(&mut engine);
        assert_eq!(engine.sent, [Sent::CloseDynamic(16)]);
    }

    #[test]
    fn channel_names_are_checked() {
        let spec = |name: &str, dynamic| {
            Arc::new(ChannelSpec {
                name: name.into(),
                dynamic,
                options: ChannelOptions::default(),
                factory: Arc::new(|_: ConnectionId| Reverser {
                    reports: channel().0,
                    handles: channel().0,
                }),
            })
        };
        let check = |specs: &[Arc<ChannelSpec>]| check_names(specs, true, false).map_err(|e| e.1);
        assert!(check(&[spec("MYCHAN", false), spec("MYCHAN", true)]).is_ok());
        assert!(
            check(&[spec("rdpsnd", false)]).is_ok(),
            "sound is not served"
        );
        for bad in [
            vec![spec("", false)],
            vec![spec("EIGHTCHR", false)],
            vec![spec("a b", false)],
            vec![spec("DRDYNVC", false)],
            vec![spec("cliprdr", false)],
            vec![spec("one", false), spec("ONE", false)],
            vec![spec("ECHO", true)],
            vec![spec(&"x".repeat(1595), true)],
        ] {
            assert!(check(&bad).is_err(), "{:?}", bad[0].name);
        }
    }
}
