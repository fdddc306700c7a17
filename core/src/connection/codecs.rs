//! Bitmap codecs in the capability exchange: the surface command flags, the
//! codec GUIDs of TS_BITMAPCODEC, the server's codec entries and the
//! client's RemoteFX capabilities
//! ([MS-RDPBCGR 2.2.7.2.10](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/17e80f50-d163-49de-a23b-fd6456aa472f),
//! MS-RDPRFX 2.2.1.1).

use bytes::BufMut;

use crate::api::config::SurfaceCodec;
use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;

/// TS_BITMAPCODEC (MS-RDPBCGR 2.2.7.2.10.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitmapCodec {
    pub guid: [u8; 16],
    pub id: u8,
    pub properties: Vec<u8>,
}

/// TS_SURFCMDS_CAPABILITYSET cmdFlags.
pub const SURFCMDS_SET_SURFACE_BITS: u32 = 0x02;
pub const SURFCMDS_FRAME_MARKER: u32 = 0x10;
pub const SURFCMDS_STREAM_SURFACE_BITS: u32 = 0x40;

/// A GUID as TS_BITMAPCODEC's codecGUID carries it: Data1, Data2 and Data3
/// little-endian, Data4 as written.
const fn guid(data1: u32, data2: u16, data3: u16, data4: [u8; 8]) -> [u8; 16] {
    let a = data1.to_le_bytes();
    let b = data2.to_le_bytes();
    let c = data3.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], data4[0], data4[1], data4[2], data4[3],
        data4[4], data4[5], data4[6], data4[7],
    ]
}

/// CODEC_GUID_REMOTEFX (MS-RDPBCGR 2.2.7.2.10.1.1).
pub const CODEC_GUID_REMOTEFX: [u8; 16] = guid(
    0x7677_2F12,
    0xBD72,
    0x4463,
    [0xAF, 0xB3, 0xB7, 0x3C, 0x9C, 0x6F, 0x78, 0x86],
);

/// TS_RFX_ICAP entropyBits values (MS-RDPRFX 2.2.1.1.1.1.1).
const CLW_ENTROPY_RLGR1: u8 = 0x01;
const CLW_ENTROPY_RLGR3: u8 = 0x04;
/// TS_RFX_ICAP flags: image mode (headers with every frame).
const CODEC_MODE_IMAGE: u8 = 0x02;

/// What the client's RemoteFX capability container allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteFxCaps {
    /// The codecID the client gave RemoteFX; surface bits carry it.
    pub codec_id: u8,
    /// RLGR3 (else RLGR1).
    pub rlgr3: bool,
    /// Image mode: every frame carries the header messages.
    pub image_mode: bool,
}

/// Finds RemoteFX among the client's codecs and picks one of its TS_RFX_ICAP
/// entries (MS-RDPRFX 3.1.5.1): RLGR3 in video mode when offered.
pub fn client_remotefx(codecs: &[BitmapCodec]) -> Result<Option<RemoteFxCaps>, DecodeError> {
    let Some(codec) = codecs
        .iter()
        .find(|codec| codec.guid == CODEC_GUID_REMOTEFX)
    else {
        return Ok(None);
    };
    // TS_RFX_CLNT_CAPS_CONTAINER: length, captureFlags, capsLength, then
    // TS_RFX_CAPS: blockType, blockLen, numCapsets, then TS_RFX_CAPSET:
    // blockType, blockLen, codecId, capsetType, numIcaps, icapLen, icaps.
    let mut cursor = ReadCursor::new(&codec.properties, "remotefx client caps");
    let _length = cursor.read_u32_le()?;
    let _capture_flags = cursor.read_u32_le()?;
    let _caps_length = cursor.read_u32_le()?;
    let _caps_block_type = cursor.read_u16_le()?;
    let _caps_block_len = cursor.read_u32_le()?;
    let capsets = cursor.read_u16_le()?;
    let mut choices = Vec::new();
    for _ in 0..capsets {
        let _block_type = cursor.read_u16_le()?;
        let block_len = cursor.read_u32_le()? as usize;
        let body = block_len
            .checked_sub(6)
            .ok_or_else(|| cursor.invalid("blockLen", "shorter than its header"))?;
        let mut capset = ReadCursor::new(cursor.read_slice(body)?, "remotefx capset");
        let _codec = capset.read_u8()?;
        let _capset_type = capset.read_u16_le()?;
        let icaps = capset.read_u16_le()?;
        let icap_len = usize::from(capset.read_u16_le()?);
        if icap_len < 8 {
            return Err(capset.invalid("icapLen", "shorter than a TS_RFX_ICAP"));
        }
        for _ in 0..icaps {
            let mut icap = ReadCursor::new(capset.read_slice(icap_len)?, "remotefx icap");
            let _version = icap.read_u16_le()?;
            let tile_size = icap.read_u16_le()?;
            let flags = icap.read_u8()?;
            let _color_conversion = icap.read_u8()?;
            let _transform = icap.read_u8()?;
            let entropy = icap.read_u8()?;
            if tile_size == 64 && matches!(entropy, CLW_ENTROPY_RLGR1 | CLW_ENTROPY_RLGR3) {
                choices.push((entropy == CLW_ENTROPY_RLGR3, flags & CODEC_MODE_IMAGE != 0));
            }
        }
    }
    // Prefer RLGR3 (smaller on desktops), and video mode (headers once).
    let best = choices
        .iter()
        .copied()
        .max_by_key(|&(rlgr3, image)| (rlgr3, !image));
    Ok(best.map(|(rlgr3, image_mode)| RemoteFxCaps {
        codec_id: codec.id,
        rlgr3,
        image_mode,
    }))
}

/// The GUID of a surface codec as TS_BITMAPCODEC carries it.
pub fn codec_guid(codec: SurfaceCodec) -> [u8; 16] {
    match codec {
        SurfaceCodec::RemoteFx => CODEC_GUID_REMOTEFX,
        #[cfg(feature = "qoi")]
        SurfaceCodec::Qoi => rdpserve_codecs::QOI_CODEC_GUID,
        #[cfg(feature = "qoiz")]
        SurfaceCodec::Qoiz => rdpserve_codecs::QOIZ_CODEC_GUID,
    }
}

/// The server's TS_BITMAPCODEC entry for `codec`, with codecID 0 (the
/// client defines the ids). RemoteFX carries a TS_RFX_SRVR_CAPS_CONTAINER of
/// 4 reserved bytes; QOI and QOIZ have empty properties.
pub fn encode_server_codec(out: &mut Vec<u8>, codec: SurfaceCodec) {
    out.put_slice(&codec_guid(codec));
    out.put_u8(0);
    match codec {
        SurfaceCodec::RemoteFx => {
            out.put_u16_le(4);
            out.put_u32_le(0);
        }
        #[cfg(feature = "qoi")]
        SurfaceCodec::Qoi => out.put_u16_le(0),
        #[cfg(feature = "qoiz")]
        SurfaceCodec::Qoiz => out.put_u16_le(0),
    }
}

/// The codecID the client gave `codec`, if it lists it. (RemoteFX is found
/// with its properties by `client_remotefx`.)
#[cfg(feature = "qoi")]
pub fn client_codec_id(codecs: &[BitmapCodec], codec: SurfaceCodec) -> Option<u8> {
    let guid = codec_guid(codec);
    codecs
        .iter()
        .find(|entry| entry.guid == guid)
        .map(|entry| entry.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The properties FreeRDP 2 sends: one capset with one RLGR3 icap.
    fn client_properties(entropy: u8, flags: u8) -> Vec<u8> {
        let mut icap = Vec::new();
        icap.put_u16_le(0x0100); // version
        icap.put_u16_le(64); // tileSize
        icap.put_u8(flags);
        icap.put_u8(1); // colConvBits
        icap.put_u8(1); // transformBits
        icap.put_u8(entropy);
        let mut capset = Vec::new();
        capset.put_u16_le(0xCBC1);
        capset.put_u32_le((13 + icap.len()) as u32);
        capset.put_u8(1);
        capset.put_u16_le(0xCFC0);
        capset.put_u16_le(1);
        capset.put_u16_le(icap.len() as u16);
        capset.put_slice(&icap);
        let mut caps = Vec::new();
        caps.put_u16_le(0xCBC0);
        caps.put_u32_le(8);
        caps.put_u16_le(1);
        caps.put_slice(&capset);
        let mut container = Vec::new();
        container.put_u32_le((12 + caps.len()) as u32);
        container.put_u32_le(0); // captureFlags
        container.put_u32_le(caps.len() as u32);
        container.put_slice(&caps);
        container
    }

    #[test]
    fn guid_has_the_wire_byte_order() {
        assert_eq!(
            CODEC_GUID_REMOTEFX,
            [
                0x12, 0x2F, 0x77, 0x76, 0x72, 0xBD, 0x63, 0x44, 0xAF, 0xB3, 0xB7, 0x3C, 0x9C, 0x6F,
                0x78, 0x86
            ]
        );
    }

    #[test]
    fn client_remotefx_caps_are_read() {
        let codec = BitmapCodec {
            guid: CODEC_GUID_REMOTEFX,
            id: 3,
            properties: client_properties(CLW_ENTROPY_RLGR3, 0),
        };
        assert_eq!(
            client_remotefx(std::slice::from_ref(&codec)).unwrap(),
            Some(RemoteFxCaps {
                codec_id: 3,
                rlgr3: true,
                image_mode: false
            })
        );
        let rlgr1 = BitmapCodec {
            properties: client_properties(CLW_ENTROPY_RLGR1, CODEC_MODE_IMAGE),
            ..codec.clone()
        };
        assert_eq!(
            client_remotefx(&[rlgr1]).unwrap(),
            Some(RemoteFxCaps {
                codec_id: 3,
                rlgr3: false,
                image_mode: true
            })
        );
        assert_eq!(client_remotefx(&[]).unwrap(), None);
        // Every truncation of the container is an error, never a panic.
        for len in 0..codec.properties.len() {
            let truncated = BitmapCodec {
                properties: codec.properties[..len].to_vec(),
                ..codec.clone()
            };
            assert!(client_remotefx(&[truncated]).is_err(), "length {len}");
        }
    }
}
