//! The router: model groups, deployment selection, retries, fallbacks and cooldowns.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tollgate_core::chat::{ChatChunk, ChatRequest, ChatResponse};
use tollgate_core::completion::{TextCompletionRequest, TextCompletionResponse};
use tollgate_core::embedding::{EmbeddingRequest, EmbeddingResponse};
use tollgate_core::{Adapter, ErrorKind, ProviderError, Secret, UpstreamConfig};
use tollgate_transport::{HttpTransport, Timeouts};

use crate::catalog::{ModelCatalog, NoCatalog};
use crate::clock::{Clock, Sleeper, SystemClock, TokioSleeper};
use crate::config::{
    DeploymentConfig, DeploymentParams, RouterConfig, RouterSettings, RoutingStrategy, is_secret_param,
    lookup_fallbacks,
};
use crate::outcome::{Attempt, ConfigError, FailureReason, RouteInfo, Routed, RouterError};
use crate::rng;
use crate::select::{Cand, Cands, PickCtx, pick};
use crate::state::{CooldownPolicy, DeploymentLoad, DeploymentRef, InMemoryState, RouterState};
use crate::stream::{Completion, RoutedStream};

/// Turns a deployment's provider model string (`groq/llama-3.3-70b-versatile`) into the adapter
/// that speaks its dialect and the model name to send upstream.
pub type Resolver = dyn Fn(&str) -> Result<(Arc<dyn Adapter>, String), ProviderError> + Send + Sync;

/// Adjusts a deployment's [`UpstreamConfig`] after the router built it from the deployment's
/// params (e.g. the facade fills credentials from the provider's environment variables).
pub type UpstreamHook = dyn Fn(&dyn Adapter, &mut UpstreamConfig) + Send + Sync;

/// A credential that must be fetched over the network before a call (an OAuth access token).
pub type AuthFuture = Pin<Box<dyn Future<Output = Result<Secret, ProviderError>> + Send>>;

/// Decides, per attempt, whether a deployment needs a bearer token fetched first (`None`: no, the
/// call goes out as configured). The token it yields is set as `bearer_token` for that attempt;
/// a failure counts as the attempt's error.
pub type Authorizer = dyn Fn(&dyn Adapter, &UpstreamConfig) -> Option<AuthFuture> + Send + Sync;

/// Per-request routing options.
#[derive(Debug, Clone, Default)]
pub struct RequestOptions {
    /// Request tags for tag routing (LiteLLM's `metadata.tags` / `tags`).
    pub tags: Vec<String>,
    /// Overrides `num_retries` for this request.
    pub num_retries: Option<u32>,
    /// Overrides the total timeout of each call.
    pub timeout: Option<Duration>,
    /// Overrides the first-token timeout of each streamed call.
    pub stream_timeout: Option<Duration>,
    /// Do not fall back to other groups.
    pub disable_fallbacks: bool,
}

impl RequestOptions {
    /// Options with the tags a chat request carries in `metadata.tags` or a top-level `tags`
    /// field (LiteLLM's conventions).
    pub fn from_chat(req: &ChatRequest) -> Self {
        let from_value = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect())
                .unwrap_or_default()
        };
        let mut tags = req.metadata.as_ref().and_then(|m| m.get("tags")).map(from_value).unwrap_or_default();
        if tags.is_empty() {
            tags = req.extra.get("tags").map(from_value).unwrap_or_default();
        }
        RequestOptions { tags, ..RequestOptions::default() }
    }
}

/// One upstream target, ready to call.
pub(crate) struct Target {
    pub(crate) adapter: Arc<dyn Adapter>,
    pub(crate) upstream: Arc<UpstreamConfig>,
    pub(crate) timeouts: Timeouts,
}

type CallFut<'a, T> = Pin<Box<dyn Future<Output = Result<T, ProviderError>> + Send + 'a>>;

pub(crate) struct Deployment {
    pub(crate) id: Arc<str>,
    pub(crate) group: Arc<str>,
    /// The provider model as configured (may contain `*` in a wildcard group).
    pub(crate) model: Arc<str>,
    slot: usize,
    /// Adapter and upstream config, resolved at build time (`None` for `*` models).
    resolved: Option<(Arc<dyn Adapter>, Arc<UpstreamConfig>)>,
    /// The upstream config without the model, for `*` models.
    base: UpstreamConfig,
    rpm: Option<u64>,
    tpm: Option<u64>,
    configured_weight: Option<f64>,
    /// The simple-shuffle weight (see `set_shuffle_weights`).
    weight: f64,
    order: u32,
    timeout: Option<Duration>,
    stream_timeout: Option<Duration>,
    tags: Box<[String]>,
    max_parallel: Option<u64>,
    max_input_tokens: Option<u64>,
    price: Option<(f64, f64)>,
}

impl Deployment {
    pub(crate) fn r(&self) -> DeploymentRef<'_> {
        DeploymentRef { slot: self.slot, id: &self.id }
    }

    fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
}

impl fmt::Debug for Deployment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deployment")
            .field("id", &self.id)
            .field("group", &self.group)
            .field("model", &self.model)
            .field("order", &self.order)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Group {
    name: Arc<str>,
    /// Deployment indices, sorted by `order` (stable).
    members: Box<[usize]>,
    /// `members` ranges of equal `order`, lowest first.
    tiers: Box<[(usize, usize)]>,
    /// For wildcard groups: the text around the `*`.
    pattern: Option<(String, String)>,
    has_default_tag: bool,
}

impl Group {
    /// The part of `model` the `*` matched, for a wildcard group.
    fn capture<'m>(&self, model: &'m str) -> Option<&'m str> {
        let (pre, post) = self.pattern.as_ref()?;
        if model.len() >= pre.len() + post.len()
            && model.starts_with(pre.as_str())
            && model.ends_with(post.as_str())
        {
            Some(&model[pre.len()..model.len() - post.len()])
        } else {
            None
        }
    }
}

pub(crate) struct Inner {
    settings: RouterSettings,
    pub(crate) deployments: Vec<Deployment>,
    groups: Vec<Group>,
    by_name: HashMap<String, usize>,
    /// Wildcard groups, most specific (longest fixed text) first.
    wildcards: Vec<usize>,
    resolver: Arc<Resolver>,
    hook: Option<Arc<UpstreamHook>>,
    authorizer: Option<Arc<Authorizer>>,
    catalog: Arc<dyn ModelCatalog>,
    pub(crate) state: Arc<dyn RouterState>,
    pub(crate) clock: Arc<dyn Clock>,
    sleeper: Arc<dyn Sleeper>,
    transport: HttpTransport,
    policy: CooldownPolicy,
    pub(crate) latency_alpha: f64,
}

impl Inner {
    pub(crate) fn policy(&self) -> &CooldownPolicy {
        &self.policy
    }

    /// The target with any per-attempt credential fetched (no allocation when none is needed).
    async fn authorized(&self, mut t: Target) -> Result<Target, ProviderError> {
        let pending = self.authorizer.as_ref().and_then(|a| a(t.adapter.as_ref(), &t.upstream));
        if let Some(fetch) = pending {
            let token = fetch.await?;
            Arc::make_mut(&mut t.upstream).bearer_token = Some(token);
        }
        Ok(t)
    }
}

/// Routes requests for model groups over their deployments. Cheap to clone.
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("strategy", &self.inner.settings.routing_strategy)
            .field("groups", &self.inner.groups.iter().map(|g| &*g.name).collect::<Vec<_>>())
            .field("deployments", &self.inner.deployments.len())
            .finish()
    }
}

/// Builds a [`Router`] from a [`RouterConfig`].
pub struct RouterBuilder {
    config: RouterConfig,
    resolver: Option<Arc<Resolver>>,
    hook: Option<Arc<UpstreamHook>>,
    authorizer: Option<Arc<Authorizer>>,
    catalog: Arc<dyn ModelCatalog>,
    state: Option<Arc<dyn RouterState>>,
    clock: Arc<dyn Clock>,
    sleeper: Arc<dyn Sleeper>,
    transport: Option<HttpTransport>,
}

impl fmt::Debug for RouterBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouterBuilder").field("config", &self.config).finish_non_exhaustive()
    }
}

impl RouterBuilder {
    /// How provider model strings become adapters (required).
    pub fn resolver(
        mut self,
        f: impl Fn(&str) -> Result<(Arc<dyn Adapter>, String), ProviderError> + Send + Sync + 'static,
    ) -> Self {
        self.resolver = Some(Arc::new(f));
        self
    }

    /// A last touch on every deployment's upstream config (credentials from the environment, …).
    pub fn upstream_hook(
        mut self,
        f: impl Fn(&dyn Adapter, &mut UpstreamConfig) + Send + Sync + 'static,
    ) -> Self {
        self.hook = Some(Arc::new(f));
        self
    }

    /// Fetches per-attempt credentials (e.g. OAuth tokens) that cannot be known when the
    /// deployment is built; see [`Authorizer`].
    pub fn authorizer(
        mut self,
        f: impl Fn(&dyn Adapter, &UpstreamConfig) -> Option<AuthFuture> + Send + Sync + 'static,
    ) -> Self {
        self.authorizer = Some(Arc::new(f));
        self
    }

    /// Model facts for context checks, cost-based routing and `max_output_tokens`.
    pub fn catalog(mut self, catalog: Arc<dyn ModelCatalog>) -> Self {
        self.catalog = catalog;
        self
    }

    /// Shared routing state (default: a fresh [`InMemoryState`]).
    pub fn state(mut self, state: Arc<dyn RouterState>) -> Self {
        self.state = Some(state);
        self
    }

    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// The upstream HTTP client (default: `HttpTransport::new()`).
    pub fn transport(mut self, transport: HttpTransport) -> Self {
        self.transport = Some(transport);
        self
    }

    pub fn build(self) -> Result<Router, ConfigError> {
        let resolver =
            self.resolver.ok_or_else(|| ConfigError::Settings("no provider resolver set".into()))?;
        let s = &self.config.router_settings;
        let args = s.routing_strategy_args;
        if !(args.latency_ewma_alpha > 0.0 && args.latency_ewma_alpha <= 1.0) {
            return Err(ConfigError::Settings("latency_ewma_alpha must be in (0, 1]".into()));
        }
        if s.cooldown_failure_ratio.is_some_and(|r| !(r > 0.0 && r <= 1.0)) {
            return Err(ConfigError::Settings("cooldown_failure_ratio must be in (0, 1]".into()));
        }
        let transport = match self.transport {
            Some(t) => t,
            None => HttpTransport::new().map_err(|e| ConfigError::Settings(e.to_string()))?,
        };

        let mut deployments = Vec::with_capacity(self.config.model_list.len());
        let mut seen_ids = HashMap::new();
        for (i, dc) in self.config.model_list.iter().enumerate() {
            let d = build_deployment(i, dc, &resolver, self.hook.as_deref(), self.catalog.as_ref())?;
            if seen_ids.insert(d.id.clone(), i).is_some() {
                return Err(ConfigError::DuplicateId(d.id.to_string()));
            }
            deployments.push(d);
        }

        // Groups, in first-appearance order.
        let mut by_name: HashMap<String, usize> = HashMap::new();
        let mut members: Vec<Vec<usize>> = Vec::new();
        let mut names: Vec<Arc<str>> = Vec::new();
        for (i, d) in deployments.iter().enumerate() {
            let gi = *by_name.entry(d.group.to_string()).or_insert_with(|| {
                members.push(Vec::new());
                names.push(d.group.clone());
                members.len() - 1
            });
            members[gi].push(i);
        }
        let mut groups = Vec::with_capacity(members.len());
        for (gi, mut m) in members.into_iter().enumerate() {
            let name = names[gi].clone();
            m.sort_by_key(|&i| deployments[i].order);
            let mut tiers = Vec::new();
            let mut start = 0;
            for k in 1..=m.len() {
                if k == m.len() || deployments[m[k]].order != deployments[m[start]].order {
                    tiers.push((start, k));
                    start = k;
                }
            }
            set_shuffle_weights(&mut deployments, &m);
            let pattern = match name.matches('*').count() {
                0 => None,
                1 => name.split_once('*').map(|(a, b)| (a.to_owned(), b.to_owned())),
                _ => {
                    return Err(ConfigError::Settings(format!("group `{name}`: only one `*` is supported")));
                }
            };
            for &i in &m {
                if deployments[i].model.contains('*') && pattern.is_none() {
                    return Err(ConfigError::Deployment {
                        group: name.to_string(),
                        index: i,
                        message: "a `*` model needs a wildcard model_name".into(),
                    });
                }
            }
            let has_default_tag = m.iter().any(|&i| deployments[i].has_tag("default"));
            groups.push(Group { name, members: m.into(), tiers: tiers.into(), pattern, has_default_tag });
        }
        let mut wildcards: Vec<usize> = (0..groups.len()).filter(|&g| groups[g].pattern.is_some()).collect();
        wildcards.sort_by_key(|&g| std::cmp::Reverse(groups[g].name.len()));

        let state = self.state.unwrap_or_else(|| Arc::new(InMemoryState::new()));
        let ids: Vec<&str> = deployments.iter().map(|d| &*d.id).collect();
        state.prepare(&ids);
        let policy = CooldownPolicy {
            allowed_fails: s.allowed_fails,
            failure_ratio: s.cooldown_failure_ratio,
            min_requests: s.cooldown_min_requests,
            cooldown_time: s.cooldown_time,
        };
        let inner = Inner {
            latency_alpha: args.latency_ewma_alpha,
            settings: self.config.router_settings,
            deployments,
            groups,
            by_name,
            wildcards,
            resolver,
            hook: self.hook,
            authorizer: self.authorizer,
            catalog: self.catalog,
            state,
            clock: self.clock,
            sleeper: self.sleeper,
            transport,
            policy,
        };
        Ok(Router { inner: Arc::new(inner) })
    }
}

fn build_deployment(
    index: usize,
    dc: &DeploymentConfig,
    resolver: &Arc<Resolver>,
    hook: Option<&UpstreamHook>,
    catalog: &dyn ModelCatalog,
) -> Result<Deployment, ConfigError> {
    let p = &dc.litellm_params;
    let err = |message: String| ConfigError::Deployment { group: dc.model_name.clone(), index, message };
    if dc.model_name.is_empty() {
        return Err(err("model_name is empty".into()));
    }
    if p.model.is_empty() {
        return Err(err("litellm_params.model is empty".into()));
    }
    if p.weight.is_some_and(|w| !(w >= 0.0 && w.is_finite())) {
        return Err(err("weight must be a non-negative number".into()));
    }
    let id: Arc<str> = match &dc.model_info.id {
        Some(id) => Arc::from(id.as_str()),
        None => Arc::from(format!("{}#{index}", dc.model_name)),
    };
    let wildcard = p.model.contains('*');
    let max_output = dc
        .model_info
        .max_output_tokens
        .or_else(|| (!wildcard).then(|| catalog.max_output_tokens(&p.model)).flatten());
    let mut base = base_upstream(p);
    base.max_output_tokens = max_output.map(|v| u32::try_from(v).unwrap_or(u32::MAX));
    let resolved = if wildcard {
        None
    } else {
        let (adapter, upstream_model) = resolver(&p.model).map_err(|e| err(e.message))?;
        let mut cfg = base.clone();
        cfg.model = upstream_model;
        if let Some(h) = hook {
            h(adapter.as_ref(), &mut cfg);
        }
        Some((adapter, Arc::new(cfg)))
    };
    let custom_price = match (
        p.input_cost_per_token.or(dc.model_info.input_cost_per_token),
        p.output_cost_per_token.or(dc.model_info.output_cost_per_token),
    ) {
        (Some(i), Some(o)) => Some((i, o)),
        (Some(i), None) => Some((i, 0.0)),
        (None, Some(o)) => Some((0.0, o)),
        (None, None) => None,
    };
    Ok(Deployment {
        id,
        group: Arc::from(dc.model_name.as_str()),
        model: Arc::from(p.model.as_str()),
        slot: index,
        resolved,
        base,
        rpm: p.rpm,
        tpm: p.tpm,
        configured_weight: p.weight,
        weight: 1.0,
        order: p.order.unwrap_or(u32::MAX),
        timeout: p.timeout,
        stream_timeout: p.stream_timeout,
        tags: p.tags.clone().into(),
        max_parallel: p.max_parallel_requests.map(u64::from),
        max_input_tokens: dc
            .model_info
            .max_input_tokens
            .or_else(|| (!wildcard).then(|| catalog.context_window(&p.model)).flatten()),
        price: custom_price.or_else(|| (!wildcard).then(|| catalog.cost_per_token(&p.model)).flatten()),
    })
}

/// Simple-shuffle weights of a group: `weight` if any deployment has one (missing: 1), else
/// `rpm` if every deployment has one, else `tpm` likewise, else uniform.
fn set_shuffle_weights(deployments: &mut [Deployment], members: &[usize]) {
    let params: Vec<(Option<f64>, Option<u64>, Option<u64>)> = members
        .iter()
        .map(|&i| (deployments[i].configured_weight, deployments[i].rpm, deployments[i].tpm))
        .collect();
    let any_weight = params.iter().any(|p| p.0.is_some());
    let all_rpm = params.iter().all(|p| p.1.is_some());
    let all_tpm = params.iter().all(|p| p.2.is_some());
    for (k, &i) in members.iter().enumerate() {
        let (w, rpm, tpm) = params[k];
        deployments[i].weight = if any_weight {
            w.unwrap_or(1.0)
        } else if all_rpm {
            rpm.unwrap_or(0) as f64
        } else if all_tpm {
            tpm.unwrap_or(0) as f64
        } else {
            1.0
        };
    }
}

fn base_upstream(p: &DeploymentParams) -> UpstreamConfig {
    let mut u = UpstreamConfig {
        api_base: p.api_base.clone(),
        api_key: p.api_key.clone(),
        api_version: p.api_version.clone(),
        organization: p.organization.clone(),
        headers: p.extra_headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        drop_params: p.drop_params.unwrap_or(false),
        ..UpstreamConfig::default()
    };
    for (k, v) in &p.extra {
        let s = match v {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match k.as_str() {
            "bearer_token" | "azure_ad_token" => u.bearer_token = Some(Secret::new(s)),
            _ if is_secret_param(k) => {
                u.secrets.insert(k.clone(), Secret::new(s));
            }
            _ => {
                u.options.insert(k.clone(), s);
            }
        }
    }
    u
}

/// Why a deployment was not a candidate, summed over a selection.
#[derive(Debug, Default)]
struct Skips {
    eligible: bool,
    context: bool,
    cooling_until: Option<u64>,
    limited: bool,
}

/// How tags restrict a group for one request.
#[derive(Debug, Clone, Copy)]
enum TagMode<'r> {
    All,
    /// Deployments whose tags include all of these.
    Subset(&'r [String]),
    /// Deployments tagged `default`.
    DefaultOnly,
}

/// Per-request facts the selection needs.
struct ReqCtx<'r> {
    model: &'r str,
    stream: bool,
    prompt_tokens: Option<u64>,
    output_tokens: Option<u64>,
    opts: &'r RequestOptions,
}

/// A failure of one group.
struct Fail {
    reason: FailureReason,
    error: ProviderError,
}

enum Pick {
    Chosen(usize),
    None(Skips),
}

impl Inner {
    fn find_group<'m>(&self, model: &'m str) -> Option<(usize, Option<&'m str>)> {
        if let Some(&g) = self.by_name.get(model) {
            return Some((g, None));
        }
        self.wildcards.iter().find_map(|&g| self.groups[g].capture(model).map(|c| (g, Some(c))))
    }

    fn tag_mode<'r>(&self, g: &Group, tags: &'r [String]) -> Result<TagMode<'r>, Fail> {
        if !self.settings.enable_tag_filtering {
            return Ok(TagMode::All);
        }
        if tags.is_empty() {
            return Ok(if g.has_default_tag { TagMode::DefaultOnly } else { TagMode::All });
        }
        let matches = g.members.iter().any(|&i| tags.iter().all(|t| self.deployments[i].has_tag(t)));
        if matches {
            Ok(TagMode::Subset(tags))
        } else if g.has_default_tag {
            Ok(TagMode::DefaultOnly)
        } else {
            Err(Fail {
                reason: FailureReason::NoEligibleDeployment,
                error: ProviderError::bad_request(format!(
                    "no deployment of `{}` has the tags {:?} and none is tagged `default`",
                    g.name, tags
                ))
                .with_code("no_deployment_for_tags"),
            })
        }
    }

    fn tag_ok(d: &Deployment, mode: TagMode<'_>) -> bool {
        match mode {
            TagMode::All => true,
            TagMode::Subset(tags) => tags.iter().all(|t| d.has_tag(t)),
            TagMode::DefaultOnly => d.has_tag("default"),
        }
    }

    fn context_ok(&self, d: &Deployment, model: Option<&str>, rq: &ReqCtx<'_>) -> bool {
        if !self.settings.enable_pre_call_checks {
            return true;
        }
        let Some(prompt) = rq.prompt_tokens else { return true };
        let window = match (d.max_input_tokens, model) {
            (Some(w), _) => Some(w),
            (None, Some(m)) => self.catalog.context_window(m),
            (None, None) => None,
        };
        window.is_none_or(|w| prompt <= w)
    }

    fn is_full(d: &Deployment, load: &DeploymentLoad, rq: &ReqCtx<'_>) -> bool {
        d.max_parallel.is_some_and(|m| load.in_flight >= m)
            || d.rpm.is_some_and(|r| load.rpm_used >= r)
            || d.tpm.is_some_and(|t| {
                // Full when the minute's budget is spent, or this prompt would overflow it (a prompt
                // larger than the whole budget still goes to a deployment idle this minute).
                load.tpm_used >= t || (load.tpm_used > 0 && load.tpm_used + rq.prompt_tokens.unwrap_or(0) > t)
            })
    }

    fn cost(&self, d: &Deployment, model: Option<&str>, rq: &ReqCtx<'_>) -> f64 {
        let price = d.price.or_else(|| model.and_then(|m| self.catalog.cost_per_token(m)));
        match price {
            None => f64::INFINITY,
            Some((i, o)) => {
                let p = rq.prompt_tokens.unwrap_or(1) as f64;
                let out = rq.output_tokens.unwrap_or(1) as f64;
                i * p + o * out
            }
        }
    }

    /// Chooses a deployment: the lowest priority tier with a candidate; untried deployments
    /// first, then (when every eligible one was tried) tried ones again.
    fn select(
        &self,
        g: &Group,
        rq: &ReqCtx<'_>,
        mode: TagMode<'_>,
        captured: Option<&str>,
        tried: &[usize],
    ) -> Pick {
        let now = self.clock.now_ms();
        let mut skips = Skips::default();
        let mut cands = Cands::new();
        let cx = PickCtx {
            strategy: self.settings.routing_strategy,
            stream: rq.stream,
            latency_buffer: self.settings.routing_strategy_args.lowest_latency_buffer,
        };
        let need_cost = self.settings.routing_strategy == RoutingStrategy::CostBased;
        let mut wildcard_model = String::new();
        for pass in 0..2 {
            if pass == 1 && tried.is_empty() {
                break;
            }
            for &(start, end) in g.tiers.iter() {
                cands.clear();
                for &di in &g.members[start..end] {
                    let d = &self.deployments[di];
                    if !Self::tag_ok(d, mode) {
                        continue;
                    }
                    let model = if d.resolved.is_some() {
                        None
                    } else {
                        wildcard_model.clear();
                        wildcard_model.push_str(&d.model.replace('*', captured.unwrap_or("")));
                        Some(wildcard_model.as_str())
                    };
                    if !self.context_ok(d, model, rq) {
                        skips.context = true;
                        continue;
                    }
                    skips.eligible = true;
                    if pass == 0 && tried.contains(&di) {
                        continue;
                    }
                    let load = self.state.load(d.r(), now);
                    if load.cooldown_until_ms > now {
                        skips.cooling_until = Some(
                            skips
                                .cooling_until
                                .map_or(load.cooldown_until_ms, |c| c.min(load.cooldown_until_ms)),
                        );
                        continue;
                    }
                    if Self::is_full(d, &load, rq) {
                        skips.limited = true;
                        continue;
                    }
                    let cost = if need_cost { self.cost(d, model, rq) } else { 0.0 };
                    cands.push(Cand { deployment: di, load, weight: d.weight, cost });
                }
                if !cands.is_empty() {
                    return Pick::Chosen(pick(&cands, &cx));
                }
            }
        }
        Pick::None(skips)
    }

    fn unavailable(&self, g: &Group, skips: &Skips) -> Fail {
        let now = self.clock.now_ms();
        if !skips.eligible {
            if skips.context {
                return Fail {
                    reason: FailureReason::NoEligibleDeployment,
                    error: ProviderError::new(
                        ErrorKind::ContextWindowExceeded,
                        format!(
                            "the prompt does not fit the context window of any deployment of `{}`",
                            g.name
                        ),
                    ),
                };
            }
            return Fail {
                reason: FailureReason::NoEligibleDeployment,
                error: ProviderError::bad_request(format!(
                    "no deployment of `{}` can take this request",
                    g.name
                ))
                .with_code("no_deployment_for_tags"),
            };
        }
        let cooling = skips.cooling_until.map(|u| Duration::from_millis(u.saturating_sub(now)));
        if skips.limited {
            let next_minute = Duration::from_millis(60_000 - now % 60_000);
            let wait = cooling.map_or(next_minute, |c| c.min(next_minute));
            return Fail {
                reason: FailureReason::AllUnavailable,
                error: ProviderError::new(
                    ErrorKind::RateLimited,
                    format!(
                        "every deployment of `{}` is at its rpm/tpm/parallel limit or cooling down; retry in {:.1}s",
                        g.name,
                        wait.as_secs_f64()
                    ),
                )
                .with_retry_after(Some(wait)),
            };
        }
        let wait = cooling.unwrap_or_default();
        Fail {
            reason: FailureReason::AllUnavailable,
            error: ProviderError::new(
                ErrorKind::Overloaded,
                format!(
                    "every deployment of `{}` is cooling down after failures; the first is back in {:.1}s",
                    g.name,
                    wait.as_secs_f64()
                ),
            )
            .with_code("all_deployments_cooling_down")
            .with_retry_after(Some(wait)),
        }
    }

    fn target(
        &self,
        d: &Deployment,
        captured: Option<&str>,
        rq: &ReqCtx<'_>,
    ) -> Result<(Target, Arc<str>), ProviderError> {
        let total = rq.opts.timeout.or(d.timeout).or(self.settings.timeout).or(Timeouts::default().total);
        let first_token = if rq.stream {
            rq.opts.stream_timeout.or(d.stream_timeout).or(self.settings.stream_timeout)
        } else {
            None
        };
        let timeouts = Timeouts { total, first_token };
        if let Some((adapter, upstream)) = &d.resolved {
            return Ok((
                Target { adapter: adapter.clone(), upstream: upstream.clone(), timeouts },
                d.model.clone(),
            ));
        }
        let model = d.model.replace('*', captured.unwrap_or(""));
        let (adapter, upstream_model) = (self.resolver)(&model)?;
        let mut cfg = d.base.clone();
        cfg.model = upstream_model;
        if cfg.max_output_tokens.is_none() {
            cfg.max_output_tokens =
                self.catalog.max_output_tokens(&model).map(|v| u32::try_from(v).unwrap_or(u32::MAX));
        }
        if let Some(h) = &self.hook {
            h(adapter.as_ref(), &mut cfg);
        }
        Ok((Target { adapter, upstream: Arc::new(cfg), timeouts }, Arc::from(model)))
    }

    fn retry_limit(&self, kind: ErrorKind, opts: &RequestOptions) -> u32 {
        let base = opts.num_retries.unwrap_or(self.settings.num_retries);
        let p = &self.settings.retry_policy;
        let specific = match kind {
            ErrorKind::RateLimited => p.rate_limit_error_retries,
            ErrorKind::Timeout(_) => p.timeout_error_retries,
            ErrorKind::ServerError | ErrorKind::Overloaded | ErrorKind::Transport => {
                p.internal_server_error_retries
            }
            ErrorKind::Authentication | ErrorKind::PermissionDenied => p.authentication_error_retries,
            _ => None,
        };
        specific.unwrap_or(base)
    }

    /// Full-jitter exponential backoff for retry number `n` (0-based), at least `retry_after`.
    fn backoff(&self, n: u32) -> Duration {
        let s = &self.settings;
        let exp = s.retry_backoff_base.saturating_mul(1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX));
        let cap = exp.min(s.retry_backoff_max);
        cap.mul_f64(rng::next_f64()).max(s.retry_after)
    }

    fn fallback_list(&self, group: &str, requested: &str, kind: ErrorKind) -> &[String] {
        let s = &self.settings;
        let find = |list| lookup_fallbacks(list, requested).or_else(|| lookup_fallbacks(list, group));
        let specific = match kind {
            ErrorKind::ContextWindowExceeded => find(&s.context_window_fallbacks),
            ErrorKind::ContentFiltered => find(&s.content_policy_fallbacks),
            _ => None,
        };
        specific.or_else(|| find(&s.fallbacks)).unwrap_or(&s.default_fallbacks)
    }

    /// Runs a request on the requested group, then on its fallbacks.
    async fn execute<'a, T, F>(
        self: &'a Arc<Self>,
        rq: ReqCtx<'a>,
        call: F,
    ) -> Result<(T, Completion, RouteInfo), RouterError>
    where
        F: Fn(Target) -> CallFut<'a, T> + Sync,
        T: Send,
    {
        let mut attempts = Vec::new();
        let Some((g, _)) = self.find_group(rq.model) else {
            return Err(RouterError {
                reason: FailureReason::UnknownModel,
                error: Box::new(
                    ProviderError::new(
                        ErrorKind::NotFound,
                        format!("no model group `{}` is configured on this router", rq.model),
                    )
                    .with_param("model"),
                ),
                attempts,
            });
        };
        let route =
            |group: &Arc<str>, d: usize, model: Arc<str>, attempts: Vec<Attempt>, fallbacks| RouteInfo {
                requested: rq.model.to_owned(),
                group: group.clone(),
                deployment_id: self.deployments[d].id.clone(),
                model,
                attempts,
                fallbacks,
            };
        let first = match self.try_group(g, rq.model, &rq, &call, &mut attempts).await {
            Ok((v, c, d, model)) => {
                let info = route(&self.groups[g].name, d, model, attempts, 0);
                return Ok((v, c, info));
            }
            Err(f) => f,
        };
        let mut last = first;
        if !rq.opts.disable_fallbacks && last.error.kind.should_fall_back() {
            let list = self.fallback_list(&self.groups[g].name, rq.model, last.error.kind);
            let mut used = 0u32;
            for fb in list {
                if used >= self.settings.max_fallbacks {
                    break;
                }
                let Some((fg, _)) = self.find_group(fb) else { continue };
                if fg == g {
                    continue;
                }
                used += 1;
                match self.try_group(fg, fb, &rq, &call, &mut attempts).await {
                    Ok((v, c, d, model)) => {
                        let info = route(&self.groups[fg].name, d, model, attempts, used);
                        return Ok((v, c, info));
                    }
                    Err(f) => {
                        let stop = !f.error.kind.should_fall_back();
                        last = f;
                        if stop {
                            break;
                        }
                    }
                }
            }
        }
        Err(RouterError { reason: last.reason, error: Box::new(last.error), attempts })
    }

    /// Tries one group: selection, the call, retries with backoff.
    async fn try_group<'a, T, F>(
        self: &'a Arc<Self>,
        gi: usize,
        model: &str,
        rq: &ReqCtx<'a>,
        call: &F,
        attempts: &mut Vec<Attempt>,
    ) -> Result<(T, Completion, usize, Arc<str>), Fail>
    where
        F: Fn(Target) -> CallFut<'a, T> + Sync,
        T: Send,
    {
        let g = &self.groups[gi];
        let captured = g.capture(model);
        let mode = self.tag_mode(g, &rq.opts.tags)?;
        let mut tried: Vec<usize> = Vec::new();
        let mut retries = 0u32;
        let mut last: Option<ProviderError> = None;
        let mut next = self.select(g, rq, mode, captured, &tried);
        loop {
            let di = match next {
                Pick::Chosen(di) => di,
                Pick::None(skips) => {
                    let mut fail = self.unavailable(g, &skips);
                    if let Some(e) = last {
                        // Calls were made: their error is what the client should see.
                        let retry_after = e.retry_after.or(fail.error.retry_after);
                        fail = Fail {
                            reason: FailureReason::AttemptsFailed,
                            error: e.with_retry_after(retry_after),
                        };
                    }
                    return Err(fail);
                }
            };
            let d = &self.deployments[di];
            let same_as_before = tried.contains(&di);
            if !same_as_before {
                tried.push(di);
            }
            let start = self.clock.now();
            let result = match self.target(d, captured, rq) {
                Ok((target, model)) => {
                    self.state.begin(d.r(), self.clock.now_ms());
                    let completion = Completion::new(self.clone(), di);
                    let r = call(target).await;
                    Ok((r, completion, model))
                }
                Err(e) => Err(e),
            };
            let duration = self.clock.now().saturating_sub(start);
            let (error, model) = match result {
                Ok((Ok(v), completion, model)) => {
                    self.state.record_success(d.r(), self.clock.now_ms());
                    self.state.record_latency(d.r(), duration, rq.stream, self.latency_alpha);
                    attempts.push(Attempt {
                        group: g.name.clone(),
                        deployment_id: d.id.clone(),
                        model: model.clone(),
                        duration,
                        error: None,
                    });
                    return Ok((v, completion, di, model));
                }
                Ok((Err(e), completion, model)) => {
                    drop(completion);
                    (e, model)
                }
                Err(e) => (e, d.model.clone()),
            };
            if error.kind.should_cool_down() {
                self.state.record_failure(d.r(), self.clock.now_ms(), &self.policy);
            }
            if matches!(error.kind, ErrorKind::Timeout(_)) {
                // A timeout is the slowest answer there is: let latency routing see it.
                self.state.record_latency(d.r(), duration, rq.stream, self.latency_alpha);
            }
            attempts.push(Attempt {
                group: g.name.clone(),
                deployment_id: d.id.clone(),
                model,
                duration,
                error: Some(error.clone()),
            });
            let stop = |e: ProviderError| Err(Fail { reason: FailureReason::AttemptsFailed, error: e });
            if retries >= self.retry_limit(error.kind, rq.opts) {
                return stop(error);
            }
            next = self.select(g, rq, mode, captured, &tried);
            let switching = matches!(next, Pick::Chosen(n) if !tried.contains(&n));
            if error.kind.is_retryable() {
                let mut delay = self.backoff(retries);
                if !switching {
                    // Same deployment again: honour its Retry-After, up to the cap.
                    if let Some(ra) = error.retry_after {
                        delay = delay.max(ra.min(self.settings.max_retry_after));
                    }
                }
                if !delay.is_zero() {
                    self.sleeper.sleep(delay).await;
                    next = self.select(g, rq, mode, captured, &tried);
                }
            } else if !(deployment_specific(error.kind) && switching) {
                return stop(error);
            }
            retries += 1;
            last = Some(error);
        }
    }
}

/// Errors that say something about one deployment (its credentials, its model name, its
/// output) rather than the request: another deployment of the group may succeed at once.
fn deployment_specific(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Authentication | ErrorKind::PermissionDenied | ErrorKind::NotFound | ErrorKind::Decode
    )
}

impl Router {
    /// A builder for `config`; set at least a resolver.
    pub fn builder(config: RouterConfig) -> RouterBuilder {
        RouterBuilder {
            config,
            resolver: None,
            hook: None,
            authorizer: None,
            catalog: Arc::new(NoCatalog),
            state: None,
            clock: Arc::new(SystemClock::new()),
            sleeper: Arc::new(TokioSleeper),
            transport: None,
        }
    }

    pub fn settings(&self) -> &RouterSettings {
        &self.inner.settings
    }

    /// The configured model group names (wildcard patterns included), in configuration order.
    pub fn model_names(&self) -> impl Iterator<Item = &str> {
        self.inner.groups.iter().map(|g| &*g.name)
    }

    /// Whether `model` names a group or matches a wildcard group.
    pub fn has_model(&self, model: &str) -> bool {
        self.inner.find_group(model).is_some()
    }

    /// The ids of the deployments of the group serving `model`.
    pub fn deployment_ids(&self, model: &str) -> Vec<Arc<str>> {
        self.inner
            .find_group(model)
            .map(|(g, _)| {
                self.inner.groups[g].members.iter().map(|&i| self.inner.deployments[i].id.clone()).collect()
            })
            .unwrap_or_default()
    }

    /// The current load of a deployment, by id.
    pub fn deployment_load(&self, id: &str) -> Option<DeploymentLoad> {
        let d = self.inner.deployments.iter().find(|d| &*d.id == id)?;
        Some(self.inner.state.load(d.r(), self.inner.clock.now_ms()))
    }

    /// Whether a deployment is out of rotation now.
    pub fn is_cooling_down(&self, id: &str) -> bool {
        self.deployment_load(id).is_some_and(|l| l.cooldown_until_ms > self.inner.clock.now_ms())
    }

    /// Picks a deployment for `model` as a request would, without calling it (for inspection
    /// and benchmarks). Returns the deployment id.
    pub fn pick_deployment(&self, model: &str, opts: &RequestOptions) -> Result<Arc<str>, RouterError> {
        let inner = &self.inner;
        let fail = |f: Fail| RouterError { reason: f.reason, error: Box::new(f.error), attempts: Vec::new() };
        let (gi, captured) = inner.find_group(model).ok_or_else(|| {
            fail(Fail {
                reason: FailureReason::UnknownModel,
                error: ProviderError::new(ErrorKind::NotFound, format!("no model group `{model}`")),
            })
        })?;
        let g = &inner.groups[gi];
        let rq = ReqCtx { model, stream: false, prompt_tokens: None, output_tokens: None, opts };
        let mode = inner.tag_mode(g, &opts.tags).map_err(fail)?;
        match inner.select(g, &rq, mode, captured, &[]) {
            Pick::Chosen(d) => Ok(inner.deployments[d].id.clone()),
            Pick::None(skips) => Err(fail(inner.unavailable(g, &skips))),
        }
    }

    fn chat_ctx<'r>(&self, req: &'r ChatRequest, opts: &'r RequestOptions, stream: bool) -> ReqCtx<'r> {
        let needs_tokens = self.inner.settings.enable_pre_call_checks
            || matches!(
                self.inner.settings.routing_strategy,
                RoutingStrategy::CostBased | RoutingStrategy::UsageBased
            );
        ReqCtx {
            model: &req.model,
            stream,
            prompt_tokens: if needs_tokens { self.inner.catalog.count_prompt_tokens(req) } else { None },
            output_tokens: req.output_token_limit().map(u64::from),
            opts,
        }
    }

    /// A chat completion, routed.
    pub async fn chat(
        &self,
        req: &ChatRequest,
        opts: &RequestOptions,
    ) -> Result<Routed<ChatResponse>, RouterError> {
        let inner = &self.inner;
        let transport = &inner.transport;
        let rq = self.chat_ctx(req, opts, false);
        let (resp, completion, route) = inner
            .execute(rq, |t: Target| {
                Box::pin(async move {
                    let t = inner.authorized(t).await?;
                    transport.chat(t.adapter.as_ref(), req, &t.upstream, &t.timeouts).await
                })
            })
            .await?;
        completion.add_tokens(resp.usage.as_ref().map_or(0, |u| u.total_tokens));
        Ok(Routed { response: resp, route })
    }

    /// A streamed chat completion, routed. Returns once the first chunk has arrived, so every
    /// retry and fallback happens before the caller sees anything; a later failure ends the
    /// stream with one `Err` item.
    pub async fn chat_stream(
        &self,
        req: &ChatRequest,
        opts: &RequestOptions,
    ) -> Result<Routed<RoutedStream<ChatChunk>>, RouterError> {
        let inner = &self.inner;
        let transport = &inner.transport;
        let rq = self.chat_ctx(req, opts, true);
        let (stream, completion, route) = inner
            .execute(rq, |t: Target| {
                Box::pin(async move {
                    let t = inner.authorized(t).await?;
                    transport.chat_stream(t.adapter.as_ref(), req, &t.upstream, &t.timeouts).await
                })
            })
            .await?;
        let stream =
            RoutedStream::new(stream, completion, |c: &ChatChunk| c.usage.as_ref().map(|u| u.total_tokens));
        Ok(Routed { response: stream, route })
    }

    /// Embeddings, routed (no pre-call token check).
    pub async fn embedding(
        &self,
        req: &EmbeddingRequest,
        opts: &RequestOptions,
    ) -> Result<Routed<EmbeddingResponse>, RouterError> {
        let inner = &self.inner;
        let transport = &inner.transport;
        let rq = ReqCtx { model: &req.model, stream: false, prompt_tokens: None, output_tokens: None, opts };
        let (resp, completion, route) = inner
            .execute(rq, |t: Target| {
                Box::pin(async move {
                    let t = inner.authorized(t).await?;
                    transport.embedding(t.adapter.as_ref(), req, &t.upstream, &t.timeouts).await
                })
            })
            .await?;
        completion.add_tokens(resp.usage.as_ref().map_or(0, |u| u.total_tokens));
        Ok(Routed { response: resp, route })
    }

    /// A legacy text completion, routed.
    pub async fn text_completion(
        &self,
        req: &TextCompletionRequest,
        opts: &RequestOptions,
    ) -> Result<Routed<TextCompletionResponse>, RouterError> {
        let inner = &self.inner;
        let transport = &inner.transport;
        let rq = ReqCtx { model: &req.model, stream: false, prompt_tokens: None, output_tokens: None, opts };
        let (resp, completion, route) = inner
            .execute(rq, |t: Target| {
                Box::pin(async move {
                    let t = inner.authorized(t).await?;
                    transport.text_completion(t.adapter.as_ref(), req, &t.upstream, &t.timeouts).await
                })
            })
            .await?;
        completion.add_tokens(resp.usage.as_ref().map_or(0, |u| u.total_tokens));
        Ok(Routed { response: resp, route })
    }

    /// A streamed legacy text completion, routed (first chunk peeked, as [`Router::chat_stream`]).
    pub async fn text_completion_stream(
        &self,
        req: &TextCompletionRequest,
        opts: &RequestOptions,
    ) -> Result<Routed<RoutedStream<TextCompletionResponse>>, RouterError> {
        let inner = &self.inner;
        let transport = &inner.transport;
        let rq = ReqCtx { model: &req.model, stream: true, prompt_tokens: None, output_tokens: None, opts };
        let (stream, completion, route) = inner
            .execute(rq, |t: Target| {
                Box::pin(async move {
                    let t = inner.authorized(t).await?;
                    transport.text_completion_stream(t.adapter.as_ref(), req, &t.upstream, &t.timeouts).await
                })
            })
            .await?;
        let stream = RoutedStream::new(stream, completion, |c: &TextCompletionResponse| {
            c.usage.as_ref().map(|u| u.total_tokens)
        });
        Ok(Routed { response: stream, route })
    }
}
