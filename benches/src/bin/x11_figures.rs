//! Figures of the X11 backend, printed: full-screen grab rate and CPU per
//! grab at 1920x1080 through MIT-SHM and through GetImage, then the bytes a
//! node sends per second to one attendee on a scripted desktop workload
//! (typing in an xterm, a clock ticking every second, a window moved) at the
//! default frame interval.
//!
//! Needs Xvfb, xterm, xclock and xdotool (`make test` installs them) and a
//! built `tandem` binary: `make x11-figures` builds and runs everything.
//! `TANDEM_BIN` overrides where the binary is looked for.

use std::time::{Duration, Instant};

use tandem_capture::x11::{GrabMode, X11Source};
use tandem_capture::{CaptureSource, Rect};
use tandem_tests::xserver::XServer;
use tandem_tests::{cpu_seconds, http_get, metric, spawn_view, NodeProcess};

const GRABS: u32 = 120;
const WORKLOAD_SECONDS: u64 = 20;

fn grab_figures(x: &XServer, mode: GrabMode, label: &str) {
    let mut source = X11Source::connect(Some(x.display()), mode).expect("connect");
    let screen = Rect::new(0, 0, 1920, 1080);
    source.capture(screen).expect("first grab");
    let (me, server) = (std::process::id(), x.server_pid());
    let (cpu0, xcpu0, t0) = (cpu_seconds(me), cpu_seconds(server), Instant::now());
    for _ in 0..GRABS {
        source.invalidate();
        source.capture(screen).expect("grab");
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds(me) - cpu0;
    let xcpu = cpu_seconds(server) - xcpu0;
    println!(
        "{label:<9} 1920x1080 full grabs: {:6.1} per second, {:6.2} ms wall, {:6.2} ms CPU in tandem + {:6.2} ms in the X server per grab (shm in use: {})",
        f64::from(GRABS) / wall,
        wall * 1000.0 / f64::from(GRABS),
        cpu * 1000.0 / f64::from(GRABS),
        xcpu * 1000.0 / f64::from(GRABS),
        source.uses_shm()
    );
}

fn workload_figures(x: &mut XServer) {
    let dir = std::env::temp_dir().join(format!("tandem-x11-figures-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    x.spawn("xterm", &["-geometry", "100x30+50+50", "-e", "sh"]);
    x.spawn("xclock", &["-update", "1", "-geometry", "200x200+1500+100"]);
    x.spawn("xterm", &["-name", "mover", "-geometry", "40x10+900+600"]);
    let typist = x.wait_window("xterm");
    let mover = x.wait_window("mover");
    x.wait_window("xclock");
    let config = format!(
        "data_dir = \"{}\"\nquic_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n[source]\nkind = \"x11\"\ndisplay = \"{}\"\n[invitation]\npassword = \"figures-pw\"\n",
        dir.join("data").display(),
        x.display()
    );
    let node = NodeProcess::start(&dir, &config);
    let viewer = spawn_view(&[
        &node.ticket,
        "--name",
        "figures",
        "--password",
        "figures",
        "--headless",
        "--seconds",
        &(WORKLOAD_SECONDS + 8).to_string(),
    ]);
    std::thread::sleep(Duration::from_secs(3));
    let metrics = || http_get(&format!("{}/metrics", node.admin_url)).1;
    let before = metrics();
    let cpu0 = cpu_seconds(node.pid());
    let start = Instant::now();
    let mut step = 0u64;
    x.xdotool(&["mousemove", "300", "300"]);
    while start.elapsed() < Duration::from_secs(WORKLOAD_SECONDS) {
        // About ten characters a second, and a line every few seconds.
        x.xdotool(&["type", "--delay", "100", "echo tandem "]);
        if step % 3 == 2 {
            x.xdotool(&["key", "Return"]);
        }
        // The window moves 40 px every two seconds or so.
        let (mx, my) = (900 - 40 * (step % 10) as i64, 600 + 10 * (step % 10) as i64);
        x.xdotool(&[
            "windowmove",
            &mover.to_string(),
            &mx.to_string(),
            &my.to_string(),
        ]);
        step += 1;
    }
    let wall = start.elapsed().as_secs_f64();
    let after = metrics();
    let cpu = cpu_seconds(node.pid()) - cpu0;
    let delta = |name: &str| metric(&after, name) - metric(&before, name);
    println!(
        "workload  {:.0} s (typing ~10 chars/s, xclock -update 1, a window moved every ~2 s) at the default 33 ms interval:",
        wall
    );
    println!(
        "          {:8.0} bytes/s sent to one attendee, {:.1} grabs/s, {:.1} updates/s, node CPU {:.1} %",
        delta("tandem_bytes_sent_total") / wall,
        delta("tandem_frames_captured_total") / wall,
        delta("tandem_updates_published_total") / wall,
        cpu / wall * 100.0
    );
    let _ = typist;
    let _ = viewer.wait_with_output();
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    tandem_benches::use_tandem_beside_this_binary();
    let mut x = XServer::start(1920, 1080);
    x.spawn(
        "xterm",
        &[
            "-geometry",
            "120x40+100+100",
            "-e",
            "sh",
            "-c",
            "ls -la /usr/bin; exec sleep 600",
        ],
    );
    x.wait_window("xterm");
    grab_figures(&x, GrabMode::Auto, "MIT-SHM");
    grab_figures(&x, GrabMode::GetImage, "GetImage");
    drop(x);
    let mut x = XServer::start(1920, 1080);
    workload_figures(&mut x);
}
