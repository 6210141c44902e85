//! Headless Chromium for the browser-attendee tests: `tests/browser/driver.mjs`
//! (playwright-core from `web/node_modules`, Debian's `/usr/bin/chromium`)
//! run as a child, one JSON command per line.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

/// The repository's root (the parent of `tests/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Installs `web/node_modules` from `web/package-lock.json` when missing
/// (`make deps` does it too), so the bundle can be rebuilt and Chromium driven.
pub fn ensure_web_modules() {
    let web = repo_root().join("web");
    if web.join("node_modules/.package-lock.json").exists() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&web)
        .status()
        .expect("run npm ci in web/ (is Node.js installed?)");
    assert!(status.success(), "npm ci in web/ failed");
}

/// Panics with the install hint when Debian's Chromium is missing.
pub fn require_chromium() {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: `make test` installs it (apt-get install chromium chromium-driver)"
    );
}

/// One headless Chromium with one page.
pub struct Browser {
    child: Child,
    stdin: ChildStdin,
    answers: mpsc::Receiver<String>,
}

impl Browser {
    /// Starts Chromium through the driver.
    pub fn start() -> Browser {
        Browser::start_with_args(&[])
    }

    /// Starts Chromium with `args` after the driver's own (e.g. a
    /// certificate to trust).
    pub fn start_with_args(args: &[String]) -> Browser {
        Browser::start_in(None, args)
    }

    /// Starts Chromium with `args`, inside the network namespace `netns`
    /// when given (`ip netns exec`: the driver and Chromium see only that
    /// namespace's network; needs root).
    pub fn start_in(netns: Option<&str>, args: &[String]) -> Browser {
        ensure_web_modules();
        require_chromium();
        let root = repo_root();
        let mut command = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "node"]);
                c
            }
            None => Command::new("node"),
        };
        let mut child = command
            .arg(root.join("tests/browser/driver.mjs"))
            .env("TANDEM_CHROMIUM_ARGS", json!(args).to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node tests/browser/driver.mjs");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Browser {
            child,
            stdin,
            answers,
        }
    }

    /// Runs one command; `Err` with the driver's message when it failed.
    pub fn try_cmd(&mut self, cmd: Value) -> Result<Value, String> {
        writeln!(self.stdin, "{cmd}").expect("write to the driver");
        self.stdin.flush().expect("flush the driver's stdin");
        let line = self
            .answers
            .recv_timeout(Duration::from_secs(90))
            .unwrap_or_else(|_| panic!("the browser driver did not answer {cmd}"));
        let v: Value = serde_json::from_str(&line).expect("driver answers JSON");
        match v.get("ok") {
            Some(ok) => Ok(ok.clone()),
            None => Err(v.to_string()),
        }
    }

    /// Runs one command, panicking on failure.
    pub fn cmd(&mut self, cmd: Value) -> Value {
        let c = cmd.to_string();
        self.try_cmd(cmd)
            .unwrap_or_else(|e| panic!("browser command {c} failed: {e}"))
    }

    /// Opens `url`. Chromium aborts a navigation with
    /// `ERR_NETWORK_CHANGED` when the host's interfaces change, which other
    /// tests do in parallel (network namespaces, veth pairs): that one error
    /// is retried, twice at most; any other fails the test.
    pub fn open(&mut self, url: &str) {
        let cmd = json!({"op": "open", "url": url});
        for attempt in 0..3 {
            match self.try_cmd(cmd.clone()) {
                Ok(_) => return,
                Err(e) if attempt < 2 && e.contains("ERR_NETWORK_CHANGED") => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("browser command {cmd} failed: {e}"),
            }
        }
    }

    /// Waits until the page expression `expr` is truthy; its value.
    pub fn wait(&mut self, expr: &str, timeout: Duration) -> Value {
        self.cmd(json!({"op": "wait", "expr": expr, "timeout_ms": timeout.as_millis() as u64}))
    }

    /// The page's `window.tandem.state`.
    pub fn state(&mut self) -> Value {
        self.eval("window.tandem.state")
    }

    /// Evaluates an (async) expression in the page.
    pub fn eval(&mut self, expr: &str) -> Value {
        self.cmd(json!({"op": "eval", "expr": expr}))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"op": "quit"}));
        let _ = self.stdin.flush();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
