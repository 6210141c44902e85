//! Reverse connect: the attendee listens, the node dials out.
//!
//! Both ends pin a certificate, as on a normal join but with the roles of
//! the TLS handshake swapped: the node (the QUIC client) pins the
//! listener's self-signed certificate by the fingerprint of the reverse
//! connection string, and presents its own node identity as a TLS client
//! certificate, which the listener (the QUIC server) accepts only if its
//! fingerprint is the one of the viewer's normal connection string. The
//! handshake signatures are verified against those certificates, so each
//! side must hold the pinned certificate's private key.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tandem_proto::{Fingerprint, ALPN};

use crate::config::TransportConfig;
use crate::endpoint::{bind_server, connect_inner, provider};
use crate::error::TransportError;
use crate::identity::Identity;

/// The fingerprints of client certificates a pinned listener refused, the
/// newest last (at most [`REFUSED_KEPT`]), so the listener can tell its user
/// which node tried.
#[derive(Clone, Debug, Default)]
pub struct RefusedClients(Arc<Mutex<Vec<Fingerprint>>>);

/// How many refused fingerprints [`RefusedClients`] keeps.
pub const REFUSED_KEPT: usize = 8;

impl RefusedClients {
    fn push(&self, found: Fingerprint) {
        let mut list = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if list.len() == REFUSED_KEPT {
            list.remove(0);
        }
        list.push(found);
    }

    /// Takes the refused fingerprints recorded since the last call.
    pub fn take(&self) -> Vec<Fingerprint> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Binds a server endpoint presenting `identity` (ALPN `tandem/1`, TLS 1.3
/// only) that completes a handshake only with a client presenting the
/// certificate whose fingerprint is `client_pin`. Refused clients'
/// fingerprints are recorded in the returned [`RefusedClients`]. Must be
/// called inside a tokio runtime.
pub fn pinned_client_server_endpoint(
    bind: SocketAddr,
    identity: &Identity,
    client_pin: Fingerprint,
    config: &TransportConfig,
) -> Result<(quinn::Endpoint, RefusedClients), TransportError> {
    let provider = provider();
    let refused = RefusedClients::default();
    let verifier = PinnedClientVerifier {
        pin: client_pin,
        refused: refused.clone(),
        algorithms: provider.signature_verification_algorithms,
    };
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TransportError::Tls)?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(vec![identity.certificate()], identity.private_key()?)
        .map_err(TransportError::Tls)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    Ok((bind_server(tls, bind, identity, config)?, refused))
}

/// Connects to `addr` like [`crate::connect_with`] (pinning the server's
/// certificate to `pin`), presenting `identity` as the TLS client
/// certificate: how a node dials a listening viewer.
pub async fn connect_as(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    pin: Fingerprint,
    identity: &Identity,
    config: &TransportConfig,
) -> Result<quinn::Connection, TransportError> {
    connect_inner(endpoint, addr, pin, config, ALPN, Some(identity)).await
}

/// Accepts exactly one client certificate, by SHA-256 fingerprint.
#[derive(Debug)]
struct PinnedClientVerifier {
    pin: Fingerprint,
    refused: RefusedClients,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for PinnedClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Self-signed certificates: there is no CA to hint at.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let found = Fingerprint::of_der(end_entity.as_ref());
        if found.0 == self.pin.0 {
            return Ok(ClientCertVerified::assertion());
        }
        tracing::warn!(expected = %self.pin, %found, "client certificate fingerprint mismatch");
        self.refused.push(found);
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::ApplicationVerificationFailure,
        ))
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn names() -> Vec<String> {
        vec!["tandem".to_owned()]
    }

    /// A listener pinning `client_pin`, and the outcome of a dial by `node`.
    async fn dial(node: &Identity, client_pin: Fingerprint) -> (bool, Vec<Fingerprint>) {
        let listener_id = Identity::generate(&names()).unwrap();
        let config = TransportConfig {
            connect_timeout: Duration::from_secs(5),
            ..TransportConfig::default()
        };
        let (server, refused) = pinned_client_server_endpoint(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            &listener_id,
            client_pin,
            &config,
        )
        .unwrap();
        let addr = server.local_addr().unwrap();
        let accept = tokio::spawn(async move {
            let incoming = server.accept().await.unwrap();
            let ok = incoming.await.is_ok();
            (ok, server)
        });
        let client =
            crate::client_endpoint(SocketAddr::from(([127, 0, 0, 1], 0)), &config).unwrap();
        // The client may see its handshake complete before the server has
        // checked its certificate: the server's verdict is what counts.
        let _ = connect_as(&client, addr, listener_id.fingerprint(), node, &config).await;
        let (ok, _server) = accept.await.unwrap();
        (ok, refused.take())
    }

    #[tokio::test]
    async fn the_pinned_client_gets_in_and_another_is_refused() {
        let node = Identity::generate(&names()).unwrap();
        let (ok, refused) = dial(&node, node.fingerprint()).await;
        assert!(ok);
        assert!(refused.is_empty());

        let other = Identity::generate(&names()).unwrap();
        let (ok, refused) = dial(&other, node.fingerprint()).await;
        assert!(!ok);
        assert_eq!(refused, vec![other.fingerprint()]);
    }
}
