//! Input injection into an X display with XTEST.
//!
//! Keys arrive as keysyms. A keysym found in the keymap is typed with its
//! keycode, adding Shift when it sits on the shifted level (and the attendee
//! does not already hold Shift). A keysym the keymap lacks (`€` on a US
//! layout, most of Unicode) is bound for the moment to a spare keycode that
//! has no symbols, then typed; spare keycodes are reused round-robin.
//!
//! [`X11Probe`] tells the input path where the display's pointer and
//! keyboard focus are and which top-level windows they are on, so keys and
//! buttons are confined to what is shared ([`crate::confine`]).

use std::collections::HashMap;

use tandem_proto::{InputEvent, MouseButton};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ConnectionExt as _, InputFocus, Keycode, Keysym, Window, BUTTON_PRESS_EVENT,
    BUTTON_RELEASE_EVENT, KEY_PRESS_EVENT, KEY_RELEASE_EVENT, MOTION_NOTIFY_EVENT,
};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;

use super::windows::{read_window, Atoms};
use super::{connect, x11_error};
use crate::confine::{DesktopProbe, Focus, PointerFacts, Under};
use crate::{CaptureError, InputSink};

const SHIFT_L: Keysym = 0xffe1;
const SHIFT_R: Keysym = 0xffe2;

/// Most wheel clicks injected for one event.
const MAX_WHEEL_CLICKS: i32 = 20;

/// A key held down by an attendee: what to release.
#[derive(Debug, Clone, Copy)]
struct HeldKey {
    keysym: Keysym,
    keycode: Keycode,
    /// Shift pressed by us for this key, to release after it.
    shift: Option<Keycode>,
}

/// Injects input into one X display.
pub struct X11InputSink {
    conn: RustConnection,
    root: Window,
    min_keycode: Keycode,
    per_keycode: usize,
    /// Keysyms by keycode, `per_keycode` per code, from `min_keycode`.
    syms: Vec<Keysym>,
    /// Keycodes with no symbols, usable for keysyms the keymap lacks.
    spare: Vec<Keycode>,
    next_spare: usize,
    /// Keysyms bound to spare keycodes by us.
    bound: HashMap<Keysym, Keycode>,
    keys: Vec<HeldKey>,
    buttons: Vec<u8>,
}

impl X11InputSink {
    /// Opens `display` (`None`: `$DISPLAY`) and reads its keymap.
    pub fn connect(display: Option<&str>) -> Result<Self, CaptureError> {
        let (conn, screen_num) = connect(display)?;
        conn.xtest_get_version(2, 2)
            .map_err(x11_error)?
            .reply()
            .map_err(|e| x11_error(format!("XTEST is required for input: {e}")))?;
        let root = conn.setup().roots[screen_num].root;
        let mut sink = Self {
            conn,
            root,
            min_keycode: 8,
            per_keycode: 0,
            syms: Vec::new(),
            spare: Vec::new(),
            next_spare: 0,
            bound: HashMap::new(),
            keys: Vec::new(),
            buttons: Vec::new(),
        };
        sink.load_keymap()?;
        Ok(sink)
    }

    fn load_keymap(&mut self) -> Result<(), CaptureError> {
        let setup = self.conn.setup();
        let (min, max) = (setup.min_keycode, setup.max_keycode);
        let map = self
            .conn
            .get_keyboard_mapping(min, max - min + 1)
            .map_err(x11_error)?
            .reply()
            .map_err(x11_error)?;
        self.min_keycode = min;
        self.per_keycode = usize::from(map.keysyms_per_keycode).max(1);
        self.syms = map.keysyms;
        self.spare = (min..=max)
            .filter(|&code| self.symbols(code).iter().all(|&s| s == 0))
            .collect();
        self.bound.clear();
        tracing::debug!(
            keycodes = usize::from(max - min) + 1,
            spare = self.spare.len(),
            "keymap loaded"
        );
        Ok(())
    }

    fn symbols(&self, code: Keycode) -> &[Keysym] {
        let start = usize::from(code - self.min_keycode) * self.per_keycode;
        self.syms
            .get(start..start + self.per_keycode)
            .unwrap_or_default()
    }

    /// The keycode and shift level (0 or 1) of `keysym` in group 1.
    fn lookup(&self, keysym: Keysym) -> Option<(Keycode, usize)> {
        let codes = self.syms.len() / self.per_keycode;
        for level in 0..self.per_keycode.min(2) {
            for i in 0..codes {
                if self.syms[i * self.per_keycode + level] == keysym {
                    return Some((self.min_keycode + i as u8, level));
                }
            }
        }
        // A letter whose keymap lists only the lower case at level 0.
        None
    }

    /// Binds `keysym` to a spare keycode (both levels, so Shift is moot).
    fn bind_spare(&mut self, keysym: Keysym) -> Result<Keycode, CaptureError> {
        if let Some(&code) = self.bound.get(&keysym) {
            return Ok(code);
        }
        if self.spare.is_empty() {
            return Err(CaptureError::Input {
                detail: format!("keysym {keysym:#x} is not on the keyboard and no keycode is free"),
            });
        }
        let code = self.spare[self.next_spare % self.spare.len()];
        self.next_spare += 1;
        // A held key must keep its meaning until released.
        if self.keys.iter().any(|k| k.keycode == code) {
            return Err(CaptureError::Input {
                detail: "too many unusual keys held at once".into(),
            });
        }
        self.bound.retain(|_, c| *c != code);
        let mut row = vec![0; self.per_keycode];
        row[0] = keysym;
        if self.per_keycode > 1 {
            row[1] = keysym;
        }
        self.conn
            .change_keyboard_mapping(1, code, self.per_keycode as u8, &row)
            .map_err(x11_error)?;
        // Wait for the server to apply it before the key is typed.
        self.conn
            .get_input_focus()
            .map_err(x11_error)?
            .reply()
            .map_err(x11_error)?;
        let start = usize::from(code - self.min_keycode) * self.per_keycode;
        self.syms[start..start + self.per_keycode].copy_from_slice(&row);
        self.bound.insert(keysym, code);
        Ok(code)
    }

    fn fake(&self, kind: u8, detail: u8, x: i16, y: i16) -> Result<(), CaptureError> {
        self.conn
            .xtest_fake_input(kind, detail, x11rb::CURRENT_TIME, self.root, x, y, 0)
            .map_err(x11_error)?;
        Ok(())
    }

    fn shift_held(&self) -> bool {
        self.keys
            .iter()
            .any(|k| k.keysym == SHIFT_L || k.keysym == SHIFT_R)
    }

    fn key(&mut self, keysym: Keysym, pressed: bool) -> Result<(), CaptureError> {
        if !pressed {
            let Some(i) = self.keys.iter().rposition(|k| k.keysym == keysym) else {
                // Not held (e.g. pressed before control was granted): ignore.
                return Ok(());
            };
            let held = self.keys.remove(i);
            self.fake(KEY_RELEASE_EVENT, held.keycode, 0, 0)?;
            if let Some(shift) = held.shift {
                self.fake(KEY_RELEASE_EVENT, shift, 0, 0)?;
            }
            return Ok(());
        }
        if let Some(held) = self.keys.iter().find(|k| k.keysym == keysym).copied() {
            // Auto-repeat: press again without a new shift.
            return self.fake(KEY_PRESS_EVENT, held.keycode, 0, 0);
        }
        let (keycode, level) = match self.lookup(keysym) {
            Some(found) => found,
            None => (self.bind_spare(keysym)?, 0),
        };
        let shift = if level == 1 && !self.shift_held() {
            let (code, _) = self.lookup(SHIFT_L).ok_or_else(|| CaptureError::Input {
                detail: "the keymap has no Shift_L".into(),
            })?;
            self.fake(KEY_PRESS_EVENT, code, 0, 0)?;
            Some(code)
        } else {
            None
        };
        self.fake(KEY_PRESS_EVENT, keycode, 0, 0)?;
        self.keys.push(HeldKey {
            keysym,
            keycode,
            shift,
        });
        Ok(())
    }

    /// Reloads the keymap when the server says it changed.
    fn follow_mapping_changes(&mut self) -> Result<(), CaptureError> {
        let mut changed = false;
        while let Some(event) = self.conn.poll_for_event().map_err(x11_error)? {
            changed |= matches!(event, Event::MappingNotify(_));
        }
        if changed && self.keys.is_empty() {
            self.load_keymap()?;
        }
        Ok(())
    }
}

fn button_code(button: MouseButton) -> u8 {
    match button {
        MouseButton::Left => 1,
        MouseButton::Middle => 2,
        MouseButton::Right => 3,
        MouseButton::Back => 8,
        MouseButton::Forward => 9,
    }
}

impl InputSink for X11InputSink {
    fn inject(&mut self, event: &InputEvent) -> Result<(), CaptureError> {
        self.follow_mapping_changes()?;
        match *event {
            InputEvent::MouseMove { x, y } => {
                let clamp = |v: u32| v.min(i16::MAX as u32) as i16;
                self.fake(MOTION_NOTIFY_EVENT, 0, clamp(x), clamp(y))?;
            }
            InputEvent::MouseButton { button, pressed } => {
                let code = button_code(button);
                let held = self.buttons.iter().position(|&b| b == code);
                match (pressed, held) {
                    (true, None) => {
                        self.fake(BUTTON_PRESS_EVENT, code, 0, 0)?;
                        self.buttons.push(code);
                    }
                    (false, Some(i)) => {
                        self.fake(BUTTON_RELEASE_EVENT, code, 0, 0)?;
                        self.buttons.remove(i);
                    }
                    // A repeated press or a stray release changes nothing.
                    _ => {}
                }
            }
            InputEvent::Wheel { dx, dy } => {
                // X wheels are buttons: 4 up, 5 down, 6 left, 7 right.
                for (delta, negative, positive) in [(dy, 4u8, 5u8), (dx, 6, 7)] {
                    let code = if delta < 0 { negative } else { positive };
                    for _ in 0..delta.clamp(-MAX_WHEEL_CLICKS, MAX_WHEEL_CLICKS).abs() {
                        self.fake(BUTTON_PRESS_EVENT, code, 0, 0)?;
                        self.fake(BUTTON_RELEASE_EVENT, code, 0, 0)?;
                    }
                }
            }
            InputEvent::Key { keysym, pressed } => self.key(keysym, pressed)?,
        }
        self.conn.flush().map_err(x11_error)
    }

    fn release_all(&mut self) -> Result<(), CaptureError> {
        let keys = std::mem::take(&mut self.keys);
        let buttons = std::mem::take(&mut self.buttons);
        if !keys.is_empty() || !buttons.is_empty() {
            tracing::debug!(
                keys = keys.len(),
                buttons = buttons.len(),
                "releasing held input"
            );
        }
        for key in keys.iter().rev() {
            self.fake(KEY_RELEASE_EVENT, key.keycode, 0, 0)?;
            if let Some(shift) = key.shift {
                self.fake(KEY_RELEASE_EVENT, shift, 0, 0)?;
            }
        }
        for code in buttons.iter().rev() {
            self.fake(BUTTON_RELEASE_EVENT, *code, 0, 0)?;
        }
        self.conn.flush().map_err(x11_error)
    }
}

/// Deepest window nesting walked up from the focus to its top-level
/// window (real desktops nest a few levels; a loop cannot happen in X, but
/// a bound costs nothing).
const MAX_WINDOW_DEPTH: usize = 64;

/// Reads where an X display's pointer and keyboard focus are, on a
/// connection of its own (the input may go to an input log, not XTEST).
/// Each question is one or a few round trips, asked only for presses.
pub struct X11Probe {
    conn: RustConnection,
    root: Window,
    atoms: Atoms,
}

impl X11Probe {
    /// Opens `display` (`None`: `$DISPLAY`).
    pub fn connect(display: Option<&str>) -> Result<Self, CaptureError> {
        let (conn, screen_num) = connect(display)?;
        let root = conn.setup().roots[screen_num].root;
        let atoms = Atoms::intern(&conn).map_err(x11_error)?;
        Ok(Self { conn, root, atoms })
    }

    /// The child of the root that contains `window` (itself when it is
    /// one); `None` for the root or a window that is gone.
    fn top_level(&self, mut window: Window) -> Result<Option<Window>, CaptureError> {
        for _ in 0..MAX_WINDOW_DEPTH {
            if window == self.root {
                return Ok(None);
            }
            let Ok(reply) = self.conn.query_tree(window).map_err(x11_error)?.reply() else {
                // Destroyed meanwhile.
                return Ok(None);
            };
            if reply.parent == self.root {
                return Ok(Some(window));
            }
            window = reply.parent;
        }
        Ok(None)
    }

    fn describe(&self, top: Window) -> Under {
        match read_window(&self.conn, top, &self.atoms) {
            Some(info) => Under::Window(info),
            None => Under::Unknown,
        }
    }
}

impl DesktopProbe for X11Probe {
    fn pointer(&mut self, window: bool) -> Result<PointerFacts, CaptureError> {
        let reply = self
            .conn
            .query_pointer(self.root)
            .map_err(x11_error)?
            .reply()
            .map_err(x11_error)?;
        let position = reply
            .same_screen
            .then_some((i32::from(reply.root_x), i32::from(reply.root_y)));
        let under = if !window {
            Under::Unknown
        } else if reply.child == x11rb::NONE {
            Under::Background
        } else {
            // The root's child under the pointer is the top-level window
            // (the frame, under a window manager), as in the filter's mask.
            self.describe(reply.child)
        };
        Ok(PointerFacts { position, under })
    }

    fn focus(&mut self) -> Result<Focus, CaptureError> {
        let focus = self
            .conn
            .get_input_focus()
            .map_err(x11_error)?
            .reply()
            .map_err(x11_error)?
            .focus;
        if focus == x11rb::NONE {
            return Ok(Focus::Nothing);
        }
        if focus == u32::from(InputFocus::POINTER_ROOT) || focus == self.root {
            // Keys go to the window under the pointer.
            return Ok(Focus::FollowsPointer);
        }
        Ok(match self.top_level(focus)? {
            Some(top) => match self.describe(top) {
                Under::Window(info) => Focus::Window(info),
                _ => Focus::Nothing,
            },
            None => Focus::Nothing,
        })
    }
}
