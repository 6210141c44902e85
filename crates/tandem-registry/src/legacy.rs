//! Schema 1, whose session and attendee records held control levels,
//! policies and disconnect reasons as strings, and its one-time migration
//! to the typed records of schema 2.
//!
//! The migration rewrites every session and attendee record and the schema
//! version in one sled transaction across the three trees, so a crash
//! leaves either the old store or the new one, never a mix. A string no
//! version of the node wrote is a [`RegistryError::Corrupt`] naming the
//! record, and nothing is rewritten.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use sled::Tree;
use tandem_proto::{ControlLevel, DisconnectReason};
use tandem_session::ControlPolicy;

use crate::codec::{corrupt, decode, encode};
use crate::{AttendeeRecord, RegistryError, SessionRecord, SessionState};

/// A session record of schema 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SessionRecordV1 {
    pub id: String,
    pub name: String,
    pub source: String,
    pub state: SessionState,
    pub created_at_ms: i64,
    pub closed_at_ms: Option<i64>,
    pub shared_rect: Option<[u32; 4]>,
    pub frame_interval_ms: u32,
    pub default_control_level: String,
    pub control_policy: String,
}

/// An attendee record of schema 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AttendeeRecordV1 {
    pub id: u64,
    pub session_id: String,
    pub invitation_id: String,
    pub user: String,
    pub computer: String,
    pub via_node: Option<String>,
    pub control_level: String,
    pub connected_at_ms: i64,
    pub disconnected_at_ms: Option<i64>,
    pub disconnect_reason: Option<String>,
    pub bytes_sent: u64,
}

impl SessionRecordV1 {
    fn typed(self, tree: &'static str, key: &[u8]) -> Result<SessionRecord, RegistryError> {
        let bad = |what: &str, value: &str| corrupt(tree, key, &format!("{what} {value:?}"));
        Ok(SessionRecord {
            default_control_level: self
                .default_control_level
                .parse::<ControlLevel>()
                .map_err(|_| bad("unknown control level", &self.default_control_level))?,
            control_policy: self
                .control_policy
                .parse::<ControlPolicy>()
                .map_err(|_| bad("unknown control policy", &self.control_policy))?,
            id: self.id,
            name: self.name,
            source: self.source,
            state: self.state,
            created_at_ms: self.created_at_ms,
            closed_at_ms: self.closed_at_ms,
            shared_rect: self.shared_rect,
            frame_interval_ms: self.frame_interval_ms,
        })
    }
}

impl AttendeeRecordV1 {
    fn typed(self, tree: &'static str, key: &[u8]) -> Result<AttendeeRecord, RegistryError> {
        let bad = |what: &str, value: &str| corrupt(tree, key, &format!("{what} {value:?}"));
        let disconnect_reason = match &self.disconnect_reason {
            None => None,
            Some(name) => Some(
                DisconnectReason::from_name(name)
                    .ok_or_else(|| bad("unknown disconnect reason", name))?,
            ),
        };
        Ok(AttendeeRecord {
            control_level: self
                .control_level
                .parse::<ControlLevel>()
                .map_err(|_| bad("unknown control level", &self.control_level))?,
            disconnect_reason,
            id: self.id,
            session_id: self.session_id,
            invitation_id: self.invitation_id,
            user: self.user,
            computer: self.computer,
            via_node: self.via_node,
            connected_at_ms: self.connected_at_ms,
            disconnected_at_ms: self.disconnected_at_ms,
            bytes_sent: self.bytes_sent,
        })
    }
}

/// Rewrites a schema-1 store's session and attendee records as typed ones
/// and sets the schema version to `to`, atomically; returns how many
/// records were rewritten.
pub(crate) fn migrate_from_v1(
    meta: &Tree,
    sessions: &Tree,
    attendees: &Tree,
    schema_key: &[u8],
    to: u32,
) -> Result<usize, RegistryError> {
    // Decode everything first: a bad record fails the migration before
    // anything is written.
    let mut rewritten: Vec<(bool, sled::IVec, Vec<u8>)> = Vec::new();
    for item in sessions.iter() {
        let (k, v) = item?;
        let old: SessionRecordV1 = decode(crate::registry::SESSIONS, &k, &v)?;
        let new = old.typed(crate::registry::SESSIONS, &k)?;
        rewritten.push((true, k, encode("session", &new)?));
    }
    for item in attendees.iter() {
        let (k, v) = item?;
        let old: AttendeeRecordV1 = decode(crate::registry::ATTENDEES, &k, &v)?;
        let new = old.typed(crate::registry::ATTENDEES, &k)?;
        rewritten.push((false, k, encode("attendee", &new)?));
    }
    let count = rewritten.len();
    (meta, sessions, attendees)
        .transaction(|(meta, sessions, attendees)| {
            for (is_session, key, value) in &rewritten {
                let tree = if *is_session { sessions } else { attendees };
                tree.insert(key.clone(), value.clone())?;
            }
            meta.insert(schema_key, &to.to_be_bytes())?;
            Ok::<(), ConflictableTransactionError<()>>(())
        })
        .map_err(|e| match e {
            TransactionError::Storage(e) => RegistryError::from(e),
            TransactionError::Abort(()) => {
                corrupt(crate::registry::META, schema_key, "migration aborted")
            }
        })?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::u64_key;
    use crate::registry::{ATTENDEES, KEY_SCHEMA, META, SESSIONS};
    use crate::{AttendeeFilter, Registry, RegistryConfig, SCHEMA_VERSION};

    fn session_v1(level: &str, policy: &str) -> SessionRecordV1 {
        SessionRecordV1 {
            id: "s1".into(),
            name: "desk".into(),
            source: "synthetic".into(),
            state: SessionState::Paused,
            created_at_ms: 5,
            closed_at_ms: None,
            shared_rect: Some([1, 2, 3, 4]),
            frame_interval_ms: 33,
            default_control_level: level.into(),
            control_policy: policy.into(),
        }
    }

    fn attendee_v1(id: u64, reason: Option<&str>) -> AttendeeRecordV1 {
        AttendeeRecordV1 {
            id,
            session_id: "s1".into(),
            invitation_id: "i1".into(),
            user: "ann".into(),
            computer: "10.0.0.9:5000".into(),
            via_node: None,
            control_level: "interactive".into(),
            connected_at_ms: 10,
            disconnected_at_ms: reason.map(|_| 20),
            disconnect_reason: reason.map(str::to_owned),
            bytes_sent: 99,
        }
    }

    /// Writes a schema-1 store as the node before typed records did.
    fn write_v1_store(
        path: &std::path::Path,
        session: &SessionRecordV1,
        attendees: &[AttendeeRecordV1],
    ) {
        let db = sled::open(path).unwrap();
        let meta = db.open_tree(META).unwrap();
        meta.insert(KEY_SCHEMA, &1u32.to_be_bytes()).unwrap();
        meta.insert(b"node_id", b"0123456789abcdef").unwrap();
        db.open_tree(SESSIONS)
            .unwrap()
            .insert(session.id.as_bytes(), encode("session", session).unwrap())
            .unwrap();
        let tree = db.open_tree(ATTENDEES).unwrap();
        for a in attendees {
            tree.insert(u64_key(a.id), encode("attendee", a).unwrap())
                .unwrap();
        }
        db.flush().unwrap();
    }

    fn schema_of(path: &std::path::Path) -> u32 {
        let db = sled::open(path).unwrap();
        let v = db
            .open_tree(META)
            .unwrap()
            .get(KEY_SCHEMA)
            .unwrap()
            .unwrap();
        u32::from_be_bytes(v.as_ref().try_into().unwrap())
    }

    #[test]
    fn a_schema_1_store_opens_with_its_strings_typed_and_is_migrated_once() {
        let dir = tempfile::tempdir().unwrap();
        write_v1_store(
            dir.path(),
            &session_v1("none", "grant-view"),
            &[attendee_v1(1, Some("by sharer")), attendee_v1(2, None)],
        );
        for _ in 0..2 {
            let reg = Registry::open(dir.path(), RegistryConfig::default()).unwrap();
            let s = reg.session("s1").unwrap().unwrap();
            assert_eq!(s.default_control_level, ControlLevel::None);
            assert_eq!(s.control_policy, ControlPolicy::GrantView);
            assert_eq!(
                (s.state, s.shared_rect),
                (SessionState::Paused, Some([1, 2, 3, 4]))
            );
            let all = reg.attendees(AttendeeFilter::All).unwrap();
            assert_eq!(all.len(), 2);
            assert_eq!(all[0].disconnect_reason, Some(DisconnectReason::BySharer));
            assert_eq!(all[0].control_level, ControlLevel::Interactive);
            assert_eq!((all[1].disconnect_reason, all[1].bytes_sent), (None, 99));
            drop(reg);
            assert_eq!(schema_of(dir.path()), SCHEMA_VERSION);
        }
    }

    #[test]
    fn a_string_no_node_wrote_fails_the_migration_and_leaves_the_store_as_it_was() {
        for (session, attendee) in [
            (session_v1("sudo", "ask"), attendee_v1(1, None)),
            (session_v1("view", "maybe"), attendee_v1(1, None)),
            (
                session_v1("view", "ask"),
                attendee_v1(1, Some("gone fishing")),
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            write_v1_store(dir.path(), &session, &[attendee]);
            let err = Registry::open(dir.path(), RegistryConfig::default()).unwrap_err();
            assert!(matches!(err, RegistryError::Corrupt { .. }), "{err:?}");
            assert_eq!(schema_of(dir.path()), 1, "nothing was rewritten");
        }
    }
}
