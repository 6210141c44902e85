//! The sharing session's model (issue 3) proved over real QUIC on loopback:
//! an in-process node, attendees that are real `tandem_viewer` clients, and
//! the sharer's side driven through the AttendeeManager's messages.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tandem_capture::{Rect, SyntheticDesktop};
use tandem_node::attendee_manager::{
    AnswerControlRequest, AttendeeInfo, ChangeSharedRect, CloseSession, CreateInvitation,
    DisconnectAttendee, ListAttendees, ListInvitations, SetControlLevel, SetSessionPaused,
    UpdateInvitation,
};
use tandem_node::{ControlPolicy, Node, NodeConfig, NodeError, SessionEvent, SourceKind};
use tandem_proto::{
    ConnectionString, ControlLevel, DisconnectReason, InputEvent, MouseButton, RejectReason,
};
use tandem_viewer::{ViewerError, ViewerEvent, ViewerOptions, ViewerOutcome};
use tokio::sync::watch;

const PASSWORD: &str = "correct horse";
const SEED: u64 = 7;
const WIDTH: u32 = 160;
const HEIGHT: u32 = 100;
/// How long any awaited condition may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(15);

struct TestNode {
    node: Node,
    session: String,
    invitation: String,
    ticket: ConnectionString,
    input_log: PathBuf,
    events: Arc<Mutex<Vec<SessionEvent>>>,
    _dir: tempfile::TempDir,
}

struct Setup {
    limit: u32,
    default_level: ControlLevel,
    policy: ControlPolicy,
    freeze_after_frames: Option<u64>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            limit: 8,
            default_level: ControlLevel::View,
            policy: ControlPolicy::Ask,
            freeze_after_frames: None,
        }
    }
}

async fn start(setup: Setup) -> TestNode {
    let dir = tempfile::tempdir().unwrap();
    let input_log = dir.path().join("input.jsonl");
    let mut config = NodeConfig {
        data_dir: dir.path().join("data"),
        quic_listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        ..NodeConfig::default()
    };
    config.source.kind = SourceKind::Synthetic;
    config.source.width = WIDTH;
    config.source.height = HEIGHT;
    config.source.seed = SEED;
    config.source.freeze_after_frames = setup.freeze_after_frames;
    config.source.input_log = Some(input_log.clone());
    config.session.frame_interval_ms = 20;
    config.session.default_control_level = setup.default_level;
    config.session.control_policy = setup.policy;
    config.invitation.create = true;
    config.invitation.password = Some(PASSWORD.into());
    config.invitation.attendee_limit = setup.limit;
    let (node, report) = Node::start(config).await.expect("node starts");
    let events = Arc::new(Mutex::new(Vec::new()));
    {
        let mut rx = node.events.subscribe();
        let events = events.clone();
        actix_rt::spawn(async move {
            while let Ok(e) = rx.recv().await {
                events.lock().unwrap().push(e.event.clone());
            }
        });
    }
    let (invitation, _) = report.invitation.expect("startup invitation");
    let ticket: ConnectionString = invitation.connection_string.parse().unwrap();
    TestNode {
        node,
        session: report.session.expect("session").id,
        invitation: invitation.id,
        ticket,
        input_log,
        events,
        _dir: dir,
    }
}

impl TestNode {
    async fn attendees(&self) -> Vec<AttendeeInfo> {
        self.node
            .manager
            .send(ListAttendees { session: None })
            .await
            .unwrap()
    }

    async fn attendee(&self, id: u64) -> AttendeeInfo {
        self.attendees()
            .await
            .into_iter()
            .find(|a| a.id == id)
            .unwrap_or_else(|| panic!("attendee {id} is not listed"))
    }

    fn has_event(&self, pred: impl Fn(&SessionEvent) -> bool) -> bool {
        self.events.lock().unwrap().iter().any(pred)
    }

    async fn wait_event(&self, what: &str, pred: impl Fn(&SessionEvent) -> bool) {
        eventually(what, || self.has_event(&pred).then_some(())).await;
    }

    fn input_lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.input_log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn viewer(&self, name: &str, tweak: impl FnOnce(&mut ViewerOptions)) -> Viewer {
        self.viewer_with(name, PASSWORD, self.ticket.clone(), tweak)
    }

    fn viewer_with(
        &self,
        name: &str,
        password: &str,
        ticket: ConnectionString,
        tweak: impl FnOnce(&mut ViewerOptions),
    ) -> Viewer {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut options = ViewerOptions {
            ticket,
            name: name.into(),
            password: password.into(),
            frames: None,
            duration: Some(Duration::from_secs(60)),
            request_control: None,
            type_text: None,
            hold_keys: Vec::new(),
            stall: None,
            send_input: Vec::new(),
            stop: Some(stop_rx),
            latency: false,
        };
        tweak(&mut options);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let ended = seen.clone();
        let task = actix_rt::spawn(async move {
            let result = tandem_viewer::run(options, move |e| {
                sink.lock().unwrap().push((Instant::now(), e));
            })
            .await;
            if let Err(e) = &result {
                // For failure messages: how the viewer ended.
                let line = format!("[test] viewer failed: {e:?}");
                ended
                    .lock()
                    .unwrap()
                    .push((Instant::now(), ViewerEvent::Notice(line)));
            }
            result
        });
        Viewer {
            seen,
            stop: stop_tx,
            task: Some(task),
        }
    }

    /// One join attempt that must be refused; returns the reason, message and time taken.
    async fn refused(&self, password: &str) -> (RejectReason, String, Duration) {
        let started = Instant::now();
        let viewer = self.viewer_with("refused", password, self.ticket.clone(), |_| {});
        match viewer.finish().await {
            Err(ViewerError::Rejected { reason, message }) => (reason, message, started.elapsed()),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }
}

struct Viewer {
    seen: Arc<Mutex<Vec<(Instant, ViewerEvent)>>>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<Result<ViewerOutcome, ViewerError>>>,
}

#[derive(Clone, Copy, Debug)]
struct Update {
    at: Instant,
    seq: u64,
    base_seq: u64,
    width: u32,
    height: u32,
}

impl Viewer {
    fn notices(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, e)| match e {
                ViewerEvent::Notice(n) => Some(n.clone()),
                _ => None,
            })
            .collect()
    }

    fn notice_time(&self, needle: &str) -> Option<Instant> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .find_map(|(at, e)| match e {
                ViewerEvent::Notice(n) if n.contains(needle) => Some(*at),
                _ => None,
            })
    }

    fn updates(&self) -> Vec<Update> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(at, e)| match e {
                ViewerEvent::Update {
                    seq,
                    base_seq,
                    width,
                    height,
                    ..
                } => Some(Update {
                    at: *at,
                    seq: *seq,
                    base_seq: *base_seq,
                    width: *width,
                    height: *height,
                }),
                _ => None,
            })
            .collect()
    }

    fn welcome(&self) -> Option<tandem_proto::Welcome> {
        self.seen.lock().unwrap().iter().find_map(|(_, e)| match e {
            ViewerEvent::Connected { welcome, .. } => Some(welcome.clone()),
            _ => None,
        })
    }

    fn is_done(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Waits until joined; returns the attendee id.
    async fn connected(&self) -> u64 {
        eventually("the viewer to join", || {
            if self.is_done() && self.welcome().is_none() {
                panic!("the viewer ended before joining");
            }
            self.welcome().map(|w| w.attendee_id)
        })
        .await
    }

    async fn wait_notice(&self, needle: &str) {
        let deadline = Instant::now() + PATIENCE;
        while self.notice_time(needle).is_none() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for notice {needle:?}; notices: {:?}",
                self.notices()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_updates(&self, n: usize) {
        eventually(&format!("{n} updates"), || {
            (self.updates().len() >= n).then_some(())
        })
        .await;
    }

    /// Leaves (if still in) and returns how the viewing ended.
    async fn finish(mut self) -> Result<ViewerOutcome, ViewerError> {
        let _ = self.stop.send(true);
        let task = self.task.take().unwrap();
        tokio::time::timeout(PATIENCE, task)
            .await
            .expect("the viewer ends")
            .expect("the viewer task does not panic")
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Polls `check` until it yields a value, failing the test after [`PATIENCE`].
async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Like [`eventually`], for a condition that needs to ask the node.
async fn eventually_async<T, F: Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn key(keysym: u32, pressed: bool) -> serde_json::Value {
    serde_json::to_value(InputEvent::Key { keysym, pressed }).unwrap()
}

// ---------------------------------------------------------------------------

#[actix_rt::test]
async fn attendee_limit_refuses_the_next_join_with_a_clear_message() {
    let t = start(Setup {
        limit: 2,
        ..Setup::default()
    })
    .await;
    let a = t.viewer("a", |_| {});
    let b = t.viewer("b", |_| {});
    let a_id = a.connected().await;
    b.connected().await;

    let (reason, message, _) = t.refused(PASSWORD).await;
    assert_eq!(reason, RejectReason::AttendeeLimitReached);
    assert!(message.contains("attendee limit reached"), "{message}");
    assert!(
        message.contains('2'),
        "the message names the limit: {message}"
    );
    let invitations = t
        .node
        .manager
        .send(ListInvitations { session: None })
        .await
        .unwrap();
    assert_eq!(invitations.len(), 1);
    assert_eq!(invitations[0].attendees, 2);

    // The limit counts attendees connected now: one leaving frees a place.
    a.finish().await.unwrap();
    t.wait_event("a's disconnect", |e| {
        matches!(e, SessionEvent::AttendeeDisconnected { attendee, reason: DisconnectReason::ByAttendee, .. } if *attendee == a_id)
    })
    .await;
    let c = t.viewer("c", |_| {});
    c.connected().await;
    let (reason, _, _) = t.refused(PASSWORD).await;
    assert_eq!(reason, RejectReason::AttendeeLimitReached);

    // Raising the limit admits one more.
    let info = t
        .node
        .manager
        .send(UpdateInvitation {
            id: t.invitation.clone(),
            attendee_limit: Some(3),
            revoke: false,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!((info.attendee_limit, info.attendees), (3, 2));
    let d = t.viewer("d", |_| {});
    d.connected().await;
    assert_eq!(t.attendees().await.len(), 3);
    drop((b, c, d));
}

#[actix_rt::test]
async fn revocation_keeps_attendees_in_and_refuses_new_joins() {
    let t = start(Setup::default()).await;
    let a = t.viewer("a", |_| {});
    let a_id = a.connected().await;
    a.wait_updates(1).await;

    let info = t
        .node
        .manager
        .send(UpdateInvitation {
            id: t.invitation.clone(),
            attendee_limit: None,
            revoke: true,
        })
        .await
        .unwrap()
        .unwrap();
    assert!(info.revoked);
    assert_eq!(info.attendees, 1);

    let (reason, message, _) = t.refused(PASSWORD).await;
    assert_eq!(reason, RejectReason::InvitationRevoked);
    assert!(message.contains("revoked"), "{message}");

    // The attendee already in stays, and keeps receiving graphics.
    let before = a.updates().len();
    a.wait_updates(before + 3).await;
    assert!(t.attendees().await.iter().any(|x| x.id == a_id));
    assert!(a.notices().iter().all(|n| !n.starts_with("disconnected")));

    // Another invitation of the same session still admits.
    let other = t
        .node
        .manager
        .send(CreateInvitation {
            session: t.session.clone(),
            auth_string: Some("second".into()),
            group: None,
            password: "other password".into(),
            attendee_limit: 1,
        })
        .await
        .unwrap()
        .unwrap();
    assert!(!other.connection_string.contains("other password"));
    let ticket: ConnectionString = other.connection_string.parse().unwrap();
    let b = t.viewer_with("b", "other password", ticket, |_| {});
    b.connected().await;

    // Once out, the revoked invitation does not let the attendee back in.
    t.node
        .manager
        .send(DisconnectAttendee {
            attendee: a_id,
            message: "bye".into(),
        })
        .await
        .unwrap()
        .unwrap();
    a.finish().await.unwrap();
    let (reason, _, _) = t.refused(PASSWORD).await;
    assert_eq!(reason, RejectReason::InvitationRevoked);
    drop(b);
}

#[actix_rt::test]
async fn wrong_passwords_are_refused_counted_and_slowed_down() {
    let t = start(Setup::default()).await;
    // Wiring over real QUIC: refused and counted. How much each attempt is
    // slowed down is the session core's rule, tested on virtual time in
    // crates/tandem-session/tests/book.rs.
    let (reason, message, _) = t.refused("wrong").await;
    assert_eq!(reason, RejectReason::WrongPassword);
    assert!(message.contains("wrong password"), "{message}");
    t.refused("still wrong").await;
    let (reason, _, _) = t.refused("wrong again").await;
    assert_eq!(reason, RejectReason::WrongPassword);
    let counted = t
        .node
        .metrics
        .joins
        .with_label_values(&["wrong_password"])
        .get();
    assert_eq!(counted, 3);
    // The right password still gets in (slowed, but admitted).
    let v = t.viewer("ok", |_| {});
    v.connected().await;
    assert!(t.attendees().await.iter().all(|a| a.user == "ok"));
}

#[actix_rt::test]
async fn ask_policy_keeps_a_request_pending_until_the_sharer_grants_it() {
    let t = start(Setup::default()).await;
    let v = t.viewer("asker", |o| {
        o.request_control = Some(ControlLevel::Interactive)
    });
    let id = v.connected().await;
    t.wait_event("the request event", |e| {
        matches!(e, SessionEvent::ControlLevelChangeRequested { attendee, requested: ControlLevel::Interactive, .. } if *attendee == id)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let info = t.attendee(id).await;
    assert_eq!(info.control_level, ControlLevel::View);
    assert_eq!(info.pending_request, Some(ControlLevel::Interactive));
    // Only the pending state is shown while the sharer has not answered.
    assert_eq!(
        v.notices(),
        ["control level: reqctrl-interactive (asked the sharer for interactive)"],
    );

    t.node
        .manager
        .send(AnswerControlRequest {
            attendee: id,
            grant: true,
        })
        .await
        .unwrap()
        .unwrap();
    v.wait_notice("control request: granted interactive by the sharer")
        .await;
    v.wait_notice("control level: interactive").await;
    let info = t.attendee(id).await;
    assert_eq!(info.control_level, ControlLevel::Interactive);
    assert_eq!(info.pending_request, None);
    t.wait_event("the expected event", |e| matches!(e, SessionEvent::ControlLevelChangeAnswered { attendee, granted: true, by, .. } if *attendee == id && by == "sharer")).await;
    t.wait_event("the level update", |e| {
        matches!(e, SessionEvent::AttendeeUpdated { attendee, level: ControlLevel::Interactive, .. } if *attendee == id)
    })
    .await;
}

#[actix_rt::test]
async fn a_denied_request_is_answered_and_leaves_the_level() {
    let t = start(Setup::default()).await;
    let v = t.viewer("asker", |o| {
        o.request_control = Some(ControlLevel::Interactive)
    });
    let id = v.connected().await;
    eventually_async("the pending request", || async {
        (t.attendee(id).await.pending_request == Some(ControlLevel::Interactive)).then_some(())
    })
    .await;
    t.node
        .manager
        .send(AnswerControlRequest {
            attendee: id,
            grant: false,
        })
        .await
        .unwrap()
        .unwrap();
    v.wait_notice("control request: request for interactive denied by the sharer")
        .await;
    let info = t.attendee(id).await;
    assert_eq!(info.control_level, ControlLevel::View);
    assert_eq!(info.pending_request, None);
    t.wait_event("the expected event", |e| matches!(e, SessionEvent::ControlLevelChangeAnswered { attendee, granted: false, .. } if *attendee == id)).await;
    // Nothing pending any more: a second answer is a conflict.
    let again = t
        .node
        .manager
        .send(AnswerControlRequest {
            attendee: id,
            grant: true,
        })
        .await
        .unwrap();
    assert!(matches!(again, Err(NodeError::Conflict(_))), "{again:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        // The pending state (`reqctrl-…`) is shown while asking; no level after it.
        v.notices()
            .iter()
            .all(|n| !n.starts_with("control level") || n.starts_with("control level: reqctrl")),
        "the level must not change on deny: {:?}",
        v.notices()
    );
    assert!(!t.has_event(
        |e| matches!(e, SessionEvent::AttendeeUpdated { attendee, .. } if *attendee == id)
    ));

    // The sharer can still set the level directly.
    let info = t
        .node
        .manager
        .send(SetControlLevel {
            attendee: id,
            level: ControlLevel::None,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.control_level, ControlLevel::None);
    v.wait_notice("control level: none").await;
}

#[actix_rt::test]
async fn grant_view_policy_grants_view_at_once_and_interactive_waits() {
    let t = start(Setup {
        default_level: ControlLevel::None,
        policy: ControlPolicy::GrantView,
        ..Setup::default()
    })
    .await;
    // New attendees start at the session's default level: none, no graphics.
    let idle = t.viewer("idle", |_| {});
    let idle_id = idle.connected().await;
    assert_eq!(idle.welcome().unwrap().control_level, ControlLevel::None);
    t.wait_event("the expected event", |e| matches!(e, SessionEvent::AttendeeConnected { attendee, level: ControlLevel::None, .. } if *attendee == idle_id)).await;

    let viewer = t.viewer("viewer", |o| o.request_control = Some(ControlLevel::View));
    let viewer_id = viewer.connected().await;
    viewer
        .wait_notice("control request: granted view by the policy")
        .await;
    viewer.wait_notice("control level: view").await;
    viewer.wait_updates(3).await;
    t.wait_event("the expected event", |e| matches!(e, SessionEvent::ControlLevelChangeAnswered { attendee, granted: true, by, .. } if *attendee == viewer_id && by == "policy")).await;

    let driver = t.viewer("driver", |o| {
        o.request_control = Some(ControlLevel::Interactive)
    });
    let driver_id = driver.connected().await;
    eventually_async("the pending request", || async {
        (t.attendee(driver_id).await.pending_request == Some(ControlLevel::Interactive))
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let info = t.attendee(driver_id).await;
    assert_eq!(info.control_level, ControlLevel::None);
    assert_eq!(info.pending_request, Some(ControlLevel::Interactive));
    assert!(driver.updates().is_empty());
    t.node
        .manager
        .send(AnswerControlRequest {
            attendee: driver_id,
            grant: true,
        })
        .await
        .unwrap()
        .unwrap();
    driver.wait_notice("control level: interactive").await;
    // Granted a level that views: graphics start, with a key frame.
    driver.wait_updates(1).await;
    assert_eq!(driver.updates()[0].base_seq, 0);

    // The attendee at none still received nothing.
    assert!(
        idle.updates().is_empty(),
        "an attendee at none got graphics"
    );
    assert_eq!(t.attendee(idle_id).await.control_level, ControlLevel::None);
}

#[actix_rt::test]
async fn grant_all_policy_grants_interactive_at_once() {
    let t = start(Setup {
        policy: ControlPolicy::GrantAll,
        ..Setup::default()
    })
    .await;
    let v = t.viewer("driver", |o| {
        o.request_control = Some(ControlLevel::Interactive);
        o.type_text = Some("ok".into());
    });
    let id = v.connected().await;
    v.wait_notice("control request: granted interactive by the policy")
        .await;
    v.wait_notice("control level: interactive").await;
    v.wait_notice("typed 2 characters").await;
    assert_eq!(
        t.attendee(id).await.control_level,
        ControlLevel::Interactive
    );
    eventually("the typed keys in the input log", || {
        (t.input_lines().len() >= 4).then_some(())
    })
    .await;
}

#[actix_rt::test]
async fn input_from_a_view_attendee_is_dropped_with_one_notice() {
    let t = start(Setup::default()).await;
    let input = vec![
        InputEvent::MouseMove { x: 3, y: 4 },
        InputEvent::MouseButton {
            button: MouseButton::Left,
            pressed: true,
        },
        InputEvent::Key {
            keysym: 0x61,
            pressed: true,
        },
        InputEvent::Key {
            keysym: 0x61,
            pressed: false,
        },
    ];
    let v = t.viewer("watcher", |o| o.send_input = input.clone());
    let id = v.connected().await;
    v.wait_notice("input ignored").await;
    eventually("the dropped input to be counted", || {
        let dropped = t
            .node
            .metrics
            .input_events
            .with_label_values(&["dropped"])
            .get();
        (dropped >= input.len() as u64).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refusals: Vec<String> = v
        .notices()
        .into_iter()
        .filter(|n| n.contains("input ignored"))
        .collect();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert!(
        refusals[0].contains("view"),
        "the notice names the level: {}",
        refusals[0]
    );
    assert!(
        t.input_lines().is_empty(),
        "input reached the sink: {:?}",
        t.input_lines()
    );
    assert_eq!(
        t.node
            .metrics
            .input_events
            .with_label_values(&["accepted"])
            .get(),
        0
    );
    assert_eq!(t.attendee(id).await.control_level, ControlLevel::View);
}

#[actix_rt::test]
async fn input_from_an_interactive_attendee_reaches_the_sink_and_resets_idle_time() {
    let t = start(Setup::default()).await;
    let v = t.viewer("driver", |o| {
        o.request_control = Some(ControlLevel::Interactive);
        o.type_text = Some("hi".into());
    });
    let id = v.connected().await;
    eventually_async("the pending request", || async {
        (t.attendee(id).await.pending_request.is_some()).then_some(())
    })
    .await;
    // Idle for over a second.
    eventually_async("idle time to grow", || async {
        (t.attendee(id).await.idle_seconds >= 1).then_some(())
    })
    .await;
    assert!(t.input_lines().is_empty());

    t.node
        .manager
        .send(AnswerControlRequest {
            attendee: id,
            grant: true,
        })
        .await
        .unwrap()
        .unwrap();
    v.wait_notice("typed 2 characters").await;
    let expected = vec![
        key(0x68, true),
        key(0x68, false),
        key(0x69, true),
        key(0x69, false),
    ];
    eventually("the typed keys in the input log", || {
        let keys: Vec<_> = t
            .input_lines()
            .into_iter()
            .filter(|l| l.get("Key").is_some())
            .collect();
        (keys == expected).then_some(())
    })
    .await;
    assert_eq!(
        t.attendee(id).await.idle_seconds,
        0,
        "input resets idle time"
    );
    assert!(v.notices().iter().all(|n| !n.contains("input ignored")));

    // Taking control away releases held keys and stops admitting input.
    t.node
        .manager
        .send(SetControlLevel {
            attendee: id,
            level: ControlLevel::View,
        })
        .await
        .unwrap()
        .unwrap();
    v.wait_notice("control level: view").await;
    assert!(t.input_lines().iter().any(|l| l == "ReleaseAll"));
}

#[actix_rt::test]
async fn pause_stops_graphics_and_resume_catches_up() {
    let t = start(Setup::default()).await;
    let v = t.viewer("watcher", |_| {});
    v.connected().await;
    v.wait_updates(3).await;

    t.node
        .manager
        .send(SetSessionPaused {
            session: t.session.clone(),
            paused: true,
        })
        .await
        .unwrap()
        .unwrap();
    v.wait_notice("graphics paused by the sharer").await;
    t.wait_event("the paused event", |e| {
        matches!(e, SessionEvent::GraphicsPaused { .. })
    })
    .await;
    // An update already in flight when the pause was asked may still land.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = v.updates();
    let last = *before.last().unwrap();
    // A joiner during the pause is told graphics are paused.
    let late = t.viewer("late", |_| {});
    late.connected().await;
    assert!(late.welcome().unwrap().paused);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let during = v.updates();
    assert_eq!(
        during.len(),
        before.len(),
        "graphics updates arrived while paused: {:?}",
        &during[before.len()..]
    );

    let resumed_at = Instant::now();
    t.node
        .manager
        .send(SetSessionPaused {
            session: t.session.clone(),
            paused: false,
        })
        .await
        .unwrap()
        .unwrap();
    v.wait_notice("graphics resumed").await;
    t.wait_event("the resumed event", |e| {
        matches!(e, SessionEvent::GraphicsResumed { .. })
    })
    .await;
    v.wait_updates(before.len() + 1).await;
    let first = v.updates()[before.len()];
    assert!(first.at >= resumed_at);
    // One update brings the attendee up to date from where it was: nothing
    // was captured while paused, so there is nothing to replay.
    assert_eq!(first.base_seq, last.seq, "{first:?} after {last:?}");
    assert_eq!(first.seq, last.seq + 1, "{first:?} after {last:?}");
    assert_eq!((first.width, first.height), (WIDTH, HEIGHT));
    late.wait_notice("graphics resumed").await;
}

#[actix_rt::test]
async fn shared_rect_change_is_seen_bit_for_bit() {
    let freeze = 12;
    let t = start(Setup {
        freeze_after_frames: Some(freeze),
        ..Setup::default()
    })
    .await;
    let v = t.viewer("watcher", |_| {});
    v.connected().await;
    v.wait_updates(1).await;
    assert_eq!(v.welcome().unwrap().width, WIDTH);

    let rect = Rect::new(23, 17, 70, 45);
    let applied = t
        .node
        .manager
        .send(ChangeSharedRect {
            session: t.session.clone(),
            rect: Some(rect),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(applied, [23, 17, 70, 45]);
    v.wait_notice("shared area is now 70x45").await;
    t.wait_event("the rect event", |e| {
        matches!(
            e,
            SessionEvent::SharedRectChanged {
                x: 23,
                y: 17,
                width: 70,
                height: 45,
                ..
            }
        )
    })
    .await;
    eventually("an update of the new size", || {
        v.updates()
            .iter()
            .any(|u| (u.width, u.height) == (70, 45))
            .then_some(())
    })
    .await;
    // Wait until the desktop is frozen and everything is delivered: no update for a while.
    eventually("graphics to settle", || {
        let last = v.updates().last().unwrap().at;
        (last.elapsed() > Duration::from_millis(600)).then_some(())
    })
    .await;
    let late = t.viewer("late", |_| {});
    late.connected().await;
    let w = late.welcome().unwrap();
    assert_eq!((w.width, w.height), (70, 45));
    late.wait_updates(1).await;

    let expected = SyntheticDesktop::new(SEED, WIDTH, HEIGHT)
        .render(freeze)
        .crop(rect);
    for viewer in [v, late] {
        let outcome = viewer.finish().await.unwrap();
        let frame = outcome.frame.expect("a frame");
        assert_eq!((frame.width(), frame.height()), (70, 45));
        assert!(
            frame == expected,
            "the viewer's frame differs from the shared rectangle"
        );
    }
}

#[actix_rt::test]
async fn disconnect_with_reason_then_rejoin_with_the_same_invitation() {
    let t = start(Setup::default()).await;
    let v = t.viewer("kicked", |_| {});
    let id = v.connected().await;
    t.node
        .manager
        .send(DisconnectAttendee {
            attendee: id,
            message: "meeting over".into(),
        })
        .await
        .unwrap()
        .unwrap();
    // The viewer ends on the node's goodbye.
    v.wait_notice("disconnected: ").await;
    let notices_handle = v.seen.clone();
    let outcome = v.finish().await.unwrap();
    assert_eq!(
        outcome.disconnected,
        Some((DisconnectReason::BySharer, "meeting over".to_owned()))
    );
    let notices: Vec<String> = notices_handle
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(_, e)| match e {
            ViewerEvent::Notice(n) => Some(n.clone()),
            _ => None,
        })
        .collect();
    assert!(
        notices.contains(&"disconnected: disconnected by the sharer: meeting over".to_owned()),
        "{notices:?}"
    );
    t.wait_event("the disconnect event", |e| {
        matches!(e, SessionEvent::AttendeeDisconnected { attendee, reason: DisconnectReason::BySharer, .. } if *attendee == id)
    })
    .await;
    assert!(t.attendees().await.is_empty());
    // Unknown attendees cannot be disconnected twice.
    let again = t
        .node
        .manager
        .send(DisconnectAttendee {
            attendee: id,
            message: String::new(),
        })
        .await
        .unwrap();
    assert!(
        matches!(again, Err(NodeError::NotFound { .. })),
        "{again:?}"
    );

    let back = t.viewer("kicked", |_| {});
    let new_id = back.connected().await;
    assert_ne!(new_id, id);
    back.wait_updates(1).await;
    let info = t.attendee(new_id).await;
    assert_eq!(info.invitation, t.invitation);
    assert_eq!(info.control_level, ControlLevel::View);

    // An attendee that just goes away (its connection dropped, no Bye) is
    // recorded as disconnected by the attendee.
    drop(back);
    t.wait_event("the attendee's own disconnect", |e| {
        matches!(e, SessionEvent::AttendeeDisconnected { attendee, reason: DisconnectReason::ByAttendee, .. } if *attendee == new_id)
    })
    .await;
    assert!(t.attendees().await.is_empty());
}

#[actix_rt::test]
async fn closing_the_session_disconnects_everyone_and_refuses_joins() {
    let t = start(Setup::default()).await;
    let a = t.viewer("a", |_| {});
    let b = t.viewer("b", |o| o.request_control = Some(ControlLevel::Interactive));
    a.connected().await;
    b.connected().await;
    t.node
        .manager
        .send(CloseSession {
            session: t.session.clone(),
        })
        .await
        .unwrap()
        .unwrap();
    for v in [a, b] {
        v.wait_notice("disconnected: session closed: the sharer closed the session")
            .await;
        let outcome = v.finish().await.unwrap();
        let (reason, _) = outcome.disconnected.expect("told why");
        assert_eq!(reason, DisconnectReason::SessionClosed);
    }
    t.wait_event("the closed event", |e| {
        matches!(e, SessionEvent::SessionClosed { .. })
    })
    .await;
    assert_eq!(
        t.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(
                e,
                SessionEvent::AttendeeDisconnected {
                    reason: DisconnectReason::SessionClosed,
                    ..
                }
            ))
            .count(),
        2
    );
    assert!(t.attendees().await.is_empty());
    let (reason, message, _) = t.refused(PASSWORD).await;
    assert_eq!(reason, RejectReason::SessionClosed);
    assert!(message.contains("session closed"), "{message}");
    // A closed session stays closed.
    let again = t
        .node
        .manager
        .send(SetSessionPaused {
            session: t.session.clone(),
            paused: true,
        })
        .await
        .unwrap();
    assert!(again.is_err());
}

#[actix_rt::test]
async fn the_attendee_limit_holds_under_concurrent_joins() {
    let t = start(Setup {
        limit: 1,
        ..Setup::default()
    })
    .await;
    let viewers: Vec<Viewer> = (0..3).map(|i| t.viewer(&format!("v{i}"), |_| {})).collect();
    // Wait for each to join or be refused.
    eventually("every join to be answered", || {
        viewers
            .iter()
            .all(|v| v.welcome().is_some() || v.is_done())
            .then_some(())
    })
    .await;
    let mut admitted = 0;
    for v in viewers {
        match v.finish().await {
            Ok(_) => admitted += 1,
            Err(ViewerError::Rejected { reason, .. }) => {
                assert_eq!(reason, RejectReason::AttendeeLimitReached)
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(admitted, 1);
}

#[actix_rt::test]
async fn a_shared_rect_outside_the_desktop_is_refused_not_widened() {
    let t = start(Setup::default()).await;
    let small = Rect::new(10, 10, 40, 30);
    t.node
        .manager
        .send(ChangeSharedRect {
            session: t.session.clone(),
            rect: Some(small),
        })
        .await
        .unwrap()
        .unwrap();
    // Sharing an area wholly outside the desktop must not fall back to
    // sharing the whole desktop.
    let outside = t
        .node
        .manager
        .send(ChangeSharedRect {
            session: t.session.clone(),
            rect: Some(Rect::new(WIDTH + 5, 0, 50, 50)),
        })
        .await
        .unwrap();
    // Refused as a conflict with the desktop's size (HTTP 409).
    assert!(
        matches!(outside, Err(NodeError::Conflict(_))),
        "{outside:?}"
    );
    let v = t.viewer("watcher", |_| {});
    v.connected().await;
    let w = v.welcome().unwrap();
    assert_eq!(
        (w.width, w.height),
        (40, 30),
        "the previous area stays shared"
    );
    v.wait_updates(1).await;
    assert!(v.updates().iter().all(|u| (u.width, u.height) == (40, 30)));
}

#[actix_rt::test]
async fn pointer_input_is_in_shared_rect_coordinates() {
    let t = start(Setup {
        policy: ControlPolicy::GrantAll,
        ..Setup::default()
    })
    .await;
    t.node
        .manager
        .send(ChangeSharedRect {
            session: t.session.clone(),
            rect: Some(Rect::new(10, 20, 50, 40)),
        })
        .await
        .unwrap()
        .unwrap();
    // The request is answered (granted by policy) before the input that
    // follows it on the control stream is looked at.
    let v = t.viewer("driver", |o| {
        o.request_control = Some(ControlLevel::Interactive);
        o.send_input = vec![
            InputEvent::MouseMove { x: 5, y: 6 },
            InputEvent::MouseMove { x: 60, y: 6 },
            InputEvent::MouseMove { x: 49, y: 39 },
        ];
    });
    v.connected().await;
    v.wait_notice("control level: interactive").await;
    let expected = vec![
        serde_json::to_value(InputEvent::MouseMove { x: 15, y: 26 }).unwrap(),
        serde_json::to_value(InputEvent::MouseMove { x: 59, y: 59 }).unwrap(),
    ];
    eventually("the moves in the input log", || {
        (t.input_lines() == expected).then_some(())
    })
    .await;
    assert_eq!(
        t.node
            .metrics
            .input_events
            .with_label_values(&["dropped"])
            .get(),
        1,
        "the move outside the shared area is dropped"
    );
}
