//! Attendee history retention: bounded by count and age, pruned at start
//! and as it grows, live attendees always kept; ids keep increasing across
//! restarts although their counter is flushed once per block.

use tandem_registry::{
    AttendeeFilter, AttendeeRecord, AttendeeRetention, Registry, RegistryConfig,
};

fn config(max_records: u64, max_age_ms: Option<i64>) -> RegistryConfig {
    RegistryConfig {
        cache_bytes: 8 * 1024 * 1024,
        attendee_retention: AttendeeRetention {
            max_records,
            max_age_ms,
        },
        ..RegistryConfig::default()
    }
}

fn record(id: u64, gone_at: Option<i64>) -> AttendeeRecord {
    AttendeeRecord {
        id,
        session_id: "s".into(),
        invitation_id: "i".into(),
        user: format!("user{id}"),
        computer: "127.0.0.1:1".into(),
        via_node: None,
        control_level: tandem_proto::ControlLevel::View,
        connected_at_ms: id as i64,
        disconnected_at_ms: gone_at,
        disconnect_reason: gone_at.map(|_| tandem_proto::DisconnectReason::ByAttendee),
        bytes_sent: 0,
    }
}

fn ids(reg: &Registry) -> Vec<u64> {
    reg.attendees(AttendeeFilter::All)
        .unwrap()
        .iter()
        .map(|a| a.id)
        .collect()
}

#[test]
fn finished_attendees_beyond_the_count_are_dropped_oldest_first_live_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::open(dir.path(), config(5, None)).unwrap();
    // Attendee 1 stays connected throughout.
    reg.put_attendee(&record(1, None)).unwrap();
    for id in 2..=20 {
        reg.put_attendee(&record(id, None)).unwrap();
        reg.put_attendee(&record(id, Some(1000 + id as i64)))
            .unwrap();
        assert!(reg.stats().attendees <= 5, "{:?}", ids(&reg));
    }
    assert_eq!(ids(&reg), vec![1, 17, 18, 19, 20]);
    drop(reg);

    // Reopened with a smaller bound: pruned at start.
    let reg = Registry::open(dir.path(), config(3, None)).unwrap();
    assert_eq!(reg.prune_attendee_history(0).unwrap(), 2);
    assert_eq!(ids(&reg), vec![1, 19, 20]);
}

#[test]
fn finished_attendees_older_than_the_age_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::open(dir.path(), config(1000, Some(10_000))).unwrap();
    for id in 1..=5 {
        reg.put_attendee(&record(id, Some(id as i64 * 1000)))
            .unwrap();
    }
    // A disconnect at 13,500 drops those gone before 3,500.
    reg.put_attendee(&record(6, Some(13_500))).unwrap();
    assert_eq!(ids(&reg), vec![4, 5, 6]);
    // At start, with the time given.
    assert_eq!(reg.prune_attendee_history(100_000).unwrap(), 3);
    assert!(ids(&reg).is_empty());
}

#[test]
fn attendee_ids_increase_across_restarts_with_their_counter_reserved_in_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let mut last = 0;
    for _ in 0..3 {
        let reg = Registry::open(dir.path(), RegistryConfig::default()).unwrap();
        for _ in 0..1500 {
            let id = reg.next_attendee_id().unwrap();
            assert!(id > last, "{id} after {last}");
            last = id;
        }
    }
}
