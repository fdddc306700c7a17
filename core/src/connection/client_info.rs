//! The Client Info PDU: [MS-RDPBCGR 2.2.1.11](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/772d618e-b7d6-4cd0-b735-fa08af558f9d),
//! a basic security header followed by TS_INFO_PACKET (2.2.1.11.1.1).

use bitflags::bitflags;
#[cfg(any(test, feature = "fuzzing"))]
use bytes::BufMut;

use crate::security::password::Password;
use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;
use crate::wire::utf16;

/// SEC_INFO_PKT in the basic security header.
pub const SEC_INFO_PKT: u16 = 0x0040;

/// SEC_EXCHANGE_PKT: the Security Exchange PDU (MS-RDPBCGR 2.2.1.10) that
/// precedes Client Info only under Standard RDP Security with encryption.
const SEC_EXCHANGE_PKT: u16 = 0x0001;
/// Security header flags a client may set besides SEC_INFO_PKT without
/// encryption: SEC_RESET_SEQNO and SEC_IGNORE_SEQNO are unused and "MUST be
/// ignored", SEC_FLAGSHI_VALID only says flagsHi means something.
/// SEC_ENCRYPT (0x0008) and SEC_SECURE_CHECKSUM (0x0800) speak of Standard
/// RDP Security encryption, which this server never negotiates; under
/// ENCRYPTION_LEVEL_NONE "the value of the flag MUST be ignored"
/// (MS-RDPBCGR 3.3.5.3.11), as RDP 4.0 to 6.1 clients always set it (<48>).
const SEC_IGNORED_FLAGS: u16 = 0x0008 | 0x0010 | 0x0020 | 0x0800 | 0x8000;
/// The most of Domain, UserName, Password, AlternateShell, WorkingDir and
/// clientDir the server keeps, terminator included (MS-RDPBCGR 2.2.1.11.1.1).
const MAX_FIELD_BYTES: usize = 512;
/// The most of clientAddress the server keeps, terminator included.
const MAX_CLIENT_ADDRESS_BYTES: usize = 80;
/// TS_TIME_ZONE_INFORMATION is a fixed 172 bytes.
const TIME_ZONE_LEN: usize = 172;
/// The auto-reconnect cookie (ARC_CS_PRIVATE_PACKET) is at most 28 bytes.
const MAX_AUTO_RECONNECT_COOKIE: usize = 28;

bitflags! {
    /// TS_INFO_PACKET flags.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct InfoFlags: u32 {
        const MOUSE = 0x0000_0001;
        const DISABLECTRLALTDEL = 0x0000_0002;
        const AUTOLOGON = 0x0000_0008;
        const UNICODE = 0x0000_0010;
        const MAXIMIZESHELL = 0x0000_0020;
        const LOGONNOTIFY = 0x0000_0040;
        const COMPRESSION = 0x0000_0080;
        const ENABLEWINDOWSKEY = 0x0000_0100;
        const REMOTECONSOLEAUDIO = 0x0000_2000;
        const FORCE_ENCRYPTED_CS_PDU = 0x0000_4000;
        const RAIL = 0x0000_8000;
        const LOGONERRORS = 0x0001_0000;
        const MOUSE_HAS_WHEEL = 0x0002_0000;
        const PASSWORD_IS_SC_PIN = 0x0004_0000;
        const NOAUDIOPLAYBACK = 0x0008_0000;
        const USING_SAVED_CREDS = 0x0010_0000;
        const AUDIOCAPTURE = 0x0020_0000;
        const VIDEO_DISABLE = 0x0040_0000;
        const HIDEF_RAIL_SUPPORTED = 0x0200_0000;
        const _ = !0;
    }
}

/// TS_EXTENDED_INFO_PACKET (MS-RDPBCGR 2.2.1.11.1.1.1), the parts a server
/// acts on. clientAddress and clientDir are always UTF-16.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtendedClientInfo {
    pub client_address_family: u16,
    pub client_address: String,
    pub client_dir: String,
    pub client_session_id: u32,
    pub performance_flags: u32,
}

/// [Client Info PDU](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/772d618e-b7d6-4cd0-b735-fa08af558f9d):
/// the basic security header and [TS_INFO_PACKET](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/732394f5-e2b5-4ac5-8a0a-35345386b0d1).
///
/// Strings are UTF-16LE when `flags` has [`InfoFlags::UNICODE`], else ANSI,
/// read and written as Latin-1 (the subset every ANSI code page shares
/// with it in practice; characters beyond it are written as `?`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfoPdu {
    pub code_page: u32,
    pub flags: InfoFlags,
    pub domain: String,
    pub user_name: String,
    pub password: Password,
    pub alternate_shell: String,
    pub working_dir: String,
    pub extended: Option<ExtendedClientInfo>,
}

impl ClientInfoPdu {
    /// `payload` starts with the basic security header.
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut cursor = ReadCursor::new(payload, "client info pdu");
        let security_flags = cursor.read_u16_le()?;
        let _flags_hi = cursor.read_u16_le()?;
        if security_flags & (SEC_INFO_PKT | SEC_EXCHANGE_PKT) == SEC_EXCHANGE_PKT {
            // rdesktop without `-e` sends one although the server announced
            // ENCRYPTION_METHOD_NONE, then RC4-encrypts every PDU with keys
            // derived from a client random the server never received (there
            // is no server key to encrypt it with). Refused: nothing it sends
            // afterwards could be read.
            return Err(cursor.invalid(
                "security header",
                "security exchange, but no rdp encryption was negotiated",
            ));
        }
        if security_flags & SEC_INFO_PKT == 0 {
            return Err(cursor.invalid("security header", "SEC_INFO_PKT not set"));
        }
        // The other flags name other PDUs (exchange, licensing, redirection,
        // auto-detect, heartbeat, multitransport): with one of them the
        // bytes that follow may not be a TS_INFO_PACKET at all.
        if security_flags & !(SEC_INFO_PKT | SEC_IGNORED_FLAGS) != 0 {
            return Err(DecodeError::Unexpected {
                context: cursor.context(),
                what: "security header flags",
                value: u32::from(security_flags),
            });
        }
        let code_page = cursor.read_u32_le()?;
        let flags = InfoFlags::from_bits_retain(cursor.read_u32_le()?);
        let unicode = flags.contains(InfoFlags::UNICODE);
        let mut lengths = [0usize; 5];
        for length in &mut lengths {
            *length = usize::from(cursor.read_u16_le()?);
            // An odd byte count cannot hold UTF-16: the client's lengths do
            // not frame its strings, and the password would be a guess.
            if unicode && *length % 2 != 0 {
                return Err(cursor.invalid("string length", "odd for utf-16"));
            }
        }
        let mut strings = lengths
            .iter()
            .map(|&length| read_terminated(&mut cursor, length, unicode))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter();
        let mut next = || strings.next().unwrap_or_default();
        let (domain, user_name, password, alternate_shell, working_dir) =
            (next(), next(), next(), next(), next());
        let extended = if cursor.is_empty() {
            None
        } else {
            Some(decode_extended(&mut cursor)?)
        };
        Ok(Self {
            code_page,
            flags,
            domain,
            user_name,
            password: Password::new(password),
            alternate_shell,
            working_dir,
            extended,
        })
    }

    #[cfg(any(test, feature = "fuzzing"))]
    /// Encodes with the security header (for test clients); the inverse of
    /// [`ClientInfoPdu::decode`] for strings within the field limits.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16_le(SEC_INFO_PKT);
        out.put_u16_le(0);
        out.put_u32_le(self.code_page);
        out.put_u32_le(self.flags.bits());
        let unicode = self.flags.contains(InfoFlags::UNICODE);
        let fields = [
            self.domain.as_str(),
            self.user_name.as_str(),
            self.password.expose(),
            self.alternate_shell.as_str(),
            self.working_dir.as_str(),
        ];
        for field in fields {
            let length = if unicode {
                field.encode_utf16().count() * 2
            } else {
                field.chars().count()
            };
            out.put_u16_le(length as u16);
        }
        for field in fields {
            if unicode {
                put_utf16_terminated(out, field);
            } else {
                put_latin1_terminated(out, field);
            }
        }
        if let Some(extended) = &self.extended {
            out.put_u16_le(extended.client_address_family);
            out.put_u16_le(((extended.client_address.encode_utf16().count() + 1) * 2) as u16);
            put_utf16_terminated(out, &extended.client_address);
            out.put_u16_le(((extended.client_dir.encode_utf16().count() + 1) * 2) as u16);
            put_utf16_terminated(out, &extended.client_dir);
            out.put_bytes(0, TIME_ZONE_LEN);
            out.put_u32_le(extended.client_session_id);
            out.put_u32_le(extended.performance_flags);
            out.put_u16_le(0); // no auto-reconnect cookie
        }
    }
}

#[cfg(any(test, feature = "fuzzing"))]
fn put_latin1_terminated(out: &mut Vec<u8>, value: &str) {
    for c in value.chars() {
        out.put_u8(u8::try_from(c).unwrap_or(b'?'));
    }
    out.put_u8(0);
}

#[cfg(any(test, feature = "fuzzing"))]
fn put_utf16_terminated(out: &mut Vec<u8>, value: &str) {
    utf16::put(out, value);
    out.put_u16_le(0);
}

/// Reads a string of `length` bytes plus its mandatory terminator. A string
/// longer than the spec's maximum is read whole and kept truncated to it:
/// "If received data is larger than this size, it SHOULD be truncated ...
/// when it is stored" (MS-RDPBCGR 3.3.5.3.11). The PDU's own length (at
/// most a TPKT frame) bounds what is read.
fn read_terminated(
    cursor: &mut ReadCursor<'_>,
    length: usize,
    unicode: bool,
) -> Result<String, DecodeError> {
    let terminator = if unicode { 2 } else { 1 };
    let bytes = cursor.read_slice(length + terminator)?;
    decode_string(&bytes[..length.min(MAX_FIELD_BYTES - terminator)], unicode)
}

fn decode_string(bytes: &[u8], unicode: bool) -> Result<String, DecodeError> {
    if unicode {
        return utf16::decode(bytes, "client info pdu", "string field");
    }
    // ANSI in the client's code page; Latin-1 is the common subset.
    Ok(bytes
        .iter()
        .take_while(|&&byte| byte != 0)
        .map(|&byte| char::from(byte))
        .collect())
}

/// A UTF-16 string the server only reports, cut to `max` bytes and to a
/// whole number of code units.
fn informational_string(bytes: &[u8], max: usize) -> Result<String, DecodeError> {
    let kept = bytes.len().min(max) & !1;
    decode_string(&bytes[..kept], true)
}

fn decode_extended(cursor: &mut ReadCursor<'_>) -> Result<ExtendedClientInfo, DecodeError> {
    let client_address_family = cursor.read_u16_le()?;
    // Unlike the TS_INFO_PACKET lengths, these two count the terminator.
    // Both are only informational: longer than the spec's maximum is kept
    // truncated to it, like the strings before (3.3.5.3.11), and a stray
    // odd byte is dropped rather than failing the logon.
    let address_len = usize::from(cursor.read_u16_le()?);
    let client_address =
        informational_string(cursor.read_slice(address_len)?, MAX_CLIENT_ADDRESS_BYTES)?;
    let dir_len = usize::from(cursor.read_u16_le()?);
    let client_dir = informational_string(cursor.read_slice(dir_len)?, MAX_FIELD_BYTES)?;
    let mut extended = ExtendedClientInfo {
        client_address_family,
        client_address,
        client_dir,
        ..ExtendedClientInfo::default()
    };
    // Every field after clientDir is optional: a client may stop after any
    // of them, but one it starts must be complete.
    if cursor.is_empty() {
        return Ok(extended);
    }
    cursor.skip(TIME_ZONE_LEN)?;
    if cursor.is_empty() {
        return Ok(extended);
    }
    extended.client_session_id = cursor.read_u32_le()?;
    if cursor.is_empty() {
        return Ok(extended);
    }
    extended.performance_flags = cursor.read_u32_le()?;
    if cursor.is_empty() {
        return Ok(extended);
    }
    let cookie_len = usize::from(cursor.read_u16_le()?);
    if cookie_len > MAX_AUTO_RECONNECT_COOKIE {
        return Err(cursor.invalid("cbAutoReconnectCookie", "longer than 28 bytes"));
    }
    cursor.skip(cookie_len)?;
    // reserved1, reserved2, cbDynamicDSTTimeZoneKeyName and what follows only
    // matter for time zones; they are ignored.
    Ok(extended)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ClientInfoPdu {
        ClientInfoPdu {
            code_page: 0x0409,
            flags: InfoFlags::MOUSE
                | InfoFlags::UNICODE
                | InfoFlags::LOGONNOTIFY
                | InfoFlags::AUTOLOGON,
            domain: "NTDEV".into(),
            user_name: "eltons".into(),
            password: Password::new("s3cr3t-ü"),
            alternate_shell: String::new(),
            working_dir: String::new(),
            extended: Some(ExtendedClientInfo {
                client_address_family: 2,
                client_address: "10.0.0.1".into(),
                client_dir: "C:\\rdp".into(),
                client_session_id: 0,
                performance_flags: 7,
            }),
        }
    }

    #[test]
    fn round_trips() {
        let mut encoded = Vec::new();
        sample().encode(&mut encoded);
        assert_eq!(ClientInfoPdu::decode(&encoded).unwrap(), sample());
    }

    #[test]
    fn password_is_redacted_in_debug() {
        let text = format!("{:?}", sample());
        assert!(!text.contains("s3cr3t"));
        assert!(text.contains("<redacted>"));
    }

    #[test]
    fn password_comparison() {
        let password = Password::new("secret");
        assert!(password.matches("secret"));
        assert!(!password.matches("secreT"));
        assert!(!password.matches("secret1"));
        assert!(!password.matches("secre"));
        assert!(!password.matches(""));
    }

    #[test]
    fn ansi_strings_decode() {
        let mut pdu = vec![0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        for length in [0u16, 4, 2, 0, 0] {
            pdu.extend_from_slice(&length.to_le_bytes());
        }
        pdu.extend_from_slice(b"\0user\0pw\0\0\0");
        let info = ClientInfoPdu::decode(&pdu).unwrap();
        assert_eq!(info.user_name, "user");
        assert!(info.password.matches("pw"));
        assert!(info.extended.is_none());
    }

    #[test]
    fn bad_input_is_rejected() {
        let mut encoded = Vec::new();
        sample().encode(&mut encoded);
        for end in 0..encoded.len() {
            let _ = ClientInfoPdu::decode(&encoded[..end]);
        }
        assert!(ClientInfoPdu::decode(&encoded[..20]).is_err());
        let mut not_info = encoded.clone();
        not_info[0] = 0;
        assert!(ClientInfoPdu::decode(&not_info).is_err());
        let mut huge_user = encoded.clone();
        huge_user[14..16].copy_from_slice(&2000u16.to_le_bytes());
        assert!(ClientInfoPdu::decode(&huge_user).is_err());
        let mut past_end = encoded;
        past_end[14..16].copy_from_slice(&500u16.to_le_bytes());
        assert!(ClientInfoPdu::decode(&past_end).is_err());
    }

    #[test]
    fn ansi_round_trips() {
        let mut info = sample();
        info.flags.remove(InfoFlags::UNICODE);
        info.password = Password::new("pässword");
        let mut encoded = Vec::new();
        info.encode(&mut encoded);
        assert_eq!(ClientInfoPdu::decode(&encoded).unwrap(), info);
    }

    #[test]
    fn minimal_pdu_without_extended_info_round_trips() {
        let mut info = sample();
        info.extended = None;
        let mut encoded = Vec::new();
        info.encode(&mut encoded);
        assert_eq!(ClientInfoPdu::decode(&encoded).unwrap(), info);
    }

    /// Offset of the extended info in the encoding of `sample()`.
    fn extended_offset(encoded: &[u8]) -> usize {
        // Security header (4), codePage (4), flags (4), then five cb* fields
        // and their strings, each with a two-byte terminator.
        let strings: usize = (0..5)
            .map(|index| {
                let at = 12 + 2 * index;
                usize::from(u16::from_le_bytes([encoded[at], encoded[at + 1]])) + 2
            })
            .sum();
        22 + strings
    }

    #[test]
    fn extended_info_may_stop_after_any_optional_field() {
        let mut encoded = Vec::new();
        sample().encode(&mut encoded);
        let start = extended_offset(&encoded);
        // family, cbClientAddress, "10.0.0.1\0", cbClientDir, "C:\rdp\0".
        let after_dir = start + 2 + 2 + 18 + 2 + 14;
        for (end, session_id, performance_flags) in [
            (after_dir, 0, 0),
            (after_dir + TIME_ZONE_LEN, 0, 0),
            (after_dir + TIME_ZONE_LEN + 4, 0, 0),
            (after_dir + TIME_ZONE_LEN + 8, 0, 7),
        ] {
            let info = ClientInfoPdu::decode(&encoded[..end]).unwrap();
            let extended = info.extended.unwrap();
            assert_eq!(extended.client_dir, "C:\\rdp");
            assert_eq!(
                (extended.client_session_id, extended.performance_flags),
                (session_id, performance_flags)
            );
        }
        // A field cut in the middle is an error.
        assert!(ClientInfoPdu::decode(&encoded[..after_dir + 10]).is_err());
        assert!(ClientInfoPdu::decode(&encoded[..after_dir + TIME_ZONE_LEN + 6]).is_err());
    }

    /// Strings longer than the spec's maximum are read and kept truncated
    /// (MS-RDPBCGR 3.3.5.3.11 says SHOULD truncate, not drop).
    #[test]
    fn over_long_strings_are_truncated() {
        let mut info = sample();
        info.user_name = "u".repeat(300);
        info.alternate_shell = "s".repeat(1000);
        info.extended.as_mut().unwrap().client_address = "a".repeat(50);
        info.extended.as_mut().unwrap().client_dir = "d".repeat(400);
        let mut encoded = Vec::new();
        info.encode(&mut encoded);
        let decoded = ClientInfoPdu::decode(&encoded).unwrap();
        assert_eq!(decoded.user_name, "u".repeat(255));
        assert_eq!(decoded.alternate_shell, "s".repeat(255));
        assert_eq!(decoded.domain, info.domain);
        assert!(decoded.password.matches("s3cr3t-ü"));
        let extended = decoded.extended.unwrap();
        assert_eq!(extended.client_address, "a".repeat(40));
        assert_eq!(extended.client_dir, "d".repeat(256));
        assert_eq!(extended.performance_flags, 7);
        // ANSI: 511 bytes and the terminator.
        let mut info = sample();
        info.flags.remove(InfoFlags::UNICODE);
        info.user_name = "v".repeat(600);
        let mut encoded = Vec::new();
        info.encode(&mut encoded);
        assert_eq!(
            ClientInfoPdu::decode(&encoded).unwrap().user_name,
            "v".repeat(511)
        );
    }

    #[test]
    fn extended_lengths_are_checked() {
        let mut encoded = Vec::new();
        sample().encode(&mut encoded);
        let start = extended_offset(&encoded);
        // A clientAddress running into the fields after it still parses
        // those as what they are not; one running past the end fails.
        let mut address = encoded.clone();
        address[start + 2..start + 4].copy_from_slice(&0x4000u16.to_le_bytes());
        assert!(ClientInfoPdu::decode(&address).is_err());
        // cbAutoReconnectCookie is the last field of the sample.
        let mut cookie = encoded.clone();
        let end = cookie.len();
        cookie[end - 2..].copy_from_slice(&30u16.to_le_bytes());
        cookie.extend_from_slice(&[0; 30]);
        assert!(ClientInfoPdu::decode(&cookie).is_err());
        // A cookie length past the end.
        let mut past_end = encoded;
        let end = past_end.len();
        past_end[end - 2..].copy_from_slice(&28u16.to_le_bytes());
        assert!(ClientInfoPdu::decode(&past_end).is_err());
    }

    #[test]
    fn security_header_flags() {
        let mut encoded = Vec::new();
        sample().encode(&mut encoded);
        // SEC_RESET_SEQNO, SEC_IGNORE_SEQNO and SEC_FLAGSHI_VALID are ignored,
        // and so are SEC_ENCRYPT and SEC_SECURE_CHECKSUM, which older
        // Windows clients set under ENCRYPTION_LEVEL_NONE.
        for flags in [0x0030 | 0x8000, 0x0008, 0x0808] {
            let mut ignored = encoded.clone();
            ignored[0..2].copy_from_slice(&(SEC_INFO_PKT | flags).to_le_bytes());
            assert_eq!(ClientInfoPdu::decode(&ignored).unwrap(), sample());
        }
        // SEC_LICENSE_PKT, SEC_EXCHANGE_PKT, SEC_AUTODETECT_REQ: not a client info pdu.
        for flag in [0x0080u16, 0x0001, 0x1000] {
            let mut bad = encoded.clone();
            bad[0..2].copy_from_slice(&(SEC_INFO_PKT | flag).to_le_bytes());
            assert!(
                matches!(
                    ClientInfoPdu::decode(&bad),
                    Err(DecodeError::Unexpected { .. })
                ),
                "{flag:#x}"
            );
        }
    }

    /// What rdesktop 1.9 sends instead of Client Info when it connects
    /// with standard RDP security and encryption on (no `-e`): a Security
    /// Exchange PDU with an empty client random, captured after MCS.
    #[test]
    fn rdesktop_security_exchange_is_refused() {
        let exchange = [1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        match ClientInfoPdu::decode(&exchange) {
            Err(DecodeError::InvalidField { reason, .. }) => {
                assert!(reason.contains("security exchange"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn odd_utf16_length_is_an_error() {
        let mut encoded = Vec::new();
        sample().encode(&mut encoded);
        // cbUserName 12 -> 11.
        encoded[14] = 11;
        assert!(matches!(
            ClientInfoPdu::decode(&encoded),
            Err(DecodeError::InvalidField { .. })
        ));
    }
}
