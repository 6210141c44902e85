//! Input sinks that need no display: one that records, one that drops.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tandem_proto::{InputEvent, MouseButton};

use crate::{CaptureError, InputSink};

/// Accepts every event and drops it (view-only sessions, relay nodes).
#[derive(Debug, Clone, Copy, Default)]
pub struct NullSink;

impl InputSink for NullSink {
    fn inject(&mut self, _event: &InputEvent) -> Result<(), CaptureError> {
        Ok(())
    }

    fn release_all(&mut self) -> Result<(), CaptureError> {
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Recorded {
    events: Vec<InputEvent>,
    /// Pressed keysyms, in press order.
    keys: Vec<u32>,
    /// Pressed buttons, in press order.
    buttons: Vec<MouseButton>,
}

/// Records every injected event; clones share one record, so a test can
/// keep a clone while the node owns the sink.
///
/// It tracks which keys and buttons are held, so
/// [`release_all`](InputSink::release_all) records a release for each, most
/// recent first.
#[derive(Debug, Clone, Default)]
pub struct RecordingSink {
    inner: Arc<Mutex<Recorded>>,
}

impl RecordingSink {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event recorded so far, releases from `release_all` included.
    pub fn events(&self) -> Vec<InputEvent> {
        self.lock().events.clone()
    }

    /// Keysyms currently held down, in press order.
    pub fn pressed_keys(&self) -> Vec<u32> {
        self.lock().keys.clone()
    }

    /// Buttons currently held down, in press order.
    pub fn pressed_buttons(&self) -> Vec<MouseButton> {
        self.lock().buttons.clone()
    }

    /// Forget the recorded events (held keys and buttons stay held).
    pub fn clear(&self) {
        self.lock().events.clear();
    }

    fn lock(&self) -> MutexGuard<'_, Recorded> {
        // A panic elsewhere cannot leave the record inconsistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn set_held<T: PartialEq>(held: &mut Vec<T>, item: T, pressed: bool) {
    let pos = held.iter().position(|h| *h == item);
    match (pressed, pos) {
        (true, None) => held.push(item),
        (false, Some(i)) => {
            held.remove(i);
        }
        _ => {}
    }
}

impl InputSink for RecordingSink {
    fn inject(&mut self, event: &InputEvent) -> Result<(), CaptureError> {
        let mut r = self.lock();
        match *event {
            InputEvent::Key { keysym, pressed } => set_held(&mut r.keys, keysym, pressed),
            InputEvent::MouseButton { button, pressed } => {
                set_held(&mut r.buttons, button, pressed);
            }
            InputEvent::MouseMove { .. } | InputEvent::Wheel { .. } => {}
        }
        r.events.push(*event);
        Ok(())
    }

    fn release_all(&mut self) -> Result<(), CaptureError> {
        let mut r = self.lock();
        let keys = std::mem::take(&mut r.keys);
        let buttons = std::mem::take(&mut r.buttons);
        tracing::debug!(
            keys = keys.len(),
            buttons = buttons.len(),
            "releasing held input"
        );
        for keysym in keys.into_iter().rev() {
            r.events.push(InputEvent::Key {
                keysym,
                pressed: false,
            });
        }
        for button in buttons.into_iter().rev() {
            r.events.push(InputEvent::MouseButton {
                button,
                pressed: false,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(keysym: u32, pressed: bool) -> InputEvent {
        InputEvent::Key { keysym, pressed }
    }

    fn button(button: MouseButton, pressed: bool) -> InputEvent {
        InputEvent::MouseButton { button, pressed }
    }

    #[test]
    fn records_and_releases_what_is_held() {
        let recorder = RecordingSink::new();
        let mut sink = recorder.clone();
        let script = [
            key(0xffe1, true), // Shift_L
            key(0x61, true),
            key(0x61, true), // auto-repeat: still one held
            InputEvent::MouseMove { x: 10, y: 20 },
            button(MouseButton::Left, true),
            button(MouseButton::Right, true),
            button(MouseButton::Right, false),
            key(0x62, true),
            key(0x61, false),
            InputEvent::Wheel { dx: 0, dy: -1 },
        ];
        for e in &script {
            sink.inject(e).unwrap();
        }
        assert_eq!(recorder.events(), script.to_vec());
        assert_eq!(recorder.pressed_keys(), vec![0xffe1, 0x62]);
        assert_eq!(recorder.pressed_buttons(), vec![MouseButton::Left]);

        sink.release_all().unwrap();
        let events = recorder.events();
        assert_eq!(
            &events[script.len()..],
            &[
                key(0x62, false),
                key(0xffe1, false),
                button(MouseButton::Left, false)
            ]
        );
        assert!(recorder.pressed_keys().is_empty());
        assert!(recorder.pressed_buttons().is_empty());

        // Nothing held: a second release adds nothing.
        sink.release_all().unwrap();
        assert_eq!(recorder.events().len(), events.len());
    }

    #[test]
    fn release_of_unpressed_key_is_recorded_but_not_tracked() {
        let mut sink = RecordingSink::default();
        sink.inject(&key(0x41, false)).unwrap();
        assert_eq!(sink.events(), vec![key(0x41, false)]);
        assert!(sink.pressed_keys().is_empty());
        sink.clear();
        assert!(sink.events().is_empty());
    }

    #[test]
    fn null_sink_accepts_everything() {
        let mut sink = NullSink;
        sink.inject(&key(1, true)).unwrap();
        sink.release_all().unwrap();
        let mut boxed: Box<dyn InputSink> = Box::new(NullSink);
        boxed.inject(&InputEvent::Wheel { dx: 1, dy: 1 }).unwrap();
    }
}
