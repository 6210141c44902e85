//! Table tests of the session model on virtual time: no sleeps, no clock.

use std::net::IpAddr;
use std::time::Duration;

use tandem_proto::{ControlLevel, DisconnectReason, RejectReason, ServerMessage};
use tandem_session::{
    Answerer, BookError, ControlPolicy, Effect, Event, GroupRules, Input, InvitationRules,
    SessionBook, SessionRules, ShownLevel, Time, Verdict, FAILURE_WINDOW, FIRST_FAILURE_DELAY,
    INVITATION_FAILURE_BUDGET, MAX_CONCURRENT_CHECKS, MAX_FAILURES, MAX_FAILURE_DELAY, MAX_GROUPS,
    MAX_GROUP_CHANNELS,
};

const T0: Time = Time::ZERO;

fn ip(n: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, n])
}

/// A book with session `s` (`policy`, new attendees at `view`) and
/// invitation `i` of it admitting `limit`.
fn book(policy: ControlPolicy, limit: u32) -> SessionBook {
    let mut b = SessionBook::new();
    b.handle(
        T0,
        Input::OpenSession {
            session: "s".into(),
            rules: SessionRules {
                default_level: ControlLevel::View,
                policy,
            },
        },
    )
    .unwrap();
    put(&mut b, "i", limit, false);
    b
}

fn put(b: &mut SessionBook, id: &str, limit: u32, revoked: bool) {
    b.handle(
        T0,
        Input::PutInvitation {
            id: id.into(),
            rules: InvitationRules {
                session: "s".into(),
                limit,
                revoked,
                group: String::new(),
            },
        },
    )
    .unwrap();
}

fn join(b: &mut SessionBook, now: Time, join: u64, from: IpAddr, inv: &str) -> Vec<Effect> {
    b.handle(
        now,
        Input::Join {
            join,
            from,
            session: "s".into(),
            invitation: inv.into(),
        },
    )
    .unwrap()
}

fn checked(b: &mut SessionBook, now: Time, join: u64, verdict: Verdict) -> Vec<Effect> {
    b.handle(now, Input::Checked { join, verdict }).unwrap()
}

/// Joins `attendee` through `i` with the right password; panics unless admitted.
fn admit(b: &mut SessionBook, now: Time, attendee: u64) {
    join(b, now, attendee, ip(1), "i");
    let out = checked(b, now, attendee, Verdict::Right { attendee });
    assert!(
        matches!(out.first(), Some(Effect::Admit { attendee: a, .. }) if *a == attendee),
        "{out:?}"
    );
}

fn rejection(out: &[Effect]) -> Option<RejectReason> {
    out.iter().find_map(|e| match e {
        Effect::Reject { reason, .. } => Some(*reason),
        _ => None,
    })
}

fn delay(out: &[Effect]) -> Option<Duration> {
    out.iter().find_map(|e| match e {
        Effect::CheckPassword { delay, .. } => Some(*delay),
        _ => None,
    })
}

fn level(b: &SessionBook, attendee: u64) -> ControlLevel {
    b.attendee(T0, attendee).unwrap().level
}

#[test]
fn joins_are_refused_for_the_right_reasons() {
    let mut b = book(ControlPolicy::Ask, 1);
    put(&mut b, "revoked", 5, true);
    let cases: [(&str, &str, RejectReason); 3] = [
        ("s", "nope", RejectReason::UnknownInvitation),
        ("s", "revoked", RejectReason::InvitationRevoked),
        ("other", "i", RejectReason::UnknownSession),
    ];
    for (n, (session, inv, want)) in cases.into_iter().enumerate() {
        let out = b
            .handle(
                T0,
                Input::Join {
                    join: n as u64,
                    from: ip(1),
                    session: session.into(),
                    invitation: inv.into(),
                },
            )
            .unwrap();
        assert_eq!(rejection(&out), Some(want), "{session}/{inv}");
    }
    // A wrong password is refused after the check; a right one admits.
    join(&mut b, T0, 10, ip(1), "i");
    assert_eq!(
        rejection(&checked(&mut b, T0, 10, Verdict::Wrong)),
        Some(RejectReason::WrongPassword)
    );
    admit(&mut b, T0, 11);
    // The limit (1) is reached.
    join(&mut b, T0, 12, ip(2), "i");
    let out = checked(&mut b, T0, 12, Verdict::Right { attendee: 12 });
    assert_eq!(rejection(&out), Some(RejectReason::AttendeeLimitReached));
    // A closed session is told apart from an unknown one.
    b.handle(
        T0,
        Input::CloseSession {
            session: "s".into(),
        },
    )
    .unwrap();
    assert_eq!(
        rejection(&join(&mut b, T0, 13, ip(3), "i")),
        Some(RejectReason::SessionClosed)
    );
}

#[test]
fn what_changes_during_the_password_check_is_checked_again() {
    let mut b = book(ControlPolicy::Ask, 2);
    // Revoked while the password is checked.
    join(&mut b, T0, 1, ip(1), "i");
    put(&mut b, "i", 2, true);
    assert_eq!(
        rejection(&checked(&mut b, T0, 1, Verdict::Right { attendee: 1 })),
        Some(RejectReason::InvitationRevoked)
    );
    // Revocation is final: putting the invitation again does not undo it.
    put(&mut b, "i", 2, false);
    assert_eq!(
        rejection(&join(&mut b, T0, 2, ip(1), "i")),
        Some(RejectReason::InvitationRevoked)
    );
    // Two concurrent joins for one slot: the first answered wins.
    let mut b = book(ControlPolicy::Ask, 1);
    join(&mut b, T0, 1, ip(1), "i");
    join(&mut b, T0, 2, ip(2), "i");
    assert!(rejection(&checked(&mut b, T0, 2, Verdict::Right { attendee: 2 })).is_none());
    assert_eq!(
        rejection(&checked(&mut b, T0, 1, Verdict::Right { attendee: 1 })),
        Some(RejectReason::AttendeeLimitReached)
    );
    // A lowered limit refuses new joins, keeps those connected.
    put(&mut b, "i", 1, false);
    assert_eq!(b.count_on_invitation("i"), 1);
    // The node stopping during a check.
    join(&mut b, T0, 3, ip(3), "i");
    assert_eq!(
        rejection(&checked(&mut b, T0, 3, Verdict::Failed)),
        Some(RejectReason::NodeShuttingDown)
    );
    assert_eq!(b.joins_under_way(), 0);
    assert_eq!(
        b.handle(
            T0,
            Input::Checked {
                join: 3,
                verdict: Verdict::Wrong
            }
        ),
        Err(BookError::UnknownJoin(3))
    );
    assert_eq!(
        b.handle(
            T0,
            Input::PutInvitation {
                id: "z".into(),
                rules: InvitationRules {
                    session: "s".into(),
                    limit: 0,
                    revoked: false,
                    group: String::new(),
                }
            }
        ),
        Err(BookError::ZeroLimit)
    );
}

#[test]
fn concurrent_checks_from_one_address_count_and_are_bounded() {
    let mut b = book(ControlPolicy::Ask, 100);
    let mut delays = Vec::new();
    for n in 0..MAX_CONCURRENT_CHECKS as u64 {
        delays.push(delay(&join(&mut b, T0, n, ip(5), "i")).unwrap());
    }
    assert_eq!(delays[0], Duration::ZERO);
    assert_eq!(delays[1], FIRST_FAILURE_DELAY);
    assert_eq!(delays[2], FIRST_FAILURE_DELAY * 2);
    assert_eq!(
        rejection(&join(&mut b, T0, 99, ip(5), "i")),
        Some(RejectReason::TooManyAttempts)
    );
    // A right answer ends a check: room again.
    checked(&mut b, T0, 0, Verdict::Right { attendee: 0 });
    assert!(delay(&join(&mut b, T0, 100, ip(5), "i")).is_some());
}

#[test]
fn requests_follow_the_policy() {
    use ControlLevel::{Interactive, View};
    // (policy, requested, granted at once)
    let table = [
        (ControlPolicy::Ask, Interactive, false),
        (ControlPolicy::GrantView, Interactive, false),
        (ControlPolicy::GrantAll, Interactive, true),
    ];
    for (policy, requested, at_once) in table {
        let mut b = book(policy, 5);
        admit(&mut b, T0, 1);
        let out = b
            .handle(
                T0,
                Input::RequestControl {
                    attendee: 1,
                    level: requested,
                },
            )
            .unwrap();
        assert!(out.contains(&Effect::Emit(Event::ControlRequested {
            session: "s".into(),
            attendee: 1,
            requested,
            shown: ShownLevel::ReqctrlInteractive,
        })));
        let want = if at_once { requested } else { View };
        assert_eq!(level(&b, 1), want, "{policy}");
        assert_eq!(
            b.attendee(T0, 1).unwrap().pending,
            (!at_once).then_some(requested)
        );
        if at_once {
            assert!(out.contains(&Effect::Emit(Event::ControlAnswered {
                session: "s".into(),
                attendee: 1,
                requested,
                granted: true,
                by: Answerer::Policy,
                shown: ShownLevel::Interactive,
            })));
        }
    }
    // grant-view grants view to an attendee admitted at none.
    let mut b = SessionBook::new();
    b.handle(
        T0,
        Input::OpenSession {
            session: "s".into(),
            rules: SessionRules {
                default_level: ControlLevel::None,
                policy: ControlPolicy::GrantView,
            },
        },
    )
    .unwrap();
    put(&mut b, "i", 5, false);
    admit(&mut b, T0, 1);
    b.handle(
        T0,
        Input::RequestControl {
            attendee: 1,
            level: View,
        },
    )
    .unwrap();
    assert_eq!(level(&b, 1), View);
}

#[test]
fn the_sharer_grants_denies_or_sets_and_giving_back_needs_no_one() {
    let mut b = book(ControlPolicy::Ask, 5);
    admit(&mut b, T0, 1);
    let ask = |b: &mut SessionBook| {
        b.handle(
            T0,
            Input::RequestControl {
                attendee: 1,
                level: ControlLevel::Interactive,
            },
        )
        .unwrap()
    };
    ask(&mut b);
    let out = b
        .handle(
            T0,
            Input::Answer {
                attendee: 1,
                grant: false,
            },
        )
        .unwrap();
    assert!(matches!(
        &out[0],
        Effect::Tell {
            msg: ServerMessage::ControlRequestAnswered { granted: false, .. },
            ..
        }
    ));
    assert_eq!(level(&b, 1), ControlLevel::View);
    assert_eq!(
        b.handle(
            T0,
            Input::Answer {
                attendee: 1,
                grant: true
            }
        ),
        Err(BookError::NoPendingRequest(1))
    );
    ask(&mut b);
    let out = b
        .handle(
            T0,
            Input::Answer {
                attendee: 1,
                grant: true,
            },
        )
        .unwrap();
    assert!(out.contains(&Effect::Level {
        attendee: 1,
        level: ControlLevel::Interactive
    }));
    assert!(out.contains(&Effect::Tell {
        attendee: 1,
        msg: ServerMessage::ControlLevelChanged {
            level: ControlLevel::Interactive
        }
    }));
    // Giving control back releases held keys, without asking anyone.
    let out = b
        .handle(
            T0,
            Input::RequestControl {
                attendee: 1,
                level: ControlLevel::View,
            },
        )
        .unwrap();
    assert!(out.contains(&Effect::ReleaseInput {
        session: "s".into()
    }));
    assert_eq!(level(&b, 1), ControlLevel::View);
    // A direct set answers a pending request (granted when at least what was asked).
    ask(&mut b);
    let out = b
        .handle(
            T0,
            Input::SetLevel {
                attendee: 1,
                level: ControlLevel::None,
            },
        )
        .unwrap();
    assert!(out.contains(&Effect::Emit(Event::ControlAnswered {
        session: "s".into(),
        attendee: 1,
        requested: ControlLevel::Interactive,
        granted: false,
        by: Answerer::Sharer,
        shown: ShownLevel::None,
    })));
    assert_eq!(b.attendee(T0, 1).unwrap().pending, None);
    assert_eq!(
        b.handle(
            T0,
            Input::SetLevel {
                attendee: 7,
                level: ControlLevel::None
            }
        ),
        Err(BookError::UnknownAttendee(7))
    );
}

#[test]
fn only_interactive_input_is_injected_and_a_refusal_is_said_once_per_level() {
    let mut b = book(ControlPolicy::GrantAll, 5);
    admit(&mut b, T0, 1);
    let input = |b: &mut SessionBook| b.handle(T0, Input::Input { attendee: 1 }).unwrap();
    let first = input(&mut b);
    assert_eq!(first[0], Effect::DropInput { attendee: 1 });
    assert!(matches!(
        first[1],
        Effect::Tell {
            msg: ServerMessage::InputRefused { .. },
            ..
        }
    ));
    assert_eq!(input(&mut b), vec![Effect::DropInput { attendee: 1 }]);
    b.handle(
        T0,
        Input::RequestControl {
            attendee: 1,
            level: ControlLevel::Interactive,
        },
    )
    .unwrap();
    assert_eq!(
        input(&mut b),
        vec![Effect::Inject {
            attendee: 1,
            session: "s".into()
        }]
    );
    // Back at view: refused again, and told again.
    b.handle(
        T0,
        Input::SetLevel {
            attendee: 1,
            level: ControlLevel::View,
        },
    )
    .unwrap();
    assert_eq!(input(&mut b).len(), 2);
    // Input from an unknown attendee does nothing.
    assert_eq!(b.handle(T0, Input::Input { attendee: 9 }).unwrap(), vec![]);
}

#[test]
fn idle_time_counts_from_the_last_input_or_request() {
    let mut b = book(ControlPolicy::Ask, 5);
    admit(&mut b, T0, 1);
    let t = |s: u64| Time::from_millis(s * 1000);
    assert_eq!(b.attendee(t(30), 1).unwrap().idle, Duration::from_secs(30));
    b.handle(t(40), Input::Input { attendee: 1 }).unwrap();
    assert_eq!(b.attendee(t(45), 1).unwrap().idle, Duration::from_secs(5));
    b.handle(
        t(50),
        Input::RequestControl {
            attendee: 1,
            level: ControlLevel::Interactive,
        },
    )
    .unwrap();
    assert_eq!(b.attendee(t(50), 1).unwrap().idle, Duration::ZERO);
}

#[test]
fn connect_time_counts_from_the_admission_whatever_the_activity() {
    let mut b = book(ControlPolicy::Ask, 5);
    let t = |s: u64| Time::from_millis(s * 1000);
    // The join starts at 3 s; the password check ends at 5 s: admitted then.
    join(&mut b, t(3), 1, ip(1), "i");
    checked(&mut b, t(5), 1, Verdict::Right { attendee: 1 });
    admit(&mut b, t(20), 2);
    for (now, one, two) in [(5, 0, 0), (20, 15, 0), (65, 60, 45)] {
        b.handle(t(now), Input::Input { attendee: 1 }).unwrap();
        let (a1, a2) = (b.attendee(t(now), 1).unwrap(), b.attendee(t(now), 2));
        assert_eq!(a1.connected, Duration::from_secs(one), "at {now}");
        assert_eq!(
            a1.idle,
            Duration::ZERO,
            "input is activity, not a reconnect"
        );
        if now >= 20 {
            assert_eq!(a2.unwrap().connected, Duration::from_secs(two), "at {now}");
        }
    }
}

#[test]
fn removals_release_input_and_say_why() {
    let mut b = book(ControlPolicy::GrantAll, 5);
    admit(&mut b, T0, 1);
    admit(&mut b, T0, 2);
    b.handle(
        T0,
        Input::RequestControl {
            attendee: 1,
            level: ControlLevel::Interactive,
        },
    )
    .unwrap();
    let out = b
        .handle(
            T0,
            Input::Disconnect {
                attendee: 1,
                reason: DisconnectReason::BySharer,
                message: "bye".into(),
            },
        )
        .unwrap();
    assert_eq!(
        out,
        vec![
            Effect::Remove {
                attendee: 1,
                reason: DisconnectReason::BySharer,
                message: "bye".into()
            },
            Effect::ReleaseInput {
                session: "s".into()
            },
            Effect::Emit(Event::AttendeeDisconnected {
                session: "s".into(),
                attendee: 1,
                reason: DisconnectReason::BySharer
            }),
        ]
    );
    assert_eq!(
        b.handle(
            T0,
            Input::Disconnect {
                attendee: 1,
                reason: DisconnectReason::BySharer,
                message: String::new()
            }
        ),
        Err(BookError::UnknownAttendee(1))
    );
    // Leaving twice is harmless.
    let left = Input::Left {
        attendee: 2,
        reason: DisconnectReason::ByAttendee,
    };
    assert_eq!(b.handle(T0, left.clone()).unwrap().len(), 2);
    assert_eq!(b.handle(T0, left).unwrap(), vec![]);
    // Closing a session removes its attendees as "session closed".
    admit(&mut b, T0, 3);
    let out = b
        .handle(
            T0,
            Input::CloseSession {
                session: "s".into(),
            },
        )
        .unwrap();
    assert!(out.contains(&Effect::Remove {
        attendee: 3,
        reason: DisconnectReason::SessionClosed,
        message: "the sharer closed the session".into()
    }));
    assert_eq!(b.attendee_ids().count(), 0);
}

#[test]
fn a_pending_request_shows_as_its_reqctrl_level_until_answered() {
    use ControlLevel::{Interactive, None as Off, View};
    use ShownLevel as S;
    // (admitted at, requested, answer, shown while pending, shown after)
    // answer: Some(grant) or None for the sharer setting `View` directly.
    let table = [
        (
            View,
            Interactive,
            Some(true),
            S::ReqctrlInteractive,
            S::Interactive,
        ),
        (
            View,
            Interactive,
            Some(false),
            S::ReqctrlInteractive,
            S::View,
        ),
        (Off, View, Some(true), S::ReqctrlView, S::View),
        (Off, View, Some(false), S::ReqctrlView, S::None),
        (Off, Interactive, None, S::ReqctrlInteractive, S::View),
    ];
    for (start, requested, answer, pending, after) in table {
        let case = format!("{start} asks {requested}, answer {answer:?}");
        let mut b = SessionBook::new();
        b.handle(
            T0,
            Input::OpenSession {
                session: "s".into(),
                rules: SessionRules {
                    default_level: start,
                    policy: ControlPolicy::Ask,
                },
            },
        )
        .unwrap();
        put(&mut b, "i", 5, false);
        admit(&mut b, T0, 1);
        assert_eq!(b.attendee(T0, 1).unwrap().shown, S::from(start), "{case}");
        let out = b
            .handle(
                T0,
                Input::RequestControl {
                    attendee: 1,
                    level: requested,
                },
            )
            .unwrap();
        let a = b.attendee(T0, 1).unwrap();
        assert_eq!((a.level, a.shown), (start, pending), "{case}");
        assert!(a.shown.is_request(), "{case}");
        assert!(
            out.iter().any(|e| matches!(e, Effect::Emit(Event::ControlRequested { shown, .. }) if *shown == pending)),
            "{case}: {out:?}"
        );
        let input = match answer {
            Some(grant) => Input::Answer { attendee: 1, grant },
            None => Input::SetLevel {
                attendee: 1,
                level: View,
            },
        };
        let out = b.handle(T0, input).unwrap();
        let a = b.attendee(T0, 1).unwrap();
        assert_eq!(a.shown, after, "{case}");
        assert!(!a.shown.is_request(), "{case}");
        assert!(
            out.iter().any(|e| matches!(e, Effect::Emit(Event::ControlAnswered { shown, .. }) if *shown == after)),
            "{case}: {out:?}"
        );
    }
    // Giving control back is never pending.
    let mut b = book(ControlPolicy::Ask, 5);
    admit(&mut b, T0, 1);
    b.handle(
        T0,
        Input::RequestControl {
            attendee: 1,
            level: Off,
        },
    )
    .unwrap();
    assert_eq!(b.attendee(T0, 1).unwrap().shown, S::None);
    for (level, pending, want) in [
        (Interactive, None, S::Interactive),
        (View, Some(Interactive), S::ReqctrlInteractive),
        (Off, Some(View), S::ReqctrlView),
    ] {
        assert_eq!(ShownLevel::of(level, pending), want);
    }
    let names = [
        (S::ReqctrlView, "reqctrl-view"),
        (S::ReqctrlInteractive, "reqctrl-interactive"),
        (S::View, "view"),
    ];
    for (shown, name) in names {
        assert_eq!(shown.as_str(), name);
    }
}

/// Puts invitation `id` of group `group` (limit 5) on session `s`.
fn put_in_group(b: &mut SessionBook, id: &str, group: &str) {
    b.handle(
        T0,
        Input::PutInvitation {
            id: id.into(),
            rules: InvitationRules {
                session: "s".into(),
                limit: 5,
                revoked: false,
                group: group.into(),
            },
        },
    )
    .unwrap();
}

fn put_group(b: &mut SessionBook, name: &str, rules: GroupRules) -> Result<Vec<Effect>, BookError> {
    b.handle(
        T0,
        Input::PutGroup {
            name: name.into(),
            rules,
        },
    )
}

/// Admits `attendee` through invitation `inv`; the `Admit` effect.
fn admit_through(b: &mut SessionBook, attendee: u64, inv: &str) -> Effect {
    join(b, T0, attendee, ip(1), inv);
    let out = checked(b, T0, attendee, Verdict::Right { attendee });
    out.into_iter()
        .find(|e| matches!(e, Effect::Admit { .. }))
        .expect("admitted")
}

#[test]
fn a_group_sets_the_default_level_the_auto_grant_ceiling_and_channel_defaults() {
    use tandem_proto::ChannelAccess;
    use ControlLevel::{Interactive, None as Off, View};
    // (group default, ceiling, session policy, requested) -> (level at
    // join, granted at once, by)
    type Case = (
        Option<ControlLevel>,
        Option<ControlLevel>,
        ControlPolicy,
        ControlLevel,
    );
    type Expected = (ControlLevel, bool, Option<Answerer>);
    let table: [(Case, Expected); 7] = [
        // No rules: the session decides (default view, ask).
        (
            (None, None, ControlPolicy::Ask, Interactive),
            (View, false, None),
        ),
        (
            (None, None, ControlPolicy::GrantAll, Interactive),
            (View, true, Some(Answerer::Policy)),
        ),
        // A ceiling at interactive grants even under ask.
        (
            (None, Some(Interactive), ControlPolicy::Ask, Interactive),
            (View, true, Some(Answerer::Group)),
        ),
        // A ceiling at view: interactive waits for the sharer even under grant-all.
        (
            (Some(Off), Some(View), ControlPolicy::GrantAll, Interactive),
            (Off, false, None),
        ),
        (
            (Some(Off), Some(View), ControlPolicy::Ask, View),
            (Off, true, Some(Answerer::Group)),
        ),
        // A ceiling at none: every request asks the sharer.
        (
            (Some(Off), Some(Off), ControlPolicy::GrantAll, View),
            (Off, false, None),
        ),
        // A default level without a ceiling: the session's policy answers.
        (
            (Some(Off), None, ControlPolicy::GrantView, View),
            (Off, true, Some(Answerer::Policy)),
        ),
    ];
    for ((default_level, auto_grant, policy, requested), (at_join, at_once, by)) in table {
        let case = format!("{default_level:?} {auto_grant:?} {policy} asks {requested}");
        let mut b = book(policy, 5);
        put_in_group(&mut b, "gi", "helpdesk");
        let rules = GroupRules {
            default_level,
            auto_grant,
            channels: [("notes".to_owned(), ChannelAccess::Read)].into(),
        };
        put_group(&mut b, "helpdesk", rules).unwrap();
        let admit = admit_through(&mut b, 1, "gi");
        let Effect::Admit {
            level, channels, ..
        } = admit
        else {
            unreachable!()
        };
        assert_eq!(level, at_join, "{case}");
        assert_eq!(channels.get("notes"), Some(&ChannelAccess::Read), "{case}");
        let out = b
            .handle(
                T0,
                Input::RequestControl {
                    attendee: 1,
                    level: requested,
                },
            )
            .unwrap();
        let answered_by = out.iter().find_map(|e| match e {
            Effect::Emit(Event::ControlAnswered {
                by, granted: true, ..
            }) => Some(*by),
            _ => None,
        });
        assert_eq!(answered_by, by, "{case}");
        let a = b.attendee(T0, 1).unwrap();
        assert_eq!(a.level, if at_once { requested } else { at_join }, "{case}");
        assert_eq!(a.pending, (!at_once).then_some(requested), "{case}");
    }
}

#[test]
fn group_rules_change_live_and_are_bounded() {
    use tandem_proto::ChannelAccess;
    let mut b = book(ControlPolicy::Ask, 5);
    put_in_group(&mut b, "gi", "g");
    // Admitted before the group has rules: the session's default, no channels.
    let Effect::Admit {
        level, channels, ..
    } = admit_through(&mut b, 1, "gi")
    else {
        unreachable!()
    };
    assert_eq!((level, channels.len()), (ControlLevel::View, 0));
    // Rules set later apply to its next request and to the next joins.
    let rules = GroupRules {
        default_level: Some(ControlLevel::None),
        auto_grant: Some(ControlLevel::Interactive),
        channels: Default::default(),
    };
    put_group(&mut b, "g", rules.clone()).unwrap();
    assert_eq!(b.group("g"), Some(&rules));
    b.handle(
        T0,
        Input::RequestControl {
            attendee: 1,
            level: ControlLevel::Interactive,
        },
    )
    .unwrap();
    assert_eq!(level_of(&b, 1), ControlLevel::Interactive);
    let Effect::Admit { level, .. } = admit_through(&mut b, 2, "gi") else {
        unreachable!()
    };
    assert_eq!(level, ControlLevel::None);
    // Another invitation, another group: untouched.
    assert_eq!(level_of(&b, 1), ControlLevel::Interactive);
    put_in_group(&mut b, "other", "h");
    let Effect::Admit { level, .. } = admit_through(&mut b, 3, "other") else {
        unreachable!()
    };
    assert_eq!(level, ControlLevel::View);
    // Removed: the session's rules again.
    b.handle(T0, Input::RemoveGroup { name: "g".into() })
        .unwrap();
    assert_eq!(b.group("g"), None);
    assert_eq!(
        b.handle(T0, Input::RemoveGroup { name: "g".into() }),
        Err(BookError::UnknownGroup("g".into()))
    );
    let Effect::Admit { level, .. } = admit_through(&mut b, 4, "gi") else {
        unreachable!()
    };
    assert_eq!(level, ControlLevel::View);
    // Bounds: channels per group, groups per node (replacing one is fine).
    let many: std::collections::BTreeMap<String, ChannelAccess> = (0..=MAX_GROUP_CHANNELS)
        .map(|n| (format!("c{n}"), ChannelAccess::Read))
        .collect();
    let too_many = GroupRules {
        channels: many,
        ..GroupRules::default()
    };
    assert_eq!(
        put_group(&mut b, "x", too_many),
        Err(BookError::TooManyGroupChannels)
    );
    for n in 0..MAX_GROUPS {
        put_group(&mut b, &format!("g{n}"), GroupRules::default()).unwrap();
    }
    assert_eq!(
        put_group(&mut b, "one-more", GroupRules::default()),
        Err(BookError::TooManyGroups)
    );
    put_group(&mut b, "g0", rules).unwrap();
    assert_eq!(b.groups().count(), MAX_GROUPS);
}

fn level_of(b: &SessionBook, attendee: u64) -> ControlLevel {
    b.attendee(T0, attendee).unwrap().level
}

#[test]
fn wrong_passwords_slow_an_address_down_then_to_one_check_at_a_time_until_quiet() {
    let mut b = book(ControlPolicy::Ask, 100);
    let mut now = T0;
    let mut want = Duration::ZERO;
    let mut last = now;
    for n in 0..MAX_FAILURES as u64 {
        let out = join(&mut b, now, n, ip(9), "i");
        assert_eq!(delay(&out), Some(want), "attempt {n}");
        checked(&mut b, now, n, Verdict::Wrong);
        last = now;
        want = if want.is_zero() {
            FIRST_FAILURE_DELAY
        } else {
            (want * 2).min(MAX_FAILURE_DELAY)
        };
        now = now + Duration::from_secs(1);
    }
    // Past the bound: the longest delay, one check at a time; another
    // address is not slowed down.
    assert_eq!(
        delay(&join(&mut b, now, 100, ip(9), "i")),
        Some(MAX_FAILURE_DELAY)
    );
    assert_eq!(
        rejection(&join(&mut b, now, 101, ip(9), "i")),
        Some(RejectReason::TooManyAttempts)
    );
    assert_eq!(
        delay(&join(&mut b, now, 102, ip(8), "i")),
        Some(Duration::ZERO)
    );
    // A right password from that address (a NAT neighbour) is admitted.
    let out = checked(&mut b, now, 100, Verdict::Right { attendee: 100 });
    assert!(matches!(out.first(), Some(Effect::Admit { .. })), "{out:?}");
    // Still slowed just inside the window after the last failure...
    assert_eq!(
        delay(&join(&mut b, last + FAILURE_WINDOW, 103, ip(9), "i")),
        Some(MAX_FAILURE_DELAY)
    );
    checked(&mut b, last + FAILURE_WINDOW, 103, Verdict::Failed);
    // ...and forgiven once quiet for longer.
    let later = last + FAILURE_WINDOW + Duration::from_millis(1);
    assert_eq!(
        delay(&join(&mut b, later, 104, ip(9), "i")),
        Some(Duration::ZERO)
    );
}

/// Address `n` of one IPv6 /64 (or of `n` different /64s).
fn v6(prefix: u16, n: u16) -> IpAddr {
    IpAddr::from([0x2001, 0xdb8, 7, prefix, 0xa, 0, n >> 8, n & 0xff])
}

#[test]
fn a_thousand_wrong_passwords_from_a_thousand_addresses_of_one_64_are_throttled() {
    let mut b = book(ControlPolicy::Ask, 100);
    let mut now = T0;
    let (mut checked_fast, mut slowed, mut refused) = (0, 0, 0);
    for n in 0..1000u16 {
        let out = join(&mut b, now, u64::from(n), v6(1, n), "i");
        match (delay(&out), rejection(&out)) {
            (Some(d), _) => {
                if d == MAX_FAILURE_DELAY {
                    slowed += 1;
                } else {
                    checked_fast += 1;
                }
                // The guesser waits out the delay, then is told it is wrong.
                now = now + d;
                checked(&mut b, now, u64::from(n), Verdict::Wrong);
            }
            (None, Some(reason)) => {
                assert_eq!(reason, RejectReason::TooManyAttempts);
                refused += 1;
            }
            (None, None) => panic!("{out:?}"),
        }
        now = now + Duration::from_millis(1);
    }
    // Like one address: the first MAX_FAILURES with growing delays (those
    // after the sixth at the longest already), then the longest each.
    assert!(
        checked_fast <= 6,
        "{checked_fast} checked before the slow-down"
    );
    assert_eq!(checked_fast + slowed + refused, 1000);
    // A thousand guesses took the guesser more than 960 longest delays.
    assert!(
        now.since(T0) >= MAX_FAILURE_DELAY * 960,
        "{:?}",
        now.since(T0)
    );
    // Concurrent guesses from the block: one at a time.
    let first = join(&mut b, now, 5000, v6(1, 4000), "i");
    assert_eq!(delay(&first), Some(MAX_FAILURE_DELAY));
    assert_eq!(
        rejection(&join(&mut b, now, 5001, v6(1, 4001), "i")),
        Some(RejectReason::TooManyAttempts)
    );
    // A neighbour in another /64 is not slowed by the block, but the
    // invitation's budget (1000 failures > 100) now applies to everyone.
    assert_eq!(
        rejection(&join(&mut b, now, 5002, v6(2, 1), "i")),
        Some(RejectReason::TooManyAttempts)
    );
    // The right password from the block is checked and admitted.
    let out = checked(&mut b, now, 5000, Verdict::Right { attendee: 5000 });
    assert!(matches!(out.first(), Some(Effect::Admit { .. })), "{out:?}");
}

#[test]
fn guesses_spread_over_many_blocks_are_held_by_the_invitation_budget() {
    let mut b = book(ControlPolicy::Ask, 100);
    put(&mut b, "other", 5, false);
    let now = T0;
    // Each guess from a fresh /64: no per-address slow-down.
    for n in 0..INVITATION_FAILURE_BUDGET as u16 {
        let out = join(&mut b, now, u64::from(n), v6(n, 1), "i");
        assert_eq!(delay(&out), Some(Duration::ZERO), "guess {n}");
        checked(&mut b, now, u64::from(n), Verdict::Wrong);
    }
    // Budget spent: the longest delay and one at a time, from anywhere.
    assert_eq!(
        delay(&join(&mut b, now, 1000, v6(999, 1), "i")),
        Some(MAX_FAILURE_DELAY)
    );
    assert_eq!(
        rejection(&join(&mut b, now, 1001, v6(998, 1), "i")),
        Some(RejectReason::TooManyAttempts)
    );
    // Another invitation is not affected.
    assert_eq!(
        delay(&join(&mut b, now, 1002, v6(997, 1), "other")),
        Some(Duration::ZERO)
    );
    // The right password of the one under way is admitted.
    let out = checked(&mut b, now, 1000, Verdict::Right { attendee: 1000 });
    assert!(matches!(out.first(), Some(Effect::Admit { .. })), "{out:?}");
    // Forgiven after a quiet window.
    let later = now + FAILURE_WINDOW + Duration::from_millis(1);
    assert_eq!(
        delay(&join(&mut b, later, 1003, v6(996, 1), "i")),
        Some(Duration::ZERO)
    );
}

#[test]
fn a_repeated_pending_request_is_coalesced() {
    let mut b = book(ControlPolicy::Ask, 5);
    admit(&mut b, T0, 1);
    let ask = |b: &mut SessionBook, now: Time, level: ControlLevel| {
        b.handle(now, Input::RequestControl { attendee: 1, level })
            .unwrap()
    };
    let first = ask(&mut b, T0, ControlLevel::Interactive);
    assert!(
        matches!(first[..], [Effect::Emit(Event::ControlRequested { .. })]),
        "{first:?}"
    );
    let later = Time::from_millis(10_000);
    for _ in 0..1000 {
        assert_eq!(ask(&mut b, later, ControlLevel::Interactive), vec![]);
    }
    // Still activity, still one request waiting.
    let view = b.attendee(later, 1).unwrap();
    assert_eq!(view.idle, Duration::ZERO);
    assert_eq!(view.pending, Some(ControlLevel::Interactive));
}
