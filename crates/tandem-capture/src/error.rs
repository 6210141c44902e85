//! The error type of capture sources and input sinks.

/// What can go wrong while capturing the desktop or injecting input.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The requested rectangle does not overlap the desktop.
    #[error(
        "rectangle {width}x{height} at {x},{y} lies outside the {desktop_width}x{desktop_height} desktop"
    )]
    OutsideDesktop {
        /// Left edge asked for.
        x: u32,
        /// Top edge asked for.
        y: u32,
        /// Width asked for.
        width: u32,
        /// Height asked for.
        height: u32,
        /// Width of the desktop.
        desktop_width: u32,
        /// Height of the desktop.
        desktop_height: u32,
    },

    /// The capture backend failed (display gone, grab refused).
    #[error("{backend} capture failed: {detail}")]
    Backend {
        /// Which backend, e.g. `x11`.
        backend: &'static str,
        /// What went wrong.
        detail: String,
    },

    /// The input backend could not inject an event.
    #[error("input injection failed: {detail}")]
    Input {
        /// What went wrong.
        detail: String,
    },

    /// The source cannot do this (e.g. a window filter on the synthetic desktop).
    #[error("this capture source does not support {what}")]
    Unsupported {
        /// What was asked.
        what: &'static str,
    },

    /// A request to the source was malformed.
    #[error("{detail}")]
    Invalid {
        /// What is wrong.
        detail: String,
    },
}
