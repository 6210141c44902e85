//! Tandem's persistent registry: the node's identity, sessions, invitations,
//! attendees and an event log, kept in a [sled] store.
//!
//! This crate is the only code in the workspace that touches sled. Its rules:
//!
//! - Trees: `meta` (schema version, node id, counters), `identity`,
//!   `sessions`, `session_filters`, `invitations`, `attendees`, `events`.
//! - Every value is one record format byte followed by postcard bytes; an
//!   unknown format byte is a [`RegistryError::UnsupportedRecord`], never a panic.
//! - Keys: sessions and invitations by id string; attendees and events by
//!   big-endian `u64`, so ranges come out in order.
//! - Writes documented as flushed call `Db::flush` before returning `Ok`, so
//!   an acknowledged write survives a crash (sled alone syncs every 500 ms).
//! - A store written by a newer schema is refused without writing to it; an
//!   older one is migrated in one transaction when opened.
//! - Time is passed in by the caller as unix milliseconds; the registry never
//!   reads the clock.

mod codec;
mod error;
mod legacy;
mod records;
mod registry;

pub use error::RegistryError;
pub use records::{
    AttendeeFilter, AttendeeRecord, AttendeeRetention, EventRecord, InvitationRecord, NewEvent,
    RegistryConfig, RegistryStats, Retention, SessionFilterRecord, SessionRecord, SessionState,
    StoredIdentity,
};
pub use registry::Registry;

/// Schema version this binary writes and the newest it can open. 2: control
/// levels, policies and disconnect reasons are typed (enums); a schema-1
/// store (strings) is migrated once when opened.
pub const SCHEMA_VERSION: u32 = 2;
