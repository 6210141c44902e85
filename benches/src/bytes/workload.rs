//! The scripted desktop of the bytes bench and its four phases.
//!
//! A 1920x1080x24 Xvfb without a window manager and three xterms in
//! DejaVu Sans Mono 10: `typist` (80x24, focused, reads the keyboard into
//! `/dev/null` so only the terminal's echo draws), `scroller` (100x30,
//! prints what the bench writes into a fifo, already full so every new line
//! scrolls it) and `mover` (80x24, a page of text, on top). Every action is
//! deterministic and paced against a fixed schedule (action `i` at
//! `start + i * period`), so each server sees the same desktop history.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tandem_tests::xserver::XServer;

use super::BytesError;
use crate::XorShift;

/// Screen width of the bench desktop.
pub const WIDTH: u32 = 1920;
/// Screen height of the bench desktop.
pub const HEIGHT: u32 = 1080;
/// Rows of the scrolling xterm (it is pre-filled with as many lines).
const SCROLLER_ROWS: u64 = 30;
/// What is typed, over and over (Return included).
const TYPED: &str = "the quick brown fox jumps over the lazy dog 0123456789\n";
/// Window motion per step.
const MOVE_STEP: (i64, i64) = (12, 3);

/// One phase of the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Nothing happens.
    Idle,
    /// 10 keys a second into the focused xterm.
    Typing,
    /// 20 lines a second printed into the full 100x30 xterm.
    Scroll,
    /// The 80x24 xterm moved 20 steps a second, 12 px in x and 3 px in y.
    Move,
}

impl Phase {
    /// The phases in the order they run.
    pub const ALL: [Phase; 4] = [Phase::Idle, Phase::Typing, Phase::Scroll, Phase::Move];

    /// Its name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Typing => "typing",
            Phase::Scroll => "scroll",
            Phase::Move => "move",
        }
    }

    /// What it does, for the table's legend.
    pub fn description(self) -> &'static str {
        match self {
            Phase::Idle => "nothing changes on the screen",
            Phase::Typing => "10 keys/s typed with xdotool into a focused 80x24 xterm",
            Phase::Scroll => "20 lines/s printed into a full 100x30 xterm (scrolls every line)",
            Phase::Move => {
                "an 80x24 xterm moved 20 steps/s by xdotool windowmove (12 px x, 3 px y)"
            }
        }
    }

    /// Time between two actions of the phase.
    fn period(self) -> Option<Duration> {
        match self {
            Phase::Idle => None,
            Phase::Typing => Some(Duration::from_millis(100)),
            Phase::Scroll | Phase::Move => Some(Duration::from_millis(50)),
        }
    }
}

/// A deterministic line of pseudo-words for the scrolling terminal: line
/// number, then lowercase words up to about 90 columns.
pub fn scroll_line(n: u64) -> String {
    let mut rng = XorShift::new(n.wrapping_add(1));
    let mut line = format!("{n:06}");
    let end = 40 + (rng.next_u32() % 50) as usize;
    while line.len() < end {
        line.push(' ');
        let len = 2 + rng.next_u32() % 8;
        for _ in 0..len {
            line.push(char::from(b'a' + (rng.next_u32() % 26) as u8));
        }
    }
    line.truncate(end);
    line
}

/// The xterm arguments every window shares (font, no scroll bar).
fn xterm_args<'a>(name: &'a str, geometry: &'a str) -> Vec<&'a str> {
    vec![
        "-fa",
        "DejaVu Sans Mono",
        "-fs",
        "10",
        "-name",
        name,
        "-geometry",
        geometry,
    ]
}

/// The running desktop. Dropping it stops Xvfb and every X client.
pub struct Desktop {
    x: XServer,
    fifo: File,
    mover: u32,
    mover_rect: (i64, i64, u32, u32),
}

impl Desktop {
    /// Starts Xvfb, the three xterms, fills the scroller, raises the mover
    /// and focuses the typist; `dir` holds the fifo and the mover's text.
    pub fn start(dir: &Path) -> Result<Desktop, BytesError> {
        let mut x = XServer::start(WIDTH, HEIGHT);
        let fifo_path = dir.join("scroll.fifo");
        let _ = std::fs::remove_file(&fifo_path);
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo_path)
            .status()
            .map_err(|e| BytesError::Setup(format!("run mkfifo: {e}")))?;
        if !status.success() {
            return Err(BytesError::Setup(format!(
                "mkfifo {} failed",
                fifo_path.display()
            )));
        }
        let page = dir.join("mover.txt");
        let text: String = (1000..1022)
            .map(|n| {
                let mut l = scroll_line(n);
                l.truncate(78);
                l + "\n"
            })
            .collect();
        std::fs::write(&page, text)
            .map_err(|e| BytesError::Setup(format!("write {}: {e}", page.display())))?;
        let fifo_arg = fifo_path.to_string_lossy().into_owned();
        let page_arg = page.to_string_lossy().into_owned();

        let mut args = xterm_args("typist", "80x24+40+40");
        args.extend(["-e", "sh", "-c", "exec cat > /dev/null"]);
        x.spawn("xterm", &args);
        let mut args = xterm_args("scroller", "100x30+760+40");
        args.extend(["-e", "sh", "-c", "exec cat \"$0\"", &fifo_arg]);
        x.spawn("xterm", &args);
        let mut args = xterm_args("mover", "80x24+200+560");
        args.extend([
            "-e",
            "sh",
            "-c",
            "cat \"$0\"; exec cat > /dev/null",
            &page_arg,
        ]);
        x.spawn("xterm", &args);
        let typist = x.wait_window("typist");
        x.wait_window("scroller");
        let mover = x.wait_window("mover");

        let fifo = open_fifo(&fifo_path)?;
        let mut desktop = Desktop {
            mover_rect: x.window_rect(mover),
            x,
            fifo,
            mover,
        };
        for n in 0..SCROLLER_ROWS {
            desktop.print_line(n)?;
        }
        // The three xterms start together, so the order they map in, and
        // with it which one is on top, varied between runs: the mover then
        // slid under the typist's and the scroller's windows in some runs
        // and over them in others, and the move phase measured a different
        // desktop (a hint half hidden costs pixels). A dragged window is
        // raised in every window manager; here it is raised once.
        desktop.xdotool(&["windowraise", &mover.to_string()])?;
        let (tx, ty, tw, th) = desktop.x.window_rect(typist);
        let (cx, cy) = (tx + i64::from(tw) / 2, ty + i64::from(th) / 2);
        desktop.xdotool(&["mousemove", &cx.to_string(), &cy.to_string()])?;
        desktop.xdotool(&["windowfocus", &typist.to_string()])?;
        // Let the terminals draw what they were given before anything is measured.
        std::thread::sleep(Duration::from_secs(1));
        Ok(desktop)
    }

    /// The display name, e.g. `:117`.
    pub fn display(&self) -> &str {
        self.x.display()
    }

    /// Process id of Xvfb.
    pub fn server_pid(&self) -> u32 {
        self.x.server_pid()
    }

    fn xdotool(&self, args: &[&str]) -> Result<(), BytesError> {
        let out = self.x.run("xdotool", args);
        if out.status.success() {
            Ok(())
        } else {
            Err(BytesError::Setup(format!(
                "xdotool {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    fn print_line(&mut self, n: u64) -> Result<(), BytesError> {
        let line = scroll_line(n) + "\n";
        self.fifo
            .write_all(line.as_bytes())
            .map_err(|e| BytesError::Setup(format!("write to the scrolling xterm's fifo: {e}")))
    }

    /// Runs `phase`'s actions from `start` until `stop` is set; returns how
    /// many actions ran.
    pub fn run_phase(
        &mut self,
        phase: Phase,
        start: Instant,
        stop: &AtomicBool,
    ) -> Result<u64, BytesError> {
        let Some(period) = phase.period() else {
            // Idle: nothing to do, but the phase lasts until it is stopped
            // (the sampler ends early when the driver ends, on an error).
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
            return Ok(0);
        };
        let (mut x, mut y, w, h) = self.mover_rect;
        let (mut dx, mut dy) = MOVE_STEP;
        let keys: Vec<char> = TYPED.chars().collect();
        let mut i: u64 = 0;
        loop {
            let at = start + period * i as u32;
            if let Some(wait) = at.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if stop.load(Ordering::Relaxed) {
                return Ok(i);
            }
            match phase {
                Phase::Idle => {}
                Phase::Typing => {
                    let key = match keys[i as usize % keys.len()] {
                        '\n' => "Return".to_owned(),
                        ' ' => "space".to_owned(),
                        c => c.to_string(),
                    };
                    self.xdotool(&["key", &key])?;
                }
                Phase::Scroll => self.print_line(SCROLLER_ROWS + i)?,
                Phase::Move => {
                    // Bounce off the screen edges.
                    if x + dx < 0 || x + dx + i64::from(w) > i64::from(WIDTH) {
                        dx = -dx;
                    }
                    if y + dy < 0 || y + dy + i64::from(h) > i64::from(HEIGHT) {
                        dy = -dy;
                    }
                    (x, y) = (x + dx, y + dy);
                    let id = self.mover.to_string();
                    self.xdotool(&["windowmove", &id, &x.to_string(), &y.to_string()])?;
                }
            }
            i += 1;
        }
    }
}

/// Opens the fifo for writing once the xterm's `cat` has opened it for
/// reading (non-blocking: a missing reader is an error to retry, not a hang).
fn open_fifo(path: &Path) -> Result<File, BytesError> {
    use std::os::unix::fs::OpenOptionsExt;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
        {
            Ok(f) => return Ok(f),
            Err(e) if Instant::now() < deadline && e.raw_os_error() == Some(libc::ENXIO) => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                return Err(BytesError::Setup(format!(
                    "the scrolling xterm never opened {}: {e}",
                    path.display()
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scroll_lines_are_deterministic_and_fit_the_terminal() {
        for n in 0..500 {
            let line = scroll_line(n);
            assert_eq!(line, scroll_line(n));
            assert!(line.starts_with(&format!("{n:06}")));
            assert!((40..=90).contains(&line.len()), "{line:?}");
            assert!(line.bytes().all(|b| b == b' ' || b.is_ascii_alphanumeric()));
        }
        assert_ne!(scroll_line(1), scroll_line(2));
    }
}
