//! What a capture source can say about the windows on its desktop, and the
//! application/window filter (the Desktop Sharing API's `ApplicationFilter`):
//! share only the windows of chosen applications or chosen window ids.

use serde::{Deserialize, Serialize};

/// Most entries in each list of a [`WindowFilter`].
pub const MAX_FILTER_ENTRIES: usize = 64;

/// Longest class name in a [`WindowFilter`], in bytes.
pub const MAX_FILTER_CLASS_LEN: usize = 128;

/// Colour of the pixels a filter hides (`0x00RRGGBB`): a neutral grey.
pub const FILTER_BACKGROUND: u32 = 0x0040_4040;

/// A top-level window of the shared desktop.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowInfo {
    /// The X window id (of the frame, under a window manager).
    pub id: u32,
    /// Left edge on the desktop, border included (may be negative).
    pub x: i64,
    /// Top edge on the desktop, border included (may be negative).
    pub y: i64,
    /// Width, border included.
    pub width: u32,
    /// Height, border included.
    pub height: u32,
    /// First part of `WM_CLASS` (the instance name, e.g. `xterm`).
    pub instance: String,
    /// Second part of `WM_CLASS` (the class name, e.g. `XTerm`).
    pub class: String,
    /// `_NET_WM_PID`, when the client sets it.
    pub pid: Option<u32>,
    /// The window title.
    pub title: String,
    /// Whether it is an override-redirect window (menu, tooltip).
    pub override_redirect: bool,
}

impl WindowInfo {
    /// Which application the window belongs to: its process id when known,
    /// else its class.
    pub fn application(&self) -> String {
        match self.pid {
            Some(pid) => format!("pid:{pid}"),
            None => format!("class:{}", self.class),
        }
    }

    pub(crate) fn rect(&self) -> (i64, i64, u32, u32) {
        (self.x, self.y, self.width, self.height)
    }
}

/// Which windows a session shares. A window is shared when any list names
/// it; everything else is painted [`FILTER_BACKGROUND`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WindowFilter {
    /// `WM_CLASS` instance or class names (exact, case-sensitive).
    pub classes: Vec<String>,
    /// Process ids (`_NET_WM_PID`).
    pub pids: Vec<u32>,
    /// Window ids.
    pub windows: Vec<u32>,
}

impl WindowFilter {
    /// Whether `window` is shared.
    pub fn matches(&self, window: &WindowInfo) -> bool {
        self.windows.contains(&window.id)
            || window.pid.is_some_and(|p| self.pids.contains(&p))
            || self
                .classes
                .iter()
                .any(|c| !c.is_empty() && (*c == window.class || *c == window.instance))
    }

    /// Checks the bounds: at most [`MAX_FILTER_ENTRIES`] per list, class
    /// names of 1 to [`MAX_FILTER_CLASS_LEN`] bytes, and at least one entry
    /// (a filter that names nothing would share nothing; share everything
    /// by removing the filter instead).
    pub fn validate(&self) -> Result<(), String> {
        for (name, len) in [
            ("classes", self.classes.len()),
            ("pids", self.pids.len()),
            ("windows", self.windows.len()),
        ] {
            if len > MAX_FILTER_ENTRIES {
                return Err(format!(
                    "filter {name}: {len} entries, at most {MAX_FILTER_ENTRIES} allowed"
                ));
            }
        }
        if let Some(c) = self
            .classes
            .iter()
            .find(|c| c.is_empty() || c.len() > MAX_FILTER_CLASS_LEN)
        {
            return Err(format!(
                "filter class {c:?}: names are 1 to {MAX_FILTER_CLASS_LEN} bytes"
            ));
        }
        if self.classes.is_empty() && self.pids.is_empty() && self.windows.is_empty() {
            return Err("the filter names no class, pid or window".into());
        }
        Ok(())
    }
}

/// A change among the desktop's windows (the API's `OnApplicationOpen`,
/// `OnApplicationClose`, `OnWindowOpen`, `OnWindowClose`, `OnWindowUpdate`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WindowEvent {
    /// The first window of an application appeared.
    ApplicationOpened(WindowInfo),
    /// The last window of an application went away.
    ApplicationClosed(WindowInfo),
    /// A window was mapped.
    WindowOpened(WindowInfo),
    /// A window was unmapped or destroyed.
    WindowClosed(WindowInfo),
    /// A window moved, was resized, restacked or retitled.
    WindowUpdated(WindowInfo),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(id: u32, class: &str, pid: Option<u32>) -> WindowInfo {
        WindowInfo {
            id,
            x: 0,
            y: 0,
            width: 10,
            height: 10,
            instance: class.to_lowercase(),
            class: class.into(),
            pid,
            title: String::new(),
            override_redirect: false,
        }
    }

    #[test]
    fn a_filter_matches_by_class_instance_pid_or_id() {
        let f = WindowFilter {
            classes: vec!["XTerm".into()],
            pids: vec![42],
            windows: vec![7],
        };
        assert!(f.matches(&window(1, "XTerm", None)));
        assert!(f.matches(&window(1, "Other", Some(42))));
        assert!(f.matches(&window(7, "Other", None)));
        assert!(!f.matches(&window(2, "Other", Some(43))));
        let by_instance = WindowFilter {
            classes: vec!["xclock".into()],
            ..Default::default()
        };
        assert!(by_instance.matches(&window(3, "XClock", None)));
    }

    #[test]
    fn filters_are_bounded() {
        assert!(WindowFilter::default().validate().is_err());
        let too_many = WindowFilter {
            pids: (0..=MAX_FILTER_ENTRIES as u32).collect(),
            ..Default::default()
        };
        assert!(too_many.validate().is_err());
        let long = WindowFilter {
            classes: vec!["x".repeat(MAX_FILTER_CLASS_LEN + 1)],
            ..Default::default()
        };
        assert!(long.validate().is_err());
        let empty_name = WindowFilter {
            classes: vec![String::new()],
            ..Default::default()
        };
        assert!(empty_name.validate().is_err());
        let ok = WindowFilter {
            classes: vec!["XTerm".into()],
            ..Default::default()
        };
        assert!(ok.validate().is_ok());
    }
}
