//! Callbacks: one standard [`CallEvent`] per finished call, handed to [`CallbackSink`]s.
//!
//! The server builds one event when a call ends: a non-streamed answer or error, a stream's end
//! (`[DONE]` or a mid-stream error), or a stream whose client went away (status
//! `client_disconnected`, with the usage and cost seen until then; the body stream is dropped on
//! disconnect and a drop guard emits the event). A stream that ends before the upstream
//! reported usage gets an estimate (about 4 characters per token of the prompt's text and of
//! the text streamed so far; `usage_estimated: true`), priced like real usage. Events carry ids, models, deployment, tokens,
//! cost, timings and status, never prompt or response text and never credentials.
//!
//! Sinks must not block: [`CallbackSink::on_event`] is called on the request's task and is
//! expected to queue. The built-in sinks ([`HttpBatchSink`]) queue into a bounded buffer that a
//! background task sends in batches:
//!
//! * `generic_api` (LiteLLM's name; `generic` and `webhook` are aliases): a JSON array of events
//!   POSTed to a webhook (`general_settings.webhook_url` or LiteLLM's `GENERIC_LOGGER_ENDPOINT`;
//!   headers from `general_settings.webhook_headers` or `GENERIC_LOGGER_HEADERS` as
//!   `k=v,k2=v2`; batching from `general_settings.webhook_batch_size` (100),
//!   `webhook_flush_interval` (seconds, 5) and `webhook_queue_size` (10 000)). A
//!   `webhook_url` without `generic_api` in any list sends every event. (LiteLLM's
//!   `callback_settings` section is not read yet.)
//! * `otel`: one OTLP span per call, POSTed as OTLP/HTTP JSON to
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (or `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`);
//!   enabled by `callbacks: ["otel"]` or by either variable being set (see [`crate::otel`]).
//!
//! Which events a sink gets: names in `litellm_settings.success_callback` get successes and
//! client disconnects, `failure_callback` failures, `callbacks` everything.
//!
//! Batching: a batch is sent when `batch_size` events are queued or `flush_interval` passed
//! since the last send, whichever comes first. A failed send (transport error, timeout, 408,
//! 429, 5xx) is retried with exponential backoff (`retry_backoff`, doubled each time) up to
//! `max_retries` times, then the batch is dropped and counted; other 4xx answers are not retried.
//! Overflow policy: the queue holds at most `queue_capacity` events; when full, the **oldest**
//! queued event is dropped to make room and counted in [`SinkStats::dropped`] (a warning is
//! logged on the first drop and every 1000th). A graceful shutdown flushes every queued event
//! (bounded by a deadline, [`SHUTDOWN_FLUSH_TIMEOUT`] in the server).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_core::Stream;
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::Notify;
use tollgate::{
    ChatChunk, ChatRequest, ProviderError, RouteInfo, Secret, TextCompletionRequest, TextCompletionResponse,
    Usage,
};

use crate::config::Problem;
use crate::error::ApiError;

/// How long a graceful shutdown waits for the sinks to send what they queued.
pub const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Error messages in events are cut to this many characters.
const MAX_ERROR_MESSAGE_CHARS: usize = 1000;

// ---------------------------------------------------------------------------------------------
// The event
// ---------------------------------------------------------------------------------------------

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    Success,
    Failure,
    /// A stream whose client went away before its end.
    ClientDisconnected,
}

impl CallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Success => "success",
            CallStatus::Failure => "failure",
            CallStatus::ClientDisconnected => "client_disconnected",
        }
    }
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallError {
    /// A stable code: OpenAI's error code (`rate_limit_exceeded`, `model_not_found`,
    /// `context_length_exceeded`, `invalid_request`, …).
    pub kind: String,
    /// OpenAI's error type (`invalid_request_error`, `api_error`, …).
    pub r#type: String,
    /// The error message (cut to 1000 characters).
    pub message: String,
}

/// The standard payload of every callback: one per call. Times are Unix nanoseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallEvent {
    /// The call id (also the `x-tollgate-call-id` response header).
    pub call_id: String,
    /// `chat`, `completions` or `embeddings`.
    pub endpoint: String,
    pub start_time_unix_nano: u64,
    /// When the first streamed chunk (or the non-streamed answer) was in.
    pub first_token_time_unix_nano: Option<u64>,
    pub end_time_unix_nano: u64,
    pub duration_ms: f64,
    pub time_to_first_token_ms: Option<f64>,
    /// The model group that answered (the requested one, or a fallback).
    pub model_group: Option<String>,
    /// The model the client asked for.
    pub requested_model: Option<String>,
    /// The provider model called (`openai/gpt-4o-mini`), for routed calls.
    pub model: Option<String>,
    pub deployment_id: Option<String>,
    /// The provider (`openai`, `anthropic`, `mock`, …).
    pub provider: Option<String>,
    pub status: CallStatus,
    pub error: Option<CallError>,
    /// The HTTP status sent to the client (200 for streams, whatever happened later).
    pub http_status: u16,
    /// Whether the token counts are known (reported by the upstream or the mock provider).
    pub usage_known: bool,
    /// Whether the token counts are an estimate: a stream that ended (client gone, error)
    /// before the upstream reported usage is counted at about 4 characters per token, prompt
    /// from the request's message text, completion from the text streamed so far.
    pub usage_estimated: bool,
    /// All input tokens (cache reads and writes included).
    pub prompt_tokens: u64,
    /// All output tokens (reasoning included).
    pub completion_tokens: u64,
    pub total_tokens: u64,
    /// Input tokens read from the provider's cache.
    pub cached_tokens: u64,
    /// Input tokens written to the provider's cache.
    pub cache_creation_tokens: u64,
    pub reasoning_tokens: u64,
    /// The cost in US dollars, when known.
    pub cost_usd: Option<f64>,
    pub stream: bool,
    /// Whether the gateway's response cache answered (always false: no cache yet).
    pub cache_hit: bool,
    /// SHA-256 of the virtual key (`None` until virtual keys exist).
    pub key_hash: Option<String>,
    pub key_alias: Option<String>,
    pub team_id: Option<String>,
    pub user_id: Option<String>,
    pub customer_id: Option<String>,
    /// Calls repeated on the same group, and fallback groups entered.
    pub retries: u32,
    pub fallbacks: u32,
}

impl CallEvent {
    /// An event with nothing known but its id, endpoint and status (HTTP 200, no usage, no
    /// times); the server fills the rest. For sinks' tests.
    pub fn new(call_id: impl Into<String>, endpoint: impl Into<String>, status: CallStatus) -> Self {
        CallEvent {
            call_id: call_id.into(),
            endpoint: endpoint.into(),
            start_time_unix_nano: 0,
            first_token_time_unix_nano: None,
            end_time_unix_nano: 0,
            duration_ms: 0.0,
            time_to_first_token_ms: None,
            model_group: None,
            requested_model: None,
            model: None,
            deployment_id: None,
            provider: None,
            status,
            error: None,
            http_status: 200,
            usage_known: false,
            usage_estimated: false,
            prompt_tokens: 0,
            completion_tokens: 0,
            total_tokens: 0,
            cached_tokens: 0,
            cache_creation_tokens: 0,
            reasoning_tokens: 0,
            cost_usd: None,
            stream: false,
            cache_hit: false,
            key_hash: None,
            key_alias: None,
            team_id: None,
            user_id: None,
            customer_id: None,
            retries: 0,
            fallbacks: 0,
        }
    }

    /// Whether sinks subscribed to successes get it (successes and client disconnects).
    pub fn is_success_like(&self) -> bool {
        self.status != CallStatus::Failure
    }

    /// Sets the token fields from `usage`.
    pub fn set_usage(&mut self, usage: &Usage) {
        self.usage_known = true;
        self.prompt_tokens = usage.prompt_tokens;
        self.completion_tokens = usage.completion_tokens;
        self.total_tokens = if usage.total_tokens > 0 {
            usage.total_tokens
        } else {
            usage.prompt_tokens + usage.completion_tokens
        };
        self.cached_tokens = usage.cached_tokens();
        self.cache_creation_tokens = usage.cache_creation_tokens();
        self.reasoning_tokens = usage.reasoning_tokens();
    }
}

/// A receiver of call events.
pub trait CallbackSink: Send + Sync + 'static {
    /// A short name for logs (`generic_api`, `otel`).
    fn name(&self) -> &str;

    /// Takes one event. Called on the request's task: must not block or wait (queue instead).
    fn on_event(&self, event: &CallEvent);

    /// Sends everything queued, waiting at most until `deadline`. Called once at shutdown.
    fn shutdown(&self, deadline: Instant) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let _ = deadline;
        Box::pin(std::future::ready(()))
    }
}

/// Which events a sink receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventFilter {
    /// Successes and client disconnects.
    pub success: bool,
    pub failure: bool,
}

impl EventFilter {
    pub const ALL: EventFilter = EventFilter { success: true, failure: true };

    pub fn accepts(self, event: &CallEvent) -> bool {
        if event.is_success_like() { self.success } else { self.failure }
    }

    fn any(self) -> bool {
        self.success || self.failure
    }
}

#[derive(Clone)]
struct Registered {
    sink: Arc<dyn CallbackSink>,
    filter: EventFilter,
}

/// The sinks of a gateway. Cheap to clone.
#[derive(Clone, Default)]
pub struct Callbacks {
    sinks: Arc<Vec<Registered>>,
}

impl std::fmt::Debug for Callbacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.sinks.iter().map(|r| (r.sink.name(), r.filter))).finish()
    }
}

impl Callbacks {
    /// No sinks.
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in sinks a config asks for (queues only; the senders start with the first
    /// event, on the runtime it arrives on).
    pub fn from_config(cfg: &CallbackConfig) -> Self {
        for w in &cfg.warnings {
            tracing::warn!("{w}");
        }
        if !cfg.unsupported.is_empty() {
            tracing::warn!(
                names = %cfg.unsupported.join(", "),
                "callbacks tollgate does not support are ignored: {}",
                cfg.unsupported.join(", ")
            );
        }
        let mut cbs = Callbacks::new();
        if let Some(w) = &cfg.webhook {
            cbs = cbs.with_sink(Arc::new(HttpBatchSink::webhook(w)), w.events);
        }
        if let Some(o) = &cfg.otel {
            cbs = cbs.with_sink(Arc::new(HttpBatchSink::otlp(o)), o.events);
        }
        cbs
    }

    /// Adds a sink receiving the events `filter` accepts.
    pub fn with_sink(mut self, sink: Arc<dyn CallbackSink>, filter: EventFilter) -> Self {
        Arc::make_mut(&mut self.sinks).push(Registered { sink, filter });
        self
    }

    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    /// Hands `event` to every sink that wants it.
    pub fn emit(&self, event: &CallEvent) {
        for r in self.sinks.iter() {
            if r.filter.accepts(event) {
                r.sink.on_event(event);
            }
        }
    }

    /// Flushes every sink, waiting at most `timeout` in all.
    pub async fn shutdown(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        for r in self.sinks.iter() {
            r.sink.shutdown(deadline).await;
        }
    }

    /// Reports a call that ended with `result` (a non-streamed answer or an error). Calls whose
    /// stream was handed to [`Callbacks::track`] are reported by the stream instead.
    pub(crate) fn finished(&self, facts: CallFacts, result: &Result<axum::response::Response, ApiError>) {
        if self.is_empty() || facts.stream {
            return;
        }
        let now = Instant::now();
        let (status, error, http) = match result {
            Ok(r) if r.status().is_success() => (CallStatus::Success, None, r.status().as_u16()),
            Ok(r) => (CallStatus::Failure, None, r.status().as_u16()),
            Err(e) => (
                CallStatus::Failure,
                Some(CallError {
                    kind: e.body.error.code.clone().unwrap_or_else(|| e.body.error.r#type.clone()),
                    r#type: e.body.error.r#type.clone(),
                    message: cut(&e.body.error.message),
                }),
                e.status.as_u16(),
            ),
        };
        let first = (status == CallStatus::Success).then_some(now);
        let ev = facts.event(status, error, http, first, now, facts.usage.as_ref(), facts.cost);
        self.emit(&ev);
    }

    /// Wraps a response stream so that its end, its mid-stream error, or its drop before the
    /// end (client gone) is reported with the usage (and cost) seen.
    pub(crate) fn track<T, S>(&self, facts: CallFacts, inner: S) -> TrackedStream<T>
    where
        T: StreamUsage + Send + 'static,
        S: Stream<Item = Result<T, ProviderError>> + Send + 'static,
    {
        TrackedStream {
            inner: Box::pin(inner),
            tracker: Some(Tracker { callbacks: self.clone(), facts, first: None, usage: None, out_chars: 0 }),
        }
    }
}

fn cut(s: &str) -> String {
    if s.chars().count() <= MAX_ERROR_MESSAGE_CHARS {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX_ERROR_MESSAGE_CHARS).collect();
        out.push('…');
        out
    }
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// How a routed call was served (from the router's [`RouteInfo`]).
#[derive(Debug, Clone)]
pub(crate) struct RouteSummary {
    pub(crate) deployment_id: String,
    pub(crate) model: String,
    pub(crate) retries: u32,
    pub(crate) fallbacks: u32,
}

impl RouteSummary {
    pub(crate) fn of(route: &RouteInfo) -> Self {
        let groups: std::collections::BTreeSet<&str> = route.attempts.iter().map(|a| &*a.group).collect();
        RouteSummary {
            deployment_id: route.deployment_id.to_string(),
            model: route.model.to_string(),
            retries: route.attempts.len().saturating_sub(groups.len()) as u32,
            fallbacks: route.fallbacks,
        }
    }
}

/// Prices a usage for a call (the deployment's custom prices, else the price table).
pub(crate) type Pricer = Box<dyn Fn(&Usage) -> Option<f64> + Send + Sync>;

/// What the server knows about a call when it hands it to the callbacks.
pub(crate) struct CallFacts {
    pub(crate) call_id: String,
    pub(crate) endpoint: &'static str,
    pub(crate) started: Instant,
    pub(crate) group: Option<String>,
    pub(crate) requested: Option<String>,
    pub(crate) route: Option<RouteSummary>,
    pub(crate) usage: Option<Usage>,
    pub(crate) cost: Option<f64>,
    /// The call is a stream (reported by [`Callbacks::track`]).
    pub(crate) stream: bool,
    /// The group is served by the built-in mock provider.
    pub(crate) mock: bool,
    /// Prices the usage of a stream once it is known.
    pub(crate) pricer: Option<Pricer>,
    /// Characters of the prompt's text (for a stream's usage estimate).
    pub(crate) prompt_chars: u64,
}

impl CallFacts {
    #[allow(clippy::too_many_arguments)]
    fn event(
        &self,
        status: CallStatus,
        error: Option<CallError>,
        http_status: u16,
        first: Option<Instant>,
        end: Instant,
        usage: Option<&Usage>,
        cost: Option<f64>,
    ) -> CallEvent {
        let now_wall = SystemTime::now();
        let now = Instant::now();
        let wall = |t: Instant| now_wall.checked_sub(now.saturating_duration_since(t)).unwrap_or(now_wall);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let model = self.route.as_ref().map(|r| r.model.clone());
        let provider = match &model {
            Some(m) => m.split_once('/').map(|(p, _)| p.to_owned()),
            None if self.mock => Some("mock".to_owned()),
            None => None,
        };
        let mut ev = CallEvent::new(self.call_id.clone(), self.endpoint, status);
        ev.start_time_unix_nano = unix_nanos(wall(self.started));
        ev.first_token_time_unix_nano = first.map(|t| unix_nanos(wall(t)));
        ev.end_time_unix_nano = unix_nanos(wall(end));
        ev.duration_ms = ms(end.saturating_duration_since(self.started));
        ev.time_to_first_token_ms = first.map(|t| ms(t.saturating_duration_since(self.started)));
        ev.model_group.clone_from(&self.group);
        ev.requested_model = self.requested.clone().or_else(|| self.group.clone());
        ev.deployment_id = self.route.as_ref().map(|r| r.deployment_id.clone());
        ev.model = model;
        ev.provider = provider;
        ev.error = error;
        ev.http_status = http_status;
        ev.cost_usd = cost;
        ev.stream = self.stream;
        ev.retries = self.route.as_ref().map_or(0, |r| r.retries);
        ev.fallbacks = self.route.as_ref().map_or(0, |r| r.fallbacks);
        if let Some(u) = usage {
            ev.set_usage(u);
        }
        ev
    }
}

// ---------------------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------------------

/// Stream items that may carry usage.
pub(crate) trait StreamUsage {
    fn usage(&self) -> Option<&Usage>;
    /// Characters of generated text in this item (for a usage estimate).
    fn output_chars(&self) -> u64;
}

fn len(s: Option<&String>) -> u64 {
    s.map_or(0, |s| s.chars().count() as u64)
}

impl StreamUsage for ChatChunk {
    fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    fn output_chars(&self) -> u64 {
        let mut n = 0;
        for c in &self.choices {
            let d = &c.delta;
            n += len(d.content.as_ref()) + len(d.reasoning_content.as_ref()) + len(d.refusal.as_ref());
            for t in d.tool_calls.iter().flatten() {
                if let Some(f) = &t.function {
                    n += len(f.name.as_ref()) + len(f.arguments.as_ref());
                }
            }
        }
        n
    }
}

impl StreamUsage for TextCompletionResponse {
    fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    fn output_chars(&self) -> u64 {
        self.choices.iter().map(|c| c.text.chars().count() as u64).sum()
    }
}

/// Characters of a chat request's message text.
pub(crate) fn chat_prompt_chars(req: &ChatRequest) -> u64 {
    req.messages.iter().map(|m| m.text().chars().count() as u64).sum()
}

/// Characters of a text completion's prompt (a string or a list of strings).
pub(crate) fn text_prompt_chars(req: &TextCompletionRequest) -> u64 {
    match &req.prompt {
        Value::String(s) => s.chars().count() as u64,
        Value::Array(items) => items.iter().filter_map(Value::as_str).map(|s| s.chars().count() as u64).sum(),
        _ => 0,
    }
}

/// About 4 characters per token (rounded up).
fn estimate_tokens(chars: u64) -> u64 {
    chars.div_ceil(4)
}

struct Tracker {
    callbacks: Callbacks,
    facts: CallFacts,
    first: Option<Instant>,
    usage: Option<Usage>,
    /// Characters of generated text seen.
    out_chars: u64,
}

impl Tracker {
    fn report(self, status: CallStatus, error: Option<CallError>) {
        let estimated = self.usage.is_none();
        let usage = self.usage.clone().unwrap_or_else(|| {
            Usage::new(estimate_tokens(self.facts.prompt_chars), estimate_tokens(self.out_chars))
        });
        let cost = self.facts.pricer.as_ref().and_then(|p| p(&usage));
        let mut ev = self.facts.event(status, error, 200, self.first, Instant::now(), Some(&usage), cost);
        if estimated {
            ev.usage_known = false;
            ev.usage_estimated = true;
        }
        self.callbacks.emit(&ev);
    }
}

/// A response stream that reports its end (see [`Callbacks::track`]).
pub(crate) struct TrackedStream<T> {
    inner: Pin<Box<dyn Stream<Item = Result<T, ProviderError>> + Send>>,
    tracker: Option<Tracker>,
}

impl<T: StreamUsage> Stream for TrackedStream<T> {
    type Item = Result<T, ProviderError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let item = std::task::ready!(this.inner.as_mut().poll_next(cx));
        match &item {
            Some(Ok(chunk)) => {
                if let Some(t) = this.tracker.as_mut() {
                    t.first.get_or_insert_with(Instant::now);
                    t.out_chars += chunk.output_chars();
                    if let Some(u) = chunk.usage() {
                        t.usage = Some(u.clone());
                    }
                }
            }
            Some(Err(e)) => {
                if let Some(t) = this.tracker.take() {
                    let body = e.to_openai_body().error;
                    let error = CallError {
                        kind: body.code.unwrap_or_else(|| e.kind.default_code().to_owned()),
                        r#type: body.r#type,
                        message: cut(&e.message),
                    };
                    t.report(CallStatus::Failure, Some(error));
                }
            }
            None => {
                if let Some(t) = this.tracker.take() {
                    t.report(CallStatus::Success, None);
                }
            }
        }
        Poll::Ready(item)
    }
}

impl<T> Drop for TrackedStream<T> {
    fn drop(&mut self) {
        if let Some(t) = self.tracker.take() {
            t.report(CallStatus::ClientDisconnected, None);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// Batching, retry and queue knobs of a built-in sink.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchSettings {
    /// Events per request (default 100).
    pub batch_size: usize,
    /// Longest wait before a partial batch is sent (default 5 s).
    pub flush_interval: Duration,
    /// Most events queued; beyond it the oldest is dropped (default 10 000).
    pub queue_capacity: usize,
    /// Retries of a failed send (default 4).
    pub max_retries: u32,
    /// The first retry's wait, doubled for each further one (default 250 ms).
    pub retry_backoff: Duration,
    /// Timeout of one request (default 10 s).
    pub request_timeout: Duration,
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings {
            batch_size: 100,
            flush_interval: Duration::from_secs(5),
            queue_capacity: 10_000,
            max_retries: 4,
            retry_backoff: Duration::from_millis(250),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// The `generic_api` webhook.
#[derive(Clone, PartialEq)]
pub struct WebhookConfig {
    pub url: String,
    /// Extra request headers (values are secrets: never printed).
    pub headers: Vec<(String, Secret)>,
    pub events: EventFilter,
    pub batch: BatchSettings,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("headers", &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("events", &self.events)
            .field("batch", &self.batch)
            .finish()
    }
}

/// The OTLP/HTTP trace exporter (see [`crate::otel`]).
#[derive(Clone, PartialEq)]
pub struct OtlpConfig {
    /// The full traces URL (`…/v1/traces`).
    pub endpoint: String,
    pub headers: Vec<(String, Secret)>,
    /// `service.name` of the resource (`OTEL_SERVICE_NAME`, default `tollgate`).
    pub service_name: String,
    pub events: EventFilter,
    pub batch: BatchSettings,
}

impl std::fmt::Debug for OtlpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpConfig")
            .field("endpoint", &self.endpoint)
            .field("headers", &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("service_name", &self.service_name)
            .field("events", &self.events)
            .field("batch", &self.batch)
            .finish()
    }
}

/// The callbacks a config enables.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallbackConfig {
    pub webhook: Option<WebhookConfig>,
    pub otel: Option<OtlpConfig>,
    /// Callback names listed in the config that tollgate does not implement (ignored).
    pub unsupported: Vec<String>,
    /// Things worth a warning at start-up (e.g. an OTLP protocol other than `http/json`).
    pub warnings: Vec<String>,
}

/// The `litellm_settings` keys naming callbacks.
pub(crate) const CALLBACK_LIST_KEYS: [&str; 3] = ["success_callback", "failure_callback", "callbacks"];

/// Callback names tollgate implements, by sink.
const WEBHOOK_NAMES: &[&str] = &["generic_api", "generic", "webhook"];
const OTEL_NAMES: &[&str] = &["otel", "opentelemetry"];

/// Reads the callback lists of `litellm_settings` (`ls`), the webhook keys of
/// `general_settings` (`gs`) and the `GENERIC_LOGGER_*` / `OTEL_*` variables of `env`.
/// Problems are pushed with their path; keys naming callbacks tollgate lacks go to
/// `unsupported` (by key path, the names themselves into [`CallbackConfig::unsupported`]).
pub(crate) fn load_config(
    ls: &Map<String, Value>,
    gs: &Map<String, Value>,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
    unsupported: &mut Vec<String>,
) -> CallbackConfig {
    let mut cfg = CallbackConfig::default();
    let mut webhook = EventFilter::default();
    let mut otel = EventFilter::default();
    let mut problem = |path: String, message: String| problems.push(Problem { path, message });
    for key in CALLBACK_LIST_KEYS {
        let path = format!("litellm_settings.{key}");
        let names: Vec<String> = match ls.get(key) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => {
                let mut names = Vec::new();
                for (i, v) in items.iter().enumerate() {
                    match v {
                        Value::String(s) => names.push(s.clone()),
                        _ => problem(format!("{path}[{i}]"), "expected a callback name".into()),
                    }
                }
                names
            }
            Some(_) => {
                problem(path, "expected a list of callback names".into());
                continue;
            }
        };
        let filter = match key {
            "success_callback" => EventFilter { success: true, failure: false },
            "failure_callback" => EventFilter { success: false, failure: true },
            _ => EventFilter::ALL,
        };
        let mut reported = false;
        for name in names {
            let target = if WEBHOOK_NAMES.contains(&name.as_str()) {
                &mut webhook
            } else if OTEL_NAMES.contains(&name.as_str()) {
                &mut otel
            } else {
                if !reported {
                    unsupported.push(path.clone());
                    reported = true;
                }
                if !cfg.unsupported.contains(&name) {
                    cfg.unsupported.push(name);
                }
                continue;
            };
            target.success |= filter.success;
            target.failure |= filter.failure;
        }
    }

    // The webhook: general_settings first, then LiteLLM's variables.
    let url = match gs.get("webhook_url") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        None | Some(Value::Null) => None,
        Some(_) => {
            problem("general_settings.webhook_url".into(), "expected a URL".into());
            None
        }
    };
    if url.is_some() && !webhook.any() {
        // A configured URL means "send events there".
        webhook = EventFilter::ALL;
    }
    if webhook.any() {
        let url = url.or_else(|| env("GENERIC_LOGGER_ENDPOINT").filter(|s| !s.is_empty()));
        let headers = match gs.get("webhook_headers") {
            Some(Value::Object(m)) => {
                let mut out = Vec::new();
                for (k, v) in m {
                    match v {
                        Value::String(s) => out.push((k.clone(), Secret::new(s.clone()))),
                        Value::Number(n) => out.push((k.clone(), Secret::new(n.to_string()))),
                        _ => problem(
                            format!("general_settings.webhook_headers.{k}"),
                            "expected a string".into(),
                        ),
                    }
                }
                out
            }
            None | Some(Value::Null) => {
                env("GENERIC_LOGGER_HEADERS").map(|h| parse_header_list(&h)).unwrap_or_default()
            }
            Some(_) => {
                problem(
                    "general_settings.webhook_headers".into(),
                    "expected a mapping of header names to values".into(),
                );
                Vec::new()
            }
        };
        let mut batch = BatchSettings::default();
        if let Some(n) = positive_int(gs, "webhook_batch_size", &mut problem) {
            batch.batch_size = n;
        }
        if let Some(n) = positive_int(gs, "webhook_queue_size", &mut problem) {
            batch.queue_capacity = n;
        }
        match gs.get("webhook_flush_interval") {
            None | Some(Value::Null) => {}
            Some(v) => match v.as_f64() {
                Some(s) if s > 0.0 && s < 1e6 => batch.flush_interval = Duration::from_secs_f64(s),
                _ => problem(
                    "general_settings.webhook_flush_interval".into(),
                    "must be a positive number of seconds".into(),
                ),
            },
        }
        match url {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                cfg.webhook = Some(WebhookConfig { url, headers, events: webhook, batch });
            }
            Some(url) => problem(
                "general_settings.webhook_url".into(),
                format!("`{url}` is not an http:// or https:// URL"),
            ),
            None => problem(
                "litellm_settings".into(),
                "the `generic_api` callback needs an endpoint: set general_settings.webhook_url or the \
                 GENERIC_LOGGER_ENDPOINT environment variable"
                    .into(),
            ),
        }
    }

    crate::otel::load(otel, env, &mut cfg);
    cfg
}

fn positive_int(
    gs: &Map<String, Value>,
    key: &str,
    problem: &mut impl FnMut(String, String),
) -> Option<usize> {
    match gs.get(key) {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => Some(n as usize),
            _ => {
                problem(format!("general_settings.{key}"), "must be a positive whole number".into());
                None
            }
        },
    }
}

/// `k=v,k2=v2` (the OTLP headers format; values percent-decoded).
pub(crate) fn parse_header_list(s: &str) -> Vec<(String, Secret)> {
    s.split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let k = percent_decode(k.trim());
            (!k.is_empty()).then(|| (k, Secret::new(percent_decode(v.trim()))))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex =
                std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------------
// The batching HTTP sink
// ---------------------------------------------------------------------------------------------

/// Counters of a built-in sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SinkStats {
    /// Events waiting to be sent.
    pub queued: u64,
    /// Events delivered (2xx).
    pub sent: u64,
    /// Events dropped because the queue was full (the oldest go first).
    pub dropped: u64,
    /// Events given up on after the last retry (or a non-retryable answer).
    pub failed: u64,
    /// Requests retried.
    pub retries: u64,
}

/// How a batch becomes a request body.
#[derive(Debug, Clone)]
enum Encoding {
    /// A JSON array of [`CallEvent`]s.
    JsonArray,
    /// An OTLP `ExportTraceServiceRequest` in its JSON mapping.
    Otlp { service_name: String },
}

struct Shared {
    name: &'static str,
    url: String,
    headers: Vec<(String, Secret)>,
    encoding: Encoding,
    settings: BatchSettings,
    client: reqwest::Client,
    queue: Mutex<VecDeque<CallEvent>>,
    wake: Notify,
    closing: AtomicBool,
    started: AtomicBool,
    worker: Mutex<Option<tokio::task::JoinHandle<()>>>,
    sent: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    retries: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A sink that queues events and POSTs them in batches from a background task (the built-in
/// `generic_api` webhook and OTLP exporter).
#[derive(Clone)]
pub struct HttpBatchSink {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for HttpBatchSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpBatchSink")
            .field("name", &self.shared.name)
            .field("url", &self.shared.url)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl HttpBatchSink {
    /// The `generic_api` webhook: JSON arrays of events.
    pub fn webhook(cfg: &WebhookConfig) -> Self {
        Self::new("generic_api", &cfg.url, cfg.headers.clone(), Encoding::JsonArray, cfg.batch.clone())
    }

    /// The OTLP/HTTP JSON trace exporter: one span per event.
    pub fn otlp(cfg: &OtlpConfig) -> Self {
        Self::new(
            "otel",
            &cfg.endpoint,
            cfg.headers.clone(),
            Encoding::Otlp { service_name: cfg.service_name.clone() },
            cfg.batch.clone(),
        )
    }

    fn new(
        name: &'static str,
        url: &str,
        headers: Vec<(String, Secret)>,
        encoding: Encoding,
        settings: BatchSettings,
    ) -> Self {
        let client = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        HttpBatchSink {
            shared: Arc::new(Shared {
                name,
                url: url.to_owned(),
                headers,
                encoding,
                settings,
                client,
                queue: Mutex::new(VecDeque::new()),
                wake: Notify::new(),
                closing: AtomicBool::new(false),
                started: AtomicBool::new(false),
                worker: Mutex::new(None),
                sent: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                failed: AtomicU64::new(0),
                retries: AtomicU64::new(0),
            }),
        }
    }

    pub fn stats(&self) -> SinkStats {
        let s = &self.shared;
        SinkStats {
            queued: lock(&s.queue).len() as u64,
            sent: s.sent.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            retries: s.retries.load(Ordering::Relaxed),
        }
    }

    /// Starts the sender on the current tokio runtime, once (no runtime: events stay queued
    /// until one is available).
    fn ensure_worker(&self) {
        if self.shared.started.load(Ordering::Acquire) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        if self.shared.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let shared = Arc::clone(&self.shared);
        *lock(&self.shared.worker) = Some(handle.spawn(run(shared)));
    }
}

impl CallbackSink for HttpBatchSink {
    fn name(&self) -> &str {
        self.shared.name
    }

    fn on_event(&self, event: &CallEvent) {
        let s = &self.shared;
        let len = {
            let mut q = lock(&s.queue);
            if q.len() >= s.settings.queue_capacity {
                q.pop_front();
                let n = s.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n == 1 || n.is_multiple_of(1000) {
                    tracing::warn!(
                        sink = s.name,
                        dropped = n,
                        "callback queue full: dropping the oldest events"
                    );
                }
            }
            q.push_back(event.clone());
            q.len()
        };
        self.ensure_worker();
        if len >= s.settings.batch_size {
            s.wake.notify_one();
        }
    }

    fn shutdown(&self, deadline: Instant) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let s = &self.shared;
            s.closing.store(true, Ordering::Release);
            if !lock(&s.queue).is_empty() {
                self.ensure_worker();
            }
            s.wake.notify_one();
            let handle = lock(&s.worker).take();
            if let Some(mut h) = handle {
                let left = deadline.saturating_duration_since(Instant::now());
                if tokio::time::timeout(left, &mut h).await.is_err() {
                    h.abort();
                    let lost = lock(&s.queue).len();
                    tracing::warn!(
                        sink = s.name,
                        lost,
                        "callback flush deadline passed; queued events are lost"
                    );
                }
            }
        })
    }
}

/// The sender: waits for a full batch, the interval or shutdown; sends until the queue is
/// below a batch (everything when closing); exits once closing and empty.
async fn run(s: Arc<Shared>) {
    loop {
        let closing = s.closing.load(Ordering::Acquire);
        if !closing {
            let _ = tokio::time::timeout(s.settings.flush_interval, s.wake.notified()).await;
        }
        loop {
            let batch: Vec<CallEvent> = {
                let mut q = lock(&s.queue);
                let n = q.len().min(s.settings.batch_size);
                q.drain(..n).collect()
            };
            if batch.is_empty() {
                break;
            }
            send(&s, &batch).await;
            let closing = s.closing.load(Ordering::Acquire);
            if !closing && lock(&s.queue).len() < s.settings.batch_size {
                break;
            }
        }
        if s.closing.load(Ordering::Acquire) && lock(&s.queue).is_empty() {
            return;
        }
    }
}

fn retryable(status: reqwest::StatusCode) -> bool {
    status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408
}

async fn send(s: &Shared, batch: &[CallEvent]) {
    let body = match &s.encoding {
        Encoding::JsonArray => serde_json::to_vec(batch),
        Encoding::Otlp { service_name } => {
            serde_json::to_vec(&crate::otel::export_request(service_name, batch))
        }
    };
    let body = match body {
        Ok(b) => bytes::Bytes::from(b),
        Err(e) => {
            tracing::warn!(sink = s.name, error = %e, "cannot encode callback events");
            s.failed.fetch_add(batch.len() as u64, Ordering::Relaxed);
            return;
        }
    };
    let mut attempt = 0u32;
    loop {
        let mut req = s.client.post(&s.url).header("content-type", "application/json").body(body.clone());
        for (k, v) in &s.headers {
            req = req.header(k.as_str(), v.expose());
        }
        let outcome = match req.send().await {
            Ok(resp) if resp.status().is_success() => Ok(()),
            Ok(resp) => Err((retryable(resp.status()), format!("HTTP {}", resp.status().as_u16()))),
            Err(e) => Err((true, e.to_string())),
        };
        match outcome {
            Ok(()) => {
                s.sent.fetch_add(batch.len() as u64, Ordering::Relaxed);
                return;
            }
            Err((retry, why)) if retry && attempt < s.settings.max_retries => {
                let wait = s.settings.retry_backoff.saturating_mul(1 << attempt.min(16));
                tracing::debug!(sink = s.name, error = %why, attempt, "callback send failed; retrying");
                attempt += 1;
                s.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(wait).await;
            }
            Err((_, why)) => {
                s.failed.fetch_add(batch.len() as u64, Ordering::Relaxed);
                tracing::warn!(sink = s.name, error = %why, events = batch.len(), "callback batch dropped");
                return;
            }
        }
    }
}
