//! `tollgate import-litellm-config`: what of a LiteLLM config tollgate supports, what it ignores,
//! and a normalised tollgate config without the ignored keys.

use std::path::Path;
use std::process::ExitCode;

use serde_yaml_ng::Value;
use tollgate_proxy::ProxyConfig;

/// One step of an unsupported-key path: `model_list[0].litellm_params.foo`.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn steps(path: &str) -> Option<Vec<Step<'_>>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Step::Key(key));
        }
        while let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            out.push(Step::Index(r[..end].parse().ok()?));
            rest = &r[end + 1..];
        }
    }
    Some(out)
}

/// Removes the value at `path`; `false` when the path does not name a value in `root`.
fn remove_path(root: &mut Value, path: &str) -> bool {
    let Some(mut steps) = steps(path) else { return false };
    let Some(Step::Key(last)) = steps.pop() else { return false };
    let mut node = root;
    for step in steps {
        let next = match step {
            Step::Key(k) => node.as_mapping_mut().and_then(|m| m.get_mut(k)),
            Step::Index(i) => node.as_sequence_mut().and_then(|s| s.get_mut(i)),
        };
        match next {
            Some(n) => node = n,
            None => return false,
        }
    }
    node.as_mapping_mut().and_then(|m| m.remove(last)).is_some()
}

/// Why tollgate ignores `key` (a path from the unsupported-key report).
fn reason(key: &str) -> &'static str {
    let last = key.rsplit('.').next().unwrap_or(key);
    if last.contains("callback") {
        "this callback integration is not built into tollgate"
    } else if last.starts_with("cache") || last == "redis_host" || last == "redis_port" {
        "response caching is not implemented in tollgate yet"
    } else if last.starts_with("alert") {
        "alerting (Slack, email, webhooks on budget events) is not implemented in tollgate yet"
    } else if key.starts_with("model_list[") {
        "a deployment setting tollgate does not implement; the deployment is still served"
    } else {
        "not implemented in tollgate yet, so it would have no effect"
    }
}

pub(crate) fn import(file: &Path, write: Option<&Path>) -> ExitCode {
    let cfg = match ProxyConfig::load(file) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("{}: tollgate cannot load this config", file.display());
            for p in e.problems() {
                eprintln!("  - {p}");
            }
            eprintln!("fix these and run the command again (`tollgate check-config FILE` checks only)");
            return ExitCode::FAILURE;
        }
    };
    let mut report = format!("{}: loads in tollgate\n", file.display());
    report.push_str(&format!(
        "supported: {} model group(s): {}\n",
        cfg.model_groups.len(),
        cfg.model_groups.join(", ")
    ));
    if cfg.unsupported_keys.is_empty() {
        report.push_str("ignored: nothing; every key is supported\n");
    } else {
        report.push_str("ignored (tollgate reads past these keys):\n");
        for k in &cfg.unsupported_keys {
            report.push_str(&format!("  - {k}: {}\n", reason(k)));
        }
    }
    crate::pricing_cmds::emit(&report);
    let Some(out) = write else { return ExitCode::SUCCESS };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let mut yaml: Value = match serde_yaml_ng::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let mut removed = Vec::new();
    let mut kept = Vec::new();
    for k in &cfg.unsupported_keys {
        if remove_path(&mut yaml, k) { removed.push(k.as_str()) } else { kept.push(k.as_str()) }
    }
    let body = match serde_yaml_ng::to_string(&yaml) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot write YAML: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut header = format!(
        "# tollgate config, normalised from {} by `tollgate import-litellm-config`.\n",
        file.display()
    );
    if removed.is_empty() {
        header.push_str("# Nothing was removed.\n");
    } else {
        header.push_str("# Removed (not supported by tollgate):\n");
        for k in &removed {
            header.push_str(&format!("#   - {k}\n"));
        }
    }
    for k in &kept {
        header.push_str(&format!("# Still present but ignored: {k}\n"));
    }
    if let Err(e) = std::fs::write(out, format!("{header}{body}")) {
        eprintln!("error: cannot write {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    crate::pricing_cmds::emit(&format!("wrote {} ({} key(s) removed)\n", out.display(), removed.len()));
    ExitCode::SUCCESS
}
