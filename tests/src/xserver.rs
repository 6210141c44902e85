//! A private X server for a test: Xvfb on a display number nobody uses, and
//! X clients (xterm, xclock, xdotool ...) started on it, all killed on drop;
//! windows read back with `GetImage` (x11rb).

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tandem_codec::Frame;

/// A running Xvfb. Dropping it kills the server and every client started
/// through [`XServer::spawn`].
pub struct XServer {
    server: Child,
    display: String,
    clients: Vec<Child>,
    _config_dir: Option<tempfile::TempDir>,
}

/// An Xorg configuration with the dummy driver, no input devices and two
/// modes, for RandR tests.
const XORG_DUMMY_CONF: &str = r#"Section "ServerFlags"
  Option "AutoAddDevices" "false"
  Option "AutoEnableDevices" "false"
  Option "DontVTSwitch" "true"
EndSection
Section "Device"
  Identifier "dummy"
  Driver "dummy"
  VideoRam 65536
EndSection
Section "Monitor"
  Identifier "monitor"
  HorizSync 5.0-1000.0
  VertRefresh 5.0-200.0
  Modeline "1024x768" 63.50 1024 1072 1176 1328 768 771 775 798
  Modeline "800x600" 38.25 800 832 912 1024 600 603 607 624
EndSection
Section "Screen"
  Identifier "screen"
  Device "dummy"
  Monitor "monitor"
  DefaultDepth 24
  SubSection "Display"
    Depth 24
    Modes "1024x768" "800x600"
    Virtual 1024 768
  EndSubSection
EndSection
"#;

impl XServer {
    /// Starts Xvfb with one `width`x`height` screen at depth 24.
    ///
    /// Display numbers are probed from a per-process offset so parallel tests
    /// (and parallel test binaries) rarely collide; a collision only costs a
    /// retry on the next number.
    pub fn start(width: u32, height: u32) -> XServer {
        Self::start_with(width, height, &[])
    }

    /// Like [`start`](Self::start), with extra Xvfb arguments (e.g.
    /// `-extension MIT-SHM` to turn shared memory off).
    pub fn start_with(width: u32, height: u32, extra: &[&str]) -> XServer {
        assert!(
            which("Xvfb"),
            "Xvfb is not installed: `make test` installs it (apt-get install xvfb)"
        );
        let screen = format!("{width}x{height}x24");
        Self::launch("Xvfb", None, |display| {
            let mut cmd = Command::new("Xvfb");
            cmd.arg(display)
                .args(["-screen", "0", &screen])
                .args(["-nolisten", "tcp", "-noreset"])
                .args(extra);
            cmd
        })
    }

    /// Starts Xorg with the dummy video driver: unlike Xvfb, its screen can
    /// be resized with RandR (`xrandr -s 800x600`) and given monitors
    /// (`xrandr --setmonitor`). Modes offered: 1024x768 (the start) and 800x600.
    pub fn start_xorg_dummy() -> XServer {
        assert!(
            Path::new("/usr/lib/xorg/modules/drivers/dummy_drv.so").exists(),
            "the Xorg dummy driver is not installed: `make test` installs it (apt-get install xserver-xorg-video-dummy)"
        );
        let dir = tempfile::tempdir().expect("temp dir for the Xorg config");
        let config = dir.path().join("dummy.conf");
        std::fs::write(&config, XORG_DUMMY_CONF).expect("write the Xorg config");
        let log = dir.path().join("xorg.log");
        Self::launch("Xorg", Some(dir), |display| {
            let mut cmd = Command::new("Xorg");
            cmd.arg(display)
                .arg("-config")
                .arg(&config)
                .arg("-logfile")
                .arg(&log)
                .args(["-noreset", "-nolisten", "tcp"]);
            cmd
        })
    }

    fn launch(
        name: &str,
        config_dir: Option<tempfile::TempDir>,
        command: impl Fn(&str) -> Command,
    ) -> XServer {
        // Tests of one binary share a process id: a counter keeps them apart.
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let base = 100 + (std::process::id() % 400) * 8;
        let mut last_error = String::new();
        for _ in 0..400 {
            let n = base + NEXT.fetch_add(1, Ordering::Relaxed) % 4000;
            let socket = format!("/tmp/.X11-unix/X{n}");
            let lock = format!("/tmp/.X{n}-lock");
            if Path::new(&socket).exists() || Path::new(&lock).exists() {
                continue;
            }
            let display = format!(":{n}");
            let mut server = command(&display)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("start {name}: {e}"));
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
                // The lock file names the server that owns the display: ours,
                // or one that won a race for the same number.
                let owner = std::fs::read_to_string(&lock)
                    .ok()
                    .and_then(|pid| pid.trim().parse::<u32>().ok());
                if owner.is_some_and(|pid| pid != server.id()) {
                    let _ = server.kill();
                    let _ = server.wait();
                    last_error = format!("display {display} taken by another server");
                    break;
                }
                if owner == Some(server.id())
                    && Path::new(&socket).exists()
                    && xdpyinfo_ok(&display)
                {
                    // Xvfb's stderr is no longer needed; keep it from filling.
                    drop(server.stderr.take());
                    return XServer {
                        server,
                        display,
                        clients: Vec::new(),
                        _config_dir: config_dir,
                    };
                }
                if Instant::now() > deadline {
                    let _ = server.kill();
                    let _ = server.wait();
                    panic!("{name} {display} did not come up in 20 s");
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

    /// Process id of the X server (to measure its CPU).
    pub fn server_pid(&self) -> u32 {
        self.server.id()
    }

    /// Starts an X client on this display; it is killed with the server.
    pub fn spawn(&mut self, program: &str, args: &[&str]) -> u32 {
        self.spawn_env(program, args, &[])
    }

    /// Starts an X client with extra environment variables.
    pub fn spawn_env(&mut self, program: &str, args: &[&str], env: &[(&str, &str)]) -> u32 {
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
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

    /// The whole screen as `xwd -root` dumps it (an independent reader of
    /// the X server's pixels), top byte cleared like Tandem's frames.
    pub fn xwd_root(&self) -> Frame {
        let out = self.run("xwd", &["-root", "-silent"]);
        assert!(
            out.status.success(),
            "xwd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        parse_xwd(&out.stdout)
    }

    /// Dumps the screen until two dumps a moment apart are equal (the
    /// display is still), and returns that picture.
    pub fn still_screen(&self) -> Frame {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut previous = self.xwd_root();
        loop {
            std::thread::sleep(Duration::from_millis(400));
            let now = self.xwd_root();
            if now == previous {
                return now;
            }
            assert!(Instant::now() < deadline, "the display never became still");
            previous = now;
        }
    }

    /// Geometry (x, y, width, height, border included) of a window, from xwininfo.
    pub fn window_rect(&self, id: u32) -> (i64, i64, u32, u32) {
        let out = self.run("xwininfo", &["-id", &id.to_string()]);
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |name: &str| -> i64 {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {name} in xwininfo output:\n{text}"))
        };
        // xwininfo's upper-left corner is the outer corner of the border.
        let border = field("Border width:");
        (
            field("Absolute upper-left X:"),
            field("Absolute upper-left Y:"),
            (field("Width:") + 2 * border) as u32,
            (field("Height:") + 2 * border) as u32,
        )
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

impl XServer {
    fn connect(&self) -> x11rb::rust_connection::RustConnection {
        let (conn, _) = x11rb::connect(Some(&self.display))
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.display));
        conn
    }

    /// Size of a window, as the X server has it.
    pub fn window_size(&self, window: u32) -> (u32, u32) {
        use x11rb::protocol::xproto::ConnectionExt as _;
        let conn = self.connect();
        let g = conn
            .get_geometry(window)
            .expect("send GetGeometry")
            .reply()
            .expect("GetGeometry");
        (u32::from(g.width), u32::from(g.height))
    }

    /// What a window shows, read back with `GetImage` (depth 24, 32 bits
    /// per pixel), as 0x00RRGGBB pixels.
    pub fn window_image(&self, window: u32) -> Frame {
        use x11rb::connection::Connection as _;
        use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat};
        let conn = self.connect();
        let g = conn
            .get_geometry(window)
            .expect("send GetGeometry")
            .reply()
            .expect("GetGeometry");
        let image = conn
            .get_image(ImageFormat::Z_PIXMAP, window, 0, 0, g.width, g.height, !0)
            .expect("send GetImage")
            .reply()
            .expect("GetImage");
        let format = conn
            .setup()
            .pixmap_formats
            .iter()
            .find(|f| f.depth == image.depth)
            .expect("pixmap format of the window's depth");
        assert_eq!(
            (image.depth, format.bits_per_pixel),
            (24, 32),
            "expected a depth-24 window with 32-bit pixels"
        );
        assert_eq!(
            conn.setup().image_byte_order,
            x11rb::protocol::xproto::ImageOrder::LSB_FIRST
        );
        let (w, h) = (u32::from(g.width), u32::from(g.height));
        let stride = (w as usize * 32).div_ceil(usize::from(format.scanline_pad))
            * usize::from(format.scanline_pad)
            / 8;
        let mut pixels = Vec::with_capacity((w * h) as usize);
        for row in image.data.chunks(stride).take(h as usize) {
            pixels.extend(
                row[..w as usize * 4]
                    .chunks_exact(4)
                    .map(|p| u32::from_le_bytes([p[0], p[1], p[2], p[3]]) & 0x00ff_ffff),
            );
        }
        Frame::from_pixels(w, h, pixels).expect("frame of the window's size")
    }

    /// The title of a window (`xdotool getwindowname`).
    pub fn window_name(&self, window: u32) -> String {
        self.xdotool(&["getwindowname", &window.to_string()])
            .trim()
            .to_owned()
    }
}

impl Drop for XServer {
    fn drop(&mut self) {
        for c in &mut self.clients {
            let _ = c.kill();
            let _ = c.wait();
        }
        // SIGTERM lets the server remove its lock file and socket.
        let _ = Command::new("kill")
            .args(["-TERM", &self.server.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.server.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
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

/// Parses an XWD dump of a 24/32-bit true-colour ZPixmap (what `xwd -root`
/// writes on Xvfb) into a frame.
pub fn parse_xwd(data: &[u8]) -> Frame {
    let field = |i: usize| -> u32 {
        u32::from_be_bytes(data[i * 4..i * 4 + 4].try_into().expect("4 bytes"))
    };
    let header_size = field(0) as usize;
    let format = field(2);
    let (width, height) = (field(4), field(5));
    let byte_order = field(7);
    let bits_per_pixel = field(11);
    let bytes_per_line = field(12) as usize;
    let ncolors = field(19) as usize;
    assert_eq!(format, 2, "xwd: ZPixmap expected");
    assert_eq!(bits_per_pixel, 32, "xwd: 32 bits per pixel expected");
    let start = header_size + ncolors * 12;
    let mut pixels = Vec::with_capacity((width * height) as usize);
    for y in 0..height as usize {
        let row =
            &data[start + y * bytes_per_line..start + y * bytes_per_line + width as usize * 4];
        for px in row.chunks_exact(4) {
            let v = if byte_order == 0 {
                u32::from_le_bytes([px[0], px[1], px[2], px[3]])
            } else {
                u32::from_be_bytes([px[0], px[1], px[2], px[3]])
            };
            pixels.push(v & 0x00ff_ffff);
        }
    }
    Frame::from_pixels(width, height, pixels).expect("xwd frame")
}
