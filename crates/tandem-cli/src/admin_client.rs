//! The admin-client subcommands (`invite`, `sessions`, `attendees`,
//! `invitations`): a small blocking HTTP client of a node's admin API that
//! prints `net session`-like tables, or the API's JSON with `--json`.

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

/// `tandem sessions`.
#[derive(Args, Debug)]
pub struct SessionsArgs {
    #[command(flatten)]
    admin: AdminArgs,
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
    /// Disconnect an attendee.
    Disconnect {
        /// Attendee id.
        id: u64,
        /// Shown to the attendee.
        #[arg(long)]
        reason: Option<String>,
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
    /// Revoke an invitation: no new joins.
    Revoke {
        /// Invitation id.
        id: String,
    },
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
        let url = format!("{}/api/v1{path}", self.base);
        let req = self
            .agent
            .request(method, &url)
            .set("Authorization", &format!("Bearer {}", self.token));
        let result = match body {
            Some(b) => req.send_json(b),
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

/// Seconds as hh:mm:ss.
fn hms(v: &Value) -> String {
    match v.as_u64() {
        Some(s) => format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60),
        None => "-".into(),
    }
}

/// `tandem invite`: prints the connection string alone on stdout.
pub fn run_invite(args: InviteArgs) -> anyhow::Result<ExitCode> {
    if let Some(code) = check_url(&args.admin) {
        return Ok(code);
    }
    if args.limit == Some(0) {
        eprintln!("tandem: usage error: --limit must be at least 1");
        return Ok(ExitCode::from(2));
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
    }
    if generated {
        eprintln!("password: {password}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `tandem sessions`.
pub fn run_sessions(args: SessionsArgs) -> anyhow::Result<ExitCode> {
    if let Some(code) = check_url(&args.admin) {
        return Ok(code);
    }
    let list = Client::new(&args.admin)?.call("GET", "/sessions", None)?;
    if args.admin.json {
        print_json(&list)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = list
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|s| {
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
        })
        .collect();
    print_table(
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
        &rows,
    );
    Ok(ExitCode::SUCCESS)
}

/// `tandem attendees [--all]` and `tandem attendees disconnect ID`.
pub fn run_attendees(args: AttendeesArgs) -> anyhow::Result<ExitCode> {
    if let Some(code) = check_url(&args.admin) {
        return Ok(code);
    }
    let client = Client::new(&args.admin)?;
    if let Some(AttendeesAction::Disconnect { id, reason }) = args.action {
        let body = reason.map(|r| json!({ "reason": r }));
        client.call("DELETE", &format!("/attendees/{id}"), body)?;
        println!("attendee {id} disconnected");
        return Ok(ExitCode::SUCCESS);
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
            hms(&a["idle_seconds"]),
            text(&a["control_level"]),
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
                "IDLE",
                "LEVEL",
                "VIA",
            ],
            &rows,
        );
    } else {
        let rows: Vec<Vec<String>> = items.iter().map(row).collect();
        print_table(
            &["ID", "USER", "COMPUTER", "CONNECTED", "IDLE", "LEVEL"],
            &rows,
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `tandem invitations` and `tandem invitations revoke ID`.
pub fn run_invitations(args: InvitationsArgs) -> anyhow::Result<ExitCode> {
    if let Some(code) = check_url(&args.admin) {
        return Ok(code);
    }
    let client = Client::new(&args.admin)?;
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
    if args.admin.json {
        print_json(&list)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = list
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|i| {
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
        })
        .collect();
    print_table(
        &["ID", "SESSION", "GROUP", "ATTENDEES", "STATE", "CREATED"],
        &rows,
    );
    Ok(ExitCode::SUCCESS)
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
    fn times_are_shortened() {
        assert_eq!(
            short_time(&json!("2026-01-02T03:04:05.678Z")),
            "2026-01-02 03:04:05"
        );
    }
}
