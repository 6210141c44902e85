//! The rules of a sharing session as a deterministic state machine.
//!
//! Nothing here does I/O, reads a clock, spawns a task or knows an actor:
//! time is passed in as a [`Time`] (a duration since an epoch the caller
//! chooses, e.g. when its process started), and every decision comes back as
//! a list of [`Effect`]s for the caller to apply (persist, emit an event, tell
//! an attendee, close a connection, inject input, check a password). The
//! same inputs at the same times always give the same effects, which is what
//! the table tests and the property test of this crate rely on (quinn-proto's
//! way: the protocol core is sans-IO, a thin async shell drives it).
//!
//! - [`SessionBook`]: sessions, invitations, attendees, control levels,
//!   pending requests, policies, input admission, idle time and the password
//!   throttle, behind one entry point [`SessionBook::handle`].
//!   Group permissions ([`GroupRules`]) are decided here too.
//! - [`PasswordThrottle`]: the slow-down of wrong passwords per address
//!   block (IPv6 /64) and per invitation.
//! - [`UpdatePicker`]: the latest-wins/catch-up choice of every graphics
//!   sender (direct attendees, relay links, relayed attendees).
//! - [`TokenBucket`]: the per-attendee message rates ([`Rate`]).
//! - [`ShapeMemory`]: which pointer images a receiver already has.
//! - [`clipboard_access`]: the clipboard channel's access rule.

mod access;
mod book;
mod picker;
mod policy;
mod rate;
mod shapes;
mod throttle;
mod time;

pub use access::clipboard_access;
pub use book::{
    Answerer, AttendeeId, AttendeeView, BookError, Effect, Event, GroupRules, Input,
    InvitationRules, JoinId, SessionBook, SessionRules, ShownLevel, Verdict, MAX_GROUPS,
    MAX_GROUP_CHANNELS,
};
pub use picker::{Pick, UpdateKind, UpdatePicker};
pub use policy::ControlPolicy;
pub use rate::{Rate, TokenBucket, CONTROL_REQUEST_RATE, INPUT_RATE, LOGGED_CHANNEL_RATE};
pub use shapes::{ShapeMemory, MAX_SHAPES_REMEMBERED};
pub use throttle::{
    throttle_key, PasswordThrottle, FAILURE_WINDOW, FIRST_FAILURE_DELAY, INVITATION_FAILURE_BUDGET,
    MAX_CONCURRENT_CHECKS, MAX_FAILURES, MAX_FAILURE_DELAY, MAX_TRACKED_ADDRESSES,
};
pub use time::Time;
