//! The clipboard as the application sees it (MS-RDPECLIP): formats, the
//! events the clipboard channel reports, the errors of its commands, and
//! conversions between Windows clipboard data (CF_UNICODETEXT, CF_HTML,
//! CF_DIB) and plain Rust values.

use bytes::BufMut;

use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;
use crate::wire::utf16;

/// Standard clipboard format ids (Windows' predefined formats).
pub mod format {
    pub const CF_TEXT: u32 = 1;
    pub const CF_DIB: u32 = 8;
    pub const CF_OEMTEXT: u32 = 7;
    pub const CF_UNICODETEXT: u32 = 13;
    pub const CF_LOCALE: u32 = 16;
    /// The name a registered format carries for HTML ("CF_HTML").
    pub const HTML_FORMAT_NAME: &str = "HTML Format";
    /// The name of the file list format (FILEDESCRIPTORW array).
    pub const FILE_LIST_FORMAT_NAME: &str = "FileGroupDescriptorW";
}

/// FILECONTENTS_SIZE and FILECONTENTS_RANGE of a File Contents Request.
pub const FILECONTENTS_SIZE: u32 = 0x0001;
pub const FILECONTENTS_RANGE: u32 = 0x0002;

/// One clipboard format: a standard id, or a registered one whose id is
/// only meaningful together with its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipboardFormat {
    pub id: u32,
    /// Empty for standard formats.
    pub name: String,
}

impl ClipboardFormat {
    pub fn standard(id: u32) -> Self {
        Self {
            id,
            name: String::new(),
        }
    }

    pub fn registered(id: u32, name: impl Into<String>) -> Self {
        Self {
            id,
            name: name.into(),
        }
    }
}

/// A request for (part of) a file the other side listed (2.2.5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileContentsRequest {
    pub stream_id: u32,
    /// Index of the file in the file list.
    pub list_index: u32,
    /// `FILECONTENTS_SIZE` (answer with the 8-byte size) or
    /// `FILECONTENTS_RANGE` (answer with the bytes).
    pub flags: u32,
    pub position: u64,
    pub requested: u32,
    pub clip_data_id: Option<u32>,
}

/// What the clipboard channel tells the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClipboardEvent {
    /// The client finished its part of the channel setup: the server's own
    /// copies (`offer`) reach it from now on.
    Ready,
    /// The user copied on the client: these formats can be asked for with
    /// `request`. An empty list means the client clipboard is empty.
    RemoteCopy(Vec<ClipboardFormat>),
    /// The client pastes: it wants the data of `format_id` from the last
    /// `offer`. Answer with `respond`.
    DataRequest {
        format_id: u32,
    },
    /// The answer to `request`: the data, or `None` when the client could
    /// not provide it.
    DataResponse {
        format_id: u32,
        data: Option<Vec<u8>>,
    },
    /// The client wants part of a file the server listed; answer with
    /// `respond_file_contents`.
    FileContentsRequest(FileContentsRequest),
    /// The answer to `request_file_contents`.
    FileContentsResponse {
        stream_id: u32,
        data: Option<Vec<u8>>,
    },
    /// The client asks the server to keep the data of the format list
    /// tagged `clip_data_id` available (file transfers), until `Unlock`.
    Lock {
        clip_data_id: u32,
    },
    Unlock {
        clip_data_id: u32,
    },
}

/// A clipboard command the state machine cannot carry out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClipboardError {
    #[error("no format data request to answer")]
    NothingToAnswer,
    #[error("no file contents request with this stream id")]
    UnknownStream,
    #[error("the client has not announced this format")]
    UnknownFormat,
    #[error("too many requests await the client's answer")]
    TooManyRequests,
}

/// Text for CF_UNICODETEXT: UTF-16LE with a NUL terminator, line ends as CRLF.
pub fn encode_unicode_text(text: &str) -> Vec<u8> {
    let windows = text.replace("\r\n", "\n").replace('\n', "\r\n");
    let mut out = utf16::encode(&windows);
    out.put_u16_le(0);
    out
}

/// CF_UNICODETEXT data as a string: up to the first NUL, CRLF as LF.
pub fn decode_unicode_text(data: &[u8]) -> Result<String, DecodeError> {
    // Some clients send an odd trailing byte; it cannot be part of a unit.
    let even = &data[..data.len() & !1];
    Ok(utf16::decode(even, "cf_unicodetext", "text")?.replace("\r\n", "\n"))
}

/// An HTML fragment as CF_HTML ("HTML Format") data: the header with byte
/// offsets, then a document holding the fragment between the markers.
pub fn encode_html(fragment: &str) -> Vec<u8> {
    const PREFIX: &str = "<html><body>\r\n<!--StartFragment-->";
    const SUFFIX: &str = "<!--EndFragment-->\r\n</body></html>";
    // Four 10-digit offsets keep the header's length fixed.
    let header = |start_html: usize, end_html: usize, start: usize, end: usize| {
        format!(
            "Version:0.9\r\nStartHTML:{start_html:010}\r\nEndHTML:{end_html:010}\r\n\
             StartFragment:{start:010}\r\nEndFragment:{end:010}\r\n"
        )
    };
    let header_len = header(0, 0, 0, 0).len();
    let start = header_len + PREFIX.len();
    let end = start + fragment.len();
    let end_html = end + SUFFIX.len();
    let mut out = header(header_len, end_html, start, end).into_bytes();
    out.extend_from_slice(PREFIX.as_bytes());
    out.extend_from_slice(fragment.as_bytes());
    out.extend_from_slice(SUFFIX.as_bytes());
    out
}

/// The fragment of CF_HTML data, from its StartFragment and EndFragment
/// offsets; `None` if they are missing or out of range.
pub fn decode_html(data: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(data.split(|&b| b == 0).next()?).ok()?;
    let offset = |name: &str| -> Option<usize> {
        let at = text.find(name)? + name.len();
        let digits: String = text[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    let (start, end) = (offset("StartFragment:")?, offset("EndFragment:")?);
    text.get(start..end).map(str::to_owned)
}

/// BITMAPINFOHEADER: biSize.
const DIB_HEADER_SIZE: usize = 40;
const BI_RGB: u32 = 0;
const BI_BITFIELDS: u32 = 3;

/// Pixels (B, G, R, X rows top to bottom, `stride` bytes apart) as CF_DIB
/// data: a BITMAPINFOHEADER and 32-bit rows bottom-up, as Windows stores them.
pub fn encode_dib(width: u32, height: u32, stride: usize, pixels: &[u8]) -> Option<Vec<u8>> {
    let row = usize::try_from(width).ok()?.checked_mul(4)?;
    let rows = usize::try_from(height).ok()?;
    let image_size = row.checked_mul(rows)?;
    if rows > 0 && (stride < row || pixels.len() < stride * (rows - 1) + row) {
        return None;
    }
    let mut out = Vec::with_capacity(DIB_HEADER_SIZE + image_size);
    out.put_u32_le(DIB_HEADER_SIZE as u32);
    out.put_i32_le(i32::try_from(width).ok()?);
    out.put_i32_le(i32::try_from(height).ok()?); // positive: bottom-up
    out.put_u16_le(1); // biPlanes
    out.put_u16_le(32); // biBitCount
    out.put_u32_le(BI_RGB);
    out.put_u32_le(u32::try_from(image_size).ok()?);
    out.put_bytes(0, 16); // resolution, colours used and important
    for y in (0..rows).rev() {
        out.extend_from_slice(&pixels[y * stride..y * stride + row]);
    }
    Some(out)
}

/// CF_DIB data with 24 or 32 bits per pixel (BI_RGB, or BI_BITFIELDS with
/// the usual masks) as width, height and B, G, R, X rows top to bottom.
pub fn decode_dib(data: &[u8]) -> Result<(u32, u32, Vec<u8>), DecodeError> {
    let mut cursor = ReadCursor::new(data, "cf_dib");
    let size = cursor.read_u32_le()? as usize;
    let width = cursor.read_u32_le()? as i32;
    let height = cursor.read_u32_le()? as i32;
    let _planes = cursor.read_u16_le()?;
    let bits = cursor.read_u16_le()?;
    let compression = cursor.read_u32_le()?;
    if size < DIB_HEADER_SIZE {
        return Err(cursor.invalid("biSize", "shorter than a BITMAPINFOHEADER"));
    }
    if width <= 0 || height == 0 || width > 0x4000 || height.unsigned_abs() > 0x4000 {
        return Err(cursor.invalid("biWidth", "size out of range"));
    }
    // BI_BITFIELDS masks follow a plain BITMAPINFOHEADER; the V4 and V5
    // headers hold them inside their own (larger) size.
    let masks = match (compression, bits) {
        (BI_RGB, 24 | 32) => 0,
        (BI_BITFIELDS, 32) if size == DIB_HEADER_SIZE => 12,
        (BI_BITFIELDS, 32) => 0,
        _ => return Err(cursor.invalid("biCompression", "only 24 and 32 bpp rgb")),
    };
    let mut cursor = ReadCursor::new(data, "cf_dib");
    cursor.skip(size.saturating_add(masks))?;
    let (w, h) = (width as usize, height.unsigned_abs() as usize);
    let bytes_per_pixel = usize::from(bits / 8);
    // Rows are padded to four bytes.
    let row = (w * bytes_per_pixel).div_ceil(4) * 4;
    let rows = cursor.read_slice(row * h)?;
    let mut pixels = Vec::with_capacity(w * h * 4);
    for y in 0..h {
        let source = if height > 0 { h - 1 - y } else { y };
        for pixel in
            rows[source * row..source * row + w * bytes_per_pixel].chunks_exact(bytes_per_pixel)
        {
            pixels.extend_from_slice(&[pixel[0], pixel[1], pixel[2], 0xFF]);
        }
    }
    Ok((width as u32, h as u32, pixels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_and_dib_round_trip() {
        let html = encode_html("<b>Grüße</b> & <i>more</i>");
        let text = std::str::from_utf8(&html).unwrap();
        assert!(text.starts_with("Version:0.9\r\nStartHTML:0000000105\r\n"));
        assert_eq!(decode_html(&html).unwrap(), "<b>Grüße</b> & <i>more</i>");
        let start = text.find("<html>").unwrap();
        assert_eq!(start, 105);
        assert!(decode_html(b"Version:0.9\r\nStartFragment:0000000999\r\n").is_none());

        let pixels: Vec<u8> = (0..3 * 2 * 4).map(|i| i as u8).collect();
        let dib = encode_dib(3, 2, 12, &pixels).unwrap();
        assert_eq!(dib.len(), 40 + 24);
        // Bottom-up: the second row comes first.
        assert_eq!(&dib[40..52], &pixels[12..24]);
        let (width, height, decoded) = decode_dib(&dib).unwrap();
        assert_eq!((width, height), (3, 2));
        let opaque: Vec<u8> = pixels
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2], 0xFF])
            .collect();
        assert_eq!(decoded, opaque);
        for len in 0..dib.len() {
            assert!(decode_dib(&dib[..len]).is_err(), "length {len}");
        }
        assert!(encode_dib(3, 2, 12, &pixels[..20]).is_none());
        // A BITMAPV5HEADER (124 bytes) with BI_BITFIELDS keeps its masks
        // inside the header: the pixels start right after it.
        let mut v5 = dib[..40].to_vec();
        v5[..4].copy_from_slice(&124u32.to_le_bytes());
        v5[16..20].copy_from_slice(&BI_BITFIELDS.to_le_bytes());
        v5.resize(124, 0);
        v5.extend_from_slice(&dib[40..]);
        assert_eq!(decode_dib(&v5).unwrap(), (3, 2, opaque.clone()));
        // A plain header with BI_BITFIELDS has 12 bytes of masks after it.
        let mut bitfields = dib[..40].to_vec();
        bitfields[16..20].copy_from_slice(&BI_BITFIELDS.to_le_bytes());
        bitfields.extend_from_slice(&[0; 12]);
        bitfields.extend_from_slice(&dib[40..]);
        assert_eq!(decode_dib(&bitfields).unwrap(), (3, 2, opaque));
        // A header size beyond the data is an error, not a panic.
        let mut huge = dib.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_dib(&huge).is_err());
    }

    #[test]
    fn unicode_text_round_trips_with_crlf() {
        let data = encode_unicode_text("a\nb");
        assert_eq!(data, [b'a', 0, b'\r', 0, b'\n', 0, b'b', 0, 0, 0]);
        assert_eq!(decode_unicode_text(&data).unwrap(), "a\nb");
        assert_eq!(decode_unicode_text(&[b'a', 0, b'b']).unwrap(), "a");
    }
}
