//! T.125 MCS PDUs as RDP uses them: Connect-Initial/Response in BER
//! (MS-RDPBCGR 2.2.1.3, 2.2.1.4) and the PER-encoded domain PDUs (Erect
//! Domain, Attach User, Channel Join, Send Data, Disconnect Provider
//! Ultimatum; MS-RDPBCGR 2.2.1.5-2.2.1.9, 2.2.2.3).

use bytes::BufMut;

use crate::wire::ber;
use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;
use crate::wire::gcc::{ClientGccData, ServerGccData};
use crate::wire::per;

/// User ids and the initiators of domain PDUs are PER-encoded relative to 1001.
pub const USER_CHANNEL_BASE: u16 = 1001;
const CONNECT_INITIAL_TAG: u8 = 101;
const CONNECT_RESPONSE_TAG: u8 = 102;

// DomainMCSPDU choice indices (T.125 section 7, part 10).
const ERECT_DOMAIN_REQUEST: u8 = 1;
const DISCONNECT_PROVIDER_ULTIMATUM: u8 = 8;
const ATTACH_USER_REQUEST: u8 = 10;
const ATTACH_USER_CONFIRM: u8 = 11;
const CHANNEL_JOIN_REQUEST: u8 = 14;
const CHANNEL_JOIN_CONFIRM: u8 = 15;
const SEND_DATA_REQUEST: u8 = 25;
const SEND_DATA_INDICATION: u8 = 26;
/// dataPriority high and segmentation begin|end, as every RDP sender writes it.
const SEND_DATA_PRIORITY_SEGMENTATION: u8 = 0x70;

/// DomainParameters (T.125 section 7, part 2), carried in BER by
/// [MS-RDPBCGR 2.2.1.3](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/db6713ee-1c0e-4064-a3b3-0fac30b4037b) and [2.2.1.4](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/927de44c-7fe8-4206-a14f-e5517dc24b1c).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainParameters {
    pub max_channel_ids: u32,
    pub max_user_ids: u32,
    pub max_token_ids: u32,
    pub num_priorities: u32,
    pub min_throughput: u32,
    pub max_height: u32,
    pub max_mcs_pdu_size: u32,
    pub protocol_version: u32,
}

impl DomainParameters {
    #[cfg(any(test, feature = "fuzzing"))]
    /// What RDP servers answer with (MS-RDPBCGR 3.3.5.3.3 merges the client's
    /// proposals into values like these).
    pub fn server_default() -> Self {
        Self {
            max_channel_ids: 34,
            max_user_ids: 3,
            max_token_ids: 0,
            num_priorities: 1,
            min_throughput: 0,
            max_height: 1,
            max_mcs_pdu_size: 0xFFFF,
            protocol_version: 2,
        }
    }

    fn decode(cursor: &mut ReadCursor<'_>) -> Result<Self, DecodeError> {
        let length = ber::read_tag(cursor, ber::TAG_SEQUENCE)?;
        let mut inner = ReadCursor::new(cursor.read_slice(length)?, "mcs domain parameters");
        Ok(Self {
            max_channel_ids: ber::read_integer(&mut inner)?,
            max_user_ids: ber::read_integer(&mut inner)?,
            max_token_ids: ber::read_integer(&mut inner)?,
            num_priorities: ber::read_integer(&mut inner)?,
            min_throughput: ber::read_integer(&mut inner)?,
            max_height: ber::read_integer(&mut inner)?,
            max_mcs_pdu_size: ber::read_integer(&mut inner)?,
            protocol_version: ber::read_integer(&mut inner)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let mut inner = Vec::with_capacity(32);
        for value in [
            self.max_channel_ids,
            self.max_user_ids,
            self.max_token_ids,
            self.num_priorities,
            self.min_throughput,
            self.max_height,
            self.max_mcs_pdu_size,
            self.protocol_version,
        ] {
            ber::write_integer(&mut inner, value);
        }
        out.put_u8(ber::TAG_SEQUENCE);
        ber::write_length(out, inner.len());
        out.put_slice(&inner);
    }
}

/// The contents of the [APPLICATION `tag`] element that `payload` holds.
fn application_body<'a>(
    payload: &'a [u8],
    tag: u8,
    context: &'static str,
) -> Result<ReadCursor<'a>, DecodeError> {
    let mut outer = ReadCursor::new(payload, context);
    let length = ber::read_application_tag(&mut outer, tag)?;
    Ok(ReadCursor::new(outer.read_slice(length)?, context))
}

/// MCS Connect-Initial with the GCC Conference Create Request,
/// [MS-RDPBCGR 2.2.1.3](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/db6713ee-1c0e-4064-a3b3-0fac30b4037b).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectInitial {
    pub calling_domain_selector: Vec<u8>,
    pub called_domain_selector: Vec<u8>,
    pub upward_flag: bool,
    pub target_parameters: DomainParameters,
    pub minimum_parameters: DomainParameters,
    pub maximum_parameters: DomainParameters,
    pub gcc: ClientGccData,
}

impl ConnectInitial {
    /// `payload` is the user data of the X.224 Data TPDU.
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut cursor = application_body(payload, CONNECT_INITIAL_TAG, "mcs connect initial")?;
        let calling_domain_selector = ber::read_octet_string(&mut cursor)?.to_vec();
        let called_domain_selector = ber::read_octet_string(&mut cursor)?.to_vec();
        let upward_flag = ber::read_boolean(&mut cursor)?;
        let target_parameters = DomainParameters::decode(&mut cursor)?;
        let minimum_parameters = DomainParameters::decode(&mut cursor)?;
        let maximum_parameters = DomainParameters::decode(&mut cursor)?;
        let user_data = ber::read_octet_string(&mut cursor)?;
        Ok(Self {
            calling_domain_selector,
            called_domain_selector,
            upward_flag,
            target_parameters,
            minimum_parameters,
            maximum_parameters,
            gcc: ClientGccData::decode(user_data)?,
        })
    }

    #[cfg(any(test, feature = "fuzzing"))]
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut inner = Vec::new();
        ber::write_octet_string(&mut inner, &self.calling_domain_selector);
        ber::write_octet_string(&mut inner, &self.called_domain_selector);
        ber::write_boolean(&mut inner, self.upward_flag);
        self.target_parameters.encode(&mut inner);
        self.minimum_parameters.encode(&mut inner);
        self.maximum_parameters.encode(&mut inner);
        let mut user_data = Vec::new();
        self.gcc.encode(&mut user_data);
        ber::write_octet_string(&mut inner, &user_data);
        ber::write_application_tag(out, CONNECT_INITIAL_TAG, inner.len());
        out.put_slice(&inner);
    }
}

/// MCS Connect-Response with the GCC Conference Create Response,
/// [MS-RDPBCGR 2.2.1.4](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/927de44c-7fe8-4206-a14f-e5517dc24b1c).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectResponse {
    /// rt-successful is 0.
    pub result: u8,
    pub called_connect_id: u32,
    pub domain_parameters: DomainParameters,
    pub gcc: ServerGccData,
}

impl ConnectResponse {
    /// Writes the MCS bytes only; the caller wraps them in X.224 Data.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut inner = Vec::new();
        ber::write_enumerated(&mut inner, self.result);
        ber::write_integer(&mut inner, self.called_connect_id);
        self.domain_parameters.encode(&mut inner);
        let mut user_data = Vec::new();
        self.gcc.encode(&mut user_data);
        ber::write_octet_string(&mut inner, &user_data);
        ber::write_application_tag(out, CONNECT_RESPONSE_TAG, inner.len());
        out.put_slice(&inner);
    }

    #[cfg(any(test, feature = "fuzzing"))]
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut cursor = application_body(payload, CONNECT_RESPONSE_TAG, "mcs connect response")?;
        let result = ber::read_enumerated(&mut cursor)?;
        let called_connect_id = ber::read_integer(&mut cursor)?;
        let domain_parameters = DomainParameters::decode(&mut cursor)?;
        let user_data = ber::read_octet_string(&mut cursor)?;
        Ok(Self {
            result,
            called_connect_id,
            domain_parameters,
            gcc: ServerGccData::decode(user_data)?,
        })
    }
}

/// T.125 Reason of a Disconnect Provider Ultimatum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisconnectReason(pub u8);

impl DisconnectReason {
    pub const PROVIDER_INITIATED: Self = Self(1);
    #[cfg(test)]
    pub const USER_REQUESTED: Self = Self(3);
}

impl From<u8> for DisconnectReason {
    fn from(value: u8) -> Self {
        Self(value)
    }
}

/// The PER-encoded MCS domain PDUs RDP uses: MS-RDPBCGR 2.2.1.5, 2.2.1.6,
/// [2.2.1.7](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/3b3d850b-99b1-4a9a-852b-1eb2da5024e5),
/// [2.2.1.8](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/64564639-3b2d-4d2c-ae77-1105b4cc011b),
/// [2.2.1.9](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/cfc938b5-041d-4c15-9909-81dd035b914e), Send Data (2.2.8.1.1.1) and
/// Disconnect Provider Ultimatum (2.2.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainPdu<'a> {
    ErectDomainRequest {
        sub_height: u32,
        sub_interval: u32,
    },
    AttachUserRequest,
    AttachUserConfirm {
        result: u8,
        initiator: Option<u16>,
    },
    ChannelJoinRequest {
        initiator: u16,
        channel_id: u16,
    },
    ChannelJoinConfirm {
        result: u8,
        initiator: u16,
        requested: u16,
        channel_id: Option<u16>,
    },
    SendDataRequest {
        initiator: u16,
        channel_id: u16,
        data: &'a [u8],
    },
    SendDataIndication {
        initiator: u16,
        channel_id: u16,
        data: &'a [u8],
    },
    DisconnectProviderUltimatum {
        reason: DisconnectReason,
    },
}

impl<'a> DomainPdu<'a> {
    pub fn decode(payload: &'a [u8]) -> Result<Self, DecodeError> {
        let mut cursor = ReadCursor::new(payload, "mcs domain pdu");
        let first = cursor.read_u8()?;
        let pdu = match first >> 2 {
            ERECT_DOMAIN_REQUEST => {
                let (sub_height, sub_interval) = read_erect_domain_fields(&mut cursor)?;
                Self::ErectDomainRequest {
                    sub_height,
                    sub_interval,
                }
            }
            ATTACH_USER_REQUEST => Self::AttachUserRequest,
            ATTACH_USER_CONFIRM => {
                let result = read_result(first, &mut cursor)?;
                let initiator = if first & 0x02 != 0 {
                    Some(per::read_u16(&mut cursor, USER_CHANNEL_BASE)?)
                } else {
                    None
                };
                Self::AttachUserConfirm { result, initiator }
            }
            CHANNEL_JOIN_REQUEST => Self::ChannelJoinRequest {
                initiator: per::read_u16(&mut cursor, USER_CHANNEL_BASE)?,
                channel_id: cursor.read_u16_be()?,
            },
            CHANNEL_JOIN_CONFIRM => {
                let result = read_result(first, &mut cursor)?;
                let initiator = per::read_u16(&mut cursor, USER_CHANNEL_BASE)?;
                let requested = cursor.read_u16_be()?;
                let channel_id = if first & 0x02 != 0 {
                    Some(cursor.read_u16_be()?)
                } else {
                    None
                };
                Self::ChannelJoinConfirm {
                    result,
                    initiator,
                    requested,
                    channel_id,
                }
            }
            choice @ (SEND_DATA_REQUEST | SEND_DATA_INDICATION) => {
                let initiator = per::read_u16(&mut cursor, USER_CHANNEL_BASE)?;
                let channel_id = cursor.read_u16_be()?;
                let _priority_and_segmentation = cursor.read_u8()?;
                let length = per::read_length(&mut cursor)?;
                let data = cursor.read_slice(length)?;
                if choice == SEND_DATA_REQUEST {
                    Self::SendDataRequest {
                        initiator,
                        channel_id,
                        data,
                    }
                } else {
                    Self::SendDataIndication {
                        initiator,
                        channel_id,
                        data,
                    }
                }
            }
            DISCONNECT_PROVIDER_ULTIMATUM => {
                // The 3-bit reason straddles the first two bytes.
                let second = cursor.read_u8()?;
                Self::DisconnectProviderUltimatum {
                    reason: DisconnectReason(((first & 0x03) << 1) | (second >> 7)),
                }
            }
            other => {
                return Err(DecodeError::Unexpected {
                    context: "mcs domain pdu",
                    what: "choice",
                    value: u32::from(other),
                });
            }
        };
        Ok(pdu)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            Self::ErectDomainRequest {
                sub_height,
                sub_interval,
            } => {
                out.put_u8(ERECT_DOMAIN_REQUEST << 2);
                per::write_integer(out, sub_height);
                per::write_integer(out, sub_interval);
            }
            Self::AttachUserRequest => out.put_u8(ATTACH_USER_REQUEST << 2),
            Self::AttachUserConfirm { result, initiator } => {
                let present = if initiator.is_some() { 0x02 } else { 0 };
                write_result(out, ATTACH_USER_CONFIRM << 2 | present, result);
                if let Some(initiator) = initiator {
                    per::write_u16(out, initiator, USER_CHANNEL_BASE);
                }
            }
            Self::ChannelJoinRequest {
                initiator,
                channel_id,
            } => {
                out.put_u8(CHANNEL_JOIN_REQUEST << 2);
                per::write_u16(out, initiator, USER_CHANNEL_BASE);
                out.put_u16(channel_id);
            }
            Self::ChannelJoinConfirm {
                result,
                initiator,
                requested,
                channel_id,
            } => {
                let present = if channel_id.is_some() { 0x02 } else { 0 };
                write_result(out, CHANNEL_JOIN_CONFIRM << 2 | present, result);
                per::write_u16(out, initiator, USER_CHANNEL_BASE);
                out.put_u16(requested);
                if let Some(channel_id) = channel_id {
                    out.put_u16(channel_id);
                }
            }
            Self::SendDataRequest {
                initiator,
                channel_id,
                data,
            } => {
                encode_send_data_header(out, SEND_DATA_REQUEST, initiator, channel_id, data.len());
                out.put_slice(data);
            }
            Self::SendDataIndication {
                initiator,
                channel_id,
                data,
            } => {
                encode_send_data_indication_header(out, initiator, channel_id, data.len());
                out.put_slice(data);
            }
            Self::DisconnectProviderUltimatum { reason } => {
                out.put_u8(DISCONNECT_PROVIDER_ULTIMATUM << 2 | (reason.0 >> 1) & 0x03);
                out.put_u8((reason.0 & 1) << 7);
            }
        }
    }
}

/// subHeight and subInterval of an Erect Domain Request. T.125 makes them
/// INTEGER (0..MAX), in PER a length byte and at least one byte of value
/// each (`01 00 01 00` in MS-RDPBCGR 4.1.5). rdesktop writes each as a bare
/// 16-bit big-endian number instead (`00 01 00 01`), which as PER would
/// start with a zero length. Windows servers, rdesktop's peers for two
/// decades, take it, and RDP has no use for the values: the client SHOULD
/// send zeros (MS-RDPBCGR 3.2.5.3.5) and the server's next step, the Attach
/// User Confirm, does not depend on them. So exactly four bytes starting
/// with a zero are read as rdesktop meant them. Anything else must be PER:
/// a truncated or zero-length integer still fails, because it means the
/// client's framing is off and the PDUs after it cannot be trusted either.
fn read_erect_domain_fields(cursor: &mut ReadCursor<'_>) -> Result<(u32, u32), DecodeError> {
    if cursor.remaining() == 4 && cursor.peek_u8()? == 0 {
        let sub_height = cursor.read_u16_be()?;
        let sub_interval = cursor.read_u16_be()?;
        return Ok((u32::from(sub_height), u32::from(sub_interval)));
    }
    Ok((per::read_integer(cursor)?, per::read_integer(cursor)?))
}

/// The 4-bit Result enumeration follows the choice and the optional-field
/// bit: one bit in the first byte, three in the second.
fn read_result(first: u8, cursor: &mut ReadCursor<'_>) -> Result<u8, DecodeError> {
    let second = cursor.read_u8()?;
    Ok(((first & 0x01) << 3) | (second >> 5))
}

fn write_result(out: &mut Vec<u8>, first: u8, result: u8) {
    out.put_u8(first | (result >> 3) & 0x01);
    out.put_u8((result & 0x07) << 5);
}

fn encode_send_data_header(
    out: &mut Vec<u8>,
    choice: u8,
    initiator: u16,
    channel_id: u16,
    data_len: usize,
) {
    out.put_u8(choice << 2);
    per::write_u16(out, initiator, USER_CHANNEL_BASE);
    out.put_u16(channel_id);
    out.put_u8(SEND_DATA_PRIORITY_SEGMENTATION);
    per::write_length(out, data_len);
}

/// The header of a Send Data Indication whose `data_len` bytes the caller
/// appends right after, so large payloads are not copied twice.
pub fn encode_send_data_indication_header(
    out: &mut Vec<u8>,
    initiator: u16,
    channel_id: u16,
    data_len: usize,
) {
    encode_send_data_header(out, SEND_DATA_INDICATION, initiator, channel_id, data_len);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(pdu: DomainPdu<'_>, expected: &[u8]) {
        let mut encoded = Vec::new();
        pdu.encode(&mut encoded);
        assert_eq!(encoded, expected, "{pdu:?}");
        assert_eq!(DomainPdu::decode(&encoded).unwrap(), pdu);
    }

    /// The domain PDUs of MS-RDPBCGR 4.1.5 to 4.1.9 (after TPKT and X.224).
    #[test]
    fn spec_domain_pdus() {
        round_trip(
            DomainPdu::ErectDomainRequest {
                sub_height: 0,
                sub_interval: 0,
            },
            &[0x04, 0x01, 0x00, 0x01, 0x00],
        );
        round_trip(DomainPdu::AttachUserRequest, &[0x28]);
        round_trip(
            DomainPdu::AttachUserConfirm {
                result: 0,
                initiator: Some(1007),
            },
            &[0x2e, 0x00, 0x00, 0x06],
        );
        round_trip(
            DomainPdu::ChannelJoinRequest {
                initiator: 1007,
                channel_id: 1007,
            },
            &[0x38, 0x00, 0x06, 0x03, 0xef],
        );
        round_trip(
            DomainPdu::ChannelJoinConfirm {
                result: 0,
                initiator: 1007,
                requested: 1007,
                channel_id: Some(1007),
            },
            &[0x3e, 0x00, 0x00, 0x06, 0x03, 0xef, 0x03, 0xef],
        );
        round_trip(
            DomainPdu::DisconnectProviderUltimatum {
                reason: DisconnectReason::USER_REQUESTED,
            },
            &[0x21, 0x80],
        );
    }

    #[test]
    fn connect_response_framing_matches_the_spec_layout() {
        let response = ConnectResponse {
            result: 0,
            called_connect_id: 0,
            domain_parameters: DomainParameters::server_default(),
            gcc: ServerGccData {
                core: crate::wire::gcc::ServerCoreData {
                    version: 0x0008_0004,
                    client_requested_protocols: Some(0),
                    early_capability_flags: None,
                },
                network: crate::wire::gcc::ServerNetworkData {
                    io_channel: 1003,
                    channel_ids: vec![1004, 1005, 1006],
                },
                security: crate::wire::gcc::ServerSecurityData::none(),
                message_channel: None,
                multitransport: None,
            },
        };
        let mut encoded = Vec::new();
        response.encode(&mut encoded);
        // [APPLICATION 102], result rt-successful, calledConnectId 0, then the
        // domain parameters, as laid out in MS-RDPBCGR 4.1.4.
        assert_eq!(&encoded[..2], &[0x7f, 0x66]);
        let body = 3;
        assert_eq!(
            &encoded[body..body + 6],
            &[0x0a, 0x01, 0x00, 0x02, 0x01, 0x00]
        );
        assert_eq!(&encoded[body + 6..body + 8], &[0x30, 0x1a]);
        // The user data OCTET STRING and the T.124 Conference Create Response
        // header: OID 0.0.20.124.0.1, length, choice 0x14, nodeID 0x79f3,
        // tag 1, result 0, one user data set keyed "McDn".
        let gcc_start = body + 8 + 0x1a;
        assert_eq!(encoded[gcc_start], 0x04);
        let gcc = &encoded[gcc_start + 2..];
        assert_eq!(&gcc[..7], &[0x00, 0x05, 0x00, 0x14, 0x7c, 0x00, 0x01]);
        assert_eq!(
            &gcc[8..21],
            &[
                0x14, 0x76, 0x0a, 0x01, 0x01, 0x00, 0x01, 0xc0, 0x00, 0x4d, 0x63, 0x44, 0x6e
            ]
        );
        // Server core, network and security (method and level NONE) blocks,
        // in the order of MS-RDPBCGR 4.1.4, the network block padded to a
        // multiple of four bytes.
        assert_eq!(
            &gcc[22..],
            &[
                0x01, 0x0c, 0x0c, 0x00, 0x04, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, //
                0x03, 0x0c, 0x10, 0x00, 0xeb, 0x03, 0x03, 0x00, 0xec, 0x03, 0xed, 0x03, //
                0xee, 0x03, 0x00, 0x00, //
                0x02, 0x0c, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
            ]
        );
        assert_eq!(ConnectResponse::decode(&encoded).unwrap(), response);
        for end in 0..encoded.len() {
            assert!(ConnectResponse::decode(&encoded[..end]).is_err());
        }
    }

    /// MS-RDPBCGR 4.1.4, the whole annotated dump: a Windows server's
    /// Connect Response under Standard RDP Security (its security block
    /// carries a server random and a proprietary certificate).
    const SPEC_CONNECT_RESPONSE: [u8; 0x151] = [
        0x03, 0x00, 0x01, 0x51, 0x02, 0xf0, 0x80, 0x7f, 0x66, 0x82, 0x01, 0x45, 0x0a, 0x01, 0x00,
        0x02, 0x01, 0x00, 0x30, 0x1a, 0x02, 0x01, 0x22, 0x02, 0x01, 0x03, 0x02, 0x01, 0x00, 0x02,
        0x01, 0x01, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01, 0x02, 0x03, 0x00, 0xff, 0xf8, 0x02, 0x01,
        0x02, 0x04, 0x82, 0x01, 0x1f, 0x00, 0x05, 0x00, 0x14, 0x7c, 0x00, 0x01, 0x2a, 0x14, 0x76,
        0x0a, 0x01, 0x01, 0x00, 0x01, 0xc0, 0x00, 0x4d, 0x63, 0x44, 0x6e, 0x81, 0x08, 0x01, 0x0c,
        0x0c, 0x00, 0x04, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x0c, 0x10, 0x00, 0xeb,
        0x03, 0x03, 0x00, 0xec, 0x03, 0xed, 0x03, 0xee, 0x03, 0x00, 0x00, 0x02, 0x0c, 0xec, 0x00,
        0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0xb8, 0x00, 0x00,
        0x00, 0x10, 0x11, 0x77, 0x20, 0x30, 0x61, 0x0a, 0x12, 0xe4, 0x34, 0xa1, 0x1e, 0xf2, 0xc3,
        0x9f, 0x31, 0x7d, 0xa4, 0x5f, 0x01, 0x89, 0x34, 0x96, 0xe0, 0xff, 0x11, 0x08, 0x69, 0x7f,
        0x1a, 0xc3, 0xd2, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x06, 0x00, 0x5c, 0x00, 0x52, 0x53, 0x41, 0x31, 0x48, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00,
        0x00, 0x3f, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0xcb, 0x81, 0xfe, 0xba, 0x6d, 0x61,
        0xc3, 0x55, 0x05, 0xd5, 0x5f, 0x2e, 0x87, 0xf8, 0x71, 0x94, 0xd6, 0xf1, 0xa5, 0xcb, 0xf1,
        0x5f, 0x0c, 0x3d, 0xf8, 0x70, 0x02, 0x96, 0xc4, 0xfb, 0x9b, 0xc8, 0x3c, 0x2d, 0x55, 0xae,
        0xe8, 0xff, 0x32, 0x75, 0xea, 0x68, 0x79, 0xe5, 0xa2, 0x01, 0xfd, 0x31, 0xa0, 0xb1, 0x1f,
        0x55, 0xa6, 0x1f, 0xc1, 0xf6, 0xd1, 0x83, 0x88, 0x63, 0x26, 0x56, 0x12, 0xbc, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x48, 0x00, 0xe9, 0xe1, 0xd6, 0x28, 0x46,
        0x8b, 0x4e, 0xf5, 0x0a, 0xdf, 0xfd, 0xee, 0x21, 0x99, 0xac, 0xb4, 0xe1, 0x8f, 0x5f, 0x81,
        0x57, 0x82, 0xef, 0x9d, 0x96, 0x52, 0x63, 0x27, 0x18, 0x29, 0xdb, 0xb3, 0x4a, 0xfd, 0x9a,
        0xda, 0x42, 0xad, 0xb5, 0x69, 0x21, 0x89, 0x0e, 0x1d, 0xc0, 0x4c, 0x1a, 0xa8, 0xaa, 0x71,
        0x3e, 0x0f, 0x54, 0xb9, 0x9a, 0xe4, 0x99, 0x68, 0x3f, 0x6c, 0xd6, 0x76, 0x84, 0x61, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    /// The type and bytes of each server data block in a Connect Response,
    /// in wire order.
    fn server_blocks(mcs: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let mut body = application_body(mcs, CONNECT_RESPONSE_TAG, "test").unwrap();
        ber::read_enumerated(&mut body).unwrap();
        ber::read_integer(&mut body).unwrap();
        DomainParameters::decode(&mut body).unwrap();
        let user_data = ber::read_octet_string(&mut body).unwrap();
        // T.124 key, connectPDU length, then the Conference Create Response
        // up to "McDn" (13 bytes), then the blocks' PER length.
        let mut gcc = ReadCursor::new(user_data, "test");
        gcc.skip(7).unwrap();
        per::read_length(&mut gcc).unwrap();
        gcc.skip(13).unwrap();
        let length = per::read_length(&mut gcc).unwrap();
        let mut blocks = ReadCursor::new(gcc.read_slice(length).unwrap(), "test");
        let mut out = Vec::new();
        while !blocks.is_empty() {
            let header = blocks.read_array::<4>().unwrap();
            let length = usize::from(u16::from_le_bytes([header[2], header[3]]));
            let body = blocks.read_slice(length - 4).unwrap();
            out.push((
                u16::from_le_bytes([header[0], header[1]]),
                [&header[..], body].concat(),
            ));
        }
        out
    }

    /// Our Connect Response puts its blocks in the order of the spec's
    /// example (core, network, security), byte for byte where the
    /// contents agree; the domain parameters are written as Windows does.
    #[test]
    fn connect_response_follows_the_spec_example() {
        let spec = &SPEC_CONNECT_RESPONSE[7..];
        let decoded = ConnectResponse::decode(spec).unwrap();
        assert_eq!(decoded.gcc.core.version, 0x0008_0004);
        assert_eq!(decoded.gcc.network.channel_ids, [1004, 1005, 1006]);
        assert_eq!(decoded.gcc.security.encryption_method, 2);
        let ours = ConnectResponse {
            result: 0,
            called_connect_id: 0,
            domain_parameters: decoded.domain_parameters.clone(),
            gcc: ServerGccData {
                security: crate::wire::gcc::ServerSecurityData::none(),
                ..decoded.gcc.clone()
            },
        };
        let mut encoded = Vec::new();
        ours.encode(&mut encoded);
        // result, calledConnectId and domainParameters, byte for byte.
        let body = |mcs: &[u8]| {
            application_body(mcs, CONNECT_RESPONSE_TAG, "test")
                .unwrap()
                .rest()
                .to_vec()
        };
        assert_eq!(body(&encoded)[..34], body(spec)[..34]);
        let spec_blocks = server_blocks(spec);
        let our_blocks = server_blocks(&encoded);
        let types = |blocks: &[(u16, Vec<u8>)]| blocks.iter().map(|b| b.0).collect::<Vec<_>>();
        assert_eq!(types(&spec_blocks), [0x0C01, 0x0C03, 0x0C02]);
        assert_eq!(types(&our_blocks), types(&spec_blocks));
        assert_eq!(our_blocks[..2], spec_blocks[..2]);
        // The optional blocks come after those three.
        let mut with_optional = ours.clone();
        with_optional.gcc.message_channel = Some(1007);
        with_optional.gcc.multitransport = Some(0x100);
        let mut encoded = Vec::new();
        with_optional.encode(&mut encoded);
        assert_eq!(
            types(&server_blocks(&encoded)),
            [0x0C01, 0x0C03, 0x0C02, 0x0C04, 0x0C08]
        );
    }

    /// MS-RDPBCGR 4.1.3, bytes 0x000-0x17B copied from the annotated dump
    /// (TPKT, X.224, Connect-Initial, GCC request, core, cluster, security
    /// data and the network data header).
    const SPEC_CONNECT_INITIAL_HEAD: [u8; 0x17c] = [
        0x03, 0x00, 0x01, 0xa0, 0x02, 0xf0, 0x80, 0x7f, 0x65, 0x82, 0x01, 0x94, 0x04, 0x01, 0x01,
        0x04, 0x01, 0x01, 0x01, 0x01, 0xff, 0x30, 0x19, 0x02, 0x01, 0x22, 0x02, 0x01, 0x02, 0x02,
        0x01, 0x00, 0x02, 0x01, 0x01, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01, 0x02, 0x02, 0xff, 0xff,
        0x02, 0x01, 0x02, 0x30, 0x19, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x02,
        0x01, 0x01, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01, 0x02, 0x02, 0x04, 0x20, 0x02, 0x01, 0x02,
        0x30, 0x1c, 0x02, 0x02, 0xff, 0xff, 0x02, 0x02, 0xfc, 0x17, 0x02, 0x02, 0xff, 0xff, 0x02,
        0x01, 0x01, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01, 0x02, 0x02, 0xff, 0xff, 0x02, 0x01, 0x02,
        0x04, 0x82, 0x01, 0x33, 0x00, 0x05, 0x00, 0x14, 0x7c, 0x00, 0x01, 0x81, 0x2a, 0x00, 0x08,
        0x00, 0x10, 0x00, 0x01, 0xc0, 0x00, 0x44, 0x75, 0x63, 0x61, 0x81, 0x1c, 0x01, 0xc0, 0xd8,
        0x00, 0x04, 0x00, 0x08, 0x00, 0x00, 0x05, 0x00, 0x04, 0x01, 0xca, 0x03, 0xaa, 0x09, 0x04,
        0x00, 0x00, 0xce, 0x0e, 0x00, 0x00, 0x45, 0x00, 0x4c, 0x00, 0x54, 0x00, 0x4f, 0x00, 0x4e,
        0x00, 0x53, 0x00, 0x2d, 0x00, 0x44, 0x00, 0x45, 0x00, 0x56, 0x00, 0x32, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xca, 0x01, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x18, 0x00, 0x07, 0x00, 0x01, 0x00, 0x36, 0x00, 0x39, 0x00, 0x37, 0x00, 0x31,
        0x00, 0x32, 0x00, 0x2d, 0x00, 0x37, 0x00, 0x38, 0x00, 0x33, 0x00, 0x2d, 0x00, 0x30, 0x00,
        0x33, 0x00, 0x35, 0x00, 0x37, 0x00, 0x39, 0x00, 0x37, 0x00, 0x34, 0x00, 0x2d, 0x00, 0x34,
        0x00, 0x32, 0x00, 0x37, 0x00, 0x31, 0x00, 0x34, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x04, 0xc0, 0x0c, 0x00, 0x0d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x02, 0xc0, 0x0c, 0x00, 0x1b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xc0, 0x2c,
        0x00, 0x03, 0x00, 0x00, 0x00,
    ];

    /// The rest of 4.1.3: the three CHANNEL_DEFs, written out from the
    /// example's annotation (rdpdr 0x80800000, cliprdr 0xc0a00000, rdpsnd
    /// 0xc0000000).
    fn spec_connect_initial() -> Vec<u8> {
        let mut frame = SPEC_CONNECT_INITIAL_HEAD.to_vec();
        for (name, options) in [
            (*b"rdpdr\0\0\0", 0x8080_0000u32),
            (*b"cliprdr\0", 0xc0a0_0000),
            (*b"rdpsnd\0\0", 0xc000_0000),
        ] {
            frame.extend_from_slice(&name);
            frame.extend_from_slice(&options.to_le_bytes());
        }
        assert_eq!(frame.len(), 0x1a0);
        frame
    }

    #[test]
    fn decodes_spec_connect_initial() {
        let frame = spec_connect_initial();
        let payload = crate::wire::x224::decode_data(&frame).unwrap();
        let initial = ConnectInitial::decode(payload).unwrap();
        assert_eq!(initial.calling_domain_selector, [1]);
        assert_eq!(initial.called_domain_selector, [1]);
        assert!(initial.upward_flag);
        assert_eq!(
            initial.target_parameters,
            DomainParameters {
                max_channel_ids: 34,
                max_user_ids: 2,
                max_token_ids: 0,
                num_priorities: 1,
                min_throughput: 0,
                max_height: 1,
                max_mcs_pdu_size: 0xFFFF,
                protocol_version: 2,
            }
        );
        assert_eq!(initial.minimum_parameters.max_mcs_pdu_size, 0x420);
        assert_eq!(initial.maximum_parameters.max_user_ids, 0xFC17);

        let core = &initial.gcc.core;
        assert_eq!(core.version, 0x0008_0004);
        assert_eq!((core.desktop_width, core.desktop_height), (1280, 1024));
        assert_eq!(core.color_depth, 0xCA01);
        assert_eq!(core.keyboard_layout, 0x409);
        assert_eq!(core.client_build, 3790);
        assert_eq!(core.client_name, "ELTONS-DEV2");
        assert_eq!(core.keyboard_type, 4);
        assert_eq!(core.keyboard_function_key, 12);
        assert_eq!(core.ime_file_name, "");
        assert_eq!(core.post_beta2_color_depth, Some(0xCA01));
        assert_eq!(core.client_product_id, Some(1));
        assert_eq!(core.high_color_depth, Some(24));
        assert_eq!(core.supported_color_depths, Some(0x07));
        assert_eq!(core.early_capability_flags, Some(0x01));
        assert_eq!(
            core.client_dig_product_id.as_deref(),
            Some("69712-783-0357974-42714")
        );
        assert_eq!(core.connection_type, Some(0));
        assert_eq!(core.server_selected_protocol, Some(0));
        assert_eq!(core.desktop_physical_width, None);

        let gcc = &initial.gcc;
        assert_eq!(
            gcc.cluster,
            Some(crate::wire::gcc::ClientClusterData {
                flags: 0x0d,
                redirected_session_id: 0
            })
        );
        assert_eq!(gcc.security.unwrap().encryption_methods, 0x1b);
        let channels = &gcc.network.as_ref().unwrap().channels;
        let names: Vec<&str> = channels.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["rdpdr", "cliprdr", "rdpsnd"]);
        assert_eq!(channels[1].options, 0xc0a0_0000);
        assert_eq!(gcc.monitor, None);

        // Our encoding re-decodes to the same value (byte equality is not
        // expected: the example writes 65535 as the 2-byte INTEGER ff ff).
        let mut encoded = Vec::new();
        initial.encode(&mut encoded);
        assert_eq!(ConnectInitial::decode(&encoded).unwrap(), initial);
    }

    #[test]
    fn spec_connect_initial_with_bad_lengths_is_an_error() {
        let frame = spec_connect_initial();
        let payload = crate::wire::x224::decode_data(&frame).unwrap();
        // Every truncation fails cleanly.
        for end in 0..payload.len() {
            assert!(ConnectInitial::decode(&payload[..end]).is_err(), "{end}");
        }
        // BER length of the Connect-Initial past the end (0x0194 -> 0x0195).
        let mut bad = payload.to_vec();
        bad[4] = 0x95;
        assert!(ConnectInitial::decode(&bad).is_err());
        // Core data block length (frame offset 0x86) past the end of the user data.
        let mut bad = payload.to_vec();
        bad[0x87 - 7] = 0xFF;
        assert!(ConnectInitial::decode(&bad).is_err());
        // Wrong application tag (Connect-Response where Connect-Initial belongs).
        let mut bad = payload.to_vec();
        bad[1] = 0x66;
        assert!(ConnectInitial::decode(&bad).is_err());
        // Wrong T.124 object identifier.
        let mut bad = payload.to_vec();
        bad[0x73 - 7] = 0x7D;
        assert!(ConnectInitial::decode(&bad).is_err());
    }

    #[test]
    fn send_data_round_trips_with_long_lengths() {
        let data = vec![0xAB; 300];
        let mut encoded = Vec::new();
        DomainPdu::SendDataRequest {
            initiator: 1007,
            channel_id: 1003,
            data: &data,
        }
        .encode(&mut encoded);
        assert_eq!(
            &encoded[..8],
            &[0x64, 0x00, 0x06, 0x03, 0xeb, 0x70, 0x81, 0x2c]
        );
        assert!(matches!(
            DomainPdu::decode(&encoded).unwrap(),
            DomainPdu::SendDataRequest { channel_id: 1003, data: d, .. } if d.len() == 300
        ));
        // Declared length past the end.
        assert!(DomainPdu::decode(&encoded[..encoded.len() - 1]).is_err());
    }

    #[test]
    fn connect_initial_and_response_round_trip() {
        let gcc = crate::wire::gcc::tests::sample_client_data();
        let initial = ConnectInitial {
            calling_domain_selector: vec![1],
            called_domain_selector: vec![1],
            upward_flag: true,
            target_parameters: DomainParameters::server_default(),
            minimum_parameters: DomainParameters::server_default(),
            maximum_parameters: DomainParameters::server_default(),
            gcc,
        };
        let mut encoded = Vec::new();
        initial.encode(&mut encoded);
        assert_eq!(ConnectInitial::decode(&encoded).unwrap(), initial);
        for end in 0..encoded.len() {
            assert!(ConnectInitial::decode(&encoded[..end]).is_err());
        }
    }

    /// Found by the fuzzer (fuzz/): a client name of 16 units, filling its
    /// field without a terminator, lost its last unit when encoded again.
    #[test]
    fn fuzzed_connect_initial_round_trips() {
        let crash = include_bytes!(
            "../../tests/fuzz-crashes/mcs_connect_initial-client-name-fills-its-field"
        );
        let initial = ConnectInitial::decode(crash).unwrap();
        assert_eq!(initial.gcc.core.client_name.encode_utf16().count(), 16);
        let mut encoded = Vec::new();
        initial.encode(&mut encoded);
        assert_eq!(ConnectInitial::decode(&encoded).unwrap(), initial);
    }

    /// rdesktop 1.9's Erect Domain Request, captured: subHeight and
    /// subInterval as bare 16-bit numbers (1 and 1) rather than PER.
    #[test]
    fn rdesktop_erect_domain_request_is_accepted() {
        assert_eq!(
            DomainPdu::decode(&[0x04, 0x00, 0x01, 0x00, 0x01]).unwrap(),
            DomainPdu::ErectDomainRequest {
                sub_height: 1,
                sub_interval: 1,
            }
        );
        // The PER form of the same values still reads as PER.
        assert_eq!(
            DomainPdu::decode(&[0x04, 0x01, 0x01, 0x01, 0x01]).unwrap(),
            DomainPdu::ErectDomainRequest {
                sub_height: 1,
                sub_interval: 1,
            }
        );
    }

    /// Erect Domain Requests that are neither PER nor rdesktop's form.
    #[test]
    fn malformed_erect_domain_requests_are_refused() {
        for bad in [
            &[0x04][..],
            &[0x04, 0x00],
            &[0x04, 0x00, 0x01],
            &[0x04, 0x00, 0x01, 0x00],
            &[0x04, 0x00, 0x01, 0x00, 0x01, 0x00],
            &[0x04, 0x01, 0x00, 0x00],
            &[0x04, 0x05, 1, 0, 0, 0, 0, 0x01, 0x00],
            &[0x04, 0x02, 0x00],
        ] {
            assert!(DomainPdu::decode(bad).is_err(), "{bad:02x?}");
        }
    }

    #[test]
    fn unknown_domain_pdu_is_an_error() {
        assert!(DomainPdu::decode(&[0xFC]).is_err());
        assert!(DomainPdu::decode(&[]).is_err());
        assert!(DomainPdu::decode(&[0x38, 0x00]).is_err());
    }
}
