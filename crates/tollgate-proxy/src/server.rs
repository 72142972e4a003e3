//! The HTTP server: routes, handlers, streaming, health and graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
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
use crate::config::{MockSettings, ProxyConfig};
use crate::error::ApiError;
use crate::mock::{self, ItemStream};

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

#[derive(Clone)]
struct AppState {
    client: Client,
    config: Arc<ProxyConfig>,
    auth: Arc<dyn Authenticator>,
    draining: Arc<AtomicBool>,
    /// Unix seconds at start-up (`created` of the model list).
    started: u64,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Gateway {
    /// Builds the SDK client (router over the config's deployments, credentials from the
    /// config's environment lookup) and the authenticator (master key when configured).
    pub fn new(config: ProxyConfig) -> Result<Self, ProxyError> {
        let env = config.env_lookup();
        let mut builder = Client::builder()
            .env(move |name| env(name))
            .drop_params(config.drop_params)
            .router(config.router.clone());
        if let Some(t) = config.request_timeout {
            builder = builder.timeout(t);
        }
        let client = builder.build().map_err(ProxyError::Client)?;
        let auth: Arc<dyn Authenticator> = match &config.master_key {
            Some(k) => Arc::new(MasterKeyAuth::new(k.clone())),
            None => Arc::new(OpenAccess),
        };
        Ok(Gateway {
            state: AppState {
                client,
                config: Arc::new(config),
                auth,
                draining: Arc::new(AtomicBool::new(false)),
                started: unix_now(),
            },
        })
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

    /// The axum router of every endpoint.
    pub fn router(&self) -> axum::Router {
        let st = self.state.clone();
        let api = axum::Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .route("/chat/completions", post(chat_completions))
            .route("/v1/completions", post(completions))
            .route("/completions", post(completions))
            .route("/v1/embeddings", post(embeddings))
            .route("/embeddings", post(embeddings))
            .route("/v1/models", get(list_models))
            .route("/models", get(list_models))
            .route("/v1/models/{*id}", get(get_model))
            .route("/models/{*id}", get(get_model))
            .route_layer(middleware::from_fn_with_state(st.clone(), require_auth));
        let health = axum::Router::new()
            .route("/health/liveliness", get(liveliness))
            .route("/health/liveness", get(liveliness))
            .route("/health/readiness", get(readiness));
        api.merge(health)
            .fallback(route_not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(DefaultBodyLimit::max(st.config.server.max_request_body_bytes))
            .with_state(st)
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
        match tokio::time::timeout(drain_timeout, &mut task).await {
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
        resp
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
    ctx.finish(result)
}

async fn chat_inner(
    st: &AppState,
    ctx: &mut CallCtx,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: ChatRequest = parse_body(st, body)?;
    ctx.group = Some(req.model.clone());
    let keepalive = st.config.server.keepalive_interval;
    match (target(st, &req.model)?, req.is_stream()) {
        (Target::Mock(m), false) => {
            mock_delay(m).await;
            json_response(&mock::chat(m, &req, &ctx.call_id, unix_now()))
        }
        (Target::Mock(m), true) => {
            mock_delay(m).await;
            Ok(sse_response(
                mock::chat_stream(m, &req, &ctx.call_id, unix_now()),
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
            let stream = routed.response.filter(move |item| {
                std::future::ready(wants_usage || !matches!(item, Ok(c) if is_usage_only_chat(c)))
            });
            Ok(sse_response(Box::pin(stream), keepalive, ctx.call_id.clone()))
        }
    }
}

async fn completions(State(st): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let mut ctx = CallCtx::new("completions");
    let result = completions_inner(&st, &mut ctx, body).await;
    ctx.finish(result)
}

async fn completions_inner(
    st: &AppState,
    ctx: &mut CallCtx,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: TextCompletionRequest = parse_body(st, body)?;
    ctx.group = Some(req.model.clone());
    let keepalive = st.config.server.keepalive_interval;
    let stream = req.stream.unwrap_or(false);
    match (target(st, &req.model)?, stream) {
        (Target::Mock(m), false) => {
            mock_delay(m).await;
            json_response(&mock::text_completion(m, &req, &ctx.call_id, unix_now()))
        }
        (Target::Mock(m), true) => {
            mock_delay(m).await;
            let s = mock::text_completion_stream(m, &req, &ctx.call_id, unix_now());
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
            let stream = routed.response.filter(move |item| {
                std::future::ready(wants_usage || !matches!(item, Ok(c) if is_usage_only_text(c)))
            });
            Ok(sse_response(Box::pin(stream), keepalive, ctx.call_id.clone()))
        }
    }
}

async fn embeddings(State(st): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let mut ctx = CallCtx::new("embeddings");
    let result = embeddings_inner(&st, &mut ctx, body).await;
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
            json_response(&mock::embedding(&req))
        }
        Target::Routed(router) => {
            let routed = router
                .embedding(&req, &RequestOptions::default())
                .await
                .map_err(|e| ApiError::from(e.into_provider_error()))?;
            if let Some(u) = &routed.response.usage {
                ctx.cost = cost_of(st, &routed.route, &Usage::new(u.prompt_tokens, 0));
            }
            ctx.routed(routed.route);
            json_response(&routed.response)
        }
    }
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
