//! The HTTP server: routes, handlers, streaming, health and graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRef, Path, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderName, HeaderValue, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tollgate::tollgate_core::models::{ModelList, ModelObject};
use tollgate::{
    ChatChunk, ChatRequest, Client, EmbeddingRequest, RequestOptions, RouteInfo, Router,
    TextCompletionRequest, TextCompletionResponse, Usage,
};

use crate::ProxyError;
use crate::auth::{self, Authenticator, MasterKeyAuth, OpenAccess};
use crate::callbacks::{chat_prompt_chars, text_prompt_chars};
use crate::config::{MockSettings, ProxyConfig};
use crate::error::ApiError;
use crate::mock::{self, ItemStream};
use crate::reload::{self, Live, LiveCell, Reloader};

// A child module so it shares the chat path's private internals (state, call context, target).
#[path = "anthropic_api.rs"]
mod anthropic_api;

/// A configured gateway, ready to serve.
#[derive(Clone)]
pub struct Gateway {
    state: AppState,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("config", &self.state.config)
            .field("auth", &self.state.auth)
            .field("draining", &self.is_draining())
            .finish_non_exhaustive()
    }
}

/// What a handler sees: `client` and `config` are the live state read once when the request
/// came in (see [`Shared`]), kept until the request (or its stream) ends.
#[derive(Clone)]
struct AppState {
    client: Client,
    config: Arc<ProxyConfig>,
    auth: Arc<dyn Authenticator>,
    draining: Arc<AtomicBool>,
    /// Unix seconds at start-up (`created` of the model list).
    started: u64,
    /// Prometheus metrics (`GET /metrics`, `metrics.rs`).
    metrics: Arc<crate::metrics::Metrics>,
    /// The reloadable part (client, config), swapped by a config reload (`reload.rs`).
    live: Arc<LiveCell>,
    /// Where call events go (`callbacks.rs`); built from the config the gateway started with.
    callbacks: crate::callbacks::Callbacks,
}

impl AppState {
    /// This state with the live client and config of now.
    fn current(&self) -> AppState {
        let live = reload::current(&self.live);
        AppState { client: live.client.clone(), config: Arc::clone(&live.config), ..self.clone() }
    }
}

/// The router's state: `State<AppState>` extracts the live state of the moment the request came
/// in, so every handler serves on the config that was current then. Sub-routers are
/// `axum::Router<Shared>`.
#[derive(Clone)]
struct Shared(AppState);

impl FromRef<Shared> for AppState {
    fn from_ref(s: &Shared) -> AppState {
        s.0.current()
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Gateway {
    /// Builds the SDK client (router over the config's deployments, credentials from the
    /// config's environment lookup) and the authenticator (master key when configured).
    pub fn new(config: ProxyConfig) -> Result<Self, ProxyError> {
        let client = reload::build_client(&config)?;
        let auth: Arc<dyn Authenticator> = match &config.master_key {
            Some(k) => Arc::new(MasterKeyAuth::new(k.clone())),
            None => Arc::new(OpenAccess),
        };
        let callbacks = crate::callbacks::Callbacks::from_config(&config.callbacks);
        let config = Arc::new(config);
        let live = Live { client: client.clone(), config: Arc::clone(&config) };
        Ok(Gateway {
            state: AppState {
                client,
                config: Arc::clone(&config),
                auth,
                draining: Arc::new(AtomicBool::new(false)),
                started: unix_now(),
                metrics: Arc::new(crate::metrics::Metrics::new(&config)),
                live: Arc::new(LiveCell::new(Arc::new(live))),
                callbacks,
            },
        })
    }

    /// Reloads this gateway's config from its file (`config.file`); see [`Reloader`].
    pub fn reloader(&self) -> Reloader {
        Reloader::new(std::path::PathBuf::from(&self.state.config.file), Arc::clone(&self.state.live))
    }

    /// The config serving new requests now (changes with reloads; [`Gateway::config`] is the
    /// one the gateway started with).
    pub fn current_config(&self) -> Arc<ProxyConfig> {
        Arc::clone(&reload::current(&self.state.live).config)
    }

    /// Adds a callback sink receiving the call events `filter` accepts (see `callbacks.rs`).
    pub fn with_callback_sink(
        mut self,
        sink: Arc<dyn crate::callbacks::CallbackSink>,
        filter: crate::callbacks::EventFilter,
    ) -> Self {
        self.state.callbacks = self.state.callbacks.with_sink(sink, filter);
        self
    }

    /// Replaces the authenticator (virtual keys, tests).
    pub fn with_authenticator(mut self, auth: Arc<dyn Authenticator>) -> Self {
        self.state.auth = auth;
        self
    }

    pub fn config(&self) -> &ProxyConfig {
        &self.state.config
    }

    /// Whether the gateway is shutting down (readiness answers 503).
    pub fn is_draining(&self) -> bool {
        self.state.draining.load(Ordering::SeqCst)
    }

    /// Marks the gateway as draining (readiness answers 503 from now on).
    pub fn set_draining(&self) {
        self.state.draining.store(true, Ordering::SeqCst);
    }

    /// The axum router of every endpoint: [`ROUTES`], and the sub-routers merged below.
    pub fn router(&self) -> axum::Router {
        let st = self.state.clone();
        let mut api = axum::Router::new();
        // Routes without auth: probes, metrics, this API's description.
        let mut open = axum::Router::new();
        for r in ROUTES {
            let Some(mr) = method_router(r) else {
                tracing::error!(method = r.method, path = r.path, "no handler for a listed route");
                continue;
            };
            if r.auth {
                api = api.route(r.path, mr);
            } else {
                open = open.route(r.path, mr);
            }
        }
        let api = api.route_layer(middleware::from_fn_with_state(st.clone(), require_auth));
        api.merge(anthropic_api::routes(st.clone()))
            .merge(open)
            .route_layer(middleware::from_fn_with_state(Arc::clone(&st.metrics), crate::metrics::track))
            .fallback(route_not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(DefaultBodyLimit::max(st.config.server.max_request_body_bytes))
            .with_state(Shared(st))
    }

    /// Serves on `listener` until `shutdown` completes, then drains: stops accepting, turns
    /// readiness to 503, lets in-flight requests and streams finish for up to
    /// `server.drain_timeout`, and returns `Ok` (connections still open then are closed).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ProxyError> {
        let cfg = &self.state.config;
        if !cfg.unsupported_keys.is_empty() {
            tracing::warn!(
                file = %cfg.file,
                keys = %cfg.unsupported_keys.join(", "),
                "config keys tollgate does not support yet are ignored: {}",
                cfg.unsupported_keys.join(", ")
            );
        }
        crate::reload::warn_default_conflicts(cfg);
        let addr = listener.local_addr().map_err(ProxyError::Io)?;
        tracing::info!(
            %addr,
            model_groups = %cfg.model_groups.join(", "),
            auth = cfg.master_key.is_some(),
            "tollgate proxy listening on http://{addr}"
        );
        let drain_timeout = cfg.server.drain_timeout;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = axum::serve(listener, self.router()).with_graceful_shutdown(async move {
            let _ = stop_rx.await;
        });
        let mut task = tokio::spawn(async move { server.await });
        tokio::select! {
            res = &mut task => return join_result(res),
            () = shutdown => {}
        }
        self.set_draining();
        tracing::info!(
            deadline_s = drain_timeout.as_secs_f64(),
            "shutting down: draining in-flight requests"
        );
        let _ = stop_tx.send(());
        let drained = tokio::time::timeout(drain_timeout, &mut task).await;
        self.state.callbacks.shutdown(crate::callbacks::SHUTDOWN_FLUSH_TIMEOUT).await;
        match drained {
            Ok(res) => {
                tracing::info!("drained; exiting");
                join_result(res)
            }
            Err(_) => {
                tracing::warn!("drain deadline passed; closing the remaining connections");
                task.abort();
                Ok(())
            }
        }
    }
}

/// One endpoint of the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRoute {
    /// `GET`, `POST`, …
    pub method: &'static str,
    /// The axum path (`{name}` parameters, `{*name}` for the rest of the path).
    pub path: &'static str,
    /// Whether the caller must present a key (master key or virtual key).
    pub auth: bool,
}

const fn route(method: &'static str, path: &'static str, auth: bool) -> ApiRoute {
    ApiRoute { method, path, auth }
}

/// Every endpoint served through the shared auth layer (or without auth). The router is built
/// from this list (each entry's handler is picked in `method_router`), and `tests/openapi.rs`
/// checks that `/openapi.json` documents each one (and every other `.route("…")` in `src/`).
/// To add an endpoint: add it here, give it a handler in `method_router`, and describe it in
/// `openapi.rs`.
pub const ROUTES: &[ApiRoute] = &[
    route("POST", "/v1/chat/completions", true),
    route("POST", "/chat/completions", true),
    route("POST", "/v1/completions", true),
    route("POST", "/completions", true),
    route("POST", "/v1/embeddings", true),
    route("POST", "/embeddings", true),
    route("GET", "/v1/models", true),
    route("GET", "/models", true),
    route("GET", "/v1/models/{*id}", true),
    route("GET", "/models/{*id}", true),
    route("POST", "/openai/deployments/{deployment}/chat/completions", true),
    route("POST", "/openai/deployments/{deployment}/completions", true),
    route("POST", "/openai/deployments/{deployment}/embeddings", true),
    route("GET", "/health/liveliness", false),
    route("GET", "/health/liveness", false),
    route("GET", "/health/readiness", false),
    route("GET", "/health", true),
    route("GET", "/metrics", false),
    route("GET", "/openapi.json", false),
];

/// The handler of a [`ROUTES`] entry.
fn method_router(r: &ApiRoute) -> Option<MethodRouter<Shared>> {
    let mr = match (r.method, r.path) {
        ("POST", "/v1/chat/completions" | "/chat/completions") => post(chat_completions),
        ("POST", "/v1/completions" | "/completions") => post(completions),
        ("POST", "/v1/embeddings" | "/embeddings") => post(embeddings),
        ("GET", "/v1/models" | "/models") => get(list_models),
        ("GET", "/v1/models/{*id}" | "/models/{*id}") => get(get_model),
        ("POST", "/openai/deployments/{deployment}/chat/completions") => post(azure_chat_completions),
        ("POST", "/openai/deployments/{deployment}/completions") => post(azure_completions),
        ("POST", "/openai/deployments/{deployment}/embeddings") => post(azure_embeddings),
        ("GET", "/health/liveliness" | "/health/liveness") => get(liveliness),
        ("GET", "/health/readiness") => get(readiness),
        ("GET", "/health") => get(health_check),
        ("GET", "/metrics") => get(metrics_text),
        ("GET", "/openapi.json") => get(crate::openapi::openapi_json),
        _ => return None,
    };
    Some(mr)
}

fn join_result(res: Result<std::io::Result<()>, tokio::task::JoinError>) -> Result<(), ProxyError> {
    match res {
        Ok(r) => r.map_err(ProxyError::Io),
        Err(e) => Err(ProxyError::Io(std::io::Error::other(e.to_string()))),
    }
}

/// Builds a [`Gateway`] for `config` and serves it on `listener` until `shutdown` completes
/// (see [`Gateway::serve`]). Tests bind `127.0.0.1:0` and pass a channel as the signal.
pub async fn serve_on(
    listener: TcpListener,
    config: ProxyConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ProxyError> {
    Gateway::new(config)?.serve(listener, shutdown).await
}

/// Completes on ctrl-c or (on Unix) SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Per-call context: id, model group, timing, response headers.
// ---------------------------------------------------------------------------------------------

/// A random id in UUID v4 format (no extra dependency: std's randomly keyed SipHash).
fn new_call_id() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let word = || {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(SEQ.fetch_add(1, Ordering::Relaxed));
        h.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
        h.finish()
    };
    let (a, b) = (word(), word());
    let a = (a & 0xffff_ffff_ffff_0fff) | 0x4000; // version 4
    let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000; // variant 10
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

struct CallCtx {
    call_id: String,
    group: Option<String>,
    started: Instant,
    endpoint: &'static str,
    /// How a routed call was served, and when its answer (or first chunk) was in.
    route: Option<(RouteInfo, Instant)>,
    /// The response cost in USD, when known (non-streamed calls with usage and a price).
    cost: Option<f64>,
    /// What the metrics learn of the call (tokens, a usage tap on streams); see `metrics.rs`.
    meter: crate::metrics::Meter,
    /// The usage of a non-streamed answer (for the callbacks).
    usage: Option<Usage>,
    /// A stream took over reporting the call to the callbacks (`CallCtx::track`).
    streamed: bool,
}

fn set_header(h: &mut http::HeaderMap, names: &[&'static str], value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        for n in names {
            h.insert(HeaderName::from_static(n), v.clone());
        }
    }
}

impl CallCtx {
    fn new(endpoint: &'static str) -> Self {
        CallCtx {
            call_id: new_call_id(),
            group: None,
            started: Instant::now(),
            endpoint,
            route: None,
            cost: None,
            meter: Default::default(),
            usage: None,
            streamed: false,
        }
    }

    /// Records the route of a routed call (the answering group becomes the model group).
    fn routed(&mut self, route: RouteInfo) {
        self.group = Some(route.group.to_string());
        self.route = Some((route, Instant::now()));
    }

    /// The response headers of a routed call: deployment, retries, fallbacks, gateway overhead
    /// (time until the answer that was not spent in upstream calls: parsing, routing, backoff
    /// waits) and cost.
    fn route_headers(&self, h: &mut http::HeaderMap) {
        if let Some((route, answered)) = &self.route {
            set_header(h, &["x-tollgate-deployment-id", "x-litellm-model-id"], &route.deployment_id);
            let groups: std::collections::BTreeSet<&str> = route.attempts.iter().map(|a| &*a.group).collect();
            let retries = route.attempts.len().saturating_sub(groups.len());
            set_header(
                h,
                &["x-tollgate-attempted-retries", "x-litellm-attempted-retries"],
                &retries.to_string(),
            );
            set_header(
                h,
                &["x-tollgate-attempted-fallbacks", "x-litellm-attempted-fallbacks"],
                &route.fallbacks.to_string(),
            );
            let upstream: Duration = route.attempts.iter().map(|a| a.duration).sum();
            let overhead = answered.duration_since(self.started).saturating_sub(upstream);
            set_header(
                h,
                &["x-tollgate-overhead-ms", "x-litellm-overhead-duration-ms"],
                &format!("{:.3}", overhead.as_secs_f64() * 1000.0),
            );
        }
        if let Some(cost) = self.cost {
            set_header(h, &["x-tollgate-response-cost", "x-litellm-response-cost"], &format!("{cost}"));
        }
    }

    /// The response, with the per-call headers, logged.
    fn finish(self, result: Result<Response, ApiError>) -> Response {
        let mut resp = match result {
            Ok(r) => r,
            Err(e) => {
                let level_warn = e.status.is_server_error();
                if level_warn {
                    tracing::warn!(call_id = %self.call_id, status = e.status.as_u16(), error = %e.body.error.message, "call failed");
                }
                e.into_response()
            }
        };
        let h = resp.headers_mut();
        set_header(h, &["x-tollgate-call-id", "x-litellm-call-id"], &self.call_id);
        if let Some(g) = &self.group {
            set_header(h, &["x-tollgate-model-group", "x-litellm-model-group"], g);
        }
        self.route_headers(h);
        tracing::info!(
            call_id = %self.call_id,
            endpoint = self.endpoint,
            model_group = self.group.as_deref().unwrap_or(""),
            deployment = self.route.as_ref().map_or("", |(r, _)| &*r.deployment_id),
            status = resp.status().as_u16(),
            latency_ms = self.started.elapsed().as_millis() as u64,
            "request"
        );
        resp.extensions_mut().insert(self.meter.info(
            self.group.as_deref(),
            self.route.as_ref(),
            self.cost,
            self.started,
        ));
        resp
    }
}

/// Reporting to the callbacks (`callbacks.rs`).
impl CallCtx {
    fn callback_facts(&self, st: &AppState, prompt_chars: u64) -> crate::callbacks::CallFacts {
        let route = self.route.as_ref().map(|(r, _)| r);
        let pricer = route.map(|r| {
            let (st, r) = (st.clone(), r.clone());
            Box::new(move |u: &Usage| cost_of(&st, &r, u)) as crate::callbacks::Pricer
        });
        crate::callbacks::CallFacts {
            call_id: self.call_id.clone(),
            endpoint: self.endpoint,
            started: self.started,
            group: self.group.clone(),
            requested: route.map(|r| r.requested.clone()),
            route: route.map(crate::callbacks::RouteSummary::of),
            usage: self.usage.clone(),
            cost: self.cost,
            stream: self.streamed,
            mock: self.group.as_ref().is_some_and(|g| st.config.mocks.contains_key(g)),
            pricer,
            prompt_chars,
        }
    }

    /// Reports a finished non-streamed call (streams report themselves).
    fn report(&self, st: &AppState, result: &Result<Response, ApiError>) {
        if !self.streamed && !st.callbacks.is_empty() {
            st.callbacks.finished(self.callback_facts(st, 0), result);
        }
    }

    /// Hands reporting to the response stream: it reports its end, error or disconnect
    /// (`prompt_chars`: the prompt's length, for a usage estimate when none is reported).
    fn track<T, S>(&mut self, st: &AppState, prompt_chars: u64, stream: S) -> ItemStream<T>
    where
        T: crate::callbacks::StreamUsage + Send + 'static,
        S: futures_core::Stream<Item = Result<T, tollgate::ProviderError>> + Send + 'static,
    {
        self.streamed = true;
        if st.callbacks.is_empty() {
            return Box::pin(stream);
        }
        Box::pin(st.callbacks.track(self.callback_facts(st, prompt_chars), stream))
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn parse_body<T: DeserializeOwned>(
    st: &AppState,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let bytes = body.map_err(|r| ApiError::from_rejection(&r, st.config.server.max_request_body_bytes))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        if e.is_data() {
            ApiError::bad_request(format!("Invalid request body: {e}"))
        } else {
            ApiError::bad_request(format!("The request body is not valid JSON: {e}"))
        }
    })
}

fn json_response<T: Serialize>(value: &T) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value)
        .map_err(|e| ApiError::internal(format!("cannot encode the response: {e}")))?;
    let mut resp = (StatusCode::OK, Bytes::from(body)).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// How a model group is served.
enum Target<'a> {
    Mock(&'a MockSettings),
    Routed(&'a Router),
}

/// Only configured groups are served (never arbitrary provider model strings).
fn target<'a>(st: &'a AppState, model: &str) -> Result<Target<'a>, ApiError> {
    if let Some(m) = st.config.mocks.get(model) {
        return Ok(Target::Mock(m));
    }
    if let Some(router) = st.client.router().filter(|r| r.has_model(model)) {
        return Ok(Target::Routed(router));
    }
    Err(ApiError::model_not_found(model))
}

/// An SSE response: one `data: {json}` event per item, `data: [DONE]` at the end, `: ping`
/// after every `keepalive` of silence; an error item becomes one `data: {"error": …}` event and
/// ends the stream. Dropping the body (client gone) drops the upstream stream, which cancels it.
fn sse_response<T: Serialize + Send + 'static>(
    stream: ItemStream<T>,
    keepalive: Duration,
    call_id: String,
) -> Response {
    struct St<T> {
        inner: ItemStream<T>,
        done: bool,
        keepalive: Duration,
        call_id: String,
    }
    let st = St { inner: stream, done: false, keepalive, call_id };
    let body = futures_util::stream::unfold(st, |mut st| async move {
        if st.done {
            return None;
        }
        let event = match tokio::time::timeout(st.keepalive, st.inner.next()).await {
            Err(_) => Bytes::from_static(b": ping\n\n"),
            Ok(None) => {
                st.done = true;
                Bytes::from_static(b"data: [DONE]\n\n")
            }
            Ok(Some(Ok(item))) => match serde_json::to_vec(&item) {
                Ok(json) => data_event(&json),
                Err(e) => {
                    st.done = true;
                    data_event(&ApiError::internal(format!("cannot encode a chunk: {e}")).to_json())
                }
            },
            Ok(Some(Err(e))) => {
                st.done = true;
                tracing::warn!(call_id = %st.call_id, error = %e, "stream failed mid-way");
                data_event(&ApiError::from(e).to_json())
            }
        };
        Some((Ok::<_, Infallible>(event), st))
    });
    let mut resp = Response::new(Body::from_stream(body));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no"));
    resp
}

fn data_event(json: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(json.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// Adapters always ask upstreams for usage (to price streams); the usage-only chunk is passed
/// on only when the client asked for it (`stream_options.include_usage`).
fn is_usage_only_chat(c: &ChatChunk) -> bool {
    c.choices.is_empty() && c.usage.is_some()
}

fn is_usage_only_text(c: &TextCompletionResponse) -> bool {
    c.choices.is_empty() && c.usage.is_some()
}

/// The cost of a call: the deployment's custom prices (`input_cost_per_token` /
/// `output_cost_per_token`) when configured, else the price table's for the model called.
fn cost_of(st: &AppState, route: &RouteInfo, usage: &Usage) -> Option<f64> {
    let dep = st
        .config
        .router
        .model_list
        .iter()
        .find(|d| d.model_info.id.as_deref() == Some(&*route.deployment_id));
    if let Some(d) = dep {
        let input = d.litellm_params.input_cost_per_token.or(d.model_info.input_cost_per_token);
        let output = d.litellm_params.output_cost_per_token.or(d.model_info.output_cost_per_token);
        if input.is_some() || output.is_some() {
            return Some(
                usage.prompt_tokens as f64 * input.unwrap_or(0.0)
                    + usage.completion_tokens as f64 * output.unwrap_or(0.0),
            );
        }
    }
    tollgate::pricing::cost(&route.model, usage).ok().map(|c| c.total_f64())
}

async fn mock_delay(m: &MockSettings) {
    if !m.delay.is_zero() {
        tokio::time::sleep(m.delay).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------

async fn require_auth(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let key = auth::presented_key(req.headers()).map(str::to_owned);
    match st.auth.authenticate(key.as_deref()).await {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Err(e) => ApiError::unauthorized(e.message).into_response(),
    }
}

async fn chat_completions(State(st): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let mut ctx = CallCtx::new("chat");
    let result = chat_inner(&st, &mut ctx, body).await;
    ctx.report(&st, &result);
    ctx.finish(result)
}

async fn chat_inner(
    st: &AppState,
    ctx: &mut CallCtx,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: ChatRequest = parse_body(st, body)?;
    let req = crate::defaults::chat(&st.config, req);
    ctx.group = Some(req.model.clone());
    let keepalive = st.config.server.keepalive_interval;
    match (target(st, &req.model)?, req.is_stream()) {
        (Target::Mock(m), false) => {
            mock_delay(m).await;
            let resp = mock::chat(m, &req, &ctx.call_id, unix_now());
            ctx.usage.clone_from(&resp.usage);
            json_response(&resp)
        }
        (Target::Mock(m), true) => {
            mock_delay(m).await;
            Ok(sse_response(
                ctx.track(st, chat_prompt_chars(&req), mock::chat_stream(m, &req, &ctx.call_id, unix_now())),
                keepalive,
                ctx.call_id.clone(),
            ))
        }
        // Routed calls go to the client's router directly (as the SDK's routed path does) so
        // the route (deployment, attempts) is known for the response headers.
        (Target::Routed(router), false) => {
            let mut req = req;
            let opts = RequestOptions::from_chat(&req);
            req.stream = None;
            req.stream_options = None;
            let routed =
                router.chat(&req, &opts).await.map_err(|e| ApiError::from(e.into_provider_error()))?;
            ctx.cost = routed.response.usage.as_ref().and_then(|u| cost_of(st, &routed.route, u));
            ctx.meter.usage(routed.response.usage.as_ref());
            ctx.usage.clone_from(&routed.response.usage);
            ctx.routed(routed.route);
            json_response(&routed.response)
        }
        (Target::Routed(router), true) => {
            let mut req = req;
            let opts = RequestOptions::from_chat(&req);
            let wants_usage = req.wants_stream_usage();
            req.stream = Some(true);
            let routed =
                router.chat_stream(&req, &opts).await.map_err(|e| ApiError::from(e.into_provider_error()))?;
            ctx.routed(routed.route);
            let tracked = ctx.track(st, chat_prompt_chars(&req), routed.response);
            let stream = ctx.meter.tap(tracked).filter(move |item| {
                std::future::ready(wants_usage || !matches!(item, Ok(c) if is_usage_only_chat(c)))
            });
            Ok(sse_response(Box::pin(stream), keepalive, ctx.call_id.clone()))
        }
    }
}

async fn completions(State(st): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let mut ctx = CallCtx::new("completions");
    let result = completions_inner(&st, &mut ctx, body).await;
    ctx.report(&st, &result);
    ctx.finish(result)
}

async fn completions_inner(
    st: &AppState,
    ctx: &mut CallCtx,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: TextCompletionRequest = parse_body(st, body)?;
    let req = crate::defaults::text(&st.config, req);
    ctx.group = Some(req.model.clone());
    let keepalive = st.config.server.keepalive_interval;
    let stream = req.stream.unwrap_or(false);
    match (target(st, &req.model)?, stream) {
        (Target::Mock(m), false) => {
            mock_delay(m).await;
            let resp = mock::text_completion(m, &req, &ctx.call_id, unix_now());
            ctx.usage.clone_from(&resp.usage);
            json_response(&resp)
        }
        (Target::Mock(m), true) => {
            mock_delay(m).await;
            let s = mock::text_completion_stream(m, &req, &ctx.call_id, unix_now());
            let s = ctx.track(st, text_prompt_chars(&req), s);
            Ok(sse_response(s, keepalive, ctx.call_id.clone()))
        }
        (Target::Routed(router), false) => {
            let mut req = req;
            req.stream = None;
            req.stream_options = None;
            let routed = router
                .text_completion(&req, &RequestOptions::default())
                .await
                .map_err(|e| ApiError::from(e.into_provider_error()))?;
            ctx.cost = routed.response.usage.as_ref().and_then(|u| cost_of(st, &routed.route, u));
            ctx.meter.usage(routed.response.usage.as_ref());
            ctx.usage.clone_from(&routed.response.usage);
            ctx.routed(routed.route);
            json_response(&routed.response)
        }
        (Target::Routed(router), true) => {
            let mut req = req;
            let wants_usage = req.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(false);
            req.stream = Some(true);
            let routed = router
                .text_completion_stream(&req, &RequestOptions::default())
                .await
                .map_err(|e| ApiError::from(e.into_provider_error()))?;
            ctx.routed(routed.route);
            let tracked = ctx.track(st, text_prompt_chars(&req), routed.response);
            let stream = ctx.meter.tap(tracked).filter(move |item| {
                std::future::ready(wants_usage || !matches!(item, Ok(c) if is_usage_only_text(c)))
            });
            Ok(sse_response(Box::pin(stream), keepalive, ctx.call_id.clone()))
        }
    }
}

async fn embeddings(State(st): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let mut ctx = CallCtx::new("embeddings");
    let result = embeddings_inner(&st, &mut ctx, body).await;
    ctx.report(&st, &result);
    ctx.finish(result)
}

async fn embeddings_inner(
    st: &AppState,
    ctx: &mut CallCtx,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: EmbeddingRequest = parse_body(st, body)?;
    ctx.group = Some(req.model.clone());
    match target(st, &req.model)? {
        Target::Mock(m) => {
            mock_delay(m).await;
            let resp = mock::embedding(&req);
            ctx.usage = resp.usage.as_ref().map(|u| Usage::new(u.prompt_tokens, 0));
            json_response(&resp)
        }
        Target::Routed(router) => {
            let routed = router
                .embedding(&req, &RequestOptions::default())
                .await
                .map_err(|e| ApiError::from(e.into_provider_error()))?;
            if let Some(u) = &routed.response.usage {
                ctx.cost = cost_of(st, &routed.route, &Usage::new(u.prompt_tokens, 0));
                ctx.meter.tokens(u.prompt_tokens, 0);
                ctx.usage = Some(Usage::new(u.prompt_tokens, 0));
            }
            ctx.routed(routed.route);
            json_response(&routed.response)
        }
    }
}

/// An Azure OpenAI deployment route's body: the deployment (from the path) is the model group
/// and replaces any `model` in the body. The `api-version` query parameter is accepted and
/// ignored. A body that is not a JSON object is left alone (parsing it reports the error).
fn azure_body(body: Result<Bytes, BytesRejection>, deployment: &str) -> Result<Bytes, BytesRejection> {
    body.map(|b| match serde_json::from_slice::<serde_json::Value>(&b) {
        Ok(serde_json::Value::Object(mut m)) => {
            m.insert("model".to_owned(), serde_json::Value::String(deployment.to_owned()));
            serde_json::to_vec(&m).map(Bytes::from).unwrap_or(b)
        }
        _ => b,
    })
}

async fn azure_chat_completions(
    st: State<AppState>,
    Path(deployment): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    chat_completions(st, azure_body(body, &deployment)).await
}

async fn azure_completions(
    st: State<AppState>,
    Path(deployment): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    completions(st, azure_body(body, &deployment)).await
}

async fn azure_embeddings(
    st: State<AppState>,
    Path(deployment): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    embeddings(st, azure_body(body, &deployment)).await
}

fn model_object(st: &AppState, id: &str) -> ModelObject {
    ModelObject::new(id, "tollgate", st.started)
}

async fn list_models(State(st): State<AppState>) -> Response {
    let list = ModelList {
        object: "list".into(),
        data: st.config.model_groups.iter().map(|g| model_object(&st, g)).collect(),
    };
    json_response(&list).unwrap_or_else(IntoResponse::into_response)
}

async fn get_model(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    let id = id.trim_start_matches('/');
    if st.config.has_group(id) {
        json_response(&model_object(&st, id)).unwrap_or_else(IntoResponse::into_response)
    } else {
        ApiError::model_not_found(id).into_response()
    }
}

async fn liveliness() -> Response {
    json_response(&serde_json::json!({"status": "healthy", "message": "I'm alive!"}))
        .unwrap_or_else(IntoResponse::into_response)
}

async fn readiness(State(st): State<AppState>) -> Response {
    if st.draining.load(Ordering::SeqCst) {
        let mut r = json_response(&serde_json::json!({"status": "draining"}))
            .unwrap_or_else(IntoResponse::into_response);
        *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        r
    } else {
        json_response(&serde_json::json!({"status": "healthy", "model_groups": st.config.model_groups.len()}))
            .unwrap_or_else(IntoResponse::into_response)
    }
}

/// `GET /metrics`: Prometheus text exposition (see `metrics.rs`).
async fn metrics_text(State(st): State<AppState>, headers: http::HeaderMap) -> Response {
    if st.config.server.metrics_require_auth
        && let Err(e) = st.auth.authenticate(auth::presented_key(&headers)).await
    {
        return ApiError::unauthorized(e.message).into_response();
    }
    st.metrics.response(st.client.router())
}

/// `GET /health`: calls every deployment of the current config (see `health.rs`).
async fn health_check(State(st): State<AppState>) -> Response {
    match crate::health::HealthChecker::new(&st.config) {
        Ok(h) => json_response(&h.check_all().await).unwrap_or_else(IntoResponse::into_response),
        Err(e) => ApiError::internal(format!("cannot set up the health checks: {e}")).into_response(),
    }
}

async fn route_not_found(req: Request) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "not_found",
        format!("Unknown route: {} {}", req.method(), req.uri().path()),
    )
    .into_response()
}

async fn method_not_allowed(req: Request) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "method_not_allowed",
        format!("Method {} is not allowed on {}", req.method(), req.uri().path()),
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway() -> Gateway {
        let cfg = ProxyConfig::from_yaml_str(
            "model_list:\n  - model_name: m\n    litellm_params: {model: mock/x}\n",
            "t.yaml",
            Arc::new(|_| None),
        )
        .unwrap();
        Gateway::new(cfg).unwrap()
    }

    #[tokio::test]
    async fn readiness_turns_503_while_draining() {
        let g = gateway();
        assert_eq!(readiness(State(g.state.clone())).await.status(), StatusCode::OK);
        g.set_draining();
        assert_eq!(readiness(State(g.state.clone())).await.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn call_ids_are_unique_uuids() {
        let a = new_call_id();
        let b = new_call_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
    }
}
