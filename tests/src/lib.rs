//! Harness for end-to-end tests: real `tandem` processes on loopback.
//!
//! A [`NodeProcess`] runs `tandem node` with a config written by the test,
//! parses what the node prints at start (QUIC address, connection string,
//! password) and kills the node when dropped. [`view`] runs `tandem view`.
//! [`xserver::XServer`] runs a private Xvfb with X clients for the X11 tests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tandem_codec::Frame;

pub mod browser;
pub mod channel_viewer;
pub mod xserver;

/// Path of the `tandem` binary built next to this test binary
/// (`make test` builds it first), or `$TANDEM_BIN`.
pub fn tandem_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TANDEM_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> -> target/<profile>/tandem
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let bin = profile_dir.join("tandem");
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build --workspace` (make test does)",
        bin.display()
    );
    bin
}

/// A free UDP port on loopback (for restarts that must keep their address).
/// Taken below the kernel's ephemeral range (32768 and up), so no other
/// process's port-0 bind can take it between this check and its use; a
/// per-process offset and a counter keep parallel tests apart.
pub fn free_udp_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = (std::process::id() % 500) * 20;
    for _ in 0..2000 {
        let port = 20000 + (base + NEXT.fetch_add(1, Ordering::Relaxed)) % 10000;
        if std::net::UdpSocket::bind(("127.0.0.1", port as u16)).is_ok() {
            return port as u16;
        }
    }
    panic!("no free loopback udp port in 20000..30000")
}

/// A running `tandem node`.
pub struct NodeProcess {
    child: Child,
    /// Everything the node printed on stdout until it was ready.
    pub banner: Vec<String>,
    /// The startup invitation's connection string.
    pub ticket: String,
    /// Its password.
    pub password: String,
    /// Bound QUIC address.
    pub quic_addr: String,
    /// Admin API base URL (`http://host:port`).
    pub admin_url: String,
    stderr_path: PathBuf,
}

impl NodeProcess {
    /// Writes `config` to `dir/node.toml` and starts a node on it; waits
    /// until it has printed its invitation.
    pub fn start(dir: &Path, config: &str) -> NodeProcess {
        Self::start_until(dir, config, "join with:")
    }

    /// Like [`NodeProcess::start`], ready once a line starts with `ready`
    /// (a node without a session prints no invitation: use `admin API on`).
    /// `ticket` and `password` are empty when the node printed none.
    pub fn start_until(dir: &Path, config: &str, ready: &str) -> NodeProcess {
        Self::start_with_env(dir, config, ready, &[])
    }

    /// Like [`NodeProcess::start_until`], with extra environment variables.
    pub fn start_with_env(
        dir: &Path,
        config: &str,
        ready: &str,
        env: &[(&str, &str)],
    ) -> NodeProcess {
        let config_path = dir.join("node.toml");
        std::fs::write(&config_path, config).expect("write config");
        let stderr_path = log_path(dir, "node");
        let stderr = std::fs::File::create(&stderr_path).expect("node log");
        let mut child = Command::new(tandem_bin())
            .arg("node")
            .arg("--config")
            .arg(&config_path)
            .env("TANDEM_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start tandem node");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut banner = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let done = line.starts_with(ready);
                    banner.push(line);
                    if done {
                        break;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                    panic!("node did not become ready; stdout {banner:?}; stderr:\n{log}");
                }
            }
        }
        let field = |prefix: &str| {
            banner
                .iter()
                .find_map(|l| l.strip_prefix(prefix))
                .unwrap_or_else(|| panic!("no {prefix:?} line in {banner:?}"))
                .trim()
                .to_owned()
        };
        let optional = |prefix: &str| {
            banner
                .iter()
                .find_map(|l| l.strip_prefix(prefix))
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        };
        let ticket = optional("connection string:");
        let password = optional("password:");
        let quic_addr = banner[0]
            .split_whitespace()
            .nth(6)
            .expect("address in the first line")
            .to_owned();
        let admin_url = field("admin API on");
        NodeProcess {
            child,
            banner,
            ticket,
            password,
            quic_addr,
            admin_url,
            stderr_path,
        }
    }

    /// The node's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the node in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// The startup sharing session's id, from the node's banner.
    pub fn session_id(&self) -> String {
        self.banner
            .iter()
            .find_map(|l| l.strip_prefix("sharing session "))
            .and_then(|l| l.split_whitespace().next())
            .expect("a sharing session line")
            .to_owned()
    }

    /// An admin API call on this node with `token`: (status, body).
    pub fn api(&self, token: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        http_request(
            method,
            &format!("{}{path}", self.admin_url),
            Some(token),
            body,
        )
    }

    /// The session's `framebuffer.png` from the admin API, decoded.
    pub fn framebuffer(&self, token: &str, session: &str) -> Frame {
        let url = format!(
            "{}/api/v1/sessions/{session}/framebuffer.png",
            self.admin_url
        );
        let (status, png) = http_request_bytes("GET", &url, Some(token), None);
        assert_eq!(status, 200, "GET {url}");
        decode_png(&png)
    }

    /// What the node logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// `kill -9`.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit; returns whether it exited with 0.
    pub fn terminate(mut self) -> bool {
        // The workspace denies unsafe code, so signal through kill(1) rather than libc.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        false
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds (user + system) used so far by process `pid` (0 when it is gone).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after ")".
    (ticks(11) + ticks(12)) / 100.0
}

/// A fresh log file path in `dir` for a child process (`PREFIX-NANOS.log`).
pub fn log_path(dir: &Path, prefix: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    dir.join(format!("{prefix}-{nanos}.log"))
}

/// Runs `tandem` with these arguments to its end.
pub fn tandem(args: &[&str]) -> Output {
    Command::new(tandem_bin())
        .args(args)
        .output()
        .expect("run tandem")
}

/// `GET url` over plain HTTP/1.1 on loopback; returns (status, body).
pub fn http_get(url: &str) -> (u16, String) {
    http_request("GET", url, None, None)
}

/// One HTTP/1.1 request on loopback, with an optional bearer token and JSON
/// body; returns (status, body).
pub fn http_request(
    method: &str,
    url: &str,
    token: Option<&str>,
    json_body: Option<&str>,
) -> (u16, String) {
    let (status, body) = http_request_bytes(method, url, token, json_body);
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Like [`http_request`], with the body as bytes (PNG snapshots).
pub fn http_request_bytes(
    method: &str,
    url: &str,
    token: Option<&str>,
    json_body: Option<&str>,
) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut stream = std::net::TcpStream::connect(host).expect("connect to admin api");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = json_body.unwrap_or("");
    if json_body.is_some() {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    write!(stream, "{head}\r\n{body}").unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw.get(split + 4..).unwrap_or_default();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_vec()
    };
    (status, body)
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = body.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&body[..eol]);
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        let rest = &body[eol + 2..];
        if n == 0 || rest.len() < n {
            break;
        }
        out.extend_from_slice(&rest[..n]);
        body = rest[n..].strip_prefix(b"\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// The value of an unlabelled sample in Prometheus text.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {name}"))
}

/// Runs `tandem view` with these arguments to its end.
pub fn view(args: &[&str]) -> Output {
    Command::new(tandem_bin())
        .arg("view")
        .args(args)
        .output()
        .expect("run tandem view")
}

/// Starts `tandem view` in the background.
pub fn spawn_view(args: &[&str]) -> Child {
    Command::new(tandem_bin())
        .arg("view")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tandem view")
}

/// A `tandem view` running in the background whose stdout lines are
/// collected as they come (a window viewer runs until told to stop).
/// Killed when dropped.
pub struct ViewerProcess {
    child: Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stderr_path: PathBuf,
}

impl ViewerProcess {
    /// Starts `tandem view ARGS...` with these extra environment variables;
    /// stderr goes to a file in `dir`.
    pub fn spawn(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> ViewerProcess {
        let stderr_path = log_path(dir, "viewer");
        let stderr = std::fs::File::create(&stderr_path).expect("viewer log");
        let mut child = Command::new(tandem_bin())
            .arg("view")
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start tandem view");
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        ViewerProcess {
            child,
            lines,
            stderr_path,
        }
    }

    /// Every line printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits up to `timeout` for a line containing `needle`; returns it.
    pub fn wait_line(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.lines().into_iter().find(|l| l.contains(needle)) {
                return l;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader thread catch the last lines.
                std::thread::sleep(Duration::from_millis(200));
                if let Some(l) = self.lines().into_iter().find(|l| l.contains(needle)) {
                    return l;
                }
                panic!(
                    "viewer exited ({status}) without printing {needle:?}\n{}",
                    self.report()
                );
            }
            assert!(
                Instant::now() < deadline,
                "viewer printed no {needle:?} within {timeout:?}\n{}",
                self.report()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits up to `timeout` for the viewer to exit; its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "viewer still running after {timeout:?}\n{}",
                self.report()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Asks the viewer to stop (SIGTERM) and waits for it.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.wait_exit(Duration::from_secs(10));
    }

    /// Its stdout and stderr so far, for assertion messages.
    pub fn report(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            self.lines().join("\n"),
            std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
        )
    }
}

impl Drop for ViewerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Counts from the viewer's summary line
/// `received N updates (K key frames, C catch-ups), last seq S`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewSummary {
    /// Updates applied.
    pub updates: u64,
    /// Key frames.
    pub key_frames: u64,
    /// Catch-ups.
    pub catch_ups: u64,
    /// Last sequence number.
    pub last_seq: u64,
}

/// Parses the summary line out of a viewer's stdout.
pub fn summary(stdout: &str) -> ViewSummary {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("received "))
        .unwrap_or_else(|| panic!("no summary in viewer output:\n{stdout}"));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("number"))
        .collect();
    ViewSummary {
        updates: nums[0],
        key_frames: nums[1],
        catch_ups: nums[2],
        last_seq: nums[3],
    }
}

/// Reads a PNG written by the viewer.
pub fn read_png(path: &Path) -> Frame {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    decode_png(&bytes)
}

/// Decodes an RGBA PNG (a viewer snapshot or the admin frame-buffer route).
pub fn decode_png(bytes: &[u8]) -> Frame {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .expect("png header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("png data");
    assert_eq!(info.color_type, png::ColorType::Rgba, "viewer writes RGBA");
    Frame::from_rgba8(info.width, info.height, &buf[..info.buffer_size()]).expect("frame")
}

/// Number of pixels that differ between two frames of the same size.
pub fn differing_pixels(a: &Frame, b: &Frame) -> usize {
    assert_eq!(
        (a.width(), a.height()),
        (b.width(), b.height()),
        "frame sizes differ"
    );
    a.pixels()
        .iter()
        .zip(b.pixels())
        .filter(|(x, y)| x != y)
        .count()
}

/// Text of a process output, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
