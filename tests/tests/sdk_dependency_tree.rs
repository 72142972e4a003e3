//! A library user who enables only the `openai` feature gets no server, database or telemetry code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

#[test]
fn facade_with_only_openai_has_no_server_db_or_telemetry_crates() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--package",
            "tollgate",
            "--no-default-features",
            "--features",
            "openai",
            "--edges",
            "normal,build",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("cargo tree runs");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = tree.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(names.contains(&"tollgate-provider-openai"), "the openai adapter is in the tree");
    assert!(names.contains(&"reqwest"), "the transport is in the tree");
    for forbidden in [
        "axum",
        "sea-orm",
        "sqlx",
        "redis",
        "opentelemetry",
        "tracing-subscriber",
        "openssl-sys",
        "aws-lc-rs",
        "native-tls",
    ] {
        assert!(!names.contains(&forbidden), "`{forbidden}` is in the openai-only SDK tree");
    }
}
