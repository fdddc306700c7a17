//! Connection finalization (MS-RDPBCGR 1.3.1.1, phase 10), shared by
//! activation and every deactivation-reactivation.
//!
//! The two directions are not a call and answer. The client's PDUs
//! (Synchronize, Control Cooperate, Control Request Control, optional
//! Persistent Key Lists, Font List) "have no dependencies on any of the
//! server-to-client PDUs" and may come as one batch; a client may as well
//! wait for the server's Synchronize before it sends its own. So the server
//! sends what depends only on the Confirm Active as soon as that arrives:
//!
//! - Synchronize, "sent in response to the Confirm Active PDU" (1.3.1.1;
//!   3.3.5.3.13.2: "after successfully processing the Confirm Active PDU,
//!   the server MUST send the Synchronize PDU");
//! - Control (Cooperate), "sent after transmitting the Server Synchronize
//!   PDU" (1.3.1.1). 3.3.5.3.15 places it after the client's Cooperate
//!   instead; sent once, right after our Synchronize, it satisfies both
//!   readings for a client that batches, and does not leave one that waits
//!   for the server stuck.
//!
//! The other two answer the client, as the spec makes them: Control
//! (Granted Control) "in response to the Client Control (Request Control)"
//! (3.3.5.3.16) and the Font Map "in response to the Font List" (3.3.5.3.18).

use tracing::trace;

use crate::api::error::Error;
use crate::connection::data_pdus::{self, ClientDataPdu, ControlAction};
use crate::connection::share;
use crate::transport::Transport;
use crate::transport::io_channel::{self, ChannelIds};

/// What finalization PDUs the client has sent.
#[derive(Debug, Default)]
pub(crate) struct Finalization {
    synchronized: bool,
    cooperating: bool,
    control_granted: bool,
}

pub(crate) enum Progress {
    Continue,
    /// The Font Map went out: the client is active.
    Finished,
}

impl Finalization {
    /// Sends the server's Synchronize and Control (Cooperate); call once,
    /// when the Confirm Active has been processed.
    pub fn confirm_active(
        &mut self,
        share_id: u32,
        channels: &ChannelIds,
        transport: &mut Transport,
    ) -> Result<(), Error> {
        let mut body = Vec::new();
        data_pdus::encode_synchronize(&mut body, channels.user);
        send(
            transport,
            channels,
            share_id,
            data_pdus::PDUTYPE2_SYNCHRONIZE,
            &body,
        )?;
        body.clear();
        data_pdus::encode_control(&mut body, ControlAction::Cooperate, 0, 0);
        send(
            transport,
            channels,
            share_id,
            data_pdus::PDUTYPE2_CONTROL,
            &body,
        )
    }

    /// Takes one of the client's finalization PDUs (they arrive only after
    /// `confirm_active`).
    pub fn handle(
        &mut self,
        pdu: ClientDataPdu,
        share_id: u32,
        channels: &ChannelIds,
        transport: &mut Transport,
    ) -> Result<Progress, Error> {
        trace!(?pdu, "Finalization PDU");
        match pdu {
            ClientDataPdu::Synchronize { .. } => self.synchronized = true,
            ClientDataPdu::Control {
                action: ControlAction::Cooperate,
                ..
            } => self.cooperating = true,
            ClientDataPdu::Control {
                action: ControlAction::RequestControl,
                ..
            } => {
                self.control_granted = true;
                let mut body = Vec::new();
                data_pdus::encode_control(
                    &mut body,
                    ControlAction::Granted,
                    channels.user,
                    u32::from(io_channel::SERVER_CHANNEL_ID),
                );
                send(
                    transport,
                    channels,
                    share_id,
                    data_pdus::PDUTYPE2_CONTROL,
                    &body,
                )?;
            }
            ClientDataPdu::PersistentKeyList => {}
            ClientDataPdu::FontList => {
                // The client's PDUs come in the spec's sequence (1.3.1.1:
                // "provided that sequencing is maintained"); a Font List
                // ahead of the others means PDUs were lost or reordered,
                // and the Font Map would start graphics for a client that
                // has not taken control.
                if !(self.synchronized && self.cooperating && self.control_granted) {
                    return Err(Error::UnexpectedPdu(
                        "font list before synchronize and control",
                    ));
                }
                let mut body = Vec::new();
                data_pdus::encode_font_map(&mut body);
                send(
                    transport,
                    channels,
                    share_id,
                    data_pdus::PDUTYPE2_FONTMAP,
                    &body,
                )?;
                return Ok(Progress::Finished);
            }
            // Clients may send input once they sent the Confirm Active
            // (1.3.1.1); it has no meaning until the session is active.
            // Refresh Rect, Suppress Output and Frame Acknowledge ask about
            // graphics that have not started, and PDU types this server does
            // not know are ignored, as the active session ignores them.
            ClientDataPdu::Input(_)
            | ClientDataPdu::RefreshRect(_)
            | ClientDataPdu::SuppressOutput { .. }
            | ClientDataPdu::FrameAcknowledge { .. }
            | ClientDataPdu::Unknown { .. } => {}
            // Granted Control and Detach are the server's actions; a
            // Shutdown Request before the session exists ends the
            // connection either way (3.3.5.4.1).
            _ => return Err(Error::UnexpectedPdu("unexpected pdu during finalization")),
        }
        Ok(Progress::Continue)
    }
}

fn send(
    transport: &mut Transport,
    channels: &ChannelIds,
    share_id: u32,
    pdu_type2: u8,
    body: &[u8],
) -> Result<(), Error> {
    let mut pdu = Vec::new();
    share::encode_data_pdu(
        &mut pdu,
        io_channel::SERVER_CHANNEL_ID,
        share_id,
        pdu_type2,
        body,
    );
    io_channel::send_data(transport, channels, &pdu)
}
