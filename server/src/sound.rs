//! The application's side of audio output (MS-RDPEA): a handler per
//! connection, made by a factory (`with_sound_factory`), and a handle that
//! plays samples.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use rdpserve_core::sound::AudioFormat;

use crate::mailbox::Mailbox;

/// Makes one audio handler per connection.
pub trait SoundServerFactory: Send + Sync + 'static {
    /// The formats the application can produce, in order of preference
    /// (`AudioFormat::pcm(2, 44100, 16)` is one every client plays).
    fn formats(&self) -> Vec<AudioFormat>;

    fn build_backend(&self) -> Box<dyn RdpsndServerHandler>;
}

/// One connection's audio output.
///
/// # Threads
///
/// Methods run on the runtime's blocking threads, never on the async
/// executor, one at a time. A method may block: its own connection waits
/// for it meanwhile, no other connection does. `start` has returned before
/// the samples it sends are played, so it may send the first waves itself.
pub trait RdpsndServerHandler: Send + 'static {
    /// The client is ready to play. `formats` are the factory's formats the
    /// client also plays (in the client's order); return the index of the
    /// one to use, or `None` to stay silent. Keep a clone of `sound` to
    /// play samples from any thread.
    fn start(&mut self, formats: &[AudioFormat], sound: &SoundHandle) -> Option<usize>;

    /// The client played the wave `block`; `timestamp` is the wave's time
    /// plus the client's delay (16 bits of milliseconds). One more wave fits
    /// the queue now.
    fn wave_confirmed(&mut self, timestamp: u16, block: u8) {
        let _ = (timestamp, block);
    }

    /// The session ended.
    fn stop(&mut self) {}
}

#[derive(Debug, Clone)]
pub(crate) enum SoundCommand {
    Samples { data: Vec<u8>, timestamp_ms: u32 },
    Volume { left: u16, right: u16 },
}

/// The audio queue is full: the client has not confirmed enough waves yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("audio queue full: {outstanding} waves await the client")]
pub struct SoundQueueFull {
    pub outstanding: usize,
}

/// Plays audio on one client. Clone it freely and use it from any thread.
///
/// The queue policy: at most `capacity` waves are on their way (queued or
/// sent, not yet confirmed by the client). Beyond that `send_samples`
/// refuses the wave at once, so the application learns that it produces
/// faster than the client plays and decides itself whether to drop or wait
/// (`RdpsndServerHandler::wave_confirmed` says when there is room again).
/// Nothing is dropped silently and nothing piles up.
#[derive(Debug, Clone)]
pub struct SoundHandle {
    mailbox: Mailbox<SoundCommand>,
    outstanding: Arc<AtomicUsize>,
    capacity: usize,
}

impl SoundHandle {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            mailbox: Mailbox::default(),
            outstanding: Arc::new(AtomicUsize::new(0)),
            capacity: capacity.max(1),
        }
    }

    pub(crate) fn mailbox(&self) -> &Mailbox<SoundCommand> {
        &self.mailbox
    }

    /// One wave left the queue (confirmed, or refused by the engine).
    pub(crate) fn release(&self) {
        let _ = self
            .outstanding
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |count| {
                count.checked_sub(1)
            });
    }

    /// Plays one wave: samples in the chosen format (a whole number of its
    /// blocks, e.g. 20 ms of audio), stamped with the application's
    /// `timestamp_ms`.
    pub fn send_samples(&self, data: Vec<u8>, timestamp_ms: u32) -> Result<(), SoundQueueFull> {
        self.outstanding
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |count| {
                (count < self.capacity).then_some(count + 1)
            })
            .map_err(|outstanding| SoundQueueFull { outstanding })?;
        self.mailbox
            .push(SoundCommand::Samples { data, timestamp_ms });
        Ok(())
    }

    /// Sets the client's volume, 0 (silent) to 0xFFFF per channel.
    pub fn set_volume(&self, left: u16, right: u16) {
        self.mailbox.push(SoundCommand::Volume { left, right });
    }

    /// Waves on their way and not yet confirmed.
    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::SeqCst)
    }

    /// The most waves that may be on their way.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}
