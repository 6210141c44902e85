//! Browser attendees: the attendee page on an HTTP listener of its own,
//! the WebTransport certificate it pins, and the WebTransport sessions on
//! the node's QUIC port (ALPN `h3`), served by the same attendee-serving
//! path as native viewers.
//!
//! - [`assets`]: the built page (`web/dist/`, committed), embedded in the binary;
//! - [`http`]: the page's listener and `GET /api/web/v1/transport`, which
//!   tells the page the QUIC port and the current certificate hash;
//! - [`session`]: a QUIC connection that negotiated `h3` becomes a
//!   WebTransport session at [`WEB_PATH`], then one more attendee connection;
//! - [`tls`]: HTTPS for the page with the operator's certificate and key;
//! - [`ws`]: the WebSocket fallback through the page's server, for
//!   networks that drop UDP.

pub mod assets;
pub mod http;
pub mod link;
pub mod session;
pub mod tls;
pub mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The path of the WebTransport endpoint on the QUIC port.
pub const WEB_PATH: &str = "/tandem";

/// The `[web]` table of the node config.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSettings {
    /// Address of the attendee page's HTTP listener; unset (the default)
    /// serves no page and refuses WebTransport on the QUIC port.
    pub listen: Option<SocketAddr>,
    /// Base of the browser links the node prints, e.g.
    /// `https://share.example.org` behind a TLS-terminating proxy; default
    /// `http://<listen>` (a browser treats only loopback as secure over
    /// plain HTTP, and WebTransport needs a secure page).
    pub public_url: Option<String>,
    /// DNS names and IP addresses in the WebTransport certificate; default
    /// `localhost`, `127.0.0.1` and the QUIC listen address. A browser
    /// pinning by hash does not check them, but they say what the
    /// certificate is for.
    pub certificate_names: Vec<String>,
    /// PEM certificate chain for serving the page over HTTPS (with
    /// `tls_key`); unset, the page is plain HTTP (loopback, or behind a
    /// TLS-terminating proxy).
    pub tls_certificate: Option<PathBuf>,
    /// PEM private key of `tls_certificate`.
    pub tls_key: Option<PathBuf>,
}

impl WebSettings {
    /// Whether browser attendees are served at all.
    pub fn enabled(&self) -> bool {
        self.listen.is_some()
    }

    /// The HTTPS certificate and key files, when both are set; one without
    /// the other is a configuration error.
    pub fn tls_files(
        &self,
    ) -> Result<Option<(&std::path::Path, &std::path::Path)>, crate::error::NodeError> {
        match (&self.tls_certificate, &self.tls_key) {
            (Some(c), Some(k)) => Ok(Some((c, k))),
            (None, None) => Ok(None),
            _ => Err(crate::error::NodeError::Config {
                detail: "web.tls_certificate and web.tls_key go together".into(),
            }),
        }
    }

    /// The names for the certificate: the configured ones or the defaults.
    pub fn names(&self, quic: SocketAddr) -> Vec<String> {
        if !self.certificate_names.is_empty() {
            return self.certificate_names.clone();
        }
        let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        if !quic.ip().is_unspecified() && !quic.ip().is_loopback() {
            names.push(quic.ip().to_string());
        }
        names
    }

    /// The base of browser links; `bound` is the page listener's bound address.
    pub fn base(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None if self.tls_certificate.is_some() => format!("https://{bound}"),
            None => format!("http://{bound}"),
        }
    }

    /// The link an attendee opens for `session` and `invitation`.
    pub fn link(&self, bound: SocketAddr, session: &str, invitation: &str) -> String {
        link(&self.base(bound), session, invitation)
    }
}

/// The browser link under `base` for `session` and `invitation` (ids are
/// URL-safe ASCII; the link never carries the password).
pub fn link(base: &str, session: &str, invitation: &str) -> String {
    format!("{base}/?session={session}&invitation={invitation}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_carry_session_and_invitation_only() {
        let web = WebSettings {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
            ..WebSettings::default()
        };
        let bound = SocketAddr::from(([127, 0, 0, 1], 8081));
        assert_eq!(
            web.link(bound, "s1", "i2"),
            "http://127.0.0.1:8081/?session=s1&invitation=i2"
        );
        let proxied = WebSettings {
            public_url: Some("https://share.example.org/".into()),
            ..web
        };
        assert_eq!(
            proxied.link(bound, "s1", "i2"),
            "https://share.example.org/?session=s1&invitation=i2"
        );
        let https = WebSettings {
            public_url: None,
            tls_certificate: Some("cert.pem".into()),
            tls_key: Some("key.pem".into()),
            ..proxied
        };
        assert_eq!(
            https.link(bound, "s1", "i2"),
            "https://127.0.0.1:8081/?session=s1&invitation=i2"
        );
        let half = WebSettings {
            tls_key: None,
            ..https
        };
        assert!(half.tls_files().is_err());
    }
}
