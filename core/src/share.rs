//! Share control and share data headers ([MS-RDPBCGR 2.2.8.1.1.1.1](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/73d01865-2eae-407f-9b2c-87e31daac471),
//! [2.2.8.1.1.1.2](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/4b5d4c0d-a657-41e9-9c69-d58632f46d31)),
//! Demand Active (2.2.1.13.1), Confirm Active (2.2.1.13.2) and Deactivate All (2.2.3.1).

use bytes::BufMut;

use crate::capabilities::{ClientCapabilities, ServerCapabilities};
use crate::cursor::ReadCursor;
use crate::error::DecodeError;

const PDUTYPE_DEMANDACTIVEPDU: u16 = 0x1;
const PDUTYPE_CONFIRMACTIVEPDU: u16 = 0x3;
const PDUTYPE_DEACTIVATEALLPDU: u16 = 0x6;
const PDUTYPE_DATAPDU: u16 = 0x7;
/// The version nibble every share control header carries (TS_PROTOCOL_VERSION).
const PROTOCOL_VERSION: u16 = 0x10;
/// totalLength of a flow control PDU, which has no further header fields.
const FLOW_PDU_MARKER: u16 = 0x8000;
const SHARE_CONTROL_HEADER_LEN: usize = 6;
/// shareId, pad1, streamId, uncompressedLength, pduType2, compressedType, compressedLength.
const SHARE_DATA_HEADER_LEN: usize = 12;
/// PACKET_COMPRESSED in compressedType.
const PACKET_COMPRESSED: u8 = 0x20;
const STREAM_LOW: u8 = 0x01;
const SOURCE_DESCRIPTOR: &[u8] = b"RDP\0";
/// Longest source descriptor accepted from a client (it sends "MSTSC\0" or similar).
const MAX_SOURCE_DESCRIPTOR: usize = 64;

/// TS_SHARECONTROLHEADER.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareControlHeader {
    pub total_length: u16,
    pub pdu_type: u16,
    pub pdu_source: u16,
}

/// TS_SHAREDATAHEADER.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareDataHeader {
    pub share_id: u32,
    pub stream_id: u8,
    pub uncompressed_length: u16,
    pub pdu_type2: u8,
    pub compressed_type: u8,
    pub compressed_length: u16,
}

/// Confirm Active PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmActivePdu {
    pub share_id: u32,
    pub originator_id: u16,
    pub source_descriptor: Vec<u8>,
    pub capabilities: ClientCapabilities,
}

/// A share control PDU from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientShareControlPdu<'a> {
    ConfirmActive(Box<ConfirmActivePdu>),
    Data {
        header: ShareDataHeader,
        body: &'a [u8],
    },
    /// A flow control PDU (totalLength 0x8000); it carries nothing for us.
    Flow,
}

/// Decodes a share control PDU sent by the client (the MCS payload on the I/O channel).
pub fn decode_client_share_control(
    payload: &[u8],
) -> Result<(ShareControlHeader, ClientShareControlPdu<'_>), DecodeError> {
    let mut cursor = ReadCursor::new(payload, "share control pdu");
    let total_length = cursor.read_u16_le()?;
    if total_length == FLOW_PDU_MARKER {
        let header = ShareControlHeader {
            total_length,
            pdu_type: 0,
            pdu_source: 0,
        };
        return Ok((header, ClientShareControlPdu::Flow));
    }
    if usize::from(total_length) != payload.len() {
        return Err(cursor.invalid("totalLength", "does not match the pdu"));
    }
    let pdu_type = cursor.read_u16_le()? & 0x0F;
    let pdu_source = cursor.read_u16_le()?;
    let header = ShareControlHeader {
        total_length,
        pdu_type,
        pdu_source,
    };
    let pdu = match pdu_type {
        PDUTYPE_CONFIRMACTIVEPDU => {
            let share_id = cursor.read_u32_le()?;
            let originator_id = cursor.read_u16_le()?;
            let descriptor_len = usize::from(cursor.read_u16_le()?);
            let combined_len = usize::from(cursor.read_u16_le()?);
            if descriptor_len > MAX_SOURCE_DESCRIPTOR {
                return Err(cursor.invalid("lengthSourceDescriptor", "too long"));
            }
            let source_descriptor = cursor.read_slice(descriptor_len)?.to_vec();
            let mut combined = ReadCursor::new(
                cursor.read_slice(combined_len)?,
                "confirm active capabilities",
            );
            let count = usize::from(combined.read_u16_le()?);
            combined.skip(2)?;
            let capabilities = ClientCapabilities::decode(&mut combined, count)?;
            ClientShareControlPdu::ConfirmActive(Box::new(ConfirmActivePdu {
                share_id,
                originator_id,
                source_descriptor,
                capabilities,
            }))
        }
        PDUTYPE_DATAPDU => {
            let share_id = cursor.read_u32_le()?;
            let _pad = cursor.read_u8()?;
            let header = ShareDataHeader {
                share_id,
                stream_id: cursor.read_u8()?,
                uncompressed_length: cursor.read_u16_le()?,
                pdu_type2: cursor.read_u8()?,
                compressed_type: cursor.read_u8()?,
                compressed_length: cursor.read_u16_le()?,
            };
            if header.compressed_type & PACKET_COMPRESSED != 0 {
                return Err(cursor.invalid("compressedType", "compression was not negotiated"));
            }
            ClientShareControlPdu::Data {
                header,
                body: cursor.rest(),
            }
        }
        other => {
            return Err(DecodeError::Unexpected {
                context: "share control pdu",
                what: "pdu type from a client",
                value: u32::from(other),
            });
        }
    };
    Ok((header, pdu))
}

fn write_share_control_header(
    out: &mut Vec<u8>,
    total_length: usize,
    pdu_type: u16,
    pdu_source: u16,
) {
    // INVARIANT: share control PDUs the server builds stay far below 64 KiB.
    out.put_u16_le(total_length as u16);
    out.put_u16_le(pdu_type | PROTOCOL_VERSION);
    out.put_u16_le(pdu_source);
}

/// A Data PDU with share control and share data headers around `body`.
pub fn encode_data_pdu(
    out: &mut Vec<u8>,
    pdu_source: u16,
    share_id: u32,
    pdu_type2: u8,
    body: &[u8],
) {
    let total = SHARE_CONTROL_HEADER_LEN + SHARE_DATA_HEADER_LEN + body.len();
    write_share_control_header(out, total, PDUTYPE_DATAPDU, pdu_source);
    out.put_u32_le(share_id);
    out.put_u8(0);
    out.put_u8(STREAM_LOW);
    // uncompressedLength counts pduType2 onwards, as Windows servers write it.
    out.put_u16_le((body.len() + 4) as u16);
    out.put_u8(pdu_type2);
    out.put_u8(0);
    out.put_u16_le(0);
    out.put_slice(body);
}

/// Demand Active PDU.
pub fn encode_demand_active(
    out: &mut Vec<u8>,
    pdu_source: u16,
    share_id: u32,
    capabilities: &ServerCapabilities,
) {
    let mut combined = Vec::with_capacity(512);
    capabilities.encode(&mut combined);
    // shareId, lengthSourceDescriptor, lengthCombinedCapabilities, descriptor, caps, sessionId.
    let total = SHARE_CONTROL_HEADER_LEN + 4 + 2 + 2 + SOURCE_DESCRIPTOR.len() + combined.len() + 4;
    write_share_control_header(out, total, PDUTYPE_DEMANDACTIVEPDU, pdu_source);
    out.put_u32_le(share_id);
    out.put_u16_le(SOURCE_DESCRIPTOR.len() as u16);
    out.put_u16_le(combined.len() as u16);
    out.put_slice(SOURCE_DESCRIPTOR);
    out.put_slice(&combined);
    out.put_u32_le(0); // sessionId
}

/// Deactivate All PDU.
pub fn encode_deactivate_all(out: &mut Vec<u8>, pdu_source: u16, share_id: u32) {
    let total = SHARE_CONTROL_HEADER_LEN + 4 + 2 + 1;
    write_share_control_header(out, total, PDUTYPE_DEACTIVATEALLPDU, pdu_source);
    out.put_u32_le(share_id);
    out.put_u16_le(1);
    out.put_u8(0);
}

/// Encodes a Confirm Active PDU from raw capability sets (for test clients).
pub fn encode_confirm_active(
    out: &mut Vec<u8>,
    pdu_source: u16,
    share_id: u32,
    set_count: u16,
    sets: &[u8],
) {
    let descriptor = b"MSTSC\0";
    let combined_len = 4 + sets.len();
    let total = SHARE_CONTROL_HEADER_LEN + 4 + 2 + 2 + 2 + descriptor.len() + combined_len;
    write_share_control_header(out, total, PDUTYPE_CONFIRMACTIVEPDU, pdu_source);
    out.put_u32_le(share_id);
    out.put_u16_le(0x03EA); // originatorId: the server channel
    out.put_u16_le(descriptor.len() as u16);
    out.put_u16_le(combined_len as u16);
    out.put_slice(descriptor);
    out.put_u16_le(set_count);
    out.put_u16_le(0);
    out.put_slice(sets);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MS-RDPBCGR 4.1.19 Server Synchronize PDU, after the MCS header.
    #[test]
    fn data_pdu_matches_the_spec_example() {
        let mut out = Vec::new();
        encode_data_pdu(
            &mut out,
            0x03EA,
            0x0001_03EA,
            0x1F,
            &[0x01, 0x00, 0xEA, 0x03],
        );
        assert_eq!(
            out,
            [
                0x16, 0x00, 0x17, 0x00, 0xea, 0x03, 0xea, 0x03, 0x01, 0x00, 0x00, 0x01, 0x08, 0x00,
                0x1f, 0x00, 0x00, 0x00, 0x01, 0x00, 0xea, 0x03
            ]
        );
    }

    #[test]
    fn client_data_pdu_decodes() {
        let mut out = Vec::new();
        encode_data_pdu(&mut out, 1007, 0x1_03EA, 0x27, &[0, 0, 0, 0, 3, 0, 0x32, 0]);
        let (header, pdu) = decode_client_share_control(&out).unwrap();
        assert_eq!(header.pdu_source, 1007);
        let ClientShareControlPdu::Data { header, body } = pdu else {
            panic!("not a data pdu");
        };
        assert_eq!(
            (header.share_id, header.pdu_type2, body.len()),
            (0x1_03EA, 0x27, 8)
        );
    }

    #[test]
    fn confirm_active_round_trips_through_the_decoder() {
        let mut sets = Vec::new();
        sets.extend_from_slice(&[26, 0, 8, 0]);
        sets.extend_from_slice(&0x10_0000u32.to_le_bytes());
        let mut out = Vec::new();
        encode_confirm_active(&mut out, 1007, 0x1_03EA, 1, &sets);
        let (_, pdu) = decode_client_share_control(&out).unwrap();
        let ClientShareControlPdu::ConfirmActive(confirm) = pdu else {
            panic!("not confirm active");
        };
        assert_eq!(confirm.share_id, 0x1_03EA);
        assert_eq!(
            confirm
                .capabilities
                .multifragment_update
                .unwrap()
                .max_request_size,
            0x10_0000
        );
    }

    #[test]
    fn bad_pdus_are_rejected() {
        assert!(matches!(
            decode_client_share_control(&[0x00, 0x80]).unwrap().1,
            ClientShareControlPdu::Flow
        ));
        let mut out = Vec::new();
        encode_data_pdu(&mut out, 1007, 1, 0x27, &[0; 8]);
        assert!(decode_client_share_control(&out[..out.len() - 1]).is_err());
        let mut compressed = out.clone();
        compressed[15] = PACKET_COMPRESSED;
        assert!(decode_client_share_control(&compressed).is_err());
        let mut demand = Vec::new();
        encode_deactivate_all(&mut demand, 1002, 1);
        assert!(decode_client_share_control(&demand).is_err());
        let mut sets = vec![26, 0, 8, 0, 0, 0, 0, 0];
        let mut confirm = Vec::new();
        encode_confirm_active(&mut confirm, 1007, 1, 1, &sets);
        for end in 0..confirm.len() {
            assert!(decode_client_share_control(&confirm[..end]).is_err());
        }
        sets[2] = 0x40;
        let mut confirm = Vec::new();
        encode_confirm_active(&mut confirm, 1007, 1, 1, &sets);
        assert!(decode_client_share_control(&confirm).is_err());
    }
}
