//! The top-level windows of an X display, kept in stacking order, and the
//! mask of the pixels an application/window filter lets through.
//!
//! Tracking is event-driven: the source selects `SubstructureNotify` on the
//! root window and calls [`WindowTracker::refresh`] only after a
//! create/destroy/map/unmap/configure/reparent or property event, so an idle
//! desktop costs no requests here.

use std::collections::BTreeMap;

use tandem_codec::Rect;
use x11rb::protocol::xproto::{Atom, AtomEnum, ConnectionExt as _, MapState, Window};
use x11rb::rust_connection::RustConnection;

use crate::{WindowEvent, WindowFilter, WindowInfo};

/// Atoms the tracker reads.
pub(super) struct Atoms {
    net_wm_pid: Atom,
    net_wm_name: Atom,
    utf8_string: Atom,
}

impl Atoms {
    pub(super) fn intern(conn: &RustConnection) -> Result<Self, String> {
        let get = |name: &[u8]| -> Result<Atom, String> {
            Ok(conn
                .intern_atom(false, name)
                .map_err(|e| e.to_string())?
                .reply()
                .map_err(|e| e.to_string())?
                .atom)
        };
        Ok(Self {
            net_wm_pid: get(b"_NET_WM_PID")?,
            net_wm_name: get(b"_NET_WM_NAME")?,
            utf8_string: get(b"UTF8_STRING")?,
        })
    }
}

/// The mapped top-level windows, bottom to top.
#[derive(Default)]
pub(super) struct WindowTracker {
    windows: Vec<WindowInfo>,
}

/// Longest window title kept, in bytes.
const MAX_TITLE: usize = 256;

impl WindowTracker {
    /// The windows, bottom to top.
    pub(super) fn windows(&self) -> &[WindowInfo] {
        &self.windows
    }

    /// Re-reads the window list and appends what changed to `events`, and
    /// to `moves` each window that kept its size but changed position (id,
    /// old geometry, new corner). Returns whether any window was opened,
    /// closed, moved, resized or restacked (which changes a filter's mask).
    pub(super) fn refresh(
        &mut self,
        conn: &RustConnection,
        root: Window,
        atoms: &Atoms,
        events: &mut Vec<WindowEvent>,
        moves: &mut Vec<WindowMoved>,
    ) -> Result<bool, String> {
        let tree = conn
            .query_tree(root)
            .map_err(|e| e.to_string())?
            .reply()
            .map_err(|e| e.to_string())?;
        let mut now = Vec::new();
        for &id in &tree.children {
            // A window may vanish between the tree and these requests: skip it.
            let Some(info) = read_window(conn, id, atoms) else {
                continue;
            };
            now.push(info);
        }
        let before: BTreeMap<u32, &WindowInfo> = self.windows.iter().map(|w| (w.id, w)).collect();
        let after: BTreeMap<u32, &WindowInfo> = now.iter().map(|w| (w.id, w)).collect();
        let apps_before = applications(&self.windows);
        let apps_after = applications(&now);
        for (key, w) in &apps_after {
            if !apps_before.contains_key(key) {
                events.push(WindowEvent::ApplicationOpened((*w).clone()));
            }
        }
        for w in &now {
            if let Some(old) = before.get(&w.id) {
                if (old.width, old.height) == (w.width, w.height) && (old.x, old.y) != (w.x, w.y) {
                    moves.push(WindowMoved {
                        id: w.id,
                        from: (old.x, old.y, old.width, old.height),
                        to: (w.x, w.y),
                    });
                }
            }
            match before.get(&w.id) {
                None => events.push(WindowEvent::WindowOpened(w.clone())),
                Some(old) if *old != w => events.push(WindowEvent::WindowUpdated(w.clone())),
                Some(_) => {}
            }
        }
        for w in &self.windows {
            if !after.contains_key(&w.id) {
                events.push(WindowEvent::WindowClosed(w.clone()));
            }
        }
        for (key, w) in &apps_before {
            if !apps_after.contains_key(key) {
                events.push(WindowEvent::ApplicationClosed((*w).clone()));
            }
        }
        let order = |ws: &[WindowInfo]| ws.iter().map(|w| (w.id, w.rect())).collect::<Vec<_>>();
        let geometry_changed = order(&self.windows) != order(&now);
        self.windows = now;
        Ok(geometry_changed)
    }

    /// For each pixel of `area` (row-major), whether the filter shares it:
    /// the topmost window there is one the filter names.
    pub(super) fn mask(&self, filter: &WindowFilter, area: Rect) -> Vec<bool> {
        let (w, h) = (area.width as i64, area.height as i64);
        let mut mask = vec![false; (w * h) as usize];
        for win in &self.windows {
            let shared = filter.matches(win);
            let x0 = (win.x - area.x as i64).clamp(0, w);
            let y0 = (win.y - area.y as i64).clamp(0, h);
            let x1 = (win.x + win.width as i64 - area.x as i64).clamp(0, w);
            let y1 = (win.y + win.height as i64 - area.y as i64).clamp(0, h);
            for y in y0..y1 {
                let row = (y * w) as usize;
                mask[row + x0 as usize..row + x1 as usize].fill(shared);
            }
        }
        mask
    }
}

/// A top-level window that moved without changing size (root coordinates).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct WindowMoved {
    /// The window.
    pub(super) id: u32,
    /// Its old corner and size.
    pub(super) from: (i64, i64, u32, u32),
    /// Its new corner.
    pub(super) to: (i64, i64),
}

/// One window per application (by process id, else by class), the lowest.
fn applications(windows: &[WindowInfo]) -> BTreeMap<String, &WindowInfo> {
    let mut apps = BTreeMap::new();
    for w in windows {
        apps.entry(w.application()).or_insert(w);
    }
    apps
}

/// A mapped top-level window's description (override-redirect popups
/// included); `None` when it is unmapped or gone.
pub(super) fn read_window(conn: &RustConnection, id: Window, atoms: &Atoms) -> Option<WindowInfo> {
    let attrs = conn.get_window_attributes(id).ok()?;
    let geometry = conn.get_geometry(id).ok()?;
    let attrs = attrs.reply().ok()?;
    let geometry = geometry.reply().ok()?;
    if attrs.map_state != MapState::VIEWABLE {
        return None;
    }
    // Under a window manager the root's children are frames: the client
    // window carrying WM_CLASS is one level down.
    let client =
        if get_property(conn, id, AtomEnum::WM_CLASS.into(), AtomEnum::STRING.into()).is_some() {
            id
        } else {
            conn.query_tree(id)
                .ok()
                .and_then(|c| c.reply().ok())
                .and_then(|t| {
                    t.children.into_iter().find(|&c| {
                        get_property(conn, c, AtomEnum::WM_CLASS.into(), AtomEnum::STRING.into())
                            .is_some()
                    })
                })
                .unwrap_or(id)
        };
    let class = get_property(
        conn,
        client,
        AtomEnum::WM_CLASS.into(),
        AtomEnum::STRING.into(),
    )
    .map(|raw| {
        let mut parts = raw
            .split(|&b| b == 0)
            .map(|p| String::from_utf8_lossy(p).into_owned());
        (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        )
    });
    let pid = get_property(conn, client, atoms.net_wm_pid, AtomEnum::CARDINAL.into())
        .filter(|raw| raw.len() >= 4)
        .map(|raw| u32::from_ne_bytes([raw[0], raw[1], raw[2], raw[3]]));
    let title = get_property(conn, client, atoms.net_wm_name, atoms.utf8_string)
        .or_else(|| {
            get_property(
                conn,
                client,
                AtomEnum::WM_NAME.into(),
                AtomEnum::STRING.into(),
            )
        })
        .map(|raw| {
            let mut t = String::from_utf8_lossy(&raw).into_owned();
            if t.len() > MAX_TITLE {
                let mut cut = MAX_TITLE;
                while !t.is_char_boundary(cut) {
                    cut -= 1;
                }
                t.truncate(cut);
            }
            t
        })
        .unwrap_or_default();
    let border = i64::from(geometry.border_width);
    let (instance, class) = class.unwrap_or_default();
    Some(WindowInfo {
        id,
        x: i64::from(geometry.x),
        y: i64::from(geometry.y),
        width: u32::from(geometry.width) + 2 * border as u32,
        height: u32::from(geometry.height) + 2 * border as u32,
        instance,
        class,
        pid,
        title,
        override_redirect: attrs.override_redirect,
    })
}

fn get_property(
    conn: &RustConnection,
    window: Window,
    property: Atom,
    ty: Atom,
) -> Option<Vec<u8>> {
    let reply = conn
        .get_property(false, window, property, ty, 0, 1024)
        .ok()?
        .reply()
        .ok()?;
    (reply.format != 0 && !reply.value.is_empty()).then_some(reply.value)
}
