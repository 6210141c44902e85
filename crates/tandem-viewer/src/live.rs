//! The window viewer's network side: one task that owns the connection,
//! decodes every graphics update, follows control messages, sends the
//! window's input, and reconnects when the connection is lost (the next
//! address of the connection string first, then all of them again with
//! backoff).
//!
//! It publishes what the window shows into a [`LiveView`], latest wins: each
//! decoded frame overwrites the previous one, and the window takes the newest
//! whenever it is ready to draw. The task never waits for the window, so a
//! slow window cannot stall the network side; and since updates are decoded
//! here as they arrive, the node's own latest-wins fan-out sees a reader that
//! keeps up.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tandem_capture::x11::ClipboardCopy;
use tandem_codec::Frame;
use tandem_proto::{
    ChannelAccess, ClientMessage, ConnectionString, ControlLevel, CursorPosition, CursorShape,
    DisconnectReason, InputEvent, RejectReason, ServerMessage, CLIPBOARD_CHANNEL,
    STREAM_KIND_CHANNEL, STREAM_KIND_GRAPHICS, STREAM_KIND_STAMPED_GRAPHICS,
};
use tandem_transport::{write_message, TransportConfig};
use tokio::sync::mpsc;

use crate::channels::{self, ChannelIncoming, Outgoing};
use crate::clipboard::{LocalClipboard, MAX_CLIPBOARD_BYTES};
use crate::connection::{self, Joined};
use crate::latency::{now_unix_us, LatencyStats};
use crate::state::{self, Effect, ViewerCore, ViewerLimits};
use crate::{ViewerError, ViewerEvent, ViewerOutcome};

/// Commands the window may have queued before the client reads them.
pub const COMMAND_QUEUE: usize = 1024;

/// A connection that lived less than this is counted as a failed attempt,
/// so a node that accepts and then drops the viewer is retried with backoff.
const STABLE_CONNECTION: Duration = Duration::from_secs(10);

/// What the window viewer's client does.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// Where and what to join.
    pub ticket: ConnectionString,
    /// Remote name shown to the sharer.
    pub name: String,
    /// The invitation's password.
    pub password: String,
    /// Ask for this control level after joining.
    pub request_control: Option<ControlLevel>,
    /// Leave after this many graphics updates (scripts).
    pub frames: Option<u64>,
    /// Leave after this long (scripts).
    pub duration: Option<Duration>,
    /// First wait after every address failed; doubles up to `backoff_max`.
    pub backoff_initial: Duration,
    /// Longest wait between rounds of attempts.
    pub backoff_max: Duration,
    /// QUIC settings.
    pub transport: TransportConfig,
    /// Leave (saying `Bye`) once this becomes `true` (e.g. on SIGTERM).
    pub stop: Option<tokio::sync::watch::Receiver<bool>>,
    /// Share the clipboard of the X display the viewer runs on (`$DISPLAY`)
    /// with the session's `clipboard` channel, while the node allows it and
    /// the attendee is interactive.
    pub clipboard: bool,
    /// What the viewer accepts from the node.
    pub limits: ViewerLimits,
    /// Ask for stamped graphics and measure capture-to-decoded latency
    /// (status overlay, [`ViewerOutcome::latency`]); off by default, as a
    /// node that predates stamps ends the connection on the ask.
    pub latency: bool,
    /// Listen mode: wait for the node to dial in here (each time, after a
    /// lost connection too) instead of connecting to the ticket's addresses.
    pub listener: Option<Arc<crate::reverse::ReverseListener>>,
}

impl LiveOptions {
    /// Options with the usual backoff (0.5 s doubling to 15 s) and the
    /// attendee transport (a node that vanished without a word is noticed
    /// within the 60 s idle timeout; keep-alives every 20 s cost an idle
    /// attendee a few bytes a second; a node that stops says so at once).
    pub fn new(ticket: ConnectionString, name: String, password: String) -> LiveOptions {
        LiveOptions {
            ticket,
            name,
            password,
            request_control: None,
            frames: None,
            duration: None,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(15),
            transport: Self::default_transport(),
            stop: None,
            clipboard: false,
            limits: ViewerLimits::default(),
            latency: false,
            listener: None,
        }
    }

    /// The transport [`LiveOptions::new`] uses.
    pub fn default_transport() -> TransportConfig {
        TransportConfig {
            connect_timeout: Duration::from_secs(4),
            ..connection::viewer_transport()
        }
    }

    fn backoff(&self, failed_rounds: u32) -> Duration {
        let factor = 1u32 << failed_rounds.saturating_sub(1).min(16);
        self.backoff_initial
            .saturating_mul(factor)
            .min(self.backoff_max)
    }
}

/// What the window asks of the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Send an input event (dropped unless the attendee is interactive).
    Input(InputEvent),
    /// Ask the sharer for a control level (lower levels are given at once).
    RequestControl(ControlLevel),
    /// Say goodbye and stop.
    Leave,
}

/// Where the connection stands: what the window shows while disconnected
/// (the Desktop Sharing API's `DisconnectedText`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Trying an address.
    Connecting {
        /// The address being tried.
        addr: String,
        /// Its position in the connection string, from 1.
        index: usize,
        /// Number of addresses.
        of: usize,
        /// Why the previous connection ended, if there was one.
        lost: Option<String>,
    },
    /// Listen mode: waiting for the node to dial in.
    Listening {
        /// The reverse connection string handed to the sharer.
        on: String,
        /// Why the previous connection ended, if there was one.
        lost: Option<String>,
    },
    /// Every address failed; waiting before the next round.
    Waiting {
        /// When the next round starts.
        retry_at: Instant,
        /// Rounds that failed in a row.
        rounds: u32,
        /// Why the last attempts failed (a line for the user).
        why: String,
    },
    /// Joined.
    Connected {
        /// The node's address.
        addr: SocketAddr,
        /// Attendee id given by the node.
        attendee_id: u64,
    },
    /// The viewer is done (the reason, for the user).
    Ended(String),
}

impl LinkState {
    /// Lines telling the user what the viewer is doing, empty when connected.
    pub fn describe(&self, now: Instant) -> Vec<String> {
        match self {
            LinkState::Connected { .. } => Vec::new(),
            LinkState::Connecting {
                addr,
                index,
                of,
                lost,
            } => {
                let mut lines = Vec::new();
                if let Some(why) = lost {
                    lines.push(format!("connection lost: {why}"));
                }
                lines.push(format!("connecting to {addr} (address {index} of {of})..."));
                lines
            }
            LinkState::Listening { on, lost } => {
                let mut lines = Vec::new();
                if let Some(why) = lost {
                    lines.push(format!("connection lost: {why}"));
                }
                lines.push("waiting for the sharer's node to dial in; give them:".to_owned());
                lines.push(on.clone());
                lines
            }
            LinkState::Waiting {
                retry_at,
                rounds,
                why,
            } => {
                let secs = retry_at.saturating_duration_since(now).as_secs_f64().ceil();
                vec![
                    why.clone(),
                    format!("retrying in {secs:.0} s (attempt {})", rounds + 1),
                ]
            }
            LinkState::Ended(reason) => vec![reason.clone()],
        }
    }
}

/// Ever-growing counters the window turns into rates.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    /// Graphics updates decoded.
    pub updates: u64,
    /// Bytes of graphics updates received.
    pub bytes: u64,
    /// Smoothed time to receive an update's stream, from its first byte
    /// being accepted to its end.
    pub transfer: Duration,
    /// Smoothed decode time of an update.
    pub decode: Duration,
    /// The connection's round-trip time estimate.
    pub rtt: Duration,
    /// Stamped updates decoded (capture-to-decoded latency measured).
    pub stamped: u64,
    /// Capture-to-decoded latency of the newest stamped update.
    pub capture_last: Duration,
    /// Median capture-to-decoded latency since the viewer started.
    pub capture_p50: Duration,
    /// 99th percentile of the same.
    pub capture_p99: Duration,
}

/// Everything the window draws from, behind one lock.
pub struct ViewState {
    /// Connection state.
    pub link: LinkState,
    /// Session id (from the node's welcome).
    pub session: String,
    /// The attendee's control level.
    pub level: ControlLevel,
    /// Whether the sharer paused the graphics stream.
    pub paused: bool,
    /// Desktop size announced by the node.
    pub desktop: (u32, u32),
    /// Newest pointer position.
    pub cursor: Option<CursorPosition>,
    /// Pointer images by id.
    pub cursor_shapes: BTreeMap<u32, Arc<CursorShape>>,
    /// The last short message for the user (control answer, refusal, ...) and when.
    pub message: Option<(String, Instant)>,
    /// Counters for the status overlay.
    pub counters: Counters,
    /// Bumped on every change the window should redraw for.
    pub generation: u64,
    frame: Option<Frame>,
    frame_fresh: bool,
    frame_published: Option<Instant>,
}

impl ViewState {
    fn new() -> ViewState {
        ViewState {
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
            cursor: None,
            cursor_shapes: BTreeMap::new(),
            message: None,
            counters: Counters::default(),
            generation: 0,
            frame: None,
            frame_fresh: false,
            frame_published: None,
        }
    }

    /// Takes the newest frame if there is one the window has not taken yet:
    /// swaps it with `into` (so no frame is allocated per update) and
    /// returns when it was published.
    pub fn take_frame(&mut self, into: &mut Option<Frame>) -> Option<Instant> {
        if !self.frame_fresh {
            return None;
        }
        self.frame_fresh = false;
        std::mem::swap(&mut self.frame, into);
        self.frame_published
    }

    /// The current pointer image and position, when shown.
    pub fn pointer(&self) -> Option<(Arc<CursorShape>, i32, i32)> {
        let pos = self.cursor?;
        if !pos.visible {
            return None;
        }
        let shape = self.cursor_shapes.get(&pos.shape)?;
        Some((shape.clone(), pos.x, pos.y))
    }

    fn publish_frame(&mut self, frame: &Frame) {
        match &mut self.frame {
            Some(slot) if slot.width() == frame.width() && slot.height() == frame.height() => {
                slot.pixels_mut().copy_from_slice(frame.pixels());
            }
            slot => *slot = Some(frame.clone()),
        }
        self.frame_fresh = true;
        self.frame_published = Some(Instant::now());
    }
}

/// The state shared by the client task and the window, and how the client
/// tells the window to look at it.
pub struct LiveView {
    state: Mutex<ViewState>,
    wake: Box<dyn Fn() + Send + Sync>,
}

impl LiveView {
    /// A view whose changes call `wake` (which must not block: the window
    /// side typically posts an event to its loop).
    pub fn new(wake: impl Fn() + Send + Sync + 'static) -> Arc<LiveView> {
        Arc::new(LiveView {
            state: Mutex::new(ViewState::new()),
            wake: Box::new(wake),
        })
    }

    /// Locks the state; hold it briefly.
    pub fn lock(&self) -> MutexGuard<'_, ViewState> {
        // The state stays consistent field by field even if a holder panicked.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, change: impl FnOnce(&mut ViewState)) {
        {
            let mut state = self.lock();
            change(&mut state);
            state.generation += 1;
        }
        (self.wake)();
    }
}

/// A running client.
pub struct LiveClient {
    /// Where the window sends input and requests.
    pub commands: mpsc::Sender<Command>,
    /// What the window draws.
    pub view: Arc<LiveView>,
    /// The task; its result says how viewing ended.
    pub task: tokio::task::JoinHandle<Result<ViewerOutcome, ViewerError>>,
}

/// Starts the client on `runtime`. `on_event` sees the same events as the
/// headless viewer's (one line each for the command line), plus notices
/// about reconnecting.
pub fn spawn(
    options: LiveOptions,
    view: Arc<LiveView>,
    runtime: &tokio::runtime::Handle,
    on_event: impl FnMut(ViewerEvent) + Send + 'static,
) -> LiveClient {
    let (commands, rx) = mpsc::channel(COMMAND_QUEUE);
    let task = runtime.spawn(run(options, view.clone(), rx, on_event));
    LiveClient {
        commands,
        view,
        task,
    }
}

/// How one connection ended.
enum End {
    /// The viewer left (window closed, frame count or deadline reached).
    Left,
    /// The sharer ended it for good (session closed, attendee disconnected).
    Closed(DisconnectReason, String),
    /// Lost: try again.
    Lost(String),
}

struct Client<F> {
    options: LiveOptions,
    view: Arc<LiveView>,
    commands: mpsc::Receiver<Command>,
    on_event: F,
    /// The client-side state machine, across connections.
    core: ViewerCore,
    deadline: Option<tokio::time::Instant>,
    /// Level asked for or held (above view): asked for again after a
    /// reconnection. Cleared when denied, given back or taken back.
    wanted: Option<ControlLevel>,
    /// From the options: leave once it turns `true`.
    stop: Option<tokio::sync::watch::Receiver<bool>>,
    /// The attendee's display clipboard, when shared (see [`clipboard`](crate::clipboard)).
    clipboard: Option<LocalClipboard>,
    /// Capture-to-decoded latency of stamped updates, across connections.
    latency: LatencyStats,
}

/// Why one attempt failed, and whether trying again can help.
enum AttemptError {
    /// Worth another try.
    Retry(String),
    /// The node's certificate is not the ticket's: another node may still be right.
    Mismatch(ViewerError),
    /// Trying again cannot help.
    Fatal(ViewerError),
}

async fn run<F: FnMut(ViewerEvent)>(
    mut options: LiveOptions,
    view: Arc<LiveView>,
    commands: mpsc::Receiver<Command>,
    on_event: F,
) -> Result<ViewerOutcome, ViewerError> {
    let deadline = options.duration.map(|d| tokio::time::Instant::now() + d);
    let wanted = options.request_control;
    let stop = options.stop.take();
    let options_limits = options.limits;
    let mut on_event = on_event;
    let clipboard = if options.clipboard {
        start_clipboard(&mut on_event).await
    } else {
        None
    };
    let mut core = ViewerCore::new(options_limits);
    if clipboard.is_some() {
        core.want_channel(CLIPBOARD_CHANNEL);
    }
    let mut client = Client {
        stop,
        clipboard,
        options,
        view,
        commands,
        on_event,
        core,
        deadline,
        wanted,
        latency: LatencyStats::new(),
    };
    let result = client.run().await;
    let reason = match &result {
        Ok(()) => match &client.core.outcome().disconnected {
            Some((reason, message)) => state::bye_line(*reason, message),
            None => "left the session".to_owned(),
        },
        Err(e) => e.to_string(),
    };
    client.view.update(|s| s.link = LinkState::Ended(reason));
    let latency = std::mem::take(&mut client.latency);
    result.map(|()| {
        let mut outcome = client.core.finish();
        outcome.latency = latency;
        outcome
    })
}

impl<F: FnMut(ViewerEvent)> Client<F> {
    async fn run(&mut self) -> Result<(), ViewerError> {
        let endpoint = connection::endpoint(&self.options.transport)?;
        let addrs = self.options.ticket.addrs.clone();
        let n = addrs.len();
        if n == 0 {
            return Err(ViewerError::Unreachable(
                "the connection string lists no address".into(),
            ));
        }
        // Address to try first, failed rounds in a row, why the last connection ended.
        let mut first = 0;
        let mut rounds = 0u32;
        let mut lost_why: Option<String> = None;
        let mut ever_joined = false;
        // Why the last round of attempts failed, if one did.
        let mut unreachable: Option<String> = None;
        loop {
            let mut failures = Vec::new();
            let mut mismatch = None;
            let mut joined = None;
            for k in 0..n {
                let i = (first + k) % n;
                let addr = addrs[i].to_string();
                if ever_joined {
                    (self.on_event)(ViewerEvent::Notice(format!("reconnecting to {addr}")));
                }
                let lost = lost_why.clone();
                let listening = self
                    .options
                    .listener
                    .as_ref()
                    .map(|l| l.connection_string().to_string());
                self.view.update(|s| {
                    s.link = match listening {
                        Some(on) => LinkState::Listening { on, lost },
                        None => LinkState::Connecting {
                            addr,
                            index: i + 1,
                            of: n,
                            lost,
                        },
                    }
                });
                let result = tokio::select! {
                    r = attempt(&endpoint, &self.options, i, ever_joined, &mut self.on_event) => r,
                    () = wait_leave(&mut self.commands, self.deadline, &mut self.stop, &mut self.wanted) => {
                        return gave_up(ever_joined, &unreachable);
                    }
                };
                match result {
                    Ok(found) => {
                        joined = Some((found, i));
                        break;
                    }
                    Err(AttemptError::Fatal(e)) => return Err(e),
                    Err(AttemptError::Retry(why)) => failures.push(why),
                    Err(AttemptError::Mismatch(e)) => {
                        failures.push(e.to_string());
                        mismatch = Some(e);
                    }
                }
            }
            let Some(((conn, addr, joined), i)) = joined else {
                if !ever_joined {
                    if let Some(e) = mismatch {
                        // The ticket is for another node, or someone is in
                        // between: retrying cannot help.
                        return Err(e);
                    }
                }
                rounds += 1;
                unreachable = Some(failures.join("; "));
                let why = format!("cannot reach the node: {}", failures.join("; "));
                if !self.back_off(rounds, why).await {
                    return gave_up(ever_joined, &unreachable);
                }
                continue;
            };
            ever_joined = true;
            let started = Instant::now();
            let end = self.serve(&conn, addr, joined).await;
            connection::close(&endpoint, &conn).await;
            match end? {
                End::Left => return Ok(()),
                End::Closed(reason, message) => {
                    self.core.set_disconnected(reason, message);
                    return Ok(());
                }
                End::Lost(why) => {
                    (self.on_event)(ViewerEvent::Notice(format!("connection lost: {why}")));
                    // The next address first, then around the list.
                    first = (i + 1) % n;
                    if started.elapsed() < STABLE_CONNECTION {
                        // Joined and dropped at once: back off before
                        // trying again so that a failing node is not hammered.
                        rounds += 1;
                        if !self
                            .back_off(rounds, format!("connection lost: {why}"))
                            .await
                        {
                            return Ok(());
                        }
                    } else {
                        rounds = 0;
                    }
                    lost_why = Some(why);
                }
            }
        }
    }

    /// Waits before the next round of attempts, showing why; `false` when
    /// the viewer is to stop instead.
    async fn back_off(&mut self, rounds: u32, why: String) -> bool {
        let wait = self.options.backoff(rounds);
        (self.on_event)(ViewerEvent::Notice(format!(
            "{why}; retrying in {:.1} s",
            wait.as_secs_f64()
        )));
        let retry_at = Instant::now() + wait;
        self.view.update(|s| {
            s.link = LinkState::Waiting {
                retry_at,
                rounds,
                why,
            }
        });
        tokio::select! {
            _ = tokio::time::sleep(wait) => true,
            () = wait_leave(&mut self.commands, self.deadline, &mut self.stop, &mut self.wanted) => false,
        }
    }

    /// Views one joined connection until it ends.
    async fn serve(
        &mut self,
        conn: &quinn::Connection,
        addr: SocketAddr,
        joined: Joined,
    ) -> Result<End, ViewerError> {
        let Joined {
            mut control_tx,
            mut control,
            welcome,
        } = joined;
        // A picture over the limit is refused for good: every node of the
        // session shares the same one.
        let welcome = self.core.connected(&welcome)?;
        (self.on_event)(ViewerEvent::Connected {
            addr,
            welcome: welcome.clone(),
        });
        self.view.update(|s| {
            s.link = LinkState::Connected {
                addr,
                attendee_id: welcome.attendee_id,
            };
            s.session = welcome.session.clone();
            s.level = welcome.control_level;
            s.paused = welcome.paused;
            s.desktop = (welcome.width, welcome.height);
            s.cursor = None;
            s.cursor_shapes.clear();
        });
        if self.options.latency {
            if let Err(e) = write_message(&mut control_tx, &ClientMessage::StampGraphics).await {
                return Ok(End::Lost(e.to_string()));
            }
        }
        if let Some(wanted) = self.wanted.filter(|w| *w != self.core.level()) {
            let msg = ClientMessage::RequestControl { level: wanted };
            if let Err(e) = write_message(&mut control_tx, &msg).await {
                return Ok(End::Lost(e.to_string()));
            }
            self.show_request(wanted);
        }
        // The clipboard channel is joined on every connection; the node
        // answers with the attendee's access and tells every change, so
        // sharing starts and stops with them (and with the attendee's own
        // level, which the viewer checks itself).
        let mut clipboard = self.clipboard.take();
        let mut clip = ClipboardLink::default();
        let (clip_tx, mut clip_rx) = mpsc::channel(channels::INCOMING_QUEUE);
        if clipboard.is_some() {
            let msg = ClientMessage::ChannelJoin {
                name: CLIPBOARD_CHANNEL.into(),
            };
            if let Err(e) = write_message(&mut control_tx, &msg).await {
                self.clipboard = clipboard;
                return Ok(End::Lost(e.to_string()));
            }
        }
        let end = loop {
            let updates = self.core.outcome().updates;
            if self.options.frames.is_some_and(|n| updates >= n) {
                break End::Left;
            }
            let deadline = self.deadline;
            // Every branch is cancel safe; a graphics stream is read to its
            // end in its branch's body, never raced against the others.
            tokio::select! {
                _ = sleep_until(deadline) => break End::Left,
                () = wait_stop(&mut self.stop) => break End::Left,
                cmd = self.commands.recv() => match cmd {
                    None | Some(Command::Leave) => break End::Left,
                    Some(Command::RequestControl(wanted)) => {
                        // Remembered so a reconnection asks again; giving
                        // control back is remembered as not asking.
                        self.wanted = (wanted > ControlLevel::View).then_some(wanted);
                        let msg = ClientMessage::RequestControl { level: wanted };
                        if let Err(e) = write_message(&mut control_tx, &msg).await {
                            break End::Lost(e.to_string());
                        }
                        self.show_request(wanted);
                    }
                    Some(Command::Input(event)) => {
                        // The window sends input only when interactive, but
                        // its idea of the level may lag behind the node's.
                        if self.core.level().can_input() {
                            if let Err(e) = write_message(&mut control_tx, &ClientMessage::Input(event)).await {
                                break End::Lost(e.to_string());
                            }
                        }
                    }
                },
                copy = next_copy(&mut clipboard) => {
                    match copy {
                        ClipboardCopy::Text(text) => {
                            // Checked again here: a copy taken just before the
                            // level fell must not leave either.
                            if !self.core.may_share_clipboard() {
                                continue;
                            }
                            let Some(out) = clip.out.as_ref() else { continue };
                            // Told before it is handed over (this task is the
                            // only sender, so room now is room at the send):
                            // the line never comes after the copy arrived.
                            if out.capacity() == 0 {
                                (self.on_event)(ViewerEvent::Notice("clipboard: copy not sent (the connection is not taking it)".to_owned()));
                                continue;
                            }
                            (self.on_event)(ViewerEvent::Notice(format!("clipboard: sent {} bytes", text.len())));
                            let _ = out.try_send(text);
                        }
                        ClipboardCopy::TooLarge => {
                            let line = format!("clipboard: a copy over {MAX_CLIPBOARD_BYTES} bytes was not shared");
                            (self.on_event)(ViewerEvent::Notice(line.clone()));
                            self.view.update(|s| s.message = Some((line, Instant::now())));
                        }
                    }
                }
                Some(item) = clip_rx.recv() => match item {
                    ChannelIncoming::Data(text) => {
                        let len = text.len();
                        if let Some(c) = clipboard.as_mut().filter(|c| c.is_active()) {
                            match c.put(text) {
                                Ok(()) => (self.on_event)(ViewerEvent::Notice(format!("clipboard: received {len} bytes"))),
                                Err(e) => (self.on_event)(ViewerEvent::Notice(e.to_string())),
                            }
                        }
                    }
                    ChannelIncoming::Dropped(n) => {
                        (self.on_event)(ViewerEvent::Notice(format!("clipboard: the node dropped {n} copies for this viewer")));
                    }
                },
                stream = conn.accept_uni() => {
                    let accepted = Instant::now();
                    let mut stream = match stream {
                        Ok(s) => s,
                        Err(e) => break End::Lost(e.to_string()),
                    };
                    let mut kind = [0u8; 1];
                    match stream.read_exact(&mut kind).await {
                        Ok(()) => {}
                        // Abandoned before its first byte (the node is ending the connection).
                        Err(quinn::ReadExactError::ReadError(quinn::ReadError::Reset(_))) => continue,
                        Err(e) => break End::Lost(e.to_string()),
                    }
                    let mut stamp = None;
                    match kind[0] {
                        STREAM_KIND_GRAPHICS => {}
                        STREAM_KIND_STAMPED_GRAPHICS => match connection::read_stamp(&mut stream).await {
                            Ok(Some(captured)) => stamp = Some(captured),
                            Ok(None) => continue,
                            Err(e) => break End::Lost(e.to_string()),
                        },
                        STREAM_KIND_CHANNEL => {
                            let mut id = [0u8; 4];
                            if let Err(e) = stream.read_exact(&mut id).await {
                                break End::Lost(e.to_string());
                            }
                            if let Err(e) = self.core.check_channel_stream(u32::from_be_bytes(id)) {
                                break End::Lost(e.to_string());
                            }
                            tokio::spawn(channels::forward_incoming(stream, clip_tx.clone()));
                            continue;
                        }
                        other => break End::Lost(format!("protocol error: unknown stream kind {other}")),
                    }
                    let bytes = match connection::read_update(&mut stream).await {
                        Ok(Some(bytes)) => bytes,
                        Ok(None) => continue,
                        Err(e) => break End::Lost(e.to_string()),
                    };
                    let received = Instant::now();
                    let event = match self.core.graphics(&bytes) {
                        Ok(event) => event,
                        Err(e @ ViewerError::FrameTooLarge { .. }) => return Err(e),
                        // A node that sends what cannot be decoded: a fresh
                        // connection starts from a key frame.
                        Err(e) => break End::Lost(e.to_string()),
                    };
                    let decoded = Instant::now();
                    if let Some(captured) = stamp {
                        self.latency.record(captured, now_unix_us());
                    }
                    let latency = &self.latency;
                    let rtt = conn.rtt();
                    if let Some(frame) = self.core.frame() {
                        let len = bytes.len() as u64;
                        self.view.update(|s| {
                            s.publish_frame(frame);
                            s.desktop = (frame.width(), frame.height());
                            let c = &mut s.counters;
                            c.updates += 1;
                            c.bytes += len;
                            c.transfer = smooth(c.transfer, received - accepted);
                            c.decode = smooth(c.decode, decoded - received);
                            c.rtt = rtt;
                            if stamp.is_some() {
                                c.stamped = latency.count();
                                c.capture_last = latency.last().unwrap_or_default();
                                c.capture_p50 = latency.percentile(50.0).unwrap_or_default();
                                c.capture_p99 = latency.percentile(99.0).unwrap_or_default();
                            }
                        });
                    }
                    (self.on_event)(event);
                }
                datagram = conn.read_datagram() => {
                    let datagram = match datagram {
                        Ok(d) => d,
                        Err(e) => break End::Lost(e.to_string()),
                    };
                    match self.core.datagram(&datagram) {
                        Ok(Some(pos)) => {
                            self.view.update(|s| s.cursor = Some(pos));
                            (self.on_event)(ViewerEvent::Cursor { x: pos.x, y: pos.y, visible: pos.visible, shape: pos.shape });
                        }
                        Ok(None) => {}
                        Err(e) => break End::Lost(e.to_string()),
                    }
                }
                msg = control.next::<ServerMessage>() => {
                    let msg = match msg {
                        Ok(Some(msg)) => msg,
                        Ok(None) => break End::Lost("the node closed the control stream".into()),
                        Err(e) => break End::Lost(e.to_string()),
                    };
                    let effects = match self.core.message(msg) {
                        Ok(effects) => effects,
                        Err(e @ ViewerError::FrameTooLarge { .. }) => return Err(e),
                        Err(e) => break End::Lost(e.to_string()),
                    };
                    match self.follow(effects, conn, &mut control_tx, &clipboard, &mut clip).await {
                        Ok(()) => {}
                        Err(end) => break end,
                    }
                }
            }
        };
        if let Some(line) = follow_access(&clipboard, ChannelAccess::None) {
            (self.on_event)(ViewerEvent::Notice(line));
        }
        self.clipboard = clipboard;
        if matches!(end, End::Left) {
            connection::say_bye(&mut control_tx).await;
        }
        Ok(end)
    }

    /// A request for `wanted` went out: while it is pending the level shows
    /// as `reqctrl-*`, on the status line and in the events.
    fn show_request(&mut self, wanted: ControlLevel) {
        for effect in self.core.requested(wanted) {
            if let Effect::Show(line) = effect {
                (self.on_event)(ViewerEvent::Notice(line.clone()));
                self.view
                    .update(|s| s.message = Some((line, Instant::now())));
            }
        }
    }

    /// Does what the state machine asks after a control message; `Err`
    /// ends the connection.
    async fn follow(
        &mut self,
        effects: Vec<Effect>,
        conn: &quinn::Connection,
        control_tx: &mut quinn::SendStream,
        clipboard: &Option<LocalClipboard>,
        clip: &mut ClipboardLink,
    ) -> Result<(), End> {
        for effect in effects {
            match effect {
                Effect::Notice(line) => (self.on_event)(ViewerEvent::Notice(line)),
                Effect::Show(line) => {
                    (self.on_event)(ViewerEvent::Notice(line.clone()));
                    self.view
                        .update(|s| s.message = Some((line, Instant::now())));
                }
                Effect::Bye { reason, message } => {
                    if ends_viewing(reason) {
                        return Err(End::Closed(reason, message));
                    }
                    return Err(End::Lost(state::bye_line(reason, &message)));
                }
                Effect::Level { from, to } => {
                    if self.wanted.is_some_and(|w| from >= w && to < w) {
                        // The sharer took back what the attendee held:
                        // a reconnection does not ask for it again.
                        self.wanted = None;
                    }
                    if to == ControlLevel::Interactive && clip.refused {
                        clip.refused = false;
                        let msg = ClientMessage::ChannelJoin {
                            name: CLIPBOARD_CHANNEL.into(),
                        };
                        if let Err(e) = write_message(control_tx, &msg).await {
                            return Err(End::Lost(e.to_string()));
                        }
                    }
                    self.view.update(|s| s.level = to);
                }
                Effect::Answered { granted, .. } => {
                    if !granted {
                        self.wanted = None;
                    }
                }
                Effect::Paused(paused) => self.view.update(|s| s.paused = paused),
                Effect::Desktop(w, h) => self.view.update(|s| s.desktop = (w, h)),
                Effect::Shapes => {
                    let shapes = self.core.cursor_shapes().clone();
                    self.view.update(|s| s.cursor_shapes = shapes);
                }
                Effect::ChannelJoined(id) => {
                    clip.id = Some(id);
                    if clip.out.is_none() {
                        let (tx, rx) = mpsc::channel(COPIES_IN_FLIGHT);
                        tokio::spawn(send_copies(conn.clone(), id, rx));
                        clip.out = Some(tx);
                    }
                }
                Effect::ChannelRefused { name, .. } => {
                    if name == CLIPBOARD_CHANNEL {
                        clip.refused = true;
                        if let Some(line) = follow_access(clipboard, ChannelAccess::None) {
                            (self.on_event)(ViewerEvent::Notice(line));
                        }
                    }
                }
                Effect::Access(access) => {
                    if let Some(line) = follow_access(clipboard, access) {
                        (self.on_event)(ViewerEvent::Notice(line.clone()));
                        self.view
                            .update(|s| s.message = Some((line, Instant::now())));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Opens the clipboard of the X display the viewer runs on, if there is
/// one; the viewer carries on without clipboard sharing otherwise.
async fn start_clipboard(on_event: &mut impl FnMut(ViewerEvent)) -> Option<LocalClipboard> {
    if std::env::var_os("DISPLAY").is_none_or(|d| d.is_empty()) {
        tracing::debug!("no DISPLAY: the clipboard is not shared");
        return None;
    }
    // A few round trips to the local X server: off the runtime's workers.
    let started = tokio::task::spawn_blocking(|| LocalClipboard::start(None)).await;
    match started {
        Ok(Ok(c)) => Some(c),
        Ok(Err(error)) => {
            tracing::warn!(%error, "the clipboard is not shared");
            on_event(ViewerEvent::Notice(format!(
                "clipboard not shared: {error}"
            )));
            None
        }
        Err(error) => {
            tracing::warn!(%error, "the clipboard is not shared");
            None
        }
    }
}

/// The next copy on the attendee's display; never, without a clipboard.
async fn next_copy(clipboard: &mut Option<LocalClipboard>) -> ClipboardCopy {
    match clipboard {
        Some(c) => c.next_copy().await,
        None => std::future::pending().await,
    }
}

/// Copies waiting for the clipboard stream; more are dropped with a notice.
const COPIES_IN_FLIGHT: usize = 4;

/// Writes one connection's clipboard copies in order on a stream of their
/// own, apart from the client loop, so that a stream the node is slow to
/// read never holds up graphics. Ends with the connection's client loop
/// (which drops the sender) or the connection.
async fn send_copies(conn: quinn::Connection, id: u32, mut copies: mpsc::Receiver<Vec<u8>>) {
    let mut out = Outgoing::new(id);
    while let Some(text) = copies.recv().await {
        if let Err(error) = out.send(&conn, text).await {
            tracing::info!(%error, "clipboard stream ended");
            return;
        }
    }
}

/// The clipboard channel on one connection.
#[derive(Default)]
struct ClipboardLink {
    /// Channel id, once joined.
    id: Option<u32>,
    /// Copies for the task that writes our stream to the sharer.
    out: Option<mpsc::Sender<Vec<u8>>>,
    /// The node refused the join: asked again when the attendee becomes interactive.
    refused: bool,
}

/// Turns clipboard sharing on or off after the node said what access the
/// attendee has; a line for the user when it changes.
fn follow_access(clipboard: &Option<LocalClipboard>, access: ChannelAccess) -> Option<String> {
    let c = clipboard.as_ref()?;
    let on = access == ChannelAccess::ReadWrite;
    c.set_active(on).then(|| {
        if on {
            "clipboard sharing on".to_owned()
        } else {
            format!("clipboard sharing off (access {access})")
        }
    })
}

/// The end of a viewer stopped while connecting: one that never joined
/// after a failed round reports why it could not (scripts see exit status 1).
fn gave_up(ever_joined: bool, unreachable: &Option<String>) -> Result<(), ViewerError> {
    match unreachable {
        Some(why) if !ever_joined => Err(ViewerError::Unreachable(why.clone())),
        _ => Ok(()),
    }
}

/// Resolves when the window asks to leave or the deadline passes (both
/// mean "stop"). Input queued meanwhile is dropped, since there is no
/// connection to send it on; a control request is remembered for the next
/// connection.
async fn wait_leave(
    commands: &mut mpsc::Receiver<Command>,
    deadline: Option<tokio::time::Instant>,
    stop: &mut Option<tokio::sync::watch::Receiver<bool>>,
    wanted: &mut Option<ControlLevel>,
) {
    loop {
        tokio::select! {
            _ = sleep_until(deadline) => return,
            () = wait_stop(stop) => return,
            cmd = commands.recv() => match cmd {
                None | Some(Command::Leave) => return,
                Some(Command::RequestControl(level)) => {
                    *wanted = (level > ControlLevel::View).then_some(level);
                }
                Some(Command::Input(_)) => {}
            },
        }
    }
}

/// Connects to address `i` of the ticket and joins.
async fn attempt(
    endpoint: &quinn::Endpoint,
    options: &LiveOptions,
    i: usize,
    ever_joined: bool,
    on_event: &mut impl FnMut(ViewerEvent),
) -> Result<(quinn::Connection, SocketAddr, Joined), AttemptError> {
    let ticket = &options.ticket;
    let dialed = match &options.listener {
        // The node dials in: its certificate was checked by the listener,
        // which has already waited as long as it was asked to.
        Some(listener) => Some(
            listener
                .accept(on_event)
                .await
                .map_err(AttemptError::Fatal)?,
        ),
        None => None,
    };
    let (conn, addr) = match dialed {
        Some(found) => found,
        None => {
            match connection::connect_one(endpoint, &ticket.addrs[i], ticket, &options.transport)
                .await
            {
                Ok(found) => found,
                Err(e @ ViewerError::FingerprintMismatch { .. }) => {
                    return Err(AttemptError::Mismatch(e))
                }
                Err(ViewerError::Unreachable(why)) => return Err(AttemptError::Retry(why)),
                Err(e) => return Err(AttemptError::Retry(e.to_string())),
            }
        }
    };
    match connection::join(&conn, ticket, &options.name, &options.password).await {
        Ok(joined) => Ok((conn, addr, joined)),
        Err(e) => {
            conn.close(0u32.into(), b"bye");
            Err(classify_join_error(e, ever_joined))
        }
    }
}

/// Whether a `Bye` ends viewing for good (the sharer's decision) rather
/// than a connection to re-establish.
fn ends_viewing(reason: DisconnectReason) -> bool {
    match reason {
        DisconnectReason::BySharer
        | DisconnectReason::SessionClosed
        | DisconnectReason::ByAttendee => true,
        DisconnectReason::Error
        | DisconnectReason::Timeout
        | DisconnectReason::NodeShutdown
        | DisconnectReason::NodeRestarted => false,
    }
}

/// A refused or failed join: final when asking again cannot change the
/// answer. After a first successful join, answers that a node gives while
/// it restarts or before it notices the old connection is gone (session
/// not open yet, attendee limit still counting the old connection) are
/// retried.
fn classify_join_error(e: ViewerError, ever_joined: bool) -> AttemptError {
    match e {
        ViewerError::Rejected { reason, message } => {
            let transient = match reason {
                RejectReason::NodeShuttingDown | RejectReason::TooManyAttempts => true,
                RejectReason::UnknownSession | RejectReason::AttendeeLimitReached => ever_joined,
                RejectReason::UnsupportedVersion
                | RejectReason::UnknownInvitation
                | RejectReason::WrongPassword
                | RejectReason::InvitationRevoked
                | RejectReason::SessionClosed
                | RejectReason::Malformed => false,
            };
            let e = ViewerError::Rejected { reason, message };
            if transient {
                AttemptError::Retry(e.to_string())
            } else {
                AttemptError::Fatal(e)
            }
        }
        other => AttemptError::Retry(other.to_string()),
    }
}

/// Exponential smoothing for figures shown to a person.
fn smooth(old: Duration, new: Duration) -> Duration {
    if old.is_zero() {
        new
    } else {
        old.mul_f64(0.8) + new.mul_f64(0.2)
    }
}

/// Resolves once `stop` turns `true`; never when there is no stop signal.
async fn wait_stop(stop: &mut Option<tokio::sync::watch::Receiver<bool>>) {
    if let Some(rx) = stop {
        if rx.wait_for(|s| *s).await.is_ok() {
            return;
        }
    }
    // No signal, or its sender is gone: no stop will ever come.
    std::future::pending::<()>().await
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap() {
        let ticket: ConnectionString =
            format!("tandem://127.0.0.1:1/s/a?inv=b&fp={}", "0".repeat(64))
                .parse()
                .unwrap();
        let o = LiveOptions::new(ticket, "n".into(), String::new());
        assert_eq!(o.backoff(1), Duration::from_millis(500));
        assert_eq!(o.backoff(2), Duration::from_secs(1));
        assert_eq!(o.backoff(4), Duration::from_secs(4));
        assert_eq!(o.backoff(6), Duration::from_secs(15));
        assert_eq!(o.backoff(1000), Duration::from_secs(15));
    }

    #[test]
    fn which_goodbyes_end_viewing() {
        assert!(ends_viewing(DisconnectReason::SessionClosed));
        assert!(ends_viewing(DisconnectReason::BySharer));
        assert!(!ends_viewing(DisconnectReason::NodeShutdown));
        assert!(!ends_viewing(DisconnectReason::NodeRestarted));
        assert!(!ends_viewing(DisconnectReason::Timeout));
    }

    #[test]
    fn which_refusals_are_retried() {
        let rejected = |reason| ViewerError::Rejected {
            reason,
            message: String::new(),
        };
        let retried = |e, ever| matches!(classify_join_error(e, ever), AttemptError::Retry(..));
        assert!(!retried(rejected(RejectReason::WrongPassword), true));
        assert!(!retried(rejected(RejectReason::SessionClosed), true));
        assert!(!retried(rejected(RejectReason::UnknownSession), false));
        assert!(retried(rejected(RejectReason::UnknownSession), true));
        assert!(retried(rejected(RejectReason::NodeShuttingDown), false));
        assert!(retried(ViewerError::ConnectionLost("x".into()), false));
    }

    #[test]
    fn frames_are_handed_over_latest_wins() {
        let view = LiveView::new(|| {});
        let mut mine = None;
        assert!(view.lock().take_frame(&mut mine).is_none());
        view.update(|s| s.publish_frame(&Frame::filled(2, 2, 1)));
        view.update(|s| s.publish_frame(&Frame::filled(2, 2, 2)));
        assert!(view.lock().take_frame(&mut mine).is_some());
        assert_eq!(mine.as_ref().unwrap().get(0, 0), 2, "the newest wins");
        assert!(view.lock().take_frame(&mut mine).is_none(), "taken once");
        // The window's old buffer is reused for the next frame.
        view.update(|s| s.publish_frame(&Frame::filled(2, 2, 3)));
        assert!(view.lock().take_frame(&mut mine).is_some());
        assert_eq!(mine.unwrap().get(1, 1), 3);
    }
}
