//! The `tandem` binary: command-line parsing and glue only.
//!
//! Exit status: 0 on success, 1 on a runtime error, 2 on a usage error;
//! errors are one line on stderr.

mod admin_client;
mod channel_bridge;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand};
use tandem_node::{Node, NodeConfig, SourceKind};
use tandem_proto::{ConnectionString, ControlLevel, InputEvent};
use tandem_viewer::geometry::ScaleMode;
use tandem_viewer::live::LiveOptions;
use tandem_viewer::window::WindowOptions;
use tandem_viewer::{ViewerError, ViewerEvent, ViewerOptions, ViewerOutcome};

/// Longest text accepted by `--type`.
const MAX_TYPE_TEXT: usize = 4096;

#[derive(Parser)]
#[command(name = "tandem", version, about = "Desktop sharing over QUIC")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node: share a desktop, serve attendees.
    Node(NodeArgs),
    /// Join a sharing session as an attendee.
    View(ViewArgs),
    /// Create an invitation; prints its connection string alone on stdout.
    Invite(admin_client::InviteArgs),
    /// List a node's sharing sessions; pause, resume, frame interval, shared rectangle, window filter, clipboard.
    Sessions(admin_client::SessionsArgs),
    /// List a node's attendees; show one with its open resources, disconnect one or set its control level.
    Attendees(admin_client::AttendeesArgs),
    /// List a node's invitations, show or revoke one.
    Invitations(admin_client::InvitationsArgs),
    /// List, grant or deny pending control requests.
    Requests(admin_client::RequestsArgs),
    /// A session's virtual channels: list, create, set access, send.
    Channels(admin_client::ChannelsArgs),
    /// Invitation groups' permissions: list, set, remove.
    Groups(admin_client::GroupsArgs),
    /// Make the node dial a viewer started with `view --listen` (reverse connect).
    ConnectTo(admin_client::ConnectToArgs),
}

#[derive(Args)]
struct NodeArgs {
    /// TOML config file (see configs/node.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory (registry, admin token).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// QUIC address to listen on.
    #[arg(long)]
    quic_listen: Option<std::net::SocketAddr>,
    /// Admin HTTP address to listen on.
    #[arg(long)]
    admin_listen: Option<std::net::SocketAddr>,
    /// What to share: synthetic, x11 or none.
    #[arg(long)]
    source: Option<SourceKind>,
    /// X display for --source x11.
    #[arg(long)]
    display: Option<String>,
    /// Join a cluster: UDP address of the gossip socket.
    #[arg(long)]
    cluster_listen: Option<std::net::SocketAddr>,
    /// Gossip address (host:port) of a cluster member to join through (repeatable).
    #[arg(long = "cluster-seed")]
    cluster_seeds: Vec<String>,
    /// Refused: a secret on the command line shows in process listings
    /// (use cluster.secret_file, cluster.secret or TANDEM_CLUSTER_SECRET).
    #[arg(long, hide = true, value_name = "REFUSED")]
    cluster_secret: Option<String>,
    /// Only check the configuration (file and flags): print `config ok` and
    /// exit 0, or one line saying what is wrong and exit 2. Starts nothing.
    #[arg(long)]
    check_config: bool,
}

#[derive(Args)]
struct ViewArgs {
    /// The connection string of the invitation.
    ticket: String,
    /// Your name, shown to the sharer (default: your login name from the
    /// password database, else the host name).
    #[arg(long)]
    name: Option<String>,
    /// The invitation's password.
    #[arg(
        long,
        env = "TANDEM_PASSWORD",
        default_value = "",
        hide_env_values = true
    )]
    password: String,
    /// No window: decode and optionally write a snapshot (scripts, tests).
    #[arg(long)]
    headless: bool,
    /// Window: scale the desktop to the window keeping its aspect ratio
    /// (`fit`), or show it pixel for pixel with scrolling (`1:1`).
    #[arg(long, default_value = "fit", value_parser = parse_scale)]
    scale: ScaleMode,
    /// Window: initial size WIDTHxHEIGHT in pixels (default: the desktop's).
    #[arg(long, value_parser = parse_geometry)]
    geometry: Option<(u32, u32)>,
    /// Window: show the status overlay (frames per second, bitrate, latency) from the start.
    #[arg(long)]
    status: bool,
    /// Window: do not draw the shared pointer.
    #[arg(long)]
    no_pointer: bool,
    /// Window: do not share this display's clipboard with the session (by
    /// default it is shared while the sharer allows it: interactive control
    /// and clipboard sharing on).
    #[arg(long)]
    no_clipboard: bool,
    /// Stop after this many graphics updates.
    #[arg(long, conflicts_with = "seconds")]
    frames: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    seconds: Option<f64>,
    /// Headless: reconnect like the window does (the next address of the
    /// connection string when a node is lost) instead of ending.
    #[arg(long, requires = "headless")]
    reconnect: bool,
    /// Window and --reconnect: seconds a silent node is waited for before the
    /// next address is tried (1..600, default 60); keep-alives go out every
    /// third of it, so a shorter wait costs more bytes while idle.
    #[arg(long, value_name = "SECS")]
    idle_timeout: Option<u64>,
    /// Largest shared picture (width x height, in pixels) this viewer
    /// accepts; a node announcing a larger one is refused before anything is
    /// allocated (default 33177600, 8K UHD: about 133 MB a copy).
    #[arg(long, value_name = "PIXELS", value_parser = clap::value_parser!(u64).range(1..))]
    max_frame_pixels: Option<u64>,
    /// Write the last frame to this PNG file.
    #[arg(long)]
    snapshot: Option<PathBuf>,
    /// Ask for interactive control after joining.
    #[arg(long)]
    request_control: bool,
    /// Type this text once interactive (needs --request-control or a grant).
    #[arg(long = "type")]
    type_text: Option<String>,
    /// Diagnostics: press this keysym (decimal or 0x hex) once interactive
    /// and hold it until the viewer leaves (repeatable, at most 8).
    #[arg(long = "hold-key", hide = true, value_parser = parse_keysym)]
    hold_keys: Vec<u32>,
    /// Diagnostics: stop reading after N updates for --stall-seconds.
    #[arg(long, hide = true, requires = "stall_seconds")]
    stall_after: Option<u64>,
    /// Diagnostics: how long to stop reading.
    #[arg(long, hide = true)]
    stall_seconds: Option<f64>,
    /// Diagnostics: send TEXT as key events right after joining, whatever
    /// the control level (the node must drop it unless interactive).
    #[arg(long, hide = true)]
    send_text: Option<String>,
    /// Ask the node to stamp each update with its capture time and report
    /// capture-to-decoded latency (p50/p99 in the headless summary, live in
    /// the window's status overlay). Needs a node that knows stamps (an
    /// older one ends the connection); the figure is exact when the node
    /// runs on this machine, else as good as the two clocks' agreement.
    #[arg(long)]
    latency: bool,
    /// Join this virtual channel and bridge it to stdin/stdout, one message
    /// per line (implies --headless; status lines go to stderr). The
    /// clipboard is the channel `clipboard`.
    #[arg(long)]
    channel: Option<String>,
    /// Reverse connect: listen on this UDP address and wait for the node to
    /// dial in (the sharer runs `tandem connect-to` with the printed string).
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// With --listen: the HOST:PORT the node is to dial, when it is not the
    /// listen address (a wildcard address, a NAT's public side).
    #[arg(long, value_name = "HOST:PORT", requires = "listen")]
    advertise: Option<tandem_proto::NodeAddr>,
    /// With --listen: seconds to wait for the node to dial in (1..3600, default 300).
    #[arg(long, value_name = "SECS", requires = "listen", default_value_t = 300)]
    listen_wait: u64,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version print in full; a usage error is one line
        // (clap's first, without its usage block and hint).
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let rendered = e.render().to_string();
            let line = rendered
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ");
            return usage_error(line);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TANDEM_LOG")
                // winit warns about harmless X server quirks (no XSETTINGS
                // owner, a 0 mm screen) that say nothing to a user.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new("warn,tandem_node=info,winit=error")
                }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Command::Node(args) => run_node(args),
        Command::View(args) => run_view(args),
        Command::Invite(args) => admin_client::run_invite(args),
        Command::Sessions(args) => admin_client::run_sessions(args),
        Command::Attendees(args) => admin_client::run_attendees(args),
        Command::Invitations(args) => admin_client::run_invitations(args),
        Command::Requests(args) => admin_client::run_requests(args),
        Command::Channels(args) => admin_client::run_channels(args),
        Command::Groups(args) => admin_client::run_groups(args),
        Command::ConnectTo(args) => admin_client::run_connect_to(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tandem: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("tandem: usage error: {message}");
    ExitCode::from(2)
}

/// The node's configuration: the file (or the defaults), then the flags on
/// top, validated.
fn node_config(args: NodeArgs) -> Result<NodeConfig, tandem_node::NodeError> {
    let mut config = match &args.config {
        Some(path) => NodeConfig::load(path)?,
        None => NodeConfig::default(),
    };
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    if let Some(a) = args.quic_listen {
        config.quic_listen = a;
    }
    if let Some(a) = args.admin_listen {
        config.admin_listen = a;
    }
    if let Some(s) = args.source {
        config.source.kind = s;
    }
    if let Some(d) = args.display {
        config.source.display = Some(d);
    }
    if let Some(a) = args.cluster_listen {
        config.cluster.listen = Some(a);
    }
    if !args.cluster_seeds.is_empty() {
        config.cluster.seeds = args.cluster_seeds;
    }
    config
        .cluster
        .load_secret(std::env::var(tandem_node::cluster::SECRET_ENV).ok())
        .map_err(|detail| tandem_node::NodeError::Config {
            detail: format!("cluster.{detail}"),
        })?;
    config.validate()?;
    Ok(config)
}

fn run_node(args: NodeArgs) -> anyhow::Result<ExitCode> {
    if args.cluster_secret.is_some() {
        return Ok(usage_error(
            "--cluster-secret is refused: a secret on the command line shows in process listings; \
             set cluster.secret_file (or cluster.secret) in the config file, or TANDEM_CLUSTER_SECRET",
        ));
    }
    let check_only = args.check_config;
    let config = match node_config(args) {
        Ok(config) => config,
        // A bad configuration is the caller's mistake: exit status 2 for
        // --check-config (scripts, `ExecStartPre=`), and 1 as before when
        // starting, which is what service managers count as a failed start.
        Err(e) if check_only => {
            eprintln!("tandem: {e}");
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e.into()),
    };
    if check_only {
        println!("config ok");
        return Ok(ExitCode::SUCCESS);
    }
    let system = actix::System::new();
    system.block_on(async move {
        let (node, report) = Node::start(config).await.context("starting the node")?;
        print_startup(&report);
        wait_for_signal().await?;
        node.shutdown().await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn print_startup(report: &tandem_node::StartupReport) {
    println!(
        "tandem node {} listening on quic {} (certificate sha256 {})",
        report.node_id, report.quic_addr, report.fingerprint
    );
    println!("admin API on http://{}", report.admin_addr);
    if let Some(addr) = report.metrics_addr {
        println!("metrics on http://{addr}/metrics");
    }
    if report.attendees_closed_at_start > 0 {
        println!(
            "recorded {} attendee(s) from before the restart as disconnected (node restarted)",
            report.attendees_closed_at_start
        );
    }
    if let Some(s) = &report.session {
        println!(
            "sharing session {} ({}), {}x{} from {}",
            s.id, s.name, s.shared_rect[2], s.shared_rect[3], s.source
        );
    }
    if let Some((inv, password)) = &report.invitation {
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "tandem".into());
        println!(
            "invitation {} (up to {} attendees)",
            inv.id, inv.attendee_limit
        );
        println!("connection string: {}", inv.connection_string);
        if let Some(link) = &report.browser_link {
            println!("browser link: {link}");
        }
        println!("password: {password}");
        // Every word quoted for a POSIX shell and no variable in it, so the
        // line works pasted anywhere; --name defaults to the login name.
        println!("join with:");
        println!(
            "  {} view {} --password {} --headless --seconds 10 --snapshot desktop.png",
            shell_quote(&exe),
            shell_quote(&inv.connection_string),
            shell_quote(password)
        );
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

/// `text` as one word for a POSIX shell: bare when it is made only of
/// characters no shell treats specially, else in single quotes.
fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// The attendee name used without `--name`: the login name of this user in
/// the password database (not `$USER`, which a container or `sudo` may not
/// set), else the host name, else `attendee`.
fn default_name() -> String {
    let login = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name);
    let host = || {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
    };
    login
        .or_else(host)
        .filter(|n| !n.is_empty() && n.len() <= tandem_proto::MAX_NAME_LEN)
        .unwrap_or_else(|| "attendee".to_owned())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for SIGINT")?,
        _ = term.recv() => {},
    }
    Ok(())
}

/// Largest window asked for with `--geometry`, per side.
const MAX_WINDOW_SIDE: u32 = 16384;

fn parse_scale(s: &str) -> Result<ScaleMode, String> {
    s.parse()
}

/// A keysym: decimal or `0x` hexadecimal.
fn parse_keysym(s: &str) -> Result<u32, String> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.map_err(|_| format!("{s:?} is not a keysym (decimal or 0x hex)"))
}

fn parse_geometry(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{s:?} is not WIDTHxHEIGHT, each 1 to {MAX_WINDOW_SIDE}");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let side = |v: &str| {
        v.parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_WINDOW_SIDE).contains(n))
            .ok_or_else(bad)
    };
    Ok((side(w)?, side(h)?))
}

fn run_view(args: ViewArgs) -> anyhow::Result<ExitCode> {
    let ticket: ConnectionString = match args.ticket.parse() {
        Ok(t) => t,
        Err(e) => return Ok(usage_error(&format!("bad connection string: {e}"))),
    };
    let name = args.name.clone().unwrap_or_else(default_name);
    if name.is_empty() || name.len() > tandem_proto::MAX_NAME_LEN {
        return Ok(usage_error(&format!(
            "--name must be 1 to {} bytes",
            tandem_proto::MAX_NAME_LEN
        )));
    }
    if args.password.len() > tandem_proto::MAX_PASSWORD_LEN {
        return Ok(usage_error("--password is too long"));
    }
    let limits = tandem_viewer::ViewerLimits {
        max_frame_pixels: args
            .max_frame_pixels
            .unwrap_or(tandem_viewer::DEFAULT_MAX_FRAME_PIXELS),
    };
    let transport = match args.idle_timeout {
        Some(secs) if !(1..=600).contains(&secs) => {
            return Ok(usage_error("--idle-timeout must be 1 to 600 seconds"))
        }
        Some(secs) => Some(tandem_transport::TransportConfig {
            idle_timeout: Duration::from_secs(secs),
            keep_alive: Some(Duration::from_secs(secs).div_f64(3.0)),
            ..tandem_viewer::live::LiveOptions::default_transport()
        }),
        None => None,
    };
    let duration = match args.seconds {
        Some(s) if !(s > 0.0 && s < 1e7) => return Ok(usage_error("--seconds must be positive")),
        Some(s) => Some(Duration::from_secs_f64(s)),
        None => None,
    };
    if args
        .type_text
        .iter()
        .chain(&args.send_text)
        .any(|t| t.len() > MAX_TYPE_TEXT)
    {
        return Ok(usage_error(&format!(
            "--type text may be at most {MAX_TYPE_TEXT} bytes"
        )));
    }
    if args.hold_keys.len() > 8 {
        return Ok(usage_error("--hold-key may be given at most 8 times"));
    }
    let stall = match (args.stall_after, args.stall_seconds) {
        (Some(n), Some(s)) if s > 0.0 && s < 3600.0 => Some((n, Duration::from_secs_f64(s))),
        (Some(_), _) => return Ok(usage_error("--stall-seconds must be between 0 and 3600")),
        _ => None,
    };
    if !(args.headless || args.channel.is_some())
        && (args.type_text.is_some()
            || args.send_text.is_some()
            || stall.is_some()
            || !args.hold_keys.is_empty())
    {
        return Ok(usage_error(
            "--type, --send-text and --stall-after need --headless (in the window, type on the keyboard)",
        ));
    }
    if let Some(name) = &args.channel {
        if !tandem_proto::is_valid_channel_name(name) {
            return Ok(usage_error(
                "--channel must be 1 to 64 characters from A-Z a-z 0-9 . _ -",
            ));
        }
        // stdout carries the channel's data alone.
        EVENTS_TO_STDERR.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let headless = args.headless || args.channel.is_some();
    let request_control = args.request_control.then_some(ControlLevel::Interactive);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let listener = match args.listen {
        Some(listen) => {
            if !(1..=3600).contains(&args.listen_wait) {
                return Ok(usage_error("--listen-wait must be 1 to 3600 seconds"));
            }
            let _guard = runtime.enter();
            let listener = tandem_viewer::reverse::ReverseListener::bind(
                listen,
                args.advertise.clone(),
                &ticket,
                Duration::from_secs(args.listen_wait),
            )?;
            print_listening(&listener, listen, args.listen_wait);
            Some(std::sync::Arc::new(listener))
        }
        None => None,
    };
    let result = if headless && args.reconnect {
        if args.type_text.is_some()
            || args.send_text.is_some()
            || !args.hold_keys.is_empty()
            || stall.is_some()
            || args.channel.is_some()
        {
            return Ok(usage_error(
                "--reconnect takes no --type, --send-text, --stall-after or --channel",
            ));
        }
        let mut live = LiveOptions::new(ticket, name, args.password);
        live.limits = limits;
        live.request_control = request_control;
        live.frames = args.frames;
        live.duration = duration;
        live.latency = args.latency;
        live.listener = listener;
        if let Some(transport) = transport {
            live.transport = transport;
        }
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        live.stop = Some(stop_rx);
        runtime.spawn(async move {
            if wait_for_signal().await.is_ok() {
                stop_tx.send_replace(true);
            }
        });
        let view = tandem_viewer::live::LiveView::new(|| {});
        let client = tandem_viewer::live::spawn(live, view, runtime.handle(), print_event);
        match runtime.block_on(client.task) {
            Ok(result) => result,
            Err(e) => return Err(anyhow::anyhow!("the viewer task failed: {e}")),
        }
    } else if headless {
        let options = ViewerOptions {
            ticket,
            name,
            password: args.password,
            frames: args.frames,
            duration,
            request_control,
            type_text: args.type_text,
            hold_keys: args.hold_keys,
            stall,
            send_input: args
                .send_text
                .iter()
                .flat_map(|t| t.chars())
                .flat_map(|c| {
                    let keysym = tandem_viewer::keysym_of(c);
                    [true, false].map(|pressed| InputEvent::Key { keysym, pressed })
                })
                .collect(),
            stop: None,
            latency: args.latency,
        };
        let link = args
            .channel
            .map(|name| channel_bridge::start(name, runtime.handle()));
        match &listener {
            Some(listener) => runtime.block_on(tandem_viewer::run_listening(
                options,
                listener,
                link,
                limits,
                print_event,
            )),
            None => runtime.block_on(tandem_viewer::run_with_limits(
                options,
                link,
                limits,
                print_event,
            )),
        }
    } else {
        let mut live = LiveOptions::new(ticket, name, args.password);
        live.limits = limits;
        live.request_control = request_control;
        live.frames = args.frames;
        live.duration = duration;
        live.latency = args.latency;
        if let Some(transport) = transport {
            live.transport = transport;
        }
        live.clipboard = !args.no_clipboard;
        live.listener = listener;
        // SIGINT or SIGTERM: leave the session properly, then close the window.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        live.stop = Some(stop_rx);
        runtime.spawn(async move {
            if wait_for_signal().await.is_ok() {
                stop_tx.send_replace(true);
            }
        });
        let window = WindowOptions {
            scale: args.scale,
            size: args.geometry,
            status: args.status,
            pointer: !args.no_pointer,
        };
        tandem_viewer::window::run_window(live, window, runtime.handle(), print_event)
    };
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(e @ ViewerError::Window(_)) => return Err(anyhow::Error::new(e).context(
            "no window could be opened (is DISPLAY or WAYLAND_DISPLAY set?); --headless needs none",
        )),
        Err(e) => return Err(e.into()),
    };
    finish_view(&outcome, args.snapshot.as_deref())
}

/// Set with `--channel`: stdout then carries channel data only, and the
/// event and summary lines go to stderr.
static EVENTS_TO_STDERR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Prints one line on stdout, or on stderr when stdout carries a channel.
macro_rules! say {
    ($($arg:tt)*) => {
        if EVENTS_TO_STDERR.load(std::sync::atomic::Ordering::Relaxed) {
            eprintln!($($arg)*)
        } else {
            println!($($arg)*)
        }
    };
}

/// What a listening viewer prints first: where it waits, and the string
/// to hand the sharer (alone after its label, for scripts).
fn print_listening(
    listener: &tandem_viewer::reverse::ReverseListener,
    listen: std::net::SocketAddr,
    wait_secs: u64,
) {
    say!(
        "listening on {}; waiting up to {wait_secs} s for the node to dial in",
        listener.local_addr().unwrap_or(listen)
    );
    say!(
        "reverse connection string: {}",
        listener.connection_string()
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

/// One line per event on stdout (scripts and tests read them).
fn print_event(event: ViewerEvent) {
    match event {
        ViewerEvent::Connected { addr, welcome } => say!(
            "connected to {addr} as attendee {} in session {} ({}x{}, control level {}{})",
            welcome.attendee_id,
            welcome.session,
            welcome.width,
            welcome.height,
            welcome.control_level,
            if welcome.paused {
                ", graphics paused"
            } else {
                ""
            }
        ),
        ViewerEvent::Notice(line) => say!("{line}"),
        ViewerEvent::Update { .. } | ViewerEvent::Cursor { .. } => {}
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

/// The summary lines, the snapshot, and the exit status.
fn finish_view(
    outcome: &ViewerOutcome,
    snapshot: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    say!(
        "received {} updates ({} key frames, {} catch-ups), last seq {}",
        outcome.updates,
        outcome.key_frames,
        outcome.catch_ups,
        outcome.last_seq
    );
    if let Some(line) = outcome.latency.summary_line() {
        say!("{line}");
    }
    if let Some(cursor) = outcome.cursor {
        say!(
            "cursor at {},{} {} after {} moves ({} shapes)",
            cursor.x,
            cursor.y,
            if cursor.visible { "shown" } else { "hidden" },
            outcome.cursor_moves,
            outcome.cursor_shapes.len()
        );
    }
    if let Some(path) = snapshot {
        match &outcome.frame {
            Some(frame) => {
                tandem_viewer::write_png(frame, path)?;
                say!(
                    "snapshot {}x{} written to {}",
                    frame.width(),
                    frame.height(),
                    path.display()
                );
            }
            None => bail!(
                "no frame was received, so no snapshot was written to {}",
                path.display()
            ),
        }
    }
    if let Some((reason, _)) = &outcome.disconnected {
        if *reason != tandem_proto::DisconnectReason::ByAttendee {
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}
