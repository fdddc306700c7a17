//! The ECHO dynamic channel (MS-RDPEECO), server side: requests carry a
//! 4-byte id followed by the application's payload, the client echoes
//! them, and the time between is the round trip.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use crate::api::error::Error;
use crate::api::event::Event;

/// The listener name the client registers.
pub const CHANNEL_NAME: &str = "ECHO";

/// The echo requests of one session.
#[derive(Debug)]
pub(crate) struct EchoChannel {
    next_id: u32,
    /// Requests made before the channel opened (id and message), sent
    /// when it does.
    waiting: VecDeque<(u32, Vec<u8>)>,
    /// Requests sent, by id, with the time they left.
    sent: HashMap<u32, Instant>,
}

impl Default for EchoChannel {
    fn default() -> Self {
        Self {
            next_id: 1,
            waiting: VecDeque::new(),
            sent: HashMap::new(),
        }
    }
}

impl EchoChannel {
    /// A new request carrying `payload`: its id, and its message when the
    /// channel is `open` (else it waits for the channel to open).
    pub fn request(&mut self, now: Instant, payload: &[u8], open: bool) -> (u32, Option<Vec<u8>>) {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let mut message = Vec::with_capacity(4 + payload.len());
        message.extend_from_slice(&id.to_le_bytes());
        message.extend_from_slice(payload);
        if open {
            self.sent.insert(id, now);
            (id, Some(message))
        } else {
            self.waiting.push_back((id, message));
            (id, None)
        }
    }

    /// The channel opened: the waiting requests leave now.
    pub fn opened(&mut self, now: Instant, send: &mut Vec<Vec<u8>>) {
        while let Some((id, message)) = self.waiting.pop_front() {
            self.sent.insert(id, now);
            send.push(message);
        }
    }

    /// An echo came back.
    pub fn message(
        &mut self,
        message: &[u8],
        now: Instant,
        events: &mut VecDeque<Event>,
    ) -> Result<(), Error> {
        let (id, payload) = message
            .split_first_chunk::<4>()
            .map(|(id, payload)| (u32::from_le_bytes(*id), payload))
            .ok_or(Error::UnexpectedPdu(
                "echo response shorter than its request",
            ))?;
        let sent = self
            .sent
            .remove(&id)
            .ok_or(Error::UnexpectedPdu("echo response to no request"))?;
        events.push_back(Event::EchoRoundTrip {
            id,
            round_trip: now.saturating_duration_since(sent),
            payload: payload.to_vec(),
        });
        Ok(())
    }
}
