//! # xtask
//!
//! Maintainer tasks, run as `cargo xtask <task>` (see `.cargo/config.toml`):
//!
//! * `codegen [--check]`: regenerate the Rust tables that are kept as data in `data/` (the
//!   OpenAI-compatible vendor rows, the model price table). `--check` fails when the committed
//!   generated files are stale; a test runs it.
//! * `update-prices <file>`: replace `data/model_prices_and_context_window.json` with a newer file
//!   of the same schema, report models added/removed and prices moved, and regenerate.
//! * `bench [--quick] [--json FILE]` / `bench --soak [--requests N]`: the gateway benchmark
//!   against a floor proxy and an instant mock upstream (`docs/benchmarks.md`).
//!
//! xtask may depend on anything; nothing may depend on xtask.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

mod bench;
mod codegen;
mod update_prices;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(task) = args.first() else {
        print_help();
        return Ok(());
    };
    let rest = &args[1..];
    match task.as_str() {
        "codegen" => codegen::run(&workspace_root()?, rest.iter().any(|a| a == "--check")),
        "update-prices" => update_prices::run(&workspace_root()?, rest),
        "bench" => bench::run(&workspace_root()?, rest),
        "help" | "--help" | "-h" => {
            print_help();
            Ok(())
        }
        other => bail!("unknown task `{other}`; run `cargo xtask help`"),
    }
}

fn print_help() {
    println!(
        "cargo xtask <task>\n\n\
         tasks:\n  \
         codegen [--check]   regenerate generated tables from data/ (--check: fail if stale)\n  \
         update-prices FILE  replace the model price snapshot with FILE, report changes, regenerate\n  \
         bench [--quick] [--json FILE]        gateway benchmark vs a floor proxy (docs/benchmarks.md)\n  \
         bench --soak [--requests N]          long mixed run; reports tollgate's RSS growth\n"
    );
}

/// The workspace root: the parent of this crate's manifest directory.
fn workspace_root() -> Result<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).context("xtask must live one level below the workspace root")
}
