//! `bytes`: what Tandem, x11vnc and X0tigervnc send to one attendee on a
//! scripted desktop (idle, typing, scroll, move), counted on a private
//! network namespace's loopback and printed side by side. How to read the
//! table: `tandem_benches::bytes` (also printed under it).
//!
//! `make bytes` installs the Debian packages, builds the release binaries
//! and runs it with 20-s phases. Runs as root (it creates a network
//! namespace). `--phase-seconds 5` for a quick run, `--servers tandem` for
//! one server, `--json` for JSON on stdout (the table then goes to stderr).
//! `TANDEM_BIN` overrides where the `tandem` binary is looked for (next to
//! this one by default).
//!
//! The process creates the namespace, then runs itself inside it
//! (`ip netns exec NS bytes --inside-namespace NS ...`), so every process
//! of the workload inherits it; the outer process deletes the namespace,
//! after stopping whatever still runs in it, at the end, on a panic and on
//! SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;
use tandem_benches::bytes::{self, netns, progress, report, Options, Server};
use tandem_tests::xserver::which;

#[derive(Debug, Parser)]
#[command(
    name = "bytes",
    about = "Bytes on the wire: tandem vs x11vnc vs X0tigervnc"
)]
struct Args {
    /// Length of each of the four phases, in seconds.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(2..=600))]
    phase_seconds: u64,
    /// Quiet seconds after the attendee connects and between phases (not measured).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=60))]
    settle_seconds: u64,
    /// Servers to measure, in order (tandem, x11vnc, x0tigervnc).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "tandem,x11vnc,x0tigervnc"
    )]
    servers: Vec<String>,
    /// Print the figures as JSON on stdout (the table goes to stderr).
    #[arg(long)]
    json: bool,
    /// Tight compression level (0-9) the RFB attendee asks x11vnc and
    /// X0tigervnc for; without it each server uses its default.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=9))]
    vnc_compress_level: Option<u8>,
    /// Internal: this is the run inside the namespace.
    #[arg(long, hide = true)]
    inside_namespace: Option<String>,
    /// Internal: the work directory the outer process made.
    #[arg(long, hide = true)]
    work_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut servers = Vec::new();
    for s in &args.servers {
        match Server::parse(s) {
            Some(server) if !servers.contains(&server) => servers.push(server),
            Some(_) => {}
            None => {
                eprintln!("bytes: usage error: unknown server {s:?} (tandem, x11vnc, x0tigervnc)");
                return ExitCode::from(2);
            }
        }
    }
    if std::env::var_os("TANDEM_BIN").is_none() {
        // The binary sits next to this one in target/<profile>/.
        let exe = std::env::current_exe().expect("own path");
        std::env::set_var("TANDEM_BIN", exe.with_file_name("tandem"));
    }
    match (&args.inside_namespace, &args.work_dir) {
        (Some(_), Some(dir)) => inside(&args, servers, dir.clone()),
        _ => outside(&args, &servers),
    }
}

/// Checks the tools, makes the namespace and runs the bench inside it.
fn outside(args: &Args, servers: &[Server]) -> ExitCode {
    let mut missing: Vec<&str> = ["ip", "Xvfb", "xterm", "xdotool", "xwininfo", "mkfifo"]
        .into_iter()
        .chain(servers.iter().flat_map(|s| s.programs().iter().copied()))
        .filter(|p| !which(p))
        .collect();
    let tandem = PathBuf::from(std::env::var_os("TANDEM_BIN").unwrap_or_default());
    if servers.contains(&Server::Tandem) && !tandem.is_file() {
        missing.push("tandem (cargo build --release -p tandem-cli)");
    }
    if !missing.is_empty() {
        eprintln!(
            "bytes: error: missing {} (`make bytes` installs the Debian packages: xvfb xterm xdotool x11-utils x11vnc tigervnc-scraping-server fonts-dejavu-core)",
            missing.join(", ")
        );
        return ExitCode::from(1);
    }
    let work = match tempfile::Builder::new().prefix("tandem-bytes-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("bytes: error: temp dir: {e}");
            return ExitCode::from(1);
        }
    };
    let name = format!("tandem-bytes-{}", std::process::id());
    let ns = match netns::Namespace::create(&name) {
        Ok(ns) => ns,
        Err(e) => {
            // A half-made namespace is removed too.
            netns::cleanup(&name);
            eprintln!("bytes: error: {e}");
            return ExitCode::from(1);
        }
    };
    watch_signals(name.clone(), work.path().to_owned());
    let exe = std::env::current_exe().expect("own path");
    let mut cmd = ns.command(&exe.to_string_lossy());
    cmd.arg("--inside-namespace")
        .arg(&name)
        .arg("--work-dir")
        .arg(work.path())
        .arg("--phase-seconds")
        .arg(args.phase_seconds.to_string())
        .arg("--settle-seconds")
        .arg(args.settle_seconds.to_string())
        .arg("--servers")
        .arg(
            servers
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(","),
        );
    if args.json {
        cmd.arg("--json");
    }
    if let Some(level) = args.vnc_compress_level {
        cmd.arg("--vnc-compress-level").arg(level.to_string());
    }
    let status = cmd.status();
    if INTERRUPTED.load(Ordering::SeqCst) {
        // The signal thread is cleaning up and exits with 130.
        loop {
            std::thread::park();
        }
    }
    // Whatever the run left behind goes with the namespace.
    drop(ns);
    drop(work);
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => {
            eprintln!("bytes: the run inside the namespace failed ({s})");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("bytes: error: run ip netns exec: {e}");
            ExitCode::from(1)
        }
    }
}

/// Set once a signal arrived: the inner run's end is then the cleanup's doing.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// On SIGINT or SIGTERM: stop everything in the namespace, delete it and
/// the work directory, exit 130.
fn watch_signals(name: String, work: PathBuf) {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("signal runtime");
        runtime.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            INTERRUPTED.store(true, Ordering::SeqCst);
            eprintln!("bytes: interrupted; stopping the workload and deleting namespace {name}");
            netns::cleanup(&name);
            let _ = std::fs::remove_dir_all(&work);
            std::process::exit(130);
        });
    });
}

/// The run inside the namespace: every server in turn, then the table.
fn inside(args: &Args, servers: Vec<Server>, work_dir: PathBuf) -> ExitCode {
    let options = Options {
        phase_seconds: args.phase_seconds,
        settle_seconds: args.settle_seconds,
        servers,
        work_dir,
        vnc_compress_level: args.vnc_compress_level,
    };
    let mut results = Vec::new();
    let mut failed = false;
    for &server in &options.servers {
        progress(&format!("{}: starting", server.name()));
        match bytes::run_server(server, &options) {
            Ok(r) => results.push(r),
            Err(e) => {
                // The other servers' figures are still worth printing.
                eprintln!("bytes: error: {}: {e}", server.name());
                failed = true;
            }
        }
    }
    let table = report::table(&results, options.phase_seconds);
    if args.json {
        eprint!("{table}");
        let json = report::json(&results, options.phase_seconds);
        println!(
            "{}",
            serde_json::to_string_pretty(&json).expect("json of figures")
        );
    } else {
        print!("{table}");
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
