//! MCS channel numbering and the framing of server PDUs into
//! TPKT / X.224 Data / MCS Send Data Indication.

use crate::api::error::Error;
use crate::transport::Transport;
use crate::wire::mcs;
use crate::wire::x224;

/// The initiator of everything the server sends, and the `pdu_source` of its
/// share control PDUs (the MCS server channel, MS-RDPBCGR 2.2.8.1.1.1.1).
pub(crate) const SERVER_CHANNEL_ID: u16 = 1002;
/// The I/O channel id this server announces.
const IO_CHANNEL_ID: u16 = 1003;
/// The user channel id handed out by Attach User Confirm.
const USER_CHANNEL_ID: u16 = 1007;

/// The channel ids of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChannelIds {
    pub user: u16,
    pub io: u16,
    /// One id per static virtual channel, in the order of the client's list.
    pub statics: Vec<u16>,
}

impl Default for ChannelIds {
    fn default() -> Self {
        Self::allocate(0)
    }
}

impl ChannelIds {
    /// Ids for `static_channels` channels, numbered after the I/O channel.
    /// INVARIANT: `static_channels` is at most 31 (checked by the GCC decoder),
    /// so the ids never reach the user channel.
    pub fn allocate(static_channels: usize) -> Self {
        let statics = (0..static_channels)
            .map(|index| IO_CHANNEL_ID + 1 + index as u16)
            .collect();
        Self {
            user: USER_CHANNEL_ID + static_channels as u16,
            io: IO_CHANNEL_ID,
            statics,
        }
    }

    pub fn all(&self) -> impl Iterator<Item = u16> + '_ {
        [self.user, self.io]
            .into_iter()
            .chain(self.statics.iter().copied())
    }

    pub fn contains(&self, id: u16) -> bool {
        self.all().any(|known| known == id)
    }
}

/// Sends an MCS PDU inside X.224 Data.
pub(crate) fn send_mcs(transport: &mut Transport, mcs_pdu: &[u8]) -> Result<(), Error> {
    let mut frame = Vec::with_capacity(x224::DATA_HEADER_LEN + mcs_pdu.len());
    x224::encode_data(&mut frame, mcs_pdu);
    transport.send(&frame)
}

/// Tells the client the server is leaving: MCS Disconnect Provider Ultimatum
/// with reason rn-provider-initiated.
pub(crate) fn send_disconnect(transport: &mut Transport) -> Result<(), Error> {
    let mut pdu = Vec::new();
    mcs::DomainPdu::DisconnectProviderUltimatum {
        reason: mcs::DisconnectReason::PROVIDER_INITIATED,
    }
    .encode(&mut pdu);
    send_mcs(transport, &pdu)
}

/// Sends `body` to the client on the I/O channel.
pub(crate) fn send_data(
    transport: &mut Transport,
    channels: &ChannelIds,
    body: &[u8],
) -> Result<(), Error> {
    send_on_channel(transport, channels.io, body)
}

/// Sends `body` to the client on `channel_id`.
pub(crate) fn send_on_channel(
    transport: &mut Transport,
    channel_id: u16,
    body: &[u8],
) -> Result<(), Error> {
    let mut header = Vec::with_capacity(8);
    mcs::encode_send_data_indication_header(&mut header, SERVER_CHANNEL_ID, channel_id, body.len());
    let mut frame = Vec::with_capacity(x224::DATA_HEADER_LEN + header.len() + body.len());
    x224::encode_data_header(&mut frame, header.len() + body.len());
    frame.extend_from_slice(&header);
    frame.extend_from_slice(body);
    transport.send(&frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_ids_do_not_collide() {
        let ids = ChannelIds::allocate(31);
        let mut all: Vec<u16> = ids.all().collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 33);
        assert!(ids.contains(1004) && !ids.contains(1002));
    }
}
