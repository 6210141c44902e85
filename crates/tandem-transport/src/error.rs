//! The transport's typed error.

use std::net::SocketAddr;

use tandem_proto::{Fingerprint, ProtoError};

/// Everything that can go wrong in the transport layer.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The self-signed certificate could not be generated.
    #[error("cannot generate the tls certificate: {0}")]
    CertificateGeneration(#[source] rcgen::Error),

    /// A stored certificate or key does not parse or they do not belong together.
    #[error("invalid tls identity: {detail}")]
    InvalidIdentity {
        /// What is wrong with it.
        detail: String,
    },

    /// rustls refused the TLS configuration.
    #[error("tls configuration failed: {0}")]
    Tls(#[source] rustls::Error),

    /// The TLS configuration is not usable for QUIC (no TLS 1.3 AES-128-GCM suite).
    #[error("tls configuration is not usable for quic: {0}")]
    QuicTls(#[source] quinn::crypto::rustls::NoInitialCipherSuite),

    /// A transport setting is out of the range QUIC allows.
    #[error("invalid transport setting: {detail}")]
    Config {
        /// Which setting and why.
        detail: String,
    },

    /// The UDP socket could not be bound (or no tokio runtime is running).
    #[error("cannot bind the quic endpoint to {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The underlying socket error.
        #[source]
        source: std::io::Error,
    },

    /// quinn refused to start the connection attempt (bad address, endpoint closed).
    #[error("cannot start a connection to {addr}: {source}")]
    Connect {
        /// The peer address.
        addr: SocketAddr,
        /// quinn's reason.
        #[source]
        source: quinn::ConnectError,
    },

    /// The peer did not answer the handshake in time.
    #[error("node {addr} is unreachable: {detail}")]
    Unreachable {
        /// The peer address.
        addr: SocketAddr,
        /// Why we gave up.
        detail: String,
    },

    /// The server presented a certificate other than the pinned one.
    #[error("server certificate fingerprint {found} does not match the pinned {expected}; the connection string is stale or someone is in the middle")]
    FingerprintMismatch {
        /// The fingerprint from the connection string.
        expected: Fingerprint,
        /// The fingerprint of the certificate the server presented.
        found: Fingerprint,
    },

    /// The QUIC connection failed or was closed.
    #[error("connection failed: {0}")]
    Connection(#[from] quinn::ConnectionError),

    /// Writing to a stream failed.
    #[error("stream write failed: {0}")]
    Write(#[from] quinn::WriteError),

    /// Reading from a stream failed.
    #[error("stream read failed: {0}")]
    Read(#[from] quinn::ReadError),

    /// Reading or writing a stream failed (reset, stopped, connection lost).
    #[error("stream failed: {0}")]
    Stream(#[source] std::io::Error),

    /// The peer sent bytes that are not a valid message (malformed or oversized).
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtoError),

    /// The stream ended in the middle of a message.
    #[error("stream ended in the middle of a message ({buffered} bytes pending)")]
    Truncated {
        /// Bytes received for the unfinished message.
        buffered: usize,
    },
}
