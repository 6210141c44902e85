//! The I/O seams of a sharing session: where desktop pictures come from
//! ([`CaptureSource`]) and where an interactive attendee's input goes
//! ([`InputSink`]).
//!
//! Backends plug in behind these two traits. This crate ships the
//! deterministic [`SyntheticDesktop`] for tests, demos and benches, the
//! [`RecordingSink`] that records injected input, and the [`NullSink`]
//! that drops it. The X11 backend is to come.

mod error;
mod input;
mod synthetic;

pub use error::CaptureError;
pub use input::{NullSink, RecordingSink};
pub use synthetic::{SyntheticDesktop, SCROLL_EVERY};
pub use tandem_codec::{Frame, Rect};
pub use tandem_proto::{InputEvent, MouseButton};

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
    /// interval.
    fn capture(&mut self, rect: Rect) -> Result<Captured, CaptureError>;
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
}

impl<T: InputSink + ?Sized> InputSink for Box<T> {
    fn inject(&mut self, event: &InputEvent) -> Result<(), CaptureError> {
        (**self).inject(event)
    }

    fn release_all(&mut self) -> Result<(), CaptureError> {
        (**self).release_all()
    }
}
