//! The connection string (ticket): one copyable line holding everything a
//! viewer needs to join except the password.
//!
//! `tandem://host:port,host:port/s/<session>?inv=<invitation>&fp=<sha256 hex>`
//!
//! Addresses are candidates in order: a viewer tries the next when one
//! fails. The parser is strict and bounded, and its errors say what is wrong.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::{is_valid_id, Fingerprint, FingerprintError};

/// Scheme every connection string starts with (matched case-insensitively).
pub const SCHEME: &str = "tandem://";

/// Longest accepted connection string, in bytes, after trimming whitespace.
pub const MAX_CONNECTION_STRING_LEN: usize = 4096;

/// Most node addresses in one connection string.
pub const MAX_NODE_ADDRS: usize = 16;

/// Addresses for a connection string: the issuing node's own first, then
/// the other live members', without duplicates, at most [`MAX_NODE_ADDRS`].
pub fn ticket_addrs(own: &[NodeAddr], cluster: &[NodeAddr]) -> Vec<NodeAddr> {
    let mut out: Vec<NodeAddr> = Vec::new();
    for a in own.iter().chain(cluster) {
        if out.len() == MAX_NODE_ADDRS {
            break;
        }
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    out
}

/// Longest DNS host name.
const MAX_HOST_LEN: usize = 253;

/// Longest piece of user input echoed back in an error.
const MAX_ECHO: usize = 48;

/// Address of a node's QUIC endpoint: a DNS name, an IPv4 address or an IPv6
/// address, and a port.
///
/// `host` holds an IPv6 address without brackets; `Display` adds them
/// (`[::1]:4433`). Parsing puts IPv6 addresses in canonical form and keeps
/// DNS names as written.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeAddr {
    /// DNS name, IPv4 address, or IPv6 address without brackets.
    pub host: String,
    /// UDP port, 1 to 65535.
    pub port: u16,
}

/// Text that is not a node address.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AddrError {
    /// Nothing was given.
    #[error("empty address")]
    Empty,
    /// No `:port` after the host.
    #[error("missing :port after the host")]
    MissingPort,
    /// Nothing before `:port`.
    #[error("missing host before the :port")]
    MissingHost,
    /// The port is not a number from 1 to 65535.
    #[error("bad port {port:?}: expected a number from 1 to 65535")]
    BadPort {
        /// The rejected port text.
        port: String,
    },
    /// The host is neither a DNS name nor an IPv4 address.
    #[error("bad host {host:?}: expected a DNS name, an IPv4 address or a bracketed IPv6 address")]
    BadHost {
        /// The rejected host text.
        host: String,
    },
    /// The text between brackets is not an IPv6 address.
    #[error("bad IPv6 address {host:?}")]
    BadIpv6 {
        /// The rejected text.
        host: String,
    },
    /// An IPv6 address without its brackets.
    #[error("an IPv6 address must be in brackets, as [addr]:port")]
    UnbracketedIpv6,
    /// A `[` without its `]`.
    #[error("missing ] after the IPv6 address")]
    UnclosedBracket,
    /// Something other than `:port` after `]`.
    #[error("expected :port right after ]")]
    TextAfterBracket,
}

impl NodeAddr {
    /// An address from its parts, unchecked (see [`NodeAddr::validate`]).
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        NodeAddr {
            host: host.into(),
            port,
        }
    }

    /// The host as an IP address, if it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// The socket address, if the host is an IP address (no name lookup here).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.ip().map(|ip| SocketAddr::new(ip, self.port))
    }

    /// Checks that the host and port would parse back from `Display`.
    pub fn validate(&self) -> Result<(), AddrError> {
        self.to_string().parse::<NodeAddr>().map(|_| ())
    }
}

impl From<SocketAddr> for NodeAddr {
    fn from(addr: SocketAddr) -> Self {
        NodeAddr {
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for NodeAddr {
    type Err = AddrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(AddrError::Empty);
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (inner, after) = rest.split_once(']').ok_or(AddrError::UnclosedBracket)?;
            let port = match after.strip_prefix(':') {
                Some(port) => port,
                None if after.is_empty() => return Err(AddrError::MissingPort),
                None => return Err(AddrError::TextAfterBracket),
            };
            let ip: Ipv6Addr = inner
                .parse()
                .map_err(|_| AddrError::BadIpv6 { host: echo(inner) })?;
            (ip.to_string(), port)
        } else {
            let (host, port) = s.rsplit_once(':').ok_or(AddrError::MissingPort)?;
            if host.contains(':') {
                return Err(AddrError::UnbracketedIpv6);
            }
            check_host(host)?;
            (host.to_owned(), port)
        };
        Ok(NodeAddr {
            host,
            port: parse_port(port)?,
        })
    }
}

fn check_host(host: &str) -> Result<(), AddrError> {
    if host.is_empty() {
        return Err(AddrError::MissingHost);
    }
    let bad = || AddrError::BadHost { host: echo(host) };
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return host.parse::<Ipv4Addr>().map(|_| ()).map_err(|_| bad());
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if host.len() > MAX_HOST_LEN || !host.split('.').all(label_ok) {
        return Err(bad());
    }
    Ok(())
}

fn parse_port(port: &str) -> Result<u16, AddrError> {
    let bad = || AddrError::BadPort { port: echo(port) };
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad()),
        Ok(p) => Ok(p),
    }
}

/// Cuts user input to a length fit for an error message.
pub(crate) fn echo(s: &str) -> String {
    if s.chars().count() <= MAX_ECHO {
        s.to_owned()
    } else {
        let mut cut: String = s.chars().take(MAX_ECHO).collect();
        cut.push('…');
        cut
    }
}

/// Everything a viewer needs to join a session except the password (the
/// Desktop Sharing API's `ConnectionString`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionString {
    /// Candidate node addresses, in the order to try them (1 to [`MAX_NODE_ADDRS`]).
    pub addrs: Vec<NodeAddr>,
    /// Session id.
    pub session: String,
    /// Invitation id.
    pub invitation: String,
    /// SHA-256 fingerprint of the node certificate to pin.
    pub fingerprint: Fingerprint,
}

/// Text that is not a valid connection string.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConnectionStringError {
    /// Nothing but whitespace was given.
    #[error("empty connection string")]
    Empty,
    /// Longer than [`MAX_CONNECTION_STRING_LEN`].
    #[error("connection string too long: {len} bytes, at most {max} allowed")]
    TooLong {
        /// Length in bytes, after trimming.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// Does not start with `tandem://`.
    #[error("not a tandem connection string: it must start with tandem://")]
    MissingScheme,
    /// No address between `tandem://` and the path.
    #[error("missing node address after tandem://")]
    MissingAddress,
    /// More than [`MAX_NODE_ADDRS`] addresses.
    #[error("too many node addresses: {count}, at most {max} allowed")]
    TooManyAddresses {
        /// Number of addresses given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// One address is malformed.
    #[error("address {index}: {source}")]
    BadAddress {
        /// Position of the address, counting from 1.
        index: usize,
        /// What is wrong with it.
        source: AddrError,
    },
    /// No `/s/<session>` path.
    #[error("missing /s/<session> after the addresses")]
    MissingSession,
    /// A path other than `/s/<session>`.
    #[error("unexpected path {path:?}: expected /s/<session>")]
    BadPath {
        /// The rejected path.
        path: String,
    },
    /// The session id is not 1 to 64 characters of `A-Z a-z 0-9 _ -`.
    #[error("bad session id {session:?}: expected 1 to 64 characters from A-Z a-z 0-9 _ -")]
    BadSession {
        /// The rejected id.
        session: String,
    },
    /// A query parameter is not `key=value`.
    #[error("malformed query parameter {param:?}: expected key=value")]
    MalformedParameter {
        /// The rejected parameter.
        param: String,
    },
    /// A query key other than `inv` and `fp`.
    #[error("unknown query parameter {key:?}: only inv= and fp= are allowed")]
    UnknownParameter {
        /// The rejected key.
        key: String,
    },
    /// A query key given twice.
    #[error("query parameter {key}= given twice")]
    DuplicateParameter {
        /// The repeated key.
        key: String,
    },
    /// A password parameter: passwords are not carried in tickets.
    #[error(
        "passwords are not carried in tickets: remove {key}= and give the password separately"
    )]
    PasswordNotAllowed {
        /// The offending key.
        key: String,
    },
    /// No `inv=` parameter.
    #[error("missing inv= invitation")]
    MissingInvitation,
    /// The invitation id is not 1 to 64 characters of `A-Z a-z 0-9 _ -`.
    #[error("bad invitation id {invitation:?}: expected 1 to 64 characters from A-Z a-z 0-9 _ -")]
    BadInvitation {
        /// The rejected id.
        invitation: String,
    },
    /// No `fp=` parameter.
    #[error("missing fp= fingerprint")]
    MissingFingerprint,
    /// The `fp=` value is not 64 hex digits.
    #[error("bad fp= fingerprint: {0}")]
    BadFingerprint(#[source] FingerprintError),
}

impl ConnectionString {
    /// A connection string from its parts, unchecked (see [`ConnectionString::validate`]).
    pub fn new(
        addrs: Vec<NodeAddr>,
        session: impl Into<String>,
        invitation: impl Into<String>,
        fingerprint: Fingerprint,
    ) -> Self {
        ConnectionString {
            addrs,
            session: session.into(),
            invitation: invitation.into(),
            fingerprint,
        }
    }

    /// Checks that this value prints as a connection string that parses back.
    pub fn validate(&self) -> Result<(), ConnectionStringError> {
        self.to_string().parse::<ConnectionString>().map(|_| ())
    }
}

impl fmt::Display for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SCHEME)?;
        for (i, addr) in self.addrs.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{addr}")?;
        }
        write!(
            f,
            "/s/{}?inv={}&fp={}",
            self.session, self.invitation, self.fingerprint
        )
    }
}

impl FromStr for ConnectionString {
    type Err = ConnectionStringError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use ConnectionStringError as E;

        let s = s.trim();
        if s.is_empty() {
            return Err(E::Empty);
        }
        if s.len() > MAX_CONNECTION_STRING_LEN {
            return Err(E::TooLong {
                len: s.len(),
                max: MAX_CONNECTION_STRING_LEN,
            });
        }
        let rest = match s.get(..SCHEME.len()) {
            Some(scheme) if scheme.eq_ignore_ascii_case(SCHEME) => &s[SCHEME.len()..],
            _ => return Err(E::MissingScheme),
        };

        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at(authority_end);
        let addrs = parse_addrs(authority)?;

        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (rest, None),
        };
        let session = match path.strip_prefix("/s/") {
            _ if path.is_empty() || path == "/" || path == "/s" || path == "/s/" => {
                return Err(E::MissingSession)
            }
            Some(session) if is_valid_id(session) => session,
            Some(session) if !session.contains('/') => {
                return Err(E::BadSession {
                    session: echo(session),
                })
            }
            _ => return Err(E::BadPath { path: echo(path) }),
        };

        let mut invitation = None;
        let mut fingerprint = None;
        for param in query.into_iter().flat_map(|q| q.split('&')) {
            let Some((key, value)) = param.split_once('=') else {
                if is_password_key(param) {
                    return Err(E::PasswordNotAllowed { key: echo(param) });
                }
                return Err(E::MalformedParameter { param: echo(param) });
            };
            let slot = match key {
                "inv" => &mut invitation,
                "fp" => &mut fingerprint,
                _ if is_password_key(key) => return Err(E::PasswordNotAllowed { key: echo(key) }),
                _ if key.is_empty() => return Err(E::MalformedParameter { param: echo(param) }),
                _ => return Err(E::UnknownParameter { key: echo(key) }),
            };
            if slot.replace(value).is_some() {
                return Err(E::DuplicateParameter {
                    key: key.to_owned(),
                });
            }
        }

        let invitation = invitation.ok_or(E::MissingInvitation)?;
        if !is_valid_id(invitation) {
            return Err(E::BadInvitation {
                invitation: echo(invitation),
            });
        }
        let fingerprint = fingerprint
            .ok_or(E::MissingFingerprint)?
            .parse::<Fingerprint>()
            .map_err(E::BadFingerprint)?;

        Ok(ConnectionString {
            addrs,
            session: session.to_owned(),
            invitation: invitation.to_owned(),
            fingerprint,
        })
    }
}

fn parse_addrs(authority: &str) -> Result<Vec<NodeAddr>, ConnectionStringError> {
    if authority.is_empty() {
        return Err(ConnectionStringError::MissingAddress);
    }
    let count = authority.split(',').count();
    if count > MAX_NODE_ADDRS {
        return Err(ConnectionStringError::TooManyAddresses {
            count,
            max: MAX_NODE_ADDRS,
        });
    }
    authority
        .split(',')
        .enumerate()
        .map(|(i, a)| {
            // Whitespace inside the ticket is an error, not something to trim.
            let parsed = if a.trim() != a {
                Err(AddrError::BadHost { host: echo(a) })
            } else {
                a.parse::<NodeAddr>()
            };
            parsed.map_err(|source| ConnectionStringError::BadAddress {
                index: i + 1,
                source,
            })
        })
        .collect()
}

fn is_password_key(key: &str) -> bool {
    ["pw", "pwd", "pass", "passwd", "password"]
        .iter()
        .any(|k| key.eq_ignore_ascii_case(k))
}

macro_rules! serde_via_string {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_via_string!(NodeAddr);
serde_via_string!(ConnectionString);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FP: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn ticket(tail: &str) -> String {
        format!("tandem://10.0.0.5:4433{tail}")
    }

    #[test]
    fn parses_the_design_example() {
        let s = format!(
            "  tandem://10.0.0.5:4433,[::1]:4434,node-b.example:9/s/sess_1?inv=inv-2&fp={FP}\n"
        );
        let cs: ConnectionString = s.parse().unwrap();
        assert_eq!(
            cs.addrs,
            vec![
                NodeAddr::new("10.0.0.5", 4433),
                NodeAddr::new("::1", 4434),
                NodeAddr::new("node-b.example", 9),
            ]
        );
        assert_eq!(cs.session, "sess_1");
        assert_eq!(cs.invitation, "inv-2");
        assert_eq!(cs.fingerprint, FP.parse().unwrap());
        assert_eq!(cs.to_string(), s.trim());
        assert_eq!(cs.validate(), Ok(()));
        assert_eq!(
            cs.addrs[1].socket_addr(),
            Some("[::1]:4434".parse().unwrap())
        );
        assert_eq!(cs.addrs[2].ip(), None);
    }

    #[test]
    fn query_order_and_scheme_case_are_free() {
        let a: ConnectionString = ticket(&format!("/s/s?fp={FP}&inv=i")).parse().unwrap();
        let b: ConnectionString =
            format!("TANDEM://10.0.0.5:4433/s/s?inv=i&fp={}", FP.to_uppercase())
                .parse()
                .unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn ipv6_is_canonicalised_and_bracketed() {
        let a: NodeAddr = "[0:0:0:0:0:0:0:1]:80".parse().unwrap();
        assert_eq!(a, NodeAddr::new("::1", 80));
        assert_eq!(a.to_string(), "[::1]:80");
        let from_socket = NodeAddr::from("[fe80::2]:7".parse::<SocketAddr>().unwrap());
        assert_eq!(from_socket.to_string(), "[fe80::2]:7");
        assert_eq!(NodeAddr::new("", 1).validate(), Err(AddrError::MissingHost));
    }

    #[test]
    fn malformed_strings_say_what_is_wrong() {
        use AddrError as A;
        use ConnectionStringError as E;
        let fp = format!("fp={FP}");
        let many: Vec<String> = (0..17).map(|i| format!("h{i}:1")).collect();
        let cases: Vec<(String, E)> = vec![
            ("   ".into(), E::Empty),
            (
                format!("tandem://{}", "a".repeat(5000)),
                E::TooLong {
                    len: 5009,
                    max: 4096,
                },
            ),
            (format!("https://h:1/s/s?inv=i&{fp}"), E::MissingScheme),
            ("tandem:/".into(), E::MissingScheme),
            ("tandëm://h:1".into(), E::MissingScheme),
            (format!("tandem:///s/s?inv=i&{fp}"), E::MissingAddress),
            (
                format!("tandem://{}/s/s?inv=i&{fp}", many.join(",")),
                E::TooManyAddresses { count: 17, max: 16 },
            ),
            (
                format!("tandem://a:1,b:99999/s/s?inv=i&{fp}"),
                E::BadAddress {
                    index: 2,
                    source: A::BadPort {
                        port: "99999".into(),
                    },
                },
            ),
            (
                format!("tandem://a:1,b:0/s/s?inv=i&{fp}"),
                E::BadAddress {
                    index: 2,
                    source: A::BadPort { port: "0".into() },
                },
            ),
            (
                format!("tandem://a:+1/s/s?inv=i&{fp}"),
                E::BadAddress {
                    index: 1,
                    source: A::BadPort { port: "+1".into() },
                },
            ),
            (
                format!("tandem://a/s/s?inv=i&{fp}"),
                E::BadAddress {
                    index: 1,
                    source: A::MissingPort,
                },
            ),
            (
                format!("tandem://a:1,,b:2/s/s?inv=i&{fp}"),
                E::BadAddress {
                    index: 2,
                    source: A::Empty,
                },
            ),
            (
                format!("tandem://:1/s/s?inv=i&{fp}"),
                E::BadAddress {
                    index: 1,
                    source: A::MissingHost,
                },
            ),
            (
                format!("tandem://::1:80/s/s?inv=i&{fp}"),
                E::BadAddress {
                    index: 1,
                    source: A::UnbracketedIpv6,
                },
            ),
            (
                format!("tandem://[::1:80/s/s?inv=i&{fp}"),
                E::BadAddress {
                    index: 1,
                    source: A::UnclosedBracket,
                },
            ),
            (
                format!("tandem://[::1]/s/s?inv=i&{fp}"),
                E::BadAddress {
                    index: 1,
                    source: A::MissingPort,
                },
            ),
            (
                format!("tandem://[::1]x:80/s/s?inv=i&{fp}"),
                E::BadAddress {
                    index: 1,
                    source: A::TextAfterBracket,
                },
            ),
            (
                format!("tandem://[::g]:80/s/s?inv=i&{fp}"),
                E::BadAddress {
                    index: 1,
                    source: A::BadIpv6 { host: "::g".into() },
                },
            ),
            (
                format!("tandem://1.2.3.256:80/s/s?inv=i&{fp}"),
                E::BadAddress {
                    index: 1,
                    source: A::BadHost {
                        host: "1.2.3.256".into(),
                    },
                },
            ),
            (
                format!("tandem://-a.b:80/s/s?inv=i&{fp}"),
                E::BadAddress {
                    index: 1,
                    source: A::BadHost {
                        host: "-a.b".into(),
                    },
                },
            ),
            (
                format!("tandem://a..b:80/s/s?inv=i&{fp}"),
                E::BadAddress {
                    index: 1,
                    source: A::BadHost {
                        host: "a..b".into(),
                    },
                },
            ),
            (
                format!("tandem://us%40r:80/s/s?inv=i&{fp}"),
                E::BadAddress {
                    index: 1,
                    source: A::BadHost {
                        host: "us%40r".into(),
                    },
                },
            ),
            (
                format!("tandem://a:1, b:2/s/s?inv=i&{fp}"),
                E::BadAddress {
                    index: 2,
                    source: A::BadHost {
                        host: " b:2".into(),
                    },
                },
            ),
            (ticket(""), E::MissingSession),
            (ticket(&format!("?inv=i&{fp}")), E::MissingSession),
            (ticket(&format!("/s/?inv=i&{fp}")), E::MissingSession),
            (
                ticket(&format!("/x/s?inv=i&{fp}")),
                E::BadPath {
                    path: "/x/s".into(),
                },
            ),
            (
                ticket(&format!("/s/a/b?inv=i&{fp}")),
                E::BadPath {
                    path: "/s/a/b".into(),
                },
            ),
            (
                ticket(&format!("/s/a.b?inv=i&{fp}")),
                E::BadSession {
                    session: "a.b".into(),
                },
            ),
            (ticket("/s/s"), E::MissingInvitation),
            (ticket(&format!("/s/s?{fp}")), E::MissingInvitation),
            (ticket("/s/s?inv=i"), E::MissingFingerprint),
            (
                ticket(&format!("/s/s?inv=&{fp}")),
                E::BadInvitation {
                    invitation: "".into(),
                },
            ),
            (
                ticket(&format!("/s/s?inv=i&{fp}&pw=hunter2")),
                E::PasswordNotAllowed { key: "pw".into() },
            ),
            (
                ticket(&format!("/s/s?inv=i&Password=x&{fp}")),
                E::PasswordNotAllowed {
                    key: "Password".into(),
                },
            ),
            (
                ticket(&format!("/s/s?inv=i&{fp}&mode=fast")),
                E::UnknownParameter { key: "mode".into() },
            ),
            (
                ticket(&format!("/s/s?inv=i&inv=j&{fp}")),
                E::DuplicateParameter { key: "inv".into() },
            ),
            (
                ticket(&format!("/s/s?inv=i&{fp}&")),
                E::MalformedParameter { param: "".into() },
            ),
            (
                ticket(&format!("/s/s?inv&{fp}")),
                E::MalformedParameter {
                    param: "inv".into(),
                },
            ),
            (
                ticket("/s/s?inv=i&fp=abc"),
                E::BadFingerprint(FingerprintError::WrongLength { len: 3 }),
            ),
            (
                ticket(&format!("/s/s?inv=i&fp={FP}#frag")),
                E::BadFingerprint(FingerprintError::WrongLength { len: 69 }),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(input.parse::<ConnectionString>(), Err(expected), "{input}");
        }
    }

    #[test]
    fn error_messages_are_actionable() {
        let msg = |s: String| s.parse::<ConnectionString>().unwrap_err().to_string();
        assert_eq!(msg(ticket("/s/s?inv=i")), "missing fp= fingerprint");
        assert_eq!(
            msg(format!("tandem://a:1,b:x/s/s?inv=i&fp={FP}")),
            "address 2: bad port \"x\": expected a number from 1 to 65535"
        );
        assert!(msg(ticket(&format!("/s/s?inv=i&fp={FP}&pw=x")))
            .starts_with("passwords are not carried in tickets"));
        let long = msg(ticket(&format!("/s/{}?inv=i&fp={FP}", "x".repeat(500))));
        assert!(long.len() < 200, "{long}");
    }

    #[test]
    fn serde_uses_the_text_form() {
        let cs: ConnectionString = ticket(&format!("/s/s?inv=i&fp={FP}")).parse().unwrap();
        let wire = postcard::to_allocvec(&cs).unwrap();
        assert_eq!(postcard::from_bytes::<ConnectionString>(&wire).unwrap(), cs);
    }

    fn id() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_-]{1,64}"
    }

    fn host() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<u32>().prop_map(|ip| Ipv4Addr::from(ip).to_string()),
            any::<u128>().prop_map(|ip| Ipv6Addr::from(ip).to_string()),
            any::<[u8; 4]>().prop_map(|b| Ipv6Addr::from([
                0,
                0,
                0,
                0,
                0,
                0xffff,
                u16::from_be_bytes([b[0], b[1]]),
                u16::from_be_bytes([b[2], b[3]])
            ])
            .to_string()),
            prop::collection::vec("[a-zA-Z]([a-zA-Z0-9-]{0,20}[a-zA-Z0-9])?", 1..5)
                .prop_map(|labels| labels.join(".")),
        ]
    }

    fn addr() -> impl Strategy<Value = NodeAddr> {
        (host(), 1..=u16::MAX).prop_map(|(host, port)| NodeAddr { host, port })
    }

    fn connection_string() -> impl Strategy<Value = ConnectionString> {
        (
            prop::collection::vec(addr(), 1..=MAX_NODE_ADDRS),
            id(),
            id(),
            any::<[u8; 32]>(),
        )
            .prop_map(|(addrs, session, invitation, fp)| {
                ConnectionString::new(addrs, session, invitation, Fingerprint(fp))
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn addrs_round_trip(a in addr()) {
            prop_assert_eq!(a.to_string().parse::<NodeAddr>(), Ok(a.clone()));
        }

        #[test]
        fn connection_strings_round_trip(cs in connection_string()) {
            let text = cs.to_string();
            prop_assert!(text.len() <= MAX_CONNECTION_STRING_LEN);
            prop_assert_eq!(text.parse::<ConnectionString>(), Ok(cs.clone()));
            prop_assert_eq!(format!(" \t{text}\n").parse::<ConnectionString>(), Ok(cs));
        }

        #[test]
        fn arbitrary_strings_never_panic(s in ".{0,200}") {
            if let Err(e) = s.parse::<ConnectionString>() {
                prop_assert!(!e.to_string().is_empty());
            }
        }

        #[test]
        fn ticket_shaped_noise_never_panics(
            s in "(tandem|TANDEM|x)://[a-z0-9.:\\[\\],/é]{0,40}(/s/)?[a-z0-9/_.-]{0,10}(\\?[a-z=&0-9]{0,80})?",
        ) {
            let _ = s.parse::<ConnectionString>();
        }

        #[test]
        fn mutated_valid_strings_never_panic(
            cs in connection_string(),
            at in any::<usize>(),
            ch in any::<char>(),
            delete in any::<bool>(),
        ) {
            let mut text = cs.to_string();
            let mut at = at % (text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            if delete && at < text.len() {
                text.remove(at);
            } else {
                text.insert(at, ch);
            }
            if let Ok(parsed) = text.parse::<ConnectionString>() {
                // Whatever parses must print back to something that parses the same.
                prop_assert_eq!(parsed.to_string().parse::<ConnectionString>(), Ok(parsed));
            }
        }
    }
}
