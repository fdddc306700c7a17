//! Connection finalization (MS-RDPBCGR 1.3.1.1, phase 10): the client's
//! Synchronize, Control (Cooperate, Request Control), optional Persistent
//! Key List and Font List, each answered by the server. Run at the first
//! activation and again after every deactivation-reactivation.

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
    pub fn handle(
        &mut self,
        pdu: ClientDataPdu,
        share_id: u32,
        channels: &ChannelIds,
        transport: &mut Transport,
    ) -> Result<Progress, Error> {
        trace!(?pdu, "Finalization PDU");
        let mut body = Vec::new();
        let (pdu_type2, progress) = match pdu {
            ClientDataPdu::Synchronize { .. } => {
                self.synchronized = true;
                data_pdus::encode_synchronize(&mut body, channels.user);
                (data_pdus::PDUTYPE2_SYNCHRONIZE, Progress::Continue)
            }
            ClientDataPdu::Control {
                action: ControlAction::Cooperate,
                ..
            } => {
                self.cooperating = true;
                data_pdus::encode_control(&mut body, ControlAction::Cooperate, 0, 0);
                (data_pdus::PDUTYPE2_CONTROL, Progress::Continue)
            }
            ClientDataPdu::Control {
                action: ControlAction::RequestControl,
                ..
            } => {
                self.control_granted = true;
                data_pdus::encode_control(
                    &mut body,
                    ControlAction::Granted,
                    channels.user,
                    u32::from(io_channel::SERVER_CHANNEL_ID),
                );
                (data_pdus::PDUTYPE2_CONTROL, Progress::Continue)
            }
            ClientDataPdu::PersistentKeyList => return Ok(Progress::Continue),
            ClientDataPdu::FontList => {
                if !(self.synchronized && self.cooperating && self.control_granted) {
                    return Err(Error::UnexpectedPdu(
                        "font list before synchronize and control",
                    ));
                }
                data_pdus::encode_font_map(&mut body);
                (data_pdus::PDUTYPE2_FONTMAP, Progress::Finished)
            }
            // Clients may send input before the server finished; it has no
            // meaning until the session is active.
            ClientDataPdu::Input(_) => return Ok(Progress::Continue),
            _ => return Err(Error::UnexpectedPdu("unexpected pdu during finalization")),
        };
        let mut pdu = Vec::new();
        share::encode_data_pdu(
            &mut pdu,
            io_channel::SERVER_CHANNEL_ID,
            share_id,
            pdu_type2,
            &body,
        );
        io_channel::send_data(transport, channels, &pdu)?;
        Ok(progress)
    }
}
