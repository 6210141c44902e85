//! The node's TLS identity: a self-signed certificate and its private key.
//!
//! The certificate is never validated against a CA; its SHA-256
//! fingerprint, carried in connection strings, is the trust anchor. The
//! registry persists the DER bytes so fingerprints stay valid across
//! restarts.

use std::fmt;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::{CertifiedKey, SigningKey};
use tandem_proto::Fingerprint;

use crate::error::TransportError;

/// The TLS server name clients send; generated identities carry it as a SAN.
pub const SERVER_NAME: &str = "tandem";

/// A self-signed certificate and its key, both DER encoded.
#[derive(Clone)]
pub struct Identity {
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("Identity")
            .field("fingerprint", &self.fingerprint().to_string())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Generate a fresh self-signed certificate whose subject alternative
    /// names are `names` (e.g. `"tandem"`, `"localhost"`).
    pub fn generate(names: &[String]) -> Result<Identity, TransportError> {
        let names = if names.is_empty() {
            vec![SERVER_NAME.to_owned()]
        } else {
            names.to_vec()
        };
        let certified = rcgen::generate_simple_self_signed(names)
            .map_err(TransportError::CertificateGeneration)?;
        let identity = Identity {
            cert_der: certified.cert.der().to_vec(),
            key_der: certified.key_pair.serialize_der(),
        };
        tracing::debug!(fingerprint = %identity.fingerprint(), "generated tls identity");
        Ok(identity)
    }

    /// The identity every member of a cluster derives from the same 32-byte
    /// seed (an HMAC of the cluster secret): an Ed25519 key from the seed and
    /// a certificate with fixed fields, so every member presents the same
    /// certificate and one fingerprint in a connection string pins them all.
    pub fn from_seed(names: &[String], seed: [u8; 32]) -> Result<Identity, TransportError> {
        // PKCS#8 v1 of an Ed25519 private key (RFC 8410): a fixed prefix and the seed.
        const PREFIX: [u8; 16] = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        let mut pkcs8 = PREFIX.to_vec();
        pkcs8.extend_from_slice(&seed);
        let key_pair = rcgen::KeyPair::try_from(pkcs8.as_slice())
            .map_err(TransportError::CertificateGeneration)?;
        let names = if names.is_empty() {
            vec![SERVER_NAME.to_owned()]
        } else {
            names.to_vec()
        };
        let mut params =
            rcgen::CertificateParams::new(names).map_err(TransportError::CertificateGeneration)?;
        params.serial_number = Some(rcgen::SerialNumber::from(vec![1u8]));
        params.not_before = rcgen::date_time_ymd(2025, 1, 1);
        params.not_after = rcgen::date_time_ymd(4096, 1, 1);
        let cert = params
            .self_signed(&key_pair)
            .map_err(TransportError::CertificateGeneration)?;
        Identity::from_der(cert.der().to_vec(), key_pair.serialize_der())
    }

    /// Rebuild an identity from stored DER bytes, checking that the
    /// certificate parses, the key is one rustls can sign with, and that
    /// they belong together.
    pub fn from_der(cert_der: Vec<u8>, key_der: Vec<u8>) -> Result<Identity, TransportError> {
        let identity = Identity { cert_der, key_der };
        let certified = CertifiedKey::new(vec![identity.certificate()], identity.signing_key()?);
        certified
            .keys_match()
            .map_err(|error| TransportError::InvalidIdentity {
                detail: format!("certificate and key do not match or do not parse: {error}"),
            })?;
        Ok(identity)
    }

    /// The certificate, DER encoded.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The private key, DER encoded (PKCS#8 for generated identities).
    pub fn key_der(&self) -> &[u8] {
        &self.key_der
    }

    /// SHA-256 of the certificate: what clients pin.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of_der(&self.cert_der)
    }

    pub(crate) fn certificate(&self) -> CertificateDer<'static> {
        CertificateDer::from(self.cert_der.clone())
    }

    pub(crate) fn private_key(&self) -> Result<PrivateKeyDer<'static>, TransportError> {
        PrivateKeyDer::try_from(self.key_der.clone()).map_err(|error| {
            TransportError::InvalidIdentity {
                detail: format!("private key does not parse: {error}"),
            }
        })
    }

    fn signing_key(&self) -> Result<Arc<dyn SigningKey>, TransportError> {
        let key = self.private_key()?;
        rustls::crypto::ring::default_provider()
            .key_provider
            .load_private_key(key)
            .map_err(|error| TransportError::InvalidIdentity {
                detail: format!("unsupported private key: {error}"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["tandem".to_owned(), "localhost".to_owned()]
    }

    #[test]
    fn round_trip_keeps_fingerprint() {
        let id = Identity::generate(&names()).unwrap();
        let back = Identity::from_der(id.cert_der().to_vec(), id.key_der().to_vec()).unwrap();
        assert_eq!(id.fingerprint().0, back.fingerprint().0);
        assert_eq!(id.key_der(), back.key_der());
    }

    #[test]
    fn generated_identities_differ() {
        let a = Identity::generate(&names()).unwrap();
        let b = Identity::generate(&names()).unwrap();
        assert_ne!(a.fingerprint().0, b.fingerprint().0);
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(matches!(
            Identity::from_der(vec![1, 2, 3], vec![4, 5, 6]),
            Err(TransportError::InvalidIdentity { .. })
        ));
        let id = Identity::generate(&names()).unwrap();
        assert!(Identity::from_der(vec![0x30, 0x03, 1, 2, 3], id.key_der().to_vec()).is_err());
        assert!(Identity::from_der(id.cert_der().to_vec(), vec![0x30, 0x00]).is_err());
    }

    #[test]
    fn mismatched_key_is_rejected() {
        let a = Identity::generate(&names()).unwrap();
        let b = Identity::generate(&names()).unwrap();
        assert!(matches!(
            Identity::from_der(a.cert_der().to_vec(), b.key_der().to_vec()),
            Err(TransportError::InvalidIdentity { .. })
        ));
    }

    #[test]
    fn debug_hides_the_key() {
        let id = Identity::generate(&names()).unwrap();
        let shown = format!("{id:?}");
        assert!(shown.contains(&id.fingerprint().to_string()));
        assert!(!shown.contains("key_der"));
    }
}

#[cfg(test)]
mod seed_tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_certificate() {
        let names = vec!["tandem".to_owned()];
        let a = Identity::from_seed(&names, [7; 32]).unwrap();
        let b = Identity::from_seed(&names, [7; 32]).unwrap();
        let c = Identity::from_seed(&names, [8; 32]).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
    }
}
