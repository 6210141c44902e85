//! Harness for virtual-channel tests: a `tandem view --channel` process
//! whose stdin the test writes and whose stdout (the channel's data) and
//! stderr (status lines) it reads, and a reader of the admin API's
//! server-sent event streams.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::tandem_bin;

/// A running `tandem view ... --channel NAME`.
pub struct ChannelViewer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr_path: PathBuf,
}

impl ChannelViewer {
    /// Starts `tandem view ARGS...` with piped stdin and stdout.
    pub fn spawn(dir: &Path, args: &[&str]) -> ChannelViewer {
        let stderr_path = crate::log_path(dir, "channel-viewer");
        let stderr = std::fs::File::create(&stderr_path).expect("viewer log");
        let mut child = Command::new(tandem_bin())
            .arg("view")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start tandem view");
        let stdin = child.stdin.take();
        let out = child.stdout.take().expect("piped stdout");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let sink = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        ChannelViewer {
            child,
            stdin,
            stdout,
            stderr_path,
        }
    }

    /// Writes one line (a message to the sharer) on the viewer's stdin.
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    /// Closes the viewer's stdin.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Lines of channel data printed so far.
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// Status lines printed so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Waits for `n` lines of channel data.
    pub fn wait_stdout(&mut self, n: usize, timeout: Duration) -> Vec<String> {
        self.wait("stdout lines", timeout, |v| {
            let lines = v.stdout();
            (lines.len() >= n).then_some(lines)
        })
    }

    /// Waits for a status line containing `needle`; returns it.
    pub fn wait_stderr(&mut self, needle: &str, timeout: Duration) -> String {
        self.wait(needle, timeout, |v| {
            v.stderr()
                .lines()
                .find(|l| l.contains(needle))
                .map(str::to_owned)
        })
    }

    fn wait<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Self) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = check(self) {
                return v;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                if let Some(v) = check(self) {
                    return v;
                }
                panic!("viewer exited ({status}) before {what}\n{}", self.report());
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {timeout:?}\n{}",
                self.report()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The attendee id from the "connected ... as attendee N" line.
    pub fn attendee_id(&mut self, timeout: Duration) -> u64 {
        let line = self.wait_stderr("as attendee", timeout);
        line.split_whitespace()
            .skip_while(|w| *w != "attendee")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no attendee id in {line:?}"))
    }

    /// stdout and stderr, for assertion messages.
    pub fn report(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            self.stdout().join("\n"),
            self.stderr()
        )
    }
}

impl Drop for ChannelViewer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `data:` lines of a server-sent event stream, read by a thread.
pub struct SseReader {
    data: Arc<Mutex<Vec<String>>>,
}

impl SseReader {
    /// `GET url` with the bearer token; keeps reading until the test ends.
    pub fn open(url: &str, token: &str) -> SseReader {
        let rest = url.strip_prefix("http://").expect("http url");
        let (host, path) = rest
            .split_once('/')
            .map(|(h, p)| (h.to_owned(), format!("/{p}")))
            .expect("url with a path");
        let mut stream = std::net::TcpStream::connect(&host).expect("connect to admin api");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        // The node subscribes before it answers: once the status line is
        // here, no event the test causes next can be missed.
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap().take(u64::MAX));
        let mut status = String::new();
        reader
            .read_line(&mut status)
            .expect("the event stream's status line");
        assert!(status.starts_with("HTTP/1.1 200"), "events: {status}");
        stream.set_read_timeout(None).unwrap();
        let data = Arc::new(Mutex::new(Vec::new()));
        let sink = data.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if let Some(d) = line.trim_end().strip_prefix("data: ") {
                    sink.lock().unwrap().push(d.to_owned());
                }
                line.clear();
            }
        });
        SseReader { data }
    }

    /// Waits for a `data:` line whose JSON satisfies `pred`.
    pub fn wait(
        &self,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self
                .data
                .lock()
                .unwrap()
                .iter()
                .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
                .find(|v| pred(v));
            if let Some(v) = found {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "no matching event within {timeout:?}; got {:?}",
                self.data.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every `data:` line so far, parsed.
    pub fn all(&self) -> Vec<serde_json::Value> {
        self.data
            .lock()
            .unwrap()
            .iter()
            .filter_map(|d| serde_json::from_str(d).ok())
            .collect()
    }
}
