//! An example application channel: a chat. Each connection's handler logs
//! the text the client sends and answers it in capitals; a thread per open
//! channel sends "tick N" at a fixed interval through the channel's handle,
//! and stops when the handle reports the channel or connection closed.
//! `src/bin/channels.rs` serves it as a static and a dynamic channel.

use std::time::Duration;

use rdpserve_tokio::{
    ChannelCloseReason, ChannelFactory, ChannelHandle, ChannelHandler, ConnectionId,
};
use tracing::info;

/// One connection's side of a chat channel.
struct Chat {
    connection: ConnectionId,
    tick: Duration,
}

impl ChannelHandler for Chat {
    fn on_open(&mut self, channel: &ChannelHandle) {
        info!(connection = %self.connection, channel = channel.name(), "Chat open");
        // The handle is cloneable and works from any thread: this one
        // ticks until the channel is gone, which `send` reports.
        let ticker = channel.clone();
        let interval = self.tick;
        std::thread::spawn(move || {
            for tick in 1u64.. {
                std::thread::sleep(interval);
                if let Err(error) = ticker.send(format!("tick {tick}").into_bytes()) {
                    info!(channel = ticker.name(), %error, "Ticker stops");
                    return;
                }
            }
        });
    }

    fn on_message(&mut self, message: Vec<u8>, channel: &ChannelHandle) {
        let text = String::from_utf8_lossy(&message);
        info!(connection = %self.connection, channel = channel.name(), %text, "Chat message");
        // Sending from the callback never waits.
        if let Err(error) = channel.send(text.to_uppercase().into_bytes()) {
            info!(%error, "Answer not sent");
        }
    }

    fn on_close(&mut self, reason: ChannelCloseReason) {
        info!(connection = %self.connection, ?reason, "Chat closed");
    }
}

/// Builds a [`Chat`] per connection, and says which clients lack it.
pub struct ChatFactory {
    name: &'static str,
    tick: Duration,
}

impl ChatFactory {
    /// The chat for channel `name`, ticking every `tick`.
    pub fn new(name: &'static str, tick: Duration) -> Self {
        Self { name, tick }
    }
}

impl ChannelFactory for ChatFactory {
    fn build(&self, connection: ConnectionId) -> Box<dyn ChannelHandler> {
        Box::new(Chat {
            connection,
            tick: self.tick,
        })
    }

    fn unavailable(&self, connection: ConnectionId) {
        info!(%connection, channel = self.name, "Client has no such channel");
    }
}
