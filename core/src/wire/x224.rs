//! X.224 class 0 TPDUs (ITU-T X.224, as profiled by MS-RDPBCGR) and the RDP
//! negotiation structures they carry.
//!
//! - Connection Request with RDP_NEG_REQ: [MS-RDPBCGR 2.2.1.1](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/18a27ef9-6f9a-4501-b000-94b1fe3c2c10)
//! - Connection Confirm with RDP_NEG_RSP / RDP_NEG_FAILURE: [MS-RDPBCGR 2.2.1.2](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/13757f8f-66db-4273-9d2c-385c33b1e483)
//! - Data TPDU: [X.224 13.7](https://www.itu.int/rec/T-REC-X.224), 3 bytes `02 F0 80`.

use bitflags::bitflags;
use bytes::BufMut;

use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;
use crate::wire::tpkt::{self, TPKT_HEADER_LEN};

const TPDU_CONNECTION_REQUEST: u8 = 0xE0;
const TPDU_CONNECTION_CONFIRM: u8 = 0xD0;
const TPDU_DISCONNECT_REQUEST: u8 = 0x80;
const TPDU_DATA: u8 = 0xF0;
/// The EOT bit of a Data TPDU: every RDP PDU fits one TPDU.
const DATA_EOT: u8 = 0x80;
/// Length indicator, code, DST-REF, SRC-REF, class option.
const CONNECTION_TPDU_FIXED_LEN: usize = 7;
const NEGOTIATION_LEN: u16 = 8;
const TYPE_RDP_NEG_REQ: u8 = 0x01;
const TYPE_RDP_NEG_RSP: u8 = 0x02;
const TYPE_RDP_NEG_FAILURE: u8 = 0x03;
const TYPE_RDP_CORRELATION_INFO: u8 = 0x06;
const CORRELATION_INFO_LEN: usize = 36;
const COOKIE_PREFIX: &[u8] = b"Cookie: mstshash=";
const ROUTING_TOKEN_PREFIX: &[u8] = b"Cookie: ";
/// The longest cookie or routing token accepted; the field has no limit in
/// the spec, but a user name plus the prefix is far shorter.
const MAX_TOKEN_LEN: usize = 1024;

/// TPKT header plus the X.224 Data TPDU header.
pub const DATA_HEADER_LEN: usize = TPKT_HEADER_LEN + 3;

bitflags! {
    /// requestedProtocols / selectedProtocol; empty means PROTOCOL_RDP.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct SecurityProtocol: u32 {
        const SSL = 0x0000_0001;
        const HYBRID = 0x0000_0002;
        const RDSTLS = 0x0000_0004;
        const HYBRID_EX = 0x0000_0008;
        const RDSAAD = 0x0000_0010;
        const _ = !0;
    }
}

bitflags! {
    /// Flags of RDP_NEG_RSP.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct ServerNegotiationFlags: u8 {
        const EXTENDED_CLIENT_DATA_SUPPORTED = 0x01;
        const DYNVC_GFX_PROTOCOL_SUPPORTED = 0x02;
        const RESTRICTED_ADMIN_MODE_SUPPORTED = 0x08;
        const REDIRECTED_AUTHENTICATION_MODE_SUPPORTED = 0x10;
        const _ = !0;
    }
}

/// RDP_NEG_REQ, MS-RDPBCGR 2.2.1.1.1 (inside [2.2.1.1](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/18a27ef9-6f9a-4501-b000-94b1fe3c2c10)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiationRequest {
    pub flags: u8,
    pub requested_protocols: SecurityProtocol,
}

/// X.224 Connection Request PDU, [MS-RDPBCGR 2.2.1.1](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/18a27ef9-6f9a-4501-b000-94b1fe3c2c10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRequest {
    /// The user name from "Cookie: mstshash=NAME".
    pub cookie: Option<String>,
    /// Any other "Cookie: ..." line (load balancer routing token), verbatim.
    pub routing_token: Option<Vec<u8>>,
    pub negotiation: Option<NegotiationRequest>,
}

impl ConnectionRequest {
    /// Decodes a whole TPKT frame.
    pub fn decode(frame: &[u8]) -> Result<Self, DecodeError> {
        let tpdu = connection_tpdu(frame, TPDU_CONNECTION_REQUEST, "x.224 connection request")?;
        let mut cursor = ReadCursor::new(tpdu, "x.224 connection request");
        let mut request = Self {
            cookie: None,
            routing_token: None,
            negotiation: None,
        };
        // A routing token and a cookie should not both be there (2.2.1.1),
        // but "If both the routingToken and cookie fields are present, the
        // server SHOULD continue with the connection" (3.3.5.3.1): up to two
        // lines are read, one of each kind.
        while cursor.rest().starts_with(ROUTING_TOKEN_PREFIX) {
            let rest = cursor.rest();
            let end = rest
                .windows(2)
                .take(MAX_TOKEN_LEN)
                .position(|pair| pair == b"\r\n")
                .ok_or(cursor.invalid("cookie", "not terminated by cr lf"))?;
            let line = cursor.read_slice(end + 2)?;
            let token = &line[..end];
            let duplicate = if let Some(name) = token.strip_prefix(COOKIE_PREFIX) {
                request
                    .cookie
                    .replace(String::from_utf8_lossy(name).into_owned())
                    .is_some()
            } else {
                request.routing_token.replace(token.to_vec()).is_some()
            };
            if duplicate {
                return Err(cursor.invalid("cookie", "two of the same kind"));
            }
        }
        if !cursor.is_empty() {
            let kind = cursor.read_u8()?;
            if kind != TYPE_RDP_NEG_REQ {
                return Err(DecodeError::Unexpected {
                    context: "rdp_neg_req",
                    what: "type",
                    value: u32::from(kind),
                });
            }
            let flags = cursor.read_u8()?;
            if cursor.read_u16_le()? != NEGOTIATION_LEN {
                return Err(cursor.invalid("length", "must be 8"));
            }
            let requested_protocols = SecurityProtocol::from_bits_retain(cursor.read_u32_le()?);
            request.negotiation = Some(NegotiationRequest {
                flags,
                requested_protocols,
            });
            // RDP_NEG_CORRELATION_INFO may follow; it only helps server logs.
            if cursor.remaining() == CORRELATION_INFO_LEN
                && cursor.peek_u8()? == TYPE_RDP_CORRELATION_INFO
            {
                cursor.skip(CORRELATION_INFO_LEN)?;
            }
        }
        if !cursor.is_empty() {
            return Err(cursor.invalid("length", "trailing bytes after the negotiation request"));
        }
        Ok(request)
    }

    #[cfg(any(test, feature = "fuzzing"))]
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut variable = Vec::new();
        // Both lines when both were read (the decoder takes one of each).
        if let Some(cookie) = &self.cookie {
            variable.put_slice(COOKIE_PREFIX);
            variable.put_slice(cookie.as_bytes());
            variable.put_slice(b"\r\n");
        }
        if let Some(token) = &self.routing_token {
            variable.put_slice(token);
            variable.put_slice(b"\r\n");
        }
        if let Some(negotiation) = &self.negotiation {
            variable.put_u8(TYPE_RDP_NEG_REQ);
            variable.put_u8(negotiation.flags);
            variable.put_u16_le(NEGOTIATION_LEN);
            variable.put_u32_le(negotiation.requested_protocols.bits());
        }
        encode_connection_tpdu(out, TPDU_CONNECTION_REQUEST, &variable);
    }
}

/// RDP_NEG_FAILURE failureCode values, MS-RDPBCGR 2.2.1.2.2 (inside [2.2.1.2](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/13757f8f-66db-4273-9d2c-385c33b1e483)).
// The spec's names; the server only sends the ones that end in ByServer.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum FailureCode {
    SslRequiredByServer = 1,
    SslNotAllowedByServer = 2,
    #[cfg(any(test, feature = "fuzzing"))]
    SslCertNotOnServer = 3,
    #[cfg(any(test, feature = "fuzzing"))]
    InconsistentFlags = 4,
    HybridRequiredByServer = 5,
    #[cfg(any(test, feature = "fuzzing"))]
    SslWithUserAuthRequiredByServer = 6,
}

impl FailureCode {
    #[cfg(any(test, feature = "fuzzing"))]
    fn from_u32(value: u32) -> Option<Self> {
        Some(match value {
            1 => Self::SslRequiredByServer,
            2 => Self::SslNotAllowedByServer,
            3 => Self::SslCertNotOnServer,
            4 => Self::InconsistentFlags,
            5 => Self::HybridRequiredByServer,
            6 => Self::SslWithUserAuthRequiredByServer,
            _ => return None,
        })
    }
}

/// X.224 Connection Confirm PDU, [MS-RDPBCGR 2.2.1.2](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/13757f8f-66db-4273-9d2c-385c33b1e483).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionConfirm {
    /// The request had no RDP_NEG_REQ: confirm without negotiation data
    /// (PROTOCOL_RDP implied).
    Legacy,
    Response {
        flags: ServerNegotiationFlags,
        selected: SecurityProtocol,
    },
    Failure(FailureCode),
}

impl ConnectionConfirm {
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut variable = Vec::with_capacity(8);
        match self {
            Self::Legacy => {}
            Self::Response { flags, selected } => {
                variable.put_u8(TYPE_RDP_NEG_RSP);
                variable.put_u8(flags.bits());
                variable.put_u16_le(NEGOTIATION_LEN);
                variable.put_u32_le(selected.bits());
            }
            Self::Failure(code) => {
                variable.put_u8(TYPE_RDP_NEG_FAILURE);
                variable.put_u8(0);
                variable.put_u16_le(NEGOTIATION_LEN);
                variable.put_u32_le(*code as u32);
            }
        }
        encode_connection_tpdu(out, TPDU_CONNECTION_CONFIRM, &variable);
    }

    #[cfg(any(test, feature = "fuzzing"))]
    pub fn decode(frame: &[u8]) -> Result<Self, DecodeError> {
        let tpdu = connection_tpdu(frame, TPDU_CONNECTION_CONFIRM, "x.224 connection confirm")?;
        let mut cursor = ReadCursor::new(tpdu, "x.224 connection confirm");
        if cursor.is_empty() {
            return Ok(Self::Legacy);
        }
        let kind = cursor.read_u8()?;
        let flags = cursor.read_u8()?;
        if cursor.read_u16_le()? != NEGOTIATION_LEN {
            return Err(cursor.invalid("length", "must be 8"));
        }
        let value = cursor.read_u32_le()?;
        if !cursor.is_empty() {
            return Err(cursor.invalid("length", "trailing bytes"));
        }
        match kind {
            TYPE_RDP_NEG_RSP => Ok(Self::Response {
                flags: ServerNegotiationFlags::from_bits_retain(flags),
                selected: SecurityProtocol::from_bits_retain(value),
            }),
            TYPE_RDP_NEG_FAILURE => FailureCode::from_u32(value)
                .map(Self::Failure)
                .ok_or(cursor.invalid("failure code", "unknown value")),
            other => Err(DecodeError::Unexpected {
                context: "x.224 connection confirm",
                what: "negotiation type",
                value: u32::from(other),
            }),
        }
    }
}

/// Checks the TPKT and fixed X.224 header of a CR/CC frame; returns the
/// variable part.
fn connection_tpdu<'a>(
    frame: &'a [u8],
    code: u8,
    context: &'static str,
) -> Result<&'a [u8], DecodeError> {
    let mut cursor = ReadCursor::new(frame, context);
    let header = cursor.read_array::<TPKT_HEADER_LEN>()?;
    if usize::from(u16::from_be_bytes([header[2], header[3]])) != frame.len() {
        return Err(cursor.invalid("tpkt length", "does not match the frame"));
    }
    let length_indicator = usize::from(cursor.read_u8()?);
    if length_indicator != cursor.remaining() {
        return Err(cursor.invalid("length indicator", "does not match the tpkt length"));
    }
    let tpdu_code = cursor.read_u8()?;
    if tpdu_code & 0xF0 != code {
        return Err(DecodeError::Unexpected {
            context,
            what: "tpdu code",
            value: u32::from(tpdu_code),
        });
    }
    let _dst_ref = cursor.read_u16_be()?;
    let _src_ref = cursor.read_u16_be()?;
    let class = cursor.read_u8()?;
    if class & 0xF0 != 0 {
        return Err(cursor.invalid("class option", "only class 0 is used by rdp"));
    }
    Ok(cursor.rest())
}

#[cfg(any(test, feature = "fuzzing"))]
/// A Connection Request frame around `variable` (cookie lines and
/// negotiation data as a test client writes them, well-formed or not).
pub fn encode_connection_request_frame(out: &mut Vec<u8>, variable: &[u8]) {
    encode_connection_tpdu(out, TPDU_CONNECTION_REQUEST, variable);
}

fn encode_connection_tpdu(out: &mut Vec<u8>, code: u8, variable: &[u8]) {
    let total = TPKT_HEADER_LEN + CONNECTION_TPDU_FIXED_LEN + variable.len();
    tpkt::encode_tpkt_header(out, total);
    out.put_u8((CONNECTION_TPDU_FIXED_LEN - 1 + variable.len()) as u8);
    out.put_u8(code);
    out.put_u16(0); // DST-REF
    out.put_u16(0); // SRC-REF
    out.put_u8(0); // class 0
    out.put_slice(variable);
}

/// The user data of an X.224 Data TPDU inside a TPKT frame.
pub fn decode_data(frame: &[u8]) -> Result<&[u8], DecodeError> {
    let mut cursor = ReadCursor::new(frame, "x.224 data");
    let header = cursor.read_array::<TPKT_HEADER_LEN>()?;
    if usize::from(u16::from_be_bytes([header[2], header[3]])) != frame.len() {
        return Err(cursor.invalid("tpkt length", "does not match the frame"));
    }
    let length_indicator = cursor.read_u8()?;
    let code = cursor.read_u8()?;
    if code == TPDU_DISCONNECT_REQUEST {
        return Err(DecodeError::Unexpected {
            context: "x.224 data",
            what: "disconnect request tpdu",
            value: u32::from(code),
        });
    }
    if code != TPDU_DATA || length_indicator != 2 {
        return Err(DecodeError::Unexpected {
            context: "x.224 data",
            what: "tpdu code",
            value: u32::from(code),
        });
    }
    if cursor.read_u8()? & DATA_EOT == 0 {
        return Err(cursor.invalid("eot", "segmented tpdus are not used by rdp"));
    }
    Ok(cursor.rest())
}

#[cfg(test)]
/// Whether `frame` is an X.224 Disconnect Request (a client's abrupt goodbye).
pub fn is_disconnect_request(frame: &[u8]) -> bool {
    frame
        .get(5)
        .is_some_and(|code| code & 0xF0 == TPDU_DISCONNECT_REQUEST)
}

pub fn encode_data(out: &mut Vec<u8>, payload: &[u8]) {
    encode_data_header(out, payload.len());
    out.put_slice(payload);
}

/// The headers of a Data TPDU whose `payload_len` bytes the caller appends.
pub fn encode_data_header(out: &mut Vec<u8>, payload_len: usize) {
    tpkt::encode_tpkt_header(out, DATA_HEADER_LEN + payload_len);
    out.put_slice(&[2, TPDU_DATA, DATA_EOT]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MS-RDPBCGR 4.1.1 Client X.224 Connection Request PDU.
    const SPEC_CONNECTION_REQUEST: [u8; 44] = [
        0x03, 0x00, 0x00, 0x2c, 0x27, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x43, 0x6f, 0x6f, 0x6b,
        0x69, 0x65, 0x3a, 0x20, 0x6d, 0x73, 0x74, 0x73, 0x68, 0x61, 0x73, 0x68, 0x3d, 0x65, 0x6c,
        0x74, 0x6f, 0x6e, 0x73, 0x0d, 0x0a, 0x01, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];
    /// MS-RDPBCGR 4.1.2 Server X.224 Connection Confirm PDU.
    const SPEC_CONNECTION_CONFIRM: [u8; 19] = [
        0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0, 0x00, 0x00, 0x12, 0x34, 0x00, 0x02, 0x00, 0x08, 0x00,
        0x00, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn decodes_spec_connection_request() {
        let request = ConnectionRequest::decode(&SPEC_CONNECTION_REQUEST).unwrap();
        assert_eq!(request.cookie.as_deref(), Some("eltons"));
        assert_eq!(
            request.negotiation,
            Some(NegotiationRequest {
                flags: 0,
                requested_protocols: SecurityProtocol::empty()
            })
        );
        let mut encoded = Vec::new();
        request.encode(&mut encoded);
        assert_eq!(encoded, SPEC_CONNECTION_REQUEST);
    }

    #[test]
    fn decodes_spec_connection_confirm() {
        let confirm = ConnectionConfirm::decode(&SPEC_CONNECTION_CONFIRM).unwrap();
        assert_eq!(
            confirm,
            ConnectionConfirm::Response {
                flags: ServerNegotiationFlags::empty(),
                selected: SecurityProtocol::empty()
            }
        );
        let mut encoded = Vec::new();
        confirm.encode(&mut encoded);
        // We send SRC-REF 0 where the example has 0x1234; the rest is identical.
        assert_eq!(encoded[..8], SPEC_CONNECTION_CONFIRM[..8]);
        assert_eq!(encoded[10..], SPEC_CONNECTION_CONFIRM[10..]);
    }

    #[test]
    fn round_trips_failure_and_legacy() {
        for confirm in [
            ConnectionConfirm::Legacy,
            ConnectionConfirm::Failure(FailureCode::SslRequiredByServer),
            ConnectionConfirm::Response {
                flags: ServerNegotiationFlags::EXTENDED_CLIENT_DATA_SUPPORTED,
                selected: SecurityProtocol::SSL,
            },
        ] {
            let mut encoded = Vec::new();
            confirm.encode(&mut encoded);
            assert_eq!(ConnectionConfirm::decode(&encoded).unwrap(), confirm);
        }
    }

    #[test]
    fn request_without_cookie_round_trips() {
        let request = ConnectionRequest {
            cookie: None,
            routing_token: Some(b"Cookie: msts=1234.5678.0000".to_vec()),
            negotiation: Some(NegotiationRequest {
                flags: 0,
                requested_protocols: SecurityProtocol::SSL | SecurityProtocol::HYBRID,
            }),
        };
        let mut encoded = Vec::new();
        request.encode(&mut encoded);
        assert_eq!(ConnectionRequest::decode(&encoded).unwrap(), request);
    }

    fn request_frame(variable: &[u8]) -> Vec<u8> {
        let mut frame = Vec::new();
        encode_connection_request_frame(&mut frame, variable);
        frame
    }

    /// A routing token and a cookie together break 2.2.1.1, but the server
    /// "SHOULD continue with the connection" (3.3.5.3.1).
    #[test]
    fn routing_token_and_cookie_together_are_read() {
        let negotiation = [1, 0, 8, 0, 3, 0, 0, 0];
        let frame = request_frame(
            &[
                &b"Cookie: msts=3640205228.15629.0000\r\n"[..],
                b"Cookie: mstshash=eltons\r\n",
                &negotiation,
            ]
            .concat(),
        );
        let request = ConnectionRequest::decode(&frame).unwrap();
        assert_eq!(request.cookie.as_deref(), Some("eltons"));
        assert_eq!(
            request.routing_token.as_deref(),
            Some(&b"Cookie: msts=3640205228.15629.0000"[..])
        );
        assert_eq!(
            request.negotiation.as_ref().unwrap().requested_protocols,
            SecurityProtocol::SSL | SecurityProtocol::HYBRID
        );
        // Both survive an encoding (the x224_connection_request fuzz target
        // found the test encoder writing only the cookie).
        let mut again = Vec::new();
        request.encode(&mut again);
        assert_eq!(ConnectionRequest::decode(&again).unwrap(), request);
        // Two cookies of one kind name two users: refused.
        let twice = request_frame(
            &[
                &b"Cookie: mstshash=eltons\r\n"[..],
                b"Cookie: mstshash=mallory\r\n",
                &negotiation,
            ]
            .concat(),
        );
        assert!(ConnectionRequest::decode(&twice).is_err());
    }

    #[test]
    fn rejects_malformed_requests() {
        let mut bad_length = SPEC_CONNECTION_REQUEST;
        bad_length[3] = 0x2b;
        assert!(ConnectionRequest::decode(&bad_length).is_err());
        let mut bad_li = SPEC_CONNECTION_REQUEST;
        bad_li[4] = 0x30;
        assert!(ConnectionRequest::decode(&bad_li).is_err());
        let mut unterminated = SPEC_CONNECTION_REQUEST;
        unterminated[34] = b'x';
        assert!(ConnectionRequest::decode(&unterminated).is_err());
        let mut bad_neg_len = SPEC_CONNECTION_REQUEST;
        bad_neg_len[38] = 9;
        assert!(ConnectionRequest::decode(&bad_neg_len).is_err());
        assert!(ConnectionRequest::decode(&SPEC_CONNECTION_REQUEST[..20]).is_err());
        assert!(ConnectionRequest::decode(&SPEC_CONNECTION_CONFIRM).is_err());
        let mut bad_type = SPEC_CONNECTION_REQUEST;
        bad_type[36] = 0x02;
        assert!(ConnectionRequest::decode(&bad_type).is_err());
        let mut trailing = SPEC_CONNECTION_REQUEST.to_vec();
        trailing.push(0);
        trailing[3] += 1;
        trailing[4] += 1;
        assert!(ConnectionRequest::decode(&trailing).is_err());
    }

    #[test]
    fn rejects_malformed_confirms() {
        let mut failure = Vec::new();
        ConnectionConfirm::Failure(FailureCode::HybridRequiredByServer).encode(&mut failure);
        let mut unknown_code = failure.clone();
        unknown_code[15] = 7;
        assert!(ConnectionConfirm::decode(&unknown_code).is_err());
        let mut unknown_type = failure.clone();
        unknown_type[11] = 0x09;
        assert!(ConnectionConfirm::decode(&unknown_type).is_err());
        assert!(ConnectionConfirm::decode(&failure[..failure.len() - 1]).is_err());
        assert!(ConnectionConfirm::decode(&SPEC_CONNECTION_REQUEST).is_err());
    }

    #[test]
    fn data_tpdu_round_trips_and_checks_headers() {
        let mut frame = Vec::new();
        encode_data(&mut frame, &[1, 2, 3]);
        assert_eq!(frame, [3, 0, 0, 10, 2, 0xF0, 0x80, 1, 2, 3]);
        assert_eq!(decode_data(&frame).unwrap(), &[1, 2, 3]);
        let mut wrong_code = frame.clone();
        wrong_code[5] = 0xE0;
        assert!(decode_data(&wrong_code).is_err());
        let mut disconnect = frame.clone();
        disconnect[5] = 0x80;
        assert!(decode_data(&disconnect).is_err());
        assert!(is_disconnect_request(&disconnect));
        assert!(decode_data(&frame[..9]).is_err());
    }
}
