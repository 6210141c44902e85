//! Where an interactive attendee's input may act: the decision that keeps
//! keys and buttons inside what the sharer shares, as pointer moves are.
//!
//! The attendee sees only the shared rectangle, and under a window filter
//! only the windows the filter names; its input must not reach what it
//! cannot see. The desktop's pointer and keyboard focus are the sharer's too
//! (the sharer moves the pointer and clicks other windows while sharing), so
//! the rules read where they are at the moment of the event:
//!
//! - a pointer move is relative to the shared rectangle, dropped outside it;
//! - a button press or wheel turn counts only while the desktop pointer is
//!   inside the shared rectangle and, with a filter, over a window the
//!   filter shares (the root background is never shared under a filter: it
//!   is painted [`FILTER_BACKGROUND`](crate::FILTER_BACKGROUND));
//! - a key press counts, with a filter, only while the focused window is a
//!   shared one (focus that follows the pointer: the window under it);
//! - releases always pass: a key or button pressed while it was allowed
//!   must come up wherever the pointer went meanwhile (the sinks ignore the
//!   release of what they do not hold).
//!
//! [`judge`] is pure (the facts are passed in); [`wanted`] says which facts
//! an event needs, so a probe is asked only for those, and [`gather`] asks
//! a [`DesktopProbe`] for them.

use tandem_codec::Rect;
use tandem_proto::InputEvent;

use crate::{CaptureError, WindowFilter, WindowInfo};

/// What the sharer shares when an event is judged.
#[derive(Clone, Copy, Debug)]
pub struct Share<'a> {
    /// The shared rectangle, desktop coordinates.
    pub rect: Rect,
    /// The application/window filter (`None`: every window is shared).
    pub filter: Option<&'a WindowFilter>,
}

/// What is under the desktop's pointer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Under {
    /// Not asked (no filter needed it), or the window vanished meanwhile.
    Unknown,
    /// The root window's background: no window there.
    Background,
    /// This top-level window.
    Window(WindowInfo),
}

/// Where the desktop's pointer is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PointerFacts {
    /// Desktop coordinates; `None` when the pointer is on another screen.
    pub position: Option<(i32, i32)>,
    /// What is under it.
    pub under: Under,
}

/// Where key presses go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Focus {
    /// Nowhere (no focus, or a window that is not viewable).
    Nothing,
    /// To the window under the pointer (`PointerRoot`, or the root window).
    FollowsPointer,
    /// To this top-level window (or one of its children).
    Window(WindowInfo),
}

/// The facts gathered for one event; `None` where not asked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// The pointer.
    pub pointer: Option<PointerFacts>,
    /// The keyboard focus.
    pub focus: Option<Focus>,
}

/// Which facts judging an event needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    /// The pointer's position.
    pub pointer: bool,
    /// The window under the pointer (implies `pointer`).
    pub window: bool,
    /// The keyboard focus (and the window under the pointer when focus
    /// follows it).
    pub focus: bool,
}

impl Wanted {
    /// Whether nothing is needed.
    pub fn nothing(&self) -> bool {
        !(self.pointer || self.window || self.focus)
    }
}

/// Why an event was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// A pointer move outside the shared rectangle.
    MoveOutside,
    /// A button or wheel while the desktop pointer is outside the shared
    /// rectangle (or on another screen).
    PointerOutside,
    /// A button or wheel over a window the filter hides, or over the
    /// background.
    PointerOverHidden,
    /// A key while the focus is on a window the filter hides, or nowhere.
    FocusHidden,
    /// A needed fact was not gathered.
    Unknown,
}

impl Dropped {
    /// A short label for logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Dropped::MoveOutside => "move outside the shared rectangle",
            Dropped::PointerOutside => "pointer outside the shared rectangle",
            Dropped::PointerOverHidden => "pointer over a window that is not shared",
            Dropped::FocusHidden => "focus on a window that is not shared",
            Dropped::Unknown => "desktop state unknown",
        }
    }
}

/// What to do with an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Inject this (a move in desktop coordinates; anything else as is).
    Deliver(InputEvent),
    /// Drop it.
    Drop(Dropped),
}

fn is_press(event: &InputEvent) -> bool {
    match *event {
        InputEvent::MouseButton { pressed, .. } | InputEvent::Key { pressed, .. } => pressed,
        InputEvent::Wheel { .. } => true,
        InputEvent::MouseMove { .. } => false,
    }
}

/// The facts [`judge`] needs for `event` under `share`.
pub fn wanted(event: &InputEvent, share: &Share<'_>) -> Wanted {
    if !is_press(event) {
        return Wanted::default();
    }
    match event {
        InputEvent::MouseButton { .. } | InputEvent::Wheel { .. } => Wanted {
            pointer: true,
            window: share.filter.is_some(),
            focus: false,
        },
        InputEvent::Key { .. } if share.filter.is_some() => Wanted {
            focus: true,
            ..Wanted::default()
        },
        _ => Wanted::default(),
    }
}

/// Decides `event` (positions relative to the shared rectangle) under
/// `share`. `facts` is `None` for a desktop with no pointer or windows of
/// its own to ask (the synthetic desktop: only moves are confined there).
pub fn judge(event: &InputEvent, share: &Share<'_>, facts: Option<&Facts>) -> Verdict {
    let rect = share.rect;
    if let InputEvent::MouseMove { x, y } = *event {
        if x >= rect.width || y >= rect.height {
            return Verdict::Drop(Dropped::MoveOutside);
        }
        return Verdict::Deliver(InputEvent::MouseMove {
            x: rect.x.saturating_add(x),
            y: rect.y.saturating_add(y),
        });
    }
    let Some(facts) = facts else {
        return Verdict::Deliver(*event);
    };
    if !is_press(event) {
        return Verdict::Deliver(*event);
    }
    let shared = |under: &Under| match (share.filter, under) {
        (None, _) => true,
        (Some(filter), Under::Window(w)) => filter.matches(w),
        (Some(_), Under::Background | Under::Unknown) => false,
    };
    match event {
        InputEvent::MouseButton { .. } | InputEvent::Wheel { .. } => {
            let Some(pointer) = &facts.pointer else {
                return Verdict::Drop(Dropped::Unknown);
            };
            let inside = pointer.position.is_some_and(|(x, y)| {
                let (x, y) = (i64::from(x), i64::from(y));
                let (x0, y0) = (i64::from(rect.x), i64::from(rect.y));
                (x0..x0 + i64::from(rect.width)).contains(&x)
                    && (y0..y0 + i64::from(rect.height)).contains(&y)
            });
            if !inside {
                Verdict::Drop(Dropped::PointerOutside)
            } else if !shared(&pointer.under) {
                Verdict::Drop(Dropped::PointerOverHidden)
            } else {
                Verdict::Deliver(*event)
            }
        }
        InputEvent::Key { .. } => {
            if share.filter.is_none() {
                return Verdict::Deliver(*event);
            }
            let allowed = match &facts.focus {
                None => return Verdict::Drop(Dropped::Unknown),
                Some(Focus::Nothing) => false,
                Some(Focus::Window(w)) => shared(&Under::Window(w.clone())),
                Some(Focus::FollowsPointer) => match &facts.pointer {
                    Some(p) => shared(&p.under),
                    None => return Verdict::Drop(Dropped::Unknown),
                },
            };
            if allowed {
                Verdict::Deliver(*event)
            } else {
                Verdict::Drop(Dropped::FocusHidden)
            }
        }
        InputEvent::MouseMove { .. } => unreachable!("moves are judged above"),
    }
}

/// Where the facts come from: the desktop the input goes to.
pub trait DesktopProbe: Send + 'static {
    /// Where the pointer is; with `window`, also the top-level window
    /// under it (else [`Under::Unknown`]).
    fn pointer(&mut self, window: bool) -> Result<PointerFacts, CaptureError>;

    /// Where key presses go now.
    fn focus(&mut self) -> Result<Focus, CaptureError>;
}

/// Asks `probe` for what judging `event` needs (nothing for moves and
/// releases, so those cost no round trip).
pub fn gather(
    probe: &mut dyn DesktopProbe,
    event: &InputEvent,
    share: &Share<'_>,
) -> Result<Facts, CaptureError> {
    let want = wanted(event, share);
    let mut facts = Facts::default();
    if want.focus {
        let focus = probe.focus()?;
        if focus == Focus::FollowsPointer {
            facts.pointer = Some(probe.pointer(true)?);
        }
        facts.focus = Some(focus);
    }
    if (want.pointer || want.window) && facts.pointer.is_none() {
        facts.pointer = Some(probe.pointer(want.window)?);
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use tandem_proto::MouseButton;

    use super::*;

    fn window(id: u32, class: &str) -> WindowInfo {
        WindowInfo {
            id,
            x: 0,
            y: 0,
            width: 100,
            height: 100,
            instance: class.to_lowercase(),
            class: class.into(),
            pid: None,
            title: String::new(),
            override_redirect: false,
        }
    }

    fn click(pressed: bool) -> InputEvent {
        InputEvent::MouseButton {
            button: MouseButton::Left,
            pressed,
        }
    }

    fn key(pressed: bool) -> InputEvent {
        InputEvent::Key {
            keysym: 0x61,
            pressed,
        }
    }

    fn pointer_at(x: i32, y: i32, under: Under) -> Facts {
        Facts {
            pointer: Some(PointerFacts {
                position: Some((x, y)),
                under,
            }),
            focus: None,
        }
    }

    const RECT: Rect = Rect {
        x: 100,
        y: 50,
        width: 200,
        height: 100,
    };

    #[test]
    fn moves_are_offset_into_the_rectangle_and_dropped_outside_it() {
        let share = Share {
            rect: RECT,
            filter: None,
        };
        let inside = InputEvent::MouseMove { x: 199, y: 99 };
        assert_eq!(
            judge(&inside, &share, None),
            Verdict::Deliver(InputEvent::MouseMove { x: 299, y: 149 })
        );
        for outside in [
            InputEvent::MouseMove { x: 200, y: 0 },
            InputEvent::MouseMove { x: 0, y: 100 },
        ] {
            assert_eq!(
                judge(&outside, &share, Some(&Facts::default())),
                Verdict::Drop(Dropped::MoveOutside)
            );
        }
        assert!(wanted(&inside, &share).nothing(), "a move costs no probe");
    }

    #[test]
    fn a_click_counts_only_with_the_pointer_inside_the_rectangle() {
        let share = Share {
            rect: RECT,
            filter: None,
        };
        assert_eq!(
            wanted(&click(true), &share),
            Wanted {
                pointer: true,
                window: false,
                focus: false
            }
        );
        let inside = pointer_at(100, 149, Under::Unknown);
        assert_eq!(
            judge(&click(true), &share, Some(&inside)),
            Verdict::Deliver(click(true))
        );
        for (x, y) in [(99, 60), (300, 60), (150, 49), (150, 150), (-5, -5)] {
            let facts = pointer_at(x, y, Under::Background);
            assert_eq!(
                judge(&click(true), &share, Some(&facts)),
                Verdict::Drop(Dropped::PointerOutside),
                "({x}, {y})"
            );
            let wheel = InputEvent::Wheel { dx: 0, dy: 1 };
            assert_eq!(
                judge(&wheel, &share, Some(&facts)),
                Verdict::Drop(Dropped::PointerOutside)
            );
        }
        let off_screen = Facts {
            pointer: Some(PointerFacts {
                position: None,
                under: Under::Unknown,
            }),
            focus: None,
        };
        assert_eq!(
            judge(&click(true), &share, Some(&off_screen)),
            Verdict::Drop(Dropped::PointerOutside)
        );
        assert_eq!(
            judge(&click(true), &share, Some(&Facts::default())),
            Verdict::Drop(Dropped::Unknown),
            "not asked: not let through"
        );
        // A release comes up wherever the pointer went meanwhile.
        let outside = pointer_at(0, 0, Under::Background);
        assert_eq!(
            judge(&click(false), &share, Some(&outside)),
            Verdict::Deliver(click(false))
        );
        assert!(wanted(&click(false), &share).nothing());
        // Without a desktop to ask (synthetic) only moves are confined.
        assert_eq!(
            judge(&click(true), &share, None),
            Verdict::Deliver(click(true))
        );
    }

    #[test]
    fn under_a_filter_clicks_need_a_shared_window_and_keys_a_shared_focus() {
        let filter = WindowFilter {
            classes: vec!["Keep".into()],
            ..Default::default()
        };
        let share = Share {
            rect: RECT,
            filter: Some(&filter),
        };
        let (keep, other) = (window(1, "Keep"), window(2, "Other"));
        assert!(wanted(&click(true), &share).window);
        let over = |w: &WindowInfo| pointer_at(150, 60, Under::Window(w.clone()));
        assert_eq!(
            judge(&click(true), &share, Some(&over(&keep))),
            Verdict::Deliver(click(true))
        );
        assert_eq!(
            judge(&click(true), &share, Some(&over(&other))),
            Verdict::Drop(Dropped::PointerOverHidden)
        );
        for under in [Under::Background, Under::Unknown] {
            assert_eq!(
                judge(&click(true), &share, Some(&pointer_at(150, 60, under))),
                Verdict::Drop(Dropped::PointerOverHidden)
            );
        }
        // A shared window outside the rectangle is still outside.
        let far = pointer_at(10, 10, Under::Window(keep.clone()));
        assert_eq!(
            judge(&click(true), &share, Some(&far)),
            Verdict::Drop(Dropped::PointerOutside)
        );

        assert!(wanted(&key(true), &share).focus);
        assert!(wanted(&key(false), &share).nothing());
        let focused = |focus: Focus, pointer: Option<PointerFacts>| Facts {
            pointer,
            focus: Some(focus),
        };
        assert_eq!(
            judge(
                &key(true),
                &share,
                Some(&focused(Focus::Window(keep.clone()), None))
            ),
            Verdict::Deliver(key(true))
        );
        assert_eq!(
            judge(
                &key(true),
                &share,
                Some(&focused(Focus::Window(other.clone()), None))
            ),
            Verdict::Drop(Dropped::FocusHidden)
        );
        assert_eq!(
            judge(&key(true), &share, Some(&focused(Focus::Nothing, None))),
            Verdict::Drop(Dropped::FocusHidden)
        );
        // Focus follows the pointer: the window under it decides, wherever it is.
        let under = |w: &WindowInfo| PointerFacts {
            position: Some((5, 5)),
            under: Under::Window(w.clone()),
        };
        assert_eq!(
            judge(
                &key(true),
                &share,
                Some(&focused(Focus::FollowsPointer, Some(under(&keep))))
            ),
            Verdict::Deliver(key(true))
        );
        assert_eq!(
            judge(
                &key(true),
                &share,
                Some(&focused(Focus::FollowsPointer, Some(under(&other))))
            ),
            Verdict::Drop(Dropped::FocusHidden)
        );
        assert_eq!(
            judge(&key(true), &share, Some(&Facts::default())),
            Verdict::Drop(Dropped::Unknown)
        );
        // A key release always passes.
        assert_eq!(
            judge(&key(false), &share, Some(&focused(Focus::Nothing, None))),
            Verdict::Deliver(key(false))
        );
    }

    #[test]
    fn without_a_filter_keys_go_wherever_the_focus_is() {
        let share = Share {
            rect: RECT,
            filter: None,
        };
        assert!(wanted(&key(true), &share).nothing());
        assert_eq!(
            judge(&key(true), &share, Some(&Facts::default())),
            Verdict::Deliver(key(true))
        );
    }

    /// A probe answering fixed facts and counting its calls.
    struct Fixed {
        pointer: PointerFacts,
        focus: Focus,
        calls: Vec<&'static str>,
    }

    impl DesktopProbe for Fixed {
        fn pointer(&mut self, window: bool) -> Result<PointerFacts, CaptureError> {
            self.calls
                .push(if window { "pointer+window" } else { "pointer" });
            let mut p = self.pointer.clone();
            if !window {
                p.under = Under::Unknown;
            }
            Ok(p)
        }

        fn focus(&mut self) -> Result<Focus, CaptureError> {
            self.calls.push("focus");
            Ok(self.focus.clone())
        }
    }

    #[test]
    fn gather_asks_only_for_what_the_event_needs() {
        let filter = WindowFilter {
            windows: vec![1],
            ..Default::default()
        };
        let mut probe = Fixed {
            pointer: PointerFacts {
                position: Some((150, 60)),
                under: Under::Window(window(1, "Keep")),
            },
            focus: Focus::FollowsPointer,
            calls: Vec::new(),
        };
        let plain = Share {
            rect: RECT,
            filter: None,
        };
        let filtered = Share {
            rect: RECT,
            filter: Some(&filter),
        };
        let moved = InputEvent::MouseMove { x: 1, y: 1 };
        for (event, share) in [
            (&moved, &filtered),
            (&key(true), &plain),
            (&key(false), &filtered),
        ] {
            assert_eq!(gather(&mut probe, event, share).unwrap(), Facts::default());
        }
        assert!(probe.calls.is_empty());
        let facts = gather(&mut probe, &click(true), &plain).unwrap();
        assert_eq!(facts.pointer.unwrap().under, Under::Unknown);
        let facts = gather(&mut probe, &key(true), &filtered).unwrap();
        assert_eq!(
            judge(&key(true), &filtered, Some(&facts)),
            Verdict::Deliver(key(true))
        );
        assert_eq!(probe.calls, ["pointer", "focus", "pointer+window"]);
    }
}
