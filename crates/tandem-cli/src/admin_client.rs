//! The admin-client subcommands (`invite`, `sessions`, `attendees`,
//! `invitations`, `requests`, `channels`, `groups`, `connect-to`): a small blocking HTTP
//! client of a
//! node's admin API that prints `net session`-like tables or one line per
//! action, or the API's JSON with `--json`.
//!
//! Exit status: 0 done, 1 the node refused or could not be reached (one line
//! with the API's error), 2 a usage error (clap, or a value checked here).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

/// Where the admin API is and how to authenticate.
#[derive(Args, Debug)]
pub struct AdminArgs {
    /// Base URL of the node's admin API.
    #[arg(long, global = true, default_value = "http://127.0.0.1:7070")]
    admin: String,
    /// Admin bearer token (default: TANDEM_ADMIN_TOKEN, else DATA_DIR/admin.token).
    #[arg(
        long,
        global = true,
        env = "TANDEM_ADMIN_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// The node's data directory, to read its admin.token.
    #[arg(long, global = true, default_value = "data")]
    data_dir: PathBuf,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

/// `tandem invite`.
#[derive(Args, Debug)]
pub struct InviteArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// Password attendees must give (generated and printed to stderr when absent).
    #[arg(long)]
    password: Option<String>,
    /// Most attendees connected through the invitation at once.
    #[arg(long)]
    limit: Option<u32>,
    /// Group name (unique per session).
    #[arg(long)]
    group: Option<String>,
    /// Session id (default: the node's only open session).
    #[arg(long)]
    session: Option<String>,
}

/// `tandem connect-to`.
#[derive(Args, Debug)]
pub struct ConnectToArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// The reverse connection string a viewer started with `--listen` printed.
    connection_string: String,
}

/// `tandem sessions`.
#[derive(Args, Debug)]
pub struct SessionsArgs {
    #[command(flatten)]
    admin: AdminArgs,
    #[command(subcommand)]
    action: Option<SessionsAction>,
}

/// What to do to a session.
#[derive(Subcommand, Debug)]
pub enum SessionsAction {
    /// Pause the session's graphics for every attendee.
    Pause {
        /// Session id.
        id: String,
    },
    /// Resume a paused session.
    Resume {
        /// Session id.
        id: String,
    },
    /// Change the shared rectangle: the whole desktop, a monitor, or X,Y,WIDTH,HEIGHT.
    SharedRect {
        /// Session id.
        id: String,
        /// Share the whole desktop.
        #[arg(long, conflicts_with_all = ["monitor", "rect"])]
        full: bool,
        /// Share this monitor (a name the session's desktop lists).
        #[arg(long, conflicts_with = "rect")]
        monitor: Option<String>,
        /// Share this rectangle: X,Y,WIDTH,HEIGHT in desktop pixels.
        #[arg(long, value_parser = parse_rect)]
        rect: Option<[u32; 4]>,
    },
    /// Change the capture interval at run time (5 to 60000 ms).
    FrameInterval {
        /// Session id.
        id: String,
        /// Milliseconds between captures.
        #[arg(value_parser = clap::value_parser!(u32).range(5..=60000))]
        ms: u32,
    },
    /// List the desktop's applications (windows grouped by WM_CLASS or pid) and whether each is shared.
    Applications {
        /// Session id.
        id: String,
    },
    /// Share an application and the windows it opens later.
    ShareApp {
        /// Session id.
        id: String,
        /// Application id from `sessions applications` (class:NAME, pid:N or window:ID).
        app: String,
    },
    /// Stop sharing an application.
    UnshareApp {
        /// Session id.
        id: String,
        /// Application id.
        app: String,
    },
    /// Show the window filter, set it (--class, --pid, --window) or remove it (--clear).
    Filter {
        /// Session id.
        id: String,
        /// Share windows of this WM_CLASS instance or class (repeatable).
        #[arg(long = "class")]
        classes: Vec<String>,
        /// Share windows of this process id (repeatable).
        #[arg(long = "pid")]
        pids: Vec<u32>,
        /// Share this X window id, decimal or 0x hex (repeatable).
        #[arg(long = "window", value_parser = parse_window_id)]
        windows: Vec<u32>,
        /// Remove the filter: share every window again.
        #[arg(long, conflicts_with_all = ["classes", "pids", "windows"])]
        clear: bool,
    },
    /// Show clipboard sharing, or turn it on or off.
    Clipboard {
        /// Session id.
        id: String,
        /// `on` or `off`; absent: show.
        state: Option<Switch>,
    },
}

/// On or off.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Switch {
    /// On.
    On,
    /// Off.
    Off,
}

/// A control level, as the API names it.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum LevelArg {
    /// Connected, no graphics, no input.
    None,
    /// Watches.
    View,
    /// Watches and drives mouse and keyboard.
    Interactive,
}

impl LevelArg {
    fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::View => "view",
            Self::Interactive => "interactive",
        }
    }
}

/// `tandem requests`: pending control requests.
#[derive(Args, Debug)]
pub struct RequestsArgs {
    #[command(flatten)]
    admin: AdminArgs,
    #[command(subcommand)]
    action: Option<RequestsAction>,
}

/// What to do to a control request.
#[derive(Subcommand, Debug)]
pub enum RequestsAction {
    /// Grant an attendee's pending control request.
    Grant {
        /// Attendee id.
        id: u64,
    },
    /// Deny an attendee's pending control request.
    Deny {
        /// Attendee id.
        id: u64,
    },
}

/// `tandem channels`: a session's virtual channels.
#[derive(Args, Debug)]
pub struct ChannelsArgs {
    #[command(flatten)]
    admin: AdminArgs,
    #[command(subcommand)]
    action: ChannelsAction,
}

/// What to do with channels.
#[derive(Subcommand, Debug)]
pub enum ChannelsAction {
    /// List a session's channels, with each attendee's access.
    List {
        /// Session id.
        session: String,
    },
    /// Create a channel.
    Create {
        /// Session id.
        session: String,
        /// Channel name: 1 to 64 characters from A-Z a-z 0-9 . _ -.
        name: String,
        /// QUIC priority of its streams.
        #[arg(long, value_enum, default_value = "normal")]
        priority: PriorityArg,
        /// Send its messages uncompressed.
        #[arg(long)]
        uncompressed: bool,
    },
    /// Set an attendee's access to a channel.
    Access {
        /// Session id.
        session: String,
        /// Channel name.
        name: String,
        /// Attendee id.
        attendee: u64,
        /// `none`, `read` or `read-write`.
        #[arg(value_enum)]
        access: AccessArg,
    },
    /// Send one message (the text as given) to one attendee or every reader.
    Send {
        /// Session id.
        session: String,
        /// Channel name.
        name: String,
        /// The message.
        message: String,
        /// Only to this attendee.
        #[arg(long)]
        attendee: Option<u64>,
    },
}

/// A channel's priority.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum PriorityArg {
    /// Below normal.
    Low,
    /// The default.
    Normal,
    /// Like graphics.
    High,
}

/// An attendee's access to a channel.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum AccessArg {
    /// Nothing.
    None,
    /// Receives.
    Read,
    /// Receives and sends.
    ReadWrite,
}

/// `tandem attendees`.
#[derive(Args, Debug)]
pub struct AttendeesArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// Include disconnected attendees (the history).
    #[arg(long, conflicts_with = "cluster")]
    all: bool,
    /// Live attendees of every member of the node's cluster, with the node
    /// each is attached to.
    #[arg(long)]
    cluster: bool,
    #[command(subcommand)]
    action: Option<AttendeesAction>,
}

/// What to do to an attendee.
#[derive(Subcommand, Debug)]
pub enum AttendeesAction {
    /// Show one attendee and what it holds open (graphics, channels,
    /// clipboard, a pending request, held keys).
    Show {
        /// Attendee id.
        id: u64,
    },
    /// Disconnect an attendee.
    Disconnect {
        /// Attendee id.
        id: u64,
        /// Shown to the attendee.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Set an attendee's control level (also answers its pending request).
    Level {
        /// Attendee id.
        id: u64,
        /// The level.
        #[arg(value_enum)]
        level: LevelArg,
    },
}

/// `tandem invitations`.
#[derive(Args, Debug)]
pub struct InvitationsArgs {
    #[command(flatten)]
    admin: AdminArgs,
    #[command(subcommand)]
    action: Option<InvitationsAction>,
}

/// What to do to an invitation.
#[derive(Subcommand, Debug)]
pub enum InvitationsAction {
    /// Show one invitation.
    Show {
        /// Invitation id.
        id: String,
    },
    /// Revoke an invitation: no new joins.
    Revoke {
        /// Invitation id.
        id: String,
    },
}

/// `tandem groups`: invitation groups' permissions.
#[derive(Args, Debug)]
pub struct GroupsArgs {
    #[command(flatten)]
    admin: AdminArgs,
    #[command(subcommand)]
    action: Option<GroupsAction>,
}

/// What to do to a group.
#[derive(Subcommand, Debug)]
pub enum GroupsAction {
    /// Set a group's permissions (replacing what it had).
    Set {
        /// Group name (an invitation's --group).
        name: String,
        /// Level of its new attendees (absent: the session's default).
        #[arg(long, value_enum)]
        default_level: Option<DefaultLevelArg>,
        /// Highest level a request is granted at once; above it the sharer
        /// decides (absent: the session's policy).
        #[arg(long, value_enum)]
        auto_grant: Option<LevelArg>,
        /// Channel access its attendees start with: NAME=none|read|read-write (repeatable).
        #[arg(long = "channel", value_parser = parse_channel_access)]
        channels: Vec<(String, String)>,
    },
    /// Remove a group's permissions: its attendees follow the session's rules.
    Remove {
        /// Group name.
        name: String,
    },
}

/// The level of new attendees: never interactive.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum DefaultLevelArg {
    /// Connected, no graphics, no input.
    None,
    /// Watches.
    View,
}

/// `NAME=ACCESS`.
fn parse_channel_access(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, access)) if ["none", "read", "read-write"].contains(&access) => {
            Ok((name.to_owned(), access.to_owned()))
        }
        _ => Err(format!("{s:?} is not NAME=none|read|read-write")),
    }
}

/// A request body.
enum Body {
    /// JSON.
    Json(Value),
    /// Raw bytes (a channel message).
    Bytes(Vec<u8>),
}

/// A connection to one node's admin API.
struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Client {
    fn new(args: &AdminArgs) -> anyhow::Result<Self> {
        let base = args.admin.trim_end_matches('/').to_owned();
        let token = match &args.token {
            Some(t) if !t.trim().is_empty() => t.trim().to_owned(),
            _ => {
                let path = args.data_dir.join("admin.token");
                let text = std::fs::read_to_string(&path).with_context(|| {
                    format!(
                        "no admin token: pass --token, set TANDEM_ADMIN_TOKEN or point --data-dir at the node's data directory (reading {})",
                        path.display()
                    )
                })?;
                text.trim().to_owned()
            }
        };
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build();
        Ok(Self { base, token, agent })
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        self.send(method, path, body.map(Body::Json))
    }

    fn send(&self, method: &str, path: &str, body: Option<Body>) -> anyhow::Result<Value> {
        let url = format!("{}/api/v1{path}", self.base);
        let req = self
            .agent
            .request(method, &url)
            .set("Authorization", &format!("Bearer {}", self.token));
        let result = match body {
            Some(Body::Json(b)) => req.send_json(b),
            Some(Body::Bytes(b)) => req
                .set("Content-Type", "application/octet-stream")
                .send_bytes(&b),
            None => req.call(),
        };
        match result {
            Ok(r) if r.status() == 204 => Ok(Value::Null),
            Ok(r) => r
                .into_json()
                .with_context(|| format!("reading the answer to {method} {url}")),
            Err(ureq::Error::Status(code, r)) => {
                let text = r.into_string().unwrap_or_default();
                let message = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v["error"].as_str().map(str::to_owned))
                    .unwrap_or(text);
                bail!("admin API answered {code}: {message}")
            }
            Err(e) => bail!("cannot reach the admin API at {}: {e}", self.base),
        }
    }
}

fn check_url(args: &AdminArgs) -> Option<ExitCode> {
    if !args.admin.starts_with("http://") {
        eprintln!("tandem: usage error: --admin must be an http:// URL (the admin API serves plain HTTP on loopback)");
        return Some(ExitCode::from(2));
    }
    None
}

fn print_json(v: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Prints rows under a header, columns padded to their widest cell.
/// A JSON list as `--json` prints it, or a table of one `row` per element.
fn print_list(
    json: bool,
    list: &Value,
    header: &[&str],
    row: impl Fn(&Value) -> Vec<String>,
) -> anyhow::Result<ExitCode> {
    if json {
        print_json(list)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = list
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(row)
        .collect();
    print_table(header, &rows);
    Ok(ExitCode::SUCCESS)
}

fn print_table(header: &[&str], rows: &[Vec<String>]) {
    if rows.is_empty() {
        println!("There are no entries in the list.");
        return;
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    println!(
        "{}",
        "-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1))
    );
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// `2026-01-02T03:04:05.678Z` as `2026-01-02 03:04:05`.
fn short_time(v: &Value) -> String {
    match v.as_str() {
        Some(s) if s.len() >= 19 => s[..19].replace('T', " "),
        _ => text(v),
    }
}

/// The level as shown: `reqctrl-*` while a request is pending (older
/// nodes send only `control_level`).
fn level_state(a: &Value) -> String {
    match &a["level_state"] {
        Value::Null => text(&a["control_level"]),
        v => text(v),
    }
}

/// Seconds as hh:mm:ss.
fn hms(v: &Value) -> String {
    match v.as_u64() {
        Some(s) => format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60),
        None => "-".into(),
    }
}

/// `tandem invite`: prints the connection string alone on stdout.
/// `tandem connect-to STRING`: the node dials the listening viewer and
/// answers once its attendee is admitted (or says why not).
pub fn run_connect_to(args: ConnectToArgs) -> anyhow::Result<ExitCode> {
    if let Some(code) = check_url(&args.admin) {
        return Ok(code);
    }
    if let Err(e) = args
        .connection_string
        .parse::<tandem_proto::ReverseConnectionString>()
    {
        eprintln!("tandem: usage error: {e}");
        return Ok(ExitCode::from(2));
    }
    let mut client = Client::new(&args.admin)?;
    // The node answers after the dial (at most 10 s) and the join (15 s).
    client.agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        .build();
    let body = json!({ "connection_string": args.connection_string.trim() });
    let answer = client.call("POST", "/connect-to", Some(body))?;
    if args.admin.json {
        print_json(&answer)?;
    } else {
        match answer["attendee"].as_u64() {
            Some(id) => println!(
                "connected to {}: attendee {id} ({}) in session {}",
                answer["peer"].as_str().unwrap_or("?"),
                answer["user"].as_str().unwrap_or("?"),
                answer["session"].as_str().unwrap_or("?"),
            ),
            None => println!(
                "connected to {}: its attendee is served by another cluster member",
                answer["peer"].as_str().unwrap_or("?")
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_invite(args: InviteArgs) -> anyhow::Result<ExitCode> {
    if let Some(code) = check_url(&args.admin) {
        return Ok(code);
    }
    if args.limit == Some(0) {
        eprintln!("tandem: usage error: --limit must be at least 1");
        return Ok(ExitCode::from(2));
    }
    if let Some(p) = &args.password {
        if let Err(why) = tandem_node::passwords::check_new_password("--password", p) {
            eprintln!("tandem: usage error: {why}");
            return Ok(ExitCode::from(2));
        }
    }
    let client = Client::new(&args.admin)?;
    let generated = args.password.is_none();
    let password = args
        .password
        .unwrap_or_else(tandem_node::passwords::generate);
    let mut body = json!({ "password": password });
    if let Some(l) = args.limit {
        body["attendee_limit"] = json!(l);
    }
    if let Some(g) = args.group {
        body["group"] = json!(g);
    }
    if let Some(s) = args.session {
        body["session"] = json!(s);
    }
    let inv = client.call("POST", "/invitations", Some(body))?;
    if args.admin.json {
        print_json(&inv)?;
    } else {
        let ticket = inv["connection_string"]
            .as_str()
            .context("the admin API returned no connection string")?;
        println!("{ticket}");
        // The connection string stays alone on stdout (scripts read it).
        if let Some(link) = inv["browser_link"].as_str() {
            eprintln!("browser link: {link}");
        }
    }
    if generated {
        eprintln!("password: {password}");
    }
    Ok(ExitCode::SUCCESS)
}

/// One path segment, percent-encoded (ids come from the command line).
fn seg(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `X,Y,WIDTH,HEIGHT`.
fn parse_rect(s: &str) -> Result<[u32; 4], String> {
    let parts: Vec<Option<u32>> = s.split(',').map(|p| p.trim().parse().ok()).collect();
    match parts.as_slice() {
        [Some(x), Some(y), Some(w), Some(h)] if *w > 0 && *h > 0 => Ok([*x, *y, *w, *h]),
        _ => Err(format!(
            "{s:?} is not X,Y,WIDTH,HEIGHT (non-negative integers, width and height at least 1)"
        )),
    }
}

/// An X window id: decimal or `0x` hexadecimal.
fn parse_window_id(s: &str) -> Result<u32, String> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.map_err(|_| format!("{s:?} is not a window id (decimal or 0x hex)"))
}

/// Prints the API's JSON with `--json`, else `line`.
fn report(json: bool, v: &Value, line: impl FnOnce() -> String) -> anyhow::Result<ExitCode> {
    if json {
        print_json(v)?;
    } else {
        println!("{}", line());
    }
    Ok(ExitCode::SUCCESS)
}

/// The session actions.
fn run_session_action(
    args: &AdminArgs,
    client: &Client,
    action: SessionsAction,
) -> anyhow::Result<ExitCode> {
    match action {
        SessionsAction::Pause { id } => {
            let s = client.call("POST", &format!("/sessions/{}/pause", seg(&id)), None)?;
            report(args.json, &s, || format!("session {id} paused"))
        }
        SessionsAction::Resume { id } => {
            let s = client.call("POST", &format!("/sessions/{}/resume", seg(&id)), None)?;
            report(args.json, &s, || format!("session {id} resumed"))
        }
        SessionsAction::SharedRect {
            id,
            full,
            monitor,
            rect,
        } => {
            let body = match (full, monitor, rect) {
                (true, None, None) => json!({ "full": true }),
                (false, Some(name), None) => json!({ "monitor": name }),
                (false, None, Some([x, y, width, height])) => {
                    json!({ "x": x, "y": y, "width": width, "height": height })
                }
                _ => {
                    eprintln!("tandem: usage error: give one of --full, --monitor NAME or --rect X,Y,WIDTH,HEIGHT");
                    return Ok(ExitCode::from(2));
                }
            };
            let v = client.call(
                "PUT",
                &format!("/sessions/{}/shared-rect", seg(&id)),
                Some(body),
            )?;
            let r = &v["shared_rect"];
            report(args.json, &v, || {
                format!(
                    "session {id} shares {}x{} at {},{}",
                    text(&r[2]),
                    text(&r[3]),
                    text(&r[0]),
                    text(&r[1])
                )
            })
        }
        SessionsAction::Applications { id } => {
            let list = client.call("GET", &format!("/sessions/{}/applications", seg(&id)), None)?;
            print_list(
                args.json,
                &list,
                &["APPLICATION", "PIDS", "WINDOWS", "SHARED", "TITLES"],
                |a| {
                    let windows = a["windows"]
                        .as_array()
                        .map(Vec::as_slice)
                        .unwrap_or_default();
                    let pids: Vec<String> = a["pids"]
                        .as_array()
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                        .iter()
                        .map(text)
                        .collect();
                    vec![
                        text(&a["id"]),
                        if pids.is_empty() {
                            "-".into()
                        } else {
                            pids.join(",")
                        },
                        windows.len().to_string(),
                        if a["shared"].as_bool() == Some(true) {
                            "yes"
                        } else {
                            "no"
                        }
                        .into(),
                        windows
                            .iter()
                            .map(|w| text(&w["title"]))
                            .collect::<Vec<_>>()
                            .join(" | "),
                    ]
                },
            )
        }
        SessionsAction::ShareApp { id, app } => {
            let path = format!("/sessions/{}/applications/{}/share", seg(&id), seg(&app));
            let v = client.call("POST", &path, None)?;
            report(args.json, &v, || {
                format!("session {id} shares application {app}")
            })
        }
        SessionsAction::UnshareApp { id, app } => {
            let path = format!("/sessions/{}/applications/{}/unshare", seg(&id), seg(&app));
            let v = client.call("POST", &path, None)?;
            report(args.json, &v, || {
                format!("session {id} no longer shares application {app}")
            })
        }
        SessionsAction::FrameInterval { id, ms } => {
            let v = client.call(
                "PUT",
                &format!("/sessions/{}/frame-interval", seg(&id)),
                Some(json!({ "frame_interval_ms": ms })),
            )?;
            report(args.json, &v, || {
                format!(
                    "session {id} captures every {} ms",
                    text(&v["frame_interval_ms"])
                )
            })
        }
        SessionsAction::Filter {
            id,
            classes,
            pids,
            windows,
            clear,
        } => {
            let path = format!("/sessions/{}/filter", seg(&id));
            if clear {
                client.call("DELETE", &path, None)?;
                let v = json!({ "session": id, "filter": null });
                return report(args.json, &v, || {
                    format!("session {id} shares every window")
                });
            }
            let v = if classes.is_empty() && pids.is_empty() && windows.is_empty() {
                client.call("GET", &path, None)?
            } else {
                let body = json!({ "classes": classes, "pids": pids, "windows": windows });
                client.call("PUT", &path, Some(body))?
            };
            let list = |key: &str| {
                v[key]
                    .as_array()
                    .map(|a| a.iter().map(text).collect::<Vec<_>>().join(","))
                    .filter(|l| !l.is_empty())
                    .unwrap_or_else(|| "-".into())
            };
            report(args.json, &v, || {
                format!(
                    "session {id} shares only classes {} pids {} windows {}",
                    list("classes"),
                    list("pids"),
                    list("windows")
                )
            })
        }
        SessionsAction::Clipboard { id, state } => {
            let path = format!("/sessions/{}/clipboard", seg(&id));
            let v = match state {
                None => client.call("GET", &path, None)?,
                Some(s) => client.call(
                    "PUT",
                    &path,
                    Some(json!({ "enabled": matches!(s, Switch::On) })),
                )?,
            };
            report(args.json, &v, || {
                format!(
                    "session {id} clipboard sharing {} (at most {} bytes)",
                    if v["enabled"].as_bool() == Some(true) {
                        "on"
                    } else {
                        "off"
                    },
                    text(&v["max_bytes"])
                )
            })
        }
    }
}

/// `tandem sessions` and its actions.
pub fn run_sessions(args: SessionsArgs) -> anyhow::Result<ExitCode> {
    if let Some(code) = check_url(&args.admin) {
        return Ok(code);
    }
    let client = Client::new(&args.admin)?;
    if let Some(action) = args.action {
        return run_session_action(&args.admin, &client, action);
    }
    let list = client.call("GET", "/sessions", None)?;
    print_list(
        args.admin.json,
        &list,
        &[
            "ID",
            "NAME",
            "STATE",
            "SIZE",
            "ATTENDEES",
            "LEVEL",
            "POLICY",
            "CREATED",
        ],
        |s| {
            let r = &s["shared_rect"];
            vec![
                text(&s["id"]),
                text(&s["name"]),
                text(&s["state"]),
                format!("{}x{}", text(&r[2]), text(&r[3])),
                text(&s["attendees"]),
                text(&s["default_control_level"]),
                text(&s["control_policy"]),
                short_time(&s["created_at"]),
            ]
        },
    )
}

/// `tandem attendees [--all]` and `tandem attendees disconnect ID`.
pub fn run_attendees(args: AttendeesArgs) -> anyhow::Result<ExitCode> {
    if let Some(code) = check_url(&args.admin) {
        return Ok(code);
    }
    let client = Client::new(&args.admin)?;
    match args.action {
        Some(AttendeesAction::Show { id }) => {
            let v = client.call("GET", &format!("/attendees/{id}"), None)?;
            if args.admin.json {
                print_json(&v)?;
            } else {
                print_attendee(&v);
            }
            return Ok(ExitCode::SUCCESS);
        }
        Some(AttendeesAction::Disconnect { id, reason }) => {
            let body = reason.map(|r| json!({ "reason": r }));
            client.call("DELETE", &format!("/attendees/{id}"), body)?;
            let v = json!({ "attendee": id, "disconnected": true });
            return report(args.admin.json, &v, || {
                format!("attendee {id} disconnected")
            });
        }
        Some(AttendeesAction::Level { id, level }) => {
            let v = client.call(
                "PUT",
                &format!("/attendees/{id}/control-level"),
                Some(json!({ "level": level.as_str() })),
            )?;
            return report(args.admin.json, &v, || {
                format!("attendee {id} control level {}", text(&v["control_level"]))
            });
        }
        None => {}
    }
    let path = if args.all {
        "/attendees?state=all"
    } else if args.cluster {
        "/attendees?scope=cluster"
    } else {
        "/attendees"
    };
    let list = client.call("GET", path, None)?;
    if args.admin.json {
        print_json(&list)?;
        return Ok(ExitCode::SUCCESS);
    }
    let items = list.as_array().map(Vec::as_slice).unwrap_or_default();
    let row = |a: &Value| {
        vec![
            text(&a["id"]),
            text(&a["user"]),
            text(&a["computer"]),
            short_time(&a["connected_at"]),
            hms(&a["connected_seconds"]),
            hms(&a["idle_seconds"]),
            level_state(a),
        ]
    };
    if args.all {
        let rows: Vec<Vec<String>> = items
            .iter()
            .map(|a| {
                let mut r = row(a);
                r.push(text(&a["state"]));
                r.push(short_time(&a["disconnected_at"]));
                r.push(text(&a["reason"]));
                r
            })
            .collect();
        print_table(
            &[
                "ID",
                "USER",
                "COMPUTER",
                "CONNECTED",
                "TIME",
                "IDLE",
                "LEVEL",
                "STATE",
                "DISCONNECTED",
                "REASON",
            ],
            &rows,
        );
    } else if args.cluster {
        let rows: Vec<Vec<String>> = items
            .iter()
            .map(|a| {
                let mut r = vec![text(&a["node"])];
                r.extend(row(a));
                r.push(text(&a["via_node"]));
                r
            })
            .collect();
        print_table(
            &[
                "NODE",
                "ID",
                "USER",
                "COMPUTER",
                "CONNECTED",
                "TIME",
                "IDLE",
                "LEVEL",
                "VIA",
            ],
            &rows,
        );
    } else {
        let rows: Vec<Vec<String>> = items.iter().map(row).collect();
        print_table(
            &[
                "ID",
                "USER",
                "COMPUTER",
                "CONNECTED",
                "TIME",
                "IDLE",
                "LEVEL",
            ],
            &rows,
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `net session \\computer`: one attendee's properties, then the
/// resources it holds open, one per line.
fn print_attendee(v: &Value) {
    let a = &v["attendee"];
    for (label, cell) in [
        ("Attendee", text(&a["id"])),
        ("User name", text(&a["user"])),
        ("Computer", text(&a["computer"])),
        ("Session", text(&a["session"])),
        ("Invitation", text(&a["invitation"])),
        ("State", text(&a["state"])),
        ("Control level", level_state(a)),
        ("Connected at", short_time(&a["connected_at"])),
        ("Connect time", hms(&a["connected_seconds"])),
        ("Idle time", hms(&a["idle_seconds"])),
    ] {
        println!("{label:<20}{cell}");
    }
    let r = &v["resources"];
    if r.is_null() {
        println!();
        println!("No resources: the attendee is not connected.");
        return;
    }
    let mut rows = vec![vec![
        "graphics".to_owned(),
        "stream".to_owned(),
        text(&r["graphics"]["state"]),
    ]];
    for c in r["channels"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        rows.push(vec![
            "channel".to_owned(),
            text(&c["name"]),
            format!(
                "{}{}",
                text(&c["access"]),
                if c["joined"].as_bool() == Some(true) {
                    ", joined"
                } else {
                    ""
                }
            ),
        ]);
    }
    rows.push(vec![
        "clipboard".to_owned(),
        if r["clipboard"]["enabled"].as_bool() == Some(true) {
            "on"
        } else {
            "off"
        }
        .to_owned(),
        text(&r["clipboard"]["access"]),
    ]);
    if !r["pending_request"].is_null() {
        rows.push(vec![
            "request".to_owned(),
            "control".to_owned(),
            text(&r["pending_request"]),
        ]);
    }
    for k in r["held_keys"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let keysym = k.as_u64().unwrap_or_default();
        rows.push(vec![
            "key".to_owned(),
            format!("0x{keysym:x}"),
            "held".to_owned(),
        ]);
    }
    for b in r["held_buttons"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        rows.push(vec!["button".to_owned(), text(b), "held".to_owned()]);
    }
    println!();
    print_table(&["RESOURCE", "NAME", "STATE"], &rows);
}

/// `tandem invitations` and `tandem invitations revoke ID`.
pub fn run_invitations(args: InvitationsArgs) -> anyhow::Result<ExitCode> {
    if let Some(code) = check_url(&args.admin) {
        return Ok(code);
    }
    let client = Client::new(&args.admin)?;
    if let Some(InvitationsAction::Show { id }) = &args.action {
        let i = client.call("GET", &format!("/invitations/{}", seg(id)), None)?;
        if args.admin.json {
            print_json(&i)?;
        } else {
            for (label, key) in [
                ("Invitation", "id"),
                ("Session", "session"),
                ("Group", "group"),
                ("Auth string", "auth_string"),
                ("Attendees", "attendees"),
                ("Attendee limit", "attendee_limit"),
                ("Revoked", "revoked"),
                ("Created", "created_at"),
                ("Connection string", "connection_string"),
            ] {
                println!("{label:<20}{}", text(&i[key]));
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(InvitationsAction::Revoke { id }) = args.action {
        let inv = client.call("POST", &format!("/invitations/{id}/revoke"), None)?;
        if args.admin.json {
            print_json(&inv)?;
        } else {
            println!("invitation {id} revoked");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let list = client.call("GET", "/invitations", None)?;
    print_list(
        args.admin.json,
        &list,
        &["ID", "SESSION", "GROUP", "ATTENDEES", "STATE", "CREATED"],
        |i| {
            vec![
                text(&i["id"]),
                text(&i["session"]),
                text(&i["group"]),
                format!("{}/{}", text(&i["attendees"]), text(&i["attendee_limit"])),
                if i["revoked"].as_bool() == Some(true) {
                    "revoked"
                } else {
                    "active"
                }
                .to_owned(),
                short_time(&i["created_at"]),
            ]
        },
    )
}

/// `tandem requests` and `tandem requests grant|deny ID`.
pub fn run_requests(args: RequestsArgs) -> anyhow::Result<ExitCode> {
    if let Some(code) = check_url(&args.admin) {
        return Ok(code);
    }
    let client = Client::new(&args.admin)?;
    if let Some(action) = args.action {
        let (id, verb, granted) = match action {
            RequestsAction::Grant { id } => (id, "grant", true),
            RequestsAction::Deny { id } => (id, "deny", false),
        };
        client.call("POST", &format!("/control-requests/{id}/{verb}"), None)?;
        let v = json!({ "attendee": id, "granted": granted });
        return report(args.admin.json, &v, || {
            format!(
                "control request of attendee {id} {}",
                if granted { "granted" } else { "denied" }
            )
        });
    }
    let list = client.call("GET", "/control-requests", None)?;
    print_list(
        args.admin.json,
        &list,
        &["ID", "USER", "COMPUTER", "SESSION", "LEVEL", "REQUESTED"],
        |a| {
            vec![
                text(&a["id"]),
                text(&a["user"]),
                text(&a["computer"]),
                text(&a["session"]),
                text(&a["control_level"]),
                text(&a["pending_request"]),
            ]
        },
    )
}

/// `tandem groups [set NAME ...|remove NAME]`.
pub fn run_groups(args: GroupsArgs) -> anyhow::Result<ExitCode> {
    if let Some(code) = check_url(&args.admin) {
        return Ok(code);
    }
    let client = Client::new(&args.admin)?;
    match args.action {
        Some(GroupsAction::Set {
            name,
            default_level,
            auto_grant,
            channels,
        }) => {
            let mut body = json!({
                "channels": channels
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect::<serde_json::Map<String, Value>>()
            });
            if let Some(l) = default_level {
                body["default_level"] = json!(match l {
                    DefaultLevelArg::None => "none",
                    DefaultLevelArg::View => "view",
                });
            }
            if let Some(l) = auto_grant {
                body["auto_grant"] = json!(l.as_str());
            }
            let g = client.call("PUT", &format!("/groups/{}", seg(&name)), Some(body))?;
            report(args.admin.json, &g, || {
                format!("group {name}: {}", group_line(&g))
            })
        }
        Some(GroupsAction::Remove { name }) => {
            client.call("DELETE", &format!("/groups/{}", seg(&name)), None)?;
            let v = json!({ "group": name, "removed": true });
            report(args.admin.json, &v, || {
                format!("group {name} follows the session's rules")
            })
        }
        None => {
            let list = client.call("GET", "/groups", None)?;
            print_list(
                args.admin.json,
                &list,
                &["GROUP", "DEFAULT LEVEL", "AUTO GRANT", "CHANNELS"],
                |g| {
                    vec![
                        text(&g["name"]),
                        text(&g["default_level"]),
                        text(&g["auto_grant"]),
                        channel_list(&g["channels"]),
                    ]
                },
            )
        }
    }
}

/// `name=access,...` or `-`.
fn channel_list(v: &Value) -> String {
    let list: Vec<String> = v
        .as_object()
        .map(|m| m.iter().map(|(k, a)| format!("{k}={}", text(a))).collect())
        .unwrap_or_default();
    if list.is_empty() {
        "-".into()
    } else {
        list.join(",")
    }
}

fn group_line(g: &Value) -> String {
    format!(
        "default level {}, auto grant up to {}, channels {}",
        text(&g["default_level"]),
        text(&g["auto_grant"]),
        channel_list(&g["channels"])
    )
}

/// `tandem channels list|create|access|send`.
pub fn run_channels(args: ChannelsArgs) -> anyhow::Result<ExitCode> {
    if let Some(code) = check_url(&args.admin) {
        return Ok(code);
    }
    let json_out = args.admin.json;
    let client = Client::new(&args.admin)?;
    match args.action {
        ChannelsAction::List { session } => {
            let list = client.call(
                "GET",
                &format!("/sessions/{}/channels", seg(&session)),
                None,
            )?;
            print_list(
                json_out,
                &list,
                &["ID", "NAME", "PRIORITY", "FLAGS", "ACCESS"],
                |c| {
                    let access = c["access"]
                        .as_object()
                        .map(|m| {
                            m.iter()
                                .map(|(who, a)| format!("{who}:{}", text(a)))
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                        .filter(|l| !l.is_empty())
                        .unwrap_or_else(|| "-".into());
                    vec![
                        text(&c["id"]),
                        text(&c["name"]),
                        text(&c["priority"]),
                        text(&c["flags"]),
                        access,
                    ]
                },
            )
        }
        ChannelsAction::Create {
            session,
            name,
            priority,
            uncompressed,
        } => {
            let priority = match priority {
                PriorityArg::Low => "low",
                PriorityArg::Normal => "normal",
                PriorityArg::High => "high",
            };
            let body =
                json!({ "name": name, "priority": priority, "flags": u32::from(uncompressed) });
            let v = client.call(
                "POST",
                &format!("/sessions/{}/channels", seg(&session)),
                Some(body),
            )?;
            report(json_out, &v, || {
                format!(
                    "channel {name} created in session {session} (id {})",
                    text(&v["id"])
                )
            })
        }
        ChannelsAction::Access {
            session,
            name,
            attendee,
            access,
        } => {
            let access = match access {
                AccessArg::None => "none",
                AccessArg::Read => "read",
                AccessArg::ReadWrite => "read-write",
            };
            client.call(
                "PUT",
                &format!(
                    "/sessions/{}/channels/{}/access/{attendee}",
                    seg(&session),
                    seg(&name)
                ),
                Some(json!({ "access": access })),
            )?;
            let v = json!({ "session": session, "channel": name, "attendee": attendee, "access": access });
            report(json_out, &v, || {
                format!("attendee {attendee} has {access} access to channel {name}")
            })
        }
        ChannelsAction::Send {
            session,
            name,
            message,
            attendee,
        } => {
            if message.len() > tandem_proto::MAX_CHANNEL_MESSAGE {
                eprintln!(
                    "tandem: usage error: a channel message is at most {} bytes",
                    tandem_proto::MAX_CHANNEL_MESSAGE
                );
                return Ok(ExitCode::from(2));
            }
            let mut path = format!(
                "/sessions/{}/channels/{}/messages",
                seg(&session),
                seg(&name)
            );
            if let Some(a) = attendee {
                path.push_str(&format!("?attendee={a}"));
            }
            let v = client.send("POST", &path, Some(Body::Bytes(message.into_bytes())))?;
            report(json_out, &v, || {
                format!(
                    "sent to channel {name}: queued {}, dropped {}, not joined {}",
                    text(&v["queued"]),
                    text(&v["dropped"]),
                    text(&v["not_joined"])
                )
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_is_hh_mm_ss() {
        assert_eq!(hms(&json!(0)), "00:00:00");
        assert_eq!(hms(&json!(3725)), "01:02:05");
        assert_eq!(hms(&Value::Null), "-");
    }

    #[test]
    fn rects_and_window_ids_parse() {
        assert_eq!(parse_rect("1,2,30,40"), Ok([1, 2, 30, 40]));
        assert!(parse_rect("1,2,0,40").is_err());
        assert!(parse_rect("1,2,3").is_err());
        assert_eq!(parse_window_id("0x1c00002"), Ok(0x1c00002));
        assert_eq!(parse_window_id("42"), Ok(42));
        assert!(parse_window_id("x").is_err());
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(seg("abc-1._~"), "abc-1._~");
        assert_eq!(seg("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn times_are_shortened() {
        assert_eq!(
            short_time(&json!("2026-01-02T03:04:05.678Z")),
            "2026-01-02 03:04:05"
        );
    }
}
