//! The X11 text clipboard (the `CLIPBOARD` selection), for clipboard sharing.
//!
//! A thread with its own connection and a small unmapped window:
//! - **copies on the display**: XFIXES `SelectionNotify` tells when another
//!   client takes the `CLIPBOARD` selection; while sharing is switched on the
//!   thread converts it to `UTF8_STRING` and hands the text to the callback.
//!   Text above the size limit (or offered only incrementally, `INCR`, which
//!   owners use for large data) is refused, never read;
//! - **pastes from attendees**: [`X11Clipboard::set`] stores the text and
//!   takes the selection; the thread answers `SelectionRequest`s for
//!   `TARGETS`, `UTF8_STRING`, `TEXT` and `STRING` until another client
//!   takes it (`SelectionClear`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use x11rb::connection::Connection;
use x11rb::protocol::xfixes::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{
    self, Atom, AtomEnum, ConnectionExt as _, CreateWindowAux, EventMask, PropMode, WindowClass,
};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use x11rb::CURRENT_TIME;

use super::{connect, x11_error};
use crate::CaptureError;

/// What the display's clipboard did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClipboardCopy {
    /// Text was copied (UTF-8 as the owner gave it).
    Text(Vec<u8>),
    /// Something was copied that is too large (or incremental) and was not read.
    TooLarge,
}

struct Atoms {
    clipboard: Atom,
    targets: Atom,
    utf8: Atom,
    text: Atom,
    incr: Atom,
    property: Atom,
    /// Client message type that tells the thread to end.
    stop: Atom,
}

struct Shared {
    conn: RustConnection,
    window: xproto::Window,
    atoms: Atoms,
    /// Text we own the selection with.
    owned: Mutex<Option<Vec<u8>>>,
}

/// The clipboard of one X display; the thread ends when the display goes away.
#[derive(Clone)]
pub struct X11Clipboard {
    shared: Arc<Shared>,
}

fn intern(conn: &RustConnection, name: &str) -> Result<Atom, CaptureError> {
    Ok(conn
        .intern_atom(false, name.as_bytes())
        .map_err(x11_error)?
        .reply()
        .map_err(x11_error)?
        .atom)
}

impl X11Clipboard {
    /// Connects to `display` (`None`: `$DISPLAY`) and starts the thread.
    /// `enabled` is read before every copy is read: nothing is read while off.
    pub fn start(
        display: Option<&str>,
        max_bytes: usize,
        enabled: Arc<AtomicBool>,
        on_copy: impl FnMut(ClipboardCopy) + Send + 'static,
    ) -> Result<Self, CaptureError> {
        let (conn, screen) = connect(display)?;
        conn.xfixes_query_version(5, 0)
            .map_err(x11_error)?
            .reply()
            .map_err(x11_error)?;
        let root = conn.setup().roots[screen].root;
        let window = conn.generate_id().map_err(x11_error)?;
        conn.create_window(
            0,
            window,
            root,
            -10,
            -10,
            1,
            1,
            0,
            WindowClass::INPUT_ONLY,
            0,
            &CreateWindowAux::new().event_mask(EventMask::PROPERTY_CHANGE),
        )
        .map_err(x11_error)?;
        let atoms = Atoms {
            clipboard: intern(&conn, "CLIPBOARD")?,
            targets: intern(&conn, "TARGETS")?,
            utf8: intern(&conn, "UTF8_STRING")?,
            text: intern(&conn, "TEXT")?,
            incr: intern(&conn, "INCR")?,
            property: intern(&conn, "TANDEM_CLIPBOARD")?,
            stop: intern(&conn, "TANDEM_CLIPBOARD_STOP")?,
        };
        conn.xfixes_select_selection_input(
            window,
            atoms.clipboard,
            xfixes::SelectionEventMask::SET_SELECTION_OWNER,
        )
        .map_err(x11_error)?;
        conn.flush().map_err(x11_error)?;
        let shared = Arc::new(Shared {
            conn,
            window,
            atoms,
            owned: Mutex::new(None),
        });
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name("tandem-clipboard".into())
            .spawn(move || run(&thread_shared, max_bytes, &enabled, on_copy))
            .map_err(|e| x11_error(format!("starting the clipboard thread: {e}")))?;
        Ok(Self { shared })
    }

    /// Ends the thread (and with the last handle, the connection): the
    /// session is closed. Text put on the clipboard is no longer served.
    pub fn stop(&self) {
        let s = &self.shared;
        let event = xproto::ClientMessageEvent::new(32, s.window, s.atoms.stop, [0u32; 5]);
        let sent = s
            .conn
            .send_event(false, s.window, EventMask::NO_EVENT, event)
            .and_then(|_| s.conn.flush());
        if let Err(error) = sent {
            tracing::debug!(%error, "clipboard stop not sent");
        }
    }

    /// Puts `text` on the display's clipboard (takes the `CLIPBOARD` selection).
    pub fn set(&self, text: Vec<u8>) -> Result<(), CaptureError> {
        let s = &self.shared;
        *s.owned.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
        s.conn
            .set_selection_owner(s.window, s.atoms.clipboard, CURRENT_TIME)
            .map_err(x11_error)?;
        s.conn.flush().map_err(x11_error)?;
        Ok(())
    }
}

fn run(s: &Shared, max_bytes: usize, enabled: &AtomicBool, mut on_copy: impl FnMut(ClipboardCopy)) {
    loop {
        let event = match s.conn.wait_for_event() {
            Ok(e) => e,
            Err(error) => {
                tracing::info!(%error, "clipboard connection ended");
                return;
            }
        };
        let result = match event {
            Event::XfixesSelectionNotify(e) => {
                if e.owner != s.window && e.owner != x11rb::NONE && enabled.load(Ordering::Relaxed)
                {
                    s.conn
                        .convert_selection(
                            s.window,
                            s.atoms.clipboard,
                            s.atoms.utf8,
                            s.atoms.property,
                            e.selection_timestamp,
                        )
                        .and_then(|_| s.conn.flush())
                        .map_err(x11_error)
                } else {
                    Ok(())
                }
            }
            Event::SelectionNotify(e) if e.requestor == s.window => {
                if e.property == x11rb::NONE {
                    tracing::debug!("clipboard owner refused UTF8_STRING");
                    Ok(())
                } else {
                    read_copy(s, max_bytes).map(|copy| {
                        if let Some(copy) = copy {
                            on_copy(copy);
                        }
                    })
                }
            }
            Event::SelectionRequest(e) => answer(s, &e),
            Event::ClientMessage(e) if e.type_ == s.atoms.stop => {
                let _ = s.conn.destroy_window(s.window);
                let _ = s.conn.flush();
                return;
            }
            Event::SelectionClear(e) if e.selection == s.atoms.clipboard => {
                *s.owned.lock().unwrap_or_else(|e| e.into_inner()) = None;
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(error) = result {
            tracing::warn!(%error, "clipboard request failed");
        }
    }
}

/// Reads the converted selection from our property (and deletes it).
fn read_copy(s: &Shared, max_bytes: usize) -> Result<Option<ClipboardCopy>, CaptureError> {
    // Lengths are in 32-bit units; one more than the limit tells "too large".
    let long_length = (max_bytes / 4 + 1) as u32;
    let reply = s
        .conn
        .get_property(
            true,
            s.window,
            s.atoms.property,
            AtomEnum::ANY,
            0,
            long_length,
        )
        .map_err(x11_error)?
        .reply()
        .map_err(x11_error)?;
    if reply.type_ == s.atoms.incr || reply.bytes_after > 0 || reply.value.len() > max_bytes {
        // Deleting the property tells an INCR owner we want no more.
        s.conn
            .delete_property(s.window, s.atoms.property)
            .map_err(x11_error)?;
        s.conn.flush().map_err(x11_error)?;
        return Ok(Some(ClipboardCopy::TooLarge));
    }
    if reply.format != 8 {
        return Ok(None);
    }
    Ok(Some(ClipboardCopy::Text(reply.value)))
}

/// Answers another client's request for the text we own.
fn answer(s: &Shared, e: &xproto::SelectionRequestEvent) -> Result<(), CaptureError> {
    let property = if e.property == x11rb::NONE {
        e.target
    } else {
        e.property
    };
    let owned = s.owned.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let a = &s.atoms;
    let stored = match owned {
        Some(text) if e.selection == a.clipboard => {
            if e.target == a.targets {
                let list = [a.targets, a.utf8, a.text, u32::from(AtomEnum::STRING)];
                s.conn
                    .change_property32(
                        PropMode::REPLACE,
                        e.requestor,
                        property,
                        AtomEnum::ATOM,
                        &list,
                    )
                    .map_err(x11_error)?;
                true
            } else if e.target == a.utf8 || e.target == a.text {
                s.conn
                    .change_property8(PropMode::REPLACE, e.requestor, property, a.utf8, &text)
                    .map_err(x11_error)?;
                true
            } else if e.target == u32::from(AtomEnum::STRING) {
                s.conn
                    .change_property8(
                        PropMode::REPLACE,
                        e.requestor,
                        property,
                        AtomEnum::STRING,
                        &text,
                    )
                    .map_err(x11_error)?;
                true
            } else {
                false
            }
        }
        _ => false,
    };
    let notify = xproto::SelectionNotifyEvent {
        response_type: xproto::SELECTION_NOTIFY_EVENT,
        sequence: 0,
        time: e.time,
        requestor: e.requestor,
        selection: e.selection,
        target: e.target,
        property: if stored { property } else { x11rb::NONE },
    };
    s.conn
        .send_event(false, e.requestor, EventMask::NO_EVENT, notify)
        .map_err(x11_error)?;
    s.conn.flush().map_err(x11_error)?;
    Ok(())
}
