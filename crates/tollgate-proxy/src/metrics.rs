//! Prometheus metrics: a small hand-written registry of atomics, rendered in the text exposition
//! format at `GET /metrics`.
//!
//! Every label set is created at start-up: one series per configured model group (calls served
//! without a deployment: mock groups, failures before routing) and one per deployment (by id),
//! plus one fallback series (empty `model_group` and `deployment`) for everything else, such as
//! requests for models the gateway does not serve. Client-chosen strings never become label
//! values, so the number of series is bounded by the config. Recording is a hash lookup of the
//! deployment id (or group) and a few relaxed atomic adds: no lock, no allocation.
//!
//! How a call is recorded:
//! * [`track`] is a middleware on the API routes: it counts in-flight requests, and when the
//!   handler answers it counts the request (endpoint, status class), the failure kind (from the
//!   [`FailureKind`] that `ApiError` responses carry, else from the status) and, for answers that
//!   are not streams, the latency, tokens and spend.
//! * The handler leaves a [`CallInfo`] in the response's extensions (built by [`Meter::info`]):
//!   model group, deployment, gateway overhead, tokens, cost.
//! * SSE answers get their body wrapped: the first event that is not a keep-alive records the time
//!   to first token, a mid-stream error event records its failure kind, and the end of the stream
//!   (or the client going away) records the latency, the tokens seen by [`Meter::tap`] and their
//!   cost, and leaves the in-flight gauge.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use futures_core::Stream;
use http::{HeaderValue, StatusCode, header};
use tollgate::{ProviderError, RouteInfo, Router, StreamItem, Usage};

use crate::config::ProxyConfig;

// ---------------------------------------------------------------------------------------------
// Label values
// ---------------------------------------------------------------------------------------------

/// The `endpoint` label values.
const ENDPOINTS: [&str; 6] = ["chat", "completions", "embeddings", "messages", "models", "other"];
const ENDPOINT_N: usize = ENDPOINTS.len();
const OTHER_ENDPOINT: usize = ENDPOINT_N - 1;

/// The `status_class` label values (index = first digit − 1).
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
const STATUS_N: usize = STATUS_CLASSES.len();

/// The `error_kind` label values.
const KINDS: [&str; 16] = [
    "rate_limited",
    "context_window_exceeded",
    "content_filtered",
    "authentication",
    "permission_denied",
    "not_found",
    "bad_request",
    "unsupported_params",
    "timeout",
    "overloaded",
    "upstream_error",
    "transport",
    "decode",
    "request_too_large",
    "internal",
    "other",
];
const KIND_N: usize = KINDS.len();

/// The endpoint label of a matched route (with or without `/v1`, Azure's
/// `/openai/deployments/{deployment}/…` too); `None` for routes that are not counted as API
/// requests (`/health…`, `/metrics`, `/openapi.json`).
fn endpoint_of(path: &str) -> Option<usize> {
    let p = path.strip_prefix("/v1").unwrap_or(path);
    let i = if p.ends_with("/chat/completions") {
        0
    } else if p.ends_with("/completions") {
        1
    } else if p.ends_with("/embeddings") {
        2
    } else if p.starts_with("/messages") {
        3
    } else if p.starts_with("/models") {
        4
    } else if p.starts_with("/health") || p == "/metrics" || p == "/openapi.json" {
        return None;
    } else {
        OTHER_ENDPOINT
    };
    Some(i)
}

fn status_class(status: u16) -> usize {
    usize::from(status / 100).clamp(1, STATUS_N) - 1
}

/// The failure kind of an error answer, carried in the response's extensions by `ApiError`
/// (index into the `error_kind` label values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FailureKind(u8);

impl FailureKind {
    /// Classifies an error answer by its OpenAI error `code` (tollgate's codes for each
    /// `ErrorKind`, which most providers share), else by its HTTP status.
    pub(crate) fn classify(status: u16, code: Option<&str>) -> Self {
        let by_code = match code {
            Some("rate_limit_exceeded") => Some(0),
            Some("context_length_exceeded") => Some(1),
            Some("content_filter") => Some(2),
            Some("invalid_api_key") => Some(3),
            Some("permission_denied") => Some(4),
            Some("model_not_found") => Some(5),
            Some("invalid_request") => Some(6),
            Some("unsupported_parameter") => Some(7),
            Some("first_token_timeout" | "request_timeout") => Some(8),
            Some("overloaded") => Some(9),
            Some("upstream_error") => Some(10),
            Some("upstream_connection_error") => Some(11),
            Some("upstream_decode_error") => Some(12),
            Some("request_too_large") => Some(13),
            Some("internal_error") => Some(14),
            _ => None,
        };
        let i = by_code.unwrap_or(match status {
            429 => 0,
            401 => 3,
            403 => 4,
            404 => 5,
            408 | 504 => 8,
            503 | 529 => 9,
            413 => 13,
            500 => 14,
            400..=499 => 6,
            501..=599 => 10,
            _ => 15,
        });
        FailureKind(i)
    }

    /// The `error_kind` label value.
    #[cfg(test)]
    pub(crate) fn label(self) -> &'static str {
        KINDS[usize::from(self.0).min(KIND_N - 1)]
    }
}

// ---------------------------------------------------------------------------------------------
// Primitives
// ---------------------------------------------------------------------------------------------

/// Latency buckets (seconds) for request duration and time to first token.
const LATENCY_BUCKETS: [f64; 15] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];
/// Finer buckets (seconds) for the gateway's own overhead.
const OVERHEAD_BUCKETS: [f64; 13] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// A histogram over fixed bucket bounds: per-bucket counts (not cumulative; the last one is
/// `+Inf`) and the sum in nanoseconds, all relaxed atomics. `_count` is rendered as the sum of
/// the bucket counts, so it always equals the `+Inf` bucket.
struct Histogram {
    bounds_s: &'static [f64],
    bounds_ns: Box<[u64]>,
    counts: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
}

impl Histogram {
    fn new(bounds_s: &'static [f64]) -> Self {
        Histogram {
            bounds_s,
            bounds_ns: bounds_s.iter().map(|b| (b * 1e9) as u64).collect(),
            counts: (0..=bounds_s.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }

    fn observe(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = self.bounds_ns.iter().position(|&b| ns <= b).unwrap_or(self.bounds_ns.len());
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            match self.bounds_s.get(i) {
                Some(b) => {
                    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {cumulative}");
                }
                None => {
                    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
                }
            }
        }
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

/// An `f64` counter: the bits in an `AtomicU64`, added with a compare-and-swap loop.
struct AtomicF64(AtomicU64);

impl AtomicF64 {
    fn new() -> Self {
        AtomicF64(AtomicU64::new(0f64.to_bits()))
    }

    fn add(&self, v: f64) {
        let _ = self.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
            Some((f64::from_bits(bits) + v).to_bits())
        });
    }

    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

fn inc(c: &AtomicU64, by: u64) {
    c.fetch_add(by, Ordering::Relaxed);
}

// ---------------------------------------------------------------------------------------------
// Series and registry
// ---------------------------------------------------------------------------------------------

/// Everything recorded for one (model group, deployment) pair.
struct Series {
    /// `model_group="…",deployment="…"`, escaped, ready to render.
    labels: String,
    requests: [[AtomicU64; STATUS_N]; ENDPOINT_N],
    failures: [[AtomicU64; KIND_N]; ENDPOINT_N],
    latency: [Histogram; ENDPOINT_N],
    ttft: [Histogram; ENDPOINT_N],
    overhead: Histogram,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    spend: AtomicF64,
    /// The deployment's custom per-token prices (input, output), to price streams the way the
    /// server prices answers.
    prices: Option<(f64, f64)>,
}

impl Series {
    fn new(group: &str, deployment: &str, prices: Option<(f64, f64)>) -> Self {
        Series {
            labels: format!("model_group=\"{}\",deployment=\"{}\"", escape(group), escape(deployment)),
            requests: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            failures: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            latency: std::array::from_fn(|_| Histogram::new(&LATENCY_BUCKETS)),
            ttft: std::array::from_fn(|_| Histogram::new(&LATENCY_BUCKETS)),
            overhead: Histogram::new(&OVERHEAD_BUCKETS),
            prompt_tokens: AtomicU64::new(0),
            completion_tokens: AtomicU64::new(0),
            spend: AtomicF64::new(),
            prices,
        }
    }

    fn add_tokens(&self, prompt: u64, completion: u64) {
        inc(&self.prompt_tokens, prompt);
        inc(&self.completion_tokens, completion);
    }

    fn add_spend(&self, usd: f64) {
        if usd.is_finite() && usd > 0.0 {
            self.spend.add(usd);
        }
    }
}

/// Escapes a label value (backslash, double quote, newline).
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for ch in v.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The gateway's metrics registry. One per gateway; shared by reference.
pub struct Metrics {
    /// Index 0 is the fallback series.
    series: Vec<Series>,
    by_group: HashMap<Box<str>, usize>,
    by_deployment: HashMap<Box<str>, usize>,
    /// (series index, deployment id) of every routed deployment, for the health gauge.
    deployments: Vec<(usize, Box<str>)>,
    in_flight: AtomicI64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("series", &self.series.len())
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

impl Metrics {
    /// Creates every label set of `config`: one series per model group, one per deployment.
    pub fn new(config: &ProxyConfig) -> Self {
        let mut m = Metrics {
            series: vec![Series::new("", "", None)],
            by_group: HashMap::new(),
            by_deployment: HashMap::new(),
            deployments: Vec::new(),
            in_flight: AtomicI64::new(0),
        };
        for g in &config.model_groups {
            if !m.by_group.contains_key(g.as_str()) {
                m.by_group.insert(g.as_str().into(), m.series.len());
                m.series.push(Series::new(g, "", None));
            }
        }
        for d in &config.router.model_list {
            let Some(id) = d.model_info.id.as_deref() else { continue };
            if m.by_deployment.contains_key(id) {
                continue;
            }
            let p = &d.litellm_params;
            let input = p.input_cost_per_token.or(d.model_info.input_cost_per_token);
            let output = p.output_cost_per_token.or(d.model_info.output_cost_per_token);
            let prices =
                (input.is_some() || output.is_some()).then(|| (input.unwrap_or(0.0), output.unwrap_or(0.0)));
            m.by_deployment.insert(id.into(), m.series.len());
            m.deployments.push((m.series.len(), id.into()));
            m.series.push(Series::new(&d.model_name, id, prices));
        }
        m
    }

    /// Requests being answered now (streams count until they end).
    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The series of a call: its deployment's, else its model group's, else the fallback.
    fn series_index(&self, deployment: Option<&str>, group: Option<&str>) -> usize {
        deployment
            .and_then(|d| self.by_deployment.get(d))
            .or_else(|| group.and_then(|g| self.by_group.get(g)))
            .copied()
            .unwrap_or(0)
    }

    fn series(&self, i: usize) -> &Series {
        // Indices come from the maps built with `series`; 0 always exists.
        self.series.get(i).unwrap_or(&self.series[0])
    }

    fn enter(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Some(self.clone()))
    }

    /// Records one finished API request (what [`track`] does once the handler has answered),
    /// except the latency of streams. Public for benchmarks.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    pub fn record_request(
        &self,
        endpoint: &str,
        deployment: Option<&str>,
        group: Option<&str>,
        status: u16,
        latency: Duration,
        overhead: Option<Duration>,
        tokens: Option<(u64, u64)>,
        cost: Option<f64>,
    ) {
        let e = endpoint_of(endpoint).unwrap_or(OTHER_ENDPOINT);
        let s = self.series(self.series_index(deployment, group));
        inc(&s.requests[e][status_class(status)], 1);
        if status >= 400 {
            inc(&s.failures[e][usize::from(FailureKind::classify(status, None).0)], 1);
        }
        if let Some(o) = overhead {
            s.overhead.observe(o);
        }
        if let Some((p, c)) = tokens {
            s.add_tokens(p, c);
        }
        if let Some(c) = cost {
            s.add_spend(c);
        }
        s.latency[e].observe(latency);
    }

    /// The text exposition of every metric. `router` supplies the deployments' cooldown state.
    pub fn render(&self, router: Option<&Router>) -> String {
        let mut out = String::with_capacity(4096);
        let header = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
        };

        header(&mut out, "tollgate_requests_total", "counter", "API requests answered, by status class.");
        for s in &self.series {
            for (e, row) in s.requests.iter().enumerate() {
                for (c, n) in row.iter().enumerate() {
                    let n = n.load(Ordering::Relaxed);
                    if n > 0 {
                        let _ = writeln!(
                            out,
                            "tollgate_requests_total{{{},endpoint=\"{}\",status_class=\"{}\"}} {n}",
                            s.labels, ENDPOINTS[e], STATUS_CLASSES[c]
                        );
                    }
                }
            }
        }

        header(
            &mut out,
            "tollgate_request_failures_total",
            "counter",
            "Failed API requests (error answers and streams that failed mid-way), by error kind.",
        );
        for s in &self.series {
            for (e, row) in s.failures.iter().enumerate() {
                for (k, n) in row.iter().enumerate() {
                    let n = n.load(Ordering::Relaxed);
                    if n > 0 {
                        let _ = writeln!(
                            out,
                            "tollgate_request_failures_total{{{},endpoint=\"{}\",error_kind=\"{}\"}} {n}",
                            s.labels, ENDPOINTS[e], KINDS[k]
                        );
                    }
                }
            }
        }

        for (name, help, pick) in [
            (
                "tollgate_request_duration_seconds",
                "Time from receiving a request to the end of its answer (streams: the last event).",
                (|s: &Series| &s.latency) as fn(&Series) -> &[Histogram; ENDPOINT_N],
            ),
            (
                "tollgate_time_to_first_token_seconds",
                "Streams: time from receiving the request to sending the first event.",
                |s: &Series| &s.ttft,
            ),
        ] {
            header(&mut out, name, "histogram", help);
            for s in &self.series {
                for (e, h) in pick(s).iter().enumerate() {
                    if h.count() > 0 {
                        h.render(&mut out, name, &format!("{},endpoint=\"{}\"", s.labels, ENDPOINTS[e]));
                    }
                }
            }
        }

        header(
            &mut out,
            "tollgate_gateway_overhead_seconds",
            "histogram",
            "Time until the answer (or first chunk) that was not spent in upstream calls.",
        );
        for s in &self.series {
            if s.overhead.count() > 0 {
                s.overhead.render(&mut out, "tollgate_gateway_overhead_seconds", &s.labels);
            }
        }

        header(&mut out, "tollgate_tokens_total", "counter", "Tokens reported by upstreams.");
        for s in &self.series {
            for (kind, c) in [("prompt", &s.prompt_tokens), ("completion", &s.completion_tokens)] {
                let n = c.load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(out, "tollgate_tokens_total{{{},type=\"{kind}\"}} {n}", s.labels);
                }
            }
        }

        header(&mut out, "tollgate_spend_usd_total", "counter", "Cost of the answered calls in USD.");
        for s in &self.series {
            let v = s.spend.get();
            if v > 0.0 {
                let _ = writeln!(out, "tollgate_spend_usd_total{{{}}} {v}", s.labels);
            }
        }

        header(&mut out, "tollgate_in_flight_requests", "gauge", "API requests being answered now.");
        let _ = writeln!(out, "tollgate_in_flight_requests {}", self.in_flight());

        header(
            &mut out,
            "tollgate_deployment_cooling_down",
            "gauge",
            "1 while a deployment is out of rotation after failures, else 0.",
        );
        for (i, id) in &self.deployments {
            let cooling = router.is_some_and(|r| r.is_cooling_down(id));
            let _ = writeln!(
                out,
                "tollgate_deployment_cooling_down{{{}}} {}",
                self.series(*i).labels,
                u8::from(cooling)
            );
        }
        out
    }

    /// The `GET /metrics` answer.
    pub(crate) fn response(&self, router: Option<&Router>) -> Response {
        let mut resp = Response::new(Body::from(self.render(router)));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        resp
    }
}

/// Holds one unit of the in-flight gauge until dropped.
struct InFlight(Option<Arc<Metrics>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(m) = self.0.take() {
            m.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Per call: what the handler knows
// ---------------------------------------------------------------------------------------------

/// What a handler learns about its call for metrics: tokens of an answer, and a tap on streams
/// that catches the usage the upstream reports at the end.
#[derive(Default)]
pub(crate) struct Meter {
    tokens: Option<(u64, u64)>,
    tap: Option<Arc<UsageTap>>,
}

/// The usage seen on one stream (written once or twice per stream; never contended).
#[derive(Default)]
struct UsageTap(Mutex<Option<Usage>>);

impl UsageTap {
    fn take(&self) -> Option<Usage> {
        self.0.lock().ok().and_then(|mut u| u.take())
    }
}

impl Meter {
    /// The usage of a (non-streamed) answer.
    pub(crate) fn usage(&mut self, usage: Option<&Usage>) {
        if let Some(u) = usage {
            self.tokens = Some((u.prompt_tokens, u.completion_tokens));
        }
    }

    /// Token counts of an answer that has no chat [`Usage`] (embeddings).
    pub(crate) fn tokens(&mut self, prompt: u64, completion: u64) {
        self.tokens = Some((prompt, completion));
    }

    /// Watches a stream for the usage its upstream reports (kept for the end of the stream).
    pub(crate) fn tap<S, T>(&mut self, stream: S) -> Tapped<S>
    where
        S: Stream<Item = Result<T, ProviderError>>,
        T: StreamItem,
    {
        let tap = Arc::new(UsageTap::default());
        self.tap = Some(tap.clone());
        Tapped { inner: stream, tap }
    }

    /// The call's [`CallInfo`] for the response's extensions.
    pub(crate) fn info(
        &self,
        group: Option<&str>,
        route: Option<&(RouteInfo, Instant)>,
        cost: Option<f64>,
        started: Instant,
    ) -> CallInfo {
        CallInfo {
            group: match route {
                Some((r, _)) => Some(r.group.clone()),
                None => group.map(Arc::from),
            },
            deployment: route.map(|(r, _)| r.deployment_id.clone()),
            model: route.map(|(r, _)| r.model.clone()),
            overhead: route.map(|(r, answered)| {
                let upstream: Duration = r.attempts.iter().map(|a| a.duration).sum();
                answered.duration_since(started).saturating_sub(upstream)
            }),
            tokens: self.tokens,
            cost,
            tap: self.tap.clone(),
        }
    }
}

/// A stream that copies the usage its items report into a [`UsageTap`].
pub(crate) struct Tapped<S> {
    inner: S,
    tap: Arc<UsageTap>,
}

impl<S, T> Stream for Tapped<S>
where
    S: Stream<Item = Result<T, ProviderError>> + Unpin,
    T: StreamItem,
{
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let item = Pin::new(&mut this.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(it))) = &item
            && let Some(u) = it.usage()
            && let Ok(mut slot) = this.tap.0.lock()
        {
            *slot = Some(u.clone());
        }
        item
    }
}

/// What the handler tells the metrics middleware about a call (in the response's extensions).
#[derive(Clone)]
pub(crate) struct CallInfo {
    group: Option<Arc<str>>,
    deployment: Option<Arc<str>>,
    model: Option<Arc<str>>,
    overhead: Option<Duration>,
    tokens: Option<(u64, u64)>,
    cost: Option<f64>,
    tap: Option<Arc<UsageTap>>,
}

// ---------------------------------------------------------------------------------------------
// The middleware
// ---------------------------------------------------------------------------------------------

/// Records every API request (see the module docs). Layered on the API routes.
pub(crate) async fn track(State(m): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let endpoint = match req.extensions().get::<MatchedPath>().map(|p| endpoint_of(p.as_str())) {
        Some(None) => return next.run(req).await,
        Some(Some(e)) => e,
        None => OTHER_ENDPOINT,
    };
    let started = Instant::now();
    let flight = m.enter();
    let mut resp = next.run(req).await;
    let info = resp.extensions_mut().remove::<CallInfo>();
    let failure = resp.extensions_mut().remove::<FailureKind>();
    let status = resp.status();
    let si = m.series_index(
        info.as_ref().and_then(|i| i.deployment.as_deref()),
        info.as_ref().and_then(|i| i.group.as_deref()),
    );
    let s = m.series(si);
    inc(&s.requests[endpoint][status_class(status.as_u16())], 1);
    if status.as_u16() >= 400 {
        let kind = failure.unwrap_or_else(|| FailureKind::classify(status.as_u16(), None));
        inc(&s.failures[endpoint][usize::from(kind.0)], 1);
    }
    let Some(info) = info else {
        s.latency[endpoint].observe(started.elapsed());
        return resp;
    };
    if let Some(o) = info.overhead {
        s.overhead.observe(o);
    }
    if let Some((p, c)) = info.tokens {
        s.add_tokens(p, c);
    }
    if let Some(c) = info.cost {
        s.add_spend(c);
    }
    if status == StatusCode::OK && is_event_stream(&resp) {
        let (parts, body) = resp.into_parts();
        let metered = StreamMeter {
            inner: body.into_data_stream(),
            m: m.clone(),
            series: si,
            endpoint,
            started,
            first: false,
            info,
            flight: Some(flight),
        };
        return Response::from_parts(parts, Body::from_stream(metered));
    }
    s.latency[endpoint].observe(started.elapsed());
    resp
}

fn is_event_stream(resp: &Response) -> bool {
    resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
}

/// An SSE body under measurement: time to first event, mid-stream errors, and at the end (or
/// when dropped because the client went away) latency, tokens, spend and the in-flight gauge.
struct StreamMeter {
    inner: axum::body::BodyDataStream,
    m: Arc<Metrics>,
    series: usize,
    endpoint: usize,
    started: Instant,
    first: bool,
    info: CallInfo,
    flight: Option<InFlight>,
}

impl StreamMeter {
    fn event(&mut self, bytes: &Bytes) {
        // Keep-alive comments (`: ping`) are not tokens.
        if bytes.first() == Some(&b':') {
            return;
        }
        let s = self.m.series(self.series);
        if !self.first {
            self.first = true;
            s.ttft[self.endpoint].observe(self.started.elapsed());
        }
        // A mid-stream error is the stream's last event: OpenAI's `data: {"error": …}` or
        // Anthropic's `event: error`. Rare, so parsing it costs nothing on the normal path.
        let kind = if bytes.starts_with(b"data: {\"error\"") {
            let code = bytes
                .strip_prefix(b"data: ")
                .and_then(|j| serde_json::from_slice::<serde_json::Value>(j).ok())
                .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
            Some(FailureKind::classify(502, code.as_deref()))
        } else if bytes.starts_with(b"event: error\n") {
            Some(anthropic_failure(bytes))
        } else {
            None
        };
        if let Some(kind) = kind {
            inc(&s.failures[self.endpoint][usize::from(kind.0)], 1);
        }
    }

    /// Once per stream: latency, the tapped usage and its cost, and leaving the in-flight gauge.
    fn end(&mut self) {
        let Some(flight) = self.flight.take() else { return };
        let s = self.m.series(self.series);
        s.latency[self.endpoint].observe(self.started.elapsed());
        if let Some(u) = self.info.tap.as_ref().and_then(|t| t.take()) {
            s.add_tokens(u.prompt_tokens, u.completion_tokens);
            let cost = match s.prices {
                Some((i, o)) => Some(u.prompt_tokens as f64 * i + u.completion_tokens as f64 * o),
                None => self
                    .info
                    .model
                    .as_deref()
                    .and_then(|m| tollgate::pricing::cost(m, &u).ok())
                    .map(|c| c.total_f64()),
            };
            if let Some(c) = cost {
                s.add_spend(c);
            }
        }
        drop(flight);
    }
}

/// The kind of an Anthropic `event: error` (`data: {"type":"error","error":{"type": …}}`).
fn anthropic_failure(event: &[u8]) -> FailureKind {
    let data = event
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"data: "))
        .and_then(|j| serde_json::from_slice::<serde_json::Value>(j).ok());
    let status = match data.as_ref().and_then(|v| v["error"]["type"].as_str()) {
        Some("rate_limit_error") => 429,
        Some("overloaded_error") => 529,
        Some("timeout_error") => 504,
        Some("authentication_error") => 401,
        Some("permission_error") => 403,
        Some("not_found_error") => 404,
        Some("invalid_request_error") => 400,
        _ => 502,
    };
    FailureKind::classify(status, None)
}

impl Stream for StreamMeter {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let item = Pin::new(&mut this.inner).poll_next(cx);
        match &item {
            Poll::Ready(Some(Ok(bytes))) => this.event(bytes),
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => this.end(),
            Poll::Pending => {}
        }
        item
    }
}

impl Drop for StreamMeter {
    fn drop(&mut self) {
        self.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_from_routes() {
        assert_eq!(endpoint_of("/v1/chat/completions"), Some(0));
        assert_eq!(endpoint_of("/chat/completions"), Some(0));
        assert_eq!(endpoint_of("/v1/completions"), Some(1));
        assert_eq!(endpoint_of("/embeddings"), Some(2));
        assert_eq!(endpoint_of("/v1/messages/count_tokens"), Some(3));
        assert_eq!(endpoint_of("/v1/models/{*id}"), Some(4));
        assert_eq!(endpoint_of("/openai/deployments/{deployment}/chat/completions"), Some(0));
        assert_eq!(endpoint_of("/openai/deployments/{deployment}/completions"), Some(1));
        assert_eq!(endpoint_of("/health"), None);
        assert_eq!(endpoint_of("/health/readiness"), None);
        assert_eq!(endpoint_of("/openapi.json"), None);
        assert_eq!(endpoint_of("/key/generate"), Some(OTHER_ENDPOINT));
    }

    #[test]
    fn failure_kinds_by_code_then_status() {
        assert_eq!(
            FailureKind::classify(400, Some("context_length_exceeded")).label(),
            "context_window_exceeded"
        );
        assert_eq!(FailureKind::classify(502, Some("upstream_error")).label(), "upstream_error");
        assert_eq!(FailureKind::classify(429, Some("something_else")).label(), "rate_limited");
        assert_eq!(FailureKind::classify(504, None).label(), "timeout");
        assert_eq!(FailureKind::classify(418, None).label(), "bad_request");
        assert_eq!(FailureKind::classify(302, None).label(), "other");
    }

    #[test]
    fn anthropic_error_events_are_classified() {
        let ev = b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"x\"}}\n\n";
        assert_eq!(anthropic_failure(ev).label(), "overloaded");
        assert_eq!(anthropic_failure(b"event: error\ndata: nope\n\n").label(), "upstream_error");
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::new(&LATENCY_BUCKETS);
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_millis(5)); // on the bound: le="0.005"
        h.observe(Duration::from_secs(1000));
        let mut out = String::new();
        h.render(&mut out, "x", "a=\"b\"");
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"300\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count{a=\"b\"} 3\n"), "{out}");
        assert!(out.contains("x_sum{a=\"b\"} 1000.008\n"), "{out}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn spend_adds_up() {
        let f = AtomicF64::new();
        f.add(0.25);
        f.add(0.5);
        f.add(0.25);
        assert!((f.get() - 1.0).abs() < 1e-12);
    }

    /// Recording must stay far below a microsecond (here: the whole request record, hash
    /// lookup included). Debug builds are slow, so the bound is generous; see the bench for
    /// release numbers.
    #[test]
    fn recording_is_cheap() {
        let cfg = ProxyConfig::from_yaml_str(
            "model_list:\n  - model_name: g\n    litellm_params: {model: openai/gpt-4o-mini, api_key: k}\n",
            "t.yaml",
            Arc::new(|_| None),
        )
        .unwrap();
        let m = Metrics::new(&cfg);
        let n = 100_000u32;
        let t = Instant::now();
        for _ in 0..n {
            m.record_request(
                "/v1/chat/completions",
                Some("g#0"),
                Some("g"),
                200,
                Duration::from_millis(120),
                Some(Duration::from_micros(300)),
                Some((10, 3)),
                Some(0.0001),
            );
        }
        let per = t.elapsed() / n;
        eprintln!("metrics: {per:?} per recorded request (debug build)");
        assert!(per < Duration::from_micros(5), "{per:?} per record");
        assert!(m.render(None).contains(
            "tollgate_requests_total{model_group=\"g\",deployment=\"g#0\",endpoint=\"chat\",status_class=\"2xx\"} 100000"
        ));
    }
}
