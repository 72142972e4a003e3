//! The deployment artefacts under `deploy/` hold together, so a typo cannot land.
//!
//! Neither docker nor helm runs here, so the checks are static:
//! * `deploy/Dockerfile`: multi-stage, non-root `USER`, a `HEALTHCHECK` on `/health/liveliness`,
//!   the `cargo build -p` package exists, and the `ENTRYPOINT` uses only real `tollgate serve` flags.
//! * `deploy/docker-compose.yaml` (parsed as YAML): two or more proxies, PostgreSQL, Redis and
//!   nginx, each with a healthcheck; `depends_on` conditions; mounted files exist; proxy flags real.
//! * `deploy/nginx.conf`: balanced braces, an upstream naming every proxy, SSE-friendly settings.
//! * The Helm chart: `Chart.yaml` fields, every value in `values.yaml` documented and used, every
//!   `.Values` reference resolvable, and every template rendered and parsed as YAML.
//!
//! "Real flags" means: declared as a `#[arg(long …)]` field of the `Serve` variant in
//! `crates/tollgate-cli/src/main.rs` (the CLI crate is not a dependency of this test crate, so the
//! source is read rather than the binary run).
//!
//! ## The template renderer
//! A small renderer for exactly the Go-template subset the chart uses; anything else is an error,
//! so a template that strays outside the subset fails here instead of rendering wrongly:
//! * `{{- … -}}` whitespace trimming, `{{/* comments */}}`;
//! * `{{ define "name" }}…{{ end }}` in `_helpers.tpl`, `{{ include "name" . }}`;
//! * `{{ if X }}` / `{{ if not X }}` … `{{ end }}` (Go truthiness: false, 0, "", null, empty
//!   map/list are false);
//! * values `.Values.a.b`, `.Chart.Name|Version|AppVersion`, `.Release.Name|Namespace|Service`;
//! * `toYaml X`, and the pipes `| quote`, `| nindent N`, `| sha256sum`.
//!
//! `sha256sum` is a stand-in (64 hex digits from std's hasher, not SHA-256): the tests only need a
//! string that changes when its input changes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn read(rel: &str) -> String {
    let p = root().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

fn yaml(src: &str, what: &str) -> Value {
    serde_yaml_ng::from_str(src).unwrap_or_else(|e| panic!("{what} is not valid YAML: {e}\n{src}"))
}

fn get<'a>(v: &'a Value, path: &str) -> &'a Value {
    let mut cur = v;
    for seg in path.split('.') {
        cur = match cur {
            Value::Sequence(s) => s.get(seg.parse::<usize>().unwrap_or(usize::MAX)),
            other => other.get(seg),
        }
        .unwrap_or_else(|| panic!("missing `{path}` (at `{seg}`) in {v:?}"));
    }
    cur
}

fn str_of<'a>(v: &'a Value, path: &str) -> &'a str {
    get(v, path).as_str().unwrap_or_else(|| panic!("`{path}` is not a string"))
}

// ---- the CLI's real flags ----------------------------------------------------------------------

/// The long flags of `tollgate serve`, read from the `Serve { … }` variant in the CLI's main.rs.
fn serve_flags() -> BTreeSet<String> {
    let src = read("crates/tollgate-cli/src/main.rs");
    let start = src.find("Serve {").expect("a `Serve {` variant in main.rs");
    let body = &src[start + "Serve {".len()..];
    let body = &body[..body.find("\n    },").expect("end of the Serve variant")];
    let mut flags = BTreeSet::new();
    let mut attrs = String::new();
    for line in body.lines().map(str::trim) {
        if line.starts_with("#[") || line.starts_with("///") {
            attrs.push_str(line);
            continue;
        }
        if let Some((name, _)) = line.split_once(':')
            && !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            if attrs.contains("#[arg(long") {
                flags.insert(format!("--{}", name.replace('_', "-")));
            }
            attrs.clear();
        }
    }
    flags
}

fn the_binary_name() -> String {
    let toml = read("crates/tollgate-cli/Cargo.toml");
    let bin = &toml[toml.find("[[bin]]").expect("a [[bin]] section")..];
    let line = bin.lines().find(|l| l.trim_start().starts_with("name")).expect("bin name");
    line.split('"').nth(1).expect("quoted bin name").to_owned()
}

/// Asserts every `--flag` in `args` is a real `tollgate serve` flag; returns flag → value.
fn check_serve_args(args: &[String], what: &str) -> BTreeMap<String, String> {
    let known = serve_flags();
    let mut out = BTreeMap::new();
    let mut it = args.iter().peekable();
    while let Some(a) = it.next() {
        if let Some(flag) = a.strip_prefix("--") {
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (format!("--{n}"), Some(v.to_owned())),
                None => (a.clone(), None),
            };
            assert!(
                known.contains(&name),
                "{what}: `{name}` is not a `tollgate serve` flag (known: {known:?})"
            );
            let value = inline
                .or_else(|| it.next().cloned())
                .unwrap_or_else(|| panic!("{what}: {name} needs a value"));
            assert!(!value.starts_with("--"), "{what}: {name} has no value");
            out.insert(name, value);
        }
    }
    out
}

fn strings(v: &Value, what: &str) -> Vec<String> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("{what} is not a list"))
        .iter()
        .map(|x| match x {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => panic!("{what}: non-scalar item {other:?}"),
        })
        .collect()
}

/// The proxy's drain timeout on SIGTERM, read from the `ServerSettings` default in the proxy.
fn drain_timeout_secs() -> u64 {
    let src = read("crates/tollgate-proxy/src/config.rs");
    let marker = "drain_timeout: Duration::from_secs(";
    let at =
        src.find(marker).expect("the drain_timeout default in tollgate-proxy's config.rs") + marker.len();
    src[at..].split(')').next().unwrap().parse().unwrap()
}

#[test]
fn serve_flags_are_read_from_the_cli_source() {
    let flags = serve_flags();
    for f in ["--config", "--host", "--port", "--log-format"] {
        assert!(flags.contains(f), "{f} missing from {flags:?}");
    }
    assert!(!flags.contains("--file"), "check-config's positional argument leaked in: {flags:?}");
    assert_eq!(the_binary_name(), "tollgate");
    assert!(drain_timeout_secs() > 0);
}

// ---- Dockerfile ----------------------------------------------------------------------------------

#[test]
fn dockerfile_is_multi_stage_non_root_with_healthcheck_and_real_flags() {
    let df = read("deploy/Dockerfile");
    // Join line continuations, drop comments.
    let joined = df.replace("\\\n", " ");
    let lines: Vec<&str> =
        joined.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    let instr = |l: &str| l.split_whitespace().next().unwrap_or("").to_ascii_uppercase();

    let froms: Vec<usize> =
        lines.iter().enumerate().filter(|(_, l)| instr(l) == "FROM").map(|(i, _)| i).collect();
    assert!(froms.len() >= 2, "not multi-stage: {froms:?}");
    let builder = lines[froms[0]].split_whitespace().last().unwrap();
    assert!(lines[froms[0]].to_ascii_uppercase().contains(" AS "), "the first stage is not named");
    let final_stage = &lines[*froms.last().unwrap()..];
    assert!(
        final_stage.iter().any(|l| l.starts_with(&format!("COPY --from={builder} "))),
        "the final stage copies nothing from the `{builder}` stage"
    );

    // Non-root user in the final stage.
    let user = final_stage.iter().rfind(|l| instr(l) == "USER").expect("no USER in the final stage");
    let who = user.split_whitespace().nth(1).unwrap();
    let uid = who.split(':').next().unwrap();
    assert!(uid != "root" && uid != "0", "runs as root: {user}");

    // Health check on the liveness endpoint, on the exposed port.
    let hc = final_stage.iter().find(|l| instr(l) == "HEALTHCHECK").expect("no HEALTHCHECK");
    assert!(hc.contains("/health/liveliness"), "{hc}");
    let expose = final_stage.iter().find(|l| instr(l) == "EXPOSE").expect("no EXPOSE");
    assert_eq!(expose.split_whitespace().nth(1), Some("4000"));
    assert!(hc.contains("/dev/tcp/127.0.0.1/4000"), "health check not on the exposed port: {hc}");

    // The build names a real package, reproducibly.
    let build = lines.iter().find(|l| l.contains("cargo build")).expect("no cargo build");
    assert!(build.contains("--release") && build.contains("--locked"), "{build}");
    let words: Vec<&str> = build.split_whitespace().collect();
    let pkg = words[words.iter().position(|w| *w == "-p").expect("cargo build -p") + 1];
    let manifest = read(&format!("crates/{pkg}/Cargo.toml"));
    assert!(manifest.contains(&format!("name = \"{pkg}\"")), "package {pkg} not found");
    assert!(build.contains(&format!("target/release/{}", the_binary_name())), "{build}");

    // Every COPY source from the context exists.
    for l in final_stage.iter().filter(|l| instr(l) == "COPY" && !l.contains("--from")) {
        let src = l.split_whitespace().nth(1).unwrap();
        assert!(root().join(src).exists(), "COPY source {src} does not exist");
    }

    // ENTRYPOINT: the binary, `serve`, and only real flags.
    let ep = final_stage.iter().find(|l| instr(l) == "ENTRYPOINT").expect("no ENTRYPOINT");
    let json = ep["ENTRYPOINT".len()..].trim();
    let argv: Vec<String> = serde_json::from_str(json).expect("ENTRYPOINT in exec (JSON) form");
    assert_eq!(argv[0], the_binary_name());
    assert_eq!(argv[1], "serve");
    let flags = check_serve_args(&argv[2..], "Dockerfile ENTRYPOINT");
    assert_eq!(flags.get("--config").map(String::as_str), Some("/etc/tollgate/config.yaml"));
    assert_eq!(flags.get("--host").map(String::as_str), Some("0.0.0.0"));
    assert!(
        final_stage.iter().any(|l| l.starts_with("COPY ") && l.ends_with(" /etc/tollgate/config.yaml")),
        "the image ships no default config at the ENTRYPOINT's --config path"
    );

    let ignore = read(".dockerignore");
    assert!(
        ignore.lines().any(|l| l.trim().trim_end_matches('/') == "target"),
        ".dockerignore must exclude target/"
    );
}

// ---- docker-compose ------------------------------------------------------------------------------

fn compose() -> Value {
    yaml(&read("deploy/docker-compose.yaml"), "docker-compose.yaml")
}

fn proxy_services(c: &Value) -> Vec<(String, Value)> {
    get(c, "services")
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, s)| s.get("image").and_then(Value::as_str) == Some("tollgate:local"))
        .map(|(k, s)| (k.as_str().unwrap().to_owned(), s.clone()))
        .collect()
}

fn healthcheck_text(svc: &Value, name: &str) -> String {
    let test = svc
        .get("healthcheck")
        .and_then(|h| h.get("test"))
        .unwrap_or_else(|| panic!("{name}: no healthcheck"));
    match test {
        Value::String(s) => s.clone(),
        other => strings(other, name).join(" "),
    }
}

#[test]
fn compose_has_two_proxies_postgres_redis_and_nginx_with_healthchecks() {
    let c = compose();
    let services = get(&c, "services").as_mapping().unwrap();
    let proxies = proxy_services(&c);
    assert!(
        proxies.len() >= 2,
        "fewer than two proxies: {:?}",
        proxies.iter().map(|p| &p.0).collect::<Vec<_>>()
    );
    assert!(
        proxies.iter().any(|(_, s)| str_of(s, "build.dockerfile") == "deploy/Dockerfile"),
        "no proxy builds deploy/Dockerfile"
    );
    assert!(
        root().join("deploy").join(str_of(&proxies[0].1, "build.context")).join("deploy/Dockerfile").exists()
    );

    for (name, svc) in services {
        let name = name.as_str().unwrap();
        let hc = healthcheck_text(svc, name);
        assert!(!hc.trim().is_empty(), "{name}: empty healthcheck");
        // Every dependency exists, with a condition.
        if let Some(deps) = svc.get("depends_on") {
            for (dep, cond) in deps.as_mapping().expect("depends_on in long form (with conditions)") {
                let dep = dep.as_str().unwrap();
                assert!(services.contains_key(dep), "{name} depends on unknown service {dep}");
                let cond = str_of(cond, "condition");
                assert!(
                    ["service_healthy", "service_started", "service_completed_successfully"].contains(&cond),
                    "{name} → {dep}: bad condition {cond}"
                );
            }
        }
        // Every bind-mounted file exists.
        for vol in svc.get("volumes").map(|v| strings(v, name)).unwrap_or_default() {
            let src = vol.split(':').next().unwrap();
            if src.starts_with("./") || src.starts_with("../") {
                assert!(root().join("deploy").join(src).exists(), "{name}: mounted {src} does not exist");
            }
        }
    }

    let pg = get(&c, "services.postgres");
    assert!(str_of(pg, "image").starts_with("postgres:"));
    assert!(healthcheck_text(pg, "postgres").contains("pg_isready"));
    let redis = get(&c, "services.redis");
    assert!(str_of(redis, "image").starts_with("redis:"));
    assert!(healthcheck_text(redis, "redis").contains("redis-cli ping"));

    for (name, svc) in &proxies {
        let args = strings(get(svc, "command"), name);
        let flags = check_serve_args(&args, name);
        let port = flags.get("--port").cloned().unwrap_or_else(|| "4000".to_owned());
        let hc = healthcheck_text(svc, name);
        assert!(hc.contains("/health/liveliness"), "{name}: {hc}");
        assert!(
            hc.contains(&format!("/dev/tcp/127.0.0.1/{port}")),
            "{name}: health check not on port {port}"
        );
        for dep in ["postgres", "redis"] {
            assert_eq!(
                str_of(svc, &format!("depends_on.{dep}.condition")),
                "service_healthy",
                "{name} → {dep}"
            );
        }
        let mounts = strings(get(svc, "volumes"), name);
        assert!(
            mounts.iter().any(|m| m.contains(":/etc/tollgate/config.yaml")),
            "{name}: config not mounted"
        );
        // Provider keys pass through from the environment, not hard-coded.
        for key in ["OPENAI_API_KEY", "ANTHROPIC_API_KEY"] {
            let v = str_of(svc, &format!("environment.{key}"));
            assert!(v.starts_with(&format!("${{{key}")), "{name}: {key} is not passed through: {v}");
        }
        // Longer than the proxy's drain.
        let grace = str_of(svc, "stop_grace_period").trim_end_matches('s').parse::<u64>().unwrap();
        assert!(grace > drain_timeout_secs(), "{name}: stop_grace_period {grace}s ≤ drain");
    }

    let nginx = get(&c, "services.nginx");
    for (name, _) in &proxies {
        assert_eq!(str_of(nginx, &format!("depends_on.{name}.condition")), "service_healthy");
    }
    assert!(strings(get(nginx, "volumes"), "nginx").iter().any(|v| v.starts_with("./nginx.conf:")));
}

// ---- nginx.conf ----------------------------------------------------------------------------------

/// The directives of nginx.conf with comments and quoted strings removed, as (block path, text).
fn nginx_directives(src: &str) -> Vec<(Vec<String>, String)> {
    let mut clean = String::new();
    for line in src.lines() {
        let mut in_quote = false;
        for ch in line.chars() {
            match ch {
                '"' => in_quote = !in_quote,
                '#' if !in_quote => break,
                _ if in_quote => {}
                c => clean.push(c),
            }
        }
        assert!(!in_quote, "unbalanced quote in: {line}");
        clean.push('\n');
    }
    let mut out = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let mut cur = String::new();
    for ch in clean.chars() {
        match ch {
            '{' => {
                path.push(cur.split_whitespace().collect::<Vec<_>>().join(" "));
                cur.clear();
            }
            '}' => {
                assert!(cur.trim().is_empty(), "directive without `;`: {cur}");
                assert!(path.pop().is_some(), "unbalanced `}}` in nginx.conf");
                cur.clear();
            }
            ';' => {
                out.push((path.clone(), cur.split_whitespace().collect::<Vec<_>>().join(" ")));
                cur.clear();
            }
            c => cur.push(c),
        }
    }
    assert!(path.is_empty(), "unclosed blocks in nginx.conf: {path:?}");
    assert!(cur.trim().is_empty(), "trailing text without `;`: {cur}");
    out
}

#[test]
fn nginx_balances_every_proxy_and_does_not_buffer_streams() {
    let dirs = nginx_directives(&read("deploy/nginx.conf"));
    let upstream_block = dirs
        .iter()
        .find_map(|(p, _)| p.iter().find(|b| b.starts_with("upstream ")).cloned())
        .expect("an upstream block");
    let upstream = upstream_block.trim_start_matches("upstream ").to_owned();
    let servers: BTreeSet<String> = dirs
        .iter()
        .filter(|(p, d)| p.last() == Some(&upstream_block) && d.starts_with("server "))
        .map(|(_, d)| d.split_whitespace().nth(1).unwrap().to_owned())
        .collect();

    let c = compose();
    for (name, svc) in proxy_services(&c) {
        let flags = check_serve_args(&strings(get(&svc, "command"), &name), &name);
        let port = flags.get("--port").cloned().unwrap_or_else(|| "4000".to_owned());
        assert!(servers.contains(&format!("{name}:{port}")), "upstream lacks {name}:{port}: {servers:?}");
    }
    assert_eq!(servers.len(), proxy_services(&c).len(), "upstream names a server that is not a proxy");

    let in_location =
        |want: &str| dirs.iter().any(|(p, d)| p.last().is_some_and(|b| b == "location /") && d == want);
    assert!(in_location(&format!("proxy_pass http://{upstream}")), "location / does not proxy to {upstream}");
    assert!(in_location("proxy_buffering off"), "SSE needs proxy_buffering off");
    assert!(in_location("proxy_http_version 1.1"));
    let read_timeout = dirs
        .iter()
        .find_map(|(_, d)| d.strip_prefix("proxy_read_timeout "))
        .expect("proxy_read_timeout")
        .trim_end_matches('s')
        .parse::<u64>()
        .unwrap();
    assert!(read_timeout >= 300, "streams need a long read timeout, got {read_timeout}s");

    // nginx's listen port is the container side of the published port.
    let listen = dirs.iter().find_map(|(_, d)| d.strip_prefix("listen ")).expect("listen");
    let published = strings(get(&c, "services.nginx.ports"), "nginx ports");
    assert!(published.iter().any(|p| p.ends_with(&format!(":{listen}"))), "{published:?} vs listen {listen}");
    // The compose healthcheck's path exists.
    let hc = healthcheck_text(get(&c, "services.nginx"), "nginx");
    assert!(dirs.iter().any(|(p, _)| p.iter().any(|b| hc.contains(b.trim_start_matches("location = ")))));
}

#[test]
fn nginx_parser_rejects_unbalanced_braces() {
    let r = std::panic::catch_unwind(|| nginx_directives("http { server { listen 80; }"));
    assert!(r.is_err());
    let ok = nginx_directives("http { upstream u { server a:1; } }");
    assert_eq!(ok, vec![(vec!["http".to_owned(), "upstream u".to_owned()], "server a:1".to_owned())]);
}

// ---- the template renderer -----------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Text(String),
    Action(String),
}

fn tokenize(src: &str) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while let Some(open) = rest.find("{{") {
        let mut text = rest[..open].to_owned();
        if trim_next {
            text = text.trim_start().to_owned();
        }
        let close = rest[open..].find("}}").ok_or("unclosed {{")? + open;
        let mut inner = &rest[open + 2..close];
        if let Some(i) = inner.strip_prefix('-') {
            text = text.trim_end().to_owned();
            inner = i;
        }
        trim_next = false;
        if let Some(i) = inner.strip_suffix('-') {
            trim_next = true;
            inner = i;
        }
        toks.push(Tok::Text(text));
        toks.push(Tok::Action(inner.trim().to_owned()));
        rest = &rest[close + 2..];
    }
    toks.push(Tok::Text(if trim_next { rest.trim_start().to_owned() } else { rest.to_owned() }));
    Ok(toks)
}

struct Chart {
    values: Value,
    meta: Value,
    helpers: BTreeMap<String, Vec<Tok>>,
}

const RELEASE: &str = "demo";

fn load_chart() -> Chart {
    let dir = "deploy/helm/tollgate";
    let toks = tokenize(&read(&format!("{dir}/templates/_helpers.tpl"))).unwrap();
    let mut helpers = BTreeMap::new();
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Text(t) => assert!(t.trim().is_empty(), "text outside a define in _helpers.tpl: {t}"),
            Tok::Action(a) if a.starts_with("/*") => {}
            Tok::Action(a) => {
                let name =
                    a.strip_prefix("define ").unwrap_or_else(|| panic!("unexpected {a} in _helpers.tpl"));
                let name = name.trim().trim_matches('"').to_owned();
                let mut depth = 0;
                let mut body = Vec::new();
                i += 1;
                loop {
                    let t = toks.get(i).unwrap_or_else(|| panic!("define {name} has no end"));
                    if let Tok::Action(a) = t {
                        if a.starts_with("if ") {
                            depth += 1;
                        } else if a == "end" {
                            if depth == 0 {
                                break;
                            }
                            depth -= 1;
                        }
                    }
                    body.push(t.clone());
                    i += 1;
                }
                helpers.insert(name, body);
            }
        }
        i += 1;
    }
    Chart {
        values: yaml(&read(&format!("{dir}/values.yaml")), "values.yaml"),
        meta: yaml(&read(&format!("{dir}/Chart.yaml")), "Chart.yaml"),
        helpers,
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Sequence(s) => !s.is_empty(),
        Value::Mapping(m) => !m.is_empty(),
        Value::Tagged(_) => true,
    }
}

fn scalar_text(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("cannot print a non-scalar into a template: {other:?}")),
    }
}

fn lookup<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(root, |cur, seg| cur.get(seg))
}

fn fake_sha256(s: &str) -> String {
    (0..4u8)
        .map(|seed| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (seed, s).hash(&mut h);
            format!("{:016x}", h.finish())
        })
        .collect()
}

impl Chart {
    fn value(&self, expr: &str) -> Result<Value, String> {
        let expr = expr.trim();
        if let Some(path) = expr.strip_prefix(".Values.") {
            return lookup(&self.values, path).cloned().ok_or(format!("`{expr}` is not in values.yaml"));
        }
        let s = match expr {
            ".Chart.Name" => str_of(&self.meta, "name").to_owned(),
            ".Chart.Version" => str_of(&self.meta, "version").to_owned(),
            ".Chart.AppVersion" => str_of(&self.meta, "appVersion").to_owned(),
            ".Release.Name" => RELEASE.to_owned(),
            ".Release.Namespace" => "default".to_owned(),
            ".Release.Service" => "Helm".to_owned(),
            other => return Err(format!("unsupported expression `{other}`")),
        };
        Ok(Value::String(s))
    }

    fn pipeline(&self, action: &str) -> Result<String, String> {
        let mut stages = action.split('|').map(str::trim);
        let first = stages.next().ok_or("empty action")?;
        let mut out = if let Some(rest) = first.strip_prefix("include ") {
            let (name, arg) = rest.trim().rsplit_once(' ').ok_or("include needs a name and a context")?;
            if arg != "." {
                return Err(format!("include with context `{arg}` is outside the subset"));
            }
            let name = name.trim().trim_matches('"');
            self.render_toks(self.helpers.get(name).ok_or(format!("no helper {name}"))?)?
        } else if let Some(rest) = first.strip_prefix("toYaml ") {
            let v = self.value(rest)?;
            serde_yaml_ng::to_string(&v).map_err(|e| e.to_string())?.trim_end().to_owned()
        } else {
            scalar_text(&self.value(first)?)?
        };
        for stage in stages {
            let words: Vec<&str> = stage.split_whitespace().collect();
            out = match words.as_slice() {
                ["quote"] => serde_json::to_string(&out).map_err(|e| e.to_string())?,
                ["nindent", n] => {
                    let pad = " ".repeat(n.parse::<usize>().map_err(|e| e.to_string())?);
                    format!("\n{pad}{}", out.replace('\n', &format!("\n{pad}")))
                }
                ["sha256sum"] => fake_sha256(&out),
                other => return Err(format!("unsupported pipe {other:?}")),
            };
        }
        Ok(out)
    }

    fn render_toks(&self, toks: &[Tok]) -> Result<String, String> {
        let mut out = String::new();
        let mut active: Vec<bool> = Vec::new();
        for t in toks {
            let on = active.iter().all(|b| *b);
            match t {
                Tok::Text(s) if on => out.push_str(s),
                Tok::Text(_) => {}
                Tok::Action(a) if a.starts_with("/*") => {}
                Tok::Action(a) if a.starts_with("if ") => {
                    let cond = &a[3..];
                    let v = if !on {
                        false
                    } else if let Some(x) = cond.strip_prefix("not ") {
                        !truthy(&self.value(x)?)
                    } else {
                        truthy(&self.value(cond)?)
                    };
                    active.push(v);
                }
                Tok::Action(a) if a == "end" => {
                    active.pop().ok_or("`end` without `if`")?;
                }
                Tok::Action(_) if !on => {}
                Tok::Action(a) => out.push_str(&self.pipeline(a)?),
            }
        }
        if !active.is_empty() {
            return Err("`if` without `end`".to_owned());
        }
        Ok(out)
    }

    fn render(&self, src: &str) -> Result<String, String> {
        self.render_toks(&tokenize(src)?)
    }

    /// Every template (not the helpers), rendered: file name → text.
    fn render_all(&self) -> BTreeMap<String, String> {
        let dir = root().join("deploy/helm/tollgate/templates");
        let mut out = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if name.starts_with('_') {
                continue;
            }
            let src = std::fs::read_to_string(&path).unwrap();
            let text = self.render(&src).unwrap_or_else(|e| panic!("rendering {name}: {e}"));
            out.insert(name, text);
        }
        out
    }

    /// The rendered manifests by kind (each template holds at most one document).
    fn manifests(&self) -> BTreeMap<String, Value> {
        let mut by_kind = BTreeMap::new();
        for (name, text) in self.render_all() {
            if !name.ends_with(".yaml") {
                continue;
            }
            if text.trim().is_empty() {
                continue; // disabled by an `if`
            }
            let doc = yaml(&text, &name);
            let kind = str_of(&doc, "kind").to_owned();
            assert!(doc.get("apiVersion").is_some(), "{name}: no apiVersion");
            assert_eq!(str_of(&doc, "metadata.name"), format!("{RELEASE}-tollgate"), "{name}");
            assert!(by_kind.insert(kind.clone(), doc).is_none(), "two {kind}s");
        }
        by_kind
    }

    fn set(&mut self, path: &str, v: Value) {
        let mut cur = &mut self.values;
        for seg in path.split('.') {
            cur = cur.get_mut(seg).unwrap_or_else(|| panic!("no value {path}"));
        }
        *cur = v;
    }
}

#[test]
fn renderer_handles_its_subset_and_refuses_the_rest() {
    let mut chart = load_chart();
    chart.values = yaml("a: {b: 7, flag: false, m: {k: v}, e: {}}\n", "test values");
    assert_eq!(chart.render("x: {{ .Values.a.b }}\n").unwrap(), "x: 7\n");
    assert_eq!(chart.render("x: {{ .Values.a.b | quote }}").unwrap(), "x: \"7\"");
    assert_eq!(chart.render("a:\n  {{- toYaml .Values.a.m | nindent 2 }}\n").unwrap(), "a:\n  k: v\n");
    assert_eq!(chart.render("{{- if .Values.a.flag }}\nyes\n{{- end }}\nz").unwrap(), "\nz");
    assert_eq!(chart.render("{{- if not .Values.a.e }}\nyes\n{{- end }}").unwrap(), "\nyes");
    assert_eq!(chart.render("{{/* c */}}n: {{ .Release.Name }}").unwrap(), "n: demo");
    assert_ne!(
        chart.render("{{ toYaml .Values.a.m | sha256sum }}").unwrap(),
        chart.render("{{ .Values.a.b | sha256sum }}").unwrap()
    );
    assert!(chart.render("{{ .Values.a.missing }}").is_err());
    assert!(chart.render("{{ .Values.a.m }}").is_err(), "a map printed as text");
    assert!(chart.render("{{ .Values.a.b | upper }}").is_err());
    assert!(chart.render("{{ if .Values.a.b }}").is_err());
    assert!(chart.render("{{ default 1 .Values.a.b }}").is_err());
}

// ---- the Helm chart ------------------------------------------------------------------------------

#[test]
fn chart_yaml_has_the_fields_helm_lint_wants() {
    let chart = load_chart();
    let m = &chart.meta;
    assert_eq!(str_of(m, "apiVersion"), "v2");
    assert_eq!(str_of(m, "name"), "tollgate", "name must match the chart directory");
    assert_eq!(str_of(m, "type"), "application");
    assert!(!str_of(m, "description").is_empty());
    for field in ["version", "appVersion"] {
        let v = str_of(m, field);
        let parts: Vec<&str> = v.split('.').collect();
        assert!(
            parts.len() == 3 && parts.iter().all(|p| p.parse::<u64>().is_ok()),
            "{field} {v} is not SemVer"
        );
    }
    let notes = chart.render_all().remove("NOTES.txt").expect("NOTES.txt");
    assert!(notes.contains(&format!("svc/{RELEASE}-tollgate")) && !notes.contains("{{"), "{notes}");
}

/// Leaf paths of a YAML mapping (lists and empty maps are leaves).
fn leaf_paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v.as_mapping() {
        Some(m) if !m.is_empty() => {
            for (k, v) in m {
                let k = k.as_str().unwrap();
                leaf_paths(v, &if prefix.is_empty() { k.to_owned() } else { format!("{prefix}.{k}") }, out);
            }
        }
        _ => out.push(prefix.to_owned()),
    }
}

/// Every `.Values.x.y` mentioned in the templates (used or not by the default values).
fn value_references() -> BTreeSet<String> {
    let dir = root().join("deploy/helm/tollgate/templates");
    let mut refs = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let src = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for (i, _) in src.match_indices(".Values.") {
            let path: String = src[i + ".Values.".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
                .collect();
            refs.insert(path.trim_end_matches('.').to_owned());
        }
    }
    refs
}

#[test]
fn every_value_is_documented_referenced_and_used() {
    let chart = load_chart();
    let refs = value_references();
    assert!(refs.len() > 10, "{refs:?}");
    for r in &refs {
        assert!(lookup(&chart.values, r).is_some(), "templates use .Values.{r}, which values.yaml lacks");
    }
    let mut leaves = Vec::new();
    leaf_paths(&chart.values, "", &mut leaves);
    for leaf in &leaves {
        let used = refs.iter().any(|r| leaf == r || leaf.starts_with(&format!("{r}.")));
        assert!(used, "values.yaml key `{leaf}` is used by no template");
    }

    // Documented: every key down to three levels has a comment line above it (or inline).
    let src = read("deploy/helm/tollgate/values.yaml");
    let mut prev = "";
    for line in src.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let is_key = !trimmed.starts_with('#')
            && !trimmed.starts_with('-')
            && trimmed.split_once(':').is_some_and(|(k, _)| !k.is_empty() && !k.contains(' '));
        if is_key && indent <= 4 {
            assert!(
                prev.trim_start().starts_with('#') || line.contains(" # "),
                "values.yaml: `{}` has no comment",
                line.trim()
            );
        }
        if !line.trim().is_empty() {
            prev = line;
        }
    }
}

#[test]
fn default_render_gives_valid_manifests_that_fit_together() {
    let chart = load_chart();
    let m = chart.manifests();
    let kinds: BTreeSet<&str> = m.keys().map(String::as_str).collect();
    let want: BTreeSet<&str> =
        ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Secret", "Service"]
            .into();
    assert_eq!(kinds, want, "ServiceMonitor is off by default");
    for (kind, api) in [
        ("Deployment", "apps/v1"),
        ("Service", "v1"),
        ("ConfigMap", "v1"),
        ("Secret", "v1"),
        ("HorizontalPodAutoscaler", "autoscaling/v2"),
        ("PodDisruptionBudget", "policy/v1"),
    ] {
        assert_eq!(str_of(&m[kind], "apiVersion"), api, "{kind}");
    }

    let dep = &m["Deployment"];
    let values = &chart.values;
    assert!(dep["spec"].get("replicas").is_none(), "the HPA owns the replica count");
    let pod = get(dep, "spec.template");
    let selector = get(dep, "spec.selector.matchLabels").as_mapping().unwrap();
    let pod_labels = get(pod, "metadata.labels").as_mapping().unwrap();
    for (k, v) in selector {
        assert_eq!(pod_labels.get(k), Some(v), "selector label {k:?} not on the pods");
    }
    assert_eq!(get(&m["Service"], "spec.selector").as_mapping().unwrap(), selector);
    assert_eq!(get(&m["PodDisruptionBudget"], "spec.selector.matchLabels").as_mapping().unwrap(), selector);

    let grace = get(pod, "spec.terminationGracePeriodSeconds").as_u64().unwrap();
    assert!(grace > drain_timeout_secs(), "grace {grace}s must exceed the {}s drain", drain_timeout_secs());

    let c = get(pod, "spec.containers.0");
    assert_eq!(
        str_of(c, "image"),
        format!("{}:{}", str_of(values, "image.repository"), str_of(values, "image.tag"))
    );
    assert_eq!(strings(get(c, "command"), "command"), vec![the_binary_name()]);
    let args = strings(get(c, "args"), "args");
    assert_eq!(args[0], "serve");
    let flags = check_serve_args(&args[1..], "Deployment args");
    let port = get(values, "service.targetPort").as_u64().unwrap();
    assert_eq!(flags["--port"], port.to_string());
    assert_eq!(flags["--log-format"], str_of(values, "logFormat"));
    assert_eq!(str_of(c, "ports.0.name"), "http");
    assert_eq!(get(c, "ports.0.containerPort").as_u64(), Some(port));
    assert_eq!(str_of(c, "livenessProbe.httpGet.path"), "/health/liveliness");
    assert_eq!(str_of(c, "readinessProbe.httpGet.path"), "/health/readiness");
    assert_eq!(str_of(c, "livenessProbe.httpGet.port"), "http");
    assert_eq!(str_of(c, "readinessProbe.httpGet.port"), "http");
    assert_eq!(get(c, "livenessProbe.periodSeconds"), get(values, "probes.liveness.periodSeconds"));
    assert_eq!(get(c, "resources"), get(values, "resources"));
    assert_eq!(get(pod, "spec.securityContext.runAsNonRoot"), &Value::Bool(true));
    for probe_path in ["/health/liveliness", "/health/readiness"] {
        let server = read("crates/tollgate-proxy/src/server.rs");
        assert!(server.contains(&format!("\"{probe_path}\"")), "the proxy has no {probe_path} route");
    }

    // Service → the container's named port.
    let svc_port = get(&m["Service"], "spec.ports.0");
    assert_eq!(str_of(svc_port, "targetPort"), "http");
    assert_eq!(get(svc_port, "port"), get(values, "service.port"));

    // The config: ConfigMap → directory mount → --config path; same content as values.config.
    let mount = str_of(c, "volumeMounts.0.mountPath");
    assert_eq!(flags["--config"], format!("{mount}/config.yaml"));
    assert_eq!(str_of(pod, "spec.volumes.0.configMap.name"), str_of(&m["ConfigMap"], "metadata.name"));
    let data = get(&m["ConfigMap"], "data").as_mapping().unwrap();
    let text = data.get("config.yaml").and_then(Value::as_str).expect("data.config.yaml");
    assert_eq!(&yaml(text, "the rendered config.yaml"), get(values, "config"));

    // Secret → env; every os.environ/VAR the config reads is in the Secret.
    assert_eq!(str_of(c, "envFrom.0.secretRef.name"), str_of(&m["Secret"], "metadata.name"));
    let secret = get(&m["Secret"], "stringData").as_mapping().unwrap();
    assert!(secret.values().all(Value::is_string), "stringData values must be strings: {secret:?}");
    assert_eq!(secret.get("TOLLGATE_MASTER_KEY"), Some(get(values, "secret.masterKey")));
    let mut env_refs = Vec::new();
    collect_env_refs(get(values, "config"), &mut env_refs);
    assert!(env_refs.contains(&"TOLLGATE_MASTER_KEY".to_owned()));
    for var in env_refs {
        assert!(secret.contains_key(var.as_str()), "config reads os.environ/{var}, the Secret lacks it");
    }

    let hpa = &m["HorizontalPodAutoscaler"];
    assert_eq!(str_of(hpa, "spec.scaleTargetRef.kind"), "Deployment");
    assert_eq!(str_of(hpa, "spec.scaleTargetRef.name"), str_of(dep, "metadata.name"));
    assert_eq!(get(hpa, "spec.minReplicas"), get(values, "autoscaling.minReplicas"));
    assert_eq!(str_of(hpa, "spec.metrics.0.resource.target.type"), "Utilization");
}

fn collect_env_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            if let Some(var) = s.strip_prefix("os.environ/") {
                out.push(var.to_owned());
            }
        }
        Value::Sequence(s) => s.iter().for_each(|x| collect_env_refs(x, out)),
        Value::Mapping(m) => m.values().for_each(|x| collect_env_refs(x, out)),
        _ => {}
    }
}

#[test]
fn optional_objects_follow_their_switches() {
    let mut chart = load_chart();
    chart.set("serviceMonitor.enabled", Value::Bool(true));
    let mut labels = Mapping::new();
    labels.insert("release".into(), "prometheus".into());
    chart.set("serviceMonitor.labels", Value::Mapping(labels));
    chart.set("autoscaling.enabled", Value::Bool(false));
    chart.set("podDisruptionBudget.enabled", Value::Bool(false));
    chart.set("nodeSelector", yaml("{disktype: ssd}", "nodeSelector"));
    let m = chart.manifests();

    let sm = m.get("ServiceMonitor").expect("ServiceMonitor when enabled");
    assert_eq!(str_of(sm, "apiVersion"), "monitoring.coreos.com/v1");
    assert_eq!(str_of(sm, "metadata.labels.release"), "prometheus");
    assert_eq!(str_of(sm, "spec.endpoints.0.path"), "/metrics");
    assert_eq!(str_of(sm, "spec.endpoints.0.port"), str_of(&m["Service"], "spec.ports.0.name"));
    assert_eq!(get(sm, "spec.selector.matchLabels"), get(&m["Service"], "spec.selector"));

    assert!(!m.contains_key("HorizontalPodAutoscaler"));
    assert!(!m.contains_key("PodDisruptionBudget"));
    let dep = &m["Deployment"];
    assert_eq!(get(dep, "spec.replicas"), get(&chart.values, "replicaCount"));
    assert_eq!(str_of(dep, "spec.template.spec.nodeSelector.disktype"), "ssd");
}

#[test]
fn a_config_change_rolls_the_pods() {
    let mut chart = load_chart();
    let annotation = |c: &Chart| {
        let m = c.manifests();
        str_of(&m["Deployment"], "spec.template.metadata.annotations.checksum/config").to_owned()
    };
    let before = annotation(&chart);
    assert_eq!(before.len(), 64);
    assert_eq!(before, annotation(&chart), "the checksum is deterministic");
    chart.set("config.litellm_settings.num_retries", Value::Number(5.into()));
    assert_ne!(before, annotation(&chart), "a config change must change the pod template");
}
