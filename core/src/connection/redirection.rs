//! The Server Redirection Packet ([MS-RDPBCGR 2.2.13.1](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/df3d59e6-30a8-4a36-bd2d-9d11bcd96c3e))
//! and the Enhanced Security Server Redirection PDU that carries it over
//! TLS and NLA ([2.2.13.3.1](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/1c581d12-397f-415e-9c03-ce906d0da9e3)).
//!
//! Only the enhanced form is built: the standard-security form (2.2.13.2.1)
//! needs Standard RDP Security encryption, which the server never runs.

use bytes::BufMut;

use crate::api::config::Validator;
use crate::api::error::CommandError;
use crate::api::event::{ConnectionRouting, SelectedSecurity};
use crate::api::routing::{CookieValidator, Redirection, RedirectionFlags};
use crate::security::ntlm::{self, NtHashSource};
use crate::security::password::Password;
use crate::transport::io_channel;
use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;
use crate::wire::utf16;

/// SEC_REDIRECTION_PKT, the packet's Flags field.
const SEC_REDIRECTION_PKT: u16 = 0x0400;
/// Flags, Length, SessionID, RedirFlags.
const FIXED_LEN: usize = 2 + 2 + 4 + 4;
/// TS_SHARECONTROLHEADER pduType: PDU_TYPE_SERVER_REDIRECTION (0xA) with
/// TS_PROTOCOL_VERSION (0x10).
const PDU_TYPE_SERVER_REDIRECTION: u16 = 0x001A;
/// totalLength, pduType, pduSource, then pad2Octets.
const SHARE_HEADER_AND_PAD_LEN: usize = 6 + 2;

const LB_TARGET_NET_ADDRESS: u32 = 0x0000_0001;
const LB_LOAD_BALANCE_INFO: u32 = 0x0000_0002;
const LB_USERNAME: u32 = 0x0000_0004;
const LB_DOMAIN: u32 = 0x0000_0008;
const LB_PASSWORD: u32 = 0x0000_0010;
const LB_TARGET_FQDN: u32 = 0x0000_0100;
const LB_TARGET_NETBIOS_NAME: u32 = 0x0000_0200;
const LB_TARGET_NET_ADDRESSES: u32 = 0x0000_0800;
const LB_CLIENT_TSV_URL: u32 = 0x0000_1000;
const LB_REDIRECTION_GUID: u32 = 0x0000_8000;
const LB_TARGET_CERTIFICATE: u32 = 0x0001_0000;
/// Field flags this server never sends, so never reads back either.
const UNSUPPORTED_FIELDS: u32 = LB_CLIENT_TSV_URL | LB_REDIRECTION_GUID | LB_TARGET_CERTIFICATE;
/// A packet's Length is a u16; no field may make it longer.
const MAX_PACKET_LEN: usize = u16::MAX as usize;

/// The packet's RedirFlags for `redirection`: one flag per field present,
/// plus the field-less flags.
fn redir_flags(redirection: &Redirection) -> u32 {
    let mut flags = redirection.flags.bits();
    for (present, flag) in [
        (
            !redirection.target_addresses.is_empty(),
            LB_TARGET_NET_ADDRESS,
        ),
        (
            redirection.load_balance_info.is_some(),
            LB_LOAD_BALANCE_INFO,
        ),
        (redirection.user_name.is_some(), LB_USERNAME),
        (redirection.domain.is_some(), LB_DOMAIN),
        (redirection.password_cookie.is_some(), LB_PASSWORD),
        (redirection.target_fqdn.is_some(), LB_TARGET_FQDN),
        (
            redirection.target_netbios_name.is_some(),
            LB_TARGET_NETBIOS_NAME,
        ),
        (
            redirection.target_addresses.len() > 1,
            LB_TARGET_NET_ADDRESSES,
        ),
    ] {
        if present {
            flags |= flag;
        }
    }
    flags
}

/// UTF-16LE with the terminating NUL the packet's strings carry.
fn unicode_z(value: &str) -> Vec<u8> {
    let mut out = utf16::encode(value);
    out.put_u16_le(0);
    out
}

fn put_field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.put_u32_le(bytes.len() as u32);
    out.put_slice(bytes);
}

/// Why a redirection cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("server redirection packet longer than 65535 bytes")]
pub(crate) struct TooLong;

/// Encodes RDP_SERVER_REDIRECTION_PACKET.
pub(crate) fn encode_packet(out: &mut Vec<u8>, redirection: &Redirection) -> Result<(), TooLong> {
    let flags = redir_flags(redirection);
    let mut fields = Vec::new();
    if let Some(first) = redirection.target_addresses.first() {
        put_field(&mut fields, &unicode_z(first));
    }
    if let Some(info) = &redirection.load_balance_info {
        put_field(&mut fields, info);
    }
    for value in [&redirection.user_name, &redirection.domain]
        .into_iter()
        .flatten()
    {
        put_field(&mut fields, &unicode_z(value));
    }
    if let Some(cookie) = &redirection.password_cookie {
        put_field(&mut fields, &unicode_z(cookie.expose()));
    }
    for value in [&redirection.target_fqdn, &redirection.target_netbios_name]
        .into_iter()
        .flatten()
    {
        put_field(&mut fields, &unicode_z(value));
    }
    if flags & LB_TARGET_NET_ADDRESSES != 0 {
        // TARGET_NET_ADDRESSES: addressCount, then each TARGET_NET_ADDRESS.
        let mut addresses = Vec::new();
        addresses.put_u32_le(redirection.target_addresses.len() as u32);
        for address in &redirection.target_addresses {
            put_field(&mut addresses, &unicode_z(address));
        }
        put_field(&mut fields, &addresses);
    }
    let length = FIXED_LEN + fields.len();
    if length > MAX_PACKET_LEN {
        return Err(TooLong);
    }
    out.put_u16_le(SEC_REDIRECTION_PKT);
    out.put_u16_le(length as u16);
    out.put_u32_le(redirection.session_id);
    out.put_u32_le(flags);
    out.put_slice(&fields);
    Ok(())
}

/// Encodes TS_ENHANCED_SECURITY_SERVER_REDIRECTION from its share control
/// header on (the I/O channel's MCS and X.224 framing go around it):
/// header, pad2Octets, the packet, pad1Octet.
pub(crate) fn encode_enhanced_security_pdu(
    out: &mut Vec<u8>,
    pdu_source: u16,
    redirection: &Redirection,
) -> Result<(), TooLong> {
    let mut packet = Vec::new();
    encode_packet(&mut packet, redirection)?;
    let total = SHARE_HEADER_AND_PAD_LEN + packet.len() + 1;
    let total = u16::try_from(total).map_err(|_| TooLong)?;
    out.put_u16_le(total);
    out.put_u16_le(PDU_TYPE_SERVER_REDIRECTION);
    out.put_u16_le(pdu_source);
    out.put_u16_le(0); // pad2Octets
    out.put_slice(&packet);
    out.put_u8(0); // pad1Octet
    Ok(())
}

/// The Enhanced Security Server Redirection PDU for `redirection`, ready
/// for the I/O channel, or why this connection may not be sent one.
pub(crate) fn checked_pdu(
    routing: &ConnectionRouting,
    redirection: &Redirection,
) -> Result<Vec<u8>, CommandError> {
    // 2.2.13.3.1: "This PDU MUST NOT be sent if Standard RDP Security
    // (section 5.3) is in effect"; the standard-security form needs RC4.
    if routing.security == SelectedSecurity::PlainRdp {
        return Err(CommandError::RedirectionNeedsEnhancedSecurity);
    }
    // A client that did not say REDIRECTION_SUPPORTED (IronRDP's sends no
    // cluster block at all) would read the PDU as an error and drop the
    // session instead of reconnecting.
    if !routing.redirection_supported() {
        return Err(CommandError::RedirectionNotSupported);
    }
    let mut pdu = Vec::new();
    encode_enhanced_security_pdu(&mut pdu, io_channel::SERVER_CHANNEL_ID, redirection)
        .map_err(|TooLong| CommandError::RedirectionTooLong)?;
    Ok(pdu)
}

/// The secrets an NLA logon may prove: the account's, then the user's
/// pending redirection cookies.
pub(crate) struct NlaSecrets<'a> {
    pub accounts: &'a Validator,
    pub cookies: Option<&'a CookieValidator>,
}

impl NtHashSource for NlaSecrets<'_> {
    fn nt_hash(&self, user: &str, domain: &str) -> Option<[u8; 16]> {
        self.accounts.nt_hash(user, domain)
    }

    fn alternative_nt_hashes(&self, user: &str, domain: &str) -> Vec<[u8; 16]> {
        self.cookies
            .map(|cookies| {
                cookies
                    .0
                    .pending(user, domain)
                    .iter()
                    .filter(|cookie| !cookie.is_empty())
                    .map(|cookie| ntlm::nt_hash(cookie.expose()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Reads a length-prefixed field.
fn read_field<'a>(cursor: &mut ReadCursor<'a>) -> Result<&'a [u8], DecodeError> {
    let len = cursor.read_u32_le()? as usize;
    cursor.read_slice(len)
}

/// Reads a UTF-16 field, which must end in its NUL.
fn read_unicode(cursor: &mut ReadCursor<'_>, field: &'static str) -> Result<String, DecodeError> {
    let bytes = read_field(cursor)?;
    if bytes.len() < 2 || !bytes.ends_with(&[0, 0]) {
        return Err(cursor.invalid(field, "not a nul-terminated utf-16 string"));
    }
    utf16::decode(&bytes[..bytes.len() - 2], cursor.context(), field)
}

/// Decodes RDP_SERVER_REDIRECTION_PACKET as this server writes it (the
/// recording of a redirected session holds it). Fields the server never
/// sends (TSV URL, redirection GUID, target certificate) are refused.
pub(crate) fn decode_packet(packet: &[u8]) -> Result<Redirection, DecodeError> {
    let mut cursor = ReadCursor::new(packet, "server redirection packet");
    if cursor.read_u16_le()? != SEC_REDIRECTION_PKT {
        return Err(cursor.invalid("flags", "must be sec_redirection_pkt"));
    }
    if usize::from(cursor.read_u16_le()?) != packet.len() {
        return Err(cursor.invalid("length", "does not match the packet"));
    }
    let mut redirection = Redirection::new(cursor.read_u32_le()?);
    let flags = cursor.read_u32_le()?;
    if flags & UNSUPPORTED_FIELDS != 0 {
        return Err(cursor.invalid("redirflags", "names a field this server never sends"));
    }
    let field_less = RedirectionFlags::from_bits_truncate(flags);
    if flags & !LB_KNOWN != 0 {
        return Err(cursor.invalid("redirflags", "unknown flag"));
    }
    redirection.flags = field_less;
    if flags & LB_TARGET_NET_ADDRESS != 0 {
        let address = read_unicode(&mut cursor, "target net address")?;
        redirection.target_addresses.push(address);
    }
    if flags & LB_LOAD_BALANCE_INFO != 0 {
        redirection.load_balance_info = Some(read_field(&mut cursor)?.to_vec());
    }
    if flags & LB_USERNAME != 0 {
        redirection.user_name = Some(read_unicode(&mut cursor, "user name")?);
    }
    if flags & LB_DOMAIN != 0 {
        redirection.domain = Some(read_unicode(&mut cursor, "domain")?);
    }
    if flags & LB_PASSWORD != 0 {
        redirection.password_cookie = Some(Password::new(read_unicode(&mut cursor, "password")?));
    }
    if flags & LB_TARGET_FQDN != 0 {
        redirection.target_fqdn = Some(read_unicode(&mut cursor, "target fqdn")?);
    }
    if flags & LB_TARGET_NETBIOS_NAME != 0 {
        redirection.target_netbios_name = Some(read_unicode(&mut cursor, "target netbios name")?);
    }
    if flags & LB_TARGET_NET_ADDRESSES != 0 {
        let mut addresses = ReadCursor::new(read_field(&mut cursor)?, "target net addresses");
        let count = addresses.read_u32_le()? as usize;
        // Each address takes at least its length and a NUL: a count the
        // bytes cannot hold is refused before anything is allocated.
        if count.saturating_mul(6) > addresses.remaining() {
            return Err(addresses.invalid("address count", "more than the field holds"));
        }
        let mut all = Vec::with_capacity(count);
        for _ in 0..count {
            all.push(read_unicode(&mut addresses, "target net address")?);
        }
        if !addresses.is_empty() {
            return Err(addresses.invalid("length", "trailing bytes"));
        }
        if all.first() != redirection.target_addresses.first() || all.len() < 2 {
            return Err(cursor.invalid(
                "target net addresses",
                "must start with the target net address and hold more than it",
            ));
        }
        redirection.target_addresses = all;
    }
    if !cursor.is_empty() {
        return Err(cursor.invalid("length", "trailing bytes"));
    }
    Ok(redirection)
}

/// Every RedirFlags bit this module knows.
const LB_KNOWN: u32 = LB_TARGET_NET_ADDRESS
    | LB_LOAD_BALANCE_INFO
    | LB_USERNAME
    | LB_DOMAIN
    | LB_PASSWORD
    | LB_TARGET_FQDN
    | LB_TARGET_NETBIOS_NAME
    | LB_TARGET_NET_ADDRESSES
    | RedirectionFlags::all().bits();

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16z(value: &str) -> Vec<u8> {
        unicode_z(value)
    }

    /// The packet laid out field by field as 2.2.13.1 draws it.
    #[test]
    fn token_mode_packet_matches_the_spec_layout() {
        let token = b"Cookie: msts=50331775.15629.0000\r\n".to_vec();
        let mut redirection = Redirection::new(0x0102_0304);
        redirection.load_balance_info = Some(token.clone());
        redirection.user_name = Some("alice".into());
        redirection.password_cookie = Some(Password::new("c00k"));
        let mut out = Vec::new();
        encode_packet(&mut out, &redirection).unwrap();

        let mut expected = Vec::new();
        expected.extend_from_slice(&[0x00, 0x04]); // Flags: SEC_REDIRECTION_PKT
        let length = 12 + 4 + token.len() + 4 + 12 + 4 + 10;
        expected.extend_from_slice(&(length as u16).to_le_bytes()); // Length
        expected.extend_from_slice(&[0x04, 0x03, 0x02, 0x01]); // SessionID
        // RedirFlags: LB_LOAD_BALANCE_INFO | LB_USERNAME | LB_PASSWORD.
        expected.extend_from_slice(&[0x16, 0x00, 0x00, 0x00]);
        expected.extend_from_slice(&(token.len() as u32).to_le_bytes());
        expected.extend_from_slice(&token);
        expected.extend_from_slice(&[12, 0, 0, 0]); // UserNameLength
        expected.extend_from_slice(b"a\0l\0i\0c\0e\0\0\0");
        expected.extend_from_slice(&[10, 0, 0, 0]); // PasswordLength
        expected.extend_from_slice(b"c\x000\x000\x00k\x00\x00\x00");
        assert_eq!(out, expected);
        assert_eq!(decode_packet(&out), Ok(redirection));
    }

    #[test]
    fn ip_mode_pdu_with_every_field() {
        let mut redirection = Redirection::new(7);
        redirection.target_addresses = vec!["127.0.0.3".into(), "10.0.0.3".into()];
        redirection.user_name = Some("bob".into());
        redirection.domain = Some("FARM".into());
        redirection.target_fqdn = Some("b.farm".into());
        redirection.target_netbios_name = Some("B".into());
        redirection.flags = RedirectionFlags::DONT_STORE_USERNAME;
        let mut pdu = Vec::new();
        encode_enhanced_security_pdu(&mut pdu, 1002, &redirection).unwrap();
        // TS_SHARECONTROLHEADER: totalLength, pduType 0x1A, pduSource 1002.
        assert_eq!(usize::from(u16::from_le_bytes([pdu[0], pdu[1]])), pdu.len());
        assert_eq!(&pdu[2..6], &[0x1A, 0x00, 0xEA, 0x03]);
        assert_eq!(&pdu[6..8], &[0, 0], "pad2Octets");
        assert_eq!(pdu.last(), Some(&0), "pad1Octet");
        let packet = &pdu[8..pdu.len() - 1];
        // RedirFlags: NET_ADDRESS | USERNAME | DOMAIN | DONTSTOREUSERNAME |
        // TARGET_FQDN | TARGET_NETBIOS_NAME | TARGET_NET_ADDRESSES.
        assert_eq!(&packet[8..12], &0x0B2Du32.to_le_bytes());
        // TargetNetAddress comes first, then UserName, Domain, FQDN, NetBIOS.
        let first = utf16z("127.0.0.3");
        assert_eq!(&packet[12..16], &(first.len() as u32).to_le_bytes());
        assert_eq!(&packet[16..16 + first.len()], &first[..]);
        // TARGET_NET_ADDRESSES last: its length, addressCount 2, then each.
        let mut tail = Vec::new();
        tail.extend_from_slice(&2u32.to_le_bytes());
        for address in ["127.0.0.3", "10.0.0.3"] {
            tail.extend_from_slice(&(utf16z(address).len() as u32).to_le_bytes());
            tail.extend_from_slice(&utf16z(address));
        }
        assert!(packet.ends_with(&tail));
        assert_eq!(decode_packet(packet), Ok(redirection));
    }

    #[test]
    fn every_class_of_bad_packet_is_a_typed_error() {
        let mut redirection = Redirection::new(1);
        redirection.user_name = Some("u".into());
        let mut good = Vec::new();
        encode_packet(&mut good, &redirection).unwrap();
        let mut cases: Vec<Vec<u8>> = Vec::new();
        // Truncated at every length.
        cases.extend((0..good.len()).map(|len| good[..len].to_vec()));
        // Wrong Flags, wrong Length.
        let mut bad = good.clone();
        bad[1] = 0x05;
        cases.push(bad);
        let mut bad = good.clone();
        bad[2] ^= 1;
        cases.push(bad);
        // A field length past the end.
        let mut bad = good.clone();
        bad[12] = 0xFF;
        cases.push(bad);
        // A string without its NUL.
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] = b'x';
        cases.push(bad);
        // Unknown and never-sent flags.
        for flag in [0x0040_0000u32, LB_REDIRECTION_GUID] {
            let mut bad = good.clone();
            let flags = u32::from_le_bytes([bad[8], bad[9], bad[10], bad[11]]) | flag;
            bad[8..12].copy_from_slice(&flags.to_le_bytes());
            cases.push(bad);
        }
        for case in cases {
            assert!(decode_packet(&case).is_err(), "{case:02x?}");
        }
    }

    #[test]
    fn a_packet_over_65535_bytes_is_refused() {
        let mut redirection = Redirection::new(1);
        redirection.load_balance_info = Some(vec![b'x'; 70_000]);
        assert_eq!(encode_packet(&mut Vec::new(), &redirection), Err(TooLong));
    }
}
