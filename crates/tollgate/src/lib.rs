//! # tollgate
//!
//! One OpenAI-shaped API in front of every LLM provider, as a library.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tollgate::Error> {
//! use tollgate::{ChatRequest, Message};
//!
//! // `OPENAI_API_KEY` is read from the environment; `groq/...` would read `GROQ_API_KEY`.
//! let req = ChatRequest::new("gpt-4o-mini", vec![Message::user("Say hi")]);
//! let resp = tollgate::completion(req).await?;
//! println!("{}", resp.first_text().unwrap_or_default());
//! # Ok(()) }
//! ```
//!
//! Model strings follow LiteLLM: `provider/model` (`groq/llama-3.3-70b-versatile`,
//! `azure/my-deployment`), or a bare OpenAI model name (`gpt-4o-mini`). Each provider crate is a
//! cargo feature (`openai` is the default); a program that enables only `openai` compiles no
//! server framework, database or telemetry code.
//!
//! Credentials come, in order, from the per-call [`CallOptions`], the [`Client`]'s per-provider
//! [`ProviderSettings`], then the provider's conventional environment variables. A key configured
//! for one provider is never sent to another.
//!
//! **Must never depend on** the proxy, storage, a server framework (axum), Redis or OpenTelemetry.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The canonical types, SSE codec and adapter traits, for users who write their own adapters.
pub use tollgate_core;
pub use tollgate_core::Secret;
pub use tollgate_core::chat::{
    AssistantMessage, ChatChunk, ChatRequest, ChatResponse, Choice, ContentPart, Delta, FinishReason,
    Message, MessageContent, ResponseFormat, Role, StreamAccumulator, Tool, ToolCall, ToolChoice, Usage,
};
pub use tollgate_core::completion::{TextCompletionRequest, TextCompletionResponse};
pub use tollgate_core::embedding::{EmbeddingInput, EmbeddingRequest, EmbeddingResponse};
pub use tollgate_core::error::{ErrorKind, ProviderError, TimeoutPhase};
/// Prices, cost by bucket, token counting and model facts (the `pricing` feature).
#[cfg(feature = "pricing")]
pub use tollgate_pricing as pricing;
pub use tollgate_transport::{Timeouts, TransportConfig};

use tollgate_core::{Adapter, ModelRef, UpstreamConfig};
pub use tollgate_router::{
    DeploymentConfig, DeploymentParams, RequestOptions, RouteInfo, Router, RouterConfig, RouterSettings,
    RoutingStrategy,
};
use tollgate_transport::HttpTransport;

#[cfg(feature = "gemini")]
mod google_auth;
mod registry;
mod stream;

pub use registry::{known_providers, resolve_provider};
pub use stream::{ChatStream, StreamItem, TextCompletionStream, UsageStream};

/// Every failure is a typed provider error: its [`ErrorKind`] says what happened and whether
/// retrying may help; configuration mistakes (unknown provider, missing key) are `BadRequest` or
/// `Authentication` errors raised before anything is sent.
pub type Error = ProviderError;

/// Settings for one provider, configured once on the [`Client`].
#[derive(Debug, Clone, Default)]
pub struct ProviderSettings {
    pub api_key: Option<Secret>,
    pub api_base: Option<String>,
    pub api_version: Option<String>,
    pub bearer_token: Option<Secret>,
    pub organization: Option<String>,
    /// Provider-specific settings (`aws_region_name`, `vertex_project`, …).
    pub options: BTreeMap<String, String>,
    /// Provider-specific secrets (`aws_secret_access_key`, …).
    pub secrets: BTreeMap<String, Secret>,
}

/// Per-call overrides (LiteLLM's `completion(..., api_base=, api_key=, timeout=, ...)`).
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    pub api_key: Option<Secret>,
    pub api_base: Option<String>,
    pub api_version: Option<String>,
    pub bearer_token: Option<Secret>,
    /// Total timeout for this call.
    pub timeout: Option<Duration>,
    /// Deadline for the response headers / first streamed chunk.
    pub first_token_timeout: Option<Duration>,
    /// Extra headers sent upstream.
    pub headers: Vec<(String, String)>,
    /// Extra top-level JSON fields merged into the upstream body.
    pub extra_body: serde_json::Map<String, serde_json::Value>,
    /// Drop parameters the provider does not support instead of failing.
    pub drop_params: Option<bool>,
    /// The model's max output tokens, for providers that require `max_tokens`.
    pub max_output_tokens: Option<u32>,
    pub options: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, Secret>,
}

impl CallOptions {
    pub fn api_key(mut self, key: impl Into<Secret>) -> Self {
        self.api_key = Some(key.into());
        self
    }
    pub fn api_base(mut self, base: impl Into<String>) -> Self {
        self.api_base = Some(base.into());
        self
    }
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
    pub fn first_token_timeout(mut self, timeout: Duration) -> Self {
        self.first_token_timeout = Some(timeout);
        self
    }
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    pub fn extra_body(mut self, key: impl Into<String>, value: serde_json::Value) -> Self {
        self.extra_body.insert(key.into(), value);
        self
    }
    pub fn drop_params(mut self, drop: bool) -> Self {
        self.drop_params = Some(drop);
        self
    }
}

type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Builds a [`Client`].
pub struct ClientBuilder {
    providers: HashMap<String, ProviderSettings>,
    timeouts: Timeouts,
    drop_params: bool,
    env: EnvLookup,
    transport: TransportConfig,
    router: Option<RouterConfig>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("providers", &self.providers)
            .field("timeouts", &self.timeouts)
            .field("drop_params", &self.drop_params)
            .finish_non_exhaustive()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            providers: HashMap::new(),
            timeouts: Timeouts::default(),
            drop_params: false,
            env: Arc::new(|name| std::env::var(name).ok().filter(|v| !v.is_empty())),
            transport: TransportConfig::default(),
            router: None,
        }
    }
}

impl ClientBuilder {
    /// Settings for one provider prefix (`openai`, `groq`, `azure`, …).
    pub fn provider(mut self, name: impl Into<String>, settings: ProviderSettings) -> Self {
        self.providers.insert(name.into(), settings);
        self
    }

    /// Shorthand: the API key of one provider.
    pub fn api_key(mut self, provider: impl Into<String>, key: impl Into<Secret>) -> Self {
        self.providers.entry(provider.into()).or_default().api_key = Some(key.into());
        self
    }

    /// Shorthand: the base URL of one provider.
    pub fn api_base(mut self, provider: impl Into<String>, base: impl Into<String>) -> Self {
        self.providers.entry(provider.into()).or_default().api_base = Some(base.into());
        self
    }

    /// Default total timeout of every call (600 s unless set).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.total = Some(timeout);
        self
    }

    /// Default first-token timeout of every call (none unless set).
    pub fn first_token_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.first_token = Some(timeout);
        self
    }

    /// Drop unsupported parameters by default (LiteLLM's `litellm.drop_params = True`).
    pub fn drop_params(mut self, drop: bool) -> Self {
        self.drop_params = drop;
        self
    }

    /// Where environment variables are read from (the process environment by default). Tests
    /// and embedders that keep secrets elsewhere plug in their own lookup.
    pub fn env(mut self, lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        self.env = Arc::new(lookup);
        self
    }

    /// Do not read the environment at all.
    pub fn no_env(self) -> Self {
        self.env(|_| None)
    }

    pub fn transport_config(mut self, config: TransportConfig) -> Self {
        self.transport = config;
        self
    }

    /// Route model names through a [`Router`]: calls whose model is one of its groups (LiteLLM's
    /// `model_list`) go through its deployments, retries and fallbacks; other model strings are
    /// still called directly. Deployments without explicit credentials get them like direct calls.
    pub fn router(mut self, config: RouterConfig) -> Self {
        self.router = Some(config);
        self
    }

    pub fn build(self) -> Result<Client, Error> {
        let transport = HttpTransport::with_config(self.transport)
            .map_err(|e| ProviderError::new(ErrorKind::Transport, e.to_string()))?;
        let credentials = CredentialSources { providers: Arc::new(self.providers), env: self.env };
        #[cfg(feature = "gemini")]
        let google_tokens = Arc::new(google_auth::GoogleTokens::default());
        let router = match self.router {
            None => None,
            Some(config) => {
                let builder = router_builder(config, transport.clone(), credentials.clone());
                #[cfg(feature = "gemini")]
                let builder = {
                    let (tokens, transport) = (google_tokens.clone(), transport.clone());
                    builder.authorizer(move |adapter, cfg| {
                        if adapter.provider() != "vertex_ai" || !google_auth::GoogleTokens::needs_token(cfg) {
                            return None;
                        }
                        let (tokens, transport, cfg) = (tokens.clone(), transport.clone(), cfg.clone());
                        Some(Box::pin(async move {
                            let timeouts = Timeouts::total(std::time::Duration::from_secs(30));
                            tokens.token(&transport, &cfg, &timeouts).await?.ok_or_else(|| {
                                ProviderError::new(
                                    ErrorKind::Authentication,
                                    "no Google credentials to exchange",
                                )
                            })
                        }))
                    })
                };
                Some(builder.build().map_err(|e| {
                    ProviderError::bad_request(format!("invalid router configuration: {e}"))
                        .with_code("invalid_config")
                })?)
            }
        };
        Ok(Client {
            inner: Arc::new(Inner {
                transport,
                credentials,
                router,
                timeouts: self.timeouts,
                drop_params: self.drop_params,
                #[cfg(feature = "gemini")]
                google_tokens,
            }),
        })
    }
}

/// A configured SDK client. Cheap to clone; share one per process to reuse connections.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    transport: HttpTransport,
    credentials: CredentialSources,
    router: Option<Router>,
    timeouts: Timeouts,
    drop_params: bool,
    #[cfg(feature = "gemini")]
    google_tokens: Arc<google_auth::GoogleTokens>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("providers", &self.inner.credentials.providers.keys().collect::<Vec<_>>())
            .field("router", &self.inner.router.is_some())
            .field("timeouts", &self.inner.timeouts)
            .finish_non_exhaustive()
    }
}

/// A resolved call: which adapter, with which upstream settings and deadlines.
struct Prepared {
    adapter: Arc<dyn Adapter>,
    cfg: UpstreamConfig,
    timeouts: Timeouts,
}

impl Client {
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client with default settings that reads credentials from the environment.
    pub fn from_env() -> Result<Client, Error> {
        Self::builder().build()
    }

    /// Chat completion.
    pub async fn completion(&self, req: ChatRequest) -> Result<ChatResponse, Error> {
        self.completion_with(req, &CallOptions::default()).await
    }

    pub async fn completion_with(
        &self,
        mut req: ChatRequest,
        opts: &CallOptions,
    ) -> Result<ChatResponse, Error> {
        req.stream = None;
        req.stream_options = None;
        if let Some((router, ro)) = self.routed(&req.model, opts, RequestOptions::from_chat(&req)) {
            return router.chat(&req, &ro).await.map(|r| r.response).map_err(|e| e.into_provider_error());
        }
        let p = self.prepare(&req.model, opts).await?;
        self.inner.transport.chat(p.adapter.as_ref(), &req, &p.cfg, &p.timeouts).await
    }

    /// Streamed chat completion: chunks are yielded as they arrive. The call returns once the
    /// first chunk is in, so connection and upstream errors surface here rather than mid-stream.
    pub async fn stream(&self, req: ChatRequest) -> Result<ChatStream, Error> {
        self.stream_with(req, &CallOptions::default()).await
    }

    pub async fn stream_with(&self, mut req: ChatRequest, opts: &CallOptions) -> Result<ChatStream, Error> {
        let wants_usage = req.wants_stream_usage();
        req.stream = Some(true);
        if let Some((router, ro)) = self.routed(&req.model, opts, RequestOptions::from_chat(&req)) {
            let routed = router.chat_stream(&req, &ro).await.map_err(|e| e.into_provider_error())?;
            return Ok(ChatStream::new(Box::pin(routed.response), wants_usage));
        }
        let p = self.prepare(&req.model, opts).await?;
        let inner = self.inner.transport.chat_stream(p.adapter.as_ref(), &req, &p.cfg, &p.timeouts).await?;
        Ok(ChatStream::new(inner, wants_usage))
    }

    pub async fn embedding(&self, req: EmbeddingRequest) -> Result<EmbeddingResponse, Error> {
        self.embedding_with(req, &CallOptions::default()).await
    }

    pub async fn embedding_with(
        &self,
        req: EmbeddingRequest,
        opts: &CallOptions,
    ) -> Result<EmbeddingResponse, Error> {
        if let Some((router, ro)) = self.routed(&req.model, opts, RequestOptions::default()) {
            return router
                .embedding(&req, &ro)
                .await
                .map(|r| r.response)
                .map_err(|e| e.into_provider_error());
        }
        let p = self.prepare(&req.model, opts).await?;
        self.inner.transport.embedding(p.adapter.as_ref(), &req, &p.cfg, &p.timeouts).await
    }

    /// Legacy text completion (`/v1/completions`).
    pub async fn text_completion(&self, req: TextCompletionRequest) -> Result<TextCompletionResponse, Error> {
        self.text_completion_with(req, &CallOptions::default()).await
    }

    pub async fn text_completion_with(
        &self,
        mut req: TextCompletionRequest,
        opts: &CallOptions,
    ) -> Result<TextCompletionResponse, Error> {
        req.stream = None;
        req.stream_options = None;
        if let Some((router, ro)) = self.routed(&req.model, opts, RequestOptions::default()) {
            return router
                .text_completion(&req, &ro)
                .await
                .map(|r| r.response)
                .map_err(|e| e.into_provider_error());
        }
        let p = self.prepare(&req.model, opts).await?;
        self.inner.transport.text_completion(p.adapter.as_ref(), &req, &p.cfg, &p.timeouts).await
    }

    /// Streamed legacy text completion.
    pub async fn text_completion_stream(
        &self,
        mut req: TextCompletionRequest,
        opts: &CallOptions,
    ) -> Result<TextCompletionStream, Error> {
        let wants_usage = req.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(false);
        req.stream = Some(true);
        if let Some((router, ro)) = self.routed(&req.model, opts, RequestOptions::default()) {
            let routed =
                router.text_completion_stream(&req, &ro).await.map_err(|e| e.into_provider_error())?;
            return Ok(TextCompletionStream::new(Box::pin(routed.response), wants_usage));
        }
        let p = self.prepare(&req.model, opts).await?;
        let inner = self
            .inner
            .transport
            .text_completion_stream(p.adapter.as_ref(), &req, &p.cfg, &p.timeouts)
            .await?;
        Ok(TextCompletionStream::new(inner, wants_usage))
    }

    /// Resolves the model string and assembles the upstream settings: the per-call options
    /// first, then the client's per-provider settings and the provider's environment variables.
    async fn prepare(&self, model: &str, opts: &CallOptions) -> Result<Prepared, Error> {
        let model_ref = ModelRef::parse(model)
            .map_err(|e| ProviderError::bad_request(e.to_string()).with_param("model"))?;
        let (adapter, upstream_model) = resolve_provider(model_ref)?;

        let mut cfg = UpstreamConfig::new(upstream_model);
        cfg.api_key.clone_from(&opts.api_key);
        cfg.api_base.clone_from(&opts.api_base);
        cfg.api_version.clone_from(&opts.api_version);
        cfg.bearer_token.clone_from(&opts.bearer_token);
        cfg.headers.clone_from(&opts.headers);
        cfg.extra_body.clone_from(&opts.extra_body);
        cfg.drop_params = opts.drop_params.unwrap_or(self.inner.drop_params);
        cfg.max_output_tokens = opts.max_output_tokens;
        cfg.options.clone_from(&opts.options);
        cfg.secrets.clone_from(&opts.secrets);
        self.inner.credentials.fill(adapter.as_ref(), &mut cfg);
        // Providers that require `max_tokens` (Anthropic) default to the model's own maximum.
        #[cfg(feature = "pricing")]
        if cfg.max_output_tokens.is_none() {
            cfg.max_output_tokens = tollgate_pricing::model_info_for(adapter.provider(), &cfg.model)
                .and_then(|m| m.max_output_tokens())
                .or_else(|| tollgate_pricing::max_output_tokens(model));
        }

        let timeouts = Timeouts {
            total: opts.timeout.or(self.inner.timeouts.total),
            first_token: opts.first_token_timeout.or(self.inner.timeouts.first_token),
        };
        #[cfg(feature = "gemini")]
        if adapter.provider() == "vertex_ai" {
            self.inner.google_tokens.authorize(&self.inner.transport, &mut cfg, &timeouts).await?;
        }
        Ok(Prepared { adapter, cfg, timeouts })
    }

    /// The router, when the client was built with a router configuration.
    pub fn router(&self) -> Option<&Router> {
        self.inner.router.as_ref()
    }

    /// The router and its per-request options, when `model` names one of its groups.
    fn routed(
        &self,
        model: &str,
        opts: &CallOptions,
        tags: RequestOptions,
    ) -> Option<(&Router, RequestOptions)> {
        let router = self.inner.router.as_ref()?;
        if !router.has_model(model) {
            return None;
        }
        let mut ro = tags;
        ro.timeout = opts.timeout;
        ro.stream_timeout = opts.first_token_timeout;
        Some((router, ro))
    }
}

/// Where credentials come from once the explicit ones are applied: the client's per-provider
/// settings, then the provider's conventional environment variables. Shared by direct calls and
/// by the router's deployments, so both resolve keys the same way.
#[derive(Clone)]
struct CredentialSources {
    providers: Arc<HashMap<String, ProviderSettings>>,
    env: EnvLookup,
}

impl CredentialSources {
    /// Fills every credential `cfg` does not have yet. Settings are looked up under the adapter's
    /// own provider name only, so a key never reaches another provider.
    fn fill(&self, adapter: &dyn Adapter, cfg: &mut UpstreamConfig) {
        let settings = self.providers.get(adapter.provider());
        let env = adapter.credential_env();
        let from_env = |names: &[&str]| names.iter().find_map(|n| (self.env)(n));
        if cfg.api_key.is_none() {
            cfg.api_key =
                settings.and_then(|s| s.api_key.clone()).or_else(|| from_env(env.api_key).map(Secret::from));
        }
        if cfg.api_base.is_none() {
            cfg.api_base = settings.and_then(|s| s.api_base.clone()).or_else(|| from_env(env.api_base));
        }
        if cfg.api_version.is_none() {
            cfg.api_version =
                settings.and_then(|s| s.api_version.clone()).or_else(|| from_env(env.api_version));
        }
        if cfg.bearer_token.is_none() {
            cfg.bearer_token = settings
                .and_then(|s| s.bearer_token.clone())
                .or_else(|| from_env(env.bearer_token).map(Secret::from));
        }
        if cfg.organization.is_none() {
            cfg.organization = settings.and_then(|s| s.organization.clone());
        }
        for (name, vars) in env.options {
            if !cfg.options.contains_key(*name)
                && let Some(v) =
                    settings.and_then(|s| s.options.get(*name).cloned()).or_else(|| from_env(vars))
            {
                cfg.options.insert((*name).to_owned(), v);
            }
        }
        for (name, vars) in env.secrets {
            if !cfg.secrets.contains_key(*name)
                && let Some(v) = settings
                    .and_then(|s| s.secrets.get(*name).cloned())
                    .or_else(|| from_env(vars).map(Secret::from))
            {
                cfg.secrets.insert((*name).to_owned(), v);
            }
        }
        // Settings the provider did not declare still reach it (forward compatibility).
        if let Some(s) = settings {
            for (k, v) in &s.options {
                cfg.options.entry(k.clone()).or_insert_with(|| v.clone());
            }
            for (k, v) in &s.secrets {
                cfg.secrets.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
}

/// The router over this build's providers, sharing the client's transport and credentials.
fn router_builder(
    config: RouterConfig,
    transport: HttpTransport,
    credentials: CredentialSources,
) -> tollgate_router::RouterBuilder {
    let builder = Router::builder(config)
        .transport(transport)
        .resolver(|model| {
            let model_ref = ModelRef::parse(model).map_err(|e| ProviderError::bad_request(e.to_string()))?;
            resolve_provider(model_ref)
        })
        .upstream_hook(move |adapter, cfg| credentials.fill(adapter, cfg));
    #[cfg(feature = "pricing")]
    let builder = builder.catalog(Arc::new(tollgate_router::PricingCatalog));
    builder
}

/// The process-wide default client used by the free functions.
fn default_client() -> Result<&'static Client, Error> {
    static CLIENT: OnceLock<Result<Client, String>> = OnceLock::new();
    match CLIENT.get_or_init(|| Client::from_env().map_err(|e| e.message)) {
        Ok(c) => Ok(c),
        Err(msg) => Err(ProviderError::new(ErrorKind::Transport, msg.clone())),
    }
}

/// Chat completion with the default client (credentials from the environment).
pub async fn completion(req: ChatRequest) -> Result<ChatResponse, Error> {
    default_client()?.completion(req).await
}

/// Streamed chat completion with the default client.
pub async fn stream(req: ChatRequest) -> Result<ChatStream, Error> {
    default_client()?.stream(req).await
}

/// Embeddings with the default client.
pub async fn embedding(req: EmbeddingRequest) -> Result<EmbeddingResponse, Error> {
    default_client()?.embedding(req).await
}

/// Legacy text completion with the default client.
pub async fn text_completion(req: TextCompletionRequest) -> Result<TextCompletionResponse, Error> {
    default_client()?.text_completion(req).await
}
