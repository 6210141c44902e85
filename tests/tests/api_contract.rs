//! The admin API keeps the contract its OpenAPI document states, checked from
//! outside: `openapi-spec-validator` on the served document, then
//! schemathesis (every check, `ignored_auth` included, a fixed seed) against
//! a real `tandem node` process.
//!
//! Both tools come from `tests/api/requirements.txt` (every package pinned),
//! installed by `make deps` into `target/venv`; `TANDEM_VENV` points
//! elsewhere. Strings are generated as ASCII because the API's length limits
//! are in bytes and JSON Schema counts characters: with ASCII the two agree,
//! so a generated value is valid exactly when the schema says so.

use std::path::PathBuf;
use std::process::Command;

use tandem_tests::{http_get, text, NodeProcess};

const TOKEN: &str = "api-contract-test-token-0123456789";

/// Examples per operation and phase: enough to reach every documented
/// status, small enough to finish in a couple of minutes on two cores.
const MAX_EXAMPLES: &str = "12";
/// Fixed, so a failure is reproduced by running the test again.
const SEED: &str = "1";

fn venv_bin(name: &str) -> PathBuf {
    let venv = std::env::var_os("TANDEM_VENV").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
                .join("venv")
        },
        PathBuf::from,
    );
    let bin = venv.join("bin").join(name);
    assert!(
        bin.exists(),
        "{} is missing: `make deps` creates the virtualenv from tests/api/requirements.txt",
        bin.display()
    );
    bin
}

fn start(dir: &std::path::Path) -> NodeProcess {
    let config = format!(
        r#"data_dir = "{}"
quic_listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
admin_token = "{TOKEN}"
[source]
width = 320
height = 200
seed = 3
[invitation]
password = "contract"
"#,
        dir.join("data").display()
    );
    NodeProcess::start(dir, &config)
}

#[test]
fn the_served_openapi_document_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let (status, doc) = node.api(TOKEN, "GET", "/api/v1/openapi.json", None);
    assert_eq!(status, 200, "{doc}");
    let path = dir.path().join("openapi.json");
    std::fs::write(&path, &doc).unwrap();
    let out = Command::new(venv_bin("openapi-spec-validator"))
        .arg(&path)
        .output()
        .expect("run openapi-spec-validator");
    assert!(out.status.success(), "{}", text(&out));
}

/// Operations left out of the run (`--exclude-path` below).
const EXCLUDED: usize = 1;

#[test]
fn schemathesis_finds_no_contract_failure() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let hooks = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("api");
    let report_path = dir.path().join("schemathesis.ndjson");
    let out = Command::new(venv_bin("schemathesis"))
        .args([
            "run",
            &format!("{}/api/v1/openapi.json", node.admin_url),
            "--header",
            &format!("Authorization: Bearer {TOKEN}"),
            "--checks",
            "all",
            // Every valid body makes the node dial the address it names: fuzzed,
            // that is a dial to random hosts (answered 502/504 by design).
            // tests/tests/reverse_connect.rs drives the route instead.
            "--exclude-path",
            "/api/v1/connect-to",
            "--seed",
            SEED,
            "--max-examples",
            MAX_EXAMPLES,
            "--generation-codec",
            "ascii",
            "--workers",
            "1",
            "--request-timeout",
            "5",
            "--no-color",
            "--report",
            "ndjson",
            "--report-ndjson-path",
            report_path.to_str().unwrap(),
        ])
        .env("PYTHONPATH", &hooks)
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("TANDEM_ADMIN_URL", &node.admin_url)
        .env("TANDEM_ADMIN_TOKEN", TOKEN)
        .current_dir(dir.path())
        .output()
        .expect("run schemathesis");
    let report = text(&out);
    assert!(out.status.success(), "schemathesis failed:\n{report}");
    let (_, doc) = node.api(TOKEN, "GET", "/api/v1/openapi.json", None);
    let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| {
            let methods = ["get", "put", "post", "delete", "patch", "options", "head", "trace"];
            methods.iter().filter(|m| item.get(**m).is_some()).count()
        })
        .sum::<usize>()
        // schemathesis does not test the document it was given.
        - 1;
    assert!(
        report.contains(&format!(
            "{} selected / {operations} total",
            operations - EXCLUDED
        )),
        "every one of the {operations} operations but the excluded one tested: {report}"
    );
    // The checks that ran, from its event log: `ignored_auth` (requests
    // without or with a wrong token get 401) and `unsupported_method`
    // (405 with Allow) among them.
    let events = std::fs::read_to_string(&report_path).unwrap();
    for check in [
        "ignored_auth",
        "unsupported_method",
        "negative_data_rejection",
        "positive_data_acceptance",
        "response_schema_conformance",
        "status_code_conformance",
    ] {
        assert!(
            events.contains(&format!("\"name\":\"{check}\"")),
            "{check} did not run:\n{report}"
        );
    }
    // And the node is still serving.
    let (status, _) = http_get(&format!("{}/healthz", node.admin_url));
    assert_eq!(status, 200, "node log:\n{}", node.log());
}
