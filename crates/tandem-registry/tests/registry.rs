//! Behaviour of the registry through its public API: round trips, reopening,
//! counters across restarts, retention, the restart clean-up and the schema guard.

use std::collections::BTreeMap;
use std::path::Path;

use tandem_registry::{
    AttendeeFilter, AttendeeRecord, InvitationRecord, NewEvent, Registry, RegistryConfig,
    RegistryError, Retention, SessionRecord, SessionState, StoredIdentity, SCHEMA_VERSION,
};

fn open(dir: &Path) -> Registry {
    Registry::open(dir, RegistryConfig::default()).expect("open registry")
}

fn session(id: &str) -> SessionRecord {
    SessionRecord {
        id: id.into(),
        name: format!("session {id}"),
        source: "synthetic".into(),
        state: SessionState::Open,
        created_at_ms: 1_700_000_000_000,
        closed_at_ms: None,
        shared_rect: Some([0, 0, 1280, 720]),
        frame_interval_ms: 50,
        default_control_level: tandem_proto::ControlLevel::View,
        control_policy: tandem_session::ControlPolicy::Ask,
    }
}

fn invitation(id: &str, session_id: &str) -> InvitationRecord {
    InvitationRecord {
        id: id.into(),
        session_id: session_id.into(),
        auth_string: format!("tandem://host:4433/{id}"),
        group: "team".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        attendee_limit: 4,
        revoked: false,
        created_at_ms: 1_700_000_000_500,
    }
}

fn attendee(id: u64, session_id: &str) -> AttendeeRecord {
    AttendeeRecord {
        id,
        session_id: session_id.into(),
        invitation_id: "inv-1".into(),
        user: "ada".into(),
        computer: "analytical".into(),
        via_node: Some("relay-7".into()),
        control_level: tandem_proto::ControlLevel::View,
        connected_at_ms: 1_700_000_001_000,
        disconnected_at_ms: None,
        disconnect_reason: None,
        bytes_sent: 12_345,
    }
}

fn event(at_ms: i64, kind: &str) -> NewEvent {
    NewEvent {
        at_ms,
        session_id: Some("s1".into()),
        attendee_id: Some(3),
        kind: kind.into(),
        detail: r#"{"why":"test"}"#.into(),
    }
}

#[test]
fn every_record_type_round_trips_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let identity = StoredIdentity {
        cert_der: vec![0x30, 0x82, 1, 2, 3],
        key_der: vec![0x30, 0x81, 9, 8],
    };
    let mut closed = session("s2");
    closed.state = SessionState::Closed;
    closed.closed_at_ms = Some(1_700_000_009_000);
    closed.shared_rect = None;
    let mut revoked = invitation("inv-2", "s2");
    revoked.revoked = true;

    let (node_id, a1, a2, seq) = {
        let reg = open(dir.path());
        assert_eq!(reg.node_id().len(), 16);
        assert!(reg.node_id().chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(reg.identity().unwrap(), None);
        reg.put_identity(&identity).unwrap();
        reg.put_session(&session("s1")).unwrap();
        reg.put_session(&closed).unwrap();
        reg.put_invitation(&invitation("inv-1", "s1")).unwrap();
        reg.put_invitation(&revoked).unwrap();
        let a1 = reg.next_attendee_id().unwrap();
        let a2 = reg.next_attendee_id().unwrap();
        assert!(a2 > a1 && a1 > 0);
        reg.put_attendee(&attendee(a1, "s1")).unwrap();
        let mut gone = attendee(a2, "s2");
        gone.disconnected_at_ms = Some(1_700_000_002_000);
        gone.disconnect_reason = Some(tandem_proto::DisconnectReason::ByAttendee);
        reg.put_attendee(&gone).unwrap();
        let seq = reg
            .append_event(&event(1_700_000_003_000, "attendee.connected"), false)
            .unwrap();
        (reg.node_id().to_owned(), a1, a2, seq)
    };

    let reg = open(dir.path());
    assert_eq!(reg.node_id(), node_id);
    assert_eq!(reg.identity().unwrap(), Some(identity));
    assert_eq!(reg.session("s1").unwrap(), Some(session("s1")));
    assert_eq!(reg.session("s2").unwrap(), Some(closed.clone()));
    assert_eq!(reg.session("nope").unwrap(), None);
    assert_eq!(reg.sessions().unwrap(), vec![session("s1"), closed]);
    assert_eq!(
        reg.invitation("inv-1").unwrap(),
        Some(invitation("inv-1", "s1"))
    );
    assert_eq!(reg.invitations(None).unwrap().len(), 2);
    assert_eq!(reg.invitations(Some("s2")).unwrap(), vec![revoked]);
    assert_eq!(reg.invitations(Some("s3")).unwrap(), vec![]);
    assert_eq!(reg.attendee(a1).unwrap(), Some(attendee(a1, "s1")));
    assert_eq!(reg.attendee(9_999).unwrap(), None);
    assert_eq!(reg.attendees(AttendeeFilter::All).unwrap().len(), 2);
    let live = reg.attendees(AttendeeFilter::Live).unwrap();
    assert_eq!(live.iter().map(|a| a.id).collect::<Vec<_>>(), vec![a1]);
    assert!(!reg.attendee(a2).unwrap().unwrap().is_live());
    let events = reg.events_since(0, 10).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].seq, seq);
    assert_eq!(events[0].kind, "attendee.connected");
    assert_eq!(events[0].detail, r#"{"why":"test"}"#);
    assert_eq!(events[0].attendee_id, Some(3));

    let stats = reg.stats();
    assert_eq!(
        (
            stats.sessions,
            stats.invitations,
            stats.attendees,
            stats.events
        ),
        (2, 2, 2, 1)
    );
    assert_eq!(stats.last_event_seq, Some(seq));
}

#[test]
fn attendee_ids_and_event_seqs_keep_increasing_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut last_id = 0;
    let mut last_seq = 0;
    for round in 0..3 {
        let reg = open(dir.path());
        for i in 0..5 {
            let id = reg.next_attendee_id().unwrap();
            assert!(id > last_id, "round {round}: id {id} after {last_id}");
            // Within one run ids are consecutive; a reopen may skip the rest
            // of the reserved block.
            if i > 0 {
                assert_eq!(id, last_id + 1, "round {round}");
            }
            last_id = id;
            let seq = reg.append_event(&event(i, "tick"), i == 4).unwrap();
            assert!(seq > last_seq, "round {round}: seq {seq} after {last_seq}");
            last_seq = seq;
        }
    }
    let reg = open(dir.path());
    let seqs: Vec<u64> = reg
        .events_since(0, 100)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs.len(), 15);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn events_since_and_recent_events_page_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let reg = open(dir.path());
    let seqs: Vec<u64> = (0..10)
        .map(|i| reg.append_event(&event(i, "e"), false).unwrap())
        .collect();
    let page = reg.events_since(seqs[2], 3).unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), &seqs[3..6]);
    assert_eq!(reg.events_since(seqs[9], 3).unwrap(), vec![]);
    assert_eq!(reg.events_since(u64::MAX, 3).unwrap(), vec![]);
    let recent = reg.recent_events(4).unwrap();
    assert_eq!(recent.iter().map(|e| e.seq).collect::<Vec<_>>(), &seqs[6..]);
    assert_eq!(reg.recent_events(0).unwrap(), vec![]);
    assert_eq!(reg.recent_events(100).unwrap().len(), 10);
}

#[test]
fn retention_keeps_at_most_max_events() {
    let dir = tempfile::tempdir().unwrap();
    let config = RegistryConfig {
        event_retention: Retention {
            max_events: 5,
            max_age_ms: None,
        },
        ..RegistryConfig::default()
    };
    let reg = Registry::open(dir.path(), config).unwrap();
    let seqs: Vec<u64> = (0..12)
        .map(|i| reg.append_event(&event(i, "e"), false).unwrap())
        .collect();
    let kept: Vec<u64> = reg
        .recent_events(100)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(kept, &seqs[7..]);
    assert_eq!(reg.stats().events, 5);
    drop(reg);

    // The count is rebuilt on reopen and the limit still holds.
    let reg = Registry::open(dir.path(), config).unwrap();
    assert_eq!(reg.stats().events, 5);
    reg.append_event(&event(100, "e"), false).unwrap();
    assert_eq!(reg.recent_events(100).unwrap().len(), 5);
}

#[test]
fn retention_drops_events_older_than_max_age_of_the_new_event() {
    let dir = tempfile::tempdir().unwrap();
    let config = RegistryConfig {
        event_retention: Retention {
            max_events: 1_000,
            max_age_ms: Some(1_000),
        },
        ..RegistryConfig::default()
    };
    let reg = Registry::open(dir.path(), config).unwrap();
    for at in [0, 100, 500, 900] {
        reg.append_event(&event(at, "old"), false).unwrap();
    }
    // Cut-off is 1_600 - 1_000 = 600: events at 0, 100 and 500 go.
    reg.append_event(&event(1_600, "new"), false).unwrap();
    let kept: Vec<i64> = reg
        .recent_events(100)
        .unwrap()
        .iter()
        .map(|e| e.at_ms)
        .collect();
    assert_eq!(kept, vec![900, 1_600]);
    // A far-future event drops everything but itself.
    reg.append_event(&event(1_000_000, "later"), false).unwrap();
    let kept: Vec<i64> = reg
        .recent_events(100)
        .unwrap()
        .iter()
        .map(|e| e.at_ms)
        .collect();
    assert_eq!(kept, vec![1_000_000]);
    assert_eq!(reg.stats().events, 1);
}

#[test]
fn close_live_attendees_marks_only_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    {
        let reg = open(dir.path());
        for _ in 0..3 {
            let id = reg.next_attendee_id().unwrap();
            reg.put_attendee(&attendee(id, "s1")).unwrap();
        }
        let id = reg.next_attendee_id().unwrap();
        let mut gone = attendee(id, "s1");
        gone.disconnected_at_ms = Some(5);
        gone.disconnect_reason = Some(tandem_proto::DisconnectReason::ByAttendee);
        reg.put_attendee(&gone).unwrap();
    }
    let reg = open(dir.path());
    assert_eq!(
        reg.close_live_attendees(tandem_proto::DisconnectReason::NodeRestarted, 42)
            .unwrap(),
        3
    );
    assert_eq!(reg.attendees(AttendeeFilter::Live).unwrap(), vec![]);
    let all = reg.attendees(AttendeeFilter::All).unwrap();
    assert_eq!(all.len(), 4);
    for a in &all[..3] {
        assert_eq!(a.disconnected_at_ms, Some(42));
        assert_eq!(
            a.disconnect_reason,
            Some(tandem_proto::DisconnectReason::NodeRestarted)
        );
    }
    assert_eq!(
        all[3].disconnect_reason,
        Some(tandem_proto::DisconnectReason::ByAttendee)
    );
    assert_eq!(all[3].disconnected_at_ms, Some(5));
    assert_eq!(
        reg.close_live_attendees(tandem_proto::DisconnectReason::NodeRestarted, 43)
            .unwrap(),
        0
    );
}

#[test]
fn invalid_records_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let reg = open(dir.path());
    assert!(matches!(
        reg.put_session(&session("")),
        Err(RegistryError::InvalidRecord { .. })
    ));
    let long = "x".repeat(1_000);
    assert!(matches!(
        reg.put_invitation(&invitation(&long, "s1")),
        Err(RegistryError::InvalidRecord { .. })
    ));
    assert!(matches!(
        reg.put_attendee(&attendee(0, "s1")),
        Err(RegistryError::InvalidRecord { .. })
    ));
}

#[test]
fn a_second_open_of_the_same_store_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let _reg = open(dir.path());
    let err = Registry::open(dir.path(), RegistryConfig::default()).unwrap_err();
    assert!(matches!(err, RegistryError::Open { .. }), "{err:?}");
}

#[test]
fn a_foreign_sled_store_is_not_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        db.insert(b"someone", b"else".to_vec()).unwrap();
        db.flush().unwrap();
    }
    let err = Registry::open(dir.path(), RegistryConfig::default()).unwrap_err();
    assert!(matches!(err, RegistryError::NotARegistry { .. }), "{err:?}");
}

/// Every tree, key and value of a sled store.
fn dump(dir: &Path) -> BTreeMap<Vec<u8>, BTreeMap<Vec<u8>, Vec<u8>>> {
    let db = sled::open(dir).unwrap();
    db.tree_names()
        .into_iter()
        .map(|name| {
            let tree = db.open_tree(&name).unwrap();
            let kv = tree
                .iter()
                .map(|i| i.unwrap())
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .collect();
            (name.to_vec(), kv)
        })
        .collect()
}

/// Every file under `dir` with its bytes.
fn files(dir: &Path) -> BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[test]
fn a_store_from_a_newer_schema_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    {
        let reg = open(dir.path());
        reg.put_session(&session("s1")).unwrap();
        reg.append_event(&event(1, "e"), true).unwrap();
    }
    {
        let db = sled::open(dir.path()).unwrap();
        let meta = db.open_tree("meta").unwrap();
        meta.insert("schema_version", &(SCHEMA_VERSION + 1).to_be_bytes())
            .unwrap();
        meta.insert("written_by", b"tandem 9".to_vec()).unwrap();
        db.flush().unwrap();
    }
    // Opening with sled rewrites its snapshot once after writes; let that
    // happen here so the files are settled before the registry sees them.
    let before = dump(dir.path());
    let before_files = files(dir.path());

    let err = Registry::open(dir.path(), RegistryConfig::default()).unwrap_err();
    match err {
        RegistryError::SchemaTooNew { found, supported } => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    assert!(err_message_helps(SCHEMA_VERSION + 1));
    let after_files = files(dir.path());
    assert_eq!(
        after_files.keys().collect::<Vec<_>>(),
        before_files.keys().collect::<Vec<_>>(),
        "files added or removed"
    );
    for (path, bytes) in &before_files {
        assert!(after_files[path] == *bytes, "{} changed", path.display());
    }
    assert_eq!(dump(dir.path()), before, "keys or values changed");
}

fn err_message_helps(found: u32) -> bool {
    let msg = RegistryError::SchemaTooNew {
        found,
        supported: SCHEMA_VERSION,
    }
    .to_string();
    msg.contains("upgrade") && msg.starts_with("registry schema")
}
