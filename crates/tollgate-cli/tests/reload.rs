//! `tollgate serve` reloads its config file: when the file changes, and on SIGHUP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] functions

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_tollgate");

fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn group(name: &str) -> String {
    format!("  - model_name: {name}\n    litellm_params: {{model: mock/x}}\n")
}

/// The value of `"addr":"…"` in a JSON log line.
fn addr_field(line: &str) -> Option<String> {
    let key = "\"addr\":\"";
    let rest = &line[line.find(key)? + key.len()..];
    rest.find('"').map(|j| rest[..j].to_owned())
}

/// Kills the server if the test panics, so no orphaned `tollgate serve` keeps the test binary's
/// output pipe open.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `/v1/models` until `pred` holds (reload timing depends on the file poll interval and
/// machine load; log order between the poll and SIGHUP is not fixed).
fn models_eventually(addr: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let models = http_get(addr, "/v1/models");
        if pred(&models) || std::time::Instant::now() > deadline {
            return models;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(unix)]
#[test]
fn serve_reloads_on_change_and_on_sighup() {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tollgate-cli-reload.yaml");
    std::fs::write(&path, format!("model_list:\n{}", group("first"))).unwrap();
    let mut child = KillOnDrop(
        Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&path)
            .args(["--host", "127.0.0.1", "--port", "0", "--log-format", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id();
    // Log lines arrive on a channel so every wait has a deadline and a panic never blocks on
    // the pipe.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let next_line = |what: &str| -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(what) => return line,
                Ok(_) => {}
                Err(e) => panic!("no log line containing {what:?}: {e}"),
            }
        }
    };
    let addr = addr_field(&next_line("\"addr\"")).unwrap();
    assert!(http_get(&addr, "/v1/models").contains("\"first\""));

    // The file changes: picked up by the watcher.
    std::fs::write(&path, format!("model_list:\n{}{}", group("first"), group("second"))).unwrap();
    next_line("config reloaded");
    let models = models_eventually(&addr, |m| m.contains("\"second\""));
    assert!(models.contains("\"second\""), "{models}");

    // An invalid file is refused, with the path of the problem; the old config serves on.
    std::fs::write(&path, "model_list:\n  - model_name: broken\n    litellm_params: {}\n").unwrap();
    let refused = next_line("config reload rejected");
    assert!(refused.contains("model_list[0].litellm_params.model"), "{refused}");
    assert!(http_get(&addr, "/v1/models").contains("\"second\""));

    // SIGHUP reloads whatever the file holds now (the server keeps running).
    std::fs::write(&path, format!("model_list:\n{}", group("third"))).unwrap();
    let status = Command::new("kill").args(["-HUP", &pid.to_string()]).status().unwrap();
    assert!(status.success());
    // (The poll may reload the new file first; the signal is still handled, not fatal.)
    next_line("SIGHUP: reloading the config");
    let models = models_eventually(&addr, |m| m.contains("\"third\"") && !m.contains("\"second\""));
    assert!(models.contains("\"third\"") && !models.contains("\"second\""), "{models}");

    let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    assert!(status.success());
    assert_eq!(child.0.wait().unwrap().code(), Some(0));
}
