//! The X11 backend: capture of a real X display ([`X11Source`]) and input
//! injection into it ([`X11InputSink`]), on x11rb.
//!
//! - Pixels come through MIT-SHM when the server can share memory with us,
//!   else through plain `GetImage` (logged once).
//! - DAMAGE drives capture: [`CaptureSource::poll_damage`] answers from the
//!   damage events queued on the socket, so an idle display costs no grab,
//!   and only damaged rectangles are read and reported.
//! - XFIXES gives the pointer image, sent once per shape. With XInput 2
//!   raw motion events the position is read only after the pointer moved
//!   (and at least every [`POINTER_RECHECK`], for warps, which raise no
//!   raw event), and the socket is a [`CaptureSource::wake_fd`]: an idle
//!   display wakes nobody. Without XInput 2 it is read every frame interval
//!   (one small round trip).
//! - RandR size changes are followed; RandR monitors can be listed to share
//!   one of them.
//! - The top-level windows are tracked from `SubstructureNotify` events for
//!   the application/window filter and its events.

mod clipboard;
mod damage_list;
mod grab;
mod input;
mod windows;

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_codec::{Frame, Rect};
use tandem_proto::{CursorShape, MAX_CURSOR_SIDE};
use x11rb::connection::Connection;
use x11rb::protocol::damage::{self, ConnectionExt as _};
use x11rb::protocol::randr::{self, ConnectionExt as _};
use x11rb::protocol::xfixes::{self, ConnectionExt as _};
use x11rb::protocol::xinput::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{self, ConnectionExt as _, EventMask, ImageOrder, Window};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;

pub use clipboard::{ClipboardCopy, X11Clipboard};
pub use input::{X11InputSink, X11Probe};

use self::grab::Grabber;
use self::windows::{Atoms, WindowMoved, WindowTracker};
use crate::{
    CaptureError, CaptureSource, Captured, CursorState, Monitor, MoveHint, WindowEvent,
    WindowFilter, WindowInfo, FILTER_BACKGROUND,
};

/// Most window events kept between two drains (older ones are dropped).
const MAX_PENDING_WINDOW_EVENTS: usize = 1024;
/// Windows whose moves are remembered between two grabs; more moved at
/// once is rare and costs only bytes (the encoder finds no motion there).
const MAX_MOVE_HINTS: usize = 32;
/// Longest a pointer position read is trusted without a motion event:
/// warps (`XWarpPointer`) move the pointer without raising one.
pub const POINTER_RECHECK: Duration = Duration::from_millis(500);

pub(crate) fn x11_error(e: impl std::fmt::Display) -> CaptureError {
    CaptureError::Backend {
        backend: "x11",
        detail: e.to_string(),
    }
}

/// Connects to `display` (`None`: `$DISPLAY`).
fn connect(display: Option<&str>) -> Result<(RustConnection, usize), CaptureError> {
    RustConnection::connect(display).map_err(|e| CaptureError::Backend {
        backend: "x11",
        detail: format!(
            "cannot open display {}: {e}",
            display
                .map(str::to_owned)
                .or_else(|| std::env::var("DISPLAY").ok())
                .unwrap_or_else(|| "(DISPLAY unset)".into())
        ),
    })
}

/// Asks for XInput 2 raw motion events on `root` (every pointer motion,
/// whichever window is under it); `false` when the server has no XInput 2.
fn select_raw_motion(conn: &RustConnection, root: Window) -> bool {
    let version = conn
        .xinput_xi_query_version(2, 2)
        .ok()
        .and_then(|c| c.reply().ok());
    if version.is_none_or(|v| v.major_version < 2) {
        tracing::info!("no XInput 2: the pointer is read every frame interval");
        return false;
    }
    let mask = xinput::EventMask {
        deviceid: xinput::Device::ALL_MASTER.into(),
        mask: vec![xinput::XIEventMask::RAW_MOTION],
    };
    match conn.xinput_xi_select_events(root, &[mask]) {
        Ok(cookie) => cookie.check().is_ok(),
        Err(_) => false,
    }
}

/// Which grab path to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrabMode {
    /// MIT-SHM when available, else `GetImage`.
    Auto,
    /// Always `GetImage` (for measurements and remote servers).
    GetImage,
}

/// Captures one screen of an X display.
pub struct X11Source {
    conn: RustConnection,
    display: String,
    root: Window,
    width: u16,
    height: u16,
    grabber: Grabber,
    atoms: Atoms,
    /// Damage reported since the last grab, desktop coordinates.
    pending: Vec<Rect>,
    /// The next grab must read everything (first grab, resize, filter change).
    full: bool,
    /// The last grabbed rectangle and its pixels (shared with the frame
    /// handed out, see [`Frame`]'s copy on write).
    kept: Option<(Rect, Frame)>,
    /// The frame handed out before `kept`, and the areas (frame
    /// coordinates) where `kept` differs from it. Once nobody else holds it
    /// (the encoder has moved on), the next grab is written into it after
    /// those areas are brought up to date: a typed glyph then costs a copy
    /// of a few damaged rectangles, not of the whole screen.
    spare: Option<(Frame, Vec<Rect>)>,
    cursor_shape: Option<Arc<CursorShape>>,
    cursor_dirty: bool,
    /// XInput 2 raw motion events are selected: the pointer is read only
    /// after it moved.
    motion_events: bool,
    /// A raw motion event arrived since the pointer was last read.
    pointer_dirty: bool,
    /// The last pointer read (root x, root y, on this screen) and when.
    pointer: Option<((i32, i32, bool), Instant)>,
    tracker: WindowTracker,
    windows_dirty: bool,
    window_events: Vec<WindowEvent>,
    /// Windows moved since the last grab, one entry per window (its
    /// geometry at the last grab, its newest corner).
    moved: Vec<WindowMoved>,
    filter: Option<WindowFilter>,
    /// Filter mask of the kept rectangle (`true`: shared).
    mask: Option<Vec<bool>>,
    grabs: u64,
}

impl X11Source {
    /// Opens `display` (`None`: `$DISPLAY`) and sets up damage, cursor,
    /// RandR and window tracking.
    pub fn connect(display: Option<&str>, mode: GrabMode) -> Result<Self, CaptureError> {
        let (conn, screen_num) = connect(display)?;
        let setup = conn.setup();
        if setup.image_byte_order != ImageOrder::LSB_FIRST {
            return Err(x11_error(
                "the X server's image byte order is MSB first; only LSB first is supported",
            ));
        }
        let screen = setup
            .roots
            .get(screen_num)
            .ok_or_else(|| x11_error(format!("no screen {screen_num}")))?;
        let bpp = setup
            .pixmap_formats
            .iter()
            .find(|f| f.depth == screen.root_depth)
            .map(|f| f.bits_per_pixel);
        if screen.root_depth != 24 && screen.root_depth != 32 || bpp != Some(32) {
            return Err(x11_error(format!(
                "the root window has depth {} at {bpp:?} bits per pixel; only 24/32-bit true colour is supported",
                screen.root_depth
            )));
        }
        let (root, width, height) = (screen.root, screen.width_in_pixels, screen.height_in_pixels);
        let display_name = display
            .map(str::to_owned)
            .or_else(|| std::env::var("DISPLAY").ok())
            .unwrap_or_default();

        // DAMAGE and XFIXES must be version-negotiated before use.
        conn.xfixes_query_version(5, 0)
            .map_err(x11_error)?
            .reply()
            .map_err(|e| x11_error(format!("XFIXES is required: {e}")))?;
        conn.damage_query_version(1, 1)
            .map_err(x11_error)?
            .reply()
            .map_err(|e| x11_error(format!("DAMAGE is required: {e}")))?;
        let damage_id = conn.generate_id().map_err(x11_error)?;
        conn.damage_create(damage_id, root, damage::ReportLevel::RAW_RECTANGLES)
            .map_err(x11_error)?;
        conn.xfixes_select_cursor_input(root, xfixes::CursorNotifyMask::DISPLAY_CURSOR)
            .map_err(x11_error)?;
        conn.change_window_attributes(
            root,
            &xproto::ChangeWindowAttributesAux::new()
                .event_mask(EventMask::SUBSTRUCTURE_NOTIFY | EventMask::PROPERTY_CHANGE),
        )
        .map_err(x11_error)?;
        // RandR is optional: without it the screen size is fixed.
        let randr = conn
            .randr_query_version(1, 5)
            .ok()
            .and_then(|c| c.reply().ok());
        if randr.is_some() {
            conn.randr_select_input(root, randr::NotifyMask::SCREEN_CHANGE)
                .map_err(x11_error)?;
        }
        let motion_events = select_raw_motion(&conn, root);
        conn.flush().map_err(x11_error)?;

        let grabber = match mode {
            GrabMode::GetImage => Grabber::GetImage,
            GrabMode::Auto => match Grabber::shm(&conn, width, height) {
                Ok(g) => g,
                Err(reason) => {
                    tracing::warn!(display = %display_name, %reason, "MIT-SHM unavailable; capturing with GetImage (slower)");
                    Grabber::GetImage
                }
            },
        };
        let atoms = Atoms::intern(&conn).map_err(x11_error)?;
        let mut source = Self {
            conn,
            display: display_name,
            root,
            width,
            height,
            grabber,
            atoms,
            pending: Vec::new(),
            full: true,
            kept: None,
            spare: None,
            cursor_shape: None,
            cursor_dirty: true,
            motion_events,
            pointer_dirty: true,
            pointer: None,
            tracker: WindowTracker::default(),
            windows_dirty: true,
            moved: Vec::new(),
            window_events: Vec::new(),
            filter: None,
            mask: None,
            grabs: 0,
        };
        source.refresh_windows()?;
        // The windows already open are not news.
        source.window_events.clear();
        tracing::info!(display = %source.display, width, height, shm = source.grabber.is_shm(), randr = randr.is_some(), motion_events, "x11 capture ready");
        Ok(source)
    }

    /// Whether grabs go through MIT-SHM.
    pub fn uses_shm(&self) -> bool {
        self.grabber.is_shm()
    }

    /// Grabs done so far (each reads one or more rectangles off the server).
    pub fn grabs(&self) -> u64 {
        self.grabs
    }

    /// Reads every queued event, recording damage, cursor, size and window
    /// changes.
    fn pump(&mut self) -> Result<(), CaptureError> {
        while let Some(event) = self.conn.poll_for_event().map_err(x11_error)? {
            match event {
                Event::DamageNotify(e) => {
                    let a = e.area;
                    // Areas are relative to the root: clip the negative part.
                    let (x, y) = (i32::from(a.x).max(0), i32::from(a.y).max(0));
                    let w = (i32::from(a.x) + i32::from(a.width) - x).max(0);
                    let h = (i32::from(a.y) + i32::from(a.height) - y).max(0);
                    if w > 0 && h > 0 {
                        self.add_damage(Rect::new(x as u32, y as u32, w as u32, h as u32));
                    }
                }
                Event::XfixesCursorNotify(_) => self.cursor_dirty = true,
                Event::XinputRawMotion(_) => self.pointer_dirty = true,
                Event::RandrScreenChangeNotify(e) => self.resized(e.width, e.height)?,
                Event::CreateNotify(_)
                | Event::DestroyNotify(_)
                | Event::MapNotify(_)
                | Event::UnmapNotify(_)
                | Event::ConfigureNotify(_)
                | Event::ReparentNotify(_)
                | Event::CirculateNotify(_)
                | Event::GravityNotify(_) => self.windows_dirty = true,
                Event::PropertyNotify(e) if e.window != self.root => self.windows_dirty = true,
                _ => {}
            }
        }
        Ok(())
    }

    /// Where the pointer is: read from the server when it moved (or when
    /// motion events are unavailable, or the last read is older than
    /// [`POINTER_RECHECK`]), else the last read.
    fn pointer_position(&mut self) -> Result<(i32, i32, bool), CaptureError> {
        if let Some((position, at)) = self.pointer {
            if self.motion_events && !self.pointer_dirty && at.elapsed() < POINTER_RECHECK {
                return Ok(position);
            }
        }
        // Cleared before the read: a motion during it marks the next read.
        self.pointer_dirty = false;
        let reply = self
            .conn
            .query_pointer(self.root)
            .map_err(x11_error)?
            .reply()
            .map_err(x11_error)?;
        let position = (
            i32::from(reply.root_x),
            i32::from(reply.root_y),
            reply.same_screen,
        );
        self.pointer = Some((position, Instant::now()));
        Ok(position)
    }

    fn add_damage(&mut self, rect: Rect) {
        damage_list::add(&mut self.pending, rect);
    }

    fn resized(&mut self, width: u16, height: u16) -> Result<(), CaptureError> {
        // The notify may repeat the current size (rotation, refresh rate).
        let geometry = self
            .conn
            .get_geometry(self.root)
            .map_err(x11_error)?
            .reply()
            .map_err(x11_error)?;
        let (width, height) = if geometry.width > 0 {
            (geometry.width, geometry.height)
        } else {
            (width, height)
        };
        if (width, height) == (self.width, self.height) {
            return Ok(());
        }
        tracing::info!(display = %self.display, width, height, "screen size changed");
        self.width = width;
        self.height = height;
        if self.grabber.is_shm() {
            self.grabber.release(&self.conn);
            self.grabber = Grabber::shm(&self.conn, width, height).unwrap_or_else(|reason| {
                tracing::warn!(%reason, "MIT-SHM lost after the resize; capturing with GetImage");
                Grabber::GetImage
            });
        }
        self.full = true;
        self.mask = None;
        Ok(())
    }

    fn refresh_windows(&mut self) -> Result<(), CaptureError> {
        if !std::mem::take(&mut self.windows_dirty) {
            return Ok(());
        }
        let mut events = Vec::new();
        let mut moves = Vec::new();
        let moved = self
            .tracker
            .refresh(&self.conn, self.root, &self.atoms, &mut events, &mut moves)
            .map_err(x11_error)?;
        for m in moves {
            // Moved again before a grab: keep where it was at the last grab.
            if let Some(kept) = self.moved.iter_mut().find(|k| k.id == m.id) {
                kept.to = m.to;
            } else if self.moved.len() < MAX_MOVE_HINTS {
                self.moved.push(m);
            }
        }
        self.window_events.extend(events);
        if self.window_events.len() > MAX_PENDING_WINDOW_EVENTS {
            let excess = self.window_events.len() - MAX_PENDING_WINDOW_EVENTS;
            self.window_events.drain(..excess);
        }
        if moved && self.filter.is_some() {
            // The shared area changed shape: rebuild the mask, regrab all.
            self.mask = None;
            self.full = true;
        }
        Ok(())
    }

    /// The window moves since the last grab, as hints within `rect`.
    fn take_moves(&mut self, rect: Rect, full: bool) -> Vec<MoveHint> {
        // Moves only mean something against the previous grab of this rectangle.
        if full {
            self.moved.clear();
            Vec::new()
        } else {
            self.moved
                .drain(..)
                .filter_map(|m| MoveHint::within(rect, m.from, m.to.0, m.to.1))
                .collect()
        }
    }

    fn desktop(&self) -> Rect {
        Rect::new(0, 0, u32::from(self.width), u32::from(self.height))
    }

    /// Paints hidden pixels of `area` (desktop coordinates) in `frame`.
    fn apply_mask(&self, frame: &mut Frame, origin: Rect, area: Rect) {
        let Some(mask) = &self.mask else { return };
        let fw = frame.width() as usize;
        let pixels = frame.pixels_mut();
        for y in area.y..area.y + area.height {
            let row = (y - origin.y) as usize * fw;
            for x in area.x..area.x + area.width {
                let i = row + (x - origin.x) as usize;
                if !mask[i] {
                    pixels[i] = FILTER_BACKGROUND;
                }
            }
        }
    }
}

impl Drop for X11Source {
    fn drop(&mut self) {
        self.grabber.release(&self.conn);
    }
}

impl CaptureSource for X11Source {
    fn describe(&self) -> String {
        format!(
            "x11 {} {}x{} ({})",
            self.display,
            self.width,
            self.height,
            if self.grabber.is_shm() {
                "MIT-SHM"
            } else {
                "GetImage"
            }
        )
    }

    fn desktop_size(&self) -> (u32, u32) {
        (u32::from(self.width), u32::from(self.height))
    }

    fn poll_damage(&mut self, rect: Rect) -> Result<bool, CaptureError> {
        self.pump()?;
        self.refresh_windows()?;
        if self.full || self.kept.as_ref().is_none_or(|(r, _)| *r != rect) {
            return Ok(true);
        }
        Ok(self.pending.iter().any(|d| d.intersect(&rect).is_some()))
    }

    fn capture(&mut self, rect: Rect) -> Result<Captured, CaptureError> {
        self.pump()?;
        self.refresh_windows()?;
        let rect = rect
            .intersect(&self.desktop())
            .ok_or(CaptureError::OutsideDesktop {
                x: rect.x,
                y: rect.y,
                width: rect.width,
                height: rect.height,
                desktop_width: u32::from(self.width),
                desktop_height: u32::from(self.height),
            })?;
        let same_rect = self.kept.as_ref().is_some_and(|(r, _)| *r == rect);
        let full = std::mem::take(&mut self.full) || !same_rect;
        let pending = std::mem::take(&mut self.pending);
        if let Some(filter) = &self.filter {
            if self.mask.is_none() || full {
                self.mask = Some(self.tracker.mask(filter, rect));
            }
        }
        let areas: Vec<Rect> = if full {
            vec![rect]
        } else {
            pending.iter().filter_map(|d| d.intersect(&rect)).collect()
        };
        let mut frame = match self.kept.take() {
            Some((r, kept)) if r == rect && !full => {
                if areas.is_empty() {
                    let frame = kept.clone();
                    self.kept = Some((rect, kept));
                    return Ok(Captured {
                        frame,
                        damage: Some(Vec::new()),
                        moves: self.take_moves(rect, false),
                    });
                }
                let frame = match self.spare.take() {
                    Some((mut old, stale))
                        if !old.is_shared()
                            && (old.width(), old.height()) == (kept.width(), kept.height()) =>
                    {
                        for area in &stale {
                            old.copy_area_from(&kept, *area);
                        }
                        old
                    }
                    // Still held elsewhere: the first write below copies it.
                    _ => kept.clone(),
                };
                let stale = areas
                    .iter()
                    .map(|a| Rect::new(a.x - rect.x, a.y - rect.y, a.width, a.height))
                    .collect();
                self.spare = Some((kept, stale));
                frame
            }
            _ => {
                self.spare = None;
                Frame::new(rect.width, rect.height)
            }
        };
        if !areas.is_empty() {
            self.grabs += 1;
        }
        for area in &areas {
            let grabbed =
                self.grabber
                    .grab(&self.conn, self.root, *area, (rect.x, rect.y), &mut frame);
            if let Err(error) = grabbed {
                // Keep nothing half-read: the next grab starts over.
                self.full = true;
                return Err(error);
            }
            self.apply_mask(&mut frame, rect, *area);
        }
        let damage = (!full).then(|| {
            areas
                .iter()
                .map(|a| Rect::new(a.x - rect.x, a.y - rect.y, a.width, a.height))
                .collect()
        });
        let moves = self.take_moves(rect, full);
        self.kept = Some((rect, frame.clone()));
        Ok(Captured {
            frame,
            damage,
            moves,
        })
    }

    fn invalidate(&mut self) {
        self.full = true;
    }

    fn cursor(&mut self) -> Result<Option<CursorState>, CaptureError> {
        self.pump()?;
        let (x, y, visible) = self.pointer_position()?;
        if self.cursor_dirty || self.cursor_shape.is_none() {
            let image = self
                .conn
                .xfixes_get_cursor_image()
                .map_err(x11_error)?
                .reply()
                .map_err(x11_error)?;
            self.cursor_dirty = false;
            self.cursor_shape = Some(Arc::new(cursor_shape(&image)));
        }
        Ok(self.cursor_shape.clone().map(|shape| CursorState {
            x,
            y,
            visible,
            shape,
        }))
    }

    fn windows(&mut self) -> Result<Vec<WindowInfo>, CaptureError> {
        self.pump()?;
        self.refresh_windows()?;
        Ok(self.tracker.windows().to_vec())
    }

    fn set_filter(&mut self, filter: Option<WindowFilter>) -> Result<(), CaptureError> {
        if let Some(f) = &filter {
            f.validate()
                .map_err(|detail| CaptureError::Invalid { detail })?;
        }
        self.filter = filter;
        self.mask = None;
        self.full = true;
        Ok(())
    }

    fn take_window_events(&mut self) -> Vec<WindowEvent> {
        std::mem::take(&mut self.window_events)
    }

    fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        // Without motion events the pointer must be polled.
        self.motion_events.then(|| self.conn.stream().as_fd())
    }

    fn settled(&mut self, rect: Rect) -> Result<bool, CaptureError> {
        // Everything read off the socket is now in our own state, so the
        // socket turning readable is the next news.
        self.pump()?;
        let stale_pointer = self
            .pointer
            .is_none_or(|(_, at)| at.elapsed() >= POINTER_RECHECK);
        Ok(!(self.full
            || self.windows_dirty
            || self.cursor_dirty
            || self.pointer_dirty
            || stale_pointer
            || self.kept.as_ref().is_none_or(|(r, _)| *r != rect)
            || self.pending.iter().any(|d| d.intersect(&rect).is_some())))
    }

    fn monitors(&mut self) -> Result<Vec<Monitor>, CaptureError> {
        let reply = match self.conn.randr_get_monitors(self.root, true) {
            Ok(cookie) => match cookie.reply() {
                Ok(r) => r,
                // No RandR 1.5: the whole screen is the one monitor.
                Err(_) => {
                    return Ok(vec![Monitor {
                        name: "screen".into(),
                        primary: true,
                        rect: self.desktop(),
                    }])
                }
            },
            Err(e) => return Err(x11_error(e)),
        };
        let mut out = Vec::new();
        for m in reply.monitors {
            let name = self
                .conn
                .get_atom_name(m.name)
                .map_err(x11_error)?
                .reply()
                .map(|r| String::from_utf8_lossy(&r.name).into_owned())
                .unwrap_or_default();
            let (x, y) = (i32::from(m.x).max(0) as u32, i32::from(m.y).max(0) as u32);
            if let Some(rect) =
                Rect::new(x, y, u32::from(m.width), u32::from(m.height)).intersect(&self.desktop())
            {
                out.push(Monitor {
                    name,
                    primary: m.primary,
                    rect,
                });
            }
        }
        Ok(out)
    }
}

/// The pointer image as sent to attendees, cropped around its hot spot to
/// [`MAX_CURSOR_SIDE`].
fn cursor_shape(image: &xfixes::GetCursorImageReply) -> CursorShape {
    let (w, h) = (image.width.max(1), image.height.max(1));
    let max = MAX_CURSOR_SIDE;
    let crop = |size: u16, hot: u16| -> (u16, u16) {
        if size <= max {
            (0, size)
        } else {
            let start = hot.saturating_sub(max / 2).min(size - max);
            (start, max)
        }
    };
    let (x0, cw) = crop(w, image.xhot);
    let (y0, ch) = crop(h, image.yhot);
    let mut bgra = Vec::with_capacity(usize::from(cw) * usize::from(ch) * 4);
    for y in y0..y0 + ch {
        for x in x0..x0 + cw {
            let i = usize::from(y) * usize::from(image.width) + usize::from(x);
            let argb = image.cursor_image.get(i).copied().unwrap_or(0);
            bgra.extend_from_slice(&argb.to_le_bytes());
        }
    }
    CursorShape {
        id: image.cursor_serial,
        width: cw,
        height: ch,
        hot_x: image.xhot.saturating_sub(x0).min(cw - 1),
        hot_y: image.yhot.saturating_sub(y0).min(ch - 1),
        bgra,
    }
}
