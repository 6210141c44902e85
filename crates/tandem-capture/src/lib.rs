//! The I/O seams of a sharing session: where desktop pictures come from
//! ([`CaptureSource`]) and where an interactive attendee's input goes
//! ([`InputSink`]).
//!
//! Backends plug in behind these two traits. This crate ships the X11
//! backend ([`x11::X11Source`], [`x11::X11InputSink`]), the deterministic
//! [`SyntheticDesktop`] for tests, demos and benches, the [`RecordingSink`]
//! that records injected input, and the [`NullSink`] that drops it.

mod error;
mod input;
mod synthetic;
mod windows;
pub mod x11;

use std::sync::Arc;

pub use error::CaptureError;
pub use input::{NullSink, RecordingSink};
pub use synthetic::{SyntheticDesktop, SCROLL_EVERY};
pub use tandem_codec::{Frame, Rect};
pub use tandem_proto::{CursorShape, InputEvent, MouseButton};
pub use windows::{
    WindowEvent, WindowFilter, WindowInfo, FILTER_BACKGROUND, MAX_FILTER_CLASS_LEN,
    MAX_FILTER_ENTRIES,
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
}

impl<T: InputSink + ?Sized> InputSink for Box<T> {
    fn inject(&mut self, event: &InputEvent) -> Result<(), CaptureError> {
        (**self).inject(event)
    }

    fn release_all(&mut self) -> Result<(), CaptureError> {
        (**self).release_all()
    }
}
