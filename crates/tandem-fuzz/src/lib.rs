//! The bodies of the fuzz targets: one function per decoder of untrusted
//! bytes, each taking arbitrary bytes and panicking only on a bug (a decoder
//! must refuse bad input with an error, never panic, loop or allocate past
//! its bounds). `fuzz/` (cargo-fuzz layout, its own workspace) calls them
//! from libFuzzer; `tests/corpus.rs` replays the committed corpus
//! (`fuzz/corpus/<target>/`) through the same functions with `cargo test` on
//! stable, so every crash found stays fixed.

use std::time::Duration;

use tandem_codec::{Decoder, EncodedUpdate, Encoder, EncoderConfig, Frame};
use tandem_node::cluster::gossip::{GossipKeys, Opener};
use tandem_node::cluster::wire::{parse_link_stream, LinkReply, LinkRequest};
use tandem_proto::{
    parse_channel_header, parse_uni_stream, ChannelFrame, ClientMessage, ConnectionString,
    CursorPosition, CursorShape, FrameDecoder, ServerMessage, UniStream,
};

/// A target body: arbitrary bytes in, a panic only on a bug.
pub type Target = fn(&[u8]);

/// Every target, by the name of its corpus directory and fuzz binary.
pub const TARGETS: &[(&str, Target)] = &[
    ("control_frames", control_frames),
    ("graphics", graphics),
    ("cursor", cursor),
    ("channel_stream", channel_stream),
    ("connection_string", connection_string),
    ("relay_link", relay_link),
    ("gossip", gossip),
    ("member_info", member_info),
    ("config", config),
];

/// Feeds `data` to a [`FrameDecoder`] in pieces (the first byte picks
/// their size, as a network would split it) and decodes every frame as
/// both a client and a server message. A decoded message must encode again.
pub fn control_frames(data: &[u8]) {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(split).max(1);
    let mut client = FrameDecoder::new();
    let mut server = FrameDecoder::new();
    for piece in rest.chunks(step) {
        client.push(piece);
        server.push(piece);
        while let Ok(Some(msg)) = client.next_message::<ClientMessage>() {
            tandem_proto::encode_message(&msg).expect("a decoded client message encodes");
        }
        while let Ok(Some(msg)) = server.next_message::<ServerMessage>() {
            tandem_proto::encode_message(&msg).expect("a decoded server message encodes");
        }
    }
}

/// A small desktop the graphics target's deltas apply to (seeds are
/// deltas against it, so the fuzzer starts from updates the decoder takes).
pub fn graphics_base() -> (Frame, EncodedUpdate) {
    let mut frame = Frame::filled(96, 80, 0x0030_4050);
    for y in 10..30 {
        for x in 5..70 {
            frame.set(x, y, (x * 31 + y * 7) & 0x00ff_ffff);
        }
    }
    let mut encoder = Encoder::new(EncoderConfig::default());
    let key = encoder
        .encode(frame.clone(), None)
        .expect("a first frame gives a key frame");
    (frame, key)
}

/// A graphics stream (kind byte, the capture time when stamped, then an
/// update) through
/// `EncodedUpdate::from_bytes` and `Decoder::apply`, both on a fresh
/// decoder (key frames) and on one holding [`graphics_base`] (deltas).
/// A failed apply must leave the decoder's picture unchanged.
pub fn graphics(data: &[u8]) {
    let Ok(stream) = parse_uni_stream(data) else {
        return;
    };
    if let UniStream::StampedGraphics {
        captured_unix_us, ..
    } = stream
    {
        // The stamp is the 8 bytes after the kind byte, whatever they are.
        assert_eq!(data[1..9], captured_unix_us.to_be_bytes());
    }
    let Ok(update) = EncodedUpdate::from_bytes(stream.payload()) else {
        return;
    };
    // Re-encoding what was decoded gives bytes that decode to the same update.
    let again = EncodedUpdate::from_bytes(&update.to_bytes()).expect("re-encoded update decodes");
    assert_eq!(again.seq, update.seq);
    let mut fresh = Decoder::new();
    let _ = fresh.apply(&update);
    let (_, key) = graphics_base();
    let mut delta = Decoder::new();
    delta.apply(&key).expect("the base key frame applies");
    let before = delta.frame().cloned();
    if delta.apply(&update).is_err() {
        assert_eq!(
            delta.frame(),
            before.as_ref(),
            "a failed update changed the picture"
        );
    }
}

/// A cursor-position datagram and a pointer image (postcard, then its checks).
pub fn cursor(data: &[u8]) {
    if let Ok(pos) = CursorPosition::from_datagram(data) {
        assert_eq!(CursorPosition::from_datagram(&pos.to_datagram()), Ok(pos));
    }
    if let Ok(shape) = postcard::from_bytes::<CursorShape>(data) {
        let _ = shape.validate();
    }
}

/// A channel stream: its header, then frames (in pieces of up to 4 KiB).
/// A decoded frame is within the documented limit.
pub fn channel_stream(data: &[u8]) {
    let header = data.get(..tandem_proto::CHANNEL_HEADER_LEN).unwrap_or(data);
    if parse_channel_header(header).is_err() {
        return;
    }
    let mut frames = FrameDecoder::new();
    for piece in data[header.len()..].chunks(4096) {
        frames.push(piece);
        while let Ok(Some(frame)) = frames.next_message::<ChannelFrame>() {
            frame
                .validate()
                .expect("a decoded channel frame is within its limit");
        }
    }
}

/// A connection string or a reverse one: what parses prints back to the same value.
pub fn connection_string(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ticket) = text.parse::<ConnectionString>() {
        let printed = ticket.to_string();
        let again: ConnectionString = printed.parse().expect("a printed ticket parses");
        assert_eq!(again, ticket);
    }
    // The reverse connection string a listening viewer prints, which the
    // admin API reads from the operator.
    if let Ok(reverse) = text.parse::<tandem_proto::ReverseConnectionString>() {
        let printed = reverse.to_string();
        let again: tandem_proto::ReverseConnectionString =
            printed.parse().expect("a printed reverse string parses");
        assert_eq!(again, reverse);
    }
}

/// Relay-link traffic: the graphics stream header of a link, and the
/// request and reply messages as the link's control stream frames them.
pub fn relay_link(data: &[u8]) {
    if let Some((_, rest)) = parse_link_stream(data) {
        assert!(rest.len() <= data.len());
    }
    let mut requests = FrameDecoder::new();
    let mut replies = FrameDecoder::new();
    requests.push(data);
    replies.push(data);
    while let Ok(Some(_)) = requests.next_message::<LinkRequest>() {}
    while let Ok(Some(_)) = replies.next_message::<LinkReply>() {}
}

/// A sealed gossip datagram through the opener (authentication, replay
/// window), at a fixed time: nothing forged opens.
pub fn gossip(data: &[u8]) {
    let keys = GossipKeys::new(b"fuzz-secret-0123456789abcdef-0123", "fuzz");
    let mut opener = Opener::new(keys, Duration::from_secs(60));
    let _ = opener.open(data, 1_700_000_000_000);
}

/// The cluster identity's fingerprint the `member_info` target checks against.
const MEMBER_INFO_FP: &str = "abababababababababababababababababababababababababababababababab";

/// Splits `data` into a gossiped member's state as an opened gossip
/// datagram hands it to the directory: the first line is the node id, each
/// further line `key=value` (text, invalid UTF-8 replaced).
fn member_state(data: &[u8]) -> (String, std::collections::HashMap<String, String>) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let id = lines.next().unwrap_or_default().to_owned();
    let kv = lines
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    (id, kv)
}

/// A member's gossiped state (`member_info` keys) through the checks that
/// turn it into a directory entry: whatever a member publishes, an accepted
/// entry holds only well-formed, bounded values.
pub fn member_info(data: &[u8]) {
    use tandem_node::cluster::membership::{member_from_state, MAX_PUBLISHED_SESSIONS};
    let (node_id, kv) = member_state(data);
    let id = chitchat::ChitchatId::new(node_id, 1, "127.0.0.1:7000".parse().unwrap());
    let Ok(member) = member_from_state(&id, &kv, MEMBER_INFO_FP) else {
        return;
    };
    assert!(tandem_proto::is_valid_id(&member.id));
    assert!(member.sessions.len() <= MAX_PUBLISHED_SESSIONS);
    for (i, s) in member.sessions.iter().enumerate() {
        assert!(tandem_proto::is_valid_id(s), "{s:?}");
        assert!(!member.sessions[..i].contains(s), "{s:?} twice");
    }
    assert_eq!(member.fingerprint.as_deref(), Some(MEMBER_INFO_FP));
    for addr in [&member.admin_addr, &member.link_addr]
        .into_iter()
        .flatten()
    {
        assert!(addr.parse::<std::net::SocketAddr>().is_ok(), "{addr:?}");
    }
}

/// The node's configuration file.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = tandem_node::NodeConfig::from_toml(text);
}

/// Seed inputs per target: well-formed examples the fuzzer mutates from.
/// `tests/corpus.rs` checks they are in the committed corpus (and writes
/// them with `TANDEM_WRITE_SEEDS=1`).
pub fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    use tandem_node::cluster::gossip::Sealer;
    use tandem_node::cluster::wire::LinkUpdate;
    use tandem_proto::{
        channel_stream_header, encode_message, graphics_stream_header,
        stamped_graphics_stream_header, ChannelAccess, ChannelFlags, ChannelInfo, ChannelPriority,
        ControlLevel, Hello, InputEvent, Welcome,
    };

    let frames = |step: u8, parts: Vec<Vec<u8>>| {
        let mut out = vec![step];
        for p in parts {
            out.extend_from_slice(&p);
        }
        out
    };
    let enc = |m: &dyn erased::Encode| m.encode();
    let mut out = Vec::new();
    out.push((
        "control_frames",
        "hello-welcome",
        frames(
            7,
            vec![
                enc(&ClientMessage::Hello(Hello::new(
                    "sess", "inv", "alice", "pw",
                ))),
                enc(&ServerMessage::Welcome(Welcome {
                    attendee_id: 3,
                    session: "sess".into(),
                    control_level: ControlLevel::View,
                    width: 1920,
                    height: 1080,
                    paused: false,
                })),
                enc(&ClientMessage::Input(InputEvent::Key {
                    keysym: 0x61,
                    pressed: true,
                })),
                enc(&ClientMessage::ChannelJoin {
                    name: "clipboard".into(),
                }),
                enc(&ClientMessage::StampGraphics),
                enc(&ServerMessage::ChannelJoined(ChannelInfo {
                    id: 1,
                    name: "clipboard".into(),
                    priority: ChannelPriority::Normal,
                    flags: ChannelFlags(0),
                    access: ChannelAccess::ReadWrite,
                })),
            ],
        ),
    ));
    let (mut frame, key) = graphics_base();
    let mut stream = graphics_stream_header().to_vec();
    stream.extend_from_slice(&key.to_bytes());
    out.push(("graphics", "key-frame", stream));
    let mut stream = stamped_graphics_stream_header(1_764_654_000_123_456).to_vec();
    stream.extend_from_slice(&key.to_bytes());
    out.push(("graphics", "stamped-key-frame", stream));
    let mut encoder = Encoder::new(EncoderConfig::default());
    encoder.encode(frame.clone(), None);
    for x in 20..40 {
        frame.set(x, 50, 0x00ff_0000);
    }
    if let Some(delta) = encoder.encode(frame, None) {
        let mut stream = graphics_stream_header().to_vec();
        stream.extend_from_slice(&delta.to_bytes());
        out.push(("graphics", "delta", stream));
    }
    let pos = CursorPosition {
        seq: 9,
        x: 100,
        y: -3,
        shape: 2,
        visible: true,
    };
    out.push(("cursor", "position", pos.to_datagram()));
    let shape = CursorShape {
        id: 2,
        width: 2,
        height: 2,
        hot_x: 1,
        hot_y: 0,
        bgra: vec![255; 16],
    };
    out.push(("cursor", "shape", postcard::to_allocvec(&shape).unwrap()));
    let mut channel = channel_stream_header(1).to_vec();
    channel.extend_from_slice(
        &ChannelFrame::Data(b"copied text".to_vec())
            .encode()
            .unwrap(),
    );
    channel.extend_from_slice(&ChannelFrame::Dropped(4).encode().unwrap());
    out.push(("channel_stream", "data-dropped", channel));
    out.push((
        "connection_string",
        "two-addrs",
        format!(
            "tandem://127.0.0.1:4433,[::1]:4434,node.example:1/s/sess/?inv=inv-1&fp={}",
            "ab".repeat(32)
        )
        .into_bytes(),
    ));
    out.push((
        "connection_string",
        "reverse",
        format!("tandem-reverse://[::1]:5000/?fp={}", "cd".repeat(32)).into_bytes(),
    ));
    let head = postcard::to_allocvec(&LinkUpdate {
        session: "sess".into(),
        captured_unix_ms: 1_700_000_000_000,
    })
    .unwrap();
    let mut link = (head.len() as u16).to_be_bytes().to_vec();
    link.extend_from_slice(&head);
    link.extend_from_slice(&key.to_bytes());
    out.push(("relay_link", "update-stream", link));
    let mut requests = encode_message(&LinkRequest::Hello {
        node_id: "node-2".into(),
    })
    .unwrap();
    requests.extend(
        encode_message(&LinkRequest::Subscribe {
            session: "sess".into(),
        })
        .unwrap(),
    );
    out.push(("relay_link", "requests", requests));
    let replies = encode_message(&LinkReply::Subscribed {
        width: 640,
        height: 480,
    })
    .unwrap();
    out.push(("relay_link", "replies", replies));
    let keys = GossipKeys::new(b"fuzz-secret-0123456789abcdef-0123", "fuzz");
    let sealed = Sealer::new(&keys)
        .seal(b"a gossip message", 1_700_000_000_000)
        .unwrap();
    out.push(("gossip", "sealed", sealed));
    out.push((
        "member_info",
        "two-sessions",
        format!(
            "node-2\nquic=127.0.0.1:4433\nadmin=127.0.0.1:8080\nlink=127.0.0.1:4434\n\
             fp={MEMBER_INFO_FP}\nsessions=desk,lab-1\nattendees=3\nrelay_links=1"
        )
        .into_bytes(),
    ));
    out.push((
        "member_info",
        "no-sessions",
        format!("n1\nquic=[::1]:5000\nfp={MEMBER_INFO_FP}\nsessions=\nattendees=0\nrelay_links=0")
            .into_bytes(),
    ));
    out.push((
        "config",
        "node-toml",
        include_bytes!("../../../configs/node.toml").to_vec(),
    ));
    out
}

/// Lets `seeds` frame messages of different types in one list.
mod erased {
    pub trait Encode {
        fn encode(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Encode for T {
        fn encode(&self) -> Vec<u8> {
            tandem_proto::encode_message(self).expect("a seed message encodes")
        }
    }
}
