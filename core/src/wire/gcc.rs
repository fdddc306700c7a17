//! T.124 GCC Conference Create Request/Response as RDP uses them, and the
//! client and server data blocks they carry (MS-RDPBCGR 2.2.1.3 and 2.2.1.4).

use bitflags::bitflags;
use bytes::BufMut;

use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;
use crate::wire::per;
use crate::wire::utf16;

/// OID 0.0.20.124.0.1 (T.124 version 1), BER content bytes.
const T124_OID: [u8; 5] = [0x00, 0x14, 0x7C, 0x00, 0x01];
const CLIENT_H221_KEY: &[u8; 4] = b"Duca";
const SERVER_H221_KEY: &[u8; 4] = b"McDn";
/// conferenceCreateRequest choice with only userData among the optional fields.
const CONFERENCE_CREATE_REQUEST: u8 = 0x00;
const OPTIONAL_USER_DATA_ONLY: u8 = 0x08;
/// userData set element: value present, key is h221NonStandard.
const USER_DATA_H221: u8 = 0xC0;
/// The nodeID T.124 servers answer with, and the PER lower bound of nodeIDs.
const NODE_ID: u16 = 0x79F3;
const NODE_ID_MIN: u16 = 1001;

const CS_CORE: u16 = 0xC001;
const CS_SECURITY: u16 = 0xC002;
const CS_NET: u16 = 0xC003;
const CS_CLUSTER: u16 = 0xC004;
const CS_MONITOR: u16 = 0xC005;
const CS_MCS_MSGCHANNEL: u16 = 0xC006;
const CS_MULTITRANSPORT: u16 = 0xC00A;
const SC_CORE: u16 = 0x0C01;
const SC_SECURITY: u16 = 0x0C02;
const SC_NET: u16 = 0x0C03;
const SC_MCS_MSGCHANNEL: u16 = 0x0C04;
const SC_MULTITRANSPORT: u16 = 0x0C08;

/// CHANNEL_MAX_COUNT (MS-RDPBCGR 2.2.1.3.4).
pub const MAX_STATIC_CHANNELS: usize = 31;
/// Monitor count limit of TS_UD_CS_MONITOR (MS-RDPBCGR 2.2.1.3.6).
pub const MAX_MONITORS: usize = 16;
/// User data block header: type and length, 2 bytes each.
const BLOCK_HEADER_LEN: usize = 4;
/// Fixed part of TS_UD_CS_CORE after its header, up to and including imeFileName.
const CLIENT_CORE_FIXED_LEN: usize = 128;

/// All the client's data blocks from the MCS Connect Initial PDU,
/// [MS-RDPBCGR 2.2.1.3](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/db6713ee-1c0e-4064-a3b3-0fac30b4037b).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientGccData {
    pub core: ClientCoreData,
    pub security: Option<ClientSecurityData>,
    pub network: Option<ClientNetworkData>,
    pub cluster: Option<ClientClusterData>,
    pub monitor: Option<ClientMonitorData>,
    /// TS_UD_CS_MCS_MSGCHANNEL flags.
    pub message_channel: Option<u32>,
    /// TS_UD_CS_MULTITRANSPORT flags.
    pub multitransport: Option<u32>,
}

/// TS_UD_CS_CORE, [MS-RDPBCGR 2.2.1.3.2](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/00f1da4a-ee9c-421a-852f-c19f92343d73).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientCoreData {
    pub version: u32,
    pub desktop_width: u16,
    pub desktop_height: u16,
    pub color_depth: u16,
    pub sas_sequence: u16,
    pub keyboard_layout: u32,
    pub client_build: u32,
    pub client_name: String,
    pub keyboard_type: u32,
    pub keyboard_sub_type: u32,
    pub keyboard_function_key: u32,
    pub ime_file_name: String,
    pub post_beta2_color_depth: Option<u16>,
    pub client_product_id: Option<u16>,
    pub serial_number: Option<u32>,
    pub high_color_depth: Option<u16>,
    /// RNS_UD_24BPP_SUPPORT 1, 16BPP 2, 15BPP 4, 32BPP 8.
    pub supported_color_depths: Option<u16>,
    /// RNS_UD_CS_SUPPORT_ERRINFO_PDU 0x1, ... SUPPORT_SKIP_CHANNELJOIN 0x800.
    pub early_capability_flags: Option<u16>,
    pub client_dig_product_id: Option<String>,
    pub connection_type: Option<u8>,
    pub server_selected_protocol: Option<u32>,
    pub desktop_physical_width: Option<u32>,
    pub desktop_physical_height: Option<u32>,
    pub desktop_orientation: Option<u16>,
    pub desktop_scale_factor: Option<u32>,
    pub device_scale_factor: Option<u32>,
}

bitflags! {
    /// earlyCapabilityFlags of TS_UD_CS_CORE; [`ClientCoreData`] keeps the
    /// raw `u16`, use `from_bits_retain` to inspect it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct ClientEarlyCapabilityFlags: u16 {
        const SUPPORT_ERRINFO_PDU = 0x0001;
        const WANT_32BPP_SESSION = 0x0002;
        const SUPPORT_STATUSINFO_PDU = 0x0004;
        const STRONG_ASYMMETRIC_KEYS = 0x0008;
        const VALID_CONNECTION_TYPE = 0x0020;
        const SUPPORT_MONITOR_LAYOUT_PDU = 0x0040;
        const SUPPORT_NETCHAR_AUTODETECT = 0x0080;
        const SUPPORT_DYNVC_GFX_PROTOCOL = 0x0100;
        const SUPPORT_DYNAMIC_TIME_ZONE = 0x0200;
        const SUPPORT_HEARTBEAT_PDU = 0x0400;
        const SUPPORT_SKIP_CHANNELJOIN = 0x0800;
        const _ = !0;
    }
}

bitflags! {
    /// supportedColorDepths of TS_UD_CS_CORE (RNS_UD_*BPP_SUPPORT).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct SupportedColorDepths: u16 {
        const BPP_24 = 0x0001;
        const BPP_16 = 0x0002;
        const BPP_15 = 0x0004;
        const BPP_32 = 0x0008;
        const _ = !0;
    }
}

/// TS_UD_CS_SEC, [MS-RDPBCGR 2.2.1.3.3](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/6b58e11e-a32b-4903-b736-339f3cfe46ec).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSecurityData {
    pub encryption_methods: u32,
    pub ext_encryption_methods: u32,
}

/// CHANNEL_DEF, MS-RDPBCGR 2.2.1.3.4.1 (inside [TS_UD_CS_NET](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/49f99e00-caf1-4786-b43c-d425de29a03f)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelDef {
    /// Up to 7 ANSI characters (8 from clients that leave out the NUL).
    pub name: String,
    pub options: u32,
}

/// TS_UD_CS_NET, [MS-RDPBCGR 2.2.1.3.4](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/49f99e00-caf1-4786-b43c-d425de29a03f).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientNetworkData {
    pub channels: Vec<ChannelDef>,
}

/// TS_UD_CS_CLUSTER, MS-RDPBCGR 2.2.1.3.5 (a block of [2.2.1.3](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/db6713ee-1c0e-4064-a3b3-0fac30b4037b)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientClusterData {
    pub flags: u32,
    pub redirected_session_id: u32,
}

/// TS_MONITOR_DEF, MS-RDPBCGR 2.2.1.3.6.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorDef {
    pub left: i32,
    pub top: i32,
    pub right: i32,
    pub bottom: i32,
    pub flags: u32,
}

/// TS_UD_CS_MONITOR, MS-RDPBCGR 2.2.1.3.6 (a block of [2.2.1.3](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/db6713ee-1c0e-4064-a3b3-0fac30b4037b)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMonitorData {
    pub flags: u32,
    pub monitors: Vec<MonitorDef>,
}

impl ClientGccData {
    /// Decodes the userData of MCS Connect-Initial: the T.124 Conference
    /// Create Request and the client data blocks inside it.
    pub fn decode(user_data: &[u8]) -> Result<Self, DecodeError> {
        let mut cursor = ReadCursor::new(user_data, "gcc conference create request");
        read_t124_header(&mut cursor)?;
        // The connectPDU length is not relied on: the user data length below
        // frames the blocks. MS-RDPBCGR 4.1.4 shows a Windows server writing
        // a wrong one ("This length is ignored by the client"), so the
        // server ignores the client's in turn.
        let _connect_pdu_length = per::read_length_determinant(&mut cursor)?;
        if cursor.read_u8()? != CONFERENCE_CREATE_REQUEST {
            return Err(cursor.invalid("connect gcc pdu", "not a conference create request"));
        }
        if cursor.read_u8()? != OPTIONAL_USER_DATA_ONLY {
            return Err(cursor.invalid("optional fields", "only user data is expected"));
        }
        // conferenceName: a numeric string of at least one digit, 4 bits each.
        let digits = usize::from(cursor.read_u8()?) + 1;
        cursor.skip(digits.div_ceil(2))?;
        let _flags_and_termination_method = cursor.read_u8()?;
        // userData is a SET OF: its count is a length determinant. Only the
        // first element is read; it must be the client's "Duca" blocks.
        if per::read_length_determinant(&mut cursor)? == 0 {
            return Err(cursor.invalid("user data", "empty set"));
        }
        if cursor.read_u8()? != USER_DATA_H221 {
            return Err(cursor.invalid("user data", "key is not h221 non-standard"));
        }
        if per::read_octet_string(&mut cursor, 4)? != CLIENT_H221_KEY {
            return Err(cursor.invalid("user data", "h221 key is not Duca"));
        }
        let length = per::read_length(&mut cursor)?;
        Self::decode_blocks(cursor.read_slice(length)?)
    }

    /// Decodes a sequence of client data blocks.
    pub fn decode_blocks(blocks: &[u8]) -> Result<Self, DecodeError> {
        let mut cursor = ReadCursor::new(blocks, "client data blocks");
        let mut core = None;
        let mut data = Self {
            core: ClientCoreData::default(),
            security: None,
            network: None,
            cluster: None,
            monitor: None,
            message_channel: None,
            multitransport: None,
        };
        while !cursor.is_empty() {
            let block_type = cursor.read_u16_le()?;
            let length = usize::from(cursor.read_u16_le()?);
            if length < BLOCK_HEADER_LEN {
                return Err(cursor.invalid("user data header", "length shorter than the header"));
            }
            let body = cursor.read_slice(length - BLOCK_HEADER_LEN)?;
            match block_type {
                CS_CORE => core = Some(ClientCoreData::decode(body)?),
                CS_SECURITY => {
                    let mut block = ReadCursor::new(body, "client security data");
                    data.security = Some(ClientSecurityData {
                        encryption_methods: block.read_u32_le()?,
                        ext_encryption_methods: block.read_u32_le()?,
                    });
                }
                CS_NET => data.network = Some(ClientNetworkData::decode(body)?),
                CS_CLUSTER => {
                    let mut block = ReadCursor::new(body, "client cluster data");
                    data.cluster = Some(ClientClusterData {
                        flags: block.read_u32_le()?,
                        redirected_session_id: block.read_u32_le()?,
                    });
                }
                CS_MONITOR => data.monitor = Some(ClientMonitorData::decode(body)?),
                CS_MCS_MSGCHANNEL => {
                    data.message_channel =
                        Some(ReadCursor::new(body, "client message channel data").read_u32_le()?)
                }
                CS_MULTITRANSPORT => {
                    data.multitransport =
                        Some(ReadCursor::new(body, "client multitransport data").read_u32_le()?)
                }
                // Blocks we do not act on (monitor extended, unknown future ones).
                _ => {}
            }
        }
        data.core = core.ok_or(cursor.invalid("client core data", "missing"))?;
        Ok(data)
    }

    #[cfg(any(test, feature = "fuzzing"))]
    /// Encodes the blocks inside a Conference Create Request (for test clients).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut blocks = Vec::new();
        self.core.encode(&mut blocks);
        if let Some(security) = &self.security {
            write_block_header(&mut blocks, CS_SECURITY, 8);
            blocks.put_u32_le(security.encryption_methods);
            blocks.put_u32_le(security.ext_encryption_methods);
        }
        if let Some(network) = &self.network {
            write_block_header(&mut blocks, CS_NET, 4 + 12 * network.channels.len());
            blocks.put_u32_le(network.channels.len() as u32);
            for channel in &network.channels {
                // One byte per character, as the decoder reads them.
                let mut name = [0u8; 8];
                for (byte, c) in name.iter_mut().zip(channel.name.chars()) {
                    *byte = u8::try_from(c).unwrap_or(b'?');
                }
                blocks.put_slice(&name);
                blocks.put_u32_le(channel.options);
            }
        }
        if let Some(cluster) = &self.cluster {
            write_block_header(&mut blocks, CS_CLUSTER, 8);
            blocks.put_u32_le(cluster.flags);
            blocks.put_u32_le(cluster.redirected_session_id);
        }
        if let Some(monitor) = &self.monitor {
            write_block_header(&mut blocks, CS_MONITOR, 8 + 20 * monitor.monitors.len());
            blocks.put_u32_le(monitor.flags);
            blocks.put_u32_le(monitor.monitors.len() as u32);
            for def in &monitor.monitors {
                blocks.put_i32_le(def.left);
                blocks.put_i32_le(def.top);
                blocks.put_i32_le(def.right);
                blocks.put_i32_le(def.bottom);
                blocks.put_u32_le(def.flags);
            }
        }
        if let Some(flags) = self.message_channel {
            write_block_header(&mut blocks, CS_MCS_MSGCHANNEL, 4);
            blocks.put_u32_le(flags);
        }
        if let Some(flags) = self.multitransport {
            write_block_header(&mut blocks, CS_MULTITRANSPORT, 4);
            blocks.put_u32_le(flags);
        }
        let mut request = Vec::new();
        request.put_slice(&[
            CONFERENCE_CREATE_REQUEST,
            OPTIONAL_USER_DATA_ONLY,
            0x00, // conferenceName: one digit
            0x10, // "1"
            0x00, // flags, terminationMethod automatic
            0x01, // one user data element
            USER_DATA_H221,
        ]);
        per::write_octet_string(&mut request, CLIENT_H221_KEY, 4);
        per::write_length(&mut request, blocks.len());
        request.put_slice(&blocks);
        write_t124_header(out);
        per::write_length(out, request.len());
        out.put_slice(&request);
    }
}

fn write_block_header(out: &mut Vec<u8>, block_type: u16, body_len: usize) {
    out.put_u16_le(block_type);
    out.put_u16_le((BLOCK_HEADER_LEN + body_len) as u16);
}

fn read_t124_header(cursor: &mut ReadCursor<'_>) -> Result<(), DecodeError> {
    // Key: CHOICE object (index 0), then the OID.
    if cursor.read_u8()? != 0 {
        return Err(cursor.invalid("t.124 key", "not an object identifier"));
    }
    if per::read_object_identifier(cursor)? != T124_OID {
        return Err(cursor.invalid("t.124 key", "unknown object identifier"));
    }
    Ok(())
}

fn write_t124_header(out: &mut Vec<u8>) {
    out.put_u8(0);
    per::write_object_identifier(out, &T124_OID);
}

/// Reads a fixed-size UTF-16LE field up to its first NUL.
fn read_utf16_field(cursor: &mut ReadCursor<'_>, bytes: usize) -> Result<String, DecodeError> {
    utf16::decode(cursor.read_slice(bytes)?, cursor.context(), "utf-16 field")
}

#[cfg(any(test, feature = "fuzzing"))]
fn write_utf16_field(out: &mut Vec<u8>, value: &str, bytes: usize) {
    let mut written = 0;
    // The decoder reads up to the first NUL or the end of the field, so a
    // value as long as the field goes without its terminator.
    for unit in value.encode_utf16().take(bytes / 2) {
        out.put_u16_le(unit);
        written += 2;
    }
    out.put_bytes(0, bytes - written);
}

impl ClientCoreData {
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut cursor = ReadCursor::new(body, "client core data");
        cursor.ensure(CLIENT_CORE_FIXED_LEN)?;
        let mut core = Self {
            version: cursor.read_u32_le()?,
            desktop_width: cursor.read_u16_le()?,
            desktop_height: cursor.read_u16_le()?,
            color_depth: cursor.read_u16_le()?,
            sas_sequence: cursor.read_u16_le()?,
            keyboard_layout: cursor.read_u32_le()?,
            client_build: cursor.read_u32_le()?,
            client_name: read_utf16_field(&mut cursor, 32)?,
            keyboard_type: cursor.read_u32_le()?,
            keyboard_sub_type: cursor.read_u32_le()?,
            keyboard_function_key: cursor.read_u32_le()?,
            ime_file_name: read_utf16_field(&mut cursor, 64)?,
            ..Self::default()
        };
        // Each optional field is present only when the block is long enough
        // for it and for every field before it.
        macro_rules! optional {
            ($field:ident, $read:expr) => {
                if cursor.is_empty() {
                    return Ok(core);
                }
                core.$field = Some($read);
            };
        }
        optional!(post_beta2_color_depth, cursor.read_u16_le()?);
        optional!(client_product_id, cursor.read_u16_le()?);
        optional!(serial_number, cursor.read_u32_le()?);
        optional!(high_color_depth, cursor.read_u16_le()?);
        optional!(supported_color_depths, cursor.read_u16_le()?);
        optional!(early_capability_flags, cursor.read_u16_le()?);
        optional!(client_dig_product_id, read_utf16_field(&mut cursor, 64)?);
        optional!(connection_type, cursor.read_u8()?);
        // pad1octet only has to be there when serverSelectedProtocol follows.
        if cursor.is_empty() {
            return Ok(core);
        }
        let _pad = cursor.read_u8()?;
        optional!(server_selected_protocol, cursor.read_u32_le()?);
        optional!(desktop_physical_width, cursor.read_u32_le()?);
        optional!(desktop_physical_height, cursor.read_u32_le()?);
        optional!(desktop_orientation, cursor.read_u16_le()?);
        optional!(desktop_scale_factor, cursor.read_u32_le()?);
        optional!(device_scale_factor, cursor.read_u32_le()?);
        Ok(core)
    }

    #[cfg(any(test, feature = "fuzzing"))]
    /// Encodes the block with its header, up to the last present optional
    /// field of the chain (fields after a missing one are not written).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut body = Vec::with_capacity(234);
        body.put_u32_le(self.version);
        body.put_u16_le(self.desktop_width);
        body.put_u16_le(self.desktop_height);
        body.put_u16_le(self.color_depth);
        body.put_u16_le(self.sas_sequence);
        body.put_u32_le(self.keyboard_layout);
        body.put_u32_le(self.client_build);
        write_utf16_field(&mut body, &self.client_name, 32);
        body.put_u32_le(self.keyboard_type);
        body.put_u32_le(self.keyboard_sub_type);
        body.put_u32_le(self.keyboard_function_key);
        write_utf16_field(&mut body, &self.ime_file_name, 64);
        'optional: {
            let Some(value) = self.post_beta2_color_depth else {
                break 'optional;
            };
            body.put_u16_le(value);
            let Some(value) = self.client_product_id else {
                break 'optional;
            };
            body.put_u16_le(value);
            let Some(value) = self.serial_number else {
                break 'optional;
            };
            body.put_u32_le(value);
            let Some(value) = self.high_color_depth else {
                break 'optional;
            };
            body.put_u16_le(value);
            let Some(value) = self.supported_color_depths else {
                break 'optional;
            };
            body.put_u16_le(value);
            let Some(value) = self.early_capability_flags else {
                break 'optional;
            };
            body.put_u16_le(value);
            let Some(value) = &self.client_dig_product_id else {
                break 'optional;
            };
            write_utf16_field(&mut body, value, 64);
            let Some(value) = self.connection_type else {
                break 'optional;
            };
            body.put_u8(value);
            body.put_u8(0);
            let Some(value) = self.server_selected_protocol else {
                break 'optional;
            };
            body.put_u32_le(value);
            let Some(value) = self.desktop_physical_width else {
                break 'optional;
            };
            body.put_u32_le(value);
            let Some(value) = self.desktop_physical_height else {
                break 'optional;
            };
            body.put_u32_le(value);
            let Some(value) = self.desktop_orientation else {
                break 'optional;
            };
            body.put_u16_le(value);
            let Some(value) = self.desktop_scale_factor else {
                break 'optional;
            };
            body.put_u32_le(value);
            let Some(value) = self.device_scale_factor else {
                break 'optional;
            };
            body.put_u32_le(value);
        }
        write_block_header(out, CS_CORE, body.len());
        out.put_slice(&body);
    }
}

impl ClientNetworkData {
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut cursor = ReadCursor::new(body, "client network data");
        let count = cursor.read_u32_le()? as usize;
        if count > MAX_STATIC_CHANNELS {
            return Err(DecodeError::TooLarge {
                context: "client network data",
                size: count,
                limit: MAX_STATIC_CHANNELS,
            });
        }
        cursor.ensure(count * 12)?;
        let mut channels = Vec::with_capacity(count);
        for _ in 0..count {
            let name = cursor.read_array::<8>()?;
            let end = name.iter().position(|&byte| byte == 0).unwrap_or(8);
            channels.push(ChannelDef {
                // ANSI characters: one per byte, read as Latin-1 like the
                // ANSI strings of Client Info, so every name reads back.
                name: name[..end].iter().map(|&byte| char::from(byte)).collect(),
                options: cursor.read_u32_le()?,
            });
        }
        Ok(Self { channels })
    }
}

impl ClientMonitorData {
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut cursor = ReadCursor::new(body, "client monitor data");
        let flags = cursor.read_u32_le()?;
        let count = cursor.read_u32_le()? as usize;
        if count > MAX_MONITORS {
            return Err(DecodeError::TooLarge {
                context: "client monitor data",
                size: count,
                limit: MAX_MONITORS,
            });
        }
        cursor.ensure(count * 20)?;
        let mut monitors = Vec::with_capacity(count);
        for _ in 0..count {
            monitors.push(MonitorDef {
                left: cursor.read_u32_le()? as i32,
                top: cursor.read_u32_le()? as i32,
                right: cursor.read_u32_le()? as i32,
                bottom: cursor.read_u32_le()? as i32,
                flags: cursor.read_u32_le()?,
            });
        }
        Ok(Self { flags, monitors })
    }
}

/// All the server's data blocks for the MCS Connect Response PDU,
/// [MS-RDPBCGR 2.2.1.4](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/927de44c-7fe8-4206-a14f-e5517dc24b1c).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerGccData {
    pub core: ServerCoreData,
    pub network: ServerNetworkData,
    pub security: ServerSecurityData,
    /// MCS channel id of the message channel, when the client asked for one
    /// ([TS_UD_SC_MCS_MSGCHANNEL](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/9269d58a-3d85-48a2-942a-bb0bbe5a55aa)).
    pub message_channel: Option<u16>,
    /// TS_UD_SC_MULTITRANSPORT flags.
    pub multitransport: Option<u32>,
}

/// TS_UD_SC_CORE, [MS-RDPBCGR 2.2.1.4.2](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/379a020e-9925-4b4f-98f3-7d634e10b411).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerCoreData {
    pub version: u32,
    pub client_requested_protocols: Option<u32>,
    /// RNS_UD_SC_* flags; present only with `client_requested_protocols`.
    pub early_capability_flags: Option<u32>,
}

/// TS_UD_SC_NET, [MS-RDPBCGR 2.2.1.4.4](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/89fa11de-5275-4106-9cf1-e5aa7709436c).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerNetworkData {
    pub io_channel: u16,
    pub channel_ids: Vec<u16>,
}

/// TS_UD_SC_SEC1 (MS-RDPBCGR 2.2.1.4.3, a block of
/// [2.2.1.4](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/927de44c-7fe8-4206-a14f-e5517dc24b1c)) without server random or certificate: the encryption
/// method and level are both NONE when TLS (or no security) protects the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSecurityData {
    pub encryption_method: u32,
    pub encryption_level: u32,
}

impl ServerSecurityData {
    pub fn none() -> Self {
        Self {
            encryption_method: 0,
            encryption_level: 0,
        }
    }
}

impl ServerGccData {
    /// Encodes the T.124 Conference Create Response carrying the server data blocks.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut blocks = Vec::new();
        self.encode_blocks(&mut blocks);
        let mut response = Vec::new();
        // conferenceCreateResponse choice, nodeID, tag 1, result rt-successful,
        // one user data element keyed "McDn".
        response.put_u8(0x14);
        per::write_u16(&mut response, NODE_ID, NODE_ID_MIN);
        per::write_integer(&mut response, 1);
        response.put_u8(0); // result
        response.put_u8(1); // one user data element
        response.put_u8(USER_DATA_H221);
        per::write_octet_string(&mut response, SERVER_H221_KEY, 4);
        per::write_length(&mut response, blocks.len());
        response.put_slice(&blocks);
        write_t124_header(out);
        per::write_length(out, response.len());
        out.put_slice(&response);
    }

    /// The blocks in the order of the spec's own example (MS-RDPBCGR 4.1.4):
    /// core, network, security, then the optional message channel and
    /// multitransport blocks. 2.2.1.4 lets the order vary, but clients
    /// written against Windows servers have only ever seen this one.
    fn encode_blocks(&self, out: &mut Vec<u8>) {
        let core_len =
            4 + if self.core.client_requested_protocols.is_some() {
                4
            } else {
                0
            } + if self.core.early_capability_flags.is_some() {
                4
            } else {
                0
            };
        write_block_header(out, SC_CORE, core_len);
        out.put_u32_le(self.core.version);
        if let Some(protocols) = self.core.client_requested_protocols {
            out.put_u32_le(protocols);
            if let Some(flags) = self.core.early_capability_flags {
                out.put_u32_le(flags);
            }
        }
        let ids = &self.network.channel_ids;
        // The id array is padded to a multiple of four bytes.
        let padding = if ids.len() % 2 == 1 { 2 } else { 0 };
        write_block_header(out, SC_NET, 4 + 2 * ids.len() + padding);
        out.put_u16_le(self.network.io_channel);
        out.put_u16_le(ids.len() as u16);
        for &id in ids {
            out.put_u16_le(id);
        }
        out.put_bytes(0, padding);
        write_block_header(out, SC_SECURITY, 8);
        out.put_u32_le(self.security.encryption_method);
        out.put_u32_le(self.security.encryption_level);
        if let Some(channel) = self.message_channel {
            write_block_header(out, SC_MCS_MSGCHANNEL, 2);
            out.put_u16_le(channel);
        }
        if let Some(flags) = self.multitransport {
            write_block_header(out, SC_MULTITRANSPORT, 4);
            out.put_u32_le(flags);
        }
    }

    #[cfg(any(test, feature = "fuzzing"))]
    /// Decodes a Conference Create Response (for test clients).
    pub fn decode(user_data: &[u8]) -> Result<Self, DecodeError> {
        let mut cursor = ReadCursor::new(user_data, "gcc conference create response");
        read_t124_header(&mut cursor)?;
        let _connect_pdu_length = per::read_length_determinant(&mut cursor)?;
        if cursor.read_u8()? != 0x14 {
            return Err(cursor.invalid("connect gcc pdu", "not a conference create response"));
        }
        let _node_id = per::read_u16(&mut cursor, NODE_ID_MIN)?;
        let _tag = per::read_integer(&mut cursor)?;
        let _result = cursor.read_u8()?;
        let _count = cursor.read_u8()?;
        let _choice = cursor.read_u8()?;
        if per::read_octet_string(&mut cursor, 4)? != SERVER_H221_KEY {
            return Err(cursor.invalid("user data", "h221 key is not McDn"));
        }
        let length = per::read_length(&mut cursor)?;
        let mut blocks = ReadCursor::new(cursor.read_slice(length)?, "server data blocks");
        let mut core = None;
        let mut network = None;
        let mut security = None;
        let mut message_channel = None;
        let mut multitransport = None;
        while !blocks.is_empty() {
            let block_type = blocks.read_u16_le()?;
            let length = usize::from(blocks.read_u16_le()?);
            if length < BLOCK_HEADER_LEN {
                return Err(blocks.invalid("user data header", "length shorter than the header"));
            }
            let mut body = ReadCursor::new(
                blocks.read_slice(length - BLOCK_HEADER_LEN)?,
                "server data block",
            );
            match block_type {
                SC_CORE => {
                    let version = body.read_u32_le()?;
                    let client_requested_protocols =
                        (!body.is_empty()).then(|| body.read_u32_le()).transpose()?;
                    let early_capability_flags =
                        (!body.is_empty()).then(|| body.read_u32_le()).transpose()?;
                    core = Some(ServerCoreData {
                        version,
                        client_requested_protocols,
                        early_capability_flags,
                    });
                }
                SC_SECURITY => {
                    security = Some(ServerSecurityData {
                        encryption_method: body.read_u32_le()?,
                        encryption_level: body.read_u32_le()?,
                    })
                }
                SC_NET => {
                    let io_channel = body.read_u16_le()?;
                    let count = usize::from(body.read_u16_le()?);
                    body.ensure(count * 2)?;
                    let channel_ids = (0..count)
                        .map(|_| body.read_u16_le())
                        .collect::<Result<_, _>>()?;
                    network = Some(ServerNetworkData {
                        io_channel,
                        channel_ids,
                    });
                }
                SC_MCS_MSGCHANNEL => message_channel = Some(body.read_u16_le()?),
                SC_MULTITRANSPORT => multitransport = Some(body.read_u32_le()?),
                _ => {}
            }
        }
        Ok(Self {
            core: core.ok_or(blocks.invalid("server core data", "missing"))?,
            network: network.ok_or(blocks.invalid("server network data", "missing"))?,
            security: security.ok_or(blocks.invalid("server security data", "missing"))?,
            message_channel,
            multitransport,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Client data shaped like the MS-RDPBCGR 4.1.3 example (client
    /// "ELTONS-DEV2", 1024x768, three static channels).
    pub(crate) fn sample_client_data() -> ClientGccData {
        ClientGccData {
            core: ClientCoreData {
                version: 0x0008_0004,
                desktop_width: 1024,
                desktop_height: 768,
                color_depth: 0xCA01,
                sas_sequence: 0xAA03,
                keyboard_layout: 0x409,
                client_build: 3790,
                client_name: "ELTONS-DEV2".into(),
                keyboard_type: 4,
                keyboard_sub_type: 0,
                keyboard_function_key: 12,
                ime_file_name: String::new(),
                post_beta2_color_depth: Some(0xCA01),
                client_product_id: Some(1),
                serial_number: Some(0),
                high_color_depth: Some(24),
                supported_color_depths: Some(0x0F),
                early_capability_flags: Some(0x0001),
                client_dig_product_id: Some("69712-783-0357974-42714".into()),
                connection_type: Some(0),
                server_selected_protocol: Some(1),
                ..ClientCoreData::default()
            },
            security: Some(ClientSecurityData {
                encryption_methods: 0x1b,
                ext_encryption_methods: 0,
            }),
            network: Some(ClientNetworkData {
                channels: ["rdpdr", "cliprdr", "rdpsnd"]
                    .into_iter()
                    .map(|name| ChannelDef {
                        name: name.into(),
                        options: 0x8080_0000,
                    })
                    .collect(),
            }),
            cluster: Some(ClientClusterData {
                flags: 0x0d,
                redirected_session_id: 0,
            }),
            monitor: None,
            message_channel: None,
            multitransport: None,
        }
    }

    #[test]
    fn client_data_round_trips_with_the_t124_framing() {
        let data = sample_client_data();
        let mut encoded = Vec::new();
        data.encode(&mut encoded);
        // The T.124 framing bytes of MS-RDPBCGR 4.1.3 up to the "Duca" key;
        // bytes 7-8 are the connect PDU length.
        assert_eq!(&encoded[..7], &[0x00, 0x05, 0x00, 0x14, 0x7c, 0x00, 0x01]);
        assert_eq!(
            &encoded[9..21],
            &[
                0x00, 0x08, 0x00, 0x10, 0x00, 0x01, 0xc0, 0x00, 0x44, 0x75, 0x63, 0x61
            ]
        );
        // The core block: type CS_CORE, 216 bytes up to serverSelectedProtocol.
        assert_eq!(&encoded[23..27], &[0x01, 0xc0, 0xd8, 0x00]);
        assert_eq!(ClientGccData::decode(&encoded).unwrap(), data);
    }

    #[test]
    fn server_data_round_trips() {
        let data = ServerGccData {
            core: ServerCoreData {
                version: 0x0008_0004,
                client_requested_protocols: Some(1),
                early_capability_flags: Some(8),
            },
            network: ServerNetworkData {
                io_channel: 1003,
                channel_ids: vec![1004, 1005, 1006],
            },
            security: ServerSecurityData::none(),
            message_channel: None,
            multitransport: None,
        };
        let mut encoded = Vec::new();
        data.encode(&mut encoded);
        assert_eq!(ServerGccData::decode(&encoded).unwrap(), data);
    }

    #[test]
    fn rejects_bad_client_data() {
        // Too many static channels.
        let mut blocks = Vec::new();
        ClientCoreData::default().encode(&mut blocks);
        write_block_header(&mut blocks, CS_NET, 4);
        blocks.put_u32_le(32);
        assert!(matches!(
            ClientGccData::decode_blocks(&blocks),
            Err(DecodeError::TooLarge { .. })
        ));
        // A block whose length runs past the end.
        let mut blocks = Vec::new();
        ClientCoreData::default().encode(&mut blocks);
        blocks[2] = 0xFF;
        assert!(ClientGccData::decode_blocks(&blocks).is_err());
        // A block length shorter than its header.
        assert!(ClientGccData::decode_blocks(&[0x01, 0xC0, 0x02, 0x00]).is_err());
        // No core data at all.
        assert!(
            ClientGccData::decode_blocks(&[0x02, 0xC0, 0x0C, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err()
        );
        // Truncated anywhere is an error, never a panic.
        let mut encoded = Vec::new();
        sample_client_data().encode(&mut encoded);
        for end in 0..encoded.len() {
            assert!(ClientGccData::decode(&encoded[..end]).is_err());
        }
        let mut wrong_key = encoded.clone();
        wrong_key[17] = b'X';
        assert!(ClientGccData::decode(&wrong_key).is_err());
    }

    /// A connectPDU length that does not match (as Windows servers write
    /// theirs, MS-RDPBCGR 4.1.4) and lengths in their two-byte PER form are
    /// read; the user data length that frames the blocks is still checked.
    #[test]
    fn non_minimal_and_ignored_per_lengths_are_read() {
        let data = sample_client_data();
        let mut encoded = Vec::new();
        data.encode(&mut encoded);
        // Bytes 7-8 are the connectPDU length (two-byte form already):
        // claim far more than there is.
        assert_eq!(encoded[7] & 0xC0, 0x80);
        let mut wrong_connect_length = encoded.clone();
        wrong_connect_length[7..9].copy_from_slice(&[0xBF, 0xFF]);
        assert_eq!(ClientGccData::decode(&wrong_connect_length).unwrap(), data);
        // The OID length and the user data set count in two-byte form.
        let mut long_forms = vec![0x00, 0x80, 0x05];
        long_forms.extend_from_slice(&encoded[2..7]);
        long_forms.extend_from_slice(&encoded[7..9]);
        long_forms.extend_from_slice(&encoded[9..14]);
        long_forms.extend_from_slice(&[0x80, 0x01]);
        long_forms.extend_from_slice(&encoded[15..]);
        assert_eq!(ClientGccData::decode(&long_forms).unwrap(), data);
        // A user data length past the end is still an error.
        let mut blocks_too_long = encoded.clone();
        let at = 9 + 12;
        let length = u16::from_be_bytes([blocks_too_long[at] & 0x3F, blocks_too_long[at + 1]]);
        blocks_too_long[at..at + 2].copy_from_slice(&(0x8000 | (length + 1)).to_be_bytes());
        assert!(ClientGccData::decode(&blocks_too_long).is_err());
    }

    #[test]
    fn every_optional_block_and_field_round_trips() {
        let mut data = sample_client_data();
        data.core.desktop_physical_width = Some(300);
        data.core.desktop_physical_height = Some(200);
        data.core.desktop_orientation = Some(90);
        data.core.desktop_scale_factor = Some(150);
        data.core.device_scale_factor = Some(140);
        data.monitor = Some(ClientMonitorData {
            flags: 0,
            monitors: vec![
                MonitorDef {
                    left: 0,
                    top: 0,
                    right: 1919,
                    bottom: 1079,
                    flags: 1,
                },
                MonitorDef {
                    left: -1280,
                    top: 0,
                    right: -1,
                    bottom: 1023,
                    flags: 0,
                },
            ],
        });
        data.message_channel = Some(0);
        data.multitransport = Some(0x305);
        let mut encoded = Vec::new();
        data.encode(&mut encoded);
        assert_eq!(ClientGccData::decode(&encoded).unwrap(), data);
    }

    #[test]
    fn core_data_may_end_after_connection_type() {
        let mut core = sample_client_data().core;
        core.server_selected_protocol = None;
        let mut block = Vec::new();
        core.encode(&mut block);
        // Drop pad1octet: the block then ends right after connectionType.
        block.pop();
        let length = (block.len() as u16).to_le_bytes();
        block[2..4].copy_from_slice(&length);
        let decoded = ClientCoreData::decode(&block[BLOCK_HEADER_LEN..]).unwrap();
        assert_eq!(decoded, core);
    }

    #[test]
    fn too_many_monitors_is_an_error() {
        let mut body = Vec::new();
        body.put_u32_le(0);
        body.put_u32_le(17);
        body.resize(8 + 17 * 20, 0);
        assert!(matches!(
            ClientMonitorData::decode(&body),
            Err(DecodeError::TooLarge { .. })
        ));
        // A count that fits the limit but not the block.
        let mut body = Vec::new();
        body.put_u32_le(0);
        body.put_u32_le(2);
        body.resize(8 + 20, 0);
        assert!(ClientMonitorData::decode(&body).is_err());
    }

    /// Found by the fuzzer (fuzz/): a channel name that is not UTF-8 came
    /// back longer than its 8 bytes, and a client name of all 16 units lost
    /// its last one. Names of every byte and every length read back now.
    #[test]
    fn names_that_fill_their_fields_round_trip() {
        let crash = include_bytes!(
            "../../tests/fuzz-crashes/gcc_conference_create_request-channel-name-not-utf8"
        );
        let decoded = ClientGccData::decode(crash).unwrap();
        let mut encoded = Vec::new();
        decoded.encode(&mut encoded);
        assert_eq!(ClientGccData::decode(&encoded).unwrap(), decoded);

        let mut data = sample_client_data();
        data.core.client_name = "sixteen-units-ok".into();
        data.network = Some(ClientNetworkData {
            channels: vec![ChannelDef {
                name: "\u{e9}ight-ch".into(),
                options: 0,
            }],
        });
        let mut encoded = Vec::new();
        data.encode(&mut encoded);
        assert_eq!(ClientGccData::decode(&encoded).unwrap(), data);
    }

    #[test]
    fn flag_helpers_name_the_spec_bits() {
        let flags = ClientEarlyCapabilityFlags::from_bits_retain(0x0802);
        assert!(flags.contains(ClientEarlyCapabilityFlags::SUPPORT_SKIP_CHANNELJOIN));
        assert!(flags.contains(ClientEarlyCapabilityFlags::WANT_32BPP_SESSION));
        assert!(
            SupportedColorDepths::from_bits_retain(0x0F).contains(SupportedColorDepths::BPP_32)
        );
    }
}
