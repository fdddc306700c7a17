//! Application channel commands in the recording's byte form.

use std::borrow::Cow;

use bytes::BufMut;

use crate::api::clipboard::{ClipboardFormat, FileContentsRequest};
use crate::api::command::ChannelCommand;
use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.put_u32_le(bytes.len() as u32);
    out.put_slice(bytes);
}

fn put_optional(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(bytes) => {
            out.put_u8(1);
            put_bytes(out, bytes);
        }
        None => out.put_u8(0),
    }
}

fn read_bytes<'a>(cursor: &mut ReadCursor<'a>) -> Result<&'a [u8], DecodeError> {
    let len = cursor.read_u32_le()? as usize;
    cursor.read_slice(len)
}

fn read_string<'a>(cursor: &mut ReadCursor<'a>) -> Result<&'a str, DecodeError> {
    let bytes = read_bytes(cursor)?;
    std::str::from_utf8(bytes).map_err(|_| cursor.invalid("string", "not utf-8"))
}

fn read_optional<'a>(cursor: &mut ReadCursor<'a>) -> Result<Option<&'a [u8]>, DecodeError> {
    Ok(match cursor.read_u8()? {
        0 => None,
        _ => Some(read_bytes(cursor)?),
    })
}

/// A channel command in the recording's byte form.
pub fn encode_channel_command(command: &ChannelCommand<'_>, out: &mut Vec<u8>) {
    match command {
        ChannelCommand::ClipboardOffer(formats) => {
            out.put_u8(0);
            out.put_u32_le(formats.len() as u32);
            for format in formats.iter() {
                out.put_u32_le(format.id);
                put_bytes(out, format.name.as_bytes());
            }
        }
        ChannelCommand::ClipboardRequest(format_id) => {
            out.put_u8(1);
            out.put_u32_le(*format_id);
        }
        ChannelCommand::ClipboardRespond(data) => {
            out.put_u8(2);
            put_optional(out, *data);
        }
        ChannelCommand::ClipboardRequestFileContents(request) => {
            out.put_u8(3);
            out.put_u32_le(request.stream_id);
            out.put_u32_le(request.list_index);
            out.put_u32_le(request.flags);
            out.put_u64_le(request.position);
            out.put_u32_le(request.requested);
            let clip_data_id = request.clip_data_id.map(u32::to_le_bytes);
            put_optional(out, clip_data_id.as_ref().map(|id| &id[..]));
        }
        ChannelCommand::ClipboardRespondFileContents { stream_id, data } => {
            out.put_u8(4);
            out.put_u32_le(*stream_id);
            put_optional(out, *data);
        }
        ChannelCommand::SendChannelData { channel, data } => {
            out.put_u8(5);
            put_bytes(out, channel.as_bytes());
            put_bytes(out, data);
        }
        ChannelCommand::OpenDynamic { name, priority } => {
            out.put_u8(6);
            put_bytes(out, name.as_bytes());
            out.put_u8(*priority);
        }
        ChannelCommand::SendDynamic { id, data } => {
            out.put_u8(7);
            out.put_u32_le(*id);
            put_bytes(out, data);
        }
        ChannelCommand::CloseDynamic(id) => {
            out.put_u8(8);
            out.put_u32_le(*id);
        }
        ChannelCommand::SoundSamples { timestamp, data } => {
            out.put_u8(9);
            out.put_u32_le(*timestamp);
            put_bytes(out, data);
        }
        ChannelCommand::SoundVolume { left, right } => {
            out.put_u8(10);
            out.put_u16_le(*left);
            out.put_u16_le(*right);
        }
        ChannelCommand::SoundSelectFormat(index) => {
            out.put_u8(11);
            out.put_u32_le(*index);
        }
    }
}

/// Reads a channel command written by [`encode_channel_command`].
pub fn decode_channel_command<'a>(
    cursor: &mut ReadCursor<'a>,
) -> Result<ChannelCommand<'a>, DecodeError> {
    Ok(match cursor.read_u8()? {
        0 => {
            let count = cursor.read_u32_le()?;
            let mut formats = Vec::new();
            for _ in 0..count {
                let id = cursor.read_u32_le()?;
                formats.push(ClipboardFormat {
                    id,
                    name: read_string(cursor)?.to_owned(),
                });
            }
            ChannelCommand::ClipboardOffer(Cow::Owned(formats))
        }
        1 => ChannelCommand::ClipboardRequest(cursor.read_u32_le()?),
        2 => ChannelCommand::ClipboardRespond(read_optional(cursor)?),
        3 => {
            let stream_id = cursor.read_u32_le()?;
            let list_index = cursor.read_u32_le()?;
            let flags = cursor.read_u32_le()?;
            let position = cursor.read_u64_le()?;
            let requested = cursor.read_u32_le()?;
            let clip_data_id = match read_optional(cursor)? {
                Some(bytes) => {
                    let bytes: [u8; 4] = bytes
                        .try_into()
                        .map_err(|_| cursor.invalid("clip data id", "not 4 bytes"))?;
                    Some(u32::from_le_bytes(bytes))
                }
                None => None,
            };
            ChannelCommand::ClipboardRequestFileContents(FileContentsRequest {
                stream_id,
                list_index,
                flags,
                position,
                requested,
                clip_data_id,
            })
        }
        4 => ChannelCommand::ClipboardRespondFileContents {
            stream_id: cursor.read_u32_le()?,
            data: read_optional(cursor)?,
        },
        5 => ChannelCommand::SendChannelData {
            channel: read_string(cursor)?,
            data: read_bytes(cursor)?,
        },
        6 => ChannelCommand::OpenDynamic {
            name: read_string(cursor)?,
            priority: cursor.read_u8()?,
        },
        7 => ChannelCommand::SendDynamic {
            id: cursor.read_u32_le()?,
            data: read_bytes(cursor)?,
        },
        8 => ChannelCommand::CloseDynamic(cursor.read_u32_le()?),
        9 => ChannelCommand::SoundSamples {
            timestamp: cursor.read_u32_le()?,
            data: read_bytes(cursor)?,
        },
        10 => ChannelCommand::SoundVolume {
            left: cursor.read_u16_le()?,
            right: cursor.read_u16_le()?,
        },
        11 => ChannelCommand::SoundSelectFormat(cursor.read_u32_le()?),
        other => {
            return Err(DecodeError::Unexpected {
                context: "recorded command",
                what: "kind",
                value: u32::from(other),
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip() {
        let commands = [
            ChannelCommand::ClipboardOffer(Cow::Owned(vec![
                ClipboardFormat::standard(13),
                ClipboardFormat::registered(0xC001, "HTML Format"),
            ])),
            ChannelCommand::ClipboardRequest(13),
            ChannelCommand::ClipboardRespond(Some(&[1, 2, 3])),
            ChannelCommand::ClipboardRespond(None),
            ChannelCommand::ClipboardRequestFileContents(FileContentsRequest {
                stream_id: 1,
                list_index: 2,
                flags: 2,
                position: 1 << 40,
                requested: 9,
                clip_data_id: Some(4),
            }),
            ChannelCommand::ClipboardRespondFileContents {
                stream_id: 5,
                data: None,
            },
            ChannelCommand::SendChannelData {
                channel: "mychan",
                data: &[9; 10],
            },
            ChannelCommand::OpenDynamic {
                name: "Example::Echo",
                priority: 1,
            },
            ChannelCommand::SendDynamic { id: 16, data: &[] },
            ChannelCommand::CloseDynamic(16),
            ChannelCommand::SoundSamples {
                timestamp: 70_000,
                data: &[0; 8],
            },
            ChannelCommand::SoundVolume {
                left: 1,
                right: 0xFFFF,
            },
            ChannelCommand::SoundSelectFormat(2),
        ];
        for command in commands {
            let mut bytes = Vec::new();
            encode_channel_command(&command, &mut bytes);
            let mut cursor = ReadCursor::new(&bytes, "test");
            assert_eq!(decode_channel_command(&mut cursor).unwrap(), command);
            assert!(cursor.is_empty());
            for len in 0..bytes.len() {
                let mut cursor = ReadCursor::new(&bytes[..len], "test");
                assert!(decode_channel_command(&mut cursor).is_err());
            }
        }
    }
}
