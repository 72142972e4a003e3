//! The generated tables match the committed data (`cargo xtask codegen --check`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

#[test]
fn generated_code_is_fresh() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    // A separate target dir: the outer `cargo test` may still hold the main one's lock.
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("xtask-target");
    let out = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--package", "xtask", "--", "codegen", "--check"])
        .env("CARGO_TARGET_DIR", target)
        .current_dir(root)
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "`cargo xtask codegen --check` failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
