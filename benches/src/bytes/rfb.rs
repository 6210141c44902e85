//! A minimal counting RFB (VNC) client for the bytes bench.
//!
//! It speaks RFB 3.8 with security type None, asks for 32-bit pixels
//! (depth 24) and the lossless encodings x11vnc and X0tigervnc both have
//! (Tight without any quality-level pseudo-encoding, so never JPEG; ZRLE;
//! CopyRect; Raw), plus the RichCursor, DesktopSize and LastRect
//! pseudo-encodings. It never decodes a pixel: [`MessageParser`] walks each
//! server message only far enough to find where it ends (lengths, Tight's
//! filters and compact lengths), so the client can answer every complete
//! update with an incremental update request and count what it got, like a
//! real viewer that keeps up.
//!
//! The parser is sans-IO (bytes in, messages out) and bounded: a message
//! longer than [`MAX_MESSAGE`], a rectangle outside the framebuffer or an
//! encoding the client did not ask for is an error, and input that stops in
//! the middle of a message is [`RfbError::Truncated`] at the end of the
//! stream, never a panic or a wait.

use std::collections::BTreeMap;
use std::io::{Read, Write};

/// RFB encoding numbers the client knows.
pub mod encoding {
    /// Raw pixels.
    pub const RAW: i32 = 0;
    /// A copy of another framebuffer rectangle.
    pub const COPY_RECT: i32 = 1;
    /// Tight (zlib streams, filters, fill; JPEG only when asked for).
    pub const TIGHT: i32 = 7;
    /// ZRLE (one zlib stream of run-length coded tiles).
    pub const ZRLE: i32 = 16;
    /// Pseudo-encoding: the framebuffer changed size.
    pub const DESKTOP_SIZE: i32 = -223;
    /// Pseudo-encoding: the last rectangle of an update with 0xffff rectangles.
    pub const LAST_RECT: i32 = -224;
    /// Pseudo-encoding: the cursor shape (pixels and a bit mask).
    pub const RICH_CURSOR: i32 = -239;
    /// Pseudo-encoding of Tight's zlib compression level 0; level `n` is
    /// this plus `n` (-256..=-247). Lossless at every level.
    pub const COMPRESS_LEVEL_0: i32 = -256;
}

/// The encodings the client announces, best first (servers pick the first
/// one they support for pixel data).
pub const CLIENT_ENCODINGS: [i32; 7] = [
    encoding::TIGHT,
    encoding::ZRLE,
    encoding::COPY_RECT,
    encoding::RAW,
    encoding::RICH_CURSOR,
    encoding::DESKTOP_SIZE,
    encoding::LAST_RECT,
];

/// Bytes per pixel of the pixel format the client asks for.
const BYTES_PER_PIXEL: usize = 4;
/// Bytes per pixel in Tight's TPIXEL form for that format (depth 24, 32 bpp).
const TPIXEL: usize = 3;
/// The longest server message accepted (a full 4K Raw update is 33 MB).
pub const MAX_MESSAGE: usize = 256 << 20;
/// The longest text accepted in the handshake (failure reasons, desktop name).
const MAX_HANDSHAKE_TEXT: usize = 4096;
/// The longest clipboard text accepted from the server.
const MAX_CUT_TEXT: usize = 1 << 20;

/// What went wrong talking to an RFB server.
#[derive(Debug, thiserror::Error)]
pub enum RfbError {
    /// The socket failed.
    #[error("rfb i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The stream ended in the middle of a message.
    #[error("the rfb stream ended in the middle of a message ({have} bytes of it received)")]
    Truncated {
        /// Bytes of the unfinished message that were received.
        have: usize,
    },
    /// The server speaks another protocol or an older RFB version.
    #[error("unsupported protocol version {0:?} (this client speaks RFB 3.8)")]
    Version(String),
    /// The server refused the connection or offered no security type None.
    #[error("security: {0}")]
    Security(String),
    /// The server sent a message type this client does not know.
    #[error("unknown server message type {0}")]
    UnknownMessage(u8),
    /// A rectangle used an encoding the client did not announce.
    #[error("rectangle in encoding {0}, which the client did not ask for")]
    UnexpectedEncoding(i32),
    /// A rectangle does not fit in the framebuffer.
    #[error("rectangle {w}x{h}+{x}+{y} outside the {fb_w}x{fb_h} framebuffer")]
    OutsideFramebuffer {
        /// Left edge.
        x: u16,
        /// Top edge.
        y: u16,
        /// Width.
        w: u16,
        /// Height.
        h: u16,
        /// Framebuffer width.
        fb_w: u16,
        /// Framebuffer height.
        fb_h: u16,
    },
    /// A length field exceeds its bound.
    #[error("{what} of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// What was too long.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A Tight rectangle's compression control or filter is invalid.
    #[error("invalid tight rectangle: {0}")]
    Tight(String),
}

/// What the server said in its `ServerInit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInit {
    /// The version line the server sent, e.g. `RFB 003.008`.
    pub version: String,
    /// Framebuffer width.
    pub width: u16,
    /// Framebuffer height.
    pub height: u16,
    /// Desktop name.
    pub name: String,
}

/// How one rectangle was coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RectKind {
    /// Raw pixels.
    Raw,
    /// CopyRect.
    CopyRect,
    /// ZRLE.
    Zrle,
    /// Tight, one colour.
    TightFill,
    /// Tight, JPEG (lossy: the client never asks for it).
    TightJpeg,
    /// Tight, zlib with the copy filter (or no filter byte).
    TightCopy,
    /// Tight, zlib with the palette filter.
    TightPalette,
    /// Tight, zlib with the gradient filter.
    TightGradient,
    /// DesktopSize pseudo-rectangle.
    DesktopSize,
    /// LastRect pseudo-rectangle.
    LastRect,
    /// RichCursor pseudo-rectangle.
    RichCursor,
}

impl RectKind {
    /// A short name for tables.
    pub fn label(self) -> &'static str {
        match self {
            RectKind::Raw => "raw",
            RectKind::CopyRect => "copyrect",
            RectKind::Zrle => "zrle",
            RectKind::TightFill => "tight-fill",
            RectKind::TightJpeg => "tight-jpeg",
            RectKind::TightCopy => "tight-zlib",
            RectKind::TightPalette => "tight-palette",
            RectKind::TightGradient => "tight-gradient",
            RectKind::DesktopSize => "desktop-size",
            RectKind::LastRect => "last-rect",
            RectKind::RichCursor => "rich-cursor",
        }
    }
}

/// One complete `FramebufferUpdate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// How each rectangle was coded, in order.
    pub rects: Vec<RectKind>,
    /// The framebuffer size after this update (a DesktopSize changes it).
    pub size: (u16, u16),
}

/// One complete server-to-client message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMessage {
    /// `FramebufferUpdate`.
    Update(Update),
    /// `SetColourMapEntries` with this many colours.
    ColourMap(u16),
    /// `Bell`.
    Bell,
    /// `ServerCutText` of this many bytes.
    CutText(usize),
}

/// Where parsing stopped: not enough bytes yet (at least this many are
/// needed in all), or an error.
enum Stop {
    Need(usize),
    Bad(RfbError),
}

impl From<RfbError> for Stop {
    fn from(e: RfbError) -> Self {
        Stop::Bad(e)
    }
}

/// A read cursor over the bytes received so far.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Stop> {
        let end = self.pos.saturating_add(n);
        if end > MAX_MESSAGE {
            return Err(Stop::Bad(RfbError::TooLarge {
                what: "server message",
                len: end,
                max: MAX_MESSAGE,
            }));
        }
        match self.buf.get(self.pos..end) {
            Some(s) => {
                self.pos = end;
                Ok(s)
            }
            None => Err(Stop::Need(end)),
        }
    }

    fn u8(&mut self) -> Result<u8, Stop> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Stop> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Stop> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i32(&mut self) -> Result<i32, Stop> {
        Ok(self.u32()? as i32)
    }

    /// Tight's compact length: 1 to 3 bytes, 7 + 7 + 8 bits.
    fn compact_len(&mut self) -> Result<usize, Stop> {
        let b0 = self.u8()?;
        let mut len = usize::from(b0 & 0x7f);
        if b0 & 0x80 != 0 {
            let b1 = self.u8()?;
            len |= usize::from(b1 & 0x7f) << 7;
            if b1 & 0x80 != 0 {
                len |= usize::from(self.u8()?) << 14;
            }
        }
        Ok(len)
    }
}

/// Splits the server's byte stream (after the handshake) into messages.
#[derive(Debug)]
pub struct MessageParser {
    buf: Vec<u8>,
    /// No parse is tried before the buffer holds this many bytes.
    need: usize,
    size: (u16, u16),
}

impl MessageParser {
    /// A parser for a framebuffer of this size (from `ServerInit`).
    pub fn new(width: u16, height: u16) -> Self {
        Self {
            buf: Vec::new(),
            need: 1,
            size: (width, height),
        }
    }

    /// The framebuffer size as of the last complete update.
    pub fn size(&self) -> (u16, u16) {
        self.size
    }

    /// Adds received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete message, `None` until more bytes arrive.
    pub fn next_message(&mut self) -> Result<Option<ServerMessage>, RfbError> {
        // A big update arrives in many reads: parse it again only once the
        // bytes it was known to need are there.
        if self.buf.len() < self.need {
            return Ok(None);
        }
        let mut cur = Cursor {
            buf: &self.buf,
            pos: 0,
        };
        match parse_message(&mut cur, self.size) {
            Ok(msg) => {
                let used = cur.pos;
                self.buf.drain(..used);
                self.need = 1;
                if let ServerMessage::Update(u) = &msg {
                    self.size = u.size;
                }
                Ok(Some(msg))
            }
            Err(Stop::Need(n)) => {
                self.need = n;
                Ok(None)
            }
            Err(Stop::Bad(e)) => Err(e),
        }
    }

    /// The stream ended: an error if a message was left unfinished.
    pub fn finish(&self) -> Result<(), RfbError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(RfbError::Truncated {
                have: self.buf.len(),
            })
        }
    }
}

fn parse_message(cur: &mut Cursor<'_>, size: (u16, u16)) -> Result<ServerMessage, Stop> {
    match cur.u8()? {
        0 => parse_update(cur, size).map(ServerMessage::Update),
        1 => {
            cur.take(3)?; // padding, first colour
            let n = cur.u16()?;
            cur.take(usize::from(n) * 6)?;
            Ok(ServerMessage::ColourMap(n))
        }
        2 => Ok(ServerMessage::Bell),
        3 => {
            cur.take(3)?;
            let len = cur.u32()? as usize;
            if len > MAX_CUT_TEXT {
                return Err(RfbError::TooLarge {
                    what: "server cut text",
                    len,
                    max: MAX_CUT_TEXT,
                }
                .into());
            }
            cur.take(len)?;
            Ok(ServerMessage::CutText(len))
        }
        t => Err(RfbError::UnknownMessage(t).into()),
    }
}

fn parse_update(cur: &mut Cursor<'_>, mut size: (u16, u16)) -> Result<Update, Stop> {
    cur.take(1)?; // padding
    let count = cur.u16()?;
    let mut rects = Vec::new();
    // 0xffff rectangles means "until LastRect" once LastRect was announced.
    let mut left = count;
    while count == 0xffff || left > 0 {
        left = left.saturating_sub(1);
        let (x, y, w, h) = (cur.u16()?, cur.u16()?, cur.u16()?, cur.u16()?);
        let enc = cur.i32()?;
        let pixels = usize::from(w) * usize::from(h);
        let kind = match enc {
            encoding::DESKTOP_SIZE => {
                size = (w, h);
                RectKind::DesktopSize
            }
            encoding::LAST_RECT => {
                rects.push(RectKind::LastRect);
                break;
            }
            encoding::RICH_CURSOR => {
                // Pixels, then a 1-bit mask with rows padded to bytes.
                cur.take(pixels * BYTES_PER_PIXEL)?;
                cur.take(usize::from(w).div_ceil(8) * usize::from(h))?;
                RectKind::RichCursor
            }
            _ => {
                let inside = u32::from(x) + u32::from(w) <= u32::from(size.0)
                    && u32::from(y) + u32::from(h) <= u32::from(size.1);
                if !inside {
                    return Err(RfbError::OutsideFramebuffer {
                        x,
                        y,
                        w,
                        h,
                        fb_w: size.0,
                        fb_h: size.1,
                    }
                    .into());
                }
                match enc {
                    encoding::RAW => {
                        cur.take(pixels * BYTES_PER_PIXEL)?;
                        RectKind::Raw
                    }
                    encoding::COPY_RECT => {
                        cur.take(4)?;
                        RectKind::CopyRect
                    }
                    encoding::ZRLE => {
                        let len = cur.u32()? as usize;
                        cur.take(len)?;
                        RectKind::Zrle
                    }
                    encoding::TIGHT => parse_tight(cur, w, h)?,
                    other => return Err(RfbError::UnexpectedEncoding(other).into()),
                }
            }
        };
        rects.push(kind);
    }
    Ok(Update { rects, size })
}

/// Walks one Tight rectangle (after its header) to its end.
fn parse_tight(cur: &mut Cursor<'_>, w: u16, h: u16) -> Result<RectKind, Stop> {
    let control = cur.u8()?;
    let (w, h) = (usize::from(w), usize::from(h));
    match control >> 4 {
        0x8 => {
            cur.take(TPIXEL)?;
            Ok(RectKind::TightFill)
        }
        0x9 => {
            let len = cur.compact_len()?;
            cur.take(len)?;
            Ok(RectKind::TightJpeg)
        }
        c if c & 0x8 != 0 => Err(RfbError::Tight(format!(
            "compression control {control:#04x} (only fill, jpeg and basic exist here)"
        ))
        .into()),
        _ => {
            // Basic compression: an optional filter id, then the data.
            let filter = if control & 0x40 != 0 { cur.u8()? } else { 0 };
            let (kind, raw_len) = match filter {
                0 => (RectKind::TightCopy, w * h * TPIXEL),
                1 => {
                    let colours = usize::from(cur.u8()?) + 1;
                    cur.take(colours * TPIXEL)?;
                    let len = if colours == 2 {
                        w.div_ceil(8) * h
                    } else {
                        w * h
                    };
                    (RectKind::TightPalette, len)
                }
                2 => (RectKind::TightGradient, w * h * TPIXEL),
                f => return Err(RfbError::Tight(format!("unknown filter {f}")).into()),
            };
            // Under 12 bytes the data is sent as is, otherwise zlib with a
            // compact length in front.
            if raw_len < 12 {
                cur.take(raw_len)?;
            } else {
                let len = cur.compact_len()?;
                cur.take(len)?;
            }
            Ok(kind)
        }
    }
}

/// `SetPixelFormat`: 32 bits per pixel, depth 24, little-endian true colour
/// 0x00RRGGBB.
pub fn set_pixel_format() -> [u8; 20] {
    let mut m = [0u8; 20];
    m[0] = 0;
    m[4] = 32; // bits per pixel
    m[5] = 24; // depth
    m[6] = 0; // little-endian
    m[7] = 1; // true colour
    m[8..10].copy_from_slice(&255u16.to_be_bytes());
    m[10..12].copy_from_slice(&255u16.to_be_bytes());
    m[12..14].copy_from_slice(&255u16.to_be_bytes());
    m[14] = 16;
    m[15] = 8;
    m[16] = 0;
    m
}

/// `SetEncodings` with these encodings.
pub fn set_encodings(encodings: &[i32]) -> Vec<u8> {
    let mut m = vec![2, 0];
    m.extend_from_slice(&(encodings.len() as u16).to_be_bytes());
    for e in encodings {
        m.extend_from_slice(&e.to_be_bytes());
    }
    m
}

/// `FramebufferUpdateRequest` for the whole framebuffer.
pub fn update_request(incremental: bool, width: u16, height: u16) -> [u8; 10] {
    let mut m = [0u8; 10];
    m[0] = 3;
    m[1] = u8::from(incremental);
    m[6..8].copy_from_slice(&width.to_be_bytes());
    m[8..10].copy_from_slice(&height.to_be_bytes());
    m
}

fn read_u32(s: &mut impl Read) -> Result<u32, RfbError> {
    let mut b = [0u8; 4];
    s.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

fn read_text(s: &mut impl Read, what: &'static str) -> Result<String, RfbError> {
    let len = read_u32(s)? as usize;
    if len > MAX_HANDSHAKE_TEXT {
        return Err(RfbError::TooLarge {
            what,
            len,
            max: MAX_HANDSHAKE_TEXT,
        });
    }
    let mut text = vec![0u8; len];
    s.read_exact(&mut text)?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// The encodings announced: [`CLIENT_ENCODINGS`], plus Tight's compression
/// level when one is asked for (`None`: the server's default).
pub fn announced_encodings(compress_level: Option<u8>) -> Vec<i32> {
    let mut all = CLIENT_ENCODINGS.to_vec();
    if let Some(level) = compress_level {
        all.push(encoding::COMPRESS_LEVEL_0 + i32::from(level.min(9)));
    }
    all
}

/// The RFB 3.8 handshake with security None, then the client's pixel
/// format, encodings ([`announced_encodings`]) and a first full
/// (non-incremental) update request.
pub fn handshake<S: Read + Write>(
    s: &mut S,
    compress_level: Option<u8>,
) -> Result<ServerInit, RfbError> {
    let mut version = [0u8; 12];
    s.read_exact(&mut version)?;
    let version = String::from_utf8_lossy(&version).trim_end().to_owned();
    let minor = version
        .strip_prefix("RFB 003.")
        .and_then(|m| m.parse::<u32>().ok());
    if minor.is_none_or(|m| m < 8) {
        return Err(RfbError::Version(version));
    }
    s.write_all(b"RFB 003.008\n")?;
    let mut n = [0u8; 1];
    s.read_exact(&mut n)?;
    if n[0] == 0 {
        let reason = read_text(s, "refusal reason")?;
        return Err(RfbError::Security(format!("connection refused: {reason}")));
    }
    let mut types = vec![0u8; usize::from(n[0])];
    s.read_exact(&mut types)?;
    if !types.contains(&1) {
        return Err(RfbError::Security(format!(
            "the server offers security types {types:?}, not None (1): start it without a password"
        )));
    }
    s.write_all(&[1])?;
    if read_u32(s)? != 0 {
        let reason = read_text(s, "failure reason")?;
        return Err(RfbError::Security(format!(
            "security None failed: {reason}"
        )));
    }
    s.write_all(&[1])?; // shared
    let mut init = [0u8; 20];
    s.read_exact(&mut init)?;
    let (width, height) = (
        u16::from_be_bytes([init[0], init[1]]),
        u16::from_be_bytes([init[2], init[3]]),
    );
    let name = read_text(s, "desktop name")?;
    s.write_all(&set_pixel_format())?;
    s.write_all(&set_encodings(&announced_encodings(compress_level)))?;
    s.write_all(&update_request(false, width, height))?;
    s.flush()?;
    Ok(ServerInit {
        version,
        width,
        height,
        name,
    })
}

/// What the client received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Complete framebuffer updates.
    pub updates: u64,
    /// Rectangles by kind.
    pub rects: BTreeMap<RectKind, u64>,
    /// Other messages (bell, colour map, cut text).
    pub other_messages: u64,
}

impl Counts {
    /// Adds one message.
    pub fn add(&mut self, msg: &ServerMessage) {
        match msg {
            ServerMessage::Update(u) => {
                self.updates += 1;
                for r in &u.rects {
                    *self.rects.entry(*r).or_default() += 1;
                }
            }
            _ => self.other_messages += 1,
        }
    }

    /// `tight-zlib 812, tight-fill 301, copyrect 4` (most used first).
    pub fn summary(&self) -> String {
        let mut kinds: Vec<_> = self.rects.iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        if kinds.is_empty() {
            return "no rectangles".to_owned();
        }
        kinds
            .iter()
            .map(|(k, n)| format!("{} {n}", k.label()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Reads updates until the stream ends, answering each complete update
/// with an incremental request for the whole framebuffer. `on_message` sees
/// every message (to count it). A stream closed between messages ends with
/// `Ok`; one closed in the middle of a message is [`RfbError::Truncated`].
pub fn serve_updates<S: Read + Write>(
    s: &mut S,
    init: &ServerInit,
    mut on_message: impl FnMut(&ServerMessage),
) -> Result<(), RfbError> {
    let mut parser = MessageParser::new(init.width, init.height);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match s.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return parser.finish();
        }
        parser.push(&buf[..n]);
        while let Some(msg) = parser.next_message()? {
            on_message(&msg);
            if let ServerMessage::Update(_) = msg {
                let (w, h) = parser.size();
                s.write_all(&update_request(true, w, h))?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rectangle header.
    fn rect(out: &mut Vec<u8>, x: u16, y: u16, w: u16, h: u16, enc: i32) {
        for v in [x, y, w, h] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&enc.to_be_bytes());
    }

    fn update_header(count: u16) -> Vec<u8> {
        let mut m = vec![0, 0];
        m.extend_from_slice(&count.to_be_bytes());
        m
    }

    /// Tight compact length bytes.
    fn compact(len: usize) -> Vec<u8> {
        let mut out = vec![(len & 0x7f) as u8];
        if len >= 0x80 {
            out[0] |= 0x80;
            out.push(((len >> 7) & 0x7f) as u8);
            if len >= 0x4000 {
                out[1] |= 0x80;
                out.push((len >> 14) as u8);
            }
        }
        out
    }

    /// One update with a rectangle of every encoding the client accepts.
    fn every_encoding() -> (Vec<u8>, Vec<RectKind>) {
        let mut m = update_header(13);
        let mut kinds = Vec::new();
        // Raw 3x2.
        rect(&mut m, 0, 0, 3, 2, encoding::RAW);
        m.extend(std::iter::repeat_n(0xab, 3 * 2 * 4));
        kinds.push(RectKind::Raw);
        // CopyRect from (5, 6).
        rect(&mut m, 10, 10, 20, 20, encoding::COPY_RECT);
        m.extend_from_slice(&[0, 5, 0, 6]);
        kinds.push(RectKind::CopyRect);
        // ZRLE with 300 bytes of zlib data.
        rect(&mut m, 0, 0, 64, 64, encoding::ZRLE);
        m.extend_from_slice(&300u32.to_be_bytes());
        m.extend(std::iter::repeat_n(0x11, 300));
        kinds.push(RectKind::Zrle);
        // Tight fill.
        rect(&mut m, 1, 1, 50, 50, encoding::TIGHT);
        m.extend_from_slice(&[0x80, 1, 2, 3]);
        kinds.push(RectKind::TightFill);
        // Tight JPEG with a two-byte compact length (200).
        rect(&mut m, 1, 1, 50, 50, encoding::TIGHT);
        m.push(0x90);
        m.extend(compact(200));
        m.extend(std::iter::repeat_n(0x22, 200));
        kinds.push(RectKind::TightJpeg);
        // Tight basic, no filter byte (copy), stream 1, 20000 zlib bytes
        // (a three-byte compact length).
        rect(&mut m, 0, 0, 100, 100, encoding::TIGHT);
        m.push(0x10);
        m.extend(compact(20_000));
        m.extend(std::iter::repeat_n(0x33, 20_000));
        kinds.push(RectKind::TightCopy);
        // Tight basic, explicit copy filter, 1x2 pixels = 6 bytes sent as is.
        rect(&mut m, 0, 0, 1, 2, encoding::TIGHT);
        m.extend_from_slice(&[0x40, 0]);
        m.extend_from_slice(&[9; 6]);
        kinds.push(RectKind::TightCopy);
        // Tight palette of 2 colours, 16x4: 2 bytes a row, 8 bytes as is.
        rect(&mut m, 0, 0, 16, 4, encoding::TIGHT);
        m.extend_from_slice(&[0x60, 1, 1]);
        m.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
        m.extend_from_slice(&[7; 8]);
        kinds.push(RectKind::TightPalette);
        // Tight palette of 5 colours, 40x10: 400 index bytes, zlib-coded in 50.
        rect(&mut m, 0, 0, 40, 10, encoding::TIGHT);
        m.extend_from_slice(&[0x40, 1, 4]);
        m.extend(std::iter::repeat_n(0x44, 5 * 3));
        m.extend(compact(50));
        m.extend(std::iter::repeat_n(0x55, 50));
        kinds.push(RectKind::TightPalette);
        // Tight gradient, 10x10, zlib-coded in 130 bytes.
        rect(&mut m, 0, 0, 10, 10, encoding::TIGHT);
        m.extend_from_slice(&[0x70, 2]);
        m.extend(compact(130));
        m.extend(std::iter::repeat_n(0x66, 130));
        kinds.push(RectKind::TightGradient);
        // RichCursor 10x3: 120 pixel bytes and 2 mask bytes a row.
        rect(&mut m, 2, 2, 10, 3, encoding::RICH_CURSOR);
        m.extend(std::iter::repeat_n(0x77, 10 * 3 * 4 + 2 * 3));
        kinds.push(RectKind::RichCursor);
        // The screen grows; a rectangle in the new part is then inside.
        rect(&mut m, 0, 0, 300, 250, encoding::DESKTOP_SIZE);
        kinds.push(RectKind::DesktopSize);
        rect(&mut m, 280, 230, 20, 20, encoding::COPY_RECT);
        m.extend_from_slice(&[0, 0, 0, 0]);
        kinds.push(RectKind::CopyRect);
        (m, kinds)
    }

    fn parse_all(bytes: &[u8], size: (u16, u16)) -> Result<Vec<ServerMessage>, RfbError> {
        let mut p = MessageParser::new(size.0, size.1);
        p.push(bytes);
        let mut out = Vec::new();
        while let Some(m) = p.next_message()? {
            out.push(m);
        }
        p.finish()?;
        Ok(out)
    }

    #[test]
    fn every_accepted_encoding_is_walked_to_its_end() {
        let (mut bytes, kinds) = every_encoding();
        bytes.push(2); // a bell right after: the update ended exactly
        let msgs = parse_all(&bytes, (200, 200)).unwrap();
        assert_eq!(
            msgs,
            vec![
                ServerMessage::Update(Update {
                    rects: kinds,
                    size: (300, 250)
                }),
                ServerMessage::Bell
            ]
        );
    }

    #[test]
    fn last_rect_ends_an_update_of_unknown_length() {
        let mut m = update_header(0xffff);
        rect(&mut m, 0, 0, 2, 1, encoding::RAW);
        m.extend_from_slice(&[0; 8]);
        rect(&mut m, 0, 0, 0, 0, encoding::LAST_RECT);
        // The next message follows at once.
        m.extend(update_header(0));
        let msgs = parse_all(&m, (10, 10)).unwrap();
        assert_eq!(
            msgs,
            vec![
                ServerMessage::Update(Update {
                    rects: vec![RectKind::Raw, RectKind::LastRect],
                    size: (10, 10)
                }),
                ServerMessage::Update(Update {
                    rects: vec![],
                    size: (10, 10)
                })
            ]
        );
    }

    #[test]
    fn other_server_messages_are_skipped_whole() {
        let mut m = vec![1, 0, 0, 0, 0, 2];
        m.extend_from_slice(&[0; 12]); // two colours
        m.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 5]);
        m.extend_from_slice(b"hello");
        m.push(2);
        let msgs = parse_all(&m, (10, 10)).unwrap();
        assert_eq!(
            msgs,
            vec![
                ServerMessage::ColourMap(2),
                ServerMessage::CutText(5),
                ServerMessage::Bell
            ]
        );
    }

    #[test]
    fn truncated_input_waits_for_more_then_is_an_error_at_the_end() {
        let (bytes, _) = every_encoding();
        for cut in 1..bytes.len() {
            let mut p = MessageParser::new(200, 200);
            p.push(&bytes[..cut]);
            assert_eq!(p.next_message().unwrap(), None, "cut at {cut}");
            assert!(
                matches!(p.finish(), Err(RfbError::Truncated { have }) if have == cut),
                "cut at {cut}"
            );
            // The rest arriving later completes the same message.
            p.push(&bytes[cut..]);
            assert!(matches!(
                p.next_message().unwrap(),
                Some(ServerMessage::Update(_))
            ));
            p.finish().unwrap();
        }
    }

    #[test]
    fn byte_by_byte_arrival_gives_the_same_messages() {
        let (bytes, kinds) = every_encoding();
        let mut p = MessageParser::new(200, 200);
        let mut got = Vec::new();
        for b in &bytes {
            p.push(std::slice::from_ref(b));
            while let Some(m) = p.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(
            got,
            vec![ServerMessage::Update(Update {
                rects: kinds,
                size: (300, 250)
            })]
        );
    }

    #[test]
    fn hostile_input_is_refused_with_a_clear_error() {
        let mut outside = update_header(1);
        rect(&mut outside, 190, 0, 20, 1, encoding::RAW);
        assert!(matches!(
            parse_all(&outside, (200, 200)),
            Err(RfbError::OutsideFramebuffer { x: 190, .. })
        ));
        let mut hextile = update_header(1);
        rect(&mut hextile, 0, 0, 1, 1, 5);
        assert!(matches!(
            parse_all(&hextile, (200, 200)),
            Err(RfbError::UnexpectedEncoding(5))
        ));
        let mut huge = update_header(1);
        rect(&mut huge, 0, 0, 1, 1, encoding::ZRLE);
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            parse_all(&huge, (200, 200)),
            Err(RfbError::TooLarge { .. })
        ));
        let mut png = update_header(1);
        rect(&mut png, 0, 0, 1, 1, encoding::TIGHT);
        png.push(0xa0);
        assert!(matches!(
            parse_all(&png, (200, 200)),
            Err(RfbError::Tight(_))
        ));
        let mut filter = update_header(1);
        rect(&mut filter, 0, 0, 1, 1, encoding::TIGHT);
        filter.extend_from_slice(&[0x40, 7]);
        assert!(matches!(
            parse_all(&filter, (200, 200)),
            Err(RfbError::Tight(_))
        ));
        let cut = [3, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            parse_all(&cut, (200, 200)),
            Err(RfbError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_all(&[9], (200, 200)),
            Err(RfbError::UnknownMessage(9))
        ));
    }

    /// A scripted server side: what it sends, and what the client wrote.
    struct Script {
        input: std::io::Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Script {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn server_greeting(types: &[u8]) -> Vec<u8> {
        let mut s = b"RFB 003.008\n".to_vec();
        s.push(types.len() as u8);
        s.extend_from_slice(types);
        s.extend_from_slice(&0u32.to_be_bytes());
        s.extend_from_slice(&1920u16.to_be_bytes());
        s.extend_from_slice(&1080u16.to_be_bytes());
        s.extend_from_slice(&[0; 16]);
        s.extend_from_slice(&4u32.to_be_bytes());
        s.extend_from_slice(b"desk");
        s
    }

    #[test]
    fn handshake_picks_none_and_asks_for_lossless_encodings() {
        let mut script = Script {
            input: std::io::Cursor::new(server_greeting(&[2, 1])),
            output: Vec::new(),
        };
        let init = handshake(&mut script, None).unwrap();
        assert_eq!(
            init,
            ServerInit {
                version: "RFB 003.008".into(),
                width: 1920,
                height: 1080,
                name: "desk".into()
            }
        );
        let mut expected = b"RFB 003.008\n".to_vec();
        expected.extend_from_slice(&[1, 1]); // security None, shared
        expected.extend_from_slice(&set_pixel_format());
        expected.extend_from_slice(&set_encodings(&CLIENT_ENCODINGS));
        expected.extend_from_slice(&update_request(false, 1920, 1080));
        assert_eq!(script.output, expected);
        // No quality-level pseudo-encoding (-32..-23): Tight stays lossless.
        assert!(CLIENT_ENCODINGS.iter().all(|e| !(-32..=-23).contains(e)));
        // A compression level is one more pseudo-encoding, last.
        let mut script = Script {
            input: std::io::Cursor::new(server_greeting(&[1])),
            output: Vec::new(),
        };
        handshake(&mut script, Some(9)).unwrap();
        let mut encodings = CLIENT_ENCODINGS.to_vec();
        encodings.push(-247);
        assert!(script.output.ends_with(
            &[
                set_encodings(&encodings),
                update_request(false, 1920, 1080).to_vec()
            ]
            .concat()
        ));
    }

    #[test]
    fn handshake_errors_are_clear() {
        let mut vnc_auth_only = Script {
            input: std::io::Cursor::new(server_greeting(&[2])),
            output: Vec::new(),
        };
        assert!(matches!(
            handshake(&mut vnc_auth_only, None),
            Err(RfbError::Security(_))
        ));
        let mut old = Script {
            input: std::io::Cursor::new(b"RFB 003.003\n".to_vec()),
            output: Vec::new(),
        };
        assert!(matches!(
            handshake(&mut old, None),
            Err(RfbError::Version(_))
        ));
        let mut cut = Script {
            input: std::io::Cursor::new(b"RFB 003.008\n\x01".to_vec()),
            output: Vec::new(),
        };
        assert!(matches!(handshake(&mut cut, None), Err(RfbError::Io(_))));
    }

    #[test]
    fn each_complete_update_is_answered_with_an_incremental_request() {
        let (first, _) = every_encoding();
        let mut input = first;
        input.extend(update_header(0));
        let mut script = Script {
            input: std::io::Cursor::new(input),
            output: Vec::new(),
        };
        let init = ServerInit {
            version: String::new(),
            width: 200,
            height: 200,
            name: String::new(),
        };
        let mut counts = Counts::default();
        serve_updates(&mut script, &init, |m| counts.add(m)).unwrap();
        assert_eq!(counts.updates, 2);
        assert_eq!(counts.rects[&RectKind::CopyRect], 2);
        // The second request follows the DesktopSize of the first update.
        let mut expected = update_request(true, 300, 250).to_vec();
        expected.extend_from_slice(&update_request(true, 300, 250));
        assert_eq!(script.output, expected);
        // A stream cut inside a message is an error, not a clean end.
        let (mut partial, _) = every_encoding();
        partial.truncate(partial.len() - 3);
        let mut script = Script {
            input: std::io::Cursor::new(partial),
            output: Vec::new(),
        };
        assert!(matches!(
            serve_updates(&mut script, &init, |_| {}),
            Err(RfbError::Truncated { .. })
        ));
    }
}
