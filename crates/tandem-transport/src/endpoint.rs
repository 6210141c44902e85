//! quinn endpoints for both roles and the pinned-fingerprint connect.
//!
//! The client does no CA validation: the SHA-256 fingerprint of the
//! server certificate, taken from the connection string, is the trust
//! anchor (the `KH` of a Windows Desktop Sharing ticket). The TLS 1.3
//! handshake signature is still verified against that certificate, so a
//! peer must hold the pinned certificate's private key.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tandem_proto::{Fingerprint, ALPN};

use crate::config::TransportConfig;
use crate::error::TransportError;
use crate::identity::{Identity, SERVER_NAME};

/// Length of the connection IDs every endpoint of this crate issues.
///
/// Each short-header packet carries its receiver's ID, so at 10 typed
/// glyphs a second quinn's default 8 bytes cost 4 more per packet than
/// needed. Four random bytes still tell an endpoint's connections apart
/// (quinn draws again on a collision with a live one) and keep routing by
/// ID, so a client whose address changes (NAT rebinding) keeps its
/// connection. Not zero: a zero-length ID is routed by the peer's address
/// alone, and quinn then confuses two connections of one endpoint to the
/// same address (a reconnect while the old one drains).
pub const CONNECTION_ID_LEN: usize = 4;

/// quinn's endpoint settings with [`CONNECTION_ID_LEN`]-byte connection IDs.
fn endpoint_config() -> quinn::EndpointConfig {
    let mut config = quinn::EndpointConfig::default();
    config.cid_generator(|| {
        Box::new(quinn_proto::RandomConnectionIdGenerator::new(
            CONNECTION_ID_LEN,
        ))
    });
    config
}

/// The UDP receive buffer an endpoint asks for (the kernel caps it at
/// `net.core.rmem_max`). One socket carries every connection of an
/// endpoint: with the default (about 208 KiB) a busy reader loses
/// packets in a burst, and a lost handshake packet costs a 1-s PTO.
const RECV_BUFFER_BYTES: usize = 4 << 20;

/// A quinn endpoint on a UDP socket bound to `bind`, on the tokio runtime.
fn endpoint_on(
    bind: SocketAddr,
    server: Option<quinn::ServerConfig>,
) -> Result<quinn::Endpoint, TransportError> {
    let bind_error = |source| TransportError::Bind { addr: bind, source };
    let socket = std::net::UdpSocket::bind(bind).map_err(bind_error)?;
    // Best effort: a smaller buffer still works, as before.
    if let Err(error) = socket2::SockRef::from(&socket).set_recv_buffer_size(RECV_BUFFER_BYTES) {
        tracing::debug!(%bind, %error, "udp receive buffer not raised");
    }
    let runtime = quinn::default_runtime()
        .ok_or_else(|| bind_error(std::io::Error::other("no async runtime found")))?;
    quinn::Endpoint::new(endpoint_config(), server, socket, runtime).map_err(bind_error)
}

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Kept for callers that expect a crypto initialisation step. It installs
/// nothing: every configuration in this crate names the ring provider
/// explicitly, so several providers compiled into one binary never clash.
pub fn init_crypto() {}

/// Bind a server endpoint presenting `identity`, ALPN `tandem/1`, TLS 1.3
/// only. Must be called inside a tokio runtime.
pub fn server_endpoint(
    bind: SocketAddr,
    identity: &Identity,
    config: &TransportConfig,
) -> Result<quinn::Endpoint, TransportError> {
    server_endpoint_alpn(bind, identity, config, ALPN)
}

/// Like [`server_endpoint`] with another ALPN (node-to-node relay links use
/// their own, so an attendee can never open one by mistake).
pub fn server_endpoint_alpn(
    bind: SocketAddr,
    identity: &Identity,
    config: &TransportConfig,
    alpn: &[u8],
) -> Result<quinn::Endpoint, TransportError> {
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TransportError::Tls)?
        .with_no_client_auth()
        .with_single_cert(vec![identity.certificate()], identity.private_key()?)
        .map_err(TransportError::Tls)?;
    tls.alpn_protocols = vec![alpn.to_vec()];
    bind_server(tls, bind, identity, config)
}

/// Binds a quinn server endpoint on `tls` with `config`'s transport
/// settings (every server endpoint of this crate goes through here).
pub(crate) fn bind_server(
    tls: rustls::ServerConfig,
    bind: SocketAddr,
    identity: &Identity,
    config: &TransportConfig,
) -> Result<quinn::Endpoint, TransportError> {
    let quic = QuicServerConfig::try_from(tls).map_err(TransportError::QuicTls)?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(quic));
    server.transport_config(config.to_quinn()?);
    let endpoint = endpoint_on(bind, Some(server))?;
    tracing::info!(
        addr = %endpoint.local_addr().unwrap_or(bind),
        fingerprint = %identity.fingerprint(),
        "quic server endpoint bound"
    );
    Ok(endpoint)
}

/// Bind a client-only endpoint. It has no default client configuration on
/// purpose: connect through [`connect`] or [`connect_with`], which pin the
/// server certificate. `config` is validated here so a bad setting fails
/// early. Must be called inside a tokio runtime.
pub fn client_endpoint(
    bind: SocketAddr,
    config: &TransportConfig,
) -> Result<quinn::Endpoint, TransportError> {
    config.to_quinn()?;
    let endpoint = endpoint_on(bind, None)?;
    tracing::debug!(addr = %endpoint.local_addr().unwrap_or(bind), "quic client endpoint bound");
    Ok(endpoint)
}

/// Connect to `addr` with the default [`TransportConfig`], accepting only
/// a server whose certificate has fingerprint `pin`.
pub async fn connect(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    pin: Fingerprint,
) -> Result<quinn::Connection, TransportError> {
    connect_with(endpoint, addr, pin, &TransportConfig::default()).await
}

/// Connect to `addr` with `config` (transport parameters and
/// `connect_timeout`), accepting only a server whose certificate has
/// fingerprint `pin`.
pub async fn connect_with(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    pin: Fingerprint,
    config: &TransportConfig,
) -> Result<quinn::Connection, TransportError> {
    connect_alpn(endpoint, addr, pin, config, ALPN).await
}

/// Like [`connect_with`] with another ALPN (relay links).
pub async fn connect_alpn(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    pin: Fingerprint,
    config: &TransportConfig,
    alpn: &[u8],
) -> Result<quinn::Connection, TransportError> {
    connect_inner(endpoint, addr, pin, config, alpn, None).await
}

/// The pinned connect of every client role, presenting `client_identity`
/// as the TLS client certificate when given (a node dialing a listening
/// viewer: [`crate::connect_as`]).
pub(crate) async fn connect_inner(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    pin: Fingerprint,
    config: &TransportConfig,
    alpn: &[u8],
    client_identity: Option<&Identity>,
) -> Result<quinn::Connection, TransportError> {
    let seen = Arc::new(Mutex::new(None));
    let provider = provider();
    let verifier = PinnedServerVerifier {
        pin: Fingerprint(pin.0),
        seen: Arc::clone(&seen),
        algorithms: provider.signature_verification_algorithms,
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TransportError::Tls)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let mut tls = match client_identity {
        Some(identity) => builder
            .with_client_auth_cert(vec![identity.certificate()], identity.private_key()?)
            .map_err(TransportError::Tls)?,
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![alpn.to_vec()];
    let quic = QuicClientConfig::try_from(tls).map_err(TransportError::QuicTls)?;
    let mut client = quinn::ClientConfig::new(Arc::new(quic));
    client.transport_config(config.to_quinn()?);

    let connecting = endpoint
        .connect_with(client, addr, SERVER_NAME)
        .map_err(|source| TransportError::Connect { addr, source })?;
    let outcome = tokio::time::timeout(config.connect_timeout, connecting).await;
    let found = seen.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(found) = found {
        if found.0 != pin.0 {
            tracing::warn!(%addr, expected = %pin, %found, "server certificate fingerprint mismatch");
            return Err(TransportError::FingerprintMismatch {
                expected: pin,
                found,
            });
        }
    }
    match outcome {
        Ok(Ok(connection)) => {
            tracing::debug!(%addr, "connected");
            Ok(connection)
        }
        Ok(Err(quinn::ConnectionError::TimedOut)) => Err(TransportError::Unreachable {
            addr,
            detail: "the handshake timed out".to_owned(),
        }),
        Ok(Err(error)) => Err(TransportError::Connection(error)),
        Err(_elapsed) => Err(TransportError::Unreachable {
            addr,
            detail: format!("no answer within {:?}", config.connect_timeout),
        }),
    }
}

/// Accepts exactly one certificate, by SHA-256 fingerprint, and records
/// what the server presented so a mismatch can be reported precisely.
#[derive(Debug)]
struct PinnedServerVerifier {
    pin: Fingerprint,
    seen: Arc<Mutex<Option<Fingerprint>>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let found = Fingerprint::of_der(end_entity.as_ref());
        let matches = found.0 == self.pin.0;
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = Some(found);
        if matches {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // QUIC is TLS 1.3 only; a TLS 1.2 handshake is never acceptable.
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
