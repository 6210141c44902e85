//! The reverse connection string: what a listening viewer hands the sharer
//! (the Desktop Sharing API's `StartReverseConnectListener` output, given
//! to `ConnectToClient`).
//!
//! `tandem-reverse://host:port/?fp=<sha256 hex>`
//!
//! One address, the viewer's listener, and the fingerprint of the
//! listener's self-signed certificate, which the node pins when it dials.
//! It names no session: the viewer says which one in its `Hello`, with the
//! invitation and password, as on a normal join. Parsed as strictly and
//! within the same bounds as the connection string.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::ticket::echo;
use crate::{AddrError, Fingerprint, FingerprintError, NodeAddr, MAX_CONNECTION_STRING_LEN};

/// Scheme every reverse connection string starts with (matched case-insensitively).
pub const REVERSE_SCHEME: &str = "tandem-reverse://";

/// Where a listening viewer waits for the node to dial in, and the
/// certificate it presents there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReverseConnectionString {
    /// The listener's address.
    pub addr: NodeAddr,
    /// SHA-256 fingerprint of the listener's certificate, pinned by the node.
    pub fingerprint: Fingerprint,
}

/// Text that is not a valid reverse connection string.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReverseStringError {
    /// Nothing but whitespace was given.
    #[error("empty reverse connection string")]
    Empty,
    /// Longer than [`MAX_CONNECTION_STRING_LEN`].
    #[error("reverse connection string too long: {len} bytes, at most {max} allowed")]
    TooLong {
        /// Length in bytes, after trimming.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// Does not start with `tandem-reverse://`.
    #[error("not a reverse connection string: it must start with tandem-reverse:// (a viewer started with --listen prints one)")]
    MissingScheme,
    /// The address is malformed.
    #[error("bad listener address: {0}")]
    BadAddress(#[source] AddrError),
    /// A path other than `/` (or none).
    #[error("unexpected path {path:?}: a reverse connection string has none")]
    BadPath {
        /// The rejected path.
        path: String,
    },
    /// A query parameter other than one `fp=`.
    #[error("unexpected query parameter {param:?}: only fp= is allowed, once")]
    BadParameter {
        /// The rejected parameter.
        param: String,
    },
    /// No `fp=` parameter.
    #[error("missing fp= fingerprint")]
    MissingFingerprint,
    /// The `fp=` value is not 64 hex digits.
    #[error("bad fp= fingerprint: {0}")]
    BadFingerprint(#[source] FingerprintError),
}

impl fmt::Display for ReverseConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{REVERSE_SCHEME}{}/?fp={}", self.addr, self.fingerprint)
    }
}

impl FromStr for ReverseConnectionString {
    type Err = ReverseStringError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use ReverseStringError as E;
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
        let rest = match s.get(..REVERSE_SCHEME.len()) {
            Some(scheme) if scheme.eq_ignore_ascii_case(REVERSE_SCHEME) => {
                &s[REVERSE_SCHEME.len()..]
            }
            _ => return Err(E::MissingScheme),
        };
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at(authority_end);
        if authority.trim() != authority {
            return Err(E::BadAddress(AddrError::BadHost {
                host: echo(authority),
            }));
        }
        let addr = authority.parse::<NodeAddr>().map_err(E::BadAddress)?;
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, query),
            None => (rest, ""),
        };
        if !path.is_empty() && path != "/" {
            return Err(E::BadPath { path: echo(path) });
        }
        let mut fingerprint = None;
        for param in query.split('&').filter(|_| !query.is_empty()) {
            match param.split_once('=') {
                Some(("fp", value)) if fingerprint.is_none() => fingerprint = Some(value),
                _ => return Err(E::BadParameter { param: echo(param) }),
            }
        }
        let fingerprint = fingerprint
            .ok_or(E::MissingFingerprint)?
            .parse::<Fingerprint>()
            .map_err(E::BadFingerprint)?;
        Ok(ReverseConnectionString { addr, fingerprint })
    }
}

impl Serialize for ReverseConnectionString {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ReverseConnectionString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn round_trips() {
        for text in [
            format!("tandem-reverse://127.0.0.1:5000/?fp={FP}"),
            format!("tandem-reverse://[::1]:5000/?fp={FP}"),
            format!("tandem-reverse://desk.example:443/?fp={FP}"),
        ] {
            let parsed: ReverseConnectionString = text.parse().unwrap();
            assert_eq!(parsed.to_string(), text);
        }
        let bare: ReverseConnectionString = format!("  TANDEM-REVERSE://10.0.0.1:1?fp={FP} ")
            .parse()
            .unwrap();
        assert_eq!(bare.addr, NodeAddr::new("10.0.0.1", 1));
    }

    #[test]
    fn says_what_is_wrong() {
        use ReverseStringError as E;
        type Check = fn(&E) -> bool;
        let cases: Vec<(String, Check)> = vec![
            ("".into(), |e| matches!(e, E::Empty)),
            (format!("tandem://1.2.3.4:5/?fp={FP}"), |e| {
                matches!(e, E::MissingScheme)
            }),
            (format!("tandem-reverse://1.2.3.4/?fp={FP}"), |e| {
                matches!(e, E::BadAddress(AddrError::MissingPort))
            }),
            (format!("tandem-reverse://1.2.3.4:5/s/x?fp={FP}"), |e| {
                matches!(e, E::BadPath { .. })
            }),
            ("tandem-reverse://1.2.3.4:5/".into(), |e| {
                matches!(e, E::MissingFingerprint)
            }),
            (
                format!("tandem-reverse://1.2.3.4:5/?fp={FP}&fp={FP}"),
                |e| matches!(e, E::BadParameter { .. }),
            ),
            (format!("tandem-reverse://1.2.3.4:5/?fp={FP}&pw=x"), |e| {
                matches!(e, E::BadParameter { .. })
            }),
            ("tandem-reverse://1.2.3.4:5/?fp=abc".into(), |e| {
                matches!(e, E::BadFingerprint(_))
            }),
            (
                format!("tandem-reverse://1.2.3.4:5/?fp={}", "a".repeat(5000)),
                |e| matches!(e, E::TooLong { .. }),
            ),
        ];
        for (text, expected) in cases {
            let error = text.parse::<ReverseConnectionString>().unwrap_err();
            assert!(expected(&error), "{text:?}: {error:?}");
        }
    }
}
