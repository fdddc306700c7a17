//! Share control and share data headers ([MS-RDPBCGR 2.2.8.1.1.1.1](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/73d01865-2eae-407f-9b2c-87e31daac471),
//! [2.2.8.1.1.1.2](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/4b5d4c0d-a657-41e9-9c69-d58632f46d31)),
//! Demand Active (2.2.1.13.1), Confirm Active (2.2.1.13.2) and Deactivate All (2.2.3.1).

use bytes::BufMut;

use crate::connection::capabilities::{ClientCapabilities, ServerCapabilities};
use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;

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

/// The type nibble of TS_SHARECONTROLHEADER pduType.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareControlPduType {
    DemandActive = 0x1,
    ConfirmActive = 0x3,
    DeactivateAll = 0x6,
    Data = 0x7,
    ServerRedirect = 0xA,
    /// Not a pduType value: a T.128 flow PDU, whose totalLength field holds
    /// the marker 0x8000 and which has no share control header proper.
    Flow = 0x8000,
}

impl ShareControlPduType {
    fn from_type_nibble(value: u16) -> Option<Self> {
        Some(match value {
            0x1 => Self::DemandActive,
            0x3 => Self::ConfirmActive,
            0x6 => Self::DeactivateAll,
            0x7 => Self::Data,
            0xA => Self::ServerRedirect,
            _ => return None,
        })
    }
}

/// [TS_SHARECONTROLHEADER](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/73d01865-2eae-407f-9b2c-87e31daac471).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareControlHeader {
    pub total_length: u16,
    pub pdu_type: ShareControlPduType,
    /// The high 12 bits of pduType: TS_PROTOCOL_VERSION (0x10) from every
    /// known client; kept rather than enforced, as nothing depends on it.
    pub pdu_version: u16,
    pub pdu_source: u16,
}

impl ShareControlHeader {
    /// Reads the header. A flow PDU yields `pdu_type`
    /// [`ShareControlPduType::Flow`] with the cursor right after the marker.
    pub fn decode(cursor: &mut ReadCursor<'_>) -> Result<Self, DecodeError> {
        let total_length = cursor.read_u16_le()?;
        if total_length == FLOW_PDU_MARKER {
            return Ok(Self {
                total_length,
                pdu_type: ShareControlPduType::Flow,
                pdu_version: 0,
                pdu_source: 0,
            });
        }
        let pdu_type = cursor.read_u16_le()?;
        let pdu_source = cursor.read_u16_le()?;
        let kind = ShareControlPduType::from_type_nibble(pdu_type & 0x0F).ok_or(
            DecodeError::Unexpected {
                context: cursor.context(),
                what: "share control pdu type",
                value: u32::from(pdu_type & 0x0F),
            },
        )?;
        Ok(Self {
            total_length,
            pdu_type: kind,
            pdu_version: pdu_type & 0xFFF0,
            pdu_source,
        })
    }

    /// Writes the header (only the marker for a flow PDU).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16_le(self.total_length);
        if self.pdu_type != ShareControlPduType::Flow {
            out.put_u16_le(self.pdu_type as u16 | self.pdu_version);
            out.put_u16_le(self.pdu_source);
        }
    }
}

/// [TS_SHAREDATAHEADER](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/4b5d4c0d-a657-41e9-9c69-d58632f46d31),
/// the fields after the share control header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareDataHeader {
    pub share_id: u32,
    pub stream_id: u8,
    pub uncompressed_length: u16,
    pub pdu_type2: u8,
    pub compressed_type: u8,
    pub compressed_length: u16,
}

impl ShareDataHeader {
    pub fn decode(cursor: &mut ReadCursor<'_>) -> Result<Self, DecodeError> {
        let share_id = cursor.read_u32_le()?;
        let _pad1 = cursor.read_u8()?;
        Ok(Self {
            share_id,
            stream_id: cursor.read_u8()?,
            uncompressed_length: cursor.read_u16_le()?,
            pdu_type2: cursor.read_u8()?,
            compressed_type: cursor.read_u8()?,
            compressed_length: cursor.read_u16_le()?,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32_le(self.share_id);
        out.put_u8(0); // pad1
        out.put_u8(self.stream_id);
        out.put_u16_le(self.uncompressed_length);
        out.put_u8(self.pdu_type2);
        out.put_u8(self.compressed_type);
        out.put_u16_le(self.compressed_length);
    }
}

/// [Confirm Active PDU](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/4e9722c3-ad83-43f5-af5a-529f73d88b48)
/// (TS_CONFIRM_ACTIVE_PDU after its share control header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmActivePdu {
    pub share_id: u32,
    pub originator_id: u16,
    pub source_descriptor: Vec<u8>,
    pub capabilities: ClientCapabilities,
}

impl ConfirmActivePdu {
    fn decode(cursor: &mut ReadCursor<'_>) -> Result<Self, DecodeError> {
        let share_id = cursor.read_u32_le()?;
        let originator_id = cursor.read_u16_le()?;
        let descriptor_len = usize::from(cursor.read_u16_le()?);
        let combined_len = usize::from(cursor.read_u16_le()?);
        if descriptor_len > MAX_SOURCE_DESCRIPTOR {
            return Err(cursor.invalid("lengthSourceDescriptor", "too long"));
        }
        let source_descriptor = cursor.read_slice(descriptor_len)?.to_vec();
        // lengthCombinedCapabilities covers numberCapabilities, pad2Octets and
        // the sets, so the sets are parsed inside exactly that span.
        let mut combined = ReadCursor::new(
            cursor.read_slice(combined_len)?,
            "confirm active capabilities",
        );
        let count = usize::from(combined.read_u16_le()?);
        let _pad2 = combined.read_u16_le()?;
        let capabilities = ClientCapabilities::decode(&mut combined, count)?;
        Ok(Self {
            share_id,
            originator_id,
            source_descriptor,
            capabilities,
        })
    }
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
    let header = ShareControlHeader::decode(&mut cursor)?;
    if header.pdu_type == ShareControlPduType::Flow {
        return Ok((header, ClientShareControlPdu::Flow));
    }
    if usize::from(header.total_length) != payload.len() {
        return Err(cursor.invalid("totalLength", "does not match the pdu"));
    }
    let pdu = match header.pdu_type {
        ShareControlPduType::ConfirmActive => {
            ClientShareControlPdu::ConfirmActive(Box::new(ConfirmActivePdu::decode(&mut cursor)?))
        }
        ShareControlPduType::Data => {
            let data_header = ShareDataHeader::decode(&mut cursor)?;
            // No bulk compression is advertised, so a compressed PDU is one
            // the client should not have sent and we could not read.
            if data_header.compressed_type & PACKET_COMPRESSED != 0 {
                return Err(cursor.invalid("compressedType", "compression was not negotiated"));
            }
            ClientShareControlPdu::Data {
                header: data_header,
                body: cursor.rest(),
            }
        }
        other => {
            return Err(DecodeError::Unexpected {
                context: "share control pdu",
                what: "pdu type from a client",
                value: other as u32,
            });
        }
    };
    Ok((header, pdu))
}

fn write_share_control_header(
    out: &mut Vec<u8>,
    total_length: usize,
    pdu_type: ShareControlPduType,
    pdu_source: u16,
) {
    ShareControlHeader {
        // INVARIANT: share control PDUs the server builds stay far below 64 KiB.
        total_length: total_length as u16,
        pdu_type,
        pdu_version: PROTOCOL_VERSION,
        pdu_source,
    }
    .encode(out);
}

/// A Data PDU: share control and share data headers around `body`.
pub fn encode_data_pdu(
    out: &mut Vec<u8>,
    pdu_source: u16,
    share_id: u32,
    pdu_type2: u8,
    body: &[u8],
) {
    let total = SHARE_CONTROL_HEADER_LEN + SHARE_DATA_HEADER_LEN + body.len();
    write_share_control_header(out, total, ShareControlPduType::Data, pdu_source);
    ShareDataHeader {
        share_id,
        stream_id: STREAM_LOW,
        // Counted from pduType2 onwards, as mstsc writes it; the spec's
        // server dumps count the whole PDU instead. Clients accept both.
        uncompressed_length: (body.len() + 4) as u16,
        pdu_type2,
        compressed_type: 0,
        compressed_length: 0,
    }
    .encode(out);
    out.put_slice(body);
}

/// A [Demand Active PDU](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/bd612af5-cb54-43a2-9646-438bc3ecf5db)
/// with source descriptor "RDP\0" and sessionId 0.
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
    write_share_control_header(out, total, ShareControlPduType::DemandActive, pdu_source);
    out.put_u32_le(share_id);
    out.put_u16_le(SOURCE_DESCRIPTOR.len() as u16);
    out.put_u16_le(combined.len() as u16);
    out.put_slice(SOURCE_DESCRIPTOR);
    out.put_slice(&combined);
    out.put_u32_le(0); // sessionId
}

/// A [Deactivate All PDU](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/8a29971a-df3c-48da-add2-8ed9a05edc89)
/// with a one-byte empty source descriptor.
pub fn encode_deactivate_all(out: &mut Vec<u8>, pdu_source: u16, share_id: u32) {
    let total = SHARE_CONTROL_HEADER_LEN + 4 + 2 + 1;
    write_share_control_header(out, total, ShareControlPduType::DeactivateAll, pdu_source);
    out.put_u32_le(share_id);
    out.put_u16_le(1);
    out.put_u8(0);
}

#[cfg(any(test, feature = "fuzzing"))]
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
    write_share_control_header(out, total, ShareControlPduType::ConfirmActive, pdu_source);
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

    /// The decrypted TS_SYNCHRONIZE_PDU of MS-RDPBCGR 4.1 "Server Synchronize
    /// PDU" (a Windows server: streamId 0, uncompressedLength = the whole PDU).
    const SPEC_SERVER_SYNCHRONIZE: [u8; 22] = [
        0x16, 0x00, 0x17, 0x00, 0xea, 0x03, 0xea, 0x03, 0x01, 0x00, 0x14, 0x00, 0x16, 0x00, 0x1f,
        0x00, 0x00, 0x00, 0x01, 0x00, 0x63, 0x44,
    ];
    /// The decrypted TS_SHUTDOWN_DENIED_PDU of MS-RDPBCGR 4.2.2.
    const SPEC_SHUTDOWN_DENIED: [u8; 18] = [
        0x12, 0x00, 0x17, 0x00, 0xea, 0x03, 0xea, 0x03, 0x02, 0x00, 0xa6, 0x02, 0x12, 0x00, 0x25,
        0x00, 0x00, 0x00,
    ];

    #[test]
    fn spec_data_pdus_decode() {
        let (control, pdu) = decode_client_share_control(&SPEC_SERVER_SYNCHRONIZE).unwrap();
        assert_eq!(
            control,
            ShareControlHeader {
                total_length: 22,
                pdu_type: ShareControlPduType::Data,
                pdu_version: PROTOCOL_VERSION,
                pdu_source: 1002,
            }
        );
        let ClientShareControlPdu::Data { header, body } = pdu else {
            panic!("not a data pdu");
        };
        assert_eq!(
            header,
            ShareDataHeader {
                share_id: 0x0001_03ea,
                stream_id: 0,
                uncompressed_length: 22,
                pdu_type2: 0x1f,
                compressed_type: 0,
                compressed_length: 0,
            }
        );
        assert_eq!(body, [0x01, 0x00, 0x63, 0x44]);

        let (_, pdu) = decode_client_share_control(&SPEC_SHUTDOWN_DENIED).unwrap();
        let ClientShareControlPdu::Data { header, body } = pdu else {
            panic!("not a data pdu");
        };
        assert_eq!(
            (header.share_id, header.stream_id, header.pdu_type2),
            (0x0002_03ea, 2, 0x25)
        );
        assert!(body.is_empty());
    }

    #[test]
    fn headers_round_trip() {
        let mut out = Vec::new();
        let (control, pdu) = decode_client_share_control(&SPEC_SERVER_SYNCHRONIZE).unwrap();
        let ClientShareControlPdu::Data { header, body } = pdu else {
            panic!("not a data pdu");
        };
        control.encode(&mut out);
        header.encode(&mut out);
        out.extend_from_slice(body);
        // pad1 is written as zero: everything else is as received.
        let mut expected = SPEC_SERVER_SYNCHRONIZE;
        expected[10] = 0;
        assert_eq!(out, expected);
    }

    #[test]
    fn data_pdu_layout() {
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
        let (header, pdu) = decode_client_share_control(&out).unwrap();
        assert_eq!(header.pdu_source, 0x03EA);
        let ClientShareControlPdu::Data { header, body } = pdu else {
            panic!("not a data pdu");
        };
        assert_eq!(
            (header.share_id, header.pdu_type2, body),
            (0x1_03EA, 0x1F, &[0x01, 0x00, 0xEA, 0x03][..])
        );
    }

    #[test]
    fn demand_active_layout() {
        let capabilities = ServerCapabilities {
            desktop_width: 800,
            desktop_height: 600,
            color_depth: 32,
            max_request_size: 0x3F_0000,
            io_channel: 1003,
            surface_codecs: crate::api::config::BitmapCodecs::default().surface,
            max_unacknowledged_frames: 2,
        };
        let mut out = Vec::new();
        encode_demand_active(&mut out, 1002, 0x1_03EA, &capabilities);
        let mut cursor = ReadCursor::new(&out, "test");
        let header = ShareControlHeader::decode(&mut cursor).unwrap();
        assert_eq!(header.pdu_type, ShareControlPduType::DemandActive);
        assert_eq!(header.pdu_version, PROTOCOL_VERSION);
        assert_eq!(usize::from(header.total_length), out.len());
        assert_eq!(cursor.read_u32_le().unwrap(), 0x1_03EA);
        assert_eq!(cursor.read_u16_le().unwrap(), 4);
        let combined_len = usize::from(cursor.read_u16_le().unwrap());
        assert_eq!(cursor.read_slice(4).unwrap(), b"RDP\0");
        let mut combined = ReadCursor::new(cursor.read_slice(combined_len).unwrap(), "test");
        let count = usize::from(combined.read_u16_le().unwrap());
        combined.skip(2).unwrap();
        let caps = ClientCapabilities::decode(&mut combined, count).unwrap();
        assert!(combined.is_empty());
        assert_eq!(caps.bitmap.unwrap().desktop_width, 800);
        // sessionId closes the PDU.
        assert_eq!(cursor.rest(), [0, 0, 0, 0]);
    }

    #[test]
    fn deactivate_all_layout() {
        let mut out = Vec::new();
        encode_deactivate_all(&mut out, 1002, 0x1_03EA);
        assert_eq!(
            out,
            [
                0x0d, 0x00, 0x16, 0x00, 0xea, 0x03, 0xea, 0x03, 0x01, 0x00, 0x01, 0x00, 0x00
            ]
        );
    }

    #[test]
    fn confirm_active_round_trips_through_the_decoder() {
        let mut sets = Vec::new();
        sets.extend_from_slice(&[26, 0, 8, 0]);
        sets.extend_from_slice(&0x10_0000u32.to_le_bytes());
        let mut out = Vec::new();
        encode_confirm_active(&mut out, 1007, 0x1_03EA, 1, &sets);
        let (header, pdu) = decode_client_share_control(&out).unwrap();
        assert_eq!(header.pdu_type, ShareControlPduType::ConfirmActive);
        let ClientShareControlPdu::ConfirmActive(confirm) = pdu else {
            panic!("not confirm active");
        };
        assert_eq!(confirm.share_id, 0x1_03EA);
        assert_eq!(confirm.originator_id, 0x03EA);
        assert_eq!(confirm.source_descriptor, b"MSTSC\0");
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
    fn flow_pdu_is_its_own_variant() {
        // FlowTestPDU: flowMarker, pduTypeFlow 0x41, flowIdentifier, flowNumber, pduSource.
        let flow = [0x00, 0x80, 0x41, 0x00, 0x00, 0x01, 0xef, 0x03];
        let (header, pdu) = decode_client_share_control(&flow).unwrap();
        assert_eq!(pdu, ClientShareControlPdu::Flow);
        assert_eq!(header.pdu_type, ShareControlPduType::Flow);
        let mut out = Vec::new();
        header.encode(&mut out);
        assert_eq!(out, [0x00, 0x80]);
    }

    #[test]
    fn truncated_pdus_are_errors() {
        let mut out = Vec::new();
        encode_data_pdu(&mut out, 1007, 1, 0x27, &[0; 8]);
        for end in 0..out.len() {
            assert!(decode_client_share_control(&out[..end]).is_err(), "{end}");
        }
        let sets = [26, 0, 8, 0, 0, 0, 0, 0];
        let mut confirm = Vec::new();
        encode_confirm_active(&mut confirm, 1007, 1, 1, &sets);
        for end in 0..confirm.len() {
            assert!(
                decode_client_share_control(&confirm[..end]).is_err(),
                "{end}"
            );
        }
    }

    #[test]
    fn lengths_past_the_end_are_errors() {
        // totalLength larger than the PDU.
        let mut long = SPEC_SERVER_SYNCHRONIZE;
        long[0] = 0x40;
        assert!(decode_client_share_control(&long).is_err());
        // A capability set whose length runs past the end.
        let mut confirm = Vec::new();
        encode_confirm_active(&mut confirm, 1007, 1, 1, &[26, 0, 0x40, 0, 0, 0, 0, 0]);
        assert!(decode_client_share_control(&confirm).is_err());
        // lengthCombinedCapabilities past the end (offset 12).
        let mut confirm = Vec::new();
        encode_confirm_active(&mut confirm, 1007, 1, 1, &[26, 0, 8, 0, 0, 0, 0, 0]);
        confirm[12] = 0xFF;
        assert!(decode_client_share_control(&confirm).is_err());
        // lengthSourceDescriptor past the cap (offset 10).
        confirm[10] = 0xFF;
        assert!(decode_client_share_control(&confirm).is_err());
    }

    #[test]
    fn bad_types_are_errors() {
        // A server-only PDU type from a client.
        let mut deactivate = Vec::new();
        encode_deactivate_all(&mut deactivate, 1002, 1);
        assert!(matches!(
            decode_client_share_control(&deactivate),
            Err(DecodeError::Unexpected { value: 6, .. })
        ));
        // A type nibble that is not defined at all.
        let mut unknown = SPEC_SERVER_SYNCHRONIZE;
        unknown[2] = 0x1B;
        assert!(matches!(
            decode_client_share_control(&unknown),
            Err(DecodeError::Unexpected { value: 0xB, .. })
        ));
        // Compressed data.
        let mut compressed = SPEC_SERVER_SYNCHRONIZE;
        compressed[15] = PACKET_COMPRESSED;
        assert!(decode_client_share_control(&compressed).is_err());
    }
}
