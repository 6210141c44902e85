//! The I/O seams of a sharing session: where desktop pictures come from
//! ([`CaptureSource`]) and where an interactive attendee's input goes
//! ([`InputSink`]).
//!
//! Backends plug in behind these two traits. This crate ships the X11
//! backend ([`x11::X11Source`], [`x11::X11InputSink`]), the deterministic
//! [`SyntheticDesktop`] for tests, demos and benches, the [`RecordingSink`]
//! that records injected input, and the [`NullSink`] that drops it.
//! [`confine`] decides where an attendee's input may act (keys and buttons
//! only on what is shared), from facts a [`DesktopProbe`] supplies
//! ([`x11::X11Probe`] on X11).

pub mod confine;
mod error;
mod input;
mod synthetic;
mod windows;
pub mod x11;

use std::sync::Arc;

pub use confine::DesktopProbe;
pub use error::CaptureError;
pub use input::{NullSink, RecordingSink};
pub use synthetic::{Motion, SyntheticDesktop, SCROLL_EVERY};
pub use tandem_codec::{Frame, Rect};
pub use tandem_proto::{CursorShape, InputEvent, MouseButton};
pub use windows::{
    applications, Application, WindowEvent, WindowFilter, WindowInfo, FILTER_BACKGROUND,
    MAX_FILTER_CLASS_LEN, MAX_FILTER_ENTRIES,
};

/// The pointer as a source sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CursorState {
    /// Hot spot, desktop coordinates.
    pub x: i32,
    /// Hot spot, desktop coordinates.
    pub y: i32,
    /// Whether the pointer is on this screen.
    pub visible: bool,
    /// Its image; the id changes whenever the image does.
    pub shape: Arc<CursorShape>,
}

/// A monitor (RandR output area) of the desktop, for sharing just one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Monitor {
    /// Its name, e.g. `HDMI-1` (`screen` when RandR has no monitors).
    pub name: String,
    /// Whether it is the primary monitor.
    pub primary: bool,
    /// Its area on the desktop.
    pub rect: Rect,
}

/// One grab of the shared rectangle.
pub struct Captured {
    /// The pixels of the requested rectangle, clipped to the desktop.
    pub frame: Frame,
    /// Rectangles, in `frame` coordinates, outside which nothing changed
    /// since the previous capture of the same rectangle. `None` means
    /// unknown: compare everything (always so for a first capture or after
    /// the rectangle changed). `Some(vec![])` means nothing changed.
    pub damage: Option<Vec<Rect>>,
    /// Areas the source knows moved since the previous capture of the same
    /// rectangle (an X11 top-level window dragged), in `frame` coordinates,
    /// oldest first. Hints only: the encoder checks them against the pixels.
    pub moves: Vec<MoveHint>,
}

/// `src` of the previous capture is now at (`dst_x`, `dst_y`); both lie
/// inside the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MoveHint {
    /// Where the content was, in frame coordinates.
    pub src: Rect,
    /// Where its top-left corner is now.
    pub dst_x: u32,
    /// Where its top-left corner is now.
    pub dst_y: u32,
}

impl MoveHint {
    /// The part of a move from `from` to the top-left corner (`to_x`,
    /// `to_y`) (desktop coordinates, possibly off screen) whose source and
    /// destination both lie in `area`, in `area`'s coordinates; `None` when
    /// nothing of it stays visible or it does not move.
    pub fn within(
        area: Rect,
        from: (i64, i64, u32, u32),
        to_x: i64,
        to_y: i64,
    ) -> Option<MoveHint> {
        let (x, y, width, height) = from;
        let (dx, dy) = (to_x - x, to_y - y);
        if (dx, dy) == (0, 0) {
            return None;
        }
        let (ax0, ay0) = (i64::from(area.x), i64::from(area.y));
        let (ax1, ay1) = (ax0 + i64::from(area.width), ay0 + i64::from(area.height));
        // Source pixels p with p in area and p + d in area, inside the window.
        let x0 = x.max(ax0).max(ax0 - dx);
        let y0 = y.max(ay0).max(ay0 - dy);
        let x1 = (x + i64::from(width)).min(ax1).min(ax1 - dx);
        let y1 = (y + i64::from(height)).min(ay1).min(ay1 - dy);
        if x0 >= x1 || y0 >= y1 {
            return None;
        }
        Some(MoveHint {
            src: Rect::new(
                (x0 - ax0) as u32,
                (y0 - ay0) as u32,
                (x1 - x0) as u32,
                (y1 - y0) as u32,
            ),
            dst_x: (x0 + dx - ax0) as u32,
            dst_y: (y0 + dy - ay0) as u32,
        })
    }
}

/// Where desktop pictures come from.
pub trait CaptureSource: Send + 'static {
    /// A one-line description for logs, e.g. `synthetic 1280x720 seed 7`.
    fn describe(&self) -> String;

    /// Width and height of the whole desktop in pixels.
    fn desktop_size(&self) -> (u32, u32);

    /// Grab `rect` of the desktop (clipped to it). Called once per frame
    /// interval, unless [`poll_damage`](Self::poll_damage) says nothing changed.
    fn capture(&mut self, rect: Rect) -> Result<Captured, CaptureError>;

    /// Whether anything in `rect` may have changed since the last capture.
    /// Sources that track damage answer from it, so an idle desktop costs no
    /// grab; the default (no tracking) is always `true`.
    fn poll_damage(&mut self, _rect: Rect) -> Result<bool, CaptureError> {
        Ok(true)
    }

    /// Forget what was grabbed: the next capture reads the whole rectangle
    /// (after a resume, or to measure full grabs).
    fn invalidate(&mut self) {}

    /// Where the pointer is and what it looks like; `None` when the source
    /// has no pointer of its own.
    fn cursor(&mut self) -> Result<Option<CursorState>, CaptureError> {
        Ok(None)
    }

    /// The desktop's top-level windows, bottom to top (empty when the source
    /// has no windows to report).
    fn windows(&mut self) -> Result<Vec<WindowInfo>, CaptureError> {
        Ok(Vec::new())
    }

    /// Share only what `filter` names (`None`: share everything).
    fn set_filter(&mut self, filter: Option<WindowFilter>) -> Result<(), CaptureError> {
        match filter {
            None => Ok(()),
            Some(_) => Err(CaptureError::Unsupported {
                what: "window filters",
            }),
        }
    }

    /// Window and application changes since the last call.
    fn take_window_events(&mut self) -> Vec<WindowEvent> {
        Vec::new()
    }

    /// A file descriptor that becomes readable when the source has news
    /// (damage, pointer motion, window changes), for a capture loop that
    /// sleeps while the desktop is idle instead of polling every frame
    /// interval; `None` (the default) when the source must be polled.
    fn wake_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        None
    }

    /// Reads what the source has queued and answers whether nothing is
    /// pending in `rect`: then a loop may sleep on [`wake_fd`](Self::wake_fd)
    /// until it is readable. The default never settles.
    fn settled(&mut self, _rect: Rect) -> Result<bool, CaptureError> {
        Ok(false)
    }

    /// The desktop's monitors (the whole desktop when it has no others).
    fn monitors(&mut self) -> Result<Vec<Monitor>, CaptureError> {
        let (width, height) = self.desktop_size();
        Ok(vec![Monitor {
            name: "screen".into(),
            primary: true,
            rect: Rect::new(0, 0, width, height),
        }])
    }
}

/// Where an interactive attendee's input goes.
pub trait InputSink: Send + 'static {
    /// Inject one event into the desktop.
    fn inject(&mut self, event: &InputEvent) -> Result<(), CaptureError>;

    /// Release every key and button still pressed (the attendee lost
    /// control or left).
    fn release_all(&mut self) -> Result<(), CaptureError>;
}

impl<T: CaptureSource + ?Sized> CaptureSource for Box<T> {
    fn describe(&self) -> String {
        (**self).describe()
    }

    fn desktop_size(&self) -> (u32, u32) {
        (**self).desktop_size()
    }

    fn capture(&mut self, rect: Rect) -> Result<Captured, CaptureError> {
        (**self).capture(rect)
    }

    fn poll_damage(&mut self, rect: Rect) -> Result<bool, CaptureError> {
        (**self).poll_damage(rect)
    }

    fn invalidate(&mut self) {
        (**self).invalidate()
    }

    fn cursor(&mut self) -> Result<Option<CursorState>, CaptureError> {
        (**self).cursor()
    }

    fn windows(&mut self) -> Result<Vec<WindowInfo>, CaptureError> {
        (**self).windows()
    }

    fn set_filter(&mut self, filter: Option<WindowFilter>) -> Result<(), CaptureError> {
        (**self).set_filter(filter)
    }

    fn take_window_events(&mut self) -> Vec<WindowEvent> {
        (**self).take_window_events()
    }

    fn monitors(&mut self) -> Result<Vec<Monitor>, CaptureError> {
        (**self).monitors()
    }

    fn wake_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        (**self).wake_fd()
    }

    fn settled(&mut self, rect: Rect) -> Result<bool, CaptureError> {
        (**self).settled(rect)
    }
}

impl<T: InputSink + ?Sized> InputSink for Box<T> {
    fn inject(&mut self, event: &InputEvent) -> Result<(), CaptureError> {
        (**self).inject(event)
    }

    fn release_all(&mut self) -> Result<(), CaptureError> {
        (**self).release_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_move_inside_the_area_is_kept_whole() {
        let area = Rect::new(100, 100, 800, 600);
        let hint = MoveHint::within(area, (200, 150, 80, 40), 212, 153).unwrap();
        assert_eq!(
            hint,
            MoveHint {
                src: Rect::new(100, 50, 80, 40),
                dst_x: 112,
                dst_y: 53,
            }
        );
    }

    #[test]
    fn a_move_across_the_edge_keeps_what_stays_visible_at_both_ends() {
        let area = Rect::new(0, 0, 100, 100);
        // From partly off the left edge to partly off the bottom.
        let hint = MoveHint::within(area, (-10, 50, 40, 40), 20, 80).unwrap();
        // Source pixels x in [0, 30), y in [50, 70): their destinations
        // x + 30 in [30, 60), y + 30 in [80, 100) are inside too.
        assert_eq!(hint.src, Rect::new(0, 50, 30, 20));
        assert_eq!((hint.dst_x, hint.dst_y), (30, 80));
        assert!(hint.dst_x + hint.src.width <= area.width);
        assert!(hint.dst_y + hint.src.height <= area.height);
    }

    #[test]
    fn no_hint_without_motion_or_visible_pixels() {
        let area = Rect::new(0, 0, 100, 100);
        assert_eq!(MoveHint::within(area, (10, 10, 20, 20), 10, 10), None);
        assert_eq!(MoveHint::within(area, (200, 10, 20, 20), 250, 10), None);
        // Moved entirely out of the area.
        assert_eq!(MoveHint::within(area, (10, 10, 20, 20), 150, 10), None);
    }
}
