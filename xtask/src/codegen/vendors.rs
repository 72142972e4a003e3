//! `data/openai_compatible_providers.json` → `crates/tollgate-provider-openai/src/vendors_generated.rs`.
//!
//! One JSON row per OpenAI-compatible vendor becomes one `VendorRow`. The rows are validated
//! (known fields only, types checked, names unique), sorted by name so the adapter can binary
//! search them, and written in a fixed layout: the same data always gives the same bytes. The
//! table carries `#[rustfmt::skip]` and the lines outside it are already rustfmt's output, so
//! `cargo fmt` never changes the file and `codegen --check` stays byte-exact.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};

use super::Generated;

const DATA: &str = "data/openai_compatible_providers.json";
const OUT: &str = "crates/tollgate-provider-openai/src/vendors_generated.rs";

const FIELDS: &[&str] = &[
    "name",
    "base_url",
    "api_key_env",
    "api_base_env",
    "auth",
    "param_renames",
    "unsupported_params",
    "notes",
];

struct Row {
    name: String,
    base_url: Option<String>,
    api_key_env: Vec<String>,
    api_base_env: Vec<String>,
    auth: Auth,
    param_renames: Vec<(String, String)>,
    unsupported_params: Vec<String>,
    notes: String,
}

enum Auth {
    Bearer,
    None,
    Other(String),
}

pub(crate) fn generate(root: &Path) -> Result<Generated> {
    let data_path = root.join(DATA);
    let text =
        std::fs::read_to_string(&data_path).with_context(|| format!("reading {}", data_path.display()))?;
    let value: Value = serde_json::from_str(&text).with_context(|| format!("parsing {DATA}"))?;
    let Value::Array(items) = value else { bail!("{DATA}: expected a JSON array of provider objects") };
    let mut rows = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let row = parse_row(item).with_context(|| format!("{DATA}: entry {i}"))?;
        rows.push(row);
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    for w in rows.windows(2) {
        if w[0].name == w[1].name {
            bail!("{DATA}: provider `{}` appears twice", w[0].name);
        }
    }
    Ok(Generated { path: root.join(OUT), contents: render(&rows) })
}

fn parse_row(v: &Value) -> Result<Row> {
    let Value::Object(o) = v else { bail!("expected an object") };
    for key in o.keys() {
        if !FIELDS.contains(&key.as_str()) {
            bail!("unknown field `{key}` (known: {})", FIELDS.join(", "));
        }
    }
    let name = string(o, "name")?;
    let ctx = || format!("provider `{name}`");
    if name.is_empty() || name.contains(['/', ' ']) {
        bail!("invalid provider name `{name}`");
    }
    let base_url = match o.get("base_url") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.starts_with("http://") || s.starts_with("https://") => {
            Some(s.trim_end_matches('/').to_owned())
        }
        Some(other) => bail!("{}: `base_url` must be null or an http(s) URL, not {other}", ctx()),
    };
    let auth_text = string(o, "auth").with_context(ctx)?;
    let auth = if auth_text == "bearer" {
        Auth::Bearer
    } else if auth_text == "none" || auth_text.starts_with("none ") {
        Auth::None
    } else if auth_text.is_empty() {
        bail!("{}: `auth` is empty", ctx());
    } else {
        Auth::Other(auth_text)
    };
    let param_renames = match o.get("param_renames") {
        None => Vec::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) if !s.is_empty() && !k.is_empty() => Ok((k.clone(), s.clone())),
                _ => bail!("{}: `param_renames.{k}` must be a non-empty string", ctx()),
            })
            .collect::<Result<_>>()?,
        Some(_) => bail!("{}: `param_renames` must be an object", ctx()),
    };
    Ok(Row {
        api_key_env: strings(o, "api_key_env").with_context(ctx)?,
        api_base_env: strings(o, "api_base_env").with_context(ctx)?,
        unsupported_params: strings(o, "unsupported_params").with_context(ctx)?,
        notes: match o.get("notes") {
            None => String::new(),
            Some(_) => string(o, "notes").with_context(ctx)?,
        },
        name,
        base_url,
        auth,
        param_renames,
    })
}

fn string(o: &Map<String, Value>, key: &str) -> Result<String> {
    match o.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => bail!("`{key}` must be a string, not {other}"),
        None => bail!("missing `{key}`"),
    }
}

fn strings(o: &Map<String, Value>, key: &str) -> Result<Vec<String>> {
    match o.get(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                Value::String(s) if !s.is_empty() => Ok(s.clone()),
                other => bail!("`{key}` must hold non-empty strings, not {other}"),
            })
            .collect(),
        Some(other) => bail!("`{key}` must be an array of strings, not {other}"),
    }
}

/// A Rust string literal (`Debug` escapes quotes, backslashes and control characters).
fn lit(s: &str) -> String {
    format!("{s:?}")
}

fn list(items: &[String]) -> String {
    let parts: Vec<String> = items.iter().map(|s| lit(s)).collect();
    format!("&[{}]", parts.join(", "))
}

fn render(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(&format!("// @generated by `cargo xtask codegen` from {DATA}; do not edit.\n"));
    out.push_str("\nuse crate::vendor::{VendorAuth, VendorRow};\n\n");
    out.push_str(&format!("/// Every OpenAI-compatible vendor ({} rows), sorted by name.\n", rows.len()));
    out.push_str("#[rustfmt::skip]\npub static VENDORS: &[VendorRow] = &[\n");
    for r in rows {
        let base = r.base_url.as_deref().map_or_else(|| "None".to_owned(), |b| format!("Some({})", lit(b)));
        let auth = match &r.auth {
            Auth::Bearer => "VendorAuth::Bearer".to_owned(),
            Auth::None => "VendorAuth::None".to_owned(),
            Auth::Other(d) => format!("VendorAuth::Other({})", lit(d)),
        };
        let renames: Vec<String> =
            r.param_renames.iter().map(|(a, b)| format!("({}, {})", lit(a), lit(b))).collect();
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "    VendorRow {{\n        \
             name: {},\n        \
             base_url: {base},\n        \
             api_key_env: {},\n        \
             api_base_env: {},\n        \
             auth: {auth},\n        \
             param_renames: &[{}],\n        \
             unsupported_params: {},\n        \
             notes: {},\n    \
             }},\n",
            lit(&r.name),
            list(&r.api_key_env),
            list(&r.api_base_env),
            renames.join(", "),
            list(&r.unsupported_params),
            lit(&r.notes),
        );
    }
    out.push_str("];\n");
    out
}
