//! The attendee side: connect to a node with a connection string, say hello,
//! decode every graphics update, follow control messages, send input.
//!
//! Two front ends share the connection code ([`connection`]):
//! - [`run`] (`tandem view --headless`): views until a frame count, a
//!   deadline or the node's goodbye, optionally typing text once
//!   interactive; the last frame can be written as PNG. It never reconnects.
//! - [`window::run_window`] (`tandem view`): a window (winit + softbuffer, X11
//!   and Wayland) fed by the [`live`] client task, which decodes off the UI
//!   thread, hands frames over latest-wins and reconnects (next address of
//!   the connection string, then backoff).
//!
//! Either can listen instead of dialing ([`reverse`], `--listen`): the node
//! dials the viewer, and the join is the same.

pub mod channels;
pub mod clipboard;
mod connection;
pub mod geometry;
mod headless;
pub mod keys;
pub mod latency;
pub mod live;
pub mod render;
pub mod reverse;
mod snapshot;
pub mod state;
pub mod window;

use std::net::SocketAddr;
use std::time::Duration;

use tandem_codec::Frame;
use tandem_proto::{
    ConnectionString, ControlLevel, CursorPosition, CursorShape, DisconnectReason, InputEvent,
    RejectReason, Welcome,
};
use thiserror::Error;

pub use channels::{ChannelIncoming, ChannelLink};
pub use headless::{run, run_listening, run_with_channel, run_with_limits};
pub use keys::keysym_of;
pub use latency::LatencyStats;
pub use snapshot::{read_png, write_png};
pub use state::{printable, ViewerCore, ViewerLimits, DEFAULT_MAX_FRAME_PIXELS};

/// Graphics updates the node may have in flight to this viewer at once.
///
/// Each update is a stream of its own, and quinn raises the peer's stream
/// credit (a MAX_STREAMS frame, in a packet the node must acknowledge)
/// once an eighth of this limit has been used: with 8 that was every
/// second update, half the packets a typed glyph costs beyond its own.
/// With 32 it is every fifth, while a slow reader still pushes back on the
/// node (which then folds what it could not send into a catch-up) after
/// about a second of updates.
pub const VIEWER_MAX_OPEN_UPDATES: u32 = 32;

/// What the viewer should do.
#[derive(Clone, Debug)]
pub struct ViewerOptions {
    /// Where and what to join.
    pub ticket: ConnectionString,
    /// Remote name shown to the sharer.
    pub name: String,
    /// The invitation's password.
    pub password: String,
    /// Stop after this many graphics updates.
    pub frames: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Ask for this control level after joining.
    pub request_control: Option<ControlLevel>,
    /// Type this text once interactive.
    pub type_text: Option<String>,
    /// Diagnostics: press these keysyms once interactive (after the text)
    /// and never release them, so the sharer sees them held.
    pub hold_keys: Vec<u32>,
    /// Diagnostics: after this many updates, stop reading for this long.
    pub stall: Option<(u64, Duration)>,
    /// Diagnostics: send these input events right after joining, whatever
    /// the control level (the node drops input from non-interactive attendees).
    pub send_input: Vec<InputEvent>,
    /// Leave (saying `Bye`) once this becomes `true`.
    pub stop: Option<tokio::sync::watch::Receiver<bool>>,
    /// Ask the node to stamp updates with their capture time and measure
    /// capture-to-decoded latency ([`ViewerOutcome::latency`]). Off by
    /// default: a node that predates stamps ends the connection on the ask.
    pub latency: bool,
}

/// Something worth one line to the user.
#[derive(Clone, Debug)]
pub enum ViewerEvent {
    /// Joined.
    Connected {
        /// Node address used.
        addr: SocketAddr,
        /// The node's answer.
        welcome: Welcome,
    },
    /// A notice from the node (level change, pause, ...), as one line.
    Notice(String),
    /// The pointer moved, changed shape or was shown or hidden.
    Cursor {
        /// Hot spot, in frame coordinates.
        x: i32,
        /// Hot spot, in frame coordinates.
        y: i32,
        /// Whether it is shown.
        visible: bool,
        /// Id of its shape (see [`ViewerOutcome::cursor_shapes`]).
        shape: u32,
    },
    /// A graphics update was applied.
    Update {
        /// Its sequence number.
        seq: u64,
        /// The state it applied to (0: a key frame).
        base_seq: u64,
        /// Size of the frame it produced.
        width: u32,
        /// Size of the frame it produced.
        height: u32,
        /// Whether it was a catch-up (self-contained, folding several updates).
        catch_up: bool,
    },
}

/// How the viewing ended, and what it saw.
#[derive(Debug, Default)]
pub struct ViewerOutcome {
    /// The last decoded frame.
    pub frame: Option<Frame>,
    /// Graphics updates applied.
    pub updates: u64,
    /// Of which key frames.
    pub key_frames: u64,
    /// Of which catch-ups (partial, self-contained).
    pub catch_ups: u64,
    /// Sequence number of the last update.
    pub last_seq: u64,
    /// Set when the node ended the connection.
    pub disconnected: Option<(DisconnectReason, String)>,
    /// The newest pointer position received, if any.
    pub cursor: Option<CursorPosition>,
    /// Pointer positions received (datagrams applied in order).
    pub cursor_moves: u64,
    /// Every pointer image received, by id.
    pub cursor_shapes: std::collections::BTreeMap<u32, CursorShape>,
    /// Capture-to-decoded latency of stamped updates (empty unless asked for).
    pub latency: LatencyStats,
}

/// Why viewing failed.
#[derive(Debug, Error)]
pub enum ViewerError {
    /// The node refused the join.
    #[error("{message}")]
    Rejected {
        /// Why.
        reason: RejectReason,
        /// The node's line.
        message: String,
    },
    /// The certificate does not match the connection string.
    #[error("the node's certificate fingerprint {found} does not match the connection string's {expected}: the ticket is for another node, or someone is in between")]
    FingerprintMismatch {
        /// From the ticket.
        expected: String,
        /// Presented.
        found: String,
    },
    /// Listen mode: the listener could not be bound, or no node dialed in.
    #[error("listen mode: {0}")]
    Listen(String),
    /// No address in the connection string answered.
    #[error("cannot reach the node: {0}")]
    Unreachable(String),
    /// The node broke the protocol or sent undecodable graphics.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The node announced a picture larger than this viewer accepts.
    #[error("the node shares a {width}x{height} picture, over this viewer's limit of {max_pixels} pixels (raise it with --max-frame-pixels if this machine has the memory)")]
    FrameTooLarge {
        /// Announced width.
        width: u32,
        /// Announced height.
        height: u32,
        /// The limit ([`ViewerLimits::max_frame_pixels`]).
        max_pixels: u64,
    },
    /// The connection failed after joining.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// The window could not be opened or drawn (no display, ...).
    #[error("window: {0}")]
    Window(String),
    /// The attendee's own clipboard could not be used.
    #[error("clipboard: {0}")]
    Clipboard(String),
    /// Writing the snapshot failed.
    #[error("cannot write {path}: {detail}")]
    Snapshot {
        /// File.
        path: String,
        /// Why.
        detail: String,
    },
}
