//! The attendee's window (winit + softbuffer; X11 and Wayland).
//!
//! The UI thread only draws and turns window input into [`Command`]s; the
//! [`live`](crate::live) client task on the tokio runtime does all network
//! work and decoding. When the client has something new it wakes the event
//! loop with one user event (never more than one pending), and the window
//! takes the newest frame when it draws: latest wins, so a slow window
//! skips frames instead of holding anything up.
//!
//! Key chords (Ctrl+Alt+Shift + a key) are the viewer's own and never reach
//! the shared desktop: I asks for interactive control, V gives control back,
//! S toggles the status overlay, F switches between scaled and 1:1, C toggles
//! the shared pointer, H shows help.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_codec::Frame;
use tandem_proto::{ControlLevel, CursorShape, InputEvent, MouseButton};
use tokio::sync::mpsc::error::TrySendError;
use winit::application::ApplicationHandler;
use winit::dpi::PhysicalSize;
use winit::event::{ElementState, KeyEvent, MouseScrollDelta, StartCause, WindowEvent};
use winit::event_loop::{ActiveEventLoop, ControlFlow, EventLoop, EventLoopProxy};
use winit::keyboard::{Key, KeyCode, ModifiersState, NamedKey, PhysicalKey};
use winit::window::{Window, WindowAttributes, WindowId};

use crate::geometry::{ScaleMode, Viewport};
use crate::keys::keysym_of_key;
use crate::live::{self, Command, Counters, LinkState, LiveOptions, LiveView};
use crate::render::{self, Canvas, Panel, Scaler};
use crate::{ViewerError, ViewerEvent, ViewerOutcome};

/// How long a short message (control answer, refusal) stays on screen.
const MESSAGE_TIME: Duration = Duration::from_secs(4);
/// How long the reason stays on screen when the sharer ended the session.
const LINGER: Duration = Duration::from_secs(3);
/// How long a closed window waits for the client to say goodbye.
const LEAVE_GRACE: Duration = Duration::from_secs(2);
/// Refresh of the status overlay and the reconnect countdown.
const TICK: Duration = Duration::from_millis(500);
/// Desktop pixels scrolled per wheel notch or arrow key at 1:1.
const SCROLL_STEP: i64 = 48;
/// Wheel: pixels of a touchpad scroll that make one notch.
const PIXELS_PER_NOTCH: f64 = 40.0;
/// Text colours: information, and what the viewer is doing while disconnected.
const TEXT_COLOR: u32 = 0x00f0_f0f0;
const ALERT_COLOR: u32 = 0x00ff_d060;

/// How the window looks at start.
#[derive(Clone, Copy, Debug)]
pub struct WindowOptions {
    /// Scaled (`SmartSizing`) or 1:1 with scrolling.
    pub scale: ScaleMode,
    /// Initial inner size in physical pixels; `None`: the desktop's size
    /// (at most nine tenths of the monitor) once it is known.
    pub size: Option<(u32, u32)>,
    /// Show the status overlay from the start.
    pub status: bool,
    /// Draw the shared pointer.
    pub pointer: bool,
}

impl Default for WindowOptions {
    fn default() -> Self {
        WindowOptions {
            scale: ScaleMode::Fit,
            size: None,
            status: false,
            pointer: true,
        }
    }
}

enum UserEvent {
    /// The client changed the view state.
    Wake,
    /// The client task ended.
    ClientDone,
}

/// Opens the window, runs the client on `runtime`, and returns when the
/// window is closed or the client ends (after showing why, when the sharer
/// ended the session). Must run on the main thread.
pub fn run_window(
    live_options: LiveOptions,
    options: WindowOptions,
    runtime: &tokio::runtime::Handle,
    on_event: impl FnMut(ViewerEvent) + Send + 'static,
) -> Result<ViewerOutcome, ViewerError> {
    let event_loop = EventLoop::<UserEvent>::with_user_event()
        .build()
        .map_err(|e| ViewerError::Window(format!("cannot open a window: {e}")))?;
    let proxy = event_loop.create_proxy();
    let wake_pending = Arc::new(AtomicBool::new(false));
    let view = {
        let (proxy, pending) = (proxy.clone(), wake_pending.clone());
        LiveView::new(move || {
            // One pending wake at most: the window reads the newest state anyway.
            if !pending.swap(true, Ordering::AcqRel) {
                let _ = proxy.send_event(UserEvent::Wake);
            }
        })
    };
    let client = live::spawn(live_options, view.clone(), runtime, on_event);
    let (result_tx, result_rx) = std::sync::mpsc::channel();
    let task = client.task;
    runtime.spawn(notify_done(task, result_tx, proxy));

    let mut app = App::new(client.commands, view, wake_pending, result_rx, options);
    let loop_result = event_loop.run_app(&mut app);
    // The loop may end before the client (window error, closed display):
    // ask it to leave, then collect its result.
    let _ = app.commands.try_send(Command::Leave);
    let result = app
        .result
        .take()
        .or_else(|| app.result_rx.recv_timeout(LEAVE_GRACE * 2).ok());
    if let Some(e) = app.error.take() {
        return Err(e);
    }
    loop_result.map_err(|e| ViewerError::Window(e.to_string()))?;
    result.unwrap_or_else(|| {
        Err(ViewerError::Window(
            "the client did not stop after the window closed".into(),
        ))
    })
}

async fn notify_done(
    task: tokio::task::JoinHandle<Result<ViewerOutcome, ViewerError>>,
    result_tx: std::sync::mpsc::Sender<Result<ViewerOutcome, ViewerError>>,
    proxy: EventLoopProxy<UserEvent>,
) {
    let result = task
        .await
        .unwrap_or_else(|e| Err(ViewerError::Window(format!("client task failed: {e}"))));
    let _ = result_tx.send(result);
    let _ = proxy.send_event(UserEvent::ClientDone);
}

/// The window and what draws into it.
struct Gfx {
    window: Rc<Window>,
    surface: softbuffer::Surface<Rc<Window>, Rc<Window>>,
    /// Kept alive as long as the surface.
    _context: softbuffer::Context<Rc<Window>>,
}

/// Keys and buttons held down on the shared desktop, so that they are
/// released even when their release is not seen (focus lost, level dropped).
#[derive(Default)]
struct Held {
    /// Physical key -> keysym sent on press (its release sends the same,
    /// whatever the modifiers then).
    keys: HashMap<PhysicalKey, u32>,
    /// Physical keys of chords, whose release is not forwarded either.
    chord_keys: Vec<PhysicalKey>,
    buttons: Vec<MouseButton>,
}

/// Rates computed from the client's counters over the last second or so.
#[derive(Default)]
struct Rates {
    last: Option<(Instant, Counters)>,
    updates_per_s: f64,
    bits_per_s: f64,
}

impl Rates {
    fn sample(&mut self, now: Instant, c: Counters) {
        match self.last {
            Some((at, old)) if now.duration_since(at) >= Duration::from_millis(900) => {
                let dt = now.duration_since(at).as_secs_f64();
                self.updates_per_s = (c.updates - old.updates) as f64 / dt;
                self.bits_per_s = (c.bytes - old.bytes) as f64 * 8.0 / dt;
                self.last = Some((now, c));
            }
            Some(_) => {}
            None => self.last = Some((now, c)),
        }
    }
}

struct App {
    commands: tokio::sync::mpsc::Sender<Command>,
    view: Arc<LiveView>,
    wake_pending: Arc<AtomicBool>,
    result_rx: std::sync::mpsc::Receiver<Result<ViewerOutcome, ViewerError>>,
    options: WindowOptions,
    gfx: Option<Gfx>,
    error: Option<ViewerError>,
    result: Option<Result<ViewerOutcome, ViewerError>>,

    // What is drawn, copied from the view state.
    frame: Option<Frame>,
    link: LinkState,
    session: String,
    level: ControlLevel,
    paused: bool,
    desktop: (u32, u32),
    pointer: Option<(Arc<CursorShape>, i32, i32)>,
    message: Option<(String, Instant)>,
    counters: Counters,
    generation: u64,

    viewport: Viewport,
    scaler: Scaler,
    show_status: bool,
    show_pointer: bool,
    show_help: bool,
    sized_to_desktop: bool,
    title: String,
    rates: Rates,
    draws: VecDeque<Instant>,
    /// Smoothed time from a frame's publication by the client to its presentation.
    draw_delay: Duration,

    modifiers: ModifiersState,
    held: Held,
    pointer_at: Option<(f64, f64)>,
    last_move: Option<(u32, u32)>,
    wheel: (f64, f64),

    leaving_since: Option<Instant>,
    exit_at: Option<Instant>,
}

impl App {
    fn new(
        commands: tokio::sync::mpsc::Sender<Command>,
        view: Arc<LiveView>,
        wake_pending: Arc<AtomicBool>,
        result_rx: std::sync::mpsc::Receiver<Result<ViewerOutcome, ViewerError>>,
        options: WindowOptions,
    ) -> App {
        App {
            commands,
            view,
            wake_pending,
            result_rx,
            options,
            gfx: None,
            error: None,
            result: None,
            frame: None,
            link: LinkState::Connecting {
                addr: String::new(),
                index: 0,
                of: 0,
                lost: None,
            },
            session: String::new(),
            level: ControlLevel::None,
            paused: false,
            desktop: (0, 0),
            pointer: None,
            message: None,
            counters: Counters::default(),
            generation: u64::MAX,
            viewport: Viewport::new(options.scale, (0, 0), (0, 0)),
            scaler: Scaler::new(),
            show_status: options.status,
            show_pointer: options.pointer,
            show_help: false,
            sized_to_desktop: options.size.is_some(),
            title: String::new(),
            rates: Rates::default(),
            draws: VecDeque::new(),
            draw_delay: Duration::ZERO,
            modifiers: ModifiersState::empty(),
            held: Held::default(),
            pointer_at: None,
            last_move: None,
            wheel: (0.0, 0.0),
            leaving_since: None,
            exit_at: None,
        }
    }

    fn create_window(&mut self, event_loop: &ActiveEventLoop) -> Result<(), ViewerError> {
        let err = |what: &str, e: &dyn std::fmt::Display| {
            ViewerError::Window(format!("cannot {what}: {e}"))
        };
        let (w, h) = self.options.size.unwrap_or((1024, 640));
        let mut attributes = Window::default_attributes()
            .with_title("Tandem: connecting")
            .with_inner_size(PhysicalSize::new(w.max(1), h.max(1)));
        attributes = <WindowAttributes as winit::platform::x11::WindowAttributesExtX11>::with_name(
            attributes,
            "Tandem",
            "tandem-viewer",
        );
        attributes =
            <WindowAttributes as winit::platform::wayland::WindowAttributesExtWayland>::with_name(
                attributes,
                "tandem-viewer",
                "tandem-viewer",
            );
        let window = Rc::new(
            event_loop
                .create_window(attributes)
                .map_err(|e| err("create the window", &e))?,
        );
        let context = softbuffer::Context::new(window.clone())
            .map_err(|e| err("draw on this display", &e))?;
        let surface = softbuffer::Surface::new(&context, window.clone())
            .map_err(|e| err("draw in the window", &e))?;
        self.gfx = Some(Gfx {
            window,
            surface,
            _context: context,
        });
        Ok(())
    }

    /// Copies the view state (and takes the newest frame) for drawing.
    fn sync(&mut self) {
        let now = Instant::now();
        let state_changed;
        {
            let mut s = self.view.lock();
            if let Some(published) = s.take_frame(&mut self.frame) {
                // Presented right after this sync: the wait is from publication to now.
                let delay = now.saturating_duration_since(published);
                self.draw_delay = if self.draw_delay.is_zero() {
                    delay
                } else {
                    self.draw_delay.mul_f64(0.8) + delay.mul_f64(0.2)
                };
            }
            state_changed = s.generation != self.generation;
            if state_changed {
                self.generation = s.generation;
                self.link = s.link.clone();
                self.session = s.session.clone();
                self.paused = s.paused;
                self.desktop = s.desktop;
                self.pointer = s.pointer();
                self.message = s.message.clone();
                self.counters = s.counters;
                if s.level != self.level {
                    let old = std::mem::replace(&mut self.level, s.level);
                    drop(s);
                    if old.can_input() && !self.level.can_input() {
                        // The node released everything on its side; forget it here.
                        self.held.keys.clear();
                        self.held.buttons.clear();
                        self.last_move = None;
                    }
                }
            }
        }
        self.rates.sample(now, self.counters);
        if state_changed {
            self.update_title();
            self.size_to_desktop();
        }
    }

    fn update_title(&mut self) {
        let mut title = if self.session.is_empty() {
            "Tandem: connecting".to_owned()
        } else {
            format!("Tandem: session {} - {}", self.session, self.level)
        };
        if self.paused {
            title.push_str(" - paused");
        }
        match &self.link {
            LinkState::Connected { .. } => {}
            LinkState::Ended(_) => title.push_str(" - ended"),
            _ if !self.session.is_empty() => title.push_str(" - reconnecting"),
            _ => {}
        }
        if title != self.title {
            if let Some(gfx) = &self.gfx {
                gfx.window.set_title(&title);
            }
            self.title = title;
        }
    }

    /// Once the desktop size is known, makes the window that size (within
    /// the monitor), unless the user chose a size.
    fn size_to_desktop(&mut self) {
        let (w, h) = self.desktop;
        if self.sized_to_desktop || w == 0 || h == 0 {
            return;
        }
        let Some(gfx) = &self.gfx else { return };
        self.sized_to_desktop = true;
        let (mut w, mut h) = (w, h);
        if let Some(monitor) = gfx.window.current_monitor() {
            let m = monitor.size();
            let (mw, mh) = (m.width * 9 / 10, m.height * 9 / 10);
            if mw > 0 && mh > 0 && (w > mw || h > mh) {
                if self.viewport.mode == ScaleMode::Fit {
                    // Shrink keeping the aspect ratio, so no bands appear.
                    let v = Viewport::new(ScaleMode::Fit, (mw, mh), (w, h));
                    let p = v.placement();
                    (w, h) = (p.dst.w, p.dst.h);
                } else {
                    (w, h) = (w.min(mw), h.min(mh));
                }
            }
        }
        let _ = gfx.window.request_inner_size(PhysicalSize::new(w, h));
    }

    fn redraw(&mut self) {
        self.sync();
        let now = Instant::now();
        let overlays = self.overlay_text(now);
        let Some(gfx) = &mut self.gfx else { return };
        let size = gfx.window.inner_size();
        let (Some(w), Some(h)) = (NonZeroU32::new(size.width), NonZeroU32::new(size.height)) else {
            return;
        };
        if let Err(e) = gfx.surface.resize(w, h) {
            tracing::warn!(error = %e, "cannot resize the drawing surface");
            return;
        }
        let mut buffer = match gfx.surface.buffer_mut() {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "cannot get the drawing buffer");
                return;
            }
        };
        let scale = gfx.window.scale_factor().round().clamp(1.0, 4.0) as u32;
        self.viewport.set_window(size.width, size.height);
        let mut canvas = Canvas {
            pixels: &mut buffer,
            width: size.width,
            height: size.height,
        };
        let connected = matches!(self.link, LinkState::Connected { .. });
        match &self.frame {
            Some(frame) => {
                self.viewport.set_frame(frame.width(), frame.height());
                self.scaler.draw(&mut canvas, frame, &self.viewport);
                if !connected {
                    // The picture is no longer live: dim it under the banner.
                    render::dim(&mut canvas);
                } else if self.show_pointer {
                    if let Some((shape, x, y)) = &self.pointer {
                        render::draw_cursor(&mut canvas, &self.viewport, shape, *x, *y);
                    }
                }
            }
            None => canvas.pixels.fill(render::BACKGROUND),
        }
        draw_overlays(&mut canvas, scale, &overlays);
        if let Err(e) = buffer.present() {
            tracing::warn!(error = %e, "cannot present the window's picture");
        }
        self.draws.push_back(now);
        while self
            .draws
            .front()
            .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(2))
        {
            self.draws.pop_front();
        }
    }

    fn fps(&self) -> f64 {
        match (self.draws.front(), self.draws.back()) {
            (Some(a), Some(b)) if b > a => (self.draws.len() - 1) as f64 / (*b - *a).as_secs_f64(),
            _ => 0.0,
        }
    }

    /// The text panels to draw now.
    fn overlay_text(&self, now: Instant) -> Overlays {
        let mut banner = self.link.describe(now);
        if banner.is_empty() {
            if self.level == ControlLevel::None {
                banner
                    .push("your control level is none: the sharer has not let you view yet".into());
            } else if self.frame.is_none() {
                banner.push("waiting for the first picture...".into());
            }
        }
        let mut status = Vec::new();
        if self.show_status {
            let rtt = self.counters.rtt;
            let latency = rtt / 2 + self.counters.transfer + self.counters.decode + self.draw_delay;
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            status.push(format!(
                "fps {:.1} drawn, {:.1} updates/s",
                self.fps(),
                self.rates.updates_per_s
            ));
            status.push(format!("bitrate {}", format_bitrate(self.rates.bits_per_s)));
            status.push(format!(
                "latency ~{:.0} ms (rtt/2 {:.1} + transfer {:.1} + decode {:.1} + draw {:.1})",
                ms(latency),
                ms(rtt / 2),
                ms(self.counters.transfer),
                ms(self.counters.decode),
                ms(self.draw_delay)
            ));
            if self.counters.stamped > 0 {
                // Measured, not estimated: the node's capture stamp against
                // this machine's clock (exact when both share one clock).
                status.push(format!(
                    "capture to decoded {:.1} ms (p50 {:.1}, p99 {:.1} over {} updates)",
                    ms(self.counters.capture_last),
                    ms(self.counters.capture_p50),
                    ms(self.counters.capture_p99),
                    self.counters.stamped
                ));
            }
            status.push(format!(
                "control {}{}",
                self.level,
                if self.paused { ", graphics paused" } else { "" }
            ));
            let scale = match self.viewport.mode {
                ScaleMode::Fit => format!("fit ({:.0}%)", self.viewport.scale() * 100.0),
                ScaleMode::OneToOne => "1:1".to_owned(),
            };
            status.push(format!("scale {scale}"));
        }
        if self.show_help {
            status.extend(HELP.iter().map(|l| (*l).to_owned()));
        }
        let mut footer = Vec::new();
        if self.paused && !self.show_status {
            footer.push("graphics paused by the sharer".to_owned());
        }
        if let Some((text, at)) = &self.message {
            if now.duration_since(*at) < MESSAGE_TIME {
                footer.push(text.clone());
            }
        }
        Overlays {
            banner,
            status,
            footer,
        }
    }

    /// Whether the picture changes with time alone (countdowns, rates, messages).
    fn needs_ticks(&self, now: Instant) -> bool {
        self.show_status
            || !matches!(self.link, LinkState::Connected { .. })
            || self
                .message
                .as_ref()
                .is_some_and(|(_, at)| now.duration_since(*at) < MESSAGE_TIME + TICK)
    }

    fn request_redraw(&self) {
        if let Some(gfx) = &self.gfx {
            gfx.window.request_redraw();
        }
    }

    fn send(&mut self, command: Command) {
        match self.commands.try_send(command) {
            Ok(()) => {}
            Err(TrySendError::Full(c)) => {
                // The client is stuck writing to a stalled connection; it
                // will be replaced, and this input is stale by then anyway.
                tracing::debug!(command = ?c, "command queue full; dropped");
            }
            Err(TrySendError::Closed(_)) => {}
        }
    }

    fn send_input(&mut self, event: InputEvent) {
        if self.level.can_input() {
            self.send(Command::Input(event));
        }
    }

    /// Releases every key and button held on the shared desktop.
    fn release_all(&mut self) {
        let keys: Vec<u32> = self.held.keys.drain().map(|(_, k)| k).collect();
        for keysym in keys {
            self.send_input(InputEvent::Key {
                keysym,
                pressed: false,
            });
        }
        let buttons = std::mem::take(&mut self.held.buttons);
        for button in buttons {
            self.send_input(InputEvent::MouseButton {
                button,
                pressed: false,
            });
        }
    }

    fn leave(&mut self, event_loop: &ActiveEventLoop) {
        if self.leaving_since.is_none() {
            self.release_all();
            self.leaving_since = Some(Instant::now());
            self.send(Command::Leave);
        }
        if self.result.is_some() {
            event_loop.exit();
        }
    }

    fn show_message(&mut self, text: impl Into<String>) {
        self.message = Some((text.into(), Instant::now()));
        self.request_redraw();
    }

    /// A viewer key chord (Ctrl+Alt+Shift + key); `true` when `event` was one.
    fn chord(&mut self, event: &KeyEvent) -> bool {
        let m = self.modifiers;
        if !(m.control_key() && m.alt_key() && m.shift_key()) {
            return false;
        }
        let code = match event.physical_key {
            PhysicalKey::Code(code) => Some(code),
            PhysicalKey::Unidentified(_) => None,
        };
        let letter = match &event.logical_key {
            Key::Character(s) => s.chars().next().map(|c| c.to_ascii_lowercase()),
            _ => None,
        };
        let is = |c: char, k: KeyCode| letter == Some(c) || code == Some(k);
        let arrow = match &event.logical_key {
            Key::Named(
                n @ (NamedKey::ArrowLeft
                | NamedKey::ArrowRight
                | NamedKey::ArrowUp
                | NamedKey::ArrowDown
                | NamedKey::PageUp
                | NamedKey::PageDown),
            ) => Some(*n),
            _ => None,
        };
        if event.state == ElementState::Released {
            // Chord keys' releases are not forwarded either.
            return if let Some(i) = self
                .held
                .chord_keys
                .iter()
                .position(|k| *k == event.physical_key)
            {
                self.held.chord_keys.swap_remove(i);
                true
            } else {
                false
            };
        }
        if let Some(n) = arrow {
            self.scroll_key(n);
        } else if is('i', KeyCode::KeyI) {
            self.send(Command::RequestControl(ControlLevel::Interactive));
            self.show_message("asked the sharer for interactive control");
        } else if is('v', KeyCode::KeyV) {
            self.release_all();
            self.send(Command::RequestControl(ControlLevel::View));
            self.show_message("gave control back (view only)");
        } else if is('s', KeyCode::KeyS) {
            self.show_status = !self.show_status;
        } else if is('f', KeyCode::KeyF) {
            let mode = match self.viewport.mode {
                ScaleMode::Fit => ScaleMode::OneToOne,
                ScaleMode::OneToOne => ScaleMode::Fit,
            };
            self.viewport.set_mode(mode);
            self.last_move = None;
        } else if is('c', KeyCode::KeyC) {
            self.show_pointer = !self.show_pointer;
        } else if is('h', KeyCode::KeyH) {
            self.show_help = !self.show_help;
        } else {
            return false;
        }
        if !event.repeat {
            self.held.chord_keys.push(event.physical_key);
        }
        self.request_redraw();
        true
    }

    fn scroll_key(&mut self, key: NamedKey) {
        let page = i64::from(self.viewport.window_h.max(1));
        let (dx, dy) = match key {
            NamedKey::ArrowLeft => (-SCROLL_STEP, 0),
            NamedKey::ArrowRight => (SCROLL_STEP, 0),
            NamedKey::ArrowUp => (0, -SCROLL_STEP),
            NamedKey::ArrowDown => (0, SCROLL_STEP),
            NamedKey::PageUp => (0, -page),
            NamedKey::PageDown => (0, page),
            _ => (0, 0),
        };
        self.viewport.scroll_by(dx, dy);
        self.last_move = None;
        self.request_redraw();
    }

    fn keyboard(&mut self, event: KeyEvent, is_synthetic: bool) {
        // Synthetic presses are winit's account of keys already held when
        // the window gained focus: they were pressed elsewhere.
        if is_synthetic || self.chord(&event) {
            return;
        }
        if !self.level.can_input() {
            // Not sent; at 1:1 the keys scroll the view instead.
            if event.state == ElementState::Pressed && self.viewport.mode == ScaleMode::OneToOne {
                if let Key::Named(n) = event.logical_key {
                    self.scroll_key(n);
                }
            }
            return;
        }
        match event.state {
            ElementState::Pressed => {
                if event.repeat {
                    // The shared desktop's X server repeats held keys itself.
                    return;
                }
                let Some(keysym) = keysym_of_key(&event.logical_key, event.location) else {
                    tracing::debug!(key = ?event.logical_key, "key has no keysym; not sent");
                    return;
                };
                if let Some(old) = self.held.keys.insert(event.physical_key, keysym) {
                    if old != keysym {
                        self.send_input(InputEvent::Key {
                            keysym: old,
                            pressed: false,
                        });
                    }
                }
                self.send_input(InputEvent::Key {
                    keysym,
                    pressed: true,
                });
            }
            ElementState::Released => {
                if let Some(keysym) = self.held.keys.remove(&event.physical_key) {
                    self.send_input(InputEvent::Key {
                        keysym,
                        pressed: false,
                    });
                }
            }
        }
    }

    fn pointer_moved(&mut self, x: f64, y: f64) {
        self.pointer_at = Some((x, y));
        if !self.level.can_input() {
            return;
        }
        // While a button is held, a drag that leaves the picture follows its edge.
        let mapped = if self.held.buttons.is_empty() {
            self.viewport.window_to_frame(x, y)
        } else {
            self.viewport.window_to_frame_clamped(x, y)
        };
        self.move_to(mapped);
    }

    fn move_to(&mut self, mapped: Option<(u32, u32)>) {
        if let Some((fx, fy)) = mapped {
            if self.last_move != Some((fx, fy)) {
                self.last_move = Some((fx, fy));
                self.send_input(InputEvent::MouseMove { x: fx, y: fy });
            }
        }
    }

    fn mouse_button(&mut self, state: ElementState, button: winit::event::MouseButton) {
        if !self.level.can_input() {
            return;
        }
        let button = match button {
            winit::event::MouseButton::Left => MouseButton::Left,
            winit::event::MouseButton::Right => MouseButton::Right,
            winit::event::MouseButton::Middle => MouseButton::Middle,
            winit::event::MouseButton::Back => MouseButton::Back,
            winit::event::MouseButton::Forward => MouseButton::Forward,
            winit::event::MouseButton::Other(_) => return,
        };
        match state {
            ElementState::Pressed => {
                // Only on the picture; the pointer goes there first.
                let Some((x, y)) = self.pointer_at else {
                    return;
                };
                let Some(at) = self.viewport.window_to_frame(x, y) else {
                    return;
                };
                self.move_to(Some(at));
                if !self.held.buttons.contains(&button) {
                    self.held.buttons.push(button);
                }
                self.send_input(InputEvent::MouseButton {
                    button,
                    pressed: true,
                });
            }
            ElementState::Released => {
                if let Some(i) = self.held.buttons.iter().position(|b| *b == button) {
                    self.held.buttons.swap_remove(i);
                    self.send_input(InputEvent::MouseButton {
                        button,
                        pressed: false,
                    });
                }
            }
        }
    }

    fn wheel(&mut self, delta: MouseScrollDelta) {
        let (dx, dy) = match delta {
            // winit: positive y scrolls up (away from the user); the
            // protocol: positive is down.
            MouseScrollDelta::LineDelta(x, y) => (f64::from(x), -f64::from(y)),
            MouseScrollDelta::PixelDelta(p) => (p.x / PIXELS_PER_NOTCH, -p.y / PIXELS_PER_NOTCH),
        };
        if !self.level.can_input() {
            if self.viewport.mode == ScaleMode::OneToOne {
                self.viewport.scroll_by(
                    (dx * SCROLL_STEP as f64) as i64,
                    (dy * SCROLL_STEP as f64) as i64,
                );
                self.request_redraw();
            }
            return;
        }
        self.wheel.0 += dx;
        self.wheel.1 += dy;
        let (nx, ny) = (self.wheel.0.trunc(), self.wheel.1.trunc());
        if nx != 0.0 || ny != 0.0 {
            self.wheel.0 -= nx;
            self.wheel.1 -= ny;
            self.send_input(InputEvent::Wheel {
                dx: nx as i32,
                dy: ny as i32,
            });
        }
    }
}

const HELP: &[&str] = &[
    "keys (Ctrl+Alt+Shift + ...):",
    "  I  ask for interactive control",
    "  V  give control back (view only)",
    "  S  status overlay",
    "  F  scaled / 1:1",
    "  C  shared pointer on / off",
    "  arrows, PgUp/PgDn  scroll at 1:1",
    "  H  this help",
];

struct Overlays {
    /// Centred: what the viewer is doing while disconnected.
    banner: Vec<String>,
    /// Top left: status overlay and help.
    status: Vec<String>,
    /// Bottom: short messages.
    footer: Vec<String>,
}

fn draw_overlays(canvas: &mut Canvas<'_>, scale: u32, overlays: &Overlays) {
    let margin = 8 * scale;
    if !overlays.status.is_empty() {
        Panel {
            lines: &overlays.status,
            scale,
            color: TEXT_COLOR,
        }
        .draw(canvas, margin, margin);
    }
    if !overlays.banner.is_empty() {
        let panel = Panel {
            lines: &overlays.banner,
            scale,
            color: ALERT_COLOR,
        };
        let (w, h) = panel.size();
        let x = canvas.width.saturating_sub(w) / 2;
        let y = canvas.height.saturating_sub(h) / 2;
        panel.draw(canvas, x, y);
    }
    if !overlays.footer.is_empty() {
        let panel = Panel {
            lines: &overlays.footer,
            scale,
            color: TEXT_COLOR,
        };
        let (_, h) = panel.size();
        panel.draw(canvas, margin, canvas.height.saturating_sub(h + margin));
    }
}

fn format_bitrate(bits_per_s: f64) -> String {
    if bits_per_s >= 1e6 {
        format!("{:.2} Mbit/s", bits_per_s / 1e6)
    } else {
        format!("{:.1} kbit/s", bits_per_s / 1e3)
    }
}

impl ApplicationHandler<UserEvent> for App {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.gfx.is_some() {
            return;
        }
        if let Err(e) = self.create_window(event_loop) {
            self.error = Some(e);
            event_loop.exit();
            return;
        }
        self.sync();
        self.request_redraw();
    }

    fn new_events(&mut self, _event_loop: &ActiveEventLoop, cause: StartCause) {
        if let StartCause::ResumeTimeReached { .. } = cause {
            self.request_redraw();
        }
    }

    fn user_event(&mut self, event_loop: &ActiveEventLoop, event: UserEvent) {
        match event {
            UserEvent::Wake => {
                self.wake_pending.store(false, Ordering::Release);
                self.request_redraw();
            }
            UserEvent::ClientDone => {
                // notify_done sent the result before this event.
                self.result = self.result_rx.try_recv().ok();
                if self.leaving_since.is_some() {
                    event_loop.exit();
                    return;
                }
                // The client ended by itself. When the sharer ended the
                // session or it failed, show why for a moment; a script's
                // frame count or deadline just closes the window.
                let explain = match &self.result {
                    Some(Ok(outcome)) => outcome.disconnected.is_some(),
                    _ => true,
                };
                if explain {
                    self.sync();
                    self.request_redraw();
                    self.exit_at = Some(Instant::now() + LINGER);
                } else {
                    event_loop.exit();
                }
            }
        }
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, _id: WindowId, event: WindowEvent) {
        match event {
            WindowEvent::CloseRequested | WindowEvent::Destroyed => self.leave(event_loop),
            WindowEvent::RedrawRequested => self.redraw(),
            WindowEvent::Resized(_) => {
                self.last_move = None;
                self.request_redraw();
            }
            WindowEvent::ModifiersChanged(m) => self.modifiers = m.state(),
            WindowEvent::Focused(false) => {
                // Keys released while unfocused are never seen: release now.
                self.release_all();
                self.held.chord_keys.clear();
            }
            WindowEvent::KeyboardInput {
                event,
                is_synthetic,
                ..
            } => self.keyboard(event, is_synthetic),
            WindowEvent::CursorMoved { position, .. } => self.pointer_moved(position.x, position.y),
            WindowEvent::CursorLeft { .. } => self.pointer_at = None,
            WindowEvent::MouseInput { state, button, .. } => self.mouse_button(state, button),
            WindowEvent::MouseWheel { delta, .. } => self.wheel(delta),
            _ => {}
        }
    }

    fn about_to_wait(&mut self, event_loop: &ActiveEventLoop) {
        let now = Instant::now();
        if let Some(at) = self.exit_at {
            if now >= at {
                event_loop.exit();
                return;
            }
        }
        if let Some(since) = self.leaving_since {
            if now.duration_since(since) >= LEAVE_GRACE {
                event_loop.exit();
                return;
            }
        }
        let mut next = None;
        if self.needs_ticks(now) {
            next = Some(now + TICK);
        }
        for deadline in [self.exit_at, self.leaving_since.map(|s| s + LEAVE_GRACE)]
            .into_iter()
            .flatten()
        {
            next = Some(next.map_or(deadline, |n: Instant| n.min(deadline)));
        }
        event_loop.set_control_flow(match next {
            Some(t) => ControlFlow::WaitUntil(t),
            None => ControlFlow::Wait,
        });
    }
}
