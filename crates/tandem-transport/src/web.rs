//! WebTransport on the node's QUIC port: one quinn endpoint negotiates
//! either `tandem/1` (native viewers) or `h3` (browsers), and presents a
//! certificate chosen by the ALPN the client offers.
//!
//! Native viewers pin the node's long-lived identity by fingerprint.
//! Browsers cannot: Chromium accepts a self-signed WebTransport certificate
//! only through `serverCertificateHashes`, and only an ECDSA one valid for
//! at most 14 days. [`WebCertificates`] holds such a certificate, made
//! fresh at start and rotated by the caller ([`WebCertificates::rotate_if_due`],
//! time passed in) well before it expires; the page learns its current
//! SHA-256 from the node over its own HTTP origin.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tandem_proto::{Fingerprint, ALPN};
use time::OffsetDateTime;

use crate::config::TransportConfig;
use crate::error::TransportError;
use crate::identity::Identity;

/// The ALPN of HTTP/3, which WebTransport runs on.
pub const H3_ALPN: &[u8] = b"h3";

/// Longest validity Chromium accepts for a certificate pinned by hash.
pub const WEB_CERT_MAX_VALIDITY: Duration = Duration::from_secs(14 * 24 * 3600);

/// Validity of each WebTransport certificate: under the maximum, so a
/// clock a little off on either side never makes Chromium refuse it.
pub const WEB_CERT_VALIDITY: Duration = Duration::from_secs(13 * 24 * 3600);

/// Age at which the certificate is replaced: long before it expires, so
/// an attendee who joined on the old one never sees it run out mid-session
/// (a live QUIC connection does not re-check validity, a new one does).
pub const WEB_CERT_ROTATE_AFTER: Duration = Duration::from_secs(6 * 24 * 3600);

/// Slack before `now` in `not_before`, for clients whose clocks run behind.
const BACKDATE: Duration = Duration::from_secs(3600);

/// One WebTransport certificate: ECDSA P-256, self-signed, short-lived.
#[derive(Clone)]
pub struct WebCertificate {
    key: Arc<CertifiedKey>,
    hash: Fingerprint,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

impl std::fmt::Debug for WebCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("WebCertificate")
            .field("sha256", &self.hash.to_string())
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl WebCertificate {
    /// A new certificate valid from a little before `now` for [`WEB_CERT_VALIDITY`],
    /// for the DNS names or IP addresses in `names`.
    pub fn generate(names: &[String], now: OffsetDateTime) -> Result<Self, TransportError> {
        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(TransportError::CertificateGeneration)?;
        let mut params = rcgen::CertificateParams::new(names.to_vec())
            .map_err(TransportError::CertificateGeneration)?;
        let not_before = now - BACKDATE;
        let not_after = not_before + WEB_CERT_VALIDITY;
        params.not_before = not_before;
        params.not_after = not_after;
        let cert = params
            .self_signed(&key_pair)
            .map_err(TransportError::CertificateGeneration)?;
        let der = cert.der().to_vec();
        let hash = Fingerprint::of_der(&der);
        let signing = rustls::crypto::ring::default_provider()
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                key_pair.serialize_der(),
            )))
            .map_err(|error| TransportError::InvalidIdentity {
                detail: format!("generated web certificate key does not load: {error}"),
            })?;
        Ok(WebCertificate {
            key: Arc::new(CertifiedKey::new(vec![CertificateDer::from(der)], signing)),
            hash,
            not_before,
            not_after,
        })
    }

    /// The SHA-256 of the certificate (what `serverCertificateHashes` takes).
    pub fn sha256(&self) -> Fingerprint {
        Fingerprint(self.hash.0)
    }

    /// The certificate's DER bytes.
    pub fn cert_der(&self) -> &[u8] {
        self.key.cert.first().map_or(&[], |c| c.as_ref())
    }

    /// Start of validity.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// End of validity.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }
}

/// The node's current WebTransport certificate, shared by the TLS resolver
/// (which presents it) and the HTTP side (which publishes its hash).
#[derive(Debug)]
pub struct WebCertificates {
    names: Vec<String>,
    current: RwLock<WebCertificate>,
}

impl WebCertificates {
    /// A first certificate for `names`, valid from `now`.
    pub fn new(names: Vec<String>, now: OffsetDateTime) -> Result<Self, TransportError> {
        let current = WebCertificate::generate(&names, now)?;
        Ok(WebCertificates {
            names,
            current: RwLock::new(current),
        })
    }

    /// The certificate presented now.
    pub fn current(&self) -> WebCertificate {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the certificate when it is [`WEB_CERT_ROTATE_AFTER`] old;
    /// returns whether it did.
    pub fn rotate_if_due(&self, now: OffsetDateTime) -> Result<bool, TransportError> {
        let current = self.current();
        if now - current.not_before() < WEB_CERT_ROTATE_AFTER + BACKDATE {
            return Ok(false);
        }
        let fresh = WebCertificate::generate(&self.names, now)?;
        tracing::info!(sha256 = %fresh.sha256(), not_after = %fresh.not_after(), "web certificate rotated");
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(true)
    }
}

/// Chooses the certificate by the client's ALPN: `h3` alone gets the
/// WebTransport certificate, anything else the node's pinned identity.
#[derive(Debug)]
struct AlpnCertResolver {
    native: Arc<CertifiedKey>,
    web: Arc<WebCertificates>,
}

impl ResolvesServerCert for AlpnCertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let offers: Vec<&[u8]> = hello.alpn().into_iter().flatten().collect();
        let browser = offers.contains(&H3_ALPN) && !offers.contains(&ALPN);
        Some(if browser {
            self.web.current().key
        } else {
            self.native.clone()
        })
    }
}

/// Bind the node's attendee endpoint serving both `tandem/1` (presenting
/// `identity`) and `h3` (presenting the current certificate of `web`),
/// TLS 1.3 only. Must be called inside a tokio runtime.
pub fn dual_server_endpoint(
    bind: std::net::SocketAddr,
    identity: &Identity,
    web: Arc<WebCertificates>,
    config: &TransportConfig,
) -> Result<quinn::Endpoint, TransportError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let native = Arc::new(CertifiedKey::new(
        vec![identity.certificate()],
        provider
            .key_provider
            .load_private_key(identity.private_key()?)
            .map_err(|error| TransportError::InvalidIdentity {
                detail: format!("unsupported private key: {error}"),
            })?,
    ));
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TransportError::Tls)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(AlpnCertResolver { native, web }));
    tls.alpn_protocols = vec![ALPN.to_vec(), H3_ALPN.to_vec()];
    crate::endpoint::bind_server(tls, bind, identity, config)
}

/// The ALPN a connection negotiated, if any.
pub fn negotiated_alpn(conn: &quinn::Connection) -> Option<Vec<u8>> {
    conn.handshake_data()?
        .downcast::<quinn::crypto::rustls::HandshakeData>()
        .ok()?
        .protocol
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
    }

    #[test]
    fn certificates_are_short_lived_ecdsa() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let cert = WebCertificate::generate(&names(), now).unwrap();
        let span = cert.not_after() - cert.not_before();
        assert!(span <= WEB_CERT_MAX_VALIDITY, "{span}");
        assert!(cert.not_before() < now && now < cert.not_after());
        // id-ecPublicKey and prime256v1 in the SubjectPublicKeyInfo.
        let der = cert.cert_der();
        let has = |oid: &[u8]| der.windows(oid.len()).any(|w| w == oid);
        assert!(has(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]));
        assert!(has(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]));
        assert_eq!(cert.sha256().0, Fingerprint::of_der(der).0);
    }

    #[test]
    fn rotation_happens_only_when_due_and_changes_the_hash() {
        let start = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let certs = WebCertificates::new(names(), start).unwrap();
        let first = certs.current().sha256();
        assert!(!certs
            .rotate_if_due(start + Duration::from_secs(24 * 3600))
            .unwrap());
        assert_eq!(certs.current().sha256().0, first.0);
        let later = start + WEB_CERT_ROTATE_AFTER + Duration::from_secs(60);
        assert!(certs.rotate_if_due(later).unwrap());
        let second = certs.current();
        assert_ne!(second.sha256().0, first.0);
        assert!(second.not_before() < later && later < second.not_after());
        // Rotated long before the old one expired.
        assert!(later < start + WEB_CERT_VALIDITY - Duration::from_secs(24 * 3600));
    }
}
