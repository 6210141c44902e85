//! Durability under `kill -9`, modelled on sled's own crash tests: the test
//! re-executes its own binary as a child that writes in a tight loop and
//! prints `ack ...` after each write returns `Ok`; the parent kills it with
//! SIGKILL at a random moment, reopens the store and checks that every
//! acknowledged write is there.

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use tandem_registry::{AttendeeRecord, InvitationRecord, NewEvent, Registry, RegistryConfig};

const CHILD_ENV: &str = "TANDEM_REGISTRY_CRASH_CHILD";
const ROUND_ENV: &str = "TANDEM_REGISTRY_CRASH_ROUND";
const TEST_NAME: &str = "acked_writes_survive_kill_9";
/// Stores used; each is crashed several times in a row.
const STORES: usize = 4;
const ROUNDS_PER_STORE: usize = 5;
/// Upper bound of the child's writes, so it stops if the parent is gone.
const CHILD_MAX_WRITES: u64 = 5_000;

fn config() -> RegistryConfig {
    RegistryConfig {
        cache_bytes: 8 * 1024 * 1024,
        ..RegistryConfig::default()
    }
}

fn invitation(round: u64, i: u64) -> InvitationRecord {
    InvitationRecord {
        id: format!("r{round}-inv{i}"),
        session_id: format!("s{}", i % 3),
        auth_string: format!(
            "tandem://node/{round}/{i}/{}",
            "x".repeat((i % 50) as usize)
        ),
        group: "crash".into(),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$salt{i}$hash{round}"),
        attendee_limit: (i % 7) as u32,
        revoked: i % 2 == 0,
        created_at_ms: (round * 1_000_000 + i) as i64,
    }
}

fn attendee(round: u64, id: u64, i: u64) -> AttendeeRecord {
    AttendeeRecord {
        id,
        session_id: format!("s{}", i % 3),
        invitation_id: format!("r{round}-inv{i}"),
        user: format!("user{i}"),
        computer: format!("pc{round}"),
        via_node: (i % 2 == 0).then(|| "relay".to_owned()),
        control_level: tandem_proto::ControlLevel::View,
        connected_at_ms: i as i64,
        disconnected_at_ms: None,
        disconnect_reason: None,
        bytes_sent: i * 1_000,
    }
}

fn event(round: u64, i: u64) -> NewEvent {
    NewEvent {
        at_ms: (round * 1_000_000 + i) as i64,
        session_id: None,
        attendee_id: None,
        kind: "crash.tick".into(),
        detail: format!("r{round}-e{i}"),
    }
}

/// Child: writes until killed, acknowledging each write after it returned `Ok`.
fn child(dir: &Path, round: u64) -> ! {
    let reg = Registry::open(dir, config()).expect("child opens the registry");
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for i in 0..CHILD_MAX_WRITES {
        let line = match i % 4 {
            0 | 1 => {
                reg.put_invitation(&invitation(round, i))
                    .expect("put_invitation");
                format!("ack inv {round} {i}")
            }
            2 => {
                let id = reg.next_attendee_id().expect("next_attendee_id");
                reg.put_attendee(&attendee(round, id, i))
                    .expect("put_attendee");
                format!("ack att {round} {id} {i}")
            }
            _ => {
                let seq = reg
                    .append_event(&event(round, i), true)
                    .expect("append_event");
                // An unflushed one too, which may or may not survive.
                reg.append_event(&event(round, i + 1), false)
                    .expect("append_event");
                format!("ack ev {round} {seq} {i}")
            }
        };
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    std::process::exit(0)
}

#[derive(Debug)]
enum Ack {
    Invitation { round: u64, i: u64 },
    Attendee { round: u64, id: u64, i: u64 },
    Event { round: u64, seq: u64, i: u64 },
}

fn parse(line: &str) -> Option<Ack> {
    let mut parts = line.strip_prefix("ack ")?.split(' ');
    let kind = parts.next()?;
    let nums: Vec<u64> = parts.map(|p| p.parse().ok()).collect::<Option<_>>()?;
    match (kind, nums.as_slice()) {
        ("inv", &[round, i]) => Some(Ack::Invitation { round, i }),
        ("att", &[round, id, i]) => Some(Ack::Attendee { round, id, i }),
        ("ev", &[round, seq, i]) => Some(Ack::Event { round, seq, i }),
        _ => None,
    }
}

fn random_below(n: u64) -> u64 {
    RandomState::new().build_hasher().finish() % n
}

/// Runs one child against `dir`, kills it after a random number of acks and
/// returns every ack it printed (including those still in the pipe).
fn crash_once(dir: &Path, round: u64) -> Vec<Ack> {
    let kill_after = 1 + random_below(40);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .env(ROUND_ENV, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acks = Vec::new();
    let mut killed = false;
    for line in lines.by_ref() {
        let line = line.expect("read child stdout");
        if let Some(ack) = parse(&line) {
            acks.push(ack);
            if acks.len() as u64 >= kill_after {
                child.kill().expect("SIGKILL the child");
                killed = true;
                break;
            }
        }
    }
    // Lines already in the pipe were acknowledged before the kill.
    for line in lines {
        let line = line.expect("read child stdout");
        acks.extend(parse(&line));
    }
    let status = child.wait().expect("wait for child");
    assert!(
        killed,
        "child ended before it was killed ({status}) after {} acks",
        acks.len()
    );
    acks
}

#[test]
fn acked_writes_survive_kill_9() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        let round = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
        child(Path::new(&dir), round);
    }

    for _ in 0..STORES {
        let dir = tempfile::tempdir().unwrap();
        let mut acked = Vec::new();
        let mut node_id = None::<String>;
        for round in 0..ROUNDS_PER_STORE as u64 {
            acked.extend(crash_once(dir.path(), round));

            let reg = Registry::open(dir.path(), config()).expect("store opens after kill -9");
            match &node_id {
                Some(id) => assert_eq!(reg.node_id(), id, "node id changed after a crash"),
                None => node_id = Some(reg.node_id().to_owned()),
            }
            let mut max_attendee = 0;
            let mut max_seq = 0;
            let events: BTreeMap<u64, String> = reg
                .events_since(0, usize::MAX)
                .unwrap()
                .into_iter()
                .map(|e| (e.seq, e.detail))
                .collect();
            for ack in &acked {
                match *ack {
                    Ack::Invitation { round, i } => {
                        let want = invitation(round, i);
                        assert_eq!(reg.invitation(&want.id).unwrap(), Some(want), "{ack:?}");
                    }
                    Ack::Attendee { round, id, i } => {
                        assert_eq!(
                            reg.attendee(id).unwrap(),
                            Some(attendee(round, id, i)),
                            "{ack:?}"
                        );
                        max_attendee = max_attendee.max(id);
                    }
                    Ack::Event { round, seq, i } => {
                        assert_eq!(events.get(&seq), Some(&format!("r{round}-e{i}")), "{ack:?}");
                        max_seq = max_seq.max(seq);
                    }
                }
            }
            // Counters never hand out an acknowledged id again.
            assert!(reg.next_attendee_id().unwrap() > max_attendee);
            let seq = reg.append_event(&event(99, 0), true).unwrap();
            assert!(seq > max_seq && seq > events.keys().copied().max().unwrap_or(0));
        }
        assert!(!acked.is_empty());
    }
}
