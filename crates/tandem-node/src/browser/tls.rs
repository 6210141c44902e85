//! HTTPS for the attendee page with the operator's certificate and key
//! (`[web] tls_certificate`, `tls_key`, PEM files): a small TLS front on
//! the page's address that decrypts with rustls and relays the plaintext to
//! the page's HTTP server, which then listens on loopback only. The
//! workspace has rustls but no TLS glue for actix, so the front drives a
//! `rustls::ServerConnection` over a tokio socket itself.
//!
//! Bounded: the PEM files' sizes, the open connections (more are closed
//! at once), the handshake's duration and a connection's idle time.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::error::NodeError;

/// Largest certificate-chain or key file read (a chain of a few certificates is a few KB).
pub const MAX_PEM_BYTES: u64 = 256 * 1024;
/// Connections served at once; more are closed on accept.
pub const MAX_CONNECTIONS: usize = 128;
/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection with no traffic either way for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const BUF: usize = 16 * 1024;

fn config_error(detail: String) -> NodeError {
    NodeError::Config { detail }
}

/// Reads a PEM file of at most [`MAX_PEM_BYTES`].
fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>, NodeError> {
    let file = std::fs::File::open(path).map_err(|source| NodeError::Io {
        context: format!("opening the web {what} {}", path.display()),
        source,
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| NodeError::Io {
            context: format!("reading the web {what} {}", path.display()),
            source,
        })?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(config_error(format!(
            "the web {what} {} is larger than {MAX_PEM_BYTES} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

/// The rustls server configuration for a PEM certificate chain and key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, NodeError> {
    let chain = read_pem(cert, "certificate")?;
    let certs = CertificateDer::pem_slice_iter(&chain)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            config_error(format!(
                "the web certificate {} is not PEM: {e:?}",
                cert.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(config_error(format!(
            "no CERTIFICATE in the web certificate {}",
            cert.display()
        )));
    }
    let key_pem = read_pem(key, "key")?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        config_error(format!(
            "no private key (PKCS#8, PKCS#1 or SEC1 PEM) in the web key {}: {e:?}",
            key.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error(format!("TLS versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| {
            config_error(format!(
                "the web certificate {} and key {} do not go together: {e}",
                cert.display(),
                key.display()
            ))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The running TLS front.
pub struct TlsFront {
    local_addr: SocketAddr,
    task: actix_rt::task::JoinHandle<()>,
}

impl TlsFront {
    /// Binds `listen` and relays decrypted connections to `backend` (the
    /// page's HTTP server on loopback).
    pub fn start(
        listen: SocketAddr,
        config: Arc<rustls::ServerConfig>,
        backend: SocketAddr,
    ) -> Result<Self, NodeError> {
        let bind_error = |source| NodeError::Io {
            context: format!("binding the web page address {listen}"),
            source,
        };
        let std_listener = std::net::TcpListener::bind(listen).map_err(bind_error)?;
        std_listener.set_nonblocking(true).map_err(bind_error)?;
        let local_addr = std_listener.local_addr().map_err(bind_error)?;
        let listener = TcpListener::from_std(std_listener).map_err(bind_error)?;
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let task = actix_rt::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(c) => c,
                    Err(error) => {
                        tracing::warn!(%error, "web page accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, limit = MAX_CONNECTIONS, "web page connection refused: too many open");
                    continue;
                };
                let config = config.clone();
                actix_rt::spawn(async move {
                    if let Err(error) = relay(tcp, config, backend).await {
                        tracing::debug!(%peer, %error, "web page TLS connection ended");
                    }
                    drop(slot);
                });
            }
        });
        tracing::info!(addr = %local_addr, "attendee web page listening (HTTPS)");
        Ok(TlsFront { local_addr, task })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting (open connections end with the page's server).
    pub fn stop(self) {
        self.task.abort();
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "idle or slow TLS connection")
}

/// Writes every TLS record rustls has queued.
async fn flush(
    tls: &mut rustls::ServerConnection,
    net: &mut tokio::net::tcp::OwnedWriteHalf,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    while tls.wants_write() {
        out.clear();
        tls.write_tls(out)?;
        tokio::time::timeout(IDLE_TIMEOUT, net.write_all(out))
            .await
            .map_err(|_| timed_out())??;
    }
    Ok(())
}

/// One client connection: TLS on `tcp`, plaintext to and from `backend`.
async fn relay(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    backend: SocketAddr,
) -> io::Result<()> {
    let mut tls = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
    let (mut net_r, mut net_w) = tcp.into_split();
    let mut net_in = vec![0u8; BUF];
    let mut plain = vec![0u8; BUF];
    let mut out = Vec::with_capacity(BUF + 512);
    // The handshake, bounded in time, before the page's server sees anything.
    tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        while tls.is_handshaking() {
            flush(&mut tls, &mut net_w, &mut out).await?;
            let n = net_r.read(&mut net_in).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed during the handshake",
                ));
            }
            feed(&mut tls, &net_in[..n], &mut net_w, &mut out).await?;
        }
        flush(&mut tls, &mut net_w, &mut out).await
    })
    .await
    .map_err(|_| timed_out())??;
    let back = TcpStream::connect(backend).await?;
    let _ = back.set_nodelay(true);
    let (mut back_r, mut back_w) = back.into_split();
    let mut back_in = vec![0u8; BUF];
    let mut client_done = false;
    loop {
        // Plaintext the client sent, to the page's server.
        loop {
            match tls.reader().read(&mut plain) {
                Ok(0) => {
                    client_done = true;
                    let _ = back_w.shutdown().await;
                    break;
                }
                Ok(n) => back_w.write_all(&plain[..n]).await?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        tokio::select! {
            r = tokio::time::timeout(IDLE_TIMEOUT, net_r.read(&mut net_in)), if !client_done => {
                let n = r.map_err(|_| timed_out())??;
                if n == 0 {
                    return Ok(());
                }
                feed(&mut tls, &net_in[..n], &mut net_w, &mut out).await?;
            }
            r = tokio::time::timeout(IDLE_TIMEOUT, back_r.read(&mut back_in)) => {
                let n = r.map_err(|_| timed_out())??;
                if n == 0 {
                    tls.send_close_notify();
                    flush(&mut tls, &mut net_w, &mut out).await?;
                    let _ = net_w.shutdown().await;
                    return Ok(());
                }
                // rustls takes plaintext up to its buffer limit; flushing empties it.
                let mut data = &back_in[..n];
                while !data.is_empty() {
                    let k = tls.writer().write(data)?;
                    data = &data[k..];
                    flush(&mut tls, &mut net_w, &mut out).await?;
                }
            }
        }
    }
}

/// Hands received bytes to rustls; a protocol error sends its alert first.
async fn feed(
    tls: &mut rustls::ServerConnection,
    mut bytes: &[u8],
    net_w: &mut tokio::net::tcp::OwnedWriteHalf,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    while !bytes.is_empty() {
        tls.read_tls(&mut bytes)?;
        if let Err(error) = tls.process_new_packets() {
            let _ = flush(tls, net_w, out).await;
            return Err(io::Error::new(io::ErrorKind::InvalidData, error));
        }
    }
    Ok(())
}
