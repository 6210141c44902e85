//! The bytes bench (`make bytes`): what a desktop-sharing server costs on
//! the wire for one attendee on a scripted desktop, Tandem side by side
//! with x11vnc and X0tigervnc.
//!
//! For each server in turn: a fresh Xvfb desktop ([`workload`]), the server
//! sharing it and one attendee (`tandem view --headless`, or the counting
//! RFB client of [`rfb`] for the VNC servers), then four phases: idle,
//! typing, scroll, move. Everything runs inside a private network namespace
//! ([`netns`]) whose `lo` carries nothing but that server's traffic.
//!
//! # Reading the table
//!
//! One row per phase, one group of columns per server:
//! - `B/s med`: the median of the per-second samples of bytes sent on the
//!   namespace's `lo`. On loopback every packet is sent exactly once, so this
//!   is both directions (updates *and* acknowledgements, requests), IP, UDP
//!   or TCP and QUIC headers included: the only fair counter between QUIC
//!   and TCP. The median ignores a stray second (a key frame, a burst);
//! - `total`: all bytes over the phase (the mean rate is total / seconds);
//! - `srv %` and `X %`: CPU of the server process (the node, x11vnc or
//!   X0tigervnc, all its threads) and of Xvfb over the phase, user + system
//!   time in percent of one core (200 % is both cores of this machine).
//!   Xvfb's share grows with what the server asks it (grabs, damage).
//! - `tandem/best`: Tandem's median divided by the lowest peer median of
//!   the phase; below 1 Tandem costs less, `-` when a peer sent nothing.
//!
//! Below the table, each peer's line says which encodings it used (rectangle
//! counts by kind) and how many updates the attendee got. Figures from one
//! run on a shared machine: compare columns of one run, not runs of
//! different days.

pub mod netns;
pub mod report;
pub mod rfb;
pub mod workload;

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tandem_tests::{cpu_seconds, http_get, log_path, metric, tandem_bin, NodeProcess};

use workload::{Desktop, Phase};

/// Why a bench run failed.
#[derive(Debug, thiserror::Error)]
pub enum BytesError {
    /// Something the workload needs could not be started or driven.
    #[error("{0}")]
    Setup(String),
    /// The network namespace.
    #[error(transparent)]
    Namespace(#[from] netns::NamespaceError),
    /// The RFB client.
    #[error("rfb client of {server}: {source}")]
    Rfb {
        /// Which server it talked to.
        server: &'static str,
        /// What went wrong.
        source: rfb::RfbError,
    },
}

/// A server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// `tandem node --source x11` with one `tandem view --headless`.
    Tandem,
    /// Debian's x11vnc, no password, with the counting RFB client.
    X11vnc,
    /// TigerVNC's X0tigervnc (`x0vncserver`), security None, with the
    /// counting RFB client.
    X0tigervnc,
}

impl Server {
    /// Every server, in the order they run.
    pub const ALL: [Server; 3] = [Server::Tandem, Server::X11vnc, Server::X0tigervnc];

    /// Its name in tables, JSON and `--servers`.
    pub fn name(self) -> &'static str {
        match self {
            Server::Tandem => "tandem",
            Server::X11vnc => "x11vnc",
            Server::X0tigervnc => "X0tigervnc",
        }
    }

    /// Parses a `--servers` item (case-insensitive; `x0vncserver` too).
    pub fn parse(s: &str) -> Option<Server> {
        match s.to_ascii_lowercase().as_str() {
            "tandem" => Some(Server::Tandem),
            "x11vnc" => Some(Server::X11vnc),
            "x0tigervnc" | "x0vncserver" | "tigervnc" => Some(Server::X0tigervnc),
            _ => None,
        }
    }

    /// The programs it needs on the PATH (besides Xvfb, xterm, xdotool).
    pub fn programs(self) -> &'static [&'static str] {
        match self {
            Server::Tandem => &[],
            Server::X11vnc => &["x11vnc"],
            Server::X0tigervnc => &["X0tigervnc"],
        }
    }
}

/// What a run measures.
#[derive(Debug, Clone)]
pub struct Options {
    /// Length of each phase.
    pub phase_seconds: u64,
    /// Quiet time between connecting and the first phase, and between phases.
    pub settle_seconds: u64,
    /// Servers, in order.
    pub servers: Vec<Server>,
    /// Where temporary files go.
    pub work_dir: PathBuf,
    /// Tight's compression level the RFB attendee asks the VNC servers for
    /// (`None`: each server's default).
    pub vnc_compress_level: Option<u8>,
}

/// Figures of one phase against one server.
#[derive(Debug, Clone)]
pub struct PhaseFigures {
    /// The phase.
    pub phase: Phase,
    /// Its measured length.
    pub seconds: f64,
    /// Bytes on `lo` in each whole second.
    pub samples: Vec<u64>,
    /// Bytes on `lo` over the phase.
    pub total_bytes: u64,
    /// Packets on `lo` over the phase.
    pub total_packets: u64,
    /// Server CPU, % of one core.
    pub server_cpu: f64,
    /// Xvfb CPU, % of one core.
    pub x_cpu: f64,
    /// Workload actions (keys, lines, moves) done.
    pub actions: u64,
}

impl PhaseFigures {
    /// Median of the per-second samples.
    pub fn median(&self) -> f64 {
        median(&self.samples)
    }
}

/// The median of `samples` (the mean of the two middle ones for an even count).
pub fn median(samples: &[u64]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_unstable();
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2] as f64,
        n => (s[n / 2 - 1] as f64 + s[n / 2] as f64) / 2.0,
    }
}

/// Everything measured against one server.
#[derive(Debug, Clone)]
pub struct ServerFigures {
    /// The server.
    pub server: Server,
    /// Its version, as it reports it.
    pub version: String,
    /// What it sent: encodings used, updates.
    pub encodings: String,
    /// One per phase, in order.
    pub phases: Vec<PhaseFigures>,
}

/// A child process killed (and reaped) when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` with stdout and stderr into a fresh log file in `dir`.
fn spawn_logged(
    dir: &Path,
    name: &str,
    cmd: &mut Command,
) -> Result<(Process, PathBuf), BytesError> {
    let log = log_path(dir, name);
    let file = std::fs::File::create(&log)
        .map_err(|e| BytesError::Setup(format!("create {}: {e}", log.display())))?;
    let err = file
        .try_clone()
        .map_err(|e| BytesError::Setup(format!("log file: {e}")))?;
    cmd.stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .map(|child| (Process(child), log))
        .map_err(|e| BytesError::Setup(format!("start {name}: {e}")))
}

/// The attendee of a VNC server: the counting client on its own thread.
struct RfbAttendee {
    server: &'static str,
    stream: TcpStream,
    init: rfb::ServerInit,
    counts: Arc<Mutex<rfb::Counts>>,
    thread: std::thread::JoinHandle<Result<(), rfb::RfbError>>,
}

impl RfbAttendee {
    /// Connects (retrying while the server starts), shakes hands and
    /// starts reading; waits for the first complete update.
    fn connect(
        server: &'static str,
        port: u16,
        vnc: &mut Process,
        compress_level: Option<u8>,
    ) -> Result<Self, BytesError> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(e) => {
                    if let Ok(Some(status)) = vnc.0.try_wait() {
                        return Err(BytesError::Setup(format!(
                            "{server} exited ({status}) before accepting a connection"
                        )));
                    }
                    if Instant::now() > deadline {
                        return Err(BytesError::Setup(format!(
                            "{server} did not listen on 127.0.0.1:{port} within 20 s: {e}"
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        };
        let rfb_err = |source| BytesError::Rfb { server, source };
        stream
            .set_nodelay(true)
            .map_err(|e| rfb_err(rfb::RfbError::Io(e)))?;
        // The handshake must not wait forever on a server that says nothing.
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .map_err(|e| rfb_err(rfb::RfbError::Io(e)))?;
        let init = rfb::handshake(&mut stream, compress_level).map_err(rfb_err)?;
        stream
            .set_read_timeout(None)
            .map_err(|e| rfb_err(rfb::RfbError::Io(e)))?;
        let counts = Arc::new(Mutex::new(rfb::Counts::default()));
        let mut reader = stream
            .try_clone()
            .map_err(|e| rfb_err(rfb::RfbError::Io(e)))?;
        let thread = {
            let (counts, init) = (counts.clone(), init.clone());
            std::thread::spawn(move || {
                rfb::serve_updates(&mut reader, &init, |m| counts.lock().unwrap().add(m))
            })
        };
        let attendee = RfbAttendee {
            server,
            stream,
            init,
            counts,
            thread,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while attendee.counts.lock().unwrap().updates == 0 {
            if attendee.thread.is_finished() {
                return Err(attendee.finish().err().unwrap_or_else(|| {
                    BytesError::Setup(format!("{server} ended before the first update"))
                }));
            }
            if Instant::now() > deadline {
                return Err(BytesError::Setup(format!(
                    "no first update from {server} within 20 s"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(attendee)
    }

    /// Whether the client still reads.
    fn alive(&self) -> bool {
        !self.thread.is_finished()
    }

    /// Closes the connection and returns what was received; an error if
    /// the connection had ended before (the server closed it or sent
    /// something the client refuses).
    fn finish(self) -> Result<rfb::Counts, BytesError> {
        let ended_early = self.thread.is_finished();
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        let result = self.thread.join().unwrap_or_else(|_| {
            Err(rfb::RfbError::Io(std::io::Error::other(
                "the client thread panicked",
            )))
        });
        match (ended_early, result) {
            (true, Err(source)) => Err(BytesError::Rfb {
                server: self.server,
                source,
            }),
            (true, Ok(())) => Err(BytesError::Setup(format!(
                "{} closed the connection",
                self.server
            ))),
            // Our own shutdown may cut a message or fail the read: not an error.
            (false, _) => Ok(self.counts.lock().unwrap().clone()),
        }
    }
}

/// What the node's encoder did, from its metrics: where a phase's bytes
/// went (tiles coded, copy-rects found) when the totals need explaining.
#[derive(Debug, Clone, Copy)]
struct EncoderCounters {
    updates: u64,
    tiles: u64,
    copy_rects: u64,
    moved_pixels: u64,
    encoded_bytes: u64,
}

/// A server sharing the desktop, with its attendee.
enum Running {
    Tandem {
        node: NodeProcess,
        viewer: Process,
    },
    Vnc {
        server: Process,
        attendee: RfbAttendee,
    },
}

impl Running {
    fn pid(&self) -> u32 {
        match self {
            Running::Tandem { node, .. } => node.pid(),
            Running::Vnc { server, .. } => server.0.id(),
        }
    }

    /// The node's encoder counters (tandem only; read outside the measured
    /// windows, so the scrape's own bytes are never counted).
    fn encoder_counters(&self) -> Option<EncoderCounters> {
        let Running::Tandem { node, .. } = self else {
            return None;
        };
        let (_, m) = http_get(&format!("{}/metrics", node.admin_url));
        let read = |name: &str| metric(&m, name) as u64;
        Some(EncoderCounters {
            updates: read("tandem_updates_published_total"),
            tiles: read("tandem_tiles_changed_total"),
            copy_rects: read("tandem_copy_rects_total"),
            moved_pixels: read("tandem_moved_pixels_total"),
            encoded_bytes: read("tandem_encoded_bytes_total"),
        })
    }

    /// Fails when the attendee is gone (the figures would be meaningless).
    fn check_alive(&mut self, server: Server) -> Result<(), BytesError> {
        let alive = match self {
            Running::Tandem { viewer, .. } => matches!(viewer.0.try_wait(), Ok(None)),
            Running::Vnc { attendee, .. } => attendee.alive(),
        };
        if alive {
            Ok(())
        } else {
            Err(BytesError::Setup(format!(
                "the attendee of {} stopped before the end of the run (logs in the work directory)",
                server.name()
            )))
        }
    }
}

fn version_of(program: &str, arg: &str) -> String {
    Command::new(program)
        .arg(arg)
        .output()
        .map(|o| {
            let text = [o.stdout, o.stderr].concat();
            String::from_utf8_lossy(&text)
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("")
                .to_owned()
        })
        .unwrap_or_default()
}

fn start_server(
    server: Server,
    desktop: &Desktop,
    dir: &Path,
    viewer_seconds: u64,
    vnc_compress_level: Option<u8>,
) -> Result<Running, BytesError> {
    let display = desktop.display();
    match server {
        Server::Tandem => {
            // The node's defaults, as a user would start it: only the source
            // and loopback addresses are set.
            let config = format!(
                "data_dir = \"{}\"\nquic_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n[source]\nkind = \"x11\"\ndisplay = \"{display}\"\n[invitation]\npassword = \"bytes-bench\"\n",
                dir.join("data").display()
            );
            let node = NodeProcess::start(dir, &config);
            let (mut viewer, log) = spawn_logged(
                dir,
                "viewer",
                Command::new(tandem_bin())
                    .args(["view", &node.ticket, "--name", "bytes", "--password"])
                    .arg(&node.password)
                    .args(["--headless", "--seconds", &viewer_seconds.to_string()]),
            )?;
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if text.contains("connected to ") {
                    break;
                }
                if let Ok(Some(status)) = viewer.0.try_wait() {
                    return Err(BytesError::Setup(format!(
                        "tandem view exited ({status}) before connecting: {text}"
                    )));
                }
                if Instant::now() > deadline {
                    return Err(BytesError::Setup(format!(
                        "tandem view did not connect within 30 s: {text}"
                    )));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Ok(Running::Tandem { node, viewer })
        }
        Server::X11vnc => {
            let port = 5901;
            let (mut server, _) = spawn_logged(
                dir,
                "x11vnc",
                Command::new("x11vnc").args([
                    "-display",
                    display,
                    "-rfbport",
                    &port.to_string(),
                    "-localhost",
                    "-nopw",
                    "-forever",
                    "-shared",
                ]),
            )?;
            let attendee = RfbAttendee::connect("x11vnc", port, &mut server, vnc_compress_level)?;
            Ok(Running::Vnc { server, attendee })
        }
        Server::X0tigervnc => {
            let port = 5902;
            let (mut server, _) = spawn_logged(
                dir,
                "X0tigervnc",
                Command::new("X0tigervnc").args([
                    "-display",
                    display,
                    "-rfbport",
                    &port.to_string(),
                    "-SecurityTypes",
                    "None",
                    "-localhost",
                    "-AlwaysShared",
                ]),
            )?;
            let attendee =
                RfbAttendee::connect("X0tigervnc", port, &mut server, vnc_compress_level)?;
            Ok(Running::Vnc { server, attendee })
        }
    }
}

/// Measures one phase: the workload runs on its own thread while this one
/// samples `lo` every second.
fn measure(
    desktop: &mut Desktop,
    phase: Phase,
    seconds: u64,
    server_pid: u32,
) -> Result<PhaseFigures, BytesError> {
    let x_pid = desktop.server_pid();
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let packets0 = netns::lo_tx_packets()?;
    let (bytes0, cpu0, xcpu0) = (
        netns::lo_tx_bytes()?,
        cpu_seconds(server_pid),
        cpu_seconds(x_pid),
    );
    std::thread::scope(|scope| {
        let driver = scope.spawn(|| desktop.run_phase(phase, start, &stop));
        let mut samples = Vec::new();
        let mut last = bytes0;
        let sampled = (|| {
            for k in 1..=seconds {
                let at = start + Duration::from_secs(k);
                if let Some(wait) = at.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let now = netns::lo_tx_bytes()?;
                samples.push(now - last);
                last = now;
                if driver.is_finished() {
                    break;
                }
            }
            Ok::<_, BytesError>(())
        })();
        stop.store(true, Ordering::Relaxed);
        let packets = netns::lo_tx_packets()? - packets0;
        let wall = start.elapsed().as_secs_f64();
        let (cpu, xcpu) = (cpu_seconds(server_pid) - cpu0, cpu_seconds(x_pid) - xcpu0);
        let actions = driver
            .join()
            .map_err(|_| BytesError::Setup("the workload thread panicked".into()))??;
        sampled?;
        Ok(PhaseFigures {
            phase,
            seconds: wall,
            total_bytes: last - bytes0,
            total_packets: packets,
            samples,
            server_cpu: cpu / wall * 100.0,
            x_cpu: xcpu / wall * 100.0,
            actions,
        })
    })
}

/// Runs the whole workload against one server.
pub fn run_server(server: Server, options: &Options) -> Result<ServerFigures, BytesError> {
    let dir = options.work_dir.join(server.name());
    std::fs::create_dir_all(&dir)
        .map_err(|e| BytesError::Setup(format!("create {}: {e}", dir.display())))?;
    let mut desktop = Desktop::start(&dir)?;
    let settle = Duration::from_secs(options.settle_seconds);
    let run_seconds = (options.settle_seconds + options.phase_seconds) * Phase::ALL.len() as u64;
    // The viewer outlives the phases; it is killed at the end.
    let mut running = start_server(
        server,
        &desktop,
        &dir,
        run_seconds + 60,
        options.vnc_compress_level,
    )?;
    progress(&format!(
        "{}: attendee connected on {}, settling {} s",
        server.name(),
        desktop.display(),
        options.settle_seconds
    ));
    let mut phases = Vec::new();
    for phase in Phase::ALL {
        std::thread::sleep(settle);
        running.check_alive(server)?;
        let before = running.encoder_counters();
        // The scrape's last packets are on lo before the phase's first count.
        std::thread::sleep(Duration::from_millis(100));
        let figures = measure(&mut desktop, phase, options.phase_seconds, running.pid())?;
        let per_action = |n: u64| n as f64 / figures.actions.max(1) as f64;
        if let (Some(b), Some(a)) = (before, running.encoder_counters()) {
            let per = |after: u64, before: u64| per_action(after.saturating_sub(before));
            progress(&format!(
                "{}: {:<6} encoder per action: {:.2} updates, {:.1} tiles coded, \
                 {:.2} copy-rects ({:.0} px moved), {:.0} encoded B",
                server.name(),
                phase.name(),
                per(a.updates, b.updates),
                per(a.tiles, b.tiles),
                per(a.copy_rects, b.copy_rects),
                per(a.moved_pixels, b.moved_pixels),
                per(a.encoded_bytes, b.encoded_bytes),
            ));
        }
        progress(&format!(
            "{}: {:<6} median {:>10.0} B/s, total {:>11} B in {} packets \
             ({:.0} B, {:.1} packets per action), server {:5.1} %, Xvfb {:5.1} %",
            server.name(),
            phase.name(),
            figures.median(),
            figures.total_bytes,
            figures.total_packets,
            per_action(figures.total_bytes),
            per_action(figures.total_packets),
            figures.server_cpu,
            figures.x_cpu
        ));
        phases.push(figures);
    }
    running.check_alive(server)?;
    let (version, encodings) = match running {
        Running::Tandem { node, viewer } => {
            drop(viewer);
            // After the phases: this request's bytes are not counted.
            let (_, m) = http_get(&format!("{}/metrics", node.admin_url));
            // A label absent from the text was never counted.
            let sent = |kind: &str| {
                let name = format!("tandem_updates_sent_total{{kind=\"{kind}\"}} ");
                m.lines()
                    .find_map(|l| l.strip_prefix(name.as_str()))
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            let encodings = format!(
                "tandem codec over QUIC: {:.0} updates published, {:.0} graphics bytes sent \
                 (updates sent: {:.0} deltas, {:.0} catch-ups, {:.0} key frames)",
                metric(&m, "tandem_updates_published_total"),
                metric(&m, "tandem_bytes_sent_total"),
                sent("delta"),
                sent("catch_up"),
                sent("key")
            );
            (
                version_of(&tandem_bin().to_string_lossy(), "--version"),
                encodings,
            )
        }
        Running::Vnc {
            server: vnc,
            attendee,
        } => {
            let version = attendee.init.version.clone();
            let counts = attendee.finish()?;
            drop(vnc);
            let program = match server {
                Server::X11vnc => version_of("x11vnc", "-version"),
                _ => version_of("X0tigervnc", "-version"),
            };
            (
                format!("{program} ({version})"),
                format!(
                    "{} updates; rectangles: {}",
                    counts.updates,
                    counts.summary()
                ),
            )
        }
    };
    drop(desktop);
    Ok(ServerFigures {
        server,
        version,
        encodings,
        phases,
    })
}

/// A progress line on stderr (stdout carries the table or the JSON).
pub fn progress(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "bytes: {line}");
}
