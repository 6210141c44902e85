//! The bytes bench's output: one table with the servers side by side (how
//! to read it: the `bytes` module's documentation, repeated as a legend
//! under the table) and the same figures as JSON.

use std::fmt::Write as _;

use super::workload::Phase;
use super::{median, Server, ServerFigures};

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Tandem's median over the lowest peer median of `phase`, when Tandem and
/// at least one peer ran and no peer sent nothing.
pub fn ratio_to_best_peer(results: &[ServerFigures], phase: Phase) -> Option<f64> {
    let median_of = |r: &ServerFigures| {
        r.phases
            .iter()
            .find(|p| p.phase == phase)
            .map(|p| median(&p.samples))
    };
    let tandem = results
        .iter()
        .find(|r| r.server == Server::Tandem)
        .and_then(median_of)?;
    let best = results
        .iter()
        .filter(|r| r.server != Server::Tandem)
        .filter_map(median_of)
        .min_by(f64::total_cmp)?;
    (best > 0.0).then(|| tandem / best)
}

const GROUP: usize = 38;

/// The side-by-side table with its legend.
pub fn table(results: &[ServerFigures], phase_seconds: u64) -> String {
    let mut out = String::new();
    let with_ratio = results.iter().any(|r| r.server == Server::Tandem) && results.len() > 1;
    let _ = writeln!(
        out,
        "bytes on the namespace's lo (both directions, headers included), one attendee, {phase_seconds} s phases"
    );
    let _ = write!(out, "{:<8}", "");
    for r in results {
        let _ = write!(out, "| {:<width$}", r.server.name(), width = GROUP - 2);
    }
    if with_ratio {
        let _ = write!(out, "| tandem/best");
    }
    out.push('\n');
    let _ = write!(out, "{:<8}", "phase");
    for _ in results {
        let _ = write!(
            out,
            "| {:>10} {:>12} {:>5} {:>5} ",
            "B/s med", "total B", "srv%", "X%"
        );
    }
    if with_ratio {
        let _ = write!(out, "| {:>11}", "(median)");
    }
    out.push('\n');
    for phase in Phase::ALL {
        let _ = write!(out, "{:<8}", phase.name());
        for r in results {
            match r.phases.iter().find(|p| p.phase == phase) {
                Some(p) => {
                    let _ = write!(
                        out,
                        "| {:>10} {:>12} {:>5.1} {:>5.1} ",
                        thousands(p.median().round() as u64),
                        thousands(p.total_bytes),
                        p.server_cpu,
                        p.x_cpu
                    );
                }
                None => {
                    let _ = write!(out, "| {:<width$}", "-", width = GROUP - 2);
                }
            }
        }
        if with_ratio {
            match ratio_to_best_peer(results, phase) {
                Some(v) => {
                    let _ = write!(out, "| {v:>11.2}");
                }
                None => {
                    let _ = write!(out, "| {:>11}", "-");
                }
            }
        }
        out.push('\n');
    }
    out.push('\n');
    for r in results {
        let _ = writeln!(out, "{}: {}", r.server.name(), r.version);
        let _ = writeln!(out, "  {}", r.encodings);
    }
    out.push('\n');
    for phase in Phase::ALL {
        let _ = writeln!(out, "{:<8}{}", phase.name(), phase.description());
    }
    out.push_str(
        "B/s med: median of per-second byte samples on lo; total B: bytes over the phase;\n\
         srv%/X%: CPU of the server process / of Xvfb in % of one core; tandem/best: tandem's\n\
         median over the lowest peer median (< 1: tandem sends less).\n",
    );
    out
}

/// The same figures as JSON.
pub fn json(results: &[ServerFigures], phase_seconds: u64) -> serde_json::Value {
    let servers: Vec<_> = results
        .iter()
        .map(|r| {
            let phases: Vec<_> = r
                .phases
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "phase": p.phase.name(),
                        "seconds": p.seconds,
                        "median_bytes_per_second": p.median(),
                        "total_bytes": p.total_bytes,
                        "total_packets": p.total_packets,
                        "per_second_bytes": p.samples,
                        "server_cpu_percent": p.server_cpu,
                        "xvfb_cpu_percent": p.x_cpu,
                        "workload_actions": p.actions,
                    })
                })
                .collect();
            serde_json::json!({
                "server": r.server.name(),
                "version": r.version,
                "encodings": r.encodings,
                "phases": phases,
            })
        })
        .collect();
    let ratios: serde_json::Map<_, _> = Phase::ALL
        .iter()
        .map(|&p| {
            (
                p.name().to_owned(),
                ratio_to_best_peer(results, p).map_or(serde_json::Value::Null, |v| v.into()),
            )
        })
        .collect();
    serde_json::json!({
        "counter": "tx_bytes of lo in a private network namespace (both directions, headers included)",
        "phase_seconds": phase_seconds,
        "servers": servers,
        "tandem_over_best_peer_median": ratios,
    })
}

#[cfg(test)]
mod tests {
    use super::super::PhaseFigures;
    use super::*;

    fn figures(server: Server, medians: [u64; 4]) -> ServerFigures {
        ServerFigures {
            server,
            version: "v".into(),
            encodings: "e".into(),
            phases: Phase::ALL
                .iter()
                .zip(medians)
                .map(|(&phase, m)| PhaseFigures {
                    phase,
                    seconds: 3.0,
                    samples: vec![m, m + 10, m.saturating_sub(10)],
                    total_bytes: 3 * m,
                    total_packets: m / 100,
                    server_cpu: 1.0,
                    x_cpu: 2.0,
                    actions: 0,
                })
                .collect(),
        }
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_679_798), "1,679,798");
    }

    #[test]
    fn ratio_is_against_the_lowest_peer_and_absent_when_a_peer_sent_nothing() {
        let results = [
            figures(Server::Tandem, [40, 4000, 100_000, 50_000]),
            figures(Server::X11vnc, [0, 2000, 400_000, 100_000]),
            figures(Server::X0tigervnc, [10, 1000, 200_000, 200_000]),
        ];
        assert_eq!(ratio_to_best_peer(&results, Phase::Idle), None);
        assert_eq!(ratio_to_best_peer(&results, Phase::Typing), Some(4.0));
        assert_eq!(ratio_to_best_peer(&results, Phase::Scroll), Some(0.5));
        assert_eq!(ratio_to_best_peer(&results, Phase::Move), Some(0.5));
        assert_eq!(ratio_to_best_peer(&results[..1], Phase::Move), None);
        let t = table(&results, 3);
        assert!(t.contains("100,000"), "{t}");
        assert!(t
            .lines()
            .any(|l| l.starts_with("scroll") && l.ends_with("0.50")));
        let j = json(&results, 3);
        assert_eq!(
            j["servers"][1]["phases"][2]["median_bytes_per_second"],
            400_000.0
        );
        assert_eq!(j["tandem_over_best_peer_median"]["typing"], 4.0);
        assert!(j["tandem_over_best_peer_median"]["idle"].is_null());
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(&[3, 1, 2]), 2.0);
        assert_eq!(median(&[4, 1, 2, 3]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
