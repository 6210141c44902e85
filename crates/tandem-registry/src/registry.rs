//! The [`Registry`] handle: opening with the schema check, counters that
//! survive restarts, typed reads and writes of each tree, and event retention.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{de::DeserializeOwned, Serialize};
use sled::{Batch, Db, Tree};
use tracing::{debug, info, warn};

use crate::codec::{corrupt, decode, encode, read_u64, u64_key};
use crate::{
    AttendeeFilter, AttendeeRecord, AttendeeRetention, EventRecord, InvitationRecord, NewEvent,
    RegistryConfig, RegistryError, RegistryStats, Retention, SessionFilterRecord, SessionRecord,
    StoredIdentity, SCHEMA_VERSION,
};

pub(crate) const META: &str = "meta";
const IDENTITY: &str = "identity";
pub(crate) const SESSIONS: &str = "sessions";
const SESSION_FILTERS: &str = "session_filters";
const INVITATIONS: &str = "invitations";
pub(crate) const ATTENDEES: &str = "attendees";
const EVENTS: &str = "events";

/// Meta key of the schema version: a big-endian `u32`, never versioned itself
/// so that every binary can read it.
pub(crate) const KEY_SCHEMA: &[u8] = b"schema_version";
/// Meta key of the node id: UTF-8 text.
const KEY_NODE_ID: &[u8] = b"node_id";
/// Meta key of the last attendee id handed out: big-endian `u64`.
const KEY_LAST_ATTENDEE: &[u8] = b"last_attendee_id";
/// Meta key of the event sequence reservation: every sequence number below it
/// may have been handed out. Big-endian `u64`.
const KEY_EVENT_RESERVED: &[u8] = b"event_seq_reserved";
/// Key of the node's identity in the `identity` tree.
const KEY_IDENTITY: &[u8] = b"current";

/// Event sequence numbers reserved (and flushed) at a time. A restart skips
/// the unused rest of the block, so sequence numbers never repeat even when
/// unflushed events were lost.
const EVENT_SEQ_BLOCK: u64 = 1024;
/// Longest id string accepted as a key.
const MAX_ID_LEN: usize = 256;

/// Handle to the registry; clones share the same store.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    node_id: String,
    retention: Retention,
    db: Db,
    meta: Tree,
    identity: Tree,
    sessions: Tree,
    session_filters: Tree,
    invitations: Tree,
    attendees: Tree,
    events: Tree,
    /// Attendee ids; the lock serializes allocation.
    attendee_ids: Mutex<AttendeeIds>,
    /// Attendee records in the tree (for retention).
    attendee_count: Mutex<u64>,
    attendee_retention: AttendeeRetention,
    /// Event log state; the lock serializes appends and retention.
    event_log: Mutex<EventLog>,
}

/// Attendee ids are reserved in blocks of [`ATTENDEE_ID_BLOCK`] (the
/// reservation flushed in `meta`), so a join costs no flush of its own for
/// its id; after a restart ids resume past the reservation.
struct AttendeeIds {
    last: u64,
    reserved: u64,
}

/// Attendee ids reserved per flush of the counter.
const ATTENDEE_ID_BLOCK: u64 = 1024;

struct EventLog {
    /// Sequence number of the next event.
    next_seq: u64,
    /// Reservation recorded (and flushed) in `meta`.
    reserved: u64,
    /// Events currently in the tree.
    count: u64,
    /// Newest event kept or appended.
    last_seq: Option<u64>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("path", &self.inner.path)
            .field("node_id", &self.inner.node_id)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Opens the registry at `path`, creating it if the directory holds none.
    ///
    /// Trees: `meta`, `identity`, `sessions`, `session_filters`,
    /// `invitations`, `attendees`, `events`. A fresh store gets [`SCHEMA_VERSION`] and a random 16-hex-digit
    /// node id, created once. A store written by a newer schema is refused with
    /// [`RegistryError::SchemaTooNew`] before anything is written to it.
    pub fn open(path: &Path, config: RegistryConfig) -> Result<Registry, RegistryError> {
        let db = open_db(path, config.cache_bytes).map_err(|source| RegistryError::Open {
            path: path.to_owned(),
            source,
        })?;

        // Read-only inspection first: nothing is written before the schema is known.
        let names = db.tree_names();
        let has_meta = names.iter().any(|n| n.as_ref() == META.as_bytes());
        let found = if has_meta {
            let meta = db.open_tree(META)?;
            match meta.get(KEY_SCHEMA)? {
                Some(v) => Some(read_schema(&v)?),
                None => None,
            }
        } else {
            None
        };
        match found {
            Some(found) if found > SCHEMA_VERSION => {
                warn!(path = %path.display(), found, supported = SCHEMA_VERSION, "registry schema is newer than this binary");
                return Err(RegistryError::SchemaTooNew {
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            Some(0) => return Err(corrupt(META, KEY_SCHEMA, "schema version 0 does not exist")),
            // Older schemas are migrated below, once their trees are open.
            Some(_) => {}
            None => {
                // Fresh store, or an initialization interrupted before its flush:
                // then only sled's default tree and `meta` can exist.
                let default_name = db.name();
                let foreign = names
                    .iter()
                    .any(|n| *n != default_name && n.as_ref() != META.as_bytes());
                if foreign || !db.is_empty() {
                    return Err(RegistryError::NotARegistry {
                        path: path.to_owned(),
                    });
                }
            }
        }

        let meta = db.open_tree(META)?;
        let node_id = match meta.get(KEY_NODE_ID)? {
            Some(v) => std::str::from_utf8(&v)
                .ok()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| corrupt(META, KEY_NODE_ID, "node id is not non-empty UTF-8"))?
                .to_owned(),
            None => {
                let id = generate_node_id(path);
                if found.is_some() {
                    warn!(node_id = %id, "registry had no node id; generated a new one");
                }
                meta.insert(KEY_NODE_ID, id.as_bytes())?;
                id
            }
        };
        if found.is_none() {
            meta.insert(KEY_SCHEMA, &SCHEMA_VERSION.to_be_bytes())?;
            // The schema must be durable before any other tree exists.
            db.flush()?;
        }

        let identity = db.open_tree(IDENTITY)?;
        let sessions = db.open_tree(SESSIONS)?;
        let session_filters = db.open_tree(SESSION_FILTERS)?;
        let invitations = db.open_tree(INVITATIONS)?;
        let attendees = db.open_tree(ATTENDEES)?;
        let events = db.open_tree(EVENTS)?;
        if found == Some(1) {
            let rewritten = crate::legacy::migrate_from_v1(
                &meta,
                &sessions,
                &attendees,
                KEY_SCHEMA,
                SCHEMA_VERSION,
            )?;
            db.flush()?;
            info!(path = %path.display(), rewritten, from = 1, to = SCHEMA_VERSION, "registry schema migrated");
        }

        let attendee_count = attendees.len() as u64;
        // Attendee ids: the persisted reservation, but never below a stored attendee.
        let mut last_attendee_id = read_meta_u64(&meta, KEY_LAST_ATTENDEE)?.unwrap_or(0);
        if let Some((k, _)) = attendees.last()? {
            last_attendee_id = last_attendee_id.max(read_u64(ATTENDEES, &k, &k)?);
        }

        // Event sequence: resume at the reservation, past every stored event.
        let reserved = read_meta_u64(&meta, KEY_EVENT_RESERVED)?.unwrap_or(0);
        let last_seq = match events.last()? {
            Some((k, _)) => Some(read_u64(EVENTS, &k, &k)?),
            None => None,
        };
        let after_last = match last_seq {
            Some(s) => s.checked_add(1).ok_or(RegistryError::CounterExhausted {
                counter: "event_seq",
            })?,
            None => 1,
        };
        let next_seq = reserved.max(after_last).max(1);
        let count = events.len() as u64;

        info!(
            path = %path.display(),
            node_id = %node_id,
            schema = SCHEMA_VERSION,
            created = found.is_none(),
            recovered = db.was_recovered(),
            events = count,
            next_event_seq = next_seq,
            last_attendee_id,
            attendees = attendee_count,
            "registry opened"
        );

        Ok(Registry {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                node_id,
                retention: config.event_retention,
                db,
                meta,
                identity,
                sessions,
                session_filters,
                invitations,
                attendees,
                events,
                attendee_ids: Mutex::new(AttendeeIds {
                    last: last_attendee_id,
                    reserved: last_attendee_id,
                }),
                attendee_count: Mutex::new(attendee_count),
                attendee_retention: config.attendee_retention,
                event_log: Mutex::new(EventLog {
                    next_seq,
                    reserved,
                    count,
                    last_seq,
                }),
            }),
        })
    }

    /// The node id generated when the store was created.
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// Directory of the store.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The stored TLS identity, if any.
    pub fn identity(&self) -> Result<Option<StoredIdentity>, RegistryError> {
        get(&self.inner.identity, IDENTITY, KEY_IDENTITY)
    }

    /// Stores the TLS identity, replacing any previous one. Flushed.
    pub fn put_identity(&self, id: &StoredIdentity) -> Result<(), RegistryError> {
        if id.cert_der.is_empty() || id.key_der.is_empty() {
            return Err(invalid("identity", "certificate and key must not be empty"));
        }
        self.put_flushed(&self.inner.identity, IDENTITY, KEY_IDENTITY, id)?;
        debug!(cert_len = id.cert_der.len(), "identity stored");
        Ok(())
    }

    /// Inserts or replaces a session. Flushed.
    pub fn put_session(&self, s: &SessionRecord) -> Result<(), RegistryError> {
        check_id("session", "id", &s.id)?;
        self.put_flushed(&self.inner.sessions, "session", s.id.as_bytes(), s)?;
        debug!(session_id = %s.id, state = ?s.state, "session stored");
        Ok(())
    }

    /// The session with this id.
    pub fn session(&self, id: &str) -> Result<Option<SessionRecord>, RegistryError> {
        get(&self.inner.sessions, SESSIONS, id.as_bytes())
    }

    /// Every session, ordered by id.
    pub fn sessions(&self) -> Result<Vec<SessionRecord>, RegistryError> {
        all(&self.inner.sessions, SESSIONS, |_: &SessionRecord| true)
    }

    /// Sets (`Some`) or clears (`None`) the window filter of a session. Flushed.
    pub fn put_session_filter(
        &self,
        id: &str,
        filter: Option<&SessionFilterRecord>,
    ) -> Result<(), RegistryError> {
        check_id("session", "id", id)?;
        match filter {
            Some(f) => self.put_flushed(
                &self.inner.session_filters,
                "session filter",
                id.as_bytes(),
                f,
            )?,
            None => {
                self.inner.session_filters.remove(id.as_bytes())?;
                self.inner.db.flush()?;
            }
        }
        debug!(session_id = %id, set = filter.is_some(), "session filter stored");
        Ok(())
    }

    /// The window filter last set for a session, if any.
    pub fn session_filter(&self, id: &str) -> Result<Option<SessionFilterRecord>, RegistryError> {
        get(&self.inner.session_filters, SESSION_FILTERS, id.as_bytes())
    }

    /// Inserts or replaces an invitation. Flushed.
    pub fn put_invitation(&self, i: &InvitationRecord) -> Result<(), RegistryError> {
        check_id("invitation", "id", &i.id)?;
        self.put_flushed(&self.inner.invitations, "invitation", i.id.as_bytes(), i)?;
        debug!(invitation_id = %i.id, session_id = %i.session_id, revoked = i.revoked, "invitation stored");
        Ok(())
    }

    /// The invitation with this id.
    pub fn invitation(&self, id: &str) -> Result<Option<InvitationRecord>, RegistryError> {
        get(&self.inner.invitations, INVITATIONS, id.as_bytes())
    }

    /// Invitations ordered by id: all of them, or those of one session.
    pub fn invitations(
        &self,
        session: Option<&str>,
    ) -> Result<Vec<InvitationRecord>, RegistryError> {
        all(
            &self.inner.invitations,
            INVITATIONS,
            |i: &InvitationRecord| session.is_none_or(|s| i.session_id == s),
        )
    }

    /// Inserts or replaces an attendee. Flushed while the record is live
    /// (an admission, a level change); a finished one (the disconnect) is
    /// not flushed of its own: sled writes it within half a second, and if
    /// the node crashes before, the record is found live at the next start
    /// and closed as `node_restarted`. So one join costs one flush.
    ///
    /// A finished record applies the attendee retention (at most
    /// `max_records`, the oldest finished ones dropped first, and none
    /// disconnected longer than `max_age_ms` before this one).
    pub fn put_attendee(&self, a: &AttendeeRecord) -> Result<(), RegistryError> {
        if a.id == 0 {
            return Err(invalid("attendee", "id 0 is never handed out"));
        }
        let key = u64_key(a.id);
        let bytes = encode("attendee", a)?;
        let mut count = lock(&self.inner.attendee_count);
        if self.inner.attendees.insert(key, bytes)?.is_none() {
            *count += 1;
        }
        if a.is_live() {
            self.inner.db.flush()?;
        } else if let Some(at_ms) = a.disconnected_at_ms {
            self.prune_attendees(&mut count, at_ms)?;
        }
        debug!(attendee_id = a.id, session_id = %a.session_id, live = a.is_live(), "attendee stored");
        Ok(())
    }

    /// Drops the finished attendee records the retention no longer keeps,
    /// oldest first; stops at the first finished record it keeps, so a
    /// call costs as many reads as records it drops (plus live ones
    /// skipped). Not flushed: retention need not survive a crash.
    fn prune_attendees(&self, count: &mut u64, now_ms: i64) -> Result<usize, RegistryError> {
        let r = self.inner.attendee_retention;
        let cutoff = r.max_age_ms.map(|age| now_ms.saturating_sub(age));
        let mut batch = Batch::default();
        let mut dropped = 0u64;
        for item in self.inner.attendees.iter() {
            let (k, v) = item?;
            let a = decode_attendee(&k, &v)?;
            let Some(gone_at) = a.disconnected_at_ms else {
                continue;
            };
            let over = count.saturating_sub(dropped) > r.max_records;
            let expired = cutoff.is_some_and(|c| gone_at < c);
            if !over && !expired {
                break;
            }
            batch.remove(k);
            dropped += 1;
        }
        if dropped > 0 {
            self.inner.attendees.apply_batch(batch)?;
            *count = count.saturating_sub(dropped);
            debug!(dropped, kept = *count, "attendee history pruned");
        }
        Ok(dropped as usize)
    }

    /// Applies the attendee retention at `now_ms` (node start).
    pub fn prune_attendee_history(&self, now_ms: i64) -> Result<usize, RegistryError> {
        let mut count = lock(&self.inner.attendee_count);
        self.prune_attendees(&mut count, now_ms)
    }

    /// The attendee with this id.
    pub fn attendee(&self, id: u64) -> Result<Option<AttendeeRecord>, RegistryError> {
        let key = u64_key(id);
        match self.inner.attendees.get(key)? {
            Some(v) => decode_attendee(&key, &v).map(Some),
            None => Ok(None),
        }
    }

    /// Attendees ordered by id.
    pub fn attendees(&self, filter: AttendeeFilter) -> Result<Vec<AttendeeRecord>, RegistryError> {
        let mut out = Vec::new();
        for item in self.inner.attendees.iter() {
            let (k, v) = item?;
            let a = decode_attendee(&k, &v)?;
            if filter == AttendeeFilter::All || a.is_live() {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Marks every attendee still recorded as live as disconnected with
    /// `reason` at `at_ms`; returns how many. Flushed. Called at node start
    /// ("node restarted").
    pub fn close_live_attendees(
        &self,
        reason: tandem_proto::DisconnectReason,
        at_ms: i64,
    ) -> Result<usize, RegistryError> {
        let mut batch = Batch::default();
        let mut closed = 0usize;
        for item in self.inner.attendees.iter() {
            let (k, v) = item?;
            let mut a = decode_attendee(&k, &v)?;
            if a.is_live() {
                a.disconnected_at_ms = Some(at_ms);
                a.disconnect_reason = Some(reason);
                batch.insert(k, encode("attendee", &a)?);
                closed += 1;
            }
        }
        if closed > 0 {
            self.inner.attendees.apply_batch(batch)?;
            self.inner.db.flush()?;
            info!(
                closed,
                reason = reason.as_str(),
                "closed attendees left live by a previous run"
            );
        }
        Ok(closed)
    }

    /// The next attendee id: starts at 1, increases across restarts and is
    /// never reused. The reservation of its block of ids is flushed before
    /// the id is returned (ids may jump after a restart).
    pub fn next_attendee_id(&self) -> Result<u64, RegistryError> {
        let mut ids = lock(&self.inner.attendee_ids);
        let exhausted = RegistryError::CounterExhausted {
            counter: "attendee_id",
        };
        let id = ids.last.checked_add(1).ok_or(exhausted)?;
        if id > ids.reserved {
            // One flush per block of ids, not per join.
            let reserved = id.saturating_add(ATTENDEE_ID_BLOCK - 1);
            self.inner
                .meta
                .insert(KEY_LAST_ATTENDEE, &u64_key(reserved))?;
            self.inner.db.flush()?;
            ids.reserved = reserved;
        }
        ids.last = id;
        Ok(id)
    }

    /// Appends an event and returns its sequence number, which increases
    /// across restarts and is never reused (it may jump after a restart).
    ///
    /// Applies retention: at most `max_events` are kept, and events older than
    /// `max_age_ms` before this event's own `at_ms` are dropped. Flushed only
    /// when `durable` is true.
    pub fn append_event(&self, e: &NewEvent, durable: bool) -> Result<u64, RegistryError> {
        let value = encode("event", e)?;
        let inner = &self.inner;
        let mut log = lock(&inner.event_log);
        if log.next_seq >= log.reserved {
            let reserved = log.next_seq.checked_add(EVENT_SEQ_BLOCK).ok_or(
                RegistryError::CounterExhausted {
                    counter: "event_seq",
                },
            )?;
            inner.meta.insert(KEY_EVENT_RESERVED, &u64_key(reserved))?;
            inner.db.flush()?;
            log.reserved = reserved;
        }
        let seq = log.next_seq;
        inner.events.insert(u64_key(seq), value)?;
        log.next_seq = seq + 1;
        log.count += 1;
        log.last_seq = Some(seq);
        let removed = self.apply_retention(&mut log, seq, e.at_ms)?;
        drop(log);
        if durable {
            inner.db.flush()?;
        }
        debug!(seq, kind = %e.kind, durable, removed, "event appended");
        Ok(seq)
    }

    /// Drops events beyond the retention limits; returns how many.
    fn apply_retention(
        &self,
        log: &mut EventLog,
        newest: u64,
        at_ms: i64,
    ) -> Result<u64, RegistryError> {
        let events = &self.inner.events;
        let Retention {
            max_events,
            max_age_ms,
        } = self.inner.retention;
        let mut removed = 0;
        while log.count > max_events {
            if events.pop_min()?.is_none() {
                log.count = 0;
                break;
            }
            log.count -= 1;
            removed += 1;
        }
        if let Some(max_age) = max_age_ms {
            let cutoff = at_ms.saturating_sub(max_age.max(0));
            let newest = u64_key(newest);
            while let Some((k, v)) = events.first()? {
                if k.as_ref() == newest {
                    break;
                }
                let old: NewEvent = match decode(EVENTS, &k, &v) {
                    Ok(old) => old,
                    Err(error) => {
                        warn!(%error, "undecodable event stops age retention until it is dropped by count");
                        break;
                    }
                };
                if old.at_ms >= cutoff {
                    break;
                }
                events.remove(&k)?;
                log.count = log.count.saturating_sub(1);
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Up to `limit` events with a sequence number above `after_seq`, oldest first.
    pub fn events_since(
        &self,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, RegistryError> {
        let Some(start) = after_seq.checked_add(1) else {
            return Ok(Vec::new());
        };
        self.inner
            .events
            .range(u64_key(start)..)
            .take(limit)
            .map(|item| {
                let (k, v) = item?;
                decode_event(&k, &v)
            })
            .collect()
    }

    /// The newest `limit` events, oldest first.
    pub fn recent_events(&self, limit: usize) -> Result<Vec<EventRecord>, RegistryError> {
        let mut out = self
            .inner
            .events
            .iter()
            .rev()
            .take(limit)
            .map(|item| {
                let (k, v) = item?;
                decode_event(&k, &v)
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.reverse();
        Ok(out)
    }

    /// Makes every write so far durable.
    pub fn flush(&self) -> Result<(), RegistryError> {
        self.inner.db.flush()?;
        Ok(())
    }

    /// Counts per tree and the size on disk. Walks the trees (not the event
    /// log, whose count is kept in memory); cheap for registries of thousands
    /// of records.
    pub fn stats(&self) -> RegistryStats {
        let (events, last_event_seq) = {
            let log = lock(&self.inner.event_log);
            (log.count, log.last_seq)
        };
        RegistryStats {
            sessions: self.inner.sessions.len(),
            invitations: self.inner.invitations.len(),
            attendees: self.inner.attendees.len(),
            events,
            last_event_seq,
            size_on_disk_bytes: self.inner.db.size_on_disk().ok(),
        }
    }

    /// Encodes, inserts and flushes.
    fn put_flushed<T: Serialize>(
        &self,
        tree: &Tree,
        what: &'static str,
        key: &[u8],
        value: &T,
    ) -> Result<(), RegistryError> {
        let bytes = encode(what, value)?;
        tree.insert(key, bytes)?;
        self.inner.db.flush()?;
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded state is plain counters kept consistent before any `?`.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn get<T: DeserializeOwned>(
    tree: &Tree,
    name: &'static str,
    key: &[u8],
) -> Result<Option<T>, RegistryError> {
    match tree.get(key)? {
        Some(v) => decode(name, key, &v).map(Some),
        None => Ok(None),
    }
}

fn all<T: DeserializeOwned>(
    tree: &Tree,
    name: &'static str,
    keep: impl Fn(&T) -> bool,
) -> Result<Vec<T>, RegistryError> {
    let mut out = Vec::new();
    for item in tree.iter() {
        let (k, v) = item?;
        let value: T = decode(name, &k, &v)?;
        if keep(&value) {
            out.push(value);
        }
    }
    Ok(out)
}

fn decode_attendee(key: &[u8], value: &[u8]) -> Result<AttendeeRecord, RegistryError> {
    let id = read_u64(ATTENDEES, key, key)?;
    let a: AttendeeRecord = decode(ATTENDEES, key, value)?;
    if a.id != id {
        return Err(corrupt(
            ATTENDEES,
            key,
            &format!("record holds id {}", a.id),
        ));
    }
    Ok(a)
}

fn decode_event(key: &[u8], value: &[u8]) -> Result<EventRecord, RegistryError> {
    let seq = read_u64(EVENTS, key, key)?;
    let e: NewEvent = decode(EVENTS, key, value)?;
    Ok(EventRecord::from_new(seq, e))
}

fn read_schema(v: &[u8]) -> Result<u32, RegistryError> {
    let arr: [u8; 4] = v.try_into().map_err(|_| {
        corrupt(
            META,
            KEY_SCHEMA,
            &format!("expected 4 bytes, found {}", v.len()),
        )
    })?;
    Ok(u32::from_be_bytes(arr))
}

fn read_meta_u64(meta: &Tree, key: &[u8]) -> Result<Option<u64>, RegistryError> {
    match meta.get(key)? {
        Some(v) => read_u64(META, key, &v).map(Some),
        None => Ok(None),
    }
}

fn check_id(what: &'static str, field: &str, id: &str) -> Result<(), RegistryError> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(invalid(
            what,
            &format!("{field} must be 1 to {MAX_ID_LEN} bytes, not {}", id.len()),
        ));
    }
    Ok(())
}

fn invalid(what: &'static str, detail: &str) -> RegistryError {
    RegistryError::InvalidRecord {
        what,
        detail: detail.to_owned(),
    }
}

/// 64 random bits as 16 hex digits. std's `RandomState` is seeded from the
/// operating system's random source, so no clock and no extra dependency.
fn generate_node_id(path: &Path) -> String {
    let mut h = RandomState::new().build_hasher();
    std::process::id().hash(&mut h);
    path.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Opens the sled database, waiting up to [`LOCK_WAIT`] for its file lock:
/// a database dropped a moment ago (in this process, or by a node that just
/// exited) keeps the lock until sled's flusher thread has finished.
fn open_db(path: &Path, cache_bytes: u64) -> Result<sled::Db, sled::Error> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .open()
        {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// Longest wait for another holder of the database's file lock to let go.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);
