//! Value and key encoding: one record format version byte followed by
//! postcard bytes; integer keys are big-endian so sled ranges are ordered.

use serde::{de::DeserializeOwned, Serialize};

use crate::RegistryError;

/// Format version written in front of every value.
pub(crate) const RECORD_FORMAT: u8 = 1;

/// Encodes `value` as the format byte followed by its postcard bytes.
pub(crate) fn encode<T: Serialize>(
    what: &'static str,
    value: &T,
) -> Result<Vec<u8>, RegistryError> {
    postcard::to_extend(value, vec![RECORD_FORMAT])
        .map_err(|source| RegistryError::Encode { what, source })
}

/// Decodes a value written by [`encode`], rejecting unknown format versions
/// and trailing bytes.
pub(crate) fn decode<T: DeserializeOwned>(
    tree: &'static str,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, RegistryError> {
    let Some((&version, body)) = bytes.split_first() else {
        return Err(corrupt(tree, key, "empty value"));
    };
    if version != RECORD_FORMAT {
        return Err(RegistryError::UnsupportedRecord {
            tree,
            key: printable_key(key),
            version,
        });
    }
    let (value, rest) = postcard::take_from_bytes::<T>(body)
        .map_err(|error| corrupt(tree, key, &format!("cannot decode: {error}")))?;
    if !rest.is_empty() {
        return Err(corrupt(
            tree,
            key,
            &format!("{} trailing bytes after the record", rest.len()),
        ));
    }
    Ok(value)
}

/// Big-endian key of an integer id or sequence number.
pub(crate) fn u64_key(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

/// Reads a big-endian `u64` key or value.
pub(crate) fn read_u64(tree: &'static str, key: &[u8], bytes: &[u8]) -> Result<u64, RegistryError> {
    let arr: [u8; 8] = bytes.try_into().map_err(|_| {
        corrupt(
            tree,
            key,
            &format!("expected 8 bytes, found {}", bytes.len()),
        )
    })?;
    Ok(u64::from_be_bytes(arr))
}

/// Builds a [`RegistryError::Corrupt`].
pub(crate) fn corrupt(tree: &'static str, key: &[u8], detail: &str) -> RegistryError {
    RegistryError::Corrupt {
        tree,
        key: printable_key(key),
        detail: detail.to_owned(),
    }
}

/// A key as text: UTF-8 if it is, the number for 8-byte binary keys, hex otherwise.
pub(crate) fn printable_key(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => s.to_owned(),
        _ => match <[u8; 8]>::try_from(key) {
            Ok(arr) => u64::from_be_bytes(arr).to_string(),
            Err(_) => key.iter().map(|b| format!("{b:02x}")).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_format_version_is_an_error_not_a_panic() {
        let mut bytes = encode("t", &(1u32, String::from("x"))).unwrap();
        bytes[0] = 9;
        let err = decode::<(u32, String)>("t", b"k", &bytes).unwrap_err();
        assert!(matches!(
            err,
            RegistryError::UnsupportedRecord { version: 9, .. }
        ));
    }

    #[test]
    fn garbage_is_corrupt() {
        for bytes in [
            &[][..],
            &[RECORD_FORMAT][..],
            &[RECORD_FORMAT, 0xff, 0xff][..],
        ] {
            let err = decode::<(u32, String)>("t", &[0, 0, 0, 0, 0, 0, 0, 1], bytes).unwrap_err();
            assert!(matches!(err, RegistryError::Corrupt { .. }), "{err:?}");
        }
        let mut ok = encode("t", &7u32).unwrap();
        ok.push(0);
        assert!(matches!(
            decode::<u32>("t", b"k", &ok),
            Err(RegistryError::Corrupt { .. })
        ));
    }

    #[test]
    fn keys_print_readably() {
        assert_eq!(printable_key(b"sess-1"), "sess-1");
        assert_eq!(printable_key(&u64_key(42)), "42");
        assert_eq!(printable_key(&[0, 1]), "0001");
    }
}
