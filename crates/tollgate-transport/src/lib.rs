//! # tollgate-transport
//!
//! The one place that talks to upstream providers over the network. It takes the
//! `http::Request<Bytes>` a sans-IO [`Adapter`] builds, sends it on a pooled `reqwest` client
//! (rustls with the ring provider, HTTP/2 when the server offers it, no redirects), enforces the
//! first-token and total deadlines, and feeds the response back through the adapter: whole
//! bodies to `*_response` / `error_response`, streamed bodies chunk by chunk into the adapter's
//! [`StreamDecoder`].
//!
//! Streams are *peeked*: [`HttpTransport::chat_stream`] returns only once the first chunk has
//! been decoded, so a failure before the first byte reaches the caller is an ordinary `Err` that
//! the router can retry or fall back from. After that, a failure is yielded as one `Err` item and
//! the stream ends.
//!
//! **Must never depend on** the router, the proxy, a server framework (axum), storage or any
//! tollgate crate other than `tollgate-core`. It knows nothing about routing, pricing or keys.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;
use tokio::time::Instant;
use tollgate_core::chat::{ChatChunk, ChatRequest, ChatResponse};
use tollgate_core::completion::{TextCompletionRequest, TextCompletionResponse};
use tollgate_core::embedding::{EmbeddingRequest, EmbeddingResponse};
use tollgate_core::error::{ErrorKind, ProviderError, TimeoutPhase};
use tollgate_core::{Adapter, RawResponse, StreamDecoder, UpstreamConfig};

/// Deadlines for one upstream call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// The whole call, including reading (or streaming) the entire body.
    pub total: Option<Duration>,
    /// Until response headers arrive and, for streams, until the first chunk is decoded.
    pub first_token: Option<Duration>,
}

impl Default for Timeouts {
    /// LiteLLM's default request timeout is 600 s; so is tollgate's.
    fn default() -> Self {
        Timeouts { total: Some(Duration::from_secs(600)), first_token: None }
    }
}

impl Timeouts {
    pub fn total(total: Duration) -> Self {
        Timeouts { total: Some(total), first_token: None }
    }
}

/// Settings of the shared HTTP client.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    pub connect_timeout: Duration,
    /// Idle pooled connections per host kept for reuse.
    pub pool_max_idle_per_host: usize,
    pub pool_idle_timeout: Duration,
    /// Largest non-streamed response body accepted (a guard against runaway upstreams).
    pub max_response_bytes: usize,
    /// Largest error body read for classification (the rest is not needed).
    pub max_error_body_bytes: usize,
    pub user_agent: String,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            connect_timeout: Duration::from_secs(10),
            pool_max_idle_per_host: 256,
            pool_idle_timeout: Duration::from_secs(90),
            max_response_bytes: 64 * 1024 * 1024,
            max_error_body_bytes: 256 * 1024,
            user_agent: concat!("tollgate/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// Why the HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// reqwest refused the configuration (e.g. no TLS roots).
    #[error("could not build the upstream HTTP client: {0}")]
    Build(String),
}

/// A stream of decoded items from one upstream response.
pub type ItemStream<T> = Pin<Box<dyn Stream<Item = Result<T, ProviderError>> + Send>>;

/// The pooled upstream HTTP client. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
    config: Arc<TransportConfig>,
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransport").field("config", &self.config).finish()
    }
}

impl HttpTransport {
    /// A transport with default settings.
    pub fn new() -> Result<Self, TransportError> {
        Self::with_config(TransportConfig::default())
    }

    pub fn with_config(config: TransportConfig) -> Result<Self, TransportError> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            .pool_idle_timeout(config.pool_idle_timeout)
            .tcp_nodelay(true)
            // An API POST that redirects is misconfigured; following it could leak credentials.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(|e| TransportError::Build(e.to_string()))?;
        Ok(HttpTransport { client, config: Arc::new(config) })
    }

    /// Sends a request and reads the whole response body (any status).
    pub async fn send(
        &self,
        req: http::Request<Bytes>,
        timeouts: &Timeouts,
    ) -> Result<RawResponse, ProviderError> {
        let deadline = Deadlines::start(timeouts);
        let resp = self.send_headers(req, &deadline).await?;
        let limit = if resp.status().is_success() {
            self.config.max_response_bytes
        } else {
            self.config.max_error_body_bytes
        };
        read_body(resp, limit, &deadline).await
    }

    /// Non-streamed chat completion.
    pub async fn chat(
        &self,
        adapter: &dyn Adapter,
        req: &ChatRequest,
        cfg: &UpstreamConfig,
        timeouts: &Timeouts,
    ) -> Result<ChatResponse, ProviderError> {
        let http_req = adapter.chat_request(req, cfg)?;
        let raw = self.send(http_req, timeouts).await.map_err(|e| tag(e, adapter))?;
        if !raw.status.is_success() {
            return Err(adapter.error_response(&raw));
        }
        let mut resp = adapter.chat_response(&raw)?;
        // Some providers (Bedrock) do not echo the model; the one that was called is known here.
        if resp.model.is_empty() {
            resp.model.clone_from(&cfg.model);
        }
        // Likewise the creation time (Cohere, Anthropic send none): the time it was received.
        if resp.created == 0 {
            resp.created = unix_now();
        }
        Ok(resp)
    }

    /// Streamed chat completion. Returns once the first chunk is decoded (see the crate docs).
    pub async fn chat_stream(
        &self,
        adapter: &dyn Adapter,
        req: &ChatRequest,
        cfg: &UpstreamConfig,
        timeouts: &Timeouts,
    ) -> Result<ItemStream<ChatChunk>, ProviderError> {
        let http_req = adapter.chat_request(req, cfg)?;
        let decoder = adapter.chat_stream_decoder(req, cfg);
        self.stream(adapter, http_req, decoder, timeouts).await
    }

    pub async fn embedding(
        &self,
        adapter: &dyn Adapter,
        req: &EmbeddingRequest,
        cfg: &UpstreamConfig,
        timeouts: &Timeouts,
    ) -> Result<EmbeddingResponse, ProviderError> {
        let http_req = adapter.embedding_request(req, cfg)?;
        let raw = self.send(http_req, timeouts).await.map_err(|e| tag(e, adapter))?;
        if !raw.status.is_success() {
            return Err(adapter.error_response(&raw));
        }
        let mut resp = adapter.embedding_response(&raw)?;
        if resp.model.is_empty() {
            resp.model.clone_from(&cfg.model);
        }
        Ok(resp)
    }

    pub async fn text_completion(
        &self,
        adapter: &dyn Adapter,
        req: &TextCompletionRequest,
        cfg: &UpstreamConfig,
        timeouts: &Timeouts,
    ) -> Result<TextCompletionResponse, ProviderError> {
        let http_req = adapter.text_completion_request(req, cfg)?;
        let raw = self.send(http_req, timeouts).await.map_err(|e| tag(e, adapter))?;
        if !raw.status.is_success() {
            return Err(adapter.error_response(&raw));
        }
        adapter.text_completion_response(&raw)
    }

    pub async fn text_completion_stream(
        &self,
        adapter: &dyn Adapter,
        req: &TextCompletionRequest,
        cfg: &UpstreamConfig,
        timeouts: &Timeouts,
    ) -> Result<ItemStream<TextCompletionResponse>, ProviderError> {
        let Some(decoder) = adapter.text_completion_stream_decoder(req, cfg) else {
            return Err(ProviderError::bad_request(format!(
                "{} cannot stream text completions",
                adapter.provider()
            ))
            .with_provider(adapter.provider()));
        };
        let http_req = adapter.text_completion_request(req, cfg)?;
        self.stream(adapter, http_req, decoder, timeouts).await
    }

    /// Sends a streaming request and returns the decoded items, first item already decoded.
    pub async fn stream<T: Send + 'static>(
        &self,
        adapter: &dyn Adapter,
        http_req: http::Request<Bytes>,
        decoder: Box<dyn StreamDecoder<T>>,
        timeouts: &Timeouts,
    ) -> Result<ItemStream<T>, ProviderError> {
        let deadline = Deadlines::start(timeouts);
        let resp = self.send_headers(http_req, &deadline).await.map_err(|e| tag(e, adapter))?;
        if !resp.status().is_success() {
            let raw = read_body(resp, self.config.max_error_body_bytes, &deadline)
                .await
                .map_err(|e| tag(e, adapter))?;
            return Err(adapter.error_response(&raw));
        }
        let provider: Arc<str> = Arc::from(adapter.provider());
        let mut state = StreamState {
            body: Box::pin(resp.bytes_stream()),
            decoder,
            pending: VecDeque::new(),
            scratch: Vec::new(),
            deadline,
            first_seen: false,
            finished: false,
            deferred_error: None,
            provider,
        };
        // Peek: wait for the first item (or the failure) before handing the stream out.
        match state.next_item().await {
            None => Err(ProviderError::decode("the upstream stream ended without any data")
                .with_provider(state.provider.as_ref())),
            Some(Err(e)) => Err(e),
            Some(Ok(first)) => {
                state.pending.push_front(first);
                let stream = futures_util::stream::unfold(state, |mut s| async move {
                    let item = s.next_item().await?;
                    if item.is_err() {
                        // One error item, then the stream ends.
                        s.finished = true;
                        s.pending.clear();
                    }
                    Some((item, s))
                });
                Ok(Box::pin(stream))
            }
        }
    }

    async fn send_headers(
        &self,
        req: http::Request<Bytes>,
        deadline: &Deadlines,
    ) -> Result<reqwest::Response, ProviderError> {
        let (parts, body) = req.into_parts();
        let url = parts.uri.to_string();
        let rb = self.client.request(parts.method, url).headers(parts.headers).body(body);
        let phase = deadline.header_phase();
        match tokio::time::timeout_at(deadline.header_deadline(), rb.send()).await {
            Err(_) => Err(timeout(phase)),
            Ok(Err(e)) => Err(map_reqwest_error(&e, phase)),
            Ok(Ok(resp)) => Ok(resp),
        }
    }
}

/// The per-call deadlines, fixed when the call starts.
#[derive(Debug, Clone, Copy)]
struct Deadlines {
    total: Option<Instant>,
    first_token: Option<Instant>,
}

/// Far enough in the future to mean "no deadline" for tokio's timer.
const FAR_FUTURE: Duration = Duration::from_secs(60 * 60 * 24 * 365);

impl Deadlines {
    fn start(t: &Timeouts) -> Self {
        let now = Instant::now();
        Deadlines { total: t.total.map(|d| now + d), first_token: t.first_token.map(|d| now + d) }
    }

    /// The earlier of the two deadlines while waiting for headers / the first chunk.
    fn header_deadline(&self) -> Instant {
        match (self.total, self.first_token) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => Instant::now() + FAR_FUTURE,
        }
    }

    fn header_phase(&self) -> TimeoutPhase {
        match (self.total, self.first_token) {
            (Some(total), Some(first)) if total <= first => TimeoutPhase::Total,
            (_, Some(_)) => TimeoutPhase::FirstToken,
            _ => TimeoutPhase::Total,
        }
    }

    fn body_deadline(&self) -> Instant {
        self.total.unwrap_or_else(|| Instant::now() + FAR_FUTURE)
    }
}

struct StreamState<T> {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    decoder: Box<dyn StreamDecoder<T>>,
    pending: VecDeque<T>,
    scratch: Vec<T>,
    deadline: Deadlines,
    first_seen: bool,
    finished: bool,
    /// A failure that arrived together with items: yielded once those items are delivered.
    deferred_error: Option<ProviderError>,
    provider: Arc<str>,
}

impl<T: Send> StreamState<T> {
    /// The next decoded item, reading more of the body as needed.
    async fn next_item(&mut self) -> Option<Result<T, ProviderError>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                self.first_seen = true;
                return Some(Ok(item));
            }
            if let Some(e) = self.deferred_error.take() {
                return Some(Err(e));
            }
            if self.finished {
                return None;
            }
            if self.decoder.is_done() {
                // The provider's terminator was seen: stop reading (the connection returns to the pool
                // once the body is dropped or drained).
                self.finished = true;
                let result = self.decoder.finish(&mut self.scratch);
                self.pending.extend(self.scratch.drain(..));
                if let Err(e) = result {
                    return self.fail(e);
                }
                continue;
            }
            let (deadline, phase) = if self.first_seen {
                (self.deadline.body_deadline(), TimeoutPhase::Total)
            } else {
                (self.deadline.header_deadline(), self.deadline.header_phase())
            };
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => return self.fail(timeout(phase)),
                Ok(Some(Ok(bytes))) => {
                    let result = self.decoder.decode(&bytes, &mut self.scratch);
                    self.pending.extend(self.scratch.drain(..));
                    if let Err(e) = result {
                        return self.fail(e);
                    }
                }
                Ok(Some(Err(e))) => return self.fail(map_reqwest_error(&e, TimeoutPhase::Total)),
                Ok(None) => {
                    self.finished = true;
                    let result = self.decoder.finish(&mut self.scratch);
                    self.pending.extend(self.scratch.drain(..));
                    if let Err(e) = result {
                        return self.fail(e);
                    }
                }
            }
        }
    }

    /// Ends the stream with `e`. Once the caller has seen items, the items decoded just before the
    /// failure (in the same network read) are still delivered, then the error: how much text the
    /// caller gets must not depend on how the network split the body. Before the first item, they
    /// are dropped so the failure surfaces from `stream()` itself, where it can still be retried.
    fn fail(&mut self, e: ProviderError) -> Option<Result<T, ProviderError>> {
        self.finished = true;
        let e = self.tagged(e);
        if self.first_seen && !self.pending.is_empty() {
            self.deferred_error = Some(e);
            return self.pending.pop_front().map(Ok);
        }
        self.pending.clear();
        Some(Err(e))
    }

    fn tagged(&self, mut e: ProviderError) -> ProviderError {
        if e.provider.is_none() {
            e.provider = Some(self.provider.to_string());
        }
        e
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn tag(mut e: ProviderError, adapter: &dyn Adapter) -> ProviderError {
    if e.provider.is_none() {
        e.provider = Some(adapter.provider().to_owned());
    }
    e
}

fn timeout(phase: TimeoutPhase) -> ProviderError {
    let what = match phase {
        TimeoutPhase::FirstToken => "no response from the upstream within the first-token timeout",
        TimeoutPhase::Total => "the upstream call exceeded its total timeout",
    };
    ProviderError::new(ErrorKind::Timeout(phase), what)
}

fn map_reqwest_error(e: &reqwest::Error, phase: TimeoutPhase) -> ProviderError {
    if e.is_timeout() {
        return timeout(phase);
    }
    // reqwest's Display omits the cause chain; walk it for a useful message (no URL secrets:
    // keys never travel in URLs tollgate builds, except Gemini's which use a header instead).
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    let what =
        if e.is_connect() { "could not connect to the upstream" } else { "upstream transport failure" };
    ProviderError::new(ErrorKind::Transport, format!("{what}: {msg}"))
}

async fn read_body(
    resp: reqwest::Response,
    limit: usize,
    deadline: &Deadlines,
) -> Result<RawResponse, ProviderError> {
    let status = resp.status();
    let headers = resp.headers().clone();
    let success = status.is_success();
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    loop {
        match tokio::time::timeout_at(deadline.body_deadline(), stream.next()).await {
            Err(_) => return Err(timeout(TimeoutPhase::Total)),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(map_reqwest_error(&e, TimeoutPhase::Total)),
            Ok(Some(Ok(chunk))) => {
                if body.len() + chunk.len() > limit {
                    if success {
                        return Err(ProviderError::decode(format!(
                            "the upstream response exceeded {limit} bytes"
                        )));
                    }
                    // An error body is only classified: its head is enough.
                    let room = limit - body.len();
                    body.extend_from_slice(&chunk[..room]);
                    break;
                }
                body.extend_from_slice(&chunk);
            }
        }
    }
    Ok(RawResponse { status, headers, body: Bytes::from(body) })
}
