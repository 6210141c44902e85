//! A WebTransport session as an attendee connection, through a loopback
//! bridge: the node connects to its own QUIC endpoint as a native viewer
//! (`tandem/1`, its own fingerprint pinned) and pipes the browser's streams
//! and datagrams to that connection unchanged.
//!
//! Why a bridge: the attendee-serving path (`crate::connection`) is written
//! against `quinn::Connection` today; piping bytes keeps one copy of the
//! protocol (admission, the attendee limit, control levels, latest-wins,
//! the pointer) without touching it. The streams map one to one: the
//! browser's control stream to a control stream, each graphics stream the
//! node opens to one the browser receives (a reset is passed on as a
//! reset), each cursor datagram to a datagram, and a close to a close with
//! its code and reason. Costs: one more loopback hop and TLS layer per
//! browser attendee, and the node records the bridge's loopback address as
//! the attendee's computer.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tandem_proto::Fingerprint;
use tandem_transport::TransportConfig;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::connection::{close_code, HELLO_TIMEOUT};

/// Where the bridge connects: the node's own attendee endpoint.
#[derive(Debug)]
pub struct Bridge {
    endpoint: quinn::Endpoint,
    target: SocketAddr,
    pin: Fingerprint,
}

impl Bridge {
    /// A client endpoint on loopback for bridging to `node` (the bound QUIC
    /// address), pinning `pin`. Must be called inside the data-plane runtime.
    pub fn new(
        node: SocketAddr,
        pin: Fingerprint,
    ) -> Result<Self, tandem_transport::TransportError> {
        let loopback = match node.ip() {
            IpAddr::V6(ip) if ip.is_unspecified() || ip.is_loopback() => {
                IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
            }
            IpAddr::V4(ip) if !ip.is_unspecified() => IpAddr::V4(ip),
            IpAddr::V6(ip) => IpAddr::V6(ip),
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        let target = SocketAddr::new(loopback, node.port());
        let bind = SocketAddr::new(
            if target.is_ipv4() {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
            },
            0,
        );
        let endpoint = tandem_transport::client_endpoint(bind, &TransportConfig::default())?;
        Ok(Bridge {
            endpoint,
            target,
            pin,
        })
    }
}

/// Serves one browser attendee to its end.
pub async fn serve(session: web_transport_quinn::Session, peer: SocketAddr, bridge: Arc<Bridge>) {
    let control = match tokio::time::timeout(HELLO_TIMEOUT, session.accept_bi()).await {
        Ok(Ok(streams)) => streams,
        _ => {
            session.close(close_code::PROTOCOL, b"no control stream");
            return;
        }
    };
    let native = match tandem_transport::connect_with(
        &bridge.endpoint,
        bridge.target,
        Fingerprint(bridge.pin.0),
        &TransportConfig::default(),
    )
    .await
    {
        Ok(conn) => conn,
        Err(error) => {
            tracing::warn!(%peer, %error, "browser bridge could not reach the node's endpoint");
            session.close(close_code::NORMAL, b"node unavailable");
            return;
        }
    };
    tracing::info!(%peer, bridge = %native.local_ip().map_or_else(String::new, |ip| ip.to_string()), "browser attendee bridged");
    let Ok((native_send, native_recv)) = native.open_bi().await else {
        session.close(close_code::NORMAL, b"node unavailable");
        return;
    };
    let (web_send, web_recv) = control;
    let up = pipe(web_recv, native_send);
    let down = pipe(native_recv, web_send);
    let graphics = async {
        while let Ok(recv) = native.accept_uni().await {
            let Ok(send) = session.open_uni().await else {
                break;
            };
            tokio::spawn(pipe_uni(recv, send));
        }
    };
    let datagrams = async {
        while let Ok(d) = native.read_datagram().await {
            // Dropped when the browser takes none: positions are latest-wins.
            let _ = session.send_datagram(d);
        }
    };
    tokio::select! {
        _ = async { tokio::join!(up, down) } => {}
        () = graphics => {}
        () = datagrams => {}
        _ = session.closed() => {}
        _ = native.closed() => {}
    }
    // Pass the node's close on, with its code and reason (a rejection, a bye).
    match native.close_reason() {
        Some(quinn::ConnectionError::ApplicationClosed(close)) => {
            let code = u32::try_from(close.error_code.into_inner()).unwrap_or(close_code::NORMAL);
            session.close(code, &close.reason);
        }
        Some(_) => session.close(close_code::NORMAL, b"closed"),
        None => {
            native.close(close_code::NORMAL.into(), b"bye");
            // The node's side of the close, then ours.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), native.closed()).await;
            session.close(close_code::NORMAL, b"closed");
        }
    }
}

/// Copies one direction of a stream, then finishes the writer.
async fn pipe<R, W>(mut from: R, mut to: W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if tokio::io::copy(&mut from, &mut to).await.is_ok() {
        let _ = to.shutdown().await;
    }
}

/// Copies one graphics stream; a reset by the node resets the browser's copy.
async fn pipe_uni(mut from: quinn::RecvStream, mut to: web_transport_quinn::SendStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(Some(n)) => {
                if to.write_all(&buf[..n]).await.is_err() {
                    let _ = from.stop(close_code::NORMAL.into());
                    return;
                }
            }
            Ok(None) => {
                let _ = to.finish();
                return;
            }
            Err(quinn::ReadError::Reset(code)) => {
                let _ = to.reset(u32::try_from(code.into_inner()).unwrap_or(close_code::NORMAL));
                return;
            }
            Err(_) => {
                let _ = to.reset(close_code::NORMAL);
                return;
            }
        }
    }
}
