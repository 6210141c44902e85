//! A private X server for a test: Xvfb on a display number nobody uses, and
//! X clients (xterm, xclock, xdotool ...) started on it, all killed on drop.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running Xvfb. Dropping it kills the server and every client started
/// through [`XServer::spawn`].
pub struct XServer {
    server: Child,
    display: String,
    clients: Vec<Child>,
}

impl XServer {
    /// Starts Xvfb with one `width`x`height` screen at depth 24.
    ///
    /// Display numbers are probed from a per-process offset so parallel tests
    /// (and parallel test binaries) rarely collide; a collision only costs a
    /// retry on the next number.
    pub fn start(width: u32, height: u32) -> XServer {
        assert!(
            which("Xvfb"),
            "Xvfb is not installed: `make test` installs it (apt-get install xvfb)"
        );
        let base = 100 + (std::process::id() % 400) * 8;
        let mut last_error = String::new();
        for n in base..base + 400 {
            let socket = format!("/tmp/.X11-unix/X{n}");
            let lock = format!("/tmp/.X{n}-lock");
            if Path::new(&socket).exists() || Path::new(&lock).exists() {
                continue;
            }
            let display = format!(":{n}");
            let mut server = Command::new("Xvfb")
                .arg(&display)
                .args(["-screen", "0", &format!("{width}x{height}x24")])
                .args(["-nolisten", "tcp", "-noreset"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start Xvfb");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(Some(_)) = server.try_wait() {
                    let mut err = String::new();
                    if let Some(mut e) = server.stderr.take() {
                        use std::io::Read;
                        let _ = e.read_to_string(&mut err);
                    }
                    last_error = err;
                    break;
                }
                if Path::new(&socket).exists() && xdpyinfo_ok(&display) {
                    // Xvfb's stderr is no longer needed; keep it from filling.
                    drop(server.stderr.take());
                    return XServer {
                        server,
                        display,
                        clients: Vec::new(),
                    };
                }
                if Instant::now() > deadline {
                    let _ = server.kill();
                    let _ = server.wait();
                    panic!("Xvfb {display} did not come up in 20 s");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("no free X display number: {last_error}");
    }

    /// The display name, e.g. `:117`.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Starts an X client on this display; it is killed with the server.
    pub fn spawn(&mut self, program: &str, args: &[&str]) -> u32 {
        let child = Command::new(program)
            .args(args)
            .env("DISPLAY", &self.display)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        let pid = child.id();
        self.clients.push(child);
        pid
    }

    /// Runs a short X command (xdotool, xwininfo ...) on this display to its end.
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        Command::new(program)
            .args(args)
            .env("DISPLAY", &self.display)
            .output()
            .unwrap_or_else(|e| panic!("run {program}: {e}"))
    }

    /// `xdotool ARGS...`, asserting success; returns its stdout.
    pub fn xdotool(&self, args: &[&str]) -> String {
        let out = self.run("xdotool", args);
        assert!(
            out.status.success(),
            "xdotool {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until a window whose WM_CLASS or name matches `pattern` is
    /// mapped (as `xdotool search --sync` would), returning its id.
    pub fn wait_window(&self, pattern: &str) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.run(
                "xdotool",
                &["search", "--onlyvisible", "--classname", pattern],
            );
            let ids: Vec<u32> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect();
            if let Some(id) = ids.last() {
                return *id;
            }
            assert!(
                Instant::now() < deadline,
                "no window {pattern:?} on {} after 20 s",
                self.display
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for XServer {
    fn drop(&mut self) {
        for c in &mut self.clients {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn xdpyinfo_ok(display: &str) -> bool {
    // xdpyinfo (x11-utils) answers once the server accepts clients; without
    // it, the socket's existence is the best sign there is.
    if !which("xdpyinfo") {
        return true;
    }
    Command::new("xdpyinfo")
        .env("DISPLAY", display)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Whether `program` is on the PATH.
pub fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}
