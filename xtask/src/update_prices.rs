//! `cargo xtask update-prices <file>`: replace the model price snapshot with a newer file of the
//! same schema, report what changed, and regenerate the table.
//!
//! The new file is validated first by building the whole generated table from it in memory (every
//! entry parses, every price converts exactly); only then is `data/model_prices_and_context_window.json`
//! overwritten, byte for byte with the new file. The report lists models added and removed and,
//! for models in both, every price field that moved (`old → new`, exact decimals) and changed
//! token limits. The provenance notice in `data/README.md` stays as it is; update its date and
//! source line by hand when the source changes.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::codegen;
use crate::codegen::pricing::{self, price_fields, yocto_to_decimal};

pub(crate) fn run(root: &Path, args: &[String]) -> Result<()> {
    let [file] = args else { bail!("usage: cargo xtask update-prices <file>") };
    let report = update(&root.join(pricing::DATA), Path::new(file))?;
    print!("{report}");
    codegen::run(root, false)
}

/// Validates `new_file`, diffs it against `data_file`, then copies it over `data_file`.
pub(crate) fn update(data_file: &Path, new_file: &Path) -> Result<Report> {
    let new_text =
        std::fs::read_to_string(new_file).with_context(|| format!("reading {}", new_file.display()))?;
    let new: Value = serde_json::from_str(&new_text)
        .with_context(|| format!("{} is not valid JSON", new_file.display()))?;
    pricing::build(&new)
        .with_context(|| format!("{} does not fit the model price schema", new_file.display()))?;
    let old: Value = match std::fs::read_to_string(data_file) {
        Ok(text) => {
            serde_json::from_str(&text).with_context(|| format!("parsing {}", data_file.display()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Value::Object(Default::default()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", data_file.display())),
    };
    let report = diff(&old, &new);
    std::fs::write(data_file, new_text).with_context(|| format!("writing {}", data_file.display()))?;
    Ok(report)
}

/// One field of one model that changed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) model: String,
    pub(crate) field: String,
    /// `None`: the field was absent on that side.
    pub(crate) old: Option<String>,
    pub(crate) new: Option<String>,
}

/// What an update changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Report {
    pub(crate) added: Vec<String>,
    pub(crate) removed: Vec<String>,
    pub(crate) price_changes: Vec<Change>,
    pub(crate) limit_changes: Vec<Change>,
}

const LIMIT_FIELDS: &[&str] =
    &["max_input_tokens", "max_output_tokens", "mode", "litellm_provider", "tiered_pricing"];

pub(crate) fn diff(old: &Value, new: &Value) -> Report {
    let empty = serde_json::Map::new();
    let old = old.as_object().unwrap_or(&empty);
    let new = new.as_object().unwrap_or(&empty);
    let mut report = Report {
        added: new.keys().filter(|k| !old.contains_key(*k)).cloned().collect(),
        removed: old.keys().filter(|k| !new.contains_key(*k)).cloned().collect(),
        ..Report::default()
    };
    report.added.sort();
    report.removed.sort();
    let mut common: Vec<&String> = old.keys().filter(|k| new.contains_key(*k)).collect();
    common.sort();
    for model in common {
        let (o, n) = (&old[model], &new[model]);
        let (op, np) = (price_fields(o), price_fields(n));
        let fields: BTreeSet<&String> = op.keys().chain(np.keys()).collect();
        for field in fields {
            let (a, b) = (op.get(field), np.get(field));
            if a != b {
                report.price_changes.push(Change {
                    model: model.clone(),
                    field: field.clone(),
                    old: a.map(|y| yocto_to_decimal(*y)),
                    new: b.map(|y| yocto_to_decimal(*y)),
                });
            }
        }
        for field in LIMIT_FIELDS {
            let (a, b) = (o.get(*field), n.get(*field));
            if a != b {
                report.limit_changes.push(Change {
                    model: model.clone(),
                    field: (*field).to_owned(),
                    old: a.map(Value::to_string),
                    new: b.map(Value::to_string),
                });
            }
        }
    }
    report
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".to_owned());
        writeln!(f, "models added: {}", self.added.len())?;
        for m in &self.added {
            writeln!(f, "  + {m}")?;
        }
        writeln!(f, "models removed: {}", self.removed.len())?;
        for m in &self.removed {
            writeln!(f, "  - {m}")?;
        }
        writeln!(f, "prices moved: {}", self.price_changes.len())?;
        for c in &self.price_changes {
            writeln!(f, "  {} {}: {} → {}", c.model, c.field, side(&c.old), side(&c.new))?;
        }
        writeln!(f, "limits and modes changed: {}", self.limit_changes.len())?;
        for c in &self.limit_changes {
            writeln!(f, "  {} {}: {} → {}", c.model, c.field, side(&c.old), side(&c.new))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn old() -> Value {
        json!({
            "sample_spec": {"input_cost_per_token": 0.0},
            "gpt-4o": {"litellm_provider": "openai", "mode": "chat", "max_input_tokens": 128000,
                       "input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05},
            "retired-model": {"litellm_provider": "openai", "input_cost_per_token": 1e-06}
        })
    }

    fn new() -> Value {
        json!({
            "sample_spec": {"input_cost_per_token": 0.0},
            "gpt-4o": {"litellm_provider": "openai", "mode": "chat", "max_input_tokens": 256000,
                       "input_cost_per_token": 2e-06, "output_cost_per_token": 1e-05,
                       "cache_read_input_token_cost": 1.25e-06},
            "brand-new": {"litellm_provider": "anthropic", "input_cost_per_token": 3e-06}
        })
    }

    #[test]
    fn diff_reports_added_removed_and_moved_prices() {
        let r = diff(&old(), &new());
        assert_eq!(r.added, vec!["brand-new".to_owned()]);
        assert_eq!(r.removed, vec!["retired-model".to_owned()]);
        assert_eq!(
            r.price_changes,
            vec![
                Change {
                    model: "gpt-4o".into(),
                    field: "cache_read_input_token_cost".into(),
                    old: None,
                    new: Some("0.00000125".into()),
                },
                Change {
                    model: "gpt-4o".into(),
                    field: "input_cost_per_token".into(),
                    old: Some("0.0000025".into()),
                    new: Some("0.000002".into()),
                },
            ]
        );
        assert_eq!(r.limit_changes.len(), 1);
        assert_eq!(r.limit_changes[0].field, "max_input_tokens");
        let text = r.to_string();
        assert!(text.contains("  gpt-4o input_cost_per_token: 0.0000025 → 0.000002\n"), "{text}");
        assert!(text.contains("  + brand-new\n"));
        assert!(text.contains("  - retired-model\n"));
        assert_eq!(diff(&old(), &old()), Report::default());
    }

    #[test]
    fn update_replaces_a_copy_and_refuses_bad_files() {
        let dir = std::env::temp_dir().join(format!("tollgate-update-prices-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data = dir.join("snapshot.json");
        let newer = dir.join("newer.json");
        std::fs::write(&data, serde_json::to_string_pretty(&old()).unwrap()).unwrap();
        let new_text = serde_json::to_string_pretty(&new()).unwrap();
        std::fs::write(&newer, &new_text).unwrap();

        let report = update(&data, &newer).unwrap();
        assert_eq!(report.added, vec!["brand-new".to_owned()]);
        assert_eq!(std::fs::read_to_string(&data).unwrap(), new_text);

        // Not JSON, or a price that is not exact: rejected, the snapshot untouched.
        std::fs::write(&newer, "{not json").unwrap();
        assert!(update(&data, &newer).is_err());
        std::fs::write(&newer, r#"{"m": {"input_cost_per_token": 1e-30}}"#).unwrap();
        let err = update(&data, &newer).unwrap_err();
        assert!(format!("{err:#}").contains("not exact"), "{err:#}");
        std::fs::write(&newer, r#"{"m": {"max_output_tokens": -5}}"#).unwrap();
        assert!(update(&data, &newer).is_err());
        assert_eq!(std::fs::read_to_string(&data).unwrap(), new_text);
        std::fs::remove_dir_all(&dir).unwrap();
    }
    /// On a copy of the real snapshot (the file in data/ is only read): one price moved, one
    /// model removed, one added.
    #[test]
    fn update_on_a_modified_copy_of_the_snapshot() {
        let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(pricing::DATA);
        let real_text = std::fs::read_to_string(&real).unwrap();
        let mut v: Value = serde_json::from_str(&real_text).unwrap();
        let models = v.as_object_mut().unwrap();
        models["gpt-4o"]["input_cost_per_token"] = json!(2e-06);
        models.remove("whisper-1").unwrap();
        models.insert("tollgate-test-model".into(), json!({"litellm_provider": "openai", "mode": "chat"}));

        let dir = std::env::temp_dir().join(format!("tollgate-update-real-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data = dir.join("snapshot.json");
        let newer = dir.join("newer.json");
        std::fs::write(&data, &real_text).unwrap();
        std::fs::write(&newer, serde_json::to_string_pretty(&v).unwrap()).unwrap();
        let report = update(&data, &newer).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();

        assert_eq!(report.added, vec!["tollgate-test-model".to_owned()]);
        assert_eq!(report.removed, vec!["whisper-1".to_owned()]);
        assert_eq!(
            report.price_changes,
            vec![Change {
                model: "gpt-4o".into(),
                field: "input_cost_per_token".into(),
                old: Some("0.0000025".into()),
                new: Some("0.000002".into()),
            }]
        );
        assert!(report.limit_changes.is_empty());
        // The real snapshot was only read.
        assert_eq!(std::fs::read_to_string(&real).unwrap(), real_text);
    }
}
