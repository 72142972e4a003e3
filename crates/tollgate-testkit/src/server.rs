//! The mock server: listener, scripting state, recording and the per-request handler.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::body::MockBody;
use crate::openai::OpenAiResponder;
use crate::record::RecordedRequest;
use crate::response::MockResponse;

/// Answers requests that have nothing scripted for them: the server's default behaviour.
///
/// Returning `None` declines; the server then answers 500 "nothing scripted". Implemented for
/// every `Fn(&RecordedRequest) -> Option<MockResponse>`, so a closure is a responder.
/// Responders run on the serving path: they must be quick and must not panic.
pub trait Responder: Send + Sync + 'static {
    fn respond(&self, request: &RecordedRequest) -> Option<MockResponse>;
}

impl<F> Responder for F
where
    F: Fn(&RecordedRequest) -> Option<MockResponse> + Send + Sync + 'static,
{
    fn respond(&self, request: &RecordedRequest) -> Option<MockResponse> {
        self(request)
    }
}

#[derive(Default)]
struct Script {
    by_path: HashMap<String, VecDeque<MockResponse>>,
    any: VecDeque<MockResponse>,
    always: Option<MockResponse>,
    responder: Option<Arc<dyn Responder>>,
}

struct Shared {
    script: Mutex<Script>,
    requests: Mutex<Vec<Arc<RecordedRequest>>>,
    received: AtomicU64,
    recording: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave these collections inconsistent; keep serving.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Scripted for the path, then scripted for any path, then `always`, then the responder.
    fn pick(&self, request: &RecordedRequest) -> Option<MockResponse> {
        let responder = {
            let mut script = lock(&self.script);
            if let Some(r) = script.by_path.get_mut(&request.path).and_then(VecDeque::pop_front) {
                return Some(r);
            }
            if let Some(r) = script.any.pop_front() {
                return Some(r);
            }
            if let Some(r) = &script.always {
                return Some(r.clone());
            }
            script.responder.clone()
        };
        // Outside the lock: responders may be slow-ish and requests are concurrent.
        responder.and_then(|r| r.respond(request))
    }
}

/// A scriptable mock LLM upstream on `127.0.0.1:<random port>`, speaking HTTP/1.1 and h2c.
///
/// Every request is read completely, recorded, and answered with the first match of:
/// 1. the next response scripted for its exact path ([`MockServer::enqueue_for`]);
/// 2. the next response scripted for any path ([`MockServer::enqueue`]);
/// 3. the response set with [`MockServer::always`];
/// 4. the default [`Responder`], if one is set and it does not decline
///    ([`MockServer::start_openai`], [`MockServer::set_responder`]);
/// 5. otherwise a 500 with an OpenAI-style JSON error body saying nothing was scripted.
///
/// Dropping the server (or [`MockServer::shutdown`]) stops the listener and every connection it
/// accepted, stalled ones included; nothing keeps running afterwards.
///
/// All methods take `&self`: a test may script more responses while requests are in flight.
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Dropping the sender is the stop signal for the accept loop and every connection task.
    stop: Option<watch::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer")
            .field("addr", &self.addr)
            .field("requests", &self.shared.received.load(Ordering::Relaxed))
            .finish()
    }
}

impl MockServer {
    /// Starts a server with nothing scripted on `127.0.0.1:0`. Must be called inside a tokio
    /// runtime (any flavour); the server's tasks live on that runtime, so a server shared by
    /// several `#[tokio::test]`s (each with its own runtime) stops with the test that started it.
    ///
    /// # Panics
    /// If no loopback port can be bound, which only happens on a broken test machine; use
    /// [`MockServer::try_start`] to handle that as an error.
    #[allow(clippy::panic)] // Test-support startup: a machine without loopback cannot run the tests anyway.
    pub async fn start() -> Self {
        match Self::try_start().await {
            Ok(server) => server,
            Err(e) => panic!("tollgate-testkit: cannot bind a port on 127.0.0.1: {e}"),
        }
    }

    /// Like [`MockServer::start`], returning the bind error instead of panicking.
    pub async fn try_start() -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            script: Mutex::new(Script::default()),
            requests: Mutex::new(Vec::new()),
            received: AtomicU64::new(0),
            recording: AtomicBool::new(true),
        });
        let (stop, stopped) = watch::channel(());
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared), stopped));
        Ok(MockServer { addr, shared, stop: Some(stop), task: Some(task) })
    }

    /// Starts a server whose default responder is the deterministic [`OpenAiResponder`].
    pub async fn start_openai() -> Self {
        Self::start().await.with_openai_defaults()
    }

    /// Sets the default responder to a default [`OpenAiResponder`] (builder style).
    pub fn with_openai_defaults(self) -> Self {
        self.set_responder(OpenAiResponder::default());
        self
    }

    /// Sets (replaces) the default responder.
    pub fn set_responder(&self, responder: impl Responder) {
        lock(&self.shared.script).responder = Some(Arc::new(responder));
    }

    /// Removes the default responder.
    pub fn clear_responder(&self) {
        lock(&self.shared.script).responder = None;
    }

    /// The bound address (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1`: an OpenAI `api_base`.
    pub fn openai_base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues a response for the next request to any path without a response queued for its
    /// own path. Responses are used once, first in first out.
    pub fn enqueue(&self, response: MockResponse) {
        lock(&self.shared.script).any.push_back(response);
    }

    /// Queues a response for the next request to exactly this path (no query string, e.g.
    /// `/v1/chat/completions`). Responses are used once, first in first out, before any
    /// response queued with [`MockServer::enqueue`].
    pub fn enqueue_for(&self, path: &str, response: MockResponse) {
        lock(&self.shared.script).by_path.entry(path.to_owned()).or_default().push_back(response);
    }

    /// Answers every request that has nothing queued with this response (instead of the
    /// default responder). Queued responses still go first.
    pub fn always(&self, response: MockResponse) {
        lock(&self.shared.script).always = Some(response);
    }

    /// Removes the [`MockServer::always`] response.
    pub fn clear_always(&self) {
        lock(&self.shared.script).always = None;
    }

    /// How many queued responses have not been used yet (all paths).
    pub fn pending(&self) -> usize {
        let script = lock(&self.shared.script);
        script.any.len() + script.by_path.values().map(VecDeque::len).sum::<usize>()
    }

    /// Every recorded request, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).iter().map(|r| RecordedRequest::clone(r)).collect()
    }

    /// The recorded requests to exactly this path, in arrival order.
    pub fn requests_for(&self, path: &str) -> Vec<RecordedRequest> {
        lock(&self.shared.requests)
            .iter()
            .filter(|r| r.path == path)
            .map(|r| RecordedRequest::clone(r))
            .collect()
    }

    /// The most recently recorded request.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        lock(&self.shared.requests).last().map(|r| RecordedRequest::clone(r))
    }

    /// How many requests the server has received (including any received while recording
    /// was off).
    pub fn request_count(&self) -> u64 {
        self.shared.received.load(Ordering::SeqCst)
    }

    /// Forgets the recorded requests (the count and `seq` numbers keep going).
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Switches request recording on (the default) or off. Benchmarks switch it off so memory
    /// stays flat; requests are still counted.
    pub fn set_recording(&self, on: bool) {
        self.shared.recording.store(on, Ordering::SeqCst);
    }

    /// Stops the server and waits until its listener is closed. Connections still open are torn
    /// down at their next poll.
    pub async fn shutdown(mut self) {
        self.stop.take();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Resolves when the server is stopped (its `watch::Sender` dropped).
async fn stopped(mut rx: watch::Receiver<()>) {
    // `changed` fails once the sender is gone; nothing is ever sent, so it only ever fails.
    while rx.changed().await.is_ok() {}
}

/// Runs futures hyper spawns (HTTP/2 streams) until the server stops.
#[derive(Clone)]
struct StopExecutor {
    stopped: watch::Receiver<()>,
}

impl<F> hyper::rt::Executor<F> for StopExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        let stop = stopped(self.stopped.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = fut => {}
                () = stop => {}
            }
        });
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stop_rx: watch::Receiver<()>) {
    let builder = auto::Builder::new(StopExecutor { stopped: stop_rx.clone() });
    let stop = stopped(stop_rx.clone());
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            () = &mut stop => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            // Transient (e.g. too many open files, a connection reset before accept): keep going
            // after a short pause so a persistent error does not spin.
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        let shared = Arc::clone(&shared);
        let conn_stop = stopped(stop_rx.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(Arc::clone(&shared), req));
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                () = conn_stop => {}
            }
        });
    }
}

/// The error that makes hyper drop the connection without answering.
#[derive(Debug)]
struct HangUp;

impl std::fmt::Display for HangUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("tollgate-testkit: hanging up")
    }
}

impl std::error::Error for HangUp {}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<MockBody>, HangUp> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        // The client went away mid-request: there is nobody to answer.
        Err(_) => return Err(HangUp),
    };
    let seq = shared.received.fetch_add(1, Ordering::SeqCst);
    let request = Arc::new(RecordedRequest {
        seq,
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        version: parts.version,
        headers: parts.headers,
        body,
    });
    if shared.recording.load(Ordering::SeqCst) {
        lock(&shared.requests).push(Arc::clone(&request));
    }
    let Some(scripted) = shared.pick(&request) else {
        return Ok(nothing_scripted(&request));
    };
    if !scripted.delay_before_headers.is_zero() {
        tokio::time::sleep(scripted.delay_before_headers).await;
    }
    if scripted.hang_up {
        return Err(HangUp);
    }
    Ok(build(&scripted))
}

fn build(scripted: &MockResponse) -> Response<MockBody> {
    let Ok(status) = StatusCode::from_u16(scripted.status) else {
        return misconfigured(&format!("status {} is not a valid HTTP status", scripted.status));
    };
    let mut headers = HeaderMap::with_capacity(scripted.headers.len());
    for (name, value) in &scripted.headers {
        let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) else {
            return misconfigured(&format!("header `{name}: {value}` is not a valid HTTP header"));
        };
        headers.append(n, v);
    }
    let body = MockBody::new(
        scripted.plan_chunks(),
        scripted.delay_between_chunks,
        scripted.ending,
        scripted.is_whole(),
    );
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

fn error_json(status: StatusCode, code: &str, message: &str) -> Response<MockBody> {
    let body = serde_json::json!({
        "error": {"message": message, "type": "tollgate_testkit", "param": null, "code": code}
    });
    let mut response = Response::new(MockBody::full(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn nothing_scripted(request: &RecordedRequest) -> Response<MockBody> {
    error_json(
        StatusCode::INTERNAL_SERVER_ERROR,
        "nothing_scripted",
        &format!(
            "tollgate-testkit: nothing scripted for {} {} and no default responder answered it",
            request.method, request.path
        ),
    )
}

fn misconfigured(problem: &str) -> Response<MockBody> {
    error_json(
        StatusCode::INTERNAL_SERVER_ERROR,
        "invalid_script",
        &format!("tollgate-testkit: the scripted response is invalid: {problem}"),
    )
}
