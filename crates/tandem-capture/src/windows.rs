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

/// An application of the shared desktop (the API's `IRDPSRAPIApplication`):
/// top-level windows grouped by `WM_CLASS` class, or by `_NET_WM_PID` when
/// a window has no class, or alone when it has neither. Sharing it through
/// the filter by that key shares its new windows too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Application {
    /// `class:NAME`, `pid:N` or `window:ID`: stable while it has windows.
    pub id: String,
    /// Its `WM_CLASS` class (empty when grouped by pid or window).
    pub class: String,
    /// Process ids of its windows, ascending.
    pub pids: Vec<u32>,
    /// Its windows, bottom to top.
    pub windows: Vec<WindowInfo>,
}

/// The key an application is known by (see [`Application`]).
fn application_id(w: &WindowInfo) -> String {
    if !w.class.is_empty() {
        format!("class:{}", w.class)
    } else if let Some(pid) = w.pid {
        format!("pid:{pid}")
    } else {
        format!("window:{}", w.id)
    }
}

/// The desktop's applications, in the order their first window comes
/// (bottom to top). Override-redirect windows (menus, tooltips) belong to
/// no application.
pub fn applications(windows: &[WindowInfo]) -> Vec<Application> {
    let mut apps: Vec<Application> = Vec::new();
    for w in windows.iter().filter(|w| !w.override_redirect) {
        let id = application_id(w);
        let app = match apps.iter().position(|a| a.id == id) {
            Some(i) => &mut apps[i],
            None => {
                apps.push(Application {
                    id,
                    class: w.class.clone(),
                    pids: Vec::new(),
                    windows: Vec::new(),
                });
                apps.last_mut().expect("just pushed")
            }
        };
        if let Some(pid) = w.pid {
            if !app.pids.contains(&pid) {
                app.pids.push(pid);
                app.pids.sort_unstable();
            }
        }
        app.windows.push(w.clone());
    }
    apps
}

impl WindowFilter {
    /// Whether every window of `app` is shared.
    pub fn shares_application(&self, app: &Application) -> bool {
        app.windows.iter().all(|w| self.matches(w))
    }

    /// Shares `app` and its future windows: by class, else by pid, else by
    /// window id. Refused when the list it goes into is full.
    pub fn share_application(&mut self, app: &Application) -> Result<(), String> {
        fn add<T: PartialEq + Copy>(
            list: &mut Vec<T>,
            items: &[T],
            name: &str,
        ) -> Result<(), String> {
            let new: Vec<T> = items
                .iter()
                .copied()
                .filter(|i| !list.contains(i))
                .collect();
            if list.len() + new.len() > MAX_FILTER_ENTRIES {
                return Err(format!(
                    "the filter's {name} list is full ({MAX_FILTER_ENTRIES} entries)"
                ));
            }
            list.extend(new);
            Ok(())
        }
        if !app.class.is_empty() {
            if app.class.len() > MAX_FILTER_CLASS_LEN {
                return Err(format!(
                    "class {:?} is longer than {MAX_FILTER_CLASS_LEN} bytes",
                    app.class
                ));
            }
            if !self.classes.contains(&app.class) {
                if self.classes.len() >= MAX_FILTER_ENTRIES {
                    return Err(format!(
                        "the filter's classes list is full ({MAX_FILTER_ENTRIES} entries)"
                    ));
                }
                self.classes.push(app.class.clone());
            }
            Ok(())
        } else if !app.pids.is_empty() {
            add(&mut self.pids, &app.pids, "pids")
        } else {
            let ids: Vec<u32> = app.windows.iter().map(|w| w.id).collect();
            add(&mut self.windows, &ids, "windows")
        }
    }

    /// Stops sharing `app`: every entry naming it (its class, its pids, its
    /// window ids) leaves the filter.
    pub fn unshare_application(&mut self, app: &Application) {
        let ids: Vec<u32> = app.windows.iter().map(|w| w.id).collect();
        self.classes.retain(|c| {
            *c != app.class
                && !app
                    .windows
                    .iter()
                    .any(|w| *c == w.instance || *c == w.class)
        });
        self.pids.retain(|p| !app.pids.contains(p));
        self.windows.retain(|w| !ids.contains(w));
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
    fn windows_group_into_applications_that_share_and_unshare_whole() {
        let mut menu = window(9, "Alpha", Some(5));
        menu.override_redirect = true;
        let windows = vec![
            window(1, "Alpha", Some(10)),
            window(2, "Beta", Some(20)),
            window(3, "Alpha", Some(11)),
            window(4, "", Some(30)),
            window(5, "", None),
            menu,
        ];
        let apps = applications(&windows);
        let ids: Vec<&str> = apps.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["class:Alpha", "class:Beta", "pid:30", "window:5"]);
        assert_eq!(apps[0].pids, [10, 11]);
        assert_eq!(apps[0].windows.len(), 2, "the menu is in no application");

        // Shared by class: a new window of the class is shared too.
        let mut f = WindowFilter::default();
        f.share_application(&apps[0]).unwrap();
        f.share_application(&apps[0]).unwrap();
        assert_eq!(f.classes, ["Alpha"], "once");
        assert!(f.shares_application(&apps[0]));
        assert!(!f.shares_application(&apps[1]));
        assert!(f.matches(&window(99, "Alpha", Some(12))));
        // By pid, by window id when there is nothing else.
        f.share_application(&apps[2]).unwrap();
        f.share_application(&apps[3]).unwrap();
        assert_eq!(
            (f.pids.as_slice(), f.windows.as_slice()),
            (&[30][..], &[5][..])
        );
        assert!(f.validate().is_ok());
        // Unshared whole, whatever named it (a window id, the instance).
        f.windows.push(3);
        f.classes.push("alpha".into());
        f.unshare_application(&apps[0]);
        assert!(f.classes.is_empty() && f.windows == [5], "{f:?}");
        assert!(!f.shares_application(&apps[0]));
        f.unshare_application(&apps[2]);
        f.unshare_application(&apps[3]);
        assert!(f.validate().is_err(), "nothing left: the caller decides");

        // A full list refuses one more.
        let mut full = WindowFilter {
            classes: (0..MAX_FILTER_ENTRIES).map(|n| format!("c{n}")).collect(),
            ..Default::default()
        };
        assert!(full.share_application(&apps[1]).is_err());
        assert!(full.share_application(&apps[2]).is_ok());
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
