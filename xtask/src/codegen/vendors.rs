//! Placeholder replaced by the OpenAI-compatible vendor table generator.
use std::path::Path;

use anyhow::Result;

use super::Generated;

pub(crate) fn generate(root: &Path) -> Result<Generated> {
    let path = root.join("crates/tollgate-provider-openai/src/vendors_generated.rs");
    let contents = std::fs::read_to_string(&path).unwrap_or_default();
    Ok(Generated { path, contents })
}
