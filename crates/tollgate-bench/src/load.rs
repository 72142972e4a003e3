//! The load generator: a fixed number of workers, each holding one HTTP/1.1 keep-alive
//! connection and sending one request after another (closed loop, like `wrk`), for a duration or
//! a number of requests, after an unrecorded warm-up.
//!
//! A request's latency is the time from sending it to having read the whole response body (for a
//! stream: through `data: [DONE]`). A request is an error when the connection fails, the status
//! is not 200, or the body is not the expected shape (a chat completion object, or an SSE stream
//! ending in `[DONE]`); after a transport error the worker reconnects.
//!
//! Optionally a process (`watch_pid`, the system under test) is sampled from `/proc` at the start
//! and end of the recorded window (CPU time, RSS, peak RSS), and its RSS every `rss_every`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::hist::Histogram;
use crate::procfs;

/// Which requests are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every request is a plain chat completion.
    NonStream,
    /// Every request has `"stream": true`.
    Stream,
    /// Alternating, per worker.
    Mixed,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "nonstream" | "non-stream" => Some(Mode::NonStream),
            "stream" => Some(Mode::Stream),
            "mixed" => Some(Mode::Mixed),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::NonStream => "nonstream",
            Mode::Stream => "stream",
            Mode::Mixed => "mixed",
        }
    }
}

/// When the recorded phase ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Duration(Duration),
    Requests(u64),
}

/// What to send, where, and for how long.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// A loopback address (anything else is refused).
    pub addr: SocketAddr,
    pub path: String,
    /// Extra request headers (e.g. `authorization`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub model: String,
    pub concurrency: usize,
    pub limit: Limit,
    /// Unrecorded time before the recorded phase.
    pub warmup: Duration,
    pub mode: Mode,
    /// Every n-th recorded request is abandoned after the response head (a client disconnect);
    /// 0 = never.
    pub disconnect_every: u64,
    /// A process to sample from `/proc` (the system under test).
    pub watch_pid: Option<u32>,
    /// How often to sample the watched process's RSS during the recorded phase.
    pub rss_every: Option<Duration>,
    /// Print a progress line to stderr at every tenth RSS sample.
    pub progress: bool,
}

impl LoadConfig {
    /// A config with defaults: `POST /v1/chat/completions`, model `bench-model`, concurrency 1,
    /// 1,000 requests, no warm-up, non-streamed, no watching.
    pub fn new(addr: SocketAddr) -> Self {
        LoadConfig {
            addr,
            path: "/v1/chat/completions".into(),
            headers: Vec::new(),
            model: "bench-model".into(),
            concurrency: 1,
            limit: Limit::Requests(1_000),
            warmup: Duration::ZERO,
            mode: Mode::NonStream,
            disconnect_every: 0,
            watch_pid: None,
            rss_every: None,
            progress: false,
        }
    }
}

/// Why a load run could not run at all (individual request failures are counted instead).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("refusing to send load to {0}: only loopback addresses are allowed")]
    NotLoopback(SocketAddr),
    #[error("concurrency must be at least 1")]
    NoConcurrency,
    #[error("cannot read /proc for pid {pid}: {source}")]
    Proc { pid: u32, source: std::io::Error },
}

/// What the watched process did during the recorded window.
#[derive(Debug, Clone)]
pub struct WatchReport {
    pub pid: u32,
    /// CPU time used (user + system) during the window, in clock ticks.
    pub cpu_ticks: u64,
    pub rss_kb_start: u64,
    pub rss_kb_end: u64,
    /// Peak RSS of the process's whole life, read at the end.
    pub hwm_kb_end: u64,
    /// `(seconds since the recorded window started, RSS kB)`.
    pub rss_samples: Vec<(f64, u64)>,
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub mode: Mode,
    pub concurrency: usize,
    /// Requests completed successfully in the recorded window.
    pub requests: u64,
    pub errors: u64,
    /// Requests abandoned on purpose (client disconnects).
    pub aborted: u64,
    pub elapsed: Duration,
    /// Latencies of the successful requests, in nanoseconds.
    pub latency: Histogram,
    /// The first few error messages.
    pub error_samples: Vec<String>,
    pub watch: Option<WatchReport>,
}

impl LoadReport {
    pub fn rps(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.requests as f64 / s } else { 0.0 }
    }

    /// The watched process's CPU time per request served (successful + aborted), in µs.
    pub fn cpu_us_per_request(&self) -> Option<f64> {
        let w = self.watch.as_ref()?;
        let served = self.requests + self.aborted;
        (served > 0).then(|| w.cpu_ticks as f64 * 1e6 / procfs::TICKS_PER_SECOND as f64 / served as f64)
    }

    pub fn to_json(&self) -> Value {
        let us = |ns: u64| ns as f64 / 1_000.0;
        let h = &self.latency;
        let watch = self.watch.as_ref().map(|w| {
            json!({
                "pid": w.pid,
                "cpu_ticks": w.cpu_ticks,
                "cpu_s": w.cpu_ticks as f64 / procfs::TICKS_PER_SECOND as f64,
                "cpu_us_per_request": self.cpu_us_per_request(),
                "rss_kb_start": w.rss_kb_start,
                "rss_kb_end": w.rss_kb_end,
                "hwm_kb_end": w.hwm_kb_end,
                "rss_samples": w.rss_samples.iter().map(|(t, kb)| json!([t, kb])).collect::<Vec<_>>(),
            })
        });
        json!({
            "mode": self.mode.name(),
            "concurrency": self.concurrency,
            "requests": self.requests,
            "errors": self.errors,
            "aborted": self.aborted,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "rps": self.rps(),
            "latency_us": {
                "p50": us(h.percentile(50.0)),
                "p90": us(h.percentile(90.0)),
                "p99": us(h.percentile(99.0)),
                "max": us(h.max()),
                "mean": h.mean() / 1_000.0,
            },
            "error_samples": self.error_samples,
            "watch": watch,
        })
    }
}

struct Shared {
    recording: AtomicBool,
    stop: AtomicBool,
    /// Recorded requests claimed so far (count-bounded runs and disconnect numbering).
    claimed: AtomicU64,
}

#[derive(Default)]
struct WorkerResult {
    hist: Histogram,
    requests: u64,
    errors: u64,
    aborted: u64,
    error_samples: Vec<String>,
}

impl WorkerResult {
    fn error(&mut self, msg: String) {
        self.errors += 1;
        if self.error_samples.len() < 5 {
            self.error_samples.push(msg);
        }
    }
}

/// The request body for `model`, streamed or not.
pub fn chat_body(model: &str, stream: bool) -> Bytes {
    let mut v = json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Say hello."}
        ],
        "max_tokens": 64,
        "temperature": 0.2
    });
    if stream {
        v["stream"] = json!(true);
    }
    Bytes::from(v.to_string())
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Checks a complete response body.
fn check_body(stream: bool, body: &[u8]) -> Result<(), String> {
    if stream {
        let trimmed = body.trim_ascii_end();
        if trimmed.ends_with(b"data: [DONE]") && !body.windows(9).any(|w| w == b"\"error\":{") {
            Ok(())
        } else {
            Err(format!("stream did not end in [DONE]: {}", String::from_utf8_lossy(tail(body))))
        }
    } else if body.starts_with(b"{") && body.windows(10).any(|w| w == b"\"choices\":") {
        Ok(())
    } else {
        Err(format!("not a chat completion: {}", String::from_utf8_lossy(tail(body))))
    }
}

fn tail(b: &[u8]) -> &[u8] {
    &b[b.len().saturating_sub(200)..]
}

enum Outcome {
    Ok,
    Aborted,
    /// The connection is still usable.
    Failed(String),
    /// The connection must be replaced.
    Broken(String),
}

async fn one_request(
    sender: &mut SendRequest<Full<Bytes>>,
    cfg: &LoadConfig,
    body: Bytes,
    stream: bool,
    abort: bool,
) -> Outcome {
    if let Err(e) = sender.ready().await {
        return Outcome::Broken(format!("connection closed: {e}"));
    }
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(cfg.path.as_str())
        .header(header::HOST, cfg.addr.to_string())
        .header(header::CONTENT_TYPE, "application/json");
    for (k, v) in &cfg.headers {
        builder = builder.header(k, v);
    }
    let req = match builder.body(Full::new(body)) {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(format!("bad request: {e}")),
    };
    let resp = match sender.send_request(req).await {
        Ok(r) => r,
        Err(e) => return Outcome::Broken(format!("request: {e}")),
    };
    let status = resp.status();
    if abort && status == StatusCode::OK {
        // Read at most the first frame, then drop the response (and the connection).
        let mut body = resp.into_body();
        let _ = body.frame().await;
        return Outcome::Aborted;
    }
    let bytes = match resp.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Outcome::Broken(format!("reading the body: {e}")),
    };
    if status != StatusCode::OK {
        return Outcome::Failed(format!("status {status}: {}", String::from_utf8_lossy(tail(&bytes))));
    }
    match check_body(stream, &bytes) {
        Ok(()) => Outcome::Ok,
        Err(e) => Outcome::Failed(e),
    }
}

async fn worker(cfg: Arc<LoadConfig>, shared: Arc<Shared>, id: usize) -> WorkerResult {
    let mut out = WorkerResult::default();
    let bodies = [chat_body(&cfg.model, false), chat_body(&cfg.model, true)];
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    let mut n: u64 = id as u64;
    while !shared.stop.load(Ordering::Relaxed) {
        let recording = shared.recording.load(Ordering::Acquire);
        let mut abort = false;
        if recording {
            let k = shared.claimed.fetch_add(1, Ordering::Relaxed) + 1;
            if matches!(cfg.limit, Limit::Requests(max) if k > max) {
                break;
            }
            abort = cfg.disconnect_every > 0 && k.is_multiple_of(cfg.disconnect_every);
        }
        let stream = match cfg.mode {
            Mode::NonStream => false,
            Mode::Stream => true,
            Mode::Mixed => n % 2 == 1,
        };
        n += 1;
        let s = match sender.as_mut() {
            Some(s) => s,
            None => match connect(cfg.addr).await {
                Ok(s) => sender.insert(s),
                Err(e) => {
                    if recording {
                        out.error(e);
                    }
                    // A short back-off so a refused connection does not spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let started = Instant::now();
        let outcome = one_request(s, &cfg, bodies[usize::from(stream)].clone(), stream, abort).await;
        let took = started.elapsed();
        match outcome {
            Outcome::Ok => {
                if recording {
                    out.requests += 1;
                    out.hist.record(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
                }
            }
            Outcome::Aborted => {
                sender = None;
                out.aborted += 1;
            }
            Outcome::Failed(e) => {
                if recording {
                    out.error(e);
                }
            }
            Outcome::Broken(e) => {
                sender = None;
                if recording {
                    out.error(e);
                }
            }
        }
    }
    out
}

fn read_watch(pid: u32) -> Result<(procfs::CpuTimes, procfs::Memory), LoadError> {
    let cpu = procfs::cpu_times(pid).map_err(|source| LoadError::Proc { pid, source })?;
    let mem = procfs::memory(pid).map_err(|source| LoadError::Proc { pid, source })?;
    Ok((cpu, mem))
}

/// Runs the load described by `cfg` on the current tokio runtime.
pub async fn run(cfg: LoadConfig) -> Result<LoadReport, LoadError> {
    if !cfg.addr.ip().is_loopback() {
        return Err(LoadError::NotLoopback(cfg.addr));
    }
    if cfg.concurrency == 0 {
        return Err(LoadError::NoConcurrency);
    }
    let cfg = Arc::new(cfg);
    let shared = Arc::new(Shared {
        recording: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        claimed: AtomicU64::new(0),
    });
    let handles: Vec<_> = (0..cfg.concurrency)
        .map(|i| tokio::spawn(worker(Arc::clone(&cfg), Arc::clone(&shared), i)))
        .collect();

    if !cfg.warmup.is_zero() {
        tokio::time::sleep(cfg.warmup).await;
    }
    let start_watch = cfg.watch_pid.map(read_watch).transpose()?;
    let started = Instant::now();
    shared.recording.store(true, Ordering::Release);

    // RSS sampling (and progress) while recording.
    let sampler = match (cfg.watch_pid, cfg.rss_every) {
        (Some(pid), Some(every)) => {
            let (shared, progress) = (Arc::clone(&shared), cfg.progress);
            Some(tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                while !shared.stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    if let Ok(m) = procfs::memory(pid) {
                        let t = started.elapsed().as_secs_f64();
                        samples.push((t, m.rss_kb));
                        if progress && samples.len() % 10 == 1 {
                            eprintln!(
                                "  t={t:7.1}s  requests≈{}  rss={} kB",
                                shared.claimed.load(Ordering::Relaxed),
                                m.rss_kb
                            );
                        }
                    }
                }
                samples
            }))
        }
        _ => None,
    };

    match cfg.limit {
        Limit::Duration(d) => {
            tokio::time::sleep(d).await;
            shared.stop.store(true, Ordering::Relaxed);
        }
        Limit::Requests(_) => {}
    }
    let mut total = WorkerResult::default();
    for h in handles {
        if let Ok(r) = h.await {
            total.hist.merge(&r.hist);
            total.requests += r.requests;
            total.errors += r.errors;
            total.aborted += r.aborted;
            for e in r.error_samples {
                if total.error_samples.len() < 5 {
                    total.error_samples.push(e);
                }
            }
        }
    }
    let elapsed = started.elapsed();
    shared.stop.store(true, Ordering::Relaxed);
    let end_watch = cfg.watch_pid.map(read_watch).transpose()?;
    let rss_samples = match sampler {
        Some(h) => h.await.unwrap_or_default(),
        None => Vec::new(),
    };
    let watch = match (cfg.watch_pid, start_watch, end_watch) {
        (Some(pid), Some((c0, m0)), Some((c1, m1))) => Some(WatchReport {
            pid,
            cpu_ticks: c1.total_ticks().saturating_sub(c0.total_ticks()),
            rss_kb_start: m0.rss_kb,
            rss_kb_end: m1.rss_kb,
            hwm_kb_end: m1.hwm_kb,
            rss_samples,
        }),
        _ => None,
    };
    Ok(LoadReport {
        mode: cfg.mode,
        concurrency: cfg.concurrency,
        requests: total.requests,
        errors: total.errors,
        aborted: total.aborted,
        elapsed,
        latency: total.hist,
        error_samples: total.error_samples,
        watch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_checks() {
        assert!(check_body(false, crate::upstream::CHAT_COMPLETION.as_bytes()).is_ok());
        assert!(check_body(true, crate::upstream::CHAT_STREAM.as_bytes()).is_ok());
        assert!(check_body(true, crate::upstream::CHAT_COMPLETION.as_bytes()).is_err());
        assert!(check_body(false, b"<html>bad gateway</html>").is_err());
        assert!(check_body(true, b"data: {\"error\":{\"message\":\"x\"}}\n\ndata: [DONE]\n\n").is_err());
        assert!(check_body(true, b"data: {\"choices\":[]}\n\n").is_err(), "cut before [DONE]");
    }

    #[test]
    fn request_bodies() {
        let v: Value = serde_json::from_slice(&chat_body("m", true)).unwrap();
        assert_eq!(v["stream"], true);
        assert_eq!(v["model"], "m");
        assert!(crate::upstream::wants_stream(&chat_body("m", true)));
        assert!(!crate::upstream::wants_stream(&chat_body("m", false)));
    }
}
