//! Clipboard sharing for a session on an X display: connects the display's
//! `CLIPBOARD` selection ([`X11Clipboard`]) with the session's built-in
//! clipboard channel in the [`ChannelHub`]. Copies on the display go to
//! interactive attendees; pastes from interactive attendees become the
//! display's clipboard. Nothing is read while the session's switch is off.
//! Closing the session (the hub forgets it and drops the paste queue) ends
//! both threads.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tandem_capture::x11::{ClipboardCopy, X11Clipboard};
use tokio::sync::mpsc;

use crate::channels::ChannelHub;
use crate::events::SessionEvent;

/// Pastes waiting for the display; more are refused.
const PASTE_QUEUE: usize = 16;

/// Starts the bridge. A display without a usable clipboard is logged, and
/// the session carries on without clipboard sharing.
pub fn start(
    hub: Arc<ChannelHub>,
    session: &str,
    display: Option<String>,
    enabled: Arc<AtomicBool>,
    max_bytes: usize,
) {
    let copies_hub = hub.clone();
    let copies_session = session.to_owned();
    let clipboard =
        X11Clipboard::start(
            display.as_deref(),
            max_bytes,
            enabled,
            move |copy| match copy {
                ClipboardCopy::Text(text) => {
                    copies_hub.clipboard_from_desktop(&copies_session, text)
                }
                ClipboardCopy::TooLarge => {
                    copies_hub.emit_event(SessionEvent::ClipboardTransferred {
                        session: copies_session.clone(),
                        direction: "to_attendees".into(),
                        attendee: None,
                        bytes: max_bytes + 1,
                        delivered: false,
                    })
                }
            },
        );
    let clipboard = match clipboard {
        Ok(c) => c,
        Err(error) => {
            tracing::warn!(session, %error, "no clipboard sharing for this session");
            return;
        }
    };
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(PASTE_QUEUE);
    hub.set_desktop_clipboard(session, tx);
    let session = session.to_owned();
    // Setting the selection is one request and a flush: cheap enough for
    // a plain thread that waits on the queue.
    let spawned = std::thread::Builder::new()
        .name("tandem-paste".into())
        .spawn(move || {
            while let Some(text) = rx.blocking_recv() {
                if let Err(error) = clipboard.set(text) {
                    tracing::warn!(session, %error, "paste to the display failed");
                }
            }
            // The hub dropped the queue: the session is closed.
            clipboard.stop();
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "no paste thread");
    }
}
