//! The byte plumbing under the engine: the optional TLS layer, the buffer of
//! received plaintext awaiting framing, and the buffer of bytes to transmit.

pub(crate) mod io_channel;

use crate::api::error::Error;
use crate::security::credssp;
use crate::security::tls::{TlsIdentity, TlsLayer};
use crate::wire::tpkt::{self, FrameKind};

/// How the received stream is cut into frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// TPKT or fast-path.
    Rdp,
    /// CredSSP TSRequests (DER), between TLS and MCS under NLA.
    TsRequest,
}

#[derive(Debug, Default)]
pub(crate) struct Transport {
    tls: Option<TlsLayer>,
    /// A copy of every plaintext byte sent, kept when the engine records.
    tap: Option<Vec<u8>>,
    /// Plaintext received but not yet consumed as whole frames.
    received: Vec<u8>,
    /// Bytes for the wire, drained by `poll_transmit`.
    outgoing: Vec<u8>,
}

impl Transport {
    /// Switches to TLS: every byte after the X.224 Connection Confirm is TLS.
    pub fn start_tls(&mut self, identity: &TlsIdentity) -> Result<(), Error> {
        let mut tls = TlsLayer::new(identity)?;
        // Bytes the client pipelined after its Connection Request are already
        // TLS records; hand them over.
        let early = std::mem::take(&mut self.received);
        if !early.is_empty() {
            tls.receive(&early, &mut self.received, &mut self.outgoing)?;
        }
        self.tls = Some(tls);
        Ok(())
    }

    /// Whether TLS was started (it then carries every byte until the end).
    pub fn tls_started(&self) -> bool {
        self.tls.is_some()
    }

    /// The subjectPublicKey of the certificate TLS served, once its
    /// handshake is complete.
    pub fn served_public_key(&self) -> Option<Vec<u8>> {
        self.tls.as_ref()?.served_public_key()
    }

    pub fn receive(&mut self, bytes: &[u8]) -> Result<(), Error> {
        match &mut self.tls {
            Some(tls) => Ok(tls.receive(bytes, &mut self.received, &mut self.outgoing)?),
            None => {
                self.received.extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    /// The next whole frame of received plaintext, if one is complete.
    pub fn next_frame(
        &self,
        framing: Framing,
        max_len: usize,
    ) -> Result<Option<(FrameKind, usize)>, Error> {
        Ok(match framing {
            Framing::Rdp => tpkt::frame_length(&self.received, max_len)?,
            // TSRequests are DER sequences; they are handed on as X.224 frames
            // are, the handshake knows which it expects.
            Framing::TsRequest => {
                credssp::frame_length(&self.received, credssp::MAX_TS_REQUEST.min(max_len))?
                    .map(|len| (FrameKind::X224, len))
            }
        })
    }

    pub fn frame(&self, len: usize) -> &[u8] {
        &self.received[..len]
    }

    pub fn consume(&mut self, len: usize) {
        self.received.drain(..len);
    }

    pub fn discard_received(&mut self) {
        self.received.clear();
    }

    /// Queues plaintext for the peer (encrypting it when TLS is on).
    pub fn send(&mut self, plaintext: &[u8]) -> Result<(), Error> {
        if let Some(tap) = &mut self.tap {
            tap.extend_from_slice(plaintext);
        }
        match &mut self.tls {
            Some(tls) => Ok(tls.send(plaintext, &mut self.outgoing)?),
            None => {
                self.outgoing.extend_from_slice(plaintext);
                Ok(())
            }
        }
    }

    /// Starts keeping a copy of the plaintext sent (for a recording).
    pub fn enable_tap(&mut self) {
        self.tap = Some(Vec::new());
    }

    /// Hands the plaintext sent since the last call to `take`.
    pub fn drain_tap(&mut self, take: impl FnOnce(&[u8])) {
        if let Some(tap) = &mut self.tap
            && !tap.is_empty()
        {
            take(tap);
            tap.clear();
        }
    }

    pub fn close(&mut self) {
        if let Some(tls) = &mut self.tls {
            tls.close(&mut self.outgoing);
        }
    }

    pub fn pending_transmit(&self) -> usize {
        self.outgoing.len()
    }

    /// Moves queued wire bytes into `buf`; returns how many.
    pub fn drain_transmit(&mut self, buf: &mut Vec<u8>) -> Option<usize> {
        if self.outgoing.is_empty() {
            return None;
        }
        let len = self.outgoing.len();
        if buf.is_empty() {
            // Swap instead of copying: the caller's buffer becomes our next one.
            std::mem::swap(buf, &mut self.outgoing);
        } else {
            buf.extend_from_slice(&self.outgoing);
            self.outgoing.clear();
        }
        Some(len)
    }
}
