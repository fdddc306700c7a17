//! Licensing, skipped the way RDP servers without a license server do: one
//! Server License Error PDU with STATUS_VALID_CLIENT,
//! [MS-RDPBCGR 2.2.1.12](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/7d941d0d-d482-41c5-b728-538faa3efb31)
//! and [MS-RDPELE 2.2.2.7.1](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpele/f18b6c9f-f3d8-4a0e-8398-f9b153233dca).

use bytes::BufMut;

/// SEC_LICENSE_PKT in the basic security header.
const SEC_LICENSE_PKT: u16 = 0x0080;
const ERROR_ALERT: u8 = 0xFF;
const PREAMBLE_VERSION_3_0: u8 = 0x03;
const STATUS_VALID_CLIENT: u32 = 0x0000_0007;
const ST_NO_TRANSITION: u32 = 0x0000_0002;
const BB_ERROR_BLOB: u16 = 0x0004;
/// Preamble (4) + error code (4) + state transition (4) + empty blob (4).
const MESSAGE_SIZE: u16 = 16;

/// Writes the whole PDU (security header included) for the I/O channel.
pub fn encode_valid_client(out: &mut Vec<u8>) {
    out.put_u16_le(SEC_LICENSE_PKT);
    out.put_u16_le(0);
    out.put_u8(ERROR_ALERT);
    out.put_u8(PREAMBLE_VERSION_3_0);
    out.put_u16_le(MESSAGE_SIZE);
    out.put_u32_le(STATUS_VALID_CLIENT);
    out.put_u32_le(ST_NO_TRANSITION);
    out.put_u16_le(BB_ERROR_BLOB);
    out.put_u16_le(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout of MS-RDPBCGR 2.2.1.12.1 without encryption: security
    /// header, then the licensing preamble and error message. (The spec's
    /// own dump, "Server License Error PDU - Valid Client", is encrypted.)
    #[test]
    fn matches_the_spec_layout() {
        let mut out = Vec::new();
        encode_valid_client(&mut out);
        assert_eq!(
            out,
            [
                0x80, 0x00, 0x00, 0x00, 0xff, 0x03, 0x10, 0x00, 0x07, 0x00, 0x00, 0x00, 0x02, 0x00,
                0x00, 0x00, 0x04, 0x00, 0x00, 0x00
            ]
        );
    }

    #[test]
    fn message_size_counts_the_preamble_and_message() {
        let mut out = Vec::new();
        encode_valid_client(&mut out);
        // wMsgSize covers everything after the 4-byte security header.
        let size = u16::from_le_bytes([out[6], out[7]]);
        assert_eq!(usize::from(size), out.len() - 4);
    }
}
