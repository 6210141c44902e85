//! The node's typed errors.

use thiserror::Error;

/// What can go wrong starting or running a node.
#[derive(Debug, Error)]
pub enum NodeError {
    /// The configuration is invalid.
    #[error("invalid configuration: {detail}")]
    Config {
        /// What is wrong.
        detail: String,
    },
    /// The registry could not be opened or written.
    #[error("registry: {0}")]
    Registry(#[from] tandem_registry::RegistryError),
    /// The QUIC endpoint could not be set up.
    #[error("transport: {0}")]
    Transport(#[from] tandem_transport::TransportError),
    /// The capture source failed.
    #[error("capture: {0}")]
    Capture(#[from] tandem_capture::CaptureError),
    /// An actor's mailbox is closed (the node is stopping).
    #[error("node is shutting down")]
    Stopped,
    /// A request named something that does not exist.
    #[error("{what} {id} not found")]
    NotFound {
        /// Kind of thing.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// A request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// A request is invalid.
    #[error("{0}")]
    Invalid(String),
    /// An I/O error outside the registry.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

impl From<actix::MailboxError> for NodeError {
    fn from(_: actix::MailboxError) -> Self {
        NodeError::Stopped
    }
}
