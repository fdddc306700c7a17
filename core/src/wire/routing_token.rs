//! The load-balancer routing token of an X.224 Connection Request,
//! `Cookie: msts=<address>.<port>.<reserved>` ([MS-RDPBCGR 2.2.1.1](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/18a27ef9-6f9a-4501-b000-94b1fe3c2c10),
//! routingToken; the IP-and-port form is the one HAProxy's
//! `persist rdp-cookie` and Windows' own balancer read).
//!
//! The address is the four IPv4 bytes read as a little-endian u32, written
//! in decimal; the port is the two port bytes in network order read as a
//! little-endian u16 (so 3389 is written 15629). The dot after the port is
//! what HAProxy looks for; the reserved digits after it are ignored.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::wire::error::DecodeError;

const PREFIX: &[u8] = b"Cookie: msts=";
/// Decimal digits of a u32.
const MAX_ADDRESS_DIGITS: usize = 10;
/// Decimal digits of a u16.
const MAX_PORT_DIGITS: usize = 5;

/// Builds the routing token that sends a client to `target`:
/// `Cookie: msts=<address>.<port>.0000\r\n`, the bytes to put in a Server
/// Redirection's load-balance info.
pub fn encode(target: SocketAddrV4) -> Vec<u8> {
    let address = u32::from_le_bytes(target.ip().octets());
    let port = u16::from_le_bytes(target.port().to_be_bytes());
    format!("Cookie: msts={address}.{port}.0000\r\n").into_bytes()
}

/// Reads the target address of an IP-and-port routing token (with or
/// without the CR LF). A token of another form (a Windows broker's
/// `tsv://` token, say) is an error: the caller keeps its bytes verbatim.
pub fn decode(token: &[u8]) -> Result<SocketAddrV4, DecodeError> {
    let invalid = |reason| DecodeError::InvalidField {
        context: "routing token",
        field: "msts",
        reason,
    };
    let token = token.strip_suffix(b"\r\n").unwrap_or(token);
    let value = token
        .strip_prefix(PREFIX)
        .ok_or(invalid("not an msts token"))?;
    let mut parts = value.splitn(3, |&byte| byte == b'.');
    let address = parts.next().unwrap_or_default();
    let port = parts.next().unwrap_or_default();
    let reserved = parts.next().ok_or(invalid("no dot after the port"))?;
    if !reserved.iter().all(u8::is_ascii_digit) {
        return Err(invalid("reserved field is not decimal"));
    }
    let address = decimal(address, MAX_ADDRESS_DIGITS)
        .and_then(|value| u32::try_from(value).ok())
        .ok_or(invalid("address is not a decimal u32"))?;
    let port = decimal(port, MAX_PORT_DIGITS)
        .and_then(|value| u16::try_from(value).ok())
        .ok_or(invalid("port is not a decimal u16"))?;
    Ok(SocketAddrV4::new(
        Ipv4Addr::from(address.to_le_bytes()),
        u16::from_be_bytes(port.to_le_bytes()),
    ))
}

/// A non-empty run of at most `max_digits` decimal digits.
fn decimal(digits: &[u8], max_digits: usize) -> Option<u64> {
    if digits.is_empty() || digits.len() > max_digits {
        return None;
    }
    digits.iter().try_fold(0u64, |value, &digit| {
        digit
            .is_ascii_digit()
            .then(|| value * 10 + u64::from(digit - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_example_and_the_microsoft_example() {
        let target: SocketAddrV4 = "127.0.0.2:3390".parse().unwrap();
        assert_eq!(encode(target), b"Cookie: msts=33554559.15885.0000\r\n");
        assert_eq!(decode(&encode(target)), Ok(target));
        // IMsRdpClientAdvancedSettings::LoadBalanceInfo's example.
        assert_eq!(
            decode(b"Cookie: msts=3640205228.15629.0000"),
            Ok("172.31.249.216:3389".parse().unwrap())
        );
        // The reserved digits are optional; the dot is not.
        assert_eq!(
            decode(b"Cookie: msts=3640205228.15629."),
            Ok("172.31.249.216:3389".parse().unwrap())
        );
    }

    #[test]
    fn every_other_form_is_a_typed_error() {
        for token in [
            &b"Cookie: mstshash=alice"[..],
            b"Cookie: msts=3640205228.15629",
            b"Cookie: msts=.15629.0000",
            b"Cookie: msts=3640205228..0000",
            b"Cookie: msts=4294967296.15629.0000",
            b"Cookie: msts=3640205228.65536.0000",
            b"Cookie: msts=36402052280.1.0000",
            b"Cookie: msts=-1.15629.0000",
            b"Cookie: msts=1.2.3x",
            b"Cookie: msts=1 .2.3",
            b"tsv://MS Terminal Services Plugin.1.Sessions",
            b"",
        ] {
            assert!(
                matches!(decode(token), Err(DecodeError::InvalidField { .. })),
                "{}",
                String::from_utf8_lossy(token)
            );
        }
    }
}
