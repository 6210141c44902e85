//! Typed errors of the registry.

use std::path::PathBuf;

/// Everything that can go wrong while reading or writing the registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The sled store could not be opened (missing permissions, already open
    /// in another process, or unreadable files).
    #[error("cannot open the registry at {path}; is another tandem node using it?")]
    Open {
        /// Directory of the store.
        path: PathBuf,
        /// What sled reported.
        #[source]
        source: sled::Error,
    },
    /// The store was written by a newer schema than this binary understands;
    /// it was left untouched.
    #[error(
        "registry schema {found} is newer than the supported schema {supported}; \
         upgrade tandem or point it at another registry directory"
    )]
    SchemaTooNew {
        /// Schema version recorded in the store.
        found: u32,
        /// Newest schema version this binary supports.
        supported: u32,
    },
    /// The directory holds a sled store that is not a tandem registry.
    #[error("{path} holds a sled store that is not a tandem registry; use an empty directory")]
    NotARegistry {
        /// Directory of the store.
        path: PathBuf,
    },
    /// A stored key or value could not be decoded.
    #[error("corrupt registry record in tree {tree} at key {key}: {detail}")]
    Corrupt {
        /// Tree holding the record.
        tree: &'static str,
        /// Printable form of the key.
        key: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A stored value carries a record format version this binary does not know.
    #[error(
        "record in tree {tree} at key {key} has unsupported format version {version}; \
         was it written by a newer tandem?"
    )]
    UnsupportedRecord {
        /// Tree holding the record.
        tree: &'static str,
        /// Printable form of the key.
        key: String,
        /// The version byte found.
        version: u8,
    },
    /// A record handed to the registry cannot be stored (for example an empty id).
    #[error("invalid {what} record: {detail}")]
    InvalidRecord {
        /// Kind of record.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// A persisted counter reached its maximum.
    #[error("registry counter {counter} is exhausted")]
    CounterExhausted {
        /// Name of the counter.
        counter: &'static str,
    },
    /// sled reported an I/O or internal error.
    #[error("registry storage error")]
    Storage(#[from] sled::Error),
    /// A record could not be serialized.
    #[error("cannot encode {what} record")]
    Encode {
        /// Kind of record.
        what: &'static str,
        /// What postcard reported.
        #[source]
        source: postcard::Error,
    },
}
