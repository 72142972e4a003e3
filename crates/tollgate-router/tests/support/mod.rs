//! Test support: a scriptable HTTP/1.1 mock upstream on 127.0.0.1:0 and a tiny OpenAI-like
//! adapter. Each deployment gets its own path prefix (`http://127.0.0.1:PORT/<name>`), so the mock
//! can script and count each deployment separately.
#![allow(dead_code, unreachable_pub)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tollgate_core::chat::{ChatChunk, ChatRequest, ChatResponse};
use tollgate_core::error::{mentions_context_window, parse_retry_after};
use tollgate_core::sse::{SseDecoder, SseEvent};
use tollgate_core::{Adapter, ErrorKind, ProviderError, RawResponse, StreamDecoder, UpstreamConfig};

/// What the mock answers to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A whole response.
    Json { status: u16, headers: Vec<(String, String)>, body: String },
    /// A 200 event stream of these `data:` payloads, then `[DONE]`.
    Sse(Vec<String>),
    /// A 200 event stream with these payloads, then the connection is cut (no `[DONE]`).
    SseCut(Vec<String>),
    /// Response headers, then nothing: the first chunk never comes.
    Stall,
}

impl Reply {
    /// A successful chat completion whose text names the deployment.
    pub fn ok(text: &str) -> Reply {
        Reply::Json {
            status: 200,
            headers: vec![],
            body: serde_json::json!({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
            })
            .to_string(),
        }
    }

    pub fn error(status: u16, code: &str, message: &str) -> Reply {
        Reply::Json {
            status,
            headers: vec![],
            body: serde_json::json!({"error": {"message": message, "type": "x", "code": code}}).to_string(),
        }
    }

    pub fn with_header(self, name: &str, value: &str) -> Reply {
        match self {
            Reply::Json { status, mut headers, body } => {
                headers.push((name.to_owned(), value.to_owned()));
                Reply::Json { status, headers, body }
            }
            other => other,
        }
    }

    /// A stream of text deltas.
    pub fn stream(texts: &[&str]) -> Reply {
        Reply::Sse(texts.iter().map(|t| chunk(t)).collect())
    }
}

pub fn chunk(text: &str) -> String {
    serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]
    })
    .to_string()
}

#[derive(Debug, Default)]
struct Script {
    queue: VecDeque<Reply>,
    default: Option<Reply>,
    hits: usize,
    models: Vec<String>,
}

/// The mock upstream server.
#[derive(Debug, Clone)]
pub struct Mock {
    pub addr: SocketAddr,
    scripts: Arc<Mutex<HashMap<String, Script>>>,
}

impl Mock {
    pub async fn start() -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let scripts: Arc<Mutex<HashMap<String, Script>>> = Arc::default();
        let s = scripts.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else { return };
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = serve(sock, s).await;
                });
            }
        });
        Mock { addr, scripts }
    }

    /// The api_base for deployment `name`.
    pub fn base(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }

    /// Replies for the next requests to `name`, in order.
    pub fn script(&self, name: &str, replies: Vec<Reply>) {
        self.scripts.lock().unwrap().entry(name.to_owned()).or_default().queue.extend(replies);
    }

    /// The reply once the script for `name` is used up.
    pub fn always(&self, name: &str, reply: Reply) {
        self.scripts.lock().unwrap().entry(name.to_owned()).or_default().default = Some(reply);
    }

    pub fn hits(&self, name: &str) -> usize {
        self.scripts.lock().unwrap().get(name).map_or(0, |s| s.hits)
    }

    /// The `model` field of every request `name` received.
    pub fn models(&self, name: &str) -> Vec<String> {
        self.scripts.lock().unwrap().get(name).map(|s| s.models.clone()).unwrap_or_default()
    }
}

async fn serve(mut sock: TcpStream, scripts: Arc<Mutex<HashMap<String, Script>>>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse().ok()).flatten()
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    let body: serde_json::Value = serde_json::from_slice(&buf[head_end..]).unwrap_or_default();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let name = path.trim_start_matches('/').split('/').next().unwrap_or("").to_owned();
    let reply = {
        let mut map = scripts.lock().unwrap();
        let s = map.entry(name).or_default();
        s.hits += 1;
        s.models.push(body["model"].as_str().unwrap_or("").to_owned());
        s.queue.pop_front().or_else(|| s.default.clone()).unwrap_or(Reply::error(
            500,
            "unscripted",
            "no reply",
        ))
    };
    match reply {
        Reply::Json { status, headers, body } => {
            let mut out = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            out.push_str(&body);
            sock.write_all(out.as_bytes()).await?;
        }
        Reply::Sse(events) => {
            sock.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
            )
            .await?;
            for e in events {
                sock.write_all(format!("data: {e}\n\n").as_bytes()).await?;
                sock.flush().await?;
            }
            sock.write_all(b"data: [DONE]\n\n").await?;
        }
        Reply::SseCut(events) => {
            sock.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
            )
            .await?;
            for e in events {
                sock.write_all(format!("data: {e}\n\n").as_bytes()).await?;
            }
        }
        Reply::Stall => {
            sock.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
            )
            .await?;
            sock.flush().await?;
            // Hold the connection until the client gives up.
            let _ = sock.read(&mut tmp).await;
        }
    }
    sock.shutdown().await
}

/// An OpenAI-like adapter: `POST {api_base}/chat/completions`, JSON in and out, SSE streams.
#[derive(Debug)]
pub struct TestAdapter;

impl Adapter for TestAdapter {
    fn provider(&self) -> &str {
        "test"
    }

    fn chat_request(
        &self,
        req: &ChatRequest,
        cfg: &UpstreamConfig,
    ) -> Result<http::Request<Bytes>, ProviderError> {
        let mut body = serde_json::to_value(req).map_err(|e| ProviderError::bad_request(e.to_string()))?;
        body["model"] = serde_json::Value::String(cfg.model.clone());
        let base = cfg.api_base.clone().ok_or_else(|| ProviderError::bad_request("no api_base"))?;
        http::Request::post(format!("{base}/chat/completions"))
            .header("content-type", "application/json")
            .body(Bytes::from(body.to_string()))
            .map_err(|e| ProviderError::bad_request(e.to_string()))
    }

    fn chat_response(&self, resp: &RawResponse) -> Result<ChatResponse, ProviderError> {
        serde_json::from_slice(&resp.body).map_err(|e| ProviderError::decode(e.to_string()))
    }

    fn chat_stream_decoder(
        &self,
        _req: &ChatRequest,
        _cfg: &UpstreamConfig,
    ) -> Box<dyn StreamDecoder<ChatChunk>> {
        Box::new(TestDecoder { sse: SseDecoder::new(), events: Vec::new(), done: false })
    }

    fn error_response(&self, resp: &RawResponse) -> ProviderError {
        let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap_or_default();
        let message = v["error"]["message"].as_str().unwrap_or("error").to_owned();
        let code = v["error"]["code"].as_str().unwrap_or("").to_owned();
        let status = resp.status.as_u16();
        let kind = if code == "content_filter" {
            ErrorKind::ContentFiltered
        } else if status == 400 && (code == "context_length_exceeded" || mentions_context_window(&message)) {
            ErrorKind::ContextWindowExceeded
        } else {
            ErrorKind::from_status(status)
        };
        ProviderError::new(kind, message)
            .with_provider("test")
            .with_status(status)
            .with_code(code)
            .with_retry_after(parse_retry_after(&resp.headers))
    }
}

struct TestDecoder {
    sse: SseDecoder,
    events: Vec<SseEvent>,
    done: bool,
}

impl StreamDecoder<ChatChunk> for TestDecoder {
    fn decode(&mut self, bytes: &[u8], out: &mut Vec<ChatChunk>) -> Result<(), ProviderError> {
        self.sse.feed(bytes, &mut self.events).map_err(|e| ProviderError::decode(e.to_string()))?;
        for e in self.events.drain(..) {
            if e.data == "[DONE]" {
                self.done = true;
                continue;
            }
            out.push(serde_json::from_str(&e.data).map_err(|e| ProviderError::decode(e.to_string()))?);
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<ChatChunk>) -> Result<(), ProviderError> {
        if self.done { Ok(()) } else { Err(ProviderError::decode("stream cut before [DONE]")) }
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

/// A resolver for `test/<model>` strings.
pub fn resolver(model: &str) -> Result<(Arc<dyn Adapter>, String), ProviderError> {
    match model.split_once('/') {
        Some(("test", m)) => Ok((Arc::new(TestAdapter), m.to_owned())),
        _ => Err(ProviderError::bad_request(format!("unknown provider in `{model}`"))),
    }
}
