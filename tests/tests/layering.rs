//! The layering of the workspace, enforced from `cargo metadata`.
//!
//! Every crate has a layer; a crate may depend (normal or build dependency) only on crates of a
//! lower layer. Core and the provider crates stay free of runtime machinery. Dev-only crates are
//! never normal dependencies of shipped crates. A new crate must be given a layer here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Command;

use serde_json::Value;

/// `None`: dev/tooling crates, which may depend on anything but nothing shipped may depend on.
fn layer(name: &str) -> Result<Option<u32>, String> {
    Ok(Some(match name {
        "tollgate-core" => 0,
        "tollgate-pricing" => 1,
        n if n.starts_with("tollgate-provider-") => 2,
        "tollgate-transport" => 3,
        "tollgate-router" => 4,
        "tollgate" | "tollgate-store" => 5,
        "tollgate-limits" => 5,
        "tollgate-proxy" => 6,
        "tollgate-cli" => 7,
        "tollgate-testkit" | "xtask" | "tollgate-workspace-tests" | "tollgate-bench" => return Ok(None),
        other => {
            return Err(format!(
                "crate `{other}` has no layer: add it to tests/tests/layering.rs and docs/ARCHITECTURE.md"
            ));
        }
    }))
}

/// Crates that core and the providers must not pull in, even transitively.
const RUNTIME_CRATES: &[&str] = &[
    "tokio",
    "reqwest",
    "hyper",
    "axum",
    "tower",
    "sea-orm",
    "sqlx",
    "redis",
    "opentelemetry",
    "tracing-subscriber",
    "moka",
];

struct Workspace {
    /// package id → name, for every package in the graph.
    names: HashMap<String, String>,
    members: BTreeSet<String>,
    /// package id → (dependency package id, is it a normal/build dependency).
    deps: HashMap<String, Vec<(String, bool)>>,
}

fn metadata() -> Workspace {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--all-features"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    let names = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap().to_owned(), p["name"].as_str().unwrap().to_owned()))
        .collect();
    let members =
        v["workspace_members"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_owned()).collect();
    let mut deps = HashMap::new();
    for node in v["resolve"]["nodes"].as_array().unwrap() {
        let id = node["id"].as_str().unwrap().to_owned();
        let list = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                let normal =
                    d["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"].as_str() != Some("dev"));
                (d["pkg"].as_str().unwrap().to_owned(), normal)
            })
            .collect();
        deps.insert(id, list);
    }
    Workspace { names, members, deps }
}

#[test]
fn workspace_crates_depend_only_on_lower_layers() {
    let violations = layering_violations(&metadata());
    assert!(violations.is_empty(), "layering violations:\n  {}", violations.join("\n  "));
}

/// The checker itself catches an upward dependency and a dev crate used as a normal dependency.
#[test]
fn the_layering_check_catches_violations() {
    let names: HashMap<String, String> =
        ["tollgate-core", "tollgate-transport", "tollgate-testkit", "tollgate"]
            .iter()
            .map(|n| ((*n).to_owned(), (*n).to_owned()))
            .collect();
    let members = names.keys().cloned().collect();
    let deps = HashMap::from([
        ("tollgate-core".to_owned(), vec![("tollgate-transport".to_owned(), true)]),
        ("tollgate-transport".to_owned(), vec![("tollgate-core".to_owned(), true)]),
        ("tollgate-testkit".to_owned(), vec![("tollgate-core".to_owned(), true)]),
        (
            "tollgate".to_owned(),
            vec![("tollgate-testkit".to_owned(), true), ("tollgate-transport".to_owned(), true)],
        ),
    ]);
    let mut v = layering_violations(&Workspace { names, members, deps });
    v.sort();
    assert_eq!(
        v,
        vec![
            "tollgate has dev-only crate tollgate-testkit as a normal dependency".to_owned(),
            "tollgate-core (layer 0) depends on tollgate-transport (layer 3)".to_owned(),
        ]
    );
}

fn layering_violations(ws: &Workspace) -> Vec<String> {
    let mut violations = Vec::new();
    for id in &ws.members {
        let name = &ws.names[id];
        let from = layer(name).unwrap_or_else(|e| panic!("{e}"));
        for (dep, normal) in &ws.deps[id] {
            if !ws.members.contains(dep) || !normal {
                continue;
            }
            let dep_name = &ws.names[dep];
            let to = layer(dep_name).unwrap_or_else(|e| panic!("{e}"));
            match (from, to) {
                (_, None) if from.is_some() => {
                    violations.push(format!("{name} has dev-only crate {dep_name} as a normal dependency"))
                }
                (Some(f), Some(t)) if t >= f => {
                    violations.push(format!("{name} (layer {f}) depends on {dep_name} (layer {t})"))
                }
                _ => {}
            }
        }
    }
    violations
}

#[test]
fn core_and_providers_have_no_runtime_dependencies() {
    let ws = metadata();
    let mut checked = 0;
    let mut violations = BTreeMap::new();
    for id in &ws.members {
        let name = &ws.names[id];
        if !(name == "tollgate-core" || name == "tollgate-pricing" || name.starts_with("tollgate-provider-"))
        {
            continue;
        }
        checked += 1;
        // Walk normal/build dependencies transitively.
        let mut seen = BTreeSet::new();
        let mut stack = vec![id.clone()];
        while let Some(cur) = stack.pop() {
            for (dep, normal) in ws.deps.get(&cur).into_iter().flatten() {
                if *normal && seen.insert(dep.clone()) {
                    stack.push(dep.clone());
                }
            }
        }
        let bad: Vec<&str> =
            seen.iter().map(|d| ws.names[d].as_str()).filter(|n| RUNTIME_CRATES.contains(n)).collect();
        if !bad.is_empty() {
            violations.insert(name.clone(), bad.join(", "));
        }
    }
    assert!(checked >= 2, "expected core and at least one provider crate");
    assert!(violations.is_empty(), "runtime crates in core/pricing/providers: {violations:#?}");
}

#[test]
fn every_crate_has_a_doc_header() {
    let ws = metadata();
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut missing = Vec::new();
    for p in v["packages"].as_array().unwrap() {
        let id = p["id"].as_str().unwrap();
        if !ws.members.contains(id) {
            continue;
        }
        for t in p["targets"].as_array().unwrap() {
            let kinds: Vec<&str> = t["kind"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
            if !(kinds.contains(&"lib") || kinds.contains(&"bin")) {
                continue;
            }
            let src = std::fs::read_to_string(t["src_path"].as_str().unwrap()).unwrap();
            let first_code = src.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
            if !first_code.starts_with("//!") {
                missing.push(t["src_path"].as_str().unwrap().to_owned());
            }
        }
    }
    assert!(missing.is_empty(), "crate roots without a `//!` header: {missing:?}");
}
