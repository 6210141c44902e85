//! Property test of the session model: random sequences of joins, leaves,
//! level changes, revocations and limit changes.

use std::collections::BTreeMap;
use std::net::IpAddr;

use proptest::prelude::*;
use tandem_proto::{ControlLevel, DisconnectReason};
use tandem_session::{
    ControlPolicy, Effect, Input, InvitationRules, SessionBook, SessionRules, Time, Verdict,
};

const INVITATIONS: [&str; 2] = ["a", "b"];

#[derive(Clone, Debug)]
enum Op {
    Join { inv: usize, from: u8 },
    Check { nth: usize, verdict: u8 },
    Leave { nth: usize },
    Request { nth: usize, level: ControlLevel },
    Set { nth: usize, level: ControlLevel },
    Answer { nth: usize, grant: bool },
    Input { nth: usize },
    Limit { inv: usize, limit: u32 },
    Revoke { inv: usize },
    Wait { ms: u64 },
}

fn level() -> impl Strategy<Value = ControlLevel> {
    prop::sample::select(ControlLevel::ALL.to_vec())
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..2usize, 0..3u8).prop_map(|(inv, from)| Op::Join { inv, from }),
        4 => (0..8usize, 0..4u8).prop_map(|(nth, verdict)| Op::Check { nth, verdict }),
        2 => (0..8usize).prop_map(|nth| Op::Leave { nth }),
        2 => (0..8usize, level()).prop_map(|(nth, level)| Op::Request { nth, level }),
        1 => (0..8usize, level()).prop_map(|(nth, level)| Op::Set { nth, level }),
        1 => (0..8usize, any::<bool>()).prop_map(|(nth, grant)| Op::Answer { nth, grant }),
        3 => (0..8usize).prop_map(|nth| Op::Input { nth }),
        1 => (0..2usize, 1..4u32).prop_map(|(inv, limit)| Op::Limit { inv, limit }),
        1 => (0..2usize).prop_map(|inv| Op::Revoke { inv }),
        1 => (0..20_000u64).prop_map(|ms| Op::Wait { ms }),
    ]
}

/// Runs `ops` on a fresh book; checks the invariants as it goes and returns
/// every effect (errors included, as text) for the determinism check.
fn run(policy: ControlPolicy, ops: &[Op]) -> Vec<String> {
    let mut book = SessionBook::new();
    let mut now = Time::ZERO;
    let mut trace = Vec::new();
    let mut limits: BTreeMap<&str, u32> = BTreeMap::new();
    let feed = |book: &mut SessionBook, now: Time, input: Input, trace: &mut Vec<String>| {
        let result = book.handle(now, input);
        trace.push(format!("{result:?}"));
        result.unwrap_or_default()
    };
    feed(
        &mut book,
        now,
        Input::OpenSession {
            session: "s".into(),
            rules: SessionRules {
                default_level: ControlLevel::View,
                policy,
            },
        },
        &mut trace,
    );
    for inv in INVITATIONS {
        limits.insert(inv, 2);
        feed(
            &mut book,
            now,
            Input::PutInvitation {
                id: inv.into(),
                rules: InvitationRules {
                    session: "s".into(),
                    limit: 2,
                    revoked: false,
                    group: String::new(),
                },
            },
            &mut trace,
        );
    }
    let mut revoked = [false; 2];
    let mut joins: Vec<u64> = Vec::new();
    let mut next_id = 1u64;
    let pick = |book: &SessionBook, nth: usize| -> u64 {
        let ids: Vec<u64> = book.attendee_ids().collect();
        if ids.is_empty() {
            999
        } else {
            ids[nth % ids.len()]
        }
    };
    for op in ops {
        let input = match *op {
            Op::Join { inv, from } => {
                let join = next_id;
                next_id += 1;
                joins.push(join);
                Input::Join {
                    join,
                    from: IpAddr::from([10, 0, 0, from]),
                    session: "s".into(),
                    invitation: INVITATIONS[inv].into(),
                }
            }
            Op::Check { nth, verdict } => {
                if joins.is_empty() {
                    continue;
                }
                let join = joins.remove(nth % joins.len());
                let verdict = match verdict {
                    0 => Verdict::Wrong,
                    1 => Verdict::Failed,
                    _ => Verdict::Right { attendee: join },
                };
                Input::Checked { join, verdict }
            }
            Op::Leave { nth } => Input::Left {
                attendee: pick(&book, nth),
                reason: DisconnectReason::ByAttendee,
            },
            Op::Request { nth, level } => Input::RequestControl {
                attendee: pick(&book, nth),
                level,
            },
            Op::Set { nth, level } => Input::SetLevel {
                attendee: pick(&book, nth),
                level,
            },
            Op::Answer { nth, grant } => Input::Answer {
                attendee: pick(&book, nth),
                grant,
            },
            Op::Input { nth } => Input::Input {
                attendee: pick(&book, nth),
            },
            Op::Limit { inv, limit } => {
                limits.insert(INVITATIONS[inv], limit);
                Input::PutInvitation {
                    id: INVITATIONS[inv].into(),
                    rules: InvitationRules {
                        session: "s".into(),
                        limit,
                        revoked: revoked[inv],
                        group: String::new(),
                    },
                }
            }
            Op::Revoke { inv } => {
                revoked[inv] = true;
                Input::PutInvitation {
                    id: INVITATIONS[inv].into(),
                    rules: InvitationRules {
                        session: "s".into(),
                        limit: limits[INVITATIONS[inv]],
                        revoked: true,
                        group: String::new(),
                    },
                }
            }
            Op::Wait { ms } => {
                now = now + std::time::Duration::from_millis(ms);
                continue;
            }
        };
        // Levels before the input, to judge its effects.
        let before: BTreeMap<u64, ControlLevel> = book
            .attendee_ids()
            .map(|id| (id, book.attendee(now, id).unwrap().level))
            .collect();
        let effects = feed(&mut book, now, input, &mut trace);
        for effect in &effects {
            match effect {
                Effect::Admit { attendee, .. } => {
                    let view = book.attendee(now, *attendee).unwrap();
                    let inv = view.invitation.as_str();
                    let i = INVITATIONS.iter().position(|x| *x == inv).unwrap();
                    assert!(!revoked[i], "admitted through a revoked invitation");
                    assert!(
                        book.count_on_invitation(inv) <= limits[inv],
                        "more attendees than the limit on {inv}"
                    );
                }
                Effect::Inject { attendee, .. } => {
                    assert_eq!(
                        before.get(attendee),
                        Some(&ControlLevel::Interactive),
                        "input injected from an attendee that is not interactive"
                    );
                }
                _ => {}
            }
        }
    }
    trace
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn limits_hold_input_needs_interactive_and_effects_are_deterministic(
        policy in prop::sample::select(ControlPolicy::ALL.to_vec()),
        ops in prop::collection::vec(op(), 0..80),
    ) {
        let first = run(policy, &ops);
        let second = run(policy, &ops);
        prop_assert_eq!(first, second);
    }
}
