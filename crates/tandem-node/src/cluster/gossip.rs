//! Gossip only secret holders can read or write: a chitchat [`Transport`]
//! that seals every datagram with ChaCha20-Poly1305 under keys derived from
//! the cluster secret, and drops anything that does not open, unparsed.
//!
//! A sealed datagram is (integers big-endian)
//!
//! ```text
//! "TGS1" | sender instance (16) | counter (8) | sent unix ms (8) | ciphertext | tag (16)
//! ```
//!
//! The 36-byte header is the AEAD's associated data, so none of it can be
//! changed. The *instance* is random per gossip socket (a process start);
//! each instance has its own key (HKDF-SHA256 of the secret, info = the
//! cluster name and the instance), so the nonce `0u32 || counter` never
//! repeats under one key. A receiver keeps, per sender instance, the highest
//! counter and a 64-wide window of the ones below it (UDP may reorder): a
//! datagram seen before is a *replay* and changes nothing. A receiver that
//! has no state for an instance (it restarted) still refuses datagrams
//! whose sent time is outside the replay window (*stale*), so a capture
//! replayed later never reaches chitchat. State is updated only after the
//! tag verified: forged datagrams cannot move a sender's window.
//!
//! chitchat 0.13 keeps its envelope codec crate-private, so this socket
//! reaches it through chitchat's own public UDP socket on loopback (the
//! *codec* socket): to send, chitchat's socket encodes the envelope into a
//! datagram to our `capture` socket, which we seal and send; to receive, we
//! open a datagram and hand the plaintext to the codec socket from a
//! loopback *mouth* socket kept per sender address, so the outcome chitchat
//! decodes says which member it came from. Datagrams reaching the codec
//! socket from anywhere else are dropped.
//!
//! The trait's signatures are chitchat's (`anyhow::Result`, `async_trait`);
//! everything inside uses [`GossipError`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chitchat::transport::{RecvOutcome, SendOutcome, Socket, Transport};
use chitchat::ChitchatEnvelope;
use prometheus::IntCounterVec;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use ring::hkdf;

/// First bytes of every sealed datagram (and the format's version).
const MAGIC: &[u8; 4] = b"TGS1";
/// Bytes of the random sender instance.
const INSTANCE_LEN: usize = 16;
/// Bytes before the ciphertext.
pub const HEADER_LEN: usize = 4 + INSTANCE_LEN + 8 + 8;
/// Bytes of the AEAD tag.
const TAG_LEN: usize = 16;
/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_507;
/// Counters below the highest seen that are still accepted once (reordering).
const REPLAY_WINDOW_COUNTERS: u64 = 64;
/// Most sender instances whose replay state is kept.
const MAX_SENDERS: usize = 4096;
/// Most distinct member addresses with a loopback mouth socket.
const MAX_MOUTHS: usize = 256;
/// Reasons a datagram is dropped (the metric's `reason` label).
pub const REJECT_REASONS: [&str; 4] = ["malformed", "stale", "replayed", "forged"];

/// Why a datagram was dropped, or why the socket failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GossipError {
    /// Too short, or not this format.
    #[error("not a sealed gossip datagram")]
    Malformed,
    /// Its sent time is outside the replay window.
    #[error("sent {age_ms} ms away from now, outside the replay window")]
    Stale {
        /// Now minus the sent time (negative: from the future).
        age_ms: i64,
    },
    /// Seen before (or older than the sender's window).
    #[error("replayed datagram")]
    Replayed,
    /// The tag does not verify: another secret, or altered.
    #[error("authentication failed")]
    Forged,
    /// Too large to seal into one datagram.
    #[error("gossip message of {len} bytes is too large to seal")]
    TooLarge {
        /// Plaintext length.
        len: usize,
    },
}

impl GossipError {
    /// The metric label of a rejected datagram.
    pub fn reason(&self) -> &'static str {
        match self {
            GossipError::Malformed | GossipError::TooLarge { .. } => "malformed",
            GossipError::Stale { .. } => "stale",
            GossipError::Replayed => "replayed",
            GossipError::Forged => "forged",
        }
    }
}

/// Keys of one cluster: derives each sender instance's key.
#[derive(Clone)]
pub struct GossipKeys {
    prk: hkdf::Prk,
    cluster_id: String,
}

impl GossipKeys {
    /// Keys for `secret` and the cluster's name (another name, another key).
    pub fn new(secret: &[u8], cluster_id: &str) -> Self {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"tandem-gossip/1");
        Self {
            prk: salt.extract(secret),
            cluster_id: cluster_id.to_owned(),
        }
    }

    fn key_for(&self, instance: &[u8; INSTANCE_LEN]) -> LessSafeKey {
        let name_len = [self.cluster_id.len() as u8];
        let info: [&[u8]; 4] = [b"key", &name_len, self.cluster_id.as_bytes(), instance];
        let okm = self
            .prk
            .expand(&info, &CHACHA20_POLY1305)
            .expect("a 32-byte key is a valid HKDF length");
        LessSafeKey::new(UnboundKey::from(okm))
    }
}

fn nonce(counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

/// The sending half: one instance, one key, a counter.
pub struct Sealer {
    instance: [u8; INSTANCE_LEN],
    key: LessSafeKey,
    counter: u64,
}

impl Sealer {
    /// A new random instance.
    pub fn new(keys: &GossipKeys) -> Self {
        let instance: [u8; INSTANCE_LEN] = rand::random();
        Self {
            key: keys.key_for(&instance),
            instance,
            counter: 0,
        }
    }

    /// Seals `plain`, stamped with `now_ms`.
    pub fn seal(&mut self, plain: &[u8], now_ms: i64) -> Result<Vec<u8>, GossipError> {
        if HEADER_LEN + plain.len() + TAG_LEN > MAX_DATAGRAM {
            return Err(GossipError::TooLarge { len: plain.len() });
        }
        self.counter += 1;
        let mut out = Vec::with_capacity(HEADER_LEN + plain.len() + TAG_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.instance);
        out.extend_from_slice(&self.counter.to_be_bytes());
        out.extend_from_slice(&now_ms.to_be_bytes());
        let mut body = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                nonce(self.counter),
                Aad::from(&out[..HEADER_LEN]),
                &mut body,
            )
            .map_err(|_| GossipError::TooLarge { len: plain.len() })?;
        out.extend_from_slice(&body);
        Ok(out)
    }
}

/// What a receiver remembers of one sender instance.
struct SenderState {
    key: LessSafeKey,
    /// Highest counter accepted.
    highest: u64,
    /// Bit `i` set: counter `highest - i` was accepted.
    seen: u64,
    /// Newest sent time accepted.
    last_sent_ms: i64,
}

impl SenderState {
    fn is_new(&self, counter: u64) -> bool {
        if counter > self.highest {
            return true;
        }
        let behind = self.highest - counter;
        behind < REPLAY_WINDOW_COUNTERS && self.seen & (1 << behind) == 0
    }

    fn accept(&mut self, counter: u64, sent_ms: i64) {
        if counter > self.highest {
            let shift = counter - self.highest;
            self.seen = if shift >= REPLAY_WINDOW_COUNTERS {
                0
            } else {
                self.seen << shift
            };
            self.highest = counter;
        }
        self.seen |= 1 << (self.highest - counter);
        self.last_sent_ms = self.last_sent_ms.max(sent_ms);
    }
}

/// The receiving half: opens datagrams and refuses replays.
pub struct Opener {
    keys: GossipKeys,
    window_ms: i64,
    senders: HashMap<[u8; INSTANCE_LEN], SenderState>,
}

impl Opener {
    /// An opener accepting datagrams sent within `window` of now.
    pub fn new(keys: GossipKeys, window: Duration) -> Self {
        Self {
            keys,
            window_ms: window.as_millis() as i64,
            senders: HashMap::new(),
        }
    }

    /// Opens `datagram` received at `now_ms`: the plaintext, or why not.
    /// Nothing is remembered unless it authenticates.
    pub fn open(&mut self, datagram: &[u8], now_ms: i64) -> Result<Vec<u8>, GossipError> {
        if datagram.len() < HEADER_LEN + TAG_LEN || &datagram[..4] != MAGIC {
            return Err(GossipError::Malformed);
        }
        let instance: [u8; INSTANCE_LEN] = datagram[4..4 + INSTANCE_LEN]
            .try_into()
            .expect("sliced to length");
        let counter = u64::from_be_bytes(datagram[20..28].try_into().expect("8 bytes"));
        let sent_ms = i64::from_be_bytes(datagram[28..36].try_into().expect("8 bytes"));
        let age_ms = now_ms.saturating_sub(sent_ms);
        if age_ms.abs() > self.window_ms {
            return Err(GossipError::Stale { age_ms });
        }
        if counter == 0 {
            return Err(GossipError::Malformed);
        }
        let known = self.senders.get(&instance);
        if known.is_some_and(|s| !s.is_new(counter)) {
            return Err(GossipError::Replayed);
        }
        let fresh_key = known.is_none().then(|| self.keys.key_for(&instance));
        let key = match (known, &fresh_key) {
            (Some(s), _) => &s.key,
            (None, Some(k)) => k,
            (None, None) => unreachable!("a key was derived for an unknown sender"),
        };
        let mut body = datagram[HEADER_LEN..].to_vec();
        let plain_len = key
            .open_in_place(
                nonce(counter),
                Aad::from(&datagram[..HEADER_LEN]),
                &mut body,
            )
            .map_err(|_| GossipError::Forged)?
            .len();
        body.truncate(plain_len);
        if let Some(key) = fresh_key {
            self.make_room(now_ms);
            self.senders.insert(
                instance,
                SenderState {
                    key,
                    highest: 0,
                    seen: 0,
                    last_sent_ms: sent_ms,
                },
            );
        }
        if let Some(state) = self.senders.get_mut(&instance) {
            state.accept(counter, sent_ms);
        }
        Ok(body)
    }

    /// Forgets senders whose datagrams would be stale anyway (no replay of
    /// theirs can pass the time check), then the oldest one if still full.
    fn make_room(&mut self, now_ms: i64) {
        if self.senders.len() < MAX_SENDERS {
            return;
        }
        let horizon = now_ms - self.window_ms;
        self.senders.retain(|_, s| s.last_sent_ms >= horizon);
        if self.senders.len() >= MAX_SENDERS {
            if let Some(oldest) = self
                .senders
                .iter()
                .min_by_key(|(_, s)| s.last_sent_ms)
                .map(|(k, _)| *k)
            {
                self.senders.remove(&oldest);
            }
        }
    }
}

/// The replay window for a cluster's failure detection time: twice
/// `dead_after`, between 5 and 60 seconds. Members' clocks must agree
/// within it.
pub fn replay_window(dead_after: Duration) -> Duration {
    (dead_after * 2).clamp(Duration::from_secs(5), Duration::from_secs(60))
}

/// The chitchat transport sealing every datagram.
pub struct SecureTransport {
    /// Key derivation of the cluster.
    pub keys: GossipKeys,
    /// How old a datagram may be.
    pub window: Duration,
    /// `tandem_cluster_gossip_rejected_total{reason}`.
    pub rejected: IntCounterVec,
}

#[async_trait]
impl Transport for SecureTransport {
    async fn open(&self, listen_addr: SocketAddr) -> anyhow::Result<Box<dyn Socket>> {
        let socket = SecureSocket::open(listen_addr, self).await?;
        Ok(Box::new(socket))
    }
}

struct SecureSocket {
    public: tokio::net::UdpSocket,
    local_addr: SocketAddr,
    codec: chitchat::transport::UdpSocket,
    codec_addr: SocketAddr,
    capture: tokio::net::UdpSocket,
    /// Loopback sockets handing plaintext to the codec socket, by member address.
    mouths: HashMap<SocketAddr, (tokio::net::UdpSocket, Instant)>,
    /// A mouth's address → the member it speaks for.
    mouth_of: HashMap<SocketAddr, SocketAddr>,
    sealer: Sealer,
    opener: Opener,
    rejected: IntCounterVec,
    buf: Vec<u8>,
    last_warned: HashMap<&'static str, Instant>,
}

const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

impl SecureSocket {
    async fn open(listen: SocketAddr, t: &SecureTransport) -> std::io::Result<Self> {
        let public = tokio::net::UdpSocket::bind(listen).await?;
        let local_addr = public.local_addr()?;
        let codec = chitchat::transport::UdpSocket::open(LOOPBACK)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let codec_addr = codec
            .local_addr()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let capture = tokio::net::UdpSocket::bind(LOOPBACK).await?;
        Ok(Self {
            public,
            local_addr,
            codec,
            codec_addr,
            capture,
            mouths: HashMap::new(),
            mouth_of: HashMap::new(),
            sealer: Sealer::new(&t.keys),
            opener: Opener::new(t.keys.clone(), t.window),
            rejected: t.rejected.clone(),
            buf: vec![0; MAX_DATAGRAM + 1],
            last_warned: HashMap::new(),
        })
    }

    /// Counts a dropped datagram; warns at most every 10 s per reason.
    fn reject(&mut self, from: SocketAddr, error: &GossipError) {
        let reason = error.reason();
        self.rejected.with_label_values(&[reason]).inc();
        let now = Instant::now();
        let due = self
            .last_warned
            .get(reason)
            .is_none_or(|t| now.duration_since(*t) >= Duration::from_secs(10));
        if due {
            self.last_warned.insert(reason, now);
            tracing::warn!(%from, reason, %error, "gossip datagram dropped (further ones are only counted for 10 s)");
        } else {
            tracing::debug!(%from, reason, %error, "gossip datagram dropped");
        }
    }

    /// The loopback socket that hands `peer`'s plaintext to the codec
    /// (bound without waiting, so `recv` stays cancel-safe).
    fn mouth(&mut self, peer: SocketAddr) -> std::io::Result<&tokio::net::UdpSocket> {
        if !self.mouths.contains_key(&peer) {
            if self.mouths.len() >= MAX_MOUTHS {
                if let Some(oldest) = self
                    .mouths
                    .iter()
                    .min_by_key(|(_, (_, used))| *used)
                    .map(|(p, _)| *p)
                {
                    if let Some((socket, _)) = self.mouths.remove(&oldest) {
                        if let Ok(a) = socket.local_addr() {
                            self.mouth_of.remove(&a);
                        }
                    }
                }
            }
            let socket = std::net::UdpSocket::bind(LOOPBACK)?;
            socket.set_nonblocking(true)?;
            let socket = tokio::net::UdpSocket::from_std(socket)?;
            self.mouth_of.insert(socket.local_addr()?, peer);
            self.mouths.insert(peer, (socket, Instant::now()));
        }
        let entry = self.mouths.get_mut(&peer).expect("inserted above");
        entry.1 = Instant::now();
        Ok(&entry.0)
    }
}

#[async_trait]
impl Socket for SecureSocket {
    fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.local_addr)
    }

    async fn send(
        &mut self,
        to: SocketAddr,
        envelope: ChitchatEnvelope,
    ) -> anyhow::Result<SendOutcome> {
        // chitchat's own socket encodes the envelope into a datagram to `capture`.
        self.codec
            .send(self.capture.local_addr()?, envelope)
            .await?;
        let len = loop {
            let (len, from) = self.capture.recv_from(&mut self.buf).await?;
            if from == self.codec_addr {
                break len;
            }
        };
        let sealed = match self.sealer.seal(&self.buf[..len], crate::clock::now_ms()) {
            Ok(sealed) => sealed,
            Err(error) => {
                tracing::warn!(%to, %error, "gossip message not sent");
                return Ok(SendOutcome { num_bytes_sent: 0 });
            }
        };
        let num_bytes_sent = self.public.send_to(&sealed, to).await?;
        Ok(SendOutcome { num_bytes_sent })
    }

    async fn recv(&mut self) -> anyhow::Result<RecvOutcome> {
        loop {
            // Cancel-safe: both branches are socket reads, and nothing
            // below waits (a full loopback buffer drops the datagram, as
            // the network may).
            let opened = tokio::select! {
                outcome = self.codec.recv() => {
                    let outcome = outcome?;
                    let Some(peer) = self.mouth_of.get(&outcome.from_addr).copied() else {
                        tracing::debug!(from = %outcome.from_addr, "plaintext gossip on the codec socket dropped");
                        continue;
                    };
                    return Ok(RecvOutcome { from_addr: peer, ..outcome });
                }
                received = self.public.recv_from(&mut self.buf) => {
                    let (len, from) = match received {
                        Ok(r) => r,
                        Err(e) if is_transient(&e) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    let result = if len > MAX_DATAGRAM {
                        Err(GossipError::Malformed)
                    } else {
                        self.opener.open(&self.buf[..len], crate::clock::now_ms())
                    };
                    (from, result)
                }
            };
            match opened {
                (from, Ok(plain)) => {
                    let codec = self.codec_addr;
                    let mouth = self.mouth(from)?;
                    if let Err(error) = mouth.try_send_to(&plain, codec) {
                        tracing::debug!(%from, %error, "opened gossip datagram not handed on");
                    }
                }
                (from, Err(error)) => self.reject(from, &error),
            }
        }
    }
}

fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::OutOfMemory
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;
    const WINDOW: Duration = Duration::from_secs(10);

    fn keys() -> GossipKeys {
        GossipKeys::new(b"a-cluster-secret-0123456789", "test")
    }

    #[test]
    fn a_sealed_datagram_opens_once_and_hides_its_content() {
        let mut sealer = Sealer::new(&keys());
        let mut opener = Opener::new(keys(), WINDOW);
        let plain = b"test/0123456789abcdef gossip state";
        let sealed = sealer.seal(plain, NOW).unwrap();
        assert!(
            !sealed.windows(4).any(|w| w == b"test"),
            "the cluster id shows"
        );
        assert_eq!(opener.open(&sealed, NOW + 5).unwrap(), plain);
        assert_eq!(opener.open(&sealed, NOW + 6), Err(GossipError::Replayed));
    }

    #[test]
    fn another_secret_or_cluster_name_or_any_flipped_bit_is_forged() {
        let mut sealer = Sealer::new(&keys());
        let sealed = sealer.seal(b"state", NOW).unwrap();
        let mut other = Opener::new(
            GossipKeys::new(b"another-secret-0123456789", "test"),
            WINDOW,
        );
        assert_eq!(other.open(&sealed, NOW), Err(GossipError::Forged));
        let mut other = Opener::new(
            GossipKeys::new(b"a-cluster-secret-0123456789", "prod"),
            WINDOW,
        );
        assert_eq!(other.open(&sealed, NOW), Err(GossipError::Forged));
        let mut opener = Opener::new(keys(), WINDOW);
        // Every bit after the magic: the instance, counter, time, body or tag.
        for byte in 4..sealed.len() {
            let mut bad = sealed.clone();
            bad[byte] ^= 0x01;
            let err = opener.open(&bad, NOW).unwrap_err();
            assert!(
                matches!(
                    err,
                    GossipError::Forged | GossipError::Stale { .. } | GossipError::Malformed
                ),
                "byte {byte}: {err:?}"
            );
        }
        // Forgeries left no state: the genuine datagram still opens.
        assert_eq!(opener.open(&sealed, NOW).unwrap(), b"state");
    }

    #[test]
    fn garbage_and_plain_chitchat_are_malformed() {
        let mut opener = Opener::new(keys(), WINDOW);
        assert_eq!(opener.open(b"", NOW), Err(GossipError::Malformed));
        assert_eq!(
            opener.open(&[0xd3, 0xb0, 0, 0, 1, 2, 3], NOW),
            Err(GossipError::Malformed)
        );
        assert_eq!(opener.open(&[7u8; 200], NOW), Err(GossipError::Malformed));
    }

    #[test]
    fn old_datagrams_are_stale_even_for_a_fresh_receiver() {
        let mut sealer = Sealer::new(&keys());
        let sealed = sealer.seal(b"state", NOW).unwrap();
        let later = NOW + WINDOW.as_millis() as i64 + 1;
        let mut fresh = Opener::new(keys(), WINDOW);
        assert!(matches!(
            fresh.open(&sealed, later),
            Err(GossipError::Stale { .. })
        ));
        let earlier = NOW - WINDOW.as_millis() as i64 - 1;
        assert!(matches!(
            fresh.open(&sealed, earlier),
            Err(GossipError::Stale { .. })
        ));
    }

    #[test]
    fn reordered_datagrams_are_accepted_once_within_the_window() {
        let mut sealer = Sealer::new(&keys());
        let all: Vec<Vec<u8>> = (0..100)
            .map(|i| sealer.seal(&[i as u8], NOW).unwrap())
            .collect();
        let mut opener = Opener::new(keys(), WINDOW);
        assert_eq!(opener.open(&all[80], NOW).unwrap(), [80]);
        assert_eq!(opener.open(&all[79], NOW).unwrap(), [79]);
        assert_eq!(opener.open(&all[20], NOW).unwrap(), [20]);
        // 64 or more behind the highest: refused (it may have been seen).
        assert_eq!(opener.open(&all[10], NOW), Err(GossipError::Replayed));
        assert_eq!(opener.open(&all[79], NOW), Err(GossipError::Replayed));
        assert_eq!(opener.open(&all[99], NOW).unwrap(), [99]);
        assert_eq!(opener.open(&all[80], NOW), Err(GossipError::Replayed));
        assert_eq!(opener.open(&all[98], NOW).unwrap(), [98]);
    }

    #[test]
    fn each_instance_has_its_own_key_and_counter() {
        let mut a = Sealer::new(&keys());
        let mut b = Sealer::new(&keys());
        let (x, y) = (a.seal(b"same", NOW).unwrap(), b.seal(b"same", NOW).unwrap());
        assert_eq!(x[20..28], y[20..28], "both start at counter 1");
        assert_ne!(x[HEADER_LEN..], y[HEADER_LEN..], "yet encrypt differently");
        let mut opener = Opener::new(keys(), WINDOW);
        assert!(opener.open(&x, NOW).is_ok());
        assert!(opener.open(&y, NOW).is_ok());
    }

    #[test]
    fn too_large_messages_are_refused() {
        let mut sealer = Sealer::new(&keys());
        assert!(matches!(
            sealer.seal(&vec![0; MAX_DATAGRAM], NOW),
            Err(GossipError::TooLarge { .. })
        ));
    }

    #[test]
    fn the_replay_window_follows_dead_after() {
        assert_eq!(
            replay_window(Duration::from_millis(300)),
            Duration::from_secs(5)
        );
        assert_eq!(
            replay_window(Duration::from_secs(10)),
            Duration::from_secs(20)
        );
        assert_eq!(
            replay_window(Duration::from_secs(600)),
            Duration::from_secs(60)
        );
    }
}
