//! Dynamic virtual channels over the "drdynvc" static channel
//! ([MS-RDPEDYC 2.2](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpedyc/0b07a750-bf51-4042-bcf2-a991b6729d6e)):
//! capabilities, create, data (with DataFirst reassembly) and close.

use bytes::BufMut;

use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;

const CMD_CREATE: u8 = 0x01;
const CMD_DATA_FIRST: u8 = 0x02;
const CMD_DATA: u8 = 0x03;
const CMD_CLOSE: u8 = 0x04;
const CMD_CAPABILITY: u8 = 0x05;
/// Priority charges the server announces with version 2 and 3 capabilities
/// (the values MS-RDPEDYC's example uses).
const PRIORITY_CHARGES: [u16; 4] = [936, 3276, 9362, 65535];
/// The version this server offers.
pub const SERVER_VERSION: u16 = 3;

/// A DVC PDU from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientDvcPdu<'a> {
    CapabilitiesResponse {
        version: u16,
    },
    CreateResponse {
        channel_id: u32,
        status: i32,
    },
    /// DataFirst: the first part of a message of `total` bytes.
    DataFirst {
        channel_id: u32,
        total: u32,
        data: &'a [u8],
    },
    Data {
        channel_id: u32,
        data: &'a [u8],
    },
    Close {
        channel_id: u32,
    },
}

fn read_var(cursor: &mut ReadCursor<'_>, size_code: u8) -> Result<u32, DecodeError> {
    Ok(match size_code {
        0 => u32::from(cursor.read_u8()?),
        1 => u32::from(cursor.read_u16_le()?),
        2 => cursor.read_u32_le()?,
        _ => return Err(cursor.invalid("cbChId", "reserved size")),
    })
}

/// The smallest size code for `value` and the code itself.
fn var_code(value: u32) -> u8 {
    if value <= 0xFF {
        0
    } else if value <= 0xFFFF {
        1
    } else {
        2
    }
}

fn write_var(out: &mut Vec<u8>, value: u32) {
    match var_code(value) {
        0 => out.put_u8(value as u8),
        1 => out.put_u16_le(value as u16),
        _ => out.put_u32_le(value),
    }
}

impl<'a> ClientDvcPdu<'a> {
    pub fn decode(message: &'a [u8]) -> Result<Self, DecodeError> {
        let mut cursor = ReadCursor::new(message, "dvc pdu");
        let header = cursor.read_u8()?;
        let (cmd, sp, cb_id) = (header >> 4, (header >> 2) & 0x03, header & 0x03);
        Ok(match cmd {
            CMD_CAPABILITY => {
                cursor.skip(1)?;
                Self::CapabilitiesResponse {
                    version: cursor.read_u16_le()?,
                }
            }
            CMD_CREATE => Self::CreateResponse {
                channel_id: read_var(&mut cursor, cb_id)?,
                status: cursor.read_u32_le()? as i32,
            },
            CMD_DATA_FIRST => {
                let channel_id = read_var(&mut cursor, cb_id)?;
                let total = read_var(&mut cursor, sp)?;
                Self::DataFirst {
                    channel_id,
                    total,
                    data: cursor.rest(),
                }
            }
            CMD_DATA => Self::Data {
                channel_id: read_var(&mut cursor, cb_id)?,
                data: cursor.rest(),
            },
            CMD_CLOSE => Self::Close {
                channel_id: read_var(&mut cursor, cb_id)?,
            },
            other => {
                return Err(DecodeError::Unexpected {
                    context: "dvc pdu",
                    what: "command",
                    value: u32::from(other),
                });
            }
        })
    }
}

/// DYNVC_CAPS_VERSION3 (or 1/2 the same way), server to client.
pub fn encode_capabilities_request(out: &mut Vec<u8>, version: u16) {
    out.put_u8(CMD_CAPABILITY << 4);
    out.put_u8(0);
    out.put_u16_le(version);
    if version >= 2 {
        for charge in PRIORITY_CHARGES {
            out.put_u16_le(charge);
        }
    }
}

/// DYNVC_CREATE_REQ. `priority` (0 highest to 3 lowest) selects one of the
/// bandwidth charges of the version 2 and 3 capabilities.
pub fn encode_create_request(out: &mut Vec<u8>, channel_id: u32, name: &str, priority: u8) {
    out.put_u8((CMD_CREATE << 4) | ((priority & 0x03) << 2) | var_code(channel_id));
    write_var(out, channel_id);
    out.put_slice(name.as_bytes());
    out.put_u8(0);
}

/// DYNVC_DATA (the caller keeps messages within one static channel message).
pub fn encode_data(out: &mut Vec<u8>, channel_id: u32, data: &[u8]) {
    out.put_u8((CMD_DATA << 4) | var_code(channel_id));
    write_var(out, channel_id);
    out.put_slice(data);
}

/// The largest DVC PDU: each travels in one CHANNEL_CHUNK_LENGTH chunk.
pub const MAX_PDU: usize = 1600;

/// A whole message for `channel_id` as DVC PDUs of at most [`MAX_PDU`]
/// bytes: one DYNVC_DATA when it fits, else DYNVC_DATA_FIRST with the total
/// length followed by DYNVC_DATA parts.
pub fn encode_message(out: &mut Vec<Vec<u8>>, channel_id: u32, message: &[u8], chunk_size: usize) {
    let limit = MAX_PDU.min(chunk_size.max(16));
    // cmd byte + channel id (at most 4 bytes) + total length (at most 4).
    let single_room = limit - 1 - 4;
    if message.len() <= single_room {
        let mut pdu = Vec::with_capacity(message.len() + 5);
        encode_data(&mut pdu, channel_id, message);
        out.push(pdu);
        return;
    }
    let first_room = limit - 1 - 4 - 4;
    let (first, mut rest) = message.split_at(first_room);
    let total = message.len() as u32;
    let mut pdu = Vec::with_capacity(limit);
    pdu.put_u8((CMD_DATA_FIRST << 4) | (var_code(total) << 2) | var_code(channel_id));
    write_var(&mut pdu, channel_id);
    write_var(&mut pdu, total);
    pdu.put_slice(first);
    out.push(pdu);
    while !rest.is_empty() {
        let (part, after) = rest.split_at(rest.len().min(single_room));
        let mut pdu = Vec::with_capacity(part.len() + 5);
        encode_data(&mut pdu, channel_id, part);
        out.push(pdu);
        rest = after;
    }
}

/// DYNVC_CLOSE.
pub fn encode_close(out: &mut Vec<u8>, channel_id: u32) {
    out.put_u8((CMD_CLOSE << 4) | var_code(channel_id));
    write_var(out, channel_id);
}

/// Reassembles DataFirst/Data sequences of one channel, refusing declared
/// totals over a cap.
#[derive(Debug, Default)]
pub struct DvcReassembler {
    buffer: Vec<u8>,
    total: usize,
}

impl DvcReassembler {
    /// Bytes this reassembler holds on to.
    pub fn held(&self) -> usize {
        self.buffer.capacity()
    }

    pub fn first(
        &mut self,
        total: u32,
        data: &[u8],
        limit: usize,
    ) -> Result<Option<Vec<u8>>, DecodeError> {
        let total = total as usize;
        if total > limit {
            return Err(DecodeError::TooLarge {
                context: "dvc message",
                size: total,
                limit,
            });
        }
        self.buffer.clear();
        self.total = total;
        self.more(data)
    }

    /// A Data PDU: a whole message when no DataFirst is pending, else the
    /// next part of the pending one.
    pub fn more(&mut self, data: &[u8]) -> Result<Option<Vec<u8>>, DecodeError> {
        if self.total == 0 {
            return Ok(Some(data.to_vec()));
        }
        if self.buffer.len() + data.len() > self.total {
            return Err(DecodeError::InvalidField {
                context: "dvc message",
                field: "length",
                reason: "data beyond the declared total",
            });
        }
        self.buffer.extend_from_slice(data);
        if self.buffer.len() < self.total {
            return Ok(None);
        }
        self.total = 0;
        Ok(Some(std::mem::take(&mut self.buffer)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_pdus_have_spec_layouts() {
        let mut out = Vec::new();
        encode_capabilities_request(&mut out, 1);
        assert_eq!(out, [0x50, 0x00, 0x01, 0x00]);
        out.clear();
        encode_capabilities_request(&mut out, 3);
        assert_eq!(out.len(), 12);
        out.clear();
        encode_create_request(&mut out, 3, "ECHO", 0);
        assert_eq!(out, [0x10, 0x03, b'E', b'C', b'H', b'O', 0]);
        out.clear();
        encode_create_request(&mut out, 3, "A", 2);
        assert_eq!(out, [0x18, 0x03, b'A', 0]);
        out.clear();
        encode_data(&mut out, 0x1234, &[9]);
        assert_eq!(out, [0x31, 0x34, 0x12, 9]);
        out.clear();
        encode_close(&mut out, 3);
        assert_eq!(out, [0x40, 0x03]);
    }

    #[test]
    fn client_pdus_decode() {
        assert_eq!(
            ClientDvcPdu::decode(&[0x50, 0x00, 0x02, 0x00]).unwrap(),
            ClientDvcPdu::CapabilitiesResponse { version: 2 }
        );
        assert_eq!(
            ClientDvcPdu::decode(&[0x10, 0x03, 0, 0, 0, 0]).unwrap(),
            ClientDvcPdu::CreateResponse {
                channel_id: 3,
                status: 0
            }
        );
        assert_eq!(
            ClientDvcPdu::decode(&[0x24, 0x03, 0x10, 0x00, 1, 2]).unwrap(),
            ClientDvcPdu::DataFirst {
                channel_id: 3,
                total: 16,
                data: &[1, 2]
            }
        );
        assert!(ClientDvcPdu::decode(&[0xF0]).is_err());
        assert!(ClientDvcPdu::decode(&[0x13]).is_err());
        assert!(ClientDvcPdu::decode(&[]).is_err());
    }

    #[test]
    fn long_messages_split_and_reassemble() {
        for len in [0usize, 1, 1595, 1596, 1600, 5000, 70_000] {
            let message: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut pdus = Vec::new();
            encode_message(&mut pdus, 300, &message, 1600);
            let mut reassembler = DvcReassembler::default();
            let mut whole = None;
            for pdu in &pdus {
                assert!(pdu.len() <= MAX_PDU);
                whole = match ClientDvcPdu::decode(pdu).unwrap() {
                    ClientDvcPdu::DataFirst { total, data, .. } => {
                        reassembler.first(total, data, 1 << 20).unwrap()
                    }
                    ClientDvcPdu::Data { data, .. } => reassembler.more(data).unwrap(),
                    other => panic!("unexpected {other:?}"),
                };
            }
            assert_eq!(whole, Some(message), "length {len}");
        }
    }

    #[test]
    fn reassembly_and_caps() {
        let mut reassembler = DvcReassembler::default();
        assert_eq!(reassembler.first(4, &[1, 2], 100).unwrap(), None);
        assert_eq!(reassembler.more(&[3, 4]).unwrap(), Some(vec![1, 2, 3, 4]));
        assert_eq!(reassembler.more(&[5]).unwrap(), Some(vec![5]));
        assert!(matches!(
            reassembler.first(1000, &[], 100),
            Err(DecodeError::TooLarge { .. })
        ));
        assert_eq!(reassembler.first(2, &[1], 100).unwrap(), None);
        assert!(reassembler.more(&[2, 3]).is_err());
    }
}
