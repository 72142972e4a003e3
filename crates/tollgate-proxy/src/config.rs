//! The proxy configuration: LiteLLM's `config.yaml` schema, loaded and checked.
//!
//! Loading goes in this order:
//!
//! 1. The YAML is parsed (anchors and `<<` merge keys applied) into a JSON tree.
//! 2. `environment_variables` is read first; its values may themselves be `os.environ/VAR`
//!    references to the process environment. The process environment is never modified: the
//!    variables live in the config's own lookup ([`ProxyConfig::env_lookup`]), which the SDK
//!    client uses for provider credentials (`ClientBuilder::env`).
//! 3. Every other string of the form `os.environ/VAR`, anywhere in the tree, is replaced by the
//!    variable (from `environment_variables`, else the process environment). A variable that is
//!    not set is an error naming the path that referenced it.
//! 4. Each section is checked key by key: every problem is reported with the file, the path
//!    inside it (`model_list[2].litellm_params.rpm`) and what is wrong; keys tollgate does not
//!    support yet are collected in [`ProxyConfig::unsupported_keys`] (never silently ignored:
//!    the server logs them once at start-up and `tollgate check-config` prints them).
//!
//! Deployments whose model is `mock/<anything>`, or that set `litellm_params.mock_response`
//! (LiteLLM's name), are answered in-process by the built-in mock provider and are not handed
//! to the router (see [`MockSettings`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tollgate::tollgate_core::ModelRef;
use tollgate::{DeploymentConfig, DeploymentParams, RouterConfig, RouterSettings, Secret};
use tollgate_router::{DeploymentInfo, FallbackList};

/// Where environment variables come from.
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The prefix LiteLLM uses for environment references: `api_key: os.environ/OPENAI_API_KEY`.
pub const ENV_PREFIX: &str = "os.environ/";

/// Default request body limit: 10 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// One thing wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where in the file: `model_list[2].litellm_params.rpm` (empty for the whole document).
    pub path: String,
    pub message: String,
}

impl Problem {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem { path: path.into(), message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read the file: {error}")]
    Read { file: String, error: std::io::Error },
    #[error("{file}: not valid YAML: {message}")]
    Yaml { file: String, message: String },
    #[error("{file}: invalid configuration:{}", list(.problems))]
    Invalid { file: String, problems: Vec<Problem> },
}

fn list(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("\n  - {p}")).collect()
}

impl ConfigError {
    /// Every problem found (one for unreadable or unparsable files).
    pub fn problems(&self) -> Vec<String> {
        match self {
            ConfigError::Read { error, .. } => vec![format!("cannot read the file: {error}")],
            ConfigError::Yaml { message, .. } => vec![format!("not valid YAML: {message}")],
            ConfigError::Invalid { problems, .. } => problems.iter().map(ToString::to_string).collect(),
        }
    }
}

/// The built-in mock provider's settings for one model group.
///
/// A mock group answers chat, text completion and embedding requests without any upstream:
/// the reply is `mock_response` when set, else an echo of the last user message (`prompt` for
/// text completions); usage counts whitespace-separated words (prompt: all messages; completion:
/// the reply), so it is deterministic. Streams send one chunk per word.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MockSettings {
    /// `litellm_params.mock_response`: a fixed reply.
    pub response: Option<String>,
    /// `litellm_params.mock_delay_ms`: wait before answering (before the first chunk of a stream).
    pub delay: Duration,
    /// `litellm_params.mock_chunk_delay_ms`: wait between streamed chunks (tollgate addition).
    pub chunk_delay: Duration,
}

/// Server knobs (not LiteLLM keys except where noted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// Largest request body accepted (`general_settings.max_request_size_mb`; default 10 MiB).
    pub max_request_body_bytes: usize,
    /// How long a graceful shutdown waits for in-flight requests and streams (default 30 s).
    pub drain_timeout: Duration,
    /// Idle time after which a stream gets a `: ping` comment (default 15 s).
    pub keepalive_interval: Duration,
    /// Whether `GET /metrics` needs a key like the API routes
    /// (`general_settings.metrics_require_auth`; default false).
    pub metrics_require_auth: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            max_request_body_bytes: DEFAULT_MAX_BODY_BYTES,
            drain_timeout: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(15),
            metrics_require_auth: false,
        }
    }
}

/// A loaded, checked proxy configuration.
#[derive(Clone)]
pub struct ProxyConfig {
    /// The file it came from (for messages).
    pub file: String,
    /// The deployments the router serves (mock deployments removed) and `router_settings`,
    /// with `litellm_settings` defaults (`num_retries`, `request_timeout`, fallbacks) applied.
    pub router: RouterConfig,
    /// Every model group, in configuration order (what `/v1/models` lists).
    pub model_groups: Vec<String>,
    /// Groups answered by the built-in mock provider.
    pub mocks: BTreeMap<String, MockSettings>,
    /// `general_settings.master_key`.
    pub master_key: Option<Secret>,
    /// `litellm_settings.drop_params`.
    pub drop_params: bool,
    /// `litellm_settings.request_timeout`.
    pub request_timeout: Option<Duration>,
    /// `litellm_settings.json_logs`.
    pub json_logs: bool,
    pub server: ServerSettings,
    /// `litellm_settings.success_callback` / `failure_callback` / `callbacks`, the webhook and `OTEL_*`.
    pub callbacks: crate::callbacks::CallbackConfig,
    /// Keys present in the file that tollgate does not support yet, as paths
    /// (`litellm_settings.success_callback`).
    pub unsupported_keys: Vec<String>,
    /// `environment_variables` (resolved).
    environment: BTreeMap<String, String>,
    base_env: EnvLookup,
}

impl fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyConfig")
            .field("file", &self.file)
            .field("router", &self.router)
            .field("model_groups", &self.model_groups)
            .field("mocks", &self.mocks)
            .field("master_key", &self.master_key)
            .field("drop_params", &self.drop_params)
            .field("request_timeout", &self.request_timeout)
            .field("server", &self.server)
            .field("unsupported_keys", &self.unsupported_keys)
            .field("environment", &self.environment.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ProxyConfig {
    /// Loads a config file, with the process environment behind `os.environ/` references.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|error| ConfigError::Read { file: file.clone(), error })?;
        Self::from_yaml_str(&text, &file, process_env())
    }

    /// Parses config text. `file` names it in messages; `env` is the environment behind
    /// `os.environ/` references and provider credentials (after `environment_variables`).
    pub fn from_yaml_str(text: &str, file: &str, env: EnvLookup) -> Result<Self, ConfigError> {
        let mut yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(text)
            .map_err(|e| ConfigError::Yaml { file: file.to_owned(), message: e.to_string() })?;
        yaml.apply_merge()
            .map_err(|e| ConfigError::Yaml { file: file.to_owned(), message: e.to_string() })?;
        let root = serde_json::to_value(&yaml)
            .map_err(|e| ConfigError::Yaml { file: file.to_owned(), message: e.to_string() })?;
        let mut loader = Loader { problems: Vec::new(), unsupported: Vec::new() };
        let cfg = loader.load(root, file, env);
        if loader.problems.is_empty()
            && let Some(mut cfg) = cfg
        {
            cfg.unsupported_keys = loader.unsupported;
            return Ok(cfg);
        }
        Err(ConfigError::Invalid { file: file.to_owned(), problems: loader.problems })
    }

    /// The environment the SDK client reads provider credentials from: the config's
    /// `environment_variables`, then the process environment (which is never modified).
    pub fn env_lookup(&self) -> EnvLookup {
        let vars = self.environment.clone();
        let base = self.base_env.clone();
        Arc::new(move |name: &str| vars.get(name).cloned().or_else(|| base(name)))
    }

    /// The environment behind `os.environ/` references (before `environment_variables`):
    /// reloading the file resolves them against the same one.
    pub fn base_env(&self) -> EnvLookup {
        self.base_env.clone()
    }

    /// Whether `model` is a configured group (exact, or matching a wildcard group).
    pub fn has_group(&self, model: &str) -> bool {
        self.model_groups.iter().any(|g| group_matches(g, model))
    }
}

/// The process environment, read (never written).
pub fn process_env() -> EnvLookup {
    Arc::new(|name: &str| std::env::var(name).ok())
}

fn group_matches(group: &str, model: &str) -> bool {
    match group.split_once('*') {
        None => group == model,
        Some((pre, post)) => {
            model.len() >= pre.len() + post.len() && model.starts_with(pre) && model.ends_with(post)
        }
    }
}

// Keys tollgate understands, per section.
const TOP_KEYS: &[&str] =
    &["model_list", "litellm_settings", "router_settings", "general_settings", "environment_variables"];
const DEPLOYMENT_KEYS: &[&str] = &["model_name", "litellm_params", "model_info"];
const LITELLM_SETTINGS_KEYS: &[&str] = &[
    "drop_params",
    "num_retries",
    "request_timeout",
    "fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "default_fallbacks",
    "json_logs",
    "success_callback",
    "failure_callback",
    "callbacks",
];
const ROUTER_SETTINGS_KEYS: &[&str] = &[
    "routing_strategy",
    "routing_strategy_args",
    "num_retries",
    "retry_policy",
    "retry_after",
    "retry_backoff_base",
    "retry_backoff_max",
    "max_retry_after",
    "allowed_fails",
    "cooldown_time",
    "cooldown_failure_ratio",
    "cooldown_min_requests",
    "fallbacks",
    "default_fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "max_fallbacks",
    "timeout",
    "stream_timeout",
    "enable_pre_call_checks",
    "enable_tag_filtering",
];
const GENERAL_SETTINGS_KEYS: &[&str] = &[
    "master_key",
    "max_request_size_mb",
    "metrics_require_auth",
    "webhook_url",
    "webhook_headers",
    "webhook_batch_size",
    "webhook_flush_interval",
    "webhook_queue_size",
];
/// `litellm_params` keys of the mock provider (kept out of provider options).
const MOCK_KEYS: &[&str] = &["mock_response", "mock_delay_ms", "mock_chunk_delay_ms"];

/// The typed part of `litellm_settings`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct LitellmSettings {
    drop_params: Option<bool>,
    num_retries: Option<u32>,
    request_timeout: Option<f64>,
    fallbacks: Option<FallbackList>,
    context_window_fallbacks: Option<FallbackList>,
    content_policy_fallbacks: Option<FallbackList>,
    default_fallbacks: Option<Vec<String>>,
    json_logs: Option<bool>,
}

/// The typed part of `general_settings`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct GeneralSettings {
    master_key: Option<String>,
    max_request_size_mb: Option<f64>,
    metrics_require_auth: Option<bool>,
}

/// The mock keys of `litellm_params`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct MockParams {
    mock_response: Option<String>,
    mock_delay_ms: Option<u64>,
    mock_chunk_delay_ms: Option<u64>,
}

struct Loader {
    problems: Vec<Problem>,
    unsupported: Vec<String>,
}

impl Loader {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(path, message));
    }

    /// The mapping at `path`, or `None` (with a problem) when it is something else. YAML `null`
    /// (an empty section) is an empty mapping.
    fn mapping(&mut self, value: Value, path: &str) -> Option<Map<String, Value>> {
        match value {
            Value::Null => Some(Map::new()),
            Value::Object(m) => Some(m),
            other => {
                self.problem(path, format!("expected a mapping, found {}", kind_of(&other)));
                None
            }
        }
    }

    /// Records keys of `map` not in `known` as unsupported.
    fn unknown_keys(&mut self, map: &Map<String, Value>, known: &[&str], path: &str) {
        for k in map.keys() {
            if !known.contains(&k.as_str()) {
                self.unsupported.push(join(path, k));
            }
        }
    }

    /// Deserialises `map` into `T`; on failure, finds the keys at fault by deserialising each
    /// key alone (every `T` here is `#[serde(default)]`), so the path names the bad key.
    fn typed<T: DeserializeOwned>(&mut self, map: &Map<String, Value>, path: &str) -> Option<T> {
        match serde_json::from_value::<T>(Value::Object(map.clone())) {
            Ok(t) => Some(t),
            Err(whole) => {
                let mut found = false;
                for (k, v) in map {
                    let mut one = Map::new();
                    one.insert(k.clone(), v.clone());
                    if let Err(e) = serde_json::from_value::<T>(Value::Object(one)) {
                        self.problem(join(path, k), e.to_string());
                        found = true;
                    }
                }
                if !found {
                    self.problem(path, whole.to_string());
                }
                None
            }
        }
    }

    fn load(&mut self, root: Value, file: &str, base_env: EnvLookup) -> Option<ProxyConfig> {
        let mut root = self.mapping(root, "")?;
        self.unknown_keys(&root, TOP_KEYS, "");

        // environment_variables first: they may be referenced by everything else.
        let mut environment = BTreeMap::new();
        if let Some(vars) = root.remove("environment_variables")
            && let Some(mut vars) = self.mapping(vars, "environment_variables")
        {
            resolve_env_refs(&mut vars, "environment_variables", &|n| base_env(n), &mut self.problems);
            for (k, v) in vars {
                let path = join("environment_variables", &k);
                match v {
                    Value::String(s) => {
                        environment.insert(k, s);
                    }
                    Value::Number(n) => {
                        environment.insert(k, n.to_string());
                    }
                    Value::Bool(b) => {
                        environment.insert(k, b.to_string());
                    }
                    other => self.problem(path, format!("expected a string, found {}", kind_of(&other))),
                }
            }
        }
        let lookup = |name: &str| environment.get(name).cloned().or_else(|| base_env(name));
        resolve_env_refs(&mut root, "", &lookup, &mut self.problems);

        // litellm_settings
        let mut ls_map = match root.remove("litellm_settings") {
            Some(v) => self.mapping(v, "litellm_settings").unwrap_or_default(),
            None => Map::new(),
        };
        self.unknown_keys(&ls_map, LITELLM_SETTINGS_KEYS, "litellm_settings");
        ls_map.retain(|k, _| LITELLM_SETTINGS_KEYS.contains(&k.as_str()));
        let ls: LitellmSettings = self.typed(&ls_map, "litellm_settings").unwrap_or_default();
        let request_timeout = match ls.request_timeout {
            Some(t) if !(t > 0.0 && t < 1e9) => {
                self.problem("litellm_settings.request_timeout", "must be a positive number of seconds");
                None
            }
            t => t.map(Duration::from_secs_f64),
        };

        // general_settings
        let mut gs_map = match root.remove("general_settings") {
            Some(v) => self.mapping(v, "general_settings").unwrap_or_default(),
            None => Map::new(),
        };
        self.unknown_keys(&gs_map, GENERAL_SETTINGS_KEYS, "general_settings");
        gs_map.retain(|k, _| GENERAL_SETTINGS_KEYS.contains(&k.as_str()));
        let gs: GeneralSettings = self.typed(&gs_map, "general_settings").unwrap_or_default();
        let (problems, unsupported) = (&mut self.problems, &mut self.unsupported);
        let callbacks = crate::callbacks::load_config(&ls_map, &gs_map, &lookup, problems, unsupported);
        let mut server = ServerSettings {
            metrics_require_auth: gs.metrics_require_auth.unwrap_or(false),
            ..ServerSettings::default()
        };
        if let Some(mb) = gs.max_request_size_mb {
            if mb > 0.0 && mb < 1e6 {
                server.max_request_body_bytes = (mb * 1024.0 * 1024.0) as usize;
            } else {
                self.problem("general_settings.max_request_size_mb", "must be a positive number of MiB");
            }
        }
        if gs.master_key.as_deref().is_some_and(str::is_empty) {
            self.problem("general_settings.master_key", "must not be empty (remove it to disable auth)");
        }
        let master_key = gs.master_key.filter(|k| !k.is_empty()).map(Secret::new);

        // router_settings, with litellm_settings as defaults for the keys it leaves out.
        let mut rs_map = match root.remove("router_settings") {
            Some(v) => self.mapping(v, "router_settings").unwrap_or_default(),
            None => Map::new(),
        };
        self.unknown_keys(&rs_map, ROUTER_SETTINGS_KEYS, "router_settings");
        rs_map.retain(|k, _| ROUTER_SETTINGS_KEYS.contains(&k.as_str()));
        let router_settings: Option<RouterSettings> = self.typed(&rs_map, "router_settings");
        let mut router_settings = router_settings.unwrap_or_default();
        if !rs_map.contains_key("num_retries")
            && let Some(n) = ls.num_retries
        {
            router_settings.num_retries = n;
        }
        if !rs_map.contains_key("timeout") && request_timeout.is_some() {
            router_settings.timeout = request_timeout;
        }
        if !rs_map.contains_key("fallbacks")
            && let Some(f) = ls.fallbacks
        {
            router_settings.fallbacks = f;
        }
        if !rs_map.contains_key("context_window_fallbacks")
            && let Some(f) = ls.context_window_fallbacks
        {
            router_settings.context_window_fallbacks = f;
        }
        if !rs_map.contains_key("content_policy_fallbacks")
            && let Some(f) = ls.content_policy_fallbacks
        {
            router_settings.content_policy_fallbacks = f;
        }
        if !rs_map.contains_key("default_fallbacks")
            && let Some(f) = ls.default_fallbacks
        {
            router_settings.default_fallbacks = f;
        }
        let drop_params = ls.drop_params.unwrap_or(false);
        // Which section each fallback list came from, for messages.
        let origin =
            |key: &str| if rs_map.contains_key(key) { "router_settings" } else { "litellm_settings" };
        let origins = [
            origin("fallbacks"),
            origin("context_window_fallbacks"),
            origin("content_policy_fallbacks"),
            origin("default_fallbacks"),
        ];

        // model_list
        let entries = match root.remove("model_list") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a,
            Some(other) => {
                self.problem("model_list", format!("expected a list, found {}", kind_of(&other)));
                Vec::new()
            }
        };
        let mut model_groups: Vec<String> = Vec::new();
        let mut mocks: BTreeMap<String, MockSettings> = BTreeMap::new();
        let mut real_groups: BTreeSet<String> = BTreeSet::new();
        let mut model_list = Vec::new();
        for (i, entry) in entries.into_iter().enumerate() {
            let path = format!("model_list[{i}]");
            let Some(dep) = self.deployment(entry, &path, i, drop_params) else { continue };
            let (dc, mock) = dep;
            let group = dc.model_name.clone();
            if !model_groups.contains(&group) {
                model_groups.push(group.clone());
            }
            match mock {
                Some(m) => {
                    if real_groups.contains(&group) {
                        self.problem(&path, format!("group `{group}` mixes mock and real deployments"));
                    }
                    if group.contains('*') {
                        self.problem(
                            join(&path, "model_name"),
                            "a wildcard group cannot be served by the mock provider",
                        );
                    }
                    mocks.entry(group).or_insert(m);
                }
                None => {
                    if mocks.contains_key(&group) {
                        self.problem(&path, format!("group `{group}` mixes mock and real deployments"));
                    }
                    real_groups.insert(group);
                    model_list.push(dc);
                }
            }
        }

        self.check_fallbacks(&router_settings, origins, &real_groups, &mocks);

        Some(ProxyConfig {
            file: file.to_owned(),
            router: RouterConfig { model_list, router_settings },
            model_groups,
            mocks,
            master_key,
            drop_params,
            request_timeout,
            json_logs: ls.json_logs.unwrap_or(false),
            server,
            callbacks,
            unsupported_keys: Vec::new(),
            environment,
            base_env,
        })
    }

    /// One `model_list` entry: the router deployment, and the mock settings when it is a mock.
    fn deployment(
        &mut self,
        entry: Value,
        path: &str,
        index: usize,
        drop_params: bool,
    ) -> Option<(DeploymentConfig, Option<MockSettings>)> {
        let mut map = match entry {
            Value::Object(m) => m,
            other => {
                self.problem(path, format!("expected a mapping, found {}", kind_of(&other)));
                return None;
            }
        };
        self.unknown_keys(&map, DEPLOYMENT_KEYS, path);
        let model_name = match map.remove("model_name") {
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            Some(Value::String(_)) => {
                self.problem(join(path, "model_name"), "must not be empty");
                None
            }
            Some(other) => {
                self.problem(
                    join(path, "model_name"),
                    format!("expected a string, found {}", kind_of(&other)),
                );
                None
            }
            None => {
                self.problem(join(path, "model_name"), "missing (the public model group name)");
                None
            }
        };
        let params_path = join(path, "litellm_params");
        let mut params_map = match map.remove("litellm_params") {
            Some(v) => self.mapping(v, &params_path),
            None => {
                self.problem(&params_path, "missing (needs at least `model`)");
                None
            }
        };
        let info_path = join(path, "model_info");
        let info: Option<DeploymentInfo> = match map.remove("model_info") {
            Some(v) => self.mapping(v, &info_path).and_then(|m| self.typed(&m, &info_path)),
            None => Some(DeploymentInfo::default()),
        };

        // Mock keys are the mock provider's; they never reach a provider as options.
        let mock_map: Map<String, Value> = match params_map.as_mut() {
            Some(p) => MOCK_KEYS.iter().filter_map(|k| p.remove(*k).map(|v| ((*k).to_owned(), v))).collect(),
            None => Map::new(),
        };
        let mock_params: Option<MockParams> = self.typed(&mock_map, &params_path);
        let params: Option<DeploymentParams> = params_map.and_then(|p| self.typed(&p, &params_path));
        let (model_name, mut params, mut info, mock_params) = (model_name?, params?, info?, mock_params?);

        let model_path = join(&params_path, "model");
        if params.model.is_empty() {
            self.problem(
                &model_path,
                "missing (the provider model, e.g. `openai/gpt-4o-mini` or `mock/echo`)",
            );
            return None;
        }
        let is_mock = params.model.starts_with("mock/") || mock_params.mock_response.is_some();
        if is_mock {
            let mock = MockSettings {
                response: mock_params.mock_response,
                delay: Duration::from_millis(mock_params.mock_delay_ms.unwrap_or(0)),
                chunk_delay: Duration::from_millis(mock_params.mock_chunk_delay_ms.unwrap_or(0)),
            };
            return Some((
                DeploymentConfig { model_name, litellm_params: params, model_info: info },
                Some(mock),
            ));
        }
        if !params.model.contains('*') {
            let resolved = ModelRef::parse(&params.model)
                .map_err(|e| e.to_string())
                .and_then(|r| tollgate::resolve_provider(r).map(|_| ()).map_err(|e| e.message));
            if let Err(message) = resolved {
                self.problem(&model_path, message);
                return None;
            }
        }
        if params.drop_params.is_none() && drop_params {
            params.drop_params = Some(true);
        }
        // Keep the router's default id stable (`<group>#<index in the file>`), even though mock
        // deployments are not handed to the router.
        if info.id.is_none() {
            info.id = Some(format!("{model_name}#{index}"));
        }
        Some((DeploymentConfig { model_name, litellm_params: params, model_info: info }, None))
    }

    fn check_fallbacks(
        &mut self,
        rs: &RouterSettings,
        origins: [&str; 4],
        real: &BTreeSet<String>,
        mocks: &BTreeMap<String, MockSettings>,
    ) {
        let known = |g: &str| real.iter().any(|r| group_matches(r, g));
        let lists = [
            ("fallbacks", &rs.fallbacks, origins[0]),
            ("context_window_fallbacks", &rs.context_window_fallbacks, origins[1]),
            ("content_policy_fallbacks", &rs.content_policy_fallbacks, origins[2]),
        ];
        for (name, list, section) in lists {
            for (i, entry) in list.iter().enumerate() {
                for (from, targets) in entry {
                    let path = format!("{section}.{name}[{i}].{from}");
                    for g in std::iter::once(from).chain(targets) {
                        if mocks.contains_key(g) {
                            self.problem(
                                &path,
                                format!("fallbacks to or from the mock group `{g}` are not supported"),
                            );
                        } else if !known(g) {
                            self.problem(&path, format!("`{g}` is not a model group of model_list"));
                        }
                    }
                }
            }
        }
        for g in &rs.default_fallbacks {
            if !known(g) {
                self.problem(
                    format!("{}.default_fallbacks", origins[3]),
                    format!("`{g}` is not a model group of model_list"),
                );
            }
        }
    }
}

/// Replaces every `os.environ/VAR` string in `map` (recursively) by the variable's value.
fn resolve_env_refs(
    map: &mut Map<String, Value>,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) {
    for (k, v) in map.iter_mut() {
        resolve_value(v, &join(path, k), lookup, problems);
    }
}

fn resolve_value(
    v: &mut Value,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) {
    match v {
        Value::String(s) => {
            if let Some(name) = s.strip_prefix(ENV_PREFIX) {
                let name = name.trim();
                match lookup(name) {
                    Some(val) => *v = Value::String(val),
                    None => {
                        problems.push(Problem::new(path, format!("environment variable `{name}` is not set")))
                    }
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                resolve_value(item, &format!("{path}[{i}]"), lookup, problems);
            }
        }
        Value::Object(m) => resolve_env_refs(m, path, lookup, problems),
        _ => {}
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env() -> EnvLookup {
        Arc::new(|_| None)
    }

    #[test]
    fn wildcard_groups_match() {
        assert!(group_matches("anthropic/*", "anthropic/claude-x"));
        assert!(group_matches("*", "anything"));
        assert!(!group_matches("anthropic/*", "openai/gpt"));
        assert!(group_matches("gpt-4o", "gpt-4o") && !group_matches("gpt-4o", "gpt-4o-mini"));
    }

    #[test]
    fn numbers_in_environment_variables_become_strings() {
        let cfg = ProxyConfig::from_yaml_str(
            "environment_variables:\n  PORTISH: 42\nmodel_list: []\n",
            "t.yaml",
            no_env(),
        )
        .unwrap();
        assert_eq!(cfg.env_lookup()("PORTISH").as_deref(), Some("42"));
        assert_eq!(cfg.env_lookup()("OTHER"), None);
    }

    #[test]
    fn empty_file_is_an_empty_config() {
        let cfg = ProxyConfig::from_yaml_str("", "t.yaml", no_env()).unwrap();
        assert!(cfg.model_groups.is_empty());
    }
}
