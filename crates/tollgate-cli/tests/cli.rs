//! The built `tollgate` binary: `check-config` exit codes and output, and `serve` end to end
//! (listens, answers, exits 0 on SIGTERM after draining).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] functions

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_tollgate");

fn write_config(name: &str, text: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("tollgate-cli-{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn example_config() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/config.example.yaml"))
}

#[test]
fn check_config_accepts_a_valid_file_and_lists_unsupported_keys() {
    let path = write_config(
        "valid",
        "model_list:\n  - model_name: m\n    litellm_params: {model: mock/m}\nlitellm_settings:\n  success_callback: [langfuse]\n",
    );
    let out = Command::new(BIN).arg("check-config").arg(&path).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("ok (1 model group(s): m)"), "{stdout}");
    assert!(stdout.contains("litellm_settings.success_callback"), "{stdout}");

    let out = Command::new(BIN).arg("check-config").arg(example_config()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn check_config_rejects_an_invalid_file_with_paths() {
    let path = write_config(
        "invalid",
        "model_list:\n  - model_name: m\n    litellm_params: {model: openai/gpt-4o, rpm: many, api_key: os.environ/TOLLGATE_CLI_TEST_UNSET_VAR}\n",
    );
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&path)
        .env_remove("TOLLGATE_CLI_TEST_UNSET_VAR")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("{}: invalid configuration", path.display())), "{stderr}");
    assert!(stderr.contains("model_list[0].litellm_params.rpm: invalid type"), "{stderr}");
    assert!(
        stderr.contains("model_list[0].litellm_params.api_key: environment variable `TOLLGATE_CLI_TEST_UNSET_VAR` is not set"),
        "{stderr}"
    );

    let out = Command::new(BIN).arg("check-config").arg("/nonexistent/tollgate.yaml").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the file"));
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[cfg(unix)]
#[test]
fn serve_answers_and_exits_cleanly_on_sigterm() {
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(example_config())
        .args(["--host", "127.0.0.1", "--port", "0", "--log-format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    // The start-up log line names the bound address.
    let addr = loop {
        let line = lines.next().expect("the server logs before exiting").unwrap();
        if let Some(addr) = addr_field(&line) {
            break addr;
        }
    };
    let live = http_get(&addr, "/health/liveliness");
    assert!(live.starts_with("HTTP/1.1 200"), "{live}");
    let models = http_get(&addr, "/v1/models");
    assert!(models.contains("\"gpt-4o-mini\""), "{models}");

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let code = child.wait().unwrap();
    assert_eq!(code.code(), Some(0));
}

/// The value of `"addr":"…"` in a JSON log line (no JSON dependency needed for one field).
fn addr_field(line: &str) -> Option<String> {
    let key = "\"addr\":\"";
    let rest = &line[line.find(key)? + key.len()..];
    rest.find('"').map(|j| rest[..j].to_owned())
}
