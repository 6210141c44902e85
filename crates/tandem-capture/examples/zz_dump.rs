//! temporary
use std::io::Write;
use tandem_capture::SyntheticDesktop;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let w: u32 = args[1].parse().unwrap();
    let h: u32 = args[2].parse().unwrap();
    let tick: u64 = args[3].parse().unwrap();
    let d = SyntheticDesktop::new(7, w, h);
    let t = std::time::Instant::now();
    let n = 50;
    for i in 0..n {
        std::hint::black_box(d.render(tick + i));
    }
    eprintln!("render {:?}/frame", t.elapsed() / n as u32);
    let f = d.render(tick);
    let mut out = std::fs::File::create(&args[4]).unwrap();
    write!(out, "P6\n{} {}\n255\n", w, h).unwrap();
    let mut buf = Vec::new();
    for p in f.pixels() {
        buf.extend_from_slice(&[(p >> 16) as u8, (p >> 8) as u8, *p as u8]);
    }
    out.write_all(&buf).unwrap();
}
