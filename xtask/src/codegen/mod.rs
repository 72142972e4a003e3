//! `cargo xtask codegen`: every generator writes Rust source from a file in `data/`.
//! Generated files start with a "generated, do not edit" line naming the generator and the data.

use std::path::Path;

use anyhow::{Result, bail};

pub(crate) mod pricing;
mod vendors;

/// One generated file: where it goes and what it should contain.
pub(crate) struct Generated {
    pub(crate) path: std::path::PathBuf,
    pub(crate) contents: String,
}

pub(crate) fn run(root: &Path, check: bool) -> Result<()> {
    let files = vec![vendors::generate(root)?, pricing::generate(root)?];
    let mut stale = Vec::new();
    for f in files {
        let current = std::fs::read_to_string(&f.path).unwrap_or_default();
        if current == f.contents {
            continue;
        }
        if check {
            stale.push(f.path.display().to_string());
        } else {
            std::fs::write(&f.path, &f.contents)?;
            println!("wrote {}", f.path.display());
        }
    }
    if !stale.is_empty() {
        bail!("generated files are stale (run `cargo xtask codegen`):\n  {}", stale.join("\n  "));
    }
    Ok(())
}
