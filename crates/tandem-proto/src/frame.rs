//! Control-stream framing: a `u32` big-endian payload length, then the
//! postcard-encoded message.
//!
//! [`encode_message`] makes one frame; [`FrameDecoder`] is the sans-IO
//! receiving side: the caller pushes bytes as they arrive and pops whole
//! messages. Both enforce [`MAX_CONTROL_MESSAGE`].

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{ProtoError, MAX_CONTROL_MESSAGE};

/// Size of the length prefix of a control frame, in bytes.
pub const FRAME_HEADER_LEN: usize = 4;

/// Largest whole control frame, length prefix included.
pub const MAX_FRAME_LEN: usize = FRAME_HEADER_LEN + MAX_CONTROL_MESSAGE;

/// Encodes `msg` as one control frame: a `u32` big-endian payload length,
/// then the postcard bytes. Fails if the payload exceeds [`MAX_CONTROL_MESSAGE`].
pub fn encode_message<T: Serialize>(msg: &T) -> Result<Vec<u8>, ProtoError> {
    let mut buf =
        postcard::to_extend(msg, vec![0u8; FRAME_HEADER_LEN]).map_err(ProtoError::Encode)?;
    let len = buf.len() - FRAME_HEADER_LEN;
    if len > MAX_CONTROL_MESSAGE {
        return Err(ProtoError::MessageTooLarge {
            len,
            max: MAX_CONTROL_MESSAGE,
        });
    }
    // `len <= MAX_CONTROL_MESSAGE`, so it fits a u32.
    buf[..FRAME_HEADER_LEN].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(buf)
}

/// Decodes one frame payload (without its length prefix) as a `T`.
///
/// The whole payload must be one message: trailing bytes are an error.
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, ProtoError> {
    if payload.len() > MAX_CONTROL_MESSAGE {
        return Err(ProtoError::MessageTooLarge {
            len: payload.len(),
            max: MAX_CONTROL_MESSAGE,
        });
    }
    let (msg, rest) = postcard::take_from_bytes::<T>(payload).map_err(ProtoError::Decode)?;
    if !rest.is_empty() {
        return Err(ProtoError::TrailingBytes { count: rest.len() });
    }
    Ok(msg)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Framing intact.
    Ok,
    /// Framing lost; the error is reported once the frames before it are drained.
    Failed(ProtoError),
    /// The error was reported; nothing more will come out.
    Poisoned,
}

/// Sans-IO incremental decoder of control frames.
///
/// Push bytes as they arrive with [`push`](Self::push), then call
/// [`next_message`](Self::next_message) until it returns `Ok(None)`.
///
/// Bounds: an announced length above [`MAX_CONTROL_MESSAGE`] is rejected as
/// soon as its 4-byte header arrives, without waiting for (or buffering) the
/// payload. The internal buffer never grows beyond [`MAX_FRAME_LEN`] plus one
/// pushed chunk: pushing while a whole maximal frame is still undrained fails
/// the decoder with [`ProtoError::BufferOverflow`].
///
/// Errors: a payload that is not a valid message yields
/// [`ProtoError::Decode`] (or [`ProtoError::TrailingBytes`]) for that frame
/// only, and decoding continues with the next frame. A framing error
/// (oversized length, overflow) is final: the whole frames received before it
/// are still returned, then the error, then [`ProtoError::Poisoned`] forever.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Start of the first undecoded frame in `buf`.
    start: usize,
    /// Start of the first frame whose header has not been checked yet.
    scan: usize,
    state: State,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        FrameDecoder {
            buf: Vec::new(),
            start: 0,
            scan: 0,
            state: State::Ok,
        }
    }

    /// Appends bytes received on the stream. Ignored once the decoder has failed.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.state != State::Ok || bytes.is_empty() {
            return;
        }
        if self.buffered() >= MAX_FRAME_LEN {
            self.fail(self.buf.len(), ProtoError::BufferOverflow);
            return;
        }
        self.compact();
        self.buf.extend_from_slice(bytes);
        self.check_headers();
    }

    /// Pops the next whole message, `Ok(None)` if more bytes are needed.
    pub fn next_message<T: DeserializeOwned>(&mut self) -> Result<Option<T>, ProtoError> {
        let avail = &self.buf[self.start..];
        if avail.len() >= FRAME_HEADER_LEN {
            let len = frame_len(avail);
            if len <= MAX_CONTROL_MESSAGE && avail.len() - FRAME_HEADER_LEN >= len {
                let end = FRAME_HEADER_LEN + len;
                let result = decode_payload(&avail[FRAME_HEADER_LEN..end]);
                self.start += end;
                if self.start == self.buf.len() {
                    self.reset_buffer();
                }
                return result.map(Some);
            }
        }
        match std::mem::replace(&mut self.state, State::Poisoned) {
            State::Ok => {
                self.state = State::Ok;
                Ok(None)
            }
            State::Failed(e) => {
                self.reset_buffer();
                Err(e)
            }
            State::Poisoned => Err(ProtoError::Poisoned),
        }
    }

    /// Bytes received and not yet returned as messages.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Whether a framing error has occurred (the stream should be closed).
    pub fn is_failed(&self) -> bool {
        self.state != State::Ok
    }

    /// Checks the length prefix of every frame whose header is now complete.
    fn check_headers(&mut self) {
        while self.scan + FRAME_HEADER_LEN <= self.buf.len() {
            let len = frame_len(&self.buf[self.scan..]);
            if len > MAX_CONTROL_MESSAGE {
                self.fail(
                    self.scan,
                    ProtoError::MessageTooLarge {
                        len,
                        max: MAX_CONTROL_MESSAGE,
                    },
                );
                return;
            }
            self.scan += FRAME_HEADER_LEN + len;
        }
    }

    /// Keeps only the whole frames before `keep_until`, then records `error`.
    fn fail(&mut self, keep_until: usize, error: ProtoError) {
        let mut end = self.start;
        while end + FRAME_HEADER_LEN <= keep_until {
            let len = frame_len(&self.buf[end..]);
            if len > MAX_CONTROL_MESSAGE || end + FRAME_HEADER_LEN + len > keep_until {
                break;
            }
            end += FRAME_HEADER_LEN + len;
        }
        self.buf.truncate(end);
        self.scan = end;
        self.state = State::Failed(error);
    }

    /// Drops the consumed prefix of the buffer.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.scan -= self.start;
            self.start = 0;
        }
    }

    /// Empties the buffer, giving back memory left by one large push.
    fn reset_buffer(&mut self) {
        self.buf.clear();
        self.start = 0;
        self.scan = 0;
        if self.buf.capacity() > 2 * MAX_FRAME_LEN {
            self.buf.shrink_to(MAX_FRAME_LEN);
        }
    }
}

/// Reads the length prefix at the start of `bytes` (at least 4 long).
fn frame_len(bytes: &[u8]) -> usize {
    let mut header = [0u8; FRAME_HEADER_LEN];
    header.copy_from_slice(&bytes[..FRAME_HEADER_LEN]);
    u32::from_be_bytes(header) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        ClientMessage, ControlLevel, DisconnectReason, Hello, InputEvent, MouseButton,
        RejectReason, ServerMessage, Welcome,
    };
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        ".{0,24}"
    }

    fn level() -> impl Strategy<Value = ControlLevel> {
        prop::sample::select(ControlLevel::ALL.to_vec())
    }

    fn input() -> impl Strategy<Value = InputEvent> {
        let button = prop::sample::select(vec![
            MouseButton::Left,
            MouseButton::Middle,
            MouseButton::Right,
            MouseButton::Back,
            MouseButton::Forward,
        ]);
        prop_oneof![
            (any::<u32>(), any::<u32>()).prop_map(|(x, y)| InputEvent::MouseMove { x, y }),
            (button, any::<bool>())
                .prop_map(|(button, pressed)| InputEvent::MouseButton { button, pressed }),
            (any::<i32>(), any::<i32>()).prop_map(|(dx, dy)| InputEvent::Wheel { dx, dy }),
            (any::<u32>(), any::<bool>())
                .prop_map(|(keysym, pressed)| InputEvent::Key { keysym, pressed }),
        ]
    }

    fn client_message() -> impl Strategy<Value = ClientMessage> {
        prop_oneof![
            (any::<u16>(), text(), text(), text(), text()).prop_map(
                |(version, session, invitation, name, password)| {
                    ClientMessage::Hello(Hello {
                        version,
                        session,
                        invitation,
                        name,
                        password,
                    })
                }
            ),
            level().prop_map(|level| ClientMessage::RequestControl { level }),
            input().prop_map(ClientMessage::Input),
            text().prop_map(|reason| ClientMessage::Bye { reason }),
            Just(ClientMessage::StampGraphics),
        ]
    }

    fn server_message() -> impl Strategy<Value = ServerMessage> {
        let reject = prop::sample::select(vec![
            RejectReason::UnsupportedVersion,
            RejectReason::UnknownSession,
            RejectReason::UnknownInvitation,
            RejectReason::WrongPassword,
            RejectReason::InvitationRevoked,
            RejectReason::AttendeeLimitReached,
            RejectReason::SessionClosed,
            RejectReason::TooManyAttempts,
            RejectReason::Malformed,
            RejectReason::NodeShuttingDown,
        ]);
        let disconnect = prop::sample::select(vec![
            DisconnectReason::BySharer,
            DisconnectReason::ByAttendee,
            DisconnectReason::Error,
            DisconnectReason::Timeout,
            DisconnectReason::SessionClosed,
            DisconnectReason::NodeShutdown,
            DisconnectReason::NodeRestarted,
        ]);
        prop_oneof![
            (
                any::<u64>(),
                text(),
                level(),
                any::<u32>(),
                any::<u32>(),
                any::<bool>()
            )
                .prop_map(
                    |(attendee_id, session, control_level, width, height, paused)| {
                        ServerMessage::Welcome(Welcome {
                            attendee_id,
                            session,
                            control_level,
                            width,
                            height,
                            paused,
                        })
                    }
                ),
            (reject, text())
                .prop_map(|(reason, message)| ServerMessage::Rejected { reason, message }),
            level().prop_map(|level| ServerMessage::ControlLevelChanged { level }),
            (level(), any::<bool>(), text()).prop_map(|(requested, granted, message)| {
                ServerMessage::ControlRequestAnswered {
                    requested,
                    granted,
                    message,
                }
            }),
            Just(ServerMessage::GraphicsPaused),
            Just(ServerMessage::GraphicsResumed),
            (any::<u32>(), any::<u32>())
                .prop_map(|(width, height)| ServerMessage::SharedRectChanged { width, height }),
            text().prop_map(|message| ServerMessage::InputRefused { message }),
            (disconnect, text())
                .prop_map(|(reason, message)| ServerMessage::Bye { reason, message }),
        ]
    }

    /// Pushes `bytes` cut at `cuts` (offsets, any order), draining after each push.
    fn decode_chunked<T: DeserializeOwned>(bytes: &[u8], cuts: &[usize]) -> Vec<T> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.push(0);
        cuts.push(bytes.len());
        cuts.sort_unstable();
        let mut decoder = FrameDecoder::new();
        let mut out = Vec::new();
        for w in cuts.windows(2) {
            decoder.push(&bytes[w[0]..w[1]]);
            while let Some(msg) = decoder.next_message::<T>().unwrap() {
                out.push(msg);
            }
        }
        assert_eq!(decoder.buffered(), 0);
        out
    }

    /// Drains `decoder` on untrusted input, failing the test if it never settles.
    fn drain_untrusted<T: DeserializeOwned>(decoder: &mut FrameDecoder) {
        for _ in 0..10_000 {
            match decoder.next_message::<T>() {
                Ok(None) | Err(ProtoError::Poisoned) => return,
                Ok(Some(_)) | Err(_) => {}
            }
        }
        panic!("decoder did not settle");
    }

    #[test]
    fn frame_layout_is_length_then_postcard() {
        let frame = encode_message(&ServerMessage::GraphicsPaused).unwrap();
        assert_eq!(frame, [0, 0, 0, 1, 4]);
        let frame = encode_message(&ClientMessage::Bye { reason: "x".into() }).unwrap();
        assert_eq!(frame, [0, 0, 0, 3, 3, 1, b'x']);
    }

    #[test]
    fn payload_of_exactly_the_cap_is_accepted() {
        // Bye: variant byte + 3-byte varint length + text.
        let reason = "r".repeat(MAX_CONTROL_MESSAGE - 4);
        let msg = ClientMessage::Bye { reason };
        let frame = encode_message(&msg).unwrap();
        assert_eq!(frame.len(), MAX_FRAME_LEN);
        assert_eq!(decode_chunked::<ClientMessage>(&frame, &[1, 9]), vec![msg]);

        let too_big = ClientMessage::Bye {
            reason: "r".repeat(MAX_CONTROL_MESSAGE - 3),
        };
        assert_eq!(
            encode_message(&too_big),
            Err(ProtoError::MessageTooLarge {
                len: MAX_CONTROL_MESSAGE + 1,
                max: MAX_CONTROL_MESSAGE
            })
        );
    }

    #[test]
    fn oversize_length_is_rejected_from_the_header_alone() {
        let mut decoder = FrameDecoder::new();
        let header = ((MAX_CONTROL_MESSAGE + 1) as u32).to_be_bytes();
        decoder.push(&header[..2]);
        assert_eq!(decoder.next_message::<ClientMessage>(), Ok(None));
        decoder.push(&header[2..]);
        assert!(decoder.is_failed());
        assert_eq!(decoder.buffered(), 0);
        assert_eq!(
            decoder.next_message::<ClientMessage>(),
            Err(ProtoError::MessageTooLarge {
                len: MAX_CONTROL_MESSAGE + 1,
                max: MAX_CONTROL_MESSAGE
            })
        );
        decoder.push(&[0; 100]);
        assert_eq!(decoder.buffered(), 0);
        assert_eq!(
            decoder.next_message::<ClientMessage>(),
            Err(ProtoError::Poisoned)
        );
    }

    #[test]
    fn frames_before_an_oversize_one_are_still_delivered() {
        let first = ServerMessage::GraphicsPaused;
        let mut bytes = encode_message(&first).unwrap();
        bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        bytes.extend_from_slice(&[7; 32]);
        let mut decoder = FrameDecoder::new();
        decoder.push(&bytes);
        assert_eq!(decoder.buffered(), 5);
        assert_eq!(decoder.next_message(), Ok(Some(first)));
        assert!(matches!(
            decoder.next_message::<ServerMessage>(),
            Err(ProtoError::MessageTooLarge { .. })
        ));
        assert_eq!(
            decoder.next_message::<ServerMessage>(),
            Err(ProtoError::Poisoned)
        );
    }

    #[test]
    fn malformed_payload_fails_one_frame_only() {
        let mut bytes = vec![0, 0, 0, 1, 200]; // no such variant
        bytes.extend_from_slice(&[0, 0, 0, 2, 4, 0]); // trailing byte
        bytes.extend_from_slice(&encode_message(&ServerMessage::GraphicsResumed).unwrap());
        let mut decoder = FrameDecoder::new();
        decoder.push(&bytes);
        assert!(matches!(
            decoder.next_message::<ServerMessage>(),
            Err(ProtoError::Decode(_))
        ));
        assert_eq!(
            decoder.next_message::<ServerMessage>(),
            Err(ProtoError::TrailingBytes { count: 1 })
        );
        assert_eq!(
            decoder.next_message(),
            Ok(Some(ServerMessage::GraphicsResumed))
        );
        assert_eq!(decoder.next_message::<ServerMessage>(), Ok(None));
        assert!(!decoder.is_failed());
    }

    #[test]
    fn undrained_decoder_overflows_instead_of_growing() {
        let frame = encode_message(&ClientMessage::Bye {
            reason: "z".repeat(1000),
        })
        .unwrap();
        let mut decoder = FrameDecoder::new();
        let mut max_seen = 0;
        for _ in 0..200 {
            decoder.push(&frame);
            max_seen = max_seen.max(decoder.buffered());
        }
        assert!(max_seen <= MAX_FRAME_LEN + frame.len());
        assert!(decoder.is_failed());
        let mut delivered = 0;
        let err = loop {
            match decoder.next_message::<ClientMessage>() {
                Ok(Some(_)) => delivered += 1,
                Ok(None) => panic!("overflow not reported"),
                Err(e) => break e,
            }
        };
        assert_eq!(err, ProtoError::BufferOverflow);
        assert!(delivered * frame.len() >= MAX_CONTROL_MESSAGE);
    }

    #[test]
    fn errors_read_as_lowercase_lines() {
        let errors = [
            ProtoError::MessageTooLarge { len: 9, max: 8 },
            ProtoError::BufferOverflow,
            ProtoError::Poisoned,
            ProtoError::EmptyStream,
            ProtoError::UnknownStreamKind(9),
            ProtoError::TrailingBytes { count: 1 },
        ];
        for e in errors {
            let line = e.to_string();
            assert!(line.starts_with(|c: char| c.is_ascii_lowercase()), "{line}");
            assert!(!line.ends_with('.'), "{line}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn client_messages_round_trip(
            msgs in prop::collection::vec(client_message(), 1..8),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
        ) {
            let mut bytes = Vec::new();
            for m in &msgs {
                let frame = encode_message(m).unwrap();
                let decoded = decode_payload::<ClientMessage>(&frame[4..]);
                prop_assert_eq!(decoded.as_ref(), Ok(m));
                bytes.extend_from_slice(&frame);
            }
            prop_assert_eq!(&decode_chunked::<ClientMessage>(&bytes, &[]), &msgs);
            prop_assert_eq!(&decode_chunked::<ClientMessage>(&bytes, &cuts), &msgs);
            let every_byte: Vec<usize> = (0..bytes.len()).collect();
            prop_assert_eq!(&decode_chunked::<ClientMessage>(&bytes, &every_byte), &msgs);
        }

        #[test]
        fn server_messages_round_trip(
            msgs in prop::collection::vec(server_message(), 1..8),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
        ) {
            let mut bytes = Vec::new();
            for m in &msgs {
                bytes.extend_from_slice(&encode_message(m).unwrap());
            }
            prop_assert_eq!(&decode_chunked::<ServerMessage>(&bytes, &[]), &msgs);
            prop_assert_eq!(&decode_chunked::<ServerMessage>(&bytes, &cuts), &msgs);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..48), 0..8),
        ) {
            let mut client = FrameDecoder::new();
            let mut server = FrameDecoder::new();
            for chunk in &chunks {
                client.push(chunk);
                drain_untrusted::<ClientMessage>(&mut client);
                server.push(chunk);
                drain_untrusted::<ServerMessage>(&mut server);
                prop_assert!(client.buffered() <= MAX_FRAME_LEN + chunk.len());
            }
        }

        #[test]
        fn small_frames_of_garbage_never_panic(
            payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..6),
        ) {
            // Well-framed random payloads reach the message decoder itself.
            let mut bytes = Vec::new();
            for p in &payloads {
                bytes.extend_from_slice(&(p.len() as u32).to_be_bytes());
                bytes.extend_from_slice(p);
            }
            let mut decoder = FrameDecoder::new();
            decoder.push(&bytes);
            for _ in 0..payloads.len() {
                let r = decoder.next_message::<ClientMessage>();
                prop_assert!(!matches!(r, Ok(None)));
            }
            prop_assert_eq!(decoder.next_message::<ClientMessage>(), Ok(None));
            prop_assert!(!decoder.is_failed());
        }
    }
}
