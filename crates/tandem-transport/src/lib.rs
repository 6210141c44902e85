//! QUIC transport for Tandem: the node's TLS identity, quinn endpoints with
//! certificate pinning by SHA-256 fingerprint, and the length-prefixed
//! control-stream helpers built on `tandem-proto` framing, and the
//! WebTransport side of the same endpoint (ALPN `h3`, a short-lived
//! certificate for browsers).
//!
//! Every TLS configuration here is built with
//! `builder_with_provider(ring)` and TLS 1.3 only, so no process-wide
//! crypto provider is ever installed or needed.

mod config;
mod endpoint;
mod error;
mod identity;
mod preauth;
mod reverse;
mod stream;
mod web;

pub use config::{
    AckFrequency, TransportConfig, ATTENDEE_IDLE_TIMEOUT, ATTENDEE_KEEP_ALIVE,
    PREAUTH_BIDI_STREAMS, PREAUTH_RECEIVE_WINDOW, PREAUTH_UNI_STREAMS,
    SERVER_STREAM_RECEIVE_WINDOW,
};
pub use endpoint::{
    client_endpoint, connect, connect_alpn, connect_with, init_crypto, server_endpoint,
    server_endpoint_alpn,
};
pub use error::TransportError;
pub use identity::{Identity, SERVER_NAME};
pub use preauth::{
    address_key, admit, Decision, PreAuthGate, PreAuthLimits, PreAuthPermit, PreAuthState,
    ADMITTED_RECEIVE_WINDOW, ADMITTED_UNI_STREAMS,
};
pub use reverse::{connect_as, pinned_client_server_endpoint, RefusedClients, REFUSED_KEPT};
pub use stream::{write_message, MessageReader};
pub use web::{
    dual_server_endpoint, negotiated_alpn, WebCertificate, WebCertificates, H3_ALPN,
    WEB_CERT_MAX_VALIDITY, WEB_CERT_ROTATE_AFTER, WEB_CERT_VALIDITY,
};

/// Re-exported so callers need not depend on quinn for the common types.
pub use quinn;
