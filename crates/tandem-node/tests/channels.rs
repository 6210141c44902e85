//! Virtual channels (issue 7) over real QUIC on loopback: an in-process
//! node, attendees that are raw protocol clients (so a test can stop
//! reading exactly one stream), the sharer's side through the node's
//! `ChannelHub` library calls.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tandem_node::channels::{ChannelArrival, Target};
use tandem_node::{Node, NodeConfig, NodeError, SessionEvent, SourceKind};
use tandem_proto::{
    channel_stream_header, ChannelAccess, ChannelFlags, ChannelFrame, ChannelPriority,
    ClientMessage, ConnectionString, Hello, ServerMessage, STREAM_KIND_CHANNEL,
    STREAM_KIND_GRAPHICS,
};
use tandem_transport::{write_message, MessageReader, TransportConfig};

const PASSWORD: &str = "channels-pw";
const PATIENCE: Duration = Duration::from_secs(30);

struct TestNode {
    node: Node,
    session: String,
    ticket: ConnectionString,
    events: Arc<Mutex<Vec<SessionEvent>>>,
    _dir: tempfile::TempDir,
}

async fn start() -> TestNode {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig {
        data_dir: dir.path().join("data"),
        quic_listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        ..NodeConfig::default()
    };
    config.source.kind = SourceKind::Synthetic;
    config.source.width = 160;
    config.source.height = 100;
    config.session.frame_interval_ms = 20;
    config.invitation.create = true;
    config.invitation.password = Some(PASSWORD.into());
    config.invitation.attendee_limit = 16;
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
    let (invitation, _) = report.invitation.unwrap();
    TestNode {
        node,
        session: report.session.unwrap().id,
        ticket: invitation.connection_string.parse().unwrap(),
        events,
        _dir: dir,
    }
}

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

/// What a raw client has received.
#[derive(Default)]
struct Received {
    notices: Vec<ServerMessage>,
    /// Frames per channel id, in stream order.
    frames: HashMap<u32, Vec<ChannelFrame>>,
}

struct Client {
    conn: quinn::Connection,
    control_tx: quinn::SendStream,
    id: u64,
    received: Arc<Mutex<Received>>,
    graphics: Arc<AtomicU64>,
    _endpoint: quinn::Endpoint,
}

impl Client {
    async fn join(t: &TestNode, name: &str, stall: Vec<u32>) -> Client {
        let config = TransportConfig::default();
        let endpoint =
            tandem_transport::client_endpoint("127.0.0.1:0".parse().unwrap(), &config).unwrap();
        let addr = format!("{}:{}", t.ticket.addrs[0].host, t.ticket.addrs[0].port)
            .parse()
            .unwrap();
        let conn = tandem_transport::connect_with(&endpoint, addr, t.ticket.fingerprint, &config)
            .await
            .unwrap();
        let (mut control_tx, control_rx) = conn.open_bi().await.unwrap();
        let hello = Hello::new(&t.ticket.session, &t.ticket.invitation, name, PASSWORD);
        write_message(&mut control_tx, &ClientMessage::Hello(hello))
            .await
            .unwrap();
        let mut control = MessageReader::new(control_rx);
        let id = match control.next::<ServerMessage>().await.unwrap() {
            Some(ServerMessage::Welcome(w)) => w.attendee_id,
            other => panic!("expected welcome, got {other:?}"),
        };
        let received = Arc::new(Mutex::new(Received::default()));
        let graphics = Arc::new(AtomicU64::new(0));
        {
            let received = received.clone();
            tokio::spawn(async move {
                while let Ok(Some(msg)) = control.next::<ServerMessage>().await {
                    received.lock().unwrap().notices.push(msg);
                }
            });
        }
        {
            let (received, graphics, conn) = (received.clone(), graphics.clone(), conn.clone());
            tokio::spawn(async move {
                let mut held = Vec::new();
                while let Ok(mut stream) = conn.accept_uni().await {
                    let mut kind = [0u8; 1];
                    if stream.read_exact(&mut kind).await.is_err() {
                        continue;
                    }
                    match kind[0] {
                        STREAM_KIND_GRAPHICS => {
                            let graphics = graphics.clone();
                            tokio::spawn(async move {
                                if stream.read_to_end(64 << 20).await.is_ok() {
                                    graphics.fetch_add(1, Ordering::Relaxed);
                                }
                            });
                        }
                        STREAM_KIND_CHANNEL => {
                            let mut id = [0u8; 4];
                            stream.read_exact(&mut id).await.unwrap();
                            let id = u32::from_be_bytes(id);
                            if stall.contains(&id) {
                                // Hold it open, never read: a stuck reader.
                                held.push(stream);
                                continue;
                            }
                            let received = received.clone();
                            tokio::spawn(async move {
                                let mut reader = MessageReader::new(stream);
                                while let Ok(Some(f)) = reader.next::<ChannelFrame>().await {
                                    received
                                        .lock()
                                        .unwrap()
                                        .frames
                                        .entry(id)
                                        .or_default()
                                        .push(f);
                                }
                            });
                        }
                        other => panic!("unknown stream kind {other}"),
                    }
                }
            });
        }
        Client {
            conn,
            control_tx,
            id,
            received,
            graphics,
            _endpoint: endpoint,
        }
    }

    async fn join_channel(&mut self, name: &str) -> tandem_proto::ChannelInfo {
        write_message(
            &mut self.control_tx,
            &ClientMessage::ChannelJoin { name: name.into() },
        )
        .await
        .unwrap();
        let received = self.received.clone();
        eventually(&format!("joined {name}"), || {
            received
                .lock()
                .unwrap()
                .notices
                .iter()
                .find_map(|n| match n {
                    ServerMessage::ChannelJoined(info) if info.name == name => Some(info.clone()),
                    _ => None,
                })
        })
        .await
    }

    fn data(&self, channel: u32) -> Vec<Vec<u8>> {
        self.received
            .lock()
            .unwrap()
            .frames
            .get(&channel)
            .map(|fs| {
                fs.iter()
                    .filter_map(|f| match f {
                        ChannelFrame::Data(d) => Some(d.clone()),
                        ChannelFrame::Dropped(_) => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn dropped_markers(&self, channel: u32) -> u64 {
        self.received
            .lock()
            .unwrap()
            .frames
            .get(&channel)
            .map(|fs| {
                fs.iter()
                    .map(|f| match f {
                        ChannelFrame::Dropped(n) => *n,
                        ChannelFrame::Data(_) => 0,
                    })
                    .sum()
            })
            .unwrap_or(0)
    }

    fn notices(&self) -> Vec<ServerMessage> {
        self.received.lock().unwrap().notices.clone()
    }

    async fn wait_data(&self, channel: u32, n: usize) -> Vec<Vec<u8>> {
        eventually(&format!("{n} messages on channel {channel}"), || {
            let d = self.data(channel);
            (d.len() >= n).then_some(d)
        })
        .await
    }

    /// Opens this client's stream for `channel` and sends `messages` on it.
    async fn send(&self, channel: u32, messages: &[Vec<u8>]) -> quinn::SendStream {
        let mut s = self.conn.open_uni().await.unwrap();
        s.write_all(&channel_stream_header(channel)).await.unwrap();
        for m in messages {
            s.write_all(&ChannelFrame::Data(m.clone()).encode().unwrap())
                .await
                .unwrap();
        }
        s
    }
}

fn collect_arrivals(t: &TestNode) -> Arc<Mutex<Vec<Arc<ChannelArrival>>>> {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let mut rx = t.node.channels.subscribe();
    let sink = arrivals.clone();
    actix_rt::spawn(async move {
        while let Ok(a) = rx.recv().await {
            sink.lock().unwrap().push(a);
        }
    });
    arrivals
}

#[actix_rt::test]
async fn access_control_and_delivery_to_one_and_to_all() {
    let t = start().await;
    let hub = &t.node.channels;
    let arrivals = collect_arrivals(&t);
    let desc = hub
        .create_channel(&t.session, "chat", ChannelPriority::High, ChannelFlags(1))
        .unwrap();
    assert!(matches!(
        hub.create_channel(&t.session, "chat", ChannelPriority::Normal, ChannelFlags(0)),
        Err(NodeError::Conflict(_))
    ));
    assert!(matches!(
        hub.create_channel(
            &t.session,
            "bad name",
            ChannelPriority::Normal,
            ChannelFlags(0)
        ),
        Err(NodeError::Invalid(_))
    ));

    let mut writer = Client::join(&t, "writer", vec![]).await;
    let mut reader = Client::join(&t, "reader", vec![]).await;
    let mut outsider = Client::join(&t, "outsider", vec![]).await;
    hub.set_access(&t.session, "chat", writer.id, ChannelAccess::ReadWrite)
        .unwrap();
    hub.set_access(&t.session, "chat", reader.id, ChannelAccess::Read)
        .unwrap();
    // An attendee cannot create a channel: joining an unknown one is refused.
    write_message(
        &mut writer.control_tx,
        &ClientMessage::ChannelJoin {
            name: "made-up".into(),
        },
    )
    .await
    .unwrap();
    eventually("join refused", || {
        writer.notices().iter().find_map(|n| match n {
            ServerMessage::ChannelJoinRefused { name, .. } if name == "made-up" => Some(()),
            _ => None,
        })
    })
    .await;
    assert!(hub
        .list_channels(&t.session)
        .unwrap()
        .iter()
        .all(|c| c.name != "made-up"));

    let info = writer.join_channel("chat").await;
    assert_eq!(info.id, desc.id);
    assert_eq!(info.access, ChannelAccess::ReadWrite);
    assert_eq!(info.priority, ChannelPriority::High);
    assert_eq!(
        reader.join_channel("chat").await.access,
        ChannelAccess::Read
    );
    assert_eq!(
        outsider.join_channel("chat").await.access,
        ChannelAccess::None
    );
    let id = desc.id;

    // To all readers: writer and reader, not the outsider.
    let r = hub
        .send(&t.session, "chat", Target::AllReaders, b"to all".to_vec())
        .unwrap();
    assert_eq!((r.queued, r.dropped), (2, 0));
    // To one.
    let r = hub
        .send(
            &t.session,
            "chat",
            Target::One(reader.id),
            b"to reader".to_vec(),
        )
        .unwrap();
    assert_eq!(r.queued, 1);
    assert!(matches!(
        hub.send(&t.session, "chat", Target::One(outsider.id), b"x".to_vec()),
        Err(NodeError::Conflict(_))
    ));
    assert_eq!(
        reader.wait_data(id, 2).await,
        vec![b"to all".to_vec(), b"to reader".to_vec()]
    );
    writer.wait_data(id, 1).await;

    // A read-only attendee's write is refused and never reaches the sharer.
    let _s = reader.send(id, &[b"sneaky".to_vec()]).await;
    eventually("write refused", || {
        reader.notices().iter().find_map(|n| match n {
            ServerMessage::ChannelWriteRefused { channel, .. } if *channel == id => Some(()),
            _ => None,
        })
    })
    .await;
    // The writer's write reaches the sharer.
    let _w = writer.send(id, &[b"hello sharer".to_vec()]).await;
    let arrival = eventually("arrival", || arrivals.lock().unwrap().first().cloned()).await;
    assert_eq!(arrival.attendee, writer.id);
    assert_eq!(arrival.data, b"hello sharer");
    assert_eq!(arrival.channel, "chat");

    // Access changes at any time: the outsider becomes a reader.
    hub.set_access(&t.session, "chat", outsider.id, ChannelAccess::Read)
        .unwrap();
    eventually("access changed notice", || {
        outsider.notices().iter().find_map(|n| match n {
            ServerMessage::ChannelAccessChanged { channel, access }
                if *channel == id && *access == ChannelAccess::Read =>
            {
                Some(())
            }
            _ => None,
        })
    })
    .await;
    hub.send(&t.session, "chat", Target::AllReaders, b"now you".to_vec())
        .unwrap();
    // The outsider's first message is the one sent after it could read:
    // nothing from before reached it.
    assert_eq!(outsider.wait_data(id, 1).await, vec![b"now you".to_vec()]);
    assert_eq!(reader.wait_data(id, 3).await[2], b"now you");
    assert_eq!(
        arrivals.lock().unwrap().len(),
        1,
        "the refused write never arrived"
    );

    // Events: received and sent.
    eventually("channel events", || {
        let ev = t.events.lock().unwrap();
        let received = ev.iter().any(|e| matches!(e, SessionEvent::ChannelDataReceived { attendee, bytes: 12, .. } if *attendee == writer.id));
        let sent = ev
            .iter()
            .filter(|e| matches!(e, SessionEvent::ChannelDataSent { .. }))
            .count();
        (received && sent >= 3).then_some(())
    })
    .await;
    let metrics = t.node.metrics.render();
    assert!(
        metrics.contains(
            "tandem_channel_messages_total{direction=\"from_attendee\",result=\"refused\"} 1"
        ),
        "{metrics}"
    );
    t.node.shutdown().await;
}

#[actix_rt::test]
async fn order_is_kept_under_load_and_every_loss_is_reported() {
    let t = start().await;
    let hub = &t.node.channels;
    let arrivals = collect_arrivals(&t);
    let desc = hub
        .create_channel(&t.session, "bulk", ChannelPriority::Normal, ChannelFlags(0))
        .unwrap();
    let mut a = Client::join(&t, "a", vec![]).await;
    let mut b = Client::join(&t, "b", vec![]).await;
    for c in [&a, &b] {
        hub.set_access(&t.session, "bulk", c.id, ChannelAccess::ReadWrite)
            .unwrap();
    }
    a.join_channel("bulk").await;
    b.join_channel("bulk").await;

    // As fast as the sharer can: some may not fit the queues, but what
    // arrives is in order, and what does not is counted for each attendee.
    const N: u32 = 3000;
    let mut dropped_for = 0;
    for i in 0..N {
        let r = hub
            .send(
                &t.session,
                "bulk",
                Target::AllReaders,
                i.to_be_bytes().repeat(64),
            )
            .unwrap();
        dropped_for += r.dropped;
    }
    for c in [&a, &b] {
        let got = eventually("all messages or their loss accounted", || {
            let d = c.data(desc.id);
            (d.len() as u64 + c.dropped_markers(desc.id) == u64::from(N)).then_some(d)
        })
        .await;
        let seqs: Vec<u32> = got
            .iter()
            .map(|m| u32::from_be_bytes(m[..4].try_into().unwrap()))
            .collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "out of order: {seqs:?}"
        );
    }
    assert_eq!(
        (a.dropped_markers(desc.id) + b.dropped_markers(desc.id)) as usize,
        dropped_for,
        "the loss told in the streams is the loss reported to the sharer"
    );

    // Attendee -> sharer: order kept per channel.
    let msgs: Vec<Vec<u8>> = (0..500u32).map(|i| i.to_be_bytes().to_vec()).collect();
    let _s = a.send(desc.id, &msgs).await;
    let got = eventually("500 arrivals", || {
        let v = arrivals.lock().unwrap();
        (v.len() >= 500).then(|| v.iter().map(|a| a.data.clone()).collect::<Vec<_>>())
    })
    .await;
    assert_eq!(got, msgs);
    t.node.shutdown().await;
}

#[actix_rt::test]
async fn a_stuck_reader_delays_neither_graphics_nor_other_channels_nor_other_attendees() {
    let t = start().await;
    let hub = &t.node.channels;
    let slow = hub
        .create_channel(&t.session, "slow", ChannelPriority::Normal, ChannelFlags(0))
        .unwrap();
    let fast = hub
        .create_channel(&t.session, "fast", ChannelPriority::Normal, ChannelFlags(0))
        .unwrap();
    // `stuck` holds the "slow" stream open and never reads it.
    let mut stuck = Client::join(&t, "stuck", vec![slow.id]).await;
    let mut other = Client::join(&t, "other", vec![]).await;
    for c in [&stuck, &other] {
        for name in ["slow", "fast"] {
            hub.set_access(&t.session, name, c.id, ChannelAccess::Read)
                .unwrap();
        }
    }
    for name in ["slow", "fast"] {
        stuck.join_channel(name).await;
        other.join_channel(name).await;
    }

    // 60 KB messages in batches the other attendee keeps up with: the stuck
    // one's QUIC window (4 MiB) and queue (256) fill, the rest is dropped.
    let big = vec![0x5a; 60_000];
    let mut dropped = 0;
    let batches = 8;
    for batch in 0..batches {
        for _ in 0..100 {
            dropped += hub
                .send(&t.session, "slow", Target::AllReaders, big.clone())
                .unwrap()
                .dropped;
        }
        other.wait_data(slow.id, (batch + 1) * 100).await;
    }
    assert_eq!(
        other.data(slow.id).len(),
        batches * 100,
        "the other attendee lost nothing"
    );
    assert!(dropped > 0, "the stuck reader's queue overflowed");
    assert!(stuck.data(slow.id).is_empty());
    eventually("overflow notice", || {
        stuck.notices().iter().find_map(|n| match n {
            ServerMessage::ChannelOverflow { channel, .. } if *channel == slow.id => Some(()),
            _ => None,
        })
    })
    .await;
    let metrics = t.node.metrics.render();
    assert!(
        metrics.contains(
            "tandem_channel_messages_total{direction=\"to_attendee\",result=\"dropped\"}"
        ),
        "{metrics}"
    );

    // With "slow" jammed, graphics and the other channel still flow to it.
    let before = stuck.graphics.load(Ordering::Relaxed);
    for i in 0..200u32 {
        hub.send(
            &t.session,
            "fast",
            Target::One(stuck.id),
            i.to_be_bytes().to_vec(),
        )
        .unwrap();
    }
    let got = stuck.wait_data(fast.id, 200).await;
    let expected: Vec<Vec<u8>> = (0..200u32).map(|i| i.to_be_bytes().to_vec()).collect();
    assert_eq!(got, expected);
    eventually("graphics keep flowing", || {
        (stuck.graphics.load(Ordering::Relaxed) >= before + 10).then_some(())
    })
    .await;
    t.node.shutdown().await;
}

#[actix_rt::test]
async fn clipboard_access_follows_the_control_level_and_the_switch() {
    let t = start().await;
    let hub = &t.node.channels;
    assert!(!hub.clipboard(&t.session).unwrap().0, "off by default");
    let mut c = Client::join(&t, "c", vec![]).await;
    let info = c.join_channel("clipboard").await;
    assert_eq!(info.access, ChannelAccess::None);
    hub.set_clipboard(&t.session, true).unwrap();
    // Still none: the attendee is not interactive.
    t.node
        .manager
        .send(tandem_node::attendee_manager::SetControlLevel {
            attendee: c.id,
            level: tandem_proto::ControlLevel::Interactive,
        })
        .await
        .unwrap()
        .unwrap();
    eventually("clipboard read-write", || {
        c.notices().iter().find_map(|n| match n {
            ServerMessage::ChannelAccessChanged { access, .. }
                if *access == ChannelAccess::ReadWrite =>
            {
                Some(())
            }
            _ => None,
        })
    })
    .await;
    t.node.shutdown().await;
}
