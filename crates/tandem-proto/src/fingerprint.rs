//! Certificate fingerprints: the SHA-256 of a node's DER certificate, which
//! a connection string carries and a viewer pins.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// SHA-256 fingerprint of a DER certificate.
///
/// Shown as 64 lowercase hex digits (both `Display` and `Debug`); parsed from
/// exactly 64 hex digits of either case, without separators. Serialized as
/// that hex string.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

/// Text that is not a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FingerprintError {
    /// Not exactly 64 characters.
    #[error("fingerprint must be 64 hex digits (a SHA-256), got {len} characters")]
    WrongLength {
        /// Number of characters given.
        len: usize,
    },
    /// A character outside `0-9 a-f A-F`.
    #[error("fingerprint must contain only hex digits 0-9 a-f")]
    NotHex,
}

impl Fingerprint {
    /// Fingerprint of a DER-encoded certificate.
    pub fn of_der(cert_der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(cert_der).into())
    }

    /// The 32 digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 64];
        // Cannot fail: the buffer is exactly twice the digest length.
        hex::encode_to_slice(self.0, &mut buf).map_err(|_| fmt::Error)?;
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Fingerprint {
    type Err = FingerprintError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let len = s.chars().count();
        if len != 64 {
            return Err(FingerprintError::WrongLength { len });
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| FingerprintError::NotHex)?;
        Ok(Fingerprint(out))
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn of_der_is_sha256() {
        let fp = Fingerprint::of_der(b"");
        assert_eq!(fp.to_string(), EMPTY_SHA256);
        assert_eq!(format!("{fp:?}"), EMPTY_SHA256);
        assert_eq!(fp.to_hex(), EMPTY_SHA256);
    }

    #[test]
    fn parses_strict_hex() {
        let fp: Fingerprint = EMPTY_SHA256.parse().unwrap();
        assert_eq!(fp, Fingerprint::of_der(b""));
        let upper: Fingerprint = EMPTY_SHA256.to_uppercase().parse().unwrap();
        assert_eq!(upper, fp);
        assert_eq!(
            "abc".parse::<Fingerprint>(),
            Err(FingerprintError::WrongLength { len: 3 })
        );
        let colons = "e3:b0".repeat(16);
        assert!(colons.parse::<Fingerprint>().is_err());
        let bad = format!("{}g", &EMPTY_SHA256[..63]);
        assert_eq!(bad.parse::<Fingerprint>(), Err(FingerprintError::NotHex));
        let multibyte = format!("{}é", &EMPTY_SHA256[..63]);
        assert!(multibyte.parse::<Fingerprint>().is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn display_parse_round_trip(bytes in any::<[u8; 32]>()) {
            let fp = Fingerprint(bytes);
            prop_assert_eq!(fp.to_string().parse::<Fingerprint>(), Ok(fp));
            let wire = postcard::to_allocvec(&fp).unwrap();
            prop_assert_eq!(postcard::from_bytes::<Fingerprint>(&wire).unwrap(), fp);
        }

        #[test]
        fn arbitrary_text_never_panics(s in ".{0,80}") {
            let _ = s.parse::<Fingerprint>();
        }
    }
}
