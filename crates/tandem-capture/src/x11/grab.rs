//! Reading pixels off the X server: MIT-SHM when the server shares memory
//! with us, plain `GetImage` otherwise.
//!
//! The SHM segment is created by the server (`ShmCreateSegment`, MIT-SHM
//! 1.2), which hands us a file descriptor. We read it with `pread` instead of
//! mapping it: the copy into the frame is needed anyway, and it keeps the
//! crate free of `unsafe`.

use std::fs::File;
use std::os::unix::fs::FileExt;

use tandem_codec::{Frame, Rect};
use x11rb::connection::Connection;
use x11rb::protocol::shm::ConnectionExt as _;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat, Window};
use x11rb::rust_connection::RustConnection;

use super::x11_error;
use crate::CaptureError;

/// How pixels are read.
pub(super) enum Grabber {
    /// Through a shared-memory segment of `size` bytes.
    Shm {
        seg: u32,
        file: File,
        size: u32,
        scratch: Vec<u8>,
    },
    /// Through `GetImage` replies on the socket.
    GetImage,
}

impl Grabber {
    /// A shared-memory grabber big enough for a `width`x`height` screen, or
    /// `Err(reason)` when the server cannot share memory with us.
    pub(super) fn shm(conn: &RustConnection, width: u16, height: u16) -> Result<Self, String> {
        let version = conn
            .shm_query_version()
            .map_err(|e| e.to_string())?
            .reply()
            .map_err(|e| format!("MIT-SHM is not available: {e}"))?;
        if (version.major_version, version.minor_version) < (1, 2) {
            return Err(format!(
                "MIT-SHM {}.{} lacks file-descriptor segments (1.2 needed)",
                version.major_version, version.minor_version
            ));
        }
        let size = u32::from(width) * u32::from(height) * 4;
        let seg = conn.generate_id().map_err(|e| e.to_string())?;
        let reply = conn
            .shm_create_segment(seg, size, false)
            .map_err(|e| e.to_string())?
            .reply()
            .map_err(|e| format!("the server refused a shared segment: {e}"))?;
        let file = File::from(reply.shm_fd);
        Ok(Grabber::Shm {
            seg,
            file,
            size,
            scratch: Vec::new(),
        })
    }

    /// Whether this grabber uses shared memory.
    pub(super) fn is_shm(&self) -> bool {
        matches!(self, Grabber::Shm { .. })
    }

    /// Frees the server side of a shared segment.
    pub(super) fn release(&self, conn: &RustConnection) {
        if let Grabber::Shm { seg, .. } = self {
            let _ = conn.shm_detach(*seg);
            let _ = conn.flush();
        }
    }

    /// Reads `area` (desktop coordinates) of `root` into `frame`, whose top
    /// left corner is at `origin` on the desktop.
    pub(super) fn grab(
        &mut self,
        conn: &RustConnection,
        root: Window,
        area: Rect,
        origin: (u32, u32),
        frame: &mut Frame,
    ) -> Result<(), CaptureError> {
        let (x, y, w, h) = (
            area.x as i16,
            area.y as i16,
            area.width as u16,
            area.height as u16,
        );
        let row_bytes = area.width as usize * 4;
        match self {
            Grabber::Shm {
                seg,
                file,
                size,
                scratch,
            } => {
                let needed = row_bytes * area.height as usize;
                if needed > *size as usize {
                    return Err(x11_error("grab larger than the shared segment"));
                }
                let reply = conn
                    .shm_get_image(root, x, y, w, h, !0, ImageFormat::Z_PIXMAP.into(), *seg, 0)
                    .map_err(x11_error)?
                    .reply()
                    .map_err(x11_error)?;
                if reply.size as usize != needed {
                    return Err(x11_error(format!(
                        "shm image of {} bytes for {needed} expected (not 32 bits per pixel?)",
                        reply.size
                    )));
                }
                scratch.resize(needed, 0);
                file.read_exact_at(scratch, 0).map_err(x11_error)?;
                copy_rows(scratch, area, origin, frame);
            }
            Grabber::GetImage => {
                let reply = conn
                    .get_image(ImageFormat::Z_PIXMAP, root, x, y, w, h, !0)
                    .map_err(x11_error)?
                    .reply()
                    .map_err(x11_error)?;
                if reply.data.len() != row_bytes * area.height as usize {
                    return Err(x11_error(format!(
                        "image of {} bytes for a {}x{} area (not 32 bits per pixel?)",
                        reply.data.len(),
                        area.width,
                        area.height
                    )));
                }
                copy_rows(&reply.data, area, origin, frame);
            }
        }
        Ok(())
    }
}

/// Copies packed little-endian 32-bit pixels of `area` into `frame`,
/// clearing the unused top byte (X servers leave it undefined).
fn copy_rows(data: &[u8], area: Rect, origin: (u32, u32), frame: &mut Frame) {
    let fw = frame.width() as usize;
    let x0 = (area.x - origin.0) as usize;
    let y0 = (area.y - origin.1) as usize;
    let w = area.width as usize;
    let pixels = frame.pixels_mut();
    for (row, src) in data.chunks_exact(w * 4).enumerate() {
        let start = (y0 + row) * fw + x0;
        for (dst, px) in pixels[start..start + w].iter_mut().zip(src.chunks_exact(4)) {
            *dst = u32::from_le_bytes([px[0], px[1], px[2], 0]);
        }
    }
}
