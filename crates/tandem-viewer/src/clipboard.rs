//! The window viewer's side of clipboard sharing: the attendee's own X
//! display's `CLIPBOARD` selection, bridged by the live client with the
//! session's built-in `clipboard` channel.
//!
//! The display end is the node's [`X11Clipboard`] (tandem-capture), run on
//! the attendee's display instead of the shared one. This module adds what
//! the attendee's side needs on top:
//! - a switch ([`LocalClipboard::set_active`]) that the client turns on only
//!   while the node grants `read-write` on the channel (interactive attendee,
//!   session switch on); while off, copies on the attendee's display are not
//!   even read;
//! - a bounded queue from the X thread to the client task (the X thread must
//!   never wait for the network);
//! - the echo guard ([`EchoGuard`]): text that came from the node and was put
//!   on the local clipboard is not sent back. [`X11Clipboard`] already
//!   ignores the selection changes it makes itself; the guard also covers a
//!   clipboard manager on the attendee's desktop that re-takes the selection
//!   with the same text.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tandem_capture::x11::{ClipboardCopy, X11Clipboard};
use tandem_proto::MAX_CHANNEL_MESSAGE;
use tokio::sync::mpsc;

use crate::ViewerError;

/// Copies on the attendee's display waiting for the client task; a copy
/// made while the queue is full is dropped (a person does not copy faster
/// than the client sends).
const COPY_QUEUE: usize = 8;

/// Largest text read from the attendee's display or put on it: one channel
/// message. The node may allow less (`clipboard_max_bytes`) and then
/// refuses the write, which the viewer shows.
pub const MAX_CLIPBOARD_BYTES: usize = MAX_CHANNEL_MESSAGE;

/// Remembers the last text that came from the node, so that it is not sent
/// back when the local clipboard reports it as a copy.
#[derive(Debug, Default)]
pub struct EchoGuard {
    from_node: Option<Vec<u8>>,
}

impl EchoGuard {
    /// Text from the node is about to be put on the local clipboard.
    pub fn received(&mut self, text: &[u8]) {
        self.from_node = Some(text.to_vec());
    }

    /// Whether a local copy of `text` is to be sent to the node: not when it
    /// is what the node gave us last.
    pub fn should_send(&self, text: &[u8]) -> bool {
        self.from_node.as_deref() != Some(text)
    }
}

/// The attendee's display clipboard; its thread ends when this is dropped.
pub struct LocalClipboard {
    x11: X11Clipboard,
    active: Arc<AtomicBool>,
    copies: mpsc::Receiver<ClipboardCopy>,
    guard: EchoGuard,
}

impl LocalClipboard {
    /// Connects to `display` (`None`: `$DISPLAY`); inactive until
    /// [`set_active`](Self::set_active).
    pub fn start(display: Option<&str>) -> Result<LocalClipboard, ViewerError> {
        let active = Arc::new(AtomicBool::new(false));
        let (tx, copies) = mpsc::channel(COPY_QUEUE);
        let x11 = X11Clipboard::start(display, MAX_CLIPBOARD_BYTES, active.clone(), move |copy| {
            if tx.try_send(copy).is_err() {
                tracing::debug!("local clipboard copy dropped: the client is behind");
            }
        })
        .map_err(|e| ViewerError::Clipboard(e.to_string()))?;
        Ok(LocalClipboard {
            x11,
            active,
            copies,
            guard: EchoGuard::default(),
        })
    }

    /// Shares (or stops sharing) the local clipboard. Returns whether it changed.
    pub fn set_active(&self, on: bool) -> bool {
        self.active.swap(on, Ordering::Relaxed) != on
    }

    /// Whether the local clipboard is shared now.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// The next copy on the local display to send: echoes of what the node
    /// sent and copies read just before sharing was switched off are
    /// skipped. Never resolves once the display's connection is gone.
    pub async fn next_copy(&mut self) -> ClipboardCopy {
        loop {
            let Some(copy) = self.copies.recv().await else {
                return std::future::pending().await;
            };
            if !self.is_active() {
                continue;
            }
            if let ClipboardCopy::Text(text) = &copy {
                if !self.guard.should_send(text) {
                    tracing::debug!(bytes = text.len(), "clipboard echo not sent back");
                    continue;
                }
            }
            return copy;
        }
    }

    /// Puts text from the node on the local clipboard (while shared).
    pub fn put(&mut self, text: Vec<u8>) -> Result<(), ViewerError> {
        if !self.is_active() {
            return Ok(());
        }
        self.guard.received(&text);
        self.x11
            .set(text)
            .map_err(|e| ViewerError::Clipboard(e.to_string()))
    }
}

impl Drop for LocalClipboard {
    fn drop(&mut self) {
        self.active.store(false, Ordering::Relaxed);
        self.x11.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_echo_guard_skips_only_what_the_node_sent_last() {
        let mut g = EchoGuard::default();
        assert!(g.should_send(b"mine"));
        g.received(b"theirs");
        assert!(!g.should_send(b"theirs"), "an echo is not sent back");
        assert!(g.should_send(b"mine"));
        g.received(b"newer");
        assert!(g.should_send(b"theirs"), "only the last text from the node");
        assert!(!g.should_send(b"newer"));
    }
}
