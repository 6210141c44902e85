//! An operator's first hour: `tandem node --check-config`, the join command
//! the node prints (pasted into a shell without `$USER`), the systemd unit
//! (`systemd-analyze verify`), and the Grafana dashboard (every panel's
//! PromQL through `promtool check rules`, then a real Prometheus scraping a
//! real node answers every panel's query with data after a scripted session).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tandem_tests::{http_get, tandem, tandem_bin, text, view, NodeProcess};

const TOKEN: &str = "operations-test-token-0123456789";
const PASSWORD: &str = "operations";

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn node_config(dir: &Path) -> String {
    format!(
        r#"data_dir = "{}"
quic_listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
admin_token = "{TOKEN}"
[source]
width = 256
height = 160
seed = 4
[session]
frame_interval_ms = 40
[invitation]
password = "{PASSWORD}"
"#,
        dir.join("data").display()
    )
}

#[test]
fn check_config_accepts_a_good_config_and_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, node_config(dir.path())).unwrap();
    let out = tandem(&["node", "--config", good.to_str().unwrap(), "--check-config"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "config ok");
    // Nothing was started or created.
    assert!(!dir.path().join("data").exists());
    // The shipped config is valid too.
    let shipped = repo("configs/node.toml");
    let out = tandem(&[
        "node",
        "--config",
        shipped.to_str().unwrap(),
        "--check-config",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    for (name, body, needle) in [
        ("typo.toml", "quic_listn = \"127.0.0.1:1\"\n", "quic_listn"),
        (
            "range.toml",
            "[session]\nframe_interval_ms = 1\n",
            "frame_interval_ms",
        ),
        (
            "syntax.toml",
            "[source\nkind = 1\n",
            "invalid configuration",
        ),
        (
            "level.toml",
            "[session]\ndefault_control_level = \"interactive\"\n",
            "never interactive",
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        let out = tandem(&["node", "--config", path.to_str().unwrap(), "--check-config"]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{name}: one line: {err}");
        assert!(err.contains(needle), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}: {}", text(&out));
    }
    // Flags are checked with the file: a missing file, a bad override.
    let out = tandem(&[
        "node",
        "--config",
        "/nonexistent/tandem.toml",
        "--check-config",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = tandem(&[
        "node",
        "--config",
        good.to_str().unwrap(),
        "--cluster-listen",
        "127.0.0.1:7946",
        "--check-config",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("secret"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_printed_join_command_works_pasted_in_a_shell_without_user() {
    let dir = tempfile::tempdir().unwrap();
    // Ready once the indented command after "join with:" is printed.
    let node = NodeProcess::start_until(dir.path(), &node_config(dir.path()), "  ");
    let at = node
        .banner
        .iter()
        .position(|l| l == "join with:")
        .expect("a join line");
    let command = node
        .banner
        .get(at + 1)
        .expect("the command")
        .trim()
        .to_owned();
    assert!(!command.contains('$'), "no shell variable in {command:?}");
    assert!(!command.contains("--name"), "--name defaults: {command:?}");
    // Pasted as is into sh with an empty environment (no USER, HOME or
    // LOGNAME), as in a container's root shell.
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(&command)
        .env_clear()
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{command}\n{}", text(&out));
    assert!(dir.path().join("desktop.png").exists());
    // The attendee got a name from the password database (or the host name).
    let (status, body) = node.api(TOKEN, "GET", "/api/v1/attendees?state=all", None);
    assert_eq!(status, 200);
    let list: Value = serde_json::from_str(&body).unwrap();
    let user = list[0]["user"].as_str().unwrap_or_default().to_owned();
    assert!(!user.is_empty(), "{body}");
    let login = String::from_utf8_lossy(&Command::new("id").arg("-un").output().unwrap().stdout)
        .trim()
        .to_owned();
    assert_eq!(user, login, "the login name of the password database");
}

#[test]
fn the_systemd_unit_verifies() {
    // The unit names /usr/local/bin/tandem; verify a copy naming the built binary.
    let unit = std::fs::read_to_string(repo("configs/packaging/tandem.service")).unwrap();
    for needle in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "--check-config",
    ] {
        assert!(unit.contains(needle), "the unit lacks {needle}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tandem.service");
    let bin = tandem_bin();
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/tandem", bin.to_str().unwrap()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze is installed by `make test` (Debian package systemd)");
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("tandem.service"),
        "warnings about the unit: {report}"
    );
}

/// Every `expr` of every panel of the dashboard, with the panel's title.
fn dashboard_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo("configs/grafana/tandem-dashboard.json")).unwrap();
    let dash: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut out = Vec::new();
    for panel in dash["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().unwrap().to_owned();
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        for t in targets {
            out.push((title.clone(), t["expr"].as_str().unwrap().to_owned()));
        }
    }
    out
}

/// The dashboard's `$instance` variable, as Grafana expands "All".
fn expand(expr: &str) -> String {
    expr.replace("$instance", ".*")
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// Percent-encodes a query parameter value.
fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn every_dashboard_panel_passes_promtool_and_has_data_from_a_real_prometheus() {
    let queries = dashboard_queries();
    let titles: Vec<&str> = queries.iter().map(|(t, _)| t.as_str()).collect();
    for topic in [
        "Egress",
        "Attendees by control level",
        "Update latency",
        "Capture and encode time",
        "Joins by result",
        "Relay links",
        "Errors",
    ] {
        assert!(titles.contains(&topic), "no {topic} panel in {titles:?}");
    }

    // promtool: every query as a recording rule.
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("dashboard-rules.yml");
    let mut file = std::fs::File::create(&rules).unwrap();
    writeln!(file, "groups:\n  - name: tandem-dashboard\n    rules:").unwrap();
    for (i, (_, expr)) in queries.iter().enumerate() {
        writeln!(
            file,
            "      - record: tandem_dashboard:panel_query_{i}\n        expr: {}",
            serde_json::to_string(&expand(expr)).unwrap()
        )
        .unwrap();
    }
    drop(file);
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .expect("promtool is installed by `make test` (Debian package prometheus)");
    assert!(out.status.success(), "{}", text(&out));

    // A node, and Prometheus scraping it every second.
    let node = NodeProcess::start(dir.path(), &node_config(dir.path()));
    let target = node.admin_url.trim_start_matches("http://").to_owned();
    let port = free_tcp_port();
    let prom_config = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: tandem\n    static_configs:\n      - targets: [\"{target}\"]\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let prometheus = Prometheus(
        Command::new("prometheus")
            .arg(format!("--config.file={}", prom_config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus is installed by `make test` (Debian package prometheus)"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get_opt(&format!("{base}/-/ready")) != Some(200) {
        assert!(Instant::now() < deadline, "prometheus never became ready");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The scripted session: two attendees watch, one with a wrong password
    // is turned away.
    let out = view(&[
        &node.ticket,
        "--name",
        "wrong",
        "--password",
        "not-it",
        "--headless",
        "--seconds",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let watchers: Vec<Child> = ["ann", "bob"]
        .iter()
        .map(|name| {
            Command::new(tandem_bin())
                .args([
                    "view",
                    &node.ticket,
                    "--name",
                    name,
                    "--password",
                    PASSWORD,
                    "--headless",
                    "--seconds",
                    "8",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();

    // Every query answers with data while they watch and just after.
    let mut missing: Vec<(String, String)> = queries.clone();
    let deadline = Instant::now() + Duration::from_secs(40);
    while !missing.is_empty() {
        missing.retain(|(_, expr)| !has_data(&base, &expand(expr)));
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "panels without data: {missing:?}\nprometheus log:\n{}",
            std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    for mut w in watchers {
        let status = w.wait().unwrap();
        assert!(status.success(), "a watcher failed");
    }
    // And the egress it shows is real traffic.
    let egress = query(&base, &expand(&queries[0].1));
    let value: f64 = egress["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(value > 0.0, "egress {egress}");
    drop(prometheus);
}

/// The status of `GET url`, or `None` while nothing listens there.
fn http_get_opt(url: &str) -> Option<u16> {
    let host = url.trim_start_matches("http://").split('/').next()?;
    std::net::TcpStream::connect(host).ok()?;
    Some(http_get(url).0)
}

fn query(base: &str, expr: &str) -> Value {
    let (status, body) = http_get(&format!("{base}/api/v1/query?query={}", encode(expr)));
    assert_eq!(status, 200, "{expr}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Whether the query returns at least one series with a number (a
/// quantile of an empty window is NaN: no data to draw).
fn has_data(base: &str, expr: &str) -> bool {
    let v = query(base, expr);
    assert_eq!(v["status"], "success", "{expr}: {v}");
    v["data"]["result"].as_array().is_some_and(|r| {
        r.iter().any(|series| {
            series["value"][1]
                .as_str()
                .and_then(|n| n.parse::<f64>().ok())
                .is_some_and(f64::is_finite)
        })
    })
}
